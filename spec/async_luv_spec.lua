-- mxroute under luv (doc/async.md): mxroute.luv's scheduler suspends only
-- the coroutine that asks, resumes it only when its own plan is ready, and
-- leaves no handle behind, so uv.run() returns once the lookups are done.
local knot = require "support.knot"
local fault = require "support.fault"
local uv = require "luv"
local mxroute = require "mxroute"
local mxluv = require "mxroute.luv"

local function now() return uv.hrtime() / 1e9 end

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

local function merge(base, opts)
  for k, v in pairs(opts or {}) do base[k] = v end
  return base
end

local function resolver(opts)
  return mxluv.resolver(merge({ nameservers = { srv.addr }, timeout = 1, tries = 2 }, opts), uv)
end

local function fault_resolver(opts)
  return mxluv.resolver(merge({ nameservers = { f.addr }, timeout = 5, tries = 1 }, opts), uv)
end

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

describe("mxroute under luv", function()
  setup(function()
    srv = knot.shared()
    f = fault.start(rules())
  end)
  teardown(function() if f then f.stop() end end)

  it("suspends only the asking coroutine: a timer keeps firing, no CPU is used", function()
    local r = fault_resolver { timeout = 1, tries = 1 }
    local ticks, code, done = 0, nil, false
    local tick = uv.new_timer()
    tick:start(50, 50, function()
      ticks = ticks + 1
      if done then tick:close() end
    end)
    local c0, t0 = os.clock(), now()
    local co = spawn(function()
      code = select(3, r:resolve("never.test"))
      done = true
    end)
    assert.equal("suspended", coroutine.status(co))
    run()
    local cpu, wall = os.clock() - c0, now() - t0
    assert.equal("TIMEOUT", code)
    assert.is_true(wall >= 0.9, "waited only " .. wall .. " s")
    assert.is_true(ticks >= 10, "the timer fired " .. ticks .. " times in " .. wall .. " s")
    assert.is_true(cpu < 0.1, "used " .. cpu .. " s of CPU in " .. wall .. " s")
    r:close()
  end)

  it("resumes each coroutine only for its own plan", function()
    local sched, counts = counting_waiter()
    local r = mxroute.resolver { nameservers = { srv.addr }, timeout = 1, wait = sched }
    local domains = { "simple.mx.test", "backup.mx.test", "pool.mx.test", "addr.nomx.test",
                      "alias.cname.test", "nosuch.mx.test", "multi.mx.test", "dup.mx.test" }
    local cos, got = {}, {}
    for _, d in ipairs(domains) do
      cos[d] = spawn(function()
        local p, _, code = r:resolve(d)
        got[d] = p and p.domain or code
      end)
    end
    run()
    for _, d in ipairs(domains) do
      assert.equal(d == "nosuch.mx.test" and "NXDOMAIN" or d, got[d])
      assert.equal(1, counts[cos[d]], d .. " was resumed " .. tostring(counts[cos[d]]) .. " times")
    end
    r:close()
  end)

  it("completes 1000 plans in flight at once from 1000 coroutines, each resumed once", function()
    local sched, counts = counting_waiter()
    -- retries in case the fault server's socket buffer drops a query
    local r = mxroute.resolver { nameservers = { f.addr }, timeout = 1.5, tries = 3, wait = sched }
    local ok, bad, peak, cos = 0, {}, 0, {}
    local b = 0
    local starter = uv.new_timer()
    starter:start(0, 15, function()
      for i = b + 1, b + 100 do
        cos[#cos + 1] = spawn(function()
          local p, msg = r:resolve("d" .. i .. ".load.test")
          if load_ok(p, i) then ok = ok + 1 else bad[#bad + 1] = i .. ": " .. tostring(msg) end
        end)
      end
      b = b + 100
      peak = math.max(peak, r:pending())
      if b >= N then starter:close() end
    end)
    run()
    assert.same({}, bad)
    assert.equal(N, ok)
    assert.equal(N, peak)
    local more = 0
    for _, co in ipairs(cos) do
      if counts[co] ~= 1 then more = more + 1 end
    end
    assert.equal(N, #cos)
    assert.equal(0, more)
    assert.equal(0, r:pending())
    r:close()
  end)

  it("lets the others complete while one coroutine waits for an answer that never comes", function()
    local r = fault_resolver { timeout = 2, tries = 1 }
    local order = {}
    spawn(function()
      local _, _, code = r:resolve("never.test")
      order[#order + 1] = "never:" .. code
    end)
    spawn(function()
      for _ = 1, 3 do
        local p = r:resolve("quick.test")
        order[#order + 1] = "quick:" .. p.targets[1].addr
      end
    end)
    run()
    assert.same({ "quick:192.0.2.3", "quick:192.0.2.3", "quick:192.0.2.3", "never:TIMEOUT" }, order)
    r:close()
  end)

  it("yields the best level of targets while a backup host is still resolving", function()
    local r = fault_resolver()
    local seen, st0 = {}, nil
    local asked = #f.queries({ name = "backup.lazy.test" })
    local replied = #f.replies({ name = "backup.lazy.test" })
    local t0 = now()
    spawn(function()
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
    run()
    assert.equal(4, #seen)
    assert.equal("best.lazy.test", seen[1].host)
    assert.is_true(seen[1].asked)
    assert.equal(0, seen[1].replies)
    assert.is_true(seen[1].at < 0.8)
    assert.equal("backup.lazy.test", seen[4].host)
    assert.is_true(seen[4].at >= 0.9)
    assert.is_nil(st0.code)
    r:close()
  end)

  it("wakes the waiting coroutines with CANCELLED when the resolver is closed", function()
    local r = fault_resolver()
    local codes = {}
    for i = 1, 3 do
      spawn(function() codes[i] = select(3, r:resolve("never.test")) end)
    end
    spawn(function()
      local it, st = r:targets("never.test")
      for _ in it, st do codes.target = true end
      codes.targets = st.code
    end)
    local closer = uv.new_timer()
    closer:start(100, 0, function()
      closer:close()
      r:close()
    end)
    local t0 = now()
    run()
    assert.is_true(now() - t0 < 1)
    assert.same({ "CANCELLED", "CANCELLED", "CANCELLED", targets = "CANCELLED" }, codes)
  end)

  it("runs the callbacks of r:submit from the loop", function()
    local r = fault_resolver()
    local got = {}
    r:submit("slowish.test", function(p) got[#got + 1] = p.targets[1].addr end)
    r:submit("user@[192.0.2.9]", function(p) got[#got + 1] = p.targets[1].addr end)
    run()
    assert.same({ "192.0.2.9", "192.0.2.3" }, got)
    assert.equal(0, r:pending())
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
    local plan, ticks, done = nil, 0, false
    local tick = uv.new_timer()
    tick:start(20, 20, function()
      ticks = ticks + 1
      if done then tick:close() end
    end)
    local targets = {}
    spawn(function()
      plan = r:resolve("slowish.test")
      for t in r:targets("lazy.test") do targets[#targets + 1] = t.host end
      done = true
    end)
    run()
    assert.equal("192.0.2.3", plan.targets[1].addr)
    assert.same({ "best.lazy.test", "best.lazy.test", "backup.lazy.test", "backup.lazy.test" }, targets)
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
