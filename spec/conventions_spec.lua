-- Conventions a Lua user expects (README "Conventions"): timeouts in
-- seconds with a bound that catches milliseconds, mxroute._VERSION, plan
-- lists that JSON encoders write as [] when empty (dkjson here; the
-- OpenResty lua-cjson convention is described in the README), and the
-- OpenResty-style constructor mxroute.ngx.new returning nil, err.
local dkjson = require "dkjson"
local cjson = require "cjson"
local knot = require "support.knot"
local nginx = require "support.nginx"
local util = require "support.util"
local mxroute = require "mxroute"

describe("timeout", function()
  it("is in seconds, up to 60", function()
    mxroute.resolver({ nameservers = { "127.0.0.1:9" }, timeout = 60 }):close()
    mxroute.resolver({ nameservers = { "127.0.0.1:9" }, timeout = 0.25 }):close()
  end)

  it("refuses more than 60 with a message that says the unit", function()
    for _, t in ipairs { 61, 2000, 1e9 } do
      local ok, err = pcall(mxroute.resolver, { nameservers = { "127.0.0.1:9" }, timeout = t })
      assert.is_false(ok)
      assert.matches("option 'timeout'", err, 1, true)
      assert.matches("in seconds, not milliseconds", err, 1, true)
      assert.matches("more than 60 seconds", err, 1, true)
    end
  end)

  it("is refused by the CLI as a usage error, naming the option", function()
    local p = assert(io.popen(util.interpreter() .. " bin/mxroute --timeout 2000 x.test"
                              .. " 2>&1; printf '\\n%d' $?"))
    local text = p:read("*a")
    p:close()
    local out, status = text:match("^(.*)\n(%d+)$")
    assert.are.equal("64", status)
    assert.matches("--timeout", out, 1, true)
    assert.matches("not milliseconds", out, 1, true)
  end)
end)

describe("mxroute._VERSION", function()
  it("is the module's version string", function()
    assert.are.equal("string", type(mxroute._VERSION))
    assert.matches("^%d+%.%d+%.%d+$", mxroute._VERSION)
    assert.are.equal(mxroute.version, mxroute._VERSION)
  end)
end)

describe("plan lists as JSON", function()
  local ns
  setup(function() ns = knot.shared().addr end)

  local function resolve(input)
    local r = mxroute.resolver { nameservers = { ns }, seed = 1 }
    local plan, msg, code, info = r:resolve(input)
    r:close()
    return plan, msg, code, info
  end

  it("share one metatable, mxroute.array_mt, marked for dkjson", function()
    local p = assert(resolve("simple.mx.test"))
    assert.are.equal("table", type(mxroute.array_mt))
    assert.are.equal("array", mxroute.array_mt.__jsontype)
    for _, list in ipairs { p.hosts, p.targets, p.skipped, p.hosts[1].addrs } do
      assert.are.equal(mxroute.array_mt, getmetatable(list))
    end
    -- the items themselves are objects
    assert.is_nil(getmetatable(p.hosts[1]))
  end)

  it("encode as [] with dkjson when empty, as arrays when not", function()
    local p = assert(resolve("simple.mx.test"))
    assert.are.equal(0, #p.skipped)
    local text = dkjson.encode(p)
    assert.matches('"skipped":[]', text, 1, true)
    local back = dkjson.decode(text)
    assert.are.equal("mx.simple.mx.test", back.hosts[1].name)
    assert.are.equal(2, #back.targets)
    -- a failure's info too
    local plan, _, code, info = resolve("noexist.mx.test")
    assert.is_nil(plan)
    assert.are.equal("NXDOMAIN", code)
    assert.matches('"skipped":[]', dkjson.encode(info), 1, true)
  end)

  it("encode as [] with dkjson from mxroute.plan too", function()
    local p = assert(mxroute.plan({ domain = "x.test", mx = { { pref = 10, name = "mx.x.test" } },
                                    addrs = { ["mx.x.test"] = { "192.0.2.1" } } }, { seed = 1 }))
    assert.matches('"skipped":[]', dkjson.encode(p), 1, true)
  end)

  it("still encode with the installed lua-cjson", function()
    -- Debian's lua-cjson 2.1.0 has no array_mt, so its [] cannot be shown
    -- here; the lists must still be plain arrays to it.
    local p = assert(resolve("simple.mx.test"))
    local back = cjson.decode(cjson.encode(p))
    assert.are.equal("mx.simple.mx.test", back.hosts[1].name)
    assert.are.equal(2, #back.targets)
  end)
end)

describe("mxroute.ngx.new", function()
  local srv, ns

  local APP = [==[
local mxngx = require "mxroute.ngx"
local cjson = require "cjson"
local M = {}
function M.run()
  local out = {}
  for _, opts in ipairs {
    { family = "ipx" }, { timeout = 2000 }, { nameservers = { "nonsense" } }, { bogus = 1 },
  } do
    local r, err, code = mxngx.new(opts)
    out[#out + 1] = { r = r ~= nil, err = err, code = code }
  end
  local r, err = mxngx.new { nameservers = { ngx.var.arg_ns }, seed = 1 }
  local plan, msg = r and r:resolve("simple.mx.test")
  out[#out + 1] = { r = r ~= nil, err = err, host = plan and plan.hosts[1].name, msg = msg }
  if r then r:close() end
  ngx.say(cjson.encode(out))
end
return M
]==]

  setup(function()
    ns = knot.shared().addr
    srv = nginx.start {
      server = 'location = /new { content_by_lua_block { require("newapp").run() } }',
      files = { ["newapp.lua"] = APP },
    }
  end)

  teardown(function() if srv then srv.stop() end end)

  it("returns nil, err, BADOPT on a bad option and a working resolver otherwise", function()
    local res = srv.get("/new?ns=" .. ns)
    assert.are.equal(200, res.status, res.body)
    local out = cjson.decode(res.body)
    for i, field in ipairs { "family", "timeout", "nameservers", "bogus" } do
      assert.is_false(out[i].r)
      assert.are.equal("BADOPT", out[i].code)
      assert.matches("^mxroute%.ngx%.resolver: ", out[i].err)
      assert.matches(field, out[i].err, 1, true)
    end
    assert.matches("not milliseconds", out[2].err, 1, true)
    assert.is_true(out[5].r)
    assert.are.equal("mx.simple.mx.test", out[5].host)
  end)
end)
