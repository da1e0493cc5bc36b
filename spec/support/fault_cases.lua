--- The broken nameservers that every resolver of mxroute must survive, as
-- rules for the fault server (support/fault.lua), shared by the specs
-- that drive the core resolver (resolve_fault_spec.lua) and mxroute.ngx
-- (nginx_spec.lua) through them, so both meet the very same faults.
--
--     local cases = require "support.fault_cases"
--     local f = fault.start(cases.rules { ["x.test"] = { MX = cases.MX } })
--     local queries, replies, last_query, first_reply =
--       cases.exchanges(f.log(), "^lt%d%.test$")
--     cases.assert_parallel(plan_of_parallel_test, f)
--     cases.assert_tc(plan_of_tc_test, f)
--
-- The names (each answers over UDP and TCP alike):
--
--   ok.test          MX 10 mx.ok.test (192.0.2.1, 2001:db8::1): the baseline
--   servfail.test, refused.test, nxdomain.test, formerr.test
--                    that rcode for MX; the name has an A record, so a
--                    fallback to the implicit MX would give a plan
--   drop.test        MX queries never answered (A as above)
--   short.test, short11.test, empty.test
--                    replies cut to 5, 11 and 0 octets
--   truncated.test, count.test, nameloop.test, rdlength.test
--                    malformed replies of that kind
--   wrongid.test, wrongid-ok.test
--                    a reply with a wrong ID (then the right one)
--   qr0.test, opcode.test
--                    the query sent back (QR=0); opcode 2 in the reply
--   wrongname.test, wrongtype.test, noquestion.test
--                    a reply about another question, or about none
--   foreign.test     answer records owned by evil.test
--   tc.test          UDP answers truncated (TC=1): the data only over TCP
--   parallel.test    MX 10 a., 10 b., 20 c.parallel.test, whose every
--                    address answer comes 200 ms late
--   rcode6.test ... rcode15.test
--                    that rcode, with MX and A records beside it
--
-- Every broken reply carries MX 10 `mx.ok.test`, so that a resolver taking
-- it as data gives a plan where it must fail.
local assert = require "luassert"
local plans = require "support.plans"

local M = {}

--- The MX records of every case: MX 10 mx.ok.test.
M.MX = { { 10, "mx.ok.test" } }

--- A fresh rules table holding every case above, plus the rules of
-- `extra` (name -> rule; they replace a case of the same name).
function M.rules(extra)
  local MX = M.MX
  local rules = {
    ["mx.ok.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
    ["ok.test"] = { MX = MX },

    ["servfail.test"] = { A = "192.0.2.2", types = { MX = { rcode = "SERVFAIL" } } },
    ["refused.test"] = { A = "192.0.2.2", types = { MX = { rcode = "REFUSED" } } },
    ["nxdomain.test"] = { A = "192.0.2.2", types = { MX = { rcode = "NXDOMAIN" } } },
    ["drop.test"] = { A = "192.0.2.2", types = { MX = { drop = true } } },
    ["formerr.test"] = { A = "192.0.2.2", types = { MX = { rcode = "FORMERR" } } },

    ["short.test"] = { MX = MX, short = true },
    ["short11.test"] = { MX = MX, short = 11 },
    ["empty.test"] = { MX = MX, short = 0 },
    ["truncated.test"] = { MX = MX, malformed = "truncated" },
    ["count.test"] = { MX = MX, malformed = "count" },
    ["nameloop.test"] = { MX = MX, malformed = "loop" },
    ["rdlength.test"] = { MX = MX, malformed = "rdlength" },
    ["wrongid.test"] = { MX = MX, wrong_id = true },
    ["wrongid-ok.test"] = { MX = MX, wrong_id = true, then_ok = true },
    ["qr0.test"] = { MX = MX, qr0 = true },
    ["opcode.test"] = { MX = MX, opcode = 2 },
    ["wrongname.test"] = { MX = MX, question = "ok.test" },
    ["wrongtype.test"] = { MX = MX, qtype = "A" },
    ["noquestion.test"] = { MX = MX, question = false },
    ["foreign.test"] = { MX = MX, owner = "evil.test" },

    ["tc.test"] = { MX = MX, tc = true },

    ["parallel.test"] = { MX = { { 10, "a.parallel.test" }, { 10, "b.parallel.test" },
                                 { 20, "c.parallel.test" } } },
    ["a.parallel.test"] = { A = "192.0.2.21", AAAA = "2001:db8::21", delay = 200 },
    ["b.parallel.test"] = { A = "192.0.2.22", delay = 200 },
    ["c.parallel.test"] = { AAAA = "2001:db8::23", delay = 200 },
  }
  for rc = 6, 15 do
    rules[("rcode%d.test"):format(rc)] = { rcode = rc, keep_answers = true, MX = MX, A = "192.0.2.9" }
  end
  for name, rule in pairs(extra or {}) do rules[name] = rule end
  return rules
end

--- The query entries and reply events of a fault server log whose name
-- matches the Lua pattern `pattern`, and the time of the last of those
-- queries and of the first of those replies (0 and math.huge when none):
-- last_query < first_reply when every query was out before any reply.
function M.exchanges(log, pattern)
  local queries, replies = {}, {}
  local last_query, first_reply = 0, math.huge
  for _, e in ipairs(log) do
    if e.name and e.name:match(pattern) then
      if e.event == nil then
        queries[#queries + 1] = e
        last_query = math.max(last_query, e.t)
      elseif e.event == "reply" then
        replies[#replies + 1] = e
        first_reply = math.min(first_reply, e.t)
      end
    end
  end
  return queries, replies, last_query, first_reply
end

--- The hosts of a plan of ok.test (and of the cases that end up right).
M.OK_HOSTS = { { name = "mx.ok.test", pref = 10, addrs = { "192.0.2.1", "2001:db8::1" } } }

--- Assert what a plan of parallel.test and the log of its server `f` show
-- (rule 7): the three hosts with their addresses, and the six address
-- queries (A and AAAA of each host, once) all sent before the first of
-- their delayed answers came back.
function M.assert_parallel(p, f)
  local hosts = plans.hosts_of(p)
  table.sort(hosts, function(a, b) return a.name < b.name end)
  assert.same({
    { name = "a.parallel.test", pref = 10, addrs = { "192.0.2.21", "2001:db8::21" } },
    { name = "b.parallel.test", pref = 10, addrs = { "192.0.2.22" } },
    { name = "c.parallel.test", pref = 20, addrs = { "2001:db8::23" } },
  }, hosts)
  local queries, replies, last_query, first_reply = M.exchanges(f.log(), "^%a%.parallel%.test$")
  assert.equal(6, #queries)
  assert.equal(6, #replies)
  assert.is_true(last_query < first_reply,
                 ("last host query at %.3f s, first host reply at %.3f s"):format(last_query, first_reply))
end

--- Assert what a plan of tc.test and the log of its server `f` show: the
-- MX query asked over UDP, answered TC=1, asked again over TCP, and the
-- plan made of the TCP answer.
function M.assert_tc(p, f)
  assert.same(M.OK_HOSTS, plans.hosts_of(p))
  local qs = f.queries { name = "tc.test", type = "MX" }
  assert.equal(2, #qs)
  assert.equal("udp", qs[1].proto)
  assert.equal("tc", qs[1].action)
  assert.equal("tcp", qs[2].proto)
  assert.equal("answer", qs[2].action)
  assert.is_true(qs[1].t <= qs[2].t)
end

return M
