/*
 * lroute.c — the Lua binding of routed resolutions (DESIGN 7): the
 * routed form of core.res (what mxroute.routes decided, as hops for
 * mxr_res_new_routed or a failure for mxr_res_new_failed), the finish
 * function that rewrites a routed query's result once (route annotation
 * and hooks, lua/mxroute/routes.lua), and core.parse for route tables.
 *
 * Nothing here holds malloc'd memory across a call that can raise: hops
 * are read into arrays on the C stack and their names stay referenced by
 * the route table while the core copies them.
 */
#include "lmxroute.h"

#include <string.h>

/* Hops of a route: route[field], a list of { name = s | nil, mx = bool,
 * port = n | nil }, into h (at most MXR_HOPS_MAX - used). The names stay
 * on the Lua stack inside route while mxr_res_new_routed copies them. */
static size_t read_hops(lua_State *L, int route, const char *field,
                        mxr_hop *h, size_t used)
{
  size_t n = 0;
  lua_getfield(L, route, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  luaL_checktype(L, -1, LUA_TTABLE);
  n = (size_t)mxr_rawlen(L, -1);
  if (n > MXR_HOPS_MAX - used)
    luaL_error(L, "mxroute: a route has at most %d nexthops and fallback "
                  "relays", MXR_HOPS_MAX);
  for (size_t i = 0; i < n; i++) {
    lua_Integer port;
    lua_rawgeti(L, -1, (int)i + 1);
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_getfield(L, -1, "name");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "mxroute: route %s %d: name must be a string", field,
                 (int)i + 1);
    h[i].len = 0;
    h[i].name = lua_isnil(L, -1) ? NULL : lua_tolstring(L, -1, &h[i].len);
    lua_pop(L, 1); /* still referenced by the hop table */
    lua_getfield(L, -1, "mx");
    h[i].mx = lua_toboolean(L, -1);
    lua_getfield(L, -2, "port");
    port = lua_isnil(L, -1) ? 25 : luaL_checkinteger(L, -1);
    if (port < 1 || port > 65535)
      luaL_error(L, "mxroute: route %s %d: bad port", field, (int)i + 1);
    h[i].port = (uint16_t)port;
    lua_pop(L, 3);
  }
  lua_pop(L, 1);
  return n;
}

/* The resolution core.res asks for: plain, or with the route table at
 * index 3 ({ hops, fallback } or { fail = { code, message } }). */
mxr_res *mxr_lua_new_res(lua_State *L, const char *s, size_t len, lopts *lo)
{
  mxr_hop hops[MXR_HOPS_MAX], fb[MXR_HOPS_MAX];
  size_t nh, nf;
  if (lua_isnoneornil(L, 3))
    return mxr_res_new(s, len, lo->o, &lo->rng);
  luaL_checktype(L, 3, LUA_TTABLE);
  lua_getfield(L, 3, "fail");
  if (!lua_isnil(L, -1)) {
    mxr_status st;
    const char *msg;
    luaL_checktype(L, -1, LUA_TTABLE);
    lua_getfield(L, -1, "code");
    if (mxr_status_from_name(luaL_checkstring(L, -1), &st) != MXR_OK ||
        st == MXR_OK)
      luaL_error(L, "mxroute: route fail: unknown code '%s'",
                 lua_tostring(L, -1));
    lua_getfield(L, -2, "message");
    msg = lua_tostring(L, -1);
    return mxr_res_new_failed(s, len, st, msg, lo->o, &lo->rng);
  }
  lua_pop(L, 1);
  nh = read_hops(L, 3, "hops", hops, 0);
  nf = read_hops(L, 3, "fallback", fb, nh);
  if (nh == 0 && nf == 0) /* the recipient's domain, as without routes */
    return mxr_res_new(s, len, lo->o, &lo->rng);
  if (nh == 0) { /* fallback relays alone: the recipient's own domain */
    if (nf == MXR_HOPS_MAX)
      luaL_error(L, "mxroute: a route has at most %d nexthops and fallback "
                    "relays", MXR_HOPS_MAX);
    hops[0].name = NULL;
    hops[0].len = 0;
    hops[0].mx = 1;
    hops[0].port = 25;
    nh = 1;
  }
  return mxr_res_new_routed(s, len, hops, nh, fb, nf, lo->o, &lo->rng);
}

/* With a finish function (routes): the rewritten result, computed once
 * when the query is done and kept in the uservalue as uv.final = { n,
 * plan | nil, message, code, info }; pushes that table, or nothing and
 * returns 0 when there is no finish function. */
int mxr_lua_final_result(lua_State *L, int idx, lres *r)
{
  int base, i;
  mxr_getuv(L, idx); /* idx > 0 */
  lua_getfield(L, -1, "final");
  if (!lua_isnil(L, -1)) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "finish");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  base = lua_gettop(L); /* uv at base - 1, finish at base */
  lua_call(L, mxr_lua_push_res_result(L, r->res), 4);
  lua_createtable(L, 4, 0);
  for (i = 1; i <= 4; i++) {
    lua_pushvalue(L, base + i - 1);
    lua_rawseti(L, -2, i);
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, base - 1, "final");
  lua_replace(L, base - 1);
  lua_settop(L, base - 1);
  return 1;
}

/* The finished plan's targets when a finish function rewrites them
 * (pushed, 1), or 0 when targets come straight from the resolution. A
 * rewritten plan has no final target before it is done. */
int mxr_lua_final_targets(lua_State *L, lres *r)
{
  mxr_getuv(L, 1);
  lua_getfield(L, -1, "finish");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pop(L, 2);
  if (!mxr_res_done(r->res)) {
    lua_newtable(L);
    return 1;
  }
  mxr_lua_final_result(L, 1, r);
  lua_rawgeti(L, -1, 1);
  lua_remove(L, -2);
  if (lua_istable(L, -1)) {
    lua_getfield(L, -1, "targets");
    lua_remove(L, -2);
  }
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  return 1;
}

/* core.parse(s) -> kind ("domain" | "literal"), normalised domain |
 * nil, message: the input parser, for route tables (keys, nexthops). */
static int l_parse(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  char err[MXR_MSG_BUF];
  mxr_input in;
  err[0] = '\0';
  if (mxr_input_parse(s, len, &in, err, sizeof err) != MXR_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushstring(L, in.kind == MXR_INPUT_LITERAL ? "literal" : "domain");
  lua_pushstring(L, in.domain);
  return 2;
}

static const luaL_Reg route_funcs[] = {{"parse", l_parse}, {NULL, NULL}};

void mxr_lua_open_route(lua_State *L, int lib)
{
  const luaL_Reg *f;
  for (f = route_funcs; f->name; f++) {
    lua_pushcfunction(L, f->func);
    lua_setfield(L, lib, f->name);
  }
}
