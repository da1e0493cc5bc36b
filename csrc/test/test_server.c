/*
 * The one nameserver parser (mxr_server_parse / mxr_server_format): what
 * the options, the CLI and mxroute.ngx accept as a nameserver, table by
 * table. TAP output.
 */
#include <stdio.h>
#include <string.h>

#include "mxroute.h"
#include "tap.h"

typedef struct good_case {
  const char *in;
  const char *canon; /* mxr_server_format */
  unsigned port;
} good_case;

/* Accepted, with their canonical text. */
static const good_case good[] = {
    {"192.0.2.1", "192.0.2.1:53", 53},
    {"192.0.2.1:5353", "192.0.2.1:5353", 5353},
    {"127.0.0.1:1", "127.0.0.1:1", 1},
    {"127.0.0.1:65535", "127.0.0.1:65535", 65535},
    {"2001:db8::1", "[2001:db8::1]:53", 53},
    {"[2001:db8::1]", "[2001:db8::1]:53", 53},
    {"[2001:db8::1]:5353", "[2001:db8::1]:5353", 5353},
    {"2001:DB8:0:0::1", "[2001:db8::1]:53", 53},
    {"::1", "[::1]:53", 53},
    {"[::1]:53", "[::1]:53", 53},
    {"::1:53", "[::1:53]:53", 53}, /* bare IPv6 has no port: all address */
    {"::ffff:192.0.2.1", "[::ffff:192.0.2.1]:53", 53},
    {"10.0.0.1", "10.0.0.1:53", 53},    /* private is fine for a server */
    {"255.255.255.254", "255.255.255.254:53", 53},
    {"223.255.255.255", "223.255.255.255:53", 53},
    {"240.0.0.1", "240.0.0.1:53", 53},
    {"fe80::1", "[fe80::1]:53", 53},
};

typedef struct bad_case {
  const char *in;
  size_t len;       /* 0: strlen */
  const char *what; /* a part of the message */
} bad_case;

/* Refused, each with the part of the message saying why. */
static const bad_case bad[] = {
    {"", 0, "empty nameserver"},
    {"01.2.3.4", 0, "is not an IP address"},      /* octal or decimal? */
    {"1.2.3.04", 0, "is not an IP address"},
    {"1.2.3", 0, "is not an IP address"},
    {"1.2.3.4.5", 0, "is not an IP address"},
    {"256.1.1.1", 0, "is not an IP address"},
    {" 127.0.0.1", 0, "is not an IP address"},
    {"127.0.0.1 ", 0, "is not an IP address"},
    {"localhost", 0, "is not an IP address"},
    {"127.0.0.1:", 0, "port must be 1..65535"},
    {"127.0.0.1:0", 0, "port must be 1..65535"},
    {"127.0.0.1:65536", 0, "port must be 1..65535"},
    {"127.0.0.1:053", 0, "port must be 1..65535"},
    {"127.0.0.1:+53", 0, "port must be 1..65535"},
    {"127.0.0.1:5x", 0, "port must be 1..65535"},
    {"[::1]:", 0, "port must be 1..65535"},
    {"[::1]:0", 0, "port must be 1..65535"},
    {"[::1]:65536", 0, "port must be 1..65535"},
    {"::::", 0, "is not an IP address"},
    {":::", 0, "is not an IP address"},
    {"1::2::3", 0, "is not an IP address"},
    {"fe80::1%eth0", 0, "is not an IP address"},
    {"[fe80::1%eth0]:53", 0, "is not an IP address"},
    {"[192.0.2.1]", 0, "brackets are for IPv6 addresses"},
    {"[192.0.2.1]:53", 0, "brackets are for IPv6 addresses"},
    {"[::1", 0, "'[' without ']'"},
    {"[::1]53", 0, "expected ':PORT' after ']'"},
    {"[]", 0, "brackets are for IPv6 addresses"},
    {"[]:53", 0, "is not an IP address"},
    {"0.0.0.0", 0, "unspecified, broadcast or multicast"},
    {"0.0.0.0:53", 0, "unspecified, broadcast or multicast"},
    {"255.255.255.255", 0, "unspecified, broadcast or multicast"},
    {"224.0.0.1", 0, "unspecified, broadcast or multicast"},
    {"239.255.255.250", 0, "unspecified, broadcast or multicast"},
    {"::", 0, "unspecified, broadcast or multicast"},
    {"[::]:53", 0, "unspecified, broadcast or multicast"},
    {"ff02::1", 0, "unspecified, broadcast or multicast"},
    {"[ff05::1:3]:53", 0, "unspecified, broadcast or multicast"},
    {"::ffff:0.0.0.0", 0, "unspecified, broadcast or multicast"},
    {"::ffff:224.0.0.251", 0, "unspecified, broadcast or multicast"},
    {"127.0.0.1\0:53", 13, "contains a NUL byte"},
    {"\0", 1, "contains a NUL byte"},
};

static void test_good(void) {
  size_t i;
  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    mxr_server sv;
    char buf[MXR_SERVER_BUF], err[MXR_MSG_BUF] = "untouched";
    mxr_status st = mxr_server_parse(good[i].in, strlen(good[i].in), &sv, err,
                                     sizeof err);
    if (!is_int(st, MXR_OK, "'%s' is a nameserver", good[i].in)) {
      diag("%s", err);
      continue;
    }
    mxr_server_format(&sv, buf);
    is_str(buf, good[i].canon, "'%s' is %s", good[i].in, good[i].canon);
    is_int(sv.port, good[i].port, "'%s' has port %u", good[i].in,
           good[i].port);
  }
}

static void test_bad(void) {
  size_t i;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mxr_server sv;
    char err[MXR_MSG_BUF];
    size_t len = bad[i].len ? bad[i].len : strlen(bad[i].in);
    mxr_status st;
    memset(&sv, 0xa5, sizeof sv);
    err[0] = '\0';
    st = mxr_server_parse(bad[i].in, len, &sv, err, sizeof err);
    is_int(st, MXR_EBADOPT, "'%s' (%zu octets) is refused", bad[i].in, len);
    if (!ok(strstr(err, bad[i].what) != NULL, "'%s': message says '%s'",
            bad[i].in, bad[i].what))
      diag("message: %s", err);
    ok(strncmp(err, "nameserver", 10) == 0 || strcmp(err, "empty nameserver")
       == 0, "'%s': the message starts with the word nameserver", bad[i].in);
    ok(((const unsigned char *)&sv)[0] == 0xa5, "'%s': out is left alone",
       bad[i].in);
  }
}

static void test_message(void) {
  mxr_server sv;
  char err[MXR_MSG_BUF], small[16];
  mxr_server_parse("01.2.3.4", 8, &sv, err, sizeof err);
  is_str(err,
         "nameserver '01.2.3.4' is not an IP address with an optional port "
         "(192.0.2.1, 192.0.2.1:53, 2001:db8::1, [2001:db8::1]:53)",
         "the full message for a bad address");
  mxr_server_parse("a\x01" "b", 3, &sv, err, sizeof err);
  ok(strstr(err, "'a\\x01b'") != NULL, "control bytes are shown escaped");
  is_int(mxr_server_parse("1.2.3.4:0", 9, &sv, small, sizeof small),
         MXR_EBADOPT, "a short message buffer is fine");
  is_int((long long)strlen(small), (long long)sizeof small - 1,
         "and the message is cut to it");
  is_int(mxr_server_parse("1.2.3.4:0", 9, &sv, NULL, 0), MXR_EBADOPT,
         "no message buffer is fine");
  is_int(mxr_server_parse(NULL, 0, &sv, err, sizeof err), MXR_EBADOPT,
         "NULL text is refused");
  is_int(mxr_server_parse("1.2.3.4", 7, NULL, err, sizeof err), MXR_EBADOPT,
         "NULL out is refused");
  is_int(mxr_server_parse("127.0.0.1:53xyz", 12, &sv, err, sizeof err),
         MXR_OK, "len bounds the text, not a NUL");
  is_int(sv.port, 53, "so the port is 53");
}

int main(void) {
  test_good();
  test_bad();
  test_message();
  return done_testing();
}
