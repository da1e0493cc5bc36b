-- mxroute under cqueues (doc/async.md): the resolver is a cqueues
-- pollable as it is, and inside a controller resolve/targets wait with
-- cqueues.poll by themselves, suspending only the calling thread, which
-- wakes only for its own plan.
local knot = require "support.knot"
local fault = require "support.fault"
local cqueues = require "cqueues"
local mxroute = require "mxroute"

local now = cqueues.monotime

local srv, f

local N = 1000
local function rules()
  local t = {
    ["lazy.test"] = { MX = { { 10, "best.lazy.test" }, { 20, "backup.lazy.test" } } },
    ["best.lazy.test"] = { A = "192.0.2.1", AAAA = "2001:db8::1" },
    ["backup.lazy.test"] = { A = "192.0.2.2", AAAA = "2001:db8::2", delay = 1000 },
    ["never.test"] = { drop = true },
    ["quick.test"] = { MX = { { 10, "mx.quick.test" } } },
    ["mx.quick.test"] = { A = "192.0.2.3" },
    ["slowish.test"] = { MX = { { 10, "mx.quick.test" } }, delay = 200 },
  }
  for i = 1, N do
    local d = "d" .. i .. ".load.test"
    t[d] = { MX = { { 10, "mx." .. d } }, delay = 150 + (i * 37) % 151 }
    t["mx." .. d] = { A = "198.51.100." .. (i % 254 + 1), AAAA = ("2001:db8::%x"):format(i),
                      delay = 150 + (i * 53) % 151 }
  end
  return t
end

local function load_ok(p, i)
  if not p or p.domain ~= "d" .. i .. ".load.test" then return false end
  local have, want = {}, { "198.51.100." .. (i % 254 + 1), ("2001:db8::%x"):format(i) }
  for _, t in ipairs(p.targets) do have[#have + 1] = t.addr end
  table.sort(have)
  table.sort(want)
  return table.concat(have, " ") == table.concat(want, " ")
end

local function resolver(opts)
  local o = { nameservers = { srv.addr }, timeout = 1, tries = 2 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return mxroute.resolver(o)
end

local function fault_resolver(opts)
  local o = { nameservers = { f.addr }, timeout = 5, tries = 1 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return mxroute.resolver(o)
end

-- Run the controller to the end; fail the test on an error in a thread.
local function loop(cq)
  local ok, err = cq:loop()
  assert(ok, tostring(err))
  assert.equal(0, cq:count()) -- no thread left behind (the driver ended)
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
  setup(function()
    srv = knot.shared()
    f = fault.start(rules())
  end)
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
    local cq = cqueues.new()
    local ticks, code, done = 0, nil, false
    local c0, t0 = os.clock(), now()
    cq:wrap(function()
      code = select(3, r:resolve("never.test"))
      done = true
    end)
    cq:wrap(function()
      while not done do
        cqueues.sleep(0.05)
        ticks = ticks + 1
      end
    end)
    loop(cq)
    local cpu, wall = os.clock() - c0, now() - t0
    assert.equal("TIMEOUT", code)
    assert.is_true(wall >= 0.9, "waited only " .. wall .. " s")
    assert.is_true(ticks >= 10, "the other thread ticked " .. ticks .. " times in " .. wall .. " s")
    assert.is_true(cpu < 0.1, "used " .. cpu .. " s of CPU in " .. wall .. " s")
    r:close()
  end)

  it("wakes each thread only for its own plan", function()
    local r = resolver()
    local domains = { "simple.mx.test", "backup.mx.test", "pool.mx.test", "addr.nomx.test",
                      "alias.cname.test", "nosuch.mx.test", "multi.mx.test", "dup.mx.test" }
    local threads, got = {}, {}
    local counts = counting_polls(function()
      local cq = cqueues.new()
      for _, d in ipairs(domains) do
        cq:wrap(function()
          threads[coroutine.running()] = d
          local p, _, code = r:resolve(d)
          got[d] = p and p.domain or code
        end)
      end
      loop(cq)
    end)
    for _, d in ipairs(domains) do
      assert.equal(d == "nosuch.mx.test" and "NXDOMAIN" or d, got[d])
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
    local ok, bad, peak, threads = 0, {}, 0, {}
    local counts = counting_polls(function()
      local cq = cqueues.new()
      cq:wrap(function()
        for b = 0, N - 1, 100 do
          for i = b + 1, b + 100 do
            cq:wrap(function()
              threads[coroutine.running()] = true
              local p, msg = r:resolve("d" .. i .. ".load.test")
              if load_ok(p, i) then ok = ok + 1 else bad[#bad + 1] = i .. ": " .. tostring(msg) end
            end)
          end
          cqueues.sleep(0.015)
          peak = math.max(peak, r:pending())
        end
      end)
      loop(cq)
    end)
    assert.same({}, bad)
    assert.equal(N, ok)
    assert.equal(N, peak)
    local woken, more = 0, 0
    for co in pairs(threads) do
      woken = woken + 1
      if counts[co] ~= 1 then more = more + 1 end
    end
    assert.equal(N, woken)
    assert.equal(0, more)
    assert.equal(0, r:pending())
    r:close()
  end)

  it("lets the others complete while one thread waits for an answer that never comes", function()
    local r = fault_resolver { timeout = 2, tries = 1 }
    local cq = cqueues.new()
    local order = {}
    cq:wrap(function()
      local _, _, code = r:resolve("never.test")
      order[#order + 1] = "never:" .. code
    end)
    cq:wrap(function()
      for _ = 1, 3 do
        local p = r:resolve("quick.test")
        order[#order + 1] = "quick:" .. p.targets[1].addr
      end
    end)
    loop(cq)
    assert.same({ "quick:192.0.2.3", "quick:192.0.2.3", "quick:192.0.2.3", "never:TIMEOUT" }, order)
    r:close()
  end)

  it("yields the best level of targets while a backup host is still resolving", function()
    local r = fault_resolver()
    local cq = cqueues.new()
    local seen, st0 = {}, nil
    local asked = #f.queries({ name = "backup.lazy.test" })
    local replied = #f.replies({ name = "backup.lazy.test" })
    local t0 = now()
    cq:wrap(function()
      local it, st = r:targets("lazy.test")
      st0 = st
      for t in it, st do
        local s = { host = t.host, at = now() - t0 }
        if #seen == 0 then
          s.asked = f.wait({ name = "backup.lazy.test" }, asked + 2, 0.5) ~= nil
          s.replies = #f.replies({ name = "backup.lazy.test" }) - replied
        end
        seen[#seen + 1] = s
      end
    end)
    loop(cq)
    assert.equal(4, #seen)
    assert.equal("best.lazy.test", seen[1].host)
    assert.is_true(seen[1].asked)
    assert.equal(0, seen[1].replies)
    assert.is_true(seen[1].at < 0.8)
    assert.equal("backup.lazy.test", seen[4].host)
    assert.is_true(seen[4].at >= 0.9)
    assert.is_nil(st0.code)
    assert.equal(4, #st0.plan.targets)
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
    local cq = cqueues.new()
    local codes = {}
    for i = 1, 3 do
      cq:wrap(function() codes[i] = select(3, r:resolve("never.test")) end)
    end
    cq:wrap(function()
      local it, st = r:targets("never.test")
      for _ in it, st do codes.target = true end
      codes.targets = st.code
    end)
    cq:wrap(function()
      cqueues.sleep(0.1)
      r:close()
    end)
    local t0 = now()
    loop(cq)
    assert.is_true(now() - t0 < 1)
    assert.same({ "CANCELLED", "CANCELLED", "CANCELLED", targets = "CANCELLED" }, codes)
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
    local cq = cqueues.new()
    local got = {}
    cq:wrap(function()
      r:submit("slowish.test", function(p) got[#got + 1] = p.targets[1].addr end)
      r:submit("user@[192.0.2.9]", function(p) got[#got + 1] = p.targets[1].addr end)
    end)
    loop(cq)
    assert.same({ "192.0.2.9", "192.0.2.3" }, got)
    assert.equal(0, r:pending())
    r:close()
  end)

  it("supports wait = 'yield' in a thread: the thread polls the resolver itself", function()
    local r = resolver { wait = "yield" }
    local cq = cqueues.new()
    local got = {}
    for _, d in ipairs { "simple.mx.test", "backup.mx.test", "pool.mx.test" } do
      cq:wrap(function()
        local p = r:resolve(d)
        got[#got + 1] = p.domain
      end)
    end
    loop(cq)
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
    local cq = cqueues.new()
    local plan, ticks, done = nil, 0, false
    local targets = {}
    cq:wrap(function()
      plan = r:resolve("slowish.test")
      for t in r:targets("lazy.test") do targets[#targets + 1] = t.host end
      done = true
    end)
    cq:wrap(function()
      while not done do
        cqueues.sleep(0.02)
        ticks = ticks + 1
      end
    end)
    loop(cq)
    assert.equal("192.0.2.3", plan.targets[1].addr)
    assert.same({ "best.lazy.test", "best.lazy.test", "backup.lazy.test", "backup.lazy.test" }, targets)
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
