/*
 * Private helpers of the mxroute core (status.c, name.c, plan.c, ...).
 * Not installed, not part of the public API.
 *
 *   - allocation wrappers with an allocation-failure hook for tests
 *     (compiled in only with -DMXR_TESTING);
 *   - ASCII-only case folding (DNS names are never folded with <ctype.h>,
 *     whose answers depend on the locale);
 *   - escaping of untrusted bytes for error messages.
 */
#ifndef MXR_INTERNAL_H
#define MXR_INTERNAL_H

#include <stddef.h>

#include "mxroute.h"

/* malloc/calloc/realloc/free; reallocarray fails (NULL) on n*size
 * overflow. Zero sizes are bumped to one so NULL always means OOM. */
void *mxr_malloc(size_t n);
void *mxr_calloc(size_t n, size_t size);
void *mxr_reallocarray(void *p, size_t n, size_t size);
void mxr_free(void *p);

#ifdef MXR_TESTING
/* Allocation-failure injection: every mxr_malloc/calloc/reallocarray
 * increments mxr_test_alloc_count; the one whose new count equals
 * mxr_test_alloc_fail_at (when > 0) returns NULL. */
extern long mxr_test_alloc_count;
extern long mxr_test_alloc_fail_at;
#endif

static inline char mxr_ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Write s[0..len) into out (outlen bytes, always NUL-terminated when
 * outlen > 0) with every byte outside 0x20..0x7e written as \xHH, so a
 * message never carries control, NUL or non-ASCII bytes. At most maxshow
 * input bytes are shown, then "...". Returns the length written. */
size_t mxr_escape(char *out, size_t outlen, const char *s, size_t len,
                  size_t maxshow);

/* A normalised name as c-ares' query builders read it, into out (at
 * least 2 * MXR_NAME_BUF bytes): ares_create_query reads "\c" as a
 * literal c, and '.' never occurs inside a normalised label, so only the
 * backslash is doubled. Returns the end of what was written (its NUL). */
char *mxr_ares_name(const char *name, char *out);
/* The mnemonic of a record type of packet.c's table ("MX"), or "?". */
const char *mxr_rrtype_name(uint16_t type);

/* Fill buf with len octets of the OS CSPRNG (getrandom(2), else
 * /dev/urandom): 0, or -1 when the OS gives none (rand.c). */
int mxr_os_random(unsigned char *buf, size_t len);

/* Sort/identity key of an address: 16 bytes, IPv4 as ::ffff:a.b.c.d, so
 * an IPv4 address and its IPv4-mapped IPv6 form get the same key. */
void mxr_addr_key(const mxr_addr *a, uint8_t key[16]);

/* Routed resolutions (route.c): a resolution whose queries and result
 * come from one sub-resolution per hop. resolve.c delegates every public
 * mxr_res_* call of a resolution that has a route to these. */
typedef struct mxr_route mxr_route;
int mxr_route_next(mxr_route *rt, mxr_query *q);
void mxr_route_answer(mxr_route *rt, unsigned slot, const unsigned char *pkt,
                      size_t len);
void mxr_route_feed(mxr_route *rt, unsigned slot, const mxr_answer *a);
void mxr_route_fail(mxr_route *rt, unsigned slot, mxr_status st);
size_t mxr_route_inflight(const mxr_route *rt);
int mxr_route_done(const mxr_route *rt);
void mxr_route_cancel(mxr_route *rt, mxr_status st);
void mxr_route_free(mxr_route *rt);
size_t mxr_route_ready(mxr_route *rt);
const mxr_target *mxr_route_target(mxr_route *rt, size_t i);
mxr_status mxr_route_result(mxr_route *rt, mxr_result *out);
/* The second-level form of a cache entry (cache.c; DESIGN 8). Keys are
 * "mxr1:<type>:<name>" (MXR_CACHE_KEY_BUF bytes). A decoded entry's MX
 * names point into the decoded bytes (not NUL-terminated: use len);
 * its addrs are its own: mxr_cache_blob_clear frees them. */
#define MXR_CACHE_KEY_BUF 272
typedef struct mxr_cache_blob {
  uint16_t type;
  mxr_status status; /* MXR_OK or MXR_ENXDOMAIN */
  int chased;
  unsigned ncname;
  double expires;    /* Unix time the entry stops being fresh */
  char name[MXR_NAME_BUF];
  char canon[MXR_NAME_BUF];
  size_t nmx, naddrs;
  mxr_mx *mx;
  mxr_addr *addrs;
} mxr_cache_blob;
void mxr_cache_key(const char *name, uint16_t type, char *key);
/* The bytes for an entry (mxr_malloc'd, *len their size), or NULL on
 * OOM or values that cannot be encoded. */
unsigned char *mxr_cache_encode(const char *name, uint16_t type,
                                const mxr_rrset *rr, double expires,
                                size_t *len);
/* 1 and *out filled when b[0..len) is a well-formed entry for (name,
 * type) (name NULL: any), else 0 with *out empty. Expiry is not checked
 * here. Always leaves *out safe to clear. */
int mxr_cache_decode(const unsigned char *b, size_t len, const char *name,
                     uint16_t type, mxr_cache_blob *out);
void mxr_cache_blob_clear(mxr_cache_blob *out);

/* The cache (DESIGN 8) for every hop; the plan's TTL is the lowest of
 * its hops' (1 when known), stale when any hop was served stale. */
void mxr_route_set_cache(mxr_route *rt, mxr_cache *c);
int mxr_route_ttl(const mxr_route *rt, uint32_t *ttl);
int mxr_route_stale(const mxr_route *rt);

/* resolve.c: attach rt to r (r owns it from now; queries r had queued
 * are dropped, never handed out); and, for a "[host]" hop, feed the plan
 * NODATA for r's MX lookup without asking it, so that the host's own
 * addresses are its implicit MX (Postfix transport(5): [] suppresses MX
 * lookups). */
void mxr_res_set_route(mxr_res *r, mxr_route *rt);
void mxr_res_skip_mx(mxr_res *r);

/* engine.c: MXR_OK when the resolver configuration at path may be read
 * (missing, or a regular file); MXR_EBADOPT with err for anything else
 * (a FIFO or a device could block the reader forever). */
mxr_status mxr_engine_conf_check(const char *path, char *err, size_t errlen);

#endif
