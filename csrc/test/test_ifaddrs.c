/* test_ifaddrs.c — the machine's interface addresses as self (DESIGN
 * rule 8, optional part): mxr_opts_add_interfaces. Loopback (127.0.0.1)
 * is an interface address on every Linux machine. */
#include "mxroute.h"
#include "tap.h"

#include <string.h>

/* A plan for example.test: mx1 at 10 (192.0.2.1), lo at 20 (127.0.0.1). */
static mxr_status plan_with(const mxr_opts *o, mxr_result *r, mxr_plan **pp)
{
  static const mxr_mx mx[] = {{10, "mx1.example.test", 16},
                              {20, "lo.example.test", 15}};
  mxr_input in;
  mxr_rng rng;
  mxr_plan *p;
  size_t i;
  mxr_input_parse("example.test", 12, &in, NULL, 0);
  p = mxr_plan_new(&in, "example.test", 12, o);
  mxr_rng_seed(&rng, 1);
  mxr_plan_set_mx(p, MXR_OK, NULL, mx, 2, &rng);
  for (i = 0; i < mxr_plan_host_count(p); i++) {
    mxr_addr a;
    int is_lo = strcmp(mxr_plan_host_name(p, i), "lo.example.test") == 0;
    const char *text = is_lo ? "127.0.0.1" : "192.0.2.1";
    mxr_addr_parse(text, strlen(text), &a);
    if (mxr_plan_host_wants(p, i, 4))
      mxr_plan_set_addrs(p, i, 4, MXR_OK, &a, 1);
    if (mxr_plan_host_wants(p, i, 6))
      mxr_plan_set_addrs(p, i, 6, MXR_OK, NULL, 0);
  }
  *pp = p;
  return mxr_plan_result(p, r);
}

int main(void)
{
  mxr_opts *o = mxr_opts_new();
  mxr_result r;
  mxr_plan *p;
  size_t n = 0;
  char err[MXR_MSG_BUF];

  mxr_opts_ignore_clear(o); /* allow 127.0.0.1 as a target */
  is_int(plan_with(o, &r, &p), MXR_OK, "plan complete");
  ok(r.status == MXR_OK && !r.has_self_pref && r.nhosts == 2,
     "without interfaces: both hosts, no self_pref");
  mxr_plan_free(p);

  is_int(mxr_opts_add_interfaces(o, &n, err, sizeof err), MXR_OK,
         "interfaces listed");
  ok(n >= 1, "at least the loopback address added (%u)", (unsigned)n);
  is_int(plan_with(o, &r, &p), MXR_OK, "plan complete");
  ok(r.status == MXR_OK && r.has_self_pref && r.self_pref == 20 &&
         r.nhosts == 1 && strcmp(r.hosts[0].name, "mx1.example.test") == 0,
     "with interfaces: the host on 127.0.0.1 is us, self_pref 20");
  mxr_plan_free(p);

  is_int(mxr_opts_add_interfaces(NULL, &n, err, sizeof err), MXR_EBADOPT,
         "NULL options: EBADOPT");
  ok(n == 0, "and nothing added");
  mxr_opts_free(o);
  return done_testing();
}
