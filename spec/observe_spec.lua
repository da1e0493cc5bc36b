-- Observability of the C engine's resolver (README, "r:stats()" and
-- "on_query"): the counters of r:stats() (queries, answers, timeouts,
-- per-server failures, plans by class) and the on_query hook, one event
-- per finished try, called from step with what the server really saw
-- (the fault server's log). mxroute.ngx: spec/observe_ngx_spec.lua.
local mxroute = require "mxroute"
local fault = require "support.fault"

local RULES = {
  ["ok.test"] = { MX = { { 10, "mx.ok.test" } } },
  ["mx.ok.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
  ["sf.test"] = { rcode = "SERVFAIL" },
  ["silent.test"] = { drop = true },
  ["big.test"] = { MX = { { 10, "mx.ok.test" } }, tc = true },
  ["self.test"] = { MX = { { 10, "me.ok.test" } } },
  ["me.ok.test"] = { A = "192.0.2.9" },
}

-- Run every input through submit + step until done; returns the results
-- by input.
local function run(r, inputs)
  local qs = {}
  for i, input in ipairs(inputs) do qs[i] = r:submit(input) end
  while r:timeout() do r:step(r:timeout()) end
  local out = {}
  for i, q in ipairs(qs) do out[inputs[i]] = { q:result() } end
  return out
end

describe("r:stats()", function()
  local f, dead
  setup(function()
    f = fault.start(RULES)
    dead = fault.start { default = "drop" } -- never answers
  end)
  teardown(function()
    if f then f.stop() end
    if dead then dead.stop() end
  end)

  it("starts at zero, with a failure count per nameserver and no plans", function()
    local r = mxroute.resolver { nameservers = { f.addr, dead.addr } }
    assert.same({ queries = 0, answers = 0, timeouts = 0, tcp = 0, merged = 0,
                  dropped = 0, sockets = 0, server_failures = { 0, 0 },
                  plans = { ok = 0, permanent = 0, temporary = 0, loop = 0,
                            invalid = 0 } }, r:stats())
    r:close()
  end)

  it("counts queries, answers, timeouts, server failures and plans by class", function()
    local before = #f.queries()
    local r = mxroute.resolver { nameservers = { f.addr }, timeout = 0.2,
                                 tries = 2, cache = false,
                                 self = { "192.0.2.9" } }
    local res = run(r, { "ok.test", "nx.test", "sf.test", "silent.test",
                         "bad..test", "self.test", "[192.0.2.7]" })
    assert.is_table(res["ok.test"][1])
    assert.equal("NXDOMAIN", res["nx.test"][3])
    assert.equal("SERVFAIL", res["sf.test"][3])
    assert.equal("TIMEOUT", res["silent.test"][3])
    assert.equal("BADNAME", res["bad..test"][3])
    assert.equal("LOOP", res["self.test"][3])
    local s = r:stats()
    -- what the server received is what was sent
    assert.equal(#f.queries() - before, s.queries)
    -- ok: MX, A, AAAA; nx: MX; sf: 2 tries; silent: 2 tries (timeouts);
    -- self: MX and the host's A and AAAA
    assert.equal(3 + 1 + 2 + 2 + 3, s.queries)
    assert.equal(3 + 1 + 3, s.answers) -- SERVFAIL is no accepted answer
    assert.equal(2, s.timeouts)
    -- a SERVFAIL and a timeout are failures of the server that gave them
    assert.same({ 4 }, s.server_failures)
    assert.same({ ok = 2, permanent = 1, temporary = 2, loop = 1, invalid = 1 },
                s.plans) -- the literal is a plan without a query
    r:close()
  end)

  it("counts failures per nameserver, in the order they are asked", function()
    local r = mxroute.resolver { nameservers = { dead.addr, f.addr },
                                 timeout = 0.2, tries = 1, cache = false }
    local res = run(r, { "ok.test" })
    assert.is_table(res["ok.test"][1])
    local s = r:stats()
    assert.is_true(s.server_failures[1] >= 1)
    assert.equal(0, s.server_failures[2])
    assert.equal(s.server_failures[1], s.timeouts)
    assert.same({ ok = 1, permanent = 0, temporary = 0, loop = 0, invalid = 0 },
                s.plans)
    r:close()
  end)

  it("counts plans once, cancelled and cached ones too, and hands out copies", function()
    local r = mxroute.resolver { nameservers = { f.addr }, timeout = 0.2, tries = 1 }
    assert.is_table((r:resolve("ok.test")))
    assert.is_table((r:resolve("ok.test"))) -- from the cache: no query
    local q = r:submit("silent.test")
    q:cancel()
    while r:timeout() do r:step(r:timeout()) end
    assert.equal("CANCELLED", select(3, q:result()))
    local s = r:stats()
    assert.equal(3 + 1, s.queries) -- submit sent silent.test's MX query
    assert.same({ ok = 2, permanent = 0, temporary = 1, loop = 0, invalid = 0 },
                s.plans)
    s.plans.ok = 100
    assert.equal(2, r:stats().plans.ok)
    r:close()
  end)

  it("counts the class a routing hook gives the plan", function()
    local routes = mxroute.routes.new {
      hooks = function(plan) plan.targets = {} return plan end,
    }
    local r = mxroute.resolver { nameservers = { f.addr }, routes = routes }
    local plan, _, code = r:resolve("ok.test")
    assert.is_nil(plan)
    assert.equal("NOHOSTS", code)
    assert.same({ ok = 0, permanent = 1, temporary = 0, loop = 0, invalid = 0 },
                r:stats().plans)
    r:close()
  end)
end)

describe("on_query", function()
  local f
  setup(function() f = fault.start(RULES) end)
  teardown(function() if f then f.stop() end end)

  it("must be a function", function()
    assert.has_error(function()
      mxroute.resolver { nameservers = { f.addr }, on_query = "print" }
    end, "mxroute.resolver: option 'on_query': expected a function")
  end)

  it("gets one event per finished try, from step, matching the server's log", function()
    local events, in_step = {}, false
    local r = mxroute.resolver {
      nameservers = { f.addr }, timeout = 0.2, tries = 2, cache = false,
      on_query = function(ev)
        assert.is_true(in_step) -- never from inside submit or the engine
        events[#events + 1] = ev
      end,
    }
    local before = #f.queries()
    local qs = {}
    for i, input in ipairs { "ok.test", "nx.test", "sf.test", "silent.test" } do
      in_step = false
      qs[i] = r:submit(input)
    end
    assert.equal(0, #events)
    while r:timeout() do
      in_step = true
      r:step(r:timeout())
      in_step = false
    end
    for _, q in ipairs(qs) do assert.is_true(q:done()) end
    assert.equal(#f.queries() - before, #events)
    assert.equal(r:stats().queries, #events)
    local seen = {}
    for _, ev in ipairs(events) do
      assert.equal(f.addr, ev.server)
      assert.is_false(ev.tcp)
      assert.is_number(ev.rtt)
      assert.is_true(ev.rtt >= 0)
      seen[#seen + 1] = table.concat({ ev.name, ev.type, ev.status,
                                       tostring(ev.rcode) }, " ")
    end
    table.sort(seen)
    assert.same({
      "mx.ok.test A OK NOERROR",
      "mx.ok.test AAAA OK NOERROR",
      "nx.test MX OK NXDOMAIN",
      "ok.test MX OK NOERROR",
      "sf.test MX SERVFAIL SERVFAIL",
      "sf.test MX SERVFAIL SERVFAIL",
      "silent.test MX TIMEOUT nil",
      "silent.test MX TIMEOUT nil",
    }, seen)
    for _, ev in ipairs(events) do
      if ev.status == "TIMEOUT" then assert.is_true(ev.rtt >= 0.19) end
    end
    r:close()
  end)

  it("reports the TCP query after a truncated answer", function()
    local events = {}
    local r = mxroute.resolver { nameservers = { f.addr }, cache = false,
      on_query = function(ev) events[#events + 1] = ev end }
    assert.is_table((r:resolve("big.test")))
    local big = {}
    for _, ev in ipairs(events) do
      if ev.name == "big.test" then big[#big + 1] = ev end
    end
    assert.equal(2, #big)
    assert.is_false(big[1].tcp)
    assert.is_true(big[2].tcp)
    assert.equal("NOERROR", big[2].rcode)
    r:close()
  end)

  it("is not called for lookups served from the cache", function()
    local n = 0
    local r = mxroute.resolver { nameservers = { f.addr },
      on_query = function() n = n + 1 end }
    assert.is_table((r:resolve("ok.test")))
    assert.equal(3, n)
    assert.is_table((r:resolve("ok.test")))
    assert.equal(3, n)
    r:close()
  end)

  it("raises out of step like a callback; the other events come with the next step", function()
    local events, fail = {}, true
    local r = mxroute.resolver {
      nameservers = { f.addr }, cache = false,
      on_query = function(ev)
        if fail then
          fail = false
          error("hook failed")
        end
        events[#events + 1] = ev.name .. " " .. ev.type
      end,
    }
    local q = r:submit("ok.test")
    local ok, err
    while r:timeout() do
      ok, err = pcall(r.step, r, r:timeout())
      if not ok then break end
    end
    assert.is_false(ok)
    assert.matches("hook failed", err)
    while r:timeout() do r:step(r:timeout()) end
    assert.is_true(q:done())
    assert.is_table((q:result()))
    -- the first event raised; the other two came later
    assert.equal(2, #events)
    r:close()
  end)

  it("raises out of a waiting resolve(), which can be called again", function()
    local r = mxroute.resolver {
      nameservers = { f.addr }, cache = false,
      on_query = function(ev)
        if ev.name == "nx.test" then error("not that one") end
      end,
    }
    local ok, err = pcall(r.resolve, r, "nx.test")
    assert.is_false(ok)
    assert.matches("not that one", err)
    -- the resolver goes on
    assert.is_table((r:resolve("ok.test")))
    r:close()
  end)

  it("sees the server of each try when one fails over", function()
    local dead = fault.start { default = "drop" }
    local servers = {}
    local r = mxroute.resolver { nameservers = { dead.addr, f.addr },
      timeout = 0.2, tries = 1, cache = false,
      on_query = function(ev)
        if ev.name == "ok.test" then
          servers[#servers + 1] = ev.server .. " " .. ev.status
        end
      end }
    local ok, plan = pcall(r.resolve, r, "ok.test")
    dead.stop()
    assert.is_true(ok)
    assert.is_table(plan)
    assert.same({ dead.addr .. " TIMEOUT", f.addr .. " OK" }, servers)
    r:close()
  end)

  it("does not keep events without on_query", function()
    local r = mxroute.resolver { nameservers = { f.addr }, cache = false }
    assert.is_table((r:resolve("ok.test")))
    assert.is_nil(r._eng:next_event())
    r:close()
  end)
end)
