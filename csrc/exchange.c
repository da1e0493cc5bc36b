/*
 * exchange.c — the exchange (DESIGN 9): every rule of talking to
 * nameservers, sans I/O, shared by every transport.
 *
 * Objects:
 *   job    one attached resolution (mxr_xjob); pulls its queries with
 *          mxr_res_next, gets answers through mxr_res_feed/_answer/_fail.
 *   query  one lookup on the network (xq): a (name, type) asked of the
 *          servers in turn; several jobs may wait for it (waiters, xw):
 *          the in-flight merge.
 *   socket a UDP socket connected to one server (carries at most
 *          udp_queries queries, then retired) or a TCP connection
 *          carrying one query (after a truncated UDP answer).
 *
 * Invariants:
 *  - every list is doubly linked: finishing, cancelling and removing a
 *    job or a query is O(1) per waiter (no scans of queues);
 *  - the per-try timeout is constant, so the in-flight queries sorted by
 *    deadline are a FIFO (appended in send order): timers are O(1);
 *  - an answer is accepted only on the socket its query was sent on,
 *    with an ID in flight there and the same question; anything else is
 *    dropped and the query goes on waiting;
 *  - a socket number is reused only after its MXR_IO_CLOSE went out;
 *  - resolutions are called into (mxr_res_feed/_answer/_fail) but never call
 *    back into the exchange.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT 2.0
#define DEFAULT_TRIES 3
#define DEFAULT_MAX_INFLIGHT 256
#define DEFAULT_UDP_QUERIES 32
#define DEFAULT_HEALTH 30.0
/* RFC 6891 6.2.5 and the DNS flag day 2020: 1232 octets avoids IP
 * fragmentation on any path; larger answers come with TC. */
#define EDNS_SIZE 1232
#define RAND_BLOCK 4096
#define EVENT_MAX 4096
#define TCP_MAX (65535 + 2)
#define FREE_MAX 256 /* finished queries and waiters kept for reuse */

enum { SK_FREE = 0, SK_OPEN, SK_CLOSING };
/* How telling a failure is: the plan fails with the best one seen. */
enum { RANK_NONE = -1, RANK_TIMEOUT = 0, RANK_NETWORK, RANK_MALFORMED,
       RANK_RCODE };

typedef struct xq xq;
typedef struct xw xw;

/* A waiter: one job's slot waiting for a query's outcome. */
struct xw {
  xq *q;
  mxr_xjob *job;
  unsigned slot;
  xw *qprev, *qnext; /* q->waiters */
  xw *jprev, *jnext; /* job->waiters */
};

struct xq {
  char name[MXR_NAME_BUF]; /* normalised: the merge key with type */
  uint16_t type;
  uint16_t id;
  unsigned attempt; /* tries made: server q->order[attempt % nservers] */
  unsigned server;
  int tcp;          /* current try over TCP */
  int finishing;    /* its waiters are being told: do not drop it */
  long sock;        /* -1: none */
  xq *skprev, *sknext; /* socket's queries */
  xq *sqprev, *sqnext; /* send queue */
  int in_sendq;
  xq *dlprev, *dlnext; /* deadline FIFO */
  int in_dl;
  double deadline, sent_at;
  xq *hnext;           /* merge hash chain */
  unsigned hash;
  xw *waiters;
  int best_rank;
  mxr_status best;
  unsigned char *best_pkt; /* the reply behind best, when it has one */
  size_t best_len;
  unsigned char *buf; /* 2-octet TCP length, then the DNS message */
  size_t bufcap;      /* octets allocated at buf (kept on the free list) */
  size_t len;         /* of the DNS message */
  size_t qname_len;   /* wire question name at buf + 2 + 12 */
  unsigned order[1];  /* nservers entries (allocated with the query) */
};

typedef struct xsock {
  int state;
  int tcp;
  int retired;       /* takes no new queries; closed once empty */
  unsigned server;
  unsigned used;     /* queries sent on it */
  size_t inflight;
  xq *qhead;
  unsigned char *rbuf; /* TCP reassembly */
  size_t rlen;
  long free_next;
} xsock;

typedef struct xserver {
  mxr_server addr;
  double failed_until; /* asked last until then (server health) */
  long udp;            /* socket taking new queries, or -1 */
  uint64_t failures;
} xserver;

struct mxr_xjob {
  mxr_xch *x;
  mxr_res *res;
  void *ud;
  mxr_xjob *prev, *next;   /* x->jobs */
  mxr_xjob *rprev, *rnext; /* x->run[rq]: may have queries to pull */
  mxr_xjob *dprev, *dnext; /* x->done queue */
  int runnable, done, in_dq;
  int rq;                  /* the run queue it is in: 0 started, 1 new */
  int started;             /* has asked a query */
  xw *waiters;
};

typedef struct ctl {
  mxr_io_op op;
  unsigned sock;
} ctl;

struct mxr_xch {
  xserver *servers;
  size_t nservers;
  double timeout, health;
  unsigned tries, udp_queries;
  size_t max_inflight;
  int case_randomize, trace;

  mxr_xjob *jobs;
  /* jobs with queries to pull: [0] plans under way (their follow-up
   * lookups go first), [1] plans not started yet: excess plans wait
   * their turn, and a started plan is never held up by later ones */
  mxr_xjob *rhead[2], *rtail[2];
  mxr_xjob *dhead, *dtail;
  size_t pending, ndone;

  xq **hash;
  size_t hsize, nq; /* nq: queries alive (in flight) */

  xq *sqhead, *sqtail; /* waiting to be sent */
  xq *dlhead, *dltail; /* in flight, by deadline */

  xsock *socks;
  size_t nsocks;
  long free_sock;

  /* finished queries and waiters kept for reuse (at most FREE_MAX
   * each): no malloc per lookup in the steady state */
  xq *free_q;
  xw *free_w;
  size_t nfree_q, nfree_w;

  ctl *ctls; /* ring of opens and closes */
  size_t ccap, chead, clen;

  unsigned char rnd[RAND_BLOCK];
  size_t rpos;

  mxr_xch_event *events; /* ring */
  size_t ehead, elen;

  mxr_xch_stats stats;
};

/* ------------------------------------------------------------------ */
/* time, randomness                                                    */

double mxr_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One random octet; -1 if the OS has none to give. */
static int rnd8(mxr_xch *x)
{
  if (x->rpos >= sizeof x->rnd) {
    if (mxr_os_random(x->rnd, sizeof x->rnd) != 0)
      return -1;
    x->rpos = 0;
  }
  return x->rnd[x->rpos++];
}

/* A uniform 16-bit value (two independent octets); -1 on failure. */
static long rnd16(mxr_xch *x)
{
  int a = rnd8(x), b = a < 0 ? -1 : rnd8(x);
  if (a < 0 || b < 0)
    return -1;
  return (long)((unsigned)a << 8 | (unsigned)b);
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static uint16_t get16(const unsigned char *p)
{
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static void set_err(char *err, size_t errlen, const char *msg)
{
  if (err && errlen)
    snprintf(err, errlen, "%s", msg);
}

static unsigned name_hash(const char *s, uint16_t type)
{
  unsigned h = 2166136261u ^ type; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static void push_event(mxr_xch *x, const xq *q, mxr_status st, int rcode,
                       double now)
{
  mxr_xch_event *e;
  if (!x->trace)
    return;
  if (!x->events) {
    x->events = mxr_calloc(EVENT_MAX, sizeof *x->events);
    if (!x->events)
      return; /* tracing is best effort */
  }
  if (x->elen == EVENT_MAX) { /* full: the oldest goes */
    x->ehead = (x->ehead + 1) % EVENT_MAX;
    x->elen--;
  }
  e = &x->events[(x->ehead + x->elen) % EVENT_MAX];
  x->elen++;
  snprintf(e->name, sizeof e->name, "%s", q->name);
  e->type = q->type;
  e->server = q->server;
  e->tcp = q->tcp;
  e->status = st;
  e->rcode = rcode;
  e->rtt = now - q->sent_at;
}

/* ------------------------------------------------------------------ */
/* lists                                                               */

static void run_push(mxr_xjob *j)
{
  mxr_xch *x = j->x;
  int k = j->started ? 0 : 1;
  if (j->runnable || j->done)
    return;
  j->runnable = 1;
  j->rq = k;
  j->rnext = NULL;
  j->rprev = x->rtail[k];
  if (x->rtail[k])
    x->rtail[k]->rnext = j;
  else
    x->rhead[k] = j;
  x->rtail[k] = j;
}

static void run_unlink(mxr_xjob *j)
{
  mxr_xch *x = j->x;
  if (!j->runnable)
    return;
  if (j->rprev)
    j->rprev->rnext = j->rnext;
  else
    x->rhead[j->rq] = j->rnext;
  if (j->rnext)
    j->rnext->rprev = j->rprev;
  else
    x->rtail[j->rq] = j->rprev;
  j->rprev = j->rnext = NULL;
  j->runnable = 0;
}

static void dq_unlink(mxr_xjob *j)
{
  mxr_xch *x = j->x;
  if (!j->in_dq)
    return;
  if (j->dprev)
    j->dprev->dnext = j->dnext;
  else
    x->dhead = j->dnext;
  if (j->dnext)
    j->dnext->dprev = j->dprev;
  else
    x->dtail = j->dprev;
  j->dprev = j->dnext = NULL;
  j->in_dq = 0;
  x->ndone--;
}

static void sendq_unlink(mxr_xch *x, xq *q)
{
  if (!q->in_sendq)
    return;
  if (q->sqprev)
    q->sqprev->sqnext = q->sqnext;
  else
    x->sqhead = q->sqnext;
  if (q->sqnext)
    q->sqnext->sqprev = q->sqprev;
  else
    x->sqtail = q->sqprev;
  q->sqprev = q->sqnext = NULL;
  q->in_sendq = 0;
}

static void sendq_push(mxr_xch *x, xq *q)
{
  q->sqnext = NULL;
  q->sqprev = x->sqtail;
  if (x->sqtail)
    x->sqtail->sqnext = q;
  else
    x->sqhead = q;
  x->sqtail = q;
  q->in_sendq = 1;
}

static void dl_unlink(mxr_xch *x, xq *q)
{
  if (!q->in_dl)
    return;
  if (q->dlprev)
    q->dlprev->dlnext = q->dlnext;
  else
    x->dlhead = q->dlnext;
  if (q->dlnext)
    q->dlnext->dlprev = q->dlprev;
  else
    x->dltail = q->dlprev;
  q->dlprev = q->dlnext = NULL;
  q->in_dl = 0;
}

/* Deadlines are now + a constant: appending keeps the list sorted (a
 * caller's clock going backwards only makes a deadline late). */
static void dl_push(mxr_xch *x, xq *q, double deadline)
{
  if (x->dltail && x->dltail->deadline > deadline)
    deadline = x->dltail->deadline;
  q->deadline = deadline;
  q->dlnext = NULL;
  q->dlprev = x->dltail;
  if (x->dltail)
    x->dltail->dlnext = q;
  else
    x->dlhead = q;
  x->dltail = q;
  q->in_dl = 1;
}

static void hash_unlink(mxr_xch *x, xq *q)
{
  xq **pp = &x->hash[q->hash & (x->hsize - 1)];
  while (*pp && *pp != q)
    pp = &(*pp)->hnext;
  if (*pp)
    *pp = q->hnext;
  q->hnext = NULL;
}

static xq *hash_find(mxr_xch *x, const char *name, uint16_t type, unsigned h)
{
  xq *q = x->hash[h & (x->hsize - 1)];
  for (; q; q = q->hnext)
    if (q->hash == h && q->type == type && strcmp(q->name, name) == 0)
      return q;
  return NULL;
}

/* Keep chains short: double the table when it is fuller than 1. */
static void hash_insert(mxr_xch *x, xq *q)
{
  size_t b;
  if (x->nq >= x->hsize) {
    size_t nsize = x->hsize * 2, i;
    xq **nh = mxr_calloc(nsize, sizeof *nh);
    if (nh) { /* on OOM, chains just grow longer */
      for (i = 0; i < x->hsize; i++) {
        xq *p = x->hash[i], *n;
        for (; p; p = n) {
          n = p->hnext;
          p->hnext = nh[p->hash & (nsize - 1)];
          nh[p->hash & (nsize - 1)] = p;
        }
      }
      mxr_free(x->hash);
      x->hash = nh;
      x->hsize = nsize;
    }
  }
  b = q->hash & (x->hsize - 1);
  q->hnext = x->hash[b];
  x->hash[b] = q;
}

/* ------------------------------------------------------------------ */
/* sockets                                                             */

static int ctl_push(mxr_xch *x, mxr_io_op op, unsigned sock)
{
  if (x->clen == x->ccap) {
    size_t ncap = x->ccap ? x->ccap * 2 : 16, i;
    ctl *n = mxr_reallocarray(NULL, ncap, sizeof *n);
    if (!n)
      return -1;
    for (i = 0; i < x->clen; i++)
      n[i] = x->ctls[(x->chead + i) % x->ccap];
    mxr_free(x->ctls);
    x->ctls = n;
    x->ccap = ncap;
    x->chead = 0;
  }
  x->ctls[(x->chead + x->clen) % x->ccap].op = op;
  x->ctls[(x->chead + x->clen) % x->ccap].sock = sock;
  x->clen++;
  return 0;
}

/* A new socket to server (MXR_IO_OPEN_* queued); -1 on OOM. */
static long sock_new(mxr_xch *x, unsigned server, int tcp)
{
  long n;
  xsock *s;
  if (x->free_sock < 0) {
    size_t ncap = x->nsocks ? x->nsocks * 2 : 8, i;
    xsock *ns = mxr_reallocarray(x->socks, ncap, sizeof *ns);
    if (!ns)
      return -1;
    x->socks = ns;
    for (i = x->nsocks; i < ncap; i++) {
      memset(&ns[i], 0, sizeof ns[i]);
      ns[i].free_next = i + 1 < ncap ? (long)(i + 1) : x->free_sock;
    }
    x->free_sock = (long)x->nsocks;
    x->nsocks = ncap;
  }
  n = x->free_sock;
  s = &x->socks[n];
  if (ctl_push(x, tcp ? MXR_IO_OPEN_TCP : MXR_IO_OPEN_UDP, (unsigned)n) != 0)
    return -1;
  x->free_sock = s->free_next;
  memset(s, 0, sizeof *s);
  s->state = SK_OPEN;
  s->tcp = tcp;
  s->retired = tcp; /* a TCP connection carries one query */
  s->server = server;
  s->free_next = -1;
  if (!tcp)
    x->stats.sockets++;
  return n;
}

static xsock *sock_get(mxr_xch *x, unsigned sock)
{
  if (sock >= x->nsocks || x->socks[sock].state != SK_OPEN)
    return NULL;
  return &x->socks[sock];
}

/* No more queries on it; MXR_IO_CLOSE once its last one has left. */
static void sock_retire(mxr_xch *x, long n)
{
  xsock *s = &x->socks[n];
  s->retired = 1;
  if (!s->tcp && x->servers[s->server].udp == n)
    x->servers[s->server].udp = -1;
  if (s->inflight == 0 && s->state == SK_OPEN) {
    if (ctl_push(x, MXR_IO_CLOSE, (unsigned)n) != 0)
      return; /* OOM: left open, harmless; closed at mxr_xch_free */
    s->state = SK_CLOSING;
  }
}

static void sock_detach(mxr_xch *x, xq *q)
{
  xsock *s;
  if (q->sock < 0)
    return;
  s = &x->socks[q->sock];
  if (q->skprev)
    q->skprev->sknext = q->sknext;
  else
    s->qhead = q->sknext;
  if (q->sknext)
    q->sknext->skprev = q->skprev;
  q->skprev = q->sknext = NULL;
  s->inflight--;
  if (s->retired && s->inflight == 0)
    sock_retire(x, q->sock);
  q->sock = -1;
}

/* Take q off the network: socket, send queue, deadline. */
static void q_offline(mxr_xch *x, xq *q)
{
  sock_detach(x, q);
  sendq_unlink(x, q);
  dl_unlink(x, q);
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

/* A query record, zeroed as by calloc; from the free list when it has
 * one (its packet buffer kept). */
static xq *q_alloc(mxr_xch *x)
{
  size_t size = sizeof(xq) + (x->nservers - 1) * sizeof x->free_q->order[0];
  xq *q = x->free_q;
  unsigned char *buf;
  size_t cap;
  if (!q)
    return mxr_calloc(1, size);
  x->free_q = q->hnext;
  x->nfree_q--;
  buf = q->buf;
  cap = q->bufcap;
  memset(q, 0, size);
  q->buf = buf;
  q->bufcap = cap;
  return q;
}

/* Give q's memory back: to the free list while it is short. */
static void q_release(mxr_xch *x, xq *q)
{
  mxr_free(q->best_pkt);
  q->best_pkt = NULL;
  if (x->nfree_q < FREE_MAX) {
    q->hnext = x->free_q;
    x->free_q = q;
    x->nfree_q++;
    return;
  }
  mxr_free(q->buf);
  mxr_free(q);
}

static xw *w_alloc(mxr_xch *x)
{
  xw *w = x->free_w;
  if (!w)
    return mxr_calloc(1, sizeof *w);
  x->free_w = w->qnext;
  x->nfree_w--;
  memset(w, 0, sizeof *w);
  return w;
}

static void w_put(mxr_xch *x, xw *w)
{
  if (x->nfree_w < FREE_MAX) {
    w->qnext = x->free_w;
    x->free_w = w;
    x->nfree_w++;
    return;
  }
  mxr_free(w);
}

static void q_free(mxr_xch *x, xq *q)
{
  q_offline(x, q);
  hash_unlink(x, q);
  x->nq--;
  q_release(x, q);
}

static void job_check(mxr_xjob *j);

/* Deliver q's outcome to every waiter, then free q. ans (when given) is
 * the accepted answer, decoded once for every waiter (they share q's
 * name and type); else pkt (when given) is the reply behind the failure,
 * which each resolution decodes itself. */
static void q_finish(mxr_xch *x, xq *q, const unsigned char *pkt, size_t len,
                     const mxr_answer *ans, mxr_status st)
{
  q->finishing = 1;
  q_offline(x, q);
  /* a lookup asked from now on starts a query of its own */
  hash_unlink(x, q);
  while (q->waiters) {
    xw *w = q->waiters;
    mxr_xjob *j = w->job;
    q->waiters = w->qnext;
    if (q->waiters)
      q->waiters->qprev = NULL;
    if (w->jprev)
      w->jprev->jnext = w->jnext;
    else
      j->waiters = w->jnext;
    if (w->jnext)
      w->jnext->jprev = w->jprev;
    if (ans)
      mxr_res_feed(j->res, w->slot, ans);
    else if (pkt)
      mxr_res_answer(j->res, w->slot, pkt, len);
    else
      mxr_res_fail(j->res, w->slot, st);
    w_put(x, w);
    job_check(j);
    run_push(j); /* an answer may bring new queries (hosts, CNAMEs) */
  }
  q_free(x, q);
}

/* A query nobody waits for any more goes away (cancel, remove). */
static void w_release(mxr_xch *x, xw *w)
{
  xq *q = w->q;
  if (w->qprev)
    w->qprev->qnext = w->qnext;
  else
    q->waiters = w->qnext;
  if (w->qnext)
    w->qnext->qprev = w->qprev;
  w_put(x, w);
  if (!q->waiters && !q->finishing)
    q_free(x, q);
}

static void job_release(mxr_xjob *j)
{
  while (j->waiters) {
    xw *w = j->waiters;
    j->waiters = w->jnext;
    w_release(j->x, w);
  }
}

/* Queue j as done once its resolution is. */
static void job_check(mxr_xjob *j)
{
  mxr_xch *x = j->x;
  if (j->done || !mxr_res_done(j->res))
    return;
  j->done = 1;
  run_unlink(j);
  job_release(j);
  x->pending--;
  j->dnext = NULL;
  j->dprev = x->dtail;
  if (x->dtail)
    x->dtail->dnext = j;
  else
    x->dhead = j;
  x->dtail = j;
  j->in_dq = 1;
  x->ndone++;
}

/* RFC 1035 4.1.2: the question name at offset 12; its wire length. */
static size_t qname_wire_len(const unsigned char *m, size_t len)
{
  size_t off = 12;
  while (off < len && m[off] != 0) {
    if (m[off] & 0xc0)
      return 0;
    off += (size_t)m[off] + 1;
  }
  return off < len ? off - 12 + 1 : 0;
}

/* draft-vixie-dnsext-dns0x20: a random case for every letter of the
 * question; the reply must echo it exactly. */
static int randomize_case(mxr_xch *x, unsigned char *name, size_t len)
{
  int bits = 0, nbits = 0;
  size_t i;
  for (i = 0; i < len; i++) {
    unsigned char c = name[i];
    int lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z';
    if (!lower && !upper)
      continue;
    if (nbits == 0) {
      if ((bits = rnd8(x)) < 0)
        return -1;
      nbits = 8;
    }
    if (bits & 1)
      name[i] = (unsigned char)(lower ? c - 32 : c);
    else
      name[i] = (unsigned char)(upper ? c + 32 : c);
    bits >>= 1;
    nbits--;
  }
  return 0;
}

/* Server health: healthy servers first in configured order, then those
 * that failed within `health` seconds, in configured order. */
static void q_order(mxr_xch *x, xq *q, double now)
{
  size_t i, k = 0;
  for (i = 0; i < x->nservers; i++)
    if (x->servers[i].failed_until <= now)
      q->order[k++] = (unsigned)i;
  for (i = 0; i < x->nservers; i++)
    if (x->servers[i].failed_until > now)
      q->order[k++] = (unsigned)i;
}

static xq *q_new(mxr_xch *x, const mxr_query *mq, unsigned h, double now)
{
  size_t plen = 0, nlen;
  xq *q = q_alloc(x);
  if (!q)
    return NULL;
  nlen = strnlen(mq->name, sizeof q->name - 1);
  memcpy(q->name, mq->name, nlen);
  q->name[nlen] = '\0';
  q->type = mq->type;
  q->hash = h;
  q->sock = -1;
  q->best_rank = RANK_NONE;
  q->best = MXR_ETIMEOUT;
  /* the packet is written in place, after the TCP length prefix; the
   * buffer (kept on the free list) fits any query */
  if (q->bufcap < MXR_QUERY_MAX + 2) {
    mxr_free(q->buf);
    q->bufcap = 0;
    if (!(q->buf = mxr_malloc(MXR_QUERY_MAX + 2)))
      goto fail;
    q->bufcap = MXR_QUERY_MAX + 2;
  }
  if (mxr_query_wire(q->name, q->type, 0, EDNS_SIZE, q->buf + 2, &plen) !=
      MXR_OK)
    goto fail;
  q->buf[0] = (unsigned char)(plen >> 8);
  q->buf[1] = (unsigned char)(plen & 0xff);
  q->len = plen;
  q->qname_len = qname_wire_len(q->buf + 2, plen);
  if (q->qname_len == 0)
    goto fail;
  if (x->case_randomize &&
      randomize_case(x, q->buf + 2 + 12, q->qname_len) != 0)
    goto fail;
  q_order(x, q, now);
  return q;
fail:
  q_release(x, q);
  return NULL;
}

/* A fresh ID, uniform, not in flight on socket s. */
static int pick_id(mxr_xch *x, xsock *s, uint16_t *out)
{
  for (;;) {
    long v = rnd16(x);
    xq *o;
    if (v < 0)
      return -1;
    for (o = s->qhead; o; o = o->sknext)
      if (o->id == (uint16_t)v)
        break;
    if (!o) {
      *out = (uint16_t)v;
      return 0;
    }
  }
}

/* Send the current try of q (q->attempt, q->tcp) on a socket. */
static mxr_status q_send(mxr_xch *x, xq *q, double now)
{
  unsigned server = q->order[q->attempt % x->nservers];
  xserver *sv = &x->servers[server];
  long n;
  xsock *s;
  if (q->tcp) {
    n = sock_new(x, server, 1);
  } else {
    n = sv->udp;
    if (n < 0) {
      n = sock_new(x, server, 0);
      sv->udp = n;
    }
  }
  if (n < 0)
    return MXR_ENOMEM;
  s = &x->socks[n];
  if (pick_id(x, s, &q->id) != 0) {
    if (s->inflight == 0)
      sock_retire(x, n);
    return MXR_ENETWORK;
  }
  q->buf[2] = (unsigned char)(q->id >> 8);
  q->buf[3] = (unsigned char)(q->id & 0xff);
  q->server = server;
  q->sock = n;
  q->skprev = NULL;
  q->sknext = s->qhead;
  if (s->qhead)
    s->qhead->skprev = q;
  s->qhead = q;
  s->inflight++;
  s->used++;
  /* socket rotation: a fresh source port every udp_queries queries */
  if (!s->tcp && s->used >= x->udp_queries)
    sock_retire(x, n);
  sendq_push(x, q);
  q->sent_at = now;
  dl_push(x, q, now + x->timeout);
  x->stats.queries++;
  return MXR_OK;
}

/* The failure that ends q when every try has failed. */
static void q_fail_final(mxr_xch *x, xq *q)
{
  if (q->best_pkt) {
    /* the reply itself: its check gives the precise message */
    unsigned char *p = q->best_pkt;
    size_t len = q->best_len;
    q->best_pkt = NULL;
    q_finish(x, q, p, len, NULL, q->best);
    mxr_free(p);
  } else {
    q_finish(x, q, NULL, 0, NULL, q->best);
  }
}

/* Try q at the next server, or fail it when every try is spent. */
static void q_advance(mxr_xch *x, xq *q, double now)
{
  mxr_status st;
  if (q->attempt >= x->tries * x->nservers) {
    q_fail_final(x, q);
    return;
  }
  if ((st = q_send(x, q, now)) != MXR_OK)
    q_finish(x, q, NULL, 0, NULL, st);
}

/* This try failed at its server: remember it, move on (failover). */
static void q_failover(mxr_xch *x, xq *q, mxr_status st, int rank,
                       const unsigned char *pkt, size_t len, int rcode,
                       double now)
{
  xserver *sv = &x->servers[q->server];
  push_event(x, q, st, rcode, now);
  sv->failures++;
  sv->failed_until = now + x->health;
  if (rank >= q->best_rank) {
    unsigned char *copy = NULL;
    if (pkt && (copy = mxr_malloc(len)) != NULL)
      memcpy(copy, pkt, len);
    mxr_free(q->best_pkt);
    q->best_pkt = copy;
    q->best_len = copy ? len : 0;
    q->best = st;
    q->best_rank = rank;
  }
  q_offline(x, q);
  q->tcp = 0;
  q->attempt++;
  q_advance(x, q, now);
}

/* ------------------------------------------------------------------ */
/* replies                                                             */

static int same_name(const unsigned char *a, const unsigned char *b,
                     size_t len, int exact)
{
  size_t i;
  if (memcmp(a, b, len) == 0)
    return 1; /* the usual case, folded or not */
  if (exact)
    return 0;
  /* length octets are < 64 and never change under an ASCII fold */
  for (i = 0; i < len; i++)
    if (mxr_ascii_lower((char)a[i]) != mxr_ascii_lower((char)b[i]))
      return 0;
  return 1;
}

/* A message on socket n: accept it for the query it answers, or drop. */
static void on_message(mxr_xch *x, long n, const unsigned char *pkt,
                       size_t len, double now)
{
  xsock *s = &x->socks[n];
  const unsigned char *qn;
  mxr_answer a;
  mxr_status st;
  unsigned rcode;
  uint16_t id;
  xq *q;

  if (len < 12) { /* not even a header */
    x->stats.dropped++;
    return;
  }
  id = get16(pkt);
  for (q = s->qhead; q; q = q->sknext)
    if (q->id == id && !q->in_sendq)
      break;
  /* RFC 5452 9.1: the ID, and the question with its class and type */
  qn = q ? q->buf + 2 + 12 : NULL;
  if (!q || get16(pkt + 4) != 1 || len < 12 + q->qname_len + 4 ||
      !same_name(pkt + 12, qn, q->qname_len, x->case_randomize) ||
      memcmp(pkt + 12 + q->qname_len, qn + q->qname_len, 4) != 0) {
    x->stats.dropped++;
    return;
  }
  rcode = pkt[3] & 0xfu;
  /* classify with every check of packet.c, decoding the records too: an
   * accepted answer goes to the resolutions as it is (mxr_res_feed), so
   * each reply is walked once. q->name and q->type are the question
   * mxr_res_next gave every waiter (the merge key). */
  st = mxr_packet_parse(pkt, len, q->name, q->type, id, &a);
  if (st == MXR_OK && a.truncated && !q->tcp) {
    /* RFC 7766 5: ask the same server again over TCP */
    mxr_answer_clear(&a);
    push_event(x, q, MXR_OK, (int)rcode, now);
    q_offline(x, q);
    q->tcp = 1;
    x->stats.tcp++;
    if ((st = q_send(x, q, now)) != MXR_OK)
      q_finish(x, q, NULL, 0, NULL, st);
    return;
  }
  if ((pkt[2] & 0x80) && ((pkt[2] >> 3) & 0xfu) == 0 && rcode == 4) {
    /* NOTIMP: this server cannot answer; a temporary server failure */
    q_failover(x, q, MXR_ESERVFAIL, RANK_RCODE, NULL, 0, 4, now);
  } else if (st == MXR_ESERVFAIL || st == MXR_EREFUSED) {
    q_failover(x, q, st, RANK_RCODE, pkt, len, (int)rcode, now);
  } else if ((st == MXR_OK && !a.truncated) || st == MXR_ENXDOMAIN ||
             st == MXR_ECNAMELOOP || st == MXR_ENOMEM) {
    /* final: the data, NXDOMAIN, or a CNAME loop the server holds */
    push_event(x, q, MXR_OK, (int)rcode, now);
    x->stats.answers++;
    x->servers[q->server].failed_until = 0;
    /* out of memory while decoding: each resolution tries its own */
    q_finish(x, q, pkt, len, st == MXR_ENOMEM ? NULL : &a, MXR_OK);
  } else {
    /* malformed, hostile or mismatched in a way packet.c refuses */
    q_failover(x, q, MXR_EFORMERR, RANK_MALFORMED, pkt, len, (int)rcode,
               now);
  }
  mxr_answer_clear(&a);
}

/* ------------------------------------------------------------------ */
/* the public API                                                      */

mxr_status mxr_xch_new(const mxr_xch_config *cfg, mxr_xch **out, char *err,
                       size_t errlen)
{
  mxr_xch *x;
  size_t i;
  if (out)
    *out = NULL;
  if (!cfg || !out || !cfg->servers || cfg->nservers == 0) {
    set_err(err, errlen, "no nameserver");
    return MXR_EBADOPT;
  }
  if (!(cfg->timeout >= 0 && cfg->timeout <= 3600) || cfg->tries < 0 ||
      cfg->tries > 1000 || !(cfg->health >= 0 && cfg->health <= 86400)) {
    set_err(err, errlen, "timeout, tries or health out of range");
    return MXR_EBADOPT;
  }
  if (cfg->udp_queries > 65535) {
    set_err(err, errlen, "udp_queries above 65535 (one ID space)");
    return MXR_EBADOPT;
  }
  if (cfg->nservers > 4096) {
    set_err(err, errlen, "too many nameservers");
    return MXR_EBADOPT;
  }
  x = mxr_calloc(1, sizeof *x);
  if (!x)
    return MXR_ENOMEM;
  x->servers = mxr_calloc(cfg->nservers, sizeof *x->servers);
  x->hsize = 64;
  x->hash = mxr_calloc(x->hsize, sizeof *x->hash);
  if (!x->servers || !x->hash)
    goto oom;
  for (i = 0; i < cfg->nservers; i++) {
    x->servers[i].addr = cfg->servers[i];
    x->servers[i].udp = -1;
  }
  x->nservers = cfg->nservers;
  x->timeout = cfg->timeout > 0 ? cfg->timeout : DEFAULT_TIMEOUT;
  x->tries = cfg->tries > 0 ? (unsigned)cfg->tries : DEFAULT_TRIES;
  x->max_inflight = cfg->max_inflight ? cfg->max_inflight
                                      : DEFAULT_MAX_INFLIGHT;
  x->udp_queries = cfg->udp_queries ? cfg->udp_queries : DEFAULT_UDP_QUERIES;
  x->health = cfg->health > 0 ? cfg->health : DEFAULT_HEALTH;
  x->case_randomize = cfg->case_randomize != 0;
  x->trace = cfg->trace != 0;
  x->free_sock = -1;
  if (mxr_os_random(x->rnd, sizeof x->rnd) != 0) {
    set_err(err, errlen, "no randomness from the OS for query IDs");
    mxr_free(x->hash);
    mxr_free(x->servers);
    mxr_free(x);
    return MXR_EBADOPT;
  }
  x->rpos = 0;
  *out = x;
  return MXR_OK;
oom:
  mxr_free(x->hash);
  mxr_free(x->servers);
  mxr_free(x);
  return MXR_ENOMEM;
}

static void job_unlink(mxr_xjob *j)
{
  mxr_xch *x = j->x;
  run_unlink(j);
  dq_unlink(j);
  job_release(j);
  if (!j->done)
    x->pending--;
  if (j->prev)
    j->prev->next = j->next;
  else
    x->jobs = j->next;
  if (j->next)
    j->next->prev = j->prev;
}

void mxr_xch_free(mxr_xch *x)
{
  size_t i;
  if (!x)
    return;
  while (x->jobs) {
    mxr_xjob *j = x->jobs;
    if (!j->done)
      mxr_res_cancel(j->res, MXR_ECANCELLED);
    job_unlink(j);
    mxr_free(j);
  }
  /* every query went with its last waiter: only the free lists remain */
  while (x->free_q) {
    xq *q = x->free_q;
    x->free_q = q->hnext;
    mxr_free(q->buf);
    mxr_free(q);
  }
  while (x->free_w) {
    xw *w = x->free_w;
    x->free_w = w->qnext;
    mxr_free(w);
  }
  for (i = 0; i < x->nsocks; i++)
    mxr_free(x->socks[i].rbuf);
  mxr_free(x->socks);
  mxr_free(x->ctls);
  mxr_free(x->events);
  mxr_free(x->hash);
  mxr_free(x->servers);
  mxr_free(x);
}

static void pump(mxr_xch *x, double now);

mxr_status mxr_xch_add(mxr_xch *x, mxr_res *r, void *ud, mxr_xjob **out,
                       double now)
{
  mxr_xjob *j;
  if (out)
    *out = NULL;
  if (!x || !r || !out)
    return MXR_EBADOPT;
  j = mxr_calloc(1, sizeof *j);
  if (!j)
    return MXR_ENOMEM;
  j->x = x;
  j->res = r;
  j->ud = ud;
  j->next = x->jobs;
  if (x->jobs)
    x->jobs->prev = j;
  x->jobs = j;
  x->pending++;
  *out = j;
  job_check(j);
  run_push(j);
  pump(x, now);
  return MXR_OK;
}

void mxr_xch_remove(mxr_xch *x, mxr_xjob *j)
{
  if (!x || !j)
    return;
  if (!j->done)
    mxr_res_cancel(j->res, MXR_ECANCELLED);
  job_unlink(j);
  mxr_free(j);
}

void mxr_xch_cancel(mxr_xch *x, mxr_xjob *j)
{
  if (!x || !j || j->done)
    return;
  mxr_res_cancel(j->res, MXR_ECANCELLED);
  job_check(j); /* releases its waiters: merged queries go on */
}

void *mxr_xch_next_done(mxr_xch *x)
{
  mxr_xjob *j = x ? x->dhead : NULL;
  if (!j)
    return NULL;
  dq_unlink(j);
  return j->ud;
}

size_t mxr_xch_ndone(const mxr_xch *x) { return x ? x->ndone : 0; }

size_t mxr_xch_pending(const mxr_xch *x) { return x ? x->pending : 0; }

/* One lookup of job j: join the query in flight for it, or start one. */
static void ask(mxr_xch *x, mxr_xjob *j, const mxr_query *mq, double now)
{
  unsigned h = name_hash(mq->name, mq->type);
  xq *q = hash_find(x, mq->name, mq->type, h);
  xw *w = w_alloc(x);
  int fresh = 0;
  if (!w) {
    mxr_res_fail(j->res, mq->slot, MXR_ENOMEM);
    job_check(j);
    return;
  }
  if (q) {
    x->stats.merged++; /* DESIGN 8: one query for every waiter */
  } else {
    q = q_new(x, mq, h, now);
    if (!q) {
      w_put(x, w);
      mxr_res_fail(j->res, mq->slot, MXR_ENOMEM);
      job_check(j);
      return;
    }
    x->nq++;
    hash_insert(x, q);
    fresh = 1;
  }
  w->q = q;
  w->job = j;
  w->slot = mq->slot;
  w->qnext = q->waiters;
  if (q->waiters)
    q->waiters->qprev = w;
  q->waiters = w;
  w->jnext = j->waiters;
  if (j->waiters)
    j->waiters->jprev = w;
  j->waiters = w;
  if (fresh)
    q_advance(x, q, now);
}

/* Pull queries from runnable jobs while the in-flight bound allows:
 * plans under way first, then new plans in the order they came; one
 * query per job per turn (round robin: a plan with many hosts does not
 * starve the others). */
static void pump(mxr_xch *x, double now)
{
  while ((x->rhead[0] || x->rhead[1]) && x->nq < x->max_inflight) {
    mxr_xjob *j = x->rhead[0] ? x->rhead[0] : x->rhead[1];
    mxr_query mq;
    run_unlink(j);
    if (!mxr_res_next(j->res, &mq)) {
      job_check(j);
      continue;
    }
    j->started = 1;
    run_push(j);
    ask(x, j, &mq, now);
  }
}

int mxr_xch_io(mxr_xch *x, mxr_io *io, double now)
{
  (void)now;
  if (!x || !io)
    return 0;
  memset(io, 0, sizeof *io);
  if (x->clen) {
    ctl c = x->ctls[x->chead];
    xsock *s = &x->socks[c.sock];
    x->chead = (x->chead + 1) % x->ccap;
    x->clen--;
    io->op = c.op;
    io->sock = c.sock;
    io->server = s->server;
    io->addr = &x->servers[s->server].addr;
    if (c.op == MXR_IO_CLOSE) { /* the number may be reused from now on */
      mxr_free(s->rbuf);
      s->rbuf = NULL;
      s->rlen = 0;
      s->state = SK_FREE;
      s->free_next = x->free_sock;
      x->free_sock = (long)c.sock;
    }
    return 1;
  }
  if (x->sqhead) {
    xq *q = x->sqhead;
    sendq_unlink(x, q);
    io->op = MXR_IO_SEND;
    io->sock = (unsigned)q->sock;
    io->server = q->server;
    io->addr = &x->servers[q->server].addr;
    io->data = q->tcp ? q->buf : q->buf + 2;
    io->len = q->tcp ? q->len + 2 : q->len;
    return 1;
  }
  return 0;
}

void mxr_xch_recv(mxr_xch *x, unsigned sock, const unsigned char *data,
                  size_t len, double now)
{
  xsock *s;
  if (!x || (!data && len))
    return;
  if (!(s = sock_get(x, sock))) {
    /* a reply arriving while its socket is being closed is refused too */
    if (sock < x->nsocks && x->socks[sock].state == SK_CLOSING)
      x->stats.dropped++;
    return;
  }
  if (!s->tcp) {
    on_message(x, (long)sock, data, len, now);
  } else {
    /* RFC 7766 8: 2-octet length, then the message; any chunking */
    while (len > 0 && x->socks[sock].state == SK_OPEN) {
      size_t want, take;
      s = &x->socks[sock];
      if (!s->rbuf && !(s->rbuf = mxr_malloc(TCP_MAX))) {
        mxr_xch_sock_error(x, sock, MXR_ENOMEM, now);
        return;
      }
      want = s->rlen < 2 ? 2 - s->rlen
                         : (size_t)get16(s->rbuf) + 2 - s->rlen;
      take = len < want ? len : want;
      memcpy(s->rbuf + s->rlen, data, take);
      s->rlen += take;
      data += take;
      len -= take;
      if (s->rlen >= 2 && s->rlen == (size_t)get16(s->rbuf) + 2) {
        size_t mlen = s->rlen - 2;
        s->rlen = 0;
        on_message(x, (long)sock, s->rbuf + 2, mlen, now);
      }
    }
  }
  pump(x, now);
}

void mxr_xch_sock_error(mxr_xch *x, unsigned sock, mxr_status st, double now)
{
  xsock *s;
  int rank;
  if (!x || !(s = sock_get(x, sock)))
    return;
  rank = st == MXR_ETIMEOUT ? RANK_TIMEOUT : RANK_NETWORK;
  if (st != MXR_ETIMEOUT)
    st = MXR_ENETWORK;
  /* ICMP unreachable on a connected UDP socket: every query on it moves
   * to the next server at once */
  sock_retire(x, (long)sock);
  while (x->socks[sock].qhead) {
    xq *q = x->socks[sock].qhead;
    q_failover(x, q, st, rank, NULL, 0, -1, now);
  }
  pump(x, now);
}

double mxr_xch_timeout(const mxr_xch *x, double now)
{
  double t;
  if (!x)
    return -1.0;
  if (x->dhead || x->clen || x->sqhead ||
      ((x->rhead[0] || x->rhead[1]) && x->nq < x->max_inflight))
    return 0.0;
  if (!x->dlhead)
    return -1.0;
  t = x->dlhead->deadline - now;
  return t > 0 ? t : 0.0;
}

void mxr_xch_tick(mxr_xch *x, double now)
{
  if (!x)
    return;
  while (x->dlhead && x->dlhead->deadline <= now) {
    xq *q = x->dlhead;
    x->stats.timeouts++;
    q_failover(x, q, MXR_ETIMEOUT, RANK_TIMEOUT, NULL, 0, -1, now);
  }
  pump(x, now);
}

void mxr_xch_forget_sockets(mxr_xch *x, double now)
{
  xq *list, *q;
  size_t i;
  if (!x)
    return;
  /* a forked child shares the parent's random block: draw a new one */
  if (mxr_os_random(x->rnd, sizeof x->rnd) == 0)
    x->rpos = 0;
  else
    x->rpos = sizeof x->rnd;
  x->clen = 0;
  x->chead = 0;
  while (x->sqhead)
    sendq_unlink(x, x->sqhead);
  list = x->dlhead;
  x->dlhead = x->dltail = NULL;
  x->free_sock = -1;
  for (i = x->nsocks; i-- > 0;) {
    mxr_free(x->socks[i].rbuf);
    memset(&x->socks[i], 0, sizeof x->socks[i]);
    x->socks[i].free_next = x->free_sock;
    x->free_sock = (long)i;
  }
  for (i = 0; i < x->nservers; i++)
    x->servers[i].udp = -1;
  /* send every query in flight again, same try, on new sockets */
  while ((q = list) != NULL) {
    mxr_status st;
    list = q->dlnext;
    q->in_dl = 0;
    q->dlprev = q->dlnext = NULL;
    q->skprev = q->sknext = NULL;
    q->sock = -1;
    if ((st = q_send(x, q, now)) != MXR_OK)
      q_finish(x, q, NULL, 0, NULL, st);
  }
  pump(x, now);
}

void mxr_xch_get_stats(const mxr_xch *x, mxr_xch_stats *out)
{
  if (!out)
    return;
  if (!x)
    memset(out, 0, sizeof *out);
  else
    *out = x->stats;
}

uint64_t mxr_xch_server_failures(const mxr_xch *x, unsigned server)
{
  if (!x || server >= x->nservers)
    return 0;
  return x->servers[server].failures;
}

size_t mxr_xch_server_count(const mxr_xch *x) { return x ? x->nservers : 0; }

const mxr_server *mxr_xch_server(const mxr_xch *x, unsigned server)
{
  if (!x || server >= x->nservers)
    return NULL;
  return &x->servers[server].addr;
}

int mxr_xch_next_event(mxr_xch *x, mxr_xch_event *out)
{
  if (!x || !out || x->elen == 0)
    return 0;
  *out = x->events[x->ehead];
  x->ehead = (x->ehead + 1) % EVENT_MAX;
  x->elen--;
  return 1;
}
