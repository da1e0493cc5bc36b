/*
 * resq.h — the queries a resolution hands out, for the C tests that
 * drive mxr_res by hand (test_resolve.c, test_route.c).
 */
#ifndef MXR_TEST_RESQ_H
#define MXR_TEST_RESQ_H

#include <string.h>

#include "mxroute.h"

#define QMAX 64

/* Everything mxr_res_next hands out now (at most QMAX). */
static inline size_t drain(mxr_res *r, mxr_query *qs) {
  size_t n = 0;
  while (n < QMAX && mxr_res_next(r, &qs[n]))
    n++;
  return n;
}

/* The query for (name, type) among qs[0..n), or NULL. */
static inline const mxr_query *find(const mxr_query *qs, size_t n,
                                    const char *name, uint16_t type) {
  for (size_t i = 0; i < n; i++)
    if (qs[i].type == type && strcmp(qs[i].name, name) == 0)
      return &qs[i];
  return NULL;
}

#endif
