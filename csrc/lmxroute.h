/*
 * lmxroute.h — what the files of the Lua binding (csrc/l*.c, one per
 * class) share. Only binding files include it (it includes lua.h).
 *
 * A class file defines its methods and an opener,
 * void mxr_lua_open_<class>(lua_State *L, int lib), that creates its
 * metatable and sets its constructors in the module table at index lib;
 * luaopen_mxroute_core (lmxroute.c) calls every opener.
 */
#ifndef LMXROUTE_H
#define LMXROUTE_H

#include "compat.h"
#include "mxroute.h"

#define OPTS_MT "mxroute.opts"
#define RES_MT "mxroute.query"
#define ENG_MT "mxroute.engine"
#define BOX_MT "mxroute.planbox"
#define ARRAY_MT "mxroute.array" /* registry: metatable of plan lists */

typedef struct lopts {
  mxr_opts *o;
  mxr_rng rng;
} lopts;

typedef struct lengine {
  mxr_engine *e; /* NULL once closed */
} lengine;

typedef struct lres {
  mxr_res *res;
  lengine *eng;  /* set once submitted; the uservalue keeps it alive */
  mxr_job *job;  /* attached while non-NULL and eng->e non-NULL */
} lres;

/* Shared helpers (lmxroute.c). */
lres *mxr_lua_check_res(lua_State *L, int idx);
void mxr_lua_new_class(lua_State *L, const char *name, const luaL_Reg *m,
                       lua_CFunction gc);

/* Class openers (one per class file). */
void mxr_lua_open_signal(lua_State *L, int lib); /* lsignal.c */
void mxr_lua_open_reader(lua_State *L, int lib); /* lreader.c */

#endif
