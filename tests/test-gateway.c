/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Integration tests of `alluvium-server gateway`: the real binary runs as
 * a child process on 127.0.0.1:0 and is driven with a libsoup client.
 * A SoupServer in this process plays the station's origin (counting every
 * request it gets, answering conditional requests, optionally slowly or
 * with a lying length); the gateway's docroot is a scratch directory.
 * Every URN the gateway names is checked against what the common library
 * computes for the same bytes.  Each test starts its own gateway and
 * kills it in teardown; the child also gets PR_SET_PDEATHSIG so a failed
 * assertion (which aborts this process) cannot leave it running.
 */
#define G_LOG_DOMAIN "test-gateway"
#include "config.h"

#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <libsoup/soup.h>

#include "alv-hash-tree.h"
#include "alv-ocn-headers.h"
#include "alv-playlist.h"
#include "alv-urn.h"
#include "test-bus.h"
#include "test-util.h"

#define WAIT_TIMEOUT (10 * G_TIME_SPAN_SECOND)
#define WAIT_MS ((guint) (WAIT_TIMEOUT / G_TIME_SPAN_MILLISECOND))

typedef struct
{
  GBytes *body;
  char *etag;
  guint delay_ms;               /* hold the answer this long */
  gboolean stuck;               /* hold it until the test ends */
  gboolean chunked;             /* no Content-Length */
} OriginFile;

typedef struct
{
  char *dir;
  char *docroot;
  char *state;
  SoupServer *origin;
  char *origin_url;             /* http://127.0.0.1:PORT/ */
  GHashTable *files;            /* path → OriginFile */
  guint origin_requests;
  guint origin_bodies;          /* 200 answers with a body */
  guint origin_not_modified;
  SoupSession *session;
  GSubprocess *gateway;
  char *url;                    /* gateway base URL, with '/' */
  guint file_serial;
  GPtrArray *held;              /* origin answers held (stuck files) */
  /* several gateways on one Redis: the second gateway (swap_gateways()
   * makes it the one requests go to), their logs, and Redis */
  GDataInputStream *log;
  GSubprocess *gateway_b;
  char *url_b;
  GDataInputStream *log_b;
  GSubprocess *redis;
  char *redis_dir;
  char *redis_sock;
} Fixture;

/* --- helpers: misc -------------------------------------------------- */

static GBytes *
make_content (gsize len,
              guint seed)
{
  guint8 *data = g_malloc (len);
  GRand *rand = g_rand_new_with_seed (seed);

  for (gsize i = 0; i < len; i++)
    data[i] = (guint8) g_rand_int (rand);
  g_rand_free (rand);
  return g_bytes_new_take (data, len);
}

static char *
urn_for (GBytes *bytes)
{
  g_autoptr(AlvHashTree) tree = alv_hash_tree_new_for_data (g_bytes_get_data (bytes, NULL),
                                                            g_bytes_get_size (bytes),
                                                            ALV_HASH_TREE_DEFAULT_BLOCK_SIZE);
  return alv_hash_tree_get_urn (tree);
}

static void
write_doc (Fixture    *fx,
           const char *rel,
           GBytes     *bytes)
{
  g_autofree char *path = g_build_filename (fx->docroot, rel, NULL);
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(GError) error = NULL;

  g_mkdir_with_parents (dir, 0700);
  g_file_set_contents (path, g_bytes_get_data (bytes, NULL), (gssize) g_bytes_get_size (bytes),
                       &error);
  g_assert_no_error (error);
}

/* --- the origin ----------------------------------------------------- */

static gboolean
origin_release_cb (gpointer user_data)
{
  SoupServerMessage *msg = user_data;

  soup_server_message_unpause (msg);
  g_object_unref (msg);
  return G_SOURCE_REMOVE;
}

static void
origin_cb (SoupServer        *server G_GNUC_UNUSED,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query G_GNUC_UNUSED,
           gpointer           user_data)
{
  Fixture *fx = user_data;
  OriginFile *file = g_hash_table_lookup (fx->files, path);
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const char *inm = soup_message_headers_get_one (req, "If-None-Match");

  fx->origin_requests++;
  if (file == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  soup_message_headers_replace (resp, "ETag", file->etag);
  if (inm != NULL && strcmp (inm, file->etag) == 0)
    {
      fx->origin_not_modified++;
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_MODIFIED, NULL);
      return;
    }
  fx->origin_bodies++;
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  if (file->chunked)
    soup_message_headers_set_encoding (resp, SOUP_ENCODING_CHUNKED);
  soup_server_message_set_response (msg, "audio/ogg", SOUP_MEMORY_COPY,
                                    g_bytes_get_data (file->body, NULL),
                                    g_bytes_get_size (file->body));
  if (file->stuck)
    {
      soup_server_message_pause (msg);
      g_ptr_array_add (fx->held, g_object_ref (msg));
    }
  else if (file->delay_ms > 0)
    {
      soup_server_message_pause (msg);
      g_timeout_add (file->delay_ms, origin_release_cb, g_object_ref (msg));
    }
}

static void
origin_file_free (OriginFile *file)
{
  g_bytes_unref (file->body);
  g_free (file->etag);
  g_free (file);
}

static OriginFile *
origin_put (Fixture    *fx,
            const char *path,
            GBytes     *body)
{
  OriginFile *file = g_new0 (OriginFile, 1);

  file->body = g_bytes_ref (body);
  file->etag = g_strdup_printf ("\"v%u\"", ++fx->file_serial);
  g_hash_table_replace (fx->files, g_strdup (path), file);
  return file;
}

/* --- the gateway ---------------------------------------------------- */

static void
stop_gateway (Fixture *fx,
              int      signum)
{
  gboolean stopped;

  if (fx->gateway == NULL)
    return;
  stopped = test_subprocess_stop (fx->gateway, signum, 5000);
  if (signum == SIGTERM)
    {
      /* a clean stop exits 0 */
      g_assert_true (stopped);
      g_assert_true (g_subprocess_get_if_exited (fx->gateway));
      g_assert_cmpint (g_subprocess_get_exit_status (fx->gateway), ==, 0);
    }
  g_clear_object (&fx->gateway);
  g_clear_pointer (&fx->url, g_free);
}

/* Starts the gateway with the common options plus NULL-terminated extra
 * ones, and waits for its "listening on" line. */
G_GNUC_NULL_TERMINATED
static void
start_gateway (Fixture    *fx,
               const char *first,
               ...)
{
  g_autoptr(GPtrArray) extra = g_ptr_array_new ();
  const char *arg;
  va_list args;

  g_assert_null (fx->gateway);
  va_start (args, first);
  for (arg = first; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (extra, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (extra, NULL);
  fx->gateway = test_spawn_gateway ((const char * const *) extra->pdata, WAIT_MS, &fx->url);
  g_assert_true (g_str_has_suffix (fx->url, "/"));
}

/* --- the client ----------------------------------------------------- */

typedef struct
{
  gboolean done;
  guint status;
  SoupMessageHeaders *headers;
  GBytes *body;
} Response;

static void
response_clear (Response *r)
{
  g_clear_pointer (&r->headers, soup_message_headers_unref);
  g_clear_pointer (&r->body, g_bytes_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Response, response_clear)

static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Response *r = user_data;
  g_autoptr(GError) error = NULL;
  SoupMessage *msg = soup_session_get_async_result_message (SOUP_SESSION (source), result);

  r->body = soup_session_send_and_read_finish (SOUP_SESSION (source), result, &error);
  g_assert_no_error (error);
  r->status = soup_message_get_status (msg);
  r->headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  r->done = TRUE;
}

static void
send_async (Fixture     *fx,
            SoupMessage *msg,
            Response    *r)
{
  soup_session_send_and_read_async (fx->session, msg, G_PRIORITY_DEFAULT, NULL, sent_cb, r);
}

static gboolean
response_done (gpointer data)
{
  return ((Response *) data)->done;
}

static void
wait_response (Response *r)
{
  test_wait_until (response_done, r, WAIT_MS);
}

/* GET (or @method) @url with optional header name/value pairs. */
G_GNUC_NULL_TERMINATED
static void
request (Fixture    *fx,
         Response   *r,
         const char *method,
         const char *url,
         ...)
{
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  const char *name;
  va_list args;

  g_assert_nonnull (msg);
  va_start (args, url);
  while ((name = va_arg (args, const char *)) != NULL)
    soup_message_headers_replace (soup_message_get_request_headers (msg), name,
                                  va_arg (args, const char *));
  va_end (args);
  send_async (fx, msg, r);
  wait_response (r);
}

static char *
resolve_url (Fixture    *fx,
             const char *media_url)
{
  g_autoptr(GString) s = g_string_new (fx->url);

  g_string_append (s, "resolve?url=");
  g_string_append_uri_escaped (s, media_url, NULL, FALSE);
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static void
resolve (Fixture    *fx,
         Response   *r,
         const char *media_url)
{
  g_autofree char *url = resolve_url (fx, media_url);

  request (fx, r, "GET", url, NULL);
}

/* Resolves until the answer is not 202 (following Retry-After). */
static void
resolve_final (Fixture    *fx,
               Response   *r,
               const char *media_url)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_TIMEOUT;

  for (;;)
    {
      resolve (fx, r, media_url);
      if (r->status != SOUP_STATUS_ACCEPTED)
        return;
      g_assert_nonnull (soup_message_headers_get_one (r->headers, "Retry-After"));
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      response_clear (r);
      r->done = FALSE;
      test_run_for (100);
    }
}

static const char *
header (Response   *r,
        const char *name)
{
  return soup_message_headers_get_one (r->headers, name);
}

static char *
body_text (Response *r)
{
  return g_strndup (g_bytes_get_data (r->body, NULL), g_bytes_get_size (r->body));
}

static gboolean
body_equal (Response *r,
            GBytes   *expected)
{
  return g_bytes_equal (r->body, expected);
}

/* Checks a 200 resolve against @content, and that the tree the gateway
 * serves is the library's tree of @content. */
static void
check_resolved (Fixture    *fx,
                Response   *r,
                GBytes     *content,
                const char *media_type)
{
  g_autofree char *urn = urn_for (content);
  g_autofree char *thex_uri = NULL;
  g_autofree char *root = NULL;
  g_autofree char *thex_url = NULL;
  g_autofree char *len = g_strdup_printf ("%" G_GSIZE_FORMAT, g_bytes_get_size (content));
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvHashTree) expected = NULL;
  g_autoptr(GBytes) serialized = NULL;
  g_auto(Response) t = { 0, };

  g_assert_cmpuint (r->status, ==, SOUP_STATUS_OK);
  g_assert_cmpstr (header (r, "X-Content-URN"), ==, urn);
  g_assert_cmpstr (header (r, "X-Content-Length"), ==, len);
  if (media_type != NULL)
    g_assert_cmpstr (header (r, "X-Content-Type"), ==, media_type);
  g_assert_cmpstr (header (r, "X-Block-Size"), ==, G_STRINGIFY (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE));
  g_assert_true (alv_thex_uri_parse (header (r, "X-Thex-URI"), &thex_uri, &root, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (root, ==, urn + strlen (ALV_URN_PREFIX));
  g_assert_true (thex_uri[0] == '/');

  thex_url = g_strconcat (fx->url, thex_uri + 1, NULL);
  request (fx, &t, "GET", thex_url, NULL);
  g_assert_cmpuint (t.status, ==, SOUP_STATUS_OK);
  g_assert_cmpstr (soup_message_headers_get_one (t.headers, "X-Content-URN"), ==, urn);
  expected = alv_hash_tree_new_for_data (g_bytes_get_data (content, NULL), g_bytes_get_size (content),
                                         ALV_HASH_TREE_DEFAULT_BLOCK_SIZE);
  serialized = alv_hash_tree_serialize (expected);
  g_assert_true (g_bytes_equal (t.body, serialized));
}

/* --- fixture -------------------------------------------------------- */

static void
fixture_setup (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("test-gateway-XXXXXX", &error);
  g_assert_no_error (error);
  fx->docroot = g_build_filename (fx->dir, "www", NULL);
  fx->state = g_build_filename (fx->dir, "state", NULL);
  g_mkdir (fx->docroot, 0700);
  fx->files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                     (GDestroyNotify) origin_file_free);

  fx->origin = test_server_new ();
  soup_server_add_handler (fx->origin, NULL, origin_cb, fx, NULL);
  fx->origin_url = test_server_get_url (fx->origin);

  fx->session = soup_session_new_with_options ("max-conns-per-host", 64, "max-conns", 64,
                                               "proxy-resolver", NULL, NULL);
  fx->held = g_ptr_array_new_with_free_func (g_object_unref);
}

static void swap_gateways (Fixture *fx);

static void
fixture_teardown (Fixture      *fx,
                  gconstpointer data G_GNUC_UNUSED)
{
  if (fx->gateway_b != NULL)
    {
      swap_gateways (fx);
      stop_gateway (fx, SIGTERM);
      swap_gateways (fx);
    }
  stop_gateway (fx, SIGTERM);
  g_clear_object (&fx->log);
  g_clear_object (&fx->log_b);
  if (fx->redis != NULL)
    g_assert_true (test_subprocess_stop (fx->redis, SIGTERM, WAIT_MS));
  g_clear_object (&fx->redis);
  g_free (fx->redis_sock);
  g_free (fx->redis_dir);
  soup_session_abort (fx->session);
  g_clear_object (&fx->session);
  soup_server_disconnect (fx->origin);
  g_clear_object (&fx->origin);
  g_ptr_array_unref (fx->held);
  g_hash_table_unref (fx->files);
  test_remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->docroot);
  g_free (fx->state);
  g_free (fx->origin_url);
}

static char *
origin_media (Fixture    *fx,
              const char *path)
{
  return g_strconcat (fx->origin_url, path + 1, NULL);
}

/* --- tests ---------------------------------------------------------- */

/* File names that need escaping in a URL are served and resolved at the
 * URL the playlist tool writes for them (every byte escaped but the
 * unreserved ones), decoded exactly once: a name holding "%25" itself is
 * found at "%2525", never at "%25". */
static void
test_docroot_names (Fixture      *fx,
                    gconstpointer data G_GNUC_UNUSED)
{
  static const char *const names[] = {
    "Top 100% Hits.mp3", "a#b?c.mp3", "Gr\xc3\xbc\xc3\x9f" "e.mp3", "with space.mp3",
    "50%25 literal.mp3", "plus+semi;colon:at@.mp3",
  };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GBytes) media = make_content (20000 + i, (guint8) (10 + i));
      g_autofree char *rel = g_strconcat ("media/", names[i], NULL);

      write_doc (fx, rel, media);
    }
  start_gateway (fx, "--docroot", fx->docroot, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(GBytes) media = make_content (20000 + i, (guint8) (10 + i));
      g_autofree char *escaped = g_uri_escape_string (names[i], NULL, FALSE);
      g_autofree char *url = g_strconcat (fx->url, "media/", escaped, NULL);

      g_test_message ("%s", url);
      {
        g_auto(Response) r = { 0, };

        request (fx, &r, "GET", url, NULL);
        g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
        g_assert_true (body_equal (&r, media));
      }
      {
        g_auto(Response) r = { 0, };

        resolve_final (fx, &r, url);
        check_resolved (fx, &r, media, "audio/mpeg");
      }
    }
  /* decoded twice, "50%2525" would be "50%" */
  {
    g_auto(Response) r = { 0, };
    g_autofree char *url = g_strconcat (fx->url, "media/50%25%20literal.mp3", NULL);

    request (fx, &r, "GET", url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_NOT_FOUND);
  }
}

/* The usage line names the command as it is typed. */
static void
test_help (Fixture      *fx G_GNUC_UNUSED,
           gconstpointer data G_GNUC_UNUSED)
{
  g_autofree char *bin = g_test_build_filename (G_TEST_BUILT, "..", "server", "alluvium-server",
                                                NULL);
  const char *argv[] = { bin, "gateway", "--help", NULL };
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL,
                               &status, &error));
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  g_assert_nonnull (strstr (out, "alluvium-server gateway [OPTION"));
}

/* A URL the gateway does not serve (here: its own files under another
 * name of the host, as a playlist built for that name has them) is
 * refused with what it serves and the option that would serve it, logged
 * once however often it is asked; the start-up lines say what it answers
 * for. */
static void
test_foreign_urls (Fixture      *fx,
                   gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) media = make_content (30000, 7);
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autofree char *bin = g_test_build_filename (G_TEST_BUILT, "..", "server", "alluvium-server",
                                                NULL);
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GDataInputStream) err = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *port = NULL;
  g_autofree char *by_name = NULL;
  g_autofree char *line = NULL;
  guint refused_lines = 0;

  write_doc (fx, "media/x.mp3", media);
  g_subprocess_launcher_setenv (launcher, "GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  fx->gateway = g_subprocess_launcher_spawn (launcher, &error, bin, "gateway", "--port=0",
                                             "--rate-limit=0", "--docroot", fx->docroot, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (fx->gateway));
  err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (fx->gateway));
  line = test_read_line (out, WAIT_MS);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "listening on http://127.0.0.1:"));
  fx->url = g_strdup (line + strlen ("listening on "));
  g_clear_pointer (&line, g_free);
  line = test_read_line (out, WAIT_MS);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "serving "));
  g_assert_nonnull (strstr (line, "resolving it at http://127.0.0.1:"));
  g_assert_nonnull (strstr (line, "(--base-url)"));

  port = g_strndup (strrchr (fx->url, ':') + 1, strlen (strrchr (fx->url, ':') + 1) - 1);
  by_name = g_strdup_printf ("http://localhost:%s/media/x.mp3", port);
  for (guint i = 0; i < 3; i++)
    {
      g_auto(Response) r = { 0, };
      g_autofree char *text = NULL;
      g_autofree char *prefix = g_strdup_printf ("--origin naming http://localhost:%s/", port);

      resolve_final (fx, &r, by_name);
      g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
      text = body_text (&r);
      g_assert_nonnull (strstr (text, "--base-url"));
      g_assert_nonnull (strstr (text, prefix));
      g_assert_nonnull (strstr (text, ", its document root"));
    }
  /* the URL it serves still resolves */
  {
    g_auto(Response) r = { 0, };
    g_autofree char *served = g_strconcat (fx->url, "media/x.mp3", NULL);

    resolve_final (fx, &r, served);
    check_resolved (fx, &r, media, "audio/mpeg");
  }

  /* its log, to its end: the refusal once */
  g_assert_true (test_subprocess_stop (fx->gateway, SIGTERM, 5000));
  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *l = test_read_line (err, WAIT_MS);

      if (l == NULL)
        break;
      if (strstr (l, "refused to resolve ") != NULL && strstr (l, by_name) != NULL)
        refused_lines++;
    }
  g_assert_cmpuint (refused_lines, ==, 1);
  g_clear_object (&fx->gateway);
  g_clear_pointer (&fx->url, g_free);
}

static void
test_docroot (Fixture      *fx,
              gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) media = make_content (200000, 1);
  g_autoptr(GBytes) media2 = make_content (150001, 2);
  g_autoptr(GBytes) rss = g_bytes_new_static ("<rdf:RDF/>\n", 11);
  g_autoptr(GBytes) empty = g_bytes_new_static ("", 0);
  g_autofree char *media_url = NULL;
  g_autofree char *rss_url = NULL;
  g_autofree char *empty_url = NULL;
  g_autofree char *urn = urn_for (media);
  g_autofree char *etag = NULL;

  write_doc (fx, "media/song one.mp3", media);
  write_doc (fx, "station.rss", rss);
  write_doc (fx, "media/empty.ogg", empty);
  write_doc (fx, ".secret", rss);
  start_gateway (fx, "--docroot", fx->docroot, NULL);
  media_url = g_strconcat (fx->url, "media/song%20one.mp3", NULL);
  rss_url = g_strconcat (fx->url, "station.rss", NULL);
  empty_url = g_strconcat (fx->url, "media/empty.ogg", NULL);

  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media_url);
    check_resolved (fx, &r, media, "audio/mpeg");
  }
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, empty_url);
    check_resolved (fx, &r, empty, "audio/ogg");
  }
  /* static: whole file, with validators and the URN it now knows */
  {
    g_auto(Response) r = { 0, };

    request (fx, &r, "GET", media_url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    g_assert_true (body_equal (&r, media));
    g_assert_cmpstr (header (&r, "Content-Type"), ==, "audio/mpeg");
    g_assert_cmpstr (header (&r, "Accept-Ranges"), ==, "bytes");
    g_assert_cmpstr (header (&r, "X-Content-URN"), ==, urn);
    g_assert_nonnull (header (&r, "Last-Modified"));
    etag = g_strdup (header (&r, "ETag"));
    g_assert_nonnull (etag);
  }
  {
    g_auto(Response) r = { 0, };

    request (fx, &r, "HEAD", media_url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    g_assert_cmpuint (g_bytes_get_size (r.body), ==, 0);
    g_assert_cmpint (soup_message_headers_get_content_length (r.headers), ==, 200000);
    g_assert_cmpstr (header (&r, "ETag"), ==, etag);
  }
  {
    g_auto(Response) r = { 0, };
    g_autoptr(GBytes) part = g_bytes_new_from_bytes (media, 70000, 1000);

    request (fx, &r, "GET", media_url, "Range", "bytes=70000-70999", NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_PARTIAL_CONTENT);
    g_assert_cmpstr (header (&r, "Content-Range"), ==, "bytes 70000-70999/200000");
    g_assert_true (body_equal (&r, part));
  }
  {
    g_auto(Response) r = { 0, };
    g_autoptr(GBytes) part = g_bytes_new_from_bytes (media, 199900, 100);

    request (fx, &r, "GET", media_url, "Range", "bytes=-100", NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_PARTIAL_CONTENT);
    g_assert_true (body_equal (&r, part));
  }
  {
    g_auto(Response) r = { 0, };

    request (fx, &r, "GET", media_url, "Range", "bytes=300000-", NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE);
    g_assert_cmpstr (header (&r, "Content-Range"), ==, "bytes */200000");
  }
  {
    /* a garbage Range is ignored */
    g_auto(Response) r = { 0, };

    request (fx, &r, "GET", media_url, "Range", "bytes=zz-", NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    g_assert_true (body_equal (&r, media));
  }
  {
    g_auto(Response) r = { 0, };

    request (fx, &r, "GET", media_url, "If-None-Match", etag, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_NOT_MODIFIED);
  }
  {
    /* If-Range with a stale validator: the whole file */
    g_auto(Response) r = { 0, };

    request (fx, &r, "GET", media_url, "Range", "bytes=0-9", "If-Range", "\"old\"", NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    g_assert_cmpuint (g_bytes_get_size (r.body), ==, 200000);
  }
  {
    g_auto(Response) r = { 0, };

    request (fx, &r, "GET", rss_url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    g_assert_cmpstr (header (&r, "Content-Type"), ==, "application/x-alluvium");
    g_assert_true (body_equal (&r, rss));
  }
  {
    g_auto(Response) r = { 0, };
    g_autofree char *url = g_strconcat (fx->url, "media/../.secret", NULL);
    g_autofree char *url2 = g_strconcat (fx->url, "media%2F..%2F.secret", NULL);
    g_autofree char *url3 = g_strconcat (fx->url, ".secret", NULL);
    g_auto(Response) r2 = { 0, };
    g_auto(Response) r3 = { 0, };

    request (fx, &r, "GET", url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_NOT_FOUND);
    request (fx, &r2, "GET", url2, NULL);
    /* libsoup itself may refuse the dot segment */
    g_assert_true (r2.status == SOUP_STATUS_NOT_FOUND || r2.status == SOUP_STATUS_BAD_REQUEST);
    request (fx, &r3, "GET", url3, NULL);
    g_assert_cmpuint (r3.status, ==, SOUP_STATUS_NOT_FOUND);
  }
  /* directories answer, for people and a station's <link>: a listing
   * (playlists first, no dot files), or the index.html there */
  {
    g_auto(Response) r = { 0, };
    g_auto(Response) r2 = { 0, };
    g_auto(Response) r3 = { 0, };
    g_autofree char *text = NULL;
    g_autofree char *text2 = NULL;
    g_autofree char *media_dir = g_strconcat (fx->url, "media", NULL);
    g_autofree char *sub = g_strconcat (fx->url, "sub/", NULL);
    g_autoptr(GBytes) page = g_bytes_new_static ("<p>hello</p>\n", 13);

    request (fx, &r, "GET", fx->url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    g_assert_cmpstr (header (&r, "Content-Type"), ==, "text/html; charset=utf-8");
    text = body_text (&r);
    g_assert_nonnull (strstr (text, "<a href=\"station.rss\">station.rss</a> (Alluvium playlist)"));
    g_assert_nonnull (strstr (text, "<a href=\"media/\">media/</a>"));
    g_assert_true (strstr (text, "station.rss") < strstr (text, "media/"));
    g_assert_null (strstr (text, "secret"));
    /* (without the slash: redirected to it) */
    request (fx, &r2, "GET", media_dir, NULL);
    g_assert_cmpuint (r2.status, ==, SOUP_STATUS_OK);
    text2 = body_text (&r2);
    g_assert_nonnull (strstr (text2, "<a href=\"song%20one.mp3\">song one.mp3</a>"));
    write_doc (fx, "sub/index.html", page);
    request (fx, &r3, "GET", sub, NULL);
    g_assert_cmpuint (r3.status, ==, SOUP_STATUS_OK);
    g_assert_true (body_equal (&r3, page));
  }
  {
    g_auto(Response) r = { 0, };
    g_autofree char *url = g_strconcat (fx->url, "media/none.mp3", NULL);

    resolve_final (fx, &r, url);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_NOT_FOUND);
  }

  /* the file is replaced: the next resolve names the new content */
  write_doc (fx, "media/song one.mp3", media2);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media_url);
    check_resolved (fx, &r, media2, "audio/mpeg");
  }
}

static void
test_origin_revalidate (Fixture      *fx,
                        gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) v1 = make_content (300000, 3);
  g_autoptr(GBytes) v2 = make_content (300000, 4);
  g_autofree char *media = origin_media (fx, "/show/a.ogg");

  origin_put (fx, "/show/a.ogg", v1);
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private",
                 "--revalidate-after=0", NULL);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, v1, "audio/ogg");
    g_assert_cmpuint (fx->origin_bodies, ==, 1);
  }
  {
    /* unchanged: revalidated with a conditional request, no new body */
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, v1, "audio/ogg");
    g_assert_cmpuint (fx->origin_bodies, ==, 1);
    g_assert_cmpuint (fx->origin_not_modified, ==, 1);
  }
  origin_put (fx, "/show/a.ogg", v2);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, v2, "audio/ogg");
    g_assert_cmpuint (fx->origin_bodies, ==, 2);
  }
  {
    /* the origin loses the file */
    g_auto(Response) r = { 0, };
    g_autofree char *missing = origin_media (fx, "/show/missing.ogg");

    resolve_final (fx, &r, missing);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_NOT_FOUND);
  }
}

static void
test_single_flight (Fixture      *fx,
                    gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (500000, 5);
  g_autofree char *media = origin_media (fx, "/slow.ogg");
  g_autofree char *url = NULL;
  Response rs[20] = { { 0, } };
  guint n_accepted = 0;

  origin_put (fx, "/slow.ogg", content)->delay_ms = 1500;
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private",
                 "--resolve-wait=200", "--retry-after=1", NULL);
  url = resolve_url (fx, media);
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);

      send_async (fx, msg, &rs[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    {
      wait_response (&rs[i]);
      /* nobody is held for the whole fetch: 202 with Retry-After */
      g_assert_cmpuint (rs[i].status, ==, SOUP_STATUS_ACCEPTED);
      g_assert_cmpstr (soup_message_headers_get_one (rs[i].headers, "Retry-After"), ==, "1");
      n_accepted++;
      response_clear (&rs[i]);
    }
  g_assert_cmpuint (n_accepted, ==, 20);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  g_assert_cmpuint (fx->origin_bodies, ==, 1);
}

static gboolean
dir_has_files (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);

  return dir != NULL && g_dir_read_name (dir) != NULL;
}

static void
test_restart (Fixture      *fx,
              gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (100000, 6);
  g_autoptr(GBytes) doc = make_content (70000, 7);
  g_autofree char *media = origin_media (fx, "/a.mp3");
  g_autofree char *entries = g_build_filename (fx->state, "entries", NULL);
  g_autofree char *doc_url = NULL;
  g_autofree char *base = g_strdup_printf ("--base-url=http://station.test/");

  origin_put (fx, "/a.mp3", content);
  write_doc (fx, "b.ogg", doc);
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--state-dir", fx->state,
                 "--docroot", fx->docroot, base, NULL);
  {
    g_auto(Response) r = { 0, };
    g_auto(Response) r2 = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
    resolve_final (fx, &r2, "http://station.test/b.ogg");
    check_resolved (fx, &r2, doc, "audio/ogg");
  }
  g_assert_cmpuint (fx->origin_bodies, ==, 1);

  /* kill -9 once the state is on disk */
  {
    gint64 deadline = g_get_monotonic_time () + WAIT_TIMEOUT;
    g_autoptr(GDir) dir = NULL;
    guint n = 0;

    while (n < 2)
      {
        const char *name;

        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        test_run_for (20);
        g_clear_pointer (&dir, g_dir_close);
        dir = g_dir_open (entries, 0, NULL);
        n = 0;
        while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
          n += g_str_has_suffix (name, ".entry");
      }
  }
  stop_gateway (fx, SIGKILL);

  /* a resolve that had to wait would get 202: --resolve-wait=0 */
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--state-dir", fx->state,
                 "--resolve-wait=0", NULL);
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  stop_gateway (fx, SIGTERM);

  /* a corrupt tree file is dropped, not trusted */
  {
    g_autofree char *trees = g_build_filename (fx->state, "trees", NULL);
    g_autofree char *urn = urn_for (content);
    g_autofree char *tree = g_build_filename (trees, urn + strlen (ALV_URN_PREFIX), NULL);

    g_assert_true (dir_has_files (trees));
    g_assert_true (g_file_set_contents (tree, "garbage", -1, NULL));
  }
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--state-dir", fx->state, NULL);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  g_assert_cmpuint (fx->origin_bodies, ==, 2);
}

/* An MPEG audio file the gateway can read a head from: an ID3v2 tag of
 * @tag_body bytes (full of sync patterns, which must not count), then
 * @n_frames frames of 128 kbit/s at 44.1 kHz (417 bytes each). */
static GBytes *
make_mp3 (gsize tag_body,
          guint n_frames)
{
  static const guint8 frame_header[4] = { 0xff, 0xfb, 0x90, 0x64 };
  GByteArray *file = g_byte_array_new ();
  guint8 tag[10] = { 'I', 'D', '3', 4, 0, 0 };
  guint8 frame[417] = { 0, };

  for (guint i = 0; i < 4; i++)
    tag[6 + i] = (tag_body >> (7 * (3 - i))) & 0x7f;
  g_byte_array_append (file, tag, sizeof tag);
  for (gsize i = 0; i < tag_body; i++)
    g_byte_array_append (file, (const guint8 *) "\xff", 1);
  memcpy (frame, frame_header, sizeof frame_header);
  for (guint i = 0; i < n_frames; i++)
    {
      frame[100] = (guint8) i;
      g_byte_array_append (file, frame, sizeof frame);
    }
  return g_byte_array_free_to_bytes (file);
}

/* The head's facts of MPEG audio come with the resolve answer, from an
 * origin and from the docroot, whatever the media type says (the core
 * tells formats by their bytes), and stay known across a restart; Ogg and
 * noise have none. */
static void
test_head (Fixture      *fx,
           gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) mp3 = make_mp3 (20000, 200);
  g_autoptr(GBytes) short_tag = make_mp3 (100, 50);
  g_autoptr(GBytes) noise = make_content (50000, 8);
  g_autofree char *media = origin_media (fx, "/tagged.mp3");
  g_autofree char *noise_url = origin_media (fx, "/noise.mp3");
  g_autofree char *doc_url = NULL;
  const char *want = "mpeg-audio; start=20010; header=fffb9064";

  origin_put (fx, "/tagged.mp3", mp3);
  origin_put (fx, "/noise.mp3", noise);
  write_doc (fx, "doc.mp3", short_tag);
  {
    g_autoptr(GByteArray) ogg = g_byte_array_new ();
    g_autoptr(GBytes) ogg_bytes = NULL;

    g_byte_array_append (ogg, (const guint8 *) "OggS", 4);
    g_byte_array_append (ogg, g_bytes_get_data (mp3, NULL), (guint) g_bytes_get_size (mp3));
    ogg_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&ogg));
    write_doc (fx, "doc.ogg", ogg_bytes);
  }
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--state-dir", fx->state,
                 "--docroot", fx->docroot, NULL);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, mp3, NULL);
    g_assert_cmpstr (header (&r, ALV_HEADER_CONTENT_HEAD), ==, want);
    g_assert_nonnull (g_strstr_len (g_bytes_get_data (r.body, NULL), (gssize) g_bytes_get_size (r.body),
                                    "\nhead: mpeg-audio; start=20010;"));
  }
  {
    g_auto(Response) r = { 0, };

    doc_url = g_strconcat (fx->url, "doc.mp3", NULL);
    resolve_final (fx, &r, doc_url);
    check_resolved (fx, &r, short_tag, "audio/mpeg");
    g_assert_cmpstr (header (&r, ALV_HEADER_CONTENT_HEAD), ==, "mpeg-audio; start=110; header=fffb9064");
  }
  {
    g_auto(Response) r = { 0, };
    g_auto(Response) r2 = { 0, };
    g_autofree char *ogg_url = g_strconcat (fx->url, "doc.ogg", NULL);

    /* named .mp3 but not MPEG audio; Ogg's first bytes before frames */
    resolve_final (fx, &r, noise_url);
    check_resolved (fx, &r, noise, NULL);
    g_assert_null (header (&r, ALV_HEADER_CONTENT_HEAD));
    resolve_final (fx, &r2, ogg_url);
    g_assert_cmpuint (r2.status, ==, SOUP_STATUS_OK);
    g_assert_cmpstr (header (&r2, "X-Content-Type"), ==, "audio/ogg");
    g_assert_null (header (&r2, ALV_HEADER_CONTENT_HEAD));
  }
  stop_gateway (fx, SIGTERM);

  /* known at once after a restart: no fetch, the same facts */
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--state-dir", fx->state,
                 "--resolve-wait=0", NULL);
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media);
    check_resolved (fx, &r, mp3, NULL);
    g_assert_cmpstr (header (&r, ALV_HEADER_CONTENT_HEAD), ==, want);
  }
  g_assert_cmpuint (fx->origin_bodies, ==, 2);
}

/* Announces with name/value pairs @args; returns the status, the peers
 * answered and, in @r, the answer. */
static guint
announce_va (Fixture    *fx,
             Response   *r,
             GPtrArray **peers_out,
             const char *first,
             va_list     args)
{
  g_autoptr(GString) url = g_string_new (fx->url);
  const char *name;
  gboolean sep = FALSE;

  g_string_append (url, "announce?");
  for (name = first; name != NULL; name = va_arg (args, const char *))
    {
      const char *value = va_arg (args, const char *);

      if (sep)
        g_string_append_c (url, '&');
      sep = TRUE;
      g_string_append_uri_escaped (url, name, NULL, FALSE);
      g_string_append_c (url, '=');
      g_string_append_uri_escaped (url, value, NULL, FALSE);
    }
  request (fx, r, "GET", url->str, "X-Forwarded-For", "203.0.113.9", NULL);
  if (peers_out != NULL)
    {
      const char *alt = header (r, "X-Alt");
      g_autoptr(GError) error = NULL;

      *peers_out = alv_alt_parse (alt ? alt : "", 64, &error);
      g_assert_no_error (error);
    }
  if (r->status == SOUP_STATUS_OK)
    g_assert_nonnull (header (r, "X-Announce-Interval"));
  return r->status;
}

/* Announces; returns the status and the peers answered. */
G_GNUC_NULL_TERMINATED
static guint
announce (Fixture   *fx,
          GPtrArray **peers_out,
          const char *first,
          ...)
{
  g_auto(Response) r = { 0, };
  va_list args;
  guint status;

  va_start (args, first);
  status = announce_va (fx, &r, peers_out, first, args);
  va_end (args);
  return status;
}

/* Announces; returns the answer's X-Reachable (NULL: none) and in
 * @lease_out and @pulls_out (nullable) its X-Origin-Lease and
 * X-Origin-Pulls (NULL: none). */
G_GNUC_NULL_TERMINATED
static char *
announce_reach (Fixture    *fx,
                GPtrArray **peers_out,
                char      **lease_out,
                char      **pulls_out,
                const char *first,
                ...)
{
  g_auto(Response) r = { 0, };
  va_list args;

  va_start (args, first);
  g_assert_cmpuint (announce_va (fx, &r, peers_out, first, args), ==, SOUP_STATUS_OK);
  va_end (args);
  if (lease_out != NULL)
    *lease_out = g_strdup (header (&r, ALV_HEADER_ORIGIN_LEASE));
  if (pulls_out != NULL)
    *pulls_out = g_strdup (header (&r, ALV_HEADER_ORIGIN_PULLS));
  return g_strdup (header (&r, ALV_HEADER_REACHABLE));
}

static gboolean
has_port (GPtrArray *peers,
          guint16    port)
{
  for (guint i = 0; i < peers->len; i++)
    if (g_inet_socket_address_get_port (peers->pdata[i]) == port)
      return TRUE;
  return FALSE;
}

static void
test_announce (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  /* 4 blocks of the default size */
  g_autoptr(GBytes) content = make_content (4 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE - 100, 8);
  g_autofree char *urn = urn_for (content);
  g_autofree char *media_url = NULL;
  g_autofree char *first_two = g_strdup_printf ("bytes 0-%u", 2 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE - 1);
  guint counts[3] = { 0, 0, 0 };

  write_doc (fx, "x.ogg", content);
  start_gateway (fx, "--docroot", fx->docroot, "--max-entries-per-address=4",
                 NULL);
  media_url = g_strconcat (fx->url, "x.ogg", NULL);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media_url);
    check_resolved (fx, &r, content, "audio/ogg");
  }

  /* A seeds, B holds blocks 0-1, C holds block 2 (as a bitfield) */
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1001", "event", "completed", NULL), ==, 200);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1002", "event", "started",
                              "ranges", first_two, NULL), ==, 200);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1003", "blocks", "IA==", NULL), ==, 200);
  {
    g_autoptr(GPtrArray) peers = NULL;

    /* D holds blocks 0 and 1; it never sees itself; the address is the
     * observed one, not X-Forwarded-For from an untrusted client */
    g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "1004", "blocks", "wA==",
                                "ip", "198.51.100.1", NULL), ==, 200);
    g_assert_cmpuint (peers->len, ==, 3);
    g_assert_true (has_port (peers, 1001) && has_port (peers, 1002) && has_port (peers, 1003));
    for (guint i = 0; i < peers->len; i++)
      {
        g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (peers->pdata[i]));

        g_assert_cmpstr (ip, ==, "127.0.0.1");
      }
  }
  {
    /* resolve names the peers too */
    g_auto(Response) r = { 0, };
    g_autoptr(GPtrArray) alt = NULL;

    resolve_final (fx, &r, media_url);
    alt = alv_alt_parse (header (&r, "X-Alt"), 64, NULL);
    g_assert_nonnull (alt);
    g_assert_cmpuint (alt->len, ==, 4);
  }
  /* one peer per answer, many times: those holding what D lacks (blocks
   * 2, 3) win more often than B, which holds nothing D needs */
  for (guint i = 0; i < 150; i++)
    {
      g_autoptr(GPtrArray) peers = NULL;
      guint16 port;

      g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "1004", "blocks", "wA==",
                                  "numwant", "1", NULL), ==, 200);
      g_assert_cmpuint (peers->len, ==, 1);
      port = g_inet_socket_address_get_port (peers->pdata[0]);
      g_assert_cmpuint (port, >=, 1001);
      g_assert_cmpuint (port, <=, 1003);
      counts[port - 1001]++;
    }
  g_test_message ("picks: seed %u, B %u, C %u", counts[0], counts[1], counts[2]);
  g_assert_cmpuint (counts[0], >, counts[1]);
  g_assert_cmpuint (counts[2], >, counts[1] / 2);

  /* stopped removes; the per-address cap refuses a sixth entry */
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1003", "event", "stopped", NULL), ==, 200);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1005", NULL), ==, 200);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1006", NULL), ==, 429);
  {
    g_autoptr(GPtrArray) peers = NULL;

    g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "1004", NULL), ==, 200);
    g_assert_false (has_port (peers, 1003));
    g_assert_true (has_port (peers, 1005));
  }

  /* garbage */
  g_assert_cmpuint (announce (fx, NULL, "port", "1001", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", "urn:tree:sha256:XYZ", "port", "1001", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                              "port", "1001", NULL), ==, 404);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "0", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "65536", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "12ab", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1001", "event", "exploded", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1001", "ranges", "bytes 9-1", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1001", "blocks", "AAAA", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1001", "blocks", "!!", NULL), ==, 400);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1001", "numwant", "-1", NULL), ==, 400);

  /* expiry: after the TTL nobody is left */
  stop_gateway (fx, SIGTERM);
  start_gateway (fx, "--docroot", fx->docroot, "--peer-ttl=1", "--trusted-proxy=127.0.0.1", NULL);
  g_free (media_url);
  media_url = g_strconcat (fx->url, "x.ogg", NULL);
  {
    g_auto(Response) r = { 0, };
    g_autoptr(GPtrArray) peers = NULL;

    resolve_final (fx, &r, media_url);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "1001", NULL), ==, 200);
    g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "1002", NULL), ==, 200);
    g_assert_true (has_port (peers, 1001));
    {
      /* behind a trusted proxy, its X-Forwarded-For names the peer */
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (peers->pdata[0]));

      g_assert_cmpstr (ip, ==, "203.0.113.9");
    }
  }
  {
    /* POST, form-encoded */
    g_autofree char *url = g_strconcat (fx->url, "announce", NULL);
    g_autofree char *form = soup_form_encode ("urn", urn, "port", "1003", "event", "started", NULL);
    g_autoptr(SoupMessage) msg = soup_message_new_from_encoded_form ("POST", url, g_steal_pointer (&form));
    g_auto(Response) r = { 0, };
    g_autoptr(GPtrArray) alt = NULL;

    send_async (fx, msg, &r);
    wait_response (&r);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    alt = alv_alt_parse (header (&r, "X-Alt"), 64, NULL);
    g_assert_nonnull (alt);
    g_assert_true (has_port (alt, 1001) && has_port (alt, 1002));
  }
  test_run_for (1300);
  {
    g_autoptr(GPtrArray) peers = NULL;

    g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "1009", NULL), ==, 200);
    g_assert_cmpuint (peers->len, ==, 0);
  }
}

/* A flood of announces for more URNs than the table may hold, from one
 * address allowed that many: the table never holds more entries than
 * --max-peer-entries, the least recently announced make room, and an
 * honest peer announcing afterwards is still answered, with the peers
 * of its URN. */
static void
test_peer_cap (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  enum { N_URNS = 12, PORTS_PER_URN = 2, CAP = 10 };
  g_autoptr(GPtrArray) urns = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *cap = g_strdup_printf ("--max-peer-entries=%d", CAP);

  for (guint i = 0; i < N_URNS; i++)
    {
      g_autoptr(GBytes) content = make_content (1000 + i, 100 + i);
      g_autofree char *name = g_strdup_printf ("f%u.ogg", i);

      write_doc (fx, name, content);
      g_ptr_array_add (urns, urn_for (content));
    }
  start_gateway (fx, "--docroot", fx->docroot, cap, "--max-entries-per-address=1000",
                 "--rate-limit=0", NULL);
  for (guint i = 0; i < N_URNS; i++)
    {
      g_autofree char *url = g_strdup_printf ("%sf%u.ogg", fx->url, i);
      g_auto(Response) r = { 0, };

      resolve_final (fx, &r, url);
      g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
    }

  for (guint i = 0; i < N_URNS; i++)
    for (guint p = 0; p < PORTS_PER_URN; p++)
      {
        g_autofree char *port = g_strdup_printf ("%u", 2000 + p);

        g_assert_cmpuint (announce (fx, NULL, "urn", urns->pdata[i], "port", port,
                                    "event", "started", NULL), ==, 200);
        g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "peers"), <=, CAP);
      }
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "peers"), ==, CAP);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "peers-max"), ==, CAP);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "peers-evicted"), ==,
                    N_URNS * PORTS_PER_URN - CAP);

  /* an honest peer of the last URN: answered, with the flood's two
   * entries of that URN, which were announced last */
  {
    g_autoptr(GPtrArray) peers = NULL;

    g_assert_cmpuint (announce (fx, &peers, "urn", urns->pdata[N_URNS - 1], "port", "3000",
                                "event", "started", NULL), ==, 200);
    g_assert_cmpuint (peers->len, ==, 2);
    g_assert_true (has_port (peers, 2000) && has_port (peers, 2001));
  }
  /* an honest peer of the first URN: answered, alone (its flood entries
   * made room long ago) */
  {
    g_autoptr(GPtrArray) peers = NULL;

    g_assert_cmpuint (announce (fx, &peers, "urn", urns->pdata[0], "port", "3000",
                                "event", "started", NULL), ==, 200);
    g_assert_cmpuint (peers->len, ==, 0);
  }
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "peers"), ==, CAP);
  stop_gateway (fx, SIGTERM);
}

static void
test_refusals (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (5000, 9);
  g_autofree char *media = origin_media (fx, "/big.ogg");
  g_autofree char *chunked = origin_media (fx, "/chunked.ogg");
  g_autofree char *localhost = g_strdup_printf ("http://localhost:%s", strrchr (fx->origin_url, ':') + 1);
  g_autofree char *by_name = g_strconcat (localhost, "big.ogg", NULL);

  origin_put (fx, "/big.ogg", content);
  origin_put (fx, "/chunked.ogg", content)->chunked = TRUE;

  /* without --allow-private: loopback origins are never contacted, by
   * IP literal or by a name that resolves to one */
  start_gateway (fx, "--origin", fx->origin_url, "--origin", localhost, NULL);
  {
    g_auto(Response) r = { 0, };
    g_auto(Response) r2 = { 0, };
    g_autofree char *text = NULL;

    resolve_final (fx, &r, media);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
    text = body_text (&r);
    g_assert_nonnull (strstr (text, "--allow-private"));
    g_assert_nonnull (strchr (text, '\n'));
    g_assert_true (strchr (text, '\n')[1] == '\0');
    resolve_final (fx, &r2, by_name);
    g_assert_cmpuint (r2.status, ==, SOUP_STATUS_FORBIDDEN);
  }
  g_assert_cmpuint (fx->origin_requests, ==, 0);
  stop_gateway (fx, SIGTERM);

  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--max-media-size=4096",
                 "--max-header-bytes=4096", "--max-peers=4", NULL);
  {
    g_auto(Response) r = { 0, };
    g_auto(Response) r2 = { 0, };

    resolve_final (fx, &r, media);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
    /* no Content-Length: stopped while streaming */
    resolve_final (fx, &r2, chunked);
    g_assert_cmpuint (r2.status, ==, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE);
  }
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, "https://elsewhere.example/big.ogg");
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
  }
  {
    /* same host, other port: not the origin */
    g_auto(Response) r = { 0, };

    resolve (fx, &r, "http://127.0.0.1:1/big.ogg");
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
  }
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, "ftp://127.0.0.1/x");
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_BAD_REQUEST);
  }
  {
    g_auto(Response) r = { 0, };
    g_autofree char *url = g_strconcat (fx->url, "resolve", NULL);

    request (fx, &r, "GET", url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_BAD_REQUEST);
  }
  {
    g_auto(Response) r = { 0, };
    g_autofree char *pad = g_strnfill (5000, 'a');
    g_autofree char *url = g_strconcat (fx->origin_url, pad, NULL);

    resolve (fx, &r, url);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_REQUEST_URI_TOO_LONG);
  }
  {
    g_auto(Response) r = { 0, };
    g_autofree char *big = g_strnfill (6000, 'x');

    g_autofree char *url = resolve_url (fx, media);

    request (fx, &r, "GET", url, "X-Junk", big, NULL);
    g_assert_cmpuint (r.status, ==, 431);
  }
  {
    g_auto(Response) r = { 0, };

    request (fx, &r, "DELETE", fx->url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_METHOD_NOT_ALLOWED);
  }
  {
    g_auto(Response) r = { 0, };
    g_autofree char *url = g_strconcat (fx->url, "thex/urn:tree:sha256:nonsense", NULL);
    g_autofree char *url2 = g_strconcat (fx->url, "thex/urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL);
    g_auto(Response) r2 = { 0, };

    request (fx, &r, "GET", url, NULL);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_BAD_REQUEST);
    request (fx, &r2, "GET", url2, NULL);
    /* libsoup itself may refuse the dot segment */
    g_assert_true (r2.status == SOUP_STATUS_NOT_FOUND || r2.status == SOUP_STATUS_BAD_REQUEST);
  }
  /* no origin got a request it should not have */
  g_assert_cmpuint (fx->origin_bodies, ==, 2);
  stop_gateway (fx, SIGTERM);

  /* rate limit per address */
  {
    guint n_limited = 0;

    start_gateway (fx, "--origin", fx->origin_url, "--rate-limit=1", "--rate-burst=3", NULL);
    for (guint i = 0; i < 8; i++)
      {
        g_auto(Response) r = { 0, };
        g_autofree char *url = g_strconcat (fx->url, "status", NULL);

        request (fx, &r, "GET", url, NULL);
        if (r.status == 429)
          {
            g_assert_cmpstr (header (&r, "Retry-After"), ==, "1");
            n_limited++;
          }
        else
          g_assert_cmpuint (r.status, ==, SOUP_STATUS_OK);
      }
    g_assert_cmpuint (n_limited, >=, 4);
  }
}

/* --- names of private addresses ------------------------------------ */

static gboolean
count_incoming_cb (GSocketService    *service G_GNUC_UNUSED,
                   GSocketConnection *connection G_GNUC_UNUSED,
                   GObject           *source G_GNUC_UNUSED,
                   gpointer           user_data)
{
  (*(guint *) user_data)++;
  return FALSE;
}

/* Without --allow-private, a host name that resolves to a loopback
 * address is refused before any connection is made to it: a listener of
 * ours on that port (127.0.0.1, and ::1 where there is one) accepts
 * nothing, and the answer is still the 403 naming the address.  With
 * it, the same name is fetched from. */
static void
test_private_name (Fixture      *fx,
                   gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GSocketService) service = g_socket_service_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GInetAddress) loopback6 = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV6);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocketAddress) bound6 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *origin = NULL;
  g_autofree char *media = NULL;
  g_auto(Response) r = { 0, };
  g_autofree char *text = NULL;
  guint16 port;
  guint accepted = 0;

  g_socket_listener_add_address (G_SOCKET_LISTENER (service), any_port, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  {
    /* "localhost" may be ::1 first: listen there too, if this host can */
    g_autoptr(GSocketAddress) same_port6 = g_inet_socket_address_new (loopback6, port);
    g_autoptr(GError) error6 = NULL;

    if (!g_socket_listener_add_address (G_SOCKET_LISTENER (service), same_port6,
                                        G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                        &bound6, &error6))
      g_test_message ("not listening on [::1]:%u: %s", port, error6->message);
  }
  g_signal_connect (service, "incoming", G_CALLBACK (count_incoming_cb), &accepted);
  g_socket_service_start (service);

  origin = g_strdup_printf ("http://localhost:%u/", port);
  media = g_strconcat (origin, "x.mp3", NULL);
  start_gateway (fx, "--origin", origin, NULL);
  resolve_final (fx, &r, media);
  text = g_strchomp (body_text (&r));
  g_test_message ("%s: %u %s", media, r.status, text);
  g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
  g_assert_nonnull (strstr (text, "--allow-private"));
  g_assert_true (strstr (text, " 127.0.0.1 ") != NULL || strstr (text, " ::1 ") != NULL);

  /* a connection the gateway made would have been in our backlog before
   * the 403 was sent: let the service take whatever is there */
  for (guint i = 0; i < 1000 && g_main_context_iteration (NULL, FALSE); i++)
    ;
  g_assert_cmpuint (accepted, ==, 0);
  g_socket_service_stop (service);
  g_socket_listener_close (G_SOCKET_LISTENER (service));
  stop_gateway (fx, SIGTERM);

  /* with --allow-private the checked addresses of the name are connected
   * to, the next one when the first refuses (our origin is on 127.0.0.1
   * only, and "localhost" may be ::1 first) */
  {
    g_autoptr(GBytes) content = make_content (25000, 31);
    g_autofree char *named = g_strdup_printf ("http://localhost:%s",
                                              strrchr (fx->origin_url, ':') + 1);
    g_autofree char *named_media = g_strconcat (named, "named.ogg", NULL);
    g_auto(Response) r2 = { 0, };

    origin_put (fx, "/named.ogg", content);
    start_gateway (fx, "--origin", named, "--allow-private", NULL);
    resolve_final (fx, &r2, named_media);
    check_resolved (fx, &r2, content, "audio/ogg");
    g_assert_cmpuint (fx->origin_bodies, ==, 1);
  }
}

/* --- an --origin prefix is not left -------------------------------- */

typedef GSubprocess *(*SpawnOrigin) (const char *root,
                                     const char *work_dir,
                                     char      **url,
                                     char      **log);

/* Ways out of /media/ that some web server decodes: each is refused
 * with 403 and the reason, and never reaches the origin. */
static const char *const origin_escapes[] = {
  "media/..%2fsecret.mp3",
  "media/..%2Fsecret.mp3",
  "media/%2E%2E%2Fsecret.mp3",
  "media/%2e%2e%2fsecret.mp3",
  "media/%2e%2e/secret.mp3",
  "media/.%2E/secret.mp3",
  "media/..;/secret.mp3",
  "media/..%3B/secret.mp3",
  "media/..%5csecret.mp3",
  "media/..\\secret.mp3",
  "media/%252e%252e%252fsecret.mp3",
  "media/..%252fsecret.mp3",
  "media/x.mp3%00/..%2f..%2fsecret.mp3",
  "media/sub/..%2f..%2fsecret.mp3",
};

/* --- reachability (connect-back) ---------------------------------- */

static gboolean
uint_is_set (gpointer data)
{
  return *(guint *) data > 0;
}

/* Waits until the gateway's /status counts @n connect-back checks ended
 * (each status request is answered at once; the loop is bounded in
 * time). */
static void
wait_connect_backs (Fixture *fx,
                    guint64  n)
{
  gint64 end = g_get_monotonic_time () + WAIT_TIMEOUT;

  while (test_gateway_status (fx->session, fx->url, "reachable")
         + test_gateway_status (fx->session, fx->url, "unreachable") < n)
    g_assert_cmpint (g_get_monotonic_time (), <, end);
}

/* The gateway connects back to the port a peer announces, at the address
 * the announce came from (127.0.0.1; the X-Forwarded-For of an untrusted
 * client names another, which is never contacted): a peer whose port
 * accepts is answered reachable, one whose port is closed unreachable
 * (unknown until the check ended); the unreachable one is not listed to
 * other askers, and its origin lease is private: the same run is granted
 * to the reachable one after it, and others are told only of that one. */
static void
test_reachable (Fixture      *fx,
                gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (4 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 16);
  g_autofree char *urn = urn_for (content);
  g_autofree char *media_url = NULL;
  g_autoptr(GSocketService) service = g_socket_service_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GSocket) closed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *open_port = NULL;
  g_autofree char *closed_port = NULL;
  const char *extra[] = { "--docroot", fx->docroot, "--connect-back-timeout=2000", NULL };
  guint incoming = 0;
  guint16 p_open, p_closed;

  /* a port that accepts, and one bound without listening: refused */
  g_socket_listener_add_address (G_SOCKET_LISTENER (service), any, G_SOCKET_TYPE_STREAM,
                                 G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
  g_assert_no_error (error);
  g_signal_connect (service, "incoming", G_CALLBACK (count_incoming_cb), &incoming);
  g_socket_service_start (service);
  p_open = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  closed = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_assert_true (g_socket_bind (closed, any, FALSE, &error));
  g_assert_no_error (error);
  g_clear_object (&bound);
  bound = g_socket_get_local_address (closed, &error);
  g_assert_no_error (error);
  p_closed = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  open_port = g_strdup_printf ("%u", p_open);
  closed_port = g_strdup_printf ("%u", p_closed);

  write_doc (fx, "r.ogg", content);
  fx->gateway = test_spawn_gateway (extra, WAIT_MS, &fx->url);
  media_url = g_strconcat (fx->url, "r.ogg", NULL);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media_url);
    check_resolved (fx, &r, content, "audio/ogg");
  }

  /* unknown until the checks end; both hold everything */
  {
    g_autofree char *a = announce_reach (fx, NULL, NULL, NULL, "urn", urn, "port", open_port,
                                         "event", "completed", NULL);
    g_autofree char *b = announce_reach (fx, NULL, NULL, NULL, "urn", urn, "port", closed_port,
                                         "event", "completed", NULL);

    g_assert_cmpstr (a, ==, "unknown");
    g_assert_cmpstr (b, ==, "unknown");
  }
  wait_connect_backs (fx, 2);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "reachable"), ==, 1);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "unreachable"), ==, 1);
  {
    g_autofree char *lease_closed = NULL;
    g_autofree char *lease_open = NULL;
    g_autofree char *pulls = NULL;
    g_autofree char *b = announce_reach (fx, NULL, &lease_closed, NULL, "urn", urn,
                                         "port", closed_port, "lease", "0-3", NULL);
    g_autofree char *a = announce_reach (fx, NULL, &lease_open, &pulls, "urn", urn,
                                         "port", open_port, "lease", "0-3", NULL);

    g_assert_cmpstr (a, ==, "yes");
    g_assert_cmpstr (b, ==, "no");
    /* nobody could copy from the unreachable puller: the run is granted
     * again (one lease at a time otherwise), and it is named to nobody */
    g_assert_cmpstr (lease_closed, ==, "0-3");
    g_assert_cmpstr (lease_open, ==, "0-3");
    g_assert_null (pulls);
  }
  /* another asker is told of the reachable one only, every time */
  for (guint i = 0; i < 10; i++)
    {
      g_autoptr(GPtrArray) peers = NULL;
      g_autofree char *pulls = NULL;
      g_autofree char *c = announce_reach (fx, &peers, NULL, &pulls, "urn", urn, "port", "1001",
                                           NULL);

      g_assert_true (has_port (peers, p_open));
      g_assert_false (has_port (peers, p_closed));
      g_assert_nonnull (pulls);
      g_assert_nonnull (strstr (pulls, open_port));
      g_assert_null (strstr (pulls, closed_port));
    }
  /* one check per address:port for the TTL: none more came */
  test_wait_until (uint_is_set, &incoming, WAIT_MS);
  g_assert_cmpuint (incoming, ==, 1);
  g_socket_service_stop (service);
}

/* A real gateway with --origin http://127.0.0.1:PORT/media/ in front of
 * a real web server serving media/x.mp3 and, beside media/, secret.mp3:
 * every escape is a 403 naming the path rule, the files under media/
 * (one whose name needs escaping too) still resolve to their URNs, and
 * the server's own log shows that nothing outside media/ was asked for. */
static void
check_origin_escapes (Fixture     *fx,
                      SpawnOrigin  spawn,
                      const char  *what)
{
  g_autofree char *work = g_build_filename (fx->dir, "server", NULL);
  g_autoptr(GBytes) media = make_content (40000, 21);
  g_autoptr(GBytes) hits = make_content (20000, 22);
  g_autoptr(GBytes) secret = make_content (30000, 23);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) server = NULL;
  g_autofree char *base = NULL;
  g_autofree char *log_path = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *log = NULL;
  g_auto(GStrv) lines = NULL;
  guint media_lines = 0;

  /* the docroot directory, but no gateway serves it: the web server does */
  write_doc (fx, "media/x.mp3", media);
  write_doc (fx, "media/Top 100% Hits.mp3", hits);
  write_doc (fx, "secret.mp3", secret);
  g_mkdir_with_parents (work, 0700);

  server = spawn (fx->docroot, work, &base, &log_path);
  if (server == NULL)
    {
      g_autofree char *why = g_strdup_printf ("%s is not installed", what);

      g_test_skip (why);
      return;
    }
  prefix = g_strconcat (base, "media/", NULL);
  start_gateway (fx, "--origin", prefix, "--allow-private", NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (origin_escapes); i++)
    {
      g_auto(Response) r = { 0, };
      g_autofree char *url = g_strconcat (base, origin_escapes[i], NULL);
      g_autofree char *text = NULL;

      resolve_final (fx, &r, url);
      text = g_strchomp (body_text (&r));
      g_test_message ("%s: %u %s", url, r.status, text);
      g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
      g_assert_nonnull (strstr (text, "the URL’s path holds"));
    }
  {
    g_auto(Response) r = { 0, };
    g_auto(Response) r2 = { 0, };
    g_autofree char *x = g_strconcat (prefix, "x.mp3", NULL);
    g_autofree char *h = g_strconcat (prefix, "Top%20100%25%20Hits.mp3", NULL);

    resolve_final (fx, &r, x);
    check_resolved (fx, &r, media, "audio/mpeg");
    resolve_final (fx, &r2, h);
    check_resolved (fx, &r2, hits, "audio/mpeg");
  }
  stop_gateway (fx, SIGTERM);

  /* the server's log, to its end */
  g_assert_true (test_subprocess_stop (server, SIGTERM, 5000));
  g_file_get_contents (log_path, &log, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (log, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (lines[i][0] != '\0')
        g_test_message ("%s: %s", what, lines[i]);
      g_assert_null (strstr (lines[i], "secret"));
      g_assert_null (strstr (lines[i], ".."));
      if (strstr (lines[i], "GET /media/") != NULL)
        media_lines++;
    }
  /* both files were fetched, so the log is the one the requests went to */
  g_assert_cmpuint (media_lines, ==, 2);
}

static GSubprocess *
spawn_nginx (const char *root,
             const char *work_dir,
             char      **url,
             char      **log)
{
  return test_spawn_nginx (root, work_dir, WAIT_MS, url, log);
}

static GSubprocess *
spawn_python (const char *root,
              const char *work_dir,
              char      **url,
              char      **log)
{
  *log = g_build_filename (work_dir, "requests.log", NULL);
  return test_spawn_http_server (root, *log, WAIT_MS, url);
}

static void
test_origin_escapes_nginx (Fixture      *fx,
                           gconstpointer data G_GNUC_UNUSED)
{
  check_origin_escapes (fx, spawn_nginx, "nginx");
}

static void
test_origin_escapes_python (Fixture      *fx,
                            gconstpointer data G_GNUC_UNUSED)
{
  check_origin_escapes (fx, spawn_python, "python3");
}

static GVariant *
dbus_call (GDBusConnection *bus,
           const char      *iface,
           const char      *method,
           GVariant        *params,
           const char      *reply_type)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  GVariant *reply;

  g_dbus_connection_call (bus, "org.alluvium.Gateway1", "/org/alluvium/Gateway1", iface, method,
                          params, G_VARIANT_TYPE (reply_type), G_DBUS_CALL_FLAGS_NONE, 5000,
                          NULL, test_async_result_cb, &result);
  test_wait_result (&result, WAIT_MS);
  reply = g_dbus_connection_call_finish (bus, result, &error);
  g_assert_no_error (error);
  return reply;
}

static void
test_dbus (Fixture      *fx,
           gconstpointer data G_GNUC_UNUSED)
{
  TestBus *bus_daemon = NULL;
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) content = make_content (120000, 10);
  g_autofree char *media = origin_media (fx, "/prep.ogg");
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) refused = NULL;
  g_autoptr(GVariant) stats = NULL;
  g_autoptr(GVariant) stats_value = NULL;
  const char *urls[] = { NULL, "https://elsewhere.example/x.ogg", NULL };
  const char *reason = NULL;
  guint64 fetches = 0;

  bus_daemon = test_bus_up (NULL);
  bus = g_dbus_connection_new_for_address_sync (test_bus_get_address (bus_daemon),
                                                G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT
                                                | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                NULL, NULL, &error);
  g_assert_no_error (error);
  origin_put (fx, "/prep.ogg", content);
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--dbus=session",
                 "--resolve-wait=0", NULL);
  test_wait_for_name (bus, "org.alluvium.Gateway1", TRUE, WAIT_MS);

  urls[0] = media;
  reply = dbus_call (bus, "org.alluvium.Gateway1", "Prepare", g_variant_new ("(^as)", urls),
                     "(a{ss})");
  refused = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (refused), ==, 1);
  g_assert_true (g_variant_lookup (refused, urls[1], "&s", &reason));
  g_assert_nonnull (strstr (reason, "origin"));

  /* the prepared URL is hashed without anyone resolving it */
  {
    gint64 deadline = g_get_monotonic_time () + WAIT_TIMEOUT;

    while (fx->origin_bodies == 0 || fetches == 0)
      {
        g_autoptr(GVariant) r = NULL;
        g_autoptr(GVariant) v = NULL;
        g_autoptr(GVariant) s = NULL;

        test_run_for (50);
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        r = dbus_call (bus, "org.freedesktop.DBus.Properties", "Get",
                       g_variant_new ("(ss)", "org.alluvium.Gateway1", "Statistics"), "(v)");
        g_variant_get (r, "(v)", &v);
        g_variant_lookup (v, "fetches", "t", &fetches);
      }
  }
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media);
    check_resolved (fx, &r, content, "audio/ogg");
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);

  stats = dbus_call (bus, "org.freedesktop.DBus.Properties", "Get",
                     g_variant_new ("(ss)", "org.alluvium.Gateway1", "Url"), "(v)");
  g_variant_get (stats, "(v)", &stats_value);
  g_assert_cmpstr (g_variant_get_string (stats_value, NULL), ==, fx->url);

  /* `playlist --prepare` without --gateway finds this gateway on the bus
   * and has it hash a new URL; a refused one fails the run */
  {
    g_autoptr(GBytes) content2 = make_content (90000, 11);
    g_autofree char *media2 = origin_media (fx, "/prep2.ogg");
    g_autofree char *pl_path = g_build_filename (fx->dir, "prep.rss", NULL);
    g_autofree char *tool = g_test_build_filename (G_TEST_BUILT, "..", "server",
                                                   "alluvium-server", NULL);
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autoptr(GSubprocess) proc = NULL;
    g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
    g_autoptr(GDateTime) t0 = g_date_time_new_utc (2030, 1, 1, 12, 0, 0);
    const char *pl_urls[] = { media, media2, urls[1] };
    guint origin_before;

    origin_put (fx, "/prep2.ogg", content2);
    alv_playlist_set_title (pl, "prepare");
    alv_playlist_set_link (pl, fx->url);
    alv_playlist_set_about (pl, fx->url);
    for (guint i = 0; i < G_N_ELEMENTS (pl_urls); i++)
      {
        g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (pl_urls[i]);
        g_autoptr(GDateTime) start = g_date_time_add_minutes (t0, 10 * (int) i);
        g_autoptr(GDateTime) end = g_date_time_add_minutes (start, 10);

        alv_playlist_item_set_title (item, "item");
        alv_playlist_item_set_media_type (item, "audio/ogg");
        alv_playlist_item_set_slot (item, start, end);
        alv_playlist_add_item (pl, item);
      }
    g_assert_true (alv_playlist_write_file (pl, pl_path, &error));
    g_assert_no_error (error);

    for (guint run = 0; run < 2; run++)
      {
        g_autofree char *out = NULL;
        g_autofree char *err = NULL;

        if (run == 1)
          {
            /* without the refused item everything is prepared */
            g_autoptr(AlvPlaylistItem) bad = g_object_ref (alv_playlist_get_item (pl, 2));

            g_assert_true (alv_playlist_remove_item (pl, bad));
            g_assert_true (alv_playlist_write_file (pl, pl_path, &error));
            g_assert_no_error (error);
          }
        origin_before = fx->origin_requests;
        launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                              | G_SUBPROCESS_FLAGS_STDERR_PIPE);
        g_subprocess_launcher_setenv (launcher, "GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
        g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
        g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
        proc = g_subprocess_launcher_spawn (launcher, &error, tool, "playlist", "--prepare",
                                            "--max-wait=20", pl_path, NULL);
        g_assert_no_error (error);
        /* the origin lives in this process: keep the loop running */
        g_assert_true (test_subprocess_wait (proc, 3 * WAIT_MS));
        g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error));
        g_assert_no_error (error);
        g_test_message ("prepare run %u: %s%s", run, out, err);
        g_assert_nonnull (strstr (out, media2));
        if (run == 0)
          {
            /* the refused item is named, and the whole run fails */
            g_assert_nonnull (strstr (out, "refuses https://elsewhere.example/x.ogg"));
            g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 1);
            /* the new URL was fetched once, the known one not again */
            g_assert_cmpuint (fx->origin_requests, ==, origin_before + 1);
          }
        else
          {
            g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);
            g_assert_cmpuint (fx->origin_requests, ==, origin_before);
          }
        g_clear_object (&proc);
        g_clear_object (&launcher);
      }
    {
      g_auto(Response) r = { 0, };

      resolve (fx, &r, media2);
      check_resolved (fx, &r, content2, "audio/ogg");
    }
  }

  stop_gateway (fx, SIGTERM);
  g_dbus_connection_close_sync (bus, NULL, NULL);
  test_bus_down (bus_daemon);
}

/* --- floods of connections ------------------------------------------ */

/* GETs the gateway's /status from @local_ip on a connection of its own
 * and fails the test unless it is answered. */
static void
assert_status_from (const char *local_ip,
                    const char *url)
{
  g_autofree char *status = g_strconcat (url, "status", NULL);
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  guint code = 0;

  body = test_get_from (local_ip, status, &code, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (code, ==, SOUP_STATUS_OK);
}

/* One client opens many idle connections (600, under a limit of 1024).
 * Before: every one was accepted and held, to the last descriptor (with
 * more of them, accept() failed and libsoup never accepted again: see
 * flood/emfile and tests/bench/probe-flood.py).  Now the flooding address
 * holds its share (--max-connections-per-address, 256), every connection
 * beyond it is closed at once, another client is served during the
 * flood, and the flooding address is served again after it. */
static void
test_flood_idle (void)
{
  g_autoptr(GSubprocess) gateway = NULL;
  g_autoptr(TestFlood) flood = NULL;
  g_autofree char *url = NULL;

  if (test_raise_fd_limit (2048) < 1024)
    {
      g_test_skip ("needs 1024 descriptors for the flood");
      return;
    }
  gateway = test_spawn_gateway_full (NULL, 1024, G_SUBPROCESS_FLAGS_NONE, WAIT_MS, &url);

  flood = test_flood_new (url, 600);
  test_flood_wait_closed (flood, 600 - 256, WAIT_MS);
  assert_status_from ("127.0.0.2", url);

  g_clear_pointer (&flood, test_flood_free);
  assert_status_from ("127.0.0.1", url);

  g_assert_true (test_subprocess_stop (gateway, SIGTERM, WAIT_MS));
}

/* Caps raised above the descriptor limit: accept() does fail.  The
 * gateway says so in its log and, once the connections close, serves
 * again. */
static void
test_flood_emfile (void)
{
  const char *extra[] = { "--max-connections=1000", "--max-connections-per-address=1000", NULL };
  g_autoptr(GSubprocess) gateway = NULL;
  g_autoptr(GDataInputStream) log = NULL;
  g_autoptr(TestFlood) flood = NULL;
  g_autofree char *url = NULL;
  gboolean refused = FALSE;

  if (test_raise_fd_limit (1024) < 512)
    {
      g_test_skip ("needs 512 descriptors for the flood");
      return;
    }
  gateway = test_spawn_gateway_full (extra, 128, G_SUBPROCESS_FLAGS_STDERR_PIPE, WAIT_MS, &url);
  log = g_data_input_stream_new (g_subprocess_get_stderr_pipe (gateway));

  flood = test_flood_new (url, 300);
  for (guint i = 0; i < 100 && !refused; i++)
    {
      g_autofree char *line = test_read_line (log, WAIT_MS);

      g_assert_nonnull (line);
      refused = strstr (line, "cannot accept connections") != NULL;
    }
  g_assert_true (refused);

  g_clear_pointer (&flood, test_flood_free);
  assert_status_from ("127.0.0.1", url);

  g_assert_true (test_subprocess_stop (gateway, SIGTERM, WAIT_MS));
}

/* A client that connects and sends nothing is closed after
 * --idle-timeout. */
static void
test_flood_silent (void)
{
  const char *extra[] = { "--idle-timeout=1", NULL };
  g_autoptr(GSubprocess) gateway = NULL;
  g_autoptr(TestFlood) flood = NULL;
  g_autofree char *url = NULL;

  gateway = test_spawn_gateway_full (extra, 0, G_SUBPROCESS_FLAGS_NONE, WAIT_MS, &url);
  flood = test_flood_new (url, 4);
  test_flood_wait_closed (flood, 4, WAIT_MS);
  g_assert_true (test_subprocess_stop (gateway, SIGTERM, WAIT_MS));
}

/* --- several gateways on one Redis ----------------------------------- */

static void
swap_gateways (Fixture *fx)
{
  GSubprocess *gateway = fx->gateway;
  char *url = fx->url;
  GDataInputStream *log = fx->log;

  fx->gateway = fx->gateway_b;
  fx->url = fx->url_b;
  fx->log = fx->log_b;
  fx->gateway_b = gateway;
  fx->url_b = url;
  fx->log_b = log;
}

/* Reads @log until a line holding @what. */
static void
wait_log (GDataInputStream *log,
          const char       *what)
{
  test_read_line_with (log, what, WAIT_MS);
}

/* Starts Redis in the test's directory; FALSE (the test is skipped) when
 * there is no redis-server. */
static gboolean
start_redis (Fixture *fx)
{
  if (fx->redis_dir == NULL)
    {
      fx->redis_dir = g_build_filename (fx->dir, "redis", NULL);
      g_mkdir (fx->redis_dir, 0700);
    }
  g_clear_pointer (&fx->redis_sock, g_free);
  fx->redis = test_spawn_redis (fx->redis_dir, WAIT_MS, &fx->redis_sock);
  if (fx->redis == NULL)
    {
      g_test_skip ("redis-server is not installed (Debian: redis-server)");
      return FALSE;
    }
  return TRUE;
}

/* Starts a gateway on the test's Redis and origin (as the current one,
 * after swap_gateways() the second one), and waits until it is connected
 * to Redis. */
G_GNUC_NULL_TERMINATED
static void
start_shared_gateway (Fixture    *fx,
                      ...)
{
  g_autoptr(GPtrArray) extra = g_ptr_array_new_with_free_func (g_free);
  const char *arg;
  va_list args;

  g_assert_null (fx->gateway);
  g_ptr_array_add (extra, g_strconcat ("--store=unix:", fx->redis_sock, NULL));
  g_ptr_array_add (extra, g_strconcat ("--origin=", fx->origin_url, NULL));
  g_ptr_array_add (extra, g_strdup ("--allow-private"));
  va_start (args, fx);
  for (arg = va_arg (args, const char *); arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (extra, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (extra, NULL);
  fx->gateway = test_spawn_gateway_full ((const char * const *) extra->pdata, 0,
                                         G_SUBPROCESS_FLAGS_STDERR_PIPE, WAIT_MS, &fx->url);
  fx->log = g_data_input_stream_new (g_subprocess_get_stderr_pipe (fx->gateway));
  wait_log (fx->log, "connected to Redis");
}

/* Redis and two gateways on it, A current and B after swap_gateways(),
 * each with the options given (nullable); FALSE when the test is
 * skipped. */
static gboolean
start_pair (Fixture    *fx,
            const char *option1,
            const char *option2)
{
  if (!start_redis (fx))
    return FALSE;
  start_shared_gateway (fx, option1, option2, NULL);
  swap_gateways (fx);
  start_shared_gateway (fx, option1, option2, NULL);
  swap_gateways (fx);
  return TRUE;
}

/* start_pair() with @content at @path of the origin, resolved at A. */
static gboolean
start_pair_resolved (Fixture    *fx,
                     const char *path,
                     GBytes     *content,
                     const char *option)
{
  g_autofree char *media = origin_media (fx, path);
  g_auto(Response) r = { 0, };

  origin_put (fx, path, content);
  if (!start_pair (fx, option, NULL))
    return FALSE;
  resolve_final (fx, &r, media);
  check_resolved (fx, &r, content, NULL);
  return TRUE;
}

/* Runs redis-cli with @first and the arguments after it on the test's
 * Redis; returns its output. */
G_GNUC_NULL_TERMINATED
static char *
redis_cli (Fixture    *fx,
           const char *first,
           ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  int status = -1;
  char *out;
  va_list args;

  g_ptr_array_add (argv, (gpointer) "redis-cli");
  g_ptr_array_add (argv, (gpointer) "-s");
  g_ptr_array_add (argv, fx->redis_sock);
  va_start (args, first);
  for (const char *arg = first; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, (gpointer) arg);
  va_end (args);
  g_ptr_array_add (argv, NULL);
  out = test_run_tool ((const char * const *) argv->pdata, NULL, NULL, &status);
  g_assert_cmpint (status, ==, 0);
  return out;
}

/* The milliseconds before @key expires in the test's Redis (-1: never,
 * -2: no such key). */
static gint64
redis_pttl (Fixture    *fx,
            const char *key)
{
  g_autofree char *out = redis_cli (fx, "PTTL", key, NULL);

  return g_ascii_strtoll (out, NULL, 10);
}

/* A URL hashed at A resolves at B at once, without a fetch, with the
 * head's facts A read; a peer announced at A is in B's answers and the
 * other way round; B serves the tree. */
static void
test_redis_shared (Fixture      *fx,
                   gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_mp3 (300, 80);
  g_autofree char *media = origin_media (fx, "/shared.mp3");
  g_autofree char *urn = urn_for (content);
  g_autoptr(GPtrArray) peers = NULL;

  if (!start_pair_resolved (fx, "/shared.mp3", content, NULL))
    return;
  g_assert_cmpuint (fx->origin_bodies, ==, 1);
  swap_gateways (fx);
  {
    g_auto(Response) r = { 0, };

    /* at once: no 202, and no request at the origin */
    resolve (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
    g_assert_cmpstr (header (&r, ALV_HEADER_CONTENT_HEAD), ==,
                     "mpeg-audio; start=310; header=fffb9064");
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7001", "event", "completed", NULL),
                    ==, SOUP_STATUS_OK);
  swap_gateways (fx);
  g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "7002", "event", "started", NULL),
                    ==, SOUP_STATUS_OK);
  g_assert_true (has_port (peers, 7001));
  g_clear_pointer (&peers, g_ptr_array_unref);
  swap_gateways (fx);
  g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "7001", NULL), ==, SOUP_STATUS_OK);
  g_assert_true (has_port (peers, 7002));
  g_assert_false (has_port (peers, 7001));
}

/* First resolves of one URL at two gateways at once: one fetch. */
static void
test_redis_single_fetch (Fixture      *fx,
                         gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (300000, 22);
  g_autofree char *media = origin_media (fx, "/first.ogg");
  Response rs[2] = { { 0, } };

  origin_put (fx, "/first.ogg", content)->delay_ms = 500;
  if (!start_pair (fx, "--resolve-wait=10000", "--retry-after=1"))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    {
      g_autofree char *url = resolve_url (fx, media);
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);

      send_async (fx, msg, &rs[i]);
      swap_gateways (fx);
    }
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    {
      wait_response (&rs[i]);
      g_assert_true (rs[i].status == SOUP_STATUS_OK || rs[i].status == SOUP_STATUS_ACCEPTED);
      response_clear (&rs[i]);
    }
  for (guint i = 0; i < 2; i++)
    {
      g_auto(Response) r = { 0, };

      resolve_final (fx, &r, media);
      check_resolved (fx, &r, content, NULL);
      swap_gateways (fx);
    }
  g_assert_cmpuint (fx->origin_bodies, ==, 1);
  g_assert_cmpuint (fx->origin_requests, ==, 1);
}

/* Redis killed under load, then started again: every answer comes (from
 * the gateway's own memory meanwhile), /status says so, and sharing
 * resumes once both gateways are back on it. */
static void
test_redis_restart (Fixture      *fx,
                    gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (2 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 23);
  g_autofree char *media = origin_media (fx, "/restart.ogg");
  g_autofree char *urn = urn_for (content);
  g_autofree char *resolve_at = NULL;
  g_autofree char *announce_at = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  Response rs[40] = { { 0, } };

  if (!start_pair_resolved (fx, "/restart.ogg", content, NULL))
    return;
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7001", "event", "completed", NULL),
                    ==, SOUP_STATUS_OK);
  swap_gateways (fx);
  {
    g_auto(Response) r = { 0, };

    /* B learns it from Redis, and keeps it when Redis forgets */
    resolve (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  swap_gateways (fx);

  /* load in flight while Redis dies */
  resolve_at = resolve_url (fx, media);
  announce_at = g_strdup_printf ("%sannounce?urn=%s&port=7002", fx->url, urn);
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", i % 2 ? resolve_at : announce_at);

      send_async (fx, msg, &rs[i]);
      if (i == G_N_ELEMENTS (rs) / 4)
        {
          g_assert_true (test_subprocess_stop (fx->redis, SIGKILL, WAIT_MS));
          g_clear_object (&fx->redis);
        }
    }
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    {
      wait_response (&rs[i]);
      g_assert_cmpuint (rs[i].status, ==, SOUP_STATUS_OK);
      response_clear (&rs[i]);
    }
  wait_log (fx->log, "lost Redis");
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "store-up"), ==, 0);
  {
    g_auto(Response) r = { 0, };

    /* the URL from the gateway's cache, peers from its memory */
    resolve (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "7003", NULL), ==, SOUP_STATUS_OK);
  g_assert_true (has_port (peers, 7001));
  g_clear_pointer (&peers, g_ptr_array_unref);

  /* an empty Redis on the same socket: both come back to it */
  g_assert_true (start_redis (fx));
  wait_log (fx->log, "connected to Redis");
  wait_log (fx->log_b, "connected to Redis");
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "store-up"), ==, 1);
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7004", NULL), ==, SOUP_STATUS_OK);
  swap_gateways (fx);
  g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "7005", NULL), ==, SOUP_STATUS_OK);
  g_assert_true (has_port (peers, 7004));
  g_assert_cmpuint (fx->origin_bodies, ==, 1);
}

/* A Redis that answers nothing (stopped): the requests waiting on it are
 * answered from the gateway's memory once it gives up on Redis, and it
 * comes back when Redis does. */
static void
test_redis_hung (Fixture      *fx,
                 gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 26);
  g_autofree char *media = origin_media (fx, "/hung.ogg");
  g_autofree char *urn = urn_for (content);
  g_autoptr(GPtrArray) peers = NULL;

  if (!start_pair_resolved (fx, "/hung.ogg", content, NULL))
    return;
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7001", "event", "completed", NULL),
                    ==, SOUP_STATUS_OK);
  test_subprocess_signal (fx->redis, SIGSTOP);
  g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "7002", NULL), ==, SOUP_STATUS_OK);
  g_assert_true (has_port (peers, 7001));
  wait_log (fx->log, "lost Redis");
  test_subprocess_signal (fx->redis, SIGCONT);
  wait_log (fx->log, "connected to Redis");
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "store-up"), ==, 1);
}

/* Peer entries expire with --peer-ttl (Redis TTLs, no scan), a stopped
 * peer is gone for every gateway, and records do not stay forever. */
static void
test_redis_expiry (Fixture      *fx,
                   gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 24);
  g_autofree char *media = origin_media (fx, "/expiry.ogg");
  g_autofree char *urn = urn_for (content);
  g_autofree char *peers_key = g_strconcat ("alluvium:peers:", urn, NULL);
  g_autofree char *have_key = g_strconcat ("alluvium:have:", urn, NULL);
  g_autofree char *entry_key = g_strconcat ("alluvium:entry:", media, NULL);
  g_autoptr(GPtrArray) peers = NULL;
  gint64 ttl;

  if (!start_pair_resolved (fx, "/expiry.ogg", content, "--peer-ttl=60"))
    return;
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7001", "event", "completed", NULL),
                    ==, SOUP_STATUS_OK);
  ttl = redis_pttl (fx, peers_key);
  g_assert_cmpint (ttl, >, 0);
  g_assert_cmpint (ttl, <=, 60000);
  ttl = redis_pttl (fx, have_key);
  g_assert_cmpint (ttl, >, 0);
  g_assert_cmpint (ttl, <=, 60000);
  g_assert_cmpint (redis_pttl (fx, entry_key), >, 60000);

  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7001", "event", "stopped", NULL),
                    ==, SOUP_STATUS_OK);
  swap_gateways (fx);
  g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "7002", NULL), ==, SOUP_STATUS_OK);
  g_assert_false (has_port (peers, 7001));
}

/* Entries and trees in Redis expire a TTL after their last use, not
 * their last write: a read by another gateway sets both TTLs again, so
 * what listeners resolve stays and what nobody asks for goes by itself
 * (no scan, no cap to keep). */
static void
test_redis_ttl_refresh (Fixture      *fx,
                        gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (2 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 28);
  g_autofree char *media = origin_media (fx, "/ttl.ogg");
  g_autofree char *urn = urn_for (content);
  g_autofree char *entry_key = g_strconcat ("alluvium:entry:", media, NULL);
  g_autofree char *tree_key = g_strconcat ("alluvium:tree:", urn, NULL);

  if (!start_pair_resolved (fx, "/ttl.ogg", content, NULL))
    return;
  /* as if written long ago: 100 s left */
  g_free (redis_cli (fx, "PEXPIRE", entry_key, "100000", NULL));
  g_free (redis_cli (fx, "PEXPIRE", tree_key, "100000", NULL));
  g_assert_cmpint (redis_pttl (fx, entry_key), <=, 100000);
  swap_gateways (fx);
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  g_assert_cmpint (redis_pttl (fx, entry_key), >, 100000);
  g_assert_cmpint (redis_pttl (fx, tree_key), >, 100000);
}

/* A gateway killed while hashing leaves the URL's lock to expire within
 * its TTL (2 × --fetch-timeout); meanwhile the other answers 202 and does
 * not fetch. */
static void
test_redis_stale_lock (Fixture      *fx,
                       gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (100000, 25);
  g_autofree char *media = origin_media (fx, "/stuck.ogg");
  g_autofree char *lock_key = g_strconcat ("alluvium:lock:", media, NULL);
  gint64 ttl;

  origin_put (fx, "/stuck.ogg", content)->stuck = TRUE;
  if (!start_pair (fx, "--resolve-wait=100", "--fetch-timeout=5"))
    return;
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_ACCEPTED);
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  stop_gateway (fx, SIGKILL);
  ttl = redis_pttl (fx, lock_key);
  g_assert_cmpint (ttl, >, 0);
  g_assert_cmpint (ttl, <=, 10000);
  swap_gateways (fx);
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_ACCEPTED);
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
}

static void
cancelled_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Response *r = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) in = soup_session_send_finish (SOUP_SESSION (source), result, &error);

  /* cancelled; or answered already, on a machine slow enough that the
   * gateway gave up on Redis first */
  if (in == NULL)
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  r->done = TRUE;
}

/* Clients that leave while their resolve and announce wait on a hung
 * Redis: when the gateway gives up on Redis it answers nobody, frees
 * what they held, and goes on serving. */
static void
test_redis_client_gone (Fixture      *fx,
                        gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 29);
  g_autoptr(GBytes) other = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 30);
  g_autofree char *media = origin_media (fx, "/left.ogg");
  g_autofree char *other_media = origin_media (fx, "/unasked.ogg");
  g_autofree char *urn = urn_for (content);
  g_autofree char *announce_at = NULL;
  g_autofree char *resolve_at = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Response rs[2] = { { 0, } };

  origin_put (fx, "/unasked.ogg", other);
  if (!start_pair_resolved (fx, "/left.ogg", content, NULL))
    return;
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7001", "event", "completed", NULL),
                    ==, SOUP_STATUS_OK);
  test_subprocess_signal (fx->redis, SIGSTOP);
  announce_at = g_strdup_printf ("%sannounce?urn=%s&port=7002", fx->url, urn);
  resolve_at = resolve_url (fx, other_media);
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("GET", i ? resolve_at : announce_at);

      soup_session_send_async (fx->session, msg, G_PRIORITY_DEFAULT, cancellable,
                               cancelled_cb, &rs[i]);
    }
  /* answered at once (no Redis): the two requests are in by then */
  (void) test_gateway_status (fx->session, fx->url, "announces");
  g_cancellable_cancel (cancellable);
  for (guint i = 0; i < G_N_ELEMENTS (rs); i++)
    wait_response (&rs[i]);
  wait_log (fx->log, "lost Redis");
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "store-up"), ==, 0);
  test_subprocess_signal (fx->redis, SIGCONT);
  wait_log (fx->log, "connected to Redis");
  g_assert_cmpuint (announce (fx, NULL, "urn", urn, "port", "7003", NULL), ==, SOUP_STATUS_OK);
}

/* An entry in Redis under a URL that is not its own (a corrupt or
 * hand-edited key) is not answered for that URL: the gateway fetches it. */
static void
test_redis_wrong_entry (Fixture      *fx,
                        gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 31);
  g_autoptr(GBytes) other = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 32);
  g_autofree char *media = origin_media (fx, "/own.ogg");
  g_autofree char *other_media = origin_media (fx, "/other.ogg");
  g_autofree char *key = g_strconcat ("alluvium:entry:", media, NULL);
  g_autofree char *other_key = g_strconcat ("alluvium:entry:", other_media, NULL);
  g_autofree char *out = NULL;
  g_auto(Response) r = { 0, };

  origin_put (fx, "/other.ogg", other);
  if (!start_pair_resolved (fx, "/own.ogg", content, NULL))
    return;
  out = redis_cli (fx, "EVAL", "return redis.call('SET', KEYS[2], redis.call('GET', KEYS[1]))",
                   "2", key, other_key, NULL);
  swap_gateways (fx);
  resolve_final (fx, &r, other_media);
  check_resolved (fx, &r, other, NULL);
}

/* A gateway stopped cleanly while hashing drops the URL's lock at once:
 * the other gateway need not wait for it to expire. */
static void
test_redis_stop_unlocks (Fixture      *fx,
                         gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (100000, 28);
  g_autofree char *media = origin_media (fx, "/stopped.ogg");
  g_autofree char *lock_key = g_strconcat ("alluvium:lock:", media, NULL);

  origin_put (fx, "/stopped.ogg", content)->stuck = TRUE;
  if (!start_pair (fx, "--resolve-wait=100", NULL))
    return;
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_ACCEPTED);
  }
  g_assert_cmpint (redis_pttl (fx, lock_key), >, 0);
  stop_gateway (fx, SIGTERM);
  g_assert_cmpint (redis_pttl (fx, lock_key), ==, -2);
}

/* A URN with more peers in Redis than its Lua unpacks at once (some
 * 8000), and an announce wanting many: the sample the gateway reads stays
 * bounded, and the answer still comes from Redis's peers. */
static void
test_redis_large_sample (Fixture      *fx,
                         gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 27);
  g_autofree char *media = origin_media (fx, "/crowd.ogg");
  g_autofree char *urn = urn_for (content);
  g_autofree char *peers_key = g_strconcat ("alluvium:peers:", urn, NULL);
  g_autoptr(GPtrArray) peers = NULL;
  g_autofree char *out = NULL;

  origin_put (fx, "/crowd.ogg", content);
  if (!start_pair (fx, "--max-peers=3000", "--max-peers-per-urn=20000"))
    return;
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  out = redis_cli (fx, "EVAL",
                   "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 "
                   "for i = 1, 9000 do redis.call('ZADD', KEYS[1], now, '127.0.0.1:' .. (10000 + i)) end "
                   "return redis.call('ZCARD', KEYS[1])",
                   "1", peers_key, NULL);
  g_assert_cmpint (g_ascii_strtoll (out, NULL, 10), ==, 9000);
  g_assert_cmpuint (announce (fx, &peers, "urn", urn, "port", "7001", "numwant", "3000", NULL),
                    ==, SOUP_STATUS_OK);
  g_assert_cmpuint (peers->len, >, 0);
  g_assert_cmpuint (g_inet_socket_address_get_port (peers->pdata[0]), >, 10000);
}

/* --- amplification: what a client can make the gateway fetch -------- */

/* Counts the lines of @path (a web server's request log, complete since
 * the server stopped) that hold @needle. */
static guint
count_log_lines (const char *path,
                 const char *needle)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(GError) error = NULL;
  guint n = 0;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strstr (lines[i], needle) != NULL)
      n++;
  return n;
}

/* Query variants of an origin file ("?x=1", "?x=2", …), which a web
 * server serving files ignores, are refused with 403 before any fetch
 * (without --allow-query), so 50 of them cost the origin nothing: it is
 * fetched once, for the plain URL.  With --allow-query a query is part
 * of the resource and fetched as such. */
static void
test_query_variants (Fixture      *fx,
                     gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (3 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 41);
  g_autofree char *media = origin_media (fx, "/q.ogg");

  origin_put (fx, "/q.ogg", content);
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", NULL);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media);
    check_resolved (fx, &r, content, NULL);
  }
  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *variant = g_strdup_printf ("%s?x=%u", media, i);
      g_auto(Response) r = { 0, };
      g_autofree char *text = NULL;

      resolve (fx, &r, variant);
      g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
      text = body_text (&r);
      g_assert_nonnull (strstr (text, "--allow-query"));
    }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "entries"), ==, 1);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "refusals"), >=, 50);
  stop_gateway (fx, SIGTERM);

  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--allow-query", NULL);
  {
    g_autofree char *variant = g_strconcat (media, "?x=1", NULL);
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, variant);
    check_resolved (fx, &r, content, NULL);
  }
  g_assert_cmpuint (fx->origin_bodies, ==, 2);
}

/* The same with Python's http.server as the origin, counting the GETs in
 * its own request log: 50 query variants, one GET of the file. */
static void
test_query_variants_python (Fixture      *fx,
                            gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (2 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 42);
  g_autofree char *root = g_build_filename (fx->dir, "py", NULL);
  g_autofree char *log = g_build_filename (fx->dir, "py.log", NULL);
  g_autofree char *origin = NULL;
  g_autofree char *media = NULL;
  g_autoptr(GSubprocess) python = NULL;
  g_autoptr(GError) error = NULL;

  g_mkdir (root, 0700);
  {
    g_autofree char *path = g_build_filename (root, "a.mp3", NULL);

    g_file_set_contents (path, g_bytes_get_data (content, NULL),
                         (gssize) g_bytes_get_size (content), &error);
    g_assert_no_error (error);
  }
  python = test_spawn_http_server (root, log, WAIT_MS, &origin);
  if (python == NULL)
    {
      g_test_skip ("python3 is not installed");
      return;
    }
  media = g_strconcat (origin, "a.mp3", NULL);
  start_gateway (fx, "--origin", origin, "--allow-private", NULL);
  for (guint i = 0; i <= 50; i++)
    {
      /* the plain URL once, then its variants */
      g_autofree char *url = i == 0 ? g_strdup (media) : g_strdup_printf ("%s?x=%u", media, i);
      g_auto(Response) r = { 0, };

      resolve_final (fx, &r, url);
      if (i == 0)
        check_resolved (fx, &r, content, "audio/mpeg");
      else
        g_assert_cmpuint (r.status, ==, SOUP_STATUS_FORBIDDEN);
    }
  stop_gateway (fx, SIGTERM);
  g_assert_true (test_subprocess_stop (python, SIGTERM, WAIT_MS));
  g_assert_cmpuint (count_log_lines (log, "\"GET /a.mp3"), ==, 1);
}

/* Spellings of one URL (scheme case, doubled slashes, an escaped
 * unreserved character, a fragment, an empty query) share one entry and
 * one fetch, and the gateway fetches the normal form. */
static void
test_normal_forms (Fixture      *fx,
                   gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) content = make_content (2 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE + 7, 43);
  g_autofree char *media = origin_media (fx, "/n/a.ogg");
  const char *host = fx->origin_url + strlen ("http://");
  char *variants[] = {
    g_strdup (media),
    g_strdup_printf ("HTTP://%sn/a.ogg", host),
    g_strdup_printf ("http://%sn//a.ogg", host),
    g_strdup_printf ("http://%s/n/a.ogg", host),
    g_strdup_printf ("http://%sn/%%61.ogg", host),
    g_strdup_printf ("http://%sn/a.ogg#t=10", host),
    g_strdup_printf ("http://%sn/a.ogg?", host),
  };

  origin_put (fx, "/n/a.ogg", content);
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", NULL);
  for (gsize i = 0; i < G_N_ELEMENTS (variants); i++)
    {
      g_auto(Response) r = { 0, };
      g_autofree char *text = NULL;
      g_autofree char *line = g_strconcat ("url: ", media, "\n", NULL);

      resolve_final (fx, &r, variants[i]);
      check_resolved (fx, &r, content, NULL);
      text = body_text (&r);
      g_assert_nonnull (strstr (text, line));
    }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "entries"), ==, 1);
  for (gsize i = 0; i < G_N_ELEMENTS (variants); i++)
    g_free (variants[i]);
}

/* Resolves @media from a client at @local_ip (another address than the
 * fixture's session). */
static void
resolve_from (Fixture    *fx,
              const char *local_ip,
              Response   *r,
              const char *media)
{
  SoupSession *own = fx->session;

  fx->session = test_session_new_from (local_ip);
  resolve_final (fx, r, media);
  soup_session_abort (fx->session);
  g_object_unref (fx->session);
  fx->session = own;
}

/* A client that makes up new URLs spends its budget (--new-url-burst,
 * refilled at --new-url-rate a minute) and is then refused with 429 and
 * Retry-After before the gateway fetches anything; URLs the gateway
 * knows still resolve for it, and another address still gets new ones. */
static void
test_new_url_budget (Fixture      *fx,
                     gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GPtrArray) media = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) contents = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  for (guint i = 0; i < 6; i++)
    {
      g_autofree char *path = g_strdup_printf ("/new/%u.ogg", i);
      GBytes *content = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE + i, 50 + i);

      origin_put (fx, path, content);
      g_ptr_array_add (contents, content);
      g_ptr_array_add (media, origin_media (fx, path));
    }
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private",
                 "--new-url-rate=1", "--new-url-burst=3", NULL);
  for (guint i = 0; i < 3; i++)
    {
      g_auto(Response) r = { 0, };

      resolve_final (fx, &r, media->pdata[i]);
      check_resolved (fx, &r, contents->pdata[i], NULL);
    }
  for (guint i = 3; i < 6; i++)
    {
      g_auto(Response) r = { 0, };
      guint64 retry;

      resolve (fx, &r, media->pdata[i]);
      g_assert_cmpuint (r.status, ==, 429);
      g_assert_true (g_ascii_string_to_unsigned (header (&r, "Retry-After"), 10, 1, 60,
                                                 &retry, NULL));
    }
  g_assert_cmpuint (fx->origin_requests, ==, 3);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "new-urls-refused"), ==, 3);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "refusals"), >=, 3);
  /* what it knows costs nothing */
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media->pdata[0]);
    check_resolved (fx, &r, contents->pdata[0], NULL);
  }
  /* another address has a budget of its own */
  {
    g_auto(Response) r = { 0, };

    resolve_from (fx, "127.0.0.2", &r, media->pdata[3]);
    check_resolved (fx, &r, contents->pdata[3], NULL);
  }
  g_assert_cmpuint (fx->origin_bodies, ==, 4);
}

/* With --max-urls the store never holds more URLs, in memory or in the
 * state directory: the least recently resolved makes room, with its
 * tree, and resolves again (fetched again) when asked. */
static void
test_max_urls (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GPtrArray) media = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) contents = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autofree char *entries = g_build_filename (fx->state, "entries", NULL);
  g_autofree char *trees = g_build_filename (fx->state, "trees", NULL);

  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *path = g_strdup_printf ("/lru/%u.ogg", i);
      GBytes *content = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE + 3 * i, 60 + i);

      origin_put (fx, path, content);
      g_ptr_array_add (contents, content);
      g_ptr_array_add (media, origin_media (fx, path));
    }
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--max-urls=3",
                 "--state-dir", fx->state, NULL);
  for (guint i = 0; i < 5; i++)
    {
      g_auto(Response) r = { 0, };

      resolve_final (fx, &r, media->pdata[i]);
      check_resolved (fx, &r, contents->pdata[i], NULL);
      g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "entries"), <=, 3);
      g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "trees"), <=, 3);
    }
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "urls-max"), ==, 3);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "urls-evicted"), ==, 2);
  g_assert_cmpuint (fx->origin_bodies, ==, 5);
  /* 0 was evicted: fetched again; 4 was not */
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, media->pdata[0]);
    check_resolved (fx, &r, contents->pdata[0], NULL);
    g_assert_cmpuint (fx->origin_bodies, ==, 6);
    response_clear (&r);
    r.done = FALSE;
    resolve (fx, &r, media->pdata[4]);
    check_resolved (fx, &r, contents->pdata[4], NULL);
    g_assert_cmpuint (fx->origin_bodies, ==, 6);
  }
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "entries"), ==, 3);
  /* a clean stop finishes the queued writes and removals */
  stop_gateway (fx, SIGTERM);
  g_assert_cmpuint (test_count_files (entries), ==, 3);
  g_assert_cmpuint (test_count_files (trees), ==, 3);
  /* and a restart with a lower cap keeps the most recent */
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private", "--max-urls=1",
                 "--state-dir", fx->state, NULL);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "entries"), ==, 1);
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, media->pdata[0]);
    check_resolved (fx, &r, contents->pdata[0], NULL);
  }
  g_assert_cmpuint (fx->origin_bodies, ==, 6);
}

/* With --max-fetches-per-origin=1, a second new URL of the same origin
 * is refused with 503 and Retry-After while the first is still being
 * fetched, and nothing is asked of the origin for it; it resolves once
 * the first is done. */
static void
test_origin_busy (Fixture      *fx,
                  gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GBytes) slow = make_content (2 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 70);
  g_autoptr(GBytes) other = make_content (ALV_HASH_TREE_DEFAULT_BLOCK_SIZE, 71);
  g_autofree char *slow_url = origin_media (fx, "/busy/slow.ogg");
  g_autofree char *other_url = origin_media (fx, "/busy/other.ogg");

  origin_put (fx, "/busy/slow.ogg", slow)->stuck = TRUE;
  origin_put (fx, "/busy/other.ogg", other);
  start_gateway (fx, "--origin", fx->origin_url, "--allow-private",
                 "--max-fetches-per-origin=1", "--resolve-wait=100", NULL);
  {
    g_auto(Response) r = { 0, };

    resolve (fx, &r, slow_url);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_ACCEPTED);
  }
  g_assert_cmpuint (fx->held->len, ==, 1);
  {
    g_auto(Response) r = { 0, };
    g_autofree char *text = NULL;

    resolve (fx, &r, other_url);
    g_assert_cmpuint (r.status, ==, SOUP_STATUS_SERVICE_UNAVAILABLE);
    g_assert_nonnull (header (&r, "Retry-After"));
    text = body_text (&r);
    g_assert_nonnull (strstr (text, "--max-fetches-per-origin"));
  }
  g_assert_cmpuint (fx->origin_requests, ==, 1);
  g_assert_cmpuint (test_gateway_status (fx->session, fx->url, "origin-busy"), ==, 1);

  soup_server_message_unpause (fx->held->pdata[0]);
  {
    g_auto(Response) r = { 0, };

    resolve_final (fx, &r, slow_url);
    check_resolved (fx, &r, slow, NULL);
    response_clear (&r);
    r.done = FALSE;
    resolve_final (fx, &r, other_url);
    check_resolved (fx, &r, other, NULL);
  }
  g_assert_cmpuint (fx->origin_bodies, ==, 2);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, fn) \
  g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/server/gateway/docroot", test_docroot);
  ADD ("/server/gateway/docroot-names", test_docroot_names);
  ADD ("/server/gateway/foreign-urls", test_foreign_urls);
  ADD ("/server/gateway/help", test_help);
  ADD ("/server/gateway/origin-revalidate", test_origin_revalidate);
  ADD ("/server/gateway/single-flight", test_single_flight);
  ADD ("/server/gateway/restart", test_restart);
  ADD ("/server/gateway/head", test_head);
  ADD ("/server/gateway/announce", test_announce);
  ADD ("/server/gateway/peer-cap", test_peer_cap);
  ADD ("/server/gateway/refusals", test_refusals);
  ADD ("/server/gateway/private-name", test_private_name);
  ADD ("/server/gateway/reachable", test_reachable);
  ADD ("/server/gateway/origin-escapes/nginx", test_origin_escapes_nginx);
  ADD ("/server/gateway/origin-escapes/python", test_origin_escapes_python);
  ADD ("/server/gateway/dbus", test_dbus);
  ADD ("/server/gateway/amplification/query-variants", test_query_variants);
  ADD ("/server/gateway/amplification/query-variants-python", test_query_variants_python);
  ADD ("/server/gateway/amplification/normal-forms", test_normal_forms);
  ADD ("/server/gateway/amplification/new-url-budget", test_new_url_budget);
  ADD ("/server/gateway/amplification/max-urls", test_max_urls);
  ADD ("/server/gateway/amplification/origin-busy", test_origin_busy);
  ADD ("/server/gateway/redis/shared", test_redis_shared);
  ADD ("/server/gateway/redis/single-fetch", test_redis_single_fetch);
  ADD ("/server/gateway/redis/restart", test_redis_restart);
  ADD ("/server/gateway/redis/hung", test_redis_hung);
  ADD ("/server/gateway/redis/expiry", test_redis_expiry);
  ADD ("/server/gateway/redis/ttl-refresh", test_redis_ttl_refresh);
  ADD ("/server/gateway/redis/stale-lock", test_redis_stale_lock);
  ADD ("/server/gateway/redis/client-gone", test_redis_client_gone);
  ADD ("/server/gateway/redis/stop-unlocks", test_redis_stop_unlocks);
  ADD ("/server/gateway/redis/wrong-entry", test_redis_wrong_entry);
  ADD ("/server/gateway/redis/large-sample", test_redis_large_sample);
#undef ADD
  g_test_add_func ("/server/gateway/flood/idle", test_flood_idle);
  g_test_add_func ("/server/gateway/flood/emfile", test_flood_emfile);
  g_test_add_func ("/server/gateway/flood/silent", test_flood_silent);
  return g_test_run ();
}
