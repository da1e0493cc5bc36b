-- The examples of examples/ (plain coroutines, cqueues, luv) run as their
-- users would run them, against Knot serving examples/zones (their
-- default domains) and the test zones (domains given as arguments), and
-- print real delivery targets in delivery order.
local knot = require "support.knot"
local cases = require "support.async_cases"
local util = require "support.util"
local mxroute = require "mxroute"

local EXAMPLES = { "coroutines", "cqueues", "luv" }
local DEFAULTS = { "postmaster@example.test", "bigmail.test", "partner.test",
                   "info@smallshop.test", "someone@nomail.test" }

local demo, shared

-- Run an example; returns its output, or fails the test.
local function run(name, args, env)
  local cmd = {}
  for k, v in pairs(env or {}) do cmd[#cmd + 1] = k .. "=" .. util.quote(v) end
  cmd[#cmd + 1] = util.interpreter()
  cmd[#cmd + 1] = util.quote("examples/" .. name .. ".lua")
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = util.quote(a) end
  local out, status = cases.shell(table.concat(cmd, " "))
  assert.equal(0, status, name .. " failed:\n" .. out)
  return out
end

-- Output lines by input: { targets = { "pref host addr", ... }, code = }.
local function parse(out)
  local by = {}
  for line in out:gmatch("[^\n]+") do
    local input, pref, host, addr = line:match("^(%S+)%s+(%d+)%s+(%S+)%s+(%S+)$")
    if input then
      by[input] = by[input] or { targets = {} }
      local t = by[input].targets
      t[#t + 1] = { pref = tonumber(pref), host = host, addr = addr }
    else
      local inp, code = line:match("^(%S+)%s+(%u+)%s+%S")
      assert(inp, "unexpected line: " .. line)
      by[inp] = by[inp] or { targets = {} }
      by[inp].code = code
    end
  end
  return by
end

local function keys(list)
  local out = {}
  for i, t in ipairs(list) do out[i] = t.pref .. " " .. t.host .. " " .. t.addr end
  table.sort(out)
  return out
end

-- The example's output must be what mxroute resolves for these inputs:
-- the same targets, in delivery order (non-decreasing preference).
local function check(out, addr, inputs)
  local got = parse(out)
  local r = mxroute.resolver { nameservers = { addr }, timeout = 2 }
  for _, input in ipairs(inputs) do
    local g = got[input]
    assert.is_truthy(g, "nothing printed for " .. input .. ":\n" .. out)
    local p, _, code = r:resolve(input)
    if p then
      assert.is_nil(g.code)
      assert.same(keys(p.targets), keys(g.targets))
      for i = 2, #g.targets do
        assert.is_true(g.targets[i - 1].pref <= g.targets[i].pref, input .. " out of order")
      end
    else
      assert.equal(code, g.code)
      assert.equal(0, #g.targets)
    end
  end
  r:close()
  return got
end

local function read(path)
  return assert(util.read_file((os.getenv("MXR_ROOT") or ".") .. "/" .. path), path)
end

-- An example without its leading comment lines (#! and the doc comment).
local function body(name)
  local lines, started = {}, false
  for line in (read("examples/" .. name .. ".lua") .. "\n"):gmatch("([^\n]*)\n") do
    if started or not (line:find("^#!") or line:find("^%-%-")) then
      started = true
      lines[#lines + 1] = line
    end
  end
  return (table.concat(lines, "\n"):gsub("\n+$", ""))
end

describe("the examples", function()
  it("are shown in doc/async.md exactly as they are", function()
    local doc = read("doc/async.md")
    for _, name in ipairs(EXAMPLES) do
      local block = doc:match("<!%-%- example: " .. name .. " %-%->\n```lua\n(.-)\n```")
      assert.is_truthy(block, "doc/async.md shows no " .. name .. " example")
      assert.equal(body(name), block)
    end
  end)

  setup(function()
    demo = knot.start { zones = "examples/zones" }
    shared = knot.shared()
  end)
  teardown(function() if demo then demo.stop() end end)

  for _, name in ipairs(EXAMPLES) do
    describe(name .. ".lua", function()
      it("prints the targets of the demo domains, the nameserver given as argument", function()
        local got = check(run(name, { demo.addr }), demo.addr, DEFAULTS)
        -- facts of examples/zones, independent of mxroute
        local ex = keys(got["postmaster@example.test"].targets)
        assert.same({ "10 mx1.example.test 192.0.2.10", "10 mx1.example.test 192.0.2.11",
                      "10 mx1.example.test 2001:db8:10::10", "10 mx1.example.test 2001:db8:10::11",
                      "20 mx2.example.test 198.51.100.20", "20 mx2.example.test 2001:db8:20::20" }, ex)
        assert.equal("NULLMX", got["someone@nomail.test"].code)
        assert.same({ "0 smallshop.test 2001:db8:80::80", "0 smallshop.test 203.0.113.80" },
                    keys(got["info@smallshop.test"].targets))
      end)

      it("takes the nameserver from MXR_NAMESERVER", function()
        check(run(name, {}, { MXR_NAMESERVER = demo.addr }), demo.addr, DEFAULTS)
      end)

      it("resolves the addresses given as arguments", function()
        local inputs = { "backup.mx.test", "user@pool.mx.test", "nosuch.mx.test", "alias.cname.test" }
        local args = { shared.addr }
        for _, i in ipairs(inputs) do args[#args + 1] = i end
        local got = check(run(name, args), shared.addr, inputs)
        assert.equal("NXDOMAIN", got["nosuch.mx.test"].code)
        assert.equal("10 mx1.backup.mx.test 192.0.2.11", keys(got["backup.mx.test"].targets)[1])
      end)
    end)
  end
end)
