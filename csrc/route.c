/*
 * route.c — routed resolutions (DESIGN 7), sans I/O.
 *
 * A route decides, before any lookup, where mail for a recipient goes:
 * Postfix transport(5) nexthops ("host", "host:port", "[host]",
 * "[host]:port", address literals, Postfix 3.5 lists) and fallback relays
 * (Postfix smtp_fallback_relay). The decision is the caller's (Lua); this
 * file executes it: one ordinary resolution per hop, all driven at once
 * through the one mxr_res the transport sees, so that every transport
 * gets routes without a change and every rule of DESIGN 1 (self
 * exclusion, the target guard, family/prefer, limits) applies to each
 * hop as to an MX plan.
 *
 * The outer resolution's slot numbers map to (hop, slot of the hop's
 * resolution) through an array indexed by outer slot: never reused, so a
 * late or forged slot number finds nothing or a finished hop, as in
 * resolve.c. The result's target list is built incrementally in hop
 * order (mxr_route_ready), so a lazy consumer sees the same order as the
 * final result. How a list of hops fails is documented in mxroute.h.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <stdio.h>
#include <string.h>

typedef struct hop {
  mxr_res *res;
  uint16_t port;
  int fallback;
  int mx; /* asked MX (its plan's implicit flag is meaningful) */
  char name[MXR_NAME_BUF]; /* for skipped: the host, or the domain */
} hop;

typedef struct smap {
  unsigned hop;
  unsigned slot;
} smap;

struct mxr_route {
  hop hops[MXR_HOPS_MAX];
  size_t nhops, nmain; /* hops[0..nmain) main, then fallback relays */
  smap *map;           /* outer slot -> hop slot */
  size_t nmap, capmap;
  mxr_status cancelled; /* MXR_OK unless cancelled or failed at once */
  char message[MXR_MSG_BUF]; /* its message, when given */
  char *input;
  char domain[MXR_NAME_BUF];
  /* targets so far, in delivery order, each address once */
  mxr_target *t;
  uint8_t (*keys)[16];
  size_t nt, capt;
  size_t cur, taken; /* next hop to take targets from, and how many */
  /* the result, built once when done */
  int built;
  mxr_result res;
  mxr_host *hosts;
  mxr_skip *skips;
};

/* ------------------------------------------------------------------ */
/* outcome of the hops                                                 */

static int hop_done(const hop *h) { return mxr_res_done(h->res); }

/* A finished hop's status (MXR_OK: usable targets). */
static mxr_status hop_status(const hop *h) {
  mxr_result r;
  if (!hop_done(h) || mxr_plan_result(mxr_res_plan(h->res), &r) != MXR_OK)
    return MXR_EBADOPT;
  return r.status;
}

static int range_done(const mxr_route *rt, size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    if (!hop_done(&rt->hops[i]))
      return 0;
  return 1;
}

static int range_ok(const mxr_route *rt, size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    if (hop_status(&rt->hops[i]) == MXR_OK)
      return 1;
  return 0;
}

/* The hop whose failure is the list's (main hops all failed): the first
 * temporary one, else the first loop, else the first (DESIGN rule 9:
 * temporary beats permanent). */
static size_t failing_hop(const mxr_route *rt) {
  size_t loop = rt->nmain;
  for (size_t i = 0; i < rt->nmain; i++) {
    mxr_class c = mxr_status_class(hop_status(&rt->hops[i]));
    if (c == MXR_CLASS_TEMPORARY)
      return i;
    if (c == MXR_CLASS_LOOP && loop == rt->nmain)
      loop = i;
  }
  return loop < rt->nmain ? loop : 0;
}

/* Whether the fallback relays take part: once every main hop is done,
 * when one succeeded (appended) or the list failed temporarily (alone). */
static int fallback_used(const mxr_route *rt) {
  if (rt->nhops == rt->nmain || !range_done(rt, 0, rt->nmain))
    return 0;
  if (range_ok(rt, 0, rt->nmain))
    return 1;
  return mxr_status_class(hop_status(&rt->hops[failing_hop(rt)])) ==
         MXR_CLASS_TEMPORARY;
}

int mxr_route_done(const mxr_route *rt) {
  if (rt->cancelled != MXR_OK)
    return 1;
  if (!range_done(rt, 0, rt->nmain))
    return 0;
  return !fallback_used(rt) || range_done(rt, rt->nmain, rt->nhops);
}

/* ------------------------------------------------------------------ */
/* life                                                                */

static int add_hop(mxr_route *rt, const mxr_hop *h, const char *input,
                   size_t len, int fallback, const mxr_opts *opts,
                   mxr_rng *rng) {
  hop *d = &rt->hops[rt->nhops];
  const char *name = h->name ? h->name : input;
  size_t n = h->name ? h->len : len;
  d->res = mxr_res_new(name, n, opts, rng);
  if (!d->res)
    return -1;
  rt->nhops++;
  d->port = h->port ? h->port : 25;
  d->fallback = fallback;
  d->mx = h->mx;
  if (h->name) {
    if (n >= sizeof d->name)
      n = sizeof d->name - 1;
    memcpy(d->name, name, n);
    d->name[n] = '\0';
  } else {
    snprintf(d->name, sizeof d->name, "%s", rt->domain);
  }
  /* Postfix transport(5): "[host]" disables MX lookups; the host's own
   * addresses are its only target, as for an implicit MX (RFC 5321 5.1) */
  if (!h->mx)
    mxr_res_skip_mx(d->res);
  return 0;
}

/* A new resolution that failed already (bad input or options); a
 * literal input is complete at once too, but not failed. */
static int failed_at_once(mxr_res *r) {
  mxr_result res;
  return mxr_res_done(r) &&
         (mxr_plan_result(mxr_res_plan(r), &res) != MXR_OK ||
          res.status != MXR_OK);
}

/* The route of r's input, with no hop yet. */
static mxr_route *route_new(const char *input, size_t len) {
  mxr_input in;
  mxr_route *rt = mxr_calloc(1, sizeof *rt);
  if (!rt)
    return NULL;
  if (mxr_input_parse(input, len, &in, NULL, 0) != MXR_OK)
    in.domain[0] = '\0'; /* mxr_res_new accepted it: cannot happen */
  memcpy(rt->domain, in.domain, sizeof rt->domain);
  rt->input = mxr_malloc(len + 1);
  if (!rt->input) {
    mxr_free(rt);
    return NULL;
  }
  memcpy(rt->input, input, len);
  rt->input[len] = '\0';
  return rt;
}

mxr_res *mxr_res_new_routed(const char *input, size_t len,
                            const mxr_hop *hops, size_t nhops,
                            const mxr_hop *fallback, size_t nfb,
                            const mxr_opts *opts, mxr_rng *rng) {
  mxr_route *rt = NULL;
  mxr_res *r = mxr_res_new(input, len, opts, rng);
  size_t i;
  if (!r || failed_at_once(r))
    return r; /* OOM, or already failed: bad input or options */
  if (nhops == 0 || nhops > MXR_HOPS_MAX || nfb > MXR_HOPS_MAX - nhops ||
      !hops || (nfb && !fallback)) {
    mxr_plan_abort(mxr_res_plan(r), MXR_EBADOPT,
                   "a route needs 1 to 16 nexthops and fallback relays");
    return r;
  }
  rt = route_new(input, len);
  if (!rt)
    goto fail;
  for (i = 0; i < nhops; i++)
    if (add_hop(rt, &hops[i], input, len, 0, opts, rng) != 0)
      goto fail;
  rt->nmain = nhops;
  for (i = 0; i < nfb; i++)
    if (add_hop(rt, &fallback[i], input, len, 1, opts, rng) != 0)
      goto fail;
  mxr_res_set_route(r, rt);
  return r;
fail:
  mxr_route_free(rt);
  mxr_res_free(r);
  return NULL;
}

mxr_res *mxr_res_new_failed(const char *input, size_t len, mxr_status st,
                            const char *message, const mxr_opts *opts,
                            mxr_rng *rng) {
  mxr_res *r = mxr_res_new(input, len, opts, rng);
  mxr_route *rt;
  if (!r || failed_at_once(r))
    return r;
  rt = route_new(input, len);
  if (!rt) {
    mxr_res_free(r);
    return NULL;
  }
  /* a route with no hop, failed: the queued MX query is dropped unasked */
  rt->cancelled = st == MXR_OK ? MXR_EBADOPT : st; /* never data */
  if (message)
    mxr_escape(rt->message, sizeof rt->message, message, strlen(message),
               sizeof rt->message);
  mxr_res_set_route(r, rt);
  return r;
}

void mxr_route_free(mxr_route *rt) {
  if (!rt)
    return;
  for (size_t i = 0; i < rt->nhops; i++)
    mxr_res_free(rt->hops[i].res);
  mxr_free(rt->map);
  mxr_free(rt->input);
  mxr_free(rt->t);
  mxr_free(rt->keys);
  mxr_free(rt->hosts);
  mxr_free(rt->skips);
  mxr_free(rt);
}

void mxr_route_cancel(mxr_route *rt, mxr_status st) {
  if (mxr_route_done(rt))
    return;
  rt->cancelled = st == MXR_OK ? MXR_ECANCELLED : st;
  for (size_t i = 0; i < rt->nhops; i++)
    mxr_res_cancel(rt->hops[i].res, rt->cancelled);
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

int mxr_route_next(mxr_route *rt, mxr_query *q) {
  for (size_t i = 0; i < rt->nhops; i++) {
    mxr_query sub;
    if (rt->nmap == rt->capmap) {
      size_t cap = rt->capmap ? rt->capmap * 2 : 16;
      smap *n = mxr_reallocarray(rt->map, cap, sizeof *n);
      if (!n) {
        mxr_route_cancel(rt, MXR_ENOMEM);
        return 0;
      }
      rt->map = n;
      rt->capmap = cap;
    }
    if (!mxr_res_next(rt->hops[i].res, &sub))
      continue;
    rt->map[rt->nmap].hop = (unsigned)i;
    rt->map[rt->nmap].slot = sub.slot;
    *q = sub;
    q->slot = (unsigned)rt->nmap++;
    return 1;
  }
  return 0;
}

static const smap *lookup(const mxr_route *rt, unsigned slot) {
  return slot < rt->nmap ? &rt->map[slot] : NULL;
}

void mxr_route_answer(mxr_route *rt, unsigned slot, const unsigned char *pkt,
                      size_t len) {
  const smap *m = lookup(rt, slot);
  if (m)
    mxr_res_answer(rt->hops[m->hop].res, m->slot, pkt, len);
}

void mxr_route_feed(mxr_route *rt, unsigned slot, const mxr_answer *a) {
  const smap *m = lookup(rt, slot);
  if (m)
    mxr_res_feed(rt->hops[m->hop].res, m->slot, a);
}

void mxr_route_fail(mxr_route *rt, unsigned slot, mxr_status st) {
  const smap *m = lookup(rt, slot);
  if (m)
    mxr_res_fail(rt->hops[m->hop].res, m->slot, st);
}

size_t mxr_route_inflight(const mxr_route *rt) {
  size_t n = 0;
  for (size_t i = 0; i < rt->nhops; i++)
    n += mxr_res_inflight(rt->hops[i].res);
  return n;
}

/* ------------------------------------------------------------------ */
/* targets and result                                                  */

/* Append t (from hop h) unless its address is already listed at the
 * same port (DESIGN rule 13 across hops: the first occurrence is kept;
 * another port is another destination). */
static int append(mxr_route *rt, const mxr_target *t, const hop *h) {
  uint8_t key[16];
  mxr_addr_key(&t->addr, key);
  for (size_t i = 0; i < rt->nt; i++)
    if (rt->t[i].port == h->port && memcmp(rt->keys[i], key, sizeof key) == 0)
      return 0;
  if (rt->nt == rt->capt) {
    size_t cap = rt->capt ? rt->capt * 2 : 16;
    mxr_target *n = mxr_reallocarray(rt->t, cap, sizeof *n);
    uint8_t(*k)[16];
    if (!n)
      return -1;
    rt->t = n;
    k = mxr_reallocarray(rt->keys, cap, sizeof *k);
    if (!k)
      return -1;
    rt->keys = k;
    rt->capt = cap;
  }
  rt->t[rt->nt] = *t;
  rt->t[rt->nt].port = h->port;
  rt->t[rt->nt].fallback = h->fallback;
  memcpy(rt->keys[rt->nt], key, sizeof key);
  rt->nt++;
  return 0;
}

/* Take every target whose place is final: hop by hop, a hop's final
 * targets, the next hop only once this one is complete; the fallback
 * relays once the main hops are done and the relays take part. */
static void extend(mxr_route *rt) {
  if (rt->cancelled != MXR_OK)
    return;
  while (rt->cur < rt->nhops) {
    hop *h = &rt->hops[rt->cur];
    mxr_plan *p = mxr_res_plan(h->res);
    size_t n;
    if (rt->cur == rt->nmain && !fallback_used(rt))
      return;
    n = mxr_plan_ready(p);
    for (; rt->taken < n; rt->taken++) {
      if (append(rt, mxr_plan_target(p, rt->taken), h) != 0) {
        mxr_route_cancel(rt, MXR_ENOMEM);
        return;
      }
    }
    if (!mxr_plan_complete(p))
      return;
    rt->cur++;
    rt->taken = 0;
  }
}

size_t mxr_route_ready(mxr_route *rt) {
  extend(rt);
  return rt->nt;
}

const mxr_target *mxr_route_target(mxr_route *rt, size_t i) {
  extend(rt);
  return i < rt->nt ? &rt->t[i] : NULL;
}

/* Whether failed result r already skips name with its own code. */
static int named(const mxr_result *r, const char *name) {
  for (size_t j = 0; j < r->nskipped; j++)
    if (r->skipped[j].code == r->status &&
        mxr_name_equal(r->skipped[j].name, name))
      return 1;
  return 0;
}

/* Count (out == NULL) or copy the hosts and skipped of hops [from, to). */
static void gather(mxr_route *rt, size_t from, size_t to, size_t *nh,
                   size_t *ns) {
  for (size_t i = from; i < to; i++) {
    mxr_result r;
    if (mxr_plan_result(mxr_res_plan(rt->hops[i].res), &r) != MXR_OK)
      continue;
    for (size_t j = 0; j < r.nhosts; j++) {
      if (rt->hosts)
        rt->hosts[*nh] = r.hosts[j];
      (*nh)++;
    }
    for (size_t j = 0; j < r.nskipped; j++) {
      if (rt->skips)
        rt->skips[*ns] = r.skipped[j];
      (*ns)++;
    }
    if (r.status != MXR_OK && !named(&r, rt->hops[i].name)) {
      /* the hop itself failed: name it, with its code (once: a "[host]"
       * hop's plan has already skipped that host for the same reason) */
      if (rt->skips) {
        rt->skips[*ns].name = rt->hops[i].name;
        rt->skips[*ns].pref = 0;
        rt->skips[*ns].code = r.status;
      }
      (*ns)++;
    }
  }
}

static mxr_status build(mxr_route *rt) {
  mxr_result *o = &rt->res;
  size_t nh = 0, ns = 0, upto;
  int main_ok = range_ok(rt, 0, rt->nmain), fb = fallback_used(rt);
  extend(rt);
  memset(o, 0, sizeof *o);
  o->input = rt->input;
  o->domain = rt->domain;
  if (rt->cancelled != MXR_OK) {
    o->status = rt->cancelled;
    o->message = rt->message[0] ? rt->message : NULL;
    return MXR_OK;
  }
  upto = fb ? rt->nhops : rt->nmain;
  gather(rt, 0, upto, &nh, &ns);
  rt->hosts = mxr_calloc(nh, sizeof *rt->hosts);
  rt->skips = mxr_calloc(ns, sizeof *rt->skips);
  if (!rt->hosts || !rt->skips) {
    o->status = MXR_ENOMEM;
    return MXR_OK;
  }
  nh = ns = 0;
  gather(rt, 0, upto, &nh, &ns);
  o->skipped = rt->skips;
  o->nskipped = ns;
  if (!main_ok && !(fb && range_ok(rt, rt->nmain, rt->nhops))) {
    mxr_result f;
    size_t i = failing_hop(rt);
    if (mxr_plan_result(mxr_res_plan(rt->hops[i].res), &f) == MXR_OK) {
      o->status = f.status;
      o->message = f.message;
    } else {
      o->status = MXR_EBADOPT;
    }
    return MXR_OK;
  }
  o->status = MXR_OK;
  o->hosts = rt->hosts;
  o->nhosts = nh;
  o->targets = rt->t;
  o->ntargets = rt->nt;
  for (size_t i = 0; i < upto; i++) {
    mxr_result f;
    if (mxr_plan_result(mxr_res_plan(rt->hops[i].res), &f) == MXR_OK &&
        f.status == MXR_OK) {
      /* "[host]" is no MX lookup: its implicit MX is not reported */
      o->implicit = rt->hops[i].mx && f.implicit;
      o->has_self_pref = f.has_self_pref;
      o->self_pref = f.self_pref;
      break;
    }
  }
  return MXR_OK;
}

mxr_status mxr_route_result(mxr_route *rt, mxr_result *out) {
  if (!mxr_route_done(rt))
    return MXR_EBADOPT;
  if (!rt->built) {
    build(rt);
    rt->built = 1;
  }
  *out = rt->res;
  return MXR_OK;
}

/* ------------------------------------------------------------------ */
/* the cache (DESIGN 8): each hop consults it like any resolution      */

void mxr_route_set_cache(mxr_route *rt, mxr_cache *c) {
  for (size_t i = 0; i < rt->nhops; i++)
    mxr_res_set_cache(rt->hops[i].res, c);
}

int mxr_route_ttl(const mxr_route *rt, uint32_t *ttl) {
  int known = 0;
  uint32_t low = 0, t;
  for (size_t i = 0; i < rt->nhops; i++) {
    if (mxr_res_ttl(rt->hops[i].res, &t) && (!known || t < low)) {
      low = t;
      known = 1;
    }
  }
  if (known && ttl)
    *ttl = low;
  return known;
}

int mxr_route_stale(const mxr_route *rt) {
  for (size_t i = 0; i < rt->nhops; i++)
    if (mxr_res_stale(rt->hops[i].res))
      return 1;
  return 0;
}
