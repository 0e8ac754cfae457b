/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of the local Icecast-compatible stream (doc/local-stream.md) with real
 * clients on 127.0.0.1: a raw socket client that sees the exact bytes on the
 * wire, libsoup, and GStreamer pipelines (souphttpsrc ! icydemux ! decodebin,
 * playbin) that decode what the server streams, WebM video stations
 * included.  Media come from real encoders; a test whose encoder is
 * missing is skipped.
 */
#include "config.h"

#include <string.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include "alv-clock.h"
#include "alv-icy.h"
#include "alv-matroska.h"
#include "alv-mp3.h"
#include "alv-ogg.h"
#include "alv-stream-server.h"
#include "stream-media.h"
#include "test-util.h"

#define GET_ICY "GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nIcy-MetaData: 1\r\nUser-Agent: test\r\n\r\n"
#define GET_PLAIN "GET /stream HTTP/1.0\r\nUser-Agent: test\r\n\r\n"

typedef struct
{
  AlvStreamServer *server;
  guint16 port;
  guint added;
  guint removed;
  guint dropped;
  guint64 pushed_at_drop;
} Fixture;

static void
listener_added_cb (AlvStreamServer *server G_GNUC_UNUSED,
                   guint            id G_GNUC_UNUSED,
                   Fixture         *f)
{
  f->added++;
}

static void
listener_removed_cb (AlvStreamServer *server,
                     guint            id G_GNUC_UNUSED,
                     gboolean         dropped,
                     Fixture         *f)
{
  f->removed++;
  if (dropped)
    {
      f->dropped++;
      f->pushed_at_drop = alv_stream_server_get_bytes_pushed (server);
    }
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  f->server = alv_stream_server_new ("/stream");
  g_object_set (f->server,
                "name", "Alluvium Test",
                "description", "A test station",
                "genre", "Test",
                "url", "http://station.invalid/",
                "bitrate", 128,
                NULL);
  g_signal_connect (f->server, "listener-added", G_CALLBACK (listener_added_cb), f);
  g_signal_connect (f->server, "listener-removed", G_CALLBACK (listener_removed_cb), f);
  g_assert_true (alv_stream_server_start (f->server, 0, &error));
  g_assert_no_error (error);
  f->port = alv_stream_server_get_port (f->server);
  g_assert_cmpuint (f->port, >, 0);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_object_unref (f->server);
  /* let cancelled operations finish so nothing outlives the test */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static gboolean
n_added (gpointer data)
{
  Fixture *f = data;

  return f->added >= GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (f->server), "want"));
}

static void
wait_listeners (Fixture *f,
                guint    n)
{
  g_object_set_data (G_OBJECT (f->server), "want", GUINT_TO_POINTER (n));
  test_wait_until (n_added, f, 10000);
}

/* Pushes @data in pieces of @piece bytes. */
static void
push_pieces (AlvStreamServer *server,
             GBytes          *data,
             gsize            piece)
{
  gsize size = g_bytes_get_size (data);

  for (gsize off = 0; off < size; off += piece)
    {
      g_autoptr(GBytes) part = g_bytes_new_from_bytes (data, off, MIN (piece, size - off));

      alv_stream_server_push (server, part);
    }
}

static GBytes *
random_bytes (gsize n)
{
  guint8 *d = g_malloc (n);

  for (gsize i = 0; i < n; i++)
    d[i] = (guint8) g_test_rand_int_range (0, 256);
  return g_bytes_new_take (d, n);
}

/* ---- HTTP framing --------------------------------------------------------- */

static void
check_head (const char *head,
            gboolean    metaint)
{
  g_auto(GStrv) lines = g_strsplit (head, "\r\n", -1);
  g_autofree char *server = g_strdup_printf ("Server: %s/%s", PACKAGE_NAME, PACKAGE_VERSION);
  const char *expect[] = {
    "HTTP/1.0 200 OK",
    NULL, /* Date */
    server,
    "Content-Type: audio/mpeg",
    "icy-name: Alluvium Test",
    "icy-description: A test station",
    "icy-genre: Test",
    "icy-url: http://station.invalid/",
    "icy-br: 128",
    "icy-pub: 0",
    metaint ? "icy-metaint: 16000" : NULL,
    "Cache-Control: no-cache, no-store",
    "Pragma: no-cache",
    "Expires: Mon, 26 Jul 1997 05:00:00 GMT",
    "Connection: close",
    "",
    "",
  };
  guint line = 0;
  gint64 date;
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (expect); i++)
    {
      if (i == 1)
        {
          g_assert_true (g_str_has_prefix (lines[line], "Date: "));
          g_assert_true (alv_http_date_parse (lines[line] + 6, &date, &error));
          g_assert_no_error (error);
          g_assert_cmpint (ABS (date - g_get_real_time () / G_USEC_PER_SEC), <, 60);
          line++;
          continue;
        }
      if (expect[i] == NULL)
        continue;
      g_assert_nonnull (lines[line]);
      g_assert_cmpstr (lines[line], ==, expect[i]);
      line++;
    }
  g_assert_null (lines[line]);
}

static void
test_headers (Fixture       *f,
              gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) icy = raw_client_new (f->port, GET_ICY, TRUE);
  g_autoptr(RawClient) plain = raw_client_new (f->port, GET_PLAIN, TRUE);
  g_autoptr(RawClient) head = NULL;
  g_autoptr(GBytes) mp3 = stream_media_mp3 (20, FALSE);
  g_autofree char *head_icy = NULL;
  g_autofree char *head_plain = NULL;
  g_autofree char *head_head = NULL;
  g_autoptr(GBytes) body = NULL;

  if (mp3 == NULL)
    {
      g_test_skip ("MP3 encoder missing");
      return;
    }
  /* listeners wait for the first item to know the content type */
  wait_listeners (f, 2);
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 2);
  g_assert_cmpuint (icy->received->len, ==, 0);

  alv_stream_server_begin_item (f->server, "audio/mpeg", "Title", "Artist");
  alv_stream_server_push (f->server, mp3);
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (icy);
  raw_client_wait_eof (plain);
  g_assert_no_error (icy->error);
  g_assert_no_error (plain->error);

  head_icy = raw_client_head (icy);
  head_plain = raw_client_head (plain);
  check_head (head_icy, TRUE);
  check_head (head_plain, FALSE);
  /* EOF-delimited: the plain body is exactly the pushed MP3 */
  body = raw_client_body (plain);
  g_assert_true (g_bytes_equal (body, mp3));

  /* HEAD: the same head, no body, not a listener */
  head = raw_client_new (f->port, "HEAD /stream HTTP/1.1\r\n\r\n", TRUE);
  raw_client_wait_eof (head);
  head_head = raw_client_head (head);
  check_head (head_head, FALSE);
  g_assert_cmpint (raw_client_head_end (head), ==, (gssize) head->received->len);
  g_assert_cmpuint (f->added, ==, 2);
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 0);
}

static void
test_errors (Fixture       *f,
             gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *oversized = g_strnfill (ALV_ICY_MAX_REQUEST_SIZE, 'a');
  const struct { const char *request; const char *status; const char *extra; } cases[] = {
    { "GET /other HTTP/1.0\r\n\r\n", "HTTP/1.0 404 Not Found", NULL },
    { "GET /stream/x HTTP/1.1\r\n\r\n", "HTTP/1.0 404 Not Found", NULL },
    { "POST /stream HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.0 405 Method Not Allowed", "Allow: GET, HEAD" },
    { "SOURCE /stream ICE/1.0\r\n\r\n", "HTTP/1.0 400 Bad Request", NULL },
    { "BLAH\r\n\r\n", "HTTP/1.0 400 Bad Request", NULL },
    { "GET /stream HTTP/1.1\r\nBad Header\r\n\r\n", "HTTP/1.0 400 Bad Request", NULL },
    { oversized, "HTTP/1.0 400 Bad Request", NULL },
  };

  alv_stream_server_begin_item (f->server, "audio/mpeg", NULL, NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(RawClient) c = raw_client_new (f->port, cases[i].request, TRUE);
      g_autofree char *head = NULL;
      g_autoptr(GBytes) body = NULL;
      g_autofree char *length = NULL;

      raw_client_wait_eof (c);
      g_assert_no_error (c->error);
      head = raw_client_head (c);
      body = raw_client_body (c);
      g_assert_true (g_str_has_prefix (head, cases[i].status));
      g_assert_nonnull (strstr (head, "\r\nConnection: close\r\n"));
      length = g_strdup_printf ("\r\nContent-Length: %zu\r\n", g_bytes_get_size (body));
      g_assert_nonnull (strstr (head, length));
      g_assert_cmpmem (g_bytes_get_data (body, NULL), 3, cases[i].status + 9, 3);
      if (cases[i].extra != NULL)
        g_assert_nonnull (strstr (head, cases[i].extra));
    }
  g_assert_cmpuint (f->added, ==, 0);
}

static void
test_max_listeners (Fixture       *f,
                    gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) one = NULL;
  g_autoptr(RawClient) two = NULL;
  g_autofree char *head = NULL;

  g_object_set (f->server, "max-listeners", 1, "content-type", "audio/mpeg", NULL);
  one = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 1);
  two = raw_client_new (f->port, GET_PLAIN, TRUE);
  raw_client_wait_eof (two);
  head = raw_client_head (two);
  g_assert_true (g_str_has_prefix (head, "HTTP/1.0 503 Service Unavailable\r\n"));
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 1);
  g_assert_false (one->eof);
}

static gboolean
n_removed_is_one (gpointer data)
{
  return ((Fixture *) data)->removed == 1;
}

static void
test_client_gone (Fixture       *f,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) stays = NULL;
  RawClient *leaves;
  g_autoptr(GBytes) more = random_bytes (1000);

  g_object_set (f->server, "content-type", "audio/aac", NULL);
  stays = raw_client_new (f->port, GET_PLAIN, TRUE);
  leaves = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 2);
  /* noticed without any data flowing */
  raw_client_free (leaves);
  test_wait_until (n_removed_is_one, f, 10000);
  g_assert_cmpuint (f->dropped, ==, 0);
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 1);

  /* an item of another format ends the response of those who are left */
  alv_stream_server_push (f->server, more);
  alv_stream_server_begin_item (f->server, "audio/ogg", "Other", NULL);
  raw_client_wait_eof (stays);
  {
    g_autoptr(GBytes) body = raw_client_body (stays);

    g_assert_true (g_bytes_equal (body, more));
  }
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 0);
}

static void
test_request_timeout (Fixture       *f,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) c = NULL;
  gint64 start = g_get_monotonic_time ();

  g_object_set (f->server, "request-timeout", 1, NULL);
  c = raw_client_new (f->port, "GET /stream HTTP/1.1\r\n", TRUE);
  raw_client_wait_eof (c);
  g_assert_cmpuint (c->received->len, ==, 0);
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_USEC_PER_SEC / 2);
  g_assert_cmpuint (f->added, ==, 0);
}

static void
soup_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GByteArray *body = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  g_assert_no_error (error);
  if (g_bytes_get_size (bytes) == 0)
    {
      g_object_set_data (G_OBJECT (source), "eof", GINT_TO_POINTER (1));
      return;
    }
  g_byte_array_append (body, g_bytes_get_data (bytes, NULL), (guint) g_bytes_get_size (bytes));
  g_input_stream_read_bytes_async (G_INPUT_STREAM (source), 65536, G_PRIORITY_DEFAULT, NULL,
                                   soup_read_cb, body);
}

static void
soup_send_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GInputStream **stream = user_data;
  g_autoptr(GError) error = NULL;

  *stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
}

static gboolean
pointer_set (gpointer data)
{
  return *(gpointer *) data != NULL;
}

static gboolean
stream_eof (gpointer data)
{
  return g_object_get_data (G_OBJECT (data), "eof") != NULL;
}

static void
test_soup_client (Fixture       *f,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(SoupSession) session = soup_session_new ();
  g_autofree char *uri = alv_stream_server_get_uri (f->server);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GByteArray) body = g_byte_array_new ();
  g_autoptr(GBytes) one = random_bytes (100000);
  g_autoptr(GBytes) two = random_bytes (70000);
  g_autoptr(GByteArray) expect = g_byte_array_new ();
  SoupMessageHeaders *headers;

  g_assert_true (g_str_has_prefix (uri, "http://127.0.0.1:"));
  g_assert_true (g_str_has_suffix (uri, "/stream"));
  g_object_set (f->server, "content-type", "application/octet-stream", NULL);
  soup_message_headers_append (soup_message_get_request_headers (msg), "Icy-MetaData", "1");
  soup_session_send_async (session, msg, G_PRIORITY_DEFAULT, NULL, soup_send_cb, &stream);
  /* headers go out at once since the content type is known */
  test_wait_until (pointer_set, &stream, 10000);

  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_cmpint (soup_message_get_http_version (msg), ==, SOUP_HTTP_1_0);
  headers = soup_message_get_response_headers (msg);
  g_assert_cmpint (soup_message_headers_get_encoding (headers), ==, SOUP_ENCODING_EOF);
  g_assert_cmpstr (soup_message_headers_get_one (headers, "Content-Type"), ==, "application/octet-stream");
  g_assert_cmpstr (soup_message_headers_get_one (headers, "icy-name"), ==, "Alluvium Test");
  /* not an MP3/AAC mount: no metadata even when asked */
  g_assert_null (soup_message_headers_get_one (headers, "icy-metaint"));
  g_assert_null (soup_message_headers_get_one (headers, "Transfer-Encoding"));

  g_input_stream_read_bytes_async (stream, 65536, G_PRIORITY_DEFAULT, NULL, soup_read_cb, body);
  alv_stream_server_begin_item (f->server, "application/octet-stream", "One", NULL);
  push_pieces (f->server, one, 30000);
  alv_stream_server_begin_item (f->server, "application/octet-stream", "Two", NULL);
  push_pieces (f->server, two, 7000);
  alv_stream_server_disconnect_all (f->server);
  test_wait_until (stream_eof, stream, 10000);

  g_byte_array_append (expect, g_bytes_get_data (one, NULL), 100000);
  g_byte_array_append (expect, g_bytes_get_data (two, NULL), 70000);
  g_assert_cmpmem (body->data, body->len, expect->data, expect->len);
}

/* ---- ICY metadata ------------------------------------------------------------ */

/* Splits an ICY body into audio and titles, checking the framing. */
static void
deinterleave (GBytes      *body,
              GByteArray  *audio,
              GPtrArray   *titles)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (body, &len);
  gsize pos = 0;

  while (pos < len)
    {
      gsize take = MIN (ALV_ICY_METAINT, len - pos);
      gsize block;

      g_byte_array_append (audio, d + pos, (guint) take);
      pos += take;
      if (pos == len)
        break;
      block = 16 * (gsize) d[pos];
      g_assert_cmpuint (pos + 1 + block, <=, len);
      if (block == 0)
        g_ptr_array_add (titles, NULL);
      else
        {
          const char *text = (const char *) d + pos + 1;
          gsize text_len = strnlen (text, block);
          const char *end;

          g_assert_cmpuint (text_len, <, block); /* at least one NUL */
          g_assert_true (g_str_has_prefix (text, "StreamTitle='"));
          end = g_strstr_len (text, (gssize) text_len, "';");
          g_assert_nonnull (end);
          g_assert_cmpuint ((gsize) (end - text) + 2, ==, text_len);
          g_ptr_array_add (titles, g_strndup (text + 13, (gsize) (end - text) - 13));
        }
      pos += 1 + block;
    }
}

static void
test_icy_metadata (Fixture       *f,
                   gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) c = raw_client_new (f->port, GET_ICY, TRUE);
  g_autoptr(GBytes) audio = random_bytes (60000);
  g_autoptr(GBytes) first = g_bytes_new_from_bytes (audio, 0, 20000);
  g_autoptr(GBytes) rest = g_bytes_new_from_bytes (audio, 20000, 40000);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GByteArray) got = g_byte_array_new ();
  g_autoptr(GPtrArray) titles = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *head = NULL;

  wait_listeners (f, 1);
  /* AAC mounts carry metadata and pass bytes through unchanged */
  alv_stream_server_begin_item (f->server, "audio/aac", "It's 'quoted';evil", "O'Brien");
  push_pieces (f->server, first, 4000);
  alv_stream_server_set_title (f->server, "Caf\xc3\xa9\nnext", NULL);
  push_pieces (f->server, rest, 4000);
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (c);

  head = raw_client_head (c);
  g_assert_nonnull (strstr (head, "\r\nicy-metaint: 16000\r\n"));
  g_assert_nonnull (strstr (head, "\r\nContent-Type: audio/aac\r\n"));
  body = raw_client_body (c);
  deinterleave (body, got, titles);
  g_assert_cmpmem (got->data, got->len, g_bytes_get_data (audio, NULL), 60000);
  /* blocks after 16000, 32000 and 48000 bytes: title, new title, unchanged */
  g_assert_cmpuint (titles->len, ==, 3);
  g_assert_cmpstr (titles->pdata[0], ==, "O'Brien - It's 'quoted' ;evil");
  g_assert_cmpstr (titles->pdata[1], ==, "Caf\xc3\xa9next");
  g_assert_null (titles->pdata[2]);
  /* byte-exact: the second block is what alv_icy_metadata_block() makes */
  {
    g_autoptr(GBytes) block = alv_icy_metadata_block ("Caf\xc3\xa9next");
    gsize off = 16000 + 1 + 16 * (gsize) ((const guint8 *) g_bytes_get_data (body, NULL))[16000] + 16000;

    g_assert_cmpmem ((const guint8 *) g_bytes_get_data (body, NULL) + off, g_bytes_get_size (block),
                     g_bytes_get_data (block, NULL), g_bytes_get_size (block));
  }
}

/* ---- burst, many listeners, slow listeners ------------------------------------ */

static void
check_mp3_frames (GBytes *bytes)
{
  gsize len, pos = 0;
  const guint8 *d = g_bytes_get_data (bytes, &len);
  AlvMp3Frame frame;

  while (pos < len)
    {
      g_assert_true (alv_mp3_frame_parse (d + pos, len - pos, &frame));
      pos += frame.length;
    }
  g_assert_cmpuint (pos, ==, len);
}

static void
test_burst (Fixture       *f,
            gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) mp3 = stream_media_mp3 (400, FALSE);
  g_autoptr(GByteArray) tagged = g_byte_array_new ();
  g_autoptr(RawClient) late = NULL;
  g_autoptr(RawClient) early = NULL;
  g_autoptr(GBytes) body = NULL;
  static const guint8 id3[10] = { 'I', 'D', '3', 4, 0, 0, 0, 0, 1, 0 };
  guint8 tag_body[128];
  gsize len, blen;
  const guint8 *d;

  if (mp3 == NULL)
    {
      g_test_skip ("MP3 encoder missing");
      return;
    }
  d = g_bytes_get_data (mp3, &len);
  g_assert_cmpuint (len, >, 150000);
  /* an ID3v2 tag full of false sync bits in front: it must not reach anyone */
  memset (tag_body, 0xff, sizeof tag_body);
  g_byte_array_append (tagged, id3, 10);
  g_byte_array_append (tagged, tag_body, 128);
  g_byte_array_append (tagged, d, (guint) len);
  /* and an ID3v1 tag at the end */
  memset (tag_body, 0xff, sizeof tag_body);
  memcpy (tag_body, "TAG", 3);
  g_byte_array_append (tagged, tag_body, 128);

  early = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 1);
  alv_stream_server_begin_item (f->server, "audio/mpeg", "Title", NULL);
  {
    g_autoptr(GBytes) all = g_bytes_new (tagged->data, tagged->len);

    push_pieces (f->server, all, 3001);
  }
  late = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 2);
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (late);
  raw_client_wait_eof (early);
  /* from the start: exactly the frames, without the tags */
  body = raw_client_body (early);
  g_assert_true (g_bytes_equal (body, mp3));
  g_clear_pointer (&body, g_bytes_unref);

  body = raw_client_body (late);
  blen = g_bytes_get_size (body);

  /* Icecast's 64 KiB, from a frame boundary, up to the newest byte */
  g_assert_cmpuint (blen, <=, ALV_STREAM_SERVER_DEFAULT_BURST_SIZE);
  g_assert_cmpuint (blen, >, ALV_STREAM_SERVER_DEFAULT_BURST_SIZE - 8192 - ALV_MP3_MAX_FRAME_SIZE);
  g_assert_cmpmem (g_bytes_get_data (body, NULL), blen, d + len - blen, blen);
  check_mp3_frames (body);
}

static void
test_burst_none (Fixture       *f,
                 gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) junk = random_bytes (100000);
  g_autoptr(GBytes) more = random_bytes (5000);
  g_autoptr(RawClient) late = NULL;
  g_autoptr(GBytes) body = NULL;

  g_object_set (f->server, "burst-size", 0, NULL);
  alv_stream_server_begin_item (f->server, "application/octet-stream", NULL, NULL);
  alv_stream_server_push (f->server, junk);
  late = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 1);
  alv_stream_server_push (f->server, more);
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (late);
  body = raw_client_body (late);
  g_assert_true (g_bytes_equal (body, more));
}

static void
test_three_listeners (Fixture       *f,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) mp3 = stream_media_mp3 (300, FALSE);
  RawClient *c[3];
  g_autoptr(GBytes) b0 = NULL;
  g_autoptr(GByteArray) audio2 = g_byte_array_new ();
  g_autoptr(GPtrArray) titles = g_ptr_array_new_with_free_func (g_free);

  if (mp3 == NULL)
    {
      g_test_skip ("MP3 encoder missing");
      return;
    }
  c[0] = raw_client_new (f->port, GET_PLAIN, TRUE);
  c[1] = raw_client_new (f->port, GET_PLAIN, TRUE);
  c[2] = raw_client_new (f->port, GET_ICY, TRUE);
  wait_listeners (f, 3);
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 3);
  alv_stream_server_begin_item (f->server, "audio/mpeg", "Title", "Artist");
  push_pieces (f->server, mp3, 2048);
  alv_stream_server_disconnect_all (f->server);
  for (guint i = 0; i < 3; i++)
    raw_client_wait_eof (c[i]);

  b0 = raw_client_body (c[0]);
  g_assert_true (g_bytes_equal (b0, mp3));
  for (guint i = 1; i < 3; i++)
    {
      g_autoptr(GBytes) b = raw_client_body (c[i]);

      if (i == 2)
        {
          deinterleave (b, audio2, titles);
          g_assert_cmpmem (audio2->data, audio2->len, g_bytes_get_data (b0, NULL), g_bytes_get_size (b0));
          g_assert_cmpstr (titles->pdata[0], ==, "Artist - Title");
        }
      else
        g_assert_true (g_bytes_equal (b, b0));
    }
  for (guint i = 0; i < 3; i++)
    raw_client_free (c[i]);
  g_assert_cmpuint (f->removed, ==, 3);
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 0);
}

typedef struct
{
  RawClient **readers;
  guint n;
  gsize want;
} Caught;

static gboolean
readers_caught_up (gpointer data)
{
  Caught *c = data;

  for (guint i = 0; i < c->n; i++)
    if (raw_client_head_end (c->readers[i]) < 0
        || c->readers[i]->received->len - (gsize) raw_client_head_end (c->readers[i]) < c->want)
      return FALSE;
  return TRUE;
}

static void
test_slow_listener (Fixture       *f,
                    gconstpointer  data G_GNUC_UNUSED)
{
  const gsize piece = 64 * 1024;
  const gsize total = 48 * 1024 * 1024;
  g_autoptr(RawClient) stalled = NULL;
  RawClient *readers[2];
  Caught caught = { readers, 2, 0 };
  g_autoptr(GBytes) pattern = random_bytes (piece);
  gsize pushed = 0;

  g_object_set (f->server, "queue-size", 256 * 1024, "content-type", "application/octet-stream", NULL);
  readers[0] = raw_client_new (f->port, GET_PLAIN, TRUE);
  stalled = raw_client_new (f->port, GET_PLAIN, FALSE);
  readers[1] = raw_client_new (f->port, GET_ICY, TRUE);
  wait_listeners (f, 3);

  /* push as fast as the two good readers take it */
  while (pushed < total && (f->dropped == 0 || pushed < 24 * 1024 * 1024))
    {
      alv_stream_server_push (f->server, pattern);
      pushed += piece;
      caught.want = pushed;
      test_wait_until (readers_caught_up, &caught, 10000);
    }
  /* the stalled one went once its kernel buffers and its queue were full */
  g_test_message ("stalled listener dropped after %" G_GUINT64_FORMAT " bytes pushed", f->pushed_at_drop);
  g_assert_cmpuint (f->dropped, ==, 1);
  g_assert_cmpuint (alv_stream_server_get_n_dropped (f->server), ==, 1);
  g_assert_cmpuint (f->pushed_at_drop, <, 16 * 1024 * 1024);
  g_assert_cmpuint (alv_stream_server_get_n_listeners (f->server), ==, 2);
  /* the others got every byte, in order */
  for (guint r = 0; r < 2; r++)
    {
      const guint8 *body = readers[r]->received->data + raw_client_head_end (readers[r]);

      g_assert_cmpuint (readers[r]->received->len - (gsize) raw_client_head_end (readers[r]), ==, pushed);
      for (gsize off = 0; off < pushed; off += piece)
        g_assert_cmpmem (body + off, piece, g_bytes_get_data (pattern, NULL), piece);
    }
  for (guint r = 0; r < 2; r++)
    raw_client_free (readers[r]);
}

/* ---- Ogg ----------------------------------------------------------------------- */

/* Walks @body page by page and returns the offsets. */
static GArray *
body_pages (GBytes *body)
{
  gsize len, pos = 0;
  const guint8 *d = g_bytes_get_data (body, &len);
  GArray *offsets = g_array_new (FALSE, FALSE, sizeof (gsize));

  while (pos < len)
    {
      AlvOggPage page;

      g_assert_cmpint (alv_ogg_page_parse (d + pos, len - pos, &page), ==, ALV_OGG_PARSE_OK);
      g_array_append_val (offsets, pos);
      pos += page.length;
    }
  g_assert_cmpuint (pos, ==, len);
  return offsets;
}

/* Checks what a late joiner got of @item: the header pages first, byte for
 * byte, then whole pages of the item from a page boundary to its end.
 * Returns the offset in @item where those pages start. */
static gsize
late_joiner_start (GBytes           *body,
                   GBytes           *item,
                   const AlvOggInfo *info)
{
  g_autoptr(GArray) pages = body_pages (body);
  gsize len, blen, rest;
  const guint8 *d = g_bytes_get_data (item, &len);
  const guint8 *b = g_bytes_get_data (body, &blen);

  g_assert_cmpuint (blen, >, info->headers_length);
  g_assert_cmpmem (b, info->headers_length, d, info->headers_length);
  rest = blen - info->headers_length;
  g_assert_cmpuint (rest, <, len - info->headers_length);
  g_assert_cmpmem (b + info->headers_length, rest, d + len - rest, rest);
  return len - rest;
}

static void
test_ogg_late_joiner (Fixture       *f,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) vorbis = stream_media_vorbis (600, "One", 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(RawClient) late = NULL;
  g_autoptr(RawClient) early = NULL;
  g_autoptr(GBytes) body = NULL;
  AlvOggInfo info;
  AlvOggPage page;
  gsize len, blen, rest;
  const guint8 *d, *b;

  if (vorbis == NULL)
    {
      g_test_skip ("Vorbis encoder missing");
      return;
    }
  d = g_bytes_get_data (vorbis, &len);
  g_assert_true (alv_ogg_parse_info (d, len, &info, &error));
  g_assert_cmpuint (len, >, info.headers_length + 2 * ALV_STREAM_SERVER_DEFAULT_BURST_SIZE);

  alv_stream_server_begin_item (f->server, "audio/ogg", "One", NULL);
  /* a listener joining right at the start gets the headers once */
  {
    g_autoptr(GBytes) start = g_bytes_new_from_bytes (vorbis, 0, 5000);
    g_autoptr(GBytes) after = g_bytes_new_from_bytes (vorbis, 5000, len - 5000);

    alv_stream_server_push (f->server, start);
    early = raw_client_new (f->port, GET_ICY, TRUE);
    wait_listeners (f, 1);
    push_pieces (f->server, after, 4096);
  }
  late = raw_client_new (f->port, GET_ICY, TRUE);
  wait_listeners (f, 2);
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (late);
  raw_client_wait_eof (early);

  {
    g_autoptr(GBytes) early_body = raw_client_body (early);
    g_autofree char *head = raw_client_head (early);

    /* Ogg: no icy-metaint even when asked; a whole link from its start */
    g_assert_null (strstr (head, "icy-metaint"));
    g_assert_true (g_bytes_equal (early_body, vorbis));
  }

  body = raw_client_body (late);
  b = g_bytes_get_data (body, &blen);
  rest = len - late_joiner_start (body, vorbis, &info);
  g_assert_cmpint (alv_ogg_page_parse (b + info.headers_length, rest, &page), ==, ALV_OGG_PARSE_OK);
  g_assert_false (page.flags & (ALV_OGG_PAGE_BOS | ALV_OGG_PAGE_CONTINUED));
  g_assert_cmpint (page.granule, >, 0);
  g_assert_cmpuint (rest, <=, ALV_STREAM_SERVER_DEFAULT_BURST_SIZE);
  g_assert_cmpuint (rest, >, ALV_STREAM_SERVER_DEFAULT_BURST_SIZE / 2);
}

static void
test_ogg_chained (Fixture       *f,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) one = stream_media_vorbis (300, "One", 440);
  g_autoptr(GBytes) two = stream_media_vorbis (300, "Two", 880);
  g_autoptr(RawClient) all = NULL;
  g_autoptr(RawClient) second = NULL;
  g_autoptr(GBytes) body_all = NULL;
  g_autoptr(GBytes) body_second = NULL;
  g_autoptr(GByteArray) expect = g_byte_array_new ();
  g_autoptr(GArray) pages = NULL;
  gsize len2, blen;
  const guint8 *d2, *b;

  if (one == NULL || two == NULL)
    {
      g_test_skip ("Vorbis encoder missing");
      return;
    }
  all = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 1);
  alv_stream_server_begin_item (f->server, "audio/ogg", "One", NULL);
  push_pieces (f->server, one, 3000);
  alv_stream_server_begin_item (f->server, "audio/ogg", "Two", NULL);
  {
    g_autoptr(GBytes) head = g_bytes_new_from_bytes (two, 0, 2000);
    g_autoptr(GBytes) tail = g_bytes_new_from_bytes (two, 2000, g_bytes_get_size (two) - 2000);

    /* a joiner now must not get a byte of item one */
    alv_stream_server_push (f->server, head);
    second = raw_client_new (f->port, GET_PLAIN, TRUE);
    wait_listeners (f, 2);
    push_pieces (f->server, tail, 3000);
  }
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (all);
  raw_client_wait_eof (second);

  g_byte_array_append (expect, g_bytes_get_data (one, NULL), (guint) g_bytes_get_size (one));
  g_byte_array_append (expect, g_bytes_get_data (two, NULL), (guint) g_bytes_get_size (two));
  body_all = raw_client_body (all);
  g_assert_cmpmem (g_bytes_get_data (body_all, NULL), g_bytes_get_size (body_all), expect->data, expect->len);

  body_second = raw_client_body (second);
  d2 = g_bytes_get_data (two, &len2);
  b = g_bytes_get_data (body_second, &blen);
  pages = body_pages (body_second);
  g_assert_cmpmem (b, blen, d2, len2);
}

static void
test_ogg_same_serial (Fixture       *f,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) one = stream_media_vorbis (100, "One", 440);
  g_autoptr(RawClient) c = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GArray) pages = NULL;
  gsize len, blen;
  const guint8 *d, *b;
  AlvOggPage first, second;

  if (one == NULL)
    {
      g_test_skip ("Vorbis encoder missing");
      return;
    }
  d = g_bytes_get_data (one, &len);
  c = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 1);
  /* the same file twice in a row: the second link gets another serial */
  for (guint i = 0; i < 2; i++)
    {
      alv_stream_server_begin_item (f->server, "audio/ogg", "One", NULL);
      push_pieces (f->server, one, 1000);
    }
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (c);
  body = raw_client_body (c);
  b = g_bytes_get_data (body, &blen);
  g_assert_cmpuint (blen, ==, 2 * len);
  pages = body_pages (body); /* every page, rewritten ones too, has a good CRC */
  g_assert_cmpmem (b, len, d, len);
  g_assert_cmpint (alv_ogg_page_parse (b, blen, &first), ==, ALV_OGG_PARSE_OK);
  g_assert_cmpint (alv_ogg_page_parse (b + len, blen - len, &second), ==, ALV_OGG_PARSE_OK);
  g_assert_true (second.flags & ALV_OGG_PAGE_BOS);
  g_assert_cmpuint (first.serial, !=, second.serial);
  /* nothing but the serial numbers and CRCs changed */
  for (gsize i = 0; i < pages->len; i++)
    {
      gsize off = g_array_index (pages, gsize, i);
      AlvOggPage p;

      if (off < len)
        continue;
      g_assert_cmpint (alv_ogg_page_parse (b + off, blen - off, &p), ==, ALV_OGG_PARSE_OK);
      g_assert_cmpuint (p.serial, ==, second.serial);
      g_assert_cmpmem (b + off, 14, d + off - len, 14);
      g_assert_cmpmem (b + off + 26, p.length - 26, d + off - len + 26, p.length - 26);
    }
}

/* ---- WebM ------------------------------------------------------------------ */

/* Walks the Clusters of a live WebM body after its header; returns their
 * timecodes.  Every byte must belong to the header or a Cluster. */
static GArray *
body_clusters (const guint8          *b,
               gsize                  blen,
               const AlvMatroskaInfo *info,
               gboolean              *first_keyframe)
{
  GArray *timecodes = g_array_new (FALSE, FALSE, sizeof (guint64));
  gsize pos = info->header_length;

  while (pos < blen)
    {
      AlvMatroskaCluster c;

      g_assert_cmpint (alv_matroska_cluster_parse (b + pos, blen - pos, info, &c), ==, ALV_MATROSKA_PARSE_OK);
      if (timecodes->len == 0)
        *first_keyframe = c.keyframe;
      g_array_append_val (timecodes, c.timecode);
      pos += c.header_length + c.size;
    }
  g_assert_cmpuint (pos, ==, blen);
  return timecodes;
}

/* Two WebM items, a listener from the start and one that joins in the
 * middle of the first: both get the live header (a Segment of unknown size,
 * no Cues or Duration), then Clusters whose time runs on across the item
 * change; the late one starts on a keyframe Cluster of the burst. */
static void
test_webm_late_joiner (Fixture       *f,
                       gconstpointer  data G_GNUC_UNUSED)
{
  GBytes *items[2] = { stream_media_webm (5, 0, "opus"), stream_media_webm (5, 18, "opus") };
  g_autoptr(RawClient) early = NULL;
  g_autoptr(RawClient) late = NULL;
  AlvMatroskaInfo info;
  gsize len;
  const guint8 *d;

  if (items[0] == NULL || items[1] == NULL)
    {
      g_test_skip ("vp8enc, opusenc or webmmux missing");
      g_clear_pointer (&items[0], g_bytes_unref);
      g_clear_pointer (&items[1], g_bytes_unref);
      return;
    }
  d = g_bytes_get_data (items[0], &len);
  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);

  early = raw_client_new (f->port, GET_ICY, TRUE);
  wait_listeners (f, 1);
  alv_stream_server_begin_item (f->server, "video/webm", "One", NULL);
  {
    /* 3.5 s of the first item, then a listener joins */
    gsize cut = info.header_length + (len - info.header_length) * 7 / 10;
    g_autoptr(GBytes) start = g_bytes_new_from_bytes (items[0], 0, cut);
    g_autoptr(GBytes) after = g_bytes_new_from_bytes (items[0], cut, len - cut);

    push_pieces (f->server, start, 4096);
    late = raw_client_new (f->port, GET_PLAIN, TRUE);
    wait_listeners (f, 2);
    push_pieces (f->server, after, 4096);
  }
  alv_stream_server_begin_item (f->server, "video/webm", "Two", NULL);
  push_pieces (f->server, items[1], 3000);
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (early);
  raw_client_wait_eof (late);

  for (guint i = 0; i < 2; i++)
    {
      RawClient *client = i == 0 ? early : late;
      g_autoptr(GBytes) body = raw_client_body (client);
      g_autofree char *head = raw_client_head (client);
      g_autoptr(GArray) timecodes = NULL;
      AlvMatroskaInfo binfo;
      gboolean keyframe = FALSE;
      gsize blen;
      const guint8 *b = g_bytes_get_data (body, &blen);
      guint64 first;

      g_assert_nonnull (strstr (head, "Content-Type: video/webm\r\n"));
      g_assert_null (strstr (head, "icy-metaint"));
      g_assert_cmpint (alv_matroska_parse_info (b, blen, &binfo), ==, ALV_MATROSKA_PARSE_OK);
      g_assert_cmpuint (binfo.duration_us, ==, 0);
      g_assert_true (alv_matroska_compatible (&info, d, &binfo, b));
      g_assert_nonnull (stream_find_bytes (b, binfo.header_length,
                                           (const guint8 *) "\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff", 12));
      g_assert_null (stream_find_bytes (b, binfo.header_length, (const guint8 *) "\x1c\x53\xbb\x6b", 4));
      timecodes = body_clusters (b, blen, &binfo, &keyframe);
      g_assert_true (keyframe);
      first = g_array_index (timecodes, guint64, 0);
      /* a Cluster a second, time running on across the item change (the
       * first item's last Opus block ends at 5.02 s) */
      g_assert_cmpuint (first % 1000, ==, 0);
      g_assert_cmpuint (timecodes->len, ==, 10 - first / 1000);
      for (guint k = 0; k < timecodes->len; k++)
        {
          guint64 want = first + 1000 * k;

          g_assert_cmpuint (g_array_index (timecodes, guint64, k), ==, want + (want >= 5000 ? 20 : 0));
        }
      if (client == early)
        g_assert_cmpuint (first, ==, 0);
      else
        g_assert_cmpuint (first, >, 0);
    }
  g_bytes_unref (items[0]);
  g_bytes_unref (items[1]);
}

/* ---- GStreamer ------------------------------------------------------------------ */

typedef struct
{
  GMutex lock;
  GstClockTime decoded;  /* sum of decoded buffer durations */
  GPtrArray *titles;
  GArray *video_pts;     /* GstClockTime of each decoded video frame */
  gboolean eos;
  gboolean error;
  char *error_message;
} PlayState;

static void
handoff_cb (GstElement *sink G_GNUC_UNUSED,
            GstBuffer  *buffer,
            GstPad     *pad G_GNUC_UNUSED,
            PlayState  *state)
{
  g_mutex_lock (&state->lock);
  if (GST_BUFFER_DURATION_IS_VALID (buffer))
    state->decoded += GST_BUFFER_DURATION (buffer);
  g_mutex_unlock (&state->lock);
}

static gboolean
bus_cb (GstBus     *bus G_GNUC_UNUSED,
        GstMessage *msg,
        gpointer    user_data)
{
  PlayState *state = user_data;

  switch (GST_MESSAGE_TYPE (msg))
    {
    case GST_MESSAGE_EOS:
      state->eos = TRUE;
      break;
    case GST_MESSAGE_ERROR:
      {
        g_autoptr(GError) error = NULL;
        g_autofree char *debug = NULL;

        gst_message_parse_error (msg, &error, &debug);
        state->error = TRUE;
        g_free (state->error_message);
        state->error_message = g_strdup_printf ("%s (%s)", error->message, debug ? debug : "");
        break;
      }
    case GST_MESSAGE_TAG:
      {
        g_autoptr(GstTagList) tags = NULL;
        g_autofree char *title = NULL;

        gst_message_parse_tag (msg, &tags);
        if (gst_tag_list_get_string (tags, GST_TAG_TITLE, &title)
            && (state->titles->len == 0
                || g_strcmp0 (g_ptr_array_index (state->titles, state->titles->len - 1), title) != 0))
          g_ptr_array_add (state->titles, g_steal_pointer (&title));
        break;
      }
    default:
      break;
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
play_done (gpointer data)
{
  PlayState *state = data;

  return state->eos || state->error;
}

static GstElement *
counting_sink (PlayState *state)
{
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);

  g_object_set (sink, "sync", FALSE, "signal-handoffs", TRUE, NULL);
  g_signal_connect (sink, "handoff", G_CALLBACK (handoff_cb), state);
  return sink;
}

/* Plays the mount with @pipeline while @items are pushed, then ends the
 * stream and waits for EOS. */
static void
play_items (Fixture    *f,
            GstElement *pipeline,
            PlayState  *state,
            const char *content_type,
            GBytes    **items,
            const char **titles,
            guint       n_items)
{
  g_autoptr(GstBus) bus = gst_element_get_bus (pipeline);
  guint watch = gst_bus_add_watch (bus, bus_cb, state);

  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  wait_listeners (f, 1);
  for (guint i = 0; i < n_items; i++)
    {
      alv_stream_server_begin_item (f->server, content_type, titles[i], "Artist");
      push_pieces (f->server, items[i], 4096);
    }
  alv_stream_server_disconnect_all (f->server);
  test_wait_until (play_done, state, 30000);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_source_remove (watch);
  g_assert_cmpstr (state->error_message, ==, NULL);
}

static void
play_state_init (PlayState *state)
{
  memset (state, 0, sizeof *state);
  g_mutex_init (&state->lock);
  state->titles = g_ptr_array_new_with_free_func (g_free);
  state->video_pts = g_array_new (FALSE, FALSE, sizeof (GstClockTime));
}

static void
play_state_clear (PlayState *state)
{
  g_mutex_clear (&state->lock);
  g_ptr_array_unref (state->titles);
  g_array_unref (state->video_pts);
  g_free (state->error_message);
}

static gboolean
has_title (PlayState  *state,
           const char *title)
{
  for (guint i = 0; i < state->titles->len; i++)
    if (g_strcmp0 (state->titles->pdata[i], title) == 0)
      return TRUE;
  return FALSE;
}

static void
test_gst_icydemux (Fixture       *f,
                   gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) mp3 = stream_media_mp3 (200, FALSE);
  g_autofree char *uri = alv_stream_server_get_uri (f->server);
  g_autofree char *desc = NULL;
  g_autoptr(GstElement) pipeline = NULL;
  g_autoptr(GstElement) sink = NULL;
  const char *titles[] = { "Title 'quoted';x" };
  PlayState state;
  GstClockTime expect = gst_util_uint64_scale (200 * 1152, GST_SECOND, 44100);

  if (mp3 == NULL || !stream_media_have_elements ("souphttpsrc", "icydemux", "decodebin", NULL))
    {
      g_test_skip ("MP3 encoder, souphttpsrc or icydemux missing");
      return;
    }
  play_state_init (&state);
  desc = g_strdup_printf ("souphttpsrc location=%s iradio-mode=true ! icydemux ! decodebin ! "
                          "fakesink name=sink sync=false signal-handoffs=true", uri);
  pipeline = gst_parse_launch (desc, NULL);
  g_assert_nonnull (pipeline);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_signal_connect (sink, "handoff", G_CALLBACK (handoff_cb), &state);
  play_items (f, pipeline, &state, "audio/mpeg", &mp3, titles, 1);

  g_assert_true (state.eos);
  g_assert_true (has_title (&state, "Artist - Title 'quoted' ;x"));
  g_assert_cmpuint (state.decoded, >=, expect * 9 / 10);
  g_assert_cmpuint (state.decoded, <=, expect * 11 / 10);
  play_state_clear (&state);
}

static void
test_gst_playbin_mp3 (Fixture       *f,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) mp3 = stream_media_mp3 (200, FALSE);
  g_autofree char *uri = alv_stream_server_get_uri (f->server);
  g_autoptr(GstElement) playbin = NULL;
  const char *titles[] = { "Title" };
  PlayState state;
  GstClockTime expect = gst_util_uint64_scale (200 * 1152, GST_SECOND, 44100);

  if (mp3 == NULL || !stream_media_have_elements ("playbin", "souphttpsrc", NULL))
    {
      g_test_skip ("MP3 encoder, playbin or souphttpsrc missing");
      return;
    }
  play_state_init (&state);
  playbin = gst_element_factory_make ("playbin", NULL);
  g_object_set (playbin, "uri", uri,
                "audio-sink", counting_sink (&state),
                "video-sink", gst_element_factory_make ("fakesink", NULL),
                NULL);
  play_items (f, playbin, &state, "audio/mpeg", &mp3, titles, 1);

  g_assert_true (state.eos);
  g_assert_true (has_title (&state, "Artist - Title"));
  g_assert_cmpuint (state.decoded, >=, expect * 9 / 10);
  g_assert_cmpuint (state.decoded, <=, expect * 11 / 10);
  play_state_clear (&state);
}

static void
test_gst_playbin_ogg_chained (Fixture       *f,
                              gconstpointer  data)
{
  gboolean same = GPOINTER_TO_INT (data);
  GBytes *items[2] = { stream_media_vorbis (150, "One", 440),
                       stream_media_vorbis (150, same ? "One" : "Two", 880) };
  g_autofree char *uri = alv_stream_server_get_uri (f->server);
  g_autoptr(GstElement) playbin = NULL;
  const char *titles[] = { "One", "Two" };
  PlayState state;

  if (same)
    {
      g_bytes_unref (items[1]);
      items[1] = g_bytes_ref (items[0]);
    }
  GstClockTime expect = gst_util_uint64_scale (2 * 150 * 1024, GST_SECOND, 44100);

  if (items[0] == NULL || items[1] == NULL || !stream_media_have_elements ("playbin", "souphttpsrc", NULL))
    {
      g_test_skip ("Vorbis encoder, playbin or souphttpsrc missing");
      g_clear_pointer (&items[0], g_bytes_unref);
      g_clear_pointer (&items[1], g_bytes_unref);
      return;
    }
  play_state_init (&state);
  playbin = gst_element_factory_make ("playbin", NULL);
  g_object_set (playbin, "uri", uri,
                "audio-sink", counting_sink (&state),
                "video-sink", gst_element_factory_make ("fakesink", NULL),
                NULL);
  play_items (f, playbin, &state, "audio/ogg", items, titles, 2);

  g_assert_true (state.eos);
  /* both links decoded, each with the title of its comment header */
  g_assert_true (has_title (&state, "One"));
  g_assert_true (same || has_title (&state, "Two"));
  g_assert_cmpuint (state.decoded, >=, expect * 9 / 10);
  g_assert_cmpuint (state.decoded, <=, expect * 11 / 10);
  play_state_clear (&state);
  g_bytes_unref (items[0]);
  g_bytes_unref (items[1]);
}

static void
video_handoff_cb (GstElement *sink G_GNUC_UNUSED,
                  GstBuffer  *buffer,
                  GstPad     *pad G_GNUC_UNUSED,
                  PlayState  *state)
{
  GstClockTime pts = GST_BUFFER_PTS (buffer);

  g_mutex_lock (&state->lock);
  g_array_append_val (state->video_pts, pts);
  g_mutex_unlock (&state->lock);
}

/* playbin joins a WebM station in the middle of its first item (3.5 s of
 * 5) and plays on across the item change: every video frame from the
 * keyframe it joins on is decoded, with no error and no gap in the
 * timestamps (but the 20 ms by which the first item's audio outlasts its
 * video); the audio too. */
static void
test_gst_playbin_webm (Fixture       *f,
                       gconstpointer  data G_GNUC_UNUSED)
{
  GBytes *items[2] = { stream_media_webm (5, 0, "opus"), stream_media_webm (5, 18, "opus") };
  g_autofree char *uri = alv_stream_server_get_uri (f->server);
  g_autoptr(GstElement) playbin = NULL;
  g_autoptr(GstBus) bus = NULL;
  GstElement *vsink;
  PlayState state;
  gsize len = 0, cut;
  guint watch;
  GstClockTime first, frame = GST_SECOND / 25;
  guint expect;

  if (items[0] == NULL || items[1] == NULL || !stream_media_have_elements ("playbin", "souphttpsrc", "vp8dec", NULL))
    {
      g_test_skip ("vp8enc, vp8dec, opusenc, webmmux, playbin or souphttpsrc missing");
      g_clear_pointer (&items[0], g_bytes_unref);
      g_clear_pointer (&items[1], g_bytes_unref);
      return;
    }
  play_state_init (&state);
  playbin = gst_element_factory_make ("playbin", NULL);
  vsink = gst_element_factory_make ("fakesink", NULL);
  g_object_set (vsink, "sync", FALSE, "signal-handoffs", TRUE, NULL);
  g_signal_connect (vsink, "handoff", G_CALLBACK (video_handoff_cb), &state);
  g_object_set (playbin, "uri", uri, "audio-sink", counting_sink (&state), "video-sink", vsink, NULL);

  g_bytes_get_data (items[0], &len);
  cut = len * 7 / 10;
  alv_stream_server_begin_item (f->server, "video/webm", "One", NULL);
  {
    g_autoptr(GBytes) start = g_bytes_new_from_bytes (items[0], 0, cut);

    push_pieces (f->server, start, 4096);
  }
  bus = gst_element_get_bus (playbin);
  watch = gst_bus_add_watch (bus, bus_cb, &state);
  gst_element_set_state (playbin, GST_STATE_PLAYING);
  wait_listeners (f, 1);
  {
    g_autoptr(GBytes) after = g_bytes_new_from_bytes (items[0], cut, len - cut);

    push_pieces (f->server, after, 4096);
  }
  alv_stream_server_begin_item (f->server, "video/webm", "Two", NULL);
  push_pieces (f->server, items[1], 4096);
  alv_stream_server_disconnect_all (f->server);
  test_wait_until (play_done, &state, 30000);
  gst_element_set_state (playbin, GST_STATE_NULL);
  g_source_remove (watch);
  g_assert_cmpstr (state.error_message, ==, NULL);
  g_assert_true (state.eos);

  g_assert_cmpuint (state.video_pts->len, >, 0);
  first = g_array_index (state.video_pts, GstClockTime, 0);
  g_test_message ("%u video frames from %" GST_TIME_FORMAT, state.video_pts->len, GST_TIME_ARGS (first));
  /* joined on a keyframe Cluster (one a second) of the first item */
  g_assert_cmpuint (first % GST_SECOND, ==, 0);
  g_assert_cmpuint (first, >, 0);
  g_assert_cmpuint (first, <, 5 * GST_SECOND);
  expect = (guint) (5 - first / GST_SECOND) * 25 + 125;
  g_assert_cmpuint (state.video_pts->len, ==, expect);
  for (guint i = 1; i < state.video_pts->len; i++)
    {
      GstClockTime prev = g_array_index (state.video_pts, GstClockTime, i - 1);
      GstClockTime pts = g_array_index (state.video_pts, GstClockTime, i);

      g_assert_cmpuint (pts, >, prev);
      g_assert_cmpuint (pts - prev, <=, frame + 20 * GST_MSECOND);
    }
  g_assert_cmpuint (g_array_index (state.video_pts, GstClockTime, expect - 1), ==,
                    10 * GST_SECOND + 20 * GST_MSECOND - frame);
  /* the audio of the same span, within 5 % */
  g_assert_cmpuint (state.decoded, >=, (10 * GST_SECOND - first) * 95 / 100);
  g_assert_cmpuint (state.decoded, <=, (10 * GST_SECOND - first) * 105 / 100);
  play_state_clear (&state);
  g_bytes_unref (items[0]);
  g_bytes_unref (items[1]);
}


/* ---- Ogg Theora ------------------------------------------------------------------ */

/* Where the Theora page holding frame @frame (0-based) begins in @item,
 * which a test encoded with a keyframe every @keyframe_every frames and
 * @frame a multiple of that: the page a joiner there must start with. */
static gsize
theora_keyframe_offset (GBytes *item,
                        guint   frame)
{
  gsize len, pos = 0;
  const guint8 *d = g_bytes_get_data (item, &len);
  guint32 theora = 0;
  guint shift = 0;

  while (pos < len)
    {
      AlvOggPage page;

      g_assert_cmpint (alv_ogg_page_parse (d + pos, len - pos, &page), ==, ALV_OGG_PARSE_OK);
      if ((page.flags & ALV_OGG_PAGE_BOS) && memcmp (d + pos + page.header_length, "\x80theora", 7) == 0)
        {
          const guint8 *h = d + pos + page.header_length;

          theora = page.serial;
          shift = ((h[40] & 0x03) << 3) | (h[41] >> 5);
        }
      /* Theora 3.2.1 counts frames from 1 in granule positions: the page
       * that ends the keyframe's group before it ends on frame - 1 + 1 */
      else if (theora != 0 && page.serial == theora && page.granule > 0
               && (guint64) (page.granule >> shift) == frame + 1)
        return pos;
      pos += page.length;
    }
  g_assert_not_reached ();
}


/* A listener joining a Theora + Vorbis item mid-way gets the header pages
 * of both streams, then the item from a page where a keyframe begins
 * (never mid-GOP), to its end. */
static void
test_ogg_theora_late_joiner (Fixture       *f,
                             gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) item = stream_media_theora (150, "smpte", "One", 25, TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(RawClient) late = NULL;
  g_autoptr(GBytes) body = NULL;
  AlvOggInfo info;
  gsize len, start;
  const guint8 *d;
  gboolean at_keyframe = FALSE;

  if (item == NULL)
    {
      g_test_skip ("Theora or Vorbis encoder missing");
      return;
    }
  d = g_bytes_get_data (item, &len);
  g_assert_true (alv_ogg_parse_info (d, len, &info, &error));
  g_assert_no_error (error);
  alv_stream_server_begin_item (f->server, "video/ogg", "One", NULL);
  push_pieces (f->server, item, 4096);
  late = raw_client_new (f->port, GET_PLAIN, TRUE);
  wait_listeners (f, 1);
  alv_stream_server_disconnect_all (f->server);
  raw_client_wait_eof (late);

  body = raw_client_body (late);
  start = late_joiner_start (body, item, &info);
  for (guint frame = 25; frame < 150; frame += 25)
    at_keyframe = at_keyframe || start == theora_keyframe_offset (item, frame);
  g_assert_true (at_keyframe);
}

/* A Theora + Vorbis station tuned in 2 s into its first item, as the
 * daemon feeds it (the header pages, then the item from a keyframe page),
 * then its second item: playbin decodes pictures of both, with running
 * times that go on across the chain link, and the sound of both. */
static void
test_gst_playbin_theora_chained (Fixture       *f,
                                 gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) one = stream_media_theora (150, "smpte", "One", 25, TRUE);
  g_autoptr(GBytes) two = stream_media_theora (150, "ball", "Two", 25, TRUE);
  g_autofree char *uri = alv_stream_server_get_uri (f->server);
  g_autoptr(GstElement) playbin = NULL;
  g_autoptr(GstBus) bus = NULL;
  g_autoptr(GError) error = NULL;
  AlvOggInfo info;
  StreamVideoCount vc;
  PlayState state;
  gsize join;
  guint watch;

  if (one == NULL || two == NULL || !stream_media_have_elements ("playbin", "souphttpsrc", "theoradec", NULL))
    {
      g_test_skip ("Theora or Vorbis encoder, playbin or souphttpsrc missing");
      return;
    }
  g_assert_true (alv_ogg_parse_info (g_bytes_get_data (one, NULL), g_bytes_get_size (one), &info, &error));
  g_assert_no_error (error);
  join = theora_keyframe_offset (one, 50);
  /* the items go in at once: let the player read them at its pace */
  g_object_set (f->server, "queue-size", 16 * 1024 * 1024, NULL);
  g_test_message ("items of %" G_GSIZE_FORMAT " and %" G_GSIZE_FORMAT " bytes",
                  g_bytes_get_size (one), g_bytes_get_size (two));

  play_state_init (&state);
  playbin = gst_element_factory_make ("playbin", NULL);
  g_object_set (playbin, "uri", uri,
                "audio-sink", counting_sink (&state),
                "video-sink", stream_video_counting_sink (&vc),
                NULL);
  bus = gst_element_get_bus (playbin);
  watch = gst_bus_add_watch (bus, bus_cb, &state);
  gst_element_set_state (playbin, GST_STATE_PLAYING);
  wait_listeners (f, 1);
  alv_stream_server_begin_item (f->server, "video/ogg", "One", NULL);
  {
    g_autoptr(GBytes) headers = g_bytes_new_from_bytes (one, 0, info.headers_length);
    g_autoptr(GBytes) rest = g_bytes_new_from_bytes (one, join, g_bytes_get_size (one) - join);

    alv_stream_server_push (f->server, headers);
    push_pieces (f->server, rest, 4096);
  }
  alv_stream_server_begin_item (f->server, "video/ogg", "Two", NULL);
  push_pieces (f->server, two, 4096);
  alv_stream_server_disconnect_all (f->server);
  test_wait_until (play_done, &state, 30000);
  gst_element_set_state (playbin, GST_STATE_NULL);
  g_source_remove (watch);
  g_assert_cmpstr (state.error_message, ==, NULL);
  g_assert_true (state.eos);

  g_test_message ("video frames: %u of One, %u of Two, %u other; largest step %" GST_TIME_FORMAT
                  "; audio %" GST_TIME_FORMAT, vc.frames[0], vc.frames[1], vc.other_frames,
                  GST_TIME_ARGS (vc.max_step), GST_TIME_ARGS (state.decoded));
  /* frames 50 to 149 of One (GStreamer's oggdemux shows none of the
   * joining page's frames before the last, whose granule position is the
   * first time it knows: 3 at most here), then all 150 of Two */
  g_assert_cmpuint (vc.frames[0], >=, 97);
  g_assert_cmpuint (vc.frames[0], <=, 100);
  g_assert_cmpuint (vc.frames[1], ==, 150);
  g_assert_cmpuint (vc.other_frames, ==, 0);
  g_assert_false (vc.backwards);
  g_assert_cmpuint (vc.max_step, <=, 200 * GST_MSECOND);
  /* and the sound of both: 4 s + 6 s, give or take a page */
  g_assert_cmpuint (state.decoded, >=, 9 * GST_SECOND);
  g_assert_cmpuint (state.decoded, <=, 11 * GST_SECOND);
  stream_video_count_clear (&vc);
  play_state_clear (&state);
}

int
main (int    argc,
      char **argv)
{
  /* isolated XDG dirs have no GSettings schemas: keep GIO's desktop
   * proxy and settings modules out (loopback needs no proxy anyway) */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, func) \
  g_test_add ("/core/stream/" path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("headers", test_headers);
  ADD ("errors", test_errors);
  ADD ("max-listeners", test_max_listeners);
  ADD ("request-timeout", test_request_timeout);
  ADD ("client-gone", test_client_gone);
  ADD ("soup-client", test_soup_client);
  ADD ("icy-metadata", test_icy_metadata);
  ADD ("burst", test_burst);
  ADD ("burst-none", test_burst_none);
  ADD ("three-listeners", test_three_listeners);
  ADD ("slow-listener", test_slow_listener);
  ADD ("ogg-late-joiner", test_ogg_late_joiner);
  ADD ("ogg-chained", test_ogg_chained);
  ADD ("gst/icydemux-mp3", test_gst_icydemux);
  ADD ("gst/playbin-mp3", test_gst_playbin_mp3);
  ADD ("webm-late-joiner", test_webm_late_joiner);
  ADD ("gst/playbin-webm", test_gst_playbin_webm);
  ADD ("ogg-theora-late-joiner", test_ogg_theora_late_joiner);
  ADD ("gst/playbin-theora-chained", test_gst_playbin_theora_chained);
#undef ADD
  g_test_add ("/core/stream/ogg-same-serial", Fixture, NULL, fixture_setup,
              test_ogg_same_serial, fixture_teardown);
  g_test_add ("/core/stream/gst/playbin-ogg-chained", Fixture, GINT_TO_POINTER (FALSE),
              fixture_setup, test_gst_playbin_ogg_chained, fixture_teardown);
  g_test_add ("/core/stream/gst/playbin-ogg-same-file-twice", Fixture, GINT_TO_POINTER (TRUE),
              fixture_setup, test_gst_playbin_ogg_chained, fixture_teardown);
  return g_test_run ();
}
