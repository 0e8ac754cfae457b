/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core's content cache (doc/core.md, doc/swarm.md): one entry per content URN
 * under a cache directory ($XDG_CACHE_HOME/alluvium/), holding a sparse data
 * file, the entry's serialized hash tree and a small state file recording
 * which blocks are held.  A block from a peer is stored only after it
 * matched the tree; origin data is trusted but checked too once the tree is
 * known.  The state file is replaced atomically and only after the data it
 * describes reached the disk, so after a crash or restart nothing
 * half-written is trusted, and every held block is verified again on load.
 * Whole entries are evicted least recently used first when the size limit
 * is reached, except pinned ones (being played or shared).  File names
 * come from the decoded URN root, never from URLs or peer input.
 *
 * Thread-safety: every function may be called from any thread; the
 * synchronous ones may block on disk I/O, so the main loop uses the _async
 * variants, which run in GTask threads.  Memory stays bounded by one block
 * (or one read) per operation in flight, whatever the content size.
 */
#pragma once

#include <gio/gio.h>

#include "alv-block-map.h"
#include "alv-hash-tree.h"
#include "alv-ranges.h"

G_BEGIN_DECLS

/**
 * ALV_BLOCK_STORE_MAX_READ:
 *
 * The largest span one read may ask for (4 MiB); read larger spans in
 * pieces.
 */
#define ALV_BLOCK_STORE_MAX_READ (4u * 1024 * 1024)

#define ALV_TYPE_BLOCK_STORE (alv_block_store_get_type ())
G_DECLARE_FINAL_TYPE (AlvBlockStore, alv_block_store, ALV, BLOCK_STORE, GObject)

/* Opening: creates @directory (0700) if needed, loads every entry's state,
 * re-verifies held blocks against stored trees and evicts down to
 * @size_limit (0: no limit).  Blocking: the _async variant runs it in a
 * thread. */
AlvBlockStore *alv_block_store_new              (const char          *directory,
                                                 guint64              size_limit,
                                                 GCancellable        *cancellable,
                                                 GError             **error);
void           alv_block_store_new_async        (const char          *directory,
                                                 guint64              size_limit,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
AlvBlockStore *alv_block_store_new_finish       (GAsyncResult        *result,
                                                 GError             **error);

const char    *alv_block_store_get_directory    (AlvBlockStore       *store);
guint64        alv_block_store_get_size_limit   (AlvBlockStore       *store);
void           alv_block_store_set_size_limit   (AlvBlockStore       *store,
                                                 guint64              size_limit);
guint64        alv_block_store_get_size         (AlvBlockStore       *store);
GStrv          alv_block_store_list_entries     (AlvBlockStore       *store);

/* Entries */
gboolean       alv_block_store_open_entry       (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 guint64              length,
                                                 guint                block_size,
                                                 GError             **error);
gboolean       alv_block_store_has_entry        (AlvBlockStore       *store,
                                                 const char          *urn);
gboolean       alv_block_store_get_entry_info   (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 guint64             *length,
                                                 guint               *block_size,
                                                 guint64             *n_blocks);
gboolean       alv_block_store_remove_entry     (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 GError             **error);
void           alv_block_store_pin              (AlvBlockStore       *store,
                                                 const char          *urn);
void           alv_block_store_unpin            (AlvBlockStore       *store,
                                                 const char          *urn);
gboolean       alv_block_store_is_pinned        (AlvBlockStore       *store,
                                                 const char          *urn);

/* Trees */
gboolean       alv_block_store_set_tree         (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 AlvHashTree         *tree,
                                                 GError             **error);
void           alv_block_store_set_tree_async   (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 AlvHashTree         *tree,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
gboolean       alv_block_store_set_tree_finish  (AlvBlockStore       *store,
                                                 GAsyncResult        *result,
                                                 GError             **error);
AlvHashTree   *alv_block_store_get_tree         (AlvBlockStore       *store,
                                                 const char          *urn);
gboolean       alv_block_store_has_tree         (AlvBlockStore       *store,
                                                 const char          *urn);

/* Writing blocks */
gboolean       alv_block_store_write_block      (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 guint64              index,
                                                 GBytes              *data,
                                                 GError             **error);
void           alv_block_store_write_block_async (AlvBlockStore      *store,
                                                 const char          *urn,
                                                 guint64              index,
                                                 GBytes              *data,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
gboolean       alv_block_store_write_block_finish (AlvBlockStore     *store,
                                                 GAsyncResult        *result,
                                                 GError             **error);
gboolean       alv_block_store_write_origin     (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 guint64              index,
                                                 GBytes              *data,
                                                 GError             **error);
void           alv_block_store_write_origin_async (AlvBlockStore     *store,
                                                 const char          *urn,
                                                 guint64              index,
                                                 GBytes              *data,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
gboolean       alv_block_store_write_origin_finish (AlvBlockStore    *store,
                                                 GAsyncResult        *result,
                                                 GError             **error);
gboolean       alv_block_store_flush            (AlvBlockStore       *store,
                                                 GError             **error);

/* Reading held data */
GBytes        *alv_block_store_read             (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 guint64              offset,
                                                 gsize                length,
                                                 GError             **error);
void           alv_block_store_read_async       (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 guint64              offset,
                                                 gsize                length,
                                                 GCancellable        *cancellable,
                                                 GAsyncReadyCallback  callback,
                                                 gpointer             user_data);
GBytes        *alv_block_store_read_finish      (AlvBlockStore       *store,
                                                 GAsyncResult        *result,
                                                 GError             **error);

/* What is held */
gboolean       alv_block_store_has_block        (AlvBlockStore       *store,
                                                 const char          *urn,
                                                 guint64              index);
AlvBlockMap   *alv_block_store_get_block_map    (AlvBlockStore       *store,
                                                 const char          *urn);
AlvRangeSet   *alv_block_store_get_ranges       (AlvBlockStore       *store,
                                                 const char          *urn);
gboolean       alv_block_store_is_complete      (AlvBlockStore       *store,
                                                 const char          *urn);

G_END_DECLS
