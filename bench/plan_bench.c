/*
 * plan_bench.c — the planner alone (no DNS, no Lua): one plan of N MX
 * hosts, fed the way a transport feeds it (an A and an AAAA answer per
 * host, answers arriving in random order), timed for several N so that
 * the growth shows (n log n: doubling N a little more than doubles the
 * time; quadratic: it quadruples).
 *
 *   plan_bench [N...]          (default 1000 2000 4000 8000)
 * prints two lines per N (answers in delivery order, then shuffled):
 * hosts=N levels=L answers=ORDER seconds=S targets=T
 */
#include "mxroute.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "measure.h"

/* One plan of n hosts, 8 hosts per preference level, 2 A + 2 AAAA each,
 * answers in delivery order or shuffled; returns seconds from set_mx to
 * completion, or -1. */
static double run(size_t n, int shuffled, size_t *ntargets) {
  mxr_opts *o = mxr_opts_new();
  mxr_input in;
  mxr_plan *p = NULL;
  mxr_rng rng, order;
  mxr_mx *mx = calloc(n, sizeof *mx);
  char (*names)[32] = calloc(n, sizeof *names);
  size_t *feed = calloc(2 * n, sizeof *feed), i, nlk;
  char err[MXR_MSG_BUF];
  double t0, t = -1;
  mxr_result res;

  if (!o || !mx || !names || !feed ||
      mxr_opts_set_max_hosts(o, n) != MXR_OK ||
      mxr_input_parse("bench.test", 10, &in, err, sizeof err) != MXR_OK)
    goto out;
  mxr_opts_ignore_clear(o);
  mxr_rng_seed(&rng, 1);
  mxr_rng_seed(&order, 2);
  for (i = 0; i < n; i++) {
    int len = snprintf(names[i], sizeof names[i], "mx%zu.bench.test", i);
    mx[i].pref = (uint16_t)(i / 8);
    mx[i].name = names[i];
    mx[i].len = (size_t)len;
  }
  p = mxr_plan_new(&in, "bench.test", 10, o);
  if (!p)
    goto out;
  t0 = now();
  if (mxr_plan_set_mx(p, MXR_OK, NULL, mx, n, &rng) != MXR_OK)
    goto out;
  nlk = mxr_plan_host_count(p);
  for (i = 0; i < 2 * nlk; i++)
    feed[i] = i;
  for (i = 2 * nlk; shuffled && i > 1; i--) { /* answers in any order */
    size_t j = (size_t)mxr_rng_below(&order, i), x = feed[i - 1];
    feed[i - 1] = feed[j];
    feed[j] = x;
  }
  for (i = 0; i < 2 * nlk && !mxr_plan_complete(p); i++) {
    size_t h = feed[i] / 2;
    int fam = feed[i] % 2 ? 6 : 4;
    mxr_addr a[2];
    memset(a, 0, sizeof a);
    a[0].family = a[1].family = (uint8_t)fam;
    if (fam == 4) {
      a[0].bytes[0] = 198;
      a[0].bytes[1] = 51;
      a[0].bytes[2] = (uint8_t)(h >> 8);
      a[0].bytes[3] = (uint8_t)h;
      a[1] = a[0];
      a[1].bytes[0] = 203;
    } else {
      a[0].bytes[0] = 0x20;
      a[0].bytes[1] = 0x01;
      a[0].bytes[2] = 0x0d;
      a[0].bytes[3] = 0xb8;
      a[0].bytes[14] = (uint8_t)(h >> 8);
      a[0].bytes[15] = (uint8_t)h;
      a[1] = a[0];
      a[1].bytes[4] = 1;
    }
    if (mxr_plan_host_wants(p, h, fam))
      mxr_plan_set_addrs(p, h, fam, MXR_OK, a, 2);
    (void)mxr_plan_ready(p);
  }
  if (!mxr_plan_complete(p) || mxr_plan_result(p, &res) != MXR_OK)
    goto out;
  t = now() - t0;
  *ntargets = res.ntargets;
out:
  mxr_plan_free(p);
  mxr_opts_free(o);
  free(mx);
  free(names);
  free(feed);
  return t;
}

int main(int argc, char **argv) {
  static const size_t def[] = {1000, 2000, 4000, 8000};
  size_t k, count = argc > 1 ? (size_t)argc - 1 : sizeof def / sizeof def[0];
  for (k = 0; k < count; k++) {
    size_t n = argc > 1 ? (size_t)strtoul(argv[k + 1], NULL, 10) : def[k];
    size_t nt = 0;
    double s;
    if (n == 0 || n > 65536 * 8) {
      fprintf(stderr, "plan_bench: N must be 1..524288\n");
      return 64;
    }
    int shuffled;
    for (shuffled = 0; shuffled < 2; shuffled++) {
      s = run(n, shuffled, &nt);
      if (s < 0) {
        fprintf(stderr, "plan_bench: plan of %zu hosts failed\n", n);
        return 1;
      }
      printf("hosts=%zu levels=%zu answers=%s seconds=%.4f targets=%zu\n",
             n, (n + 7) / 8, shuffled ? "shuffled" : "in-order", s, nt);
    }
  }
  return 0;
}
