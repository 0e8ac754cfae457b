/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The Open Content Network's HTTP headers (doc/peer-protocol.md): CAW's
 * `X-Content-URN`, the compact `X-Alt`/`X-NAlt` alternate-location lists
 * and `/uri-res/N2R?<urn>` paths, and THEX's `X-Thex-URI`.  Every parser
 * takes a header value from an untrusted peer or gateway, works within
 * limits and reports what was wrong through %ALV_ERROR; every formatter
 * writes what the parsers accept.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ALV_HEADER_CONTENT_URN       "X-Content-URN"
#define ALV_HEADER_ALT               "X-Alt"
#define ALV_HEADER_NALT              "X-NAlt"
#define ALV_HEADER_THEX_URI          "X-Thex-URI"
#define ALV_HEADER_AVAILABLE_RANGES  "X-Available-Ranges"
/* a requesting peer's own peer port (the IP is the connection's) */
#define ALV_HEADER_LISTEN_PORT       "X-Listen-Port"
/* what a peer is fetching from the origin right now (same syntax as
 * X-Available-Ranges): others wait for it instead of pulling it too */
#define ALV_HEADER_PENDING_RANGES    "X-Pending-Ranges"
/* in a peer request: milliseconds until the requester plays the first
 * byte asked for; peers upload earliest deadline first */
#define ALV_HEADER_DUE_IN            "X-Due-In"
/* the gateway's origin lease in an announce answer: `FIRST-LAST` (block
 * numbers, inclusive) or `none`; and the leases running for others:
 * `ip:port FIRST-LAST, …` (doc/gateway-protocol.md) */
#define ALV_HEADER_ORIGIN_LEASE      "X-Origin-Lease"
#define ALV_HEADER_ORIGIN_PULLS      "X-Origin-Pulls"
/* announce answers: could the gateway connect back to the announced
 * port at the observed address?  "yes", "no" or "unknown" */
#define ALV_HEADER_REACHABLE         "X-Reachable"
/* resolve answers: what a joiner needs of the item's head, read by the
 * gateway while hashing; `mpeg-audio; start=N; header=HEX; …`
 * (alv_mp3_info_to_string(), doc/gateway-protocol.md) */
#define ALV_HEADER_CONTENT_HEAD      "X-Content-Head"

/**
 * ALV_ORIGIN_PULLS_MAX:
 *
 * The most entries of an `X-Origin-Pulls` header that are read or written.
 */
#define ALV_ORIGIN_PULLS_MAX 8

/**
 * AlvOriginPull:
 * @address: the peer pulling from the origin
 * @first: first block of its run
 * @last: last block, inclusive
 *
 * One entry of `X-Origin-Pulls`.
 */
typedef struct
{
  GInetSocketAddress *address;
  guint first;
  guint last;
} AlvOriginPull;

/**
 * ALV_N2R_PATH:
 *
 * The CAW name-to-resource path; the URN follows as the query.
 */
#define ALV_N2R_PATH "/uri-res/N2R"

/**
 * ALV_ALT_MAX_ENTRIES:
 *
 * A sensible default for the @max_entries of alv_alt_parse() and
 * alv_alt_format().
 */
#define ALV_ALT_MAX_ENTRIES 32

/**
 * ALV_THEX_URI_MAX_LENGTH:
 *
 * The longest URI accepted in an `X-Thex-URI` header.
 */
#define ALV_THEX_URI_MAX_LENGTH 2048

/* X-Alt / X-NAlt: `1.2.3.4:6346,[2001:db8::1]:8080`; IP literals only, a
 * port (1-65535) is required.  Invalid entries are skipped (counted in
 * *n_skipped of the _full variant); an error only when the header holds
 * entries and none is valid.  Returns #GInetSocketAddress, de-duplicated,
 * in order, at most max_entries (the rest is ignored).  An empty header
 * gives an empty array.  alv_alt_format() returns NULL for no address. */
GPtrArray  *alv_alt_parse              (const char     *value,
                                        guint           max_entries,
                                        GError        **error);
GPtrArray  *alv_alt_parse_full         (const char     *value,
                                        guint           max_entries,
                                        guint          *n_skipped,
                                        GError        **error);
char       *alv_alt_format             (GPtrArray      *addrs,
                                        guint           max_entries);
char       *alv_alt_format_address     (GInetSocketAddress *addr);
gboolean    alv_alt_address_is_public  (GInetAddress   *address);

/* X-Origin-Pulls: entries `ip:port FIRST-LAST` separated by commas, with
 * FIRST <= LAST < n_blocks; bad entries are skipped.  Returns an array
 * of #AlvOriginPull (at most ALV_ORIGIN_PULLS_MAX; it frees the
 * addresses with it).  X-Origin-Lease: `FIRST-LAST` or `none` (FALSE,
 * and for anything malformed). */
GArray     *alv_origin_pulls_parse     (const char     *value,
                                        guint           n_blocks);
gboolean    alv_origin_lease_parse     (const char     *value,
                                        guint           n_blocks,
                                        guint          *first,
                                        guint          *last);

/**
 * AlvReachable:
 * @ALV_REACHABLE_UNKNOWN: not checked (yet), or not said
 * @ALV_REACHABLE_YES: the gateway connected back to the peer port
 * @ALV_REACHABLE_NO: it could not: peers cannot reach that peer
 *
 * What `X-Reachable` says of an announcing peer's port.
 */
typedef enum
{
  ALV_REACHABLE_UNKNOWN,
  ALV_REACHABLE_YES,
  ALV_REACHABLE_NO,
} AlvReachable;

/* X-Reachable: `yes`, `no` or `unknown`; anything else (or NULL) reads as
 * unknown. */
const char *alv_reachable_to_string    (AlvReachable    reachable);
AlvReachable alv_reachable_parse       (const char     *value);

/* X-Content-URN: a comma-separated list of URNs; returns the
 * `urn:tree:sha256:` one, normalised as alv_urn_normalize() does. */
char       *alv_content_urn_parse      (const char     *value,
                                        GError        **error);

/* X-Thex-URI: `<uri>;<base32 root>` */
gboolean    alv_thex_uri_parse         (const char     *value,
                                        char          **uri_out,
                                        char          **root_b32_out,
                                        GError        **error);
char       *alv_thex_uri_format        (const char     *uri,
                                        const char     *root_b32);

/* N2R: `/uri-res/N2R?<urn>` */
char       *alv_n2r_path               (const char     *urn);
char       *alv_n2r_parse_query        (const char     *query,
                                        GError        **error);

G_END_DECLS
