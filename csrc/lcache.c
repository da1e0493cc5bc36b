/*
 * lcache.c — the Lua class of the RRset cache (DESIGN 8):
 *
 *   core.cache{ size =, min_ttl =, max_ttl =, stale = }  -> cache
 *   cache:stats()        -> { hits, misses, entries, evictions, stale,
 *                             inserts, merged }
 *   cache:flush([name])  -> how many entries were dropped
 *
 * A cache is shared by the resolutions given it (core.res's third
 * argument): each keeps it alive through its uservalue, so the C cache
 * is freed only by __gc, once nothing uses it. The option values are
 * checked by mxroute.options first; the checks here only keep bad
 * values from reaching C.
 */
#include "lmxroute.h"

#include <string.h>

/* An optional non-negative integer field of the table at 1. */
static uint32_t field_u32(lua_State *L, const char *k, uint32_t max)
{
  lua_Number n;
  uint32_t v = 0;
  lua_getfield(L, 1, k);
  if (!lua_isnil(L, -1)) {
    n = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
    if (!(n >= 0 && n <= (lua_Number)max) || n != (lua_Number)(uint32_t)n)
      luaL_error(L, "mxroute: option 'cache.%s': expected an integer "
                 "0..%d", k, (int)max);
    v = (uint32_t)n;
  }
  lua_pop(L, 1);
  return v;
}

static lcache *check_cache(lua_State *L, int idx)
{
  lcache *c = luaL_checkudata(L, idx, CACHE_MT);
  if (!c->c)
    luaL_error(L, "mxroute: cache is closed");
  return c;
}

mxr_cache *mxr_lua_opt_cache(lua_State *L, int idx)
{
  if (lua_isnoneornil(L, idx))
    return NULL;
  return check_cache(L, idx)->c;
}

static int cache_gc(lua_State *L)
{
  lcache *c = luaL_checkudata(L, 1, CACHE_MT);
  mxr_cache_free(c->c);
  c->c = NULL;
  return 0;
}

/* core.cache([t]) */
static int l_cache(lua_State *L)
{
  mxr_cache_config cfg;
  lcache *c;
  memset(&cfg, 0, sizeof cfg);
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    cfg.size = field_u32(L, "size", 100000000u);
    cfg.min_ttl = field_u32(L, "min_ttl", 0x7fffffffu);
    cfg.max_ttl = field_u32(L, "max_ttl", 0x7fffffffu);
    cfg.stale = field_u32(L, "stale", 0x7fffffffu);
  }
  c = mxr_newud(L, sizeof *c);
  c->c = NULL;
  luaL_setmetatable(L, CACHE_MT);
  c->c = mxr_cache_new(&cfg);
  if (!c->c)
    return luaL_error(L, "mxroute: out of memory");
  return 1;
}

static void set_count(lua_State *L, const char *k, uint64_t v)
{
  lua_pushinteger(L, (lua_Integer)v);
  lua_setfield(L, -2, k);
}

/* cache:stats() — merged is the exchange's (in-flight merge): 0 here */
static int cache_stats(lua_State *L)
{
  mxr_cache_stats st;
  mxr_cache_get_stats(check_cache(L, 1)->c, &st);
  lua_createtable(L, 0, 7);
  set_count(L, "hits", st.hits);
  set_count(L, "misses", st.misses);
  set_count(L, "entries", (uint64_t)st.entries);
  set_count(L, "evictions", st.evictions);
  set_count(L, "stale", st.stale);
  set_count(L, "inserts", st.inserts);
  set_count(L, "merged", 0);
  return 1;
}

/* cache:flush([name]) -> n; a name is matched like DNS names */
static int cache_flush(lua_State *L)
{
  lcache *c = check_cache(L, 1);
  char norm[MXR_NAME_BUF], err[MXR_MSG_BUF];
  size_t n, len;
  if (lua_isnoneornil(L, 2)) {
    n = mxr_cache_flush(c->c, NULL);
  } else {
    const char *s = luaL_checklstring(L, 2, &len);
    err[0] = 0;
    if (mxr_name_normalize(s, len, norm, err, sizeof err) != MXR_OK)
      return luaL_error(L, "mxroute: flush: %s", err[0] ? err : "bad name");
    n = mxr_cache_flush(c->c, norm);
  }
  lua_pushinteger(L, (lua_Integer)n);
  return 1;
}

static const luaL_Reg cache_m[] = {
    {"stats", cache_stats}, {"flush", cache_flush}, {NULL, NULL}};

void mxr_lua_open_cache(lua_State *L, int lib)
{
  mxr_lua_new_class(L, CACHE_MT, cache_m, NULL);
  luaL_getmetatable(L, CACHE_MT);
  lua_pushcfunction(L, cache_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_cache);
  lua_setfield(L, lib, "cache");
}
