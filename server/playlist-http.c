/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Synchronous HTTP helpers for `alluvium-server playlist` (libsoup 3).
 * Every request runs under the session's timeout, every body read is
 * bounded, and a completed send is only headers: callers check the status.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "playlist-http.h"

#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "playlist-paths.h"

#define CHUNK_SIZE (64 * 1024)

SoupSession *
playlist_http_session_new (guint timeout_seconds)
{
  return soup_session_new_with_options ("timeout", MAX (timeout_seconds, 1),
                                        "idle-timeout", MAX (timeout_seconds, 1),
                                        "user-agent", PACKAGE_NAME "/" PACKAGE_VERSION,
                                        NULL);
}

static SoupMessage *
new_get (const char  *url,
         GError     **error)
{
  SoupMessage *msg = NULL;

  if (playlist_paths_is_http_url (url))
    msg = soup_message_new (SOUP_METHOD_GET, url);
  if (msg == NULL)
    g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                 _("“%s” is not a valid http or https URL"), url);
  return msg;
}

static GInputStream *
send_checked (SoupSession  *session,
              SoupMessage  *msg,
              GError      **error)
{
  g_autoptr(GInputStream) stream = soup_session_send (session, msg, NULL, error);
  guint status;

  if (stream == NULL)
    return NULL;
  status = soup_message_get_status (msg);
  if (status != SOUP_STATUS_OK)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED, _("HTTP %u %s"), status,
                   soup_message_get_reason_phrase (msg) ? soup_message_get_reason_phrase (msg) : "");
      g_input_stream_close (stream, NULL, NULL);
      return NULL;
    }
  return g_steal_pointer (&stream);
}

/* Reads @stream to its end, refusing bodies longer than @max bytes. */
static GBytes *
read_bounded (GInputStream  *stream,
              gsize          max,
              GError       **error)
{
  g_autoptr(GByteArray) body = g_byte_array_new ();
  g_autofree guint8 *buf = g_malloc (CHUNK_SIZE);

  for (;;)
    {
      gssize n = g_input_stream_read (stream, buf, CHUNK_SIZE, NULL, error);

      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (body->len + (gsize) n > max)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                       _("the response is larger than %zu bytes"), max);
          return NULL;
        }
      g_byte_array_append (body, buf, (guint) n);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&body));
}

/* Loads and parses a playlist from a local file or an http(s) URL. */
AlvPlaylist *
playlist_http_load_playlist (SoupSession  *session,
                             const char   *file_or_url,
                             GError      **error)
{
  g_autoptr(SoupMessage) msg = NULL;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GBytes) body = NULL;

  if (!playlist_paths_is_http_url (file_or_url))
    return alv_playlist_parse_file (file_or_url, error);

  msg = new_get (file_or_url, error);
  if (msg == NULL)
    return NULL;
  stream = send_checked (session, msg, error);
  if (stream == NULL)
    return NULL;
  body = read_bounded (stream, ALV_PLAYLIST_MAX_SIZE, error);
  g_input_stream_close (stream, NULL, NULL);
  if (body == NULL)
    return NULL;
  return alv_playlist_parse_bytes (body, error);
}

/* Asks for the first byte of @url.  On success (any HTTP answer) returns
 * the status and, when the server says, the full length of the resource
 * (-1 when it does not).  A server may ignore Range and answer 200: the
 * body is then dropped unread. */
gboolean
playlist_http_probe (SoupSession  *session,
                     const char   *url,
                     guint        *status_out,
                     gint64       *total_length_out,
                     GError      **error)
{
  g_autoptr(SoupMessage) msg = new_get (url, error);
  g_autoptr(GInputStream) stream = NULL;
  SoupMessageHeaders *headers;
  goffset start = 0, end = 0, total = -1;
  guint status;

  *status_out = 0;
  *total_length_out = -1;
  if (msg == NULL)
    return FALSE;
  soup_message_headers_set_range (soup_message_get_request_headers (msg), 0, 0);
  stream = soup_session_send (session, msg, NULL, error);
  if (stream == NULL)
    return FALSE;

  status = soup_message_get_status (msg);
  headers = soup_message_get_response_headers (msg);
  if (status == SOUP_STATUS_PARTIAL_CONTENT &&
      soup_message_headers_get_content_range (headers, &start, &end, &total))
    *total_length_out = total;
  else if (status == SOUP_STATUS_OK &&
           soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH)
    *total_length_out = soup_message_headers_get_content_length (headers);
  *status_out = status;
  g_input_stream_close (stream, NULL, NULL);
  return TRUE;
}

/* Downloads @url and builds its hash tree (default block size) as it
 * streams; more than @max_length bytes is an error. */
AlvHashTree *
playlist_http_hash (SoupSession  *session,
                    const char   *url,
                    guint64       max_length,
                    GError      **error)
{
  g_autoptr(SoupMessage) msg = new_get (url, error);
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(AlvTreeHasher) hasher = NULL;
  g_autofree guint8 *buf = NULL;

  if (msg == NULL)
    return NULL;
  stream = send_checked (session, msg, error);
  if (stream == NULL)
    return NULL;

  hasher = alv_tree_hasher_new (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE);
  buf = g_malloc (CHUNK_SIZE);
  for (;;)
    {
      gssize n = g_input_stream_read (stream, buf, CHUNK_SIZE, NULL, error);

      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (alv_tree_hasher_get_length (hasher) + (guint64) n > max_length)
        {
          g_input_stream_close (stream, NULL, NULL);
          g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                       _("the resource is larger than %" PRIu64 " bytes"),
                       max_length);
          return NULL;
        }
      alv_tree_hasher_update (hasher, buf, (gsize) n);
    }
  g_input_stream_close (stream, NULL, NULL);
  return alv_tree_hasher_finish (hasher);
}
