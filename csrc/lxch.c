/*
 * lxch.c — core.xch: the sans-I/O exchange (mxr_xch, DESIGN 9) for
 * transports written in Lua (mxroute.ngx drives it with cosockets).
 *
 *   local x = core.xch{ servers = {"127.0.0.1:53"}, timeout = 2, tries = 3,
 *                       max_inflight =, udp_queries =, health =,
 *                       dns0x20 = false, trace = false }
 *   x:add(q)                      q: a core.res, driven by x from now on
 *   x:io() -> op, sock, server, data   op "udp" | "tcp" | "send" | "close"
 *   x:recv(sock, data) -> taken, due   taken false: dropped (not a reply
 *                                 we await); due: x:timeout() is 0
 *   x:sock_error(sock, "NETWORK" | "TIMEOUT")
 *   x:timeout() -> seconds | nil, x:tick()
 *   x:next_done() -> q            a finished query, detached from x
 *   x:cancel(q), x:remove(q), x:pending(), x:stats(), x:close()
 *   x:next_event() -> ev | nil   with trace = true: one per finished try
 *
 * Times are read here (mxr_now, monotonic), never passed from Lua, so a
 * transport cannot feed the exchange a clock of its own. Server indexes
 * are 1-based, in the order of `servers`.
 *
 * Lifetime: the exchange holds every attached query in its uservalue
 * (light pointer -> query), so an attached query is never collected
 * before it; each query holds its exchange in its own uservalue, so the
 * lxch a query points to is valid for as long as the query is. When both
 * become garbage together (or at lua_close) their finalizers may run in
 * either order: a query finalized first detaches itself
 * (mxr_lua_xch_detach, from res_gc) before its mxr_res is freed; an
 * exchange finalized first forgets the job handles of its queries, whose
 * mxr_res are still alive, before mxr_xch_free cancels them. Memory of
 * both stays valid while finalizers run.
 */
#include "lmxroute.h"

#include <string.h>

#define XCH_MT "mxroute.xch"

typedef struct lxch {
  mxr_xch *x;       /* NULL once closed */
  unsigned nservers;
} lxch;

static lxch *check_xch(lua_State *L, int idx)
{
  lxch *e = luaL_checkudata(L, idx, XCH_MT);
  if (!e->x)
    luaL_error(L, "mxroute: exchange is closed");
  return e;
}

/* The query at idx, attached to the exchange e (raises otherwise). */
static lres *check_attached(lua_State *L, lxch *e, int idx)
{
  lres *r = mxr_lua_check_res(L, idx);
  if (r->xch != e || !r->xjob)
    luaL_error(L, "mxroute: query is not attached to this exchange");
  return r;
}

/* Drop the exchange's reference to query r (uservalue of the exchange
 * at idx). */
static void forget(lua_State *L, int idx, lres *r)
{
  mxr_getuv(L, idx);
  lua_pushlightuserdata(L, r);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

void mxr_lua_xch_detach(lres *r)
{
  if (r->xch && r->xch->x && r->xjob)
    mxr_xch_remove(r->xch->x, r->xjob);
  r->xjob = NULL;
}

int mxr_lua_xch_cancel(lres *r)
{
  if (!r->xch || !r->xch->x || !r->xjob)
    return 0;
  mxr_xch_cancel(r->xch->x, r->xjob);
  return 1;
}

/* close, __gc and __close share this path: every attached query is
 * cancelled (CANCELLED) and detached. */
static int xch_close(lua_State *L)
{
  lxch *e = luaL_checkudata(L, 1, XCH_MT);
  if (!e->x)
    return 0;
  mxr_lua_forget_queries(L, 1);
  mxr_xch_free(e->x);
  e->x = NULL;
  /* the queries are detached: let them go */
  lua_newtable(L);
  mxr_setuv(L, 1);
  return 0;
}

/* A number field of the config table at idx within [lo, hi]; 0 when
 * absent (the exchange's default). */
static double cfg_number(lua_State *L, int idx, const char *field,
                         double lo, double hi, int integer)
{
  double v;
  lua_getfield(L, idx, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "mxroute.xch: '%s' must be a number", field);
  v = (double)lua_tonumber(L, -1);
  if (!(v >= lo && v <= hi) || (integer && v != (double)(long long)v))
    luaL_error(L, "mxroute.xch: '%s' out of range", field);
  lua_pop(L, 1);
  return v;
}

/* core.xch{ servers = { "IP[:PORT]", ... }, timeout =, tries =,
 * max_inflight =, udp_queries =, health =, dns0x20 = } */
static int l_xch(lua_State *L)
{
  mxr_xch_config cfg;
  mxr_server *servers;
  char err[MXR_MSG_BUF];
  size_t n, i;
  lxch *e;
  mxr_status st;

  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  memset(&cfg, 0, sizeof cfg);
  lua_getfield(L, 1, "servers"); /* 2 */
  if (!lua_istable(L, 2) || (n = mxr_rawlen(L, 2)) < 1 || n > 64)
    return luaL_error(L, "mxroute.xch: 'servers' must be a list of 1 to "
                      "64 nameservers");
  /* a userdata, not malloc: a bad entry raises */
  servers = mxr_newud(L, n * sizeof *servers); /* 3 */
  for (i = 0; i < n; i++) {
    size_t len;
    const char *s;
    lua_rawgeti(L, 2, (int)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "mxroute.xch: servers[%d] must be a string",
                        (int)i + 1);
    s = lua_tolstring(L, -1, &len);
    err[0] = 0;
    if (mxr_server_parse(s, len, &servers[i], err, sizeof err) != MXR_OK)
      return luaL_error(L, "mxroute.xch: servers[%d]: %s", (int)i + 1,
                        err[0] ? err : "not a nameserver");
    lua_pop(L, 1);
  }
  cfg.servers = servers;
  cfg.nservers = n;
  cfg.timeout = cfg_number(L, 1, "timeout", 0.001, 3600, 0);
  cfg.tries = (int)cfg_number(L, 1, "tries", 1, 100, 1);
  cfg.max_inflight = (size_t)cfg_number(L, 1, "max_inflight", 1, 1e6, 1);
  cfg.udp_queries = (unsigned)cfg_number(L, 1, "udp_queries", 1, 65535, 1);
  cfg.health = cfg_number(L, 1, "health", 1e-6, 86400, 0);
  lua_getfield(L, 1, "dns0x20");
  cfg.case_randomize = lua_toboolean(L, -1);
  lua_getfield(L, 1, "trace");
  cfg.trace = lua_toboolean(L, -1);
  lua_pop(L, 2);

  e = mxr_newud(L, sizeof *e); /* 4 */
  e->x = NULL;
  e->nservers = (unsigned)n;
  luaL_setmetatable(L, XCH_MT);
  lua_newtable(L); /* attached queries: light pointer -> query */
  mxr_setuv(L, 4);
  err[0] = 0;
  st = mxr_xch_new(&cfg, &e->x, err, sizeof err);
  if (st == MXR_ENOMEM)
    return luaL_error(L, "mxroute: out of memory");
  if (st != MXR_OK)
    return luaL_error(L, "mxroute.xch: %s", err[0] ? err
                                                   : mxr_status_text(st));
  return 1;
}

/* x:add(q): q is driven by the exchange until x:next_done() hands it
 * back (or x:remove / x:close). */
static int xch_add(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  lres *r = mxr_lua_check_res(L, 2);
  lua_State *prev;
  mxr_status st;
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query already submitted");
  mxr_lua_link_query(L, 2, 1, "xch");
  r->xch = e;
  prev = mxr_lua_cache_enter(L);
  st = mxr_xch_add(e->x, r->res, r, &r->xjob, mxr_now());
  mxr_lua_cache_leave(prev);
  if (st != MXR_OK) {
    r->xjob = NULL;
    forget(L, 1, r);
    return luaL_error(L, "mxroute: %s", mxr_status_text(st));
  }
  return 0;
}

/* x:cancel(q): CANCELLED unless done; still reported by next_done. */
static int xch_cancel(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  lres *r = check_attached(L, e, 2);
  mxr_xch_cancel(e->x, r->xjob);
  return 0;
}

/* x:remove(q): detach at once (cancelling q unless done). */
static int xch_remove(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  lres *r = mxr_lua_check_res(L, 2);
  if (r->xch != e || !r->xjob)
    return 0;
  mxr_xch_remove(e->x, r->xjob);
  r->xjob = NULL;
  forget(L, 1, r);
  return 0;
}

/* x:next_done() -> q | nil: a finished query, detached. */
static int xch_next_done(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  lres *r;
  mxr_getuv(L, 1); /* 2 */
  while ((r = mxr_xch_next_done(e->x)) != NULL) {
    if (r->xjob)
      mxr_xch_remove(e->x, r->xjob);
    r->xjob = NULL;
    lua_pushlightuserdata(L, r);
    lua_rawget(L, 2);
    lua_pushlightuserdata(L, r);
    lua_pushnil(L);
    lua_rawset(L, 2);
    if (!lua_isnil(L, -1))
      return 1;
    lua_pop(L, 1);
  }
  return 0;
}

/* x:io() -> op, sock, server, data | nil */
static int xch_io(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  mxr_io io;
  lua_State *prev = mxr_lua_cache_enter(L);
  int got = mxr_xch_io(e->x, &io, mxr_now());
  mxr_lua_cache_leave(prev);
  if (!got)
    return 0;
  switch (io.op) {
  case MXR_IO_OPEN_UDP:
    lua_pushliteral(L, "udp");
    break;
  case MXR_IO_OPEN_TCP:
    lua_pushliteral(L, "tcp");
    break;
  case MXR_IO_SEND:
    lua_pushliteral(L, "send");
    break;
  default:
    lua_pushliteral(L, "close");
    break;
  }
  lua_pushinteger(L, (lua_Integer)io.sock);
  lua_pushinteger(L, (lua_Integer)io.server + 1);
  if (io.op == MXR_IO_SEND) {
    lua_pushlstring(L, (const char *)io.data, io.len);
    return 4;
  }
  return 3;
}

static unsigned check_sock(lua_State *L, int idx)
{
  lua_Integer s = luaL_checkinteger(L, idx);
  if (s < 0 || (unsigned long long)s > 0xffffffffULL)
    luaL_error(L, "mxroute: bad socket number");
  return (unsigned)s;
}

/* x:recv(sock, data) -> taken, due. taken: false when the exchange
 * dropped the message (wrong ID, question, socket...), true when a query
 * took it (an answer, a failure moving on to the next server, TC) or
 * when the bytes complete no message yet. A transport handing over one
 * whole message at a time learns when every query it sent on a socket
 * has its reply. due: x:timeout() is 0 now (I/O to do, finished
 * queries or a deadline passed), as one call less for the transport. */
static int xch_recv(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  unsigned sock = check_sock(L, 2);
  size_t len;
  const char *data = luaL_checklstring(L, 3, &len);
  mxr_xch_stats before, after;
  lua_State *prev;
  double now = mxr_now();
  mxr_xch_get_stats(e->x, &before);
  prev = mxr_lua_cache_enter(L);
  mxr_xch_recv(e->x, sock, (const unsigned char *)data, len, now);
  mxr_lua_cache_leave(prev);
  mxr_xch_get_stats(e->x, &after);
  lua_pushboolean(L, after.dropped == before.dropped);
  lua_pushboolean(L, mxr_xch_timeout(e->x, now) == 0.0);
  return 2;
}

/* x:sock_error(sock, code): "NETWORK" (refused, unreachable, reset,
 * failed send) or "TIMEOUT". */
static int xch_sock_error(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  unsigned sock = check_sock(L, 2);
  const char *code = luaL_optstring(L, 3, "NETWORK");
  lua_State *prev;
  mxr_status st;
  if (mxr_status_from_name(code, &st) != MXR_OK ||
      (st != MXR_ENETWORK && st != MXR_ETIMEOUT))
    return luaL_error(L, "mxroute: sock_error: expected \"NETWORK\" or "
                      "\"TIMEOUT\", got '%s'", code);
  prev = mxr_lua_cache_enter(L);
  mxr_xch_sock_error(e->x, sock, st, mxr_now());
  mxr_lua_cache_leave(prev);
  return 0;
}

/* x:timeout() -> seconds until x:tick() is due (0: now), nil when
 * nothing is in flight. */
static int xch_timeout(lua_State *L)
{
  double t = mxr_xch_timeout(check_xch(L, 1)->x, mxr_now());
  if (t < 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, (lua_Number)t);
  return 1;
}

static int xch_tick(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  lua_State *prev = mxr_lua_cache_enter(L);
  mxr_xch_tick(e->x, mxr_now());
  mxr_lua_cache_leave(prev);
  return 0;
}

/* x:pending() -> attached queries not yet done */
static int xch_pending(lua_State *L)
{
  lua_pushinteger(L, (lua_Integer)mxr_xch_pending(check_xch(L, 1)->x));
  return 1;
}

static void set_count(lua_State *L, const char *k, uint64_t v)
{
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* x:stats() -> { queries, answers, timeouts, tcp, merged, dropped,
 * sockets, server_failures = { per server } } */
static int xch_stats(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  mxr_xch_stats s;
  unsigned i = 0;
  mxr_xch_get_stats(e->x, &s);
  lua_createtable(L, 0, 8);
  set_count(L, "queries", s.queries);
  set_count(L, "answers", s.answers);
  set_count(L, "timeouts", s.timeouts);
  set_count(L, "tcp", s.tcp);
  set_count(L, "merged", s.merged);
  set_count(L, "dropped", s.dropped);
  set_count(L, "sockets", s.sockets);
  lua_createtable(L, (int)e->nservers, 0);
  for (i = 0; i < e->nservers; i++) {
    lua_pushinteger(L, (lua_Integer)mxr_xch_server_failures(e->x, i));
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "server_failures");
  return 1;
}

/* x:next_event() -> the next traced query event (trace = true; as
 * mxr_lua_push_event), or nil. */
static int xch_next_event(lua_State *L)
{
  lxch *e = check_xch(L, 1);
  mxr_xch_event ev;
  if (!mxr_xch_next_event(e->x, &ev))
    return 0;
  mxr_lua_push_event(L, &ev, mxr_xch_server(e->x, ev.server));
  return 1;
}

static const luaL_Reg xch_m[] = {
    {"add", xch_add},         {"cancel", xch_cancel},
    {"remove", xch_remove},   {"next_done", xch_next_done},
    {"io", xch_io},           {"recv", xch_recv},
    {"sock_error", xch_sock_error}, {"timeout", xch_timeout},
    {"tick", xch_tick},       {"pending", xch_pending},
    {"stats", xch_stats},     {"close", xch_close},
    {"next_event", xch_next_event}, {NULL, NULL}};

void mxr_lua_open_xch(lua_State *L, int lib)
{
  mxr_lua_new_class(L, XCH_MT, xch_m, xch_close);
  lua_pushcfunction(L, l_xch);
  lua_setfield(L, lib, "xch");
}
