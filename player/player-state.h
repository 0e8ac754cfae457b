/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The player's files.  What alluvium-player remembers between runs: the
 * last stations tuned (the last one first) and the output volume, in
 * $XDG_STATE_HOME/alluvium/player.ini (a GKeyFile), so that running the
 * player without an argument resumes the last station or offers them to
 * pick from.  And the stations.conf files that list stations to offer.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char     *player_state_path (void);
char     *player_state_load (double      *volume_out);
GStrv     player_state_load_recent (void);
gboolean  player_state_save (const char  *station,
                             double       volume,
                             GError     **error);

GPtrArray *player_state_load_configured (void);

G_END_DECLS
