/*
 * mxroute — where to deliver mail for a domain (RFC 5321 5.1, RFC 7505).
 *
 * The public C API. It includes neither lua.h nor ares.h. Layers:
 *
 *   status   stable codes and their classes                  (status.c)
 *   rng      seedable PRNG, OS-seeded                         (rand.c)
 *   name     input parsing, DNS names, addresses, CIDRs      (name.c)
 *   opts     planner options shared by plans of one resolver (plan.c;
 *            the interface addresses as self: ifaddrs.c)
 *   plan     sans-I/O planner: MX + addresses -> ordered plan (plan.c)
 *   packet   distrustful DNS answer checks and extraction     (packet.c)
 *   res      sans-I/O resolution state machine: which query
 *            next, feed raw answers, drives a plan            (resolve.c)
 *   cache    RRsets remembered for their TTL, an optional
 *            second level shared between processes           (cache.c)
 *   res      routed resolutions: one plan per nexthop,
 *            fallback relays                                  (route.c)
 *   xch      sans-I/O exchange: IDs, failover, health, TCP,
 *            socket rotation, in-flight bound and merge     (exchange.c)
 *   engine   sockets + epoll set driving the exchange         (engine.c)
 *
 * Conventions: functions return mxr_status (MXR_OK == 0) unless stated;
 * _new returns NULL on OOM; _free(NULL) is a no-op; nothing calls exit or
 * abort. Strings are NUL-terminated unless a length is given. Names are
 * stored normalised: ASCII lower case, no trailing dot, presentation form.
 */
#ifndef MXROUTE_H
#define MXROUTE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MXR_VERSION "0.1.0"

/* A normalised name is at most 253 octets (RFC 1035 2.3.4 without the
 * trailing dot); buffers for names are MXR_NAME_BUF bytes. */
#define MXR_NAME_MAX 253
#define MXR_NAME_BUF 256
/* Text form of an address, as inet_ntop(AF_INET6) needs. */
#define MXR_ADDR_BUF 46
/* Room for any error message produced by the library. */
#define MXR_MSG_BUF 512

/* ------------------------------------------------------------------ */
/* status                                                              */

typedef enum mxr_status {
  MXR_OK = 0,
  MXR_EBADNAME,   /* invalid: the input is not an address or domain      */
  MXR_EBADOPT,    /* invalid: a bad option or argument (API misuse)      */
  MXR_ENXDOMAIN,  /* permanent: the name does not exist                  */
  MXR_ENODATA,    /* permanent: the name exists, no record of that type  */
  MXR_ENULLMX,    /* permanent: RFC 7505 null MX, domain accepts no mail */
  MXR_ENOHOSTS,   /* permanent: no usable host or address remains        */
  MXR_EIGNORED,   /* permanent: address dropped by the target guard      */
  MXR_ETOOMANY,   /* permanent: host beyond the max_hosts limit          */
  MXR_ELOOP,      /* loop: we are the best MX of the domain              */
  MXR_ESERVFAIL,  /* temporary: server failure                           */
  MXR_EREFUSED,   /* temporary: the server refused the query             */
  MXR_ETIMEOUT,   /* temporary: no answer in time                        */
  MXR_EFORMERR,   /* temporary: malformed, mismatched or hostile answer  */
  MXR_ECNAMELOOP, /* temporary: CNAME chain loops or is too long         */
  MXR_ENETWORK,   /* temporary: connection refused, unreachable, ...     */
  MXR_ENOMEM,     /* temporary: out of memory                            */
  MXR_ECANCELLED, /* temporary: cancelled (resolver closed, query freed) */
  MXR_EREJECTED,  /* permanent: a route refuses the recipient (error:)   */
  MXR_EDEFERRED,  /* temporary: a route defers the recipient (retry:)    */
  MXR_EHOOK,      /* temporary: a routing hook failed on the plan        */
  MXR_STATUS_COUNT
} mxr_status;

typedef enum mxr_class {
  MXR_CLASS_OK = 0,
  MXR_CLASS_PERMANENT,
  MXR_CLASS_TEMPORARY,
  MXR_CLASS_LOOP,
  MXR_CLASS_INVALID
} mxr_class;

/* "NXDOMAIN", ... ("OK" for MXR_OK); "UNKNOWN" out of range. */
const char *mxr_status_name(mxr_status st);
mxr_class mxr_status_class(mxr_status st);
/* "permanent", "temporary", "loop", "invalid" ("ok" for MXR_CLASS_OK). */
const char *mxr_class_name(mxr_class c);
/* Token -> status, case-sensitive ("SERVFAIL"). MXR_OK and *out set on
 * success, MXR_EBADOPT when the token is unknown. */
mxr_status mxr_status_from_name(const char *name, mxr_status *out);
/* A short English description ("domain does not exist"). */
const char *mxr_status_text(mxr_status st);

/* ------------------------------------------------------------------ */
/* rng: xoshiro256** seeded by splitmix64                              */

typedef struct mxr_rng {
  uint64_t s[4];
} mxr_rng;

void mxr_rng_seed(mxr_rng *r, uint64_t seed);
/* Seed from getrandom(2) (fallback /dev/urandom): MXR_OK, or
 * MXR_EBADOPT if the OS gives no randomness. */
mxr_status mxr_rng_seed_os(mxr_rng *r);
uint64_t mxr_rng_next(mxr_rng *r);
/* Uniform in [0, n), unbiased (rejection); n == 0 returns 0. */
uint64_t mxr_rng_below(mxr_rng *r, uint64_t n);

/* ------------------------------------------------------------------ */
/* names, addresses, inputs                                            */

typedef struct mxr_addr {
  uint8_t family; /* 4 or 6 */
  uint8_t bytes[16]; /* network order; IPv4 uses bytes[0..3] */
} mxr_addr;

typedef struct mxr_cidr {
  mxr_addr addr;
  uint8_t bits;
} mxr_cidr;

/* Parse textual IPv4 (strict dotted quad: four decimal parts 0..255, no
 * leading zeros) or IPv6 (any RFC 4291 form, no zone). MXR_EBADNAME if
 * it is neither. */
mxr_status mxr_addr_parse(const char *s, size_t len, mxr_addr *out);
/* Canonical text (RFC 5952 for IPv6); buf has MXR_ADDR_BUF bytes. */
void mxr_addr_format(const mxr_addr *a, char *buf);
/* Equal addresses; an IPv4-mapped IPv6 address equals its IPv4. */
int mxr_addr_equal(const mxr_addr *a, const mxr_addr *b);
/* "192.0.2.0/24", "2001:db8::/32", or a bare address (full length). */
mxr_status mxr_cidr_parse(const char *s, size_t len, mxr_cidr *out);
/* Whether a is inside c; IPv4-mapped IPv6 judged as its IPv4. */
int mxr_cidr_contains(const mxr_cidr *c, const mxr_addr *a);

/* A nameserver: an address and a UDP/TCP port. */
typedef struct mxr_server {
  mxr_addr addr;
  uint16_t port;
} mxr_server;

/* Text form of a server, "192.0.2.1:53" or "[2001:db8::1]:53". */
#define MXR_SERVER_BUF 56

/* The one nameserver parser (options, CLI, mxroute.ngx all use it):
 * "192.0.2.1", "192.0.2.1:5353", "2001:db8::1", "[2001:db8::1]",
 * "[2001:db8::1]:5353"; strict addresses as mxr_addr_parse, port
 * 1..65535 (default 53), no NUL. Unspecified (0.0.0.0, ::), broadcast
 * (255.255.255.255) and multicast addresses are refused: no query can
 * be sent there. MXR_EBADOPT with err naming the problem. */
mxr_status mxr_server_parse(const char *s, size_t len, mxr_server *out,
                            char *err, size_t errlen);
/* Canonical text into buf (MXR_SERVER_BUF bytes). */
void mxr_server_format(const mxr_server *sv, char *buf);

/* Normalise a host name taken from data or options: ASCII lower case,
 * trailing dot removed, 1..253 octets, labels 1..63, printable ASCII
 * only (DNS data may hold '_' etc.). The root ("." or "") normalises
 * to "": that is how a null MX exchange is seen. out has MXR_NAME_BUF
 * bytes. On error returns MXR_EBADNAME and, if err, writes a message
 * saying what is wrong. */
mxr_status mxr_name_normalize(const char *in, size_t len, char *out,
                              char *err, size_t errlen);
/* DNS name equality: ASCII case-insensitive, trailing dot ignored. */
int mxr_name_equal(const char *a, const char *b);

typedef enum mxr_input_kind {
  MXR_INPUT_DOMAIN = 0, /* domain holds the normalised domain             */
  MXR_INPUT_LITERAL     /* domain holds "[192.0.2.1]" / "[IPv6:2001:db8::1]"
                           as normalised text, addr the address          */
} mxr_input_kind;

typedef struct mxr_input {
  mxr_input_kind kind;
  char domain[MXR_NAME_BUF];
  mxr_addr addr;
} mxr_input;

/* Parse "local@domain", "local@[192.0.2.1]", "local@[IPv6:...]" or a bare
 * domain ("example.com" or "example.com."). RFC 5321 4.1.2 / 4.1.3 rules
 * for the domain; the local part may be dot-atom or quoted-string. Any
 * other input is MXR_EBADNAME with a message in err naming the problem.
 * s may contain NUL bytes (len counts them: they are invalid). */
mxr_status mxr_input_parse(const char *s, size_t len, mxr_input *out,
                           char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* opts: planner options (one set per resolver, or per mxroute.plan)   */

typedef enum mxr_family {
  MXR_FAMILY_ANY = 0,
  MXR_FAMILY_IPV4,
  MXR_FAMILY_IPV6
} mxr_family;

typedef enum mxr_prefer {
  MXR_PREFER_NONE = 0,
  MXR_PREFER_IPV4,
  MXR_PREFER_IPV6
} mxr_prefer;

#define MXR_DEFAULT_MAX_HOSTS 32
#define MXR_DEFAULT_MAX_ADDRS 16

typedef struct mxr_opts mxr_opts;

/* Defaults: family any, prefer none, no self, allow_mx_to_ip off, the
 * default ignore_targets list of DESIGN rule 11, max_hosts 32, max_addrs
 * 16 (per host, after de-duplication), no seed. */
mxr_opts *mxr_opts_new(void);
void mxr_opts_free(mxr_opts *o);
/* Add one of our own identities: a host name, or an IPv4/IPv6 address
 * (bracketed forms "[192.0.2.1]" / "[IPv6:..]" accepted too). MXR_EBADOPT
 * with err naming the problem if it is neither. */
mxr_status mxr_opts_add_self(mxr_opts *o, const char *s, size_t len,
                             char *err, size_t errlen);
/* Add every address of the machine's interfaces (getifaddrs) as self;
 * *added (if given) receives how many. MXR_EBADOPT if they cannot be
 * listed. */
mxr_status mxr_opts_add_interfaces(mxr_opts *o, size_t *added, char *err,
                                   size_t errlen);
/* Replace the ignore list: first clear (leaves it empty, i.e. allow all),
 * then add CIDRs one by one. */
void mxr_opts_ignore_clear(mxr_opts *o);
mxr_status mxr_opts_ignore_add(mxr_opts *o, const char *cidr, size_t len,
                               char *err, size_t errlen);
void mxr_opts_set_family(mxr_opts *o, mxr_family f);
void mxr_opts_set_prefer(mxr_opts *o, mxr_prefer p);
void mxr_opts_set_allow_mx_to_ip(mxr_opts *o, int on);
/* 0 is rejected with MXR_EBADOPT. */
mxr_status mxr_opts_set_max_hosts(mxr_opts *o, size_t n);
mxr_status mxr_opts_set_max_addrs(mxr_opts *o, size_t n);

/* ------------------------------------------------------------------ */
/* plan: the sans-I/O planner (DESIGN 1, rules 3-13)                   */
/*
 * Life of a plan: mxr_plan_new(input) -> mxr_plan_set_mx(MX outcome) ->
 * for each host i < mxr_plan_host_count() and each family it needs,
 * mxr_plan_set_addrs() -> complete. A literal input is complete at once.
 * The order of set_addrs calls never changes the result: all random
 * draws (host order within a preference, and per-host seeds for the
 * address shuffle) happen in set_mx.
 */

typedef struct mxr_plan mxr_plan;

typedef struct mxr_mx {
  uint16_t pref;
  const char *name; /* as found in data; normalised by the planner */
  size_t len;
} mxr_mx;

typedef struct mxr_target {
  const char *host; /* normalised host name, owned by the plan */
  uint16_t pref;
  mxr_addr addr;
  uint16_t port;    /* 25, or the port of the route's nexthop */
  int fallback;     /* 1 for a fallback relay's target (DESIGN 7) */
} mxr_target;

typedef struct mxr_host {
  const char *name;
  uint16_t pref;
  const mxr_addr *addrs; /* delivery order */
  size_t naddrs;
} mxr_host;

typedef struct mxr_skip {
  const char *name;
  uint16_t pref;
  mxr_status code; /* NXDOMAIN, NODATA, SERVFAIL, IGNORED, TOOMANY, ... */
} mxr_skip;

typedef struct mxr_result {
  mxr_status status;   /* MXR_OK, or why there is nowhere to deliver */
  const char *message; /* failure: "s5.test: domain does not exist" */
  const char *input;   /* as given */
  const char *domain;  /* normalised domain (or the literal) */
  int implicit;        /* 1 when the implicit MX (rule 3) was used */
  const mxr_host *hosts; /* usable hosts, delivery order */
  size_t nhosts;
  const mxr_target *targets; /* flat, each address once */
  size_t ntargets;
  const mxr_skip *skipped;
  size_t nskipped;
  int has_self_pref;
  uint16_t self_pref;
} mxr_result;

/* A plan for a parsed input. opts must outlive the plan. The input text
 * (as given by the user, for mxr_result.input) is copied. A literal input
 * is complete at once (one host: the literal, pref 0; the target guard
 * and self-exclusion apply to it like to any address). in == NULL gives
 * a plan that the caller must mxr_plan_abort (e.g. with MXR_EBADNAME); opts
 * may be NULL only then. A literal's host name is the literal text
 * ("[192.0.2.1]"). NULL on OOM. */
mxr_plan *mxr_plan_new(const mxr_input *in, const char *input_text,
                       size_t input_len, const mxr_opts *opts);
void mxr_plan_free(mxr_plan *p);

/* The MX lookup outcome (rules 2-6, 10, 12).
 *   st == MXR_OK, n > 0: the MX records (any order, duplicates allowed);
 *   st == MXR_OK, n == 0, or st == MXR_ENODATA: implicit MX (rule 3);
 *   any other st: the plan fails with that code.
 * canon: the name after following CNAMEs (NULL: the domain itself); the
 * implicit MX host is canon. rng draws the random order (it may be NULL
 * when st is a failure). */
mxr_status mxr_plan_set_mx(mxr_plan *p, mxr_status st, const char *canon,
                           const mxr_mx *mx, size_t n, mxr_rng *rng);

/* Hosts that want address lookups, in delivery order (valid after
 * set_mx). Hosts already settled (excluded by self name, IP literals with
 * allow_mx_to_ip, beyond limits) are not counted. */
size_t mxr_plan_host_count(const mxr_plan *p);
const char *mxr_plan_host_name(const mxr_plan *p, size_t i);
/* 1 if an address lookup of family 4 (A) or 6 (AAAA) is wanted for host
 * i and has not been fed yet. Goes to 0 for every host once the plan is
 * complete, and for hosts at or above a preference found to be us. */
int mxr_plan_host_wants(const mxr_plan *p, size_t i, int family);

/* The outcome of host i's A (family 4) or AAAA (family 6) lookup:
 * st == MXR_OK with n addresses (n == 0 means NODATA), or a failure.
 * A late answer (the plan completed, or the host stopped mattering
 * because a better host is us) is accepted and ignored (MXR_OK).
 * Addresses not of that family are MXR_EBADOPT. Feeding twice is
 * MXR_EBADOPT. */
mxr_status mxr_plan_set_addrs(mxr_plan *p, size_t i, int family,
                              mxr_status st, const mxr_addr *a, size_t n);

/* Every lookup that matters fed (or the plan failed). */
int mxr_plan_complete(const mxr_plan *p);

/* Number of leading targets whose position is final: a preference level
 * is final once it and every level before it are fully resolved and no
 * host at or before it is us (rule 8). Equals ntargets when complete. */
size_t mxr_plan_ready(const mxr_plan *p);
/* Target i < mxr_plan_ready(p); pointer valid until the next call that
 * feeds the plan, or its free. NULL if out of range. */
const mxr_target *mxr_plan_target(const mxr_plan *p, size_t i);

/* The complete result. Pointers inside stay valid until the plan is fed
 * again or freed. Returns MXR_EBADOPT if the plan is not complete. */
mxr_status mxr_plan_result(mxr_plan *p, mxr_result *out);

/* Make an incomplete plan fail now with st (e.g. MXR_ECANCELLED). */
void mxr_plan_abort(mxr_plan *p, mxr_status st, const char *message);

/* ------------------------------------------------------------------ */
/* packet: answer checks (DESIGN rule 14) and extraction               */

#define MXR_TYPE_A 1
#define MXR_TYPE_CNAME 5
#define MXR_TYPE_MX 15
#define MXR_TYPE_AAAA 28
#define MXR_CNAME_MAX 8 /* longest CNAME chain followed */

/* Build a query (RD set, class IN, one question; no EDNS). *out is
 * malloc'd; free with mxr_packet_free. */
mxr_status mxr_packet_query(const char *name, uint16_t type, uint16_t id,
                            unsigned char **out, size_t *outlen);
/* The same with an EDNS0 OPT record advertising udp_size octets (RFC
 * 6891; 0: no OPT, as mxr_packet_query). */
mxr_status mxr_packet_query_edns(const char *name, uint16_t type, uint16_t id,
                                 uint16_t udp_size, unsigned char **out,
                                 size_t *outlen);
void mxr_packet_free(unsigned char *p);

typedef struct mxr_answer {
  mxr_status status;          /* MXR_OK (records or NODATA), NXDOMAIN,
                                 SERVFAIL, REFUSED, FORMERR, CNAMELOOP */
  int truncated;              /* TC set: retry over TCP                 */
  char canon[MXR_NAME_BUF];   /* end of the CNAME chain (normalised)    */
  int chased;                 /* 1 if the chain ends in a CNAME whose
                                 target's records are absent: ask again
                                 for canon                              */
  unsigned ncname;            /* CNAME records followed in this answer  */
  size_t nmx;                 /* MX answers: records owned by canon     */
  mxr_mx *mx;                 /* names point into this struct's storage,
                                 normalised; the null MX "." is ""      */
  size_t naddrs;              /* A/AAAA answers                         */
  mxr_addr *addrs;
  uint32_t ttl;               /* smallest TTL of the records used       */
  int has_soa;                /* NXDOMAIN / NODATA: an SOA of an
                                 enclosing zone in the authority section */
  uint32_t neg_ttl;           /* then RFC 2308 5: min(SOA TTL, MINIMUM) */
  char message[MXR_MSG_BUF];  /* why, when status != OK                 */
  void *priv_;                /* storage; mxr_answer_clear frees it      */
} mxr_answer;

/* Check and extract an answer to (qname, qtype). id: the ID the query was
 * sent with (-1: not checked, the transport matched it). Returns the same
 * as out->status; always leaves *out safe to mxr_answer_clear. *out is
 * overwritten, not freed: clear a previous answer before reusing it. A
 * reply failing any check is MXR_EFORMERR (or MXR_ECNAMELOOP) without
 * data; an MX exchange that is no host name fails the whole answer. */
mxr_status mxr_packet_parse(const unsigned char *pkt, size_t len,
                            const char *qname, uint16_t qtype, int id,
                            mxr_answer *out);
/* The same checks and status without extracting records (an MX
 * exchange is checked as a wire name only, not yet as a host name; for
 * A/AAAA the status is mxr_packet_parse's): out holds status,
 * truncated, canon, chased, ncname, ttl and message only. */
mxr_status mxr_packet_check(const unsigned char *pkt, size_t len,
                            const char *qname, uint16_t qtype, int id,
                            mxr_answer *out);
void mxr_answer_clear(mxr_answer *a);

/* ------------------------------------------------------------------ */
/* cache: RRsets remembered for their TTL (DESIGN 8)                   */
/*
 * A bounded LRU map from (normalised name, type) to what a checked
 * answer gave the resolution: records (or none: NODATA), NXDOMAIN, and
 * the end of the CNAME chain. O(1) get, put and eviction (hash table +
 * list). Times come from a monotonic clock that tests can replace.
 * Temporary failures (SERVFAIL, timeouts, ...) are never stored (RFC
 * 2308 7 allows a few minutes at most; a stub gains little from it).
 */

typedef struct mxr_cache mxr_cache;

#define MXR_CACHE_DEFAULT_SIZE 10000
#define MXR_CACHE_DEFAULT_MAX_TTL 86400
#define MXR_CACHE_STALE_TTL 30 /* RFC 8767 5: TTL of a stale answer */

typedef struct mxr_cache_config {
  size_t size;      /* most entries kept; 0: MXR_CACHE_DEFAULT_SIZE    */
  uint32_t min_ttl; /* TTLs below are raised to it (0: none)           */
  uint32_t max_ttl; /* TTLs above are lowered to it; 0: the default    */
  uint32_t stale;   /* RFC 8767: seconds past expiry that data may
                       still be used when a refresh fails temporarily;
                       0: never                                         */
  double (*now)(void *ud); /* monotonic seconds; NULL: CLOCK_MONOTONIC */
  void *now_ud;
} mxr_cache_config;

/* What the cache holds for one (name, type). */
typedef struct mxr_rrset {
  mxr_status status;   /* MXR_OK (records, or none: NODATA), NXDOMAIN  */
  const char *canon;   /* end of the CNAME chain; "" when none          */
  int chased;          /* the chain ends in a CNAME whose target's
                          records were not given: ask canon             */
  unsigned ncname;     /* CNAMEs followed                               */
  const mxr_mx *mx;    /* MX records (normalised names)                 */
  size_t nmx;
  const mxr_addr *addrs; /* A / AAAA records                            */
  size_t naddrs;
  uint32_t ttl;        /* seconds left (0 when stale)                   */
  int stale;           /* expired, served within the stale window       */
} mxr_rrset;

typedef struct mxr_cache_stats {
  uint64_t hits;      /* lookups answered by a fresh entry             */
  uint64_t misses;    /* lookups that found nothing fresh              */
  uint64_t stale;     /* expired entries used after a failed refresh   */
  uint64_t evictions; /* entries dropped to stay within size           */
  uint64_t inserts;   /* answers stored                                */
  size_t entries;     /* entries held now (expired ones included)      */
  uint64_t l2_hits;   /* local misses answered by the second level     */
} mxr_cache_stats;

/* An optional second level behind the cache (DESIGN 8: in nginx, a
 * lua_shared_dict shared by the workers). On a local miss, get is asked
 * for the key; on every insert from an answer, set is offered the entry
 * with its TTL. Values are opaque byte strings, versioned and checked
 * strictly when read back: a corrupt, foreign or expired value is a
 * miss, never data. Expiry is stored as wall-clock time, since
 * monotonic clocks differ between processes. The hooks must not call
 * into the cache and must not fail loudly: an error is a miss. */
typedef struct mxr_cache_l2 {
  /* The value stored under key (NUL-terminated), *len its size, valid
   * until the next call of a hook; NULL: none. */
  const unsigned char *(*get)(void *ud, const char *key, size_t *len);
  /* Offer val under key for ttl seconds (>= 1); the store may drop it. */
  void (*set)(void *ud, const char *key, const unsigned char *val,
              size_t len, uint32_t ttl);
  double (*wall)(void *ud); /* Unix time in seconds; NULL: CLOCK_REALTIME */
  void *ud;
} mxr_cache_l2;

/* NULL on OOM; MXR_EBADOPT-worthy values (min_ttl > max_ttl) are the
 * caller's to refuse: here min_ttl is lowered to max_ttl. */
mxr_cache *mxr_cache_new(const mxr_cache_config *cfg);
void mxr_cache_free(mxr_cache *c);
/* The clock the cache reads (for TTLs of plans that use it). */
double mxr_cache_now(const mxr_cache *c);
/* The TTL an answer is kept for, clamped by min_ttl/max_ttl. */
uint32_t mxr_cache_clamp(const mxr_cache *c, uint32_t ttl);
/* Names given to put, get and flush are normalised (mxr_name_normalize:
 * lower case, no trailing dot), as the resolution's are. */
/* Store what answer a (status MXR_OK or MXR_ENXDOMAIN, checked by
 * mxr_packet_parse) says about (name, type). Records and CNAMEs keep
 * the answer's smallest TTL; NXDOMAIN and NODATA keep RFC 2308 5's
 * negative TTL (the SOA's, and the CNAMEs' if smaller) and are not
 * stored without an SOA. Anything else is not stored. *ttl (if given)
 * receives the TTL stored, clamped. Returns 1 if stored, 0 if not
 * (not cacheable, TTL 0, or OOM: a cache may forget). */
int mxr_cache_put(mxr_cache *c, const char *name, uint16_t type,
                  const mxr_answer *a, uint32_t *ttl);
/* A fresh entry for (name, type): 1 and *out filled (pointers valid
 * until the next call into the cache), or 0 (counted as a miss). With
 * stale != 0, only an expired entry within the stale window is
 * returned (out->stale = 1), counted as stale, not as a hit or miss. */
int mxr_cache_get(mxr_cache *c, const char *name, uint16_t type, int stale,
                  mxr_rrset *out);
/* Drop the entries of name (every type), or all when name is NULL.
 * Returns how many were dropped. */
size_t mxr_cache_flush(mxr_cache *c, const char *name);
void mxr_cache_get_stats(const mxr_cache *c, mxr_cache_stats *out);
/* Put a second level behind c (a copy of *l2 is kept), or remove it
 * (l2 NULL or without get and set). Without one the cache behaves
 * exactly as before. */
void mxr_cache_set_l2(mxr_cache *c, const mxr_cache_l2 *l2);

/* ------------------------------------------------------------------ */
/* res: the resolution state machine (sans-I/O, driven by a transport) */

typedef struct mxr_res mxr_res;

typedef struct mxr_query {
  unsigned slot;            /* res-local handle, pass back with the answer */
  char name[MXR_NAME_BUF];  /* absolute name to ask (no search list)      */
  uint16_t type;            /* MXR_TYPE_MX, _A, _AAAA                      */
} mxr_query;

/* A resolution of one input. Bad input gives a resolution that is
 * already done with MXR_EBADNAME (one path for the caller). NULL on OOM.
 * opts must outlive it; rng is used during calls that feed it (kept as a
 * pointer: it must outlive the resolution too). */
mxr_res *mxr_res_new(const char *input, size_t len, const mxr_opts *opts,
                     mxr_rng *rng);
void mxr_res_free(mxr_res *r);

/* Next query to send: 1 and *q filled, or 0 when none is waiting. Every
 * query obtained must be answered with mxr_res_answer, _feed or _fail
 * (unless the resolution is freed). */
int mxr_res_next(mxr_res *r, mxr_query *q);
/* A raw answer packet for slot (the transport matched the ID). A
 * truncated UDP answer is the transport's to retry over TCP; if fed, it
 * is a temporary failure (MXR_EFORMERR), never data. */
void mxr_res_answer(mxr_res *r, unsigned slot, const unsigned char *pkt,
                    size_t len);
/* The same answer already decoded: a, from mxr_packet_parse with this
 * slot's question (the name and type mxr_res_next gave), is read and
 * never cleared or kept, so one decoded answer may be fed to every
 * resolution waiting for the same question. The result, the cache and
 * serve-stale are exactly mxr_res_answer's for the packet a came from. */
void mxr_res_feed(mxr_res *r, unsigned slot, const mxr_answer *a);
/* A transport failure for slot: MXR_ETIMEOUT, MXR_ENETWORK, SERVFAIL ... */
void mxr_res_fail(mxr_res *r, unsigned slot, mxr_status st);
/* Queries sent and not yet answered. */
size_t mxr_res_inflight(const mxr_res *r);
int mxr_res_done(const mxr_res *r);
/* Complete now with st (MXR_ECANCELLED) unless already done. */
void mxr_res_cancel(mxr_res *r, mxr_status st);
/* The plan being built; never NULL for a non-NULL r. For a routed
 * resolution (mxr_res_new_routed, _failed) it is only the recipient's,
 * never fed: read results with mxr_res_result/_ready/_target. */
mxr_plan *mxr_res_plan(mxr_res *r);
/* DESIGN 8: consult c before handing out a query (a fresh entry feeds
 * the plan at once, no query) and store every answer that is data in
 * it. Set before the first mxr_res_next; c must outlive r. NULL (the
 * default): no cache, and nothing changes. */
void mxr_res_set_cache(mxr_res *r, mxr_cache *c);
/* The lowest TTL (seconds left) of every answer the plan used, negative
 * answers included (0 for one that says nothing, e.g. NODATA without an
 * SOA): 1 and *ttl, or 0 when no DNS answer was used (a literal). */
int mxr_res_ttl(const mxr_res *r, uint32_t *ttl);
/* 1 if expired data was used after a failed refresh (RFC 8767). */
int mxr_res_stale(const mxr_res *r);

/* ------------------------------------------------------------------ */
/* routed resolutions (DESIGN 7; route.c)                              */
/*
 * A route names where mail for a recipient goes instead of the MX of its
 * domain: a list of nexthops (Postfix transport(5) "nexthop", Postfix
 * 3.5 lists) and fallback relays (Postfix smtp_fallback_relay). A
 * routed resolution runs one plan per hop, in parallel, with the same
 * options (self-exclusion, guard, family, prefer, limits) as an MX plan,
 * and is driven by a transport exactly like any other mxr_res.
 *
 * Its result is the targets of hop 1, then hop 2, ..., each address
 * once per port (its first occurrence), every target with its hop's
 * port; then,
 * if any hop succeeded, the fallback targets (fallback = 1). A hop that
 * fails is reported in skipped (name: the hop's host or domain, pref 0,
 * its code) and the others are used. When every hop fails the list
 * fails: with the first temporary failure in hop order if there is one
 * (temporary beats loop and permanent, as in DESIGN rule 9), else the
 * first loop, else the first hop's failure. A temporary failure of the
 * list is replaced by the fallback targets alone when a fallback plan
 * succeeds (the list's failures are then in skipped); a permanent or
 * loop failure never uses the fallback relays.
 */

#define MXR_HOPS_MAX 16 /* nexthops + fallback relays of one route */

typedef struct mxr_hop {
  const char *name; /* host name or address literal ("[192.0.2.1]",
                       "[IPv6:2001:db8::1]"); NULL: the recipient's own
                       domain (an empty Postfix nexthop) */
  size_t len;
  int mx;           /* 1: MX of name, with its implicit MX (Postfix
                       "host"); 0: no MX lookup, the host's own A/AAAA
                       as an implicit MX at preference 0 ("[host]") */
  uint16_t port;    /* 0: 25 */
} mxr_hop;

/* A routed resolution of input: nhops >= 1 hops, nfb >= 0 fallback
 * relays (at most MXR_HOPS_MAX in all). An invalid input gives a
 * resolution already done with MXR_EBADNAME, as mxr_res_new does; more
 * hops than allowed, or no hop, is MXR_EBADOPT. NULL on OOM. */
mxr_res *mxr_res_new_routed(const char *input, size_t len,
                            const mxr_hop *hops, size_t nhops,
                            const mxr_hop *fallback, size_t nfb,
                            const mxr_opts *opts, mxr_rng *rng);
/* A resolution already done with st (e.g. MXR_EREJECTED for a Postfix
 * "error:" route, MXR_EDEFERRED for "retry:") and message, without any
 * query; an invalid input is still MXR_EBADNAME. NULL on OOM. */
mxr_res *mxr_res_new_failed(const char *input, size_t len, mxr_status st,
                            const char *message, const mxr_opts *opts,
                            mxr_rng *rng);

/* The result of any resolution, routed or not (use these rather than
 * mxr_plan_* on mxr_res_plan, which for a routed resolution is only the
 * recipient's). Same contracts as mxr_plan_ready, mxr_plan_target and
 * mxr_plan_result. */
size_t mxr_res_ready(mxr_res *r);
const mxr_target *mxr_res_target(mxr_res *r, size_t i);
mxr_status mxr_res_result(mxr_res *r, mxr_result *out);

/* ------------------------------------------------------------------ */
/* xch: the exchange (DESIGN 9), sans-I/O, shared by every transport   */
/*
 * One exchange runs many resolutions at once for one resolver and owns
 * every rule of talking to nameservers: query IDs (CSPRNG, uniform),
 * question matching, which server to ask and in which order (failover,
 * server health), the retry schedule and deadlines, TCP after a
 * truncated UDP answer, UDP socket rotation (a socket carries at most
 * udp_queries queries, then a fresh one with a new source port), the
 * bound on queries in flight (excess lookups wait, FIFO), and the
 * in-flight merge of identical lookups (same name and type).
 *
 * A transport only moves bytes. It repeatedly asks mxr_xch_io() what to
 * do (open a socket to a server, send bytes on it, close it), reports
 * what arrived (mxr_xch_recv), errors on a socket (mxr_xch_sock_error:
 * ICMP unreachable, reset, failed connect/send), and calls mxr_xch_tick()
 * when mxr_xch_timeout() says a deadline is due. Times are seconds on a
 * monotonic clock, passed in by the caller (mxr_now() reads one), so the
 * exchange is testable without sockets or sleeping.
 *
 * Socket numbers are the exchange's: the transport maps them to its own
 * descriptors or cosockets. UDP sockets are connected to their server
 * (replies from elsewhere never reach us; ICMP errors are reported on
 * the socket that caused them). TCP data is handed over as it comes
 * (any chunking); the exchange reassembles the 2-octet length framing
 * and produces framed bytes to send.
 */

typedef struct mxr_xch mxr_xch;
typedef struct mxr_xjob mxr_xjob;

/* The retry schedule: a query gets tries x nservers tries, `timeout`
 * seconds each (constant, never doubled): `tries` rounds over the
 * servers, healthy servers first (a server that failed a try within
 * `health` seconds is asked last). SERVFAIL, REFUSED, NOTIMP, a reply
 * failing mxr_packet_parse's checks, a socket error and a timeout move
 * the query to the next try at once; NOERROR and NXDOMAIN are final. A
 * query whose every try failed fails with the most telling code: rcode
 * (SERVFAIL, REFUSED; NOTIMP as SERVFAIL) > FORMERR > NETWORK > TIMEOUT.
 * Defaults: timeout 2 s, tries 3, max_inflight 256, udp_queries 32,
 * health 30 s. Queries carry EDNS0 (1232 octets). */
typedef struct mxr_xch_config {
  const mxr_server *servers; /* asked in this order; copied; >= 1      */
  size_t nservers;
  double timeout;            /* seconds per try; 0: 2                  */
  int tries;                 /* rounds over the server list; 0: 3      */
  size_t max_inflight;       /* queries in flight; 0: default          */
  unsigned udp_queries;      /* queries per UDP socket (<= 65535);
                                0: default                             */
  double health;             /* seconds a failed server is asked last;
                                0: default                             */
  int case_randomize;        /* DNS 0x20 (draft-vixie-dnsext-dns0x20)  */
  int trace;                 /* record per-query events (mxr_xch_event) */
} mxr_xch_config;

/* Monotonic seconds (CLOCK_MONOTONIC). */
double mxr_now(void);

mxr_status mxr_xch_new(const mxr_xch_config *cfg, mxr_xch **out, char *err,
                       size_t errlen);
/* Cancels every attached resolution (MXR_ECANCELLED) and detaches it.
 * Sockets the transport still holds must be closed by the transport. */
void mxr_xch_free(mxr_xch *x);

/* Resolutions: the contract the engine had. Attach (the exchange never
 * frees r; ud comes back from mxr_xch_next_done); an r already done is
 * queued as done at once. */
mxr_status mxr_xch_add(mxr_xch *x, mxr_res *r, void *ud, mxr_xjob **job,
                       double now);
/* Detach, cancelling r if not done. O(1). Invalidates job. */
void mxr_xch_remove(mxr_xch *x, mxr_xjob *job);
/* Cancel (MXR_ECANCELLED) unless done, keep attached: reported done by
 * mxr_xch_next_done like any other. O(1). A merged lookup other
 * resolutions wait for goes on. */
void mxr_xch_cancel(mxr_xch *x, mxr_xjob *job);
/* The ud of the next resolution that became done, or NULL. */
void *mxr_xch_next_done(mxr_xch *x);
/* Done resolutions waiting to be collected. */
size_t mxr_xch_ndone(const mxr_xch *x);
/* Attached resolutions not yet done. */
size_t mxr_xch_pending(const mxr_xch *x);

typedef enum mxr_io_op {
  MXR_IO_OPEN_UDP = 1, /* create a UDP socket connected to server       */
  MXR_IO_OPEN_TCP,     /* create a TCP connection to server             */
  MXR_IO_SEND,         /* send data on sock (UDP: one datagram)         */
  MXR_IO_CLOSE         /* close sock; nothing more is expected from it  */
} mxr_io_op;

typedef struct mxr_io {
  mxr_io_op op;
  unsigned sock;               /* the exchange's socket number           */
  unsigned server;             /* index into the configured servers      */
  const mxr_server *addr;      /* that server                            */
  const unsigned char *data;   /* MXR_IO_SEND: bytes, valid until the
                                  next call into the exchange            */
  size_t len;
} mxr_io;

/* The next I/O operation: 1 with *io filled, 0 when there is nothing to
 * do now. A failed open or send is reported with mxr_xch_sock_error. */
int mxr_xch_io(mxr_xch *x, mxr_io *io, double now);
/* Bytes that arrived on sock: a UDP datagram, or TCP stream data. */
void mxr_xch_recv(mxr_xch *x, unsigned sock, const unsigned char *data,
                  size_t len, double now);
/* sock failed (st: MXR_ENETWORK for ICMP unreachable, reset, refused
 * connect, failed send, a TCP connection closed by the server;
 * MXR_ETIMEOUT if the transport gave up). Every query on it moves to
 * the next server at once; the exchange then asks for MXR_IO_CLOSE of
 * it (a transport holding nothing under that number ignores that). A
 * datagram the kernel would not take (EAGAIN, ENOBUFS) is no error: its
 * deadline moves it on. */
void mxr_xch_sock_error(mxr_xch *x, unsigned sock, mxr_status st,
                        double now);
/* Seconds until mxr_xch_tick should run: 0 when done resolutions or
 * I/O wait, -1 when nothing is in flight. */
double mxr_xch_timeout(const mxr_xch *x, double now);
/* Process deadlines: retries, failover, timeouts. */
void mxr_xch_tick(mxr_xch *x, double now);
/* The transport lost every socket (e.g. after fork()): forget them all
 * without MXR_IO_CLOSE and send what was in flight again on new ones. */
void mxr_xch_forget_sockets(mxr_xch *x, double now);

/* Counters since creation. */
typedef struct mxr_xch_stats {
  uint64_t queries;   /* sent (UDP and TCP, retries included)   */
  uint64_t answers;   /* accepted replies                        */
  uint64_t timeouts;  /* tries that timed out                    */
  uint64_t tcp;       /* queries asked again over TCP            */
  uint64_t merged;    /* lookups that joined one in flight       */
  uint64_t dropped;   /* replies refused (wrong ID, question...) */
  uint64_t sockets;   /* UDP sockets opened                      */
} mxr_xch_stats;
void mxr_xch_get_stats(const mxr_xch *x, mxr_xch_stats *out);
/* Per-server failures (tries that failed at that server). */
uint64_t mxr_xch_server_failures(const mxr_xch *x, unsigned server);
/* How many servers are configured. */
size_t mxr_xch_server_count(const mxr_xch *x);
/* Server number server as configured, or NULL out of range. */
const mxr_server *mxr_xch_server(const mxr_xch *x, unsigned server);

/* With cfg.trace: one event per finished try, drained by the caller
 * from its step (never called back from inside the exchange). */
typedef struct mxr_xch_event {
  char name[MXR_NAME_BUF];
  uint16_t type;
  unsigned server;
  int tcp;
  mxr_status status; /* MXR_OK for an accepted answer (any rcode)  */
  int rcode;         /* -1 when there was no reply                  */
  double rtt;        /* seconds                                     */
} mxr_xch_event;
int mxr_xch_next_event(mxr_xch *x, mxr_xch_event *out);

/* ------------------------------------------------------------------ */
/* engine: the C transport (epoll) running many resolutions at once   */
/*
 * A byte pump over mxr_xch: plain non-blocking UDP (connected) and TCP
 * sockets in one epoll set, so the engine is a pollable: wait until
 * mxr_engine_fd() is readable or mxr_engine_timeout() seconds have
 * passed, then mxr_engine_step(0). c-ares only reads the system's
 * configuration (resolv.conf) when no nameservers are given. The engine
 * notices fork() (the pid changed): the child closes its copies of the
 * sockets, never the parent's epoll set, and sends what was in flight
 * again on its own sockets.
 */

typedef struct mxr_engine mxr_engine;
typedef struct mxr_job mxr_job;

typedef struct mxr_engine_config {
  const char *servers; /* "127.0.0.1:5353,[::1]:53" (each as
                          mxr_server_parse); NULL: resolv.conf, which must
                          be a regular file */
  int timeout_ms;      /* per try, constant; 0: resolv.conf's, else 2000 */
  int tries;           /* rounds over the servers; 0: resolv.conf's, else 3 */
  int rcvbuf;          /* UDP socket receive buffer; 0: 4 MiB */
  size_t max_inflight; /* as mxr_xch_config; 0: default (256) */
  unsigned udp_queries;/* 0: default (32) */
  double health;       /* seconds; 0: default (30) */
  int case_randomize;  /* DNS 0x20 */
  const mxr_server *server_list; /* parsed servers (mxr_server_parse),
                                    used instead of servers when set */
  size_t nservers;
  int trace;           /* record per-query events (mxr_engine_next_event) */
} mxr_engine_config;

mxr_status mxr_engine_new(const mxr_engine_config *cfg, mxr_engine **out,
                          char *err, size_t errlen);
/* Cancels every attached resolution (MXR_ECANCELLED) and detaches it;
 * their mxr_job handles become invalid. */
void mxr_engine_free(mxr_engine *e);
/* The epoll descriptor: readable when there is I/O to process. */
int mxr_engine_fd(const mxr_engine *e);
/* Seconds until mxr_engine_step should run: 0 when finished
 * resolutions wait to be collected, -1 when nothing is in flight. */
double mxr_engine_timeout(mxr_engine *e);
/* Attach a resolution (the engine never frees it) and send what it asks.
 * *job is a handle for mxr_engine_remove; ud comes back from
 * mxr_engine_next_done. A resolution already done is queued as done. */
mxr_status mxr_engine_add(mxr_engine *e, mxr_res *r, void *ud,
                          mxr_job **job);
/* Detach (cancelling the resolution if not done). Invalidates job. */
void mxr_engine_remove(mxr_engine *e, mxr_job *job);
/* Cancel (MXR_ECANCELLED) unless done, keeping the job attached: the next
 * mxr_engine_step reports it done like any other, so that whoever waits
 * for it learns the outcome. */
void mxr_engine_cancel(mxr_engine *e, mxr_job *job);
/* Wait up to wait seconds (<= 0: not at all) for I/O or the next timer,
 * then process what is ready. Returns how many finished resolutions wait
 * to be collected with mxr_engine_next_done (those finished in this step
 * and any finished before, e.g. in mxr_engine_add or _cancel). */
int mxr_engine_step(mxr_engine *e, double wait);
/* The ud of the next resolution that became done, or NULL. A done job
 * stays attached until mxr_engine_remove. */
void *mxr_engine_next_done(mxr_engine *e);
/* Attached resolutions not yet done. */
size_t mxr_engine_pending(const mxr_engine *e);
/* The exchange's counters and per-server failures. */
void mxr_engine_stats(const mxr_engine *e, mxr_xch_stats *out);
uint64_t mxr_engine_server_failures(const mxr_engine *e, unsigned server);
size_t mxr_engine_server_count(const mxr_engine *e);
const mxr_server *mxr_engine_server(const mxr_engine *e, unsigned server);
/* With cfg.trace: the exchange's next per-query event (mxr_xch_event),
 * drained by the caller after mxr_engine_step. */
int mxr_engine_next_event(mxr_engine *e, mxr_xch_event *out);

#ifdef __cplusplus
}
#endif
#endif
