/*
 * ifaddrs.c — the machine's own addresses as self (DESIGN rule 8: "the
 * resolver knows its own names and addresses ... optionally the
 * machine's interface addresses"). Kept out of plan.c, which knows
 * nothing of the OS.
 */
#include "mxroute.h"

#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

mxr_status mxr_opts_add_interfaces(mxr_opts *o, size_t *added, char *err,
                                   size_t errlen)
{
  struct ifaddrs *list, *ifa;
  mxr_status st = MXR_OK;
  size_t n = 0;
  if (added)
    *added = 0;
  if (!o)
    return MXR_EBADOPT;
  if (getifaddrs(&list) != 0) {
    if (err && errlen)
      snprintf(err, errlen, "%s", "cannot list the interface addresses");
    return MXR_EBADOPT;
  }
  for (ifa = list; ifa && st == MXR_OK; ifa = ifa->ifa_next) {
    mxr_addr a;
    char text[MXR_ADDR_BUF];
    const struct sockaddr *sa = ifa->ifa_addr;
    memset(&a, 0, sizeof a);
    if (!sa)
      continue;
    if (sa->sa_family == AF_INET) {
      const struct sockaddr_in *in = (const void *)sa;
      a.family = 4;
      memcpy(a.bytes, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
      const struct sockaddr_in6 *in6 = (const void *)sa;
      a.family = 6;
      memcpy(a.bytes, &in6->sin6_addr, 16);
    } else {
      continue;
    }
    mxr_addr_format(&a, text);
    st = mxr_opts_add_self(o, text, strlen(text), err, errlen);
    if (st == MXR_OK)
      n++;
  }
  freeifaddrs(list);
  if (added)
    *added = n;
  return st;
}
