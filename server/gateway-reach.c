/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Connect-back policy of the gateway.  Every address:port the gateway
 * knows something of is one entry, keyed "ip:port": queued (on the FIFO
 * of checks waiting), running, or done (a result, on a list in the order
 * the results came, which with one TTL for all is their expiry order, so
 * expiry and making room pop the head: constant time per entry).  An
 * address's queued and running checks are counted so that one address
 * announcing many ports cannot fill the queue.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-reach.h"

#include "alv-ocn-headers.h"

typedef enum
{
  ENTRY_QUEUED,
  ENTRY_RUNNING,
  ENTRY_DONE,
} EntryState;

typedef struct
{
  char *key;                    /* "ip:port": its key in reach->entries */
  char *ip;                     /* key of the per-address count */
  GInetSocketAddress *target;   /* observed address, announced port */
  EntryState state;
  gboolean reachable;           /* ENTRY_DONE: the result */
  gint64 expires;               /* ENTRY_DONE: µs */
  GList link;                   /* in reach->queue or reach->results */
} Entry;

struct _GatewayReach
{
  guint ttl;
  guint max_running;
  guint max_queued;
  guint per_address;
  guint max_results;
  GHashTable *entries;          /* "ip:port" → Entry */
  GHashTable *per_ip;           /* ip → checks queued or running (GUINT_TO_POINTER) */
  GQueue queue;                 /* ENTRY_QUEUED, oldest first */
  GQueue results;               /* ENTRY_DONE, oldest first */
  guint n_running;
  guint64 n_dropped;
  guint64 n_results[2];         /* [reachable] */
};

static void
entry_free (Entry *e)
{
  g_clear_object (&e->target);
  g_free (e->key);
  g_free (e->ip);
  g_free (e);
}

GatewayReach *
gateway_reach_new (guint ttl_seconds,
                   guint max_running,
                   guint max_queued,
                   guint per_address,
                   guint max_results)
{
  GatewayReach *reach = g_new0 (GatewayReach, 1);

  reach->ttl = MAX (ttl_seconds, 1);
  reach->max_running = MAX (max_running, 1);
  reach->max_queued = max_queued;
  reach->per_address = MAX (per_address, 1);
  reach->max_results = MAX (max_results, 1);
  /* keys belong to the values */
  reach->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) entry_free);
  reach->per_ip = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_queue_init (&reach->queue);
  g_queue_init (&reach->results);
  return reach;
}

void
gateway_reach_free (GatewayReach *reach)
{
  if (reach == NULL)
    return;
  g_hash_table_unref (reach->entries);
  g_hash_table_unref (reach->per_ip);
  g_free (reach);
}

static guint
ip_count (GatewayReach *reach,
          const char   *ip)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (reach->per_ip, ip));
}

/* @ip has one check more (+1) or one less (-1) queued or running. */
static void
ip_adjust (GatewayReach *reach,
           const char   *ip,
           int           delta)
{
  guint n = (guint) ((int) ip_count (reach, ip) + delta);

  if (n > 0)
    g_hash_table_replace (reach->per_ip, g_strdup (ip), GUINT_TO_POINTER (n));
  else
    g_hash_table_remove (reach->per_ip, ip);
}

static void
drop_result (GatewayReach *reach,
             Entry        *e)
{
  g_queue_unlink (&reach->results, &e->link);
  g_hash_table_remove (reach->entries, e->key);
}

static AlvReachable
result_of (const Entry *e)
{
  return e->reachable ? ALV_REACHABLE_YES : ALV_REACHABLE_NO;
}

AlvReachable
gateway_reach_observe (GatewayReach *reach,
                       GInetAddress *observed,
                       guint16       port,
                       gint64        now)
{
  g_autoptr(GSocketAddress) target = NULL;
  g_autofree char *key = NULL;
  Entry *e;

  g_return_val_if_fail (G_IS_INET_ADDRESS (observed), ALV_REACHABLE_UNKNOWN);

  target = g_inet_socket_address_new (observed, port);
  key = alv_alt_format_address (G_INET_SOCKET_ADDRESS (target));
  e = g_hash_table_lookup (reach->entries, key);
  if (e != NULL && e->state == ENTRY_DONE)
    {
      if (e->expires > now)
        return result_of (e);
      drop_result (reach, e);
      e = NULL;
    }
  if (e != NULL)
    return ALV_REACHABLE_UNKNOWN;       /* queued or running */

  {
    g_autofree char *ip = g_inet_address_to_string (observed);

    if (reach->queue.length >= reach->max_queued || ip_count (reach, ip) >= reach->per_address)
      {
        reach->n_dropped++;
        return ALV_REACHABLE_UNKNOWN;
      }
    e = g_new0 (Entry, 1);
    e->key = g_steal_pointer (&key);
    e->ip = g_steal_pointer (&ip);
    e->target = G_INET_SOCKET_ADDRESS (g_steal_pointer (&target));
    e->state = ENTRY_QUEUED;
    e->link.data = e;
    g_hash_table_insert (reach->entries, e->key, e);
    g_queue_push_tail_link (&reach->queue, &e->link);
    ip_adjust (reach, e->ip, +1);
  }
  return ALV_REACHABLE_UNKNOWN;
}

GInetSocketAddress *
gateway_reach_next (GatewayReach *reach)
{
  GList *link;
  Entry *e;

  if (reach->n_running >= reach->max_running || reach->queue.head == NULL)
    return NULL;
  link = g_queue_pop_head_link (&reach->queue);
  e = link->data;
  e->state = ENTRY_RUNNING;
  reach->n_running++;
  return g_object_ref (e->target);
}

void
gateway_reach_done (GatewayReach       *reach,
                    GInetSocketAddress *target,
                    gboolean            reachable,
                    gint64              now)
{
  g_autofree char *key = alv_alt_format_address (target);
  Entry *e = key != NULL ? g_hash_table_lookup (reach->entries, key) : NULL;

  g_return_if_fail (e != NULL && e->state == ENTRY_RUNNING);

  reach->n_running--;
  ip_adjust (reach, e->ip, -1);
  e->state = ENTRY_DONE;
  e->reachable = reachable;
  reach->n_results[reachable ? 1 : 0]++;
  e->expires = now + (gint64) reach->ttl * G_USEC_PER_SEC;
  g_queue_push_tail_link (&reach->results, &e->link);
  while (reach->results.length > reach->max_results)
    drop_result (reach, reach->results.head->data);
}

AlvReachable
gateway_reach_lookup (GatewayReach *reach,
                      const char   *key,
                      gint64        now)
{
  Entry *e = g_hash_table_lookup (reach->entries, key);

  if (e == NULL || e->state != ENTRY_DONE || e->expires <= now)
    return ALV_REACHABLE_UNKNOWN;
  return result_of (e);
}

guint
gateway_reach_expire (GatewayReach *reach,
                      gint64        now)
{
  guint n = 0;

  while (reach->results.head != NULL
         && ((Entry *) reach->results.head->data)->expires <= now)
    {
      drop_result (reach, reach->results.head->data);
      n++;
    }
  return n;
}

guint
gateway_reach_get_n_running (GatewayReach *reach)
{
  return reach->n_running;
}

guint
gateway_reach_get_n_queued (GatewayReach *reach)
{
  return reach->queue.length;
}

guint64
gateway_reach_get_n_results (GatewayReach *reach,
                             gboolean      reachable)
{
  return reach->n_results[reachable ? 1 : 0];
}

guint64
gateway_reach_get_n_dropped (GatewayReach *reach)
{
  return reach->n_dropped;
}
