-- Lifetime and cancellation (doc/async.md): close() completes what is in
-- flight with CANCELLED; a query, resolver or coroutine nobody holds any
-- more is collected and takes its c-ares state with it; callbacks run
-- after c-ares has returned; and valgrind finds no leak or bad access.
local cases = require "support.async_cases"
local it54 = cases.only54(it)
local util = require "support.util"
local mxroute = require "mxroute"

local srv, f

local function fault_resolver(opts) return cases.fault_resolver(f.addr, opts) end

local function collect()
  for _ = 1, 4 do collectgarbage("collect") end
end

-- Collect garbage: nothing of `weak` may survive, and r must have `left`
-- (default 0) lookups in flight afterwards.
local function assert_collected(weak, r, left)
  collect()
  assert.is_nil(next(weak))
  assert.equal(left or 0, r:pending())
end

-- Descriptors open in this process.
local function open_fds()
  local uv = require "luv"
  local dir = assert(uv.fs_scandir("/proc/self/fd"))
  local n = 0
  while uv.fs_scandir_next(dir) do n = n + 1 end
  return n
end

describe("lifetime", function()
  setup(function() srv, f = cases.servers() end)
  teardown(function() if f then f.stop() end end)

  describe("close", function()
    it("completes every query in flight with CANCELLED and runs their callbacks", function()
      local r = fault_resolver()
      local got = {}
      local q1 = r:submit("never.test", function(p, _, code) got[#got + 1] = { p, code } end)
      local q2 = r:submit("slow.test")
      local it, st = r:targets("lazy.test")
      assert.equal(3, r:pending())
      r:close()
      assert.same({ { nil, "CANCELLED" } }, got)
      for _, q in ipairs { q1, q2 } do
        assert.is_true(q:done())
        assert.equal("CANCELLED", select(3, q:result()))
      end
      assert.is_nil(it(st))
      assert.equal("CANCELLED", st.code)
      assert.has_error(function() r:pending() end)
    end)

    it("wakes a coroutine suspended in resolve (wait = 'yield') with CANCELLED", function()
      local r = fault_resolver { wait = "yield" }
      local co = coroutine.create(function() return r:resolve("never.test") end)
      assert.equal(r, select(2, coroutine.resume(co)))
      r:close()
      local ok, p, msg, code = coroutine.resume(co)
      assert.is_true(ok)
      assert.equal("dead", coroutine.status(co))
      assert.is_nil(p)
      assert.equal("string", type(msg))
      assert.equal("CANCELLED", code)
    end)

    -- Without to-be-closed variables (LuaJIT) r:close() is the way: the
    -- spec "completes every query in flight with CANCELLED" above.
    it54("is what leaving a <close> block does", function()
      local chunk = cases.load54([[
        local mxroute, addr = ...
        local q
        do
          local r <close> = mxroute.resolver { nameservers = { addr }, timeout = 5 }
          q = r:submit("never.test")
        end
        return q
      ]], "close")
      local q = chunk(mxroute, f.addr)
      assert.is_true(q:done())
      assert.equal("CANCELLED", select(3, q:result()))
    end)
  end)

    -- The LuaJIT way to end a query early is q:cancel(), whose callback
    -- spec is in resolver_api_spec ("runs a cancelled query's callback").
    it54("runs the callback of a query closed early with <close>, once, with CANCELLED", function()
      local chunk = cases.load54([[
        local r, got = ...
        do
          local q <close> = r:submit("never.test", function(_, _, code, qq)
            got[#got + 1] = { code = code, done = qq:done(), q = qq }
          end)
        end
      ]], "close")
      local r = fault_resolver()
      local got = {}
      chunk(r, got)
      collect()
      r:step(0)
      assert.equal(0, #got)
      r:close() -- must not raise on the closed query
      assert.equal(1, #got)
      assert.equal("CANCELLED", got[1].code)
      assert.is_true(got[1].done)
      local p, msg, code, info = got[1].q:result()
      assert.is_nil(p)
      assert.is_string(msg)
      assert.equal("CANCELLED", code)
      assert.equal("never.test", info.input)
    end)

  describe("collection", function()
    it("detaches a query nobody holds from the engine", function()
      local r = fault_resolver()
      local weak = setmetatable({}, { __mode = "v" })
      for i = 1, 10 do weak[i] = r:submit("never.test") end
      local held = r:submit("never.test")
      assert.equal(11, r:pending())
      assert_collected(weak, r, 1)
      held:cancel()
      assert.equal(0, r:pending())
      r:close()
    end)

    it("frees a resolver nobody holds: its descriptors are closed", function()
      collect()
      local before = open_fds()
      local weak = setmetatable({}, { __mode = "v" })
      for i = 1, 20 do
        local r = fault_resolver()
        r:submit("never.test") -- opens the UDP socket
        weak[i] = r
      end
      assert.is_true(open_fds() >= before + 40, "each resolver holds epoll + UDP")
      collect()
      assert.is_nil(next(weak))
      assert.equal(before, open_fds())
    end)

    it("collects a coroutine that is never resumed again, and its lookup (wait = 'yield')", function()
      local r = fault_resolver { wait = "yield" }
      local weak = setmetatable({}, { __mode = "k" })
      for _ = 1, 5 do
        local co = coroutine.create(function() return r:resolve("never.test") end)
        assert.equal(r, select(2, coroutine.resume(co)))
        weak[co] = true
        local co2 = coroutine.create(function()
          for _ in r:targets("lazy.test") do end
        end)
        assert.equal(r, select(2, coroutine.resume(co2)))
        weak[co2] = true
      end
      assert.equal(10, r:pending())
      assert_collected(weak, r)
      assert.is_nil(r:timeout())
      r:close()
    end)

    it("collects the threads of a cqueues controller that is never run again", function()
      local cqueues = require "cqueues"
      local r = fault_resolver()
      local weak = setmetatable({}, { __mode = "k" })
      do
        local cq = cqueues.new()
        for _ = 1, 3 do
          cq:wrap(function()
            weak[coroutine.running()] = true
            r:resolve("never.test")
          end)
        end
        assert(cq:step(0))
        assert(cq:step(0))
        weak[cq] = true
        assert.equal(3, r:pending())
      end
      assert_collected(weak, r)
      r:close()
    end)

    it("collects a targets state left in the middle (LuaJIT: no closing value)", function()
      local r = fault_resolver()
      local weak = setmetatable({}, { __mode = "k" })
      do
        local it, st = r:targets("lazy.test")
        assert.equal("best.lazy.test", it(st).host)
        weak[st] = true
      end
      assert.equal(1, r:pending())
      assert_collected(weak, r)
      r:close()
    end)
  end)

  describe("callbacks", function()
    it("run after c-ares has returned: they may submit, step and close the resolver", function()
      local r = fault_resolver()
      local log = {}
      r:submit("slow.test", function(p)
        log[#log + 1] = "first " .. p.targets[1].addr
        -- back into the engine from inside step: safe only outside c-ares
        r:submit("slow.test", function(p2)
          log[#log + 1] = "second " .. p2.targets[1].addr
          r:submit("never.test", function(_, _, code) log[#log + 1] = "third " .. code end)
          r:step(0)
          r:close()
        end)
        r:step(0)
      end)
      while not r:closed() do r:step(r:timeout()) end
      assert.same({ "first 192.0.2.5", "second 192.0.2.5", "third CANCELLED" }, log)
    end)

    it("are called from Lua code in step, with no C function in between", function()
      local r = mxroute.resolver { nameservers = { srv.addr }, timeout = 1 }
      local tb
      r:submit("simple.mx.test", function() tb = debug.traceback("", 1) end)
      while r:pending() > 0 or not tb do r:step(r:timeout() or 0) end
      -- frames from the callback outwards, up to the spec calling step
      local frames, callback = {}, nil
      for line in tb:gmatch("[^\n]+") do
        if line:find("lifetime_spec", 1, true) then
          if callback then break end
          callback = line
        elseif callback then
          frames[#frames + 1] = line
        end
      end
      local text = table.concat(frames, "\n")
      assert.is_nil(text:find("%[C%]"), "a C function calls the callback:\n" .. text)
      assert.truthy(text:find("mxroute.lua", 1, true), text)
      r:close()
    end)
  end)

  describe("valgrind", function()
    local valgrind = util.execute("command -v valgrind >/dev/null 2>&1")

    it("finds no leak or invalid access in resolvers, abandoned coroutines, close and collection", function()
      if not valgrind then
        error("valgrind is not installed (it is a dependency of make test)")
      end
      local script = [[
        local mxroute = require "mxroute"
        local knot_addr, fault_addr = arg[1], arg[2]
        local function collect() for _ = 1, 4 do collectgarbage("collect") end end

        -- plain lookups and targets, with a break (closing value)
        local r = mxroute.resolver { nameservers = { knot_addr }, timeout = 1 }
        assert(r:resolve("backup.mx.test"))
        assert(not r:resolve("nosuch.mx.test"))
        for t in r:targets("backup.mx.test") do if t.pref == 10 then break end end
        r:close()

        -- coroutines abandoned mid-lookup, a query dropped, a resolver dropped
        local rf = mxroute.resolver { nameservers = { fault_addr }, timeout = 5, wait = "yield" }
        for _ = 1, 5 do
          local co = coroutine.create(function() return rf:resolve("never.test") end)
          assert(coroutine.resume(co))
          co = coroutine.create(function() for _ in rf:targets("lazy.test") do end end)
          assert(coroutine.resume(co))
        end
        rf:submit("never.test")
        collect()
        assert(rf:pending() == 0, "pending " .. rf:pending())
        local dropped = mxroute.resolver { nameservers = { fault_addr }, timeout = 5 }
        dropped:submit("never.test")
        dropped = nil -- luacheck: ignore
        collect()

        -- close with queries, callbacks and a suspended coroutine
        local got
        rf:submit("never.test", function(_, _, code) got = code end)
        local co = coroutine.create(function() return rf:resolve("slow.test") end)
        assert(coroutine.resume(co))
        rf:close()
        assert(got == "CANCELLED")
        assert(select(4, coroutine.resume(co)) == "CANCELLED")

        -- a lookup that completes over the network, then a timeout
        local rt = mxroute.resolver { nameservers = { fault_addr }, timeout = 1, tries = 1 }
        assert(rt:resolve("slow.test"))
        assert(select(3, rt:resolve("never.test")) == "TIMEOUT")
        rt = nil -- luacheck: ignore

        -- cqueues: a controller abandoned with threads waiting, another run
        local cqueues = require "cqueues"
        local rc = mxroute.resolver { nameservers = { fault_addr }, timeout = 5 }
        do
          local cq = cqueues.new()
          cq:wrap(function() rc:resolve("never.test") end)
          cq:wrap(function() for _ in rc:targets("lazy.test") do end end)
          assert(cq:step(0))
          assert(cq:step(0))
        end
        collect()
        assert(rc:pending() == 0, "pending " .. rc:pending())
        local cq = cqueues.new()
        cq:wrap(function() assert(rc:resolve("slow.test")) end)
        cq:wrap(function() rc:resolve("never.test") end)
        cq:wrap(function() cqueues.sleep(0.5); rc:close() end)
        assert(cq:loop())

        -- luv: coroutines waiting when the resolver is closed
        local uv = require "luv"
        local rl = require("mxroute.luv").resolver({ nameservers = { fault_addr }, timeout = 5 }, uv)
        coroutine.wrap(function() assert(rl:resolve("slow.test")) end)()
        coroutine.wrap(function() rl:resolve("never.test") end)()
        rl:submit("never.test", function() end)
        local t = uv.new_timer()
        t:start(500, 0, function() t:close(); rl:close() end)
        uv.run()
        collect()

        -- routes (DESIGN 7): a nexthop list with a fallback relay and a
        -- hook, an error: route, a routed lookup abandoned mid-flight and
        -- one cancelled by close
        local routes = mxroute.routes.new {
          map = mxroute.routes.postfix("partner.route.test smtp:[relay.route.test]:587, hub.route.test\n"
            .. "old.route.test error:5.1.2 retired\nnever.test smtp:never.test, [192.0.2.9]\n"),
          fallback = "[fallback.route.test]",
          hooks = function(plan) plan.hooked = true end,
        }
        local rr = mxroute.resolver { nameservers = { knot_addr }, timeout = 1, routes = routes }
        assert(rr:resolve("u@partner.route.test").hooked)
        assert(select(3, rr:resolve("u@old.route.test")) == "REJECTED")
        for _ in rr:targets("u@hub.route.test") do break end
        rr:close()
        local rn = mxroute.resolver { nameservers = { fault_addr }, timeout = 5, routes = routes }
        rn:submit("u@never.test")
        collect()
        assert(rn:pending() == 0, "pending " .. rn:pending())
        rn:submit("u@never.test", function() end)
        rn:close()
        collect()
        print("script done")
      ]]
      local out, status = cases.run_script(script, function(file)
        return ("valgrind -q --leak-check=full --error-exitcode=99 "
          .. "--errors-for-leak-kinds=definite,indirect,possible %s %s %s %s"):format(
          util.interpreter(), file, util.quote(srv.addr), util.quote(f.addr))
      end)
      assert.truthy(out:find("script done", 1, true), out)
      assert.equal(0, status, out)
      assert.is_nil(out:find("==%d+==", 1), out) -- -q: valgrind prints only errors
    end)
  end)
end)
