/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * AlvPeerServer: the peer port.  Each request is checked in libsoup's early
 * handler (header limits, method; request bodies are never kept), then
 * answered from the block store by the N2R handler.  A body is streamed:
 * one chunk is read from the store in a GTask thread, appended, and the
 * next is read when libsoup reports the chunk written, so a slow peer
 * costs one chunk of memory.  The upload rate is a token bucket shared by
 * all uploads: a chunk is read only when the bucket holds its size, and
 * the waiting uploads get the tokens earliest deadline first (a request
 * says in X-Due-In when its requester plays it; one that does not say is
 * bulk and comes last), so a peer's uplink goes to whoever would stall
 * first — and a block at most one other peer is known to hold counts as
 * due within 3 s: only this peer can pass it on, and every copy of it
 * made now is one more source for the rest of the swarm.  Uploads are admitted up to the slots the rate allows, and past
 * them, up to the hard cap, when they are due soon.  An entry being
 * uploaded is pinned in the store so it cannot be evicted mid-body.
 * A request for a block this peer is pulling from the origin right now
 * waits for it (paused; a few per block, a few seconds) and is answered
 * the moment the owner says the block arrived
 * (alv_peer_server_block_arrived()): a fresh block leaves its first
 * holder at once, long before anybody is about to play it.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-peer-server.h"

#include <string.h>

#include <glib/gi18n-lib.h>
#include <libsoup/soup.h>

#include "alv-error.h"
#include "alv-listener.h"
#include "alv-ocn-headers.h"
#include "alv-ranges.h"
#include "alv-urn.h"

/* request header limits: a peer request needs a handful of short headers */
#define MAX_REQUEST_HEADERS 32
#define MAX_REQUEST_HEADER_BYTES (8 * 1024)

/* RFC 6585, not in libsoup 3.2's enum */
#define STATUS_HEADER_FIELDS_TOO_LARGE 431

/* body chunk when not rate limited */
#define CHUNK_SIZE (64 * 1024)

/* a request due within this is admitted past the rate's slots */
#define URGENT_DUE_MS 4000

/* a block at most this many other peers hold is uploaded as if it were
 * due this soon: after what someone is about to play, before the rest */
#define RARE_HOLDERS 1
#define RARE_DUE_US (3 * G_USEC_PER_SEC)

/* seconds a refused peer is asked to wait (503 for lack of a slot) */
#define RETRY_AFTER_SECONDS 5

/* seconds a connection may take to send a request's headers, idle
 * keep-alive time included (slow-loris defence) */
#define DEFAULT_HEADER_TIMEOUT 30

/* seconds a connection may make no progress at all (a peer that stops
 * reading its download) */
#define IDLE_TIMEOUT 60

typedef struct _Upload Upload;
typedef struct _Waiter Waiter;

struct _AlvPeerServer
{
  GObject parent_instance;

  AlvBlockStore *store;
  SoupServer *soup;
  AlvListener *listener;         /* accepts for @soup */
  GHashTable *shared;            /* normalised URN set */
  GHashTable *uploads;           /* Upload set */

  AlvPeerServerAltFunc alt_func;
  gpointer alt_data;
  GDestroyNotify alt_destroy;
  AlvPeerServerSeenFunc seen_func;
  gpointer seen_data;
  AlvPeerServerPendingFunc pending_func;
  gpointer pending_data;
  AlvPeerServerHoldersFunc holders_func;
  gpointer holders_data;

  guint max_uploads;
  guint header_timeout;
  guint max_per_address;        /* connections from one IP address */
  guint64 rate;                  /* bytes/s, 0 = unlimited */
  double tokens;
  gint64 tokens_time;            /* monotonic µs of the last refill */
  GPtrArray *waiting;            /* Upload waiting for tokens */
  guint waiting_timer;
  GPtrArray *waiters;            /* Waiter: requests waiting for a pulled block */

  AlvPeerServerStats stats;
};

struct _Upload
{
  AlvPeerServer *server;         /* NULL once the server is disposed */
  SoupServerMessage *msg;
  GCancellable *cancellable;
  char *urn;
  guint64 pos;                   /* next byte to read */
  guint64 end;                   /* one past the last byte to send */
  gint64 due;                    /* monotonic µs its requester plays it; G_MAXINT64: bulk */
  gboolean waiting;
  gboolean reading;
  gboolean finished;
};

/* A request for a block being pulled from the origin, paused until the
 * block arrives or ALV_PEER_SERVER_WAIT_MS has passed. */
struct _Waiter
{
  AlvPeerServer *server;
  SoupServerMessage *msg;
  char *urn;
  guint64 block;                 /* index of the block it waits for */
  guint64 length;
  guint64 start;
  guint64 end;
  guint timeout_id;
};

G_DEFINE_FINAL_TYPE (AlvPeerServer, alv_peer_server, G_TYPE_OBJECT)

/* ------------------------------------------------------------------ */
/* uploads                                                             */

static Upload *
upload_ref (Upload *u)
{
  return g_rc_box_acquire (u);
}

static void
upload_clear (gpointer data)
{
  Upload *u = data;

  g_clear_object (&u->msg);
  g_clear_object (&u->cancellable);
  g_free (u->urn);
}

static void
upload_unref (Upload *u)
{
  g_rc_box_release_full (u, upload_clear);
}

static gsize
chunk_size (AlvPeerServer *self)
{
  if (self->rate == 0)
    return CHUNK_SIZE;
  /* small enough that pacing is smooth, large enough to be efficient */
  return (gsize) CLAMP (self->rate / 8, 1024, CHUNK_SIZE);
}

static double
bucket_capacity (AlvPeerServer *self)
{
  return MAX ((double) chunk_size (self), (double) self->rate / 4.0);
}

static void
refill_tokens (AlvPeerServer *self)
{
  gint64 now = g_get_monotonic_time ();

  if (self->tokens_time != 0)
    self->tokens += (double) (now - self->tokens_time) * (double) self->rate / G_USEC_PER_SEC;
  self->tokens = MIN (self->tokens, bucket_capacity (self));
  self->tokens_time = now;
}

/* A requester that names its peer port (X-Listen-Port) is a peer of the
 * URN at the connection's address and that port. */
static void
report_requester (AlvPeerServer     *self,
                  SoupServerMessage *msg,
                  const char        *urn)
{
  const char *value = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                    ALV_HEADER_LISTEN_PORT);
  GSocketAddress *remote;
  g_autoptr(GSocketAddress) peer = NULL;
  guint64 port;

  if (self->seen_func == NULL || value == NULL ||
      !g_ascii_string_to_unsigned (value, 10, 1, G_MAXUINT16, &port, NULL))
    return;
  remote = soup_server_message_get_remote_address (msg);
  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return;
  peer = g_inet_socket_address_new (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)),
                                    (guint16) port);
  self->seen_func (urn, G_INET_SOCKET_ADDRESS (peer), self->seen_data);
}

static void upload_pump (Upload *u);

/* Slots in use at once: a slow uplink shared by many bodies would make
 * every one of them late, so each slot gets at least
 * ALV_PEER_SERVER_MIN_SLOT_RATE and requesters are sent elsewhere early. */
static guint
effective_slots (AlvPeerServer *self)
{
  if (self->rate == 0 || self->max_uploads == 0)
    return self->max_uploads;
  return (guint) CLAMP (self->rate / ALV_PEER_SERVER_MIN_SLOT_RATE, 1, self->max_uploads);
}

static void upload_read (Upload *u, gsize n);
static gsize upload_next_chunk (Upload *u);

/* Hands the tokens to the waiting uploads, earliest due first; sets a
 * timer for the first that must wait. */
static void dispatch_waiting (AlvPeerServer *self);

static gboolean
waiting_timer_cb (gpointer user_data)
{
  AlvPeerServer *self = user_data;

  self->waiting_timer = 0;
  dispatch_waiting (self);
  return G_SOURCE_REMOVE;
}

static void
dispatch_waiting (AlvPeerServer *self)
{
  g_clear_handle_id (&self->waiting_timer, g_source_remove);
  refill_tokens (self);
  while (self->waiting->len > 0)
    {
      guint best = 0;
      Upload *u;
      gsize n;

      for (guint k = 1; k < self->waiting->len; k++)
        if (((Upload *) self->waiting->pdata[k])->due < ((Upload *) self->waiting->pdata[best])->due)
          best = k;
      u = self->waiting->pdata[best];
      n = upload_next_chunk (u);
      if (self->tokens < (double) n)
        {
          double wait_s = ((double) n - self->tokens) / (double) self->rate;
          guint wait_ms = (guint) CLAMP (wait_s * 1000.0 + 1.0, 1.0, 60000.0);

          self->waiting_timer = g_timeout_add (wait_ms, waiting_timer_cb, self);
          return;
        }
      self->tokens -= (double) n;
      u->waiting = FALSE;
      upload_read (u, n);
      /* drops the waiting list's reference */
      g_ptr_array_remove_index_fast (self->waiting, best);
    }
}

/* Ends a response whose body cannot be completed: the connection is shut
 * down and libsoup, failing to write, finishes the message. */
static void
upload_abort (Upload *u)
{
  GSocket *socket = alv_listener_get_message_socket (u->msg);

  if (socket != NULL)
    g_socket_shutdown (socket, TRUE, TRUE, NULL);
  soup_message_body_append (soup_server_message_get_response_body (u->msg),
                            SOUP_MEMORY_STATIC, "", 1);
  soup_server_message_unpause (u->msg);
}

static void
upload_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Upload *u = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = NULL;

  bytes = alv_block_store_read_finish (ALV_BLOCK_STORE (source), result, &error);
  u->reading = FALSE;
  if (u->finished)
    {
      upload_unref (u);
      return;
    }
  if (bytes == NULL)
    {
      g_debug ("Peer server: aborting upload of %s: %s", u->urn, error->message);
      upload_abort (u);
      upload_unref (u);
      return;
    }
  u->pos += g_bytes_get_size (bytes);
  soup_message_body_append_bytes (soup_server_message_get_response_body (u->msg), bytes);
  soup_server_message_unpause (u->msg);
  upload_unref (u);
}

static gsize
upload_next_chunk (Upload *u)
{
  return (gsize) MIN (u->end - u->pos, (guint64) chunk_size (u->server));
}

static void
upload_read (Upload *u,
             gsize   n)
{
  u->reading = TRUE;
  alv_block_store_read_async (u->server->store, u->urn, u->pos, n, u->cancellable,
                              upload_read_cb, upload_ref (u));
}

/* Reads the next chunk when the bucket allows; called at start and each
 * time libsoup has written a chunk. */
static void
upload_pump (Upload *u)
{
  AlvPeerServer *self = u->server;

  if (u->finished || u->reading || u->waiting || self == NULL || u->pos >= u->end)
    return;
  if (self->rate == 0)
    {
      upload_read (u, upload_next_chunk (u));
      return;
    }
  u->waiting = TRUE;
  g_ptr_array_add (self->waiting, upload_ref (u));
  dispatch_waiting (self);
}

static void
upload_wrote_chunk_cb (SoupServerMessage *msg G_GNUC_UNUSED,
                       gpointer           user_data)
{
  upload_pump (user_data);
}

static void
upload_wrote_body_data_cb (SoupServerMessage *msg G_GNUC_UNUSED,
                           guint              size,
                           gpointer           user_data)
{
  Upload *u = user_data;

  if (u->server != NULL)
    u->server->stats.bytes_uploaded += size;
}

static void
upload_finished_cb (SoupServerMessage *msg,
                    gpointer           user_data)
{
  Upload *u = user_data;
  AlvPeerServer *self = u->server;

  u->finished = TRUE;
  g_signal_handlers_disconnect_by_data (msg, u);
  g_cancellable_cancel (u->cancellable);
  if (self != NULL)
    {
      /* drops the waiting list's reference */
      if (u->waiting)
        g_ptr_array_remove_fast (self->waiting, u);
      u->waiting = FALSE;
      self->stats.active_uploads--;
      alv_block_store_unpin (self->store, u->urn);
      /* drops the table's reference */
      g_hash_table_remove (self->uploads, u);
    }
}

static void
upload_start (AlvPeerServer     *self,
              SoupServerMessage *msg,
              const char        *urn,
              guint64            start,
              guint64            end,
              gint64             due)
{
  Upload *u = g_rc_box_new0 (Upload);
  SoupMessageBody *body = soup_server_message_get_response_body (msg);

  u->server = self;
  u->msg = g_object_ref (msg);
  u->cancellable = g_cancellable_new ();
  u->urn = g_strdup (urn);
  u->pos = start;
  u->end = end;
  u->due = due;
  g_hash_table_add (self->uploads, u);
  self->stats.active_uploads++;
  alv_block_store_pin (self->store, urn);

  soup_message_body_set_accumulate (body, FALSE);
  g_signal_connect (msg, "wrote-chunk", G_CALLBACK (upload_wrote_chunk_cb), u);
  g_signal_connect (msg, "wrote-body-data", G_CALLBACK (upload_wrote_body_data_cb), u);
  g_signal_connect (msg, "finished", G_CALLBACK (upload_finished_cb), u);

  /* libsoup pauses the message itself when it runs out of body */
  upload_pump (u);
}

/* ------------------------------------------------------------------ */
/* request handling                                                    */

static void
refuse (AlvPeerServer     *self,
        SoupServerMessage *msg,
        guint              status)
{
  self->stats.requests_refused++;
  soup_server_message_set_status (msg, status,
                                  status == STATUS_HEADER_FIELDS_TOO_LARGE ?
                                  "Request Header Fields Too Large" : NULL);
}

/* Runs once the request headers are in, before any body is read. */
static void
early_handler (SoupServer        *soup G_GNUC_UNUSED,
               SoupServerMessage *msg,
               const char        *path G_GNUC_UNUSED,
               GHashTable        *query G_GNUC_UNUSED,
               gpointer           user_data)
{
  AlvPeerServer *self = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_request_headers (msg);
  SoupMessageHeadersIter iter;
  const char *name, *value;
  const char *method = soup_server_message_get_method (msg);
  guint n = 0;
  gsize bytes = 0;

  /* we never need a request body: whatever is sent is read and dropped */
  soup_message_body_set_accumulate (soup_server_message_get_request_body (msg), FALSE);

  soup_message_headers_iter_init (&iter, headers);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      n++;
      bytes += strlen (name) + strlen (value) + 4;
    }
  if (n > MAX_REQUEST_HEADERS || bytes > MAX_REQUEST_HEADER_BYTES)
    {
      refuse (self, msg, STATUS_HEADER_FIELDS_TOO_LARGE);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Connection", "close");
      return;
    }
  if (method != SOUP_METHOD_GET && method != SOUP_METHOD_HEAD)
    {
      refuse (self, msg, SOUP_STATUS_METHOD_NOT_ALLOWED);
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Allow", "GET, HEAD");
    }
}

static void
set_common_headers (AlvPeerServer      *self,
                    SoupMessageHeaders *headers,
                    const char         *urn,
                    const AlvRangeSet  *held)
{
  g_autofree char *available = alv_range_set_format_available (held);

  soup_message_headers_replace (headers, ALV_HEADER_CONTENT_URN, urn);
  if (available != NULL)
    soup_message_headers_replace (headers, ALV_HEADER_AVAILABLE_RANGES, available);
  soup_message_headers_replace (headers, "Accept-Ranges", "bytes");
  soup_message_headers_replace (headers, "Cache-Control", "no-store");
  if (self->pending_func != NULL)
    {
      g_autoptr(AlvRangeSet) pending = self->pending_func (urn, self->pending_data);
      g_autofree char *text = pending != NULL ? alv_range_set_format_available (pending) : NULL;

      if (text != NULL)
        soup_message_headers_replace (headers, ALV_HEADER_PENDING_RANGES, text);
    }

  if (self->alt_func != NULL)
    {
      g_autoptr(GPtrArray) alts = self->alt_func (urn, self->alt_data);
      g_autofree char *alt = NULL;

      if (alts != NULL)
        alt = alv_alt_format (alts, ALV_PEER_SERVER_MAX_ALT);
      if (alt != NULL)
        soup_message_headers_replace (headers, ALV_HEADER_ALT, alt);
    }
}

/* --- waiting for a block being pulled ------------------------------- */

static void
waiter_free (Waiter *w)
{
  g_clear_handle_id (&w->timeout_id, g_source_remove);
  g_signal_handlers_disconnect_by_data (w->msg, w);
  g_object_unref (w->msg);
  g_free (w->urn);
  g_free (w);
}

/* Whether a request for the block at @start of @urn, not held, may wait
 * for it: this peer is pulling it from the origin, and few wait for it
 * and in all (its index in @block_out). */
static gboolean
may_wait (AlvPeerServer *self,
          const char    *urn,
          guint64        start,
          guint64       *block_out)
{
  g_autoptr(AlvRangeSet) pending = NULL;
  guint block_size = 0;
  guint n = 0;

  if (self->pending_func == NULL || self->waiters->len >= ALV_PEER_SERVER_WAITERS_MAX ||
      !alv_block_store_get_entry_info (self->store, urn, NULL, &block_size, NULL) ||
      block_size == 0)
    return FALSE;
  pending = self->pending_func (urn, self->pending_data);
  if (pending == NULL || !alv_range_set_contains_offset (pending, start))
    return FALSE;
  *block_out = start / block_size;
  for (guint k = 0; k < self->waiters->len; k++)
    {
      Waiter *w = self->waiters->pdata[k];

      if (w->block == *block_out && strcmp (w->urn, urn) == 0)
        n++;
    }
  return n < ALV_PEER_SERVER_WAITERS_PER_BLOCK;
}

static void answer_range (AlvPeerServer     *self,
                          SoupServerMessage *msg,
                          const char        *urn,
                          const AlvRangeSet *held,
                          guint64            length,
                          guint64            start,
                          guint64            end,
                          gboolean           partial,
                          gboolean           waited);

/* Answers the request @w has kept waiting, and forgets it. */
static void
waiter_answer (Waiter *w)
{
  AlvPeerServer *self = w->server;
  g_autoptr(SoupServerMessage) msg = g_object_ref (w->msg);
  g_autofree char *urn = g_strdup (w->urn);
  guint64 length = w->length, start = w->start, end = w->end;
  g_autoptr(AlvRangeSet) held = NULL;

  /* frees @w */
  g_ptr_array_remove (self->waiters, w);
  if (g_hash_table_contains (self->shared, urn))
    held = alv_block_store_get_ranges (self->store, urn);
  if (held == NULL)
    refuse (self, msg, SOUP_STATUS_NOT_FOUND);
  else
    {
      set_common_headers (self, soup_server_message_get_response_headers (msg), urn, held);
      answer_range (self, msg, urn, held, length, start, end, TRUE, TRUE);
    }
  soup_server_message_unpause (msg);
}

static gboolean
waiter_timeout_cb (gpointer user_data)
{
  Waiter *w = user_data;

  w->timeout_id = 0;
  waiter_answer (w);
  return G_SOURCE_REMOVE;
}

/* The requester went away while it waited. */
static void
waiter_finished_cb (SoupServerMessage *msg G_GNUC_UNUSED,
                    gpointer           user_data)
{
  Waiter *w = user_data;

  /* frees @w */
  g_ptr_array_remove (w->server->waiters, w);
}

static void
wait_for_block (AlvPeerServer     *self,
                SoupServerMessage *msg,
                const char        *urn,
                guint64            block,
                guint64            length,
                guint64            start,
                guint64            end)
{
  Waiter *w = g_new0 (Waiter, 1);

  w->server = self;
  w->msg = g_object_ref (msg);
  w->urn = g_strdup (urn);
  w->block = block;
  w->length = length;
  w->start = start;
  w->end = end;
  w->timeout_id = g_timeout_add (ALV_PEER_SERVER_WAIT_MS, waiter_timeout_cb, w);
  g_signal_connect (msg, "finished", G_CALLBACK (waiter_finished_cb), w);
  g_ptr_array_add (self->waiters, w);
  self->stats.requests_waited++;
  soup_server_message_pause (msg);
}

/* Answers @msg, whose common headers are set from @held, for bytes
 * @start..@end of @urn (the whole item unless @partial): the held
 * prefix, or 503 when its first byte is not held — unless that block is
 * being pulled from the origin, when the request waits for it (@waited:
 * it did, and was admitted when it came: it takes no slot check). */
static void
answer_range (AlvPeerServer     *self,
              SoupServerMessage *msg,
              const char        *urn,
              const AlvRangeSet *held,
              guint64            length,
              guint64            start,
              guint64            end,
              gboolean           partial,
              gboolean           waited)
{
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  gboolean is_head = soup_server_message_get_method (msg) == SOUP_METHOD_HEAD;
  AlvRange covering;
  const char *due_text;
  guint64 due_ms = G_MAXUINT64;
  gint64 due = G_MAXINT64;
  guint64 block;

  /* PFSP: answer the held prefix of the asked range, or 503 if its first
   * byte is not held; a request without Range needs the whole content */
  if (end > start)
    {
      if (!alv_range_set_get_covering (held, start, &covering) ||
          (!partial && covering.end < end))
        {
          if (!waited && partial && !is_head && may_wait (self, urn, start, &block))
            wait_for_block (self, msg, urn, block, length, start, end);
          else
            refuse (self, msg, SOUP_STATUS_SERVICE_UNAVAILABLE);
          return;
        }
      end = MIN (end, covering.end);
    }

  /* X-Due-In: milliseconds until the requester plays it (untrusted: it
   * only orders uploads and admits past the rate's slots, never past the
   * hard cap) */
  due_text = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                           ALV_HEADER_DUE_IN);
  if (due_text != NULL && g_ascii_string_to_unsigned (due_text, 10, 0, 3600 * 1000, &due_ms, NULL))
    due = g_get_monotonic_time () + (gint64) due_ms * 1000;
  if (!is_head && end > start && self->holders_func != NULL &&
      self->holders_func (urn, start, self->holders_data) <= RARE_HOLDERS)
    {
      due = MIN (due, g_get_monotonic_time () + RARE_DUE_US);
      due_ms = MIN (due_ms, (guint64) (RARE_DUE_US / 1000));
    }
  if (!waited && !is_head && end > start && self->stats.active_uploads >= effective_slots (self) &&
      (due_ms > URGENT_DUE_MS || self->stats.active_uploads >= self->max_uploads))
    {
      g_autofree char *retry = g_strdup_printf ("%u", RETRY_AFTER_SECONDS);

      soup_message_headers_replace (resp, "Retry-After", retry);
      refuse (self, msg, SOUP_STATUS_SERVICE_UNAVAILABLE);
      return;
    }

  self->stats.requests_served++;
  if (partial)
    {
      g_autofree char *cr = alv_http_format_content_range (start, end, length);

      soup_message_headers_replace (resp, "Content-Range", cr);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
    }
  else
    soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_encoding (resp, SOUP_ENCODING_CONTENT_LENGTH);
  soup_message_headers_set_content_length (resp, end - start);

  if (!is_head && end > start)
    upload_start (self, msg, urn, start, end, due);
}

static void
n2r_handler (SoupServer        *soup G_GNUC_UNUSED,
             SoupServerMessage *msg,
             const char        *path,
             GHashTable        *query_table G_GNUC_UNUSED,
             gpointer           user_data)
{
  AlvPeerServer *self = user_data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const char *query = g_uri_get_query (soup_server_message_get_uri (msg));
  const char *range_header;
  g_autofree char *urn = NULL;
  g_autoptr(AlvRangeSet) held = NULL;
  g_autoptr(GError) error = NULL;
  guint64 length, start, end;
  gboolean partial;

  if (g_strcmp0 (path, ALV_N2R_PATH) != 0)
    {
      refuse (self, msg, SOUP_STATUS_NOT_FOUND);
      return;
    }
  if (query == NULL || *query == '\0' ||
      (urn = alv_n2r_parse_query (query, &error)) == NULL)
    {
      g_debug ("Peer server: bad N2R query: %s", error != NULL ? error->message : "empty");
      refuse (self, msg, SOUP_STATUS_BAD_REQUEST);
      return;
    }

  /* Only what is shared, with its tree stored: then every held block has
   * been verified against that tree. */
  if (!g_hash_table_contains (self->shared, urn) ||
      !alv_block_store_has_tree (self->store, urn) ||
      !alv_block_store_get_entry_info (self->store, urn, &length, NULL, NULL) ||
      (held = alv_block_store_get_ranges (self->store, urn)) == NULL)
    {
      refuse (self, msg, SOUP_STATUS_NOT_FOUND);
      return;
    }
  report_requester (self, msg, urn);
  set_common_headers (self, resp, urn, held);
  soup_message_headers_replace (resp, "Content-Type", "application/octet-stream");

  range_header = soup_message_headers_get_one (req, "Range");
  if (range_header != NULL)
    {
      g_autoptr(GArray) ranges = NULL;

      if (!alv_http_parse_range (range_header, length, &ranges, &error))
        {
          if (g_error_matches (error, ALV_ERROR, ALV_ERROR_INVALID))
            {
              g_autofree char *cr = alv_http_format_content_range (0, 0, length);

              soup_message_headers_replace (resp, "Content-Range", cr);
              refuse (self, msg, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE);
            }
          else
            refuse (self, msg, SOUP_STATUS_BAD_REQUEST);
          return;
        }
      /* one range per response: the first; a peer asks again for more */
      start = g_array_index (ranges, AlvRange, 0).start;
      end = g_array_index (ranges, AlvRange, 0).end;
      partial = TRUE;
    }
  else
    {
      start = 0;
      end = length;
      partial = FALSE;
    }

  answer_range (self, msg, urn, held, length, start, end, partial, FALSE);
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
alv_peer_server_dispose (GObject *object)
{
  AlvPeerServer *self = ALV_PEER_SERVER (object);

  if (self->uploads != NULL)
    {
      GHashTableIter iter;
      gpointer key;

      /* detach every upload first: libsoup finishes them while
       * disconnecting, and they must not call back into us */
      g_hash_table_iter_init (&iter, self->uploads);
      while (g_hash_table_iter_next (&iter, &key, NULL))
        {
          Upload *u = key;

          u->server = NULL;
          u->finished = TRUE;
          g_signal_handlers_disconnect_by_data (u->msg, u);
          g_cancellable_cancel (u->cancellable);
          alv_block_store_unpin (self->store, u->urn);
        }
    }
  g_clear_handle_id (&self->waiting_timer, g_source_remove);
  if (self->waiting != NULL)
    g_ptr_array_set_size (self->waiting, 0);
  /* the requests waiting for blocks: libsoup drops them as it
   * disconnects */
  if (self->waiters != NULL)
    g_ptr_array_set_size (self->waiters, 0);
  g_clear_object (&self->listener);
  if (self->soup != NULL)
    soup_server_disconnect (self->soup);
  g_clear_object (&self->soup);
  g_clear_pointer (&self->uploads, g_hash_table_unref);
  if (self->alt_destroy != NULL)
    self->alt_destroy (self->alt_data);
  self->alt_func = NULL;
  self->alt_destroy = NULL;
  self->alt_data = NULL;
  self->seen_func = NULL;
  self->pending_func = NULL;
  self->holders_func = NULL;
  g_clear_object (&self->store);

  G_OBJECT_CLASS (alv_peer_server_parent_class)->dispose (object);
}

static void
alv_peer_server_finalize (GObject *object)
{
  AlvPeerServer *self = ALV_PEER_SERVER (object);

  g_hash_table_unref (self->shared);
  g_ptr_array_unref (self->waiting);
  g_ptr_array_unref (self->waiters);

  G_OBJECT_CLASS (alv_peer_server_parent_class)->finalize (object);
}

static void
alv_peer_server_class_init (AlvPeerServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = alv_peer_server_dispose;
  object_class->finalize = alv_peer_server_finalize;
}

static void
alv_peer_server_init (AlvPeerServer *self)
{
  self->shared = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->waiting = g_ptr_array_new_with_free_func ((GDestroyNotify) upload_unref);
  self->waiters = g_ptr_array_new_with_free_func ((GDestroyNotify) waiter_free);
  self->uploads = g_hash_table_new_full (g_direct_hash, g_direct_equal,
                                         (GDestroyNotify) upload_unref, NULL);
  self->max_uploads = ALV_PEER_SERVER_DEFAULT_MAX_UPLOADS;
  self->header_timeout = DEFAULT_HEADER_TIMEOUT;
  self->max_per_address = ALV_PEER_SERVER_MAX_CONNECTIONS_PER_ADDRESS;
}

/**
 * alv_peer_server_new:
 * @store: the block store to serve from
 *
 * Creates a peer server that shares nothing yet and listens nowhere; see
 * alv_peer_server_listen() and alv_peer_server_share().
 *
 * Returns: (transfer full): a new #AlvPeerServer
 */
AlvPeerServer *
alv_peer_server_new (AlvBlockStore *store)
{
  AlvPeerServer *self;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);

  self = g_object_new (ALV_TYPE_PEER_SERVER, NULL);
  self->store = g_object_ref (store);
  self->soup = soup_server_new ("server-header", "alluvium-core/" PACKAGE_VERSION " ", NULL);
  soup_server_add_early_handler (self->soup, NULL, early_handler, self, NULL);
  soup_server_add_handler (self->soup, NULL, n2r_handler, self, NULL);
  return self;
}

/**
 * alv_peer_server_listen:
 * @server: a peer server
 * @address: an IP address literal, e.g. "0.0.0.0" or "127.0.0.1"
 * @port: the port, 0 for an ephemeral one (see alv_peer_server_get_port())
 * @error: return location for a #GError
 *
 * Starts accepting peers on @address and @port (may be called again for
 * more addresses).
 *
 * Returns: %TRUE if listening
 */
gboolean
alv_peer_server_listen (AlvPeerServer  *server,
                        const char     *address,
                        guint16         port,
                        GError        **error)
{
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) sockaddr = NULL;

  g_return_val_if_fail (ALV_IS_PEER_SERVER (server), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  inet = g_inet_address_new_from_string (address);
  if (inet == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("Peer port: “%s” is not an IP address"), address);
      return FALSE;
    }
  sockaddr = g_inet_socket_address_new (inet, port);
  if (server->listener == NULL)
    {
      const AlvListenerConfig limits = {
        .max_connections = 0,
        .max_per_address = server->max_per_address,
        .fd_share_percent = 50,
        .idle_timeout = IDLE_TIMEOUT,
        .header_timeout = server->header_timeout,
      };

      server->listener = alv_listener_new (_("Peer port"), &limits);
      if (!alv_listener_serve_soup (server->listener, server->soup, error))
        {
          g_clear_object (&server->listener);
          g_prefix_error (error, _("Peer port: "));
          return FALSE;
        }
    }
  if (!alv_listener_add_address (server->listener, sockaddr, NULL, error))
    {
      g_prefix_error (error, _("Peer port: "));
      return FALSE;
    }
  return TRUE;
}

/**
 * alv_peer_server_get_port:
 * @server: a peer server
 *
 * Returns: the port of the first listening socket, or 0 if not listening
 */
guint16
alv_peer_server_get_port (AlvPeerServer *server)
{
  g_autoptr(GSocketAddress) addr = NULL;

  g_return_val_if_fail (ALV_IS_PEER_SERVER (server), 0);

  if (server->listener == NULL)
    return 0;
  addr = alv_listener_get_address (server->listener, 0);
  if (!G_IS_INET_SOCKET_ADDRESS (addr))
    return 0;
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (addr));
}

/**
 * alv_peer_server_disconnect:
 * @server: a peer server
 *
 * Stops listening and closes every peer connection.
 */
void
alv_peer_server_disconnect (AlvPeerServer *server)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  g_clear_object (&server->listener);
  if (server->soup != NULL)
    soup_server_disconnect (server->soup);
}

/**
 * alv_peer_server_share:
 * @server: a peer server
 * @urn: a content URN
 *
 * Serves @urn to peers (what the store holds of it, once its tree is
 * stored).  An invalid URN is ignored.
 */
void
alv_peer_server_share (AlvPeerServer *server,
                       const char    *urn)
{
  char *norm;

  g_return_if_fail (ALV_IS_PEER_SERVER (server));
  g_return_if_fail (urn != NULL);

  norm = alv_urn_normalize (urn, NULL);
  if (norm != NULL)
    g_hash_table_add (server->shared, norm);
}

/**
 * alv_peer_server_unshare:
 * @server: a peer server
 * @urn: a content URN
 *
 * Stops serving @urn to new requests (bodies being sent are finished).
 */
void
alv_peer_server_unshare (AlvPeerServer *server,
                         const char    *urn)
{
  g_autofree char *norm = NULL;

  g_return_if_fail (ALV_IS_PEER_SERVER (server));
  g_return_if_fail (urn != NULL);

  norm = alv_urn_normalize (urn, NULL);
  if (norm != NULL)
    g_hash_table_remove (server->shared, norm);
}

/**
 * alv_peer_server_is_sharing:
 * @server: a peer server
 * @urn: a content URN
 *
 * Returns: whether @urn is shared
 */
gboolean
alv_peer_server_is_sharing (AlvPeerServer *server,
                            const char    *urn)
{
  g_autofree char *norm = NULL;

  g_return_val_if_fail (ALV_IS_PEER_SERVER (server), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);

  norm = alv_urn_normalize (urn, NULL);
  return norm != NULL && g_hash_table_contains (server->shared, norm);
}

/**
 * alv_peer_server_set_alt_func:
 * @server: a peer server
 * @func: (nullable): supplies other peers of a URN for `X-Alt`
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data
 *
 * Sets where `X-Alt` gossip comes from (replacing any earlier function).
 */
void
alv_peer_server_set_alt_func (AlvPeerServer        *server,
                              AlvPeerServerAltFunc  func,
                              gpointer              user_data,
                              GDestroyNotify        destroy)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  if (server->alt_destroy != NULL)
    server->alt_destroy (server->alt_data);
  server->alt_func = func;
  server->alt_data = user_data;
  server->alt_destroy = destroy;
}

/**
 * alv_peer_server_set_seen_func:
 * @server: a peer server
 * @func: (nullable): told of every requester that names its peer port
 * @user_data: data for @func (not freed)
 *
 * Sets who learns of requesting peers (`X-Listen-Port`), so that a swarm
 * knows the peers that download from it without waiting for the gateway.
 */
void
alv_peer_server_set_seen_func (AlvPeerServer         *server,
                               AlvPeerServerSeenFunc  func,
                               gpointer               user_data)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  server->seen_func = func;
  server->seen_data = user_data;
}

/**
 * alv_peer_server_set_pending_func:
 * @server: a peer server
 * @func: (nullable): what is being fetched from the origin for a URN
 * @user_data: data for @func (not freed)
 *
 * Sets where `X-Pending-Ranges` comes from.
 */
void
alv_peer_server_set_pending_func (AlvPeerServer            *server,
                                  AlvPeerServerPendingFunc  func,
                                  gpointer                  user_data)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  server->pending_func = func;
  server->pending_data = user_data;
}

/**
 * alv_peer_server_set_holders_func:
 * @server: a peer server
 * @func: (nullable): how many other peers hold a block
 * @user_data: data for @func (not freed)
 *
 * Sets how the server tells a rare block (uploaded first) from others.
 */
void
alv_peer_server_set_holders_func (AlvPeerServer            *server,
                                  AlvPeerServerHoldersFunc  func,
                                  gpointer                  user_data)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  server->holders_func = func;
  server->holders_data = user_data;
}

/**
 * alv_peer_server_set_max_uploads:
 * @server: a peer server
 * @max_uploads: the number of bodies sent at once (0 refuses every
 *   upload)
 *
 * Sets the upload slots; a request over the limit gets 503 with
 * `Retry-After`.  Uploads in progress are not interrupted.
 */
void
alv_peer_server_set_max_uploads (AlvPeerServer *server,
                                 guint          max_uploads)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  server->max_uploads = max_uploads;
}

/**
 * alv_peer_server_set_max_connections_per_address:
 * @server: a peer server not listening yet
 * @max: connections held at once from one IP address (at least 1)
 *
 * Replaces %ALV_PEER_SERVER_MAX_CONNECTIONS_PER_ADDRESS, e.g. for many
 * cores on one host, which all reach each other from 127.0.0.1.
 */
void
alv_peer_server_set_max_connections_per_address (AlvPeerServer *server,
                                                 guint          max)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));
  g_return_if_fail (server->listener == NULL);

  server->max_per_address = MAX (max, 1);
}

/**
 * alv_peer_server_set_header_timeout:
 * @server: a peer server
 * @seconds: how long a connection may take to send a request's headers
 *   (idle keep-alive time included); 0 for no limit
 *
 * Connections that send no complete request head in time are closed
 * (default 30 s), so idle or trickling peers cannot hold sockets forever.
 * Applies to requests started afterwards.
 */
void
alv_peer_server_set_header_timeout (AlvPeerServer *server,
                                    guint          seconds)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  server->header_timeout = seconds;
  if (server->listener != NULL)
    alv_listener_set_header_timeout (server->listener, seconds);
}

/**
 * alv_peer_server_get_max_uploads:
 * @server: a peer server
 *
 * Returns: the number of upload slots
 */
guint
alv_peer_server_get_max_uploads (AlvPeerServer *server)
{
  g_return_val_if_fail (ALV_IS_PEER_SERVER (server), 0);

  return server->max_uploads;
}

/**
 * alv_peer_server_set_rate_limit:
 * @server: a peer server
 * @bytes_per_second: the upload rate over all peers, 0 for no limit
 *
 * Paces body writes so that, over any second or more, about
 * @bytes_per_second bytes are sent (bursts up to a quarter second's worth).
 */
void
alv_peer_server_set_rate_limit (AlvPeerServer *server,
                                guint64        bytes_per_second)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));

  server->rate = bytes_per_second;
  server->tokens = 0;
  server->tokens_time = 0;
  if (bytes_per_second > 0)
    refill_tokens (server);
}

/**
 * alv_peer_server_get_rate_limit:
 * @server: a peer server
 *
 * Returns: the upload rate limit in bytes per second, 0 for none
 */
guint64
alv_peer_server_get_rate_limit (AlvPeerServer *server)
{
  g_return_val_if_fail (ALV_IS_PEER_SERVER (server), 0);

  return server->rate;
}

/**
 * alv_peer_server_get_stats:
 * @server: a peer server
 * @stats: (out caller-allocates): where to store the counters
 *
 * Reads the statistics.
 */
void
alv_peer_server_get_stats (AlvPeerServer      *server,
                           AlvPeerServerStats *stats)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));
  g_return_if_fail (stats != NULL);

  *stats = server->stats;
  stats->waiting = server->waiters->len;
}

/**
 * alv_peer_server_block_arrived:
 * @server: a peer server
 * @urn: the URN a block of which was stored
 *
 * Tells the server that a block of @urn was stored (or that what it
 * pulls from the origin changed): the requests waiting for a block of
 * it are answered if it is held now, or with `503` if it is no longer
 * being pulled.
 */
void
alv_peer_server_block_arrived (AlvPeerServer *server,
                               const char    *urn)
{
  g_return_if_fail (ALV_IS_PEER_SERVER (server));
  g_return_if_fail (urn != NULL);

  for (guint k = 0; k < server->waiters->len; )
    {
      Waiter *w = server->waiters->pdata[k];
      g_autoptr(AlvRangeSet) held = NULL;
      g_autoptr(AlvRangeSet) pending = NULL;

      if (strcmp (w->urn, urn) != 0)
        {
          k++;
          continue;
        }
      held = alv_block_store_get_ranges (server->store, urn);
      pending = server->pending_func != NULL ? server->pending_func (urn, server->pending_data) : NULL;
      if ((held == NULL || !alv_range_set_contains_offset (held, w->start)) &&
          pending != NULL && alv_range_set_contains_offset (pending, w->start))
        k++;    /* still on its way */
      else
        waiter_answer (w);      /* removes it */
    }
}
