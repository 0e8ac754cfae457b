/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * URL normal form of the gateway (see gateway-url.h).  g_uri_parse()
 * with libsoup's flags already lowers the scheme, drops the port when it
 * is the scheme's default, removes dot segments, decodes percent-encoded
 * unreserved characters ("%7E" is "~"), writes the other escapes in
 * upper case and encodes raw non-ASCII bytes; this adds what it leaves:
 * the host in lower case and without a trailing dot, runs of "/" as one
 * (every static web server maps "/a//b" to the file "/a/b"), no fragment
 * (never sent to a server), no empty query, and the query kept or
 * dropped as the caller decides.  The result is a fixed point: normalising
 * it again gives the same text.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-url.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

/* what libsoup parses HTTP URLs with (SOUP_HTTP_URI_FLAGS) */
#define HTTP_URI_FLAGS (G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_PATH \
                        | G_URI_FLAGS_ENCODED_QUERY | G_URI_FLAGS_ENCODED_FRAGMENT \
                        | G_URI_FLAGS_SCHEME_NORMALIZE)

static int
default_port (const char *scheme)
{
  return g_ascii_strcasecmp (scheme, "https") == 0 ? 443 : 80;
}

static char *
normal_host (const char *host)
{
  char *lower = g_ascii_strdown (host, -1);
  gsize len = strlen (lower);

  /* "station.example." is the same (fully qualified) name; an IPv6
   * literal has no trailing dot to drop */
  if (len > 1 && lower[len - 1] == '.' && strchr (lower, ':') == NULL)
    lower[len - 1] = '\0';
  return lower;
}

static char *
normal_path (const char *path)
{
  GString *out = g_string_sized_new (strlen (path) + 1);

  for (const char *c = path; *c != '\0'; c++)
    if (*c != '/' || out->len == 0 || out->str[out->len - 1] != '/')
      g_string_append_c (out, *c);
  if (out->len == 0)
    g_string_append_c (out, '/');
  return g_string_free (out, FALSE);
}

/**
 * gateway_url_has_query:
 * @uri: an http(s) URL
 *
 * Returns: whether @uri has a query that is not empty ("a.mp3?" has none)
 */
gboolean
gateway_url_has_query (GUri *uri)
{
  const char *query = g_uri_get_query (uri);

  return query != NULL && *query != '\0';
}

/**
 * gateway_url_normalize:
 * @uri: an http(s) URL with a host, as g_uri_parse() with libsoup's
 *   flags made it
 * @query: whether its query names part of the resource
 *
 * Returns: (transfer full): the normal form of @uri: lower-case scheme
 *   and host (no trailing dot), no default port, no user information,
 *   no empty path segments, no fragment, the query as @query says
 *   (never an empty one)
 */
GUri *
gateway_url_normalize (GUri            *uri,
                       GatewayUrlQuery  query)
{
  const char *scheme = g_uri_get_scheme (uri);
  g_autofree char *lower_scheme = g_ascii_strdown (scheme, -1);
  g_autofree char *host = normal_host (g_uri_get_host (uri));
  g_autofree char *path = normal_path (g_uri_get_path (uri));
  int port = g_uri_get_port (uri);

  g_return_val_if_fail (g_uri_get_host (uri) != NULL, NULL);

  if (port == default_port (lower_scheme))
    port = -1;
  return g_uri_build (g_uri_get_flags (uri), lower_scheme, NULL, host, port, path,
                      query == GATEWAY_URL_QUERY_KEEP && gateway_url_has_query (uri)
                      ? g_uri_get_query (uri) : NULL,
                      NULL);
}

char *
gateway_url_origin_key (GUri *uri)
{
  g_autofree char *scheme = g_ascii_strdown (g_uri_get_scheme (uri), -1);
  g_autofree char *host = normal_host (g_uri_get_host (uri));
  int port = g_uri_get_port (uri);

  return g_strdup_printf ("%s://%s:%d", scheme, host, port > 0 ? port : default_port (scheme));
}

/**
 * gateway_url_normalize_text:
 * @text: an absolute http(s) URL
 * @query: whether its query names part of the resource
 * @error: return location for the reason, %ALV_ERROR_PARSE
 *
 * gateway_url_normalize() on @text, parsed as libsoup parses HTTP URLs.
 *
 * Returns: (transfer full) (nullable): the normal form, or %NULL when
 *   @text is not a URL with a host
 */
char *
gateway_url_normalize_text (const char      *text,
                            GatewayUrlQuery  query,
                            GError         **error)
{
  g_autoptr(GUri) uri = g_uri_parse (text, HTTP_URI_FLAGS, NULL);
  g_autoptr(GUri) normal = NULL;

  if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("“%s” is not a valid URL"), text);
      return NULL;
    }
  normal = gateway_url_normalize (uri, query);
  return g_uri_to_string (normal);
}
