/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Integration tests of the real alluvium-core binary on a private session
 * bus: a SoupServer on 127.0.0.1 plays the station (playlist
 * and an MP3 item encoded with GStreamer, served with Range support); the
 * test tunes over D-Bus through the generated proxy, reads the local stream
 * and checks that its bytes are the scheduled file's bytes from the
 * position now playing, follows State/NowPlaying through PropertiesChanged,
 * stops, checks the typed errors, gaps and the idle exit.  Every daemon
 * gets PR_SET_PDEATHSIG so a failed assertion cannot leave it running.
 */
#define G_LOG_DOMAIN "test-core-dbus"
#include "config.h"

#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include "alv-dbus.h"
#include "alv-mp3.h"
#include "alv-ogg.h"
#include "alv-playlist.h"
#include "stream-media.h"
#include "test-util.h"
#include "test-bus.h"

#define SEC G_GINT64_CONSTANT (1000000)
#define WAIT_MS 10000
/* the joined position: the item started this long before Tune */
#define JOIN_AT (8 * SEC)
/* fixture data: the test starts the daemon itself */
#define OWN_DAEMON GUINT_TO_POINTER (63)

typedef struct
{
  TestBus *bus;
  GDBusConnection *conn;
  GSubprocess *daemon;
  char *config_path;
  AlvCore1 *proxy;
  gboolean name_owned;
  guint watch_id;

  SoupServer *server;
  char *base_url;
  GBytes *mp3;
  GBytes *noise;        /* a second MP3 item unlike the first (next-item) */
  gint64 slot_start;
  gint64 slot_len;
  char *playlist;
  char *gap_playlist;
  char *ended_playlist;
  char *two_playlist;
  char *ogg_playlist;
  char *custom_playlist;  /* a test's own, at /custom.rss */
  GBytes *custom_mp3;     /* a test's own, at /media/custom.mp3 */
  GBytes *video[2];       /* a test's own, at /media/one.ogv and /media/two.ogv */
  GBytes *ogg;
  guint n_media_requests;
  gboolean media_down;  /* the media answer 503 */
  gboolean saw_range;

  GPtrArray *states;    /* State values seen in PropertiesChanged */
  guint n_now_playing;
} Fixture;

static void
add_item_at (AlvPlaylist *pl, const char *url, const char *title, gint64 start, gint64 len)
{
  g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (url);
  g_autoptr(GDateTime) s = stream_datetime (start);
  g_autoptr(GDateTime) e = stream_datetime (start + len);

  alv_playlist_item_set_title (item, title);
  alv_playlist_item_set_creator (item, "audiotestsrc");
  alv_playlist_item_set_media_type (item, "audio/mpeg");
  alv_playlist_item_set_slot (item, s, e);
  alv_playlist_add_item (pl, item);
}

static void
add_item (Fixture *fx, AlvPlaylist *pl, const char *path, const char *title, gint64 start, gint64 len)
{
  g_autofree char *url = g_strconcat (fx->base_url, path, NULL);

  add_item_at (pl, url, title, start, len);
}

static char *
make_playlist (Fixture *fx, gint64 start, gint64 len)
{
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();

  alv_playlist_set_title (pl, "Test Station");
  add_item (fx, pl, "/media/tone.mp3", "Test tone", start, len);
  return alv_playlist_to_string (pl, NULL);
}

/* the first item has NEXT_AFTER left to play, then "Second" follows */
#define NEXT_AFTER (2500 * 1000)

static char *
make_two_items (Fixture *fx, gint64 now)
{
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();

  alv_playlist_set_title (pl, "Test Station");
  add_item (fx, pl, "/media/tone.mp3", "Test tone", now + NEXT_AFTER - fx->slot_len, fx->slot_len);
  add_item (fx, pl, fx->noise != NULL ? "/media/noise.mp3" : "/media/tone.mp3", "Second",
            now + NEXT_AFTER, fx->slot_len);
  return alv_playlist_to_string (pl, NULL);
}

static void
serve (SoupServer        *server G_GNUC_UNUSED,
       SoupServerMessage *msg,
       const char        *path,
       GHashTable        *query G_GNUC_UNUSED,
       gpointer           user_data)
{
  Fixture *fx = user_data;
  const char *body = NULL;

  if (strcmp (path, "/station.rss") == 0)
    body = fx->playlist;
  else if (strcmp (path, "/gap.rss") == 0)
    body = fx->gap_playlist;
  else if (strcmp (path, "/ended.rss") == 0)
    body = fx->ended_playlist;
  else if (strcmp (path, "/two.rss") == 0)
    body = fx->two_playlist;
  else if (strcmp (path, "/ogg.rss") == 0)
    body = fx->ogg_playlist;
  else if (strcmp (path, "/custom.rss") == 0)
    body = fx->custom_playlist;
  else if (strcmp (path, "/invalid.rss") == 0)
    body = "<?xml version=\"1.0\"?><html/>";
  if (body != NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, ALV_PLAYLIST_MIME_TYPE, SOUP_MEMORY_COPY,
                                        body, strlen (body));
      return;
    }
  if ((strcmp (path, "/media/one.ogv") == 0 && fx->video[0] != NULL)
      || (strcmp (path, "/media/two.ogv") == 0 && fx->video[1] != NULL))
    {
      fx->n_media_requests++;
      stream_serve_bytes (msg, fx->video[strcmp (path, "/media/one.ogv") == 0 ? 0 : 1], "video/ogg");
      return;
    }
  if (strcmp (path, "/media/custom.mp3") == 0 && fx->custom_mp3 != NULL)
    {
      fx->n_media_requests++;
      stream_serve_bytes (msg, fx->custom_mp3, "audio/mpeg");
      return;
    }
  if (strcmp (path, "/media/tone.mp3") == 0
      || (strcmp (path, "/media/noise.mp3") == 0 && fx->noise != NULL)
      || (strcmp (path, "/media/tone.ogg") == 0 && fx->ogg != NULL))
    {
      GBytes *media = g_str_has_suffix (path, ".ogg") ? fx->ogg
                      : strcmp (path, "/media/noise.mp3") == 0 ? fx->noise : fx->mp3;
      const char *type = g_str_has_suffix (path, ".ogg") ? "audio/ogg" : "audio/mpeg";

      fx->n_media_requests++;
      if (fx->media_down)
        {
          soup_server_message_set_status (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
          return;
        }
      stream_serve_bytes (msg, media, type);
      if (soup_server_message_get_status (msg) == SOUP_STATUS_PARTIAL_CONTENT)
        fx->saw_range = TRUE;
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

static gboolean
name_owned_cond (gpointer data)
{
  Fixture *fx = data;
  return fx->name_owned;
}

static gboolean
name_gone_cond (gpointer data)
{
  Fixture *fx = data;
  return !fx->name_owned;
}

static void
on_name_appeared (GDBusConnection *c G_GNUC_UNUSED, const char *n G_GNUC_UNUSED,
                  const char *owner G_GNUC_UNUSED, gpointer user_data)
{
  ((Fixture *) user_data)->name_owned = TRUE;
}

static void
on_name_vanished (GDBusConnection *c G_GNUC_UNUSED, const char *n G_GNUC_UNUSED,
                  gpointer user_data)
{
  ((Fixture *) user_data)->name_owned = FALSE;
}

static void
on_properties_changed (GDBusProxy *proxy G_GNUC_UNUSED,
                       GVariant   *changed,
                       GStrv       invalidated G_GNUC_UNUSED,
                       gpointer    user_data)
{
  Fixture *fx = user_data;
  const char *state = NULL;
  g_autoptr(GVariant) np = NULL;

  if (g_variant_lookup (changed, "State", "&s", &state))
    g_ptr_array_add (fx->states, g_strdup (state));
  np = g_variant_lookup_value (changed, "NowPlaying", G_VARIANT_TYPE_VARDICT);
  if (np != NULL)
    fx->n_now_playing++;
}

static GSubprocess *
spawn_daemon_full (Fixture *fx, const char *extra, GSubprocessFlags flags)
{
  const char *args[] = { "--config", fx->config_path, extra, NULL };

  return test_spawn_core_full (test_bus_get_address (fx->bus), g_get_user_cache_dir (),
                               g_get_user_config_dir (), TRUE, args, flags);
}

static GSubprocess *
spawn_daemon (Fixture *fx, const char *extra)
{
  return spawn_daemon_full (fx, extra, G_SUBPROCESS_FLAGS_NONE);
}

/* @more: further lines of its [core] section, or NULL; @flags: e.g. to
 * read its log */
static void
start_daemon_full (Fixture *fx, guint idle_timeout, const char *more, GSubprocessFlags flags)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *conf = g_strdup_printf ("[core]\nidle-timeout=%u\nstream-port=0\n%s",
                                           idle_timeout, more != NULL ? more : "");

  g_file_set_contents (fx->config_path, conf, -1, &error);
  g_assert_no_error (error);
  fx->daemon = spawn_daemon_full (fx, g_test_verbose () ? "--verbose" : NULL, flags);
  test_wait_until (name_owned_cond, fx, WAIT_MS);
  g_assert_true (fx->name_owned);
  fx->proxy = alv_core1_proxy_new_sync (fx->conn, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                        ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (fx->proxy, "g-properties-changed", G_CALLBACK (on_properties_changed), fx);
}

static void
start_daemon (Fixture *fx, guint idle_timeout)
{
  start_daemon_full (fx, idle_timeout, NULL, G_SUBPROCESS_FLAGS_NONE);
}

static void
fixture_setup (Fixture *fx, gconstpointer data)
{
  g_autoptr(GError) error = NULL;
  guint n_buffers = 766;   /* 766 × 1152 / 44100 = 20.01 s */
  gint64 now;

  fx->mp3 = stream_media_mp3 (n_buffers, FALSE);
  if (fx->mp3 == NULL)
    return;
  if (data == GUINT_TO_POINTER (62))
    {
      g_autofree char *desc = g_strdup_printf ("audiotestsrc num-buffers=%u samplesperbuffer=1152 "
                                               "wave=white-noise ! audio/x-raw,rate=44100,channels=2 ! "
                                               "lamemp3enc target=bitrate bitrate=128 cbr=true",
                                               n_buffers);

      fx->noise = stream_media_encode (desc, &error);
      g_assert_no_error (error);
    }
  now = g_get_real_time ();
  fx->states = g_ptr_array_new_with_free_func (g_free);
  fx->server = test_server_new ();
  soup_server_add_handler (fx->server, NULL, serve, fx, NULL);
  fx->base_url = test_server_get_url (fx->server);
  if (g_str_has_suffix (fx->base_url, "/"))
    fx->base_url[strlen (fx->base_url) - 1] = '\0';

  fx->slot_len = (gint64) n_buffers * 1152 * SEC / 44100;
  fx->slot_start = now - JOIN_AT;
  fx->playlist = make_playlist (fx, fx->slot_start, fx->slot_len);
  fx->gap_playlist = make_playlist (fx, now + 3600 * SEC, fx->slot_len);
  fx->ended_playlist = make_playlist (fx, now - 3600 * SEC, fx->slot_len);
  fx->two_playlist = make_two_items (fx, now);
  if (data == GUINT_TO_POINTER (61))
    {
      /* 861 × 1024 / 44100 = 19.99 s */
      g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
      g_autofree char *url = NULL;
      g_autoptr(AlvPlaylistItem) item = NULL;
      g_autoptr(GDateTime) s = NULL;
      g_autoptr(GDateTime) e = NULL;

      fx->ogg = stream_media_vorbis (861, "Ogg tone", 440);
      now = g_get_real_time ();
      url = g_strconcat (fx->base_url, "/media/tone.ogg", NULL);
      item = alv_playlist_item_new (url);
      s = stream_datetime (now - JOIN_AT);
      e = stream_datetime (now - JOIN_AT + (gint64) 861 * 1024 * SEC / 44100);
      alv_playlist_item_set_title (item, "Ogg tone");
      alv_playlist_item_set_media_type (item, "audio/ogg");
      alv_playlist_item_set_slot (item, s, e);
      alv_playlist_add_item (pl, item);
      fx->ogg_playlist = alv_playlist_to_string (pl, NULL);
    }

  fx->config_path = g_build_filename (g_get_user_config_dir (), "core-test.conf", NULL);
  g_mkdir_with_parents (g_get_user_config_dir (), 0700);
  if (data == GUINT_TO_POINTER (0))
    {
      /* D-Bus activation: the bus starts the daemon on the first call */
      g_autofree char *binary = g_test_build_filename (G_TEST_BUILT, "..", "core", "alluvium-core", NULL);
      g_autofree char *dir = g_build_filename (g_get_user_data_dir (), "dbus-services", NULL);
      g_autofree char *service = g_build_filename (dir, "org.alluvium.Core1.service", NULL);
      g_autofree char *text = g_strdup_printf ("[D-BUS Service]\nName=%s\nExec=%s --config %s\n",
                                               ALV_CORE_BUS_NAME, binary, fx->config_path);

      g_mkdir_with_parents (dir, 0700);
      g_file_set_contents (service, text, -1, &error);
      g_assert_no_error (error);
      g_file_set_contents (fx->config_path, "[core]\nidle-timeout=2\n", -1, &error);
      g_assert_no_error (error);
      fx->bus = test_bus_up (dir);
    }
  else
    fx->bus = test_bus_up (NULL);
  fx->conn = g_dbus_connection_new_for_address_sync (
    test_bus_get_address (fx->bus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  fx->watch_id = g_bus_watch_name_on_connection (fx->conn, ALV_CORE_BUS_NAME,
                                                 G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                 on_name_appeared, on_name_vanished, fx, NULL);
  if (data != GUINT_TO_POINTER (0) && data != OWN_DAEMON)
    start_daemon (fx, GPOINTER_TO_UINT (data));
}

static void
fixture_teardown (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  if (fx->mp3 == NULL)
    return;
  g_clear_object (&fx->proxy);
  if (fx->daemon != NULL)
    {
      /* a clean exit on SIGTERM (under ASan this also checks for leaks) */
      gboolean stopped = test_subprocess_stop (fx->daemon, SIGTERM, WAIT_MS);

      if (!stopped)
        g_test_message ("alluvium-core did not exit within %d ms of SIGTERM: killed", WAIT_MS);
      g_assert_true (stopped);
      g_assert_true (g_subprocess_get_if_exited (fx->daemon));
      g_assert_cmpint (g_subprocess_get_exit_status (fx->daemon), ==, 0);
      g_clear_object (&fx->daemon);
    }
  g_bus_unwatch_name (fx->watch_id);
  g_dbus_connection_close_sync (fx->conn, NULL, NULL);
  g_clear_object (&fx->conn);
  g_clear_pointer (&fx->bus, test_bus_down);
  soup_server_disconnect (fx->server);
  g_clear_object (&fx->server);
  g_free (fx->base_url);
  g_free (fx->playlist);
  g_free (fx->gap_playlist);
  g_free (fx->ended_playlist);
  g_free (fx->two_playlist);
  g_free (fx->ogg_playlist);
  g_free (fx->custom_playlist);
  g_clear_pointer (&fx->custom_mp3, g_bytes_unref);
  g_clear_pointer (&fx->video[0], g_bytes_unref);
  g_clear_pointer (&fx->video[1], g_bytes_unref);
  g_clear_pointer (&fx->ogg, g_bytes_unref);
  g_free (fx->config_path);
  g_clear_pointer (&fx->mp3, g_bytes_unref);
  g_clear_pointer (&fx->noise, g_bytes_unref);
  g_clear_pointer (&fx->states, g_ptr_array_unref);
}

typedef struct
{
  AlvCore1 *proxy;
  const char *state;
} StateWait;

static gboolean
state_cond (gpointer data)
{
  StateWait *w = data;
  return g_strcmp0 (alv_core1_get_state (w->proxy), w->state) == 0;
}

static void
wait_state (Fixture *fx, const char *state)
{
  StateWait w = { fx->proxy, state };

  test_wait_until (state_cond, &w, WAIT_MS);
  g_assert_cmpstr (alv_core1_get_state (fx->proxy), ==, state);
}

typedef struct
{
  Fixture *fx;
  guint least;
} MediaWait;

static gboolean
media_requests_cond (gpointer data)
{
  MediaWait *w = data;

  return w->fx->n_media_requests >= w->least;
}

typedef struct
{
  AlvCore1 *proxy;
  const char *state;
  const char *message;  /* a part of StateMessage */
} MessageWait;

static gboolean
message_cond (gpointer data)
{
  MessageWait *w = data;

  return g_strcmp0 (alv_core1_get_state (w->proxy), w->state) == 0 &&
         strstr (alv_core1_get_state_message (w->proxy), w->message) != NULL;
}

static gboolean
saw_state (Fixture *fx, const char *state)
{
  for (guint i = 0; i < fx->states->len; i++)
    if (g_strcmp0 (g_ptr_array_index (fx->states, i), state) == 0)
      return TRUE;
  return FALSE;
}

/* Tunes without blocking the main context (the test's SoupServer runs on it). */
static char *
tune (Fixture *fx, const char *path, GError **error)
{
  g_autofree char *url = g_str_has_prefix (path, "/") ? g_strconcat (fx->base_url, path, NULL)
                                                      : g_strdup (path);
  GAsyncResult *result = NULL;
  char *stream_url = NULL;

  alv_core1_call_tune (fx->proxy, url, NULL, test_async_result_cb, &result);
  test_wait_result (&result, WAIT_MS);
  if (!alv_core1_call_tune_finish (fx->proxy, &stream_url, result, error))
    stream_url = NULL;
  g_object_unref (result);
  return stream_url;
}

static gboolean
stop (Fixture *fx, GError **error)
{
  GAsyncResult *result = NULL;
  gboolean ok;

  alv_core1_call_stop (fx->proxy, NULL, test_async_result_cb, &result);
  test_wait_result (&result, WAIT_MS);
  ok = alv_core1_call_stop_finish (fx->proxy, result, error);
  g_object_unref (result);
  return ok;
}

typedef struct
{
  AlvCore1 *proxy;
  guint n_statistics;   /* PropertiesChanged carrying Statistics */
  guint64 want;         /* bytes from the origin */
} StatsWait;

static void
on_statistics_changed (GDBusProxy *proxy G_GNUC_UNUSED,
                       GVariant   *changed,
                       GStrv       invalidated G_GNUC_UNUSED,
                       gpointer    user_data)
{
  StatsWait *w = user_data;
  g_autoptr(GVariant) stats = g_variant_lookup_value (changed, "Statistics", G_VARIANT_TYPE_VARDICT);

  if (stats != NULL)
    w->n_statistics++;
}

static gboolean
origin_bytes_cond (gpointer data)
{
  StatsWait *w = data;
  g_autoptr(GVariant) stats = alv_core1_dup_statistics (w->proxy);
  guint64 bytes = 0;

  return stats != NULL && g_variant_lookup (stats, "bytes-from-origin", "t", &bytes)
         && bytes >= w->want;
}

static guint16
port_of (const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);

  g_assert_nonnull (uri);
  g_assert_cmpstr (g_uri_get_host (uri), ==, "127.0.0.1");
  return (guint16) g_uri_get_port (uri);
}

static gboolean
skip_without_media (Fixture *fx)
{
  if (fx->mp3 != NULL)
    return FALSE;
  g_test_skip ("audiotestsrc or lamemp3enc is missing");
  return TRUE;
}

static void
test_tune_and_stream (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  g_autoptr(RawClient) client = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GVariant) np = NULL;
  g_autofree char *head = NULL;
  g_autofree char *media_url = NULL;
  const guint8 *file, *bytes, *found;
  gsize file_len, len;
  gint64 slot_start = 0, before, tuned, flowing, slack, lo, hi;
  const char *s;
  AlvMp3Info info;
  gsize want = 32 * 1024;

  if (skip_without_media (fx))
    return;
  g_assert_cmpstr (alv_core1_get_state (fx->proxy), ==, "idle");
  g_assert_cmpstr (alv_core1_get_station (fx->proxy), ==, "");

  before = g_get_real_time () - fx->slot_start;
  stream_url = tune (fx, "/station.rss", &error);
  tuned = g_get_real_time () - fx->slot_start;
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (stream_url, "http://127.0.0.1:"));
  wait_state (fx, "playing");
  g_assert_true (saw_state (fx, "playing"));
  g_assert_cmpuint (fx->states->len, >=, 2);
  g_assert_cmpuint (fx->n_now_playing, >=, 1);
  g_assert_true (fx->saw_range);
  g_assert_cmpstr (alv_core1_get_stream_url (fx->proxy), ==, stream_url);
  g_assert_cmpstr (alv_core1_get_station_name (fx->proxy), ==, "Test Station");

  np = alv_core1_dup_now_playing (fx->proxy);
  g_assert_true (g_variant_lookup (np, "title", "&s", &s));
  g_assert_cmpstr (s, ==, "Test tone");
  g_assert_true (g_variant_lookup (np, "creator", "&s", &s));
  g_assert_cmpstr (s, ==, "audiotestsrc");
  media_url = g_strconcat (fx->base_url, "/media/tone.mp3", NULL);
  g_assert_true (g_variant_lookup (np, "url", "&s", &s));
  g_assert_cmpstr (s, ==, media_url);
  g_assert_true (g_variant_lookup (np, "slot-start", "x", &slot_start));
  g_assert_cmpint (slot_start, ==, fx->slot_start);

  /* the same station again: the same URL at once */
  {
    g_autofree char *again = tune (fx, "/station.rss", &error);

    g_assert_no_error (error);
    g_assert_cmpstr (again, ==, stream_url);
  }

  /* the local stream carries the file from the position now playing */
  client = raw_client_new (port_of (stream_url), "GET /stream HTTP/1.0\r\n\r\n", TRUE);
  raw_client_wait_body (client, want, WAIT_MS);
  flowing = g_get_real_time () - fx->slot_start;
  head = raw_client_head (client);
  g_assert_true (g_str_has_prefix (head, "HTTP/1.0 200"));
  g_assert_nonnull (strstr (head, "audio/mpeg"));
  body = raw_client_body (client);
  bytes = g_bytes_get_data (body, &len);
  g_assert_cmpuint (len, >=, want);
  file = g_bytes_get_data (fx->mp3, &file_len);
  found = stream_find_bytes (file, file_len, bytes, 1024);
  g_assert_nonnull (found);
  g_assert_cmpmem (found, MIN (len, file_len - (gsize) (found - file)), bytes,
                   MIN (len, file_len - (gsize) (found - file)));

  /* from the position playing when the core took the Tune, or later by
   * what its burst no longer held when this client came: never before the
   * tune-in, never past the position playing once the stream flowed.  The
   * core's station clock reads the Date headers of our server (one-second
   * resolution, stamped within the playlist's round trip during the Tune),
   * so its "now" may be off by half a second and half that round trip. */
  g_assert_true (alv_mp3_parse_info (file, file_len, &info, NULL));
  slack = SEC + (tuned - before);
  lo = (gint64) alv_mp3_time_to_offset (&info, file_len, (guint64) MAX (before - slack, 0));
  hi = (gint64) alv_mp3_time_to_offset (&info, file_len, (guint64) (flowing + slack));
  g_test_message ("stream starts at file offset %" G_GSIZE_FORMAT ", expected within %" G_GINT64_FORMAT
                  "..%" G_GINT64_FORMAT " (tuned in %.2f..%.2f s into the item, flowing at %.2f s)",
                  (gsize) (found - file), lo, hi, (double) before / SEC, (double) tuned / SEC,
                  (double) flowing / SEC);
  g_assert_cmpint (found - file, >=, lo);
  g_assert_cmpint (found - file, <=, hi);

  /* for the record: the daemon's peak memory while streaming */
  {
    g_autofree char *path = g_strdup_printf ("/proc/%s/status", g_subprocess_get_identifier (fx->daemon));
    g_autofree char *status = NULL;
    const char *hwm;

    if (g_file_get_contents (path, &status, NULL, NULL) && (hwm = strstr (status, "VmHWM:")) != NULL)
      g_test_message ("alluvium-core %.*s", (int) strcspn (hwm, "\n"), hwm);
  }

  /* statistics move (published once a second) */
  {
    StatsWait w = { fx->proxy, 0, 1 };

    test_wait_until (origin_bytes_cond, &w, WAIT_MS);
  }

  /* Stop: idle, the stream ends */
  g_assert_true (stop (fx, &error));
  g_assert_no_error (error);
  wait_state (fx, "idle");
  raw_client_wait_eof (client);
  g_assert_true (client->eof);
  g_assert_cmpstr (alv_core1_get_station (fx->proxy), ==, "");
  g_assert_cmpstr (alv_core1_get_stream_url (fx->proxy), ==, "");

  /* nothing tuned any more */
  g_assert_false (stop (fx, &error));
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_NOT_TUNED);
}

typedef struct
{
  AlvCore1 *proxy;
  const char *title;
} TitleWait;

static gboolean
title_cond (gpointer data)
{
  TitleWait *w = data;
  g_autoptr(GVariant) np = alv_core1_dup_now_playing (w->proxy);
  const char *title = NULL;

  return np != NULL && g_variant_lookup (np, "title", "&s", &title) && g_strcmp0 (title, w->title) == 0;
}

typedef struct
{
  RawClient *client;
  const guint8 *file;
} HeadWait;

/* The stream holds the file's first 4 KiB: the next item has begun. */
static gboolean
head_cond (gpointer data)
{
  HeadWait *w = data;
  gssize head = raw_client_head_end (w->client);

  return head >= 0 &&
         stream_find_bytes (w->client->received->data + head, w->client->received->len - head,
                            w->file, 4096) != NULL;
}

static void
test_next_item (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  g_autoptr(RawClient) client = NULL;
  TitleWait tw = { fx->proxy, "Second" };
  const guint8 *file;
  gsize file_len, before;

  if (skip_without_media (fx))
    return;
  /* the second item's bytes cannot be mistaken for the first's */
  g_assert_nonnull (fx->noise);
  file = g_bytes_get_data (fx->noise, &file_len);
  g_assert_cmpuint (file_len, >, 8192);
  /* the slots from now, not from the fixture's setup: the daemon's start
   * (seconds on a loaded machine under a sanitizer) would eat into the
   * NEXT_AFTER the first item has left */
  g_free (fx->two_playlist);
  fx->two_playlist = make_two_items (fx, g_get_real_time ());
  stream_url = tune (fx, "/two.rss", &error);
  g_assert_no_error (error);
  wait_state (fx, "playing");
  client = raw_client_new (port_of (stream_url), "GET /stream HTTP/1.0\r\n\r\n", TRUE);
  raw_client_wait_body (client, 1024, WAIT_MS);

  /* the first item has less left than the stream's lead: the next one
   * follows it in the stream before its slot begins (NowPlaying still
   * names the first), so the stream never runs dry at the change (it
   * used to stop for the lead, 3 s, and then send that much at once) */
  {
    HeadWait hw = { client, file };
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GVariant) np = NULL;
    const char *title = NULL;

    test_wait_until (head_cond, &hw, WAIT_MS);
    g_assert_true (head_cond (&hw));
    /* asked now, not from the proxy's cache: the core itself still names
     * the first item (its slot has up to 2.5 s to run) */
    reply = g_dbus_connection_call_sync (fx->conn, ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH,
                                         "org.freedesktop.DBus.Properties", "Get",
                                         g_variant_new ("(ss)", "org.alluvium.Core1", "NowPlaying"),
                                         G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS,
                                         NULL, &error);
    g_assert_no_error (error);
    g_variant_get (reply, "(v)", &np);
    g_assert_true (g_variant_lookup (np, "title", "&s", &title));
    g_assert_cmpstr (title, ==, "Test tone");
  }
  test_wait_until (title_cond, &tw, WAIT_MS);
  g_assert_true (title_cond (&tw));
  wait_state (fx, "playing");

  /* the same connection carries the next item on */
  before = client->received->len;
  raw_client_wait_body (client, before + 16 * 1024, WAIT_MS);
  g_assert_false (client->eof);
  /* the next item's head was prefetched when tuning (it starts within the
   * prefetch lead): its body is all the change asked the origin for
   * (head and body of the first item, head and body of the second) */
  g_assert_cmpuint (fx->n_media_requests, ==, 4);
}

/* An Ogg item joined mid-way: the header pages first, then pages from
 * about the position now playing. */
static void
test_ogg (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  g_autoptr(RawClient) client = NULL;
  g_autoptr(GBytes) body = NULL;
  const guint8 *bytes;
  gsize len, pos = 0;
  gint64 first_granule = -1, before, flowing;
  guint n_header_pages = 0;
  gsize want = 16 * 1024;

  if (skip_without_media (fx))
    return;
  if (fx->ogg == NULL)
    {
      g_test_skip ("vorbisenc or oggmux is missing");
      return;
    }
  before = g_get_real_time () - fx->slot_start;
  stream_url = tune (fx, "/ogg.rss", &error);
  g_assert_no_error (error);
  wait_state (fx, "playing");
  client = raw_client_new (port_of (stream_url), "GET /stream HTTP/1.0\r\n\r\n", TRUE);
  raw_client_wait_body (client, want, WAIT_MS);
  flowing = g_get_real_time () - fx->slot_start;
  body = raw_client_body (client);
  bytes = g_bytes_get_data (body, &len);
  g_assert_cmpuint (len, >=, want);
  g_assert_cmpmem (bytes, 4, "OggS", 4);

  /* walk whole pages: headers (granule 0) first, then audio */
  while (pos < len && first_granule < 0)
    {
      AlvOggPage page;

      if (alv_ogg_page_parse (bytes + pos, len - pos, &page) != ALV_OGG_PARSE_OK)
        break;
      if (page.granule <= 0)
        n_header_pages++;
      else
        first_granule = page.granule;
      pos += page.length;
    }
  g_assert_cmpuint (n_header_pages, >=, 2);
  g_assert_cmpint (first_granule, >, 0);
  /* about the position playing between the tune-in and the stream
   * flowing (how long that took is the machine's load) */
  g_test_message ("first audio page at %.2f s, tuned in at %.2f s, flowing at %.2f s",
                  first_granule / 44100.0, (double) before / SEC, (double) flowing / SEC);
  g_assert_cmpint (first_granule, >=, (before - 3 * SEC) * 44100 / SEC);
  g_assert_cmpint (first_granule, <=, (flowing + 3 * SEC) * 44100 / SEC);
}

/* What a player does: GStreamer reads the local stream over HTTP (with ICY
 * metadata, as souphttpsrc asks for it) and decodes audio from it; the
 * stream title carries the item's creator and title. */
static void
test_decode (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  g_autofree char *desc = NULL;
  g_autoptr(GstElement) pipeline = NULL;
  g_autoptr(GstBus) bus = NULL;
  g_autofree char *title = NULL;
  gboolean prerolled = FALSE;
  gint64 deadline;

  if (skip_without_media (fx))
    return;
  if (!stream_media_have_elements ("souphttpsrc", "decodebin", "fakesink", NULL))
    {
      g_test_skip ("souphttpsrc or decodebin is missing");
      return;
    }
  stream_url = tune (fx, "/station.rss", &error);
  g_assert_no_error (error);
  wait_state (fx, "playing");

  desc = g_strdup_printf ("souphttpsrc location=%s iradio-mode=true ! decodebin ! "
                          "audio/x-raw ! fakesink sync=false", stream_url);
  pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  bus = gst_element_get_bus (pipeline);
  gst_element_set_state (pipeline, GST_STATE_PAUSED);
  /* the origin (our SoupServer) runs on this thread: keep it going */
  deadline = g_get_monotonic_time () + WAIT_MS * 1000;
  while (g_get_monotonic_time () < deadline && (!prerolled || title == NULL))
    {
      g_autoptr(GstMessage) msg = NULL;

      g_main_context_iteration (NULL, FALSE);
      msg = gst_bus_timed_pop_filtered (bus, 10 * GST_MSECOND,
                                        GST_MESSAGE_ASYNC_DONE | GST_MESSAGE_ERROR | GST_MESSAGE_TAG);
      if (msg == NULL)
        continue;
      if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
        {
          g_autoptr(GError) gst_error = NULL;

          gst_message_parse_error (msg, &gst_error, NULL);
          g_error ("pipeline error: %s", gst_error->message);
        }
      else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ASYNC_DONE)
        {
          prerolled = TRUE;
          gst_element_set_state (pipeline, GST_STATE_PLAYING);
        }
      else if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_TAG)
        {
          g_autoptr(GstTagList) tags = NULL;

          gst_message_parse_tag (msg, &tags);
          if (title == NULL)
            gst_tag_list_get_string (tags, GST_TAG_TITLE, &title);
        }
    }
  gst_element_set_state (pipeline, GST_STATE_NULL);
  g_assert_true (prerolled);
  g_assert_nonnull (title);
  g_assert_nonnull (strstr (title, "Test tone"));
}

static void
test_activation (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;

  if (skip_without_media (fx))
    return;
  g_assert_false (fx->name_owned);
  /* the proxy (auto-start allowed) makes the bus start the daemon */
  fx->proxy = alv_core1_proxy_new_sync (fx->conn, G_DBUS_PROXY_FLAGS_NONE, ALV_CORE_BUS_NAME,
                                        ALV_CORE_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
  test_wait_until (name_owned_cond, fx, WAIT_MS);
  g_assert_true (fx->name_owned);
  g_signal_connect (fx->proxy, "g-properties-changed", G_CALLBACK (on_properties_changed), fx);
  url = tune (fx, "/gap.rss", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (url, "http://127.0.0.1:"));
  wait_state (fx, "gap");
  g_assert_true (stop (fx, &error));
  /* idle-timeout=2: the activated daemon goes away on its own */
  test_wait_until (name_gone_cond, fx, WAIT_MS);
  g_assert_false (fx->name_owned);
}

static void
test_replace (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GSubprocess) second = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *owner = NULL;
  g_autoptr(GVariant) reply = NULL;

  if (skip_without_media (fx))
    return;
  second = spawn_daemon (fx, "--replace");
  /* the first daemon loses the name and exits cleanly */
  g_assert_true (test_subprocess_wait (fx->daemon, WAIT_MS));
  g_assert_true (g_subprocess_get_if_exited (fx->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (fx->daemon), ==, 0);
  g_clear_object (&fx->daemon);
  fx->daemon = g_steal_pointer (&second);   /* teardown stops it */
  test_wait_until (name_owned_cond, fx, WAIT_MS);
  reply = g_dbus_connection_call_sync (fx->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                       g_variant_new ("(s)", ALV_CORE_BUS_NAME), G_VARIANT_TYPE ("(u)"),
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  {
    guint32 pid;

    g_variant_get (reply, "(u)", &pid);
    g_assert_cmpstr (g_subprocess_get_identifier (fx->daemon), ==, (owner = g_strdup_printf ("%u", pid)));
  }
}

static void
test_errors (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  const char *bad[] = { "", "ftp://127.0.0.1/x.rss", "file:///etc/passwd", "not a url" };
  g_autoptr(GError) error = NULL;
  char *url;

  if (skip_without_media (fx))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      url = tune (fx, bad[i], &error);
      g_assert_null (url);
      g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_INVALID_URL);
      g_clear_error (&error);
    }
  g_assert_cmpstr (alv_core1_get_state (fx->proxy), ==, "idle");

  url = tune (fx, "/missing.rss", &error);
  g_assert_null (url);
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE);
  g_clear_error (&error);
  wait_state (fx, "error");
  g_assert_cmpstr (alv_core1_get_state_message (fx->proxy), !=, "");

  url = tune (fx, "/invalid.rss", &error);
  g_assert_null (url);
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_INVALID);
  g_clear_error (&error);

  url = tune (fx, "http://127.0.0.1:1/station.rss", &error);
  g_assert_null (url);
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE);
  /* the message names host and port (the network's alone did not) */
  g_assert_nonnull (strstr (error->message, "http://127.0.0.1:1/station.rss"));
  g_clear_error (&error);
  g_assert_cmpuint (fx->n_media_requests, ==, 0);
}

/* The media's host and the gateway do not answer (two ports nobody
 * listens on): each of the core's log lines about it names the URL it
 * failed on, port included; GIO's "Could not connect to 127.0.0.1" alone
 * says neither which service nor which port. */
static void
test_fetch_errors_named (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) media_socket = NULL;
  g_autoptr(GSocket) gateway_socket = NULL;
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(GDataInputStream) err = NULL;
  g_autofree char *media_url = NULL;
  g_autofree char *gateway_url = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *stream_url = NULL;
  gboolean saw_gateway = FALSE, saw_media = FALSE;
  guint16 media_port, gateway_port;

  if (skip_without_media (fx))
    return;
  media_socket = test_closed_port (&media_port);
  gateway_socket = test_closed_port (&gateway_port);
  media_url = g_strdup_printf ("http://127.0.0.1:%u/media/tone.mp3", media_port);
  gateway_url = g_strdup_printf ("http://127.0.0.1:%u/", gateway_port);
  add_item_at (pl, media_url, "Closed", fx->slot_start, fx->slot_len);
  fx->custom_playlist = alv_playlist_to_string (pl, NULL);

  conf = g_strdup_printf ("gateway=%s\n", gateway_url);
  start_daemon_full (fx, 60, conf, G_SUBPROCESS_FLAGS_STDERR_PIPE);
  err = g_data_input_stream_new (g_subprocess_get_stderr_pipe (fx->daemon));
  /* the daemon keeps writing to the pipe until it is stopped */
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (err), FALSE);

  stream_url = tune (fx, "/custom.rss", &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 100 && !(saw_gateway && saw_media); i++)
    {
      g_autofree char *line = test_read_line (err, WAIT_MS);

      g_assert_nonnull (line);
      g_test_message ("core: %s", line);
      if (strstr (line, "at the gateway") != NULL)
        {
          /* the gateway's URL, not only the item's */
          g_assert_nonnull (strstr (line, gateway_url));
          saw_gateway = TRUE;
        }
      /* (the quotes around the URL depend on the daemon's locale) */
      if (strstr (line, "Cannot play ") != NULL && strstr (line, media_url) != NULL)
        saw_media = TRUE;
      if (strstr (line, "Could not connect") != NULL)
        g_assert_true (strstr (line, gateway_url) != NULL || strstr (line, media_url) != NULL);
    }
  g_assert_true (saw_gateway);
  g_assert_true (saw_media);
}

/* Statistics change with every chunk read from the origin, but reach the
 * bus at most once a second: over a direct-path download of half a
 * 320 kbit/s item (some 25 reads of 16 KiB), no more signals than whole
 * seconds passed plus two (a once-a-second timer's ticks fall on distinct
 * whole seconds, the first perhaps due just before the wait began). */
static void
test_statistics_coalesced (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autofree char *stream_url = NULL;
  StatsWait w = { 0, };
  gint64 start, elapsed;
  gulong handler;
  guint reads;

  if (skip_without_media (fx))
    return;
  /* 20 s at the highest MP3 bitrate: 2.4 reads of 16 KiB a second while
   * paced, after 3 s of lead at once */
  fx->custom_mp3 = stream_media_encode ("audiotestsrc num-buffers=766 samplesperbuffer=1152 "
                                        "wave=white-noise ! audio/x-raw,rate=44100,channels=2 ! "
                                        "lamemp3enc target=bitrate bitrate=320 cbr=true", &error);
  g_assert_no_error (error);
  /* (2 s into its slot from now, whatever the encoding took: on a loaded
   * machine a later join, after a slow encoding and a slow daemon start,
   * left less than half the item to come, and the wait timed out) */
  add_item (fx, pl, "/media/custom.mp3", "Loud", g_get_real_time () - 2 * SEC, fx->slot_len);
  fx->custom_playlist = alv_playlist_to_string (pl, NULL);

  start_daemon_full (fx, 60, "gateway=none\n", G_SUBPROCESS_FLAGS_NONE);
  w.proxy = fx->proxy;
  /* the head (the first 64 KiB) and half the item: the item joined 2 s
   * into its 20 s (more on a loaded machine) has up to 18 s left, so this
   * much comes */
  w.want = 65536 + g_bytes_get_size (fx->custom_mp3) / 2;
  handler = g_signal_connect (fx->proxy, "g-properties-changed",
                              G_CALLBACK (on_statistics_changed), &w);
  start = g_get_monotonic_time ();
  stream_url = tune (fx, "/custom.rss", &error);
  g_assert_no_error (error);
  test_wait_until (origin_bytes_cond, &w, 30000);
  elapsed = g_get_monotonic_time () - start;
  g_signal_handler_disconnect (fx->proxy, handler);

  reads = (guint) ((w.want - 65536) / (16 * 1024));
  g_test_message ("%u Statistics signals in %.2f s for %u reads of 16 KiB",
                  w.n_statistics, (double) elapsed / G_USEC_PER_SEC, reads);
  g_assert_cmpuint (w.n_statistics, <=, (guint) (elapsed / G_USEC_PER_SEC) + 2);
  g_assert_cmpuint (w.n_statistics, <, reads);
}

/* A Tune that fails while a station plays loses nothing: the caller gets
 * the error, the station plays on (State, Station, the stream and its
 * bytes); a Tune to the station playing answers at once. */
static void
test_failed_tune (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  g_autofree char *again = NULL;
  g_autofree char *station = NULL;
  g_autoptr(RawClient) client = NULL;
  char *url;
  gsize before;

  if (skip_without_media (fx))
    return;
  stream_url = tune (fx, "/station.rss", &error);
  g_assert_no_error (error);
  wait_state (fx, "playing");
  station = g_strdup (alv_core1_get_station (fx->proxy));
  client = raw_client_new (port_of (stream_url), "GET /stream HTTP/1.0\r\n\r\n", TRUE);
  raw_client_wait_body (client, 1024, WAIT_MS);

  url = tune (fx, "/missing.rss", &error);
  g_assert_null (url);
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE);
  g_clear_error (&error);
  url = tune (fx, "/invalid.rss", &error);
  g_assert_null (url);
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_INVALID);
  g_clear_error (&error);

  /* asked of the core now, not from the proxy's cache */
  {
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GVariant) all = NULL;
    const char *state = NULL, *now_station = NULL, *now_stream = NULL;

    reply = g_dbus_connection_call_sync (fx->conn, ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH,
                                         "org.freedesktop.DBus.Properties", "GetAll",
                                         g_variant_new ("(s)", "org.alluvium.Core1"),
                                         G_VARIANT_TYPE ("(a{sv})"), G_DBUS_CALL_FLAGS_NONE,
                                         WAIT_MS, NULL, &error);
    g_assert_no_error (error);
    all = g_variant_get_child_value (reply, 0);
    g_assert_true (g_variant_lookup (all, "State", "&s", &state));
    g_assert_true (g_variant_lookup (all, "Station", "&s", &now_station));
    g_assert_true (g_variant_lookup (all, "StreamUrl", "&s", &now_stream));
    g_assert_cmpstr (state, ==, "playing");
    g_assert_cmpstr (now_station, ==, station);
    g_assert_cmpstr (now_stream, ==, stream_url);
  }
  /* the stream still flows on the same connection */
  before = client->received->len;
  raw_client_wait_body (client, before + 8192, WAIT_MS);
  g_assert_false (client->eof);

  /* the station playing: answered at once, the same stream */
  again = tune (fx, "/station.rss", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, stream_url);
}

/* The origin fails as the item starts and comes back: the core tries
 * the item again after a second, then two, four…, and plays within
 * seconds of the origin's return, not at the next item. */
static void
test_origin_returns (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  g_autoptr(RawClient) client = NULL;
  guint failed_requests;

  if (skip_without_media (fx))
    return;
  fx->media_down = TRUE;
  stream_url = tune (fx, "/station.rss", &error);
  g_assert_no_error (error);
  wait_state (fx, "error");
  g_assert_nonnull (strstr (alv_core1_get_state_message (fx->proxy), "Cannot play"));
  /* tried again while it is down (1 s, then 2 s after) */
  failed_requests = fx->n_media_requests;
  {
    MediaWait mw = { fx, failed_requests + 1 };

    test_wait_until (media_requests_cond, &mw, WAIT_MS);
  }
  fx->media_down = FALSE;
  wait_state (fx, "playing");
  client = raw_client_new (port_of (stream_url), "GET /stream HTTP/1.0\r\n\r\n", TRUE);
  raw_client_wait_body (client, 4096, WAIT_MS);
  g_assert_false (client->eof);
}

typedef struct
{
  Fixture *fx;
  char *name;
} NameGoneWait;

static gboolean
unique_gone_cond (gpointer data)
{
  NameGoneWait *w = data;
  g_autoptr(GVariant) reply = NULL;
  gboolean has = TRUE;

  reply = g_dbus_connection_call_sync (w->fx->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "NameHasOwner",
                                       g_variant_new ("(s)", w->name), G_VARIANT_TYPE ("(b)"),
                                       G_DBUS_CALL_FLAGS_NONE, WAIT_MS, NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has);
  return !has;
}

/* The state the core itself has now (not the proxy's cached copy). */
static char *
core_state_now (Fixture *fx)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_sync (fx->conn, ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.alluvium.Core1", "State"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, WAIT_MS,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &v);
  return g_variant_dup_string (v, NULL);
}

/* Two clients (two players) tuned to one station: the first to Stop lets
 * go, the station plays on for the other; the last one's Stop stops it.
 * A client that left the bus holds nothing. */
static void
test_two_clients (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) other_conn = NULL;
  g_autoptr(AlvCore1) other = NULL;
  g_autofree char *url = g_strconcat (fx->base_url, "/station.rss", NULL);
  g_autofree char *stream_url = NULL;
  g_autofree char *other_stream = NULL;
  g_autofree char *state = NULL;
  g_autofree char *state2 = NULL;

  if (skip_without_media (fx))
    return;
  stream_url = tune (fx, "/station.rss", &error);
  g_assert_no_error (error);
  other_conn = g_dbus_connection_new_for_address_sync (
    test_bus_get_address (fx->bus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  other = alv_core1_proxy_new_sync (other_conn, G_DBUS_PROXY_FLAGS_NONE, ALV_CORE_BUS_NAME,
                                    ALV_CORE_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (alv_core1_call_tune_sync (other, url, &other_stream, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (other_stream, ==, stream_url);
  wait_state (fx, "playing");

  /* the first lets go: still playing for the other */
  g_assert_true (stop (fx, &error));
  g_assert_no_error (error);
  state = core_state_now (fx);
  g_assert_cmpstr (state, ==, "playing");
  g_assert_cmpstr (alv_core1_get_station (fx->proxy), ==, url);

  /* the other leaves the bus without a Stop: it holds nothing any more,
   * and the next Stop stops the station */
  {
    NameGoneWait gw = { fx, g_strdup (g_dbus_connection_get_unique_name (other_conn)) };

    g_clear_object (&other);
    g_dbus_connection_close_sync (other_conn, NULL, &error);
    g_assert_no_error (error);
    g_clear_object (&other_conn);
    /* (once the bus says it is gone, the core has heard so before it
     * hears from us again) */
    test_wait_until (unique_gone_cond, &gw, WAIT_MS);
    g_free (gw.name);
  }
  g_free (tune (fx, "/station.rss", &error));
  g_assert_no_error (error);
  g_assert_true (stop (fx, &error));
  g_assert_no_error (error);
  state2 = core_state_now (fx);
  g_assert_cmpstr (state2, ==, "idle");
}

/* No session bus: the daemon says why, and exits 1. */
static void
test_no_bus (Fixture *fx G_GNUC_UNUSED, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autofree char *core = g_test_build_filename (G_TEST_BUILT, "..", "core", "alluvium-core", NULL);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;

  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "DISPLAY");
  g_subprocess_launcher_setenv (launcher, "XDG_CONFIG_HOME", g_get_user_config_dir (), TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", g_get_user_cache_dir (), TRUE);
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawn (launcher, &error, core, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, &err, &error));
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 1);
  g_assert_nonnull (strstr (err, "Cannot connect to the session bus: "));
  g_assert_cmpuint (strlen (strstr (err, ": ") + 2), >, 1);
}

static void
test_gap (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  g_autofree char *url2 = NULL;
  g_autoptr(GVariant) np = NULL;

  if (skip_without_media (fx))
    return;
  url = tune (fx, "/gap.rss", &error);
  g_assert_no_error (error);
  wait_state (fx, "gap");
  g_assert_nonnull (strstr (alv_core1_get_state_message (fx->proxy), "until"));
  np = alv_core1_dup_now_playing (fx->proxy);
  g_assert_cmpuint (g_variant_n_children (np), ==, 0);

  /* another station: the stream moves on, the gap turns into run-out */
  url2 = tune (fx, "/ended.rss", &error);
  g_assert_no_error (error);
  g_assert_nonnull (url2);
  /* (the first station's gap lasts until the second one's playlist is
   * here: wait for the second one's message, not for the state) */
  {
    MessageWait mw = { fx->proxy, "gap", "run out" };

    test_wait_until (message_cond, &mw, WAIT_MS);
  }
  g_assert_cmpstr (alv_core1_get_state (fx->proxy), ==, "gap");
  g_assert_nonnull (strstr (alv_core1_get_state_message (fx->proxy), "run out"));
  g_assert_cmpuint (fx->n_media_requests, ==, 0);
}

typedef struct
{
  StreamVideoCount *vc;
  gboolean error;
  guint want;  /* frames of the second item */
} VideoWait;

static gboolean
video_cond (gpointer data)
{
  VideoWait *w = data;
  gboolean done;

  g_mutex_lock (&w->vc->lock);
  done = w->vc->frames[1] >= w->want;
  g_mutex_unlock (&w->vc->lock);
  return done || w->error;
}

static gboolean
video_bus_cb (GstBus *bus G_GNUC_UNUSED, GstMessage *msg, gpointer user_data)
{
  VideoWait *w = user_data;

  if (GST_MESSAGE_TYPE (msg) == GST_MESSAGE_ERROR)
    {
      g_autoptr(GError) error = NULL;

      gst_message_parse_error (msg, &error, NULL);
      g_test_message ("pipeline error: %s", error->message);
      w->error = TRUE;
    }
  return G_SOURCE_CONTINUE;
}

/* An Ogg Theora + Vorbis station tuned in 2 s into its first item (12 s:
 * the daemon pushes 3 s ahead, and a player joins the item being pushed),
 * then its second: the stream starts on a keyframe (no picture decoded
 * from a missing reference), and playbin goes on showing pictures after
 * the item change, with running times that go on. */
static void
test_theora (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autofree char *stream_url = NULL;
  g_autoptr(GstElement) playbin = NULL;
  g_autoptr(GstBus) bus = NULL;
  StreamVideoCount vc;
  VideoWait w = { &vc, FALSE, 100 };
  gint64 now, start;
  guint watch;

  if (skip_without_media (fx))
    return;
  fx->video[0] = stream_media_theora (300, "smpte", "One", 25, TRUE);
  fx->video[1] = stream_media_theora (150, "black", "Two", 25, TRUE);
  if (fx->video[0] == NULL || fx->video[1] == NULL
      || !stream_media_have_elements ("playbin", "souphttpsrc", "theoradec", NULL))
    {
      g_test_skip ("theoraenc, vorbisenc, playbin or souphttpsrc is missing");
      return;
    }
  alv_playlist_set_title (pl, "Video Station");
  now = g_get_real_time ();
  start = now - 2 * SEC;
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *url = g_strconcat (fx->base_url, i == 0 ? "/media/one.ogv" : "/media/two.ogv", NULL);
      g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (url);
      gint64 len = (i == 0 ? 12 : 6) * SEC;
      g_autoptr(GDateTime) s = stream_datetime (start);
      g_autoptr(GDateTime) e = stream_datetime (start + len);

      start += len;

      alv_playlist_item_set_title (item, i == 0 ? "One" : "Two");
      alv_playlist_item_set_media_type (item, "video/ogg");
      alv_playlist_item_set_slot (item, s, e);
      alv_playlist_add_item (pl, item);
    }
  fx->custom_playlist = alv_playlist_to_string (pl, NULL);
  stream_url = tune (fx, "/custom.rss", &error);
  g_assert_no_error (error);
  wait_state (fx, "playing");

  playbin = gst_element_factory_make ("playbin", NULL);
  g_object_set (playbin, "uri", stream_url,
                "video-sink", stream_video_counting_sink (&vc),
                "audio-sink", gst_element_factory_make ("fakesink", NULL),
                NULL);
  bus = gst_element_get_bus (playbin);
  watch = gst_bus_add_watch (bus, video_bus_cb, &w);
  gst_element_set_state (playbin, GST_STATE_PLAYING);
  test_wait_until (video_cond, &w, 30000);
  gst_element_set_state (playbin, GST_STATE_NULL);
  g_source_remove (watch);

  g_test_message ("video frames: %u of One, %u of Two, %u other; largest step %" GST_TIME_FORMAT,
                  vc.frames[0], vc.frames[1], vc.other_frames, GST_TIME_ARGS (vc.max_step));
  g_assert_false (w.error);
  g_assert_cmpuint (vc.frames[0], >, 0);
  g_assert_cmpuint (vc.frames[1], >=, w.want);
  /* not one picture decoded from a reference that was never sent */
  g_assert_cmpuint (vc.other_frames, ==, 0);
  g_assert_false (vc.backwards);
  stream_video_count_clear (&vc);
}

/* The daemon has left the bus, or its station has been in a gap and has
 * left it. */
static gboolean
gone_or_past_gap_cond (gpointer data)
{
  Fixture *fx = data;

  return !fx->name_owned
         || (saw_state (fx, "gap") && g_strcmp0 (alv_core1_get_state (fx->proxy), "gap") != 0);
}

static void
test_idle_exit (Fixture *fx, gconstpointer data)
{
  /* the daemon's idle timer is g_timeout_add_seconds (idle-timeout),
   * which fires up to 3/4 s after the whole seconds asked for */
  gint64 idle_us = (gint64) GPOINTER_TO_UINT (data) * SEC;
  g_autoptr(GError) error = NULL;
  g_autofree char *url = NULL;
  const char *state;

  if (skip_without_media (fx))
    return;
  /* tuned: no exit, whatever the timeout.  The daemon armed its idle
   * timer before it took its name, so before now; the station's first
   * item starts later than that timer's latest firing, both on the
   * daemon's own clocks.  A timer that Tune did not disarm would fire
   * first and the daemon would leave the bus while the station waits in
   * its gap.  The test waits for whichever the daemon does first (the
   * slot's start or its exit), so a loaded machine only makes it later. */
  fx->custom_playlist = make_playlist (fx, g_get_real_time () + idle_us + SEC, fx->slot_len);
  url = tune (fx, "/custom.rss", &error);
  g_assert_no_error (error);
  test_wait_until (gone_or_past_gap_cond, fx, WAIT_MS);
  if (!fx->name_owned)
    g_test_message ("alluvium-core left the bus while tuned, in the gap");
  g_assert_true (fx->name_owned);
  state = alv_core1_get_state (fx->proxy);
  g_test_message ("after the gap: %s", state);
  g_assert_cmpstr (state, !=, "gap");
  g_assert_nonnull (g_subprocess_get_identifier (fx->daemon));

  /* idle: it leaves the bus and exits cleanly on its own */
  g_assert_true (stop (fx, &error));
  test_wait_until (name_gone_cond, fx, WAIT_MS);
  g_assert_false (fx->name_owned);
  g_assert_true (test_subprocess_wait (fx->daemon, WAIT_MS));
  g_assert_true (g_subprocess_get_if_exited (fx->daemon));
  g_assert_cmpint (g_subprocess_get_exit_status (fx->daemon), ==, 0);
}

/* Under ASan (--enable-asan): leaks that are not ours.  libsoup 3.2's
 * SoupServer keeps the socket of every accepted connection and of its
 * listener, GTest's isolated dirs are strdup'ed once per test, GStreamer
 * keeps its registry paths and plugin globals (loaded with the decode
 * test's elements) and GLib its per-thread slice magazines. */
const char *__lsan_default_suppressions (void);
const char *__asan_default_options (void);

const char *
__lsan_default_suppressions (void)
{
  return "leak:g_socket_accept\n"
         "leak:soup_server_listen_local\n"
         "leak:g_set_user_dirs\n"
         "leak:gst_update_registry\n"
         "leak:g_slice_free1\n"
         "leak:call_init\n"
         "leak:gst_structure_free\n";
}

const char *
__asan_default_options (void)
{
  /* full stacks, so the suppressions above match */
  return "fast_unwind_on_malloc=0";
}

int
main (int argc, char **argv)
{
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  gst_init (&argc, &argv);
  /* registers the D-Bus error names, so errors come back typed */
  (void) ALV_CORE_ERROR;

  g_test_add ("/core/daemon/tune-and-stream", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_tune_and_stream, fixture_teardown);
  g_test_add ("/core/daemon/next-item", Fixture, GUINT_TO_POINTER (62),
              fixture_setup, test_next_item, fixture_teardown);
  g_test_add ("/core/daemon/ogg", Fixture, GUINT_TO_POINTER (61),
              fixture_setup, test_ogg, fixture_teardown);
  g_test_add ("/core/daemon/decode", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_decode, fixture_teardown);
  g_test_add ("/core/daemon/activation", Fixture, GUINT_TO_POINTER (0),
              fixture_setup, test_activation, fixture_teardown);
  g_test_add ("/core/daemon/replace", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_replace, fixture_teardown);
  g_test_add ("/core/daemon/errors", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_errors, fixture_teardown);
  g_test_add ("/core/daemon/fetch-errors-named", Fixture, OWN_DAEMON,
              fixture_setup, test_fetch_errors_named, fixture_teardown);
  g_test_add ("/core/daemon/statistics-coalesced", Fixture, OWN_DAEMON,
              fixture_setup, test_statistics_coalesced, fixture_teardown);
  g_test_add ("/core/daemon/failed-tune", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_failed_tune, fixture_teardown);
  g_test_add ("/core/daemon/origin-returns", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_origin_returns, fixture_teardown);
  g_test_add ("/core/daemon/two-clients", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_two_clients, fixture_teardown);
  g_test_add ("/core/daemon/no-bus", Fixture, GUINT_TO_POINTER (0),
              fixture_setup, test_no_bus, fixture_teardown);
  g_test_add ("/core/daemon/gap", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_gap, fixture_teardown);
  g_test_add ("/core/daemon/theora", Fixture, GUINT_TO_POINTER (60),
              fixture_setup, test_theora, fixture_teardown);
  g_test_add ("/core/daemon/idle-exit", Fixture, GUINT_TO_POINTER (2),
              fixture_setup, test_idle_exit, fixture_teardown);

  return g_test_run ();
}
