/*
 * lquery.c — the query class (mxroute.query): core.res(input, opts
 * [, route [, cache]]) makes a sans-I/O resolution, driven by a Lua
 * transport (q:next/answer/fail), an engine (lengine.c) or an exchange
 * (lxch.c), and read with q:done(), q:result(), q:class(), q:ready(),
 * q:target(); q:cancel() ends it.
 */
#include "lmxroute.h"

#include <string.h>

lres *mxr_lua_check_res(lua_State *L, int idx)
{
  lres *r = mxr_lua_checkudata(L, idx, RES_MT);
  if (!r->res)
    luaL_error(L, "mxroute: query is closed");
  return r;
}

static int engine_open(const lres *r)
{
  return r->eng && r->eng->e && r->job;
}

static int res_gc(lua_State *L)
{
  lres *r = mxr_lua_checkudata(L, 1, RES_MT);
  if (r->reported) {
    r->reported = 0;
    r->eng->unreaped--;
  }
  if (engine_open(r))
    mxr_engine_remove(r->eng->e, r->job);
  r->job = NULL;
  mxr_lua_xch_detach(r);
  mxr_res_free(r->res);
  r->res = NULL;
  return 0;
}

/* core.res(input, opts [, route [, cache]]); route.finish, a function,
 * rewrites the result once (routes.lua: route annotation and hooks).
 * The uservalue keeps what the resolution needs alive (opts, cache), the
 * finish function, and then the transport (mxr_lua_link_query) and the
 * final result (lroute.c). */
static int l_res(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lopts *lo = mxr_lua_check_opts(L, 2);
  mxr_cache *cache = mxr_lua_opt_cache(L, 4);
  int finish = 0;
  lres *r;
  if (!lua_isnoneornil(L, 3)) {
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_getfield(L, 3, "finish");
    finish = !lua_isnil(L, -1);
    lua_pop(L, 1);
  }
  lua_settop(L, 4);
  r = mxr_newud(L, sizeof *r + len + 1);
  r->res = NULL;
  r->eng = NULL;
  r->job = NULL;
  r->xch = NULL;
  r->xjob = NULL;
  r->reported = 0;
  r->finish = finish;
  memcpy(r->input, s, len);
  r->input[len] = '\0';
  luaL_setmetatable(L, RES_MT);
  /* opts, the cache if any, the transport; finish and final too with a
   * finish: sized for those alone (no room for a cache it has not) */
  lua_createtable(L, 0, 2 + (cache != NULL) + (finish ? 2 : 0));
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "opts"); /* keeps opts and its rng alive */
  if (cache) {
    lua_pushvalue(L, 4);
    lua_setfield(L, -2, "cache"); /* the cache outlives the resolution */
  }
  if (finish) {
    lua_getfield(L, 3, "finish");
    lua_setfield(L, -2, "finish");
  }
  mxr_setuv(L, -2);
  r->res = mxr_lua_new_res(L, s, len, lo);
  if (!r->res)
    return luaL_error(L, "mxroute: out of memory");
  mxr_res_set_cache(r->res, cache);
  lua_settop(L, 5);
  return 1;
}


/* A query closed early (<close>, or collected) counts as done and
 * cancelled, so that whoever still holds it gets an answer. */
static int res_done(lua_State *L)
{
  lres *r = mxr_lua_checkudata(L, 1, RES_MT);
  lua_pushboolean(L, !r->res || mxr_res_done(r->res));
  return 1;
}

/* q:result() -> plan | nil, message, code, info; raises if not done */
static int res_result(lua_State *L)
{
  lres *r = mxr_lua_checkudata(L, 1, RES_MT);
  if (!r->res)
    return mxr_lua_push_failure(L, r->input, "query was closed",
                                MXR_ECANCELLED);
  if (!mxr_res_done(r->res))
    return luaL_error(L, "mxroute: query is not done");
  if (r->finish && mxr_lua_final_result(L, 1, r)) {
    int i;
    for (i = 1; i <= 4; i++)
      lua_rawgeti(L, -i, i);
    return 4;
  }
  return mxr_lua_push_res_result(L, r->res);
}

/* q:class() -> "ok" | "permanent" | "temporary" | "loop" | "invalid" of
 * a done query's final result (as q:result() reports it; r:stats()
 * counts plans with it, without building the plan). */
static int res_class(lua_State *L)
{
  lres *r = mxr_lua_checkudata(L, 1, RES_MT);
  mxr_status st = MXR_ECANCELLED;
  mxr_result out;
  if (r->res) {
    if (!mxr_res_done(r->res))
      return luaL_error(L, "mxroute: query is not done");
    if (r->finish && mxr_lua_final_result(L, 1, r)) {
      const char *code;
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 3);
      code = lua_tostring(L, -1);
      if (!lua_isnil(L, -2))
        st = MXR_OK;
      else if (!code || mxr_status_from_name(code, &st) != MXR_OK)
        st = MXR_EHOOK;
      lua_pop(L, 3);
    } else if (mxr_res_result(r->res, &out) == MXR_OK)
      st = out.status;
  }
  lua_pushstring(L, mxr_class_name(mxr_status_class(st)));
  return 1;
}

static int res_ready(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  if (r->finish && mxr_lua_final_targets(L, r)) {
    lua_pushinteger(L, (lua_Integer)mxr_rawlen(L, -1));
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)mxr_res_ready(r->res));
  return 1;
}

/* q:target(i) -> {host, pref, addr, family} for i <= q:ready() */
static int res_target(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  const mxr_target *t;
  if (i < 1)
    return 0;
  if (r->finish && mxr_lua_final_targets(L, r)) {
    lua_rawgeti(L, -1, (int)i);
    return lua_isnil(L, -1) ? 0 : 1;
  }
  t = mxr_res_target(r->res, (size_t)(i - 1));
  if (!t)
    return 0;
  mxr_lua_push_target(L, t);
  return 1;
}

/* q:cancel() — completes the query with CANCELLED; an engine-driven one
 * is reported done by the next step (so its callback runs). */
static int res_cancel(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  if (engine_open(r))
    mxr_engine_cancel(r->eng->e, r->job);
  else if (!mxr_lua_xch_cancel(r))
    mxr_res_cancel(r->res, MXR_ECANCELLED);
  return 0;
}

/* The sans-I/O side, for transports written in Lua (OpenResty). */
static int res_next(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  mxr_query q;
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query is driven by an engine");
  if (!mxr_res_next(r->res, &q))
    return 0;
  lua_pushinteger(L, (lua_Integer)q.slot);
  lua_pushstring(L, q.name);
  lua_pushinteger(L, q.type);
  return 3;
}

static unsigned check_slot(lua_State *L, int idx)
{
  lua_Integer s = luaL_checkinteger(L, idx);
  if (s < 0 || s > 0x7fffffff)
    luaL_error(L, "mxroute: bad slot");
  return (unsigned)s;
}

static int res_answer(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  unsigned slot = check_slot(L, 2);
  size_t len;
  const char *pkt = luaL_checklstring(L, 3, &len);
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query is driven by an engine");
  mxr_res_answer(r->res, slot, (const unsigned char *)pkt, len);
  return 0;
}

static int res_fail(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  unsigned slot = check_slot(L, 2);
  mxr_status st = mxr_lua_check_code(L, 3, "mxroute: fail");
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query is driven by an engine");
  mxr_res_fail(r->res, slot, st);
  return 0;
}

/* Link the query at qidx with the transport at tidx: the query keeps the
 * transport alive (its uservalue's field), the transport finds the query
 * from its light pointer (the transport's uservalue table). */
void mxr_lua_link_query(lua_State *L, int qidx, int tidx, const char *field)
{
  lres *r = lua_touserdata(L, qidx);
  mxr_getuv(L, qidx);
  lua_pushvalue(L, tidx);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
  mxr_getuv(L, tidx);
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, qidx);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* The transport at tidx is going away: every query still reachable from
 * it forgets its handle into it. */
void mxr_lua_forget_queries(lua_State *L, int tidx)
{
  mxr_getuv(L, tidx);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lres *r = luaL_testudata(L, -1, RES_MT);
      if (r) {
        r->job = NULL;
        r->xjob = NULL;
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

static const luaL_Reg res_m[] = {
    {"done", res_done},     {"result", res_result}, {"ready", res_ready},
    {"target", res_target}, {"cancel", res_cancel}, {"next", res_next},
    {"answer", res_answer}, {"fail", res_fail},     {"class", res_class},
    {NULL, NULL}};

void mxr_lua_open_query(lua_State *L, int lib)
{
  mxr_lua_new_class(L, RES_MT, res_m, res_gc);
  lua_pushcfunction(L, l_res);
  lua_setfield(L, lib, "res");
}
