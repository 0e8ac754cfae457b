/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Integration tests of `alluvium-server playlist`: the real binary runs as
 * a child process on short Ogg/Vorbis and MP3 files that GStreamer encodes
 * here at run time.  The playlists it writes are read back with the common
 * library's parser and checked item by item (titles, artists, durations,
 * URLs, URNs, back-to-back slots), and handed to two consumers nobody here
 * wrote: raptor's `rapper` (RDF/XML) and python3-feedparser (a feed
 * reader).  --check and --prepare talk to a SoupServer on 127.0.0.1 in
 * this process, serving the media and playing a fake gateway.
 */
#define G_LOG_DOMAIN "test-playlist-cmd"
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include "alv-error.h"
#include "alv-hash-tree.h"
#include "alv-playlist.h"
#include "alv-time.h"
#include "test-util.h"

#define START "2031-05-01T12:00:00Z"
#define RATE 44100
#define DURATION_TOLERANCE (50 * G_TIME_SPAN_MILLISECOND)

typedef enum
{
  GATEWAY_OK,
  GATEWAY_ACCEPT_THEN_OK,
  GATEWAY_BUSY_THEN_OK,
  GATEWAY_WRONG_URN,
  GATEWAY_FAIL,
} GatewayMode;

typedef struct
{
  char *dir;                    /* scratch directory */
  char *media;                  /* dir/media, the station's files */
  SoupServer *server;
  char *base;                   /* http://127.0.0.1:PORT/ */
  GHashTable *hits;             /* request path (+query) → count */
  GatewayMode gateway_mode;
  guint gateway_requests;
  GHashTable *gateway_urns;     /* item URL → URN the fake gateway answers */
} Fixture;

/* --- helpers: files ---------------------------------------------------- */

/* Whether GStreamer here can write (and read back) @codec, "vorbis" or
 * "mp3"; if not, skips the test saying which plugin is missing. */
static gboolean
can_encode (const char *codec)
{
  static const char * const vorbis[] = { "vorbisenc", "oggmux", "vorbisdec", "oggdemux", NULL };
  static const char * const mp3[] = { "lamemp3enc", "id3v2mux", "mpegaudioparse", NULL };
  static const char * const base[] = { "audiotestsrc", "audioconvert", "taginject", NULL };
  const char * const *lists[] = { base, g_str_equal (codec, "mp3") ? mp3 : vorbis };

  for (guint l = 0; l < G_N_ELEMENTS (lists); l++)
    for (guint i = 0; lists[l][i] != NULL; i++)
      {
        g_autoptr(GstElementFactory) factory = gst_element_factory_find (lists[l][i]);

        if (factory == NULL)
          {
            g_autofree char *reason =
              g_strdup_printf ("GStreamer element %s is missing (gstreamer1.0-plugins-base, "
                               "-good or -ugly), cannot make %s test files",
                               lists[l][i], codec);
            g_test_skip (reason);
            return FALSE;
          }
      }
  return TRUE;
}

/* Encodes @tenths tenths of a second of a test tone into @path with
 * GStreamer, in process.  @codec is "vorbis" or "mp3"; @title and @artist
 * become tags when not NULL. */
static void
make_media (const char *path,
            const char *codec,
            guint       tenths,
            double      freq,
            const char *title,
            const char *artist)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GstElement) pipeline = NULL;
  g_autoptr(GstElement) src = NULL;
  g_autoptr(GstElement) tagger = NULL;
  g_autoptr(GstElement) sink = NULL;
  g_autoptr(GstBus) bus = NULL;
  g_autoptr(GstMessage) msg = NULL;
  g_autofree char *desc = NULL;
  g_autoptr(GString) tags = g_string_new (NULL);

  desc = g_strdup_printf ("audiotestsrc name=src samplesperbuffer=%d ! "
                          "audio/x-raw,rate=%d,channels=2 ! audioconvert ! "
                          "taginject name=tagger ! %s ! filesink name=sink",
                          RATE / 10, RATE,
                          g_str_equal (codec, "vorbis") ? "vorbisenc ! oggmux"
                                                        : "lamemp3enc ! id3v2mux");
  pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  src = gst_bin_get_by_name (GST_BIN (pipeline), "src");
  tagger = gst_bin_get_by_name (GST_BIN (pipeline), "tagger");
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "sink");
  g_object_set (src, "num-buffers", (int) tenths, "freq", freq, NULL);
  g_object_set (sink, "location", path, NULL);
  if (title != NULL)
    g_string_append_printf (tags, "title=\"%s\"", title);
  if (artist != NULL)
    g_string_append_printf (tags, "%sartist=\"%s\"", tags->len ? "," : "", artist);
  if (tags->len > 0)
    g_object_set (tagger, "tags", tags->str, NULL);

  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=,
                   GST_STATE_CHANGE_FAILURE);
  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND,
                                    GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  g_assert_nonnull (msg);
  g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_EOS);
  gst_element_set_state (pipeline, GST_STATE_NULL);
}

static char *
media_path (Fixture    *fx,
            const char *name)
{
  return g_build_filename (fx->media, name, NULL);
}

static char *
expected_urn (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvHashTree) tree = alv_hash_tree_new_for_file (path, ALV_HASH_TREE_DEFAULT_BLOCK_SIZE,
                                                            NULL, &error);
  g_assert_no_error (error);
  return alv_hash_tree_get_urn (tree);
}

static AlvPlaylist *
load_playlist (const char *path)
{
  g_autoptr(GError) error = NULL;
  AlvPlaylist *pl = alv_playlist_parse_file (path, &error);

  g_assert_no_error (error);
  return pl;
}

/* --- helpers: the tool --------------------------------------------------- */

typedef struct
{
  gboolean done;
  char *out;
  char *err;
} Communicated;

static void
communicated_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Communicated *c = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, &c->err, &error);
  g_assert_no_error (error);
  c->done = TRUE;
}

/* Runs `alluvium-server playlist ARGS…` (NULL-terminated) while this
 * process keeps serving HTTP; returns its exit status. */
G_GNUC_NULL_TERMINATED
static int
run_tool (char       **out,
          char       **err,
          const char  *first,
          ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  Communicated c = { FALSE, NULL, NULL };
  const char *arg;
  va_list args;

  g_ptr_array_add (argv, g_test_build_filename (G_TEST_BUILT, "..", "server", "alluvium-server", NULL));
  g_ptr_array_add (argv, g_strdup ("playlist"));
  va_start (args, first);
  for (arg = first; arg != NULL; arg = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (arg));
  va_end (args);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* No system proxy for the 127.0.0.1 servers here; and GIO's GNOME proxy
   * module would abort in the isolated XDG dirs, which hold no GSettings
   * schemas. */
  g_subprocess_launcher_setenv (launcher, "GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  /* no D-Bus: --prepare must not find a gateway of this machine's */
  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS",
                                "unix:path=/nonexistent/alluvium-test-bus", TRUE);
  g_subprocess_launcher_setenv (launcher, "DBUS_SYSTEM_BUS_ADDRESS",
                                "unix:path=/nonexistent/alluvium-test-bus", TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, NULL, NULL, communicated_cb, &c);
  while (!c.done)
    g_main_context_iteration (NULL, TRUE);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);

  g_test_message ("stdout: %s", c.out);
  g_test_message ("stderr: %s", c.err);
  if (out != NULL)
    *out = g_steal_pointer (&c.out);
  if (err != NULL)
    *err = g_steal_pointer (&c.err);
  g_free (c.out);
  g_free (c.err);
  g_assert_true (g_subprocess_get_if_exited (proc));
  return g_subprocess_get_exit_status (proc);
}

/* --- helpers: HTTP ------------------------------------------------------- */

static void
count_hit (Fixture           *fx,
           SoupServerMessage *msg)
{
  GUri *uri = soup_server_message_get_uri (msg);
  /* libsoup may hand over the path decoded or not: count it decoded */
  g_autofree char *path = g_uri_unescape_string (g_uri_get_path (uri), NULL);
  g_autofree char *key = g_strdup_printf ("%s%s%s", path ? path : g_uri_get_path (uri),
                                          g_uri_get_query (uri) ? "?" : "",
                                          g_uri_get_query (uri) ? g_uri_get_query (uri) : "");
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (fx->hits, key));

  g_test_message ("request: %s %s", soup_server_message_get_method (msg), key);
  g_hash_table_insert (fx->hits, g_steal_pointer (&key), GUINT_TO_POINTER (n + 1));
}

static guint
hits (Fixture    *fx,
      const char *key)
{
  return GPOINTER_TO_UINT (g_hash_table_lookup (fx->hits, key));
}

/* Serves the scratch directory, with single byte ranges. */
static void
files_handler (SoupServer        *server G_GNUC_UNUSED,
               SoupServerMessage *msg,
               const char        *path,
               GHashTable        *query G_GNUC_UNUSED,
               gpointer           user_data)
{
  Fixture *fx = user_data;
  g_autofree char *decoded = g_uri_unescape_string (path, "/");
  g_autofree char *file = NULL;
  g_autofree char *data = NULL;
  gsize length = 0;
  SoupRange *ranges = NULL;
  int n_ranges = 0;

  count_hit (fx, msg);
  if (decoded == NULL || strstr (decoded, "..") != NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_FORBIDDEN, NULL);
      return;
    }
  file = g_build_filename (fx->dir, decoded, NULL);
  if (!g_file_get_contents (file, &data, &length, NULL))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  if (soup_message_headers_get_ranges (soup_server_message_get_request_headers (msg),
                                       (goffset) length, &ranges, &n_ranges) &&
      n_ranges == 1)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
      soup_message_headers_set_content_range (soup_server_message_get_response_headers (msg),
                                              ranges[0].start, ranges[0].end, (goffset) length);
      soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                        data + ranges[0].start,
                                        (gsize) (ranges[0].end - ranges[0].start + 1));
      soup_message_headers_free_ranges (soup_server_message_get_request_headers (msg), ranges);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_TAKE,
                                    g_steal_pointer (&data), length);
}

/* A fake gateway's /gw/resolve: see GatewayMode. */
static void
resolve_handler (SoupServer        *server G_GNUC_UNUSED,
                 SoupServerMessage *msg,
                 const char        *path G_GNUC_UNUSED,
                 GHashTable        *query,
                 gpointer           user_data)
{
  Fixture *fx = user_data;
  const char *url = query ? g_hash_table_lookup (query, "url") : NULL;
  g_autofree char *key = NULL;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  const char *urn;

  count_hit (fx, msg);
  key = g_strconcat ("resolve:", url ? url : "", NULL);
  g_hash_table_insert (fx->hits, g_strdup (key),
                       GUINT_TO_POINTER (hits (fx, key) + 1));

  urn = url ? g_hash_table_lookup (fx->gateway_urns, url) : NULL;
  if (fx->gateway_mode == GATEWAY_FAIL || urn == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, NULL);
      soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_STATIC,
                                        "store unavailable\n", 18);
      return;
    }
  /* the very first request of a run is told to come back later */
  if (fx->gateway_mode == GATEWAY_ACCEPT_THEN_OK && fx->gateway_requests++ == 0)
    {
      soup_message_headers_replace (headers, "Retry-After", "1");
      soup_server_message_set_status (msg, SOUP_STATUS_ACCEPTED, NULL);
      return;
    }
  /* the same, rate limited (and in a hurry: the tool waits a little
   * anyway, it does not spin) */
  if (fx->gateway_mode == GATEWAY_BUSY_THEN_OK && fx->gateway_requests++ == 0)
    {
      soup_message_headers_replace (headers, "Retry-After", "0");
      soup_server_message_set_status (msg, 429, "Too Many Requests");
      return;
    }
  if (fx->gateway_mode == GATEWAY_WRONG_URN)
    urn = "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  soup_message_headers_replace (headers, "X-Content-URN", urn);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
start_server (Fixture *fx)
{
  fx->server = test_server_new ();
  soup_server_add_handler (fx->server, "/", files_handler, fx, NULL);
  soup_server_add_handler (fx->server, "/gw/resolve", resolve_handler, fx, NULL);
  fx->base = test_server_get_url (fx->server);
}

/* --- fixture --------------------------------------------------------------- */

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("alv-playlist-cmd-XXXXXX", &error);
  g_assert_no_error (error);
  fx->media = g_build_filename (fx->dir, "media", NULL);
  g_assert_cmpint (g_mkdir (fx->media, 0755), ==, 0);
  fx->hits = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  fx->gateway_urns = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  if (fx->server != NULL)
    soup_server_disconnect (fx->server);
  g_clear_object (&fx->server);
  g_free (fx->base);
  g_hash_table_unref (fx->hits);
  g_hash_table_unref (fx->gateway_urns);
  test_remove_tree (fx->dir);
  g_free (fx->media);
  g_free (fx->dir);
}

/* Three tagged Ogg/Vorbis files (one with a space in its name, one without
 * tags), a note that is not media and a hidden file, in fx->media. */
static void
make_station (Fixture *fx)
{
  g_autofree char *a = media_path (fx, "a-morning.ogg");
  g_autofree char *b = media_path (fx, "b noon.ogg");
  g_autofree char *c = media_path (fx, "c-evening.ogg");
  g_autofree char *note = media_path (fx, "notes.txt");
  g_autofree char *hidden = media_path (fx, ".hidden.ogg");

  /* created out of order: the tool sorts by name */
  make_media (c, "vorbis", 7, 660, NULL, NULL);
  make_media (a, "vorbis", 10, 440, "Morning Song", "The Larks");
  make_media (b, "vorbis", 15, 550, "Noon, Bright", "Ünïcode Ärtist");
  g_assert_true (g_file_set_contents (note, "not media\n", -1, NULL));
  g_assert_true (g_file_set_contents (hidden, "hidden\n", -1, NULL));
}

static const struct
{
  const char *name;
  const char *url_path;
  const char *title;
  const char *artist;
  guint tenths;
} station_items[] = {
  { "a-morning.ogg", "a-morning.ogg", "Morning Song", "The Larks", 10 },
  { "b noon.ogg", "b%20noon.ogg", "Noon, Bright", "Ünïcode Ärtist", 15 },
  { "c-evening.ogg", "c-evening.ogg", "c-evening", NULL, 7 },
};

/* Builds the station playlist into dir/station.rss; returns its path. */
static char *
build_station (Fixture    *fx,
               const char *base_url)
{
  g_autofree char *out = g_build_filename (fx->dir, "station.rss", NULL);
  g_autofree char *err = NULL;
  int status;

  status = run_tool (NULL, &err, "--base-url", base_url, "--start", START,
                     "--title", "Test Station", "--root", fx->media, "-o", out, fx->media,
                     NULL);
  g_assert_cmpint (status, ==, 0);
  return g_steal_pointer (&out);
}

/* --- tests: build ---------------------------------------------------------- */

static void
test_build_directory (Fixture       *fx,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *out = g_build_filename (fx->dir, "station.rss", NULL);
  g_autofree char *err = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autoptr(GDateTime) start = alv_time_parse_w3cdtf (START, NULL);
  GDateTime *cursor = start;
  int status;

  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  status = run_tool (NULL, &err, "--base-url", "https://radio.example/media",
                     "--start", START, "--title", "Test Station",
                     "--update-period", "hourly", "--update-frequency", "4",
                     "--root", fx->media, "-o", out, fx->media, NULL);
  g_assert_cmpint (status, ==, 0);
  /* the note was skipped with a word, the hidden file silently */
  g_assert_nonnull (strstr (err, "notes.txt"));
  g_assert_null (strstr (err, ".hidden"));

  pl = load_playlist (out);
  g_assert_cmpstr (alv_playlist_get_title (pl), ==, "Test Station");
  g_assert_cmpstr (alv_playlist_get_update_period (pl), ==, "hourly");
  g_assert_cmpuint (alv_playlist_get_update_frequency (pl), ==, 4);
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, G_N_ELEMENTS (station_items));

  for (guint i = 0; i < G_N_ELEMENTS (station_items); i++)
    {
      AlvPlaylistItem *item = alv_playlist_get_item (pl, i);
      g_autofree char *path = media_path (fx, station_items[i].name);
      g_autofree char *url = g_strconcat ("https://radio.example/media/",
                                          station_items[i].url_path, NULL);
      g_autofree char *urn = expected_urn (path);
      GTimeSpan expected = station_items[i].tenths * (G_TIME_SPAN_SECOND / 10);
      GTimeSpan duration = alv_playlist_item_get_duration (item);
      GStatBuf st;

      g_assert_cmpstr (alv_playlist_item_get_url (item), ==, url);
      g_assert_cmpstr (alv_playlist_item_get_title (item), ==, station_items[i].title);
      g_assert_cmpstr (alv_playlist_item_get_creator (item), ==, station_items[i].artist);
      g_assert_cmpstr (alv_playlist_item_get_media_type (item), ==, "audio/ogg");
      g_assert_cmpstr (alv_playlist_item_get_urn (item), ==, urn);
      g_assert_cmpint (g_stat (path, &st), ==, 0);
      g_assert_cmpuint (alv_playlist_item_get_length (item), ==, (guint64) st.st_size);
      g_assert_cmpint (duration, >=, expected - DURATION_TOLERANCE);
      g_assert_cmpint (duration, <=, expected + DURATION_TOLERANCE);
      /* back to back, whole milliseconds */
      g_assert_true (g_date_time_equal (alv_playlist_item_get_start (item), cursor));
      g_assert_cmpint (duration % G_TIME_SPAN_MILLISECOND, ==, 0);
      cursor = alv_playlist_item_get_end (item);
    }
}

static void
test_build_stdout_default_start (Fixture       *fx,
                                 gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *a = media_path (fx, "one.ogg");
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_utc ();
  GDateTime *start;
  int status;

  if (!can_encode ("vorbis"))
    return;
  make_media (a, "vorbis", 5, 440, "One", NULL);
  /* a single file: its directory is the root; --verbose shows progress
   * and what was found, on stderr only */
  status = run_tool (&out, &err, "--base-url", "http://radio.example/x/", "--no-urn",
                     "--verbose", a, NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (err, "[1/1] probing one.ogg"));
  g_assert_nonnull (strstr (err, "wrote 1 item to standard output, until "));
  g_assert_nonnull (strstr (err, "Vorbis"));
  g_assert_null (strstr (err, "hashing"));
  pl = alv_playlist_parse (out, strlen (out), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 1);
  g_assert_cmpstr (alv_playlist_item_get_url (alv_playlist_get_item (pl, 0)), ==,
                   "http://radio.example/x/one.ogg");
  g_assert_null (alv_playlist_item_get_urn (alv_playlist_get_item (pl, 0)));
  g_assert_cmpuint (alv_playlist_item_get_length (alv_playlist_get_item (pl, 0)), >, 0);
  /* the next full minute */
  start = alv_playlist_item_get_start (alv_playlist_get_item (pl, 0));
  g_assert_cmpint (g_date_time_get_second (start), ==, 0);
  g_assert_cmpint (g_date_time_get_microsecond (start), ==, 0);
  g_assert_cmpint (g_date_time_difference (start, now), >, 0);
  g_assert_cmpint (g_date_time_difference (start, now), <=, 61 * G_TIME_SPAN_SECOND);
}

static void
test_build_repeat_until (Fixture       *fx,
                         gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *a = media_path (fx, "a.ogg");
  g_autofree char *b = media_path (fx, "b.ogg");
  g_autofree char *out = g_build_filename (fx->dir, "r.rss", NULL);
  g_autofree char *err = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autoptr(GDateTime) start = alv_time_parse_w3cdtf (START, NULL);
  g_autoptr(GDateTime) until = g_date_time_add (start, 5500 * G_TIME_SPAN_MILLISECOND);
  g_autofree char *until_text = alv_time_format_w3cdtf (until);
  GDateTime *cursor = start;
  guint n;
  int status;

  if (!can_encode ("vorbis"))
    return;
  make_media (a, "vorbis", 10, 440, "A", NULL);
  make_media (b, "vorbis", 10, 550, "B", NULL);
  status = run_tool (NULL, NULL, "--base-url", "http://radio.example/", "--start", START,
                     "--until", until_text, "--root", fx->media, "-o", out, a, b, NULL);
  g_assert_cmpint (status, ==, 0);
  pl = load_playlist (out);
  n = alv_playlist_get_n_items (pl);
  /* 1 s items from 0 s: slots start at 0…5 s, all before 5.5 s */
  g_assert_cmpuint (n, ==, 6);
  for (guint i = 0; i < n; i++)
    {
      AlvPlaylistItem *item = alv_playlist_get_item (pl, i);

      g_assert_cmpstr (alv_playlist_item_get_title (item), ==, i % 2 ? "B" : "A");
      g_assert_true (g_date_time_equal (alv_playlist_item_get_start (item), cursor));
      g_assert_cmpint (g_date_time_compare (alv_playlist_item_get_start (item), until), <, 0);
      cursor = alv_playlist_item_get_end (item);
    }
  g_assert_cmpint (g_date_time_compare (cursor, until), >=, 0);

  /* --repeat alone fills 24 hours: with 1 s items that is over the item
   * limit, refused instead of writing a monster */
  status = run_tool (NULL, &err, "--base-url", "http://radio.example/", "--start", START,
                     "--repeat", "--no-urn", "--root", fx->media, "-o", out, a, b, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "items"));
  g_clear_pointer (&err, g_free);

  /* under the limit but large: written, with a warning */
  {
    g_autoptr(GDateTime) far = g_date_time_add_seconds (start, 1500);
    g_autofree char *far_text = alv_time_format_w3cdtf (far);

    status = run_tool (NULL, &err, "--base-url", "http://radio.example/", "--start", START,
                       "--until", far_text, "--no-urn", "--root", fx->media, "-o", out, a, b,
                       NULL);
    g_assert_cmpint (status, ==, 0);
    g_assert_nonnull (strstr (err, "warning: "));
    g_assert_nonnull (strstr (err, "items: every listener downloads all of them"));
  }

  /* --until before the start is a usage error */
  status = run_tool (NULL, NULL, "--base-url", "http://radio.example/", "--start", START,
                     "--until", "2031-05-01T11:00:00Z", "-o", out, a, NULL);
  g_assert_cmpint (status, ==, 2);
}

static void
test_build_mixed_formats (Fixture       *fx,
                          gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *ogg = media_path (fx, "1-song.ogg");
  g_autofree char *mp3 = media_path (fx, "2-song.mp3");
  g_autofree char *out = g_build_filename (fx->dir, "mixed.rss", NULL);
  g_autofree char *err = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  AlvPlaylistItem *item;
  int status;

  if (!can_encode ("vorbis") || !can_encode ("mp3"))
    return;
  make_media (ogg, "vorbis", 5, 440, "Ogg Song", "Ogg Artist");
  make_media (mp3, "mp3", 5, 440, "MP3 Song", "MP3 Artist");

  status = run_tool (NULL, &err, "--base-url", "http://radio.example/", "--root", fx->media,
                     "-o", out,
                     fx->media, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "mixed stream formats"));
  g_assert_nonnull (strstr (err, "1-song.ogg"));
  g_assert_nonnull (strstr (err, "2-song.mp3"));
  g_assert_nonnull (strstr (err, "Vorbis"));
  g_assert_nonnull (strstr (err, "MP3"));
  g_assert_nonnull (strstr (err, "--force"));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));

  g_clear_pointer (&err, g_free);
  status = run_tool (NULL, &err, "--base-url", "http://radio.example/", "--force",
                     "--start", START, "--root", fx->media, "-o", out, fx->media, NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (err, "warning"));
  pl = load_playlist (out);
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 2);
  item = alv_playlist_get_item (pl, 0);
  g_assert_cmpstr (alv_playlist_item_get_media_type (item), ==, "audio/ogg");
  item = alv_playlist_get_item (pl, 1);
  g_assert_cmpstr (alv_playlist_item_get_media_type (item), ==, "audio/mpeg");
  g_assert_cmpstr (alv_playlist_item_get_title (item), ==, "MP3 Song");
  g_assert_cmpstr (alv_playlist_item_get_creator (item), ==, "MP3 Artist");
}

/* Encodes @frames frames (25 a second) of a test pattern into @path as Ogg
 * Theora with a Vorbis track of the same length.  FALSE (skipped) when an
 * element is missing. */
static gboolean
make_theora (const char *path,
             guint       frames,
             const char *title)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GstElement) pipeline = NULL;
  g_autoptr(GstBus) bus = NULL;
  g_autoptr(GstMessage) msg = NULL;
  g_autofree char *desc = NULL;
  static const char * const needed[] = { "videotestsrc", "theoraenc", "vorbisenc", "oggmux",
                                         "theoradec", "taginject" };

  for (guint i = 0; i < G_N_ELEMENTS (needed); i++)
    {
      g_autoptr(GstElementFactory) factory = gst_element_factory_find (needed[i]);

      if (factory == NULL)
        {
          g_autofree char *reason = g_strdup_printf ("GStreamer element %s is missing, cannot make "
                                                     "Ogg Theora test files", needed[i]);

          g_test_skip (reason);
          return FALSE;
        }
    }
  desc = g_strdup_printf ("oggmux name=mux ! filesink location=\"%s\" "
                          "videotestsrc num-buffers=%u ! video/x-raw,width=160,height=120,framerate=25/1 ! "
                          "theoraenc ! queue ! mux. "
                          "audiotestsrc num-buffers=%u samplesperbuffer=%d ! "
                          "audio/x-raw,rate=%d,channels=2 ! taginject tags=\"title=\\\"%s\\\"\" ! "
                          "vorbisenc ! queue ! mux.",
                          path, frames, frames * 4 / 10, RATE / 10, RATE, title);
  pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  g_assert_cmpint (gst_element_set_state (pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
  bus = gst_element_get_bus (pipeline);
  msg = gst_bus_timed_pop_filtered (bus, 30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_assert_nonnull (msg);
  g_assert_cmpint (GST_MESSAGE_TYPE (msg), ==, GST_MESSAGE_EOS);
  return TRUE;
}

/* Video items: Ogg Theora + Vorbis is probed as video/ogg with its length
 * and title; two of them make a station; one with an MP3 is a mix of
 * formats, refused unless --force. */
static void
test_build_video (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *one = media_path (fx, "1-clip.ogv");
  g_autofree char *two = media_path (fx, "2-clip.ogv");
  g_autofree char *mp3 = media_path (fx, "3-song.mp3");
  g_autofree char *out = g_build_filename (fx->dir, "video.rss", NULL);
  g_autofree char *err = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  AlvPlaylistItem *item;
  GTimeSpan length;
  int status;

  if (!make_theora (one, 50, "Clip One") || !make_theora (two, 75, "Clip Two") || !can_encode ("mp3"))
    return;
  status = run_tool (NULL, &err, "--base-url", "http://tv.example/", "--start", START,
                     "--root", fx->media, "-o", out, one, two, NULL);
  g_assert_cmpint (status, ==, 0);
  pl = load_playlist (out);
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 2);
  item = alv_playlist_get_item (pl, 0);
  g_assert_cmpstr (alv_playlist_item_get_media_type (item), ==, "video/ogg");
  g_assert_cmpstr (alv_playlist_item_get_title (item), ==, "Clip One");
  length = g_date_time_difference (alv_playlist_item_get_end (item), alv_playlist_item_get_start (item));
  g_assert_cmpint (length, >=, 1900 * G_TIME_SPAN_MILLISECOND);
  g_assert_cmpint (length, <=, 2100 * G_TIME_SPAN_MILLISECOND);
  item = alv_playlist_get_item (pl, 1);
  g_assert_cmpstr (alv_playlist_item_get_media_type (item), ==, "video/ogg");
  g_clear_pointer (&err, g_free);

  make_media (mp3, "mp3", 5, 440, "MP3 Song", NULL);
  g_unlink (out);
  status = run_tool (NULL, &err, "--base-url", "http://tv.example/", "--root", fx->media,
                     "-o", out, one, mp3, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "mixed stream formats"));
  g_assert_nonnull (strstr (err, "Theora"));
  g_assert_nonnull (strstr (err, "video/ogg"));
  g_assert_nonnull (strstr (err, "--force"));
  g_assert_false (g_file_test (out, G_FILE_TEST_EXISTS));
  g_clear_pointer (&err, g_free);
  status = run_tool (NULL, &err, "--base-url", "http://tv.example/", "--force", "--start", START,
                     "--root", fx->media, "-o", out, one, mp3, NULL);
  g_assert_cmpint (status, ==, 0);
}

static void
test_build_refusals (Fixture       *fx,
                     gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *note = media_path (fx, "readme.ogg");
  g_autofree char *missing = media_path (fx, "missing.ogg");
  g_autofree char *good = media_path (fx, "good.ogg");
  g_autofree char *outside = g_build_filename (fx->dir, "outside.ogg", NULL);
  g_autofree char *err = NULL;
  int status;

  if (!can_encode ("vorbis"))
    return;
  make_media (good, "vorbis", 3, 440, NULL, NULL);
  make_media (outside, "vorbis", 3, 440, NULL, NULL);
  g_assert_true (g_file_set_contents (note, "this is text, whatever its name says\n", -1, NULL));

  /* named on the command line, not media: an error naming it */
  status = run_tool (NULL, &err, "--base-url", "http://radio.example/", good, note, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "readme.ogg"));
  g_assert_nonnull (strstr (err, "not a media file"));
  g_clear_pointer (&err, g_free);

  status = run_tool (NULL, &err, "--base-url", "http://radio.example/", missing, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "missing.ogg"));
  g_clear_pointer (&err, g_free);

  /* usage errors: no --base-url, a bad one, no input, a file outside --root */
  g_assert_cmpint (run_tool (NULL, NULL, good, NULL), ==, 2);
  g_assert_cmpint (run_tool (NULL, NULL, "--base-url", "ftp://radio.example/", good, NULL), ==, 2);
  g_assert_cmpint (run_tool (NULL, NULL, "--base-url", "http://radio.example/", NULL), ==, 2);
  g_assert_cmpint (run_tool (NULL, NULL, "--bogus-option", NULL), ==, 2);
  status = run_tool (NULL, &err, "--base-url", "http://radio.example/", "--root", fx->media,
                     outside, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (err, "root"));
  g_clear_pointer (&err, g_free);

  /* written outside the media directory without --root: which directory
   * the base URL publishes is asked, not guessed (the URLs used to lack
   * "media/" without a word); either answer builds */
  {
    g_autofree char *rss = g_build_filename (fx->dir, "station.rss", NULL);
    g_autofree char *root_hint = g_strdup_printf ("--root %s", fx->media);
    g_autofree char *dir_hint = g_strdup_printf ("--root %s", fx->dir);
    g_autoptr(AlvPlaylist) pl = NULL;

    g_assert_cmpint (g_remove (note), ==, 0);
    status = run_tool (NULL, &err, "--base-url", "http://radio.example/", "--no-urn",
                       "-o", rss, fx->media, NULL);
    g_assert_cmpint (status, ==, 1);
    g_assert_nonnull (strstr (err, "outside the media directory"));
    g_assert_nonnull (strstr (err, root_hint));
    g_assert_nonnull (strstr (err, dir_hint));
    g_assert_false (g_file_test (rss, G_FILE_TEST_EXISTS));
    g_clear_pointer (&err, g_free);

    status = run_tool (NULL, NULL, "--base-url", "http://radio.example/", "--no-urn",
                       "--root", fx->dir, "-o", rss, fx->media, NULL);
    g_assert_cmpint (status, ==, 0);
    pl = load_playlist (rss);
    g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 1);
    g_assert_cmpstr (alv_playlist_item_get_url (alv_playlist_get_item (pl, 0)), ==,
                     "http://radio.example/media/good.ogg");
  }
}

/* --- tests: consumers ----------------------------------------------------- */

static void
test_consumers_rapper (Fixture       *fx,
                       gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *rapper = g_find_program_in_path ("rapper");
  g_autofree char *rss = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  int wait_status = 0;
  guint n_items = 0, n_starts = 0;

  if (rapper == NULL)
    {
      g_test_skip ("rapper (raptor2-utils) is not installed");
      return;
    }
  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  rss = build_station (fx, "https://radio.example/media/");

  /* strict RDF/XML parse, then the triples: one rss:item per item, each
   * with its own event start date */
  {
    const char *argv[] = { rapper, "-i", "rdfxml", "-c", rss, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &out, &err, &wait_status, &error));
    g_assert_no_error (error);
    g_test_message ("rapper -c: %s", err);
    g_assert_true (g_spawn_check_wait_status (wait_status, NULL));
    g_assert_null (strstr (err, "Error"));
    g_assert_null (strstr (err, "Warning"));
  }
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);
  {
    const char *argv[] = { rapper, "-q", "-i", "rdfxml", "-o", "ntriples", rss, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &out, &err, &wait_status, &error));
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (wait_status, NULL));
  }
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (strstr (lines[i], "<" ALV_NS_RDF "type> <" ALV_NS_RSS "item>") != NULL)
        n_items++;
      if (strstr (lines[i], "<" ALV_NS_EV "startdate>") != NULL)
        n_starts++;
    }
  g_assert_cmpuint (n_items, ==, G_N_ELEMENTS (station_items));
  g_assert_cmpuint (n_starts, ==, G_N_ELEMENTS (station_items));
  for (guint i = 0; i < G_N_ELEMENTS (station_items); i++)
    {
      g_autofree char *about = g_strconcat ("<https://radio.example/media/",
                                            station_items[i].url_path, ">", NULL);
      g_assert_nonnull (strstr (out, about));
    }
}

static char *
find_feedparser_python (void)
{
  const char *candidates[] = { g_getenv ("PYTHON3"), "/usr/bin/python3", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (candidates); i++)
    {
      const char *argv[] = { candidates[i], "-c", "import feedparser", NULL };
      int wait_status = 0;

      if (candidates[i] == NULL || *candidates[i] == '\0')
        continue;
      if (g_spawn_sync (NULL, (char **) argv, NULL,
                        G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                        NULL, NULL, NULL, NULL, &wait_status, NULL) &&
          g_spawn_check_wait_status (wait_status, NULL))
        return g_strdup (candidates[i]);
    }
  return NULL;
}

static void
test_consumers_feedparser (Fixture       *fx,
                           gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *python = find_feedparser_python ();
  g_autofree char *rss = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) expected = g_string_new (NULL);
  int wait_status = 0;
  const char *script =
    "import feedparser, sys\n"
    "d = feedparser.parse(sys.argv[1])\n"
    "print('bozo', int(bool(d.bozo)), d.get('version', ''))\n"
    "print('channel', d.feed.get('title'))\n"
    "for e in d.entries:\n"
    "    print('item', e.get('title'), '|', e.get('link'), '|', e.get('author', ''))\n";

  if (python == NULL)
    {
      g_test_skip ("python3-feedparser is not installed");
      return;
    }
  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  rss = build_station (fx, "https://radio.example/media/");
  {
    const char *argv[] = { python, "-c", script, rss, NULL };

    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &out, NULL, &wait_status, &error));
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (wait_status, NULL));
  }
  g_string_append (expected, "bozo 0 rss10\nchannel Test Station\n");
  for (guint i = 0; i < G_N_ELEMENTS (station_items); i++)
    g_string_append_printf (expected, "item %s | https://radio.example/media/%s | %s\n",
                            station_items[i].title, station_items[i].url_path,
                            station_items[i].artist ? station_items[i].artist : "");
  g_assert_cmpstr (out, ==, expected->str);

  /* repeated: as many distinct entries as slots (each slot has an
   * identifier of its own), each linking the media */
  {
    g_autofree char *repeated = g_build_filename (fx->dir, "repeated.rss", NULL);
    g_autofree char *ids = NULL;
    const char *count =
      "import feedparser, sys\n"
      "d = feedparser.parse(sys.argv[1])\n"
      "print(len(d.entries), len(set(e.get('id') for e in d.entries)),"
      " len(set(e.get('link') for e in d.entries)))\n";
    const char *argv[] = { python, "-c", count, repeated, NULL };
    g_autoptr(GDateTime) start = alv_time_parse_w3cdtf (START, NULL);
    g_autoptr(GDateTime) until = g_date_time_add_seconds (start, 100);
    g_autofree char *until_text = alv_time_format_w3cdtf (until);
    guint entries = 0, distinct = 0, links = 0;

    g_assert_cmpint (run_tool (NULL, NULL, "--base-url", "https://radio.example/media/",
                               "--root", fx->media, "--start", START, "--until", until_text,
                               "-o", repeated, fx->media, NULL), ==, 0);
    g_assert_true (g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                                 &ids, NULL, &wait_status, &error));
    g_assert_no_error (error);
    g_assert_cmpint (sscanf (ids, "%u %u %u", &entries, &distinct, &links), ==, 3);
    g_assert_cmpuint (entries, >, G_N_ELEMENTS (station_items));
    g_assert_cmpuint (distinct, ==, entries);
    g_assert_cmpuint (links, ==, G_N_ELEMENTS (station_items));
  }
}

/* --- tests: check --------------------------------------------------------- */

static void
test_check_good (Fixture       *fx,
                 gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *rss = NULL;
  g_autofree char *base_url = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *playlist_url = NULL;
  g_autofree char *item_url = NULL;
  int status;

  start_server (fx);
  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  base_url = g_strconcat (fx->base, "media/", NULL);
  rss = build_station (fx, base_url);

  /* local mapping: rehash every file; clean, and says so in one line */
  status = run_tool (&out, &err, "--check", rss, "--base-url", base_url, "--root", fx->media, NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_null (strstr (out, "error"));
  g_assert_nonnull (strstr (err, ": 3 item(s), 0 error(s), 0 warning(s)"));
  g_assert_cmpuint (hits (fx, "/media/a-morning.ogg"), ==, 0);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* over HTTP: the playlist from a URL, each item probed with one Range
   * request */
  playlist_url = g_strconcat (fx->base, "station.rss", NULL);
  status = run_tool (&out, NULL, "--check", playlist_url, NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_null (strstr (out, "error"));
  g_assert_cmpuint (hits (fx, "/station.rss"), ==, 1);
  g_assert_cmpuint (hits (fx, "/media/a-morning.ogg"), ==, 1);
  g_assert_cmpuint (hits (fx, "/media/b noon.ogg"), ==, 1);
  g_assert_cmpuint (hits (fx, "/media/c-evening.ogg"), ==, 1);
  g_clear_pointer (&out, g_free);

  /* --fetch downloads and hashes: still clean */
  status = run_tool (&out, NULL, "--check", rss, "--fetch", NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpuint (hits (fx, "/media/a-morning.ogg"), ==, 3);
  g_clear_pointer (&out, g_free);

  /* an item that is gone */
  item_url = media_path (fx, "b noon.ogg");
  g_assert_cmpint (g_remove (item_url), ==, 0);
  status = run_tool (&out, &err, "--check", rss, NULL);
  g_assert_cmpint (status, ==, 1);
  {
    /* each line names the URL, and one line sums it up */
    g_autofree char *gone = g_strconcat (fx->base, "media/b%20noon.ogg", NULL);
    g_autofree char *line = g_strdup_printf (":item 2: error: unreachable: %s: HTTP 404", gone);
    g_autofree char *summary = g_strdup_printf ("1 of 3 items unreachable: first: %s: HTTP 404",
                                                gone);

    g_assert_nonnull (strstr (out, line));
    g_assert_nonnull (strstr (err, summary));
  }
  g_assert_null (strstr (out, ":item 1: error"));
  g_clear_pointer (&out, g_free);
  status = run_tool (&out, NULL, "--check", rss, "--base-url", base_url, "--root", fx->media, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, ":item 2: error:"));
  g_assert_nonnull (strstr (out, "no such file"));
}

/* Rewrites the slot of item @index of @src into @dst. */
static void
write_shifted (const char *src,
               const char *dst,
               guint       index,
               GTimeSpan   shift)
{
  g_autoptr(AlvPlaylist) pl = load_playlist (src);
  AlvPlaylistItem *item = alv_playlist_get_item (pl, index);
  g_autoptr(GDateTime) start = g_date_time_add (alv_playlist_item_get_start (item), shift);
  g_autoptr(GDateTime) end = g_date_time_add (alv_playlist_item_get_end (item), shift);
  g_autofree char *text = NULL;
  gsize length = 0;

  alv_playlist_item_set_slot (item, start, end);
  text = alv_playlist_to_string (pl, &length);
  g_assert_nonnull (text);
  g_assert_true (g_file_set_contents (dst, text, (gssize) length, NULL));
}

static void
test_check_slots (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *rss = NULL;
  g_autofree char *overlap = g_build_filename (fx->dir, "overlap.rss", NULL);
  g_autofree char *gap = g_build_filename (fx->dir, "gap.rss", NULL);
  g_autofree char *garbage = g_build_filename (fx->dir, "garbage.rss", NULL);
  g_autofree char *past = g_build_filename (fx->dir, "past.rss", NULL);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *prefix = NULL;
  g_autofree char *base_url = NULL;
  int status;

  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  rss = build_station (fx, "https://radio.example/media/");

  /* item 2 starts half a second early: the common parser refuses
   * overlapping slots, and --check reports its message */
  write_shifted (rss, overlap, 1, -500 * G_TIME_SPAN_MILLISECOND);
  status = run_tool (&out, NULL, "--check", overlap, "--offline", NULL);
  g_assert_cmpint (status, ==, 1);
  prefix = g_strconcat (overlap, ": error: ", NULL);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_assert_nonnull (strstr (out, "overlaps"));
  g_assert_nonnull (strstr (out, "b%20noon.ogg"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&prefix, g_free);

  /* item 3 starts two seconds late: a warning only */
  write_shifted (rss, gap, 2, 2 * G_TIME_SPAN_SECOND);
  status = run_tool (&out, NULL, "--check", gap, "--offline", NULL);
  g_assert_cmpint (status, ==, 0);
  prefix = g_strconcat (gap, ":item 3: warning: gap of 2.000 s after item 2", NULL);
  g_assert_nonnull (strstr (out, prefix));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&prefix, g_free);

  /* long over: a warning */
  write_shifted (rss, past, 0, -10 * 365 * G_TIME_SPAN_DAY);
  {
    g_autoptr(AlvPlaylist) pl = load_playlist (past);
    g_autofree char *text = NULL;
    gsize length = 0;

    for (guint i = 1; i < alv_playlist_get_n_items (pl); i++)
      {
        AlvPlaylistItem *item = alv_playlist_get_item (pl, i);
        g_autoptr(GDateTime) s = g_date_time_add (alv_playlist_item_get_start (item),
                                                  -10 * 365 * G_TIME_SPAN_DAY);
        g_autoptr(GDateTime) e = g_date_time_add (alv_playlist_item_get_end (item),
                                                  -10 * 365 * G_TIME_SPAN_DAY);
        alv_playlist_item_set_slot (item, s, e);
      }
    text = alv_playlist_to_string (pl, &length);
    g_assert_true (g_file_set_contents (past, text, (gssize) length, NULL));
  }
  status = run_tool (&out, NULL, "--check", past, "--offline", NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, "warning: every item is in the past"));
  g_clear_pointer (&out, g_free);

  /* not a playlist: the parser's message, exit 1 */
  g_assert_true (g_file_set_contents (garbage, "<rdf:RDF>\n<oops\n", -1, NULL));
  status = run_tool (&out, NULL, "--check", garbage, NULL);
  g_assert_cmpint (status, ==, 1);
  prefix = g_strconcat (garbage, ": error: ", NULL);
  g_assert_true (g_str_has_prefix (out, prefix));
  g_clear_pointer (&out, g_free);

  /* usage */
  g_assert_cmpint (run_tool (NULL, NULL, "--check", rss, "extra", NULL), ==, 2);
  base_url = g_strdup ("https://radio.example/media/");
  g_assert_cmpint (run_tool (NULL, &err, "--check", rss, "--base-url", base_url, NULL), ==, 2);
}

static void
test_check_changed_media (Fixture       *fx,
                          gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *rss = NULL;
  g_autofree char *base_url = NULL;
  g_autofree char *out = NULL;
  g_autofree char *a = NULL;
  g_autofree char *c = NULL;
  g_autofree char *old_urn = NULL;
  g_autofree char *new_urn = NULL;
  int status;

  start_server (fx);
  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  base_url = g_strconcat (fx->base, "media/", NULL);
  rss = build_station (fx, base_url);

  /* same name, same duration, another tone */
  a = media_path (fx, "a-morning.ogg");
  old_urn = expected_urn (a);
  make_media (a, "vorbis", 10, 880, "Morning Song", "The Larks");
  new_urn = expected_urn (a);
  g_assert_cmpstr (old_urn, !=, new_urn);

  status = run_tool (&out, NULL, "--check", rss, "--base-url", base_url, "--root", fx->media, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, ":item 1: error: content changed"));
  g_assert_nonnull (strstr (out, old_urn));
  g_assert_nonnull (strstr (out, new_urn));
  g_assert_null (strstr (out, ":item 2: error"));
  g_clear_pointer (&out, g_free);

  /* the same seen from the web with --fetch */
  status = run_tool (&out, NULL, "--check", rss, "--fetch", NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, ":item 1: error:"));
  g_assert_null (strstr (out, ":item 2: error"));
  g_clear_pointer (&out, g_free);

  /* an item replaced by an MP3: the format changes between items */
  c = media_path (fx, "c-evening.ogg");
  if (!can_encode ("mp3"))
    return;
  make_media (c, "mp3", 7, 660, NULL, NULL);
  status = run_tool (&out, NULL, "--check", rss, "--base-url", base_url, "--root", fx->media, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, ":item 3: error: the stream format changes from item 2"));
}

/* --check with a real gateway: a playlist built for another name of the
 * gateway's host (localhost instead of 127.0.0.1) is refused on every
 * item, with the gateway's reason naming the option that would serve it;
 * the gateway is asked once for the one origin, not once per item.  The
 * playlist built for the name it serves passes. */
static void
test_check_gateway (Fixture       *fx,
                    gconstpointer  data G_GNUC_UNUSED)
{
  const char *extra[] = { "--docroot", NULL, NULL };
  g_autoptr(GSubprocess) gateway = NULL;
  g_autoptr(SoupSession) session = test_session_new_from ("127.0.0.1");
  g_autofree char *gateway_url = NULL;
  g_autofree char *port = NULL;
  g_autofree char *foreign_base = NULL;
  g_autofree char *served_base = NULL;
  g_autofree char *rss = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *fix = NULL;
  g_autofree char *summary = NULL;

  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  extra[1] = fx->dir;
  gateway = test_spawn_gateway (extra, 10000, &gateway_url);
  port = g_strndup (strrchr (gateway_url, ':') + 1, strlen (strrchr (gateway_url, ':') + 1) - 1);
  foreign_base = g_strdup_printf ("http://localhost:%s/media/", port);
  served_base = g_strconcat (gateway_url, "media/", NULL);

  /* built for a name the gateway does not serve */
  rss = build_station (fx, foreign_base);
  g_assert_cmpint (run_tool (&out, &err, "--check", rss, "--gateway", gateway_url, NULL), ==, 1);
  fix = g_strdup_printf ("--origin naming http://localhost:%s/", port);
  for (guint i = 0; i < G_N_ELEMENTS (station_items); i++)
    {
      g_autofree char *line = g_strdup_printf (":item %u: error: the gateway at %s refuses "
                                               "URLs at http://localhost:%s/: ",
                                               i + 1, gateway_url, port);
      const char *found = strstr (out, line);

      g_assert_nonnull (found);
      /* the fix, on the item's own line */
      g_assert_nonnull (strstr (found, "--base-url"));
      g_assert_nonnull (strstr (found, fix));
      g_assert_true (strstr (found, fix) < strchr (found, '\n'));
    }
  summary = g_strdup_printf ("3 of 3 items refused by the gateway: first: the gateway at %s "
                             "refuses URLs at http://localhost:%s/: ", gateway_url, port);
  g_assert_nonnull (strstr (err, summary));
  g_assert_cmpuint (test_gateway_status (session, gateway_url, "resolves"), ==, 1);
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* without a gateway (none on D-Bus here) the same playlist passes: its
   * files answer under either name */
  g_assert_cmpint (run_tool (&out, &err, "--check", rss, NULL), ==, 0);
  g_assert_null (strstr (out, "refuses"));
  g_clear_pointer (&out, g_free);
  g_clear_pointer (&err, g_free);

  /* a gateway that does not answer: a warning, not an error */
  {
    guint16 closed;
    g_autoptr(GSocket) socket = test_closed_port (&closed);
    g_autofree char *nobody = g_strdup_printf ("http://127.0.0.1:%u/", closed);
    g_autofree char *warning = g_strdup_printf (": warning: cannot ask the gateway at %s whether "
                                                "it serves http://localhost:%s/: ", nobody, port);

    g_assert_cmpint (run_tool (&out, &err, "--check", rss, "--gateway", nobody, NULL), ==, 0);
    g_assert_nonnull (strstr (out, warning));
    g_clear_pointer (&out, g_free);
    g_clear_pointer (&err, g_free);
  }
  g_clear_pointer (&rss, g_free);

  /* built for the name it serves */
  rss = build_station (fx, served_base);
  g_assert_cmpint (run_tool (&out, &err, "--check", rss, "--gateway", gateway_url, NULL), ==, 0);
  g_assert_null (strstr (out, "refuses"));
  g_assert_null (strstr (err, "refused by the gateway"));
  g_assert_cmpuint (test_gateway_status (session, gateway_url, "resolves"), ==, 2);

  g_assert_true (test_subprocess_stop (gateway, SIGTERM, 10000));
}

/* --- tests: prepare ------------------------------------------------------- */

static void
test_prepare (Fixture       *fx,
              gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *rss = NULL;
  g_autofree char *gateway = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *first_key = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  gint64 before, elapsed;
  int status;

  start_server (fx);
  if (!can_encode ("vorbis"))
    return;
  make_station (fx);
  rss = build_station (fx, "https://radio.example/media/");
  pl = load_playlist (rss);
  for (guint i = 0; i < alv_playlist_get_n_items (pl); i++)
    {
      AlvPlaylistItem *item = alv_playlist_get_item (pl, i);

      g_hash_table_insert (fx->gateway_urns, g_strdup (alv_playlist_item_get_url (item)),
                           g_strdup (alv_playlist_item_get_urn (item)));
    }
  gateway = g_strconcat (fx->base, "gw", NULL);

  /* the first URL is answered 202 + Retry-After: 1, then 200 */
  fx->gateway_mode = GATEWAY_ACCEPT_THEN_OK;
  fx->gateway_requests = 0;
  before = g_get_monotonic_time ();
  status = run_tool (&out, NULL, "--prepare", "--gateway", gateway, rss, NULL);
  elapsed = g_get_monotonic_time () - before;
  g_assert_cmpint (status, ==, 0);
  for (guint i = 0; i < alv_playlist_get_n_items (pl); i++)
    {
      AlvPlaylistItem *item = alv_playlist_get_item (pl, i);
      g_autofree char *key = g_strconcat ("resolve:", alv_playlist_item_get_url (item), NULL);
      g_autofree char *line = g_strdup_printf (":item %u: ready: %s %s", i + 1,
                                               alv_playlist_item_get_url (item),
                                               alv_playlist_item_get_urn (item));

      g_assert_cmpuint (hits (fx, key), ==, i == 0 ? 2 : 1);
      g_assert_nonnull (strstr (out, line));
    }
  g_assert_cmpint (elapsed, >=, G_TIME_SPAN_SECOND);
  g_clear_pointer (&out, g_free);

  /* a gateway with other content for the URLs */
  fx->gateway_mode = GATEWAY_WRONG_URN;
  status = run_tool (&out, NULL, "--prepare", "--gateway", gateway, rss, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, ":item 1: error: the gateway has urn:tree:sha256:AAAA"));
  g_clear_pointer (&out, g_free);

  /* a failing gateway: its reason is quoted */
  fx->gateway_mode = GATEWAY_FAIL;
  status = run_tool (&out, NULL, "--prepare", "--gateway", gateway, rss, NULL);
  g_assert_cmpint (status, ==, 1);
  g_assert_nonnull (strstr (out, "HTTP 500"));
  g_assert_nonnull (strstr (out, "store unavailable"));
  g_clear_pointer (&out, g_free);

  /* build and prepare in one go */
  fx->gateway_mode = GATEWAY_OK;
  g_hash_table_remove_all (fx->hits);
  status = run_tool (&out, NULL, "--base-url", "https://radio.example/media/", "--root", fx->media,
                     "--start", START, "--prepare", "--gateway", gateway, fx->media, "-o", rss, NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (out, ":item 3: ready: "));
  g_clear_pointer (&out, g_free);

  /* to stdout: the playlist stays clean, the reports go to stderr; a busy
   * gateway (429) is asked again */
  fx->gateway_mode = GATEWAY_BUSY_THEN_OK;
  fx->gateway_requests = 0;
  g_hash_table_remove_all (fx->hits);
  status = run_tool (&out, &err, "--base-url", "https://radio.example/media/", "--start", START,
                     "--title", "Test Station", "--prepare", "--gateway", gateway,
                     fx->media, NULL);
  g_assert_cmpint (status, ==, 0);
  g_assert_nonnull (strstr (err, ":item 3: ready: "));
  g_assert_null (strstr (out, "ready"));
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(AlvPlaylist) built = alv_playlist_parse (out, strlen (out), &error);

    g_assert_no_error (error);
    g_assert_true (alv_playlist_equal (built, pl));
  }
  first_key = g_strconcat ("resolve:", alv_playlist_item_get_url (alv_playlist_get_item (pl, 0)),
                           NULL);
  g_assert_cmpuint (hits (fx, first_key), ==, 2);

  /* no --gateway and no gateway on D-Bus (this test has no bus): a clear
   * failure, not a usage error */
  {
    g_autofree char *no_gateway = NULL;

    g_assert_cmpint (run_tool (NULL, &no_gateway, "--prepare", rss, NULL), ==, 1);
    g_assert_nonnull (strstr (no_gateway, "no --gateway URL given"));
  }

  /* usage */
  g_assert_cmpint (run_tool (NULL, NULL, "--gateway", gateway, rss, NULL), ==, 2);
}

int
main (int    argc,
      char **argv)
{
  g_autofree char *scratch = NULL;
  g_autofree char *registry = NULL;
  int status;

  /* One GStreamer registry for this process and its children, so the
   * isolated per-test cache directories do not each rescan plugins. */
  scratch = g_dir_make_tmp ("alv-test-gst-XXXXXX", NULL);
  g_assert_nonnull (scratch);
  registry = g_build_filename (scratch, "registry.bin", NULL);
  g_setenv ("GST_REGISTRY_1_0", registry, TRUE);

  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  gst_init (&argc, &argv);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/server/playlist/build/directory", test_build_directory);
  ADD ("/server/playlist/build/stdout-default-start", test_build_stdout_default_start);
  ADD ("/server/playlist/build/repeat-until", test_build_repeat_until);
  ADD ("/server/playlist/build/mixed-formats", test_build_mixed_formats);
  ADD ("/server/playlist/build/video", test_build_video);
  ADD ("/server/playlist/build/refusals", test_build_refusals);
  ADD ("/server/playlist/consumers/rapper", test_consumers_rapper);
  ADD ("/server/playlist/consumers/feedparser", test_consumers_feedparser);
  ADD ("/server/playlist/check/good", test_check_good);
  ADD ("/server/playlist/check/slots", test_check_slots);
  ADD ("/server/playlist/check/changed-media", test_check_changed_media);
  ADD ("/server/playlist/check/gateway", test_check_gateway);
  ADD ("/server/playlist/prepare", test_prepare);
#undef ADD

  status = g_test_run ();
  test_remove_tree (scratch);
  gst_deinit ();
  return status;
}
