/*
 * lengine.c — the engine class (mxroute.engine): core.engine(cfg), the
 * C transport over the exchange (a pollable: e:pollfd(), e:timeout(),
 * e:step()), and the event table of traced exchanges.
 */
#include "lmxroute.h"
#include "mxr_internal.h" /* mxr_rrtype_of, mxr_rrtype_name */

#include <stdio.h>
#include <string.h>

static lengine *check_engine(lua_State *L, int idx)
{
  lengine *e = mxr_lua_checkudata(L, idx, ENG_MT);
  if (!e->e)
    luaL_error(L, "mxroute: resolver is closed");
  return e;
}

/* close, __gc and __close share this path: cancel everything. */
static int engine_close(lua_State *L)
{
  lengine *e = mxr_lua_checkudata(L, 1, ENG_MT);
  if (!e->e)
    return 0;
  mxr_lua_forget_queries(L, 1);
  mxr_engine_free(e->e);
  e->e = NULL;
  return 0;
}

/* core.engine{ servers = "csv"|nil, timeout_ms =, tries = } */
static int l_engine(lua_State *L)
{
  mxr_engine_config cfg;
  char err[MXR_MSG_BUF];
  lengine *e;
  mxr_status st;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&cfg, 0, sizeof cfg);
  lua_getfield(L, 1, "servers");
  cfg.servers = NULL;
  if (!lua_isnil(L, -1)) {
    luaL_checkstring(L, -1);
    cfg.servers = mxr_lua_check_nul(L, -1, NULL, "mxroute: servers");
  }
  lua_getfield(L, 1, "timeout_ms");
  cfg.timeout_ms = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "tries");
  cfg.tries = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "rcvbuf");
  cfg.rcvbuf = (int)luaL_optinteger(L, -1, 0);
  /* exchange options, checked by mxroute.options (0: the default) */
  lua_getfield(L, 1, "max_inflight");
  cfg.max_inflight = (size_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "udp_queries");
  cfg.udp_queries = (unsigned)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "health");
  cfg.health = (double)luaL_optnumber(L, -1, 0);
  lua_getfield(L, 1, "dns0x20");
  cfg.case_randomize = lua_toboolean(L, -1);
  lua_getfield(L, 1, "trace");
  cfg.trace = lua_toboolean(L, -1);
  e = mxr_newud(L, sizeof *e);
  e->e = NULL;
  e->unreaped = 0;
  luaL_setmetatable(L, ENG_MT);
  /* uservalue: res light pointer -> query userdata, weak values, so an
   * abandoned query can be collected (its __gc detaches it) */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  mxr_setuv(L, -2);
  err[0] = 0;
  st = mxr_engine_new(&cfg, &e->e, err, sizeof err);
  if (st != MXR_OK)
    return luaL_error(L, "mxroute: %s", err[0] ? err : mxr_status_text(st));
  return 1;
}

static int engine_submit(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  lres *r = mxr_lua_check_res(L, 2);
  mxr_status st;
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query already submitted");
  mxr_lua_link_query(L, 2, 1, "engine");
  r->eng = e;
  st = mxr_engine_add(e->e, r->res, r, &r->job);
  if (st != MXR_OK)
    return luaL_error(L, "mxroute: %s", mxr_status_text(st));
  return 0;
}

/* e:stats() -> { queries, answers, timeouts, tcp, merged, dropped,
 * sockets, server_failures = { n1, n2, ... } } */
static int engine_stats(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  mxr_xch_stats st;
  lua_Integer i;
  mxr_engine_stats(e->e, &st);
  lua_createtable(L, 0, 8);
#define STAT(f)                                                              \
  lua_pushinteger(L, (lua_Integer)st.f);                                     \
  lua_setfield(L, -2, #f)
  STAT(queries);
  STAT(answers);
  STAT(timeouts);
  STAT(tcp);
  STAT(merged);
  STAT(dropped);
  STAT(sockets);
#undef STAT
  lua_newtable(L);
  for (i = 0; i < (lua_Integer)mxr_engine_server_count(e->e); i++) {
    lua_pushinteger(L, (lua_Integer)mxr_engine_server_failures(
                           e->e, (unsigned)i));
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "server_failures");
  return 1;
}

/* Names of the rcodes a reply can carry (RFC 1035 4.1.1, RFC 6895 2.3). */
static const char *rcode_name(int rcode, char *buf, size_t len)
{
  static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL",
                                      "NXDOMAIN", "NOTIMP", "REFUSED"};
  if (rcode >= 0 && rcode < (int)(sizeof names / sizeof names[0]))
    return names[rcode];
  snprintf(buf, len, "RCODE%d", rcode);
  return buf;
}

void mxr_lua_push_event(lua_State *L, const mxr_xch_event *ev,
                        const mxr_server *sv)
{
  char buf[MXR_SERVER_BUF];
  lua_createtable(L, 0, 7);
  lua_pushstring(L, ev->name);
  lua_setfield(L, -2, "name");
  if (mxr_rrtype_of(ev->type)) /* every type of the table, by its name */
    lua_pushstring(L, mxr_rrtype_name(ev->type));
  else
    lua_pushfstring(L, "TYPE%d", (int)ev->type);
  lua_setfield(L, -2, "type");
  if (sv) {
    mxr_server_format(sv, buf);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "server");
  }
  lua_pushboolean(L, ev->tcp);
  lua_setfield(L, -2, "tcp");
  lua_pushstring(L, mxr_status_name(ev->status));
  lua_setfield(L, -2, "status");
  if (ev->rcode >= 0) {
    lua_pushstring(L, rcode_name(ev->rcode, buf, sizeof buf));
    lua_setfield(L, -2, "rcode");
  }
  lua_pushnumber(L, (lua_Number)ev->rtt);
  lua_setfield(L, -2, "rtt");
}

/* e:next_event() -> the next traced query event (core.engine{trace =
 * true}), or nil. */
static int engine_next_event(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  mxr_xch_event ev;
  if (!mxr_engine_next_event(e->e, &ev))
    return 0;
  mxr_lua_push_event(L, &ev, mxr_engine_server(e->e, ev.server));
  return 1;
}

static int engine_pollfd(lua_State *L)
{
  lua_pushinteger(L, mxr_engine_fd(check_engine(L, 1)->e));
  return 1;
}

static int engine_timeout(lua_State *L)
{
  double t = mxr_engine_timeout(check_engine(L, 1)->e);
  if (t < 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, t);
  return 1;
}

static int engine_pending(lua_State *L)
{
  lua_pushinteger(L,
                  (lua_Integer)mxr_engine_pending(check_engine(L, 1)->e));
  return 1;
}

/* The collector does not see a query's C memory (its resolution, freed
 * by its __gc): with many plans in flight, finished queries, garbage as
 * soon as a bulk loop has read them, pile up faster than it collects.
 * Once more than UNREAPED_MAX queries reported done by step are not yet
 * collected, each one more pays a step of collection. Lua 5.4 counts a
 * step against the next ones unless it is given a size: 2 KB, about such
 * a resolution. LuaJIT's step (of 0) is one incremental step on top of
 * its own pace, dearer in a long bulk loop: it starts later. (Bounds
 * chosen with bench/bench.lua and 10,000 domains: instructions per plan
 * at D = 10, peak memory with all of them in flight.) */
#if LUA_VERSION_NUM >= 502
#define UNREAPED_MAX 256
#define GC_STEP_KB 2
#else
#define UNREAPED_MAX 2048
#define GC_STEP_KB 0
#endif

/* e:step(wait) -> n, { finished queries } */
static int engine_step(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  double wait = luaL_optnumber(L, 2, 0);
  int k = 0;
  lres *r;
  if (wait != wait)
    wait = 0;
  mxr_engine_step(e->e, wait);
  lua_newtable(L);
  mxr_getuv(L, 1);
  while ((r = mxr_engine_next_done(e->e)) != NULL) {
    mxr_engine_remove(e->e, r->job);
    r->job = NULL;
    lua_pushlightuserdata(L, r);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) {
      lua_rawseti(L, -3, ++k);
      if (!r->reported) {
        r->reported = 1;
        e->unreaped++;
      }
      if (e->unreaped > UNREAPED_MAX)
        lua_gc(L, LUA_GCSTEP, GC_STEP_KB);
      lua_pushlightuserdata(L, r);
      lua_pushnil(L);
      lua_rawset(L, -3);
    } else
      lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushinteger(L, k);
  lua_insert(L, -2);
  return 2;
}

static const luaL_Reg eng_m[] = {
    {"submit", engine_submit}, {"pollfd", engine_pollfd},
    {"timeout", engine_timeout}, {"step", engine_step},
    {"pending", engine_pending}, {"close", engine_close},
    {"stats", engine_stats}, {"next_event", engine_next_event},
    {NULL, NULL}};

void mxr_lua_open_engine(lua_State *L, int lib)
{
  mxr_lua_new_class(L, ENG_MT, eng_m, engine_close);
  lua_pushcfunction(L, l_engine);
  lua_setfield(L, lib, "engine");
}
