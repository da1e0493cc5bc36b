/*
 * loptions.h — the option table's types (loptions.c holds the table,
 * lopts.c reads and checks values by it).
 */
#ifndef MXR_LOPTIONS_H
#define MXR_LOPTIONS_H

#include "lmxroute.h"

typedef enum optkind {
  /* simple values, checked by check_value */
  K_BOOLEAN, K_INTEGER, K_SECONDS, K_ONEOF, K_FUNCTION,
  /* the planner's lists, read by apply_strings */
  K_NAMES, K_CIDRS,
  /* checked in Lua (mxroute.options, mxroute.ngx) */
  K_NAMESERVERS, K_CACHE, K_ROUTES, K_WAIT, K_DICT
} optkind;

struct optfield;
/* Sets a planner field from the value at idx: NULL, or why it is bad
 * (in buf, or a constant). */
typedef const char *(*optapply)(lua_State *L, int idx, lopts *lo,
                                const struct optfield *f, char *buf,
                                size_t n);

typedef struct optfield {
  const char *name;
  optkind kind;
  /* who reads it: "plan" (the planner: lopts.c), "resolver" (both
   * resolvers), "mxroute" (mxroute.resolver only), "ngx"
   * (mxroute.ngx.resolver only), "cache" (a field of cache = {...}) */
  const char *layer;
  double min, max;           /* integer: min..max; seconds: 0 < s <= max */
  const char *const *values; /* oneof: the words, NULL-terminated */
  const char *value;         /* docs: the value, when the kind does not say */
  const char *def;           /* docs: the default */
  const char *flag, *arg;    /* command line: "--tries", "N"; NULL: none */
  const char *help;          /* what it does (docs, --help) */
  const char *cli;           /* --help text, when it differs from help */
  const char *elsewhere;     /* the message on the other resolver */
  optapply apply;            /* planner fields: sets it */
} optfield;

/* 2^53: the integers every Lua number holds exactly */
#define EXACT 9007199254740992.0
#define TTL_MAX 2147483647.0 /* RFC 2181 8: a TTL is 31 bits */

#define OPT_APPLY(fn)                                                      \
  const char *fn(lua_State *L, int idx, lopts *lo, const optfield *f,      \
                 char *buf, size_t n)
/* The planner's fields (lopts.c), named in the table. */
OPT_APPLY(mxr_lua_apply_strings);
OPT_APPLY(mxr_lua_apply_family);
OPT_APPLY(mxr_lua_apply_prefer);
OPT_APPLY(mxr_lua_apply_interfaces);
OPT_APPLY(mxr_lua_apply_mx_to_ip);
OPT_APPLY(mxr_lua_apply_max_hosts);
OPT_APPLY(mxr_lua_apply_max_addrs);
OPT_APPLY(mxr_lua_apply_seed);

/* The table, in the order options are checked, documented and listed by
 * --help; the names of the kinds; the planner's values of the words of
 * family and prefer (in the order of their words in the table). */
extern const optfield mxr_lua_options[];
extern const size_t mxr_lua_n_options;
extern const char *const mxr_lua_option_kinds[];
extern const mxr_family mxr_lua_family_of[];
extern const mxr_prefer mxr_lua_prefer_of[];

#endif
