/*
 * Status codes: names, classes, texts, round trips. TAP.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mxroute.h"
#include <stdio.h>
#include <string.h>

#include "tap.h"

typedef struct row {
  mxr_status st;
  const char *name;
  const char *cls;
} row;

/* The stable table (README "Status codes"). */
static const row rows[] = {
    {MXR_OK, "OK", "ok"},
    {MXR_EBADNAME, "BADNAME", "invalid"},
    {MXR_EBADOPT, "BADOPT", "invalid"},
    {MXR_ENXDOMAIN, "NXDOMAIN", "permanent"},
    {MXR_ENODATA, "NODATA", "permanent"},
    {MXR_ENULLMX, "NULLMX", "permanent"},
    {MXR_ENOHOSTS, "NOHOSTS", "permanent"},
    {MXR_EIGNORED, "IGNORED", "permanent"},
    {MXR_ETOOMANY, "TOOMANY", "permanent"},
    {MXR_ELOOP, "LOOP", "loop"},
    {MXR_ESERVFAIL, "SERVFAIL", "temporary"},
    {MXR_EREFUSED, "REFUSED", "temporary"},
    {MXR_ETIMEOUT, "TIMEOUT", "temporary"},
    {MXR_EFORMERR, "FORMERR", "temporary"},
    {MXR_ECNAMELOOP, "CNAMELOOP", "temporary"},
    {MXR_ENETWORK, "NETWORK", "temporary"},
    {MXR_ENOMEM, "NOMEM", "temporary"},
    {MXR_ECANCELLED, "CANCELLED", "temporary"},
    {MXR_EREJECTED, "REJECTED", "permanent"},
    {MXR_EDEFERRED, "DEFERRED", "temporary"},
    {MXR_EHOOK, "HOOK", "temporary"},
};

int main(void) {
  size_t i, j;
  mxr_status out;
  int distinct = 1;
  is_int(sizeof rows / sizeof rows[0], MXR_STATUS_COUNT, "every code is in the table");
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const row *r = &rows[i];
    is_str(mxr_status_name(r->st), r->name, "name of %s", r->name);
    is_str(mxr_class_name(mxr_status_class(r->st)), r->cls, "%s is %s", r->name, r->cls);
    out = MXR_STATUS_COUNT;
    ok(mxr_status_from_name(r->name, &out) == MXR_OK && out == r->st,
       "from_name(%s) round trips", r->name);
    ok(strlen(mxr_status_text(r->st)) > 3, "%s has a text: %s", r->name,
       mxr_status_text(r->st));
    for (j = 0; j < i; j++)
      if (strcmp(mxr_status_text(rows[j].st), mxr_status_text(r->st)) == 0)
        distinct = 0;
  }
  ok(distinct, "texts are distinct");
  is_str(mxr_status_text(MXR_ENXDOMAIN), "domain does not exist",
         "NXDOMAIN text");
  is_str(mxr_status_name(MXR_STATUS_COUNT), "UNKNOWN", "out of range name");
  is_str(mxr_status_name((mxr_status)-1), "UNKNOWN", "negative name");
  ok(strlen(mxr_status_text(MXR_STATUS_COUNT)) > 0, "out of range text");
  is_str(mxr_class_name(mxr_status_class(MXR_STATUS_COUNT)), "temporary",
         "unknown codes are treated as temporary");
  out = MXR_OK;
  ok(mxr_status_from_name("nxdomain", &out) == MXR_EBADOPT && out == MXR_OK,
     "from_name is case-sensitive and leaves out alone");
  ok(mxr_status_from_name("BOGUS", &out) == MXR_EBADOPT, "unknown token");
  ok(mxr_status_from_name(NULL, &out) == MXR_EBADOPT, "NULL token");
  ok(mxr_status_from_name("OK", NULL) == MXR_OK, "out may be NULL");
  is_str(mxr_class_name((mxr_class)99), "unknown", "unknown class name");
  return done_testing();
}
