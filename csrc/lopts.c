/*
 * lopts.c — core.opts(t): the planner options and the resolver's PRNG
 * (a userdata of class mxroute.opts), validated once, raising with the
 * name of the bad field.
 */
#include "lmxroute.h"

#include <stdio.h>
#include <string.h>

lopts *mxr_lua_check_opts(lua_State *L, int idx)
{
  lopts *o = luaL_checkudata(L, idx, OPTS_MT);
  if (!o->o)
    luaL_error(L, "mxroute: options are closed");
  return o;
}

static int opts_gc(lua_State *L)
{
  lopts *o = luaL_checkudata(L, 1, OPTS_MT);
  mxr_opts_free(o->o);
  o->o = NULL;
  return 0;
}

static int opt_error(lua_State *L, const char *field, const char *msg)
{
  return luaL_error(L, "mxroute: option '%s': %s", field, msg);
}

/* Positive integer option. */
static size_t opt_count(lua_State *L, const char *field)
{
  lua_Number n;
  if (lua_type(L, -1) != LUA_TNUMBER)
    opt_error(L, field, "expected a positive integer");
  n = lua_tonumber(L, -1);
  if (!(n >= 1 && n <= 1e6) || n != (lua_Number)(size_t)n)
    opt_error(L, field, "expected a positive integer");
  return (size_t)n;
}

/* The length of the list at idx, raising naming field unless it is a
 * proper sequence: keys 1..n and nothing else. A hole ({"a", nil, "b"},
 * or a sparse table) would otherwise silently cut the list at a border. */
static size_t check_list(lua_State *L, int idx, const char *field)
{
  size_t n = 0, max = 0, i;
  if (idx < 0)
    idx = lua_gettop(L) + idx + 1;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_Number k;
    lua_pop(L, 1);
    k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (!(k >= 1 && k <= 1e9 && k == (lua_Number)(size_t)k))
      luaL_error(L, "mxroute: option '%s': expected a list (a key is not "
                 "an index 1..n)", field);
    n++;
    if ((size_t)k > max)
      max = (size_t)k;
  }
  for (i = 1; n != max && i <= max; i++) {
    int missing;
    lua_rawgeti(L, idx, (int)i);
    missing = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (missing)
      luaL_error(L, "mxroute: option '%s': expected a list without holes "
                 "(entry %d is missing)", field, (int)i);
  }
  return n;
}

static void opts_strings(lua_State *L, mxr_opts *o, const char *field,
                         int self)
{
  char err[MXR_MSG_BUF], what[64];
  size_t i, n, len;
  const char *s;
  int single = lua_type(L, -1) == LUA_TSTRING;
  if (!single && !lua_istable(L, -1))
    opt_error(L, field, "expected a list of strings");
  n = single ? 1 : check_list(L, -1, field);
  snprintf(what, sizeof what, "mxroute: option '%s':", field);
  if (!self)
    mxr_opts_ignore_clear(o);
  for (i = 1; i <= n; i++) {
    mxr_status st;
    if (!single)
      lua_rawgeti(L, -1, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      opt_error(L, field, "expected a list of strings");
    s = mxr_lua_check_nul(L, -1, &len, what);
    err[0] = 0;
    st = self ? mxr_opts_add_self(o, s, len, err, sizeof err)
              : mxr_opts_ignore_add(o, s, len, err, sizeof err);
    if (st == MXR_ENOMEM)
      luaL_error(L, "mxroute: out of memory");
    if (st != MXR_OK) { /* "self: not a ...: 'x'": the field is named once */
      size_t fl = strlen(field);
      const char *m = err;
      if (!strncmp(m, field, fl) && m[fl] == ':' && m[fl + 1] == ' ')
        m += fl + 2;
      opt_error(L, field, m[0] ? m : "not valid");
    }
    if (!single)
      lua_pop(L, 1);
  }
}

/* core.opts(t) — validates the planner fields of t (others are the
 * caller's); raises naming the bad field. */
static int l_opts(lua_State *L)
{
  lopts *lo;
  mxr_opts *o;
  const char *s;
  int seeded = 0;
  if (!lua_isnoneornil(L, 1))
    luaL_checktype(L, 1, LUA_TTABLE);
  lo = mxr_newud(L, sizeof *lo);
  lo->o = NULL;
  luaL_setmetatable(L, OPTS_MT);
  lo->o = o = mxr_opts_new();
  if (!o)
    return luaL_error(L, "mxroute: out of memory");
  if (lua_istable(L, 1)) {
    lua_getfield(L, 1, "self");
    if (!lua_isnil(L, -1))
      opts_strings(L, o, "self", 1);
    lua_pop(L, 1);
    lua_getfield(L, 1, "ignore_targets");
    if (!lua_isnil(L, -1))
      opts_strings(L, o, "ignore_targets", 0);
    lua_pop(L, 1);
    lua_getfield(L, 1, "family");
    if (!lua_isnil(L, -1)) {
      s = lua_type(L, -1) == LUA_TSTRING
              ? mxr_lua_check_nul(L, -1, NULL, "mxroute: option 'family':")
              : "";
      if (!strcmp(s, "any"))
        mxr_opts_set_family(o, MXR_FAMILY_ANY);
      else if (!strcmp(s, "ipv4"))
        mxr_opts_set_family(o, MXR_FAMILY_IPV4);
      else if (!strcmp(s, "ipv6"))
        mxr_opts_set_family(o, MXR_FAMILY_IPV6);
      else
        opt_error(L, "family", "expected \"any\", \"ipv4\" or \"ipv6\"");
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "prefer");
    if (!lua_isnil(L, -1)) {
      s = lua_type(L, -1) == LUA_TSTRING
              ? mxr_lua_check_nul(L, -1, NULL, "mxroute: option 'prefer':")
              : "";
      if (!strcmp(s, "ipv4"))
        mxr_opts_set_prefer(o, MXR_PREFER_IPV4);
      else if (!strcmp(s, "ipv6"))
        mxr_opts_set_prefer(o, MXR_PREFER_IPV6);
      else if (!strcmp(s, "none"))
        mxr_opts_set_prefer(o, MXR_PREFER_NONE);
      else
        opt_error(L, "prefer", "expected \"ipv4\", \"ipv6\", \"none\" or nil");
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "self_interfaces");
    if (!lua_isnil(L, -1)) {
      char err[MXR_MSG_BUF];
      mxr_status st;
      if (!lua_isboolean(L, -1))
        opt_error(L, "self_interfaces", "expected a boolean");
      err[0] = 0;
      st = lua_toboolean(L, -1) ? mxr_opts_add_interfaces(o, NULL, err,
                                                          sizeof err)
                                : MXR_OK;
      if (st == MXR_ENOMEM)
        return luaL_error(L, "mxroute: out of memory");
      if (st != MXR_OK)
        opt_error(L, "self_interfaces", err[0] ? err : "cannot list them");
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "allow_mx_to_ip");
    if (!lua_isnil(L, -1)) {
      if (!lua_isboolean(L, -1))
        opt_error(L, "allow_mx_to_ip", "expected a boolean");
      mxr_opts_set_allow_mx_to_ip(o, lua_toboolean(L, -1));
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "max_hosts");
    if (!lua_isnil(L, -1))
      mxr_opts_set_max_hosts(o, opt_count(L, "max_hosts"));
    lua_pop(L, 1);
    lua_getfield(L, 1, "max_addrs");
    if (!lua_isnil(L, -1))
      mxr_opts_set_max_addrs(o, opt_count(L, "max_addrs"));
    lua_pop(L, 1);
    lua_getfield(L, 1, "seed");
    if (!lua_isnil(L, -1)) {
      lua_Number n;
      if (lua_type(L, -1) != LUA_TNUMBER)
        opt_error(L, "seed", "expected an integer");
      n = lua_tonumber(L, -1);
      if (n != n || n < -9007199254740992.0 || n > 9007199254740992.0 ||
          n != (lua_Number)(long long)n)
        opt_error(L, "seed", "expected an integer");
      mxr_rng_seed(&lo->rng, (uint64_t)(long long)n);
      seeded = 1;
    }
    lua_pop(L, 1);
  }
  if (!seeded && mxr_rng_seed_os(&lo->rng) != MXR_OK)
    return luaL_error(L, "mxroute: the OS gives no randomness");
  return 1;
}

void mxr_lua_open_opts(lua_State *L, int lib)
{
  mxr_lua_new_class(L, OPTS_MT, NULL, opts_gc);
  lua_pushcfunction(L, l_opts);
  lua_setfield(L, lib, "opts");
}
