/*
 * packet.c — distrustful DNS answer handling (DESIGN rule 14).
 *
 * c-ares 1.18 can build queries and decode RDATA, but it accepts replies
 * with QR=0, returns unassigned rcodes as success and hands out MX
 * records owned by any name. So every reply first goes through a small
 * RR walker that checks the header, the question, the answer section's
 * bounds, class and owners, and follows the CNAME chain from the queried
 * name. Only a reply that passes is decoded, from the records the walker
 * validated. Queries are written here (mxr_query_wire), with the octets
 * ares_create_query gives. What differs between record types (RDATA
 * checks, decoders) is in rrtype.c's table.
 *
 * Names from the wire are compared in the escaped presentation form that
 * ares_expand_name produces (RFC 1035 5.1: "\." inside a label, "\DDD"
 * for unprintable octets), ASCII case-insensitively (RFC 4343); the
 * queried name is escaped the same way before comparing.
 */
#include "mxr_internal.h"
#include "mxroute.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_LEN 12
#define CLASS_IN 1
#define PKT_MAX 65535 /* RFC 1035 4.2.2: TCP length prefix is 16 bits */
#define ESC_BUF MXR_ESC_BUF

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

/* How ares_expand_name writes an octet of a label (c-ares 1.18
 * ares_expand_name.c): 0 as itself, 1 after a backslash (the reserved
 * characters of RFC 1035 5.1, '.' among them), 2 as \DDD (unprintable). */
static const unsigned char esc_class[256] = {
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 0, 1, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

/* ASCII case-insensitive equality of two escaped names (RFC 4343). */
static int esc_equal(const char *a, const char *b) {
  while (*a && *b) {
    /* equal octets (the usual case) need no folding */
    if (*a != *b && mxr_ascii_lower(*a) != mxr_ascii_lower(*b))
      return 0;
    a++;
    b++;
  }
  return *a == *b;
}

/* The same for names of known lengths: eight octets at a time while
 * they are equal (the usual case), folding only where they differ. */
static int esc_eq(const char *a, size_t na, const char *b, size_t nb) {
  size_t i = 0;
  if (na != nb)
    return 0;
  for (; i + 8 <= na; i += 8) {
    uint64_t x, y;
    memcpy(&x, a + i, 8);
    memcpy(&y, b + i, 8);
    if (x != y)
      break;
  }
  for (; i < na; i++)
    if (a[i] != b[i] && mxr_ascii_lower(a[i]) != mxr_ascii_lower(b[i]))
      return 0;
  return 1;
}

static uint16_t get16(const unsigned char *p) {
  return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         (uint32_t)p[3];
}

/* The escaping ares_expand_name applies (esc_class) to a normalised name
 * in (labels separated by '.'); returns the length written to out. */
static size_t esc_name(const char *in, char *out) {
  char *q = out;
  for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
    unsigned k = *p == '.' ? 0 : esc_class[*p];
    if (k == 0) {
      *q++ = (char)*p;
    } else if (k == 1) {
      *q++ = '\\';
      *q++ = (char)*p;
    } else {
      *q++ = '\\';
      *q++ = (char)('0' + *p / 100);
      *q++ = (char)('0' + (*p % 100) / 10);
      *q++ = (char)('0' + *p % 10);
    }
  }
  *q = '\0';
  return (size_t)(q - out);
}

/* Undo esc_name into a plain name for mxr_name_normalize. Returns 0 when
 * the name cannot be written as a plain host name: a '.' inside a label
 * or an unprintable octet. out has ESC_BUF bytes. */
int mxr_wire_unescape(const char *in, char *out) {
  char *q = out;
  const char *p = in;
  while (*p) {
    int c = (unsigned char)*p++;
    if (c == '\\') {
      if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9' &&
          p[2] >= '0' && p[2] <= '9') {
        c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        p += 3;
      } else if (*p) {
        c = (unsigned char)*p++;
      } else {
        return 0;
      }
      if (c == '.' || c < 0x21 || c > 0x7e)
        return 0;
    }
    *q++ = (char)c;
  }
  *q = '\0';
  return 1;
}

/* Expand the wire name at off into buf (escaped form, ESC_BUF bytes).
 * *used: octets it occupies at off. 0 on any failure.
 *
 * The same text and the same failures as c-ares 1.18's ares_expand_name
 * (labels joined by '.', no final dot, the root as ""; '.' and the other
 * reserved characters of RFC 1035 5.1 escaped with '\', unprintable
 * octets as \DDD), decoded here into buf: that function allocates a
 * string for every name and was the largest single cost of a reply.
 * RFC 1035 4.1.4: a pointer (top bits 11) continues the name at its
 * offset; the other top bits (01, 10: RFC 6891 extended label types) are
 * refused, and so is a pointer chain longer than the packet (a loop).
 * One deliberate difference: c-ares 1.18 copies a one-octet label 0x00
 * as a raw NUL (cutting its string short); here it is "\\000" like any
 * other unprintable octet, so such a name never equals a shorter one. */
static int wire_name(const unsigned char *pkt, size_t len, size_t off,
                     char *buf, size_t *used, size_t *blen) {
  size_t p = off, n = 0, hops = 0, enclen = 0;
  if (off >= len)
    return 0;
  for (;;) {
    unsigned c;
    if (p >= len)
      return 0;
    c = pkt[p];
    if ((c & 0xC0) == 0xC0) {
      size_t to;
      if (p + 1 >= len)
        return 0;
      to = (size_t)(c & 0x3F) << 8 | pkt[p + 1];
      if (to >= len || ++hops > len)
        return 0;
      if (!enclen)
        enclen = p + 2 - off;
      p = to;
    } else if (c & 0xC0) {
      return 0;
    } else if (c == 0) {
      if (!enclen)
        enclen = p + 1 - off;
      break;
    } else {
      const unsigned char *l = pkt + p + 1, *e = l + c;
      if (p + 1 + c >= len) /* room for at least the final octet */
        return 0;
      if (n && n + 1 < ESC_BUF)
        buf[n++] = '.';
      if (n + 4 * (size_t)c + 2 <= ESC_BUF) {
        /* the usual label: its text (4 octets at most per octet) and
         * what follows fit, no check per octet */
        char *q = buf + n;
        for (; l < e; l++) {
          unsigned char o = *l;
          if (esc_class[o] == 0) {
            *q++ = (char)o;
          } else if (esc_class[o] == 1) {
            *q++ = '\\';
            *q++ = (char)o;
          } else {
            *q++ = '\\';
            *q++ = (char)('0' + o / 100);
            *q++ = (char)('0' + (o % 100) / 10);
            *q++ = (char)('0' + o % 10);
          }
        }
        n = (size_t)(q - buf);
      } else {
        for (; l < e && n + 5 < ESC_BUF; l++) {
          if (esc_class[*l] == 2) {
            buf[n++] = '\\';
            buf[n++] = (char)('0' + *l / 100);
            buf[n++] = (char)('0' + (*l % 100) / 10);
            buf[n++] = (char)('0' + *l % 10);
          } else {
            if (esc_class[*l])
              buf[n++] = '\\';
            buf[n++] = (char)*l;
          }
        }
        if (l < e || n + 1 >= ESC_BUF)
          return 0; /* longer than any name the checks could accept */
      }
      p += 1 + c;
    }
  }
  buf[n] = '\0';
  *used = enclen;
  *blen = n;
  return 1;
}

int mxr_wire_name(const unsigned char *pkt, size_t len, size_t off,
                  char *buf, size_t *used) {
  size_t n;
  return wire_name(pkt, len, off, buf, used, &n);
}

/* RFC 2181 8: a TTL with the top bit set is treated as zero. */
static uint32_t ttl_of(uint32_t raw) {
  return (raw & 0x80000000u) ? 0 : raw;
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

mxr_status mxr_packet_query(const char *name, uint16_t type, uint16_t id,
                            unsigned char **out, size_t *outlen) {
  return mxr_packet_query_edns(name, type, id, 0, out, outlen);
}

/* The name is normalised as mxr_name_normalize does (printable ASCII but
 * space, lower case, one final dot dropped, 1..253 octets, labels 1..63)
 * in the same pass that writes its labels: the octets are those
 * ares_create_query gives for the normalised name with its backslashes
 * doubled and a final dot (csrc/test/test_query_octets.c compares them). */
mxr_status mxr_query_wire(const char *name, uint16_t type, uint16_t id,
                          uint16_t udp_size, unsigned char *out,
                          size_t *len) {
  size_t n, i, label = 0;
  unsigned char *w, *lenp;
  *len = 0;
  if (!name)
    return MXR_EBADOPT;
  if (!mxr_rrtype_of(type))
    return MXR_EBADOPT;
  n = strlen(name);
  if (n && name[n - 1] == '.')
    n--; /* the root ("" or ".") is never asked for */
  if (n == 0 || n > MXR_NAME_MAX)
    return MXR_EBADNAME;
  /* RFC 1035 4.1.1: ID, RD set (opcode QUERY), one question, and with
   * udp_size one additional record */
  w = mxr_put16(out, id);
  w = mxr_put16(w, 0x0100);
  w = mxr_put16(w, 1);
  w = mxr_put16(w, 0);
  w = mxr_put16(w, 0);
  w = mxr_put16(w, udp_size ? 1 : 0);
  lenp = w++;
  for (i = 0; i < n; i++) {
    unsigned char k = mxr_name_octet[(unsigned char)name[i]];
    if (k > 1) {
      *w++ = k;
      continue;
    }
    label = (size_t)(w - lenp) - 1;
    if (k == 0 || label == 0 || label > 63)
      return MXR_EBADNAME;
    *lenp = (unsigned char)label;
    lenp = w++;
  }
  label = (size_t)(w - lenp) - 1;
  if (label == 0 || label > 63)
    return MXR_EBADNAME;
  *lenp = (unsigned char)label;
  *w++ = 0;
  w = mxr_put16(w, type);
  w = mxr_put16(w, CLASS_IN);
  if (udp_size) {
    /* RFC 6891 6.1.2: OPT RR, root owner, CLASS the payload size, TTL 0
     * (extended RCODE, version 0, no DO), no options */
    *w++ = 0;
    w = mxr_put16(w, 41);
    w = mxr_put16(w, udp_size);
    w = mxr_put16(w, 0);
    w = mxr_put16(w, 0);
    w = mxr_put16(w, 0);
  }
  *len = (size_t)(w - out);
  return MXR_OK;
}

mxr_status mxr_packet_query_edns(const char *name, uint16_t type, uint16_t id,
                                 uint16_t udp_size, unsigned char **out,
                                 size_t *outlen) {
  unsigned char buf[MXR_QUERY_MAX];
  size_t n;
  mxr_status st;

  if (out)
    *out = NULL;
  if (outlen)
    *outlen = 0;
  if (!name || !out || !outlen)
    return MXR_EBADOPT;
  st = mxr_query_wire(name, type, id, udp_size, buf, &n);
  if (st != MXR_OK)
    return st;
  if (!(*out = mxr_malloc(n)))
    return MXR_ENOMEM;
  memcpy(*out, buf, n);
  *outlen = n;
  return MXR_OK;
}

void mxr_packet_free(unsigned char *p) { mxr_free(p); }

/* ------------------------------------------------------------------ */
/* answers                                                             */

/* One answer RR that matters: a CNAME or a record of the queried type. */
typedef mxr_rr rr;

typedef struct walk {
  const unsigned char *pkt;
  size_t len;
  uint16_t qtype;
  const mxr_rrtype *qt; /* qtype's entry */
  size_t qnorm_len, qesc_len, qtext_len;
  rr *rrs;
  size_t nrr;
  size_t auth; /* offset of the authority section */
  mxr_answer *out;
  int check_only; /* every check, no extraction (mxr_packet_check) */
  /* The owner names of rrs, one after the other: in nbuf while they fit
   * (a usual reply: no allocation per record), else on the heap. */
  char *names;
  size_t nlen, ncap;
  /* buffers from here on: written before they are read, never zeroed */
  char qnorm[MXR_NAME_BUF]; /* normalised qname */
  char qesc[ESC_BUF];       /* escaped qname */
  char qtext[ESC_BUF];      /* the reply's question name (escaped) */
  char nbuf[1024];
  rr rbuf[16]; /* rrs while they fit */
} walk;

#if defined(__GNUC__)
static mxr_status fail(walk *w, mxr_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif

/* "<qname> <TYPE>: <problem>" into out->message; returns st. */
static mxr_status fail(walk *w, mxr_status st, const char *fmt, ...) {
  va_list ap;
  int n = snprintf(w->out->message, sizeof w->out->message, "%s %s: ",
                   w->qnorm, w->qt->name);
  if (n < 0 || (size_t)n >= sizeof w->out->message)
    n = 0;
  va_start(ap, fmt);
  vsnprintf(w->out->message + n, sizeof w->out->message - (size_t)n, fmt,
            ap);
  va_end(ap);
  w->out->status = st;
  return st;
}

static void free_rrs(walk *w) {
  if (w->rrs != w->rbuf)
    mxr_free(w->rrs);
  if (w->names != w->nbuf)
    mxr_free(w->names);
  w->rrs = NULL;
  w->nrr = 0;
  w->names = NULL;
  w->nlen = w->ncap = 0;
}

/* Append an owner name (n - 1 octets) to w->names; its offset in *off.
 * 0 on OOM. */
static int keep_name(walk *w, const char *name, size_t n, size_t *off) {
  if (!w->names) {
    w->names = w->nbuf;
    w->ncap = sizeof w->nbuf;
  }
  if (w->ncap - w->nlen < n) {
    size_t ncap = (w->ncap + n) * 2;
    char *m = mxr_malloc(ncap);
    if (!m)
      return 0;
    memcpy(m, w->names, w->nlen);
    if (w->names != w->nbuf)
      mxr_free(w->names);
    w->names = m;
    w->ncap = ncap;
  }
  memcpy(w->names + w->nlen, name, n);
  *off = w->nlen;
  w->nlen += n;
  return 1;
}

/* Header checks (RFC 1035 4.1.1). Returns MXR_OK to go on; sets rcode. */
static mxr_status check_header(walk *w, int id, unsigned *rcode) {
  const unsigned char *p = w->pkt;
  unsigned opcode;
  if (w->len < HDR_LEN)
    return fail(w, MXR_EFORMERR, "reply too short (%zu octets)", w->len);
  if (w->len > PKT_MAX)
    return fail(w, MXR_EFORMERR, "reply too long (%zu octets)", w->len);
  if (!(p[2] & 0x80))
    return fail(w, MXR_EFORMERR, "reply QR bit not set");
  opcode = (unsigned)(p[2] >> 3) & 0xfu;
  if (opcode != 0)
    return fail(w, MXR_EFORMERR, "reply opcode %u, expected 0 (QUERY)",
                opcode);
  if (id >= 0 && get16(p) != (unsigned)id)
    return fail(w, MXR_EFORMERR, "reply ID %u, expected %d", get16(p), id);
  *rcode = p[3] & 0xfu;
  return MXR_OK;
}

/* The single question must be the one asked (RFC 1035 7.3). *pos is set
 * past it. */
static mxr_status check_question(walk *w, size_t *pos) {
  char *name = w->qtext;
  size_t used = 0, off = HDR_LEN, nlen = 0;
  unsigned qd = get16(w->pkt + 4);
  uint16_t t, c;
  if (qd != 1)
    return fail(w, MXR_EFORMERR, "reply has %u questions, expected 1", qd);
  if (!wire_name(w->pkt, w->len, off, name, &used, &nlen))
    return fail(w, MXR_EFORMERR, "bad question name");
  off += used;
  if (w->len - off < 4)
    return fail(w, MXR_EFORMERR, "reply truncated in the question");
  t = get16(w->pkt + off);
  c = get16(w->pkt + off + 2);
  off += 4;
  w->qtext_len = nlen;
  if (!esc_eq(name, nlen, w->qesc, w->qesc_len))
    return fail(w, MXR_EFORMERR, "reply is for another name (%s)",
                name[0] ? name : ".");
  if (t != w->qtype)
    return fail(w, MXR_EFORMERR, "reply is for another type (%u)", t);
  if (c != CLASS_IN)
    return fail(w, MXR_EFORMERR, "reply is for another class (%u)", c);
  *pos = off;
  return MXR_OK;
}

/* Bounds-check every answer RR; keep CNAMEs and records of qtype. */
static mxr_status scan_answers(walk *w, size_t pos) {
  char name[ESC_BUF];
  unsigned an = get16(w->pkt + 6);
  /* An RR takes at least 11 octets: never allocate more than fits. */
  size_t cap = an < (w->len - pos) / 11 + 1 ? an : (w->len - pos) / 11 + 1;
  w->rrs = cap <= sizeof w->rbuf / sizeof w->rbuf[0]
               ? w->rbuf
               : mxr_calloc(cap, sizeof *w->rrs);
  if (!w->rrs)
    return fail(w, MXR_ENOMEM, "out of memory");
  for (unsigned i = 0; i < an; i++) {
    size_t used = 0, nlen = 0;
    uint16_t type, klass, rdlen;
    uint32_t ttl;
    const char *owner = name;
    if (w->len - pos >= 2 && w->pkt[pos] == 0xC0 && w->pkt[pos + 1] == HDR_LEN) {
      /* a pointer to the question's name (the usual owner): the text
       * check_question decoded from there */
      owner = w->qtext;
      nlen = w->qtext_len;
      used = 2;
    } else if (!wire_name(w->pkt, w->len, pos, name, &used, &nlen)) {
      return fail(w, MXR_EFORMERR, "bad owner name in answer %u", i + 1);
    }
    pos += used;
    if (w->len - pos < 10)
      return fail(w, MXR_EFORMERR, "reply truncated in answer %u", i + 1);
    type = get16(w->pkt + pos);
    klass = get16(w->pkt + pos + 2);
    ttl = ttl_of(get32(w->pkt + pos + 4));
    rdlen = get16(w->pkt + pos + 8);
    pos += 10;
    if (w->len - pos < rdlen)
      return fail(w, MXR_EFORMERR, "RDATA of answer %u beyond the reply",
                  i + 1);
    if (klass != CLASS_IN)
      return fail(w, MXR_EFORMERR, "answer %u has class %u", i + 1, klass);
    if (type == MXR_TYPE_CNAME || type == w->qtype) {
      rr *r;
      if (w->nrr >= cap) /* cannot happen: cap bounds what fits */
        return fail(w, MXR_EFORMERR, "too many answers");
      r = &w->rrs[w->nrr];
      if (!keep_name(w, owner, nlen + 1, &r->owner_off))
        return fail(w, MXR_ENOMEM, "out of memory");
      w->nrr++;
      r->owner_len = nlen;
      r->type = type;
      r->ttl = ttl;
      r->rdata = pos;
      r->rdlen = rdlen;
    }
    pos += rdlen;
  }
  for (size_t i = 0; i < w->nrr; i++) /* names no longer move */
    w->rrs[i].owner = w->names + w->rrs[i].owner_off;
  w->auth = pos;
  return MXR_OK;
}

/* A NOERROR reply without the data asked for, not authoritative, whose
 * authority section holds NS records and no SOA, is a referral: the
 * server does not recurse and knows nothing about the name. It is not
 * NODATA (rule 2: a failure never leads to the implicit MX). An
 * authority section that does not parse is not taken as a referral. */
static int is_referral(const walk *w) {
  char name[ESC_BUF];
  unsigned ns = get16(w->pkt + 8), i, nns = 0;
  size_t pos = w->auth;
  if (w->pkt[2] & 0x04) /* AA */
    return 0;
  for (i = 0; i < ns; i++) {
    size_t used = 0;
    uint16_t type, rdlen;
    if (!mxr_wire_name(w->pkt, w->len, pos, name, &used))
      return 0;
    pos += used;
    if (w->len - pos < 10)
      return 0;
    type = get16(w->pkt + pos);
    rdlen = get16(w->pkt + pos + 8);
    pos += 10;
    if (w->len - pos < rdlen)
      return 0;
    pos += rdlen;
    if (type == 6) /* SOA: a negative answer (RFC 2308) */
      return 0;
    if (type == 2) /* NS */
      nns++;
  }
  return nns > 0;
}

/* Whether owner (escaped) is name or one of its ancestors: the zone a
 * negative answer's SOA belongs to encloses the name (RFC 2308 3). */
static int encloses(const char *owner, const char *name) {
  size_t lo = strlen(owner), ln = strlen(name);
  if (lo == 0) /* the root */
    return 1;
  if (lo > ln)
    return 0;
  if (lo < ln && (name[ln - lo - 1] != '.' ||
                  (ln - lo >= 2 && name[ln - lo - 2] == '\\')))
    return 0;
  return esc_equal(owner, name + ln - lo);
}

/* RFC 2308 5: a negative answer is cached for the smaller of the SOA
 * record's TTL and its MINIMUM field, from the SOA of the enclosing zone
 * in the authority section. Sets out->has_soa and out->neg_ttl; an
 * authority section that does not parse gives no SOA (not cacheable). */
static void find_soa(walk *w, const char *canon) {
  char name[ESC_BUF];
  unsigned ns = get16(w->pkt + 8);
  size_t pos = w->auth;
  for (unsigned i = 0; i < ns; i++) {
    size_t used = 0, rd, end;
    uint16_t type, klass, rdlen;
    uint32_t ttl, minimum;
    if (!mxr_wire_name(w->pkt, w->len, pos, name, &used))
      return;
    pos += used;
    if (w->len - pos < 10)
      return;
    type = get16(w->pkt + pos);
    klass = get16(w->pkt + pos + 2);
    ttl = ttl_of(get32(w->pkt + pos + 4));
    rdlen = get16(w->pkt + pos + 8);
    pos += 10;
    if (w->len - pos < rdlen)
      return;
    rd = pos;
    end = pos + rdlen;
    pos = end;
    if (type != 6 || klass != CLASS_IN || !encloses(name, canon))
      continue;
    /* RDATA: MNAME, RNAME, SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM */
    {
      char tmp[ESC_BUF];
      if (!mxr_wire_name(w->pkt, end, rd, tmp, &used))
        return;
      rd += used;
      if (!mxr_wire_name(w->pkt, end, rd, tmp, &used))
        return;
      rd += used;
    }
    if (end - rd != 20)
      return;
    minimum = ttl_of(get32(w->pkt + rd + 16));
    w->out->has_soa = 1;
    w->out->neg_ttl = ttl < minimum ? ttl : minimum;
    return;
  }
}

/* The names of a CNAME chain: the queried name (the walk's qesc), then
 * each target in store. */
typedef struct chain {
  const char *name[MXR_CNAME_MAX + 2];
  size_t len[MXR_CNAME_MAX + 2];
  size_t n;
  char store[MXR_CNAME_MAX + 1][ESC_BUF];
} chain;

/* Follow the CNAME chain from qname (RFC 1034 3.6.2): ch->name[ch->n - 1]
 * is its end (escaped); *hops the CNAMEs followed; *ttl is lowered. */
static mxr_status follow_chain(walk *w, chain *ch, unsigned *hops,
                               uint32_t *ttl) {
  ch->name[0] = w->qesc;
  ch->len[0] = w->qesc_len;
  ch->n = 1;
  *hops = 0;
  for (;;) {
    const rr *c = NULL;
    const char *cur = ch->name[ch->n - 1];
    size_t curlen = ch->len[ch->n - 1], used = 0, tlen = 0;
    char *target = ch->store[ch->n - 1];
    for (size_t i = 0; i < w->nrr; i++) {
      if (w->rrs[i].type != MXR_TYPE_CNAME ||
          !esc_eq(w->rrs[i].owner, w->rrs[i].owner_len, cur, curlen))
        continue;
      /* RFC 2181 10.1: one CNAME per name */
      if (c)
        return fail(w, MXR_EFORMERR, "two CNAME records for %s", cur);
      c = &w->rrs[i];
    }
    if (!c)
      return MXR_OK;
    if (c->rdlen == 0 ||
        !wire_name(w->pkt, c->rdata + c->rdlen, c->rdata, target, &used,
                   &tlen) ||
        used != c->rdlen)
      return fail(w, MXR_EFORMERR, "bad CNAME record for %s", cur);
    for (size_t i = 0; i < ch->n; i++)
      if (esc_eq(ch->name[i], ch->len[i], target, tlen))
        return fail(w, MXR_ECNAMELOOP, "CNAME loop at %s",
                    target[0] ? target : ".");
    if (*hops >= MXR_CNAME_MAX)
      return fail(w, MXR_ECNAMELOOP, "CNAME chain longer than %d",
                  MXR_CNAME_MAX);
    (*hops)++;
    if (c->ttl < *ttl)
      *ttl = c->ttl;
    ch->name[ch->n] = target;
    ch->len[ch->n] = tlen;
    ch->n++;
  }
}

/* Records of qtype: all owned by canon, well-formed RDATA. */
static mxr_status check_records(walk *w, const char *canon,
                                size_t canon_len, size_t *n, uint32_t *ttl) {
  char err[MXR_MSG_BUF];
  mxr_status st;
  *n = 0;
  for (size_t i = 0; i < w->nrr; i++) {
    const rr *r = &w->rrs[i];
    if (r->type != w->qtype)
      continue;
    if (!esc_eq(r->owner, r->owner_len, canon, canon_len))
      return fail(w, MXR_EFORMERR, "record owned by %s",
                  r->owner[0] ? r->owner : ".");
    if ((st = w->qt->check(w->qt, w->pkt, r, err, sizeof err)) != MXR_OK)
      return fail(w, st, "%s", err);
    if (r->ttl < *ttl)
      *ttl = r->ttl;
    (*n)++;
  }
  return MXR_OK;
}

/* The n records of qtype through the type's decoder (rrtype.c), into
 * the answer's fields for that type; the block is the answer's storage. */
static mxr_status decode(walk *w, size_t n) {
  char err[MXR_MSG_BUF];
  mxr_rrs in;
  void *recs = NULL;
  mxr_status st;
  in.pkt = w->pkt;
  in.rr = w->rrs;
  in.nrr = w->nrr;
  in.n = n;
  if ((st = w->qt->decode(w->qt, &in, &recs, err, sizeof err)) != MXR_OK)
    return fail(w, st, "%s", err);
  w->out->priv_ = recs;
  mxr_answer_set_records(w->out, w->qt, recs, n);
  return MXR_OK;
}

/* The chain's end as a normalised name for out->canon. */
static mxr_status set_canon(walk *w, const char *canon_esc,
                            size_t canon_len) {
  char plain[ESC_BUF], err[128];
  if (canon_esc == w->qesc || esc_eq(canon_esc, canon_len, w->qesc,
                                     w->qesc_len)) {
    memcpy(w->out->canon, w->qnorm, w->qnorm_len + 1);
    return MXR_OK;
  }
  if (!mxr_wire_unescape(canon_esc, plain) || plain[0] == '\0' ||
      mxr_name_normalize(plain, strlen(plain), w->out->canon, err,
                         sizeof err) != MXR_OK) {
    w->out->canon[0] = '\0';
    return fail(w, MXR_EFORMERR, "CNAME target %s is not a host name",
                canon_esc[0] ? canon_esc : ".");
  }
  return MXR_OK;
}

static mxr_status parse(walk *w, int id) {
  mxr_answer *out = w->out;
  chain ch;
  const char *canon;
  size_t canon_len;
  unsigned rcode = 0, hops = 0;
  size_t pos = 0, n = 0;
  uint32_t ttl = UINT32_MAX;
  mxr_status st;

  if ((st = check_header(w, id, &rcode)) != MXR_OK)
    return st;
  /* RFC 1035 4.1.1 TC: the records cannot be trusted to be complete;
   * the transport asks again over TCP (RFC 7766). */
  if (w->pkt[2] & 0x02) {
    out->truncated = 1;
    return MXR_OK;
  }
  switch (rcode) {
  case 0: /* NOERROR */
  case 2: /* SERVFAIL */
  case 3: /* NXDOMAIN */
  case 5: /* REFUSED */
    break;
  case 1:
    return fail(w, MXR_EFORMERR, "server says FORMERR (rcode 1)");
  case 4:
    return fail(w, MXR_EFORMERR, "server says NOTIMP (rcode 4)");
  default: /* 6-10 are for UPDATE (RFC 2136), 11-15 unassigned */
    return fail(w, MXR_EFORMERR, "unassigned rcode %u", rcode);
  }
  if ((st = check_question(w, &pos)) != MXR_OK)
    return st;
  if (rcode == 2)
    return fail(w, MXR_ESERVFAIL, "server failure (SERVFAIL)");
  if (rcode == 5)
    return fail(w, MXR_EREFUSED, "query refused (REFUSED)");
  if ((st = scan_answers(w, pos)) != MXR_OK)
    return st;
  if ((st = follow_chain(w, &ch, &hops, &ttl)) != MXR_OK)
    return st;
  canon = ch.name[ch.n - 1];
  canon_len = ch.len[ch.n - 1];
  if ((st = check_records(w, canon, canon_len, &n, &ttl)) != MXR_OK)
    return st;
  if ((st = set_canon(w, canon, canon_len)) != MXR_OK)
    return st;
  out->ncname = hops;
  out->ttl = ttl == UINT32_MAX ? 0 : ttl;
  if (rcode == 3) {
    /* RFC 6604 2.1: the rcode is about the last name of the chain */
    if (n)
      return fail(w, MXR_EFORMERR, "NXDOMAIN with %s records",
                  w->qt->name);
    find_soa(w, canon);
    if (hops)
      return fail(w, MXR_ENXDOMAIN, "%s does not exist", out->canon);
    return fail(w, MXR_ENXDOMAIN, "name does not exist");
  }
  if (n == 0) { /* NODATA */
    if (hops == 0 && is_referral(w))
      return fail(w, MXR_ESERVFAIL,
                  "referral instead of an answer (the server does not "
                  "recurse)");
    out->chased = hops > 0;
    if (!out->chased)
      find_soa(w, canon);
    return MXR_OK;
  }
  if (w->check_only)
    return MXR_OK;
  return decode(w, n);
}

/* The queried name normalised (qnorm, as mxr_name_normalize) and escaped
 * (qesc, as esc_name), in one pass for a usual name; 0 for a bad name or
 * the root. */
static int prep_qname(walk *w, const char *qname) {
  size_t n = strlen(qname), i, start = 0;
  char *q = w->qesc;
  if (n && qname[n - 1] == '.')
    n--;
  if (n > 0 && n <= MXR_NAME_MAX) {
    for (i = 0; i < n; i++) {
      unsigned char k = mxr_name_octet[(unsigned char)qname[i]];
      if (k <= 1) {
        if (k == 0 || i == start || i - start > 63)
          break;
        start = i + 1;
        k = '.';
      } else if (esc_class[k]) { /* only the reserved ones: printable */
        *q++ = '\\';
      }
      w->qnorm[i] = (char)k;
      *q++ = (char)k;
    }
    if (i == n && n > start && n - start <= 63) {
      w->qnorm[n] = '\0';
      *q = '\0';
      w->qnorm_len = n;
      w->qesc_len = (size_t)(q - w->qesc);
      return 1;
    }
  }
  /* anything else: the long way, the same answer */
  if (mxr_name_normalize(qname, strlen(qname), w->qnorm, NULL, 0) !=
          MXR_OK ||
      w->qnorm[0] == '\0')
    return 0;
  w->qnorm_len = strlen(w->qnorm);
  w->qesc_len = esc_name(w->qnorm, w->qesc);
  return 1;
}

/* parse_answer zeroes an answer around its text buffers, canon first */
typedef char canon_before_message[offsetof(mxr_answer, canon) <
                                          offsetof(mxr_answer, message)
                                      ? 1
                                      : -1];

static mxr_status parse_answer(const unsigned char *pkt, size_t len,
                               const char *qname, uint16_t qtype, int id,
                               mxr_answer *out, int check_only) {
  walk w;
  mxr_status st;
  if (!out)
    return MXR_EBADOPT;
  /* *out zeroed but for its two text buffers, which are emptied */
  {
    char *o = (char *)out;
    size_t c0 = offsetof(mxr_answer, canon) + sizeof out->canon,
           m0 = offsetof(mxr_answer, message) + sizeof out->message;
    memset(o, 0, offsetof(mxr_answer, canon));
    memset(o + c0, 0, offsetof(mxr_answer, message) - c0);
    memset(o + m0, 0, sizeof *out - m0);
    out->canon[0] = '\0';
    out->message[0] = '\0';
  }
  memset(&w, 0, offsetof(walk, qnorm));
  w.pkt = pkt;
  w.len = pkt ? len : 0;
  w.qtype = qtype;
  w.qt = mxr_rrtype_of(qtype);
  w.out = out;
  w.check_only = check_only;
  if (!qname || !prep_qname(&w, qname)) {
    snprintf(out->message, sizeof out->message, "bad query name");
    out->status = MXR_EBADOPT;
    return MXR_EBADOPT;
  }
  if (!w.qt || !w.qt->decode) {
    snprintf(out->message, sizeof out->message, "%s ?: unsupported query "
             "type %u", w.qnorm, qtype);
    out->status = MXR_EBADOPT;
    return MXR_EBADOPT;
  }
  if (id > 0xffff)
    return fail(&w, MXR_EBADOPT, "bad query ID %d", id);
  memcpy(out->canon, w.qnorm, w.qnorm_len + 1);
  st = parse(&w, id);
  free_rrs(&w);
  out->status = st;
  if (st != MXR_OK) { /* never data on failure */
    mxr_answer_clear(out);
    out->chased = 0;
    if (st != MXR_ENXDOMAIN)
      out->has_soa = 0;
  }
  return st;
}

mxr_status mxr_packet_parse(const unsigned char *pkt, size_t len,
                            const char *qname, uint16_t qtype, int id,
                            mxr_answer *out) {
  return parse_answer(pkt, len, qname, qtype, id, out, 0);
}

/* Every check of mxr_packet_parse, without extracting the records (the
 * exchange decodes each reply once, with mxr_packet_parse). */
mxr_status mxr_packet_check(const unsigned char *pkt, size_t len,
                            const char *qname, uint16_t qtype, int id,
                            mxr_answer *out) {
  return parse_answer(pkt, len, qname, qtype, id, out, 1);
}

void mxr_answer_clear(mxr_answer *a) {
  if (!a)
    return;
  mxr_free(a->priv_);
  a->priv_ = NULL;
  mxr_answer_drop_records(a);
}
