/*
 * lcache.c — the Lua class of the RRset cache (DESIGN 8):
 *
 *   core.cache{ size =, min_ttl =, max_ttl =, stale = }  -> cache
 *   cache:stats()        -> { hits, misses, entries, evictions, stale,
 *                             inserts, merged [, shared_hits] }
 *   cache:flush([name])  -> how many entries were dropped
 *   cache:shared([dict]) -> a second level behind the cache: dict is an
 *                           ngx.shared.DICT (anything with dict:get(key)
 *                           and dict:set(key, value, exptime)); nil
 *                           removes it (DESIGN 8)
 *
 * A cache is shared by the resolutions given it (core.res's third
 * argument): each keeps it alive through its uservalue, so the C cache
 * is freed only by __gc, once nothing uses it. The option values are
 * checked by mxroute.options first; the checks here only keep bad
 * values from reaching C.
 *
 * The second level is asked from inside the resolution (C called from
 * Lua): the hooks call dict:get / dict:set on the Lua thread that made
 * the call into C (mxr_lua_cache_enter), in protected mode, so that an
 * error there never unwinds through C frames: it is a miss, or a value
 * not stored. Neither method yields (lua_shared_dict operations are
 * plain memory under a lock). Outside such a call (no running thread
 * named) the second level is skipped.
 */
#include "lmxroute.h"

#include <stdlib.h>
#include <string.h>

/* The Lua thread running the current call into C, per OS thread (each
 * Lua state is used by one OS thread at a time). */
#if defined(__GNUC__)
static __thread lua_State *running;
#else
static lua_State *running;
#endif

lua_State *mxr_lua_cache_enter(lua_State *L)
{
  lua_State *prev = running;
  running = L;
  return prev;
}

void mxr_lua_cache_leave(lua_State *prev) { running = prev; }

/* What a protected call to the dict gets and gives back. */
typedef struct l2call {
  lcache *c;
  const char *key;
  const unsigned char *val; /* set: the value; get: what was read */
  size_t len;
  uint32_t ttl;
} l2call;

/* dict:get(key): a string value is copied to c->buf (the Lua string may
 * be collected once the call is over). */
static int l2_get_p(lua_State *L)
{
  l2call *a = (l2call *)lua_touserdata(L, 1);
  lcache *c = a->c;
  const char *s;
  size_t n;
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->shared);
  lua_getfield(L, -1, "get");
  lua_pushvalue(L, -2);
  lua_pushstring(L, a->key);
  lua_call(L, 2, 1);
  if (lua_type(L, -1) != LUA_TSTRING)
    return 0;
  s = lua_tolstring(L, -1, &n);
  if (n > c->cap) {
    unsigned char *b = (unsigned char *)malloc(n);
    if (!b)
      return 0; /* a miss */
    free(c->buf);
    c->buf = b;
    c->cap = n;
  }
  if (n)
    memcpy(c->buf, s, n);
  a->val = c->buf;
  a->len = n;
  return 0;
}

/* dict:set(key, value, ttl): its result (a full dict, forcible
 * eviction) does not matter: the store may forget. */
static int l2_set_p(lua_State *L)
{
  l2call *a = (l2call *)lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->c->shared);
  lua_getfield(L, -1, "set");
  lua_pushvalue(L, -2);
  lua_pushstring(L, a->key);
  lua_pushlstring(L, (const char *)a->val, a->len);
  lua_pushinteger(L, (lua_Integer)a->ttl);
  lua_call(L, 4, 0);
  return 0;
}

/* Run f(a) protected on the running thread; 1 if it ran without error. */
static int l2_protected(lua_CFunction f, l2call *a)
{
  lua_State *L = running;
  int top, rc;
  if (!L || a->c->shared == LUA_NOREF || !lua_checkstack(L, 8))
    return 0;
  top = lua_gettop(L);
#if LUA_VERSION_NUM >= 502
  lua_pushcfunction(L, f); /* a light C function: no allocation */
  lua_pushlightuserdata(L, a);
  rc = lua_pcall(L, 1, 0, 0);
#else
  rc = lua_cpcall(L, f, a);
#endif
  lua_settop(L, top);
  return rc == 0;
}

static const unsigned char *l2_get(void *ud, const char *key, size_t *len)
{
  l2call a;
  memset(&a, 0, sizeof a);
  a.c = (lcache *)ud;
  a.key = key;
  if (!l2_protected(l2_get_p, &a) || !a.val)
    return NULL;
  *len = a.len;
  return a.val;
}

static void l2_set(void *ud, const char *key, const unsigned char *val,
                   size_t len, uint32_t ttl)
{
  l2call a;
  memset(&a, 0, sizeof a);
  a.c = (lcache *)ud;
  a.key = key;
  a.val = val;
  a.len = len;
  a.ttl = ttl;
  (void)l2_protected(l2_set_p, &a);
}

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
  luaL_unref(L, LUA_REGISTRYINDEX, c->shared);
  c->shared = LUA_NOREF;
  free(c->buf);
  c->buf = NULL;
  c->cap = 0;
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
  c->shared = LUA_NOREF;
  c->buf = NULL;
  c->cap = 0;
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
  lcache *c = check_cache(L, 1);
  mxr_cache_stats st;
  mxr_cache_get_stats(c->c, &st);
  lua_createtable(L, 0, 8);
  set_count(L, "hits", st.hits);
  set_count(L, "misses", st.misses);
  set_count(L, "entries", (uint64_t)st.entries);
  set_count(L, "evictions", st.evictions);
  set_count(L, "stale", st.stale);
  set_count(L, "inserts", st.inserts);
  set_count(L, "merged", 0);
  if (c->shared != LUA_NOREF) /* only with a second level */
    set_count(L, "shared_hits", st.l2_hits);
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

/* cache:shared([dict]): dict:get and dict:set are looked up at each use
 * (a table or userdata with them; anything else is refused here). */
static int cache_shared(lua_State *L)
{
  lcache *c = check_cache(L, 1);
  mxr_cache_l2 l2;
  if (!lua_isnoneornil(L, 2) && lua_type(L, 2) != LUA_TTABLE &&
      lua_type(L, 2) != LUA_TUSERDATA)
    return luaL_error(L, "mxroute: cache:shared: expected a shared dict");
  mxr_cache_set_l2(c->c, NULL);
  luaL_unref(L, LUA_REGISTRYINDEX, c->shared);
  c->shared = LUA_NOREF;
  if (lua_isnoneornil(L, 2))
    return 0;
  lua_pushvalue(L, 2);
  c->shared = luaL_ref(L, LUA_REGISTRYINDEX);
  memset(&l2, 0, sizeof l2);
  l2.get = l2_get;
  l2.set = l2_set;
  l2.ud = c;
  mxr_cache_set_l2(c->c, &l2);
  return 0;
}

static const luaL_Reg cache_m[] = {{"stats", cache_stats},
                                   {"flush", cache_flush},
                                   {"shared", cache_shared},
                                   {NULL, NULL}};

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
