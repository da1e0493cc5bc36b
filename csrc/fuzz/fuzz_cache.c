/*
 * fuzz_cache.c — libFuzzer target for the cache's second-level decoder
 * (cache.c, DESIGN 8): values read from a lua_shared_dict are written by
 * other processes and trusted by none.
 *
 * Each input is decoded as an entry of every type, for any name; a value
 * accepted must satisfy the entry's invariants and encode back to the
 * very same bytes (one form per entry: nothing else is accepted). Then a
 * cache whose second level holds the input looks it up, so that the
 * path into the local cache (insert, TTL from wall-clock expiry) runs on
 * whatever was accepted. Seeds: csrc/fuzz/corpus/fuzz_cache, entries
 * written by the encoder (MX with a null MX, A, AAAA, NXDOMAIN).
 */
#include "fuzz_util.h"
#include "mxr_internal.h"
#include "mxroute.h"

#include <string.h>

static const uint8_t *in_data;
static size_t in_size;

static const unsigned char *get(void *ud, const char *key, size_t *len) {
  (void)ud;
  (void)key;
  *len = in_size;
  return in_data;
}

static double wall(void *ud) {
  (void)ud;
  return 1.8e9;
}

static void check_blob(const mxr_cache_blob *b, const uint8_t *data,
                       size_t size, uint16_t type) {
  mxr_rrset rr;
  unsigned char *again;
  size_t len = 0;
  CHECK(b->status == MXR_OK || b->status == MXR_ENXDOMAIN);
  CHECK(b->type == type);
  CHECK(strlen(b->name) > 0 && strlen(b->name) <= MXR_NAME_MAX);
  CHECK(strlen(b->canon) <= MXR_NAME_MAX);
  CHECK(b->status == MXR_OK || b->nrecs == 0);
  memset(&rr, 0, sizeof rr);
  rr.status = b->status;
  rr.canon = b->canon;
  rr.chased = b->chased;
  rr.ncname = b->ncname;
  /* the records of the type's own fields, no others */
  mxr_rrset_set_records(&rr, mxr_rrtype_of(type), b->recs, b->nrecs);
  CHECK(rr.nmx == 0 || type == MXR_TYPE_MX);
  CHECK(rr.naddrs == 0 || type != MXR_TYPE_MX);
  for (size_t i = 0; i < rr.naddrs; i++)
    CHECK(rr.addrs[i].family == (type == MXR_TYPE_A ? 4 : 6));
  for (size_t i = 0; i < rr.nmx; i++) {
    CHECK(rr.mx[i].len <= MXR_NAME_MAX);
    CHECK(rr.mx[i].name >= (const char *)data &&
          rr.mx[i].name + rr.mx[i].len <= (const char *)data + size);
  }
  /* expiry in whole milliseconds survives the round trip */
  again = mxr_cache_encode(b->name, type, &rr, b->expires, &len);
  if (again && b->expires > 0) {
    CHECK(len == size);
    CHECK(memcmp(again, data, size) == 0);
  }
  mxr_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint16_t types[] = {MXR_TYPE_MX, MXR_TYPE_A, MXR_TYPE_AAAA};
  for (size_t t = 0; t < 3; t++) {
    mxr_cache_blob b;
    if (mxr_cache_decode(data, size, NULL, types[t], &b)) {
      mxr_cache *c;
      mxr_cache_l2 l2;
      mxr_rrset rr;
      check_blob(&b, data, size, types[t]);
      c = mxr_cache_new(NULL);
      memset(&l2, 0, sizeof l2);
      l2.get = get;
      l2.wall = wall;
      in_data = data;
      in_size = size;
      if (c) {
        mxr_cache_set_l2(c, &l2);
        if (mxr_cache_get(c, b.name, types[t], 0, &rr)) {
          CHECK(rr.nmx + rr.naddrs == b.nrecs);
          CHECK(rr.ttl <= MXR_CACHE_DEFAULT_MAX_TTL);
        }
        mxr_cache_free(c);
      }
    }
    mxr_cache_blob_clear(&b);
  }
  return 0;
}
