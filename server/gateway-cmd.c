/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Command line of `alluvium-server gateway`.  Everything is validated
 * before the gateway binds; once it listens it prints
 * "listening on http://HOST:PORT/" on stdout (and writes the URL to
 * --ready-file, atomically) so scripts and tests can start it on port 0.
 * SIGINT and SIGTERM stop it cleanly: pending jobs are cancelled and
 * queued state writes finished.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-cmd.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <glib/gi18n-lib.h>
#include <glib-unix.h>
#include <gio/gio.h>

#include "alv-listener.h"
#include "gateway-dbus.h"
#include "gateway-server.h"

static gboolean
quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_CONTINUE;
}

static int
usage_error (GOptionContext *context G_GNUC_UNUSED,
             const char     *message)
{
  g_printerr ("alluvium-server gateway: %s\n", message);
  g_printerr ("%s\n", _("Try “alluvium-server gateway --help”."));
  return 2;
}

static gboolean
to_uint (gint64      value,
         guint      *out,
         const char *name,
         GError    **error)
{
  if (value < 0 || value > G_MAXUINT32)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   _("%s must be a number from 0 to %u"), name, G_MAXUINT32);
      return FALSE;
    }
  *out = (guint) value;
  return TRUE;
}

int
server_gateway_main (int    argc,
                     char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GatewayServer) server = NULL;
  g_autoptr(GMainLoop) loop = NULL;
  g_autoptr(GatewayDbus) dbus = NULL;
  GatewayConfig config;
  g_autofree char *address = NULL;
  g_autofree char *docroot = NULL;
  g_autofree char *base_url = NULL;
  g_autofree char *state_dir = NULL;
  g_autofree char *store = NULL;
  g_autofree char *ready_file = NULL;
  g_autofree char *dbus_bus = NULL;
  g_auto(GStrv) origins = NULL;
  g_auto(GStrv) proxies = NULL;
  gboolean allow_private = FALSE, allow_query = FALSE, verbose = FALSE;
  gint64 port = -1, max_media = -1, rate = -1, burst = -1, max_header = -1, max_peers = -1, leases = -1;
  gint64 max_entries = -1;
  gint64 per_urn = -1, per_addr = -1, ttl = -1, revalidate = -1, wait = -1, retry = -1;
  gint64 block = -1, timeout = -1, max_conns = -1, conns_per_addr = -1, idle = -1;
  gint64 connect_back = -1, max_urls = -1, new_rate = -1, new_burst = -1, per_origin = -1;
  guint sig_int, sig_term;
  const GOptionEntry entries[] = {
    { "address", 'a', 0, G_OPTION_ARG_STRING, &address,
      N_("Listen on ADDRESS (IP literal; default 127.0.0.1)"), N_("ADDRESS") },
    { "port", 'p', 0, G_OPTION_ARG_INT64, &port,
      N_("Listen on PORT (default 8470; 0 picks a free port)"), N_("PORT") },
    { "docroot", 'd', 0, G_OPTION_ARG_FILENAME, &docroot,
      N_("Serve the station's static files from DIR and hash them from disk"), N_("DIR") },
    { "base-url", 0, 0, G_OPTION_ARG_STRING, &base_url,
      N_("Public URL of the document root, as the playlist has it (default: the listening URL)"), N_("URL") },
    { "origin", 'o', 0, G_OPTION_ARG_STRING_ARRAY, &origins,
      N_("Fetch and hash media under URL (repeatable)"), N_("URL") },
    { "state-dir", 's', 0, G_OPTION_ARG_FILENAME, &state_dir,
      N_("Keep URL→URN entries and trees in DIR (default: memory only)"), N_("DIR") },
    { "store", 0, 0, G_OPTION_ARG_STRING, &store,
      N_("Share entries, trees and peers with other gateways in Redis: redis://HOST:PORT[/DB] "
         "or unix:/PATH (default: embedded, this gateway's own)"), N_("STORE") },
    { "allow-private", 0, 0, G_OPTION_ARG_NONE, &allow_private,
      N_("Allow fetching from private, loopback and link-local addresses"), NULL },
    { "allow-query", 0, 0, G_OPTION_ARG_NONE, &allow_query,
      N_("Resolve origin URLs with a query string (each query a file of its own; "
         "default: refused, a file server ignores them)"), NULL },
    { "max-urls", 0, 0, G_OPTION_ARG_INT64, &max_urls,
      N_("Keep at most N resolved URLs; the least recently resolved makes room "
         "(default 10000)"), N_("N") },
    { "new-url-rate", 0, 0, G_OPTION_ARG_INT64, &new_rate,
      N_("URLs new to the gateway (each fetched and hashed) per minute per client "
         "address (default 60; 0 = off)"), N_("N") },
    { "new-url-burst", 0, 0, G_OPTION_ARG_INT64, &new_burst,
      N_("Burst of new URLs per client address (default 100)"), N_("N") },
    { "max-fetches-per-origin", 0, 0, G_OPTION_ARG_INT64, &per_origin,
      N_("Fetch and hash at most N files at once from one origin host (default 4; 0 = no cap)"),
      N_("N") },
    { "trusted-proxy", 0, 0, G_OPTION_ARG_STRING_ARRAY, &proxies,
      N_("Believe X-Forwarded-For from this proxy address (repeatable)"), N_("IP") },
    { "max-media-size", 0, 0, G_OPTION_ARG_INT64, &max_media,
      N_("Refuse media larger than BYTES (default 4 GiB)"), N_("BYTES") },
    { "rate-limit", 0, 0, G_OPTION_ARG_INT64, &rate,
      N_("Requests per second per client address (default 20; 0 = off)"), N_("N") },
    { "rate-burst", 0, 0, G_OPTION_ARG_INT64, &burst,
      N_("Burst of requests per client address (default 100)"), N_("N") },
    { "max-header-bytes", 0, 0, G_OPTION_ARG_INT64, &max_header,
      N_("Refuse requests whose headers exceed BYTES (default 16384)"), N_("BYTES") },
    { "max-peers", 0, 0, G_OPTION_ARG_INT64, &max_peers,
      N_("Peers per answer (default 32)"), N_("N") },
    { "max-peers-per-urn", 0, 0, G_OPTION_ARG_INT64, &per_urn,
      N_("Peer entries kept per URN (default 1000)"), N_("N") },
    { "max-entries-per-address", 0, 0, G_OPTION_ARG_INT64, &per_addr,
      N_("Peer entries kept per client address (default 64)"), N_("N") },
    { "max-peer-entries", 0, 0, G_OPTION_ARG_INT64, &max_entries,
      N_("Peer entries kept over all URNs; the least recently announced makes room (default 20000)"),
      N_("N") },
    { "peer-ttl", 0, 0, G_OPTION_ARG_INT64, &ttl,
      N_("Forget a peer SECONDS after its last announce (default 1800)"), N_("SECONDS") },
    { "revalidate-after", 0, 0, G_OPTION_ARG_INT64, &revalidate,
      N_("Revalidate an origin URL older than SECONDS (default 300)"), N_("SECONDS") },
    { "resolve-wait", 0, 0, G_OPTION_ARG_INT64, &wait,
      N_("Hold a resolve at most MS for hashing before answering 202 (default 2000)"), N_("MS") },
    { "retry-after", 0, 0, G_OPTION_ARG_INT64, &retry,
      N_("Retry-After of 202 answers (default 2)"), N_("SECONDS") },
    { "block-size", 0, 0, G_OPTION_ARG_INT64, &block,
      N_("Block size of new trees (default 8192)"), N_("BYTES") },
    { "fetch-timeout", 0, 0, G_OPTION_ARG_INT64, &timeout,
      N_("Give up on a silent origin after SECONDS (default 30)"), N_("SECONDS") },
    { "origin-leases", 0, 0, G_OPTION_ARG_INT64, &leases,
      N_("Origin pulls granted at once per item (default 1; 0 = none)"), N_("N") },
    { "connect-back-timeout", 0, 0, G_OPTION_ARG_INT64, &connect_back,
      N_("Check that announced peer ports accept connections, giving up after MS "
         "(default 2000; 0 = no checks)"), N_("MS") },
    { "max-connections", 0, 0, G_OPTION_ARG_INT64, &max_conns,
      N_("Hold at most N client connections at once (default: as many as two fifths of "
         "the descriptor limit allow)"), N_("N") },
    { "max-connections-per-address", 0, 0, G_OPTION_ARG_INT64, &conns_per_addr,
      N_("Hold at most N connections from one client address (default 256)"), N_("N") },
    { "idle-timeout", 0, 0, G_OPTION_ARG_INT64, &idle,
      N_("Close a client connection silent for SECONDS (default 30)"), N_("SECONDS") },
    { "ready-file", 0, 0, G_OPTION_ARG_FILENAME, &ready_file,
      N_("Write the listening URL to FILE once ready"), N_("FILE") },
    { "dbus", 0, 0, G_OPTION_ARG_STRING, &dbus_bus,
      N_("Offer org.alluvium.Gateway1 on BUS: session or system"), N_("BUS") },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
      N_("Log every request"), NULL },
    { NULL }
  };
  /* "Usage: alluvium-server gateway", not the subcommand alone */
  g_set_prgname ("alluvium-server gateway");
  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, _("Run the station's OCN gateway: resolve media URLs "
                                           "to content URNs, serve hash trees, track peers."));
  g_option_context_set_description (context,
                                    _("Examples:\n"
                                      "  alluvium-server gateway --docroot /srv/alluvium/www \\\n"
                                      "      --address 0.0.0.0 --base-url http://HOST:8470/\n"
                                      "      serve the station's files and the gateway on one port\n"
                                      "  alluvium-server gateway --origin https://station.example/media/ \\\n"
                                      "      --state-dir /var/lib/alluvium-gateway\n"
                                      "      behind the station's web server (see its nginx or Apache\n"
                                      "      snippet), hashing the media it fetches from there\n"
                                      "\n"
                                      "See alluvium-server(1)."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error (context, error->message);
  if (argc > 1)
    return usage_error (context, _("unexpected argument"));

  gateway_config_init (&config);
  {
    const struct
    {
      gint64 value;
      guint *target;
      const char *name;
    } numbers[] = {
      { port, &config.port, "--port" },
      { rate, &config.rate_limit, "--rate-limit" },
      { burst, &config.rate_burst, "--rate-burst" },
      { max_header, &config.max_header_bytes, "--max-header-bytes" },
      { max_peers, &config.max_peers, "--max-peers" },
      { per_urn, &config.max_peers_per_urn, "--max-peers-per-urn" },
      { per_addr, &config.max_entries_per_address, "--max-entries-per-address" },
      { max_entries, &config.max_peer_entries, "--max-peer-entries" },
      { ttl, &config.peer_ttl, "--peer-ttl" },
      { revalidate, &config.revalidate_after, "--revalidate-after" },
      { wait, &config.resolve_wait_ms, "--resolve-wait" },
      { retry, &config.retry_after, "--retry-after" },
      { block, &config.block_size, "--block-size" },
      { timeout, &config.fetch_timeout, "--fetch-timeout" },
      { leases, &config.origin_leases, "--origin-leases" },
      { connect_back, &config.connect_back_ms, "--connect-back-timeout" },
      { max_conns, &config.max_connections, "--max-connections" },
      { conns_per_addr, &config.max_connections_per_address, "--max-connections-per-address" },
      { idle, &config.idle_timeout, "--idle-timeout" },
      { max_urls, &config.max_urls, "--max-urls" },
      { new_rate, &config.new_url_rate, "--new-url-rate" },
      { new_burst, &config.new_url_burst, "--new-url-burst" },
      { per_origin, &config.max_fetches_per_origin, "--max-fetches-per-origin" },
    };

    /* -1: not given, keep the default */
    for (gsize i = 0; i < G_N_ELEMENTS (numbers); i++)
      if (numbers[i].value != -1
          && !to_uint (numbers[i].value, numbers[i].target, numbers[i].name, &error))
        {
          gateway_config_clear (&config);
          return usage_error (context, error->message);
        }
  }
  if (port > 65535)
    {
      gateway_config_clear (&config);
      return usage_error (context, _("--port must be at most 65535"));
    }
  if (max_entries == 0)
    {
      gateway_config_clear (&config);
      return usage_error (context, _("--max-peer-entries must be at least 1"));
    }
  if (max_urls == 0)
    {
      gateway_config_clear (&config);
      return usage_error (context, _("--max-urls must be at least 1"));
    }
  if (max_media < -1)
    {
      gateway_config_clear (&config);
      return usage_error (context, _("--max-media-size must not be negative"));
    }
  if (max_media >= 0)
    config.max_media_size = (guint64) max_media;
  if (address != NULL)
    {
      g_free (config.address);
      config.address = g_steal_pointer (&address);
    }
  config.docroot = g_steal_pointer (&docroot);
  config.base_url = g_steal_pointer (&base_url);
  config.origins = g_steal_pointer (&origins);
  config.state_dir = g_steal_pointer (&state_dir);
  config.store = g_steal_pointer (&store);
  config.trusted_proxies = g_steal_pointer (&proxies);
  config.allow_private = allow_private;
  config.allow_query = allow_query;
  if (dbus_bus != NULL && g_strcmp0 (dbus_bus, "session") != 0 && g_strcmp0 (dbus_bus, "system") != 0)
    {
      gateway_config_clear (&config);
      return usage_error (context, _("--dbus must be session or system"));
    }
  if (config.docroot == NULL && config.origins == NULL)
    g_warning ("neither --docroot nor --origin given: every resolve will be refused");

  if (verbose)
    g_log_set_debug_enabled (TRUE);

  alv_raise_fd_limit ();
  server = gateway_server_new (&config, &error);
  gateway_config_clear (&config);
  if (server == NULL || !gateway_server_listen (server, &error))
    {
      g_printerr ("alluvium-server gateway: %s\n", error->message);
      return 1;
    }

  loop = g_main_loop_new (NULL, FALSE);
  /* before announcing readiness, so a stop right after it is clean */
  sig_int = g_unix_signal_add (SIGINT, quit_cb, loop);
  sig_term = g_unix_signal_add (SIGTERM, quit_cb, loop);
  if (dbus_bus != NULL)
    {
      dbus = gateway_dbus_new (server,
                               g_str_equal (dbus_bus, "system") ? G_BUS_TYPE_SYSTEM : G_BUS_TYPE_SESSION);
    }

  if (ready_file != NULL)
    {
      g_autofree char *line = g_strconcat (gateway_server_get_url (server), "\n", NULL);

      if (!g_file_set_contents (ready_file, line, -1, &error))
        {
          g_printerr ("alluvium-server gateway: --ready-file: %s\n", error->message);
          return 1;
        }
    }
  g_print ("listening on %s\n", gateway_server_get_url (server));
  {
    g_autofree char *served = gateway_server_describe (server);

    g_print ("%s", served);
  }
  fflush (stdout);
  g_info ("listening on %s", gateway_server_get_url (server));

  g_main_loop_run (loop);
  g_source_remove (sig_int);
  g_source_remove (sig_term);
  g_info ("stopping");
  g_clear_pointer (&dbus, gateway_dbus_free);
  g_clear_pointer (&server, gateway_server_free);
  return 0;
}
