/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Matroska (and its WebM subset) for the local stream.  EBML is a tree of
 * elements, each an ID (1-4 bytes, length marker kept), a size (1-8 bytes,
 * marker removed; all ones means "unknown", allowed here for the Segment
 * and Clusters only) and a body.  A file is an EBML header and a Segment
 * whose children are Info, Tracks, Clusters (the media), SeekHead and Cues
 * (byte offsets into the file) and a few more.  Everything before the first
 * Cluster is the stream header; a listener can start on any Cluster whose
 * first block of the video track is a keyframe.
 *
 * The remuxer makes one live stream of many files, the way an Icecast 2.4
 * WebM mount looks to a player: the first file's header, rewritten (Segment
 * of unknown size; only the EBML header, Info without Duration and Tracks
 * kept), then the Clusters of every file.  A Cluster's head (its Timecode
 * and anything else before its first block) is replaced by a Timecode
 * shifted so that each file's first Cluster starts where the previous
 * file's last frame ended; blocks (whose timecodes are relative to their
 * Cluster) pass unchanged.  Later files' headers are dropped when their
 * tracks match the stream's; a file whose tracks differ starts a new
 * stream (a HEADER piece flagged new_stream), which the server cannot
 * splice onto the old one.  A Cluster goes out once it is complete (up to
 * HOLD_MAX bytes; a bigger one goes out as it comes, with a size of
 * "unknown"), so a file cut short leaves whole Clusters: its partial last
 * one is dropped, and no size on the wire promises bytes that never come.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-matroska.h"

#include <math.h>
#include <string.h>

#define ID_EBML_DOCTYPE 0x4282u
#define ID_SEEKHEAD 0x114D9B74u
#define ID_INFO 0x1549A966u
#define ID_TRACKS 0x1654AE6Bu
#define ID_CUES 0x1C53BB6Bu
#define ID_CHAPTERS 0x1043A770u
#define ID_TAGS 0x1254C367u
#define ID_ATTACHMENTS 0x1941A469u
#define ID_TIMECODE_SCALE 0x2AD7B1u
#define ID_DURATION 0x4489u
#define ID_CRC32 0xBFu
#define ID_VOID 0xECu
#define ID_TRACK_ENTRY 0xAEu
#define ID_TRACK_NUMBER 0xD7u
#define ID_TRACK_TYPE 0x83u
#define ID_CODEC_ID 0x86u
#define ID_CODEC_PRIVATE 0x63A2u
#define ID_VIDEO 0xE0u
#define ID_PIXEL_WIDTH 0xB0u
#define ID_PIXEL_HEIGHT 0xBAu
#define ID_AUDIO 0xE1u
#define ID_SAMPLING_FREQUENCY 0xB5u
#define ID_CHANNELS 0x9Fu
#define ID_TIMECODE 0xE7u
#define ID_POSITION 0xA7u
#define ID_PREV_SIZE 0xABu
#define ID_SIMPLE_BLOCK 0xA3u
#define ID_BLOCK_GROUP 0xA0u
#define ID_BLOCK 0xA1u
#define ID_REFERENCE_BLOCK 0xFBu
#define ID_ENCRYPTED_BLOCK 0xAFu

#define TRACK_TYPE_VIDEO 1
#define UNKNOWN_SIZE G_MAXUINT64
/* a Cluster's new head: ID, 8-byte size, Timecode with an 8-byte value */
#define CLUSTER_HEAD_SIZE (4 + 8 + 2 + 8)
/* whole blocks are passed on; a bigger one is refused as corrupt */
#define MAX_CHILD_SIZE (16 * 1024 * 1024)
/* children of a Cluster read to find its first video block (80 s of
 * 20 ms audio blocks) */
#define MAX_LOOKAHEAD_CHILDREN 4096
/* DATA pieces are gathered up to this size */
#define DATA_PIECE_SIZE 16384
/* a Cluster is held until complete up to this size (a GOP of 4 Mbit/s
 * video for 2 s), then goes out as it comes */
#define HOLD_MAX (1024 * 1024)
/* Cluster timecodes are taken up to this many ticks (ages at any scale):
 * a file's larger ones are clamped, so that shifting them, adding a
 * block's relative time and a track's step all stay within a gint64 */
#define MAX_TIMECODE (G_MAXINT64 / 4)

typedef struct
{
  guint32 id;
  guint64 size;      /* UNKNOWN_SIZE when unknown */
  gsize header;      /* bytes of ID and size */
} Element;

/* Reads a variable-length integer of at most @max_len bytes: the value
 * with its length marker when @keep_marker (IDs), else without (sizes and
 * track numbers).  @all_ones tells a size of "unknown". */
static AlvMatroskaParseResult
read_vint (const guint8 *p,
           gsize         len,
           guint         max_len,
           gboolean      keep_marker,
           guint64      *value,
           gsize        *vlen,
           gboolean     *all_ones)
{
  guint n = 1;
  guint64 v;
  gboolean ones;

  if (len == 0)
    return ALV_MATROSKA_PARSE_NEED_MORE;
  if (p[0] == 0)
    return ALV_MATROSKA_PARSE_INVALID;
  while (!(p[0] & (0x80 >> (n - 1))))
    n++;
  if (n > max_len)
    return ALV_MATROSKA_PARSE_INVALID;
  if (len < n)
    return ALV_MATROSKA_PARSE_NEED_MORE;
  v = keep_marker ? p[0] : (p[0] & (0xFFu >> n));
  ones = (p[0] & (0xFFu >> n)) == (0xFFu >> n);
  for (guint i = 1; i < n; i++)
    {
      v = (v << 8) | p[i];
      ones = ones && p[i] == 0xFF;
    }
  *value = v;
  *vlen = n;
  if (all_ones != NULL)
    *all_ones = ones;
  return ALV_MATROSKA_PARSE_OK;
}

static AlvMatroskaParseResult
element_parse (const guint8 *p,
               gsize         len,
               Element      *el)
{
  guint64 id, size;
  gsize id_len, size_len;
  gboolean unknown;
  AlvMatroskaParseResult r;

  r = read_vint (p, len, 4, TRUE, &id, &id_len, NULL);
  if (r != ALV_MATROSKA_PARSE_OK)
    return r;
  r = read_vint (p + id_len, len - id_len, 8, FALSE, &size, &size_len, &unknown);
  if (r != ALV_MATROSKA_PARSE_OK)
    return r;
  el->id = (guint32) id;
  el->size = unknown ? UNKNOWN_SIZE : size;
  el->header = id_len + size_len;
  return ALV_MATROSKA_PARSE_OK;
}

/* The whole element at @p within @len, or FALSE. */
static gboolean
element_whole (const guint8 *p,
               gsize         len,
               Element      *el)
{
  return element_parse (p, len, el) == ALV_MATROSKA_PARSE_OK && el->size != UNKNOWN_SIZE
         && el->size <= len - el->header;
}

static gboolean
read_uint (const guint8 *p,
           guint64       size,
           guint64      *value)
{
  guint64 v = 0;

  if (size > 8)
    return FALSE;
  for (guint i = 0; i < size; i++)
    v = (v << 8) | p[i];
  *value = v;
  return TRUE;
}

static gboolean
read_float (const guint8 *p,
            guint64       size,
            double       *value)
{
  guint64 bits;

  if (size == 0)
    {
      *value = 0;
      return TRUE;
    }
  if (size != 4 && size != 8)
    return FALSE;
  read_uint (p, size, &bits);
  if (size == 4)
    {
      union { guint32 u; float f; } u32 = { .u = (guint32) bits };

      *value = u32.f;
    }
  else
    {
      union { guint64 u; double d; } u64 = { .u = bits };

      *value = u64.d;
    }
  return isfinite (*value);
}

static gboolean
is_level1 (guint32 id)
{
  switch (id)
    {
    case ID_SEEKHEAD:
    case ID_INFO:
    case ID_TRACKS:
    case ID_CUES:
    case ID_CHAPTERS:
    case ID_TAGS:
    case ID_ATTACHMENTS:
    case ALV_MATROSKA_ID_CLUSTER:
    case ALV_MATROSKA_ID_EBML:
    case ALV_MATROSKA_ID_SEGMENT:
      return TRUE;
    default:
      return FALSE;
    }
}

/* ---- the stream header ------------------------------------------------- */

static gboolean
parse_track (const guint8     *data,
             gsize             start,
             gsize             end,
             AlvMatroskaTrack *track)
{
  memset (track, 0, sizeof *track);
  for (gsize pos = start; pos < end;)
    {
      Element el;
      const guint8 *body;

      if (!element_whole (data + pos, end - pos, &el))
        return FALSE;
      body = data + pos + el.header;
      switch (el.id)
        {
        case ID_TRACK_NUMBER:
          if (!read_uint (body, el.size, &track->number))
            return FALSE;
          break;
        case ID_TRACK_TYPE:
          if (!read_uint (body, el.size, &track->type))
            return FALSE;
          break;
        case ID_CODEC_ID:
          {
            gsize n = MIN ((gsize) el.size, sizeof track->codec_id - 1);

            memcpy (track->codec_id, body, n);
            track->codec_id[n] = '\0';
          }
          break;
        case ID_CODEC_PRIVATE:
          track->codec_private = pos + el.header;
          track->codec_private_size = (gsize) el.size;
          break;
        case ID_VIDEO:
        case ID_AUDIO:
          for (gsize sub = pos + el.header; sub < pos + el.header + el.size;)
            {
              Element s;
              const guint8 *sbody;
              gboolean ok = TRUE;

              if (!element_whole (data + sub, pos + el.header + (gsize) el.size - sub, &s))
                return FALSE;
              sbody = data + sub + s.header;
              if (s.id == ID_PIXEL_WIDTH && el.id == ID_VIDEO)
                ok = read_uint (sbody, s.size, &track->width);
              else if (s.id == ID_PIXEL_HEIGHT && el.id == ID_VIDEO)
                ok = read_uint (sbody, s.size, &track->height);
              else if (s.id == ID_CHANNELS && el.id == ID_AUDIO)
                ok = read_uint (sbody, s.size, &track->channels);
              else if (s.id == ID_SAMPLING_FREQUENCY && el.id == ID_AUDIO)
                ok = read_float (sbody, s.size, &track->rate);
              if (!ok)
                return FALSE;
              sub += s.header + (gsize) s.size;
            }
          break;
        default:
          break;
        }
      pos += el.header + (gsize) el.size;
    }
  return track->number > 0;
}

static gboolean
parse_tracks (const guint8    *data,
              gsize            start,
              gsize            end,
              AlvMatroskaInfo *info)
{
  for (gsize pos = start; pos < end;)
    {
      Element el;

      if (!element_whole (data + pos, end - pos, &el))
        return FALSE;
      if (el.id == ID_TRACK_ENTRY)
        {
          AlvMatroskaTrack *track;

          if (info->n_tracks == ALV_MATROSKA_MAX_TRACKS)
            return FALSE;
          track = &info->tracks[info->n_tracks];
          if (!parse_track (data, pos + el.header, pos + el.header + (gsize) el.size, track))
            return FALSE;
          for (guint i = 0; i < info->n_tracks; i++)
            if (info->tracks[i].number == track->number)
              return FALSE;
          info->n_tracks++;
        }
      pos += el.header + (gsize) el.size;
    }
  return TRUE;
}

static gboolean
parse_segment_info (const guint8    *data,
                    gsize            start,
                    gsize            end,
                    double          *duration,
                    AlvMatroskaInfo *info)
{
  for (gsize pos = start; pos < end;)
    {
      Element el;
      const guint8 *body;

      if (!element_whole (data + pos, end - pos, &el))
        return FALSE;
      body = data + pos + el.header;
      if (el.id == ID_TIMECODE_SCALE && !read_uint (body, el.size, &info->timecode_scale))
        return FALSE;
      if (el.id == ID_DURATION && !read_float (body, el.size, duration))
        return FALSE;
      pos += el.header + (gsize) el.size;
    }
  return TRUE;
}

/* The EBML header at @data: its size and whether the DocType is ours. */
static AlvMatroskaParseResult
parse_ebml_header (const guint8    *data,
                   gsize            len,
                   gsize           *length,
                   AlvMatroskaInfo *info)
{
  Element el;
  AlvMatroskaParseResult r = element_parse (data, len, &el);
  gboolean known = FALSE;

  if (r != ALV_MATROSKA_PARSE_OK)
    return r;
  if (el.id != ALV_MATROSKA_ID_EBML || el.size == UNKNOWN_SIZE || el.size > 4096)
    return ALV_MATROSKA_PARSE_INVALID;
  if (el.size > len - el.header)
    return ALV_MATROSKA_PARSE_NEED_MORE;
  for (gsize pos = el.header; pos < el.header + el.size;)
    {
      Element c;
      const char *body;

      if (!element_whole (data + pos, el.header + (gsize) el.size - pos, &c))
        return ALV_MATROSKA_PARSE_INVALID;
      body = (const char *) data + pos + c.header;
      if (c.id == ID_EBML_DOCTYPE)
        {
          gsize n = (gsize) c.size;

          /* strings may be padded with NULs */
          while (n > 0 && body[n - 1] == '\0')
            n--;
          if (n == 4 && memcmp (body, "webm", 4) == 0)
            known = info->doc_type_webm = TRUE;
          else if (n == 8 && memcmp (body, "matroska", 8) == 0)
            known = TRUE;
        }
      pos += c.header + (gsize) c.size;
    }
  if (!known)
    return ALV_MATROSKA_PARSE_INVALID;
  *length = el.header + (gsize) el.size;
  return ALV_MATROSKA_PARSE_OK;
}

/**
 * alv_matroska_parse_info:
 * @data: the first bytes of a Matroska file
 * @len: how many there are
 * @info: (out caller-allocates): what the stream header says
 *
 * Reads the stream header: the EBML header (DocType "webm" or "matroska"),
 * the Segment's start, and every Segment child up to the first Cluster,
 * which must all be whole within ALV_MATROSKA_MAX_HEADER bytes; from them
 * the timecode scale, the duration and the tracks (at least one).
 *
 * Returns: %ALV_MATROSKA_PARSE_OK, %ALV_MATROSKA_PARSE_NEED_MORE when @data
 *   could be the start of such a header, else %ALV_MATROSKA_PARSE_INVALID
 */
AlvMatroskaParseResult
alv_matroska_parse_info (const guint8    *data,
                         gsize            len,
                         AlvMatroskaInfo *info)
{
  AlvMatroskaParseResult r;
  Element seg;
  gsize pos = 0;
  double duration = 0;

  g_return_val_if_fail (data != NULL || len == 0, ALV_MATROSKA_PARSE_INVALID);
  g_return_val_if_fail (info != NULL, ALV_MATROSKA_PARSE_INVALID);

  memset (info, 0, sizeof *info);
  info->timecode_scale = 1000000;
  r = parse_ebml_header (data, len, &pos, info);
  if (r != ALV_MATROSKA_PARSE_OK)
    return r;
  r = element_parse (data + pos, len - pos, &seg);
  if (r != ALV_MATROSKA_PARSE_OK)
    return r;
  if (seg.id != ALV_MATROSKA_ID_SEGMENT)
    return ALV_MATROSKA_PARSE_INVALID;
  pos += seg.header;
  info->segment_data = pos;

  for (;;)
    {
      Element el;

      if (pos > ALV_MATROSKA_MAX_HEADER)
        return ALV_MATROSKA_PARSE_INVALID;
      r = element_parse (data + pos, len - pos, &el);
      if (r != ALV_MATROSKA_PARSE_OK)
        return r;
      if (el.id == ALV_MATROSKA_ID_CLUSTER)
        break;
      if (el.size == UNKNOWN_SIZE || el.size > ALV_MATROSKA_MAX_HEADER)
        return ALV_MATROSKA_PARSE_INVALID;
      if (el.size > len - pos - el.header)
        return pos + el.header + el.size > ALV_MATROSKA_MAX_HEADER
               ? ALV_MATROSKA_PARSE_INVALID : ALV_MATROSKA_PARSE_NEED_MORE;
      if (el.id == ID_INFO
          && !parse_segment_info (data, pos + el.header, pos + el.header + (gsize) el.size,
                                  &duration, info))
        return ALV_MATROSKA_PARSE_INVALID;
      if (el.id == ID_TRACKS
          && !parse_tracks (data, pos + el.header, pos + el.header + (gsize) el.size, info))
        return ALV_MATROSKA_PARSE_INVALID;
      pos += el.header + (gsize) el.size;
    }
  if (info->n_tracks == 0 || info->timecode_scale == 0 || info->timecode_scale > G_MAXUINT32)
    return ALV_MATROSKA_PARSE_INVALID;
  info->header_length = pos;
  for (guint i = 0; i < info->n_tracks && info->video_track == 0; i++)
    if (info->tracks[i].type == TRACK_TYPE_VIDEO)
      info->video_track = info->tracks[i].number;
  if (duration > 0 && duration * (double) info->timecode_scale / 1000.0 < (double) G_MAXINT64)
    info->duration_us = (guint64) (duration * (double) info->timecode_scale / 1000.0);
  return ALV_MATROSKA_PARSE_OK;
}

/**
 * alv_matroska_ticks_to_usec:
 * @info: a parsed stream header
 * @ticks: a timecode
 *
 * Returns: @ticks in microseconds, saturating
 */
guint64
alv_matroska_ticks_to_usec (const AlvMatroskaInfo *info,
                            guint64                ticks)
{
  g_return_val_if_fail (info != NULL, 0);

  /* the scale is at most G_MAXUINT32 ns: split to stay in range */
  if (ticks > G_MAXUINT64 / MAX (info->timecode_scale, 1))
    return G_MAXUINT64 / 1000;
  return ticks * info->timecode_scale / 1000;
}

/* Xiph-laced CodecPrivate (Vorbis, Theora): the three header packets.  The
 * comment packet (tags, vendor) does not matter to a decoder. */
static gboolean
xiph_split (const guint8 *p,
            gsize         len,
            gsize         offsets[3],
            gsize         sizes[3])
{
  gsize pos = 1, total = 0;

  if (len < 1 || p[0] != 2)
    return FALSE;
  for (guint i = 0; i < 2; i++)
    {
      sizes[i] = 0;
      do
        {
          if (pos >= len)
            return FALSE;
          sizes[i] += p[pos];
        }
      while (p[pos++] == 255);
      total += sizes[i];
    }
  if (total > len - pos)
    return FALSE;
  offsets[0] = pos;
  offsets[1] = pos + sizes[0];
  offsets[2] = pos + total;
  sizes[2] = len - offsets[2];
  return TRUE;
}

static gboolean
codec_private_equal (const AlvMatroskaTrack *a,
                     const guint8           *a_data,
                     const AlvMatroskaTrack *b,
                     const guint8           *b_data)
{
  const guint8 *pa = a_data + a->codec_private, *pb = b_data + b->codec_private;
  gsize oa[3], sa[3], ob[3], sb[3];

  if ((strcmp (a->codec_id, "A_VORBIS") == 0 || strcmp (a->codec_id, "V_THEORA") == 0)
      && xiph_split (pa, a->codec_private_size, oa, sa)
      && xiph_split (pb, b->codec_private_size, ob, sb))
    return sa[0] == sb[0] && memcmp (pa + oa[0], pb + ob[0], sa[0]) == 0
           && sa[2] == sb[2] && memcmp (pa + oa[2], pb + ob[2], sa[2]) == 0;
  return a->codec_private_size == b->codec_private_size
         && (a->codec_private_size == 0 || memcmp (pa, pb, a->codec_private_size) == 0);
}

/**
 * alv_matroska_compatible:
 * @a: a parsed stream header
 * @a_data: the bytes @a was parsed from
 * @b: another
 * @b_data: the bytes @b was parsed from
 *
 * Whether the Clusters of @b's file can follow @a's header: same timecode
 * scale and the same tracks (numbers, types, codecs, picture size, sample
 * rate and channels, and codec set-up data; for Vorbis and Theora the
 * comment header may differ).
 *
 * Returns: %TRUE if compatible
 */
gboolean
alv_matroska_compatible (const AlvMatroskaInfo *a,
                         const guint8          *a_data,
                         const AlvMatroskaInfo *b,
                         const guint8          *b_data)
{
  g_return_val_if_fail (a != NULL && a_data != NULL, FALSE);
  g_return_val_if_fail (b != NULL && b_data != NULL, FALSE);

  if (a->timecode_scale != b->timecode_scale || a->n_tracks != b->n_tracks)
    return FALSE;
  for (guint i = 0; i < a->n_tracks; i++)
    {
      const AlvMatroskaTrack *ta = &a->tracks[i], *tb = &b->tracks[i];

      if (ta->number != tb->number || ta->type != tb->type
          || strcmp (ta->codec_id, tb->codec_id) != 0
          || ta->width != tb->width || ta->height != tb->height
          || ta->channels != tb->channels || ta->rate != tb->rate
          || !codec_private_equal (ta, a_data, tb, b_data))
        return FALSE;
    }
  return TRUE;
}

static void
append_id (GByteArray *out,
           guint32     id)
{
  guint8 b[4];
  guint n = id > 0xFFFFFF ? 4 : id > 0xFFFF ? 3 : id > 0xFF ? 2 : 1;

  for (guint i = 0; i < n; i++)
    b[i] = (guint8) (id >> (8 * (n - 1 - i)));
  g_byte_array_append (out, b, n);
}

/* An 8-byte size; UNKNOWN_SIZE gives the "unknown" value. */
static void
append_size8 (GByteArray *out,
              guint64     size)
{
  guint8 b[8];

  if (size == UNKNOWN_SIZE)
    size = G_GUINT64_CONSTANT (0x00FFFFFFFFFFFFFF);
  b[0] = 0x01;
  for (guint i = 1; i < 8; i++)
    b[i] = (guint8) (size >> (8 * (7 - i)));
  g_byte_array_append (out, b, 8);
}

static void
append_uint8_element (GByteArray *out,
                      guint32     id,
                      guint64     value)
{
  guint8 b[9];

  append_id (out, id);
  b[0] = 0x88;
  for (guint i = 0; i < 8; i++)
    b[1 + i] = (guint8) (value >> (8 * (7 - i)));
  g_byte_array_append (out, b, 9);
}

/**
 * alv_matroska_live_header:
 * @data: the bytes @info was parsed from
 * @info: a parsed stream header
 *
 * The stream header for a live stream: the EBML header as it is, a Segment
 * of unknown size, the Info without its Duration (and CRC-32), the Tracks
 * as they are; SeekHead, Cues, Chapters, Tags, Attachments and Void, which
 * refer to the file, are left out.
 *
 * Returns: (transfer full): the header
 */
GBytes *
alv_matroska_live_header (const guint8          *data,
                          const AlvMatroskaInfo *info)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  AlvMatroskaInfo scratch;
  gsize seg_start = 0;

  g_return_val_if_fail (data != NULL && info != NULL, NULL);

  /* parsed before: the EBML header ends where the Segment starts */
  if (parse_ebml_header (data, info->segment_data, &seg_start, &scratch) != ALV_MATROSKA_PARSE_OK)
    g_return_val_if_reached (NULL);
  g_byte_array_append (out, data, (guint) seg_start);
  append_id (out, ALV_MATROSKA_ID_SEGMENT);
  append_size8 (out, UNKNOWN_SIZE);

  for (gsize pos = info->segment_data; pos < info->header_length;)
    {
      Element el;

      if (!element_whole (data + pos, info->header_length - pos, &el))
        g_return_val_if_reached (g_byte_array_free_to_bytes (g_steal_pointer (&out)));
      if (el.id == ID_TRACKS)
        g_byte_array_append (out, data + pos, (guint) (el.header + el.size));
      else if (el.id == ID_INFO)
        {
          g_autoptr(GByteArray) kept = g_byte_array_new ();

          for (gsize c = pos + el.header; c < pos + el.header + el.size;)
            {
              Element child;

              if (!element_whole (data + c, pos + el.header + (gsize) el.size - c, &child))
                break;
              if (child.id != ID_DURATION && child.id != ID_CRC32 && child.id != ID_VOID)
                g_byte_array_append (kept, data + c, (guint) (child.header + child.size));
              c += child.header + (gsize) child.size;
            }
          append_id (out, ID_INFO);
          append_size8 (out, kept->len);
          g_byte_array_append (out, kept->data, kept->len);
        }
      pos += el.header + (gsize) el.size;
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

/* ---- Clusters -------------------------------------------------------------- */

/* The track number and relative timecode of a (Simple)Block's body. */
static AlvMatroskaParseResult
block_header (const guint8 *p,
              gsize         len,
              guint64       size,
              guint64      *track,
              gint16       *timecode,
              guint8       *flags)
{
  gsize n;
  AlvMatroskaParseResult r = read_vint (p, MIN ((guint64) len, size), 8, FALSE, track, &n, NULL);

  if (r == ALV_MATROSKA_PARSE_NEED_MORE && size <= len)
    return ALV_MATROSKA_PARSE_INVALID;
  if (r != ALV_MATROSKA_PARSE_OK)
    return r;
  if (size < n + 3)
    return ALV_MATROSKA_PARSE_INVALID;
  if (len < n + 3)
    return ALV_MATROSKA_PARSE_NEED_MORE;
  *timecode = (gint16) (((guint16) p[n] << 8) | p[n + 1]);
  *flags = p[n + 2];
  return ALV_MATROSKA_PARSE_OK;
}

/* A whole BlockGroup's body: its Block's track and timecode, and whether
 * it has a ReferenceBlock (is not a keyframe). */
static gboolean
block_group_parse (const guint8 *p,
                   gsize         len,
                   guint64      *track,
                   gint16       *timecode,
                   gboolean     *referenced)
{
  gboolean have_block = FALSE;

  *referenced = FALSE;
  for (gsize pos = 0; pos < len;)
    {
      Element el;
      guint8 flags;

      if (!element_whole (p + pos, len - pos, &el))
        return FALSE;
      if (el.id == ID_BLOCK && !have_block)
        {
          if (block_header (p + pos + el.header, (gsize) el.size, el.size, track, timecode, &flags)
              != ALV_MATROSKA_PARSE_OK)
            return FALSE;
          have_block = TRUE;
        }
      else if (el.id == ID_REFERENCE_BLOCK)
        *referenced = TRUE;
      pos += el.header + (gsize) el.size;
    }
  return have_block;
}

static gboolean
is_block (guint32 id)
{
  return id == ID_SIMPLE_BLOCK || id == ID_BLOCK_GROUP || id == ID_ENCRYPTED_BLOCK;
}

/* alv_matroska_cluster_parse(), telling in @stop where its walk over the
 * Cluster's children stopped: the start of the child it decided on,
 * failed on or could not read whole (at most @len).  Whatever the result,
 * no Cluster starts between @data and @stop in a well-formed file, so a
 * search need not look there again. */
static AlvMatroskaParseResult
cluster_walk (const guint8          *data,
              gsize                  len,
              const AlvMatroskaInfo *info,
              AlvMatroskaCluster    *cluster,
              gsize                 *stop)
{
  Element el;
  AlvMatroskaParseResult r;
  guint64 end, pos;
  gboolean have_tc = FALSE, have_head = FALSE;
  guint n_children = 0;

  *stop = 0;
  r = element_parse (data, len, &el);
  if (r != ALV_MATROSKA_PARSE_OK)
    return r;
  if (el.id != ALV_MATROSKA_ID_CLUSTER)
    return ALV_MATROSKA_PARSE_INVALID;
  memset (cluster, 0, sizeof *cluster);
  cluster->size = el.size;
  cluster->header_length = el.header;
  end = el.size == UNKNOWN_SIZE ? UNKNOWN_SIZE : el.header + el.size;

  for (pos = el.header;;)
    {
      Element c;
      const guint8 *body;
      gboolean ended = pos >= end;

      if (pos <= len)
        *stop = (gsize) pos;
      if (!ended && (pos > ALV_MATROSKA_MAX_LOOKAHEAD || ++n_children > MAX_LOOKAHEAD_CHILDREN))
        {
          /* no video block near the start: not a place to start */
          if (!have_tc || !have_head)
            return ALV_MATROSKA_PARSE_INVALID;
          cluster->keyframe = FALSE;
          return ALV_MATROSKA_PARSE_OK;
        }
      if (!ended)
        {
          if (pos >= len)
            return ALV_MATROSKA_PARSE_NEED_MORE;
          r = element_parse (data + pos, len - (gsize) pos, &c);
          if (r != ALV_MATROSKA_PARSE_OK)
            return r;
          ended = end == UNKNOWN_SIZE && is_level1 (c.id);
        }
      if (ended)
        {
          if (!have_tc)
            return ALV_MATROSKA_PARSE_INVALID;
          if (!have_head)
            cluster->head_length = (gsize) MIN (pos, end);
          cluster->keyframe = info->video_track == 0 && have_head;
          return ALV_MATROSKA_PARSE_OK;
        }
      if (c.size == UNKNOWN_SIZE || (end != UNKNOWN_SIZE && c.size > end - pos - c.header))
        return ALV_MATROSKA_PARSE_INVALID;
      /* the head (all before the first block) is read whole */
      if (!have_head && !is_block (c.id) && c.size > len - pos - c.header)
        return ALV_MATROSKA_PARSE_NEED_MORE;
      body = data + pos + c.header;
      if (c.id == ID_TIMECODE)
        {
          if (have_head || have_tc || c.size > 8)
            return ALV_MATROSKA_PARSE_INVALID;
          read_uint (body, c.size, &cluster->timecode);
          have_tc = TRUE;
        }
      else if (is_block (c.id))
        {
          guint64 track = 0;
          gint16 rel;
          guint8 flags;
          gboolean referenced;

          if (!have_tc)
            return ALV_MATROSKA_PARSE_INVALID;
          if (!have_head)
            cluster->head_length = (gsize) pos;
          have_head = TRUE;
          if (info->video_track == 0)
            {
              cluster->keyframe = TRUE;
              return ALV_MATROSKA_PARSE_OK;
            }
          if (c.id == ID_SIMPLE_BLOCK)
            {
              r = block_header (body, len - (gsize) pos - c.header, c.size, &track, &rel, &flags);
              if (r != ALV_MATROSKA_PARSE_OK)
                return r;
              if (track == info->video_track)
                {
                  cluster->keyframe = (flags & 0x80) != 0;
                  return ALV_MATROSKA_PARSE_OK;
                }
            }
          else if (c.id == ID_BLOCK_GROUP)
            {
              if (c.size > ALV_MATROSKA_MAX_LOOKAHEAD)
                {
                  cluster->keyframe = FALSE;
                  return ALV_MATROSKA_PARSE_OK;
                }
              if (c.size > len - pos - c.header)
                return ALV_MATROSKA_PARSE_NEED_MORE;
              if (!block_group_parse (body, (gsize) c.size, &track, &rel, &referenced))
                return ALV_MATROSKA_PARSE_INVALID;
              if (track == info->video_track)
                {
                  cluster->keyframe = !referenced;
                  return ALV_MATROSKA_PARSE_OK;
                }
            }
        }
      pos += c.header + c.size;
    }
}

/**
 * alv_matroska_cluster_parse:
 * @data: bytes that may start with a Cluster
 * @len: how many there are
 * @info: the stream header of the file
 * @cluster: (out caller-allocates): the Cluster's head on success
 *
 * Reads a Cluster's head: its Timecode (which must come before its first
 * block), where its first block starts, and whether a player can start on
 * it: its first block of the video track is a keyframe (a SimpleBlock with
 * the keyframe flag, a BlockGroup without ReferenceBlock); without a video
 * track, every Cluster qualifies.  A Cluster whose video block is not found
 * within ALV_MATROSKA_MAX_LOOKAHEAD bytes (and its first 4096 children)
 * does not.
 *
 * Returns: %ALV_MATROSKA_PARSE_OK, %ALV_MATROSKA_PARSE_NEED_MORE or
 *   %ALV_MATROSKA_PARSE_INVALID
 */
AlvMatroskaParseResult
alv_matroska_cluster_parse (const guint8          *data,
                            gsize                  len,
                            const AlvMatroskaInfo *info,
                            AlvMatroskaCluster    *cluster)
{
  gsize stop;

  g_return_val_if_fail (data != NULL || len == 0, ALV_MATROSKA_PARSE_INVALID);
  g_return_val_if_fail (info != NULL && cluster != NULL, ALV_MATROSKA_PARSE_INVALID);

  return cluster_walk (data, len, info, cluster, &stop);
}

/**
 * alv_matroska_find_keyframe:
 * @data: bytes from somewhere inside a file's Segment
 * @len: how many there are
 * @info: the file's stream header
 * @time_us: a time in the file
 * @at_end: @data goes on to the end of the file (no more will come)
 * @offset: (out): where the Cluster found starts in @data
 *
 * Finds where a player joining at @time_us starts: the last Cluster a
 * player can start on (alv_matroska_cluster_parse()) whose timecode is at
 * or before @time_us, once a later Cluster shows no closer one follows;
 * the first such Cluster when all in @data are later.  Cluster IDs inside
 * block data are skipped by walking from Cluster to Cluster by their sizes.
 *
 * Returns: %ALV_MATROSKA_PARSE_OK with @offset set, %ALV_MATROSKA_PARSE_NEED_MORE
 *   when more bytes could tell, %ALV_MATROSKA_PARSE_INVALID when @at_end
 *   and none is found
 */
AlvMatroskaParseResult
alv_matroska_find_keyframe (const guint8          *data,
                            gsize                  len,
                            const AlvMatroskaInfo *info,
                            guint64                time_us,
                            gboolean               at_end,
                            gsize                 *offset)
{
  static const guint8 magic[4] = { 0x1F, 0x43, 0xB6, 0x75 };
  gboolean have_best = FALSE;
  gsize best = 0, stop;
  guint64 pos = 0;

  g_return_val_if_fail (data != NULL || len == 0, ALV_MATROSKA_PARSE_INVALID);
  g_return_val_if_fail (info != NULL && offset != NULL, ALV_MATROSKA_PARSE_INVALID);

  while (pos + 4 <= len)
    {
      AlvMatroskaCluster c;
      AlvMatroskaParseResult r;
      guint64 t;

      if (memcmp (data + pos, magic, 4) != 0)
        {
          pos++;
          continue;
        }
      r = cluster_walk (data + pos, len - (gsize) pos, info, &c, &stop);
      if (r == ALV_MATROSKA_PARSE_NEED_MORE && !at_end)
        break;
      /* not a Cluster (Cluster IDs in block data, damage): go on from
       * where its walk stopped, so that no byte is walked twice */
      if (r != ALV_MATROSKA_PARSE_OK)
        {
          pos += MAX (stop, 1);
          continue;
        }
      t = alv_matroska_ticks_to_usec (info, c.timecode);
      if (t > time_us && (have_best || c.keyframe))
        {
          *offset = have_best ? best : (gsize) pos;
          return ALV_MATROSKA_PARSE_OK;
        }
      if (c.keyframe)
        {
          have_best = TRUE;
          best = (gsize) pos;
        }
      /* the next Cluster follows this one; past an unknown size, search
       * from the child it was decided on */
      pos += c.size == UNKNOWN_SIZE ? MAX (c.head_length, stop) : c.header_length + c.size;
    }
  if (at_end && have_best)
    {
      *offset = best;
      return ALV_MATROSKA_PARSE_OK;
    }
  return at_end ? ALV_MATROSKA_PARSE_INVALID : ALV_MATROSKA_PARSE_NEED_MORE;
}

/* ---- the remuxer --------------------------------------------------------- */

typedef enum
{
  REMUX_HEADER,   /* expecting a file's stream header */
  REMUX_SEGMENT,  /* between Segment children */
  REMUX_CLUSTER,  /* between a Cluster's children */
  REMUX_SKIP,     /* dropping an element (or the rest of a bad item) */
  REMUX_RESYNC,   /* looking for a Cluster or EBML header */
} RemuxState;

typedef struct
{
  GBytes *bytes;
  AlvMatroskaPiece piece;
} Out;

struct _AlvMatroskaRemuxer
{
  GByteArray *in;         /* input from in_pos on is not consumed yet */
  gsize in_pos;
  GQueue out;             /* Out* */
  GByteArray *data;       /* DATA bytes gathered for the next piece */
  RemuxState state;
  guint64 skip;           /* REMUX_SKIP: bytes left to drop */
  guint64 cluster_left;   /* REMUX_CLUSTER: bytes left, UNKNOWN_SIZE if unknown */
  guint64 dropped;

  gboolean have_stream;   /* a header went out */
  GBytes *stream_src;     /* the file header the stream's header was made of */
  AlvMatroskaInfo stream; /* ... and what it says */
  AlvMatroskaInfo item;   /* the current file's header */

  GByteArray *held;       /* the current Cluster while it is held */
  gboolean holding;
  AlvMatroskaPiece held_piece;
  gboolean saved_seen[ALV_MATROSKA_MAX_TRACKS]; /* timing before it */
  guint64 saved_last[ALV_MATROSKA_MAX_TRACKS];
  guint64 saved_step[ALV_MATROSKA_MAX_TRACKS];

  gboolean item_started;  /* the file's first Cluster went out */
  gint64 shift;           /* ticks added to the file's Cluster timecodes */
  guint64 cluster_tc;     /* the current Cluster's timecode on the wire, <= MAX_TIMECODE */
  gboolean have_end;
  guint64 end_tc;         /* where the next file's time starts */
  gboolean track_seen[ALV_MATROSKA_MAX_TRACKS];
  guint64 track_last[ALV_MATROSKA_MAX_TRACKS];
  guint64 track_step[ALV_MATROSKA_MAX_TRACKS];
};

/**
 * alv_matroska_remuxer_new:
 *
 * Returns: (transfer full): a remuxer waiting for a file's first bytes
 */
AlvMatroskaRemuxer *
alv_matroska_remuxer_new (void)
{
  AlvMatroskaRemuxer *r = g_new0 (AlvMatroskaRemuxer, 1);

  r->in = g_byte_array_new ();
  r->data = g_byte_array_new ();
  r->held = g_byte_array_new ();
  g_queue_init (&r->out);
  return r;
}

static void
out_free (Out *o)
{
  g_bytes_unref (o->bytes);
  g_free (o);
}

/**
 * alv_matroska_remuxer_reset:
 * @remuxer: a remuxer
 *
 * Forgets everything: the next bytes start a new stream.
 */
void
alv_matroska_remuxer_reset (AlvMatroskaRemuxer *remuxer)
{
  g_return_if_fail (remuxer != NULL);

  g_byte_array_set_size (remuxer->in, 0);
  remuxer->in_pos = 0;
  g_byte_array_set_size (remuxer->data, 0);
  g_byte_array_set_size (remuxer->held, 0);
  remuxer->holding = FALSE;
  g_queue_clear_full (&remuxer->out, (GDestroyNotify) out_free);
  g_clear_pointer (&remuxer->stream_src, g_bytes_unref);
  remuxer->state = REMUX_HEADER;
  remuxer->have_stream = FALSE;
  remuxer->item_started = FALSE;
  remuxer->have_end = FALSE;
  memset (remuxer->track_seen, 0, sizeof remuxer->track_seen);
}

void
alv_matroska_remuxer_free (AlvMatroskaRemuxer *remuxer)
{
  if (remuxer == NULL)
    return;
  alv_matroska_remuxer_reset (remuxer);
  g_byte_array_unref (remuxer->in);
  g_byte_array_unref (remuxer->data);
  g_byte_array_unref (remuxer->held);
  g_free (remuxer);
}

static void
flush_data (AlvMatroskaRemuxer *r)
{
  Out *o;

  if (r->data->len == 0)
    return;
  o = g_new0 (Out, 1);
  o->piece.kind = ALV_MATROSKA_PIECE_DATA;
  o->bytes = g_bytes_new (r->data->data, r->data->len);
  g_byte_array_set_size (r->data, 0);
  g_queue_push_tail (&r->out, o);
}

static void
emit (AlvMatroskaRemuxer     *r,
      GBytes                 *bytes,
      const AlvMatroskaPiece *piece)
{
  Out *o = g_new0 (Out, 1);

  flush_data (r);
  o->bytes = bytes;
  o->piece = *piece;
  g_queue_push_tail (&r->out, o);
}

static void
emit_data (AlvMatroskaRemuxer *r,
           const guint8       *p,
           gsize               n)
{
  while (n > 0)
    {
      gsize take = MIN (n, DATA_PIECE_SIZE - r->data->len);

      g_byte_array_append (r->data, p, (guint) take);
      p += take;
      n -= take;
      if (r->data->len >= DATA_PIECE_SIZE)
        flush_data (r);
    }
}

/* The input not consumed yet. */
static guint8 *
in_data (AlvMatroskaRemuxer *r)
{
  return r->in->data + r->in_pos;
}

static gsize
in_len (AlvMatroskaRemuxer *r)
{
  return r->in->len - r->in_pos;
}

/* Moves past @n bytes of input; they are removed from the buffer once per
 * push (alv_matroska_remuxer_push()), not once per element, which would
 * move the rest of a large push for every small element in it. */
static void
consume (AlvMatroskaRemuxer *r,
         gsize               n)
{
  r->in_pos += n;
  if (r->in_pos == r->in->len)
    {
      g_byte_array_set_size (r->in, 0);
      r->in_pos = 0;
    }
}

static void
drop (AlvMatroskaRemuxer *r,
      gsize               n)
{
  r->dropped += n;
  consume (r, n);
}

/* Where the file that just ended stops in time: each track's last block
 * plus the step between its last two blocks, the latest of them. */
static void
finish_timing (AlvMatroskaRemuxer *r)
{
  for (guint i = 0; i < ALV_MATROSKA_MAX_TRACKS; i++)
    {
      guint64 end;

      if (!r->track_seen[i])
        continue;
      end = r->track_last[i] + r->track_step[i];
      if (!r->have_end || end > r->end_tc)
        r->end_tc = end;
      r->have_end = TRUE;
    }
  memset (r->track_seen, 0, sizeof r->track_seen);
  r->item_started = FALSE;
}

static void
note_block (AlvMatroskaRemuxer *r,
            guint64             track,
            gint16              rel)
{
  gint64 t = (gint64) r->cluster_tc + rel;

  if (t < 0)
    t = 0;
  for (guint i = 0; i < r->stream.n_tracks; i++)
    {
      if (r->stream.tracks[i].number != track)
        continue;
      if (r->track_seen[i] && (guint64) t > r->track_last[i])
        r->track_step[i] = (guint64) t - r->track_last[i];
      if (!r->track_seen[i] || (guint64) t > r->track_last[i])
        r->track_last[i] = (guint64) t;
      r->track_seen[i] = TRUE;
      return;
    }
}

/* The held Cluster goes out: its head as a CLUSTER piece (with its size
 * now known, or "unknown" when @complete is not), the rest as DATA. */
static void
release_cluster (AlvMatroskaRemuxer *r,
                 gboolean            complete)
{
  GByteArray *size = g_byte_array_sized_new (8);

  if (!r->holding)
    return;
  r->holding = FALSE;
  append_size8 (size, complete ? r->held->len - 12 : UNKNOWN_SIZE);
  memcpy (r->held->data + 4, size->data, 8);
  g_byte_array_unref (size);
  emit (r, g_bytes_new (r->held->data, CLUSTER_HEAD_SIZE), &r->held_piece);
  emit_data (r, r->held->data + CLUSTER_HEAD_SIZE, r->held->len - CLUSTER_HEAD_SIZE);
  g_byte_array_set_size (r->held, 0);
}

/* The held Cluster is cut short or broken: none of it goes out, and the
 * time runs on from the last block that did. */
static void
drop_cluster (AlvMatroskaRemuxer *r)
{
  if (!r->holding)
    return;
  r->holding = FALSE;
  r->dropped += r->held->len;
  g_byte_array_set_size (r->held, 0);
  memcpy (r->track_seen, r->saved_seen, sizeof r->track_seen);
  memcpy (r->track_last, r->saved_last, sizeof r->track_last);
  memcpy (r->track_step, r->saved_step, sizeof r->track_step);
}

/* Bytes of the current Cluster: held, or out at once past HOLD_MAX. */
static void
cluster_data (AlvMatroskaRemuxer *r,
              const guint8       *p,
              gsize               n)
{
  if (!r->holding)
    {
      emit_data (r, p, n);
      return;
    }
  g_byte_array_append (r->held, p, (guint) n);
  if (r->held->len > HOLD_MAX)
    release_cluster (r, FALSE);
}

/**
 * alv_matroska_remuxer_begin_item:
 * @remuxer: a remuxer
 *
 * The next bytes are a new file's, from its start.  What is left of the
 * previous one is finished: a Cluster of unknown size ends there, one cut
 * short of its size is dropped (unless it already went out, being large).
 */
void
alv_matroska_remuxer_begin_item (AlvMatroskaRemuxer *remuxer)
{
  g_return_if_fail (remuxer != NULL);

  if (remuxer->state == REMUX_CLUSTER && remuxer->cluster_left == UNKNOWN_SIZE)
    release_cluster (remuxer, TRUE);
  drop_cluster (remuxer);
  flush_data (remuxer);
  remuxer->dropped += in_len (remuxer);
  g_byte_array_set_size (remuxer->in, 0);
  remuxer->in_pos = 0;
  finish_timing (remuxer);
  remuxer->state = REMUX_HEADER;
}

static gboolean
step_header (AlvMatroskaRemuxer *r)
{
  AlvMatroskaParseResult res = alv_matroska_parse_info (in_data (r), in_len (r), &r->item);
  const guint8 *src;

  if (res == ALV_MATROSKA_PARSE_NEED_MORE)
    return FALSE;
  if (res == ALV_MATROSKA_PARSE_INVALID)
    {
      g_debug ("not a Matroska stream header: the item is dropped");
      r->state = REMUX_SKIP;
      r->skip = UNKNOWN_SIZE;
      return TRUE;
    }
  src = r->stream_src != NULL ? g_bytes_get_data (r->stream_src, NULL) : NULL;
  if (!r->have_stream || !alv_matroska_compatible (&r->stream, src, &r->item, in_data (r)))
    {
      AlvMatroskaPiece piece = { .kind = ALV_MATROSKA_PIECE_HEADER, .new_stream = r->have_stream };

      emit (r, alv_matroska_live_header (in_data (r), &r->item), &piece);
      g_clear_pointer (&r->stream_src, g_bytes_unref);
      r->stream_src = g_bytes_new (in_data (r), r->item.header_length);
      r->stream = r->item;
      r->have_stream = TRUE;
      r->have_end = FALSE;
      memset (r->track_seen, 0, sizeof r->track_seen);
      consume (r, r->item.header_length);
    }
  else
    drop (r, r->item.header_length);
  r->item_started = FALSE;
  r->state = REMUX_SEGMENT;
  return TRUE;
}

static gboolean
step_cluster_start (AlvMatroskaRemuxer *r)
{
  AlvMatroskaCluster c;
  AlvMatroskaPiece piece = { .kind = ALV_MATROSKA_PIECE_CLUSTER };
  AlvMatroskaParseResult res = alv_matroska_cluster_parse (in_data (r), in_len (r), &r->item, &c);
  GByteArray *head;
  gint64 tc;
  guint64 file_tc;

  if (res == ALV_MATROSKA_PARSE_NEED_MORE)
    return FALSE;
  if (res == ALV_MATROSKA_PARSE_INVALID)
    {
      drop (r, 1);
      r->state = REMUX_RESYNC;
      return TRUE;
    }
  file_tc = MIN (c.timecode, (guint64) MAX_TIMECODE);
  if (!r->item_started)
    {
      /* end_tc <= 2 * (MAX_TIMECODE + G_MAXINT16): no overflow */
      r->shift = r->have_end ? (gint64) r->end_tc - (gint64) file_tc : 0;
      r->item_started = TRUE;
    }
  tc = (gint64) file_tc + r->shift;
  r->cluster_tc = (guint64) CLAMP (tc, 0, MAX_TIMECODE);
  r->cluster_left = c.size == UNKNOWN_SIZE ? UNKNOWN_SIZE
                    : c.size - (c.head_length - c.header_length);

  /* held until complete; its size is written then */
  head = r->held;
  g_byte_array_set_size (head, 0);
  append_id (head, ALV_MATROSKA_ID_CLUSTER);
  append_size8 (head, UNKNOWN_SIZE);
  append_uint8_element (head, ID_TIMECODE, r->cluster_tc);
  piece.keyframe = c.keyframe;
  piece.timecode = r->cluster_tc;
  r->held_piece = piece;
  r->holding = TRUE;
  memcpy (r->saved_seen, r->track_seen, sizeof r->track_seen);
  memcpy (r->saved_last, r->track_last, sizeof r->track_last);
  memcpy (r->saved_step, r->track_step, sizeof r->track_step);
  drop (r, c.head_length);
  r->state = REMUX_CLUSTER;
  return TRUE;
}

static gboolean
step_segment (AlvMatroskaRemuxer *r)
{
  Element el;
  AlvMatroskaParseResult res = element_parse (in_data (r), in_len (r), &el);

  if (res == ALV_MATROSKA_PARSE_NEED_MORE)
    return FALSE;
  if (res == ALV_MATROSKA_PARSE_INVALID)
    {
      drop (r, 1);
      r->state = REMUX_RESYNC;
      return TRUE;
    }
  if (el.id == ALV_MATROSKA_ID_CLUSTER)
    return step_cluster_start (r);
  if (el.id == ALV_MATROSKA_ID_EBML)
    {
      /* another file inside the item */
      finish_timing (r);
      r->state = REMUX_HEADER;
      return TRUE;
    }
  if (el.size == UNKNOWN_SIZE)
    {
      drop (r, 1);
      r->state = REMUX_RESYNC;
      return TRUE;
    }
  /* Cues, Tags, a SeekHead...: about the file, not the stream */
  r->skip = el.header + el.size;
  r->state = REMUX_SKIP;
  return TRUE;
}

static gboolean
step_cluster (AlvMatroskaRemuxer *r)
{
  Element el;
  AlvMatroskaParseResult res;
  gsize avail = in_len (r);
  guint64 whole;

  if (r->cluster_left == 0)
    {
      release_cluster (r, TRUE);
      r->state = REMUX_SEGMENT;
      return TRUE;
    }
  res = element_parse (in_data (r), avail, &el);
  if (res == ALV_MATROSKA_PARSE_NEED_MORE)
    return FALSE;
  if (res == ALV_MATROSKA_PARSE_OK && r->cluster_left == UNKNOWN_SIZE && is_level1 (el.id))
    {
      release_cluster (r, TRUE);
      r->state = REMUX_SEGMENT;
      return TRUE;
    }
  if (res == ALV_MATROSKA_PARSE_INVALID || el.size == UNKNOWN_SIZE || el.size > MAX_CHILD_SIZE
      || (r->cluster_left != UNKNOWN_SIZE && el.header + el.size > r->cluster_left))
    {
      /* broken: a Cluster of unknown size ends here, a held one is dropped */
      if (r->cluster_left == UNKNOWN_SIZE)
        release_cluster (r, TRUE);
      drop_cluster (r);
      drop (r, 1);
      r->state = REMUX_RESYNC;
      return TRUE;
    }
  whole = el.header + el.size;
  if (whole > avail)
    return FALSE; /* children go out whole */

  if (el.id == ID_SIMPLE_BLOCK || el.id == ID_BLOCK_GROUP)
    {
      const guint8 *body = in_data (r) + el.header;
      guint64 track;
      gint16 rel;
      guint8 flags;
      gboolean referenced;

      if (el.id == ID_SIMPLE_BLOCK
          ? block_header (body, (gsize) el.size, el.size, &track, &rel, &flags) == ALV_MATROSKA_PARSE_OK
          : block_group_parse (body, (gsize) el.size, &track, &rel, &referenced))
        note_block (r, track, rel);
    }
  if (el.id == ID_TIMECODE || el.id == ID_POSITION || el.id == ID_PREV_SIZE || el.id == ID_CRC32)
    {
      /* about the file or the unshifted time: made a Void of the same size */
      in_data (r)[0] = ID_VOID;
    }
  cluster_data (r, in_data (r), (gsize) whole);
  consume (r, (gsize) whole);
  if (r->cluster_left != UNKNOWN_SIZE)
    r->cluster_left -= whole;
  return TRUE;
}

static gboolean
step_resync (AlvMatroskaRemuxer *r)
{
  static const guint8 cluster[4] = { 0x1F, 0x43, 0xB6, 0x75 };
  static const guint8 ebml[4] = { 0x1A, 0x45, 0xDF, 0xA3 };
  const guint8 *d = in_data (r);
  gsize len = in_len (r);

  for (gsize i = 0, next = 1; i + 4 <= len; i = next, next = i + 1)
    {
      AlvMatroskaParseResult res;

      if (memcmp (d + i, cluster, 4) == 0)
        {
          AlvMatroskaCluster c;
          gsize stop;

          if (!r->have_stream)
            continue;
          /* as in alv_matroska_find_keyframe(), no byte walked twice */
          res = cluster_walk (d + i, len - i, &r->item, &c, &stop);
          next = i + MAX (stop, 1);
          if (res == ALV_MATROSKA_PARSE_INVALID)
            continue;
          drop (r, i);
          if (res == ALV_MATROSKA_PARSE_OK)
            r->state = REMUX_SEGMENT;
          return res == ALV_MATROSKA_PARSE_OK;
        }
      if (memcmp (d + i, ebml, 4) == 0)
        {
          AlvMatroskaInfo info;

          res = alv_matroska_parse_info (d + i, len - i, &info);
          if (res == ALV_MATROSKA_PARSE_INVALID)
            continue;
          drop (r, i);
          if (res == ALV_MATROSKA_PARSE_OK)
            {
              finish_timing (r);
              r->state = REMUX_HEADER;
            }
          return res == ALV_MATROSKA_PARSE_OK;
        }
    }
  if (len > 3)
    drop (r, len - 3);
  return FALSE;
}

/**
 * alv_matroska_remuxer_push:
 * @remuxer: a remuxer
 * @data: the next bytes of the current file
 * @len: how many
 *
 * Takes bytes of the current file; what they complete is ready for
 * alv_matroska_remuxer_pop().  Holds at most one block (or stream header,
 * or Cluster head with its look-ahead) of input at a time.
 */
void
alv_matroska_remuxer_push (AlvMatroskaRemuxer *remuxer,
                           const guint8       *data,
                           gsize               len)
{
  AlvMatroskaRemuxer *r = remuxer;
  gboolean progress = TRUE;

  g_return_if_fail (remuxer != NULL);
  g_return_if_fail (data != NULL || len == 0);

  if (r->state == REMUX_SKIP && r->skip == UNKNOWN_SIZE)
    {
      r->dropped += len;
      return;
    }
  if (r->in_pos > 0)
    {
      g_byte_array_remove_range (r->in, 0, (guint) r->in_pos);
      r->in_pos = 0;
    }
  g_byte_array_append (r->in, data, (guint) len);
  while (progress)
    {
      switch (r->state)
        {
        case REMUX_HEADER:
          progress = step_header (r);
          break;
        case REMUX_SEGMENT:
          progress = step_segment (r);
          break;
        case REMUX_CLUSTER:
          progress = step_cluster (r);
          break;
        case REMUX_RESYNC:
          progress = step_resync (r);
          break;
        case REMUX_SKIP:
        default:
          if (r->skip == UNKNOWN_SIZE)
            {
              drop (r, in_len (r));
              progress = FALSE;
              break;
            }
          {
            gsize n = (gsize) MIN (r->skip, (guint64) in_len (r));

            drop (r, n);
            r->skip -= n;
            progress = r->skip == 0;
            if (progress)
              r->state = REMUX_SEGMENT;
          }
          break;
        }
    }
}

/**
 * alv_matroska_remuxer_pop:
 * @remuxer: a remuxer
 * @piece: (out caller-allocates): what the bytes are
 *
 * Returns: (transfer full) (nullable): the next bytes of the live stream,
 *   or %NULL when nothing is ready
 */
GBytes *
alv_matroska_remuxer_pop (AlvMatroskaRemuxer *remuxer,
                          AlvMatroskaPiece   *piece)
{
  Out *o;
  GBytes *bytes;

  g_return_val_if_fail (remuxer != NULL && piece != NULL, NULL);

  if (g_queue_is_empty (&remuxer->out))
    flush_data (remuxer);
  o = g_queue_pop_head (&remuxer->out);
  if (o == NULL)
    return NULL;
  *piece = o->piece;
  bytes = g_steal_pointer (&o->bytes);
  g_free (o);
  return bytes;
}

/**
 * alv_matroska_remuxer_get_dropped:
 * @remuxer: a remuxer
 *
 * Returns: input bytes not passed on in any form so far (headers after the
 * first, Cues, replaced Cluster heads, unparseable bytes)
 */
guint64
alv_matroska_remuxer_get_dropped (AlvMatroskaRemuxer *remuxer)
{
  g_return_val_if_fail (remuxer != NULL, 0);
  return remuxer->dropped;
}
