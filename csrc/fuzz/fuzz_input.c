/*
 * libFuzzer target: input parsing, name normalisation, addresses, CIDRs.
 * Checks that whatever is accepted is normalised and stable under a
 * second pass, and that messages never carry raw control bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "mxroute.h"

static void check_msg(const char *err, size_t errlen) {
  size_t i, n = strnlen(err, errlen);
  CHECK(n < errlen);
  for (i = 0; i < n; i++)
    CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] <= 0x7e);
}

static void check_input(const char *s, size_t len) {
  mxr_input in, again;
  char err[MXR_MSG_BUF];
  size_t i, n;
  memset(err, 'x', sizeof err);
  if (mxr_input_parse(s, len, &in, err, sizeof err) != MXR_OK) {
    check_msg(err, sizeof err);
    CHECK(err[0] != '\0');
    return;
  }
  n = strlen(in.domain);
  CHECK(n > 0 && n <= MXR_NAME_MAX);
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in.domain[i];
    CHECK(c > 0x20 && c < 0x7f);
    if (in.kind == MXR_INPUT_DOMAIN)
      CHECK(!(c >= 'A' && c <= 'Z'));
  }
  /* the normal form parses to itself */
  CHECK(mxr_input_parse(in.domain, n, &again, err, sizeof err) == MXR_OK);
  CHECK(again.kind == in.kind && strcmp(again.domain, in.domain) == 0);
  if (in.kind == MXR_INPUT_LITERAL)
    CHECK(mxr_addr_equal(&in.addr, &again.addr));
}

static void check_name(const char *s, size_t len) {
  char out[MXR_NAME_BUF], out2[MXR_NAME_BUF], err[64];
  size_t n;
  if (mxr_name_normalize(s, len, out, err, sizeof err) != MXR_OK) {
    check_msg(err, sizeof err);
    return;
  }
  n = strlen(out);
  CHECK(n <= MXR_NAME_MAX);
  CHECK(mxr_name_normalize(out, n, out2, NULL, 0) == MXR_OK);
  CHECK(strcmp(out, out2) == 0);
  CHECK(n == 0 || mxr_name_equal(out, out2));
}

static void check_addr(const char *s, size_t len) {
  mxr_addr a, b;
  mxr_cidr c;
  char txt[MXR_ADDR_BUF];
  if (mxr_addr_parse(s, len, &a) == MXR_OK) {
    CHECK(a.family == 4 || a.family == 6);
    mxr_addr_format(&a, txt);
    CHECK(strlen(txt) < MXR_ADDR_BUF);
    CHECK(mxr_addr_parse(txt, strlen(txt), &b) == MXR_OK);
    CHECK(mxr_addr_equal(&a, &b) && a.family == b.family);
  }
  if (mxr_cidr_parse(s, len, &c) == MXR_OK) {
    CHECK(c.bits <= (c.addr.family == 4 ? 32 : 128));
    CHECK(mxr_cidr_contains(&c, &c.addr));
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  check_input(s, size);
  check_name(s, size);
  if (size < 128) {
    /* NUL-free prefix: the string forms the engine passes in. */
    check_addr(s, strnlen(s, size));
    check_addr(s, size);
  }
  return 0;
}
