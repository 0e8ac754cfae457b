/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The lean HTTP/1.1 front (common/alv-http-front.c) in this process, on
 * socket pairs: what it promises about its own work, which the gateway
 * tests against the real binary (test-gateway-front.c) cannot see
 * exactly: its timer, how many requests one connection gets answered in
 * one dispatch, how much a client that does not read makes it hold.
 * The front runs on a main context of the test's own, iterated by hand.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <gio/gio.h>
#include <glib-unix.h>

#include "alv-http-front.h"

typedef struct
{
  GMainContext *context;
  AlvHttpFront *front;
  GSocketAddress *remote;
  guint closed;
  guint handed_over;
} Fixture;

/* Answers GET /NUMBER with NUMBER, padded to a fixed length; declines
 * anything else. */
static gboolean
answer_cb (const AlvHttpRequest *req,
           GSocketAddress       *remote G_GNUC_UNUSED,
           AlvHttpAnswer        *answer,
           gpointer              user_data G_GNUC_UNUSED)
{
  if (req->path_len < 2 || !g_ascii_isdigit (req->path[1]))
    return FALSE;
  answer->status = 200;
  g_string_append (answer->headers, "Content-Type: text/plain\r\n");
  g_string_append_printf (answer->body, "%08u\n",
                          (guint) g_ascii_strtoull (req->path + 1, NULL, 10));
  return TRUE;
}

static void
hand_over_cb (int             fd,
              GSocketAddress *remote G_GNUC_UNUSED,
              const char     *address G_GNUC_UNUSED,
              GBytes         *unread G_GNUC_UNUSED,
              gpointer        user_data)
{
  Fixture *fx = user_data;

  fx->handed_over++;
  close (fd);
}

static void
closed_cb (const char *address G_GNUC_UNUSED,
           gpointer    user_data)
{
  Fixture *fx = user_data;

  fx->closed++;
}

static void
start_front (Fixture *fx,
             guint    header_timeout,
             guint    idle_timeout)
{
  AlvHttpFrontConfig config = { header_timeout, idle_timeout, "test" };
  g_autoptr(GError) error = NULL;

  fx->front = alv_http_front_new (&config, answer_cb, hand_over_cb, closed_cb, fx, &error);
  g_assert_no_error (error);
}

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data G_GNUC_UNUSED)
{
  fx->context = g_main_context_new ();
  g_main_context_push_thread_default (fx->context);
  fx->remote = g_inet_socket_address_new_from_string ("127.0.0.1", 4000);
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_clear_pointer (&fx->front, alv_http_front_free);
  g_clear_object (&fx->remote);
  g_main_context_pop_thread_default (fx->context);
  g_main_context_unref (fx->context);
}

/* A connected pair: the front's end (non-blocking, for
 * alv_http_front_take()) and the client's (blocking). */
static void
socket_pair (int *front_end,
             int *client_end)
{
  int fds[2];

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  g_assert_true (g_unix_set_fd_nonblocking (fds[0], TRUE, NULL));
  *front_end = fds[0];
  *client_end = fds[1];
}

/* Dispatches what is ready on the front's context, without blocking:
 * the number of sources dispatched (0 when nothing was ready). */
static guint
run_ready (Fixture *fx)
{
  guint n = 0;

  /* bounded: the front does not make itself ready forever */
  for (guint i = 0; i < 10000 && g_main_context_iteration (fx->context, FALSE); i++)
    n++;
  return n;
}

/* --- tests ------------------------------------------------------------ */

/* The timer is armed for the first deadline while a connection has one,
 * and not at all without connections (before: a wake-up every second
 * for the front's whole life). */
static void
test_timer (Fixture       *fx,
            gconstpointer  data G_GNUC_UNUSED)
{
  int front_end, client_end;
  gint64 before, after, at;

  start_front (fx, 10, 30);
  g_assert_cmpint (alv_http_front_get_next_sweep (fx->front), ==, -1);
  run_ready (fx);
  g_assert_cmpint (alv_http_front_get_next_sweep (fx->front), ==, -1);

  /* a connection with nothing sent yet: its header deadline */
  socket_pair (&front_end, &client_end);
  before = g_get_monotonic_time ();
  alv_http_front_take (fx->front, front_end, fx->remote, "a");
  after = g_get_monotonic_time ();
  at = alv_http_front_get_next_sweep (fx->front);
  g_assert_cmpint (at, >=, before + 10 * G_USEC_PER_SEC);
  g_assert_cmpint (at, <=, after + 10 * G_USEC_PER_SEC);

  /* the client leaves: no connection, no timer */
  close (client_end);
  for (guint i = 0; i < 100 && fx->closed == 0; i++)
    g_main_context_iteration (fx->context, TRUE);
  g_assert_cmpuint (fx->closed, ==, 1);
  g_assert_cmpuint (alv_http_front_get_n_connections (fx->front), ==, 0);
  g_assert_cmpint (alv_http_front_get_next_sweep (fx->front), ==, -1);

  /* without timeouts, connections need no timer either */
  g_clear_pointer (&fx->front, alv_http_front_free);
  start_front (fx, 0, 0);
  socket_pair (&front_end, &client_end);
  alv_http_front_take (fx->front, front_end, fx->remote, "a");
  g_assert_cmpuint (alv_http_front_get_n_connections (fx->front), ==, 1);
  g_assert_cmpint (alv_http_front_get_next_sweep (fx->front), ==, -1);
  close (client_end);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/common/http-front/timer", test_timer);
#undef ADD
  return g_test_run ();
}
