-- Coroutine-friendly lookups without an event library (doc/async.md): the
-- pollable resolver, submit/step, the blocking waiter, wait = "yield" under
-- a small scheduler written here, lazy targets and their failure contract.
-- cqueues and luv have their own specs (async_cqueues, async_luv); this one
-- also proves that mxroute needs neither.
local cases = require "support.async_cases"
local it54 = cases.only54(it)
local util = require "support.util"
local uv = require "luv" -- sleep for the spec only

local now = util.now

local srv, f

local function resolver(opts) return cases.resolver(srv.addr, opts) end
local function fault_resolver(opts) return cases.fault_resolver(f.addr, opts) end

local function list_targets(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = t.host .. "/" .. t.pref .. "/" .. t.addr end
  return out
end

-- A scheduler in a few lines for wait = "yield": a task that yields a
-- pollable (the resolver) is parked; the loop sleeps in r:step(r:timeout())
-- (its only blocking call) and resumes every parked task, which looks at
-- its own plan and parks again if it is not ready. A task may also yield
-- "sleep", seconds, or "spawn", { functions } to start more tasks.
local function run_yield(r, tasks)
  local parked, sleeping = {}, {}
  local function resume(co)
    local ok, what, arg = coroutine.resume(co)
    if not ok then error(debug.traceback(co, what), 0) end
    parked[co], sleeping[co] = nil, nil
    if coroutine.status(co) == "dead" then return end
    if what == "spawn" then
      for _, fn in ipairs(arg) do resume(coroutine.create(fn)) end
      return resume(co)
    elseif what == "sleep" then
      sleeping[co] = now() + arg
    else
      assert(what == r, "a task yielded something else than its resolver")
      parked[co] = true
    end
  end
  for _, fn in ipairs(tasks) do resume(coroutine.create(fn)) end
  while next(parked) or next(sleeping) do
    local t = not r:closed() and r:timeout() or nil
    for _, at in pairs(sleeping) do
      local left = math.max(0, at - now())
      t = t and math.min(t, left) or left
    end
    if r:closed() then
      if t then uv.sleep(math.ceil(t * 1000)) end
    else
      r:step(t)
    end
    local due = {}
    for co in pairs(parked) do due[#due + 1] = co end
    for co, at in pairs(sleeping) do if at <= now() then due[#due + 1] = co end end
    for _, co in ipairs(due) do resume(co) end
  end
end

describe("async without an event library", function()
  setup(function() srv, f = cases.servers { load = cases.N } end)
  teardown(function() if f then f.stop() end end)

  describe("the pollable resolver", function()
    it("has a descriptor, events 'r' and a timeout only while something is in flight", function()
      local r = fault_resolver()
      local fd = r:pollfd()
      assert.equal("number", type(fd))
      assert.is_true(fd >= 0 and fd == math.floor(fd))
      assert.equal(fd, r:pollfd())
      assert.equal("r", r:events())
      assert.is_nil(r:timeout())
      r:submit("never.test")
      local t = r:timeout()
      assert.equal("number", type(t))
      assert.is_true(t > 0 and t <= 5, "timeout " .. t)
      r:close()
      assert.is_true(r:closed())
    end)

    it("never waits in step() or step(0), and waits up to t in step(t)", function()
      local r = fault_resolver()
      r:submit("never.test")
      local t0 = now()
      assert.equal(0, r:step())
      assert.equal(0, r:step(0))
      assert.is_true(now() - t0 < 0.05, "step(0) waited " .. (now() - t0) .. " s")
      t0 = now()
      assert.equal(0, r:step(0.2))
      local dt = now() - t0
      assert.is_true(dt >= 0.19 and dt < 1, "step(0.2) took " .. dt .. " s")
      r:close()
    end)

    it("runs a plan to completion with submit, timeout and step alone", function()
      local r = resolver { seed = 3 }
      local q = r:submit("backup.mx.test")
      assert.is_false(q:done())
      assert.has_error(function() q:result() end)
      local steps = 0
      while not q:done() do
        r:step(r:timeout())
        steps = steps + 1
        assert.is_true(steps < 100, "no progress")
      end
      local p = assert(q:result())
      assert.same({ "mx1.backup.mx.test", "mx2.backup.mx.test" }, { p.hosts[1].name, p.hosts[2].name })
      assert.is_nil(r:timeout())
      r:close()
    end)

    it("cancels one query: done at once with CANCELLED, nothing left in flight", function()
      local r = fault_resolver()
      local q = r:submit("never.test")
      assert.equal(1, r:pending())
      q:cancel()
      assert.is_true(q:done())
      local p, msg, code = q:result()
      assert.is_nil(p)
      assert.equal("CANCELLED", code)
      assert.equal("string", type(msg))
      assert.equal(0, r:pending())
      r:close()
    end)
  end)

  describe("the blocking waiter", function()
    it("resolves outside any coroutine and inside one", function()
      local r = resolver()
      local p = assert(r:resolve("simple.mx.test"))
      assert.equal("mx.simple.mx.test", p.hosts[1].name)
      local co = coroutine.wrap(function() return r:resolve("addr.nomx.test") end)
      local p2 = assert(co())
      assert.is_true(p2.implicit)
      r:close()
    end)

    it("sleeps in the kernel: no CPU time while a query goes unanswered for 1 s", function()
      local r = fault_resolver { timeout = 1, tries = 1 }
      local res
      cases.assert_sleeps(function() res = { r:resolve("never.test") } end)
      assert.is_nil(res[1])
      assert.equal("TIMEOUT", res[3])
      r:close()
    end)
  end)

  describe("scheduler objects", function()
    -- A scheduler object that counts its waits and steps the resolver
    -- itself (so a wait from the main thread still makes progress).
    local function counting(yields)
      local S = { yields = yields, waits = 0 }
      function S.wait(_, r)
        S.waits = S.waits + 1
        if coroutine.isyieldable and coroutine.isyieldable() then coroutine.yield() end
        r:step(r:timeout() or 0)
      end
      return S
    end

    it("with yields = true: a caller that cannot yield takes the blocking wait", function()
      local S = counting(true)
      local r = resolver { wait = S }
      local p = assert(r:resolve("simple.mx.test"))
      assert.equal("mx.simple.mx.test", p.hosts[1].name)
      assert.equal(0, S.waits)
      -- in a coroutine the scheduler waits
      local co = coroutine.create(function() return r:resolve("addr.nomx.test") end)
      local ok, p2 = coroutine.resume(co)
      while coroutine.status(co) == "suspended" do ok, p2 = coroutine.resume(co) end
      assert.is_true(ok)
      assert.is_true(p2.implicit)
      assert.is_true(S.waits > 0)
      r:close()
    end)

    it("without yields: the scheduler is asked even where the caller cannot yield", function()
      local S = counting(nil)
      local r = resolver { wait = S }
      assert(r:resolve("simple.mx.test"))
      assert.is_true(S.waits > 0)
      r:close()
    end)
  end)

  describe("wait = 'yield'", function()
    it("yields the resolver itself to the loop that resumed the coroutine", function()
      local r = resolver { wait = "yield" }
      local co = coroutine.create(function() return r:resolve("simple.mx.test") end)
      local ok, yielded = coroutine.resume(co)
      assert.is_true(ok)
      assert.equal(r, yielded)
      while coroutine.status(co) == "suspended" do
        r:step(r:timeout())
        ok, yielded = coroutine.resume(co)
        assert.is_true(ok, yielded)
      end
      assert.equal("mx.simple.mx.test", yielded.hosts[1].name)
      r:close()
    end)

    it("blocks instead when the caller cannot yield", function()
      local r = resolver { wait = "yield" }
      local p = assert(r:resolve("simple.mx.test"))
      assert.equal("mx.simple.mx.test", p.hosts[1].name)
      r:close()
    end)

    it("gives each of many coroutines on one resolver its own plan", function()
      local r = resolver { wait = "yield" }
      local got, tasks = {}, {}
      for round = 1, 5 do
        for _, d in ipairs(cases.DOMAINS) do
          tasks[#tasks + 1] = function()
            local p, _, code = r:resolve(d)
            got[#got + 1] = { d = d, round = round, outcome = p and p.domain or code }
          end
        end
      end
      run_yield(r, tasks)
      assert.equal(#tasks, #got)
      for _, g in ipairs(got) do
        assert.equal(cases.expected(g.d), g.outcome)
      end
      assert.equal(0, r:pending())
      r:close()
    end)

    it("keeps r:timeout() at 0 until a coroutine whose plan another one finished has come back", function()
      local r = resolver { wait = "yield" }
      local a = coroutine.create(function() return r:resolve("simple.mx.test") end)
      local b = coroutine.create(function() return r:resolve("backup.mx.test") end)
      assert.equal(r, select(2, coroutine.resume(a)))
      assert.equal(r, select(2, coroutine.resume(b)))
      -- let every answer arrive, then resume only a: its steps finish b too
      local deadline = now() + 5
      while coroutine.status(a) == "suspended" do
        uv.sleep(50)
        assert.is_true(coroutine.resume(a))
        assert.is_true(now() < deadline, "a never finished")
      end
      uv.sleep(100)
      r:step(0)
      assert.equal(0, r:pending()) -- b's plan is complete...
      assert.equal(0, r:timeout()) -- ...so the loop must resume b at once
      local ok, p = coroutine.resume(b)
      assert.is_true(ok)
      assert.equal("dead", coroutine.status(b))
      assert.equal("backup.mx.test", p.domain)
      assert.is_nil(r:timeout()) -- nothing left to do
      r:close()
    end)

    it("completes 1000 plans in flight at once from 1000 coroutines on one resolver", function()
      -- (retries in case the fault server's socket buffer drops a query)
      local r = fault_resolver { wait = "yield", timeout = 1.5, tries = 3 }
      local load, peak = cases.load_counter(r), 0
      run_yield(r, { function()
        -- bursts of 100 every 15 ms, so that the fault server's socket
        -- buffer takes them; a plan takes at least 750 ms, so all 1000
        -- are in flight after the last burst even on a loaded machine
        for b = 0, cases.N - 1, 100 do
          local batch = {}
          for i = b + 1, b + 100 do
            batch[#batch + 1] = function() load.resolve(i) end
          end
          coroutine.yield("spawn", batch)
          peak = math.max(peak, r:pending())
          coroutine.yield("sleep", 0.015)
        end
      end })
      load.check(peak)
      r:close()
    end)

    it("lets the others complete while one coroutine waits for an answer that never comes", function()
      local r = fault_resolver { wait = "yield", timeout = 2, tries = 1 }
      cases.assert_race(r, function(tasks) run_yield(r, tasks) end)
      r:close()
    end)

    it("sleeps in the kernel: no CPU time while a query goes unanswered for 1 s", function()
      local r = fault_resolver { wait = "yield", timeout = 1, tries = 1 }
      local code
      cases.assert_sleeps(function()
        run_yield(r, { function() code = select(3, r:resolve("never.test")) end })
      end)
      assert.equal("TIMEOUT", code)
      r:close()
    end)

    it("wakes the waiting coroutines with CANCELLED when the resolver is closed", function()
      local r = fault_resolver { wait = "yield" }
      cases.assert_close_wakes(r, function(tasks) run_yield(r, tasks) end, function()
        coroutine.yield("sleep", 0.1)
        r:close()
      end)
    end)
  end)

  describe("targets", function()
    it("yields the best level while a backup host is still resolving (blocking)", function()
      local r = fault_resolver()
      cases.assert_lazy(f, r, function(tasks) tasks[1]() end)
      r:close()
    end)

    it("yields the best level while a backup host is still resolving (wait = 'yield')", function()
      local r = fault_resolver { wait = "yield" }
      cases.assert_lazy(f, r, function(tasks) run_yield(r, tasks) end)
      r:close()
    end)

    it("gives the same targets as resolve(), in order, and the plan in state.plan", function()
      local r1, r2 = resolver { seed = 7 }, resolver { seed = 7, wait = "yield" }
      for _, d in ipairs { "pool.mx.test", "backup.mx.test", "shared.mx.test", "alias.cname.test" } do
        local p = assert(r1:resolve(d))
        local got, st = {}, nil
        run_yield(r2, { function()
          local it, s = r2:targets(d)
          st = s
          for t in it, s do got[#got + 1] = t end
        end })
        assert.same(list_targets(p.targets), list_targets(got))
        assert.same(list_targets(p.targets), list_targets(st.plan.targets))
        assert.is_nil(st.message)
        assert.is_nil(st.code)
      end
      r1:close()
      r2:close()
    end)

    it("reports failure in state.message, state.code, state.info, and as extra values", function()
      local r = resolver()
      for input, want in pairs { ["nosuch.mx.test"] = "NXDOMAIN", ["user@"] = "BADNAME",
                                 ["null.nullmx.test"] = "NULLMX", ["dangling.broken.test"] = "NOHOSTS" } do
        local _, msg0, code0 = r:resolve(input)
        local it, st, ctl = r:targets(input)
        local t, msg, code = it(st, ctl)
        assert.is_nil(t)
        assert.equal(want, code)
        assert.equal(want, st.code)
        assert.equal(code0, st.code)
        assert.equal(msg0, st.message)
        assert.equal(msg, st.message)
        assert.equal("table", type(st.info))
        assert.equal(want, st.info.code)
        assert.is_nil(st.plan)
        assert.is_nil(it(st, ctl)) -- stays ended
      end
      r:close()
    end)

    it("cancels the rest when the state is closed, and leaves message and code unset", function()
      local r = fault_resolver()
      local it, st, ctl = r:targets("lazy.test")
      local t = it(st, ctl)
      assert.equal("best.lazy.test", t.host)
      assert.equal(1, r:pending())
      st:close()
      assert.equal(0, r:pending())
      assert.is_true(st.closed)
      assert.is_nil(it(st, ctl))
      assert.is_nil(st.code)
      assert.is_nil(st.message)
      st:close() -- idempotent
      r:close()
    end)

    -- LuaJIT has no closing values: "cancels the rest when the state is
    -- closed" above is what its users write instead.
    it54("cancels the rest when a loop breaks out of it or a <close> variable goes", function()
      local chunk = cases.load54([[
        local r = ...
        local seen = 0
        for t in r:targets("lazy.test") do
          seen = seen + 1
          if t.host == "best.lazy.test" then break end
        end
        local after_break = r:pending()
        local after_block
        do
          local it, st <close> = r:targets("lazy.test")
          it(st)
        end
        after_block = r:pending()
        return seen, after_break, after_block
      ]], "break")
      local r = fault_resolver()
      local t0 = now()
      local seen, after_break, after_block = chunk(r)
      assert.equal(1, seen)
      assert.equal(0, after_break)
      assert.equal(0, after_block)
      assert.is_true(now() - t0 < 0.9, "waited for the backup")
      r:close()
    end)

    it("raises for misuse: a closed resolver, a non-string input", function()
      local r = resolver()
      assert.has_error(function() r:targets(42) end)
      r:close()
      assert.has_error(function() r:targets("simple.mx.test") end)
    end)
  end)

  describe("optional event libraries", function()
    it("are not needed: require 'mxroute' works and resolves where cqueues and luv cannot load", function()
      local build = jit and "./build/luajit/?.so" or "./build/lua5.4/?.so"
      local script = [[
        assert(not pcall(require, "cqueues"), "cqueues is loadable")
        assert(not pcall(require, "luv"), "luv is loadable")
        local mxroute = require "mxroute"
        local r = mxroute.resolver { nameservers = { arg[1] }, timeout = 1 }
        local p = assert(r:resolve("backup.mx.test"))
        local n = 0
        for _ in r:targets("backup.mx.test") do n = n + 1 end
        local co = coroutine.wrap(function() return r:resolve("simple.mx.test") end)
        local mxluv = require "mxroute.luv"
        local ok, err = pcall(mxluv.waiter)
        assert(not ok and tostring(err):find("luv"), tostring(err))
        print("ok", #p.targets, n, co().hosts[1].name, package.loaded.cqueues, package.loaded.luv)
      ]]
      local out, status = cases.run_script(script, function(file)
        -- no ";;": the system's module directories are not searched
        return ("LUA_PATH='./lua/?.lua;./lua/?/init.lua' LUA_CPATH=%s %s %s %s"):format(
          util.quote(build), util.interpreter(), file, util.quote(srv.addr))
      end)
      assert.equal(0, status, out)
      assert.equal("ok\t3\t3\tmx.simple.mx.test\tnil\tnil\n", out)
    end)
  end)
end)
