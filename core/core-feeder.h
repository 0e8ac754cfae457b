/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The feeder of alluvium-core: plays one item of the station into the
 * local stream, from a position (doc/core.md, "Feeding the local
 * stream").  It owns both paths the bytes come by (the swarm path:
 * resolved at the gateway, fetched by an #AlvSwarm into the block store
 * and read back verified; the interim origin path: Range requests to the
 * item's URL), probing the head for the format and the byte rate, placing
 * the position, pacing, and pushing into the #AlvStreamServer.  A
 * prefetched feeder fetches its head only and waits to be adopted.
 *
 * Bytes flow one way: from the store or the origin into the stream.
 * Which item plays, when a prefetched feeder takes over, retries and the
 * daemon's state are the service's (core-service.c): the feeder tells it
 * what happened through #CoreFeederCallbacks and never reaches into it.
 */
#pragma once

#include <glib.h>
#include <libsoup/soup.h>

#include "alv-block-store.h"
#include "alv-gateway-client.h"
#include "alv-peer-server.h"
#include "alv-playlist.h"
#include "alv-stream-server.h"
#include "alv-swarm.h"

G_BEGIN_DECLS

typedef struct _CoreFeeder CoreFeeder;

/* What a feeder tells the service that owns it.  Each gets the feeder
 * and the context's @user_data; @failed and @data_done may free the
 * feeder (the feeder touches nothing after them). */
typedef struct
{
  /* The item cannot be played: @message is a translated sentence, already
   * logged.  The service drops the feeder (and may try again). */
  void      (*failed)     (CoreFeeder *feeder, const char *message, gpointer user_data);
  /* Bytes of the item went into the stream (after every push), or the
   * item turned out to be over already at its position. */
  void      (*playing)    (CoreFeeder *feeder, gpointer user_data);
  /* All of the item's data is in the stream (a playing feeder only; on a
   * later turn of the main loop than the last push). */
  void      (*data_done)  (CoreFeeder *feeder, gpointer user_data);
  /* A prefetched feeder's swarm runs: whether it fetches now is the
   * service's call (core_feeder_get_swarm(), alv_swarm_set_active()). */
  void      (*prefetch_swarm) (CoreFeeder *feeder, gpointer user_data);
  /* @n bytes came straight from an origin (for the statistics). */
  void      (*origin_bytes) (guint64 n, gpointer user_data);
  /* The swarm for @res, running and shared on the peer port: one still
   * shared, or a new one; NULL with @error when the item cannot be
   * swarmed (it plays from its origin then). */
  AlvSwarm *(*open_swarm) (const AlvGatewayResolution *res, GError **error, gpointer user_data);
  /* A swarm the feeder no longer reads (transfer full): it stays
   * shared for a while. */
  void      (*release_swarm) (AlvSwarm *swarm, gpointer user_data);
} CoreFeederCallbacks;

/* What a feeder works with.  The feeder holds references to the
 * objects; the store and the peer port may come later, with
 * core_feeder_store_opened(). */
typedef struct
{
  SoupSession *session;            /* for the origin path */
  AlvStreamServer *out;            /* the local stream the bytes go to */
  AlvGatewayClient *gateway;       /* NULL: the origin path only */
  AlvBlockStore *store;            /* NULL: not open (yet) */
  AlvPeerServer *peers;            /* NULL: no peer port */
  gboolean store_opening;          /* the store is being opened: wait for it */
  const CoreFeederCallbacks *callbacks;
  gpointer user_data;
} CoreFeederContext;

/* Starts to play @item from @position (µs into its slot); with
 * @prefetch_only it fetches the head only, until core_feeder_adopt(). */
CoreFeeder      *core_feeder_new          (const CoreFeederContext *context,
                                           AlvPlaylistItem         *item,
                                           GTimeSpan                position,
                                           gboolean                 prefetch_only);
/* Stops (pending operations are cancelled) and hands its swarm back
 * through release_swarm. */
void             core_feeder_free         (CoreFeeder              *feeder);

/* The store opened (@store NULL: it could not be), with its peer port
 * (NULL: none): a feeder waiting for it goes on. */
void             core_feeder_store_opened (CoreFeeder              *feeder,
                                           AlvBlockStore           *store,
                                           AlvPeerServer           *peers);
/* The prefetched @feeder plays from now on, from @position. */
void             core_feeder_adopt        (CoreFeeder              *feeder,
                                           GTimeSpan                position);
/* Hands @feeder over before its slot: it is paced on from @pace_base
 * (monotonic µs: when the stream reaches its first byte). */
void             core_feeder_hand_over    (CoreFeeder              *feeder,
                                           gint64                   pace_base);
/* Whether @feeder was handed over and its slot has not started yet. */
gboolean         core_feeder_get_handed_over (CoreFeeder           *feeder);
/* The slot of a feeder handed over started. */
void             core_feeder_slot_started (CoreFeeder              *feeder);
/* When the stream reaches the end of what @feeder pushed (monotonic
 * µs), if it pushes paced (FALSE before its first sync point). */
gboolean         core_feeder_get_stream_end (CoreFeeder            *feeder,
                                             gint64                *end);
/* Whether the item is held as far as it is needed (its head, on the
 * origin path). */
gboolean         core_feeder_is_held      (CoreFeeder              *feeder);

AlvPlaylistItem *core_feeder_get_item     (CoreFeeder              *feeder);
/* The item's swarm and its URN; NULL on the origin path (or before). */
AlvSwarm        *core_feeder_get_swarm    (CoreFeeder              *feeder);
const char      *core_feeder_get_urn      (CoreFeeder              *feeder);

G_END_DECLS
