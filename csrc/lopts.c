/*
 * lopts.c — core.opts(t): the planner's options and the resolver's PRNG
 * (a userdata of class mxroute.opts), read by the option table
 * (loptions.c), and the exports of that table to Lua.
 *
 * core.option_check is the one check of a simple value (boolean,
 * integer, seconds, one of some words, function), so every layer says
 * the same words about the same mistake. A bad field is returned as
 * data (nil, reason, field), never found again by reading a message.
 */
#include "loptions.h"
#include "mxr_internal.h" /* mxr_escape */

#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* checks                                                              */

/* "expected \"a\", \"b\" or \"c\"" for the words of f. */
static const char *expected_words(const optfield *f, char *buf, size_t n)
{
  size_t i, len = (size_t)snprintf(buf, n, "expected");
  for (i = 0; f->values[i] && len < n; i++) {
    const char *sep = i == 0 ? " " : f->values[i + 1] ? ", " : " or ";
    len += (size_t)snprintf(buf + len, n - len, "%s\"%s\"", sep,
                            f->values[i]);
  }
  return buf;
}

/* The string at idx, or NULL with *why set when it holds a NUL byte (C
 * would see it cut short). */
static const char *string_at(lua_State *L, int idx, size_t *len,
                             const char **why, char *buf, size_t n)
{
  const char *s = lua_tolstring(L, idx, len);
  if (memchr(s, '\0', *len) != NULL) {
    char shown[128];
    mxr_escape(shown, sizeof shown, s, *len, 60);
    snprintf(buf, n, "'%s' contains a NUL byte", shown);
    *why = buf;
    return NULL;
  }
  return s;
}

/* Checks the simple value at idx against f: NULL if it fits, else why
 * not. *choice: the index of a oneof word. */
static const char *check_value(lua_State *L, int idx, const optfield *f,
                               int *choice, char *buf, size_t n)
{
  int t = lua_type(L, idx);
  lua_Number v = t == LUA_TNUMBER ? lua_tonumber(L, idx) : 0;
  switch (f->kind) {
  case K_BOOLEAN:
    return t == LUA_TBOOLEAN ? NULL : "expected a boolean";
  case K_FUNCTION:
    return t == LUA_TFUNCTION ? NULL : "expected a function";
  case K_INTEGER:
    /* the range first: the cast is defined within it */
    if (t == LUA_TNUMBER && v >= f->min && v <= f->max &&
        v == (lua_Number)(long long)v)
      return NULL;
    if (f->min == -EXACT && f->max == EXACT)
      return "expected an integer";
    snprintf(buf, n, "expected an integer %.0f..%.0f", f->min, f->max);
    return buf;
  case K_SECONDS:
    if (t == LUA_TNUMBER && v > 0 && v <= f->max)
      return NULL;
    if (t == LUA_TNUMBER && v > f->max) /* NaN is not */
      snprintf(buf, n, "%.14g seconds is more than %.0f seconds (the %s is "
               "in seconds, not milliseconds: 2 means 2 s)", (double)v,
               f->max, f->name);
    else
      snprintf(buf, n, "expected seconds, more than 0 and at most %.0f",
               f->max);
    return buf;
  case K_ONEOF:
    if (t == LUA_TSTRING) {
      const char *why = NULL;
      size_t len, i;
      const char *s = string_at(L, idx, &len, &why, buf, n);
      if (!s)
        return why;
      for (i = 0; f->values[i]; i++)
        if (!strcmp(s, f->values[i])) {
          if (choice)
            *choice = (int)i;
          return NULL;
        }
    }
    return expected_words(f, buf, n);
  default:
    return NULL; /* not a simple value: l_option_check refuses it */
  }
}

/* NULL, or why the table at idx is not a list: keys 1..n and nothing
 * else. A hole ({"a", nil, "b"}, or a sparse table) would otherwise
 * silently cut the list at a border. *count: n. */
static const char *check_list(lua_State *L, int idx, size_t *count,
                              char *buf, size_t n)
{
  size_t keys = 0, max = 0, i;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_Number k;
    lua_pop(L, 1);
    k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
    if (!(k >= 1 && k <= 1e9 && k == (lua_Number)(size_t)k)) {
      lua_pop(L, 1);
      return "expected a list (a key is not an index 1..n)";
    }
    keys++;
    if ((size_t)k > max)
      max = (size_t)k;
  }
  for (i = 1; keys != max && i <= max; i++) {
    int missing;
    lua_rawgeti(L, idx, (int)i);
    missing = lua_isnil(L, -1);
    lua_pop(L, 1);
    if (missing) {
      snprintf(buf, n, "expected a list without holes (entry %d is "
               "missing)", (int)i);
      return buf;
    }
  }
  *count = keys;
  return NULL;
}

/* ------------------------------------------------------------------ */
/* the planner's fields                                                */

/* self or ignore_targets: one string or a list of them. */
OPT_APPLY(mxr_lua_apply_strings)
{
  const char *why = NULL;
  size_t i, count = 1, fl = strlen(f->name);
  int single = lua_type(L, idx) == LUA_TSTRING;
  if (!single && !lua_istable(L, idx))
    return "expected a list of strings";
  if (!single && (why = check_list(L, idx, &count, buf, n)) != NULL)
    return why;
  if (f->kind == K_CIDRS)
    mxr_opts_ignore_clear(lo->o);
  for (i = 1; i <= count && !why; i++) {
    mxr_status st = MXR_OK;
    size_t len;
    const char *s;
    if (!single)
      lua_rawgeti(L, idx, (int)i);
    if (lua_type(L, -1) != LUA_TSTRING)
      why = "expected a list of strings";
    else if ((s = string_at(L, -1, &len, &why, buf, n)) != NULL) {
      buf[0] = '\0';
      st = f->kind == K_NAMES
               ? mxr_opts_add_self(lo->o, s, len, buf, n)
               : mxr_opts_ignore_add(lo->o, s, len, buf, n);
      /* "self: not a ...: 'x'": the field is named once, by the caller */
      if (st != MXR_OK)
        why = !strncmp(buf, f->name, fl) && buf[fl] == ':' &&
                      buf[fl + 1] == ' '
                  ? buf + fl + 2
                  : buf[0] ? buf : "not valid";
    }
    if (!single)
      lua_pop(L, 1);
    if (st == MXR_ENOMEM)
      luaL_error(L, "mxroute: out of memory");
  }
  return why;
}

OPT_APPLY(mxr_lua_apply_family)
{
  int choice = 0;
  const char *why = check_value(L, idx, f, &choice, buf, n);
  if (!why)
    mxr_opts_set_family(lo->o, mxr_lua_family_of[choice]);
  return why;
}

OPT_APPLY(mxr_lua_apply_prefer)
{
  int choice = 0;
  const char *why = check_value(L, idx, f, &choice, buf, n);
  if (!why)
    mxr_opts_set_prefer(lo->o, mxr_lua_prefer_of[choice]);
  return why;
}

OPT_APPLY(mxr_lua_apply_mx_to_ip)
{
  const char *why = check_value(L, idx, f, NULL, buf, n);
  if (!why)
    mxr_opts_set_allow_mx_to_ip(lo->o, lua_toboolean(L, idx));
  return why;
}

OPT_APPLY(mxr_lua_apply_interfaces)
{
  mxr_status st;
  const char *why = check_value(L, idx, f, NULL, buf, n);
  if (why || !lua_toboolean(L, idx))
    return why;
  buf[0] = '\0';
  st = mxr_opts_add_interfaces(lo->o, NULL, buf, n);
  if (st == MXR_ENOMEM)
    luaL_error(L, "mxroute: out of memory");
  return st == MXR_OK ? NULL : buf[0] ? buf : "cannot list them";
}

/* max_hosts, max_addrs: >= 1 once checked, so the setters cannot fail */
OPT_APPLY(mxr_lua_apply_max_hosts)
{
  const char *why = check_value(L, idx, f, NULL, buf, n);
  if (!why)
    (void)mxr_opts_set_max_hosts(lo->o, (size_t)lua_tonumber(L, idx));
  return why;
}

OPT_APPLY(mxr_lua_apply_max_addrs)
{
  const char *why = check_value(L, idx, f, NULL, buf, n);
  if (!why)
    (void)mxr_opts_set_max_addrs(lo->o, (size_t)lua_tonumber(L, idx));
  return why;
}

OPT_APPLY(mxr_lua_apply_seed)
{
  const char *why = check_value(L, idx, f, NULL, buf, n);
  if (!why)
    mxr_rng_seed(&lo->rng, (uint64_t)(long long)lua_tonumber(L, idx));
  return why;
}

/* ------------------------------------------------------------------ */
/* Lua                                                                 */

lopts *mxr_lua_check_opts(lua_State *L, int idx)
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

/* core.opts(t) -> opts | nil, reason, field: the planner's fields of t
 * (the others are the caller's) read by the option table; a bad one is returned
 * with its name. Raises only for misuse and out of memory. */
static int l_opts(lua_State *L)
{
  char buf[MXR_MSG_BUF];
  lopts *lo;
  size_t i;
  int seeded = 0, given = !lua_isnoneornil(L, 1);
  if (given)
    luaL_checktype(L, 1, LUA_TTABLE);
  lo = mxr_newud(L, sizeof *lo);
  lo->o = NULL;
  luaL_setmetatable(L, OPTS_MT);
  lo->o = mxr_opts_new();
  if (!lo->o)
    return luaL_error(L, "mxroute: out of memory");
  for (i = 0; given && i < mxr_lua_n_options; i++) {
    const optfield *f = &mxr_lua_options[i];
    const char *why;
    if (!f->apply)
      continue;
    lua_getfield(L, 1, f->name);
    why = lua_isnil(L, -1) ? NULL
                           : f->apply(L, lua_gettop(L), lo, f, buf, sizeof buf);
    seeded |= f->apply == mxr_lua_apply_seed && !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (why) {
      lua_pushnil(L);
      lua_pushstring(L, why);
      lua_pushstring(L, f->name);
      return 3;
    }
  }
  if (!seeded && mxr_rng_seed_os(&lo->rng) != MXR_OK)
    return luaL_error(L, "mxroute: the OS gives no randomness");
  return 1;
}

static const optfield *find_option(const char *name)
{
  size_t i;
  for (i = 0; i < mxr_lua_n_options; i++)
    if (!strcmp(mxr_lua_options[i].name, name))
      return &mxr_lua_options[i];
  return NULL;
}

/* core.option_check(name, v) -> v | nil, reason: v checked as the
 * option name, a simple value (raises for another kind). */
static int l_option_check(lua_State *L)
{
  char buf[MXR_MSG_BUF];
  const char *name = luaL_checkstring(L, 1);
  const optfield *f = find_option(name);
  const char *why;
  int choice = 0;
  if (!f || f->kind > K_FUNCTION)
    return luaL_error(L, "mxroute: option '%s' is not a simple value",
                      name);
  luaL_checkany(L, 2);
  why = check_value(L, 2, f, &choice, buf, sizeof buf);
  if (!why) {
    lua_settop(L, 2);
    return 1;
  }
  lua_pushnil(L);
  lua_pushstring(L, why);
  return 2;
}

static void set_string(lua_State *L, const char *k, const char *v)
{
  if (v) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, k);
  }
}

/* Pushes mxr_lua_options[i] as a table: { name, kind, layer, min, max, values,
 * value, default, flag, arg, help, cli, elsewhere }. */
static void push_option(lua_State *L, const optfield *f)
{
  int i;
  lua_createtable(L, 0, 13);
  set_string(L, "name", f->name);
  set_string(L, "kind", mxr_lua_option_kinds[f->kind]);
  set_string(L, "layer", f->layer);
  if (f->kind == K_INTEGER || f->kind == K_SECONDS) {
    lua_pushnumber(L, f->min);
    lua_setfield(L, -2, "min");
    lua_pushnumber(L, f->max);
    lua_setfield(L, -2, "max");
  }
  if (f->values) {
    lua_newtable(L);
    for (i = 0; f->values[i]; i++) {
      lua_pushstring(L, f->values[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "values");
  }
  set_string(L, "value", f->value);
  set_string(L, "default", f->def);
  set_string(L, "flag", f->flag);
  set_string(L, "arg", f->arg);
  set_string(L, "help", f->help);
  set_string(L, "cli", f->cli);
  set_string(L, "elsewhere", f->elsewhere);
}

void mxr_lua_open_opts(lua_State *L, int lib)
{
  size_t i;
  mxr_lua_new_class(L, OPTS_MT, NULL, opts_gc);
  lua_pushcfunction(L, l_opts);
  lua_setfield(L, lib, "opts");
  lua_pushcfunction(L, l_option_check);
  lua_setfield(L, lib, "option_check");
  lua_createtable(L, (int)mxr_lua_n_options, 0);
  for (i = 0; i < mxr_lua_n_options; i++) {
    push_option(L, &mxr_lua_options[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  lua_setfield(L, lib, "options");
}
