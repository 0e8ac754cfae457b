/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the parsers of the local stream (core/): the ICY
 * HTTP request parser and metadata block builder, the Ogg page parser,
 * scanner and time lookup, and the MP3 frame parser, sync search and
 * Xing/CBR offsets, and the stream server's own framing of pushed bytes
 * (MP3 frames and tags, Ogg pages, header pages, serial renumbering).  The
 * first byte picks how the rest is split, which time position is looked up
 * and which format the server is fed as, so one input reaches every path.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>

#include "alv-icy.h"
#include "alv-mp3.h"
#include "alv-ogg.h"
#include "alv-stream-server.h"

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
  if (request != NULL && request->path == NULL)
    __builtin_trap ();

  block = alv_icy_metadata_block (text);
  {
    gsize len;
    const guint8 *b = g_bytes_get_data (block, &len);

    /* framing invariants: L * 16 + 1 bytes, NUL-terminated, within the cap */
    if (len != 1 + 16 * (gsize) b[0] || len > 1 + ALV_ICY_MAX_METADATA || b[len - 1] != 0)
      __builtin_trap ();
  }
  header = alv_icy_header_value (text);
  if (strchr (header, '\r') != NULL || strchr (header, '\n') != NULL)
    __builtin_trap ();
  (void) alv_stream_format_from_content_type (text);
}

static void
fuzz_ogg (const guint8 *data,
          gsize         size,
          guint8        control)
{
  g_autoptr(AlvOggScanner) scanner = alv_ogg_scanner_new ();
  g_autoptr(GError) error = NULL;
  gsize split = size > 0 ? (control * 37u) % (size + 1) : 0;
  AlvOggInfo info;
  AlvOggPage page;

  alv_ogg_scanner_push (scanner, data, split);
  for (;;)
    {
      g_autoptr(GBytes) bytes = alv_ogg_scanner_pop_page (scanner, &page);

      if (bytes == NULL)
        break;
    }
  alv_ogg_scanner_push (scanner, data + split, size - split);
  for (;;)
    {
      g_autoptr(GBytes) bytes = alv_ogg_scanner_pop_page (scanner, &page);
      gsize len;
      g_autofree guint8 *copy = NULL;

      if (bytes == NULL)
        break;
      copy = g_bytes_unref_to_data (g_bytes_ref (bytes), &len);
      if (len != page.length || !alv_ogg_page_set_serial (copy, len, 0xdeadbeef))
        __builtin_trap ();
    }
  (void) alv_ogg_scanner_headers_done (scanner);

  if (alv_ogg_parse_info (data, size, &info, &error))
    {
      gsize offset = 0;

      (void) alv_ogg_granule_to_usec (&info, (gint64) control << 40);
      if (alv_ogg_find_page_at_time (data, size, 0, &info, (guint64) control * 100000, &offset, NULL)
          && offset >= size)
        __builtin_trap ();
    }
  (void) alv_ogg_page_parse (data, size, &page);
}

static void
fuzz_mp3 (const guint8 *data,
          gsize         size,
          guint8        control)
{
  g_autoptr(GError) error = NULL;
  AlvMp3Frame frame;
  AlvMp3Info info;
  gsize offset = 0;

  if (alv_mp3_frame_parse (data, size, &frame) && (frame.length < 24 || frame.length > ALV_MP3_MAX_FRAME_SIZE))
    __builtin_trap ();
  if (alv_mp3_find_sync (data, size, (control & 1) != 0, &offset) && offset >= size)
    __builtin_trap ();
  (void) alv_mp3_id3v2_size (data, size);
  if (alv_mp3_parse_info (data, size, &info, &error))
    {
      guint64 file_size = (control & 2) ? size : 0;

      (void) alv_mp3_duration_usec (&info, size);
      if (file_size > 0 && alv_mp3_time_to_offset (&info, file_size, (guint64) control * 250000) > file_size)
        __builtin_trap ();
    }
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
  if (alv_stream_server_get_bytes_pushed (server) != 2 * (guint64) size)
    __builtin_trap ();
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  guint8 control;

  if (size < 1 || size > 256 * 1024)
    return 0;
  control = data[0];
  data++;
  size--;
  fuzz_icy (data, size);
  fuzz_ogg (data, size, control);
  fuzz_mp3 (data, size, control);
  fuzz_server (data, size, control);
  return 0;
}
