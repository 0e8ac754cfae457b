/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `alluvium-server playlist`: the broadcaster's tool.  This file parses
 * and checks the command line, then hands over to one of three modes:
 * build a playlist from media files (playlist-build.c), lint one
 * (--check, playlist-check.c), or ask a gateway to prepare every item
 * (--prepare, playlist-prepare.c; after a build, or of a given playlist).
 * Exit status: 0 success, 1 failure (or findings), 2 usage error.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "server-playlist-cmd.h"

#include <stdio.h>
#include <unistd.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "alv-playlist.h"
#include "alv-time.h"
#include "playlist-build.h"
#include "playlist-check.h"
#include "playlist-http.h"
#include "playlist-options.h"
#include "playlist-paths.h"
#include "playlist-prepare.h"

/* beyond this many items a playlist is worth a warning (a day of 30 s
 * items is 2 880, about 1.8 MB fetched by every listener) */
#define LARGE_PLAYLIST_ITEMS 1000

#define EXIT_USAGE 2
#define DEFAULT_TIMEOUT 10
#define DEFAULT_MAX_WAIT 600

static const char * const update_periods[] = {
  "hourly", "daily", "weekly", "monthly", "yearly", NULL
};

G_GNUC_PRINTF (1, 2)
static int
usage_error (const char *format,
             ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("alluvium-server playlist: %s\n", message);
  g_printerr (_("Try “alluvium-server playlist --help” for more information.\n"));
  return EXIT_USAGE;
}

static int
failure (const GError *error)
{
  g_printerr (_("alluvium-server playlist: error: %s\n"), error->message);
  return 1;
}

static GDateTime *
next_full_minute (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(GDateTime) minute = g_date_time_new_utc (g_date_time_get_year (now),
                                                     g_date_time_get_month (now),
                                                     g_date_time_get_day_of_month (now),
                                                     g_date_time_get_hour (now),
                                                     g_date_time_get_minute (now), 0);

  return g_date_time_add_minutes (minute, 1);
}

static gboolean
write_playlist (AlvPlaylist  *pl,
                const char   *output,
                GError      **error)
{
  g_autofree char *text = NULL;
  gsize length = 0;

  if (output != NULL && g_strcmp0 (output, "-") != 0)
    return alv_playlist_write_file (pl, output, error);

  text = alv_playlist_to_string (pl, &length);
  if (fwrite (text, 1, length, stdout) != length || fflush (stdout) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED, _("cannot write to standard output"));
      return FALSE;
    }
  return TRUE;
}

int
server_playlist_main (int    argc,
                      char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) inputs = NULL;
  g_autofree char *output = NULL;
  g_autofree char *base_url = NULL;
  g_autofree char *root = NULL;
  g_autofree char *start = NULL;
  g_autofree char *until = NULL;
  g_autofree char *title = NULL;
  g_autofree char *link = NULL;
  g_autofree char *description = NULL;
  g_autofree char *about = NULL;
  g_autofree char *update_period = NULL;
  g_autofree char *check = NULL;
  g_autofree char *gateway = NULL;
  g_autofree char *norm_base_url = NULL;
  g_autofree char *canon_root = NULL;
  g_autoptr(GDateTime) start_time = NULL;
  g_autoptr(GDateTime) until_time = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  gboolean repeat = FALSE, force = FALSE, no_urn = FALSE, verbose = FALSE;
  gboolean fetch = FALSE, offline = FALSE, prepare = FALSE;
  int update_frequency = 0, timeout = DEFAULT_TIMEOUT, max_wait = DEFAULT_MAX_WAIT;
  PlaylistOptions opts = { 0 };
  const char *label;
  int status;
  const GOptionEntry entries[] = {
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
      N_("Write the playlist to FILE (atomically) instead of standard output"), N_("FILE") },
    { "base-url", 0, 0, G_OPTION_ARG_STRING, &base_url,
      N_("URL at which the root directory is published (required to build)"), N_("URL") },
    { "root", 0, 0, G_OPTION_ARG_FILENAME, &root,
      N_("Directory that --base-url publishes (default: the common parent of the inputs)"), N_("DIR") },
    { "start", 0, 0, G_OPTION_ARG_STRING, &start,
      N_("Start of the first slot, W3C-DTF (default: the next full minute, UTC)"), N_("TIME") },
    { "repeat", 0, 0, G_OPTION_ARG_NONE, &repeat,
      N_("Repeat the list to fill the horizon (--until, default 24 hours)"), NULL },
    { "until", 0, 0, G_OPTION_ARG_STRING, &until,
      N_("Repeat the list until slots reach TIME, W3C-DTF (implies --repeat)"), N_("TIME") },
    { "title", 0, 0, G_OPTION_ARG_STRING, &title,
      N_("Title of the station (default: the root directory's name)"), N_("TEXT") },
    { "link", 0, 0, G_OPTION_ARG_STRING, &link,
      N_("Web page of the station (default: the base URL)"), N_("URL") },
    { "description", 0, 0, G_OPTION_ARG_STRING, &description,
      N_("Description of the station"), N_("TEXT") },
    { "about", 0, 0, G_OPTION_ARG_STRING, &about,
      N_("URL of the playlist itself (default: base URL + output file name)"), N_("URL") },
    { "update-period", 0, 0, G_OPTION_ARG_STRING, &update_period,
      N_("Refresh hint: hourly, daily, weekly, monthly or yearly"), N_("PERIOD") },
    { "update-frequency", 0, 0, G_OPTION_ARG_INT, &update_frequency,
      N_("Refresh hint: times per update period"), N_("N") },
    { "force", 0, 0, G_OPTION_ARG_NONE, &force,
      N_("Accept media of different stream formats in one station"), NULL },
    { "no-urn", 0, 0, G_OPTION_ARG_NONE, &no_urn,
      N_("Do not hash the files (items get no content URN)"), NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
      N_("Print progress and details on standard error"), NULL },
    { "timeout", 0, 0, G_OPTION_ARG_INT, &timeout,
      N_("Seconds allowed for probing one file or one HTTP request (default 10)"), N_("SECONDS") },
    { "check", 0, 0, G_OPTION_ARG_STRING, &check,
      N_("Check the playlist FILE or URL instead of building one"), N_("FILE|URL") },
    { "fetch", 0, 0, G_OPTION_ARG_NONE, &fetch,
      N_("With --check: download remote items and verify their URNs"), NULL },
    { "offline", 0, 0, G_OPTION_ARG_NONE, &offline,
      N_("With --check: make no HTTP request for items"), NULL },
    { "prepare", 0, 0, G_OPTION_ARG_NONE, &prepare,
      N_("Ask the gateway to resolve every item (of the built playlist, or of PLAYLIST)"), NULL },
    { "gateway", 0, 0, G_OPTION_ARG_STRING, &gateway,
      N_("With --prepare or --check: base URL of the gateway (default: the local gateway on D-Bus)"), N_("URL") },
    { "max-wait", 0, 0, G_OPTION_ARG_INT, &max_wait,
      N_("With --prepare: give up on an item still being prepared after SECONDS (default 600)"),
      N_("SECONDS") },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &inputs, NULL,
      N_("FILE|DIR…") },
    { NULL, 0, 0, G_OPTION_ARG_NONE, NULL, NULL, NULL }
  };

  /* the usage line already shows the FILE|DIR… of G_OPTION_REMAINING */
  context = g_option_context_new (_("— write, check or prepare a station playlist"));
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context,
    _("Build:    alluvium-server playlist --base-url URL [OPTION…] FILE|DIR… [-o station.rss]\n"
      "Check:    alluvium-server playlist --check FILE|URL [--base-url URL --root DIR] [--fetch]\n"
      "          [--gateway URL]\n"
      "Prepare:  alluvium-server playlist --prepare [--gateway URL] PLAYLIST"));
  g_option_context_set_description (context,
    _("Each media file becomes an item at --base-url plus its percent-encoded path\n"
      "relative to --root, scheduled back to back from --start, with its title,\n"
      "artist, duration, media type and content URN.  All files must share one\n"
      "stream format unless --force is given.\n\n"
      "Exit status: 0 success, 1 failure or errors found, 2 usage error."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_set_prgname ("alluvium-server playlist");
  if (!g_option_context_parse (context, &argc, &argv, &error))
    return usage_error ("%s", error->message);

  if (timeout < 1 || timeout > 3600)
    return usage_error (_("--timeout must be between 1 and 3600 seconds"));
  if (max_wait < 0 || max_wait > 86400)
    return usage_error (_("--max-wait must be between 0 and 86400 seconds"));
  if (check != NULL && prepare)
    return usage_error (_("--check and --prepare cannot be used together"));
  if (check == NULL && (fetch || offline))
    return usage_error (_("--fetch and --offline only apply to --check"));
  if (fetch && offline)
    return usage_error (_("--fetch and --offline exclude each other"));
  if (!prepare && check == NULL && gateway != NULL)
    return usage_error (_("--gateway only applies to --prepare and --check"));
  if (gateway != NULL && !playlist_paths_is_http_url (gateway))
    return usage_error (_("--gateway: “%s” is not an http or https URL"), gateway);
  if (update_period != NULL && !g_strv_contains (update_periods, update_period))
    return usage_error (_("--update-period must be hourly, daily, weekly, monthly or yearly"));
  if (update_frequency < 0)
    return usage_error (_("--update-frequency must be a positive number"));

  if (base_url != NULL)
    {
      norm_base_url = playlist_paths_normalize_base_url (base_url, &error);
      if (norm_base_url == NULL)
        return usage_error ("--base-url: %s", error->message);
    }
  if (root != NULL)
    {
      canon_root = g_canonicalize_filename (root, NULL);
      if (!g_file_test (canon_root, G_FILE_TEST_IS_DIR))
        return usage_error (_("--root: %s is not a directory"), root);
    }
  if (start != NULL)
    {
      start_time = alv_time_parse_w3cdtf (start, &error);
      if (start_time == NULL)
        return usage_error ("--start: %s", error->message);
    }
  else
    {
      start_time = next_full_minute ();
    }
  if (until != NULL)
    {
      until_time = alv_time_parse_w3cdtf (until, &error);
      if (until_time == NULL)
        return usage_error ("--until: %s", error->message);
      if (g_date_time_compare (until_time, start_time) <= 0)
        return usage_error (_("--until must be later than the start"));
      repeat = TRUE;
    }

  opts.inputs = inputs;
  opts.output = output;
  opts.base_url = norm_base_url;
  opts.root = canon_root;
  opts.start = start_time;
  opts.until = until_time;
  opts.repeat = repeat;
  opts.title = title;
  opts.link = link;
  opts.description = description;
  opts.about = about;
  opts.update_period = update_period;
  opts.update_frequency = update_frequency;
  opts.force = force;
  opts.no_urn = no_urn;
  opts.verbose = verbose;
  opts.progress = verbose || isatty (STDERR_FILENO);
  opts.fetch = fetch;
  opts.offline = offline;
  opts.timeout = (guint) timeout;
  opts.gateway = gateway;
  opts.max_wait = (guint) max_wait;

  if (check != NULL)
    {
      if (inputs != NULL)
        return usage_error (_("--check takes no other arguments"));
      if ((norm_base_url == NULL) != (canon_root == NULL))
        return usage_error (_("with --check, --base-url and --root go together"));
      return playlist_check_run (&opts, check);
    }

  if (prepare && norm_base_url == NULL)
    {
      g_autoptr(SoupSession) session = NULL;

      if (inputs == NULL || inputs[0] == NULL || inputs[1] != NULL)
        return usage_error (_("--prepare takes one playlist FILE|URL (or --base-url and media to build one)"));
      session = playlist_http_session_new (opts.timeout);
      pl = playlist_http_load_playlist (session, inputs[0], &error);
      if (pl == NULL)
        {
          g_printerr (_("%s: error: %s\n"), inputs[0], error->message);
          return 1;
        }
      return playlist_prepare_run (&opts, pl, inputs[0]);
    }

  if (norm_base_url == NULL)
    return usage_error (_("--base-url is required to build a playlist"));
  if (inputs == NULL || inputs[0] == NULL)
    return usage_error (_("no media files or directories given"));

  pl = playlist_build (&opts, &error);
  if (pl == NULL)
    return failure (error);
  if (!write_playlist (pl, output, &error))
    return failure (error);
  /* one line on stderr, terminal or not (a script's log shows what it did) */
  {
    guint n = alv_playlist_get_n_items (pl);

    if (n > LARGE_PLAYLIST_ITEMS)
      g_printerr (_("warning: %u items: every listener downloads all of them at every refresh; "
                    "a nearer --until, rebuilt as often (with --update-period), keeps the "
                    "playlist small\n"), n);
  }
  {
    guint n = alv_playlist_get_n_items (pl);
    AlvPlaylistItem *last = n > 0 ? alv_playlist_get_item (pl, n - 1) : NULL;
    g_autofree char *last_end = last != NULL && alv_playlist_item_get_end (last) != NULL
                             ? alv_time_format_w3cdtf (alv_playlist_item_get_end (last)) : NULL;

    g_printerr (g_dngettext (GETTEXT_PACKAGE, "wrote %u item to %s, until %s\n",
                             "wrote %u items to %s, until %s\n", n),
                n, output != NULL ? output : _("standard output"), last_end != NULL ? last_end : "?");
  }

  label = output != NULL ? output : "-";
  /* the playlist itself went to stdout: keep it clean */
  opts.reports_on_stderr = output == NULL || g_str_equal (output, "-");
  status = prepare ? playlist_prepare_run (&opts, pl, label) : 0;
  return status;
}
