-- Routing policies in Lua (DESIGN 7): rule tables, match functions on
-- the call's options (the sender), fallback relays, hooks that rewrite a
-- finished plan, and the checks of routes.postfix and the routes option
-- (a bad line names its number and what is wrong). Against Knot
-- (spec/zones/route.test.zone); out-of-zone names are REFUSED there,
-- which is how a temporary failure is made here.
local knot = require "support.knot"
local plans = require "support.plans"
local mxroute = require "mxroute"
local routes = mxroute.routes

local k

local function resolver(rt, opts)
  local o = { nameservers = { k.addr }, timeout = 1, tries = 1, seed = 3, routes = rt }
  for key, v in pairs(opts or {}) do o[key] = v end
  return mxroute.resolver(o)
end

local function resolve(rt, input, call, opts)
  local r = resolver(rt, opts)
  local p, msg, code, info = r:resolve(input, call)
  r:close()
  return p, msg, code, info
end

local function dest(p)
  assert(p, "expected a plan")
  local out = {}
  for i, t in ipairs(p.targets) do
    out[i] = t.addr .. " " .. t.port .. (t.fallback and " fallback" or "")
  end
  return out
end

describe("routes in Lua", function()
  setup(function() k = knot.shared() end)

  describe("rules", function()
    it("key rules follow the transport(5) search order", function()
      local rt = {
        { key = "partner.route.test", route = "smtp:[192.0.2.77]:2525" },
        { key = ".partner.route.test", route = "smtp:hub.route.test" },
      }
      assert.same({ "192.0.2.77 2525" }, dest(resolve(rt, "u@partner.route.test")))
      assert.same({ "192.0.2.121 25", "192.0.2.122 25" }, dest(resolve(rt, "u@sub.partner.route.test")))
    end)

    it("a map table and a routes.postfix table give the same rules", function()
      local a = resolve({ map = { ["partner.route.test"] = "relay:[192.0.2.77]" } }, "u@partner.route.test")
      local b = resolve({ map = routes.postfix("partner.route.test relay:[192.0.2.77]") }, "u@partner.route.test")
      assert.same(dest(a), dest(b))
      assert.same(a.route, b.route)
      assert.equal("relay", a.route.transport)
    end)

    it("match functions see the sender given to the call, before any key", function()
      local seen
      local rt = {
        { match = function(rcpt, call)
            seen = { rcpt.domain, rcpt.user, rcpt["local"], call.sender }
            return call.sender == "ceo@example.org"
          end, route = "smtp:[192.0.2.9]:587", name = "vip senders" },
        { key = "partner.route.test", route = "smtp:[192.0.2.77]" },
      }
      local p = resolve(rt, "User@Partner.Route.Test", { sender = "ceo@example.org" })
      assert.same({ "192.0.2.9 587" }, dest(p))
      assert.same({ key = "vip senders", transport = "smtp", nexthop = "[192.0.2.9]:587" }, p.route)
      assert.same({ "partner.route.test", "user", "user", "ceo@example.org" }, seen)
      assert.same({ "192.0.2.77 25" }, dest(resolve(rt, "u@partner.route.test", { sender = "x@example.org" })))
      assert.same({ "192.0.2.77 25" }, dest(resolve(rt, "u@partner.route.test")))
    end)

    it("a match function may return the route itself", function()
      local rt = { { match = function(rcpt)
        if rcpt.domain == "partner.route.test" then return "smtp:plain.route.test:2525" end
      end } }
      assert.same({ "192.0.2.130 2525" }, dest(resolve(rt, "u@partner.route.test")))
      assert.equal("rule 1", resolve(rt, "u@partner.route.test").route.key)
      assert.same({ "192.0.2.102 25" }, dest(resolve(rt, "u@sub.partner.route.test")))
    end)

    it("submit and targets pass the call's options to match functions", function()
      local rt = { { match = function(_, call) return call.sender == "a@b.test" end, route = "smtp:[192.0.2.9]" } }
      local r = resolver(rt)
      local got
      r:submit("u@partner.route.test", function(p) got = p end, { sender = "a@b.test" })
      while not got do r:step(1) end
      assert.same({ "192.0.2.9 25" }, dest(got))
      local list = {}
      for t in r:targets("u@partner.route.test", { sender = "a@b.test" }) do list[#list + 1] = t.addr end
      assert.same({ "192.0.2.9" }, list)
      r:close()
    end)

    it("a match function that raises fails that plan only (HOOK)", function()
      local rt = { { match = function(rcpt)
        if rcpt.domain == "partner.route.test" then error("policy database is down") end
      end, route = "smtp:[192.0.2.9]" } }
      local p, msg, code = resolve(rt, "u@partner.route.test")
      assert.is_nil(p)
      assert.equal("HOOK", code)
      assert.matches("policy database is down", msg, 1, true)
      assert.same({ "192.0.2.102 25" }, dest(resolve(rt, "u@sub.partner.route.test")))
    end)
  end)

  describe("fallback relays", function()
    local rt = {
      { key = "partner.route.test", route = "smtp:" },
      fallback = { "[fallback.route.test]:2525", "backup.route.test" },
    }

    it("come after the plan's own targets, marked fallback", function()
      local p = resolve(rt, "u@partner.route.test")
      assert.same({ "192.0.2.101 25", "192.0.2.140 2525 fallback", "192.0.2.150 25 fallback" }, dest(p))
      assert.is_true(p.targets[2].fallback)
      assert.is_nil(p.targets[1].fallback)
    end)

    it("apply to unrouted recipients too", function()
      assert.same({ "192.0.2.102 25", "192.0.2.140 2525 fallback", "192.0.2.150 25 fallback" },
                  dest(resolve(rt, "u@sub.partner.route.test")))
    end)

    it("are used alone when the plan fails temporarily", function()
      local p = resolve(rt, "u@elsewhere.example")
      assert.same({ "192.0.2.140 2525 fallback", "192.0.2.150 25 fallback" }, dest(p))
      assert.same({ { name = "elsewhere.example", pref = 0, code = "REFUSED" } }, plans.skipped_of(p))
    end)

    it("are not used when the plan fails permanently", function()
      local p, _, code = resolve(rt, "u@nxdomain.route.test")
      assert.is_nil(p)
      assert.equal("NXDOMAIN", code)
    end)

    it("are not used for error: and retry: routes", function()
      local _, _, code = resolve({ { key = "partner.route.test", route = "retry:later" },
                                   fallback = "[192.0.2.140]" }, "u@partner.route.test")
      assert.equal("DEFERRED", code)
    end)
  end)

  describe("hooks", function()
    it("rewrite the finished plan: drop, reorder, annotate", function()
      local rt = {
        { key = "partner.route.test", route = "smtp:[relay.route.test], hub.route.test" },
        hooks = {
          function(plan) -- drop IPv6 targets
            local keep = {}
            for _, t in ipairs(plan.targets) do if t.family == "ipv4" then keep[#keep + 1] = t end end
            plan.targets = keep
          end,
          function(plan) -- reorder: reverse, returned as a new plan
            local rev = {}
            for i = #plan.targets, 1, -1 do rev[#rev + 1] = plan.targets[i] end
            local copy = {}
            for key, v in pairs(plan) do copy[key] = v end
            copy.targets = rev
            return copy
          end,
          function(plan, ctx) -- annotate: a source address per target
            for _, t in ipairs(plan.targets) do
              t.source = ctx.call.sender == "b@x.test" and "198.51.100.2" or "198.51.100.1"
            end
            plan.note = ctx.route and ctx.route.key
          end,
        },
      }
      local p = resolve(rt, "u@partner.route.test", { sender = "b@x.test" })
      assert.same({ "192.0.2.122 25", "192.0.2.121 25", "192.0.2.110 25" }, dest(p))
      for _, t in ipairs(p.targets) do assert.equal("198.51.100.2", t.source) end
      assert.equal("partner.route.test", p.note)
      assert.equal("partner.route.test", p.route.key)
    end)

    it("apply to targets(): it yields the rewritten targets", function()
      local rt = { hooks = function(plan) plan.targets = { plan.targets[#plan.targets] } end }
      local r = resolver(rt)
      local list = {}
      for t in r:targets("u@hub.route.test") do list[#list + 1] = t.addr end
      r:close()
      assert.same({ "192.0.2.122" }, list)
    end)

    it("run from step for submit callbacks", function()
      local ran = 0
      local r = resolver({ hooks = function(plan) ran = ran + 1; plan.hooked = true end })
      local got
      local q = r:submit("u@partner.route.test", function(p) got = p end)
      assert.equal(0, ran)
      while not got do r:step(1) end
      assert.equal(1, ran)
      assert.is_true(got.hooked)
      assert.is_true(q:result().hooked)
      assert.equal(1, ran) -- once per plan
      r:close()
    end)

    it("an error in a hook fails that plan only (HOOK, a clear message)", function()
      local rt = { hooks = function(plan)
        if plan.domain == "partner.route.test" then error("no source address for this route") end
      end }
      local r = resolver(rt)
      local p, msg, code, info = r:resolve("u@partner.route.test")
      assert.is_nil(p)
      assert.equal("HOOK", code)
      assert.equal("temporary", mxroute.class(code))
      assert.matches("routing hook 1 failed: .*no source address for this route", msg)
      assert.equal("partner.route.test", info.domain)
      assert.same({ "192.0.2.102 25" }, dest(r:resolve("u@sub.partner.route.test")))
      r:close()
    end)

    it("dropping every target fails the plan (NOHOSTS)", function()
      local _, msg, code = resolve({ hooks = function(plan) plan.targets = {} end }, "u@partner.route.test")
      assert.equal("NOHOSTS", code)
      assert.matches("dropped by a routing hook", msg, 1, true)
    end)

    it("do not run on failed plans", function()
      local ran = false
      local _, _, code = resolve({ hooks = function() ran = true end }, "u@nxdomain.route.test")
      assert.equal("NXDOMAIN", code)
      assert.is_false(ran)
    end)
  end)

  describe("checks", function()
    local function postfix_error(text, opts)
      local ok, err = pcall(routes.postfix, text, opts)
      assert.is_false(ok)
      return tostring(err)
    end

    it("a bad line names its number and what is wrong", function()
      local cases = {
        { "# c\n\npartner.route.test\n", "line 3: 'partner.route.test' has no result" },
        { "a.test smtp:[a.test]\n  \n b..test\n", "line 1: bad host in nexthop 'b..test'" }, -- continued
        { "  a.test smtp:\n", "line 1: continuation line" },
        { "a.test smtp:192.0.2.1\n", "an IP address needs brackets" },
        { "a.test smtp:[a.test]:99999\n", "out of range" },
        { "a.test smtp:a.test:nosuch\n", "unknown service 'nosuch'" },
        { "a.test lmtp:unix:/var/run/lmtp\n", "local socket" },
        { "a.test smtp:[2001:db8::1]\n", "[ipv6:ADDRESS]" },
        { "a.test smtp:[ipv6:nonsense]\n", "bad address" },
        { "a..test smtp:\n", "line 1: key 'a..test'" },
        { "@a.test smtp:\n", "'@domain' is not a transport(5) key" },
        { "x\na.test smtp:\nb.test smtp:\nA.TEST. relay:\n", "line 1:" },
        { "a.test smtp:\nb.test smtp:\nA.TEST. relay:\n", "line 3: key 'A.TEST.' is already given on line 1" },
        { "a.test smtp:a.test%\n", "bad host" },
        { "a.test smtp:" .. string.rep("h.test,", 17) .. "\n", "more than 16 nexthops" },
      }
      for _, c in ipairs(cases) do
        local err = postfix_error(c[1])
        assert.matches("mxroute.routes.postfix: ", err, 1, true)
        assert.truthy(err:find(c[2], 1, true), ("%q: %s"):format(c[1], err))
      end
    end)

    it("a continuation line continues the logical line before it", function()
      local rt = routes.postfix("# a comment\npartner.route.test\n   smtp:[192.0.2.77],\n\t[192.0.2.78]\n")
      local a = rt:lookup("u@partner.route.test")
      assert.equal("[192.0.2.77], [192.0.2.78]", a.nexthop)
      assert.equal(2, #a.hops)
      local err = postfix_error("a.test smtp:[a.test]\n\n# comment\n b..test\n")
      assert.matches("line 1: bad host in nexthop 'b..test'", err, 1, true)
    end)

    it("options are checked", function()
      assert.matches("recipient_delimiter", postfix_error("", { recipient_delimiter = 1 }), 1, true)
      assert.matches("parent_domain_matches_subdomains",
                     postfix_error("", { parent_domain_matches_subdomains = "yes" }), 1, true)
    end)

    it("the resolver option 'routes' is checked at resolver{} time, naming the field", function()
      local function raises(opts, text)
        local ok, err = pcall(mxroute.resolver, opts)
        assert.is_false(ok)
        assert.matches("mxroute.resolver: option 'routes': " .. text, tostring(err), 1, true)
      end
      raises({ routes = 5 }, "expected")
      raises({ routes = { { key = "a..b", route = "smtp:" } } }, "rule 1: key 'a..b'")
      raises({ routes = { { match = 1 } } }, "rule 1: match must be a function")
      raises({ routes = { { key = "a.test", route = "smtp:1.2.3.4" } } }, "rule 1: nexthop '1.2.3.4'")
      raises({ routes = { fallback = {} } }, "field 'fallback'")
      raises({ routes = { hooks = { 1 } } }, "field 'hooks': hook 1 is not a function")
      raises({ routes = { bogus = 1 } }, "unknown field 'bogus'")
      raises({ routes = { { key = "a.test", route = "smtp:" }, { key = "A.test.", route = "relay:" } } },
             "rule 2: key 'A.test.' is given twice")
    end)

    it("call options must be a table, the sender a string", function()
      local r = resolver(nil)
      assert.has_error(function() r:resolve("u@partner.route.test", 5) end,
                       "mxroute: resolve: call options must be a table")
      assert.has_error(function() r:submit("u@partner.route.test", nil, { sender = 5 }) end,
                       "mxroute: submit: call option 'sender': expected a string")
      r:close()
    end)
  end)
end)
