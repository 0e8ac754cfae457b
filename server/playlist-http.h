/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The playlist tool's HTTP client side: a libsoup session with bounded
 * timeouts, loading a playlist from a file or URL, probing an item URL with
 * a one-byte Range request, and hashing a remote item while it streams.
 * The tool is a short-lived command, so these calls are synchronous.
 */
#pragma once

#include <libsoup/soup.h>

#include "alv-hash-tree.h"
#include "alv-playlist.h"

G_BEGIN_DECLS

SoupSession *playlist_http_session_new   (guint          timeout_seconds);

AlvPlaylist *playlist_http_load_playlist (SoupSession   *session,
                                          const char    *file_or_url,
                                          GError       **error);

gboolean     playlist_http_probe         (SoupSession   *session,
                                          const char    *url,
                                          guint         *status_out,
                                          gint64        *total_length_out,
                                          GError       **error);

AlvHashTree *playlist_http_hash          (SoupSession   *session,
                                          const char    *url,
                                          guint64        max_length,
                                          GError       **error);

G_END_DECLS
