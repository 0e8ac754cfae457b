/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * AlvSwarm: the mechanics of the per-item swarm downloader.  Every
 * decision is the plan's (core/alv-swarm-plan.c: which block from whom,
 * when the origin, whom to poll, when to announce); this file carries
 * them out with libsoup, the block store and the gateway client, and
 * reports back what happened.  The plan is ticked after every event and
 * at the time it asks for, through one GSource whose ready time is that
 * wake-up, so a swarm with nothing to do costs nothing.
 *
 * Each request streams its body one block at a time into a buffer and
 * hands every complete block to the block store (peer blocks are verified
 * there against the tree), and reads on only when that write finished, so
 * a request costs at most one block of memory.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-swarm.h"

#include <string.h>
#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-block-map.h"
#include "alv-error.h"
#include "alv-ocn-headers.h"
#include "alv-swarm-plan.h"
#include "alv-urn.h"

#define ORIGIN_MAX_SKIP         (64u * 1024 * 1024)
#define READ_CHUNK              (64 * 1024)
#define MAX_PEER_CONNS          4       /* libsoup connections per peer */
#define ANNOUNCE_NUMWANT        32

typedef struct _Request Request;

struct _Request
{
  AlvSwarm *swarm;              /* strong */
  guint id;                     /* the plan's */
  char *peer;                   /* NULL: the origin */
  guint64 first, last;          /* blocks, inclusive */
  guint64 next;                 /* next block to complete */
  guint64 skip;                 /* body bytes to discard first */
  gboolean expect_eof;          /* a 206 of exactly the range: read its end */
  SoupMessage *msg;
  GInputStream *stream;
  GByteArray *buf;
  GCancellable *cancellable;
  gint64 started;               /* µs, monotonic */
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

  AlvSwarmPlan *plan;
  GArray *actions;
  GSource *tick_source;

  SoupSession *session;
  GCancellable *cancellable;
  AlvGatewayClient *gateway;
  char *thex_uri;
  guint16 peer_port;
  guint16 listen_port;             /* announced; 0: peer_port */

  GPtrArray *requests;          /* Request, in flight */
  char *self_key;

  AlvSwarmDeadlineFunc deadline_func;
  gpointer deadline_data;
  GDestroyNotify deadline_destroy;

  gboolean running;
  gboolean completed;
  gboolean announced_started;
  gboolean announced_completed;

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

static gint64
now_us (void)
{
  return g_get_monotonic_time ();
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
  return (gsize) MIN ((guint64) self->block_size, self->length - block_offset (self, i));
}

static void
emit_progress (AlvSwarm *self)
{
  g_signal_emit (self, signals[SIGNAL_PROGRESS], 0);
}

static const char *
source_name (Request *r)
{
  return r->peer != NULL ? r->peer : r->swarm->origin_url;
}

/* ------------------------------------------------------------------ */
/* peers                                                               */

/* Learns a peer (@source: GOSSIP: the key of the peer whose X-Alt named
 * it); returns whether it is new to the plan.  Whether it is taken, tried
 * and named to others is the plan's decision. */
static gboolean
learn_peer (AlvSwarm           *self,
            GInetSocketAddress *address,
            AlvSwarmPeerFrom    from,
            const char         *source)
{
  GInetAddress *ip = g_inet_socket_address_get_address (address);
  g_autofree char *key = NULL;

  if (g_inet_socket_address_get_port (address) == 0 || g_inet_address_get_is_any (ip) ||
      g_inet_address_get_is_multicast (ip))
    return FALSE;
  /* ourselves, as gossip or a gateway may name us */
  if (self->peer_port != 0 && g_inet_socket_address_get_port (address) == self->peer_port &&
      g_inet_address_get_is_loopback (ip))
    return FALSE;
  key = alv_alt_format_address (address);
  return key != NULL && alv_swarm_plan_add_peer (self->plan, key, from, source, now_us ());
}

static AlvBlockMap *
map_from_header (AlvSwarm   *self,
                 const char *value,
                 const char *peer,
                 const char *what)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvRangeSet) set = NULL;

  if (value == NULL)
    return NULL;
  set = alv_range_set_parse_available (value, self->length, &error);
  if (set == NULL)
    {
      g_debug ("%s: bad %s: %s", peer, what, error->message);
      return NULL;
    }
  return alv_block_map_new_from_range_set (set, self->block_size, self->length);
}

/* Reads X-Available-Ranges, X-Pending-Ranges and X-Alt of any peer
 * answer; @absent says what a missing X-Available-Ranges means. */
static void
peer_read_headers (AlvSwarm           *self,
                   const char         *peer,
                   SoupMessageHeaders *headers,
                   AlvSwarmAvail       absent)
{
  const char *avail = soup_message_headers_get_one (headers, ALV_HEADER_AVAILABLE_RANGES);
  const char *alt = soup_message_headers_get_list (headers, ALV_HEADER_ALT);
  AlvBlockMap *fetching = map_from_header (self, soup_message_headers_get_one (headers,
                                                                              ALV_HEADER_PENDING_RANGES),
                                           peer, ALV_HEADER_PENDING_RANGES);
  AlvBlockMap *map = map_from_header (self, avail, peer, ALV_HEADER_AVAILABLE_RANGES);

  if (map != NULL)
    alv_swarm_plan_peer_info (self->plan, peer, ALV_SWARM_AVAIL_MAP, map, fetching, now_us ());
  else if (avail != NULL)
    alv_swarm_plan_peer_info (self->plan, peer, ALV_SWARM_AVAIL_KEEP, NULL, fetching, now_us ());
  else
    alv_swarm_plan_peer_info (self->plan, peer, absent, NULL, fetching, now_us ());

  if (alt != NULL)
    {
      g_autoptr(GPtrArray) addrs = alv_alt_parse (alt, ALV_ALT_MAX_ENTRIES, NULL);

      for (guint i = 0; addrs != NULL && i < addrs->len; i++)
        learn_peer (self, addrs->pdata[i], ALV_SWARM_PEER_FROM_GOSSIP, peer);
    }
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

static void request_read (Request *r);
static void request_done (Request *r);

static void
request_free (Request *r)
{
  g_free (r->peer);
  g_clear_object (&r->msg);
  g_clear_object (&r->stream);
  g_clear_pointer (&r->buf, g_byte_array_unref);
  g_clear_object (&r->cancellable);
  g_clear_object (&r->swarm);
  g_free (r);
}

/* Ends a request and tells the plan how. */
static void
request_end (Request     *r,
             AlvSwarmEnd  end,
             gint64       extra_backoff_us)
{
  AlvSwarm *self = r->swarm;

  if (r->ended)
    return;
  r->ended = TRUE;
  if (end == ALV_SWARM_END_FAILED && g_cancellable_is_cancelled (r->cancellable))
    end = ALV_SWARM_END_CANCELLED;
  g_debug ("[%u] %.8s %s: blocks %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT
           " ended (%s, status %u) after %" G_GINT64_FORMAT " ms with %" G_GUINT64_FORMAT
           " blocks", self->peer_port, self->urn + strlen (ALV_URN_PREFIX),
           source_name (r), r->first, r->last,
           end == ALV_SWARM_END_OK ? "ok" : end == ALV_SWARM_END_FAILED ? "failed" : "cancelled",
           r->msg != NULL ? soup_message_get_status (r->msg) : 0,
           (now_us () - r->started) / 1000, r->next - r->first);
  alv_swarm_plan_request_ended (self->plan, r->id, end, extra_backoff_us, now_us ());
  g_ptr_array_remove_fast (self->requests, r);
  if (!g_cancellable_is_cancelled (r->cancellable))
    g_cancellable_cancel (r->cancellable);
  kick (self);
  request_free (r);
}

static Request *
find_request (AlvSwarm *self,
              guint     id)
{
  for (guint k = 0; k < self->requests->len; k++)
    if (((Request *) self->requests->pdata[k])->id == id)
      return self->requests->pdata[k];
  return NULL;
}

static void
check_complete (AlvSwarm *self)
{
  if (self->completed || !alv_swarm_plan_is_complete (self->plan))
    return;
  self->completed = TRUE;
  g_signal_emit (self, signals[SIGNAL_COMPLETE], 0);
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
  gboolean ok, mismatch;

  if (r->peer != NULL)
    ok = alv_block_store_write_block_finish (ALV_BLOCK_STORE (source), result, &error);
  else
    ok = alv_block_store_write_origin_finish (ALV_BLOCK_STORE (source), result, &error);
  mismatch = !ok && g_error_matches (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  alv_swarm_plan_block_stored (self->plan, i, ok, mismatch, r->peer);
  if (ok)
    {
      if (r->peer != NULL)
        self->stats.bytes_from_peers += wd->len;
      self->stats.blocks_verified++;
      g_signal_emit (self, signals[SIGNAL_BLOCK_READY], 0, (guint64) i,
                     alv_swarm_get_contiguous_end (self));
      emit_progress (self);
      check_complete (self);
    }
  else
    {
      if (mismatch)
        {
          self->stats.blocks_rejected++;
          if (r->peer != NULL)
            {
              if (alv_swarm_plan_is_banned (self->plan, r->peer))
                g_message ("banning peer %s for %s: block %u failed verification",
                           r->peer, self->urn, i);
            }
          else
            g_message ("the origin %s served block %u not matching %s (%s); not using it again",
                       self->origin_url, i, self->urn, error->message);
        }
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("storing block %u of %s: %s", i, self->urn, error->message);
      emit_progress (self);
      g_free (wd);
      request_end (r, ALV_SWARM_END_FAILED, 0);
      return;
    }
  g_free (wd);
  kick (self);
  if (g_cancellable_is_cancelled (r->cancellable))
    request_end (r, ALV_SWARM_END_CANCELLED, 0);
  else if (r->next > r->last)
    request_done (r);
  else
    request_read (r);
}

/* A whole block arrived in r->buf. */
static void
deliver_block (Request *r)
{
  AlvSwarm *self = r->swarm;
  g_autoptr(GBytes) data = g_byte_array_free_to_bytes (g_steal_pointer (&r->buf));
  guint i;
  WriteData *wd;

  r->buf = g_byte_array_new ();
  r->next++;
  if (!alv_swarm_plan_request_block (self->plan, r->id, &i))
    {
      /* a duplicate (endgame): held or being stored already */
      if (r->next > r->last)
        request_done (r);
      else
        request_read (r);
      return;
    }
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
        g_debug ("%s: reading failed: %s", source_name (r), error->message);
      request_end (r, cancelled ? ALV_SWARM_END_CANCELLED : ALV_SWARM_END_FAILED, 0);
      return;
    }
  data = g_bytes_get_data (chunk, &len);
  if (len == 0)
    {
      g_debug ("%s: body ended early", source_name (r));
      request_end (r, ALV_SWARM_END_FAILED, 0);
      return;
    }
  alv_swarm_plan_request_progress (self->plan, r->id, len, now_us ());
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
      request_end (r, ALV_SWARM_END_FAILED, 0);
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
  request_end (r, ALV_SWARM_END_OK, 0);
}

/* All blocks of @r are delivered. */
static void
request_done (Request *r)
{
  if (r->expect_eof)
    g_input_stream_read_bytes_async (r->stream, 1, G_PRIORITY_DEFAULT, r->cancellable,
                                     drain_cb, r);
  else
    request_end (r, ALV_SWARM_END_OK, 0);
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

/* A peer's answer to a GET: returns FALSE when the request ended here. */
static gboolean
peer_answered (Request            *r,
               guint               status,
               SoupMessageHeaders *headers)
{
  AlvSwarm *self = r->swarm;

  if (!check_urn_header (self, headers))
    {
      g_debug ("%s: answers for another URN", r->peer);
      request_end (r, ALV_SWARM_END_FAILED, 10 * G_USEC_PER_SEC);
      return FALSE;
    }
  if (status == SOUP_STATUS_SERVICE_UNAVAILABLE)
    {
      /* PFSP: not held (now), or all upload slots busy */
      peer_read_headers (self, r->peer, headers, ALV_SWARM_AVAIL_NONE);
      if (soup_message_headers_get_one (headers, "Retry-After") != NULL)
        alv_swarm_plan_request_busy (self->plan, r->id, now_us ());
      request_end (r, ALV_SWARM_END_OK, 0);
      return FALSE;
    }
  if (status == SOUP_STATUS_NOT_FOUND)
    {
      /* not shared (yet: no tree there); polled again like any peer
       * the gateway vouched for */
      alv_swarm_plan_peer_not_sharing (self->plan, r->peer, now_us ());
      request_end (r, ALV_SWARM_END_OK, 0);
      return FALSE;
    }
  if (status != SOUP_STATUS_PARTIAL_CONTENT && status != SOUP_STATUS_OK)
    {
      request_end (r, ALV_SWARM_END_FAILED, 0);
      return FALSE;
    }
  peer_read_headers (self, r->peer, headers,
                     status == SOUP_STATUS_OK ? ALV_SWARM_AVAIL_ALL : ALV_SWARM_AVAIL_KEEP);
  return TRUE;
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
        g_debug ("%s: %s", r->peer ? r->peer : self->origin_url, error->message);
      request_end (r, cancelled ? ALV_SWARM_END_CANCELLED : ALV_SWARM_END_FAILED, 0);
      return;
    }
  alv_swarm_plan_request_progress (self->plan, r->id, 0, now_us ());
  status = soup_message_get_status (r->msg);
  headers = soup_message_get_response_headers (r->msg);

  if (r->peer != NULL)
    {
      if (!peer_answered (r, status, headers))
        return;
    }
  else if (status != SOUP_STATUS_PARTIAL_CONTENT && status != SOUP_STATUS_OK)
    {
      g_debug ("origin %s answered %u", self->origin_url, status);
      request_end (r, ALV_SWARM_END_FAILED, 0);
      return;
    }

  if (status == SOUP_STATUS_PARTIAL_CONTENT)
    {
      guint64 start, end, total;
      const char *cr = soup_message_headers_get_one (headers, "Content-Range");

      if (cr == NULL || !alv_http_parse_content_range (cr, &start, &end, &total, NULL) ||
          total != self->length || start > want_start || end < want_start)
        {
          g_debug ("%s: unusable Content-Range %s", source_name (r), cr ? cr : "(none)");
          request_end (r, ALV_SWARM_END_FAILED, 0);
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
              request_end (r, ALV_SWARM_END_OK, 0);
              return;
            }
          alv_swarm_plan_request_truncate (self->plan, r->id, (guint) (last_full - 1));
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
                   source_name (r), cl, self->length);
          request_end (r, ALV_SWARM_END_FAILED, 0);
          return;
        }
      if (r->peer == NULL)
        alv_swarm_plan_origin_ignores_range (self->plan);
      if (want_start > ORIGIN_MAX_SKIP || (r->peer != NULL && want_start > 0))
        {
          if (r->peer == NULL)
            g_message ("the origin %s ignores Range; block %" G_GUINT64_FORMAT
                       " is too far in to read from the start", self->origin_url, r->first);
          request_end (r, ALV_SWARM_END_FAILED, 30 * G_USEC_PER_SEC);
          return;
        }
      r->skip = want_start;
    }
  request_read (r);
}

/* The port peers reach us on: the router's side of a mapping, or the
 * peer port. */
static guint16
announced_port (AlvSwarm *self)
{
  return self->listen_port != 0 ? self->listen_port : self->peer_port;
}

/* Tells a peer where this one listens, so it learns of us at once. */
static void
add_listen_port (AlvSwarm    *self,
                 SoupMessage *msg)
{
  g_autofree char *port = NULL;

  /* a listener the gateway cannot reach only pulls: naming its port
   * would have the peer try to connect back, and wait, in vain
   * (doc/peer-protocol.md) */
  if (self->peer_port == 0 || self->stats.peer_port_reach == ALV_REACHABLE_NO)
    return;
  port = g_strdup_printf ("%u", announced_port (self));
  soup_message_headers_replace (soup_message_get_request_headers (msg), ALV_HEADER_LISTEN_PORT, port);
}

static char *
peer_uri (AlvSwarm   *self,
          const char *peer)
{
  g_autofree char *path = alv_n2r_path (self->urn);

  return g_strconcat ("http://", peer, path, NULL);
}

static void
start_request (AlvSwarm             *self,
               const AlvSwarmAction *a)
{
  Request *r;
  g_autofree char *uri = a->peer != NULL ? peer_uri (self, a->peer) : g_strdup (self->origin_url);
  g_autofree char *range = NULL;
  SoupMessage *msg = uri != NULL ? soup_message_new (SOUP_METHOD_GET, uri) : NULL;

  if (msg == NULL)
    {
      /* an address or URL libsoup cannot use: never again */
      AlvSwarmEnd end = ALV_SWARM_END_FAILED;

      alv_swarm_plan_request_ended (self->plan, a->request, end, 60 * G_USEC_PER_SEC, now_us ());
      return;
    }
  r = g_new0 (Request, 1);
  r->msg = msg;
  r->swarm = g_object_ref (self);
  r->id = a->request;
  r->peer = g_strdup (a->peer);
  r->first = r->next = a->first;
  r->last = a->last;
  r->buf = g_byte_array_new ();
  r->cancellable = g_cancellable_new ();
  r->started = now_us ();
  range = g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                           block_offset (self, r->first),
                           block_offset (self, r->last) + block_len (self, r->last) - 1);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Range", range);
  soup_message_headers_replace (soup_message_get_request_headers (msg), "Accept-Encoding", "identity");
  if (a->peer != NULL)
    {
      add_listen_port (self, msg);
      if (a->deadline != ALV_SWARM_PLAN_NO_DEADLINE)
        {
          /* the peer uploads earliest deadline first */
          g_autofree char *due = g_strdup_printf ("%" G_GINT64_FORMAT,
                                                  MAX (a->deadline - now_us (), 0) / 1000);

          soup_message_headers_replace (soup_message_get_request_headers (msg),
                                        ALV_HEADER_DUE_IN, due);
        }
    }
  else
    self->stats.origin_requests++;
  g_ptr_array_add (self->requests, r);
  g_debug ("[%u] %.8s %s: blocks %u-%u (%s)", self->peer_port,
           self->urn + strlen (ALV_URN_PREFIX), source_name (r), a->first, a->last, a->reason);
  soup_session_send_async (self->session, msg, G_PRIORITY_DEFAULT, r->cancellable, send_cb, r);
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
  guint status = soup_message_get_status (poll->msg);
  SoupMessageHeaders *headers = soup_message_get_response_headers (poll->msg);

  stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (stream == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        alv_swarm_plan_peer_failed (self->plan, poll->key, 0, now_us ());
    }
  else if (!check_urn_header (self, headers))
    alv_swarm_plan_peer_failed (self->plan, poll->key, 10 * G_USEC_PER_SEC, now_us ());
  else if (status == SOUP_STATUS_OK || status == SOUP_STATUS_SERVICE_UNAVAILABLE)
    peer_read_headers (self, poll->key, headers,
                       status == SOUP_STATUS_OK ? ALV_SWARM_AVAIL_ALL : ALV_SWARM_AVAIL_NONE);
  else if (status == SOUP_STATUS_NOT_FOUND)
    alv_swarm_plan_peer_not_sharing (self->plan, poll->key, now_us ());
  else
    alv_swarm_plan_peer_failed (self->plan, poll->key, 0, now_us ());
  alv_swarm_plan_poll_done (self->plan, poll->key);
  if (stream != NULL)
    g_input_stream_close (stream, NULL, NULL);
  kick (self);
  g_object_unref (poll->msg);
  g_free (poll->key);
  g_object_unref (poll->swarm);
  g_free (poll);
}

static void
poll_peer (AlvSwarm   *self,
           const char *key)
{
  g_autofree char *uri = peer_uri (self, key);
  SoupMessage *msg = soup_message_new (SOUP_METHOD_HEAD, uri);
  Poll *poll;

  if (msg == NULL)
    {
      alv_swarm_plan_peer_failed (self->plan, key, 60 * G_USEC_PER_SEC, now_us ());
      alv_swarm_plan_poll_done (self->plan, key);
      return;
    }
  add_listen_port (self, msg);
  poll = g_new0 (Poll, 1);
  poll->swarm = g_object_ref (self);
  poll->key = g_strdup (key);
  poll->msg = msg;
  soup_session_send_async (self->session, msg, G_PRIORITY_DEFAULT, self->cancellable,
                           poll_cb, poll);
}

/* ------------------------------------------------------------------ */
/* announces                                                           */

static void
announce_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(AlvSwarm) self = user_data;
  AlvGatewayClient *gateway = ALV_GATEWAY_CLIENT (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  g_autoptr(GArray) pulls = NULL;
  g_autofree char *observed = NULL;
  guint interval = 0, first = 0, last = 0;
  gboolean known = FALSE, granted = FALSE;
  gint64 now = now_us ();

  peers = alv_gateway_client_announce_finish (gateway, result, &interval, &observed, &error);
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || !self->running)
    return;
  if (peers == NULL)
    {
      g_debug ("announcing %s: %s", self->urn, error->message);
      alv_swarm_plan_announce_done (self->plan, FALSE, 0, FALSE, FALSE, 0, 0, now);
      kick (self);
      return;
    }
  if (observed != NULL && g_strcmp0 (observed, self->self_key) != 0)
    {
      g_free (self->self_key);
      self->self_key = g_steal_pointer (&observed);
      alv_swarm_plan_set_self_key (self->plan, self->self_key);
    }
  {
    AlvReachable reach = alv_gateway_client_announce_get_reach (gateway, result);

    if (reach != self->stats.peer_port_reach)
      g_debug ("[%u] peer port reachable: %s", self->peer_port, alv_reachable_to_string (reach));
    self->stats.peer_port_reach = reach;
    self->stats.peer_port_reach_time = now;
  }
  for (guint i = 0; i < peers->len; i++)
    learn_peer (self, peers->pdata[i], ALV_SWARM_PEER_FROM_GATEWAY, NULL);
  known = alv_gateway_client_announce_get_lease (gateway, result, self->n_blocks,
                                                 &granted, &first, &last, &pulls);
  for (guint i = 0; pulls != NULL && i < pulls->len; i++)
    {
      AlvOriginPull *pull = &g_array_index (pulls, AlvOriginPull, i);
      g_autofree char *key = alv_alt_format_address (pull->address);

      learn_peer (self, pull->address, ALV_SWARM_PEER_FROM_GATEWAY, NULL);
      alv_swarm_plan_peer_pulling (self->plan, key, pull->first, pull->last, now);
    }
  alv_swarm_plan_announce_done (self->plan, TRUE, interval, known, granted, first, last, now);
  g_debug ("[%u] %.8s announced as %s: %u peers in the answer%s", self->peer_port,
           self->urn + strlen (ALV_URN_PREFIX), self->self_key ? self->self_key : "?",
           peers->len, granted ? ", origin lease granted" : "");
  if (granted)
    g_debug ("[%u] origin lease: blocks %u-%u", self->peer_port, first, last);
  kick (self);
}

static void
announce (AlvSwarm             *self,
          const AlvSwarmAction *a)
{
  g_autoptr(AlvRangeSet) held = NULL;
  AlvAnnounceEvent event;
  AlvAnnounceLease lease = { a->first, a->last, a->rescue };
  g_autoptr(GPtrArray) banned = alv_swarm_plan_take_banned (self->plan);
  g_autofree char *bad = NULL;

  if (self->completed && self->tree != NULL && !self->announced_completed)
    {
      event = ALV_ANNOUNCE_COMPLETED;
      self->announced_completed = TRUE;
    }
  else if (!self->announced_started)
    event = ALV_ANNOUNCE_STARTED;
  else
    event = ALV_ANNOUNCE_UPDATE;
  self->announced_started = TRUE;
  /* only what the peer port serves: verified blocks, so with the tree */
  if (self->tree != NULL)
    held = alv_block_map_to_range_set (alv_swarm_plan_get_have (self->plan), self->block_size,
                                       self->length);
  if (banned->len > 0)
    {
      g_ptr_array_add (banned, NULL);
      bad = g_strjoinv (",", (char **) banned->pdata);
    }
  alv_gateway_client_announce_async (self->gateway, self->urn, announced_port (self), event, held,
                                     ANNOUNCE_NUMWANT, a->want_lease ? &lease : NULL, bad,
                                     self->cancellable, announce_cb, g_object_ref (self));
}

/* ------------------------------------------------------------------ */
/* the plan, ticked                                                    */

static void
execute (AlvSwarm             *self,
         const AlvSwarmAction *a)
{
  switch (a->kind)
    {
    case ALV_SWARM_ACTION_REQUEST:
      start_request (self, a);
      break;
    case ALV_SWARM_ACTION_POLL:
      poll_peer (self, a->peer);
      break;
    case ALV_SWARM_ACTION_CANCEL:
      {
        Request *r = find_request (self, a->request);

        if (r != NULL)
          {
            g_debug ("%s: giving up on blocks %u-%u", source_name (r), a->first, a->last);
            g_cancellable_cancel (r->cancellable);
          }
      }
      break;
    case ALV_SWARM_ACTION_ANNOUNCE:
      if (self->gateway != NULL && self->peer_port != 0)
        announce (self, a);
      else
        alv_swarm_plan_announce_done (self->plan, FALSE, 0, FALSE, FALSE, 0, 0, now_us ());
      break;
    default:
      g_assert_not_reached ();
    }
}

static gboolean
tick_dispatch (GSource     *source,
               GSourceFunc  callback G_GNUC_UNUSED,
               gpointer     user_data G_GNUC_UNUSED)
{
  AlvSwarm *self = *(AlvSwarm **) (source + 1);
  gint64 now = now_us ();
  gint64 wake;
  guint n_req = self->requests->len;

  g_source_set_ready_time (source, -1);
  if (!self->running)
    return G_SOURCE_CONTINUE;
  g_object_ref (self);
  g_array_set_size (self->actions, 0);
  wake = alv_swarm_plan_tick (self->plan, now, self->actions);
  for (guint k = 0; k < self->actions->len && self->running; k++)
    execute (self, &g_array_index (self->actions, AlvSwarmAction, k));
  if (self->running && wake != ALV_SWARM_PLAN_NEVER && g_source_get_ready_time (source) != 0)
    g_source_set_ready_time (source, wake);
  if (n_req != self->requests->len)
    emit_progress (self);
  g_object_unref (self);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs tick_funcs = { NULL, NULL, tick_dispatch, NULL, NULL, NULL };

static void
kick (AlvSwarm *self)
{
  if (self->running && self->tick_source != NULL)
    g_source_set_ready_time (self->tick_source, 0);
}

static gint64
plan_deadline (guint    index,
               gpointer user_data)
{
  AlvSwarm *self = user_data;

  return self->deadline_func (self, index, self->deadline_data);
}

/* ------------------------------------------------------------------ */
/* tree                                                                */

static void
refresh_have (AlvSwarm *self)
{
  g_autoptr(AlvBlockMap) map = alv_block_store_get_block_map (self->store, self->urn);

  for (guint i = 0; i < self->n_blocks; i++)
    {
      if (map != NULL && alv_block_map_get (map, i))
        alv_swarm_plan_set_held (self->plan, i);
      else
        alv_swarm_plan_forget_block (self->plan, i);
    }
}

/* The store found block @index changed on disk and dropped it: fetch it
 * again. */
static void
block_dropped_cb (AlvBlockStore *store G_GNUC_UNUSED,
                  const char    *urn,
                  guint          index,
                  AlvSwarm      *self)
{
  if (g_strcmp0 (urn, self->urn) != 0 || index >= self->n_blocks)
    return;
  alv_swarm_plan_forget_block (self->plan, index);
  self->completed = FALSE;
  self->announced_completed = FALSE;
  kick (self);
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
  alv_swarm_plan_set_tree (self->plan, TRUE);
  g_signal_emit (self, signals[SIGNAL_TREE_READY], 0);
  emit_progress (self);
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
  g_clear_pointer (&self->plan, alv_swarm_plan_free);
  g_clear_pointer (&self->actions, g_array_unref);
  g_clear_pointer (&self->requests, g_ptr_array_unref);
  g_free (self->self_key);
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
  self->requests = g_ptr_array_new ();
  self->actions = g_array_new (FALSE, TRUE, sizeof (AlvSwarmAction));
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

  norm = alv_urn_normalize (urn, error);
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
  g_signal_connect_object (store, "block-dropped", G_CALLBACK (block_dropped_cb), self, 0);
  self->origin_url = g_strdup (origin_url);
  self->length = length;
  self->block_size = block_size;
  self->n_blocks = (guint) n_blocks;
  self->plan = alv_swarm_plan_new (length, block_size, origin_url != NULL, g_random_int ());
  alv_swarm_plan_set_urn (self->plan, self->urn);
  self->session = soup_session_new_with_options ("max-conns", 64,
                                                 "max-conns-per-host", MAX_PEER_CONNS,
                                                 "timeout", 20,
                                                 NULL);
  self->stats.n_blocks = self->n_blocks;
  refresh_have (self);
  if (alv_block_store_has_tree (store, self->urn))
    {
      self->tree = alv_block_store_get_tree (store, self->urn);
      alv_swarm_plan_set_tree (self->plan, TRUE);
    }
  else if (tree != NULL)
    alv_swarm_set_tree (self, tree);
  self->completed = alv_swarm_plan_is_complete (self->plan);
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
alv_swarm_set_listen_port (AlvSwarm *swarm,
                           guint16   port)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));

  if (port == swarm->listen_port)
    return;
  swarm->listen_port = port;
  /* the reachability the gateway said was of the old port: it checks
   * the new one when told, at once */
  if (swarm->stats.peer_port_reach == ALV_REACHABLE_NO)
    swarm->stats.peer_port_reach = ALV_REACHABLE_UNKNOWN;
  if (swarm->running && swarm->announced_started)
    {
      alv_swarm_plan_announce_soon (swarm->plan);
      kick (swarm);
    }
}

void
alv_swarm_add_peer (AlvSwarm           *swarm,
                    GInetSocketAddress *address)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_return_if_fail (G_IS_INET_SOCKET_ADDRESS (address));

  if (learn_peer (swarm, address, ALV_SWARM_PEER_FROM_GATEWAY, NULL))
    kick (swarm);
}

void
alv_swarm_add_requester (AlvSwarm           *swarm,
                         GInetSocketAddress *address)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_return_if_fail (G_IS_INET_SOCKET_ADDRESS (address));

  if (learn_peer (swarm, address, ALV_SWARM_PEER_FROM_REQUESTER, NULL))
    kick (swarm);
}

GPtrArray *
alv_swarm_get_shareable_peers (AlvSwarm *swarm)
{
  g_autoptr(GPtrArray) keys = NULL;
  GPtrArray *out;

  g_return_val_if_fail (ALV_IS_SWARM (swarm), NULL);

  keys = alv_swarm_plan_get_shareable (swarm->plan);
  out = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < keys->len; i++)
    {
      /* the plan's keys are alv_alt_format_address()'s */
      g_autoptr(GPtrArray) one = alv_alt_parse (keys->pdata[i], 1, NULL);

      if (one != NULL && one->len == 1)
        g_ptr_array_add (out, g_object_ref (one->pdata[0]));
    }
  return out;
}

void
alv_swarm_set_active (AlvSwarm *swarm,
                      gboolean  active)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  alv_swarm_plan_set_active (swarm->plan, active, now_us ());
  kick (swarm);
}

void
alv_swarm_set_playhead (AlvSwarm *swarm,
                        guint64   offset,
                        guint64   bytes_per_second)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  alv_swarm_plan_set_playhead (swarm->plan, offset, bytes_per_second, now_us ());
  kick (swarm);
}

void
alv_swarm_stream_resumed (AlvSwarm *swarm,
                          guint64   offset)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  alv_swarm_plan_stream_resumed (swarm->plan, offset, now_us ());
  kick (swarm);
}

void
alv_swarm_set_needed_from (AlvSwarm *swarm,
                           guint64   offset)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  alv_swarm_plan_set_needed_from (swarm->plan, offset);
  kick (swarm);
}

AlvRangeSet *
alv_swarm_get_origin_pending (AlvSwarm *swarm)
{
  g_autoptr(AlvBlockMap) map = NULL;

  g_return_val_if_fail (ALV_IS_SWARM (swarm), NULL);
  map = alv_swarm_plan_get_origin_pending (swarm->plan);
  return map != NULL ? alv_block_map_to_range_set (map, swarm->block_size, swarm->length) : NULL;
}

guint
alv_swarm_count_holders (AlvSwarm *swarm,
                         guint64   offset)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), 0);
  return alv_swarm_plan_count_holders (swarm->plan, (guint) MIN (offset / swarm->block_size,
                                                                 (guint64) G_MAXUINT));
}

gboolean
alv_swarm_has_needed (AlvSwarm *swarm)
{
  g_return_val_if_fail (ALV_IS_SWARM (swarm), FALSE);
  return alv_swarm_plan_has_needed (swarm->plan);
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
  alv_swarm_plan_set_deadline_func (swarm->plan, func != NULL ? plan_deadline : NULL, swarm);
  kick (swarm);
}

void
alv_swarm_release_playhead (AlvSwarm *swarm)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  alv_swarm_set_deadline_func (swarm, NULL, NULL, NULL);
  alv_swarm_plan_release_playhead (swarm->plan);
  kick (swarm);
}

void
alv_swarm_set_urgent_window (AlvSwarm *swarm,
                             guint     milliseconds)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  alv_swarm_plan_set_urgent_window (swarm->plan, (gint64) milliseconds * 1000);
}

void
alv_swarm_set_seed (AlvSwarm *swarm,
                    guint32   seed)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));
  alv_swarm_plan_set_seed (swarm->plan, seed);
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
  swarm->tick_source = g_source_new (&tick_funcs, sizeof (GSource) + sizeof (AlvSwarm *));
  *(AlvSwarm **) (swarm->tick_source + 1) = swarm;
  g_source_set_name (swarm->tick_source, "AlvSwarm tick");
  g_source_attach (swarm->tick_source, g_main_context_get_thread_default ());
  if (swarm->tree == NULL && !swarm->tree_pending && swarm->gateway != NULL &&
      swarm->thex_uri != NULL)
    alv_gateway_client_fetch_tree_async (swarm->gateway, swarm->thex_uri, swarm->urn,
                                         swarm->length, swarm->block_size, swarm->cancellable,
                                         fetch_tree_cb, g_object_ref (swarm));
  alv_swarm_plan_set_announcing (swarm->plan, swarm->gateway != NULL && swarm->peer_port != 0);
  kick (swarm);
}

void
alv_swarm_stop (AlvSwarm *swarm)
{
  g_return_if_fail (ALV_IS_SWARM (swarm));

  if (swarm->running && swarm->gateway != NULL && swarm->peer_port != 0 && swarm->announced_started)
    alv_gateway_client_announce_async (swarm->gateway, swarm->urn, announced_port (swarm),
                                       ALV_ANNOUNCE_STOPPED, NULL, 0, NULL, NULL, NULL, NULL, NULL);
  swarm->running = FALSE;
  if (swarm->tick_source != NULL)
    {
      g_source_destroy (swarm->tick_source);
      g_clear_pointer (&swarm->tick_source, g_source_unref);
    }
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
  return index < swarm->n_blocks && alv_swarm_plan_has_block (swarm->plan, (guint) index);
}

guint64
alv_swarm_get_contiguous_end (AlvSwarm *swarm)
{
  guint64 playhead, i;

  g_return_val_if_fail (ALV_IS_SWARM (swarm), 0);

  playhead = alv_swarm_plan_get_playhead (swarm->plan);
  i = playhead / swarm->block_size;
  while (i < swarm->n_blocks && alv_swarm_plan_has_block (swarm->plan, (guint) i))
    i++;
  return MAX (MIN (i * swarm->block_size, swarm->length), playhead);
}

void
alv_swarm_get_stats (AlvSwarm      *swarm,
                     AlvSwarmStats *stats)
{
  AlvSwarmPlanStats ps;
  g_autoptr(GHashTable) connected = NULL;

  g_return_if_fail (ALV_IS_SWARM (swarm));
  g_return_if_fail (stats != NULL);

  alv_swarm_plan_get_stats (swarm->plan, &ps);
  *stats = swarm->stats;
  stats->blocks_held = alv_block_map_count (alv_swarm_plan_get_have (swarm->plan));
  stats->peers_known = ps.peers_known;
  stats->peers_banned = ps.peers_banned;
  connected = g_hash_table_new (g_str_hash, g_str_equal);
  for (guint k = 0; k < swarm->requests->len; k++)
    {
      Request *r = swarm->requests->pdata[k];

      if (r->peer != NULL)
        g_hash_table_add (connected, r->peer);
    }
  stats->peers_connected = g_hash_table_size (connected);
  stats->requests_in_flight = swarm->requests->len;
}
