/*
 * rrtype.c — the record types mxroute asks for, one table entry each.
 *
 * Everything that differs between record types lives here, so that the
 * layers stay generic: packet.c walks and checks a reply and calls the
 * entry's check and decode; the answer (mxr_answer) and the cache's view
 * (mxr_rrset) hold the decoded records in the fields the entry names;
 * cache.c copies an entry's records with its copy and writes them to
 * the second level with its l2 codec; resolve.c asks the types of a
 * role and hands their records to the plan by role. A new type (TLSA for
 * DANE, TXT for MTA-STS) is one entry here with its functions, and the
 * public fields that carry its records (doc/architecture.md, "Adding a
 * record type").
 *
 * CNAME is in the table only to be named and followed (RFC 1034 3.6.2):
 * it has no decoder, so it is never asked for nor cached.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static uint16_t get16(const unsigned char *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* ------------------------------------------------------------------ */
/* A and AAAA (RFC 1035 3.4.1, RFC 3596 2.2): mxr_addr records         */

static mxr_status check_addr(const mxr_rrtype *t, const unsigned char *pkt,
                             const mxr_rr *r, char *err, size_t errlen) {
  (void)pkt;
  if (r->rdlen == (t->family == 4 ? 4 : 16))
    return MXR_OK;
  snprintf(err, errlen, "%s record with RDLENGTH %u", t->name, r->rdlen);
  return MXR_EFORMERR;
}

/* The records' RDATA in the order of the reply. c-ares' parsers used to
 * decode them once more (walking the reply again, with allocations). */
static mxr_status decode_addr(const mxr_rrtype *t, const mxr_rrs *in,
                              void **recs, char *err, size_t errlen) {
  mxr_addr *a = mxr_calloc(in->n, sizeof *a);
  size_t k = 0;
  if (!a) {
    snprintf(err, errlen, "out of memory");
    return MXR_ENOMEM;
  }
  for (size_t i = 0; i < in->nrr && k < in->n; i++) {
    const mxr_rr *r = &in->rr[i];
    if (r->type != t->type)
      continue;
    a[k].family = t->family;
    memcpy(a[k].bytes, in->pkt + r->rdata, r->rdlen);
    k++;
  }
  *recs = a;
  return MXR_OK;
}

/* Second level: u8 family (4 or 6), then 4 or 16 bytes. */
static size_t l2_size_addr(const void *recs, size_t n) {
  const mxr_addr *a = recs;
  size_t size = 0;
  for (size_t i = 0; i < n; i++)
    size += a[i].family == 4 ? 5u : 17u;
  return size;
}

static unsigned char *l2_put_addr(unsigned char *p, const void *recs,
                                  size_t n) {
  const mxr_addr *a = recs;
  for (size_t i = 0; i < n; i++) {
    size_t len = a[i].family == 4 ? 4 : 16;
    *p++ = a[i].family == 4 ? 4 : 6;
    memcpy(p, a[i].bytes, len);
    p += len;
  }
  return p;
}

static int l2_get_addr(const mxr_rrtype *t, mxr_rd *r, void *recs,
                       size_t n) {
  mxr_addr *a = recs;
  size_t len = t->family == 4 ? 4 : 16;
  for (size_t i = 0; i < n; i++) {
    const unsigned char *q;
    if (!mxr_rd_take(r, 1, &q) || q[0] != t->family ||
        !mxr_rd_take(r, len, &q))
      return 0;
    a[i].family = t->family;
    memcpy(a[i].bytes, q, len);
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* MX (RFC 1035 3.3.9: PREFERENCE, EXCHANGE): mxr_mx records           */

/* EXCHANGE must fill the rest of the RDATA exactly. */
static mxr_status check_mx(const mxr_rrtype *t, const unsigned char *pkt,
                           const mxr_rr *r, char *err, size_t errlen) {
  char name[MXR_ESC_BUF];
  size_t used = 0;
  (void)t;
  if (r->rdlen >= 3 &&
      mxr_wire_name(pkt, r->rdata + r->rdlen, r->rdata + 2, name, &used) &&
      used == (size_t)r->rdlen - 2)
    return MXR_OK;
  snprintf(err, errlen, "bad MX record");
  return MXR_EFORMERR;
}

/* The records the walker validated, in the order of the reply, as one
 * block: the mxr_mx array, then each name in MXR_NAME_BUF bytes.
 * Decoding them in place replaced ares_parse_mx_reply, which allocated
 * per record and per name and walked the reply once more. An exchange
 * that is no host name fails the whole answer (rule 14). */
static mxr_status decode_mx(const mxr_rrtype *t, const mxr_rrs *in,
                            void **recs, char *err, size_t errlen) {
  unsigned char *block = mxr_malloc(in->n * (sizeof(mxr_mx) + MXR_NAME_BUF));
  mxr_mx *mx;
  char *names;
  size_t i = 0;
  if (!block) {
    snprintf(err, errlen, "out of memory");
    return MXR_ENOMEM;
  }
  mx = (mxr_mx *)(void *)block;
  names = (char *)(block + in->n * sizeof *mx);
  for (size_t k = 0; k < in->nrr; k++) {
    const mxr_rr *r = &in->rr[k];
    char esc[MXR_ESC_BUF], plain[MXR_ESC_BUF], nerr[128];
    char *dst = names + i * MXR_NAME_BUF;
    size_t used = 0;
    if (r->type != t->type)
      continue;
    if (i >= in->n || r->rdlen < 3 ||
        !mxr_wire_name(in->pkt, r->rdata + r->rdlen, r->rdata + 2, esc,
                       &used))
      goto inconsistent;
    if (esc[0] == '\0') { /* RFC 7505: the root, "." */
      dst[0] = '\0';
    } else if (!mxr_wire_unescape(esc, plain) ||
               mxr_name_normalize(plain, strlen(plain), dst, nerr,
                                  sizeof nerr) != MXR_OK) {
      snprintf(err, errlen, "MX exchange %.60s is not a host name", esc);
      mxr_free(block);
      return MXR_EFORMERR;
    }
    mx[i].pref = get16(in->pkt + r->rdata);
    mx[i].name = dst;
    mx[i].len = strlen(dst);
    i++;
  }
  if (i == in->n) {
    *recs = block;
    return MXR_OK;
  }
inconsistent:
  snprintf(err, errlen, "inconsistent MX records");
  mxr_free(block);
  return MXR_EFORMERR;
}

/* A deep copy: the names go to heap, NUL-terminated. */
static size_t extent_mx(const void *recs, size_t n) {
  const mxr_mx *mx = recs;
  size_t size = 0;
  for (size_t i = 0; i < n; i++)
    size += mx[i].len + 1;
  return size;
}

static void copy_mx(void *dst, const void *src, size_t n, char *heap) {
  mxr_mx *d = dst;
  const mxr_mx *s = src;
  for (size_t i = 0; i < n; i++) {
    memcpy(heap, s[i].name, s[i].len);
    heap[s[i].len] = '\0';
    d[i].pref = s[i].pref;
    d[i].name = heap;
    d[i].len = s[i].len;
    heap += s[i].len + 1;
  }
}

/* Second level: u16 pref, u8 len, name ("" is the null MX). */
static size_t l2_size_mx(const void *recs, size_t n) {
  const mxr_mx *mx = recs;
  size_t size = 0;
  for (size_t i = 0; i < n; i++) {
    if (mx[i].len > MXR_NAME_MAX)
      return MXR_L2_NONE;
    size += 3 + mx[i].len;
  }
  return size;
}

static unsigned char *l2_put_mx(unsigned char *p, const void *recs,
                                size_t n) {
  const mxr_mx *mx = recs;
  for (size_t i = 0; i < n; i++) {
    p = mxr_put16(p, mx[i].pref);
    p = mxr_put_name(p, mx[i].name, mx[i].len);
  }
  return p;
}

/* The names point into the reader's bytes (not NUL-terminated). */
static int l2_get_mx(const mxr_rrtype *t, mxr_rd *r, void *recs, size_t n) {
  mxr_mx *mx = recs;
  (void)t;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (!mxr_rd_u16(r, &v) || !mxr_rd_name(r, &mx[i].name, &mx[i].len))
      return 0;
    mx[i].pref = (uint16_t)v;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* the table                                                           */

/* Where a type's records live in mxr_answer and mxr_rrset. */
#define FIELDS(recs, n)                                                     \
  .ans_recs = offsetof(mxr_answer, recs), .ans_n = offsetof(mxr_answer, n), \
  .set_recs = offsetof(mxr_rrset, recs), .set_n = offsetof(mxr_rrset, n)

/* The order is the order of asking: A before AAAA for every host (the
 * resolution walks the table for the types of a role). */
const mxr_rrtype mxr_rrtypes[] = {
    {.type = MXR_TYPE_A, .name = "A", .role = MXR_ROLE_ADDR, .family = 4,
     .check = check_addr, .decode = decode_addr, .size = sizeof(mxr_addr),
     FIELDS(addrs, naddrs), .l2_section = 1, .l2_min = 5,
     .l2_size = l2_size_addr, .l2_put = l2_put_addr, .l2_get = l2_get_addr},
    {.type = MXR_TYPE_AAAA, .name = "AAAA", .role = MXR_ROLE_ADDR,
     .family = 6, .check = check_addr, .decode = decode_addr,
     .size = sizeof(mxr_addr), FIELDS(addrs, naddrs), .l2_section = 1,
     .l2_min = 17, .l2_size = l2_size_addr, .l2_put = l2_put_addr,
     .l2_get = l2_get_addr},
    {.type = MXR_TYPE_MX, .name = "MX", .role = MXR_ROLE_MX,
     .check = check_mx, .decode = decode_mx, .size = sizeof(mxr_mx),
     FIELDS(mx, nmx), .extent = extent_mx, .copy = copy_mx,
     .l2_section = 0, .l2_min = 3, .l2_size = l2_size_mx,
     .l2_put = l2_put_mx, .l2_get = l2_get_mx},
    {.type = MXR_TYPE_CNAME, .name = "CNAME", .role = MXR_ROLE_NONE},
};
const size_t mxr_nrrtypes = sizeof mxr_rrtypes / sizeof mxr_rrtypes[0];

const mxr_rrtype *mxr_rrtype_of(uint16_t type) {
  for (size_t i = 0; i < mxr_nrrtypes; i++)
    if (mxr_rrtypes[i].type == type)
      return &mxr_rrtypes[i];
  return NULL;
}

const char *mxr_rrtype_name(uint16_t type) {
  const mxr_rrtype *t = mxr_rrtype_of(type);
  return t ? t->name : "?";
}

/* ------------------------------------------------------------------ */
/* records in the answer and in the cache's view                       */

void mxr_answer_drop_records(mxr_answer *a) {
  for (size_t i = 0; i < mxr_nrrtypes; i++)
    mxr_answer_set_records(a, &mxr_rrtypes[i], NULL, 0);
}
