/* compat.h — the few Lua 5.1/LuaJIT <-> 5.4 differences the binding uses.
 * Included only by lmxroute.c. Every userdata that needs references gets
 * one uservalue: a table (a function environment on 5.1). */
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

#endif
