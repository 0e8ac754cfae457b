/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Checks shared by the playlist parser (alv-playlist-parser.c) and by
 * alv_playlist_validate() (alv-playlist.c), so that whatever the writer
 * accepts the parser reads back, and the other way round.  Each check
 * returns %NULL when the value is acceptable, or a translated reason.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

const char *alv_playlist_check_text       (const char *text,
                                           gsize       max_length);
const char *alv_playlist_check_http_url   (const char *url);
const char *alv_playlist_check_media_type (const char *media_type);
const char *alv_playlist_check_urn        (const char *urn);
gint64      alv_playlist_period_seconds   (const char *period);

char       *alv_playlist_quote            (const char *text);

G_END_DECLS
