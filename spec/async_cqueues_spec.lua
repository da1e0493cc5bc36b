-- mxroute under cqueues (doc/async.md): the resolver is a cqueues
-- pollable as it is, and inside a controller resolve/targets wait with
-- cqueues.poll by themselves, suspending only the calling thread, which
-- wakes only for its own plan.
local cases = require "support.async_cases"
local cqueues = require "cqueues"

local srv, f

local function resolver(opts) return cases.resolver(srv.addr, opts) end
local function fault_resolver(opts) return cases.fault_resolver(f.addr, opts) end

-- Run the controller to the end; fail the test on an error in a thread.
local function loop(cq)
  local ok, err = cq:loop()
  assert(ok, tostring(err))
  assert.equal(0, cq:count()) -- no thread left behind (the driver ended)
end

-- Run each task as a thread of a new controller, to the end.
local function run(tasks)
  local cq = cqueues.new()
  for _, fn in ipairs(tasks) do cq:wrap(fn) end
  loop(cq)
end

-- Count cqueues.poll calls per thread while fn runs: a thread that waits
-- only for its own plan polls once per lookup.
local function counting_polls(fn)
  local real = cqueues.poll
  local counts = {}
  cqueues.poll = function(...)
    local co = coroutine.running()
    counts[co] = (counts[co] or 0) + 1
    return real(...)
  end
  local ok, err = pcall(fn)
  cqueues.poll = real
  assert(ok, err)
  return counts
end

describe("mxroute under cqueues", function()
  setup(function() srv, f = cases.servers { load = cases.N } end)
  teardown(function() if f then f.stop() end end)

  it("takes the resolver as a pollable as it is: cqueues.poll(r) then r:step()", function()
    local r = resolver { wait = "block" }
    local cq = cqueues.new()
    local plan, polls = nil, 0
    cq:wrap(function()
      local q = r:submit("backup.mx.test")
      while not q:done() do
        local ready = cqueues.poll(r)
        polls = polls + 1
        assert.is_true(ready == r or ready == nil) -- ready, or its timeout passed
        r:step()
      end
      plan = q:result()
    end)
    loop(cq)
    assert.equal("mx1.backup.mx.test", plan.hosts[1].name)
    assert.is_true(polls >= 2) -- the MX answer, then the addresses
    r:close()
  end)

  it("waits with cqueues.poll inside a controller: another thread keeps running", function()
    local r = fault_resolver { timeout = 1, tries = 1 }
    local ticks, code, done = 0, nil, false
    local wall = cases.assert_sleeps(function()
      run {
        function()
          code = select(3, r:resolve("never.test"))
          done = true
        end,
        function()
          while not done do
            cqueues.sleep(0.05)
            ticks = ticks + 1
          end
        end,
      }
    end)
    assert.equal("TIMEOUT", code)
    assert.is_true(ticks >= 10, "the other thread ticked " .. ticks .. " times in " .. wall .. " s")
    r:close()
  end)

  it("wakes each thread only for its own plan", function()
    local r = resolver()
    local threads, got, tasks = {}, {}, {}
    for i, d in ipairs(cases.DOMAINS) do
      tasks[i] = function()
        threads[coroutine.running()] = d
        local p, _, code = r:resolve(d)
        got[d] = p and p.domain or code
      end
    end
    local counts = counting_polls(function() run(tasks) end)
    for _, d in ipairs(cases.DOMAINS) do
      assert.equal(cases.expected(d), got[d])
    end
    local others = 0
    for co, n in pairs(counts) do
      if threads[co] then
        assert.equal(1, n, threads[co] .. " was woken " .. n .. " times")
      else
        others = others + 1 -- the driver
      end
    end
    assert.equal(1, others)
    r:close()
  end)

  it("completes 1000 plans in flight at once from 1000 threads, each woken once", function()
    local r = fault_resolver { timeout = 1.5, tries = 3 } -- retries: see async_spec
    local load, peak, threads = cases.load_counter(r), 0, {}
    local counts = counting_polls(function()
      local cq = cqueues.new()
      cq:wrap(function()
        for b = 0, cases.N - 1, 100 do
          for i = b + 1, b + 100 do
            cq:wrap(function()
              threads[#threads + 1] = coroutine.running()
              load.resolve(i)
            end)
          end
          cqueues.sleep(0.015)
          peak = math.max(peak, r:pending())
        end
      end)
      loop(cq)
    end)
    load.check(peak)
    cases.assert_woken_once(counts, threads)
    r:close()
  end)

  it("lets the others complete while one thread waits for an answer that never comes", function()
    local r = fault_resolver { timeout = 2, tries = 1 }
    cases.assert_race(r, run)
    r:close()
  end)

  it("yields the best level of targets while a backup host is still resolving", function()
    local r = fault_resolver()
    cases.assert_lazy(f, r, run)
    r:close()
  end)

  it("reports a targets failure in the state, inside a controller too", function()
    local r = resolver()
    local cq = cqueues.new()
    local st0, n = nil, 0
    cq:wrap(function()
      local it, st = r:targets("nosuch.mx.test")
      st0 = st
      for _ in it, st do n = n + 1 end
    end)
    loop(cq)
    assert.equal(0, n)
    assert.equal("NXDOMAIN", st0.code)
    assert.equal("string", type(st0.message))
    r:close()
  end)

  it("wakes the waiting threads with CANCELLED when the resolver is closed", function()
    local r = fault_resolver()
    cases.assert_close_wakes(r, run, function()
      cqueues.sleep(0.1)
      r:close()
    end)
  end)

  it("lets a submit callback's error out of the loop, and the waiters carry on", function()
    local r = resolver()
    local cq = cqueues.new()
    local plan
    r:submit("simple.mx.test", function() error("callback fails") end)
    cq:wrap(function() plan = r:resolve("backup.mx.test") end)
    local ok, err = cq:loop()
    if ok then -- the waiter may have finished first; then the error is still to come
      assert.is_truthy(plan)
    else
      assert.matches("callback fails", tostring(err))
      ok, err = cq:loop()
      assert(ok, tostring(err))
    end
    assert.equal("backup.mx.test", plan.domain)
    assert.equal(0, cq:count())
    r:close()
  end)

  it("runs the callbacks of r:submit made in a thread from the controller", function()
    local r = fault_resolver()
    local got
    run { function() got = cases.submit_two(r) end }
    cases.check_submitted(r, got)
    r:close()
  end)

  it("supports wait = 'yield' in a thread: the thread polls the resolver itself", function()
    local r = resolver { wait = "yield" }
    local got, tasks = {}, {}
    for i, d in ipairs { "simple.mx.test", "backup.mx.test", "pool.mx.test" } do
      tasks[i] = function()
        local p = r:resolve(d)
        got[#got + 1] = p.domain
      end
    end
    run(tasks)
    table.sort(got)
    assert.same({ "backup.mx.test", "pool.mx.test", "simple.mx.test" }, got)
    r:close()
  end)

  it("supports wait = function(fd, events, timeout) written with cqueues.poll", function()
    local calls = {}
    local function wait(fd, events, timeout)
      calls[#calls + 1] = { fd = fd, events = events, timeout = timeout }
      cqueues.poll({ pollfd = function() return fd end, events = function() return events end,
                     timeout = function() return timeout end })
    end
    local r = fault_resolver { wait = wait }
    local got, ticks = {}, 0
    run {
      cases.slow_lookups(r, got),
      function()
        while not got.done do
          cqueues.sleep(0.02)
          ticks = ticks + 1
        end
      end,
    }
    cases.check_slow_lookups(got)
    assert.is_true(#calls >= 1)
    for _, c in ipairs(calls) do
      assert.equal(r:pollfd(), c.fd)
      assert.equal("r", c.events)
      assert.equal("number", type(c.timeout))
    end
    assert.is_true(ticks >= 5, "the other thread ticked " .. ticks .. " times during the lookup")
    r:close()
  end)
end)
