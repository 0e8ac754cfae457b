/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's fast path (common/alv-http-front.c) on real sockets on
 * loopback, against the real binary: keep-alive and pipelining, the
 * hand-over to libsoup of every other request on the same connection
 * (its bytes still unread), and hostile clients: malformed and oversized
 * heads, slow and silent ones, pipelining without reading, connections
 * over the per-address cap.  Requests are written and answers read by
 * hand, byte for byte what goes over the wire.
 */
#include "config.h"

#include <string.h>
#include <sys/socket.h>
#include <gio/gio.h>

#include "test-util.h"

#define WAIT_MS 20000
#define IO_TIMEOUT_S 20

typedef struct
{
  char *dir;                    /* the docroot */
  GSubprocess *gateway;
  char *url;                    /* http://127.0.0.1:PORT/ */
  char *host;                   /* 127.0.0.1:PORT */
  char *urn;                    /* of the docroot's item */
  GDataInputStream *log;        /* the gateway's stderr, when piped */
  GSubprocess *redis;
  char *redis_dir;
} Fixture;

typedef struct
{
  guint minor;
  guint status;
  GHashTable *headers;          /* lower-case name → value */
  GString *body;
} Answer;

static void
answer_clear (Answer *a)
{
  g_clear_pointer (&a->headers, g_hash_table_unref);
  if (a->body != NULL)
    g_string_free (a->body, TRUE);
  a->body = NULL;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Answer, answer_clear)

static const char *
answer_header (const Answer *a,
               const char   *name)
{
  return g_hash_table_lookup (a->headers, name);
}

/* --- the wire --------------------------------------------------------- */

/* A new connection to the gateway; @rcvbuf: the size of its receive
 * buffer (0: the kernel's, which grows as needed). */
static GSocket *
connect_to_full (Fixture *fx,
                 int      rcvbuf)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GUri) uri = g_uri_parse (fx->url, G_URI_FLAGS_NONE, &error);
  g_autoptr(GSocketAddress) address = NULL;
  GSocket *socket;

  g_assert_no_error (error);
  address = g_inet_socket_address_new_from_string (g_uri_get_host (uri),
                                                   (guint) g_uri_get_port (uri));
  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  /* every blocking read or write below ends within this */
  g_socket_set_timeout (socket, IO_TIMEOUT_S);
  if (rcvbuf > 0)
    {
      g_socket_set_option (socket, SOL_SOCKET, SO_RCVBUF, rcvbuf, &error);
      g_assert_no_error (error);
    }
  g_socket_connect (socket, address, NULL, &error);
  g_assert_no_error (error);
  return socket;
}

static GSocket *
connect_to (Fixture *fx)
{
  return connect_to_full (fx, 0);
}

static void
send_text (GSocket    *socket,
           const char *text,
           gsize       len)
{
  gsize off = 0;

  while (off < len)
    {
      g_autoptr(GError) error = NULL;
      gssize n = g_socket_send (socket, text + off, len - off, NULL, &error);

      g_assert_no_error (error);
      off += (gsize) n;
    }
}

static void
send_str (GSocket    *socket,
          const char *text)
{
  send_text (socket, text, strlen (text));
}

/* Reads more into @buf; FALSE at the end of the stream (or a reset). */
static gboolean
read_more (GSocket *socket,
           GString *buf)
{
  g_autoptr(GError) error = NULL;
  char chunk[16384];
  gssize n = g_socket_receive (socket, chunk, sizeof chunk, NULL, &error);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED)
      || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE))
    return FALSE;
  g_assert_no_error (error);        /* a timeout fails the test */
  if (n == 0)
    return FALSE;
  g_string_append_len (buf, chunk, n);
  return TRUE;
}

/* Reads one answer from @socket (what follows it stays in @buf); FALSE
 * when the stream ends before one. */
static gboolean
read_answer (GSocket  *socket,
             GString  *buf,
             gboolean  head,
             Answer   *a)
{
  const char *end;
  g_auto(GStrv) lines = NULL;
  guint64 length = 0;
  gsize head_len;
  const char *cl;

  while ((end = g_strstr_len (buf->str, (gssize) buf->len, "\r\n\r\n")) == NULL)
    if (!read_more (socket, buf))
      {
        g_assert_cmpuint (buf->len, ==, 0);  /* never half an answer */
        return FALSE;
      }
  head_len = (gsize) (end - buf->str) + 4;
  {
    g_autofree char *text = g_strndup (buf->str, head_len - 4);

    lines = g_strsplit (text, "\r\n", -1);
  }
  g_assert_true (g_str_has_prefix (lines[0], "HTTP/1."));
  a->minor = (guint) (lines[0][7] - '0');
  a->status = (guint) g_ascii_strtoull (lines[0] + 9, NULL, 10);
  a->headers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  for (guint i = 1; lines[i] != NULL; i++)
    {
      const char *colon = strchr (lines[i], ':');

      g_assert_nonnull (colon);
      g_hash_table_replace (a->headers, g_ascii_strdown (lines[i], colon - lines[i]),
                            g_strstrip (g_strdup (colon + 1)));
    }
  cl = answer_header (a, "content-length");
  if (cl != NULL && !head)
    length = g_ascii_strtoull (cl, NULL, 10);
  g_string_erase (buf, 0, (gssize) head_len);
  while (buf->len < length)
    g_assert_true (read_more (socket, buf));
  a->body = g_string_new_len (buf->str, (gssize) length);
  g_string_erase (buf, 0, (gssize) length);
  return TRUE;
}

/* The server closes @socket (within the I/O timeout), sending nothing. */
static void
assert_closed (GSocket *socket,
               GString *buf)
{
  g_assert_false (read_more (socket, buf));
  g_assert_cmpuint (buf->len, ==, 0);
}

static char *
announce_request_full (Fixture    *fx,
                       const char *method,
                       guint       port,
                       const char *version,
                       const char *extra)
{
  return g_strdup_printf ("%s /announce?urn=%s&port=%u&event=update&ranges=bytes%%200-999 %s\r\n"
                          "Host: %s\r\n%s\r\n", method, fx->urn, port, version, fx->host,
                          extra != NULL ? extra : "");
}

static char *
announce_request (Fixture    *fx,
                  guint       port,
                  const char *version,
                  const char *extra)
{
  return announce_request_full (fx, "GET", port, version, extra);
}

static void
assert_announce_answer (Fixture      *fx,
                        const Answer *a)
{
  g_assert_cmpuint (a->status, ==, 200);
  g_assert_cmpstr (answer_header (a, "x-content-urn"), ==, fx->urn);
  g_assert_cmpstr (answer_header (a, "x-reachable"), ==, "unknown");
  g_assert_cmpstr (answer_header (a, "cache-control"), ==, "no-store");
  g_assert_nonnull (answer_header (a, "x-announce-interval"));
  g_assert_nonnull (answer_header (a, "x-origin-lease"));
  g_assert_nonnull (answer_header (a, "date"));
  g_assert_true (g_str_has_prefix (answer_header (a, "server"), "alluvium-gateway/"));
  g_assert_true (g_str_has_prefix (answer_header (a, "content-type"), "text/plain"));
}

/* An announce on a new connection is answered. */
static void
assert_serves_on (Fixture *fx)
{
  g_autoptr(GSocket) socket = connect_to (fx);
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autofree char *request = announce_request (fx, 7000, "HTTP/1.1", NULL);
  g_auto(Answer) a = { 0, };

  send_str (socket, request);
  g_assert_true (read_answer (socket, buf, FALSE, &a));
  assert_announce_answer (fx, &a);
}

static guint
count_lines (const char *text)
{
  guint n = 0;

  for (const char *c = text; *c != '\0'; c++)
    n += *c == '\n';
  return n;
}

/* --- the gateway ------------------------------------------------------ */

/* Starts the gateway on a docroot of one item with @options (and its
 * stderr in fx->log with @log), and resolves the item. */
static void
start_with (Fixture            *fx,
            gboolean            log,
            const char * const *options)
{
  g_autoptr(GPtrArray) extra = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *item = g_build_filename (fx->dir, "item.mp3", NULL);
  g_autofree char *data = g_malloc (50000);
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autoptr(GSocket) socket = NULL;
  g_autofree char *request = NULL;

  for (guint i = 0; i < 50000; i++)
    data[i] = (char) (i * 7 + i / 256);
  g_file_set_contents (item, data, 50000, &error);
  g_assert_no_error (error);
  g_ptr_array_add (extra, g_strconcat ("--docroot=", fx->dir, NULL));
  for (guint i = 0; options != NULL && options[i] != NULL; i++)
    g_ptr_array_add (extra, g_strdup (options[i]));
  g_ptr_array_add (extra, NULL);
  fx->gateway = test_spawn_gateway_full ((const char * const *) extra->pdata, 0,
                                         log ? G_SUBPROCESS_FLAGS_STDERR_PIPE
                                             : G_SUBPROCESS_FLAGS_NONE,
                                         WAIT_MS, &fx->url);
  if (log)
    fx->log = g_data_input_stream_new (g_subprocess_get_stderr_pipe (fx->gateway));
  fx->host = g_strndup (fx->url + strlen ("http://"), strlen (fx->url) - strlen ("http://") - 1);

  /* a docroot file is checked on every resolve: answered by the front
   * when the check is done (202 while it is first hashed) */
  request = g_strdup_printf ("GET /resolve?url=%sitem.mp3 HTTP/1.1\r\nHost: %s\r\n\r\n",
                             fx->url, fx->host);
  for (guint i = 0; i < 20 && fx->urn == NULL; i++)
    {
      g_auto(Answer) a = { 0, };

      g_clear_object (&socket);
      socket = connect_to (fx);
      send_str (socket, request);
      g_assert_true (read_answer (socket, buf, FALSE, &a));
      g_assert_true (a.status == 200 || a.status == 202);
      if (a.status == 200)
        fx->urn = g_strdup (answer_header (&a, "x-content-urn"));
      g_string_truncate (buf, 0);
    }
  g_assert_nonnull (fx->urn);
}

static void
start (Fixture    *fx,
       const char *first_option,
       ...)
{
  g_autoptr(GPtrArray) options = g_ptr_array_new ();
  const char *option;
  va_list args;

  va_start (args, first_option);
  for (option = first_option; option != NULL; option = va_arg (args, const char *))
    g_ptr_array_add (options, (gpointer) option);
  va_end (args);
  g_ptr_array_add (options, NULL);
  start_with (fx, FALSE, (const char * const *) options->pdata);
}


static void
fixture_setup (Fixture       *fx,
               gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("alluvium-front-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  if (fx->gateway != NULL)
    g_assert_true (test_subprocess_stop (fx->gateway, SIGTERM, WAIT_MS));
  g_clear_object (&fx->gateway);
  g_clear_object (&fx->log);
  if (fx->redis != NULL)
    g_assert_true (test_subprocess_stop (fx->redis, SIGTERM, WAIT_MS));
  g_clear_object (&fx->redis);
  if (fx->redis_dir != NULL)
    test_remove_tree (fx->redis_dir);
  g_free (fx->redis_dir);
  test_remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->url);
  g_free (fx->host);
  g_free (fx->urn);
}

/* A number on the gateway's /status page (asked on a new connection). */
static guint64
status_value (Fixture    *fx,
              const char *key)
{
  g_autoptr(GSocket) socket = connect_to (fx);
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autofree char *request = g_strdup_printf ("GET /status HTTP/1.1\r\nHost: %s\r\n\r\n", fx->host);
  g_autofree char *prefix = g_strconcat ("\n", key, ": ", NULL);
  g_auto(Answer) a = { 0, };
  const char *at;

  send_str (socket, request);
  g_assert_true (read_answer (socket, buf, FALSE, &a));
  g_assert_cmpuint (a.status, ==, 200);
  at = strstr (a.body->str, prefix);
  g_assert_nonnull (at);
  return g_ascii_strtoull (at + strlen (prefix), NULL, 10);
}

/* The fewest bytes @a took on the wire: its status line, headers and
 * body as read (blanks around values stripped). */
static guint64
answer_wire_min (const Answer *a)
{
  GHashTableIter iter;
  gpointer name, value;
  guint64 size = strlen ("HTTP/1.1 200 \r\n\r\n") + a->body->len;

  g_hash_table_iter_init (&iter, a->headers);
  while (g_hash_table_iter_next (&iter, &name, &value))
    size += strlen (name) + strlen (value) + 4;
  return size;
}

/* --- tests ------------------------------------------------------------ */

/* Before: libsoup 3.2 closed every connection after one answer
 * ("Connection: close"). */
static void
test_keep_alive (Fixture       *fx,
                 gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GString) buf = g_string_new (NULL);

  start (fx, NULL);
  socket = connect_to (fx);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *request = announce_request (fx, 7000 + i, "HTTP/1.1", NULL);
      g_auto(Answer) a = { 0, };

      send_str (socket, request);
      g_assert_true (read_answer (socket, buf, FALSE, &a));
      assert_announce_answer (fx, &a);
      g_assert_cmpuint (a.minor, ==, 1);
      g_assert_null (answer_header (&a, "connection"));
      /* the peers announced before on this connection */
      if (i > 0)
        g_assert_cmpuint (a.body->len, >, 0);
    }
  {
    /* HEAD: the headers of GET, no body */
    g_autofree char *request = announce_request_full (fx, "HEAD", 7000, "HTTP/1.1", NULL);
    g_auto(Answer) a = { 0, };

    send_str (socket, request);
    g_assert_true (read_answer (socket, buf, TRUE, &a));
    assert_announce_answer (fx, &a);
    g_assert_cmpuint (g_ascii_strtoull (answer_header (&a, "content-length"), NULL, 10), >, 0);
  }
  {
    /* the last one asks to close */
    g_autofree char *request = announce_request (fx, 7000, "HTTP/1.1", "Connection: close\r\n");
    g_auto(Answer) a = { 0, };

    send_str (socket, request);
    g_assert_true (read_answer (socket, buf, FALSE, &a));
    assert_announce_answer (fx, &a);
    g_assert_cmpstr (answer_header (&a, "connection"), ==, "close");
    assert_closed (socket, buf);
  }
  {
    /* HTTP/1.0 closes unless asked to keep alive */
    g_autoptr(GSocket) old = connect_to (fx);
    g_autofree char *request = announce_request (fx, 7000, "HTTP/1.0", NULL);
    g_auto(Answer) a = { 0, };

    send_str (old, request);
    g_assert_true (read_answer (old, buf, FALSE, &a));
    g_assert_cmpuint (a.minor, ==, 0);
    assert_announce_answer (fx, &a);
    assert_closed (old, buf);
  }
}

/* With the shared store up, the front answers announces as well, once
 * Redis has: five pipelined on one kept-alive connection, answered in
 * order, each with the peers announced before it (before: each went to
 * libsoup, which closed the connection after its answer). */
static void
test_keep_alive_redis (Fixture       *fx,
                       gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autoptr(GString) requests = g_string_new (NULL);
  g_autofree char *sock = NULL;
  g_autofree char *store = NULL;

  fx->redis_dir = g_dir_make_tmp ("alluvium-front-redis-XXXXXX", &error);
  g_assert_no_error (error);
  fx->redis = test_spawn_redis (fx->redis_dir, WAIT_MS, &sock);
  if (fx->redis == NULL)
    {
      g_test_skip ("redis-server is not installed (Debian: redis-server)");
      return;
    }
  store = g_strconcat ("--store=unix:", sock, NULL);
  start_with (fx, TRUE, (const char *[]) { store, NULL });
  test_read_line_with (fx->log, "connected to Redis", WAIT_MS);
  g_assert_cmpuint (status_value (fx, "store-up"), ==, 1);

  socket = connect_to (fx);
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *request = announce_request (fx, 7600 + i, "HTTP/1.1", NULL);

      g_string_append (requests, request);
    }
  send_text (socket, requests->str, requests->len);
  for (guint i = 0; i < 5; i++)
    {
      g_auto(Answer) a = { 0, };

      g_assert_true (read_answer (socket, buf, FALSE, &a));
      assert_announce_answer (fx, &a);
      g_assert_null (answer_header (&a, "connection"));
      g_assert_cmpuint (count_lines (a.body->str), ==, i);
    }
  /* still open */
  {
    g_autofree char *request = announce_request (fx, 7600, "HTTP/1.1", NULL);
    g_auto(Answer) a = { 0, };

    send_str (socket, request);
    g_assert_true (read_answer (socket, buf, FALSE, &a));
    assert_announce_answer (fx, &a);
    g_assert_cmpuint (count_lines (a.body->str), ==, 4);
  }
  g_assert_cmpuint (status_value (fx, "announces"), ==, 6);
}

/* Forty announces and a /status in one write: forty answers from the
 * fast path, in order (32 in one turn of its loop, the rest in the
 * next), then libsoup answers /status on the same connection (handed
 * over with its bytes unread) and closes it. */
static void
test_pipelined (Fixture       *fx,
                gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autoptr(GString) requests = g_string_new (NULL);
  g_auto(Answer) status = { 0, };

  start (fx, NULL);
  socket = connect_to (fx);
  for (guint i = 0; i < 40; i++)
    {
      g_autofree char *request = announce_request (fx, 7100 + i, "HTTP/1.1", NULL);

      g_string_append (requests, request);
    }
  g_string_append_printf (requests, "GET /status HTTP/1.1\r\nHost: %s\r\n\r\n", fx->host);
  send_text (socket, requests->str, requests->len);
  for (guint i = 0; i < 40; i++)
    {
      g_auto(Answer) a = { 0, };

      g_assert_true (read_answer (socket, buf, FALSE, &a));
      assert_announce_answer (fx, &a);
      /* in order: the peers announced before this one */
      g_assert_cmpuint (count_lines (a.body->str), ==, MIN (i, 32));
    }
  g_assert_true (read_answer (socket, buf, FALSE, &status));
  g_assert_cmpuint (status.status, ==, 200);
  g_assert_nonnull (strstr (status.body->str, "announces: 40\n"));
  g_assert_nonnull (strstr (status.body->str, "peers: 40\n"));
}

/* What the fast path does not answer is answered as before, on the same
 * connection: a tree, a POST announce, a docroot file. */
static void
test_hand_over (Fixture       *fx,
                gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GString) buf = g_string_new (NULL);
  struct
  {
    const char *request;        /* with {URN} and {HOST} */
    guint status;
    const char *header;
    const char *value;          /* NULL: any */
  } cases[] = {
    { "GET /thex/{URN} HTTP/1.1\r\nHost: {HOST}\r\n\r\n", 200, "x-thex-depth", NULL },
    { "POST /announce HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
      "Content-Length: 82\r\n\r\nurn={URN}&port=7200", 200, "x-reachable", "unknown" },
    { "GET /item.mp3 HTTP/1.1\r\nHost: {HOST}\r\nRange: bytes=0-9\r\n\r\n", 206, "content-range",
      "bytes 0-9/50000" },
    { "PUT /announce HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 0\r\n\r\n", 405, "allow", NULL },
    { "GET /nowhere HTTP/1.1\r\nHost: {HOST}\r\n\r\n", 404, NULL, NULL },
  };

  start (fx, NULL);
  /* the POST's Content-Length */
  g_assert_cmpuint (strlen ("urn=") + strlen (fx->urn) + strlen ("&port=7200"), ==, 82);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GSocket) socket = connect_to (fx);
      g_autofree char *first = announce_request (fx, 7000, "HTTP/1.1", NULL);
      g_autoptr(GString) request = g_string_new (cases[i].request);
      g_auto(Answer) a = { 0, };
      g_auto(Answer) b = { 0, };

      g_test_message ("case %u", i);
      g_string_replace (request, "{URN}", fx->urn, 0);
      g_string_replace (request, "{HOST}", fx->host, 0);
      /* the fast path first, then the hand-over */
      send_str (socket, first);
      g_assert_true (read_answer (socket, buf, FALSE, &a));
      assert_announce_answer (fx, &a);
      send_str (socket, request->str);
      g_assert_true (read_answer (socket, buf, FALSE, &b));
      g_assert_cmpuint (b.status, ==, cases[i].status);
      if (cases[i].header != NULL && cases[i].value != NULL)
        g_assert_cmpstr (answer_header (&b, cases[i].header), ==, cases[i].value);
      else if (cases[i].header != NULL)
        g_assert_nonnull (answer_header (&b, cases[i].header));
      g_string_truncate (buf, 0);
    }
}

/* Malformed and oversized heads: an HTTP error or a close, never an
 * answer from the fast path, and the gateway serves on. */
static void
test_malformed (Fixture       *fx,
                gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GString) big = g_string_new (NULL);
  g_autoptr(GString) many = g_string_new (NULL);
  const char *cases[] = {
    "GARBAGE\r\n\r\n",
    "GET /announce HTTP/9.9\r\n\r\n",
    "GET /announce\r\n\r\n",
    "GET /announce HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n",
    /* a length read two ways (smuggling): 400 at once (libsoup 3.2 waited
     * for a body) */
    "GET /announce HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    "GET /announce?urn=x HTTP/1.1\r\nHost: a\r\nX: \x01\r\n\r\n",
    NULL, NULL,
  };

  g_string_append (big, "GET /announce?urn=x HTTP/1.1\r\nHost: a\r\nX-Big: ");
  for (guint i = 0; i < 6000; i++)
    g_string_append (big, "0123456789");
  g_string_append (big, "\r\n\r\n");
  cases[G_N_ELEMENTS (cases) - 2] = big->str;
  g_string_append (many, "GET /announce?urn=x HTTP/1.1\r\nHost: a\r\n");
  for (guint i = 0; i < 200; i++)
    g_string_append_printf (many, "X-%u: v\r\n", i);
  g_string_append (many, "\r\n");
  cases[G_N_ELEMENTS (cases) - 1] = many->str;

  start (fx, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GSocket) socket = connect_to (fx);
      g_autoptr(GString) buf = g_string_new (NULL);
      g_auto(Answer) a = { 0, };

      g_test_message ("case %u", i);
      send_str (socket, cases[i]);
      if (read_answer (socket, buf, FALSE, &a))
        g_assert_cmpuint (a.status, >=, 400);    /* 400, 431, 505: libsoup's or ours */
    }
  assert_serves_on (fx);
}

/* A head that never ends, and a kept-alive connection left silent, are
 * closed after --idle-timeout. */
static void
test_slow (Fixture       *fx,
           gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GSocket) slow = NULL;
  g_autoptr(GSocket) silent = NULL;
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autofree char *request = NULL;
  g_auto(Answer) a = { 0, };

  start (fx, "--idle-timeout=1", NULL);
  slow = connect_to (fx);
  send_str (slow, "GET /announce?urn=");
  silent = connect_to (fx);
  request = announce_request (fx, 7000, "HTTP/1.1", NULL);
  send_str (silent, request);
  g_assert_true (read_answer (silent, buf, FALSE, &a));
  assert_announce_answer (fx, &a);
  assert_closed (silent, buf);
  /* whatever libsoup answers (408, or nothing), the connection ends */
  while (read_more (slow, buf))
    ;
}

typedef struct
{
  GSocket *socket;
  const char *text;
  gsize len;
  guint times;
  gboolean failed;              /* the gateway closed the connection */
} Writer;

static gpointer
writer_thread (gpointer data)
{
  Writer *w = data;

  for (guint i = 0; i < w->times && !w->failed; i++)
    {
      gsize off = 0;

      while (off < w->len && !w->failed)
        {
          g_autoptr(GError) error = NULL;
          gssize n = g_socket_send (w->socket, w->text + off, w->len - off, NULL, &error);

          if (n < 0)
            w->failed = TRUE;   /* closed by either side: stop */
          else
            off += (gsize) n;
        }
    }
  return NULL;
}

/* The most bytes the kernel may hold in a TCP socket's send queue
 * (tcp_wmem's maximum; without it, no bound). */
static guint64
tcp_send_buffer_max (void)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  guint n;

  if (!g_file_get_contents ("/proc/sys/net/ipv4/tcp_wmem", &text, NULL, NULL))
    return G_MAXUINT32;
  fields = g_strsplit_set (g_strstrip (text), " \t", -1);
  n = g_strv_length (fields);
  return n >= 3 ? g_ascii_strtoull (fields[n - 1], NULL, 10) : G_MAXUINT32;
}

/* Twenty thousand pipelined requests, written as fast as the gateway
 * takes them (heads split anywhere by TCP), the client reading nothing
 * at first.  The gateway stops reading a client while an answer waits
 * (it holds one answer at most), so the announces it has answered are
 * never more than the client read, plus what the client's socket and
 * buffer hold, plus what the gateway's socket may queue (tcp_wmem's
 * maximum, 4 MiB: about 12 000 answers of 300 bytes), plus one.  That
 * is checked while the client reads nothing, once /status shows the
 * count has stopped growing (or after a bounded number of looks: the
 * bound holds at any time), then every hundred answers read; a gateway
 * that read on and queued answers in memory would have answered all
 * twenty thousand.  Then every request is answered, in order, once,
 * and nothing after. */
static void
test_pipeline_flood (Fixture       *fx,
                     gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autofree char *request = NULL;
  g_autoptr(GThread) thread = NULL;
  guint64 queue_max = tcp_send_buffer_max ();
  guint64 base, answer_min, answered, last = 0;
  Writer w;
  guint n = 20000, stable = 0;

  start (fx, NULL);
  /* one answer first: its size (they are all alike: one peer) */
  socket = connect_to_full (fx, 16384);
  request = announce_request (fx, 7300, "HTTP/1.1", NULL);
  {
    g_auto(Answer) a = { 0, };

    send_str (socket, request);
    g_assert_true (read_answer (socket, buf, FALSE, &a));
    assert_announce_answer (fx, &a);
    /* less a margin for headers whose values vary in length */
    answer_min = answer_wire_min (&a) - 32;
  }
  base = status_value (fx, "announces");
  w = (Writer) { socket, request, strlen (request), n, FALSE };
  thread = g_thread_new ("writer", writer_thread, &w);
  /* the count stops growing (once the flood has begun) when the
   * gateway waits for the client */
  for (guint look = 0; look < 5000 && stable < 50; look++)
    {
      answered = status_value (fx, "announces") - base;
      stable = answered == last && answered > 0 ? stable + 1 : 0;
      last = answered;
    }
  for (guint i = 0; i <= n; i++)
    {
      g_auto(Answer) a = { 0, };

      if (i % 100 == 0)
        {
          guint64 held = (guint64) g_socket_get_available_bytes (socket) + buf->len;
          guint64 bound = i + (held + queue_max) / answer_min + 1;

          answered = status_value (fx, "announces") - base;
          if (i % 5000 == 0)
            g_test_message ("read %u, answered %" G_GUINT64_FORMAT " (at most %" G_GUINT64_FORMAT ")",
                            i, answered, bound);
          g_assert_cmpuint (answered, <=, bound);
        }
      if (i == n)
        break;
      g_assert_true (read_answer (socket, buf, FALSE, &a));
      assert_announce_answer (fx, &a);
      g_assert_null (answer_header (&a, "connection"));
    }
  g_thread_join (g_steal_pointer (&thread));
  g_assert_false (w.failed);
  g_assert_cmpuint (buf->len, ==, 0);
  g_assert_cmpuint (status_value (fx, "announces") - base, ==, n);
  assert_serves_on (fx);
}

/* Sends @text and @extra bytes of junk in one write (more than the
 * front reads at once, less than the socket buffers hold), then says it
 * will send no more, and reads everything the gateway sends until it
 * closes: that must end in a clean end of stream, not a reset. */
static GString *
send_then_read_all (Fixture    *fx,
                    const char *text,
                    gsize       extra)
{
  g_autoptr(GSocket) socket = connect_to (fx);
  g_autoptr(GString) out = g_string_new (text);
  g_autoptr(GError) error = NULL;
  GString *got = g_string_new (NULL);

  for (gsize i = 0; i < extra; i++)
    g_string_append_c (out, 'x');
  send_text (socket, out->str, out->len);
  g_socket_shutdown (socket, FALSE, TRUE, &error);
  g_assert_no_error (error);
  for (;;)
    {
      char chunk[4096];
      gssize n = g_socket_receive (socket, chunk, sizeof chunk, NULL, &error);

      g_assert_no_error (error);  /* not "Connection reset by peer" */
      if (n == 0)
        break;
      g_string_append_len (got, chunk, n);
    }
  return got;
}

/* The front's own 400 (a broken Content-Length) is the gateway's
 * refusal: worded as the others (Cache-Control: no-store) and counted
 * in "refusals" (by refuse(), which also logs it); a HEAD gets the headers, with the body's
 * Content-Length, and no body (before: a plain answer of the front's,
 * uncounted, unlogged, with a body after HEAD). */
static void
test_front_refusal (Fixture       *fx,
                    gconstpointer  data G_GNUC_UNUSED)
{
  const char *reason = "the request's Content-Length is not one plain number";
  guint64 before;

  start (fx, NULL);
  before = status_value (fx, "refusals");
  for (guint i = 0; i < 2; i++)
    {
      gboolean head = i == 1;
      g_autofree char *request = g_strdup_printf ("%s /announce HTTP/1.1\r\nHost: %s\r\n"
                                                  "Content-Length: 1\r\nContent-Length: 2\r\n\r\n",
                                                  head ? "HEAD" : "GET", fx->host);
      g_autoptr(GSocket) socket = connect_to (fx);
      g_autoptr(GString) buf = g_string_new (NULL);
      g_auto(Answer) a = { 0, };

      g_test_message ("%s", head ? "HEAD" : "GET");
      send_str (socket, request);
      g_assert_true (read_answer (socket, buf, head, &a));
      g_assert_cmpuint (a.status, ==, 400);
      g_assert_cmpstr (answer_header (&a, "cache-control"), ==, "no-store");
      g_assert_cmpstr (answer_header (&a, "connection"), ==, "close");
      g_assert_cmpuint (g_ascii_strtoull (answer_header (&a, "content-length"), NULL, 10), ==,
                        strlen (reason) + 1);
      if (!head)
        g_assert_true (g_str_has_prefix (a.body->str, reason));
      /* after HEAD's headers, nothing */
      assert_closed (socket, buf);
    }
  g_assert_cmpuint (status_value (fx, "refusals"), ==, before + 2);
}

/* A resolve of a docroot file (checked on every resolve, in a thread)
 * is answered by the front when the check is done, on the same kept-
 * alive connection, then what was pipelined after it (before: handed to
 * libsoup, planned a second time, and the connection closed after the
 * answer).  HEAD too, without the body. */
static void
test_docroot_resolve (Fixture       *fx,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autofree char *resolve = NULL;
  g_autofree char *head = NULL;
  g_autofree char *announce = NULL;
  g_autofree char *both = NULL;
  guint64 requests;

  start (fx, NULL);
  resolve = g_strdup_printf ("GET /resolve?url=%sitem.mp3 HTTP/1.1\r\nHost: %s\r\n\r\n",
                             fx->url, fx->host);
  head = g_strdup_printf ("HEAD /resolve?url=%sitem.mp3 HTTP/1.1\r\nHost: %s\r\n\r\n",
                          fx->url, fx->host);
  announce = announce_request (fx, 7400, "HTTP/1.1", NULL);
  both = g_strconcat (resolve, announce, NULL);
  requests = status_value (fx, "requests");
  socket = connect_to (fx);
  for (guint i = 0; i < 3; i++)
    {
      g_auto(Answer) a = { 0, };
      g_auto(Answer) b = { 0, };

      g_test_message ("round %u", i);
      send_str (socket, i == 1 ? head : both);
      g_assert_true (read_answer (socket, buf, i == 1, &a));
      g_assert_cmpuint (a.status, ==, 200);
      g_assert_cmpstr (answer_header (&a, "x-content-urn"), ==, fx->urn);
      g_assert_null (answer_header (&a, "connection"));
      if (i == 1)
        {
          g_assert_cmpuint (g_ascii_strtoull (answer_header (&a, "content-length"), NULL, 10), >, 0);
          continue;
        }
      g_assert_nonnull (strstr (a.body->str, "urn: "));
      g_assert_true (read_answer (socket, buf, FALSE, &b));
      assert_announce_answer (fx, &b);
    }
  g_assert_cmpuint (buf->len, ==, 0);
  /* each request counted once (this /status is one more) */
  g_assert_cmpuint (status_value (fx, "requests"), ==, requests + 5 + 1);
}

/* The front closes a connection that sent more than it answered (after
 * a 400, after an answer to "Connection: close") without a reset: it
 * stops writing, reads what comes for a moment, then closes; the client
 * gets the whole answer and a clean end (before: close() with unread
 * bytes, a reset, the answer lost or the read failing). */
static void
test_graceful_close (Fixture       *fx,
                     gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *closing = NULL;
  const char *bad = "GET /announce HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";

  start (fx, NULL);
  closing = announce_request (fx, 7000, "HTTP/1.1", "Connection: close\r\n");
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(GString) got = send_then_read_all (fx, i == 0 ? bad : closing, 40 * 1024);
      g_auto(Answer) a = { 0, };
      g_autoptr(GString) buf = g_string_new (NULL);

      g_test_message ("case %u", i);
      g_string_append_len (buf, got->str, (gssize) got->len);
      g_assert_true (read_answer (NULL, buf, FALSE, &a));
      g_assert_cmpuint (a.status, ==, i == 0 ? 400 : 200);
      g_assert_cmpstr (answer_header (&a, "connection"), ==, "close");
      g_assert_cmpuint (buf->len, ==, 0);
    }
  assert_serves_on (fx);
}

/* A new connection answered @request (into @a).  A connection of this
 * address that closed stops counting once the gateway has read its end
 * or, at the cap, looked for it; it looks at most ten times a second
 * (against floods), so the new one may still be over the cap and closed
 * at once, and the next try is answered. */
static GSocket *
connect_answered (Fixture    *fx,
                  const char *request,
                  GString    *buf,
                  Answer     *a)
{
  for (guint i = 0; i < 50; i++)
    {
      g_autoptr(GSocket) socket = connect_to (fx);
      g_autoptr(GError) error = NULL;

      if (g_socket_send (socket, request, strlen (request), NULL, &error) == (gssize) strlen (request)
          && read_answer (socket, buf, FALSE, a))
        return g_steal_pointer (&socket);
      g_test_message ("closed at once: a close the gateway has not read yet");
      g_string_truncate (buf, 0);
    }
  g_assert_not_reached ();
}

/* Over the per-address cap, a connection is closed at once; a connection
 * the fast path closed, or handed over and libsoup closed, stops
 * counting. */
static void
test_cap (Fixture       *fx,
          gconstpointer  data G_GNUC_UNUSED)
{
  GSocket *held[4] = { NULL, };
  g_autoptr(GString) buf = g_string_new (NULL);
  g_autofree char *request = NULL;

  start (fx, "--max-connections-per-address=4", NULL);
  request = announce_request (fx, 7000, "HTTP/1.1", NULL);
  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(GSocket) over = NULL;

      for (guint i = 0; i < G_N_ELEMENTS (held); i++)
        {
          g_auto(Answer) a = { 0, };

          if (held[i] != NULL)
            continue;
          held[i] = connect_answered (fx, request, buf, &a);
          assert_announce_answer (fx, &a);
        }
      over = connect_to (fx);
      assert_closed (over, buf);
      /* one closed by the client, one by the gateway (Connection: close),
       * one handed over and closed by libsoup */
      g_clear_object (&held[0]);
      {
        g_autofree char *closing = announce_request (fx, 7000, "HTTP/1.1", "Connection: close\r\n");
        g_autofree char *status = g_strdup_printf ("GET /status HTTP/1.1\r\nHost: %s\r\n\r\n", fx->host);
        g_auto(Answer) a = { 0, };
        g_auto(Answer) b = { 0, };

        send_str (held[1], closing);
        g_assert_true (read_answer (held[1], buf, FALSE, &a));
        assert_closed (held[1], buf);
        g_clear_object (&held[1]);
        send_str (held[2], status);
        g_assert_true (read_answer (held[2], buf, FALSE, &b));
        g_assert_cmpuint (b.status, ==, 200);
        assert_closed (held[2], buf);
        g_clear_object (&held[2]);
      }
    }
  for (guint i = 0; i < G_N_ELEMENTS (held); i++)
    g_clear_object (&held[i]);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/server/gateway-front/keep-alive", test_keep_alive);
  ADD ("/server/gateway-front/pipelined", test_pipelined);
  ADD ("/server/gateway-front/keep-alive-redis", test_keep_alive_redis);
  ADD ("/server/gateway-front/hand-over", test_hand_over);
  ADD ("/server/gateway-front/malformed", test_malformed);
  ADD ("/server/gateway-front/slow", test_slow);
  ADD ("/server/gateway-front/pipeline-flood", test_pipeline_flood);
  ADD ("/server/gateway-front/cap", test_cap);
  ADD ("/server/gateway-front/graceful-close", test_graceful_close);
  ADD ("/server/gateway-front/front-refusal", test_front_refusal);
  ADD ("/server/gateway-front/docroot-resolve", test_docroot_resolve);
#undef ADD
  return g_test_run ();
}
