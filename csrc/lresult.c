/*
 * lresult.c — results -> Lua: the plan table, or nil, message, code,
 * info (DESIGN 2), for core.plan (lplan.c) and the query class
 * (lquery.c). The one place that turns a C result into Lua values.
 */
#include "lmxroute.h"

static const char *family_name(const mxr_addr *a)
{
  return a->family == 4 ? "ipv4" : "ipv6";
}

static void push_addr(lua_State *L, const mxr_addr *a)
{
  char buf[MXR_ADDR_BUF];
  mxr_addr_format(a, buf);
  lua_pushstring(L, buf);
}

/* A list of a plan (hosts, targets, skipped, addrs), marked with the
 * registry's ARRAY_MT so that JSON encoders give [] when it is empty. */
static void new_array(lua_State *L, size_t n)
{
  lua_createtable(L, (int)n, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  if (lua_istable(L, -1))
    lua_setmetatable(L, -2);
  else
    lua_pop(L, 1);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
  lua_pushstring(L, v ? v : "");
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

static void push_target(lua_State *L, const mxr_target *t)
{
  lua_createtable(L, 0, 6);
  set_str(L, "host", t->host);
  set_int(L, "pref", t->pref);
  push_addr(L, &t->addr);
  lua_setfield(L, -2, "addr");
  set_str(L, "family", family_name(&t->addr));
  set_int(L, "port", t->port);
  if (t->fallback) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "fallback");
  }
}

static void push_skipped(lua_State *L, const mxr_result *r)
{
  size_t i;
  new_array(L, r->nskipped);
  for (i = 0; i < r->nskipped; i++) {
    lua_createtable(L, 0, 3);
    set_str(L, "name", r->skipped[i].name);
    set_int(L, "pref", r->skipped[i].pref);
    set_str(L, "code", mxr_status_name(r->skipped[i].code));
    lua_rawseti(L, -2, (int)i + 1);
  }
}

/* A failure without a plan: nil, message, code, info. */
static int push_failure(lua_State *L, const char *input, const char *msg,
                        mxr_status st)
{
  lua_pushnil(L);
  lua_pushstring(L, msg && msg[0] ? msg : mxr_status_text(st));
  lua_pushstring(L, mxr_status_name(st));
  lua_createtable(L, 0, 4);
  set_str(L, "input", input);
  set_str(L, "domain", "");
  set_str(L, "code", mxr_status_name(st));
  new_array(L, 0);
  lua_setfield(L, -2, "skipped");
  return 4;
}

/* plan table, or nil, message, code, info — DESIGN 2. */
static int push_result(lua_State *L, const mxr_result *r)
{
  size_t i, j;
  if (r->status != MXR_OK) {
    lua_pushnil(L);
    lua_pushstring(L, r->message ? r->message
                                 : mxr_status_text(r->status));
    lua_pushstring(L, mxr_status_name(r->status));
    lua_createtable(L, 0, 4);
    set_str(L, "input", r->input);
    set_str(L, "domain", r->domain);
    set_str(L, "code", mxr_status_name(r->status));
    push_skipped(L, r);
    lua_setfield(L, -2, "skipped");
    return 4;
  }
  lua_createtable(L, 0, 8);
  set_str(L, "input", r->input);
  set_str(L, "domain", r->domain);
  lua_pushboolean(L, r->implicit);
  lua_setfield(L, -2, "implicit");
  new_array(L, r->nhosts);
  for (i = 0; i < r->nhosts; i++) {
    const mxr_host *h = &r->hosts[i];
    lua_createtable(L, 0, 3);
    set_str(L, "name", h->name);
    set_int(L, "pref", h->pref);
    new_array(L, h->naddrs);
    for (j = 0; j < h->naddrs; j++) {
      push_addr(L, &h->addrs[j]);
      lua_rawseti(L, -2, (int)j + 1);
    }
    lua_setfield(L, -2, "addrs");
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "hosts");
  new_array(L, r->ntargets);
  for (i = 0; i < r->ntargets; i++) {
    push_target(L, &r->targets[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "targets");
  push_skipped(L, r);
  lua_setfield(L, -2, "skipped");
  if (r->has_self_pref)
    set_int(L, "self_pref", r->self_pref);
  return 1;
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
  if (mxr_res_result(res, &rs) != MXR_OK)
    return luaL_error(L, "mxroute: plan is not complete");
  known = mxr_res_ttl(res, &ttl);
  n = push_result(L, &rs);
  if (n == 1) {
    if (known)
      set_int(L, "ttl", (lua_Integer)ttl);
    if (mxr_res_stale(res)) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "stale");
    }
  } else if (known && ttl > 0 && mxr_status_class(rs.status) != MXR_CLASS_TEMPORARY) {
    set_int(L, "ttl", (lua_Integer)ttl);
    if (mxr_res_stale(res)) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "stale");
    }
  }
  return n;
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
  push_target(L, t);
}
