/*
 * lplan.c — core.plan(records, opts): the reader of mxroute.plan's
 * records tables, feeding the pure planner (plan.c). Temporary arrays
 * are userdata, and the plan itself sits in a box (mxroute.planbox)
 * whose __gc frees it, so a raise leaks nothing.
 */
#include "lmxroute.h"

static int box_gc(lua_State *L)
{
  mxr_plan **b = luaL_checkudata(L, 1, BOX_MT);
  mxr_plan_free(*b);
  *b = NULL;
  return 0;
}

/* Feed one host's addresses from value at idx (table of strings, a code
 * string, or nil = NODATA). Returns 0 or pushes nil,msg,code and returns
 * 3 for data that is not an address. */
static int feed_host(lua_State *L, mxr_plan *p, size_t i, int idx)
{
  int fam;
  if (lua_isnil(L, idx)) {
    for (fam = 4; fam <= 6; fam += 2)
      if (mxr_plan_host_wants(p, i, fam))
        mxr_plan_set_addrs(p, i, fam, MXR_OK, NULL, 0);
    return 0;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    mxr_status st;
    lua_pushfstring(L, "mxroute.plan: records.addrs['%s']",
                    mxr_plan_host_name(p, i));
    st = mxr_lua_check_code(L, idx, lua_tostring(L, -1));
    lua_pop(L, 1);
    for (fam = 4; fam <= 6; fam += 2)
      if (mxr_plan_host_wants(p, i, fam))
        mxr_plan_set_addrs(p, i, fam, st, NULL, 0);
    return 0;
  }
  if (lua_istable(L, idx)) {
    size_t n = mxr_rawlen(L, idx), k, n4 = 0, n6 = 0;
    mxr_addr *a4, *a6;
    a4 = mxr_newud(L, (n ? n : 1) * sizeof *a4);
    a6 = mxr_newud(L, (n ? n : 1) * sizeof *a6);
    for (k = 1; k <= n; k++) {
      size_t len;
      const char *s;
      mxr_addr a;
      lua_rawgeti(L, idx, (int)k);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "mxroute.plan: addrs['%s'][%d] is not a string",
                   mxr_plan_host_name(p, i), (int)k);
      lua_pushfstring(L, "mxroute.plan: addrs['%s'][%d]",
                      mxr_plan_host_name(p, i), (int)k);
      s = mxr_lua_check_nul(L, -2, &len, lua_tostring(L, -1));
      lua_pop(L, 1);
      if (mxr_addr_parse(s, len, &a) != MXR_OK) {
        mxr_result res;
        lua_pushfstring(L, "%s: '%s' is not an IP address",
                        mxr_plan_host_name(p, i), s);
        mxr_plan_abort(p, MXR_EFORMERR, lua_tostring(L, -1));
        if (mxr_plan_result(p, &res) != MXR_OK)
          return luaL_error(L, "mxroute.plan: internal error");
        return mxr_lua_push_result(L, &res);
      }
      lua_pop(L, 1);
      if (a.family == 4)
        a4[n4++] = a;
      else
        a6[n6++] = a;
    }
    if (mxr_plan_host_wants(p, i, 4))
      mxr_plan_set_addrs(p, i, 4, MXR_OK, a4, n4);
    if (mxr_plan_host_wants(p, i, 6))
      mxr_plan_set_addrs(p, i, 6, MXR_OK, a6, n6);
    lua_pop(L, 2);
    return 0;
  }
  return luaL_error(L, "mxroute.plan: addrs['%s'] must be a list, a code "
                    "or nil", mxr_plan_host_name(p, i));
}

/* Parse records.mx (at idx) into an mxr_mx array. Pushes the array (a
 * userdata) and a table anchoring every name string: a name may come
 * from an __index metamethod, referenced by nothing else. */
static size_t read_mx(lua_State *L, int idx, mxr_mx **out)
{
  size_t n = mxr_rawlen(L, idx), k;
  mxr_mx *mx = mxr_newud(L, (n ? n : 1) * sizeof *mx);
  int anchor;
  lua_createtable(L, (int)n, 0);
  anchor = lua_gettop(L);
  for (k = 1; k <= n; k++) {
    lua_Number pref;
    lua_rawgeti(L, idx, (int)k);
    if (!lua_istable(L, -1))
      luaL_error(L, "mxroute.plan: mx[%d] must be a table", (int)k);
    lua_getfield(L, -1, "pref");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_rawgeti(L, -1, 1);
    }
    lua_getfield(L, -2, "name");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_rawgeti(L, -2, 2);
    }
    if (lua_type(L, -2) != LUA_TNUMBER)
      luaL_error(L, "mxroute.plan: mx[%d].pref must be a number", (int)k);
    pref = lua_tonumber(L, -2);
    if (!(pref >= 0 && pref <= 65535) || pref != (lua_Number)(int)pref)
      luaL_error(L, "mxroute.plan: mx[%d].pref must be 0..65535", (int)k);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "mxroute.plan: mx[%d].name must be a string", (int)k);
    mx[k - 1].pref = (uint16_t)pref;
    lua_pushfstring(L, "mxroute.plan: mx[%d].name", (int)k);
    mx[k - 1].name = mxr_lua_check_nul(L, -2, &mx[k - 1].len, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, anchor, (int)k);
    lua_pop(L, 3);
  }
  *out = mx;
  return n;
}

/* core.plan(records, opts) */
static int l_plan(lua_State *L)
{
  lopts *lo;
  mxr_plan **box;
  mxr_plan *p;
  mxr_input in;
  char err[MXR_MSG_BUF];
  const char *text, *canon = NULL;
  size_t len, i, n;
  mxr_status st;
  int addrs_idx;

  luaL_checktype(L, 1, LUA_TTABLE);
  lo = mxr_lua_check_opts(L, 2);
  lua_settop(L, 2);
  lua_getfield(L, 1, "domain"); /* 3 */
  if (lua_type(L, 3) != LUA_TSTRING)
    return luaL_error(L, "mxroute.plan: records.domain must be a string");
  text = lua_tolstring(L, 3, &len);
  lua_getfield(L, 1, "mx"); /* 4 */
  lua_getfield(L, 1, "addrs"); /* 5 */
  if (!lua_isnil(L, 5) && !lua_istable(L, 5))
    return luaL_error(L, "mxroute.plan: records.addrs must be a table");
  lua_getfield(L, 1, "cname"); /* 6 */
  if (!lua_isnil(L, 6)) {
    if (lua_type(L, 6) != LUA_TSTRING)
      return luaL_error(L, "mxroute.plan: records.cname must be a string");
    canon = mxr_lua_check_nul(L, 6, NULL, "mxroute.plan: records.cname");
  }
  box = mxr_newud(L, sizeof *box); /* 7 */
  *box = NULL;
  luaL_setmetatable(L, BOX_MT);

  err[0] = 0;
  st = mxr_input_parse(text, len, &in, err, sizeof err);
  if (st != MXR_OK)
    return mxr_lua_push_failure(L, text, err, st);
  *box = p = mxr_plan_new(&in, text, len, lo->o);
  if (!p)
    return luaL_error(L, "mxroute: out of memory");

  if (!mxr_plan_complete(p)) {
    mxr_mx *mx = NULL;
    n = 0;
    if (lua_isnil(L, 4) || (lua_isboolean(L, 4) && !lua_toboolean(L, 4)))
      st = MXR_ENODATA;
    else if (lua_type(L, 4) == LUA_TSTRING)
      st = mxr_lua_check_code(L, 4, "mxroute.plan: records.mx");
    else if (lua_istable(L, 4)) {
      n = read_mx(L, 4, &mx); /* pushes 8 and 9 */
      st = MXR_OK;
    } else
      return luaL_error(L, "mxroute.plan: records.mx must be a list, "
                        "false or a code");
    if (mxr_plan_set_mx(p, st, canon, mx, n, &lo->rng) == MXR_ENOMEM)
      return luaL_error(L, "mxroute: out of memory");
    lua_settop(L, 7);
    /* addrs keyed by normalised name: DNS names match case-insensitively
     * and without the trailing dot */
    lua_newtable(L); /* 8 */
    addrs_idx = 8;
    if (lua_istable(L, 5)) {
      lua_pushnil(L);
      while (lua_next(L, 5)) {
        char nm[MXR_NAME_BUF];
        const char *k;
        size_t klen;
        if (lua_type(L, -2) != LUA_TSTRING)
          return luaL_error(L, "mxroute.plan: records.addrs keys must be "
                            "host names");
        k = mxr_lua_check_nul(L, -2, &klen, "mxroute.plan: records.addrs key");
        if (mxr_name_normalize(k, klen, nm, NULL, 0) != MXR_OK)
          return luaL_error(L, "mxroute.plan: records.addrs key '%s' is "
                            "not a host name", k);
        lua_pushstring(L, nm);
        lua_pushvalue(L, -2);
        lua_rawset(L, addrs_idx);
        lua_pop(L, 1);
      }
    }
    n = mxr_plan_host_count(p);
    for (i = 0; i < n; i++) {
      int r;
      lua_getfield(L, addrs_idx, mxr_plan_host_name(p, i));
      r = feed_host(L, p, i, lua_gettop(L));
      if (r)
        return r;
      lua_pop(L, 1);
    }
  }
  if (!mxr_plan_complete(p))
    return luaL_error(L, "mxroute.plan: internal error: plan incomplete");
  return mxr_lua_push_plan_result(L, p);
}

void mxr_lua_open_plan(lua_State *L, int lib)
{
  luaL_newmetatable(L, BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_plan);
  lua_setfield(L, lib, "plan");
}
