--- The exchange's failover and health cases (DESIGN 9), as data and
-- runners, so that every transport meets the very same faults: the C
-- engine (spec/exchange_spec.lua) and mxroute.ngx
-- (spec/exchange_ngx_spec.lua).
--
--     local cases = require "support.exchange_cases"
--     for _, c in ipairs(cases.FAULTS) do
--       it("moves on after " .. c.name, function()
--         cases.failover(c, resolve, knot.shared().addr)
--       end)
--     end
--     it("...", function() cases.health(resolve_all, knot.shared().addr) end)
--
-- `resolve(opts, input)` makes a resolver of `opts` (nameservers, timeout,
-- tries, health), resolves `input` and returns plan, message, code.
-- `resolve_all(opts, inputs)` resolves each input in turn on ONE resolver
-- made of opts (server health is a resolver's memory) and returns a list
-- of { plan, message, code }.
local assert = require "luassert"
local fault = require "support.fault"
local plans = require "support.plans"
local util = require "support.util"

local M = {}

--- What every case resolves (spec/zones/mx.test.zone): two hosts, so a
-- plan asks MX, then A and AAAA of each host.
M.INPUT = "postmaster@backup.mx.test"
M.HOSTS = {
  { name = "mx1.backup.mx.test", pref = 10, addrs = { "192.0.2.11", "2001:db8::11" } },
  { name = "mx2.backup.mx.test", pref = 20, addrs = { "192.0.2.12" } },
}

--- The first nameserver's faults: a fault server answering every query
-- this way (rules), or a UDP port where nothing listens (dead: ICMP port
-- unreachable). timeout: the per-try timeout to use (seconds).
M.FAULTS = {
  { name = "SERVFAIL", rules = { default = "servfail" }, timeout = 2 },
  { name = "REFUSED", rules = { default = "refused" }, timeout = 2 },
  { name = "NOTIMP", rules = { default = "notimp" }, timeout = 2 },
  { name = "a malformed reply", rules = { default = { malformed = true } }, timeout = 2 },
  { name = "silence", rules = { default = "drop" }, timeout = 0.3 },
  { name = "ICMP port unreachable", dead = true, timeout = 2 },
}

--- first(case) -> address of the first nameserver, fault server or nil.
function M.first(case)
  if case.dead then return "127.0.0.1:" .. util.dead_port() end
  local f = fault.start(case.rules)
  return f.addr, f
end

--- failover(case, resolve, second) -> plan, fault server log (or nil).
-- With the case's server first and `second` (Knot) second, the plan is
-- the one Knot's data gives, and the first server was asked.
function M.failover(case, resolve, second)
  local first, f = M.first(case)
  local ok, p, msg, code = pcall(resolve, {
    nameservers = { first, second }, timeout = case.timeout, tries = 1,
  }, M.INPUT)
  local log = f and f.queries()
  if f then f.stop() end
  assert(ok, p)
  assert(p, ("%s: expected a plan, got %s: %s"):format(case.name, tostring(code), tostring(msg)))
  assert.same(M.HOSTS, plans.hosts_of(p))
  if log then
    assert.is_true(#log >= 1, case.name .. ": the first server was never asked")
  end
  return p, log
end

--- health(resolve_all, second, n, health) -> the number of queries the
-- silent first server received for n (default 20) plans in a row on one
-- resolver with `health` seconds (default: the resolver's default). Every
-- plan must succeed from `second`.
function M.health_queries(resolve_all, second, n, health)
  n = n or 20
  local f = fault.start { default = "drop" }
  local inputs = {}
  for i = 1, n do inputs[i] = M.INPUT end
  local ok, results = pcall(resolve_all, {
    nameservers = { f.addr, second }, timeout = 0.2, tries = 1, health = health,
  }, inputs)
  local queries = f.queries()
  f.stop()
  assert(ok, results)
  assert.equal(n, #results)
  for i, r in ipairs(results) do
    assert(r[1], ("plan %d: %s: %s"):format(i, tostring(r[3]), tostring(r[2])))
    assert.same(M.HOSTS, plans.hosts_of(r[1]))
  end
  return #queries
end

--- health(resolve_all, second): 20 plans in a row against a silent first
-- server cost one timeout (one query to it), not 20.
function M.health(resolve_all, second)
  assert.equal(1, M.health_queries(resolve_all, second, 20))
end

return M
