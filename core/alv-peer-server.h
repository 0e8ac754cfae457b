/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core's peer port (doc/peer-protocol.md): a libsoup HTTP server answering
 * CAW `GET`/`HEAD /uri-res/N2R?<urn>` with PFSP partial-file semantics
 * from the #AlvBlockStore.  It serves only the URNs the daemon shares, and
 * of those only blocks verified against the stored tree; it gossips other
 * sources in `X-Alt`, limits concurrent uploads (slots) and paces bodies to
 * an upload rate, and never maps a request to a file system path.  The wire
 * protocol is documented in doc/peer-protocol.md.
 *
 * Runs on the thread-default main context it was created in; not
 * thread-safe.
 */
#pragma once

#include <gio/gio.h>

#include "alv-block-store.h"

G_BEGIN_DECLS

/**
 * ALV_PEER_SERVER_DEFAULT_MAX_UPLOADS:
 *
 * Default number of upload slots.
 */
#define ALV_PEER_SERVER_DEFAULT_MAX_UPLOADS 4

/**
 * ALV_PEER_SERVER_MIN_SLOT_RATE:
 *
 * With a rate limit, the upload slots are cut so that each gets at least
 * this many bytes per second (and there is always one).
 */
#define ALV_PEER_SERVER_MIN_SLOT_RATE (16 * 1024)

/**
 * ALV_PEER_SERVER_MAX_ALT:
 *
 * The most alternate locations sent in one `X-Alt` header.
 */
#define ALV_PEER_SERVER_MAX_ALT 10

/**
 * ALV_PEER_SERVER_MAX_CONNECTIONS_PER_ADDRESS:
 *
 * Connections held at once from one IP address (a household behind one
 * NAT, or several cores on one host, each with a few connections).
 */
#define ALV_PEER_SERVER_MAX_CONNECTIONS_PER_ADDRESS 64

/**
 * ALV_PEER_SERVER_WAITERS_PER_BLOCK:
 *
 * Requests that may wait at once for one block this peer is pulling from
 * the origin (doc/peer-protocol.md, "Waiting for a block being pulled").
 */
#define ALV_PEER_SERVER_WAITERS_PER_BLOCK 2

/**
 * ALV_PEER_SERVER_WAITERS_MAX:
 *
 * Requests that may wait at once for blocks being pulled, in all.
 */
#define ALV_PEER_SERVER_WAITERS_MAX 8

/**
 * ALV_PEER_SERVER_WAIT_MS:
 *
 * The longest a request waits for a block being pulled before it is
 * answered `503`.
 */
#define ALV_PEER_SERVER_WAIT_MS 3000

/**
 * AlvPeerServerStats:
 * @bytes_uploaded: body bytes written to peers
 * @requests_served: requests answered 200 or 206
 * @requests_refused: requests answered with any other status
 * @active_uploads: bodies being sent now (slots in use)
 * @requests_waited: requests that waited for a block being pulled
 * @waiting: requests waiting now
 *
 * Counters of an #AlvPeerServer since it was created.
 */
typedef struct
{
  guint64 bytes_uploaded;
  guint64 requests_served;
  guint64 requests_refused;
  guint active_uploads;
  guint64 requests_waited;
  guint waiting;
} AlvPeerServerStats;

/**
 * AlvPeerServerAltFunc:
 * @urn: the URN a response is about
 * @user_data: the data given to alv_peer_server_set_alt_func()
 *
 * Supplies other peers of @urn for the `X-Alt` gossip header.
 *
 * Returns: (transfer full) (element-type GInetSocketAddress) (nullable):
 *   addresses, of which at most %ALV_PEER_SERVER_MAX_ALT are sent
 */
typedef GPtrArray *(*AlvPeerServerAltFunc) (const char *urn,
                                            gpointer    user_data);

/**
 * AlvPeerServerSeenFunc:
 * @urn: the URN asked for (shared)
 * @address: the requester's address with the port it listens on
 * @user_data: the data given to alv_peer_server_set_seen_func()
 */
typedef void (*AlvPeerServerSeenFunc) (const char         *urn,
                                       GInetSocketAddress *address,
                                       gpointer            user_data);

/**
 * AlvPeerServerPendingFunc:
 * @urn: the URN a response is about
 * @user_data: the data given to alv_peer_server_set_pending_func()
 *
 * Returns: (transfer full) (nullable): the byte ranges being fetched from
 *   the origin now, for `X-Pending-Ranges`
 */
typedef AlvRangeSet *(*AlvPeerServerPendingFunc) (const char *urn,
                                                  gpointer    user_data);

/**
 * AlvPeerServerHoldersFunc:
 * @urn: the URN a request is for
 * @offset: the first byte asked for
 * @user_data: the data given to alv_peer_server_set_holders_func()
 *
 * Returns: how many other peers are known to hold the block at @offset
 */
typedef guint (*AlvPeerServerHoldersFunc) (const char *urn,
                                           guint64     offset,
                                           gpointer    user_data);

#define ALV_TYPE_PEER_SERVER (alv_peer_server_get_type ())
G_DECLARE_FINAL_TYPE (AlvPeerServer, alv_peer_server, ALV, PEER_SERVER, GObject)

AlvPeerServer *alv_peer_server_new             (AlvBlockStore        *store);
gboolean       alv_peer_server_listen          (AlvPeerServer        *server,
                                                const char           *address,
                                                guint16               port,
                                                GError              **error);
guint16        alv_peer_server_get_port        (AlvPeerServer        *server);
void           alv_peer_server_disconnect      (AlvPeerServer        *server);

void           alv_peer_server_share           (AlvPeerServer        *server,
                                                const char           *urn);
void           alv_peer_server_unshare         (AlvPeerServer        *server,
                                                const char           *urn);
gboolean       alv_peer_server_is_sharing      (AlvPeerServer        *server,
                                                const char           *urn);

void           alv_peer_server_set_alt_func    (AlvPeerServer        *server,
                                                AlvPeerServerAltFunc  func,
                                                gpointer              user_data,
                                                GDestroyNotify        destroy);
void           alv_peer_server_set_seen_func   (AlvPeerServer        *server,
                                                AlvPeerServerSeenFunc func,
                                                gpointer              user_data);
void           alv_peer_server_set_pending_func (AlvPeerServer       *server,
                                                AlvPeerServerPendingFunc func,
                                                gpointer              user_data);
void           alv_peer_server_set_holders_func (AlvPeerServer       *server,
                                                AlvPeerServerHoldersFunc func,
                                                gpointer              user_data);
void           alv_peer_server_set_max_uploads (AlvPeerServer        *server,
                                                guint                 max_uploads);
guint          alv_peer_server_get_max_uploads (AlvPeerServer        *server);
void           alv_peer_server_set_max_connections_per_address (AlvPeerServer *server,
                                                                guint          max);
void           alv_peer_server_set_header_timeout (AlvPeerServer     *server,
                                                guint                 seconds);
void           alv_peer_server_set_rate_limit  (AlvPeerServer        *server,
                                                guint64               bytes_per_second);
guint64        alv_peer_server_get_rate_limit  (AlvPeerServer        *server);
void           alv_peer_server_get_stats       (AlvPeerServer        *server,
                                                AlvPeerServerStats   *stats);
void           alv_peer_server_block_arrived   (AlvPeerServer        *server,
                                                const char           *urn);

G_END_DECLS
