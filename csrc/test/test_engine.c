/*
 * test_engine.c — the C engine over real loopback sockets, with the test
 * itself as the nameserver (a UDP socket it answers by hand):
 *   - fork() with a query in flight: parent and child each get their own
 *     answer on their own socket (the child sends again from a new one);
 *   - ICMP port unreachable (nothing listens) fails over at once;
 *   - a resolv.conf that is not a regular file is refused.
 */
#include "dnsmsg.h"
#include "mxr_internal.h"
#include "mxroute.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static mxr_opts *opts;
static mxr_rng rng;

/* A UDP socket on 127.0.0.1 at a free port: our nameserver. */
static int server_socket(unsigned *port) {
  struct sockaddr_in sa;
  socklen_t sl = sizeof sa;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
      getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
    return -1;
  *port = ntohs(sa.sin_port);
  return fd;
}

/* Answer one query arriving within ms with a null MX (RFC 7505), echoing
 * ID and question. Returns the source port it came from, or 0. */
static unsigned answer_one(int fd, int ms) {
  unsigned char q[512];
  struct sockaddr_in from;
  socklen_t fl = sizeof from;
  struct pollfd p = {fd, POLLIN, 0};
  dm m;
  ssize_t n;
  size_t off = 12;
  if (poll(&p, 1, ms) != 1)
    return 0;
  n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
  if (n < 12)
    return 0;
  while (off < (size_t)n && q[off])
    off += (size_t)q[off] + 1;
  off += 1 + 4; /* root label, type, class */
  if (off > (size_t)n)
    return 0;
  m.n = 0;
  dm_u8(&m, q[0]);
  dm_u8(&m, q[1]);
  dm_u16(&m, 0x8180);
  dm_u16(&m, 1);
  dm_u16(&m, 1);
  dm_u16(&m, 0);
  dm_u16(&m, 0);
  for (size_t i = 12; i < off; i++)
    dm_u8(&m, q[i]);
  dm_ptr(&m, 12); /* owner: the question name */
  dm_u16(&m, 15);
  dm_u16(&m, 1);
  dm_u32(&m, 60);
  dm_u16(&m, 3);
  dm_u16(&m, 0);
  dm_u8(&m, 0);
  if (sendto(fd, m.b, m.n, 0, (struct sockaddr *)&from, fl) < 0)
    return 0;
  return ntohs(from.sin_port);
}

static mxr_status status_of(mxr_res *r) {
  mxr_result out;
  if (!mxr_res_done(r) || mxr_plan_result(mxr_res_plan(r), &out) != MXR_OK)
    return MXR_STATUS_COUNT;
  return out.status;
}

/* Step e until r is done or about `seconds` have passed. */
static void run(mxr_engine *e, mxr_res *r, double seconds) {
  double end = mxr_now() + seconds;
  while (!mxr_res_done(r) && mxr_now() < end) {
    struct pollfd p = {mxr_engine_fd(e), POLLIN, 0};
    (void)poll(&p, 1, 20);
    mxr_engine_step(e, 0);
  }
}

static mxr_engine *engine(const char *servers, int timeout_ms) {
  mxr_engine_config c;
  mxr_engine *e = NULL;
  char err[MXR_MSG_BUF];
  memset(&c, 0, sizeof c);
  c.servers = servers;
  c.timeout_ms = timeout_ms;
  c.tries = 1;
  if (mxr_engine_new(&c, &e, err, sizeof err) != MXR_OK)
    diag("engine: %s", err);
  return e;
}

static void test_fork(void) {
  unsigned port = 0, p1, p2;
  int srv = server_socket(&port), status = -1;
  char servers[64];
  mxr_engine *e;
  mxr_res *r = mxr_res_new("fork.test", 9, opts, &rng);
  mxr_job *job = NULL;
  pid_t pid;
  snprintf(servers, sizeof servers, "127.0.0.1:%u", port);
  e = engine(servers, 3000);
  ok(srv >= 0 && e && r, "a nameserver socket and an engine");
  if (srv < 0 || !e || !r)
    return;
  mxr_engine_add(e, r, r, &job);
  fflush(stdout);
  pid = fork();
  if (pid == 0) {
    /* the child: its own socket, its own answer */
    run(e, r, 3.0);
    _exit(status_of(r) == MXR_ENULLMX ? 0 : 1);
  }
  /* the parent plays the nameserver: the query sent before fork() and
   * the child's query sent again on its own socket */
  p1 = answer_one(srv, 3000);
  p2 = answer_one(srv, 3000);
  ok(p1 && p2, "two queries arrived: the parent's and the child's");
  ok(p1 != p2, "from two source ports (%u, %u): no shared socket", p1, p2);
  run(e, r, 3.0);
  is_int(status_of(r), MXR_ENULLMX, "the parent got its answer");
  if (pid > 0)
    waitpid(pid, &status, 0);
  ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
     "the child got its answer too");
  mxr_engine_remove(e, job);
  mxr_res_free(r);
  mxr_engine_free(e);
  close(srv);
}

static void test_icmp(void) {
  unsigned dead = 0, live = 0;
  int d = server_socket(&dead), srv = server_socket(&live);
  char servers[96];
  mxr_engine *e;
  mxr_res *r = mxr_res_new("icmp.test", 9, opts, &rng);
  mxr_job *job = NULL;
  mxr_xch_stats st;
  close(d); /* nothing listens there any more */
  snprintf(servers, sizeof servers, "127.0.0.1:%u,127.0.0.1:%u", dead, live);
  e = engine(servers, 5000);
  if (!e || srv < 0 || !r) {
    ok(0, "engine for the ICMP test");
    mxr_res_free(r);
    return;
  }
  mxr_engine_add(e, r, r, &job);
  /* ECONNREFUSED comes back on the connected socket: the query moves on
   * without waiting 5 s */
  double t0 = mxr_now();
  while (mxr_now() - t0 < 4.0) {
    mxr_engine_step(e, 0.05);
    if (answer_one(srv, 10))
      break;
  }
  run(e, r, 1.0);
  is_int(status_of(r), MXR_ENULLMX, "the second server answered");
  mxr_engine_stats(e, &st);
  is_int(st.timeouts, 0, "without a timeout at the dead one");
  is_int(mxr_engine_server_failures(e, 0), 1, "one failure at the dead one");
  mxr_engine_remove(e, job);
  mxr_res_free(r);
  mxr_engine_free(e);
  close(srv);
}

/* With trace, each finished try is an event for the caller to drain
 * after mxr_engine_step (on_query, --trace); without, none is kept. */
static void test_trace(void) {
  unsigned port = 0;
  int srv = server_socket(&port);
  char servers[64], text[MXR_SERVER_BUF], want[MXR_SERVER_BUF];
  mxr_engine_config c;
  mxr_engine *e = NULL, *plain;
  mxr_res *r = mxr_res_new("trace.test", 10, opts, &rng);
  mxr_job *job = NULL;
  mxr_xch_event ev;
  const mxr_server *sv;
  snprintf(servers, sizeof servers, "127.0.0.1:%u", port);
  memset(&c, 0, sizeof c);
  c.servers = servers;
  c.timeout_ms = 3000;
  c.tries = 1;
  c.trace = 1;
  if (srv < 0 || !r || mxr_engine_new(&c, &e, text, sizeof text) != MXR_OK) {
    ok(0, "engine for the trace test");
    mxr_res_free(r);
    return;
  }
  ok(!mxr_engine_next_event(e, &ev), "no event before a query");
  mxr_engine_add(e, r, r, &job);
  ok(answer_one(srv, 3000) != 0, "the query arrived");
  run(e, r, 3.0);
  is_int(status_of(r), MXR_ENULLMX, "and was answered");
  ok(mxr_engine_next_event(e, &ev) && strcmp(ev.name, "trace.test") == 0 &&
         ev.type == MXR_TYPE_MX && ev.server == 0 && !ev.tcp &&
         ev.status == MXR_OK && ev.rcode == 0 && ev.rtt >= 0,
     "one event: MX of trace.test, answered NOERROR by server 0");
  ok(!mxr_engine_next_event(e, &ev), "and only one");
  sv = mxr_engine_server(e, 0);
  snprintf(want, sizeof want, "127.0.0.1:%u", port);
  if (sv)
    mxr_server_format(sv, text);
  ok(sv && strcmp(text, want) == 0, "server 0 is %s", want);
  ok(mxr_engine_server(e, 1) == NULL, "there is no server 1");
  mxr_engine_remove(e, job);
  mxr_res_free(r);
  mxr_engine_free(e);

  /* without trace */
  plain = engine(servers, 3000);
  r = mxr_res_new("trace.test", 10, opts, &rng);
  if (plain && r) {
    mxr_engine_add(plain, r, r, &job);
    (void)answer_one(srv, 3000);
    run(plain, r, 3.0);
    is_int(status_of(r), MXR_ENULLMX, "an engine without trace resolves");
    ok(!mxr_engine_next_event(plain, &ev), "and keeps no event");
    mxr_engine_remove(plain, job);
  } else
    ok(0, "engine without trace");
  mxr_res_free(r);
  mxr_engine_free(plain);
  close(srv);
}

static void test_conf(void) {
  char dir[] = "/tmp/mxr-conf-XXXXXX", path[64], err[128];
  FILE *f;
  if (!mkdtemp(dir)) {
    ok(0, "mkdtemp");
    return;
  }
  snprintf(path, sizeof path, "%s/fifo", dir);
  ok(mkfifo(path, 0600) == 0, "a FIFO");
  is_int(mxr_engine_conf_check(path, err, sizeof err), MXR_EBADOPT,
         "a FIFO as resolv.conf is refused (never opened)");
  ok(strstr(err, "not a regular file") != NULL, "saying why: %s", err);
  unlink(path);
  is_int(mxr_engine_conf_check(path, err, sizeof err), MXR_OK,
         "a missing one is fine (c-ares' defaults)");
  f = fopen(path, "w");
  if (f)
    fclose(f);
  is_int(mxr_engine_conf_check(path, err, sizeof err), MXR_OK,
         "a regular file is read");
  unlink(path);
  rmdir(dir);
}

static void test_bad_servers(void) {
  mxr_engine_config c;
  mxr_engine *e = NULL;
  char err[MXR_MSG_BUF];
  memset(&c, 0, sizeof c);
  c.servers = "127.0.0.1:53,0.0.0.0";
  is_int(mxr_engine_new(&c, &e, err, sizeof err), MXR_EBADOPT,
         "an unroutable nameserver in the list is refused");
  diag("%s", err);
  c.servers = "127.0.0.1:53,";
  is_int(mxr_engine_new(&c, &e, err, sizeof err), MXR_EBADOPT,
         "a hole in the list is refused");
  ok(e == NULL, "nothing is made");
  {
    mxr_server sv[2];
    memset(&c, 0, sizeof c);
    ok(mxr_server_parse("127.0.0.1:5353", 14, &sv[0], err, sizeof err) ==
           MXR_OK &&
           mxr_server_parse("[::1]", 5, &sv[1], err, sizeof err) == MXR_OK,
       "two parsed servers");
    c.server_list = sv;
    c.nservers = 2;
    is_int(mxr_engine_new(&c, &e, err, sizeof err), MXR_OK,
           "an engine takes a parsed server list");
    is_int(mxr_engine_server_count(e), 2, "with both servers");
    mxr_engine_free(e);
  }
}

int main(void) {
  opts = mxr_opts_new();
  mxr_rng_seed(&rng, 11);
  test_conf();
  test_bad_servers();
  test_icmp();
  test_trace();
  test_fork();
  mxr_opts_free(opts);
  return done_testing();
}
