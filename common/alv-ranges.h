/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Byte ranges: the bookkeeping of which parts of an item a peer holds.
 * An #AlvRangeSet is a sorted, disjoint, coalesced set of half-open byte
 * spans with the usual set algebra (the bitfield of verified blocks is
 * alv-block-map.h's #AlvBlockMap).  Also here: the
 * HTTP byte-range headers of RFC 9110 §14 (`Range`, `Content-Range`) and
 * PFSP's `X-Available-Ranges`, parsed with limits from untrusted peers and
 * formatted for our own requests and answers.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * ALV_RANGES_MAX_OFFSET:
 *
 * The largest byte offset any parser accepts (2^63 - 1).  Every number in
 * a header above it is refused, so that `last + 1` and lengths never
 * overflow a #guint64.
 */
#define ALV_RANGES_MAX_OFFSET ((guint64) G_MAXINT64)

/**
 * ALV_RANGES_MAX_PARSE:
 *
 * The largest number of ranges accepted in one `X-Available-Ranges` header
 * (before coalescing).
 */
#define ALV_RANGES_MAX_PARSE 4096

/**
 * ALV_HTTP_RANGE_MAX:
 *
 * The largest number of range specs accepted in one HTTP `Range` header.
 */
#define ALV_HTTP_RANGE_MAX 16

/**
 * ALV_BLOCK_MAP_MAX_BLOCKS:
 *
 * The largest number of blocks of an #AlvBlockMap (2^24; a 2 MiB bitfield).
 */
#define ALV_BLOCK_MAP_MAX_BLOCKS (1u << 24)

/**
 * AlvRange:
 * @start: first byte of the span
 * @end: one past the last byte of the span (half-open: `[start, end)`)
 *
 * A span of bytes.  A range with @start == @end is empty.
 */
typedef struct
{
  guint64 start;
  guint64 end;
} AlvRange;

/* ------------------------------------------------------------------ */
/* AlvRangeSet                                                         */

/**
 * AlvRangeSet:
 *
 * A set of bytes, kept as sorted, disjoint, coalesced (no two ranges touch)
 * non-empty #AlvRange spans.  Not thread-safe; copy it to share.
 */
typedef struct _AlvRangeSet AlvRangeSet;

#define ALV_TYPE_RANGE_SET (alv_range_set_get_type ())
GType            alv_range_set_get_type            (void) G_GNUC_CONST;

AlvRangeSet     *alv_range_set_new                 (void);
AlvRangeSet     *alv_range_set_new_single          (guint64            start,
                                                    guint64            end);
AlvRangeSet     *alv_range_set_copy                (const AlvRangeSet *set);
void             alv_range_set_free                (AlvRangeSet       *set);
void             alv_range_set_clear               (AlvRangeSet       *set);

void             alv_range_set_add                 (AlvRangeSet       *set,
                                                    guint64            start,
                                                    guint64            end);
void             alv_range_set_remove              (AlvRangeSet       *set,
                                                    guint64            start,
                                                    guint64            end);
void             alv_range_set_add_set             (AlvRangeSet       *set,
                                                    const AlvRangeSet *other);
void             alv_range_set_subtract            (AlvRangeSet       *set,
                                                    const AlvRangeSet *other);
void             alv_range_set_intersect_with      (AlvRangeSet       *set,
                                                    const AlvRangeSet *other);
void             alv_range_set_clip                (AlvRangeSet       *set,
                                                    guint64            start,
                                                    guint64            end);

AlvRangeSet     *alv_range_set_union               (const AlvRangeSet *a,
                                                    const AlvRangeSet *b);
AlvRangeSet     *alv_range_set_difference          (const AlvRangeSet *a,
                                                    const AlvRangeSet *b);
AlvRangeSet     *alv_range_set_intersect           (const AlvRangeSet *a,
                                                    const AlvRangeSet *b);

gboolean         alv_range_set_contains            (const AlvRangeSet *set,
                                                    guint64            start,
                                                    guint64            end);
gboolean         alv_range_set_contains_offset     (const AlvRangeSet *set,
                                                    guint64            offset);
gboolean         alv_range_set_overlaps            (const AlvRangeSet *set,
                                                    guint64            start,
                                                    guint64            end);
gboolean         alv_range_set_get_covering        (const AlvRangeSet *set,
                                                    guint64            offset,
                                                    AlvRange          *range_out);
gboolean         alv_range_set_is_empty            (const AlvRangeSet *set);
guint            alv_range_set_get_n_ranges        (const AlvRangeSet *set);
AlvRange         alv_range_set_get_range           (const AlvRangeSet *set,
                                                    guint              index);
guint64          alv_range_set_total               (const AlvRangeSet *set);
guint64          alv_range_set_first_missing_after (const AlvRangeSet *set,
                                                    guint64            offset,
                                                    guint64            limit);
gboolean         alv_range_set_equal               (const AlvRangeSet *a,
                                                    const AlvRangeSet *b);

/* PFSP `X-Available-Ranges: bytes 0-10,20-30` (inclusive in the header).
 * Parsing coalesces and clips to [0, resource_length) when the length is
 * known (non-zero); format returns NULL for an empty set (omit the header). */
AlvRangeSet     *alv_range_set_parse_available     (const char        *header_value,
                                                    guint64            resource_length,
                                                    GError           **error);
char            *alv_range_set_format_available    (const AlvRangeSet *set);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvRangeSet, alv_range_set_free)

/* ------------------------------------------------------------------ */
/* HTTP Range / Content-Range (RFC 9110 §14)                           */
/*
 * Contract of alv_http_parse_range() (full docs in alv-ranges.c):
 *  - TRUE: *ranges_out holds >= 1 #AlvRange, resolved against the length,
 *    sorted and coalesced: answer 206 (one range: Content-Range).
 *  - FALSE with ALV_ERROR_INVALID: well-formed but unsatisfiable: answer 416
 *    with `Content-Range: bytes * /length` (alv_http_format_content_range
 *    (0, 0, length)).
 *  - FALSE with any other code (ALV_ERROR_PARSE, _LIMIT, _UNSUPPORTED):
 *    ignore the Range header and answer 200 with the whole body.
 * Content-Range: end is exclusive, total is G_MAXUINT64 for `/ *`;
 * `bytes * /N` (the 416 form) parses to start == end == 0, total N.
 * alv_http_format_range (start, G_MAXUINT64) gives the open form `bytes=start-`.
 */

gboolean         alv_http_parse_range              (const char        *header_value,
                                                    guint64            resource_length,
                                                    GArray           **ranges_out,
                                                    GError           **error);
char            *alv_http_format_range             (guint64            start,
                                                    guint64            end);
char            *alv_http_format_range_set         (const AlvRangeSet *set);
gboolean         alv_http_parse_content_range      (const char        *value,
                                                    guint64           *start,
                                                    guint64           *end,
                                                    guint64           *total,
                                                    GError           **error);
char            *alv_http_format_content_range     (guint64            start,
                                                    guint64            end,
                                                    guint64            total);

G_END_DECLS
