/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The swarm downloader of one item (doc/swarm.md): fetches
 * an item's blocks into the #AlvBlockStore from peers (CAW N2R with Range,
 * a short request pipeline per peer) and from the origin URL (a range
 * store: few large coalesced Range requests on one keep-alive connection).
 * Every block has a deadline from the playhead or a caller's function;
 * inside the urgent window the earliest deadline goes to the fastest
 * source that has the block, the origin only when no peer can make the
 * deadline or nobody holds the block (after a random patience, so that
 * across listeners about one pulls it from the origin); beyond the window
 * peers are asked rarest first.  Peer blocks are used only after the
 * store verified them against the tree; a peer whose block fails is banned
 * for the item.  Peers come from the gateway (resolve, periodic announces),
 * from requesters naming their port and from X-Alt gossip; only those the
 * gateway vouched for and those that served a verified block are named to
 * others (doc/swarm.md, "Whom to believe").  Memory is bounded: a fixed
 * number of requests in flight, each holding at most one block.
 *
 * Runs on the thread-default main context it was created in; not
 * thread-safe.  Requests in flight hold a reference to the swarm: call
 * alv_swarm_stop() before dropping your last reference.
 *
 * Signals: "block-ready" (guint64 index, guint64 contiguous_end) when a
 * block became held; "progress" whenever the statistics changed;
 * "complete" once every block is held; "tree-ready" once the tree is in
 * the store and peers can be used.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "alv-block-store.h"
#include "alv-gateway-client.h"

G_BEGIN_DECLS

/* No deadline: the block is not needed by the stream (yet). */
#define ALV_SWARM_NO_DEADLINE G_MAXINT64

/**
 * AlvSwarmStats:
 * @bytes_from_peers: verified block bytes received from peers
 * @bytes_from_origin: body bytes received from the origin (also bytes
 *   read and discarded when the origin ignored Range)
 * @blocks_verified: blocks stored (from peers: verified against the tree)
 * @blocks_rejected: peer blocks that failed verification
 * @blocks_held: blocks the store holds for the item
 * @n_blocks: blocks of the item
 * @peers_known: peers known (not banned)
 * @peers_connected: peers with a request in flight
 * @peers_banned: peers banned for sending a bad block
 * @origin_requests: Range requests sent to the origin
 * @requests_in_flight: requests running now
 * @peer_port_reach: what the gateway said last of the peer port
 * @peer_port_reach_time: when (monotonic µs; 0: it never said)
 */
typedef struct
{
  guint64 bytes_from_peers;
  guint64 bytes_from_origin;
  guint64 blocks_verified;
  guint64 blocks_rejected;
  guint64 blocks_held;
  guint64 n_blocks;
  guint peers_known;
  guint peers_connected;
  guint peers_banned;
  guint64 origin_requests;
  guint requests_in_flight;
  AlvReachable peer_port_reach;
  gint64 peer_port_reach_time;
} AlvSwarmStats;

#define ALV_TYPE_SWARM (alv_swarm_get_type ())
G_DECLARE_FINAL_TYPE (AlvSwarm, alv_swarm, ALV, SWARM, GObject)

/**
 * AlvSwarmDeadlineFunc:
 * @swarm: the swarm
 * @index: a block index
 * @user_data: data given to alv_swarm_set_deadline_func()
 *
 * Returns: the monotonic time (g_get_monotonic_time()) by which block
 *   @index is needed, or %ALV_SWARM_NO_DEADLINE
 */
typedef gint64 (*AlvSwarmDeadlineFunc) (AlvSwarm *swarm,
                                        guint64   index,
                                        gpointer  user_data);

/* @tree: (nullable) the item's tree when already known (it must match
 * @urn).  The entry is opened in @store (created if needed). */
AlvSwarm      *alv_swarm_new                 (AlvBlockStore        *store,
                                              const char           *urn,
                                              const char           *origin_url,
                                              guint64               length,
                                              guint                 block_size,
                                              AlvHashTree          *tree,
                                              GError              **error);
AlvSwarm      *alv_swarm_new_for_resolution  (AlvBlockStore        *store,
                                              const AlvGatewayResolution *res,
                                              GError              **error);

/* Announces to @gateway as a peer on @peer_port (0: fetch the tree and
 * ask for peers without announcing) and fetches the tree from
 * @thex_uri (nullable: the tree is given with alv_swarm_set_tree()). */
void           alv_swarm_set_gateway         (AlvSwarm             *swarm,
                                              AlvGatewayClient     *gateway,
                                              const char           *thex_uri,
                                              guint16               peer_port);
/* The port announced to the gateway and named to peers (X-Listen-Port):
 * the router's side of a port mapping; 0 (the default): the peer port. */
void           alv_swarm_set_listen_port     (AlvSwarm             *swarm,
                                              guint16               port);
void           alv_swarm_set_tree            (AlvSwarm             *swarm,
                                              AlvHashTree          *tree);
gboolean       alv_swarm_has_tree            (AlvSwarm             *swarm);
/* A peer the caller vouches for (the gateway named it). */
void           alv_swarm_add_peer            (AlvSwarm             *swarm,
                                              GInetSocketAddress   *address);
/* A requester that named its peer port (X-Listen-Port): unproven until
 * it serves a verified block. */
void           alv_swarm_add_requester       (AlvSwarm             *swarm,
                                              GInetSocketAddress   *address);
/* The peers worth naming to others in X-Alt: those that served a
 * verified block, then those the gateway vouched for. */
GPtrArray     *alv_swarm_get_shareable_peers (AlvSwarm             *swarm);
/* An inactive swarm fetches nothing (a prefetch waiting for its turn)
 * but still polls its peers, shares what it holds and announces; swarms
 * start active. */
void           alv_swarm_set_active          (AlvSwarm             *swarm,
                                              gboolean              active);

void           alv_swarm_set_playhead        (AlvSwarm             *swarm,
                                              guint64               offset,
                                              guint64               bytes_per_second);
/* The local stream goes on from @offset after waiting for it: a stall
 * moves the playhead (the listener falls behind, doc/swarm.md). */
void           alv_swarm_stream_resumed      (AlvSwarm             *swarm,
                                              guint64               offset);
/* Blocks wholly before @offset are not fetched unless they have a
 * deadline (a broadcast never plays what is behind its position); the
 * playhead moves this point too. */
void           alv_swarm_set_needed_from     (AlvSwarm             *swarm,
                                              guint64               offset);
gboolean       alv_swarm_has_needed          (AlvSwarm             *swarm);
/* How many known peers hold the block at byte @offset (the peer server
 * uploads the rare ones first). */
guint          alv_swarm_count_holders       (AlvSwarm             *swarm,
                                              guint64               offset);
/* The byte ranges being fetched from the origin now (for X-Pending-Ranges). */
AlvRangeSet   *alv_swarm_get_origin_pending  (AlvSwarm             *swarm);
void           alv_swarm_set_deadline_func   (AlvSwarm             *swarm,
                                              AlvSwarmDeadlineFunc  func,
                                              gpointer              user_data,
                                              GDestroyNotify        destroy);
/* Nothing plays from this swarm any more (it lingers to share): no
 * deadlines, the rest fetched as a prefetch (doc/swarm.md). */
void           alv_swarm_release_playhead    (AlvSwarm             *swarm);
void           alv_swarm_set_urgent_window   (AlvSwarm             *swarm,
                                              guint                 milliseconds);
void           alv_swarm_set_seed            (AlvSwarm             *swarm,
                                              guint32               seed);

void           alv_swarm_start               (AlvSwarm             *swarm);
void           alv_swarm_stop                (AlvSwarm             *swarm);

const char    *alv_swarm_get_urn             (AlvSwarm             *swarm);
guint64        alv_swarm_get_length          (AlvSwarm             *swarm);
guint          alv_swarm_get_block_size      (AlvSwarm             *swarm);
gboolean       alv_swarm_is_complete         (AlvSwarm             *swarm);
gboolean       alv_swarm_has_block           (AlvSwarm             *swarm,
                                              guint64               index);
guint64        alv_swarm_get_contiguous_end  (AlvSwarm             *swarm);
void           alv_swarm_get_stats           (AlvSwarm             *swarm,
                                              AlvSwarmStats        *stats);

G_END_DECLS
