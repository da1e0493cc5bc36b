/*
 * fuzz_packet.c — libFuzzer target for the answer checks (packet.c) and
 * the resolution state machine fed with them (resolve.c).
 *
 * Each input is parsed as a reply to MX, A and AAAA queries for two
 * fixed names and for the name its question holds (so that seeds from
 * any zone reach past the question check), and the invariants of
 * mxr_answer are checked; then it is
 * fed as every answer of a resolution of "mx.test" until nothing more
 * is asked, without a cache and then twice with one (the second run may
 * be answered from what the first stored). Seeds: csrc/fuzz/corpus/fuzz_packet: the builder's replies
 * (test_packet with MXR_WRITE_CORPUS=DIR) and knot-*, replies captured
 * from Knot 3.2 on loopback.
 */
#include "fuzz_util.h"
#include "mxroute.h"

#include <ares.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static int is_normal(const char *s) {
  size_t n = strlen(s);
  if (n > MXR_NAME_MAX)
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((s[i] >= 'A' && s[i] <= 'Z') || s[i] <= 0x20 || s[i] > 0x7e)
      return 0;
  return n == 0 || s[n - 1] != '.';
}

static void check(const uint8_t *data, size_t size, const char *qname,
                  uint16_t qtype) {
  mxr_answer a;
  mxr_status st = mxr_packet_parse(data, size, qname, qtype, -1, &a);
  CHECK(st == a.status);
  CHECK(is_normal(a.canon));
  if (st != MXR_OK) {
    /* a failure carries no data and says why */
    CHECK(!(a.nmx || a.mx || a.naddrs || a.addrs || a.chased || a.truncated ||
            a.message[0] == '\0'));
  } else {
    CHECK(a.canon[0] != '\0');
    CHECK(!(a.truncated && (a.nmx || a.naddrs || a.chased)));
    CHECK(!(a.chased && (a.nmx || a.naddrs || a.ncname == 0)));
    CHECK(a.ncname <= MXR_CNAME_MAX);
    if (qtype == MXR_TYPE_MX) {
      CHECK(!(a.naddrs || (a.nmx && !a.mx)));
      for (size_t i = 0; i < a.nmx; i++)
        CHECK(is_normal(a.mx[i].name) && strlen(a.mx[i].name) == a.mx[i].len);
    } else {
      int fam = qtype == MXR_TYPE_A ? 4 : 6;
      CHECK(!(a.nmx || (a.naddrs && !a.addrs)));
      for (size_t i = 0; i < a.naddrs; i++)
        CHECK(a.addrs[i].family == fam);
    }
  }
  mxr_answer_clear(&a);
  mxr_answer_clear(&a);
}

static void drive(const uint8_t *data, size_t size, mxr_cache *cache) {
  static mxr_opts *opts;
  static mxr_rng rng;
  mxr_query q;
  mxr_res *r;
  int rounds = 0;
  if (!opts) {
    opts = mxr_opts_new();
    if (!opts)
      return;
    mxr_opts_ignore_clear(opts);
  }
  mxr_rng_seed(&rng, 1);
  r = mxr_res_new("user@mx.test", 12, opts, &rng);
  if (!r)
    return;
  mxr_res_set_cache(r, cache);
  while (rounds++ < 200 && mxr_res_next(r, &q))
    mxr_res_answer(r, q.slot, data, size);
  /* never stuck: something asked, or done */
  CHECK(mxr_res_done(r) || mxr_res_inflight(r) != 0 || mxr_res_next(r, &q));
  {
    mxr_result res;
    CHECK(!mxr_res_done(r) || mxr_plan_result(mxr_res_plan(r), &res) == MXR_OK);
  }
  mxr_res_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint16_t types[] = {MXR_TYPE_MX, MXR_TYPE_A, MXR_TYPE_AAAA};
  char qname[MXR_NAME_BUF];
  char *s = NULL;
  long used = 0;
  qname[0] = '\0';
  if (size > 12 && size < 65536 &&
      ares_expand_name(data + 12, data, (int)size, &s, &used) == ARES_SUCCESS) {
    if (mxr_name_normalize(s, strlen(s), qname, NULL, 0) != MXR_OK)
      qname[0] = '\0';
    ares_free_string(s);
  }
  for (size_t i = 0; i < 3; i++) {
    check(data, size, "mx.test", types[i]);
    check(data, size, "h.test", types[i]);
    if (qname[0])
      check(data, size, qname, types[i]);
  }
  drive(data, size, NULL);
  {
    /* the same answers stored in a cache, then a resolution that may
     * be answered from it (DESIGN 8): the same invariants */
    mxr_cache *c = mxr_cache_new(NULL);
    if (c) {
      drive(data, size, c);
      drive(data, size, c);
      mxr_cache_free(c);
    }
  }
  return 0;
}
