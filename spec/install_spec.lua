-- `make install` (README "Install"): into a scratch PREFIX, the command
-- runs from anywhere without LUA_PATH/LUA_CPATH and resolves against
-- Knot; a small C program (spec/support/c/resolve.c) is compiled against
-- the installed header and shared library through pkg-config and run;
-- DESTDIR stages the same files, with the PREFIX paths written in.
local cjson = require "cjson"
local knot = require "support.knot"
local util = require "support.util"

local quote = util.quote

-- The objects were built with or without -Werror (make check): install
-- with the same flags so that nothing is rebuilt under running specs.
local function make_flags()
  local stamp = util.read_file("build/flags.stamp") or ""
  return stamp:find("-Werror", 1, true) and " WERROR=1" or ""
end

-- Run a shell command; returns its stdout+stderr and whether it exited 0
-- (the status is printed: LuaJIT's popen close does not return it).
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; printf '\\n%d' $?"))
  local text = p:read("*a")
  p:close()
  local out, status = text:match("^(.*)\n(%d+)$")
  return out, status == "0"
end

local function exists(path)
  return util.execute("test -e " .. quote(path))
end

describe("make install", function()
  local dir, prefix, stage, ns

  setup(function()
    ns = knot.shared().addr
    dir = util.make_dir("install")
    prefix = dir .. "/prefix"
    stage = dir .. "/stage"
    local out, ok = sh("make --no-print-directory install" .. make_flags()
                       .. " PREFIX=" .. quote(prefix))
    assert(ok, out)
    out, ok = sh("make --no-print-directory install" .. make_flags()
                 .. " PREFIX=/opt/mxroute DESTDIR=" .. quote(stage))
    assert(ok, out)
  end)

  teardown(function() util.remove_dir(dir) end)

  it("installs the header, both libraries, mxroute.pc, the modules and the command", function()
    for _, f in ipairs { "include/mxroute.h", "lib/libmxroute.a", "lib/libmxroute.so",
                         "lib/libmxroute.so.0", "lib/pkgconfig/mxroute.pc",
                         "share/lua/5.4/mxroute.lua", "share/lua/5.4/mxroute/cli.lua",
                         "share/lua/5.1/mxroute.lua", "lib/lua/5.4/mxroute/core.so",
                         "lib/lua/5.1/mxroute/core.so", "bin/mxroute" } do
      assert.is_true(exists(prefix .. "/" .. f), f)
    end
    -- the shared library's soname carries the major version
    local out = sh("objdump -p " .. quote(prefix .. "/lib/libmxroute.so"))
    assert.matches("SONAME%s+libmxroute%.so%.0\n", out)
  end)

  it("stages under DESTDIR with the PREFIX paths written into the command", function()
    assert.is_true(exists(stage .. "/opt/mxroute/bin/mxroute"))
    assert.is_true(exists(stage .. "/opt/mxroute/lib/pkgconfig/mxroute.pc"))
    local cmd = assert(util.read_file(stage .. "/opt/mxroute/bin/mxroute"))
    assert.matches('"/opt/mxroute/share/lua/5.4/?.lua;', cmd, 1, true)
    assert.is_nil(cmd:find(stage, 1, true))
    local pc = assert(util.read_file(stage .. "/opt/mxroute/lib/pkgconfig/mxroute.pc"))
    assert.matches("prefix=/opt/mxroute\n", pc, 1, true)
  end)

  it("runs the installed command from any directory, without Lua path variables", function()
    local out, ok = sh("cd / && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
                       .. quote(prefix .. "/bin/mxroute") .. " --json --nameserver " .. ns
                       .. " simple.mx.test")
    assert(ok, out)
    local p = cjson.decode(out)
    assert.are.equal("ok", p.status)
    assert.are.equal("mx.simple.mx.test", p.hosts[1].name)
  end)

  it("installs LuaJIT modules that LuaJIT loads", function()
    local out, ok = sh("cd / && env LUA_PATH=" .. quote(prefix .. "/share/lua/5.1/?.lua;;")
                       .. " LUA_CPATH=" .. quote(prefix .. "/lib/lua/5.1/?.so;;")
                       .. " luajit -e " .. quote("local m = require 'mxroute' "
                       .. "local r = m.resolver { nameservers = { '" .. ns .. "' } } "
                       .. "local p = assert(r:resolve('simple.mx.test')) "
                       .. "io.write(m._VERSION, ' ', p.hosts[1].name)"))
    assert(ok, out)
    assert.are.equal(require("mxroute")._VERSION .. " mx.simple.mx.test", out)
  end)

  it("builds a C program against the installed copy through pkg-config, and runs it", function()
    local pc = "PKG_CONFIG_PATH=" .. quote(prefix .. "/lib/pkgconfig")
    local exe = dir .. "/resolve"
    local out, ok = sh("cc -std=c99 -Wall -Werror -o " .. quote(exe)
                       .. " spec/support/c/resolve.c $(" .. pc
                       .. " pkg-config --cflags --libs mxroute)")
    assert(ok, out)
    -- linked to the shared library by its soname
    out = sh("objdump -p " .. quote(exe))
    assert.matches("NEEDED%s+libmxroute%.so%.0\n", out)
    out, ok = sh("LD_LIBRARY_PATH=" .. quote(prefix .. "/lib") .. " " .. quote(exe) .. " "
                 .. ns .. " user@simple.mx.test")
    assert(ok, out)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    table.sort(lines)
    assert.are.same({ "10 mx.simple.mx.test 192.0.2.10",
                      "10 mx.simple.mx.test 2001:db8::10" }, lines)
    out, ok = sh("LD_LIBRARY_PATH=" .. quote(prefix .. "/lib") .. " " .. quote(exe) .. " "
                 .. ns .. " noexist.mx.test")
    assert.is_false(ok)
    assert.matches("^NXDOMAIN ", out)
    -- static users get c-ares from the .pc file
    out = sh(pc .. " pkg-config --static --libs mxroute")
    assert.matches("%-lcares", out)
  end)
end)
