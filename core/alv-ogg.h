/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Ogg page handling for the local stream (doc/local-stream.md): a page parser with
 * CRC check, an incremental scanner that cuts a pushed byte stream into
 * whole pages and tells header pages (BOS pages and the codec header packets
 * that follow them) from data pages, and the lookups the daemon needs to
 * join an item mid-way (stream info from the header pages, the first page
 * at or after a time position).  Everything here treats its input as
 * untrusted and works within fixed limits.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* 27-byte fixed header + 255 lacing values + 255 * 255 body bytes */
#define ALV_OGG_MAX_PAGE_SIZE (27 + 255 + 255 * 255)
/* logical streams tracked per chain link; more are refused as headers */
#define ALV_OGG_MAX_STREAMS 8

#define ALV_OGG_PAGE_CONTINUED 0x01
#define ALV_OGG_PAGE_BOS 0x02
#define ALV_OGG_PAGE_EOS 0x04

typedef enum
{
  ALV_OGG_CODEC_UNKNOWN,
  ALV_OGG_CODEC_VORBIS,
  ALV_OGG_CODEC_OPUS,
  ALV_OGG_CODEC_FLAC,
  ALV_OGG_CODEC_SPEEX,
  ALV_OGG_CODEC_THEORA,
} AlvOggCodec;

typedef enum
{
  ALV_OGG_PARSE_OK,        /* a whole page with a good CRC */
  ALV_OGG_PARSE_NEED_MORE, /* looks like a page, not all of it is there */
  ALV_OGG_PARSE_INVALID,   /* not a page here (bad magic, version, CRC) */
} AlvOggParseResult;

/**
 * AlvOggPage:
 * @flags: ALV_OGG_PAGE_CONTINUED, _BOS, _EOS
 * @granule: granule position, -1 when no packet ends on the page
 * @serial: the logical stream's serial number
 * @seqno: page sequence number
 * @length: whole page size (header, lacing values, body)
 * @header_length: 27 + number of lacing values
 * @n_packets: packets that end on this page
 * @is_header: (scanner only) a BOS page or one carrying codec headers
 * @new_link: (scanner only) the first page of a new chain link
 * @keyframe: (scanner only) a page of a Theora stream on which a keyframe
 *   packet begins: where a video player can start
 */
typedef struct
{
  guint8 flags;
  gint64 granule;
  guint32 serial;
  guint32 seqno;
  gsize length;
  gsize header_length;
  guint n_packets;
  gboolean is_header;
  gboolean new_link;
  gboolean keyframe;
} AlvOggPage;

/**
 * AlvOggInfo:
 * @codec: codec of the first audio stream of the link, or
 *   %ALV_OGG_CODEC_THEORA for a link of video alone
 * @serial: its serial number
 * @rate: granule positions per second (sample rate; 48000 for Opus; 0 for
 *   video alone, whose granule positions are not a sample count)
 * @preskip: granules to subtract before converting to time (Opus pre-skip)
 * @headers_length: bytes of header pages at the start of the link
 * @video_codec: %ALV_OGG_CODEC_THEORA when the link carries video, else
 *   %ALV_OGG_CODEC_UNKNOWN
 * @video_serial: the video stream's serial number
 */
typedef struct
{
  AlvOggCodec codec;
  guint32 serial;
  guint32 rate;
  guint32 preskip;
  gsize headers_length;
  AlvOggCodec video_codec;
  guint32 video_serial;
} AlvOggInfo;

guint32           alv_ogg_crc32           (const guint8 *data,
                                           gsize         len);
AlvOggParseResult alv_ogg_page_parse      (const guint8 *data,
                                           gsize         len,
                                           AlvOggPage   *page);
gboolean          alv_ogg_page_set_serial (guint8       *data,
                                           gsize         len,
                                           guint32       serial);
gboolean          alv_ogg_page_has_theora_keyframe (const guint8     *data,
                                                    const AlvOggPage *page);

typedef struct _AlvOggScanner AlvOggScanner;

AlvOggScanner *alv_ogg_scanner_new          (void);
void           alv_ogg_scanner_free         (AlvOggScanner *scanner);
void           alv_ogg_scanner_reset        (AlvOggScanner *scanner);
void           alv_ogg_scanner_push         (AlvOggScanner *scanner,
                                             const guint8  *data,
                                             gsize          len);
GBytes        *alv_ogg_scanner_pop_page     (AlvOggScanner *scanner,
                                             AlvOggPage    *page);
gboolean       alv_ogg_scanner_headers_done (AlvOggScanner *scanner);
gboolean       alv_ogg_scanner_has_video    (AlvOggScanner *scanner);
guint64        alv_ogg_scanner_get_skipped  (AlvOggScanner *scanner);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvOggScanner, alv_ogg_scanner_free)

gboolean alv_ogg_parse_info        (const guint8     *data,
                                    gsize             len,
                                    AlvOggInfo       *info,
                                    GError          **error);
gint64   alv_ogg_granule_to_usec   (const AlvOggInfo *info,
                                    gint64            granule);
gboolean alv_ogg_find_page_at_time (const guint8     *data,
                                    gsize             len,
                                    gsize             start,
                                    const AlvOggInfo *info,
                                    guint64           time_us,
                                    gsize            *offset,
                                    GError          **error);
gboolean alv_ogg_find_keyframe     (const guint8     *data,
                                    gsize             len,
                                    gsize             start,
                                    const AlvOggInfo *info,
                                    gsize            *offset,
                                    GError          **error);

G_END_DECLS
