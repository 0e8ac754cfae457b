/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The station list and the answer to the player's question, as rules over
 * strings: which stations, in what order, each once, and what a line
 * typed at "Pick a number or type a playlist URL" means.  A station is
 * known by its playlist URL; the list shows the ones played before first
 * (the last one played on top), then those the stations.conf files name,
 * in the order the files were read.
 */
#define G_LOG_DOMAIN "alluvium-player"
#include "config.h"

#include "player-stations.h"

#include <string.h>

#include <glib/gi18n-lib.h>
#include <gio/gio.h>

PlayerStation *
player_station_new (const char *name,
                    const char *url)
{
  PlayerStation *station = g_new0 (PlayerStation, 1);

  station->name = g_strdup (name);
  station->url = g_strdup (url);
  return station;
}

void
player_station_free (PlayerStation *station)
{
  if (station == NULL)
    return;
  g_free (station->name);
  g_free (station->url);
  g_free (station);
}

/**
 * player_stations_is_url:
 * @text: (nullable): a string
 *
 * Returns: whether @text is an http or https URL (the core checks the
 *   rest when it fetches the playlist)
 */
gboolean
player_stations_is_url (const char *text)
{
  g_autofree char *scheme = text != NULL ? g_uri_parse_scheme (text) : NULL;

  return scheme != NULL
         && (g_ascii_strcasecmp (scheme, "http") == 0 || g_ascii_strcasecmp (scheme, "https") == 0);
}

/**
 * player_stations_remember:
 * @recent: (nullable): the stations played before, most recent first
 * @url: the station played now
 * @max: how many to keep, at least 1
 *
 * Returns: (transfer full): @url, then @recent without @url (and without
 *   repeats or empty entries), at most @max entries
 */
GStrv
player_stations_remember (const char * const *recent,
                          const char         *url,
                          guint               max)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);
  guint n = 0;

  g_return_val_if_fail (url != NULL && max > 0, NULL);

  g_strv_builder_add (builder, url);
  g_hash_table_add (seen, (gpointer) url);
  n++;
  for (guint i = 0; recent != NULL && recent[i] != NULL && n < max; i++)
    {
      if (recent[i][0] == '\0' || !g_hash_table_add (seen, (gpointer) recent[i]))
        continue;
      g_strv_builder_add (builder, recent[i]);
      n++;
    }
  return g_strv_builder_end (builder);
}

/**
 * player_stations_parse_conf:
 * @text: a stations.conf file: one group per station, with `URL=` (an http
 *   or https playlist URL) and an optional, translatable `Name=`
 * @length: the length of @text
 * @into: (element-type PlayerStation): where the stations are appended
 * @error: return location for a #GError
 *
 * Appends the file's stations to @into in the file's order, leaving out a
 * group without an http or https URL and a URL @into has already.  Names
 * are read in the current locale's language.
 *
 * Returns: %FALSE (and nothing appended) if @text is not a key file
 */
gboolean
player_stations_parse_conf (const char *text,
                            gsize       length,
                            GPtrArray  *into,
                            GError    **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_auto(GStrv) groups = NULL;

  if (!g_key_file_load_from_data (kf, text, length, G_KEY_FILE_KEEP_TRANSLATIONS, error))
    return FALSE;
  groups = g_key_file_get_groups (kf, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      g_autofree char *url = g_key_file_get_string (kf, groups[i], "URL", NULL);
      g_autofree char *name = g_key_file_get_locale_string (kf, groups[i], "Name", NULL, NULL);
      gboolean known = FALSE;

      if (url != NULL)
        g_strstrip (url);
      if (!player_stations_is_url (url))
        {
          g_debug ("stations.conf: [%s] has no http or https URL", groups[i]);
          continue;
        }
      for (guint j = 0; j < into->len && !known; j++)
        known = g_str_equal (((PlayerStation *) into->pdata[j])->url, url);
      if (!known)
        g_ptr_array_add (into, player_station_new (name != NULL && name[0] != '\0' ? name : NULL, url));
    }
  return TRUE;
}

static PlayerStation *
find_station (GPtrArray *stations, const char *url)
{
  for (guint i = 0; stations != NULL && i < stations->len; i++)
    {
      PlayerStation *station = stations->pdata[i];

      if (g_str_equal (station->url, url))
        return station;
    }
  return NULL;
}

/**
 * player_stations_list:
 * @recent: (nullable): the stations played before, most recent first
 * @configured: (nullable) (element-type PlayerStation): the stations the
 *   stations.conf files name
 *
 * Returns: (transfer full) (element-type PlayerStation): the list to pick
 *   from: @recent first (named as in @configured where a file names
 *   them), then the rest of @configured, each URL once
 */
GPtrArray *
player_stations_list (const char * const *recent,
                      GPtrArray          *configured)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) player_station_free);

  for (guint i = 0; recent != NULL && recent[i] != NULL; i++)
    {
      PlayerStation *named;

      if (!player_stations_is_url (recent[i]) || find_station (list, recent[i]) != NULL)
        continue;
      named = find_station (configured, recent[i]);
      g_ptr_array_add (list, player_station_new (named != NULL ? named->name : NULL, recent[i]));
    }
  for (guint i = 0; configured != NULL && i < configured->len; i++)
    {
      PlayerStation *station = configured->pdata[i];

      if (find_station (list, station->url) == NULL)
        g_ptr_array_add (list, player_station_new (station->name, station->url));
    }
  return list;
}

/* Strips white space and one pair of quotes around the answer: a file
 * dragged into a terminal arrives as '/path/to/station.rss' . */
static char *
unquote (const char *line)
{
  g_autofree char *text = g_strstrip (g_strdup (line));
  gsize len = strlen (text);

  if (len >= 2 && (text[0] == '\'' || text[0] == '"') && text[len - 1] == text[0])
    {
      text[len - 1] = '\0';
      return g_strdup (text + 1);
    }
  return g_steal_pointer (&text);
}

/**
 * player_stations_answer:
 * @list: (element-type PlayerStation): the list shown, numbered from 1
 * @line: what was typed, without or with its newline
 * @home: the home directory a leading `~/` stands for
 * @station_out: (out) (optional): for %PLAYER_ANSWER_STATION, the
 *   station: the URL of the number picked, or the text typed (a URL, a
 *   path or a file: URI, for the caller to check)
 * @error: return location for a #GError, set for %PLAYER_ANSWER_INVALID
 *
 * Reads one answer to "Pick a number or type a playlist URL".
 *
 * Returns: what the answer means
 */
PlayerAnswer
player_stations_answer (GPtrArray  *list,
                        const char *line,
                        const char *home,
                        char      **station_out,
                        GError    **error)
{
  g_autofree char *text = unquote (line);
  guint64 number;

  if (text[0] == '\0' || g_ascii_strcasecmp (text, "q") == 0)
    return PLAYER_ANSWER_QUIT;
  if (g_ascii_isdigit (text[0]))
    {
      const char *end = NULL;

      number = g_ascii_strtoull (text, (char **) &end, 10);
      if (end != NULL && *end == '\0')
        {
          if (list->len == 0)
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           _("There are no stations to pick from yet; type the URL of a "
                             "station’s playlist"));
              return PLAYER_ANSWER_INVALID;
            }
          if (number < 1 || number > list->len)
            {
              g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           _("There is no station number %s; pick one from 1 to %u, or type "
                             "the URL of a station’s playlist"), text, list->len);
              return PLAYER_ANSWER_INVALID;
            }
          if (station_out != NULL)
            *station_out = g_strdup (((PlayerStation *) list->pdata[number - 1])->url);
          return PLAYER_ANSWER_STATION;
        }
    }
  if (station_out != NULL)
    {
      if (g_str_has_prefix (text, "~/") && home != NULL)
        *station_out = g_build_filename (home, text + 2, NULL);
      else
        *station_out = g_steal_pointer (&text);
    }
  return PLAYER_ANSWER_STATION;
}
