-- The rock (rockspec/mxroute-scm-1.rockspec): `luarocks lint` passes, and
-- `luarocks make` installs it into a scratch tree, without any download,
-- for the interpreter running this spec: Lua 5.4, or LuaJIT through
-- rockspec/luajit-config.lua (the documented command). The installed
-- module and command then resolve against Knot from that tree alone.
local cjson = require "cjson"
local knot = require "support.knot"
local util = require "support.util"

local quote = util.quote
local LUA = util.interpreter()
local JIT = LUA:find("luajit", 1, true) ~= nil

-- stdout+stderr of a shell command, and whether it exited 0.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; printf '\\n%d' $?"))
  local text = p:read("*a")
  p:close()
  local out, status = text:match("^(.*)\n(%d+)$")
  return out, status == "0"
end

-- The luarocks command for this interpreter (README "Install").
local function luarocks(args)
  if JIT then
    return "LUAROCKS_CONFIG=rockspec/luajit-config.lua luarocks --lua-version 5.1 " .. args
  end
  return "luarocks --lua-version 5.4 " .. args
end

describe("the rock", function()
  local dir, tree, ns

  setup(function()
    ns = knot.shared().addr
    dir = util.make_dir("rock")
    tree = dir .. "/tree"
    -- no rock server at all: a dependency to download would fail the build
    local empty = dir .. "/no-server"
    assert(util.execute("mkdir -p " .. quote(empty)))
    local out, ok = sh(luarocks("--tree " .. quote(tree) .. " --only-server "
                                .. quote(empty) .. " make rockspec/mxroute-scm-1.rockspec"))
    assert(ok, out)
  end)

  teardown(function() util.remove_dir(dir) end)

  it("passes luarocks lint", function()
    local out, ok = sh("luarocks lint rockspec/mxroute-scm-1.rockspec")
    assert(ok, out)
  end)

  it("installs a command that runs under this interpreter", function()
    local wrapper = assert(util.read_file(tree .. "/bin/mxroute"))
    local interp = wrapper:match("exec '([^']+)'")
    assert.are.equal(JIT and "/usr/bin/luajit" or "/usr/bin/lua5.4", interp)
  end)

  it("resolves through the tree's command, from any directory", function()
    local out, ok = sh("cd / && env -u LUA_PATH -u LUA_CPATH " .. quote(tree .. "/bin/mxroute")
                       .. " --json --nameserver " .. ns .. " user@simple.mx.test")
    assert(ok, out)
    local p = cjson.decode(out)
    assert.are.equal("ok", p.status)
    assert.are.equal("mx.simple.mx.test", p.hosts[1].name)
  end)

  it("resolves through the tree's module, loaded from the tree", function()
    local v = JIT and "5.1" or "5.4"
    local script = "local m = require 'mxroute' "
      .. "local r = m.resolver { nameservers = { '" .. ns .. "' } } "
      .. "local p = assert(r:resolve('multi.mx.test')) r:close() "
      .. "io.write(package.searchpath('mxroute.core', package.cpath), ' ', "
      .. "p.hosts[1].name, ' ', #p.targets)"
    local out, ok = sh("cd / && env LUA_PATH=" .. quote(tree .. "/share/lua/" .. v .. "/?.lua;;")
                       .. " LUA_CPATH=" .. quote(tree .. "/lib/lua/" .. v .. "/?.so;;") .. " "
                       .. LUA .. " -e " .. quote(script))
    assert(ok, out)
    assert.are.equal(tree .. "/lib/lua/" .. v .. "/mxroute/core.so mh.multi.mx.test 4", out)
  end)
end)
