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
#define CACHE_MT "mxroute.cache"
#define ARRAY_MT "mxroute.array" /* registry: metatable of plan lists */

typedef struct lopts {
  mxr_opts *o;
  mxr_rng rng;
} lopts;

typedef struct lengine {
  mxr_engine *e;   /* NULL once closed */
  size_t unreaped; /* queries reported done by step, not yet collected */
} lengine;

struct lxch;

typedef struct lres {
  mxr_res *res;
  lengine *eng;  /* set once submitted; the uservalue keeps it alive */
  mxr_job *job;  /* attached while non-NULL and eng->e non-NULL */
  struct lxch *xch; /* set once added to a core.xch (lxch.c); kept alive
                       by the uservalue */
  mxr_xjob *xjob;   /* attached while non-NULL */
  int reported;     /* counted in eng->unreaped until collected */
  int finish;       /* its route has a finish function (the uservalue's
                       "finish", lroute.c) */
  char input[];     /* the input as given (for the result of a closed
                       query), NUL-terminated */
} lres;

typedef struct lcache {
  mxr_cache *c;       /* NULL once collected */
  int shared;         /* registry ref of the second level (a
                         lua_shared_dict), LUA_NOREF when none */
  unsigned char *buf; /* the last value read from it */
  size_t cap;
} lcache;

/* Calls into C that may reach a cache's second level (lxch.c: every
 * call that steps resolutions) name the running Lua thread first, so
 * that the cache calls Lua on that thread, and restore the previous one
 * after: prev = mxr_lua_cache_enter(L); ...; mxr_lua_cache_leave(prev).
 * Nothing between them may raise. */
lua_State *mxr_lua_cache_enter(lua_State *L);
void mxr_lua_cache_leave(lua_State *prev);

/* The cache class (lcache.c). */
void mxr_lua_open_cache(lua_State *L, int lib);
/* The cache at idx, or NULL when it is none/nil; raises if not one. */
mxr_cache *mxr_lua_opt_cache(lua_State *L, int idx);

/* Shared helpers (lmxroute.c). mxr_lua_new_class registers metatable
 * name with methods m (NULL: none, and no __index) and gc as __gc and
 * __close. */
void mxr_lua_new_class(lua_State *L, const char *name, const luaL_Reg *m,
                       lua_CFunction gc);
/* luaL_checkudata(L, idx, name) for idx > 0, quicker: the class's
 * metatable is also in the registry under the light pointer name (the
 * one given to mxr_lua_new_class; another pointer to the same text
 * falls back to the lookup by name). */
void *mxr_lua_checkudata(lua_State *L, int idx, const char *name);
/* The string at idx (which is a string); raises "<what> '<shown>'
 * contains a NUL byte" if it holds one. */
const char *mxr_lua_check_nul(lua_State *L, int idx, size_t *len,
                              const char *what);
/* A code token at idx (not "OK"); where names the argument in the
 * error. */
mxr_status mxr_lua_check_code(lua_State *L, int idx, const char *where);

/* Results -> Lua (lresult.c). mxr_lua_open_result makes the key
 * strings they use (once, before any result). A plan table, or nil,
 * message, code, info (DESIGN 2); each returns how many values it
 * pushed. */
void mxr_lua_open_result(lua_State *L);
int mxr_lua_push_result(lua_State *L, const mxr_result *r);
/* A failure without a plan: nil, message (msg, else the code's text),
 * code, info. */
int mxr_lua_push_failure(lua_State *L, const char *input, const char *msg,
                         mxr_status st);
/* The result of a complete plan; raises if it is not complete. */
int mxr_lua_push_plan_result(lua_State *L, mxr_plan *p);
/* The result of a done resolution as core results (plan | nil, message,
 * code, info). */
int mxr_lua_push_res_result(lua_State *L, mxr_res *res);
/* One target as the table q:target(i) gives. */
void mxr_lua_push_target(lua_State *L, const mxr_target *t);

/* The options class (lopts.c): core.opts. */
void mxr_lua_open_opts(lua_State *L, int lib);
/* The options at idx; raises if not options, or closed. */
lopts *mxr_lua_check_opts(lua_State *L, int idx);

/* The plan reader (lplan.c): core.plan. */
void mxr_lua_open_plan(lua_State *L, int lib);

/* The query class (lquery.c): core.res. */
void mxr_lua_open_query(lua_State *L, int lib);
/* The query at idx; raises if not a query, or closed. */
lres *mxr_lua_check_res(lua_State *L, int idx);
/* Link the query at qidx with the transport (engine, exchange) at tidx,
 * kept alive by the query's uservalue field; the transport finds the
 * query by its light pointer. */
void mxr_lua_link_query(lua_State *L, int qidx, int tidx, const char *field);
/* The transport at tidx is going away: its queries forget their
 * handles into it. */
void mxr_lua_forget_queries(lua_State *L, int tidx);

/* The engine class (lengine.c): core.engine. */
void mxr_lua_open_engine(lua_State *L, int lib);
/* Event ev of a traced exchange (mxr_xch_event) as the table on_query
 * gets: { name, type = the type's name in csrc/rrtype.c ("MX", "A",
 * "AAAA"; "TYPEn" for another), server = "IP:PORT", tcp,
 * status = code token ("OK" for an accepted reply), rcode = "NOERROR"...
 * or nil without a reply, rtt = seconds }. sv: that server. */
void mxr_lua_push_event(lua_State *L, const mxr_xch_event *ev,
                        const mxr_server *sv);

/* Routed resolutions (lroute.c, DESIGN 7). The resolution core.res makes
 * for input s: plain, or routed by the route table at stack index 3. */
mxr_res *mxr_lua_new_res(lua_State *L, const char *s, size_t len, lopts *lo);
/* With a finish function in the query's uservalue (query at idx > 0):
 * pushes its rewritten result { plan | nil, message, code, info },
 * computed once when done, and returns 1; else pushes nothing, 0. */
int mxr_lua_final_result(lua_State *L, int idx, lres *r);
/* With a finish function (query at 1): pushes the list of targets that
 * q:ready()/q:target() report (empty until done), returns 1; else 0. */
int mxr_lua_final_targets(lua_State *L, lres *r);
void mxr_lua_open_route(lua_State *L, int lib);

/* Class openers (one per class file). */
void mxr_lua_open_signal(lua_State *L, int lib); /* lsignal.c */
void mxr_lua_open_reader(lua_State *L, int lib); /* lreader.c */

/* core.xch (lxch.c). A query on an exchange detaches itself before it
 * is freed, and is cancelled through the exchange (1; 0: not on one). */
void mxr_lua_open_xch(lua_State *L, int lib);
void mxr_lua_xch_detach(lres *r);
int mxr_lua_xch_cancel(lres *r);

#endif
