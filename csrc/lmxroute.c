/*
 * lmxroute.c — the Lua binding (module "mxroute.core"); the only file that
 * includes lua.h. Thin over the C core:
 *
 *   core.opts(t)            planner options + the resolver's PRNG (userdata)
 *   core.plan(records, o)   the pure planner
 *   core.res(input, o)      a sans-I/O resolution (also the query object)
 *   core.engine(cfg)        the c-ares transport (a pollable)
 *   core.packet(name, type, id), core.class(code), core.codes, version
 *   core.nameserver(s)      the one nameserver parser, for every Lua layer
 *   core.read_regular_file(path)  a small config file, never blocking
 *   core.array_mt([mt])     the metatable of a plan's lists (JSON arrays)
 *   core.sigwatch()         SIGINT/SIGTERM on a signalfd (lsignal.c)
 *   core.lines(path | 0)    a line reader that never waits (lreader.c)
 *
 * Userdata are created closed first, then the resource is attached, so
 * __gc is always safe. No malloc'd memory is held across a call that can
 * raise: temporary arrays are userdata too.
 */
#include "lmxroute.h"
#include "mxr_internal.h" /* mxr_escape */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The string at idx (which is a string); raises "<what> '<shown>'
 * contains a NUL byte" if it holds one: C would see it cut short, so a
 * NUL in any string argument is an error naming the field. */
static const char *check_nul(lua_State *L, int idx, size_t *len,
                             const char *what)
{
  size_t n;
  const char *s = lua_tolstring(L, idx, &n);
  if (len)
    *len = n;
  if (memchr(s, '\0', n) != NULL) {
    char shown[128];
    mxr_escape(shown, sizeof shown, s, n, 60);
    luaL_error(L, "%s '%s' contains a NUL byte", what, shown);
  }
  return s;
}

/* ------------------------------------------------------------------ */
/* results -> Lua                                                      */

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

/* A code token at idx; where names the argument in the error. */
static mxr_status check_code(lua_State *L, int idx, const char *where)
{
  mxr_status st;
  const char *s;
  luaL_checkstring(L, idx);
  s = check_nul(L, idx, NULL, where);
  if (mxr_status_from_name(s, &st) != MXR_OK || st == MXR_OK)
    luaL_error(L, "%s: unknown code '%s'", where, s);
  return st;
}

/* ------------------------------------------------------------------ */
/* opts                                                                */

static lopts *check_opts(lua_State *L, int idx)
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
    s = check_nul(L, -1, &len, what);
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
              ? check_nul(L, -1, NULL, "mxroute: option 'family':")
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
              ? check_nul(L, -1, NULL, "mxroute: option 'prefer':")
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

/* ------------------------------------------------------------------ */
/* the pure planner                                                    */

static int box_gc(lua_State *L)
{
  mxr_plan **b = luaL_checkudata(L, 1, BOX_MT);
  mxr_plan_free(*b);
  *b = NULL;
  return 0;
}

/* Feed one host's addresses from value at idx (table of strings, a code
 * string, or nil = NODATA). Returns 0 or pushes nil,msg,code and returns
 * 3 for data that is not an address. */
static int feed_host(lua_State *L, mxr_plan *p, size_t i, int idx)
{
  int fam;
  if (lua_isnil(L, idx)) {
    for (fam = 4; fam <= 6; fam += 2)
      if (mxr_plan_host_wants(p, i, fam))
        mxr_plan_set_addrs(p, i, fam, MXR_OK, NULL, 0);
    return 0;
  }
  if (lua_type(L, idx) == LUA_TSTRING) {
    mxr_status st;
    lua_pushfstring(L, "mxroute.plan: records.addrs['%s']",
                    mxr_plan_host_name(p, i));
    st = check_code(L, idx, lua_tostring(L, -1));
    lua_pop(L, 1);
    for (fam = 4; fam <= 6; fam += 2)
      if (mxr_plan_host_wants(p, i, fam))
        mxr_plan_set_addrs(p, i, fam, st, NULL, 0);
    return 0;
  }
  if (lua_istable(L, idx)) {
    size_t n = mxr_rawlen(L, idx), k, n4 = 0, n6 = 0;
    mxr_addr *a4, *a6;
    a4 = mxr_newud(L, (n ? n : 1) * sizeof *a4);
    a6 = mxr_newud(L, (n ? n : 1) * sizeof *a6);
    for (k = 1; k <= n; k++) {
      size_t len;
      const char *s;
      mxr_addr a;
      lua_rawgeti(L, idx, (int)k);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "mxroute.plan: addrs['%s'][%d] is not a string",
                   mxr_plan_host_name(p, i), (int)k);
      lua_pushfstring(L, "mxroute.plan: addrs['%s'][%d]",
                      mxr_plan_host_name(p, i), (int)k);
      s = check_nul(L, -2, &len, lua_tostring(L, -1));
      lua_pop(L, 1);
      if (mxr_addr_parse(s, len, &a) != MXR_OK) {
        mxr_result res;
        lua_pushfstring(L, "%s: '%s' is not an IP address",
                        mxr_plan_host_name(p, i), s);
        mxr_plan_abort(p, MXR_EFORMERR, lua_tostring(L, -1));
        if (mxr_plan_result(p, &res) != MXR_OK)
          return luaL_error(L, "mxroute.plan: internal error");
        return push_result(L, &res);
      }
      lua_pop(L, 1);
      if (a.family == 4)
        a4[n4++] = a;
      else
        a6[n6++] = a;
    }
    if (mxr_plan_host_wants(p, i, 4))
      mxr_plan_set_addrs(p, i, 4, MXR_OK, a4, n4);
    if (mxr_plan_host_wants(p, i, 6))
      mxr_plan_set_addrs(p, i, 6, MXR_OK, a6, n6);
    lua_pop(L, 2);
    return 0;
  }
  return luaL_error(L, "mxroute.plan: addrs['%s'] must be a list, a code "
                    "or nil", mxr_plan_host_name(p, i));
}

/* Parse records.mx (at idx) into an mxr_mx array. Pushes the array (a
 * userdata) and a table anchoring every name string: a name may come
 * from an __index metamethod, referenced by nothing else. */
static size_t read_mx(lua_State *L, int idx, mxr_mx **out)
{
  size_t n = mxr_rawlen(L, idx), k;
  mxr_mx *mx = mxr_newud(L, (n ? n : 1) * sizeof *mx);
  int anchor;
  lua_createtable(L, (int)n, 0);
  anchor = lua_gettop(L);
  for (k = 1; k <= n; k++) {
    lua_Number pref;
    lua_rawgeti(L, idx, (int)k);
    if (!lua_istable(L, -1))
      luaL_error(L, "mxroute.plan: mx[%d] must be a table", (int)k);
    lua_getfield(L, -1, "pref");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_rawgeti(L, -1, 1);
    }
    lua_getfield(L, -2, "name");
    if (lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_rawgeti(L, -2, 2);
    }
    if (lua_type(L, -2) != LUA_TNUMBER)
      luaL_error(L, "mxroute.plan: mx[%d].pref must be a number", (int)k);
    pref = lua_tonumber(L, -2);
    if (!(pref >= 0 && pref <= 65535) || pref != (lua_Number)(int)pref)
      luaL_error(L, "mxroute.plan: mx[%d].pref must be 0..65535", (int)k);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "mxroute.plan: mx[%d].name must be a string", (int)k);
    mx[k - 1].pref = (uint16_t)pref;
    lua_pushfstring(L, "mxroute.plan: mx[%d].name", (int)k);
    mx[k - 1].name = check_nul(L, -2, &mx[k - 1].len, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_rawseti(L, anchor, (int)k);
    lua_pop(L, 3);
  }
  *out = mx;
  return n;
}

/* core.plan(records, opts) */
static int l_plan(lua_State *L)
{
  lopts *lo;
  mxr_plan **box;
  mxr_plan *p;
  mxr_input in;
  char err[MXR_MSG_BUF];
  const char *text, *canon = NULL;
  size_t len, i, n;
  mxr_status st;
  int addrs_idx;

  luaL_checktype(L, 1, LUA_TTABLE);
  lo = check_opts(L, 2);
  lua_settop(L, 2);
  lua_getfield(L, 1, "domain"); /* 3 */
  if (lua_type(L, 3) != LUA_TSTRING)
    return luaL_error(L, "mxroute.plan: records.domain must be a string");
  text = lua_tolstring(L, 3, &len);
  lua_getfield(L, 1, "mx"); /* 4 */
  lua_getfield(L, 1, "addrs"); /* 5 */
  if (!lua_isnil(L, 5) && !lua_istable(L, 5))
    return luaL_error(L, "mxroute.plan: records.addrs must be a table");
  lua_getfield(L, 1, "cname"); /* 6 */
  if (!lua_isnil(L, 6)) {
    if (lua_type(L, 6) != LUA_TSTRING)
      return luaL_error(L, "mxroute.plan: records.cname must be a string");
    canon = check_nul(L, 6, NULL, "mxroute.plan: records.cname");
  }
  box = mxr_newud(L, sizeof *box); /* 7 */
  *box = NULL;
  luaL_setmetatable(L, BOX_MT);

  err[0] = 0;
  st = mxr_input_parse(text, len, &in, err, sizeof err);
  if (st != MXR_OK)
    return push_failure(L, text, err, st);
  *box = p = mxr_plan_new(&in, text, len, lo->o);
  if (!p)
    return luaL_error(L, "mxroute: out of memory");

  if (!mxr_plan_complete(p)) {
    mxr_mx *mx = NULL;
    n = 0;
    if (lua_isnil(L, 4) || (lua_isboolean(L, 4) && !lua_toboolean(L, 4)))
      st = MXR_ENODATA;
    else if (lua_type(L, 4) == LUA_TSTRING)
      st = check_code(L, 4, "mxroute.plan: records.mx");
    else if (lua_istable(L, 4)) {
      n = read_mx(L, 4, &mx); /* pushes 8 and 9 */
      st = MXR_OK;
    } else
      return luaL_error(L, "mxroute.plan: records.mx must be a list, "
                        "false or a code");
    if (mxr_plan_set_mx(p, st, canon, mx, n, &lo->rng) == MXR_ENOMEM)
      return luaL_error(L, "mxroute: out of memory");
    lua_settop(L, 7);
    /* addrs keyed by normalised name: DNS names match case-insensitively
     * and without the trailing dot */
    lua_newtable(L); /* 8 */
    addrs_idx = 8;
    if (lua_istable(L, 5)) {
      lua_pushnil(L);
      while (lua_next(L, 5)) {
        char nm[MXR_NAME_BUF];
        const char *k;
        size_t klen;
        if (lua_type(L, -2) != LUA_TSTRING)
          return luaL_error(L, "mxroute.plan: records.addrs keys must be "
                            "host names");
        k = check_nul(L, -2, &klen, "mxroute.plan: records.addrs key");
        if (mxr_name_normalize(k, klen, nm, NULL, 0) != MXR_OK)
          return luaL_error(L, "mxroute.plan: records.addrs key '%s' is "
                            "not a host name", k);
        lua_pushstring(L, nm);
        lua_pushvalue(L, -2);
        lua_rawset(L, addrs_idx);
        lua_pop(L, 1);
      }
    }
    n = mxr_plan_host_count(p);
    for (i = 0; i < n; i++) {
      int r;
      lua_getfield(L, addrs_idx, mxr_plan_host_name(p, i));
      r = feed_host(L, p, i, lua_gettop(L));
      if (r)
        return r;
      lua_pop(L, 1);
    }
  }
  if (!mxr_plan_complete(p))
    return luaL_error(L, "mxroute.plan: internal error: plan incomplete");
  return push_plan_result(L, p);
}

/* ------------------------------------------------------------------ */
/* resolutions (the query objects)                                     */

lres *mxr_lua_check_res(lua_State *L, int idx)
{
  lres *r = luaL_checkudata(L, idx, RES_MT);
  if (!r->res)
    luaL_error(L, "mxroute: query is closed");
  return r;
}

static int engine_open(const lres *r)
{
  return r->eng && r->eng->e && r->job;
}

static int res_gc(lua_State *L)
{
  lres *r = luaL_checkudata(L, 1, RES_MT);
  if (engine_open(r))
    mxr_engine_remove(r->eng->e, r->job);
  r->job = NULL;
  mxr_lua_xch_detach(r);
  mxr_res_free(r->res);
  r->res = NULL;
  return 0;
}

/* core.res(input, opts [, route [, cache]]); route.finish, a function,
 * rewrites the result once (routes.lua: route annotation and hooks) */
static int l_res(lua_State *L)
{
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  lopts *lo = check_opts(L, 2);
  mxr_cache *cache = mxr_lua_opt_cache(L, 4);
  lres *r;
  if (!lua_isnoneornil(L, 3))
    luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 4);
  r = mxr_newud(L, sizeof *r);
  r->res = NULL;
  r->eng = NULL;
  r->job = NULL;
  r->xch = NULL;
  r->xjob = NULL;
  luaL_setmetatable(L, RES_MT);
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "opts"); /* keeps opts and its rng alive */
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "input"); /* for the result of a closed query */
  lua_pushvalue(L, 4);
  lua_setfield(L, -2, "cache"); /* the cache outlives the resolution */
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "finish");
    lua_setfield(L, -2, "finish");
  }
  mxr_setuv(L, -2);
  r->res = mxr_lua_new_res(L, s, len, lo);
  if (!r->res)
    return luaL_error(L, "mxroute: out of memory");
  mxr_res_set_cache(r->res, cache);
  lua_settop(L, 5);
  return 1;
}


/* A query closed early (<close>, or collected) counts as done and
 * cancelled, so that whoever still holds it gets an answer. */
static int res_done(lua_State *L)
{
  lres *r = luaL_checkudata(L, 1, RES_MT);
  lua_pushboolean(L, !r->res || mxr_res_done(r->res));
  return 1;
}

/* q:result() -> plan | nil, message, code, info; raises if not done */
static int res_result(lua_State *L)
{
  lres *r = luaL_checkudata(L, 1, RES_MT);
  if (!r->res) {
    const char *input;
    mxr_getuv(L, 1);
    lua_getfield(L, -1, "input");
    input = lua_tostring(L, -1); /* kept alive by the uservalue */
    return push_failure(L, input ? input : "", "query was closed",
                        MXR_ECANCELLED);
  }
  if (!mxr_res_done(r->res))
    return luaL_error(L, "mxroute: query is not done");
  if (mxr_lua_final_result(L, 1, r)) {
    int i;
    for (i = 1; i <= 4; i++)
      lua_rawgeti(L, -i, i);
    return 4;
  }
  return mxr_lua_push_res_result(L, r->res);
}

/* q:class() -> "ok" | "permanent" | "temporary" | "loop" | "invalid" of
 * a done query's final result (as q:result() reports it; r:stats()
 * counts plans with it, without building the plan). */
static int res_class(lua_State *L)
{
  lres *r = luaL_checkudata(L, 1, RES_MT);
  mxr_status st = MXR_ECANCELLED;
  mxr_result out;
  if (r->res) {
    if (!mxr_res_done(r->res))
      return luaL_error(L, "mxroute: query is not done");
    if (mxr_lua_final_result(L, 1, r)) {
      const char *code;
      lua_rawgeti(L, -1, 1);
      lua_rawgeti(L, -2, 3);
      code = lua_tostring(L, -1);
      if (!lua_isnil(L, -2))
        st = MXR_OK;
      else if (!code || mxr_status_from_name(code, &st) != MXR_OK)
        st = MXR_EHOOK;
      lua_pop(L, 3);
    } else if (mxr_res_result(r->res, &out) == MXR_OK)
      st = out.status;
  }
  lua_pushstring(L, mxr_class_name(mxr_status_class(st)));
  return 1;
}

static int res_ready(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  if (mxr_lua_final_targets(L, r)) {
    lua_pushinteger(L, (lua_Integer)mxr_rawlen(L, -1));
    return 1;
  }
  lua_pushinteger(L, (lua_Integer)mxr_res_ready(r->res));
  return 1;
}

/* q:target(i) -> {host, pref, addr, family} for i <= q:ready() */
static int res_target(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  lua_Integer i = luaL_checkinteger(L, 2);
  const mxr_target *t;
  if (i < 1)
    return 0;
  if (mxr_lua_final_targets(L, r)) {
    lua_rawgeti(L, -1, (int)i);
    return lua_isnil(L, -1) ? 0 : 1;
  }
  t = mxr_res_target(r->res, (size_t)(i - 1));
  if (!t)
    return 0;
  push_target(L, t);
  return 1;
}

/* q:cancel() — completes the query with CANCELLED; an engine-driven one
 * is reported done by the next step (so its callback runs). */
static int res_cancel(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  if (engine_open(r))
    mxr_engine_cancel(r->eng->e, r->job);
  else if (!mxr_lua_xch_cancel(r))
    mxr_res_cancel(r->res, MXR_ECANCELLED);
  return 0;
}

/* The sans-I/O side, for transports written in Lua (OpenResty). */
static int res_next(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  mxr_query q;
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query is driven by an engine");
  if (!mxr_res_next(r->res, &q))
    return 0;
  lua_pushinteger(L, (lua_Integer)q.slot);
  lua_pushstring(L, q.name);
  lua_pushinteger(L, q.type);
  return 3;
}

static unsigned check_slot(lua_State *L, int idx)
{
  lua_Integer s = luaL_checkinteger(L, idx);
  if (s < 0 || s > 0x7fffffff)
    luaL_error(L, "mxroute: bad slot");
  return (unsigned)s;
}

static int res_answer(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  unsigned slot = check_slot(L, 2);
  size_t len;
  const char *pkt = luaL_checklstring(L, 3, &len);
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query is driven by an engine");
  mxr_res_answer(r->res, slot, (const unsigned char *)pkt, len);
  return 0;
}

static int res_fail(lua_State *L)
{
  lres *r = mxr_lua_check_res(L, 1);
  unsigned slot = check_slot(L, 2);
  mxr_status st = check_code(L, 3, "mxroute: fail");
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query is driven by an engine");
  mxr_res_fail(r->res, slot, st);
  return 0;
}

/* ------------------------------------------------------------------ */
/* engine                                                              */

static lengine *check_engine(lua_State *L, int idx)
{
  lengine *e = luaL_checkudata(L, idx, ENG_MT);
  if (!e->e)
    luaL_error(L, "mxroute: resolver is closed");
  return e;
}

/* Link the query at qidx with the transport at tidx: the query keeps the
 * transport alive (its uservalue's field), the transport finds the query
 * from its light pointer (the transport's uservalue table). */
void mxr_lua_link_query(lua_State *L, int qidx, int tidx, const char *field)
{
  lres *r = lua_touserdata(L, qidx);
  mxr_getuv(L, qidx);
  lua_pushvalue(L, tidx);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
  mxr_getuv(L, tidx);
  lua_pushlightuserdata(L, r);
  lua_pushvalue(L, qidx);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* The transport at tidx is going away: every query still reachable from
 * it forgets its handle into it. */
void mxr_lua_forget_queries(lua_State *L, int tidx)
{
  mxr_getuv(L, tidx);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      lres *r = luaL_testudata(L, -1, RES_MT);
      if (r) {
        r->job = NULL;
        r->xjob = NULL;
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* close, __gc and __close share this path: cancel everything. */
static int engine_close(lua_State *L)
{
  lengine *e = luaL_checkudata(L, 1, ENG_MT);
  if (!e->e)
    return 0;
  mxr_lua_forget_queries(L, 1);
  mxr_engine_free(e->e);
  e->e = NULL;
  return 0;
}

/* core.engine{ servers = "csv"|nil, timeout_ms =, tries = } */
static int l_engine(lua_State *L)
{
  mxr_engine_config cfg;
  char err[MXR_MSG_BUF];
  lengine *e;
  mxr_status st;
  luaL_checktype(L, 1, LUA_TTABLE);
  memset(&cfg, 0, sizeof cfg);
  lua_getfield(L, 1, "servers");
  cfg.servers = NULL;
  if (!lua_isnil(L, -1)) {
    luaL_checkstring(L, -1);
    cfg.servers = check_nul(L, -1, NULL, "mxroute: servers");
  }
  lua_getfield(L, 1, "timeout_ms");
  cfg.timeout_ms = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "tries");
  cfg.tries = (int)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "rcvbuf");
  cfg.rcvbuf = (int)luaL_optinteger(L, -1, 0);
  /* exchange options, checked by mxroute.options (0: the default) */
  lua_getfield(L, 1, "max_inflight");
  cfg.max_inflight = (size_t)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "udp_queries");
  cfg.udp_queries = (unsigned)luaL_optinteger(L, -1, 0);
  lua_getfield(L, 1, "health");
  cfg.health = (double)luaL_optnumber(L, -1, 0);
  lua_getfield(L, 1, "dns0x20");
  cfg.case_randomize = lua_toboolean(L, -1);
  lua_getfield(L, 1, "trace");
  cfg.trace = lua_toboolean(L, -1);
  e = mxr_newud(L, sizeof *e);
  e->e = NULL;
  luaL_setmetatable(L, ENG_MT);
  /* uservalue: res light pointer -> query userdata, weak values, so an
   * abandoned query can be collected (its __gc detaches it) */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "v");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  mxr_setuv(L, -2);
  err[0] = 0;
  st = mxr_engine_new(&cfg, &e->e, err, sizeof err);
  if (st != MXR_OK)
    return luaL_error(L, "mxroute: %s", err[0] ? err : mxr_status_text(st));
  return 1;
}

static int engine_submit(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  lres *r = mxr_lua_check_res(L, 2);
  mxr_status st;
  if (r->eng || r->xch)
    return luaL_error(L, "mxroute: query already submitted");
  mxr_lua_link_query(L, 2, 1, "engine");
  r->eng = e;
  st = mxr_engine_add(e->e, r->res, r, &r->job);
  if (st != MXR_OK)
    return luaL_error(L, "mxroute: %s", mxr_status_text(st));
  return 0;
}

/* e:stats() -> { queries, answers, timeouts, tcp, merged, dropped,
 * sockets, server_failures = { n1, n2, ... } } */
static int engine_stats(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  mxr_xch_stats st;
  lua_Integer i;
  mxr_engine_stats(e->e, &st);
  lua_createtable(L, 0, 8);
#define STAT(f)                                                              \
  lua_pushinteger(L, (lua_Integer)st.f);                                     \
  lua_setfield(L, -2, #f)
  STAT(queries);
  STAT(answers);
  STAT(timeouts);
  STAT(tcp);
  STAT(merged);
  STAT(dropped);
  STAT(sockets);
#undef STAT
  lua_newtable(L);
  for (i = 0; i < (lua_Integer)mxr_engine_server_count(e->e); i++) {
    lua_pushinteger(L, (lua_Integer)mxr_engine_server_failures(
                           e->e, (unsigned)i));
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, -2, "server_failures");
  return 1;
}

/* Names of the rcodes a reply can carry (RFC 1035 4.1.1, RFC 6895 2.3). */
static const char *rcode_name(int rcode, char *buf, size_t len)
{
  static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL",
                                      "NXDOMAIN", "NOTIMP", "REFUSED"};
  if (rcode >= 0 && rcode < (int)(sizeof names / sizeof names[0]))
    return names[rcode];
  snprintf(buf, len, "RCODE%d", rcode);
  return buf;
}

void mxr_lua_push_event(lua_State *L, const mxr_xch_event *ev,
                        const mxr_server *sv)
{
  char buf[MXR_SERVER_BUF];
  lua_createtable(L, 0, 7);
  lua_pushstring(L, ev->name);
  lua_setfield(L, -2, "name");
  if (ev->type == MXR_TYPE_MX)
    lua_pushliteral(L, "MX");
  else if (ev->type == MXR_TYPE_AAAA)
    lua_pushliteral(L, "AAAA");
  else if (ev->type == MXR_TYPE_A)
    lua_pushliteral(L, "A");
  else
    lua_pushfstring(L, "TYPE%d", (int)ev->type);
  lua_setfield(L, -2, "type");
  if (sv) {
    mxr_server_format(sv, buf);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "server");
  }
  lua_pushboolean(L, ev->tcp);
  lua_setfield(L, -2, "tcp");
  lua_pushstring(L, mxr_status_name(ev->status));
  lua_setfield(L, -2, "status");
  if (ev->rcode >= 0) {
    lua_pushstring(L, rcode_name(ev->rcode, buf, sizeof buf));
    lua_setfield(L, -2, "rcode");
  }
  lua_pushnumber(L, (lua_Number)ev->rtt);
  lua_setfield(L, -2, "rtt");
}

/* e:next_event() -> the next traced query event (core.engine{trace =
 * true}), or nil. */
static int engine_next_event(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  mxr_xch_event ev;
  if (!mxr_engine_next_event(e->e, &ev))
    return 0;
  mxr_lua_push_event(L, &ev, mxr_engine_server(e->e, ev.server));
  return 1;
}

static int engine_pollfd(lua_State *L)
{
  lua_pushinteger(L, mxr_engine_fd(check_engine(L, 1)->e));
  return 1;
}

static int engine_timeout(lua_State *L)
{
  double t = mxr_engine_timeout(check_engine(L, 1)->e);
  if (t < 0)
    lua_pushnil(L);
  else
    lua_pushnumber(L, t);
  return 1;
}

static int engine_pending(lua_State *L)
{
  lua_pushinteger(L,
                  (lua_Integer)mxr_engine_pending(check_engine(L, 1)->e));
  return 1;
}

/* e:step(wait) -> n, { finished queries } */
static int engine_step(lua_State *L)
{
  lengine *e = check_engine(L, 1);
  double wait = luaL_optnumber(L, 2, 0);
  int k = 0;
  lres *r;
  if (wait != wait)
    wait = 0;
  mxr_engine_step(e->e, wait);
  lua_newtable(L);
  mxr_getuv(L, 1);
  while ((r = mxr_engine_next_done(e->e)) != NULL) {
    mxr_engine_remove(e->e, r->job);
    r->job = NULL;
    lua_pushlightuserdata(L, r);
    lua_rawget(L, -2);
    if (!lua_isnil(L, -1)) {
      lua_rawseti(L, -3, ++k);
      lua_pushlightuserdata(L, r);
      lua_pushnil(L);
      lua_rawset(L, -3);
    } else
      lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_pushinteger(L, k);
  lua_insert(L, -2);
  return 2;
}

/* ------------------------------------------------------------------ */
/* module functions                                                    */

static int l_class(lua_State *L)
{
  mxr_status st = check_code(L, 1, "mxroute.class");
  lua_pushstring(L, mxr_class_name(mxr_status_class(st)));
  return 1;
}

/* core.packet(name, type, id) -> query bytes */
static int l_packet(lua_State *L)
{
  const char *name;
  lua_Integer type = luaL_checkinteger(L, 2);
  lua_Integer id = luaL_checkinteger(L, 3);
  unsigned char *buf = NULL;
  size_t len = 0;
  mxr_status st;
  luaL_checkstring(L, 1);
  name = check_nul(L, 1, NULL, "mxroute: packet: name");
  if (type < 1 || type > 65535 || id < 0 || id > 65535)
    return luaL_error(L, "mxroute: bad query type or id");
  st = mxr_packet_query(name, (uint16_t)type, (uint16_t)id, &buf, &len);
  if (st != MXR_OK) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: cannot build query (%s)", name,
                    mxr_status_text(st));
    lua_pushstring(L, mxr_status_name(st));
    return 3;
  }
  lua_pushlstring(L, (const char *)buf, len);
  mxr_packet_free(buf);
  return 1;
}

/* core.nameserver(s) -> "IP:PORT", address, port | nil, message: the
 * one nameserver parser (mxr_server_parse), so that the options, the CLI
 * and mxroute.ngx accept the same servers with the same messages. */
static int l_nameserver(lua_State *L)
{
  char err[MXR_MSG_BUF], text[MXR_SERVER_BUF], addr[MXR_ADDR_BUF];
  mxr_server sv;
  size_t len;
  const char *s;
  if (lua_type(L, 1) != LUA_TSTRING) {
    lua_pushnil(L);
    lua_pushfstring(L, "nameserver must be a string, not a %s",
                    luaL_typename(L, 1));
    return 2;
  }
  s = lua_tolstring(L, 1, &len);
  err[0] = '\0';
  if (mxr_server_parse(s, len, &sv, err, sizeof err) != MXR_OK) {
    lua_pushnil(L);
    lua_pushstring(L, err[0] ? err : "bad nameserver");
    return 2;
  }
  mxr_server_format(&sv, text);
  mxr_addr_format(&sv.addr, addr);
  lua_pushstring(L, text);
  lua_pushstring(L, addr);
  lua_pushinteger(L, sv.port);
  return 3;
}

/* Largest configuration file read_regular_file takes. */
#define CONFIG_MAX 65536

/* core.read_regular_file(path) -> text | nil, message, code. Reads a
 * small configuration file (resolv.conf) without ever blocking on it:
 * opened O_NONBLOCK (open(2) of a FIFO would wait for a writer), then
 * anything but a regular file is refused (a FIFO or a device could make
 * read(2) wait, or never end). code: "ENOENT" when there is no such
 * file, "NOTREGULAR" for a FIFO, device, directory..., else "EIO". */
static int l_read_regular_file(lua_State *L)
{
  size_t plen, got = 0;
  const char *path;
  char *buf;
  struct stat st;
  int fd, e;
  luaL_checkstring(L, 1);
  path = check_nul(L, 1, &plen, "mxroute: read_regular_file: path");
  buf = mxr_newud(L, CONFIG_MAX + 1); /* before open: raising leaks no fd */
  fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    e = errno;
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushstring(L, e == ENOENT ? "ENOENT" : "EIO");
    return 3;
  }
  if (fstat(fd, &st) != 0) {
    e = errno;
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, strerror(e));
    lua_pushliteral(L, "EIO");
    return 3;
  }
  if (!S_ISREG(st.st_mode)) {
    const char *kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISDIR(st.st_mode) ? "a directory"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    close(fd);
    lua_pushnil(L);
    lua_pushfstring(L, "%s is %s, not a regular file: not read", path, kind);
    lua_pushliteral(L, "NOTREGULAR");
    return 3;
  }
  for (;;) {
    ssize_t n = read(fd, buf + got, CONFIG_MAX + 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      e = errno;
      close(fd);
      lua_pushnil(L);
      lua_pushfstring(L, "%s: %s", path, strerror(e));
      lua_pushliteral(L, "EIO");
      return 3;
    }
    if (n == 0 || (got += (size_t)n) > CONFIG_MAX)
      break;
  }
  close(fd);
  if (got > CONFIG_MAX) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s is larger than %d octets: not read", path,
                    CONFIG_MAX);
    lua_pushliteral(L, "EIO");
    return 3;
  }
  lua_pushlstring(L, buf, got);
  return 1;
}

/* core.array_mt([mt]) -> the metatable of plan lists; with mt (a table),
 * plans made from now on use mt instead (mxroute.lua passes cjson's
 * array_mt, which cjson recognises by identity). */
static int l_array_mt(lua_State *L)
{
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_pushvalue(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  return 1;
}

static const luaL_Reg res_m[] = {
    {"done", res_done},     {"result", res_result}, {"ready", res_ready},
    {"target", res_target}, {"cancel", res_cancel}, {"next", res_next},
    {"answer", res_answer}, {"fail", res_fail},     {"class", res_class},
    {NULL, NULL}};

static const luaL_Reg eng_m[] = {
    {"submit", engine_submit}, {"pollfd", engine_pollfd},
    {"timeout", engine_timeout}, {"step", engine_step},
    {"pending", engine_pending}, {"close", engine_close},
    {"stats", engine_stats}, {"next_event", engine_next_event},
    {NULL, NULL}};

static const luaL_Reg funcs[] = {
    {"opts", l_opts},   {"plan", l_plan},     {"res", l_res},
    {"engine", l_engine}, {"class", l_class}, {"packet", l_packet},
    {"nameserver", l_nameserver}, {"read_regular_file", l_read_regular_file},
    {"array_mt", l_array_mt}, {NULL, NULL}};

void mxr_lua_new_class(lua_State *L, const char *name, const luaL_Reg *m,
                       lua_CFunction gc)
{
  luaL_newmetatable(L, name);
  if (m) { /* a class without methods gets no __index */
    luaL_setfuncs(L, m, 0);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
  }
  if (gc) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}

#if defined(__GNUC__)
__attribute__((visibility("default")))
#endif
int luaopen_mxroute_core(lua_State *L);

int luaopen_mxroute_core(lua_State *L)
{
  int i;
  mxr_lua_new_class(L, OPTS_MT, NULL, opts_gc);
  mxr_lua_new_class(L, RES_MT, res_m, res_gc);
  mxr_lua_new_class(L, ENG_MT, eng_m, engine_close);
  luaL_newmetatable(L, BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* dkjson encodes a table whose metatable has __jsontype = "array" as
   * an array, even when it is empty */
  lua_getfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  if (!lua_istable(L, -1)) {
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
    lua_setfield(L, LUA_REGISTRYINDEX, ARRAY_MT);
  }
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  /* the other class files (csrc/l*.c) add theirs here:
   * mxr_lua_open_<class>(L, lua_gettop(L)); */
  mxr_lua_open_cache(L, lua_gettop(L));
  mxr_lua_open_route(L, lua_gettop(L));
  mxr_lua_open_signal(L, lua_gettop(L));
  mxr_lua_open_reader(L, lua_gettop(L));
  mxr_lua_open_xch(L, lua_gettop(L));
  lua_pushliteral(L, MXR_VERSION);
  lua_setfield(L, -2, "version");
  lua_newtable(L);
  for (i = 1; i < MXR_STATUS_COUNT; i++) { /* every code but OK */
    lua_pushstring(L, mxr_class_name(mxr_status_class((mxr_status)i)));
    lua_setfield(L, -2, mxr_status_name((mxr_status)i));
  }
  lua_setfield(L, -2, "codes");
  return 1;
}
