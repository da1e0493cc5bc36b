/*
 * test_cache.c — the RRset cache (DESIGN 8) on a fake clock: TTLs count
 * down and expire, RFC 2308 negative TTLs from the SOA, clamps, LRU
 * eviction (100k names through a small cache), serve-stale, flush, and
 * the resolution consulting it (hits hand out no query).
 */
#include "dnsmsg.h"
#include "mxr_internal.h"
#include "mxroute.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double fake_now = 1000.0;
static double clock_fn(void *ud) {
  (void)ud;
  return fake_now;
}

static mxr_cache *new_cache(size_t size, uint32_t min_ttl, uint32_t max_ttl,
                            uint32_t stale) {
  mxr_cache_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.size = size;
  cfg.min_ttl = min_ttl;
  cfg.max_ttl = max_ttl;
  cfg.stale = stale;
  cfg.now = clock_fn;
  return mxr_cache_new(&cfg);
}

static mxr_status parse(const dm *m, const char *name, uint16_t type,
                        mxr_answer *a) {
  return mxr_packet_parse(m->b, m->n, name, type, -1, a);
}

static void test_packet_negative_ttl(void) {
  dm m;
  mxr_answer a;
  /* RFC 2308 5: min(SOA TTL, MINIMUM), both ways round */
  dm_reply(&m, 0, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  dm_soa(&m, "test", 300, 60);
  is_int(parse(&m, "gone.test", MXR_TYPE_MX, &a), MXR_ENXDOMAIN,
         "NXDOMAIN parses");
  ok(a.has_soa && a.neg_ttl == 60, "NXDOMAIN: MINIMUM below the SOA TTL "
     "wins (%u)", a.neg_ttl);
  mxr_answer_clear(&a);
  dm_reply(&m, 0, DM_RESPONSE, 0, "nomx.test", MXR_TYPE_MX);
  dm_soa(&m, "test", 20, 600);
  is_int(parse(&m, "nomx.test", MXR_TYPE_MX, &a), MXR_OK, "NODATA parses");
  ok(a.has_soa && a.neg_ttl == 20, "NODATA: SOA TTL below MINIMUM wins (%u)",
     a.neg_ttl);
  mxr_answer_clear(&a);
  /* an SOA of a zone that does not enclose the name says nothing */
  dm_reply(&m, 0, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  dm_soa(&m, "other.example", 300, 300);
  parse(&m, "gone.test", MXR_TYPE_MX, &a);
  ok(!a.has_soa, "an SOA of another zone is ignored");
  mxr_answer_clear(&a);
  dm_reply(&m, 0, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  dm_soa(&m, "ne.test", 300, 300); /* a suffix, but not at a label */
  parse(&m, "gone.test", MXR_TYPE_MX, &a);
  ok(!a.has_soa, "an SOA whose owner only ends the same way is ignored");
  mxr_answer_clear(&a);
  dm_reply(&m, 0, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  parse(&m, "gone.test", MXR_TYPE_MX, &a);
  ok(!a.has_soa, "no SOA: no negative TTL");
  mxr_answer_clear(&a);
  /* a short SOA RDATA is not used */
  dm_reply(&m, 0, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  dm_soa_cut(&m, "test", 300, 60, 4);
  parse(&m, "gone.test", MXR_TYPE_MX, &a);
  ok(!a.has_soa, "a broken SOA gives no negative TTL");
  mxr_answer_clear(&a);
}

static void put_mx(mxr_cache *c, const char *name, uint32_t ttl) {
  dm m;
  mxr_answer a;
  dm_reply(&m, 0, DM_RESPONSE, 0, name, MXR_TYPE_MX);
  dm_mx(&m, name, ttl, 10, "mx1.provider.test");
  dm_mx(&m, name, ttl + 5, 20, "mx2.provider.test");
  parse(&m, name, MXR_TYPE_MX, &a);
  mxr_cache_put(c, name, MXR_TYPE_MX, &a, NULL);
  mxr_answer_clear(&a);
}

static void test_ttl_countdown(void) {
  mxr_cache *c = new_cache(0, 0, 0, 0);
  mxr_rrset rr;
  mxr_cache_stats st;
  fake_now = 1000.0;
  put_mx(c, "a.test", 60);
  ok(mxr_cache_get(c, "A.Test", MXR_TYPE_MX, 0, &rr), "a hit, names fold");
  is_int(rr.ttl, 60, "the TTL is the smallest of the RRset");
  is_int(rr.nmx, 2, "both MX records");
  is_str(rr.mx[1].name, "mx2.provider.test", "names kept");
  ok(!mxr_cache_get(c, "a.test", MXR_TYPE_A, 0, &rr), "another type misses");
  fake_now += 25.5;
  mxr_cache_get(c, "a.test", MXR_TYPE_MX, 0, &rr);
  is_int(rr.ttl, 34, "the TTL counts down");
  fake_now += 34.5;
  ok(!mxr_cache_get(c, "a.test", MXR_TYPE_MX, 0, &rr), "expired: a miss");
  mxr_cache_get_stats(c, &st);
  is_int(st.hits, 2, "hits counted");
  is_int(st.misses, 2, "misses counted");
  is_int(st.entries, 0, "an expired entry without stale window is dropped");
  mxr_cache_free(c);
}

static void test_negative(void) {
  mxr_cache *c = new_cache(0, 0, 0, 0);
  mxr_rrset rr;
  mxr_answer a;
  dm m;
  uint32_t ttl;
  fake_now = 1000.0;
  dm_reply(&m, 0, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  dm_soa(&m, "test", 300, 7);
  parse(&m, "gone.test", MXR_TYPE_MX, &a);
  ok(mxr_cache_put(c, "gone.test", MXR_TYPE_MX, &a, &ttl), "NXDOMAIN stored");
  is_int(ttl, 7, "for min(SOA TTL, MINIMUM)");
  mxr_answer_clear(&a);
  ok(mxr_cache_get(c, "gone.test", MXR_TYPE_MX, 0, &rr) &&
         rr.status == MXR_ENXDOMAIN,
     "NXDOMAIN comes back");
  dm_reply(&m, 0, DM_RESPONSE, 0, "nomx.test", MXR_TYPE_MX);
  parse(&m, "nomx.test", MXR_TYPE_MX, &a);
  ok(!mxr_cache_put(c, "nomx.test", MXR_TYPE_MX, &a, &ttl),
     "NODATA without an SOA is not stored");
  mxr_answer_clear(&a);
  dm_reply(&m, 0, DM_RESPONSE, 0, "nomx.test", MXR_TYPE_MX);
  dm_soa(&m, "test", 4, 3600);
  parse(&m, "nomx.test", MXR_TYPE_MX, &a);
  ok(mxr_cache_put(c, "nomx.test", MXR_TYPE_MX, &a, &ttl) && ttl == 4,
     "NODATA with an SOA is stored for the SOA TTL (%u)", ttl);
  mxr_answer_clear(&a);
  ok(mxr_cache_get(c, "nomx.test", MXR_TYPE_MX, 0, &rr) &&
         rr.status == MXR_OK && rr.nmx == 0,
     "NODATA comes back");
  /* a CNAME to a name without data: the CNAME's TTL if smaller */
  dm_reply(&m, 0, DM_RESPONSE, 0, "alias.test", MXR_TYPE_MX);
  dm_cname(&m, "alias.test", 2, "nomx.test");
  dm_soa(&m, "test", 300, 300);
  parse(&m, "alias.test", MXR_TYPE_MX, &a);
  ok(mxr_cache_put(c, "alias.test", MXR_TYPE_MX, &a, &ttl) && ttl == 2,
     "NODATA after a CNAME: min along the chain (%u)", ttl);
  mxr_answer_clear(&a);
  /* failures are never stored */
  dm_reply(&m, 0, DM_RESPONSE, 2, "bad.test", MXR_TYPE_MX);
  parse(&m, "bad.test", MXR_TYPE_MX, &a);
  ok(!mxr_cache_put(c, "bad.test", MXR_TYPE_MX, &a, &ttl), "SERVFAIL is "
     "not stored");
  mxr_answer_clear(&a);
  mxr_cache_free(c);
}

static void test_clamps(void) {
  mxr_cache *c = new_cache(0, 30, 3600, 0);
  mxr_rrset rr;
  mxr_answer a;
  dm m;
  uint32_t ttl;
  fake_now = 1000.0;
  put_mx(c, "short.test", 5);
  mxr_cache_get(c, "short.test", MXR_TYPE_MX, 0, &rr);
  is_int(rr.ttl, 30, "min_ttl raises a short TTL");
  put_mx(c, "long.test", 999999);
  mxr_cache_get(c, "long.test", MXR_TYPE_MX, 0, &rr);
  is_int(rr.ttl, 3600, "max_ttl lowers a long TTL");
  dm_reply(&m, 0, DM_RESPONSE, 0, "zero.test", MXR_TYPE_A);
  dm_a(&m, "zero.test", 0, 192, 0, 2, 1);
  parse(&m, "zero.test", MXR_TYPE_A, &a);
  ok(mxr_cache_put(c, "zero.test", MXR_TYPE_A, &a, &ttl) && ttl == 30,
     "min_ttl applies to TTL 0 too");
  mxr_answer_clear(&a);
  mxr_cache_free(c);
  c = new_cache(0, 0, 0, 0);
  dm_reply(&m, 0, DM_RESPONSE, 0, "zero.test", MXR_TYPE_A);
  dm_a(&m, "zero.test", 0, 192, 0, 2, 1);
  parse(&m, "zero.test", MXR_TYPE_A, &a);
  ok(!mxr_cache_put(c, "zero.test", MXR_TYPE_A, &a, &ttl),
     "TTL 0 is not stored (RFC 1035 3.2.1)");
  mxr_answer_clear(&a);
  mxr_cache_free(c);
  c = new_cache(0, 600, 60, 0);
  put_mx(c, "x.test", 5);
  mxr_cache_get(c, "x.test", MXR_TYPE_MX, 0, &rr);
  is_int(rr.ttl, 60, "min_ttl above max_ttl is lowered to it");
  mxr_cache_free(c);
}

static void test_lru(void) {
  mxr_cache *c = new_cache(3, 0, 0, 0);
  mxr_rrset rr;
  mxr_cache_stats st;
  char name[64];
  fake_now = 1000.0;
  put_mx(c, "1.test", 60);
  put_mx(c, "2.test", 60);
  put_mx(c, "3.test", 60);
  mxr_cache_get(c, "1.test", MXR_TYPE_MX, 0, &rr); /* 2 is now oldest */
  put_mx(c, "4.test", 60);
  ok(!mxr_cache_get(c, "2.test", MXR_TYPE_MX, 0, &rr),
     "the least recently used entry is evicted");
  ok(mxr_cache_get(c, "1.test", MXR_TYPE_MX, 0, &rr), "a used one stays");
  put_mx(c, "4.test", 90); /* replace: no eviction */
  mxr_cache_get_stats(c, &st);
  is_int(st.entries, 3, "bounded at its size");
  is_int(st.evictions, 1, "one eviction");
  mxr_cache_free(c);

  /* 100k names through a cache of 1000 */
  c = new_cache(1000, 0, 0, 0);
  for (int i = 0; i < 100000; i++) {
    snprintf(name, sizeof name, "d%d.test", i);
    put_mx(c, name, 300);
  }
  mxr_cache_get_stats(c, &st);
  is_int(st.entries, 1000, "100k names: 1000 entries");
  is_int(st.evictions, 99000, "100k names: 99000 evictions");
  ok(!mxr_cache_get(c, "d0.test", MXR_TYPE_MX, 0, &rr), "the first is gone");
  ok(mxr_cache_get(c, "d99000.test", MXR_TYPE_MX, 0, &rr) &&
         mxr_cache_get(c, "d99999.test", MXR_TYPE_MX, 0, &rr),
     "the last 1000 are there");
  ok(!mxr_cache_get(c, "d98999.test", MXR_TYPE_MX, 0, &rr),
     "the one before them is not");
  is_int(mxr_cache_flush(c, "d99999.test"), 1, "flush(name) drops it");
  ok(!mxr_cache_get(c, "d99999.test", MXR_TYPE_MX, 0, &rr), "flushed");
  is_int(mxr_cache_flush(c, NULL), 999, "flush() drops the rest");
  mxr_cache_get_stats(c, &st);
  is_int(st.entries, 0, "empty");
  mxr_cache_free(c);
}

static void test_stale(void) {
  mxr_cache *c = new_cache(0, 0, 0, 100);
  mxr_rrset rr;
  mxr_cache_stats st;
  fake_now = 1000.0;
  put_mx(c, "s.test", 10);
  ok(mxr_cache_get(c, "s.test", MXR_TYPE_MX, 1, &rr) && !rr.stale,
     "a fresh entry is fresh in stale mode too");
  fake_now += 50;
  ok(!mxr_cache_get(c, "s.test", MXR_TYPE_MX, 0, &rr), "expired: a miss");
  ok(mxr_cache_get(c, "s.test", MXR_TYPE_MX, 1, &rr) && rr.stale &&
         rr.ttl == 0 && rr.nmx == 2,
     "within the stale window it is served stale");
  fake_now += 60; /* 110 s past expiry */
  ok(!mxr_cache_get(c, "s.test", MXR_TYPE_MX, 1, &rr),
     "past the stale window it is gone");
  mxr_cache_get_stats(c, &st);
  is_int(st.stale, 1, "stale uses counted");
  is_int(st.entries, 0, "and the dead entry dropped");
  mxr_cache_free(c);
}

static void test_oom(void) {
  mxr_cache *c = NULL;
  long n;
  int survived = 1;
  for (n = 1; n < 10; n++) {
    mxr_test_alloc_count = 0;
    mxr_test_alloc_fail_at = n;
    c = new_cache(2, 0, 0, 0);
    if (c) {
      put_mx(c, "a.test", 60);
      put_mx(c, "b.test", 60);
      put_mx(c, "c.test", 60);
      mxr_cache_free(c);
    }
  }
  mxr_test_alloc_fail_at = 0;
  ok(survived, "allocation failures anywhere: no crash, no leak (ASan)");
  mxr_cache_free(NULL);
  ok(!mxr_cache_get(NULL, "a", MXR_TYPE_MX, 0, NULL), "NULL cache misses");
}

/* --- the resolution with a cache --------------------------------- */

static mxr_opts *opts;
static mxr_rng rng;
static int feed_decoded; /* deliver decoded answers (mxr_res_feed) */

/* The reply m to q: raw (mxr_res_answer), or decoded once the way the
 * exchange does and fed (mxr_res_feed): the cache must see the same. */
static void deliver(mxr_res *r, const mxr_query *q, const dm *m) {
  mxr_answer a;
  if (!feed_decoded) {
    mxr_res_answer(r, q->slot, m->b, m->n);
    return;
  }
  mxr_packet_parse(m->b, m->n, q->name, q->type, -1, &a);
  mxr_res_feed(r, q->slot, &a);
  mxr_answer_clear(&a);
}

static void answer_mx(mxr_res *r, const mxr_query *q, uint32_t ttl) {
  dm m;
  dm_reply(&m, 0, DM_RESPONSE, 0, q->name, q->type);
  dm_mx(&m, q->name, ttl, 10, "mx1.provider.test");
  dm_mx(&m, q->name, ttl, 10, "mx2.provider.test");
  deliver(r, q, &m);
}

static void answer_addr(mxr_res *r, const mxr_query *q, uint32_t ttl) {
  dm m;
  dm_reply(&m, 0, DM_RESPONSE, 0, q->name, q->type);
  if (q->type == MXR_TYPE_A)
    dm_a(&m, q->name, ttl, 192, 0, 2, q->name[2] == '1' ? 1 : 2);
  else
    dm_soa(&m, "provider.test", 300, 300); /* NODATA for AAAA */
  deliver(r, q, &m);
}

/* Run r to completion: MX answered with mx_ttl, addresses with a_ttl;
 * returns how many queries were handed out. */
static int run(mxr_res *r, uint32_t mx_ttl, uint32_t a_ttl) {
  mxr_query q;
  int n = 0;
  while (mxr_res_next(r, &q)) {
    n++;
    if (q.type == MXR_TYPE_MX)
      answer_mx(r, &q, mx_ttl);
    else
      answer_addr(r, &q, a_ttl);
  }
  return n;
}

static void test_resolution(void) {
  mxr_cache *c = new_cache(0, 0, 0, 60);
  mxr_res *r;
  mxr_result res;
  mxr_query q;
  uint32_t ttl = 0;
  int n, firsts = 0;
  fake_now = 1000.0;
  opts = mxr_opts_new();
  mxr_opts_ignore_clear(opts);
  mxr_rng_seed(&rng, 7);

  r = mxr_res_new("a.test", 6, opts, &rng);
  n = run(r, 40, 100);
  ok(mxr_res_done(r) && n == 5, "without a cache entry: 5 queries (%d)", n);
  ok(mxr_res_ttl(r, &ttl) && ttl == 40, "plan ttl: the lowest (%u)", ttl);
  ok(!mxr_res_stale(r), "not stale");
  mxr_res_free(r);

  /* the same resolution with the cache set, twice */
  r = mxr_res_new("a.test", 6, opts, &rng);
  mxr_res_set_cache(r, c);
  run(r, 40, 100);
  mxr_res_free(r);
  fake_now += 10;
  r = mxr_res_new("A.TEST", 6, opts, &rng);
  mxr_res_set_cache(r, c);
  n = run(r, 40, 100);
  ok(n == 0 && mxr_res_done(r), "every lookup cached: no query (%d)", n);
  ok(mxr_res_ttl(r, &ttl) && ttl == 30, "plan ttl counts down (%u)", ttl);
  mxr_plan_result(mxr_res_plan(r), &res);
  ok(res.status == MXR_OK && res.ntargets == 2, "a plan from the cache");
  mxr_res_free(r);

  /* fresh order every time: over 200 cached plans both MX lead */
  for (int i = 0; i < 200; i++) {
    r = mxr_res_new("a.test", 6, opts, &rng);
    mxr_res_set_cache(r, c);
    run(r, 40, 100);
    mxr_plan_result(mxr_res_plan(r), &res);
    if (res.ntargets && strcmp(res.targets[0].host, "mx1.provider.test") == 0)
      firsts++;
    mxr_res_free(r);
  }
  ok(firsts > 60 && firsts < 140, "cached plans are shuffled anew (%d/200)",
     firsts);

  /* MX expired, addresses fresh: only the MX is asked */
  fake_now += 35;
  r = mxr_res_new("a.test", 6, opts, &rng);
  mxr_res_set_cache(r, c);
  n = run(r, 40, 100);
  ok(n == 1, "only the expired RRset is asked again (%d)", n);
  mxr_res_free(r);

  /* serve-stale: MX expired, the refresh times out */
  fake_now += 45;
  r = mxr_res_new("a.test", 6, opts, &rng);
  mxr_res_set_cache(r, c);
  ok(mxr_res_next(r, &q) && q.type == MXR_TYPE_MX, "expired: asked");
  mxr_res_fail(r, q.slot, MXR_ETIMEOUT);
  ok(!mxr_res_next(r, &q) && mxr_res_done(r), "then done from the cache");
  mxr_plan_result(mxr_res_plan(r), &res);
  ok(res.status == MXR_OK && mxr_res_stale(r), "served stale");
  /* stale MX: 30 s (RFC 8767); the A records have 10 s left */
  ok(mxr_res_ttl(r, &ttl) && ttl == 10, "the lowest TTL, stale data counted "
     "as %d s", MXR_CACHE_STALE_TTL);
  mxr_res_free(r);
  /* a SERVFAIL answer is a failed refresh too */
  r = mxr_res_new("a.test", 6, opts, &rng);
  mxr_res_set_cache(r, c);
  mxr_res_next(r, &q);
  {
    dm m;
    dm_reply(&m, 0, DM_RESPONSE, 2, q.name, q.type);
    deliver(r, &q, &m);
  }
  ok(!mxr_res_next(r, &q) && mxr_res_done(r) && mxr_res_stale(r),
     "SERVFAIL: served stale");
  mxr_res_free(r);

  /* past the window: the failure stands */
  fake_now += 200;
  r = mxr_res_new("a.test", 6, opts, &rng);
  mxr_res_set_cache(r, c);
  mxr_res_next(r, &q);
  mxr_res_fail(r, q.slot, MXR_ETIMEOUT);
  mxr_plan_result(mxr_res_plan(r), &res);
  ok(res.status == MXR_ETIMEOUT && !mxr_res_stale(r),
     "past the stale window: TIMEOUT");
  ok(!mxr_res_ttl(r, &ttl), "a temporary failure has no TTL");
  mxr_res_free(r);

  /* NXDOMAIN is cached and reported with its TTL */
  {
    dm m;
    r = mxr_res_new("gone.test", 9, opts, &rng);
    mxr_res_set_cache(r, c);
    mxr_res_next(r, &q);
    dm_reply(&m, 0, DM_RESPONSE, 3, q.name, q.type);
    dm_soa(&m, "test", 300, 15);
    deliver(r, &q, &m);
    ok(mxr_res_ttl(r, &ttl) && ttl == 15, "NXDOMAIN ttl (%u)", ttl);
    mxr_res_free(r);
    r = mxr_res_new("gone.test", 9, opts, &rng);
    mxr_res_set_cache(r, c);
    ok(!mxr_res_next(r, &q) && mxr_res_done(r), "NXDOMAIN from the cache");
    mxr_plan_result(mxr_res_plan(r), &res);
    ok(res.status == MXR_ENXDOMAIN, "still NXDOMAIN");
    mxr_res_free(r);
  }

  /* a CNAME chain split over answers: each hop cached, TTL = min */
  {
    dm m;
    r = mxr_res_new("alias.test", 10, opts, &rng);
    mxr_res_set_cache(r, c);
    mxr_res_next(r, &q);
    dm_reply(&m, 0, DM_RESPONSE, 0, q.name, q.type);
    dm_cname(&m, "alias.test", 3, "real.test");
    deliver(r, &q, &m);
    n = run(r, 50, 100);
    ok(mxr_res_ttl(r, &ttl) && ttl == 3, "CNAME chain: min TTL (%u)", ttl);
    mxr_res_free(r);
    r = mxr_res_new("alias.test", 10, opts, &rng);
    mxr_res_set_cache(r, c);
    n = run(r, 50, 100);
    mxr_plan_result(mxr_res_plan(r), &res);
    ok(n == 0 && res.status == MXR_OK, "the chain comes from the cache");
    mxr_res_free(r);
  }

  /* a CNAME loop across two cached answers ends as CNAMELOOP, not in an
   * endless walk through the cache */
  {
    dm m;
    for (int k = 0; k < 2; k++) {
      r = mxr_res_new("loop1.test", 10, opts, &rng);
      mxr_res_set_cache(r, c);
      while (mxr_res_next(r, &q)) {
        const char *to = strcmp(q.name, "loop1.test") == 0 ? "loop2.test"
                                                            : "loop1.test";
        dm_reply(&m, 0, DM_RESPONSE, 0, q.name, q.type);
        dm_cname(&m, q.name, 60, to);
        deliver(r, &q, &m);
      }
      mxr_plan_result(mxr_res_plan(r), &res);
      ok(mxr_res_done(r) && res.status == MXR_ECNAMELOOP,
         "CNAME loop %s: CNAMELOOP", k ? "from the cache" : "from answers");
      mxr_res_free(r);
    }
  }

  mxr_opts_free(opts);
  mxr_cache_free(c);
}

int main(void) {
  test_packet_negative_ttl();
  test_ttl_countdown();
  test_negative();
  test_clamps();
  test_lru();
  test_stale();
  test_oom();
  test_resolution();
  feed_decoded = 1;
  diag("the resolution again, fed decoded answers (mxr_res_feed)");
  test_resolution();
  return done_testing();
}
