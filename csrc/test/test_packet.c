/*
 * test_packet.c — the answer checks of DESIGN rule 14, message by message.
 *
 * Every reply is built byte by byte (dnsmsg.h), so each check is proven
 * by a reply that fails only that check. With MXR_WRITE_CORPUS=DIR in the
 * environment it also writes a seed corpus for fuzz_packet there.
 */
#include "dnsmsg.h"
#include "mxroute.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void has_str(const char *got, const char *want, const char *what) {
  if (!ok(got && strstr(got, want) != NULL, "%s", what))
    diag("  \"%s\" does not contain \"%s\"", got ? got : "(null)", want);
}

/* ------------------------------------------------------------------ */
/* helpers                                                             */

static const char *corpus_dir;

static void seed(const dm *m, const char *name) {
  if (corpus_dir && dm_write(m, corpus_dir, name) != 0)
    printf("# could not write %s/%s\n", corpus_dir, name);
}

static mxr_status parse(const dm *m, const char *q, uint16_t t, int id,
                        mxr_answer *a) {
  return mxr_packet_parse(m->b, m->n, q, t, id, a);
}

/* A failure must carry no data and a message. */
static void is_fail(const dm *m, const char *q, uint16_t t, mxr_status want,
                    const char *msg, const char *what) {
  mxr_answer a;
  mxr_status st = parse(m, q, t, -1, &a);
  if (!ok(st == want && a.status == want, "%s: %s", what,
          mxr_status_name(want)))
    diag("  got %s (%s)", mxr_status_name(st), a.message);
  ok(a.nmx == 0 && a.mx == NULL && a.naddrs == 0 && a.addrs == NULL &&
         !a.truncated,
     "%s: no data", what);
  if (msg)
    has_str(a.message, msg, "  message");
  else
    ok(a.message[0] != '\0', "  message set");
  mxr_answer_clear(&a);
}

static void mx_reply(dm *m) {
  dm_reply(m, 0x1234, DM_RESPONSE, 0, "mx.test", MXR_TYPE_MX);
}

/* A reply without records, rcode and question as given, to the query
 * "mx.test MX". */
typedef struct bare_case {
  unsigned rcode;
  const char *qname;
  uint16_t qtype;
  mxr_status want;
  const char *msg;
  const char *what;
} bare_case;

/* Each reply must fail as the case says. */
static void bare_fail(const bare_case *c, size_t n) {
  dm m;
  for (size_t i = 0; i < n; i++) {
    dm_reply(&m, 1, DM_RESPONSE, c[i].rcode, c[i].qname, c[i].qtype);
    is_fail(&m, "mx.test", MXR_TYPE_MX, c[i].want, c[i].msg, c[i].what);
  }
}

/* A reply to qname/qtype whose one answer record, owned by qname, has
 * the type, class and RDATA (rdata, len octets) given. */
typedef struct rr_case {
  const char *qname;
  uint16_t qtype;
  unsigned type;
  unsigned klass;
  const char *rdata;
  size_t len;
  const char *msg;
  const char *what;
} rr_case;
#define RDATA(s) s, sizeof(s) - 1

/* Each such reply must be FORMERR, its message naming the fault. */
static void rr_formerr(const rr_case *c, size_t n) {
  dm m;
  for (size_t i = 0; i < n; i++) {
    size_t at;
    dm_reply(&m, 1, DM_RESPONSE, 0, c[i].qname, c[i].qtype);
    at = dm_rr_begin(&m, c[i].qname, c[i].type, c[i].klass, 60);
    for (size_t k = 0; k < c[i].len; k++)
      dm_u8(&m, (unsigned char)c[i].rdata[k]);
    dm_rr_end(&m, at);
    is_fail(&m, c[i].qname, c[i].qtype, MXR_EFORMERR, c[i].msg, c[i].what);
  }
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* queries                                                             */

static void test_query(void) {
  unsigned char *q = NULL;
  size_t n = 0;
  dm want;
  char big[300];

  is_int(mxr_packet_query("Mail.Example.", MXR_TYPE_MX, 0xbeef, &q, &n),
         MXR_OK, "query: builds");
  want.n = 0;
  dm_u16(&want, 0xbeef);
  dm_u16(&want, 0x0100); /* RD only */
  dm_u16(&want, 1);
  dm_u16(&want, 0);
  dm_u16(&want, 0);
  dm_u16(&want, 0); /* no additional record: no EDNS */
  dm_name(&want, "mail.example");
  dm_u16(&want, MXR_TYPE_MX);
  dm_u16(&want, 1);
  ok(q && n == want.n && memcmp(q, want.b, n) == 0,
     "query: ID, RD, one question, lower-cased absolute name, class IN, "
     "no EDNS");
  mxr_packet_free(q);

  is_int(mxr_packet_query("a\\b.test", MXR_TYPE_A, 1, &q, &n), MXR_OK,
         "query: backslash in a label");
  ok(q && n == 12 + 10 + 4 && q[12] == 3 && q[13] == 'a' && q[14] == '\\' &&
         q[15] == 'b' && q[16] == 4,
     "query: the backslash is a literal octet of the label");
  mxr_packet_free(q);

  /* 63.63.63.62: 254 octets; then 63.63.63.61: 253 */
  memset(big, 'a', sizeof big);
  big[63] = big[127] = big[191] = '.';
  big[254] = '\0';
  is_int(mxr_packet_query(big, MXR_TYPE_A, 1, &q, &n), MXR_EBADNAME,
         "query: 254-octet name rejected");
  ok(q == NULL && n == 0, "query: nothing returned on failure");
  big[253] = '\0';
  is_int(mxr_packet_query(big, MXR_TYPE_A, 1, &q, &n), MXR_OK,
         "query: 253-octet name accepted");
  ok(q && n == 12 + 255 + 4, "query: 255 octets of name on the wire");
  mxr_packet_free(q);
  memset(big, 'x', 64);
  memcpy(big + 64, ".test", 6);
  is_int(mxr_packet_query(big, MXR_TYPE_A, 1, &q, &n), MXR_EBADNAME,
         "query: 64-octet label rejected");
  is_int(mxr_packet_query("", MXR_TYPE_A, 1, &q, &n), MXR_EBADNAME,
         "query: empty name rejected (never the root)");
  is_int(mxr_packet_query("a..b", MXR_TYPE_A, 1, &q, &n), MXR_EBADNAME,
         "query: empty label rejected");
  is_int(mxr_packet_query("mx.test", 16, 1, &q, &n), MXR_EBADOPT,
         "query: unsupported type rejected");
  is_int(mxr_packet_query(NULL, MXR_TYPE_A, 1, &q, &n), MXR_EBADOPT,
         "query: NULL name rejected");
  mxr_packet_free(NULL);

  /* The query itself, echoed back, is not an answer (QR=0). */
  mxr_packet_query("mx.test", MXR_TYPE_MX, 7, &q, &n);
  {
    mxr_answer a;
    is_int(mxr_packet_parse(q, n, "mx.test", MXR_TYPE_MX, 7, &a),
           MXR_EFORMERR, "query echoed back is rejected");
    has_str(a.message, "mx.test MX: reply QR bit not set", "  message");
    mxr_answer_clear(&a);
  }
  mxr_packet_free(q);
}

/* ------------------------------------------------------------------ */
/* good answers                                                        */

static void test_good(void) {
  dm m;
  mxr_answer a;

  mx_reply(&m);
  dm_mx(&m, "mx.test", 300, 10, "MX1.Example.");
  dm_mx(&m, "mx.test", 200, 20, "mx2.example");
  seed(&m, "mx-two");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, 0x1234, &a), MXR_OK, "MX: ok");
  is_int((long)a.nmx, 2, "MX: two records");
  if (a.nmx == 2) {
    is_int(a.mx[0].pref, 10, "MX: pref 10");
    is_str(a.mx[0].name, "mx1.example", "MX: exchange normalised");
    is_int((long)a.mx[0].len, 11, "MX: length of the name");
    is_int(a.mx[1].pref, 20, "MX: pref 20");
    is_str(a.mx[1].name, "mx2.example", "MX: second exchange");
  }
  is_int(a.ttl, 200, "MX: smallest TTL");
  is_str(a.canon, "mx.test", "MX: canon is the name asked");
  ok(!a.chased && !a.truncated && a.ncname == 0 && a.naddrs == 0,
     "MX: not chased, not truncated, no CNAME, no addresses");
  mxr_answer_clear(&a);
  ok(a.mx == NULL && a.nmx == 0 && a.priv_ == NULL, "clear empties");
  mxr_answer_clear(&a); /* twice is fine */
  mxr_answer_clear(NULL);

  dm_reply(&m, 9, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_a(&m, "h.test", 60, 192, 0, 2, 1);
  dm_a(&m, "h.test", 30, 192, 0, 2, 2);
  seed(&m, "a-two");
  is_int(parse(&m, "h.test", MXR_TYPE_A, 9, &a), MXR_OK, "A: ok");
  is_int((long)a.naddrs, 2, "A: two addresses");
  if (a.naddrs == 2) {
    char t[MXR_ADDR_BUF];
    ok(a.addrs[0].family == 4 && a.addrs[0].bytes[0] == 192 &&
           a.addrs[0].bytes[3] == 1 && a.addrs[1].bytes[3] == 2,
       "A: 192.0.2.1 and 192.0.2.2");
    mxr_addr_format(&a.addrs[0], t);
    is_str(t, "192.0.2.1", "A: formats");
  }
  is_int(a.ttl, 30, "A: smallest TTL");
  mxr_answer_clear(&a);

  dm_reply(&m, 9, DM_RESPONSE, 0, "h.test", MXR_TYPE_AAAA);
  dm_aaaa(&m, "h.test", 70, 0x25);
  seed(&m, "aaaa-one");
  is_int(parse(&m, "h.test", MXR_TYPE_AAAA, 9, &a), MXR_OK, "AAAA: ok");
  is_int((long)a.naddrs, 1, "AAAA: one address");
  if (a.naddrs == 1) {
    char t[MXR_ADDR_BUF];
    mxr_addr_format(&a.addrs[0], t);
    is_str(t, "2001:db8::25", "AAAA: 2001:db8::25");
    is_int(a.addrs[0].family, 6, "AAAA: family 6");
  }
  is_int(a.ttl, 70, "AAAA: TTL");
  mxr_answer_clear(&a);

  /* TTL with the top bit set counts as 0 (RFC 2181 8). */
  dm_reply(&m, 9, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_a(&m, "h.test", 0x80000001u, 192, 0, 2, 1);
  parse(&m, "h.test", MXR_TYPE_A, -1, &a);
  is_int(a.ttl, 0, "A: TTL with top bit set is 0");
  mxr_answer_clear(&a);

  /* Names are compared case-insensitively (RFC 4343). */
  dm_reply(&m, 1, DM_RESPONSE, 0, "MX.Test", MXR_TYPE_MX);
  dm_mx(&m, "mX.tEST", 60, 5, "mx1.example");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK,
         "MX: mixed-case question and owner accepted");
  is_int((long)a.nmx, 1, "MX: mixed-case owner's record used");
  mxr_answer_clear(&a);
  dm_reply(&m, 1, DM_RESPONSE, 0, "mx.test", MXR_TYPE_MX);
  dm_mx(&m, "mx.test", 60, 5, "mx1.example");
  is_int(parse(&m, "MX.TEST.", MXR_TYPE_MX, -1, &a), MXR_OK,
         "MX: qname given in upper case with a final dot");
  is_str(a.canon, "mx.test", "MX: canon normalised");
  mxr_answer_clear(&a);

  /* Unrelated types owned by other names are ignored (e.g. RRSIG). */
  dm_reply(&m, 1, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_a(&m, "h.test", 60, 192, 0, 2, 7);
  {
    size_t at = dm_rr_begin(&m, "other.test", 46, 1, 60);
    dm_u32(&m, 0xdeadbeef);
    dm_rr_end(&m, at);
  }
  dm_aaaa(&m, "other.test", 60, 1); /* AAAA in an A answer: ignored */
  is_int(parse(&m, "h.test", MXR_TYPE_A, -1, &a), MXR_OK,
         "A: unrelated records of other owners ignored");
  is_int((long)a.naddrs, 1, "A: only the A record used");
  mxr_answer_clear(&a);

  /* Authority and additional sections are not used. */
  dm_reply(&m, 1, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_put16(&m, 8, 1);
  dm_name(&m, "test");
  dm_u16(&m, 6);
  dm_u16(&m, 1);
  dm_u32(&m, 60);
  dm_u16(&m, 0);
  is_int(parse(&m, "h.test", MXR_TYPE_A, -1, &a), MXR_OK,
         "NODATA with an authority record");
  mxr_answer_clear(&a);

  /* A referral (no answer, NS in authority, no SOA, AA clear) is not
   * NODATA: the server does not recurse (rule 2: never the implicit MX). */
  dm_reply(&m, 1, DM_RESPONSE, 0, "mx.test", MXR_TYPE_MX);
  dm_put16(&m, 8, 1);
  dm_name(&m, "test");
  dm_u16(&m, 2); /* NS */
  dm_u16(&m, 1);
  dm_u32(&m, 60);
  dm_u16(&m, 6);
  dm_name(&m, "ns.test");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_ESERVFAIL, "referral",
          "a referral is a temporary failure, not NODATA");
  dm_put16(&m, 2, DM_RESPONSE | 0x0400u); /* AA: authoritative NODATA */
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK,
         "NS in authority with AA set is NODATA");
  mxr_answer_clear(&a);
}

static void test_null_mx(void) {
  dm m;
  mxr_answer a;
  mx_reply(&m);
  dm_mx(&m, "mx.test", 60, 0, ".");
  seed(&m, "mx-null");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK, "null MX: ok");
  is_int((long)a.nmx, 1, "null MX: one record");
  if (a.nmx == 1) {
    is_str(a.mx[0].name, "", "null MX: exchange is the empty name");
    is_int((long)a.mx[0].len, 0, "null MX: length 0");
    is_int(a.mx[0].pref, 0, "null MX: pref 0");
  }
  mxr_answer_clear(&a);

  /* DNS data may hold any printable octet: kept, the planner decides */
  mx_reply(&m);
  dm_mx(&m, "mx.test", 60, 0, "Mx_1!x.test");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK,
         "MX exchange with printable punctuation: ok");
  ok(a.nmx == 1 && strcmp(a.mx[0].name, "mx_1!x.test") == 0,
     "  kept, lower-cased");
  mxr_answer_clear(&a);
  /* a space or a control octet cannot be a host name: the whole answer */
  mx_reply(&m);
  dm_mx(&m, "mx.test", 60, 10, "mx1.example");
  dm_mx(&m, "mx.test", 60, 20, "bad\001x.test");
  m.b[m.n - 11] = 1; /* the '\\' octet becomes 0x01 */
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "is not a host name",
          "MX exchange with a control octet");
  mx_reply(&m);
  dm_mx(&m, "mx.test", 60, 10, "a b.test");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "is not a host name",
          "MX exchange with a space");
  /* a CNAME to the root cannot be followed */
  mx_reply(&m);
  dm_cname(&m, "mx.test", 60, ".");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "not a host name",
          "CNAME to the root");
}

static void test_nodata_nx(void) {
  dm m;
  mxr_answer a;

  mx_reply(&m);
  seed(&m, "nodata");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK, "NODATA: ok");
  ok(a.nmx == 0 && a.mx == NULL && !a.chased, "NODATA: no records");
  is_str(a.canon, "mx.test", "NODATA: canon");
  mxr_answer_clear(&a);

  dm_reply(&m, 1, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  seed(&m, "nxdomain");
  is_fail(&m, "gone.test", MXR_TYPE_MX, MXR_ENXDOMAIN,
          "gone.test MX: name does not exist", "NXDOMAIN");

  /* NXDOMAIN at the end of a chain (RFC 6604): still NXDOMAIN. */
  dm_reply(&m, 1, DM_RESPONSE, 3, "alias.test", MXR_TYPE_MX);
  dm_cname(&m, "alias.test", 60, "gone.test");
  is_int(parse(&m, "alias.test", MXR_TYPE_MX, -1, &a), MXR_ENXDOMAIN,
         "NXDOMAIN after a CNAME");
  is_str(a.canon, "gone.test", "NXDOMAIN after a CNAME: canon is the end");
  has_str(a.message, "gone.test does not exist", "  message names it");
  mxr_answer_clear(&a);

  dm_reply(&m, 1, DM_RESPONSE, 3, "gone.test", MXR_TYPE_MX);
  dm_mx(&m, "gone.test", 60, 0, "mx.example");
  is_fail(&m, "gone.test", MXR_TYPE_MX, MXR_EFORMERR, "NXDOMAIN with MX",
          "NXDOMAIN with records");

  dm_reply(&m, 1, DM_RESPONSE, 2, "mx.test", MXR_TYPE_MX);
  seed(&m, "servfail");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_ESERVFAIL, "SERVFAIL", "SERVFAIL");
  {
    static const bare_case rcodes[] = {
        {5, "mx.test", MXR_TYPE_MX, MXR_EREFUSED, "REFUSED", "REFUSED"},
        /* Even a SERVFAIL must be about our question. */
        {2, "other.test", MXR_TYPE_MX, MXR_EFORMERR, "another name",
         "SERVFAIL for another question"},
        {1, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "FORMERR (rcode 1)", "rcode 1 FORMERR"},
        {4, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "NOTIMP (rcode 4)", "rcode 4 NOTIMP"},
    };
    bare_fail(rcodes, NCASES(rcodes));
  }
  for (unsigned rc = 6; rc <= 15; rc++) {
    char what[64], msg[64];
    snprintf(what, sizeof what, "rcode %u", rc);
    snprintf(msg, sizeof msg, "mx.test MX: unassigned rcode %u", rc);
    dm_reply(&m, 1, DM_RESPONSE, rc, "mx.test", MXR_TYPE_MX);
    dm_mx(&m, "mx.test", 60, 10, "mx1.example"); /* data must not count */
    is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, msg, what);
  }
  /* FORMERR from a server that could not even parse the question */
  dm_reply(&m, 1, DM_RESPONSE, 1, "mx.test", MXR_TYPE_MX);
  dm_put16(&m, 4, 0);
  m.n = 12;
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "rcode 1",
          "FORMERR without a question");
}

/* ------------------------------------------------------------------ */
/* header and question                                                 */

static void test_header(void) {
  dm m, good;
  mxr_answer a;

  mx_reply(&good);
  dm_mx(&good, "mx.test", 60, 10, "mx1.example");

  m = good;
  dm_put16(&m, 2, dm_get16(&m, 2) & ~DM_QR);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR,
          "mx.test MX: reply QR bit not set", "QR=0");
  for (unsigned op = 1; op < 16; op++) {
    char what[32];
    m = good;
    dm_put16(&m, 2, (dm_get16(&m, 2) & ~0x7800u) | op << 11);
    snprintf(what, sizeof what, "opcode %u", op);
    is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "opcode", what);
  }
  for (size_t n = 0; n < 12; n++) {
    char what[32];
    snprintf(what, sizeof what, "%zu-octet reply", n);
    m = good;
    m.n = n;
    is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "too short", what);
  }
  is_int(mxr_packet_parse(NULL, 0, "mx.test", MXR_TYPE_MX, -1, &a),
         MXR_EFORMERR, "NULL packet");
  mxr_answer_clear(&a);

  is_int(parse(&good, "mx.test", MXR_TYPE_MX, 0x1234, &a), MXR_OK,
         "ID matches");
  mxr_answer_clear(&a);
  is_int(parse(&good, "mx.test", MXR_TYPE_MX, 0x1235, &a), MXR_EFORMERR,
         "wrong ID");
  has_str(a.message, "reply ID 4660, expected 4661", "  message");
  ok(a.nmx == 0, "  no data");
  mxr_answer_clear(&a);
  is_int(parse(&good, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK,
         "ID not checked with -1");
  mxr_answer_clear(&a);

  m = good;
  dm_put16(&m, 4, 0);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "0 questions",
          "QDCOUNT 0");
  m = good;
  dm_put16(&m, 4, 2);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "2 questions",
          "QDCOUNT 2");

  dm_reply(&m, 1, DM_RESPONSE, 0, "other.test", MXR_TYPE_MX);
  dm_mx(&m, "other.test", 60, 10, "mx1.example");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR,
          "reply is for another name (other.test)", "question name mismatch");
  {
    static const bare_case questions[] = {
        {0, "mx.test.evil", MXR_TYPE_MX, MXR_EFORMERR, "another name",
         "question name with a suffix"},
        {0, "mx.test", MXR_TYPE_A, MXR_EFORMERR, "another type (1)", "question type mismatch"},
    };
    bare_fail(questions, NCASES(questions));
  }
  dm_reply(&m, 1, DM_RESPONSE, 0, "mx.test", MXR_TYPE_MX);
  dm_put16(&m, m.n - 2, 3); /* CH */
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "another class (3)",
          "question class mismatch");

  /* TC: nothing trusted, the transport retries over TCP */
  m = good;
  dm_put16(&m, 2, dm_get16(&m, 2) | DM_TC);
  seed(&m, "tc");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK, "TC: status OK");
  ok(a.truncated == 1 && a.nmx == 0 && a.mx == NULL,
     "TC: truncated, no records trusted");
  mxr_answer_clear(&a);
  /* Knot's TC reply: header and question only. */
  dm_reply(&m, 1, DM_RESPONSE | DM_TC, 0, "mx.test", MXR_TYPE_MX);
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK,
         "TC with an empty answer");
  ok(a.truncated == 1, "  truncated");
  mxr_answer_clear(&a);
  /* TC and QR=0: not a reply at all */
  m = good;
  dm_put16(&m, 2, (dm_get16(&m, 2) | DM_TC) & ~DM_QR);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "QR", "TC with QR=0");

  /* bad arguments */
  is_int(parse(&good, "", MXR_TYPE_MX, -1, &a), MXR_EBADOPT, "empty qname");
  mxr_answer_clear(&a);
  is_int(parse(&good, "mx.test", 16, -1, &a), MXR_EBADOPT, "qtype TXT");
  mxr_answer_clear(&a);
  is_int(mxr_packet_parse(good.b, good.n, "mx.test", MXR_TYPE_MX, -1, NULL),
         MXR_EBADOPT, "NULL out");
}

/* Every proper prefix of a good reply is rejected: mid-question, mid-RR,
 * RDATA beyond the end. */
static void test_prefixes(void) {
  dm good, m;
  int bad = 0;
  mx_reply(&good);
  dm_cname(&good, "mx.test", 60, "real.test");
  dm_mx(&good, "real.test", 60, 10, "mx1.example");
  dm_mx(&good, "real.test", 60, 20, "mx2.example");
  for (size_t n = 0; n < good.n; n++) {
    mxr_answer a;
    m = good;
    m.n = n;
    if (parse(&m, "mx.test", MXR_TYPE_MX, -1, &a) != MXR_EFORMERR ||
        a.nmx != 0 || a.message[0] == '\0')
      bad++;
    mxr_answer_clear(&a);
  }
  is_int(bad, 0, "every truncated prefix is FORMERR without data");

  /* RDLENGTH beyond the end, and one octet short; the last RDATA is
   * pref (2) + "mx2.example" (13) */
  m = good;
  is_int((long)dm_get16(&m, m.n - 15 - 2), 15, "last RDLENGTH located");
  dm_put16(&m, m.n - 15 - 2, 16);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR,
          "RDATA of answer 3 beyond the reply", "RDLENGTH beyond the end");
  m = good;
  dm_put16(&m, m.n - 15 - 2, 14); /* the name runs past the RDATA */
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, NULL,
          "MX RDLENGTH shorter than its name");
}

/* ------------------------------------------------------------------ */
/* owners, CNAME chains                                                */

static void chain_names(char names[][32], int n) {
  for (int i = 0; i <= n; i++)
    snprintf(names[i], 32, i == 0 ? "mx.test" : "c%d.test", i);
}

static void test_cname(void) {
  dm m;
  mxr_answer a;
  char names[MXR_CNAME_MAX + 3][32];

  /* chains of 1, 2 and MXR_CNAME_MAX, records in the answer */
  for (int len = 1; len <= MXR_CNAME_MAX; len = len == 2 ? MXR_CNAME_MAX : len + 1) {
    char what[64];
    chain_names(names, len);
    mx_reply(&m);
    for (int i = 0; i < len; i++)
      dm_cname(&m, names[i], (uint32_t)(100 + i), names[i + 1]);
    dm_mx(&m, names[len], 500, 10, "mx1.example");
    if (len == 2)
      seed(&m, "mx-cname2");
    snprintf(what, sizeof what, "CNAME chain of %d", len);
    is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK, "%s", what);
    is_str(a.canon, names[len], "  canon is its end");
    is_int((long)a.nmx, 1, "  the record at the end used");
    is_int(a.ncname, len, "  ncname");
    ok(!a.chased, "  not chased");
    is_int(a.ttl, 100, "  TTL includes the CNAMEs");
    mxr_answer_clear(&a);
  }

  chain_names(names, MXR_CNAME_MAX + 1);
  mx_reply(&m);
  for (int i = 0; i <= MXR_CNAME_MAX; i++)
    dm_cname(&m, names[i], 60, names[i + 1]);
  dm_mx(&m, names[MXR_CNAME_MAX + 1], 60, 10, "mx1.example");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_ECNAMELOOP,
          "CNAME chain longer than 8", "CNAME chain of MXR_CNAME_MAX + 1");

  mx_reply(&m);
  dm_cname(&m, "mx.test", 60, "b.test");
  dm_cname(&m, "b.test", 60, "MX.test");
  seed(&m, "cname-loop");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_ECNAMELOOP, "CNAME loop at MX.test",
          "CNAME loop");
  mx_reply(&m);
  dm_cname(&m, "mx.test", 60, "mx.test");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_ECNAMELOOP, "loop",
          "CNAME to itself");

  mx_reply(&m);
  dm_cname(&m, "mx.test", 60, "a.test");
  dm_cname(&m, "mx.test", 60, "b.test");
  dm_mx(&m, "a.test", 60, 10, "mx1.example");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "two CNAME records",
          "two CNAMEs for one owner");

  /* a CNAME without its target's records: ask canon again */
  mx_reply(&m);
  dm_cname(&m, "mx.test", 50, "Elsewhere.Example");
  seed(&m, "cname-chased");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK,
         "CNAME without target data: ok");
  ok(a.chased == 1 && a.nmx == 0, "  chased, no records");
  is_str(a.canon, "elsewhere.example", "  canon normalised");
  is_int(a.ncname, 1, "  one CNAME");
  is_int(a.ttl, 50, "  TTL of the CNAME");
  mxr_answer_clear(&a);

  /* the chain listed out of order is still followed (A and MX) */
  dm_reply(&m, 1, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_a(&m, "z.test", 30, 192, 0, 2, 9);
  dm_cname(&m, "y.test", 60, "z.test");
  dm_cname(&m, "h.test", 60, "y.test");
  is_int(parse(&m, "h.test", MXR_TYPE_A, -1, &a), MXR_OK,
         "A: chain out of order");
  ok(a.naddrs == 1 && a.addrs && a.addrs[0].bytes[3] == 9,
     "  the address at its end");
  is_str(a.canon, "z.test", "  canon");
  mxr_answer_clear(&a);
  dm_reply(&m, 1, DM_RESPONSE, 0, "h.test", MXR_TYPE_AAAA);
  dm_aaaa(&m, "z.test", 30, 9);
  dm_cname(&m, "h.test", 60, "z.test");
  is_int(parse(&m, "h.test", MXR_TYPE_AAAA, -1, &a), MXR_OK,
         "AAAA: chain out of order");
  ok(a.naddrs == 1 && a.addrs && a.addrs[0].bytes[15] == 9,
     "  the address at its end");
  mxr_answer_clear(&a);

  /* a CNAME at a host */
  dm_reply(&m, 1, DM_RESPONSE, 0, "h.test", MXR_TYPE_AAAA);
  dm_cname(&m, "H.TEST", 60, "real.test");
  dm_aaaa(&m, "Real.Test", 30, 1);
  seed(&m, "aaaa-cname");
  is_int(parse(&m, "h.test", MXR_TYPE_AAAA, -1, &a), MXR_OK, "AAAA via CNAME");
  is_int((long)a.naddrs, 1, "  one address");
  mxr_answer_clear(&a);
}

static void test_owners(void) {
  dm m;

  mx_reply(&m);
  dm_mx(&m, "mx.test", 60, 10, "mx1.example");
  dm_mx(&m, "evil.test", 60, 0, "mx.evil.test");
  seed(&m, "mx-foreign");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR,
          "mx.test MX: record owned by evil.test", "foreign-owner MX");

  dm_reply(&m, 1, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_a(&m, "evil.test", 60, 203, 0, 113, 1);
  is_fail(&m, "h.test", MXR_TYPE_A, MXR_EFORMERR, "record owned by evil.test",
          "foreign-owner A alone");

  dm_reply(&m, 1, DM_RESPONSE, 0, "h.test", MXR_TYPE_A);
  dm_a(&m, "h.test", 60, 192, 0, 2, 1);
  dm_a(&m, "h.test.evil", 60, 203, 0, 113, 1);
  is_fail(&m, "h.test", MXR_TYPE_A, MXR_EFORMERR, "owned by h.test.evil",
          "foreign-owner A beside a good one");

  /* a record at the start of a chain is not at its end */
  mx_reply(&m);
  dm_cname(&m, "mx.test", 60, "real.test");
  dm_mx(&m, "mx.test", 60, 10, "mx1.example");
  dm_mx(&m, "real.test", 60, 10, "mx2.example");
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "owned by mx.test",
          "record beside a CNAME");

  {
    /* RDATA in wire form: names as length-prefixed labels, "\0" the root */
    static const rr_case bad_rdata[] = {
        {"h.test", MXR_TYPE_A, MXR_TYPE_A, 3, RDATA("\1\2\3\4"), "class 3",
         "A record of class CH"},
        {"h.test", MXR_TYPE_A, MXR_TYPE_A, 1, RDATA("\1\2\3\4\5"), "RDLENGTH 5",
         "A with RDLENGTH 5"},
        {"h.test", MXR_TYPE_AAAA, MXR_TYPE_AAAA, 1, RDATA("\x20\x01\x0d\xb8"), "RDLENGTH 4",
         "AAAA with RDLENGTH 4"},
        {"mx.test", MXR_TYPE_MX, MXR_TYPE_MX, 1, RDATA("\0\12"), "bad MX record",
         "MX with RDLENGTH 2"},
        /* pref 10, mx1.example, then a trailing octet inside RDATA */
        {"mx.test", MXR_TYPE_MX, MXR_TYPE_MX, 1, RDATA("\0\12\3mx1\7example\0\0"),
         "bad MX record", "MX with a trailing octet"},
        {"mx.test", MXR_TYPE_MX, MXR_TYPE_CNAME, 1, RDATA("\4real\4test\0\0"),
         "bad CNAME record", "CNAME with a trailing octet"},
        /* a CNAME target with a '.' inside a label cannot be asked for */
        {"mx.test", MXR_TYPE_MX, MXR_TYPE_CNAME, 1, RDATA("\3a.b\0"), "not a host name",
         "CNAME target with a dot inside a label"},
    };
    rr_formerr(bad_rdata, NCASES(bad_rdata));
  }
}

static void test_compression(void) {
  dm m;
  mxr_answer a;

  /* owner points to the question name (offset 12), exchange to a suffix
   * of the question name: the usual compressed reply */
  mx_reply(&m);
  dm_put16(&m, 6, 1);
  dm_ptr(&m, 12);
  dm_u16(&m, MXR_TYPE_MX);
  dm_u16(&m, 1);
  dm_u32(&m, 60);
  dm_u16(&m, 2 + 6);
  dm_u16(&m, 10);
  dm_u8(&m, 3);
  dm_u8(&m, 'm');
  dm_u8(&m, 'x');
  dm_u8(&m, '1');
  dm_ptr(&m, 15); /* "test" */
  seed(&m, "mx-compressed");
  is_int(parse(&m, "mx.test", MXR_TYPE_MX, -1, &a), MXR_OK,
         "compression pointers: ok");
  ok(a.nmx == 1 && strcmp(a.mx[0].name, "mx1.test") == 0,
     "compression pointers: exchange mx1.test");
  mxr_answer_clear(&a);

  /* a pointer to itself */
  mx_reply(&m);
  dm_put16(&m, 6, 1);
  dm_ptr(&m, m.n);
  dm_u16(&m, MXR_TYPE_MX);
  dm_u16(&m, 1);
  dm_u32(&m, 60);
  dm_u16(&m, 0);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "bad owner name",
          "compression pointer loop");

  /* two pointers pointing at each other, in the MX RDATA */
  mx_reply(&m);
  {
    size_t at = dm_rr_begin(&m, "mx.test", MXR_TYPE_MX, 1, 60);
    size_t here;
    dm_u16(&m, 10);
    here = m.n;
    dm_ptr(&m, here + 2);
    dm_ptr(&m, here);
    dm_rr_end(&m, at);
  }
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "bad MX record",
          "compression pointers in a cycle");

  /* the question name points forward, beyond the end, into the header */
  dm_reply(&m, 1, DM_RESPONSE, 0, "mx.test", MXR_TYPE_MX);
  m.n = 12;
  dm_ptr(&m, 4000);
  dm_u16(&m, MXR_TYPE_MX);
  dm_u16(&m, 1);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "bad question name",
          "pointer beyond the end");
  dm_reply(&m, 1, DM_RESPONSE, 0, "mx.test", MXR_TYPE_MX);
  m.n = 12;
  dm_ptr(&m, 2); /* into the header: flags/counts as labels */
  dm_u16(&m, MXR_TYPE_MX);
  dm_u16(&m, 1);
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, NULL,
          "pointer into the header");

  /* a CNAME target pointing forward past its own RDATA */
  mx_reply(&m);
  {
    size_t at = dm_rr_begin(&m, "mx.test", MXR_TYPE_CNAME, 1, 60);
    dm_ptr(&m, m.n + 2);
    dm_rr_end(&m, at);
    dm_mx(&m, "real.test", 60, 10, "mx1.example");
  }
  is_fail(&m, "mx.test", MXR_TYPE_MX, MXR_EFORMERR, "bad CNAME record",
          "CNAME target pointing forward");
}

/* Replies captured from Knot 3.2 (compressed, AA set, additional data):
 * "cap.test MX" and "out.cap.test MX" (a CNAME out of the zone). */
static const unsigned char knot_mx[] = {
    0x42, 0x42, 0x85, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03,
    0x03, 0x63, 0x61, 0x70, 0x04, 0x74, 0x65, 0x73, 0x74, 0x00, 0x00, 0x0f,
    0x00, 0x01, 0xc0, 0x0c, 0x00, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c,
    0x00, 0x08, 0x00, 0x0a, 0x03, 0x6d, 0x78, 0x31, 0xc0, 0x0c, 0xc0, 0x0c,
    0x00, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x08, 0x00, 0x14,
    0x03, 0x6d, 0x78, 0x32, 0xc0, 0x0c, 0xc0, 0x28, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x00, 0x01, 0x2c, 0x00, 0x04, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x28,
    0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x10, 0x20, 0x01,
    0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x01, 0xc0, 0x3c, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x01, 0x2c,
    0x00, 0x04, 0xc0, 0x00, 0x02, 0x02,
};
static const unsigned char knot_cname_out[] = {
    0x42, 0x42, 0x85, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    0x03, 0x6f, 0x75, 0x74, 0x03, 0x63, 0x61, 0x70, 0x04, 0x74, 0x65, 0x73,
    0x74, 0x00, 0x00, 0x0f, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01,
    0x00, 0x00, 0x01, 0x2c, 0x00, 0x16, 0x02, 0x6d, 0x78, 0x09, 0x65, 0x6c,
    0x73, 0x65, 0x77, 0x68, 0x65, 0x72, 0x65, 0x07, 0x65, 0x78, 0x61, 0x6d,
    0x70, 0x6c, 0x65, 0x00,
};

static void test_knot(void) {
  mxr_answer a;
  is_int(mxr_packet_parse(knot_mx, sizeof knot_mx, "cap.test", MXR_TYPE_MX,
                          0x4242, &a),
         MXR_OK, "Knot MX reply: ok");
  ok(a.nmx == 2 && strcmp(a.mx[0].name, "mx1.cap.test") == 0 &&
         a.mx[0].pref == 10 && strcmp(a.mx[1].name, "mx2.cap.test") == 0 &&
         a.mx[1].pref == 20,
     "Knot MX reply: both exchanges, decompressed");
  is_int(a.ttl, 300, "Knot MX reply: TTL");
  mxr_answer_clear(&a);
  is_int(mxr_packet_parse(knot_mx, sizeof knot_mx, "cap.test", MXR_TYPE_MX,
                          0x4243, &a),
         MXR_EFORMERR, "Knot MX reply, other ID: FORMERR");
  mxr_answer_clear(&a);
  is_int(mxr_packet_parse(knot_cname_out, sizeof knot_cname_out,
                          "out.cap.test", MXR_TYPE_MX, 0x4242, &a),
         MXR_OK, "Knot CNAME out of zone: ok");
  ok(a.chased == 1 && a.nmx == 0 && a.ncname == 1, "  chased");
  is_str(a.canon, "mx.elsewhere.example", "  canon");
  mxr_answer_clear(&a);
}

int main(void) {
  corpus_dir = getenv("MXR_WRITE_CORPUS");
  test_query();
  test_good();
  test_null_mx();
  test_nodata_nx();
  test_header();
  test_prefixes();
  test_cname();
  test_owners();
  test_compression();
  test_knot();
  return done_testing();
}
