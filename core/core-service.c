/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * org.alluvium.Core1 as alluvium-core serves it.  A Tune checks the URL,
 * fetches the playlist once (so that a bad URL, an unreachable or an
 * invalid playlist comes back as a typed error of the call itself), starts
 * the local stream and then follows the schedule: at every item change the
 * feeder plays the item from the position now playing (doc/core.md): it
 * resolves the item at the station's gateway (configured, or the one at
 * the playlist's origin), runs an #AlvSwarm for it (peers + origin, into
 * the block store), shares it on the peer port and reads only verified
 * data from the block store, pushing it paced at the item's byte rate into
 * the local stream; recent items stay shared for a while.  Without a
 * gateway (none answers, or gateway=none) it reads the item straight from
 * its origin URL with a Range request from the byte offset of the current
 * position.  With no station
 * (and nothing shared) the service arms an idle timer; the daemon exits
 * when it fires.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "core-service.h"

#include <string.h>
#include <inttypes.h>
#include <glib/gi18n-lib.h>
#include <libsoup/soup.h>

#include "alv-block-store.h"
#include "alv-dbus.h"
#include "alv-error.h"
#include "alv-gateway-client.h"
#include "alv-icy.h"
#include "alv-matroska.h"
#include "alv-memory.h"
#include "alv-mp3.h"
#include "alv-natpmp.h"
#include "alv-ocn-headers.h"
#include "alv-ogg.h"
#include "alv-ranges.h"
#include "alv-peer-server.h"
#include "alv-port-map.h"
#include "alv-schedule.h"
#include "alv-stream-server.h"
#include "alv-swarm.h"
#include "alv-time.h"
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
/* an item that failed is tried again after this, doubling up to the max */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000
/* items this close are back to back: the stream's lead carries over */
#define BACK_TO_BACK (G_USEC_PER_SEC)
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
/* a prefetched item's swarm fetches once the item playing is held, or
 * this long (µs) before its slot, whichever comes first */
#define PREFETCH_LEAD (30 * G_USEC_PER_SEC)
/* how long an item stays shared after it played (s), and how many */
#define SHARE_LINGER 300
#define SHARE_MAX 4

/* --- the service ----------------------------------------------------- */

typedef struct _Feeder Feeder;

struct _CoreService
{
  GObject parent_instance;

  CoreConfig config;
  SoupSession *session;
  AlvCore1 *skeleton;
  GDBusConnection *connection;

  AlvSchedule *schedule;
  GCancellable *tune_cancellable;
  AlvSchedule *tuning;             /* a Tune's station while its playlist comes:
                                    * the station playing (if any) plays on */
  GPtrArray *pending_tunes;        /* GDBusMethodInvocation waiting for the first fetch */
  GHashTable *holders;             /* unique bus name → name watch: the clients
                                    * that tuned the station playing */
  AlvStreamServer *stream;
  Feeder *feeder;
  Feeder *next_feeder;             /* the prefetched head of the next item */

  guint64 bytes_from_origin;
  guint idle_id;
  guint retry_id;                  /* the item that failed, again */
  guint give_back_id;              /* freed memory to the system, after Stop */
  /* transfer rates, bytes/s, smoothed over a few seconds */
  guint64 rate_last_down, rate_last_up;
  gint64 rate_last_time;
  double rate_down, rate_up;
  guint retry_step_ms;             /* the next retry's delay */

  /* the swarm path (a gateway is configured) */
  AlvGatewayClient *gateway;
  AlvBlockStore *store;            /* NULL until opened */
  AlvPeerServer *peers;            /* NULL if it could not listen */
  AlvPortMap *port_map;            /* the peer port in the router; NULL: not listening */
  GCancellable *cancellable;       /* the store's opening */
  gboolean store_opening;
  GPtrArray *shared;               /* Shared: recent items still shared */
  AlvSwarmStats done_stats;        /* of swarms already stopped */
  guint stats_id;
};

G_DEFINE_TYPE (CoreService, core_service, G_TYPE_OBJECT)

enum
{
  SIGNAL_IDLE_EXIT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void set_state (CoreService *self, AlvCoreState state, const char *message);
static void feeder_free (Feeder *feeder);

static void collect_swarm_stats (CoreService *self, AlvSwarmStats *total);
static AlvSwarm *playing_swarm (CoreService *self);
static guint16 announced_port (CoreService *self);

static void
update_statistics (CoreService *self)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  AlvSwarmStats st = self->done_stats;
  AlvPeerServerStats ps = { 0, };

  collect_swarm_stats (self, &st);
  if (self->peers != NULL)
    alv_peer_server_get_stats (self->peers, &ps);
  g_variant_builder_add (&b, "{sv}", "bytes-from-peers", g_variant_new_uint64 (st.bytes_from_peers));
  g_variant_builder_add (&b, "{sv}", "bytes-from-origin",
                         g_variant_new_uint64 (self->bytes_from_origin + st.bytes_from_origin));
  g_variant_builder_add (&b, "{sv}", "bytes-uploaded", g_variant_new_uint64 (ps.bytes_uploaded));
  g_variant_builder_add (&b, "{sv}", "peers-connected", g_variant_new_uint32 (st.peers_connected));
  g_variant_builder_add (&b, "{sv}", "blocks-verified", g_variant_new_uint64 (st.blocks_verified));
  g_variant_builder_add (&b, "{sv}", "blocks-rejected", g_variant_new_uint64 (st.blocks_rejected));
  g_variant_builder_add (&b, "{sv}", "download-rate", g_variant_new_uint64 ((guint64) self->rate_down));
  g_variant_builder_add (&b, "{sv}", "upload-rate", g_variant_new_uint64 ((guint64) self->rate_up));
  g_variant_builder_add (&b, "{sv}", "peers-uploading-to", g_variant_new_uint32 (ps.active_uploads));
  g_variant_builder_add (&b, "{sv}", "peer-port-reachable",
                         g_variant_new_string (alv_reachable_to_string (st.peer_port_reach)));
  {
    g_autofree char *external = self->port_map != NULL ? alv_port_map_dup_external (self->port_map) : NULL;

    g_variant_builder_add (&b, "{sv}", "peer-port-mapping",
                           g_variant_new_string (alv_port_mapping_to_string (
                             self->port_map != NULL ? alv_port_map_get_mapping (self->port_map)
                                                    : ALV_PORT_MAPPING_NONE)));
    g_variant_builder_add (&b, "{sv}", "peer-port-external",
                           g_variant_new_string (external != NULL ? external : ""));
  }
  /* the item playing, as a BitTorrent client shows a torrent */
  if (playing_swarm (self) != NULL)
    {
      AlvSwarmStats item;

      alv_swarm_get_stats (playing_swarm (self), &item);
      g_variant_builder_add (&b, "{sv}", "item-peers-known", g_variant_new_uint32 (item.peers_known));
      g_variant_builder_add (&b, "{sv}", "item-peers-active", g_variant_new_uint32 (item.peers_connected));
      g_variant_builder_add (&b, "{sv}", "item-bytes-from-peers", g_variant_new_uint64 (item.bytes_from_peers));
      g_variant_builder_add (&b, "{sv}", "item-bytes-from-origin", g_variant_new_uint64 (item.bytes_from_origin));
      g_variant_builder_add (&b, "{sv}", "item-blocks-held", g_variant_new_uint64 (item.blocks_held));
      g_variant_builder_add (&b, "{sv}", "item-blocks", g_variant_new_uint64 (item.n_blocks));
    }
  alv_core1_set_statistics (self->skeleton, g_variant_builder_end (&b));
}

/* Once a second: the transfer rates, smoothed (a quarter of each new
 * second's rate), from the totals. */
static void
update_rates (CoreService *self)
{
  AlvSwarmStats st = self->done_stats;
  AlvPeerServerStats ps = { 0, };
  gint64 now = g_get_monotonic_time ();
  guint64 down, up;

  collect_swarm_stats (self, &st);
  if (self->peers != NULL)
    alv_peer_server_get_stats (self->peers, &ps);
  down = st.bytes_from_peers + st.bytes_from_origin + self->bytes_from_origin;
  up = ps.bytes_uploaded;
  if (self->rate_last_time > 0 && now > self->rate_last_time && down >= self->rate_last_down &&
      up >= self->rate_last_up)
    {
      double dt = (now - self->rate_last_time) / (double) G_USEC_PER_SEC;

      self->rate_down += ((down - self->rate_last_down) / dt - self->rate_down) / 4;
      self->rate_up += ((up - self->rate_last_up) / dt - self->rate_up) / 4;
    }
  self->rate_last_down = down;
  self->rate_last_up = up;
  self->rate_last_time = now;
}

static gint64
datetime_to_us (GDateTime *dt)
{
  return g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
}

static void
set_now_playing (CoreService     *self,
                 AlvPlaylistItem *item,
                 GTimeSpan        position)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (item != NULL)
    {
      const char *title = alv_playlist_item_get_title (item);
      const char *creator = alv_playlist_item_get_creator (item);
      const char *urn = alv_playlist_item_get_urn (item);

      g_variant_builder_add (&b, "{sv}", "title", g_variant_new_string (title != NULL ? title : ""));
      g_variant_builder_add (&b, "{sv}", "creator", g_variant_new_string (creator != NULL ? creator : ""));
      g_variant_builder_add (&b, "{sv}", "url", g_variant_new_string (alv_playlist_item_get_url (item)));
      g_variant_builder_add (&b, "{sv}", "urn", g_variant_new_string (urn != NULL ? urn : ""));
      g_variant_builder_add (&b, "{sv}", "slot-start",
                             g_variant_new_int64 (datetime_to_us (alv_playlist_item_get_start (item))));
      g_variant_builder_add (&b, "{sv}", "slot-end",
                             g_variant_new_int64 (datetime_to_us (alv_playlist_item_get_end (item))));
      g_variant_builder_add (&b, "{sv}", "position", g_variant_new_int64 (position));
    }
  alv_core1_set_now_playing (self->skeleton, g_variant_builder_end (&b));
}

/* --- idle exit ------------------------------------------------------- */

static gboolean
on_idle_timeout (gpointer user_data)
{
  CoreService *self = user_data;

  self->idle_id = 0;
  g_debug ("idle for %u s, exiting", self->config.idle_timeout);
  g_signal_emit (self, signals[SIGNAL_IDLE_EXIT], 0);
  return G_SOURCE_REMOVE;
}

/* Nothing tuned and nothing shared is idle. */
static void
update_idle (CoreService *self)
{
  gboolean idle = self->schedule == NULL && self->tuning == NULL && self->shared->len == 0;

  if (!idle || self->config.idle_timeout == 0)
    {
      g_clear_handle_id (&self->idle_id, g_source_remove);
      return;
    }
  if (self->idle_id == 0)
    self->idle_id = g_timeout_add_seconds (self->config.idle_timeout, on_idle_timeout, self);
}

/* --- memory after Stop ----------------------------------------------- */

static gboolean
on_give_back (gpointer user_data)
{
  CoreService *self = user_data;

  self->give_back_id = 0;
  alv_memory_give_back ("station stopped");
  return G_SOURCE_REMOVE;
}

/* A stopped station's swarm, buffers and playlist are freed partly on
 * later turns of the main loop (with the operations cancelled); a second
 * later their memory goes back to the system instead of staying with the
 * allocator until the daemon exits. */
static void
give_back_memory_soon (CoreService *self)
{
  if (self->give_back_id == 0)
    self->give_back_id = g_timeout_add_seconds (1, on_give_back, self);
}

/* --- feeder: the interim origin path --------------------------------- */

typedef enum
{
  FEED_RAW,
  FEED_MP3,
  FEED_OGG,
  FEED_MATROSKA,
} FeedKind;

struct _Feeder
{
  CoreService *service;       /* not owned: the service owns the feeder */
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

static void feeder_read_head (Feeder *f);
static void feeder_read_body (Feeder *f);
static void feeder_data_done (Feeder *f);
static void feeder_drain (Feeder *f);
static void schedule_retry (CoreService *self);
static Feeder *feeder_new (CoreService *self, AlvPlaylistItem *item, GTimeSpan position,
                           gboolean prefetch_only);
static void keep_sharing (CoreService *self, AlvSwarm *swarm);

static void
feeder_free (Feeder *f)
{
  if (f == NULL)
    return;
  g_cancellable_cancel (f->cancellable);
  if (f->swarm != NULL)
    {
      g_signal_handlers_disconnect_by_data (f->swarm, f);
      alv_swarm_set_deadline_func (f->swarm, NULL, NULL, NULL);
      alv_swarm_set_active (f->swarm, TRUE);
      keep_sharing (f->service, g_steal_pointer (&f->swarm));
    }
  g_clear_pointer (&f->urn, g_free);
  g_clear_handle_id (&f->timer_id, g_source_remove);
  g_clear_handle_id (&f->done_id, g_source_remove);
  g_clear_object (&f->cancellable);
  g_clear_object (&f->stream);
  g_clear_object (&f->msg);
  g_clear_object (&f->item);
  g_clear_pointer (&f->buf, g_byte_array_unref);
  g_free (f);
}

/* The feeder callbacks hold no reference: a cancelled operation returns
 * CANCELLED after feeder_free(), so every callback first checks for that
 * without touching @f. */
static void
feeder_fail (Feeder     *f,
             const char *message)
{
  CoreService *self = f->service;
  g_autofree char *text = g_strdup_printf (_("Cannot play “%s”: %s"),
                                           alv_playlist_item_get_url (f->item), message);

  if (f == self->next_feeder)
    {
      /* a failed prefetch is retried when the item starts */
      g_message ("%s", text);
      g_clear_pointer (&self->next_feeder, feeder_free);
      return;
    }
  g_message ("%s", text);
  set_state (self, ALV_CORE_STATE_ERROR, text);
  /* (one handed over before its slot starts afresh at its slot) */
  if (!f->handed_over)
    schedule_retry (self);
  g_clear_pointer (&self->feeder, feeder_free);
}

static const char *
feeder_content_type (Feeder *f)
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

/* The item playing failed (its origin or gateway unreachable, say): try
 * it again, from the position playing by then, after RETRY_FIRST_MS,
 * twice as long each time in a row up to RETRY_MAX_MS, for as long as its
 * slot lasts (the next item starts afresh anyway). */
static gboolean
on_retry (gpointer user_data)
{
  CoreService *self = user_data;
  AlvPlaylistItem *item;
  GTimeSpan offset = 0;

  self->retry_id = 0;
  if (self->schedule == NULL || self->feeder != NULL)
    return G_SOURCE_REMOVE;
  item = alv_schedule_get_current_item (self->schedule, &offset);
  if (item == NULL)
    return G_SOURCE_REMOVE;
  g_debug ("trying %s again, from %" G_GINT64_FORMAT " µs", alv_playlist_item_get_url (item),
           (gint64) offset);
  self->feeder = feeder_new (self, item, offset, FALSE);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (CoreService *self)
{
  if (self->schedule == NULL || self->retry_id != 0)
    return;
  if (self->retry_step_ms == 0)
    self->retry_step_ms = RETRY_FIRST_MS;
  self->retry_id = g_timeout_add (self->retry_step_ms, on_retry, self);
  self->retry_step_ms = MIN (self->retry_step_ms * 2, RETRY_MAX_MS);
}

static void
feeder_begin (Feeder *f)
{
  CoreService *self = f->service;

  if (f->began)
    return;
  f->began = TRUE;
  alv_stream_server_begin_item (self->stream, feeder_content_type (f),
                                alv_playlist_item_get_title (f->item),
                                alv_playlist_item_get_creator (f->item));
}

static void
feeder_push (Feeder       *f,
             const guint8 *data,
             gsize         len)
{
  g_autoptr(GBytes) bytes = NULL;

  if (len == 0)
    return;
  feeder_begin (f);
  bytes = g_bytes_new (data, len);
  alv_stream_server_push (f->service->stream, bytes);
  if (g_strcmp0 (alv_core1_get_state (f->service->skeleton), "playing") != 0)
    {
      g_debug ("first bytes of %s pushed", alv_playlist_item_get_url (f->item));
      set_state (f->service, ALV_CORE_STATE_PLAYING, "");
      f->service->retry_step_ms = 0;
    }
}

static gboolean
on_feed_timer (gpointer user_data)
{
  Feeder *f = user_data;

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
feeder_push_buffered (Feeder *f)
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
feeder_schedule_read (Feeder *f)
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
feeder_push_rest (Feeder *f)
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
feeder_schedule_paced (Feeder *f)
{
  gint64 due = f->t0 + (gint64) (f->pushed / f->bytes_per_sec * G_USEC_PER_SEC) - FEED_LEAD;
  gint64 wait_ms = MAX ((due - g_get_monotonic_time ()) / 1000, 0) + PACE_STEP_MS;

  g_clear_handle_id (&f->timer_id, g_source_remove);
  f->timer_id = g_timeout_add ((guint) wait_ms, on_feed_timer, f);
}

static void
feeder_drain (Feeder *f)
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

static void
body_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  Feeder *f;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  if (chunk == NULL)
    {
      feeder_fail (f, error->message);
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      /* the item's data is all out: the next item takes over */
      feeder_push_rest (f);
      g_clear_object (&f->stream);
      feeder_data_done (f);
      return;
    }
  /* (published by the once-a-second timer, not per chunk) */
  f->service->bytes_from_origin += g_bytes_get_size (chunk);
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

static void feeder_swarm_read (Feeder *f);

static void
feeder_read_body (Feeder *f)
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
  g_autoptr(GError) error = NULL;
  GInputStream *stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  Feeder *f;
  guint status;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  if (stream == NULL)
    {
      feeder_fail (f, error->message);
      return;
    }
  f->stream = stream;
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
feeder_start_body (Feeder *f)
{
  CoreService *self = f->service;
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
  soup_session_send_async (self->session, f->msg, G_PRIORITY_DEFAULT, f->cancellable,
                           body_send_cb, f);
}

static void feeder_place (Feeder *f, const AlvMp3Info *mp3, guint64 audio_start, guint64 duration);

/* The head is complete (or the item is shorter): find the format, the
 * byte rate and the offset of the position now playing. */
static void
feeder_probe (Feeder *f)
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
feeder_probe_facts (Feeder           *f,
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
feeder_place (Feeder           *f,
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
      set_state (f->service, ALV_CORE_STATE_PLAYING, "");
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
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  Feeder *f;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  if (chunk == NULL)
    {
      feeder_fail (f, error->message);
      return;
    }
  f->service->bytes_from_origin += g_bytes_get_size (chunk);
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
feeder_read_head (Feeder *f)
{
  g_input_stream_read_bytes_async (f->stream, HEAD_SIZE - f->buf->len, G_PRIORITY_DEFAULT,
                                   f->cancellable, head_read_cb, f);
}

static void
head_send_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  GInputStream *stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  SoupMessageHeaders *h;
  Feeder *f;
  guint status;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  if (stream == NULL)
    {
      feeder_fail (f, error->message);
      return;
    }
  f->stream = stream;
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
feeder_start_direct (Feeder *f)
{
  g_autofree char *range = g_strdup_printf ("bytes=0-%u", HEAD_SIZE - 1);

  f->msg = soup_message_new (SOUP_METHOD_GET, alv_playlist_item_get_url (f->item));
  soup_message_headers_replace (soup_message_get_request_headers (f->msg), "Range", range);
  soup_session_send_async (f->service->session, f->msg, G_PRIORITY_DEFAULT, f->cancellable,
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

static void feeder_swarm_poll (Feeder *f);

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
  Feeder *f = user_data;
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
feeder_swarm_begin (Feeder *f)
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

static void
swarm_head_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) data = alv_block_store_read_finish (ALV_BLOCK_STORE (source), result, &error);
  Feeder *f;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  f->head_reading = FALSE;
  if (g_error_matches (error, ALV_ERROR, ALV_ERROR_MISMATCH))
    {
      /* a block changed on disk and is fetched again: "block-ready" reads
       * the head anew */
      g_message ("%s", error->message);
      return;
    }
  if (data == NULL)
    {
      feeder_fail (f, error->message);
      return;
    }
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
feeder_swarm_poll (Feeder *f)
{
  guint64 head_len;

  if (!f->head_done)
    {
      head_len = MIN (f->head_want, f->file_size);
      if (!f->head_reading && swarm_holds (f->swarm, 0, head_len))
        {
          f->head_reading = TRUE;
          alv_block_store_read_async (f->service->store, f->urn, 0, head_len, f->cancellable,
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
  Feeder *f = user_data;

  /* requests waiting at the peer port for a block pulled from the
   * origin are answered as it lands */
  if (f->service->peers != NULL)
    alv_peer_server_block_arrived (f->service->peers, f->urn);
  feeder_swarm_poll (f);
}

static void
swarm_read_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) data = alv_block_store_read_finish (ALV_BLOCK_STORE (source), result, &error);
  Feeder *f;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  f->reading = FALSE;
  if (g_error_matches (error, ALV_ERROR, ALV_ERROR_MISMATCH))
    {
      /* a block changed on disk: the store dropped it and the swarm
       * fetches it again; "block-ready" resumes the read */
      g_message ("%s", error->message);
      f->waiting = TRUE;
      return;
    }
  if (data == NULL || g_bytes_get_size (data) == 0)
    {
      feeder_fail (f, error != NULL ? error->message : _("the cache returned no data"));
      return;
    }
  g_byte_array_append (f->buf, g_bytes_get_data (data, NULL), g_bytes_get_size (data));
  f->read_pos += g_bytes_get_size (data);
  feeder_drain (f);
}

/* Reads the held run at the read position (a quarter second of it, at most
 * STORE_READ bytes), or waits for "block-ready" when the next block is
 * not held yet. */
static void
feeder_swarm_read (Feeder *f)
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
  alv_block_store_read_async (f->service->store, f->urn, f->read_pos, end - f->read_pos,
                              f->cancellable, swarm_read_cb, f);
}

static AlvSwarm *take_shared (CoreService *self, const char *urn);

/* The next item's swarm fetches only once the item playing is held in
 * full (or the next slot is near): the station's uplink and the peers'
 * go to what is heard now first.  The first listener done with the item
 * playing starts the next one from the origin, the others follow it. */
static void
update_prefetch (CoreService *self)
{
  Feeder *next = self->next_feeder;
  Feeder *cur = self->feeder;
  gboolean enable;

  if (next == NULL || next->swarm == NULL || self->schedule == NULL)
    return;
  /* (a current item still resolving counts as not held: its swarm comes) */
  enable = cur == NULL || (cur->swarm != NULL ? alv_swarm_has_needed (cur->swarm) : cur->head_done)
           || datetime_to_us (alv_playlist_item_get_start (next->item)) - alv_schedule_now (self->schedule)
              <= PREFETCH_LEAD;
  alv_swarm_set_active (next->swarm, enable);
}

/* The item is resolved and the store is open: run (or take over) its swarm. */
static void
feeder_swarm_setup (Feeder                     *f,
                    const AlvGatewayResolution *res)
{
  CoreService *self = f->service;
  g_autoptr(GError) error = NULL;
  AlvSwarm *swarm = take_shared (self, res->urn);

  if (swarm == NULL)
    {
      swarm = alv_swarm_new_for_resolution (self->store, res, &error);
      if (swarm == NULL)
        {
          g_message ("cannot swarm %s, playing it from the origin: %s", res->url, error->message);
          feeder_start_direct (f);
          return;
        }
      alv_swarm_set_gateway (swarm, self->gateway, res->thex_uri,
                             self->peers != NULL ? alv_peer_server_get_port (self->peers) : 0);
      alv_swarm_set_listen_port (swarm, announced_port (self));
      alv_block_store_pin (self->store, res->urn);
      if (self->peers != NULL)
        alv_peer_server_share (self->peers, res->urn);
      alv_swarm_start (swarm);
    }
  g_debug ("swarming %s as %s", res->url, res->urn);
  f->swarm = swarm;
  f->urn = g_strdup (res->urn);
  f->file_size = res->length;
  f->head_want = MIN ((guint64) HEAD_SIZE, MAX ((guint64) alv_swarm_get_block_size (swarm),
                                               (guint64) MIN_HEAD_SIZE));
  g_signal_connect (swarm, "block-ready", G_CALLBACK (on_swarm_block_ready), f);
  if (f->prefetch_only)
    update_prefetch (self);
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
resolution_from_cache (CoreService     *self,
                       AlvPlaylistItem *item)
{
  const char *listed = alv_playlist_item_get_urn (item);
  g_autofree char *urn = NULL;
  AlvGatewayResolution *res;
  guint64 length = 0, n_blocks = 0;
  guint block_size = 0;

  if (self->store == NULL || listed == NULL)
    return NULL;
  urn = alv_urn_normalize (listed, NULL);
  if (urn == NULL || !alv_block_store_has_tree (self->store, urn) ||
      !alv_block_store_get_entry_info (self->store, urn, &length, &block_size, &n_blocks))
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
  Feeder *f;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  f = user_data;
  if (res == NULL)
    {
      g_autoptr(AlvGatewayResolution) cached = resolution_from_cache (f->service, f->item);

      if (cached != NULL)
        {
          g_message ("cannot resolve %s at the gateway, playing it from the cache (%s): %s",
                     alv_playlist_item_get_url (f->item),
                     alv_block_store_is_complete (f->service->store, cached->urn)
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
  if (f->service->store == NULL)
    {
      if (f->service->store_opening)
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

static void
feeder_resume_store (Feeder *f)
{
  AlvGatewayResolution *res;

  if (f == NULL || !f->wait_store)
    return;
  f->wait_store = FALSE;
  res = g_object_get_data (G_OBJECT (f->cancellable), "resolution");
  if (f->service->store != NULL)
    feeder_swarm_setup (f, res);
  else
    feeder_start_direct (f);
}

static Feeder *
feeder_new (CoreService     *self,
            AlvPlaylistItem *item,
            GTimeSpan        position,
            gboolean         prefetch_only)
{
  Feeder *f = g_new0 (Feeder, 1);

  f->service = self;
  f->item = g_object_ref (item);
  f->position = position;
  f->prefetch_only = prefetch_only;
  f->cancellable = g_cancellable_new ();
  f->buf = g_byte_array_new ();
  if (self->gateway != NULL && (self->store != NULL || self->store_opening))
    alv_gateway_client_resolve_async (self->gateway, alv_playlist_item_get_url (item),
                                      f->cancellable, resolve_cb, f);
  else
    feeder_start_direct (f);
  return f;
}

/* --- sharing --------------------------------------------------------- */

typedef struct
{
  CoreService *service;
  AlvSwarm *swarm;
  guint timer_id;
} Shared;

static void
add_stats (AlvSwarmStats       *total,
           const AlvSwarmStats *s)
{
  total->bytes_from_peers += s->bytes_from_peers;
  total->bytes_from_origin += s->bytes_from_origin;
  total->blocks_verified += s->blocks_verified;
  total->blocks_rejected += s->blocks_rejected;
  total->peers_connected += s->peers_connected;
  /* the gateway's latest word on the peer port, whichever item it was */
  if (s->peer_port_reach_time > total->peer_port_reach_time)
    {
      total->peer_port_reach = s->peer_port_reach;
      total->peer_port_reach_time = s->peer_port_reach_time;
    }
}

static void
shared_free (gpointer data)
{
  Shared *sh = data;
  CoreService *self = sh->service;
  const char *urn = alv_swarm_get_urn (sh->swarm);
  AlvSwarmStats st;

  g_clear_handle_id (&sh->timer_id, g_source_remove);
  alv_swarm_stop (sh->swarm);
  alv_swarm_get_stats (sh->swarm, &st);
  st.peers_connected = 0;
  add_stats (&self->done_stats, &st);
  if (self->peers != NULL)
    alv_peer_server_unshare (self->peers, urn);
  if (self->store != NULL)
    alv_block_store_unpin (self->store, urn);
  g_object_unref (sh->swarm);
  g_free (sh);
}

static gboolean
on_share_expired (gpointer user_data)
{
  Shared *sh = user_data;
  CoreService *self = sh->service;

  sh->timer_id = 0;
  g_debug ("no longer sharing %s", alv_swarm_get_urn (sh->swarm));
  g_ptr_array_remove (self->shared, sh);
  update_idle (self);
  return G_SOURCE_REMOVE;
}

/* A played (or dropped) item stays shared for SHARE_LINGER seconds. */
static void
keep_sharing (CoreService *self,
              AlvSwarm    *swarm)
{
  Shared *sh = g_new0 (Shared, 1);

  sh->service = self;
  sh->swarm = swarm;
  sh->timer_id = g_timeout_add_seconds (SHARE_LINGER, on_share_expired, sh);
  g_ptr_array_add (self->shared, sh);
  while (self->shared->len > SHARE_MAX)
    g_ptr_array_remove_index (self->shared, 0);
}

static AlvSwarm *
take_shared (CoreService *self,
             const char  *urn)
{
  for (guint i = 0; i < self->shared->len; i++)
    {
      Shared *sh = g_ptr_array_index (self->shared, i);

      if (g_strcmp0 (alv_swarm_get_urn (sh->swarm), urn) == 0)
        {
          AlvSwarm *swarm = g_steal_pointer (&sh->swarm);

          g_clear_handle_id (&sh->timer_id, g_source_remove);
          g_free (g_ptr_array_steal_index (self->shared, i));
          return swarm;
        }
    }
  return NULL;
}

static AlvSwarm *
find_swarm (CoreService *self,
            const char  *urn)
{
  if (self->feeder != NULL && self->feeder->swarm != NULL && g_strcmp0 (self->feeder->urn, urn) == 0)
    return self->feeder->swarm;
  if (self->next_feeder != NULL && self->next_feeder->swarm != NULL
      && g_strcmp0 (self->next_feeder->urn, urn) == 0)
    return self->next_feeder->swarm;
  for (guint i = 0; i < self->shared->len; i++)
    {
      Shared *sh = g_ptr_array_index (self->shared, i);

      if (g_strcmp0 (alv_swarm_get_urn (sh->swarm), urn) == 0)
        return sh->swarm;
    }
  return NULL;
}

static GPtrArray *
peer_alt_func (const char *urn,
               gpointer    user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  return swarm != NULL ? alv_swarm_get_shareable_peers (swarm) : NULL;
}

static AlvRangeSet *
peer_pending_func (const char *urn,
                   gpointer    user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  return swarm != NULL ? alv_swarm_get_origin_pending (swarm) : NULL;
}

static guint
peer_holders_func (const char *urn,
                   guint64     offset,
                   gpointer    user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  return swarm != NULL ? alv_swarm_count_holders (swarm, offset) : G_MAXUINT;
}

static void
peer_seen_func (const char         *urn,
                GInetSocketAddress *address,
                gpointer            user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  if (swarm != NULL)
    alv_swarm_add_requester (swarm, address);
}

/* The swarm of the item playing, if it is swarmed. */
static AlvSwarm *
playing_swarm (CoreService *self)
{
  return self->feeder != NULL ? self->feeder->swarm : NULL;
}

static void
collect_swarm_stats (CoreService   *self,
                     AlvSwarmStats *total)
{
  AlvSwarmStats st;

  if (self->feeder != NULL && self->feeder->swarm != NULL)
    {
      alv_swarm_get_stats (self->feeder->swarm, &st);
      add_stats (total, &st);
    }
  if (self->next_feeder != NULL && self->next_feeder->swarm != NULL)
    {
      alv_swarm_get_stats (self->next_feeder->swarm, &st);
      add_stats (total, &st);
    }
  for (guint i = 0; self->shared != NULL && i < self->shared->len; i++)
    {
      alv_swarm_get_stats (((Shared *) g_ptr_array_index (self->shared, i))->swarm, &st);
      add_stats (total, &st);
    }
}

/* The port peers are told to reach us on: the router's side of the
 * mapping when there is one, else the peer port itself. */
static guint16
announced_port (CoreService *self)
{
  guint16 external = self->port_map != NULL ? alv_port_map_get_external_port (self->port_map) : 0;

  if (self->peers == NULL)
    return 0;
  return external != 0 ? external : alv_peer_server_get_port (self->peers);
}

static void
on_port_map_changed (AlvPortMap  *map G_GNUC_UNUSED,
                     CoreService *self)
{
  guint16 port = announced_port (self);

  if (self->feeder != NULL && self->feeder->swarm != NULL)
    alv_swarm_set_listen_port (self->feeder->swarm, port);
  if (self->next_feeder != NULL && self->next_feeder->swarm != NULL)
    alv_swarm_set_listen_port (self->next_feeder->swarm, port);
  for (guint i = 0; self->shared != NULL && i < self->shared->len; i++)
    alv_swarm_set_listen_port (((Shared *) g_ptr_array_index (self->shared, i))->swarm, port);
  update_statistics (self);
}

static void
start_port_map (CoreService *self)
{
  g_autoptr(GError) error = NULL;

  if (self->config.nat == ALV_NAT_OFF)
    return;
  self->port_map = alv_port_map_new (self->config.nat, alv_peer_server_get_port (self->peers));
  if (self->config.nat_gateway != NULL)
    {
      g_autofree char *addr = NULL;
      guint16 port;

      /* checked when the configuration was read */
      if (alv_nat_parse_router (self->config.nat_gateway, ALV_NATPMP_SERVER_PORT, &addr, &port, &error))
        alv_port_map_set_router (self->port_map, addr, port);
    }
  g_signal_connect (self->port_map, "changed", G_CALLBACK (on_port_map_changed), self);
  alv_port_map_start (self->port_map);
}

static gboolean
on_stats_timer (gpointer user_data)
{
  update_prefetch (user_data);
  update_rates (user_data);
  update_statistics (user_data);
  return G_SOURCE_CONTINUE;
}

static void
store_open_cb (GObject      *source G_GNUC_UNUSED,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  AlvBlockStore *store = alv_block_store_new_finish (result, &error);
  CoreService *self;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = user_data;
  self->store_opening = FALSE;
  if (store == NULL)
    g_message ("cannot open the cache, playing from the origin: %s", error->message);
  else
    {
      self->store = store;
      self->peers = alv_peer_server_new (store);
      if (self->config.upload_limit > 0)
        alv_peer_server_set_rate_limit (self->peers, self->config.upload_limit);
      alv_peer_server_set_max_connections_per_address (self->peers,
                                                       self->config.peer_connections_per_address);
      alv_peer_server_set_alt_func (self->peers, peer_alt_func, self, NULL);
      alv_peer_server_set_seen_func (self->peers, peer_seen_func, self);
      alv_peer_server_set_pending_func (self->peers, peer_pending_func, self);
      alv_peer_server_set_holders_func (self->peers, peer_holders_func, self);
      if (!alv_peer_server_listen (self->peers, self->config.peer_address, self->config.peer_port, &error))
        {
          g_message ("cannot open the peer port, downloading only: %s", error->message);
          g_clear_object (&self->peers);
        }
      else
        {
          g_debug ("peer port %u", alv_peer_server_get_port (self->peers));
          start_port_map (self);
        }
    }
  feeder_resume_store (self->feeder);
  feeder_resume_store (self->next_feeder);
}

/* --- state ----------------------------------------------------------- */

static void
set_state (CoreService *self,
           AlvCoreState state,
           const char  *message)
{
  alv_core1_set_state (self->skeleton, alv_core_state_to_string (state));
  alv_core1_set_state_message (self->skeleton, message != NULL ? message : "");
}

static gboolean
same_item (AlvPlaylistItem *a,
           AlvPlaylistItem *b)
{
  return g_strcmp0 (alv_playlist_item_get_url (a), alv_playlist_item_get_url (b)) == 0 &&
         g_date_time_compare (alv_playlist_item_get_start (a), alv_playlist_item_get_start (b)) == 0;
}

/* The prefetched @f becomes the feeder playing, from @offset. */
static void
adopt_next_feeder (CoreService *self,
                   Feeder      *f,
                   gint64       offset)
{
  g_debug ("using the prefetched head of %s", alv_playlist_item_get_url (f->item));
  f->position = offset;
  f->prefetch_only = FALSE;
  self->feeder = f;
  if (f->swarm != NULL)
    feeder_swarm_begin (f);
  if (f->head_done)
    feeder_probe (f);
}

/* The item playing has pushed all its data, FEED_LEAD before its slot
 * ends.  When the next item follows it back to back, that item starts
 * now, paced from the moment the stream reaches it, so the stream keeps
 * its lead across the change instead of running dry for FEED_LEAD and
 * catching up in one lump (which players at high bitrates underrun on).
 * NowPlaying still changes at the slot, with the schedule. */
static gboolean
on_feeder_data_done (gpointer user_data)
{
  Feeder *f = user_data;
  CoreService *self = f->service;
  Feeder *next = self->next_feeder;
  gint64 end, gap;

  f->done_id = 0;
  if (self->feeder != f || next == NULL || !f->synced || f->bytes_per_sec <= 0)
    return G_SOURCE_REMOVE;
  end = datetime_to_us (alv_playlist_item_get_end (f->item));
  gap = datetime_to_us (alv_playlist_item_get_start (next->item)) - end;
  if (gap > BACK_TO_BACK || gap < -BACK_TO_BACK)
    return G_SOURCE_REMOVE;
  self->next_feeder = NULL;
  next->pace_base = f->t0 + (gint64) (f->pushed / f->bytes_per_sec * G_USEC_PER_SEC);
  next->handed_over = TRUE;
  g_debug ("%s is all out: %s follows in the stream", alv_playlist_item_get_url (f->item),
           alv_playlist_item_get_url (next->item));
  g_clear_pointer (&self->feeder, feeder_free);
  adopt_next_feeder (self, next, 0);
  return G_SOURCE_REMOVE;
}

static void
feeder_data_done (Feeder *f)
{
  if (f->done_id == 0 && !f->prefetch_only)
    f->done_id = g_idle_add (on_feeder_data_done, f);
}

static void
on_item_changed (AlvSchedule     *schedule,
                 AlvPlaylistItem *item,
                 gint64           offset,
                 gpointer         user_data)
{
  CoreService *self = user_data;

  /* a new item starts afresh */
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_step_ms = 0;
  if (item != NULL && self->feeder != NULL && self->feeder->handed_over &&
      same_item (self->feeder->item, item))
    {
      /* in the stream already, from its start */
      self->feeder->handed_over = FALSE;
      set_now_playing (self, item, offset);
      return;
    }
  g_clear_pointer (&self->feeder, feeder_free);
  set_now_playing (self, item, offset);
  if (item == NULL)
    {
      AlvPlaylistItem *next = alv_schedule_get_next_item (schedule);
      g_autofree char *msg = NULL;

      if (next != NULL)
        {
          g_autofree char *when = alv_time_format_w3cdtf (alv_playlist_item_get_start (next));

          msg = g_strdup_printf (_("Nothing scheduled until %s"), when);
        }
      else
        msg = g_strdup (_("The playlist has run out"));
      set_state (self, ALV_CORE_STATE_GAP, msg);
      return;
    }
  g_debug ("now playing %s from %" G_GINT64_FORMAT " µs", alv_playlist_item_get_url (item), offset);
  set_state (self, ALV_CORE_STATE_BUFFERING, "");
  if (self->next_feeder != NULL && same_item (self->next_feeder->item, item))
    {
      adopt_next_feeder (self, g_steal_pointer (&self->next_feeder), offset);
      return;
    }
  g_clear_pointer (&self->next_feeder, feeder_free);
  self->feeder = feeder_new (self, item, offset, FALSE);
}

static void
on_prefetch (AlvSchedule     *schedule G_GNUC_UNUSED,
             AlvPlaylistItem *item,
             gpointer         user_data)
{
  CoreService *self = user_data;

  g_debug ("prefetching %s", alv_playlist_item_get_url (item));
  g_clear_pointer (&self->next_feeder, feeder_free);
  self->next_feeder = feeder_new (self, item, 0, TRUE);
}

static void
on_playlist_updated (AlvSchedule *schedule G_GNUC_UNUSED,
                     AlvPlaylist *pl,
                     gpointer     user_data)
{
  CoreService *self = user_data;
  const char *title = alv_playlist_get_title (pl);

  alv_core1_set_station_name (self->skeleton, title != NULL ? title : "");
  if (self->stream != NULL)
    g_object_set (self->stream, "name", title, "url", alv_playlist_get_link (pl),
                  "description", alv_playlist_get_description (pl), NULL);
}

static void
on_schedule_error (AlvSchedule *schedule G_GNUC_UNUSED,
                   GError      *error,
                   gpointer     user_data G_GNUC_UNUSED)
{
  /* the last good playlist stays in force; the state is not touched */
  g_message ("playlist refresh failed: %s", error->message);
}

/* Gives up the station being tuned (its callers are answered by whoever
 * calls this). */
static void
cancel_tuning (CoreService *self)
{
  g_cancellable_cancel (self->tune_cancellable);
  g_clear_object (&self->tune_cancellable);
  g_clear_object (&self->tuning);
}

static void
teardown_station (CoreService *self)
{
  cancel_tuning (self);
  if (self->holders != NULL)
    g_hash_table_remove_all (self->holders);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_step_ms = 0;
  g_clear_pointer (&self->feeder, feeder_free);
  g_clear_pointer (&self->next_feeder, feeder_free);
  if (self->schedule != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->schedule, self);
      alv_schedule_stop (self->schedule);
      g_clear_object (&self->schedule);
    }
  if (self->stream != NULL)
    {
      alv_stream_server_stop (self->stream);
      g_clear_object (&self->stream);
    }
  g_clear_object (&self->gateway);
  alv_core1_set_station (self->skeleton, "");
  alv_core1_set_station_name (self->skeleton, "");
  alv_core1_set_stream_url (self->skeleton, "");
  set_now_playing (self, NULL, 0);
}

/* The gateway of a station: the configured one, else the one at the
 * playlist's own origin (the gateway's built-in web server serves both, and
 * the playlist format names no gateway); NULL when swarming is off. */
static char *
station_gateway_url (CoreService *self,
                     const char  *station_url)
{
  g_autoptr(GUri) uri = NULL;

  if (g_strcmp0 (self->config.gateway, CORE_GATEWAY_NONE) == 0)
    return NULL;
  if (self->config.gateway != NULL && self->config.gateway[0] != '\0')
    return g_strdup (self->config.gateway);
  uri = g_uri_parse (station_url, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL)
    return NULL;
  return g_uri_join (G_URI_FLAGS_NONE, g_uri_get_scheme (uri), NULL, g_uri_get_host (uri),
                     g_uri_get_port (uri), "/", NULL, NULL);
}

static void
set_station_gateway (CoreService *self,
                     const char  *station_url)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = station_gateway_url (self, station_url);

  g_clear_object (&self->gateway);
  if (url == NULL)
    return;
  self->gateway = alv_gateway_client_new (self->session, url, &error);
  if (self->gateway == NULL)
    g_message ("ignoring the gateway %s, playing from the origin: %s", url, error->message);
  else
    g_debug ("gateway %s", url);
}

/* --- who holds the station ------------------------------------------ */

/* Several clients (two players, say) may play one station: each Tune
 * adds its caller as a holder, a Stop releases the caller's hold and
 * stops the station only when no other holder is left on the bus.  A
 * holder that leaves the bus (a crashed player, a one-shot gdbus call)
 * holds nothing. */
static void
on_holder_vanished (GDBusConnection *connection G_GNUC_UNUSED,
                    const char      *name,
                    gpointer         user_data)
{
  CoreService *self = user_data;

  g_hash_table_remove (self->holders, name);
}

static void
unwatch_name (gpointer data)
{
  g_bus_unwatch_name (GPOINTER_TO_UINT (data));
}

static void
add_holder (CoreService           *self,
            GDBusMethodInvocation *invocation)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  guint id;

  if (sender == NULL || self->connection == NULL || g_hash_table_contains (self->holders, sender))
    return;
  id = g_bus_watch_name_on_connection (self->connection, sender, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                       NULL, on_holder_vanished, self, NULL);
  g_hash_table_insert (self->holders, g_strdup (sender), GUINT_TO_POINTER (id));
}

static void
fail_pending (CoreService  *self,
              const GError *error)
{
  g_autoptr(GPtrArray) pending = g_steal_pointer (&self->pending_tunes);

  self->pending_tunes = g_ptr_array_new ();
  for (guint i = 0; i < pending->len; i++)
    g_dbus_method_invocation_return_gerror (g_ptr_array_index (pending, i), error);
}

static void
tune_refresh_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(CoreService) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) pending = NULL;
  g_autofree char *uri = NULL;
  AlvSchedule *schedule = ALV_SCHEDULE (source);
  const char *url = alv_schedule_get_url (schedule);

  if (!alv_schedule_refresh_finish (schedule, result, NULL, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;   /* superseded: whoever cancelled answered the callers */
      if (schedule != self->tuning)
        return;
      cancel_tuning (self);
      if (self->schedule == NULL)
        {
          teardown_station (self);
          set_state (self, ALV_CORE_STATE_ERROR, error->message);
        }
      else
        {
          /* the station playing plays on; only the caller hears of it */
          g_message ("cannot tune to %s (still playing %s): %s", url,
                     alv_schedule_get_url (self->schedule), error->message);
        }
      update_idle (self);
      fail_pending (self, error);
      return;
    }
  if (schedule != self->tuning)
    return;

  /* the new station's playlist is here: it replaces the one playing */
  schedule = g_steal_pointer (&self->tuning);
  g_clear_object (&self->tune_cancellable);
  teardown_station (self);
  self->schedule = schedule;
  g_signal_connect (self->schedule, "item-changed", G_CALLBACK (on_item_changed), self);
  g_signal_connect (self->schedule, "playlist-updated", G_CALLBACK (on_playlist_updated), self);
  g_signal_connect (self->schedule, "prefetch", G_CALLBACK (on_prefetch), self);
  g_signal_connect (self->schedule, "error", G_CALLBACK (on_schedule_error), self);
  alv_core1_set_station (self->skeleton, url);
  set_station_gateway (self, url);

  self->stream = alv_stream_server_new ("/stream");
  on_playlist_updated (schedule, alv_schedule_get_playlist (schedule), self);
  if (!alv_stream_server_start (self->stream, self->config.stream_port, &error))
    {
      GError *e = g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                               _("Cannot start the local stream: %s"), error->message);

      teardown_station (self);
      set_state (self, ALV_CORE_STATE_ERROR, e->message);
      update_idle (self);
      fail_pending (self, e);
      g_error_free (e);
      return;
    }
  uri = alv_stream_server_get_uri (self->stream);
  alv_core1_set_stream_url (self->skeleton, uri);
  set_state (self, ALV_CORE_STATE_RESOLVING, "");
  alv_schedule_start (schedule);

  pending = g_steal_pointer (&self->pending_tunes);
  self->pending_tunes = g_ptr_array_new ();
  /* the new station is held by those who asked for it */
  g_hash_table_remove_all (self->holders);
  for (guint i = 0; i < pending->len; i++)
    {
      add_holder (self, g_ptr_array_index (pending, i));
      alv_core1_complete_tune (self->skeleton, g_ptr_array_index (pending, i), uri);
    }
}

static gboolean
on_handle_tune (AlvCore1              *skeleton,
                GDBusMethodInvocation *invocation,
                const char            *url,
                gpointer               user_data)
{
  CoreService *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvSchedule) schedule = NULL;

  if (!alv_schedule_check_url (url, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (self->tuning != NULL && g_strcmp0 (alv_schedule_get_url (self->tuning), url) == 0)
    {
      g_ptr_array_add (self->pending_tunes, invocation);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* another station than the one being tuned: its callers lose */
  if (self->tuning != NULL)
    {
      g_autoptr(GError) e = g_error_new_literal (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                                                 _("Tuned to another station meanwhile"));

      cancel_tuning (self);
      fail_pending (self, e);
    }
  if (self->schedule != NULL && g_strcmp0 (alv_schedule_get_url (self->schedule), url) == 0)
    {
      add_holder (self, invocation);
      alv_core1_complete_tune (skeleton, invocation, alv_core1_get_stream_url (skeleton));
      update_idle (self);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  schedule = alv_schedule_new (url, self->session, &error);
  if (schedule == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      update_idle (self);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* the station playing (if any) plays on until the new playlist is
   * here: a Tune that fails loses nothing */
  self->tuning = g_steal_pointer (&schedule);
  self->tune_cancellable = g_cancellable_new ();
  g_ptr_array_add (self->pending_tunes, invocation);
  if (self->schedule == NULL)
    {
      alv_core1_set_station (skeleton, url);
      set_state (self, ALV_CORE_STATE_RESOLVING, "");
    }
  update_idle (self);
  alv_schedule_refresh_async (self->tuning, self->tune_cancellable, tune_refresh_cb,
                              g_object_ref (self));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_stop (AlvCore1              *skeleton,
                GDBusMethodInvocation *invocation,
                gpointer               user_data)
{
  CoreService *self = user_data;

  if (self->schedule == NULL && self->tuning == NULL)
    {
      g_dbus_method_invocation_return_error_literal (invocation, ALV_CORE_ERROR,
                                                     ALV_CORE_ERROR_NOT_TUNED,
                                                     _("No station is tuned"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* another client still plays the station: only the caller lets go */
  {
    const char *sender = g_dbus_method_invocation_get_sender (invocation);

    if (sender != NULL)
      g_hash_table_remove (self->holders, sender);
  }
  if (self->schedule != NULL && self->tuning == NULL && g_hash_table_size (self->holders) > 0)
    {
      g_debug ("Stop: %u other client(s) still play the station", g_hash_table_size (self->holders));
      alv_core1_complete_stop (skeleton, invocation);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (self->pending_tunes->len > 0)
    {
      g_autoptr(GError) e = g_error_new_literal (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                                                 _("Stopped before the station was tuned"));
      fail_pending (self, e);
    }
  teardown_station (self);
  set_state (self, ALV_CORE_STATE_IDLE, "");
  update_idle (self);
  give_back_memory_soon (self);
  alv_core1_complete_stop (skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
core_service_dispose (GObject *object)
{
  CoreService *self = CORE_SERVICE (object);

  g_clear_handle_id (&self->idle_id, g_source_remove);
  g_clear_handle_id (&self->stats_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->give_back_id, g_source_remove);
  g_cancellable_cancel (self->cancellable);
  if (self->pending_tunes != NULL && self->pending_tunes->len > 0)
    {
      g_autoptr(GError) e = g_error_new_literal (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                                                 _("The daemon is shutting down"));
      fail_pending (self, e);
    }
  if (self->skeleton != NULL)
    {
      teardown_station (self);
      core_service_unexport (self);
      g_signal_handlers_disconnect_by_data (self->skeleton, self);
      g_clear_object (&self->skeleton);
    }
  if (self->shared != NULL)
    g_ptr_array_set_size (self->shared, 0);
  if (self->peers != NULL)
    {
      alv_peer_server_set_alt_func (self->peers, NULL, NULL, NULL);
      alv_peer_server_set_seen_func (self->peers, NULL, NULL);
      alv_peer_server_set_pending_func (self->peers, NULL, NULL);
      alv_peer_server_set_holders_func (self->peers, NULL, NULL);
      alv_peer_server_disconnect (self->peers);
      g_clear_object (&self->peers);
    }
  if (self->port_map != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->port_map, self);
      g_clear_object (&self->port_map);
    }
  g_clear_object (&self->store);
  g_clear_object (&self->gateway);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->session);
  G_OBJECT_CLASS (core_service_parent_class)->dispose (object);
}

static void
core_service_finalize (GObject *object)
{
  CoreService *self = CORE_SERVICE (object);

  g_clear_pointer (&self->pending_tunes, g_ptr_array_unref);
  g_clear_pointer (&self->holders, g_hash_table_unref);
  g_clear_pointer (&self->shared, g_ptr_array_unref);
  core_config_clear (&self->config);
  G_OBJECT_CLASS (core_service_parent_class)->finalize (object);
}

static void
core_service_class_init (CoreServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = core_service_dispose;
  object_class->finalize = core_service_finalize;

  signals[SIGNAL_IDLE_EXIT] =
    g_signal_new ("idle-exit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
core_service_init (CoreService *self)
{
  self->pending_tunes = g_ptr_array_new ();
  self->holders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unwatch_name);
  self->shared = g_ptr_array_new_with_free_func (shared_free);
  self->cancellable = g_cancellable_new ();
}

CoreService *
core_service_new (const CoreConfig *config)
{
  CoreService *self = g_object_new (CORE_TYPE_SERVICE, NULL);

  self->config = *config;
  self->config.gateway = g_strdup (config->gateway);
  self->config.peer_address = g_strdup (config->peer_address != NULL ? config->peer_address : "0.0.0.0");
  self->config.nat_gateway = g_strdup (config->nat_gateway);
  self->session = soup_session_new_with_options ("timeout", 30,
                                                 "user-agent", PACKAGE_NAME "/" PACKAGE_VERSION " ",
                                                 NULL);
  self->skeleton = alv_core1_skeleton_new ();
  g_clear_object (&self->gateway);
  alv_core1_set_station (self->skeleton, "");
  alv_core1_set_station_name (self->skeleton, "");
  alv_core1_set_stream_url (self->skeleton, "");
  set_state (self, ALV_CORE_STATE_IDLE, "");
  set_now_playing (self, NULL, 0);
  update_statistics (self);
  g_signal_connect (self->skeleton, "handle-tune", G_CALLBACK (on_handle_tune), self);
  g_signal_connect (self->skeleton, "handle-stop", G_CALLBACK (on_handle_stop), self);
  if (g_strcmp0 (self->config.gateway, CORE_GATEWAY_NONE) != 0)
    {
      g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "alluvium", NULL);

      self->store_opening = TRUE;
      alv_block_store_new_async (dir, self->config.cache_size, self->cancellable,
                                 store_open_cb, self);
    }
  /* Statistics change with every chunk; they are published once a
   * second, on the swarm path and the direct one alike (a D-Bus signal
   * per 16 KiB was what the direct path sent) */
  self->stats_id = g_timeout_add_seconds (1, on_stats_timer, self);
  update_idle (self);
  return self;
}

gboolean
core_service_export (CoreService     *service,
                     GDBusConnection *connection,
                     GError         **error)
{
  g_return_val_if_fail (CORE_IS_SERVICE (service), FALSE);

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (service->skeleton),
                                         connection, ALV_CORE_OBJECT_PATH, error))
    return FALSE;
  g_set_object (&service->connection, connection);
  return TRUE;
}

void
core_service_unexport (CoreService *service)
{
  g_return_if_fail (CORE_IS_SERVICE (service));

  if (service->connection == NULL)
    return;
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (service->skeleton));
  g_clear_object (&service->connection);
}

static void
release_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!alv_port_map_release_finish (ALV_PORT_MAP (source), result, &error))
    g_debug ("the mapping of the peer port was not removed: %s", error->message);
  g_task_return_boolean (task, TRUE);
}

void
core_service_release_async (CoreService         *service,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CORE_IS_SERVICE (service));

  task = g_task_new (service, NULL, callback, user_data);
  g_task_set_source_tag (task, core_service_release_async);
  if (service->port_map == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  /* the swarms keep the mapped port: they announce it once more when
   * they stop, rather than the internal one during the removal */
  g_signal_handlers_disconnect_by_data (service->port_map, service);
  alv_port_map_release_async (service->port_map, NULL, release_cb, g_steal_pointer (&task));
}

void
core_service_release_finish (CoreService  *service,
                             GAsyncResult *result)
{
  g_return_if_fail (g_task_is_valid (result, service));
  g_task_propagate_boolean (G_TASK (result), NULL);
}
