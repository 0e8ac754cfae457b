/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Media probing for the playlist tool with a synchronous GstDiscoverer.
 * The discoverer's topology is walked from the top: tag wrappers (ID3v2,
 * APE) are looked through to find the real container, whose caps become
 * the item's MIME type; the codec caps of the first audio (and video)
 * stream, with channels and rate, become the stream format.  Anything the
 * discoverer cannot type, or that has no duration (a still image), is
 * refused as "not a media file".
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "playlist-probe.h"

#include <glib/gi18n-lib.h>
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>

#include "alv-error.h"

struct _PlaylistProbe
{
  GstDiscoverer *discoverer;
  guint timeout_seconds;
};

/**
 * playlist_media_info_copy:
 * @info: a #PlaylistMediaInfo
 *
 * Returns: (transfer full): a deep copy of @info
 */
PlaylistMediaInfo *
playlist_media_info_copy (const PlaylistMediaInfo *info)
{
  PlaylistMediaInfo *copy = g_new0 (PlaylistMediaInfo, 1);

  copy->duration_ms = info->duration_ms;
  copy->title = g_strdup (info->title);
  copy->artist = g_strdup (info->artist);
  copy->mime = g_strdup (info->mime);
  copy->format = g_strdup (info->format);
  copy->format_key = g_strdup (info->format_key);
  return copy;
}

/**
 * playlist_media_info_free:
 * @info: (transfer full): a #PlaylistMediaInfo
 *
 * Frees @info.
 */
void
playlist_media_info_free (PlaylistMediaInfo *info)
{
  if (info == NULL)
    return;
  g_free (info->title);
  g_free (info->artist);
  g_free (info->mime);
  g_free (info->format);
  g_free (info->format_key);
  g_free (info);
}

/**
 * playlist_probe_new:
 * @timeout_seconds: how long one file may take to probe
 * @error: return location for a #GError
 *
 * Initialises GStreamer (once) and creates a prober.
 *
 * Returns: (transfer full): a new prober, or %NULL with @error set
 */
PlaylistProbe *
playlist_probe_new (guint    timeout_seconds,
                    GError **error)
{
  g_autoptr(GError) local_error = NULL;
  PlaylistProbe *probe;

  if (!gst_init_check (NULL, NULL, &local_error))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED,
                   _("Cannot initialise GStreamer: %s"), local_error->message);
      return NULL;
    }
  gst_pb_utils_init ();

  probe = g_new0 (PlaylistProbe, 1);
  probe->timeout_seconds = MAX (timeout_seconds, 1);
  probe->discoverer = gst_discoverer_new (MAX (timeout_seconds, 1) * GST_SECOND,
                                          &local_error);
  if (probe->discoverer == NULL)
    {
      g_free (probe);
      g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED,
                   _("Cannot create a media discoverer: %s"),
                   local_error ? local_error->message : "?");
      return NULL;
    }
  return probe;
}

/**
 * playlist_probe_free:
 * @probe: (transfer full): a #PlaylistProbe
 *
 * Frees @probe.
 */
void
playlist_probe_free (PlaylistProbe *probe)
{
  if (probe == NULL)
    return;
  g_clear_object (&probe->discoverer);
  g_free (probe);
}

static gboolean
is_tag_wrapper (const char *name)
{
  return g_strcmp0 (name, "application/x-id3") == 0 ||
         g_strcmp0 (name, "application/x-apetag") == 0;
}

static const char *
caps_name (GstCaps *caps)
{
  if (caps == NULL || gst_caps_get_size (caps) == 0)
    return NULL;
  return gst_structure_get_name (gst_caps_get_structure (caps, 0));
}

/* The MIME type a feed reader and a web server would use for the file,
 * from the caps of the outermost real container (or of the elementary
 * stream when there is no container). */
static char *
mime_for_caps (GstCaps  *caps,
               gboolean  has_video)
{
  const char *name = caps_name (caps);
  const GstStructure *s;
  int mpegversion = 0;

  if (name == NULL)
    return g_strdup ("application/octet-stream");
  s = gst_caps_get_structure (caps, 0);

  if (g_str_equal (name, "audio/ogg") || g_str_equal (name, "application/ogg") ||
      g_str_equal (name, "video/ogg"))
    return g_strdup (has_video ? "video/ogg" : "audio/ogg");
  if (g_str_equal (name, "video/webm") || g_str_equal (name, "audio/webm"))
    return g_strdup (has_video ? "video/webm" : "audio/webm");
  if (g_str_equal (name, "video/x-matroska") || g_str_equal (name, "audio/x-matroska"))
    return g_strdup (has_video ? "video/x-matroska" : "audio/x-matroska");
  if (g_str_equal (name, "video/quicktime") || g_str_equal (name, "audio/x-m4a"))
    return g_strdup (has_video ? "video/mp4" : "audio/mp4");
  if (g_str_equal (name, "audio/x-flac"))
    return g_strdup ("audio/flac");
  if (g_str_equal (name, "audio/x-wav"))
    return g_strdup ("audio/wav");
  if (g_str_equal (name, "audio/x-aiff"))
    return g_strdup ("audio/aiff");
  if (g_str_equal (name, "audio/mpeg"))
    {
      gst_structure_get_int (s, "mpegversion", &mpegversion);
      return g_strdup (mpegversion == 2 || mpegversion == 4 ? "audio/aac" : "audio/mpeg");
    }
  if (g_str_has_prefix (name, "audio/") || g_str_has_prefix (name, "video/"))
    return g_strdup (name);
  return g_strdup ("application/octet-stream");
}

/* Appends a comparable key and a human description of one elementary
 * stream's codec.  The key keeps only fields that force a decoder change:
 * codec identity (with MPEG version and layer), channels, rate. */
static void
describe_stream (GstDiscovererStreamInfo *info,
                 GString                 *key,
                 GString                 *human)
{
  g_autoptr(GstCaps) caps = gst_discoverer_stream_info_get_caps (info);
  g_autofree char *codec = NULL;
  const char *name = caps_name (caps);
  const GstStructure *s;
  int v = 0;

  if (name == NULL)
    return;
  s = gst_caps_get_structure (caps, 0);
  codec = gst_pb_utils_get_codec_description (caps);

  if (key->len > 0)
    g_string_append_c (key, ';');
  g_string_append (key, name);
  if (gst_structure_get_int (s, "mpegversion", &v))
    g_string_append_printf (key, ",mpegversion=%d", v);
  if (gst_structure_get_int (s, "layer", &v))
    g_string_append_printf (key, ",layer=%d", v);

  if (human->len > 0)
    g_string_append (human, ", ");
  g_string_append (human, codec != NULL ? codec : name);

  if (GST_IS_DISCOVERER_AUDIO_INFO (info))
    {
      GstDiscovererAudioInfo *audio = GST_DISCOVERER_AUDIO_INFO (info);
      guint channels = gst_discoverer_audio_info_get_channels (audio);
      guint rate = gst_discoverer_audio_info_get_sample_rate (audio);

      g_string_append_printf (key, ",channels=%u,rate=%u", channels, rate);
      g_string_append_printf (human,
                              g_dngettext (GETTEXT_PACKAGE, ", %u channel", ", %u channels", channels),
                              channels);
      g_string_append_printf (human, _(", %u Hz"), rate);
    }
}

static void
add_tags (const GstTagList  *tags,
          char             **title,
          char             **artist)
{
  if (tags == NULL)
    return;
  if (*title == NULL)
    gst_tag_list_get_string (tags, GST_TAG_TITLE, title);
  if (*artist == NULL)
    gst_tag_list_get_string (tags, GST_TAG_ARTIST, artist);
}

/* Empty or whitespace-only tags count as absent. */
static void
clean_tag (char **tag)
{
  if (*tag != NULL)
    {
      g_strstrip (*tag);
      if (**tag == '\0')
        g_clear_pointer (tag, g_free);
    }
}

/* The discoverer sometimes reports a stream but no duration: an MP3
 * without a Xing header has none until the parser has seen frames, and
 * when the machine is slow the discoverer gives up asking too early.
 * Play the file into fakesinks as fast as it decodes and ask again once
 * it prerolls; at worst the position at the end is the duration.  Returns
 * GST_CLOCK_TIME_NONE when that fails too. */
static GstClockTime
fallback_duration (const char *uri,
                   guint       timeout_seconds)
{
  g_autoptr(GstElement) pipeline = gst_element_factory_make ("playbin", NULL);
  g_autoptr(GstBus) bus = NULL;
  GstElement *audio_sink, *video_sink;
  gint64 deadline = g_get_monotonic_time () + (gint64) timeout_seconds * G_USEC_PER_SEC;
  gint64 duration = -1;
  gboolean done = FALSE;

  audio_sink = gst_element_factory_make ("fakesink", NULL);
  video_sink = gst_element_factory_make ("fakesink", NULL);
  if (pipeline == NULL || audio_sink == NULL || video_sink == NULL)
    {
      g_clear_pointer (&audio_sink, gst_object_unref);
      g_clear_pointer (&video_sink, gst_object_unref);
      return GST_CLOCK_TIME_NONE;
    }
  g_object_set (audio_sink, "sync", FALSE, NULL);
  g_object_set (video_sink, "sync", FALSE, NULL);
  g_object_set (pipeline, "uri", uri, "audio-sink", audio_sink, "video-sink", video_sink, NULL);

  bus = gst_element_get_bus (pipeline);
  if (gst_element_set_state (pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
    done = TRUE;
  while (!done)
    {
      gint64 now = g_get_monotonic_time ();
      g_autoptr(GstMessage) msg = NULL;

      if (now >= deadline)
        break;
      msg = gst_bus_timed_pop_filtered (bus, (GstClockTime) (deadline - now) * GST_USECOND,
                                        GST_MESSAGE_ASYNC_DONE | GST_MESSAGE_DURATION_CHANGED |
                                        GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
      if (msg == NULL)
        break;
      switch (GST_MESSAGE_TYPE (msg))
        {
        case GST_MESSAGE_EOS:
          if (!gst_element_query_position (pipeline, GST_FORMAT_TIME, &duration))
            duration = -1;
          done = TRUE;
          break;
        case GST_MESSAGE_ASYNC_DONE:
        case GST_MESSAGE_DURATION_CHANGED:
          if (gst_element_query_duration (pipeline, GST_FORMAT_TIME, &duration) && duration > 0)
            done = TRUE;
          break;
        case GST_MESSAGE_ERROR:
        default:
          done = TRUE;
          break;
        }
    }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  return duration > 0 ? (GstClockTime) duration : GST_CLOCK_TIME_NONE;
}

/**
 * playlist_probe_file:
 * @probe: a #PlaylistProbe
 * @path: a local file
 * @error: return location for a #GError
 *
 * Probes @path.  Files GStreamer cannot type, cannot decode for lack of a
 * plugin, or that have no duration fail with %ALV_ERROR_UNSUPPORTED and a
 * message saying why.
 *
 * Returns: (transfer full): what was found, or %NULL with @error set
 */
PlaylistMediaInfo *
playlist_probe_file (PlaylistProbe  *probe,
                     const char     *path,
                     GError        **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GstDiscovererInfo) info = NULL;
  g_autoptr(GstDiscovererStreamInfo) top = NULL;
  g_autoptr(PlaylistMediaInfo) result = NULL;
  g_autofree char *absolute = NULL;
  g_autofree char *uri = NULL;
  g_autoptr(GString) key = g_string_new (NULL);
  g_autoptr(GString) human = g_string_new (NULL);
  GList *audio = NULL, *video = NULL;
  GstDiscovererStreamInfo *outer;
  GstClockTime duration;
  gboolean has_video = FALSE;

  g_return_val_if_fail (probe != NULL, NULL);
  g_return_val_if_fail (path != NULL, NULL);

  absolute = g_canonicalize_filename (path, NULL);
  uri = gst_filename_to_uri (absolute, &local_error);
  if (uri == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED, "%s", local_error->message);
      return NULL;
    }

  info = gst_discoverer_discover_uri (probe->discoverer, uri, &local_error);
  if (info == NULL || gst_discoverer_info_get_result (info) != GST_DISCOVERER_OK)
    {
      GstDiscovererResult res = info ? gst_discoverer_info_get_result (info)
                                     : GST_DISCOVERER_ERROR;

      switch (res)
        {
        case GST_DISCOVERER_TIMEOUT:
          g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED,
                       _("timed out while probing the file"));
          break;
        case GST_DISCOVERER_MISSING_PLUGINS:
          g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                       _("a GStreamer plugin needed to read it is missing"));
          break;
        case GST_DISCOVERER_OK:
        case GST_DISCOVERER_URI_INVALID:
        case GST_DISCOVERER_BUSY:
        case GST_DISCOVERER_ERROR:
        default:
          g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                       _("not a media file (%s)"),
                       local_error ? local_error->message : _("unknown type"));
          break;
        }
      return NULL;
    }

  audio = gst_discoverer_info_get_audio_streams (info);
  video = gst_discoverer_info_get_video_streams (info);
  for (GList *l = video; l != NULL; l = l->next)
    if (!gst_discoverer_video_info_is_image (l->data))
      has_video = TRUE;

  duration = gst_discoverer_info_get_duration (info);
  if ((audio != NULL || has_video) && (!GST_CLOCK_TIME_IS_VALID (duration) || duration == 0))
    duration = fallback_duration (uri, probe->timeout_seconds);
  if ((audio == NULL && !has_video) || !GST_CLOCK_TIME_IS_VALID (duration) ||
      duration == 0)
    {
      gst_discoverer_stream_info_list_free (audio);
      gst_discoverer_stream_info_list_free (video);
      g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                   _("not a media file (no audio or video with a duration)"));
      return NULL;
    }

  result = g_new0 (PlaylistMediaInfo, 1);
  result->duration_ms = (gint64) ((duration + GST_MSECOND / 2) / GST_MSECOND);
  if (result->duration_ms <= 0)
    result->duration_ms = 1;

  /* Look through tag wrappers for the real container. */
  top = gst_discoverer_info_get_stream_info (info);
  outer = top;
  if (outer != NULL)
    gst_discoverer_stream_info_ref (outer);
  while (outer != NULL && !GST_IS_DISCOVERER_CONTAINER_INFO (outer))
    {
      g_autoptr(GstCaps) caps = gst_discoverer_stream_info_get_caps (outer);
      GstDiscovererStreamInfo *next;

      if (!is_tag_wrapper (caps_name (caps)))
        break;
      next = gst_discoverer_stream_info_get_next (outer);
      if (next == NULL)
        break;
      gst_discoverer_stream_info_unref (outer);
      outer = next;
    }
  if (outer != NULL)
    {
      g_autoptr(GstCaps) caps = gst_discoverer_stream_info_get_caps (outer);

      result->mime = mime_for_caps (caps, has_video);
      if (GST_IS_DISCOVERER_CONTAINER_INFO (outer))
        add_tags (gst_discoverer_container_info_get_tags (GST_DISCOVERER_CONTAINER_INFO (outer)),
                  &result->title, &result->artist);
      gst_discoverer_stream_info_unref (outer);
    }
  else
    {
      result->mime = g_strdup ("application/octet-stream");
    }

  if (audio != NULL)
    {
      describe_stream (audio->data, key, human);
      add_tags (gst_discoverer_stream_info_get_tags (audio->data),
                &result->title, &result->artist);
    }
  for (GList *l = video; l != NULL; l = l->next)
    if (!gst_discoverer_video_info_is_image (l->data))
      {
        describe_stream (l->data, key, human);
        add_tags (gst_discoverer_stream_info_get_tags (l->data),
                  &result->title, &result->artist);
        break;
      }
  gst_discoverer_stream_info_list_free (audio);
  gst_discoverer_stream_info_list_free (video);

  clean_tag (&result->title);
  clean_tag (&result->artist);

  g_string_append_printf (human, " (%s)", result->mime);
  g_string_prepend_c (key, ';');
  g_string_prepend (key, result->mime);
  result->format = g_string_free (g_steal_pointer (&human), FALSE);
  result->format_key = g_string_free (g_steal_pointer (&key), FALSE);

  return g_steal_pointer (&result);
}
