/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The player's small state file.  It is written only after the core
 * accepted a station, so a mistyped URL never replaces a good one, and
 * atomically (g_key_file_save_to_file() writes a new file and renames it
 * over the old), so a player killed while saving leaves the old list.  A
 * missing or unreadable file simply means "nothing to resume".
 *
 * The stations.conf files are read from, in this order, the user's config
 * directory, the system's ($XDG_CONFIG_DIRS, /etc/xdg: the administrator's)
 * and the data directories ($XDG_DATA_DIRS: what packages install, as
 * /usr/share/alluvium/stations.conf); a URL is listed once, as the first
 * file names it.
 */
#define G_LOG_DOMAIN "alluvium-player"
#include "config.h"

#include "player-state.h"

#include <errno.h>

#include <glib/gstdio.h>
#include <glib/gi18n-lib.h>

#include "player-stations.h"

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
 * player_state_load_recent:
 *
 * Returns: (transfer full) (nullable): the stations played before, the
 *   last one first, or %NULL when there are none
 */
GStrv
player_state_load_recent (void)
{
  g_autofree char *path = player_state_path ();
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_auto(GStrv) recent = NULL;
  g_autofree char *station = NULL;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, NULL))
    return NULL;
  recent = g_key_file_get_string_list (kf, GROUP, "recent", NULL, NULL);
  station = g_key_file_get_string (kf, GROUP, "station", NULL);
  /* a file from before the list has the last station alone */
  if (station != NULL && station[0] != '\0')
    return player_stations_remember ((const char * const *) recent, station,
                                     PLAYER_STATIONS_MAX_RECENT);
  return g_steal_pointer (&recent);
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
  g_auto(GStrv) recent = player_state_load_recent ();
  g_auto(GStrv) remembered = player_stations_remember ((const char * const *) recent, station,
                                                       PLAYER_STATIONS_MAX_RECENT);

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   "%s: %s", dir, g_strerror (saved));
      return FALSE;
    }
  g_key_file_set_string (kf, GROUP, "station", station);
  g_key_file_set_string_list (kf, GROUP, "recent", (const char * const *) remembered,
                              g_strv_length (remembered));
  g_key_file_set_double (kf, GROUP, "volume", volume);
  return g_key_file_save_to_file (kf, path, error);
}

static void
load_conf (const char *dir, GPtrArray *into)
{
  g_autofree char *path = g_build_filename (dir, "alluvium", "stations.conf", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  gsize length;

  if (!g_file_get_contents (path, &text, &length, &error))
    {
      /* (a directory of the list that is none, as /dev/null: no file) */
      if (!g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOENT)
          && !g_error_matches (error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR))
        g_message (_("Ignoring the station list %s: %s"), path, error->message);
      return;
    }
  if (!player_stations_parse_conf (text, length, into, &error))
    g_message (_("Ignoring the station list %s: %s"), path, error->message);
}

/**
 * player_state_load_configured:
 *
 * Returns: (transfer full) (element-type PlayerStation): the stations the
 *   stations.conf files name, each URL once
 */
GPtrArray *
player_state_load_configured (void)
{
  GPtrArray *stations = g_ptr_array_new_with_free_func ((GDestroyNotify) player_station_free);
  const char * const *config_dirs = g_get_system_config_dirs ();
  const char * const *data_dirs = g_get_system_data_dirs ();

  load_conf (g_get_user_config_dir (), stations);
  for (guint i = 0; config_dirs[i] != NULL; i++)
    load_conf (config_dirs[i], stations);
  for (guint i = 0; data_dirs[i] != NULL; i++)
    load_conf (data_dirs[i], stations);
  return stations;
}
