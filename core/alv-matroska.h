/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Matroska / WebM for the local stream (doc/local-stream.md): a bounded EBML
 * parser that reads a file's stream header (everything before the first
 * Cluster: its timecode scale and tracks), reads the head of a Cluster (its
 * timecode and whether it starts with a keyframe of the video track) and
 * finds the keyframe Cluster at or before a time; and the remuxer that turns
 * the items of a station, one after the other, into one live Matroska
 * stream: a header fit for a live stream (Segment of unknown size, no
 * SeekHead, Cues or Duration), then every item's Clusters with their
 * timecodes shifted so that time runs on across items.  No I/O: bytes in,
 * bytes and decisions out.  Every input is untrusted; every length is
 * checked and every buffer bounded.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* tracks kept per file; a file with more is refused */
#define ALV_MATROSKA_MAX_TRACKS 16
/* the stream header (EBML header to the first Cluster) is at most this */
#define ALV_MATROSKA_MAX_HEADER (4 * 1024 * 1024)
/* bytes read past a Cluster's start to find its first video block */
#define ALV_MATROSKA_MAX_LOOKAHEAD (2 * 1024 * 1024)

#define ALV_MATROSKA_ID_EBML 0x1A45DFA3u
#define ALV_MATROSKA_ID_SEGMENT 0x18538067u
#define ALV_MATROSKA_ID_CLUSTER 0x1F43B675u

typedef enum
{
  ALV_MATROSKA_PARSE_OK,
  ALV_MATROSKA_PARSE_NEED_MORE, /* looks right so far, more bytes needed */
  ALV_MATROSKA_PARSE_INVALID,
} AlvMatroskaParseResult;

/**
 * AlvMatroskaTrack:
 * @number: TrackNumber, as blocks refer to it
 * @type: TrackType (1 video, 2 audio, 17 subtitle...)
 * @codec_id: CodecID, NUL-terminated, truncated to 31 bytes
 * @codec_private: offset of CodecPrivate's data in the parsed header
 * @codec_private_size: its size, 0 when absent
 * @width: PixelWidth of a video track
 * @height: PixelHeight of a video track
 * @channels: Channels of an audio track
 * @rate: SamplingFrequency of an audio track, in Hz
 */
typedef struct
{
  guint64 number;
  guint64 type;
  char codec_id[32];
  gsize codec_private;
  gsize codec_private_size;
  guint64 width;
  guint64 height;
  guint64 channels;
  double rate;
} AlvMatroskaTrack;

/**
 * AlvMatroskaInfo:
 * @header_length: bytes before the first Cluster (the stream header)
 * @segment_data: offset of the Segment's first child
 * @timecode_scale: nanoseconds per timecode tick (1000000 unless set)
 * @duration_us: the Info's Duration in microseconds, 0 when absent
 * @video_track: number of the first video track, 0 for none
 * @n_tracks: entries of @tracks
 * @tracks: the tracks
 * @doc_type_webm: the EBML DocType is "webm" (else "matroska")
 */
typedef struct
{
  gsize header_length;
  gsize segment_data;
  guint64 timecode_scale;
  guint64 duration_us;
  guint64 video_track;
  guint n_tracks;
  AlvMatroskaTrack tracks[ALV_MATROSKA_MAX_TRACKS];
  gboolean doc_type_webm;
} AlvMatroskaInfo;

/**
 * AlvMatroskaCluster:
 * @timecode: the Cluster's Timecode in ticks
 * @size: the Cluster's data size, G_MAXUINT64 when unknown
 * @header_length: bytes of the Cluster's ID and size
 * @head_length: bytes from the Cluster's start to its first block (the ID,
 *   size, Timecode and whatever else comes before the first block)
 * @keyframe: a player can start here: its first block of the video track
 *   is a keyframe, or the file has no video track
 */
typedef struct
{
  guint64 timecode;
  guint64 size;
  gsize header_length;
  gsize head_length;
  gboolean keyframe;
} AlvMatroskaCluster;

AlvMatroskaParseResult alv_matroska_parse_info     (const guint8          *data,
                                                    gsize                  len,
                                                    AlvMatroskaInfo       *info);
gboolean               alv_matroska_compatible     (const AlvMatroskaInfo *a,
                                                    const guint8          *a_data,
                                                    const AlvMatroskaInfo *b,
                                                    const guint8          *b_data);
GBytes                *alv_matroska_live_header    (const guint8          *data,
                                                    const AlvMatroskaInfo *info);
AlvMatroskaParseResult alv_matroska_cluster_parse  (const guint8          *data,
                                                    gsize                  len,
                                                    const AlvMatroskaInfo *info,
                                                    AlvMatroskaCluster    *cluster);
AlvMatroskaParseResult alv_matroska_find_keyframe  (const guint8          *data,
                                                    gsize                  len,
                                                    const AlvMatroskaInfo *info,
                                                    guint64                time_us,
                                                    gboolean               at_end,
                                                    gsize                 *offset);
guint64                alv_matroska_ticks_to_usec  (const AlvMatroskaInfo *info,
                                                    guint64                ticks);

typedef enum
{
  ALV_MATROSKA_PIECE_HEADER,  /* a stream header: every listener gets it first */
  ALV_MATROSKA_PIECE_CLUSTER, /* the start of a Cluster */
  ALV_MATROSKA_PIECE_DATA,    /* more of the current Cluster */
} AlvMatroskaPieceKind;

/**
 * AlvMatroskaPiece:
 * @kind: what the bytes are
 * @keyframe: (CLUSTER) a listener may start here
 * @new_stream: (HEADER) the header of a new stream whose tracks differ from
 *   the previous one's: the Clusters that follow cannot be spliced onto it
 * @timecode: (CLUSTER) the Cluster's timecode on the wire, in ticks
 */
typedef struct
{
  AlvMatroskaPieceKind kind;
  gboolean keyframe;
  gboolean new_stream;
  guint64 timecode;
} AlvMatroskaPiece;

typedef struct _AlvMatroskaRemuxer AlvMatroskaRemuxer;

AlvMatroskaRemuxer *alv_matroska_remuxer_new        (void);
void                alv_matroska_remuxer_free       (AlvMatroskaRemuxer *remuxer);
void                alv_matroska_remuxer_reset      (AlvMatroskaRemuxer *remuxer);
void                alv_matroska_remuxer_begin_item (AlvMatroskaRemuxer *remuxer);
void                alv_matroska_remuxer_push       (AlvMatroskaRemuxer *remuxer,
                                                     const guint8       *data,
                                                     gsize               len);
GBytes             *alv_matroska_remuxer_pop        (AlvMatroskaRemuxer *remuxer,
                                                     AlvMatroskaPiece   *piece);
guint64             alv_matroska_remuxer_get_dropped (AlvMatroskaRemuxer *remuxer);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvMatroskaRemuxer, alv_matroska_remuxer_free)

G_END_DECLS
