/*
 * libFuzzer target: the planner. The fuzz bytes choose options, an MX
 * outcome, and a sequence of address answers (any host, any order, bad
 * families, duplicates, late answers, aborts). Invariants checked after
 * every call: the ready prefix never changes once handed out, targets
 * hold each address once in ascending preference; and on completion the
 * result is consistent with the options.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "mxroute.h"

typedef struct reader {
  const uint8_t *p;
  size_t n;
} reader;

static unsigned get(reader *r) {
  if (r->n == 0)
    return 0;
  r->n--;
  return *r->p++;
}

static const char *const names[] = {
    "mx1.test", "MX1.Test.", "mx2.test", "mx3.test", "mx4.test", ".", "",
    "192.0.2.9", "2001:DB8::9", "127.0.0.1", "us.test", "bad name", "a..b",
    "x_y.test", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test",
    "mx5.test"};
#define NNAMES (sizeof names / sizeof names[0])

static const char *const addrs[] = {
    "192.0.2.1",   "192.0.2.2",   "198.51.100.1",     "127.0.0.1",
    "10.0.0.1",    "192.0.2.200", "203.0.113.7",      "0.0.0.0",
    "2001:db8::1", "2001:db8::2", "::ffff:192.0.2.1", "::1",
    "fe80::1",     "2001:db8::200", "::ffff:10.0.0.1", "2001:db8:1::1"};
#define NADDRS (sizeof addrs / sizeof addrs[0])

static const char *const selfs[] = {"us.test", "192.0.2.200", "[IPv6:2001:db8::200]",
                                    "mx2.test", "[192.0.2.1]", "MX3.TEST."};

static const char *const inputs[] = {"user@example.test", "example.test",
                                     "u@[192.0.2.1]", "u@[127.0.0.1]",
                                     "u@[IPv6:2001:db8::200]", "u@[192.0.2.200]"};

static mxr_addr pool[NADDRS];

static const mxr_status codes[] = {MXR_OK,        MXR_ENODATA,  MXR_ENXDOMAIN,
                                   MXR_ESERVFAIL, MXR_ETIMEOUT, MXR_EREFUSED,
                                   MXR_EFORMERR,  MXR_OK,       MXR_OK};
#define NCODES (sizeof codes / sizeof codes[0])

static int guarded(const mxr_addr *a) {
  static mxr_cidr def[16];
  static size_t ndef;
  static const char *const list[] = {"0.0.0.0/8",   "127.0.0.0/8",  "169.254.0.0/16",
                                     "224.0.0.0/4", "240.0.0.0/4",  "10.0.0.0/8",
                                     "172.16.0.0/12", "192.168.0.0/16", "::/128",
                                     "::1/128",     "fe80::/10",    "ff00::/8",
                                     "fc00::/7"};
  size_t i;
  if (ndef == 0)
    for (i = 0; i < sizeof list / sizeof list[0]; i++)
      CHECK(mxr_cidr_parse(list[i], strlen(list[i]), &def[ndef++]) == MXR_OK);
  for (i = 0; i < ndef; i++)
    if (mxr_cidr_contains(&def[i], a))
      return 1;
  return 0;
}

/* What the caller has seen of the ready prefix must never change. */
static mxr_target seen[4096];
static size_t nseen;

static void check_progress(mxr_plan *p) {
  size_t ready = mxr_plan_ready(p), i, j;
  const mxr_target *t;
  if (!mxr_plan_complete(p) || ready > 0) {
    for (i = 0; i < nseen && i < ready; i++) {
      t = mxr_plan_target(p, i);
      CHECK(t != NULL);
      CHECK(strcmp(t->host, seen[i].host) == 0 && t->pref == seen[i].pref &&
            mxr_addr_equal(&t->addr, &seen[i].addr));
    }
    /* once handed out, a ready prefix only grows (unless the plan fails) */
    if (!mxr_plan_complete(p))
      CHECK(ready >= nseen);
  }
  CHECK(mxr_plan_target(p, ready) == NULL);
  for (i = 0; i < ready; i++) {
    t = mxr_plan_target(p, i);
    CHECK(t != NULL);
    if (i > 0)
      CHECK(mxr_plan_target(p, i - 1)->pref <= t->pref);
    for (j = 0; j < i; j++)
      CHECK(!mxr_addr_equal(&mxr_plan_target(p, j)->addr, &t->addr));
    if (i < sizeof seen / sizeof seen[0]) {
      seen[i] = *t;
      seen[i].host = t->host; /* owned by the plan, stable until free */
    }
  }
  if (ready > nseen)
    nseen = ready < sizeof seen / sizeof seen[0] ? ready : sizeof seen / sizeof seen[0];
}

/* Our identities as chosen by the nself bits (rule 8). */
static unsigned self_bits;

static int is_self(const mxr_host *h) {
  size_t i, j;
  for (i = 0; i < sizeof selfs / sizeof selfs[0]; i++) {
    const char *s = selfs[i];
    mxr_addr a;
    size_t len = strlen(s);
    if (!(self_bits & (1u << i)))
      continue;
    if (s[0] == '[') {
      s += 1;
      len -= 2;
      if (strncmp(s, "IPv6:", 5) == 0) {
        s += 5;
        len -= 5;
      }
    }
    if (mxr_addr_parse(s, len, &a) == MXR_OK) {
      for (j = 0; j < h->naddrs; j++)
        if (mxr_addr_equal(&a, &h->addrs[j]))
          return 1;
    } else if (mxr_name_equal(s, h->name)) {
      return 1;
    }
  }
  return 0;
}

static void check_result(mxr_plan *p, int family, size_t max_hosts,
                         size_t max_addrs, int guard) {
  mxr_result r;
  size_t i, j, k;
  CHECK(mxr_plan_complete(p));
  CHECK(mxr_plan_result(p, &r) == MXR_OK);
  CHECK(r.message != NULL && strlen(r.message) < MXR_MSG_BUF);
  CHECK(mxr_plan_ready(p) == r.ntargets);
  CHECK((r.status == MXR_OK) == (r.ntargets > 0));
  CHECK(r.nhosts <= max_hosts);
  if (r.status != MXR_OK)
    CHECK(r.nhosts == 0 && r.message[0] != '\0');
  for (i = 0; i < r.nhosts; i++) {
    const mxr_host *h = &r.hosts[i];
    CHECK(h->naddrs > 0 && h->naddrs <= max_addrs);
    CHECK(!is_self(h));
    if (i > 0)
      CHECK(r.hosts[i - 1].pref <= h->pref);
    if (r.has_self_pref)
      CHECK(h->pref < r.self_pref);
    for (j = 0; j < i; j++)
      CHECK(strcmp(r.hosts[j].name, h->name) != 0);
    for (j = 0; j < h->naddrs; j++) {
      CHECK(!guard || !guarded(&h->addrs[j]));
      if (family == 1)
        CHECK(h->addrs[j].family == 4);
      if (family == 2)
        CHECK(h->addrs[j].family == 6);
      for (k = 0; k < j; k++)
        CHECK(!mxr_addr_equal(&h->addrs[k], &h->addrs[j]));
    }
  }
  for (i = 0; i < r.ntargets; i++) {
    const mxr_target *t = &r.targets[i];
    int found = 0;
    for (j = 0; j < r.nhosts; j++)
      if (r.hosts[j].name == t->host && r.hosts[j].pref == t->pref)
        for (k = 0; k < r.hosts[j].naddrs; k++)
          if (mxr_addr_equal(&r.hosts[j].addrs[k], &t->addr))
            found = 1;
    CHECK(found);
    for (j = 0; j < i; j++)
      CHECK(!mxr_addr_equal(&r.targets[j].addr, &t->addr));
    if (i > 0)
      CHECK(r.targets[i - 1].pref <= t->pref);
  }
  /* every usable host address appears somewhere in the targets */
  for (i = 0; i < r.nhosts; i++)
    for (j = 0; j < r.hosts[i].naddrs; j++) {
      int found = 0;
      for (k = 0; k < r.ntargets; k++)
        if (mxr_addr_equal(&r.targets[k].addr, &r.hosts[i].addrs[j]))
          found = 1;
      CHECK(found);
    }
  for (i = 0; i < r.nskipped; i++) {
    CHECK(r.skipped[i].name != NULL && r.skipped[i].code != MXR_OK);
    if (i > 0)
      CHECK(r.skipped[i - 1].pref <= r.skipped[i].pref);
    if (r.has_self_pref)
      CHECK(r.skipped[i].pref < r.self_pref);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  reader rd = {data, size};
  mxr_opts *o;
  mxr_plan *p;
  mxr_input in;
  mxr_rng rng;
  mxr_mx mx[24];
  unsigned flags, nself, nmx, i;
  int family, guard;
  size_t max_hosts, max_addrs;
  const char *input;
  static int init;

  if (!init) {
    for (i = 0; i < NADDRS; i++)
      CHECK(mxr_addr_parse(addrs[i], strlen(addrs[i]), &pool[i]) == MXR_OK);
    init = 1;
  }
  nseen = 0;
  o = mxr_opts_new();
  CHECK(o != NULL);
  flags = get(&rd);
  family = (int)(flags & 3) % 3;
  mxr_opts_set_family(o, (mxr_family)family);
  mxr_opts_set_prefer(o, (mxr_prefer)(((flags >> 2) & 3) % 3));
  mxr_opts_set_allow_mx_to_ip(o, (flags >> 4) & 1);
  guard = !((flags >> 5) & 1);
  if (!guard)
    mxr_opts_ignore_clear(o);
  max_hosts = 1 + get(&rd) % 8;
  max_addrs = 1 + get(&rd) % 6;
  CHECK(mxr_opts_set_max_hosts(o, max_hosts) == MXR_OK);
  CHECK(mxr_opts_set_max_addrs(o, max_addrs) == MXR_OK);
  nself = get(&rd);
  self_bits = nself;
  for (i = 0; i < 6; i++)
    if (nself & (1u << i))
      CHECK(mxr_opts_add_self(o, selfs[i], strlen(selfs[i]), NULL, 0) == MXR_OK);
  input = inputs[get(&rd) % (sizeof inputs / sizeof inputs[0])];
  CHECK(mxr_input_parse(input, strlen(input), &in, NULL, 0) == MXR_OK);
  p = mxr_plan_new(&in, input, strlen(input), o);
  CHECK(p != NULL);
  mxr_rng_seed(&rng, get(&rd));
  if (in.kind == MXR_INPUT_DOMAIN) {
    unsigned c = get(&rd);
    mxr_status st = c < 200 ? MXR_OK : codes[c % NCODES];
    nmx = get(&rd) % 24;
    for (i = 0; i < nmx; i++) {
      unsigned b = get(&rd);
      mx[i].pref = (uint16_t)(b >> 4 == 15 ? 65535 : b >> 4);
      mx[i].name = names[b % NNAMES];
      mx[i].len = strlen(mx[i].name);
    }
    CHECK(mxr_plan_set_mx(p, st, (flags & 64) ? "Canon.Test." : NULL, mx, nmx,
                          &rng) == MXR_OK);
    check_progress(p);
    /* address answers, in an order chosen by the input */
    while (rd.n > 0) {
      unsigned op = get(&rd);
      size_t count = mxr_plan_host_count(p), hi;
      mxr_addr a[8];
      size_t na, k;
      int fam;
      mxr_status st2, rc;
      if (op == 0xff) {
        mxr_plan_abort(p, MXR_ECANCELLED, NULL);
        check_progress(p);
        continue;
      }
      if (count == 0)
        break;
      hi = (op >> 1) % count;
      fam = (op & 1) ? 6 : 4;
      st2 = codes[get(&rd) % NCODES];
      na = get(&rd) % 8;
      for (k = 0; k < na; k++) {
        unsigned ai = get(&rd);
        a[k] = pool[ai % NADDRS];
      }
      rc = mxr_plan_set_addrs(p, hi, fam, st2, a, na);
      CHECK(rc == MXR_OK || rc == MXR_EBADOPT);
      check_progress(p);
    }
    /* finish whatever is still wanted */
    for (i = 0; i < mxr_plan_host_count(p); i++) {
      if (mxr_plan_host_wants(p, i, 4))
        CHECK(mxr_plan_set_addrs(p, i, 4, MXR_ENODATA, NULL, 0) == MXR_OK);
      if (mxr_plan_host_wants(p, i, 6))
        CHECK(mxr_plan_set_addrs(p, i, 6, MXR_OK, NULL, 0) == MXR_OK);
      check_progress(p);
    }
  }
  check_result(p, family, max_hosts, max_addrs, guard);
  mxr_plan_free(p);
  mxr_opts_free(o);
  return 0;
}
