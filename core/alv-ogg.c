/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ogg pages (RFC 3533) for the local stream.  The scanner cuts whatever
 * byte stream it is pushed into whole, CRC-checked pages, skipping bytes
 * that are not part of a page, and marks the header pages of each chain
 * link: its BOS pages, then every page of a logical stream until the
 * codec's header packets are complete (Vorbis and Theora 3, Opus 2, FLAC
 * 1 + the count in its mapping header, Speex 2 + extra headers, unknown
 * codecs 1).  A BOS page after data pages starts a new link (a chained
 * stream).  The server keeps the header pages of the current link to give
 * late joiners, who then start on a page boundary; in a link with Theora
 * video, on a page where a keyframe packet begins.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-ogg.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

/* header packets we accept per stream (FLAC and Speex say how many) */
#define MAX_HEADER_PACKETS 16

static guint32 crc_table[256];

static gpointer
init_crc_table (gpointer data G_GNUC_UNUSED)
{
  for (guint32 i = 0; i < 256; i++)
    {
      guint32 r = i << 24;

      for (guint j = 0; j < 8; j++)
        r = (r & 0x80000000u) ? (r << 1) ^ 0x04c11db7u : (r << 1);
      crc_table[i] = r;
    }
  return NULL;
}

/**
 * alv_ogg_crc32:
 * @data: bytes
 * @len: their length
 *
 * The Ogg CRC-32 (polynomial 0x04c11db7, no reflection, initial value 0,
 * no final XOR).  For a page, compute it with the CRC field zeroed.
 *
 * Returns: the checksum
 */
guint32
alv_ogg_crc32 (const guint8 *data,
               gsize         len)
{
  static GOnce once = G_ONCE_INIT;
  guint32 crc = 0;

  g_once (&once, init_crc_table, NULL);
  for (gsize i = 0; i < len; i++)
    crc = (crc << 8) ^ crc_table[((crc >> 24) & 0xff) ^ data[i]];
  return crc;
}

static guint32
read_le32 (const guint8 *p)
{
  return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}

static guint32
page_crc (const guint8 *data,
          gsize         len)
{
  static GOnce once = G_ONCE_INIT;
  guint32 crc = 0;

  g_once (&once, init_crc_table, NULL);
  for (gsize i = 0; i < len; i++)
    {
      guint8 b = (i >= 22 && i < 26) ? 0 : data[i];

      crc = (crc << 8) ^ crc_table[((crc >> 24) & 0xff) ^ b];
    }
  return crc;
}

/**
 * alv_ogg_page_parse:
 * @data: bytes that may start with a page
 * @len: how many there are
 * @page: (out caller-allocates): the page's fields on success
 *
 * Checks for a whole Ogg page at @data: capture pattern, version 0, known
 * flags, the lengths, and the CRC.
 *
 * Returns: %ALV_OGG_PARSE_OK, %ALV_OGG_PARSE_NEED_MORE when @data is a
 *   prefix of what could be a page, %ALV_OGG_PARSE_INVALID otherwise
 */
AlvOggParseResult
alv_ogg_page_parse (const guint8 *data,
                    gsize         len,
                    AlvOggPage   *page)
{
  guint nsegs;
  gsize body = 0;
  guint64 granule = 0;

  g_return_val_if_fail (data != NULL || len == 0, ALV_OGG_PARSE_INVALID);
  g_return_val_if_fail (page != NULL, ALV_OGG_PARSE_INVALID);

  if (memcmp (data, "OggS", MIN (len, 4)) != 0)
    return ALV_OGG_PARSE_INVALID;
  if (len > 4 && data[4] != 0)
    return ALV_OGG_PARSE_INVALID;
  if (len > 5 && (data[5] & ~0x07) != 0)
    return ALV_OGG_PARSE_INVALID;
  if (len < 27)
    return ALV_OGG_PARSE_NEED_MORE;
  nsegs = data[26];
  if (len < 27 + (gsize) nsegs)
    return ALV_OGG_PARSE_NEED_MORE;

  memset (page, 0, sizeof *page);
  for (guint i = 0; i < nsegs; i++)
    {
      body += data[27 + i];
      if (data[27 + i] < 255)
        page->n_packets++;
    }
  page->header_length = 27 + nsegs;
  page->length = page->header_length + body;
  if (len < page->length)
    return ALV_OGG_PARSE_NEED_MORE;
  if (page_crc (data, page->length) != read_le32 (data + 22))
    return ALV_OGG_PARSE_INVALID;

  for (guint i = 0; i < 8; i++)
    granule |= (guint64) data[6 + i] << (8 * i);
  page->flags = data[5];
  page->granule = (gint64) granule;
  if (page->granule < 0)
    page->granule = -1;
  page->serial = read_le32 (data + 14);
  page->seqno = read_le32 (data + 18);
  return ALV_OGG_PARSE_OK;
}

/**
 * alv_ogg_page_set_serial:
 * @data: a whole page
 * @len: its length
 * @serial: the new serial number
 *
 * Rewrites a page's serial number and CRC (used to keep consecutive chain
 * links apart when two items happen to share a serial).
 *
 * Returns: %FALSE if @data is not a whole valid page
 */
gboolean
alv_ogg_page_set_serial (guint8  *data,
                         gsize    len,
                         guint32  serial)
{
  AlvOggPage page;
  guint32 crc;

  if (alv_ogg_page_parse (data, len, &page) != ALV_OGG_PARSE_OK || page.length != len)
    return FALSE;
  for (guint i = 0; i < 4; i++)
    data[14 + i] = (guint8) (serial >> (8 * i));
  crc = page_crc (data, len);
  for (guint i = 0; i < 4; i++)
    data[22 + i] = (guint8) (crc >> (8 * i));
  return TRUE;
}

/**
 * alv_ogg_page_has_theora_keyframe:
 * @data: a whole page of a Theora stream
 * @page: its fields, from alv_ogg_page_parse()
 *
 * Whether a keyframe packet begins on the page (a data packet, first bit
 * 0, whose second bit, the frame type, is 0 for intra): a decoder given
 * the header pages and the stream from this page on has a whole picture
 * to start from.  A packet continued from the page before does not count.
 *
 * Returns: %TRUE if a Theora keyframe begins on the page
 */
gboolean
alv_ogg_page_has_theora_keyframe (const guint8     *data,
                                  const AlvOggPage *page)
{
  gboolean begins;
  gsize body = 0;

  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (page != NULL, FALSE);
  g_return_val_if_fail (page->header_length >= 27 && page->length >= page->header_length, FALSE);

  begins = !(page->flags & ALV_OGG_PAGE_CONTINUED);
  for (gsize i = 27; i < page->header_length; i++)
    {
      guint8 lacing = data[i];

      /* an empty packet is a dropped frame, not a keyframe */
      if (begins && lacing > 0 && page->header_length + body < page->length
          && (data[page->header_length + body] & 0xc0) == 0)
        return TRUE;
      body += lacing;
      begins = lacing < 255;
    }
  return FALSE;
}

typedef struct
{
  AlvOggCodec codec;
  guint headers;  /* header packets, BOS included */
  guint32 rate;
  guint32 preskip;
} CodecInfo;

/* Identifies a codec from the first packet of a BOS page. */
static void
identify_codec (const guint8 *p,
                gsize         len,
                CodecInfo    *info)
{
  memset (info, 0, sizeof *info);
  info->codec = ALV_OGG_CODEC_UNKNOWN;
  info->headers = 1;

  if (len >= 16 && memcmp (p, "\x01vorbis", 7) == 0)
    {
      info->codec = ALV_OGG_CODEC_VORBIS;
      info->headers = 3;
      info->rate = read_le32 (p + 12);
    }
  else if (len >= 19 && memcmp (p, "OpusHead", 8) == 0)
    {
      info->codec = ALV_OGG_CODEC_OPUS;
      info->headers = 2;
      info->rate = 48000;
      info->preskip = (guint32) p[10] | ((guint32) p[11] << 8);
    }
  else if (len >= 30 && memcmp (p, "\x7f" "FLAC", 5) == 0)
    {
      guint n = ((guint) p[7] << 8) | p[8];

      info->codec = ALV_OGG_CODEC_FLAC;
      /* 0 means "unknown": STREAMINFO and VORBIS_COMMENT are the minimum */
      info->headers = 1 + (n == 0 ? 1 : MIN (n, MAX_HEADER_PACKETS - 1));
      info->rate = ((guint32) p[27] << 12) | ((guint32) p[28] << 4) | (p[29] >> 4);
    }
  else if (len >= 72 && memcmp (p, "Speex   ", 8) == 0)
    {
      guint32 extra = read_le32 (p + 68);

      info->codec = ALV_OGG_CODEC_SPEEX;
      info->headers = 2 + MIN (extra, MAX_HEADER_PACKETS - 2);
      info->rate = read_le32 (p + 36);
    }
  else if (len >= 7 && memcmp (p, "\x80theora", 7) == 0)
    {
      info->codec = ALV_OGG_CODEC_THEORA;
      info->headers = 3;
    }
}

/* The first packet of a page that starts one: its bytes and length. */
static gsize
first_packet (const guint8     *data,
              const AlvOggPage *page)
{
  gsize plen = 0;

  for (gsize i = 27; i < page->header_length; i++)
    {
      plen += data[i];
      if (data[i] < 255)
        break;
    }
  return plen;
}

typedef struct
{
  guint32 serial;
  CodecInfo info;
  guint seen;
} StreamState;

struct _AlvOggScanner
{
  GByteArray *buf;
  gsize pos;           /* consumed prefix of buf */
  guint64 skipped;
  gboolean link_started; /* a page of the current link was seen */
  gboolean link_has_data; /* a non-BOS page of the current link was seen */
  StreamState streams[ALV_OGG_MAX_STREAMS];
  guint n_streams;
};

/**
 * alv_ogg_scanner_new:
 *
 * Returns: (transfer full): a scanner waiting for the first page of a link
 */
AlvOggScanner *
alv_ogg_scanner_new (void)
{
  AlvOggScanner *scanner = g_new0 (AlvOggScanner, 1);

  scanner->buf = g_byte_array_new ();
  return scanner;
}

void
alv_ogg_scanner_free (AlvOggScanner *scanner)
{
  if (scanner == NULL)
    return;
  g_byte_array_unref (scanner->buf);
  g_free (scanner);
}

/**
 * alv_ogg_scanner_reset:
 * @scanner: a scanner
 *
 * Forgets buffered bytes and the current link: the next page is the start
 * of a new link (a new item).
 */
void
alv_ogg_scanner_reset (AlvOggScanner *scanner)
{
  g_return_if_fail (scanner != NULL);
  g_byte_array_set_size (scanner->buf, 0);
  scanner->pos = 0;
  scanner->link_started = FALSE;
  scanner->link_has_data = FALSE;
  scanner->n_streams = 0;
}

/**
 * alv_ogg_scanner_push:
 * @scanner: a scanner
 * @data: the next bytes of the stream
 * @len: their length
 *
 * Appends bytes; take the complete pages out with alv_ogg_scanner_pop_page()
 * after each push (the scanner keeps at most one partial page besides what
 * was pushed last).
 */
void
alv_ogg_scanner_push (AlvOggScanner *scanner,
                      const guint8  *data,
                      gsize          len)
{
  g_return_if_fail (scanner != NULL);
  g_return_if_fail (data != NULL || len == 0);

  if (scanner->pos > 0 && scanner->pos >= scanner->buf->len / 2)
    {
      g_byte_array_remove_range (scanner->buf, 0, (guint) scanner->pos);
      scanner->pos = 0;
    }
  g_byte_array_append (scanner->buf, data, (guint) len);
}

static void
skip (AlvOggScanner *scanner,
      gsize          n)
{
  scanner->pos += n;
  scanner->skipped += n;
}

static StreamState *
find_stream (AlvOggScanner *scanner,
             guint32        serial)
{
  for (guint i = 0; i < scanner->n_streams; i++)
    if (scanner->streams[i].serial == serial)
      return &scanner->streams[i];
  return NULL;
}

static void
classify (AlvOggScanner *scanner,
          const guint8  *data,
          AlvOggPage    *page)
{
  StreamState *stream;

  if (page->flags & ALV_OGG_PAGE_BOS)
    {
      if (!scanner->link_started || scanner->link_has_data)
        {
          scanner->n_streams = 0;
          scanner->link_has_data = FALSE;
          page->new_link = TRUE;
        }
      scanner->link_started = TRUE;
      page->is_header = TRUE;
      if (find_stream (scanner, page->serial) == NULL && scanner->n_streams < ALV_OGG_MAX_STREAMS)
        {
          stream = &scanner->streams[scanner->n_streams++];
          stream->serial = page->serial;
          identify_codec (data + page->header_length, first_packet (data, page), &stream->info);
          stream->seen = page->n_packets;
        }
      return;
    }

  scanner->link_started = TRUE;
  scanner->link_has_data = TRUE;
  stream = find_stream (scanner, page->serial);
  if (stream != NULL && stream->seen < stream->info.headers)
    {
      page->is_header = TRUE;
      stream->seen += page->n_packets;
    }
  else if (stream != NULL && stream->info.codec == ALV_OGG_CODEC_THEORA)
    page->keyframe = alv_ogg_page_has_theora_keyframe (data, page);
}

/**
 * alv_ogg_scanner_pop_page:
 * @scanner: a scanner
 * @page: (out caller-allocates): the page's fields, with @is_header and
 *   @new_link set
 *
 * Takes the next complete page out of the scanner.  Bytes that do not
 * belong to a valid page are skipped (see alv_ogg_scanner_get_skipped()).
 *
 * Returns: (transfer full) (nullable): the page's bytes, or %NULL when no
 *   complete page is buffered
 */
GBytes *
alv_ogg_scanner_pop_page (AlvOggScanner *scanner,
                          AlvOggPage    *page)
{
  g_return_val_if_fail (scanner != NULL, NULL);
  g_return_val_if_fail (page != NULL, NULL);

  for (;;)
    {
      const guint8 *data;
      gsize len;
      const guint8 *sync;
      GBytes *bytes;

      /* an empty buffer may have no storage at all (data == NULL) */
      if (scanner->pos >= scanner->buf->len)
        return NULL;
      data = scanner->buf->data + scanner->pos;
      len = scanner->buf->len - scanner->pos;
      sync = len >= 4 ? memchr (data, 'O', len) : NULL;

      /* find a capture pattern; keep a possible partial one at the end */
      while (sync != NULL && (gsize) (data + len - sync) >= 4 && memcmp (sync, "OggS", 4) != 0)
        sync = memchr (sync + 1, 'O', (gsize) (data + len - sync - 1));
      if (sync == NULL)
        {
          if (len > 3)
            skip (scanner, len - 3);
          return NULL;
        }
      if (sync > data)
        {
          skip (scanner, (gsize) (sync - data));
          continue;
        }
      switch (alv_ogg_page_parse (data, len, page))
        {
        case ALV_OGG_PARSE_NEED_MORE:
          return NULL;
        case ALV_OGG_PARSE_INVALID:
          skip (scanner, 1);
          continue;
        case ALV_OGG_PARSE_OK:
        default:
          break;
        }
      classify (scanner, data, page);
      bytes = g_bytes_new (data, page->length);
      scanner->pos += page->length;
      return bytes;
    }
}

/**
 * alv_ogg_scanner_headers_done:
 * @scanner: a scanner
 *
 * Returns: whether every logical stream of the current link has all its
 *   header packets
 */
gboolean
alv_ogg_scanner_headers_done (AlvOggScanner *scanner)
{
  g_return_val_if_fail (scanner != NULL, FALSE);

  if (scanner->n_streams == 0)
    return FALSE;
  for (guint i = 0; i < scanner->n_streams; i++)
    if (scanner->streams[i].seen < scanner->streams[i].info.headers)
      return FALSE;
  return TRUE;
}

/**
 * alv_ogg_scanner_has_video:
 * @scanner: a scanner
 *
 * Returns: whether the current link has a Theora stream (then only its
 *   keyframe pages are places to start)
 */
gboolean
alv_ogg_scanner_has_video (AlvOggScanner *scanner)
{
  g_return_val_if_fail (scanner != NULL, FALSE);

  for (guint i = 0; i < scanner->n_streams; i++)
    if (scanner->streams[i].info.codec == ALV_OGG_CODEC_THEORA)
      return TRUE;
  return FALSE;
}

/**
 * alv_ogg_scanner_get_skipped:
 * @scanner: a scanner
 *
 * Returns: how many bytes were skipped as not part of a page
 */
guint64
alv_ogg_scanner_get_skipped (AlvOggScanner *scanner)
{
  g_return_val_if_fail (scanner != NULL, 0);
  return scanner->skipped;
}

/**
 * alv_ogg_parse_info:
 * @data: the start of an item (a chain link): its header pages at least
 * @len: length of @data
 * @info: (out caller-allocates): what the headers say
 * @error: return location for a #GError
 *
 * Reads the header pages at the start of an Ogg item and describes its
 * first audio stream (Vorbis, Opus, FLAC or Speex): serial, granule rate
 * and where the header pages end; and its Theora stream if it has one.
 * A link of Theora alone is described by its video stream (rate 0).
 *
 * Returns: %TRUE on success
 */
gboolean
alv_ogg_parse_info (const guint8  *data,
                    gsize          len,
                    AlvOggInfo    *info,
                    GError       **error)
{
  g_autoptr(AlvOggScanner) scanner = alv_ogg_scanner_new ();
  gboolean found = FALSE;
  gsize offset = 0;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (info != NULL, FALSE);

  memset (info, 0, sizeof *info);
  alv_ogg_scanner_push (scanner, data, len);
  for (;;)
    {
      AlvOggPage page;
      g_autoptr(GBytes) bytes = alv_ogg_scanner_pop_page (scanner, &page);

      if (bytes == NULL)
        break;
      if (page.new_link && offset > 0)
        break;
      if (!page.is_header)
        break;
      offset = scanner->pos;
      if (alv_ogg_scanner_headers_done (scanner))
        {
          found = TRUE;
          break;
        }
    }
  if (!found)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("No complete Ogg headers"));
      return FALSE;
    }
  for (guint i = 0; i < scanner->n_streams; i++)
    if (scanner->streams[i].info.codec == ALV_OGG_CODEC_THEORA)
      {
        info->video_codec = ALV_OGG_CODEC_THEORA;
        info->video_serial = scanner->streams[i].serial;
        break;
      }
  info->headers_length = offset;
  for (guint i = 0; i < scanner->n_streams; i++)
    {
      const CodecInfo *c = &scanner->streams[i].info;

      if (c->codec != ALV_OGG_CODEC_UNKNOWN && c->codec != ALV_OGG_CODEC_THEORA && c->rate > 0)
        {
          info->codec = c->codec;
          info->serial = scanner->streams[i].serial;
          info->rate = c->rate;
          info->preskip = c->preskip;
          return TRUE;
        }
    }
  if (info->video_codec != ALV_OGG_CODEC_UNKNOWN)
    {
      info->codec = info->video_codec;
      info->serial = info->video_serial;
      return TRUE;
    }
  memset (info, 0, sizeof *info);
  g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED, _("No supported audio or video stream in Ogg headers"));
  return FALSE;
}

/**
 * alv_ogg_granule_to_usec:
 * @info: stream info from alv_ogg_parse_info()
 * @granule: a granule position of that stream
 *
 * Returns: the time in microseconds (rounded down, %G_MAXINT64 for a
 *   granule position beyond that), or -1 if @granule is -1 or @info has
 *   no rate
 */
gint64
alv_ogg_granule_to_usec (const AlvOggInfo *info,
                         gint64            granule)
{
  guint64 g, seconds, usec;

  g_return_val_if_fail (info != NULL, -1);
  if (granule < 0 || info->rate == 0)
    return -1;
  g = (guint64) granule > info->preskip ? (guint64) granule - info->preskip : 0;
  /* a granule position is untrusted: saturate rather than wrap */
  seconds = g / info->rate;
  if (seconds > (guint64) G_MAXINT64 / G_USEC_PER_SEC)
    return G_MAXINT64;
  usec = seconds * G_USEC_PER_SEC + (g % info->rate) * G_USEC_PER_SEC / info->rate;
  return (gint64) MIN (usec, (guint64) G_MAXINT64);
}

/* The first whole, CRC-checked page at or after *@pos (which it moves
 * there): damaged regions are skipped. */
static gboolean
next_page (const guint8 *data,
           gsize         len,
           gsize        *pos,
           AlvOggPage   *page)
{
  while (*pos < len)
    {
      const guint8 *sync = memchr (data + *pos, 'O', len - *pos);

      if (sync == NULL)
        return FALSE;
      *pos = (gsize) (sync - data);
      if (alv_ogg_page_parse (data + *pos, len - *pos, page) == ALV_OGG_PARSE_OK)
        return TRUE;
      (*pos)++;
    }
  return FALSE;
}

/**
 * alv_ogg_find_page_at_time:
 * @data: an Ogg item from its first byte, or any window of one
 * @len: length of @data
 * @start: where to start looking; pages before @info's headers_length are
 *   never returned (set it to 0 in @info for a window)
 * @info: the stream, from alv_ogg_parse_info()
 * @time_us: the position
 * @offset: (out): offset in @data of the first page of @info's stream whose
 *   granule position is at or after @time_us
 * @error: return location for a #GError
 *
 * Finds where to start an item mid-way: push its header pages, then the
 * bytes from @offset on.  Damaged regions are skipped (resync on a
 * CRC-checked page).
 *
 * Returns: %TRUE if such a page lies within @data
 */
gboolean
alv_ogg_find_page_at_time (const guint8      *data,
                           gsize              len,
                           gsize              start,
                           const AlvOggInfo  *info,
                           guint64            time_us,
                           gsize             *offset,
                           GError           **error)
{
  guint64 target;
  gsize pos;
  AlvOggPage page;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (info != NULL, FALSE);
  g_return_val_if_fail (offset != NULL, FALSE);

  if (info->rate == 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID, _("Ogg stream has no rate"));
      return FALSE;
    }
  if (time_us > (guint64) G_MAXINT64 / 2 / info->rate)
    time_us = (guint64) G_MAXINT64 / 2 / info->rate;
  target = info->preskip + (time_us / G_USEC_PER_SEC) * info->rate
           + (time_us % G_USEC_PER_SEC) * info->rate / G_USEC_PER_SEC;

  for (pos = MAX (start, info->headers_length); next_page (data, len, &pos, &page); pos += page.length)
    if (page.serial == info->serial && page.granule >= 0 && (guint64) page.granule >= target
        && !(page.flags & ALV_OGG_PAGE_BOS))
      {
        *offset = pos;
        return TRUE;
      }
  g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID, _("No Ogg page at the requested time"));
  return FALSE;
}

/**
 * alv_ogg_find_keyframe:
 * @data: an Ogg item from its first byte, or any window of one
 * @len: length of @data
 * @start: where to start looking; pages before @info's headers_length are
 *   never returned (set it to 0 in @info for a window)
 * @info: the item's streams, from alv_ogg_parse_info(), with video
 * @offset: (out): offset in @data of the first page of the video stream
 *   on which a keyframe begins
 * @error: return location for a #GError
 *
 * Finds where a video item can be joined: push its header pages, then the
 * bytes from @offset on.  The other streams' pages after @offset are
 * about as late (a muxer interleaves by time), so sound and picture start
 * together.  Damaged regions are skipped (resync on a CRC-checked page).
 *
 * Returns: %TRUE if such a page lies within @data
 */
gboolean
alv_ogg_find_keyframe (const guint8      *data,
                       gsize              len,
                       gsize              start,
                       const AlvOggInfo  *info,
                       gsize             *offset,
                       GError           **error)
{
  gsize pos;
  AlvOggPage page;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (info != NULL, FALSE);
  g_return_val_if_fail (offset != NULL, FALSE);

  if (info->video_codec != ALV_OGG_CODEC_THEORA)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID, _("Ogg stream has no video"));
      return FALSE;
    }
  for (pos = MAX (start, info->headers_length); next_page (data, len, &pos, &page); pos += page.length)
    if (page.serial == info->video_serial && !(page.flags & ALV_OGG_PAGE_BOS)
        && alv_ogg_page_has_theora_keyframe (data + pos, &page))
      {
        *offset = pos;
        return TRUE;
      }
  g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID, _("No Ogg video keyframe"));
  return FALSE;
}
