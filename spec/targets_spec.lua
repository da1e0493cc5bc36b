-- mxroute.targets, the iterator of r:targets() (mxroute and mxroute.ngx),
-- over a driver written here: targets as their level becomes final, the
-- end with the plan or the failure, close, and an error while waiting.
local targets = require "mxroute.targets"

-- A query whose targets become final `step` at a time, each time the
-- driver waits; it ends with result (a plan, or nil, message, code, info).
local function fake(list, step, result)
  local q = { ready_n = 0, done = false, cancelled = false }
  function q.ready() return q.ready_n end
  function q.target(_, i) return list[i] end
  function q.result() return (table.unpack or unpack)(result) end
  local d = { waits = 0, left = {} }
  function d.over() return q.done end
  function d.wait(_, _, need)
    d.waits = d.waits + 1
    assert.is_true(need > q.ready_n)
    if d.fail then error(d.fail, 0) end
    q.ready_n = math.min(q.ready_n + step, #list)
    if q.ready_n == #list then q.done = true end
  end
  function d.leave(_, _, cancel) d.left[#d.left + 1] = cancel end
  return q, d
end

describe("mxroute.targets", function()
  it("hands out each target once it is final, then ends with the plan", function()
    local plan = { targets = { "a", "b", "c" } }
    local q, d = fake(plan.targets, 2, { plan })
    local it, st, ctl, closing = targets.iterate(q, d)
    assert.equal(st, closing)
    assert.is_nil(ctl)
    local got = {}
    for t in it, st do got[#got + 1] = t end
    assert.same({ "a", "b", "c" }, got)
    assert.equal(2, d.waits) -- one wait per level
    assert.equal(plan, st.plan)
    assert.is_true(st.finished)
    assert.is_nil(st.closed)
    assert.same({ false }, d.left)
    assert.is_nil(it(st)) -- stays ended
  end)

  it("ends a failure with nil, message, code and the info in the state", function()
    local info = { code = "NXDOMAIN" }
    local q, d = fake({}, 1, { nil, "x.test: domain does not exist", "NXDOMAIN", info })
    q.done = true
    local it, st = targets.iterate(q, d)
    local t, msg, code = it(st)
    assert.is_nil(t)
    assert.equal("x.test: domain does not exist", msg)
    assert.equal("NXDOMAIN", code)
    assert.equal(msg, st.message)
    assert.equal(code, st.code)
    assert.equal(info, st.info)
    assert.is_nil(st.plan)
    assert.equal(0, d.waits)
  end)

  it("close cancels the rest once", function()
    local q, d = fake({ "a", "b" }, 1, { {} })
    local it, st = targets.iterate(q, d)
    assert.equal("a", it(st))
    st:close()
    st:close()
    assert.is_true(st.closed)
    assert.same({ true }, d.left)
    assert.is_nil(it(st))
    assert.is_nil(st.plan)
  end)

  it("an error while waiting closes the iteration and is raised", function()
    local q, d = fake({ "a", "b" }, 1, { {} })
    local it, st = targets.iterate(q, d)
    assert.equal("a", it(st))
    d.fail = "boom"
    assert.has_error(function() it(st) end, "boom")
    assert.is_true(st.closed)
    assert.same({ true }, d.left)
    assert.is_nil(it(st))
  end)
end)
