-- The resolver object of DESIGN section 3: option validation, close,
-- the one-shot mxroute.resolve, submit/step/callbacks, the targets
-- iterator, and mxroute.class. DNS comes from the shared Knot server
-- (spec/zones/) and, for answers that must never come, the fault server.
local knot = require "support.knot"
local fault = require "support.fault"
local plans = require "support.plans"
local util = require "support.util"
local mxroute = require "mxroute"

local now, raises_naming = util.now, plans.raises_naming

local srv, f

local function resolver(opts)
  return plans.resolver({ nameservers = { srv.addr }, timeout = 1, tries = 2 }, opts)
end

-- A resolver on the fault server, where slow.test's second host never
-- answers.
local function fault_resolver(opts)
  return plans.resolver({ nameservers = { f.addr }, timeout = 5, tries = 1 }, opts)
end

local FAULT_RULES = {
  ["never.test"] = { drop = true },
  ["slow.test"] = { MX = { { 10, "fast.slow.test" }, { 20, "stuck.slow.test" } } },
  ["fast.slow.test"] = { A = "192.0.2.1" },
  ["stuck.slow.test"] = { drop = true },
}

local function raises_matching(pat, fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error matching " .. pat)
  assert.truthy(tostring(err):find(pat), "error does not match " .. pat .. ": " .. tostring(err))
end

local function addrs_of_targets(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = t.host .. "/" .. t.pref .. "/" .. t.addr .. "/" .. t.family end
  return out
end

describe("the resolver API", function()
  setup(function()
    srv = knot.shared()
    f = fault.start(FAULT_RULES)
  end)
  teardown(function() if f then f.stop() end end)

  describe("options", function()
    local function make(opts) return function() mxroute.resolver(opts) end end

    it("accepts every documented field", function()
      local r = mxroute.resolver {
        nameservers = { srv.addr, "[::1]:5353", "192.0.2.53" }, timeout = 0.5, tries = 2,
        self = { "us.self.test", "203.0.113.25" }, family = "any", prefer = "ipv6", seed = 42,
        allow_mx_to_ip = true, ignore_targets = { "10.0.0.0/8" }, max_hosts = 5, wait = "yield",
      }
      r:close()
    end)

    it("raises naming nameservers when it is not a list", function()
      raises_naming("nameservers", make { nameservers = 53 })
      raises_naming("nameservers", make { nameservers = {} })
      raises_naming("nameservers", make { nameservers = true })
    end)

    it("raises naming nameservers for a bad address", function()
      raises_naming("nameservers", make { nameservers = { "not-an-address" } })
      raises_naming("nameservers", make { nameservers = { "300.1.2.3" } })
      raises_naming("nameservers", make { nameservers = { "127.0.0.1", 53 } })
      raises_naming("nameservers", make { nameservers = { "ns.example.test" } })
    end)

    it("raises naming nameservers for a bad port", function()
      raises_naming("nameservers", make { nameservers = { "127.0.0.1:0" } })
      raises_naming("nameservers", make { nameservers = { "127.0.0.1:65536" } })
      raises_naming("nameservers", make { nameservers = { "[::1]:99999" } })
    end)

    it("raises naming timeout unless it is a positive number", function()
      for _, v in ipairs { 0, -1, "1", 0 / 0 } do
        raises_naming("timeout", make { nameservers = { srv.addr }, timeout = v })
      end
    end)

    it("raises naming tries unless it is a positive integer", function()
      for _, v in ipairs { 0, -1, 1.5, "2" } do
        raises_naming("tries", make { nameservers = { srv.addr }, tries = v })
      end
    end)

    it("raises naming family, prefer or wait for a bad value", function()
      raises_naming("family", make { family = "ipv5" })
      raises_naming("family", make { family = 4 })
      raises_naming("prefer", make { prefer = "ipv5" })
      raises_naming("prefer", make { prefer = true })
      raises_naming("wait", make { wait = 5 })
      raises_naming("wait", make { wait = "sleep" })
    end)

    it("raises naming the other planner fields for a bad value", function()
      raises_naming("seed", make { seed = "x" })
      raises_naming("max_hosts", make { max_hosts = 0 })
      raises_naming("allow_mx_to_ip", make { allow_mx_to_ip = "yes" })
      raises_naming("ignore_targets", make { ignore_targets = { "not a cidr" } })
      raises_naming("self", make { self = { 42 } })
    end)

    it("raises naming an unknown field", function()
      raises_naming("bogus", make { nameservers = { srv.addr }, bogus = 1 })
      raises_naming("nameserver", make { nameserver = { srv.addr } })
      assert.has_error(function() mxroute.resolver "127.0.0.1" end)
    end)

    it("raises for wrong argument types", function()
      local r = resolver()
      assert.has_error(function() r:resolve(42) end)
      assert.has_error(function() r:targets({}) end)
      assert.has_error(function() r:submit(nil) end)
      assert.has_error(function() r:submit("simple.mx.test", "not a function") end)
      assert.has_error(function() r:step("soon") end)
      r:close()
    end)
  end)

  describe("close", function()
    it("makes every method raise 'closed'", function()
      local r = resolver()
      r:close()
      local calls = {
        resolve = function() return r:resolve("simple.mx.test") end,
        targets = function() return r:targets("simple.mx.test") end,
        submit = function() return r:submit("simple.mx.test") end,
        step = function() return r:step(0) end,
        pollfd = function() return r:pollfd() end,
        events = function() return r:events() end,
        timeout = function() return r:timeout() end,
        pending = function() return r:pending() end,
      }
      for name, fn in pairs(calls) do
        local ok, err = pcall(fn)
        assert.is_false(ok, name .. " did not raise")
        assert.truthy(tostring(err):find("closed", 1, true), name .. ": " .. tostring(err))
      end
    end)

    it("is idempotent", function()
      local r = resolver()
      assert.truthy(r:resolve("simple.mx.test"))
      r:close()
      r:close()
      assert.has_no.errors(function() r:close() end)
    end)

    it("cancels queries in flight: CANCELLED, and their callbacks run", function()
      local r = fault_resolver()
      local got = {}
      local q1 = r:submit("never.test", function(p, msg, code, q)
        got[#got + 1] = { p = p, msg = msg, code = code, q = q }
      end)
      local q2 = r:submit("slow.test") -- no callback
      r:step(0.05)
      assert.equal(2, r:pending())
      assert.equal(0, #got)
      local t0 = now()
      r:close()
      assert.is_true(now() - t0 < 0.5)
      assert.equal(1, #got)
      assert.is_nil(got[1].p)
      assert.equal("CANCELLED", got[1].code)
      assert.equal("string", type(got[1].msg))
      assert.is_true(rawequal(q1, got[1].q))
      for _, q in ipairs { q1, q2 } do
        assert.is_true(q:done())
        local p, _, code = q:result()
        assert.is_nil(p)
        assert.equal("CANCELLED", code)
      end
      assert.equal("temporary", mxroute.class("CANCELLED"))
    end)

    it("runs every cancelled callback even when one raises, then raises", function()
      local r = fault_resolver()
      local codes = {}
      r:submit("never.test", function() error("first callback fails") end)
      r:submit("never.test", function(_, _, code) codes[#codes + 1] = code end)
      r:step(0)
      raises_matching("first callback fails", function() r:close() end)
      assert.same({ "CANCELLED" }, codes)
      assert.has_no.errors(function() r:close() end)
    end)
  end)

  describe("mxroute.resolve", function()
    it("resolves once on a resolver made from the options", function()
      local p, msg, code = mxroute.resolve("user@backup.mx.test", { nameservers = { srv.addr }, timeout = 1 })
      assert(p, tostring(code) .. ": " .. tostring(msg))
      assert.equal("user@backup.mx.test", p.input)
      assert.equal("mx1.backup.mx.test", p.hosts[1].name)
      assert.equal("mx2.backup.mx.test", p.hosts[2].name)
    end)

    it("returns nil, message, code, info on failure", function()
      local p, msg, code, info = mxroute.resolve("nosuch.mx.test", { nameservers = { srv.addr }, timeout = 1 })
      assert.is_nil(p)
      assert.equal("NXDOMAIN", code)
      assert.truthy(msg:find("nosuch.mx.test", 1, true))
      assert.equal("table", type(info))
      assert.equal("table", type(info.skipped))
    end)

    it("raises for bad options", function()
      raises_naming("tries", function() mxroute.resolve("simple.mx.test", { tries = 0 }) end)
    end)
  end)

  describe("submit and step", function()
    it("calls the callback from step, never from submit", function()
      local r = resolver()
      local calls = {}
      local q = r:submit("user@[192.0.2.7]", function(p, msg, code, qq)
        calls[#calls + 1] = { p = p, msg = msg, code = code, q = qq }
      end)
      assert.is_true(q:done()) -- a literal needs no DNS
      assert.equal(0, #calls)
      assert.equal(0, r:timeout()) -- a callback is due
      assert.equal(1, r:step(0))
      assert.equal(1, #calls)
      local c = calls[1]
      assert.equal("user@[192.0.2.7]", c.p.input)
      assert.equal("192.0.2.7", c.p.targets[1].addr)
      assert.is_nil(c.msg)
      assert.is_nil(c.code)
      assert.is_true(rawequal(q, c.q))
      assert.equal(0, r:step(0))
      assert.equal(1, #calls)
      r:close()
    end)

    it("runs DNS resolutions to their callbacks, each once", function()
      local r = resolver()
      local got, qs = {}, {}
      local domains = { "simple.mx.test", "nosuch.mx.test", "backup.mx.test" }
      for _, d in ipairs(domains) do
        qs[d] = r:submit(d, function(p, msg, code, q)
          assert.is_nil(got[d], d .. " called twice")
          got[d] = { p = p, msg = msg, code = code, q = q }
        end)
      end
      assert.same({}, got)
      assert.equal(3, r:pending())
      local finished, deadline = 0, now() + 5
      while not (got["simple.mx.test"] and got["nosuch.mx.test"] and got["backup.mx.test"]) do
        assert(now() < deadline, "timed out waiting")
        finished = finished + r:step(0.05)
      end
      assert.equal(0, r:pending())
      assert.equal("mx.simple.mx.test", got["simple.mx.test"].p.hosts[1].name)
      assert.is_nil(got["nosuch.mx.test"].p)
      assert.equal("NXDOMAIN", got["nosuch.mx.test"].code)
      assert.equal("string", type(got["nosuch.mx.test"].msg))
      for _, d in ipairs(domains) do
        assert.is_true(rawequal(qs[d], got[d].q))
        assert.is_true(qs[d]:done())
        local p, _, code = qs[d]:result()
        if got[d].p then
          assert.same(got[d].p, p)
        else
          assert.equal(got[d].code, code)
        end
      end
      assert.equal(0, r:step(0))
      assert.equal(3, finished)
      r:close()
    end)

    it("counts finished plans in step's return value", function()
      local r = resolver()
      -- held: a query nobody references may be collected before it finishes
      local q1, q2 = r:submit("user@[192.0.2.1]"), r:submit("user@[192.0.2.2]")
      collectgarbage()
      assert.equal(2, r:step(0))
      assert.is_true(q1:done() and q2:done())
      local q = r:submit("simple.mx.test")
      local n, deadline = 0, now() + 5
      while not q:done() do
        assert(now() < deadline, "timed out waiting")
        n = n + r:step(0.05)
      end
      assert.equal(1, n)
      assert.equal(0, r:step(0))
      r:close()
    end)

    it("lets a callback error out of step, and runs the others at the next step", function()
      local r = resolver()
      local calls = { 0, 0, 0 }
      for i = 1, 3 do
        r:submit("user@[192.0.2." .. i .. "]", function()
          calls[i] = calls[i] + 1
          if i == 2 then error("callback two fails") end
        end)
      end
      raises_matching("callback two fails", function() r:step(0) end)
      assert.equal(1, calls[2])
      assert.has_no.errors(function() r:step(0) end)
      assert.same({ 1, 1, 1 }, calls)
      assert.has_no.errors(function() r:step(0) end)
      assert.same({ 1, 1, 1 }, calls)
      r:close()
    end)

    it("cancels one query with q:cancel()", function()
      local r = fault_resolver()
      local q = r:submit("never.test")
      r:step(0)
      assert.equal(1, r:pending())
      q:cancel()
      assert.equal(0, r:pending())
      assert.is_true(q:done())
      local p, _, code = q:result()
      assert.is_nil(p)
      assert.equal("CANCELLED", code)
      r:close()
    end)

    it("runs a cancelled query's callback at the next step, once, with CANCELLED", function()
      local r = fault_resolver()
      local calls = {}
      local q = r:submit("never.test", function(p, msg, code, qq)
        calls[#calls + 1] = { p = p, msg = msg, code = code, q = qq }
      end)
      r:step(0)
      q:cancel()
      assert.equal(0, #calls)          -- never from inside cancel
      assert.equal(0, r:timeout())     -- due now: the next step reports it
      assert.equal(1, r:step(1))
      assert.equal(1, #calls)
      assert.is_nil(calls[1].p)
      assert.equal("CANCELLED", calls[1].code)
      assert.equal(q, calls[1].q)
      assert.equal(0, r:step(0))
      r:close()                        -- released: not called again
      assert.equal(1, #calls)
    end)
  end)

  describe("targets", function()
    for _, d in ipairs { "pool.mx.test", "backup.mx.test", "multi.mx.test", "shared.mx.test" } do
      it("yields exactly the plan's targets, in order, for " .. d, function()
        local r1, r2 = resolver { seed = 99 }, resolver { seed = 99 }
        local p = assert(r1:resolve(d))
        local got = {}
        local it, st = r2:targets(d)
        for t in it, st do got[#got + 1] = t end
        assert.same(addrs_of_targets(p.targets), addrs_of_targets(got))
        assert.is_nil(st.code)
        r1:close()
        r2:close()
      end)
    end

    it("ends on failure, with state.code and state.message", function()
      local r = resolver()
      for input, want in pairs { ["nosuch.mx.test"] = "NXDOMAIN", ["user@"] = "BADNAME",
                                 ["null.nullmx.test"] = "NULLMX" } do
        local n = 0
        local it, st = r:targets(input)
        for _ in it, st do n = n + 1 end
        assert.equal(0, n)
        assert.equal(want, st.code)
        assert.equal("string", type(st.message))
        assert.is_true(#st.message > 0)
      end
      r:close()
    end)

    local function first_target(r)
      local it, st, ctl, closing = r:targets("slow.test")
      local t = it(st, ctl)
      return t, st, closing
    end

    it("yields the first level before a slower level is resolved", function()
      local r = fault_resolver()
      local t0 = now()
      local t, st = first_target(r)
      collectgarbage()
      assert.is_true(now() - t0 < 1)
      assert.same({ host = "fast.slow.test", pref = 10, addr = "192.0.2.1", family = "ipv4", port = 25 }, t)
      assert.equal(1, r:pending()) -- stuck.slow.test is still asked
      assert.is_nil(st.code) -- (and st, holding the query, stays alive until here)
      r:close()
    end)

    it("cancels the rest of the resolution when its state is closed", function()
      local r = fault_resolver()
      local _, st = first_target(r)
      assert.equal(1, r:pending())
      st:close()
      assert.equal(0, r:pending())
      r:close()
    end)

    it("cancels when a loop breaks out of it (Lua 5.4 closes the for state)", function()
      if _VERSION ~= "Lua 5.4" then return end
      local chunk = assert(load([[
        local r, now = ...
        local t0, seen = now(), 0
        for t in r:targets("slow.test") do
          seen = seen + 1
          if t.pref == 10 then break end
        end
        local pending = r:pending()
        local closed_too
        do
          local rr <close> = r
          closed_too = rr
        end
        return seen, pending, now() - t0, closed_too
      ]], "=break", "t"))
      local r = fault_resolver()
      local seen, pending, dt = chunk(r, now)
      assert.equal(1, seen)
      assert.equal(0, pending)
      assert.is_true(dt < 1, "took " .. dt .. " s")
      -- the resolver held in a <close> variable was closed on leaving the block
      raises_matching("closed", function() r:pending() end)
    end)
  end)

  describe("mxroute.class", function()
    local CLASSES = plans.CLASSES

    it("classes every code", function()
      local n = 0
      for code, class in pairs(CLASSES) do
        assert.equal(class, mxroute.class(code), code)
        n = n + 1
      end
      assert.equal(20, n)
      for code in pairs(mxroute.codes) do
        if code ~= "OK" then assert.truthy(CLASSES[code], "undocumented code " .. code) end
      end
    end)

    it("raises for an unknown code", function()
      assert.has_error(function() mxroute.class("NOSUCH") end)
      assert.has_error(function() mxroute.class(nil) end)
    end)
  end)
end)
