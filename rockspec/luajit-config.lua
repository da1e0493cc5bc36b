-- LuaRocks configuration for LuaJIT 2.1 (Debian's luajit2 paths), so that
-- `luarocks --lua-version 5.1` builds against LuaJIT's headers and the
-- installed `mxroute` command runs under LuaJIT:
--   LUAROCKS_CONFIG=rockspec/luajit-config.lua \
--     luarocks --lua-version 5.1 make rockspec/mxroute-scm-1.rockspec
-- Edit the two paths for another LuaJIT installation.
lua_interpreter = "luajit"
variables = {
  LUA_BINDIR = "/usr/bin",
  LUA_INCDIR = "/usr/include/luajit-2.1",
}
