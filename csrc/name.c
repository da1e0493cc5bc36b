/*
 * name: input parsing (RFC 5321 4.1.2 / 4.1.3), DNS name normalisation,
 * IP addresses and CIDRs. No locale: ASCII case folding only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mxr_internal.h"
#include "mxroute.h"

/* RFC 5321 4.5.3.1.1: local part at most 64 octets. */
#define LOCAL_MAX 64
/* RFC 1035 2.3.4: labels at most 63 octets. */
#define LABEL_MAX 63
/* How much of a bad input is echoed back in a message. */
#define SHOW_MAX 80

size_t mxr_escape(char *out, size_t outlen, const char *s, size_t len,
                  size_t maxshow) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0, i;
  if (outlen == 0)
    return 0;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (i >= maxshow) {
      if (o + 3 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
      }
      break;
    }
    if (c >= 0x20 && c <= 0x7e) {
      if (o + 1 >= outlen)
        break;
      out[o++] = (char)c;
    } else {
      if (o + 4 >= outlen)
        break;
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o] = '\0';
  return o;
}

/* err = "<escaped subject>: <formatted problem>" (subject omitted when
 * empty). Always returns MXR_EBADNAME. */
static mxr_status fail(char *err, size_t errlen, const char *subj,
                       size_t sublen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static mxr_status fail(char *err, size_t errlen, const char *subj,
                       size_t sublen, const char *fmt, ...) {
  va_list ap;
  size_t o = 0;
  if (err == NULL || errlen == 0)
    return MXR_EBADNAME;
  err[0] = '\0';
  if (sublen > 0) {
    o = mxr_escape(err, errlen, subj, sublen, SHOW_MAX);
    if (o + 2 < errlen) {
      err[o++] = ':';
      err[o++] = ' ';
      err[o] = '\0';
    }
  }
  if (o + 1 < errlen) {
    va_start(ap, fmt);
    vsnprintf(err + o, errlen - o, fmt, ap);
    va_end(ap);
  }
  return MXR_EBADNAME;
}

/* A printable form of one byte for "character 'x'" messages. */
static const char *show_char(unsigned char c, char buf[8]) {
  if (c >= 0x20 && c <= 0x7e) {
    buf[0] = '\'';
    buf[1] = (char)c;
    buf[2] = '\'';
    buf[3] = '\0';
  } else {
    snprintf(buf, 8, "0x%02x", (unsigned)c);
  }
  return buf;
}

static int is_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* RFC 5321 4.1.2 atext (RFC 5322 3.2.3). */
static int is_atext(unsigned char c) {
  return is_alpha(c) || is_digit(c) ||
         (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* ------------------------------------------------------------------ */
/* addresses                                                           */

/* Strict dotted quad: exactly four decimal parts 0..255, no leading
 * zeros ("010" is octal to inet_aton and decimal to others: ambiguous,
 * so rejected), nothing else. */
static int parse_ipv4(const char *s, size_t len, uint8_t out[4]) {
  size_t i = 0;
  int part;
  for (part = 0; part < 4; part++) {
    unsigned v = 0;
    size_t start = i;
    if (part > 0) {
      if (i >= len || s[i] != '.')
        return -1;
      start = ++i;
    }
    while (i < len && is_digit((unsigned char)s[i]) && i - start < 3)
      v = v * 10 + (unsigned)(s[i++] - '0');
    if (i == start || v > 255 || (i - start > 1 && s[start] == '0'))
      return -1;
    out[part] = (uint8_t)v;
  }
  return i == len ? 0 : -1;
}

static int parse_ipv6(const char *s, size_t len, uint8_t out[16]) {
  char buf[64];
  size_t i;
  if (len == 0 || len >= sizeof buf)
    return -1;
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!(is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
          c == ':' || c == '.'))
      return -1;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  return inet_pton(AF_INET6, buf, out) == 1 ? 0 : -1;
}

mxr_status mxr_addr_parse(const char *s, size_t len, mxr_addr *out) {
  mxr_addr a;
  if (s == NULL || out == NULL)
    return MXR_EBADOPT;
  memset(&a, 0, sizeof a);
  if (memchr(s, ':', len) != NULL) {
    if (parse_ipv6(s, len, a.bytes) != 0)
      return MXR_EBADNAME;
    a.family = 6;
  } else {
    if (parse_ipv4(s, len, a.bytes) != 0)
      return MXR_EBADNAME;
    a.family = 4;
  }
  *out = a;
  return MXR_OK;
}

static const uint8_t mapped_prefix[12] = {0, 0, 0, 0, 0, 0,
                                          0, 0, 0, 0, 0xff, 0xff};

static int is_mapped(const mxr_addr *a) {
  return a->family == 6 && memcmp(a->bytes, mapped_prefix, 12) == 0;
}

void mxr_addr_key(const mxr_addr *a, uint8_t key[16]) {
  if (a->family == 4) {
    memcpy(key, mapped_prefix, 12);
    memcpy(key + 12, a->bytes, 4);
  } else {
    memcpy(key, a->bytes, 16);
  }
}

/* Decimal octet, no leading zeros; returns the new end. */
static char *put_octet(char *o, unsigned v) {
  if (v >= 100)
    *o++ = (char)('0' + v / 100);
  if (v >= 10)
    *o++ = (char)('0' + v / 10 % 10);
  *o++ = (char)('0' + v % 10);
  return o;
}

static char *put_quad(char *o, const uint8_t *b) {
  int i;
  for (i = 0; i < 4; i++) {
    if (i)
      *o++ = '.';
    o = put_octet(o, b[i]);
  }
  return o;
}

/* Lower-case hex group, no leading zeros. */
static char *put_group(char *o, unsigned v) {
  static const char hex[] = "0123456789abcdef";
  int shift, started = 0;
  for (shift = 12; shift >= 0; shift -= 4) {
    unsigned d = v >> shift & 15u;
    if (d || started || shift == 0) {
      *o++ = hex[d];
      started = 1;
    }
  }
  return o;
}

/* RFC 5952: lower-case hex, no leading zeros, the longest run (first on
 * a tie) of two or more zero groups as "::", IPv4-mapped in dotted form
 * (5952 section 5). Hand-rolled: this runs for every address of every
 * plan handed to Lua. */
void mxr_addr_format(const mxr_addr *a, char *buf) {
  const uint8_t *b = a->bytes;
  unsigned w[8];
  int i, best = -1, bestlen = 0, cur = -1, curlen = 0;
  char *o = buf;
  if (a->family == 4) {
    *put_quad(o, b) = '\0';
    return;
  }
  if (a->family != 6) {
    buf[0] = '\0';
    return;
  }
  if (is_mapped(a)) {
    memcpy(o, "::ffff:", 7);
    *put_quad(o + 7, b + 12) = '\0';
    return;
  }
  for (i = 0; i < 8; i++)
    w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
  for (i = 0; i < 8; i++) {
    if (w[i] == 0) {
      if (cur < 0) {
        cur = i;
        curlen = 0;
      }
      if (++curlen > bestlen) {
        best = cur;
        bestlen = curlen;
      }
    } else {
      cur = -1;
    }
  }
  if (bestlen < 2)
    best = -1;
  for (i = 0; i < 8; i++) {
    if (i == best) {
      *o++ = ':';
      *o++ = ':';
      i += bestlen - 1;
      continue;
    }
    if (o > buf && o[-1] != ':')
      *o++ = ':';
    o = put_group(o, w[i]);
  }
  *o = '\0';
}

int mxr_addr_equal(const mxr_addr *a, const mxr_addr *b) {
  uint8_t ka[16], kb[16];
  if (a == NULL || b == NULL || (a->family != 4 && a->family != 6) ||
      (b->family != 4 && b->family != 6))
    return 0;
  mxr_addr_key(a, ka);
  mxr_addr_key(b, kb);
  return memcmp(ka, kb, 16) == 0;
}

/* Host bits beyond the prefix are accepted and cleared ("10.1.2.3/8"
 * means 10.0.0.0/8), as most ACL syntaxes do. */
mxr_status mxr_cidr_parse(const char *s, size_t len, mxr_cidr *out) {
  const char *slash;
  mxr_cidr c;
  size_t alen, i;
  unsigned bits = 0, max;
  if (s == NULL || out == NULL)
    return MXR_EBADOPT;
  memset(&c, 0, sizeof c);
  slash = memchr(s, '/', len);
  alen = slash ? (size_t)(slash - s) : len;
  if (mxr_addr_parse(s, alen, &c.addr) != MXR_OK)
    return MXR_EBADNAME;
  max = c.addr.family == 4 ? 32 : 128;
  if (slash) {
    size_t dstart = alen + 1, nd = len - dstart;
    if (nd == 0 || nd > 3 || (nd > 1 && s[dstart] == '0'))
      return MXR_EBADNAME;
    for (i = dstart; i < len; i++) {
      if (!is_digit((unsigned char)s[i]))
        return MXR_EBADNAME;
      bits = bits * 10 + (unsigned)(s[i] - '0');
    }
    if (bits > max)
      return MXR_EBADNAME;
  } else {
    bits = max;
  }
  c.bits = (uint8_t)bits;
  for (i = 0; i < max / 8; i++) {
    size_t lo = 8 * i;
    if (bits <= lo)
      c.addr.bytes[i] = 0;
    else if (bits < lo + 8)
      c.addr.bytes[i] &= (uint8_t)(0xffu << (lo + 8 - bits));
  }
  *out = c;
  return MXR_OK;
}

/* An IPv4-mapped address, or a CIDR inside ::ffff:0:0/96, is judged as
 * the IPv4 address/prefix it carries (DESIGN rule 11). */
int mxr_cidr_contains(const mxr_cidr *c, const mxr_addr *a) {
  const uint8_t *x, *net;
  int xf, nf;
  unsigned bits, i;
  if (c == NULL || a == NULL)
    return 0;
  /* read in place, the mapped forms from their last four octets */
  x = a->bytes;
  xf = a->family;
  if (is_mapped(a)) {
    xf = 4;
    x += 12;
  }
  net = c->addr.bytes;
  nf = c->addr.family;
  bits = c->bits;
  if (bits >= 96 && is_mapped(&c->addr)) {
    nf = 4;
    net += 12;
    bits -= 96;
  }
  if (nf != xf || (xf != 4 && xf != 6))
    return 0;
  for (i = 0; i < bits / 8; i++)
    if (net[i] != x[i])
      return 0;
  if (bits % 8) {
    uint8_t m = (uint8_t)(0xffu << (8 - bits % 8));
    if ((net[i] & m) != (x[i] & m))
      return 0;
  }
  return 1;
}

/* ------------------------------------------------------------------ */
/* DNS names                                                           */

/* Names from DNS data and options: printable ASCII except space (DNS
 * data may hold '_' and the like), ASCII lower case, one trailing dot
 * removed, 1..253 octets, labels 1..63. The root ("." or "") normalises
 * to "": that is how a null MX exchange (RFC 7505) is represented. */
const unsigned char mxr_name_octet[256] = {
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0, '!', '"', '#', '$', '%', '&', '\'', '(', ')', '*', '+', ',', '-',   1, '/',
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    '@', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '[', '\\', ']', '^', '_',
    '`', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', '{', '|', '}', '~',   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
      0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,   0,
};

mxr_status mxr_name_normalize(const char *in, size_t len, char *out,
                              char *err, size_t errlen) {
  size_t i, start = 0, label = 0, n = len;
  char c8[8];
  if (out)
    out[0] = '\0';
  if (in == NULL || out == NULL)
    return fail(err, errlen, NULL, 0, "no name");
  if (n == 0 || (n == 1 && in[0] == '.'))
    return MXR_OK;
  if (in[n - 1] == '.')
    n--;
  if (n > MXR_NAME_MAX)
    return fail(err, errlen, in, len, "name longer than %d octets",
                MXR_NAME_MAX);
  /* A good name in one pass, checked and lower-cased into out (the label
   * being read starts at start); at the first doubt, the loop below says
   * what is wrong. */
  for (i = 0; i < n; i++) {
    unsigned char k = mxr_name_octet[(unsigned char)in[i]];
    if (k <= 1) {
      if (k == 0 || i == start || i - start > LABEL_MAX)
        break;
      start = i + 1;
      k = '.';
    }
    out[i] = (char)k;
  }
  if (i == n && n > start && n - start <= LABEL_MAX) {
    out[n] = '\0';
    return MXR_OK;
  }
  out[0] = '\0';
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    if (c == '.') {
      if (label == 0)
        return fail(err, errlen, in, len, "empty label");
      label = 0;
    } else if (c > 0x20 && c < 0x7f) {
      if (++label > LABEL_MAX)
        return fail(err, errlen, in, len, "label longer than %d octets",
                    LABEL_MAX);
    } else {
      return fail(err, errlen, in, len, "character %s not allowed in a name",
                  show_char(c, c8));
    }
  }
  return fail(err, errlen, in, len, "empty label");
}

int mxr_name_equal(const char *a, const char *b) {
  size_t la, lb, i;
  if (a == NULL || b == NULL)
    return 0;
  la = strlen(a);
  lb = strlen(b);
  if (la > 0 && a[la - 1] == '.')
    la--;
  if (lb > 0 && b[lb - 1] == '.')
    lb--;
  if (la != lb)
    return 0;
  for (i = 0; i < la; i++)
    if (mxr_ascii_lower(a[i]) != mxr_ascii_lower(b[i]))
      return 0;
  return 1;
}

/* ------------------------------------------------------------------ */
/* input                                                               */

/* RFC 5321 4.1.3 address literal, d = "[...]" with the brackets. */
static mxr_status parse_literal(const char *s, size_t len, const char *d,
                                size_t n, mxr_input *out, char *err,
                                size_t errlen) {
  const char *in = d + 1;
  size_t inlen = n - 2;
  char txt[MXR_ADDR_BUF];
  const char *close = memchr(d, ']', n);
  if (close == NULL)
    return fail(err, errlen, s, len, "address literal lacks the closing ']'");
  if ((size_t)(close - d) != n - 1)
    return fail(err, errlen, s, len, "text after the address literal's ']'");
  if (inlen == 0)
    return fail(err, errlen, s, len, "empty address literal");
  if (inlen >= 5 && (in[0] == 'I' || in[0] == 'i') &&
      (in[1] == 'P' || in[1] == 'p') && (in[2] == 'v' || in[2] == 'V') &&
      in[3] == '6' && in[4] == ':') {
    /* RFC 5321 4.1.3: "IPv6:" IPv6-addr; the tag matched without case. */
    if (parse_ipv6(in + 5, inlen - 5, out->addr.bytes) != 0)
      return fail(err, errlen, s, len, "not a valid IPv6 address literal");
    out->addr.family = 6;
    mxr_addr_format(&out->addr, txt);
    snprintf(out->domain, sizeof out->domain, "[IPv6:%s]", txt);
  } else if (memchr(in, ':', inlen) != NULL) {
    return fail(err, errlen, s, len,
                "unsupported address literal (IPv6 needs the 'IPv6:' tag)");
  } else {
    if (parse_ipv4(in, inlen, out->addr.bytes) != 0)
      return fail(err, errlen, s, len,
                  "not a valid IPv4 address literal "
                  "(dotted quad, no leading zeros)");
    out->addr.family = 4;
    mxr_addr_format(&out->addr, txt);
    snprintf(out->domain, sizeof out->domain, "[%s]", txt);
  }
  out->kind = MXR_INPUT_LITERAL;
  return MXR_OK;
}

/* RFC 5321 4.1.2 Domain: sub-domains of letters, digits and hyphens
 * (no leading/trailing hyphen), 1..63 octets each, at most 253 in all.
 * A trailing dot is the absolute form of a bare domain, but not part of
 * the Domain of a mailbox (bare == 0). */
static mxr_status parse_domain(const char *s, size_t len, const char *d,
                               size_t n, int bare, mxr_input *out, char *err,
                               size_t errlen) {
  size_t i, start = 0, label;
  int numeric = 1;
  char c8[8];
  if (n > 0 && d[0] == '[')
    return parse_literal(s, len, d, n, out, err, errlen);
  if (n > 0 && d[n - 1] == '.') {
    if (!bare)
      return fail(err, errlen, s, len,
                  "trailing dot after the domain of an address");
    n--;
  }
  if (n == 0)
    return fail(err, errlen, s, len, "empty domain");
  if (n > MXR_NAME_MAX)
    return fail(err, errlen, s, len, "domain longer than %d octets",
                MXR_NAME_MAX);
  for (i = 0; i <= n; i++) {
    unsigned char c = i < n ? (unsigned char)d[i] : '.';
    if (c == '.') {
      label = i - start;
      if (label == 0)
        return fail(err, errlen, s, len, "empty label");
      if (d[start] == '-')
        return fail(err, errlen, s, len, "label starts with '-'");
      if (d[i - 1] == '-')
        return fail(err, errlen, s, len, "label ends with '-'");
      start = i + 1;
      if (i < n)
        numeric = 1;
    } else if (is_alpha(c) || c == '-') {
      numeric = 0;
      if (i - start + 1 > LABEL_MAX)
        return fail(err, errlen, s, len, "label longer than %d octets",
                    LABEL_MAX);
    } else if (is_digit(c)) {
      if (i - start + 1 > LABEL_MAX)
        return fail(err, errlen, s, len, "label longer than %d octets",
                    LABEL_MAX);
    } else if (c == '@') {
      return fail(err, errlen, s, len, "more than one '@'");
    } else {
      return fail(err, errlen, s, len, "character %s not allowed in a domain",
                  show_char(c, c8));
    }
  }
  /* A name whose last label is all digits would be read as an IPv4
   * address by too much software; it is not a host name (RFC 1123 2.1). */
  if (numeric)
    return fail(err, errlen, s, len,
                "numeric top label: not a domain "
                "(write an address as [192.0.2.1])");
  for (i = 0; i < n; i++)
    out->domain[i] = mxr_ascii_lower(d[i]);
  out->domain[n] = '\0';
  out->kind = MXR_INPUT_DOMAIN;
  return MXR_OK;
}

/* RFC 5321 4.1.2 Local-part = Dot-string / Quoted-string. Returns the
 * offset of the separating '@' in *at (len if none). */
static mxr_status parse_local(const char *s, size_t len, size_t *at,
                              char *err, size_t errlen) {
  size_t i;
  char c8[8];
  if (s[0] == '"') {
    /* qtextSMTP = %d32-33 / %d35-91 / %d93-126; quoted-pairSMTP = "\"
     * %d32-126. Control bytes were rejected by the caller. */
    for (i = 1; i < len; i++) {
      if (s[i] == '\\') {
        if (++i >= len)
          break;
      } else if (s[i] == '"') {
        break;
      }
    }
    if (i >= len)
      return fail(err, errlen, s, len, "unterminated quoted local part");
    i++;
    if (i >= len || s[i] != '@')
      return fail(err, errlen, s, len,
                  "expected '@' after the quoted local part");
    *at = i;
  } else {
    const char *p = memchr(s, '@', len);
    if (p == NULL) {
      *at = len;
      return MXR_OK;
    }
    *at = (size_t)(p - s);
    if (*at == 0)
      return fail(err, errlen, s, len, "missing local part before '@'");
    for (i = 0; i < *at; i++) {
      unsigned char c = (unsigned char)s[i];
      if (c == '.') {
        if (i == 0)
          return fail(err, errlen, s, len, "local part starts with '.'");
        if (i + 1 == *at)
          return fail(err, errlen, s, len, "local part ends with '.'");
        if (s[i + 1] == '.')
          return fail(err, errlen, s, len, "empty atom ('..') in local part");
      } else if (!is_atext(c)) {
        return fail(err, errlen, s, len,
                    "character %s not allowed in an unquoted local part",
                    show_char(c, c8));
      }
    }
  }
  if (*at > LOCAL_MAX)
    return fail(err, errlen, s, len, "local part longer than %d octets",
                LOCAL_MAX);
  return MXR_OK;
}

mxr_status mxr_input_parse(const char *s, size_t len, mxr_input *out,
                           char *err, size_t errlen) {
  mxr_input res;
  size_t i, at = 0;
  mxr_status st;
  if (err && errlen)
    err[0] = '\0';
  if (s == NULL || out == NULL)
    return fail(err, errlen, NULL, 0, "no input");
  memset(&res, 0, sizeof res);
  if (len == 0)
    return fail(err, errlen, NULL, 0, "empty input");
  for (i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == 0)
      return fail(err, errlen, s, len, "NUL byte at offset %zu", i);
    if (c >= 0x80)
      return fail(err, errlen, s, len,
                  "non-ASCII byte 0x%02x at offset %zu (internationalised "
                  "addresses are not supported)",
                  (unsigned)c, i);
    if (c < 0x20 || c == 0x7f)
      return fail(err, errlen, s, len, "control character 0x%02x at offset %zu",
                  (unsigned)c, i);
  }
  st = parse_local(s, len, &at, err, errlen);
  if (st != MXR_OK)
    return st;
  if (at == len)
    st = parse_domain(s, len, s, len, 1, &res, err, errlen);
  else if (at + 1 == len)
    return fail(err, errlen, s, len, "missing domain after '@'");
  else
    st = parse_domain(s, len, s + at + 1, len - at - 1, 0, &res, err, errlen);
  if (st == MXR_OK)
    *out = res;
  return st;
}

/* ------------------------------------------------------------------ */
/* nameservers                                                         */

/* Whether a is an address no query can be sent to: unspecified,
 * broadcast or multicast (an IPv4-mapped form judged as its IPv4). */
static int unroutable(const mxr_addr *a) {
  const uint8_t *b = a->bytes;
  if (is_mapped(a))
    b += 12;
  else if (a->family == 6) {
    static const uint8_t zero[16];
    return memcmp(b, zero, 16) == 0 || b[0] == 0xff;
  }
  return (b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0) ||
         (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255) ||
         (b[0] >= 224 && b[0] <= 239);
}

/* "53" -> 53: 1..65535, decimal, no sign, no leading zero. */
static int parse_port(const char *s, size_t len, uint16_t *out) {
  unsigned long v = 0;
  if (len == 0 || len > 5 || s[0] == '0')
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (!is_digit((unsigned char)s[i]))
      return -1;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v < 1 || v > 65535)
    return -1;
  *out = (uint16_t)v;
  return 0;
}

mxr_status mxr_server_parse(const char *s, size_t len, mxr_server *out,
                            char *err, size_t errlen) {
  char shown[96];
  const char *host = s, *port = NULL;
  size_t hlen = len, plen = 0;
  mxr_server sv;
  if (s == NULL || out == NULL)
    return MXR_EBADOPT;
  memset(&sv, 0, sizeof sv);
  sv.port = 53;
  mxr_escape(shown, sizeof shown, s, len, 60);
  if (len == 0) {
    if (err && errlen)
      snprintf(err, errlen, "empty nameserver");
    return MXR_EBADOPT;
  }
  if (memchr(s, '\0', len)) {
    if (err && errlen)
      snprintf(err, errlen, "nameserver '%s' contains a NUL byte", shown);
    return MXR_EBADOPT;
  }
  if (s[0] == '[') { /* [IPv6]:port or [IPv6] */
    const char *close = memchr(s, ']', len);
    if (!close) {
      if (err && errlen)
        snprintf(err, errlen, "nameserver '%s': '[' without ']'", shown);
      return MXR_EBADOPT;
    }
    host = s + 1;
    hlen = (size_t)(close - host);
    if ((size_t)(close - s) + 1 < len) {
      if (close[1] != ':') {
        if (err && errlen)
          snprintf(err, errlen, "nameserver '%s': expected ':PORT' after ']'",
                   shown);
        return MXR_EBADOPT;
      }
      port = close + 2;
      plen = len - (size_t)(port - s);
    } else if (memchr(host, ':', hlen) == NULL) {
      if (err && errlen)
        snprintf(err, errlen,
                 "nameserver '%s': brackets are for IPv6 addresses", shown);
      return MXR_EBADOPT;
    }
  } else {
    const char *colon = memchr(s, ':', len);
    if (colon && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
      /* exactly one ':': IPv4:port */
      hlen = (size_t)(colon - s);
      port = colon + 1;
      plen = len - hlen - 1;
    }
  }
  if (s[0] == '[' && mxr_addr_parse(host, hlen, &sv.addr) == MXR_OK &&
      sv.addr.family != 6) { /* "[192.0.2.1]:53": RFC 3986 3.2.2 */
    if (err && errlen)
      snprintf(err, errlen,
               "nameserver '%s': brackets are for IPv6 addresses", shown);
    return MXR_EBADOPT;
  }
  if (mxr_addr_parse(host, hlen, &sv.addr) != MXR_OK) {
    if (err && errlen)
      snprintf(err, errlen,
               "nameserver '%s' is not an IP address with an optional port "
               "(192.0.2.1, 192.0.2.1:53, 2001:db8::1, [2001:db8::1]:53)",
               shown);
    return MXR_EBADOPT;
  }
  if (port && parse_port(port, plen, &sv.port) != 0) {
    if (err && errlen)
      snprintf(err, errlen, "nameserver '%s': port must be 1..65535", shown);
    return MXR_EBADOPT;
  }
  if (unroutable(&sv.addr)) {
    if (err && errlen)
      snprintf(err, errlen,
               "nameserver '%s' is unspecified, broadcast or multicast: "
               "no query can be sent to it",
               shown);
    return MXR_EBADOPT;
  }
  *out = sv;
  return MXR_OK;
}

void mxr_server_format(const mxr_server *sv, char *buf) {
  char a[MXR_ADDR_BUF];
  mxr_addr_format(&sv->addr, a);
  if (sv->addr.family == 6)
    snprintf(buf, MXR_SERVER_BUF, "[%s]:%u", a, (unsigned)sv->port);
  else
    snprintf(buf, MXR_SERVER_BUF, "%s:%u", a, (unsigned)sv->port);
}
