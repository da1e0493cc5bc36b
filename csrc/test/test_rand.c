/*
 * PRNG: reference vectors, reproducibility, unbiased bounded draws. TAP.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mxroute.h"
#include <stdio.h>
#include <string.h>

#include "tap.h"

/* xoshiro256** seeded with splitmix64, computed independently. */
static const uint64_t ref0[4] = {
    UINT64_C(0x99ec5f36cb75f2b4), UINT64_C(0xbf6e1f784956452a),
    UINT64_C(0x1a5f849d4933e6e0), UINT64_C(0x6aa594f1262d2d2c)};
static const uint64_t ref42[4] = {
    UINT64_C(0x15780b2e0c2ec716), UINT64_C(0x6104d9866d113a7e),
    UINT64_C(0xae17533239e499a1), UINT64_C(0xecb8ad4703b360a1)};

/* Whether the first n draws after seeding with seed are want[0..n-1]. */
static int stream_is(uint64_t seed, const uint64_t *want, int n) {
  mxr_rng r;
  int i;
  mxr_rng_seed(&r, seed);
  for (i = 0; i < n; i++)
    if (mxr_rng_next(&r) != want[i])
      return 0;
  return 1;
}

/* Whether seeds sa and sb give the same first n draws. */
static int same_stream(uint64_t sa, uint64_t sb, int n) {
  mxr_rng a, b;
  int i;
  mxr_rng_seed(&a, sa);
  mxr_rng_seed(&b, sb);
  for (i = 0; i < n; i++)
    if (mxr_rng_next(&a) != mxr_rng_next(&b))
      return 0;
  return 1;
}

static void test_reference(void) {
  ok(stream_is(0, ref0, 4), "seed 0 gives the reference xoshiro256** stream");
  ok(stream_is(42, ref42, 4), "seed 42 gives the reference xoshiro256** stream");
}

static void test_reproducible(void) {
  mxr_rng a, b;
  ok(same_stream(7, 7, 1000), "the same seed gives the same stream");
  ok(!same_stream(7, 8, 10), "another seed gives another stream");
  is_int(mxr_rng_seed_os(&a), MXR_OK, "seed_os works");
  is_int(mxr_rng_seed_os(&b), MXR_OK, "seed_os works twice");
  ok(mxr_rng_next(&a) != mxr_rng_next(&b) || mxr_rng_next(&a) != mxr_rng_next(&b),
     "two OS seeds differ");
}

static void test_below(void) {
  mxr_rng r;
  int i, inrange = 1, count[6] = {0}, k, low = 0, n = 30000;
  uint64_t big = UINT64_C(3) << 62;
  mxr_rng_seed(&r, 1);
  is_int(mxr_rng_below(&r, 0), 0, "below(0) is 0");
  for (i = 0; i < 100; i++)
    if (mxr_rng_below(&r, 1) != 0)
      inrange = 0;
  ok(inrange, "below(1) is always 0");
  for (i = 0; i < 60000; i++) {
    uint64_t v = mxr_rng_below(&r, 6);
    if (v >= 6)
      inrange = 0;
    else
      count[v]++;
  }
  ok(inrange, "below(6) stays in range");
  for (k = 0; k < 6; k++)
    ok(count[k] > 9500 && count[k] < 10500, "below(6) gives %d %d times of 60000",
       k, count[k]);
  /* n = 3 * 2^62: plain modulo would put half the draws below 2^62; an
   * unbiased draw puts a third there. */
  for (i = 0; i < n; i++) {
    uint64_t v = mxr_rng_below(&r, big);
    if (v >= big)
      inrange = 0;
    if (v < (UINT64_C(1) << 62))
      low++;
  }
  ok(inrange, "below(3*2^62) stays in range");
  ok(low > n / 3 - 600 && low < n / 3 + 600,
     "below(3*2^62) is unbiased: %d of %d below 2^62 (expect ~%d)", low, n,
     n / 3);
  inrange = 1;
  for (i = 0; i < 1000; i++)
    if (mxr_rng_below(&r, UINT64_MAX) == UINT64_MAX)
      inrange = 0;
  ok(inrange, "below(UINT64_MAX) never returns UINT64_MAX");
}

int main(void) {
  test_reference();
  test_reproducible();
  test_below();
  return done_testing();
}
