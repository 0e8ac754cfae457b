/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MPEG audio Layer III framing.  A frame header alone is weak evidence
 * (0xFFE sync bits occur in any data), so a sync point is a header whose
 * frame is followed by a second, compatible header.  Free-format bitrates,
 * reserved values and Layers I/II are refused.  Byte offsets for a time
 * position come from the Xing/Info seek table when the file has one,
 * otherwise from the constant bitrate; either way they are estimates that
 * the caller aligns with alv_mp3_find_sync() on the real bytes.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-mp3.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

static const guint bitrates_v1[16] = {
  0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0
};
static const guint bitrates_v2[16] = {
  0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0
};
static const guint sample_rates[3][3] = {
  { 44100, 48000, 32000 }, /* MPEG 1 */
  { 22050, 24000, 16000 }, /* MPEG 2 */
  { 11025, 12000, 8000 },  /* MPEG 2.5 */
};

/**
 * alv_mp3_frame_parse:
 * @data: bytes that may start with a frame header
 * @len: how many (at least 4 are needed)
 * @frame: (out caller-allocates): the header's fields
 *
 * Parses a Layer III frame header (the frame itself need not be in @data).
 *
 * Returns: %TRUE if @data starts with a valid Layer III header
 */
gboolean
alv_mp3_frame_parse (const guint8 *data,
                     gsize         len,
                     AlvMp3Frame  *frame)
{
  guint version_bits, layer_bits, br_index, sr_index, row;
  gboolean mono;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (frame != NULL, FALSE);

  if (len < 4 || data[0] != 0xff || (data[1] & 0xe0) != 0xe0)
    return FALSE;
  version_bits = (data[1] >> 3) & 3;
  layer_bits = (data[1] >> 1) & 3;
  br_index = data[2] >> 4;
  sr_index = (data[2] >> 2) & 3;
  if (version_bits == 1 || layer_bits != 1 || br_index == 0 || br_index == 15
      || sr_index == 3 || (data[3] & 3) == 2)
    return FALSE;

  memset (frame, 0, sizeof *frame);
  row = version_bits == 3 ? 0 : version_bits == 2 ? 1 : 2;
  mono = (data[3] >> 6) == 3;
  frame->version = row == 0 ? 10 : row == 1 ? 20 : 25;
  frame->bitrate = (row == 0 ? bitrates_v1[br_index] : bitrates_v2[br_index]) * 1000;
  frame->sample_rate = sample_rates[row][sr_index];
  frame->padding = (data[2] >> 1) & 1;
  frame->channels = mono ? 1 : 2;
  frame->samples = row == 0 ? 1152 : 576;
  frame->length = (gsize) (frame->samples / 8) * frame->bitrate / frame->sample_rate + frame->padding;
  if (row == 0)
    frame->side_info = mono ? 17 : 32;
  else
    frame->side_info = mono ? 9 : 17;
  if ((data[1] & 1) == 0)
    frame->side_info += 2; /* CRC-16 after the header */
  return TRUE;
}

/**
 * alv_mp3_frames_compatible:
 * @a: a frame
 * @b: another frame
 *
 * Returns: whether @b can follow @a in the same stream (same version,
 *   sample rate and channel count)
 */
gboolean
alv_mp3_frames_compatible (const AlvMp3Frame *a,
                           const AlvMp3Frame *b)
{
  g_return_val_if_fail (a != NULL && b != NULL, FALSE);
  return a->version == b->version && a->sample_rate == b->sample_rate && a->channels == b->channels;
}

/**
 * alv_mp3_find_sync:
 * @data: bytes
 * @len: their length
 * @at_end: @data ends where the stream ends, so a frame ending exactly at
 *   @len needs no successor to be believed
 * @offset: (out): on success the sync point; otherwise how many leading
 *   bytes can be dropped because no sync point starts in them
 *
 * Looks for the first frame header that the next header confirms.
 *
 * Returns: %TRUE if a sync point was found
 */
gboolean
alv_mp3_find_sync (const guint8 *data,
                   gsize         len,
                   gboolean      at_end,
                   gsize        *offset)
{
  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (offset != NULL, FALSE);

  for (gsize i = 0; i + 4 <= len; i++)
    {
      AlvMp3Frame a, b;
      gsize next;

      if (data[i] != 0xff || !alv_mp3_frame_parse (data + i, len - i, &a))
        continue;
      next = i + a.length;
      if (next + 4 <= len)
        {
          if (alv_mp3_frame_parse (data + next, len - next, &b) && alv_mp3_frames_compatible (&a, &b))
            {
              *offset = i;
              return TRUE;
            }
          continue;
        }
      if (at_end && next == len)
        {
          *offset = i;
          return TRUE;
        }
      if (!at_end)
        {
          /* undecided until more bytes arrive */
          *offset = i;
          return FALSE;
        }
    }
  *offset = len > 3 ? len - 3 : 0;
  if (at_end)
    *offset = len;
  return FALSE;
}

/**
 * alv_mp3_id3v2_size:
 * @data: the start of a file
 * @len: its length (10 bytes are enough)
 *
 * Returns: the size of the ID3v2 tag at @data (header, footer included),
 *   or 0 if there is none
 */
gsize
alv_mp3_id3v2_size (const guint8 *data,
                    gsize         len)
{
  gsize size = 0;

  g_return_val_if_fail (data != NULL || len == 0, 0);

  if (len < 10 || memcmp (data, "ID3", 3) != 0 || data[3] == 0xff || data[4] == 0xff)
    return 0;
  for (guint i = 6; i < 10; i++)
    {
      if (data[i] & 0x80)
        return 0;
      size = (size << 7) | data[i];
    }
  return 10 + size + ((data[5] & 0x10) ? 10 : 0);
}

static guint32
read_be32 (const guint8 *p)
{
  return ((guint32) p[0] << 24) | ((guint32) p[1] << 16) | ((guint32) p[2] << 8) | p[3];
}

/**
 * alv_mp3_parse_info:
 * @data: the start of an MP3 file
 * @len: how much of it (the ID3v2 tag and the first two frames suffice)
 * @info: (out caller-allocates): what was found
 * @error: return location for a #GError
 *
 * Finds the first frame after any ID3v2 tag and reads a Xing or Info
 * header from it if there is one.
 *
 * Returns: %TRUE on success
 */
gboolean
alv_mp3_parse_info (const guint8  *data,
                    gsize          len,
                    AlvMp3Info    *info,
                    GError       **error)
{
  gsize start, sync;
  gsize x;
  const guint8 *frame;
  guint32 flags;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (info != NULL, FALSE);

  memset (info, 0, sizeof *info);
  start = alv_mp3_id3v2_size (data, len);
  if (start >= len)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT, _("MP3 data ends inside its ID3v2 tag"));
      return FALSE;
    }
  if (!alv_mp3_find_sync (data + start, len - start, TRUE, &sync))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("No MPEG audio frame found"));
      return FALSE;
    }
  info->audio_start = start + sync;
  frame = data + info->audio_start;
  if (!alv_mp3_frame_parse (frame, len - info->audio_start, &info->first))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("No MPEG audio frame found"));
      return FALSE;
    }
  memcpy (info->header, frame, 4);

  x = 4 + info->first.side_info;
  if (x + 8 > info->first.length || info->audio_start + x + 8 > len)
    return TRUE;
  if (memcmp (frame + x, "Xing", 4) != 0 && memcmp (frame + x, "Info", 4) != 0)
    return TRUE;
  info->xing = TRUE;
  flags = read_be32 (frame + x + 4);
  x += 8;
  if (flags & 1)
    {
      if (x + 4 > info->first.length || info->audio_start + x + 4 > len)
        return TRUE;
      info->n_frames = read_be32 (frame + x);
      x += 4;
    }
  if (flags & 2)
    {
      if (x + 4 > info->first.length || info->audio_start + x + 4 > len)
        return TRUE;
      info->n_bytes = read_be32 (frame + x);
      x += 4;
    }
  if (flags & 4)
    {
      if (x + 100 > info->first.length || info->audio_start + x + 100 > len)
        return TRUE;
      memcpy (info->toc, frame + x, 100);
      info->has_toc = TRUE;
    }
  return TRUE;
}

/**
 * alv_mp3_info_to_string:
 * @info: from alv_mp3_parse_info()
 *
 * The facts of @info as one line of `key=value` pairs separated by "; ":
 * `start` (the audio's offset), `header` (the first frame's header bytes
 * in hex), `xing` (present when the first frame is a Xing/Info frame),
 * `frames`, `bytes` (its counts, when known) and `toc` (its seek table,
 * base64).  Short enough for an HTTP header.
 *
 * Returns: (transfer full): the line
 */
char *
alv_mp3_info_to_string (const AlvMp3Info *info)
{
  GString *s;

  g_return_val_if_fail (info != NULL, NULL);
  s = g_string_new (NULL);
  g_string_append_printf (s, "start=%" G_GSIZE_FORMAT "; header=%02x%02x%02x%02x",
                          info->audio_start, info->header[0], info->header[1],
                          info->header[2], info->header[3]);
  if (info->xing)
    g_string_append (s, "; xing");
  if (info->n_frames > 0)
    g_string_append_printf (s, "; frames=%" G_GUINT32_FORMAT, info->n_frames);
  if (info->n_bytes > 0)
    g_string_append_printf (s, "; bytes=%" G_GUINT32_FORMAT, info->n_bytes);
  if (info->has_toc)
    {
      g_autofree char *toc = g_base64_encode (info->toc, sizeof info->toc);

      g_string_append_printf (s, "; toc=%s", toc);
    }
  return g_string_free (s, FALSE);
}

static gboolean
parse_u32 (const char *value,
           guint64     max,
           guint64    *out)
{
  return value[0] >= '0' && value[0] <= '9'
         && g_ascii_string_to_unsigned (value, 10, 0, max, out, NULL);
}

/**
 * alv_mp3_info_from_string:
 * @text: from alv_mp3_info_to_string() (untrusted)
 * @info: (out caller-allocates): the facts
 * @error: return location for a #GError
 *
 * Reads what alv_mp3_info_to_string() wrote.  `start` and a `header` that
 * parses as a Layer III frame header are required; unknown keys are
 * skipped, so later writers may add some.
 *
 * Returns: %TRUE on success
 */
gboolean
alv_mp3_info_from_string (const char  *text,
                          AlvMp3Info  *info,
                          GError     **error)
{
  g_auto(GStrv) fields = NULL;
  gboolean have_start = FALSE, have_header = FALSE;

  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (info != NULL, FALSE);

  memset (info, 0, sizeof *info);
  if (strlen (text) > 1024)
    goto bad;
  fields = g_strsplit (text, ";", 16);
  for (guint i = 0; fields[i] != NULL; i++)
    {
      char *field = g_strstrip (fields[i]);
      char *eq = strchr (field, '=');
      const char *value = eq != NULL ? eq + 1 : "";
      guint64 n;

      if (eq != NULL)
        *eq = '\0';
      if (strcmp (field, "start") == 0)
        {
          if (!parse_u32 (value, G_MAXUINT32, &n))
            goto bad;
          info->audio_start = (gsize) n;
          have_start = TRUE;
        }
      else if (strcmp (field, "header") == 0)
        {
          if (strlen (value) != 8)
            goto bad;
          for (guint k = 0; k < 4; k++)
            {
              int hi = g_ascii_xdigit_value (value[2 * k]);
              int lo = g_ascii_xdigit_value (value[2 * k + 1]);

              if (hi < 0 || lo < 0)
                goto bad;
              info->header[k] = (guint8) (hi << 4 | lo);
            }
          if (!alv_mp3_frame_parse (info->header, 4, &info->first))
            goto bad;
          have_header = TRUE;
        }
      else if (strcmp (field, "xing") == 0)
        info->xing = TRUE;
      else if (strcmp (field, "frames") == 0 || strcmp (field, "bytes") == 0)
        {
          if (!parse_u32 (value, G_MAXUINT32, &n))
            goto bad;
          if (field[0] == 'f')
            info->n_frames = (guint32) n;
          else
            info->n_bytes = (guint32) n;
        }
      else if (strcmp (field, "toc") == 0)
        {
          g_autofree guchar *toc = NULL;
          gsize toc_len = 0;

          if (strlen (value) != 136)
            goto bad;
          toc = g_base64_decode (value, &toc_len);
          if (toc_len != sizeof info->toc)
            goto bad;
          memcpy (info->toc, toc, sizeof info->toc);
          info->has_toc = TRUE;
        }
    }
  if (have_start && have_header)
    return TRUE;

bad:
  memset (info, 0, sizeof *info);
  g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Bad MPEG audio facts: “%s”"), text);
  return FALSE;
}

/**
 * alv_mp3_duration_usec:
 * @info: from alv_mp3_parse_info()
 * @file_size: the whole file's size (used without a Xing frame count)
 *
 * Returns: the duration in microseconds (an estimate for CBR files)
 */
guint64
alv_mp3_duration_usec (const AlvMp3Info *info,
                       guint64           file_size)
{
  guint64 audio;

  g_return_val_if_fail (info != NULL, 0);
  if (info->first.sample_rate == 0 || info->first.bitrate == 0)
    return 0;
  if (info->n_frames > 0)
    return (guint64) info->n_frames * info->first.samples * G_USEC_PER_SEC / info->first.sample_rate;
  if (file_size <= info->audio_start)
    return 0;
  audio = file_size - info->audio_start;
  if (audio > G_MAXUINT64 / 8 / G_USEC_PER_SEC)
    return G_MAXUINT64;
  return audio * 8 * G_USEC_PER_SEC / info->first.bitrate;
}

/**
 * alv_mp3_time_to_offset:
 * @info: from alv_mp3_parse_info()
 * @file_size: the whole file's size, or 0 if unknown
 * @time_us: the position
 *
 * Estimates the file offset where the audio of @time_us starts: from the
 * Xing seek table (interpolated) when present, otherwise at constant
 * bitrate after the first (or Xing) frame.  Align the result with
 * alv_mp3_find_sync() on the file's bytes at that offset.
 *
 * Returns: the byte offset, at most @file_size when that is known
 */
guint64
alv_mp3_time_to_offset (const AlvMp3Info *info,
                        guint64           file_size,
                        guint64           time_us)
{
  guint64 offset;
  const AlvMp3Frame *f;

  g_return_val_if_fail (info != NULL, 0);
  f = &info->first;
  if (f->sample_rate == 0 || f->bitrate == 0)
    return info->audio_start;
  time_us = MIN (time_us, (guint64) 100 * 24 * 3600 * G_USEC_PER_SEC);

  if (info->has_toc && info->n_frames > 0)
    {
      guint64 bytes = info->n_bytes > 0 ? info->n_bytes
                      : (file_size > info->audio_start ? file_size - info->audio_start : 0);
      double duration = (double) info->n_frames * f->samples / f->sample_rate;
      double pct = CLAMP ((double) time_us / G_USEC_PER_SEC / duration * 100.0, 0.0, 99.999);
      guint i = (guint) pct;
      double a = info->toc[i];
      double b = i < 99 ? info->toc[i + 1] : 256.0;
      double fa = a + (b - a) * (pct - i);

      offset = info->audio_start + (guint64) (fa / 256.0 * (double) bytes);
    }
  else
    {
      guint64 data_start = info->audio_start + (info->xing ? f->length : 0);
      guint64 frame_index = time_us * f->sample_rate / ((guint64) f->samples * G_USEC_PER_SEC);

      offset = data_start + frame_index * f->samples * f->bitrate / (8 * (guint64) f->sample_rate);
    }
  if (file_size > 0 && offset > file_size)
    offset = file_size;
  return offset;
}
