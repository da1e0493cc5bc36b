-- The in-flight merge (DESIGN 8, issue "Cache and TTLs" item 2): plans of
-- one resolver that need the same RRset at the same time share one query,
-- with the cache on and off; cancelling one plan does not cancel the
-- query the others wait for; r:cache_stats().merged counts the lookups
-- that joined one in flight. The fault server's log says what the server
-- saw. mxroute.ngx: spec/observe_ngx_spec.lua.
local mxroute = require "mxroute"
local fault = require "support.fault"

local N = 50

local RULES = {
  -- the MX answer is held back, so that every plan waits for it
  ["merge.test"] = { MX = { { 10, "mx.merge.test" } }, delay = 100 },
  ["mx.merge.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
}

describe("in-flight merge", function()
  local f
  setup(function() f = fault.start(RULES) end)
  teardown(function() if f then f.stop() end end)

  for _, cache in ipairs { true, false } do
    local what = cache and "cache on" or "cache off"

    it(N .. " simultaneous plans for one domain send one MX, one A, one AAAA query (" .. what .. ")", function()
      local from = #f.log()
      local r = mxroute.resolver { nameservers = { f.addr }, cache = cache,
                                   timeout = 2, tries = 1 }
      local qs = {}
      for i = 1, N do qs[i] = r:submit("user" .. i .. "@merge.test") end
      while r:timeout() do r:step(r:timeout()) end
      for i = 1, N do
        local plan, msg = qs[i]:result()
        assert.is_table(plan, msg)
        assert.equal(2, #plan.targets)
      end
      assert.equal(1, f.count("merge.test", "MX", from))
      assert.equal(1, f.count("mx.merge.test", "A", from))
      assert.equal(1, f.count("mx.merge.test", "AAAA", from))
      local s = r:stats()
      assert.equal(3, s.queries)
      -- every other plan joined each of the three lookups
      assert.equal(3 * (N - 1), s.merged)
      assert.equal(3 * (N - 1), r:cache_stats().merged)
      assert.equal(N, s.plans.ok)
      r:close()
    end)

    it("cancelling the plan that started the query does not cancel it for the others (" .. what .. ")", function()
      local from = #f.log()
      local r = mxroute.resolver { nameservers = { f.addr }, cache = cache,
                                   timeout = 2, tries = 1 }
      local qs = {}
      for i = 1, N do qs[i] = r:submit("user" .. i .. "@merge.test") end
      r:step(0)
      assert.equal(N, r:pending())
      -- the first plan asked the MX query; another one goes too
      qs[1]:cancel()
      qs[N]:cancel()
      while r:timeout() do r:step(r:timeout()) end
      assert.equal("CANCELLED", select(3, qs[1]:result()))
      assert.equal("CANCELLED", select(3, qs[N]:result()))
      for i = 2, N - 1 do
        local plan, msg = qs[i]:result()
        assert.is_table(plan, msg)
      end
      assert.equal(1, f.count("merge.test", "MX", from))
      assert.equal(1, f.count("mx.merge.test", "A", from))
      assert.equal(1, f.count("mx.merge.test", "AAAA", from))
      assert.equal(0, r:stats().timeouts)
      assert.same({ ok = N - 2, permanent = 0, temporary = 2, loop = 0,
                    invalid = 0 }, r:stats().plans)
      r:close()
    end)
  end

  it("cancelling every plan waiting for a query leaves nothing in flight", function()
    local r = mxroute.resolver { nameservers = { f.addr }, cache = false,
                                 timeout = 2, tries = 1 }
    local qs = {}
    for i = 1, 5 do qs[i] = r:submit("user" .. i .. "@merge.test") end
    for i = 1, 5 do qs[i]:cancel() end
    while r:timeout() do r:step(r:timeout()) end
    for i = 1, 5 do assert.equal("CANCELLED", select(3, qs[i]:result())) end
    assert.equal(0, r:pending())
    r:close()
  end)
end)
