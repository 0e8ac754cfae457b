/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Fixtures for the local stream tests: real media from real encoders
 * (gst_parse_launch into a temporary file) and a raw HTTP client that
 * sees the exact bytes on the wire.
 */
#include "config.h"

#include "stream-media.h"
#include "test-util.h"

#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gst/gst.h>

gboolean
stream_media_have_elements (const char *first,
                            ...)
{
  va_list args;
  gboolean ok = TRUE;

  va_start (args, first);
  for (const char *name = first; name != NULL; name = va_arg (args, const char *))
    {
      g_autoptr(GstElementFactory) factory = gst_element_factory_find (name);

      if (factory == NULL)
        ok = FALSE;
    }
  va_end (args);
  return ok;
}

GBytes *
stream_media_encode (const char  *description,
                     GError     **error)
{
  g_autofree char *path = NULL;
  g_autofree char *full = NULL;
  g_autoptr(GstElement) pipeline = NULL;
  g_autoptr(GstBus) bus = NULL;
  g_autoptr(GstMessage) msg = NULL;
  char *contents = NULL;
  gsize len = 0;
  int fd;

  fd = g_file_open_tmp ("alv-media-XXXXXX", &path, error);
  if (fd < 0)
    return NULL;
  close (fd);
  full = g_strdup_printf ("%s ! filesink location=\"%s\"", description, path);
  pipeline = gst_parse_launch (full, error);
  if (pipeline == NULL)
    {
      g_unlink (path);
      return NULL;
    }
  bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PLAYING);
  msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  if (msg == NULL || GST_MESSAGE_TYPE (msg) != GST_MESSAGE_EOS)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "encoding failed: %s", description);
      g_unlink (path);
      return NULL;
    }
  if (!g_file_get_contents (path, &contents, &len, error))
    {
      g_unlink (path);
      return NULL;
    }
  g_unlink (path);
  return g_bytes_new_take (contents, len);
}

static GBytes *
encode_or_fail (const char *description)
{
  g_autoptr(GError) error = NULL;
  GBytes *bytes = stream_media_encode (description, &error);

  g_assert_no_error (error);
  g_assert_nonnull (bytes);
  g_assert_cmpuint (g_bytes_get_size (bytes), >, 0);
  return bytes;
}

/* NULL when an encoder is missing: the caller skips */
GBytes *
stream_media_mp3 (guint    n_buffers,
                  gboolean xing)
{
  g_autofree char *desc = NULL;

  if (!stream_media_have_elements ("audiotestsrc", "lamemp3enc", NULL)
      || (xing && !stream_media_have_elements ("xingmux", NULL)))
    return NULL;
  desc = g_strdup_printf ("audiotestsrc num-buffers=%u samplesperbuffer=1152 ! "
                          "audio/x-raw,rate=44100,channels=2 ! "
                          "lamemp3enc target=bitrate bitrate=128 cbr=true%s",
                          n_buffers, xing ? " ! xingmux" : "");
  return encode_or_fail (desc);
}

GBytes *
stream_media_vorbis (guint       n_buffers,
                     const char *title,
                     guint       frequency)
{
  g_autofree char *desc = NULL;

  if (!stream_media_have_elements ("audiotestsrc", "vorbisenc", "oggmux", "taginject", NULL))
    return NULL;
  /* frequency 0: white noise, which compresses badly (large items) */
  desc = g_strdup_printf ("audiotestsrc num-buffers=%u freq=%u wave=%s ! "
                          "audio/x-raw,rate=44100,channels=2 ! taginject tags=\"title=%s\" ! "
                          "vorbisenc ! oggmux",
                          n_buffers, frequency, frequency == 0 ? "white-noise" : "sine", title);
  return encode_or_fail (desc);
}

GBytes *
stream_media_opus (guint n_buffers)
{
  g_autofree char *desc = NULL;

  if (!stream_media_have_elements ("audiotestsrc", "opusenc", "oggmux", NULL))
    return NULL;
  desc = g_strdup_printf ("audiotestsrc num-buffers=%u ! audio/x-raw,rate=48000,channels=2 ! "
                          "opusenc ! oggmux", n_buffers);
  return encode_or_fail (desc);
}

static void
raw_client_read_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  RawClient *client = user_data;
  GError *error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  client->pending--;
  if (n < 0)
    {
      client->error = error;
      client->eof = TRUE;
      return;
    }
  if (n == 0)
    {
      client->eof = TRUE;
      return;
    }
  g_byte_array_append (client->received, client->buf, (guint) n);
  if (!client->reading)
    return;
  client->pending++;
  g_input_stream_read_async (G_INPUT_STREAM (source), client->buf, sizeof client->buf,
                             G_PRIORITY_DEFAULT, client->cancellable, raw_client_read_cb, client);
}

RawClient *
raw_client_new (guint16     port,
                const char *request,
                gboolean    reading)
{
  g_autoptr(GSocketClient) sc = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  RawClient *client = g_new0 (RawClient, 1);
  gsize written = 0;

  client->received = g_byte_array_new ();
  client->cancellable = g_cancellable_new ();
  client->reading = reading;
  client->conn = g_socket_client_connect_to_host (sc, "127.0.0.1", port, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (client->conn)),
                             request, strlen (request), &written, NULL, &error);
  g_assert_no_error (error);
  if (reading)
    {
      client->pending++;
      g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (client->conn)),
                                 client->buf, sizeof client->buf, G_PRIORITY_DEFAULT,
                                 client->cancellable, raw_client_read_cb, client);
    }
  return client;
}

void
raw_client_free (RawClient *client)
{
  g_cancellable_cancel (client->cancellable);
  while (client->pending > 0)
    g_main_context_iteration (NULL, TRUE);
  g_io_stream_close (G_IO_STREAM (client->conn), NULL, NULL);
  g_object_unref (client->conn);
  g_object_unref (client->cancellable);
  g_byte_array_unref (client->received);
  g_clear_error (&client->error);
  g_free (client);
}

static gboolean
client_eof (gpointer data)
{
  return ((RawClient *) data)->eof;
}

void
raw_client_wait_eof (RawClient *client)
{
  test_wait_until (client_eof, client, 10000);
}

/* Whether @client has the head and @want bytes of body, or the end. */
gboolean
raw_client_has_body (RawClient *client,
                     gsize      want)
{
  gssize head = raw_client_head_end (client);

  return client->eof || (head >= 0 && client->received->len >= (gsize) head + want);
}

typedef struct
{
  RawClient *client;
  gsize want;
} BodyWait;

static gboolean
body_cond (gpointer data)
{
  BodyWait *w = data;

  return raw_client_has_body (w->client, w->want);
}

/* Runs the main context until raw_client_has_body(); fails the test if
 * that takes longer than @timeout_ms. */
void
raw_client_wait_body (RawClient *client,
                      gsize      want,
                      guint      timeout_ms)
{
  BodyWait w = { client, want };

  if (!test_wait (body_cond, &w, timeout_ms))
    {
      g_autofree char *msg = g_strdup_printf ("timed out after %u ms waiting for %" G_GSIZE_FORMAT
                                              " bytes of body (%u bytes received in all)",
                                              timeout_ms, want, client->received->len);

      g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
    }
}

gssize
raw_client_head_end (RawClient *client)
{
  const guint8 *d = client->received->data;

  for (gsize i = 0; i + 4 <= client->received->len; i++)
    if (memcmp (d + i, "\r\n\r\n", 4) == 0)
      return (gssize) (i + 4);
  return -1;
}

char *
raw_client_head (RawClient *client)
{
  gssize end = raw_client_head_end (client);

  g_assert_cmpint (end, >, 0);
  return g_strndup ((const char *) client->received->data, (gsize) end);
}

GBytes *
raw_client_body (RawClient *client)
{
  gssize end = raw_client_head_end (client);

  g_assert_cmpint (end, >, 0);
  return g_bytes_new (client->received->data + end, client->received->len - (gsize) end);
}

gsize
stream_serve_bytes (SoupServerMessage *msg,
                    GBytes            *media,
                    const char        *content_type)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  gsize total;
  const guint8 *data = g_bytes_get_data (media, &total);
  SoupRange *ranges = NULL;
  int n = 0;

  if (soup_message_headers_get_ranges (req, total, &ranges, &n) && n == 1)
    {
      goffset start = ranges[0].start, end = MIN (ranges[0].end, (goffset) total - 1);

      soup_message_headers_free_ranges (req, ranges);
      soup_message_headers_set_content_range (resp, start, end, total);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
      soup_server_message_set_response (msg, content_type, SOUP_MEMORY_COPY,
                                        (const char *) data + start, end - start + 1);
      return (gsize) (end - start + 1);
    }
  if (ranges != NULL)
    soup_message_headers_free_ranges (req, ranges);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, content_type, SOUP_MEMORY_COPY, (const char *) data, total);
  return total;
}

const guint8 *
stream_find_bytes (const guint8 *hay,
                   gsize         hay_len,
                   const guint8 *needle,
                   gsize         len)
{
  for (gsize i = 0; i + len <= hay_len; i++)
    if (memcmp (hay + i, needle, len) == 0)
      return hay + i;
  return NULL;
}

GDateTime *
stream_datetime (gint64 unix_us)
{
  g_autoptr(GDateTime) s = g_date_time_new_from_unix_utc (unix_us / G_USEC_PER_SEC);

  return g_date_time_add (s, unix_us % G_USEC_PER_SEC);
}

/* A WebM file of @seconds of 25 fps VP8 (160x120, test pattern @pattern,
 * a keyframe every second) and 48 kHz stereo Opus or 44.1 kHz Vorbis
 * (@audio "opus", "vorbis" or NULL for none); or audio only when
 * @pattern < 0.  NULL when an encoder is missing: the caller skips. */
GBytes *
stream_media_webm (guint       seconds,
                   int         pattern,
                   const char *audio)
{
  g_autoptr(GString) desc = g_string_new (NULL);

  if (!stream_media_have_elements ("videotestsrc", "vp8enc", "webmmux", "audiotestsrc", NULL)
      || (g_strcmp0 (audio, "opus") == 0 && !stream_media_have_elements ("opusenc", NULL))
      || (g_strcmp0 (audio, "vorbis") == 0 && !stream_media_have_elements ("vorbisenc", NULL)))
    return NULL;
  g_string_append (desc, "webmmux name=mux");
  if (pattern >= 0)
    g_string_append_printf (desc, " videotestsrc num-buffers=%u pattern=%d ! "
                            "video/x-raw,width=160,height=120,framerate=25/1 ! "
                            "vp8enc keyframe-max-dist=25 deadline=1 ! queue ! mux.",
                            seconds * 25, pattern);
  if (g_strcmp0 (audio, "opus") == 0)
    g_string_append_printf (desc, " audiotestsrc num-buffers=%u samplesperbuffer=960 ! "
                            "audio/x-raw,rate=48000,channels=2 ! opusenc ! queue ! mux.",
                            seconds * 50);
  else if (g_strcmp0 (audio, "vorbis") == 0)
    g_string_append_printf (desc, " audiotestsrc num-buffers=%u samplesperbuffer=882 ! "
                            "audio/x-raw,rate=44100,channels=2 ! vorbisenc ! queue ! mux.",
                            seconds * 50);
  /* stream_media_encode appends "! filesink": the muxer's src goes there */
  g_string_append (desc, " mux.");
  return encode_or_fail (desc->str);
}

/* Ogg Theora at 25 frames/s, 320×240, a keyframe every @keyframe_every
 * frames, with a Vorbis track of the same length when @audio; @pattern is
 * a videotestsrc pattern (smpte, ball, …) and @title goes into both
 * comment headers.  NULL when an element is missing: the caller skips. */
GBytes *
stream_media_theora (guint       n_frames,
                     const char *pattern,
                     const char *title,
                     guint       keyframe_every,
                     gboolean    audio)
{
  g_autofree char *desc = NULL;
  g_autofree char *audio_branch = NULL;

  if (!stream_media_have_elements ("videotestsrc", "theoraenc", "oggmux", "taginject", NULL)
      || (audio && !stream_media_have_elements ("audiotestsrc", "vorbisenc", NULL)))
    return NULL;
  if (audio)
    /* 1024 samples per buffer at 44.1 kHz: as long as the video, rounded up */
    audio_branch = g_strdup_printf ("audiotestsrc num-buffers=%u samplesperbuffer=1024 ! "
                                    "audio/x-raw,rate=44100,channels=2 ! "
                                    "taginject tags=\"title=%s\" ! vorbisenc ! queue ! mux. ",
                                    (guint) ((guint64) n_frames * 44100 / 25 / 1024 + 1), title);
  desc = g_strdup_printf ("oggmux name=mux "
                          "videotestsrc num-buffers=%u pattern=%s ! "
                          "video/x-raw,width=320,height=240,framerate=25/1 ! "
                          "taginject tags=\"title=%s\" ! "
                          "theoraenc keyframe-freq=%u keyframe-force=%u ! queue ! mux. %s mux.",
                          n_frames, pattern, title, keyframe_every, keyframe_every,
                          audio_branch != NULL ? audio_branch : "");
  return encode_or_fail (desc);
}

static GstPadProbeReturn
video_count_probe_cb (GstPad          *pad G_GNUC_UNUSED,
                GstPadProbeInfo *info,
                gpointer         user_data)
{
  StreamVideoCount *vc = user_data;

  g_mutex_lock (&vc->lock);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER)
    {
      GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER (info);
      GstClockTime running = gst_segment_to_running_time (&vc->segment, GST_FORMAT_TIME,
                                                          GST_BUFFER_PTS (buffer));

      GstMapInfo map;

      /* the first byte is the top left pixel's first component (whatever
       * format playbin chose): white in smpte bars (One), black (Two) */
      if (gst_buffer_map (buffer, &map, GST_MAP_READ) && map.size > 0)
        {
          if (map.data[0] > 160)
            vc->frames[0]++;
          else if (map.data[0] < 64)
            vc->frames[1]++;
          else
            vc->other_frames++;
          gst_buffer_unmap (buffer, &map);
        }
      if (GST_CLOCK_TIME_IS_VALID (running) && GST_CLOCK_TIME_IS_VALID (vc->last_running))
        {
          if (running < vc->last_running)
            vc->backwards = TRUE;
          else
            vc->max_step = MAX (vc->max_step, running - vc->last_running);
        }
      if (GST_CLOCK_TIME_IS_VALID (running))
        vc->last_running = running;
    }
  else
    {
      GstEvent *event = GST_PAD_PROBE_INFO_EVENT (info);

      if (GST_EVENT_TYPE (event) == GST_EVENT_SEGMENT)
        gst_event_copy_segment (event, &vc->segment);
    }
  g_mutex_unlock (&vc->lock);
  return GST_PAD_PROBE_OK;
}

/* A fakesink (not synchronised) that counts what reaches it into @vc. */
GstElement *
stream_video_counting_sink (StreamVideoCount *vc)
{
  GstElement *sink = gst_element_factory_make ("fakesink", NULL);
  g_autoptr(GstPad) pad = gst_element_get_static_pad (sink, "sink");

  memset (vc, 0, sizeof *vc);
  g_mutex_init (&vc->lock);
  gst_segment_init (&vc->segment, GST_FORMAT_TIME);
  vc->last_running = GST_CLOCK_TIME_NONE;
  g_object_set (sink, "sync", FALSE, NULL);
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                     video_count_probe_cb, vc, NULL);
  return sink;
}


void
stream_video_count_clear (StreamVideoCount *vc)
{
  g_mutex_clear (&vc->lock);
}
