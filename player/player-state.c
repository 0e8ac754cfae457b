/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The player's small state file.  It is written only after the core
 * accepted a station, so a mistyped URL never replaces a good one.  A
 * missing or unreadable file simply means "nothing to resume".
 */
#define G_LOG_DOMAIN "alluvium-player"
#include "config.h"

#include "player-state.h"

#include <errno.h>

#include <glib/gstdio.h>

#define GROUP "player"

/**
 * player_state_path:
 *
 * Returns: (transfer full): the path of the state file
 */
char *
player_state_path (void)
{
  return g_build_filename (g_get_user_state_dir (), "alluvium", "player.ini", NULL);
}

/**
 * player_state_load:
 * @volume_out: (out) (optional): the volume saved, left alone if none
 *
 * Returns: (transfer full) (nullable): the last station's playlist URL, or
 *   %NULL when there is none
 */
char *
player_state_load (double *volume_out)
{
  g_autofree char *path = player_state_path ();
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *station = NULL;
  double volume;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return NULL;
  volume = g_key_file_get_double (kf, GROUP, "volume", &error);
  if (error == NULL && volume_out != NULL && volume >= 0.0 && volume <= 1.0)
    *volume_out = volume;
  station = g_key_file_get_string (kf, GROUP, "station", NULL);
  if (station == NULL || station[0] == '\0')
    return NULL;
  return g_steal_pointer (&station);
}

/**
 * player_state_save:
 * @station: the playlist URL tuned to
 * @volume: the output volume
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the state file was written
 */
gboolean
player_state_save (const char *station, double volume, GError **error)
{
  g_autofree char *path = player_state_path ();
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(GKeyFile) kf = g_key_file_new ();

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "%s: %s", dir, g_strerror (saved));
      return FALSE;
    }
  g_key_file_set_string (kf, GROUP, "station", station);
  g_key_file_set_double (kf, GROUP, "volume", volume);
  return g_key_file_save_to_file (kf, path, error);
}
