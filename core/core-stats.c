/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core's Statistics: rates smoothed from totals, and the property's
 * a{sv}.  See core-stats.h.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "core-stats.h"

#include "alv-ocn-headers.h"

/* each second's rate moves the smoothed one by this fraction */
#define RATE_WEIGHT 4

/* @down and @up are totals in bytes at @now (monotonic µs).  A total that
 * went back (a counter reset) or a clock that did not move only rebases:
 * the rates keep their values. */
void
core_rates_update (CoreRates *rates,
                   guint64    down,
                   guint64    up,
                   gint64     now)
{
  if (rates->last_time > 0 && now > rates->last_time && down >= rates->last_down &&
      up >= rates->last_up)
    {
      double dt = (now - rates->last_time) / (double) G_USEC_PER_SEC;

      rates->down += ((down - rates->last_down) / dt - rates->down) / RATE_WEIGHT;
      rates->up += ((up - rates->last_up) / dt - rates->up) / RATE_WEIGHT;
    }
  rates->last_down = down;
  rates->last_up = up;
  rates->last_time = now;
}

#define ADD(key, value) g_variant_builder_add (&b, "{sv}", (key), (value))

/* A floating a{sv}, the keys as data/org.alluvium.Core1.xml lists them. */
GVariant *
core_stats_to_variant (const CoreStats *stats)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  ADD ("bytes-from-peers", g_variant_new_uint64 (stats->total.bytes_from_peers));
  ADD ("bytes-from-origin",
       g_variant_new_uint64 (stats->bytes_from_origin + stats->total.bytes_from_origin));
  ADD ("bytes-uploaded", g_variant_new_uint64 (stats->peers.bytes_uploaded));
  ADD ("peers-connected", g_variant_new_uint32 (stats->total.peers_connected));
  ADD ("blocks-verified", g_variant_new_uint64 (stats->total.blocks_verified));
  ADD ("blocks-rejected", g_variant_new_uint64 (stats->total.blocks_rejected));
  ADD ("download-rate", g_variant_new_uint64 ((guint64) stats->rates.down));
  ADD ("upload-rate", g_variant_new_uint64 ((guint64) stats->rates.up));
  ADD ("peers-uploading-to", g_variant_new_uint32 (stats->peers.active_uploads));
  ADD ("peer-port-reachable",
       g_variant_new_string (alv_reachable_to_string (stats->total.peer_port_reach)));
  ADD ("peer-port-mapping", g_variant_new_string (alv_port_mapping_to_string (stats->mapping)));
  ADD ("peer-port-external", g_variant_new_string (stats->external != NULL ? stats->external : ""));
  /* the item playing, as a BitTorrent client shows a torrent */
  if (stats->has_item)
    {
      ADD ("item-peers-known", g_variant_new_uint32 (stats->item.peers_known));
      ADD ("item-peers-active", g_variant_new_uint32 (stats->item.peers_connected));
      ADD ("item-bytes-from-peers", g_variant_new_uint64 (stats->item.bytes_from_peers));
      ADD ("item-bytes-from-origin", g_variant_new_uint64 (stats->item.bytes_from_origin));
      ADD ("item-blocks-held", g_variant_new_uint64 (stats->item.blocks_held));
      ADD ("item-blocks", g_variant_new_uint64 (stats->item.n_blocks));
    }
  return g_variant_builder_end (&b);
}
