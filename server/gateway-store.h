/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's memory of what it has hashed: URL → URN, length, media
 * type and validators (GatewayEntry), and URN → hash tree.  With a state
 * directory every change is also written to disk, one file per URL and
 * per tree, each replaced atomically (g_file_set_contents) by a single
 * writer thread in the order the changes were made, so a gateway killed
 * at any moment restarts with a consistent state.  Loading happens once,
 * before the gateway listens; lookups are memory-only.  At most a given
 * number of URLs is kept, the least recently used making room (--max-urls).
 */
#pragma once

#include <glib.h>

#include "alv-hash-tree.h"

G_BEGIN_DECLS

/* One resolved URL. */
typedef struct
{
  char *url;
  char *urn;
  guint64 length;
  guint block_size;
  char *media_type;
  char *etag;                   /* origin validators (nullable) */
  char *last_modified;
  char *file_id;                /* docroot validator "size-mtime-inode" (nullable) */
  char *head;                   /* the head's facts, gateway-head.h (nullable) */
  gint64 checked;               /* real time (µs) of the last validation */
} GatewayEntry;

GatewayEntry *gateway_entry_copy (const GatewayEntry *entry);
void          gateway_entry_free (GatewayEntry *entry);

typedef struct _GatewayStore GatewayStore;

/* The default of --max-urls. */
#define GATEWAY_STORE_MAX_ENTRIES 10000

/* state_dir NULL: memory only.  Creates the directory, loads every entry
 * whose tree is present and consistent, and drops the rest; of more than
 * @max_entries (at least 1) it keeps those checked most recently. */
GatewayStore       *gateway_store_new        (const char         *state_dir,
                                              guint               max_entries,
                                              GError            **error);
void                gateway_store_free       (GatewayStore       *store);

/* A lookup makes @url the most recently used.  The entry is valid until
 * the next put. */
const GatewayEntry *gateway_store_lookup     (GatewayStore       *store,
                                              const char         *url);
AlvHashTree        *gateway_store_get_tree   (GatewayStore       *store,
                                              const char         *urn);
/* Records @entry (copied) with its @tree (ref'd; may be NULL when the
 * URN's tree is already known), as the most recently used, evicting the
 * least recently used URL when the store is full.  FALSE (nothing
 * recorded) when @tree is NULL and the URN's tree is not known: the URL
 * was evicted while it was being revalidated. */
gboolean            gateway_store_put        (GatewayStore       *store,
                                              const GatewayEntry *entry,
                                              AlvHashTree        *tree);
/* Keeps @tree (ref'd) in memory only: a tree learned from another
 * gateway, for /thex and /announce. */
void                gateway_store_add_tree   (GatewayStore       *store,
                                              const char         *urn,
                                              AlvHashTree        *tree);
/* Records a successful revalidation of @url at @checked. */
void                gateway_store_touch      (GatewayStore       *store,
                                              const char         *url,
                                              gint64              checked);
guint               gateway_store_get_n_entries (GatewayStore    *store);
guint               gateway_store_get_n_trees   (GatewayStore    *store);
guint               gateway_store_get_max_entries (GatewayStore  *store);
/* URLs evicted to make room, since the store was made */
guint64             gateway_store_get_n_evicted (GatewayStore    *store);

/* The record formats, also what goes to a shared store: an entry as a
 * key file, a tree with its length and block size (checked against the
 * URN when read back). */
GBytes             *gateway_entry_to_bytes   (const GatewayEntry *entry);
GatewayEntry       *gateway_entry_new_from_bytes (GBytes         *bytes,
                                              GError            **error);
GBytes             *gateway_tree_to_bytes    (AlvHashTree        *tree);
AlvHashTree        *gateway_tree_new_from_bytes (const char      *urn,
                                              GBytes             *bytes,
                                              GError            **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayEntry, gateway_entry_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayStore, gateway_store_free)

G_END_DECLS
