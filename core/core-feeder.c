/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The feeder: one item of the station played into the local stream from
 * the position now playing (doc/core.md, "Feeding the local stream").
 * With a gateway the item is resolved there, fetched by an #AlvSwarm
 * (peers + origin, into the block store) and only verified data is read
 * back from the store; without one (none answers, gateway=none, no cache)
 * the item is read straight from its origin URL with a Range request from
 * the byte offset of the position.  Either way the head gives the format
 * and the byte rate, the body is cut to its first sync point and pushed
 * paced at the item's byte rate, at most FEED_LEAD ahead of real time.
 * The service that owns the feeder (core-service.c) hears of it through
 * #CoreFeederCallbacks.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "core-feeder.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "alv-icy.h"
#include "alv-matroska.h"
#include "alv-mp3.h"
#include "alv-ogg.h"
#include "alv-ranges.h"
#include "alv-urn.h"

/* bytes of an item read first: enough for ID3v2 + Xing or Ogg headers */
#define HEAD_SIZE (64 * 1024)
/* the largest head accepted when Ogg header pages need more */
#define MAX_HEAD_SIZE (1024 * 1024)
/* how far a video item joined mid-way is searched for a keyframe (an Ogg
 * Theora keyframe page, a WebM keyframe Cluster): a keyframe every few
 * seconds, a few Mbit/s */
#define MAX_KEYFRAME_SEARCH (8 * 1024 * 1024)
/* read size of the item body */
#define FEED_CHUNK 16384
/* how far ahead of real time the feeder may push (µs) */
#define FEED_LEAD (3 * G_USEC_PER_SEC)
/* buffered bytes beyond the lead go out in steps about this far apart */
#define PACE_STEP_MS 100
/* below this position an item is played from its start (µs) */
#define START_SLACK (G_USEC_PER_SEC / 2)
/* a video item joined mid-way is read from this long before the position
 * (µs), to find the keyframe Cluster at or before it */
#define KEYFRAME_BACKOFF (5 * G_USEC_PER_SEC / 2)
/* largest read from the block store at once */
#define STORE_READ (64 * 1024)
/* the smallest head read from the block store first (more when the
 * headers turn out longer, up to MAX_HEAD_SIZE): one block of the
 * gateway's default size, so a listener tuning in waits for one block of
 * head beside the blocks at its position, not two */
#define MIN_HEAD_SIZE (8 * 1024)

/* --- feeder: the interim origin path --------------------------------- */

typedef enum
{
  FEED_RAW,
  FEED_MP3,
  FEED_OGG,
  FEED_MATROSKA,
} FeedKind;

struct _CoreFeeder
{
  CoreFeederContext ctx;      /* its objects referenced */
  AlvPlaylistItem *item;
  GTimeSpan position;
  GCancellable *cancellable;
  SoupMessage *msg;
  GInputStream *stream;
  GByteArray *buf;            /* head while probing, then pending body bytes */
  FeedKind kind;
  AlvMatroskaInfo mkv;        /* FEED_MATROSKA: the stream header */
  guint64 mkv_target;         /* FEED_MATROSKA: the position (µs) to join at */
  guint64 file_size;
  guint64 body_offset;        /* file offset of the body request */
  guint64 skip;               /* body bytes still to drop (Range ignored) */
  gboolean synced;            /* the body's first sync point was found */
  AlvOggInfo ogg;             /* FEED_OGG: the item's streams */
  gboolean need_keyframe;     /* FEED_OGG with video joined mid-way */
  double bytes_per_sec;
  gint64 t0;                  /* monotonic time of the first body push */
  guint64 pushed;             /* body bytes pushed since t0 */
  gint64 pace_base;           /* 0, or when the stream reaches this item's
                               * first byte (handed over before its slot) */
  gboolean handed_over;       /* playing before its item-changed */
  guint timer_id;
  guint done_id;              /* the item's data is all out: hand over */
  gboolean began;
  gboolean prefetch_only;     /* fetch the head, then wait to be adopted */
  gboolean head_done;

  /* the swarm path: verified data from the block store */
  AlvSwarm *swarm;
  char *urn;
  gboolean wait_store;        /* resolved, waiting for the store to open */
  gboolean head_reading;
  gboolean body_started;
  gboolean reading;           /* a store read is in flight */
  gboolean waiting;           /* the next block is not held yet */
  guint64 read_pos;           /* next file offset to read from the store */
  guint64 head_want;          /* bytes of head to read from the store */
  guint64 guess_offset;       /* the position's offset guessed before the head */
  gint64 due;                 /* monotonic time the head and guess are due */
};

static void feeder_read_head (CoreFeeder *f);
static void feeder_read_body (CoreFeeder *f);
static void feeder_data_done (CoreFeeder *f);
static void feeder_drain (CoreFeeder *f);

void
core_feeder_free (CoreFeeder *f)
{
  if (f == NULL)
    return;
  g_cancellable_cancel (f->cancellable);
  if (f->swarm != NULL)
    {
      g_signal_handlers_disconnect_by_data (f->swarm, f);
      /* nothing plays from it any more: kept for sharing, it fetches the
       * rest as a prefetch does, not as late blocks (doc/swarm.md) */
      alv_swarm_release_playhead (f->swarm);
      alv_swarm_set_active (f->swarm, TRUE);
      f->ctx.callbacks->release_swarm (g_steal_pointer (&f->swarm), f->ctx.user_data);
    }
  g_clear_pointer (&f->urn, g_free);
  g_clear_handle_id (&f->timer_id, g_source_remove);
  g_clear_handle_id (&f->done_id, g_source_remove);
  g_clear_object (&f->cancellable);
  g_clear_object (&f->stream);
  g_clear_object (&f->msg);
  g_clear_object (&f->item);
  g_clear_pointer (&f->buf, g_byte_array_unref);
  g_clear_object (&f->ctx.session);
  g_clear_object (&f->ctx.out);
  g_clear_object (&f->ctx.gateway);
  g_clear_object (&f->ctx.store);
  g_clear_object (&f->ctx.peers);
  g_free (f);
}

/* The feeder callbacks hold no reference: a cancelled operation returns
 * CANCELLED after core_feeder_free(), so every callback first checks for
 * that without touching @f.  After feeder_fail() @f may be gone. */
static void
feeder_fail (CoreFeeder *f,
             const char *message)
{
  g_autofree char *text = g_strdup_printf (_("Cannot play “%s”: %s"),
                                           alv_playlist_item_get_url (f->item), message);

  g_message ("%s", text);
  f->ctx.callbacks->failed (f, text, f->ctx.user_data);
}

static const char *
feeder_content_type (CoreFeeder *f)
{
  const char *mt = alv_playlist_item_get_media_type (f->item);

  if (f->kind == FEED_MP3)
    return "audio/mpeg";
  if (f->kind == FEED_OGG)
    return mt != NULL && g_str_has_prefix (mt, "audio/ogg") ? mt : "application/ogg";
  if (f->kind == FEED_MATROSKA)
    {
      if (alv_stream_format_from_content_type (mt) == ALV_STREAM_FORMAT_MATROSKA)
        return mt;
      if (!f->mkv.doc_type_webm)
        return f->mkv.video_track != 0 ? "video/x-matroska" : "audio/x-matroska";
      return f->mkv.video_track != 0 ? "video/webm" : "audio/webm";
    }
  return mt != NULL ? mt : "application/octet-stream";
}

static void
feeder_begin (CoreFeeder *f)
{
  if (f->began)
    return;
  f->began = TRUE;
  alv_stream_server_begin_item (f->ctx.out, feeder_content_type (f),
                                alv_playlist_item_get_title (f->item),
                                alv_playlist_item_get_creator (f->item));
}

static void
feeder_push (CoreFeeder   *f,
             const guint8 *data,
             gsize         len)
{
  g_autoptr(GBytes) bytes = NULL;

  if (len == 0)
    return;
  feeder_begin (f);
  bytes = g_bytes_new (data, len);
  alv_stream_server_push (f->ctx.out, bytes);
  f->ctx.callbacks->playing (f, f->ctx.user_data);
}

static gboolean
on_feed_timer (gpointer user_data)
{
  CoreFeeder *f = user_data;

  f->timer_id = 0;
  /* what is buffered goes first; then more is read */
  if (f->synced && f->buf->len > 0)
    feeder_drain (f);
  else
    feeder_read_body (f);
  return G_SOURCE_REMOVE;
}

typedef enum
{
  PUSH_DONE,
  PUSH_PACED,     /* some is left, for when the pace allows it */
  PUSH_NEED_MORE,
  PUSH_FAILED,    /* the feeder is gone */
} PushResult;

/* Pushes what is buffered, from the first sync point on: for video, the
 * keyframe Cluster at or before the position (or the first after it). */
static PushResult
feeder_push_buffered (CoreFeeder *f)
{
  if (!f->synced)
    {
      gsize skip = 0;
      gboolean found = FALSE;
      gsize limit = f->kind == FEED_MATROSKA ? MAX_KEYFRAME_SEARCH : MAX_HEAD_SIZE;

      if (f->kind == FEED_MATROSKA)
        found = alv_matroska_find_keyframe (f->buf->data, f->buf->len, &f->mkv, f->mkv_target,
                                            FALSE, &skip) == ALV_MATROSKA_PARSE_OK;
      else if (f->kind == FEED_MP3)
        found = alv_mp3_find_sync (f->buf->data, f->buf->len, FALSE, &skip);
      else if (f->kind == FEED_OGG && f->need_keyframe)
        {
          /* a video item starts on a keyframe, never mid-GOP; the audio
           * pages that follow it are about as late */
          AlvOggInfo window = f->ogg;

          window.headers_length = 0;
          found = alv_ogg_find_keyframe (f->buf->data, f->buf->len, 0, &window, &skip, NULL);
          limit = MAX_KEYFRAME_SEARCH;
        }
      else if (f->kind == FEED_OGG)
        {
          for (gsize i = 0; i + 4 <= f->buf->len && !found; i++)
            {
              AlvOggPage page;

              if (memcmp (f->buf->data + i, "OggS", 4) == 0
                  && alv_ogg_page_parse (f->buf->data + i, f->buf->len - i, &page) == ALV_OGG_PARSE_OK)
                {
                  skip = i;
                  found = TRUE;
                }
            }
        }
      else
        found = TRUE;

      if (!found)
        {
          if (f->buf->len > limit)
            {
              feeder_fail (f, _("no sync point in the media"));
              return PUSH_FAILED;
            }
          return PUSH_NEED_MORE;
        }
      g_byte_array_remove_range (f->buf, 0, skip);
      f->synced = TRUE;
      /* an item handed over early paces on from where the stream's
       * previous item ends (never from before now: after a dry spell the
       * stream starts over with its lead) */
      f->t0 = MAX (f->pace_base, g_get_monotonic_time ());
    }

  /* no further ahead of the item's pace than FEED_LEAD: a big read (an
   * item's head, a whole block) goes out in the steps the pace allows,
   * not in one lump followed by a pause as long */
  {
    gint64 now = g_get_monotonic_time ();
    double allowed = (now - f->t0 + FEED_LEAD) / (double) G_USEC_PER_SEC * f->bytes_per_sec
                     - (double) f->pushed;
    gsize n = f->buf->len;

    if (allowed < (double) n)
      n = allowed > 0 ? (gsize) allowed : 0;
    if (n > 0)
      {
        feeder_push (f, f->buf->data, n);
        f->pushed += n;
        g_byte_array_remove_range (f->buf, 0, n);
      }
  }
  return f->buf->len > 0 ? PUSH_PACED : PUSH_DONE;
}

/* Reads more at once while the pushed bytes are less than FEED_LEAD ahead
 * of the item's pace, else when they will be. */
static void
feeder_schedule_read (CoreFeeder *f)
{
  gint64 now = g_get_monotonic_time ();
  gint64 due;

  g_clear_handle_id (&f->timer_id, g_source_remove);
  if (!f->synced)
    {
      feeder_read_body (f);
      return;
    }
  due = f->t0 + (gint64) (f->pushed / f->bytes_per_sec * G_USEC_PER_SEC) - FEED_LEAD;
  if (due <= now)
    feeder_read_body (f);
  else
    f->timer_id = g_timeout_add ((guint) ((due - now) / 1000 + 1), on_feed_timer, f);
}

/* Pushes what is buffered at once: the item's data is all out. */
static void
feeder_push_rest (CoreFeeder *f)
{
  gsize skip = 0;

  /* the last keyframe Cluster of a video item joined near its end */
  if (!f->synced && f->kind == FEED_MATROSKA
      && alv_matroska_find_keyframe (f->buf->data, f->buf->len, &f->mkv, f->mkv_target,
                                     TRUE, &skip) == ALV_MATROSKA_PARSE_OK)
    {
      g_byte_array_remove_range (f->buf, 0, (guint) skip);
      f->synced = TRUE;
    }
  if (f->buf->len == 0 || !f->synced)
    return;
  feeder_push (f, f->buf->data, f->buf->len);
  f->pushed += f->buf->len;
  g_byte_array_set_size (f->buf, 0);
}

/* Buffered bytes are left beyond the lead: the rest when the pace allows
 * it, a step at a time. */
static void
feeder_schedule_paced (CoreFeeder *f)
{
  gint64 due = f->t0 + (gint64) (f->pushed / f->bytes_per_sec * G_USEC_PER_SEC) - FEED_LEAD;
  gint64 wait_ms = MAX ((due - g_get_monotonic_time ()) / 1000, 0) + PACE_STEP_MS;

  g_clear_handle_id (&f->timer_id, g_source_remove);
  f->timer_id = g_timeout_add ((guint) wait_ms, on_feed_timer, f);
}

static void
feeder_drain (CoreFeeder *f)
{
  switch (feeder_push_buffered (f))
    {
    case PUSH_FAILED:
      return;
    case PUSH_NEED_MORE:
      feeder_read_body (f);
      return;
    case PUSH_PACED:
      feeder_schedule_paced (f);
      return;
    case PUSH_DONE:
    default:
      feeder_schedule_read (f);
    }
}

/* The origin's answer to f->msg has come: the feeder with f->stream set,
 * or NULL when the feeder is gone (cancelled: @user_data is not touched)
 * or failed (already reported). */
static CoreFeeder *
feeder_send_finish (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  GInputStream *stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  CoreFeeder *f;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return NULL;
  f = user_data;
  if (stream == NULL)
    {
      feeder_fail (f, error->message);
      return NULL;
    }
  f->stream = stream;
  return f;
}

/* A read of f->stream has ended: the feeder and the bytes in @chunk, or
 * NULL as feeder_send_finish(). */
static CoreFeeder *
feeder_read_finish (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data,
                    GBytes      **chunk)
{
  g_autoptr(GError) error = NULL;

  *chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return NULL;
  if (*chunk == NULL)
    {
      feeder_fail (user_data, error->message);
      return NULL;
    }
  return user_data;
}

static void
body_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GBytes) chunk = NULL;
  CoreFeeder *f = feeder_read_finish (source, result, user_data, &chunk);

  if (f == NULL)
    return;
  if (g_bytes_get_size (chunk) == 0)
    {
      /* the item's data is all out: the next item takes over */
      feeder_push_rest (f);
      g_clear_object (&f->stream);
      feeder_data_done (f);
      return;
    }
  /* (published by the once-a-second timer, not per chunk) */
  f->ctx.callbacks->origin_bytes (g_bytes_get_size (chunk), f->ctx.user_data);
  if (f->skip >= g_bytes_get_size (chunk))
    {
      f->skip -= g_bytes_get_size (chunk);
      feeder_read_body (f);
      return;
    }
  g_byte_array_append (f->buf, (const guint8 *) g_bytes_get_data (chunk, NULL) + f->skip,
                       g_bytes_get_size (chunk) - f->skip);
  f->skip = 0;
  feeder_drain (f);
}

static void feeder_swarm_read (CoreFeeder *f);

static void
feeder_read_body (CoreFeeder *f)
{
  if (f->swarm != NULL)
    {
      feeder_swarm_read (f);
      return;
    }
  if (f->stream == NULL)
    return;
  g_input_stream_read_bytes_async (f->stream, FEED_CHUNK, G_PRIORITY_DEFAULT,
                                   f->cancellable, body_read_cb, f);
}

static void
body_send_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CoreFeeder *f = feeder_send_finish (source, result, user_data);
  guint status;

  if (f == NULL)
    return;
  status = soup_message_get_status (f->msg);
  if (status == SOUP_STATUS_OK && f->body_offset > 0)
    {
      /* the origin ignored Range: drop the prefix as it arrives */
      g_debug ("origin ignored Range for %s", alv_playlist_item_get_url (f->item));
      f->skip = f->body_offset;
    }
  else if (status != SOUP_STATUS_PARTIAL_CONTENT && status != SOUP_STATUS_OK)
    {
      g_autofree char *msg = g_strdup_printf ("HTTP %u", status);

      feeder_fail (f, msg);
      return;
    }
  feeder_schedule_read (f);
}

static void
feeder_start_body (CoreFeeder *f)
{
  g_autofree char *range = NULL;

  if (f->swarm != NULL)
    {
      /* deadlines from the position now playing on */
      alv_swarm_set_deadline_func (f->swarm, NULL, NULL, NULL);
      alv_swarm_set_playhead (f->swarm, f->body_offset, (guint64) f->bytes_per_sec);
      f->read_pos = f->body_offset;
      f->body_started = TRUE;
      feeder_schedule_read (f);
      return;
    }
  g_clear_object (&f->msg);
  f->msg = soup_message_new (SOUP_METHOD_GET, alv_playlist_item_get_url (f->item));
  if (f->body_offset > 0)
    {
      range = g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-", f->body_offset);
      soup_message_headers_replace (soup_message_get_request_headers (f->msg), "Range", range);
    }
  soup_session_send_async (f->ctx.session, f->msg, G_PRIORITY_DEFAULT, f->cancellable,
                           body_send_cb, f);
}

static void feeder_place (CoreFeeder *f, const AlvMp3Info *mp3, guint64 audio_start, guint64 duration);

/* The head is complete (or the item is shorter): find the format, the
 * byte rate and the offset of the position now playing. */
static void
feeder_probe (CoreFeeder *f)
{
  GTimeSpan slot = alv_playlist_item_get_duration (f->item);
  const guint8 *data = f->buf->data;
  gsize len = f->buf->len;
  guint64 size = f->file_size != 0 ? f->file_size : len;
  AlvMp3Info mp3;
  AlvOggInfo ogg;
  guint64 duration = slot > 0 ? (guint64) slot : G_USEC_PER_SEC;
  guint64 audio_start = 0;

  if (len >= 4 && memcmp (data, "OggS", 4) == 0 && alv_ogg_parse_info (data, len, &ogg, NULL))
    {
      f->kind = FEED_OGG;
      f->ogg = ogg;
      f->need_keyframe = ogg.video_codec != ALV_OGG_CODEC_UNKNOWN && f->position >= START_SLACK;
      audio_start = ogg.headers_length;
      /* the header pages first: a joiner needs them before any data page */
      feeder_push (f, data, ogg.headers_length);
    }
  else if (alv_matroska_parse_info (data, len, &f->mkv) == ALV_MATROSKA_PARSE_OK)
    {
      f->kind = FEED_MATROSKA;
      audio_start = f->mkv.header_length;
      if (f->mkv.duration_us > 0)
        duration = f->mkv.duration_us;
      /* the stream header first; the Clusters from a keyframe on */
      feeder_push (f, data, f->mkv.header_length);
    }
  else if (alv_mp3_parse_info (data, len, &mp3, NULL))
    {
      guint64 d = alv_mp3_duration_usec (&mp3, size);

      f->kind = FEED_MP3;
      audio_start = mp3.audio_start;
      if (d > 0)
        duration = d;
    }
  else
    f->kind = FEED_RAW;
  feeder_place (f, f->kind == FEED_MP3 ? &mp3 : NULL, audio_start, duration);
}

/* The head's facts came with the resolution (the gateway's
 * X-Content-Head): an MP3 item is placed without its head. */
static void
feeder_probe_facts (CoreFeeder       *f,
                    const AlvMp3Info *mp3)
{
  GTimeSpan slot = alv_playlist_item_get_duration (f->item);
  guint64 d = alv_mp3_duration_usec (mp3, f->file_size);

  f->kind = FEED_MP3;
  f->head_done = TRUE;
  feeder_place (f, mp3, mp3->audio_start,
                d > 0 ? d : slot > 0 ? (guint64) slot : G_USEC_PER_SEC);
}

/* With the format known (@mp3: FEED_MP3's facts), the byte rate and the
 * offset of the position now playing: what the head (f->buf) already
 * holds of it goes out, the body is fetched from there on. */
static void
feeder_place (CoreFeeder       *f,
              const AlvMp3Info *mp3,
              guint64           audio_start,
              guint64           duration)
{
  gsize len = f->buf->len;
  guint64 size = f->file_size != 0 ? f->file_size : len;
  guint64 offset;

  f->bytes_per_sec = size > audio_start ? (double) (size - audio_start) * G_USEC_PER_SEC / duration : 16000;
  if (f->bytes_per_sec < 1000)
    f->bytes_per_sec = 1000;

  f->mkv_target = f->position < START_SLACK ? 0 : (guint64) f->position;
  if (f->position < START_SLACK)
    offset = audio_start;
  else if (f->kind == FEED_MP3)
    offset = alv_mp3_time_to_offset (mp3, size, (guint64) f->position);
  else if (f->kind == FEED_MATROSKA)
    offset = audio_start + (guint64) (f->bytes_per_sec * MAX (f->position - KEYFRAME_BACKOFF, 0)
                                      / G_USEC_PER_SEC);
  else
    offset = audio_start + (guint64) (f->bytes_per_sec * f->position / G_USEC_PER_SEC);
  if (f->file_size != 0 && offset >= f->file_size)
    {
      /* the item is shorter than its slot and already over */
      feeder_begin (f);
      f->ctx.callbacks->playing (f, f->ctx.user_data);
      return;
    }

  f->synced = f->kind == FEED_RAW;
  {
    g_autoptr(GByteArray) head = g_steal_pointer (&f->buf);

    f->buf = g_byte_array_new ();
    if (offset < len)
      {
        /* the head already holds the start */
        g_byte_array_append (f->buf, head->data + offset, len - offset);
        f->body_offset = len;
      }
    else
      f->body_offset = offset;
  }
  /* what the head holds goes out now (as far as the lead allows, the
   * rest paced): with a prefetched head an item change does not wait for
   * the network */
  if (f->buf->len > 0)
    {
      switch (feeder_push_buffered (f))
        {
        case PUSH_FAILED:
          return;
        case PUSH_PACED:
          feeder_schedule_paced (f);
          break;
        case PUSH_DONE:
        case PUSH_NEED_MORE:
        default:
          break;
        }
    }
  if (f->file_size != 0 ? f->body_offset >= f->file_size : len < HEAD_SIZE)
    return;   /* the head was the whole item */
  feeder_start_body (f);
}

static void
head_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GBytes) chunk = NULL;
  CoreFeeder *f = feeder_read_finish (source, result, user_data, &chunk);

  if (f == NULL)
    return;
  f->ctx.callbacks->origin_bytes (g_bytes_get_size (chunk), f->ctx.user_data);
  g_byte_array_append (f->buf, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  if (g_bytes_get_size (chunk) > 0 && f->buf->len < HEAD_SIZE)
    {
      feeder_read_head (f);
      return;
    }
  g_clear_object (&f->stream);
  if (f->buf->len > HEAD_SIZE)
    g_byte_array_set_size (f->buf, HEAD_SIZE);
  f->head_done = TRUE;
  if (!f->prefetch_only)
    feeder_probe (f);
}

static void
feeder_read_head (CoreFeeder *f)
{
  g_input_stream_read_bytes_async (f->stream, HEAD_SIZE - f->buf->len, G_PRIORITY_DEFAULT,
                                   f->cancellable, head_read_cb, f);
}

static void
head_send_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  CoreFeeder *f = feeder_send_finish (source, result, user_data);
  SoupMessageHeaders *h;
  guint status;

  if (f == NULL)
    return;
  status = soup_message_get_status (f->msg);
  h = soup_message_get_response_headers (f->msg);
  if (status == SOUP_STATUS_PARTIAL_CONTENT)
    {
      const char *cr = soup_message_headers_get_one (h, "Content-Range");
      guint64 start, end, total = 0;

      if (cr == NULL || !alv_http_parse_content_range (cr, &start, &end, &total, NULL) || start != 0)
        {
          g_autofree char *msg = g_strdup_printf (_("bad Content-Range from the origin: “%s”"),
                                                  cr != NULL ? cr : "");

          feeder_fail (f, msg);
          return;
        }
      f->file_size = total == G_MAXUINT64 ? 0 : total;
    }
  else if (status == SOUP_STATUS_OK)
    f->file_size = soup_message_headers_get_encoding (h) == SOUP_ENCODING_CONTENT_LENGTH
                   ? (guint64) soup_message_headers_get_content_length (h) : 0;
  else
    {
      g_autofree char *msg = g_strdup_printf ("HTTP %u", status);

      feeder_fail (f, msg);
      return;
    }
  feeder_read_head (f);
}

/* The interim path: the head straight from the origin. */
static void
feeder_start_direct (CoreFeeder *f)
{
  g_autofree char *range = g_strdup_printf ("bytes=0-%u", HEAD_SIZE - 1);

  f->msg = soup_message_new (SOUP_METHOD_GET, alv_playlist_item_get_url (f->item));
  soup_message_headers_replace (soup_message_get_request_headers (f->msg), "Range", range);
  soup_session_send_async (f->ctx.session, f->msg, G_PRIORITY_DEFAULT, f->cancellable,
                           head_send_cb, f);
}

/* --- feeder: the swarm path ------------------------------------------ */

/* Whether every block of [from, to) is held (verified or from the origin). */
static gboolean
swarm_holds (AlvSwarm *swarm,
             guint64   from,
             guint64   to)
{
  guint bs = alv_swarm_get_block_size (swarm);

  if (to <= from)
    return TRUE;
  for (guint64 i = from / bs; i <= (to - 1) / bs; i++)
    if (!alv_swarm_has_block (swarm, i))
      return FALSE;
  return TRUE;
}

static void feeder_swarm_poll (CoreFeeder *f);

/* Whether the first @len bytes of an item of @file_size cannot be probed
 * yet: an ID3v2 tag, Ogg header pages or a Matroska stream header that go
 * on beyond them. */
static gboolean
head_needs_more (const guint8 *data,
                 gsize         len,
                 guint64       file_size)
{
  AlvOggInfo ogg;
  AlvMatroskaInfo mkv;

  if (len >= file_size)
    return FALSE;
  if (len >= 10 && memcmp (data, "ID3", 3) == 0)
    return alv_mp3_id3v2_size (data, len) + 4 * ALV_MP3_MAX_FRAME_SIZE > len;
  if (len >= 4 && memcmp (data, "OggS", 4) == 0)
    return !alv_ogg_parse_info (data, len, &ogg, NULL);
  if (len >= 4 && memcmp (data, "\x1a\x45\xdf\xa3", 4) == 0)
    return alv_matroska_parse_info (data, len, &mkv) == ALV_MATROSKA_PARSE_NEED_MORE;
  return FALSE;
}

/* Deadlines while an item starts: the head and the blocks around the
 * guessed offset of the position now playing are due at once, so both are
 * fetched together before the head tells the exact offset. */
static gint64
feeder_start_deadline (AlvSwarm *swarm,
                       guint64   index,
                       gpointer  user_data)
{
  CoreFeeder *f = user_data;
  guint64 bs = alv_swarm_get_block_size (swarm);
  guint64 off = index * bs;

  if (off < f->head_want)
    return f->due;
  if (f->guess_offset > 0 && off + bs > f->guess_offset && off < f->guess_offset + 2 * bs)
    return f->due + (gint64) ((double) (off - MIN (off, f->guess_offset)) / f->bytes_per_sec *
                              G_USEC_PER_SEC);
  return ALV_SWARM_NO_DEADLINE;
}

/* The item is to play now: fetch its head (and its guessed position). */
static void
feeder_swarm_begin (CoreFeeder *f)
{
  GTimeSpan slot = alv_playlist_item_get_duration (f->item);

  f->due = g_get_monotonic_time ();
  f->guess_offset = 0;
  f->bytes_per_sec = slot > 0 ? (double) f->file_size * G_USEC_PER_SEC / slot : 16000;
  if (f->bytes_per_sec < 1000)
    f->bytes_per_sec = 1000;
  if (f->position >= START_SLACK && slot > 0)
    {
      GTimeSpan from = f->position;

      /* a video item is read from a little before its position (the
       * keyframe at or before it, feeder_probe()) */
      if (alv_stream_format_from_content_type (alv_playlist_item_get_media_type (f->item))
          == ALV_STREAM_FORMAT_MATROSKA)
        from = MAX (from - KEYFRAME_BACKOFF, 0);
      f->guess_offset = (guint64) ((double) f->file_size * from / slot);
    }
  alv_swarm_set_active (f->swarm, TRUE);
  /* what played before the position is nobody's need any more */
  alv_swarm_set_needed_from (f->swarm, f->guess_offset - MIN (f->guess_offset,
                                                              (guint64) alv_swarm_get_block_size (f->swarm)));
  alv_swarm_set_deadline_func (f->swarm, feeder_start_deadline, f, NULL);
}

/* A read of the block store (of the head with @head, else of the body)
 * has ended: the feeder, its reading flag cleared, and the bytes in
 * @data; or NULL when the feeder is gone (cancelled: @user_data is not
 * touched), failed (reported), or the read met a block that changed on
 * disk (logged: the store dropped it, the swarm fetches it again and
 * "block-ready" takes the read up). */
static CoreFeeder *
feeder_store_read_finish (GObject       *source,
                          GAsyncResult  *result,
                          gpointer       user_data,
                          gboolean       head,
                          GBytes       **data)
{
  g_autoptr(GError) error = NULL;
  CoreFeeder *f;

  *data = alv_block_store_read_finish (ALV_BLOCK_STORE (source), result, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return NULL;
  f = user_data;
  if (head)
    f->head_reading = FALSE;
  else
    f->reading = FALSE;
  if (g_error_matches (error, ALV_ERROR, ALV_ERROR_MISMATCH))
    {
      g_message ("%s", error->message);
      /* the body waits for the block */
      if (!head)
        f->waiting = TRUE;
      return NULL;
    }
  if (*data == NULL || g_bytes_get_size (*data) == 0)
    {
      feeder_fail (f, error != NULL ? error->message : _("the cache returned no data"));
      return NULL;
    }
  return f;
}

static void
swarm_head_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GBytes) data = NULL;
  CoreFeeder *f = feeder_store_read_finish (source, result, user_data, TRUE, &data);

  if (f == NULL)
    return;
  g_byte_array_set_size (f->buf, 0);
  g_byte_array_append (f->buf, g_bytes_get_data (data, NULL), g_bytes_get_size (data));
  if (head_needs_more (f->buf->data, f->buf->len, f->file_size) && f->head_want < MAX_HEAD_SIZE)
    {
      /* a long tag or header: read on (the deadlines follow head_want) */
      f->head_want = MIN (f->head_want * 4, (guint64) MAX_HEAD_SIZE);
      feeder_swarm_poll (f);
      return;
    }
  f->head_done = TRUE;
  if (!f->prefetch_only)
    feeder_probe (f);
}

/* Something new is held: read the head once it is, or go on with the body. */
static void
feeder_swarm_poll (CoreFeeder *f)
{
  guint64 head_len;

  if (!f->head_done)
    {
      head_len = MIN (f->head_want, f->file_size);
      if (!f->head_reading && swarm_holds (f->swarm, 0, head_len))
        {
          f->head_reading = TRUE;
          alv_block_store_read_async (f->ctx.store, f->urn, 0, head_len, f->cancellable,
                                      swarm_head_cb, f);
        }
      return;
    }
  if (f->body_started && f->waiting)
    {
      f->waiting = FALSE;
      if (alv_swarm_has_block (f->swarm, f->read_pos / alv_swarm_get_block_size (f->swarm)))
        alv_swarm_stream_resumed (f->swarm, f->read_pos);
      feeder_read_body (f);
    }
}

static void
on_swarm_block_ready (AlvSwarm *swarm G_GNUC_UNUSED,
                      guint64   index G_GNUC_UNUSED,
                      guint64   contiguous_end G_GNUC_UNUSED,
                      gpointer  user_data)
{
  CoreFeeder *f = user_data;

  /* requests waiting at the peer port for a block pulled from the
   * origin are answered as it lands */
  if (f->ctx.peers != NULL)
    alv_peer_server_block_arrived (f->ctx.peers, f->urn);
  feeder_swarm_poll (f);
}

static void
swarm_read_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GBytes) data = NULL;
  CoreFeeder *f = feeder_store_read_finish (source, result, user_data, FALSE, &data);

  if (f == NULL)
    return;
  g_byte_array_append (f->buf, g_bytes_get_data (data, NULL), g_bytes_get_size (data));
  f->read_pos += g_bytes_get_size (data);
  feeder_drain (f);
}

/* Reads the held run at the read position (a quarter second of it, at most
 * STORE_READ bytes), or waits for "block-ready" when the next block is
 * not held yet. */
static void
feeder_swarm_read (CoreFeeder *f)
{
  guint64 length = f->file_size, end, cap;
  guint bs = alv_swarm_get_block_size (f->swarm);

  if (f->reading)
    return;
  if (f->read_pos >= length)
    {
      /* the item's data is all out: the next item takes over */
      feeder_push_rest (f);
      feeder_data_done (f);
      return;
    }
  /* about a quarter of a second of the item at a time, pushed at the
   * pace: the local stream flows evenly instead of in lumps of seconds,
   * which players read as underruns */
  cap = CLAMP ((guint64) (f->bytes_per_sec / 4), (guint64) 4096, (guint64) STORE_READ);
  end = f->read_pos;
  while (end < length && end - f->read_pos < cap && alv_swarm_has_block (f->swarm, end / bs))
    end = (end / bs + 1) * bs;
  end = MIN (end, MIN (length, f->read_pos + cap));
  if (end <= f->read_pos)
    {
      f->waiting = TRUE;
      return;
    }
  f->reading = TRUE;
  alv_block_store_read_async (f->ctx.store, f->urn, f->read_pos, end - f->read_pos,
                              f->cancellable, swarm_read_cb, f);
}

/* The item is resolved and the store is open: run (or take over) its swarm. */
static void
feeder_swarm_setup (CoreFeeder                 *f,
                    const AlvGatewayResolution *res)
{
  g_autoptr(GError) error = NULL;
  AlvSwarm *swarm = f->ctx.callbacks->open_swarm (res, &error, f->ctx.user_data);

  if (swarm == NULL)
    {
      g_message ("cannot swarm %s, playing it from the origin: %s", res->url, error->message);
      feeder_start_direct (f);
      return;
    }
  g_debug ("swarming %s as %s", res->url, res->urn);
  f->swarm = swarm;
  f->urn = g_strdup (res->urn);
  f->file_size = res->length;
  f->head_want = MIN ((guint64) HEAD_SIZE, MAX ((guint64) alv_swarm_get_block_size (swarm),
                                               (guint64) MIN_HEAD_SIZE));
  g_signal_connect (swarm, "block-ready", G_CALLBACK (on_swarm_block_ready), f);
  if (f->prefetch_only)
    f->ctx.callbacks->prefetch_swarm (f, f->ctx.user_data);
  else if (res->has_mp3_head)
    {
      /* no head to wait for: the blocks at the position are all it needs */
      g_debug ("the gateway told the head of %s", res->url);
      feeder_swarm_begin (f);
      feeder_probe_facts (f, &res->mp3_head);
      return;
    }
  else
    feeder_swarm_begin (f);
  feeder_swarm_poll (f);
}

/* Whether the gateway's URN names the content the playlist names (when the
 * playlist names one): a playlist's dc:identifier outranks a gateway. */
static gboolean
urn_matches_playlist (AlvPlaylistItem *item,
                      const char      *urn)
{
  const char *listed = alv_playlist_item_get_urn (item);
  guint8 a[ALV_HASH_SIZE], b[ALV_HASH_SIZE];

  if (listed == NULL || listed[0] == '\0')
    return TRUE;
  if (!alv_urn_parse (listed, a, NULL))
    return TRUE;   /* not one of ours (the parser let it through as text) */
  return alv_urn_parse (urn, b, NULL) && memcmp (a, b, sizeof a) == 0;
}

/* The gateway cannot be asked: an item the playlist names by URN whose
 * tree the cache holds is resolved from the cache, so it plays from what
 * is held (all of it, for an item played before) and fetches the rest
 * from whatever peers and origin there are; NULL otherwise. */
static AlvGatewayResolution *
resolution_from_cache (AlvBlockStore   *store,
                       AlvPlaylistItem *item)
{
  const char *listed = alv_playlist_item_get_urn (item);
  g_autofree char *urn = NULL;
  AlvGatewayResolution *res;
  guint64 length = 0, n_blocks = 0;
  guint block_size = 0;

  if (store == NULL || listed == NULL)
    return NULL;
  urn = alv_urn_normalize (listed, NULL);
  if (urn == NULL || !alv_block_store_has_tree (store, urn) ||
      !alv_block_store_get_entry_info (store, urn, &length, &block_size, &n_blocks))
    return NULL;
  res = g_new0 (AlvGatewayResolution, 1);
  res->url = g_strdup (alv_playlist_item_get_url (item));
  res->urn = g_steal_pointer (&urn);
  res->length = length;
  res->block_size = block_size;
  res->content_type = g_strdup (alv_playlist_item_get_media_type (item));
  res->peers = g_ptr_array_new_with_free_func (g_object_unref);
  return res;
}

static void
resolve_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvGatewayResolution) res =
    alv_gateway_client_resolve_finish (ALV_GATEWAY_CLIENT (source), result, &error);
  CoreFeeder *f;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  if (res == NULL)
    {
      g_autoptr(AlvGatewayResolution) cached = resolution_from_cache (f->ctx.store, f->item);

      if (cached != NULL)
        {
          g_message ("cannot resolve %s at the gateway, playing it from the cache (%s): %s",
                     alv_playlist_item_get_url (f->item),
                     alv_block_store_is_complete (f->ctx.store, cached->urn)
                     ? "all of it" : "what it holds, the rest from peers and the origin",
                     error->message);
          feeder_swarm_setup (f, cached);
          return;
        }
      g_message ("cannot resolve %s at the gateway, playing it from the origin: %s",
                 alv_playlist_item_get_url (f->item), error->message);
      feeder_start_direct (f);
      return;
    }
  if (!urn_matches_playlist (f->item, res->urn))
    {
      g_message ("the gateway names %s as %s, the playlist as %s: not swarming it, "
                 "playing it from the origin", res->url, res->urn,
                 alv_playlist_item_get_urn (f->item));
      feeder_start_direct (f);
      return;
    }
  if (f->ctx.store == NULL)
    {
      if (f->ctx.store_opening)
        {
          f->wait_store = TRUE;
          g_object_set_data_full (G_OBJECT (f->cancellable), "resolution",
                                  g_steal_pointer (&res),
                                  (GDestroyNotify) alv_gateway_resolution_free);
          return;
        }
      feeder_start_direct (f);
      return;
    }
  feeder_swarm_setup (f, res);
}

void
core_feeder_store_opened (CoreFeeder    *f,
                          AlvBlockStore *store,
                          AlvPeerServer *peers)
{
  AlvGatewayResolution *res;

  g_return_if_fail (f != NULL);

  g_set_object (&f->ctx.store, store);
  g_set_object (&f->ctx.peers, peers);
  f->ctx.store_opening = FALSE;
  if (!f->wait_store)
    return;
  f->wait_store = FALSE;
  res = g_object_get_data (G_OBJECT (f->cancellable), "resolution");
  if (f->ctx.store != NULL)
    feeder_swarm_setup (f, res);
  else
    feeder_start_direct (f);
}

CoreFeeder *
core_feeder_new (const CoreFeederContext *context,
                 AlvPlaylistItem         *item,
                 GTimeSpan                position,
                 gboolean                 prefetch_only)
{
  CoreFeeder *f;

  g_return_val_if_fail (context != NULL && context->callbacks != NULL, NULL);
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);

  f = g_new0 (CoreFeeder, 1);
  f->ctx = *context;
  if (f->ctx.session != NULL)
    g_object_ref (f->ctx.session);
  if (f->ctx.out != NULL)
    g_object_ref (f->ctx.out);
  if (f->ctx.gateway != NULL)
    g_object_ref (f->ctx.gateway);
  if (f->ctx.store != NULL)
    g_object_ref (f->ctx.store);
  if (f->ctx.peers != NULL)
    g_object_ref (f->ctx.peers);
  f->item = g_object_ref (item);
  f->position = position;
  f->prefetch_only = prefetch_only;
  f->cancellable = g_cancellable_new ();
  f->buf = g_byte_array_new ();
  if (f->ctx.gateway != NULL && (f->ctx.store != NULL || f->ctx.store_opening))
    alv_gateway_client_resolve_async (f->ctx.gateway, alv_playlist_item_get_url (item),
                                      f->cancellable, resolve_cb, f);
  else
    feeder_start_direct (f);
  return f;
}

/* --- feeder: what the service asks ---------------------------------- */

void
core_feeder_adopt (CoreFeeder *f,
                   GTimeSpan   position)
{
  g_return_if_fail (f != NULL);

  g_debug ("using the prefetched head of %s", alv_playlist_item_get_url (f->item));
  f->position = position;
  f->prefetch_only = FALSE;
  if (f->swarm != NULL)
    feeder_swarm_begin (f);
  if (f->head_done)
    feeder_probe (f);
}

static gboolean
on_data_done (gpointer user_data)
{
  CoreFeeder *f = user_data;

  f->done_id = 0;
  f->ctx.callbacks->data_done (f, f->ctx.user_data);
  return G_SOURCE_REMOVE;
}

/* The item's data is all out: the service hears of it on the next turn
 * of the main loop (and may hand over to the next item). */
static void
feeder_data_done (CoreFeeder *f)
{
  if (f->done_id == 0 && !f->prefetch_only)
    f->done_id = g_idle_add (on_data_done, f);
}

void
core_feeder_hand_over (CoreFeeder *f,
                       gint64      pace_base)
{
  g_return_if_fail (f != NULL);

  f->pace_base = pace_base;
  f->handed_over = TRUE;
}

gboolean
core_feeder_get_handed_over (CoreFeeder *f)
{
  g_return_val_if_fail (f != NULL, FALSE);

  return f->handed_over;
}

void
core_feeder_slot_started (CoreFeeder *f)
{
  g_return_if_fail (f != NULL);

  f->handed_over = FALSE;
}

gboolean
core_feeder_get_stream_end (CoreFeeder *f,
                            gint64     *end)
{
  g_return_val_if_fail (f != NULL, FALSE);

  if (!f->synced || f->bytes_per_sec <= 0)
    return FALSE;
  *end = f->t0 + (gint64) (f->pushed / f->bytes_per_sec * G_USEC_PER_SEC);
  return TRUE;
}

gboolean
core_feeder_is_held (CoreFeeder *f)
{
  g_return_val_if_fail (f != NULL, FALSE);

  /* (one still resolving counts as not held: its swarm comes) */
  return f->swarm != NULL ? alv_swarm_has_needed (f->swarm) : f->head_done;
}

AlvPlaylistItem *
core_feeder_get_item (CoreFeeder *f)
{
  g_return_val_if_fail (f != NULL, NULL);

  return f->item;
}

AlvSwarm *
core_feeder_get_swarm (CoreFeeder *f)
{
  g_return_val_if_fail (f != NULL, NULL);

  return f->swarm;
}

const char *
core_feeder_get_urn (CoreFeeder *f)
{
  g_return_val_if_fail (f != NULL, NULL);

  return f->urn;
}
