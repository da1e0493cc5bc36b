-- mxroute --routes FILE: bin/mxroute run as a subprocess against Knot
-- (route.test zone) with a Postfix transport(5) table. Text output shows
-- the route and the ports, --json carries route and each target's port,
-- error:/retry: routes exit with their class, a bad table is a usage
-- error naming the line.
local cjson = require "cjson"
local knot = require "support.knot"
local util = require "support.util"

local LUA = util.interpreter()

local TABLE = [[
# relays and retired domains for the specs
partner.route.test       smtp:[relay.route.test]:587
.partner.route.test      relay:hub.route.test:2525, [192.0.2.77]
old.route.test           error:5.1.2 this domain is retired
paused.route.test        retry:4.4.1 paused
]]

local function tmpfile(name, text)
  local dir = os.getenv("MXR_TEST_TMP") or "/tmp"
  local path = dir .. "/" .. name
  util.write_file(path, text)
  return path
end

-- bin/mxroute ARGS: stdout, stderr, exit status.
local function mxroute(args)
  return util.run(LUA .. " bin/mxroute", args)
end

describe("mxroute --routes FILE", function()
  local ns, file

  setup(function()
    ns = knot.shared().addr
    file = tmpfile("routes-cli.transport", TABLE)
  end)

  local function run(...)
    local args = { "--nameserver", ns, "--routes", file, "--seed", "1" }
    for _, a in ipairs { ... } do args[#args + 1] = a end
    return mxroute(args)
  end

  it("shows the route and the port of each host in the text output", function()
    local out, err, status = run("user@partner.route.test")
    assert.equal("", err)
    assert.equal(0, status)
    local l = {}
    for line in out:gmatch("([^\n]*)\n") do l[#l + 1] = line end
    assert.equal("user@partner.route.test -> partner.route.test", l[1])
    assert.equal("  route: partner.route.test -> smtp:[relay.route.test]:587", l[2])
    assert.matches("^%s+0%s+relay%.route%.test%s+.* port 587$", l[4])
  end)

  it("carries route and each target's port in --json", function()
    local out, _, status = run("--json", "user@deep.sub.partner.route.test")
    assert.equal(0, status)
    local p = cjson.decode(out)
    assert.same({ key = ".partner.route.test", transport = "relay",
                  nexthop = "hub.route.test:2525, [192.0.2.77]" }, p.route)
    local d = {}
    for i, t in ipairs(p.targets) do d[i] = t.addr .. " " .. ("%d"):format(t.port) end
    assert.same({ "192.0.2.121 2525", "192.0.2.122 2525", "192.0.2.77 25" }, d)
    assert.truthy(out:find('"family":"ipv4","port":2525}', 1, true))
  end)

  it("exits 68 for an error: route with its text, route and enhanced code", function()
    local out, _, status = run("user@old.route.test")
    assert.equal(68, status)
    assert.truthy(out:find("user@old.route.test: REJECTED (permanent): this domain is retired", 1, true))
    assert.truthy(out:find("route: old.route.test -> error:5.1.2 this domain is retired (status 5.1.2)", 1, true))
    out, _, status = run("--json", "user@old.route.test")
    assert.equal(68, status)
    local o = cjson.decode(out)
    assert.equal("REJECTED", o.code)
    assert.equal("5.1.2", o.enhanced)
    assert.equal("old.route.test", o.route.key)
  end)

  it("exits 75 for a retry: route", function()
    local out, _, status = run("--json", "user@paused.route.test")
    assert.equal(75, status)
    assert.equal("DEFERRED", cjson.decode(out).code)
  end)

  it("leaves unrouted recipients alone (port 25, no route)", function()
    local out, _, status = run("--json", "user@hub.route.test")
    assert.equal(0, status)
    local p = cjson.decode(out)
    assert.is_nil(p.route)
    assert.equal(25, p.targets[1].port)
    out = run("user@hub.route.test")
    assert.falsy(out:find("route:", 1, true))
    assert.falsy(out:find("port", 1, true))
  end)

  it("is a usage error (64) for a bad table, naming the file and line", function()
    local bad = tmpfile("routes-cli-bad.transport", "# ok\nexample.test smtp:[relay.test]\nbroken.test smtp:1.2.3.4\n")
    local _, err, status = mxroute { "--nameserver", ns, "--routes", bad, "user@example.test" }
    assert.equal(64, status)
    assert.truthy(err:find("--routes " .. bad .. ": line 3: nexthop '1.2.3.4': an IP address needs brackets", 1, true),
                  err)
    _, err, status = mxroute { "--routes", bad .. ".missing", "user@example.test" }
    assert.equal(64, status)
    assert.truthy(err:find("--routes: cannot read", 1, true), err)
  end)
end)
