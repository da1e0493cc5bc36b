/*
 * test_route.c — routed resolutions (DESIGN 7), driven without a network:
 * the test plays the transport. Which queries a route asks (Postfix
 * transport(5): "[host]" never asks MX, "host" asks MX of host, not of
 * the recipient), the order and ports of the result, how a list of
 * nexthops fails, fallback relays, error/retry routes, and allocation
 * failures.
 */
#include "dnsmsg.h"
#include "mxr_internal.h"
#include "mxroute.h"
#include "resq.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static mxr_opts *opts;
static mxr_rng rng;

static size_t count_type(const mxr_query *qs, size_t n, uint16_t type) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += qs[i].type == type;
  return k;
}

static int feed_decoded; /* deliver decoded answers (mxr_res_feed) */

/* Answer q: MX with one exchange mx (NULL: NODATA), A with 192.0.2.last,
 * AAAA with NODATA; rcode != 0 answers that rcode without records. */
static void answer(mxr_res *r, const mxr_query *q, const char *mx,
                   unsigned last, unsigned rcode) {
  dm m;
  dm_reply(&m, 0, DM_RESPONSE, rcode, q->name, q->type);
  if (rcode == 0 && q->type == MXR_TYPE_MX && mx)
    dm_mx(&m, q->name, 60, 10, mx);
  if (rcode == 0 && q->type == MXR_TYPE_A)
    dm_a(&m, q->name, 60, 192, 0, 2, last);
  if (feed_decoded) { /* decoded once, as the exchange does */
    mxr_answer a;
    mxr_packet_parse(m.b, m.n, q->name, q->type, -1, &a);
    mxr_res_feed(r, q->slot, &a);
    mxr_answer_clear(&a);
    return;
  }
  mxr_res_answer(r, q->slot, m.b, m.n);
}

static mxr_hop hop(const char *name, int mx, uint16_t port) {
  mxr_hop h;
  h.name = name;
  h.len = name ? strlen(name) : 0;
  h.mx = mx;
  h.port = port;
  return h;
}

static mxr_res *routed(const char *input, const mxr_hop *h, size_t n,
                       const mxr_hop *fb, size_t nfb) {
  return mxr_res_new_routed(input, strlen(input), h, n, fb, nfb, opts, &rng);
}

static mxr_status result(mxr_res *r, mxr_result *out) {
  memset(out, 0, sizeof *out);
  if (mxr_res_result(r, out) != MXR_OK)
    return (mxr_status)-1;
  return out->status;
}

static void target_is(const mxr_result *res, size_t i, const char *host,
                      unsigned last, unsigned port, int fallback) {
  char want[MXR_ADDR_BUF], got[MXR_ADDR_BUF];
  if (i >= res->ntargets) {
    ok(0, "target %zu exists", i);
    return;
  }
  snprintf(want, sizeof want, "192.0.2.%u", last);
  mxr_addr_format(&res->targets[i].addr, got);
  is_str(res->targets[i].host, host, "target %zu host", i);
  is_str(got, want, "target %zu address", i);
  is_int(res->targets[i].port, port, "target %zu port", i);
  is_int(res->targets[i].fallback, fallback, "target %zu fallback flag", i);
}

/* [host]:port asks A/AAAA of host and no MX at all; host asks MX of the
 * host, never of the recipient's domain. */
static void test_forms(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  mxr_hop h[2];
  size_t n;
  mxr_res *r;

  h[0] = hop("relay.test", 0, 587);
  r = routed("user@example.test", h, 1, NULL, 0);
  n = drain(r, qs);
  is_int(count_type(qs, n, MXR_TYPE_MX), 0, "[host]: no MX query");
  ok(find(qs, n, "relay.test", MXR_TYPE_A) &&
         find(qs, n, "relay.test", MXR_TYPE_AAAA),
     "[host]: A and AAAA of the host");
  for (size_t i = 0; i < n; i++)
    answer(r, &qs[i], NULL, 7, 0);
  ok(mxr_res_done(r), "[host]: done after the address answers");
  is_int(result(r, &res), MXR_OK, "[host]: ok");
  is_int(res.ntargets, 1, "[host]: one target");
  target_is(&res, 0, "relay.test", 7, 587, 0);
  is_str(res.input, "user@example.test", "input is the recipient");
  is_str(res.domain, "example.test", "domain is the recipient's");
  mxr_res_free(r);

  /* "[host]" failing: the host is named once, in skipped and message */
  h[0] = hop("relay.test", 0, 587);
  r = routed("user@example.test", h, 1, NULL, 0);
  n = drain(r, qs);
  for (size_t i = 0; i < n; i++)
    answer(r, &qs[i], NULL, 0, 5);
  is_int(result(r, &res), MXR_EREFUSED, "[host] refused: REFUSED");
  ok(res.nskipped == 1 && strcmp(res.skipped[0].name, "relay.test") == 0 &&
         res.skipped[0].code == MXR_EREFUSED,
     "[host] refused: the host skipped once");
  is_str(res.message, "relay.test: query refused",
         "[host] refused: the host named once in the message");
  mxr_res_free(r);

  h[0] = hop("mx-of.test", 1, 2025);
  r = routed("user@example.test", h, 1, NULL, 0);
  n = drain(r, qs);
  is_int(n, 1, "host: one query first");
  ok(find(qs, n, "mx-of.test", MXR_TYPE_MX) != NULL,
     "host: MX of the host, not of the recipient");
  answer(r, &qs[0], "mx1.mx-of.test", 0, 0);
  n = drain(r, qs);
  ok(find(qs, n, "mx1.mx-of.test", MXR_TYPE_A) != NULL,
     "host: then the exchange's addresses");
  for (size_t i = 0; i < n; i++)
    answer(r, &qs[i], NULL, 9, 0);
  is_int(result(r, &res), MXR_OK, "host: ok");
  target_is(&res, 0, "mx1.mx-of.test", 9, 2025, 0);
  mxr_res_free(r);

  /* an address literal needs no DNS at all */
  h[0] = hop("[192.0.2.44]", 0, 0);
  r = routed("user@example.test", h, 1, NULL, 0);
  is_int(drain(r, qs), 0, "[ipv4]: no query");
  ok(mxr_res_done(r), "[ipv4]: done at once");
  is_int(result(r, &res), MXR_OK, "[ipv4]: ok");
  target_is(&res, 0, "[192.0.2.44]", 44, 25, 0);
  mxr_res_free(r);

  /* the empty nexthop: the recipient's domain, as without routes */
  h[0] = hop(NULL, 1, 0);
  r = routed("user@Example.TEST", h, 1, NULL, 0);
  n = drain(r, qs);
  ok(n == 1 && find(qs, n, "example.test", MXR_TYPE_MX),
     "empty nexthop: MX of the recipient's domain");
  mxr_res_free(r);
}

/* A list: targets of hop 1, then hop 2, each address once; a failed hop
 * is skipped; every hop failing fails the list, temporary first. */
static void test_lists(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  mxr_hop h[3];
  size_t n;
  mxr_res *r;

  h[0] = hop("a.test", 0, 0);
  h[1] = hop("b.test", 0, 2525);
  h[2] = hop("c.test", 0, 0);
  r = routed("user@example.test", h, 3, NULL, 0);
  n = drain(r, qs);
  is_int(n, 6, "three hops asked at once (A and AAAA each)");
  /* b answers first: nothing is final before a is */
  answer(r, find(qs, n, "b.test", MXR_TYPE_A), NULL, 2, 0);
  answer(r, find(qs, n, "b.test", MXR_TYPE_AAAA), NULL, 0, 0);
  is_int(mxr_res_ready(r), 0, "hop 2 waits for hop 1");
  answer(r, find(qs, n, "a.test", MXR_TYPE_A), NULL, 1, 0);
  answer(r, find(qs, n, "a.test", MXR_TYPE_AAAA), NULL, 0, 0);
  is_int(mxr_res_ready(r), 2, "hops 1 and 2 final in order");
  is_str(mxr_res_target(r, 1)->host, "b.test", "lazy target 2 is hop 2's");
  ok(!mxr_res_done(r), "not done while hop 3 resolves");
  /* c has the same address as a: listed once */
  answer(r, find(qs, n, "c.test", MXR_TYPE_A), NULL, 1, 0);
  answer(r, find(qs, n, "c.test", MXR_TYPE_AAAA), NULL, 0, 0);
  is_int(result(r, &res), MXR_OK, "list ok");
  is_int(res.ntargets, 2, "an address is listed once");
  target_is(&res, 0, "a.test", 1, 25, 0);
  target_is(&res, 1, "b.test", 2, 2525, 0);
  is_int(res.nhosts, 3, "every hop's hosts");
  mxr_res_free(r);

  /* the same address at another port is another destination */
  h[0] = hop("[192.0.2.1]", 0, 0);
  h[1] = hop("[192.0.2.1]", 0, 2525);
  h[2] = hop("[192.0.2.1]", 0, 2525);
  r = routed("user@example.test", h, 3, NULL, 0);
  is_int(result(r, &res), MXR_OK, "one address, two ports: ok");
  is_int(res.ntargets, 2, "listed once per port");
  target_is(&res, 0, "[192.0.2.1]", 1, 25, 0);
  target_is(&res, 1, "[192.0.2.1]", 1, 2525, 0);
  mxr_res_free(r);

  h[0] = hop("gone.test", 1, 0);
  h[1] = hop("b.test", 0, 0);
  r = routed("user@example.test", h, 2, NULL, 0);
  n = drain(r, qs);
  answer(r, find(qs, n, "gone.test", MXR_TYPE_MX), NULL, 0, 3);
  answer(r, find(qs, n, "b.test", MXR_TYPE_A), NULL, 5, 0);
  answer(r, find(qs, n, "b.test", MXR_TYPE_AAAA), NULL, 0, 0);
  is_int(result(r, &res), MXR_OK, "one failed hop: the others are used");
  target_is(&res, 0, "b.test", 5, 25, 0);
  ok(res.nskipped == 1 && strcmp(res.skipped[0].name, "gone.test") == 0 &&
         res.skipped[0].code == MXR_ENXDOMAIN,
     "the failed hop is in skipped with its code");
  mxr_res_free(r);

  h[0] = hop("gone.test", 1, 0);
  h[1] = hop("sf.test", 1, 0);
  r = routed("user@example.test", h, 2, NULL, 0);
  n = drain(r, qs);
  answer(r, find(qs, n, "gone.test", MXR_TYPE_MX), NULL, 0, 3);
  answer(r, find(qs, n, "sf.test", MXR_TYPE_MX), NULL, 0, 2);
  is_int(result(r, &res), MXR_ESERVFAIL,
         "every hop failed: temporary beats permanent");
  ok(res.message && strstr(res.message, "sf.test"),
     "the message names the hop: %s", res.message ? res.message : "");
  mxr_res_free(r);
}

/* Fallback relays: appended after the plan's own, used alone when the
 * plan fails temporarily, never after a permanent failure. */
static void test_fallback(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  mxr_hop h[1], fb[1];
  size_t n;
  mxr_res *r;

  h[0] = hop(NULL, 1, 0);
  fb[0] = hop("fb.test", 0, 2525);
  r = routed("user@example.test", h, 1, fb, 1);
  n = drain(r, qs);
  ok(find(qs, n, "example.test", MXR_TYPE_MX) &&
         find(qs, n, "fb.test", MXR_TYPE_A),
     "fallback resolved in parallel with the plan");
  answer(r, find(qs, n, "fb.test", MXR_TYPE_A), NULL, 9, 0);
  answer(r, find(qs, n, "fb.test", MXR_TYPE_AAAA), NULL, 0, 0);
  answer(r, find(qs, n, "example.test", MXR_TYPE_MX), "mx.example.test", 0,
         0);
  is_int(mxr_res_ready(r), 0, "fallback targets come after the plan's own");
  n = drain(r, qs);
  for (size_t i = 0; i < n; i++)
    answer(r, &qs[i], NULL, 1, 0);
  is_int(result(r, &res), MXR_OK, "plan and fallback ok");
  is_int(res.ntargets, 2, "two targets");
  target_is(&res, 0, "mx.example.test", 1, 25, 0);
  target_is(&res, 1, "fb.test", 9, 2525, 1);
  mxr_res_free(r);

  r = routed("user@example.test", h, 1, fb, 1);
  n = drain(r, qs);
  answer(r, find(qs, n, "example.test", MXR_TYPE_MX), NULL, 0, 2);
  ok(!mxr_res_done(r), "a temporary failure waits for the fallback");
  answer(r, find(qs, n, "fb.test", MXR_TYPE_A), NULL, 9, 0);
  answer(r, find(qs, n, "fb.test", MXR_TYPE_AAAA), NULL, 0, 0);
  is_int(result(r, &res), MXR_OK, "temporary failure: fallback alone");
  is_int(res.ntargets, 1, "only the fallback target");
  target_is(&res, 0, "fb.test", 9, 2525, 1);
  ok(res.nskipped == 1 && res.skipped[0].code == MXR_ESERVFAIL,
     "the plan's failure is in skipped");
  mxr_res_free(r);

  r = routed("user@example.test", h, 1, fb, 1);
  n = drain(r, qs);
  answer(r, find(qs, n, "example.test", MXR_TYPE_MX), NULL, 0, 3);
  ok(mxr_res_done(r), "a permanent failure is final at once");
  is_int(result(r, &res), MXR_ENXDOMAIN, "permanent: no fallback");
  is_int(res.ntargets, 0, "no target");
  mxr_res_free(r);
}

/* A relay that is ourselves is a LOOP, as for an MX (DESIGN rule 8). */
static void test_self(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  mxr_hop h[1];
  mxr_opts *o = mxr_opts_new();
  mxr_res *r;
  mxr_opts_ignore_clear(o);
  mxr_opts_add_self(o, "relay.test", 10, NULL, 0);
  h[0] = hop("relay.test", 0, 0);
  r = mxr_res_new_routed("u@example.test", 14, h, 1, NULL, 0, o, &rng);
  drain(r, qs);
  is_int(result(r, &res), MXR_ELOOP, "a relay that is us is LOOP");
  mxr_res_free(r);
  mxr_opts_free(o);
}

static void test_failed_and_misuse(void) {
  mxr_query qs[QMAX];
  mxr_result res;
  mxr_hop h[MXR_HOPS_MAX + 1];
  mxr_res *r = mxr_res_new_failed("user@old.test", 13, MXR_EREJECTED,
                                  "domain retired", opts, &rng);
  is_int(drain(r, qs), 0, "error route: no query");
  is_int(result(r, &res), MXR_EREJECTED, "error route: REJECTED");
  is_str(res.message, "domain retired", "error route: the route's text");
  mxr_res_free(r);

  /* a literal recipient is complete at once without routes: the route
   * still decides */
  r = mxr_res_new_failed("u@[192.0.2.1]", 13, MXR_EDEFERRED, NULL, opts,
                         &rng);
  is_int(result(r, &res), MXR_EDEFERRED, "literal recipient: DEFERRED");
  ok(res.message == NULL, "no message: the code's text is used");
  mxr_res_free(r);
  h[0] = hop("[192.0.2.9]", 0, 2525);
  r = routed("u@[192.0.2.1]", h, 1, NULL, 0);
  is_int(result(r, &res), MXR_OK, "literal recipient routed");
  target_is(&res, 0, "[192.0.2.9]", 9, 2525, 0);
  mxr_res_free(r);

  r = mxr_res_new_failed("user@", 5, MXR_EDEFERRED, "later", opts, &rng);
  is_int(result(r, &res), MXR_EBADNAME, "a bad input stays BADNAME");
  mxr_res_free(r);

  for (size_t i = 0; i <= MXR_HOPS_MAX; i++)
    h[i] = hop("a.test", 0, 0);
  r = routed("user@example.test", h, MXR_HOPS_MAX + 1, NULL, 0);
  is_int(result(r, &res), MXR_EBADOPT, "too many hops: BADOPT");
  mxr_res_free(r);
  r = routed("user@", h, 1, NULL, 0);
  is_int(result(r, &res), MXR_EBADNAME, "routed bad input: BADNAME");
  mxr_res_free(r);

  /* cancel, and late or forged slots */
  r = routed("user@example.test", h, 2, NULL, 0);
  {
    size_t n = drain(r, qs);
    mxr_res_answer(r, 999, (const unsigned char *)"x", 1);
    mxr_res_fail(r, 998, MXR_ETIMEOUT);
    is_int(mxr_res_inflight(r), n, "unknown slots are ignored");
    mxr_res_cancel(r, MXR_ECANCELLED);
    ok(mxr_res_done(r), "cancel completes it");
    answer(r, &qs[0], NULL, 1, 0); /* late */
    is_int(result(r, &res), MXR_ECANCELLED, "cancelled");
  }
  mxr_res_free(r);
  mxr_res_free(NULL);
}

/* Every allocation of a routed resolution fails in turn: NULL or a
 * failure, never a crash or leak (ASan). */
static void test_alloc(void) {
  int clean = 0;
  for (long k = 1; k < 400 && !clean; k++) {
    mxr_query qs[QMAX];
    mxr_result res;
    mxr_hop h[2], fb[1];
    mxr_res *r;
    size_t n;
    h[0] = hop("a.test", 0, 0);
    h[1] = hop("b.test", 1, 0);
    fb[0] = hop("[192.0.2.99]", 0, 0);
    mxr_test_alloc_count = 0;
    mxr_test_alloc_fail_at = k;
    r = routed("user@example.test", h, 2, fb, 1);
    if (r) {
      while ((n = drain(r, qs)) > 0)
        for (size_t i = 0; i < n; i++)
          answer(r, &qs[i], "mx.b.test", 3, 0);
      mxr_res_ready(r);
      result(r, &res);
      mxr_res_free(r);
    }
    if (mxr_test_alloc_count < k)
      clean = 1;
  }
  mxr_test_alloc_fail_at = 0;
  ok(clean, "a run past the last allocation");
}

int main(void) {
  opts = mxr_opts_new();
  if (!opts)
    return 1;
  mxr_opts_ignore_clear(opts);
  mxr_rng_seed(&rng, 7);
  test_forms();
  test_lists();
  test_fallback();
  test_self();
  test_failed_and_misuse();
  test_alloc();
  feed_decoded = 1;
  diag("again, fed decoded answers (mxr_res_feed, delegated by slot)");
  mxr_rng_seed(&rng, 7);
  test_forms();
  test_lists();
  test_fallback();
  test_self();
  test_failed_and_misuse();
  test_alloc();
  mxr_opts_free(opts);
  return done_testing();
}
