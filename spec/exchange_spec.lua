-- The exchange through the C engine (DESIGN 9): failover from a broken
-- first nameserver to Knot, server health, the most telling code when
-- every server fails, socket rotation, DNS 0x20, the in-flight bound under
-- load, and the exchange options. The failover and health cases are
-- shared with mxroute.ngx (support/exchange_cases.lua).
local cases = require "support.exchange_cases"
local fault = require "support.fault"
local knot = require "support.knot"
local plans = require "support.plans"
local mxroute = require "mxroute"

describe("the exchange of the C engine", function()
  local srv
  local last_stats -- the stats of the last resolver resolve() made

  setup(function() srv = knot.shared() end)

  local function resolve(opts, input)
    local r = mxroute.resolver(opts)
    local p, msg, code = r:resolve(input)
    last_stats = r:stats()
    r:close()
    return p, msg, code
  end

  local function resolve_all(opts, inputs)
    local r = mxroute.resolver(opts)
    local out = {}
    for i, input in ipairs(inputs) do out[i] = { r:resolve(input) } end
    last_stats = r:stats()
    r:close()
    return out
  end

  describe("moves a query to the next nameserver", function()
    for _, c in ipairs(cases.FAULTS) do
      it("after " .. c.name .. " from the first, and the plan comes from the second", function()
        cases.failover(c, resolve, srv.addr)
        assert.is_true(last_stats.server_failures[1] >= 1)
        assert.equal(0, last_stats.server_failures[2])
        if c.name ~= "silence" then
          -- at once: no try waited for its timeout
          assert.equal(0, last_stats.timeouts)
        end
      end)
    end
  end)

  describe("server health", function()
    it("asks a silent first server once for 20 plans in a row, not 20 times", function()
      cases.health(resolve_all, srv.addr)
      assert.equal(1, last_stats.timeouts)
    end)

    it("asks it again for every plan when health is short (the same test without health)", function()
      local n = cases.health_queries(resolve_all, srv.addr, 4, 1e-6)
      assert.is_true(n >= 4, "the silent server got " .. n .. " queries")
    end)
  end)

  describe("when every server fails every try", function()
    local function fails(rules1, rules2, want)
      local f1, f2 = fault.start(rules1), fault.start(rules2)
      local p, msg, code = resolve({ nameservers = { f1.addr, f2.addr }, timeout = 0.2, tries = 2 },
                                   cases.INPUT)
      local n1, n2 = #f1.queries(), #f2.queries()
      f1.stop()
      f2.stop()
      assert.is_nil(p)
      assert.equal(want, code, msg)
      assert.equal("temporary", mxroute.class(code))
      assert.equal(2, n1)
      assert.equal(2, n2)
    end

    it("fails with the SERVFAIL of one rather than the TIMEOUT of the other", function()
      fails({ default = "servfail" }, { default = "drop" }, "SERVFAIL")
      fails({ default = "drop" }, { default = "servfail" }, "SERVFAIL")
    end)

    it("reports NOTIMP as SERVFAIL, temporary, not FORMERR", function()
      fails({ default = "notimp" }, { default = "notimp" }, "SERVFAIL")
    end)

    it("fails with REFUSED when both refuse", function()
      fails({ default = "refused" }, { default = "refused" }, "REFUSED")
    end)

    it("fails with FORMERR after malformed replies and silence", function()
      fails({ default = { malformed = true } }, { default = "drop" }, "FORMERR")
    end)
  end)

  describe("spoofing resistance", function()
    it("changes UDP sockets every udp_queries queries", function()
      local r = mxroute.resolver { nameservers = { srv.addr }, timeout = 2, udp_queries = 4 }
      local qs = {}
      for i = 1, 8 do qs[i] = r:submit("simple.mx.test") end
      qs[9] = r:submit("backup.mx.test")
      while r:pending() > 0 do r:step(r:timeout() or 0) end
      for _, q in ipairs(qs) do assert.truthy(q:result()) end
      local s = r:stats()
      r:close()
      -- the 8 lookups of simple.mx.test share their queries (merge)
      assert.is_true(s.merged >= 7)
      -- MX x2, then A/AAAA of 3 hosts: 8 queries, 4 per socket
      assert.equal(8, s.queries)
      assert.equal(2, s.sockets)
    end)

    it("asks with a random case (DNS 0x20) when dns0x20 is on, and takes the echoed answer", function()
      local f = fault.start {
        ["x20.test"] = { MX = { { 10, "mail.x20.test" } } },
        ["mail.x20.test"] = { A = "192.0.2.99" },
      }
      local p, msg, code = resolve({ nameservers = { f.addr }, dns0x20 = true, timeout = 1 },
                                   "user@x20.test")
      local names = {}
      for _, q in ipairs(f.queries()) do names[#names + 1] = q.name end
      f.stop()
      assert(p, msg or code)
      assert.same({ { name = "mail.x20.test", pref = 10, addrs = { "192.0.2.99" } } }, plans.hosts_of(p))
      local upper = false
      for _, n in ipairs(names) do upper = upper or n:find("%u") ~= nil end
      assert.is_true(upper, "no upper-case letter in " .. table.concat(names, " "))
    end)

    it("works with 0x20 against Knot, which echoes the case", function()
      local p = resolve({ nameservers = { srv.addr }, dns0x20 = true, timeout = 1 }, cases.INPUT)
      assert.same(cases.HOSTS, plans.hosts_of(p))
    end)
  end)

  describe("the in-flight bound", function()
    it("sends no query while max_inflight are unanswered", function()
      local f = fault.start { default = { rcode = "NOERROR", delay = 50, MX = { { 0, "." } } } }
      local r = mxroute.resolver { nameservers = { f.addr }, timeout = 2, max_inflight = 1 }
      local qs = {}
      for i = 1, 4 do qs[i] = r:submit(("b%d.test"):format(i)) end
      while r:pending() > 0 do r:step(r:timeout() or 0) end
      local events = {}
      for _, e in ipairs(f.log()) do
        if e.name then events[#events + 1] = e.event == "reply" and "R" or "Q" end
      end
      r:close()
      f.stop()
      for i = 1, 4 do assert.equal("NULLMX", select(3, qs[i]:result())) end
      -- one at a time: each query waits for the previous reply
      assert.equal("QRQRQRQR", table.concat(events))
    end)
  end)

  describe("load", function()
    it("completes 50,000 plans submitted at once against a server answering after 100 ms", function()
      local N = 50000
      local f = fault.start {
        default = { rcode = "NOERROR", delay = 100, MX = { { 10, "mx.load.test" } } },
        ["mx.load.test"] = { A = "192.0.2.7", delay = 100 },
      }
      local r = mxroute.resolver { nameservers = { f.addr }, timeout = 3, tries = 2,
                                   max_inflight = 2000 }
      local qs = {}
      for i = 1, N do qs[i] = r:submit(("d%d.load.test"):format(i)) end
      while r:pending() > 0 do r:step(r:timeout() or 0) end
      local bad, codes = 0, {}
      for i = 1, N do
        local p, _, code = qs[i]:result()
        if not p or p.hosts[1].name ~= "mx.load.test" then
          bad = bad + 1
          codes[tostring(code)] = (codes[tostring(code)] or 0) + 1
        end
      end
      local s = r:stats()
      r:close()
      f.stop()
      local why = {}
      for k, v in pairs(codes) do why[#why + 1] = k .. "=" .. v end
      assert.equal(0, bad, table.concat(why, " "))
      -- no loss by our own making: with the bound, a try times out only
      -- when the machine stalls the server for seconds (and is retried)
      assert.is_true(s.timeouts <= N / 1000, s.timeouts .. " tries timed out")
      -- one MX query per domain; the address lookups share queries
      assert.is_true(s.merged > 0)
    end)
  end)

  describe("options", function()
    for _, c in ipairs {
      { "max_inflight", 0 }, { "max_inflight", 1.5 }, { "max_inflight", "8" },
      { "udp_queries", 0 }, { "udp_queries", 65536 },
      { "health", 0 }, { "health", -1 }, { "health", 0 / 0 },
      { "dns0x20", 1 }, { "dns0x20", "yes" },
    } do
      it("refuses " .. c[1] .. " = " .. tostring(c[2]) .. " with an error naming it", function()
        plans.raises_naming(c[1], function()
          mxroute.resolver { nameservers = { srv.addr }, [c[1]] = c[2] }
        end)
      end)
    end

    it("accepts every exchange option", function()
      local r = mxroute.resolver { nameservers = { srv.addr }, max_inflight = 1, udp_queries = 1,
                                   health = 5, dns0x20 = false }
      local p = r:resolve(cases.INPUT)
      local s = r:stats()
      r:close()
      assert.same(cases.HOSTS, plans.hosts_of(p))
      -- one query per socket: 5 queries, 5 sockets
      assert.equal(s.queries, s.sockets)
    end)
  end)
end)
