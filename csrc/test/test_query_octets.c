/*
 * test_query_octets.c — the queries mxroute writes (mxr_query_wire,
 * mxr_packet_query_edns) are, octet for octet, those c-ares'
 * ares_create_query builds for the normalised name (its backslashes
 * doubled, as ares_create_query reads "\c" as a literal c, and a final
 * dot), for every type of the table, with and without EDNS; and the
 * names mxr_name_normalize refuses, or the root, are refused.
 */
#include "mxr_internal.h"
#include "mxroute.h"
#include "tap.h"

#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What ares_create_query reads for the normalised name norm: backslashes
 * doubled, a final dot (absolute). out: 2 * MXR_NAME_BUF + 2 bytes. */
static void ares_form(const char *norm, char *out) {
  for (; *norm; norm++) {
    if (*norm == '\\')
      *out++ = '\\';
    *out++ = *norm;
  }
  *out++ = '.';
  *out = '\0';
}

static void hexdump(const char *what, const unsigned char *p, size_t n) {
  char line[3 * 32 + 1];
  size_t i, k = 0;
  for (i = 0; i < n; i++) {
    snprintf(line + 3 * k, 4, "%02x ", p[i]);
    if (++k == 32 || i + 1 == n) {
      diag("%s %s", what, line);
      k = 0;
    }
  }
}

/* name is accepted: the octets equal c-ares' for each type, ID and EDNS
 * size, through both entry points. */
static void same_as_cares(const char *name, const char *label) {
  static const uint16_t ids[] = {0, 1, 0xbeef, 0xffff};
  static const uint16_t sizes[] = {0, 512, 1232, 4096};
  char norm[MXR_NAME_BUF], esc[2 * MXR_NAME_BUF + 2];
  size_t t, k, bad = 0, runs = 0;
  if (!ok(mxr_name_normalize(name, strlen(name), norm, NULL, 0) == MXR_OK &&
              norm[0],
          "%s: a name mxr_name_normalize accepts", label))
    return;
  ares_form(norm, esc);
  for (t = 0; t < mxr_nrrtypes; t++) {
    uint16_t type = mxr_rrtypes[t].type;
    for (k = 0; k < sizeof ids / sizeof ids[0]; k++) {
      unsigned char mine[MXR_QUERY_MAX], *heap = NULL, *ref = NULL;
      size_t len = 0, hlen = 0;
      int rlen = 0;
      uint16_t id = ids[k], size = sizes[k];
      mxr_status st = mxr_query_wire(name, type, id, size, mine, &len);
      mxr_status hst = mxr_packet_query_edns(name, type, id, size, &heap, &hlen);
      int rc = ares_create_query(esc, 1, type, id, 1, &ref, &rlen, size);
      runs++;
      if (st != MXR_OK || hst != MXR_OK || rc != ARES_SUCCESS || !ref ||
          len != (size_t)rlen || hlen != len || memcmp(mine, ref, len) != 0 ||
          memcmp(heap, ref, len) != 0 ||
          (len >= 12 + strlen(norm) + 2 &&
           mine[12 + strlen(norm) + 1] != 0)) {
        if (!bad++) {
          diag("type %u id %u udp %u: st %d/%d rc %d len %zu/%zu/%d",
               (unsigned)type, (unsigned)id, (unsigned)size, (int)st,
               (int)hst, rc, len, hlen, rlen);
          hexdump("mine", mine, len);
          if (ref)
            hexdump("c-ares", ref, (size_t)rlen);
        }
      }
      mxr_packet_free(heap);
      if (ref)
        ares_free_string(ref);
    }
  }
  ok(bad == 0 && runs > 0, "%s: the octets of c-ares (%zu queries)", label,
     runs);
}

/* name is refused, with code want, and nothing is written. */
static void refused(const char *name, mxr_status want, const char *label) {
  unsigned char buf[MXR_QUERY_MAX], *heap = (unsigned char *)1;
  size_t len = 7, hlen = 7;
  char norm[MXR_NAME_BUF];
  if (name && want == MXR_EBADNAME)
    ok(mxr_name_normalize(name, strlen(name), norm, NULL, 0) != MXR_OK ||
           norm[0] == '\0',
       "%s: mxr_name_normalize refuses it too, or it is the root", label);
  is_int(mxr_query_wire(name, MXR_TYPE_A, 1, 1232, buf, &len), want,
         "%s: refused", label);
  is_int(len, 0, "%s: no length", label);
  is_int(mxr_packet_query_edns(name, MXR_TYPE_A, 1, 1232, &heap, &hlen), want,
         "%s: refused by mxr_packet_query_edns", label);
  ok(heap == NULL && hlen == 0, "%s: no packet", label);
}

int main(void) {
  char big[300], lab[80];
  size_t i;

  ares_library_init(ARES_LIB_INIT_ALL);
  same_as_cares("example.com", "plain name");
  same_as_cares("Mail.Example.", "upper case, final dot");
  same_as_cares("localhost", "one label");
  same_as_cares("x", "one octet");
  same_as_cares("1.2.3.4", "digits");
  same_as_cares("_25._tcp.mx.test", "underscores");
  same_as_cares("a\\b.test", "a backslash");
  same_as_cares("a\\\\b\\.test", "backslashes, one before a dot");
  same_as_cares("tail\\.", "a backslash before the final dot");
  same_as_cares("q\"u;o(t)e@d$.test", "the characters c-ares' expansion escapes");
  same_as_cares("!#%&'*+-/=?^`{|}~.TEST", "other printable octets");
  same_as_cares("a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p", "many labels");

  /* 63.63.63.61: 253 octets, 255 on the wire */
  memset(big, 'a', sizeof big);
  big[63] = big[127] = big[191] = '.';
  big[253] = '\0';
  same_as_cares(big, "253 octets");
  big[253] = '.';
  big[254] = '\0';
  same_as_cares(big, "253 octets and a final dot");
  memset(lab, 'Z', 63);
  memcpy(lab + 63, ".test", 6);
  same_as_cares(lab, "a 63-octet label");
  for (i = 0; i < sizeof big - 1; i++)
    big[i] = (char)('a' + i % 26);
  big[1] = big[3] = big[5] = big[69] = big[133] = big[197] = '.';
  big[200] = '\0';
  same_as_cares(big, "labels of 1, 63 and 2 octets");

  refused("", MXR_EBADNAME, "the root (empty)");
  refused(".", MXR_EBADNAME, "the root (a dot)");
  refused("..", MXR_EBADNAME, "two dots");
  refused("a..b", MXR_EBADNAME, "an empty label");
  refused(".a", MXR_EBADNAME, "a leading dot");
  refused("a.b..", MXR_EBADNAME, "an empty last label");
  refused("a b.test", MXR_EBADNAME, "a space");
  refused("a\tb.test", MXR_EBADNAME, "a tab");
  refused("\x7f.test", MXR_EBADNAME, "DEL");
  refused("caf\xc3\xa9.test", MXR_EBADNAME, "non-ASCII octets");
  memset(big, 'a', sizeof big);
  big[63] = big[127] = big[191] = '.';
  big[254] = '\0';
  refused(big, MXR_EBADNAME, "254 octets");
  big[254] = '.';
  big[255] = '\0';
  refused(big, MXR_EBADNAME, "254 octets and a final dot");
  memset(lab, 'x', 64);
  memcpy(lab + 64, ".test", 6);
  refused(lab, MXR_EBADNAME, "a 64-octet label");
  memcpy(lab + 64, "\0", 1);
  refused(lab, MXR_EBADNAME, "a 64-octet name of one label");
  refused(NULL, MXR_EBADOPT, "no name");
  {
    unsigned char buf[MXR_QUERY_MAX];
    size_t len = 7;
    is_int(mxr_query_wire("mx.test", 16, 1, 0, buf, &len), MXR_EBADOPT,
           "a type with no table entry: refused");
    is_int(len, 0, "  no length");
  }
  ares_library_cleanup();
  return done_testing();
}
