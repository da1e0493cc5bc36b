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

typedef struct lopts {
  mxr_opts *o;
  mxr_rng rng;
} lopts;

typedef struct lengine {
  mxr_engine *e; /* NULL once closed */
} lengine;

struct lxch;

typedef struct lres {
  mxr_res *res;
  lengine *eng;  /* set once submitted; the uservalue keeps it alive */
  mxr_job *job;  /* attached while non-NULL and eng->e non-NULL */
  struct lxch *xch; /* set once added to a core.xch (lxch.c); kept alive
                       by the uservalue */
  mxr_xjob *xjob;   /* attached while non-NULL */
} lres;

/* Shared helpers (lmxroute.c). */
lres *mxr_lua_check_res(lua_State *L, int idx);
void mxr_lua_new_class(lua_State *L, const char *name, const luaL_Reg *m,
                       lua_CFunction gc);

/* core.xch (lxch.c). A query on an exchange detaches itself before it
 * is freed, and is cancelled through the exchange (1; 0: not on one). */
void mxr_lua_open_xch(lua_State *L, int lib);
void mxr_lua_xch_detach(lres *r);
int mxr_lua_xch_cancel(lres *r);

#endif
