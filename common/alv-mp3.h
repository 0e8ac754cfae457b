/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * MPEG audio Layer III frame headers for the local stream (doc/local-stream.md):
 * parse a frame header (MPEG 1, 2 and 2.5), find a sync point (a frame
 * header confirmed by the next one), skip an ID3v2 tag, read the
 * Xing/Info header of a VBR or LAME file, and turn a time position into a
 * byte offset so the daemon can join an item mid-way.  Input is untrusted;
 * nothing here reads past the length it is given.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the longest Layer III frame: 144 * 320000 / 32000 + 1 (MPEG 1) */
#define ALV_MP3_MAX_FRAME_SIZE 1441

/**
 * AlvMp3Frame:
 * @version: 10 for MPEG 1, 20 for MPEG 2, 25 for MPEG 2.5
 * @bitrate: bits per second
 * @sample_rate: samples per second
 * @channels: 1 or 2
 * @padding: 1 if the frame carries a padding byte
 * @samples: samples per frame (1152 or 576)
 * @length: frame length in bytes, header included
 * @side_info: side information bytes after the 4-byte header
 */
typedef struct
{
  guint version;
  guint bitrate;
  guint sample_rate;
  guint channels;
  guint padding;
  guint samples;
  gsize length;
  gsize side_info;
} AlvMp3Frame;

/**
 * AlvMp3Info:
 * @first: the first frame of the audio
 * @audio_start: offset of the first frame (after any ID3v2 tag)
 * @n_frames: frame count from a Xing/Info header, 0 if unknown
 * @n_bytes: byte count from a Xing/Info header, 0 if unknown
 * @has_toc: @toc is valid
 * @toc: Xing seek table: toc[i] * @n_bytes / 256 is the offset of i % of the time
 * @xing: the first frame is a Xing/Info frame (carries no audio)
 * @header: the first frame's 4 header bytes, as in the file
 */
typedef struct
{
  AlvMp3Frame first;
  gsize audio_start;
  guint32 n_frames;
  guint32 n_bytes;
  gboolean has_toc;
  guint8 toc[100];
  gboolean xing;
  guint8 header[4];
} AlvMp3Info;

gboolean alv_mp3_frame_parse       (const guint8     *data,
                                    gsize             len,
                                    AlvMp3Frame      *frame);
gboolean alv_mp3_frames_compatible (const AlvMp3Frame *a,
                                    const AlvMp3Frame *b);
gboolean alv_mp3_find_sync         (const guint8     *data,
                                    gsize             len,
                                    gboolean          at_end,
                                    gsize            *offset);
gsize    alv_mp3_id3v2_size        (const guint8     *data,
                                    gsize             len);
gboolean alv_mp3_parse_info        (const guint8     *data,
                                    gsize             len,
                                    AlvMp3Info       *info,
                                    GError          **error);
char    *alv_mp3_info_to_string    (const AlvMp3Info *info);
gboolean alv_mp3_info_from_string  (const char       *text,
                                    AlvMp3Info       *info,
                                    GError          **error);
guint64  alv_mp3_duration_usec     (const AlvMp3Info *info,
                                    guint64           file_size);
guint64  alv_mp3_time_to_offset    (const AlvMp3Info *info,
                                    guint64           file_size,
                                    guint64           time_us);

G_END_DECLS
