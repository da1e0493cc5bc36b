/*
 * cache.c — RRsets remembered for their TTL (DESIGN 8).
 *
 * A bounded LRU map from (normalised name, type) to what a checked answer
 * told the resolution: the records, or none (NODATA), or NXDOMAIN, and
 * where the CNAME chain ended. Plans are never cached: the resolution
 * rebuilds each plan from these RRsets, so the random order of equal
 * preferences and addresses is drawn afresh every time (DESIGN rule 6).
 *
 * Layout: a chained hash table (power-of-two buckets, FNV-1a over the
 * case-folded name and the type) for O(1) lookup, and a doubly linked
 * list in recency order for O(1) eviction of the least recently used
 * entry. Each entry is one allocation holding its name, canon, MX
 * records with their names, and addresses.
 *
 * TTLs (RFC 2181 8, RFC 2308 5): records and CNAMEs keep the smallest TTL
 * of the answer; NXDOMAIN and NODATA keep min(SOA TTL, SOA MINIMUM) (and
 * the CNAMEs' if smaller) and are not stored without an SOA, since
 * nothing then says how long the absence holds. Every TTL is clamped to
 * [min_ttl, max_ttl]; a TTL of 0 means "do not cache" (RFC 1035 3.2.1).
 * Expired entries stay until reused, evicted or found past the stale
 * window, so that serve-stale (RFC 8767) can still find them.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <string.h>
#include <time.h>

typedef struct centry centry;
struct centry {
  centry *hnext;          /* bucket chain */
  centry *lprev, *lnext;  /* recency list, most recent first */
  uint32_t hash;
  uint16_t type;
  mxr_status status;
  unsigned char chased;
  unsigned ncname;
  double expires;         /* clock time the entry stops being fresh */
  size_t nmx, naddrs;
  mxr_mx *mx;
  mxr_addr *addrs;
  char *canon;
  char name[1];           /* then canon, mx names, arrays (aligned) */
};

struct mxr_cache {
  centry **buckets;
  size_t nbuckets; /* power of two */
  size_t size, count;
  uint32_t min_ttl, max_ttl, stale;
  double (*now)(void *);
  void *now_ud;
  centry *head, *tail;
  mxr_cache_stats st;
};

static double mono_now(void *ud) {
  struct timespec ts;
  (void)ud;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FNV-1a over the ASCII-folded name, then the type. */
static uint32_t hash_key(const char *name, uint16_t type) {
  uint32_t h = 2166136261u;
  for (const char *p = name; *p; p++) {
    h ^= (unsigned char)mxr_ascii_lower(*p);
    h *= 16777619u;
  }
  h ^= (uint32_t)(type & 0xff);
  h *= 16777619u;
  h ^= (uint32_t)(type >> 8);
  h *= 16777619u;
  return h;
}

mxr_cache *mxr_cache_new(const mxr_cache_config *cfg) {
  mxr_cache *c = mxr_calloc(1, sizeof *c);
  size_t nb = 16;
  if (!c)
    return NULL;
  c->size = cfg && cfg->size ? cfg->size : MXR_CACHE_DEFAULT_SIZE;
  c->max_ttl = cfg && cfg->max_ttl ? cfg->max_ttl : MXR_CACHE_DEFAULT_MAX_TTL;
  c->min_ttl = cfg ? cfg->min_ttl : 0;
  if (c->min_ttl > c->max_ttl)
    c->min_ttl = c->max_ttl;
  c->stale = cfg ? cfg->stale : 0;
  c->now = cfg && cfg->now ? cfg->now : mono_now;
  c->now_ud = cfg ? cfg->now_ud : NULL;
  /* load factor <= 1 at full size; bounded so a huge size cannot ask for
   * an absurd table up front (chains just grow longer) */
  while (nb < c->size && nb < ((size_t)1 << 22))
    nb <<= 1;
  c->buckets = mxr_calloc(nb, sizeof *c->buckets);
  if (!c->buckets) {
    mxr_free(c);
    return NULL;
  }
  c->nbuckets = nb;
  return c;
}

static void lru_unlink(mxr_cache *c, centry *e) {
  if (e->lprev)
    e->lprev->lnext = e->lnext;
  else
    c->head = e->lnext;
  if (e->lnext)
    e->lnext->lprev = e->lprev;
  else
    c->tail = e->lprev;
  e->lprev = e->lnext = NULL;
}

static void lru_front(mxr_cache *c, centry *e) {
  e->lprev = NULL;
  e->lnext = c->head;
  if (c->head)
    c->head->lprev = e;
  c->head = e;
  if (!c->tail)
    c->tail = e;
}

/* Unlink e from its bucket and the list, and free it. */
static void drop(mxr_cache *c, centry *e) {
  centry **pp = &c->buckets[e->hash & (c->nbuckets - 1)];
  while (*pp && *pp != e)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = e->hnext;
  lru_unlink(c, e);
  c->count--;
  mxr_free(e);
}

void mxr_cache_free(mxr_cache *c) {
  centry *e, *n;
  if (!c)
    return;
  for (e = c->head; e; e = n) {
    n = e->lnext;
    mxr_free(e);
  }
  mxr_free(c->buckets);
  mxr_free(c);
}

double mxr_cache_now(const mxr_cache *c) { return c->now(c->now_ud); }

uint32_t mxr_cache_clamp(const mxr_cache *c, uint32_t ttl) {
  if (ttl > c->max_ttl)
    ttl = c->max_ttl;
  if (ttl < c->min_ttl)
    ttl = c->min_ttl;
  return ttl;
}

static centry *find(const mxr_cache *c, const char *name, uint16_t type,
                    uint32_t h) {
  for (centry *e = c->buckets[h & (c->nbuckets - 1)]; e; e = e->hnext)
    if (e->hash == h && e->type == type && mxr_name_equal(e->name, name))
      return e;
  return NULL;
}

/* Round n up to a multiple of the strictest alignment used here. */
static size_t align_up(size_t n) {
  size_t a = sizeof(double) > sizeof(void *) ? sizeof(double)
                                             : sizeof(void *);
  return (n + a - 1) / a * a;
}

int mxr_cache_put(mxr_cache *c, const char *name, uint16_t type,
                  const mxr_answer *a, uint32_t *ttlp) {
  size_t nlen, clen, size, off_canon, off_mx, off_names, off_addrs;
  size_t nmx, naddrs;
  uint32_t ttl, h;
  centry *e, *old;
  unsigned char *base;
  if (ttlp)
    *ttlp = 0;
  if (!c || !name || !a || a->truncated)
    return 0;
  if (a->status == MXR_OK && (a->nmx || a->naddrs || a->chased)) {
    ttl = a->ttl; /* records and CNAMEs: the smallest TTL (RFC 2181 5.2) */
  } else if (a->status == MXR_OK || a->status == MXR_ENXDOMAIN) {
    /* RFC 2308 5: no SOA, no negative caching */
    if (!a->has_soa)
      return 0;
    ttl = a->neg_ttl;
    if (a->ncname && a->ttl < ttl)
      ttl = a->ttl;
  } else {
    return 0; /* failures are not data */
  }
  ttl = mxr_cache_clamp(c, ttl);
  if (ttlp)
    *ttlp = ttl;
  if (ttl == 0)
    return 0;
  nmx = a->status == MXR_OK ? a->nmx : 0;
  naddrs = a->status == MXR_OK ? a->naddrs : 0;
  nlen = strlen(name);
  clen = strlen(a->canon);
  if (nlen > MXR_NAME_MAX || clen > MXR_NAME_MAX)
    return 0;
  off_canon = sizeof(centry) + nlen; /* name[1] holds the NUL */
  off_mx = align_up(off_canon + clen + 1);
  off_names = off_mx + nmx * sizeof(mxr_mx);
  off_addrs = off_names;
  for (size_t i = 0; i < nmx; i++)
    off_addrs += a->mx[i].len + 1;
  off_addrs = align_up(off_addrs);
  size = off_addrs + naddrs * sizeof(mxr_addr);
  base = mxr_malloc(size);
  if (!base)
    return 0;
  e = (centry *)(void *)base;
  memset(e, 0, sizeof *e);
  memcpy(e->name, name, nlen + 1);
  e->canon = (char *)base + off_canon;
  memcpy(e->canon, a->canon, clen + 1);
  e->mx = nmx ? (mxr_mx *)(void *)(base + off_mx) : NULL;
  {
    char *names = (char *)base + off_names;
    for (size_t i = 0; i < nmx; i++) {
      memcpy(names, a->mx[i].name, a->mx[i].len);
      names[a->mx[i].len] = '\0';
      e->mx[i].pref = a->mx[i].pref;
      e->mx[i].name = names;
      e->mx[i].len = a->mx[i].len;
      names += a->mx[i].len + 1;
    }
  }
  e->addrs = naddrs ? (mxr_addr *)(void *)(base + off_addrs) : NULL;
  if (naddrs)
    memcpy(e->addrs, a->addrs, naddrs * sizeof(mxr_addr));
  e->nmx = nmx;
  e->naddrs = naddrs;
  e->type = type;
  e->status = a->status;
  e->chased = (unsigned char)(a->status == MXR_OK && a->chased);
  e->ncname = a->ncname;
  e->expires = mxr_cache_now(c) + (double)ttl;
  h = e->hash = hash_key(name, type);
  old = find(c, name, type, h);
  if (old)
    drop(c, old);
  e->hnext = c->buckets[h & (c->nbuckets - 1)];
  c->buckets[h & (c->nbuckets - 1)] = e;
  lru_front(c, e);
  c->count++;
  c->st.inserts++;
  while (c->count > c->size && c->tail) {
    drop(c, c->tail);
    c->st.evictions++;
  }
  return 1;
}

static void fill(const centry *e, double now, mxr_rrset *out) {
  double left = e->expires - now;
  out->status = e->status;
  out->canon = e->canon;
  out->chased = e->chased;
  out->ncname = e->ncname;
  out->mx = e->mx;
  out->nmx = e->nmx;
  out->addrs = e->addrs;
  out->naddrs = e->naddrs;
  out->stale = left <= 0;
  out->ttl = left <= 0 ? 0 : (uint32_t)left;
}

int mxr_cache_get(mxr_cache *c, const char *name, uint16_t type, int stale,
                  mxr_rrset *out) {
  centry *e;
  double now;
  if (!c || !name || !out)
    return 0;
  e = find(c, name, type, hash_key(name, type));
  now = mxr_cache_now(c);
  if (e && now >= e->expires + (double)c->stale) {
    drop(c, e); /* past any use */
    e = NULL;
  }
  if (!e || (now >= e->expires && !stale)) {
    if (!stale)
      c->st.misses++;
    return 0;
  }
  lru_unlink(c, e);
  lru_front(c, e);
  fill(e, now, out);
  if (out->stale)
    c->st.stale++;
  else
    c->st.hits++;
  return 1;
}

size_t mxr_cache_flush(mxr_cache *c, const char *name) {
  static const uint16_t types[] = {MXR_TYPE_MX, MXR_TYPE_A, MXR_TYPE_AAAA};
  size_t n = 0;
  if (!c)
    return 0;
  if (!name) {
    while (c->tail) {
      drop(c, c->tail);
      n++;
    }
    return n;
  }
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    centry *e = find(c, name, types[i], hash_key(name, types[i]));
    if (e) {
      drop(c, e);
      n++;
    }
  }
  return n;
}

void mxr_cache_get_stats(const mxr_cache *c, mxr_cache_stats *out) {
  if (!out)
    return;
  memset(out, 0, sizeof *out);
  if (!c)
    return;
  *out = c->st;
  out->entries = c->count;
}
