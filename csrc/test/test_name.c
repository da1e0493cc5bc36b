/*
 * Input parsing, name normalisation, addresses and CIDRs. TAP output.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mxroute.h"
#include <stdio.h>
#include <string.h>

#include "tap.h"

#define L(s) s, sizeof(s) - 1

/* Valid inputs and the domain they normalise to. */
typedef struct good_case {
  const char *in;
  size_t len;
  mxr_input_kind kind;
  const char *domain;
} good_case;

static const good_case good[] = {
    {L("user@example.com"), MXR_INPUT_DOMAIN, "example.com"},
    {L("User@Example.COM"), MXR_INPUT_DOMAIN, "example.com"},
    {L("example.com"), MXR_INPUT_DOMAIN, "example.com"},
    {L("Example.COM."), MXR_INPUT_DOMAIN, "example.com"},
    {L("localhost"), MXR_INPUT_DOMAIN, "localhost"},
    {L("a@b.c"), MXR_INPUT_DOMAIN, "b.c"},
    {L("first.last@sub.example.org"), MXR_INPUT_DOMAIN, "sub.example.org"},
    {L("x!#$%&'*+-/=?^_`{|}~@example.com"), MXR_INPUT_DOMAIN, "example.com"},
    {L("\"john doe\"@example.com"), MXR_INPUT_DOMAIN, "example.com"},
    {L("\"a@b\"@example.com"), MXR_INPUT_DOMAIN, "example.com"},
    {L("\"quoted\\\"pair\\\\\"@example.com"), MXR_INPUT_DOMAIN, "example.com"},
    {L("\"\"@example.com"), MXR_INPUT_DOMAIN, "example.com"},
    {L("u@xn--bcher-kva.example"), MXR_INPUT_DOMAIN, "xn--bcher-kva.example"},
    {L("u@a-b.c-d.e"), MXR_INPUT_DOMAIN, "a-b.c-d.e"},
    {L("u@123.example"), MXR_INPUT_DOMAIN, "123.example"},
    {L("u@example.123a"), MXR_INPUT_DOMAIN, "example.123a"},
    {L("u@[192.0.2.1]"), MXR_INPUT_LITERAL, "[192.0.2.1]"},
    {L("u@[0.0.0.0]"), MXR_INPUT_LITERAL, "[0.0.0.0]"},
    {L("u@[255.255.255.255]"), MXR_INPUT_LITERAL, "[255.255.255.255]"},
    {L("u@[IPv6:2001:DB8:0:0:0:0:0:1]"), MXR_INPUT_LITERAL, "[IPv6:2001:db8::1]"},
    {L("u@[ipv6:2001:db8::1]"), MXR_INPUT_LITERAL, "[IPv6:2001:db8::1]"},
    {L("u@[IPV6:2001:0db8:0000:0000:0001:0000:0000:0001]"), MXR_INPUT_LITERAL,
     "[IPv6:2001:db8::1:0:0:1]"},
    {L("u@[IPv6:::ffff:192.0.2.1]"), MXR_INPUT_LITERAL, "[IPv6:::ffff:192.0.2.1]"},
    {L("u@[IPv6:::]"), MXR_INPUT_LITERAL, "[IPv6:::]"},
    {L("[192.0.2.7]"), MXR_INPUT_LITERAL, "[192.0.2.7]"},
};

/* Invalid inputs and a fragment the message must contain. */
typedef struct bad_case {
  const char *in;
  size_t len;
  const char *msg;
} bad_case;

static char long_label[80], long_name[300], max_name[300], long_local[100];

static const bad_case bad[] = {
    {L(""), "empty input"},
    {L("user@"), "user@: missing domain after '@'"},
    {L("@example.com"), "missing local part before '@'"},
    {L("a@@example.com"), "more than one '@'"},
    {L("@@"), "missing local part"},
    {L("a@b@c.com"), "more than one '@'"},
    {L("a..b"), "a..b: empty label"},
    {L("u@a..b"), "empty label"},
    {L(".example.com"), "empty label"},
    {L("u@.example.com"), "empty label"},
    {L("."), "empty domain"},
    {L("example.com.."), "empty label"},
    {L("u@example.com."), "trailing dot after the domain of an address"},
    {L("u@exa mple.com"), "character ' ' not allowed in a domain"},
    {L("us er@example.com"), "character ' ' not allowed in an unquoted local part"},
    {L(" example.com"), "character ' ' not allowed"},
    {L("u@exam_ple.com"), "character '_' not allowed in a domain"},
    {L("u@-example.com"), "label starts with '-'"},
    {L("u@example-.com"), "label ends with '-'"},
    {L("u@123.456"), "numeric top label"},
    {L("1.2.3.4"), "numeric top label"},
    {L("u@example.42"), "numeric top label"},
    {L("u\0x@example.com"), "NUL byte at offset 1"},
    {L("u@example.com\0"), "NUL byte at offset 13"},
    {L("u@exa\x01mple.com"), "control character 0x01 at offset 5"},
    {L("u@example.com\n"), "control character 0x0a"},
    {L("u@example.com\x7f"), "control character 0x7f"},
    {L("j\xc3\xb6rg@example.com"), "non-ASCII byte 0xc3 at offset 1"},
    {L("u@b\xc3\xbc" "cher.example"), "non-ASCII byte 0xc3"},
    {L(".u@example.com"), "local part starts with '.'"},
    {L("u.@example.com"), "local part ends with '.'"},
    {L("a..b@example.com"), "empty atom ('..') in local part"},
    {L("a(b)@example.com"), "character '(' not allowed in an unquoted local part"},
    {L("\"unterminated@example.com"), "unterminated quoted local part"},
    {L("\"a\"b@example.com"), "expected '@' after the quoted local part"},
    {L("\"a\\"), "unterminated quoted local part"},
    {L("u@[192.0.2.1"), "lacks the closing ']'"},
    {L("u@[192.0.2.1]x"), "text after the address literal's ']'"},
    {L("u@[192.0.2.1]."), "text after the address literal's ']'"},
    {L("u@[]"), "empty address literal"},
    {L("u@[256.0.0.1]"), "not a valid IPv4 address literal"},
    {L("u@[192.0.2]"), "not a valid IPv4 address literal"},
    {L("u@[192.0.2.1.5]"), "not a valid IPv4 address literal"},
    {L("u@[192.0.02.1]"), "no leading zeros"},
    {L("u@[+1.2.3.4]"), "not a valid IPv4"},
    {L("u@[IPv6:2001:db8::g]"), "not a valid IPv6 address literal"},
    {L("u@[IPv6:192.0.2.1]"), "not a valid IPv6 address literal"},
    {L("u@[IPv6:fe80::1%eth0]"), "not a valid IPv6"},
    {L("u@[2001:db8::1]"), "IPv6 needs the 'IPv6:' tag"},
    {L("u@[x-tag:stuff]"), "unsupported address literal"},
    {L("u@[IPv6:1:2:3:4:5:6:7:8:9]"), "not a valid IPv6"},
};

/* Runtime-built cases: lengths. */
static void build_long(void) {
  size_t i;
  memset(long_label, 'a', 64);
  strcpy(long_label + 64, ".com");
  /* 254 octets: 3 x 63 + 61 + dots */
  for (i = 0; i < 254; i++)
    long_name[i] = (i % 64 == 63) ? '.' : 'a';
  long_name[254] = '\0';
  /* exactly 253 octets */
  memcpy(max_name, long_name, 253);
  max_name[253] = '\0';
  memset(long_local, 'l', 65);
  strcpy(long_local + 65, "@example.com");
}

static void test_good(void) {
  size_t i;
  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    mxr_input in;
    char err[MXR_MSG_BUF] = "";
    char what[400];
    mxr_status st = mxr_input_parse(good[i].in, good[i].len, &in, err, sizeof err);
    snprintf(what, sizeof what, "valid: %s", good[i].in);
    if (st != MXR_OK) {
      ok(0, "%s (%s)", what, err);
      continue;
    }
    ok(in.kind == good[i].kind, "%s: kind", what);
    is_str(in.domain, good[i].domain, "%s", what);
  }
}

static void test_bad(void) {
  size_t i, j;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mxr_input in;
    char err[MXR_MSG_BUF] = "";
    int clean = 1;
    mxr_status st = mxr_input_parse(bad[i].in, bad[i].len, &in, err, sizeof err);
    for (j = 0; err[j]; j++)
      if ((unsigned char)err[j] < 0x20 || (unsigned char)err[j] > 0x7e)
        clean = 0;
    ok(st == MXR_EBADNAME && strstr(err, bad[i].msg) != NULL && clean,
       "invalid #%zu: message '%s' has '%s'", i, err, bad[i].msg);
  }
}

/* s is one octet over a limit: BADNAME, the message holding msg; s + 1,
 * at the limit, is fine. */
static void at_limit(const char *s, const char *msg, const char *over, const char *fine) {
  mxr_input in;
  char err[MXR_MSG_BUF];
  ok(mxr_input_parse(s, strlen(s), &in, err, sizeof err) == MXR_EBADNAME &&
         strstr(err, msg),
     "%s: %s", over, err);
  ok(mxr_input_parse(s + 1, strlen(s + 1), &in, err, sizeof err) == MXR_OK, "%s", fine);
}

static void test_lengths(void) {
  mxr_input in;
  char err[MXR_MSG_BUF], buf[400];
  build_long();
  at_limit(long_label, "label longer than 63 octets", "64-octet label",
           "63-octet label is fine");
  ok(mxr_input_parse(long_name, 254, &in, err, sizeof err) == MXR_EBADNAME &&
         strstr(err, "domain longer than 253 octets"),
     "254-octet name: %s", err);
  ok(strstr(err, "...") != NULL && strlen(err) < 200,
     "a long input is shown cut in the message");
  ok(mxr_input_parse(max_name, 253, &in, err, sizeof err) == MXR_OK &&
         strlen(in.domain) == 253,
     "253-octet name is fine");
  snprintf(buf, sizeof buf, "%s.", max_name);
  ok(mxr_input_parse(buf, 254, &in, err, sizeof err) == MXR_OK,
     "253 octets plus the trailing dot is fine");
  snprintf(buf, sizeof buf, "u@%s", max_name);
  ok(mxr_input_parse(buf, strlen(buf), &in, err, sizeof err) == MXR_OK,
     "address with a 253-octet domain");
  at_limit(long_local, "local part longer than 64 octets", "65-octet local part",
           "64-octet local part is fine");
  ok(mxr_input_parse("u@example.com", 13, &in, NULL, 0) == MXR_OK,
     "err may be NULL");
  ok(mxr_input_parse("u@", 2, &in, NULL, 0) == MXR_EBADNAME,
     "err may be NULL on errors");
  ok(mxr_input_parse("u@", 2, &in, err, 8) == MXR_EBADNAME && strlen(err) < 8,
     "a short err buffer is respected");
}

static void test_normalize(void) {
  char out[MXR_NAME_BUF], err[MXR_MSG_BUF];
  ok(mxr_name_normalize(L("MX1.Example.COM."), out, err, sizeof err) == MXR_OK &&
         strcmp(out, "mx1.example.com") == 0,
     "normalize: lower case, trailing dot removed");
  ok(mxr_name_normalize(L("_srv._tcp.example.com"), out, err, sizeof err) ==
             MXR_OK &&
         strcmp(out, "_srv._tcp.example.com") == 0,
     "normalize: '_' allowed in DNS data");
  ok(mxr_name_normalize(L("."), out, err, sizeof err) == MXR_OK && out[0] == '\0',
     "normalize: '.' (the root) is the empty name");
  ok(mxr_name_normalize("", 0, out, err, sizeof err) == MXR_OK && out[0] == '\0',
     "normalize: '' is the root too");
  ok(mxr_name_normalize(L("a..b"), out, err, sizeof err) == MXR_EBADNAME &&
         strstr(err, "empty label"),
     "normalize: empty label");
  ok(mxr_name_normalize(L(".a"), out, err, sizeof err) == MXR_EBADNAME,
     "normalize: leading dot");
  ok(mxr_name_normalize(L("a.."), out, err, sizeof err) == MXR_EBADNAME,
     "normalize: two trailing dots");
  ok(mxr_name_normalize(L("a b"), out, err, sizeof err) == MXR_EBADNAME &&
         strstr(err, "' '"),
     "normalize: space rejected: %s", err);
  ok(mxr_name_normalize(L("a\x01" "b"), out, err, sizeof err) == MXR_EBADNAME &&
         strstr(err, "a\\x01b") && strstr(err, "0x01"),
     "normalize: control byte rejected and escaped: %s", err);
  ok(mxr_name_normalize(L("a\0b"), out, err, sizeof err) == MXR_EBADNAME,
     "normalize: NUL rejected");
  ok(mxr_name_normalize(L("\xc3\xa9.example"), out, err, sizeof err) ==
         MXR_EBADNAME,
     "normalize: non-ASCII rejected");
  build_long();
  ok(mxr_name_normalize(long_label, strlen(long_label), out, err, sizeof err) ==
             MXR_EBADNAME &&
         strstr(err, "label longer than 63"),
     "normalize: 64-octet label");
  ok(mxr_name_normalize(long_name, 254, out, err, sizeof err) == MXR_EBADNAME &&
         strstr(err, "longer than 253"),
     "normalize: 254 octets");
  ok(mxr_name_normalize(max_name, 253, out, err, sizeof err) == MXR_OK,
     "normalize: 253 octets");
  ok(mxr_name_equal("MX.example.COM.", "mx.Example.com"),
     "name_equal: case and trailing dot ignored");
  ok(!mxr_name_equal("mx.example.com", "mx.example.co"), "name_equal: differs");
  ok(!mxr_name_equal("a", NULL), "name_equal: NULL");
  /* ASCII-only folding: 0xC4 is not 0xE4 */
  ok(!mxr_name_equal("\xc4", "\xe4"), "name_equal: no locale folding");
}

static const char *fmt(const char *s) {
  static char buf[MXR_ADDR_BUF];
  mxr_addr a;
  if (mxr_addr_parse(s, strlen(s), &a) != MXR_OK)
    return "ERR";
  mxr_addr_format(&a, buf);
  return buf;
}

static void test_addr(void) {
  static const char *const cases[][2] = {
      {"192.0.2.1", "192.0.2.1"},
      {"0.0.0.0", "0.0.0.0"},
      {"2001:DB8::1", "2001:db8::1"},
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
      {"2001:0db8:0000:0000:0000:0000:0002:0001", "2001:db8::2:1"},
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},
      {"0:0:0:0:0:0:0:0", "::"},
      {"::1", "::1"},
      {"1::", "1::"},
      {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
      {"::FFFF:c000:0201", "::ffff:192.0.2.1"},
      {"2001:db8:0:0:1:0:0:0", "2001:db8:0:0:1::"},
      {"1:0:0:2:0:0:0:3", "1:0:0:2::3"},
      {"192.0.2", "ERR"},
      {"192.0.2.256", "ERR"},
      {"192.0.2.01", "ERR"},
      {"1.2.3.4.", "ERR"},
      {"1.2.3.4 ", "ERR"},
      {"", "ERR"},
      {"::g", "ERR"},
      {"1:2:3:4:5:6:7:8:9", "ERR"},
      {"fe80::1%1", "ERR"},
  };
  size_t i;
  mxr_addr a, b;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
    is_str(fmt(cases[i][0]), cases[i][1], "format %s", cases[i][0]);
  ok(mxr_addr_parse("1.2.3.4\0", 8, &a) != MXR_OK, "addr: NUL rejected");
  mxr_addr_parse("192.0.2.1", 9, &a);
  mxr_addr_parse("::ffff:192.0.2.1", 16, &b);
  ok(mxr_addr_equal(&a, &b), "addr_equal: IPv4-mapped equals IPv4");
  mxr_addr_parse("::192.0.2.1", 11, &b);
  ok(!mxr_addr_equal(&a, &b), "addr_equal: IPv4-compatible is not mapped");
  mxr_addr_parse("2001:db8::1", 11, &a);
  mxr_addr_parse("2001:DB8:0::1", 13, &b);
  ok(mxr_addr_equal(&a, &b), "addr_equal: IPv6 textual forms");
}

static int in_cidr(const char *c, const char *a) {
  mxr_cidr cc;
  mxr_addr aa;
  if (mxr_cidr_parse(c, strlen(c), &cc) != MXR_OK ||
      mxr_addr_parse(a, strlen(a), &aa) != MXR_OK)
    return -1;
  return mxr_cidr_contains(&cc, &aa);
}

static void test_cidr(void) {
  mxr_cidr c;
  char buf[MXR_ADDR_BUF];
  is_int(in_cidr("10.0.0.0/8", "10.255.0.1"), 1, "10/8 has 10.255.0.1");
  is_int(in_cidr("10.0.0.0/8", "11.0.0.1"), 0, "10/8 lacks 11.0.0.1");
  is_int(in_cidr("172.16.0.0/12", "172.31.1.1"), 1, "/12 boundary in");
  is_int(in_cidr("172.16.0.0/12", "172.32.0.0"), 0, "/12 boundary out");
  is_int(in_cidr("10.0.0.0/8", "::ffff:10.1.1.1"), 1,
         "an IPv4-mapped address is judged as IPv4");
  is_int(in_cidr("::ffff:10.0.0.0/104", "10.1.1.1"), 1,
         "an IPv4-mapped CIDR is judged as IPv4");
  is_int(in_cidr("::/0", "10.1.1.1"), 0, "IPv6 ::/0 does not hold IPv4");
  is_int(in_cidr("0.0.0.0/0", "2001:db8::1"), 0, "IPv4 /0 does not hold IPv6");
  is_int(in_cidr("0.0.0.0/0", "203.0.113.9"), 1, "/0 holds everything of its family");
  is_int(in_cidr("fe80::/10", "febf:ffff::1"), 1, "fe80::/10 in");
  is_int(in_cidr("fe80::/10", "fec0::1"), 0, "fe80::/10 out");
  is_int(in_cidr("192.0.2.1", "192.0.2.1"), 1, "a bare address is a /32");
  is_int(in_cidr("192.0.2.1", "192.0.2.2"), 0, "a bare address is a /32 (out)");
  is_int(in_cidr("2001:db8::1", "2001:db8::1"), 1, "a bare IPv6 is a /128");
  ok(mxr_cidr_parse("10.1.2.3/8", 10, &c) == MXR_OK && c.bits == 8,
     "host bits are accepted");
  mxr_addr_format(&c.addr, buf);
  is_str(buf, "10.0.0.0", "and cleared");
  ok(mxr_cidr_parse("192.0.2.255/25", 14, &c) == MXR_OK && c.bits == 25,
     "a prefix inside a byte");
  mxr_addr_format(&c.addr, buf);
  is_str(buf, "192.0.2.128", "clears only the host bits of that byte");
  ok(mxr_cidr_parse("2001:db8:ffff::1/33", 19, &c) == MXR_OK, "IPv6 /33");
  mxr_addr_format(&c.addr, buf);
  is_str(buf, "2001:db8:8000::", "IPv6 host bits cleared");
  is_int(in_cidr("192.0.2.128/25", "192.0.2.127"), 0, "/25 boundary out");
  is_int(in_cidr("192.0.2.128/25", "192.0.2.200"), 1, "/25 boundary in");
  ok(mxr_cidr_parse("10.0.0.0/33", 11, &c) != MXR_OK, "IPv4 /33 rejected");
  ok(mxr_cidr_parse("::/129", 6, &c) != MXR_OK, "IPv6 /129 rejected");
  ok(mxr_cidr_parse("::/128", 6, &c) == MXR_OK && c.bits == 128, "IPv6 /128 ok");
  ok(mxr_cidr_parse("10.0.0.0/", 9, &c) != MXR_OK, "empty prefix rejected");
  ok(mxr_cidr_parse("10.0.0.0/08", 11, &c) != MXR_OK, "leading zero prefix rejected");
  ok(mxr_cidr_parse("10.0.0.0/-1", 11, &c) != MXR_OK, "negative prefix rejected");
  ok(mxr_cidr_parse("10.0.0.0/8/8", 12, &c) != MXR_OK, "two slashes rejected");
  ok(mxr_cidr_parse("example.com/8", 13, &c) != MXR_OK, "names rejected");
}

int main(void) {
  test_good();
  test_bad();
  test_lengths();
  test_normalize();
  test_addr();
  test_cidr();
  return done_testing();
}
