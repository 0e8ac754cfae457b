/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Mapping between the station's files and their URLs for the playlist
 * tool: a file under the root directory is published at the base URL plus
 * its percent-encoded relative path, and (for --check) a URL under the base
 * URL names the file at the decoded relative path under the root, provided
 * it does not climb out of it.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char     *playlist_paths_normalize_base_url (const char  *base_url,
                                             GError     **error);
char     *playlist_paths_url_for_file       (const char  *base_url,
                                             const char  *root,
                                             const char  *path,
                                             GError     **error);
char     *playlist_paths_file_for_url       (const char  *base_url,
                                             const char  *root,
                                             const char  *url);
char     *playlist_paths_relative           (const char  *root,
                                             const char  *path);
char     *playlist_paths_common_parent      (const char * const *paths);
gboolean  playlist_paths_is_http_url        (const char  *text);

G_END_DECLS
