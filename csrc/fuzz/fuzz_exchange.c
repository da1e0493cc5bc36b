/*
 * fuzz_exchange.c — libFuzzer target for the exchange (exchange.c): the
 * input is a script of transport events for one resolution of "mx.test"
 * against two servers. Each step takes one octet:
 *   0-3   deliver a chunk (length: the next octet) to the socket of the
 *         oldest query sent, with its ID and question patched in when
 *         the octet is 0 (so that chunks reach past the matching);
 *   4     a socket error on that socket;
 *   5     the clock moves past every deadline (tick);
 *   6     forget every socket (fork);
 *   7     cancel the resolution.
 * Invariants: the transport never sees an operation on a socket it has
 * not opened, the resolution always ends, nothing leaks (ASan).
 */
#include "fuzz_util.h"
#include "mxroute.h"

#include <stdint.h>
#include <string.h>

#define MAXSOCK 1024

static int open_[MAXSOCK], tcp_[MAXSOCK];
static unsigned char last[4096];
static size_t last_len;
static unsigned last_sock;
static int have_last;

static void io_all(mxr_xch *x, double now) {
  mxr_io io;
  while (mxr_xch_io(x, &io, now)) {
    CHECK(io.sock < MAXSOCK);
    if (io.op == MXR_IO_OPEN_UDP || io.op == MXR_IO_OPEN_TCP) {
      CHECK(!open_[io.sock]);
      open_[io.sock] = 1;
      tcp_[io.sock] = io.op == MXR_IO_OPEN_TCP;
    } else if (io.op == MXR_IO_CLOSE) {
      open_[io.sock] = 0;
    } else {
      CHECK(open_[io.sock]);
      CHECK(io.len > 2 && io.len <= sizeof last);
      memcpy(last, io.data, io.len);
      last_len = io.len;
      last_sock = io.sock;
      have_last = 1;
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const mxr_server sv[2] = {{{4, {192, 0, 2, 1}}, 53},
                                   {{4, {192, 0, 2, 2}}, 53}};
  mxr_xch_config c;
  mxr_xch *x = NULL;
  mxr_opts *opts = mxr_opts_new();
  mxr_rng rng;
  mxr_res *r;
  mxr_xjob *job = NULL;
  double now = 0;
  size_t i = 0;

  memset(open_, 0, sizeof open_);
  have_last = 0;
  memset(&c, 0, sizeof c);
  c.servers = sv;
  c.nservers = 2;
  c.timeout = 1;
  c.tries = 2;
  c.udp_queries = 2;
  c.case_randomize = size > 0 && (data[0] & 1);
  c.trace = 1;
  mxr_rng_seed(&rng, 1);
  if (!opts || mxr_xch_new(&c, &x, NULL, 0) != MXR_OK) {
    mxr_opts_free(opts);
    return 0;
  }
  r = mxr_res_new("mx.test", 7, opts, &rng);
  if (r && mxr_xch_add(x, r, r, &job, now) == MXR_OK) {
    io_all(x, now);
    while (i < size && !mxr_res_done(r)) {
      unsigned op = data[i++] & 7;
      now += 0.01;
      if (op <= 3 && have_last) {
        unsigned char buf[300];
        size_t n = i < size ? data[i++] : 0, off = 0;
        const unsigned char *msg = last + (tcp_[last_sock] ? 2 : 0);
        size_t mlen = last_len - (tcp_[last_sock] ? 2 : 0);
        if (n > size - i)
          n = size - i;
        if (op == 0 && !tcp_[last_sock]) {
          /* the query itself, QR set, then the fuzzer's bytes */
          off = mlen < sizeof buf ? mlen : sizeof buf;
          memcpy(buf, msg, off);
          buf[2] |= 0x80;
          if (n > sizeof buf - off)
            n = sizeof buf - off;
        } else if (n > sizeof buf) {
          n = sizeof buf;
        }
        memcpy(buf + off, data + i, n);
        i += n;
        mxr_xch_recv(x, last_sock, buf, off + n, now);
      } else if (op == 4 && have_last) {
        mxr_xch_sock_error(x, last_sock, MXR_ENETWORK, now);
      } else if (op == 5) {
        now += 5;
        mxr_xch_tick(x, now);
      } else if (op == 6) {
        memset(open_, 0, sizeof open_);
        have_last = 0;
        mxr_xch_forget_sockets(x, now);
      } else if (op == 7) {
        mxr_xch_cancel(x, job);
      }
      io_all(x, now);
    }
    /* every deadline passed: the resolution must end */
    for (int k = 0; k < 64 && !mxr_res_done(r); k++) {
      now += 5;
      mxr_xch_tick(x, now);
      io_all(x, now);
    }
    CHECK(mxr_res_done(r));
    {
      mxr_xch_event e;
      while (mxr_xch_next_event(x, &e))
        CHECK(e.server < 2);
    }
    mxr_xch_remove(x, job);
  }
  mxr_res_free(r);
  mxr_xch_free(x);
  mxr_opts_free(opts);
  return 0;
}
