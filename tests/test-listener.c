/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Listening sockets that survive floods (common/alv-listener.c) and the
 * admission rules behind them (common/alv-conn-limits.c): the rules
 * without sockets, then a real SoupServer on 127.0.0.1 behind an
 * AlvListener: caps per address, the idle deadline, and accepting again
 * after the process ran out of descriptors.
 */
#define G_LOG_DOMAIN "test-listener"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <libsoup/soup.h>

#include "alv-conn-limits.h"
#include "alv-listener.h"
#include "test-util.h"

/* ---- the rules --------------------------------------------------------- */

static void
test_limits_admit (void)
{
  g_autoptr(AlvConnLimits) limits = alv_conn_limits_new (5, 2);

  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.1"), ==, ALV_ADMIT);
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.1"), ==, ALV_ADMIT);
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.1"), ==, ALV_REFUSE_ADDRESS);
  g_assert_cmpuint (alv_conn_limits_get_for_address (limits, "192.0.2.1"), ==, 2);
  /* another address is not held back by the first one's flood */
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.2"), ==, ALV_ADMIT);
  /* a trusted proxy carries many clients: only the total applies */
  alv_conn_limits_exempt (limits, "192.0.2.9");
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.9"), ==, ALV_ADMIT);
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.9"), ==, ALV_ADMIT);
  g_assert_cmpuint (alv_conn_limits_get_total (limits), ==, 5);
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.9"), ==, ALV_REFUSE_TOTAL);
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.3"), ==, ALV_REFUSE_TOTAL);

  /* a closed connection makes room again, for its address too */
  alv_conn_limits_release (limits, "192.0.2.1");
  g_assert_cmpuint (alv_conn_limits_get_total (limits), ==, 4);
  g_assert_cmpint (alv_conn_limits_admit (limits, "192.0.2.1"), ==, ALV_ADMIT);
  alv_conn_limits_release (limits, "192.0.2.1");
  alv_conn_limits_release (limits, "192.0.2.1");
  g_assert_cmpuint (alv_conn_limits_get_for_address (limits, "192.0.2.1"), ==, 0);
  g_assert_cmpuint (alv_conn_limits_get_total (limits), ==, 3);
}

static void
test_limits_fd_share (void)
{
  /* 1024 descriptors, reserve 48: half of the rest is 488 */
  g_assert_cmpuint (alv_conn_limits_cap_for_fd_limit (1024, 50), ==, 488);
  g_assert_cmpuint (alv_conn_limits_cap_for_fd_limit (1024, 75), ==, 732);
  g_assert_cmpuint (alv_conn_limits_cap_for_fd_limit (524288, 50), ==, 262120);
  /* never below 8, even with almost no descriptors */
  g_assert_cmpuint (alv_conn_limits_cap_for_fd_limit (20, 50), ==, 8);
  g_assert_cmpuint (alv_conn_limits_cap_for_fd_limit (G_MAXUINT64, 100), ==, G_MAXUINT);
}

static void
test_limits_backoff (void)
{
  guint last = 0;

  g_assert_cmpuint (alv_accept_backoff_ms (1), ==, ALV_ACCEPT_BACKOFF_MIN_MS);
  g_assert_cmpuint (alv_accept_backoff_ms (2), ==, 2 * ALV_ACCEPT_BACKOFF_MIN_MS);
  for (guint failures = 1; failures < 1000; failures++)
    {
      guint ms = alv_accept_backoff_ms (failures);

      g_assert_cmpuint (ms, >=, last);
      g_assert_cmpuint (ms, <=, ALV_ACCEPT_BACKOFF_MAX_MS);
      last = ms;
    }
  g_assert_cmpuint (last, ==, ALV_ACCEPT_BACKOFF_MAX_MS);
}

static void
test_limits_log (void)
{
  AlvLogLimiter limiter = ALV_LOG_LIMITER_INIT (10 * G_USEC_PER_SEC);
  guint64 suppressed = 99;
  guint allowed = 0;

  /* 10 000 events a second for 25 s: three lines, each counting the rest */
  g_assert_true (alv_log_limiter_allow (&limiter, 0, &suppressed));
  g_assert_cmpuint (suppressed, ==, 0);
  for (gint64 t = 100; t < 25 * G_USEC_PER_SEC; t += 100)
    if (alv_log_limiter_allow (&limiter, t, &suppressed))
      {
        allowed++;
        g_assert_cmpuint (suppressed, ==, 10 * G_USEC_PER_SEC / 100 - 1);
      }
  g_assert_cmpuint (allowed, ==, 2);
}

/* ---- a real server ------------------------------------------------------- */

typedef struct
{
  SoupServer *server;
  AlvListener *listener;
  char *url;
} Fixture;

static guint n_held;

static void
hello_cb (SoupServer        *server G_GNUC_UNUSED,
          SoupServerMessage *msg,
          const char        *path,
          GHashTable        *query G_GNUC_UNUSED,
          gpointer           user_data G_GNUC_UNUSED)
{
  if (g_str_equal (path, "/hold"))
    {
      /* an answer held back: the server reads nothing meanwhile */
      soup_server_message_pause (msg);
      n_held++;
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC, "hello", 5);
}

static void
fixture_setup (Fixture                 *f,
               const AlvListenerConfig *config)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;

  f->server = soup_server_new (NULL, NULL);
  soup_server_add_handler (f->server, NULL, hello_cb, NULL, NULL);
  f->listener = alv_listener_new ("Test", config);
  g_assert_true (alv_listener_serve_soup (f->listener, f->server, &error));
  g_assert_no_error (error);
  g_assert_true (alv_listener_add_address (f->listener, any_port, &bound, &error));
  g_assert_no_error (error);
  f->url = g_strdup_printf ("http://127.0.0.1:%u/",
                            g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
}

static void
fixture_teardown (Fixture *f)
{
  g_clear_object (&f->listener);
  soup_server_disconnect (f->server);
  g_clear_object (&f->server);
  g_free (f->url);
}

static gboolean
hello_from (const char *local_ip,
            const char *url,
            GError    **error)
{
  guint status = 0;
  g_autoptr(GBytes) body = test_get_from (local_ip, url, &status, error);

  return body != NULL && status == SOUP_STATUS_OK && g_bytes_get_size (body) == 5;
}

static gboolean
listener_empty (gpointer data)
{
  return alv_listener_get_n_connections (data) == 0;
}

/* One address floods; it gets its share and no more, and another address
 * is served meanwhile; once the flood ends, the first address is served
 * again. */
static void
test_listener_caps (void)
{
  const AlvListenerConfig config = { .max_connections = 100, .max_per_address = 20 };
  g_autoptr(GError) error = NULL;
  g_autoptr(TestFlood) flood = NULL;
  Fixture f = { 0 };

  fixture_setup (&f, &config);
  flood = test_flood_new (f.url, 50);
  test_flood_wait_closed (flood, 30, 10000);
  g_assert_cmpuint (alv_listener_get_n_connections (f.listener), ==, 20);
  g_assert_cmpuint (alv_listener_get_n_refused (f.listener), ==, 30);
  g_assert_true (hello_from ("127.0.0.2", f.url, &error));
  g_assert_no_error (error);

  g_clear_pointer (&flood, test_flood_free);
  test_wait_until (listener_empty, f.listener, 10000);
  g_assert_true (hello_from ("127.0.0.1", f.url, &error));
  g_assert_no_error (error);
  fixture_teardown (&f);
}

static gboolean
held (gpointer data)
{
  return n_held >= GPOINTER_TO_UINT (data);
}

/* Clients that asked and left while their answers were held back: the
 * server has not noticed (it reads nothing from them), but they no longer
 * count against the cap of their address. */
static void
test_listener_gone (void)
{
  const AlvListenerConfig config = { .max_connections = 100, .max_per_address = 4 };
  static const char request[] = "GET /hold HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) error = NULL;
  Fixture f = { 0 };

  n_held = 0;
  fixture_setup (&f, &config);
  uri = g_uri_parse (f.url, G_URI_FLAGS_NONE, NULL);
  address = g_inet_socket_address_new (loopback, g_uri_get_port (uri));
  for (guint i = 0; i < 4; i++)
    {
      g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_TCP, &error);

      g_assert_no_error (error);
      g_assert_true (g_socket_connect (socket, address, NULL, &error));
      g_assert_cmpint (g_socket_send (socket, request, strlen (request), NULL, &error), ==,
                       (gssize) strlen (request));
      test_wait_until (held, GUINT_TO_POINTER (i + 1), 10000);
      g_assert_true (g_socket_close (socket, &error));
    }
  g_assert_cmpuint (alv_listener_get_n_connections (f.listener), ==, 4);

  /* the address is at its cap, but all four have left */
  g_assert_true (hello_from ("127.0.0.1", f.url, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (alv_listener_get_n_refused (f.listener), ==, 0);
  fixture_teardown (&f);
}

/* A front that takes connections and never reads them (as the real one
 * before it has run its turn). */
typedef struct
{
  AlvListener *listener;
  GArray *fds;
  GPtrArray *addresses;
  guint taken;                  /* so far */
  guint wanted;                 /* for front_holds() */
} HoldingFront;

static void
holding_take (AlvListener    *listener G_GNUC_UNUSED,
              int             fd,
              GSocketAddress *remote G_GNUC_UNUSED,
              const char     *address,
              gpointer        user_data)
{
  HoldingFront *front = user_data;

  front->taken++;
  g_array_append_val (front->fds, fd);
  g_ptr_array_add (front->addresses, g_strdup (address));
}

static guint
holding_reap (AlvListener *listener,
              const char  *address,
              gpointer     user_data)
{
  HoldingFront *front = user_data;
  guint n = 0;

  for (guint i = front->fds->len; i > 0; i--)
    {
      int fd = g_array_index (front->fds, int, i - 1);
      char byte;

      if ((address != NULL && strcmp (address, front->addresses->pdata[i - 1]) != 0) ||
          recv (fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) != 0)
        continue;
      close (fd);
      alv_listener_release (listener, front->addresses->pdata[i - 1]);
      g_array_remove_index (front->fds, i - 1);
      g_ptr_array_remove_index (front->addresses, i - 1);
      n++;
    }
  return n;
}

static gboolean
front_holds (gpointer data)
{
  HoldingFront *front = data;

  return front->taken >= front->wanted || alv_listener_get_n_refused (front->listener) > 0;
}

static gboolean
refused (gpointer data)
{
  return alv_listener_get_n_refused (data) > 0;
}

/* A client at its address's cap closes a connection the front has not
 * read from yet and connects again at once: the front is asked to look
 * for it, and the new connection is admitted.  With both connections
 * still open, the next one is refused. */
static void
test_listener_front_gone (void)
{
  const AlvListenerConfig config = { .max_connections = 100, .max_per_address = 2 };
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) error = NULL;
  GSocket *clients[3] = { NULL, };
  g_autoptr(GSocket) over = NULL;
  HoldingFront front = { NULL, };
  Fixture f = { 0 };

  fixture_setup (&f, &config);
  front.listener = f.listener;
  front.fds = g_array_new (FALSE, FALSE, sizeof (int));
  front.addresses = g_ptr_array_new_with_free_func (g_free);
  alv_listener_set_front (f.listener, holding_take, holding_reap, &front);
  uri = g_uri_parse (f.url, G_URI_FLAGS_NONE, NULL);
  address = g_inet_socket_address_new (loopback, g_uri_get_port (uri));
  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    {
      clients[i] = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, &error);
      g_assert_no_error (error);
      g_assert_true (g_socket_connect (clients[i], address, NULL, &error));
      g_assert_no_error (error);
      if (i == 1)
        {
          front.wanted = 2;
          test_wait_until (front_holds, &front, 10000);
          g_assert_cmpuint (front.fds->len, ==, 2);
          /* gone, unread */
          g_assert_true (g_socket_close (clients[0], &error));
          g_clear_object (&clients[0]);
        }
    }
  front.wanted = 3;
  test_wait_until (front_holds, &front, 10000);
  g_assert_cmpuint (alv_listener_get_n_refused (f.listener), ==, 0);
  g_assert_cmpuint (front.taken, ==, 3);
  g_assert_cmpuint (front.fds->len, ==, 2);
  g_assert_cmpuint (alv_listener_get_n_connections (f.listener), ==, 2);

  over = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_true (g_socket_connect (over, address, NULL, &error));
  test_wait_until (refused, f.listener, 10000);
  g_assert_cmpuint (front.fds->len, ==, 2);

  for (guint i = 0; i < G_N_ELEMENTS (clients); i++)
    g_clear_object (&clients[i]);
  for (guint i = 0; i < front.fds->len; i++)
    close (g_array_index (front.fds, int, i));
  g_array_unref (front.fds);
  g_ptr_array_unref (front.addresses);
  fixture_teardown (&f);
}

static gboolean
no_connections (gpointer data)
{
  return alv_listener_get_n_connections (data) == 0;
}

/* Requests on a kept-alive connection: the server keeps it open between
 * them (libsoup does so only while it has a listener of its own), unless
 * this libsoup would never let go of it once its client closed it (3.2):
 * then every answer says "Connection: close" and the server closes it. */
static void
test_listener_keepalive (void)
{
  const AlvListenerConfig config = { .max_connections = 10, .max_per_address = 10 };
  g_autoptr(SoupSession) session = test_session_new_from ("127.0.0.1");
  g_autoptr(GError) error = NULL;
  gboolean close_each = alv_listener_soup_leaks_idle ();
  Fixture f = { 0 };

  g_test_message ("libsoup %u.%u.%u: %s", soup_get_major_version (), soup_get_minor_version (),
                  soup_get_micro_version (), close_each ? "a connection per request" : "keep-alive");
  fixture_setup (&f, &config);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", f.url);
      g_autoptr(GBytes) body = test_session_send (session, msg, 10000, &error);
      const char *connection = soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                             "Connection");

      g_assert_no_error (error);
      g_assert_cmpuint (soup_message_get_status (msg), ==, SOUP_STATUS_OK);
      if (close_each)
        {
          g_assert_cmpstr (connection, ==, "close");
          test_wait_until (no_connections, f.listener, 10000);
        }
      else
        g_assert_cmpuint (alv_listener_get_n_connections (f.listener), ==, 1);
    }
  soup_session_abort (session);
  fixture_teardown (&f);
}

/* A client that connects and says nothing is closed at the deadline. */
static void
test_listener_idle (void)
{
  const AlvListenerConfig config = { .idle_timeout = 1, .header_timeout = 1 };
  g_autoptr(TestFlood) flood = NULL;
  Fixture f = { 0 };

  fixture_setup (&f, &config);
  flood = test_flood_new (f.url, 3);
  test_flood_wait_closed (flood, 3, 15000);
  test_wait_until (listener_empty, f.listener, 10000);
  fixture_teardown (&f);
}

typedef struct
{
  GSocket *socket;
  GString *answer;
  gboolean closed;
} RawClient;

static gboolean
raw_client_ready_cb (GSocket      *socket,
                     GIOCondition  condition G_GNUC_UNUSED,
                     gpointer      user_data)
{
  RawClient *c = user_data;
  char buf[1024];
  gssize n = g_socket_receive (socket, buf, sizeof buf, NULL, NULL);

  if (n > 0)
    {
      g_string_append_len (c->answer, buf, n);
      return G_SOURCE_CONTINUE;
    }
  if (n < 0 && !g_socket_condition_check (socket, G_IO_HUP | G_IO_ERR))
    return G_SOURCE_CONTINUE;
  c->closed = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
raw_client_closed (gpointer data)
{
  return ((RawClient *) data)->closed;
}

/* Every descriptor is taken when a client's connection is to be accepted:
 * accept() fails (EMFILE).  libsoup's own listener gives up on its socket
 * for good at that point; ours waits and accepts the client once
 * descriptors are free again. */
static void
test_listener_emfile (void)
{
  const AlvListenerConfig config = { .max_connections = 1000, .max_per_address = 1000 };
  static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  g_autoptr(GArray) hogs = g_array_new (FALSE, FALSE, sizeof (int));
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSource) source = NULL;
  g_autoptr(GError) error = NULL;
  struct rlimit saved, low;
  RawClient c = { 0 };
  Fixture f = { 0 };

  g_assert_cmpint (getrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  fixture_setup (&f, &config);
  uri = g_uri_parse (f.url, G_URI_FLAGS_NONE, NULL);
  address = g_inet_socket_address_new (loopback, g_uri_get_port (uri));

  /* the client connects (the kernel completes the handshake; nothing is
   * accepted before the main loop runs) and sends its request */
  c.answer = g_string_new (NULL);
  c.socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_connect (c.socket, address, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (g_socket_send (c.socket, request, strlen (request), NULL, &error), ==,
                   (gssize) strlen (request));
  source = g_socket_create_source (c.socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) raw_client_ready_cb, &c, NULL);
  g_source_attach (source, NULL);

  /* then every descriptor left is taken, under a low limit so that it is
   * quick */
  low = saved;
  low.rlim_cur = MIN (saved.rlim_cur, 512);
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &low), ==, 0);
  for (guint i = 0; i < low.rlim_cur; i++)
    {
      int fd = open ("/dev/null", O_RDONLY | O_CLOEXEC);

      if (fd < 0)
        {
          g_assert_cmpint (errno, ==, EMFILE);
          break;
        }
      g_array_append_val (hogs, fd);
    }
  /* the server tries to accept and cannot */
  test_run_for (300);
  g_assert_cmpuint (alv_listener_get_n_connections (f.listener), ==, 0);
  g_assert_cmpuint (c.answer->len, ==, 0);

  for (guint i = 0; i < hogs->len; i++)
    close (g_array_index (hogs, int, i));
  g_assert_cmpint (setrlimit (RLIMIT_NOFILE, &saved), ==, 0);
  test_wait_until (raw_client_closed, &c, 10000);
  g_assert_true (g_str_has_prefix (c.answer->str, "HTTP/1.1 200"));
  g_assert_true (g_str_has_suffix (c.answer->str, "hello"));

  g_source_destroy (source);
  g_object_unref (c.socket);
  g_string_free (c.answer, TRUE);
  fixture_teardown (&f);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  test_raise_fd_limit (4096);

  g_test_add_func ("/listener/limits/admit", test_limits_admit);
  g_test_add_func ("/listener/limits/fd-share", test_limits_fd_share);
  g_test_add_func ("/listener/limits/backoff", test_limits_backoff);
  g_test_add_func ("/listener/limits/log", test_limits_log);
  g_test_add_func ("/listener/caps", test_listener_caps);
  g_test_add_func ("/listener/idle", test_listener_idle);
  g_test_add_func ("/listener/keepalive", test_listener_keepalive);
  g_test_add_func ("/listener/gone", test_listener_gone);
  g_test_add_func ("/listener/front-gone", test_listener_front_gone);
  g_test_add_func ("/listener/emfile", test_listener_emfile);
  return g_test_run ();
}
