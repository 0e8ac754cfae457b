/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Integration tests of the real alluvium-player binary on a private session
 * bus.  A fake org.alluvium.Core1 (the generated skeleton, in a
 * thread of the test with its own main context, as the real core has a
 * process of its own) answers Tune with the URL of an HTTP server in the
 * same thread that serves an MP3 encoded with GStreamer.  The player runs
 * with fakesinks; the test checks that it tunes, fetches the stream,
 * exports the now-playing item over MPRIS (through GDBus and, when
 * installed, playerctl), obeys Pause/Play/Volume, stops the core on SIGINT,
 * resumes the last station without an argument, reports Tune errors and
 * opens a local playlist at its own URL, shows the core's state, starts
 * the core when it goes away, and speaks German with LANGUAGE=de.  Started
 * without a URL in a terminal (a pseudo-terminal here) it lists the
 * stations it knows and reads the answer; without a terminal it says what
 * to give it.  (The desktop data files are tests/test-data.c's.)  Every
 * player gets PR_SET_PDEATHSIG.
 */
#define G_LOG_DOMAIN "test-player"
#include "config.h"

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include "alv-dbus.h"
#include "alv-playlist.h"
#include "stream-media.h"
#include "test-bus.h"
#include "test-util.h"

/* a bound on every wait: a safety net, wider under a sanitizer */
#define WAIT_MS test_slack_ms (15000)
#define MPRIS_NAME "org.mpris.MediaPlayer2.alluvium"
#define MPRIS_PATH "/org/mpris/MediaPlayer2"

typedef struct
{
  TestBus *bus;
  GDBusConnection *conn;      /* the test's client connection */
  GBytes *mp3;
  GBytes *video;              /* Ogg Theora, at /stream-video (a test's own) */

  /* the service thread: fake core and HTTP server */
  GThread *thread;
  GMainContext *context;
  GMainLoop *loop;
  GDBusConnection *service_conn;
  AlvCore1 *skeleton;
  SoupServer *server;
  guint owner_id;

  GMutex lock;                /* guards everything below */
  GCond cond;
  gboolean ready;
  char *stream_url;
  char *last_tuned;
  guint n_tune;
  guint n_stop;
  guint n_get;
  guint n_set;                /* Station set by the test */
} Fixture;

typedef struct
{
  GSubprocess *proc;
  char *out;
  char *err;
  gboolean done;
} Player;

/* ---- the fake core, in the service thread ------------------------------ */

static gboolean
on_handle_tune (AlvCore1              *object,
                GDBusMethodInvocation *invocation,
                const char            *playlist_url,
                gpointer               user_data)
{
  Fixture *fx = user_data;
  GVariantBuilder np;
  GVariantBuilder stats;
  g_autofree char *stream_url = NULL;

  g_mutex_lock (&fx->lock);
  fx->n_tune++;
  g_free (fx->last_tuned);
  fx->last_tuned = g_strdup (playlist_url);
  stream_url = g_strdup (fx->stream_url);
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);

  if (strstr (playlist_url, "garbage") != NULL)
    {
      /* a stream no decoder recognises */
      char *garbage = g_strconcat (stream_url, "-garbage", NULL);

      g_free (stream_url);
      stream_url = garbage;
    }
  if (strstr (playlist_url, "video") != NULL)
    {
      char *video = g_strconcat (stream_url, "-video", NULL);

      g_free (stream_url);
      stream_url = video;
    }
  if (strstr (playlist_url, "invalid") != NULL)
    {
      g_dbus_method_invocation_return_error (invocation, ALV_CORE_ERROR, ALV_CORE_ERROR_INVALID_URL,
                                             "not a station: %s", playlist_url);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_variant_builder_init (&np, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&np, "{sv}", "title", g_variant_new_string ("Test Tone"));
  g_variant_builder_add (&np, "{sv}", "creator", g_variant_new_string ("Alluvium Tests"));
  g_variant_builder_add (&np, "{sv}", "url", g_variant_new_string ("http://127.0.0.1/media/tone.mp3"));
  g_variant_builder_add (&np, "{sv}", "position", g_variant_new_int64 (3 * G_USEC_PER_SEC));
  g_variant_builder_init (&stats, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&stats, "{sv}", "peers-connected", g_variant_new_uint32 (2));
  g_variant_builder_add (&stats, "{sv}", "bytes-from-peers", g_variant_new_uint64 (3000));
  g_variant_builder_add (&stats, "{sv}", "bytes-from-origin", g_variant_new_uint64 (1000));
  /* the item playing: what the player shows */
  g_variant_builder_add (&stats, "{sv}", "item-peers-known", g_variant_new_uint32 (5));
  g_variant_builder_add (&stats, "{sv}", "item-peers-active", g_variant_new_uint32 (1));
  g_variant_builder_add (&stats, "{sv}", "item-bytes-from-peers", g_variant_new_uint64 (900));
  g_variant_builder_add (&stats, "{sv}", "item-bytes-from-origin", g_variant_new_uint64 (100));
  g_variant_builder_add (&stats, "{sv}", "download-rate", g_variant_new_uint64 (16000));
  g_variant_builder_add (&stats, "{sv}", "upload-rate", g_variant_new_uint64 (8000));
  alv_core1_set_station (object, playlist_url);
  alv_core1_set_station_name (object, "Test Station");
  alv_core1_set_stream_url (object, stream_url);
  if (strstr (playlist_url, "offair") != NULL)
    {
      /* tuned, but nothing scheduled now: the core streams silence */
      alv_core1_set_state (object, alv_core_state_to_string (ALV_CORE_STATE_GAP));
      alv_core1_set_state_message (object, "Nothing scheduled until 2031-05-01T12:00:00Z");
    }
  else
    alv_core1_set_state (object, alv_core_state_to_string (ALV_CORE_STATE_PLAYING));
  alv_core1_set_now_playing (object, g_variant_builder_end (&np));
  alv_core1_set_statistics (object, g_variant_builder_end (&stats));
  /* the properties reach the player before the answer does */
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (object));
  alv_core1_complete_tune (object, invocation, stream_url);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_stop (AlvCore1              *object,
                GDBusMethodInvocation *invocation,
                gpointer               user_data)
{
  Fixture *fx = user_data;

  g_mutex_lock (&fx->lock);
  fx->n_stop++;
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);
  alv_core1_set_station (object, "");
  alv_core1_set_stream_url (object, "");
  alv_core1_set_state (object, alv_core_state_to_string (ALV_CORE_STATE_IDLE));
  alv_core1_complete_stop (object, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
serve (SoupServer        *server G_GNUC_UNUSED,
       SoupServerMessage *msg,
       const char        *path G_GNUC_UNUSED,
       GHashTable        *query G_GNUC_UNUSED,
       gpointer           user_data)
{
  Fixture *fx = user_data;

  g_mutex_lock (&fx->lock);
  fx->n_get++;
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (soup_server_message_get_response_headers (msg),
                                         "audio/mpeg", NULL);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), fx->mp3);
}

static void
serve_video (SoupServer        *server G_GNUC_UNUSED,
             SoupServerMessage *msg,
             const char        *path G_GNUC_UNUSED,
             GHashTable        *query G_GNUC_UNUSED,
             gpointer           user_data)
{
  Fixture *fx = user_data;
  g_autoptr(GBytes) video = NULL;

  g_mutex_lock (&fx->lock);
  fx->n_get++;
  video = fx->video != NULL ? g_bytes_ref (fx->video) : NULL;
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);
  if (video == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (soup_server_message_get_response_headers (msg),
                                         "video/ogg", NULL);
  /* as the local stream: no length, not seekable, the body ends at EOF */
  soup_message_headers_set_encoding (soup_server_message_get_response_headers (msg),
                                     SOUP_ENCODING_EOF);
  soup_message_body_append_bytes (soup_server_message_get_response_body (msg), video);
  soup_message_body_complete (soup_server_message_get_response_body (msg));
}

/* Zeros: nothing any type finder recognises. */
static void
serve_garbage (SoupServer        *server G_GNUC_UNUSED,
               SoupServerMessage *msg,
               const char        *path G_GNUC_UNUSED,
               GHashTable        *query G_GNUC_UNUSED,
               gpointer           user_data)
{
  Fixture *fx = user_data;

  g_mutex_lock (&fx->lock);
  fx->n_get++;
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_set_content_type (soup_server_message_get_response_headers (msg),
                                         "application/octet-stream", NULL);
  soup_message_body_append_take (soup_server_message_get_response_body (msg),
                                 g_malloc0 (64 * 1024), 64 * 1024);
}

static void
on_name_acquired (GDBusConnection *connection G_GNUC_UNUSED,
                  const char      *name G_GNUC_UNUSED,
                  gpointer         user_data)
{
  Fixture *fx = user_data;

  g_mutex_lock (&fx->lock);
  fx->ready = TRUE;
  g_cond_broadcast (&fx->cond);
  g_mutex_unlock (&fx->lock);
}

static gpointer
service_thread (gpointer data)
{
  Fixture *fx = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *base = NULL;

  g_main_context_push_thread_default (fx->context);
  fx->service_conn = g_dbus_connection_new_for_address_sync (
    test_bus_get_address (fx->bus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);

  fx->server = test_server_new ();
  soup_server_add_handler (fx->server, "/stream", serve, fx, NULL);
  soup_server_add_handler (fx->server, "/stream-garbage", serve_garbage, fx, NULL);
  soup_server_add_handler (fx->server, "/stream-video", serve_video, fx, NULL);
  base = test_server_get_url (fx->server);
  g_mutex_lock (&fx->lock);
  fx->stream_url = g_strconcat (base, g_str_has_suffix (base, "/") ? "" : "/", "stream", NULL);
  g_mutex_unlock (&fx->lock);

  fx->skeleton = alv_core1_skeleton_new ();
  alv_core1_set_station (fx->skeleton, "");
  alv_core1_set_state (fx->skeleton, alv_core_state_to_string (ALV_CORE_STATE_IDLE));
  g_signal_connect (fx->skeleton, "handle-tune", G_CALLBACK (on_handle_tune), fx);
  g_signal_connect (fx->skeleton, "handle-stop", G_CALLBACK (on_handle_stop), fx);
  g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (fx->skeleton),
                                    fx->service_conn, ALV_CORE_OBJECT_PATH, &error);
  g_assert_no_error (error);
  fx->owner_id = g_bus_own_name_on_connection (fx->service_conn, ALV_CORE_BUS_NAME,
                                               G_BUS_NAME_OWNER_FLAGS_NONE,
                                               on_name_acquired, NULL, fx, NULL);

  g_main_loop_run (fx->loop);

  g_clear_handle_id (&fx->owner_id, g_bus_unown_name);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (fx->skeleton));
  g_clear_object (&fx->skeleton);
  soup_server_disconnect (fx->server);
  g_clear_object (&fx->server);
  g_dbus_connection_close_sync (fx->service_conn, NULL, NULL);
  g_clear_object (&fx->service_conn);
  g_main_context_pop_thread_default (fx->context);
  return NULL;
}

static void
fixture_setup (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  fx->mp3 = stream_media_mp3 (766, FALSE);   /* 20 s */
  if (fx->mp3 == NULL)
    return;
  g_mutex_init (&fx->lock);
  g_cond_init (&fx->cond);
  fx->bus = test_bus_up (NULL);
  fx->context = g_main_context_new ();
  fx->loop = g_main_loop_new (fx->context, FALSE);
  fx->thread = g_thread_new ("fake-core", service_thread, fx);
  g_mutex_lock (&fx->lock);
  while (!fx->ready)
    g_cond_wait (&fx->cond, &fx->lock);
  g_mutex_unlock (&fx->lock);
  fx->conn = g_dbus_connection_new_for_address_sync (
    test_bus_get_address (fx->bus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  if (fx->mp3 == NULL)
    return;
  g_dbus_connection_close_sync (fx->conn, NULL, NULL);
  g_clear_object (&fx->conn);
  g_main_loop_quit (fx->loop);
  g_thread_join (fx->thread);
  g_main_loop_unref (fx->loop);
  g_main_context_unref (fx->context);
  g_clear_pointer (&fx->bus, test_bus_down);
  g_mutex_clear (&fx->lock);
  g_cond_clear (&fx->cond);
  g_free (fx->stream_url);
  g_free (fx->last_tuned);
  g_clear_pointer (&fx->video, g_bytes_unref);
  g_bytes_unref (fx->mp3);
}

/* Waits until *counter (read under the lock) reaches at least n. */
static gboolean
wait_count (Fixture *fx, guint *counter, guint n)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_MS * G_TIME_SPAN_MILLISECOND;
  gboolean ok = TRUE;

  g_mutex_lock (&fx->lock);
  while (*counter < n && ok)
    ok = g_cond_wait_until (&fx->cond, &fx->lock, deadline);
  ok = *counter >= n;
  g_mutex_unlock (&fx->lock);
  return ok;
}

/* ---- running the player ------------------------------------------------ */

static char *
player_binary (void)
{
  return g_test_build_filename (G_TEST_BUILT, "..", "player", "alluvium-player", NULL);
}

static gboolean
skip_without_mp3 (Fixture *fx)
{
  if (fx->mp3 != NULL)
    return FALSE;
  g_test_skip ("no MP3 encoder (lamemp3enc) in GStreamer");
  return TRUE;
}

/* TRUE: the player picks its sound output itself (no --audio-sink) */
static gboolean spawn_with_default_sink;
/* TRUE: the player shows video in its own window (no --video-sink) */
static gboolean spawn_with_default_video_sink;
/* >= 0: the player's stdin (a terminal), instead of a pipe */
static int spawn_stdin_fd = -1;

static Player *
player_spawn (const char *const *env, const char *first_arg, ...)
{
  /* TEST_PLAYER_STDERR=1 shows the player's stderr live, for debugging */
  gboolean show_stderr = g_getenv ("TEST_PLAYER_STDERR") != NULL;
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE
                               | (spawn_stdin_fd >= 0 ? 0 : G_SUBPROCESS_FLAGS_STDIN_PIPE)
                               | (show_stderr ? 0 : G_SUBPROCESS_FLAGS_STDERR_PIPE));
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  Player *p = g_new0 (Player, 1);
  va_list ap;

  g_ptr_array_add (argv, player_binary ());
  if (!spawn_with_default_sink)
    g_ptr_array_add (argv, g_strdup ("--audio-sink=fakesink sync=true"));
  if (!spawn_with_default_video_sink)
    g_ptr_array_add (argv, g_strdup ("--video-sink=fakesink"));
  va_start (ap, first_arg);
  for (const char *a = first_arg; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, g_strdup (a));
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_setenv (launcher, "XDG_STATE_HOME", g_get_user_state_dir (), TRUE);
  /* the core it starts asks no real router to map its port */
  g_subprocess_launcher_setenv (launcher, "ALLUVIUM_CORE_NAT", "off", FALSE);
  g_subprocess_launcher_setenv (launcher, "XDG_CONFIG_HOME", g_get_user_config_dir (), TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", g_get_user_cache_dir (), TRUE);
  /* the isolated XDG_DATA_DIRS hold no GSettings schemas, which the
   * desktop proxy resolvers of souphttpsrc's GIO would need */
  g_subprocess_launcher_setenv (launcher, "GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_subprocess_launcher_setenv (launcher, "GSETTINGS_BACKEND", "memory", TRUE);
  for (guint i = 0; env != NULL && env[i] != NULL; i += 2)
    g_subprocess_launcher_setenv (launcher, env[i], env[i + 1], TRUE);
  if (spawn_stdin_fd >= 0)
    g_subprocess_launcher_take_stdin_fd (launcher, dup (spawn_stdin_fd));
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  p->proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  return p;
}

static void
on_communicated (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Player *p = user_data;
  g_autoptr(GError) error = NULL;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &p->out, &p->err, &error);
  g_assert_no_error (error);
  p->done = TRUE;
}

static gboolean
player_done_cond (gpointer data)
{
  return ((Player *) data)->done;
}

/* Waits for the player to exit, collecting its output; kills it if it
 * does not exit in time.  Returns the exit status, or -1 if it was killed. */
static int
player_wait (Player *p)
{
  /* done once the player has exited and closed its output */
  g_subprocess_communicate_utf8_async (p->proc, NULL, NULL, on_communicated, p);
  if (!test_wait (player_done_cond, p, WAIT_MS))
    {
      g_test_message ("the player did not exit within %u ms: killed", WAIT_MS);
      test_subprocess_backtrace (p->proc);
      g_subprocess_force_exit (p->proc);
      test_wait_until (player_done_cond, p, WAIT_MS);
      g_test_message ("player stdout:\n%s\nplayer stderr:\n%s", p->out, p->err);
      return -1;
    }
  g_test_message ("player stdout:\n%s\nplayer stderr:\n%s", p->out, p->err);
  if (!g_subprocess_get_if_exited (p->proc))
    {
      g_test_message ("the player was killed by signal %d", g_subprocess_get_term_sig (p->proc));
      return -1;
    }
  return g_subprocess_get_exit_status (p->proc);
}

/* Sends @signum and waits for the player's clean exit. */
static void
player_stop (Player *p,
             int     signum)
{
  g_subprocess_send_signal (p->proc, signum);
  g_assert_cmpint (player_wait (p), ==, 0);
}

static void
player_free (Player *p)
{
  if (!p->done)
    {
      g_subprocess_force_exit (p->proc);
      g_subprocess_wait (p->proc, NULL, NULL);
    }
  g_clear_object (&p->proc);
  g_free (p->out);
  g_free (p->err);
  g_free (p);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Player, player_free)

/* ---- MPRIS ------------------------------------------------------------- */

static GVariant *
mpris_get (Fixture *fx, const char *iface, const char *prop)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (fx->conn, MPRIS_NAME, MPRIS_PATH,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", iface, prop), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, 2000, NULL, NULL);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &value);
  return value;
}

static void
mpris_call (Fixture *fx, const char *method)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_sync (fx->conn, MPRIS_NAME, MPRIS_PATH,
                                       "org.mpris.MediaPlayer2.Player", method, NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NO_AUTO_START, 2000, NULL, &error);
  g_assert_no_error (error);
}

/* What mpris_wait_string() waits on: on the heap, as the signal
 * subscription and the name watch may call back after they were removed,
 * until they drop their references. */
typedef struct
{
  gint ref;
  Fixture *fx;
  const char *iface;
  const char *prop;
  const char *want;
  gboolean stale;     /* something happened: ask for the value again */
  gboolean matched;
} MprisWait;

static MprisWait *
mpris_wait_ref (MprisWait *w)
{
  g_atomic_int_inc (&w->ref);
  return w;
}

static void
mpris_wait_unref (gpointer data)
{
  MprisWait *w = data;

  if (g_atomic_int_dec_and_test (&w->ref))
    g_free (w);
}

static void
on_mpris_properties_changed (GDBusConnection *connection G_GNUC_UNUSED,
                             const char      *sender G_GNUC_UNUSED,
                             const char      *path G_GNUC_UNUSED,
                             const char      *iface G_GNUC_UNUSED,
                             const char      *signal G_GNUC_UNUSED,
                             GVariant        *parameters G_GNUC_UNUSED,
                             gpointer         user_data)
{
  ((MprisWait *) user_data)->stale = TRUE;
}

static void
on_mpris_name_appeared (GDBusConnection *connection G_GNUC_UNUSED,
                        const char      *name G_GNUC_UNUSED,
                        const char      *owner G_GNUC_UNUSED,
                        gpointer         user_data)
{
  ((MprisWait *) user_data)->stale = TRUE;
}

static void
on_mpris_name_vanished (GDBusConnection *connection G_GNUC_UNUSED,
                        const char      *name G_GNUC_UNUSED,
                        gpointer         user_data)
{
  ((MprisWait *) user_data)->stale = TRUE;
}

static gboolean
mpris_cond (gpointer data)
{
  MprisWait *w = data;

  if (w->stale)
    {
      g_autoptr(GVariant) v = NULL;

      w->stale = FALSE;
      v = mpris_get (w->fx, w->iface, w->prop);
      w->matched = v != NULL && g_variant_is_of_type (v, G_VARIANT_TYPE_STRING)
                   && g_str_equal (g_variant_get_string (v, NULL), w->want);
    }
  return w->matched;
}

/* Waits until PlaybackStatus (or any string property) equals @want: asks
 * for it once, then again each time the player announces a change
 * (PropertiesChanged) or the MPRIS name changes hands. */
static gboolean
mpris_wait_string (Fixture *fx, const char *iface, const char *prop, const char *want)
{
  MprisWait *w = g_new0 (MprisWait, 1);
  guint subscription, watch;
  gboolean ok;

  w->ref = 1;
  w->fx = fx;
  w->iface = iface;
  w->prop = prop;
  w->want = want;
  w->stale = TRUE;
  /* the player's path: the fake core's changes are on a path of its own */
  subscription = g_dbus_connection_signal_subscribe (fx->conn, NULL, "org.freedesktop.DBus.Properties",
                                                     "PropertiesChanged", MPRIS_PATH, iface,
                                                     G_DBUS_SIGNAL_FLAGS_NONE,
                                                     on_mpris_properties_changed,
                                                     mpris_wait_ref (w), mpris_wait_unref);
  watch = g_bus_watch_name_on_connection (fx->conn, MPRIS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          on_mpris_name_appeared, on_mpris_name_vanished,
                                          mpris_wait_ref (w), mpris_wait_unref);
  ok = test_wait (mpris_cond, w, WAIT_MS);
  if (!ok)
    g_test_message ("%s.%s did not become \"%s\" within %u ms", iface, prop, want, WAIT_MS);
  g_bus_unwatch_name (watch);
  g_dbus_connection_signal_unsubscribe (fx->conn, subscription);
  mpris_wait_unref (w);
  return ok;
}

/* ---- tests ------------------------------------------------------------- */

static void
test_play (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;
  g_autoptr(Player) resumed = NULL;
  g_autoptr(GVariant) metadata = NULL;
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariant) artists = NULL;
  g_autofree char *playerctl = g_find_program_in_path ("playerctl");
  const char *station = "http://127.0.0.1:9/stations/test.rss";
  const char *title = NULL;
  const char *track = NULL;

  if (skip_without_mp3 (fx))
    return;
  p = player_spawn (NULL, station, NULL);

  /* it tunes to the station given and fetches the stream returned */
  g_assert_true (wait_count (fx, &fx->n_tune, 1));
  g_mutex_lock (&fx->lock);
  g_assert_cmpstr (fx->last_tuned, ==, station);
  g_mutex_unlock (&fx->lock);
  g_assert_true (wait_count (fx, &fx->n_get, 1));

  /* MPRIS */
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  v = mpris_get (fx, "org.mpris.MediaPlayer2", "Identity");
  g_assert_nonnull (v);
  g_assert_cmpstr (g_variant_get_string (v, NULL), ==, "Alluvium");
  g_clear_pointer (&v, g_variant_unref);
  v = mpris_get (fx, "org.mpris.MediaPlayer2", "DesktopEntry");
  g_assert_cmpstr (g_variant_get_string (v, NULL), ==, "org.alluvium.player");
  g_clear_pointer (&v, g_variant_unref);
  v = mpris_get (fx, "org.mpris.MediaPlayer2", "CanRaise");
  g_assert_false (g_variant_get_boolean (v));
  g_clear_pointer (&v, g_variant_unref);
  v = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "CanSeek");
  g_assert_false (g_variant_get_boolean (v));
  g_clear_pointer (&v, g_variant_unref);
  v = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "CanPause");
  g_assert_true (g_variant_get_boolean (v));
  g_clear_pointer (&v, g_variant_unref);

  metadata = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "Metadata");
  g_assert_nonnull (metadata);
  g_assert_true (g_variant_lookup (metadata, "xesam:title", "&s", &title));
  g_assert_cmpstr (title, ==, "Test Tone");
  artists = g_variant_lookup_value (metadata, "xesam:artist", G_VARIANT_TYPE_STRING_ARRAY);
  g_assert_nonnull (artists);
  {
    g_autofree const char **a = g_variant_get_strv (artists, NULL);

    g_assert_cmpstr (a[0], ==, "Alluvium Tests");
    g_assert_null (a[1]);
  }
  g_assert_true (g_variant_lookup (metadata, "mpris:trackid", "&o", &track));

  if (playerctl != NULL)
    {
      const char *argv[] = { playerctl, "-p", "alluvium", "metadata", "xesam:title", NULL };
      int status;
      g_autofree char *out = test_run_tool (argv, NULL, NULL, &status);

      g_assert_cmpint (status, ==, 0);
      g_assert_cmpstr (g_strstrip (out), ==, "Test Tone");
    }
  else
    g_test_message ("playerctl not installed: checked with GDBus only");

  /* Pause and Play change PlaybackStatus */
  mpris_call (fx, "Pause");
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Paused"));
  mpris_call (fx, "Play");
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  mpris_call (fx, "PlayPause");
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Paused"));
  mpris_call (fx, "PlayPause");
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));

  /* Volume is writable */
  {
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GError) error = NULL;

    reply = g_dbus_connection_call_sync (fx->conn, MPRIS_NAME, MPRIS_PATH,
                                         "org.freedesktop.DBus.Properties", "Set",
                                         g_variant_new ("(ssv)", "org.mpris.MediaPlayer2.Player", "Volume",
                                                        g_variant_new_double (0.5)),
                                         NULL, G_DBUS_CALL_FLAGS_NONE, 2000, NULL, &error);
    g_assert_no_error (error);
    v = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "Volume");
    g_assert_cmpfloat_with_epsilon (g_variant_get_double (v), 0.5, 1e-6);
    g_clear_pointer (&v, g_variant_unref);
  }

  /* Ctrl-C: a clean exit that stops the core */
  player_stop (p, SIGINT);
  g_assert_true (wait_count (fx, &fx->n_stop, 1));
  g_assert_nonnull (strstr (p->out, "Test Tone"));
  g_assert_nonnull (strstr (p->out, "Test Station"));
  /* the item's figures, not the totals (2 peers, 75 %) */
  g_assert_nonnull (strstr (p->out, "| 5 peers, 90% from peers |"));

  /* no argument: the last station again */
  resumed = player_spawn (NULL, NULL, NULL);
  g_assert_true (wait_count (fx, &fx->n_tune, 2));
  g_mutex_lock (&fx->lock);
  g_assert_cmpstr (fx->last_tuned, ==, station);
  g_mutex_unlock (&fx->lock);
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  v = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "Volume");
  g_assert_cmpfloat_with_epsilon (g_variant_get_double (v), 0.5, 1e-6);
  player_stop (resumed, SIGTERM);
  g_assert_true (wait_count (fx, &fx->n_stop, 2));
}

static void
test_tune_error (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;
  int status;

  if (skip_without_mp3 (fx))
    return;
  p = player_spawn (NULL, "http://127.0.0.1:9/invalid.rss", NULL);
  status = player_wait (p);
  g_assert_cmpint (status, >, 0);
  g_assert_nonnull (strstr (p->err, "not a station: http://127.0.0.1:9/invalid.rss"));
  g_assert_null (strstr (p->err, "GDBus.Error"));
  g_mutex_lock (&fx->lock);
  g_assert_cmpuint (fx->n_tune, ==, 1);
  g_assert_cmpuint (fx->n_stop, ==, 0);
  g_mutex_unlock (&fx->lock);
}

/* No sound output on the machine: the player says so once, in plain
 * words, and plays silently instead of failing or pretending. */
static void
test_no_sound (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;
  const char *env[] = { "PULSE_SERVER", "unix:/nonexistent/pulse", "PIPEWIRE_REMOTE", "/nonexistent",
                        "ALSA_CONFIG_PATH", "/dev/null", NULL };

  if (skip_without_mp3 (fx))
    return;
  spawn_with_default_sink = TRUE;
  p = player_spawn (env, "http://127.0.0.1:9/stations/test.rss", NULL);
  spawn_with_default_sink = FALSE;
  g_assert_true (wait_count (fx, &fx->n_get, 1));
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  player_stop (p, SIGTERM);
  g_assert_nonnull (strstr (p->err, "No sound output found"));
  g_assert_nonnull (strstr (p->err, "playing silently"));
}

/* A stream that cannot be decoded: the player says what the listener
 * can do about it, and tries again. */
static void
test_undecodable (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;

  if (skip_without_mp3 (fx))
    return;
  p = player_spawn (NULL, "http://127.0.0.1:9/stations/garbage.rss", NULL);
  /* the error, then the reconnection's Tune */
  g_assert_true (wait_count (fx, &fx->n_tune, 2));
  player_stop (p, SIGTERM);
  g_assert_nonnull (strstr (p->err, "cannot be decoded here"));
  g_assert_nonnull (strstr (p->err, "gstreamer1.0-plugins-good"));
}

/* Tuned to a station with nothing on air: the player says so, with the
 * core's reason, and never claims to be playing. */
/* The fake core's item comes on air. */
static gboolean
on_air_cb (gpointer data)
{
  Fixture *fx = data;

  alv_core1_set_state (fx->skeleton, alv_core_state_to_string (ALV_CORE_STATE_PLAYING));
  alv_core1_set_state_message (fx->skeleton, "");
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (fx->skeleton));
  return G_SOURCE_REMOVE;
}

/* Off air, the player says so and never "Playing"; MPRIS, which has no
 * such state, says Stopped with no track (not the item's title over
 * silence), and Playing with the item once the core plays it. */
static void
test_off_air (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;

  if (skip_without_mp3 (fx))
    return;
  p = player_spawn (NULL, "http://127.0.0.1:9/offair.rss", NULL);
  g_assert_true (wait_count (fx, &fx->n_get, 1));

  /* the player plays the stream (silence) by now: its PlaybackStatus was
   * set before it asked for the stream */
  {
    g_autoptr(GVariant) status = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus");
    g_autoptr(GVariant) metadata = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "Metadata");
    const char *track = NULL;

    g_assert_nonnull (status);
    g_assert_cmpstr (g_variant_get_string (status, NULL), ==, "Stopped");
    g_assert_nonnull (metadata);
    g_assert_true (g_variant_lookup (metadata, "mpris:trackid", "&o", &track));
    g_assert_cmpstr (track, ==, "/org/mpris/MediaPlayer2/TrackList/NoTrack");
    g_assert_false (g_variant_lookup (metadata, "xesam:title", "&s", NULL));
  }
  /* on air: Playing, with the item */
  g_main_context_invoke (fx->context, on_air_cb, fx);
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  {
    g_autoptr(GVariant) metadata = mpris_get (fx, "org.mpris.MediaPlayer2.Player", "Metadata");
    const char *title = NULL;

    g_assert_nonnull (metadata);
    g_assert_true (g_variant_lookup (metadata, "xesam:title", "&s", &title));
    g_assert_cmpstr (title, ==, "Test Tone");
  }
  player_stop (p, SIGINT);
  {
    /* "Playing" on the status line only after the last "Off air" */
    const char *off_air = g_strrstr (p->out, "Off air: Nothing scheduled until 2031-05-01T12:00:00Z");
    g_autofree char *before = NULL;

    g_assert_nonnull (off_air);
    before = g_strndup (p->out, (gsize) (off_air - p->out));
    g_assert_null (strstr (before, "| Playing"));
  }
}

static gboolean
leave_bus_cb (gpointer data)
{
  Fixture *fx = data;

  g_clear_handle_id (&fx->owner_id, g_bus_unown_name);
  return G_SOURCE_REMOVE;
}

static gboolean
name_gone_cond (gpointer data)
{
  Fixture *fx = data;
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync (fx->conn, "org.freedesktop.DBus",
                                                           "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                           "NameHasOwner",
                                                           g_variant_new ("(s)", ALV_CORE_BUS_NAME),
                                                           G_VARIANT_TYPE ("(b)"),
                                                           G_DBUS_CALL_FLAGS_NONE, 2000, NULL, NULL);
  gboolean owned = TRUE;

  if (reply != NULL)
    g_variant_get (reply, "(b)", &owned);
  return !owned;
}

/* No D-Bus activation: when the core the player was tuned to goes away,
 * the player starts alluvium-core itself, as it does at start-up, with
 * the core's log in a file of its own.  (The core it starts cannot reach
 * the station, so the player then reports the core's own error.) */
static void
test_respawn_core (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;
  g_autofree char *core_dir = g_test_build_filename (G_TEST_BUILT, "..", "core", NULL);
  g_autofree char *path = g_strconcat (core_dir, ":", g_getenv ("PATH"), NULL);
  g_autofree char *log = g_build_filename (g_get_user_state_dir (), "alluvium", "core.log", NULL);
  const char *env[] = { "PATH", path, NULL };
  const char *station = "http://127.0.0.1:9/stations/test.rss";

  if (skip_without_mp3 (fx))
    return;
  p = player_spawn (env, station, NULL);
  g_assert_true (wait_count (fx, &fx->n_get, 1));

  /* the core goes away */
  g_main_context_invoke (fx->context, leave_bus_cb, fx);
  g_assert_cmpint (player_wait (p), ==, 1);
  g_assert_nonnull (strstr (p->out, "Started alluvium-core (its log: "));
  g_assert_nonnull (strstr (p->out, log));
  g_assert_true (g_file_test (log, G_FILE_TEST_IS_REGULAR));
  /* the error came from the real core it started */
  g_assert_nonnull (strstr (p->err, "Could not tune to http://127.0.0.1:9/stations/test.rss"));

  /* stop the core it started, by its PID */
  {
    g_autoptr(GVariant) reply = NULL;
    g_autoptr(GError) error = NULL;
    guint32 pid = 0;

    reply = g_dbus_connection_call_sync (fx->conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                         "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                         g_variant_new ("(s)", ALV_CORE_BUS_NAME),
                                         G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, 2000,
                                         NULL, &error);
    g_assert_no_error (error);
    g_variant_get (reply, "(u)", &pid);
    g_assert_cmpuint (pid, >, 1);
    g_assert_cmpint (kill ((pid_t) pid, SIGTERM), ==, 0);
    test_wait_until (name_gone_cond, fx, WAIT_MS);
    g_assert_true (name_gone_cond (fx));
  }
}

typedef struct
{
  Fixture *fx;
  const char *station;
} SetStation;

static gboolean
set_station_cb (gpointer data)
{
  SetStation *set = data;

  alv_core1_set_station (set->fx->skeleton, set->station);
  g_dbus_interface_skeleton_flush (G_DBUS_INTERFACE_SKELETON (set->fx->skeleton));
  g_mutex_lock (&set->fx->lock);
  set->fx->n_set++;
  g_cond_broadcast (&set->fx->cond);
  g_mutex_unlock (&set->fx->lock);
  return G_SOURCE_REMOVE;
}

/* Two players on one core do not fight: a player started without a
 * station joins the one the core plays (another player's) instead of
 * tuning it to its own last one, and a player whose station another
 * player changes follows it, saying so, instead of tuning back. */
static void
test_join (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;
  SetStation playing = { fx, "http://127.0.0.1:9/stations/current.rss" };
  SetStation other = { fx, "http://127.0.0.1:9/stations/other.rss" };

  if (skip_without_mp3 (fx))
    return;
  g_main_context_invoke (fx->context, set_station_cb, &playing);
  g_assert_true (wait_count (fx, &fx->n_set, 1));
  p = player_spawn (NULL, NULL);
  g_assert_true (wait_count (fx, &fx->n_tune, 1));
  g_mutex_lock (&fx->lock);
  g_assert_cmpstr (fx->last_tuned, ==, playing.station);
  g_mutex_unlock (&fx->lock);
  g_assert_true (wait_count (fx, &fx->n_get, 1));

  /* another player tunes the core elsewhere */
  g_main_context_invoke (fx->context, set_station_cb, &other);
  g_assert_true (wait_count (fx, &fx->n_set, 2));
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  player_stop (p, SIGTERM);
  g_assert_nonnull (strstr (p->err, "Joining the station the core plays: "
                                    "http://127.0.0.1:9/stations/current.rss"));
  g_assert_nonnull (strstr (p->out, "Another player tuned the core to "
                                    "http://127.0.0.1:9/stations/other.rss"));
  /* it never tuned the core back */
  g_mutex_lock (&fx->lock);
  g_assert_cmpuint (fx->n_tune, ==, 1);
  g_mutex_unlock (&fx->lock);
}

/* A local playlist file (the file manager gives a path, or a file:
 * URI): the player tunes to the URL the playlist names for itself, its
 * channel's rdf:about; a file that names none is refused, saying so. */
static void
test_local_file (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autofree char *path = g_build_filename (g_get_user_cache_dir (), "station.rss", NULL);
  g_autofree char *bare = g_build_filename (g_get_user_cache_dir (), "bare.rss", NULL);
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(Player) p = NULL;
  g_autoptr(Player) q = NULL;
  g_autoptr(Player) r = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  const char *station = "http://127.0.0.1:9/stations/saved.rss";

  if (skip_without_mp3 (fx))
    return;
  g_mkdir_with_parents (g_get_user_cache_dir (), 0700);
  alv_playlist_set_title (pl, "Saved Station");
  alv_playlist_set_about (pl, station);
  text = alv_playlist_to_string (pl, NULL);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (bare, "<rdf:RDF/>", -1, &error);
  g_assert_no_error (error);

  /* a path, then the same as a file: URI */
  p = player_spawn (NULL, path, NULL);
  g_assert_true (wait_count (fx, &fx->n_tune, 1));
  g_mutex_lock (&fx->lock);
  g_assert_cmpstr (fx->last_tuned, ==, station);
  g_mutex_unlock (&fx->lock);
  player_stop (p, SIGTERM);
  g_assert_nonnull (strstr (p->err, "Opening the station at http://127.0.0.1:9/stations/saved.rss"));
  uri = g_filename_to_uri (path, NULL, &error);
  g_assert_no_error (error);
  q = player_spawn (NULL, uri, NULL);
  g_assert_true (wait_count (fx, &fx->n_tune, 2));
  player_stop (q, SIGTERM);

  /* no URL of its own: refused, with the reason */
  r = player_spawn (NULL, bare, NULL);
  g_assert_cmpint (player_wait (r), ==, 1);
  g_assert_nonnull (strstr (r->err, "names no station URL"));
  g_assert_nonnull (strstr (r->err, "http"));
  g_mutex_lock (&fx->lock);
  g_assert_cmpuint (fx->n_tune, ==, 2);
  g_mutex_unlock (&fx->lock);
  g_unlink (path);
  g_unlink (bare);
}

/* ---- started without a URL --------------------------------------------- */

/* A terminal for the player's stdin: a pseudo-terminal whose other side
 * the test types into. */
typedef struct
{
  int master;
  int slave;
} Pty;

static gboolean
pty_open (Pty *pty)
{
  if (openpty (&pty->master, &pty->slave, NULL, NULL, NULL) != 0)
    {
      g_test_skip ("no pseudo-terminals here");
      return FALSE;
    }
  g_assert_cmpint (fcntl (pty->master, F_SETFD, FD_CLOEXEC), ==, 0);
  g_assert_cmpint (fcntl (pty->slave, F_SETFD, FD_CLOEXEC), ==, 0);
  g_assert_true (isatty (pty->slave));
  return TRUE;
}

static void
pty_type (Pty *pty, const char *text)
{
  gsize len = strlen (text);

  g_assert_cmpint (write (pty->master, text, len), ==, (gssize) len);
}

static void
pty_close (Pty *pty)
{
  close (pty->slave);
  close (pty->master);
}

static Player *
player_spawn_on_pty (Pty *pty, const char *const *env)
{
  Player *p;

  spawn_stdin_fd = pty->slave;
  p = player_spawn (env, NULL);
  spawn_stdin_fd = -1;
  return p;
}

/* Writes the player's state file as a player that played @recent would
 * have left it, and a stations.conf in a data directory of its own. */
static void
first_run_files (const char *state, const char *conf, char **data_dirs_out)
{
  g_autofree char *state_dir = g_build_filename (g_get_user_state_dir (), "alluvium", NULL);
  g_autofree char *state_path = g_build_filename (state_dir, "player.ini", NULL);
  g_autofree char *data_dirs = g_build_filename (g_get_user_cache_dir (), "data-dirs", NULL);
  g_autofree char *conf_dir = g_build_filename (data_dirs, "alluvium", NULL);
  g_autofree char *conf_path = g_build_filename (conf_dir, "stations.conf", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_cmpint (g_mkdir_with_parents (state_dir, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (conf_dir, 0700), ==, 0);
  if (state != NULL)
    {
      g_file_set_contents (state_path, state, -1, &error);
      g_assert_no_error (error);
    }
  if (conf != NULL)
    {
      g_file_set_contents (conf_path, conf, -1, &error);
      g_assert_no_error (error);
    }
  *data_dirs_out = g_steal_pointer (&data_dirs);
}

/* No URL, no terminal to ask in, nothing played before: a clear message
 * and a failure, not a question nobody can answer. */
static void
test_first_run_no_terminal (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;
  g_autofree char *data_dirs = NULL;

  if (skip_without_mp3 (fx))
    return;
  first_run_files (NULL, "[x]\nURL=http://127.0.0.1:9/stations/shipped.rss\n", &data_dirs);
  {
    const char *env[] = { "XDG_DATA_DIRS", data_dirs, NULL };

    p = player_spawn (env, NULL);
  }
  g_assert_cmpint (player_wait (p), ==, 1);
  g_assert_nonnull (strstr (p->err, "No station given and none played before"));
  g_assert_null (strstr (p->out, "Pick a number"));
  g_mutex_lock (&fx->lock);
  g_assert_cmpuint (fx->n_tune, ==, 0);
  g_mutex_unlock (&fx->lock);
}

/* No URL in a terminal: the stations played before (the last one first),
 * then the ones stations.conf names, and the question; a number not on
 * the list is refused and asked again, so is a station the core refuses
 * (the list shown again), a good one tunes, and the station picked moves
 * to the top of the list remembered. */
static void
test_first_run_pick (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  const char *state = "[player]\n"
                      "station=http://127.0.0.1:9/stations/last.rss\n"
                      "recent=http://127.0.0.1:9/stations/last.rss;http://127.0.0.1:9/stations/invalid.rss;\n"
                      "volume=0.5\n";
  const char *conf = "[shipped]\n"
                     "Name=Shipped Station\n"
                     "URL=http://127.0.0.1:9/stations/shipped.rss\n";
  const char *shipped = "http://127.0.0.1:9/stations/shipped.rss";
  g_autofree char *data_dirs = NULL;
  g_autofree char *state_path = g_build_filename (g_get_user_state_dir (), "alluvium", "player.ini", NULL);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(Player) p = NULL;
  g_auto(GStrv) recent = NULL;
  Pty pty;

  if (skip_without_mp3 (fx) || !pty_open (&pty))
    return;
  first_run_files (state, conf, &data_dirs);
  {
    const char *env[] = { "XDG_DATA_DIRS", data_dirs, NULL };

    p = player_spawn_on_pty (&pty, env);
  }
  /* typed ahead: the player reads a line at a time */
  pty_type (&pty, "7\n2\n3\n");
  g_assert_true (wait_count (fx, &fx->n_tune, 2));
  g_mutex_lock (&fx->lock);
  g_assert_cmpstr (fx->last_tuned, ==, shipped);
  g_mutex_unlock (&fx->lock);
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  player_stop (p, SIGTERM);
  pty_close (&pty);

  {
    const char *list = "   1  http://127.0.0.1:9/stations/last.rss\n"
                       "   2  http://127.0.0.1:9/stations/invalid.rss\n"
                       "   3  Shipped Station\n"
                       "      http://127.0.0.1:9/stations/shipped.rss\n";
    const char *first = strstr (p->out, list);

    g_assert_nonnull (first);
    /* and again after the refusal */
    g_assert_nonnull (strstr (first + 1, list));
  }
  g_assert_nonnull (strstr (p->out, "Pick a number or type a playlist URL:"));
  g_assert_nonnull (strstr (p->err, "There is no station number 7; pick one from 1 to 3"));
  g_assert_nonnull (strstr (p->err, "not a station: http://127.0.0.1:9/stations/invalid.rss"));

  g_key_file_load_from_file (kf, state_path, G_KEY_FILE_NONE, &error);
  g_assert_no_error (error);
  recent = g_key_file_get_string_list (kf, "player", "recent", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_strv_length (recent), ==, 3);
  g_assert_cmpstr (recent[0], ==, shipped);
  g_assert_cmpstr (recent[1], ==, "http://127.0.0.1:9/stations/last.rss");
  g_assert_cmpstr (recent[2], ==, "http://127.0.0.1:9/stations/invalid.rss");
}

/* Nothing known: the player asks for a URL; the path of a local playlist
 * typed (as a terminal pastes a dragged file) tunes to the station it
 * names for itself. */
static void
test_first_run_path (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autofree char *path = g_build_filename (g_get_user_cache_dir (), "saved station.rss", NULL);
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autofree char *text = NULL;
  g_autofree char *answer = NULL;
  g_autofree char *data_dirs = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(Player) p = NULL;
  const char *station = "http://127.0.0.1:9/stations/saved.rss";
  Pty pty;

  if (skip_without_mp3 (fx) || !pty_open (&pty))
    return;
  first_run_files (NULL, NULL, &data_dirs);
  alv_playlist_set_about (pl, station);
  text = alv_playlist_to_string (pl, NULL);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
  {
    const char *env[] = { "XDG_DATA_DIRS", data_dirs, NULL };

    p = player_spawn_on_pty (&pty, env);
  }
  answer = g_strdup_printf ("1\n'%s' \n", path);
  pty_type (&pty, answer);
  g_assert_true (wait_count (fx, &fx->n_tune, 1));
  g_mutex_lock (&fx->lock);
  g_assert_cmpstr (fx->last_tuned, ==, station);
  g_mutex_unlock (&fx->lock);
  player_stop (p, SIGTERM);
  pty_close (&pty);
  g_assert_nonnull (strstr (p->out, "No stations known yet"));
  g_assert_nonnull (strstr (p->out, "Playlist URL:"));
  g_assert_nonnull (strstr (p->err, "There are no stations to pick from yet"));
  g_unlink (path);
}

/* An empty answer, or the end of input, is "no, thanks": a clean exit
 * that tunes nothing. */
static void
test_first_run_quit (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  const char *state = "[player]\nstation=http://127.0.0.1:9/stations/last.rss\n";
  static const char *const answers[] = { "\n", "\004" };
  g_autofree char *data_dirs = NULL;

  if (skip_without_mp3 (fx))
    return;
  first_run_files (state, NULL, &data_dirs);
  for (guint i = 0; i < G_N_ELEMENTS (answers); i++)
    {
      const char *env[] = { "XDG_DATA_DIRS", data_dirs, NULL };
      g_autoptr(Player) p = NULL;
      Pty pty;

      if (!pty_open (&pty))
        return;
      p = player_spawn_on_pty (&pty, env);
      pty_type (&pty, answers[i]);
      g_assert_cmpint (player_wait (p), ==, 0);
      pty_close (&pty);
      /* a state file from before the list: its station is on it */
      g_assert_nonnull (strstr (p->out, "   1  http://127.0.0.1:9/stations/last.rss\n"));
      g_assert_nonnull (strstr (p->out, "Pick a number or type a playlist URL:"));
    }
  g_mutex_lock (&fx->lock);
  g_assert_cmpuint (fx->n_tune, ==, 0);
  g_mutex_unlock (&fx->lock);
}

static void
test_german (void)
{
  g_autofree char *localedir = g_test_build_filename (G_TEST_BUILT, "locale", NULL);
  g_autofree char *mo = g_build_filename (localedir, "de", "LC_MESSAGES", GETTEXT_PACKAGE ".mo", NULL);
  const char *env[] = { "LANGUAGE", "de", "LC_ALL", "C.UTF-8", "ALLUVIUM_LOCALEDIR", localedir, NULL };
  g_autoptr(Player) help = NULL;
  g_autoptr(Player) refused = NULL;

  if (!g_file_test (mo, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("the German catalog was not built (msgfmt missing?)");
      return;
    }
  help = player_spawn (env, "--help", NULL);
  g_assert_cmpint (player_wait (help), ==, 0);
  g_assert_nonnull (strstr (help->out, "Tasten"));
  g_assert_nonnull (strstr (help->out, "Audio-Ausgabe"));
  refused = player_spawn (env, "ftp://example.org/x.rss", NULL);
  g_assert_cmpint (player_wait (refused), ==, 1);
  g_assert_nonnull (strstr (refused->err, "ist keine http- oder https-URL"));
}

/* ---- the video window, under Xvfb ------------------------------------- */

typedef struct
{
  GBytes *out;
  gboolean done;
} ToolRun;

static void
tool_done_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  ToolRun *run = user_data;

  g_subprocess_communicate_finish (G_SUBPROCESS (source), result, &run->out, NULL, NULL);
  run->done = TRUE;
}

static gboolean
tool_done_cond (gpointer data)
{
  return ((ToolRun *) data)->done;
}

/* Runs an X client on @display and waits for it (bounded).  Returns its
 * exit status (-1 when it had to be killed), its stdout in @out. */
static int
run_x_tool (const char *display, GBytes **out, const char *first, ...)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  ToolRun run = { NULL, FALSE };
  va_list ap;

  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  g_subprocess_launcher_setenv (launcher, "DISPLAY", display, TRUE);
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_async (proc, NULL, NULL, tool_done_cb, &run);
  if (!test_wait (tool_done_cond, &run, WAIT_MS))
    {
      g_subprocess_force_exit (proc);
      test_wait_until (tool_done_cond, &run, WAIT_MS);
    }
  if (out != NULL)
    *out = run.out != NULL ? g_bytes_ref (run.out) : g_bytes_new (NULL, 0);
  g_clear_pointer (&run.out, g_bytes_unref);
  return g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
}

static char *
bytes_to_string (GBytes *bytes)
{
  return g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

/* Starts Xvfb on a free display; returns the display name (":N"). */
static char *
xvfb_start (GSubprocess **proc)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  *proc = g_subprocess_launcher_spawn (launcher, &error, "Xvfb", "-displayfd", "1", "-screen", "0",
                                       "640x480x24", "-nolisten", "tcp", NULL);
  g_assert_no_error (error);
  /* Xvfb writes the display number once it accepts clients (or exits) */
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (*proc));
  line = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  return g_strdup_printf (":%s", g_strstrip (line));
}

static void
xvfb_stop (GSubprocess *proc)
{
  g_subprocess_force_exit (proc);
  g_subprocess_wait (proc, NULL, NULL);
  g_object_unref (proc);
}

/* The RGB bytes of a binary PPM (P6, maxval 255), and its size. */
static const guint8 *
ppm_pixels (GBytes *ppm, int *width, int *height)
{
  gsize len;
  const char *d = g_bytes_get_data (ppm, &len);
  int maxval = 0, n = 0;
  g_autofree char *head = g_strndup (d, MIN (len, 64));

  if (len < 2 || sscanf (head, "P6 %d %d %d%n", width, height, &maxval, &n) != 3 || maxval != 255
      || *width <= 0 || *height <= 0 || len < (gsize) n + 1 + (gsize) *width * (gsize) *height * 3)
    return NULL;
  return (const guint8 *) d + n + 1;   /* one whitespace after maxval */
}

/* Whether @shot (the window) shows @ref (the source frame, RGB) at the
 * middle of each of the smpte pattern's seven upper bars.  The sink
 * scales the picture to the window, keeping its aspect ratio, centred. */
static gboolean
shows_bars (GBytes *shot, GBytes *ref, int ref_width, int ref_height)
{
  int w = 0, h = 0;
  const guint8 *pixels = ppm_pixels (shot, &w, &h);
  const guint8 *want = g_bytes_get_data (ref, NULL);
  double scale;
  int left, top;

  if (pixels == NULL)
    return FALSE;
  scale = MIN ((double) w / ref_width, (double) h / ref_height);
  left = (int) (w - ref_width * scale) / 2;
  top = (int) (h - ref_height * scale) / 2;
  for (int bar = 0; bar < 7; bar++)
    {
      int x = (2 * bar + 1) * ref_width / 14, y = ref_height / 4;
      int sx = left + (int) (x * scale), sy = top + (int) (y * scale);
      const guint8 *got = pixels + ((gsize) sy * (gsize) w + (gsize) sx) * 3;
      const guint8 *exp = want + ((gsize) y * (gsize) ref_width + (gsize) x) * 3;

      for (int c = 0; c < 3; c++)
        if (ABS ((int) got[c] - (int) exp[c]) > 40)
          return FALSE;
    }
  return TRUE;
}

/* Whether @shot shows a picture of @width × @height (scaled as above)
 * whose top left corner is black: the ball pattern, not the bars. */
static gboolean
shows_black_corner (GBytes *shot, int width, int height)
{
  int w = 0, h = 0;
  const guint8 *pixels = ppm_pixels (shot, &w, &h);
  double scale;
  const guint8 *got;

  if (pixels == NULL)
    return FALSE;
  scale = MIN ((double) w / width, (double) h / height);
  got = pixels + ((gsize) ((h - height * scale) / 2 + 4) * (gsize) w
                  + (gsize) ((w - width * scale) / 2 + 4)) * 3;
  return got[0] < 40 && got[1] < 40 && got[2] < 40;
}

/* A video station: the player opens its own window (found by its class),
 * titled with the item and station, showing the test pattern (compared
 * with the source frame), the same window through an item change and a
 * reconnect; closing the window quits the player cleanly. */
static void
test_video_window (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  static const char *const tools[] = { "Xvfb", "xdotool", "xprop", "import" };
  g_autoptr(GBytes) ref = NULL;
  g_autoptr(GBytes) out = NULL;
  g_autoptr(Player) p = NULL;
  g_autofree char *display = NULL;
  g_autofree char *wid = NULL;
  g_autofree char *name = NULL;
  GSubprocess *xvfb = NULL;
  gboolean shown = FALSE;

  if (skip_without_mp3 (fx))
    return;
  for (guint i = 0; i < G_N_ELEMENTS (tools); i++)
    {
      g_autofree char *path = g_find_program_in_path (tools[i]);

      if (path == NULL)
        {
          g_autofree char *why = g_strdup_printf ("%s is not installed (xvfb, xdotool, x11-utils, imagemagick)",
                                                  tools[i]);

          g_test_skip (why);
          return;
        }
    }
  {
    /* two items chained, as the core streams them (3 s and 2 s) */
    g_autoptr(GBytes) one = stream_media_theora (75, "smpte", "One", 25, TRUE);
    g_autoptr(GBytes) two = stream_media_theora (50, "ball", "Two", 25, TRUE);
    g_autoptr(GByteArray) both = g_byte_array_new ();

    if (one == NULL || two == NULL || !stream_media_have_elements ("ximagesink", NULL))
      {
        g_test_skip ("no Theora encoder (theoraenc) or ximagesink (gstreamer1.0-x) in GStreamer");
        return;
      }
    g_byte_array_append (both, g_bytes_get_data (one, NULL), (guint) g_bytes_get_size (one));
    g_byte_array_append (both, g_bytes_get_data (two, NULL), (guint) g_bytes_get_size (two));
    g_mutex_lock (&fx->lock);
    fx->video = g_byte_array_free_to_bytes (g_steal_pointer (&both));
    g_mutex_unlock (&fx->lock);
  }
  ref = stream_media_encode ("videotestsrc pattern=smpte num-buffers=1 ! "
                             "video/x-raw,format=RGB,width=320,height=240", NULL);
  g_assert_nonnull (ref);
  g_assert_cmpuint (g_bytes_get_size (ref), ==, 320 * 240 * 3);

  display = xvfb_start (&xvfb);
  spawn_with_default_video_sink = TRUE;
  {
    const char *env[] = { "DISPLAY", display, NULL };

    p = player_spawn (env, "http://127.0.0.1:9/stations/video.rss", NULL);
  }
  spawn_with_default_video_sink = FALSE;

  /* its window (xdotool waits for it to appear) */
  g_assert_cmpint (run_x_tool (display, &out, "xdotool", "search", "--sync", "--classname",
                               "alluvium-player", NULL), ==, 0);
  wid = g_strstrip (bytes_to_string (out));
  g_clear_pointer (&out, g_bytes_unref);
  g_assert_cmpstr (wid, !=, "");
  g_assert_null (strchr (wid, '\n'));   /* one window */

  /* titled with what plays */
  g_assert_cmpint (run_x_tool (display, &out, "xprop", "-id", wid, "_NET_WM_NAME", NULL), ==, 0);
  name = bytes_to_string (out);
  g_clear_pointer (&out, g_bytes_unref);
  g_test_message ("window %s: %s", wid, name);
  g_assert_nonnull (strstr (name, "Test Tone — Test Station"));

  /* showing the picture: the first shots may come before the first frame */
  for (guint i = 0; i < 100 && !shown; i++)
    {
      if (run_x_tool (display, &out, "import", "-window", wid, "-depth", "8", "ppm:-", NULL) == 0)
        shown = shows_bars (out, ref, 320, 240);
      g_clear_pointer (&out, g_bytes_unref);
    }
  g_assert_true (shown);

  /* then the second item's picture (a ball on black) in the same window */
  shown = FALSE;
  for (guint i = 0; i < 200 && !shown; i++)
    {
      if (run_x_tool (display, &out, "import", "-window", wid, "-depth", "8", "ppm:-", NULL) == 0)
        shown = shows_black_corner (out, 320, 240);
      g_clear_pointer (&out, g_bytes_unref);
    }
  g_assert_true (shown);

  /* the same window, and no other, after both items and a reconnect (the
   * stream ends here: the player tunes and plays again) */
  g_assert_true (wait_count (fx, &fx->n_get, 2));
  g_assert_cmpint (run_x_tool (display, &out, "xdotool", "search", "--classname",
                               "alluvium-player", NULL), ==, 0);
  {
    g_autofree char *again = g_strstrip (bytes_to_string (out));

    g_clear_pointer (&out, g_bytes_unref);
    g_assert_cmpstr (again, ==, wid);
  }

  /* closing the window quits the player, with status 0 */
  g_assert_cmpint (run_x_tool (display, NULL, "xdotool", "windowclose", wid, NULL), ==, 0);
  g_assert_cmpint (player_wait (p), ==, 0);
  xvfb_stop (xvfb);
}

/* An audio station under the same display opens no window. */
static void
test_audio_no_window (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(Player) p = NULL;
  g_autofree char *display = NULL;
  GSubprocess *xvfb = NULL;
  g_autofree char *xvfb_path = g_find_program_in_path ("Xvfb");
  g_autofree char *xdotool_path = g_find_program_in_path ("xdotool");

  if (skip_without_mp3 (fx))
    return;
  if (xvfb_path == NULL || xdotool_path == NULL)
    {
      g_test_skip ("Xvfb or xdotool is not installed");
      return;
    }
  display = xvfb_start (&xvfb);
  spawn_with_default_video_sink = TRUE;
  {
    const char *env[] = { "DISPLAY", display, NULL };

    p = player_spawn (env, "http://127.0.0.1:9/stations/test.rss", NULL);
  }
  spawn_with_default_video_sink = FALSE;
  g_assert_true (wait_count (fx, &fx->n_get, 1));
  g_assert_true (mpris_wait_string (fx, "org.mpris.MediaPlayer2.Player", "PlaybackStatus", "Playing"));
  /* xdotool search says 1 when nothing matches */
  g_assert_cmpint (run_x_tool (display, NULL, "xdotool", "search", "--classname", "alluvium-player", NULL),
                   ==, 1);
  player_stop (p, SIGINT);
  xvfb_stop (xvfb);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  gst_init (&argc, &argv);

  g_test_add ("/player/play", Fixture, NULL, fixture_setup, test_play, fixture_teardown);
  g_test_add ("/player/tune-error", Fixture, NULL, fixture_setup, test_tune_error, fixture_teardown);
  g_test_add ("/player/off-air", Fixture, NULL, fixture_setup, test_off_air, fixture_teardown);
  g_test_add ("/player/no-sound", Fixture, NULL, fixture_setup, test_no_sound, fixture_teardown);
  g_test_add ("/player/undecodable", Fixture, NULL, fixture_setup, test_undecodable,
              fixture_teardown);
  g_test_add ("/player/respawn-core", Fixture, NULL, fixture_setup, test_respawn_core,
              fixture_teardown);
  g_test_add ("/player/join", Fixture, NULL, fixture_setup, test_join, fixture_teardown);
  g_test_add ("/player/video-window", Fixture, NULL, fixture_setup, test_video_window,
              fixture_teardown);
  g_test_add ("/player/audio-no-window", Fixture, NULL, fixture_setup, test_audio_no_window,
              fixture_teardown);
  g_test_add ("/player/local-file", Fixture, NULL, fixture_setup, test_local_file, fixture_teardown);
  g_test_add ("/player/first-run/no-terminal", Fixture, NULL, fixture_setup,
              test_first_run_no_terminal, fixture_teardown);
  g_test_add ("/player/first-run/pick", Fixture, NULL, fixture_setup, test_first_run_pick,
              fixture_teardown);
  g_test_add ("/player/first-run/path", Fixture, NULL, fixture_setup, test_first_run_path,
              fixture_teardown);
  g_test_add ("/player/first-run/quit", Fixture, NULL, fixture_setup, test_first_run_quit,
              fixture_teardown);
  g_test_add_func ("/player/german", test_german);
  return g_test_run ();
}
