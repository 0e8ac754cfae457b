/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the Ogg framing of alv-ogg.h, which reads media
 * bytes from the origin and from peers: the page parser and serial
 * rewrite, the scanner that cuts a pushed stream into pages and marks
 * header pages and chain links, the stream info read from the header pages
 * and the page lookup by time.  The first input byte selects the mode (and
 * whether the CRC of every page-looking run in the input is repaired first,
 * so the fuzzer reaches whole pages without having to solve CRCs); the
 * second drives piece sizes and time positions; the rest is the stream.
 * Beyond "no crash": the parser agrees with a model written from RFC 3533;
 * the scanner gives the same pages whether fed in one shot or in uneven
 * pieces, every page it gives is where it says in the input, no byte it
 * skips starts a valid page, and pages, skipped and pending bytes add up to
 * the input; header pages are exactly the BOS pages and the pages of a
 * link's streams until their codec's header packets are complete; the
 * stream info and time lookup agree with the scanner and with each other.
 * A g_critical()/g_warning() is fatal.
 */
#define G_LOG_DOMAIN "fuzz-ogg"

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "alv-error.h"
#include "alv-ogg.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static guint32
le32 (const guint8 *p)
{
  return (guint32) p[0] | ((guint32) p[1] << 8) | ((guint32) p[2] << 16) | ((guint32) p[3] << 24);
}

/* A writable copy; never reads past @len (which may be 0). */
static guint8 *
copy_bytes (const guint8 *d,
            gsize         len)
{
  guint8 *copy = g_malloc (MAX (len, 1));

  if (len > 0)
    memcpy (copy, d, len);
  return copy;
}

static gboolean
has_capture (const guint8 *d,
             gsize         len,
             gsize         i)
{
  return i + 4 <= len && memcmp (d + i, "OggS", 4) == 0;
}

/* ---- pages ---------------------------------------------------------------- */

/* The CRC over a page with its CRC field taken as zero. */
static guint32
crc_of_page (const guint8 *d,
             gsize         length)
{
  g_autofree guint8 *copy = copy_bytes (d, length);

  memset (copy + 22, 0, 4);
  return alv_ogg_crc32 (copy, length);
}

/* RFC 3533 section 6, read afresh: what alv_ogg_page_parse() must say. */
static AlvOggParseResult
model_page (const guint8 *d,
            gsize         len,
            AlvOggPage   *want)
{
  gsize header, body = 0;
  guint64 granule = 0;

  for (gsize i = 0; i < 4 && i < len; i++)
    if (d[i] != (guint8) "OggS"[i])
      return ALV_OGG_PARSE_INVALID;
  if ((len > 4 && d[4] != 0) || (len > 5 && d[5] > 7))
    return ALV_OGG_PARSE_INVALID;
  if (len < 27 || len < 27 + (gsize) d[26])
    return ALV_OGG_PARSE_NEED_MORE;
  header = 27 + (gsize) d[26];
  memset (want, 0, sizeof *want);
  for (gsize i = 27; i < header; i++)
    {
      body += d[i];
      want->n_packets += d[i] != 255;
    }
  if (len < header + body)
    return ALV_OGG_PARSE_NEED_MORE;
  if (crc_of_page (d, header + body) != le32 (d + 22))
    return ALV_OGG_PARSE_INVALID;
  for (guint i = 8; i > 0; i--)
    granule = (granule << 8) | d[5 + i];
  want->flags = d[5];
  want->granule = granule > G_MAXINT64 ? -1 : (gint64) granule;
  want->serial = le32 (d + 14);
  want->seqno = le32 (d + 18);
  want->length = header + body;
  want->header_length = header;
  return ALV_OGG_PARSE_OK;
}

static gboolean
pages_equal (const AlvOggPage *a,
             const AlvOggPage *b)
{
  return a->flags == b->flags && a->granule == b->granule && a->serial == b->serial
         && a->seqno == b->seqno && a->length == b->length
         && a->header_length == b->header_length && a->n_packets == b->n_packets
         && a->is_header == b->is_header && a->new_link == b->new_link;
}

/* Fills in the CRC of every page-looking run that fits, last first so a
 * page holding another one gets the CRC of its final bytes. */
static guint8 *
repair_crcs (const guint8 *d,
             gsize         len)
{
  guint8 *copy = copy_bytes (d, len);

  for (gsize i = len; i-- > 0;)
    {
      gsize header, length;
      guint32 crc;

      if (!has_capture (copy, len, i) || i + 27 > len)
        continue;
      header = 27 + (gsize) copy[i + 26];
      if (i + header > len)
        continue;
      length = header;
      for (gsize j = i + 27; j < i + header; j++)
        length += copy[j];
      if (i + length > len)
        continue;
      crc = crc_of_page (copy + i, length);
      for (guint b = 0; b < 4; b++)
        copy[i + 22 + b] = (guint8) (crc >> (8 * b));
    }
  return copy;
}

static void
fuzz_page (const FuzzInput *in)
{
  AlvOggPage page, want, again;
  AlvOggParseResult result = alv_ogg_page_parse (in->d, in->len, &page);
  g_autofree guint8 *copy = copy_bytes (in->d, in->len);
  guint32 serial;

  CHECK (result == model_page (in->d, in->len, &want));

  /* the CRC of anything followed by its CRC (big-endian) is zero */
  {
    gsize n = MIN (in->len, 4096);
    g_autofree guint8 *buf = g_malloc (n + 4);
    guint32 crc = alv_ogg_crc32 (in->d, n);

    if (n > 0)
      memcpy (buf, in->d, n);
    for (guint b = 0; b < 4; b++)
      buf[n + b] = (guint8) (crc >> (24 - 8 * b));
    CHECK (alv_ogg_crc32 (buf, n + 4) == 0);
  }

  if (result != ALV_OGG_PARSE_OK)
    {
      /* not a whole page: nothing to rewrite, and nothing rewritten */
      CHECK (!alv_ogg_page_set_serial (copy, in->len, 0x12345678));
      CHECK (in->len == 0 || memcmp (copy, in->d, in->len) == 0);
      return;
    }
  CHECK (pages_equal (&page, &want));
  CHECK (page.length <= in->len && page.length <= ALV_OGG_MAX_PAGE_SIZE);
  CHECK (!page.is_header && !page.new_link);

  /* every prefix of a page needs more; the page alone is the same page */
  {
    gsize cuts[] = { 0, 3, 26, page.header_length - 1, page.header_length,
                     page.length - 1, in->control * (page.length - 1) / 255 };

    for (guint i = 0; i < G_N_ELEMENTS (cuts); i++)
      if (cuts[i] < page.length)
        CHECK (alv_ogg_page_parse (in->d, cuts[i], &again) == ALV_OGG_PARSE_NEED_MORE);
    CHECK (alv_ogg_page_parse (in->d, page.length, &again) == ALV_OGG_PARSE_OK);
    CHECK (pages_equal (&again, &page));
  }

  /* a serial rewrite changes the serial and CRC fields and nothing else,
   * needs the exact page, and is undone by rewriting the old serial */
  serial = le32 (in->d + 14) ^ (0x01000193u * (1u + in->control));
  CHECK (!alv_ogg_page_set_serial (copy, page.length - 1, serial));
  if (in->len > page.length)
    CHECK (!alv_ogg_page_set_serial (copy, page.length + 1, serial));
  CHECK (memcmp (copy, in->d, in->len) == 0);
  CHECK (alv_ogg_page_set_serial (copy, page.length, serial));
  CHECK (alv_ogg_page_parse (copy, page.length, &again) == ALV_OGG_PARSE_OK);
  CHECK (again.serial == serial);
  again.serial = page.serial;
  CHECK (pages_equal (&again, &page));
  for (gsize i = 0; i < page.length; i++)
    if (!(i >= 14 && i < 18) && !(i >= 22 && i < 26))
      CHECK (copy[i] == in->d[i]);
  CHECK (alv_ogg_page_set_serial (copy, page.length, page.serial));
  CHECK (memcmp (copy, in->d, page.length) == 0);
}

/* ---- header pages: the rule of alv-ogg.c's opening comment --------------- */

/* header packets a codec's first packet announces, within the scanner's
 * cap of 16 per stream */
static guint
model_header_packets (const guint8 *p,
                      gsize         len,
                      AlvOggCodec  *codec,
                      guint32      *rate,
                      guint32      *preskip)
{
  *codec = ALV_OGG_CODEC_UNKNOWN;
  *rate = 0;
  *preskip = 0;
  if (len >= 16 && memcmp (p, "\x01vorbis", 7) == 0)
    {
      *codec = ALV_OGG_CODEC_VORBIS;
      *rate = le32 (p + 12);
      return 3;
    }
  if (len >= 19 && memcmp (p, "OpusHead", 8) == 0)
    {
      *codec = ALV_OGG_CODEC_OPUS;
      *rate = 48000;
      *preskip = p[10] | (p[11] << 8);
      return 2;
    }
  if (len >= 30 && memcmp (p, "\x7f" "FLAC", 5) == 0)
    {
      guint n = (p[7] << 8) | p[8];

      *codec = ALV_OGG_CODEC_FLAC;
      *rate = ((guint32) p[27] << 12) | ((guint32) p[28] << 4) | (p[29] >> 4);
      return n == 0 ? 2 : 1 + MIN (n, 15);
    }
  if (len >= 72 && memcmp (p, "Speex   ", 8) == 0)
    {
      *codec = ALV_OGG_CODEC_SPEEX;
      *rate = le32 (p + 36);
      return 2 + MIN (le32 (p + 68), 14);
    }
  if (len >= 7 && memcmp (p, "\x80theora", 7) == 0)
    {
      *codec = ALV_OGG_CODEC_THEORA;
      return 3;
    }
  return 1;
}

typedef struct
{
  guint32 serial;
  guint headers;
  guint seen;
  AlvOggCodec codec;
  guint32 rate;
  guint32 preskip;
} ModelStream;

typedef struct
{
  gboolean started;     /* a page of the current link was seen */
  gboolean has_data;    /* a non-BOS page of the current link was seen */
  ModelStream streams[ALV_OGG_MAX_STREAMS];
  guint n_streams;
} Model;

static ModelStream *
model_find (Model   *m,
            guint32  serial)
{
  for (guint i = 0; i < m->n_streams; i++)
    if (m->streams[i].serial == serial)
      return &m->streams[i];
  return NULL;
}

/* What the scanner must say of @page: header page, first of a link. */
static void
model_classify (Model            *m,
                const guint8     *d,
                const AlvOggPage *page,
                gboolean         *is_header,
                gboolean         *new_link)
{
  ModelStream *s;

  *is_header = FALSE;
  *new_link = FALSE;
  if (page->flags & ALV_OGG_PAGE_BOS)
    {
      if (!m->started || m->has_data)
        {
          m->n_streams = 0;
          m->has_data = FALSE;
          *new_link = TRUE;
        }
      m->started = TRUE;
      *is_header = TRUE;
      if (model_find (m, page->serial) == NULL && m->n_streams < ALV_OGG_MAX_STREAMS)
        {
          gsize first = 0;

          /* the first packet: lacing values up to the first one below 255 */
          for (gsize i = 27; i < page->header_length; i++)
            {
              first += d[i];
              if (d[i] < 255)
                break;
            }
          s = &m->streams[m->n_streams++];
          s->serial = page->serial;
          s->headers = model_header_packets (d + page->header_length, first, &s->codec,
                                             &s->rate, &s->preskip);
          s->seen = page->n_packets;
        }
      return;
    }
  m->started = TRUE;
  m->has_data = TRUE;
  s = model_find (m, page->serial);
  if (s != NULL && s->seen < s->headers)
    {
      *is_header = TRUE;
      s->seen += page->n_packets;
    }
}

static gboolean
model_headers_done (const Model *m)
{
  if (m->n_streams == 0)
    return FALSE;
  for (guint i = 0; i < m->n_streams; i++)
    if (m->streams[i].seen < m->streams[i].headers)
      return FALSE;
  return TRUE;
}

/* ---- the scanner ------------------------------------------------------------ */

typedef struct
{
  GPtrArray *pages;   /* GBytes */
  GArray *infos;      /* AlvOggPage */
  GArray *offsets;    /* gsize: where each page starts in the input */
  guint64 skipped;
  gboolean headers_done;
  gsize pending;      /* bytes pushed and neither popped nor skipped */
} Scan;

static void
scan_clear (Scan *s)
{
  g_clear_pointer (&s->pages, g_ptr_array_unref);
  g_clear_pointer (&s->infos, g_array_unref);
  g_clear_pointer (&s->offsets, g_array_unref);
}

/* Pushes @in in pieces of 1 to @max_piece bytes (with empty pushes in
 * between) and pops every page after each push. */
static void
scan (const FuzzInput *in,
      guint            max_piece,
      Scan            *out)
{
  g_autoptr(AlvOggScanner) scanner = alv_ogg_scanner_new ();
  guint32 rng = 0x85ebca6bu ^ ((guint32) in->control << 16);
  gsize pos = 0, popped = 0;

  out->pages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  out->infos = g_array_new (FALSE, FALSE, sizeof (AlvOggPage));
  out->offsets = g_array_new (FALSE, FALSE, sizeof (gsize));
  CHECK (!alv_ogg_scanner_headers_done (scanner));
  do
    {
      gsize n = fuzz_next_piece (&rng, max_piece, in->len - pos);

      alv_ogg_scanner_push (scanner, in->d + pos, n);
      pos += n;
      if (n % 3 == 0)
        alv_ogg_scanner_push (scanner, NULL, 0);
      for (;;)
        {
          AlvOggPage page;
          GBytes *bytes = alv_ogg_scanner_pop_page (scanner, &page);
          gsize at;

          if (bytes == NULL)
            break;
          CHECK (g_bytes_get_size (bytes) == page.length);
          /* pages come in order: before this one, only pages and skips */
          at = popped + (gsize) alv_ogg_scanner_get_skipped (scanner);
          CHECK (at + page.length <= pos);
          g_ptr_array_add (out->pages, bytes);
          g_array_append_val (out->infos, page);
          g_array_append_val (out->offsets, at);
          popped += page.length;
        }
      CHECK (popped + alv_ogg_scanner_get_skipped (scanner) <= pos);
      /* what waits is at most one partial page */
      CHECK (pos - popped - alv_ogg_scanner_get_skipped (scanner) < ALV_OGG_MAX_PAGE_SIZE);
    }
  while (pos < in->len);
  out->skipped = alv_ogg_scanner_get_skipped (scanner);
  out->headers_done = alv_ogg_scanner_headers_done (scanner);
  out->pending = in->len - popped - (gsize) out->skipped;
}

/* Every page is where the scanner says, as the parser reads it there, and
 * classified by the rule; no skipped byte starts a valid page; what is
 * pending is a page still incomplete or the last bytes of a search. */
static void
check_scan (const FuzzInput *in,
            const Scan      *s)
{
  Model model = { 0 };
  gsize end = 0;

  for (guint i = 0; i < s->pages->len; i++)
    {
      const AlvOggPage *page = &g_array_index (s->infos, AlvOggPage, i);
      gsize at = g_array_index (s->offsets, gsize, i);
      gsize size;
      const guint8 *bytes = g_bytes_get_data (s->pages->pdata[i], &size);
      AlvOggPage want;
      gboolean is_header, new_link;

      CHECK (at >= end);
      for (gsize p = end; p < at; p++)
        if (has_capture (in->d, in->len, p))
          CHECK (model_page (in->d + p, in->len - p, &want) != ALV_OGG_PARSE_OK);
      CHECK (memcmp (bytes, in->d + at, size) == 0);
      CHECK (model_page (in->d + at, in->len - at, &want) == ALV_OGG_PARSE_OK);
      want.is_header = page->is_header;
      want.new_link = page->new_link;
      CHECK (pages_equal (&want, page));

      model_classify (&model, bytes, page, &is_header, &new_link);
      CHECK (page->is_header == is_header);
      CHECK (page->new_link == new_link);
      if (page->flags & ALV_OGG_PAGE_BOS)
        CHECK (page->is_header);
      else
        CHECK (!page->new_link);
      end = at + size;
    }
  CHECK (s->headers_done == model_headers_done (&model));

  /* pages, skipped and pending bytes add up to the input */
  CHECK (end <= in->len - s->pending);
  {
    gsize popped = 0;

    for (guint i = 0; i < s->pages->len; i++)
      popped += g_bytes_get_size (s->pages->pdata[i]);
    CHECK (popped + s->skipped + s->pending == in->len);
  }
  for (gsize p = end; p < in->len - s->pending; p++)
    {
      AlvOggPage want;

      if (has_capture (in->d, in->len, p))
        CHECK (model_page (in->d + p, in->len - p, &want) != ALV_OGG_PARSE_OK);
    }
  if (s->pending > 3)
    {
      AlvOggPage want;

      CHECK (model_page (in->d + in->len - s->pending, s->pending, &want) == ALV_OGG_PARSE_NEED_MORE);
    }
}

static void
fuzz_scanner (const FuzzInput *in)
{
  Scan one = { 0 }, pieces = { 0 };

  scan (in, G_MAXUINT, &one);
  scan (in, 1 + in->control * 3u, &pieces);
  check_scan (in, &one);

  /* the same pages however the bytes came */
  CHECK (one.pages->len == pieces.pages->len);
  for (guint i = 0; i < one.pages->len; i++)
    {
      CHECK (g_bytes_equal (one.pages->pdata[i], pieces.pages->pdata[i]));
      CHECK (pages_equal (&g_array_index (one.infos, AlvOggPage, i),
                          &g_array_index (pieces.infos, AlvOggPage, i)));
      CHECK (g_array_index (one.offsets, gsize, i) == g_array_index (pieces.offsets, gsize, i));
    }
  CHECK (one.skipped == pieces.skipped);
  CHECK (one.headers_done == pieces.headers_done);
  CHECK (one.pending == pieces.pending);

  scan_clear (&one);
  scan_clear (&pieces);
}

/* ---- stream info and time lookup --------------------------------------------- */

/* What alv_ogg_parse_info() must say, from the scanner's pages: the
 * header pages at the start of the first link, up to the page that
 * completes every stream's headers; the first audio stream with a rate. */
static gboolean
expected_info (const Scan  *s,
               AlvOggInfo  *want,
               guint       *last,
               gint        *code)
{
  Model model = { 0 };
  gsize offset = 0;

  memset (want, 0, sizeof *want);
  for (guint i = 0; i < s->pages->len; i++)
    {
      const AlvOggPage *page = &g_array_index (s->infos, AlvOggPage, i);
      gboolean is_header, new_link;

      model_classify (&model, g_bytes_get_data (s->pages->pdata[i], NULL), page, &is_header, &new_link);
      if ((page->new_link && offset > 0) || !page->is_header)
        break;
      offset = g_array_index (s->offsets, gsize, i) + page->length;
      if (!model_headers_done (&model))
        continue;
      *last = i;
      for (guint j = 0; j < model.n_streams; j++)
        if (model.streams[j].codec == ALV_OGG_CODEC_THEORA)
          {
            want->video_codec = ALV_OGG_CODEC_THEORA;
            want->video_serial = model.streams[j].serial;
            break;
          }
      want->headers_length = offset;
      for (guint j = 0; j < model.n_streams; j++)
        {
          const ModelStream *st = &model.streams[j];

          if (st->codec == ALV_OGG_CODEC_UNKNOWN || st->codec == ALV_OGG_CODEC_THEORA || st->rate == 0)
            continue;
          want->codec = st->codec;
          want->serial = st->serial;
          want->rate = st->rate;
          want->preskip = st->preskip;
          return TRUE;
        }
      /* video alone: described by its Theora stream, without a rate */
      if (want->video_codec == ALV_OGG_CODEC_THEORA)
        {
          want->codec = ALV_OGG_CODEC_THEORA;
          want->serial = want->video_serial;
          return TRUE;
        }
      *code = ALV_ERROR_UNSUPPORTED;
      return FALSE;
    }
  *code = ALV_ERROR_PARSE;
  return FALSE;
}

static void
check_granules (const AlvOggInfo *info,
                const FuzzInput  *in)
{
  guint32 rng = 0x27d4eb2fu ^ in->control;
  gint64 prev = 0;
  gint64 granules[8];

  CHECK (alv_ogg_granule_to_usec (info, -1) == -1);
  CHECK (alv_ogg_granule_to_usec (info, G_MININT64) == -1);
  if (info->rate == 0)
    {
      CHECK (alv_ogg_granule_to_usec (info, 1000) == -1);
      return;
    }
  CHECK (alv_ogg_granule_to_usec (info, 0) == 0);
  CHECK (alv_ogg_granule_to_usec (info, info->preskip) == 0);
  CHECK (alv_ogg_granule_to_usec (info, (gint64) info->preskip + info->rate * (gint64) in->control)
         == (gint64) in->control * G_USEC_PER_SEC);

  /* exact, never negative, never earlier for a later granule */
  granules[0] = 0;
  granules[1] = info->preskip;
  granules[2] = G_MAXINT64;
  for (guint i = 3; i < G_N_ELEMENTS (granules); i++)
    granules[i] = (gint64) (((guint64) fuzz_next_step (&rng, G_MAXUINT32 - 1) << (fuzz_next_step (&rng, 31))) & G_MAXINT64);
  for (guint i = 0; i < G_N_ELEMENTS (granules); i++)
    for (guint j = i + 1; j < G_N_ELEMENTS (granules); j++)
      if (granules[j] < granules[i])
        {
          gint64 t = granules[i];

          granules[i] = granules[j];
          granules[j] = t;
        }
  for (guint i = 0; i < G_N_ELEMENTS (granules); i++)
    {
      gint64 usec = alv_ogg_granule_to_usec (info, granules[i]);
      guint64 g = (guint64) granules[i] > info->preskip ? (guint64) granules[i] - info->preskip : 0;
      unsigned __int128 exact = (unsigned __int128) g * G_USEC_PER_SEC / info->rate;

      /* floor ((granule - preskip) s / rate), saturated */
      CHECK ((unsigned __int128) usec == MIN (exact, (unsigned __int128) G_MAXINT64));
      CHECK (usec >= prev);
      prev = usec;
    }
}

/* The first page of @info's stream at or after @time_us, looked up from
 * @start and checked against the contract; with @again, also looked up
 * from the page itself and from a window that starts there. */
static gboolean
checked_find (const FuzzInput  *in,
              gsize             start,
              const AlvOggInfo *info,
              guint64           time_us,
              gboolean          again,
              gsize            *offset)
{
  g_autoptr(GError) error = NULL;
  gsize off = G_MAXSIZE, other = G_MAXSIZE;
  AlvOggPage page;
  guint64 t, target;

  if (!alv_ogg_find_page_at_time (in->d, in->len, start, info, time_us, &off, &error))
    {
      CHECK (g_error_matches (error, ALV_ERROR, ALV_ERROR_INVALID));
      CHECK (off == G_MAXSIZE);
      return FALSE;
    }
  CHECK (error == NULL);
  CHECK (info->rate > 0);
  CHECK (off >= start && off >= info->headers_length && off < in->len);
  CHECK (model_page (in->d + off, in->len - off, &page) == ALV_OGG_PARSE_OK);
  CHECK (page.serial == info->serial);
  CHECK (!(page.flags & ALV_OGG_PAGE_BOS));
  /* granule at or after the time: preskip + floor (time * rate / 1 s) */
  t = MIN (time_us, (guint64) G_MAXINT64 / 2 / info->rate);
  target = info->preskip + t / G_USEC_PER_SEC * info->rate + t % G_USEC_PER_SEC * info->rate / G_USEC_PER_SEC;
  CHECK (page.granule >= 0 && (guint64) page.granule >= target);
  *offset = off;
  if (!again)
    return TRUE;

  CHECK (alv_ogg_find_page_at_time (in->d, in->len, off, info, time_us, &other, NULL));
  CHECK (other == off);
  if (alv_ogg_find_page_at_time (in->d, in->len, off + 1, info, time_us, &other, NULL))
    CHECK (other > off);
  /* a window that starts at the page finds it at 0 */
  {
    AlvOggInfo window = *info;

    window.headers_length = 0;
    CHECK (alv_ogg_find_page_at_time (in->d + off, in->len - off, 0, &window, time_us, &other, NULL));
    CHECK (other == 0);
  }
  return TRUE;
}

static void
check_lookups (const FuzzInput  *in,
               const AlvOggInfo *info)
{
  guint32 rng = 0x165667b1u ^ ((guint32) in->control << 4);
  guint64 times[4];
  gsize starts[2];

  times[0] = 0;
  times[1] = (guint64) in->control * 20000;
  times[2] = (guint64) fuzz_next_step (&rng, G_MAXUINT32 - 1) << fuzz_next_step (&rng, 32);
  times[3] = G_MAXUINT64;
  qsort (times, G_N_ELEMENTS (times), sizeof times[0], fuzz_compare_u64);
  starts[0] = 0;
  starts[1] = in->len > 0 ? fuzz_next_step (&rng, (guint) in->len) - 1 : 0;

  for (guint s = 0; s < G_N_ELEMENTS (starts); s++)
    {
      gboolean found_before = TRUE;
      gsize before = 0;

      for (guint i = 0; i < G_N_ELEMENTS (times); i++)
        {
          gsize off = 0;
          gboolean found = checked_find (in, starts[s], info, times[i], s == 0 && i == 1, &off);

          /* later times are never found earlier, or found where an earlier one is not */
          if (found)
            {
              CHECK (found_before);
              CHECK (off >= before);
              before = off;
            }
          found_before = found;
        }
    }
}

static void
fuzz_info (const FuzzInput *in)
{
  g_autoptr(GError) error = NULL;
  Scan s = { 0 };
  AlvOggInfo info, want;
  guint last = 0;
  gint code = 0;
  gboolean ok, expected;

  scan (in, G_MAXUINT, &s);
  ok = alv_ogg_parse_info (in->d, in->len, &info, &error);
  expected = expected_info (&s, &want, &last, &code);
  CHECK (ok == expected);
  if (!ok)
    {
      CHECK (g_error_matches (error, ALV_ERROR, code));
      /* a lookup with made-up stream info: any page of the first serial */
      memset (&info, 0, sizeof info);
      info.codec = ALV_OGG_CODEC_VORBIS;
      info.serial = s.infos->len > 0 ? g_array_index (s.infos, AlvOggPage, 0).serial : in->control;
      info.rate = in->control % 4 == 0 ? 0 : in->control * 997u;
      info.preskip = in->control * 13u;
      check_granules (&info, in);
      check_lookups (in, &info);
      scan_clear (&s);
      return;
    }
  CHECK (error == NULL);
  CHECK (info.codec == want.codec && info.serial == want.serial && info.rate == want.rate
         && info.preskip == want.preskip && info.headers_length == want.headers_length
         && info.video_codec == want.video_codec && info.video_serial == want.video_serial);
  CHECK ((info.rate > 0 || info.codec == ALV_OGG_CODEC_THEORA)
         && info.headers_length > 0 && info.headers_length <= in->len);
  if (info.codec == ALV_OGG_CODEC_OPUS)
    CHECK (info.rate == 48000);

  /* header pages back to back from the first byte: exactly those bytes
   * suffice, one byte less does not */
  if (g_array_index (s.offsets, gsize, 0) == 0)
    {
      AlvOggInfo again;
      gboolean contiguous = TRUE;

      for (guint i = 1; i <= last; i++)
        contiguous = contiguous && g_array_index (s.offsets, gsize, i)
                                   == g_array_index (s.offsets, gsize, i - 1)
                                      + g_array_index (s.infos, AlvOggPage, i - 1).length;
      if (contiguous)
        {
          CHECK (alv_ogg_parse_info (in->d, info.headers_length, &again, NULL));
          CHECK (memcmp (&again, &info, sizeof info) == 0);
          CHECK (!alv_ogg_parse_info (in->d, info.headers_length - 1, &again, NULL));
        }
    }
  check_granules (&info, in);
  check_lookups (in, &info);
  scan_clear (&s);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree guint8 *repaired = NULL;
  FuzzInput in;

  fuzz_init ();
  if (!fuzz_input_split (&in, data, size))
    return 0;
  /* selector: bits 0-1 the mode, bit 2 repair the CRCs first */
  if (data[0] & 4)
    {
      repaired = repair_crcs (in.d, in.len);
      in.d = repaired;
    }

  switch (data[0] & 3)
    {
    case 1:
      fuzz_scanner (&in);
      break;
    case 2:
      fuzz_info (&in);
      break;
    default:
      fuzz_page (&in);
      break;
    }
  return 0;
}
