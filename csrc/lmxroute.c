/*
 * lmxroute.c — the Lua binding (module "mxroute.core"): its opener,
 * the small module functions and the helpers every class file shares.
 * The binding files (csrc/l*.c, one per class, sharing lmxroute.h) are
 * the only ones that include lua.h. Thin over the C core:
 *
 *   core.opts(t)            planner options + the resolver's PRNG (lopts.c)
 *   core.options, core.option_check   the option table (loptions.c, lopts.c)
 *   core.plan(records, o)   the pure planner (lplan.c)
 *   core.res(input, o)      a sans-I/O resolution, the query (lquery.c)
 *   core.engine(cfg)        the C transport, a pollable (lengine.c)
 *   core.codes, version
 *   core.nameserver(s)      the one nameserver parser, for every Lua layer
 *   core.read_regular_file(path)  a small config file, never blocking
 *   core.array_mt([mt])     the metatable of a plan's lists (JSON arrays)
 *   core.sigwatch()         SIGINT/SIGTERM on a signalfd (lsignal.c)
 *   core.lines(path | 0)    a line reader that never waits (lreader.c)
 *   core.cache, core.xch, core.parse   (lcache.c, lxch.c, lroute.c)
 *
 * Results become Lua values in lresult.c.
 *
 * Userdata are created closed first, then the resource is attached, so
 * __gc is always safe. No malloc'd memory is held across a call that can
 * raise: temporary arrays are userdata too.
 */
#include "lmxroute.h"
#include "mxr_internal.h" /* mxr_escape */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The string at idx (which is a string); raises "<what> '<shown>'
 * contains a NUL byte" if it holds one: C would see it cut short, so a
 * NUL in any string argument is an error naming the field. */
const char *mxr_lua_check_nul(lua_State *L, int idx, size_t *len,
                              const char *what)
{
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  if (len)
    *len = n;
  if (memchr(s, '\0', n) != NULL) {
    char shown[128];
    mxr_escape(shown, sizeof shown, s, n, 60);
    luaL_error(L, "%s '%s' contains a NUL byte", what, shown);
  }
  return s;
}

/* A code token at idx; where names the argument in the error. */
mxr_status mxr_lua_check_code(lua_State *L, int idx, const char *where)
{
  mxr_status st;
  const char *s;
  luaL_checkstring(L, idx);
  s = mxr_lua_check_nul(L, idx, NULL, where);
  if (mxr_status_from_name(s, &st) != MXR_OK || st == MXR_OK)
    luaL_error(L, "%s: unknown code '%s'", where, s);
  return st;
}

/* ------------------------------------------------------------------ */
/* module functions                                                    */

/* core.nameserver(s) -> "IP:PORT", address, port | nil, message: the
 * one nameserver parser (mxr_server_parse), so that the options, the CLI
 * and mxroute.ngx accept the same servers with the same messages. */
static int l_nameserver(lua_State *L)
{
  char err[MXR_MSG_BUF], text[MXR_SERVER_BUF], addr[MXR_ADDR_BUF];
  mxr_server sv;
  size_t len;
  const char *s;
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_pushnil(L);
    lua_pushfstring(L, "nameserver must be a string, not a %s",
                    luaL_typename(L, 1));
    return 2;
  }
  s = lua_tolstring(L, 1, &len);
  err[0] = '\0';
  if (mxr_server_parse(s, len, &sv, err, sizeof err) != MXR_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err[0] ? err : "bad nameserver");
    return 2;
  }
  mxr_server_format(&sv, text);
  mxr_addr_format(&sv.addr, addr);
  lua_pushstring(L, text);
  lua_pushstring(L, addr);
  lua_pushinteger(L, sv.port);
  return 3;
}

/* Largest configuration file read_regular_file takes. */
#define CONFIG_MAX 65536

/* core.read_regular_file(path) -> text | nil, message, code. Reads a
 * small configuration file (resolv.conf) without ever blocking on it:
 * opened O_NONBLOCK (open(2) of a FIFO would wait for a writer), then
 * anything but a regular file is refused (a FIFO or a device could make
 * read(2) wait, or never end). code: "ENOENT" when there is no such
 * file, "NOTREGULAR" for a FIFO, device, directory..., else "EIO". */
static int l_read_regular_file(lua_State *L)
{
  size_t plen, got = 0;
  const char *path;
  char *buf;
  struct stat st;
  int fd, e;
  luaL_checkstring(L, 1);
  path = mxr_lua_check_nul(L, 1, &plen, "mxroute: read_regular_file: path");
  buf = mxr_newud(L, CONFIG_MAX + 1); /* before open: raising leaks no fd */
  fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushstring(L, e == ENOENT ? "ENOENT" : "EIO");
    return 3;
  }
  if (fstat(fd, &st) != 0) {
    e = errno;
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushliteral(L, "EIO");
    return 3;
  }
  if (!S_ISREG(st.st_mode)) {
    const char *kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "%s is %s, not a regular file: not read", path, kind);
    lua_pushliteral(L, "NOTREGULAR");
    return 3;
  }
  for (;;) {
    ssize_t n = read(fd, buf + got, CONFIG_MAX + 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      e = errno;
      close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, strerror(e));
      lua_pushliteral(L, "EIO");
      return 3;
    }
    if (n == 0 || (got += (size_t)n) > CONFIG_MAX)
      break;
  }
  close(fd);
  if (got > CONFIG_MAX) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s is larger than %d octets: not read", path,
                    CONFIG_MAX);
    lua_pushliteral(L, "EIO");
    return 3;
  }
  lua_pushlstring(L, buf, got);
  return 1;
}

/* core.array_mt([mt]) -> the metatable of plan lists; with mt (a table),
 * plans made from now on use mt instead (mxroute.lua passes cjson's
 * array_mt, which cjson recognises by identity). */
static int l_array_mt(lua_State *L)
{
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  return 1;
}

static const luaL_Reg funcs[] = {
    {"nameserver", l_nameserver}, {"read_regular_file", l_read_regular_file},
    {"array_mt", l_array_mt}, {NULL, NULL}};

void mxr_lua_new_class(lua_State *L, const char *name, const luaL_Reg *m,
                       lua_CFunction gc)
{
  luaL_newmetatable(L, name);
  if (m) { /* a class without methods gets no __index */
    luaL_setfuncs(L, m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  /* also under the light pointer name, for mxr_lua_checkudata */
  lua_pushlightuserdata(L, (void *)(uintptr_t)name);
  lua_pushvalue(L, -2);
  lua_rawset(L, LUA_REGISTRYINDEX);
  lua_pop(L, 1);
}

void *mxr_lua_checkudata(lua_State *L, int idx, const char *name)
{
  void *p = lua_touserdata(L, idx);
  if (p && lua_getmetatable(L, idx)) {
    int same;
    lua_pushlightuserdata(L, (void *)(uintptr_t)name);
    lua_rawget(L, LUA_REGISTRYINDEX);
    same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (same)
      return p;
  }
  return luaL_checkudata(L, idx, name); /* by name, or the error */
}

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_mxroute_core(lua_State *L);

int luaopen_mxroute_core(lua_State *L)
{
  int i;
  /* dkjson encodes a table whose metatable has __jsontype = "array" as
   * an array, even when it is empty */
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  if (!lua_istable(L, -1)) {
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  }
  lua_pop(L, 1);
  mxr_lua_open_result(L);
  luaL_newlib(L, funcs);
  /* every class file (csrc/l*.c) adds its constructors here:
   * mxr_lua_open_<class>(L, lua_gettop(L)); */
  mxr_lua_open_opts(L, lua_gettop(L));
  mxr_lua_open_plan(L, lua_gettop(L));
  mxr_lua_open_query(L, lua_gettop(L));
  mxr_lua_open_engine(L, lua_gettop(L));
  mxr_lua_open_cache(L, lua_gettop(L));
  mxr_lua_open_route(L, lua_gettop(L));
  mxr_lua_open_signal(L, lua_gettop(L));
  mxr_lua_open_reader(L, lua_gettop(L));
  mxr_lua_open_xch(L, lua_gettop(L));
  lua_pushliteral(L, MXR_VERSION);
  lua_setfield(L, -2, "version");
  lua_newtable(L);
  for (i = 1; i < MXR_STATUS_COUNT; i++) { /* every code but OK */
    lua_pushstring(L, mxr_class_name(mxr_status_class((mxr_status)i)));
    lua_setfield(L, -2, mxr_status_name((mxr_status)i));
  }
  lua_setfield(L, -2, "codes");
  return 1;
}
