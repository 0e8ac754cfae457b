/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the Matroska/WebM handling of alv-matroska.h, which
 * reads media bytes from the origin and from peers.  The first input byte
 * selects the mode (and, for the Cluster modes, whether the file has a
 * video track); the second drives piece sizes and time positions; the rest
 * is the input.  Beyond "no crash": a parsed stream header lies within the
 * input, ends at a Cluster, and its live rewrite parses back to the same
 * tracks with no Duration; a Cluster head lies within the input and a
 * keyframe lookup gives a Cluster that parses as a place to start; the
 * remuxer gives the same bytes whether fed in one shot or in uneven pieces,
 * every Cluster piece is a well-formed head whose timecode it reports, and
 * what it drops never exceeds what it was given.  A
 * g_critical()/g_warning() is fatal.
 */
#define G_LOG_DOMAIN "fuzz-matroska"

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "alv-matroska.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
fuzz_info (const guint8 *d,
           gsize         len)
{
  AlvMatroskaInfo info, again;
  g_autoptr(GBytes) live = NULL;
  g_autoptr(GByteArray) joined = g_byte_array_new ();
  gsize llen;
  const guint8 *l;

  if (alv_matroska_parse_info (d, len, &info) != ALV_MATROSKA_PARSE_OK)
    return;
  CHECK (info.header_length >= info.segment_data);
  CHECK (info.header_length + 4 <= len);
  CHECK (memcmp (d + info.header_length, "\x1f\x43\xb6\x75", 4) == 0);
  CHECK (info.n_tracks >= 1 && info.n_tracks <= ALV_MATROSKA_MAX_TRACKS);
  for (guint i = 0; i < info.n_tracks; i++)
    {
      CHECK (info.tracks[i].number > 0);
      CHECK (info.tracks[i].codec_private + info.tracks[i].codec_private_size <= info.header_length);
    }
  CHECK (alv_matroska_compatible (&info, d, &info, d));

  live = alv_matroska_live_header (d, &info);
  l = g_bytes_get_data (live, &llen);
  g_byte_array_append (joined, l, (guint) llen);
  g_byte_array_append (joined, d + info.header_length, (guint) (len - info.header_length));
  CHECK (alv_matroska_parse_info (joined->data, joined->len, &again) == ALV_MATROSKA_PARSE_OK);
  CHECK (again.header_length == llen);
  CHECK (again.duration_us == 0);
  CHECK (again.n_tracks == info.n_tracks);
  CHECK (again.timecode_scale == info.timecode_scale);
  CHECK (alv_matroska_compatible (&info, d, &again, joined->data));
}

static void
fake_info (AlvMatroskaInfo *info,
           guint8           selector)
{
  memset (info, 0, sizeof *info);
  info->timecode_scale = 1000000;
  info->n_tracks = 2;
  info->tracks[0].number = 1;
  info->tracks[0].type = 1;
  info->tracks[1].number = 2;
  info->tracks[1].type = 2;
  info->video_track = (selector & 0x10) ? 0 : 1;
}

static void
fuzz_clusters (const FuzzInput *in,
               guint8           selector)
{
  AlvMatroskaInfo info;
  AlvMatroskaCluster c;
  guint64 time_us = (guint64) in->control * 100000;
  gsize offset = 0;
  AlvMatroskaParseResult r;

  fake_info (&info, selector);
  if (alv_matroska_cluster_parse (in->d, in->len, &info, &c) == ALV_MATROSKA_PARSE_OK)
    {
      CHECK (c.head_length >= c.header_length);
      CHECK (c.head_length <= in->len);
      CHECK (c.size == G_MAXUINT64 || c.head_length <= c.header_length + c.size);
      /* a keyframe is a block that starts where the head ends */
      CHECK (!c.keyframe || c.head_length < in->len);
    }
  for (int at_end = 0; at_end < 2; at_end++)
    {
      r = alv_matroska_find_keyframe (in->d, in->len, &info, time_us, at_end, &offset);
      CHECK (r != ALV_MATROSKA_PARSE_NEED_MORE || !at_end);
      if (r != ALV_MATROSKA_PARSE_OK)
        continue;
      CHECK (offset < in->len);
      CHECK (alv_matroska_cluster_parse (in->d + offset, in->len - offset, &info, &c) == ALV_MATROSKA_PARSE_OK);
      CHECK (c.keyframe);
    }
}

typedef struct
{
  GByteArray *bytes;
  guint n_headers;
} Output;

static void
drain (AlvMatroskaRemuxer *remuxer,
       Output             *out)
{
  GBytes *bytes;
  AlvMatroskaPiece piece;

  while ((bytes = alv_matroska_remuxer_pop (remuxer, &piece)) != NULL)
    {
      gsize n;
      const guint8 *p = g_bytes_get_data (bytes, &n);

      CHECK (n > 0);
      if (piece.kind == ALV_MATROSKA_PIECE_HEADER)
        {
          AlvMatroskaInfo info;

          CHECK (alv_matroska_parse_info (p, n, &info) == ALV_MATROSKA_PARSE_NEED_MORE);
          out->n_headers++;
        }
      else if (piece.kind == ALV_MATROSKA_PIECE_CLUSTER)
        {
          guint64 tc = 0;

          /* ID, 8-byte size, Timecode of 8 bytes */
          CHECK (n == 22);
          CHECK (memcmp (p, "\x1f\x43\xb6\x75\x01", 5) == 0);
          CHECK (p[12] == 0xE7 && p[13] == 0x88);
          for (guint i = 0; i < 8; i++)
            tc = (tc << 8) | p[14 + i];
          CHECK (tc == piece.timecode);
        }
      g_byte_array_append (out->bytes, p, (guint) n);
      g_bytes_unref (bytes);
    }
}

/* Feeds the input as items cut at the control byte's multiples, in one
 * shot (@seed 0) or in pieces. */
static void
remux (const FuzzInput *in,
       guint32          seed,
       Output          *out)
{
  g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();
  gsize item_len = in->control < 16 ? in->len : (gsize) in->control * 64;
  guint32 state = seed;

  out->bytes = g_byte_array_new ();
  out->n_headers = 0;
  for (gsize item = 0; item < in->len; item += item_len)
    {
      gsize end = MIN (in->len, item + item_len);

      alv_matroska_remuxer_begin_item (remuxer);
      for (gsize pos = item; pos < end;)
        {
          gsize n = seed == 0 ? end - pos : fuzz_next_piece (&state, 300, end - pos);

          alv_matroska_remuxer_push (remuxer, in->d + pos, n);
          pos += n;
          drain (remuxer, out);
        }
    }
  alv_matroska_remuxer_begin_item (remuxer);
  drain (remuxer, out);
  CHECK (alv_matroska_remuxer_get_dropped (remuxer) <= in->len);
}

static void
fuzz_remux (const FuzzInput *in)
{
  Output one, pieces;

  remux (in, 0, &one);
  remux (in, 0x9e3779b9u ^ in->control, &pieces);
  CHECK (one.n_headers == pieces.n_headers);
  CHECK (one.bytes->len == pieces.bytes->len);
  CHECK (one.bytes->len == 0 || memcmp (one.bytes->data, pieces.bytes->data, one.bytes->len) == 0);
  g_byte_array_unref (one.bytes);
  g_byte_array_unref (pieces.bytes);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  FuzzInput in;

  fuzz_init ();
  if (!fuzz_input_split (&in, data, size))
    return 0;

  switch (data[0] % 3)
    {
    case 0:
      fuzz_info (in.d, in.len);
      break;
    case 1:
      fuzz_clusters (&in, data[0]);
      break;
    case 2:
    default:
      fuzz_remux (&in);
      break;
    }
  return 0;
}
