-- examples/routes/ as people would use it, against Knot serving
-- examples/zones (the `make demo` world): the commented transport table
-- routes as its comments say, and the Lua policy runs.
local knot = require "support.knot"
local util = require "support.util"
local mxroute = require "mxroute"

local LUA = util.interpreter()

describe("examples/routes", function()
  local demo

  setup(function() demo = knot.start { zones = "examples/zones" } end)
  teardown(function() if demo then demo.stop() end end)

  local function resolve(input, call)
    local text = assert(util.read_file("examples/routes/transport"))
    local r = mxroute.resolver { nameservers = { demo.addr }, timeout = 2,
                                 routes = mxroute.routes.postfix(text) }
    local p, msg, code, info = r:resolve(input, call)
    r:close()
    return p, msg, code, info
  end

  local function dest(p)
    assert(p, "expected a plan")
    local out = {}
    for i, t in ipairs(p.targets) do out[i] = t.addr .. " " .. t.port end
    return out
  end

  it("transport: the partner's submission relay on port 587, no MX lookup", function()
    assert.same({ "198.51.100.45 587" }, dest(resolve("user@partner.test")))
    assert.same({ "198.51.100.45 587" }, dest(resolve("user@eu.partner.test")))
  end)

  it("transport: an address key beats the domain key", function()
    assert.same({ "192.0.2.99 2525" }, dest(resolve("abuse@bigmail.test")))
  end)

  it("transport: a continued nexthop list, MX at port 2525 then our relay", function()
    local d = dest(resolve("postmaster@bigmail.test"))
    assert.equal(8, #d)
    for i = 1, 6 do assert.matches(" 2525$", d[i]) end
    table.sort(d, function(a, b) return a:sub(-3) < b:sub(-3) end)
    local tail = { d[1], d[2] }
    table.sort(tail)
    assert.same({ "2001:db8:25::25 25", "203.0.113.25 25" }, tail)
  end)

  it("transport: a retired domain bounces, a paused one is deferred", function()
    local _, msg, code, info = resolve("user@oldcorp.test")
    assert.equal("REJECTED", code)
    assert.equal("oldcorp.test is retired, write to example.test", msg)
    assert.equal("5.1.2", info.enhanced)
    _, _, code, info = resolve("info@smallshop.test")
    assert.equal("DEFERRED", code)
    assert.equal("4.3.2", info.enhanced)
  end)

  it("transport: other domains keep their MX", function()
    local p = resolve("postmaster@example.test")
    assert.is_nil(p.route)
    assert.equal(6, #p.targets)
  end)

  it("policy.lua prints routes, ports, fallback relays and source addresses", function()
    local cmd = ("cd %s && %s examples/routes/policy.lua %s user@partner.test ceo@bigmail.test=billing@example.test"
                 .. " user@oldcorp.test 2>&1"):format(util.quote(os.getenv("MXR_ROOT") or "."), LUA, demo.addr)
    local p = assert(io.popen(cmd))
    local out = p:read("*a")
    p:close()
    assert.truthy(out:find("user@partner.test: route partner.test -> smtp:[submit.partner.test]:587", 1, true), out)
    assert.truthy(out:match("submit%.partner%.test%s+198%.51%.100%.45%s+port 587%s+from 203%.0%.113%.25\n"), out)
    assert.truthy(out:match("mx2%.example%.test%s+198%.51%.100%.20%s+port 2525%s+from 203%.0%.113%.26 %(fallback%)"),
                  out)
    assert.truthy(out:find("ceo@bigmail.test: route billing -> smtp:[relay.example.test]:587", 1, true), out)
    assert.truthy(out:find("user@oldcorp.test: REJECTED oldcorp.test is retired, write to example.test [5.1.2]",
                           1, true), out)
  end)
end)
