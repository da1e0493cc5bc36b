/*
 * rng: xoshiro256** (Blackman & Vigna), seeded through splitmix64, and
 * from the OS with getrandom(2) (falling back to /dev/urandom).
 * Used for the random order of equal-preference hosts and of a host's
 * addresses (RFC 5321 5.1: equal preferences are tried in random order).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "mxr_internal.h"
#include "mxroute.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

/* splitmix64 never yields four zero words in a row, so the xoshiro state
 * is never the all-zero fixed point. */
void mxr_rng_seed(mxr_rng *r, uint64_t seed) {
  int i;
  for (i = 0; i < 4; i++)
    r->s[i] = splitmix64(&seed);
}

static int fill_getrandom(unsigned char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = getrandom(buf + got, len - got, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    got += (size_t)n;
  }
  return 0;
}

static int fill_urandom(unsigned char *buf, size_t len) {
  size_t got = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      close(fd);
      return -1;
    }
    got += (size_t)n;
  }
  close(fd);
  return 0;
}

int mxr_os_random(unsigned char *buf, size_t len) {
  return fill_getrandom(buf, len) == 0 || fill_urandom(buf, len) == 0 ? 0
                                                                     : -1;
}

mxr_status mxr_rng_seed_os(mxr_rng *r) {
  unsigned char buf[8];
  uint64_t seed = 0;
  size_t i;
  if (mxr_os_random(buf, sizeof buf) != 0)
    return MXR_EBADOPT;
  for (i = 0; i < sizeof buf; i++)
    seed = (seed << 8) | buf[i];
  mxr_rng_seed(r, seed);
  return MXR_OK;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t mxr_rng_next(mxr_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Rejection sampling: values below 2^64 mod n are redrawn, leaving a
 * range that is an exact multiple of n, so r % n is uniform. */
uint64_t mxr_rng_below(mxr_rng *r, uint64_t n) {
  uint64_t threshold, x;
  if (n == 0)
    return 0;
  threshold = (0 - n) % n;
  do {
    x = mxr_rng_next(r);
  } while (x < threshold);
  return x % n;
}
