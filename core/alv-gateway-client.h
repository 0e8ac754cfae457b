/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core's client of the station's OCN gateway (doc/gateway-protocol.md):
 * resolve a media URL to its content URN, length, media type, block size,
 * THEX URI and a first peer list; fetch the hash tree and check it against
 * the URN before anything trusts it; announce what this peer holds and get
 * other peers back.  Every answer is untrusted input: headers are parsed
 * with the limits of common/alv-ocn-headers.h, bodies are read with a size
 * cap, and a garbage answer becomes a clear #GError (%ALV_ERROR domain),
 * never a crash.  Async (GTask) on the thread-default main context.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "alv-mp3.h"

#include "alv-hash-tree.h"
#include "alv-ocn-headers.h"
#include "alv-ranges.h"

G_BEGIN_DECLS

/* The most peers taken from one X-Alt header or announce answer. */
#define ALV_GATEWAY_CLIENT_MAX_PEERS 64

/* How many 202 answers a resolve waits through before it gives up. */
#define ALV_GATEWAY_CLIENT_DEFAULT_MAX_RETRIES 30

/* A Retry-After longer than this (seconds) is clamped. */
#define ALV_GATEWAY_CLIENT_MAX_RETRY_AFTER 30

typedef enum
{
  ALV_ANNOUNCE_UPDATE,
  ALV_ANNOUNCE_STARTED,
  ALV_ANNOUNCE_COMPLETED,
  ALV_ANNOUNCE_STOPPED,
} AlvAnnounceEvent;

/* What a resolve answered.  @peers holds #GInetSocketAddress. */
typedef struct
{
  char *url;            /* the media URL that was resolved */
  char *urn;            /* normalised content URN */
  guint64 length;
  char *content_type;   /* may be NULL */
  guint block_size;
  char *thex_uri;       /* absolute URI of the tree */
  GPtrArray *peers;
  gboolean has_mp3_head;  /* X-Content-Head gave MPEG audio facts: */
  AlvMp3Info mp3_head;    /* what the item's head would tell (checked) */
} AlvGatewayResolution;

#define ALV_TYPE_GATEWAY_RESOLUTION (alv_gateway_resolution_get_type ())
GType                 alv_gateway_resolution_get_type (void) G_GNUC_CONST;
AlvGatewayResolution *alv_gateway_resolution_copy     (const AlvGatewayResolution *res);
void                  alv_gateway_resolution_free     (AlvGatewayResolution       *res);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvGatewayResolution, alv_gateway_resolution_free)

#define ALV_TYPE_GATEWAY_CLIENT (alv_gateway_client_get_type ())
G_DECLARE_FINAL_TYPE (AlvGatewayClient, alv_gateway_client, ALV, GATEWAY_CLIENT, GObject)

/* @session: (nullable) shared session, or NULL for an own one.
 * @gateway_url: the gateway's base URL, e.g. `http://127.0.0.1:8470/`. */
AlvGatewayClient     *alv_gateway_client_new          (SoupSession          *session,
                                                       const char           *gateway_url,
                                                       GError              **error);
const char           *alv_gateway_client_get_url      (AlvGatewayClient     *client);
SoupSession          *alv_gateway_client_get_session  (AlvGatewayClient     *client);
void                  alv_gateway_client_set_max_retries (AlvGatewayClient  *client,
                                                       guint                 max_retries);

void                  alv_gateway_client_resolve_async (AlvGatewayClient    *client,
                                                       const char           *url,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
AlvGatewayResolution *alv_gateway_client_resolve_finish (AlvGatewayClient   *client,
                                                       GAsyncResult         *result,
                                                       GError              **error);

/* Fetches the THEX serialization at @thex_uri (absolute, or relative to the
 * gateway) and returns the tree only if it hashes to @urn's root and
 * describes @length bytes in blocks of @block_size. */
void                  alv_gateway_client_fetch_tree_async (AlvGatewayClient *client,
                                                       const char           *thex_uri,
                                                       const char           *urn,
                                                       guint64               length,
                                                       guint                 block_size,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
AlvHashTree          *alv_gateway_client_fetch_tree_finish (AlvGatewayClient *client,
                                                       GAsyncResult         *result,
                                                       GError              **error);

/* An origin lease asked for in an announce (doc/gateway-protocol.md):
 * blocks @first..@last, @rescue for blocks late everywhere they are held. */
typedef struct
{
  guint first;
  guint last;
  gboolean rescue;
} AlvAnnounceLease;

/* @bad (in alv_gateway_client_announce_async()): (nullable) peers that
 * sent blocks failing verification, `ip:port,ip:port`. */

/* @held: (nullable) the byte ranges held; @lease: (nullable) an origin
 * lease to ask for.  Returns (finish) the peers the
 * gateway answered (#GInetSocketAddress), in @interval_out the seconds
 * until the next announce is due (0 if the gateway did not say) and in
 * @observed_out (nullable) the `ip:port` the gateway gives the others for
 * this peer, normalised, or NULL if it did not say or said garbage. */
void                  alv_gateway_client_announce_async (AlvGatewayClient   *client,
                                                       const char           *urn,
                                                       guint16               port,
                                                       AlvAnnounceEvent      event,
                                                       const AlvRangeSet    *held,
                                                       guint                 numwant,
                                                       const AlvAnnounceLease *lease,
                                                       const char           *bad,
                                                       GCancellable         *cancellable,
                                                       GAsyncReadyCallback   callback,
                                                       gpointer              user_data);
GPtrArray            *alv_gateway_client_announce_finish (AlvGatewayClient  *client,
                                                       GAsyncResult         *result,
                                                       guint                *interval_out,
                                                       char                **observed_out,
                                                       GError              **error);
/* After a successful _finish: whether the gateway speaks of origin
 * leases at all (X-Origin-Lease present), whether it granted one (in
 * @first/@last), and in @pulls (nullable) the leases running for others
 * (#AlvOriginPull). */
gboolean              alv_gateway_client_announce_get_lease (AlvGatewayClient *client,
                                                       GAsyncResult         *result,
                                                       guint                 n_blocks,
                                                       gboolean             *granted,
                                                       guint                *first,
                                                       guint                *last,
                                                       GArray              **pulls);
/* After a successful _finish: whether the gateway could connect back to
 * the peer port (X-Reachable). */
AlvReachable          alv_gateway_client_announce_get_reach (AlvGatewayClient *client,
                                                       GAsyncResult         *result);

G_END_DECLS
