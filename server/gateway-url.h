/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The one spelling of a URL the gateway keys its entries, jobs, locks
 * and shared records by: every way of writing the same resource must
 * come out as the same text, or each spelling makes the gateway fetch
 * and hash the file again and keeps one more entry.  Pure functions of
 * the text: no sockets, no clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* How the normal form treats a query string. */
typedef enum
{
  GATEWAY_URL_QUERY_KEEP,       /* part of the resource (--allow-query) */
  GATEWAY_URL_QUERY_DROP,       /* ignored by the server (the docroot) */
} GatewayUrlQuery;

GUri     *gateway_url_normalize      (GUri            *uri,
                                      GatewayUrlQuery  query);
char     *gateway_url_normalize_text (const char      *text,
                                      GatewayUrlQuery  query,
                                      GError         **error);
gboolean  gateway_url_has_query      (GUri            *uri);
/* "scheme://host:port" of @uri, lower case, the port always written:
 * one key per origin server. */
char     *gateway_url_origin_key     (GUri            *uri);

G_END_DECLS
