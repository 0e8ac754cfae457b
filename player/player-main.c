/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * alluvium-player: asks alluvium-core over D-Bus to tune to a station,
 * plays the local stream the core hands back with playbin, shows what is
 * playing and how the swarm is doing, and exports MPRIS2.  The bus handling
 * follows gst-play: BUFFERING pauses until 100 %, CLOCK_LOST restarts the
 * clock, missing plugins are reported with their description.  The stream is
 * a broadcast that should never end, so EOS, a stream error or the core
 * leaving the bus all lead to the same bounded reconnect with backoff: Tune
 * again (which D-Bus activation turns into a fresh core if needed) and play
 * the URL it returns.  Without D-Bus activation the player starts
 * alluvium-core itself, from its own directory or PATH.
 */
#define G_LOG_DOMAIN "alluvium-player"
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <glib/gi18n-lib.h>
#include <gio/gio.h>
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>

#include "alv-dbus.h"
#include "alv-playlist.h"
#include "player-mpris.h"
#include "player-state.h"
#include "player-stations.h"
#include "player-ui.h"
#include "player-window.h"

#define MAX_RECONNECTS     6
#define FIRST_BACKOFF_MS   500
#define MAX_BACKOFF_MS     8000
#define CORE_START_TIMEOUT 10    /* s */
#define STOP_TIMEOUT_MS    2000
#define VOLUME_STEP        0.05
#define MAX_ANSWERS        10
#define ANSWER_MAX         4096  /* bytes in a line typed at the question */

typedef struct
{
  GMainLoop *loop;
  GDBusConnection *bus;
  AlvCore1 *core;
  GCancellable *cancellable;
  GstElement *playbin;
  guint bus_watch_id;
  PlayerUi *ui;
  PlayerMpris *mpris;
  PlayerWindow *window;     /* the video window, opened by the first picture */

  char *station;            /* playlist URL */
  char *state_text;         /* the status label built from the core's message */
  char *stream_url;         /* local stream being played */
  GstState target;          /* what the user wants: PLAYING, PAUSED or NULL (stopped) */
  gboolean buffering;
  int buffer_percent;
  gboolean is_live;
  gboolean tuned;           /* the core accepted our Tune at least once */
  gboolean tune_pending;
  GSubprocess *core_child;   /* the core we started (no D-Bus activation) */
  gboolean quitting;
  double volume;
  GPtrArray *missing;       /* descriptions of missing plugins */

  guint reconnects;
  guint reconnect_id;
  guint status_id;
  guint core_watch_id;
  guint core_timeout_id;

  /* NowPlaying as last seen, with the monotonic time it arrived */
  gint64 item_position;
  gint64 item_position_at;

  int exit_code;
  gboolean picked;          /* the station was picked at the question */
  guint picks;              /* questions asked after a Tune refused one */
} Player;

static void player_tune (Player *self);
static void player_quit (Player *self, int exit_code);
static char *ask_station (gboolean *quit, GError **error);
static void on_key (int key, gpointer user_data);

/* ---- status ------------------------------------------------------------ */

static const char *
state_label (Player *self)
{
  const char *core_state = self->core != NULL ? alv_core1_get_state (self->core) : NULL;
  const char *message = self->core != NULL ? alv_core1_get_state_message (self->core) : NULL;
  AlvCoreState state;

  if (self->target == GST_STATE_PAUSED)
    return _("Paused");
  if (self->target != GST_STATE_PLAYING)
    return _("Stopped");
  /* the player plays what the core sends: it plays only when the core
   * does, and says why not when it does not */
  if (core_state == NULL || !alv_core_state_from_string (core_state, &state))
    return _("Playing");
  if (message == NULL)
    message = "";
  switch (state)
    {
    case ALV_CORE_STATE_IDLE:
      return _("Not tuned");
    case ALV_CORE_STATE_RESOLVING:
      return _("Tuning…");
    case ALV_CORE_STATE_BUFFERING:
      return _("Buffering…");
    case ALV_CORE_STATE_GAP:
      /* "Nothing scheduled until …", "The playlist has run out" */
      g_free (self->state_text);
      self->state_text = g_strdup_printf (_("Off air: %s"), *message ? message : _("nothing scheduled"));
      return self->state_text;
    case ALV_CORE_STATE_ERROR:
      g_free (self->state_text);
      self->state_text = g_strdup_printf (_("Error: %s"), *message ? message : _("the core failed"));
      return self->state_text;
    case ALV_CORE_STATE_PLAYING:
    default:
      return _("Playing");
    }
}

static gint64
player_position (Player *self)
{
  if (self->item_position < 0)
    return -1;
  return self->item_position + (g_get_monotonic_time () - self->item_position_at);
}

static void
update_status (Player *self)
{
  PlayerUiStatus st = { 0 };
  g_autoptr(GVariant) np = NULL;
  g_autoptr(GVariant) stats = NULL;
  const char *name = NULL;
  guint64 from_peers = 0;
  guint64 from_origin = 0;
  guint64 down = 0, up = 0;
  guint32 peers = 0, active = 0;
  gint64 slot_start = 0, slot_end = 0;

  /* MPRIS says Stopped while the core is off air (player-mpris.c) */
  if (self->mpris != NULL)
    player_mpris_set_core_state (self->mpris, self->core != NULL ? alv_core1_get_state (self->core) : NULL);
  if (self->ui == NULL)
    return;
  if (self->core != NULL)
    {
      name = alv_core1_get_station_name (self->core);
      np = alv_core1_dup_now_playing (self->core);
      stats = alv_core1_dup_statistics (self->core);
    }
  st.station = (name != NULL && name[0] != '\0') ? name : self->station;
  st.length_us = -1;
  if (np != NULL)
    {
      g_variant_lookup (np, "title", "&s", &st.title);
      g_variant_lookup (np, "creator", "&s", &st.creator);
    }
  if (self->window != NULL)
    {
      g_autofree char *window_title = player_window_format_title (st.station, st.title);

      player_window_set_title (self->window, window_title);
    }
  if (np != NULL)
    {
      if (g_variant_lookup (np, "slot-start", "x", &slot_start) &&
          g_variant_lookup (np, "slot-end", "x", &slot_end) && slot_end > slot_start)
        st.length_us = slot_end - slot_start;
    }
  st.position_us = player_position (self);
  st.buffering = self->buffering ? self->buffer_percent : -1;
  st.state = state_label (self);
  st.peers_active = -1;
  st.down_rate = st.up_rate = -1;
  if (stats != NULL)
    {
      /* the item playing when the core says (per item, as a BitTorrent
       * client shows a torrent), else the totals */
      if (g_variant_lookup (stats, "item-peers-known", "u", &peers))
        {
          if (g_variant_lookup (stats, "item-peers-active", "u", &active))
            st.peers_active = (gint) active;
          g_variant_lookup (stats, "item-bytes-from-peers", "t", &from_peers);
          g_variant_lookup (stats, "item-bytes-from-origin", "t", &from_origin);
        }
      else
        {
          g_variant_lookup (stats, "peers-connected", "u", &peers);
          g_variant_lookup (stats, "bytes-from-peers", "t", &from_peers);
          g_variant_lookup (stats, "bytes-from-origin", "t", &from_origin);
        }
      g_variant_lookup (stats, "peer-port-reachable", "&s", &st.reachable);
      g_variant_lookup (stats, "peer-port-mapping", "&s", &st.mapping);
      if (g_variant_lookup (stats, "download-rate", "t", &down) &&
          g_variant_lookup (stats, "upload-rate", "t", &up))
        {
          st.down_rate = (gint64) MIN (down, (guint64) G_MAXINT64);
          st.up_rate = (gint64) MIN (up, (guint64) G_MAXINT64);
        }
    }
  st.peers = peers;
  st.peer_share = (from_peers + from_origin) > 0
                  ? (double) from_peers / (double) (from_peers + from_origin) : -1.0;
  st.volume = self->volume;
  player_ui_update (self->ui, &st);
}

static gboolean
on_status_tick (gpointer user_data)
{
  update_status (user_data);
  return G_SOURCE_CONTINUE;
}

static void
update_now_playing (Player *self)
{
  g_autoptr(GVariant) np = alv_core1_dup_now_playing (self->core);
  const char *title = NULL;
  const char *creator = NULL;
  const char *url = NULL;
  gint64 position = -1;

  if (np != NULL)
    {
      g_variant_lookup (np, "title", "&s", &title);
      g_variant_lookup (np, "creator", "&s", &creator);
      g_variant_lookup (np, "url", "&s", &url);
      if (!g_variant_lookup (np, "position", "x", &position))
        position = -1;
    }
  self->item_position = position;
  self->item_position_at = g_get_monotonic_time ();
  if (self->mpris != NULL)
    player_mpris_set_metadata (self->mpris, title, creator, url);
}

static void
set_target (Player *self, GstState target)
{
  self->target = target;
  if (self->mpris != NULL)
    player_mpris_set_playback_status (self->mpris,
                                      target == GST_STATE_PLAYING ? "Playing"
                                      : target == GST_STATE_PAUSED ? "Paused" : "Stopped");
  update_status (self);
}

/* ---- playback ---------------------------------------------------------- */

static void
play_stream (Player *self, const char *url)
{
  if (g_strcmp0 (self->stream_url, url) != 0)
    {
      g_free (self->stream_url);
      self->stream_url = g_strdup (url);
    }
  self->buffering = FALSE;
  self->is_live = FALSE;
  gst_element_set_state (self->playbin, GST_STATE_NULL);
  g_object_set (self->playbin, "uri", url, NULL);
  if (self->target == GST_STATE_NULL)
    set_target (self, GST_STATE_PLAYING);
  if (gst_element_set_state (self->playbin, self->target) == GST_STATE_CHANGE_NO_PREROLL)
    self->is_live = TRUE;
}

static gboolean
on_reconnect (gpointer user_data)
{
  Player *self = user_data;

  self->reconnect_id = 0;
  player_tune (self);
  return G_SOURCE_REMOVE;
}

/* Bounded reconnect: 0.5 s, 1 s, 2 s, ... up to MAX_RECONNECTS tries; the
 * count starts again once the stream plays. */
static void
schedule_reconnect (Player *self, const char *why)
{
  guint delay;

  if (self->quitting || self->reconnect_id != 0 || self->tune_pending)
    return;
  if (self->reconnects >= MAX_RECONNECTS)
    {
      player_ui_error (self->ui, _("Lost the station after %u attempts to reconnect: %s"),
                       self->reconnects, why);
      player_quit (self, 1);
      return;
    }
  delay = MIN ((guint) FIRST_BACKOFF_MS << self->reconnects, (guint) MAX_BACKOFF_MS);
  self->reconnects++;
  player_ui_message (self->ui, _("Reconnecting in %.1f s (%s)"), delay / 1000.0, why);
  gst_element_set_state (self->playbin, GST_STATE_NULL);
  self->reconnect_id = g_timeout_add (delay, on_reconnect, self);
}

static void
set_volume (Player *self, double volume)
{
  self->volume = CLAMP (volume, 0.0, 1.0);
  g_object_set (self->playbin, "volume", self->volume, NULL);
  if (self->mpris != NULL)
    player_mpris_set_volume (self->mpris, self->volume);
  update_status (self);
}

static void
do_play (Player *self)
{
  if (self->stream_url == NULL)
    return;
  if (self->target == GST_STATE_NULL)
    {
      play_stream (self, self->stream_url);
      set_target (self, GST_STATE_PLAYING);
      return;
    }
  set_target (self, GST_STATE_PLAYING);
  if (!self->buffering)
    gst_element_set_state (self->playbin, GST_STATE_PLAYING);
}

static void
do_pause (Player *self)
{
  if (self->target != GST_STATE_PLAYING)
    return;
  set_target (self, GST_STATE_PAUSED);
  gst_element_set_state (self->playbin, GST_STATE_PAUSED);
}

static void
do_stop (Player *self)
{
  set_target (self, GST_STATE_NULL);
  gst_element_set_state (self->playbin, GST_STATE_NULL);
}

static char *explain_gst_error (const GError *error);

/* From the streaming threads: a video sink asking for a window gets the
 * player's own (the same one for the player's life). */
static GstBusSyncReply
on_bus_sync (GstBus *bus G_GNUC_UNUSED, GstMessage *msg, gpointer user_data)
{
  Player *self = user_data;

  if (self->window != NULL && player_window_handle_sync (self->window, msg))
    return GST_BUS_DROP;
  return GST_BUS_PASS;
}

static void
on_window_closed (gpointer user_data)
{
  player_quit (user_data, 0);
}

/* A video sink with a window of its own (--video-sink) says so when the
 * user closes it: that is the user quitting, not a playback error. */
static gboolean
is_window_closed_error (const GError *error)
{
  return g_error_matches (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND)
         && g_strcmp0 (error->message, "Output window was closed") == 0;
}

static gboolean
on_bus_message (GstBus *bus G_GNUC_UNUSED, GstMessage *msg, gpointer user_data)
{
  Player *self = user_data;

  switch (GST_MESSAGE_TYPE (msg))
    {
    case GST_MESSAGE_BUFFERING:
      {
        int percent;

        if (self->is_live)
          break;
        gst_message_parse_buffering (msg, &percent);
        self->buffer_percent = percent;
        if (percent >= 100)
          {
            if (self->buffering)
              {
                self->buffering = FALSE;
                if (self->target == GST_STATE_PLAYING)
                  gst_element_set_state (self->playbin, GST_STATE_PLAYING);
                update_status (self);
              }
          }
        else if (!self->buffering)
          {
            self->buffering = TRUE;
            if (self->target == GST_STATE_PLAYING)
              gst_element_set_state (self->playbin, GST_STATE_PAUSED);
            update_status (self);
          }
        break;
      }
    case GST_MESSAGE_CLOCK_LOST:
      if (self->target == GST_STATE_PLAYING)
        {
          gst_element_set_state (self->playbin, GST_STATE_PAUSED);
          gst_element_set_state (self->playbin, GST_STATE_PLAYING);
        }
      break;
    case GST_MESSAGE_LATENCY:
      gst_bin_recalculate_latency (GST_BIN (self->playbin));
      break;
    case GST_MESSAGE_REQUEST_STATE:
      {
        GstState state;

        gst_message_parse_request_state (msg, &state);
        gst_element_set_state (self->playbin, state);
        break;
      }
    case GST_MESSAGE_STATE_CHANGED:
      if (GST_MESSAGE_SRC (msg) == GST_OBJECT (self->playbin))
        {
          GstState new_state;

          gst_message_parse_state_changed (msg, NULL, &new_state, NULL);
          if (new_state == GST_STATE_PLAYING)
            self->reconnects = 0;
        }
      break;
    case GST_MESSAGE_ELEMENT:
      if (gst_is_missing_plugin_message (msg))
        {
          g_autofree char *desc = gst_missing_plugin_message_get_description (msg);

          g_ptr_array_add (self->missing, g_steal_pointer (&desc));
        }
      break;
    case GST_MESSAGE_WARNING:
      {
        g_autoptr(GError) error = NULL;

        gst_message_parse_warning (msg, &error, NULL);
        player_ui_error (self->ui, _("Warning: %s"), error->message);
        break;
      }
    case GST_MESSAGE_ERROR:
      {
        g_autoptr(GError) error = NULL;
        g_autofree char *debug = NULL;

        gst_message_parse_error (msg, &error, &debug);
        if (is_window_closed_error (error))
          {
            player_quit (self, 0);
            break;
          }
        if (self->missing->len > 0)
          {
            player_ui_error (self->ui, _("Cannot play the station: plugins are missing:"));
            for (guint i = 0; i < self->missing->len; i++)
              player_ui_error (self->ui, "  %s", (const char *) self->missing->pdata[i]);
            player_quit (self, 1);
            break;
          }
        {
          g_autofree char *why = explain_gst_error (error);

          player_ui_error (self->ui, _("Playback error: %s"), why);
        }
        if (debug != NULL)
          g_debug ("%s", debug);
        schedule_reconnect (self, error->message);
        break;
      }
    case GST_MESSAGE_EOS:
      schedule_reconnect (self, _("the stream ended"));
      break;
    default:
      break;
    }
  return G_SOURCE_CONTINUE;
}

/* ---- the core ---------------------------------------------------------- */

static void
on_core_properties_changed (GDBusProxy *proxy G_GNUC_UNUSED,
                            GVariant   *changed,
                            GStrv       invalidated G_GNUC_UNUSED,
                            gpointer    user_data)
{
  Player *self = user_data;
  const char *url = NULL;
  g_autoptr(GVariant) np = g_variant_lookup_value (changed, "NowPlaying", NULL);

  if (np != NULL)
    update_now_playing (self);
  /* another player tuned the core to another station: follow it (tuning
   * back would only start a fight) */
  if (g_variant_lookup (changed, "Station", "&s", &url) && url[0] != '\0' && self->tuned &&
      g_strcmp0 (url, self->station) != 0 && !self->quitting)
    {
      player_ui_message (self->ui, _("Another player tuned the core to %s"), url);
      g_free (self->station);
      self->station = g_strdup (url);
    }
  /* a restarted core may hand out a new local stream: follow it */
  if (g_variant_lookup (changed, "StreamUrl", "&s", &url) && url[0] != '\0' && self->tuned
      && self->stream_url != NULL && g_strcmp0 (url, self->stream_url) != 0
      && self->target != GST_STATE_NULL && !self->quitting)
    {
      g_clear_handle_id (&self->reconnect_id, g_source_remove);
      play_stream (self, url);
    }
  update_status (self);
}

static void
on_core_owner_changed (GObject    *object G_GNUC_UNUSED,
                       GParamSpec *pspec G_GNUC_UNUSED,
                       gpointer    user_data)
{
  Player *self = user_data;
  g_autofree char *owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (self->core));

  if (!self->tuned || self->quitting)
    return;
  if (owner == NULL)
    schedule_reconnect (self, _("the core left the bus"));
  else if (self->reconnect_id != 0)
    {
      /* a new core is there: no need to wait out the backoff */
      g_clear_handle_id (&self->reconnect_id, g_source_remove);
      player_tune (self);
    }
}

static void
on_core_appeared (GDBusConnection *connection G_GNUC_UNUSED,
                  const char      *name G_GNUC_UNUSED,
                  const char      *owner G_GNUC_UNUSED,
                  gpointer         user_data)
{
  Player *self = user_data;

  g_clear_handle_id (&self->core_watch_id, g_bus_unwatch_name);
  g_clear_handle_id (&self->core_timeout_id, g_source_remove);
  player_tune (self);
}

static gboolean
on_core_timeout (gpointer user_data)
{
  Player *self = user_data;

  self->core_timeout_id = 0;
  player_ui_error (self->ui, _("alluvium-core did not appear on the session bus"));
  player_quit (self, 1);
  return G_SOURCE_REMOVE;
}

static char *
find_core_binary (void)
{
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", NULL);

  if (self_exe != NULL)
    {
      g_autofree char *dir = g_path_get_dirname (self_exe);
      g_autofree char *next_to = g_build_filename (dir, "alluvium-core", NULL);

      if (g_file_test (next_to, G_FILE_TEST_IS_EXECUTABLE))
        return g_steal_pointer (&next_to);
    }
  return g_find_program_in_path ("alluvium-core");
}

/* No D-Bus activation for org.alluvium.Core1: start the daemon ourselves
 * and tune once it owns its name. */
static gboolean
spawn_core (Player *self, GError **error)
{
  g_autofree char *binary = find_core_binary ();
  g_autoptr(GSubprocess) child = NULL;

  if (binary == NULL)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           _("alluvium-core is not running, cannot be activated and was not found"));
      return FALSE;
    }
  {
    /* its log goes to a file of its own, not into our terminal */
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_autofree char *dir = g_build_filename (g_get_user_state_dir (), "alluvium", NULL);
    g_autofree char *log = g_build_filename (dir, "core.log", NULL);
    int fd = -1;

    if (g_mkdir_with_parents (dir, 0700) == 0)
      fd = g_open (log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0)
      g_subprocess_launcher_take_stdout_fd (launcher, fd);
    else
      g_subprocess_launcher_set_flags (launcher, G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                 G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    child = g_subprocess_launcher_spawn (launcher, error, binary, NULL);
    if (child == NULL)
      return FALSE;
    player_ui_message (self->ui, _("Started alluvium-core (its log: %s)"),
                       fd >= 0 ? log : _("none"));
  }
  g_clear_object (&self->core_child);
  self->core_child = g_steal_pointer (&child);
  self->core_watch_id = g_bus_watch_name_on_connection (self->bus, ALV_CORE_BUS_NAME,
                                                        G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                        on_core_appeared, NULL, self, NULL);
  self->core_timeout_id = g_timeout_add_seconds (CORE_START_TIMEOUT, on_core_timeout, self);
  return TRUE;
}

static gboolean
is_transient (const GError *error)
{
  return g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN)
         || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER)
         || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_NO_REPLY)
         || g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SPAWN_CHILD_EXITED)
         || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
         || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED);
}

/* A station picked at the question was refused (the core could not fetch
 * or read its playlist): the question again, rather than an exit that
 * closes the terminal the menu opened.  The answer is read here, blocking:
 * nothing plays yet.  FALSE: asked often enough, give up. */
static gboolean
ask_again (Player *self)
{
  g_autoptr(GError) error = NULL;
  gboolean quit = FALSE;
  char *station;

  if (++self->picks >= MAX_ANSWERS)
    return FALSE;
  station = ask_station (&quit, &error);
  if (station == NULL)
    {
      if (!quit)
        player_ui_error (self->ui, "%s", error->message);
      player_quit (self, quit ? 0 : 1);
      return TRUE;
    }
  g_free (self->station);
  self->station = station;
  player_tune (self);
  return TRUE;
}

static void
on_tuned (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Player *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) save_error = NULL;
  g_autofree char *stream_url = NULL;

  if (!alv_core1_call_tune_finish (ALV_CORE1 (source), &stream_url, result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      self->tune_pending = FALSE;
      g_dbus_error_strip_remote_error (error);
      /* no core and no D-Bus activation: start it, at start-up and
       * after it went away alike (unless the one we started is still
       * coming up) */
      if (g_error_matches (error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) &&
          self->core_watch_id == 0 &&
          (self->core_child == NULL || g_subprocess_get_identifier (self->core_child) == NULL))
        {
          g_autoptr(GError) spawn_error = NULL;

          if (spawn_core (self, &spawn_error))
            return;
          if (!self->tuned)
            {
              player_ui_error (self->ui, "%s", spawn_error->message);
              player_quit (self, 1);
              return;
            }
          g_clear_error (&error);
          error = g_steal_pointer (&spawn_error);
        }
      if (self->tuned && is_transient (error))
        {
          schedule_reconnect (self, error->message);
          return;
        }
      player_ui_error (self->ui, _("Could not tune to %s: %s"), self->station, error->message);
      if (self->picked && !self->tuned && ask_again (self))
        return;
      player_quit (self, 1);
      return;
    }
  self->tune_pending = FALSE;
  if (self->picked && !self->tuned)
    {
      /* the keys from now on (read in raw mode, which the question
       * cannot be asked in) */
      g_clear_pointer (&self->ui, player_ui_free);
      self->ui = player_ui_new (on_key, self);
    }
  if (!self->tuned)
    player_ui_message (self->ui, _("Tuned to %s"), self->station);
  self->tuned = TRUE;
  if (!player_state_save (self->station, self->volume, &save_error))
    g_debug ("Could not save the player state: %s", save_error->message);
  update_now_playing (self);
  play_stream (self, stream_url);
  update_status (self);
}

static void
player_tune (Player *self)
{
  if (self->quitting || self->tune_pending)
    return;
  self->tune_pending = TRUE;
  alv_core1_call_tune (self->core, self->station, self->cancellable, on_tuned, self);
}

/* ---- quitting ---------------------------------------------------------- */

static void
player_quit (Player *self, int exit_code)
{
  if (self->quitting)
    return;
  self->quitting = TRUE;
  self->exit_code = exit_code;
  g_cancellable_cancel (self->cancellable);
  g_clear_handle_id (&self->reconnect_id, g_source_remove);
  g_main_loop_quit (self->loop);
}

static gboolean
on_signal (gpointer user_data)
{
  player_quit (user_data, 0);
  return G_SOURCE_CONTINUE;
}

static void
on_key (int key, gpointer user_data)
{
  Player *self = user_data;

  switch (key)
    {
    case 'q':
    case 'Q':
      player_quit (self, 0);
      break;
    case ' ':
      if (self->target == GST_STATE_PLAYING)
        do_pause (self);
      else
        do_play (self);
      break;
    case '+':
    case '=':
      set_volume (self, self->volume + VOLUME_STEP);
      break;
    case '-':
    case '_':
      set_volume (self, self->volume - VOLUME_STEP);
      break;
    default:
      break;
    }
}

/* ---- MPRIS ------------------------------------------------------------- */

static void mpris_play (gpointer data) { do_play (data); }
static void mpris_pause (gpointer data) { do_pause (data); }
static void mpris_stop (gpointer data) { do_stop (data); }
static void mpris_quit (gpointer data) { player_quit (data, 0); }
static void mpris_set_volume (gpointer data, double v) { set_volume (data, v); }
static gint64 mpris_position (gpointer data) { return player_position (data); }

static void
mpris_open_uri (gpointer data, const char *uri)
{
  Player *self = data;

  if (g_strcmp0 (uri, self->station) == 0)
    return;
  g_free (self->station);
  self->station = g_strdup (uri);
  self->tuned = FALSE;
  self->reconnects = 0;
  player_tune (self);
}

static const PlayerMprisCallbacks mpris_callbacks = {
  mpris_play, mpris_pause, mpris_stop, mpris_quit, mpris_set_volume, mpris_position, mpris_open_uri,
};

/* ---- main -------------------------------------------------------------- */

/* The station to tune to: an http(s) playlist URL as given, the URL a
 * local playlist file names for itself, or (no argument) the last one
 * played.  A local file is never handed to the core: it fetches playlists
 * itself and needs a URL the other listeners can reach too. */
static char *
resolve_station (const char *arg, GError **error)
{
  g_autofree char *scheme = NULL;

  if (arg == NULL)
    {
      g_autofree char *last = player_state_load (NULL);

      if (last == NULL)
        {
          g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                               _("No station given and none played before; "
                                 "give the http or https URL of a station's playlist"));
          return NULL;
        }
      return g_steal_pointer (&last);
    }
  scheme = g_uri_parse_scheme (arg);
  if (scheme != NULL && (g_ascii_strcasecmp (scheme, "http") == 0
                         || g_ascii_strcasecmp (scheme, "https") == 0))
    return g_strdup (arg);
  if ((scheme != NULL && g_ascii_strcasecmp (scheme, "file") == 0)
      || (scheme == NULL && g_file_test (arg, G_FILE_TEST_EXISTS)))
    {
      /* a playlist saved or opened from the file manager (%u gives a
       * path): the core follows the station at the URL the playlist gives
       * for itself, its channel's rdf:about */
      g_autofree char *path = scheme != NULL ? g_filename_from_uri (arg, NULL, NULL) : g_strdup (arg);
      g_autoptr(AlvPlaylist) pl = NULL;
      g_autoptr(GError) local_error = NULL;
      const char *about;

      if (path != NULL)
        pl = alv_playlist_parse_file (path, &local_error);
      about = pl != NULL ? alv_playlist_get_about (pl) : NULL;
      /* (the parser admits only an http or https rdf:about) */
      if (about != NULL && about[0] != '\0')
        {
          g_printerr (_("Opening the station at %s (from %s)\n"), about, arg);
          return g_strdup (about);
        }
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   _("“%s” is a local file that names no station URL (%s); give the http or "
                     "https URL the station publishes its playlist at"), arg,
                   local_error != NULL ? local_error->message
                                       : _("its channel has no http or https rdf:about"));
      return NULL;
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               _("“%s” is not an http or https URL of a station's playlist"), arg);
  return NULL;
}

/* Started without a URL in a terminal (from the desktop menu, say): shows
 * the stations known, the ones played before first, and asks for one
 * until an answer names a station it can tune to, MAX_ANSWERS times at
 * most.  An empty answer or the end of input is "no, thanks": NULL with
 * *quit set. */
static char *
ask_station (gboolean *quit, GError **error)
{
  g_auto(GStrv) recent = player_state_load_recent ();
  g_autoptr(GPtrArray) configured = player_state_load_configured ();
  g_autoptr(GPtrArray) list = player_stations_list ((const char * const *) recent, configured);

  *quit = FALSE;
  if (list->len == 0)
    g_print ("%s\n", _("No stations known yet: type the http or https URL of a station’s "
                       "playlist, or the path of a playlist file. An empty line quits."));
  else
    {
      g_print ("%s\n", _("Stations (an empty line quits):"));
      for (guint i = 0; i < list->len; i++)
        {
          PlayerStation *station = list->pdata[i];

          if (station->name != NULL)
            g_print ("  %2u  %s\n      %s\n", i + 1, station->name, station->url);
          else
            g_print ("  %2u  %s\n", i + 1, station->url);
        }
    }
  for (guint tries = 0; tries < MAX_ANSWERS; tries++)
    {
      char line[ANSWER_MAX];
      g_autofree char *answer = NULL;
      g_autofree char *station = NULL;
      g_autoptr(GError) local_error = NULL;

      g_print ("%s ", list->len > 0 ? _("Pick a number or type a playlist URL:") : _("Playlist URL:"));
      fflush (stdout);
      if (fgets (line, sizeof line, stdin) == NULL)
        {
          g_print ("\n");
          *quit = TRUE;
          return NULL;
        }
      if (strchr (line, '\n') == NULL && !feof (stdin))
        {
          int c;

          /* the rest of an overlong line, up to its end or the input's */
          do
            c = getchar ();
          while (c != '\n' && c != EOF);
          g_printerr ("%s\n", _("That line is too long for a playlist URL"));
          continue;
        }
      switch (player_stations_answer (list, line, g_get_home_dir (), &answer, &local_error))
        {
        case PLAYER_ANSWER_QUIT:
          *quit = TRUE;
          return NULL;
        case PLAYER_ANSWER_INVALID:
          g_printerr ("%s\n", local_error->message);
          break;
        case PLAYER_ANSWER_STATION:
        default:
          station = resolve_station (answer, &local_error);
          if (station != NULL)
            return g_steal_pointer (&station);
          g_printerr ("%s\n", local_error->message);
          break;
        }
    }
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
               _("No station picked after %u answers"), MAX_ANSWERS);
  return NULL;
}

/* Whether any sound output can be opened: the sinks autoaudiosink would
 * pick, each brought to READY (which opens the server or the device). */
static gboolean
have_sound_output (void)
{
  static const char * const sinks[] = { "pipewiresink", "pulsesink", "alsasink", "osssink" };

  for (guint i = 0; i < G_N_ELEMENTS (sinks); i++)
    {
      g_autoptr(GstElement) sink = gst_element_factory_make (sinks[i], NULL);
      GstStateChangeReturn ret;

      if (sink == NULL)
        continue;
      gst_object_ref_sink (sink);
      ret = gst_element_set_state (sink, GST_STATE_READY);
      gst_element_set_state (sink, GST_STATE_NULL);
      if (ret != GST_STATE_CHANGE_FAILURE)
        return TRUE;
    }
  return FALSE;
}

/* A GStreamer error, in terms of what the listener can do about it. */
static char *
explain_gst_error (const GError *error)
{
  if (error->domain == GST_RESOURCE_ERROR &&
      (error->code == GST_RESOURCE_ERROR_OPEN_WRITE || error->code == GST_RESOURCE_ERROR_OPEN_READ_WRITE ||
       error->code == GST_RESOURCE_ERROR_BUSY))
    return g_strdup_printf (_("the sound output cannot be opened (%s): another program may hold "
                              "it; choose another with --audio-sink"), error->message);
  if (error->domain == GST_STREAM_ERROR &&
      (error->code == GST_STREAM_ERROR_TYPE_NOT_FOUND || error->code == GST_STREAM_ERROR_WRONG_TYPE ||
       error->code == GST_STREAM_ERROR_DEMUX || error->code == GST_STREAM_ERROR_DECODE ||
       error->code == GST_STREAM_ERROR_CODEC_NOT_FOUND))
    return g_strdup_printf (_("the station's audio cannot be decoded here (%s): install "
                              "gstreamer1.0-plugins-good and gstreamer1.0-plugins-ugly, or the "
                              "station publishes damaged media"), error->message);
  if (error->domain == GST_RESOURCE_ERROR &&
      (error->code == GST_RESOURCE_ERROR_READ || error->code == GST_RESOURCE_ERROR_NOT_FOUND ||
       error->code == GST_RESOURCE_ERROR_OPEN_READ))
    return g_strdup_printf (_("the core's local stream does not answer (%s)"), error->message);
  return g_strdup (error->message);
}

/* The station a running core plays, or NULL (no core running: none is
 * started just to ask). */
static char *
core_station_now (void)
{
  g_autoptr(GDBusConnection) bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) v = NULL;
  const char *url;

  if (bus == NULL)
    return NULL;
  reply = g_dbus_connection_call_sync (bus, ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", "org.alluvium.Core1", "Station"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                       2000, NULL, NULL);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(v)", &v);
  if (!g_variant_is_of_type (v, G_VARIANT_TYPE_STRING))
    return NULL;
  url = g_variant_get_string (v, NULL);
  return url[0] != '\0' ? g_strdup (url) : NULL;
}

static GstElement *
make_sink (const char *description, GError **error)
{
  GstElement *sink = gst_parse_bin_from_description (description, TRUE, error);

  if (sink == NULL)
    g_prefix_error (error, _("Invalid sink “%s”: "), description);
  return sink;
}

static void
player_clear (Player *self)
{
  if (self->core != NULL)
    g_signal_handlers_disconnect_by_data (self->core, self);
  g_clear_handle_id (&self->status_id, g_source_remove);
  g_clear_handle_id (&self->reconnect_id, g_source_remove);
  g_clear_handle_id (&self->core_watch_id, g_bus_unwatch_name);
  g_clear_handle_id (&self->core_timeout_id, g_source_remove);
  g_clear_object (&self->core_child);
  g_clear_handle_id (&self->bus_watch_id, g_source_remove);
  if (self->playbin != NULL)
    gst_element_set_state (self->playbin, GST_STATE_NULL);
  g_clear_object (&self->playbin);
  /* after the sink that drew into it is gone */
  g_clear_pointer (&self->window, player_window_free);
  g_clear_pointer (&self->mpris, player_mpris_free);
  g_clear_pointer (&self->ui, player_ui_free);
  g_clear_object (&self->core);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->bus);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->missing, g_ptr_array_unref);
  g_free (self->station);
  g_free (self->state_text);
  g_free (self->stream_url);
}

int
main (int argc, char **argv)
{
  g_autofree char *audio_sink = NULL;
  g_autofree char *video_sink = NULL;
  g_auto(GStrv) args = NULL;
  gboolean version = FALSE;
  const GOptionEntry entries[] = {
    { "audio-sink", 'a', 0, G_OPTION_ARG_STRING, &audio_sink,
      N_("Audio sink to use (a gst-launch description, e.g. pulsesink)"), N_("SINK") },
    { "video-sink", 0, 0, G_OPTION_ARG_STRING, &video_sink,
      N_("Video sink to use for video stations (default: autovideosink)"), N_("SINK") },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version and exit"), NULL },
    { G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_STRING_ARRAY, &args, NULL, N_("[PLAYLIST-URL]") },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  const char *localedir = g_getenv ("ALLUVIUM_LOCALEDIR");
  Player self_ = { 0 };
  Player *self = &self_;
  GstBus *bus;

  setlocale (LC_ALL, "");
  /* ALLUVIUM_LOCALEDIR: catalogs not yet installed (the test suite) */
  bindtextdomain (GETTEXT_PACKAGE, localedir != NULL && localedir[0] != '\0' ? localedir : LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  context = g_option_context_new (NULL);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context,
                                _("Tunes alluvium-core to a station and plays it. Without a URL it "
                                  "joins the station the core plays; in a terminal it lists the "
                                  "stations it knows to pick from, else it resumes the last one.\n\n"
                                  "Keys: q quit, space pause/resume, + and - volume."));
  g_option_context_set_description (context,
                                    _("Examples:\n"
                                      "  alluvium-player https://station.example/station.rss\n"
                                      "      tune to the station whose playlist is at that URL\n"
                                      "  alluvium-player ~/Downloads/station.rss\n"
                                      "      a saved playlist: tune to the URL it names for itself\n"
                                      "  alluvium-player\n"
                                      "      pick one of the last 10 stations played or of those in\n"
                                      "      ~/.config/alluvium/stations.conf, /etc/xdg/alluvium/stations.conf\n"
                                      "      and /usr/share/alluvium/stations.conf\n"
                                      "\n"
                                      "See alluvium-player(1)."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  g_option_context_add_group (context, gst_init_get_option_group ());
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("%s\n", error->message);
      return 2;
    }
  if (version)
    {
      g_print ("alluvium-player %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (args != NULL && g_strv_length (args) > 1)
    {
      g_printerr (_("Give at most one playlist URL\n"));
      return 2;
    }
  gst_init (NULL, NULL);

  /* no station given: the one the core plays already (another player's),
   * so that a second player joins it instead of tuning the core away;
   * else the last one played here */
  if (args == NULL)
    self->station = core_station_now ();
  if (self->station != NULL)
    g_printerr (_("Joining the station the core plays: %s\n"), self->station);
  else if (args == NULL && isatty (STDIN_FILENO))
    {
      gboolean quit = FALSE;

      self->station = ask_station (&quit, &error);
      if (self->station == NULL && quit)
        return 0;
      self->picked = TRUE;
    }
  else
    self->station = resolve_station (args != NULL ? args[0] : NULL, &error);
  if (self->station == NULL)
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  self->volume = 1.0;
  g_free (player_state_load (&self->volume));   /* only the volume here */

  self->loop = g_main_loop_new (NULL, FALSE);
  self->cancellable = g_cancellable_new ();
  self->missing = g_ptr_array_new_with_free_func (g_free);
  self->item_position = -1;
  self->target = GST_STATE_NULL;

  self->playbin = gst_element_factory_make ("playbin", NULL);
  if (self->playbin == NULL)
    {
      g_printerr (_("The GStreamer element playbin is missing; install gstreamer1.0-plugins-base\n"));
      player_clear (self);
      return 1;
    }
  gst_object_ref_sink (self->playbin);
  /* nothing to play sound on: say so once, in plain words, and play
   * silently (the station, its titles and the sharing go on) rather than
   * fail or pretend */
  if (audio_sink == NULL && !have_sound_output ())
    {
      g_printerr (_("No sound output found (no PulseAudio or PipeWire server, no ALSA device): "
                    "playing silently. Choose one with --audio-sink.\n"));
      audio_sink = g_strdup ("fakesink sync=true");
    }
  if (audio_sink != NULL)
    {
      GstElement *sink = make_sink (audio_sink, &error);

      if (sink == NULL)
        {
          g_printerr ("%s\n", error->message);
          player_clear (self);
          return 2;
        }
      g_object_set (self->playbin, "audio-sink", sink, NULL);
    }
  if (video_sink != NULL)
    {
      GstElement *sink = make_sink (video_sink, &error);

      if (sink == NULL)
        {
          g_printerr ("%s\n", error->message);
          player_clear (self);
          return 2;
        }
      g_object_set (self->playbin, "video-sink", sink, NULL);
    }
  g_object_set (self->playbin, "volume", self->volume, NULL);
  self->window = player_window_new (on_window_closed, self);
  bus = gst_element_get_bus (self->playbin);
  gst_bus_set_sync_handler (bus, on_bus_sync, self, NULL);
  self->bus_watch_id = gst_bus_add_watch (bus, on_bus_message, self);
  gst_object_unref (bus);

  self->bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  if (self->bus == NULL)
    {
      g_printerr (_("Cannot reach the session bus: %s\n"), error->message);
      player_clear (self);
      return 1;
    }
  /* without DO_NOT_AUTO_START, D-Bus activation starts the core if needed */
  self->core = alv_core1_proxy_new_sync (self->bus, G_DBUS_PROXY_FLAGS_NONE, ALV_CORE_BUS_NAME,
                                         ALV_CORE_OBJECT_PATH, NULL, &error);
  if (self->core == NULL)
    {
      g_printerr (_("Cannot talk to alluvium-core: %s\n"), error->message);
      player_clear (self);
      return 1;
    }
  g_signal_connect (self->core, "g-properties-changed", G_CALLBACK (on_core_properties_changed), self);
  g_signal_connect (self->core, "notify::g-name-owner", G_CALLBACK (on_core_owner_changed), self);

  /* a station picked at the question may be refused and the question
   * asked again: keys (raw mode) only once it is tuned */
  self->ui = player_ui_new (self->picked ? NULL : on_key, self);
  self->mpris = player_mpris_new (self->bus, &mpris_callbacks, self, &error);
  if (self->mpris == NULL)
    {
      player_ui_error (self->ui, _("MPRIS is not available: %s"), error->message);
      g_clear_error (&error);
    }
  else
    player_mpris_set_volume (self->mpris, self->volume);

  g_unix_signal_add (SIGINT, on_signal, self);
  g_unix_signal_add (SIGTERM, on_signal, self);
  g_unix_signal_add (SIGHUP, on_signal, self);
  self->status_id = g_timeout_add_seconds (1, on_status_tick, self);

  player_tune (self);
  g_main_loop_run (self->loop);

  if (self->tuned)
    {
      g_autoptr(GError) stop_error = NULL;
      g_autoptr(GError) save_error = NULL;

      /* remember the volume as it is now */
      if (!player_state_save (self->station, self->volume, &save_error))
        g_debug ("Could not save the player state: %s", save_error->message);

      /* the core serves one station for all its clients; we were it */
      g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (self->core), STOP_TIMEOUT_MS);
      if (!alv_core1_call_stop_sync (self->core, NULL, &stop_error)
          && !g_error_matches (stop_error, ALV_CORE_ERROR, ALV_CORE_ERROR_NOT_TUNED))
        g_debug ("Stop: %s", stop_error->message);
    }
  {
    int code = self->exit_code;

    /* the pipeline is not taken down, and the process ends at once: in
     * GStreamer 1.22 (Debian 12) souphttpsrc's own session thread can
     * crash in libsoup while the pipeline goes to NULL and its streaming
     * thread stops (a player killed by SIGSEGV at quit, about one exit in
     * 30 here; backtrace in the commit); gst_deinit() and exit handlers
     * raced that thread the same way (a player that hung at exit).  The
     * terminal is restored and what was printed flushed; the system
     * frees the rest, the core has been told to stop already */
    g_clear_pointer (&self->ui, player_ui_free);
    fflush (stdout);
    fflush (stderr);
    _exit (code);
  }
}
