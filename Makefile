# mxroute -- build, test and install.
#
#   make            libmxroute.a and mxroute.core for Lua 5.4 and LuaJIT
#   make test       Debian dependencies, build, C tests (ASan/UBSan), specs
#   make check      the same with -Werror, plus luacheck
#   make demo       Knot on loopback with examples/zones, resolved by the CLI
#   make fuzz       libFuzzer targets, FUZZ_SECONDS each (default 60)
#   make bench      bench/run under the test DNS environment
#   make docs       the option tables of README.md and doc/cli.md, from
#                   the one definition of the options (csrc/lopts.c)
#   make install    PREFIX=/usr/local, DESTDIR honoured: the Lua modules
#                   (5.4 and LuaJIT), the mxroute command, mxroute.h,
#                   libmxroute.a, libmxroute.so.0 and mxroute.pc
#   make rock       what `luarocks make` runs (see the rockspec)
#   make clean

PREFIX     ?= /usr/local
DESTDIR    ?=
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKG_CONFIG ?= pkg-config
CLANG      ?= clang
FUZZ_SECONDS ?= 60

# Debian packages the build, tests and demo need (never Debian's `luajit`
# or `libluajit-5.1-dev`: they remove the nginx Lua module).
DEB_PACKAGES = build-essential pkg-config lua5.4 liblua5.4-dev libc-ares-dev \
	lua-busted lua-check lua-cqueues lua-luv lua-cjson lua-dkjson luarocks \
	knot knot-dnsutils \
	nginx-light libnginx-mod-http-lua luajit2 libluajit2-5.1-dev valgrind \
	clang libclang-rt-14-dev perl procps unbound
# Services that installing these packages starts (on ports 53 and 80):
# package:service.
DEB_SERVICES = knot:knot nginx-light:nginx libnginx-mod-http-lua:nginx \
	unbound:unbound

WARNINGS = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wconversion
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif

CARES_CFLAGS  := $(shell $(PKG_CONFIG) --cflags libcares 2>/dev/null)
CARES_LIBS    := $(or $(shell $(PKG_CONFIG) --libs libcares 2>/dev/null),-lcares)
LUA54_CFLAGS  := $(shell $(PKG_CONFIG) --cflags lua5.4 2>/dev/null)
LUAJIT_CFLAGS := $(shell $(PKG_CONFIG) --cflags luajit 2>/dev/null)

BASE_CFLAGS = -std=c99 -D_GNU_SOURCE -Icsrc $(WARNINGS) $(CARES_CFLAGS)
OPT_CFLAGS  = -fPIC -O2 -g
ASAN_CFLAGS = -DMXR_TESTING -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer -g -O1
FUZZ_CFLAGS = -std=c99 -D_GNU_SOURCE -Icsrc $(CARES_CFLAGS) -g -O1 \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer

# Sources: every csrc/*.c but the Lua binding is core; picked up by wildcard.
# The Lua binding: csrc/l*.c (one file per class), the only files that
# include lua.h.
BINDING   := $(wildcard csrc/l*.c)
CORE_SRCS := $(filter-out $(BINDING),$(wildcard csrc/*.c))
CORE_OBJS := $(patsubst csrc/%.c,build/core/%.o,$(CORE_SRCS))
ASAN_OBJS := $(patsubst csrc/%.c,build/asan/core/%.o,$(CORE_SRCS))
TEST_SRCS := $(wildcard csrc/test/test_*.c)
TEST_BINS := $(patsubst csrc/test/%.c,build/asan/%,$(TEST_SRCS))
FUZZ_SRCS := $(wildcard csrc/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst csrc/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))

LIB       = build/libmxroute.a
# The shared library: its soname carries the major version of MXR_VERSION.
VERSION  := $(shell sed -n 's/^\#define MXR_VERSION "\(.*\)"/\1/p' csrc/mxroute.h)
SOMAJOR   = $(firstword $(subst ., ,$(VERSION)))
SONAME    = libmxroute.so.$(SOMAJOR)
SOLIB     = build/libmxroute.so.$(VERSION)
ASAN_LIB  = build/asan/libmxroute.a
MOD54     = build/lua5.4/mxroute/core.so
MODJIT    = build/luajit/mxroute/core.so

# Objects are rebuilt whenever the flags change (e.g. WERROR=1 for check).
FLAGS_STAMP = build/flags.stamp
FLAGS_TEXT  = $(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) | $(ASAN_CFLAGS) | $(LUA54_CFLAGS) | $(LUAJIT_CFLAGS)

LUACHECK_PATHS = $(wildcard lua spec bin/mxroute examples bench tools/options-doc)

.PHONY: all deps test check demo docs install rock rock-install bench fuzz clean ctests FORCE
.DEFAULT_GOAL := all

all: $(LIB) $(SOLIB) $(MOD54) $(MODJIT)
	@:

$(FLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(FLAGS_TEXT)' | cmp -s - $@ 2>/dev/null || echo '$(FLAGS_TEXT)' > $@

# Core library ---------------------------------------------------------------

build/core/%.o: csrc/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(CORE_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

$(SOLIB): $(CORE_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $^ $(CARES_LIBS)

# Lua module mxroute.core, once per Lua ABI ----------------------------------

BIND54_OBJS  := $(patsubst csrc/%.c,build/binding/lua5.4/%.o,$(BINDING))
BINDJIT_OBJS := $(patsubst csrc/%.c,build/binding/luajit/%.o,$(BINDING))

build/binding/lua5.4/%.o: csrc/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) $(LUA54_CFLAGS) -MMD -MP -c -o $@ $<

build/binding/luajit/%.o: csrc/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) $(LUAJIT_CFLAGS) -MMD -MP -c -o $@ $<

$(MOD54): $(BIND54_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $(BIND54_OBJS) $(LIB) $(CARES_LIBS)

$(MODJIT): $(BINDJIT_OBJS) $(LIB)
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $(BINDJIT_OBJS) $(LIB) $(CARES_LIBS)

# C unit tests: ASan + UBSan, against a sanitized build of the core ----------

build/asan/core/%.o: csrc/%.c $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(ASAN_CFLAGS) -MMD -MP -c -o $@ $<

$(ASAN_LIB): $(ASAN_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $^

build/asan/test_%: csrc/test/test_%.c $(ASAN_LIB) $(FLAGS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(BASE_CFLAGS) $(ASAN_CFLAGS) -Icsrc/test -MMD -MP -MF $@.d -MT $@ \
		-o $@ $< $(ASAN_LIB) $(CARES_LIBS)

ctests: $(TEST_BINS)
	@:

-include $(wildcard build/core/*.d build/asan/core/*.d build/asan/*.d build/binding/*/*.d)

# Debian dependencies --------------------------------------------------------

# One dpkg-query for the lot; apt-get only when something is missing. Then
# stop and disable the system services that this install brought (they
# would sit on ports 53/80; the tests run their own servers on high ports)
# and kill knotd/nginx/unbound processes that were not running before the
# install and run on the system configuration (test servers always have
# -c CONF).
deps:
	@missing=$$(dpkg-query -W -f='$${Package} $${Status}\n' $(DEB_PACKAGES) 2>/dev/null \
		| awk '/ installed$$/ { ok[$$1] = 1 } \
		       END { n = split("$(DEB_PACKAGES)", p, " "); \
		             for (i = 1; i <= n; i++) if (!(p[i] in ok)) printf "%s ", p[i] }'); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing $$missing"; \
		before=" $$(pgrep -x 'knotd|nginx|unbound' 2>/dev/null | tr '\n' ' ') "; \
		apt-get update -qq || exit 1; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			$$missing || exit 1; \
		for ps in $(DEB_SERVICES); do \
			case " $$missing " in *" $${ps%%:*} "*) ;; *) continue ;; esac; \
			s=$${ps#*:}; \
			systemctl stop $$s >/dev/null 2>&1; systemctl disable $$s >/dev/null 2>&1; \
			service $$s stop >/dev/null 2>&1; \
		done; \
		for pid in $$(pgrep -x 'knotd|nginx|unbound' 2>/dev/null); do \
			case "$$before" in *" $$pid "*) continue ;; esac; \
			cmd=" $$(tr '\0' ' ' </proc/$$pid/cmdline 2>/dev/null)"; \
			case "$$cmd" in *" -c "*) continue ;; esac; \
			echo "deps: stopping $$cmd (pid $$pid)"; kill $$pid; \
		done; \
		lua5.4 "$$(command -v busted)" --version >/dev/null \
			|| { echo "deps: busted does not run under lua5.4" >&2; exit 1; }; \
	fi

# Tests ----------------------------------------------------------------------

test: deps
	@$(MAKE) --no-print-directory all ctests
	@bash spec/support/run-tests

check: deps
	@$(MAKE) --no-print-directory WERROR=1 all ctests
	@if [ -n "$(LUACHECK_PATHS)" ]; then luacheck -q $(LUACHECK_PATHS); fi
	@$(MAKE) --no-print-directory WERROR=1 test

demo: deps
	@$(MAKE) --no-print-directory all
	@bash examples/demo.sh

# tools/options-doc checks them (--check) in spec/options_doc_spec.lua.
docs: $(MOD54)
	LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/lua5.4/?.so;;' lua5.4 tools/options-doc

bench: deps
	@$(MAKE) --no-print-directory all
	@if [ -e bench/run ]; then \
		bash spec/support/run-tests --exec bench/run; \
	else \
		echo "bench: there is no benchmark (bench/run does not exist)"; \
	fi

# Fuzzing: each csrc/fuzz/fuzz_NAME.c with the core sources, on a copy of
# its committed corpus csrc/fuzz/corpus/NAME/ (or .../fuzz_NAME/) in
# build/fuzz/corpus/, so that runs do not pollute it. Crashes land in
# build/fuzz/artifacts/.
build/fuzz/%: csrc/fuzz/%.c $(CORE_SRCS) $(wildcard csrc/*.h csrc/fuzz/*.h)
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(CORE_SRCS) $(CARES_LIBS)

fuzz: $(FUZZ_BINS)
	@if [ -z "$(FUZZ_BINS)" ]; then echo "fuzz: no targets in csrc/fuzz"; fi
	@set -e; for bin in $(FUZZ_BINS); do \
		full=$${bin##*/}; name=$${full#fuzz_}; \
		corpus=build/fuzz/corpus/$$name; \
		mkdir -p $$corpus build/fuzz/artifacts; \
		for src in csrc/fuzz/corpus/$$name csrc/fuzz/corpus/$$full; do \
			if [ -d $$src ]; then cp -R $$src/. $$corpus/; fi; \
		done; \
		echo "fuzz: $$bin for $(FUZZ_SECONDS)s on $$corpus"; \
		$$bin -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=build/fuzz/artifacts/$$name- $$corpus; \
	done

# Install --------------------------------------------------------------------

LUA54_SHARE = $(DESTDIR)$(PREFIX)/share/lua/5.4
LUA51_SHARE = $(DESTDIR)$(PREFIX)/share/lua/5.1
LUA54_LIB   = $(DESTDIR)$(PREFIX)/lib/lua/5.4
LUA51_LIB   = $(DESTDIR)$(PREFIX)/lib/lua/5.1

# c-ares for pkg-config users of the static library: through its own
# libcares.pc when there is one, else as a plain -lcares.
PC_REQUIRES_PRIVATE := $(if $(shell $(PKG_CONFIG) --exists libcares 2>/dev/null && echo y),libcares)
PC_LIBS_PRIVATE     := $(if $(PC_REQUIRES_PRIVATE),,$(CARES_LIBS))

# The command, with the installed module paths (the final ones, without
# DESTDIR) written into its INSTALLED line, so that it runs from any PREFIX.
define SET_PATHS
local src, dst, p = os.getenv("SRC"), os.getenv("DST"), os.getenv("P")
local text = assert(io.open(src)):read("a")
local line = string.format("local INSTALLED = { path = %q, cpath = %q }",
  p .. "/share/lua/5.4/?.lua;" .. p .. "/share/lua/5.4/?/init.lua;",
  p .. "/lib/lua/5.4/?.so;")
local n
text, n = text:gsub("\nlocal INSTALLED = nil[^\n]*", function() return "\n" .. line end, 1)
assert(n == 1, "bin/mxroute: no INSTALLED line")
local f = assert(io.open(dst, "w"))
assert(f:write(text))
assert(f:close())
endef
export SET_PATHS

build/mxroute.pc: csrc/mxroute.h FORCE
	@mkdir -p $(@D)
	@printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
		'Name: mxroute' \
		'Description: Mail delivery targets (RFC 5321 MX, RFC 7505 null MX)' \
		'Version: $(VERSION)' \
		'Requires.private: $(PC_REQUIRES_PRIVATE)' \
		'Cflags: -I$${includedir}' \
		'Libs: -L$${libdir} -lmxroute' \
		'Libs.private: $(PC_LIBS_PRIVATE)' > $@.tmp
	@cmp -s $@.tmp $@ 2>/dev/null && rm -f $@.tmp || mv $@.tmp $@

install: all build/mxroute.pc
	@set -e; if [ -d lua ]; then (cd lua && find . -name '*.lua') | sort | while read -r f; do \
		f=$${f#./}; \
		echo "install -D -m 644 lua/$$f $(LUA54_SHARE)/$$f $(LUA51_SHARE)/$$f"; \
		install -D -m 644 "lua/$$f" "$(LUA54_SHARE)/$$f"; \
		install -D -m 644 "lua/$$f" "$(LUA51_SHARE)/$$f"; \
	done; fi
	install -D -m 755 $(MOD54) $(LUA54_LIB)/mxroute/core.so
	install -D -m 755 $(MODJIT) $(LUA51_LIB)/mxroute/core.so
	install -D -m 644 csrc/mxroute.h $(DESTDIR)$(INCLUDEDIR)/mxroute.h
	install -D -m 644 $(LIB) $(DESTDIR)$(LIBDIR)/libmxroute.a
	install -D -m 755 $(SOLIB) $(DESTDIR)$(LIBDIR)/$(notdir $(SOLIB))
	ln -sf $(notdir $(SOLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libmxroute.so
	install -D -m 644 build/mxroute.pc $(DESTDIR)$(LIBDIR)/pkgconfig/mxroute.pc
	@mkdir -p $(DESTDIR)$(PREFIX)/bin
	@echo 'install bin/mxroute $(DESTDIR)$(PREFIX)/bin/mxroute (module paths under $(PREFIX))'
	@SRC=bin/mxroute DST='$(DESTDIR)$(PREFIX)/bin/mxroute.tmp' P='$(PREFIX)' \
		lua5.4 -e "$$SET_PATHS"
	@chmod 755 $(DESTDIR)$(PREFIX)/bin/mxroute.tmp
	@mv $(DESTDIR)$(PREFIX)/bin/mxroute.tmp $(DESTDIR)$(PREFIX)/bin/mxroute

# LuaRocks (build.type = "make"): the module for the interpreter whose
# headers are in LUA_INCDIR, from every csrc/*.c; the Lua modules are
# installed from lua/ as they are.
ROCK_MOD = build/rock/$(notdir $(LUA_INCDIR))/mxroute/core.so
CARES_INCDIR ?=
CARES_LIBDIR ?=
LIBFLAG ?= -shared

rock:
	@test -n "$(LUA_INCDIR)" || { echo "rock: LUA_INCDIR is not set" >&2; exit 1; }
	@mkdir -p $(dir $(ROCK_MOD))
	$(CC) $(CFLAGS) -std=c99 -D_GNU_SOURCE -Icsrc -I$(LUA_INCDIR) \
		$(if $(CARES_INCDIR),-I$(CARES_INCDIR)) $(LIBFLAG) -o $(ROCK_MOD) \
		$(BINDING) $(CORE_SRCS) $(if $(CARES_LIBDIR),-L$(CARES_LIBDIR)) -lcares

rock-install:
	@test -n "$(LUA_INCDIR)" || { echo "rock-install: LUA_INCDIR is not set" >&2; exit 1; }
	@set -e; (cd lua && find . -name '*.lua') | sort | while read -r f; do \
		f=$${f#./}; \
		echo "install -D -m 644 lua/$$f $(INST_LUADIR)/$$f"; \
		install -D -m 644 "lua/$$f" "$(INST_LUADIR)/$$f"; \
	done
	install -D -m 755 $(ROCK_MOD) $(INST_LIBDIR)/mxroute/core.so

clean:
	rm -rf build

FORCE:
