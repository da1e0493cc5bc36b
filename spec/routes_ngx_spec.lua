-- The same routes through mxroute.ngx (cosockets in nginx) as through the
-- core resolver: one policy — a Postfix transport(5) table, a sender rule,
-- fallback relays and a hook — gives the same plans, routes, ports,
-- failures and targets() in both (DESIGN 7: routes are honoured
-- identically by every transport). Against Knot (route.test zone).
local cjson = require "cjson"
local knot = require "support.knot"
local nginx = require "support.nginx"
local mxroute = require "mxroute"

-- The policy, loaded in this process and inside nginx.
local POLICY = [==[
local routes = require "mxroute.routes"
return routes.new {
  map = routes.postfix [[
# a partner through its relay on the submission port
partner.route.test       smtp:[relay.route.test]:587
.partner.route.test      relay:hub.route.test:2525, [192.0.2.77]
old.route.test           error:5.1.2 this domain is retired
paused.route.test        retry:4.4.1 paused
]],
  { match = function(_, call) return call.sender == "vip@example.org" end,
    route = "smtp:[192.0.2.9]:465", name = "vip" },
  fallback = "[fallback.route.test]:2525",
  hooks = function(plan)
    for _, t in ipairs(plan.targets) do t.source = t.fallback and "198.51.100.2" or "198.51.100.1" end
  end,
}
]==]

local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"
local M = {}
local POLICY = %q

function M.resolve()
  local args = ngx.req.get_uri_args()
  local rt = (loadstring or load)(POLICY)()
  local r = mxngx.resolver { nameservers = { args.ns }, timeout = 1, tries = 2, routes = rt }
  local call = { sender = args.sender }
  local out = {}
  if args.mode == "targets" then
    out.targets = {}
    local it, st = r:targets(args.to, call)
    for t in it, st do out.targets[#out.targets + 1] = t end
    out.code = st.code
  else
    local p, msg, code, info = r:resolve(args.to, call)
    out = { plan = p, message = msg, code = code, info = info }
  end
  r:close()
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(out))
end

return M
]==]

local function norm(v) return cjson.decode(cjson.encode(v)) end

-- Targets as comparable strings (a host's addresses are in random order:
-- sorted within each host).
local function dests(targets)
  local out = {}
  for i, t in ipairs(targets or {}) do
    out[i] = table.concat({ t.host, t.addr, ("%d"):format(t.port), tostring(t.fallback or false),
                            t.source or "-" }, " ")
  end
  return out
end

describe("routes through mxroute.ngx", function()
  local k, srv

  setup(function()
    k = knot.shared()
    srv = nginx.start {
      server = 'location = /route { content_by_lua_block { require("rtest").resolve() } }',
      files = { ["rtest.lua"] = APP:format(POLICY) },
    }
  end)

  teardown(function() if srv then srv.stop() end end)

  local function via_ngx(to, sender, mode)
    local res = srv.get(nginx.path("/route", { to = to, ns = k.addr, sender = sender, mode = mode }))
    assert.equal(200, res.status, tostring(res.body))
    return cjson.decode(res.body)
  end

  local function via_core(to, sender)
    local r = mxroute.resolver { nameservers = { k.addr }, timeout = 1, tries = 2,
                                 routes = (loadstring or load)(POLICY)() }
    local p, msg, code, info = r:resolve(to, { sender = sender })
    r:close()
    return norm { plan = p, message = msg, code = code, info = info }
  end

  -- Hosts with one address each keep their order; relay.route.test has
  -- two (random order): compare sorted for it.
  local function same_plans(to, sender)
    local a, b = via_ngx(to, sender), via_core(to, sender)
    assert.equal(b.code, a.code)
    assert.equal(b.message, a.message)
    if b.plan then
      local da, db = dests(a.plan.targets), dests(b.plan.targets)
      table.sort(da)
      table.sort(db)
      assert.same(db, da)
      assert.same(b.plan.route, a.plan.route)
    else
      assert.same(b.info.route, a.info.route)
      assert.equal(b.info.enhanced, a.info.enhanced)
    end
    return a
  end

  it("routes a recipient to [relay]:port, with the fallback relay after it", function()
    local a = same_plans("user@partner.route.test")
    assert.same({ key = "partner.route.test", transport = "smtp",
                  nexthop = "[relay.route.test]:587" }, a.plan.route)
    local d = dests(a.plan.targets)
    table.sort(d)
    assert.same({
      "fallback.route.test 192.0.2.140 2525 true 198.51.100.2",
      "relay.route.test 192.0.2.110 587 false 198.51.100.1",
      "relay.route.test 2001:db8::110 587 false 198.51.100.1",
    }, d)
  end)

  it("routes subdomains to a nexthop list in order, as the core does", function()
    local a = same_plans("user@deep.sub.partner.route.test")
    local d = dests(a.plan.targets)
    assert.same({
      "mx1.hub.route.test 192.0.2.121 2525 false 198.51.100.1",
      "mx2.hub.route.test 192.0.2.122 2525 false 198.51.100.1",
      "[192.0.2.77] 192.0.2.77 25 false 198.51.100.1",
      "fallback.route.test 192.0.2.140 2525 true 198.51.100.2",
    }, d)
  end)

  it("routes by the call's sender", function()
    local a = same_plans("user@partner.route.test", "vip@example.org")
    assert.equal("vip", a.plan.route.key)
    assert.equal("192.0.2.9 465", a.plan.targets[1].addr .. " " .. ("%d"):format(a.plan.targets[1].port))
  end)

  it("rejects and defers with the route's text and enhanced code", function()
    local a = same_plans("user@old.route.test")
    assert.equal("REJECTED", a.code)
    assert.equal("5.1.2", a.info.enhanced)
    a = same_plans("user@paused.route.test")
    assert.equal("DEFERRED", a.code)
  end)

  it("uses the fallback relay alone when the plan fails temporarily", function()
    local a = same_plans("user@elsewhere.example")
    assert.same({ "fallback.route.test 192.0.2.140 2525 true 198.51.100.2" }, dests(a.plan.targets))
  end)

  it("yields the hooked targets from targets()", function()
    local a = via_ngx("user@deep.sub.partner.route.test", nil, "targets")
    assert.equal(4, #a.targets)
    assert.equal("198.51.100.1", a.targets[1].source)
    assert.equal(2525, a.targets[1].port)
  end)
end)
