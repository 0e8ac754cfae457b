/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's built-in static web server (--docroot): maps request
 * paths to files strictly inside the document root, and serves them with
 * validators (ETag, Last-Modified, conditional requests), byte ranges and
 * the station's media types (`.rss` as application/x-alluvium), streaming
 * from disk chunk by chunk so a slow client costs one chunk of memory.
 * The same path mapping and file identity serve the resolver, which
 * hashes docroot files from disk.
 */
#pragma once

#include <glib/gstdio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

typedef struct _GatewayDocroot GatewayDocroot;

GatewayDocroot *gateway_docroot_new        (const char      *dir,
                                            GError         **error);
void            gateway_docroot_free       (GatewayDocroot  *docroot);
const char     *gateway_docroot_get_path   (GatewayDocroot  *docroot);
guint64         gateway_docroot_get_bytes_served (GatewayDocroot *docroot);

/* Turns a percent-encoded URL path into a path relative to the docroot,
 * or NULL when it names nothing servable (.., dot files, encoded '/',
 * NUL, empty). */
char           *gateway_docroot_map_path   (const char      *escaped_path);

/* Blocking (call from a thread): opens @rel below the docroot, refusing
 * anything that resolves outside it and anything but a regular file.
 * Returns a file descriptor, with *st filled, or -1 with @error set
 * (G_IO_ERROR_NOT_FOUND for anything not servable). */
int             gateway_docroot_open       (GatewayDocroot  *docroot,
                                            const char      *rel,
                                            GStatBuf        *st,
                                            GError         **error);

/* A directory below the docroot (@rel; "" for the docroot itself),
 * for people: its index.html as @index_rel (set, and NULL returned) when
 * there is one, else a generated HTML page listing it (playlists first,
 * dot files never); NULL with nothing set when @rel is no directory
 * inside the docroot. */
char           *gateway_docroot_index      (GatewayDocroot  *docroot,
                                            const char      *rel,
                                            char           **index_rel);

/* The identity of a file version: size, mtime (ns) and inode. */
char           *gateway_file_id            (const GStatBuf  *st);
/* The strong ETag the static server sends for that version. */
char           *gateway_file_etag          (const GStatBuf  *st);

const char     *gateway_media_type_for_name (const char     *name);

/* Called on the main thread with the opened file's identity: returns the
 * URN to send as X-Content-URN, or NULL. */
typedef const char *(*GatewayUrnLookup) (const char *rel,
                                         const char *file_id,
                                         gpointer    user_data);

/* Serves @rel for a GET or HEAD @msg (pauses it; answers later). */
void            gateway_static_serve       (GatewayDocroot    *docroot,
                                            SoupServerMessage *msg,
                                            const char        *rel,
                                            GatewayUrnLookup   lookup,
                                            gpointer           lookup_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayDocroot, gateway_docroot_free)

G_END_DECLS
