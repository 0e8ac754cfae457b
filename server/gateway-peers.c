/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Peer table of the gateway.  Entries are keyed "ip:port" within a URN;
 * the IP is always the one the connection came from.  Every entry is on
 * two lists in the order it was last announced: its URN's and the whole
 * table's.  The TTL being the same for all, that is also the order in
 * which they expire, so expiry pops entries off the heads (lazily on
 * every access to a URN, and over the table in the caller's periodic
 * sweep), and making room when a URN's list or the table is full drops
 * the head: constant time per entry, however full the table (a clock that
 * never goes back is assumed: the monotonic one, or the simulator's).
 * Selection is a weighted random sample without replacement, with weight
 * 1 + the number of blocks the peer holds that the asker lacks, so useful
 * peers come first on average while every peer keeps a chance (load
 * spreads over seeds).  A peer the source function (the gateway's
 * connect-back result) says cannot be reached is never a candidate.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-peers.h"

#include <string.h>

#include "alv-block-map.h"
#include "alv-ocn-headers.h"

/* Candidates counted on the stack when picking (more: on the heap). */
#define SMALL_SAMPLE 256

typedef struct _Swarm Swarm;

typedef struct
{
  GInetSocketAddress *addr;
  char *key;                    /* "ip:port": its key in swarm->peers */
  char *ip;                     /* key of the per-address count */
  AlvBlockMap *have;            /* NULL: nothing */
  gboolean complete;
  gint64 expires;               /* monotonic µs */
  Swarm *swarm;
  GList swarm_link;             /* in swarm->order */
  GList table_link;             /* in peers->order */
} Peer;

struct _Swarm
{
  char *urn;                    /* its key in peers->swarms */
  guint n_blocks;
  GHashTable *peers;            /* "ip:port" → Peer */
  GQueue order;                 /* its Peers, least recently announced first */
};

struct _GatewayPeers
{
  guint ttl;
  guint max_per_urn;
  guint max_per_address;
  guint max_entries;
  GHashTable *swarms;           /* urn → Swarm */
  GHashTable *per_address;      /* ip → count (GUINT_TO_POINTER) */
  GQueue order;                 /* every Peer, least recently announced first */
  guint64 n_evicted;
  GRand *rand;
  GatewayPeersClock clock;
  gpointer clock_data;
  GatewayPeersSourceFunc is_source;
  gpointer is_source_data;
};

static gint64
peers_now (GatewayPeers *peers)
{
  return peers->clock != NULL ? peers->clock (peers->clock_data) : g_get_monotonic_time ();
}

static void
peer_free (Peer *peer)
{
  g_clear_object (&peer->addr);
  g_clear_pointer (&peer->have, alv_block_map_free);
  g_free (peer->key);
  g_free (peer->ip);
  g_free (peer);
}

static void
swarm_free (Swarm *swarm)
{
  g_hash_table_unref (swarm->peers);
  g_free (swarm->urn);
  g_free (swarm);
}

GatewayPeers *
gateway_peers_new (guint ttl_seconds,
                   guint max_per_urn,
                   guint max_per_address,
                   guint max_entries)
{
  GatewayPeers *peers = g_new0 (GatewayPeers, 1);

  peers->ttl = MAX (ttl_seconds, 1);
  peers->max_per_urn = MAX (max_per_urn, 1);
  peers->max_per_address = MAX (max_per_address, 1);
  peers->max_entries = MAX (max_entries, 1);
  /* keys belong to the values */
  peers->swarms = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) swarm_free);
  peers->per_address = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&peers->order);
  peers->rand = g_rand_new ();
  return peers;
}

void
gateway_peers_free (GatewayPeers *peers)
{
  if (peers == NULL)
    return;
  g_hash_table_unref (peers->swarms);
  g_hash_table_unref (peers->per_address);
  g_rand_free (peers->rand);
  g_free (peers);
}

void
gateway_peers_set_seed (GatewayPeers *peers,
                        guint32       seed)
{
  g_rand_set_seed (peers->rand, seed);
}

guint
gateway_peers_get_ttl (GatewayPeers *peers)
{
  return peers->ttl;
}

void
gateway_peers_set_source_func (GatewayPeers          *peers,
                               GatewayPeersSourceFunc func,
                               gpointer               user_data)
{
  peers->is_source = func;
  peers->is_source_data = user_data;
}

/* May @key be listed to others? */
static gboolean
may_list (GatewayPeers *peers,
          const char   *key)
{
  return peers->is_source == NULL || peers->is_source (key, peers->is_source_data);
}

static guint
address_count (GatewayPeers *peers,
               const char   *ip)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (peers->per_address, ip));
}

static void
address_adjust (GatewayPeers *peers,
                const char   *ip,
                int           delta)
{
  guint n = address_count (peers, ip);

  if (delta < 0 && n <= 1)
    g_hash_table_remove (peers->per_address, ip);
  else
    g_hash_table_replace (peers->per_address, g_strdup (ip),
                          GUINT_TO_POINTER (delta < 0 ? n - 1 : n + 1));
}

static Swarm *
swarm_new (GatewayPeers *peers,
           const char   *urn,
           guint         n_blocks)
{
  Swarm *swarm = g_new0 (Swarm, 1);

  swarm->urn = g_strdup (urn);
  swarm->n_blocks = n_blocks;
  swarm->peers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                        (GDestroyNotify) peer_free);
  g_queue_init (&swarm->order);
  g_hash_table_insert (peers->swarms, swarm->urn, swarm);
  return swarm;
}

/* Drops @swarm from the table once it has no entry left. */
static void
swarm_drop_if_empty (GatewayPeers *peers,
                     Swarm        *swarm)
{
  if (g_hash_table_size (swarm->peers) == 0)
    g_hash_table_remove (peers->swarms, swarm->urn);
}

/* The entry was announced now: last on both lists. */
static void
peer_touch (GatewayPeers *peers,
            Peer         *peer)
{
  g_queue_unlink (&peer->swarm->order, &peer->swarm_link);
  g_queue_push_tail_link (&peer->swarm->order, &peer->swarm_link);
  g_queue_unlink (&peers->order, &peer->table_link);
  g_queue_push_tail_link (&peers->order, &peer->table_link);
}

/* Removes @peer, keeping the counts right; its swarm stays, even empty. */
static void
remove_peer (GatewayPeers *peers,
             Peer         *peer)
{
  Swarm *swarm = peer->swarm;

  g_queue_unlink (&swarm->order, &peer->swarm_link);
  g_queue_unlink (&peers->order, &peer->table_link);
  address_adjust (peers, peer->ip, -1);
  g_hash_table_remove (swarm->peers, peer->key);
}

/* The entry of @swarm announced least recently, or NULL. */
static Peer *
swarm_oldest (Swarm *swarm)
{
  return swarm->order.head != NULL ? swarm->order.head->data : NULL;
}

/* The entry of the table announced least recently, or NULL. */
static Peer *
table_oldest (GatewayPeers *peers)
{
  return peers->order.head != NULL ? peers->order.head->data : NULL;
}

static guint
expire_swarm (GatewayPeers *peers,
              Swarm        *swarm,
              gint64        now)
{
  Peer *peer;
  guint n = 0;

  while ((peer = swarm_oldest (swarm)) != NULL && peer->expires <= now)
    {
      remove_peer (peers, peer);
      n++;
    }
  return n;
}

guint
gateway_peers_expire (GatewayPeers *peers)
{
  gint64 now = peers_now (peers);
  Peer *peer;
  guint n = 0;

  while ((peer = table_oldest (peers)) != NULL && peer->expires <= now)
    {
      Swarm *swarm = peer->swarm;

      remove_peer (peers, peer);
      swarm_drop_if_empty (peers, swarm);
      n++;
    }
  return n;
}

/* Makes room for one more entry of @swarm (nullable: a URN not in the
 * table yet), which stays in the table even if this empties it. */
static void
make_room (GatewayPeers *peers,
           Swarm        *swarm)
{
  Peer *victim = NULL;

  if (swarm != NULL && g_hash_table_size (swarm->peers) >= peers->max_per_urn)
    victim = swarm_oldest (swarm);
  else if (peers->order.length >= peers->max_entries)
    victim = table_oldest (peers);
  if (victim == NULL)
    return;

  {
    Swarm *victim_swarm = victim->swarm;

    remove_peer (peers, victim);
    if (victim_swarm != swarm)
      swarm_drop_if_empty (peers, victim_swarm);
    peers->n_evicted++;
  }
}

GatewayPeersStatus
gateway_peers_announce (GatewayPeers     *peers,
                        const char       *urn,
                        guint             n_blocks,
                        GInetAddress     *address,
                        guint16           port,
                        GatewayPeerEvent  event,
                        AlvBlockMap      *have)
{
  g_autoptr(AlvBlockMap) owned_have = have;
  g_autofree char *ip = g_inet_address_to_string (address);
  g_autoptr(GInetSocketAddress) addr = G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (address, port));
  g_autofree char *key = alv_alt_format_address (addr);
  gint64 now = peers_now (peers);
  Swarm *swarm = g_hash_table_lookup (peers->swarms, urn);
  Peer *peer = NULL;

  if (swarm != NULL)
    {
      expire_swarm (peers, swarm, now);
      peer = g_hash_table_lookup (swarm->peers, key);
    }

  if (event == GATEWAY_PEER_EVENT_STOPPED)
    {
      if (peer != NULL)
        remove_peer (peers, peer);
      if (swarm != NULL)
        swarm_drop_if_empty (peers, swarm);
      return GATEWAY_PEERS_OK;
    }

  if (peer == NULL)
    {
      if (address_count (peers, ip) >= peers->max_per_address)
        {
          if (swarm != NULL)
            swarm_drop_if_empty (peers, swarm);
          return GATEWAY_PEERS_ADDRESS_FULL;
        }
      make_room (peers, swarm);
      if (swarm == NULL)
        swarm = swarm_new (peers, urn, n_blocks);

      peer = g_new0 (Peer, 1);
      peer->addr = g_object_ref (addr);
      peer->key = g_steal_pointer (&key);
      peer->ip = g_strdup (ip);
      peer->swarm = swarm;
      peer->swarm_link.data = peer;
      peer->table_link.data = peer;
      g_hash_table_insert (swarm->peers, peer->key, peer);
      g_queue_push_tail_link (&swarm->order, &peer->swarm_link);
      g_queue_push_tail_link (&peers->order, &peer->table_link);
      address_adjust (peers, ip, +1);
    }
  else
    peer_touch (peers, peer);

  peer->expires = now + (gint64) peers->ttl * G_TIME_SPAN_SECOND;
  if (event == GATEWAY_PEER_EVENT_COMPLETED)
    {
      peer->complete = TRUE;
      g_clear_pointer (&peer->have, alv_block_map_free);
    }
  else if (owned_have != NULL)
    {
      peer->complete = alv_block_map_is_complete (owned_have);
      g_clear_pointer (&peer->have, alv_block_map_free);
      if (!peer->complete)
        peer->have = g_steal_pointer (&owned_have);
    }
  return GATEWAY_PEERS_OK;
}

/* Blocks @peer holds that @have lacks. */
static guint
count_useful (gboolean           complete,
                            const AlvBlockMap *peer_have,
                            guint              n_blocks,
                            const AlvBlockMap *have)
{
  guint have_n = have ? alv_block_map_count (have) : 0;
  guint n = 0;

  if (complete)
    return n_blocks - MIN (have_n, n_blocks);
  if (peer_have == NULL)
    return 0;
  if (have == NULL || alv_block_map_get_n_blocks (have) != alv_block_map_get_n_blocks (peer_have))
    return alv_block_map_count (peer_have);
  for (guint i = alv_block_map_first_set_after (peer_have, 0);
       i < alv_block_map_get_n_blocks (peer_have);
       i = alv_block_map_first_set_after (peer_have, i + 1))
    if (!alv_block_map_get (have, i))
      n++;
  return n;
}

/* A weighted random sample without replacement of at most @max of @n
 * candidates: their positions in @indexes[0..return value), picked with a
 * chance proportional to @weights (both of @n). */
static guint
pick_weighted (GRand         *rand,
               const guint64 *weights,
               guint         *indexes,
               guint          n,
               guint          max)
{
  /* no allocation for the usual few candidates */
  guint small[SMALL_SAMPLE];
  g_autofree guint *large = n > SMALL_SAMPLE ? g_new (guint, n) : NULL;
  guint *pool = large != NULL ? large : small;
  guint64 total = 0;
  guint len = n, n_out = 0;

  for (guint i = 0; i < n; i++)
    {
      pool[i] = i;
      total += weights[i];
    }
  /* weighted sampling without replacement: O(max × n), both bounded; a
   * candidate picked leaves the pool, the pool's last taking its place */
  while (n_out < max && len > 0)
    {
      guint64 r = (guint64) (g_rand_double (rand) * (double) total);
      guint i;

      for (i = 0; i + 1 < len; i++)
        {
          if (r < weights[pool[i]])
            break;
          r -= weights[pool[i]];
        }
      indexes[n_out++] = pool[i];
      total -= weights[pool[i]];
      pool[i] = pool[--len];
    }
  return n_out;
}

GPtrArray *
gateway_peers_select (GatewayPeers       *peers,
                      const char         *urn,
                      GInetSocketAddress *self,
                      const AlvBlockMap  *have,
                      guint               max)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GPtrArray) candidates = NULL;
  g_autoptr(GArray) weights = NULL;
  guint small[SMALL_SAMPLE];
  g_autofree guint *large = NULL;
  guint *indexes;
  guint n_picked;
  g_autofree char *self_key = self ? alv_alt_format_address (self) : NULL;
  Swarm *swarm = g_hash_table_lookup (peers->swarms, urn);
  GHashTableIter iter;
  gpointer key, value;

  if (swarm == NULL || max == 0)
    return out;
  expire_swarm (peers, swarm, peers_now (peers));
  if (g_hash_table_size (swarm->peers) == 0)
    {
      swarm_drop_if_empty (peers, swarm);
      return out;
    }

  candidates = g_ptr_array_new ();
  weights = g_array_new (FALSE, FALSE, sizeof (guint64));
  g_hash_table_iter_init (&iter, swarm->peers);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      Peer *peer = value;
      guint64 w;

      if ((self_key != NULL && strcmp (key, self_key) == 0) || !may_list (peers, key))
        continue;
      w = 1 + (guint64) count_useful (peer->complete, peer->have, swarm->n_blocks, have);
      g_ptr_array_add (candidates, peer);
      g_array_append_val (weights, w);
    }
  if (candidates->len > SMALL_SAMPLE)
    large = g_new (guint, candidates->len);
  indexes = large != NULL ? large : small;
  n_picked = pick_weighted (peers->rand, (const guint64 *) (void *) weights->data,
                            indexes, candidates->len, max);
  for (guint i = 0; i < n_picked; i++)
    g_ptr_array_add (out, g_object_ref (((Peer *) candidates->pdata[indexes[i]])->addr));
  return out;
}

guint
gateway_peers_count_holding (GatewayPeers *peers,
                             const char   *urn,
                             guint         block,
                             guint         max)
{
  Swarm *swarm = g_hash_table_lookup (peers->swarms, urn);
  GHashTableIter iter;
  gpointer key, value;
  guint n = 0;

  if (swarm == NULL || block >= swarm->n_blocks)
    return 0;
  expire_swarm (peers, swarm, peers_now (peers));
  if (g_hash_table_size (swarm->peers) == 0)
    {
      swarm_drop_if_empty (peers, swarm);
      return 0;
    }
  g_hash_table_iter_init (&iter, swarm->peers);
  while (n < max && g_hash_table_iter_next (&iter, &key, &value))
    {
      Peer *peer = value;

      if ((peer->complete || (peer->have != NULL && alv_block_map_get (peer->have, block))) &&
          may_list (peers, key))
        n++;
    }
  return n;
}

/* "ip:port" or "[ip6]:port" (alv_alt_format_address()'s form) */
static GInetSocketAddress *
parse_peer_key (const char *key)
{
  const char *colon = strrchr (key, ':');
  g_autofree char *host = NULL;
  g_autoptr(GInetAddress) inet = NULL;
  guint64 port;

  if (colon == NULL || !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &port, NULL))
    return NULL;
  if (key[0] == '[' && colon > key + 1 && colon[-1] == ']')
    host = g_strndup (key + 1, colon - key - 2);
  else
    host = g_strndup (key, colon - key);
  inet = g_inet_address_new_from_string (host);
  if (inet == NULL)
    return NULL;
  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (inet, (guint16) port));
}

GPtrArray *
gateway_peers_choose (GatewayPeers      *peers,
                      GPtrArray         *candidates,
                      guint              n_blocks,
                      const AlvBlockMap *have,
                      guint              max)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_object_unref);
  /* samples are of 4 × numwant + 1: on the stack unless numwant is far
   * above the default */
  guint64 small_weights[SMALL_SAMPLE];
  guint small_picked[SMALL_SAMPLE];
  g_autofree guint64 *large_weights = NULL;
  g_autofree guint *large_picked = NULL;
  guint64 *weights = small_weights;
  guint *picked = small_picked;
  g_autoptr(GPtrArray) listed = NULL;
  guint n;

  if (candidates->len > SMALL_SAMPLE)
    {
      weights = large_weights = g_new (guint64, candidates->len);
      picked = large_picked = g_new (guint, candidates->len);
    }
  listed = g_ptr_array_sized_new (candidates->len);
  for (guint i = 0; i < candidates->len; i++)
    {
      const GatewayPeerCandidate *c = candidates->pdata[i];

      if (!may_list (peers, c->key))
        continue;
      weights[listed->len] = 1 + (guint64) count_useful (c->complete, c->have, n_blocks, have);
      g_ptr_array_add (listed, candidates->pdata[i]);
    }
  n = pick_weighted (peers->rand, weights, picked, listed->len, max);
  for (guint i = 0; i < n; i++)
    {
      const GatewayPeerCandidate *c = listed->pdata[picked[i]];
      GInetSocketAddress *addr = parse_peer_key (c->key);

      if (addr != NULL)
        g_ptr_array_add (out, addr);
    }
  return out;
}

guint
gateway_peers_get_n_entries (GatewayPeers *peers)
{
  return peers->order.length;
}

guint
gateway_peers_get_max_entries (GatewayPeers *peers)
{
  return peers->max_entries;
}

guint64
gateway_peers_get_n_evicted (GatewayPeers *peers)
{
  return peers->n_evicted;
}

guint
gateway_peers_get_n_urns (GatewayPeers *peers)
{
  return g_hash_table_size (peers->swarms);
}

void
gateway_peers_set_clock (GatewayPeers      *peers,
                         GatewayPeersClock  clock,
                         gpointer           user_data)
{
  peers->clock = clock;
  peers->clock_data = user_data;
}
