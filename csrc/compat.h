/* compat.h — the few Lua 5.1/LuaJIT <-> 5.4 differences the binding uses.
 * Included only by the binding files (csrc/l*.c, through lmxroute.h).
 * Every userdata that needs references gets one uservalue: a table (a
 * function environment on 5.1).
 *
 * The 5.2 auxiliary functions the binding calls (luaL_setfuncs,
 * luaL_newlib, luaL_setmetatable, luaL_testudata) are in LuaJIT 2.1's
 * lauxlib.h, which also defines luaL_newlibtable; plain Lua 5.1 lacks
 * them, so they are defined here, after Lua 5.2's lauxlib.c. */
#ifndef MXR_COMPAT_H
#define MXR_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM >= 504
#define mxr_newud(L, sz) lua_newuserdatauv((L), (sz), 1)
#define mxr_setuv(L, idx) ((void)lua_setiuservalue((L), (idx), 1))
#define mxr_getuv(L, idx) ((void)lua_getiuservalue((L), (idx), 1))
#elif LUA_VERSION_NUM >= 502
#define mxr_newud(L, sz) lua_newuserdata((L), (sz))
#define mxr_setuv(L, idx) lua_setuservalue((L), (idx))
#define mxr_getuv(L, idx) lua_getuservalue((L), (idx))
#else
#define mxr_newud(L, sz) lua_newuserdata((L), (sz))
#define mxr_setuv(L, idx) ((void)lua_setfenv((L), (idx)))
#define mxr_getuv(L, idx) lua_getfenv((L), (idx))
#endif

#if LUA_VERSION_NUM < 502
#define mxr_rawlen(L, idx) lua_objlen((L), (idx))
#else
#define mxr_rawlen(L, idx) lua_rawlen((L), (idx))
#endif

#if LUA_VERSION_NUM < 502 && !defined(luaL_newlibtable)
/* Plain Lua 5.1. Static so that two binding files can both use them. */
#define luaL_newlibtable(L, l) \
  lua_createtable((L), 0, (int)(sizeof(l) / sizeof((l)[0]) - 1))
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))

/* Every function of l into the table below the nup upvalues, each a
 * closure over copies of them; the upvalues are popped. */
static inline void luaL_setfuncs(lua_State *L, const luaL_Reg *l, int nup)
{
  luaL_checkstack(L, nup, "too many upvalues");
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++)
      lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}

static inline void luaL_setmetatable(lua_State *L, const char *tname)
{
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}

/* The userdata at ud when its metatable is tname's, else NULL. */
static inline void *luaL_testudata(lua_State *L, int ud, const char *tname)
{
  void *p = lua_touserdata(L, ud);
  if (p != NULL && lua_getmetatable(L, ud)) {
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2))
      p = NULL;
    lua_pop(L, 2);
    return p;
  }
  return NULL;
}
#endif

#endif
