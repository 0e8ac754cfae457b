/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the local stream's format and protocol pieces, on real
 * media from real encoders: the Ogg page parser and scanner (header pages,
 * chained links, damage), Ogg stream info and time lookup, the MP3 frame
 * parser, sync search, Xing/CBR offsets, and the ICY request parser and
 * metadata blocks.
 */
#include "config.h"

#include <string.h>
#include <gst/gst.h>

#include "alv-error.h"
#include "alv-icy.h"
#include "alv-mp3.h"
#include "alv-ogg.h"
#include "stream-media.h"

/* ---- Ogg ------------------------------------------------------------------ */

typedef struct
{
  gsize offset;
  AlvOggPage page;
} PageAt;

/* Walks a file page by page; every byte must belong to a valid page. */
static GArray *
walk_pages (GBytes *bytes)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (bytes, &len);
  GArray *pages = g_array_new (FALSE, TRUE, sizeof (PageAt));
  gsize pos = 0;

  while (pos < len)
    {
      PageAt at = { pos, { 0 } };

      g_assert_cmpint (alv_ogg_page_parse (d + pos, len - pos, &at.page), ==, ALV_OGG_PARSE_OK);
      g_array_append_val (pages, at);
      pos += at.page.length;
    }
  g_assert_cmpuint (pos, ==, len);
  return pages;
}

static void
test_ogg_pages (void)
{
  g_autoptr(GBytes) vorbis = stream_media_vorbis (60, "One", 440);
  g_autoptr(GArray) pages = NULL;
  g_autofree guint8 *copy = NULL;
  gsize len;
  const guint8 *d;
  AlvOggPage page;
  const PageAt *second;

  if (vorbis == NULL)
    {
      g_test_skip ("Vorbis encoder (vorbisenc, oggmux, taginject) missing");
      return;
    }
  d = g_bytes_get_data (vorbis, &len);
  pages = walk_pages (vorbis);
  g_assert_cmpuint (pages->len, >=, 3);
  g_assert_true (g_array_index (pages, PageAt, 0).page.flags & ALV_OGG_PAGE_BOS);
  g_assert_true (g_array_index (pages, PageAt, pages->len - 1).page.flags & ALV_OGG_PAGE_EOS);

  /* every prefix of a page needs more; a flipped bit is invalid */
  second = &g_array_index (pages, PageAt, 1);
  for (gsize cut = 0; cut < second->page.length; cut += 7)
    g_assert_cmpint (alv_ogg_page_parse (d + second->offset, cut, &page), ==, ALV_OGG_PARSE_NEED_MORE);
  copy = g_memdup2 (d + second->offset, second->page.length);
  copy[second->page.length - 1] ^= 0x10;
  g_assert_cmpint (alv_ogg_page_parse (copy, second->page.length, &page), ==, ALV_OGG_PARSE_INVALID);
  copy[second->page.length - 1] ^= 0x10;
  g_assert_cmpint (alv_ogg_page_parse (copy, second->page.length, &page), ==, ALV_OGG_PARSE_OK);
  copy[4] = 1; /* version */
  g_assert_cmpint (alv_ogg_page_parse (copy, second->page.length, &page), ==, ALV_OGG_PARSE_INVALID);
  copy[4] = 0;

  /* serial rewrite keeps the page valid */
  g_assert_true (alv_ogg_page_set_serial (copy, second->page.length, 0x12345678));
  g_assert_cmpint (alv_ogg_page_parse (copy, second->page.length, &page), ==, ALV_OGG_PARSE_OK);
  g_assert_cmpuint (page.serial, ==, 0x12345678);
  g_assert_false (alv_ogg_page_set_serial (copy, second->page.length - 1, 1));
  g_assert_cmpint (alv_ogg_page_parse ((const guint8 *) "OgX", 3, &page), ==, ALV_OGG_PARSE_INVALID);
}

typedef struct
{
  GPtrArray *pages;   /* GBytes */
  GArray *infos;      /* AlvOggPage */
} Scanned;

static void
scan_in_pieces (AlvOggScanner *scanner,
                const guint8  *d,
                gsize          len,
                Scanned       *out)
{
  gsize pos = 0;

  while (pos < len)
    {
      gsize n = (gsize) g_test_rand_int_range (1, 5000);

      n = MIN (n, len - pos);

      alv_ogg_scanner_push (scanner, d + pos, n);
      pos += n;
      for (;;)
        {
          AlvOggPage page;
          GBytes *bytes = alv_ogg_scanner_pop_page (scanner, &page);

          if (bytes == NULL)
            break;
          g_ptr_array_add (out->pages, bytes);
          g_array_append_val (out->infos, page);
        }
    }
}

static void
test_ogg_scanner (void)
{
  g_autoptr(GBytes) one = stream_media_vorbis (60, "One", 440);
  g_autoptr(GBytes) two = stream_media_vorbis (40, "Two", 880);
  g_autoptr(AlvOggScanner) scanner = alv_ogg_scanner_new ();
  g_autoptr(GByteArray) input = g_byte_array_new ();
  g_autoptr(GArray) pages_one = NULL;
  g_autoptr(GArray) pages_two = NULL;
  Scanned out = { g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref),
                  g_array_new (FALSE, TRUE, sizeof (AlvOggPage)) };
  static const char junk[] = "junk OggS not a page \xff\xff";
  guint n_headers_one = 0, n_links = 0, packets = 0;
  gsize len1, len2;
  const guint8 *d1, *d2;

  if (one == NULL || two == NULL)
    {
      g_test_skip ("Vorbis encoder missing");
      return;
    }
  d1 = g_bytes_get_data (one, &len1);
  d2 = g_bytes_get_data (two, &len2);
  pages_one = walk_pages (one);
  pages_two = walk_pages (two);

  /* junk, link one, junk, link two, all in random pieces */
  g_byte_array_append (input, (const guint8 *) junk, sizeof junk - 1);
  g_byte_array_append (input, d1, (guint) len1);
  g_byte_array_append (input, (const guint8 *) junk, sizeof junk - 1);
  g_byte_array_append (input, d2, (guint) len2);
  scan_in_pieces (scanner, input->data, input->len, &out);

  g_assert_cmpuint (out.pages->len, ==, pages_one->len + pages_two->len);
  g_assert_cmpuint (alv_ogg_scanner_get_skipped (scanner), ==, 2 * (sizeof junk - 1));
  for (guint i = 0; i < out.pages->len; i++)
    {
      const AlvOggPage *p = &g_array_index (out.infos, AlvOggPage, i);
      const PageAt *orig = i < pages_one->len ? &g_array_index (pages_one, PageAt, i)
                                              : &g_array_index (pages_two, PageAt, i - pages_one->len);
      const guint8 *src = i < pages_one->len ? d1 : d2;
      gsize size;
      const guint8 *got = g_bytes_get_data (out.pages->pdata[i], &size);

      g_assert_cmpmem (got, size, src + orig->offset, orig->page.length);
      if (p->new_link)
        n_links++;
      if (i < pages_one->len && p->is_header)
        {
          /* the header pages are exactly the leading ones */
          g_assert_cmpuint (n_headers_one, ==, i);
          n_headers_one++;
          packets += p->n_packets;
        }
      if (i < pages_one->len && !p->is_header)
        g_assert_cmpint (p->granule, !=, 0);
    }
  g_assert_cmpuint (n_links, ==, 2);
  g_assert_true (g_array_index (out.infos, AlvOggPage, pages_one->len).new_link);
  g_assert_true (g_array_index (out.infos, AlvOggPage, pages_one->len).is_header);
  /* Vorbis: identification, comment and setup packets */
  g_assert_cmpuint (n_headers_one, >=, 2);
  g_assert_cmpuint (packets, >=, 3);
  g_assert_true (alv_ogg_scanner_headers_done (scanner));

  alv_ogg_scanner_reset (scanner);
  g_assert_false (alv_ogg_scanner_headers_done (scanner));
  g_ptr_array_unref (out.pages);
  g_array_unref (out.infos);
}

static void
test_ogg_info_vorbis (void)
{
  g_autoptr(GBytes) vorbis = stream_media_vorbis (200, "One", 440);
  g_autoptr(GArray) pages = NULL;
  g_autoptr(GError) error = NULL;
  AlvOggInfo info;
  gsize len, offset = 0;
  const guint8 *d;
  gint64 prev_granule = -1;
  gboolean found = FALSE;

  if (vorbis == NULL)
    {
      g_test_skip ("Vorbis encoder missing");
      return;
    }
  d = g_bytes_get_data (vorbis, &len);
  pages = walk_pages (vorbis);
  g_assert_true (alv_ogg_parse_info (d, len, &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.codec, ==, ALV_OGG_CODEC_VORBIS);
  g_assert_cmpuint (info.rate, ==, 44100);
  g_assert_cmpuint (info.preskip, ==, 0);
  g_assert_cmpuint (info.serial, ==, g_array_index (pages, PageAt, 0).page.serial);
  g_assert_cmpint (alv_ogg_granule_to_usec (&info, 44100), ==, G_USEC_PER_SEC);
  g_assert_cmpint (alv_ogg_granule_to_usec (&info, -1), ==, -1);

  /* the header length ends on a page boundary, just before the first audio page */
  for (guint i = 0; i < pages->len; i++)
    {
      const PageAt *p = &g_array_index (pages, PageAt, i);

      if (p->offset == info.headers_length)
        {
          found = TRUE;
          g_assert_cmpint (p->page.granule, >, 0);
        }
    }
  g_assert_true (found);

  /* 2 s into a 200 * 1024-sample item */
  g_assert_true (alv_ogg_find_page_at_time (d, len, 0, &info, 2 * G_USEC_PER_SEC, &offset, &error));
  g_assert_no_error (error);
  found = FALSE;
  for (guint i = 0; i < pages->len; i++)
    {
      const PageAt *p = &g_array_index (pages, PageAt, i);

      if (p->offset == offset)
        {
          found = TRUE;
          g_assert_cmpint (p->page.granule, >=, 2 * 44100);
          g_assert_cmpint (prev_granule, <, 2 * 44100);
        }
      if (p->page.granule >= 0)
        prev_granule = p->page.granule;
    }
  g_assert_true (found);

  /* time 0 gives the first audio page, never a header page */
  g_assert_true (alv_ogg_find_page_at_time (d, len, 0, &info, 0, &offset, &error));
  g_assert_cmpuint (offset, ==, info.headers_length);
  /* beyond the end */
  g_assert_false (alv_ogg_find_page_at_time (d, len, 0, &info, (guint64) 3600 * G_USEC_PER_SEC, &offset, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  /* only the first page: headers incomplete */
  g_assert_false (alv_ogg_parse_info (d, g_array_index (pages, PageAt, 0).page.length, &info, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
}

/* Found by fuzz-icy: an empty scanner (or one fed less than a page) has
 * nothing to pop, without pointer arithmetic on an unallocated buffer
 * (UBSan in the sanitizer run). */
static void
test_ogg_scanner_empty (void)
{
  g_autoptr(AlvOggScanner) scanner = alv_ogg_scanner_new ();
  AlvOggPage page;

  g_assert_null (alv_ogg_scanner_pop_page (scanner, &page));
  alv_ogg_scanner_push (scanner, (const guint8 *) "\n", 1);
  g_assert_null (alv_ogg_scanner_pop_page (scanner, &page));
  g_assert_null (alv_ogg_scanner_pop_page (scanner, &page));
}

static void
test_ogg_info_opus (void)
{
  g_autoptr(GBytes) opus = stream_media_opus (100);
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvOggScanner) scanner = alv_ogg_scanner_new ();
  AlvOggInfo info;
  gsize len, offset;
  const guint8 *d;
  guint n_header_packets = 0;

  if (opus == NULL)
    {
      g_test_skip ("Opus encoder missing");
      return;
    }
  d = g_bytes_get_data (opus, &len);
  g_assert_true (alv_ogg_parse_info (d, len, &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.codec, ==, ALV_OGG_CODEC_OPUS);
  g_assert_cmpuint (info.rate, ==, 48000);
  g_assert_cmpuint (info.preskip, >, 0);
  g_assert_cmpint (alv_ogg_granule_to_usec (&info, info.preskip + 48000), ==, G_USEC_PER_SEC);

  /* OpusHead and OpusTags are the header packets */
  alv_ogg_scanner_push (scanner, d, len);
  for (;;)
    {
      AlvOggPage page;
      g_autoptr(GBytes) bytes = alv_ogg_scanner_pop_page (scanner, &page);

      if (bytes == NULL)
        break;
      if (page.is_header)
        n_header_packets += page.n_packets;
    }
  g_assert_cmpuint (n_header_packets, ==, 2);
  g_assert_true (alv_ogg_find_page_at_time (d, len, 0, &info, G_USEC_PER_SEC, &offset, &error));
  g_assert_cmpuint (offset, >, info.headers_length);
}

/* Found by fuzz-ogg: a granule position far beyond any real time
 * overflowed the microsecond count into a negative (or wrapped) time; it
 * saturates instead, and times stay exact up to there. */
static void
test_ogg_granule_limits (void)
{
  AlvOggInfo info = { .codec = ALV_OGG_CODEC_VORBIS, .serial = 1, .rate = 44100 };
  gint64 prev = 0;
  static const gint64 granules[] = {
    0, 44100, G_GINT64_CONSTANT (1) << 40, G_GINT64_CONSTANT (1) << 50,
    G_GINT64_CONSTANT (1) << 60, G_MAXINT64 - 1, G_MAXINT64,
  };

  for (gsize i = 0; i < G_N_ELEMENTS (granules); i++)
    {
      gint64 usec = alv_ogg_granule_to_usec (&info, granules[i]);

      g_assert_cmpint (usec, >=, prev);
      prev = usec;
    }
  g_assert_cmpint (alv_ogg_granule_to_usec (&info, G_MAXINT64), ==, G_MAXINT64);

  /* 9 * 10^12 s at 48 kHz is still exact: 9 * 10^18 us */
  info.rate = 48000;
  info.preskip = 312;
  g_assert_cmpint (alv_ogg_granule_to_usec (&info, 312 + G_GINT64_CONSTANT (48000) * 9000000000000),
                   ==, G_GINT64_CONSTANT (9000000000000000000));
  info.rate = 1;
  info.preskip = 0;
  g_assert_cmpint (alv_ogg_granule_to_usec (&info, G_MAXINT64 / G_USEC_PER_SEC),
                   ==, G_MAXINT64 / G_USEC_PER_SEC * G_USEC_PER_SEC);
  g_assert_cmpint (alv_ogg_granule_to_usec (&info, G_MAXINT64 / G_USEC_PER_SEC + 1), ==, G_MAXINT64);
}

/* ---- MP3 ------------------------------------------------------------------ */

/* Theora + Vorbis from theoraenc (a keyframe every 25 frames) and oggmux:
 * the info names both streams, the scanner marks as keyframe pages
 * exactly the Theora pages where a group of pictures begins (told by the
 * granule positions: keyframe number << shift | frames since), and the
 * lookup finds the next of them from anywhere.  Theora alone is described
 * by its video stream. */
static void
test_ogg_theora (void)
{
  g_autoptr(GBytes) av = stream_media_theora (150, "smpte", "AV", 25, TRUE);
  g_autoptr(GBytes) video = stream_media_theora (60, "ball", "V", 25, FALSE);
  g_autoptr(GBytes) vorbis = stream_media_vorbis (50, "A", 440);
  g_autoptr(AlvOggScanner) scanner = alv_ogg_scanner_new ();
  g_autoptr(GArray) keyframes = g_array_new (FALSE, FALSE, sizeof (gsize));
  g_autoptr(GError) error = NULL;
  AlvOggInfo info;
  const guint8 *d;
  gsize len, pos = 0, offset = 0;
  guint shift = 0;
  gint64 last_frame = 0;  /* granule frame count (from 1) of the last Theora page */

  if (av == NULL || video == NULL || vorbis == NULL)
    {
      g_test_skip ("theoraenc or vorbisenc missing");
      return;
    }
  d = g_bytes_get_data (av, &len);
  g_assert_true (alv_ogg_parse_info (d, len, &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.codec, ==, ALV_OGG_CODEC_VORBIS);
  g_assert_cmpuint (info.rate, ==, 44100);
  g_assert_cmpint (info.video_codec, ==, ALV_OGG_CODEC_THEORA);
  g_assert_cmpuint (info.video_serial, !=, info.serial);

  alv_ogg_scanner_push (scanner, d, len);
  for (;;)
    {
      AlvOggPage page;
      g_autoptr(GBytes) bytes = alv_ogg_scanner_pop_page (scanner, &page);
      const guint8 *p;

      if (bytes == NULL)
        break;
      p = g_bytes_get_data (bytes, NULL);
      if ((page.flags & ALV_OGG_PAGE_BOS) && memcmp (p + page.header_length, "\x80theora", 7) == 0)
        shift = ((p[page.header_length + 40] & 0x03) << 3) | (p[page.header_length + 41] >> 5);
      g_assert_true (alv_ogg_scanner_has_video (scanner));
      if (page.serial == info.video_serial && !page.is_header && page.granule > 0)
        {
          gint64 key = page.granule >> shift;

          /* a group begins on this page when the page before ended
           * before its keyframe (oggmux starts a page at each keyframe) */
          g_assert_cmpint (page.keyframe, ==, key > last_frame);
          if (page.keyframe)
            {
              g_assert_cmpint ((key - 1) % 25, ==, 0);
              g_array_append_val (keyframes, pos);
            }
          last_frame = key + (page.granule & ((1 << shift) - 1));
        }
      else
        g_assert_false (page.keyframe);
      pos += page.length;
    }
  g_assert_cmpuint (pos, ==, len);
  g_assert_cmpuint (keyframes->len, ==, 6);

  /* from anywhere, the next keyframe page; none after the last */
  g_assert_true (alv_ogg_find_keyframe (d, len, 0, &info, &offset, &error));
  g_assert_cmpuint (offset, ==, g_array_index (keyframes, gsize, 0));
  for (guint i = 1; i < keyframes->len; i++)
    {
      gsize prev = g_array_index (keyframes, gsize, i - 1);

      g_assert_true (alv_ogg_find_keyframe (d, len, prev + 1, &info, &offset, &error));
      g_assert_cmpuint (offset, ==, g_array_index (keyframes, gsize, i));
    }
  g_assert_false (alv_ogg_find_keyframe (d, len, g_array_index (keyframes, gsize, 5) + 1,
                                         &info, &offset, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  /* video alone */
  d = g_bytes_get_data (video, &len);
  g_assert_true (alv_ogg_parse_info (d, len, &info, &error));
  g_assert_no_error (error);
  g_assert_cmpint (info.codec, ==, ALV_OGG_CODEC_THEORA);
  g_assert_cmpint (info.video_codec, ==, ALV_OGG_CODEC_THEORA);
  g_assert_cmpuint (info.serial, ==, info.video_serial);
  g_assert_cmpuint (info.rate, ==, 0);
  g_assert_true (alv_ogg_find_keyframe (d, len, info.headers_length + 1, &info, &offset, &error));
  g_assert_cmpuint (offset, >, info.headers_length);

  /* audio alone has no keyframes to find */
  d = g_bytes_get_data (vorbis, &len);
  g_assert_true (alv_ogg_parse_info (d, len, &info, &error));
  g_assert_cmpint (info.video_codec, ==, ALV_OGG_CODEC_UNKNOWN);
  g_assert_false (alv_ogg_find_keyframe (d, len, 0, &info, &offset, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
}

static void
test_mp3_header (void)
{
  AlvMp3Frame f;
  static const struct
  {
    guint8 h[4];
    guint version, bitrate, rate, channels, samples;
    gsize length;
  } good[] = {
    { { 0xff, 0xfb, 0x90, 0x64 }, 10, 128000, 44100, 2, 1152, 417 },
    { { 0xff, 0xfb, 0x92, 0x64 }, 10, 128000, 44100, 2, 1152, 418 },
    { { 0xff, 0xfb, 0xe0, 0xc4 }, 10, 320000, 44100, 1, 1152, 1044 },
    { { 0xff, 0xfb, 0xea, 0x44 }, 10, 320000, 32000, 2, 1152, 1441 },
    { { 0xff, 0xf3, 0x80, 0x44 }, 20, 64000, 22050, 2, 576, 208 },
    { { 0xff, 0xe3, 0x80, 0x44 }, 25, 64000, 11025, 2, 576, 417 },
  };
  static const guint8 bad[][4] = {
    { 0xff, 0xfd, 0x90, 0x64 }, /* layer II */
    { 0xff, 0xfb, 0x00, 0x64 }, /* free format */
    { 0xff, 0xfb, 0xf0, 0x64 }, /* bitrate index 15 */
    { 0xff, 0xfb, 0x9c, 0x64 }, /* sample rate index 3 */
    { 0xff, 0xeb, 0x90, 0x64 }, /* reserved version */
    { 0xff, 0xfb, 0x90, 0x66 }, /* reserved emphasis */
    { 0xfe, 0xfb, 0x90, 0x64 }, /* no sync */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_assert_true (alv_mp3_frame_parse (good[i].h, 4, &f));
      g_assert_cmpuint (f.version, ==, good[i].version);
      g_assert_cmpuint (f.bitrate, ==, good[i].bitrate);
      g_assert_cmpuint (f.sample_rate, ==, good[i].rate);
      g_assert_cmpuint (f.channels, ==, good[i].channels);
      g_assert_cmpuint (f.samples, ==, good[i].samples);
      g_assert_cmpuint (f.length, ==, good[i].length);
      g_assert_cmpuint (f.length, <=, ALV_MP3_MAX_FRAME_SIZE);
      g_assert_false (alv_mp3_frame_parse (good[i].h, 3, &f));
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (alv_mp3_frame_parse (bad[i], 4, &f));
}

static void
test_mp3_sync (void)
{
  g_autoptr(GBytes) mp3 = stream_media_mp3 (100, FALSE);
  g_autoptr(GByteArray) junk = g_byte_array_new ();
  static const guint8 fake[4] = { 0xff, 0xfb, 0x90, 0x64 };
  guint8 zeros[100] = { 0 };
  gsize len, offset = 0, pos = 0;
  const guint8 *d;
  guint n_frames = 0;
  AlvMp3Frame f;

  if (mp3 == NULL)
    {
      g_test_skip ("MP3 encoder (lamemp3enc) missing");
      return;
    }
  d = g_bytes_get_data (mp3, &len);
  /* the encoder's output is frames, back to back */
  while (pos + 4 <= len && alv_mp3_frame_parse (d + pos, len - pos, &f))
    {
      pos += f.length;
      n_frames++;
    }
  g_assert_cmpuint (pos, ==, len);
  g_assert_cmpuint (n_frames, >=, 100);

  /* a lone fake header is not a sync point */
  g_byte_array_append (junk, fake, 4);
  g_byte_array_append (junk, zeros, sizeof zeros);
  g_byte_array_append (junk, d, (guint) len);
  g_assert_true (alv_mp3_find_sync (junk->data, junk->len, FALSE, &offset));
  g_assert_cmpuint (offset, ==, 104);

  /* undecided with too little data; everything before it may go */
  g_assert_false (alv_mp3_find_sync (junk->data + 104, 300, FALSE, &offset));
  g_assert_cmpuint (offset, ==, 0);
  g_assert_false (alv_mp3_find_sync (zeros, sizeof zeros, FALSE, &offset));
  g_assert_cmpuint (offset, ==, sizeof zeros - 3);
  /* one whole frame at the very end of a stream is believed */
  alv_mp3_frame_parse (d, len, &f);
  g_assert_true (alv_mp3_find_sync (d, f.length, TRUE, &offset));
  g_assert_cmpuint (offset, ==, 0);
}

static void
test_mp3_id3 (void)
{
  static const guint8 tag[10] = { 'I', 'D', '3', 4, 0, 0, 0, 0, 2, 1 };
  static const guint8 tag_footer[10] = { 'I', 'D', '3', 4, 0, 0x10, 0, 0, 2, 1 };
  static const guint8 not_syncsafe[10] = { 'I', 'D', '3', 4, 0, 0, 0, 0x80, 2, 1 };
  g_autoptr(GBytes) mp3 = stream_media_mp3 (20, FALSE);
  g_autoptr(GByteArray) file = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  guint8 body[257];
  AlvMp3Info info;

  g_assert_cmpuint (alv_mp3_id3v2_size (tag, 10), ==, 267);
  g_assert_cmpuint (alv_mp3_id3v2_size (tag_footer, 10), ==, 277);
  g_assert_cmpuint (alv_mp3_id3v2_size (not_syncsafe, 10), ==, 0);
  g_assert_cmpuint (alv_mp3_id3v2_size (tag, 9), ==, 0);

  if (mp3 == NULL)
    {
      g_test_skip ("MP3 encoder missing");
      return;
    }
  memset (body, 0xff, sizeof body); /* sync bits inside the tag must not matter */
  g_byte_array_append (file, tag, 10);
  g_byte_array_append (file, body, sizeof body);
  g_byte_array_append (file, g_bytes_get_data (mp3, NULL), (guint) g_bytes_get_size (mp3));
  g_assert_true (alv_mp3_parse_info (file->data, file->len, &info, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (info.audio_start, ==, 267);
  g_assert_false (info.xing);
  g_assert_cmpuint (info.first.bitrate, ==, 128000);

  g_assert_false (alv_mp3_parse_info (file->data, 200, &info, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
}

/* Counts the frames before @offset; asserts that @offset is a frame start. */
static guint
frame_index_at (const guint8 *d,
                gsize         len,
                gsize         start,
                gsize         offset)
{
  gsize pos = start;
  guint n = 0;
  AlvMp3Frame f;

  while (pos < offset && alv_mp3_frame_parse (d + pos, len - pos, &f))
    {
      pos += f.length;
      n++;
    }
  g_assert_cmpuint (pos, ==, offset);
  return n;
}

static void
test_mp3_offsets (void)
{
  g_autoptr(GBytes) cbr = stream_media_mp3 (200, FALSE);
  g_autoptr(GBytes) xing = stream_media_mp3 (200, TRUE);
  g_autoptr(GError) error = NULL;
  AlvMp3Info info;
  gsize len, sync;
  const guint8 *d;
  guint64 offset, duration;
  guint index;

  if (cbr == NULL || xing == NULL)
    {
      g_test_skip ("MP3 encoder or xingmux missing");
      return;
    }
  /* constant bitrate: 2 s = frame 76 (44100 * 2 / 1152 = 76.56) */
  d = g_bytes_get_data (cbr, &len);
  g_assert_true (alv_mp3_parse_info (d, len, &info, &error));
  g_assert_no_error (error);
  g_assert_false (info.xing);
  duration = alv_mp3_duration_usec (&info, len);
  g_assert_cmpuint (duration, >, (guint64) 200 * 1152 * G_USEC_PER_SEC / 44100 - 100000);
  g_assert_cmpuint (duration, <, (guint64) 200 * 1152 * G_USEC_PER_SEC / 44100 + 200000);
  offset = alv_mp3_time_to_offset (&info, len, 2 * G_USEC_PER_SEC);
  g_assert_true (alv_mp3_find_sync (d + offset, len - offset, TRUE, &sync));
  g_assert_cmpuint (sync, <, 418);
  index = frame_index_at (d, len, info.audio_start, offset + sync);
  g_assert_cmpuint (index, >=, 76);
  g_assert_cmpuint (index, <=, 77);
  g_assert_cmpuint (alv_mp3_time_to_offset (&info, len, (guint64) 3600 * G_USEC_PER_SEC), ==, len);

  /* Xing seek table */
  d = g_bytes_get_data (xing, &len);
  g_assert_true (alv_mp3_parse_info (d, len, &info, &error));
  g_assert_no_error (error);
  g_assert_true (info.xing);
  g_assert_true (info.has_toc);
  g_assert_cmpuint (info.n_frames, >=, 200);
  g_assert_cmpuint (info.n_frames, <=, 203);
  duration = alv_mp3_duration_usec (&info, len);
  g_assert_cmpuint (duration, >=, (guint64) 200 * 1152 * G_USEC_PER_SEC / 44100);
  offset = alv_mp3_time_to_offset (&info, len, 2 * G_USEC_PER_SEC);
  g_assert_true (alv_mp3_find_sync (d + offset, len - offset, TRUE, &sync));
  index = frame_index_at (d, len, info.audio_start + info.first.length, offset + sync);
  g_assert_cmpuint (index, >=, 74);
  g_assert_cmpuint (index, <=, 79);
}

/* The facts of a head as text (the gateway's X-Content-Head) give back
 * exactly what alv_mp3_parse_info() read, and bad text is refused. */
static void
test_mp3_facts (void)
{
  static const char *const bad[] = {
    "",
    "header=fffb9064",                        /* no start */
    "start=417",                              /* no header */
    "start=417; header=fffb906",              /* short header */
    "start=417; header=fffb90zz",             /* not hex */
    "start=417; header=00000000",             /* not a frame header */
    "start=-1; header=fffb9064",
    "start=+5; header=fffb9064",
    "start=4294967296; header=fffb9064",
    "start=417; header=fffb9064; frames=x",
    "start=417; header=fffb9064; toc=AAAA",   /* not 100 bytes */
  };
  g_autoptr(GBytes) cbr = stream_media_mp3 (40, FALSE);
  g_autoptr(GBytes) xing = stream_media_mp3 (40, TRUE);
  GBytes *files[2] = { cbr, xing };
  AlvMp3Info back;

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_false (alv_mp3_info_from_string (bad[i], &back, &error));
      g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
    }
  /* unknown keys are skipped, a format token before the facts too */
  g_assert_true (alv_mp3_info_from_string ("mpeg-audio; start=7; later=1; header=fffb9064", &back, NULL));
  g_assert_cmpuint (back.audio_start, ==, 7);
  g_assert_cmpuint (back.first.bitrate, ==, 128000);
  g_assert_false (back.xing);

  if (cbr == NULL || xing == NULL)
    {
      g_test_skip ("MP3 encoder or xingmux missing");
      return;
    }
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *text = NULL;
      AlvMp3Info info;
      gsize len;
      const guint8 *d = g_bytes_get_data (files[i], &len);

      g_assert_true (alv_mp3_parse_info (d, len, &info, &error));
      g_assert_no_error (error);
      g_assert_cmpint (info.xing, ==, i == 1);
      text = alv_mp3_info_to_string (&info);
      g_assert_cmpuint (strlen (text), <, 256);
      g_assert_true (alv_mp3_info_from_string (text, &back, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (&back, sizeof back, &info, sizeof info);
      for (guint64 t = 0; t < 5 * G_USEC_PER_SEC; t += G_USEC_PER_SEC / 3)
        g_assert_cmpuint (alv_mp3_time_to_offset (&back, len, t), ==,
                          alv_mp3_time_to_offset (&info, len, t));
    }
}

/* ---- ICY --------------------------------------------------------------------- */

static AlvIcyRequest *
parse (const char  *text,
       GError     **error)
{
  return alv_icy_request_parse ((const guint8 *) text, strlen (text), error);
}

static void
test_icy_request (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvIcyRequest) r = NULL;
  g_autoptr(GString) many = g_string_new ("GET / HTTP/1.1\r\n");
  g_autofree char *big = NULL;
  g_autofree char *long_path = g_strnfill (ALV_ICY_MAX_REQUEST_SIZE, 'a');
  static const char *bad[] = {
    "GET /stream\r\n\r\n",
    "GET  /stream HTTP/1.1\r\n\r\n",
    "GET /stream HTTP/2.0\r\n\r\n",
    "GET /stream HTTP/1.1 \r\n\r\n",
    "GET stream HTTP/1.1\r\n\r\n",
    "G(T /stream HTTP/1.1\r\n\r\n",
    "GET /str\x01" "eam HTTP/1.1\r\n\r\n",
    "GET /stream HTTP/1.1\r\nNoColon\r\n\r\n",
    "GET /stream HTTP/1.1\r\nHost : x\r\n\r\n",
    "GET /stream HTTP/1.1\r\n: x\r\n\r\n",
    "GET /stream HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
    "GET /stream HTTP/1.1\r\nHost: a\rb\r\n\r\n",
    "\r\n\r\n",
    "",
  };

  r = parse ("GET /stream?x=1#f HTTP/1.1\r\nHost: 127.0.0.1\r\nicy-metadata:1\r\n"
             "User-Agent: VLC/3.0\x01\r\n\r\n", &error);
  g_assert_no_error (error);
  g_assert_cmpint (r->method, ==, ALV_ICY_METHOD_GET);
  g_assert_cmpstr (r->path, ==, "/stream");
  g_assert_cmpuint (r->http_minor, ==, 1);
  g_assert_true (r->icy_metadata);
  g_assert_cmpstr (r->user_agent, ==, "VLC/3.0");
  g_clear_pointer (&r, alv_icy_request_free);

  r = parse ("HEAD http://127.0.0.1:8000/stream HTTP/1.0\n\n", &error);
  g_assert_no_error (error);
  g_assert_cmpint (r->method, ==, ALV_ICY_METHOD_HEAD);
  g_assert_cmpstr (r->path, ==, "/stream");
  g_assert_cmpuint (r->http_minor, ==, 0);
  g_assert_false (r->icy_metadata);
  g_assert_null (r->user_agent);
  g_clear_pointer (&r, alv_icy_request_free);

  r = parse ("POST / HTTP/1.1\r\nIcy-MetaData: 0\r\n\r\n", &error);
  g_assert_no_error (error);
  g_assert_cmpint (r->method, ==, ALV_ICY_METHOD_OTHER);
  g_assert_false (r->icy_metadata);
  g_clear_pointer (&r, alv_icy_request_free);

  r = parse ("GET http://host HTTP/1.1\r\n\r\n", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (r->path, ==, "/");
  g_clear_pointer (&r, alv_icy_request_free);

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_assert_null (parse (bad[i], &error));
      g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
      g_clear_error (&error);
    }
  g_assert_null (alv_icy_request_parse ((const guint8 *) "GET / HTTP/1.1\r\n\0\r\n\r\n", 20, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);

  for (guint i = 0; i < ALV_ICY_MAX_HEADERS + 1; i++)
    g_string_append_printf (many, "X-%u: y\r\n", i);
  g_string_append (many, "\r\n");
  g_assert_null (parse (many->str, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);

  big = g_strdup_printf ("GET /%s HTTP/1.1\r\n\r\n", long_path);
  g_assert_null (parse (big, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);

  g_assert_cmpint (alv_icy_request_find_end ((const guint8 *) "GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 28), ==, 24);
  g_assert_cmpint (alv_icy_request_find_end ((const guint8 *) "GET / HTTP/1.1\n\nrest", 20), ==, 16);
  g_assert_cmpint (alv_icy_request_find_end ((const guint8 *) "GET / HTTP/1.1\r\nA: b\r\n\r", 23), ==, -1);
}

/* Checks the framing of a metadata block and returns its title. */
static char *
block_title (GBytes *block)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (block, &len);
  const char *text = (const char *) d + 1;
  const char *end;
  gsize text_len;

  g_assert_cmpuint (len, ==, 1 + 16 * (gsize) d[0]);
  g_assert_cmpuint (d[0], >, 0);
  g_assert_cmpuint (d[len - 1], ==, 0);
  text_len = strnlen (text, len - 1);
  for (gsize i = text_len; i < len - 1; i++)
    g_assert_cmpuint ((guint8) text[i], ==, 0);
  /* all padding, and less than 16 bytes of it */
  g_assert_cmpuint (len - 1 - text_len, >=, 1);
  g_assert_cmpuint (len - 1 - text_len, <=, 16);
  g_assert_true (g_str_has_prefix (text, "StreamTitle='"));
  end = strstr (text, "';");
  g_assert_nonnull (end);
  /* the first terminator is the last thing in the block */
  g_assert_cmpuint ((gsize) (end - text) + 2, ==, text_len);
  g_assert_true (g_utf8_validate (text, (gssize) text_len, NULL));
  return g_strndup (text + 13, (gsize) (end - text) - 13);
}

static void
test_icy_metadata (void)
{
  static const struct { const char *in; const char *out; } cases[] = {
    { "Artist - Title", "Artist - Title" },
    { "Rock 'n' Roll", "Rock 'n' Roll" },
    { "Rockin'", "Rockin'" },
    { "Evil';StreamUrl='http://x';", "Evil' ;StreamUrl='http://x' ;" },
    { "a\nb\x01" "c\x7f", "abc" },
    { "", "" },
    { "Caf\xc3\xa9", "Caf\xc3\xa9" },
  };
  g_autoptr(GBytes) unchanged = alv_icy_metadata_block (NULL);
  g_autofree char *long_title = g_strnfill (10000, 'x');
  g_autoptr(GString) accents = g_string_new (NULL);

  g_assert_cmpuint (g_bytes_get_size (unchanged), ==, 1);
  g_assert_cmpuint (*(const guint8 *) g_bytes_get_data (unchanged, NULL), ==, 0);

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GBytes) block = alv_icy_metadata_block (cases[i].in);
      g_autofree char *title = block_title (block);

      g_assert_cmpstr (title, ==, cases[i].out);
    }

  /* exact bytes, and the padding boundary: 31 bytes fit in 2 blocks, 32 do not */
  {
    g_autoptr(GBytes) block = alv_icy_metadata_block ("A - T");
    static const guint8 expect[33] = "\x02StreamTitle='A - T';";

    g_assert_cmpmem (g_bytes_get_data (block, NULL), g_bytes_get_size (block), expect, sizeof expect);
  }
  {
    g_autofree char *t16 = g_strnfill (16, 'y');
    g_autofree char *t17 = g_strnfill (17, 'y');
    g_autoptr(GBytes) b16 = alv_icy_metadata_block (t16);
    g_autoptr(GBytes) b17 = alv_icy_metadata_block (t17);

    g_assert_cmpuint (g_bytes_get_size (b16), ==, 33);
    g_assert_cmpuint (g_bytes_get_size (b17), ==, 49);
  }

  /* capped at 255 * 16, cut on a character boundary */
  {
    g_autoptr(GBytes) block = alv_icy_metadata_block (long_title);
    g_autofree char *title = block_title (block);

    g_assert_cmpuint (g_bytes_get_size (block), ==, 1 + ALV_ICY_MAX_METADATA);
    g_assert_cmpuint (strlen (title), ==, ALV_ICY_MAX_METADATA - 16);
  }
  for (guint i = 0; i < 3000; i++)
    g_string_append (accents, "\xc3\xa9");
  {
    g_autoptr(GBytes) block = alv_icy_metadata_block (accents->str);
    g_autofree char *title = block_title (block);

    g_assert_cmpuint (g_bytes_get_size (block), <=, 1 + ALV_ICY_MAX_METADATA);
    g_assert_cmpuint (strlen (title) % 2, ==, 0);
  }
}

static void
test_icy_strings (void)
{
  g_autofree char *t1 = alv_icy_format_title ("Artist", "Title");
  g_autofree char *t2 = alv_icy_format_title (NULL, "Title");
  g_autofree char *t3 = alv_icy_format_title ("Artist", "");
  g_autofree char *t4 = alv_icy_format_title (NULL, NULL);
  g_autofree char *h1 = alv_icy_header_value ("Name\r\nSet-Cookie: x");
  g_autofree char *h2 = alv_icy_header_value (NULL);
  g_autofree char *h3 = alv_icy_header_value ("bad \xff utf8");

  g_assert_cmpstr (t1, ==, "Artist - Title");
  g_assert_cmpstr (t2, ==, "Title");
  g_assert_cmpstr (t3, ==, "Artist");
  g_assert_cmpstr (t4, ==, "");
  g_assert_cmpstr (h1, ==, "NameSet-Cookie: x");
  g_assert_cmpstr (h2, ==, "");
  g_assert_true (g_utf8_validate (h3, -1, NULL));

  g_assert_cmpint (alv_stream_format_from_content_type ("audio/mpeg"), ==, ALV_STREAM_FORMAT_MP3);
  g_assert_cmpint (alv_stream_format_from_content_type (" Audio/MPEG ; x=y"), ==, ALV_STREAM_FORMAT_MP3);
  g_assert_cmpint (alv_stream_format_from_content_type ("audio/ogg; codecs=opus"), ==, ALV_STREAM_FORMAT_OGG);
  g_assert_cmpint (alv_stream_format_from_content_type ("application/ogg"), ==, ALV_STREAM_FORMAT_OGG);
  g_assert_cmpint (alv_stream_format_from_content_type ("audio/aacp"), ==, ALV_STREAM_FORMAT_AAC);
  g_assert_cmpint (alv_stream_format_from_content_type ("audio/webm"), ==, ALV_STREAM_FORMAT_MATROSKA);
  g_assert_cmpint (alv_stream_format_from_content_type ("video/webm; codecs=\"vp8, opus\""), ==,
                   ALV_STREAM_FORMAT_MATROSKA);
  g_assert_cmpint (alv_stream_format_from_content_type ("video/x-matroska"), ==, ALV_STREAM_FORMAT_MATROSKA);
  g_assert_cmpint (alv_stream_format_from_content_type ("video/mp4"), ==, ALV_STREAM_FORMAT_OTHER);
  g_assert_cmpint (alv_stream_format_from_content_type (NULL), ==, ALV_STREAM_FORMAT_OTHER);
}

int
main (int    argc,
      char **argv)
{
  /* isolated XDG dirs have no GSettings schemas: keep GIO's desktop
   * proxy and settings modules out (loopback needs no proxy anyway) */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/core/ogg/pages", test_ogg_pages);
  g_test_add_func ("/core/ogg/scanner", test_ogg_scanner);
  g_test_add_func ("/core/ogg/scanner-empty", test_ogg_scanner_empty);
  g_test_add_func ("/core/ogg/info-vorbis", test_ogg_info_vorbis);
  g_test_add_func ("/core/ogg/info-opus", test_ogg_info_opus);
  g_test_add_func ("/core/ogg/granule-limits", test_ogg_granule_limits);
  g_test_add_func ("/core/ogg/theora", test_ogg_theora);
  g_test_add_func ("/core/mp3/header", test_mp3_header);
  g_test_add_func ("/core/mp3/sync", test_mp3_sync);
  g_test_add_func ("/core/mp3/id3", test_mp3_id3);
  g_test_add_func ("/core/mp3/offsets", test_mp3_offsets);
  g_test_add_func ("/core/mp3/facts", test_mp3_facts);
  g_test_add_func ("/core/icy/request", test_icy_request);
  g_test_add_func ("/core/icy/metadata", test_icy_metadata);
  g_test_add_func ("/core/icy/strings", test_icy_strings);
  return g_test_run ();
}
