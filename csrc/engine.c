/*
 * engine.c — the c-ares transport: one channel, its sockets in one epoll
 * set, many resolutions in flight at once.
 *
 * Invariants:
 *  - c-ares callbacks (query_cb) only feed answers into the resolution and
 *    mark its job dirty; queries are sent by pump() after c-ares returned.
 *  - every c-ares query owns one qctx; a qctx outlives its job when the
 *    job is removed first (ctx->job = NULL), and is freed by its callback,
 *    which c-ares always calls exactly once (ARES_EDESTRUCTION at the end).
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/time.h>
#include <unistd.h>

typedef struct qctx {
  struct qctx *prev, *next; /* in job->ctxs */
  mxr_job *job;             /* NULL once the job went away */
  unsigned slot;
} qctx;

struct mxr_job {
  mxr_engine *e;
  mxr_res *res;
  void *ud;
  mxr_job *prev, *next;   /* e->jobs: every attached job */
  mxr_job *dnext;         /* e->done queue */
  mxr_job *wnext;         /* e->dirty list */
  qctx *ctxs;             /* queries in flight */
  int queued;             /* in the done queue (or collected) */
  int dirty;
};

struct mxr_engine {
  ares_channel ch;
  int epfd;
  mxr_job *jobs;
  mxr_job *dhead, *dtail; /* done, not yet collected */
  mxr_job *dirty;
  size_t pending;         /* attached and not done */
  int ndone;              /* in the done queue */
};

static void set_err(char *err, size_t errlen, const char *fmt, const char *a)
{
  if (err && errlen)
    snprintf(err, errlen, fmt, a);
}

/* ARES_OPT_SOCK_STATE_CB: mirror c-ares' interest in epoll. */
static void sock_state_cb(void *data, ares_socket_t fd, int readable,
                          int writable)
{
  mxr_engine *e = data;
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.data.fd = fd;
  ev.events = (readable ? (uint32_t)EPOLLIN : 0u) |
              (writable ? (uint32_t)EPOLLOUT : 0u);
  if (!readable && !writable) {
    (void)epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, &ev);
    return;
  }
  if (epoll_ctl(e->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
    (void)epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static mxr_status map_ares(int status)
{
  switch (status) {
  case ARES_ENODATA: return MXR_ENODATA;
  case ARES_ENOTFOUND: return MXR_ENXDOMAIN;
  case ARES_ESERVFAIL: return MXR_ESERVFAIL;
  case ARES_EREFUSED: return MXR_EREFUSED;
  case ARES_ETIMEOUT: return MXR_ETIMEOUT;
  case ARES_ENOMEM: return MXR_ENOMEM;
  case ARES_ECANCELLED:
  case ARES_EDESTRUCTION: return MXR_ECANCELLED;
  case ARES_EFORMERR:
  case ARES_EBADRESP:
  case ARES_ENOTIMP:
  case ARES_EBADNAME:
  case ARES_EBADQUERY: return MXR_EFORMERR;
  default: return MXR_ENETWORK;
  }
}

static void mark_dirty(mxr_job *j)
{
  if (!j->dirty) {
    j->dirty = 1;
    j->wnext = j->e->dirty;
    j->e->dirty = j;
  }
}

/* Queue a job whose resolution is done (once). */
static void check_done(mxr_job *j)
{
  mxr_engine *e = j->e;
  if (j->queued || !mxr_res_done(j->res))
    return;
  j->queued = 1;
  j->dnext = NULL;
  if (e->dtail)
    e->dtail->dnext = j;
  else
    e->dhead = j;
  e->dtail = j;
  e->pending--;
  e->ndone++;
}

static void ctx_unlink(qctx *c)
{
  mxr_job *j = c->job;
  if (!j)
    return;
  if (c->prev)
    c->prev->next = c->next;
  else
    j->ctxs = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->job = NULL;
}

/* c-ares callback: record, never send, never call out. */
static void query_cb(void *arg, int status, int timeouts, unsigned char *abuf,
                     int alen)
{
  qctx *c = arg;
  mxr_job *j = c->job;
  (void)timeouts;
  if (j) {
    ctx_unlink(c);
    if (abuf && alen > 0 && status != ARES_EDESTRUCTION &&
        status != ARES_ECANCELLED)
      mxr_res_answer(j->res, c->slot, abuf, (size_t)alen);
    else
      mxr_res_fail(j->res, c->slot, map_ares(status));
    mark_dirty(j);
    check_done(j);
  }
  free(c);
}

/* Send every query the resolution asks for. */
static void pump(mxr_job *j)
{
  mxr_query q;
  char esc[2 * MXR_NAME_BUF];
  while (mxr_res_next(j->res, &q)) {
    qctx *c = calloc(1, sizeof *c);
    if (!c) {
      mxr_res_fail(j->res, q.slot, MXR_ENOMEM);
      continue;
    }
    c->job = j;
    c->slot = q.slot;
    c->next = j->ctxs;
    if (j->ctxs)
      j->ctxs->prev = c;
    j->ctxs = c;
    /* ares_query: the name as given, no search list, no ndots. It may
     * call query_cb before returning (e.g. no usable server). The name
     * is escaped for c-ares as mxr_packet_query does for the other
     * transport. */
    mxr_ares_name(q.name, esc);
    ares_query(j->e->ch, esc, ns_c_in, q.type, query_cb, c);
  }
  check_done(j);
}

static void flush_dirty(mxr_engine *e)
{
  while (e->dirty) {
    mxr_job *j = e->dirty;
    e->dirty = j->wnext;
    j->dirty = 0;
    j->wnext = NULL;
    pump(j);
  }
}

mxr_status mxr_engine_new(const mxr_engine_config *cfg, mxr_engine **out,
                          char *err, size_t errlen)
{
  struct ares_options o;
  struct in_addr none;
  int mask, rc;
  mxr_engine *e;
  mxr_engine_config dflt;

  *out = NULL;
  if (!cfg) {
    memset(&dflt, 0, sizeof dflt);
    cfg = &dflt;
  }
  if (cfg->timeout_ms < 0 || cfg->tries < 0 || cfg->rcvbuf < 0) {
    set_err(err, errlen, "%s", "negative timeout, tries or rcvbuf");
    return MXR_EBADOPT;
  }
  e = calloc(1, sizeof *e);
  if (!e)
    return MXR_ENOMEM;
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  if (e->epfd < 0) {
    set_err(err, errlen, "epoll_create1: %s", strerror(errno));
    free(e);
    return MXR_ENETWORK;
  }
  rc = ares_library_init(ARES_LIB_INIT_ALL);
  if (rc != ARES_SUCCESS) {
    set_err(err, errlen, "c-ares: %s", ares_strerror(rc));
    close(e->epfd);
    free(e);
    return rc == ARES_ENOMEM ? MXR_ENOMEM : MXR_ENETWORK;
  }
  memset(&o, 0, sizeof o);
  /* EDNS with 1232 octets (the DNS flag day size); larger answers come
   * with TC and c-ares retries them over TCP. No STAYOPEN: an idle
   * channel closes its UDP socket, so the source port changes between
   * bursts and a forged answer needs more than the 16-bit ID (c-ares
   * 1.18 has no per-socket query limit). NOCHECKRESP hands us
   * SERVFAIL/REFUSED replies as sent, so packet.c classifies them
   * precisely (c-ares 1.18 would otherwise report a refused query as a
   * connection failure). */
  o.flags = ARES_FLAG_EDNS | ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP;
  o.ednspsz = 1232;
  o.timeout = cfg->timeout_ms ? cfg->timeout_ms : 2000;
  o.tries = cfg->tries ? cfg->tries : 3;
  o.sock_state_cb = sock_state_cb;
  o.sock_state_cb_data = e;
  /* A small receive buffer drops bursts of answers and stalls on
   * retries: ask for a large one. */
  o.socket_receive_buffer_size = cfg->rcvbuf ? cfg->rcvbuf : 4 << 20;
  mask = ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ | ARES_OPT_TIMEOUTMS |
         ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF;
  if (cfg->servers) {
    /* Explicit nameservers: give c-ares every setting it would otherwise
     * take from /etc/resolv.conf, so that file plays no part (the
     * servers themselves are set below, with ports). */
    static char lookups[] = "b";
    memset(&none, 0, sizeof none);
    o.servers = &none;
    o.nservers = 1;
    o.ndots = 1;
    o.domains = NULL;
    o.ndomains = 0;
    o.lookups = lookups;
    o.sortlist = NULL;
    o.nsort = 0;
    mask |= ARES_OPT_SERVERS | ARES_OPT_NDOTS | ARES_OPT_DOMAINS |
            ARES_OPT_LOOKUPS | ARES_OPT_SORTLIST | ARES_OPT_NOROTATE;
    if (!cfg->servers[0]) {
      set_err(err, errlen, "%s", "empty nameserver list");
      close(e->epfd);
      ares_library_cleanup();
      free(e);
      return MXR_EBADOPT;
    }
  }
  rc = ares_init_options(&e->ch, &o, mask);
  if (rc != ARES_SUCCESS) {
    set_err(err, errlen, "c-ares: %s", ares_strerror(rc));
    close(e->epfd);
    ares_library_cleanup();
    free(e);
    return rc == ARES_ENOMEM ? MXR_ENOMEM : MXR_ENETWORK;
  }
  if (cfg->servers) {
    rc = ares_set_servers_ports_csv(e->ch, cfg->servers);
    if (rc != ARES_SUCCESS) {
      set_err(err, errlen, "bad nameserver list '%s'", cfg->servers);
      ares_destroy(e->ch);
      close(e->epfd);
      ares_library_cleanup();
      free(e);
      return rc == ARES_ENOMEM ? MXR_ENOMEM : MXR_EBADOPT;
    }
  }
  *out = e;
  return MXR_OK;
}

static void job_detach(mxr_job *j)
{
  mxr_engine *e = j->e;
  qctx *c;
  while ((c = j->ctxs) != NULL)
    ctx_unlink(c);
  if (!j->queued)
    e->pending--;
  if (j->prev)
    j->prev->next = j->next;
  else
    e->jobs = j->next;
  if (j->next)
    j->next->prev = j->prev;
  if (j->queued) { /* drop from the done queue if still there */
    mxr_job **pp = &e->dhead, *last = NULL;
    while (*pp && *pp != j) {
      last = *pp;
      pp = &(*pp)->dnext;
    }
    if (*pp) {
      *pp = j->dnext;
      if (e->dtail == j)
        e->dtail = last;
      e->ndone--;
    }
  }
  if (j->dirty) {
    mxr_job **pp = &e->dirty;
    while (*pp && *pp != j)
      pp = &(*pp)->wnext;
    if (*pp)
      *pp = j->wnext;
  }
}

void mxr_engine_free(mxr_engine *e)
{
  if (!e)
    return;
  while (e->jobs) {
    mxr_job *j = e->jobs;
    mxr_res_cancel(j->res, MXR_ECANCELLED);
    job_detach(j);
    free(j);
  }
  /* Runs every remaining callback with ARES_EDESTRUCTION: frees ctxs. */
  ares_destroy(e->ch);
  ares_library_cleanup();
  close(e->epfd);
  free(e);
}

int mxr_engine_fd(const mxr_engine *e) { return e->epfd; }

size_t mxr_engine_pending(const mxr_engine *e) { return e->pending; }

double mxr_engine_timeout(mxr_engine *e)
{
  struct timeval tv, *tvp;
  if (e->dhead || e->dirty)
    return 0.0;
  if (e->pending == 0)
    return -1.0;
  tvp = ares_timeout(e->ch, NULL, &tv);
  if (!tvp)
    return -1.0;
  return (double)tvp->tv_sec + (double)tvp->tv_usec / 1e6;
}

mxr_status mxr_engine_add(mxr_engine *e, mxr_res *r, void *ud, mxr_job **out)
{
  mxr_job *j;
  *out = NULL;
  if (!r)
    return MXR_EBADOPT;
  j = calloc(1, sizeof *j);
  if (!j)
    return MXR_ENOMEM;
  j->e = e;
  j->res = r;
  j->ud = ud;
  j->next = e->jobs;
  if (e->jobs)
    e->jobs->prev = j;
  e->jobs = j;
  e->pending++;
  *out = j;
  pump(j);
  return MXR_OK;
}

void mxr_engine_remove(mxr_engine *e, mxr_job *j)
{
  if (!e || !j)
    return;
  if (!mxr_res_done(j->res))
    mxr_res_cancel(j->res, MXR_ECANCELLED);
  job_detach(j);
  free(j);
}

void mxr_engine_cancel(mxr_engine *e, mxr_job *j)
{
  qctx *c;
  if (!e || !j)
    return;
  if (!mxr_res_done(j->res))
    mxr_res_cancel(j->res, MXR_ECANCELLED);
  /* its queries in flight are ignored from now on */
  while ((c = j->ctxs) != NULL)
    ctx_unlink(c);
  check_done(j);
}

int mxr_engine_step(mxr_engine *e, double wait)
{
  struct epoll_event evs[64];
  int ms = 0, n, i, round;

  if (wait > 0 && !e->dhead && !e->dirty) {
    double t = mxr_engine_timeout(e);
    if (t >= 0 && t < wait)
      wait = t;
    /* round up so that a timer due in 0.4 ms is not a busy loop */
    ms = wait > 2147483.0 ? 2147483647 : (int)(wait * 1000.0 + 0.999);
  }
  for (round = 0; round < 16; round++) {
    n = epoll_wait(e->epfd, evs, 64, round == 0 ? ms : 0);
    if (n < 0)
      n = 0; /* EINTR: process timers, return */
    for (i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      uint32_t ev = evs[i].events;
      ares_socket_t rfd = (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))
                              ? fd : ARES_SOCKET_BAD;
      ares_socket_t wfd = (ev & EPOLLOUT) ? fd : ARES_SOCKET_BAD;
      ares_process_fd(e->ch, rfd, wfd);
    }
    flush_dirty(e);
    if (n < 64)
      break;
  }
  /* Timeouts (ares_process_fd also handles them on every call). */
  ares_process_fd(e->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  flush_dirty(e);
  return e->ndone;
}

void *mxr_engine_next_done(mxr_engine *e)
{
  mxr_job *j = e->dhead;
  if (!j)
    return NULL;
  e->dhead = j->dnext;
  if (!e->dhead)
    e->dtail = NULL;
  j->dnext = NULL;
  e->ndone--;
  return j->ud;
}
