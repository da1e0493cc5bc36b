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
#include <string.h>

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

/* An octet as mxr_name_normalize writes it: printable ASCII but space,
 * lower-cased; '.' (a label's end) is 1, any other octet 0 (never in a
 * name). */
extern const unsigned char mxr_name_octet[256];

static inline char mxr_ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Write s[0..len) into out (outlen bytes, always NUL-terminated when
 * outlen > 0) with every byte outside 0x20..0x7e written as \xHH, so a
 * message never carries control, NUL or non-ASCII bytes. At most maxshow
 * input bytes are shown, then "...". Returns the length written. */
size_t mxr_escape(char *out, size_t outlen, const char *s, size_t len,
                  size_t maxshow);

/* A query (packet.c): header with ID id and RD, the question name (any
 * name mxr_name_normalize accepts but the root, normalised on the way),
 * type and class IN, and with udp_size an OPT RR advertising it (RFC
 * 6891). Written to out (MXR_QUERY_MAX octets), its length to *len.
 * MXR_EBADNAME for a bad name or the root, MXR_EBADOPT for a NULL name
 * or a type with no entry in mxr_rrtypes[]. The question name occupies
 * out[12..12 + strlen(normalised name) + 2). */
#define MXR_QUERY_MAX (12 + 255 + 4 + 11)
mxr_status mxr_query_wire(const char *name, uint16_t type, uint16_t id,
                          uint16_t udp_size, unsigned char *out, size_t *len);

/* ------------------------------------------------------------------ */
/* Record types (rrtype.c): one table entry per type, read by every layer
 * (doc/architecture.md, "Adding a record type"). */

/* Escaped presentation form of any wire name (255 octets, "\DDD" each). */
#define MXR_ESC_BUF 1100

/* Wire names (packet.c). mxr_wire_name expands the name at off of
 * pkt[0..len) into buf (MXR_ESC_BUF bytes, escaped as ares_expand_name
 * does), *used the octets it occupies at off; 0 on any failure.
 * mxr_wire_unescape turns that form into a plain name for
 * mxr_name_normalize (out: MXR_ESC_BUF bytes); 0 when it cannot be one
 * (a '.' inside a label, an unprintable octet). */
int mxr_wire_name(const unsigned char *pkt, size_t len, size_t off,
                  char *buf, size_t *used);
int mxr_wire_unescape(const char *in, char *out);

/* One answer RR the walker kept (packet.c): a CNAME or a record of the
 * queried type, bounds-checked, class IN. */
typedef struct mxr_rr {
  const char *owner; /* escaped */
  size_t owner_len;  /* its length */
  size_t owner_off;  /* in the walk's names, while they may move */
  uint16_t type;
  uint32_t ttl;
  size_t rdata; /* offset of the RDATA in the reply */
  uint16_t rdlen;
} mxr_rr;

/* The records a decoder reads: n records of its type among rr[0..nrr)
 * (CNAMEs too: skip them), each checked by the entry's check and owned
 * by the end of the CNAME chain. */
typedef struct mxr_rrs {
  const unsigned char *pkt;
  const mxr_rr *rr;
  size_t nrr;
  size_t n;
} mxr_rrs;

/* A reader over untrusted bytes (the cache's second level): every read
 * checks what is left. */
typedef struct mxr_rd {
  const unsigned char *p;
  size_t left;
} mxr_rd;

static inline int mxr_rd_take(mxr_rd *r, size_t n, const unsigned char **out) {
  if (r->left < n)
    return 0;
  *out = r->p;
  r->p += n;
  r->left -= n;
  return 1;
}

static inline int mxr_rd_u16(mxr_rd *r, unsigned *v) {
  const unsigned char *q;
  if (!mxr_rd_take(r, 2, &q))
    return 0;
  *v = (unsigned)q[0] << 8 | q[1];
  return 1;
}

/* A u8-length-prefixed name that is already normalised ("" allowed):
 * normalising it again must give the same bytes (cache.c). *s points
 * into the reader's bytes. */
int mxr_rd_name(mxr_rd *r, const char **s, size_t *n);

static inline unsigned char *mxr_put16(unsigned char *p, unsigned v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
  return p + 2;
}

static inline unsigned char *mxr_put_name(unsigned char *p, const char *s,
                                          size_t n) {
  *p++ = (unsigned char)n;
  memcpy(p, s, n);
  return p + n;
}

/* What the resolution does with a type's records (resolve.c). */
enum {
  MXR_ROLE_NONE, /* never asked (CNAME: only followed) */
  MXR_ROLE_MX,   /* the domain's exchanges: the plan's hosts (rule 1) */
  MXR_ROLE_ADDR  /* a host's addresses of one family (rule 7) */
};

/* l2_size of records that cannot be written (a name too long). */
#define MXR_L2_NONE ((size_t)-1)

typedef struct mxr_rrtype mxr_rrtype;
struct mxr_rrtype {
  uint16_t type;
  const char *name;     /* mnemonic, in messages */
  unsigned char role;   /* MXR_ROLE_* */
  unsigned char family; /* MXR_ROLE_ADDR: 4 or 6 */
  /* packet.c: check runs on every record of the type in a reply (and
   * for mxr_packet_check); decode turns in's n records into one
   * mxr_malloc'd block that starts with the array of n records (the
   * answer's storage). On failure both write err (without the
   * "<name> <TYPE>: " prefix) and return the status. NULL decode: the
   * type is never asked for. */
  mxr_status (*check)(const mxr_rrtype *t, const unsigned char *pkt,
                      const mxr_rr *r, char *err, size_t errlen);
  mxr_status (*decode)(const mxr_rrtype *t, const mxr_rrs *in, void **recs,
                       char *err, size_t errlen);
  /* the records: size bytes each, in the typed fields of mxr_answer and
   * mxr_rrset at these offsets (pointer, then count) */
  size_t size;
  size_t ans_recs, ans_n, set_recs, set_n;
  /* cache.c: extent is what records point to (NULL: nothing), which copy
   * writes to heap while copying the array (NULL: the array is all) */
  size_t (*extent)(const void *recs, size_t n);
  void (*copy)(void *dst, const void *src, size_t n, char *heap);
  /* cache.c, second level: the records are written after the count of
   * section l2_section, l2_min bytes at least each; l2_size is their
   * size (or MXR_L2_NONE), l2_put writes them, l2_get reads n records
   * into recs (pointing into the reader's bytes) or returns 0. */
  unsigned l2_section;
  size_t l2_min;
  size_t (*l2_size)(const void *recs, size_t n);
  unsigned char *(*l2_put)(unsigned char *p, const void *recs, size_t n);
  int (*l2_get)(const mxr_rrtype *t, mxr_rd *r, void *recs, size_t n);
};

extern const mxr_rrtype mxr_rrtypes[];
extern const size_t mxr_nrrtypes;
/* The entry of a type, or NULL. */
const mxr_rrtype *mxr_rrtype_of(uint16_t type);
/* The mnemonic of a record type ("MX"), or "?". */
const char *mxr_rrtype_name(uint16_t type);

/* The records of type t in an answer or an RRset (NULL, *n = 0 for a
 * type without records), and setting them; drop clears every type's.
 * The fields are typed (mxr_mx *, mxr_addr *); the table only knows
 * where they are, so they are read and written as bytes (inline: the
 * cache and the resolution do it per lookup). */
static inline const void *mxr_rec_ptr_(const void *base, size_t off) {
  const void *p;
  memcpy(&p, (const char *)base + off, sizeof p);
  return p;
}

static inline size_t mxr_rec_count_(const void *base, size_t off) {
  size_t n;
  memcpy(&n, (const char *)base + off, sizeof n);
  return n;
}

static inline void mxr_rec_set_(void *base, size_t poff, size_t noff,
                                const void *recs, size_t n) {
  memcpy((char *)base + poff, &recs, sizeof recs);
  memcpy((char *)base + noff, &n, sizeof n);
}

static inline const void *mxr_answer_records(const mxr_answer *a,
                                             const mxr_rrtype *t, size_t *n) {
  *n = a && t && t->size ? mxr_rec_count_(a, t->ans_n) : 0;
  return *n ? mxr_rec_ptr_(a, t->ans_recs) : NULL;
}

static inline void mxr_answer_set_records(mxr_answer *a, const mxr_rrtype *t,
                                          const void *recs, size_t n) {
  if (t && t->size)
    mxr_rec_set_(a, t->ans_recs, t->ans_n, recs, n);
}

static inline const void *mxr_rrset_records(const mxr_rrset *s,
                                            const mxr_rrtype *t, size_t *n) {
  *n = s && t && t->size ? mxr_rec_count_(s, t->set_n) : 0;
  return *n ? mxr_rec_ptr_(s, t->set_recs) : NULL;
}

static inline void mxr_rrset_set_records(mxr_rrset *s, const mxr_rrtype *t,
                                         const void *recs, size_t n) {
  if (t && t->size)
    mxr_rec_set_(s, t->set_recs, t->set_n, recs, n);
}

void mxr_answer_drop_records(mxr_answer *a);

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
 * "mxr1:<type>:<name>" (MXR_CACHE_KEY_BUF bytes). A decoded entry's
 * records (of its type's table entry) are its own array, but what they
 * point to (MX names) points into the decoded bytes (not NUL-terminated:
 * use len): mxr_cache_blob_clear frees the array. */
#define MXR_CACHE_KEY_BUF 272
typedef struct mxr_cache_blob {
  uint16_t type;
  mxr_status status; /* MXR_OK or MXR_ENXDOMAIN */
  int chased;
  unsigned ncname;
  double expires;    /* Unix time the entry stops being fresh */
  char name[MXR_NAME_BUF];
  char canon[MXR_NAME_BUF];
  void *recs;
  size_t nrecs;
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

/* plan.c: the plan's normalised domain ("" without one), which stays put
 * until the plan is freed (resolve.c asks it without a copy, as it asks
 * the hosts' names). */
const char *mxr_plan_domain(const mxr_plan *p);
/* A plan in memory of the caller's (resolve.c: one allocation with the
 * resolution): mxr_plan_size octets for in and input_len (0 on
 * overflow), aligned for a pointer; mxr_plan_init makes there what
 * mxr_plan_new would (NULL as it would, mem then holding nothing to
 * free); mxr_plan_free frees what the plan took, never mem. */
size_t mxr_plan_size(const mxr_input *in, size_t input_len);
mxr_plan *mxr_plan_init(void *mem, const mxr_input *in,
                        const char *input_text, size_t input_len,
                        const mxr_opts *opts);

/* engine.c: MXR_OK when the resolver configuration at path may be read
 * (missing, or a regular file); MXR_EBADOPT with err for anything else
 * (a FIFO or a device could block the reader forever). */
mxr_status mxr_engine_conf_check(const char *path, char *err, size_t errlen);

#endif
