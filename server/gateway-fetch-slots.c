/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Per-origin job counts (see gateway-fetch-slots.h): a table of origin
 * → running jobs, an origin leaving it when its last job ends, so it
 * holds no more origins than jobs run.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-fetch-slots.h"

struct _GatewayFetchSlots
{
  guint per_origin;
  GHashTable *running;          /* origin → count (as a pointer) */
};

GatewayFetchSlots *
gateway_fetch_slots_new (guint per_origin)
{
  GatewayFetchSlots *slots = g_new0 (GatewayFetchSlots, 1);

  slots->per_origin = per_origin;
  slots->running = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return slots;
}

void
gateway_fetch_slots_free (GatewayFetchSlots *slots)
{
  if (slots == NULL)
    return;
  g_hash_table_unref (slots->running);
  g_free (slots);
}

guint
gateway_fetch_slots_get_running (GatewayFetchSlots *slots,
                                 const char        *origin)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (slots->running, origin));
}

gboolean
gateway_fetch_slots_is_full (GatewayFetchSlots *slots,
                             const char        *origin)
{
  return slots->per_origin > 0
         && gateway_fetch_slots_get_running (slots, origin) >= slots->per_origin;
}

void
gateway_fetch_slots_take (GatewayFetchSlots *slots,
                          const char        *origin)
{
  guint n = gateway_fetch_slots_get_running (slots, origin);

  g_hash_table_replace (slots->running, g_strdup (origin), GUINT_TO_POINTER (n + 1));
}

void
gateway_fetch_slots_give_back (GatewayFetchSlots *slots,
                               const char        *origin)
{
  guint n = gateway_fetch_slots_get_running (slots, origin);

  g_return_if_fail (n > 0);
  if (n == 1)
    g_hash_table_remove (slots->running, origin);
  else
    g_hash_table_replace (slots->running, g_strdup (origin), GUINT_TO_POINTER (n - 1));
}
