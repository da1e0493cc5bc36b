/*
 * measure.h — what the C benchmarks measure of themselves: the clock,
 * CPU time and resident memory. Included by each C program in bench/ (one
 * translation unit each, hence static functions). Unused functions are
 * marked so that a program using only the clock compiles cleanly.
 */
#ifndef MXR_BENCH_MEASURE_H
#define MXR_BENCH_MEASURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#if defined(__GNUC__)
#define MEASURE_MAYBE_UNUSED __attribute__((unused))
#else
#define MEASURE_MAYBE_UNUSED
#endif

/* seconds on the monotonic clock */
MEASURE_MAYBE_UNUSED static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + system CPU seconds of this process */
MEASURE_MAYBE_UNUSED static double cpu_s(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* VmRSS or VmHWM (the peak) of /proc/self/status, in KiB */
MEASURE_MAYBE_UNUSED static long status_kib(const char *field)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long v = 0;
  size_t n = strlen(field);
  if (!f)
    return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':')
      v = strtol(line + n + 1, NULL, 10);
  fclose(f);
  return v;
}

#endif
