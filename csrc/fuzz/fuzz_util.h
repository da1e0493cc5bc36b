/*
 * fuzz_util.h -- what every libFuzzer target of csrc/fuzz/ shares: the
 * entry point's prototype (for -Wmissing-prototypes) and CHECK(c), which
 * traps when the invariant c does not hold, so that libFuzzer reports the
 * input as a crash. Only the targets trap; the library never does.
 */
#ifndef MXR_FUZZ_UTIL_H
#define MXR_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                               \
  do {                                                                         \
    if (!(c))                                                                  \
      __builtin_trap();                                                        \
  } while (0)

#endif
