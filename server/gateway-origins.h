/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Which URLs the gateway may fetch from an origin: a URL lies under a
 * prefix (--origin, or the docroot's --base-url) when scheme, host and
 * port agree and the prefix's path leads the URL's on a '/' boundary; and
 * the path of a URL sent to an origin must mean the same to every web
 * server, so nothing a server might decode into a way out of the prefix
 * is let through.  Pure functions of the text: no sockets, no clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

gboolean gateway_origin_covers     (GUri       *prefix,
                                    GUri       *uri);
gboolean gateway_origin_check_path (const char *path,
                                    GError    **error);
gboolean gateway_origin_check_url  (const char *url,
                                    GError    **error);

G_END_DECLS
