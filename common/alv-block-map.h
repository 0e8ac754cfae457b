/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Block maps: which blocks of an item a peer holds (see alv-block-map.c),
 * and the geometry of blocks over an item's bytes.
 */
#pragma once

#include <glib-object.h>

#include "alv-ranges.h"

G_BEGIN_DECLS

/**
 * AlvBlockMap:
 *
 * A fixed-size bitfield: bit i is set when block i is held (verified).
 * Not thread-safe; copy it to share.
 */
typedef struct _AlvBlockMap AlvBlockMap;

#define ALV_TYPE_BLOCK_MAP (alv_block_map_get_type ())
GType            alv_block_map_get_type            (void) G_GNUC_CONST;

guint64          alv_block_count_for_length        (guint64            length,
                                                    guint32            block_size);
AlvRange         alv_block_get_range               (guint              index,
                                                    guint32            block_size,
                                                    guint64            length);

AlvBlockMap     *alv_block_map_new                 (guint              n_blocks);
AlvBlockMap     *alv_block_map_copy                (const AlvBlockMap *map);
void             alv_block_map_free                (AlvBlockMap       *map);
guint            alv_block_map_get_n_blocks        (const AlvBlockMap *map);
void             alv_block_map_set                 (AlvBlockMap       *map,
                                                    guint              index);
void             alv_block_map_clear               (AlvBlockMap       *map,
                                                    guint              index);
void             alv_block_map_set_all             (AlvBlockMap       *map);
gboolean         alv_block_map_get                 (const AlvBlockMap *map,
                                                    guint              index);
guint            alv_block_map_count               (const AlvBlockMap *map);
gboolean         alv_block_map_is_complete         (const AlvBlockMap *map);
gboolean         alv_block_map_equal               (const AlvBlockMap *a,
                                                    const AlvBlockMap *b);
guint            alv_block_map_first_missing_after (const AlvBlockMap *map,
                                                    guint              index);
guint            alv_block_map_first_set_after     (const AlvBlockMap *map,
                                                    guint              index);

AlvRangeSet     *alv_block_map_to_range_set        (const AlvBlockMap *map,
                                                    guint32            block_size,
                                                    guint64            length);
AlvBlockMap     *alv_block_map_new_from_range_set  (const AlvRangeSet *set,
                                                    guint32            block_size,
                                                    guint64            length);

gboolean         alv_block_map_pick_rarest         (const AlvBlockMap *have,
                                                    const guint       *availability,
                                                    const AlvBlockMap *candidate,
                                                    guint              from,
                                                    guint              to,
                                                    GRand             *tie_breaker,
                                                    guint             *index_out);

GBytes          *alv_block_map_to_bytes            (const AlvBlockMap *map);
AlvBlockMap     *alv_block_map_new_from_bytes      (GBytes            *bytes,
                                                    guint              n_blocks,
                                                    GError           **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvBlockMap, alv_block_map_free)

G_END_DECLS
