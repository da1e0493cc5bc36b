#!/usr/bin/env lua
--- Where does mail for these addresses go? Plain Lua coroutines, no event
-- library: a scheduler of a few lines and the resolver option
-- wait = "yield" (doc/async.md).
--
--   lua examples/coroutines.lua [NAMESERVER [ADDRESS...]]
--
-- NAMESERVER (IP[:PORT]) defaults to $MXR_NAMESERVER, then 127.0.0.1:53;
-- the addresses default to the domains of examples/zones (`make demo`).
local mxroute = require "mxroute"

local unpack = table.unpack or unpack
local nameserver = arg[1] or os.getenv("MXR_NAMESERVER") or "127.0.0.1:53"
local inputs = { unpack(arg, 2) }
if #inputs == 0 then
  inputs = { "postmaster@example.test", "bigmail.test", "partner.test",
             "info@smallshop.test", "someone@nomail.test" }
end

-- With wait = "yield", a lookup made in a coroutine yields the resolver
-- (a pollable) to whoever resumed the coroutine, until its plan is ready.
local r = mxroute.resolver { nameservers = { nameserver }, timeout = 2, wait = "yield" }

-- One task per input: print its targets as soon as each preference level
-- is known, in delivery order.
local function show(input)
  local it, st = r:targets(input)
  for t in it, st do
    print(("%-26s %5d  %-26s %s"):format(input, t.pref, t.host, t.addr))
  end
  if st.code then print(("%-26s %s  %s"):format(input, st.code, st.message)) end
end

-- The scheduler. Every task here waits on the same resolver, so the loop
-- sleeps in r:step(r:timeout()) - the blocking wait on the resolver's
-- descriptor, never a busy loop - and then resumes each waiting task,
-- which checks its own lookup and yields again if it is not done.
local waiting = {}

local function resume(co)
  local ok, err = coroutine.resume(co)
  if not ok then error(debug.traceback(co, err), 0) end
  waiting[co] = coroutine.status(co) ~= "dead" or nil
end

for _, input in ipairs(inputs) do
  resume(coroutine.create(function() show(input) end))
end
while next(waiting) do
  r:step(r:timeout())
  local now = {}
  for co in pairs(waiting) do now[#now + 1] = co end
  for _, co in ipairs(now) do resume(co) end
end
r:close()
