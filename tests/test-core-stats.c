/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core's Statistics (core-stats.c) without a daemon: the rates'
 * smoothing on a clock given as input, and every key of the a{sv} the
 * D-Bus interface documents, with the item's keys only while one plays.
 */
#include "config.h"

#include <glib.h>

#include "core-stats.h"

#define SEC G_USEC_PER_SEC

static void
test_rates (void)
{
  CoreRates r = { 0, };

  /* the first totals only set the base */
  core_rates_update (&r, 5000, 7000, 10 * SEC);
  g_assert_cmpfloat (r.down, ==, 0);
  g_assert_cmpfloat (r.up, ==, 0);

  /* 1000 B down and 400 B up in a second: a quarter of each */
  core_rates_update (&r, 6000, 7400, 11 * SEC);
  g_assert_cmpfloat_with_epsilon (r.down, 250, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.up, 100, 1e-9);

  /* 2000 B down in two seconds, nothing up */
  core_rates_update (&r, 8000, 7400, 13 * SEC);
  g_assert_cmpfloat_with_epsilon (r.down, 250 + (1000 - 250) / 4.0, 1e-9);
  g_assert_cmpfloat_with_epsilon (r.up, 75, 1e-9);

  /* a clock that did not move, then a total that went back: the rates
   * stay, the base moves */
  core_rates_update (&r, 9000, 7400, 13 * SEC);
  g_assert_cmpfloat_with_epsilon (r.down, 437.5, 1e-9);
  core_rates_update (&r, 100, 7400, 14 * SEC);
  g_assert_cmpfloat_with_epsilon (r.down, 437.5, 1e-9);
  g_assert_cmpuint (r.last_down, ==, 100);
  core_rates_update (&r, 100 + 4 * 437.5, 7400, 15 * SEC);
  g_assert_cmpfloat_with_epsilon (r.down, 437.5 + (1750 - 437.5) / 4, 1e-9);
}

static guint64
lookup_t (GVariant   *v,
          const char *key)
{
  guint64 x = G_MAXUINT64;

  g_assert_true (g_variant_lookup (v, key, "t", &x));
  return x;
}

static guint32
lookup_u (GVariant   *v,
          const char *key)
{
  guint32 x = G_MAXUINT32;

  g_assert_true (g_variant_lookup (v, key, "u", &x));
  return x;
}

static char *
lookup_s (GVariant   *v,
          const char *key)
{
  char *x = NULL;

  g_assert_true (g_variant_lookup (v, key, "s", &x));
  return x;
}

static void
test_variant (void)
{
  CoreStats st = { 0, };
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariant) w = NULL;
  g_autofree char *reach = NULL, *mapping = NULL, *external = NULL;
  g_autofree char *external2 = NULL;

  st.total.bytes_from_peers = 101;
  st.total.bytes_from_origin = 202;
  st.bytes_from_origin = 3000;
  st.total.peers_connected = 4;
  st.total.blocks_verified = 505;
  st.total.blocks_rejected = 6;
  st.total.peer_port_reach = ALV_REACHABLE_NO;
  st.peers.bytes_uploaded = 707;
  st.peers.active_uploads = 8;
  st.rates.down = 909.9;
  st.rates.up = 1010.2;
  st.mapping = ALV_PORT_MAPPING_PCP;
  st.external = "192.0.2.7:7011";
  st.item.peers_known = 12;
  st.item.peers_connected = 13;
  st.item.bytes_from_peers = 14;
  st.item.bytes_from_origin = 15;
  st.item.blocks_held = 16;
  st.item.n_blocks = 17;

  /* no item playing: the totals only */
  v = g_variant_ref_sink (core_stats_to_variant (&st));
  g_assert_true (g_variant_is_of_type (v, G_VARIANT_TYPE_VARDICT));
  g_assert_cmpuint (lookup_t (v, "bytes-from-peers"), ==, 101);
  g_assert_cmpuint (lookup_t (v, "bytes-from-origin"), ==, 3202);
  g_assert_cmpuint (lookup_t (v, "bytes-uploaded"), ==, 707);
  g_assert_cmpuint (lookup_u (v, "peers-connected"), ==, 4);
  g_assert_cmpuint (lookup_t (v, "blocks-verified"), ==, 505);
  g_assert_cmpuint (lookup_t (v, "blocks-rejected"), ==, 6);
  g_assert_cmpuint (lookup_t (v, "download-rate"), ==, 909);
  g_assert_cmpuint (lookup_t (v, "upload-rate"), ==, 1010);
  g_assert_cmpuint (lookup_u (v, "peers-uploading-to"), ==, 8);
  reach = lookup_s (v, "peer-port-reachable");
  g_assert_cmpstr (reach, ==, "no");
  mapping = lookup_s (v, "peer-port-mapping");
  g_assert_cmpstr (mapping, ==, "pcp");
  external = lookup_s (v, "peer-port-external");
  g_assert_cmpstr (external, ==, "192.0.2.7:7011");
  g_assert_cmpuint (g_variant_n_children (v), ==, 12);
  g_assert_null (g_variant_lookup_value (v, "item-blocks", NULL));

  /* an item playing adds its own six; not mapped: an empty address */
  st.has_item = TRUE;
  st.external = NULL;
  w = g_variant_ref_sink (core_stats_to_variant (&st));
  g_assert_cmpuint (g_variant_n_children (w), ==, 18);
  g_assert_cmpuint (lookup_u (w, "item-peers-known"), ==, 12);
  g_assert_cmpuint (lookup_u (w, "item-peers-active"), ==, 13);
  g_assert_cmpuint (lookup_t (w, "item-bytes-from-peers"), ==, 14);
  g_assert_cmpuint (lookup_t (w, "item-bytes-from-origin"), ==, 15);
  g_assert_cmpuint (lookup_t (w, "item-blocks-held"), ==, 16);
  g_assert_cmpuint (lookup_t (w, "item-blocks"), ==, 17);
  external2 = lookup_s (w, "peer-port-external");
  g_assert_cmpstr (external2, ==, "");
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/stats/rates", test_rates);
  g_test_add_func ("/core/stats/variant", test_variant);
  return g_test_run ();
}
