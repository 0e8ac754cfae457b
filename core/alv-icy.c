/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Socket-free protocol pieces of the local stream: the request parser
 * (one request line and at most ALV_ICY_MAX_HEADERS header lines within
 * ALV_ICY_MAX_REQUEST_SIZE bytes, nothing else accepted), the ICY metadata
 * block (`StreamTitle='…';`, padded with NULs to a multiple of 16, one
 * length byte in front, never a `';` inside the title since every client
 * parser ends the title at the first one) and sanitising of the strings
 * that end up in response headers.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-icy.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

#define MAX_HEADER_VALUE 1024
#define TITLE_PREFIX "StreamTitle='"
#define TITLE_SUFFIX "';"

/* Returns the offset just past the blank line that ends a request head
 * ("\r\n\r\n" or a bare "\n\n"), or -1 if it is not in @data yet. */
gssize
alv_icy_request_find_end (const guint8 *data,
                          gsize         len)
{
  for (gsize i = 0; i < len; i++)
    {
      if (data[i] != '\n')
        continue;
      if (i + 1 < len && data[i + 1] == '\n')
        return (gssize) (i + 2);
      if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
        return (gssize) (i + 3);
    }
  return -1;
}

static gboolean
is_tchar (char c)
{
  return g_ascii_isalnum (c) || (c != '\0' && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Copies @value without control characters, as valid UTF-8, at most @max
 * bytes (cut on a character boundary). */
static char *
clean_string (const char *value,
              gsize       len,
              gsize       max)
{
  g_autofree char *valid = g_utf8_make_valid (value, (gssize) len);
  GString *out = g_string_sized_new (MIN (len, max) + 1);

  for (const char *p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      const char *next = g_utf8_next_char (p);

      if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
        continue;
      if (out->len + (gsize) (next - p) > max)
        break;
      g_string_append_len (out, p, next - p);
    }
  return g_string_free (out, FALSE);
}

void
alv_icy_request_free (AlvIcyRequest *request)
{
  if (request == NULL)
    return;
  g_free (request->path);
  g_free (request->user_agent);
  g_free (request);
}

static gboolean
parse_request_line (const char     *line,
                    AlvIcyRequest  *request,
                    GError        **error)
{
  const char *sp1 = strchr (line, ' ');
  const char *sp2;
  const char *target;
  gsize target_len;
  const char *version;
  g_autofree char *method = NULL;

  if (sp1 == NULL || sp1 == line)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request line"));
      return FALSE;
    }
  for (const char *p = line; p < sp1; p++)
    if (!is_tchar (*p))
      {
        g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request method"));
        return FALSE;
      }
  method = g_strndup (line, (gsize) (sp1 - line));
  sp2 = strchr (sp1 + 1, ' ');
  if (sp2 == NULL || sp2 == sp1 + 1)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request line"));
      return FALSE;
    }
  version = sp2 + 1;
  if (strcmp (version, "HTTP/1.0") == 0)
    request->http_minor = 0;
  else if (strcmp (version, "HTTP/1.1") == 0)
    request->http_minor = 1;
  else
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Unsupported HTTP version"));
      return FALSE;
    }

  target = sp1 + 1;
  target_len = (gsize) (sp2 - target);
  for (gsize i = 0; i < target_len; i++)
    if ((guchar) target[i] <= 0x20 || (guchar) target[i] >= 0x7f)
      {
        g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request target"));
        return FALSE;
      }
  /* absolute form: drop "scheme://authority" */
  if (target_len > 7 && g_ascii_strncasecmp (target, "http://", 7) == 0)
    {
      const char *slash = memchr (target + 7, '/', target_len - 7);

      if (slash == NULL)
        {
          target = "/";
          target_len = 1;
        }
      else
        {
          target_len -= (gsize) (slash - target);
          target = slash;
        }
    }
  if (target[0] != '/')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request target"));
      return FALSE;
    }
  for (gsize i = 0; i < target_len; i++)
    if (target[i] == '?' || target[i] == '#')
      {
        target_len = i;
        break;
      }
  request->path = g_strndup (target, target_len);

  if (strcmp (method, "GET") == 0)
    request->method = ALV_ICY_METHOD_GET;
  else if (strcmp (method, "HEAD") == 0)
    request->method = ALV_ICY_METHOD_HEAD;
  else
    request->method = ALV_ICY_METHOD_OTHER;
  return TRUE;
}

/**
 * alv_icy_request_parse:
 * @data: the request head, up to and including the blank line
 * @len: its length (at most %ALV_ICY_MAX_REQUEST_SIZE)
 * @error: return location for a #GError
 *
 * Parses what a player sends to an Icecast mount.  Anything that is not a
 * plain HTTP/1.x request head within the limits is an %ALV_ERROR_PARSE or
 * %ALV_ERROR_LIMIT error (the server answers 400).
 *
 * Returns: (transfer full): the request, or %NULL with @error set
 */
AlvIcyRequest *
alv_icy_request_parse (const guint8  *data,
                       gsize          len,
                       GError       **error)
{
  g_autoptr(AlvIcyRequest) request = g_new0 (AlvIcyRequest, 1);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  guint n_headers = 0;
  guint n_lines;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  if (len > ALV_ICY_MAX_REQUEST_SIZE)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT, _("Request too large"));
      return NULL;
    }
  if (len == 0 || memchr (data, '\0', len) != NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request"));
      return NULL;
    }
  text = g_strndup ((const char *) data, len);
  lines = g_strsplit (text, "\n", -1);
  n_lines = g_strv_length (lines);

  for (guint i = 0; i < n_lines; i++)
    {
      gsize l = strlen (lines[i]);

      if (l > 0 && lines[i][l - 1] == '\r')
        lines[i][l - 1] = '\0';
      if (strchr (lines[i], '\r') != NULL)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request"));
          return NULL;
        }
    }
  if (!parse_request_line (lines[0], request, error))
    return NULL;

  for (guint i = 1; i < n_lines; i++)
    {
      const char *line = lines[i];
      const char *colon;
      g_autofree char *value = NULL;

      if (line[0] == '\0')
        break; /* end of head; anything after it is not ours to read */
      if (++n_headers > ALV_ICY_MAX_HEADERS)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT, _("Too many request headers"));
          return NULL;
        }
      colon = strchr (line, ':');
      if (colon == NULL || colon == line)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request header"));
          return NULL;
        }
      for (const char *p = line; p < colon; p++)
        if (!is_tchar (*p))
          {
            g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Malformed request header"));
            return NULL;
          }
      value = g_strstrip (g_strdup (colon + 1));
      if (colon - line == 12 && g_ascii_strncasecmp (line, "Icy-MetaData", 12) == 0)
        request->icy_metadata = strcmp (value, "1") == 0;
      else if (colon - line == 10 && g_ascii_strncasecmp (line, "User-Agent", 10) == 0)
        {
          g_free (request->user_agent);
          request->user_agent = clean_string (value, strlen (value), MAX_HEADER_VALUE);
        }
    }
  return g_steal_pointer (&request);
}

/**
 * alv_icy_format_title:
 * @artist: (nullable): the item's creator
 * @title: (nullable): the item's title
 *
 * Formats the StreamTitle the way stations do: "Artist - Title", or
 * whichever of the two is set.
 *
 * Returns: (transfer full): the title, "" when neither is set
 */
char *
alv_icy_format_title (const char *artist,
                      const char *title)
{
  gboolean has_artist = artist != NULL && artist[0] != '\0';
  gboolean has_title = title != NULL && title[0] != '\0';

  if (has_artist && has_title)
    return g_strdup_printf ("%s - %s", artist, title);
  if (has_title)
    return g_strdup (title);
  if (has_artist)
    return g_strdup (artist);
  return g_strdup ("");
}

/**
 * alv_icy_metadata_block:
 * @stream_title: (nullable): the title to announce
 *
 * Builds one ICY metadata block: a length byte L, then L * 16 bytes of
 * `StreamTitle='…';` followed by at least one NUL.  The title loses control
 * characters, becomes valid UTF-8, has every `';` turned into `' ;` (the
 * terminator clients look for) and is cut (on a character boundary) so the
 * block fits in 255 * 16 bytes.  A %NULL title gives the single 0x00 byte
 * meaning "unchanged".
 *
 * Returns: (transfer full): the block
 */
GBytes *
alv_icy_metadata_block (const char *stream_title)
{
  static const guint8 empty = 0;
  const gsize max_title = ALV_ICY_MAX_METADATA - 1 - strlen (TITLE_PREFIX) - strlen (TITLE_SUFFIX);
  g_autofree char *clean = NULL;
  GString *escaped;
  g_autofree char *cut = NULL;
  gsize n, blocks;
  guint8 *buf;

  if (stream_title == NULL)
    return g_bytes_new_static (&empty, 1);

  clean = clean_string (stream_title, strlen (stream_title), ALV_ICY_MAX_METADATA);
  escaped = g_string_new (NULL);
  for (const char *p = clean; *p != '\0'; p++)
    {
      g_string_append_c (escaped, *p);
      if (p[0] == '\'' && p[1] == ';')
        g_string_append_c (escaped, ' ');
    }
  cut = clean_string (escaped->str, escaped->len, max_title);
  g_string_free (escaped, TRUE);

  n = strlen (TITLE_PREFIX) + strlen (cut) + strlen (TITLE_SUFFIX);
  blocks = (n + 1 + 15) / 16;
  buf = g_malloc0 (1 + blocks * 16);
  buf[0] = (guint8) blocks;
  memcpy (buf + 1, TITLE_PREFIX, strlen (TITLE_PREFIX));
  memcpy (buf + 1 + strlen (TITLE_PREFIX), cut, strlen (cut));
  memcpy (buf + 1 + strlen (TITLE_PREFIX) + strlen (cut), TITLE_SUFFIX, strlen (TITLE_SUFFIX));
  return g_bytes_new_take (buf, 1 + blocks * 16);
}

/**
 * alv_icy_header_value:
 * @value: (nullable): a string from the station's metadata
 *
 * Makes @value safe for a response header: valid UTF-8, no control
 * characters (no CR/LF header injection), at most 1024 bytes.
 *
 * Returns: (transfer full): the cleaned value, "" for %NULL
 */
char *
alv_icy_header_value (const char *value)
{
  if (value == NULL)
    return g_strdup ("");
  return g_strstrip (clean_string (value, strlen (value), MAX_HEADER_VALUE));
}

/**
 * alv_stream_format_from_content_type:
 * @content_type: (nullable): a media type, parameters allowed
 *
 * Returns: the format the stream treats @content_type as
 */
AlvStreamFormat
alv_stream_format_from_content_type (const char *content_type)
{
  static const struct { const char *type; AlvStreamFormat format; } map[] = {
    { "audio/mpeg", ALV_STREAM_FORMAT_MP3 },
    { "audio/mp3", ALV_STREAM_FORMAT_MP3 },
    { "audio/mpeg3", ALV_STREAM_FORMAT_MP3 },
    { "audio/x-mpeg", ALV_STREAM_FORMAT_MP3 },
    { "audio/aac", ALV_STREAM_FORMAT_AAC },
    { "audio/aacp", ALV_STREAM_FORMAT_AAC },
    { "audio/x-aac", ALV_STREAM_FORMAT_AAC },
    { "audio/ogg", ALV_STREAM_FORMAT_OGG },
    { "application/ogg", ALV_STREAM_FORMAT_OGG },
    { "video/ogg", ALV_STREAM_FORMAT_OGG },
    { "audio/opus", ALV_STREAM_FORMAT_OGG },
    { "audio/x-vorbis+ogg", ALV_STREAM_FORMAT_OGG },
    { "audio/vorbis", ALV_STREAM_FORMAT_OGG },
    { "video/webm", ALV_STREAM_FORMAT_MATROSKA },
    { "audio/webm", ALV_STREAM_FORMAT_MATROSKA },
    { "video/x-matroska", ALV_STREAM_FORMAT_MATROSKA },
    { "audio/x-matroska", ALV_STREAM_FORMAT_MATROSKA },
    { "video/matroska", ALV_STREAM_FORMAT_MATROSKA },
    { "audio/matroska", ALV_STREAM_FORMAT_MATROSKA },
  };
  g_autofree char *type = NULL;
  const char *semi;

  if (content_type == NULL)
    return ALV_STREAM_FORMAT_OTHER;
  semi = strchr (content_type, ';');
  type = g_strstrip (semi != NULL ? g_strndup (content_type, (gsize) (semi - content_type))
                                  : g_strdup (content_type));
  for (gsize i = 0; i < G_N_ELEMENTS (map); i++)
    if (g_ascii_strcasecmp (type, map[i].type) == 0)
      return map[i].format;
  return ALV_STREAM_FORMAT_OTHER;
}
