-- luacheck configuration: code runs on Lua 5.4 and LuaJIT (5.1), so allow
-- the union of their standard globals (newproxy, setfenv, table.unpack, ...).
std = "max"
max_line_length = 120
exclude_files = { "build/", ".git/", "lua_modules/", ".luarocks/" }

-- busted specs
files["spec"] = { std = "+busted" }

-- OpenResty code sees the ngx global
files["lua/mxroute/ngx.lua"] = { read_globals = { "ngx" } }
files["spec/nginx"] = { std = "+busted", read_globals = { "ngx" } }
