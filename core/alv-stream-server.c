/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The local Icecast-compatible mount.  Responses are written by hand on
 * raw connections (from AlvListener) because Icecast answers in HTTP/1.0 style
 * with no length and no chunking and ends the body at EOF, which an HTTP
 * server library would not do.  Pushed bytes are cut into chunks that start
 * where a player can start (MP3 frame boundaries, Ogg pages, Matroska
 * Clusters that start with a keyframe); the newest burst-size bytes of
 * chunks stay in a ring for new listeners.  WebM/Matroska items are remuxed
 * into one continuous stream (alv-matroska.h) whose header every listener
 * gets first.  Every
 * listener has its own queue of chunk references (shared, not copied) with
 * the ICY metadata blocks interleaved, and at most one write in flight; a
 * listener whose queue grows past queue-size is dropped, so nobody ever
 * waits for the slowest.  See doc/local-stream.md.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-stream-server.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-clock.h"
#include "alv-error.h"
#include "alv-icy.h"
#include "alv-listener.h"
#include "alv-matroska.h"
#include "alv-mp3.h"
#include "alv-ogg.h"

/* MP3 frames are grouped into chunks of about this size */
#define MP3_CHUNK_SIZE 8192
/* pass-through formats are cut into chunks of at most this size */
#define RAW_CHUNK_SIZE 16384
/* Ogg header pages kept for late joiners (Vorbis comments may hold art) */
#define MAX_OGG_HEADERS (4 * 1024 * 1024)
/* buffers handed to one writev */
#define MAX_VECS 16

typedef struct
{
  GBytes *bytes;
  guint64 offset;    /* stream offset of the first byte */
  guint item;        /* sequence number of the item it belongs to */
  gboolean sync;     /* a listener may start here */
  gboolean link_start; /* first page of an Ogg link (item); a Matroska header */
  GRefString *title; /* StreamTitle in effect, nullable */
} Chunk;

typedef enum
{
  LISTENER_READING,   /* reading the request */
  LISTENER_WAITING,   /* GET accepted, no content type known yet */
  LISTENER_STREAMING, /* receiving live data */
  LISTENER_CLOSING,   /* flushing a final response, then closed */
} ListenerState;

typedef struct
{
  grefcount ref;
  AlvStreamServer *server; /* NULL once removed */
  guint id;
  GSocketConnection *conn;
  GCancellable *cancellable;
  guint timeout_id;
  ListenerState state;
  guint8 request[ALV_ICY_MAX_REQUEST_SIZE];
  gsize request_len;
  guint8 scratch[512];
  gboolean counted;   /* announced with listener-added */
  gboolean head_only;
  gboolean icy;
  guint meta_left;
  gboolean title_sent;
  char *last_title;
  GQueue queue;       /* GBytes */
  gsize queued;
  gboolean need_header; /* Matroska: the stream header is not queued yet */
  gboolean wait_sync;   /* Matroska: no chunk is queued until a sync chunk */
  gboolean writing;
  guint n_inflight;
  GOutputVector vecs[MAX_VECS];
} Listener;

struct _AlvStreamServer
{
  GObject parent_instance;

  char *mount;
  char *name;
  char *description;
  char *genre;
  char *url;
  guint bitrate;
  char *content_type;
  AlvStreamFormat format;
  guint burst_size;
  guint queue_size;
  guint max_listeners;
  guint request_timeout;

  AlvListener *service;
  guint16 port;
  GPtrArray *listeners;  /* Listener*, owned */
  guint next_id;
  guint n_listeners;
  guint n_dropped;
  guint64 bytes_pushed;

  guint item;
  GRefString *title;
  guint64 offset;        /* stream offset of the next chunk */
  GQueue ring;           /* Chunk* */
  gsize ring_bytes;
  guint ring_syncs;      /* sync chunks in the ring */

  /* MP3 framing */
  GByteArray *pending;
  gboolean mp3_synced;
  AlvMp3Frame mp3_last;
  gboolean check_id3;
  guint64 id3_skip;

  /* Ogg framing */
  AlvOggScanner *ogg;
  GPtrArray *ogg_headers; /* GBytes pages of the current link */
  gsize ogg_headers_size;
  gboolean ogg_link_pending;
  /* serial numbers on the wire: the previous link's, the current link's,
   * and the current link's renumberings (see remap_serial) */
  guint32 prev_serials[ALV_OGG_MAX_STREAMS];
  guint n_prev_serials;
  guint32 cur_serials[ALV_OGG_MAX_STREAMS];
  guint n_cur_serials;
  struct { guint32 from, to; } remap[ALV_OGG_MAX_STREAMS];
  guint n_remap;

  /* Matroska: one stream made of the items, and its header */
  AlvMatroskaRemuxer *mkv;
  GBytes *mkv_header;
  guint64 mkv_header_offset;
};

enum
{
  PROP_0,
  PROP_MOUNT,
  PROP_NAME,
  PROP_DESCRIPTION,
  PROP_GENRE,
  PROP_URL,
  PROP_BITRATE,
  PROP_CONTENT_TYPE,
  PROP_BURST_SIZE,
  PROP_QUEUE_SIZE,
  PROP_MAX_LISTENERS,
  PROP_REQUEST_TIMEOUT,
  PROP_N_LISTENERS,
  N_PROPS
};

static GParamSpec *props[N_PROPS];

enum
{
  SIGNAL_LISTENER_ADDED,
  SIGNAL_LISTENER_REMOVED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AlvStreamServer, alv_stream_server, G_TYPE_OBJECT)

static void listener_remove (Listener *l, gboolean dropped);
static void listener_kick (Listener *l);

static void
chunk_free (Chunk *chunk)
{
  g_bytes_unref (chunk->bytes);
  g_clear_pointer (&chunk->title, g_ref_string_release);
  g_free (chunk);
}

static Listener *
listener_ref (Listener *l)
{
  g_ref_count_inc (&l->ref);
  return l;
}

static void
listener_unref (Listener *l)
{
  if (!g_ref_count_dec (&l->ref))
    return;
  g_queue_clear_full (&l->queue, (GDestroyNotify) g_bytes_unref);
  g_clear_object (&l->conn);
  g_clear_object (&l->cancellable);
  g_free (l->last_title);
  g_free (l);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Listener, listener_unref)

static gboolean
format_has_metaint (AlvStreamFormat format)
{
  return format == ALV_STREAM_FORMAT_MP3 || format == ALV_STREAM_FORMAT_AAC;
}

/* ---- writing ------------------------------------------------------------ */

static void
listener_queue_bytes (Listener *l,
                      GBytes   *bytes)
{
  if (g_bytes_get_size (bytes) == 0)
    {
      g_bytes_unref (bytes);
      return;
    }
  l->queued += g_bytes_get_size (bytes);
  g_queue_push_tail (&l->queue, bytes);
}

static GBytes *
listener_metadata (Listener   *l,
                   const char *title)
{
  if (title == NULL || (l->title_sent && g_strcmp0 (title, l->last_title) == 0))
    return alv_icy_metadata_block (NULL);
  g_free (l->last_title);
  l->last_title = g_strdup (title);
  l->title_sent = TRUE;
  return alv_icy_metadata_block (title);
}

/* Queues @chunk for @l, interleaving a metadata block every METAINT bytes
 * of audio when the listener asked for them. */
static void
listener_queue_chunk (Listener    *l,
                      const Chunk *chunk)
{
  gsize size = g_bytes_get_size (chunk->bytes);
  gsize off = 0;

  if (!l->icy)
    {
      listener_queue_bytes (l, g_bytes_ref (chunk->bytes));
      return;
    }
  while (off < size)
    {
      gsize take = MIN (size - off, l->meta_left);

      if (take == size)
        listener_queue_bytes (l, g_bytes_ref (chunk->bytes));
      else
        listener_queue_bytes (l, g_bytes_new_from_bytes (chunk->bytes, off, take));
      off += take;
      l->meta_left -= (guint) take;
      if (l->meta_left == 0)
        {
          listener_queue_bytes (l, listener_metadata (l, chunk->title));
          l->meta_left = ALV_ICY_METAINT;
        }
    }
}

static void
write_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(Listener) l = user_data;
  g_autoptr(GError) error = NULL;
  gsize written = 0;

  l->writing = FALSE;
  if (!g_output_stream_writev_all_finish (G_OUTPUT_STREAM (source), result, &written, &error))
    {
      g_debug ("listener %u: write failed: %s", l->id, error->message);
      listener_remove (l, FALSE);
      return;
    }
  for (guint i = 0; i < l->n_inflight; i++)
    {
      GBytes *bytes = g_queue_pop_head (&l->queue);

      l->queued -= g_bytes_get_size (bytes);
      g_bytes_unref (bytes);
    }
  l->n_inflight = 0;
  if (l->server == NULL)
    return;
  if (g_queue_is_empty (&l->queue) && l->state == LISTENER_CLOSING)
    {
      listener_remove (l, FALSE);
      return;
    }
  listener_kick (l);
}

/* Starts a write of the queue's head if none is in flight. */
static void
listener_kick (Listener *l)
{
  guint n = 0;

  if (l->writing || l->server == NULL || g_queue_is_empty (&l->queue))
    return;
  for (GList *link = l->queue.head; link != NULL && n < MAX_VECS; link = link->next, n++)
    {
      gsize size;

      l->vecs[n].buffer = g_bytes_get_data (link->data, &size);
      l->vecs[n].size = size;
    }
  l->n_inflight = n;
  l->writing = TRUE;
  g_output_stream_writev_all_async (g_io_stream_get_output_stream (G_IO_STREAM (l->conn)),
                                    l->vecs, n, G_PRIORITY_DEFAULT, l->cancellable,
                                    write_cb, listener_ref (l));
}

/* ---- listeners ------------------------------------------------------------ */

static void
listener_remove (Listener *l,
                 gboolean  dropped)
{
  AlvStreamServer *self = l->server;
  GSocket *socket;

  if (self == NULL)
    return;
  l->server = NULL;
  g_clear_handle_id (&l->timeout_id, g_source_remove);
  g_cancellable_cancel (l->cancellable);
  /* FIN now; the stream itself closes when the last operation lets go */
  socket = g_socket_connection_get_socket (l->conn);
  g_socket_shutdown (socket, FALSE, TRUE, NULL);

  if (dropped)
    self->n_dropped++;
  if (l->counted)
    {
      self->n_listeners--;
      g_signal_emit (self, signals[SIGNAL_LISTENER_REMOVED], 0, l->id, dropped);
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_LISTENERS]);
    }
  g_ptr_array_remove (self->listeners, l);
}

static gboolean
closing_timeout_cb (gpointer user_data)
{
  Listener *l = user_data;

  l->timeout_id = 0;
  g_debug ("listener %u: not flushed in time", l->id);
  listener_remove (l, FALSE);
  return G_SOURCE_REMOVE;
}

/* The listener gets what is queued for it, then EOF; a client that does not
 * take it within request-timeout seconds is cut off. */
static void
listener_close_after_flush (Listener *l)
{
  l->state = LISTENER_CLOSING;
  g_clear_handle_id (&l->timeout_id, g_source_remove);
  l->timeout_id = g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, l->server->request_timeout,
                                              closing_timeout_cb, listener_ref (l),
                                              (GDestroyNotify) listener_unref);
  listener_kick (l);
}

static void
listener_respond_error (Listener   *l,
                        guint       status,
                        const char *reason,
                        const char *extra_headers)
{
  g_autofree char *date = alv_http_date_format (g_get_real_time () / G_USEC_PER_SEC);
  g_autofree char *body = g_strdup_printf ("%u %s\n", status, reason);
  GString *s = g_string_new (NULL);

  g_string_append_printf (s, "HTTP/1.0 %u %s\r\n", status, reason);
  g_string_append_printf (s, "Date: %s\r\n", date);
  g_string_append (s, "Server: " PACKAGE_NAME "/" PACKAGE_VERSION "\r\n");
  g_string_append (s, "Content-Type: text/plain; charset=utf-8\r\n");
  g_string_append_printf (s, "Content-Length: %zu\r\n", strlen (body));
  g_string_append (s, "Cache-Control: no-cache, no-store\r\n");
  if (extra_headers != NULL)
    g_string_append (s, extra_headers);
  g_string_append (s, "Connection: close\r\n\r\n");
  if (!l->head_only)
    g_string_append (s, body);
  listener_queue_bytes (l, g_string_free_to_bytes (s));
  listener_close_after_flush (l);
}

static GBytes *
response_head (AlvStreamServer *self,
               Listener        *l)
{
  g_autofree char *date = alv_http_date_format (g_get_real_time () / G_USEC_PER_SEC);
  g_autofree char *content_type = alv_icy_header_value (self->content_type);
  GString *s = g_string_new ("HTTP/1.0 200 OK\r\n");
  const struct { const char *name; const char *value; } icy[] = {
    { "icy-name", self->name },
    { "icy-description", self->description },
    { "icy-genre", self->genre },
    { "icy-url", self->url },
  };

  g_string_append_printf (s, "Date: %s\r\n", date);
  g_string_append (s, "Server: " PACKAGE_NAME "/" PACKAGE_VERSION "\r\n");
  g_string_append_printf (s, "Content-Type: %s\r\n", content_type);
  for (gsize i = 0; i < G_N_ELEMENTS (icy); i++)
    {
      g_autofree char *value = alv_icy_header_value (icy[i].value);

      if (value[0] != '\0')
        g_string_append_printf (s, "%s: %s\r\n", icy[i].name, value);
    }
  if (self->bitrate > 0)
    g_string_append_printf (s, "icy-br: %u\r\n", self->bitrate);
  g_string_append (s, "icy-pub: 0\r\n");
  if (l->icy)
    g_string_append_printf (s, "icy-metaint: %u\r\n", ALV_ICY_METAINT);
  g_string_append (s, "Cache-Control: no-cache, no-store\r\n");
  g_string_append (s, "Pragma: no-cache\r\n");
  g_string_append (s, "Expires: Mon, 26 Jul 1997 05:00:00 GMT\r\n");
  g_string_append (s, "Connection: close\r\n\r\n");
  return g_string_free_to_bytes (s);
}

/* Picks where a new listener starts: the earliest chunk a player can start
 * on that still lies within the burst size of the newest byte; for Ogg only
 * chunks of the current item count.  Returns the ring link or NULL. */
static GList *
burst_start (AlvStreamServer *self)
{
  guint64 end = self->offset;
  GList *latest_sync = NULL;

  if (self->burst_size == 0)
    return NULL;
  for (GList *link = self->ring.head; link != NULL; link = link->next)
    {
      Chunk *c = link->data;

      if (!c->sync)
        continue;
      if (self->format == ALV_STREAM_FORMAT_OGG && c->item != self->item)
        continue;
      if (self->format == ALV_STREAM_FORMAT_MATROSKA && c->offset < self->mkv_header_offset)
        continue;
      if (end - c->offset <= self->burst_size)
        return link;
      latest_sync = link;
    }
  return latest_sync;
}

static void
listener_start_stream (AlvStreamServer *self,
                       Listener        *l)
{
  GList *start;

  l->icy = l->icy && format_has_metaint (self->format);
  l->meta_left = ALV_ICY_METAINT;
  listener_queue_bytes (l, response_head (self, l));
  if (l->head_only)
    {
      listener_close_after_flush (l);
      return;
    }
  l->state = LISTENER_STREAMING;

  start = burst_start (self);
  if (self->format == ALV_STREAM_FORMAT_MATROSKA)
    {
      /* the stream header, then a Cluster that starts with a keyframe:
       * from the burst, or else the next one */
      l->need_header = self->mkv_header == NULL;
      if (!l->need_header)
        listener_queue_bytes (l, g_bytes_ref (self->mkv_header));
      l->wait_sync = start == NULL;
    }
  else if (self->format == ALV_STREAM_FORMAT_OGG
      && (start == NULL || !((Chunk *) start->data)->link_start))
    {
      /* a late joiner first gets the current link's header pages */
      for (guint i = 0; i < self->ogg_headers->len; i++)
        listener_queue_bytes (l, g_bytes_ref (self->ogg_headers->pdata[i]));
    }
  for (GList *link = start; link != NULL; link = link->next)
    listener_queue_chunk (l, link->data);
  listener_kick (l);
}

static void
drain_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(Listener) l = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);

  if (l->server == NULL)
    return;
  if (n <= 0)
    {
      g_debug ("listener %u: connection closed by the client", l->id);
      listener_remove (l, FALSE);
      return;
    }
  /* whatever a player sends after its request is ignored */
  g_input_stream_read_async (G_INPUT_STREAM (source), l->scratch, sizeof l->scratch,
                             G_PRIORITY_DEFAULT, l->cancellable, drain_cb, listener_ref (l));
}

static void
listener_handle_request (Listener *l,
                         gsize     head_len)
{
  AlvStreamServer *self = l->server;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvIcyRequest) request = NULL;

  g_clear_handle_id (&l->timeout_id, g_source_remove);
  request = alv_icy_request_parse (l->request, head_len, &error);
  if (request == NULL)
    {
      g_debug ("listener %u: bad request: %s", l->id, error->message);
      listener_respond_error (l, 400, "Bad Request", NULL);
      return;
    }
  l->head_only = request->method == ALV_ICY_METHOD_HEAD;
  if (request->method == ALV_ICY_METHOD_OTHER)
    {
      listener_respond_error (l, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n");
      return;
    }
  if (strcmp (request->path, self->mount) != 0)
    {
      listener_respond_error (l, 404, "Not Found", NULL);
      return;
    }
  if (!l->head_only && self->n_listeners >= self->max_listeners)
    {
      listener_respond_error (l, 503, "Service Unavailable", NULL);
      return;
    }
  l->icy = request->icy_metadata;
  g_debug ("listener %u: %s %s (%s)%s", l->id, l->head_only ? "HEAD" : "GET",
           request->path, request->user_agent ? request->user_agent : "no agent",
           l->icy ? " with metadata" : "");

  if (!l->head_only)
    {
      l->counted = TRUE;
      self->n_listeners++;
      g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (l->conn)),
                                 l->scratch, sizeof l->scratch, G_PRIORITY_DEFAULT,
                                 l->cancellable, drain_cb, listener_ref (l));
    }
  if (self->content_type == NULL)
    l->state = LISTENER_WAITING;
  else
    listener_start_stream (self, l);
  if (l->counted)
    {
      g_signal_emit (self, signals[SIGNAL_LISTENER_ADDED], 0, l->id);
      g_object_notify_by_pspec (G_OBJECT (self), props[PROP_N_LISTENERS]);
    }
}

static void
read_request_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(Listener) l = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  gssize end;

  if (l->server == NULL)
    return;
  if (n <= 0)
    {
      listener_remove (l, FALSE);
      return;
    }
  /* only the new bytes (and the 2 before them) can complete the head */
  {
    gsize from = l->request_len >= 3 ? l->request_len - 3 : 0;

    l->request_len += (gsize) n;
    end = alv_icy_request_find_end (l->request + from, l->request_len - from);
    if (end >= 0)
      end += (gssize) from;
  }
  if (end >= 0)
    {
      listener_handle_request (l, (gsize) end);
      return;
    }
  if (l->request_len == sizeof l->request)
    {
      g_clear_handle_id (&l->timeout_id, g_source_remove);
      listener_respond_error (l, 400, "Bad Request", NULL);
      return;
    }
  g_input_stream_read_async (G_INPUT_STREAM (source), l->request + l->request_len,
                             sizeof l->request - l->request_len, G_PRIORITY_DEFAULT,
                             l->cancellable, read_request_cb, listener_ref (l));
}

static gboolean
request_timeout_cb (gpointer user_data)
{
  Listener *l = user_data;

  l->timeout_id = 0;
  g_debug ("listener %u: request timed out", l->id);
  listener_remove (l, FALSE);
  return G_SOURCE_REMOVE;
}

static void
incoming_cb (AlvListener       *listener G_GNUC_UNUSED,
             GSocketConnection *conn,
             gpointer           user_data)
{
  AlvStreamServer *self = user_data;
  Listener *l;

  /* connections still reading their request are bounded too */
  if (self->listeners->len >= 2 * (gsize) self->max_listeners + 16)
    return; /* dropping our reference closes it */

  l = g_new0 (Listener, 1);
  g_ref_count_init (&l->ref);
  l->server = self;
  l->id = ++self->next_id;
  l->conn = g_object_ref (conn);
  l->cancellable = g_cancellable_new ();
  l->state = LISTENER_READING;
  g_queue_init (&l->queue);
  g_ptr_array_add (self->listeners, l);
  l->timeout_id = g_timeout_add_seconds_full (G_PRIORITY_DEFAULT, self->request_timeout,
                                              request_timeout_cb, listener_ref (l),
                                              (GDestroyNotify) listener_unref);
  g_input_stream_read_async (g_io_stream_get_input_stream (G_IO_STREAM (conn)),
                             l->request, sizeof l->request, G_PRIORITY_DEFAULT,
                             l->cancellable, read_request_cb, listener_ref (l));
}

/* ---- feeding ------------------------------------------------------------- */

/* Appends a chunk to the ring and to every streaming listener's queue,
 * dropping listeners whose queue overflows. */
static void
emit_chunk (AlvStreamServer *self,
            GBytes          *bytes,
            gboolean         sync,
            gboolean         link_start)
{
  Chunk *chunk;

  if (g_bytes_get_size (bytes) == 0)
    {
      g_bytes_unref (bytes);
      return;
    }
  chunk = g_new0 (Chunk, 1);
  chunk->bytes = bytes;
  chunk->offset = self->offset;
  chunk->item = self->item;
  chunk->sync = sync;
  chunk->link_start = link_start;
  chunk->title = self->title != NULL ? g_ref_string_acquire (self->title) : NULL;
  self->offset += g_bytes_get_size (bytes);

  g_queue_push_tail (&self->ring, chunk);
  self->ring_bytes += g_bytes_get_size (bytes);
  self->ring_syncs += sync;
  while (self->ring.length > 1)
    {
      Chunk *head = g_queue_peek_head (&self->ring);
      gsize head_size = g_bytes_get_size (head->bytes);

      if (self->ring_bytes - head_size < self->burst_size)
        break;
      /* a video stream keeps its newest keyframe (within reason): a new
       * listener starts there rather than wait for the next one */
      if (self->format == ALV_STREAM_FORMAT_MATROSKA && head->sync && self->ring_syncs == 1
          && self->ring_bytes <= self->queue_size / 2)
        break;
      self->ring_bytes -= head_size;
      self->ring_syncs -= head->sync;
      chunk_free (g_queue_pop_head (&self->ring));
    }

  for (guint i = self->listeners->len; i > 0; i--)
    {
      Listener *l = self->listeners->pdata[i - 1];

      if (l->state != LISTENER_STREAMING)
        continue;
      if (self->format == ALV_STREAM_FORMAT_MATROSKA && link_start)
        l->need_header = FALSE;
      else if (l->need_header || (l->wait_sync && !sync))
        continue;
      l->wait_sync = FALSE;
      listener_queue_chunk (l, chunk);
      if (l->queued > self->queue_size)
        {
          g_debug ("listener %u: %zu bytes behind, dropped", l->id, l->queued);
          listener_remove (l, TRUE);
          continue;
        }
      listener_kick (l);
    }
}

static void
emit_raw (AlvStreamServer *self,
          GBytes          *data,
          gboolean         sync)
{
  gsize size = g_bytes_get_size (data);

  for (gsize off = 0; off < size; off += RAW_CHUNK_SIZE)
    emit_chunk (self, g_bytes_new_from_bytes (data, off, MIN (RAW_CHUNK_SIZE, size - off)),
                sync, FALSE);
}

static gboolean
serial_in (const guint32 *set,
           guint          n,
           guint32        serial)
{
  for (guint i = 0; i < n; i++)
    if (set[i] == serial)
      return TRUE;
  return FALSE;
}

/* Two consecutive links that share a serial number (the same file played
 * twice, or an encoder with fixed serials) do not chain: a demuxer sees the
 * second BOS as a duplicate stream.  Such a link's pages are renumbered (and
 * their CRC recomputed) before anyone sees them.  Returns @page's bytes,
 * possibly rewritten. */
static GBytes *
remap_serial (AlvStreamServer *self,
              GBytes          *bytes,
              AlvOggPage      *page)
{
  gsize size;
  guint8 *data;

  if (page->new_link)
    {
      memcpy (self->prev_serials, self->cur_serials, sizeof self->cur_serials);
      self->n_prev_serials = self->n_cur_serials;
      self->n_cur_serials = 0;
      self->n_remap = 0;
    }
  if ((page->flags & ALV_OGG_PAGE_BOS) && self->n_cur_serials < ALV_OGG_MAX_STREAMS)
    {
      guint32 wire = page->serial;

      if (serial_in (self->prev_serials, self->n_prev_serials, wire) && self->n_remap < ALV_OGG_MAX_STREAMS)
        {
          do
            wire = wire * 1103515245u + 12345u;
          while (serial_in (self->prev_serials, self->n_prev_serials, wire)
                 || serial_in (self->cur_serials, self->n_cur_serials, wire));
          self->remap[self->n_remap].from = page->serial;
          self->remap[self->n_remap].to = wire;
          self->n_remap++;
        }
      self->cur_serials[self->n_cur_serials++] = wire;
    }
  for (guint i = 0; i < self->n_remap; i++)
    {
      if (self->remap[i].from != page->serial)
        continue;
      data = g_bytes_unref_to_data (bytes, &size);
      if (!alv_ogg_page_set_serial (data, size, self->remap[i].to))
        g_return_val_if_reached (g_bytes_new_take (data, size));
      page->serial = self->remap[i].to;
      return g_bytes_new_take (data, size);
    }
  return bytes;
}

/* Where a late joiner can start (after the link's header pages): a data
 * page that does not continue a packet; in a link with video, only a
 * page where a Theora keyframe begins, so that the picture starts whole
 * (never in the middle of a group of pictures). */
static gboolean
ogg_page_is_sync (AlvStreamServer  *self,
                  const AlvOggPage *page)
{
  if (page->is_header)
    return FALSE;
  if (alv_ogg_scanner_has_video (self->ogg))
    return page->keyframe;
  return !(page->flags & ALV_OGG_PAGE_CONTINUED);
}

static void
push_ogg (AlvStreamServer *self,
          GBytes          *data)
{
  gsize size;
  const guint8 *p = g_bytes_get_data (data, &size);

  alv_ogg_scanner_push (self->ogg, p, size);
  for (;;)
    {
      AlvOggPage page;
      GBytes *bytes = alv_ogg_scanner_pop_page (self->ogg, &page);
      gboolean link_start = FALSE;

      if (bytes == NULL)
        break;
      bytes = remap_serial (self, bytes, &page);
      if (page.new_link)
        {
          /* a new chained stream: its headers replace the old ones */
          g_ptr_array_set_size (self->ogg_headers, 0);
          self->ogg_headers_size = 0;
          link_start = TRUE;
          if (!self->ogg_link_pending)
            self->item++; /* a link change inside one item */
          self->ogg_link_pending = FALSE;
        }
      if (page.is_header && self->ogg_headers_size + page.length <= MAX_OGG_HEADERS)
        {
          g_ptr_array_add (self->ogg_headers, g_bytes_ref (bytes));
          self->ogg_headers_size += page.length;
        }
      emit_chunk (self, bytes, link_start || ogg_page_is_sync (self, &page), link_start);
    }
}

/* Matroska: the remuxer's pieces as chunks.  A stream header whose tracks
 * differ from the previous one's cannot be spliced on: the listeners are
 * closed (as for a change of format) and new ones get the new header. */
static void
drain_matroska (AlvStreamServer *self)
{
  GBytes *bytes;
  AlvMatroskaPiece piece;

  while ((bytes = alv_matroska_remuxer_pop (self->mkv, &piece)) != NULL)
    {
      switch (piece.kind)
        {
        case ALV_MATROSKA_PIECE_HEADER:
          if (piece.new_stream)
            {
              g_debug ("the item's tracks differ from the stream's: closing listeners");
              alv_stream_server_disconnect_all (self);
            }
          g_clear_pointer (&self->mkv_header, g_bytes_unref);
          self->mkv_header = g_bytes_ref (bytes);
          self->mkv_header_offset = self->offset;
          emit_chunk (self, bytes, FALSE, TRUE);
          break;
        case ALV_MATROSKA_PIECE_CLUSTER:
          emit_chunk (self, bytes, piece.keyframe, FALSE);
          break;
        case ALV_MATROSKA_PIECE_DATA:
        default:
          emit_chunk (self, bytes, FALSE, FALSE);
          break;
        }
    }
}

static void
push_matroska (AlvStreamServer *self,
               GBytes          *data)
{
  gsize size;
  const guint8 *p = g_bytes_get_data (data, &size);

  alv_matroska_remuxer_push (self->mkv, p, size);
  drain_matroska (self);
}

/* MP3: chunks of whole frames starting on a frame header (sync points);
 * ID3v2 tags at the start of an item and ID3v1 tags are dropped, anything
 * else between frames goes out as non-sync chunks; a partial frame waits
 * in pending for its end.  @done is how much of pending was consumed, so
 * pending moves once per push, however many chunks it gives. */
static void
push_mp3 (AlvStreamServer *self,
          GBytes          *data)
{
  gsize size;
  const guint8 *p = g_bytes_get_data (data, &size);
  gsize done = 0;

  if (self->id3_skip > 0)
    {
      gsize n = (gsize) MIN (self->id3_skip, size);

      self->id3_skip -= n;
      p += n;
      size -= n;
    }
  g_byte_array_append (self->pending, p, (guint) size);
  if (self->check_id3)
    {
      gsize tag;

      if (self->pending->len < 10)
        return;
      self->check_id3 = FALSE;
      tag = alv_mp3_id3v2_size (self->pending->data, self->pending->len);
      if (tag > 0)
        {
          gsize n = MIN (tag, self->pending->len);

          g_byte_array_remove_range (self->pending, 0, (guint) n);
          self->id3_skip = tag - n;
        }
    }

  for (;;)
    {
      const guint8 *d = self->pending->data + done;
      gsize len = self->pending->len - done;
      AlvMp3Frame f;

      if (self->mp3_synced)
        {
          gsize frames = 0;

          while (frames + 4 <= len && frames < MP3_CHUNK_SIZE
                 && alv_mp3_frame_parse (d + frames, len - frames, &f)
                 && alv_mp3_frames_compatible (&self->mp3_last, &f)
                 && frames + f.length <= len)
            {
              frames += f.length;
              self->mp3_last = f;
            }
          if (frames > 0)
            {
              emit_chunk (self, g_bytes_new (d, frames), TRUE, FALSE);
              done += frames;
              continue;
            }
          if (len >= 4 && (!alv_mp3_frame_parse (d, len, &f) || !alv_mp3_frames_compatible (&self->mp3_last, &f)))
            {
              self->mp3_synced = FALSE;
              continue;
            }
          break; /* a partial frame */
        }
      else
        {
          gsize off = 0;
          gboolean found;

          /* an ID3v1 tag (128 bytes, "TAG") ends an item: not audio */
          if (len > 0 && memcmp (d, "TAG", MIN (len, 3)) == 0)
            {
              if (len < 128)
                break;
              done += 128;
              continue;
            }
          found = alv_mp3_find_sync (d, len, FALSE, &off);
          if (off > 0)
            emit_chunk (self, g_bytes_new (d, off), FALSE, FALSE);
          done += off;
          if (!found)
            break;
          alv_mp3_frame_parse (d + off, len - off, &self->mp3_last);
          self->mp3_synced = TRUE;
        }
    }
  g_byte_array_remove_range (self->pending, 0, (guint) done);
}

/**
 * alv_stream_server_push:
 * @server: a server
 * @data: the next bytes of the current item
 *
 * Feeds verified bytes, in play order, at the pace they should be heard
 * (the server forwards, it does not pace).  Listeners get them at once;
 * a listener more than queue-size bytes behind is dropped.
 */
void
alv_stream_server_push (AlvStreamServer *server,
                        GBytes          *data)
{
  g_return_if_fail (ALV_IS_STREAM_SERVER (server));
  g_return_if_fail (data != NULL);

  server->bytes_pushed += g_bytes_get_size (data);
  switch (server->format)
    {
    case ALV_STREAM_FORMAT_OGG:
      push_ogg (server, data);
      break;
    case ALV_STREAM_FORMAT_MP3:
      push_mp3 (server, data);
      break;
    case ALV_STREAM_FORMAT_MATROSKA:
      push_matroska (server, data);
      break;
    case ALV_STREAM_FORMAT_AAC:
    case ALV_STREAM_FORMAT_OTHER:
    default:
      emit_raw (server, data, TRUE);
      break;
    }
}

static void
set_title (AlvStreamServer *self,
           const char      *title,
           const char      *artist)
{
  g_autofree char *formatted = alv_icy_format_title (artist, title);

  g_clear_pointer (&self->title, g_ref_string_release);
  self->title = g_ref_string_new (formatted);
}

/**
 * alv_stream_server_set_title:
 * @server: a server
 * @title: (nullable): the title now playing
 * @artist: (nullable): its artist
 *
 * Changes the StreamTitle sent with the bytes pushed from now on.
 */
void
alv_stream_server_set_title (AlvStreamServer *server,
                             const char      *title,
                             const char      *artist)
{
  g_return_if_fail (ALV_IS_STREAM_SERVER (server));
  set_title (server, title, artist);
}

/**
 * alv_stream_server_begin_item:
 * @server: a server
 * @content_type: the item's media type
 * @title: (nullable): its title
 * @artist: (nullable): its artist
 *
 * Marks the start of an item: what was pushed before is finished (a
 * trailing partial frame or page is flushed or dropped), the title
 * changes, and an Ogg item becomes a new chained stream (its own header
 * pages, which the item's bytes start with).  A WebM/Matroska item's
 * Clusters continue the stream (its header is dropped when its tracks
 * match).  The first item fixes the mount's content type unless the
 * content-type property was set; an item of another format closes current
 * listeners (players cannot follow).
 */
void
alv_stream_server_begin_item (AlvStreamServer *server,
                              const char      *content_type,
                              const char      *title,
                              const char      *artist)
{
  AlvStreamFormat format;

  g_return_if_fail (ALV_IS_STREAM_SERVER (server));
  g_return_if_fail (content_type != NULL);

  /* finish the previous item: a trailing partial frame goes out as is */
  if (server->format == ALV_STREAM_FORMAT_MP3 && server->pending->len > 0)
    emit_chunk (server, g_bytes_new (server->pending->data, server->pending->len), FALSE, FALSE);
  g_byte_array_set_size (server->pending, 0);
  server->mp3_synced = FALSE;
  server->check_id3 = TRUE;
  server->id3_skip = 0;
  alv_ogg_scanner_reset (server->ogg);
  server->ogg_link_pending = TRUE;
  g_ptr_array_set_size (server->ogg_headers, 0);
  server->ogg_headers_size = 0;
  if (server->format == ALV_STREAM_FORMAT_MATROSKA)
    {
      /* a Cluster cut short is filled up before the next item's */
      alv_matroska_remuxer_begin_item (server->mkv);
      drain_matroska (server);
    }

  format = alv_stream_format_from_content_type (content_type);
  if (server->content_type == NULL || format != server->format)
    {
      alv_matroska_remuxer_reset (server->mkv);
      g_clear_pointer (&server->mkv_header, g_bytes_unref);
      server->mkv_header_offset = server->offset;
      if (server->content_type != NULL)
        {
          g_debug ("format changes to %s: closing listeners", content_type);
          alv_stream_server_disconnect_all (server);
        }
      g_free (server->content_type);
      server->content_type = g_strdup (content_type);
      server->format = format;
      g_object_notify_by_pspec (G_OBJECT (server), props[PROP_CONTENT_TYPE]);
    }
  server->item++;
  set_title (server, title, artist);

  for (guint i = server->listeners->len; i > 0; i--)
    {
      Listener *l = server->listeners->pdata[i - 1];

      if (l->state == LISTENER_WAITING)
        listener_start_stream (server, l);
    }
}

/**
 * alv_stream_server_disconnect_all:
 * @server: a server
 *
 * Ends every listener's response: each gets what is already queued for it
 * (within request-timeout seconds), then EOF.  The mount stays open.
 */
void
alv_stream_server_disconnect_all (AlvStreamServer *server)
{
  g_return_if_fail (ALV_IS_STREAM_SERVER (server));

  for (guint i = server->listeners->len; i > 0; i--)
    {
      Listener *l = server->listeners->pdata[i - 1];

      if (l->state == LISTENER_STREAMING && !g_queue_is_empty (&l->queue))
        listener_close_after_flush (l);
      else if (l->state != LISTENER_CLOSING)
        listener_remove (l, FALSE);
    }
}

static void
remove_all (AlvStreamServer *server)
{
  while (server->listeners->len > 0)
    listener_remove (server->listeners->pdata[server->listeners->len - 1], FALSE);
}

/* ---- life cycle ------------------------------------------------------------ */

/**
 * alv_stream_server_new:
 * @mount: the mount path, e.g. "/stream"
 *
 * Returns: (transfer full): a server, not listening yet
 */
AlvStreamServer *
alv_stream_server_new (const char *mount)
{
  g_return_val_if_fail (mount != NULL && mount[0] == '/', NULL);
  return g_object_new (ALV_TYPE_STREAM_SERVER, "mount", mount, NULL);
}

/**
 * alv_stream_server_start:
 * @server: a server
 * @port: the TCP port on 127.0.0.1, 0 for any free one
 * @error: return location for a #GError
 *
 * Starts listening (on the loopback interface only).
 *
 * Returns: %TRUE on success
 */
gboolean
alv_stream_server_start (AlvStreamServer  *server,
                         guint16           port,
                         GError          **error)
{
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(AlvListener) service = NULL;
  /* no idle timeout: a player's connection waits for a read that never
   * completes while it listens; the request timer and the queue limit
   * (listener_queue_chunk()) bound what a silent client can hold */
  const AlvListenerConfig limits = {
    .fd_share_percent = 10,
  };

  g_return_val_if_fail (ALV_IS_STREAM_SERVER (server), FALSE);
  g_return_val_if_fail (server->service == NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  address = g_inet_socket_address_new (loopback, port);
  service = alv_listener_new (_("Local stream"), &limits);
  alv_listener_set_accept_func (service, incoming_cb, server);
  if (!alv_listener_add_address (service, address, &effective, error))
    {
      g_prefix_error (error, _("Cannot listen on 127.0.0.1:%u: "), port);
      return FALSE;
    }
  server->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  server->service = g_steal_pointer (&service);
  return TRUE;
}

/**
 * alv_stream_server_stop:
 * @server: a server
 *
 * Stops listening and closes every connection.  Also done on dispose.
 */
void
alv_stream_server_stop (AlvStreamServer *server)
{
  g_return_if_fail (ALV_IS_STREAM_SERVER (server));

  if (server->service != NULL)
    {
      alv_listener_close (server->service);
      g_clear_object (&server->service);
    }
  remove_all (server);
}

/**
 * alv_stream_server_get_port:
 * @server: a started server
 *
 * Returns: the TCP port it listens on
 */
guint16
alv_stream_server_get_port (AlvStreamServer *server)
{
  g_return_val_if_fail (ALV_IS_STREAM_SERVER (server), 0);
  return server->port;
}

/**
 * alv_stream_server_get_uri:
 * @server: a started server
 *
 * Returns: (transfer full): the mount's URL, e.g. "http://127.0.0.1:8000/stream"
 */
char *
alv_stream_server_get_uri (AlvStreamServer *server)
{
  g_return_val_if_fail (ALV_IS_STREAM_SERVER (server), NULL);
  return g_strdup_printf ("http://127.0.0.1:%u%s", server->port, server->mount);
}

/**
 * alv_stream_server_get_n_listeners:
 * @server: a server
 *
 * Returns: how many GET listeners are connected
 */
guint
alv_stream_server_get_n_listeners (AlvStreamServer *server)
{
  g_return_val_if_fail (ALV_IS_STREAM_SERVER (server), 0);
  return server->n_listeners;
}

/**
 * alv_stream_server_get_bytes_pushed:
 * @server: a server
 *
 * Returns: bytes given to alv_stream_server_push() so far
 */
guint64
alv_stream_server_get_bytes_pushed (AlvStreamServer *server)
{
  g_return_val_if_fail (ALV_IS_STREAM_SERVER (server), 0);
  return server->bytes_pushed;
}

/**
 * alv_stream_server_get_n_dropped:
 * @server: a server
 *
 * Returns: how many listeners were dropped for falling behind
 */
guint
alv_stream_server_get_n_dropped (AlvStreamServer *server)
{
  g_return_val_if_fail (ALV_IS_STREAM_SERVER (server), 0);
  return server->n_dropped;
}

static void
alv_stream_server_dispose (GObject *object)
{
  AlvStreamServer *self = ALV_STREAM_SERVER (object);

  alv_stream_server_stop (self);
  G_OBJECT_CLASS (alv_stream_server_parent_class)->dispose (object);
}

static void
alv_stream_server_finalize (GObject *object)
{
  AlvStreamServer *self = ALV_STREAM_SERVER (object);

  g_ptr_array_unref (self->listeners);
  g_queue_clear_full (&self->ring, (GDestroyNotify) chunk_free);
  g_byte_array_unref (self->pending);
  alv_ogg_scanner_free (self->ogg);
  g_ptr_array_unref (self->ogg_headers);
  alv_matroska_remuxer_free (self->mkv);
  g_clear_pointer (&self->mkv_header, g_bytes_unref);
  g_clear_pointer (&self->title, g_ref_string_release);
  g_free (self->mount);
  g_free (self->name);
  g_free (self->description);
  g_free (self->genre);
  g_free (self->url);
  g_free (self->content_type);
  G_OBJECT_CLASS (alv_stream_server_parent_class)->finalize (object);
}

static void
alv_stream_server_get_property (GObject    *object,
                                guint       prop_id,
                                GValue     *value,
                                GParamSpec *pspec)
{
  AlvStreamServer *self = ALV_STREAM_SERVER (object);

  switch (prop_id)
    {
    case PROP_MOUNT:
      g_value_set_string (value, self->mount);
      break;
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_DESCRIPTION:
      g_value_set_string (value, self->description);
      break;
    case PROP_GENRE:
      g_value_set_string (value, self->genre);
      break;
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    case PROP_BITRATE:
      g_value_set_uint (value, self->bitrate);
      break;
    case PROP_CONTENT_TYPE:
      g_value_set_string (value, self->content_type);
      break;
    case PROP_BURST_SIZE:
      g_value_set_uint (value, self->burst_size);
      break;
    case PROP_QUEUE_SIZE:
      g_value_set_uint (value, self->queue_size);
      break;
    case PROP_MAX_LISTENERS:
      g_value_set_uint (value, self->max_listeners);
      break;
    case PROP_REQUEST_TIMEOUT:
      g_value_set_uint (value, self->request_timeout);
      break;
    case PROP_N_LISTENERS:
      g_value_set_uint (value, self->n_listeners);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
alv_stream_server_set_property (GObject      *object,
                                guint         prop_id,
                                const GValue *value,
                                GParamSpec   *pspec)
{
  AlvStreamServer *self = ALV_STREAM_SERVER (object);

  switch (prop_id)
    {
    case PROP_MOUNT:
      g_free (self->mount);
      self->mount = g_value_dup_string (value);
      break;
    case PROP_NAME:
      g_free (self->name);
      self->name = g_value_dup_string (value);
      break;
    case PROP_DESCRIPTION:
      g_free (self->description);
      self->description = g_value_dup_string (value);
      break;
    case PROP_GENRE:
      g_free (self->genre);
      self->genre = g_value_dup_string (value);
      break;
    case PROP_URL:
      g_free (self->url);
      self->url = g_value_dup_string (value);
      break;
    case PROP_BITRATE:
      self->bitrate = g_value_get_uint (value);
      break;
    case PROP_CONTENT_TYPE:
      g_free (self->content_type);
      self->content_type = g_value_dup_string (value);
      self->format = alv_stream_format_from_content_type (self->content_type);
      break;
    case PROP_BURST_SIZE:
      self->burst_size = g_value_get_uint (value);
      break;
    case PROP_QUEUE_SIZE:
      self->queue_size = g_value_get_uint (value);
      break;
    case PROP_MAX_LISTENERS:
      self->max_listeners = g_value_get_uint (value);
      break;
    case PROP_REQUEST_TIMEOUT:
      self->request_timeout = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
alv_stream_server_class_init (AlvStreamServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->dispose = alv_stream_server_dispose;
  object_class->finalize = alv_stream_server_finalize;
  object_class->get_property = alv_stream_server_get_property;
  object_class->set_property = alv_stream_server_set_property;

  props[PROP_MOUNT] =
    g_param_spec_string ("mount", NULL, NULL, "/stream",
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  props[PROP_NAME] = g_param_spec_string ("name", NULL, NULL, NULL, rw);
  props[PROP_DESCRIPTION] = g_param_spec_string ("description", NULL, NULL, NULL, rw);
  props[PROP_GENRE] = g_param_spec_string ("genre", NULL, NULL, NULL, rw);
  props[PROP_URL] = g_param_spec_string ("url", NULL, NULL, NULL, rw);
  props[PROP_BITRATE] =
    g_param_spec_uint ("bitrate", NULL, NULL, 0, G_MAXUINT, 0, rw); /* kbit/s, icy-br */
  props[PROP_CONTENT_TYPE] = g_param_spec_string ("content-type", NULL, NULL, NULL, rw);
  props[PROP_BURST_SIZE] =
    g_param_spec_uint ("burst-size", NULL, NULL, 0, 16 * 1024 * 1024,
                       ALV_STREAM_SERVER_DEFAULT_BURST_SIZE, rw | G_PARAM_CONSTRUCT);
  props[PROP_QUEUE_SIZE] =
    g_param_spec_uint ("queue-size", NULL, NULL, 4096, 256 * 1024 * 1024,
                       ALV_STREAM_SERVER_DEFAULT_QUEUE_SIZE, rw | G_PARAM_CONSTRUCT);
  props[PROP_MAX_LISTENERS] =
    g_param_spec_uint ("max-listeners", NULL, NULL, 1, 100000,
                       ALV_STREAM_SERVER_DEFAULT_MAX_LISTENERS, rw | G_PARAM_CONSTRUCT);
  props[PROP_REQUEST_TIMEOUT] =
    g_param_spec_uint ("request-timeout", NULL, NULL, 1, 3600,
                       ALV_STREAM_SERVER_DEFAULT_REQUEST_TIMEOUT, rw | G_PARAM_CONSTRUCT);
  props[PROP_N_LISTENERS] =
    g_param_spec_uint ("n-listeners", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, props);

  /**
   * AlvStreamServer::listener-added:
   * @id: the listener's number
   */
  signals[SIGNAL_LISTENER_ADDED] =
    g_signal_new ("listener-added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_UINT);
  /**
   * AlvStreamServer::listener-removed:
   * @id: the listener's number
   * @dropped: it was dropped for falling behind
   */
  signals[SIGNAL_LISTENER_REMOVED] =
    g_signal_new ("listener-removed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_BOOLEAN);
}

static void
alv_stream_server_init (AlvStreamServer *self)
{
  self->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_unref);
  g_queue_init (&self->ring);
  self->pending = g_byte_array_new ();
  self->check_id3 = TRUE;
  self->ogg = alv_ogg_scanner_new ();
  self->ogg_headers = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  self->mkv = alv_matroska_remuxer_new ();
}
