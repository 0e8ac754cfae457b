/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * main() of alluvium-core, the listener's session daemon: parses the
 * command line, reads $XDG_CONFIG_HOME/alluvium/core.conf (or --config),
 * owns org.alluvium.Core1 on the session bus (taking it over with
 * --replace), exports the service and runs until the name is lost, a
 * signal arrives or the service has been idle long enough.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdlib.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gio/gio.h>

#include "alv-dbus.h"
#include "alv-listener.h"
#include "core-service.h"

typedef struct
{
  GMainLoop *loop;
  CoreService *service;
  int status;
} Daemon;

static void
on_bus_acquired (GDBusConnection *connection,
                 const char      *name G_GNUC_UNUSED,
                 gpointer         user_data)
{
  Daemon *d = user_data;
  g_autoptr(GError) error = NULL;

  if (!core_service_export (d->service, connection, &error))
    {
      g_printerr (_("Cannot export %s: %s\n"), ALV_CORE_OBJECT_PATH, error->message);
      d->status = EXIT_FAILURE;
      g_main_loop_quit (d->loop);
    }
}

static void
on_name_acquired (GDBusConnection *connection G_GNUC_UNUSED,
                  const char      *name,
                  gpointer         user_data G_GNUC_UNUSED)
{
  g_debug ("owning %s", name);
}

static void
on_name_lost (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  Daemon *d = user_data;

  if (connection == NULL)
    {
      g_printerr (_("Cannot connect to the session bus\n"));
      d->status = EXIT_FAILURE;
    }
  else
    g_message ("lost the bus name %s, exiting", name);
  g_main_loop_quit (d->loop);
}

static gboolean
on_signal (gpointer user_data)
{
  Daemon *d = user_data;

  g_main_loop_quit (d->loop);
  return G_SOURCE_CONTINUE;
}

static void
on_released (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  gboolean *done = user_data;

  core_service_release_finish (CORE_SERVICE (source), result);
  *done = TRUE;
}

static void
on_idle_exit (CoreService *service G_GNUC_UNUSED,
              gpointer     user_data)
{
  Daemon *d = user_data;

  g_main_loop_quit (d->loop);
}

int
main (int argc, char **argv)
{
  gboolean replace = FALSE, no_idle_exit = FALSE, verbose = FALSE, version = FALSE;
  int stream_port = -1, peer_port = -1;
  g_autofree char *config_path = NULL;
  g_autofree char *gateway = NULL;
  g_autofree char *cache_dir = NULL;
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  CoreConfig config;
  Daemon d = { NULL, NULL, EXIT_SUCCESS };
  GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT;
  guint owner_id, sigterm_id, sigint_id;
  const GOptionEntry entries[] = {
    { "replace", 'r', 0, G_OPTION_ARG_NONE, &replace, N_("Replace a running daemon"), NULL },
    { "no-idle-exit", 0, 0, G_OPTION_ARG_NONE, &no_idle_exit, N_("Do not exit when idle"), NULL },
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path, N_("Configuration file"), N_("FILE") },
    { "stream-port", 0, 0, G_OPTION_ARG_INT, &stream_port, N_("Port of the local stream (0: any)"), N_("PORT") },
    { "peer-port", 0, 0, G_OPTION_ARG_INT, &peer_port, N_("Port for other peers (0: any)"), N_("PORT") },
    { "gateway", 0, 0, G_OPTION_ARG_STRING, &gateway, N_("Gateway URL (default: the station's own; “none”: no swarming)"), N_("URL") },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, N_("Print debugging messages"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version and exit"), NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL }
  };

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");

  context = g_option_context_new (NULL);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context, _("The Alluvium listener daemon (org.alluvium.Core1)."));
  g_option_context_set_description (context,
                                    _("alluvium-player starts this daemon on the session bus when it "
                                      "needs it (D-Bus activation); it exits when idle. To listen, "
                                      "run:\n"
                                      "  alluvium-player https://station.example/station.rss\n"
                                      "\n"
                                      "Examples:\n"
                                      "  alluvium-core --replace --verbose\n"
                                      "      run it in this terminal instead, with debugging messages\n"
                                      "  alluvium-core --stream-port 8000 --peer-port 6881\n"
                                      "      fixed ports, e.g. to forward the peer port in a router\n"
                                      "\n"
                                      "Settings: ~/.config/alluvium/core.conf. See alluvium-core(1)."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      return 2;
    }
  if (version)
    {
      g_print ("alluvium-core %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    }
  if (verbose)
    g_log_set_debug_enabled (TRUE);
  if (stream_port > G_MAXUINT16 || peer_port > G_MAXUINT16 || stream_port < -1 || peer_port < -1)
    {
      g_printerr (_("%s: a port is a number from 0 to 65535\n"), g_get_prgname ());
      return 2;
    }

  /* peers and players hold descriptors; 1024 is select()'s limit, not ours */
  alv_raise_fd_limit ();
  core_config_init (&config);
  if (config_path == NULL)
    config_path = core_config_default_path ();
  if (!core_config_load (&config, config_path, &error))
    {
      g_printerr ("%s: %s\n", g_get_prgname (), error->message);
      core_config_clear (&config);
      return EXIT_FAILURE;
    }
  if (stream_port >= 0)
    config.stream_port = (guint16) stream_port;
  if (peer_port >= 0)
    config.peer_port = (guint16) peer_port;
  if (gateway != NULL)
    {
      g_free (config.gateway);
      config.gateway = g_steal_pointer (&gateway);
    }
  if (no_idle_exit)
    config.idle_timeout = 0;
  cache_dir = g_build_filename (g_get_user_cache_dir (), "alluvium", NULL);
  if (g_mkdir_with_parents (cache_dir, 0700) != 0)
    g_message ("cannot create %s", cache_dir);

  d.loop = g_main_loop_new (NULL, FALSE);
  d.service = core_service_new (&config);
  core_config_clear (&config);
  g_signal_connect (d.service, "idle-exit", G_CALLBACK (on_idle_exit), &d);

  /* the reason, when there is no session bus to serve on */
  {
    g_autoptr(GError) bus_error = NULL;
    g_autoptr(GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &bus_error);

    if (bus == NULL)
      {
        g_printerr (_("Cannot connect to the session bus: %s\n"), bus_error->message);
        g_clear_object (&d.service);
        g_main_loop_unref (d.loop);
        return EXIT_FAILURE;
      }
  }
  if (replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
  owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, ALV_CORE_BUS_NAME, flags,
                             on_bus_acquired, on_name_acquired, on_name_lost, &d, NULL);
  sigterm_id = g_unix_signal_add (SIGTERM, on_signal, &d);
  sigint_id = g_unix_signal_add (SIGINT, on_signal, &d);

  g_main_loop_run (d.loop);

  /* the router forgets the peer port's mapping (bounded: the release
   * gives up after a few seconds) */
  {
    gboolean released = FALSE;

    core_service_release_async (d.service, on_released, &released);
    while (!released)
      g_main_context_iteration (NULL, TRUE);
  }
  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);
  g_bus_unown_name (owner_id);
  core_service_unexport (d.service);
  g_clear_object (&d.service);
  g_main_loop_unref (d.loop);
  return d.status;
}
