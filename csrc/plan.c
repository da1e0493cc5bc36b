/*
 * plan: the sans-I/O planner (DESIGN 1, rules 3-13). It is fed the MX
 * outcome and then the A/AAAA outcomes of the hosts it asks for, and
 * builds the ordered delivery plan. It does no I/O and keeps no clock.
 *
 * Invariants:
 *   - all random draws happen in set_mx (host order, per-host seeds), and
 *     addresses are put in a canonical order before being shuffled, so
 *     the order of the feeding calls never changes the plan;
 *   - p->targets holds exactly the final prefix (mxr_plan_ready): levels
 *     whose hosts and all earlier hosts are settled and not us. That
 *     prefix only grows (a level final is never undone: a host of ours
 *     lowers self_pref to its own level, which is not final), so each
 *     level is appended once, when it becomes final, and each address
 *     is checked against the earlier targets in a crit-bit tree: the
 *     whole plan costs O(n log n) in hosts, whatever the feeding order;
 *   - hosts[] is never reallocated after set_mx, so names handed out
 *     stay put until the plan is freed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxr_internal.h"
#include "mxroute.h"

#define NO_SELF 0x10000u /* self_pref when we are not an MX */
/* The least taken at once for plan parts (set_mx takes what the plan
 * will likely need, PLAN_ADDRS octets of addresses per host). */
#define PLAN_BLOCK 512
#define PLAN_ADDRS 128

/* Alignment of plan parts. */
union palign {
  void *p;
  long double d;
  uint64_t u;
  size_t z;
};

/* ------------------------------------------------------------------ */
/* opts                                                                */

/* A target-guard prefix as mxr_cidr_contains reads it: one inside
 * ::ffff:0:0/96 as the IPv4 prefix it carries (rule 11); made once, when
 * the option is set, instead of for every address checked. */
typedef struct gcidr {
  int family;
  unsigned bits;
  uint8_t net[16];
} gcidr;

struct mxr_opts {
  mxr_family family;
  mxr_prefer prefer;
  int allow_mx_to_ip;
  size_t max_hosts, max_addrs;
  char (*self_names)[MXR_NAME_BUF];
  size_t nself_names, cap_self_names;
  mxr_addr *self_addrs;
  size_t nself_addrs, cap_self_addrs;
  gcidr *ignore[2]; /* [0] IPv4 prefixes, [1] IPv6 */
  size_t nignore[2], cap_ignore[2];
};

/* DESIGN rule 11, plus 240.0.0.0/4 (RFC 1112 "reserved for future use",
 * not routable): unspecified, loopback, link-local, multicast, broadcast,
 * reserved, RFC 1918, and the IPv6 equivalents with ULA (RFC 4193). */
static const char *const default_ignore[] = {
    "0.0.0.0/8",      "127.0.0.0/8",        "169.254.0.0/16", "224.0.0.0/4",
    "240.0.0.0/4",    "255.255.255.255/32", "10.0.0.0/8",     "172.16.0.0/12",
    "192.168.0.0/16", "::/128",             "::1/128",        "fe80::/10",
    "ff00::/8",       "fc00::/7",
};

/* Make room for need elements in *arr (capacity *cap). */
static int grow(void *arrp, size_t *cap, size_t need, size_t elem) {
  void **arr = (void **)arrp;
  size_t ncap;
  void *n;
  if (need <= *cap)
    return 0;
  ncap = *cap ? *cap * 2 : 8;
  if (ncap < need)
    ncap = need;
  n = mxr_reallocarray(*arr, ncap, elem);
  if (n == NULL)
    return -1;
  *arr = n;
  *cap = ncap;
  return 0;
}

mxr_opts *mxr_opts_new(void) {
  size_t i;
  mxr_opts *o = mxr_calloc(1, sizeof *o);
  if (o == NULL)
    return NULL;
  o->family = MXR_FAMILY_ANY;
  o->prefer = MXR_PREFER_NONE;
  o->max_hosts = MXR_DEFAULT_MAX_HOSTS;
  o->max_addrs = MXR_DEFAULT_MAX_ADDRS;
  for (i = 0; i < sizeof default_ignore / sizeof default_ignore[0]; i++) {
    if (mxr_opts_ignore_add(o, default_ignore[i], strlen(default_ignore[i]),
                            NULL, 0) != MXR_OK) {
      mxr_opts_free(o);
      return NULL;
    }
  }
  return o;
}

void mxr_opts_free(mxr_opts *o) {
  if (o == NULL)
    return;
  mxr_free(o->self_names);
  mxr_free(o->self_addrs);
  mxr_free(o->ignore[0]);
  mxr_free(o->ignore[1]);
  mxr_free(o);
}

static mxr_status opt_error(char *err, size_t errlen, const char *what,
                            const char *s, size_t len) {
  if (err && errlen) {
    char show[128];
    mxr_escape(show, sizeof show, s ? s : "", s ? len : 0, 80);
    snprintf(err, errlen, "%s: '%s'", what, show);
  }
  return MXR_EBADOPT;
}

static mxr_status add_self_addr(mxr_opts *o, const mxr_addr *a) {
  if (grow(&o->self_addrs, &o->cap_self_addrs, o->nself_addrs + 1,
           sizeof *o->self_addrs) != 0)
    return MXR_ENOMEM;
  o->self_addrs[o->nself_addrs++] = *a;
  return MXR_OK;
}

/* A self name is a host name (RFC 1123 2.1: letters, digits, hyphens;
 * '_' too, as DNS data may hold it), never a pattern such as "*" or any
 * other printable character DNS data could carry: a self entry that
 * matched the wrong host would silently drop it. */
static int host_name_chars(const char *name) {
  const char *c;
  for (c = name; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
          *c == '-' || *c == '_' || *c == '.'))
      return 0;
  return 1;
}

/* A name, a bare address, or "[192.0.2.1]" / "[IPv6:...]" (also "[::1]"). */
mxr_status mxr_opts_add_self(mxr_opts *o, const char *s, size_t len,
                             char *err, size_t errlen) {
  mxr_addr a;
  char name[MXR_NAME_BUF];
  if (o == NULL || s == NULL)
    return opt_error(err, errlen, "self: missing value", s, len);
  if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
    const char *in = s + 1;
    size_t n = len - 2;
    if (n >= 5 && (in[0] == 'I' || in[0] == 'i') &&
        (in[1] == 'P' || in[1] == 'p') && (in[2] == 'v' || in[2] == 'V') &&
        in[3] == '6' && in[4] == ':') {
      in += 5;
      n -= 5;
      if (mxr_addr_parse(in, n, &a) != MXR_OK || a.family != 6)
        return opt_error(err, errlen, "self: not an IPv6 address", s, len);
    } else if (mxr_addr_parse(in, n, &a) != MXR_OK) {
      return opt_error(err, errlen, "self: not an address literal", s, len);
    }
    return add_self_addr(o, &a);
  }
  if (mxr_addr_parse(s, len, &a) == MXR_OK)
    return add_self_addr(o, &a);
  if (memchr(s, '\0', len) != NULL ||
      mxr_name_normalize(s, len, name, NULL, 0) != MXR_OK || name[0] == '\0' ||
      !host_name_chars(name))
    return opt_error(err, errlen, "self: not a host name or address", s, len);
  if (grow(&o->self_names, &o->cap_self_names, o->nself_names + 1,
           sizeof *o->self_names) != 0)
    return MXR_ENOMEM;
  memcpy(o->self_names[o->nself_names++], name, MXR_NAME_BUF);
  return MXR_OK;
}

void mxr_opts_ignore_clear(mxr_opts *o) {
  if (o)
    o->nignore[0] = o->nignore[1] = 0;
}

mxr_status mxr_opts_ignore_add(mxr_opts *o, const char *cidr, size_t len,
                               char *err, size_t errlen) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  mxr_cidr c;
  gcidr g;
  int f;
  if (o == NULL || cidr == NULL ||
      mxr_cidr_parse(cidr, len, &c) != MXR_OK)
    return opt_error(err, errlen, "ignore_targets: not a CIDR", cidr, len);
  memset(&g, 0, sizeof g);
  g.family = c.addr.family;
  g.bits = c.bits;
  if (c.addr.family == 6 && c.bits >= 96 &&
      memcmp(c.addr.bytes, mapped, sizeof mapped) == 0) {
    g.family = 4;
    g.bits = c.bits - 96u;
    memcpy(g.net, c.addr.bytes + 12, 4);
  } else {
    memcpy(g.net, c.addr.bytes, sizeof g.net);
  }
  f = g.family == 6;
  if (grow(&o->ignore[f], &o->cap_ignore[f], o->nignore[f] + 1,
           sizeof *o->ignore[f]) != 0)
    return MXR_ENOMEM;
  o->ignore[f][o->nignore[f]++] = g;
  return MXR_OK;
}

void mxr_opts_set_family(mxr_opts *o, mxr_family f) {
  if (o && (f == MXR_FAMILY_ANY || f == MXR_FAMILY_IPV4 ||
            f == MXR_FAMILY_IPV6))
    o->family = f;
}

void mxr_opts_set_prefer(mxr_opts *o, mxr_prefer p) {
  if (o && (p == MXR_PREFER_NONE || p == MXR_PREFER_IPV4 ||
            p == MXR_PREFER_IPV6))
    o->prefer = p;
}

void mxr_opts_set_allow_mx_to_ip(mxr_opts *o, int on) {
  if (o)
    o->allow_mx_to_ip = on != 0;
}

mxr_status mxr_opts_set_max_hosts(mxr_opts *o, size_t n) {
  if (o == NULL || n == 0)
    return MXR_EBADOPT;
  o->max_hosts = n;
  return MXR_OK;
}

mxr_status mxr_opts_set_max_addrs(mxr_opts *o, size_t n) {
  if (o == NULL || n == 0)
    return MXR_EBADOPT;
  o->max_addrs = n;
  return MXR_OK;
}

static int self_name(const mxr_opts *o, const char *name) {
  size_t i;
  for (i = 0; i < o->nself_names; i++)
    if (mxr_name_equal(o->self_names[i], name))
      return 1;
  return 0;
}

static int self_addr(const mxr_opts *o, const mxr_addr *a) {
  size_t i;
  for (i = 0; i < o->nself_addrs; i++)
    if (mxr_addr_equal(&o->self_addrs[i], a))
      return 1;
  return 0;
}

static int is_v4mapped(const mxr_addr *a) {
  static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return memcmp(a->bytes, prefix, sizeof prefix) == 0;
}

/* Whether a is in one of the guard's prefixes: what mxr_cidr_contains
 * says for each, the address read once (an IPv4-mapped one as the IPv4
 * address it carries) and compared with the prefixes of its family. */
static int ignored(const mxr_opts *o, const mxr_addr *a) {
  const uint8_t *x = a->bytes;
  int xf = a->family;
  size_t i;
  if (xf == 6 && is_v4mapped(a)) {
    xf = 4;
    x += 12;
  } else if (xf != 4 && xf != 6) {
    return 0;
  }
  for (i = 0; i < o->nignore[xf == 6]; i++) {
    const gcidr *g = &o->ignore[xf == 6][i];
    unsigned k, full = g->bits / 8;
    for (k = 0; k < full && g->net[k] == x[k]; k++)
      ;
    if (k < full)
      continue;
    if (g->bits % 8) {
      uint8_t m = (uint8_t)(0xffu << (8 - g->bits % 8));
      if ((g->net[k] & m) != (x[k] & m))
        continue;
    }
    return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* plan                                                                */

enum { PS_NOINPUT, PS_WAIT_MX, PS_ADDRS, PS_DONE };

typedef struct ihost {
  const char *name; /* normalised, in the plan's parts */
  uint16_t pref;
  size_t level;          /* index in p->levels */
  unsigned char lookup;  /* wants A/AAAA lookups (index in p->lk) */
  unsigned char settled; /* final: addrs and skip known */
  unsigned char self;    /* one of its addresses is ours */
  unsigned char fed[2];  /* [0] A, [1] AAAA */
  mxr_status st[2];
  mxr_addr *raw[2];
  size_t nraw[2];
  mxr_addr *addrs; /* final, delivery order */
  size_t naddrs;
  mxr_status skip; /* MXR_OK: usable */
  mxr_rng rng;     /* address shuffle, seeded in set_mx */
} ihost;

/* A preference level: hosts[start..end) share one preference. */
typedef struct plevel {
  size_t start, end;
  size_t unsettled; /* hosts of the level not settled yet */
} plevel;

/* A crit-bit tree node over 16-octet address keys (mxr_addr_key). A
 * reference is (index << 1) | 1 for a leaf, the index of a target in
 * p->targets, and index << 1 for a node in p->cb. */
typedef struct cbnode {
  size_t child[2];
  size_t byte;    /* the octet holding the critical bit */
  unsigned other; /* every bit but the critical one set */
} cbnode;

/* A record skipped before it became a host: "." or a broken name. */
typedef struct pskip {
  char name[MXR_NAME_BUF];
  uint16_t pref;
  mxr_status code;
} pskip;

/* A block of plan parts (palloc). */
typedef struct pblock {
  struct pblock *next;
  size_t cap, used;
  union palign data[]; /* cap octets */
} pblock;

struct mxr_plan {
  const mxr_opts *opts;
  unsigned char own; /* mxr_plan_new's: freed with the plan; else its
                        memory is the caller's (mxr_plan_init) */
  unsigned char state;
  unsigned char complete;
  char *input;
  mxr_status status;
  int implicit;
  ihost *hosts;
  size_t nhosts;
  size_t *lk; /* lookup index -> host index */
  size_t nlk;
  pskip *pre;
  size_t npre;
  unsigned self_pref; /* NO_SELF, or our lowest preference */
  int need[2];        /* A / AAAA lookups are asked (need_family) */
  plevel *levels;
  size_t nlevels;
  size_t nfinal;      /* levels appended to targets */
  mxr_target *targets;
  size_t ntargets, cap_targets;
  cbnode *cb;         /* crit-bit tree of the targets' address keys */
  size_t ncb, cap_cb, cbroot;
  mxr_host *rhosts;
  size_t nrhosts;
  mxr_skip *rskip;
  size_t nrskip;
  /* Plan parts (hosts, names, addresses, levels, the result's lists,
   * a failure's message) come from blocks freed with the plan: usually
   * one, taken in set_mx for what the plan will likely need. */
  pblock *blocks;
  /* "" until the plan fails: then the message, at its length, among the
   * plan's parts (or, when even that is out of memory, the status's
   * constant text), so that a plan in flight holds no message buffer */
  const char *message;
  char *domain; /* normalised, after the input text */
  /* then the input text (input points there), then the domain */
};

/* Make sure the current block has size octets free: else a block of
 * that size, or of least octets if more, becomes the current one. -1 on
 * OOM. */
static int preserve(mxr_plan *p, size_t size, size_t least) {
  pblock *b = p->blocks, *nb;
  size_t cap = size > least ? size : least;
  if (b != NULL && size <= b->cap - b->used)
    return 0;
  if (cap > SIZE_MAX - offsetof(pblock, data))
    return -1;
  nb = mxr_malloc(offsetof(pblock, data) + cap);
  if (nb == NULL)
    return -1;
  nb->cap = cap;
  nb->used = 0;
  /* the block with more room left is the one to draw from next */
  if (b == NULL || cap - size > b->cap - b->used) {
    nb->next = b;
    p->blocks = nb;
  } else {
    nb->next = b->next;
    b->next = nb;
  }
  return 0;
}

/* size octets of plan parts, aligned for any of them (a new block, when
 * one is needed, of least octets if more); NULL on OOM. Freed
 * with the plan only: what a plan holds is bounded by what it was fed. */
static void *palloc_in(mxr_plan *p, size_t size, size_t least) {
  pblock *b;
  void *r;
  if (size > SIZE_MAX - sizeof(union palign))
    return NULL;
  size = (size + sizeof(union palign) - 1) / sizeof(union palign) *
         sizeof(union palign);
  if (preserve(p, size, least) != 0)
    return NULL;
  b = p->blocks;
  if (size > b->cap - b->used)
    b = b->next; /* the new block, placed second */
  r = (char *)b->data + b->used;
  b->used += size;
  return r;
}

static void *palloc(mxr_plan *p, size_t size) {
  return palloc_in(p, size, PLAN_BLOCK);
}

/* n elements of size octets, zeroed; NULL on OOM or overflow. */
static void *pcalloc(mxr_plan *p, size_t n, size_t size) {
  void *r;
  if (size && n > SIZE_MAX / size)
    return NULL;
  r = palloc(p, n * size);
  if (r)
    memset(r, 0, n * size);
  return r;
}

static void *parray(mxr_plan *p, size_t n, size_t size) {
  if (size && n > SIZE_MAX / size)
    return NULL;
  return palloc(p, n * size);
}

/* A copy of the string s among the plan's parts. */
static char *pstrdup(mxr_plan *p, const char *s) {
  size_t n = strlen(s) + 1;
  char *r = palloc(p, n);
  if (r)
    memcpy(r, s, n);
  return r;
}

/* The message text (at most MXR_MSG_BUF octets with its NUL), kept at
 * its length among the plan's parts. Set after p->status: out of memory
 * for it, the message is that status's constant text. */
static void keep_message(mxr_plan *p, const char *text) {
  size_t n = strlen(text) + 1;
  char *m;
  if (n == 1) {
    p->message = "";
    return;
  }
  m = palloc_in(p, n, 0);
  if (m == NULL) {
    p->message = mxr_status_text(p->status);
    return;
  }
  memcpy(m, text, n);
  p->message = m;
}

/* "<domain>: <text>" as the message. */
static void set_message(mxr_plan *p, mxr_status st, const char *detail) {
  char buf[MXR_MSG_BUF];
  if (p->domain[0])
    snprintf(buf, sizeof buf, "%s: %s", p->domain,
             detail ? detail : mxr_status_text(st));
  else
    snprintf(buf, sizeof buf, "%s", detail ? detail : mxr_status_text(st));
  keep_message(p, buf);
}

/* The plan is complete: the crit-bit tree of its targets is not needed
 * any more (no target is appended after), and a complete plan may be
 * kept long after (until a collector frees its Lua query). */
static void drop_cb(mxr_plan *p) {
  mxr_free(p->cb);
  p->cb = NULL;
  p->ncb = p->cap_cb = 0;
}

/* A hard failure: no hosts, no targets; the message is the caller's. */
static void plan_end(mxr_plan *p, mxr_status st) {
  drop_cb(p);
  p->status = st;
  p->complete = 1;
  p->state = PS_DONE;
  p->ntargets = 0;
  p->nrhosts = 0;
  p->nrskip = 0;
}

/* A hard failure with its message. Needs no allocation to report it
 * (see keep_message). */
static void plan_fail(mxr_plan *p, mxr_status st, const char *detail) {
  plan_end(p, st);
  set_message(p, st, detail);
}

static mxr_status oom(mxr_plan *p) {
  plan_fail(p, MXR_ENOMEM, NULL);
  return MXR_ENOMEM;
}

void mxr_plan_free(mxr_plan *p) {
  pblock *b;
  if (p == NULL)
    return;
  mxr_free(p->targets);
  mxr_free(p->cb);
  while ((b = p->blocks) != NULL) {
    p->blocks = b->next;
    mxr_free(b);
  }
  if (p->own)
    mxr_free(p);
}

/* Sort base[0..n): by insertion for the short lists of a usual plan,
 * qsort beyond (n log n for large inputs). Each order used is total up
 * to equal elements (equal in every field), so both give the same list.
 * tmp: size octets. */
#define SHORT_SORT 12
static void sort(void *base, size_t n, size_t size,
                 int (*cmp)(const void *, const void *), void *tmp) {
  char *b = base;
  size_t i, j;
  if (n > SHORT_SORT) {
    qsort(base, n, size, cmp);
    return;
  }
  for (i = 1; i < n; i++) {
    if (cmp(b + (i - 1) * size, b + i * size) <= 0)
      continue;
    memcpy(tmp, b + i * size, size);
    for (j = i - 1; j > 0 && cmp(b + (j - 1) * size, tmp) > 0; j--)
      ;
    memmove(b + (j + 1) * size, b + j * size, (i - j) * size);
    memcpy(b + j * size, tmp, size);
  }
}

/* Canonical address order: by identity key, an IPv4 address before its
 * IPv4-mapped twin (so de-duplication keeps the plain IPv4 form). */
static int addr_cmp(const void *va, const void *vb) {
  const mxr_addr *a = va, *b = vb;
  uint8_t ka[16], kb[16];
  int c;
  mxr_addr_key(a, ka);
  mxr_addr_key(b, kb);
  c = memcmp(ka, kb, 16);
  if (c)
    return c;
  return (int)a->family - (int)b->family;
}


/* Family f (0: A, 1: AAAA) gives usable addresses under the filter. */
static int use_family(const mxr_plan *p, int f) {
  mxr_family fam = p->opts->family;
  return f == 0 ? fam != MXR_FAMILY_IPV6 : fam != MXR_FAMILY_IPV4;
}

/* Family f is asked: usable, or (rule 8) filtered out but one of our own
 * addresses could show up in it, so that a host is recognised as us on
 * every address it has, whatever the filter. An IPv4 address may come
 * back in an AAAA answer in its IPv4-mapped form (RFC 4291 2.5.5.2), so
 * any self address means AAAA; only an IPv4 (or IPv4-mapped) one means
 * A. Computed once per plan (set_mx): O(self) here, O(1) per lookup. */
static int need_family(const mxr_plan *p, int f) {
  const mxr_opts *o = p->opts;
  size_t i;
  if (use_family(p, f))
    return 1;
  if (f == 1)
    return o->nself_addrs > 0;
  for (i = 0; i < o->nself_addrs; i++) {
    const mxr_addr *a = &o->self_addrs[i];
    if (a->family == 4 || is_v4mapped(a))
      return 1;
  }
  return 0;
}

/* Settling a host: its A and AAAA outcomes become the final address list
 * (rules 7, 8, 11, 12) and its skip code (rule 9). The addresses go
 * through a named pipeline of stages, in this order:
 *
 *   dedup -> self -> shuffle -> family -> guard -> prefer -> cap
 *
 * Each stage works in place on the candidate list; only dedup sorts
 * (O(n log n)), the others are linear, so a host costs O(n log n) in its
 * addresses. The order matters: dedup puts the list in canonical order
 * before the shuffle (the plan does not depend on the order of the
 * answers), self looks at every address before any filter (rule 8), and
 * the skip code needs to know whether the family filter left anything
 * (nfam) before the guard ran. */
typedef struct alist {
  mxr_addr *v;
  size_t n;    /* candidates left */
  size_t nfam; /* candidates the family filter kept (for the skip code) */
} alist;

typedef mxr_status (*settle_stage)(const mxr_plan *p, ihost *h, alist *a);

/* Canonical order, then each address once. */
static mxr_status stage_dedup(const mxr_plan *p, ihost *h, alist *a) {
  size_t i, k;
  (void)p;
  (void)h;
  if (a->n == 0)
    return MXR_OK;
  {
    mxr_addr tmp;
    sort(a->v, a->n, sizeof *a->v, addr_cmp, &tmp);
  }
  for (i = 1, k = 1; i < a->n; i++)
    if (!mxr_addr_equal(&a->v[i], &a->v[k - 1]))
      a->v[k++] = a->v[i];
  a->n = k;
  return MXR_OK;
}

/* Rule 8: any address of ours makes the host us, whatever the family
 * filter or the guard would do with it. */
static mxr_status stage_self(const mxr_plan *p, ihost *h, alist *a) {
  size_t i;
  for (i = 0; i < a->n; i++)
    if (self_addr(p->opts, &a->v[i]))
      h->self = 1;
  return MXR_OK;
}

/* Rule 7: Fisher-Yates with the host's own stream. */
static mxr_status stage_shuffle(const mxr_plan *p, ihost *h, alist *a) {
  size_t i;
  (void)p;
  for (i = a->n; i > 1; i--) {
    size_t j = (size_t)mxr_rng_below(&h->rng, i);
    mxr_addr t = a->v[i - 1];
    a->v[i - 1] = a->v[j];
    a->v[j] = t;
  }
  return MXR_OK;
}

/* The family filter (DESIGN option `family`). */
static mxr_status stage_family(const mxr_plan *p, ihost *h, alist *a) {
  mxr_family fam = p->opts->family;
  size_t i, k;
  (void)h;
  for (i = 0, k = 0; i < a->n; i++)
    if (fam == MXR_FAMILY_ANY ||
        (fam == MXR_FAMILY_IPV4) == (a->v[i].family == 4))
      a->v[k++] = a->v[i];
  a->n = a->nfam = k;
  return MXR_OK;
}

/* Rule 11: the target guard. */
static mxr_status stage_guard(const mxr_plan *p, ihost *h, alist *a) {
  size_t i, k;
  (void)h;
  for (i = 0, k = 0; i < a->n; i++)
    if (!ignored(p->opts, &a->v[i]))
      a->v[k++] = a->v[i];
  a->n = k;
  return MXR_OK;
}

/* Rule 7: prefer, a stable partition. */
static mxr_status stage_prefer(const mxr_plan *p, ihost *h, alist *a) {
  const mxr_opts *o = p->opts;
  int want;
  mxr_addr *tmp;
  size_t i, t = 0;
  (void)h;
  if (o->prefer == MXR_PREFER_NONE || a->n < 2)
    return MXR_OK;
  want = o->prefer == MXR_PREFER_IPV4 ? 4 : 6;
  tmp = mxr_reallocarray(NULL, a->n, sizeof *tmp);
  if (tmp == NULL)
    return MXR_ENOMEM;
  for (i = 0; i < a->n; i++)
    if (a->v[i].family == want)
      tmp[t++] = a->v[i];
  for (i = 0; i < a->n; i++)
    if (a->v[i].family != want)
      tmp[t++] = a->v[i];
  memcpy(a->v, tmp, a->n * sizeof *a->v);
  mxr_free(tmp);
  return MXR_OK;
}

/* Rule 12: addresses per host. */
static mxr_status stage_cap(const mxr_plan *p, ihost *h, alist *a) {
  (void)h;
  if (a->n > p->opts->max_addrs)
    a->n = p->opts->max_addrs;
  return MXR_OK;
}

static const settle_stage settle_pipeline[] = {
    stage_dedup, stage_self,   stage_shuffle, stage_family,
    stage_guard, stage_prefer, stage_cap,
};

/* The skip code of a host left without an address: a temporary failure
 * of a usable family's lookup wins (the host may well have addresses
 * there, rule 9), then IGNORED when the guard dropped what there was,
 * then NXDOMAIN, then NODATA. */
static mxr_status skip_code(const mxr_plan *p, const ihost *h, size_t nfam) {
  mxr_status perm = nfam > 0 ? MXR_EIGNORED : MXR_ENODATA;
  int f;
  for (f = 0; f < 2; f++) {
    mxr_status st = h->st[f];
    if (!h->fed[f] || !use_family(p, f) || st == MXR_OK || st == MXR_ENODATA)
      continue;
    if (mxr_status_class(st) == MXR_CLASS_TEMPORARY)
      return st;
    if (perm == MXR_ENODATA)
      perm = st;
  }
  return perm;
}

/* Settle host h: gather its A and AAAA addresses, run the pipeline, set
 * the skip code, and drop the raw outcomes. */
static mxr_status settle(mxr_plan *p, ihost *h) {
  alist a = {NULL, 0, 0};
  size_t s;
  int f;
  a.n = h->nraw[0] + h->nraw[1];
  if (a.n > 0) {
    a.v = parray(p, a.n, sizeof *a.v);
    if (a.v == NULL)
      return MXR_ENOMEM;
    if (h->nraw[0])
      memcpy(a.v, h->raw[0], h->nraw[0] * sizeof *a.v);
    if (h->nraw[1])
      memcpy(a.v + h->nraw[0], h->raw[1], h->nraw[1] * sizeof *a.v);
  }
  for (s = 0; s < sizeof settle_pipeline / sizeof settle_pipeline[0]; s++) {
    if (settle_pipeline[s](p, h, &a) != MXR_OK)
      return MXR_ENOMEM;
  }
  h->addrs = a.v;
  h->naddrs = a.n;
  h->skip = a.n > 0 ? MXR_OK : skip_code(p, h, a.nfam);
  for (f = 0; f < 2; f++) {
    h->raw[f] = NULL;
    h->nraw[f] = 0;
  }
  h->settled = 1;
  return MXR_OK;
}

/* Rule 13: add key (of the target at index leaf) to the crit-bit tree
 * unless an earlier target has it. 1: new, 0: seen before, -1: OOM. The
 * walk is bounded by the 128 bits of a key, not by the data, so hostile
 * answers cannot make it slow (a hash table could be, without a keyed
 * hash). D. J. Bernstein's crit-bit trees, as in A. Langley's notes. */
static int cb_insert(mxr_plan *p, const uint8_t key[16], size_t leaf) {
  uint8_t best[16];
  size_t ref, *where, byte, nn;
  unsigned other;
  int dir;
  if (p->ntargets == 0) {
    p->cbroot = leaf << 1 | 1;
    return 1;
  }
  if (grow(&p->cb, &p->cap_cb, p->ncb + 1, sizeof *p->cb) != 0)
    return -1;
  for (ref = p->cbroot; !(ref & 1);) {
    const cbnode *q = &p->cb[ref >> 1];
    ref = q->child[(1 + (q->other | key[q->byte])) >> 8];
  }
  mxr_addr_key(&p->targets[ref >> 1].addr, best);
  for (byte = 0; byte < 16 && key[byte] == best[byte]; byte++)
    ;
  if (byte == 16)
    return 0;
  other = (unsigned)(key[byte] ^ best[byte]);
  other |= other >> 1;
  other |= other >> 2;
  other |= other >> 4;
  other = (other & ~(other >> 1)) ^ 255u;
  dir = (int)((1 + (other | best[byte])) >> 8);
  nn = p->ncb++;
  p->cb[nn].byte = byte;
  p->cb[nn].other = other;
  p->cb[nn].child[1 - dir] = leaf << 1 | 1;
  for (where = &p->cbroot;; ) {
    cbnode *q;
    ref = *where;
    if (ref & 1)
      break;
    q = &p->cb[ref >> 1];
    if (q->byte > byte || (q->byte == byte && q->other > other))
      break;
    where = &q->child[(1 + (q->other | key[q->byte])) >> 8];
  }
  p->cb[nn].child[dir] = *where;
  *where = nn << 1;
  return 1;
}

/* Append the targets of level l (final now), each address at its first
 * occurrence only (rule 13). */
static mxr_status append_level(mxr_plan *p, const plevel *l) {
  size_t i, a;
  for (i = l->start; i < l->end; i++) {
    ihost *h = &p->hosts[i];
    if (h->skip != MXR_OK)
      continue;
    if (grow(&p->targets, &p->cap_targets, p->ntargets + h->naddrs,
             sizeof *p->targets) != 0)
      return MXR_ENOMEM;
    for (a = 0; a < h->naddrs; a++) {
      mxr_target *t = &p->targets[p->ntargets];
      uint8_t key[16];
      int r;
      t->host = h->name;
      t->pref = h->pref;
      t->addr = h->addrs[a];
      t->port = 25; /* RFC 5321 4.5.4.1: SMTP port; routes change it */
      t->fallback = 0;
      mxr_addr_key(&t->addr, key);
      r = cb_insert(p, key, p->ntargets);
      if (r < 0)
        return MXR_ENOMEM;
      if (r > 0)
        p->ntargets++;
    }
  }
  return MXR_OK;
}

static void add_skip(mxr_plan *p, const char *name, uint16_t pref,
                     mxr_status code) {
  mxr_skip *s = &p->rskip[p->nrskip++];
  s->name = name;
  s->pref = pref;
  s->code = code;
}

/* The NOHOSTS message: why each host was skipped, as far as fits. */
static void nohosts_message(mxr_plan *p) {
  char m[MXR_MSG_BUF];
  size_t i, o;
  int r;
  if (p->nrskip == 0) {
    set_message(p, MXR_ENOHOSTS, NULL);
    return;
  }
  r = snprintf(m, sizeof m, "%s: %s (", p->domain,
               mxr_status_text(MXR_ENOHOSTS));
  o = (size_t)r;
  for (i = 0; i < p->nrskip; i++) {
    const mxr_skip *s = &p->rskip[i];
    size_t need = strlen(s->name) + strlen(mxr_status_name(s->code)) + 4;
    if (o + need + 8 >= sizeof m) {
      o += (size_t)snprintf(m + o, sizeof m - o, "%s...", i ? ", " : "");
      break;
    }
    o += (size_t)snprintf(m + o, sizeof m - o, "%s%s: %s", i ? ", " : "",
                          s->name, mxr_status_name(s->code));
  }
  snprintf(m + o, sizeof m - o, ")");
  keep_message(p, m);
}

/* Everything needed is settled: the result (rules 8, 9). */
static mxr_status finish(mxr_plan *p) {
  size_t i, q = 0, nbelow = 0, ntemp = 0;
  p->complete = 1;
  p->state = PS_DONE;
  drop_cb(p);
  p->rhosts = parray(p, p->nhosts ? p->nhosts : 1, sizeof *p->rhosts);
  p->rskip = parray(p, p->nhosts + p->npre ? p->nhosts + p->npre : 1,
                    sizeof *p->rskip);
  if (p->rhosts == NULL || p->rskip == NULL)
    return oom(p);
  p->nrhosts = p->nrskip = 0;
  /* Skips in delivery order: merge the hosts with the records that never
   * became hosts ("." and broken names), both sorted by preference. */
  for (i = 0; i <= p->nhosts; i++) {
    const ihost *h = i < p->nhosts ? &p->hosts[i] : NULL;
    while (q < p->npre && p->pre[q].pref < p->self_pref &&
           (h == NULL || p->pre[q].pref < h->pref)) {
      add_skip(p, p->pre[q].name, p->pre[q].pref, p->pre[q].code);
      q++;
    }
    if (h == NULL || h->pref >= p->self_pref)
      continue;
    nbelow++;
    if (h->skip != MXR_OK) {
      add_skip(p, h->name, h->pref, h->skip);
    } else {
      mxr_host *r = &p->rhosts[p->nrhosts++];
      r->name = h->name;
      r->pref = h->pref;
      r->addrs = h->addrs;
      r->naddrs = h->naddrs;
    }
  }
  if (p->self_pref != NO_SELF && nbelow == 0) {
    /* Rule 8: we are the best MX (implicit MX included). */
    char d[64];
    snprintf(d, sizeof d,
             "this host is the best mail exchanger (preference %u)",
             p->self_pref);
    p->status = MXR_ELOOP;
    set_message(p, MXR_ELOOP, d);
    return MXR_OK;
  }
  if (p->ntargets > 0) {
    p->status = MXR_OK;
    p->message = "";
    return MXR_OK;
  }
  /* Rule 9: no usable host. Temporary beats permanent. */
  for (i = 0; i < p->nrskip; i++) {
    const mxr_skip *s = &p->rskip[i];
    if (mxr_status_class(s->code) == MXR_CLASS_TEMPORARY) {
      if (ntemp++ == 0) {
        char m[MXR_MSG_BUF];
        p->status = s->code;
        if (mxr_name_equal(s->name, p->domain)) /* implicit MX, [host] */
          snprintf(m, sizeof m, "%s: %s", p->domain,
                   mxr_status_text(s->code));
        else
          snprintf(m, sizeof m, "%s: %s: %s", p->domain, s->name,
                   mxr_status_text(s->code));
        keep_message(p, m);
      }
    }
  }
  if (ntemp == 0) {
    p->status = MXR_ENOHOSTS;
    nohosts_message(p);
  }
  return MXR_OK;
}

/* Hosts[] is final and sorted (set_mx, or the literal): group it into
 * preference levels and count what each still waits for. */
static mxr_status make_levels(mxr_plan *p) {
  size_t i;
  p->levels = pcalloc(p, p->nhosts ? p->nhosts : 1, sizeof *p->levels);
  if (p->levels == NULL)
    return MXR_ENOMEM;
  for (i = 0; i < p->nhosts; i++) {
    ihost *h = &p->hosts[i];
    plevel *l;
    if (i == 0 || h->pref != p->hosts[i - 1].pref) {
      l = &p->levels[p->nlevels++];
      l->start = i;
    }
    l = &p->levels[p->nlevels - 1];
    l->end = i + 1;
    h->level = p->nlevels - 1;
    if (!h->settled)
      l->unsettled++;
    else if (h->self && h->pref < p->self_pref)
      p->self_pref = h->pref;
  }
  return MXR_OK;
}

/* After any feeding: append every level that became final and, once
 * every level below our own preference is settled, the result. Each
 * level is passed over once in the life of the plan. */
static mxr_status refresh(mxr_plan *p) {
  if (p->complete)
    return MXR_OK;
  while (p->nfinal < p->nlevels) {
    const plevel *l = &p->levels[p->nfinal];
    if (p->hosts[l->start].pref >= p->self_pref || l->unsettled > 0)
      break;
    if (append_level(p, l) != MXR_OK)
      return oom(p);
    p->nfinal++;
  }
  if (p->nfinal < p->nlevels &&
      p->hosts[p->levels[p->nfinal].start].pref < p->self_pref)
    return MXR_OK; /* a level below us still waits for lookups */
  return finish(p);
}

size_t mxr_plan_size(const mxr_input *in, size_t input_len) {
  size_t dlen = in != NULL ? strnlen(in->domain, MXR_NAME_BUF - 1) : 0;
  if (input_len > SIZE_MAX - sizeof(mxr_plan) - dlen - 2)
    return 0;
  return sizeof(mxr_plan) + input_len + 1 + dlen + 1;
}

/* The plan in p (mxr_plan_size octets; own: p is the plan's to free). */
static mxr_plan *plan_setup(mxr_plan *p, int own, const mxr_input *in,
                            const char *input_text, size_t input_len,
                            const mxr_opts *opts) {
  size_t dlen = in != NULL ? strnlen(in->domain, MXR_NAME_BUF - 1) : 0;
  memset(p, 0, sizeof *p);
  p->own = (unsigned char)(own != 0);
  p->message = "";
  p->opts = opts;
  p->self_pref = NO_SELF;
  p->status = MXR_OK;
  p->input = (char *)(p + 1);
  if (input_len)
    memcpy(p->input, input_text, input_len);
  p->input[input_len] = '\0';
  /* the domain at its length after the input ("" without input) */
  p->domain = p->input + input_len + 1;
  memcpy(p->domain, in != NULL ? in->domain : "", dlen);
  p->domain[dlen] = '\0';
  if (in == NULL) {
    p->state = PS_NOINPUT;
    return p;
  }
  if (in->kind == MXR_INPUT_LITERAL) {
    /* RFC 5321 5.1: a literal is the one host, no DNS. */
    ihost *h;
    int f = in->addr.family == 6;
    p->hosts = pcalloc(p, 1, sizeof *p->hosts);
    if (p->hosts == NULL)
      goto nomem;
    p->nhosts = 1;
    h = &p->hosts[0];
    h->name = p->domain;
    h->raw[f] = palloc(p, sizeof *h->raw[f]);
    if (h->raw[f] == NULL)
      goto nomem;
    h->raw[f][0] = in->addr;
    h->nraw[f] = 1;
    h->fed[f] = 1;
    if (settle(p, h) != MXR_OK || make_levels(p) != MXR_OK)
      goto nomem;
    p->state = PS_ADDRS;
    if (refresh(p) != MXR_OK)
      goto nomem;
    return p;
  }
  p->state = PS_WAIT_MX;
  return p;
nomem:
  mxr_plan_free(p);
  return NULL;
}

mxr_plan *mxr_plan_new(const mxr_input *in, const char *input_text,
                       size_t input_len, const mxr_opts *opts) {
  size_t size;
  mxr_plan *p;
  if (in != NULL && opts == NULL)
    return NULL;
  if (input_text == NULL)
    input_len = 0;
  if ((size = mxr_plan_size(in, input_len)) == 0 ||
      (p = mxr_malloc(size)) == NULL)
    return NULL;
  return plan_setup(p, 1, in, input_text, input_len, opts);
}

mxr_plan *mxr_plan_init(void *mem, const mxr_input *in,
                        const char *input_text, size_t input_len,
                        const mxr_opts *opts) {
  if (mem == NULL || (in != NULL && opts == NULL))
    return NULL;
  if (input_text == NULL)
    input_len = 0;
  return plan_setup(mem, 0, in, input_text, input_len, opts);
}

static int host_name_cmp(const void *va, const void *vb) {
  const ihost *a = va, *b = vb;
  int c = strcmp(a->name, b->name);
  if (c)
    return c;
  return (int)a->pref - (int)b->pref;
}

static int host_pref_cmp(const void *va, const void *vb) {
  const ihost *a = va, *b = vb;
  if (a->pref != b->pref)
    return (int)a->pref - (int)b->pref;
  return strcmp(a->name, b->name);
}

/* Records into hosts: normalised, "." and broken names set aside,
 * each name once at its lowest preference (rules 4, 5). */
static mxr_status collect_mx(mxr_plan *p, const mxr_mx *mx, size_t n) {
  size_t i, k = 0, ndots = 0, nbad = 0;
  uint16_t dotpref = 0;
  ihost tmp;
  char nm[MXR_NAME_BUF];
  p->hosts = pcalloc(p, n, sizeof *p->hosts);
  if (p->hosts == NULL)
    return MXR_ENOMEM;
  /* p->pre (n entries, enough for every record) is made when needed */
  for (i = 0; i < n; i++) {
    ihost *h = &p->hosts[k];
    if (mx[i].name == NULL || memchr(mx[i].name, '\0', mx[i].len) != NULL ||
        mxr_name_normalize(mx[i].name, mx[i].len, nm, NULL, 0) != MXR_OK) {
      /* Broken DNS data: reported, treated as a failed answer. */
      pskip *s;
      if (p->pre == NULL && (p->pre = parray(p, n, sizeof *p->pre)) == NULL)
        return MXR_ENOMEM;
      s = &p->pre[p->npre++];
      mxr_escape(s->name, sizeof s->name, mx[i].name ? mx[i].name : "",
                 mx[i].name ? mx[i].len : 0, 200);
      s->pref = mx[i].pref;
      s->code = MXR_EFORMERR;
      nbad++;
    } else if (nm[0] == '\0') {
      if (ndots++ == 0 || mx[i].pref < dotpref)
        dotpref = mx[i].pref;
    } else {
      if ((h->name = pstrdup(p, nm)) == NULL)
        return MXR_ENOMEM;
      h->pref = mx[i].pref;
      k++;
    }
  }
  if (k == 0 && nbad == 0) {
    /* RFC 7505 3: only "." records: the domain accepts no mail. */
    plan_fail(p, MXR_ENULLMX, NULL);
    return MXR_OK;
  }
  if (ndots > 0) {
    /* RFC 7505 3: "." beside real MX records is just an unusable one. */
    pskip *s;
    if (p->pre == NULL && (p->pre = parray(p, n, sizeof *p->pre)) == NULL)
      return MXR_ENOMEM;
    s = &p->pre[p->npre++];
    strcpy(s->name, ".");
    s->pref = dotpref;
    s->code = MXR_ENULLMX;
  }
  sort(p->hosts, k, sizeof *p->hosts, host_name_cmp, &tmp);
  p->nhosts = 0;
  for (i = 0; i < k; i++)
    if (p->nhosts == 0 ||
        strcmp(p->hosts[p->nhosts - 1].name, p->hosts[i].name) != 0)
      p->hosts[p->nhosts++] = p->hosts[i];
  return MXR_OK;
}

static int pskip_cmp(const void *va, const void *vb) {
  const pskip *a = va, *b = vb;
  if (a->pref != b->pref)
    return (int)a->pref - (int)b->pref;
  return strcmp(a->name, b->name);
}

/* One block for what the plan will likely need: its hosts, their names,
 * lookups, levels, result lists and PLAN_ADDRS octets of addresses each
 * (more is taken as needed). -1 on OOM. */
static int reserve_for(mxr_plan *p, const mxr_mx *mx, size_t n) {
  size_t m = n ? n : 1, need, k;
  if (n > 65535)
    return 0; /* taken as needed */
  need = m * (sizeof(ihost) + sizeof(size_t) + sizeof(plevel) +
              sizeof(mxr_host) + sizeof(mxr_skip) + PLAN_ADDRS) +
         8 * sizeof(union palign);
  if (n == 0)
    need += MXR_NAME_BUF;
  for (k = 0; k < n; k++)
    need += (mx[k].len < MXR_NAME_BUF ? mx[k].len : MXR_NAME_BUF) +
            sizeof(union palign);
  return preserve(p, need, PLAN_BLOCK);
}

/* Rule 3: the implicit MX, the domain (after CNAMEs, canon) at pref 0.
 * MXR_OK also when the plan failed on a bad name (p->complete). */
static mxr_status implicit_mx(mxr_plan *p, const char *canon) {
  const char *c = canon ? canon : p->domain;
  char nm[MXR_NAME_BUF];
  p->hosts = pcalloc(p, 1, sizeof *p->hosts);
  if (p->hosts == NULL)
    return MXR_ENOMEM;
  if (mxr_name_normalize(c, strlen(c), nm, NULL, 0) != MXR_OK ||
      nm[0] == '\0') {
    plan_fail(p, MXR_EFORMERR, "bad canonical name in the answer");
    return MXR_OK;
  }
  if ((p->hosts[0].name = pstrdup(p, nm)) == NULL)
    return MXR_ENOMEM;
  p->nhosts = 1;
  p->implicit = 1;
  return MXR_OK;
}

/* Rule 6: ascending preference; a canonical order first so the input
 * order of the records does not matter, then Fisher-Yates within each
 * preference. */
static void order_hosts(mxr_plan *p, mxr_rng *rng) {
  size_t i, j;
  ihost tmp;
  sort(p->hosts, p->nhosts, sizeof *p->hosts, host_pref_cmp, &tmp);
  for (i = 0; i < p->nhosts; i = j) {
    size_t m;
    for (j = i; j < p->nhosts && p->hosts[j].pref == p->hosts[i].pref; j++)
      ;
    for (m = j - i; m > 1; m--) {
      size_t r = (size_t)mxr_rng_below(rng, m);
      ihost t = p->hosts[i + m - 1];
      p->hosts[i + m - 1] = p->hosts[i + r];
      p->hosts[i + r] = t;
    }
  }
}

/* Rule 8 by name: hosts at and above our preference are dropped now and
 * never looked up. */
static void drop_self(mxr_plan *p) {
  size_t i;
  for (i = 0; i < p->nhosts; i++)
    if (self_name(p->opts, p->hosts[i].name)) {
      p->self_pref = p->hosts[i].pref;
      break;
    }
  while (p->nhosts > 0 && p->hosts[p->nhosts - 1].pref >= p->self_pref)
    p->nhosts--;
}

/* Each host: skipped beyond max_hosts, its own address (rule 10), or a
 * host to look up (p->lk). MXR_ENOMEM or MXR_OK. */
static mxr_status start_hosts(mxr_plan *p, mxr_rng *rng) {
  size_t i;
  p->lk = parray(p, p->nhosts ? p->nhosts : 1, sizeof *p->lk);
  if (p->lk == NULL)
    return MXR_ENOMEM;
  p->need[0] = need_family(p, 0);
  p->need[1] = need_family(p, 1);
  for (i = 0; i < p->nhosts; i++) {
    ihost *h = &p->hosts[i];
    mxr_addr a;
    mxr_rng_seed(&h->rng, mxr_rng_next(rng));
    if (i >= p->opts->max_hosts) {
      /* Rule 12: beyond the limit, reported, never looked up. */
      h->skip = MXR_ETOOMANY;
      h->settled = 1;
    } else if (p->opts->allow_mx_to_ip &&
               mxr_addr_parse(h->name, strlen(h->name), &a) == MXR_OK) {
      /* Rule 10: the exchange is used as the address. */
      int f = a.family == 6;
      h->raw[f] = palloc(p, sizeof *h->raw[f]);
      if (h->raw[f] == NULL)
        return MXR_ENOMEM;
      h->raw[f][0] = a;
      h->nraw[f] = 1;
      h->fed[f] = 1;
      if (settle(p, h) != MXR_OK)
        return MXR_ENOMEM;
    } else {
      h->lookup = 1;
      p->lk[p->nlk++] = i;
    }
  }
  return MXR_OK;
}

mxr_status mxr_plan_set_mx(mxr_plan *p, mxr_status st, const char *canon,
                           const mxr_mx *mx, size_t n, mxr_rng *rng) {
  if (p == NULL || p->state != PS_WAIT_MX)
    return MXR_EBADOPT;
  if (st != MXR_OK && st != MXR_ENODATA) {
    /* Rule 2: never fall back to A/AAAA on a failure. */
    plan_fail(p, st, NULL);
    return MXR_OK;
  }
  if (rng == NULL || (n > 0 && mx == NULL))
    return MXR_EBADOPT;
  if (reserve_for(p, mx, n) != 0)
    return oom(p);
  if (st == MXR_ENODATA || n == 0) {
    if (implicit_mx(p, canon) != MXR_OK)
      return oom(p);
  } else {
    pskip tmp;
    if (collect_mx(p, mx, n) != MXR_OK)
      return oom(p);
    if (!p->complete)
      sort(p->pre, p->npre, sizeof *p->pre, pskip_cmp, &tmp);
  }
  if (p->complete)
    return MXR_OK; /* null MX, or a bad canonical name */
  order_hosts(p, rng);
  drop_self(p);
  if (start_hosts(p, rng) != MXR_OK || make_levels(p) != MXR_OK)
    return oom(p);
  p->state = PS_ADDRS;
  return refresh(p);
}

size_t mxr_plan_host_count(const mxr_plan *p) { return p ? p->nlk : 0; }

const char *mxr_plan_domain(const mxr_plan *p) {
  return p ? p->domain : NULL;
}

const char *mxr_plan_host_name(const mxr_plan *p, size_t i) {
  if (p == NULL || i >= p->nlk)
    return NULL;
  return p->hosts[p->lk[i]].name;
}

int mxr_plan_host_wants(const mxr_plan *p, size_t i, int family) {
  const ihost *h;
  int f;
  if (p == NULL || p->complete || i >= p->nlk ||
      (family != 4 && family != 6))
    return 0;
  f = family == 6;
  h = &p->hosts[p->lk[i]];
  return !h->settled && h->pref < p->self_pref && p->need[f] && !h->fed[f];
}

/* Late answers (the plan completed or the host stopped mattering while a
 * query was in flight) are accepted and ignored; feeding the same lookup
 * twice is misuse. */
mxr_status mxr_plan_set_addrs(mxr_plan *p, size_t i, int family,
                              mxr_status st, const mxr_addr *a, size_t n) {
  ihost *h;
  int f;
  size_t k;
  if (p == NULL || (p->state != PS_ADDRS && p->state != PS_DONE) ||
      i >= p->nlk || (family != 4 && family != 6) || (n > 0 && a == NULL))
    return MXR_EBADOPT;
  if (st == MXR_OK)
    for (k = 0; k < n; k++)
      if (a[k].family != family)
        return MXR_EBADOPT;
  f = family == 6;
  h = &p->hosts[p->lk[i]];
  if (h->fed[f])
    return MXR_EBADOPT;
  h->fed[f] = 1;
  h->st[f] = st;
  if (p->complete || h->settled || h->pref >= p->self_pref || !p->need[f])
    return MXR_OK;
  if (st == MXR_OK && n > 0) {
    h->raw[f] = parray(p, n, sizeof *a);
    if (h->raw[f] == NULL)
      return oom(p);
    memcpy(h->raw[f], a, n * sizeof *a);
    h->nraw[f] = n;
  }
  if ((h->fed[0] || !p->need[0]) && (h->fed[1] || !p->need[1])) {
    if (settle(p, h) != MXR_OK)
      return oom(p);
    p->levels[h->level].unsettled--;
    /* Rule 8: a host of ours drops its level and every later one. */
    if (h->self && h->pref < p->self_pref)
      p->self_pref = h->pref;
  }
  return refresh(p);
}

int mxr_plan_complete(const mxr_plan *p) { return p ? p->complete : 0; }

size_t mxr_plan_ready(const mxr_plan *p) { return p ? p->ntargets : 0; }

const mxr_target *mxr_plan_target(const mxr_plan *p, size_t i) {
  if (p == NULL || i >= p->ntargets)
    return NULL;
  return &p->targets[i];
}

mxr_status mxr_plan_result(mxr_plan *p, mxr_result *out) {
  if (p == NULL || out == NULL || !p->complete)
    return MXR_EBADOPT;
  memset(out, 0, sizeof *out);
  out->status = p->status;
  out->message = p->message;
  out->input = p->input;
  out->domain = p->domain;
  out->implicit = p->implicit;
  out->hosts = p->rhosts;
  out->nhosts = p->nrhosts;
  out->targets = p->targets;
  out->ntargets = p->ntargets;
  out->skipped = p->rskip;
  out->nskipped = p->nrskip;
  out->has_self_pref = p->self_pref != NO_SELF;
  out->self_pref = (uint16_t)(p->self_pref & 0xffffu);
  return MXR_OK;
}

void mxr_plan_abort(mxr_plan *p, mxr_status st, const char *message) {
  if (p == NULL || p->complete)
    return;
  if (st == MXR_OK)
    st = MXR_ECANCELLED;
  if (message) {
    char m[MXR_MSG_BUF];
    plan_end(p, st);
    mxr_escape(m, sizeof m, message, strlen(message), sizeof m);
    keep_message(p, m);
  } else {
    plan_fail(p, st, NULL);
  }
}
