/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the local stream's protocol side (core/): the ICY
 * HTTP request parser and metadata block builder, and the stream server's
 * own framing of pushed bytes (MP3 frames and tags, Ogg pages, header
 * pages, serial renumbering).  The first byte picks the piece size and the
 * format the server is fed as, so one input reaches every path.  The MP3
 * and Ogg framing functions themselves have their own targets, fuzz-mp3
 * and fuzz-ogg.  A g_critical()/g_warning() is fatal.
 */
#define G_LOG_DOMAIN "fuzz-icy"

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>

#include "alv-icy.h"
#include "alv-stream-server.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
fuzz_icy (const guint8 *data,
          gsize         size)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvIcyRequest) request = NULL;
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(GBytes) block = NULL;
  g_autofree char *header = NULL;
  gssize end = alv_icy_request_find_end (data, size);

  if (end > 0)
    request = alv_icy_request_parse (data, (gsize) end, &error);
  else
    request = alv_icy_request_parse (data, size, &error);
  CHECK (request == NULL || request->path != NULL);

  block = alv_icy_metadata_block (text);
  {
    gsize len;
    const guint8 *b = g_bytes_get_data (block, &len);

    /* framing invariants: L * 16 + 1 bytes, NUL-terminated, within the cap */
    CHECK (len == 1 + 16 * (gsize) b[0] && len <= 1 + ALV_ICY_MAX_METADATA && b[len - 1] == 0);
  }
  header = alv_icy_header_value (text);
  CHECK (strchr (header, '\r') == NULL && strchr (header, '\n') == NULL);
  (void) alv_stream_format_from_content_type (text);
}

/* Feeds the input to a (not listening) server as two items of one format,
 * in pieces, so its framers and ring see arbitrary bytes. */
static void
fuzz_server (const guint8 *data,
             gsize         size,
             guint8        control)
{
  static const char *types[] = { "audio/mpeg", "audio/ogg", "audio/aac", "audio/webm" };
  g_autoptr(AlvStreamServer) server = alv_stream_server_new ("/stream");
  gsize piece = 1 + (control >> 2) * 61u;

  g_object_set (server, "burst-size", 4096, NULL);
  for (guint item = 0; item < 2; item++)
    {
      alv_stream_server_begin_item (server, types[control & 3], "Title", "Artist");
      for (gsize off = 0; off < size; off += piece)
        {
          g_autoptr(GBytes) bytes = g_bytes_new_static (data + off, MIN (piece, size - off));

          alv_stream_server_push (server, bytes);
        }
    }
  CHECK (alv_stream_server_get_bytes_pushed (server) == 2 * (guint64) size);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  guint8 control;

  fuzz_init ();
  if (size < 1 || size > 256 * 1024)
    return 0;
  control = data[0];
  data++;
  size--;
  fuzz_icy (data, size);
  fuzz_server (data, size, control);
  return 0;
}
