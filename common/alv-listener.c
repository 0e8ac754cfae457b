/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Listening sockets that survive floods; see alv-listener.h.
 *
 * Why not soup_server_listen(): libsoup's listener removes its accept
 * source the first time accept() fails, so one moment without a free
 * descriptor (EMFILE) leaves the server alive, idle and deaf for good; and
 * GSocketService answers the same failure with a warning and an immediate
 * retry, thousands a second.  Here the accept source is ours: a refused
 * accept pauses every socket of the listener for a short, growing while
 * (alv_accept_backoff_ms()) and logs one line per interval.
 *
 * A SoupServer keeps a connection alive between requests only while it
 * has a listener of its own, so it is given one that can never accept: one
 * end of a socket pair (libsoup takes a connected socket as a listener),
 * whose other end stays silent.  Our own sockets are never given to
 * libsoup, so nothing reaches the server past the caps.
 */
#define G_LOG_DOMAIN "alluvium"
#define _GNU_SOURCE 1           /* accept4() */
#include "config.h"
#include "alv-listener.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib/gi18n-lib.h>

#include "alv-conn-limits.h"
#include "alv-replay-stream.h"

#define ACCEPT_BATCH 64
#define LOG_INTERVAL (10 * G_USEC_PER_SEC)
#define REAP_INTERVAL (G_USEC_PER_SEC / 10)
#define HEADER_TIMER_KEY "alv-listener-header-timer"
#define SOCKET_KEY "alv-listener-socket"

typedef struct
{
  AlvListener *self;
  GSocket *socket;
  GSource *source;
} ListenSocket;

typedef struct
{
  AlvListener *self;
  GSocketConnection *connection;   /* weak */
  GSocket *socket;                 /* owned by @connection */
  GSocketAddress *remote;          /* the key in self->conns */
  char *address;
  gboolean released;               /* no longer counted: its client left */
} Conn;

struct _AlvListener
{
  GObject parent_instance;

  char *name;
  AlvListenerConfig config;
  AlvConnLimits *limits;
  GPtrArray *sockets;              /* ListenSocket */
  GHashTable *conns;               /* GSocketAddress (pointer) → Conn */
  gint64 last_reap;                /* when connections were last checked */
  guint failures;
  guint retry_id;
  guint64 refused;
  AlvLogLimiter accept_log;
  AlvLogLimiter refuse_log;

  SoupServer *soup;
  GSocket *placeholder_peer;       /* the silent end of libsoup's listener */
  gboolean close_each;             /* every answer closes its connection */
  AlvListenerAcceptFunc func;
  gpointer func_data;
  AlvListenerFrontFunc front;      /* sees connections before @soup */
  AlvListenerFrontReapFunc front_reap;
  gpointer front_data;
};

G_DEFINE_FINAL_TYPE (AlvListener, alv_listener, G_TYPE_OBJECT)

static void attach_sources (AlvListener *self);

static void
listen_socket_free (ListenSocket *ls)
{
  if (ls->source != NULL)
    {
      g_source_destroy (ls->source);
      g_source_unref (ls->source);
    }
  g_socket_close (ls->socket, NULL);
  g_object_unref (ls->socket);
  g_free (ls);
}

static void
conn_free (Conn *conn)
{
  g_object_unref (conn->remote);
  g_free (conn->address);
  g_free (conn);
}

/* The connection's last reference is gone: it no longer counts. */
static void
conn_gone (gpointer  data,
           GObject  *where_the_object_was G_GNUC_UNUSED)
{
  Conn *conn = data;
  AlvListener *self = conn->self;

  if (!conn->released)
    alv_conn_limits_release (self->limits, conn->address);
  g_hash_table_remove (self->conns, conn->remote);
}

/* Whether the client closed @conn.  A server does not notice that while
 * it reads nothing from it (a response it holds back, a paused upload),
 * so the connection would count against the caps for as long. */
static gboolean
client_gone (Conn *conn)
{
  GIOCondition cond = g_socket_condition_check (conn->socket, G_IO_IN | G_IO_HUP | G_IO_ERR);
  char byte;

  if (cond & (G_IO_HUP | G_IO_ERR))
    return TRUE;
  if ((cond & G_IO_IN) == 0)
    return FALSE;
  /* readable: a request, or the end of the stream */
  return recv (g_socket_get_fd (conn->socket), &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* Stops counting the connections (of @address, or all when NULL) whose
 * clients have gone, and shuts them down so that the server lets go of
 * them at its next read or write.  Returns how many. */
static guint
reap (AlvListener *self,
      const char  *address)
{
  GHashTableIter iter;
  gpointer value;
  guint n = 0;

  g_hash_table_iter_init (&iter, self->conns);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      Conn *conn = value;

      if (conn->released || (address != NULL && strcmp (conn->address, address) != 0)
          || !client_gone (conn))
        continue;
      conn->released = TRUE;
      alv_conn_limits_release (self->limits, conn->address);
      g_socket_shutdown (conn->socket, TRUE, TRUE, NULL);
      n++;
    }
  return n;
}

static void
detach_conn (gpointer key G_GNUC_UNUSED,
             gpointer value,
             gpointer user_data G_GNUC_UNUSED)
{
  Conn *conn = value;

  g_object_weak_unref (G_OBJECT (conn->connection), conn_gone, conn);
}

static void
alv_listener_dispose (GObject *object)
{
  AlvListener *self = ALV_LISTENER (object);

  alv_listener_close (self);
  g_hash_table_foreach (self->conns, detach_conn, NULL);
  g_hash_table_remove_all (self->conns);
  if (self->soup != NULL)
    g_signal_handlers_disconnect_by_data (self->soup, self);
  g_clear_object (&self->soup);
  if (self->placeholder_peer != NULL)
    g_socket_close (self->placeholder_peer, NULL);
  g_clear_object (&self->placeholder_peer);
  G_OBJECT_CLASS (alv_listener_parent_class)->dispose (object);
}

static void
alv_listener_finalize (GObject *object)
{
  AlvListener *self = ALV_LISTENER (object);

  g_hash_table_unref (self->conns);
  g_ptr_array_unref (self->sockets);
  alv_conn_limits_free (self->limits);
  g_free (self->name);
  G_OBJECT_CLASS (alv_listener_parent_class)->finalize (object);
}

static void
alv_listener_class_init (AlvListenerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = alv_listener_dispose;
  object_class->finalize = alv_listener_finalize;
}

static void
alv_listener_init (AlvListener *self)
{
  self->sockets = g_ptr_array_new_with_free_func ((GDestroyNotify) listen_socket_free);
  self->conns = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                       (GDestroyNotify) conn_free);
  self->accept_log = (AlvLogLimiter) ALV_LOG_LIMITER_INIT (LOG_INTERVAL);
  self->refuse_log = (AlvLogLimiter) ALV_LOG_LIMITER_INIT (LOG_INTERVAL);
}

/**
 * alv_listener_new:
 * @name: what the log calls it, e.g. "Peer port"
 * @config: limits and timeouts (copied)
 *
 * Returns: (transfer full): a listener with no socket yet
 */
AlvListener *
alv_listener_new (const char              *name,
                  const AlvListenerConfig *config)
{
  AlvListener *self;
  guint max_total;

  g_return_val_if_fail (name != NULL && config != NULL, NULL);

  self = g_object_new (ALV_TYPE_LISTENER, NULL);
  self->name = g_strdup (name);
  self->config = *config;
  /* a cap given explicitly is the operator's to keep under the limit */
  max_total = config->max_connections != 0
              ? config->max_connections
              : alv_conn_limits_cap_for_fd_limit (alv_get_fd_limit (),
                                                  config->fd_share_percent != 0
                                                  ? config->fd_share_percent : 50);
  self->limits = alv_conn_limits_new (max_total, config->max_per_address != 0
                                                 ? config->max_per_address : max_total);
  return self;
}

/**
 * alv_listener_set_accept_func:
 * @listener: a listener
 * @func: receives each admitted connection
 * @user_data: passed to @func
 *
 * Makes @listener hand its connections to @func (instead of a SoupServer).
 */
void
alv_listener_set_accept_func (AlvListener           *listener,
                              AlvListenerAcceptFunc  func,
                              gpointer               user_data)
{
  g_return_if_fail (ALV_IS_LISTENER (listener));
  g_return_if_fail (listener->soup == NULL);

  listener->func = func;
  listener->func_data = user_data;
}

/**
 * alv_listener_exempt_address:
 * @listener: a listener
 * @address: a client address
 *
 * Lifts the per-address cap for @address, e.g. a trusted reverse proxy.
 */
void
alv_listener_exempt_address (AlvListener  *listener,
                             GInetAddress *address)
{
  g_autofree char *text = NULL;

  g_return_if_fail (ALV_IS_LISTENER (listener));
  g_return_if_fail (G_IS_INET_ADDRESS (address));

  text = alv_listener_client_key (address);
  alv_conn_limits_exempt (listener->limits, text);
}

/* ---- SoupServer ------------------------------------------------------ */

typedef struct
{
  GSource *source;
  GSocket *socket;
} HeaderTimer;

static void
header_timer_free (gpointer data)
{
  HeaderTimer *timer = data;

  g_source_destroy (timer->source);
  g_source_unref (timer->source);
  g_object_unref (timer->socket);
  g_free (timer);
}

static gboolean
header_timeout_cb (gpointer user_data)
{
  SoupServerMessage *msg = user_data;
  HeaderTimer *timer = g_object_get_data (G_OBJECT (msg), HEADER_TIMER_KEY);

  g_debug ("a client sent no request in time; closing its connection");
  /* the server reads an end of stream and drops the connection */
  g_socket_shutdown (timer->socket, TRUE, TRUE, NULL);
  g_object_set_data (G_OBJECT (msg), HEADER_TIMER_KEY, NULL);
  return G_SOURCE_REMOVE;
}

static void
header_timer_disarm_cb (SoupServerMessage *msg,
                        gpointer           user_data G_GNUC_UNUSED)
{
  g_object_set_data (G_OBJECT (msg), HEADER_TIMER_KEY, NULL);
}

/* Whether this libsoup keeps, for the server's lifetime, every kept-alive
 * connection whose client closes it between two requests: its socket
 * stays open, half closed, and nothing reads from it again.  libsoup 3.2
 * does (fixed in 3.3.0, GNOME/libsoup commit d20c6601): a peer port
 * whose peers come and go held 700 such sockets after two minutes, and a
 * gateway would run out of descriptors.  With such a libsoup every answer
 * says "Connection: close": a new connection per request, which the
 * server closes itself. */
gboolean
alv_listener_soup_leaks_idle (void)
{
  return soup_get_major_version () == 3 && soup_get_minor_version () < 3;
}

/* A connection waits for a request: the first one, or the next one on a
 * kept-alive connection.  Its headers must arrive within the deadline. */
static void
request_started_cb (SoupServer        *server G_GNUC_UNUSED,
                    SoupServerMessage *msg,
                    AlvListener       *self)
{
  Conn *conn = g_hash_table_lookup (self->conns, soup_server_message_get_remote_address (msg));
  GSocket *socket = conn != NULL ? conn->socket : soup_server_message_get_socket (msg);
  HeaderTimer *timer;

  if (self->close_each)
    soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                  "Connection", "close");
  if (socket == NULL)
    return;
  g_object_set_data_full (G_OBJECT (msg), SOCKET_KEY, g_object_ref (socket), g_object_unref);
  if (conn == NULL && self->config.idle_timeout != 0)
    g_socket_set_timeout (socket, self->config.idle_timeout); /* accepted by libsoup */
  if (self->config.header_timeout == 0)
    return;
  timer = g_new0 (HeaderTimer, 1);
  timer->socket = g_object_ref (socket);
  timer->source = g_timeout_source_new_seconds (self->config.header_timeout);
  /* the message owns the timer and the timer does not own the message */
  g_source_set_callback (timer->source, header_timeout_cb, msg, NULL);
  g_source_set_static_name (timer->source, "[alluvium] request header deadline");
  g_source_attach (timer->source, g_main_context_get_thread_default ());
  g_object_set_data_full (G_OBJECT (msg), HEADER_TIMER_KEY, timer, header_timer_free);
  g_signal_connect (msg, "got-headers", G_CALLBACK (header_timer_disarm_cb), NULL);
  g_signal_connect (msg, "finished", G_CALLBACK (header_timer_disarm_cb), NULL);
}

/**
 * alv_listener_get_message_socket:
 * @msg: a message of a server an #AlvListener serves
 *
 * soup_server_message_get_socket() knows only connections libsoup
 * accepted itself; this knows those of an #AlvListener too.
 *
 * Returns: (transfer none) (nullable): the socket @msg came on
 */
GSocket *
alv_listener_get_message_socket (SoupServerMessage *msg)
{
  GSocket *socket;

  g_return_val_if_fail (SOUP_IS_SERVER_MESSAGE (msg), NULL);

  socket = g_object_get_data (G_OBJECT (msg), SOCKET_KEY);
  return socket != NULL ? socket : soup_server_message_get_socket (msg);
}

/**
 * alv_listener_serve_soup:
 * @listener: a listener with no socket yet
 * @server: the server that answers its connections, with no listener of
 *   its own (soup_server_get_uris() and soup_server_get_listeners() know
 *   nothing of @listener's sockets: see alv_listener_get_address())
 * @error: return location for a #GError
 *
 * Hands every admitted connection to @server, and gives each request's
 * headers the configured deadline.  With a libsoup that leaks kept-alive
 * connections closed by their clients (alv_listener_soup_leaks_idle()),
 * every answer closes its connection.
 *
 * Returns: %TRUE, or %FALSE if the server could not be set up
 */
gboolean
alv_listener_serve_soup (AlvListener  *listener,
                         SoupServer   *server,
                         GError      **error)
{
  g_autoptr(GSocket) placeholder = NULL;
  int fds[2];

  g_return_val_if_fail (ALV_IS_LISTENER (listener), FALSE);
  g_return_val_if_fail (SOUP_IS_SERVER (server), FALSE);
  g_return_val_if_fail (listener->soup == NULL && listener->func == NULL, FALSE);
  g_return_val_if_fail (listener->sockets->len == 0, FALSE);

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "socketpair: %s", g_strerror (saved));
      return FALSE;
    }
  placeholder = g_socket_new_from_fd (fds[0], error);
  if (placeholder == NULL)
    {
      close (fds[0]);
      close (fds[1]);
      return FALSE;
    }
  listener->placeholder_peer = g_socket_new_from_fd (fds[1], error);
  if (listener->placeholder_peer == NULL)
    {
      close (fds[1]);
      return FALSE;
    }
  if (!soup_server_listen_socket (server, placeholder, 0, error))
    return FALSE;
  listener->soup = g_object_ref (server);
  listener->close_each = alv_listener_soup_leaks_idle ();
  g_signal_connect (server, "request-started", G_CALLBACK (request_started_cb), listener);
  return TRUE;
}

/**
 * alv_listener_set_front:
 * @listener: a listener that serves a SoupServer
 * @func: receives each admitted connection first, as a bare descriptor
 * @front_reap: (nullable): at a cap, closes the front's connections whose
 *   clients have gone
 * @user_data: passed to @func and @front_reap
 *
 * Makes @listener give its connections to @func (a fast path such as
 * #AlvHttpFront), which closes them with alv_listener_release() or hands
 * them to the server with alv_listener_hand_over().  A client that closes
 * a connection and connects again at once is admitted at its cap even
 * when the front has not read the close yet: @front_reap looks for it.
 */
void
alv_listener_set_front (AlvListener              *listener,
                        AlvListenerFrontFunc      func,
                        AlvListenerFrontReapFunc  front_reap,
                        gpointer                  user_data)
{
  g_return_if_fail (ALV_IS_LISTENER (listener));
  g_return_if_fail (listener->soup != NULL);

  listener->front = func;
  listener->front_reap = front_reap;
  listener->front_data = user_data;
}

/**
 * alv_listener_release:
 * @listener: a listener
 * @address: the client of a connection its front closed
 *
 * Stops counting that connection.
 */
void
alv_listener_release (AlvListener *listener,
                      const char  *address)
{
  g_return_if_fail (ALV_IS_LISTENER (listener));
  g_return_if_fail (address != NULL);

  alv_conn_limits_release (listener->limits, address);
}

static void serve_admitted (AlvListener    *self,
                            GSocket        *client,
                            GSocketAddress *remote,
                            char           *address,
                            GBytes         *unread);

/**
 * alv_listener_hand_over:
 * @listener: a listener that serves a SoupServer
 * @fd: (transfer full): a connection its front took
 * @remote: the client's address
 * @address: the client as counted
 * @unread: (nullable): what the front read from @fd and did not handle
 *
 * Gives the connection to the SoupServer, as if just accepted, @unread
 * first; it goes on counting under @address until it closes.
 */
void
alv_listener_hand_over (AlvListener    *listener,
                        int             fd,
                        GSocketAddress *remote,
                        const char     *address,
                        GBytes         *unread)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) client = NULL;

  g_return_if_fail (ALV_IS_LISTENER (listener));
  g_return_if_fail (fd >= 0 && G_IS_SOCKET_ADDRESS (remote) && address != NULL);

  client = g_socket_new_from_fd (fd, &error);
  if (client == NULL)
    {
      g_debug ("%s: cannot take a connection over: %s", listener->name, error->message);
      close (fd);
      alv_conn_limits_release (listener->limits, address);
      return;
    }
  serve_admitted (listener, client, remote, g_strdup (address), unread);
}

/**
 * alv_listener_set_header_timeout:
 * @listener: a listener
 * @seconds: the new deadline for request headers (0: none)
 *
 * Applies to requests started afterwards.
 */
void
alv_listener_set_header_timeout (AlvListener *listener,
                                 guint        seconds)
{
  g_return_if_fail (ALV_IS_LISTENER (listener));
  listener->config.header_timeout = seconds;
}

/* ---- accepting ------------------------------------------------------- */

/**
 * alv_listener_client_key:
 * @inet: a client's address
 *
 * The client, as the caps count it: an IPv4 address (also when mapped
 * into IPv6), or an IPv6 /64 (one subscriber's network, which holds as
 * many addresses as it likes).
 *
 * Returns: (transfer full): the key
 */
char *
alv_listener_client_key (GInetAddress *inet)
{
  const guint8 *bytes;

  if (g_inet_address_get_family (inet) != G_SOCKET_FAMILY_IPV6 || g_inet_address_get_is_loopback (inet))
    return g_inet_address_to_string (inet);
  bytes = g_inet_address_to_bytes (inet);
  if (bytes[0] == 0 && bytes[1] == 0 && bytes[2] == 0 && bytes[3] == 0 && bytes[4] == 0
      && bytes[5] == 0 && bytes[6] == 0 && bytes[7] == 0 && bytes[8] == 0 && bytes[9] == 0
      && bytes[10] == 0xff && bytes[11] == 0xff)
    return g_strdup_printf ("%u.%u.%u.%u", bytes[12], bytes[13], bytes[14], bytes[15]);
  return g_strdup_printf ("%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", bytes[0], bytes[1],
                          bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7]);
}

static char *
address_key (GSocketAddress *remote)
{
  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return g_strdup ("local");
  return alv_listener_client_key (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
}

/* @client was refused (and is closed by the caller): count, and say so
 * now and then */
static void
refuse (AlvListener  *self,
        const char   *address,
        AlvAdmission  why)
{
  guint64 suppressed = 0;

  self->refused++;
  if (!alv_log_limiter_allow (&self->refuse_log, g_get_monotonic_time (), &suppressed))
    return;
  if (why == ALV_REFUSE_ADDRESS)
    g_message (_("%s: refused a connection from %s, which already holds %u (%" PRIu64
                 " more refused since the last report)"),
               self->name, address, alv_conn_limits_get_for_address (self->limits, address),
               suppressed);
  else
    g_message (_("%s: refused a connection from %s: %u connections open, the most allowed (%"
                 PRIu64 " more refused since the last report)"),
               self->name, address, alv_conn_limits_get_total (self->limits), suppressed);
}

/* Whether a connection of @address may be taken; counts it if so. */
static gboolean
admit (AlvListener *self,
       const char  *address)
{
  AlvAdmission admission = alv_conn_limits_admit (self->limits, address);

  if (admission != ALV_ADMIT)
    {
      gint64 now = g_get_monotonic_time ();

      /* at a cap: connections whose clients left do not count (those
       * the server holds, and those the front has not read the end of
       * yet); looking for them is bounded to a few times a second under
       * a flood */
      if (now - self->last_reap >= REAP_INTERVAL)
        {
          const char *of = admission == ALV_REFUSE_ADDRESS ? address : NULL;
          guint n = reap (self, of);

          self->last_reap = now;
          if (self->front_reap != NULL)
            n += self->front_reap (self, of, self->front_data);
          if (n > 0)
            admission = alv_conn_limits_admit (self->limits, address);
        }
    }
  if (admission != ALV_ADMIT)
    {
      refuse (self, address, admission);
      return FALSE;
    }
  return TRUE;
}

/* @client was admitted (and counted under @address, taken): serve it,
 * @unread (nullable) first. */
static void
serve_admitted (AlvListener    *self,
                GSocket        *client,
                GSocketAddress *remote,
                char           *address,
                GBytes         *unread)
{
  g_autoptr(GSocketAddress) local = g_socket_get_local_address (client, NULL);
  g_autoptr(GSocketConnection) connection = NULL;
  Conn *conn;

  if (self->config.idle_timeout != 0)
    g_socket_set_timeout (client, self->config.idle_timeout);
  if (G_IS_INET_SOCKET_ADDRESS (remote))
    g_socket_set_option (client, IPPROTO_TCP, TCP_NODELAY, TRUE, NULL);
  connection = g_socket_connection_factory_create_connection (client);
  conn = g_new0 (Conn, 1);
  conn->self = self;
  conn->connection = connection;
  conn->socket = client;
  conn->remote = g_object_ref (remote);
  conn->address = address;
  g_object_weak_ref (G_OBJECT (connection), conn_gone, conn);
  g_hash_table_insert (self->conns, conn->remote, conn);

  if (self->soup != NULL && unread != NULL && g_bytes_get_size (unread) > 0)
    {
      /* the connection stays counted until the server drops the stream,
       * which holds it */
      g_autoptr(GIOStream) replay = alv_replay_stream_new (G_IO_STREAM (connection), unread);

      soup_server_accept_iostream (self->soup, replay, local, remote, NULL);
    }
  else if (self->soup != NULL)
    soup_server_accept_iostream (self->soup, G_IO_STREAM (connection), local, remote, NULL);
  else if (self->func != NULL)
    self->func (self, connection, self->func_data);
}

static void
take (AlvListener *self,
      GSocket     *client)
{
  g_autoptr(GSocketAddress) remote = g_socket_get_remote_address (client, NULL);
  g_autofree char *address = NULL;

  if (remote == NULL)
    {
      g_socket_close (client, NULL);  /* already gone */
      return;
    }
  address = address_key (remote);
  if (!admit (self, address))
    {
      g_socket_close (client, NULL);
      return;
    }
  serve_admitted (self, client, remote, g_steal_pointer (&address), NULL);
}

/* take() for a front: the bare descriptor, no GSocket (its creation
 * costs several system calls, and most connections never need one) */
static void
take_fd (AlvListener                   *self,
         int                            fd,
         const struct sockaddr_storage *native,
         socklen_t                      native_len)
{
  g_autoptr(GSocketAddress) remote = g_socket_address_new_from_native ((gpointer) native, native_len);
  g_autofree char *address = NULL;

  if (remote == NULL)
    {
      close (fd);
      return;
    }
  address = address_key (remote);
  if (!admit (self, address))
    {
      close (fd);
      return;
    }
  self->front (self, fd, remote, address, self->front_data);
}

static void
detach_sources (AlvListener *self)
{
  for (guint i = 0; i < self->sockets->len; i++)
    {
      ListenSocket *ls = self->sockets->pdata[i];

      if (ls->source == NULL)
        continue;
      g_source_destroy (ls->source);
      g_clear_pointer (&ls->source, g_source_unref);
    }
}

static gboolean
retry_cb (gpointer user_data)
{
  AlvListener *self = user_data;

  self->retry_id = 0;
  attach_sources (self);
  return G_SOURCE_REMOVE;
}

/* The system refused an accept (most often: no descriptor left).  Trying
 * again at once would spin; stop watching, and look again shortly. */
static void
pause_accepting (AlvListener  *self,
                 const GError *error)
{
  guint64 suppressed = 0;
  guint ms;

  self->failures++;
  ms = alv_accept_backoff_ms (self->failures);
  if (alv_log_limiter_allow (&self->accept_log, g_get_monotonic_time (), &suppressed))
    g_message (_("%s: cannot accept connections: %s; %u open; trying again in %u ms "
                 "(%" PRIu64 " more failures since the last report)"),
               self->name, error->message, alv_conn_limits_get_total (self->limits), ms,
               suppressed);
  detach_sources (self);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_id = g_timeout_add (ms, retry_cb, self);
}

static gboolean
accept_fds (ListenSocket *ls)
{
  AlvListener *self = ls->self;
  int lfd = g_socket_get_fd (ls->socket);

  for (guint i = 0; i < ACCEPT_BATCH; i++)
    {
      struct sockaddr_storage native;
      socklen_t native_len = sizeof native;
      int fd = accept4 (lfd, (struct sockaddr *) &native, &native_len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);

      if (fd < 0)
        {
          int saved = errno;
          g_autoptr(GError) error = NULL;

          if (saved == EAGAIN || saved == EWOULDBLOCK)
            break;
          if (saved == EINTR || saved == ECONNABORTED)
            continue;
          g_set_error (&error, G_IO_ERROR, g_io_error_from_errno (saved), "%s",
                       g_strerror (saved));
          pause_accepting (self, error);  /* destroys this source */
          return G_SOURCE_REMOVE;
        }
      self->failures = 0;
      take_fd (self, fd, &native, native_len);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
accept_cb (GSocket      *socket G_GNUC_UNUSED,
           GIOCondition  condition G_GNUC_UNUSED,
           gpointer      user_data)
{
  ListenSocket *ls = user_data;
  AlvListener *self = ls->self;

  if (self->front != NULL)
    return accept_fds (ls);
  for (guint i = 0; i < ACCEPT_BATCH; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GSocket) client = g_socket_accept (ls->socket, NULL, &error);

      if (client == NULL)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          pause_accepting (self, error);  /* destroys this source */
          return G_SOURCE_REMOVE;
        }
      self->failures = 0;
      take (self, client);
    }
  return G_SOURCE_CONTINUE;
}

static void
attach_sources (AlvListener *self)
{
  for (guint i = 0; i < self->sockets->len; i++)
    {
      ListenSocket *ls = self->sockets->pdata[i];

      if (ls->source != NULL)
        continue;
      ls->source = g_socket_create_source (ls->socket, G_IO_IN, NULL);
      /* ahead of the SoupServer's own source on the same socket */
      g_source_set_priority (ls->source, G_PRIORITY_HIGH);
      g_source_set_callback (ls->source, (GSourceFunc) (void (*) (void)) accept_cb, ls, NULL);
      g_source_set_static_name (ls->source, "[alluvium] accept");
      g_source_attach (ls->source, g_main_context_get_thread_default ());
    }
}

/**
 * alv_listener_add_address:
 * @listener: a listener
 * @address: where to listen (port 0: an ephemeral one)
 * @effective: (out) (optional) (transfer full): the address bound
 * @error: return location for a #GError
 *
 * Starts listening on @address (may be called again for more addresses).
 *
 * Returns: %TRUE if listening
 */
gboolean
alv_listener_add_address (AlvListener     *listener,
                          GSocketAddress  *address,
                          GSocketAddress **effective,
                          GError         **error)
{
  g_autoptr(GSocket) socket = NULL;
  ListenSocket *ls;

  g_return_val_if_fail (ALV_IS_LISTENER (listener), FALSE);
  g_return_val_if_fail (G_IS_SOCKET_ADDRESS (address), FALSE);

  socket = g_socket_new (g_socket_address_get_family (address), G_SOCKET_TYPE_STREAM,
                         G_SOCKET_PROTOCOL_DEFAULT, error);
  if (socket == NULL)
    return FALSE;
  g_socket_set_blocking (socket, FALSE);
  g_socket_set_listen_backlog (socket, SOMAXCONN);
  if (!g_socket_bind (socket, address, TRUE, error) || !g_socket_listen (socket, error))
    return FALSE;
  if (effective != NULL)
    {
      *effective = g_socket_get_local_address (socket, error);
      if (*effective == NULL)
        return FALSE;
    }
  ls = g_new0 (ListenSocket, 1);
  ls->self = listener;
  ls->socket = g_steal_pointer (&socket);
  g_ptr_array_add (listener->sockets, ls);
  if (listener->retry_id == 0)
    attach_sources (listener);
  return TRUE;
}

/**
 * alv_listener_get_address:
 * @listener: a listener
 * @index: which of its sockets, in the order they were added
 *
 * Returns: (transfer full) (nullable): the address socket @index is bound
 *   to, or %NULL if there is no such socket
 */
GSocketAddress *
alv_listener_get_address (AlvListener *listener,
                          guint        index)
{
  g_return_val_if_fail (ALV_IS_LISTENER (listener), NULL);

  if (index >= listener->sockets->len)
    return NULL;
  return g_socket_get_local_address (((ListenSocket *) listener->sockets->pdata[index])->socket,
                                     NULL);
}

/**
 * alv_listener_close:
 * @listener: a listener
 *
 * Stops listening (the connections taken stay with their owners).
 */
void
alv_listener_close (AlvListener *listener)
{
  g_return_if_fail (ALV_IS_LISTENER (listener));

  g_clear_handle_id (&listener->retry_id, g_source_remove);
  g_ptr_array_set_size (listener->sockets, 0);
}

/**
 * alv_listener_get_n_connections:
 * @listener: a listener
 *
 * Returns: how many of its connections are still referenced
 */
guint
alv_listener_get_n_connections (AlvListener *listener)
{
  g_return_val_if_fail (ALV_IS_LISTENER (listener), 0);
  return alv_conn_limits_get_total (listener->limits);
}

/**
 * alv_listener_get_max_connections:
 * @listener: a listener
 *
 * Returns: the cap in force (after the descriptor limit)
 */
guint
alv_listener_get_max_connections (AlvListener *listener)
{
  g_return_val_if_fail (ALV_IS_LISTENER (listener), 0);
  return alv_conn_limits_get_max_total (listener->limits);
}

/**
 * alv_listener_get_n_refused:
 * @listener: a listener
 *
 * Returns: how many connections the caps turned away
 */
guint64
alv_listener_get_n_refused (AlvListener *listener)
{
  g_return_val_if_fail (ALV_IS_LISTENER (listener), 0);
  return listener->refused;
}

/* ---- the descriptor limit -------------------------------------------- */

/**
 * alv_get_fd_limit:
 *
 * Returns: the process's soft limit on open descriptors
 */
guint64
alv_get_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 1024 * 1024;
  return rl.rlim_cur;
}

/**
 * alv_raise_fd_limit:
 *
 * Raises the soft limit on open descriptors to the hard limit, as a
 * service that holds many connections should at start-up (the soft
 * limit stays at 1024 for select()'s sake; nothing here uses select()).
 *
 * Returns: the soft limit now in force
 */
guint64
alv_raise_fd_limit (void)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max)
    {
      rl.rlim_cur = rl.rlim_max;
      if (setrlimit (RLIMIT_NOFILE, &rl) != 0)
        g_debug ("cannot raise the descriptor limit: %s", g_strerror (errno));
    }
  return alv_get_fd_limit ();
}
