/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The playlist tool's view of a gateway: finding the one on this machine
 * (D-Bus), making its /resolve URLs, quoting its one-line refusals, and
 * telling which origin (scheme, host, port) an item URL belongs to.
 * Shared by --prepare (playlist-prepare.c) and --check (playlist-check.c).
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define PLAYLIST_GATEWAY_DBUS_NAME "org.alluvium.Gateway1"

GDBusProxy *playlist_gateway_find_local   (const char    *wanted,
                                           char         **url_out);
char       *playlist_gateway_resolve_url  (const char    *gateway,
                                           const char    *url);
char       *playlist_gateway_read_reason  (GInputStream  *stream);
char       *playlist_gateway_origin_of    (const char    *url);

G_END_DECLS
