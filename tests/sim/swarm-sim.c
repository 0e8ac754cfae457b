/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * swarm-sim: runs the swarm simulator (sim.c) once from the command line
 * and prints what it measured: a human table (per listener with
 * --verbose), then one JSON line, always the last line, for scripts.
 * --trace prints every action of every plan as the virtual clock runs,
 * for debugging small runs.  Built by `make`, not installed.
 */
#include "config.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "sim.h"

static void
print_table (const SimConfig *cfg,
             const SimResult *r,
             gboolean         verbose)
{
  if (verbose)
    {
      g_print ("%5s %4s %8s %6s %5s %8s %6s %7s %7s %6s %9s %9s %9s %5s %5s %5s\n",
               "#", "liar", "up kB/s", "lat ms", "joins", "startup", "stalls", "stall s",
               "lost s", "play s", "up kB", "peers kB", "origin kB", "o.req", "polls", "lease");
      for (guint k = 0; k < r->listeners->len; k++)
        {
          const SimListenerResult *l = &g_array_index (r->listeners, SimListenerResult, k);

          g_print ("%5u %4s %8.1f %6.1f %5u %8.3f %6u %7.2f %7.2f %6.1f %9.1f %9.1f %9.1f "
                   "%5" G_GUINT64_FORMAT " %5" G_GUINT64_FORMAT " %5" G_GUINT64_FORMAT "\n",
                   l->index, l->liar ? "yes" : "", l->uplink / 1000, l->distance_ms, l->joins,
                   l->first_startup, l->stalls, l->stall_seconds, l->lost_seconds,
                   l->played_seconds, l->bytes_uploaded / 1000.0, l->bytes_from_peers / 1000.0,
                   l->bytes_from_origin / 1000.0, l->origin_requests, l->polls, l->leases);
        }
      g_print ("\n");
    }

  g_print ("scenario: %u listeners, %u item(s) of %.0f s at %u bit/s, blocks of %u B, "
           "origin %.2gx (%s), join window %.0f s, start buffer %.2g s, churn %.2g/min, liars %.2g, "
           "unreachable %.2g, seed %u\n",
           cfg->n_listeners, cfg->n_items, cfg->item_seconds, cfg->bitrate, cfg->block_size,
           cfg->origin_rate, cfg->origin_model == SIM_ORIGIN_DROPTAIL ? "droptail" : "fair",
           cfg->join_window, cfg->start_buffer, cfg->churn, cfg->liars, cfg->unreachable, cfg->seed);
  g_print ("%-34s %.3f\n", "origin copies per item", r->origin_copies);
  g_print ("%-34s %u/%u\n", "listeners without a stall", r->stall_free, r->n_listeners);
  if (r->n_unreachable > 0)
    g_print ("%-34s %u/%u without a stall; %" G_GUINT64_FORMAT " requests and polls sent to them\n",
             "unreachable listeners", r->stall_free_unreachable, r->n_unreachable,
             r->requests_unreachable);
  g_print ("%-34s %u, %.2f s in all\n", "stalls", r->n_stalls, r->stall_seconds);
  g_print ("%-34s p50 %.3f s, p95 %.3f s, max %.3f s (%u tune-ins, %u never started)\n",
           "startup", r->startup_p50, r->startup_p95, r->startup_max, r->startups,
           r->never_started);
  g_print ("%-34s %.4f\n", "continuity (played / (played+stall))", r->continuity);
  g_print ("%-34s %.3f\n", "peer upload utilisation", r->peer_upload_utilisation);
  g_print ("%-34s %.1f MB from peers, %.1f MB from the origin (%.1f MB uploaded)\n",
           "bytes received", r->bytes_from_peers / 1e6, r->bytes_from_origin / 1e6,
           r->bytes_uploaded / 1e6);
  g_print ("%-34s %.2f s\n", "lost tail (behind at the slot's end)", r->lost_seconds);
  g_print ("%-34s %" G_GUINT64_FORMAT " (corrupt blocks received: %" G_GUINT64_FORMAT ")\n",
           "corrupt bytes played", r->corrupt_bytes_played, r->corrupt_blocks_received);
  g_print ("%-34s %" G_GUINT64_FORMAT " to peers, %" G_GUINT64_FORMAT " to the origin; "
           "%" G_GUINT64_FORMAT " busy, %" G_GUINT64_FORMAT " not held, %" G_GUINT64_FORMAT
           " waited for a pull, %" G_GUINT64_FORMAT " failed, %" G_GUINT64_FORMAT " cancelled, %"
           G_GUINT64_FORMAT " duplicate blocks\n",
           "requests", r->requests_peer, r->requests_origin, r->answers_busy,
           r->answers_not_held, r->requests_waited, r->requests_failed, r->requests_cancelled,
           r->duplicate_blocks);
  g_print ("%-34s %" G_GUINT64_FORMAT " polls, %" G_GUINT64_FORMAT " announces, %"
           G_GUINT64_FORMAT " leases granted, %" G_GUINT64_FORMAT " lost SYNs, %"
           G_GUINT64_FORMAT " leaves\n",
           "control", r->polls, r->announces, r->leases_granted, r->syn_losses, r->leaves);
  g_print ("%-34s %" G_GUINT64_FORMAT "\n", "planner anomalies", r->anomalies);
  g_print ("%-34s %" G_GUINT64_FORMAT " ticks (%.2f s wall in them), %" G_GUINT64_FORMAT
           " actions\n", "planner", r->ticks, r->tick_seconds, r->actions);
  g_print ("%-34s %" G_GUINT64_FORMAT " events, %.1f s simulated, %.2f s wall, peak RSS %.1f MiB%s\n",
           "cost", r->events, r->simulated_seconds, r->wall_seconds, r->peak_rss_kib / 1024.0,
           r->aborted ? " (ABORTED)" : "");
}

int
main (int   argc,
      char *argv[])
{
  SimConfig cfg;
  SimResult result;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *origin_model = NULL;
  g_autofree char *uplinks = NULL;
  g_autofree char *json = NULL;
  gint n = -1, seed = -1, items = -1, bitrate = -1, block_size = -1, gateway_max = -1;
  gint origin_leases = -1, lease_bytes = -1;
  gint64 max_events = -1;
  double max_wall = -1;
  gboolean progress = FALSE;
  double seconds = -1, origin_rate = -1, peer_rate = -1, downlink = -1, join_window = -1;
  double churn = -1, liars = -1, lat_min = -1, lat_max = -1, start_buffer = -1, tune_behind = -1;
  double unreachable = -1;
  gint head_bytes = -1;
  gboolean verbose = FALSE, trace = FALSE, no_verify = FALSE;
  gboolean ok;
  GOptionEntry entries[] = {
    { "listeners", 'n', 0, G_OPTION_ARG_INT, &n, "Listeners (16)", "N" },
    { "seed", 0, 0, G_OPTION_ARG_INT, &seed, "Random seed (1)", "S" },
    { "items", 0, 0, G_OPTION_ARG_INT, &items, "Items back to back (1)", "K" },
    { "seconds", 0, 0, G_OPTION_ARG_DOUBLE, &seconds, "Length of an item (180)", "S" },
    { "bitrate", 0, 0, G_OPTION_ARG_INT, &bitrate, "Bits per second (128000)", "B" },
    { "block-size", 0, 0, G_OPTION_ARG_INT, &block_size, "Block size in bytes (8192, the gateway's)", "B" },
    { "origin-rate", 0, 0, G_OPTION_ARG_DOUBLE, &origin_rate,
      "Origin uplink, times the bitrate (4)", "X" },
    { "origin-model", 0, 0, G_OPTION_ARG_STRING, &origin_model,
      "fair (processor sharing) or droptail (FIFO home line) (fair)", "M" },
    { "peer-rate", 0, 0, G_OPTION_ARG_DOUBLE, &peer_rate,
      "Listener uplink, times the bitrate (2)", "X" },
    { "uplinks", 0, 0, G_OPTION_ARG_STRING, &uplinks,
      "Mixed uplinks: FRACTION:MULTIPLE,… (e.g. 0.33:0.8,0.33:1.5,0.34:3)", "LIST" },
    { "downlink", 0, 0, G_OPTION_ARG_DOUBLE, &downlink,
      "Listener downlink, times the bitrate (10)", "X" },
    { "join-window", 0, 0, G_OPTION_ARG_DOUBLE, &join_window,
      "Listeners tune in over this many seconds; 0: all at once (20)", "S" },
    { "start-buffer", 0, 0, G_OPTION_ARG_DOUBLE, &start_buffer,
      "Seconds of audio a player holds before it starts (2, as bench-swarm.py's; it resumes after a stall with 1)", "S" },
    { "tune-behind", 0, 0, G_OPTION_ARG_DOUBLE, &tune_behind,
      "A listener tunes in this many seconds behind the live position, never before the item's start (0)", "S" },
    { "head-bytes", 0, 0, G_OPTION_ARG_INT, &head_bytes,
      "Bytes of the item's head a listener tuning in needs before it can start: 0 for MP3, whose head comes with the gateway's answer (the default), 8192 for Ogg and WebM, as the core", "B" },
    { "churn", 0, 0, G_OPTION_ARG_DOUBLE, &churn,
      "Fraction of listeners leaving per minute (0)", "P" },
    { "liars", 0, 0, G_OPTION_ARG_DOUBLE, &liars,
      "Fraction of listeners serving corrupt blocks (0)", "F" },
    { "unreachable", 0, 0, G_OPTION_ARG_DOUBLE, &unreachable,
      "Fraction of listeners that accept no connection (behind NAT; 0)", "F" },
    { "lat-min", 0, 0, G_OPTION_ARG_DOUBLE, &lat_min,
      "Smallest one-way distance of a listener, ms (5)", "MS" },
    { "lat-max", 0, 0, G_OPTION_ARG_DOUBLE, &lat_max,
      "Largest one-way distance of a listener, ms (40)", "MS" },
    { "max-events", 0, 0, G_OPTION_ARG_INT64, &max_events,
      "Abort after this many events (2000000000)", "N" },
    { "max-wall", 0, 0, G_OPTION_ARG_DOUBLE, &max_wall,
      "Abort after this many seconds of wall time, printing what was measured (none)", "S" },
    { "progress", 0, 0, G_OPTION_ARG_NONE, &progress,
      "Say how far the run is on stderr every 10 s", NULL },
    { "origin-leases", 0, 0, G_OPTION_ARG_INT, &origin_leases,
      "Origin leases running at once per item, as the gateway's --origin-leases (1)", "N" },
    { "lease-bytes", 0, 0, G_OPTION_ARG_INT, &lease_bytes,
      "Length of an origin lease's run in bytes, at least 4096 (65536, the gateway's)", "B" },
    { "gateway-max-peers", 0, 0, G_OPTION_ARG_INT, &gateway_max,
      "The gateway's peer entries per item (1000, its default)", "N" },
    { "no-verify", 0, 0, G_OPTION_ARG_NONE, &no_verify,
      "Store blocks that fail verification (shows that corrupt bytes are counted)", NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "A line per listener", NULL },
    { "trace", 0, 0, G_OPTION_ARG_NONE, &trace, "Print every action (small runs)", NULL },
    G_OPTION_ENTRY_NULL
  };

  setlocale (LC_ALL, "");
  context = g_option_context_new ("- simulate a station swarm with the real planner");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("swarm-sim: %s\n", error->message);
      return 2;
    }

  sim_config_init (&cfg);
#define SET_IF(var, field, cond) \
  if (cond)                      \
    cfg.field = var
  SET_IF (n, n_listeners, n >= 0);
  SET_IF ((guint32) seed, seed, seed >= 0);
  SET_IF (items, n_items, items >= 0);
  SET_IF (seconds, item_seconds, seconds >= 0);
  SET_IF (bitrate, bitrate, bitrate >= 0);
  SET_IF (block_size, block_size, block_size >= 0);
  SET_IF (origin_rate, origin_rate, origin_rate >= 0);
  SET_IF (peer_rate, peer_rate, peer_rate >= 0);
  SET_IF (downlink, downlink, downlink >= 0);
  SET_IF (join_window, join_window, join_window >= 0);
  SET_IF (start_buffer, start_buffer, start_buffer >= 0);
  SET_IF (tune_behind, tune_behind, tune_behind >= 0);
  SET_IF ((guint) head_bytes, head_bytes, head_bytes >= 0);
  SET_IF (churn, churn, churn >= 0);
  SET_IF (liars, liars, liars >= 0);
  SET_IF (unreachable, unreachable, unreachable >= 0);
  SET_IF (lat_min, lat_min_ms, lat_min >= 0);
  SET_IF (lat_max, lat_max_ms, lat_max >= 0);
  SET_IF ((guint64) max_events, max_events, max_events >= 0);
  SET_IF (gateway_max, gateway_max_peers, gateway_max >= 0);
  SET_IF (origin_leases, origin_leases, origin_leases >= 0);
  SET_IF (lease_bytes, lease_bytes, lease_bytes >= 0);
  SET_IF (max_wall, max_wall_seconds, max_wall >= 0);
#undef SET_IF
  if (cfg.lease_bytes < 4096)
    {
      g_printerr ("swarm-sim: --lease-bytes must be at least 4096\n");
      return 2;
    }
  if (lat_min >= 0 && lat_max < 0 && cfg.lat_max_ms < cfg.lat_min_ms)
    cfg.lat_max_ms = cfg.lat_min_ms;
  cfg.no_verify = no_verify;
  cfg.progress = progress;
  cfg.trace = trace;
  if (origin_model != NULL)
    {
      if (strcmp (origin_model, "fair") == 0)
        cfg.origin_model = SIM_ORIGIN_FAIR;
      else if (strcmp (origin_model, "droptail") == 0)
        cfg.origin_model = SIM_ORIGIN_DROPTAIL;
      else
        {
          g_printerr ("swarm-sim: --origin-model must be fair or droptail\n");
          return 2;
        }
    }
  if (uplinks != NULL && !sim_config_parse_uplinks (&cfg, uplinks, &error))
    {
      g_printerr ("swarm-sim: %s\n", error->message);
      return 2;
    }

  ok = sim_run (&cfg, &result, &error);
  if (!ok && result.listeners->len == 0)
    {
      g_printerr ("swarm-sim: %s\n", error->message);
      sim_result_clear (&result);
      return 2;
    }
  print_table (&cfg, &result, verbose);
  if (!ok)
    g_printerr ("swarm-sim: %s\n", error->message);
  json = sim_result_to_json (&cfg, &result);
  g_print ("%s\n", json);
  sim_result_clear (&result);
  return ok ? 0 : 1;
}
