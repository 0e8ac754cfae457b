/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What alluvium-player remembers between runs: the last station tuned and
 * the output volume, in $XDG_STATE_HOME/alluvium/player.ini (a GKeyFile),
 * so that running the player without an argument resumes that station.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char     *player_state_path (void);
char     *player_state_load (double      *volume_out);
gboolean  player_state_save (const char  *station,
                             double       volume,
                             GError     **error);

G_END_DECLS
