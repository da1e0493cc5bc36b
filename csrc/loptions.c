/*
 * loptions.c — every option of a resolver, defined once: name, kind,
 * range, default, command-line flag and help.
 *
 * lopts.c reads the planner's fields by this table and checks simple
 * values by it; core.options exports it to Lua, where mxroute.options
 * checks the other fields by it, mxroute.cli makes its flags and --help
 * from it and tools/options-doc writes the README's option tables. A new
 * option is one entry here (and, for a planner field, its apply function
 * in lopts.c).
 */
#include "loptions.h"

const char *const mxr_lua_option_kinds[] = {
  "boolean", "integer", "seconds", "oneof", "function", "names", "cidrs",
  "nameservers", "cache", "routes", "wait", "shared_dict"
};

static const char *const FAMILIES[] = { "any", "ipv4", "ipv6", NULL };
const mxr_family mxr_lua_family_of[] = { MXR_FAMILY_ANY, MXR_FAMILY_IPV4,
                                         MXR_FAMILY_IPV6 };
static const char *const PREFERS[] = { "ipv4", "ipv6", "none", NULL };
const mxr_prefer mxr_lua_prefer_of[] = { MXR_PREFER_IPV4, MXR_PREFER_IPV6,
                                         MXR_PREFER_NONE };

/* In the order they are checked, documented and listed by --help. */
const optfield mxr_lua_options[] = {
  {.name = "nameservers", .kind = K_NAMESERVERS, .layer = "resolver",
   .value = "\"IP[:PORT]\" or a list of them",
   .def = "the nameserver lines of /etc/resolv.conf",
   .flag = "--nameserver", .arg = "IP[:PORT]",
   .help = "the DNS servers to ask, in turn: \"192.0.2.53\", "
           "\"192.0.2.53:5353\", \"2001:db8::53\", \"[2001:db8::53]:5353\"",
   .cli = "DNS server to ask (repeatable; IPv6 as [::1]:5353 or ::1); "
          "default: those of /etc/resolv.conf"},
  {.name = "timeout", .kind = K_SECONDS, .layer = "resolver", .max = 60,
   .def = "2", .flag = "--timeout", .arg = "SECONDS",
   .help = "seconds to wait for each try of a query, never doubled (more "
           "than 60 is refused: probably milliseconds)",
   .cli = "timeout of one DNS query try"},
  {.name = "tries", .kind = K_INTEGER, .layer = "resolver", .min = 1,
   .max = 20, .def = "3", .flag = "--tries", .arg = "N",
   .help = "tries per query, each a round over the nameservers",
   .cli = "tries per DNS query"},
  {.name = "max_inflight", .kind = K_INTEGER, .layer = "resolver",
   .min = 1, .max = 65536, .def = "256",
   .help = "queries in flight at once; more wait, first come first served"},
  {.name = "udp_queries", .kind = K_INTEGER, .layer = "resolver", .min = 1,
   .max = 65535, .def = "32",
   .help = "queries sent from one UDP socket (source port) before a fresh "
           "one"},
  {.name = "health", .kind = K_SECONDS, .layer = "resolver", .max = 86400,
   .def = "30",
   .help = "seconds a nameserver that failed is asked last"},
  {.name = "dns0x20", .kind = K_BOOLEAN, .layer = "resolver",
   .def = "false",
   .help = "DNS 0x20: questions in random upper and lower case, which the "
           "answer must echo"},
  {.name = "self", .kind = K_NAMES, .layer = "plan",
   .value = "a host name or address, or a list of them", .def = "none",
   .flag = "--self", .arg = "NAME|ADDR",
   .help = "this host's names and addresses: if an MX host is us, every "
           "host at or above our preference is dropped (LOOP when we are "
           "the best MX)",
   .cli = "a name or address of this host (repeatable)",
   .apply = mxr_lua_apply_strings},
  {.name = "self_interfaces", .kind = K_BOOLEAN, .layer = "plan",
   .def = "false", .flag = "--self-interfaces",
   .help = "the addresses of this machine's interfaces count as self too",
   .cli = "this host's interface addresses are self too",
   .apply = mxr_lua_apply_interfaces},
  {.name = "family", .kind = K_ONEOF, .layer = "plan", .values = FAMILIES,
   .def = "any", .flag = "--family",
   .help = "which addresses to use", .apply = mxr_lua_apply_family},
  {.name = "prefer", .kind = K_ONEOF, .layer = "plan", .values = PREFERS,
   .def = "none", .flag = "--prefer",
   .help = "the family to try first within a host (none: random order)",
   .cli = "the family to try first within a host", .apply = mxr_lua_apply_prefer},
  {.name = "seed", .kind = K_INTEGER, .layer = "plan", .min = -EXACT,
   .max = EXACT, .def = "from the OS", .flag = "--seed", .arg = "N",
   .help = "seed of the random order of equal preferences and of a host's "
           "addresses (reproducible output)",
   .cli = "seed for the random order of equal preferences, for "
          "reproducible output",
   .apply = mxr_lua_apply_seed},
  {.name = "allow_mx_to_ip", .kind = K_BOOLEAN, .layer = "plan",
   .def = "false", .flag = "--allow-mx-to-ip",
   .help = "use an MX exchange that is an IP address as the address itself",
   .apply = mxr_lua_apply_mx_to_ip},
  {.name = "ignore_targets", .kind = K_CIDRS, .layer = "plan",
   .value = "a list of CIDRs",
   .def = "unspecified, loopback, link-local, multicast, broadcast, "
          "RFC 1918 and ULA ranges",
   .flag = "--ignore-targets", .arg = "LIST",
   .help = "addresses in these ranges are dropped (skipped as IGNORED) "
           "instead of the default ones; {} drops nothing",
   .cli = "comma-separated CIDRs whose addresses are dropped, instead of "
          "the default private, loopback, link-local, ... ranges; \"none\" "
          "drops nothing",
   .apply = mxr_lua_apply_strings},
  {.name = "max_hosts", .kind = K_INTEGER, .layer = "plan", .min = 1,
   .max = 1000000, .def = "32", .flag = "--max-hosts", .arg = "N",
   .help = "use at most N MX hosts per domain (the others are skipped as "
           "TOOMANY)",
   .cli = "use at most N MX hosts per domain", .apply = mxr_lua_apply_max_hosts},
  {.name = "max_addrs", .kind = K_INTEGER, .layer = "plan", .min = 1,
   .max = 1000000, .def = "16", .flag = "--max-addrs", .arg = "N",
   .help = "use at most N addresses per host", .apply = mxr_lua_apply_max_addrs},
  {.name = "routes", .kind = K_ROUTES, .layer = "resolver",
   .value = "mxroute.routes.postfix(text), mxroute.routes.new{...} or a "
            "table of rules",
   .def = "none", .flag = "--routes", .arg = "FILE",
   .help = "where mail goes before DNS: relays, ports, error: and retry: "
           "(Routing policies)",
   .cli = "route recipients by a Postfix transport(5) table (relays, "
          "ports, error:, retry:)"},
  {.name = "cache", .kind = K_CACHE, .layer = "resolver",
   .value = "true, false or { size, min_ttl, max_ttl, stale }",
   .def = "true", .help = "the RRset cache (Cache); false: none"},
  {.name = "cache.size", .kind = K_INTEGER, .layer = "cache", .min = 1,
   .max = 100000000, .def = "10000", .help = "entries kept"},
  {.name = "cache.min_ttl", .kind = K_INTEGER, .layer = "cache", .min = 0,
   .max = TTL_MAX, .def = "0",
   .help = "seconds: shorter TTLs are raised to it (at most max_ttl)"},
  {.name = "cache.max_ttl", .kind = K_INTEGER, .layer = "cache", .min = 1,
   .max = TTL_MAX, .def = "86400",
   .help = "seconds: longer TTLs are lowered to it"},
  {.name = "cache.stale", .kind = K_INTEGER, .layer = "cache", .min = 0,
   .max = TTL_MAX, .def = "0",
   .help = "seconds an expired RRset may still be used when refreshing it "
           "fails (RFC 8767); 0: never"},
  {.name = "on_query", .kind = K_FUNCTION, .layer = "resolver",
   .value = "function(ev)", .def = "none",
   .help = "called with each DNS query try when it ends (on_query)"},
  {.name = "wait", .kind = K_WAIT, .layer = "mxroute",
   .value = "\"yield\", \"block\", a function(fd, events, timeout) or a "
            "scheduler",
   .def = "cqueues in a cqueues thread, else block",
   .help = "how resolve and targets wait (Event loops)",
   .elsewhere = " does not apply: mxroute.ngx always waits on cosockets"},
  {.name = "shared_dict", .kind = K_DICT, .layer = "ngx",
   .value = "the name of a lua_shared_dict", .def = "none",
   .help = "the workers' caches share RRsets through it (OpenResty)",
   .elsewhere = ": only mxroute.ngx resolvers share RRsets, through a "
                "lua_shared_dict"},
};

const size_t mxr_lua_n_options = sizeof mxr_lua_options /
                                 sizeof mxr_lua_options[0];
