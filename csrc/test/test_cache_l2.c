/*
 * test_cache_l2.c — the cache's second level (DESIGN 8: RRsets shared
 * between nginx workers): two caches with separate monotonic clocks and
 * one fake store and wall clock stand for two workers and their
 * lua_shared_dict. Round trips of every kind of entry, TTLs counting
 * down by wall time, expiry, max_ttl applied on the way in, and strict
 * refusal of malformed values (every truncation, trailing bytes, wrong
 * version, type, name, family, counts, flags), OOM.
 */
#include "dnsmsg.h"
#include "mxr_internal.h"
#include "mxroute.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Monotonic clocks of two processes: unrelated to each other. */
static double mono[2] = {1000.0, 5.0};
static double wall = 1.8e9;
static double mono_fn(void *ud) { return mono[*(int *)ud]; }
static double wall_fn(void *ud) {
  (void)ud;
  return wall;
}

/* The fake store: a few keys, each with a value and an expiry. */
#define SLOTS 16
static struct slot {
  char key[MXR_CACHE_KEY_BUF];
  unsigned char *val;
  size_t len;
  double exp;
} store[SLOTS];
static int gets, sets;
static uint32_t last_ttl;

static struct slot *slot_of(const char *key, int make) {
  for (int i = 0; i < SLOTS; i++)
    if (store[i].val && strcmp(store[i].key, key) == 0)
      return &store[i];
  if (make)
    for (int i = 0; i < SLOTS; i++)
      if (!store[i].val)
        return &store[i];
  return NULL;
}

static const unsigned char *st_get(void *ud, const char *key, size_t *len) {
  struct slot *s = slot_of(key, 0);
  (void)ud;
  gets++;
  if (!s || wall >= s->exp)
    return NULL;
  *len = s->len;
  return s->val;
}

static void st_set(void *ud, const char *key, const unsigned char *val,
                   size_t len, uint32_t ttl) {
  struct slot *s = slot_of(key, 1);
  (void)ud;
  sets++;
  last_ttl = ttl;
  if (!s)
    return;
  free(s->val);
  s->val = malloc(len ? len : 1);
  if (!s->val)
    return;
  memcpy(s->val, val, len);
  s->len = len;
  s->exp = wall + ttl;
  snprintf(s->key, sizeof s->key, "%s", key);
}

static void store_clear(void) {
  for (int i = 0; i < SLOTS; i++) {
    free(store[i].val);
    store[i].val = NULL;
  }
  gets = sets = 0;
}

static int ids[2] = {0, 1};

static mxr_cache *worker(int i, uint32_t max_ttl, int with_l2) {
  mxr_cache_config cfg;
  mxr_cache_l2 l2;
  mxr_cache *c;
  memset(&cfg, 0, sizeof cfg);
  cfg.max_ttl = max_ttl;
  cfg.now = mono_fn;
  cfg.now_ud = &ids[i];
  c = mxr_cache_new(&cfg);
  memset(&l2, 0, sizeof l2);
  l2.get = st_get;
  l2.set = st_set;
  l2.wall = wall_fn;
  if (c && with_l2)
    mxr_cache_set_l2(c, &l2);
  return c;
}

static int put(mxr_cache *c, dm *m, const char *name, uint16_t type) {
  mxr_answer a;
  int r;
  mxr_packet_parse(m->b, m->n, name, type, -1, &a);
  r = mxr_cache_put(c, name, type, &a, NULL);
  mxr_answer_clear(&a);
  return r;
}

static void put_mx(mxr_cache *c, const char *name, uint32_t ttl) {
  dm m;
  dm_reply(&m, 0, DM_RESPONSE, 0, name, MXR_TYPE_MX);
  dm_mx(&m, name, ttl, 10, "mx1.provider.test");
  dm_mx(&m, name, ttl + 5, 20, "mx2.provider.test");
  put(c, &m, name, MXR_TYPE_MX);
}

static void test_round_trip(void) {
  mxr_cache *a = worker(0, 0, 1), *b = worker(1, 0, 1);
  mxr_rrset rr;
  mxr_cache_stats st;
  dm m;
  store_clear();
  put_mx(a, "a.test", 60);
  is_int(sets, 1, "an insert is offered to the second level");
  is_int(last_ttl, 60, "with its TTL as the store's expiry");
  ok(!mxr_cache_get(a, "a.test", MXR_TYPE_A, 0, &rr), "a miss elsewhere");
  wall += 10.25;
  mono[1] += 3;
  ok(mxr_cache_get(b, "a.test", MXR_TYPE_MX, 0, &rr),
     "another worker finds it in the second level");
  is_int(rr.ttl, 49, "its TTL counted down by wall-clock time");
  is_int(rr.nmx, 2, "both MX records");
  is_int(rr.mx[1].pref, 20, "preferences kept");
  is_str(rr.mx[1].name, "mx2.provider.test", "names kept");
  is_int(rr.status, MXR_OK, "status kept");
  is_str(rr.canon, "a.test", "no CNAME: canon is the name");
  gets = 0;
  ok(mxr_cache_get(b, "a.test", MXR_TYPE_MX, 0, &rr), "again");
  is_int(gets, 0, "now a local hit: the second level is not asked");
  mxr_cache_get_stats(b, &st);
  is_int(st.l2_hits, 1, "one second-level hit counted");
  is_int(st.hits, 2, "both lookups are hits");
  is_int(st.misses, 0, "no miss");
  is_int(sets, 1, "an entry read back is not offered again");
  mono[1] += 50;
  wall += 50;
  ok(!mxr_cache_get(b, "a.test", MXR_TYPE_MX, 0, &rr),
     "expired locally, and in the store as well: a miss");

  /* NXDOMAIN, a CNAME chain that ends in NODATA, A and AAAA */
  dm_reply(&m, 0, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  dm_soa(&m, "test", 300, 120);
  ok(put(a, &m, "gone.test", MXR_TYPE_MX), "NXDOMAIN stored");
  ok(mxr_cache_get(b, "gone.test", MXR_TYPE_MX, 0, &rr) &&
         rr.status == MXR_ENXDOMAIN && rr.ttl == 120 && rr.nmx == 0,
     "NXDOMAIN shared with its negative TTL");
  dm_reply(&m, 0, DM_RESPONSE, 0, "alias.test", MXR_TYPE_MX);
  dm_cname(&m, "alias.test", 200, "real.test");
  dm_soa(&m, "test", 300, 300);
  ok(put(a, &m, "alias.test", MXR_TYPE_MX), "CNAME to NODATA stored");
  ok(mxr_cache_get(b, "alias.test", MXR_TYPE_MX, 0, &rr), "shared");
  is_str(rr.canon, "real.test", "canon kept");
  is_int(rr.ncname, 1, "CNAME count kept");
  dm_reply(&m, 0, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_a(&m, "h.test", 30, 192, 0, 2, 1);
  dm_a(&m, "h.test", 30, 192, 0, 2, 2);
  ok(put(a, &m, "h.test", MXR_TYPE_A), "A stored");
  ok(mxr_cache_get(b, "h.test", MXR_TYPE_A, 0, &rr) && rr.naddrs == 2 &&
         rr.addrs[1].family == 4 && rr.addrs[1].bytes[3] == 2,
     "A records shared");
  dm_reply(&m, 0, DM_RESPONSE, 0, "h.test", MXR_TYPE_AAAA);
  dm_aaaa(&m, "h.test", 30, 7);
  ok(put(a, &m, "h.test", MXR_TYPE_AAAA), "AAAA stored");
  ok(mxr_cache_get(b, "h.test", MXR_TYPE_AAAA, 0, &rr) && rr.naddrs == 1 &&
         rr.addrs[0].family == 6 && rr.addrs[0].bytes[15] == 7,
     "AAAA records shared");
  dm_reply(&m, 0, DM_RESPONSE, 0, "null.test", MXR_TYPE_MX);
  dm_mx(&m, "null.test", 30, 0, ".");
  ok(put(a, &m, "null.test", MXR_TYPE_MX), "null MX stored");
  ok(mxr_cache_get(b, "null.test", MXR_TYPE_MX, 0, &rr) && rr.nmx == 1 &&
         rr.mx[0].len == 0,
     "the null MX (RFC 7505) shared");
  mxr_cache_free(a);
  mxr_cache_free(b);
  store_clear();
}

static void test_limits(void) {
  mxr_cache *a = worker(0, 0, 1), *b = worker(1, 100, 1),
            *plain = worker(1, 0, 0);
  mxr_rrset rr;
  mxr_cache_stats st;
  store_clear();
  put_mx(a, "long.test", 3600);
  ok(mxr_cache_get(b, "long.test", MXR_TYPE_MX, 0, &rr), "found");
  is_int(rr.ttl, 100, "the reader's max_ttl applies to what it reads");
  put_mx(a, "short.test", 60);
  wall += 60;
  ok(!mxr_cache_get(b, "short.test", MXR_TYPE_MX, 0, &rr),
     "past its wall-clock expiry: a miss");
  /* a store that keeps values longer than told must not extend them */
  put_mx(a, "kept.test", 60);
  store[1].exp = 1e18;
  for (int i = 0; i < SLOTS; i++)
    if (store[i].val)
      store[i].exp = 1e18;
  wall += 61;
  ok(!mxr_cache_get(b, "kept.test", MXR_TYPE_MX, 0, &rr),
     "the expiry inside the value is what counts");
  mxr_cache_get_stats(b, &st);
  is_int(st.l2_hits, 1, "only the fresh one counted");
  gets = 0;
  ok(!mxr_cache_get(plain, "long.test", MXR_TYPE_MX, 0, &rr),
     "without a second level: a miss");
  is_int(gets, 0, "and nothing asked");
  mxr_cache_set_l2(b, NULL);
  ok(!mxr_cache_get(b, "short.test", MXR_TYPE_MX, 0, &rr) && gets == 0,
     "a second level removed is not asked");
  mxr_cache_free(a);
  mxr_cache_free(b);
  mxr_cache_free(plain);
  store_clear();
}

/* A valid value to break. */
static unsigned char *sample(const char *name, uint16_t type, size_t *len) {
  static const mxr_mx mx[2] = {{10, "mx1.test", 8}, {20, "", 0}};
  static mxr_addr addrs[2];
  mxr_rrset rr;
  memset(&rr, 0, sizeof rr);
  rr.status = MXR_OK;
  rr.canon = "";
  if (type == MXR_TYPE_MX) {
    rr.mx = mx;
    rr.nmx = 2;
  } else {
    addrs[0].family = addrs[1].family = type == MXR_TYPE_A ? 4 : 6;
    addrs[1].bytes[0] = 9;
    rr.addrs = addrs;
    rr.naddrs = 2;
  }
  return mxr_cache_encode(name, type, &rr, wall + 60, len);
}

static int decodes(const unsigned char *b, size_t len, const char *name,
                   uint16_t type) {
  mxr_cache_blob blob;
  int r = mxr_cache_decode(b, len, name, type, &blob);
  if (!r && (blob.recs || blob.nrecs))
    r = 2; /* a refusal must leave nothing behind */
  mxr_cache_blob_clear(&blob);
  return r;
}

static void test_malformed(void) {
  static const uint16_t types[] = {MXR_TYPE_MX, MXR_TYPE_A, MXR_TYPE_AAAA};
  unsigned char *b, *c;
  size_t len, cnt;
  int bad = 0;
  mxr_cache_blob blob;
  char key[MXR_CACHE_KEY_BUF];
  mxr_cache_key("a.test", MXR_TYPE_MX, key);
  is_str(key, "mxr1:15:a.test", "the key names version, type and name");
  for (size_t t = 0; t < 3; t++) {
    b = sample("a.test", types[t], &len);
    ok(b != NULL, "encoded");
    if (!b)
      continue;
    is_int(decodes(b, len, "a.test", types[t]), 1, "decodes (type %u)",
           types[t]);
    bad = 0;
    for (size_t n = 0; n < len; n++)
      bad += decodes(b, n, "a.test", types[t]) != 0;
    is_int(bad, 0, "every truncation refused (type %u)", types[t]);
    c = malloc(len + 1);
    if (c) {
      memcpy(c, b, len);
      c[len] = 0;
      ok(!decodes(c, len + 1, "a.test", types[t]), "a trailing byte refused");
      free(c);
    }
    ok(!decodes(b, len, "b.test", types[t]), "another name refused");
    ok(!decodes(b, len, "a.test", types[(t + 1) % 3]), "another type refused");
    b[3] = 2;
    ok(!decodes(b, len, "a.test", types[t]), "another version refused");
    b[3] = 1;
    b[6] = 2;
    ok(!decodes(b, len, "a.test", types[t]), "an unknown status refused");
    b[6] = 1;
    ok(!decodes(b, len, "a.test", types[t]), "NXDOMAIN with records refused");
    b[6] = 0;
    b[7] = 7;
    ok(!decodes(b, len, "a.test", types[t]), "a chased flag not 0/1 refused");
    b[7] = 0;
    b[19] = 'A';
    ok(!decodes(b, len, NULL, types[t]), "a name not normalised refused");
    b[19] = 'a';
    /* after name "a.test" (1+6) and canon "" (1): nmx, then (A, AAAA)
     * naddrs */
    cnt = types[t] == MXR_TYPE_MX ? 27 : 29;
    b[cnt]++;
    ok(!decodes(b, len, "a.test", types[t]), "a record count too high refused");
    b[cnt] -= 2;
    ok(!decodes(b, len, "a.test", types[t]), "a record count too low refused");
    b[cnt]++;
    ok(decodes(b, len, "a.test", types[t]) == 1, "restored: decodes again");
    if (types[t] != MXR_TYPE_MX) {
      b[30] = b[30] == 4 ? 6 : 4;
      ok(!decodes(b, len, "a.test", types[t]), "a family unfit for the type "
         "refused");
    } else {
      b[33] = '.';
      ok(!decodes(b, len, "a.test", types[t]), "a bad MX name refused");
    }
    mxr_free(b);
  }
  ok(!mxr_cache_decode(NULL, 0, "a.test", MXR_TYPE_MX, &blob),
     "NULL refused");
  ok(!mxr_cache_decode((const unsigned char *)"mxc\001", 4, NULL, 15, &blob),
     "a bare header refused");
}

static void test_corrupt_store(void) {
  mxr_cache *a = worker(0, 0, 1), *b = worker(1, 0, 1);
  mxr_rrset rr;
  mxr_cache_stats st;
  store_clear();
  put_mx(a, "a.test", 60);
  store[0].val[store[0].len - 1] ^= 0x80; /* a byte of the last MX name */
  ok(!mxr_cache_get(b, "a.test", MXR_TYPE_MX, 0, &rr),
     "a corrupt value is a miss");
  store[0].len--;
  ok(!mxr_cache_get(b, "a.test", MXR_TYPE_MX, 0, &rr),
     "a truncated value is a miss");
  mxr_cache_get_stats(b, &st);
  is_int(st.l2_hits, 0, "no second-level hit");
  is_int(st.misses, 2, "two misses");
  is_int(st.entries, 0, "nothing stored locally");
  mxr_cache_free(a);
  mxr_cache_free(b);
  store_clear();
}

static void test_oom(void) {
  int freed_ok = 1;
  for (long at = 1; at < 20; at++) {
    mxr_cache *a = worker(0, 0, 1), *b = worker(1, 0, 1);
    mxr_rrset rr;
    store_clear();
    if (!a || !b) {
      mxr_cache_free(a);
      mxr_cache_free(b);
      continue;
    }
    put_mx(a, "a.test", 60);
    mxr_test_alloc_count = 0;
    mxr_test_alloc_fail_at = at;
    if (mxr_cache_get(b, "a.test", MXR_TYPE_MX, 0, &rr))
      freed_ok &= rr.nmx == 2;
    mxr_test_alloc_fail_at = 0;
    mxr_cache_free(a);
    mxr_cache_free(b);
  }
  ok(freed_ok, "allocation failures while reading back: a miss or the "
     "whole entry, no leak");
  store_clear();
}

int main(void) {
  test_round_trip();
  test_limits();
  test_malformed();
  test_corrupt_store();
  test_oom();
  return done_testing();
}
