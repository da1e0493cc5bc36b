/* A small user of the installed C API (spec/install_spec.lua builds it
 * with pkg-config): resolve argv[2] through the engine against the
 * nameserver argv[1] and print "pref host addr" per target, or the
 * failure's code and message. Exit 0 on a plan, 1 on a failure, 2 on a
 * setup error. */
#include <mxroute.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
  mxr_engine_config cfg;
  mxr_engine *e = NULL;
  mxr_opts *o = NULL;
  mxr_res *r = NULL;
  mxr_job *job = NULL;
  mxr_rng rng;
  mxr_result res;
  char err[256];
  size_t i;
  int rc = 2;

  if (argc != 3) {
    fprintf(stderr, "usage: resolve IP:PORT INPUT\n");
    return 2;
  }
  memset(&cfg, 0, sizeof cfg);
  cfg.servers = argv[1];
  cfg.timeout_ms = 2000;
  cfg.tries = 2;
  o = mxr_opts_new();
  if (o == NULL || mxr_engine_new(&cfg, &e, err, sizeof err) != MXR_OK)
    goto done;
  mxr_rng_seed(&rng, 1);
  r = mxr_res_new(argv[2], strlen(argv[2]), o, &rng);
  if (r == NULL || mxr_engine_add(e, r, r, &job) != MXR_OK)
    goto done;
  while (mxr_engine_next_done(e) == NULL) {
    double t = mxr_engine_timeout(e);
    mxr_engine_step(e, t < 0 ? 1.0 : t);
  }
  if (mxr_plan_result(mxr_res_plan(r), &res) != MXR_OK)
    goto done;
  if (res.status != MXR_OK) {
    printf("%s %s\n", mxr_status_name(res.status), res.message);
    rc = 1;
    goto done;
  }
  for (i = 0; i < res.ntargets; i++) {
    char addr[MXR_ADDR_BUF];
    mxr_addr_format(&res.targets[i].addr, addr);
    printf("%u %s %s\n", (unsigned)res.targets[i].pref, res.targets[i].host,
           addr);
  }
  rc = 0;
done:
  if (job != NULL)
    mxr_engine_remove(e, job);
  mxr_res_free(r);
  mxr_engine_free(e);
  mxr_opts_free(o);
  return rc;
}
