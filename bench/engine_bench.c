/*
 * engine_bench.c — mxroute's C engine on the same work as raw_cares.c:
 * every domain resolved to a full plan (validated answers, planner, self
 * and guard checks), CONCURRENCY plans in flight, no Lua.
 *
 *   engine_bench SERVER:PORT CONCURRENCY < DOMAINS
 * prints: plans=N failed=N seconds=S plans_per_s=R targets=N
 */
#include "mxroute.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slot {
  mxr_res *r;
  mxr_job *job;
} slot;

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
  size_t n = 0, cap = 0, next = 0, done = 0, failed = 0, targets = 0, conc;
  double t0, t1;

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
  t0 = now();
  while (done < n) {
    slot *sl;
    while (next < n && next - done < conc) {
      sl = malloc(sizeof *sl);
      if (!sl)
        return 1;
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
          res.status == MXR_OK)
        targets += res.ntargets;
      else
        failed++;
      done++;
      mxr_engine_remove(e, sl->job);
      mxr_res_free(sl->r);
      free(sl);
    }
  }
  t1 = now();
  printf("mxr engine: plans=%zu failed=%zu seconds=%.3f plans_per_s=%.0f "
         "targets=%zu\n", done, failed, t1 - t0, (double)done / (t1 - t0),
         targets);
  mxr_engine_free(e);
  mxr_opts_free(o);
  return 0;
}
