/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of core/alv-matroska.h on WebM files from real encoders
 * (VP8 with Opus or Vorbis, a keyframe every second, muxed by webmmux) and
 * on small hand-made files for what encoders here do not write (BlockGroups
 * with ReferenceBlock, Clusters of unknown size): the stream header, the
 * Cluster heads, the keyframe lookup by time, the live header, and the
 * remuxer that splices files into one stream with continuous time, in one
 * shot and in uneven pieces, joined mid-file and cut short.
 */
#include "config.h"

#include <string.h>
#include <gst/gst.h>

#include "alv-matroska.h"
#include "stream-media.h"

#define SECOND_US G_USEC_PER_SEC

typedef struct
{
  gsize offset;
  AlvMatroskaCluster cluster;
} ClusterAt;

/* Walks the Clusters of @data from @start by their sizes, to the end. */
static GArray *
walk_clusters (const guint8          *data,
               gsize                  len,
               gsize                  start,
               const AlvMatroskaInfo *info)
{
  GArray *clusters = g_array_new (FALSE, TRUE, sizeof (ClusterAt));
  gsize pos = start;

  while (pos < len)
    {
      ClusterAt at = { pos, { 0 } };

      g_assert_cmpint (alv_matroska_cluster_parse (data + pos, len - pos, info, &at.cluster), ==,
                       ALV_MATROSKA_PARSE_OK);
      g_assert_cmpuint (at.cluster.size, !=, G_MAXUINT64);
      g_array_append_val (clusters, at);
      pos += at.cluster.header_length + at.cluster.size;
      /* Cues and Tags after the last Cluster */
      if (pos + 4 <= len && memcmp (data + pos, "\x1f\x43\xb6\x75", 4) != 0)
        break;
    }
  return clusters;
}

static GBytes *
webm_or_skip (guint       seconds,
              int         pattern,
              const char *audio)
{
  GBytes *bytes = stream_media_webm (seconds, pattern, audio);

  if (bytes == NULL)
    g_test_skip ("vp8enc, opusenc, vorbisenc or webmmux missing");
  return bytes;
}

static void
test_info (void)
{
  g_autoptr(GBytes) file = webm_or_skip (5, 0, "opus");
  AlvMatroskaInfo info;
  gsize len;
  const guint8 *d;

  if (file == NULL)
    return;
  d = g_bytes_get_data (file, &len);
  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_true (info.doc_type_webm);
  g_assert_cmpuint (info.timecode_scale, ==, 1000000);
  g_assert_cmpuint (info.duration_us, ==, 5 * SECOND_US);
  g_assert_cmpuint (info.n_tracks, ==, 2);
  g_assert_cmpuint (info.video_track, ==, 1);
  g_assert_cmpstr (info.tracks[0].codec_id, ==, "V_VP8");
  g_assert_cmpuint (info.tracks[0].type, ==, 1);
  g_assert_cmpuint (info.tracks[0].width, ==, 160);
  g_assert_cmpuint (info.tracks[0].height, ==, 120);
  g_assert_cmpuint (info.tracks[1].number, ==, 2);
  g_assert_cmpstr (info.tracks[1].codec_id, ==, "A_OPUS");
  g_assert_cmpuint (info.tracks[1].channels, ==, 2);
  g_assert_cmpfloat (info.tracks[1].rate, ==, 48000.0);
  g_assert_cmpuint (info.tracks[1].codec_private_size, ==, 19); /* OpusHead */
  g_assert_cmpmem (d + info.tracks[1].codec_private, 8, "OpusHead", 8);
  g_assert_cmpmem (d + info.header_length, 4, "\x1f\x43\xb6\x75", 4);

  /* every prefix of the header asks for more; a damaged start is refused */
  for (gsize n = 0; n < info.header_length; n++)
    {
      AlvMatroskaInfo part;

      g_assert_cmpint (alv_matroska_parse_info (d, n, &part), ==, ALV_MATROSKA_PARSE_NEED_MORE);
    }
  {
    g_autofree guint8 *bad = g_memdup2 (d, len);

    bad[0] = 0x1b;
    g_assert_cmpint (alv_matroska_parse_info (bad, len, &info), ==, ALV_MATROSKA_PARSE_INVALID);
  }
}

/* webmmux starts a Cluster on each video keyframe: one a second */
static void
test_clusters (void)
{
  g_autoptr(GBytes) file = webm_or_skip (5, 0, "opus");
  g_autoptr(GArray) clusters = NULL;
  AlvMatroskaInfo info;
  gsize len;
  const guint8 *d;

  if (file == NULL)
    return;
  d = g_bytes_get_data (file, &len);
  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  clusters = walk_clusters (d, len, info.header_length, &info);
  g_assert_cmpuint (clusters->len, ==, 5);
  for (guint i = 0; i < clusters->len; i++)
    {
      ClusterAt *at = &g_array_index (clusters, ClusterAt, i);

      g_assert_cmpuint (at->cluster.timecode, ==, 1000 * i);
      g_assert_true (at->cluster.keyframe);
      /* ID, size, Timecode: then the first block */
      g_assert_cmpuint (at->cluster.head_length, >, at->cluster.header_length);
      g_assert_cmpuint (at->cluster.head_length, <=, at->cluster.header_length + 10);
      /* every prefix of the head asks for more */
      for (gsize n = 0; n < at->cluster.head_length; n++)
        {
          AlvMatroskaCluster c;

          g_assert_cmpint (alv_matroska_cluster_parse (d + at->offset, n, &info, &c), ==,
                           ALV_MATROSKA_PARSE_NEED_MORE);
        }
    }

  /* a file without video: every Cluster is a place to start */
  {
    g_autoptr(GBytes) audio = webm_or_skip (3, -1, "vorbis");
    g_autoptr(GArray) ac = NULL;

    if (audio == NULL)
      return;
    d = g_bytes_get_data (audio, &len);
    g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
    g_assert_cmpuint (info.video_track, ==, 0);
    g_assert_cmpstr (info.tracks[0].codec_id, ==, "A_VORBIS");
    ac = walk_clusters (d, len, info.header_length, &info);
    g_assert_cmpuint (ac->len, >=, 1);
    for (guint i = 0; i < ac->len; i++)
      g_assert_true (g_array_index (ac, ClusterAt, i).cluster.keyframe);
  }
}

static void
test_find_keyframe (void)
{
  g_autoptr(GBytes) file = webm_or_skip (5, 0, "opus");
  g_autoptr(GArray) clusters = NULL;
  AlvMatroskaInfo info;
  gsize len, off = 0, from;
  const guint8 *d;

  if (file == NULL)
    return;
  d = g_bytes_get_data (file, &len);
  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  clusters = walk_clusters (d, len, info.header_length, &info);
#define CLUSTER_OFF(i) (g_array_index (clusters, ClusterAt, (i)).offset)

  g_assert_cmpint (alv_matroska_find_keyframe (d, len, &info, 0, TRUE, &off), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (off, ==, CLUSTER_OFF (0));
  g_assert_cmpint (alv_matroska_find_keyframe (d, len, &info, 2500000, TRUE, &off), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (off, ==, CLUSTER_OFF (2));
  g_assert_cmpint (alv_matroska_find_keyframe (d, len, &info, 3000000, FALSE, &off), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (off, ==, CLUSTER_OFF (3));
  g_assert_cmpint (alv_matroska_find_keyframe (d, len, &info, 60 * SECOND_US, TRUE, &off), ==,
                   ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (off, ==, CLUSTER_OFF (4));

  /* from the middle of a Cluster: the next one, whose offset is relative */
  from = CLUSTER_OFF (1) + 100;
  g_assert_cmpint (alv_matroska_find_keyframe (d + from, len - from, &info, 0, FALSE, &off), ==,
                   ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (from + off, ==, CLUSTER_OFF (2));
  /* 2.5 s with only Cluster 2 in hand: Cluster 3 could be closer */
  g_assert_cmpint (alv_matroska_find_keyframe (d + from, CLUSTER_OFF (3) - from, &info, 2500000, FALSE, &off),
                   ==, ALV_MATROSKA_PARSE_NEED_MORE);
  g_assert_cmpint (alv_matroska_find_keyframe (d + from, CLUSTER_OFF (3) + 40 - from, &info, 2500000, FALSE, &off),
                   ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (from + off, ==, CLUSTER_OFF (2));
  /* nothing but the middle of a block */
  g_assert_cmpint (alv_matroska_find_keyframe (d + from, 200, &info, 0, TRUE, &off), ==,
                   ALV_MATROSKA_PARSE_INVALID);
#undef CLUSTER_OFF
}

static void
test_live_header (void)
{
  g_autoptr(GBytes) file = webm_or_skip (2, 0, "opus");
  g_autoptr(GBytes) live = NULL;
  g_autoptr(GByteArray) joined = g_byte_array_new ();
  AlvMatroskaInfo info, linfo;
  gsize len, llen;
  const guint8 *d, *l;

  if (file == NULL)
    return;
  d = g_bytes_get_data (file, &len);
  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  live = alv_matroska_live_header (d, &info);
  l = g_bytes_get_data (live, &llen);
  /* the file's SeekHead, Void and Duration are gone */
  g_assert_cmpuint (llen, <, info.header_length);
  g_assert_null (stream_find_bytes (l, llen, (const guint8 *) "\x11\x4d\x9b\x74", 4));
  g_assert_null (stream_find_bytes (l, llen, (const guint8 *) "\x1c\x53\xbb\x6b", 4));
  /* a Segment of unknown size */
  g_assert_nonnull (stream_find_bytes (l, llen, (const guint8 *) "\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff", 12));

  g_byte_array_append (joined, l, (guint) llen);
  g_byte_array_append (joined, d + info.header_length, (guint) (len - info.header_length));
  g_assert_cmpint (alv_matroska_parse_info (joined->data, joined->len, &linfo), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (linfo.header_length, ==, llen);
  g_assert_cmpuint (linfo.duration_us, ==, 0);
  g_assert_cmpuint (linfo.n_tracks, ==, 2);
  g_assert_true (alv_matroska_compatible (&info, d, &linfo, joined->data));
}

/* ---- the remuxer ----------------------------------------------------------- */

typedef struct
{
  GByteArray *stream;
  guint n_headers;
  guint n_new_streams;
  GArray *timecodes;   /* guint64 of each Cluster on the wire */
  GArray *keyframes;   /* gboolean */
} Remuxed;

static void
remuxed_init (Remuxed *r)
{
  r->stream = g_byte_array_new ();
  r->timecodes = g_array_new (FALSE, FALSE, sizeof (guint64));
  r->keyframes = g_array_new (FALSE, FALSE, sizeof (gboolean));
  r->n_headers = r->n_new_streams = 0;
}

static void
remuxed_clear (Remuxed *r)
{
  g_byte_array_unref (r->stream);
  g_array_unref (r->timecodes);
  g_array_unref (r->keyframes);
}

static void
drain (AlvMatroskaRemuxer *remuxer,
       Remuxed            *out)
{
  GBytes *bytes;
  AlvMatroskaPiece piece;

  while ((bytes = alv_matroska_remuxer_pop (remuxer, &piece)) != NULL)
    {
      gsize n;
      const guint8 *p = g_bytes_get_data (bytes, &n);

      if (piece.kind == ALV_MATROSKA_PIECE_HEADER)
        {
          out->n_headers++;
          out->n_new_streams += piece.new_stream;
        }
      else if (piece.kind == ALV_MATROSKA_PIECE_CLUSTER)
        {
          g_assert_cmpmem (p, 4, "\x1f\x43\xb6\x75", 4);
          g_array_append_val (out->timecodes, piece.timecode);
          g_array_append_val (out->keyframes, piece.keyframe);
        }
      g_byte_array_append (out->stream, p, (guint) n);
      g_bytes_unref (bytes);
    }
}

/* Feeds each item's [from, to) to a fresh remuxer in pieces of @step
 * bytes (0: one shot). */
static void
remux (GBytes  **items,
       gsize    *from,
       gsize    *to,
       guint     n_items,
       gsize     step,
       Remuxed  *out)
{
  g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();

  remuxed_init (out);
  for (guint i = 0; i < n_items; i++)
    {
      const guint8 *d = g_bytes_get_data (items[i], NULL);
      gsize pos = from[i];

      alv_matroska_remuxer_begin_item (remuxer);
      while (pos < to[i])
        {
          gsize n = step == 0 ? to[i] - pos : MIN (step + pos % 7, to[i] - pos);

          alv_matroska_remuxer_push (remuxer, d + pos, n);
          pos += n;
          drain (remuxer, out);
        }
    }
  alv_matroska_remuxer_begin_item (remuxer);
  drain (remuxer, out);
}

static gsize
header_len (GBytes *file)
{
  AlvMatroskaInfo info;
  gsize len;
  const guint8 *d = g_bytes_get_data (file, &len);

  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  return info.header_length;
}

/* The remuxed stream parses as one file: a header, then Clusters back to
 * back; returns their walk. */
static GArray *
check_stream (Remuxed *r)
{
  AlvMatroskaInfo info;
  GArray *clusters;

  g_assert_cmpint (alv_matroska_parse_info (r->stream->data, r->stream->len, &info), ==, ALV_MATROSKA_PARSE_OK);
  clusters = walk_clusters (r->stream->data, r->stream->len, info.header_length, &info);
  g_assert_cmpuint (clusters->len, ==, r->timecodes->len);
  for (guint i = 0; i < clusters->len; i++)
    {
      g_assert_cmpuint (g_array_index (clusters, ClusterAt, i).cluster.timecode, ==,
                        g_array_index (r->timecodes, guint64, i));
      g_assert_cmpint (g_array_index (clusters, ClusterAt, i).cluster.keyframe, ==,
                       g_array_index (r->keyframes, gboolean, i));
    }
  /* all of it: no bytes after the last Cluster */
  if (clusters->len > 0)
    {
      ClusterAt *last = &g_array_index (clusters, ClusterAt, clusters->len - 1);

      g_assert_cmpuint (last->offset + last->cluster.header_length + last->cluster.size, ==, r->stream->len);
    }
  return clusters;
}

static void
test_remux_two_items (void)
{
  GBytes *items[2] = { webm_or_skip (5, 0, "opus"), NULL };
  gsize from[2], to[2];
  Remuxed one, pieces;
  g_autoptr(GArray) clusters = NULL;

  if (items[0] == NULL)
    return;
  items[1] = stream_media_webm (5, 18, "opus"); /* another pattern, same settings */
  for (guint i = 0; i < 2; i++)
    {
      from[i] = 0;
      to[i] = g_bytes_get_size (items[i]);
    }
  remux (items, from, to, 2, 0, &one);
  g_assert_cmpuint (one.n_headers, ==, 1);
  g_assert_cmpuint (one.n_new_streams, ==, 0);
  /* the first item's last Opus block (of 251: 5 s and the encoder's
   * delay) is at 5000 ms and lasts 20 ms: the second item starts at 5020 */
  g_assert_cmpuint (one.timecodes->len, ==, 10);
  for (guint i = 0; i < 10; i++)
    {
      g_assert_cmpuint (g_array_index (one.timecodes, guint64, i), ==, 1000 * i + (i >= 5 ? 20 : 0));
      g_assert_true (g_array_index (one.keyframes, gboolean, i));
    }
  clusters = check_stream (&one);

  /* uneven pieces: the same bytes */
  remux (items, from, to, 2, 1000, &pieces);
  g_assert_cmpmem (pieces.stream->data, pieces.stream->len, one.stream->data, one.stream->len);
  remuxed_clear (&pieces);
  remux (items, from, to, 2, 1, &pieces);
  g_assert_cmpmem (pieces.stream->data, pieces.stream->len, one.stream->data, one.stream->len);
  remuxed_clear (&pieces);
  remuxed_clear (&one);
  for (guint i = 0; i < 2; i++)
    g_bytes_unref (items[i]);
}

/* The daemon pushes an item's header, then its bytes from the keyframe
 * Cluster nearest the position playing; the next item follows at once. */
static void
test_remux_join_mid_item (void)
{
  GBytes *items[3] = { webm_or_skip (5, 0, "opus"), NULL, NULL };
  gsize from[3], to[3];
  Remuxed out;
  AlvMatroskaInfo info;
  gsize len, off = 0;
  const guint8 *d;
  g_autoptr(GArray) clusters = NULL;
  g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();

  if (items[0] == NULL)
    return;
  items[1] = stream_media_webm (5, 18, "opus");
  d = g_bytes_get_data (items[0], &len);
  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpint (alv_matroska_find_keyframe (d + info.header_length, len - info.header_length, &info,
                                               3400000, TRUE, &off), ==, ALV_MATROSKA_PARSE_OK);

  /* item 0 as two pushes: its header, then from Cluster 3 on */
  remuxed_init (&out);
  alv_matroska_remuxer_begin_item (remuxer);
  alv_matroska_remuxer_push (remuxer, d, info.header_length);
  alv_matroska_remuxer_push (remuxer, d + info.header_length + off, len - info.header_length - off);
  drain (remuxer, &out);
  alv_matroska_remuxer_begin_item (remuxer);
  d = g_bytes_get_data (items[1], &len);
  alv_matroska_remuxer_push (remuxer, d, len);
  alv_matroska_remuxer_begin_item (remuxer);
  drain (remuxer, &out);

  g_assert_cmpuint (out.n_headers, ==, 1);
  g_assert_cmpuint (out.timecodes->len, ==, 7);
  /* the stream's time starts at the joining Cluster's and runs on */
  for (guint i = 0; i < 7; i++)
    g_assert_cmpuint (g_array_index (out.timecodes, guint64, i), ==, 3000 + 1000 * i + (i >= 2 ? 20 : 0));
  clusters = check_stream (&out);
  remuxed_clear (&out);

  /* an item cut short in the middle of a block: its partial Cluster is
   * dropped, the stream stays walkable, and the next item starts where the
   * last Cluster that went out ended */
  items[2] = g_bytes_ref (items[1]);
  for (guint i = 0; i < 3; i++)
    {
      from[i] = 0;
      to[i] = g_bytes_get_size (items[i]);
    }
  to[0] = header_len (items[0]) + 2 * 40000 + 555; /* in Cluster 1 or 2 */
  remux (items, from, to, 3, 777, &out);
  g_clear_pointer (&clusters, g_array_unref);
  clusters = check_stream (&out);
  g_assert_cmpuint (out.n_headers, ==, 1);
  g_assert_cmpuint (g_array_index (out.timecodes, guint64, 0), ==, 0);
  {
    g_autoptr(GArray) whole = NULL;
    guint complete = 0;

    d = g_bytes_get_data (items[0], &len);
    whole = walk_clusters (d, len, header_len (items[0]), &info);
    for (guint i = 0; i < whole->len; i++)
      {
        ClusterAt *at = &g_array_index (whole, ClusterAt, i);

        complete += at->offset + at->cluster.header_length + at->cluster.size <= to[0];
      }
    g_assert_cmpuint (complete, >=, 1);
    g_assert_cmpuint (complete, <, whole->len);
    g_assert_cmpuint (out.timecodes->len, ==, complete + 10);
    /* the last whole Cluster's last blocks: video at n s - 40 ms, Opus at
     * n s (webmmux puts it before the next keyframe), each lasting as long
     * as the step before it */
    g_assert_cmpuint (g_array_index (out.timecodes, guint64, complete), ==, 1000 * complete + 20);
  }
  for (guint i = 1; i < out.timecodes->len; i++)
    g_assert_cmpuint (g_array_index (out.timecodes, guint64, i), >, g_array_index (out.timecodes, guint64, i - 1));
  /* items 1 and 2 are whole: 5.02 s each, back to back */
  g_assert_cmpuint (g_array_index (out.timecodes, guint64, out.timecodes->len - 1) -
                    g_array_index (out.timecodes, guint64, out.timecodes->len - 6), ==, 5020);
  remuxed_clear (&out);
  for (guint i = 0; i < 3; i++)
    g_bytes_unref (items[i]);
}

/* Opus then Vorbis: not one stream; Vorbis items with different comments
 * (titles) are */
static void
test_remux_incompatible (void)
{
  GBytes *items[3] = { webm_or_skip (2, 0, "opus"), NULL, NULL };
  gsize from[3] = { 0, 0, 0 }, to[3];
  Remuxed out;
  g_autoptr(GArray) clusters = NULL;

  if (items[0] == NULL)
    return;
  items[1] = stream_media_webm (2, 0, "vorbis");
  items[2] = stream_media_webm (2, 1, "vorbis");
  for (guint i = 0; i < 3; i++)
    to[i] = g_bytes_get_size (items[i]);
  remux (items, from, to, 3, 0, &out);
  g_assert_cmpuint (out.n_headers, ==, 2);
  g_assert_cmpuint (out.n_new_streams, ==, 1);
  g_assert_cmpuint (out.timecodes->len, ==, 6);
  /* the new stream's time starts over, then runs on */
  g_assert_cmpuint (g_array_index (out.timecodes, guint64, 2), ==, 0);
  /* ... past the last Vorbis block of the first Vorbis item, within a frame */
  g_assert_cmpuint (g_array_index (out.timecodes, guint64, 4), >=, 2000);
  g_assert_cmpuint (g_array_index (out.timecodes, guint64, 4), <, 2040);
  remuxed_clear (&out);
  for (guint i = 0; i < 3; i++)
    g_bytes_unref (items[i]);
}

/* ---- hand-made files ------------------------------------------------------ */

static void
put_id (GByteArray *b,
        guint32     id)
{
  for (int shift = 24; shift >= 0; shift -= 8)
    if ((id >> shift) != 0 || shift == 0)
      {
        guint8 c = (guint8) (id >> shift);

        g_byte_array_append (b, &c, 1);
      }
}

static void
put_element (GByteArray   *b,
             guint32       id,
             const guint8 *body,
             gsize         n)
{
  guint8 size[2] = { 0x40 | (guint8) (n >> 8), (guint8) n };

  g_assert_cmpuint (n, <, 0x3fff);
  put_id (b, id);
  g_byte_array_append (b, size, 2);
  g_byte_array_append (b, body, (guint) n);
}

static void
put_uint (GByteArray *b,
          guint32     id,
          guint8      value)
{
  put_element (b, id, &value, 1);
}

static GByteArray *
handmade_header (void)
{
  GByteArray *b = g_byte_array_new ();
  g_autoptr(GByteArray) ebml = g_byte_array_new ();
  g_autoptr(GByteArray) entry = g_byte_array_new ();
  g_autoptr(GByteArray) tracks = g_byte_array_new ();

  put_element (ebml, 0x4282, (const guint8 *) "matroska", 8);
  put_element (b, ALV_MATROSKA_ID_EBML, ebml->data, ebml->len);
  put_id (b, ALV_MATROSKA_ID_SEGMENT);
  g_byte_array_append (b, (const guint8 *) "\xff", 1); /* unknown size */
  put_uint (entry, 0xD7, 1);
  put_uint (entry, 0x83, 1);
  put_element (entry, 0x86, (const guint8 *) "V_MPEG4/ISO/AVC", 15);
  put_element (tracks, 0xAE, entry->data, entry->len);
  g_byte_array_set_size (entry, 0);
  put_uint (entry, 0xD7, 2);
  put_uint (entry, 0x83, 2);
  put_element (entry, 0x86, (const guint8 *) "A_AAC", 5);
  put_element (tracks, 0xAE, entry->data, entry->len);
  put_element (b, 0x1654AE6B, tracks->data, tracks->len);
  return b;
}

/* A Cluster of unknown size: an audio SimpleBlock, then a video BlockGroup
 * that is a keyframe unless @referenced. */
static void
handmade_cluster (GByteArray *b,
                  guint8      timecode,
                  gboolean    referenced)
{
  static const guint8 audio[] = { 0x82, 0x00, 0x00, 0x80, 'a', 'a' };
  static const guint8 video[] = { 0x81, 0x00, 0x00, 0x00, 'v', 'v', 'v' };
  g_autoptr(GByteArray) group = g_byte_array_new ();

  put_id (b, ALV_MATROSKA_ID_CLUSTER);
  g_byte_array_append (b, (const guint8 *) "\xff", 1);
  put_uint (b, 0xE7, timecode);
  put_element (b, 0xA3, audio, sizeof audio);
  put_element (group, 0xA1, video, sizeof video);
  if (referenced)
    put_uint (group, 0xFB, 0xd8);
  put_element (b, 0xA0, group->data, group->len);
}

/* The whole @file as two items in a row, in one shot each. */
static void
remux_twice (GByteArray *file,
             Remuxed    *out)
{
  g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();

  remuxed_init (out);
  for (guint i = 0; i < 2; i++)
    {
      alv_matroska_remuxer_begin_item (remuxer);
      alv_matroska_remuxer_push (remuxer, file->data, file->len);
    }
  alv_matroska_remuxer_begin_item (remuxer);
  drain (remuxer, out);
}

static void
test_handmade (void)
{
  g_autoptr(GByteArray) file = handmade_header ();
  AlvMatroskaInfo info;
  AlvMatroskaCluster c;
  gsize hlen, c1, c2, c3, off = 0;
  Remuxed out = { 0 };

  g_assert_cmpint (alv_matroska_parse_info (file->data, file->len, &info), ==, ALV_MATROSKA_PARSE_NEED_MORE);
  hlen = file->len;
  c1 = file->len;
  handmade_cluster (file, 0, FALSE);
  c2 = file->len;
  handmade_cluster (file, 40, TRUE);
  c3 = file->len;
  handmade_cluster (file, 80, FALSE);

  g_assert_cmpint (alv_matroska_parse_info (file->data, file->len, &info), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (info.header_length, ==, hlen);
  g_assert_false (info.doc_type_webm);
  g_assert_cmpuint (info.video_track, ==, 1);
  g_assert_cmpint (alv_matroska_cluster_parse (file->data + c1, file->len - c1, &info, &c), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_true (c.keyframe);
  g_assert_cmpuint (c.size, ==, G_MAXUINT64);
  g_assert_cmpuint (c.head_length, ==, 4 + 1 + 4);
  g_assert_cmpint (alv_matroska_cluster_parse (file->data + c2, file->len - c2, &info, &c), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_false (c.keyframe);
  g_assert_cmpuint (c.timecode, ==, 40);
  /* 50 ms: Cluster 2 is closer but no place to start */
  g_assert_cmpint (alv_matroska_find_keyframe (file->data + hlen, file->len - hlen, &info, 50000, TRUE, &off),
                   ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (hlen + off, ==, c1);
  g_assert_cmpint (alv_matroska_find_keyframe (file->data + hlen, file->len - hlen, &info, 90000, TRUE, &off),
                   ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (hlen + off, ==, c3);

  /* remuxed twice: Clusters stay of unknown size, time runs on by the
   * last video step (40 ms) */
  remux_twice (file, &out);
  g_assert_cmpuint (out.n_headers, ==, 1);
  g_assert_cmpuint (out.timecodes->len, ==, 6);
  {
    static const guint64 want[6] = { 0, 40, 80, 120, 160, 200 };
    static const gboolean key[6] = { TRUE, FALSE, TRUE, TRUE, FALSE, TRUE };

    for (guint i = 0; i < 6; i++)
      {
        g_assert_cmpuint (g_array_index (out.timecodes, guint64, i), ==, want[i]);
        g_assert_cmpint (g_array_index (out.keyframes, gboolean, i), ==, key[i]);
      }
  }
  /* Clusters of unknown size come out with their size */
  g_array_unref (check_stream (&out));
  g_assert_cmpint (alv_matroska_parse_info (out.stream->data, out.stream->len, &info), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpint (alv_matroska_find_keyframe (out.stream->data + info.header_length,
                                               out.stream->len - info.header_length, &info, 150000, TRUE, &off),
                   ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpint (alv_matroska_cluster_parse (out.stream->data + info.header_length + off,
                                               out.stream->len - info.header_length - off, &info, &c),
                   ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (c.timecode, ==, 120);
  remuxed_clear (&out);

  /* garbage: nothing comes out, all of it is counted as dropped */
  {
    g_autoptr(AlvMatroskaRemuxer) r2 = alv_matroska_remuxer_new ();
    AlvMatroskaPiece piece;

    alv_matroska_remuxer_begin_item (r2);
    alv_matroska_remuxer_push (r2, (const guint8 *) "\x00garbage, not EBML", 18);
    g_assert_null (alv_matroska_remuxer_pop (r2, &piece));
    g_assert_cmpuint (alv_matroska_remuxer_get_dropped (r2), ==, 18);
  }
}

/* A Cluster bigger than the remuxer holds goes out as it comes, with a
 * size of "unknown"; cut short, it simply ends where the next item's first
 * Cluster starts. */
static void
test_big_cluster (void)
{
  g_autoptr(GByteArray) file = handmade_header ();
  g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();
  /* a SimpleBlock of 0x120000 bytes: track 1, timecode 0, keyframe */
  static const guint8 big_head[] = { 0xA3, 0x10, 0x12, 0x00, 0x00, 0x81, 0x00, 0x00, 0x80 };
  gsize big = 0x120000 - 4, hlen = file->len, cut;
  Remuxed out;
  AlvMatroskaInfo info;
  AlvMatroskaCluster c;

  put_id (file, ALV_MATROSKA_ID_CLUSTER);
  g_byte_array_append (file, (const guint8 *) "\x10\x12\x00\x09", 4); /* 0x120009 */
  put_uint (file, 0xE7, 0);
  g_byte_array_append (file, big_head, sizeof big_head);
  g_byte_array_set_size (file, file->len + (guint) big);
  memset (file->data + file->len - big, 0x55, big);
  g_assert_cmpuint (file->len - hlen, ==, 4 + 4 + 0x120009);
  handmade_cluster (file, 80, FALSE);

  remuxed_init (&out);
  cut = file->len - 10;         /* within the last Cluster (31 bytes) */
  alv_matroska_remuxer_begin_item (remuxer);
  alv_matroska_remuxer_push (remuxer, file->data, hlen + 200000);
  drain (remuxer, &out);
  /* nothing of the big Cluster yet: it is held */
  g_assert_cmpuint (out.timecodes->len, ==, 0);
  alv_matroska_remuxer_push (remuxer, file->data + hlen + 200000, cut - hlen - 200000);
  drain (remuxer, &out);
  g_assert_cmpuint (out.timecodes->len, ==, 1);
  alv_matroska_remuxer_begin_item (remuxer);
  alv_matroska_remuxer_push (remuxer, file->data, file->len);
  alv_matroska_remuxer_begin_item (remuxer);
  drain (remuxer, &out);

  /* the big one twice, of unknown size; the small one once (cut short the
   * first time) */
  g_assert_cmpuint (out.timecodes->len, ==, 3);
  g_assert_cmpint (alv_matroska_parse_info (out.stream->data, out.stream->len, &info), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpint (alv_matroska_cluster_parse (out.stream->data + info.header_length,
                                               out.stream->len - info.header_length, &info, &c), ==,
                   ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (c.size, ==, G_MAXUINT64);
  g_assert_true (c.keyframe);
  g_assert_cmpuint (out.stream->len, ==, info.header_length + 2 * (22 + 5 + 0x120000) + (22 + 22));
  remuxed_clear (&out);
}

/* A Cluster of unknown size with an 8-byte @timecode: a keyframe of the
 * video track, then an audio block 32767 ticks after the Cluster's start. */
static void
huge_cluster (GByteArray *b,
              guint64     timecode)
{
  static const guint8 video[] = { 0x81, 0x00, 0x00, 0x80, 'v' };
  static const guint8 audio[] = { 0x82, 0x7f, 0xff, 0x80, 'a' };
  guint8 tc[8];

  for (guint i = 0; i < 8; i++)
    tc[i] = (guint8) (timecode >> (8 * (7 - i)));
  put_id (b, ALV_MATROSKA_ID_CLUSTER);
  g_byte_array_append (b, (const guint8 *) "\xff", 1);
  put_element (b, 0xE7, tc, sizeof tc);
  put_element (b, 0xA3, video, sizeof video);
  put_element (b, 0xA3, audio, sizeof audio);
}

/* Timecodes beyond any real file (up to 2^64 - 1 ticks) are clamped: time
 * on the wire never runs backwards, within an item or across items, and no
 * sum overflows (UBSan would tell). */
static void
test_remux_huge_timecodes (void)
{
  g_autoptr(GByteArray) file = handmade_header ();
  Remuxed out;

  huge_cluster (file, G_GUINT64_CONSTANT (0x7ffffffffffffff0));
  huge_cluster (file, G_GUINT64_CONSTANT (0xfffffffffffffff0));
  huge_cluster (file, G_MAXUINT64);
  remux_twice (file, &out);
  g_assert_cmpuint (out.n_headers, ==, 1);
  g_assert_cmpuint (out.timecodes->len, ==, 6);
  for (guint i = 1; i < out.timecodes->len; i++)
    g_assert_cmpuint (g_array_index (out.timecodes, guint64, i), >=,
                      g_array_index (out.timecodes, guint64, i - 1));
  g_assert_cmpuint (g_array_index (out.timecodes, guint64, 0), >=, G_MAXINT64 / 8);
  g_assert_cmpuint (g_array_index (out.timecodes, guint64, 5), <=, G_MAXINT64);
  remuxed_clear (&out);
}

/* A Cluster of 2 million tiny elements pushed in one go goes through in
 * time linear in its size: consuming an element does not move the rest of
 * the push (which took minutes for these 4 MB). */
static void
test_remux_many_small_elements (void)
{
  g_autoptr(GByteArray) file = handmade_header ();
  g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();
  static const guint8 video[] = { 0x81, 0x00, 0x00, 0x80, 'v' };
  gsize voids_at, n_voids = 2000000;
  Remuxed out;
  AlvMatroskaInfo info;

  put_id (file, ALV_MATROSKA_ID_CLUSTER);
  g_byte_array_append (file, (const guint8 *) "\xff", 1);
  put_uint (file, 0xE7, 0);
  put_element (file, 0xA3, video, sizeof video);
  voids_at = file->len;
  g_byte_array_set_size (file, file->len + 2 * (guint) n_voids);
  for (gsize i = voids_at; i < file->len; i += 2)
    memcpy (file->data + i, "\xec\x80", 2);

  remuxed_init (&out);
  alv_matroska_remuxer_begin_item (remuxer);
  alv_matroska_remuxer_push (remuxer, file->data, file->len);
  alv_matroska_remuxer_begin_item (remuxer);
  drain (remuxer, &out);
  g_assert_cmpint (alv_matroska_parse_info (out.stream->data, out.stream->len, &info), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_cmpuint (out.timecodes->len, ==, 1);
  /* the Cluster's head is replaced, everything after it passes */
  g_assert_cmpuint (out.stream->len, ==, info.header_length + 22 + (file->len - voids_at) + 3 + sizeof video);
  g_assert_cmpmem (out.stream->data + out.stream->len - 2, 2, "\xec\x80", 2);
  /* the Cluster's ID, size and Timecode */
  g_assert_cmpuint (alv_matroska_remuxer_get_dropped (remuxer), ==, 4 + 1 + 4);
  remuxed_clear (&out);
}

/* Cluster IDs nested in what follows a Cluster ID, 300000 deep: in Voids
 * (a head that never reaches a block) or in audio blocks (a Cluster whose
 * video block never comes), then a byte no element starts with.  Each
 * such Cluster ID is walked only as far as the one before it was: finding
 * the real Cluster after them, by a keyframe lookup or by the remuxer
 * resynchronising, takes time linear in their size (it took hours). */
static void
test_nested_cluster_ids (void)
{
  static const guint8 fake_head[] = { 0x1f, 0x43, 0xb6, 0x75, 0xff, 0xe7, 0x81, 0x00 };
  AlvMatroskaInfo info;
  gsize n_fakes = 300000;

  for (guint pattern = 0; pattern < 2; pattern++)
    {
      g_autoptr(GByteArray) file = handmade_header ();
      g_autoptr(GByteArray) junk = g_byte_array_new ();
      g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();
      gsize real, off = 0;
      Remuxed out;

      g_assert_cmpint (alv_matroska_parse_info (file->data, file->len, &info), ==, ALV_MATROSKA_PARSE_NEED_MORE);
      /* a first Cluster, so that the remuxer has a stream to resync in */
      handmade_cluster (file, 0, FALSE);
      g_byte_array_append (file, (const guint8 *) "\x00", 1);
      if (pattern == 1)
        g_byte_array_append (file, fake_head, sizeof fake_head);
      for (gsize i = 0; i < n_fakes; i++)
        {
          if (pattern == 0)
            put_element (junk, 0xEC, fake_head, sizeof fake_head);
          else
            {
              guint8 block[4 + sizeof fake_head] = { 0x82, 0x00, 0x00, 0x80 };

              memcpy (block + 4, fake_head, sizeof fake_head);
              put_element (junk, 0xA3, block, sizeof block);
            }
        }
      g_byte_array_append (file, junk->data, junk->len);
      g_byte_array_append (file, (const guint8 *) "\x00", 1);
      real = file->len;
      handmade_cluster (file, 200, FALSE);

      g_assert_cmpint (alv_matroska_parse_info (file->data, file->len, &info), ==, ALV_MATROSKA_PARSE_OK);
      g_assert_cmpint (alv_matroska_find_keyframe (file->data + real - junk->len - 1, file->len - real + junk->len + 1,
                                                   &info, 300000, TRUE, &off), ==, ALV_MATROSKA_PARSE_OK);
      g_assert_cmpuint (off, ==, junk->len + 1);

      remuxed_init (&out);
      alv_matroska_remuxer_begin_item (remuxer);
      for (gsize pos = 0; pos < file->len; pos += 65536)
        {
          alv_matroska_remuxer_push (remuxer, file->data + pos, MIN (65536, file->len - pos));
          drain (remuxer, &out);
        }
      alv_matroska_remuxer_begin_item (remuxer);
      drain (remuxer, &out);
      /* the first Cluster, (for blocks) the Cluster they make, which is
       * no place to start, and the real one after the junk */
      g_assert_cmpuint (out.timecodes->len, ==, pattern == 0 ? 2 : 3);
      g_assert_false (pattern == 1 && g_array_index (out.keyframes, gboolean, 1));
      g_assert_true (g_array_index (out.keyframes, gboolean, out.keyframes->len - 1));
      g_assert_cmpuint (g_array_index (out.timecodes, guint64, out.timecodes->len - 1), >, 0);
      remuxed_clear (&out);
    }
}

int
main (int    argc,
      char **argv)
{
  gst_init (&argc, &argv);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/matroska/info", test_info);
  g_test_add_func ("/matroska/clusters", test_clusters);
  g_test_add_func ("/matroska/find-keyframe", test_find_keyframe);
  g_test_add_func ("/matroska/live-header", test_live_header);
  g_test_add_func ("/matroska/remux/two-items", test_remux_two_items);
  g_test_add_func ("/matroska/remux/join-mid-item", test_remux_join_mid_item);
  g_test_add_func ("/matroska/remux/incompatible", test_remux_incompatible);
  g_test_add_func ("/matroska/handmade", test_handmade);
  g_test_add_func ("/matroska/big-cluster", test_big_cluster);
  g_test_add_func ("/matroska/remux/huge-timecodes", test_remux_huge_timecodes);
  g_test_add_func ("/matroska/remux/many-small-elements", test_remux_many_small_elements);
  g_test_add_func ("/matroska/nested-cluster-ids", test_nested_cluster_ids);
  return g_test_run ();
}
