/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Prepare mode: for every distinct item URL, `GET <gateway>/resolve?url=…`
 * (doc/gateway-protocol.md; server/gateway-server.c) until the gateway
 * knows the item.  A gateway that is still hashing answers 202 with
 * Retry-After, one that is busy 429 (or 503 with Retry-After); we come
 * back as told (each wait capped, each item bounded by --max-wait) instead
 * of holding requests open.  The items are worked round-robin: every URL
 * is asked for once before any is asked again, so the gateway can hash
 * several files while we wait, and a long playlist is not prepared one
 * file at a time.  When the gateway names the content (X-Content-URN) and
 * the playlist does too, they must agree: a difference means the file
 * changed after the playlist was written.
 *
 * A gateway on this machine that offers org.alluvium.Gateway1 on the
 * session or system bus (`gateway --dbus`) is asked first, in one Prepare
 * call for every URL, so that it starts hashing them all at once and says
 * at once which it refuses; the HTTP rounds then only confirm.  Without
 * --gateway, such a local gateway is the one used, at the Url it reports.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "playlist-prepare.h"

#include <stdio.h>
#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-ocn-headers.h"
#include "playlist-gateway.h"
#include "playlist-http.h"

/* Longest single wait, whatever Retry-After says. */
#define MAX_RETRY_WAIT (30 * G_TIME_SPAN_SECOND)
/* Wait when a 202 or 429 carries no usable Retry-After. */
#define DEFAULT_RETRY_WAIT (G_TIME_SPAN_SECOND)
/* Shortest wait, so a "Retry-After: 0" cannot make us spin. */
#define MIN_RETRY_WAIT (100 * G_TIME_SPAN_MILLISECOND)
/* RFC 6585; libsoup 3.2 has no name for it. */
#define HTTP_TOO_MANY_REQUESTS 429

typedef enum
{
  ATTEMPT_READY,
  ATTEMPT_FAILED,
  ATTEMPT_RETRY,
} Attempt;

/* One distinct URL still to prepare. */
typedef struct
{
  AlvPlaylistItem *item;        /* first item with this URL (borrowed) */
  guint n;                      /* its 1-based index, for messages */
  gint64 deadline;              /* monotonic; set on the first attempt */
  gint64 next_try;              /* monotonic */
} Pending;

typedef struct
{
  const PlaylistOptions *opts;
  SoupSession *session;
  const char *label;
  const char *gateway;          /* base URL used for the HTTP rounds */
} Preparer;

/* How long the one Prepare call may take. */
#define PREPARE_CALL_TIMEOUT_MS 10000

G_GNUC_PRINTF (2, 3)
static void
report (const Preparer *p,
        const char     *format,
        ...)
{
  g_autofree char *line = NULL;
  va_list args;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);
  if (p->opts->reports_on_stderr)
    g_printerr ("%s\n", line);
  else
    g_print ("%s\n", line);
}

/* Retry-After is delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * Returns -1 when the header is absent or unusable. */
static GTimeSpan
retry_after (SoupMessage *msg)
{
  const char *value = soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                    "Retry-After");
  guint64 seconds;
  GTimeSpan wait = -1;

  if (value == NULL)
    return -1;
  if (g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT32, &seconds, NULL))
    {
      wait = (GTimeSpan) seconds * G_TIME_SPAN_SECOND;
    }
  else
    {
      g_autoptr(GDateTime) when = soup_date_time_new_from_http_string (value);
      g_autoptr(GDateTime) now = g_date_time_new_now_utc ();

      if (when == NULL)
        return -1;
      wait = g_date_time_difference (when, now);
    }
  return CLAMP (wait, MIN_RETRY_WAIT, MAX_RETRY_WAIT);
}

/* Asks the gateway once about @pending.  On ATTEMPT_RETRY sets *@wait;
 * otherwise has printed the item's final line. */
static Attempt
attempt (const Preparer *p,
         Pending        *pending,
         GTimeSpan      *wait)
{
  const char *url = alv_playlist_item_get_url (pending->item);
  g_autofree char *request = playlist_gateway_resolve_url (p->gateway, url);
  g_autoptr(SoupMessage) msg = soup_message_new (SOUP_METHOD_GET, request);
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *reason = NULL;
  const char *phrase;
  guint status;

  if (msg == NULL)
    {
      report (p, _("%s:item %u: error: cannot make a gateway request for %s"),
              p->label, pending->n, url);
      return ATTEMPT_FAILED;
    }
  stream = soup_session_send (p->session, msg, NULL, &error);
  if (stream == NULL)
    {
      report (p, _("%s:item %u: error: cannot reach the gateway: %s"),
              p->label, pending->n, error->message);
      return ATTEMPT_FAILED;
    }
  status = soup_message_get_status (msg);

  if (status == SOUP_STATUS_OK)
    {
      const char *urn = soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                      ALV_HEADER_CONTENT_URN);
      const char *expected = alv_playlist_item_get_urn (pending->item);

      g_input_stream_close (stream, NULL, NULL);
      if (urn != NULL && expected != NULL && g_ascii_strcasecmp (urn, expected) != 0)
        {
          report (p, _("%s:item %u: error: the gateway has %s for %s but the playlist "
                       "says %s (did the file change?)"),
                  p->label, pending->n, urn, url, expected);
          return ATTEMPT_FAILED;
        }
      report (p, _("%s:item %u: ready: %s %s"), p->label, pending->n, url, urn ? urn : "");
      return ATTEMPT_READY;
    }

  *wait = retry_after (msg);
  if (status == SOUP_STATUS_ACCEPTED || status == HTTP_TOO_MANY_REQUESTS ||
      (status == SOUP_STATUS_SERVICE_UNAVAILABLE && *wait >= 0))
    {
      g_input_stream_close (stream, NULL, NULL);
      if (*wait < 0)
        *wait = DEFAULT_RETRY_WAIT;
      return ATTEMPT_RETRY;
    }

  reason = playlist_gateway_read_reason (stream);
  g_input_stream_close (stream, NULL, NULL);
  phrase = soup_message_get_reason_phrase (msg);
  report (p, _("%s:item %u: error: the gateway answered HTTP %u %s%s%s"), p->label,
          pending->n, status, phrase ? phrase : "", *reason ? ": " : "", reason);
  return ATTEMPT_FAILED;
}

/* Asks the local gateway to start hashing every pending URL at once; the
 * URLs it refuses are reported and dropped from @pending.  Returns how
 * many were refused. */
static guint
prepare_over_dbus (const Preparer *p,
                   GDBusProxy     *gateway,
                   GArray         *pending)
{
  g_autoptr(GPtrArray) urls = g_ptr_array_new ();
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) refused = NULL;
  g_autoptr(GError) error = NULL;
  guint n_refused = 0;

  for (guint i = 0; i < pending->len; i++)
    g_ptr_array_add (urls, (gpointer) alv_playlist_item_get_url (g_array_index (pending, Pending, i).item));
  g_ptr_array_add (urls, NULL);

  reply = g_dbus_proxy_call_sync (gateway, "Prepare",
                                  g_variant_new ("(^as)", (char **) urls->pdata),
                                  G_DBUS_CALL_FLAGS_NO_AUTO_START, PREPARE_CALL_TIMEOUT_MS,
                                  NULL, &error);
  if (reply == NULL || !g_variant_is_of_type (reply, G_VARIANT_TYPE ("(a{ss})")))
    {
      /* the HTTP rounds still prepare everything, only less eagerly */
      if (p->opts->progress)
        g_printerr (_("%s: the local gateway did not take the list over D-Bus (%s); "
                      "asking over HTTP\n"), p->label,
                    error != NULL ? error->message : _("unexpected reply"));
      return 0;
    }
  refused = g_variant_get_child_value (reply, 0);
  for (guint i = 0; i < pending->len; )
    {
      Pending *entry = &g_array_index (pending, Pending, i);
      const char *reason = NULL;

      if (g_variant_lookup (refused, alv_playlist_item_get_url (entry->item), "&s", &reason))
        {
          report (p, _("%s:item %u: error: the gateway refuses %s: %s"), p->label, entry->n,
                  alv_playlist_item_get_url (entry->item), reason);
          n_refused++;
          g_array_remove_index (pending, i);
          continue;
        }
      i++;
    }
  if (p->opts->progress)
    g_printerr (_("%s: the local gateway is hashing %u item URL(s)\n"), p->label, pending->len);
  return n_refused;
}

/**
 * playlist_prepare_run:
 * @opts: the options (@gateway set; @timeout, @max_wait)
 * @pl: the playlist
 * @label: how to name the playlist in messages
 *
 * Asks the gateway to resolve every distinct item URL of @pl, printing
 * one line per URL as it becomes ready or fails.
 *
 * Returns: the exit status: 0 when every item is ready, 1 otherwise
 */
int
playlist_prepare_run (const PlaylistOptions *opts,
                      AlvPlaylist           *pl,
                      const char            *label)
{
  g_autoptr(SoupSession) session = playlist_http_session_new (opts->timeout);
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GArray) pending = g_array_new (FALSE, TRUE, sizeof (Pending));
  g_autoptr(GDBusProxy) local = NULL;
  g_autofree char *local_url = NULL;
  Preparer p = { opts, session, label, opts->gateway };
  guint n_items = alv_playlist_get_n_items (pl);
  guint n_urls, failed = 0, ready = 0;

  for (guint i = 0; i < n_items; i++)
    {
      AlvPlaylistItem *item = alv_playlist_get_item (pl, i);
      Pending entry = { item, i + 1, 0, 0 };

      if (g_hash_table_add (seen, (gpointer) alv_playlist_item_get_url (item)))
        g_array_append_val (pending, entry);
    }
  n_urls = pending->len;

  local = playlist_gateway_find_local (opts->gateway, &local_url);
  if (local != NULL)
    {
      p.gateway = local_url;
      failed += prepare_over_dbus (&p, local, pending);
    }
  else if (opts->gateway == NULL)
    {
      g_printerr (_("%s: no --gateway URL given and no gateway offers %s on D-Bus here "
                    "(start it with --dbus=session or --dbus=system)\n"),
                  label, PLAYLIST_GATEWAY_DBUS_NAME);
      return 1;
    }

  while (pending->len > 0)
    {
      gint64 earliest = G_MAXINT64;

      for (guint i = 0; i < pending->len; )
        {
          Pending *entry = &g_array_index (pending, Pending, i);
          gint64 now = g_get_monotonic_time ();
          GTimeSpan wait = 0;

          if (entry->next_try > now)
            {
              earliest = MIN (earliest, entry->next_try);
              i++;
              continue;
            }
          if (entry->deadline == 0)
            entry->deadline = now + (gint64) opts->max_wait * G_TIME_SPAN_SECOND;

          switch (attempt (&p, entry, &wait))
            {
            case ATTEMPT_READY:
              ready++;
              g_array_remove_index (pending, i);
              continue;
            case ATTEMPT_FAILED:
              failed++;
              g_array_remove_index (pending, i);
              continue;
            case ATTEMPT_RETRY:
            default:
              break;
            }

          now = g_get_monotonic_time ();
          if (now + wait > entry->deadline)
            {
              report (&p, _("%s:item %u: error: the gateway is still preparing %s after %u s"),
                      label, entry->n, alv_playlist_item_get_url (entry->item), opts->max_wait);
              failed++;
              g_array_remove_index (pending, i);
              continue;
            }
          if (opts->progress)
            g_printerr (_("%s:item %u: the gateway is busy with %s, asking again in %.1f s…\n"),
                        label, entry->n, alv_playlist_item_get_url (entry->item),
                        (double) wait / G_TIME_SPAN_SECOND);
          entry->next_try = now + wait;
          earliest = MIN (earliest, entry->next_try);
          i++;
        }

      if (pending->len > 0)
        {
          gint64 now = g_get_monotonic_time ();

          if (earliest > now)
            g_usleep ((gulong) (earliest - now));
        }
    }

  if (failed > 0)
    g_printerr (_("%s: %u of %u item URL(s) could not be prepared\n"), label, failed, n_urls);
  else if (opts->progress)
    g_printerr (_("%s: %u item URL(s) ready\n"), label, ready);
  return failed > 0 ? 1 : 0;
}
