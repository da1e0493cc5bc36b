/*
 * engine_bench.c — mxroute's C engine on the same work as raw_cares.c:
 * every domain resolved to a full plan (validated answers, planner, self
 * and guard checks), CONCURRENCY plans in flight, no Lua.
 *
 *   engine_bench SERVER:PORT CONCURRENCY < DOMAINS
 * prints: plans=N failed=N wrong=N seconds=S plans_per_s=R targets=N
 *         peak_kib=K bytes_per_plan=B
 * Every plan of a domain dN.bench.test is checked against the zone that
 * bench/run generates (mx1/mx2.dN, A and AAAA each): a plan with any other
 * target set counts as wrong. bytes_per_plan is the growth of the peak RSS
 * over the RSS before the first plan, divided by the plans in flight.
 */
#include "mxroute.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct slot {
  const char *domain;
  mxr_res *r;
  mxr_job *job;
} slot;

/* VmRSS or VmHWM (the peak) of /proc/self/status, in KiB */
static long status_kib(const char *field)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  size_t n = strlen(field);
  if (!f)
    return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':')
      v = strtol(line + n + 1, NULL, 10);
  fclose(f);
  return v;
}

/* The four targets the generated zone gives dN: mx1.dN A 198.51.b.a and
 * AAAA 2001:db8:N::N, mx2.dN A 203.0.b.a and AAAA 2001:db8:N::1:N (hex). */
static int plan_ok(const char *domain, const mxr_result *res)
{
  char want[4][64], host[4][64], got[64];
  unsigned long i;
  size_t k, m, seen = 0;
  if (sscanf(domain, "d%lu.", &i) != 1 || res->ntargets != 4)
    return 0;
  snprintf(want[0], sizeof want[0], "198.51.%lu.%lu", i / 250 % 250 + 1,
           i % 250 + 1);
  snprintf(want[1], sizeof want[1], "2001:db8:%lx::%lx", i, i);
  snprintf(want[2], sizeof want[2], "203.0.%lu.%lu", i / 250 % 250 + 1,
           i % 250 + 1);
  snprintf(want[3], sizeof want[3], "2001:db8:%lx::1:%lx", i, i);
  for (k = 0; k < 4; k++)
    snprintf(host[k], sizeof host[k], "mx%d.d%lu.bench.test", k < 2 ? 1 : 2,
             i);
  for (m = 0; m < 4; m++) {
    const mxr_target *t = &res->targets[m];
    mxr_addr_format(&t->addr, got);
    for (k = 0; k < 4; k++)
      if (!(seen & (1u << k)) && strcmp(got, want[k]) == 0 &&
          strcmp(t->host, host[k]) == 0 && t->pref == (k < 2 ? 10 : 20))
        break;
    if (k == 4)
      return 0;
    seen |= 1u << k;
  }
  return 1;
}

/* user + system CPU seconds of this process */
static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
  mxr_engine_config cfg;
  mxr_engine *e;
  mxr_opts *o;
  mxr_rng rng;
  char err[MXR_MSG_BUF], line[512];
  char **domains = NULL;
  size_t n = 0, cap = 0, next = 0, done = 0, failed = 0, wrong = 0;
  size_t targets = 0, conc;
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
  o = mxr_opts_new();
  if (!o || mxr_engine_new(&cfg, &e, err, sizeof err) != MXR_OK) {
    fprintf(stderr, "engine: %s\n", err);
    return 1;
  }
  mxr_rng_seed_os(&rng);
  rss0 = status_kib("VmRSS");
  c0 = cpu_s();
  t0 = now();
  while (done < n) {
    slot *sl;
    while (next < n && next - done < conc) {
      sl = malloc(sizeof *sl);
      if (!sl)
        return 1;
      sl->domain = domains[next];
      sl->r = mxr_res_new(domains[next], strlen(domains[next]), o, &rng);
      if (!sl->r || mxr_engine_add(e, sl->r, sl, &sl->job) != MXR_OK)
        return 1;
      next++;
    }
    {
      double t = mxr_engine_timeout(e);
      mxr_engine_step(e, t < 0 ? 1.0 : t);
    }
    while ((sl = mxr_engine_next_done(e)) != NULL) {
      mxr_result res;
      if (mxr_plan_result(mxr_res_plan(sl->r), &res) == MXR_OK &&
          res.status == MXR_OK) {
        targets += res.ntargets;
        if (!plan_ok(sl->domain, &res))
          wrong++;
      } else
        failed++;
      done++;
      mxr_engine_remove(e, sl->job);
      mxr_res_free(sl->r);
      free(sl);
    }
  }
  t1 = now();
  peak = status_kib("VmHWM");
  printf("mxr engine: plans=%zu failed=%zu wrong=%zu seconds=%.3f "
         "plans_per_s=%.0f targets=%zu peak_kib=%ld bytes_per_plan=%.0f "
         "cpu_us_per_plan=%.1f\n",
         done, failed, wrong, t1 - t0, (double)done / (t1 - t0), targets,
         peak,
         (double)(peak - rss0) * 1024.0 /
             (double)(conc < n ? conc : n),
         (cpu_s() - c0) * 1e6 / (double)done);
  mxr_engine_free(e);
  mxr_opts_free(o);
  return 0;
}
