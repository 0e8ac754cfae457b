/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Fixtures shared by the local stream tests: media encoded on the fly with
 * GStreamer (MP3, Ogg Vorbis, Ogg Opus), a raw HTTP client on a
 * GSocketConnection that records everything the server sends until EOF,
 * and the small pieces the daemon tests share (a Range-aware body for test
 * HTTP servers, byte search, timestamps).  Waiting on the main context
 * and children that die with the test are test-util.h's.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>
#include <gst/gst.h>

G_BEGIN_DECLS

gboolean stream_media_have_elements (const char *first, ...) G_GNUC_NULL_TERMINATED;
GBytes  *stream_media_encode        (const char  *pipeline,
                                     GError     **error);
GBytes  *stream_media_mp3           (guint        n_buffers,
                                     gboolean     xing);
GBytes  *stream_media_vorbis        (guint        n_buffers,
                                     const char  *title,
                                     guint        frequency);
GBytes  *stream_media_opus          (guint        n_buffers);
GBytes  *stream_media_theora        (guint        n_frames,
                                     const char  *pattern,
                                     const char  *title,
                                     guint        keyframe_every,
                                     gboolean     audio);

typedef struct
{
  GSocketConnection *conn;
  GByteArray *received;
  gboolean eof;
  gboolean reading;   /* FALSE: the client stops reading (a stalled player) */
  GError *error;
  GCancellable *cancellable;
  guint8 buf[16384];
  guint pending;      /* operations in flight */
} RawClient;

RawClient *raw_client_new        (guint16     port,
                                  const char *request,
                                  gboolean    reading);
void       raw_client_free       (RawClient  *client);
void       raw_client_wait_eof   (RawClient  *client);
gboolean   raw_client_has_body   (RawClient  *client,
                                  gsize       want);
void       raw_client_wait_body  (RawClient  *client,
                                  gsize       want,
                                  guint       timeout_ms);
gssize     raw_client_head_end   (RawClient  *client);
char      *raw_client_head       (RawClient  *client);
GBytes    *raw_client_body       (RawClient  *client);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RawClient, raw_client_free)

/* Answers @msg with @media: 206 for one satisfiable range, else 200 with
 * all of it.  Returns the body bytes set. */
gsize         stream_serve_bytes     (SoupServerMessage *msg,
                                      GBytes            *media,
                                      const char        *content_type);
const guint8 *stream_find_bytes      (const guint8      *hay,
                                      gsize              hay_len,
                                      const guint8      *needle,
                                      gsize              len);
/* Unix microseconds as a UTC GDateTime. */
GDateTime    *stream_datetime        (gint64             unix_us);

GBytes       *stream_media_webm      (guint              seconds,
                                      int                pattern,
                                      const char        *audio);

/* Video as a player sees it: decoded frames counted per item (told apart
 * by their picture), and their running times, which must go on across the
 * chain link. */
typedef struct
{
  GMutex lock;
  guint frames[2];        /* decoded frames of "One" and "Two" */
  guint other_frames;
  GstSegment segment;
  GstClockTime last_running;
  GstClockTime max_step;  /* largest step between consecutive frames */
  gboolean backwards;
} StreamVideoCount;

GstElement *stream_video_counting_sink (StreamVideoCount *vc);
void        stream_video_count_clear   (StreamVideoCount *vc);

G_END_DECLS
