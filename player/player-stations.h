/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The stations alluvium-player offers when it starts without a playlist
 * URL in a terminal: the ones played before, most recent first, then the
 * ones the user, the administrator or a package lists in stations.conf
 * files; and how an answer to "Pick a number or type a playlist URL" is
 * read.  Pure rules, no files and no terminal: player-state.c reads the
 * files, player-main.c asks.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* how many stations played before the player remembers */
#define PLAYER_STATIONS_MAX_RECENT 10

typedef struct
{
  char *name;                 /* (nullable): what a stations.conf calls it */
  char *url;                  /* the playlist's http or https URL */
} PlayerStation;

PlayerStation *player_station_new  (const char    *name,
                                    const char    *url);
void           player_station_free (PlayerStation *station);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PlayerStation, player_station_free)

gboolean   player_stations_is_url      (const char         *text);
GStrv      player_stations_remember    (const char * const *recent,
                                        const char         *url,
                                        guint               max);
gboolean   player_stations_parse_conf  (const char         *text,
                                        gsize               length,
                                        GPtrArray          *into,
                                        GError            **error);
GPtrArray *player_stations_list        (const char * const *recent,
                                        GPtrArray          *configured);

typedef enum
{
  PLAYER_ANSWER_QUIT,         /* an empty answer, or q */
  PLAYER_ANSWER_STATION,      /* a station picked by number, a URL or a file */
  PLAYER_ANSWER_INVALID,      /* a number that is not on the list */
} PlayerAnswer;

PlayerAnswer player_stations_answer    (GPtrArray          *list,
                                        const char         *line,
                                        const char         *home,
                                        char              **station_out,
                                        GError            **error);

G_END_DECLS
