#!/usr/bin/env lua
--- Where does mail for these addresses go? Under luv (libuv): lookups in
-- coroutines suspend only their coroutine; mxroute.luv resumes each when
-- its plan is ready, and uv.run() returns when all are done
-- (doc/async.md).
--
--   lua examples/luv.lua [NAMESERVER [ADDRESS...]]
--
-- NAMESERVER (IP[:PORT]) defaults to $MXR_NAMESERVER, then 127.0.0.1:53;
-- the addresses default to the domains of examples/zones (`make demo`).
local uv = require "luv"
local mxluv = require "mxroute.luv"

local unpack = table.unpack or unpack
local nameserver = arg[1] or os.getenv("MXR_NAMESERVER") or "127.0.0.1:53"
local inputs = { unpack(arg, 2) }
if #inputs == 0 then
  inputs = { "postmaster@example.test", "bigmail.test", "partner.test",
             "info@smallshop.test", "someone@nomail.test" }
end

-- mxroute.resolver(opts) with wait = mxroute.luv's scheduler for uv.
local r = mxluv.resolver({ nameservers = { nameserver }, timeout = 2 }, uv)

for _, input in ipairs(inputs) do
  coroutine.wrap(function()
    local it, st = r:targets(input)
    for t in it, st do
      print(("%-26s %5d  %-26s %s"):format(input, t.pref, t.host, t.addr))
    end
    if st.code then print(("%-26s %s  %s"):format(input, st.code, st.message)) end
  end)()
end
uv.run()
r:close()
