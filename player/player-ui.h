/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The terminal face of alluvium-player: one status line redrawn in place
 * when stdout is a terminal (plain log lines on change otherwise), messages
 * printed above it, and single-key commands read in raw mode when stdin is
 * a terminal.  The terminal mode is restored by player_ui_free() and, as a
 * last resort, at exit.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * PlayerUiStatus:
 * @station: station name or URL, or %NULL
 * @title: title of the item now playing, or %NULL
 * @creator: creator of the item now playing, or %NULL
 * @position_us: time into the item in microseconds, or -1 when unknown
 * @buffering: buffering percentage, or -1 when not buffering
 * @state: translated playback state ("Playing", "Paused", ...)
 * @peers: peers connected
 * @peer_share: share of bytes from peers in 0..1, or -1 when unknown
 * @volume: output volume in 0..1
 * @reachable: the core's peer-port-reachable ("yes", "no", "unknown"), or
 *   %NULL
 * @mapping: the core's peer-port-mapping ("upnp", "natpmp", "pcp",
 *   "none"), or %NULL
 *
 * What the status line shows.
 */
typedef struct
{
  const char *station;
  const char *title;
  const char *creator;
  gint64 position_us;
  int buffering;
  const char *state;
  gint64 length_us;          /* the item's slot; < 0: unknown */
  guint peers;               /* peers known for the item */
  gint peers_active;         /* exchanging with now; < 0: unknown */
  gint64 down_rate;          /* bytes/s; < 0: unknown */
  gint64 up_rate;
  double peer_share;         /* of the item's bytes; < 0: none yet */
  double volume;
  const char *reachable;
  const char *mapping;
} PlayerUiStatus;

typedef struct _PlayerUi PlayerUi;

typedef void (*PlayerUiKeyFunc) (int key, gpointer user_data);

PlayerUi *player_ui_new        (PlayerUiKeyFunc        key_func,
                                gpointer               user_data);
void      player_ui_free       (PlayerUi              *ui);
gboolean  player_ui_is_tty     (PlayerUi              *ui);
void      player_ui_update     (PlayerUi              *ui,
                                const PlayerUiStatus  *status);
void      player_ui_message    (PlayerUi              *ui,
                                const char            *format,
                                ...) G_GNUC_PRINTF (2, 3);
void      player_ui_error      (PlayerUi              *ui,
                                const char            *format,
                                ...) G_GNUC_PRINTF (2, 3);
char     *player_ui_format_status (const PlayerUiStatus *status,
                                   gboolean              with_position);
char     *player_ui_format_sharing (const char          *reachable,
                                    const char          *mapping);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PlayerUi, player_ui_free)

G_END_DECLS
