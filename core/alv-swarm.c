/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * AlvSwarm: the per-item swarm downloader of DESIGN §3.4.  A scheduler
 * runs on a short tick and after every event; it hands out block requests
 * to peers and coalesced range requests to the origin under a fixed cap of
 * requests in flight.  The policy (urgent window, origin patience, rarest
 * first, endgame, scoring, bans) and its numbers are explained in
 * doc/swarm.md.  Each request streams its body one block at a time into a
 * buffer and hands every complete block to the block store (peer blocks
 * are verified there against the tree; a mismatch bans the peer), and
 * reads on only when that write finished, so a request costs at most one
 * block of memory.
 *
 * Signals: "block-ready" (guint64 index, guint64 contiguous_end) when a
 * block became held; "progress" after every change of the statistics;
 * "complete" once every block is held; "tree-ready" once the tree is in
 * the store and peers can be used.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-swarm.h"

#include <string.h>
#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "alv-ocn-headers.h"

/* Scheduling numbers; doc/swarm.md says why. */
#define TICK_MS                 50
#define MAX_REQUESTS            16      /* all requests in flight */
#define MAX_PEERS               200
#define PEER_MAX_DEPTH          4       /* per-peer pipeline, blocks */
#define PEER_DEFAULT_DEPTH      2
#define PIPELINE_SECONDS        1.5
#define PEER_ASSUMED_RATE       (512.0 * 1024)   /* bytes/s before measured */
#define ORIGIN_ASSUMED_RATE     (1024.0 * 1024)
#define PEER_STALL_US           (4 * G_USEC_PER_SEC)
#define ORIGIN_STALL_US         (10 * G_USEC_PER_SEC)
#define ORIGIN_MAX_RUN_BYTES    (1024 * 1024)    /* one Range request */
#define ORIGIN_SHARED_RUN_BYTES (512 * 1024)     /* when peers may pull it too */
#define ORIGIN_MAX_SKIP         (64u * 1024 * 1024)
#define ORIGIN_MAX_REQUESTS     2
#define SEGMENT_BYTES           (256 * 1024)     /* unit of origin ownership */
#define FILL_HORIZON_US         (60 * G_USEC_PER_SEC) /* the leader pulls what is due this soon */
#define RANK_STEP_US            (500 * G_USEC_PER_SEC / 1000) /* urgent stand-ins, per rank */
#define LATE_GRACE_US           (2 * G_USEC_PER_SEC) /* how late a peer's origin pull may be */
#define HELD_GRACE_US           (1 * G_USEC_PER_SEC) /* how late a held block may be */
#define FILL_RUN_BYTES          SEGMENT_BYTES    /* one run of the leader's */
#define LEAD_STALE_US           (3 * G_USEC_PER_SEC)  /* a peer not heard from since leads nobody */
#define POLL_INTERVAL_US        (1 * G_USEC_PER_SEC)
#define INFO_MAX_WAIT_US        (2 * G_USEC_PER_SEC)
#define DEFAULT_URGENT_WINDOW_MS 4000
#define ORIGIN_MARGIN_US        (1 * G_USEC_PER_SEC)
#define ENDGAME_MARGIN_US       (1500 * G_USEC_PER_SEC / 1000)
#define URGENT_SCAN_MAX         512
#define BUSY_BACKOFF_US         (300 * G_USEC_PER_SEC / 1000)
#define OWNER_MAX_FAILURES      3       /* a peer failing more is nobody's owner */
#define ANNOUNCE_QUICK_MIN_S    1
#define ANNOUNCE_QUICK_MAX_S    60
#define ANNOUNCE_DEFAULT_S      900
#define ANNOUNCE_FEW_PEERS      4
#define READ_CHUNK              (64 * 1024)

typedef struct _Peer Peer;
typedef struct _Request Request;

struct _Peer
{
  char *key;                    /* ip:port */
  char *base;                   /* http://ip:port */
  GInetSocketAddress *address;
  AlvBlockMap *avail;           /* NULL: not known yet */
  AlvBlockMap *fetching;        /* its X-Pending-Ranges: from the origin now */
  gint64 avail_time;
  gboolean polling;
  guint inflight;
  double rate;                  /* bytes/s, EWMA; 0 = not measured */
  guint failures;
  gint64 backoff_until;
  gint64 busy_until;            /* its upload slots were full: no GET till then */
  gboolean banned;
};

struct _Request
{
  AlvSwarm *swarm;              /* strong */
  Peer *peer;                   /* NULL: the origin */
  guint64 first, last;          /* blocks, inclusive */
  guint64 next;                 /* next block to complete */
  guint64 skip;                 /* body bytes to discard first */
  gboolean expect_eof;          /* a 206 of exactly the range: read its end */
  gboolean fill;                /* an owner's pull beyond the urgent window */
  SoupMessage *msg;
  GInputStream *stream;
  GByteArray *buf;
  GCancellable *cancellable;
  gint64 started;
  gint64 last_progress;
  guint64 bytes;
  gboolean ended;
};

struct _AlvSwarm
{
  GObject parent_instance;

  AlvBlockStore *store;
  char *urn;
  char *origin_url;
  guint64 length;
  guint block_size;
  guint n_blocks;
  AlvHashTree *tree;            /* set once the store has it */
  gboolean tree_pending;

  SoupSession *session;
  GCancellable *cancellable;
  AlvGatewayClient *gateway;
  char *thex_uri;
  guint16 peer_port;

  AlvBlockMap *have;
  AlvBlockMap *taken;           /* have | writing | pending */
  guint8 *pending;              /* requests covering the block */
  guint8 *writing;
  guint *availability;
  guint *fetching;              /* peers fetching the block from the origin */
  guint fill_inflight;

  GHashTable *peers;            /* key → Peer */
  GPtrArray *requests;          /* Request, in flight */
  GRand *rand;
  char *self_key;               /* ip:port as the gateway tells the others */

  gboolean active;              /* FALSE: fetch nothing for now */
  gint64 active_since;          /* when it last became active */
  gboolean origin_ignores_range;
  gboolean origin_broken;       /* it served data not matching the tree */
  guint origin_inflight;
  guint origin_failures;
  gint64 origin_backoff_until;
  double origin_rate;
  guint needed_from;            /* blocks before it are not fetched (behind
                                 * the position playing), unless due */

  guint64 playhead;
  guint64 playhead_rate;
  gint64 playhead_time;
  AlvSwarmDeadlineFunc deadline_func;
  gpointer deadline_data;
  GDestroyNotify deadline_destroy;
  gint64 urgent_window;

  gboolean running;
  gboolean completed;
  guint tick_id;
  guint idle_id;
  guint announce_id;
  guint announce_quick;
  gboolean announcing;
  gboolean announced_completed;
  gboolean first_announce_done;
  gint64 start_time;

  AlvSwarmStats stats;
};

enum
{
  SIGNAL_BLOCK_READY,
  SIGNAL_PROGRESS,
  SIGNAL_COMPLETE,
  SIGNAL_TREE_READY,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_TYPE (AlvSwarm, alv_swarm, G_TYPE_OBJECT)

static void kick (AlvSwarm *self);
static void schedule_announce (AlvSwarm *self, guint seconds);
static gboolean taken_from (AlvSwarm *self, guint from);

/* ------------------------------------------------------------------ */
/* block bookkeeping                                                   */

static void
update_taken (AlvSwarm *self,
              guint     i)
{
  if (alv_block_map_get (self->have, i) || self->writing[i] || self->pending[i] > 0)
    alv_block_map_set (self->taken, i);
  else
    alv_block_map_clear (self->taken, i);
}

static guint64
block_offset (AlvSwarm *self,
              guint64   i)
{
  return i * self->block_size;
}

static gsize
block_len (AlvSwarm *self,
           guint64   i)
{
  guint64 off = block_offset (self, i);

  return (gsize) MIN ((guint64) self->block_size, self->length - off);
}

static gint64
block_deadline (AlvSwarm *self,
                guint     i)
{
  guint64 off;

  if (self->deadline_func != NULL)
    return self->deadline_func (self, i, self->deadline_data);
  if (self->playhead_rate == 0)
    return ALV_SWARM_NO_DEADLINE;
  off = block_offset (self, i);
  if (off + block_len (self, i) <= self->playhead)
    return ALV_SWARM_NO_DEADLINE;
  if (off <= self->playhead)
    return self->playhead_time;
  return self->playhead_time +
         (gint64) ((off - self->playhead) * (double) G_USEC_PER_SEC / self->playhead_rate);
}

static void
emit_progress (AlvSwarm *self)
{
  g_signal_emit (self, signals[SIGNAL_PROGRESS], 0);
}

/* ------------------------------------------------------------------ */
/* peers                                                               */

static void
peer_free (Peer *p)
{
  g_free (p->key);
  g_free (p->base);
  g_clear_object (&p->address);
  g_clear_pointer (&p->avail, alv_block_map_free);
  g_clear_pointer (&p->fetching, alv_block_map_free);
  g_free (p);
}

/* Replaces the map in @slot by @map (both nullable), keeping @counts (a
 * per-block count over all peers) in step. */
static void
replace_counted_map (AlvSwarm     *self,
                     AlvBlockMap **slot,
                     guint        *counts,
                     AlvBlockMap  *map)
{
  for (guint i = 0; *slot != NULL && i < self->n_blocks; i++)
    if (alv_block_map_get (*slot, i))
      counts[i]--;
  g_clear_pointer (slot, alv_block_map_free);
  *slot = map;
  for (guint i = 0; *slot != NULL && i < self->n_blocks; i++)
    if (alv_block_map_get (*slot, i))
      counts[i]++;
}

/* Replaces what @p is fetching from the origin (NULL: nothing). */
static void
peer_set_fetching (AlvSwarm    *self,
                   Peer        *p,
                   AlvBlockMap *fetching)
{
  replace_counted_map (self, &p->fetching, self->fetching, fetching);
}

static void
peer_set_avail (AlvSwarm    *self,
                Peer        *p,
                AlvBlockMap *avail)
{
  replace_counted_map (self, &p->avail, self->availability, avail);
  p->avail_time = g_get_monotonic_time ();
}

/* Reads X-Available-Ranges and X-Alt of any peer answer. */
typedef enum
{
  ABSENT_NONE,          /* no X-Available-Ranges: holds nothing */
  ABSENT_ALL,           /* a 200 of the whole item: holds everything */
  ABSENT_KEEP,          /* a 206 without it: what we knew stands */
} Absent;

static void
peer_read_headers (AlvSwarm           *self,
                   Peer               *p,
                   SoupMessageHeaders *headers,
                   Absent              absent)
{
  const char *avail = soup_message_headers_get_one (headers, ALV_HEADER_AVAILABLE_RANGES);
  const char *alt = soup_message_headers_get_list (headers, ALV_HEADER_ALT);
  const char *pending = soup_message_headers_get_one (headers, ALV_HEADER_PENDING_RANGES);
  g_autoptr(AlvRangeSet) pending_set = NULL;

  /* untrusted, like everything a peer says: only ever makes us wait a
   * little before pulling a block from the origin ourselves */
  if (pending != NULL)
    pending_set = alv_range_set_parse_available (pending, self->length, NULL);
  peer_set_fetching (self, p, pending_set != NULL
                     ? alv_block_map_new_from_range_set (pending_set, self->block_size, self->length)
                     : NULL);

  if (avail != NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AlvRangeSet) set = alv_range_set_parse_available (avail, self->length, &error);

      if (set != NULL)
        peer_set_avail (self, p, alv_block_map_new_from_range_set (set, self->block_size,
                                                                   self->length));
      else
        g_debug ("%s: bad X-Available-Ranges: %s", p->key, error->message);
    }
  else if (absent == ABSENT_ALL)
    {
      AlvBlockMap *all = alv_block_map_new (self->n_blocks);

      alv_block_map_set_all (all);
      peer_set_avail (self, p, all);
    }
  else if (absent == ABSENT_NONE || p->avail == NULL)
    peer_set_avail (self, p, alv_block_map_new (self->n_blocks));
  else
    p->avail_time = g_get_monotonic_time ();

  if (alt != NULL)
    {
      g_autoptr(GPtrArray) addrs = alv_alt_parse (alt, ALV_ALT_MAX_ENTRIES, NULL);

      for (guint i = 0; addrs != NULL && i < addrs->len; i++)
        alv_swarm_add_peer (self, addrs->pdata[i]);
    }
}

static void
peer_fail (Peer    *p,
           gint64   extra_us)
{
  gint64 backoff;

  p->failures++;
  backoff = (gint64) (250 * G_USEC_PER_SEC / 1000) << MIN (p->failures, 7u);
  p->backoff_until = g_get_monotonic_time () + MIN (backoff, 30 * G_USEC_PER_SEC) + extra_us;
}

static gboolean
peer_usable (AlvSwarm *self,
             Peer     *p,
             gint64    now)
{
  return self->tree != NULL && !p->banned && now >= p->backoff_until && now >= p->busy_until &&
         p->avail != NULL;
}

static guint
peer_depth (AlvSwarm *self,
            Peer     *p)
{
  double blocks;

  if (p->rate <= 0)
    return PEER_DEFAULT_DEPTH;
  blocks = p->rate * PIPELINE_SECONDS / self->block_size;
  return (guint) CLAMP (blocks + 0.999, 1, PEER_MAX_DEPTH);
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

static void request_read (Request *r);
static void request_done (Request *r);

static guint
n_requests (AlvSwarm *self)
{
  return self->requests->len;
}

static void
request_free (Request *r)
{
  g_clear_object (&r->msg);
  g_clear_object (&r->stream);
  g_clear_pointer (&r->buf, g_byte_array_unref);
  g_clear_object (&r->cancellable);
  g_clear_object (&r->swarm);
  g_free (r);
}

/* Ends a request: what it did not deliver becomes free to ask again. */
static void
request_end (Request  *r,
             gboolean  failed,
             gint64    extra_backoff_us)
{
  AlvSwarm *self = r->swarm;

  if (r->ended)
    return;
  r->ended = TRUE;
  for (guint64 i = r->next; i <= r->last; i++)
    {
      self->pending[i]--;
      update_taken (self, (guint) i);
    }
  if (r->peer != NULL)
    {
      r->peer->inflight--;
      if (failed)
        peer_fail (r->peer, extra_backoff_us);
      else if (r->bytes > 0)
        {
          double secs = MAX ((g_get_monotonic_time () - r->started) / (double) G_USEC_PER_SEC, 0.001);
          double rate = r->bytes / secs;

          r->peer->rate = r->peer->rate <= 0 ? rate : 0.7 * r->peer->rate + 0.3 * rate;
          r->peer->failures = 0;
        }
    }
  else
    {
      self->origin_inflight--;
      if (r->fill)
        self->fill_inflight--;
      if (failed)
        {
          gint64 backoff = (gint64) G_USEC_PER_SEC << MIN (self->origin_failures, 5u);

          self->origin_failures++;
          self->origin_backoff_until = g_get_monotonic_time () + backoff + extra_backoff_us;
        }
      else if (r->bytes > 0)
        {
          double secs = MAX ((g_get_monotonic_time () - r->started) / (double) G_USEC_PER_SEC, 0.001);

          self->origin_rate = self->origin_rate <= 0 ? r->bytes / secs
                                                     : 0.7 * self->origin_rate + 0.3 * r->bytes / secs;
          self->origin_failures = 0;
        }
    }
  g_ptr_array_remove_fast (self->requests, r);
  if (g_cancellable_is_cancelled (r->cancellable) == FALSE)
    g_cancellable_cancel (r->cancellable);
  kick (self);
  request_free (r);
}

static void
check_complete (AlvSwarm *self)
{
  if (self->completed || !alv_block_map_is_complete (self->have))
    return;
  self->completed = TRUE;
  g_signal_emit (self, signals[SIGNAL_COMPLETE], 0);
  if (self->gateway != NULL && self->peer_port != 0 && self->running && self->tree != NULL)
    schedule_announce (self, 0);
}

static void
block_held (AlvSwarm *self,
            guint     i)
{
  alv_block_map_set (self->have, i);
  update_taken (self, i);
  self->stats.blocks_verified++;
  g_signal_emit (self, signals[SIGNAL_BLOCK_READY], 0, (guint64) i,
                 alv_swarm_get_contiguous_end (self));
  emit_progress (self);
  check_complete (self);
}

typedef struct
{
  Request *r;
  guint index;
  gsize len;
} WriteData;

static void
write_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  WriteData *wd = user_data;
  Request *r = wd->r;
  AlvSwarm *self = r->swarm;
  guint i = wd->index;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (r->peer != NULL)
    ok = alv_block_store_write_block_finish (ALV_BLOCK_STORE (source), result, &error);
  else
    ok = alv_block_store_write_origin_finish (ALV_BLOCK_STORE (source), result, &error);
  self->writing[i] = FALSE;
  if (ok)
    {
      if (r->peer != NULL)
        self->stats.bytes_from_peers += wd->len;
      if (!alv_block_map_get (self->have, i))
        block_held (self, i);
      update_taken (self, i);
    }
  else
    {
      update_taken (self, i);
      if (g_error_matches (error, ALV_ERROR, ALV_ERROR_MISMATCH))
        {
          self->stats.blocks_rejected++;
          if (r->peer != NULL && r->peer->banned)
            ;   /* another of its answers already got it banned */
          else if (r->peer != NULL)
            {
              g_message ("banning peer %s for %s: block %u failed verification",
                         r->peer->key, self->urn, i);
              r->peer->banned = TRUE;
              self->stats.peers_banned++;
              peer_set_avail (self, r->peer, NULL);
              peer_set_fetching (self, r->peer, NULL);
              /* its other answers are not waited for */
              for (guint k = 0; k < self->requests->len; k++)
                {
                  Request *other = self->requests->pdata[k];

                  if (other != r && other->peer == r->peer)
                    g_cancellable_cancel (other->cancellable);
                }
            }
          else
            {
              g_message ("the origin %s served block %u not matching %s (%s); not using it again",
                         self->origin_url, i, self->urn, error->message);
              self->origin_broken = TRUE;
            }
        }
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("storing block %u of %s: %s", i, self->urn, error->message);
      emit_progress (self);
      g_free (wd);
      request_end (r, TRUE, 0);
      return;
    }
  g_free (wd);
  if (r->next > r->last)
    request_done (r);
  else
    request_read (r);
}

/* A whole block arrived in r->buf. */
static void
deliver_block (Request *r)
{
  AlvSwarm *self = r->swarm;
  guint i = (guint) r->next;
  g_autoptr(GBytes) data = g_byte_array_free_to_bytes (g_steal_pointer (&r->buf));
  WriteData *wd;

  r->buf = g_byte_array_new ();
  r->next++;
  self->pending[i]--;
  if (alv_block_map_get (self->have, i) || self->writing[i])
    {
      /* a duplicate (endgame): already held or being stored */
      update_taken (self, i);
      if (r->next > r->last)
        request_done (r);
      else
        request_read (r);
      return;
    }
  self->writing[i] = TRUE;
  update_taken (self, i);
  wd = g_new0 (WriteData, 1);
  wd->r = r;
  wd->index = i;
  wd->len = g_bytes_get_size (data);
  /* the write is not cancelled with the request: a verified block is kept */
  if (r->peer != NULL)
    alv_block_store_write_block_async (self->store, self->urn, i, data, NULL, write_cb, wd);
  else
    alv_block_store_write_origin_async (self->store, self->urn, i, data, NULL, write_cb, wd);
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Request *r = user_data;
  AlvSwarm *self = r->swarm;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = NULL;
  const guint8 *data;
  gsize len;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (chunk == NULL)
    {
      gboolean cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

      if (!cancelled)
        g_debug ("%s: reading failed: %s", r->peer ? r->peer->key : "origin", error->message);
      request_end (r, !cancelled, 0);
      return;
    }
  data = g_bytes_get_data (chunk, &len);
  if (len == 0)
    {
      g_debug ("%s: body ended early", r->peer ? r->peer->key : "origin");
      request_end (r, TRUE, 0);
      return;
    }
  r->last_progress = g_get_monotonic_time ();
  r->bytes += len;
  if (r->peer == NULL)
    self->stats.bytes_from_origin += len;
  if (r->skip > 0)
    {
      gsize n = (gsize) MIN ((guint64) len, r->skip);

      r->skip -= n;
      data += n;
      len -= n;
    }
  if (len > 0)
    g_byte_array_append (r->buf, data, (guint) len);
  if (r->buf->len > block_len (self, r->next))
    {
      /* request_read never asks past the block */
      request_end (r, TRUE, 0);
      return;
    }
  if (r->buf->len == block_len (self, r->next))
    {
      deliver_block (r);
      return;
    }
  request_read (r);
}

static void
drain_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Request *r = user_data;
  g_autoptr(GBytes) chunk = NULL;

  /* EOF lets libsoup reuse the connection; anything else is ignored */
  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, NULL);
  request_end (r, FALSE, 0);
}

/* All blocks of @r are delivered. */
static void
request_done (Request *r)
{
  if (r->expect_eof)
    g_input_stream_read_bytes_async (r->stream, 1, G_PRIORITY_DEFAULT, r->cancellable,
                                     drain_cb, r);
  else
    request_end (r, FALSE, 0);
}

static void
request_read (Request *r)
{
  AlvSwarm *self = r->swarm;
  gsize want;

  if (r->skip > 0)
    want = (gsize) MIN (r->skip, (guint64) READ_CHUNK);
  else
    want = MIN (block_len (self, r->next) - r->buf->len, (gsize) READ_CHUNK);
  g_input_stream_read_bytes_async (r->stream, want, G_PRIORITY_DEFAULT, r->cancellable,
                                   read_cb, r);
}

static gboolean
check_urn_header (AlvSwarm           *self,
                  SoupMessageHeaders *headers)
{
  const char *value = soup_message_headers_get_one (headers, ALV_HEADER_CONTENT_URN);
  g_autofree char *urn = NULL;

  if (value == NULL)
    return TRUE;
  urn = alv_content_urn_parse (value, NULL);
  return urn != NULL && g_strcmp0 (urn, self->urn) == 0;
}

static void
send_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Request *r = user_data;
  AlvSwarm *self = r->swarm;
  g_autoptr(GError) error = NULL;
  SoupMessageHeaders *headers;
  guint status;
  guint64 want_start = block_offset (self, r->first);
  guint64 want_end = block_offset (self, r->last) + block_len (self, r->last) - 1;

  r->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (r->stream == NULL)
    {
      gboolean cancelled = g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

      if (!cancelled)
        g_debug ("%s: %s", r->peer ? r->peer->key : self->origin_url, error->message);
      request_end (r, !cancelled, 0);
      return;
    }
  r->last_progress = g_get_monotonic_time ();
  status = soup_message_get_status (r->msg);
  headers = soup_message_get_response_headers (r->msg);

  if (r->peer != NULL)
    {
      Peer *p = r->peer;

      if (!check_urn_header (self, headers))
        {
          g_debug ("%s: answers for another URN", p->key);
          request_end (r, TRUE, 10 * G_USEC_PER_SEC);
          return;
        }
      if (status == SOUP_STATUS_SERVICE_UNAVAILABLE)
        {
          /* PFSP: not held (now), or all upload slots busy */
          gboolean busy = soup_message_headers_get_one (headers, "Retry-After") != NULL;

          peer_read_headers (self, p, headers, ABSENT_NONE);
          request_end (r, FALSE, 0);
          if (busy)
            p->busy_until = g_get_monotonic_time () + BUSY_BACKOFF_US;
          return;
        }
      if (status == SOUP_STATUS_NOT_FOUND)
        {
          /* not shared (yet: no tree there); polled again like any peer */
          peer_set_avail (self, p, alv_block_map_new (self->n_blocks));
          request_end (r, FALSE, 0);
          return;
        }
      if (status != SOUP_STATUS_PARTIAL_CONTENT && status != SOUP_STATUS_OK)
        {
          request_end (r, TRUE, 0);
          return;
        }
      peer_read_headers (self, p, headers, status == SOUP_STATUS_OK ? ABSENT_ALL : ABSENT_KEEP);
    }
  else
    {
      if (status != SOUP_STATUS_PARTIAL_CONTENT && status != SOUP_STATUS_OK)
        {
          g_debug ("origin %s answered %u", self->origin_url, status);
          request_end (r, TRUE, 0);
          return;
        }
    }

  if (status == SOUP_STATUS_PARTIAL_CONTENT)
    {
      guint64 start, end, total;
      const char *cr = soup_message_headers_get_one (headers, "Content-Range");

      if (cr == NULL || !alv_http_parse_content_range (cr, &start, &end, &total, NULL) ||
          total != self->length || start > want_start || end < want_start)
        {
          g_debug ("%s: unusable Content-Range %s", r->peer ? r->peer->key : "origin",
                   cr ? cr : "(none)");
          request_end (r, TRUE, 0);
          return;
        }
      r->skip = want_start - start;
      r->expect_eof = end <= want_end;
      if (end < want_end)
        {
          /* PFSP: a sub-range; only whole blocks of it count */
          guint64 last_full = (end + 1) / self->block_size;

          if (end + 1 == self->length)
            last_full = self->n_blocks;
          if (last_full <= r->first)
            {
              request_end (r, FALSE, 0);
              return;
            }
          for (guint64 i = last_full; i <= r->last; i++)
            {
              self->pending[i]--;
              update_taken (self, (guint) i);
            }
          r->last = last_full - 1;
        }
    }
  else
    {
      /* 200: the whole item from byte 0; read and discard up to the
       * range, within reason */
      goffset cl = soup_message_headers_get_content_length (headers);

      if (cl > 0 && (guint64) cl != self->length)
        {
          g_debug ("%s: a 200 of %" G_GOFFSET_FORMAT " bytes, not %" G_GUINT64_FORMAT,
                   r->peer ? r->peer->key : "origin", cl, self->length);
          request_end (r, TRUE, 0);
          return;
        }
      if (r->peer == NULL)
        self->origin_ignores_range = TRUE;
      if (want_start > ORIGIN_MAX_SKIP || (r->peer != NULL && want_start > 0))
        {
          if (r->peer == NULL)
            g_message ("the origin %s ignores Range; block %" G_GUINT64_FORMAT
                       " is too far in to read from the start", self->origin_url, r->first);
          request_end (r, TRUE, 30 * G_USEC_PER_SEC);
          return;
        }
      r->skip = want_start;
    }
  request_read (r);
}

/* Tells a peer where this one listens, so it learns of us at once. */
static void
add_listen_port (AlvSwarm    *self,
                 SoupMessage *msg)
{
  g_autofree char *port = NULL;

  if (self->peer_port == 0)
    return;
  port = g_strdup_printf ("%u", self->peer_port);
  soup_message_headers_replace (soup_message_get_request_headers (msg), ALV_HEADER_LISTEN_PORT, port);
}

static gboolean
start_request (AlvSwarm   *self,
               Peer       *peer,
               guint64     first,
               guint64     last,
               const char *why)
{
  Request *r;
  g_autofree char *uri = NULL;
  g_autofree char *range = NULL;

  if (peer != NULL)
    {
      g_autofree char *path = alv_n2r_path (self->urn);

      uri = g_strconcat (peer->base, path, NULL);
    }
  else
    uri = g_strdup (self->origin_url);

  r = g_new0 (Request, 1);
  r->msg = soup_message_new (SOUP_METHOD_GET, uri);
  if (r->msg == NULL)
    {
      g_free (r);
      if (peer == NULL)
        self->origin_broken = TRUE;
      return FALSE;
    }
  r->swarm = g_object_ref (self);
  r->peer = peer;
  r->first = first;
  r->last = last;
  r->next = first;
  r->buf = g_byte_array_new ();
  r->cancellable = g_cancellable_new ();
  r->started = r->last_progress = g_get_monotonic_time ();
  range = g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                           block_offset (self, first),
                           block_offset (self, last) + block_len (self, last) - 1);
  soup_message_headers_replace (soup_message_get_request_headers (r->msg), "Range", range);
  soup_message_headers_replace (soup_message_get_request_headers (r->msg),
                                "Accept-Encoding", "identity");
  if (peer != NULL)
    add_listen_port (self, r->msg);
  for (guint64 i = first; i <= last; i++)
    {
      self->pending[i]++;
      update_taken (self, (guint) i);
    }
  if (peer != NULL)
    peer->inflight++;
  else
    {
      self->origin_inflight++;
      self->stats.origin_requests++;
    }
  g_ptr_array_add (self->requests, r);
  g_debug ("[%u] %.8s %s: blocks %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT " (%s)",
           self->peer_port, self->urn + strlen (ALV_URN_PREFIX),
           peer != NULL ? peer->key : "origin", first, last, why);
  soup_session_send_async (self->session, r->msg, G_PRIORITY_DEFAULT, r->cancellable,
                           send_cb, r);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* availability polls (HEAD)                                           */

typedef struct
{
  AlvSwarm *swarm;
  char *key;
  SoupMessage *msg;
} Poll;

static void
poll_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Poll *poll = user_data;
  AlvSwarm *self = poll->swarm;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  Peer *p;

  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  p = g_hash_table_lookup (self->peers, poll->key);
  if (p != NULL)
    {
      guint status = soup_message_get_status (poll->msg);
      SoupMessageHeaders *headers = soup_message_get_response_headers (poll->msg);

      p->polling = FALSE;
      if (stream == NULL)
        {
          if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            peer_fail (p, 0);
        }
      else if (!check_urn_header (self, headers))
        peer_fail (p, 10 * G_USEC_PER_SEC);
      else if (status == SOUP_STATUS_OK || status == SOUP_STATUS_SERVICE_UNAVAILABLE)
        peer_read_headers (self, p, headers, status == SOUP_STATUS_OK ? ABSENT_ALL : ABSENT_NONE);
      else if (status == SOUP_STATUS_NOT_FOUND)
        peer_set_avail (self, p, alv_block_map_new (self->n_blocks));
      else
        peer_fail (p, 0);
    }
  if (stream != NULL)
    g_input_stream_close (stream, NULL, NULL);
  kick (self);
  g_object_unref (poll->msg);
  g_free (poll->key);
  g_object_unref (poll->swarm);
  g_free (poll);
}

static void
poll_peer (AlvSwarm *self,
           Peer     *p)
{
  g_autofree char *path = alv_n2r_path (self->urn);
  g_autofree char *uri = g_strconcat (p->base, path, NULL);
  Poll *poll;
  SoupMessage *msg = soup_message_new (SOUP_METHOD_HEAD, uri);

  if (msg == NULL)
    {
      p->banned = TRUE;
      return;
    }
  add_listen_port (self, msg);
  poll = g_new0 (Poll, 1);
  poll->swarm = g_object_ref (self);
  poll->key = g_strdup (p->key);
  poll->msg = msg;
  p->polling = TRUE;
  soup_session_send_async (self->session, msg, G_PRIORITY_DEFAULT, self->cancellable,
                           poll_cb, poll);
}

/* ------------------------------------------------------------------ */
/* the scheduler                                                       */

static gboolean
origin_usable (AlvSwarm *self,
               gint64    now)
{
  return !self->origin_broken && self->origin_url != NULL &&
         now >= self->origin_backoff_until && self->origin_inflight < ORIGIN_MAX_REQUESTS;
}

static guint
n_usable_peers (AlvSwarm *self)
{
  GHashTableIter iter;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (!((Peer *) value)->banned)
      n++;
  return n;
}

/* Origin ownership (doc/swarm.md): every segment of the item has one
 * owner among the listeners this one knows, itself included, by
 * rendezvous hashing of (URN, segment, ip:port).  Listeners who know the
 * same peers agree on the owner without a word, so each segment nobody
 * holds is pulled from the origin by one of them and spreads from there. */
static guint64
rendezvous (const char *urn,
            guint       segment,
            const char *key)
{
  guint64 h = G_GUINT64_CONSTANT (14695981039346656037);

  for (const char *c = urn; *c != '\0'; c++)
    h = (h ^ (guint8) *c) * G_GUINT64_CONSTANT (1099511628211);
  for (guint k = 0; k < 4; k++)
    h = (h ^ ((segment >> (8 * k)) & 0xff)) * G_GUINT64_CONSTANT (1099511628211);
  for (const char *c = key; *c != '\0'; c++)
    h = (h ^ (guint8) *c) * G_GUINT64_CONSTANT (1099511628211);
  /* finalizer (splitmix64) so that close keys spread */
  h ^= h >> 30;
  h *= G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  h ^= h >> 27;
  h *= G_GUINT64_CONSTANT (0x94d049bb133111eb);
  h ^= h >> 31;
  return h;
}

static guint
segment_of (AlvSwarm *self,
            guint     i)
{
  return i / MAX (SEGMENT_BYTES / self->block_size, 1u);
}

/* This listener's place in the line of owners of @segment: 0 is the
 * owner, 1 the first stand-in, and so on. */
static guint
owner_rank (AlvSwarm *self,
            guint     segment)
{
  GHashTableIter iter;
  gpointer value;
  const char *me;
  guint64 mine;
  guint rank = 0;

  /* not announced: nobody counts on this listener, nor it on anybody */
  if (self->gateway == NULL || self->peer_port == 0)
    return 0;
  me = self->self_key != NULL ? self->self_key : "";
  mine = rendezvous (self->urn, segment, me);
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *p = value;
      guint64 theirs;

      if (p->banned || p->failures >= OWNER_MAX_FAILURES)
        continue;
      theirs = rendezvous (self->urn, segment, p->key);
      if (theirs < mine || (theirs == mine && strcmp (p->key, me) < 0))
        rank++;
    }
  return rank;
}

static gboolean
owns_segment (AlvSwarm *self,
              guint     segment)
{
  return owner_rank (self, segment) == 0;
}

/* Whether what the known peers hold is known (or it is too late to wait
 * for that): a swarm that just started has asked but not heard yet. */
static gboolean
peers_heard (AlvSwarm *self,
             gint64    now)
{
  GHashTableIter iter;
  gpointer value;

  if (now - MAX (self->start_time, self->active_since) >= INFO_MAX_WAIT_US / 2)
    return TRUE;
  if (self->tree == NULL && self->gateway != NULL && g_hash_table_size (self->peers) > 0)
    return FALSE;
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *p = value;

      if (!p->banned && p->avail == NULL && now >= p->backoff_until)
        return FALSE;
    }
  return TRUE;
}

/* The first block worth fetching without a deadline. */
static guint
first_needed (AlvSwarm *self)
{
  return MIN (self->needed_from, self->n_blocks);
}

/* A run for the origin from @first: consecutive blocks we lack that
 * nobody asked for, up to the run size; with @unheld_only only blocks no
 * peer is known to hold. */
static guint64
origin_run_end (AlvSwarm *self,
                guint64   first,
                gboolean  unheld_only,
                gint64    latest_deadline)
{
  guint64 max_bytes = n_usable_peers (self) > 0 ? ORIGIN_SHARED_RUN_BYTES : ORIGIN_MAX_RUN_BYTES;
  guint64 max_blocks = MAX (max_bytes / self->block_size, 1);
  guint64 last = first;

  if (self->origin_ignores_range)
    max_blocks = G_MAXUINT64;
  while (last + 1 < self->n_blocks && last + 1 - first < max_blocks &&
         !alv_block_map_get (self->taken, (guint) last + 1) &&
         (!unheld_only || (self->availability[last + 1] == 0 && self->fetching[last + 1] == 0)) &&
         (latest_deadline == ALV_SWARM_NO_DEADLINE ||
          block_deadline (self, (guint) last + 1) <= latest_deadline))
    last++;
  return last;
}

/* The peer expected to deliver block @i soonest, if it can by @deadline
 * (a late block goes to the soonest regardless). */
static Peer *
best_peer_for (AlvSwarm *self,
               guint     i,
               gint64    deadline,
               gint64    now,
               Peer     *except,
               gint64   *eta_out)
{
  GHashTableIter iter;
  gpointer value;
  Peer *best = NULL;
  gint64 best_eta = G_MAXINT64;

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *p = value;
      double rate;
      gint64 eta;

      if (p == except || !peer_usable (self, p, now) || !alv_block_map_get (p->avail, i) ||
          p->inflight >= peer_depth (self, p))
        continue;
      rate = p->rate > 0 ? p->rate : PEER_ASSUMED_RATE;
      eta = now + (gint64) ((p->inflight + 1) * (double) self->block_size / rate * G_USEC_PER_SEC);
      if (eta < best_eta)
        {
          best = p;
          best_eta = eta;
        }
    }
  if (eta_out != NULL)
    *eta_out = best_eta;
  if (best != NULL && deadline > now && best_eta > deadline)
    return NULL;
  return best;
}

/* When block @i of @r should be complete, at the source's measured rate
 * (the assumed one until it is measured). */
static gint64
request_eta (AlvSwarm *self,
             Request  *r,
             guint     i)
{
  double rate = r->peer != NULL ? (r->peer->rate > 0 ? r->peer->rate : PEER_ASSUMED_RATE)
                                : (self->origin_rate > 0 ? self->origin_rate : ORIGIN_ASSUMED_RATE);

  return r->started + (gint64) ((i - r->first + 1) * (double) self->block_size / rate *
                                G_USEC_PER_SEC);
}

static Request *
request_for_block (AlvSwarm *self,
                   guint     i)
{
  for (guint k = 0; k < self->requests->len; k++)
    {
      Request *r = self->requests->pdata[k];

      if (!r->ended && r->next <= i && i <= r->last)
        return r;
    }
  return NULL;
}

/* Urgent window: deadline first, to the fastest source that has it. */
static void
schedule_urgent (AlvSwarm *self,
                 gint64    now)
{
  guint start = 0;
  guint scanned = 0;

  if (self->deadline_func == NULL)
    {
      if (self->playhead_rate == 0)
        return;
      start = (guint) MIN (self->playhead / self->block_size, (guint64) self->n_blocks);
    }
  for (guint i = start; i < self->n_blocks && scanned < URGENT_SCAN_MAX; i++)
    {
      gint64 d, fetch;
      Peer *peer;

      if (alv_block_map_get (self->have, i) || self->writing[i])
        continue;
      scanned++;
      d = block_deadline (self, i);
      if (d == ALV_SWARM_NO_DEADLINE)
        continue;
      if (d - now > self->urgent_window)
        {
          if (self->deadline_func == NULL)
            break;  /* monotone in i */
          continue;
        }
      if (n_requests (self) >= MAX_REQUESTS)
        return;

      if (self->pending[i] > 0)
        {
          /* endgame: duplicate a block that is late to arrive */
          Request *r = request_for_block (self, i);
          gint64 expected;

          if (self->pending[i] >= 2 || r == NULL || d - now > ENDGAME_MARGIN_US)
            continue;
          expected = request_eta (self, r, i);
          if (expected <= d && now - r->last_progress < G_USEC_PER_SEC / 2)
            continue;
          peer = best_peer_for (self, i, ALV_SWARM_NO_DEADLINE, now, r->peer, NULL);
          if (peer != NULL)
            start_request (self, peer, i, i, "endgame");
          else if (r->peer != NULL && now - d >= HELD_GRACE_US && origin_usable (self, now))
            start_request (self, NULL, i, i, "endgame");
          continue;
        }

      peer = best_peer_for (self, i, d, now, NULL, NULL);
      if (peer != NULL)
        {
          start_request (self, peer, i, i, "urgent");
          continue;
        }
      fetch = (gint64) ((double) block_len (self, i) /
                        (self->origin_rate > 0 ? self->origin_rate : ORIGIN_ASSUMED_RATE) *
                        G_USEC_PER_SEC);
      if (!origin_usable (self, now))
        {
          /* no origin now: a peer that holds it, late or not */
          peer = best_peer_for (self, i, ALV_SWARM_NO_DEADLINE, now, NULL, NULL);
          if (peer != NULL)
            start_request (self, peer, i, i, "urgent, late");
          continue;
        }
      if (self->availability[i] > 0)
        {
          /* held, but no peer makes the deadline (or every holder is
           * busy): a late peer when it is due; the origin only once the
           * block is HELD_GRACE_US late, for a holder may free up, and an
           * origin pulled by every listener whose peers are busy would be
           * slow for all of them, the leader's runs included */
          Peer *any = best_peer_for (self, i, ALV_SWARM_NO_DEADLINE, now, NULL, NULL);

          if (any != NULL && d <= now)
            start_request (self, any, i, i, "urgent, late");
          else if (now - d >= HELD_GRACE_US)
            start_request (self, NULL, i, origin_run_end (self, i, FALSE, d + ORIGIN_MARGIN_US),
                           "peers too slow");
        }
      else
        {
          /* nobody holds it: its owner pulls it at once; the others in
           * the order of owner_rank(), one every RANK_STEP_US, the last
           * ones at the deadline, in case those before them did not */
          guint rank = owner_rank (self, segment_of (self, i));
          gint64 my_call = MAX (self->urgent_window - (gint64) rank * RANK_STEP_US, 0);

          /* a peer is fetching it from the origin: wait for that, even a
           * little late (a block pulled by everybody at once is late for
           * everybody, and so is all that follows it) */
          if (self->fetching[i] > 0 && now - d < LATE_GRACE_US)
            continue;
          /* just started: "nobody holds it" may only mean we have not
           * heard from the peers yet (at most a second: their answers to
           * the first polls), even for what is due now, or every listener
           * tuning in would pull its start from the origin */
          if (!peers_heard (self, now))
            continue;
          if (rank > 0 && d - now > my_call)
            continue;
          /* the owner: a run of at least a margin's worth, never block by
           * block; a stand-in: only what is due before the owner's could
           * still come */
          start_request (self, NULL, i,
                         origin_run_end (self, i, TRUE, MAX (now, d) + ORIGIN_MARGIN_US +
                                                        (rank == 0 ? fetch : 0)),
                         rank == 0 ? "urgent, owner" : "urgent, stand-in");
        }
    }
}

/* Beyond the window: rarest first among peers. */
static void
schedule_rarest (AlvSwarm *self,
                 gint64    now)
{
  g_autoptr(GPtrArray) order = g_ptr_array_new ();
  GHashTableIter iter;
  gpointer value;

  if (self->tree == NULL)
    return;
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (peer_usable (self, value, now))
      g_ptr_array_add (order, value);
  /* a random order spreads the load over the holders */
  for (guint k = order->len; k > 1; k--)
    {
      guint j = g_rand_int_range (self->rand, 0, (gint32) k);
      gpointer tmp = order->pdata[k - 1];

      order->pdata[k - 1] = order->pdata[j];
      order->pdata[j] = tmp;
    }
  for (guint k = 0; k < order->len; k++)
    {
      Peer *p = order->pdata[k];

      while (p->inflight < peer_depth (self, p) && n_requests (self) < MAX_REQUESTS)
        {
          guint idx;

          if (alv_block_map_pick_rarest (self->taken, self->availability, p->avail,
                                         first_needed (self), self->n_blocks, self->rand, &idx))
            {
              if (!start_request (self, p, idx, idx, "rarest"))
                break;
              continue;
            }
          if (!taken_from (self, first_needed (self)))
            break;
          /* endgame: everything we lack is asked for; duplicate one this
           * peer has that is asked only once */
          {
            gboolean found = FALSE;

            for (guint i = first_needed (self); i < self->n_blocks; i++)
              if (!alv_block_map_get (self->have, i) && !self->writing[i] &&
                  self->pending[i] == 1 && alv_block_map_get (p->avail, i))
                {
                  Request *r = request_for_block (self, i);

                  /* only a request that is late by its source's own rate */
                  if (r != NULL && r->peer != p &&
                      now - r->started > G_USEC_PER_SEC && now > request_eta (self, r, i) + G_USEC_PER_SEC)
                    {
                      start_request (self, p, i, i, "bulk endgame");
                      found = TRUE;
                      break;
                    }
                }
            if (!found)
              break;
          }
        }
    }
}

/* One past the last block @p holds or is pulling from the origin. */
static guint
peer_reach (AlvSwarm *self,
            Peer     *p)
{
  for (guint i = self->n_blocks; i > 0; i--)
    if ((p->avail != NULL && alv_block_map_get (p->avail, i - 1)) ||
        (p->fetching != NULL && alv_block_map_get (p->fetching, i - 1)))
      return i;
  return 0;
}

/* One past the last block this listener holds or has asked for. */
static guint
own_reach (AlvSwarm *self)
{
  for (guint i = self->n_blocks; i > 0; i--)
    if (alv_block_map_get (self->taken, i - 1))
      return i;
  return 0;
}

/* Whether this listener leads the swarm through the item: no peer heard
 * from lately reaches further into it (ties: the lowest ip:port). */
static gboolean
leads (AlvSwarm *self,
       gint64    now)
{
  GHashTableIter iter;
  gpointer value;
  guint mine = own_reach (self);
  const char *me = self->self_key != NULL ? self->self_key : "";

  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *p = value;
      guint theirs;

      /* a peer not heard from lately (gone, or failing) leads nobody */
      if (p->banned || p->failures > 0 || p->avail == NULL || now - p->avail_time > LEAD_STALE_US)
        continue;
      theirs = peer_reach (self, p);
      /* a peer holding nothing may not be pulling at all (its swarm
       * waits for its turn): the first to start leads */
      if (theirs == 0)
        continue;
      if (theirs > mine || (theirs == mine && strcmp (p->key, me) < 0))
        return FALSE;
    }
  return TRUE;
}

/* Ahead of the window: blocks nobody holds are pulled from the origin in
 * stream order by one listener for the whole swarm, the leader (the one
 * that reaches furthest into the item), a run at a time, up to
 * FILL_HORIZON_US ahead; the others copy from it (rarest first).  Nobody
 * else pulls while a peer reports it is pulling from the origin beyond
 * the first block nobody has (X-Pending-Ranges): the origin sends one run
 * at a time, at its full rate, earliest first.  When the leader leaves,
 * the next one by reach takes over once it is no longer heard from. */
static void
schedule_origin_fill (AlvSwarm *self,
                      gint64    now)
{
  GHashTableIter iter;
  gpointer value;
  guint first = G_MAXUINT;
  guint64 last;
  gint64 d;

  /* one such request at a time, beside what is urgent */
  if (self->origin_broken || self->origin_url == NULL ||
      now < self->origin_backoff_until || self->fill_inflight > 0 || n_requests (self) >= MAX_REQUESTS)
    return;
  /* first learn who else is in the swarm and what they hold */
  if (self->gateway != NULL && self->peer_port != 0 &&
      ((!self->first_announce_done &&
        now - MAX (self->start_time, self->active_since) < INFO_MAX_WAIT_US) ||
       !peers_heard (self, now)))
    return;
  for (guint i = first_needed (self); i < self->n_blocks && first == G_MAXUINT; i++)
    if (!alv_block_map_get (self->taken, i) && self->availability[i] == 0 && self->fetching[i] == 0)
      first = i;
  if (first == G_MAXUINT)
    return;
  d = block_deadline (self, first);
  if (d != ALV_SWARM_NO_DEADLINE && d - now > FILL_HORIZON_US)
    return;     /* far enough ahead */
  /* somebody is pulling ahead already */
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *p = value;

      if (!p->banned && p->fetching != NULL && now - p->avail_time <= LEAD_STALE_US &&
          alv_block_map_first_set_after (p->fetching, first + 1) < self->n_blocks)
        return;
    }
  if (!leads (self, now))
    return;
  last = origin_run_end (self, first, TRUE, ALV_SWARM_NO_DEADLINE);
  /* alone, the run is as long as origin_run_end() allows; in a swarm a
   * fill run at a time, so the others see it arrive and the lead may pass */
  if (n_usable_peers (self) > 0)
    last = MIN (last, first + MAX (FILL_RUN_BYTES / self->block_size, 1u) - 1);
  if (start_request (self, NULL, first, last, "leader"))
    {
      Request *r = self->requests->pdata[self->requests->len - 1];

      r->fill = TRUE;
      self->fill_inflight++;
    }
}

/* Whether every block from @from on is held or asked for. */
static gboolean
taken_from (AlvSwarm *self,
            guint     from)
{
  for (guint i = from; i < self->n_blocks; i++)
    if (!alv_block_map_get (self->taken, i))
      return FALSE;
  return TRUE;
}

/* Whether @p is fetching from the origin a block we lack and need. */
static gboolean
fetching_what_we_lack (AlvSwarm *self,
                       Peer     *p)
{
  for (guint i = first_needed (self); i < self->n_blocks; i++)
    if (alv_block_map_get (p->fetching, i) && !alv_block_map_get (self->have, i))
      return TRUE;
  return FALSE;
}

static void
schedule_polls (AlvSwarm *self,
                gint64    now)
{
  GHashTableIter iter;
  gpointer value;

  /* nothing left to fetch: what the others hold does not matter */
  if (alv_swarm_has_needed (self))
    return;
  g_hash_table_iter_init (&iter, self->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *p = value;

      if (p->banned || p->polling || now < p->backoff_until ||
          (p->avail != NULL && alv_block_map_is_complete (p->avail)))
        continue;
      if ((p->inflight == 0 && now - p->avail_time >= POLL_INTERVAL_US) ||
          (p->fetching != NULL && now - p->avail_time >= POLL_INTERVAL_US / 4 &&
           fetching_what_we_lack (self, p)))
        poll_peer (self, p);
    }
}

static void
check_stalls (AlvSwarm *self,
              gint64    now)
{
  for (guint k = 0; k < self->requests->len; k++)
    {
      Request *r = self->requests->pdata[k];
      gint64 limit = r->peer != NULL ? PEER_STALL_US : ORIGIN_STALL_US;

      /* a request waiting on its own write is not stalled */
      if (!r->ended && now - r->last_progress > limit &&
          (r->next > r->last || !self->writing[r->next]))
        {
          g_debug ("%s: stalled, giving up", r->peer ? r->peer->key : "origin");
          g_cancellable_cancel (r->cancellable);
          if (r->peer != NULL)
            peer_fail (r->peer, 0);
          else
            self->origin_backoff_until = now + 2 * G_USEC_PER_SEC;
        }
    }
}

static void
schedule (AlvSwarm *self)
{
  gint64 now = g_get_monotonic_time ();

  if (!self->running || self->completed)
    return;
  check_stalls (self, now);
  /* inactive: no requests, but what the peers hold and pull is kept
   * known, so that once active this swarm follows the leader */
  if (!self->active)
    {
      schedule_polls (self, now);
      return;
    }
  schedule_urgent (self, now);
  schedule_rarest (self, now);
  schedule_origin_fill (self, now);
  schedule_polls (self, now);
}

static gboolean
tick_cb (gpointer user_data)
{
  schedule (user_data);
  return G_SOURCE_CONTINUE;
}

static gboolean
idle_cb (gpointer user_data)
{
  AlvSwarm *self = user_data;

  self->idle_id = 0;
  schedule (self);
  return G_SOURCE_REMOVE;
}

static void
kick (AlvSwarm *self)
{
  if (self->running && self->idle_id == 0)
    self->idle_id = g_idle_add (idle_cb, self);
}

/* ------------------------------------------------------------------ */
/* tree and announces                                                  */

static void
refresh_have (AlvSwarm *self)
{
  g_autoptr(AlvBlockMap) map = alv_block_store_get_block_map (self->store, self->urn);

  for (guint i = 0; i < self->n_blocks; i++)
    {
      gboolean held = map != NULL && alv_block_map_get (map, i);

      if (held)
        alv_block_map_set (self->have, i);
      else
        alv_block_map_clear (self->have, i);
      update_taken (self, i);
    }
}

static void
set_tree_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(AlvSwarm) self = user_data;
  g_autoptr(GError) error = NULL;

  self->tree_pending = FALSE;
  if (!alv_block_store_set_tree_finish (ALV_BLOCK_STORE (source), result, &error))
    {
      /* cancelled: the swarm was stopped meanwhile */
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("cannot store the tree of %s: %s", self->urn, error->message);
      return;
    }
  self->tree = alv_block_store_get_tree (self->store, self->urn);
  refresh_have (self);
  g_signal_emit (self, signals[SIGNAL_TREE_READY], 0);
  emit_progress (self);
  if (self->running && self->gateway != NULL && self->peer_port != 0)
    schedule_announce (self, 0);
  check_complete (self);
  kick (self);
}

void
alv_swarm_set_tree (AlvSwarm    *swarm,
                    AlvHashTree *tree)
{
  g_autofree char *urn = NULL;

  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_return_if_fail (tree != NULL);

  if (swarm->tree != NULL || swarm->tree_pending)
    return;
  urn = alv_hash_tree_get_urn (tree);
  if (g_strcmp0 (urn, swarm->urn) != 0)
    {
      g_warning ("a tree for %s is not the tree of %s", urn, swarm->urn);
      return;
    }
  swarm->tree_pending = TRUE;
  alv_block_store_set_tree_async (swarm->store, swarm->urn, tree, swarm->cancellable,
                                  set_tree_cb, g_object_ref (swarm));
}

gboolean
alv_swarm_has_tree (AlvSwarm *swarm)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), FALSE);
  return swarm->tree != NULL;
}

static void
fetch_tree_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(AlvSwarm) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvHashTree) tree = NULL;

  tree = alv_gateway_client_fetch_tree_finish (ALV_GATEWAY_CLIENT (source), result, &error);
  if (tree == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_message ("cannot fetch the tree of %s: %s", self->urn, error->message);
      return;
    }
  alv_swarm_set_tree (self, tree);
}

static void
announce_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(AlvSwarm) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  guint interval = 0;
  g_autofree char *observed = NULL;
  guint next;

  self->announcing = FALSE;
  self->first_announce_done = TRUE;
  peers = alv_gateway_client_announce_finish (ALV_GATEWAY_CLIENT (source), result,
                                              &interval, &observed, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || !self->running)
    return;
  if (peers == NULL)
    g_debug ("announcing %s: %s", self->urn, error->message);
  if (observed != NULL && g_strcmp0 (observed, self->self_key) != 0)
    {
      g_free (self->self_key);
      self->self_key = g_steal_pointer (&observed);
    }
  for (guint i = 0; peers != NULL && i < peers->len; i++)
    alv_swarm_add_peer (self, peers->pdata[i]);
  {
    guint owned = 0, n_seg = segment_of (self, self->n_blocks - 1) + 1;

    for (guint k = 0; k < n_seg; k++)
      owned += owns_segment (self, k);
    g_debug ("[%u] %.8s announced as %s: %u peers known, owns %u of %u segments",
             self->peer_port, self->urn + strlen (ALV_URN_PREFIX),
             self->self_key ? self->self_key : "?", g_hash_table_size (self->peers), owned, n_seg);
  }
  kick (self);

  next = interval > 0 ? interval : ANNOUNCE_DEFAULT_S;
  /* few peers known and still downloading: ask again soon, backing off,
   * so listeners who started together find each other */
  if (!self->completed && n_usable_peers (self) < ANNOUNCE_FEW_PEERS)
    {
      next = MIN (next, self->announce_quick);
      self->announce_quick = MIN (self->announce_quick * 2, ANNOUNCE_QUICK_MAX_S);
    }
  if (self->announce_id == 0)
    schedule_announce (self, next);
}

static gboolean
announce_timeout_cb (gpointer user_data)
{
  AlvSwarm *self = user_data;
  g_autoptr(AlvRangeSet) held = NULL;
  AlvAnnounceEvent event;

  self->announce_id = 0;
  if (!self->running || self->gateway == NULL || self->peer_port == 0)
    return G_SOURCE_REMOVE;
  if (self->announcing)
    {
      schedule_announce (self, 1);
      return G_SOURCE_REMOVE;
    }
  if (self->completed && self->tree != NULL && !self->announced_completed)
    {
      event = ALV_ANNOUNCE_COMPLETED;
      self->announced_completed = TRUE;
    }
  else if (self->announce_quick == 0)
    {
      event = ALV_ANNOUNCE_STARTED;
      self->announce_quick = ANNOUNCE_QUICK_MIN_S;
    }
  else
    event = ALV_ANNOUNCE_UPDATE;
  /* only what the peer port serves: verified blocks, so with the tree */
  if (self->tree != NULL)
    held = alv_block_map_to_range_set (self->have, self->block_size, self->length);
  self->announcing = TRUE;
  alv_gateway_client_announce_async (self->gateway, self->urn, self->peer_port, event, held,
                                     32, self->cancellable, announce_cb, g_object_ref (self));
  return G_SOURCE_REMOVE;
}

static void
schedule_announce (AlvSwarm *self,
                   guint     seconds)
{
  g_clear_handle_id (&self->announce_id, g_source_remove);
  if (seconds == 0)
    self->announce_id = g_idle_add (announce_timeout_cb, self);
  else
    self->announce_id = g_timeout_add_seconds (seconds, announce_timeout_cb, self);
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
alv_swarm_dispose (GObject *object)
{
  AlvSwarm *self = ALV_SWARM (object);

  alv_swarm_stop (self);
  g_clear_object (&self->gateway);
  G_OBJECT_CLASS (alv_swarm_parent_class)->dispose (object);
}

static void
alv_swarm_finalize (GObject *object)
{
  AlvSwarm *self = ALV_SWARM (object);

  if (self->deadline_destroy != NULL)
    self->deadline_destroy (self->deadline_data);
  g_clear_object (&self->store);
  g_clear_object (&self->session);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->tree, alv_hash_tree_unref);
  g_clear_pointer (&self->have, alv_block_map_free);
  g_clear_pointer (&self->self_key, g_free);
  g_clear_pointer (&self->taken, alv_block_map_free);
  g_clear_pointer (&self->peers, g_hash_table_unref);
  g_clear_pointer (&self->requests, g_ptr_array_unref);
  g_clear_pointer (&self->rand, g_rand_free);
  g_free (self->pending);
  g_free (self->writing);
  g_free (self->availability);
  g_free (self->fetching);
  g_free (self->urn);
  g_free (self->origin_url);
  g_free (self->thex_uri);
  G_OBJECT_CLASS (alv_swarm_parent_class)->finalize (object);
}

static void
alv_swarm_class_init (AlvSwarmClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = alv_swarm_dispose;
  object_class->finalize = alv_swarm_finalize;

  signals[SIGNAL_BLOCK_READY] =
    g_signal_new ("block-ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT64, G_TYPE_UINT64);
  signals[SIGNAL_PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_COMPLETE] =
    g_signal_new ("complete", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
  signals[SIGNAL_TREE_READY] =
    g_signal_new ("tree-ready", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
alv_swarm_init (AlvSwarm *self)
{
  self->peers = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) peer_free);
  self->requests = g_ptr_array_new ();
  self->rand = g_rand_new ();
  self->active = TRUE;
  self->urgent_window = DEFAULT_URGENT_WINDOW_MS * (gint64) 1000;
  self->cancellable = g_cancellable_new ();
}

AlvSwarm *
alv_swarm_new (AlvBlockStore  *store,
               const char     *urn,
               const char     *origin_url,
               guint64         length,
               guint           block_size,
               AlvHashTree    *tree,
               GError        **error)
{
  g_autoptr(AlvSwarm) self = NULL;
  g_autofree char *norm = NULL;
  guint64 n_blocks;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);
  g_return_val_if_fail (urn != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  norm = alv_content_urn_normalize (urn, error);
  if (norm == NULL)
    return NULL;
  if (!alv_hash_tree_block_size_is_valid (block_size) || length == 0 ||
      length > ALV_HASH_TREE_MAX_LENGTH)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Cannot swarm %" PRIu64 " bytes in blocks of %u"),
                   length, block_size);
      return NULL;
    }
  n_blocks = alv_block_count_for_length (length, block_size);
  if (n_blocks > ALV_HASH_TREE_MAX_BLOCKS)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("Too many blocks: %" PRIu64), n_blocks);
      return NULL;
    }
  if (!alv_block_store_open_entry (store, norm, length, block_size, error))
    return NULL;

  self = g_object_new (ALV_TYPE_SWARM, NULL);
  self->store = g_object_ref (store);
  self->urn = g_steal_pointer (&norm);
  self->origin_url = g_strdup (origin_url);
  self->length = length;
  self->block_size = block_size;
  self->n_blocks = (guint) n_blocks;
  self->have = alv_block_map_new (self->n_blocks);
  self->taken = alv_block_map_new (self->n_blocks);
  self->pending = g_new0 (guint8, self->n_blocks);
  self->writing = g_new0 (guint8, self->n_blocks);
  self->availability = g_new0 (guint, self->n_blocks);
  self->fetching = g_new0 (guint, self->n_blocks);

  self->session = soup_session_new_with_options ("max-conns", 64,
                                                 "max-conns-per-host", PEER_MAX_DEPTH,
                                                 "timeout", 20,
                                                 NULL);
  self->stats.n_blocks = self->n_blocks;
  refresh_have (self);
  if (alv_block_store_has_tree (store, self->urn))
    self->tree = alv_block_store_get_tree (store, self->urn);
  else if (tree != NULL)
    alv_swarm_set_tree (self, tree);
  self->completed = alv_block_map_is_complete (self->have) && self->n_blocks > 0;
  return g_steal_pointer (&self);
}

AlvSwarm *
alv_swarm_new_for_resolution (AlvBlockStore               *store,
                              const AlvGatewayResolution  *res,
                              GError                     **error)
{
  AlvSwarm *self;

  g_return_val_if_fail (res != NULL, NULL);

  self = alv_swarm_new (store, res->urn, res->url, res->length, res->block_size, NULL, error);
  if (self == NULL)
    return NULL;
  g_free (self->thex_uri);
  self->thex_uri = g_strdup (res->thex_uri);
  for (guint i = 0; res->peers != NULL && i < res->peers->len; i++)
    alv_swarm_add_peer (self, res->peers->pdata[i]);
  return self;
}

void
alv_swarm_set_gateway (AlvSwarm         *swarm,
                       AlvGatewayClient *gateway,
                       const char       *thex_uri,
                       guint16           peer_port)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_return_if_fail (gateway == NULL || ALV_IS_GATEWAY_CLIENT (gateway));

  g_set_object (&swarm->gateway, gateway);
  if (thex_uri != NULL)
    {
      g_free (swarm->thex_uri);
      swarm->thex_uri = g_strdup (thex_uri);
    }
  swarm->peer_port = peer_port;
}

void
alv_swarm_add_peer (AlvSwarm           *swarm,
                    GInetSocketAddress *address)
{
  GInetAddress *ip;
  g_autofree char *key = NULL;
  Peer *p;

  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_return_if_fail (G_IS_INET_SOCKET_ADDRESS (address));

  ip = g_inet_socket_address_get_address (address);
  if (g_inet_socket_address_get_port (address) == 0 || g_inet_address_get_is_any (ip) ||
      g_inet_address_get_is_multicast (ip))
    return;
  /* ourselves, as gossip or a gateway may name us */
  if (swarm->peer_port != 0 && g_inet_socket_address_get_port (address) == swarm->peer_port &&
      g_inet_address_get_is_loopback (ip))
    return;
  key = alv_alt_format_address (address);
  if (key == NULL || g_hash_table_contains (swarm->peers, key) ||
      g_hash_table_size (swarm->peers) >= MAX_PEERS)
    return;
  p = g_new0 (Peer, 1);
  p->key = g_steal_pointer (&key);
  p->base = g_strconcat ("http://", p->key, NULL);
  p->address = g_object_ref (address);
  g_hash_table_insert (swarm->peers, p->key, p);
  kick (swarm);
}

GPtrArray *
alv_swarm_get_peers (AlvSwarm *swarm)
{
  GPtrArray *out;
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (ALV_IS_SWARM (swarm), NULL);

  out = g_ptr_array_new_with_free_func (g_object_unref);
  g_hash_table_iter_init (&iter, swarm->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (!((Peer *) value)->banned)
      g_ptr_array_add (out, g_object_ref (((Peer *) value)->address));
  return out;
}

void
alv_swarm_set_active (AlvSwarm *swarm,
                      gboolean  active)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  if (active && !swarm->active && swarm->running)
    {
      /* the swarm moved on while this one waited: learn it afresh (who
       * is there, who leads) before pulling anything from the origin */
      swarm->active_since = g_get_monotonic_time ();
      swarm->first_announce_done = FALSE;
      if (swarm->gateway != NULL && swarm->peer_port != 0 && swarm->tree != NULL)
        schedule_announce (swarm, 0);
    }
  swarm->active = active;
  kick (swarm);
}

void
alv_swarm_set_playhead (AlvSwarm *swarm,
                        guint64   offset,
                        guint64   bytes_per_second)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  swarm->playhead = MIN (offset, swarm->length);
  swarm->playhead_rate = bytes_per_second;
  if (bytes_per_second > 0)
    swarm->needed_from = (guint) MIN (swarm->playhead / swarm->block_size, (guint64) swarm->n_blocks);
  swarm->playhead_time = g_get_monotonic_time ();
  kick (swarm);
}

void
alv_swarm_set_needed_from (AlvSwarm *swarm,
                           guint64   offset)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  swarm->needed_from = (guint) MIN (offset / swarm->block_size, (guint64) swarm->n_blocks);
  kick (swarm);
}

AlvRangeSet *
alv_swarm_get_origin_pending (AlvSwarm *swarm)
{
  g_autoptr(AlvBlockMap) map = NULL;
  gboolean any = FALSE;

  g_return_val_if_fail (ALV_IS_SWARM (swarm), NULL);
  map = alv_block_map_new (swarm->n_blocks);
  for (guint k = 0; k < swarm->requests->len; k++)
    {
      Request *r = swarm->requests->pdata[k];

      if (r->peer != NULL || r->ended)
        continue;
      for (guint64 i = r->next; i <= r->last; i++)
        {
          alv_block_map_set (map, (guint) i);
          any = TRUE;
        }
    }
  return any ? alv_block_map_to_range_set (map, swarm->block_size, swarm->length) : NULL;
}

gboolean
alv_swarm_has_needed (AlvSwarm *swarm)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), FALSE);
  for (guint i = first_needed (swarm); i < swarm->n_blocks; i++)
    if (!alv_block_map_get (swarm->have, i))
      return FALSE;
  return TRUE;
}

void
alv_swarm_set_deadline_func (AlvSwarm             *swarm,
                             AlvSwarmDeadlineFunc  func,
                             gpointer              user_data,
                             GDestroyNotify        destroy)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  if (swarm->deadline_destroy != NULL)
    swarm->deadline_destroy (swarm->deadline_data);
  swarm->deadline_func = func;
  swarm->deadline_data = user_data;
  swarm->deadline_destroy = destroy;
  kick (swarm);
}

void
alv_swarm_set_urgent_window (AlvSwarm *swarm,
                             guint     milliseconds)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  swarm->urgent_window = MAX (milliseconds, 2 * ORIGIN_MARGIN_US / 1000) * (gint64) 1000;
}

void
alv_swarm_set_seed (AlvSwarm *swarm,
                    guint32   seed)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_rand_set_seed (swarm->rand, seed);
}

void
alv_swarm_start (AlvSwarm *swarm)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));

  if (swarm->running)
    return;
  if (g_cancellable_is_cancelled (swarm->cancellable))
    {
      g_object_unref (swarm->cancellable);
      swarm->cancellable = g_cancellable_new ();
    }
  swarm->running = TRUE;
  swarm->start_time = g_get_monotonic_time ();
  swarm->tick_id = g_timeout_add (TICK_MS, tick_cb, swarm);
  if (swarm->tree == NULL && !swarm->tree_pending && swarm->gateway != NULL &&
      swarm->thex_uri != NULL)
    alv_gateway_client_fetch_tree_async (swarm->gateway, swarm->thex_uri, swarm->urn,
                                         swarm->length, swarm->block_size, swarm->cancellable,
                                         fetch_tree_cb, g_object_ref (swarm));
  if (swarm->gateway != NULL && swarm->peer_port != 0)
    schedule_announce (swarm, 0);
  kick (swarm);
}

void
alv_swarm_stop (AlvSwarm *swarm)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));

  if (swarm->running && swarm->gateway != NULL && swarm->peer_port != 0 && swarm->announce_quick != 0)
    alv_gateway_client_announce_async (swarm->gateway, swarm->urn, swarm->peer_port,
                                       ALV_ANNOUNCE_STOPPED, NULL, 0, NULL, NULL, NULL);
  swarm->running = FALSE;
  g_clear_handle_id (&swarm->tick_id, g_source_remove);
  g_clear_handle_id (&swarm->idle_id, g_source_remove);
  g_clear_handle_id (&swarm->announce_id, g_source_remove);
  g_cancellable_cancel (swarm->cancellable);
  for (guint k = 0; swarm->requests != NULL && k < swarm->requests->len; k++)
    g_cancellable_cancel (((Request *) swarm->requests->pdata[k])->cancellable);
}

const char *
alv_swarm_get_urn (AlvSwarm *swarm)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), NULL);
  return swarm->urn;
}

guint64
alv_swarm_get_length (AlvSwarm *swarm)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), 0);
  return swarm->length;
}

guint
alv_swarm_get_block_size (AlvSwarm *swarm)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), 0);
  return swarm->block_size;
}

gboolean
alv_swarm_is_complete (AlvSwarm *swarm)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), FALSE);
  return swarm->completed;
}

gboolean
alv_swarm_has_block (AlvSwarm *swarm,
                     guint64   index)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), FALSE);
  return index < swarm->n_blocks && alv_block_map_get (swarm->have, (guint) index);
}

guint64
alv_swarm_get_contiguous_end (AlvSwarm *swarm)
{
  guint64 i;

  g_return_val_if_fail (ALV_IS_SWARM (swarm), 0);

  i = swarm->playhead / swarm->block_size;
  while (i < swarm->n_blocks && alv_block_map_get (swarm->have, (guint) i))
    i++;
  return MAX (MIN (i * swarm->block_size, swarm->length), swarm->playhead);
}

void
alv_swarm_get_stats (AlvSwarm      *swarm,
                     AlvSwarmStats *stats)
{
  GHashTableIter iter;
  gpointer value;

  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_return_if_fail (stats != NULL);

  *stats = swarm->stats;
  stats->blocks_held = alv_block_map_count (swarm->have);
  stats->peers_known = 0;
  stats->peers_connected = 0;
  g_hash_table_iter_init (&iter, swarm->peers);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Peer *p = value;

      if (!p->banned)
        stats->peers_known++;
      if (p->inflight > 0)
        stats->peers_connected++;
    }
  stats->requests_in_flight = swarm->requests->len;
}
