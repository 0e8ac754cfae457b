/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Content identity: the THEX Merkle hash tree over SHA-256 (doc/gateway-protocol.md),
 * its serialization (THEX, breadth-first from the root down to the block
 * layer), per-block verification and the `urn:tree:sha256:` URNs.  The tree
 * code is generic over the digest (#AlvDigest) so the tests can check it
 * against the published Tiger THEX vectors.  An #AlvTreeHasher builds a
 * tree incrementally in O(log n) memory plus one digest per block; an
 * #AlvHashTree is the immutable result, refcounted and safe to share
 * between threads.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * ALV_HASH_SIZE:
 *
 * Size in bytes of a SHA-256 digest, the hash of Alluvium's trees.
 */
#define ALV_HASH_SIZE 32

/**
 * ALV_HASH_MAX_DIGEST_SIZE:
 *
 * The largest digest size an #AlvDigest may have.
 */
#define ALV_HASH_MAX_DIGEST_SIZE 64

/**
 * ALV_HASH_TREE_LEAF_SIZE:
 *
 * Size in bytes of a THEX leaf segment.
 */
#define ALV_HASH_TREE_LEAF_SIZE 1024

/**
 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE:
 *
 * Default size in bytes of a block, the unit of transfer and verification:
 * half a second of a 128 kbit/s stream.  A block is passed on only once it
 * is whole and verified, so each listener a fresh block travels through
 * holds it back for the time its uplink takes to send a block; halving
 * the block (it was 16 KiB) took the simulated hard case from 12.7 to
 * 15.5 of 16 listeners without a stall (doc/swarm.md, "Blocks of 8 KiB").
 */
#define ALV_HASH_TREE_DEFAULT_BLOCK_SIZE 8192

/**
 * ALV_HASH_TREE_MAX_BLOCK_SIZE:
 *
 * Largest accepted block size (16 MiB).  Block sizes are powers of two
 * between %ALV_HASH_TREE_LEAF_SIZE and this.
 */
#define ALV_HASH_TREE_MAX_BLOCK_SIZE (16u * 1024 * 1024)

/**
 * ALV_HASH_TREE_MAX_LENGTH:
 *
 * Largest content length accepted from untrusted input by
 * alv_hash_tree_new_from_serialized() (16 TiB).
 */
#define ALV_HASH_TREE_MAX_LENGTH (G_GUINT64_CONSTANT (1) << 44)

/**
 * ALV_HASH_TREE_MAX_BLOCKS:
 *
 * Largest number of blocks accepted from untrusted input by
 * alv_hash_tree_new_from_serialized() (4 Mi blocks, 128 MiB of SHA-256
 * digests).
 */
#define ALV_HASH_TREE_MAX_BLOCKS (G_GUINT64_CONSTANT (1) << 22)

/**
 * AlvDigest:
 * @name: short name of the hash, e.g. "sha256"
 * @digest_size: size of a digest in bytes, at most %ALV_HASH_MAX_DIGEST_SIZE
 * @new: returns a new hashing context (never %NULL: like g_malloc(), it
 *   aborts if it cannot allocate)
 * @update: feeds @len bytes of @data into the context
 * @finish: writes the digest of everything fed since the last finish to
 *   @out (@digest_size bytes) and resets the context for reuse
 * @free: frees a context
 *
 * A hash function as a table of callbacks, so the tree code does not depend
 * on one library.  Contexts are reused across many nodes; an #AlvDigest
 * must outlive every hasher and tree that uses it (static storage in
 * practice).
 */
typedef struct _AlvDigest AlvDigest;
struct _AlvDigest
{
  const char *name;
  gsize digest_size;
  gpointer (*new) (const AlvDigest *digest);
  void (*update) (gpointer ctx, const void *data, gsize len);
  void (*finish) (gpointer ctx, guint8 *out);
  void (*free) (gpointer ctx);

  /*< private >*/
  gpointer padding[4];
};

const AlvDigest *alv_digest_sha256 (void);

/**
 * AlvHashTree:
 *
 * An immutable THEX tree of some content, kept down to its block layer:
 * the content length, the block size, one digest per block and the root.
 * Refcounted; safe to share between threads.
 */
typedef struct _AlvHashTree AlvHashTree;

#define ALV_TYPE_HASH_TREE (alv_hash_tree_get_type ())
GType alv_hash_tree_get_type (void) G_GNUC_CONST;

/**
 * AlvTreeHasher:
 *
 * Builds an #AlvHashTree from content fed in chunks of any size.
 */
typedef struct _AlvTreeHasher AlvTreeHasher;

gboolean        alv_hash_tree_block_size_is_valid (guint block_size);

AlvTreeHasher  *alv_tree_hasher_new               (guint            block_size);
AlvTreeHasher  *alv_tree_hasher_new_with_digest   (const AlvDigest *digest,
                                                   guint            block_size);
void            alv_tree_hasher_update            (AlvTreeHasher   *hasher,
                                                   const void      *data,
                                                   gsize            len);
guint64         alv_tree_hasher_get_length        (AlvTreeHasher   *hasher);
AlvHashTree    *alv_tree_hasher_finish            (AlvTreeHasher   *hasher);
void            alv_tree_hasher_free              (AlvTreeHasher   *hasher);

AlvHashTree    *alv_hash_tree_ref                 (AlvHashTree     *tree);
void            alv_hash_tree_unref               (AlvHashTree     *tree);

AlvHashTree    *alv_hash_tree_new_for_data        (const void      *data,
                                                   gsize            len,
                                                   guint            block_size);
AlvHashTree    *alv_hash_tree_new_for_data_with_digest (const AlvDigest *digest,
                                                   const void      *data,
                                                   gsize            len,
                                                   guint            block_size);

AlvHashTree    *alv_hash_tree_new_for_file        (const char      *path,
                                                   guint            block_size,
                                                   GCancellable    *cancellable,
                                                   GError         **error);
AlvHashTree    *alv_hash_tree_new_for_file_full   (const char      *path,
                                                   guint            block_size,
                                                   guint            n_threads,
                                                   GCancellable    *cancellable,
                                                   GError         **error);
void            alv_hash_tree_new_for_file_async  (const char      *path,
                                                   guint            block_size,
                                                   GCancellable    *cancellable,
                                                   GAsyncReadyCallback callback,
                                                   gpointer         user_data);
AlvHashTree    *alv_hash_tree_new_for_file_finish (GAsyncResult    *result,
                                                   GError         **error);

AlvHashTree    *alv_hash_tree_new_from_serialized (GBytes          *data,
                                                   guint64          length,
                                                   guint            block_size,
                                                   const guint8    *expected_root,
                                                   GError         **error);
AlvHashTree    *alv_hash_tree_new_from_serialized_with_digest (const AlvDigest *digest,
                                                   GBytes          *data,
                                                   guint64          length,
                                                   guint            block_size,
                                                   const guint8    *expected_root,
                                                   GError         **error);

const AlvDigest *alv_hash_tree_get_digest         (AlvHashTree     *tree);
gsize           alv_hash_tree_get_digest_size     (AlvHashTree     *tree);
guint64         alv_hash_tree_get_length          (AlvHashTree     *tree);
guint           alv_hash_tree_get_block_size      (AlvHashTree     *tree);
guint64         alv_hash_tree_get_n_blocks        (AlvHashTree     *tree);
const guint8   *alv_hash_tree_get_root            (AlvHashTree     *tree);
const guint8   *alv_hash_tree_get_block_hash      (AlvHashTree     *tree,
                                                   guint64          index);
gboolean        alv_hash_tree_get_block_range     (AlvHashTree     *tree,
                                                   guint64          index,
                                                   guint64         *offset,
                                                   guint64         *length);
gboolean        alv_hash_tree_equal               (AlvHashTree     *a,
                                                   AlvHashTree     *b);
char           *alv_hash_tree_get_urn             (AlvHashTree     *tree);
guint           alv_hash_tree_get_serialized_depth (AlvHashTree    *tree);
gsize           alv_hash_tree_get_serialized_size (AlvHashTree     *tree);
GBytes         *alv_hash_tree_serialize           (AlvHashTree     *tree);
gboolean        alv_hash_tree_verify_block        (AlvHashTree     *tree,
                                                   guint64          index,
                                                   const void      *data,
                                                   gsize            len,
                                                   GError         **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvTreeHasher, alv_tree_hasher_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvHashTree, alv_hash_tree_unref)

G_END_DECLS
