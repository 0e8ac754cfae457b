/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The share table: recent items' swarms kept shared on the peer port for
 * a while after they played, so that listeners who tune in later find
 * peers; taken back when an item plays again.  Sharing an item (pinning
 * it in the block store, sharing it on the peer port) starts here and
 * ends here.  See core-shares.h.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "core-shares.h"

/* how long an item stays shared after it played (s), and how many */
#define SHARE_LINGER 300
#define SHARE_MAX 4

struct _CoreShares
{
  GPtrArray *shared;               /* Shared: recent items still shared */
  AlvBlockStore *store;            /* NULL until opened */
  AlvPeerServer *peers;            /* NULL: no peer port */
  AlvSwarmStats done_stats;        /* of swarms already stopped */
  CoreSharesExpiredFunc expired;
  gpointer user_data;
};

typedef struct
{
  CoreShares *shares;
  AlvSwarm *swarm;
  guint timer_id;
} Shared;

void
core_shares_sum_stats (AlvSwarmStats       *total,
                       const AlvSwarmStats *s)
{
  total->bytes_from_peers += s->bytes_from_peers;
  total->bytes_from_origin += s->bytes_from_origin;
  total->blocks_verified += s->blocks_verified;
  total->blocks_rejected += s->blocks_rejected;
  total->peers_connected += s->peers_connected;
  /* the gateway's latest word on the peer port, whichever item it was */
  if (s->peer_port_reach_time > total->peer_port_reach_time)
    {
      total->peer_port_reach = s->peer_port_reach;
      total->peer_port_reach_time = s->peer_port_reach_time;
    }
}

static void
shared_free (gpointer data)
{
  Shared *sh = data;
  CoreShares *self = sh->shares;
  const char *urn = alv_swarm_get_urn (sh->swarm);
  AlvSwarmStats st;

  g_clear_handle_id (&sh->timer_id, g_source_remove);
  alv_swarm_stop (sh->swarm);
  alv_swarm_get_stats (sh->swarm, &st);
  st.peers_connected = 0;
  core_shares_sum_stats (&self->done_stats, &st);
  if (self->peers != NULL)
    alv_peer_server_unshare (self->peers, urn);
  if (self->store != NULL)
    alv_block_store_unpin (self->store, urn);
  g_object_unref (sh->swarm);
  g_free (sh);
}

static gboolean
on_share_expired (gpointer user_data)
{
  Shared *sh = user_data;
  CoreShares *self = sh->shares;

  sh->timer_id = 0;
  g_debug ("no longer sharing %s", alv_swarm_get_urn (sh->swarm));
  g_ptr_array_remove (self->shared, sh);
  if (self->expired != NULL)
    self->expired (self->user_data);
  return G_SOURCE_REMOVE;
}

CoreShares *
core_shares_new (CoreSharesExpiredFunc expired,
                 gpointer              user_data)
{
  CoreShares *self = g_new0 (CoreShares, 1);

  self->shared = g_ptr_array_new_with_free_func (shared_free);
  self->expired = expired;
  self->user_data = user_data;
  return self;
}

void
core_shares_clear (CoreShares *self)
{
  g_return_if_fail (self != NULL);

  g_ptr_array_set_size (self->shared, 0);
  g_clear_object (&self->peers);
  g_clear_object (&self->store);
}

void
core_shares_free (CoreShares *self)
{
  if (self == NULL)
    return;
  core_shares_clear (self);
  g_ptr_array_unref (self->shared);
  g_free (self);
}

void
core_shares_set_port (CoreShares    *self,
                      AlvBlockStore *store,
                      AlvPeerServer *peers)
{
  g_return_if_fail (self != NULL);

  g_set_object (&self->store, store);
  g_set_object (&self->peers, peers);
}

/* A played (or dropped) item stays shared for SHARE_LINGER seconds. */
void
core_shares_keep (CoreShares *self,
                  AlvSwarm   *swarm)
{
  Shared *sh;

  g_return_if_fail (self != NULL);
  g_return_if_fail (ALV_IS_SWARM (swarm));

  sh = g_new0 (Shared, 1);
  sh->shares = self;
  sh->swarm = swarm;
  sh->timer_id = g_timeout_add_seconds (SHARE_LINGER, on_share_expired, sh);
  g_ptr_array_add (self->shared, sh);
  while (self->shared->len > SHARE_MAX)
    g_ptr_array_remove_index (self->shared, 0);
}

/* The entry of @urn, or NULL (and its index in @index). */
static Shared *
lookup (CoreShares *self,
        const char *urn,
        guint      *index)
{
  for (guint i = 0; i < self->shared->len; i++)
    {
      Shared *sh = g_ptr_array_index (self->shared, i);

      if (g_strcmp0 (alv_swarm_get_urn (sh->swarm), urn) == 0)
        {
          *index = i;
          return sh;
        }
    }
  return NULL;
}

static AlvSwarm *
take_shared (CoreShares *self,
             const char *urn)
{
  guint i = 0;
  Shared *sh = lookup (self, urn, &i);
  AlvSwarm *swarm;

  if (sh == NULL)
    return NULL;
  swarm = g_steal_pointer (&sh->swarm);
  g_clear_handle_id (&sh->timer_id, g_source_remove);
  g_free (g_ptr_array_steal_index (self->shared, i));
  return swarm;
}

AlvSwarm *
core_shares_open (CoreShares                 *self,
                  const AlvGatewayResolution *res,
                  AlvGatewayClient           *gateway,
                  guint16                     listen_port,
                  GError                    **error)
{
  AlvSwarm *swarm;

  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (res != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  swarm = take_shared (self, res->urn);
  if (swarm != NULL)
    return swarm;
  swarm = alv_swarm_new_for_resolution (self->store, res, error);
  if (swarm == NULL)
    return NULL;
  alv_swarm_set_gateway (swarm, gateway, res->thex_uri,
                         self->peers != NULL ? alv_peer_server_get_port (self->peers) : 0);
  alv_swarm_set_listen_port (swarm, listen_port);
  alv_block_store_pin (self->store, res->urn);
  if (self->peers != NULL)
    alv_peer_server_share (self->peers, res->urn);
  alv_swarm_start (swarm);
  return swarm;
}

AlvSwarm *
core_shares_find (CoreShares *self,
                  const char *urn)
{
  Shared *sh;
  guint i;

  g_return_val_if_fail (self != NULL, NULL);

  sh = lookup (self, urn, &i);
  return sh != NULL ? sh->swarm : NULL;
}

guint
core_shares_get_count (CoreShares *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->shared->len;
}

void
core_shares_set_listen_port (CoreShares *self,
                             guint16     port)
{
  g_return_if_fail (self != NULL);

  for (guint i = 0; i < self->shared->len; i++)
    alv_swarm_set_listen_port (((Shared *) g_ptr_array_index (self->shared, i))->swarm, port);
}

void
core_shares_get_done_stats (CoreShares    *self,
                            AlvSwarmStats *stats)
{
  g_return_if_fail (self != NULL);

  *stats = self->done_stats;
}

void
core_shares_add_stats (CoreShares    *self,
                       AlvSwarmStats *total)
{
  AlvSwarmStats st;

  g_return_if_fail (self != NULL);

  for (guint i = 0; i < self->shared->len; i++)
    {
      alv_swarm_get_stats (((Shared *) g_ptr_array_index (self->shared, i))->swarm, &st);
      core_shares_sum_stats (total, &st);
    }
}
