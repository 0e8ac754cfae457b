/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Media probing for `alluvium-server playlist`: one GstDiscoverer, run
 * synchronously with a timeout, tells for a local file its duration, its
 * title and artist tags, the MIME type a playlist item advertises
 * (`dc:format`) and its stream format (codec, channels, rate), which the
 * tool compares between items because a player cannot switch codec in the
 * middle of one stream.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * PlaylistMediaInfo:
 * @duration_ms: duration in milliseconds, rounded to the nearest; > 0
 * @title: the title tag, or %NULL when the file has none
 * @artist: the artist tag, or %NULL
 * @mime: the MIME type of the file as a whole (e.g. "audio/ogg")
 * @format: a human-readable stream format, e.g.
 *   "Vorbis, 2 channels, 44100 Hz (audio/ogg)"
 * @format_key: a string equal for two files exactly when a player can play
 *   them one after the other in one stream
 *
 * What playlist_probe_file() found out about one file.
 */
typedef struct
{
  gint64 duration_ms;
  char *title;
  char *artist;
  char *mime;
  char *format;
  char *format_key;
} PlaylistMediaInfo;

PlaylistMediaInfo *playlist_media_info_copy (const PlaylistMediaInfo *info);
void               playlist_media_info_free (PlaylistMediaInfo       *info);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (PlaylistMediaInfo, playlist_media_info_free)

typedef struct _PlaylistProbe PlaylistProbe;

PlaylistProbe     *playlist_probe_new  (guint           timeout_seconds,
                                        GError        **error);
void               playlist_probe_free (PlaylistProbe  *probe);
PlaylistMediaInfo *playlist_probe_file (PlaylistProbe  *probe,
                                        const char     *path,
                                        GError        **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PlaylistProbe, playlist_probe_free)

G_END_DECLS
