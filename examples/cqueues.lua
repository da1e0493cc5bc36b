#!/usr/bin/env lua
--- Where does mail for these addresses go? Under cqueues: inside a
-- controller, lookups wait with cqueues.poll by themselves, so each
-- thread is suspended alone while the others run (doc/async.md).
--
--   lua examples/cqueues.lua [NAMESERVER [ADDRESS...]]
--
-- NAMESERVER (IP[:PORT]) defaults to $MXR_NAMESERVER, then 127.0.0.1:53;
-- the addresses default to the domains of examples/zones (`make demo`).
local cqueues = require "cqueues"
local mxroute = require "mxroute"

local unpack = table.unpack or unpack
local nameserver = arg[1] or os.getenv("MXR_NAMESERVER") or "127.0.0.1:53"
local inputs = { unpack(arg, 2) }
if #inputs == 0 then
  inputs = { "postmaster@example.test", "bigmail.test", "partner.test",
             "info@smallshop.test", "someone@nomail.test" }
end

-- No wait option: inside a cqueues controller it is automatic.
local r = mxroute.resolver { nameservers = { nameserver }, timeout = 2 }

local cq = cqueues.new()
for _, input in ipairs(inputs) do
  cq:wrap(function()
    local it, st = r:targets(input)
    for t in it, st do
      print(("%-26s %5d  %-26s %s"):format(input, t.pref, t.host, t.addr))
    end
    if st.code then print(("%-26s %s  %s"):format(input, st.code, st.message)) end
  end)
end
assert(cq:loop())
r:close()
