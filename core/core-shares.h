/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The share table of alluvium-core: the swarms of recent items that stay
 * shared on the peer port after they played (or were dropped), so that
 * listeners who tune in later find peers (doc/core.md).  It owns what
 * sharing an item takes: a swarm started for a resolution is pinned in
 * the block store and shared on the peer port; one handed back lingers
 * for SHARE_LINGER seconds (at most SHARE_MAX of them), is taken back when
 * its item plays again, and is stopped, unshared and unpinned when its
 * time runs out.  The statistics of the swarms it stopped are kept here.
 * The swarms that feeders are reading are not in the table: the service
 * (core-service.c) asks the feeders for those.
 */
#pragma once

#include <glib.h>

#include "alv-block-store.h"
#include "alv-gateway-client.h"
#include "alv-peer-server.h"
#include "alv-swarm.h"

G_BEGIN_DECLS

typedef struct _CoreShares CoreShares;

/* An item stopped being shared because its time ran out. */
typedef void (*CoreSharesExpiredFunc) (gpointer user_data);

CoreShares *core_shares_new      (CoreSharesExpiredFunc       expired,
                                  gpointer                    user_data);
void        core_shares_free     (CoreShares                 *shares);
/* The block store and the peer port (NULL: none) items are shared from,
 * once the store is open; the table holds references until
 * core_shares_clear(). */
void        core_shares_set_port (CoreShares                 *shares,
                                  AlvBlockStore              *store,
                                  AlvPeerServer              *peers);
/* Stops sharing every item and lets go of the store and the peer port. */
void        core_shares_clear    (CoreShares                 *shares);

/* The swarm for @res (transfer full): the one still shared, taken out of
 * the table, or a new one, started, pinned and shared on the peer port
 * (@gateway and @listen_port as the swarm announces itself); NULL with
 * @error when the item cannot be swarmed.  Needs the store. */
AlvSwarm   *core_shares_open     (CoreShares                 *shares,
                                  const AlvGatewayResolution *res,
                                  AlvGatewayClient           *gateway,
                                  guint16                     listen_port,
                                  GError                    **error);
/* A swarm no longer read (transfer full) stays shared for a while. */
void        core_shares_keep     (CoreShares                 *shares,
                                  AlvSwarm                   *swarm);
/* The swarm of @urn in the table, or NULL. */
AlvSwarm   *core_shares_find     (CoreShares                 *shares,
                                  const char                 *urn);
/* How many items are shared from the table. */
guint       core_shares_get_count (CoreShares                *shares);
/* Every swarm in the table announces @port to its peers from now on. */
void        core_shares_set_listen_port (CoreShares          *shares,
                                         guint16              port);

/* The statistics of the swarms the table stopped. */
void        core_shares_get_done_stats (CoreShares           *shares,
                                        AlvSwarmStats        *stats);
/* Adds those of the swarms in the table to @total. */
void        core_shares_add_stats (CoreShares                *shares,
                                   AlvSwarmStats             *total);
/* Adds @s to @total (the peer port's reach: the latest word). */
void        core_shares_sum_stats (AlvSwarmStats             *total,
                                   const AlvSwarmStats       *s);

G_END_DECLS
