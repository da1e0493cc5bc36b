/*
 * test_rrtype.c — the record-type table (rrtype.c) used generically.
 *
 * Every entry of the table that decodes goes the whole way without
 * naming its type: a reply with two records of it (behind a CNAME) is
 * decoded, the records are stored in a cache and read back, written to
 * the second level and read back there, in another cache through the
 * second level, and flushed; each step must give the very same records
 * (compared in the entry's own second-level form). The resolution asks
 * the type of the MX role for a domain and every type of the address
 * role for each host, in table order. The only per-type data here is
 * the sample RDATA below: a type added to the table without samples
 * fails the first check.
 */
#include "dnsmsg.h"
#include "mxr_internal.h"
#include "mxroute.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two records of RDATA per type (wire form). */
typedef struct sample {
  uint16_t type;
  size_t len[2];
  unsigned char rd[2][40];
} sample;

static const sample samples[] = {
    {MXR_TYPE_A, {4, 4}, {{192, 0, 2, 1}, {192, 0, 2, 2}}},
    {MXR_TYPE_AAAA,
     {16, 16},
     {{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
      {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}}},
    {MXR_TYPE_MX,
     {13, 14},
     {{0, 10, 4, 'm', 'a', 'i', 'l', 4, 't', 'e', 's', 't', 0},
      {0, 20, 5, 'r', 'e', 'l', 'a', 'y', 4, 't', 'e', 's', 't', 0}}},
};

static const sample *sample_of(uint16_t type) {
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
    if (samples[i].type == type)
      return &samples[i];
  return NULL;
}

/* A reply to (qname, type): qname CNAME "target.test", which holds the
 * two sample records of the type. */
static void build(dm *m, const char *qname, const sample *s) {
  size_t at;
  dm_reply(m, 0x1234, DM_RESPONSE, 0, qname, s->type);
  dm_cname(m, qname, 300, "target.test");
  for (int i = 0; i < 2; i++) {
    at = dm_rr_begin(m, "target.test", s->type, 1, 120 + (unsigned)i);
    for (size_t k = 0; k < s->len[i]; k++)
      dm_u8(m, s->rd[i][k]);
    dm_rr_end(m, at);
  }
  /* an SOA, as in a real answer: it plays no part in positive ones */
  dm_put16(m, 8, 1);
  dm_soa(m, "test", 300, 60);
}

/* The records in t's second-level form: what "the same records" means
 * for any type. Returns the length (0 on failure). */
static size_t form(const mxr_rrtype *t, const void *recs, size_t n,
                   unsigned char *buf, size_t cap) {
  size_t size = t->l2_size(recs, n);
  if (size == MXR_L2_NONE || size > cap)
    return 0;
  return (size_t)(t->l2_put(buf, recs, n) - buf);
}

static int same(const mxr_rrtype *t, const void *recs, size_t n,
                const unsigned char *want, size_t wantlen) {
  unsigned char buf[512];
  size_t len = form(t, recs, n, buf, sizeof buf);
  return n == 2 && len == wantlen && memcmp(buf, want, len) == 0;
}

static double mono = 100.0;
static double mono_fn(void *ud) {
  (void)ud;
  return mono;
}
static double wall_fn(void *ud) {
  (void)ud;
  return 1.8e9;
}

/* A second level of one value, for two caches. */
static unsigned char *l2_val;
static size_t l2_len;
static const unsigned char *l2_get(void *ud, const char *key, size_t *len) {
  (void)ud;
  (void)key;
  *len = l2_len;
  return l2_val;
}
static void l2_set(void *ud, const char *key, const unsigned char *val,
                   size_t len, uint32_t ttl) {
  (void)ud;
  (void)key;
  (void)ttl;
  free(l2_val);
  l2_val = malloc(len);
  if (l2_val)
    memcpy(l2_val, val, len);
  l2_len = l2_val ? len : 0;
}

static void test_table(void) {
  for (size_t i = 0; i < mxr_nrrtypes; i++) {
    const mxr_rrtype *t = &mxr_rrtypes[i];
    ok(mxr_rrtype_of(t->type) == t, "%s: found by its code %u", t->name,
       t->type);
    is_str(mxr_rrtype_name(t->type), t->name, "%s: named", t->name);
    for (size_t k = 0; k < i; k++)
      ok(mxr_rrtypes[k].type != t->type &&
             strcmp(mxr_rrtypes[k].name, t->name) != 0,
         "%s: one entry per type (%s)", t->name, mxr_rrtypes[k].name);
    if (!t->decode) {
      ok(t->role == MXR_ROLE_NONE, "%s: never asked", t->name);
      continue;
    }
    ok(sample_of(t->type) != NULL, "%s: has samples here", t->name);
    ok(t->check && t->size && t->l2_size && t->l2_put && t->l2_get &&
           t->l2_min > 0,
       "%s: every function of a decoded type", t->name);
    ok(t->role != MXR_ROLE_ADDR || t->family == 4 || t->family == 6,
       "%s: an address role has a family", t->name);
  }
  ok(mxr_rrtype_of(16) == NULL, "a type not in the table has no entry");
  is_str(mxr_rrtype_name(16), "?", "... and no name");
}

/* A reply with s's records decodes into a, in t's fields only; want
 * gets them in t's second-level form. Returns its length. */
static size_t decoded(const mxr_rrtype *t, const sample *s, mxr_answer *a,
                      unsigned char *want, size_t cap) {
  unsigned char *q = NULL;
  size_t n = 0, qlen = 0, wantlen;
  const void *recs;
  dm m;
  ok(mxr_packet_query("alias.test", t->type, 7, &q, &qlen) == MXR_OK &&
         qlen > 12,
     "%s: a query is built", t->name);
  mxr_packet_free(q);
  build(&m, "alias.test", s);
  is_int(mxr_packet_check(m.b, m.n, "alias.test", t->type, 0x1234, a),
         MXR_OK, "%s: the reply passes the checks", t->name);
  mxr_answer_records(a, t, &n);
  ok(n == 0 && !a->priv_, "%s: ... and checking decodes nothing", t->name);
  mxr_answer_clear(a);
  is_int(mxr_packet_parse(m.b, m.n, "alias.test", t->type, 0x1234, a),
         MXR_OK, "%s: the reply decodes", t->name);
  is_str(a->canon, "target.test", "%s: behind the CNAME", t->name);
  is_int(a->ttl, 120, "%s: smallest TTL", t->name);
  recs = mxr_answer_records(a, t, &n);
  is_int(n, 2, "%s: two records", t->name);
  wantlen = form(t, recs, n, want, cap);
  ok(wantlen > 0, "%s: records in the second-level form", t->name);
  for (size_t i = 0; i < mxr_nrrtypes; i++) {
    const mxr_rrtype *u = &mxr_rrtypes[i];
    size_t un = 0;
    if (u->size && u->ans_recs != t->ans_recs) {
      mxr_answer_records(a, u, &un);
      is_int(un, 0, "%s: no %s records", t->name, u->name);
    }
  }
  return wantlen;
}

/* A one-octet record of the type fails the whole reply, without data. */
static void refused(const mxr_rrtype *t) {
  mxr_answer a;
  size_t at, n = 0;
  dm m;
  dm_reply(&m, 0x1234, DM_RESPONSE, 0, "alias.test", t->type);
  at = dm_rr_begin(&m, "alias.test", t->type, 1, 60);
  dm_u8(&m, 0xff); /* fits no decoded type */
  dm_rr_end(&m, at);
  is_int(mxr_packet_parse(m.b, m.n, "alias.test", t->type, 0x1234, &a),
         MXR_EFORMERR, "%s: a one-octet record is refused", t->name);
  mxr_answer_records(&a, t, &n);
  ok(n == 0 && !a.priv_, "%s: ... without records", t->name);
  mxr_answer_clear(&a);
}

/* What the second level was offered for rr (found in a cache): the same
 * records, the version 1 layout for the first two sections, and
 * another cache reads them through it. */
static void second_level(const mxr_rrtype *t, const mxr_rrset *rr,
                         const mxr_cache_config *cfg, const mxr_cache_l2 *l2,
                         const unsigned char *want, size_t wantlen) {
  mxr_cache_blob blob;
  mxr_rrset rr2;
  mxr_cache *c2;
  unsigned char *b;
  const void *recs;
  size_t n = 0, len = 0;
  ok(l2_val != NULL, "%s: offered to the second level", t->name);
  ok(mxr_cache_decode(l2_val, l2_len, "alias.test", t->type, &blob),
     "%s: the offered value decodes", t->name);
  ok(same(t, blob.recs, blob.nrecs, want, wantlen),
     "%s: ... to the same records", t->name);
  is_str(blob.canon, "target.test", "%s: ... and chain end", t->name);
  if (t->l2_section < 2)
    is_int(l2_len,
           18 + 1 + strlen("alias.test") + 1 + strlen("target.test") + 2 * 2 +
               wantlen,
           "%s: the version 1 layout, byte for byte", t->name);
  mxr_cache_blob_clear(&blob);
  b = mxr_cache_encode("alias.test", t->type, rr, 1.8e9 + 60, &len);
  ok(b && len == l2_len && memcmp(b + 18, l2_val + 18, len - 18) == 0,
     "%s: encoding the RRset gives the offered bytes (but expiry)",
     t->name);
  mxr_free(b);
  c2 = mxr_cache_new(cfg);
  mxr_cache_set_l2(c2, l2);
  ok(mxr_cache_get(c2, "alias.test", t->type, 0, &rr2),
     "%s: another cache finds it in the second level", t->name);
  recs = mxr_rrset_records(&rr2, t, &n);
  ok(same(t, recs, n, want, wantlen), "%s: ... the same records", t->name);
  mxr_cache_free(c2);
}

/* Everything a type's records go through, for type t. */
static void round_trip(const mxr_rrtype *t) {
  const sample *s = sample_of(t->type);
  mxr_cache_config cfg;
  mxr_cache_l2 l2;
  mxr_cache *c;
  mxr_answer a, a2;
  mxr_rrset rr;
  unsigned char want[512];
  size_t n = 0, wantlen;
  const void *recs;
  uint32_t ttl = 0;
  if (!s)
    return;
  wantlen = decoded(t, s, &a, want, sizeof want);
  refused(t);
  memset(&cfg, 0, sizeof cfg);
  cfg.now = mono_fn;
  memset(&l2, 0, sizeof l2);
  l2.get = l2_get;
  l2.set = l2_set;
  l2.wall = wall_fn;
  c = mxr_cache_new(&cfg);
  mxr_cache_set_l2(c, &l2);
  ok(mxr_cache_put(c, "alias.test", t->type, &a, &ttl) && ttl == 120,
     "%s: stored for its TTL", t->name);
  mxr_answer_clear(&a); /* the cache holds its own copy */
  ok(mxr_cache_get(c, "alias.test", t->type, 0, &rr), "%s: found", t->name);
  is_str(rr.canon, "target.test", "%s: the chain's end kept", t->name);
  recs = mxr_rrset_records(&rr, t, &n);
  ok(same(t, recs, n, want, wantlen), "%s: the cache gives the records",
     t->name);
  /* the resolution rebuilds an answer from the RRset (feed_rrset) */
  memset(&a2, 0, sizeof a2);
  mxr_answer_set_records(&a2, t, recs, n);
  recs = mxr_answer_records(&a2, t, &n);
  ok(same(t, recs, n, want, wantlen),
     "%s: ... and so does the answer rebuilt from it", t->name);
  second_level(t, &rr, &cfg, &l2, want, wantlen);
  is_int(mxr_cache_flush(c, "alias.test"), 1, "%s: flushed by name",
         t->name);
  mxr_cache_set_l2(c, NULL);
  ok(!mxr_cache_get(c, "alias.test", t->type, 0, &rr), "%s: gone", t->name);
  mxr_cache_free(c);
  free(l2_val);
  l2_val = NULL;
  l2_len = 0;
}

static void test_round_trips(void) {
  for (size_t i = 0; i < mxr_nrrtypes; i++)
    if (mxr_rrtypes[i].decode)
      round_trip(&mxr_rrtypes[i]);
}

/* The answer to q from the samples of its type. */
static void answer(mxr_res *r, const mxr_query *q) {
  const sample *s = sample_of(q->type);
  dm m;
  dm_reply(&m, 0, DM_RESPONSE, 0, q->name, q->type);
  for (int i = 0; s && i < 2; i++) {
    size_t at = dm_rr_begin(&m, q->name, q->type, 1, 60);
    for (size_t k = 0; k < s->len[i]; k++)
      dm_u8(&m, s->rd[i][k]);
    dm_rr_end(&m, at);
  }
  mxr_res_answer(r, q->slot, m.b, m.n);
}

/* The resolution asks by role: the MX role for the domain, then every
 * address type for each host, in the table's order. */
static void test_roles(void) {
  mxr_opts *o = mxr_opts_new();
  const mxr_rrtype *mx = NULL;
  mxr_query q, qs[16];
  mxr_result res;
  mxr_rng rng;
  mxr_res *r;
  size_t naddr = 0, nq = 0;
  int order = 1;
  if (!o)
    return;
  mxr_opts_ignore_clear(o);
  mxr_rng_seed(&rng, 7);
  for (size_t i = 0; i < mxr_nrrtypes; i++) {
    if (mxr_rrtypes[i].role == MXR_ROLE_MX)
      mx = &mxr_rrtypes[i];
    if (mxr_rrtypes[i].role == MXR_ROLE_ADDR)
      naddr++;
  }
  ok(mx && naddr > 0, "the table has the MX role and address roles");
  r = mxr_res_new("user@d.test", 11, o, &rng);
  ok(r && mxr_res_next(r, &q) && mx && q.type == mx->type,
     "a domain is asked for with the MX role's type");
  if (r && mx && q.type == mx->type)
    answer(r, &q);
  while (r && nq < 16 && mxr_res_next(r, &qs[nq]))
    nq++;
  is_int(nq, 2 * naddr, "each of the 2 hosts: every address type");
  for (size_t i = 0; i < nq; i++) {
    size_t want = i % naddr, k = 0; /* the want-th address type */
    for (; k < mxr_nrrtypes; k++)
      if (mxr_rrtypes[k].role == MXR_ROLE_ADDR && want-- == 0)
        break;
    if (k == mxr_nrrtypes || qs[i].type != mxr_rrtypes[k].type)
      order = 0;
  }
  ok(order, "... in the table's order, host by host");
  for (size_t i = 0; i < nq; i++)
    answer(r, &qs[i]);
  ok(r && mxr_res_done(r), "done once every query is answered");
  if (r && mxr_res_result(r, &res) == MXR_OK) {
    ok(res.nhosts == 2 && res.hosts[0].naddrs == 2 * naddr,
       "each host has two addresses of every address type");
  } else {
    ok(0, "the plan succeeds");
  }
  mxr_res_free(r);
  mxr_opts_free(o);
}

int main(void) {
  test_table();
  test_round_trips();
  test_roles();
  return done_testing();
}
