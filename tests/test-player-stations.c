/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The stations a player started without a URL offers, and how it reads the
 * answer: the stations played before are remembered most recent first,
 * each once, ten at most; stations.conf entries come after them, each URL
 * once, entries without an http(s) URL left out; a number picks from the
 * list, anything else is a URL or a path, an empty line or q quits.
 */
#include "config.h"

#include <locale.h>
#include <string.h>

#include <gio/gio.h>

#include "player-stations.h"

static void
test_remember (void)
{
  const char *recent[] = { "http://a.example/a.rss", "http://b.example/b.rss",
                           "", "http://a.example/a.rss", "http://c.example/c.rss", NULL };
  const char *many[PLAYER_STATIONS_MAX_RECENT + 3];
  g_auto(GStrv) first = player_stations_remember (NULL, "http://a.example/a.rss", 3);
  g_auto(GStrv) again = player_stations_remember (recent, "http://c.example/c.rss", 10);
  g_auto(GStrv) capped = player_stations_remember (recent, "http://d.example/d.rss", 3);
  g_auto(GStrv) full = NULL;
  g_autoptr(GPtrArray) urls = g_ptr_array_new_with_free_func (g_free);

  g_assert_cmpuint (g_strv_length (first), ==, 1);
  g_assert_cmpstr (first[0], ==, "http://a.example/a.rss");

  /* played again: moves to the top, not added twice; no empty entries */
  g_assert_cmpuint (g_strv_length (again), ==, 3);
  g_assert_cmpstr (again[0], ==, "http://c.example/c.rss");
  g_assert_cmpstr (again[1], ==, "http://a.example/a.rss");
  g_assert_cmpstr (again[2], ==, "http://b.example/b.rss");

  /* the oldest fall off */
  g_assert_cmpuint (g_strv_length (capped), ==, 3);
  g_assert_cmpstr (capped[0], ==, "http://d.example/d.rss");
  g_assert_cmpstr (capped[2], ==, "http://b.example/b.rss");

  for (guint i = 0; i < G_N_ELEMENTS (many) - 1; i++)
    {
      g_ptr_array_add (urls, g_strdup_printf ("http://s%u.example/", i));
      many[i] = urls->pdata[i];
    }
  many[G_N_ELEMENTS (many) - 1] = NULL;
  full = player_stations_remember (many, "http://new.example/", PLAYER_STATIONS_MAX_RECENT);
  g_assert_cmpuint (g_strv_length (full), ==, PLAYER_STATIONS_MAX_RECENT);
  g_assert_cmpstr (full[0], ==, "http://new.example/");
  g_assert_cmpstr (full[1], ==, "http://s0.example/");
}

static const char conf_system[] =
  "# a comment\n"
  "[local]\n"
  "Name=This computer\n"
  "Name[de]=Dieser Rechner\n"
  "URL=http://localhost:8470/station.rss\n"
  "\n"
  "[no-url]\n"
  "Name=Nothing to tune to\n"
  "\n"
  "[ftp]\n"
  "Name=Not a web URL\n"
  "URL=ftp://example.org/station.rss\n"
  "\n"
  "[bare]\n"
  "URL= https://radio.example/bare.rss \n";

static const char conf_user[] =
  "[mine]\n"
  "Name=My favourite\n"
  "URL=https://radio.example/bare.rss\n";

static void
test_conf (void)
{
  g_autoptr(GPtrArray) stations = g_ptr_array_new_with_free_func ((GDestroyNotify) player_station_free);
  g_autoptr(GError) error = NULL;
  PlayerStation *s;

  /* the user's file first: its name for a URL wins */
  g_assert_true (player_stations_parse_conf (conf_user, sizeof conf_user - 1, stations, &error));
  g_assert_no_error (error);
  g_assert_true (player_stations_parse_conf (conf_system, sizeof conf_system - 1, stations, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stations->len, ==, 2);
  s = stations->pdata[0];
  g_assert_cmpstr (s->name, ==, "My favourite");
  g_assert_cmpstr (s->url, ==, "https://radio.example/bare.rss");
  s = stations->pdata[1];
  g_assert_cmpstr (s->name, ==, "This computer");
  g_assert_cmpstr (s->url, ==, "http://localhost:8470/station.rss");

  /* not a key file: nothing added, an error */
  g_assert_false (player_stations_parse_conf ("URL=http://x.example/\n", 22, stations, &error));
  g_assert_nonnull (error);
  g_assert_cmpuint (stations->len, ==, 2);
}

/* The shipped example parses and names one station. */
static void
test_conf_shipped (void)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, "..", "data", "stations.conf", NULL);
  g_autoptr(GPtrArray) stations = g_ptr_array_new_with_free_func ((GDestroyNotify) player_station_free);
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  gsize length;

  g_file_get_contents (path, &text, &length, &error);
  g_assert_no_error (error);
  g_assert_true (player_stations_parse_conf (text, length, stations, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stations->len, ==, 1);
  g_assert_cmpstr (((PlayerStation *) stations->pdata[0])->url, ==, "http://localhost:8470/station.rss");
  g_assert_nonnull (((PlayerStation *) stations->pdata[0])->name);
}

static GPtrArray *
sample_list (void)
{
  const char *recent[] = { "https://radio.example/bare.rss", "http://b.example/b.rss",
                           "not a url", "http://b.example/b.rss", NULL };
  g_autoptr(GPtrArray) configured = g_ptr_array_new_with_free_func ((GDestroyNotify) player_station_free);

  g_ptr_array_add (configured, player_station_new ("This computer", "http://localhost:8470/station.rss"));
  g_ptr_array_add (configured, player_station_new ("Bare", "https://radio.example/bare.rss"));
  return player_stations_list (recent, configured);
}

static void
test_list (void)
{
  g_autoptr(GPtrArray) list = sample_list ();
  g_autoptr(GPtrArray) none = player_stations_list (NULL, NULL);
  PlayerStation *s;

  /* played before first, named where a file names them; then the files' */
  g_assert_cmpuint (list->len, ==, 3);
  s = list->pdata[0];
  g_assert_cmpstr (s->url, ==, "https://radio.example/bare.rss");
  g_assert_cmpstr (s->name, ==, "Bare");
  s = list->pdata[1];
  g_assert_cmpstr (s->url, ==, "http://b.example/b.rss");
  g_assert_null (s->name);
  s = list->pdata[2];
  g_assert_cmpstr (s->url, ==, "http://localhost:8470/station.rss");
  g_assert_cmpstr (s->name, ==, "This computer");

  g_assert_cmpuint (none->len, ==, 0);
}

static void
test_answer (void)
{
  g_autoptr(GPtrArray) list = sample_list ();
  g_autoptr(GPtrArray) none = player_stations_list (NULL, NULL);
  static const struct
  {
    const char *line;
    PlayerAnswer answer;
    const char *station;
  } cases[] = {
    { "", PLAYER_ANSWER_QUIT, NULL },
    { "\n", PLAYER_ANSWER_QUIT, NULL },
    { "   \n", PLAYER_ANSWER_QUIT, NULL },
    { "q\n", PLAYER_ANSWER_QUIT, NULL },
    { "Q", PLAYER_ANSWER_QUIT, NULL },
    { "1\n", PLAYER_ANSWER_STATION, "https://radio.example/bare.rss" },
    { " 3 \n", PLAYER_ANSWER_STATION, "http://localhost:8470/station.rss" },
    { "0\n", PLAYER_ANSWER_INVALID, NULL },
    { "4\n", PLAYER_ANSWER_INVALID, NULL },
    { "99999999999999999999999\n", PLAYER_ANSWER_INVALID, NULL },
    { "https://other.example/x.rss\n", PLAYER_ANSWER_STATION, "https://other.example/x.rss" },
    /* a path, also as a terminal pastes a dragged file */
    { "/srv/radio/station.rss\n", PLAYER_ANSWER_STATION, "/srv/radio/station.rss" },
    { "'/srv/my radio/station.rss' \n", PLAYER_ANSWER_STATION, "/srv/my radio/station.rss" },
    { "\"/srv/x.rss\"", PLAYER_ANSWER_STATION, "/srv/x.rss" },
    { "~/Downloads/station.rss\n", PLAYER_ANSWER_STATION, "/home/listener/Downloads/station.rss" },
    { "3rd.rss\n", PLAYER_ANSWER_STATION, "3rd.rss" },
    { "file:///srv/x.rss\n", PLAYER_ANSWER_STATION, "file:///srv/x.rss" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *station = NULL;
      g_autoptr(GError) error = NULL;
      PlayerAnswer answer;

      answer = player_stations_answer (list, cases[i].line, "/home/listener", &station, &error);
      g_test_message ("“%s” → %d %s %s", cases[i].line, answer, station,
                      error != NULL ? error->message : "");
      g_assert_cmpint (answer, ==, cases[i].answer);
      g_assert_cmpstr (station, ==, cases[i].station);
      if (answer == PLAYER_ANSWER_INVALID)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
          g_assert_nonnull (strstr (error->message, "from 1 to 3"));
        }
      else
        g_assert_no_error (error);
    }

  /* nothing to pick from: a number says so */
  {
    g_autoptr(GError) error = NULL;
    g_autofree char *station = NULL;

    g_assert_cmpint (player_stations_answer (none, "1", "/home/listener", &station, &error), ==,
                     PLAYER_ANSWER_INVALID);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "no stations to pick from"));
    g_assert_null (station);
  }
}

static void
test_is_url (void)
{
  g_assert_true (player_stations_is_url ("http://a.example/x.rss"));
  g_assert_true (player_stations_is_url ("HTTPS://a.example:8443/x.rss"));
  g_assert_false (player_stations_is_url ("http-x.rss"));
  g_assert_false (player_stations_is_url ("file:///x.rss"));
  g_assert_false (player_stations_is_url ("/x.rss"));
  g_assert_false (player_stations_is_url (""));
  g_assert_false (player_stations_is_url (NULL));
}

int
main (int argc, char **argv)
{
  /* untranslated messages, whatever the environment says */
  g_setenv ("LANGUAGE", "C", TRUE);
  setlocale (LC_ALL, "C.UTF-8");
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/player/stations/remember", test_remember);
  g_test_add_func ("/player/stations/conf", test_conf);
  g_test_add_func ("/player/stations/conf-shipped", test_conf_shipped);
  g_test_add_func ("/player/stations/list", test_list);
  g_test_add_func ("/player/stations/answer", test_answer);
  g_test_add_func ("/player/stations/is-url", test_is_url);
  return g_test_run ();
}
