/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the gateway's origin path rule
 * (server/gateway-origins.c).  The input is a URL path as a client might
 * write it.  A refusal must be one line in %ALV_ERROR_UNSAFE; a path
 * accepted must hold, as GLib's own decoder reads it once and twice, no
 * '/' or '\\' inside a segment, no control character and no segment of
 * dots; the same path in a whole URL must get the same verdict; and an
 * accepted URL's path must come out of g_uri_parse() as it went in (no
 * dot segment for it to remove), since the prefix is compared on it.
 */
#define G_LOG_DOMAIN "fuzz-origin-path"

#include "config.h"

#include <stdint.h>
#include <string.h>

#include <gio/gio.h>

#include "alv-error.h"
#include "fuzz-util.h"
#include "gateway-origins.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define HTTP_FLAGS (G_URI_FLAGS_HAS_PASSWORD | G_URI_FLAGS_ENCODED_PATH | G_URI_FLAGS_ENCODED_QUERY \
                    | G_URI_FLAGS_ENCODED_FRAGMENT | G_URI_FLAGS_SCHEME_NORMALIZE)

/* Bytes a safe segment holds after any number of decodings: no
 * separator, no control character, not only dots (before a ';'). */
static void
check_decoded_segment (const guint8 *seg,
                       gsize         len,
                       guint         depth)
{
  g_autoptr(GBytes) decoded = NULL;
  gsize dots = 0;
  const guint8 *bytes;
  gsize n;

  for (gsize i = 0; i < len; i++)
    {
      CHECK (seg[i] != '/' && seg[i] != '\\');
      CHECK (seg[i] >= 0x20 && seg[i] != 0x7f);
    }
  while (dots < len && seg[dots] == '.')
    dots++;
  CHECK (dots == 0 || (dots < len && seg[dots] != ';'));
  if (depth == 0)
    return;
  /* GLib refuses what is not a valid escape; the rule keeps it as it
   * is, which no server decodes either */
  decoded = g_uri_unescape_bytes ((const char *) seg, (gssize) len, NULL, NULL);
  if (decoded == NULL)
    return;
  bytes = g_bytes_get_data (decoded, &n);
  check_decoded_segment (bytes, n, depth - 1);
}

static void
check_accepted_path (const char *path)
{
  g_auto(GStrv) segments = g_strsplit (path, "/", -1);

  for (guint i = 0; segments[i] != NULL; i++)
    check_decoded_segment ((const guint8 *) segments[i], strlen (segments[i]), 2);
}

static gboolean
check_path (const char *path)
{
  g_autoptr(GError) error = NULL;
  gboolean ok = gateway_origin_check_path (path, &error);

  CHECK (ok == (error == NULL));
  if (!ok)
    {
      CHECK (g_error_matches (error, ALV_ERROR, ALV_ERROR_UNSAFE));
      CHECK (strchr (error->message, '\n') == NULL);
    }
  else
    check_accepted_path (path);
  return ok;
}

static void
fuzz_url (const char *path,
          gboolean    path_ok)
{
  g_autofree char *url = g_strconcat ("http://station.example", path, NULL);
  g_autofree char *split = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  if (!g_uri_split (url, HTTP_FLAGS, NULL, NULL, NULL, NULL, &split, NULL, NULL, NULL))
    return;
  ok = gateway_origin_check_url (url, &error);
  CHECK (ok == (error == NULL));
  CHECK (ok == check_path (split));
  /* the URL's path is the input, percent-encoded as GLib normalises */
  if (strpbrk (path, "?#") == NULL)
    CHECK (ok == path_ok);
  uri = g_uri_parse (url, HTTP_FLAGS, NULL);
  if (ok && uri != NULL)
    CHECK (strcmp (g_uri_get_path (uri), *split ? split : "/") == 0);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  static gboolean initialized = FALSE;
  g_autofree char *path = NULL;
  gboolean ok;

  if (!initialized)
    {
      /* a g_return_if_fail() reached from here is a bug too */
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      initialized = TRUE;
    }
  path = g_strndup ((const char *) data, size);
  ok = check_path (path);
  if (path[0] == '/')
    fuzz_url (path, ok);
  return 0;
}
