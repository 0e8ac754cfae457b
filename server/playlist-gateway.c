/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How the playlist tool finds and addresses a gateway.  Without --gateway
 * the tool uses a gateway of this machine that offers
 * org.alluvium.Gateway1 on the session or system bus (`gateway --dbus`),
 * at the Url it reports; it never starts one.  A gateway refuses a URL
 * with one line that names what it serves and the option that would serve
 * the URL (server/gateway-server.c), and that line is what the tool
 * quotes.  Whether a gateway serves a URL depends on its scheme, host and
 * port first, so --check asks once per such origin, not once per item.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "playlist-gateway.h"

#include <string.h>

#include "playlist-paths.h"

#define GATEWAY_DBUS_PATH "/org/alluvium/Gateway1"
/* How much of an error body we quote. */
#define MAX_REASON 512

/* Whether two gateway base URLs name the same place, up to a final '/'. */
static gboolean
same_base_url (const char *a,
               const char *b)
{
  gsize la = strlen (a), lb = strlen (b);

  while (la > 0 && a[la - 1] == '/')
    la--;
  while (lb > 0 && b[lb - 1] == '/')
    lb--;
  return la == lb && g_ascii_strncasecmp (a, b, la) == 0;
}

/* Finds a gateway offering org.alluvium.Gateway1 on the session or the
 * system bus, and its Url; when @wanted is given, only one listening
 * there.  Never starts anything; quietly returns %NULL when no bus or no
 * such gateway is there. */
GDBusProxy *
playlist_gateway_find_local (const char  *wanted,
                             char       **url_out)
{
  static const GBusType buses[] = { G_BUS_TYPE_SESSION, G_BUS_TYPE_SYSTEM };

  for (guint i = 0; i < G_N_ELEMENTS (buses); i++)
    {
      g_autoptr(GDBusConnection) bus = g_bus_get_sync (buses[i], NULL, NULL);
      g_autoptr(GDBusProxy) proxy = NULL;
      g_autoptr(GVariant) url = NULL;
      g_autofree char *owner = NULL;

      if (bus == NULL)
        continue;
      proxy = g_dbus_proxy_new_sync (bus, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, NULL,
                                     PLAYLIST_GATEWAY_DBUS_NAME, GATEWAY_DBUS_PATH,
                                     PLAYLIST_GATEWAY_DBUS_NAME, NULL, NULL);
      if (proxy == NULL || (owner = g_dbus_proxy_get_name_owner (proxy)) == NULL)
        continue;
      url = g_dbus_proxy_get_cached_property (proxy, "Url");
      if (url == NULL || !g_variant_is_of_type (url, G_VARIANT_TYPE_STRING) ||
          !playlist_paths_is_http_url (g_variant_get_string (url, NULL)))
        continue;
      if (wanted != NULL && !same_base_url (wanted, g_variant_get_string (url, NULL)))
        continue;
      *url_out = g_variant_dup_string (url, NULL);
      return g_steal_pointer (&proxy);
    }
  return NULL;
}

/* The gateway's /resolve URL for @url. */
char *
playlist_gateway_resolve_url (const char *gateway,
                              const char *url)
{
  g_autoptr(GString) out = g_string_new (gateway);

  if (!g_str_has_suffix (gateway, "/"))
    g_string_append_c (out, '/');
  g_string_append (out, "resolve?url=");
  g_string_append_uri_escaped (out, url, NULL, FALSE);
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* The first line of a response body, for error messages. */
char *
playlist_gateway_read_reason (GInputStream *stream)
{
  char buf[MAX_REASON + 1];
  gsize n = 0;
  char *nl;

  if (!g_input_stream_read_all (stream, buf, MAX_REASON, &n, NULL, NULL))
    return g_strdup ("");
  buf[n] = '\0';
  nl = strpbrk (buf, "\r\n");
  if (nl != NULL)
    *nl = '\0';
  return g_utf8_make_valid (buf, -1);
}

/* "scheme://host:port/" of an http(s) URL, lower case, with the port
 * spelt out (so http://h/ and http://h:80/ are one origin); %NULL for
 * anything else. */
char *
playlist_gateway_origin_of (const char *url)
{
  g_autoptr(GUri) uri = NULL;
  g_autofree char *scheme = NULL;
  g_autofree char *host = NULL;
  int port;

  if (!playlist_paths_is_http_url (url))
    return NULL;
  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  scheme = g_ascii_strdown (g_uri_get_scheme (uri), -1);
  host = g_ascii_strdown (g_uri_get_host (uri), -1);
  port = g_uri_get_port (uri);
  if (port < 0)
    port = g_str_equal (scheme, "https") ? 443 : 80;
  if (strchr (host, ':') != NULL)
    return g_strdup_printf ("%s://[%s]:%d/", scheme, host, port);
  return g_strdup_printf ("%s://%s:%d/", scheme, host, port);
}
