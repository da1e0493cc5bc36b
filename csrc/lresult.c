/*
 * lresult.c — results -> Lua: the plan table, or nil, message, code,
 * info (DESIGN 2), for core.plan (lplan.c) and the query class
 * (lquery.c). The one place that turns a C result into Lua values.
 *
 * The field names are Lua strings made once (mxr_lua_open_result), kept
 * in a list in the registry: a plan is built with that list and the
 * array metatable on the stack (struct ctx), so that no key is looked up
 * by its C text. Each address is formatted once per plan: a target's
 * address string serves its host's list too, and a host's name string
 * its targets.
 */
#include "lmxroute.h"

#include <string.h>

#define KEYS "mxroute.keys" /* registry: the list of key strings */

enum {
  K_INPUT = 1, K_DOMAIN, K_IMPLICIT, K_HOSTS, K_TARGETS, K_SKIPPED,
  K_SELF_PREF, K_TTL, K_STALE, K_NAME, K_PREF, K_ADDRS, K_HOST, K_ADDR,
  K_FAMILY, K_PORT, K_FALLBACK, K_CODE, K_IPV4, K_IPV6, K_COUNT
};

static const char *const key_names[K_COUNT] = {
    NULL,    "input",     "domain", "implicit", "hosts", "targets",
    "skipped", "self_pref", "ttl",  "stale",    "name",  "pref",
    "addrs", "host",      "addr",   "family",   "port",  "fallback",
    "code",  "ipv4",      "ipv6"};

/* At most this many targets (hosts) of a plan keep their address (name)
 * string on the stack for reuse; in a bigger plan the others are made
 * again where they recur. */
#define REUSE_MAX 32

void mxr_lua_open_result(lua_State *L)
{
  int i;
  lua_createtable(L, K_COUNT - 1, 0);
  for (i = 1; i < K_COUNT; i++) {
    lua_pushstring(L, key_names[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, KEYS);
}

/* What a result is built with: the stack indices of the key list, the
 * array metatable (0: none) and the reused strings (0: none). */
typedef struct ctx {
  lua_State *L;
  int base;          /* the key list; ctx_close removes from here up */
  int mt;
  int addrs, naddrs; /* address strings of the first naddrs targets */
  int names, nnames; /* name strings of the first nnames hosts */
} ctx;

static void ctx_open(lua_State *L, ctx *c)
{
  c->L = L;
  lua_getfield(L, LUA_REGISTRYINDEX, KEYS);
  if (!lua_istable(L, -1)) { /* made by luaopen; again if it went away */
    lua_pop(L, 1);
    mxr_lua_open_result(L);
    lua_getfield(L, LUA_REGISTRYINDEX, KEYS);
  }
  c->base = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  c->mt = lua_istable(L, -1) ? lua_gettop(L) : 0;
  c->addrs = c->naddrs = c->names = c->nnames = 0;
}

/* Move the n values on top down to c->base, over the context. */
static int ctx_close(ctx *c, int n)
{
  lua_State *L = c->L;
  int i, first = lua_gettop(L) - n + 1;
  for (i = 0; i < n; i++) {
    lua_pushvalue(L, first + i);
    lua_replace(L, c->base + i);
  }
  lua_settop(L, c->base + n - 1);
  return n;
}

/* t[key] = value: the key goes on top of t, then the value, then set. */
static void key(const ctx *c, int k)
{
  lua_rawgeti(c->L, c->base, k);
}

static void set(const ctx *c)
{
  lua_rawset(c->L, -3);
}

static void set_str(const ctx *c, int k, const char *v)
{
  key(c, k);
  lua_pushstring(c->L, v ? v : "");
  set(c);
}

static void set_int(const ctx *c, int k, lua_Integer v)
{
  key(c, k);
  lua_pushinteger(c->L, v);
  set(c);
}

static void set_true(const ctx *c, int k)
{
  key(c, k);
  lua_pushboolean(c->L, 1);
  set(c);
}

/* A list of a plan (hosts, targets, skipped, addrs), marked with the
 * array metatable so that JSON encoders give [] when it is empty. */
static void new_array(const ctx *c, size_t n)
{
  lua_createtable(c->L, (int)n, 0);
  if (c->mt) {
    lua_pushvalue(c->L, c->mt);
    lua_setmetatable(c->L, -2);
  }
}

static void push_addr(lua_State *L, const mxr_addr *a)
{
  char buf[MXR_ADDR_BUF];
  mxr_addr_format(a, buf);
  lua_pushstring(L, buf);
}

static int same_addr(const mxr_addr *a, const mxr_addr *b)
{
  return a->family == b->family &&
         memcmp(a->bytes, b->bytes, a->family == 4 ? 4 : 16) == 0;
}

/* Push the text of address a of result r: a reused string when a target
 * among the first c->naddrs has it (looked for from *hint on), else
 * formatted now. */
static void push_addr_of(const ctx *c, const mxr_result *r,
                         const mxr_addr *a, int *hint)
{
  int i, n = c->naddrs;
  for (i = 0; i < n; i++) {
    int j = (*hint + i) % n;
    if (same_addr(&r->targets[j].addr, a)) {
      *hint = j + 1;
      lua_pushvalue(c->L, c->addrs + j);
      return;
    }
  }
  push_addr(c->L, a);
}

static void push_target(const ctx *c, const mxr_target *t, int addr,
                             int host)
{
  lua_State *L = c->L;
  lua_createtable(L, 0, 6);
  key(c, K_HOST);
  if (host)
    lua_pushvalue(L, host);
  else
    lua_pushstring(L, t->host ? t->host : "");
  set(c);
  set_int(c, K_PREF, t->pref);
  key(c, K_ADDR);
  if (addr)
    lua_pushvalue(L, addr);
  else
    push_addr(L, &t->addr);
  set(c);
  key(c, K_FAMILY);
  key(c, t->addr.family == 4 ? K_IPV4 : K_IPV6);
  set(c);
  set_int(c, K_PORT, t->port);
  if (t->fallback)
    set_true(c, K_FALLBACK);
}

static void push_skipped(const ctx *c, const mxr_result *r)
{
  size_t i;
  new_array(c, r->nskipped);
  for (i = 0; i < r->nskipped; i++) {
    lua_createtable(c->L, 0, 3);
    set_str(c, K_NAME, r->skipped[i].name);
    set_int(c, K_PREF, r->skipped[i].pref);
    set_str(c, K_CODE, mxr_status_name(r->skipped[i].code));
    lua_rawseti(c->L, -2, (int)i + 1);
  }
}

/* A failure without a plan: nil, message, code, info. */
static int push_failure(lua_State *L, const char *input, const char *msg,
                        mxr_status st)
{
  ctx c;
  ctx_open(L, &c);
  lua_pushnil(L);
  lua_pushstring(L, msg && msg[0] ? msg : mxr_status_text(st));
  lua_pushstring(L, mxr_status_name(st));
  lua_createtable(L, 0, 4);
  set_str(&c, K_INPUT, input);
  set_str(&c, K_DOMAIN, "");
  set_str(&c, K_CODE, mxr_status_name(st));
  key(&c, K_SKIPPED);
  new_array(&c, 0);
  set(&c);
  return ctx_close(&c, 4);
}

/* The name strings of the first hosts and the address strings of the
 * first targets, on the stack for reuse. */
static void push_reused(ctx *c, const mxr_result *r)
{
  lua_State *L = c->L;
  size_t i, na = r->ntargets, nh = r->nhosts;
  if (na > REUSE_MAX)
    na = REUSE_MAX;
  if (nh > REUSE_MAX)
    nh = REUSE_MAX;
  if (!lua_checkstack(L, (int)(na + nh) + 8))
    return; /* made where they are used instead */
  c->names = lua_gettop(L) + 1;
  c->nnames = (int)nh;
  for (i = 0; i < nh; i++)
    lua_pushstring(L, r->hosts[i].name ? r->hosts[i].name : "");
  c->addrs = lua_gettop(L) + 1;
  c->naddrs = (int)na;
  for (i = 0; i < na; i++)
    push_addr(L, &r->targets[i].addr);
}

/* The stack index of the name string of target t's host, 0 if none is
 * kept; *hint: where to look first (targets follow their hosts). */
static int host_of(const ctx *c, const mxr_result *r, const mxr_target *t,
                   int *hint)
{
  int i, n = c->nnames;
  for (i = 0; i < n; i++) {
    int j = (*hint + i) % n;
    if (r->hosts[j].name == t->host) {
      *hint = j;
      return c->names + j;
    }
  }
  return 0;
}

/* plan table, or nil, message, code, info — DESIGN 2. */
static int push_result_in(ctx *c, const mxr_result *r)
{
  lua_State *L = c->L;
  size_t i, j;
  int hint = 0;
  if (r->status != MXR_OK) {
    lua_pushnil(L);
    lua_pushstring(L, r->message ? r->message
                                 : mxr_status_text(r->status));
    lua_pushstring(L, mxr_status_name(r->status));
    lua_createtable(L, 0, 4);
    set_str(c, K_INPUT, r->input);
    set_str(c, K_DOMAIN, r->domain);
    set_str(c, K_CODE, mxr_status_name(r->status));
    key(c, K_SKIPPED);
    push_skipped(c, r);
    set(c);
    return 4;
  }
  push_reused(c, r);
  lua_createtable(L, 0, 8);
  set_str(c, K_INPUT, r->input);
  set_str(c, K_DOMAIN, r->domain);
  key(c, K_IMPLICIT);
  lua_pushboolean(L, r->implicit);
  set(c);
  key(c, K_HOSTS);
  new_array(c, r->nhosts);
  for (i = 0; i < r->nhosts; i++) {
    const mxr_host *h = &r->hosts[i];
    lua_createtable(L, 0, 3);
    key(c, K_NAME);
    if ((int)i < c->nnames)
      lua_pushvalue(L, c->names + (int)i);
    else
      lua_pushstring(L, h->name ? h->name : "");
    set(c);
    set_int(c, K_PREF, h->pref);
    key(c, K_ADDRS);
    new_array(c, h->naddrs);
    for (j = 0; j < h->naddrs; j++) {
      push_addr_of(c, r, &h->addrs[j], &hint);
      lua_rawseti(L, -2, (int)j + 1);
    }
    set(c);
    lua_rawseti(L, -2, (int)i + 1);
  }
  set(c);
  key(c, K_TARGETS);
  new_array(c, r->ntargets);
  hint = 0;
  for (i = 0; i < r->ntargets; i++) {
    const mxr_target *t = &r->targets[i];
    push_target(c, t, (int)i < c->naddrs ? c->addrs + (int)i : 0,
                     host_of(c, r, t, &hint));
    lua_rawseti(L, -2, (int)i + 1);
  }
  set(c);
  key(c, K_SKIPPED);
  push_skipped(c, r);
  set(c);
  if (r->has_self_pref)
    set_int(c, K_SELF_PREF, r->self_pref);
  return 1;
}

static int push_result(lua_State *L, const mxr_result *r)
{
  ctx c;
  ctx_open(L, &c);
  return ctx_close(&c, push_result_in(&c, r));
}

static int push_plan_result(lua_State *L, mxr_plan *p)
{
  mxr_result r;
  mxr_status st = mxr_plan_result(p, &r);
  if (st != MXR_OK)
    return luaL_error(L, "mxroute: plan is not complete");
  return push_result(L, &r);
}

/* The result of a resolution: the plan with ttl (and stale) of DESIGN
 * 8, or the failure with the TTL in its info when it came from answers
 * that say how long they hold (a permanent failure: NXDOMAIN, NULLMX,
 * NOHOSTS ...). */
int mxr_lua_push_res_result(lua_State *L, mxr_res *res)
{
  mxr_result rs;
  uint32_t ttl = 0;
  int known, n;
  ctx c;
  if (mxr_res_result(res, &rs) != MXR_OK)
    return luaL_error(L, "mxroute: plan is not complete");
  known = mxr_res_ttl(res, &ttl);
  ctx_open(L, &c);
  n = push_result_in(&c, &rs);
  if (n == 1 || (known && ttl > 0 &&
                 mxr_status_class(rs.status) != MXR_CLASS_TEMPORARY)) {
    /* the plan, or the failure's info, is on top */
    if (known)
      set_int(&c, K_TTL, (lua_Integer)ttl);
    if (mxr_res_stale(res))
      set_true(&c, K_STALE);
  }
  return ctx_close(&c, n);
}

/* The names the other binding files call these by (lmxroute.h). */
int mxr_lua_push_failure(lua_State *L, const char *input, const char *msg,
                         mxr_status st)
{
  return push_failure(L, input, msg, st);
}

int mxr_lua_push_result(lua_State *L, const mxr_result *r)
{
  return push_result(L, r);
}

int mxr_lua_push_plan_result(lua_State *L, mxr_plan *p)
{
  return push_plan_result(L, p);
}

void mxr_lua_push_target(lua_State *L, const mxr_target *t)
{
  ctx c;
  ctx_open(L, &c);
  push_target(&c, t, 0, 0);
  ctx_close(&c, 1);
}
