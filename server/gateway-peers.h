/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's tracker: an in-memory table of peers per content URN,
 * keyed by the address the gateway observed and the peer port announced,
 * with what each holds (a block map), an expiry time, and caps per URN,
 * per address and over all URNs.  When the URN's list or the whole table
 * is full, the entry announced least recently makes room, in constant
 * time.  Peer lists are bounded random samples weighted towards peers
 * holding blocks the asker lacks.
 */
#pragma once

#include <gio/gio.h>

#include "alv-block-map.h"

G_BEGIN_DECLS

typedef enum
{
  GATEWAY_PEER_EVENT_UPDATE,    /* periodic re-announce */
  GATEWAY_PEER_EVENT_STARTED,
  GATEWAY_PEER_EVENT_COMPLETED,
  GATEWAY_PEER_EVENT_STOPPED,
} GatewayPeerEvent;

typedef enum
{
  GATEWAY_PEERS_OK,
  GATEWAY_PEERS_ADDRESS_FULL,   /* this address has too many entries */
} GatewayPeersStatus;

typedef struct _GatewayPeers GatewayPeers;

/* Default of gateway_peers_new()'s @max_entries (alluvium-server gateway
 * --max-peer-entries): some 10 MB of entries at most. */
#define GATEWAY_PEERS_MAX_ENTRIES 20000

GatewayPeers       *gateway_peers_new        (guint              ttl_seconds,
                                              guint              max_per_urn,
                                              guint              max_per_address,
                                              guint              max_entries);
void                gateway_peers_free       (GatewayPeers      *peers);

/* Records (or, for STOPPED, removes) @address:@port for @urn.  @have
 * (nullable: nothing yet, or everything for COMPLETED) is taken over.
 * When the URN's list is full, the entry of that URN announced least
 * recently makes room; when the table is full, the entry announced least
 * recently of all.  Either takes constant time. */
GatewayPeersStatus  gateway_peers_announce   (GatewayPeers      *peers,
                                              const char        *urn,
                                              guint              n_blocks,
                                              GInetAddress      *address,
                                              guint16            port,
                                              GatewayPeerEvent   event,
                                              AlvBlockMap       *have);
/* Up to @max #GInetSocketAddress for @urn, excluding @self (nullable),
 * favouring peers that hold blocks @have (nullable: nothing) lacks. */
GPtrArray          *gateway_peers_select     (GatewayPeers      *peers,
                                              const char        *urn,
                                              GInetSocketAddress *self,
                                              const AlvBlockMap *have,
                                              guint              max);
/* How many entries of @urn hold @block (as they last announced) and may
 * be listed as sources, counted up to @max: the listeners that can pass
 * it on. */
guint               gateway_peers_count_holding (GatewayPeers   *peers,
                                              const char        *urn,
                                              guint              block,
                                              guint              max);
/* A peer known elsewhere (a shared store's sample): "ip:port" or
 * "[ip6]:port", and what it holds. */
typedef struct
{
  char *key;
  gboolean complete;
  AlvBlockMap *have;            /* nullable: nothing known */
} GatewayPeerCandidate;

/* gateway_peers_select()'s rule applied to @candidates (of
 * #GatewayPeerCandidate) of a content of @n_blocks: up to @max
 * #GInetSocketAddress, favouring those holding blocks @have (nullable:
 * nothing) lacks; a candidate whose key is not an address is left out. */
GPtrArray          *gateway_peers_choose     (GatewayPeers      *peers,
                                              GPtrArray         *candidates,
                                              guint              n_blocks,
                                              const AlvBlockMap *have,
                                              guint              max);
/* Drops expired entries; returns how many. */
guint               gateway_peers_expire     (GatewayPeers      *peers);
guint               gateway_peers_get_n_entries (GatewayPeers   *peers);
guint               gateway_peers_get_n_urns (GatewayPeers      *peers);
guint               gateway_peers_get_max_entries (GatewayPeers *peers);
/* Entries dropped to make room (per URN or overall) since the start. */
guint64             gateway_peers_get_n_evicted (GatewayPeers    *peers);
guint               gateway_peers_get_ttl    (GatewayPeers      *peers);

/* The time in µs of the clock expiry runs on (monotonic). */
typedef gint64 (*GatewayPeersClock) (gpointer user_data);

/* For the simulator: another clock than g_get_monotonic_time(). */
void                gateway_peers_set_clock  (GatewayPeers      *peers,
                                              GatewayPeersClock  clock,
                                              gpointer           user_data);
/* Whether the peer "ip:port" may be listed to others as a source: the
 * gateway's connect-back result (gateway-reach.c), so that a peer known
 * unreachable is never listed (it still downloads); unknown counts as
 * reachable.  Applies to gateway_peers_select() and _choose(). */
typedef gboolean (*GatewayPeersSourceFunc) (const char *key,
                                            gpointer    user_data);

/* Without one (the default) every peer may be listed. */
void                gateway_peers_set_source_func (GatewayPeers          *peers,
                                                   GatewayPeersSourceFunc func,
                                                   gpointer               user_data);
/* For tests: a fixed random seed. */
void                gateway_peers_set_seed   (GatewayPeers      *peers,
                                              guint32            seed);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayPeers, gateway_peers_free)

G_END_DECLS
