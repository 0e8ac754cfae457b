/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Prepare mode of `alluvium-server playlist` (--prepare): asks a gateway
 * over HTTP to resolve (and so hash) every item of a playlist ahead of its
 * slot.
 */
#pragma once

#include "alv-playlist.h"
#include "playlist-options.h"

G_BEGIN_DECLS

int playlist_prepare_run (const PlaylistOptions *opts,
                          AlvPlaylist           *pl,
                          const char            *label);

G_END_DECLS
