/*
 * Planner tests (DESIGN 1, rules 3-13): one or more checks per rule,
 * each failing if the rule were removed. TAP output.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mxroute.h"
#ifdef MXR_TESTING
#include "mxr_internal.h"
#endif
#include <stdio.h>
#include <string.h>

#include "tap.h"

/* ------------------------------------------------------------------ */
/* harness                                                             */

/* What the fake DNS says about one host: A and AAAA outcome and a
 * space-separated address list. Hosts not listed are NXDOMAIN. */
typedef struct fake {
  const char *name;
  mxr_status st4;
  const char *a4;
  mxr_status st6;
  const char *a6;
} fake;

#define MAXA 64

static size_t parse_addrs(const char *list, mxr_addr *out) {
  size_t n = 0;
  const char *s = list ? list : "";
  while (*s && n < MAXA) {
    size_t len;
    while (*s == ' ')
      s++;
    len = strcspn(s, " ");
    if (len == 0)
      break;
    if (mxr_addr_parse(s, len, &out[n]) != MXR_OK) {
      printf("# bad test address '%.*s'\n", (int)len, s);
      exit(2);
    }
    n++;
    s += len;
  }
  return n;
}

static mxr_mx mxs[128];
static char mxnames[128][64];

/* "10:mx1.test 20:." -> mxs */
static size_t parse_mx(const char *spec) {
  size_t n = 0;
  const char *s = spec;
  while (*s && n < 128) {
    size_t len;
    char *colon;
    while (*s == ' ')
      s++;
    len = strcspn(s, " ");
    if (len == 0)
      break;
    memcpy(mxnames[n], s, len);
    mxnames[n][len] = '\0';
    colon = strchr(mxnames[n], ':');
    mxs[n].pref = (uint16_t)atoi(mxnames[n]);
    mxs[n].name = colon + 1;
    mxs[n].len = strlen(colon + 1);
    n++;
    s += len;
  }
  return n;
}

static mxr_plan *new_plan(const mxr_opts *o, const char *input) {
  mxr_input in;
  char err[MXR_MSG_BUF];
  if (mxr_input_parse(input, strlen(input), &in, err, sizeof err) != MXR_OK) {
    printf("# bad test input %s: %s\n", input, err);
    exit(2);
  }
  return mxr_plan_new(&in, input, strlen(input), o);
}

static const fake *find_fake(const fake *f, const char *name) {
  for (; f && f->name; f++)
    if (mxr_name_equal(f->name, name))
      return f;
  return NULL;
}

/* Feed one lookup of host i from the fake. */
static mxr_status feed_one(mxr_plan *p, const fake *f, size_t i, int fam) {
  mxr_addr a[MAXA];
  const fake *h = find_fake(f, mxr_plan_host_name(p, i));
  size_t n = 0;
  mxr_status st = MXR_ENXDOMAIN;
  if (h) {
    st = fam == 4 ? h->st4 : h->st6;
    n = parse_addrs(fam == 4 ? h->a4 : h->a6, a);
  }
  return mxr_plan_set_addrs(p, i, fam, st, a, n);
}

/* order 0: hosts forward, A then AAAA; 1: hosts backward, AAAA first;
 * 2: all A lookups first, then all AAAA. */
static void feed(mxr_plan *p, const fake *f, int order) {
  size_t n = mxr_plan_host_count(p), k;
  int pass, fam;
  if (order == 2) {
    for (pass = 0; pass < 2; pass++)
      for (k = 0; k < n; k++)
        if (mxr_plan_host_wants(p, k, pass ? 6 : 4))
          feed_one(p, f, k, pass ? 6 : 4);
    return;
  }
  for (k = 0; k < n; k++) {
    size_t i = order ? n - 1 - k : k;
    for (pass = 0; pass < 2; pass++) {
      fam = (pass == 0) == (order == 0) ? 4 : 6;
      if (mxr_plan_host_wants(p, i, fam))
        feed_one(p, f, i, fam);
    }
  }
}

#define NOFEED 99 /* run(): set the MX, feed nothing */

static mxr_plan *run(const mxr_opts *o, const char *input, mxr_status mxst,
                     const char *canon, const char *mxspec, const fake *f,
                     uint64_t seed, int order) {
  mxr_rng rng;
  mxr_plan *p = new_plan(o, input);
  size_t n = parse_mx(mxspec ? mxspec : "");
  mxr_rng_seed(&rng, seed);
  if (mxr_plan_set_mx(p, mxst, canon, mxs, n, &rng) != MXR_OK)
    printf("# set_mx failed\n");
  if (order != NOFEED)
    feed(p, f, order);
  return p;
}

static char rbuf[16384];

/* The whole result as one line:
 * "OK H:mx1@10(a,b) mx2@20(c) T:mx1/a mx1/b mx2/c S:x@5=NXDOMAIN self=20" */
static const char *render(mxr_plan *p) {
  mxr_result r;
  size_t i, j, o;
  char ab[MXR_ADDR_BUF];
  if (mxr_plan_result(p, &r) != MXR_OK)
    return "INCOMPLETE";
  o = (size_t)snprintf(rbuf, sizeof rbuf, "%s", mxr_status_name(r.status));
#define OUT(...) o += (size_t)snprintf(rbuf + o, sizeof rbuf - o, __VA_ARGS__)
  if (r.nhosts)
    OUT(" H:");
  for (i = 0; i < r.nhosts; i++) {
    OUT("%s%s@%u(", i ? " " : "", r.hosts[i].name, r.hosts[i].pref);
    for (j = 0; j < r.hosts[i].naddrs; j++) {
      mxr_addr_format(&r.hosts[i].addrs[j], ab);
      OUT("%s%s", j ? "," : "", ab);
    }
    OUT(")");
  }
  if (r.ntargets)
    OUT(" T:");
  for (i = 0; i < r.ntargets; i++) {
    mxr_addr_format(&r.targets[i].addr, ab);
    OUT("%s%s/%s", i ? " " : "", r.targets[i].host, ab);
  }
  if (r.nskipped)
    OUT(" S:");
  for (i = 0; i < r.nskipped; i++)
    OUT("%s%s@%u=%s", i ? " " : "", r.skipped[i].name, r.skipped[i].pref,
        mxr_status_name(r.skipped[i].code));
  if (r.has_self_pref)
    OUT(" self=%u", r.self_pref);
  if (r.implicit)
    OUT(" implicit");
#undef OUT
  return rbuf;
}

static const char *message(mxr_plan *p) {
  mxr_result r;
  if (mxr_plan_result(p, &r) != MXR_OK)
    return "INCOMPLETE";
  return r.message;
}

static mxr_status status_of(mxr_plan *p) {
  mxr_result r;
  if (mxr_plan_result(p, &r) != MXR_OK)
    return MXR_STATUS_COUNT;
  return r.status;
}

static int contains(const char *hay, const char *needle) {
  return hay && strstr(hay, needle) != NULL;
}

/* Run and compare the rendering, freeing the plan. */
static void expect(const mxr_opts *o, const char *mxspec, const fake *f,
                   const char *want, const char *what) {
  mxr_plan *p = run(o, "user@example.test", MXR_OK, NULL, mxspec, f, 1, 0);
  is_str(render(p), want, "%s", what);
  mxr_plan_free(p);
}

/* One plan to check: its input and MX outcome (the exchanges of mxspec),
 * the rendering it must give and, when msg is set, the message. */
typedef struct plan_case {
  const char *input;
  mxr_status mxst;
  const char *canon;
  const char *mxspec;
  const char *want;
  const char *what;
  const char *msg;
  const char *msg_what;
} plan_case;

/* Run every case with the addresses of f (seed 1, fed in order). */
static void check_plans(const mxr_opts *o, const fake *f, const plan_case *c, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    mxr_plan *p = run(o, c[i].input, c[i].mxst, c[i].canon, c[i].mxspec, f, 1, 0);
    is_str(render(p), c[i].want, "%s", c[i].what);
    if (c[i].msg)
      is_str(message(p), c[i].msg, "%s", c[i].msg_what);
    mxr_plan_free(p);
  }
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* The index of host name in p, or SIZE_MAX when p has no such host. */
static size_t host_index(mxr_plan *p, const char *name) {
  size_t i;
  for (i = 0; i < mxr_plan_host_count(p); i++)
    if (strcmp(mxr_plan_host_name(p, i), name) == 0)
      return i;
  return SIZE_MAX;
}

/* Feed both lookups (A, then AAAA) of host i from the fake. */
static void feed_host(mxr_plan *p, const fake *f, size_t i) {
  feed_one(p, f, i, 4);
  feed_one(p, f, i, 6);
}

/* How often each order of three items came out of 6000 shuffles. */
typedef struct orders {
  const char *const *perms; /* the 6 permutations, 3 characters each */
  int count[6];
  int other;                /* plans whose order is none of them */
} orders;

/* Writes the order (3 characters) of a plan's result into order; returns
 * 0 when the result does not have the three items. */
typedef int (*order_fn)(const mxr_result *r, char order[4], void *ctx);

/* 6000 plans of example.test with the exchanges of mxspec, fed from f,
 * shuffled by one generator seeded with seed: each one's order counted. */
static void count_orders(orders *t, const mxr_opts *o, const char *mxspec, const fake *f,
                         uint64_t seed, order_fn order_of, void *ctx) {
  mxr_rng rng;
  int i, k;
  mxr_rng_seed(&rng, seed);
  for (i = 0; i < 6000; i++) {
    mxr_plan *p = new_plan(o, "example.test");
    mxr_result r;
    char order[4];
    size_t n = parse_mx(mxspec);
    mxr_plan_set_mx(p, MXR_OK, NULL, mxs, n, &rng);
    feed(p, f, 0);
    mxr_plan_result(p, &r);
    k = 6; /* none of the permutations, unless order_of finds the items */
    if (order_of(&r, order, ctx))
      for (k = 0; k < 6 && strcmp(order, t->perms[k]) != 0; k++)
        ;
    if (k < 6)
      t->count[k]++;
    else
      t->other++;
    mxr_plan_free(p);
  }
}

/* Of 6000 shuffles, each order must come 1000 +- 150 times. */
static void check_uniform(const orders *t, const char *what) {
  int k;
  for (k = 0; k < 6; k++)
    ok(t->count[k] >= 850 && t->count[k] <= 1150,
       "%s order %s appears %d times of 6000 (1000 +- 150)", what, t->perms[k],
       t->count[k]);
}

#define OKA(name, a4, a6) {name, MXR_OK, a4, MXR_OK, a6}
#define END {NULL, MXR_OK, NULL, MXR_OK, NULL}


/* ------------------------------------------------------------------ */
/* rules                                                               */

/* Rules 5, 6: each host once at its lowest preference, ascending. */
static void test_order_dedup(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("mx1.example.test", "192.0.2.1", ""),
                    OKA("mx2.example.test", "192.0.2.2", ""),
                    OKA("mx3.example.test", "192.0.2.3", ""), END};
  expect(o, "30:mx3.example.test 10:mx1.example.test 20:mx2.example.test", f,
         "OK H:mx1.example.test@10(192.0.2.1) mx2.example.test@20(192.0.2.2) "
         "mx3.example.test@30(192.0.2.3) T:mx1.example.test/192.0.2.1 "
         "mx2.example.test/192.0.2.2 mx3.example.test/192.0.2.3",
         "hosts sorted by ascending preference");
  expect(o, "30:MX1.Example.Test. 10:mx2.example.test 5:mx1.example.test "
            "40:mx1.example.test",
         f,
         "OK H:mx1.example.test@5(192.0.2.1) mx2.example.test@10(192.0.2.2) "
         "T:mx1.example.test/192.0.2.1 mx2.example.test/192.0.2.2",
         "a host named several times appears once, at its lowest preference "
         "(case and trailing dot ignored)");
  mxr_opts_free(o);
}

/* Rule 2: failures are final, no A/AAAA fallback. */
static void test_mx_failure(void) {
  mxr_opts *o = mxr_opts_new();
  mxr_rng rng;
  mxr_plan *p = new_plan(o, "user@s5.test");
  mxr_rng_seed(&rng, 1);
  is_int(mxr_plan_set_mx(p, MXR_ENXDOMAIN, NULL, NULL, 0, &rng), MXR_OK,
         "set_mx accepts a failure");
  ok(mxr_plan_complete(p), "an MX failure completes the plan");
  is_int(mxr_plan_host_count(p), 0, "no address lookups after NXDOMAIN");
  is_str(render(p), "NXDOMAIN", "NXDOMAIN is the plan's status");
  is_str(message(p), "s5.test: domain does not exist",
         "message names the domain and the reason");
  mxr_plan_free(p);
  p = run(o, "s6.test", MXR_ESERVFAIL, NULL, "", NULL, 1, 0);
  is_str(render(p), "SERVFAIL", "SERVFAIL on MX is SERVFAIL, no fallback");
  is_int(mxr_plan_host_count(p), 0, "no address lookups after SERVFAIL");
  is_str(message(p), "s6.test: server failure", "SERVFAIL message");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* Rule 3: NODATA -> implicit MX. */
static void test_implicit(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("example.test", "192.0.2.10", ""),
                    OKA("real.test", "192.0.2.11", ""),
                    {"bare.test", MXR_OK, "", MXR_ENODATA, ""},
                    {"tmp.test", MXR_ETIMEOUT, "", MXR_ENODATA, ""},
                    END};
  static const plan_case cases[] = {
      {"u@Example.TEST", MXR_ENODATA, NULL, "",
       "OK H:example.test@0(192.0.2.10) T:example.test/192.0.2.10 implicit",
       "NODATA: the domain itself at preference 0, implicit", NULL, NULL},
      {"example.test", MXR_OK, NULL, "",
       "OK H:example.test@0(192.0.2.10) T:example.test/192.0.2.10 implicit",
       "an empty MX answer is NODATA too", NULL, NULL},
      {"alias.test", MXR_ENODATA, "Real.Test.", "",
       "OK H:real.test@0(192.0.2.11) T:real.test/192.0.2.11 implicit",
       "the implicit host is the CNAME target (canon)", NULL, NULL},
      {"bare.test", MXR_ENODATA, NULL, "", "NOHOSTS S:bare.test@0=NODATA implicit",
       "implicit MX without address: NOHOSTS",
       "bare.test: no usable mail host (bare.test: NODATA)", "NOHOSTS message says why"},
      {"nx.test", MXR_ENODATA, NULL, "", "NOHOSTS S:nx.test@0=NXDOMAIN implicit",
       "implicit MX whose name has vanished: NOHOSTS", NULL, NULL},
      {"tmp.test", MXR_ENODATA, NULL, "", "TIMEOUT S:tmp.test@0=TIMEOUT implicit",
       "implicit MX whose A lookup timed out: temporary",
       "tmp.test: no answer in time",
       "temporary message: the reason (the host is the domain)"},
  };
  check_plans(o, f, cases, NCASES(cases));
  mxr_opts_free(o);
}

/* Rule 4: RFC 7505 null MX. */
static void test_null_mx(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("mx.example.test", "192.0.2.1", ""), END};
  mxr_plan *p = run(o, "u@example.test", MXR_OK, NULL, "0:.", f, 1, 0);
  is_str(render(p), "NULLMX", "a lone '.' is a null MX");
  is_int(mxr_plan_host_count(p), 0, "null MX: no A/AAAA fallback");
  is_str(message(p), "example.test: domain accepts no mail (null MX)",
         "null MX message");
  mxr_plan_free(p);
  expect(o, "0:. 10:.", f, "NULLMX", "several '.' records alone: NULLMX");
  {
    mxr_rng rng;
    mxr_mx root = {0, "", 0};
    p = new_plan(o, "example.test");
    mxr_rng_seed(&rng, 1);
    mxr_plan_set_mx(p, MXR_OK, NULL, &root, 1, &rng);
    is_str(render(p), "NULLMX", "an empty exchange name is the root too");
    mxr_plan_free(p);
  }
  expect(o, "0:. 10:mx.example.test", f,
         "OK H:mx.example.test@10(192.0.2.1) T:mx.example.test/192.0.2.1 "
         "S:.@0=NULLMX",
         "'.' beside a real MX is skipped as NULLMX, the others used");
  mxr_opts_free(o);
}

/* The first letters of the first three hosts, of four; clears *zlast
 * (an int) when the fourth is not z.test. */
static int host_order(const mxr_result *r, char order[4], void *zlast) {
  int k;
  if (r->nhosts != 4)
    return 0;
  for (k = 0; k < 3; k++)
    order[k] = r->hosts[k].name[0];
  order[3] = '\0';
  if (r->hosts[3].name[0] != 'z')
    *(int *)zlast = 0;
  return 1;
}

/* Rule 6: equal preferences in uniformly random order. */
static void test_host_shuffle(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("a.test", "192.0.2.1", ""),
                    OKA("b.test", "192.0.2.2", ""),
                    OKA("c.test", "192.0.2.3", ""),
                    OKA("z.test", "192.0.2.9", ""), END};
  static const char *const perms[6] = {"abc", "acb", "bac",
                                       "bca", "cab", "cba"};
  orders t = {perms, {0}, 0};
  int zlast = 1;
  count_orders(&t, o, "10:a.test 10:b.test 10:c.test 20:z.test", f, 12345, host_order, &zlast);
  is_int(t.other, 0, "every plan has the four hosts");
  ok(zlast, "the higher preference is never mixed into the equal ones");
  check_uniform(&t, "host");
  mxr_opts_free(o);
}

/* The last digits of the three targets, 192.0.2.1 to .3. */
static int addr_order(const mxr_result *r, char order[4], void *ctx) {
  int k;
  (void)ctx;
  if (r->ntargets != 3)
    return 0;
  for (k = 0; k < 3; k++)
    order[k] = (char)('0' + r->targets[k].addr.bytes[3]);
  order[3] = '\0';
  return 1;
}

/* Rule 7: a host's addresses in uniformly random order. */
static void test_addr_shuffle(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("mx.test", "192.0.2.1 192.0.2.2 192.0.2.3", ""), END};
  static const char *const perms[6] = {"123", "132", "213",
                                       "231", "312", "321"};
  orders t = {perms, {0}, 0};
  count_orders(&t, o, "10:mx.test", f, 999, addr_order, NULL);
  is_int(t.other, 0, "every plan has the three addresses");
  check_uniform(&t, "address");
  mxr_opts_free(o);
}

/* Reproducibility: same seed, same plan, whatever the feeding order and
 * the record order. */
static void test_reproducible(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {
      OKA("a.test", "192.0.2.1 192.0.2.2 192.0.2.3", "2001:db8::1 2001:db8::2"),
      OKA("b.test", "198.51.100.1 198.51.100.2", "2001:db8:1::1"),
      OKA("c.test", "203.0.113.1 203.0.113.2 203.0.113.3", ""),
      OKA("d.test", "203.0.113.4", "2001:db8:2::1 2001:db8:2::2"), END};
  const fake rev[] = {
      OKA("a.test", "192.0.2.3 192.0.2.1 192.0.2.2", "2001:db8::2 2001:db8::1"),
      OKA("b.test", "198.51.100.2 198.51.100.1", "2001:db8:1::1"),
      OKA("c.test", "203.0.113.2 203.0.113.3 203.0.113.1", ""),
      OKA("d.test", "203.0.113.4", "2001:db8:2::2 2001:db8:2::1"), END};
  const char *spec = "10:a.test 10:b.test 10:c.test 20:d.test";
  const char *spec2 = "20:d.test 10:c.test 10:b.test 10:a.test";
  char first[4096];
  int same = 1, differs = 0, order;
  uint64_t seed;
  mxr_plan *p = run(o, "example.test", MXR_OK, NULL, spec, f, 42, 0);
  snprintf(first, sizeof first, "%s", render(p));
  mxr_plan_free(p);
  for (order = 0; order < 3; order++) {
    p = run(o, "example.test", MXR_OK, NULL, spec, f, 42, order);
    if (strcmp(render(p), first) != 0)
      same = 0;
    mxr_plan_free(p);
    p = run(o, "example.test", MXR_OK, NULL, spec2, rev, 42, order);
    if (strcmp(render(p), first) != 0)
      same = 0;
    mxr_plan_free(p);
  }
  ok(same, "a fixed seed gives the same plan for any feeding, record and "
           "answer order");
  for (seed = 43; seed < 53; seed++) {
    p = run(o, "example.test", MXR_OK, NULL, spec, f, seed, 0);
    if (strcmp(render(p), first) != 0)
      differs = 1;
    mxr_plan_free(p);
  }
  ok(differs, "other seeds give other plans");
  mxr_opts_free(o);
}

/* Rule 7: de-duplication, family, prefer; rule 12: max_addrs. */
static void test_addresses(void) {
  mxr_opts *o = mxr_opts_new();
  const fake dup[] = {
      OKA("mx.test", "192.0.2.1 192.0.2.1 192.0.2.1", "::ffff:192.0.2.1"), END};
  const fake mixed[] = {
      OKA("mx.test", "192.0.2.1 192.0.2.2 192.0.2.3", "2001:db8::1 2001:db8::2"),
      END};
  mxr_plan *p;
  mxr_result r;
  size_t i, n4 = 0;
  int split = 1, seen6 = 0, sub4 = 1, sub6 = 1;
  char ab[MXR_ADDR_BUF], plain4[256] = "", plain6[256] = "";
  char pref4[256] = "", pref6[256] = "";

  expect(o, "10:mx.test", dup, "OK H:mx.test@10(192.0.2.1) T:mx.test/192.0.2.1",
         "duplicate addresses (and the IPv4-mapped twin) kept once");

  mxr_opts_set_family(o, MXR_FAMILY_IPV4);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", mixed, 3, 0);
  mxr_plan_result(p, &r);
  for (i = 0; i < r.ntargets; i++)
    n4 += r.targets[i].addr.family == 4;
  ok(r.ntargets == 3 && n4 == 3, "family ipv4 keeps only IPv4 addresses");
  mxr_plan_free(p);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", NULL, 3, NOFEED);
  ok(mxr_plan_host_wants(p, 0, 4) && !mxr_plan_host_wants(p, 0, 6),
     "family ipv4 asks for A only");
  mxr_plan_free(p);
  mxr_opts_set_family(o, MXR_FAMILY_IPV6);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", NULL, 3, NOFEED);
  ok(!mxr_plan_host_wants(p, 0, 4) && mxr_plan_host_wants(p, 0, 6),
     "family ipv6 asks for AAAA only");
  feed(p, mixed, 0);
  mxr_plan_result(p, &r);
  ok(mxr_plan_complete(p) && r.ntargets == 2 &&
         r.targets[0].addr.family == 6 && r.targets[1].addr.family == 6,
     "family ipv6 keeps only IPv6 addresses and completes without A");
  mxr_plan_free(p);
  mxr_opts_set_family(o, MXR_FAMILY_ANY);

  /* prefer: a stable partition of the shuffled order. */
  p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", mixed, 5, 0);
  mxr_plan_result(p, &r);
  for (i = 0; i < r.ntargets; i++) {
    mxr_addr_format(&r.targets[i].addr, ab);
    strcat(r.targets[i].addr.family == 4 ? plain4 : plain6, ab);
  }
  mxr_plan_free(p);
  mxr_opts_set_prefer(o, MXR_PREFER_IPV6);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", mixed, 5, 0);
  mxr_plan_result(p, &r);
  for (i = 0; i < r.ntargets; i++) {
    if (r.targets[i].addr.family == 6)
      seen6 = 1;
    if (r.targets[i].addr.family == 6 && i >= 2)
      split = 0;
    mxr_addr_format(&r.targets[i].addr, ab);
    strcat(r.targets[i].addr.family == 4 ? pref4 : pref6, ab);
  }
  ok(r.ntargets == 5 && seen6 && split, "prefer ipv6 puts IPv6 first");
  sub4 = strcmp(plain4, pref4) == 0;
  sub6 = strcmp(plain6, pref6) == 0;
  ok(sub4 && sub6, "prefer keeps the shuffled order within each family");
  mxr_plan_free(p);
  mxr_opts_set_prefer(o, MXR_PREFER_IPV4);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", mixed, 5, 0);
  mxr_plan_result(p, &r);
  ok(r.ntargets == 5 && r.targets[0].addr.family == 4 &&
         r.targets[2].addr.family == 4 && r.targets[3].addr.family == 6,
     "prefer ipv4 puts IPv4 first");
  mxr_plan_free(p);

  /* max_addrs is applied after prefer: the preferred family survives. */
  is_int(mxr_opts_set_max_addrs(o, 0), MXR_EBADOPT, "max_addrs 0 rejected");
  is_int(mxr_opts_set_max_addrs(o, 2), MXR_OK, "max_addrs 2 accepted");
  p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", mixed, 5, 0);
  mxr_plan_result(p, &r);
  ok(r.nhosts == 1 && r.hosts[0].naddrs == 2 && r.ntargets == 2 &&
         r.targets[0].addr.family == 4 && r.targets[1].addr.family == 4,
     "max_addrs caps the addresses per host");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* Rule 12: max_hosts. */
static void test_max_hosts(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("a.test", "192.0.2.1", ""),
                    OKA("b.test", "192.0.2.2", ""),
                    OKA("c.test", "192.0.2.3", ""), END};
  mxr_plan *p;
  is_int(mxr_opts_set_max_hosts(o, 0), MXR_EBADOPT, "max_hosts 0 rejected");
  mxr_opts_set_max_hosts(o, 2);
  p = run(o, "example.test", MXR_OK, NULL, "10:a.test 20:b.test 30:c.test",
          NULL, 1, NOFEED);
  is_int(mxr_plan_host_count(p), 2, "hosts beyond max_hosts are not looked up");
  feed(p, f, 0);
  is_str(render(p),
         "OK H:a.test@10(192.0.2.1) b.test@20(192.0.2.2) T:a.test/192.0.2.1 "
         "b.test/192.0.2.2 S:c.test@30=TOOMANY",
         "hosts beyond max_hosts are skipped with TOOMANY");
  mxr_plan_free(p);
  {
    /* the default is 32 */
    char spec[2048] = "";
    int i;
    mxr_opts *d = mxr_opts_new();
    for (i = 0; i < 40; i++)
      snprintf(spec + strlen(spec), sizeof spec - strlen(spec), "%d:h%02d.test ",
               i, i);
    p = run(d, "example.test", MXR_OK, NULL, spec, NULL, 1, NOFEED);
    is_int(mxr_plan_host_count(p), MXR_DEFAULT_MAX_HOSTS,
           "default max_hosts is 32");
    mxr_plan_free(p);
    mxr_opts_free(d);
  }
  mxr_opts_free(o);
}

/* Rule 8 by name. */
static void test_self_name(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("mx1.test", "192.0.2.1", ""),
                    OKA("us.test", "192.0.2.2", ""),
                    OKA("mx3.test", "192.0.2.3", ""),
                    OKA("example.test", "192.0.2.4", ""), END};
  mxr_plan *p;
  char err[MXR_MSG_BUF];
  size_t i;
  int asked = 0;
  is_int(mxr_opts_add_self(o, "US.test.", 8, err, sizeof err), MXR_OK,
         "add_self takes a name");
  p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test 20:us.test 30:mx3.test",
          NULL, 1, NOFEED);
  for (i = 0; i < mxr_plan_host_count(p); i++)
    if (strcmp(mxr_plan_host_name(p, i), "mx1.test") != 0)
      asked = 1;
  ok(mxr_plan_host_count(p) == 1 && !asked,
     "hosts at and above our preference are never looked up");
  feed(p, f, 0);
  is_str(render(p), "OK H:mx1.test@10(192.0.2.1) T:mx1.test/192.0.2.1 self=20",
         "self by name: only better hosts remain, self_pref reported");
  mxr_plan_free(p);
  p = run(o, "example.test", MXR_OK, NULL, "20:us.test 10:us.test 30:mx3.test",
          f, 1, 0);
  is_str(render(p), "LOOP self=10", "we are the best MX: LOOP");
  ok(contains(message(p), "example.test: ") &&
         contains(message(p), "best mail exchanger"),
     "LOOP message: '%s'", message(p));
  mxr_plan_free(p);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test 10:us.test", f, 1, 0);
  is_str(render(p), "LOOP self=10",
         "a host beside us at our own preference is dropped too");
  mxr_plan_free(p);
  mxr_opts_add_self(o, "example.test", 12, err, sizeof err);
  p = run(o, "example.test", MXR_ENODATA, NULL, "", f, 1, 0);
  is_str(render(p), "LOOP self=0 implicit",
         "implicit MX that is us by name: LOOP");
  is_int(mxr_plan_host_count(p), 0, "no lookups when the implicit MX is us");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* Rule 8 by address. */
static void test_self_addr(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("mx1.test", "192.0.2.1", ""),
                    OKA("mx2.test", "198.51.100.7", "2001:db8::99"),
                    OKA("mapped.test", "", "::ffff:203.0.113.5"),
                    OKA("lo.test", "127.0.0.1", ""),
                    OKA("mx3.test", "192.0.2.3", ""),
                    OKA("example.test", "203.0.113.5", ""), END};
  char err[MXR_MSG_BUF];
  mxr_plan *p;
  is_int(mxr_opts_add_self(o, "2001:DB8:0:0::99", 16, err, sizeof err), MXR_OK,
         "add_self takes an IPv6 address in any form");
  is_int(mxr_opts_add_self(o, "[203.0.113.5]", 13, err, sizeof err), MXR_OK,
         "add_self takes a bracketed IPv4 literal");
  is_int(mxr_opts_add_self(o, "[IPv6:::1]", 10, err, sizeof err), MXR_OK,
         "add_self takes an IPv6 literal");
  is_int(mxr_opts_add_self(o, "bad name!", 9, err, sizeof err), MXR_EBADOPT,
         "add_self rejects a non-name");
  is_int(mxr_opts_add_self(o, "", 0, err, sizeof err), MXR_EBADOPT,
         "add_self rejects the empty name");
  {
    /* a self entry is a host name or an address, never a pattern */
    static const char *const nonames[] = {"*", "*.example.test", "mx?.test",
                                          "a/b", "us.test\x01", "us\0.test",
                                          "."};
    size_t k;
    for (k = 0; k < sizeof nonames / sizeof nonames[0]; k++) {
      size_t len = k == 5 ? 8 : strlen(nonames[k]);
      err[0] = '\0';
      is_int(mxr_opts_add_self(o, nonames[k], len, err, sizeof err),
             MXR_EBADOPT, "add_self rejects '%s'", nonames[k]);
      ok(contains(err, "self: not a host name or address"),
         "and says so: %s", err);
    }
    is_int(mxr_opts_add_self(o, "_smtp.mx-1.test", 15, err, sizeof err),
           MXR_OK, "add_self takes letters, digits, '-', '_' and dots");
  }
  static const plan_case cases[] = {
      {"user@example.test", MXR_OK, NULL, "10:mx1.test 20:mx2.test 30:mx3.test",
       "OK H:mx1.test@10(192.0.2.1) T:mx1.test/192.0.2.1 self=20",
       "a host with one of our addresses (IPv6 text normalised) is us", NULL, NULL},
      {"user@example.test", MXR_OK, NULL, "10:mx1.test 20:mapped.test 30:mx3.test",
       "OK H:mx1.test@10(192.0.2.1) T:mx1.test/192.0.2.1 self=20",
       "an IPv4-mapped address of ours counts", NULL, NULL},
      {"user@example.test", MXR_OK, NULL, "10:mx1.test 10:mx2.test 30:mx3.test",
       "LOOP self=10", "a level that holds us is dropped entirely", NULL, NULL},
      {"user@example.test", MXR_OK, NULL, "10:mx1.test 20:lo.test 30:mx3.test",
       "OK H:mx1.test@10(192.0.2.1) mx3.test@30(192.0.2.3) "
       "T:mx1.test/192.0.2.1 mx3.test/192.0.2.3 S:lo.test@20=IGNORED",
       "::1 of ours does not make a host with 127.0.0.1 us", NULL, NULL},
      {"example.test", MXR_ENODATA, NULL, "", "LOOP self=0 implicit",
       "implicit MX that is us by address: LOOP", NULL, NULL},
  };
  check_plans(o, f, cases, NCASES(cases));
  {
    mxr_opts *lo = mxr_opts_new();
    mxr_opts_add_self(lo, "127.0.0.1", 9, err, sizeof err);
    expect(lo, "10:mx1.test 20:lo.test 30:mx3.test", f,
           "OK H:mx1.test@10(192.0.2.1) T:mx1.test/192.0.2.1 self=20",
           "our address counts even where the guard would drop it");
    mxr_opts_free(lo);
  }
  {
    /* Once we are found at 20, the hosts above stop being wanted. */
    size_t i1, i3;
    p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test 20:mx2.test 30:mx3.test",
            NULL, 1, NOFEED);
    i1 = host_index(p, "mx1.test");
    i3 = host_index(p, "mx3.test");
    feed_host(p, f, host_index(p, "mx2.test"));
    ok(!mxr_plan_host_wants(p, i3, 4) && !mxr_plan_host_wants(p, i3, 6),
       "hosts above our preference stop being wanted");
    ok(mxr_plan_host_wants(p, i1, 4), "better hosts are still wanted");
    ok(!mxr_plan_complete(p), "not complete before the better host is in");
    feed_host(p, f, i1);
    ok(mxr_plan_complete(p), "complete without the discarded host");
    is_int(feed_one(p, f, i3, 4), MXR_OK, "a late answer is accepted");
    is_str(render(p), "OK H:mx1.test@10(192.0.2.1) T:mx1.test/192.0.2.1 self=20",
           "and ignored");
    mxr_plan_free(p);
  }
  mxr_opts_free(o);
}

/* Rule 8 under the family filter: the filtered family is still asked
 * when one of our addresses is of it, and only to recognise us. */
static void test_self_family(void) {
  mxr_opts *o = mxr_opts_new();
  char err[MXR_MSG_BUF];
  const fake f[] = {OKA("mx1.test", "192.0.2.1", "2001:db8::1"),
                    OKA("mx2.test", "192.0.2.2", "2001:db8::25"), END};
  mxr_plan *p;
  mxr_opts_set_family(o, MXR_FAMILY_IPV4);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test 20:mx2.test", NULL, 1,
          NOFEED);
  ok(!mxr_plan_host_wants(p, 0, 6), "ipv4 only and no IPv6 self: no AAAA asked");
  mxr_plan_free(p);
  mxr_opts_add_self(o, "2001:db8::25", 12, err, sizeof err);
  p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test 20:mx2.test", NULL, 1,
          NOFEED);
  ok(mxr_plan_host_wants(p, 0, 6), "an IPv6 self address: AAAA still asked");
  feed(p, f, 0);
  is_str(render(p), "OK H:mx1.test@10(192.0.2.1) T:mx1.test/192.0.2.1 self=20",
         "we are mx2 by our IPv6 address although only IPv4 is used");
  mxr_plan_free(p);
  {
    const fake g[] = {{"mx1.test", MXR_ENODATA, "", MXR_ESERVFAIL, ""}, END};
    p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test", g, 1, 0);
    is_str(render(p), "NOHOSTS S:mx1.test@10=NODATA",
           "a failure of the filtered family does not make the host temporary");
    mxr_plan_free(p);
  }
  mxr_opts_free(o);
  /* Rule 8 judged on every address: an AAAA record holding the
   * IPv4-mapped form of one of our IPv4 addresses is us too, although
   * only IPv4 is used, so AAAA is asked whenever we have addresses. */
  o = mxr_opts_new();
  mxr_opts_set_family(o, MXR_FAMILY_IPV4);
  mxr_opts_add_self(o, "192.0.2.2", 9, err, sizeof err);
  {
    const fake g[] = {OKA("mx1.test", "192.0.2.1", "2001:db8::1"),
                      OKA("mx2.test", "192.0.2.99", "::ffff:192.0.2.2"),
                      END};
    p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test 20:mx2.test", NULL,
            1, NOFEED);
    ok(mxr_plan_host_wants(p, 0, 6),
       "ipv4 only with an IPv4 self address: AAAA still asked");
    feed(p, g, 1);
    is_str(render(p),
           "OK H:mx1.test@10(192.0.2.1) T:mx1.test/192.0.2.1 self=20",
           "we are mx2 by the mapped form of our IPv4 address in its AAAA");
    mxr_plan_free(p);
  }
  mxr_opts_free(o);
  /* and the other way round: IPv6 only, our IPv4 address in an A record */
  o = mxr_opts_new();
  mxr_opts_set_family(o, MXR_FAMILY_IPV6);
  mxr_opts_add_self(o, "::ffff:192.0.2.2", 16, err, sizeof err);
  {
    const fake g[] = {OKA("mx1.test", "192.0.2.1", "2001:db8::1"),
                      OKA("mx2.test", "192.0.2.2", "2001:db8::2"), END};
    p = run(o, "example.test", MXR_OK, NULL, "10:mx1.test 20:mx2.test", g, 1,
            0);
    is_str(render(p),
           "OK H:mx1.test@10(2001:db8::1) T:mx1.test/2001:db8::1 self=20",
           "we are mx2 by its A record, our mapped address, under ipv6 only");
    mxr_plan_free(p);
  }
  mxr_opts_free(o);
}

/* Rule 8 and the header: a level is final only when it and every level
 * before it are resolved and hold none of us. */
static void test_ready(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("a.test", "192.0.2.1", "2001:db8::1"),
                    OKA("b.test", "192.0.2.2", ""),
                    OKA("c.test", "192.0.2.3", ""),
                    OKA("d.test", "192.0.2.4", ""), END};
  char err[MXR_MSG_BUF];
  mxr_plan *p;
  size_t ib;
  const mxr_target *t0;
  char first[64];
  p = run(o, "example.test", MXR_OK, NULL, "10:a.test 10:b.test 20:c.test 30:d.test",
          NULL, 7, NOFEED);
  ib = host_index(p, "b.test");
  is_int(mxr_plan_ready(p), 0, "nothing ready before any address");
  ok(mxr_plan_target(p, 0) == NULL, "no target before ready");
  feed_host(p, f, host_index(p, "c.test"));
  is_int(mxr_plan_ready(p), 0, "a later level is not ready before earlier ones");
  feed_host(p, f, host_index(p, "a.test"));
  feed_one(p, f, ib, 4);
  is_int(mxr_plan_ready(p), 0,
         "a level is not ready while one of its hosts waits for AAAA");
  feed_one(p, f, ib, 6);
  is_int(mxr_plan_ready(p), 4, "levels 10 and 20 ready: 4 targets");
  ok(!mxr_plan_complete(p), "but the plan is not complete");
  t0 = mxr_plan_target(p, 0);
  mxr_addr_format(&t0->addr, first);
  ok(mxr_plan_target(p, 4) == NULL, "target beyond ready is NULL");
  feed_host(p, f, host_index(p, "d.test"));
  ok(mxr_plan_complete(p), "complete after the last lookup");
  is_int(mxr_plan_ready(p), 5, "ready equals ntargets when complete");
  {
    char now[64];
    mxr_addr_format(&mxr_plan_target(p, 0)->addr, now);
    is_str(now, first, "ready targets keep their position");
  }
  mxr_plan_free(p);

  /* a level holding us is never ready; neither is anything after it */
  mxr_opts_add_self(o, "192.0.2.2", 9, err, sizeof err);
  mxr_opts_set_prefer(o, MXR_PREFER_IPV4);
  p = run(o, "example.test", MXR_OK, NULL, "10:a.test 20:b.test 20:c.test",
          NULL, 7, NOFEED);
  feed_host(p, f, host_index(p, "c.test"));
  is_int(mxr_plan_ready(p), 0, "c is resolved but level 10 is not");
  feed_host(p, f, host_index(p, "a.test"));
  is_int(mxr_plan_ready(p), 2, "level 10 ready");
  ok(!mxr_plan_complete(p), "level 20 must be resolved to know whether it is us");
  feed_host(p, f, host_index(p, "b.test"));
  is_str(render(p), "OK H:a.test@10(192.0.2.1,2001:db8::1) T:a.test/192.0.2.1 "
                    "a.test/2001:db8::1 self=20",
         "b is us: level 20 dropped, c too");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* Rule 9: skipped hosts and the combination of A and AAAA outcomes. */
static void test_skipped(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {
      OKA("good.test", "192.0.2.1", ""),
      {"gone.test", MXR_ENXDOMAIN, "", MXR_ENXDOMAIN, ""},
      {"empty.test", MXR_OK, "", MXR_ENODATA, ""},
      {"half.test", MXR_OK, "192.0.2.5", MXR_ESERVFAIL, ""},
      {"sick.test", MXR_ESERVFAIL, "", MXR_OK, ""},
      {"slow.test", MXR_OK, "", MXR_ETIMEOUT, ""},
      {"nx6.test", MXR_OK, "", MXR_ENXDOMAIN, ""},
      {"mixed.test", MXR_ENXDOMAIN, "", MXR_ETIMEOUT, ""},
      OKA("lo.test", "127.0.0.1 10.1.2.3", "::1"),
      END};
  /* a skipped host beside good.test: "OK H:good.test@20(192.0.2.1)
   * T:good.test/192.0.2.1 " then its entry */
#define GOOD "OK H:good.test@20(192.0.2.1) T:good.test/192.0.2.1 "
  static const plan_case cases[] = {
      {"user@example.test", MXR_OK, NULL, "10:gone.test 20:good.test",
       GOOD "S:gone.test@10=NXDOMAIN", "a host that does not exist is skipped and reported",
       NULL, NULL},
      {"user@example.test", MXR_OK, NULL, "10:empty.test 20:good.test",
       GOOD "S:empty.test@10=NODATA", "a host without addresses is skipped as NODATA", NULL,
       NULL},
      {"user@example.test", MXR_OK, NULL, "10:half.test",
       "OK H:half.test@10(192.0.2.5) T:half.test/192.0.2.5",
       "a failed AAAA beside a good A is not reported", NULL, NULL},
      {"user@example.test", MXR_OK, NULL, "10:sick.test 20:good.test",
       GOOD "S:sick.test@10=SERVFAIL", "A SERVFAIL + AAAA NODATA: skipped as SERVFAIL", NULL,
       NULL},
      {"user@example.test", MXR_OK, NULL, "10:nx6.test 20:good.test",
       GOOD "S:nx6.test@10=NXDOMAIN", "NXDOMAIN beats NODATA", NULL, NULL},
      {"user@example.test", MXR_OK, NULL, "10:mixed.test 20:good.test",
       GOOD "S:mixed.test@10=TIMEOUT", "A NXDOMAIN + AAAA TIMEOUT: the temporary failure wins",
       NULL, NULL},
      {"user@example.test", MXR_OK, NULL, "10:lo.test 20:good.test",
       GOOD "S:lo.test@10=IGNORED",
       "a host whose every address is ignored is skipped as IGNORED", NULL, NULL},
      /* no usable host: temporary beats permanent */
      {"example.test", MXR_OK, NULL, "10:gone.test 20:slow.test 30:lo.test",
       "TIMEOUT S:gone.test@10=NXDOMAIN slow.test@20=TIMEOUT lo.test@30=IGNORED",
       "any temporary failure makes the plan temporary",
       "example.test: slow.test: no answer in time", "temporary message names host and reason"},
      {"example.test", MXR_OK, NULL, "10:gone.test 20:empty.test 30:lo.test",
       "NOHOSTS S:gone.test@10=NXDOMAIN empty.test@20=NODATA lo.test@30=IGNORED",
       "only permanent failures: NOHOSTS",
       "example.test: no usable mail host (gone.test: NXDOMAIN, empty.test: "
       "NODATA, lo.test: IGNORED)",
       "NOHOSTS message lists why"},
  };
#undef GOOD
  mxr_plan *p;
  check_plans(o, f, cases, NCASES(cases));
  {
    /* a long list is cut, never overflows */
    char spec[4096] = "";
    int i;
    for (i = 0; i < 30; i++)
      snprintf(spec + strlen(spec), sizeof spec - strlen(spec),
               "%d:a-rather-long-host-name-number-%02d.example.test ", i, i);
    p = run(o, "example.test", MXR_OK, NULL, spec, f, 1, 0);
    ok(status_of(p) == MXR_ENOHOSTS && strlen(message(p)) < MXR_MSG_BUF &&
           contains(message(p), "...)"),
       "a long NOHOSTS message is cut with '...'");
    mxr_plan_free(p);
  }
  mxr_opts_free(o);
}

/* Rule 10: allow_mx_to_ip. */
static void test_mx_to_ip(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("192.0.2.55", "198.51.100.55", ""), END};
  mxr_plan *p = run(o, "example.test", MXR_OK, NULL, "10:192.0.2.55", NULL, 1, NOFEED);
  is_int(mxr_plan_host_count(p), 1, "by default an IP-like exchange is looked up");
  is_str(mxr_plan_host_name(p, 0), "192.0.2.55", "as a name");
  feed(p, f, 0);
  is_str(render(p), "OK H:192.0.2.55@10(198.51.100.55) T:192.0.2.55/198.51.100.55",
         "with the addresses its lookup gives");
  mxr_plan_free(p);
  mxr_opts_set_allow_mx_to_ip(o, 1);
  p = run(o, "example.test", MXR_OK, NULL, "10:192.0.2.55 20:2001:DB8::55", NULL,
          1, NOFEED);
  is_int(mxr_plan_host_count(p), 0, "allow_mx_to_ip: no lookup");
  ok(mxr_plan_complete(p), "complete at once");
  is_str(render(p), "OK H:192.0.2.55@10(192.0.2.55) 2001:db8::55@20(2001:db8::55) "
                    "T:192.0.2.55/192.0.2.55 2001:db8::55/2001:db8::55",
         "allow_mx_to_ip: the exchange is the address");
  mxr_plan_free(p);
  p = run(o, "example.test", MXR_OK, NULL, "10:127.0.0.1", NULL, 1, NOFEED);
  is_str(render(p), "NOHOSTS S:127.0.0.1@10=IGNORED",
         "the guard applies to an IP exchange");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* The rendering (and, if st is set, the status) of the plan whose one
 * exchange h.test has the one address addr. */
static const char *render_one_addr(const mxr_opts *o, const char *addr, mxr_status *st) {
  fake f[] = {{"h.test", MXR_OK, "", MXR_OK, ""}, END};
  mxr_plan *p;
  const char *got;
  if (strchr(addr, ':'))
    f[0].a6 = addr;
  else
    f[0].a4 = addr;
  p = run(o, "example.test", MXR_OK, NULL, "10:h.test", f, 1, 0);
  if (st)
    *st = status_of(p);
  got = render(p); /* rbuf or a literal: it outlives the plan */
  mxr_plan_free(p);
  return got;
}

/* Rule 11: the target guard. */
static void test_guard(void) {
  static const char *const dropped[] = {
      "0.1.2.3",     "127.0.0.1",       "127.255.255.254", "169.254.1.1",
      "224.0.0.1",   "239.255.255.255", "240.0.0.1",       "255.255.255.255",
      "10.0.0.1",    "172.16.0.1",      "172.31.255.255",  "192.168.1.1",
      "::",          "::1",             "fe80::1",         "febf::1",
      "ff02::1",     "fc00::1",         "fd12:3456::1",    "::ffff:127.0.0.1",
      "::ffff:10.9.8.7"};
  static const char *const kept[] = {
      "1.0.0.1",  "126.255.255.255", "128.0.0.1", "169.253.255.255",
      "172.15.255.255", "172.32.0.1", "192.167.255.255", "192.169.0.1",
      "223.255.255.255", "9.255.255.255", "11.0.0.0", "2001:db8::1",
      "fec0::1", "fe00::1", "fb00::1", "::2", "::ffff:192.0.2.1"};
  mxr_opts *o = mxr_opts_new();
  size_t i;
  int bad = 0;
  char err[MXR_MSG_BUF];
  for (i = 0; i < NCASES(dropped); i++) {
    const char *got = render_one_addr(o, dropped[i], NULL);
    if (strcmp(got, "NOHOSTS S:h.test@10=IGNORED") != 0) {
      printf("# not dropped: %s -> %s\n", dropped[i], got);
      bad++;
    }
  }
  is_int(bad, 0, "every default guarded range drops its addresses");
  bad = 0;
  for (i = 0; i < NCASES(kept); i++) {
    mxr_status st;
    const char *got = render_one_addr(o, kept[i], &st);
    if (st != MXR_OK) {
      printf("# dropped: %s -> %s\n", kept[i], got);
      bad++;
    }
  }
  is_int(bad, 0, "addresses just outside the guarded ranges are kept");
  {
    const fake f[] = {OKA("h.test", "10.0.0.1 192.0.2.1", "fe80::1"), END};
    expect(o, "10:h.test", f, "OK H:h.test@10(192.0.2.1) T:h.test/192.0.2.1",
           "partly ignored host: the rest kept, nothing reported");
  }
  {
    /* Rule 9: a temporary failure of the other family beats IGNORED: the
     * host may well be reachable there. */
    const fake f[] = {{"h.test", MXR_OK, "10.0.0.1", MXR_ESERVFAIL, ""}, END};
    expect(o, "10:h.test", f, "SERVFAIL S:h.test@10=SERVFAIL",
           "ignored A beside a failed AAAA: temporary, not IGNORED");
  }
  {
    const fake f[] = {OKA("h.test", "127.0.0.1", "")}; /* no END: 1 entry */
    const fake g[] = {f[0], END};
    mxr_opts_ignore_clear(o);
    expect(o, "10:h.test", g, "OK H:h.test@10(127.0.0.1) T:h.test/127.0.0.1",
           "an empty ignore list allows everything");
    is_int(mxr_opts_ignore_add(o, "192.0.2.0/24", 12, err, sizeof err), MXR_OK,
           "ignore_add takes a CIDR");
    is_int(mxr_opts_ignore_add(o, "192.0.2.0/33", 12, err, sizeof err),
           MXR_EBADOPT, "ignore_add rejects a bad CIDR");
    ok(contains(err, "192.0.2.0/33"), "and names it: %s", err);
  }
  {
    const fake f[] = {OKA("h.test", "192.0.2.9 127.0.0.1", ""), END};
    expect(o, "10:h.test", f, "OK H:h.test@10(127.0.0.1) T:h.test/127.0.0.1",
           "a custom ignore list replaces the default");
  }
  mxr_opts_free(o);
}

/* Rule 13: each address once in the targets, hosts keep theirs. */
static void test_targets_once(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("a.test", "192.0.2.1", ""),
                    OKA("b.test", "192.0.2.1", "::ffff:192.0.2.1"),
                    OKA("c.test", "192.0.2.3", ""), END};
  expect(o, "10:a.test 20:b.test 30:c.test", f,
         "OK H:a.test@10(192.0.2.1) b.test@20(192.0.2.1) c.test@30(192.0.2.3) "
         "T:a.test/192.0.2.1 c.test/192.0.2.3",
         "a shared address is a target once, at its first occurrence");
  mxr_opts_free(o);
}

/* Rule 13 at scale: many hosts over few levels sharing addresses (plain
 * and IPv4-mapped forms), fed in a random order. The targets are the
 * hosts' addresses in delivery order, each at its first occurrence (a
 * naive quadratic reference), and a ready prefix never changes. */
static void test_targets_once_many(void) {
  enum { NH = 300, POOL = 40 };
  static char names[NH][32];
  static mxr_mx mx[NH];
  static size_t order[2 * NH];
  static mxr_target seen[4 * NH];
  mxr_opts *o = mxr_opts_new();
  mxr_rng rng, shuf;
  mxr_plan *p = new_plan(o, "example.test");
  mxr_result r;
  size_t i, j, k, nh, nref = 0, nseen = 0, bad = 0, moved = 0;
  mxr_opts_set_max_hosts(o, NH);
  mxr_opts_ignore_clear(o);
  for (i = 0; i < NH; i++) {
    snprintf(names[i], sizeof names[i], "h%zu.test", i);
    mx[i].pref = (uint16_t)(i % 7);
    mx[i].name = names[i];
    mx[i].len = strlen(names[i]);
  }
  mxr_rng_seed(&rng, 3);
  mxr_rng_seed(&shuf, 4);
  mxr_plan_set_mx(p, MXR_OK, NULL, mx, NH, &rng);
  nh = mxr_plan_host_count(p);
  for (i = 0; i < 2 * nh; i++)
    order[i] = i;
  for (i = 2 * nh; i > 1; i--) {
    size_t x = (size_t)mxr_rng_below(&shuf, i), t = order[i - 1];
    order[i - 1] = order[x];
    order[x] = t;
  }
  for (i = 0; i < 2 * nh; i++) {
    size_t h = order[i] / 2, n = 0, ready;
    int fam = order[i] % 2 ? 6 : 4;
    mxr_addr a[2];
    const char *name = mxr_plan_host_name(p, h);
    unsigned v = (unsigned)strtoul(name + 1, NULL, 10);
    memset(a, 0, sizeof a);
    for (k = 0; k < 2; k++) { /* addresses from a small pool */
      unsigned x = (v * 7 + (unsigned)k * 13) % POOL;
      a[n].family = (uint8_t)fam;
      if (fam == 4) {
        a[n].bytes[0] = 192;
        a[n].bytes[2] = 2;
        a[n].bytes[3] = (uint8_t)x;
      } else if (x % 2) { /* the mapped twin of an IPv4 of the pool */
        a[n].bytes[10] = a[n].bytes[11] = 0xff;
        a[n].bytes[12] = 192;
        a[n].bytes[14] = 2;
        a[n].bytes[15] = (uint8_t)x;
      } else {
        a[n].bytes[0] = 0x20;
        a[n].bytes[15] = (uint8_t)x;
      }
      n++;
    }
    if (mxr_plan_host_wants(p, h, fam))
      mxr_plan_set_addrs(p, h, fam, MXR_OK, a, n);
    ready = mxr_plan_ready(p);
    for (k = 0; k < nseen && k < ready; k++)
      if (memcmp(&seen[k], mxr_plan_target(p, k), sizeof seen[k]) != 0)
        moved++;
    for (k = nseen; k < ready; k++)
      seen[k] = *mxr_plan_target(p, k);
    if (ready > nseen)
      nseen = ready;
  }
  ok(mxr_plan_complete(p), "the plan of %d hosts is complete", NH);
  is_int(moved, 0, "no ready target ever moved");
  if (mxr_plan_result(p, &r) != MXR_OK || r.status != MXR_OK) {
    ok(0, "the plan succeeds");
  } else {
    for (i = 0; i < r.nhosts; i++)
      for (j = 0; j < r.hosts[i].naddrs; j++) {
        const mxr_addr *a = &r.hosts[i].addrs[j];
        size_t hi, hj;
        int dup = 0;
        for (hi = 0; hi <= i && !dup; hi++)
          for (hj = 0; hj < r.hosts[hi].naddrs && !dup; hj++)
            if ((hi < i || hj < j) &&
                mxr_addr_equal(&r.hosts[hi].addrs[hj], a))
              dup = 1;
        if (dup)
          continue;
        if (nref >= r.ntargets ||
            !mxr_addr_equal(&r.targets[nref].addr, a) ||
            strcmp(r.targets[nref].host, r.hosts[i].name) != 0)
          bad++;
        nref++;
      }
    is_int(r.ntargets, nref, "as many targets as distinct addresses (%zu)",
           nref);
    is_int(bad, 0, "each target is an address at its first occurrence");
    is_int(nseen, r.ntargets, "every target was ready before completion");
    ok(nref < 2 * POOL, "the pool made duplicates");
  }
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* Literal inputs: complete at once, guard and self apply. */
static void test_literal(void) {
  mxr_opts *o = mxr_opts_new();
  char err[MXR_MSG_BUF];
  mxr_plan *p = new_plan(o, "postmaster@[192.0.2.1]");
  mxr_rng rng;
  mxr_rng_seed(&rng, 1);
  ok(mxr_plan_complete(p), "a literal plan is complete at creation");
  is_int(mxr_plan_host_count(p), 0, "and needs no lookup");
  is_str(render(p), "OK H:[192.0.2.1]@0(192.0.2.1) T:[192.0.2.1]/192.0.2.1",
         "the literal is the one target");
  is_int(mxr_plan_set_mx(p, MXR_OK, NULL, NULL, 0, &rng), MXR_EBADOPT,
         "set_mx on a literal plan is misuse");
  mxr_plan_free(p);
  p = new_plan(o, "u@[IPv6:2001:DB8::1]");
  is_str(render(p),
         "OK H:[IPv6:2001:db8::1]@0(2001:db8::1) T:[IPv6:2001:db8::1]/2001:db8::1",
         "an IPv6 literal");
  mxr_plan_free(p);
  p = new_plan(o, "u@[127.0.0.1]");
  is_str(render(p), "NOHOSTS S:[127.0.0.1]@0=IGNORED", "the guard applies to literals");
  mxr_plan_free(p);
  mxr_opts_add_self(o, "192.0.2.1", 9, err, sizeof err);
  p = new_plan(o, "u@[192.0.2.1]");
  is_str(render(p), "LOOP self=0", "a literal of ours is a loop");
  mxr_plan_free(p);
  mxr_opts_set_family(o, MXR_FAMILY_IPV6);
  p = new_plan(o, "u@[198.51.100.1]");
  is_str(render(p), "NOHOSTS S:[198.51.100.1]@0=NODATA",
         "family ipv6 and an IPv4 literal: nothing left");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* Bad MX data. */
static void test_bad_names(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("good.test", "192.0.2.1", ""), END};
  mxr_mx mx[3];
  mxr_rng rng;
  mxr_plan *p;
  char longname[300];
  memset(longname, 'a', 70);
  strcpy(longname + 70, ".test");
  mx[0].pref = 5; mx[0].name = "bad\001name.test"; mx[0].len = strlen(mx[0].name);
  mx[1].pref = 7; mx[1].name = longname; mx[1].len = strlen(longname);
  mx[2].pref = 10; mx[2].name = "good.test"; mx[2].len = 9;
  p = new_plan(o, "example.test");
  mxr_rng_seed(&rng, 1);
  mxr_plan_set_mx(p, MXR_OK, NULL, mx, 3, &rng);
  feed(p, f, 0);
  ok(contains(render(p), "OK H:good.test@10(192.0.2.1) T:good.test/192.0.2.1 "
                         "S:bad\\x01name.test@5=FORMERR aaaa"),
     "an exchange that is not a name is skipped as FORMERR, escaped: %s", rbuf);
  ok(contains(rbuf, ".test@7=FORMERR"), "a label over 63 octets too");
  mxr_plan_free(p);
  p = new_plan(o, "example.test");
  mxr_plan_set_mx(p, MXR_OK, NULL, mx, 1, &rng);
  is_str(render(p), "FORMERR S:bad\\x01name.test@5=FORMERR",
         "only broken exchanges: a temporary FORMERR");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

/* Misuse is MXR_EBADOPT, never a crash. */
static void test_misuse(void) {
  mxr_opts *o = mxr_opts_new();
  const fake f[] = {OKA("mx.test", "192.0.2.1", ""), END};
  mxr_addr v6, v4;
  mxr_result r;
  mxr_rng rng;
  mxr_plan *p = run(o, "example.test", MXR_OK, NULL, "10:mx.test", NULL, 1, NOFEED);
  mxr_addr_parse("2001:db8::1", 11, &v6);
  mxr_addr_parse("192.0.2.1", 9, &v4);
  mxr_rng_seed(&rng, 1);
  is_int(mxr_plan_result(p, &r), MXR_EBADOPT, "result before complete");
  is_int(mxr_plan_set_mx(p, MXR_OK, NULL, mxs, 1, &rng), MXR_EBADOPT,
         "set_mx twice");
  is_int(mxr_plan_set_addrs(p, 0, 4, MXR_OK, &v6, 1), MXR_EBADOPT,
         "an IPv6 address in an A answer");
  is_int(mxr_plan_set_addrs(p, 1, 4, MXR_OK, &v4, 1), MXR_EBADOPT,
         "host index out of range");
  is_int(mxr_plan_set_addrs(p, 0, 5, MXR_OK, &v4, 1), MXR_EBADOPT, "bad family");
  is_int(mxr_plan_set_addrs(p, 0, 4, MXR_OK, NULL, 1), MXR_EBADOPT,
         "NULL addresses");
  is_int(mxr_plan_set_addrs(p, 0, 4, MXR_OK, &v4, 1), MXR_OK, "A once");
  is_int(mxr_plan_set_addrs(p, 0, 4, MXR_OK, &v4, 1), MXR_EBADOPT, "A twice");
  ok(!mxr_plan_host_wants(p, 0, 4), "A no longer wanted");
  ok(mxr_plan_host_wants(p, 0, 6), "AAAA still wanted");
  ok(mxr_plan_host_name(p, 1) == NULL, "host_name out of range is NULL");
  feed(p, f, 0);
  ok(mxr_plan_complete(p), "complete");
  mxr_plan_free(p);
  ok(mxr_plan_host_count(NULL) == 0 && !mxr_plan_complete(NULL) &&
         mxr_plan_ready(NULL) == 0 && mxr_plan_target(NULL, 0) == NULL &&
         mxr_plan_result(NULL, &r) == MXR_EBADOPT,
     "NULL plans are harmless");
  mxr_plan_free(NULL);
  mxr_opts_free(NULL);
  mxr_plan_abort(NULL, MXR_ECANCELLED, NULL);
  mxr_opts_free(o);
}

/* Abort and the in == NULL plan. */
static void test_abort(void) {
  mxr_opts *o = mxr_opts_new();
  mxr_result r;
  mxr_plan *p = mxr_plan_new(NULL, "a@@b", 4, o);
  ok(p && !mxr_plan_complete(p), "a plan without input waits for abort");
  mxr_plan_abort(p, MXR_EBADNAME, "a@@b: more than one '@'");
  ok(mxr_plan_complete(p), "abort completes it");
  mxr_plan_result(p, &r);
  ok(r.status == MXR_EBADNAME && strcmp(r.message, "a@@b: more than one '@'") == 0 &&
         strcmp(r.input, "a@@b") == 0 && r.ntargets == 0,
     "abort sets status and message, input kept");
  mxr_plan_abort(p, MXR_ECANCELLED, "again");
  mxr_plan_result(p, &r);
  is_int(r.status, MXR_EBADNAME, "abort of a complete plan changes nothing");
  mxr_plan_free(p);
  p = mxr_plan_new(NULL, NULL, 0, NULL);
  mxr_plan_abort(p, MXR_EBADNAME, "bad\001input");
  mxr_plan_result(p, &r);
  is_str(r.message, "bad\\x01input", "abort messages are escaped");
  mxr_plan_free(p);
  p = run(o, "example.test", MXR_OK, NULL, "10:a.test 20:b.test", NULL, 1, NOFEED);
  mxr_plan_abort(p, MXR_ECANCELLED, NULL);
  ok(mxr_plan_complete(p) && !mxr_plan_host_wants(p, 0, 4),
     "an aborted plan wants nothing");
  is_str(render(p), "CANCELLED", "abort mid-way");
  is_str(message(p), "example.test: cancelled", "default abort message");
  is_int(mxr_plan_set_addrs(p, 0, 4, MXR_ENODATA, NULL, 0), MXR_OK,
         "a late answer after abort is accepted");
  is_str(render(p), "CANCELLED", "and ignored");
  mxr_plan_free(p);
  mxr_opts_free(o);
}

#ifdef MXR_TESTING
/* Every allocation of a full plan fails in turn: the call reports
 * MXR_ENOMEM (or _new gives NULL) and the plan stays safe to use/free.
 * The plan's parts come from blocks (the plan's own first), so a plan of
 * a few hosts makes few allocations: at least min_nomem must fail. */
static void oom_case(const char *what, const char *mxspec, const fake *f,
                     size_t want_targets, int min_nomem) {
  long n;
  int nomem = 0, clean = 0, wrong = 0;
  for (n = 1; n < 500; n++) {
    mxr_opts *o;
    mxr_plan *p = NULL;
    mxr_input in;
    mxr_rng rng;
    mxr_result r;
    size_t k;
    mxr_test_alloc_count = 0;
    mxr_test_alloc_fail_at = n;
    o = mxr_opts_new();
    if (o == NULL) {
      nomem++;
      continue;
    }
    mxr_opts_set_prefer(o, MXR_PREFER_IPV6);
    mxr_input_parse("example.test", 12, &in, NULL, 0);
    p = mxr_plan_new(&in, "example.test", 12, o);
    if (p == NULL) {
      nomem++;
      mxr_opts_free(o);
      continue;
    }
    mxr_rng_seed(&rng, 1);
    k = parse_mx(mxspec);
    if (mxr_plan_set_mx(p, MXR_OK, NULL, mxs, k, &rng) == MXR_ENOMEM)
      nomem++;
    feed(p, f, 0);
    if (mxr_plan_result(p, &r) != MXR_OK)
      wrong++;
    else if (r.status == MXR_ENOMEM)
      nomem++;
    else if (r.status == MXR_OK && r.ntargets == want_targets)
      clean++;
    else
      wrong++;
    mxr_plan_free(p);
    mxr_opts_free(o);
    if (mxr_test_alloc_count < n)
      break; /* no allocation left to fail */
  }
  mxr_test_alloc_fail_at = 0;
  ok(nomem >= min_nomem, "%s: allocation failures reported as NOMEM (%d)",
     what, nomem);
  is_int(clean, 1, "%s: the run past the last allocation succeeds", what);
  is_int(wrong, 0, "%s: no other outcome", what);
}

static void test_oom(void) {
  const fake f[] = {OKA("a.test", "192.0.2.1 192.0.2.2", "2001:db8::1"),
                    OKA("b.test", "192.0.2.3", ""), END};
  /* 24 hosts of five addresses: more than the plan's first block holds */
  static fake many[25];
  static char names[24][16], a4[24][64], a6[24][64];
  char spec[600];
  size_t i, o = 0;
  oom_case("two hosts", "10:a.test 20:b.test 20:.", f, 4, 8);
  for (i = 0; i < 24; i++) {
    snprintf(names[i], sizeof names[i], "h%zu.test", i);
    snprintf(a4[i], sizeof a4[i], "192.0.2.%zu 198.51.100.%zu 203.0.113.%zu",
             i + 1, i + 1, i + 1);
    snprintf(a6[i], sizeof a6[i], "2001:db8::%zx 2001:db8::1:%zx", i + 1,
             i + 1);
    many[i].name = names[i];
    many[i].st4 = MXR_OK;
    many[i].a4 = a4[i];
    many[i].st6 = MXR_OK;
    many[i].a6 = a6[i];
    o += (size_t)snprintf(spec + o, sizeof spec - o, "%s%zu:%s",
                          i ? " " : "", 10 * (i % 3), names[i]);
  }
  many[24].name = NULL;
  oom_case("24 hosts", spec, many, 120, 30);
}

/* A plan in flight holds no message: a failure's message is kept when
 * it fails, at its length. Out of memory for it, the failure is still
 * reported, with its status's constant text; both ways the plan and
 * every message after it stay whole. */
static void test_message_oom(void) {
  mxr_opts *o = mxr_opts_new();
  mxr_rng rng;
  mxr_plan *p;
  mxr_rng_seed(&rng, 1);
  p = new_plan(o, "user@s5.test");
  mxr_test_alloc_count = 0;
  mxr_test_alloc_fail_at = 1; /* the message's block */
  is_int(mxr_plan_set_mx(p, MXR_ENXDOMAIN, NULL, NULL, 0, &rng), MXR_OK,
         "set_mx accepts a failure with no memory for its message");
  mxr_test_alloc_fail_at = 0;
  ok(mxr_test_alloc_count >= 1, "the message was asked for memory");
  is_int(status_of(p), MXR_ENXDOMAIN, "the failure is reported");
  is_str(message(p), mxr_status_text(MXR_ENXDOMAIN),
         "its message is the status's constant text");
  mxr_plan_free(p);
  p = new_plan(o, "user@s5.test");
  mxr_plan_abort(p, MXR_ENOMEM, "out of memory");
  is_str(message(p), "out of memory", "an abort's message is kept");
  mxr_plan_free(p);
  p = new_plan(o, "user@s5.test");
  mxr_test_alloc_count = 0;
  mxr_test_alloc_fail_at = 1;
  mxr_plan_abort(p, MXR_ENOMEM, "out of memory");
  mxr_test_alloc_fail_at = 0;
  is_int(status_of(p), MXR_ENOMEM, "ENOMEM is reported without memory");
  is_str(message(p), mxr_status_text(MXR_ENOMEM),
         "with the constant text of ENOMEM");
  mxr_plan_free(p);
  mxr_opts_free(o);
}
#endif

int main(void) {
  test_order_dedup();
  test_mx_failure();
  test_implicit();
  test_null_mx();
  test_host_shuffle();
  test_addr_shuffle();
  test_reproducible();
  test_addresses();
  test_max_hosts();
  test_self_name();
  test_self_addr();
  test_self_family();
  test_ready();
  test_skipped();
  test_mx_to_ip();
  test_guard();
  test_targets_once();
  test_targets_once_many();
  test_literal();
  test_bad_names();
  test_misuse();
  test_abort();
#ifdef MXR_TESTING
  test_oom();
  test_message_oom();
#endif
  return done_testing();
}
