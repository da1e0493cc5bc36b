-- mxroute under luv (doc/async.md): mxroute.luv's scheduler suspends only
-- the coroutine that asks, resumes it only when its own plan is ready, and
-- leaves no handle behind, so uv.run() returns once the lookups are done.
local cases = require "support.async_cases"
local uv = require "luv"
local mxroute = require "mxroute"
local mxluv = require "mxroute.luv"

local srv, f

local function resolver(opts) return mxluv.resolver(cases.options(srv.addr, opts), uv) end
local function fault_resolver(opts) return mxluv.resolver(cases.fault_options(f.addr, opts), uv) end

-- A fresh mxroute.luv whose coroutine.resume counts, per coroutine, how
-- often the scheduler resumed it.
local function counting_waiter(opts)
  local colib = coroutine
  local real = colib.resume
  local counts = {}
  colib.resume = function(co, ...) -- luacheck: ignore 122
    counts[co] = (counts[co] or 0) + 1
    return real(co, ...)
  end
  package.loaded["mxroute.luv"] = nil
  local ok, m = pcall(require, "mxroute.luv")
  colib.resume = real -- luacheck: ignore 122
  package.loaded["mxroute.luv"] = mxluv
  assert(ok, m)
  return m.waiter(uv, opts), counts
end

-- Poll and timer handles still open (the fault server's process handle
-- is not ours).
local function our_handles()
  local n = 0
  uv.walk(function(h)
    local t = uv.handle_get_type and uv.handle_get_type(h) or tostring(h)
    if t:find("poll") or t:find("timer") then n = n + 1 end
  end)
  return n
end

-- uv.run() until nothing is left; it must return by itself.
local function run()
  uv.run()
  assert.is_false(uv.loop_alive())
  assert.equal(0, our_handles())
end

local function spawn(fn)
  local co = coroutine.create(fn)
  local ok, err = coroutine.resume(co)
  assert(ok, err)
  return co
end

-- Spawn each task, then run().
local function run_all(tasks)
  for _, fn in ipairs(tasks) do spawn(fn) end
  run()
end

describe("mxroute under luv", function()
  setup(function() srv, f = cases.servers { load = cases.N } end)
  teardown(function() if f then f.stop() end end)

  it("suspends only the asking coroutine: a timer keeps firing, no CPU is used", function()
    local r = fault_resolver { timeout = 1, tries = 1 }
    local ticks, code, done = 0, nil, false
    local tick = uv.new_timer()
    tick:start(50, 50, function()
      ticks = ticks + 1
      if done then tick:close() end
    end)
    local wall = cases.assert_sleeps(function()
      local co = spawn(function()
        code = select(3, r:resolve("never.test"))
        done = true
      end)
      assert.equal("suspended", coroutine.status(co))
      run()
    end)
    assert.equal("TIMEOUT", code)
    assert.is_true(ticks >= 10, "the timer fired " .. ticks .. " times in " .. wall .. " s")
    r:close()
  end)

  it("resumes each coroutine only for its own plan", function()
    local sched, counts = counting_waiter()
    local r = mxroute.resolver { nameservers = { srv.addr }, timeout = 1, wait = sched }
    local cos, got = {}, {}
    for _, d in ipairs(cases.DOMAINS) do
      cos[d] = spawn(function()
        local p, _, code = r:resolve(d)
        got[d] = p and p.domain or code
      end)
    end
    run()
    for _, d in ipairs(cases.DOMAINS) do
      assert.equal(cases.expected(d), got[d])
      assert.equal(1, counts[cos[d]], d .. " was resumed " .. tostring(counts[cos[d]]) .. " times")
    end
    r:close()
  end)

  it("completes 1000 plans in flight at once from 1000 coroutines, each resumed once", function()
    local sched, counts = counting_waiter()
    -- retries in case the fault server's socket buffer drops a query
    local r = mxroute.resolver { nameservers = { f.addr }, timeout = 1.5, tries = 3, wait = sched }
    local load, peak, cos = cases.load_counter(r), 0, {}
    local b = 0
    local starter = uv.new_timer()
    starter:start(0, 15, function()
      for i = b + 1, b + 100 do
        cos[#cos + 1] = spawn(function() load.resolve(i) end)
      end
      b = b + 100
      peak = math.max(peak, r:pending())
      if b >= cases.N then starter:close() end
    end)
    run()
    load.check(peak)
    cases.assert_woken_once(counts, cos)
    r:close()
  end)

  it("lets the others complete while one coroutine waits for an answer that never comes", function()
    local r = fault_resolver { timeout = 2, tries = 1 }
    cases.assert_race(r, run_all)
    r:close()
  end)

  it("yields the best level of targets while a backup host is still resolving", function()
    local r = fault_resolver()
    cases.assert_lazy(f, r, run_all)
    r:close()
  end)

  it("wakes the waiting coroutines with CANCELLED when the resolver is closed", function()
    local r = fault_resolver()
    cases.assert_close_wakes(r, run_all, function()
      local closer = uv.new_timer()
      closer:start(100, 0, function()
        closer:close()
        r:close()
      end)
    end)
  end)

  it("runs the callbacks of r:submit from the loop", function()
    local r = fault_resolver()
    local got = cases.submit_two(r)
    run()
    cases.check_submitted(r, got)
    r:close()
  end)

  it("blocks instead outside a coroutine, and needs no uv.run() then", function()
    local r = resolver()
    local p = assert(r:resolve("backup.mx.test"))
    assert.equal("mx1.backup.mx.test", p.hosts[1].name)
    local n = 0
    for _ in r:targets("simple.mx.test") do n = n + 1 end
    assert.equal(2, n)
    assert.equal(0, our_handles())
    r:close()
  end)

  it("hands errors of resumed coroutines and of callbacks to on_error", function()
    local errs = {}
    local sched = mxluv.waiter(uv, { on_error = function(e) errs[#errs + 1] = tostring(e) end })
    local r = mxroute.resolver { nameservers = { srv.addr }, timeout = 1, wait = sched }
    r:submit("addr.nomx.test", function() error("callback fails") end)
    spawn(function()
      r:resolve("simple.mx.test")
      error("coroutine fails")
    end)
    run()
    table.sort(errs)
    assert.equal(2, #errs)
    assert.matches("callback fails", errs[1])
    assert.matches("coroutine fails", errs[2])
    r:close()
  end)

  it("supports wait = function(fd, events, timeout) written with a uv poll handle", function()
    -- one coroutine at a time: libuv allows one poll handle per descriptor
    local calls = 0
    local function wait(fd, events, timeout)
      calls = calls + 1
      local co = coroutine.running()
      local poll, timer = uv.new_poll(fd), uv.new_timer()
      local function wake()
        if not poll:is_closing() then poll:close() end
        if not timer:is_closing() then timer:close() end
        assert(coroutine.resume(co))
      end
      poll:start(events, wake)
      timer:start(math.ceil(timeout * 1000), 0, wake)
      coroutine.yield()
    end
    local r = mxroute.resolver { nameservers = { f.addr }, timeout = 5, wait = wait }
    local got, ticks = {}, 0
    local tick = uv.new_timer()
    tick:start(20, 20, function()
      ticks = ticks + 1
      if got.done then tick:close() end
    end)
    run_all { cases.slow_lookups(r, got) }
    cases.check_slow_lookups(got)
    assert.is_true(calls >= 1)
    assert.is_true(ticks >= 5, "the timer fired " .. ticks .. " times during the lookup")
    r:close()
  end)

  it("validates its arguments", function()
    assert.has_error(function() mxluv.waiter({}) end)
    assert.has_error(function() mxluv.waiter(uv, { on_error = 1 }) end)
    assert.has_error(function() mxluv.resolver({ wait = "block" }, uv) end)
    assert.has_error(function() mxluv.resolver({ bogus = 1 }, uv) end)
  end)
end)
