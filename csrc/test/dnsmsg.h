/*
 * dnsmsg.h — a byte-by-byte DNS message builder for the C tests.
 *
 * It builds anything, including broken messages: the tests use it to
 * feed the answer checks and the resolution state machine without a
 * network. Records are appended to the answer section and ANCOUNT is
 * bumped; everything else is set with the raw setters.
 */
#ifndef MXR_TEST_DNSMSG_H
#define MXR_TEST_DNSMSG_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define DM_MAX 8192

typedef struct dm {
  unsigned char b[DM_MAX];
  size_t n;
} dm;

static inline void dm_u8(dm *m, unsigned v) {
  if (m->n < DM_MAX)
    m->b[m->n++] = (unsigned char)v;
}

static inline void dm_u16(dm *m, unsigned v) {
  dm_u8(m, (v >> 8) & 0xff);
  dm_u8(m, v & 0xff);
}

static inline void dm_u32(dm *m, uint32_t v) {
  dm_u16(m, (unsigned)(v >> 16));
  dm_u16(m, (unsigned)(v & 0xffff));
}

static inline void dm_put16(dm *m, size_t at, unsigned v) {
  m->b[at] = (unsigned char)((v >> 8) & 0xff);
  m->b[at + 1] = (unsigned char)(v & 0xff);
}

static inline unsigned dm_get16(const dm *m, size_t at) {
  return (unsigned)m->b[at] << 8 | m->b[at + 1];
}

/* A name in wire form, uncompressed: "a.b" or "a.b." or "" / "." (root).
 * No escapes: labels are split at every '.'. */
static inline void dm_name(dm *m, const char *name) {
  const char *p = strcmp(name, ".") == 0 ? "" : name;
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t l = dot ? (size_t)(dot - p) : strlen(p);
    dm_u8(m, (unsigned)l);
    for (size_t i = 0; i < l; i++)
      dm_u8(m, (unsigned char)p[i]);
    p += l;
    if (*p == '.')
      p++;
  }
  dm_u8(m, 0);
}

/* A compression pointer to offset off (RFC 1035 4.1.4). */
static inline void dm_ptr(dm *m, size_t off) {
  dm_u16(m, 0xc000u | (unsigned)(off & 0x3fff));
}

/* Flags word: QR=1, opcode 0, RD=1, RA=1, the given rcode. */
#define DM_RESPONSE 0x8180u
#define DM_QR 0x8000u
#define DM_TC 0x0200u

/* Header with QDCOUNT = 1 and a question; the sections start empty. */
static inline void dm_reply(dm *m, unsigned id, unsigned flags,
                            unsigned rcode, const char *qname,
                            unsigned qtype) {
  m->n = 0;
  dm_u16(m, id);
  dm_u16(m, (flags & ~0xfu) | (rcode & 0xfu));
  dm_u16(m, 1);
  dm_u16(m, 0);
  dm_u16(m, 0);
  dm_u16(m, 0);
  dm_name(m, qname);
  dm_u16(m, qtype);
  dm_u16(m, 1);
}

/* Start an answer RR; returns where RDLENGTH goes (for dm_rr_end). */
static inline size_t dm_rr_begin(dm *m, const char *owner, unsigned type,
                                 unsigned klass, uint32_t ttl) {
  size_t at;
  dm_put16(m, 6, dm_get16(m, 6) + 1);
  dm_name(m, owner);
  dm_u16(m, type);
  dm_u16(m, klass);
  dm_u32(m, ttl);
  at = m->n;
  dm_u16(m, 0);
  return at;
}

static inline void dm_rr_end(dm *m, size_t at) {
  dm_put16(m, at, (unsigned)(m->n - at - 2));
}

static inline void dm_mx(dm *m, const char *owner, uint32_t ttl,
                         unsigned pref, const char *exchange) {
  size_t at = dm_rr_begin(m, owner, 15, 1, ttl);
  dm_u16(m, pref);
  dm_name(m, exchange);
  dm_rr_end(m, at);
}

static inline void dm_cname(dm *m, const char *owner, uint32_t ttl,
                            const char *target) {
  size_t at = dm_rr_begin(m, owner, 5, 1, ttl);
  dm_name(m, target);
  dm_rr_end(m, at);
}

/* A record from four octets. */
static inline void dm_a(dm *m, const char *owner, uint32_t ttl, unsigned a,
                        unsigned b, unsigned c, unsigned d) {
  size_t at = dm_rr_begin(m, owner, 1, 1, ttl);
  dm_u8(m, a);
  dm_u8(m, b);
  dm_u8(m, c);
  dm_u8(m, d);
  dm_rr_end(m, at);
}

/* AAAA record 2001:db8::<last> */
static inline void dm_aaaa(dm *m, const char *owner, uint32_t ttl,
                           unsigned last) {
  size_t at = dm_rr_begin(m, owner, 28, 1, ttl);
  dm_u16(m, 0x2001);
  dm_u16(m, 0x0db8);
  for (int i = 0; i < 5; i++)
    dm_u16(m, 0);
  dm_u16(m, last);
  dm_rr_end(m, at);
}

/* Write the message to dir/name (for seed corpora). 0 on success. */
static inline int dm_write(const dm *m, const char *dir, const char *name) {
  char path[1024];
  FILE *f;
  size_t w;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  if (!f)
    return -1;
  w = fwrite(m->b, 1, m->n, f);
  if (fclose(f) != 0 || w != m->n)
    return -1;
  return 0;
}

/* An SOA in the authority section (NSCOUNT at offset 8), for the
 * negative TTL rules (RFC 2308 5); cut: octets left out at the end of
 * its RDATA (a broken SOA). */
static inline void dm_soa_cut(dm *m, const char *owner, uint32_t ttl,
                              uint32_t minimum, size_t cut) {
  size_t at;
  dm_put16(m, 8, dm_get16(m, 8) + 1);
  dm_name(m, owner);
  dm_u16(m, 6);
  dm_u16(m, 1);
  dm_u32(m, ttl);
  at = m->n;
  dm_u16(m, 0);
  dm_name(m, "ns.test");
  dm_name(m, "hostmaster.test");
  dm_u32(m, 1);     /* serial */
  dm_u32(m, 3600);  /* refresh */
  dm_u32(m, 600);   /* retry */
  dm_u32(m, 86400); /* expire */
  dm_u32(m, minimum);
  m->n -= cut;
  dm_rr_end(m, at);
}

static inline void dm_soa(dm *m, const char *owner, uint32_t ttl,
                          uint32_t minimum) {
  dm_soa_cut(m, owner, ttl, minimum, 0);
}

#endif
