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
 * entry. Each entry is one allocation holding its name, canon and
 * records (with what they point to, as MX names), copied as the type's
 * entry of rrtype.c's table says.
 *
 * TTLs (RFC 2181 8, RFC 2308 5): records and CNAMEs keep the smallest TTL
 * of the answer; NXDOMAIN and NODATA keep min(SOA TTL, SOA MINIMUM) (and
 * the CNAMEs' if smaller) and are not stored without an SOA, since
 * nothing then says how long the absence holds. Every TTL is clamped to
 * [min_ttl, max_ttl]; a TTL of 0 means "do not cache" (RFC 1035 3.2.1).
 * Expired entries stay until reused, evicted or found past the stale
 * window, so that serve-stale (RFC 8767) can still find them.
 *
 * Second level (optional, mxr_cache_set_l2): a store shared between
 * processes, e.g. nginx workers' lua_shared_dict. A local miss asks it;
 * what it holds is decoded strictly and kept locally for the TTL left;
 * every entry stored from an answer is offered to it. Without one,
 * nothing here changes.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <stdio.h>
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
  const mxr_rrtype *rt;   /* type's table entry (NULL: no records) */
  void *recs;             /* nrecs records of rt */
  size_t nrecs;
  char *canon;
  char name[1];           /* then canon, records (aligned), their names */
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
  mxr_cache_l2 l2; /* second level: used when get or set is set */
};

static double wall_now(void *ud) {
  struct timespec ts;
  (void)ud;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static void fill(const centry *e, double now, mxr_rrset *out) {
  double left = e->expires - now;
  memset(out, 0, sizeof *out); /* no records of other types */
  out->status = e->status;
  out->canon = e->canon;
  out->chased = e->chased;
  out->ncname = e->ncname;
  mxr_rrset_set_records(out, e->rt, e->recs, e->nrecs);
  out->stale = left <= 0;
  out->ttl = left <= 0 ? 0 : (uint32_t)left;
}

/* Store an entry (replacing any for the same key) that stops being
 * fresh at expires on c's clock, with n records of type's table entry
 * (none for a type without one). 1 if stored, 0 on OOM. */
static int insert(mxr_cache *c, const char *name, uint16_t type,
                  mxr_status status, const char *canon, int chased,
                  unsigned ncname, const void *recs, size_t n,
                  double expires) {
  const mxr_rrtype *rt = mxr_rrtype_of(type);
  size_t nlen, clen, size, off_canon, off_recs, off_heap;
  uint32_t h;
  centry *e, *old;
  unsigned char *base;
  nlen = strlen(name);
  clen = strlen(canon);
  if (nlen > MXR_NAME_MAX || clen > MXR_NAME_MAX)
    return 0;
  if (!rt || !rt->size || !recs)
    n = 0;
  off_canon = sizeof(centry) + nlen; /* name[1] holds the NUL */
  off_recs = align_up(off_canon + clen + 1);
  off_heap = off_recs + (n ? n * rt->size : 0);
  size = off_heap + (n && rt->extent ? rt->extent(recs, n) : 0);
  base = mxr_malloc(size);
  if (!base)
    return 0;
  e = (centry *)(void *)base;
  memset(e, 0, sizeof *e);
  memcpy(e->name, name, nlen + 1);
  e->canon = (char *)base + off_canon;
  memcpy(e->canon, canon, clen + 1);
  e->rt = rt;
  if (n) {
    e->recs = base + off_recs;
    if (rt->copy)
      rt->copy(e->recs, recs, n, (char *)base + off_heap);
    else
      memcpy(e->recs, recs, n * rt->size);
  }
  e->nrecs = n;
  e->type = type;
  e->status = status;
  e->chased = (unsigned char)(status == MXR_OK && chased);
  e->ncname = ncname;
  e->expires = expires;
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

static double l2_wall(const mxr_cache *c) {
  return c->l2.wall ? c->l2.wall(c->l2.ud) : wall_now(NULL);
}

/* Offer what was just stored to the second level, with its TTL as the
 * store's own expiry and the absolute wall-clock expiry inside. */
static void l2_offer(mxr_cache *c, const char *name, uint16_t type,
                     uint32_t ttl) {
  char key[MXR_CACHE_KEY_BUF];
  centry *e = find(c, name, type, hash_key(name, type));
  mxr_rrset rr;
  unsigned char *b;
  size_t len;
  if (!c->l2.set || !e)
    return;
  fill(e, mxr_cache_now(c), &rr);
  b = mxr_cache_encode(name, type, &rr, l2_wall(c) + (double)ttl, &len);
  if (!b)
    return; /* OOM: the second level just misses it */
  mxr_cache_key(name, type, key);
  c->l2.set(c->l2.ud, key, b, len, ttl);
  mxr_free(b);
}

int mxr_cache_put(mxr_cache *c, const char *name, uint16_t type,
                  const mxr_answer *a, uint32_t *ttlp) {
  const void *recs;
  size_t n;
  uint32_t ttl;
  if (ttlp)
    *ttlp = 0;
  if (!c || !name || !a || a->truncated)
    return 0;
  recs = mxr_answer_records(a, mxr_rrtype_of(type), &n);
  if (a->status == MXR_OK && (n || a->chased)) {
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
  if (!insert(c, name, type, a->status, a->canon, a->chased, a->ncname,
              a->status == MXR_OK ? recs : NULL,
              a->status == MXR_OK ? n : 0, mxr_cache_now(c) + (double)ttl))
    return 0;
  l2_offer(c, name, type, ttl);
  return 1;
}

/* A local miss: ask the second level, and keep a fresh, well-formed
 * entry locally for what remains of its TTL (clamped to max_ttl: the
 * writer may have allowed more). 1 if one was stored. */
static int l2_fetch(mxr_cache *c, const char *name, uint16_t type,
                    double now) {
  char key[MXR_CACHE_KEY_BUF];
  const unsigned char *b;
  mxr_cache_blob blob;
  size_t len = 0;
  double left;
  int ok = 0;
  if (!c->l2.get)
    return 0;
  mxr_cache_key(name, type, key);
  b = c->l2.get(c->l2.ud, key, &len);
  if (!b || !mxr_cache_decode(b, len, name, type, &blob))
    return 0;
  left = blob.expires - l2_wall(c);
  if (left >= 1) {
    if (left > (double)c->max_ttl)
      left = (double)c->max_ttl;
    ok = insert(c, name, type, blob.status, blob.canon, blob.chased,
                blob.ncname, blob.recs, blob.nrecs, now + left);
    if (ok)
      c->st.l2_hits++;
  }
  mxr_cache_blob_clear(&blob);
  return ok;
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
  if (!e && !stale && l2_fetch(c, name, type, now))
    e = find(c, name, type, hash_key(name, type));
  else if (e && now >= e->expires && !stale &&
           l2_fetch(c, name, type, now)) /* another process refreshed it */
    e = find(c, name, type, hash_key(name, type));
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
  for (size_t i = 0; i < mxr_nrrtypes; i++) { /* every type cached */
    uint16_t t = mxr_rrtypes[i].type;
    centry *e = mxr_rrtypes[i].decode ? find(c, name, t, hash_key(name, t))
                                      : NULL;
    if (e) {
      drop(c, e);
      n++;
    }
  }
  return n;
}

void mxr_cache_set_l2(mxr_cache *c, const mxr_cache_l2 *l2) {
  if (!c)
    return;
  memset(&c->l2, 0, sizeof c->l2);
  if (l2 && (l2->get || l2->set))
    c->l2 = *l2;
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

/*
 * The second-level form of an entry: a compact, versioned byte string,
 * all integers big-endian.
 *
 *   "mxc" 0x01   magic and version
 *   u16 type     u8 status (0 OK, 1 NXDOMAIN)   u8 chased (0/1)
 *   u16 ncname   u64 expiry, Unix time in milliseconds (< 2^50)
 *   u8 len, name     u8 len, canon ("" when no CNAME)
 *   sections, each u16 count and that many records of the type:
 *     0: MX,     per record u16 pref, u8 len, name ("" is the null MX)
 *     1: A/AAAA, per record u8 family (4 or 6), 4 or 16 bytes
 *
 * and nothing after. Every entry has sections 0 and 1 (version 1 had
 * exactly these two); a type whose records form a new section n (its
 * table entry's l2_section) writes sections 0..n, counts 0 but its
 * own, so every entry of version 1 keeps its bytes and stays readable.
 * The records are written and read by the type's table entry. The
 * reader trusts none of it: whatever another process (or a bug, or an
 * operator) left under a key is checked field by field, names must be
 * normalised host names, records must fit the type, and anything else
 * is refused (a miss).
 */
#define BLOB_VERSION 1
#define BLOB_HEAD 18 /* magic .. expiry */
#define BLOB_SECTIONS 2 /* the sections every entry has */
/* Expiry bound (2^50 ms, some 35000 years): well within a double's
 * exact range, so milliseconds survive the trip through seconds. */
#define BLOB_MAX_MS ((uint64_t)1 << 50)

void mxr_cache_key(const char *name, uint16_t type, char *key) {
  size_t n = strlen(name);
  int k = snprintf(key, MXR_CACHE_KEY_BUF, "mxr%d:%u:", BLOB_VERSION,
                   (unsigned)type);
  if (k < 0)
    k = 0;
  if (n > MXR_NAME_MAX)
    n = MXR_NAME_MAX;
  memcpy(key + k, name, n);
  key[(size_t)k + n] = '\0';
}

/* The sections an entry of type t has. */
static unsigned blob_sections(const mxr_rrtype *t) {
  return t && t->size && t->l2_section >= BLOB_SECTIONS ? t->l2_section + 1
                                                        : BLOB_SECTIONS;
}

unsigned char *mxr_cache_encode(const char *name, uint16_t type,
                                const mxr_rrset *rr, double expires,
                                size_t *len) {
  const mxr_rrtype *rt = mxr_rrtype_of(type);
  const void *recs;
  size_t nlen, clen, size, n, rsize = 0;
  unsigned nsec = blob_sections(rt);
  unsigned char *b, *p;
  uint64_t ms;
  if (len)
    *len = 0;
  if (!name || !rr || !len || !rr->canon ||
      (rr->status != MXR_OK && rr->status != MXR_ENXDOMAIN) ||
      rr->ncname > 0xffff ||
      !(expires > 0 && expires * 1000.0 < (double)BLOB_MAX_MS))
    return NULL;
  recs = mxr_rrset_records(rr, rt, &n);
  nlen = strlen(name);
  clen = strlen(rr->canon);
  if (nlen > MXR_NAME_MAX || clen > MXR_NAME_MAX || n > 0xffff)
    return NULL;
  if (n && (rsize = rt->l2_size(recs, n)) == MXR_L2_NONE)
    return NULL;
  size = BLOB_HEAD + 1 + nlen + 1 + clen + 2 * nsec + rsize;
  b = mxr_malloc(size);
  if (!b)
    return NULL;
  p = b;
  *p++ = 'm';
  *p++ = 'x';
  *p++ = 'c';
  *p++ = BLOB_VERSION;
  p = mxr_put16(p, type);
  *p++ = rr->status == MXR_ENXDOMAIN ? 1 : 0;
  *p++ = rr->chased ? 1 : 0;
  p = mxr_put16(p, rr->ncname);
  ms = (uint64_t)(expires * 1000.0 + 0.5);
  for (int i = 7; i >= 0; i--)
    *p++ = (unsigned char)(ms >> (8 * i));
  p = mxr_put_name(p, name, nlen);
  p = mxr_put_name(p, rr->canon, clen);
  for (unsigned sec = 0; sec < nsec; sec++) {
    int own = n && sec == rt->l2_section;
    p = mxr_put16(p, own ? (unsigned)n : 0u);
    if (own)
      p = rt->l2_put(p, recs, n);
  }
  *len = (size_t)(p - b);
  return b;
}

int mxr_rd_name(mxr_rd *r, const char **s, size_t *n) {
  const unsigned char *q;
  char norm[MXR_NAME_BUF];
  if (!mxr_rd_take(r, 1, &q))
    return 0;
  *n = q[0];
  if (*n > MXR_NAME_MAX || !mxr_rd_take(r, *n, &q))
    return 0;
  *s = (const char *)q;
  if (*n == 0)
    return 1;
  return mxr_name_normalize(*s, *n, norm, NULL, 0) == MXR_OK &&
         strlen(norm) == *n && memcmp(norm, *s, *n) == 0;
}

void mxr_cache_blob_clear(mxr_cache_blob *out) {
  if (!out)
    return;
  mxr_free(out->recs);
  memset(out, 0, sizeof *out);
}

/* The sections of an entry of type rt (status already read): records
 * only in rt's own section, only when OK. 1 if they are well-formed. */
static int decode_records(mxr_rd *r, const mxr_rrtype *rt,
                          mxr_cache_blob *out) {
  unsigned nsec = blob_sections(rt);
  for (unsigned sec = 0; sec < nsec; sec++) {
    unsigned n;
    /* counts that cannot fit in what is left are refused before
     * anything is allocated */
    if (!mxr_rd_u16(r, &n))
      return 0;
    if (!n)
      continue;
    if (!rt || !rt->size || sec != rt->l2_section ||
        out->status != MXR_OK || (size_t)n * rt->l2_min > r->left)
      return 0;
    out->recs = mxr_calloc(n, rt->size);
    if (!out->recs || !rt->l2_get(rt, r, out->recs, n))
      return 0;
    out->nrecs = n;
  }
  return 1;
}

int mxr_cache_decode(const unsigned char *b, size_t len, const char *name,
                     uint16_t type, mxr_cache_blob *out) {
  mxr_rd r;
  const unsigned char *q;
  const char *s;
  size_t n;
  unsigned v;
  uint64_t ms = 0;
  if (!out)
    return 0;
  memset(out, 0, sizeof *out);
  if (!b)
    return 0;
  r.p = b;
  r.left = len;
  if (!mxr_rd_take(&r, 4, &q) || memcmp(q, "mxc", 3) != 0 ||
      q[3] != BLOB_VERSION)
    return 0;
  if (!mxr_rd_u16(&r, &v) || v != type)
    return 0;
  out->type = (uint16_t)v;
  if (!mxr_rd_take(&r, 4, &q) || q[0] > 1 || q[1] > 1)
    return 0;
  out->status = q[0] ? MXR_ENXDOMAIN : MXR_OK;
  out->chased = q[1];
  out->ncname = (unsigned)q[2] << 8 | q[3];
  if (!mxr_rd_take(&r, 8, &q))
    return 0;
  for (int i = 0; i < 8; i++)
    ms = ms << 8 | q[i];
  if (ms >= BLOB_MAX_MS)
    return 0;
  out->expires = (double)ms / 1000.0;
  if (!mxr_rd_name(&r, &s, &n) || n == 0 ||
      (name && (strlen(name) != n || memcmp(name, s, n) != 0)))
    return 0;
  memcpy(out->name, s, n);
  out->name[n] = '\0';
  if (!mxr_rd_name(&r, &s, &n))
    return 0;
  memcpy(out->canon, s, n);
  out->canon[n] = '\0';
  if (!decode_records(&r, mxr_rrtype_of(type), out) || r.left != 0 ||
      (out->status == MXR_ENXDOMAIN && out->chased)) {
    mxr_cache_blob_clear(out);
    return 0;
  }
  return 1;
}
