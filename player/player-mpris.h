/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MPRIS2 for alluvium-player: the org.mpris.MediaPlayer2 root and
 * org.mpris.MediaPlayer2.Player interfaces at /org/mpris/MediaPlayer2,
 * under the name org.mpris.MediaPlayer2.alluvium, so that media keys, shell
 * widgets and playerctl control the player.  The player pushes its state in
 * with the setters; requests from the bus come back through the callbacks.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PLAYER_MPRIS_BUS_NAME    "org.mpris.MediaPlayer2.alluvium"
#define PLAYER_MPRIS_OBJECT_PATH "/org/mpris/MediaPlayer2"

/**
 * PlayerMprisCallbacks:
 * @play: Play (and PlayPause while paused or stopped)
 * @pause: Pause (and PlayPause while playing)
 * @stop: Stop
 * @quit: Quit
 * @set_volume: the Volume property was written (0..1)
 * @get_position: returns the time into the item in µs (Position)
 * @open_uri: OpenUri with an http(s) URL
 *
 * What the bus may ask of the player.
 */
typedef struct
{
  void   (*play)         (gpointer user_data);
  void   (*pause)        (gpointer user_data);
  void   (*stop)         (gpointer user_data);
  void   (*quit)         (gpointer user_data);
  void   (*set_volume)   (gpointer user_data,
                          double   volume);
  gint64 (*get_position) (gpointer user_data);
  void   (*open_uri)     (gpointer user_data,
                          const char *uri);
} PlayerMprisCallbacks;

typedef struct _PlayerMpris PlayerMpris;

PlayerMpris *player_mpris_new                 (GDBusConnection            *connection,
                                               const PlayerMprisCallbacks *callbacks,
                                               gpointer                    user_data,
                                               GError                    **error);
void         player_mpris_free                (PlayerMpris                *mpris);
void         player_mpris_set_playback_status (PlayerMpris                *mpris,
                                               const char                 *status);
void         player_mpris_set_core_state      (PlayerMpris                *mpris,
                                               const char                 *core_state);
const char  *player_mpris_status_for          (const char                 *requested,
                                               const char                 *core_state);
void         player_mpris_set_metadata        (PlayerMpris                *mpris,
                                               const char                 *title,
                                               const char                 *creator,
                                               const char                 *url);
void         player_mpris_set_volume          (PlayerMpris                *mpris,
                                               double                      volume);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PlayerMpris, player_mpris_free)

G_END_DECLS
