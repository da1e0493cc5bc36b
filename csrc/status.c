/*
 * status: stable error tokens, their classes and descriptions; and the
 * core's checked allocation wrappers (with a failure hook for tests).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mxr_internal.h"
#include "mxroute.h"

typedef struct status_info {
  const char *name;
  mxr_class cls;
  const char *text;
} status_info;

/* Indexed by mxr_status; the names are the stable tokens users switch on
 * (README, "Codes and classes"). */
static const status_info statuses[MXR_STATUS_COUNT] = {
    {"OK", MXR_CLASS_OK, "success"},
    {"BADNAME", MXR_CLASS_INVALID, "not a valid mail address or domain"},
    {"BADOPT", MXR_CLASS_INVALID, "bad option or argument"},
    {"NXDOMAIN", MXR_CLASS_PERMANENT, "domain does not exist"},
    {"NODATA", MXR_CLASS_PERMANENT, "no record of the requested type"},
    {"NULLMX", MXR_CLASS_PERMANENT, "domain accepts no mail (null MX)"},
    {"NOHOSTS", MXR_CLASS_PERMANENT, "no usable mail host"},
    {"IGNORED", MXR_CLASS_PERMANENT, "address ignored by the target guard"},
    {"TOOMANY", MXR_CLASS_PERMANENT, "beyond the limit on mail hosts"},
    {"LOOP", MXR_CLASS_LOOP, "this host is the best mail exchanger"},
    {"SERVFAIL", MXR_CLASS_TEMPORARY, "server failure"},
    {"REFUSED", MXR_CLASS_TEMPORARY, "query refused"},
    {"TIMEOUT", MXR_CLASS_TEMPORARY, "no answer in time"},
    {"FORMERR", MXR_CLASS_TEMPORARY, "malformed or mismatched answer"},
    {"CNAMELOOP", MXR_CLASS_TEMPORARY, "CNAME chain loops or is too long"},
    {"NETWORK", MXR_CLASS_TEMPORARY, "network error"},
    {"NOMEM", MXR_CLASS_TEMPORARY, "out of memory"},
    {"CANCELLED", MXR_CLASS_TEMPORARY, "cancelled"},
    {"REJECTED", MXR_CLASS_PERMANENT, "recipient refused by a route"},
    {"DEFERRED", MXR_CLASS_TEMPORARY, "recipient deferred by a route"},
    {"HOOK", MXR_CLASS_TEMPORARY, "a routing hook failed"},
};

static const status_info *info(mxr_status st) {
  unsigned u = (unsigned)st;
  return u < (unsigned)MXR_STATUS_COUNT ? &statuses[u] : NULL;
}

const char *mxr_status_name(mxr_status st) {
  const status_info *i = info(st);
  return i ? i->name : "UNKNOWN";
}

/* Out-of-range codes are treated as temporary: retrying is the safe
 * answer to something we do not understand. */
mxr_class mxr_status_class(mxr_status st) {
  const status_info *i = info(st);
  return i ? i->cls : MXR_CLASS_TEMPORARY;
}

const char *mxr_class_name(mxr_class c) {
  switch (c) {
  case MXR_CLASS_OK: return "ok";
  case MXR_CLASS_PERMANENT: return "permanent";
  case MXR_CLASS_TEMPORARY: return "temporary";
  case MXR_CLASS_LOOP: return "loop";
  case MXR_CLASS_INVALID: return "invalid";
  }
  return "unknown";
}

mxr_status mxr_status_from_name(const char *name, mxr_status *out) {
  int i;
  if (name == NULL)
    return MXR_EBADOPT;
  for (i = 0; i < (int)MXR_STATUS_COUNT; i++) {
    if (strcmp(statuses[i].name, name) == 0) {
      if (out)
        *out = (mxr_status)i;
      return MXR_OK;
    }
  }
  return MXR_EBADOPT;
}

const char *mxr_status_text(mxr_status st) {
  const status_info *i = info(st);
  return i ? i->text : "unknown status";
}

/* ------------------------------------------------------------------ */
/* allocation                                                          */

#ifdef MXR_TESTING
long mxr_test_alloc_count = 0;
long mxr_test_alloc_fail_at = 0;

static int alloc_fails(void) {
  mxr_test_alloc_count++;
  return mxr_test_alloc_fail_at > 0 &&
         mxr_test_alloc_count == mxr_test_alloc_fail_at;
}
#else
#define alloc_fails() 0
#endif

void *mxr_malloc(size_t n) {
  if (alloc_fails())
    return NULL;
  return malloc(n ? n : 1);
}

void *mxr_calloc(size_t n, size_t size) {
  if (alloc_fails())
    return NULL;
  if (n == 0 || size == 0)
    n = size = 1;
  return calloc(n, size);
}

void *mxr_reallocarray(void *p, size_t n, size_t size) {
  if (size != 0 && n > SIZE_MAX / size)
    return NULL;
  if (alloc_fails())
    return NULL;
  n *= size;
  return realloc(p, n ? n : 1);
}

void mxr_free(void *p) { free(p); }
