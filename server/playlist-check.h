/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Check mode of `alluvium-server playlist` (--check): lints a playlist file
 * or URL and prints one line per finding.
 */
#pragma once

#include "playlist-options.h"

G_BEGIN_DECLS

int playlist_check_run (const PlaylistOptions *opts,
                        const char            *file_or_url);

G_END_DECLS
