/*
 * tap.h -- a tiny TAP (Test Anything Protocol) producer for the C unit
 * tests in csrc/test/. Header-only, C99, one test program per file.
 *
 *   #include "tap.h"
 *
 *   int main(void) {
 *       ok(1 + 1 == 2, "addition works");
 *       is_int(mxr_answer(), 42, "the answer is %d", 42);
 *       is_str(name, "example.com", "name is normalised");
 *       diag("a note on stdout, as a TAP comment");
 *       return done_testing();
 *   }
 *
 * ok(cond, fmt, ...)         one test point; fmt is printf-style. Returns
 *                            1 if it passed, 0 if not.
 * is_int(got, want, fmt, ...)  compares as long long; on failure prints
 *                            both values as "#" comments.
 * is_str(got, want, fmt, ...)  strcmp, NULL-safe (NULL equals only NULL).
 * diag(fmt, ...)             a "# ..." line.
 * done_testing()             prints the plan "1..N"; returns 0 if every
 *                            test passed, 1 otherwise: use it as main's
 *                            return value so that a failure is a non-zero
 *                            exit status.
 *
 * Every macro needs at least a description string (C99 variadic macros).
 * Output goes to stdout; a failure also names the file and line.
 */
#ifndef MXR_TEST_TAP_H
#define MXR_TEST_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__)
#define TAP_PRINTF_(f, a) __attribute__((format(printf, f, a)))
#else
#define TAP_PRINTF_(f, a)
#endif

static int tap_run_;
static int tap_failed_;

static inline void tap_vline_(const char *prefix, const char *fmt, va_list ap) {
  fputs(prefix, stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
}

static inline int tap_report_(int pass, const char *file, int line, const char *fmt, va_list ap)
    TAP_PRINTF_(4, 0);

static inline int tap_report_(int pass, const char *file, int line, const char *fmt, va_list ap) {
  tap_run_++;
  if (!pass)
    tap_failed_++;
  printf("%s %d - ", pass ? "ok" : "not ok", tap_run_);
  tap_vline_("", fmt, ap);
  if (!pass)
    printf("#   Failed test at %s line %d.\n", file, line);
  fflush(stdout);
  return pass;
}

static inline int tap_ok_(int pass, const char *file, int line, const char *fmt, ...)
    TAP_PRINTF_(4, 5);

static inline int tap_ok_(int pass, const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pass = tap_report_(pass, file, line, fmt, ap);
  va_end(ap);
  return pass;
}

static inline int tap_is_int_(long long got, long long want, const char *file, int line,
                              const char *fmt, ...) TAP_PRINTF_(5, 6);

static inline int tap_is_int_(long long got, long long want, const char *file, int line,
                              const char *fmt, ...) {
  va_list ap;
  int pass;
  va_start(ap, fmt);
  pass = tap_report_(got == want, file, line, fmt, ap);
  va_end(ap);
  if (!pass)
    printf("#          got: %lld\n#     expected: %lld\n", got, want);
  return pass;
}

static inline int tap_is_str_(const char *got, const char *want, const char *file, int line,
                              const char *fmt, ...) TAP_PRINTF_(5, 6);

static inline int tap_is_str_(const char *got, const char *want, const char *file, int line,
                              const char *fmt, ...) {
  va_list ap;
  int pass = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
  va_start(ap, fmt);
  pass = tap_report_(pass, file, line, fmt, ap);
  va_end(ap);
  if (!pass)
    printf("#          got: %s%s%s\n#     expected: %s%s%s\n", got ? "\"" : "", got ? got : "NULL",
           got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
  return pass;
}

static inline void tap_diag_(const char *fmt, ...) TAP_PRINTF_(1, 2);

static inline void tap_diag_(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tap_vline_("# ", fmt, ap);
  va_end(ap);
  fflush(stdout);
}

static inline int done_testing(void) {
  printf("1..%d\n", tap_run_);
  if (tap_failed_)
    printf("# Looks like you failed %d test%s of %d.\n", tap_failed_, tap_failed_ == 1 ? "" : "s",
           tap_run_);
  fflush(stdout);
  return tap_failed_ ? 1 : 0;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...) \
  tap_is_int_((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str_((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define diag(...) tap_diag_(__VA_ARGS__)

#endif
