-- LuaRocks build of mxroute from this checkout:
--   luarocks make rockspec/mxroute-scm-1.rockspec
-- Needs the c-ares headers and library (Debian: libc-ares-dev).
-- The C sources and Lua modules are listed one by one (rockspecs have no
-- globs): add a file here when it is added to csrc/ or lua/.
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
(plain Lua, cqueues, luv) and an OpenResty transport.
]],
}

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
  type = "builtin",
  modules = {
    ["mxroute.core"] = {
      sources = {
        "csrc/lmxroute.c",
        "csrc/lroute.c",
        "csrc/engine.c",
        "csrc/ifaddrs.c",
        "csrc/name.c",
        "csrc/packet.c",
        "csrc/plan.c",
        "csrc/rand.c",
        "csrc/resolve.c",
        "csrc/route.c",
        "csrc/status.c",
      },
      defines = { "_GNU_SOURCE" },
      incdirs = { "csrc", "$(CARES_INCDIR)" },
      libdirs = { "$(CARES_LIBDIR)" },
      libraries = { "cares" },
    },
    mxroute = "lua/mxroute.lua",
    ["mxroute.cli"] = "lua/mxroute/cli.lua",
    ["mxroute.json"] = "lua/mxroute/json.lua",
    ["mxroute.luv"] = "lua/mxroute/luv.lua",
    ["mxroute.ngx"] = "lua/mxroute/ngx.lua",
    ["mxroute.options"] = "lua/mxroute/options.lua",
    ["mxroute.routes"] = "lua/mxroute/routes.lua",
  },
  install = {
    bin = {
      mxroute = "bin/mxroute",
    },
  },
}
