/*
 * engine.c — the C transport: a byte pump between the exchange
 * (exchange.c, which owns every rule of talking to nameservers) and
 * plain non-blocking sockets in one epoll set.
 *
 * c-ares is used only to read the system's resolver configuration
 * (resolv.conf nameservers, timeout and attempts) when no nameservers
 * are given; it sends nothing.
 *
 * Invariants:
 *  - the engine asks the exchange what to do (mxr_xch_io) after every
 *    call into it and does it at once: open a socket, send, close;
 *  - epoll data is the exchange's socket number; a number is reused
 *    only after its close, and a socket is removed from the epoll set
 *    before it is closed;
 *  - fork(): the child never touches the parent's epoll set (it shares
 *    it); it closes its copies of the descriptors, makes its own epoll
 *    set and lets the exchange send what was in flight again.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <ares.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define RESOLV_CONF "/etc/resolv.conf"
#define RECV_MAX 65536
#define EVENTS 256
#define DGRAMS_PER_EVENT 256
/* Datagrams moved per recvmmsg/sendmmsg call. */
#define UDP_BATCH 16
/* A query (RFC 1035 4.1: header, a name of at most 255 octets, type and
 * class; RFC 6891 OPT) fits; a longer datagram is sent on its own. */
#define SEND_SLOT 512

typedef struct esock {
  int fd; /* -1: none */
  int tcp;
  int connecting;
  int watched; /* in the epoll set */
  unsigned char *wbuf; /* TCP bytes not yet written */
  size_t wlen, woff;
} esock;

struct mxr_engine {
  mxr_xch *x;
  int epfd;
  pid_t pid;
  /* A page a child of fork() sees zeroed (MADV_WIPEONFORK, Linux 4.14),
   * set to 1 here: the fork check on every call is a memory read instead
   * of a getpid() system call. NULL where the kernel lacks it: getpid(). */
  volatile unsigned char *forkmark;
  size_t forkmark_len;
  int rcvbuf;
  esock *socks;
  size_t nsocks;
  unsigned char *rbuf;     /* TCP reads, and UDP where mbuf is missing */
  unsigned char *mbuf;     /* UDP_BATCH x RECV_MAX for recvmmsg, lazily */
  struct mmsghdr msgs[UDP_BATCH];
  struct iovec iov[UDP_BATCH];
  /* Queries for one UDP socket not yet handed to the kernel: the
   * exchange's bytes are valid only until the next call into it, so
   * they are copied and sent together by one sendmmsg (udp_flush). */
  unsigned qsock;
  size_t nq;
  size_t qlen[UDP_BATCH];
  unsigned char qbuf[UDP_BATCH][SEND_SLOT];
};

static void set_err(char *err, size_t errlen, const char *fmt, const char *a)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a);
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

/* "192.0.2.1:53,[2001:db8::1]:5353" through the one nameserver parser. */
static mxr_status parse_servers(const char *csv, mxr_server **out, size_t *n,
                                char *err, size_t errlen)
{
  size_t cap = 1, k = 0;
  const char *p;
  mxr_server *list;
  for (p = csv; *p; p++)
    cap += *p == ',';
  list = mxr_calloc(cap, sizeof *list);
  if (!list)
    return MXR_ENOMEM;
  p = csv;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char why[MXR_MSG_BUF];
    if (mxr_server_parse(p, len, &list[k], why, sizeof why) != MXR_OK) {
      set_err(err, errlen, "%s", why);
      mxr_free(list);
      return MXR_EBADOPT;
    }
    k++;
    if (!end)
      break;
    p = end + 1;
  }
  *out = list;
  *n = k;
  return MXR_OK;
}

mxr_status mxr_engine_conf_check(const char *path, char *err, size_t errlen)
{
  struct stat st;
  if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
    set_err(err, errlen, "%s is not a regular file", path);
    return MXR_EBADOPT;
  }
  return MXR_OK;
}

/* The system's nameservers and options, read by c-ares. A resolv.conf
 * that is not a regular file (a FIFO, a device) is refused: reading it
 * could block forever. */
static mxr_status system_config(mxr_server **out, size_t *n, int *timeout_ms,
                                int *tries, char *err, size_t errlen)
{
  struct ares_addr_port_node *servers = NULL, *s;
  struct ares_options o;
  ares_channel ch;
  mxr_server *list;
  size_t k = 0, cap = 0;
  int rc, mask = 0;

  if (mxr_engine_conf_check(RESOLV_CONF, err, errlen) != MXR_OK)
    return MXR_EBADOPT;
  rc = ares_library_init(ARES_LIB_INIT_ALL);
  if (rc != ARES_SUCCESS) {
    set_err(err, errlen, "c-ares: %s", ares_strerror(rc));
    return rc == ARES_ENOMEM ? MXR_ENOMEM : MXR_ENETWORK;
  }
  rc = ares_init(&ch);
  if (rc != ARES_SUCCESS) {
    set_err(err, errlen, "c-ares: %s", ares_strerror(rc));
    ares_library_cleanup();
    return rc == ARES_ENOMEM ? MXR_ENOMEM : MXR_ENETWORK;
  }
  rc = ares_get_servers_ports(ch, &servers);
  if (rc == ARES_SUCCESS)
    rc = ares_save_options(ch, &o, &mask);
  if (rc != ARES_SUCCESS) {
    set_err(err, errlen, "c-ares: %s", ares_strerror(rc));
    ares_free_data(servers);
    ares_destroy(ch);
    ares_library_cleanup();
    return rc == ARES_ENOMEM ? MXR_ENOMEM : MXR_ENETWORK;
  }
  *timeout_ms = (mask & (ARES_OPT_TIMEOUTMS | ARES_OPT_TIMEOUT)) ? o.timeout : 0;
  *tries = (mask & ARES_OPT_TRIES) ? o.tries : 0;
  ares_destroy_options(&o);
  for (s = servers; s; s = s->next)
    cap++;
  list = mxr_calloc(cap ? cap : 1, sizeof *list);
  for (s = servers; list && s; s = s->next) {
    mxr_server *sv = &list[k];
    if (s->family == AF_INET) {
      sv->addr.family = 4;
      memcpy(sv->addr.bytes, &s->addr.addr4, 4);
    } else if (s->family == AF_INET6) {
      sv->addr.family = 6;
      memcpy(sv->addr.bytes, &s->addr.addr6, 16);
    } else {
      continue;
    }
    sv->port = (uint16_t)(s->udp_port > 0 && s->udp_port < 65536
                              ? s->udp_port : 53);
    k++;
  }
  ares_free_data(servers);
  ares_destroy(ch);
  ares_library_cleanup();
  if (!list)
    return MXR_ENOMEM;
  if (k == 0) { /* what c-ares and glibc do without a resolv.conf */
    list[0].addr.family = 4;
    list[0].addr.bytes[0] = 127;
    list[0].addr.bytes[3] = 1;
    list[0].port = 53;
    k = 1;
  }
  *out = list;
  *n = k;
  return MXR_OK;
}

/* ------------------------------------------------------------------ */
/* sockets                                                             */

static esock *esock_get(mxr_engine *e, unsigned sock)
{
  if (sock >= e->nsocks) {
    size_t ncap = e->nsocks ? e->nsocks : 16, i;
    esock *n;
    while (ncap <= sock)
      ncap *= 2;
    n = mxr_reallocarray(e->socks, ncap, sizeof *n);
    if (!n)
      return NULL;
    for (i = e->nsocks; i < ncap; i++) {
      memset(&n[i], 0, sizeof n[i]);
      n[i].fd = -1;
    }
    e->socks = n;
    e->nsocks = ncap;
  }
  return &e->socks[sock];
}

static void esock_reset(esock *s)
{
  mxr_free(s->wbuf);
  memset(s, 0, sizeof *s);
  s->fd = -1;
}

static void esock_close(mxr_engine *e, esock *s)
{
  if (s->fd >= 0) {
    (void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
  }
  esock_reset(s);
}

static socklen_t sockaddr_of(const mxr_server *sv, struct sockaddr_storage *ss)
{
  memset(ss, 0, sizeof *ss);
  if (sv->addr.family == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *)(void *)ss;
    in->sin_family = AF_INET;
    in->sin_port = htons(sv->port);
    memcpy(&in->sin_addr, sv->addr.bytes, 4);
    return (socklen_t)sizeof *in;
  } else {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(sv->port);
    memcpy(&in6->sin6_addr, sv->addr.bytes, 16);
    return (socklen_t)sizeof *in6;
  }
}

static int watch(mxr_engine *e, esock *s, unsigned sock)
{
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN | (s->connecting || s->wlen ? (uint32_t)EPOLLOUT : 0u);
  ev.data.u64 = sock;
  if (!s->watched) {
    s->watched = 1;
    return epoll_ctl(e->epfd, EPOLL_CTL_ADD, s->fd, &ev);
  }
  return epoll_ctl(e->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

/* A non-blocking socket connected to the server: UDP (so that replies
 * from elsewhere never reach it and ICMP errors are reported on it) or
 * TCP (connect in progress). 0 on success. */
static int open_sock(mxr_engine *e, esock *s, unsigned sock,
                     const mxr_server *sv, int tcp)
{
  struct sockaddr_storage ss;
  socklen_t sl = sockaddr_of(sv, &ss);
  int fd = socket(ss.ss_family,
                  (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
                      SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  s->fd = fd;
  s->tcp = tcp;
  if (!tcp && e->rcvbuf > 0) {
    /* a burst of answers must not overflow the socket: ask for a large
     * buffer (FORCE works with CAP_NET_ADMIN, else up to rmem_max) */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &e->rcvbuf,
                   sizeof e->rcvbuf) != 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &e->rcvbuf,
                       sizeof e->rcvbuf);
  }
  if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
    if (!tcp || errno != EINPROGRESS)
      return -1;
    s->connecting = 1;
  }
  return watch(e, s, sock);
}

/* Write what TCP has buffered; 0, or -1 on a hard error. */
static int tcp_flush(esock *s)
{
  while (s->woff < s->wlen) {
    ssize_t n = send(s->fd, s->wbuf + s->woff, s->wlen - s->woff,
                     MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    s->woff += (size_t)n;
  }
  mxr_free(s->wbuf);
  s->wbuf = NULL;
  s->wlen = s->woff = 0;
  return 0;
}

static int tcp_queue(esock *s, const unsigned char *data, size_t len)
{
  unsigned char *n = mxr_malloc(s->wlen - s->woff + len);
  if (!n)
    return -1;
  if (s->wlen > s->woff)
    memcpy(n, s->wbuf + s->woff, s->wlen - s->woff);
  memcpy(n + (s->wlen - s->woff), data, len);
  s->wlen = s->wlen - s->woff + len;
  s->woff = 0;
  mxr_free(s->wbuf);
  s->wbuf = n;
  return 0;
}

/* One UDP datagram sent on its own; a failure other than a full buffer
 * is an error of the socket (e.g. ECONNREFUSED: an earlier ICMP error).
 * A datagram the kernel could not take is lost like one on the wire: its
 * timeout moves it on. */
static void udp_send1(mxr_engine *e, esock *s, unsigned sock,
                      const unsigned char *data, size_t len, double now)
{
  if (send(s->fd, data, len, 0) < 0 && errno != EAGAIN &&
      errno != EWOULDBLOCK && errno != ENOBUFS && errno != EINTR)
    mxr_xch_sock_error(e->x, sock, MXR_ENETWORK, now);
}

/* Send the queued queries of e->qsock with as few sendmmsg calls as the
 * kernel allows; the same outcomes per datagram as udp_send1. */
static void udp_flush(mxr_engine *e, double now)
{
  size_t n = e->nq, i = 0, k;
  unsigned sock = e->qsock;
  e->nq = 0;
  if (!n || sock >= e->nsocks || e->socks[sock].fd < 0)
    return;
  for (k = 0; k < n; k++) {
    e->iov[k].iov_base = e->qbuf[k];
    e->iov[k].iov_len = e->qlen[k];
    memset(&e->msgs[k], 0, sizeof e->msgs[k]);
    e->msgs[k].msg_hdr.msg_iov = &e->iov[k];
    e->msgs[k].msg_hdr.msg_iovlen = 1;
  }
  while (i < n) {
    int r = sendmmsg(e->socks[sock].fd, e->msgs + i, (unsigned)(n - i), 0);
    if (r > 0) {
      i += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
      /* the exchange gives up the socket and its queries */
      mxr_xch_sock_error(e->x, sock, MXR_ENETWORK, now);
      return;
    }
    i++; /* lost like on the wire */
  }
}

/* Do everything the exchange asks for now. UDP queries to one socket
 * are gathered and sent by one system call; anything else first sends
 * what is gathered, so that the order of operations is kept. */
static void flush_io(mxr_engine *e, double now)
{
  mxr_io io;
  for (;;) {
    while (mxr_xch_io(e->x, &io, now)) {
      esock *s;
      if (e->nq && (io.op != MXR_IO_SEND || io.sock != e->qsock ||
                    e->nq == UDP_BATCH))
        udp_flush(e, now);
      s = esock_get(e, io.sock);
      if (!s) {
        if (io.op != MXR_IO_CLOSE)
          mxr_xch_sock_error(e->x, io.sock, MXR_ENOMEM, now);
        continue;
      }
      switch (io.op) {
      case MXR_IO_OPEN_UDP:
      case MXR_IO_OPEN_TCP:
        esock_close(e, s);
        if (open_sock(e, s, io.sock, io.addr, io.op == MXR_IO_OPEN_TCP) != 0)
          mxr_xch_sock_error(e->x, io.sock, MXR_ENETWORK, now);
        break;
      case MXR_IO_SEND:
        if (s->fd < 0)
          break;
        if (!s->tcp) {
          if (io.len <= SEND_SLOT) {
            memcpy(e->qbuf[e->nq], io.data, io.len);
            e->qlen[e->nq++] = io.len;
            e->qsock = io.sock;
          } else {
            udp_send1(e, s, io.sock, io.data, io.len, now);
          }
        } else if (tcp_queue(s, io.data, io.len) != 0 ||
                   (!s->connecting && tcp_flush(s) != 0) ||
                   watch(e, s, io.sock) != 0) {
          mxr_xch_sock_error(e->x, io.sock, MXR_ENETWORK, now);
        }
        break;
      case MXR_IO_CLOSE:
        esock_close(e, s);
        break;
      }
    }
    if (!e->nq)
      break;
    udp_flush(e, now); /* a failure there may ask for more I/O */
  }
}

/* UDP: up to DGRAMS_PER_EVENT datagrams, UDP_BATCH per recvmmsg call; a
 * short batch means the socket is empty, so no further call finds that
 * out. 0 when done, -1 when mbuf is missing (the caller reads with recv). */
static int udp_read(mxr_engine *e, esock *s, unsigned sock, double now)
{
  size_t k = 0, i;
  if (!e->mbuf && !(e->mbuf = mxr_malloc((size_t)UDP_BATCH * RECV_MAX)))
    return -1;
  while (k < DGRAMS_PER_EVENT) {
    int r;
    for (i = 0; i < UDP_BATCH; i++) {
      e->iov[i].iov_base = e->mbuf + i * RECV_MAX;
      e->iov[i].iov_len = RECV_MAX;
      memset(&e->msgs[i], 0, sizeof e->msgs[i]);
      e->msgs[i].msg_hdr.msg_iov = &e->iov[i];
      e->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    r = recvmmsg(s->fd, e->msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        /* ICMP port/host unreachable on a connected UDP socket */
        mxr_xch_sock_error(e->x, sock, MXR_ENETWORK, now);
      return 0;
    }
    for (i = 0; i < (size_t)r; i++)
      mxr_xch_recv(e->x, sock, e->mbuf + i * RECV_MAX, e->msgs[i].msg_len,
                   now);
    k += (size_t)r;
    if (r < UDP_BATCH)
      return 0;
  }
  return 0;
}

/* Read what is ready on sock and hand it to the exchange. */
static void on_event(mxr_engine *e, unsigned sock, uint32_t ev, double now)
{
  esock *s = sock < e->nsocks ? &e->socks[sock] : NULL;
  int k;
  if (!s || s->fd < 0)
    return;
  if (s->tcp && s->connecting && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
      mxr_xch_sock_error(e->x, sock, MXR_ENETWORK, now);
      return;
    }
    s->connecting = 0;
  }
  if (s->tcp && !s->connecting && s->wlen) {
    if (tcp_flush(s) != 0 || watch(e, s, sock) != 0) {
      mxr_xch_sock_error(e->x, sock, MXR_ENETWORK, now);
      return;
    }
  }
  if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) || (s->tcp && s->connecting))
    return;
  if (!s->tcp && udp_read(e, s, sock, now) == 0)
    return;
  for (k = 0; k < DGRAMS_PER_EVENT && s->fd >= 0; k++) {
    ssize_t n = recv(s->fd, e->rbuf, RECV_MAX, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        /* ICMP port/host unreachable on a connected UDP socket, or a
         * reset TCP connection */
        mxr_xch_sock_error(e->x, sock, MXR_ENETWORK, now);
      return;
    }
    if (n == 0 && s->tcp) { /* the server closed the connection */
      mxr_xch_sock_error(e->x, sock, MXR_ENETWORK, now);
      return;
    }
    mxr_xch_recv(e->x, sock, e->rbuf, (size_t)n, now);
    if (s->tcp)
      return; /* level-triggered: the rest comes with the next event */
  }
}

static void forkmark_init(mxr_engine *e)
{
#ifdef MADV_WIPEONFORK
  long pg = sysconf(_SC_PAGESIZE);
  size_t len = pg > 0 ? (size_t)pg : 4096;
  void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED)
    return;
  if (madvise(m, len, MADV_WIPEONFORK) != 0) {
    munmap(m, len);
    return;
  }
  e->forkmark = m;
  e->forkmark_len = len;
  *e->forkmark = 1;
#else
  (void)e;
#endif
}

/* 1 in a child of the process that made or last adopted e. */
static int forked(const mxr_engine *e)
{
  if (e->forkmark)
    return *e->forkmark == 0;
  return getpid() != e->pid;
}

/* After fork() the child shares the parent's epoll set and sockets: it
 * drops its copies without touching the set and starts afresh. */
static void check_fork(mxr_engine *e)
{
  size_t i;
  if (!forked(e))
    return;
  e->pid = getpid();
  if (e->forkmark)
    *e->forkmark = 1;
  close(e->epfd);
  for (i = 0; i < e->nsocks; i++) {
    if (e->socks[i].fd >= 0)
      close(e->socks[i].fd);
    esock_reset(&e->socks[i]);
  }
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  mxr_xch_forget_sockets(e->x, mxr_now());
  if (e->epfd >= 0)
    flush_io(e, mxr_now());
}

/* ------------------------------------------------------------------ */
/* public API                                                          */

mxr_status mxr_engine_new(const mxr_engine_config *cfg, mxr_engine **out,
                          char *err, size_t errlen)
{
  mxr_engine_config dflt;
  mxr_xch_config xc;
  mxr_server *servers = NULL;
  size_t nservers = 0;
  int sys_timeout = 0, sys_tries = 0;
  mxr_engine *e = NULL;
  mxr_status st;

  *out = NULL;
  if (!cfg) {
    memset(&dflt, 0, sizeof dflt);
    cfg = &dflt;
  }
  if (cfg->timeout_ms < 0 || cfg->tries < 0 || cfg->rcvbuf < 0 ||
      !(cfg->health >= 0)) {
    set_err(err, errlen, "%s", "negative timeout, tries, rcvbuf or health");
    return MXR_EBADOPT;
  }
  if (cfg->server_list) {
    if (cfg->nservers == 0) {
      set_err(err, errlen, "%s", "empty nameserver list");
      return MXR_EBADOPT;
    }
    servers = mxr_calloc(cfg->nservers, sizeof *servers);
    if (!servers)
      return MXR_ENOMEM;
    memcpy(servers, cfg->server_list, cfg->nservers * sizeof *servers);
    nservers = cfg->nservers;
    st = MXR_OK;
  } else if (cfg->servers) {
    if (!cfg->servers[0]) {
      set_err(err, errlen, "%s", "empty nameserver list");
      return MXR_EBADOPT;
    }
    st = parse_servers(cfg->servers, &servers, &nservers, err, errlen);
  } else {
    st = system_config(&servers, &nservers, &sys_timeout, &sys_tries, err,
                       errlen);
  }
  if (st != MXR_OK)
    return st;
  e = mxr_calloc(1, sizeof *e);
  if (!e || !(e->rbuf = mxr_malloc(RECV_MAX))) {
    st = MXR_ENOMEM;
    goto fail;
  }
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) {
    set_err(err, errlen, "epoll_create1: %s", strerror(errno));
    st = MXR_ENETWORK;
    goto fail;
  }
  memset(&xc, 0, sizeof xc);
  xc.servers = servers;
  xc.nservers = nservers;
  xc.timeout = (cfg->timeout_ms ? cfg->timeout_ms : sys_timeout) / 1000.0;
  xc.tries = cfg->tries ? cfg->tries : sys_tries;
  xc.max_inflight = cfg->max_inflight;
  xc.udp_queries = cfg->udp_queries;
  xc.health = cfg->health;
  xc.case_randomize = cfg->case_randomize;
  xc.trace = cfg->trace;
  st = mxr_xch_new(&xc, &e->x, err, errlen);
  if (st != MXR_OK)
    goto fail;
  e->rcvbuf = cfg->rcvbuf ? cfg->rcvbuf : 4 << 20;
  e->pid = getpid();
  forkmark_init(e);
  mxr_free(servers);
  *out = e;
  return MXR_OK;
fail:
  if (e) {
    if (e->epfd > 0)
      close(e->epfd);
    mxr_free(e->rbuf);
    mxr_free(e);
  }
  mxr_free(servers);
  return st;
}

void mxr_engine_free(mxr_engine *e)
{
  size_t i;
  if (!e)
    return;
  if (forked(e)) { /* a child: its copies only */
    for (i = 0; i < e->nsocks; i++)
      if (e->socks[i].fd >= 0)
        close(e->socks[i].fd);
  } else {
    for (i = 0; i < e->nsocks; i++)
      esock_close(e, &e->socks[i]);
  }
  for (i = 0; i < e->nsocks; i++)
    mxr_free(e->socks[i].wbuf);
  mxr_xch_free(e->x);
  if (e->epfd >= 0)
    close(e->epfd);
  mxr_free(e->socks);
  mxr_free(e->rbuf);
  mxr_free(e->mbuf);
  if (e->forkmark)
    munmap((void *)(uintptr_t)e->forkmark, e->forkmark_len);
  mxr_free(e);
}

int mxr_engine_fd(const mxr_engine *e)
{
  check_fork((mxr_engine *)(uintptr_t)e);
  return e->epfd;
}

size_t mxr_engine_pending(const mxr_engine *e) { return mxr_xch_pending(e->x); }

double mxr_engine_timeout(mxr_engine *e)
{
  check_fork(e);
  return mxr_xch_timeout(e->x, mxr_now());
}

mxr_status mxr_engine_add(mxr_engine *e, mxr_res *r, void *ud, mxr_job **job)
{
  mxr_xjob *j = NULL;
  double now = mxr_now();
  mxr_status st;
  *job = NULL;
  check_fork(e);
  st = mxr_xch_add(e->x, r, ud, &j, now);
  if (st != MXR_OK)
    return st;
  *job = (mxr_job *)(void *)j;
  flush_io(e, now);
  return MXR_OK;
}

void mxr_engine_remove(mxr_engine *e, mxr_job *job)
{
  if (!e || !job)
    return;
  mxr_xch_remove(e->x, (mxr_xjob *)(void *)job);
  if (!forked(e))
    flush_io(e, mxr_now());
}

void mxr_engine_cancel(mxr_engine *e, mxr_job *job)
{
  if (!e || !job)
    return;
  mxr_xch_cancel(e->x, (mxr_xjob *)(void *)job);
  if (!forked(e))
    flush_io(e, mxr_now());
}

int mxr_engine_step(mxr_engine *e, double wait)
{
  struct epoll_event evs[EVENTS];
  int ms = 0, n, i, round;
  double now;

  check_fork(e);
  if (wait > 0) {
    double t = mxr_xch_timeout(e->x, mxr_now());
    if (t >= 0 && t < wait)
      wait = t;
    /* round up so that a timer due in 0.4 ms is not a busy loop */
    ms = wait > 2147483.0 ? 2147483647 : (int)(wait * 1000.0 + 0.999);
  }
  for (round = 0; round < 16; round++) {
    n = e->epfd >= 0 ? epoll_wait(e->epfd, evs, EVENTS, round == 0 ? ms : 0)
                     : 0;
    if (n < 0)
      n = 0; /* EINTR: process timers, return */
    now = mxr_now();
    for (i = 0; i < n; i++)
      on_event(e, (unsigned)evs[i].data.u64, evs[i].events, now);
    flush_io(e, now);
    if (n < EVENTS)
      break;
  }
  now = mxr_now();
  mxr_xch_tick(e->x, now);
  flush_io(e, now);
  return (int)mxr_xch_ndone(e->x);
}

void *mxr_engine_next_done(mxr_engine *e) { return mxr_xch_next_done(e->x); }

void mxr_engine_stats(const mxr_engine *e, mxr_xch_stats *out)
{
  mxr_xch_get_stats(e->x, out);
}

uint64_t mxr_engine_server_failures(const mxr_engine *e, unsigned server)
{
  return mxr_xch_server_failures(e->x, server);
}

size_t mxr_engine_server_count(const mxr_engine *e)
{
  return mxr_xch_server_count(e->x);
}

const mxr_server *mxr_engine_server(const mxr_engine *e, unsigned server)
{
  return mxr_xch_server(e->x, server);
}

int mxr_engine_next_event(mxr_engine *e, mxr_xch_event *out)
{
  return mxr_xch_next_event(e->x, out);
}
