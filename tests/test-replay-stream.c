/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The replaying stream (common/alv-replay-stream.c) on its own, over a
 * real connection (a socket pair): the bytes given back first, then the
 * connection's own, through every way libsoup reads (blocking, pollable
 * without blocking, asynchronous); short reads; the end of the stream;
 * closing; and the connection's errors passed on as they are.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>

#include "alv-replay-stream.h"
#include "test-util.h"

#define WAIT_MS 10000

typedef struct
{
  GIOStream *base;              /* our end of the pair */
  int peer;                     /* the other end: the client */
  GIOStream *replay;
  GInputStream *in;             /* the replay's */
} Fixture;

static void
start (Fixture    *fx,
       const char *prefix)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GBytes) bytes = prefix != NULL ? g_bytes_new (prefix, strlen (prefix)) : NULL;
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  /* every blocking read below ends within this */
  g_socket_set_timeout (socket, WAIT_MS / 1000);
  fx->base = G_IO_STREAM (g_socket_connection_factory_create_connection (socket));
  fx->peer = fds[1];
  fx->replay = alv_replay_stream_new (fx->base, bytes);
  fx->in = g_io_stream_get_input_stream (fx->replay);
}

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data G_GNUC_UNUSED)
{
  fx->peer = -1;
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_clear_object (&fx->replay);
  g_clear_object (&fx->base);
  if (fx->peer >= 0)
    close (fx->peer);
}

static void
peer_send (Fixture    *fx,
           const char *text)
{
  g_assert_cmpint (send (fx->peer, text, strlen (text), MSG_NOSIGNAL), ==, (gssize) strlen (text));
}

/* Reads at most @count bytes (blocking) and checks they are @expected. */
static void
assert_read (Fixture    *fx,
             gsize       count,
             const char *expected)
{
  g_autoptr(GError) error = NULL;
  char buf[64];
  gssize n;

  g_assert_cmpuint (count, <=, sizeof buf);
  n = g_input_stream_read (fx->in, buf, count, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, expected, strlen (expected));
}

/* The prefix, in short reads if asked so, never joined with the
 * connection's bytes in one read; then the connection's. */
static void
test_prefix_then_live (Fixture       *fx,
                       gconstpointer  data G_GNUC_UNUSED)
{
  start (fx, "GET / HTTP/1.1\r\n");
  peer_send (fx, "Host: a\r\n\r\n");
  assert_read (fx, 4, "GET ");
  assert_read (fx, 1, "/");
  /* what is left of the prefix, though more was asked for and more is
   * there */
  assert_read (fx, 64, " HTTP/1.1\r\n");
  assert_read (fx, 5, "Host:");
  assert_read (fx, 64, " a\r\n\r\n");
}

/* No prefix (or an empty one): the connection's bytes at once. */
static void
test_no_prefix (Fixture       *fx,
                gconstpointer  data G_GNUC_UNUSED)
{
  start (fx, "");
  peer_send (fx, "abc");
  assert_read (fx, 64, "abc");
  g_clear_object (&fx->replay);
  close (fx->peer);
  g_clear_object (&fx->base);
  start (fx, NULL);
  peer_send (fx, "def");
  assert_read (fx, 64, "def");
}

/* Pollable as libsoup reads it: readable at once while prefix bytes
 * remain (the connection has none), then only when the connection is;
 * a non-blocking read in between would block. */
static void
test_pollable (Fixture       *fx,
               gconstpointer  data G_GNUC_UNUSED)
{
  GPollableInputStream *in;
  g_autoptr(GError) error = NULL;
  char buf[16];
  gssize n;

  start (fx, "xy");
  in = G_POLLABLE_INPUT_STREAM (fx->in);
  g_assert_true (g_pollable_input_stream_can_poll (in));
  g_assert_true (g_pollable_input_stream_is_readable (in));
  n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, "xy", 2);
  g_assert_false (g_pollable_input_stream_is_readable (in));
  n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
  g_assert_cmpint (n, ==, -1);
  g_clear_error (&error);
  peer_send (fx, "z");
  /* the socket is readable once the byte is in: no wait needed here */
  g_assert_true (g_pollable_input_stream_is_readable (in));
  n = g_pollable_input_stream_read_nonblocking (in, buf, sizeof buf, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, n, "z", 1);
}

static gboolean
flag_cb (GObject  *stream G_GNUC_UNUSED,
         gpointer  user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
is_set (gpointer data)
{
  return *(gboolean *) data;
}

/* The source of a stream with prefix bytes left fires at once; without,
 * when the connection has bytes. */
static void
test_source (Fixture       *fx,
             gconstpointer  data G_GNUC_UNUSED)
{
  GPollableInputStream *in;
  g_autoptr(GSource) now = NULL;
  g_autoptr(GSource) later = NULL;
  gboolean fired = FALSE;

  start (fx, "p");
  in = G_POLLABLE_INPUT_STREAM (fx->in);
  now = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (now, G_SOURCE_FUNC (flag_cb), &fired, NULL);
  g_source_attach (now, NULL);
  test_wait_until (is_set, &fired, WAIT_MS);
  assert_read (fx, 64, "p");

  fired = FALSE;
  later = g_pollable_input_stream_create_source (in, NULL);
  g_source_set_callback (later, G_SOURCE_FUNC (flag_cb), &fired, NULL);
  g_source_attach (later, NULL);
  /* nothing there: it does not fire while what is pending runs */
  test_run_pending ();
  g_assert_false (fired);
  peer_send (fx, "q");
  test_wait_until (is_set, &fired, WAIT_MS);
  assert_read (fx, 64, "q");
}

/* Asynchronous reads (GInputStream's, through the pollable interface):
 * the prefix, then the connection's bytes. */
static void
test_async (Fixture       *fx,
            gconstpointer  data G_GNUC_UNUSED)
{
  const char *expected[] = { "first", "second" };
  char buf[64];

  start (fx, "first");
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      gssize n;

      g_input_stream_read_async (fx->in, buf, sizeof buf, G_PRIORITY_DEFAULT, NULL,
                                 test_async_result_cb, &result);
      if (i == 1)
        peer_send (fx, "second");
      n = g_input_stream_read_finish (fx->in, test_wait_result (&result, WAIT_MS), &error);
      g_assert_no_error (error);
      g_assert_cmpmem (buf, n, expected[i], strlen (expected[i]));
    }
}

/* The end of the connection comes after the prefix, not before it. */
static void
test_eof (Fixture       *fx,
          gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  char buf[16];

  start (fx, "last");
  peer_send (fx, "!");
  close (fx->peer);
  fx->peer = -1;
  assert_read (fx, 64, "last");
  assert_read (fx, 64, "!");
  g_assert_cmpint (g_input_stream_read (fx->in, buf, sizeof buf, NULL, &error), ==, 0);
  g_assert_no_error (error);
}

/* Writing and closing are the connection's: closing the replay closes
 * it (and its socket); reading after that fails. */
static void
test_close (Fixture       *fx,
            gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  GOutputStream *out;
  char buf[16];
  gsize written = 0;

  start (fx, "unread");
  out = g_io_stream_get_output_stream (fx->replay);
  g_assert_true (out == g_io_stream_get_output_stream (fx->base));
  g_assert_true (g_output_stream_write_all (out, "answer", 6, &written, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (recv (fx->peer, buf, sizeof buf, 0), ==, 6);
  g_assert_cmpmem (buf, 6, "answer", 6);

  g_assert_true (g_io_stream_close (fx->replay, NULL, &error));
  g_assert_no_error (error);
  g_assert_true (g_io_stream_is_closed (fx->base));
  g_assert_true (g_socket_is_closed (g_socket_connection_get_socket (G_SOCKET_CONNECTION (fx->base))));
  /* the client sees the end */
  g_assert_cmpint (recv (fx->peer, buf, sizeof buf, 0), ==, 0);
  g_assert_cmpint (g_input_stream_read (fx->in, buf, sizeof buf, NULL, &error), <, 0);
  g_assert_nonnull (error);
}

/* The connection's errors come through as they are: a reset (the
 * client closed with our answer unread), a cancelled read; the prefix is
 * still read first. */
static void
test_errors (Fixture       *fx,
             gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  char buf[16];

  start (fx, "pre");
  g_cancellable_cancel (cancellable);
  g_assert_cmpint (g_input_stream_read (fx->in, buf, sizeof buf, cancellable, &error), ==, 3);
  g_assert_no_error (error);
  g_assert_cmpmem (buf, 3, "pre", 3);
  g_assert_cmpint (g_input_stream_read (fx->in, buf, sizeof buf, cancellable, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* a reset: the peer closes with bytes of ours unread */
  g_assert_true (g_output_stream_write_all (g_io_stream_get_output_stream (fx->replay), "x", 1,
                                            NULL, NULL, &error));
  g_assert_no_error (error);
  close (fx->peer);
  fx->peer = -1;
  g_assert_cmpint (g_input_stream_read (fx->in, buf, sizeof buf, NULL, &error), ==, -1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/common/replay-stream/prefix-then-live", test_prefix_then_live);
  ADD ("/common/replay-stream/no-prefix", test_no_prefix);
  ADD ("/common/replay-stream/pollable", test_pollable);
  ADD ("/common/replay-stream/source", test_source);
  ADD ("/common/replay-stream/async", test_async);
  ADD ("/common/replay-stream/eof", test_eof);
  ADD ("/common/replay-stream/close", test_close);
  ADD ("/common/replay-stream/errors", test_errors);
#undef ADD
  return g_test_run ();
}
