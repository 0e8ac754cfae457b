/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the MP3 framing of alv-mp3.h, which reads media
 * bytes from the origin and from peers: frame headers, the sync search,
 * ID3v2 tags, the Xing/Info header and the time-to-offset estimates.  The
 * first input byte selects the mode, the second drives piece sizes and
 * time positions, the rest is the media.  Beyond "no crash": a header
 * must decode as the format says (checked against a model written from
 * the specification's tables), a sync point must lie within the bytes and
 * start a frame that the next header confirms (or that ends the stream),
 * no earlier byte may be one, what find_sync() says may be dropped must
 * hold no sync point, and the same bytes fed in uneven pieces must give
 * the same sync points and frames as one shot, with frames and dropped
 * bytes adding up to the input; facts read back from their text form (the
 * gateway's X-Content-Head) are the facts, and any text is either refused
 * or reads back the same.  A g_critical()/g_warning() is fatal.
 */
#define G_LOG_DOMAIN "fuzz-mp3"

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "alv-error.h"
#include "alv-mp3.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

/* ---- frame headers ------------------------------------------------------ */

/* ISO/IEC 11172-3 and 13818-3, Layer III: kbit/s by bitrate index */
static const guint kbps_mpeg1[16] = {
  0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0
};
static const guint kbps_mpeg2[16] = {
  0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0
};

/* The model: what a header of four bytes means, written from the tables
 * (MPEG 2 and 2.5 halve and quarter the MPEG 1 sample rates). */
static gboolean
model_header (const guint8 *h,
              AlvMp3Frame  *want)
{
  guint version = (h[1] >> 3) & 3; /* 0: 2.5, 1: reserved, 2: 2, 3: 1 */
  guint layer = (h[1] >> 1) & 3;   /* 1: Layer III */
  guint br = h[2] >> 4;
  guint sr = (h[2] >> 2) & 3;
  guint shift = version == 3 ? 0 : version == 2 ? 1 : 2;
  static const guint base_rate[3] = { 44100, 48000, 32000 };
  guint kbps;

  if (h[0] != 0xff || (h[1] & 0xe0) != 0xe0 || version == 1 || layer != 1)
    return FALSE;
  if (br == 0 || br == 15 || sr == 3 || (h[3] & 3) == 2)
    return FALSE;
  kbps = version == 3 ? kbps_mpeg1[br] : kbps_mpeg2[br];

  memset (want, 0, sizeof *want);
  want->version = version == 3 ? 10 : version == 2 ? 20 : 25;
  want->bitrate = kbps * 1000;
  want->sample_rate = base_rate[sr] >> shift;
  want->channels = (h[3] >> 6) == 3 ? 1 : 2;
  want->padding = (h[2] >> 1) & 1;
  want->samples = version == 3 ? 1152 : 576;
  want->length = (version == 3 ? 144 : 72) * want->bitrate / want->sample_rate + want->padding;
  if (version == 3)
    want->side_info = want->channels == 1 ? 17 : 32;
  else
    want->side_info = want->channels == 1 ? 9 : 17;
  if ((h[1] & 1) == 0)
    want->side_info += 2;
  return TRUE;
}

static gboolean
frames_equal (const AlvMp3Frame *a,
              const AlvMp3Frame *b)
{
  return a->version == b->version && a->bitrate == b->bitrate
         && a->sample_rate == b->sample_rate && a->channels == b->channels
         && a->padding == b->padding && a->samples == b->samples
         && a->length == b->length && a->side_info == b->side_info;
}

static void
fuzz_header (const guint8 *d,
             gsize         len)
{
  AlvMp3Frame got, again, want;
  gboolean ok = alv_mp3_frame_parse (d, len, &got);

  if (len < 4)
    {
      CHECK (!ok);
      return;
    }
  CHECK (ok == model_header (d, &want));
  /* the header alone decides */
  CHECK (alv_mp3_frame_parse (d, 4, &again) == ok);
  CHECK (!alv_mp3_frame_parse (d, 3, &again));
  if (!ok)
    return;
  CHECK (frames_equal (&got, &want));
  CHECK (frames_equal (&got, &again));
  CHECK (got.length >= 24 && got.length <= ALV_MP3_MAX_FRAME_SIZE);
  CHECK (4 + got.side_info < got.length);
  CHECK (alv_mp3_frames_compatible (&got, &again));
}

/* ---- sync points ---------------------------------------------------------- */

/* What a sync point at @i is, per the contract: a frame header that the
 * next header confirms, or (at the end of the stream) a frame that ends
 * exactly there.  *@undecided: the answer needs bytes beyond @len. */
static gboolean
is_sync_point (const guint8 *d,
               gsize         len,
               gsize         i,
               gboolean      at_end,
               gboolean     *undecided)
{
  AlvMp3Frame a, b;
  gsize next;

  *undecided = FALSE;
  if (i + 4 > len || !alv_mp3_frame_parse (d + i, len - i, &a))
    return FALSE;
  next = i + a.length;
  if (next + 4 <= len)
    return alv_mp3_frame_parse (d + next, len - next, &b) && alv_mp3_frames_compatible (&a, &b);
  if (at_end)
    return next == len;
  *undecided = TRUE;
  return FALSE;
}

/* One call of alv_mp3_find_sync() against the contract. */
static gboolean
checked_find_sync (const guint8 *d,
                   gsize         len,
                   gboolean      at_end,
                   gsize        *offset)
{
  gsize off = G_MAXSIZE;
  gboolean found = alv_mp3_find_sync (d, len, at_end, &off);
  gboolean undecided;

  CHECK (off <= len);
  if (found)
    {
      CHECK (off < len);
      CHECK (is_sync_point (d, len, off, at_end, &undecided));
    }
  else if (at_end)
    CHECK (off == len); /* nothing can start later */
  else if (len >= 3 && off < len - 3)
    {
      /* it stopped at a header that more bytes will confirm or not */
      CHECK (!is_sync_point (d, len, off, FALSE, &undecided) && undecided);
    }
  /* the first one: nothing before it is a sync point or undecided */
  for (gsize i = 0; i < off; i++)
    {
      if (d[i] != 0xff)
        continue;
      CHECK (!is_sync_point (d, len, i, at_end, &undecided));
      CHECK (!undecided);
    }
  *offset = off;
  return found;
}

/* Feeds @in in pieces to a buffer that drops what find_sync() says may go,
 * as the daemon does before it starts an item; the sync point (absolute)
 * must be the one found in one shot. */
static void
fuzz_sync (const FuzzInput *in)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  guint32 rng = 0x9e3779b9u ^ in->control;
  gsize base = 0, pos = 0, off = 0, streamed = 0, whole = 0;
  gboolean found_streaming = FALSE, found_end;
  gboolean found_whole_open, found_whole_end;

  found_whole_open = checked_find_sync (in->d, in->len, FALSE, &whole);
  if (found_whole_open)
    CHECK (alv_mp3_find_sync (in->d, in->len, TRUE, &off) && off == whole);
  found_whole_end = checked_find_sync (in->d, in->len, TRUE, &whole);

  while (pos < in->len && !found_streaming)
    {
      gsize n = fuzz_next_piece (&rng, 1 + in->control * 8u, in->len - pos);

      g_byte_array_append (buf, in->d + pos, (guint) n);
      pos += n;
      found_streaming = checked_find_sync (buf->data, buf->len, FALSE, &off);
      if (found_streaming)
        {
          streamed = base + off;
          break;
        }
      g_byte_array_remove_range (buf, 0, (guint) off);
      base += off;
      /* what stays is at most one frame and the next header's bytes */
      CHECK (buf->len <= ALV_MP3_MAX_FRAME_SIZE + 3);
    }
  /* the open-ended search agrees with the one-shot one */
  CHECK (found_streaming == found_whole_open);
  if (found_streaming)
    {
      gsize open_off;

      CHECK (alv_mp3_find_sync (in->d, in->len, FALSE, &open_off) && open_off == streamed);
      CHECK (streamed == whole && found_whole_end);
      return;
    }
  /* the end of the stream decides what was left open */
  found_end = checked_find_sync (buf->data, buf->len, TRUE, &off);
  CHECK (found_end == found_whole_end);
  if (found_end)
    CHECK (base + off == whole);
}

/* ---- framing ---------------------------------------------------------------- */

typedef struct
{
  GByteArray *buf;
  gsize base;          /* stream offset of buf->data[0] */
  gboolean synced;
  AlvMp3Frame last;
  GArray *frames;      /* gsize pairs: offset, length */
  gsize dropped;       /* bytes between frames */
} Framer;

/* Cuts the buffered bytes into frames the way the daemon's stream server
 * does: once synced, compatible frames back to back; a byte that does not
 * start one loses sync, and the search starts over. */
static void
framer_run (Framer  *f,
            gboolean at_end)
{
  for (guint guard = 0;; guard++)
    {
      const guint8 *d = f->buf->data;
      gsize len = f->buf->len;
      AlvMp3Frame fr;
      gsize off = 0;

      /* every turn drops bytes or loses sync: bounded by the input */
      CHECK (guard < 8 * 1024 * 1024);
      if (f->synced)
        {
          if (len < 4)
            return;
          if (!alv_mp3_frame_parse (d, len, &fr) || !alv_mp3_frames_compatible (&f->last, &fr))
            {
              f->synced = FALSE;
              continue;
            }
          if (fr.length > len)
            return; /* a partial frame */
          {
            gsize rec[2] = { f->base, fr.length };

            g_array_append_vals (f->frames, rec, 2);
          }
          f->last = fr;
          g_byte_array_remove_range (f->buf, 0, (guint) fr.length);
          f->base += fr.length;
          continue;
        }
      if (checked_find_sync (d, len, at_end, &off))
        {
          CHECK (alv_mp3_frame_parse (d + off, len - off, &f->last));
          f->synced = TRUE;
        }
      else if (off == 0)
        return;
      g_byte_array_remove_range (f->buf, 0, (guint) off);
      f->base += off;
      f->dropped += off;
      if (!f->synced)
        return;
    }
}

static GArray *
frame_in_pieces (const FuzzInput *in,
                 guint            max_piece,
                 gsize           *dropped,
                 gsize           *left)
{
  Framer f = { g_byte_array_new (), 0, FALSE, { 0 }, g_array_new (FALSE, FALSE, sizeof (gsize)), 0 };
  guint32 rng = 0x7f4a7c15u ^ ((guint32) in->control << 8);
  gsize pos = 0;

  while (pos < in->len)
    {
      gsize n = fuzz_next_piece (&rng, max_piece, in->len - pos);

      g_byte_array_append (f.buf, in->d + pos, (guint) n);
      pos += n;
      framer_run (&f, FALSE);
      /* never more than a frame and a header pending */
      CHECK (f.buf->len <= ALV_MP3_MAX_FRAME_SIZE + 3);
    }
  framer_run (&f, TRUE);
  *dropped = f.dropped;
  *left = f.buf->len;
  CHECK (f.base + f.buf->len == in->len);
  g_byte_array_unref (f.buf);
  return f.frames;
}

static void
fuzz_framing (const FuzzInput *in)
{
  g_autoptr(GArray) one = NULL;
  g_autoptr(GArray) pieces = NULL;
  gsize dropped1, left1, dropped2, left2, total = 0, end = 0;

  one = frame_in_pieces (in, G_MAXUINT, &dropped1, &left1);
  pieces = frame_in_pieces (in, 1 + in->control * 4u, &dropped2, &left2);

  /* the same frames however the bytes came */
  CHECK (one->len == pieces->len);
  CHECK (one->len == 0 || memcmp (one->data, pieces->data, one->len * sizeof (gsize)) == 0);
  CHECK (dropped1 == dropped2 && left1 == left2);

  /* frames are in order, disjoint, inside the input, and start with a
   * header; frames, dropped and trailing bytes add up to the input */
  for (guint i = 0; i < one->len; i += 2)
    {
      gsize offset = g_array_index (one, gsize, i);
      gsize length = g_array_index (one, gsize, i + 1);
      AlvMp3Frame fr;

      CHECK (offset >= end);
      CHECK (offset + length <= in->len);
      CHECK (alv_mp3_frame_parse (in->d + offset, in->len - offset, &fr));
      CHECK (fr.length == length);
      total += length;
      end = offset + length;
    }
  CHECK (total + dropped1 + left1 == in->len);
  /* what is left is a partial frame or the last bytes of a search */
  CHECK (left1 < ALV_MP3_MAX_FRAME_SIZE);
}

/* ---- ID3v2 -------------------------------------------------------------------- */

static gsize
model_id3 (const guint8 *d,
           gsize         len)
{
  gsize size = 0;

  if (len < 10 || d[0] != 'I' || d[1] != 'D' || d[2] != '3' || d[3] == 0xff || d[4] == 0xff)
    return 0;
  if ((d[6] | d[7] | d[8] | d[9]) & 0x80)
    return 0;
  size = ((gsize) d[6] << 21) | ((gsize) d[7] << 14) | ((gsize) d[8] << 7) | d[9];
  return 10 + size + ((d[5] & 0x10) ? 10 : 0);
}

static void
fuzz_id3 (const guint8 *d,
          gsize         len)
{
  gsize size = alv_mp3_id3v2_size (d, len);

  CHECK (size == model_id3 (d, len));
  CHECK (size <= 10 + 0x0fffffff + 10);
  if (len >= 10)
    CHECK (alv_mp3_id3v2_size (d, 10) == size);
}

/* ---- stream info and offsets ------------------------------------------------- */

static guint32
be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

/* The Xing/Info fields, read again from the first frame. */
static void
check_xing (const guint8     *d,
            gsize             len,
            const AlvMp3Info *info)
{
  const guint8 *frame = d + info->audio_start;
  gsize avail = MIN (info->first.length, len - info->audio_start);
  gsize x = 4 + info->first.side_info;
  guint32 flags;
  gboolean tagged = x + 8 <= avail
                    && (memcmp (frame + x, "Xing", 4) == 0 || memcmp (frame + x, "Info", 4) == 0);

  CHECK (info->xing == tagged);
  if (!tagged)
    {
      CHECK (info->n_frames == 0 && info->n_bytes == 0 && !info->has_toc);
      return;
    }
  flags = be32 (frame + x + 4);
  x += 8;
  if (flags & 1)
    {
      if (x + 4 > avail)
        {
          CHECK (info->n_frames == 0 && info->n_bytes == 0 && !info->has_toc);
          return;
        }
      CHECK (info->n_frames == be32 (frame + x));
      x += 4;
    }
  else
    CHECK (info->n_frames == 0);
  if (flags & 2)
    {
      if (x + 4 > avail)
        {
          CHECK (info->n_bytes == 0 && !info->has_toc);
          return;
        }
      CHECK (info->n_bytes == be32 (frame + x));
      x += 4;
    }
  else
    CHECK (info->n_bytes == 0);
  CHECK (info->has_toc == ((flags & 4) && x + 100 <= avail));
  if (info->has_toc)
    CHECK (memcmp (info->toc, frame + x, 100) == 0);
}

static gboolean
toc_sorted (const AlvMp3Info *info)
{
  for (guint i = 1; i < 100; i++)
    if (info->toc[i] < info->toc[i - 1])
      return FALSE;
  return TRUE;
}

static void
check_offsets (const AlvMp3Info *info,
               guint64           file_size,
               const guint64    *times,
               guint             n_times)
{
  gboolean toc = info->has_toc && info->n_frames > 0;
  guint64 bytes = info->n_bytes > 0 ? info->n_bytes
                  : (file_size > info->audio_start ? file_size - info->audio_start : 0);
  guint64 prev = 0;

  for (guint i = 0; i < n_times; i++)
    {
      guint64 offset = alv_mp3_time_to_offset (info, file_size, times[i]);

      if (file_size > 0)
        CHECK (offset <= file_size);
      if (file_size == 0 || file_size >= info->audio_start)
        CHECK (offset >= info->audio_start);
      if (toc)
        CHECK (offset <= info->audio_start + bytes);
      else if (times[i] == 0)
        {
          guint64 start = info->audio_start + (info->xing ? info->first.length : 0);

          CHECK (offset == (file_size > 0 ? MIN (start, file_size) : start));
        }
      /* later is never earlier in the file (times are sorted) */
      if (i > 0 && (!toc || toc_sorted (info)))
        CHECK (offset >= prev);
      prev = offset;
    }
}

/* Untrusted text for alv_mp3_info_from_string(): refused with an error,
 * or facts whose text form reads back to the same facts. */
static void
fuzz_facts_text (const guint8 *d,
                 gsize         len)
{
  g_autofree char *text = g_strndup ((const char *) d, len);
  g_autoptr(GError) error = NULL;
  AlvMp3Info info, back;

  if (!alv_mp3_info_from_string (text, &info, &error))
    {
      CHECK (error != NULL && error->domain == ALV_ERROR && error->code == ALV_ERROR_PARSE);
      return;
    }
  CHECK (error == NULL);
  {
    g_autofree char *again = alv_mp3_info_to_string (&info);

    CHECK (alv_mp3_info_from_string (again, &back, NULL));
    CHECK (memcmp (&back, &info, sizeof info) == 0);
  }
}

static void
fuzz_info (const FuzzInput *in)
{
  g_autoptr(GError) error = NULL;
  AlvMp3Info info;
  gsize id3 = alv_mp3_id3v2_size (in->d, in->len);
  gsize sync = 0;
  guint64 times[8];
  guint64 sizes[4];
  guint32 rng = 0x2545f491u ^ in->control;

  if (!alv_mp3_parse_info (in->d, in->len, &info, &error))
    {
      CHECK (error != NULL && error->domain == ALV_ERROR && error->message != NULL);
      if (id3 >= in->len)
        CHECK (error->code == ALV_ERROR_LIMIT);
      else
        {
          CHECK (error->code == ALV_ERROR_PARSE);
          CHECK (!alv_mp3_find_sync (in->d + id3, in->len - id3, TRUE, &sync));
        }
      return;
    }
  CHECK (error == NULL);

  /* the first frame is the first sync point after the tag */
  CHECK (id3 < in->len);
  CHECK (alv_mp3_find_sync (in->d + id3, in->len - id3, TRUE, &sync));
  CHECK (info.audio_start == id3 + sync && info.audio_start < in->len);
  {
    AlvMp3Frame fr;

    CHECK (alv_mp3_frame_parse (in->d + info.audio_start, in->len - info.audio_start, &fr));
    CHECK (frames_equal (&fr, &info.first));
  }
  check_xing (in->d, in->len, &info);

  /* the facts as text (the gateway's X-Content-Head) read back exactly */
  {
    g_autofree char *text = alv_mp3_info_to_string (&info);
    AlvMp3Info back;

    CHECK (alv_mp3_info_from_string (text, &back, NULL));
    CHECK (memcmp (&back, &info, sizeof info) == 0);
  }

  /* durations */
  if (info.n_frames > 0)
    CHECK (alv_mp3_duration_usec (&info, in->len)
           == (guint64) info.n_frames * info.first.samples * G_USEC_PER_SEC / info.first.sample_rate);
  else
    {
      CHECK (alv_mp3_duration_usec (&info, info.audio_start) == 0);
      CHECK (alv_mp3_duration_usec (&info, in->len) <= alv_mp3_duration_usec (&info, (guint64) in->len + 1));
      CHECK (alv_mp3_duration_usec (&info, G_MAXUINT64) >= alv_mp3_duration_usec (&info, in->len));
    }

  /* offsets for sorted times, some past the end, for several file sizes */
  times[0] = 0;
  times[1] = in->control * (guint64) 10000;
  for (guint i = 2; i < G_N_ELEMENTS (times) - 1; i++)
    times[i] = (guint64) fuzz_next_step (&rng, G_MAXUINT32 - 1) * fuzz_next_step (&rng, 1 << 12);
  times[G_N_ELEMENTS (times) - 1] = G_MAXUINT64;
  qsort (times, G_N_ELEMENTS (times), sizeof times[0], fuzz_compare_u64);
  sizes[0] = 0;
  sizes[1] = in->len;
  sizes[2] = info.audio_start / 2;
  sizes[3] = (guint64) in->len * (1 + in->control);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++)
    check_offsets (&info, sizes[i], times, G_N_ELEMENTS (times));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  FuzzInput in;

  fuzz_init ();
  if (!fuzz_input_split (&in, data, size))
    return 0;

  switch (data[0] % 7)
    {
    case 0:
      fuzz_header (in.d, in.len);
      break;
    case 1:
      fuzz_sync (&in);
      break;
    case 2:
      fuzz_framing (&in);
      break;
    case 3:
      fuzz_info (&in);
      break;
    case 4:
      fuzz_id3 (in.d, in.len);
      break;
    case 5:
      fuzz_facts_text (in.d, in.len);
      break;
    default:
      /* everything on the same bytes */
      fuzz_header (in.d, in.len);
      fuzz_id3 (in.d, in.len);
      fuzz_sync (&in);
      fuzz_info (&in);
      break;
    }
  return 0;
}
