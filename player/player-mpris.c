/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The MPRIS2 D-Bus object of alluvium-player.  Both interfaces are
 * registered by hand from embedded introspection XML with
 * g_dbus_connection_register_object(); property changes are sent as
 * org.freedesktop.DBus.Properties.PropertiesChanged.  A broadcast cannot be
 * sought or skipped, so CanSeek/CanGoNext/CanGoPrevious are false and those
 * methods do nothing, as the specification asks.  If another player already
 * owns org.mpris.MediaPlayer2.alluvium, the per-instance name
 * org.mpris.MediaPlayer2.alluvium.instance<pid> is taken instead.
 *
 * PlaybackStatus and Metadata follow the core as well as the player: MPRIS
 * has no "off air", so while the player wants to play but the core has
 * nothing on air (a gap in the schedule, the playlist run out, an error,
 * not tuned), the object says Stopped with no track, and the item again
 * once the core plays.  The rule is player_mpris_status_for(); the reasons
 * are in player/README.md.
 */
#define G_LOG_DOMAIN "alluvium-player"
#include "config.h"

#include "player-mpris.h"

#include <unistd.h>

#include <glib/gi18n-lib.h>

#include "alv-dbus.h"

static const char mpris_xml[] =
  "<node>"
  "  <interface name='org.mpris.MediaPlayer2'>"
  "    <method name='Raise'/>"
  "    <method name='Quit'/>"
  "    <property name='CanQuit' type='b' access='read'/>"
  "    <property name='CanRaise' type='b' access='read'/>"
  "    <property name='HasTrackList' type='b' access='read'/>"
  "    <property name='Identity' type='s' access='read'/>"
  "    <property name='DesktopEntry' type='s' access='read'/>"
  "    <property name='SupportedUriSchemes' type='as' access='read'/>"
  "    <property name='SupportedMimeTypes' type='as' access='read'/>"
  "  </interface>"
  "  <interface name='org.mpris.MediaPlayer2.Player'>"
  "    <method name='Next'/>"
  "    <method name='Previous'/>"
  "    <method name='Pause'/>"
  "    <method name='PlayPause'/>"
  "    <method name='Stop'/>"
  "    <method name='Play'/>"
  "    <method name='Seek'><arg name='Offset' type='x' direction='in'/></method>"
  "    <method name='SetPosition'>"
  "      <arg name='TrackId' type='o' direction='in'/>"
  "      <arg name='Position' type='x' direction='in'/>"
  "    </method>"
  "    <method name='OpenUri'><arg name='Uri' type='s' direction='in'/></method>"
  "    <signal name='Seeked'><arg name='Position' type='x'/></signal>"
  "    <property name='PlaybackStatus' type='s' access='read'/>"
  "    <property name='Rate' type='d' access='read'/>"
  "    <property name='Metadata' type='a{sv}' access='read'/>"
  "    <property name='Volume' type='d' access='readwrite'/>"
  "    <property name='Position' type='x' access='read'/>"
  "    <property name='MinimumRate' type='d' access='read'/>"
  "    <property name='MaximumRate' type='d' access='read'/>"
  "    <property name='CanGoNext' type='b' access='read'/>"
  "    <property name='CanGoPrevious' type='b' access='read'/>"
  "    <property name='CanPlay' type='b' access='read'/>"
  "    <property name='CanPause' type='b' access='read'/>"
  "    <property name='CanSeek' type='b' access='read'/>"
  "    <property name='CanControl' type='b' access='read'/>"
  "  </interface>"
  "</node>";

#define ROOT_IFACE   "org.mpris.MediaPlayer2"
#define PLAYER_IFACE "org.mpris.MediaPlayer2.Player"

struct _PlayerMpris
{
  GDBusConnection *connection;
  GDBusNodeInfo *info;
  guint root_id;
  guint player_id;
  guint owner_id;
  gboolean tried_instance;
  const PlayerMprisCallbacks *callbacks;
  gpointer user_data;

  char *status;         /* what the player does: Playing, Paused, Stopped */
  char *core_state;     /* the core's State, or NULL before there is one */
  GVariant *metadata;   /* the item's, floating-free, a{sv} */
  GVariant *no_track;   /* Metadata when nothing is on air */
  double volume;
  guint track_n;
};

static GVariant *
empty_metadata (void)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "mpris:trackid",
                         g_variant_new_object_path ("/org/mpris/MediaPlayer2/TrackList/NoTrack"));
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/**
 * player_mpris_status_for:
 * @requested: what the player does: "Playing", "Paused" or "Stopped"
 * @core_state: (nullable): the core's State (org.alluvium.Core1), or
 *   %NULL when no core has said
 *
 * The PlaybackStatus to show: a pause or stop of the player's own shows
 * as it is; a player that plays shows Playing only while the core has an
 * item on air or is getting one (playing, buffering, resolving), Stopped
 * while it is off air, failed or not tuned.
 *
 * Returns: (transfer none): "Playing", "Paused" or "Stopped"
 */
const char *
player_mpris_status_for (const char *requested,
                         const char *core_state)
{
  AlvCoreState state;

  if (g_strcmp0 (requested, "Playing") != 0)
    return g_strcmp0 (requested, "Paused") == 0 ? "Paused" : "Stopped";
  if (core_state == NULL || !alv_core_state_from_string (core_state, &state))
    return "Playing";
  switch (state)
    {
    case ALV_CORE_STATE_GAP:
    case ALV_CORE_STATE_ERROR:
    case ALV_CORE_STATE_IDLE:
      return "Stopped";
    case ALV_CORE_STATE_RESOLVING:
    case ALV_CORE_STATE_BUFFERING:
    case ALV_CORE_STATE_PLAYING:
    default:
      return "Playing";
    }
}

static const char *
shown_status (PlayerMpris *self)
{
  return player_mpris_status_for (self->status, self->core_state);
}

/* The item while the core has one on air, whatever the player does with
 * it; no track otherwise. */
static GVariant *
shown_metadata (PlayerMpris *self)
{
  if (g_str_equal (player_mpris_status_for ("Playing", self->core_state), "Playing"))
    return self->metadata;
  return self->no_track;
}

static void
method_call (GDBusConnection       *connection G_GNUC_UNUSED,
             const char            *sender G_GNUC_UNUSED,
             const char            *object_path G_GNUC_UNUSED,
             const char            *interface_name,
             const char            *method_name,
             GVariant              *parameters,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  PlayerMpris *self = user_data;
  const PlayerMprisCallbacks *cb = self->callbacks;

  if (g_str_equal (interface_name, ROOT_IFACE))
    {
      if (g_str_equal (method_name, "Quit") && cb->quit != NULL)
        {
          g_dbus_method_invocation_return_value (invocation, NULL);
          cb->quit (self->user_data);
          return;
        }
      /* Raise: there is no window to raise */
      g_dbus_method_invocation_return_value (invocation, NULL);
      return;
    }

  if (g_str_equal (method_name, "Play") && cb->play != NULL)
    cb->play (self->user_data);
  else if (g_str_equal (method_name, "Pause") && cb->pause != NULL)
    cb->pause (self->user_data);
  else if (g_str_equal (method_name, "Stop") && cb->stop != NULL)
    cb->stop (self->user_data);
  else if (g_str_equal (method_name, "PlayPause"))
    {
      /* the player's own state: off air, it still plays (silence) */
      if (g_strcmp0 (self->status, "Playing") == 0)
        {
          if (cb->pause != NULL)
            cb->pause (self->user_data);
        }
      else if (cb->play != NULL)
        cb->play (self->user_data);
    }
  else if (g_str_equal (method_name, "OpenUri"))
    {
      const char *uri = NULL;

      g_variant_get (parameters, "(&s)", &uri);
      if (!g_str_has_prefix (uri, "http://") && !g_str_has_prefix (uri, "https://"))
        {
          g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS,
                                                 _("Not an http or https URL: %s"), uri);
          return;
        }
      if (cb->open_uri != NULL)
        cb->open_uri (self->user_data, uri);
    }
  /* Next, Previous, Seek, SetPosition: a broadcast has none of them */
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static GVariant *
get_property (GDBusConnection *connection G_GNUC_UNUSED,
              const char      *sender G_GNUC_UNUSED,
              const char      *object_path G_GNUC_UNUSED,
              const char      *interface_name,
              const char      *property_name,
              GError         **error,
              gpointer         user_data)
{
  PlayerMpris *self = user_data;

  if (g_str_equal (interface_name, ROOT_IFACE))
    {
      static const char *const schemes[] = { "http", "https", NULL };
      static const char *const mimes[] = { "application/x-alluvium", NULL };

      if (g_str_equal (property_name, "CanQuit"))
        return g_variant_new_boolean (TRUE);
      if (g_str_equal (property_name, "CanRaise") || g_str_equal (property_name, "HasTrackList"))
        return g_variant_new_boolean (FALSE);
      if (g_str_equal (property_name, "Identity"))
        return g_variant_new_string ("Alluvium");
      if (g_str_equal (property_name, "DesktopEntry"))
        return g_variant_new_string ("org.alluvium.player");
      if (g_str_equal (property_name, "SupportedUriSchemes"))
        return g_variant_new_strv (schemes, -1);
      if (g_str_equal (property_name, "SupportedMimeTypes"))
        return g_variant_new_strv (mimes, -1);
    }
  else
    {
      if (g_str_equal (property_name, "PlaybackStatus"))
        return g_variant_new_string (shown_status (self));
      if (g_str_equal (property_name, "Rate") || g_str_equal (property_name, "MinimumRate")
          || g_str_equal (property_name, "MaximumRate"))
        return g_variant_new_double (1.0);
      if (g_str_equal (property_name, "Metadata"))
        return g_variant_ref (shown_metadata (self));
      if (g_str_equal (property_name, "Volume"))
        return g_variant_new_double (self->volume);
      if (g_str_equal (property_name, "Position"))
        {
          gint64 pos = 0;

          if (self->callbacks->get_position != NULL)
            pos = MAX (self->callbacks->get_position (self->user_data), 0);
          return g_variant_new_int64 (pos);
        }
      if (g_str_equal (property_name, "CanPlay") || g_str_equal (property_name, "CanPause")
          || g_str_equal (property_name, "CanControl"))
        return g_variant_new_boolean (TRUE);
      if (g_str_equal (property_name, "CanGoNext") || g_str_equal (property_name, "CanGoPrevious")
          || g_str_equal (property_name, "CanSeek"))
        return g_variant_new_boolean (FALSE);
    }
  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
               "Unknown property %s.%s", interface_name, property_name);
  return NULL;
}

static gboolean
set_property (GDBusConnection *connection G_GNUC_UNUSED,
              const char      *sender G_GNUC_UNUSED,
              const char      *object_path G_GNUC_UNUSED,
              const char      *interface_name,
              const char      *property_name,
              GVariant        *value,
              GError         **error,
              gpointer         user_data)
{
  PlayerMpris *self = user_data;

  if (g_str_equal (interface_name, PLAYER_IFACE) && g_str_equal (property_name, "Volume"))
    {
      double v = CLAMP (g_variant_get_double (value), 0.0, 1.0);

      if (self->callbacks->set_volume != NULL)
        self->callbacks->set_volume (self->user_data, v);
      player_mpris_set_volume (self, v);
      return TRUE;
    }
  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_PROPERTY_READ_ONLY,
               "Property %s.%s is read-only", interface_name, property_name);
  return FALSE;
}

static const GDBusInterfaceVTable vtable = { method_call, get_property, set_property, { 0 } };

static void
emit_changed (PlayerMpris *self, const char *name, GVariant *value)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", name, value);
  g_dbus_connection_emit_signal (self->connection, NULL, PLAYER_MPRIS_OBJECT_PATH,
                                 "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                 g_variant_new ("(sa{sv}as)", PLAYER_IFACE, &b, NULL),
                                 NULL);
}

/* Announces what a change of the player's or the core's state changed in
 * what the object shows, from what it showed before (@old_status,
 * @old_metadata: borrowed, still alive). */
static void
announce_shown (PlayerMpris *self,
                const char  *old_status,
                GVariant    *old_metadata)
{
  const char *status = shown_status (self);
  GVariant *metadata = shown_metadata (self);

  if (!g_str_equal (old_status, status))
    emit_changed (self, "PlaybackStatus", g_variant_new_string (status));
  if (old_metadata != metadata && !g_variant_equal (old_metadata, metadata))
    emit_changed (self, "Metadata", metadata);
}

static void
on_name_lost (GDBusConnection *connection, const char *name, gpointer user_data)
{
  PlayerMpris *self = user_data;
  g_autofree char *instance = NULL;

  if (connection == NULL || self->tried_instance)
    {
      g_warning ("Could not own the MPRIS name %s", name);
      return;
    }
  /* another player has the plain name: take the per-instance one */
  self->tried_instance = TRUE;
  instance = g_strdup_printf ("%s.instance%d", PLAYER_MPRIS_BUS_NAME, (int) getpid ());
  g_bus_unown_name (self->owner_id);
  self->owner_id = g_bus_own_name_on_connection (connection, instance, G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                                 NULL, on_name_lost, self, NULL);
}

/**
 * player_mpris_new:
 * @connection: the session bus
 * @callbacks: (not nullable): what to do on requests; must outlive the object
 * @user_data: passed to @callbacks
 * @error: return location for a #GError
 *
 * Registers the MPRIS object and asks for the bus name.
 *
 * Returns: (transfer full) (nullable): the MPRIS object, or %NULL with @error set
 */
PlayerMpris *
player_mpris_new (GDBusConnection            *connection,
                  const PlayerMprisCallbacks *callbacks,
                  gpointer                    user_data,
                  GError                    **error)
{
  g_autoptr(PlayerMpris) self = g_new0 (PlayerMpris, 1);

  self->connection = g_object_ref (connection);
  self->callbacks = callbacks;
  self->user_data = user_data;
  self->status = g_strdup ("Stopped");
  self->metadata = empty_metadata ();
  self->no_track = empty_metadata ();
  self->volume = 1.0;
  self->info = g_dbus_node_info_new_for_xml (mpris_xml, error);
  if (self->info == NULL)
    return NULL;
  self->root_id = g_dbus_connection_register_object (connection, PLAYER_MPRIS_OBJECT_PATH,
                                                     self->info->interfaces[0], &vtable,
                                                     self, NULL, error);
  if (self->root_id == 0)
    return NULL;
  self->player_id = g_dbus_connection_register_object (connection, PLAYER_MPRIS_OBJECT_PATH,
                                                       self->info->interfaces[1], &vtable,
                                                       self, NULL, error);
  if (self->player_id == 0)
    return NULL;
  self->owner_id = g_bus_own_name_on_connection (connection, PLAYER_MPRIS_BUS_NAME,
                                                 G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                                 NULL, on_name_lost, self, NULL);
  return g_steal_pointer (&self);
}

/**
 * player_mpris_free:
 * @mpris: (transfer full): the MPRIS object
 *
 * Gives the name up and unregisters the object.
 */
void
player_mpris_free (PlayerMpris *mpris)
{
  if (mpris == NULL)
    return;
  if (mpris->owner_id != 0)
    g_bus_unown_name (mpris->owner_id);
  if (mpris->root_id != 0)
    g_dbus_connection_unregister_object (mpris->connection, mpris->root_id);
  if (mpris->player_id != 0)
    g_dbus_connection_unregister_object (mpris->connection, mpris->player_id);
  g_clear_pointer (&mpris->info, g_dbus_node_info_unref);
  g_clear_pointer (&mpris->metadata, g_variant_unref);
  g_clear_pointer (&mpris->no_track, g_variant_unref);
  g_free (mpris->status);
  g_free (mpris->core_state);
  g_object_unref (mpris->connection);
  g_free (mpris);
}

/**
 * player_mpris_set_playback_status:
 * @mpris: the MPRIS object
 * @status: "Playing", "Paused" or "Stopped"
 *
 * Sets what the player does, announcing a change of PlaybackStatus
 * (which also depends on the core's state).
 */
void
player_mpris_set_playback_status (PlayerMpris *mpris, const char *status)
{
  const char *old_status = shown_status (mpris);

  if (g_strcmp0 (mpris->status, status) == 0)
    return;
  g_free (mpris->status);
  mpris->status = g_strdup (status);
  announce_shown (mpris, old_status, shown_metadata (mpris));
}

/**
 * player_mpris_set_core_state:
 * @mpris: the MPRIS object
 * @core_state: (nullable): the core's State, or %NULL when unknown
 *
 * Tells the object what the core does, announcing what that changes in
 * PlaybackStatus and Metadata (see player_mpris_status_for()).
 */
void
player_mpris_set_core_state (PlayerMpris *mpris, const char *core_state)
{
  const char *old_status;
  GVariant *old_metadata;

  if (g_strcmp0 (mpris->core_state, core_state) == 0)
    return;
  /* a literal, and one of the two variants @mpris keeps */
  old_status = shown_status (mpris);
  old_metadata = shown_metadata (mpris);
  g_free (mpris->core_state);
  mpris->core_state = g_strdup (core_state);
  announce_shown (mpris, old_status, old_metadata);
}

/**
 * player_mpris_set_metadata:
 * @mpris: the MPRIS object
 * @title: (nullable): xesam:title
 * @creator: (nullable): the only xesam:artist
 * @url: (nullable): xesam:url
 *
 * Sets Metadata for a new item, with a new mpris:trackid, announcing it if
 * anything changed.
 */
void
player_mpris_set_metadata (PlayerMpris *mpris,
                           const char  *title,
                           const char  *creator,
                           const char  *url)
{
  GVariantBuilder b;
  g_autofree char *track = NULL;
  g_autoptr(GVariant) metadata = NULL;
  const char *old_title = NULL;
  const char *old_url = NULL;

  g_variant_lookup (mpris->metadata, "xesam:title", "&s", &old_title);
  g_variant_lookup (mpris->metadata, "xesam:url", "&s", &old_url);
  if (g_strcmp0 (old_title, title) == 0 && g_strcmp0 (old_url, url) == 0)
    return;
  if (title == NULL && url == NULL)
    metadata = empty_metadata ();
  else
    {
      track = g_strdup_printf ("/org/alluvium/Player/Track/%u", ++mpris->track_n);
      g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&b, "{sv}", "mpris:trackid", g_variant_new_object_path (track));
      if (title != NULL)
        g_variant_builder_add (&b, "{sv}", "xesam:title", g_variant_new_string (title));
      if (creator != NULL && creator[0] != '\0')
        {
          const char *artists[] = { creator, NULL };

          g_variant_builder_add (&b, "{sv}", "xesam:artist", g_variant_new_strv (artists, -1));
        }
      if (url != NULL)
        g_variant_builder_add (&b, "{sv}", "xesam:url", g_variant_new_string (url));
      metadata = g_variant_ref_sink (g_variant_builder_end (&b));
    }
  {
    /* the item's metadata shows only while the core has it on air */
    g_autoptr(GVariant) old = g_variant_ref (shown_metadata (mpris));

    g_clear_pointer (&mpris->metadata, g_variant_unref);
    mpris->metadata = g_variant_ref (metadata);
    announce_shown (mpris, shown_status (mpris), old);
  }
}

/**
 * player_mpris_set_volume:
 * @mpris: the MPRIS object
 * @volume: 0..1
 *
 * Sets Volume, announcing a change.
 */
void
player_mpris_set_volume (PlayerMpris *mpris, double volume)
{
  if (G_APPROX_VALUE (mpris->volume, volume, 1e-6))
    return;
  mpris->volume = volume;
  emit_changed (mpris, "Volume", g_variant_new_double (volume));
}
