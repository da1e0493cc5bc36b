/*
 * raw_cares.c — the baseline: what plain c-ares does for the same work as
 * an mxroute plan (MX query, then A and AAAA of every exchange at once,
 * each answer decoded with c-ares' parsers), with no validation, no
 * planning and no Lua. Same channel options as
 * csrc/engine.c (EDNS 1232, large receive buffer, epoll via the socket
 * state callback), same concurrency window.
 *
 *   raw_cares SERVER:PORT CONCURRENCY DOMAIN...   (or DOMAINs on stdin)
 * prints: plans=N failed=N seconds=S plans_per_s=R peak_kib=K bytes_per_plan=B
 */
#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <time.h>

#include "measure.h"

typedef struct plan {
  int outstanding; /* host queries not yet answered */
  int failed;
} plan;

static ares_channel ch;
static int epfd;
static char **domains;
static size_t ndomains, next_domain, done_plans, failed_plans;

static void sock_cb(void *data, ares_socket_t fd, int r, int w)
{
  struct epoll_event ev;
  (void)data;
  memset(&ev, 0, sizeof ev);
  ev.data.fd = fd;
  ev.events = (r ? (unsigned)EPOLLIN : 0u) | (w ? (unsigned)EPOLLOUT : 0u);
  if (!r && !w) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev);
    return;
  }
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void start_next(void);

static void finish(plan *p)
{
  done_plans++;
  if (p->failed)
    failed_plans++;
  free(p);
  start_next();
}

static void addr_done(plan *p, int failed)
{
  if (failed)
    p->failed = 1;
  if (--p->outstanding == 0)
    finish(p);
}

/* The least an MTA must do with an address answer: decode it. */
static void a_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                 int alen)
{
  struct ares_addrttl a[16];
  int n = 16;
  (void)timeouts;
  addr_done(arg, status == ARES_SUCCESS
                     ? ares_parse_a_reply(abuf, alen, NULL, a, &n) !=
                           ARES_SUCCESS
                     : status != ARES_ENODATA);
}

static void aaaa_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                    int alen)
{
  struct ares_addr6ttl a[16];
  int n = 16;
  (void)timeouts;
  addr_done(arg, status == ARES_SUCCESS
                     ? ares_parse_aaaa_reply(abuf, alen, NULL, a, &n) !=
                           ARES_SUCCESS
                     : status != ARES_ENODATA);
}

static void mx_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                  int alen)
{
  plan *p = arg;
  struct ares_mx_reply *mx = NULL, *m;
  (void)timeouts;
  if (status != ARES_SUCCESS ||
      ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS || !mx) {
    p->failed = 1;
    finish(p);
    return;
  }
  p->outstanding = 1; /* guard while sending */
  for (m = mx; m; m = m->next) {
    p->outstanding += 2;
    ares_query(ch, m->host, ns_c_in, ns_t_a, a_cb, p);
    ares_query(ch, m->host, ns_c_in, ns_t_aaaa, aaaa_cb, p);
  }
  ares_free_data(mx);
  if (--p->outstanding == 0)
    finish(p);
}

static void start_next(void)
{
  plan *p;
  if (next_domain >= ndomains)
    return;
  p = calloc(1, sizeof *p);
  if (!p) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  ares_query(ch, domains[next_domain++], ns_c_in, ns_t_mx, mx_cb, p);
}

/* The resolution loop: every domain to its answers, conc plans in flight.
 * The only part bench/run's callgrind section counts
 * (--toggle-collect='resolve_all*'). */
__attribute__((noinline)) static void resolve_all(size_t conc)
{
  struct epoll_event evs[64];
  size_t i;
  for (i = 0; i < conc; i++)
    start_next();
  while (done_plans < ndomains) {
    struct timeval tv, *tvp = ares_timeout(ch, NULL, &tv);
    int ms = tvp ? (int)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1 : 1000;
    int n = epoll_wait(epfd, evs, 64, ms), k;
    for (k = 0; k < n; k++)
      ares_process_fd(ch,
                      (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                          ? evs[k].data.fd : ARES_SOCKET_BAD,
                      (evs[k].events & EPOLLOUT) ? evs[k].data.fd
                                                 : ARES_SOCKET_BAD);
    ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  }
}

int main(int argc, char **argv)
{
  struct ares_options o;
  size_t conc, cap = 0;
  double t0, t1, c0;
  char line[512];
  long rss0;
  long peak;

  if (argc < 3) {
    fprintf(stderr, "usage: raw_cares SERVER:PORT CONCURRENCY [DOMAIN...]\n");
    return 64;
  }
  conc = (size_t)strtoul(argv[2], NULL, 10);
  if (argc > 3) {
    domains = argv + 3;
    ndomains = (size_t)(argc - 3);
  } else {
    while (fgets(line, sizeof line, stdin)) {
      line[strcspn(line, "\r\n")] = 0;
      if (!line[0])
        continue;
      if (ndomains == cap) {
        cap = cap ? cap * 2 : 1024;
        domains = realloc(domains, cap * sizeof *domains);
        if (!domains)
          return 1;
      }
      domains[ndomains++] = strdup(line);
    }
  }
  epfd = epoll_create1(0);
  ares_library_init(ARES_LIB_INIT_ALL);
  memset(&o, 0, sizeof o);
  o.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP;
  o.ednspsz = 1232;
  o.timeout = 2000;
  o.tries = 3;
  o.sock_state_cb = sock_cb;
  o.socket_receive_buffer_size = 4 << 20;
  if (ares_init_options(&ch, &o,
                        ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ |
                            ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                            ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF) !=
          ARES_SUCCESS ||
      ares_set_servers_ports_csv(ch, argv[1]) != ARES_SUCCESS) {
    fprintf(stderr, "c-ares init failed\n");
    return 1;
  }
  rss0 = status_kib("VmRSS");
  c0 = cpu_s();
  t0 = now();
  resolve_all(conc);
  t1 = now();
  peak = status_kib("VmHWM");
  printf("raw c-ares: plans=%zu failed=%zu seconds=%.3f plans_per_s=%.0f "
         "peak_kib=%ld bytes_per_plan=%.0f cpu_us_per_plan=%.1f\n",
         done_plans, failed_plans, t1 - t0, (double)done_plans / (t1 - t0),
         peak,
         (double)(peak - rss0) * 1024.0 /
             (double)(conc < ndomains ? conc : ndomains),
         (cpu_s() - c0) * 1e6 / (double)done_plans);
  ares_destroy(ch);
  ares_library_cleanup();
  return 0;
}
