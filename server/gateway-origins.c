/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Origin matching for the gateway (see gateway-origins.h).  A prefix such
 * as --origin http://host/media/ promises that only files under /media/
 * are fetched and hashed; but the gateway compares the URL's text while
 * the origin acts on what it decodes, and web servers decode differently:
 * nginx and Python's http.server turn "..%2F" into "../", Tomcat reads
 * "..;" as "..", IIS takes "\" for "/", a server behind a decoding proxy
 * decodes "%252e" twice.  So a URL whose path could mean a different
 * directory to any of them is refused outright rather than normalised:
 * no encoded "/" or "\" and no raw "\", no segment that is only dots
 * (also percent-encoded, once or twice, or followed by ";parameters"),
 * no NUL or other control character.  What is left reads the same
 * however often it is decoded, so the prefix is checked on its text.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-origins.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

/* how many decodings a segment must survive: the origin's own, and one
 * more by a proxy or a script in front of or behind it */
#define DECODINGS 2

typedef enum
{
  PATH_OK,
  PATH_SEPARATOR,
  PATH_DOT_SEGMENT,
  PATH_CONTROL,
} PathFault;

static int
effective_port (GUri *uri)
{
  int port = g_uri_get_port (uri);

  if (port > 0)
    return port;
  return g_ascii_strcasecmp (g_uri_get_scheme (uri), "https") == 0 ? 443 : 80;
}

/**
 * gateway_origin_covers:
 * @prefix: an origin prefix or the docroot's base URL
 * @uri: a URL to resolve
 *
 * Returns: whether @uri lies under @prefix: same scheme, host and port,
 *   and @prefix's path leads @uri's on a '/' boundary ("/media" covers
 *   "/media" and "/media/x", not "/media2/x").  Check the path with
 *   gateway_origin_check_url() too before fetching @uri from an origin.
 */
gboolean
gateway_origin_covers (GUri *prefix,
                       GUri *uri)
{
  const char *ppath = g_uri_get_path (prefix);
  const char *upath = g_uri_get_path (uri);
  gsize plen = strlen (ppath);

  if (g_ascii_strcasecmp (g_uri_get_scheme (uri), g_uri_get_scheme (prefix)) != 0
      || g_ascii_strcasecmp (g_uri_get_host (uri), g_uri_get_host (prefix)) != 0
      || effective_port (uri) != effective_port (prefix))
    return FALSE;
  if (plen == 0 || (plen == 1 && ppath[0] == '/'))
    return TRUE;
  if (strncmp (upath, ppath, plen) != 0)
    return FALSE;
  return ppath[plen - 1] == '/' || upath[plen] == '/' || upath[plen] == '\0';
}

/* %XX decoded once; a '%' without two hex digits stays as it is (as
 * lenient servers keep it).  The result may hold NUL bytes. */
static GString *
percent_decode (const char *text,
                gsize       len)
{
  GString *out = g_string_sized_new (len);

  for (gsize i = 0; i < len; i++)
    {
      if (text[i] == '%' && i + 2 < len && g_ascii_isxdigit (text[i + 1])
          && g_ascii_isxdigit (text[i + 2]))
        {
          g_string_append_c (out, (char) (g_ascii_xdigit_value (text[i + 1]) * 16
                                          + g_ascii_xdigit_value (text[i + 2])));
          i += 2;
        }
      else
        g_string_append_c (out, text[i]);
    }
  return out;
}

/* A segment that is nothing but dots once its ";parameters" are dropped:
 * ".", "..", "..;x" (Tomcat's "..") and "..." (Windows' ".."). */
static gboolean
is_dot_segment (const char *seg,
                gsize       len)
{
  const char *semicolon = memchr (seg, ';', len);
  gsize n = semicolon != NULL ? (gsize) (semicolon - seg) : len;

  if (n == 0)
    return FALSE;
  for (gsize i = 0; i < n; i++)
    if (seg[i] != '.')
      return FALSE;
  return TRUE;
}

/* The first fault of one segment (the bytes between two '/' of the
 * path as written), as it is and after each of @decodings decodings. */
static PathFault
segment_fault (const char *seg,
               gsize       len,
               guint       decodings)
{
  g_autoptr(GString) decoded = NULL;

  for (gsize i = 0; i < len; i++)
    {
      guchar c = (guchar) seg[i];

      if (c == '/' || c == '\\')
        return PATH_SEPARATOR;
      if (c < 0x20 || c == 0x7f)
        return PATH_CONTROL;
    }
  if (is_dot_segment (seg, len))
    return PATH_DOT_SEGMENT;
  if (decodings == 0 || memchr (seg, '%', len) == NULL)
    return PATH_OK;
  decoded = percent_decode (seg, len);
  return segment_fault (decoded->str, decoded->len, decodings - 1);
}

/**
 * gateway_origin_check_path:
 * @path: the path of a URL as written, percent-encoded
 * @error: return location for the reason, %ALV_ERROR_UNSAFE
 *
 * Decides whether a URL with this path may be fetched from an origin:
 * refused are an encoded '/' or '\\' (%2F, %5C) and a raw '\\', a segment
 * of dots only (".", "..", also percent-encoded or followed by
 * ";parameters"), and NUL or other control characters, each also when
 * decoded twice ("%252F").  Everything else passes: spaces, "%25",
 * non-ASCII, ';' and '%' in names.
 *
 * Returns: whether the path is safe
 */
gboolean
gateway_origin_check_path (const char *path,
                           GError    **error)
{
  PathFault fault = PATH_OK;
  const char *seg = path;

  g_return_val_if_fail (path != NULL, FALSE);

  while (fault == PATH_OK)
    {
      const char *end = strchr (seg, '/');
      gsize len = end != NULL ? (gsize) (end - seg) : strlen (seg);

      fault = segment_fault (seg, len, DECODINGS);
      if (end == NULL)
        break;
      seg = end + 1;
    }
  switch (fault)
    {
    case PATH_OK:
      return TRUE;
    case PATH_SEPARATOR:
      /* xgettext:no-c-format */
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_UNSAFE,
                           _("the URL’s path holds an encoded “/” or a “\\” (%2F, %5C), "
                             "which an origin may take for a directory separator; "
                             "such URLs are refused"));
      return FALSE;
    case PATH_DOT_SEGMENT:
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_UNSAFE,
                           _("the URL’s path holds a “.” or “..” segment (perhaps "
                             "percent-encoded or followed by “;”), which could lead out of "
                             "the origin’s prefix; such URLs are refused"));
      return FALSE;
    case PATH_CONTROL:
    default:
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_UNSAFE,
                           _("the URL’s path holds a NUL or another control character; "
                             "such URLs are refused"));
      return FALSE;
    }
}

/**
 * gateway_origin_check_url:
 * @url: an absolute URL, as the client sent it
 * @error: return location for the reason
 *
 * gateway_origin_check_path() on @url's path as written: before
 * g_uri_parse() takes out the dot segments, so that "/media/%2e%2e/x"
 * is refused for what it says, not resolved to "/x".
 *
 * Returns: whether @url's path is safe
 */
gboolean
gateway_origin_check_url (const char *url,
                          GError    **error)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail (url != NULL, FALSE);

  if (!g_uri_split (url, G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_PATH
                         | G_URI_FLAGS_ENCODED_QUERY | G_URI_FLAGS_ENCODED_FRAGMENT,
                    NULL, NULL, NULL, NULL, &path, NULL, NULL, NULL))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("“%s” is not a valid URL"), url);
      return FALSE;
    }
  return gateway_origin_check_path (path, error);
}
