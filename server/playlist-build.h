/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build mode of `alluvium-server playlist`: from media files and
 * directories to a scheduled AlvPlaylist (probe, check formats, hash,
 * schedule back to back, optionally repeat to a horizon).
 */
#pragma once

#include "alv-playlist.h"
#include "playlist-options.h"

G_BEGIN_DECLS

AlvPlaylist *playlist_build (const PlaylistOptions  *opts,
                             GError                **error);

G_END_DECLS
