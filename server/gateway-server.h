/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's HTTP service (libsoup 3): `/resolve`, `/thex/<urn>`,
 * `/announce`, `/status` and, with a docroot, the station's static files.
 * Owns the store, the peer table, the hashing jobs (one per URL) and the
 * per-address limits.  See doc/gateway-protocol.md for the protocol.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  char *address;                /* listen address (IP literal) */
  guint port;                   /* 0: any free port */
  char *docroot;
  char *base_url;               /* public URL of the docroot (nullable) */
  char **origins;               /* URL prefixes that may be fetched */
  char *state_dir;              /* nullable: memory only */
  char *store;                  /* nullable or "embedded"; or a Redis address */
  char **trusted_proxies;       /* IPs whose X-Forwarded-For is believed */
  gboolean allow_private;
  guint64 max_media_size;
  guint rate_limit;             /* requests per second per address, 0: off */
  guint rate_burst;
  guint max_header_bytes;
  guint max_url_length;
  guint max_peers;              /* per answer */
  guint max_peers_per_urn;
  guint max_entries_per_address;
  guint max_peer_entries;       /* over all URNs */
  guint peer_ttl;               /* seconds */
  guint revalidate_after;       /* seconds */
  guint resolve_wait_ms;        /* how long a resolve may wait for a job */
  guint retry_after;            /* seconds, in 202 answers */
  guint block_size;
  guint fetch_timeout;          /* seconds of origin inactivity */
  guint origin_leases;          /* origin pulls granted at once per URN, 0: none */
  guint max_connections;        /* open at once, 0: 40 % of the descriptor limit */
  guint max_connections_per_address;
  guint idle_timeout;           /* seconds a client may stay silent */
  guint connect_back_ms;        /* timeout of a reachability check, 0: none */
  gboolean allow_query;         /* resolve origin URLs with a query string */
  guint max_urls;               /* URL entries kept, least recently used go */
  guint new_url_rate;           /* URLs new to the gateway per minute per address, 0: off */
  guint new_url_burst;
  guint max_fetches_per_origin; /* hashing fetches at once per origin host, 0: no cap */
} GatewayConfig;

/* Counters, for /status and the D-Bus admin interface. */
typedef struct
{
  guint64 requests;
  guint64 resolves;
  guint64 resolves_immediate;   /* answered from the store at once */
  guint64 accepted;             /* 202 answers */
  guint64 fetches;              /* origin GETs with a body */
  guint64 revalidations;        /* conditional GETs answered 304 */
  guint64 bytes_fetched;
  guint64 files_hashed;         /* docroot files hashed */
  guint64 bytes_served;         /* docroot file bytes sent to clients */
  guint64 announces;
  guint64 leases;               /* origin leases granted */
  guint64 refusals;             /* 4xx/5xx answers of our own */
  guint64 peers_evicted;        /* peer entries dropped to make room */
  guint64 reachable;            /* connect-back checks that connected */
  guint64 unreachable;          /* and that did not */
  guint64 reach_dropped;        /* checks not made: too many waiting */
  guint64 new_urls_refused;     /* 429: an address's budget of new URLs spent */
  guint64 origin_busy;          /* 503: its origin had no fetch slot free */
  guint64 urls_evicted;         /* entries dropped to make room (--max-urls) */
} GatewayStats;

typedef struct _GatewayServer GatewayServer;

void           gateway_config_init       (GatewayConfig       *config);
void           gateway_config_clear      (GatewayConfig       *config);

GatewayServer *gateway_server_new        (const GatewayConfig *config,
                                          GError             **error);
/* Binds; afterwards gateway_server_get_url() is valid. */
gboolean       gateway_server_listen     (GatewayServer       *self,
                                          GError             **error);
const char    *gateway_server_get_url    (GatewayServer       *self);
/* What it answers for, a line each ("bound to …", "serving …",
 * "resolving media under …"), for people; after listening. */
char          *gateway_server_describe   (GatewayServer       *self);
const GatewayStats *gateway_server_get_stats (GatewayServer   *self);
guint          gateway_server_get_n_entries (GatewayServer    *self);
guint          gateway_server_get_n_peers (GatewayServer      *self);
guint          gateway_server_get_n_jobs (GatewayServer       *self);
/* Starts hashing @url if it is not known and fresh (as a resolve would,
 * with nobody waiting).  FALSE with @error when the URL is refused. */
gboolean       gateway_server_prepare    (GatewayServer       *self,
                                          const char          *url,
                                          GError             **error);
/* Cancels every job and waits (iterating the main context) for them. */
void           gateway_server_free       (GatewayServer       *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayServer, gateway_server_free)

G_END_DECLS
