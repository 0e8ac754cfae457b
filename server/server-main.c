/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * main() of alluvium-server, the station side of Alluvium: dispatches to
 * the `gateway` (OCN gateway daemon) and `playlist` (playlist generator
 * and checker) subcommands, and answers --help and --version itself.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "gateway-cmd.h"
#include "server-playlist-cmd.h"

static void
print_usage (FILE *out)
{
  fprintf (out, "%s",
           _("Usage: alluvium-server COMMAND [OPTION…]\n"
             "\n"
             "Commands:\n"
             "  gateway     run the OCN gateway (resolve, trees, peers, static files)\n"
             "  playlist    build, check or prepare a station playlist\n"
             "\n"
             "Options:\n"
             "  -h, --help     show this help\n"
             "  --version      show the version\n"
             "\n"
             "Run “alluvium-server COMMAND --help” for the options of a command.\n"));
  fprintf (out, "\n%s",
           _("Examples (a station whose files are under /srv/alluvium/www):\n"
             "  alluvium-server playlist --base-url http://HOST:8470/ --root /srv/alluvium/www \\\n"
             "      -o /srv/alluvium/www/station.rss /srv/alluvium/www/media\n"
             "      write the playlist of the media files\n"
             "  alluvium-server gateway --docroot /srv/alluvium/www --address 0.0.0.0 \\\n"
             "      --base-url http://HOST:8470/\n"
             "      serve the files and the gateway on port 8470\n"
             "  alluvium-player http://HOST:8470/station.rss\n"
             "      listen\n"
             "\n"
             "See alluvium-server(1).\n"));
}

int
main (int    argc,
      char **argv)
{
  setlocale (LC_ALL, "");
  alv_i18n_init ();

  if (argc > 1 && strcmp (argv[1], "playlist") == 0)
    return server_playlist_main (argc - 1, argv + 1);
  if (argc > 1 && strcmp (argv[1], "gateway") == 0)
    return server_gateway_main (argc - 1, argv + 1);
  if (argc > 1 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
                   || strcmp (argv[1], "help") == 0))
    {
      print_usage (stdout);
      return 0;
    }
  if (argc > 1 && strcmp (argv[1], "--version") == 0)
    {
      printf ("alluvium-server %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (argc > 1)
    fprintf (stderr, _("alluvium-server: unknown command “%s”\n\n"), argv[1]);
  print_usage (stderr);
  return 2;
}
