/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Check mode: lints a playlist as a listener's core would meet it.  Each
 * finding is one line on stdout, `PLAYLIST:item N: error|warning: what`
 * (or `PLAYLIST: …` for the playlist as a whole), so the output greps and
 * diffs well.  Errors are what makes a station misbehave: a document that
 * does not parse, overlapping or inverted slots, items that cannot be
 * fetched, content whose hash no longer matches its URN, a stream format
 * change between consecutive items.  Warnings are what is probably a
 * mistake: gaps (silence), a playlist entirely in the past, an item
 * without URN, a slot much shorter or longer than its media.
 *
 * An item URL under --base-url is checked against the local file under
 * --root (rehashed, probed); other http(s) URLs get a one-byte Range
 * request, and with --fetch a full download that is hashed as it streams.
 * Every distinct URL is examined once, however often the schedule repeats
 * it.
 *
 * Given a gateway (--gateway, or the local one on D-Bus as for --prepare),
 * the check also asks it to resolve the first item URL of every origin
 * (scheme, host and port; at most MAX_GATEWAY_ORIGINS of them): a gateway
 * that refuses it answers 403 with the option that would serve it
 * (--base-url or --origin), and every item of that origin gets the
 * answer as an error, since listeners would get no tree and share
 * nothing.  That one resolve per origin also starts the gateway hashing
 * that item, as the first listener would.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "playlist-check.h"

#include <errno.h>
#include <inttypes.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "alv-error.h"
#include "alv-hash-tree.h"
#include "alv-playlist.h"
#include "alv-time.h"
#include "playlist-gateway.h"
#include "playlist-http.h"
#include "playlist-paths.h"
#include "playlist-probe.h"

/* A slot may differ from its media's duration by this much unnoticed. */
#define DURATION_TOLERANCE (G_TIME_SPAN_SECOND)
/* Cap on a --fetch download when the playlist gives no length. */
#define MAX_FETCH_LENGTH (G_GUINT64_CONSTANT (16) << 30)
/* The gateway is asked about this many origins at most. */
#define MAX_GATEWAY_ORIGINS 16

/* What was learnt about one URL; the messages are reported for every item
 * carrying it. */
typedef struct
{
  GPtrArray *errors;
  GPtrArray *warnings;
  char *format_key;             /* from probing the local file, or NULL */
  char *format;                 /* the same for humans */
  char *mime;                   /* the local file's MIME type, or NULL */
  char *unreachable;            /* "URL: why", or NULL */
  const char *refused;          /* the gateway's reason, borrowed, or NULL */
} UrlReport;

static void
url_report_free (UrlReport *report)
{
  g_ptr_array_unref (report->errors);
  g_ptr_array_unref (report->warnings);
  g_free (report->format_key);
  g_free (report->unreachable);
  g_free (report->format);
  g_free (report->mime);
  g_free (report);
}

typedef struct
{
  const PlaylistOptions *opts;
  const char *label;
  SoupSession *session;
  PlaylistProbe *probe;
  GHashTable *reports;          /* URL → UrlReport */
  guint n_examined;             /* distinct URLs, for progress */
  guint n_errors;
  guint n_warnings;
  guint n_unreachable;          /* items */
  char *first_unreachable;      /* borrowed from its report */
  const char *gateway;          /* base URL to ask, or NULL */
  GHashTable *origins;          /* origin → the gateway's refusal, or "" */
  guint n_refused;              /* items */
  const char *first_refused;    /* borrowed from origins */
} Checker;

static void
finding (Checker    *checker,
         guint       item,
         gboolean    is_error,
         const char *message)
{
  if (is_error)
    checker->n_errors++;
  else
    checker->n_warnings++;
  if (item > 0)
    g_print ("%s:item %u: %s: %s\n", checker->label, item,
             is_error ? _("error") : _("warning"), message);
  else
    g_print ("%s: %s: %s\n", checker->label,
             is_error ? _("error") : _("warning"), message);
}

G_GNUC_PRINTF (4, 5)
static void
findingf (Checker    *checker,
          guint       item,
          gboolean    is_error,
          const char *format,
          ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  finding (checker, item, is_error, message);
}

G_GNUC_PRINTF (2, 3)
static void
report_add (GPtrArray  *list,
            const char *format,
            ...)
{
  va_list args;

  va_start (args, format);
  g_ptr_array_add (list, g_strdup_vprintf (format, args));
  va_end (args);
}

static char *
format_seconds (GTimeSpan span)
{
  return g_strdup_printf (_("%.3f s"), (double) span / G_TIME_SPAN_SECOND);
}

/* Compares the content at hand with what the item claims. */
static void
compare_content (UrlReport       *report,
                 AlvPlaylistItem *item,
                 AlvHashTree     *tree,
                 const char      *where)
{
  const char *urn = alv_playlist_item_get_urn (item);
  guint64 length = alv_playlist_item_get_length (item);
  g_autofree char *actual = alv_hash_tree_get_urn (tree);

  if (urn != NULL && g_ascii_strcasecmp (urn, actual) != 0)
    report_add (report->errors,
                _("content changed: the playlist says %s but %s hashes to %s"),
                urn, where, actual);
  else if (length > 0 && length != alv_hash_tree_get_length (tree))
    report_add (report->errors,
                _("length changed: the playlist says %" PRIu64
                  " bytes but %s has %" PRIu64),
                length, where, alv_hash_tree_get_length (tree));
}

static void
examine_local (Checker         *checker,
               UrlReport       *report,
               AlvPlaylistItem *item,
               const char      *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(PlaylistMediaInfo) info = NULL;
  GTimeSpan slot, media;

  if (!g_file_test (path, G_FILE_TEST_IS_REGULAR))
    {
      report_add (report->errors, _("%s: no such file"), path);
      return;
    }

  if (alv_playlist_item_get_urn (item) != NULL)
    {
      g_autoptr(AlvHashTree) tree = alv_hash_tree_new_for_file (path, ALV_HASH_TREE_DEFAULT_BLOCK_SIZE,
                                                                NULL, &error);
      if (tree == NULL)
        report_add (report->errors, "%s: %s", path, error->message);
      else
        compare_content (report, item, tree, path);
      g_clear_error (&error);
    }
  else
    {
      GStatBuf st;
      guint64 length = alv_playlist_item_get_length (item);

      if (g_stat (path, &st) == 0 && length > 0 && (guint64) st.st_size != length)
        report_add (report->errors,
                    _("length changed: the playlist says %" PRIu64
                      " bytes but %s has %" PRIu64),
                    length, path, (guint64) st.st_size);
    }

  if (checker->probe == NULL)
    {
      checker->probe = playlist_probe_new (checker->opts->timeout, &error);
      if (checker->probe == NULL)
        {
          report_add (report->errors, "%s", error->message);
          return;
        }
    }
  info = playlist_probe_file (checker->probe, path, &error);
  if (info == NULL)
    {
      report_add (report->errors, "%s: %s", path, error->message);
      return;
    }
  report->format_key = g_strdup (info->format_key);
  report->format = g_strdup (info->format);
  report->mime = g_strdup (info->mime);

  if (alv_playlist_item_get_media_type (item) != NULL &&
      g_ascii_strcasecmp (alv_playlist_item_get_media_type (item), info->mime) != 0)
    report_add (report->warnings, _("dc:format says %s but %s is %s"),
                alv_playlist_item_get_media_type (item), path, info->mime);

  slot = alv_playlist_item_get_duration (item);
  media = info->duration_ms * G_TIME_SPAN_MILLISECOND;
  if (slot > 0 && (slot > media + DURATION_TOLERANCE || slot + DURATION_TOLERANCE < media))
    {
      g_autofree char *s = format_seconds (slot);
      g_autofree char *m = format_seconds (media);

      report_add (report->warnings, _("the slot lasts %s but %s plays for %s"),
                  s, path, m);
    }
}

static void
examine_remote (Checker         *checker,
                UrlReport       *report,
                AlvPlaylistItem *item,
                const char      *url)
{
  g_autoptr(GError) error = NULL;
  guint64 length = alv_playlist_item_get_length (item);
  guint status = 0;
  gint64 total = -1;

  if (!playlist_http_probe (checker->session, url, &status, &total, &error))
    {
      /* the URL names host and port, which the network's message may not */
      report->unreachable = g_strdup_printf ("%s: %s", url, error->message);
      report_add (report->errors, _("unreachable: %s"), report->unreachable);
      return;
    }
  if (status != SOUP_STATUS_OK && status != SOUP_STATUS_PARTIAL_CONTENT)
    {
      report->unreachable = g_strdup_printf ("%s: HTTP %u %s", url, status,
                                             soup_status_get_phrase (status) ?
                                             soup_status_get_phrase (status) : "");
      g_strchomp (report->unreachable);
      report_add (report->errors, _("unreachable: %s"), report->unreachable);
      return;
    }
  if (total >= 0 && length > 0 && (guint64) total != length)
    {
      report_add (report->errors,
                  _("length changed: the playlist says %" PRIu64
                    " bytes but the server has %" PRId64),
                  length, total);
      return;
    }

  if (checker->opts->fetch && alv_playlist_item_get_urn (item) != NULL)
    {
      g_autoptr(AlvHashTree) tree = playlist_http_hash (checker->session, url,
                                                        length > 0 ? length : MAX_FETCH_LENGTH,
                                                        &error);
      if (tree == NULL)
        report_add (report->errors, _("cannot fetch it to hash it: %s"), error->message);
      else
        compare_content (report, item, tree, _("the fetched content"));
    }
}

/* Asks the gateway whether it serves @url's origin, once per origin.
 * Returns its refusal (owned by the checker), or NULL when it serves it,
 * was not asked or could not say. */
static const char *
gateway_refusal (Checker    *checker,
                 const char *url)
{
  g_autofree char *origin = playlist_gateway_origin_of (url);
  g_autofree char *request = NULL;
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  const char *known;
  char *reason = NULL;

  if (origin == NULL)
    return NULL;
  known = g_hash_table_lookup (checker->origins, origin);
  if (known != NULL)
    return *known ? known : NULL;
  if (g_hash_table_size (checker->origins) >= MAX_GATEWAY_ORIGINS)
    return NULL;

  request = playlist_gateway_resolve_url (checker->gateway, url);
  msg = soup_message_new (SOUP_METHOD_GET, request);
  if (msg != NULL)
    stream = soup_session_send (checker->session, msg, NULL, &error);
  if (stream == NULL)
    {
      findingf (checker, 0, FALSE, _("cannot ask the gateway at %s whether it serves %s: %s"),
                checker->gateway, origin,
                error != NULL ? error->message : _("not a valid request URL"));
      /* one such line is enough: the gateway is not asked again */
      checker->gateway = NULL;
      reason = g_strdup ("");
    }
  else if (soup_message_get_status (msg) == SOUP_STATUS_FORBIDDEN)
    {
      g_autofree char *line = playlist_gateway_read_reason (stream);

      reason = g_strdup_printf (_("the gateway at %s refuses URLs at %s: %s"), checker->gateway,
                                origin, *line ? line : "HTTP 403 Forbidden");
    }
  else
    {
      /* served (200, 202 while it hashes) or refused for this file
       * only (404, 502…): the other checks say more about the file */
      reason = g_strdup ("");
    }
  if (stream != NULL)
    g_input_stream_close (stream, NULL, NULL);
  g_hash_table_insert (checker->origins, g_steal_pointer (&origin), reason);
  return *reason ? reason : NULL;
}

static UrlReport *
examine (Checker         *checker,
         AlvPlaylistItem *item)
{
  const PlaylistOptions *opts = checker->opts;
  const char *url = alv_playlist_item_get_url (item);
  UrlReport *report = g_hash_table_lookup (checker->reports, url);
  g_autofree char *local = NULL;

  if (report != NULL)
    return report;
  report = g_new0 (UrlReport, 1);
  report->errors = g_ptr_array_new_with_free_func (g_free);
  report->warnings = g_ptr_array_new_with_free_func (g_free);
  g_hash_table_insert (checker->reports, g_strdup (url), report);
  checker->n_examined++;
  if (opts->progress)
    g_printerr (_("[%u] checking %s…\n"), checker->n_examined, url);

  if (alv_playlist_item_get_urn (item) == NULL)
    report_add (report->warnings, _("no content URN (dc:identifier): "
                                           "listeners cannot verify it"));

  if (opts->base_url != NULL && opts->root != NULL)
    local = playlist_paths_file_for_url (opts->base_url, opts->root, url);
  if (local != NULL)
    examine_local (checker, report, item, local);
  else if (!opts->offline && playlist_paths_is_http_url (url))
    examine_remote (checker, report, item, url);

  if (checker->gateway != NULL)
    report->refused = gateway_refusal (checker, url);
  if (report->refused != NULL)
    report_add (report->errors, "%s", report->refused);
  return report;
}

static const char *
item_mime (AlvPlaylistItem *item,
           UrlReport       *report)
{
  if (report->mime != NULL)
    return report->mime;
  return alv_playlist_item_get_media_type (item);
}

/**
 * playlist_check_run:
 * @opts: the options (@base_url with @root maps URLs to local files;
 *   @fetch, @offline and @timeout shape the network checks; @gateway (or,
 *   unless @offline, a local gateway on D-Bus) is asked whether it
 *   serves the items' origins)
 * @file_or_url: the playlist to check
 *
 * Lints the playlist, printing each finding on stdout.
 *
 * Returns: the exit status: 0 when no error was found (warnings allowed),
 *   1 otherwise
 */
int
playlist_check_run (const PlaylistOptions *opts,
                    const char            *file_or_url)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SoupSession) session = playlist_http_session_new (opts->timeout);
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autoptr(GHashTable) reports = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                         (GDestroyNotify) url_report_free);
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  g_autoptr(GDateTime) last_end = NULL;
  g_autoptr(GHashTable) origins = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  g_autofree char *local_gateway = NULL;
  Checker checker = { .opts = opts, .label = file_or_url, .session = session, .reports = reports,
                      .origins = origins };
  AlvPlaylistItem *prev = NULL;
  UrlReport *prev_report = NULL;
  guint n_items;

  pl = playlist_http_load_playlist (session, file_or_url, &error);
  if (pl == NULL)
    {
      finding (&checker, 0, TRUE, error->message);
      return 1;
    }

  /* the gateway named, or the one of this machine, as --prepare finds it */
  checker.gateway = opts->gateway;
  if (checker.gateway == NULL && !opts->offline)
    {
      g_autoptr(GDBusProxy) local = playlist_gateway_find_local (NULL, &local_gateway);

      checker.gateway = local_gateway;
    }
  if (checker.gateway != NULL && opts->progress)
    g_printerr (_("%s: asking the gateway at %s whether it serves these URLs\n"), file_or_url,
                checker.gateway);

  n_items = alv_playlist_get_n_items (pl);
  if (n_items == 0)
    finding (&checker, 0, FALSE, _("the playlist has no items"));

  for (guint i = 0; i < n_items; i++)
    {
      AlvPlaylistItem *item = alv_playlist_get_item (pl, i);
      GDateTime *start = alv_playlist_item_get_start (item);
      GDateTime *end = alv_playlist_item_get_end (item);
      guint n = i + 1;
      UrlReport *report;

      if (start == NULL || end == NULL)
        {
          finding (&checker, n, TRUE, _("no time slot"));
        }
      else
        {
          if (g_date_time_compare (end, start) <= 0)
            finding (&checker, n, TRUE, _("the slot ends before it starts"));
          if (prev != NULL && alv_playlist_item_get_end (prev) != NULL)
            {
              GTimeSpan delta = g_date_time_difference (start, alv_playlist_item_get_end (prev));
              g_autofree char *span = format_seconds (delta < 0 ? -delta : delta);

              if (delta < 0)
                findingf (&checker, n, TRUE, _("overlaps item %u by %s"), n - 1, span);
              else if (delta > 0)
                findingf (&checker, n, FALSE, _("gap of %s after item %u"), span, n - 1);
            }
          if (last_end == NULL || g_date_time_compare (end, last_end) > 0)
            {
              g_clear_pointer (&last_end, g_date_time_unref);
              last_end = g_date_time_ref (end);
            }
        }

      report = examine (&checker, item);
      if (report->unreachable != NULL)
        {
          if (checker.n_unreachable++ == 0)
            checker.first_unreachable = report->unreachable;
        }
      if (report->refused != NULL)
        {
          if (checker.n_refused++ == 0)
            checker.first_refused = report->refused;
        }
      for (guint j = 0; j < report->errors->len; j++)
        finding (&checker, n, TRUE, report->errors->pdata[j]);
      for (guint j = 0; j < report->warnings->len; j++)
        finding (&checker, n, FALSE, report->warnings->pdata[j]);

      if (prev != NULL)
        {
          const char *a = item_mime (prev, prev_report);
          const char *b = item_mime (item, report);

          if (prev_report->format_key != NULL && report->format_key != NULL)
            {
              if (!g_str_equal (prev_report->format_key, report->format_key))
                findingf (&checker, n, TRUE,
                          _("the stream format changes from item %u (%s) to %s; a player "
                            "cannot switch codec in the middle of a stream"),
                          n - 1, prev_report->format, report->format);
            }
          else if (a != NULL && b != NULL && g_ascii_strcasecmp (a, b) != 0)
            {
              findingf (&checker, n, TRUE,
                        _("the media type changes from item %u (%s) to %s; a player "
                          "cannot switch codec in the middle of a stream"),
                        n - 1, a, b);
            }
        }
      prev = item;
      prev_report = report;
    }

  if (last_end != NULL && g_date_time_compare (last_end, now) <= 0)
    {
      g_autofree char *when = alv_time_format_w3cdtf (last_end);

      findingf (&checker, 0, FALSE, _("every item is in the past (the last slot ended at %s)"),
                when);
    }

  g_clear_pointer (&checker.probe, playlist_probe_free);
  /* one line that says how bad it is, and where to start */
  if (checker.n_unreachable > 0)
    g_printerr (_("%s: %u of %u items unreachable: first: %s\n"), file_or_url,
                checker.n_unreachable, n_items, checker.first_unreachable);
  if (checker.n_refused > 0)
    g_printerr (_("%s: %u of %u items refused by the gateway: first: %s\n"), file_or_url,
                checker.n_refused, n_items, checker.first_refused);
  g_printerr (_("%s: %u item(s), %u error(s), %u warning(s)\n"), file_or_url, n_items,
              checker.n_errors, checker.n_warnings);
  return checker.n_errors > 0 ? 1 : 0;
}
