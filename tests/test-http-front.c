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
#include <sys/ioctl.h>
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
  GArray *tickets;              /* of the requests answered later */
} Fixture;

/* Answers GET /NUMBER with NUMBER, padded to a fixed length (at once, or
 * for /later/NUMBER later: fx->tickets); declines anything else. */
static AlvHttpFrontResult
answer_cb (const AlvHttpRequest *req,
           GSocketAddress       *remote G_GNUC_UNUSED,
           AlvHttpAnswer        *answer,
           gpointer              user_data)
{
  Fixture *fx = user_data;
  gboolean later = req->path_len > 7 && memcmp (req->path, "/later/", 7) == 0;
  const char *number = req->path + (later ? 7 : 1);

  if (req->path_len < 2 || !g_ascii_isdigit (*number))
    return ALV_HTTP_FRONT_DECLINED;
  if (later)
    {
      g_array_append_val (fx->tickets, answer->ticket);
      return ALV_HTTP_FRONT_LATER;
    }
  answer->status = 200;
  g_string_append (answer->headers, "Content-Type: text/plain\r\n");
  g_string_append_printf (answer->body, "%08u\n", (guint) g_ascii_strtoull (number, NULL, 10));
  return ALV_HTTP_FRONT_ANSWERED;
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
  fx->tickets = g_array_new (FALSE, FALSE, sizeof (guint64));
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_clear_pointer (&fx->front, alv_http_front_free);
  g_clear_object (&fx->remote);
  g_array_unref (fx->tickets);
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

/* All of @text, at once (a socket pair holds it). */
static void
write_all (int         fd,
           const char *text,
           gsize       len)
{
  g_assert_cmpint (send (fd, text, len, MSG_NOSIGNAL), ==, (gssize) len);
}

/* All of the string @text (its length counted, never written out). */
static void
write_str (int         fd,
           const char *text)
{
  write_all (fd, text, strlen (text));
}

/* The bytes waiting to be read at @fd. */
static gsize
readable (int fd)
{
  int n = 0;

  g_assert_cmpint (ioctl (fd, FIONREAD, &n), ==, 0);
  return (gsize) n;
}

/* Reads what is there at @fd (blocking only for bytes that are) and
 * appends the numbers of the complete answers in it to @numbers; what
 * follows them stays in @buf. */
static void
read_answers (int      fd,
              GString *buf,
              GArray  *numbers)
{
  const char *end;
  gsize n;

  while ((n = readable (fd)) > 0)
    {
      gsize old = buf->len;
      gssize got;

      g_string_set_size (buf, old + n);
      got = read (fd, buf->str + old, n);
      g_assert_cmpint (got, ==, (gssize) n);
    }
  while ((end = g_strstr_len (buf->str, (gssize) buf->len, "\r\n\r\n")) != NULL)
    {
      gsize head = (gsize) (end - buf->str) + 4;
      const char *cl = g_strstr_len (buf->str, (gssize) head, "Content-Length: ");
      gsize body;
      guint number;

      g_assert_true (g_str_has_prefix (buf->str, "HTTP/1.1 200 OK\r\n"));
      g_assert_nonnull (cl);
      body = (gsize) g_ascii_strtoull (cl + strlen ("Content-Length: "), NULL, 10);
      if (buf->len < head + body)
        break;
      g_assert_cmpuint (body, ==, 9);
      number = (guint) g_ascii_strtoull (buf->str + head, NULL, 10);
      g_array_append_val (numbers, number);
      g_string_erase (buf, 0, (gssize) (head + body));
    }
}

static void
assert_in_order (GArray *numbers,
                 guint   first,
                 guint   count)
{
  g_assert_cmpuint (numbers->len, ==, count);
  for (guint i = 0; i < count; i++)
    g_assert_cmpuint (g_array_index (numbers, guint, i), ==, first + i);
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

/* A hundred pipelined requests in one read: 32 answered at once, the
 * rest in the next turns, after another connection's request, all in
 * order; a request the front declines after them is handed over then
 * (before: all answered in one go, the other client waiting). */
static void
test_turns (Fixture       *fx,
            gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GString) burst = g_string_new (NULL);
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autoptr(GArray) numbers = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GArray) other_numbers = g_array_new (FALSE, FALSE, sizeof (guint));
  int front_end, client_end, other_front, other_client;

  start_front (fx, 10, 30);
  for (guint i = 0; i < 100; i++)
    g_string_append_printf (burst, "GET /%u HTTP/1.1\r\nHost: a\r\n\r\n", i);
  g_string_append (burst, "GET /decline HTTP/1.1\r\nHost: a\r\n\r\n");
  socket_pair (&front_end, &client_end);
  write_all (client_end, burst->str, burst->len);
  alv_http_front_take (fx->front, front_end, fx->remote, "a");
  g_assert_cmpuint (alv_http_front_get_n_answered (fx->front), ==, 32);

  /* another client: served in the next turn, with the next 32 */
  socket_pair (&other_front, &other_client);
  alv_http_front_take (fx->front, other_front, fx->remote, "b");
  write_str (other_client, "GET /1000 HTTP/1.1\r\nHost: a\r\n\r\n");
  g_assert_true (g_main_context_iteration (fx->context, FALSE));
  g_assert_cmpuint (alv_http_front_get_n_answered (fx->front), ==, 65);
  read_answers (other_client, buf, other_numbers);
  assert_in_order (other_numbers, 1000, 1);
  g_assert_cmpuint (buf->len, ==, 0);

  run_ready (fx);
  g_assert_cmpuint (alv_http_front_get_n_answered (fx->front), ==, 101);
  g_assert_cmpuint (fx->handed_over, ==, 1);
  read_answers (client_end, buf, numbers);
  assert_in_order (numbers, 0, 100);
  g_assert_cmpuint (buf->len, ==, 0);
  close (client_end);
  close (other_client);
}

/* A client that pipelines thousands of requests and reads nothing: the
 * front stops reading it while an answer waits, so that what it answered
 * is what the client's socket holds plus one answer at most, and what it
 * read and did not answer is one buffer (HEAD_MAX, 32 KiB) at most; the
 * rest stays in the kernel.  Then, as the client reads, every request
 * is answered, in order.  The front runs until nothing is ready: the
 * bound is checked where it matters, with nothing left to do. */
static void
test_pipeline_bound (Fixture       *fx,
                     gconstpointer  data G_GNUC_UNUSED)
{
  const guint n = 3000;
  const gsize head_max = 32 * 1024;
  g_autoptr(GString) burst = g_string_new (NULL);
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autoptr(GArray) numbers = g_array_new (FALSE, FALSE, sizeof (guint));
  int front_end, client_end, sndbuf = 4096;
  gsize request_len, answer_len, answered, unread, consumed;

  start_front (fx, 10, 30);
  /* the length of one answer (they all have the same) */
  socket_pair (&front_end, &client_end);
  write_str (client_end, "GET /0 HTTP/1.1\r\nHost: a\r\n\r\n");
  alv_http_front_take (fx->front, front_end, fx->remote, "a");
  answer_len = readable (client_end);
  read_answers (client_end, buf, numbers);
  assert_in_order (numbers, 0, 1);
  close (client_end);
  run_ready (fx);
  g_array_set_size (numbers, 0);

  for (guint i = 0; i < n; i++)
    g_string_append_printf (burst, "GET /%05u HTTP/1.1\r\nHost: a\r\n\r\n", i);
  request_len = burst->len / n;
  socket_pair (&front_end, &client_end);
  /* the front's answers fill its socket after a few */
  g_assert_cmpint (setsockopt (front_end, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf), ==, 0);
  write_all (client_end, burst->str, burst->len);
  alv_http_front_take (fx->front, front_end, fx->remote, "a");
  run_ready (fx);

  answered = (gsize) alv_http_front_get_n_answered (fx->front) - 1;
  unread = readable (front_end);
  consumed = burst->len - unread;
  g_test_message ("answered %" G_GSIZE_FORMAT " of %u, %" G_GSIZE_FORMAT " bytes at the client, "
                  "%" G_GSIZE_FORMAT " bytes read by the front", answered, n, readable (client_end),
                  consumed);
  g_assert_cmpuint (answered, <, n);
  /* every answer is at the client but one, held */
  g_assert_cmpuint (answered * answer_len, <=, readable (client_end) + answer_len);
  g_assert_cmpuint (answered * answer_len, >=, readable (client_end));
  /* the front read no further than a buffer beyond what it answered */
  g_assert_cmpuint (consumed, <=, answered * request_len + head_max);

  /* the client reads: the rest, in order */
  for (guint i = 0; i < 100000 && numbers->len < n; i++)
    {
      read_answers (client_end, buf, numbers);
      run_ready (fx);
    }
  assert_in_order (numbers, 0, n);
  g_assert_cmpuint (buf->len, ==, 0);
  g_assert_cmpuint (readable (front_end), ==, 0);
  close (client_end);
}

/* A request answered later: the connection reads nothing meanwhile
 * (what the client pipelined stays), the answer goes out when given,
 * HEAD without its body, then the pipelined requests are served in the
 * next turn; a ticket whose connection is gone is refused. */
static void
test_later (Fixture       *fx,
            gconstpointer  data G_GNUC_UNUSED)
{
  const char *text = "GET /later/7 HTTP/1.1\r\nHost: a\r\n\r\nGET /8 HTTP/1.1\r\nHost: a\r\n\r\n";
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autoptr(GArray) numbers = g_array_new (FALSE, FALSE, sizeof (guint));
  AlvHttpAnswer answer = { 200, NULL, g_string_new ("Content-Type: text/plain\r\n"),
                           g_string_new ("00000007\n"), 0 };
  int front_end, client_end;
  guint64 ticket;

  start_front (fx, 10, 30);
  socket_pair (&front_end, &client_end);
  write_all (client_end, text, strlen (text));
  alv_http_front_take (fx->front, front_end, fx->remote, "a");
  g_assert_cmpuint (fx->tickets->len, ==, 1);
  ticket = g_array_index (fx->tickets, guint64, 0);
  run_ready (fx);
  /* nothing answered, the second request not read */
  g_assert_cmpuint (alv_http_front_get_n_answered (fx->front), ==, 0);
  g_assert_cmpuint (readable (client_end), ==, 0);

  g_assert_true (alv_http_front_answer (fx->front, ticket, &answer));
  g_assert_false (alv_http_front_answer (fx->front, ticket, &answer));
  run_ready (fx);
  read_answers (client_end, buf, numbers);
  assert_in_order (numbers, 7, 2);
  g_assert_cmpuint (buf->len, ==, 0);

  /* HEAD, then the client leaves before the answer */
  text = "HEAD /later/9 HTTP/1.1\r\nHost: a\r\n\r\n";
  write_all (client_end, text, strlen (text));
  run_ready (fx);
  g_assert_cmpuint (fx->tickets->len, ==, 2);
  ticket = g_array_index (fx->tickets, guint64, 1);
  g_assert_true (alv_http_front_answer (fx->front, ticket, &answer));
  run_ready (fx);
  g_string_set_size (buf, readable (client_end));
  g_assert_cmpint (read (client_end, buf->str, buf->len), ==, (gssize) buf->len);
  g_assert_true (g_str_has_prefix (buf->str, "HTTP/1.1 200 OK\r\n"));
  g_assert_nonnull (strstr (buf->str, "Content-Length: 9\r\n"));
  g_assert_true (g_str_has_suffix (buf->str, "\r\n\r\n"));

  text = "GET /later/10 HTTP/1.1\r\nHost: a\r\n\r\n";
  write_all (client_end, text, strlen (text));
  run_ready (fx);
  g_assert_cmpuint (fx->tickets->len, ==, 3);
  close (client_end);
  for (guint i = 0; i < 100 && fx->closed == 0; i++)
    g_main_context_iteration (fx->context, TRUE);
  g_assert_cmpuint (fx->closed, ==, 1);
  g_assert_false (alv_http_front_answer (fx->front, g_array_index (fx->tickets, guint64, 2), &answer));
  g_string_free (answer.headers, TRUE);
  g_string_free (answer.body, TRUE);
}

/* At a listener's cap, the front closes the connections whose clients
 * left before it has read their end (it runs no turn here), of the
 * address asked only; a client still there, or half-closed while its
 * answer is awaited, stays. */
static void
test_reap (Fixture       *fx,
           gconstpointer  data G_GNUC_UNUSED)
{
  const char *later = "GET /later/3 HTTP/1.1\r\nHost: a\r\n\r\n";
  AlvHttpAnswer answer = { 200, NULL, g_string_new ("Content-Type: text/plain\r\n"),
                           g_string_new ("00000003\n"), 0 };
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autoptr(GArray) numbers = g_array_new (FALSE, FALSE, sizeof (guint));
  int front_end[4], client_end[4];

  start_front (fx, 10, 30);
  for (guint i = 0; i < G_N_ELEMENTS (front_end); i++)
    {
      socket_pair (&front_end[i], &client_end[i]);
      if (i == 3)
        write_str (client_end[i], later);
      alv_http_front_take (fx->front, front_end[i], fx->remote, i < 2 ? "a" : "b");
    }
  /* 0 and 1 idle (a), 2 idle (b), 3 waits for its answer (b) */
  g_assert_cmpuint (fx->tickets->len, ==, 1);
  g_assert_cmpuint (alv_http_front_reap (fx->front, NULL), ==, 0);

  close (client_end[0]);
  close (client_end[2]);
  g_assert_cmpuint (alv_http_front_reap (fx->front, "c"), ==, 0);
  g_assert_cmpuint (alv_http_front_reap (fx->front, "a"), ==, 1);
  g_assert_cmpuint (fx->closed, ==, 1);
  g_assert_cmpuint (alv_http_front_get_n_connections (fx->front), ==, 3);

  /* half-closed while its answer is awaited: still there */
  g_assert_cmpint (shutdown (client_end[3], SHUT_WR), ==, 0);
  g_assert_cmpuint (alv_http_front_reap (fx->front, "b"), ==, 1);
  g_assert_cmpuint (fx->closed, ==, 2);
  g_assert_true (alv_http_front_answer (fx->front, g_array_index (fx->tickets, guint64, 0), &answer));
  run_ready (fx);
  read_answers (client_end[3], buf, numbers);
  assert_in_order (numbers, 3, 1);

  /* answered, it reads the client's end in its own turn */
  run_ready (fx);
  g_assert_cmpuint (fx->closed, ==, 3);
  g_assert_cmpuint (alv_http_front_get_n_connections (fx->front), ==, 1);
  g_assert_cmpuint (alv_http_front_reap (fx->front, NULL), ==, 0);
  close (client_end[1]);
  g_assert_cmpuint (alv_http_front_reap (fx->front, NULL), ==, 1);
  g_assert_cmpuint (alv_http_front_get_n_connections (fx->front), ==, 0);
  g_assert_cmpuint (fx->closed, ==, 4);
  close (client_end[3]);
  g_string_free (answer.headers, TRUE);
  g_string_free (answer.body, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/common/http-front/timer", test_timer);
  ADD ("/common/http-front/turns", test_turns);
  ADD ("/common/http-front/pipeline-bound", test_pipeline_bound);
  ADD ("/common/http-front/later", test_later);
  ADD ("/common/http-front/reap", test_reap);
#undef ADD
  return g_test_run ();
}
