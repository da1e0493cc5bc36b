/*
 * transport_probe.c — what a nameserver sees of two transports under
 * sustained load: c-ares 1.18 driving its own sockets (as mxroute's engine
 * did before the exchange: EDNS, NOCHECKRESP, no STAYOPEN) and mxroute's
 * engine (the exchange). For each: how many source ports carried the
 * queries, the most queries one port carried, and the chi-square of the
 * query IDs' top four bits over 16 bins (df 15; 37.7 is p = 0.001).
 *
 *   cc -O2 -std=c99 -D_GNU_SOURCE -Icsrc -o probe bench/transport_probe.c \
 *      build/libmxroute.a $(pkg-config --libs libcares)
 *   ./probe [QUERIES] [IN_FLIGHT]        (defaults 10000 and 100)
 *
 * The nameserver is this program: a UDP socket on 127.0.0.1 answering
 * every query with a null MX (RFC 7505).
 */
#include "mxroute.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>

static unsigned port_count[65536];
static unsigned id_bins[16];
static unsigned long seen;

static int server_open(unsigned *port)
{
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  int big = 8 << 20;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
    return -1;
  *port = ntohs(sa.sin_port);
  return fd;
}

/* Answer every query waiting at the server. */
static void serve(int fd)
{
  unsigned char q[1500], a[1600];
  for (;;) {
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    size_t off = 12, k;
    if (n < 12)
      return;
    port_count[ntohs(from.sin_port)]++;
    id_bins[q[0] >> 4]++;
    seen++;
    while (off < (size_t)n && q[off])
      off += (size_t)q[off] + 1;
    off += 5;
    if (off > (size_t)n)
      continue;
    memcpy(a, q, off);
    a[2] = 0x81;
    a[3] = 0x80;
    a[6] = 0, a[7] = 1;   /* ANCOUNT 1 */
    a[8] = a[9] = a[10] = a[11] = 0;
    k = off;
    a[k++] = 0xc0, a[k++] = 12;        /* owner: the question name */
    a[k++] = 0, a[k++] = 15;           /* MX */
    a[k++] = 0, a[k++] = 1;            /* IN */
    a[k++] = 0, a[k++] = 0, a[k++] = 0, a[k++] = 60;
    a[k++] = 0, a[k++] = 3;            /* RDLENGTH */
    a[k++] = 0, a[k++] = 0, a[k++] = 0; /* pref 0, exchange "." */
    sendto(fd, a, k, 0, (struct sockaddr *)&from, fl);
  }
}

static void report(const char *what)
{
  unsigned ports = 0, most = 0;
  double e = (double)seen / 16.0, chi = 0;
  for (size_t i = 0; i < 65536; i++) {
    if (port_count[i])
      ports++;
    if (port_count[i] > most)
      most = port_count[i];
  }
  for (size_t i = 0; i < 16; i++)
    chi += ((double)id_bins[i] - e) * ((double)id_bins[i] - e) / e;
  printf("%-18s queries %lu, source ports %u, most on one port %u, "
         "ID chi-square %.1f\n", what, seen, ports, most, chi);
  memset(port_count, 0, sizeof port_count);
  memset(id_bins, 0, sizeof id_bins);
  seen = 0;
}

/* ---- c-ares ---- */

static ares_channel ch;
static int sent, done, total, conc;

static void cares_next(void);

static void cares_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                     int alen)
{
  (void)arg, (void)status, (void)timeouts, (void)abuf, (void)alen;
  done++;
  cares_next();
}

static void cares_next(void)
{
  char name[64];
  if (sent >= total)
    return;
  snprintf(name, sizeof name, "d%d.probe.test", sent++);
  ares_query(ch, name, 1, 15, cares_cb, NULL);
}

static void run_cares(int srv, unsigned port)
{
  struct ares_options o;
  char csv[64];
  memset(&o, 0, sizeof o);
  o.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP;
  o.ednspsz = 1232;
  o.timeout = 2000;
  o.tries = 3;
  ares_library_init(ARES_LIB_INIT_ALL);
  ares_init_options(&ch, &o, ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ |
                                 ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  snprintf(csv, sizeof csv, "127.0.0.1:%u", port);
  ares_set_servers_ports_csv(ch, csv);
  sent = done = 0;
  for (int i = 0; i < conc; i++)
    cares_next();
  while (done < total) {
    fd_set r, w;
    struct timeval tv = {0, 10000};
    int nfds;
    FD_ZERO(&r);
    FD_ZERO(&w);
    nfds = ares_fds(ch, &r, &w);
    FD_SET(srv, &r);
    if (srv >= nfds)
      nfds = srv + 1;
    select(nfds, &r, &w, NULL, &tv);
    serve(srv);
    ares_process(ch, &r, &w);
  }
  ares_destroy(ch);
  ares_library_cleanup();
  report("c-ares 1.18");
}

/* ---- mxroute's engine ---- */

static void run_engine(int srv, unsigned port)
{
  mxr_engine_config c;
  mxr_engine *e = NULL;
  mxr_opts *opts = mxr_opts_new();
  mxr_rng rng;
  char csv[64], err[256];
  int n = 0, fin = 0;
  mxr_res **res = calloc((size_t)total, sizeof *res);
  mxr_job **jobs = calloc((size_t)total, sizeof *jobs);
  mxr_rng_seed(&rng, 1);
  memset(&c, 0, sizeof c);
  snprintf(csv, sizeof csv, "127.0.0.1:%u", port);
  c.servers = csv;
  if (mxr_engine_new(&c, &e, err, sizeof err) != MXR_OK) {
    fprintf(stderr, "engine: %s\n", err);
    return;
  }
  while (fin < total) {
    struct pollfd p[2] = {{mxr_engine_fd(e), POLLIN, 0}, {srv, POLLIN, 0}};
    void *ud;
    while (n < total && n - fin < conc) {
      char name[64];
      snprintf(name, sizeof name, "d%d.probe.test", n);
      res[n] = mxr_res_new(name, strlen(name), opts, &rng);
      mxr_engine_add(e, res[n], &res[n], &jobs[n]);
      n++;
    }
    poll(p, 2, 10);
    serve(srv);
    mxr_engine_step(e, 0);
    while ((ud = mxr_engine_next_done(e)) != NULL) {
      size_t i = (size_t)((mxr_res **)ud - res);
      mxr_engine_remove(e, jobs[i]);
      mxr_res_free(res[i]);
      fin++;
    }
  }
  free(res);
  free(jobs);
  report("mxroute engine");
  mxr_engine_free(e);
  mxr_opts_free(opts);
}

int main(int argc, char **argv)
{
  unsigned port;
  int srv = server_open(&port);
  total = argc > 1 ? atoi(argv[1]) : 10000;
  conc = argc > 2 ? atoi(argv[2]) : 100;
  if (srv < 0) {
    perror("server");
    return 1;
  }
  run_cares(srv, port);
  run_engine(srv, port);
  return 0;
}
