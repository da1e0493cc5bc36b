/*
 * engine_bench.c — mxroute's C engine on the same work as raw_cares.c:
 * every domain resolved to a full plan (validated answers, planner, self
 * and guard checks), CONCURRENCY plans in flight, no Lua.
 *
 *   engine_bench SERVER:PORT CONCURRENCY [MAX_INFLIGHT] < DOMAINS
 * prints: plans=N failed=N wrong=N seconds=S plans_per_s=R targets=N
 *         peak_kib=K bytes_per_plan=B
 * Every plan of a domain dN.bench.test is checked against the zone that
 * bench/run generates (mx1/mx2.dN, A and AAAA each): a plan with any other
 * target set counts as wrong. bytes_per_plan is the growth of the peak RSS
 * over the RSS before the first plan, divided by the plans in flight.
 */
#include "mxroute.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "measure.h"

/* The four targets the generated zone gives dN: mx1.dN A 198.51.b.a and
 * AAAA 2001:db8:N::N, mx2.dN A 203.0.b.a and AAAA 2001:db8:N::1:N (hex);
 * made before the clock starts (the clients compared do no such check). */
typedef struct expect {
  int ok;
  char host[2][48];
  unsigned char a4[2][4], a6[2][16];
} expect;

static void expect_make(const char *domain, expect *x)
{
  unsigned long i;
  char buf[64];
  int k;
  memset(x, 0, sizeof *x);
  if (sscanf(domain, "d%lu.", &i) != 1)
    return;
  for (k = 0; k < 2; k++) {
    snprintf(x->host[k], sizeof x->host[k], "mx%d.d%lu.bench.test", k + 1, i);
    snprintf(buf, sizeof buf, "%s.%lu.%lu", k ? "203.0" : "198.51",
             i / 250 % 250 + 1, i % 250 + 1);
    if (inet_pton(AF_INET, buf, x->a4[k]) != 1)
      return;
    snprintf(buf, sizeof buf, k ? "2001:db8:%lx::1:%lx" : "2001:db8:%lx::%lx",
             i, i);
    if (inet_pton(AF_INET6, buf, x->a6[k]) != 1)
      return;
  }
  x->ok = 1;
}

/* Not inlined: bench/run's callgrind count leaves this check out
 * (--toggle-collect=plan_ok inside resolve_all). */
__attribute__((noinline)) static int plan_ok(const expect *x,
                                             const mxr_result *res)
{
  unsigned seen = 0, bit;
  size_t m;
  if (!x->ok || res->ntargets != 4)
    return 0;
  for (m = 0; m < 4; m++) {
    const mxr_target *t = &res->targets[m];
    int h = t->pref == 10 ? 0 : t->pref == 20 ? 1 : -1;
    if (h < 0 || strcmp(t->host, x->host[h]) != 0)
      return 0;
    if (t->addr.family == 4 && memcmp(t->addr.bytes, x->a4[h], 4) == 0)
      bit = 1u << (2 * h);
    else if (t->addr.family == 6 && memcmp(t->addr.bytes, x->a6[h], 16) == 0)
      bit = 2u << (2 * h);
    else
      return 0;
    if (seen & bit)
      return 0;
    seen |= bit;
  }
  return 1;
}

typedef struct slot {
  const expect *want;
  mxr_res *r;
  mxr_job *job;
} slot;

typedef struct tally {
  size_t done, failed, wrong, targets;
} tally;

/* The resolution loop: every domain to a full plan, conc plans in flight,
 * each plan checked (plan_ok) as it is done. The only part bench/run's
 * callgrind section counts (--toggle-collect='resolve_all*'). Returns 0, or
 * -1 if a plan could not be started. */
__attribute__((noinline)) static int
resolve_all(mxr_engine *e, const mxr_opts *o, mxr_rng *rng, char **domains,
            const expect *wants, size_t n, size_t conc, tally *t)
{
  size_t next = 0;
  while (t->done < n) {
    slot *sl;
    while (next < n && next - t->done < conc) {
      sl = malloc(sizeof *sl);
      if (!sl)
        return -1;
      sl->want = &wants[next];
      sl->r = mxr_res_new(domains[next], strlen(domains[next]), o, rng);
      if (!sl->r || mxr_engine_add(e, sl->r, sl, &sl->job) != MXR_OK)
        return -1;
      next++;
    }
    {
      double to = mxr_engine_timeout(e);
      mxr_engine_step(e, to < 0 ? 1.0 : to);
    }
    while ((sl = mxr_engine_next_done(e)) != NULL) {
      mxr_result res;
      if (mxr_plan_result(mxr_res_plan(sl->r), &res) == MXR_OK &&
          res.status == MXR_OK) {
        t->targets += res.ntargets;
        if (!plan_ok(sl->want, &res))
          t->wrong++;
      } else
        t->failed++;
      t->done++;
      mxr_engine_remove(e, sl->job);
      mxr_res_free(sl->r);
      free(sl);
    }
  }
  return 0;
}

int main(int argc, char **argv)
{
  mxr_engine_config cfg;
  mxr_engine *e;
  mxr_opts *o;
  mxr_rng rng;
  char err[MXR_MSG_BUF], line[512];
  char **domains = NULL;
  expect *wants;
  size_t n = 0, cap = 0, next = 0, conc;
  tally tl = {0, 0, 0, 0};
  double t0, t1, c0;
  long rss0;
  long peak;

  if (argc < 3) {
    fprintf(stderr, "usage: engine_bench SERVER:PORT CONCURRENCY < DOMAINS\n");
    return 64;
  }
  conc = (size_t)strtoul(argv[2], NULL, 10);
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0])
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      domains = realloc(domains, cap * sizeof *domains);
      if (!domains)
        return 1;
    }
    domains[n++] = strdup(line);
  }
  memset(&cfg, 0, sizeof cfg);
  cfg.servers = argv[1];
  if (argc > 3) /* queries in flight (the exchange's bound; 0: default) */
    cfg.max_inflight = (size_t)strtoul(argv[3], NULL, 10);
  o = mxr_opts_new();
  if (!o || mxr_engine_new(&cfg, &e, err, sizeof err) != MXR_OK) {
    fprintf(stderr, "engine: %s\n", err);
    return 1;
  }
  wants = calloc(n ? n : 1, sizeof *wants);
  if (!wants)
    return 1;
  for (next = 0; next < n; next++)
    expect_make(domains[next], &wants[next]);
  mxr_rng_seed_os(&rng);
  rss0 = status_kib("VmRSS");
  c0 = cpu_s();
  t0 = now();
  if (resolve_all(e, o, &rng, domains, wants, n, conc, &tl) != 0)
    return 1;
  t1 = now();
  peak = status_kib("VmHWM");
  printf("mxr engine: plans=%zu failed=%zu wrong=%zu seconds=%.3f "
         "plans_per_s=%.0f targets=%zu peak_kib=%ld bytes_per_plan=%.0f "
         "cpu_us_per_plan=%.1f\n",
         tl.done, tl.failed, tl.wrong, t1 - t0, (double)tl.done / (t1 - t0),
         tl.targets,
         peak,
         (double)(peak - rss0) * 1024.0 /
             (double)(conc < n ? conc : n),
         (cpu_s() - c0) * 1e6 / (double)tl.done);
  mxr_engine_free(e);
  mxr_opts_free(o);
  for (next = 0; next < n; next++)
    free(domains[next]);
  free(domains);
  free(wants);
  return 0;
}
