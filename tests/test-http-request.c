/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fast path's request-head parser (common/alv-http-request.c) on
 * its own: no sockets.  What it accepts, what it leaves to libsoup
 * (INVALID), when it waits for more (INCOMPLETE) and its limits.
 */
#include "config.h"

#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <glib.h>
#include <glib-unix.h>
#include <gio/gio.h>

#include "alv-http-front.h"
#include "alv-http-request.h"

#define MAX_HEAD 8192

static AlvHttpParse
parse (AlvHttpRequest *req,
       const char     *text)
{
  return alv_http_request_parse (req, text, strlen (text), MAX_HEAD, ALV_HTTP_MAX_HEADERS);
}

static void
test_simple (void)
{
  const char *text = "GET /announce?urn=x&port=1 HTTP/1.1\r\nHost: a\r\nUser-Agent:  wrk \r\n\r\n";
  AlvHttpRequest req;
  const AlvHttpHeader *h;
  guint count = 0;

  g_assert_cmpint (parse (&req, text), ==, ALV_HTTP_PARSE_OK);
  g_assert_cmpuint (req.head_len, ==, strlen (text));
  g_assert_true (alv_http_request_is_method (&req, "GET"));
  g_assert_false (alv_http_request_is_method (&req, "GE"));
  g_assert_cmpmem (req.path, req.path_len, "/announce", 9);
  g_assert_cmpmem (req.query, req.query_len, "urn=x&port=1", 12);
  g_assert_cmpuint (req.minor, ==, 1);
  g_assert_true (req.keep_alive);
  g_assert_false (req.has_body);
  g_assert_cmpuint (req.n_headers, ==, 2);
  h = alv_http_request_find (&req, "user-agent", &count);
  g_assert_nonnull (h);
  g_assert_cmpuint (count, ==, 1);
  g_assert_cmpmem (h->value, h->value_len, "wrk", 3);
  g_assert_null (alv_http_request_find (&req, "Accept", NULL));

  g_assert_cmpint (parse (&req, "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_null (req.query);
  g_assert_cmpmem (req.path, req.path_len, "/", 1);
  g_assert_cmpint (parse (&req, "GET /x? HTTP/1.1\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_nonnull (req.query);
  g_assert_cmpuint (req.query_len, ==, 0);
}

/* HTTP/1.1 stays open unless told "close"; HTTP/1.0 closes unless told
 * "keep-alive"; Connection is a list, any case */
static void
test_keep_alive (void)
{
  AlvHttpRequest req;

  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_false (req.keep_alive);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nConnection: TE, Close\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_false (req.keep_alive);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nConnection: closed\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_true (req.keep_alive);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.0\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_cmpuint (req.minor, ==, 0);
  g_assert_false (req.keep_alive);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_true (req.keep_alive);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_false (req.keep_alive);
}

static void
test_body (void)
{
  AlvHttpRequest req;

  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_false (req.has_body);
  g_assert_cmpint (parse (&req, "POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_true (req.has_body);
  g_assert_cmpint (parse (&req, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), ==, ALV_HTTP_PARSE_OK);
  g_assert_true (req.has_body);
  /* smuggling material: two lengths, or one that is not a number */
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n"),
                   ==, ALV_HTTP_PARSE_BAD_LENGTH);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nContent-Length: +5\r\n\r\n"), ==, ALV_HTTP_PARSE_BAD_LENGTH);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n"), ==, ALV_HTTP_PARSE_BAD_LENGTH);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nContent-Length:\r\n\r\n"), ==, ALV_HTTP_PARSE_BAD_LENGTH);
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
                   ==, ALV_HTTP_PARSE_BAD_LENGTH);
  /* leading zeros are no digits of the length (RFC 9110 allows them) */
  g_assert_cmpint (parse (&req, "GET / HTTP/1.1\r\nContent-Length: 0000000000000000000\r\n\r\n"),
                   ==, ALV_HTTP_PARSE_OK);
  g_assert_false (req.has_body);
  g_assert_cmpint (parse (&req, "POST / HTTP/1.1\r\nContent-Length: 00000000000000000000012\r\n\r\n"),
                   ==, ALV_HTTP_PARSE_OK);
  g_assert_true (req.has_body);
}

/* Not plainly valid: left to the full server, which refuses or serves
 * it as it always did. */
static void
test_invalid (void)
{
  const char *const cases[] = {
    "GARBAGE\r\n\r\n",
    "GET\r\n\r\n",
    "GET /\r\n\r\n",
    " GET / HTTP/1.1\r\n\r\n",
    "GET  / HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1 \r\n\r\n",
    "GET / HTTP/2.0\r\n\r\n",
    "GET / HTTP/1.12\r\n\r\n",
    "GET / http/1.1\r\n\r\n",
    "G(T / HTTP/1.1\r\n\r\n",
    "GET http://example.org/ HTTP/1.1\r\n\r\n",   /* absolute form */
    "GET * HTTP/1.1\r\n\r\n",
    "GET /a#b HTTP/1.1\r\n\r\n",
    "GET /a?x=%zz HTTP/1.1\r\n\r\n",
    "GET /a?x=%2 HTTP/1.1\r\n\r\n",
    "GET /a\x01 HTTP/1.1\r\n\r\n",
    "GET /\xc3\xa9 HTTP/1.1\r\n\r\n",
    "GET / HTTP/1.1\n\n",                         /* bare LF */
    "GET / HTTP/1.1\r\nHost: a\n\r\n",
    "GET / HTTP/1.1\rHost: a\r\n\r\n",            /* bare CR */
    "GET / HTTP/1.1\r\nHost : a\r\n\r\n",          /* blank before the colon */
    "GET / HTTP/1.1\r\n: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: 1\r\n  folded\r\n\r\n",
    "GET / HTTP/1.1\r\nX-A: a\x7f" "b\r\n\r\n",
    "VERYLONGMETHODNAMEX / HTTP/1.1\r\n\r\n",
  };

  static const char nul[] = "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
  AlvHttpRequest req;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("case %u", i);
      g_assert_cmpint (parse (&req, cases[i]), ==, ALV_HTTP_PARSE_INVALID);
    }
  g_assert_cmpint (alv_http_request_parse (&req, nul, sizeof nul - 1, MAX_HEAD, ALV_HTTP_MAX_HEADERS),
                   ==, ALV_HTTP_PARSE_INVALID);
}

/* Every proper prefix of a valid head waits for more; never OK early. */
static void
test_incomplete (void)
{
  const char *text = "GET /resolve?url=http%3A%2F%2Fa%2Fb HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
  gsize len = strlen (text);
  AlvHttpRequest req;

  for (gsize n = 0; n < len; n++)
    g_assert_cmpint (alv_http_request_parse (&req, text, n, MAX_HEAD, ALV_HTTP_MAX_HEADERS),
                     ==, ALV_HTTP_PARSE_INCOMPLETE);
  g_assert_cmpint (alv_http_request_parse (&req, text, len, MAX_HEAD, ALV_HTTP_MAX_HEADERS),
                   ==, ALV_HTTP_PARSE_OK);
}

/* Pipelined requests: the first head ends where the second begins. */
static void
test_pipelined (void)
{
  const char *text = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nGET /c";
  gsize len = strlen (text);
  AlvHttpRequest req;
  gsize off = 0;

  g_assert_cmpint (alv_http_request_parse (&req, text, len, MAX_HEAD, 8), ==, ALV_HTTP_PARSE_OK);
  g_assert_cmpmem (req.path, req.path_len, "/a", 2);
  off += req.head_len;
  g_assert_cmpint (alv_http_request_parse (&req, text + off, len - off, MAX_HEAD, 8), ==,
                   ALV_HTTP_PARSE_OK);
  g_assert_cmpmem (req.path, req.path_len, "/b", 2);
  off += req.head_len;
  g_assert_cmpint (alv_http_request_parse (&req, text + off, len - off, MAX_HEAD, 8), ==,
                   ALV_HTTP_PARSE_INCOMPLETE);
}

static void
test_limits (void)
{
  g_autoptr(GString) text = g_string_new ("GET / HTTP/1.1\r\n");
  AlvHttpRequest req;

  /* more header lines than allowed */
  for (guint i = 0; i < 9; i++)
    g_string_append_printf (text, "X-%u: v\r\n", i);
  g_string_append (text, "\r\n");
  g_assert_cmpint (alv_http_request_parse (&req, text->str, text->len, MAX_HEAD, 8), ==,
                   ALV_HTTP_PARSE_TOO_LARGE);
  g_assert_cmpint (alv_http_request_parse (&req, text->str, text->len, MAX_HEAD, 9), ==,
                   ALV_HTTP_PARSE_OK);
  /* the most the caller allows is also the most there is room for */
  g_assert_cmpint (alv_http_request_parse (&req, text->str, text->len, MAX_HEAD, 1000), ==,
                   ALV_HTTP_PARSE_OK);

  /* a head longer than the limit, complete or not */
  g_string_assign (text, "GET / HTTP/1.1\r\nX-Long: ");
  for (guint i = 0; i < 200; i++)
    g_string_append (text, "0123456789");
  g_assert_cmpint (alv_http_request_parse (&req, text->str, text->len, 1024, 8), ==,
                   ALV_HTTP_PARSE_TOO_LARGE);
  g_string_append (text, "\r\n\r\n");
  g_assert_cmpint (alv_http_request_parse (&req, text->str, text->len, 1024, 8), ==,
                   ALV_HTTP_PARSE_TOO_LARGE);
  g_assert_cmpint (alv_http_request_parse (&req, text->str, text->len, 4096, 8), ==,
                   ALV_HTTP_PARSE_OK);
  /* a request line longer than the limit */
  g_string_assign (text, "GET /");
  for (guint i = 0; i < 200; i++)
    g_string_append (text, "aaaaaaaaaa");
  g_assert_cmpint (alv_http_request_parse (&req, text->str, text->len, 1024, 8), ==,
                   ALV_HTTP_PARSE_TOO_LARGE);
}

/* Random bytes and random damage to a valid head: an answer, within
 * the buffer, never a crash (a bounded loop, a fixed seed). */
static void
test_random (void)
{
  const char *valid = "GET /announce?urn=x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  g_autoptr(GRand) rand = g_rand_new_with_seed (15);
  char buf[256];

  for (guint round = 0; round < 20000; round++)
    {
      gsize len = (gsize) g_rand_int_range (rand, 0, sizeof buf);
      AlvHttpRequest req;
      AlvHttpParse result;

      if (round % 2 == 0)
        {
          for (gsize i = 0; i < len; i++)
            buf[i] = (char) g_rand_int_range (rand, 0, 256);
        }
      else
        {
          len = strlen (valid);
          memcpy (buf, valid, len);
          for (guint k = 0; k < 3; k++)
            buf[g_rand_int_range (rand, 0, (gint32) len)] = (char) g_rand_int_range (rand, 0, 256);
        }
      result = alv_http_request_parse (&req, buf, len, sizeof buf, 4);
      if (result == ALV_HTTP_PARSE_OK)
        {
          g_assert_cmpuint (req.head_len, <=, len);
          g_assert_cmpuint (req.n_headers, <=, 4);
          g_assert_true (req.path >= buf && req.path + req.path_len <= buf + len);
        }
    }
}

static void
assert_same_request (const AlvHttpRequest *a,
                     const AlvHttpRequest *b)
{
  g_assert_cmpmem (a->method, a->method_len, b->method, b->method_len);
  g_assert_cmpmem (a->path, a->path_len, b->path, b->path_len);
  g_assert_true ((a->query == NULL) == (b->query == NULL));
  if (a->query != NULL)
    g_assert_cmpmem (a->query, a->query_len, b->query, b->query_len);
  g_assert_cmpuint (a->minor, ==, b->minor);
  g_assert_cmpuint (a->head_len, ==, b->head_len);
  g_assert_cmpint (a->keep_alive, ==, b->keep_alive);
  g_assert_cmpint (a->has_body, ==, b->has_body);
  g_assert_cmpuint (a->n_headers, ==, b->n_headers);
  for (guint i = 0; i < a->n_headers; i++)
    {
      g_assert_cmpmem (a->headers[i].name, a->headers[i].name_len,
                       b->headers[i].name, b->headers[i].name_len);
      g_assert_cmpmem (a->headers[i].value, a->headers[i].value_len,
                       b->headers[i].value, b->headers[i].value_len);
    }
}

/* A head that comes in pieces, split at every byte (and fed a byte at
 * a time): alv_http_request_parse_more() resumes where it stopped and
 * answers what alv_http_request_parse() answers for the same bytes, the
 * same request when complete; valid heads, invalid ones (found as soon
 * as the line that spoils them is in), limits. */
static void
test_resume (void)
{
  g_autoptr(GString) many = g_string_new ("GET / HTTP/1.1\r\n");
  g_autoptr(GString) longline = g_string_new ("GET /x HTTP/1.1\r\nX-Long: ");
  const char *cases[] = {
    "GET /resolve?url=http%3A%2F%2Fa%2Fb HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
    "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\nX-Empty:\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\n\r\n",
    "GET / HTTP/1.1\rHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\nHost : a\r\nX: 1\r\n\r\n",
    "GARBAGE\r\nHost: a\r\n\r\n",
    "GET / HTTP/1.1\r\n\r\r\n",
    NULL, NULL,
  };

  for (guint i = 0; i < 9; i++)
    g_string_append_printf (many, "X-%u: v\r\n", i);
  g_string_append (many, "\r\n");
  cases[G_N_ELEMENTS (cases) - 2] = many->str;
  for (guint i = 0; i < 120; i++)
    g_string_append (longline, "0123456789");
  g_string_append (longline, "\r\n\r\n");
  cases[G_N_ELEMENTS (cases) - 1] = longline->str;

  for (guint c = 0; c < G_N_ELEMENTS (cases); c++)
    {
      const char *text = cases[c];
      gsize len = strlen (text);
      AlvHttpRequest whole, req;
      AlvHttpParse expected = alv_http_request_parse (&whole, text, len, 1024, 8);
      AlvHttpScan scan = { 0, };

      g_test_message ("case %u", c);
      /* two pieces, split at every byte */
      for (gsize k = 0; k <= len; k++)
        {
          AlvHttpRequest first;
          AlvHttpParse early;

          memset (&scan, 0, sizeof scan);
          early = alv_http_request_parse_more (&first, &scan, text, k, 1024, 8);
          g_assert_cmpint (early, ==, alv_http_request_parse (&req, text, k, 1024, 8));
          if (early != ALV_HTTP_PARSE_INCOMPLETE)
            continue;
          g_assert_cmpint (alv_http_request_parse_more (&req, &scan, text, len, 1024, 8), ==, expected);
          if (expected == ALV_HTTP_PARSE_OK)
            assert_same_request (&req, &whole);
        }
      /* a byte at a time, one scan throughout */
      memset (&scan, 0, sizeof scan);
      for (gsize n = 0; n <= len; n++)
        {
          AlvHttpParse now = alv_http_request_parse_more (&req, &scan, text, n, 1024, 8);
          AlvHttpRequest alone;

          g_assert_cmpint (now, ==, alv_http_request_parse (&alone, text, n, 1024, 8));
          if (now == ALV_HTTP_PARSE_OK)
            assert_same_request (&req, &alone);
          if (now != ALV_HTTP_PARSE_INCOMPLETE)
            {
              g_assert_cmpint (now, ==, expected);
              break;
            }
          /* resumed: nothing before the line being read is looked at again */
          g_assert_cmpuint (scan.offset, <=, n);
          g_assert_cmpuint (scan.scanned, >=, n > 0 ? n - 1 : 0);
        }
    }
}

static AlvHttpFrontResult
never_answer (const AlvHttpRequest *req G_GNUC_UNUSED,
              GSocketAddress       *remote G_GNUC_UNUSED,
              AlvHttpAnswer        *answer G_GNUC_UNUSED,
              gpointer              user_data G_GNUC_UNUSED)
{
  return ALV_HTTP_FRONT_DECLINED;
}

static AlvHttpFrontResult
answer_ok (const AlvHttpRequest *req G_GNUC_UNUSED,
           GSocketAddress       *remote G_GNUC_UNUSED,
           AlvHttpAnswer        *answer,
           gpointer              user_data G_GNUC_UNUSED)
{
  answer->status = 200;
  g_string_append (answer->body, "ok\n");
  return ALV_HTTP_FRONT_ANSWERED;
}

static void
never_hand_over (int             fd G_GNUC_UNUSED,
                 GSocketAddress *remote G_GNUC_UNUSED,
                 const char     *address G_GNUC_UNUSED,
                 GBytes         *unread G_GNUC_UNUSED,
                 gpointer        user_data G_GNUC_UNUSED)
{
  g_assert_not_reached ();
}

static void
count_closed (const char *address G_GNUC_UNUSED,
              gpointer    user_data)
{
  (*(guint *) user_data)++;
}

/* The front (real TCP connections on loopback): a connection it keeps
 * alive after an answer answers without Nagle's delay, so that the
 * second of two pipelined answers does not wait for the client's
 * delayed ACK; one that has sent nothing yet (and may be answered and
 * closed at once) costs no setsockopt. */
static void
front_nodelay_case (gboolean send_first)
{
  AlvHttpFrontConfig config = { 10, 10, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                              G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GSocket) accepted = NULL;
  g_autoptr(GSocketAddress) remote = NULL;
  AlvHttpFront *front;
  guint closed = 0;
  int fd, nodelay = 0;
  socklen_t len = sizeof nodelay;

  g_assert_no_error (error);
  g_assert_true (g_socket_bind (listener, any, TRUE, &error));
  g_assert_true (g_socket_listen (listener, &error));
  bound = g_socket_get_local_address (listener, &error);
  g_assert_no_error (error);
  conn = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (bound), NULL, &error);
  g_assert_no_error (error);
  accepted = g_socket_accept (listener, NULL, &error);
  g_assert_no_error (error);
  remote = g_socket_get_remote_address (accepted, &error);
  g_assert_no_error (error);
  fd = dup (g_socket_get_fd (accepted));
  g_assert_cmpint (fd, >=, 0);
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);
  if (send_first)
    {
      const char *request = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";

      g_assert_cmpint (g_socket_send (g_socket_connection_get_socket (conn), request,
                                      strlen (request), NULL, &error), ==, strlen (request));
      g_assert_no_error (error);
    }

  front = alv_http_front_new (&config, send_first ? answer_ok : never_answer, never_hand_over,
                              count_closed, &closed, &error);
  g_assert_no_error (error);
  /* the request is most often read as the connection is taken, else
   * when it comes */
  alv_http_front_take (front, fd, remote, "127.0.0.1");
  for (guint i = 0; i < 100 && send_first && alv_http_front_get_n_answered (front) == 0; i++)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (alv_http_front_get_n_connections (front), ==, 1);
  g_assert_cmpuint (alv_http_front_get_n_answered (front), ==, send_first ? 1 : 0);
  g_assert_cmpint (getsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), ==, 0);
  g_assert_cmpint (nodelay != 0, ==, send_first);
  alv_http_front_free (front);
  g_assert_cmpuint (closed, ==, 1);
}

static void
test_front_nodelay (void)
{
  front_nodelay_case (FALSE);
  front_nodelay_case (TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/common/http-request/simple", test_simple);
  g_test_add_func ("/common/http-request/keep-alive", test_keep_alive);
  g_test_add_func ("/common/http-request/body", test_body);
  g_test_add_func ("/common/http-request/invalid", test_invalid);
  g_test_add_func ("/common/http-request/incomplete", test_incomplete);
  g_test_add_func ("/common/http-request/pipelined", test_pipelined);
  g_test_add_func ("/common/http-request/limits", test_limits);
  g_test_add_func ("/common/http-request/random", test_random);
  g_test_add_func ("/common/http-request/resume", test_resume);
  g_test_add_func ("/common/http-front/nodelay", test_front_nodelay);
  return g_test_run ();
}
