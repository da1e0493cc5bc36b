/*
 * resolve.c — the resolution state machine, sans I/O.
 *
 * One mxr_res turns an input into a plan by asking lookups and feeding
 * their outcomes to it: MX for the domain (DESIGN rule 1), then A and
 * AAAA for every host the plan wants, all at once (rule 7: two round
 * trips, not 1 + N). The exchange (exchange.c, under every transport)
 * or a Lua transport (core.res's q:next) takes the lookups with
 * mxr_res_next and hands back decoded answers (mxr_res_feed), raw
 * replies (mxr_res_answer) or failures (mxr_res_fail) by slot; the cache
 * answers what it holds before any lookup goes out.
 *
 * Every query lives in a slot: its number is its index, never reused in
 * a resolution, so a late, duplicate or forged slot number finds a slot
 * that is not waiting and is ignored. A CNAME whose target's records are
 * not in the answer is re-asked for its target in a new slot that
 * remembers the one it came from: the chain across re-queries is bounded
 * by MXR_CNAME_MAX and checked for loops by walking back those links.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { S_QUEUED = 1, S_SENT, S_DONE };

/* A usual resolution (an MX query, A and AAAA of two or three hosts)
 * keeps its slots in itself; more go to the heap. The names they ask
 * are the plan's (its domain, its hosts' names: they stay put until it
 * is freed); only the end of a CNAME chain is copied, to a block. */
#define RES_SLOTS 8
#define NAME_BLOCK 256 /* the least taken at once for names */

/* Names of slots that are not the plan's (CNAME targets). */
typedef struct nblock {
  struct nblock *next;
  size_t cap, used;
  char data[]; /* cap octets */
} nblock;

typedef struct slot {
  const char *name;     /* the plan's, or in the resolution's names */
  size_t host;          /* MXR_ROLE_ADDR: plan host index */
  int32_t prev;         /* the slot this one re-asks for (CNAME), or -1 */
  uint16_t hops;        /* CNAMEs followed before this query was asked
                           (at most MXR_CNAME_MAX) */
  unsigned char state;
  unsigned char rt;     /* what is asked: its index in mxr_rrtypes[] (see
                           RT); its role says what for */
} slot;

/* The entry of mxr_rrtypes[] slot s asks for. */
#define RT(s) (&mxr_rrtypes[(s)->rt])

struct mxr_res {
  mxr_plan *plan;
  mxr_rng *rng;
  slot *slots;
  size_t nslots, cap;
  size_t cursor;   /* slots before it have been handed out or dropped */
  size_t inflight; /* handed out, not yet answered */
  mxr_cache *cache; /* DESIGN 8: consulted before asking; NULL: none */
  uint32_t ttl;     /* lowest TTL of what the plan used (see note_ttl) */
  int has_ttl;
  int stale;        /* some data was served stale (RFC 8767) */
  mxr_route *route; /* a routed resolution (route.c) runs that instead */
  nblock *nblocks;  /* names of CNAME targets, newest block first */
  /* from here on: not zeroed when the resolution is made */
  slot sbuf[RES_SLOTS]; /* slots while they fit */
};

/* A copy of name (len octets) among the resolution's names, which stay
 * put until it is freed; NULL on OOM. */
static const char *keep_name(mxr_res *r, const char *name, size_t len) {
  nblock *b = r->nblocks;
  char *d;
  if (!b || len + 1 > b->cap - b->used) {
    size_t cap = len + 1 > NAME_BLOCK ? len + 1 : NAME_BLOCK;
    if (!(b = mxr_malloc(offsetof(nblock, data) + cap)))
      return NULL;
    b->cap = cap;
    b->used = 0;
    b->next = r->nblocks;
    r->nblocks = b;
  }
  d = b->data + b->used;
  b->used += len + 1;
  memcpy(d, name, len);
  d[len] = '\0';
  return d;
}

static int from_cache(mxr_res *r, size_t n);

static void fail_plan(mxr_res *r, mxr_status st, const char *msg) {
  if (!mxr_plan_complete(r->plan))
    mxr_plan_abort(r->plan, st, msg);
}

/* Queue a query of name: the plan's own (stays put), or, for a CNAME's
 * end (prev >= 0), copied among the resolution's names. On OOM the plan
 * fails (ENOMEM is temporary). */
static int enqueue(mxr_res *r, const mxr_rrtype *rt, size_t host,
                   const char *name, unsigned hops, long prev) {
  slot *s;
  const char *kept = name;
  if (r->nslots >= INT32_MAX)
    goto oom;
  if (r->nslots == r->cap) {
    size_t cap = r->cap * 2;
    slot *n = mxr_reallocarray(r->slots == r->sbuf ? NULL : r->slots, cap,
                               sizeof *n);
    if (!n)
      goto oom;
    if (r->slots == r->sbuf)
      memcpy(n, r->sbuf, sizeof r->sbuf);
    r->slots = n;
    r->cap = cap;
  }
  if (prev >= 0 && !(kept = keep_name(r, name, strlen(name))))
    goto oom;
  s = &r->slots[r->nslots];
  s->name = kept;
  s->state = S_QUEUED;
  s->rt = (unsigned char)(rt - mxr_rrtypes);
  s->hops = (uint16_t)hops;
  s->prev = (int32_t)prev;
  s->host = host;
  r->nslots++;
  return 1;
oom:
  fail_plan(r, MXR_ENOMEM, "out of memory");
  return 0;
}

/* Rule 7: the addresses of every host the plan wants, right away: each
 * address type of the table (A, then AAAA) the plan wants for it. */
static void enqueue_hosts(mxr_res *r) {
  size_t n = mxr_plan_host_count(r->plan);
  for (size_t i = 0; i < n && !mxr_plan_complete(r->plan); i++) {
    const char *name = mxr_plan_host_name(r->plan, i);
    if (!name)
      continue;
    for (size_t k = 0; k < mxr_nrrtypes; k++) {
      const mxr_rrtype *rt = &mxr_rrtypes[k];
      if (rt->role == MXR_ROLE_ADDR &&
          mxr_plan_host_wants(r->plan, i, rt->family) &&
          !enqueue(r, rt, i, name, 0, -1))
        return;
    }
  }
}

/* Where the plan starts in a resolution's allocation: after it, aligned
 * for anything the plan holds (mxr_plan_init). */
union ralign {
  void *p;
  uint64_t u;
  size_t z;
};
#define RES_AT                                                              \
  ((sizeof(mxr_res) + sizeof(union ralign) - 1) / sizeof(union ralign) *     \
   sizeof(union ralign))

mxr_res *mxr_res_new(const char *input, size_t len, const mxr_opts *opts,
                     mxr_rng *rng) {
  char err[MXR_MSG_BUF];
  mxr_input in;
  mxr_status st;
  mxr_res *r;
  size_t psize;
  err[0] = '\0';
  st = input ? mxr_input_parse(input, len, &in, err, sizeof err)
             : MXR_EBADNAME;
  if (!input) {
    snprintf(err, sizeof err, "no input");
    len = 0;
  }
  /* one allocation: the resolution, then its plan */
  psize = mxr_plan_size(st == MXR_OK ? &in : NULL, len);
  if (psize == 0 || psize > SIZE_MAX - RES_AT ||
      !(r = mxr_malloc(RES_AT + psize)))
    return NULL;
  memset(r, 0, offsetof(mxr_res, sbuf));
  r->slots = r->sbuf;
  r->cap = RES_SLOTS;
  r->rng = rng;
  r->plan = mxr_plan_init((char *)r + RES_AT, st == MXR_OK ? &in : NULL,
                          input ? input : "", len, opts);
  if (!r->plan) {
    mxr_free(r);
    return NULL;
  }
  if (st != MXR_OK) {
    mxr_plan_abort(r->plan, MXR_EBADNAME, err);
  } else if (!opts || !rng) {
    mxr_plan_abort(r->plan, MXR_EBADOPT, "no options or no random source");
  } else if (in.kind == MXR_INPUT_DOMAIN) {
    /* Rule 1: MX for the domain, always absolute */
    enqueue(r, mxr_rrtype_of(MXR_TYPE_MX), 0, mxr_plan_domain(r->plan), 0,
            -1);
  }
  /* a literal needs no DNS: the plan is complete already */
  return r;
}

void mxr_res_free(mxr_res *r) {
  if (!r)
    return;
  mxr_route_free(r->route);
  while (r->nblocks) {
    nblock *b = r->nblocks;
    r->nblocks = b->next;
    mxr_free(b);
  }
  if (r->slots != r->sbuf)
    mxr_free(r->slots);
  mxr_plan_free(r->plan);
  mxr_free(r);
}

int mxr_res_done(const mxr_res *r) {
  if (r && r->route)
    return mxr_route_done(r->route);
  return !r || mxr_plan_complete(r->plan);
}

mxr_plan *mxr_res_plan(mxr_res *r) { return r ? r->plan : NULL; }

size_t mxr_res_inflight(const mxr_res *r) {
  if (r && r->route)
    return mxr_route_inflight(r->route);
  return r ? r->inflight : 0;
}

int mxr_res_next(mxr_res *r, mxr_query *q) {
  if (!r || !q || mxr_res_done(r))
    return 0;
  if (r->route)
    return mxr_route_next(r->route, q);
  while (r->cursor < r->nslots && !mxr_res_done(r)) {
    slot *s = &r->slots[r->cursor];
    /* DESIGN 8: a fresh cache entry answers the lookup at once; feeding
     * it may queue more slots (the hosts' addresses, a CNAME's end) */
    if (s->state == S_QUEUED && r->cache && from_cache(r, r->cursor)) {
      r->cursor++;
      continue;
    }
    if (s->state == S_QUEUED) {
      s->state = S_SENT;
      r->inflight++;
      q->slot = (unsigned)r->cursor;
      q->type = RT(s)->type;
      {
        size_t len = strlen(s->name); /* a normalised name: < MXR_NAME_BUF */
        if (len >= sizeof q->name)
          len = sizeof q->name - 1;
        memcpy(q->name, s->name, len);
        q->name[len] = '\0';
      }
      r->cursor++;
      return 1;
    }
    r->cursor++;
  }
  return 0;
}

void mxr_res_cancel(mxr_res *r, mxr_status st) {
  if (!r)
    return;
  if (r->route) {
    mxr_route_cancel(r->route, st);
    return;
  }
  fail_plan(r, st, NULL);
}

/* The slot for an answer or failure, marked done; NULL if it is not
 * waiting for one (unknown, never handed out, already answered). */
static slot *take(mxr_res *r, unsigned n) {
  slot *s;
  if (!r || n >= r->nslots)
    return NULL;
  s = &r->slots[n];
  if (s->state != S_SENT)
    return NULL;
  s->state = S_DONE;
  r->inflight--;
  return s;
}

/* Feed the outcome of a lookup to the plan. For the MX, rule 2: a failure
 * fails the plan, only NODATA (OK without records) gives the implicit
 * MX. msg, when given, is the answer check's message. */
static void feed_outcome(mxr_res *r, slot *s, mxr_status st,
                         const mxr_answer *a, const char *msg) {
  if (mxr_plan_complete(r->plan))
    return;
  if (RT(s)->role == MXR_ROLE_MX) {
    if (st == MXR_OK) {
      if (mxr_plan_set_mx(r->plan, MXR_OK, a->canon, a->mx, a->nmx,
                          r->rng) == MXR_OK)
        enqueue_hosts(r);
      else
        fail_plan(r, MXR_ENOMEM, "out of memory");
    } else if (msg) {
      mxr_plan_abort(r->plan, st, msg);
    } else {
      mxr_plan_set_mx(r->plan, st, a ? a->canon : NULL, NULL, 0, r->rng);
      fail_plan(r, st, NULL); /* set_mx refused it: fail anyway */
    }
    return;
  }
  /* MXR_ROLE_ADDR */
  if (!mxr_plan_host_wants(r->plan, s->host, RT(s)->family))
    return;
  if (st == MXR_OK)
    mxr_plan_set_addrs(r->plan, s->host, RT(s)->family, MXR_OK, a->addrs,
                       a->naddrs);
  else
    mxr_plan_set_addrs(r->plan, s->host, RT(s)->family, st, NULL, 0);
}

/* The name the lookup of slot s started from (before any CNAME). */
static const char *origin(const mxr_res *r, const slot *s) {
  while (s->prev >= 0)
    s = &r->slots[s->prev];
  return s->name;
}

/* Whether name was already asked on the way to slot s (inclusive). */
static int asked_before(const mxr_res *r, const slot *s, const char *name) {
  for (;;) {
    if (mxr_name_equal(s->name, name))
      return 1;
    if (s->prev < 0)
      return 0;
    s = &r->slots[s->prev];
  }
}

/* An answer (from the wire or the cache) for slot s, with status st:
 * CNAME checks across queries, re-asking the chain's end, or the
 * outcome to the plan. */
static void accept(mxr_res *r, slot *s, mxr_status st,
                   const mxr_answer *ap) {
  char msg[MXR_MSG_BUF];
  const mxr_answer *a = ap; /* read only, never copied */
  if (st == MXR_OK && a->truncated) {
    /* RFC 7766: the transport should have retried over TCP */
    snprintf(msg, sizeof msg,
             "%s %s: truncated reply (TC) and no retry over TCP", s->name,
             RT(s)->name);
    feed_outcome(r, s, MXR_EFORMERR, NULL, msg);
  } else if ((st == MXR_OK || st == MXR_ENXDOMAIN) && a->ncname &&
             s->hops + a->ncname > MXR_CNAME_MAX) {
    snprintf(msg, sizeof msg, "%s %s: CNAME chain longer than %d",
             origin(r, s), RT(s)->name, MXR_CNAME_MAX);
    feed_outcome(r, s, MXR_ECNAMELOOP, NULL, msg);
  } else if ((st == MXR_OK || st == MXR_ENXDOMAIN) && a->ncname &&
             asked_before(r, s, a->canon)) {
    snprintf(msg, sizeof msg, "%s %s: CNAME loop at %s", origin(r, s),
             RT(s)->name, a->canon);
    feed_outcome(r, s, MXR_ECNAMELOOP, NULL, msg);
  } else if (st == MXR_OK && a->chased) {
    /* the chain's end is elsewhere: ask it, same type (RFC 1034 3.6.2) */
    enqueue(r, RT(s), s->host, a->canon, s->hops + a->ncname,
            (long)(s - r->slots));
  } else if (st == MXR_OK || st == MXR_ENXDOMAIN || st == MXR_ESERVFAIL ||
             st == MXR_EREFUSED) {
    feed_outcome(r, s, st, a, NULL);
  } else {
    feed_outcome(r, s, st, NULL, a->message);
  }
}

/* ------------------------------------------------------------------ */
/* the cache (DESIGN 8): consulted before a query is handed out, fed
 * with every answer that is data                                      */

void mxr_res_set_cache(mxr_res *r, mxr_cache *c) {
  if (!r)
    return;
  r->cache = c;
  if (r->route) /* every hop is a resolution of its own */
    mxr_route_set_cache(r->route, c);
}

int mxr_res_ttl(const mxr_res *r, uint32_t *ttl) {
  if (r && r->route)
    return mxr_route_ttl(r->route, ttl);
  if (!r || !r->has_ttl)
    return 0;
  if (ttl)
    *ttl = r->ttl;
  return 1;
}

int mxr_res_stale(const mxr_res *r) {
  if (r && r->route)
    return mxr_route_stale(r->route);
  return r ? r->stale : 0;
}

/* The plan's TTL is the lowest of every answer it used (DESIGN 8). */
static void note_ttl(mxr_res *r, uint32_t ttl) {
  if (mxr_plan_complete(r->plan))
    return;
  if (!r->has_ttl || ttl < r->ttl)
    r->ttl = ttl;
  r->has_ttl = 1;
}

/* How long an answer that is data (OK or NXDOMAIN) stays valid, by the
 * rules of mxr_cache_put, without a cache: 0 when nothing says (a
 * negative answer without an SOA, RFC 2308 5). */
static uint32_t answer_ttl(const mxr_answer *a, const mxr_rrtype *rt) {
  uint32_t ttl;
  size_t n;
  mxr_answer_records(a, rt, &n);
  if (a->status == MXR_OK && (n || a->chased))
    return a->ttl;
  if (!a->has_soa)
    return 0;
  ttl = a->neg_ttl;
  if (a->ncname && a->ttl < ttl)
    ttl = a->ttl;
  return ttl;
}

/* Feed slot s (queued or sent) from a cache entry; the slot is done. */
static void feed_rrset(mxr_res *r, slot *s, const mxr_rrset *rr) {
  mxr_answer a;
  const void *recs;
  size_t n, len = strlen(rr->canon);
  memset(&a, 0, sizeof a);
  a.status = rr->status;
  if (len >= sizeof a.canon)
    len = sizeof a.canon - 1;
  memcpy(a.canon, rr->canon, len);
  a.canon[len] = '\0';
  a.chased = rr->chased;
  a.ncname = rr->ncname;
  recs = mxr_rrset_records(rr, RT(s), &n); /* read only: the plan copies */
  mxr_answer_set_records(&a, RT(s), recs, n);
  if (rr->stale) {
    /* RFC 8767 4: a stale answer is given a short TTL (30 s) */
    r->stale = 1;
    note_ttl(r, MXR_CACHE_STALE_TTL);
  } else {
    note_ttl(r, rr->ttl);
  }
  accept(r, s, rr->status, &a);
}

/* A queued slot answered by a fresh cache entry: 1 (the slot is done). */
static int from_cache(mxr_res *r, size_t n) {
  mxr_rrset rr;
  slot *s = &r->slots[n];
  if (!mxr_cache_get(r->cache, s->name, RT(s)->type, 0, &rr))
    return 0;
  s->state = S_DONE;
  feed_rrset(r, s, &rr);
  return 1;
}

/* RFC 8767: a refresh that failed temporarily is answered from expired
 * data within the stale window, if the cache has it. */
static int serve_stale(mxr_res *r, slot *s, mxr_status st) {
  mxr_rrset rr;
  if (!r->cache || mxr_plan_complete(r->plan))
    return 0;
  switch (st) {
  case MXR_ESERVFAIL:
  case MXR_EREFUSED:
  case MXR_ETIMEOUT:
  case MXR_EFORMERR:
  case MXR_ENETWORK:
    break;
  default:
    return 0;
  }
  if (!mxr_cache_get(r->cache, s->name, RT(s)->type, 1, &rr))
    return 0;
  feed_rrset(r, s, &rr);
  return 1;
}

/* An answer checked by mxr_packet_parse for slot s's (name, type) with
 * status st: store it, note its TTL and feed it. a is only read (the
 * exchange feeds one decoded answer to every merged waiter). */
static void feed_answer(mxr_res *r, slot *s, mxr_status st,
                        const mxr_answer *a) {
  uint32_t ttl;
  if ((st == MXR_OK || st == MXR_ENXDOMAIN) && !a->truncated) {
    ttl = answer_ttl(a, RT(s));
    if (r->cache) {
      /* a late answer is still good data for the next plan */
      mxr_cache_put(r->cache, s->name, RT(s)->type, a, &ttl);
      if (!answer_ttl(a, RT(s)))
        ttl = 0;
    }
    note_ttl(r, ttl);
  } else if (serve_stale(r, s, st)) {
    return;
  }
  if (!mxr_plan_complete(r->plan))
    accept(r, s, st, a);
}

void mxr_res_answer(mxr_res *r, unsigned slotn, const unsigned char *pkt,
                    size_t len) {
  mxr_answer a;
  mxr_status st;
  slot *s;
  if (r && r->route) {
    mxr_route_answer(r->route, slotn, pkt, len);
    return;
  }
  s = take(r, slotn);
  if (!s || (mxr_plan_complete(r->plan) && !r->cache))
    return;
  st = mxr_packet_parse(pkt, len, s->name, RT(s)->type, -1, &a);
  feed_answer(r, s, st, &a);
  mxr_answer_clear(&a);
}

void mxr_res_feed(mxr_res *r, unsigned slotn, const mxr_answer *a) {
  slot *s;
  if (r && r->route) {
    mxr_route_feed(r->route, slotn, a);
    return;
  }
  s = take(r, slotn);
  if (!s || (mxr_plan_complete(r->plan) && !r->cache))
    return;
  if (!a) { /* no answer is no data: a failure, never a crash */
    feed_outcome(r, s, MXR_ENETWORK, NULL, NULL);
    return;
  }
  feed_answer(r, s, a->status, a);
}

/* A transport failure. A status that is no failure (OK, NODATA) or no
 * transport's to give is ENETWORK: a failure never turns into data. */
void mxr_res_fail(mxr_res *r, unsigned slotn, mxr_status st) {
  slot *s;
  if (r && r->route) {
    mxr_route_fail(r->route, slotn, st);
    return;
  }
  s = take(r, slotn);
  if (!s)
    return;
  switch (st) {
  case MXR_ENXDOMAIN:
  case MXR_ESERVFAIL:
  case MXR_EREFUSED:
  case MXR_ETIMEOUT:
  case MXR_EFORMERR:
  case MXR_ECNAMELOOP:
  case MXR_ENETWORK:
  case MXR_ENOMEM:
  case MXR_ECANCELLED:
    break;
  default:
    st = MXR_ENETWORK;
  }
  if (serve_stale(r, s, st))
    return;
  feed_outcome(r, s, st, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* routed resolutions (route.c) and the result of any resolution       */

void mxr_res_set_route(mxr_res *r, mxr_route *rt) {
  for (size_t i = r->cursor; i < r->nslots; i++)
    r->slots[i].state = S_DONE;
  r->cursor = r->nslots;
  r->route = rt;
}

void mxr_res_skip_mx(mxr_res *r) {
  if (r->route || r->nslots != 1 || r->cursor != 0 ||
      RT(&r->slots[0])->role != MXR_ROLE_MX ||
      r->slots[0].state != S_QUEUED)
    return;
  r->slots[0].state = S_DONE;
  r->cursor = 1;
  if (mxr_plan_set_mx(r->plan, MXR_ENODATA, NULL, NULL, 0, r->rng) ==
      MXR_OK)
    enqueue_hosts(r);
  else
    fail_plan(r, MXR_ENOMEM, "out of memory");
}

size_t mxr_res_ready(mxr_res *r) {
  if (!r)
    return 0;
  return r->route ? mxr_route_ready(r->route) : mxr_plan_ready(r->plan);
}

const mxr_target *mxr_res_target(mxr_res *r, size_t i) {
  if (!r)
    return NULL;
  return r->route ? mxr_route_target(r->route, i)
                  : mxr_plan_target(r->plan, i);
}

mxr_status mxr_res_result(mxr_res *r, mxr_result *out) {
  if (!r || !out)
    return MXR_EBADOPT;
  if (r->route)
    return mxr_route_done(r->route) ? mxr_route_result(r->route, out)
                                    : MXR_EBADOPT;
  return mxr_plan_result(r->plan, out);
}
