/*
 * test_resolve.c — the resolution state machine, driven without a
 * network: the test plays the transport, taking queries with
 * mxr_res_next and answering them with replies built by dnsmsg.h.
 */
#include "dnsmsg.h"
#include "mxroute.h"
#include "resq.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mxr_opts *opts;
static mxr_rng rng;

static int feed_decoded; /* deliver decoded answers (mxr_res_feed) */

/* The reply m to q: raw (mxr_res_answer), or decoded once the way the
 * exchange does and fed (mxr_res_feed): every outcome must be the same. */
static void answer(mxr_res *r, const mxr_query *q, const dm *m) {
  mxr_answer a;
  if (!feed_decoded) {
    mxr_res_answer(r, q->slot, m->b, m->n);
    return;
  }
  mxr_packet_parse(m->b, m->n, q->name, q->type, -1, &a);
  mxr_res_feed(r, q->slot, &a);
  mxr_answer_clear(&a);
}

/* A reply for q (NOERROR, question echoed) to add records to. */
static void reply(dm *m, const mxr_query *q, unsigned rcode) {
  dm_reply(m, 0, DM_RESPONSE, rcode, q->name, q->type);
}

static void answer_rcode(mxr_res *r, const mxr_query *q, unsigned rcode) {
  dm m;
  reply(&m, q, rcode);
  answer(r, q, &m);
}

static void answer_a(mxr_res *r, const mxr_query *q, unsigned last) {
  dm m;
  reply(&m, q, 0);
  if (q->type == MXR_TYPE_A)
    dm_a(&m, q->name, 60, 192, 0, 2, last);
  else
    dm_aaaa(&m, q->name, 60, last);
  answer(r, q, &m);
}

/* Answer each of the n queries qs: with an address ending in last. */
static void answer_all_a(mxr_res *r, const mxr_query *qs, size_t n, unsigned last) {
  for (size_t i = 0; i < n; i++)
    answer_a(r, &qs[i], last);
}

/* ... or with no record and rcode. */
static void answer_all_rcode(mxr_res *r, const mxr_query *qs, size_t n, unsigned rcode) {
  for (size_t i = 0; i < n; i++)
    answer_rcode(r, &qs[i], rcode);
}

static mxr_res *start(const char *input) {
  return mxr_res_new(input, strlen(input), opts, &rng);
}

static mxr_status result(mxr_res *r, mxr_result *res) {
  memset(res, 0, sizeof *res);
  if (mxr_plan_result(mxr_res_plan(r), res) != MXR_OK)
    return (mxr_status)-1;
  return res->status;
}

static int has_target(const mxr_result *res, const char *host,
                      const char *addr) {
  for (size_t i = 0; i < res->ntargets; i++) {
    char t[MXR_ADDR_BUF];
    mxr_addr_format(&res->targets[i].addr, t);
    if (strcmp(res->targets[i].host, host) == 0 && strcmp(t, addr) == 0)
      return 1;
  }
  return 0;
}

static mxr_status skip_code(const mxr_result *res, const char *name) {
  for (size_t i = 0; i < res->nskipped; i++)
    if (strcmp(res->skipped[i].name, name) == 0)
      return res->skipped[i].code;
  return MXR_OK;
}

typedef void (*build_fn)(dm *, const mxr_query *);

/* Start "user@mx.test" with options o and answer the MX query with the
 * reply build makes for it; qs and *n: the queries asked next. */
static mxr_res *after_mx_with(const mxr_opts *o, build_fn build, mxr_query *qs, size_t *n) {
  dm m;
  mxr_res *r = mxr_res_new("user@mx.test", 12, o, &rng);
  *n = drain(r, qs);
  if (*n != 1)
    return r;
  build(&m, &qs[0]);
  answer(r, &qs[0], &m);
  *n = drain(r, qs);
  return r;
}

/* The same with the default options. */
static mxr_res *after_mx(build_fn build, mxr_query *qs, size_t *n) {
  return after_mx_with(opts, build, qs, n);
}

/* Start "user@mx.test" and fail its MX query with st (as the transport
 * does); qs: room for the queries. */
static mxr_res *mx_failed(mxr_status st, mxr_query *qs) {
  mxr_res *r = start("user@mx.test");
  drain(r, qs);
  mxr_res_fail(r, qs[0].slot, st);
  return r;
}

/* An MX answer that must end the plan with want; text: what it is, or
 * what the message must hold. */
typedef struct mx_case {
  build_fn build;
  mxr_status want;
  const char *text;
} mx_case;

static void two_mx(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_mx(m, q->name, 300, 20, "mx2.test");
  dm_mx(m, q->name, 300, 10, "MX1.test.");
}

static void one_mx(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_mx(m, q->name, 60, 10, "mx1.test");
}

/* ------------------------------------------------------------------ */

static void test_simple(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  const mxr_query *q;
  mxr_res *r = start("user@MX.test");
  size_t n = drain(r, qs);
  dm m;

  is_int(n, 1, "simple: one query first");
  ok(n == 1 && qs[0].type == MXR_TYPE_MX && strcmp(qs[0].name, "mx.test") == 0,
     "simple: MX for the normalised domain");
  is_int(mxr_res_inflight(r), 1, "simple: one in flight");
  ok(!mxr_res_done(r), "simple: not done");
  two_mx(&m, &qs[0]);
  answer(r, &qs[0], &m);
  is_int(mxr_res_inflight(r), 0, "simple: MX answered");
  n = drain(r, qs);
  is_int(n, 4, "simple: four queries at once, before any answer");
  ok(find(qs, n, "mx1.test", MXR_TYPE_A) && find(qs, n, "mx1.test", MXR_TYPE_AAAA) &&
         find(qs, n, "mx2.test", MXR_TYPE_A) &&
         find(qs, n, "mx2.test", MXR_TYPE_AAAA),
     "simple: A and AAAA of both hosts");
  is_int(mxr_res_inflight(r), 4, "simple: four in flight");
  {
    int distinct = 1;
    for (size_t i = 0; i < n; i++)
      for (size_t j = i + 1; j < n; j++)
        if (qs[i].slot == qs[j].slot || qs[i].slot == 0)
          distinct = 0;
    ok(distinct, "simple: slots are distinct");
  }
  q = find(qs, n, "mx1.test", MXR_TYPE_A);
  if (q)
    answer_a(r, q, 1);
  q = find(qs, n, "mx1.test", MXR_TYPE_AAAA);
  if (q)
    answer_rcode(r, q, 0); /* NODATA */
  q = find(qs, n, "mx2.test", MXR_TYPE_A);
  if (q)
    answer_a(r, q, 2);
  ok(!mxr_res_done(r), "simple: not done with one lookup open");
  q = find(qs, n, "mx2.test", MXR_TYPE_AAAA);
  if (q)
    answer_a(r, q, 2);
  ok(mxr_res_done(r), "simple: done");
  is_int(mxr_res_inflight(r), 0, "simple: nothing in flight");
  is_int(mxr_res_next(r, qs), 0, "simple: no more queries");
  is_int(result(r, &res), MXR_OK, "simple: plan OK");
  is_int(res.nhosts, 2, "simple: two hosts");
  if (res.nhosts == 2) {
    is_str(res.hosts[0].name, "mx1.test", "simple: mx1 first (pref 10)");
    is_str(res.hosts[1].name, "mx2.test", "simple: mx2 second");
  }
  is_int(res.ntargets, 3, "simple: three targets");
  ok(has_target(&res, "mx1.test", "192.0.2.1") &&
         has_target(&res, "mx2.test", "192.0.2.2") &&
         has_target(&res, "mx2.test", "2001:db8::2"),
     "simple: the addresses answered");
  ok(!res.implicit, "simple: not implicit");
  mxr_res_free(r);
}

static void nodata(dm *m, const mxr_query *q) { reply(m, q, 0); }

static void test_implicit(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  size_t n;
  mxr_res *r = after_mx(nodata, qs, &n);
  is_int(n, 2, "NODATA: A and AAAA of the domain");
  ok(find(qs, n, "mx.test", MXR_TYPE_A) && find(qs, n, "mx.test", MXR_TYPE_AAAA),
     "NODATA: for mx.test itself");
  answer_all_a(r, qs, n, 5);
  is_int(result(r, &res), MXR_OK, "NODATA: plan OK");
  ok(res.implicit == 1, "NODATA: implicit MX");
  ok(res.nhosts == 1 && strcmp(res.hosts[0].name, "mx.test") == 0 &&
         res.hosts[0].pref == 0,
     "NODATA: the domain at pref 0");
  mxr_res_free(r);

  /* ... and no address either: NOHOSTS */
  r = after_mx(nodata, qs, &n);
  answer_all_rcode(r, qs, n, 0);
  is_int(result(r, &res), MXR_ENOHOSTS, "NODATA, no address: NOHOSTS");
  mxr_res_free(r);
}

static void nxdomain(dm *m, const mxr_query *q) { reply(m, q, 3); }
static void servfail(dm *m, const mxr_query *q) { reply(m, q, 2); }
static void refused(dm *m, const mxr_query *q) { reply(m, q, 5); }
static void null_mx(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_mx(m, q->name, 60, 0, ".");
}

static void test_mx_failures(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  size_t n;
  mxr_res *r;
  static const mx_case cases[] = {
      {nxdomain, MXR_ENXDOMAIN, "NXDOMAIN"},
      {servfail, MXR_ESERVFAIL, "SERVFAIL"},
      {refused, MXR_EREFUSED, "REFUSED"},
      {null_mx, MXR_ENULLMX, "null MX"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    r = after_mx(cases[i].build, qs, &n);
    ok(mxr_res_done(r), "%s: done", cases[i].text);
    is_int(n, 0, "%s: no A/AAAA query (rule 2)", cases[i].text);
    is_int(result(r, &res), cases[i].want, "%s: plan status", cases[i].text);
    ok(res.message && res.message[0], "%s: message \"%s\"", cases[i].text,
       res.message ? res.message : "");
    mxr_res_free(r);
  }

  /* transport failures of the MX query */
  {
    static const mxr_status sts[] = {MXR_ETIMEOUT, MXR_ENETWORK,
                                     MXR_ESERVFAIL, MXR_ECANCELLED};
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) {
      r = mx_failed(sts[i], qs);
      ok(mxr_res_done(r), "MX %s: done", mxr_status_name(sts[i]));
      is_int(drain(r, qs), 0, "MX %s: no fallback query",
             mxr_status_name(sts[i]));
      is_int(result(r, &res), sts[i], "MX %s: the plan fails with it",
             mxr_status_name(sts[i]));
      mxr_res_free(r);
    }
  }
  /* a "failure" that is no failure never becomes NODATA */
  {
    static const mxr_status sts[] = {MXR_OK, MXR_ENODATA, MXR_ENULLMX,
                                     (mxr_status)99};
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++) {
      r = mx_failed(sts[i], qs);
      is_int(drain(r, qs), 0, "fail(%d): no fallback query", (int)sts[i]);
      is_int(result(r, &res), MXR_ENETWORK, "fail(%d): NETWORK", (int)sts[i]);
      mxr_res_free(r);
    }
  }
}

/* hostile or broken MX answers: temporary failure, never data */
static void qr0(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_put16(m, 2, 0x0100);
  dm_mx(m, q->name, 60, 10, "mx1.test");
}
static void foreign(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_mx(m, "evil.test", 60, 10, "mx1.evil.test");
}
static void foreign_beside(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_mx(m, q->name, 60, 10, "mx1.test");
  dm_mx(m, "evil.test", 60, 0, "mx1.evil.test");
}
static void mismatch(dm *m, const mxr_query *q) {
  dm_reply(m, 0, DM_RESPONSE, 0, "other.test", MXR_TYPE_MX);
  dm_mx(m, "other.test", 60, 10, "mx1.test");
  (void)q;
}
static void rcode11(dm *m, const mxr_query *q) {
  reply(m, q, 11);
  dm_mx(m, q->name, 60, 10, "mx1.test");
}
static void truncated(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_put16(m, 2, DM_RESPONSE | DM_TC);
}
static void short_reply(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  m->n = 7;
}

static void test_hostile(void) {
  static const mx_case cases[] = {
      {qr0, MXR_EFORMERR, "mx.test MX: reply QR bit not set"},
      {foreign, MXR_EFORMERR, "mx.test MX: record owned by evil.test"},
      {foreign_beside, MXR_EFORMERR, "mx.test MX: record owned by evil.test"},
      {mismatch, MXR_EFORMERR, "another name"},
      {rcode11, MXR_EFORMERR, "mx.test MX: unassigned rcode 11"},
      {truncated, MXR_EFORMERR, "truncated"},
      {short_reply, MXR_EFORMERR, "too short"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mxr_query qs[QMAX];
    mxr_result res;
    size_t n;
    mxr_res *r = after_mx(cases[i].build, qs, &n);
    is_int(n, 0, "hostile \"%s\": no query follows", cases[i].text);
    is_int(result(r, &res), cases[i].want, "  FORMERR");
    is_int(mxr_status_class(res.status), MXR_CLASS_TEMPORARY, "  temporary");
    ok(res.message && strstr(res.message, cases[i].text), "  message \"%s\"",
       res.message ? res.message : "");
    is_int(res.nhosts + res.ntargets, 0, "  no data");
    mxr_res_free(r);
  }
}

static void cname_then_mx(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_cname(m, q->name, 60, "Real.Test");
  dm_mx(m, "real.test", 60, 10, "mx1.test");
}
static void cname_only(dm *m, const mxr_query *q) {
  reply(m, q, 0);
  dm_cname(m, q->name, 60, "real.test");
}

static void test_cname_domain(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  size_t n;
  dm m;
  mxr_res *r = after_mx(cname_then_mx, qs, &n);

  is_int(n, 2, "CNAME at the domain, MX in the answer: A and AAAA next");
  ok(find(qs, n, "mx1.test", MXR_TYPE_A) != NULL, "  of the target's MX host");
  answer_all_a(r, qs, n, 1);
  is_int(result(r, &res), MXR_OK, "  plan OK");
  is_str(res.domain, "mx.test", "  domain stays the one asked");
  mxr_res_free(r);

  /* the target's MX not in the answer: MX asked again for the target */
  r = after_mx(cname_only, qs, &n);
  is_int(n, 1, "CNAME without target data: one query");
  ok(n == 1 && qs[0].type == MXR_TYPE_MX && strcmp(qs[0].name, "real.test") == 0,
     "  MX again, for the target");
  reply(&m, &qs[0], 0); /* real NODATA at the target */
  answer(r, &qs[0], &m);
  n = drain(r, qs);
  is_int(n, 2, "  then NODATA: A and AAAA");
  ok(find(qs, n, "real.test", MXR_TYPE_A) && find(qs, n, "real.test", MXR_TYPE_AAAA),
     "  of the canonical name (implicit MX after CNAME)");
  answer_all_a(r, qs, n, 3);
  is_int(result(r, &res), MXR_OK, "  plan OK");
  ok(res.implicit && res.nhosts == 1 && strcmp(res.hosts[0].name, "real.test") == 0,
     "  implicit host is the canonical name");
  mxr_res_free(r);

  /* the target's MX in a second answer */
  r = after_mx(cname_only, qs, &n);
  reply(&m, &qs[0], 0);
  dm_mx(&m, "real.test", 60, 10, "mx9.test");
  answer(r, &qs[0], &m);
  n = drain(r, qs);
  ok(n == 2 && find(qs, n, "mx9.test", MXR_TYPE_A), "re-asked MX answered: hosts");
  mxr_res_free(r);

  /* NXDOMAIN at the target */
  r = after_mx(cname_only, qs, &n);
  answer_rcode(r, &qs[0], 3);
  is_int(result(r, &res), MXR_ENXDOMAIN, "re-asked MX NXDOMAIN: NXDOMAIN");
  is_int(drain(r, qs), 0, "  no fallback");
  mxr_res_free(r);
}

static void test_cname_loops(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  size_t n;
  dm m;
  char name[32], next[32];

  /* loop across re-queries: mx.test -> real.test -> mx.test */
  mxr_res *r = after_mx(cname_only, qs, &n);
  reply(&m, &qs[0], 0);
  dm_cname(&m, "real.test", 60, "MX.TEST");
  answer(r, &qs[0], &m);
  is_int(drain(r, qs), 0, "CNAME loop across re-queries: no query");
  is_int(result(r, &res), MXR_ECNAMELOOP, "  CNAMELOOP");
  ok(res.message && strstr(res.message, "mx.test MX: CNAME loop at mx.test"),
     "  message \"%s\"", res.message ? res.message : "");
  mxr_res_free(r);

  /* a chain of one CNAME per answer: MXR_CNAME_MAX is fine, one more
   * is not */
  for (int len = MXR_CNAME_MAX; len <= MXR_CNAME_MAX + 1; len++) {
    r = start("user@mx.test");
    n = drain(r, qs);
    for (int i = 0; i < len && n == 1; i++) {
      snprintf(next, sizeof next, "c%d.test", i + 1);
      reply(&m, &qs[0], 0);
      dm_cname(&m, qs[0].name, 60, next);
      answer(r, &qs[0], &m);
      n = drain(r, qs);
    }
    if (len == MXR_CNAME_MAX) {
      snprintf(name, sizeof name, "c%d.test", len);
      ok(n == 1 && strcmp(qs[0].name, name) == 0,
         "%d CNAMEs over %d answers: the end is asked", len, len);
      reply(&m, &qs[0], 0);
      dm_mx(&m, qs[0].name, 60, 10, "mx1.test");
      answer(r, &qs[0], &m);
      n = drain(r, qs);
      is_int(n, 2, "  and its MX used");
    } else {
      is_int(n, 0, "%d CNAMEs over %d answers: no more queries", len, len);
      is_int(result(r, &res), MXR_ECNAMELOOP, "  CNAMELOOP");
    }
    mxr_res_free(r);
  }

  /* 5 CNAMEs in the first answer + 4 in the second: over the bound */
  r = start("user@mx.test");
  n = drain(r, qs);
  reply(&m, &qs[0], 0);
  dm_cname(&m, "mx.test", 60, "d1.test");
  for (int i = 1; i < 5; i++) {
    snprintf(name, sizeof name, "d%d.test", i);
    snprintf(next, sizeof next, "d%d.test", i + 1);
    dm_cname(&m, name, 60, next);
  }
  answer(r, &qs[0], &m);
  n = drain(r, qs);
  ok(n == 1 && strcmp(qs[0].name, "d5.test") == 0, "5 CNAMEs: d5 asked");
  reply(&m, &qs[0], 0);
  for (int i = 5; i < 9; i++) {
    snprintf(name, sizeof name, "d%d.test", i);
    snprintf(next, sizeof next, "d%d.test", i + 1);
    dm_cname(&m, name, 60, next);
  }
  dm_mx(&m, "d9.test", 60, 10, "mx1.test");
  answer(r, &qs[0], &m);
  is_int(result(r, &res), MXR_ECNAMELOOP, "  then 4 more with data: CNAMELOOP");
  mxr_res_free(r);
}

static void test_cname_host(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  const mxr_query *q;
  size_t n;
  dm m;
  mxr_res *r = after_mx(two_mx, qs, &n);

  /* mx1 A: CNAME with the address; mx1 AAAA: CNAME only, re-asked */
  q = find(qs, n, "mx1.test", MXR_TYPE_A);
  reply(&m, q, 0);
  dm_cname(&m, "mx1.test", 60, "box.test");
  dm_a(&m, "box.test", 60, 192, 0, 2, 11);
  answer(r, q, &m);
  q = find(qs, n, "mx1.test", MXR_TYPE_AAAA);
  reply(&m, q, 0);
  dm_cname(&m, "mx1.test", 60, "box.test");
  answer(r, q, &m);
  {
    mxr_query more[QMAX];
    size_t k = drain(r, more);
    ok(k == 1 && more[0].type == MXR_TYPE_AAAA &&
           strcmp(more[0].name, "box.test") == 0,
       "CNAME at a host without data: same type asked for the target");
    if (k == 1)
      answer_a(r, &more[0], 11);
  }
  q = find(qs, n, "mx2.test", MXR_TYPE_A);
  answer_a(r, q, 12);
  q = find(qs, n, "mx2.test", MXR_TYPE_AAAA);
  /* mx2 AAAA: a loop */
  reply(&m, q, 0);
  dm_cname(&m, "mx2.test", 60, "x.test");
  dm_cname(&m, "x.test", 60, "mx2.test");
  answer(r, q, &m);
  ok(mxr_res_done(r), "CNAME at hosts: done");
  is_int(result(r, &res), MXR_OK, "  plan OK");
  ok(has_target(&res, "mx1.test", "192.0.2.11") &&
         has_target(&res, "mx1.test", "2001:db8::b"),
     "  the host keeps its name, with the target's addresses");
  ok(has_target(&res, "mx2.test", "192.0.2.12"),
     "  a CNAME loop on AAAA leaves the A address");
  mxr_res_free(r);
}

static void test_host_failures(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  const mxr_query *q;
  size_t n;
  dm m;
  mxr_res *r;

  /* mx1: timeouts (temporary); mx2: NXDOMAIN (permanent) */
  r = after_mx(two_mx, qs, &n);
  mxr_res_fail(r, find(qs, n, "mx1.test", MXR_TYPE_A)->slot, MXR_ETIMEOUT);
  mxr_res_fail(r, find(qs, n, "mx1.test", MXR_TYPE_AAAA)->slot, MXR_ETIMEOUT);
  answer_rcode(r, find(qs, n, "mx2.test", MXR_TYPE_A), 3);
  answer_rcode(r, find(qs, n, "mx2.test", MXR_TYPE_AAAA), 3);
  ok(mxr_res_done(r), "host failures: done");
  result(r, &res);
  is_int(mxr_status_class(res.status), MXR_CLASS_TEMPORARY,
         "  temporary beats permanent (%s)", mxr_status_name(res.status));
  is_int(skip_code(&res, "mx1.test"), MXR_ETIMEOUT, "  mx1 skipped: TIMEOUT");
  is_int(skip_code(&res, "mx2.test"), MXR_ENXDOMAIN, "  mx2 skipped: NXDOMAIN");
  mxr_res_free(r);

  /* all permanent: NOHOSTS */
  r = after_mx(two_mx, qs, &n);
  answer_all_rcode(r, qs, n, 3);
  is_int(result(r, &res), MXR_ENOHOSTS, "all hosts NXDOMAIN: NOHOSTS");
  mxr_res_free(r);

  /* one host hostile, one fine */
  r = after_mx(two_mx, qs, &n);
  q = find(qs, n, "mx1.test", MXR_TYPE_A);
  reply(&m, q, 0);
  dm_a(&m, "evil.test", 60, 203, 0, 113, 66);
  answer(r, q, &m);
  q = find(qs, n, "mx1.test", MXR_TYPE_AAAA);
  answer_rcode(r, q, 2);
  answer_a(r, find(qs, n, "mx2.test", MXR_TYPE_A), 2);
  answer_rcode(r, find(qs, n, "mx2.test", MXR_TYPE_AAAA), 0);
  is_int(result(r, &res), MXR_OK, "hostile host answer: plan OK");
  is_int(res.ntargets, 1, "  only mx2's address");
  ok(has_target(&res, "mx2.test", "192.0.2.2") &&
         !has_target(&res, "mx1.test", "203.0.113.66"),
     "  the foreign-owner address is not used");
  ok(skip_code(&res, "mx1.test") == MXR_EFORMERR ||
         skip_code(&res, "mx1.test") == MXR_ESERVFAIL,
     "  mx1 skipped with a temporary code (%s)",
     mxr_status_name(skip_code(&res, "mx1.test")));
  mxr_res_free(r);
}

static void test_cancel_and_slots(void) {
  mxr_query qs[QMAX], tmp;
  mxr_result res;
  size_t n;
  dm m;
  mxr_res *r = after_mx(two_mx, qs, &n);

  is_int(mxr_res_inflight(r), 4, "cancel: four in flight");
  mxr_res_cancel(r, MXR_ECANCELLED);
  ok(mxr_res_done(r), "cancel: done");
  is_int(result(r, &res), MXR_ECANCELLED, "cancel: CANCELLED");
  is_int(mxr_res_next(r, &tmp), 0, "cancel: no more queries");
  answer_a(r, &qs[0], 1);
  mxr_res_fail(r, qs[1].slot, MXR_ETIMEOUT);
  is_int(mxr_res_inflight(r), 2, "cancel: late answers are counted off");
  answer_a(r, &qs[2], 1);
  answer_a(r, &qs[3], 1);
  is_int(mxr_res_inflight(r), 0, "cancel: all counted off");
  is_int(result(r, &res), MXR_ECANCELLED, "cancel: still CANCELLED");
  mxr_res_cancel(r, MXR_ETIMEOUT); /* already done: no change */
  is_int(result(r, &res), MXR_ECANCELLED, "cancel twice: first wins");
  mxr_res_free(r);

  /* unknown, duplicate and not-yet-sent slots are ignored */
  r = start("user@mx.test");
  n = drain(r, qs);
  two_mx(&m, &qs[0]);
  mxr_res_answer(r, 999, m.b, m.n);
  mxr_res_fail(r, 12345, MXR_ETIMEOUT);
  mxr_res_answer(r, (unsigned)-1, m.b, m.n);
  ok(!mxr_res_done(r) && mxr_res_inflight(r) == 1, "unknown slots ignored");
  answer(r, &qs[0], &m);
  /* slots 1..4 are queued, not handed out yet: answers ignored */
  answer_a(r, &qs[0], 1);
  mxr_res_answer(r, 1, m.b, m.n);
  mxr_res_fail(r, 2, MXR_ETIMEOUT);
  mxr_res_answer(r, 1, NULL, 0);
  n = drain(r, qs);
  is_int(n, 4, "answers before a slot is handed out are ignored");
  answer_a(r, find(qs, n, "mx1.test", MXR_TYPE_A), 1);
  answer_a(r, find(qs, n, "mx1.test", MXR_TYPE_A), 99); /* duplicate */
  mxr_res_fail(r, find(qs, n, "mx1.test", MXR_TYPE_A)->slot, MXR_ETIMEOUT);
  answer_a(r, find(qs, n, "mx1.test", MXR_TYPE_AAAA), 1);
  answer_a(r, find(qs, n, "mx2.test", MXR_TYPE_A), 2);
  answer_a(r, find(qs, n, "mx2.test", MXR_TYPE_AAAA), 2);
  is_int(result(r, &res), MXR_OK, "duplicates ignored: plan OK");
  ok(has_target(&res, "mx1.test", "192.0.2.1") &&
         !has_target(&res, "mx1.test", "192.0.2.99"),
     "  the first answer counts");
  is_int(mxr_res_inflight(r), 0, "  nothing in flight");
  mxr_res_free(r);

  /* NULL-safety */
  mxr_res_free(NULL);
  mxr_res_answer(NULL, 0, NULL, 0);
  mxr_res_fail(NULL, 0, MXR_ETIMEOUT);
  mxr_res_cancel(NULL, MXR_ECANCELLED);
  is_int(mxr_res_next(NULL, &tmp), 0, "NULL: no queries");
  is_int(mxr_res_inflight(NULL), 0, "NULL: nothing in flight");
}

static void test_inputs(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  mxr_res *r;

  r = start("user@");
  ok(r && mxr_res_done(r), "bad input: done at once");
  is_int(drain(r, qs), 0, "bad input: no query");
  is_int(result(r, &res), MXR_EBADNAME, "bad input: BADNAME");
  ok(res.message && res.message[0], "bad input: the parser's message \"%s\"",
     res.message ? res.message : "");
  is_str(res.input, "user@", "bad input: input kept");
  mxr_res_free(r);

  r = start("u@example.com.");
  is_int(result(r, &res), MXR_EBADNAME, "trailing dot after an address domain");
  mxr_res_free(r);
  r = mxr_res_new("a\0b", 3, opts, &rng);
  is_int(result(r, &res), MXR_EBADNAME, "NUL in the input");
  mxr_res_free(r);
  r = mxr_res_new(NULL, 0, opts, &rng);
  is_int(result(r, &res), MXR_EBADNAME, "NULL input");
  mxr_res_free(r);

  r = start("postmaster@[192.0.2.9]");
  ok(mxr_res_done(r), "literal: done at once");
  is_int(drain(r, qs), 0, "literal: no query");
  is_int(result(r, &res), MXR_OK, "literal: OK");
  ok(res.ntargets == 1 && has_target(&res, res.targets[0].host, "192.0.2.9"),
     "literal: the one target");
  mxr_res_free(r);

  r = start("Example.Test.");
  is_int(drain(r, qs), 1, "bare domain with a final dot: one query");
  is_str(qs[0].name, "example.test", "  normalised");
  mxr_res_free(r); /* freed with a query in flight */
}

static void test_self(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  size_t n;
  mxr_opts *o = mxr_opts_new();
  mxr_res *r;

  mxr_opts_ignore_clear(o);
  mxr_opts_add_self(o, "mx1.test", 8, NULL, 0);
  /* we are the best MX by name: LOOP without any address query */
  r = after_mx_with(o, one_mx, qs, &n);
  ok(mxr_res_done(r), "self by name, best MX: done");
  is_int(n, 0, "  no address query");
  is_int(result(r, &res), MXR_ELOOP, "  LOOP");
  mxr_res_free(r);
  mxr_opts_free(o);

  /* by address: once mx1 (best) is known to be us, the plan is complete
   * even with mx2's lookups in flight; their answers are ignored */
  o = mxr_opts_new();
  mxr_opts_ignore_clear(o);
  mxr_opts_add_self(o, "192.0.2.1", 9, NULL, 0);
  r = after_mx_with(o, two_mx, qs, &n);
  answer_a(r, find(qs, n, "mx1.test", MXR_TYPE_A), 1);
  answer_rcode(r, find(qs, n, "mx1.test", MXR_TYPE_AAAA), 0);
  ok(mxr_res_done(r), "self by address: done with lookups in flight");
  is_int(mxr_res_inflight(r), 2, "  two still in flight");
  is_int(result(r, &res), MXR_ELOOP, "  LOOP");
  answer_a(r, find(qs, n, "mx2.test", MXR_TYPE_A), 2);
  mxr_res_fail(r, find(qs, n, "mx2.test", MXR_TYPE_AAAA)->slot, MXR_ETIMEOUT);
  is_int(mxr_res_inflight(r), 0, "  late answers counted off");
  is_int(result(r, &res), MXR_ELOOP, "  still LOOP");
  mxr_res_free(r);
  mxr_opts_free(o);
}

static void test_independent(void) {
  mxr_query q1[QMAX], q2[QMAX];
  mxr_result res;
  size_t n1, n2;
  mxr_res *a = after_mx(two_mx, q1, &n1);
  mxr_res *b = after_mx(two_mx, q2, &n2);
  ok(n1 == 4 && n2 == 4, "two resolutions, the same hosts: both ask");
  answer_all_a(a, q1, n1, 1);
  ok(mxr_res_done(a) && !mxr_res_done(b), "one done, the other not");
  for (size_t i = 0; i < n2; i++)
    mxr_res_fail(b, q2[i].slot, MXR_ETIMEOUT);
  is_int(result(a, &res), MXR_OK, "first OK");
  is_int(result(b, &res), MXR_ETIMEOUT, "second TIMEOUT");
  mxr_res_free(a);
  mxr_res_free(b);

  /* the same host listed twice in an MX set is asked once */
  {
    mxr_query qs[QMAX];
    dm m;
    mxr_res *r = start("user@mx.test");
    size_t n = drain(r, qs);
    reply(&m, &qs[0], 0);
    dm_mx(&m, "mx.test", 60, 20, "mx1.test");
    dm_mx(&m, "mx.test", 60, 10, "MX1.TEST");
    answer(r, &qs[0], &m);
    n = drain(r, qs);
    is_int(n, 2, "a host listed twice: asked once");
    mxr_res_free(r);
  }
}

static void test_family(void) {
  mxr_query qs[QMAX];
  mxr_opts *o = mxr_opts_new();
  mxr_res *r;
  size_t n;
  mxr_opts_set_family(o, MXR_FAMILY_IPV4);
  r = after_mx_with(o, two_mx, qs, &n);
  ok(n == 2 && !find(qs, n, "mx1.test", MXR_TYPE_AAAA),
     "family ipv4: A queries only");
  mxr_res_free(r);
  mxr_opts_free(o);
}

/* One decoded answer fed to two resolutions waiting for the same
 * question (the exchange merges them): read, never consumed. */
static void test_feed_shared(void) {
  mxr_query qa[QMAX], qb[QMAX];
  mxr_result res;
  mxr_answer a;
  size_t na, nb;
  dm m;
  mxr_res *ra = start("a@mx.test"), *rb = start("b@MX.test");

  na = drain(ra, qa);
  nb = drain(rb, qb);
  ok(na == 1 && nb == 1 && strcmp(qa[0].name, qb[0].name) == 0 &&
         qa[0].type == qb[0].type,
     "feed: both ask the same question");
  two_mx(&m, &qa[0]);
  is_int(mxr_packet_parse(m.b, m.n, qa[0].name, qa[0].type, -1, &a), MXR_OK,
         "feed: decoded once");
  mxr_res_feed(ra, qa[0].slot, &a);
  is_int(a.nmx, 2, "feed: the answer is intact after the first feed");
  mxr_res_feed(rb, qb[0].slot, &a);
  mxr_res_feed(rb, qb[0].slot, &a); /* duplicate: ignored */
  mxr_answer_clear(&a);
  na = drain(ra, qa);
  nb = drain(rb, qb);
  is_int(na, 4, "feed: first resolution asks for the hosts");
  is_int(nb, 4, "feed: second resolution asks for the hosts");
  answer_all_a(ra, qa, na, 1);
  answer_all_a(rb, qb, nb, 2);
  is_int(result(ra, &res), MXR_OK, "feed: first plan OK");
  ok(res.nhosts == 2 && strcmp(res.hosts[0].name, "mx1.test") == 0,
     "feed: first plan has mx1 first");
  is_int(result(rb, &res), MXR_OK, "feed: second plan OK");
  ok(has_target(&res, "mx1.test", "192.0.2.2"), "feed: second plan's data");
  mxr_res_free(ra);
  mxr_res_free(rb);

  /* no answer is a failure, never data; NULL resolution: no-op */
  ra = start("a@mx.test");
  na = drain(ra, qa);
  mxr_res_feed(ra, qa[0].slot, NULL);
  is_int(result(ra, &res), MXR_ENETWORK, "feed: NULL answer fails the MX");
  mxr_res_free(ra);
  mxr_res_feed(NULL, 0, NULL);
  ok(1, "feed: NULL resolution ignored");
}

int main(void) {
  opts = mxr_opts_new();
  if (!opts)
    return 1;
  mxr_opts_ignore_clear(opts);
  mxr_rng_seed(&rng, 42);
  test_simple();
  test_implicit();
  test_mx_failures();
  test_hostile();
  test_cname_domain();
  test_cname_loops();
  test_cname_host();
  test_host_failures();
  test_cancel_and_slots();
  test_inputs();
  test_self();
  test_independent();
  test_family();
  feed_decoded = 1;
  diag("every test again, fed decoded answers (mxr_res_feed)");
  mxr_rng_seed(&rng, 42);
  test_simple();
  test_implicit();
  test_mx_failures();
  test_hostile();
  test_cname_domain();
  test_cname_loops();
  test_cname_host();
  test_host_failures();
  test_cancel_and_slots();
  test_inputs();
  test_self();
  test_independent();
  test_family();
  test_feed_shared();
  mxr_opts_free(opts);
  return done_testing();
}
