-- LuaRocks build of mxroute from this checkout (no download):
--   Lua 5.4:  luarocks --lua-version 5.4 make rockspec/mxroute-scm-1.rockspec
--   LuaJIT:   luarocks --lua-version 5.1 make rockspec/mxroute-scm-1.rockspec \
--               LUA_INCDIR=/usr/include/luajit-2.1 LUA=/usr/bin/luajit
-- (LUA= is the interpreter the installed `mxroute` command runs with.)
-- Needs GNU make and the c-ares headers and library (Debian:
-- libc-ares-dev). The build is the Makefile's `rock` target, which
-- compiles every csrc/*.c (csrc/l*.c are the Lua binding) and installs
-- every lua/**/*.lua, so that files added there need no change here.
rockspec_format = "3.0"
package = "mxroute"
version = "scm-1"

source = {
  url = "git+file://.",
}

description = {
  summary = "Mail delivery targets (RFC 5321 MX/A/AAAA, RFC 7505 null MX) on c-ares",
  detailed = [[
mxroute tells mail software to which hosts and addresses, in which order,
mail for a domain should be delivered: RFC 5321 section 5.1 MX, implicit
MX and A/AAAA logic, RFC 7505 null MX, self-exclusion and a target guard.
A C core on c-ares, with Lua APIs that suspend only the calling coroutine
(plain Lua, cqueues, luv), an OpenResty transport and an `mxroute`
command.
]],
  license = "MIT",
  labels = { "dns", "mail", "smtp", "mx" },
}

supported_platforms = { "linux" }

dependencies = {
  "lua >= 5.1, < 5.5",
}

external_dependencies = {
  CARES = {
    header = "ares.h",
    library = "cares",
  },
}

build = {
  type = "make",
  build_target = "rock",
  install_target = "rock-install",
  build_variables = {
    CC = "$(CC)",
    CFLAGS = "$(CFLAGS)",
    LIBFLAG = "$(LIBFLAG)",
    LUA_INCDIR = "$(LUA_INCDIR)",
    CARES_INCDIR = "$(CARES_INCDIR)",
    CARES_LIBDIR = "$(CARES_LIBDIR)",
  },
  install_variables = {
    LUA_INCDIR = "$(LUA_INCDIR)", -- names the build directory
    INST_LIBDIR = "$(LIBDIR)",
    INST_LUADIR = "$(LUADIR)",
  },
  install = {
    bin = {
      mxroute = "bin/mxroute",
    },
  },
}
