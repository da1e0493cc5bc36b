#!/usr/bin/env lua
--- A routing policy in Lua: the transport table of this directory, plus
-- a rule on the sender, a fallback relay and a hook that picks a source
-- address per target (DESIGN 7; README "Routing policies").
--
--   lua examples/routes/policy.lua [NAMESERVER [ADDRESS[=SENDER]...]]
--
-- NAMESERVER (IP[:PORT]) defaults to $MXR_NAMESERVER, then 127.0.0.1:53;
-- the addresses default to a few of examples/zones (`make demo`).
local mxroute = require "mxroute"
local routes = mxroute.routes

local unpack = table.unpack or unpack

local here = (arg[0] or ""):match("^(.*)/[^/]*$") or "."
local f = assert(io.open(here .. "/transport", "rb"))
local table_text = f:read("*a")
f:close()

local policy = routes.new {
  -- the Postfix table, unchanged
  map = routes.postfix(table_text),

  -- Lua rules come first: mail from our billing system leaves through
  -- the relay that signs it, whatever the recipient
  { name = "billing", route = "smtp:[relay.example.test]:587",
    match = function(_, call) return call.sender == "billing@example.test" end },

  -- when a plan fails temporarily (a DNS outage), hand the mail to a
  -- fallback relay instead of waiting; otherwise it comes last
  fallback = "[mx2.example.test]:2525",

  -- a finished plan: IPv4 targets leave from one address, IPv6 from
  -- another, fallback targets from a third
  hooks = function(plan)
    for _, t in ipairs(plan.targets) do
      t.source = t.fallback and "203.0.113.26"
        or (t.family == "ipv4" and "203.0.113.25" or "2001:db8:25::25")
    end
  end,
}

local nameserver = arg[1] or os.getenv("MXR_NAMESERVER") or "127.0.0.1:53"
local inputs = { unpack(arg, 2) }
if #inputs == 0 then
  inputs = { "user@partner.test", "ceo@bigmail.test=billing@example.test",
             "user@oldcorp.test", "postmaster@example.test" }
end

local r = mxroute.resolver { nameservers = { nameserver }, timeout = 2, routes = policy }
for _, arg_ in ipairs(inputs) do
  local input, sender = arg_:match("^(.-)=(.*)$")
  input = input or arg_
  local plan, msg, code, info = r:resolve(input, { sender = sender })
  if plan then
    local route = plan.route
    print(("%s: %s"):format(input, route and ("route " .. route.key .. " -> " .. route.transport
                                               .. ":" .. route.nexthop) or "no route (MX)"))
    for _, t in ipairs(plan.targets) do
      print(("  %-22s %-18s port %-5d from %s%s"):format(t.host, t.addr, t.port, t.source,
                                                        t.fallback and " (fallback)" or ""))
    end
  else
    print(("%s: %s %s%s"):format(input, code, msg, info and info.enhanced and " [" .. info.enhanced .. "]" or ""))
  end
end
r:close()
