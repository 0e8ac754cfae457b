/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The THEX hash tree (doc/gateway-protocol.md).  Leaves are 1024-byte segments hashed as
 * H(0x00 ‖ segment), inner nodes H(0x01 ‖ left ‖ right), an odd node at the
 * end of a level is promoted unchanged and empty content hashes as H(0x00).
 * A block is a power-of-two run of leaves whose hash is the tree node above
 * them, so the block layer is an ordinary level of the tree and the root
 * follows from it alone.  Trees are therefore kept down to the block layer:
 * hashing streams leaves through a small stack (O(log n)), and files are
 * split at block boundaries between threads.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-hash-tree.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <inttypes.h>
#include <glib/gi18n-lib.h>
#include <gnutls/crypto.h>

#include "alv-error.h"
#include "alv-urn.h"

/* ---- SHA-256 through GnuTLS ------------------------------------------- */

static gpointer
sha256_new (G_GNUC_UNUSED const AlvDigest *digest)
{
  gnutls_hash_hd_t handle = NULL;
  int ret;

  ret = gnutls_hash_init (&handle, GNUTLS_DIG_SHA256);
  /* GnuTLS fails here only when out of memory; behave as g_malloc() */
  if (ret < 0)
    g_error ("gnutls_hash_init (SHA-256) failed: %s", gnutls_strerror (ret));
  return handle;
}

static void
sha256_update (gpointer ctx, const void *data, gsize len)
{
  gnutls_hash (ctx, data, len);
}

static void
sha256_finish (gpointer ctx, guint8 *out)
{
  /* gnutls_hash_output() also resets the handle for the next message */
  gnutls_hash_output (ctx, out);
}

static void
sha256_free (gpointer ctx)
{
  gnutls_hash_deinit (ctx, NULL);
}

static const AlvDigest sha256_digest = {
  "sha256", ALV_HASH_SIZE,
  sha256_new, sha256_update, sha256_finish, sha256_free,
  { NULL, }
};

/**
 * alv_digest_sha256:
 *
 * The SHA-256 digest of Alluvium's trees, computed by GnuTLS (which uses the
 * CPU's SHA extensions where present).
 *
 * Returns: (transfer none): a static #AlvDigest
 */
const AlvDigest *
alv_digest_sha256 (void)
{
  return &sha256_digest;
}

/* ---- node hashing ------------------------------------------------------ */

/* One reusable hashing context plus scratch space.  Not shared between
 * threads: each thread that hashes owns one. */
typedef struct
{
  const AlvDigest *digest;
  gpointer ctx;
  gsize ds;
  gboolean is_sha256;
  guint8 leaf_buf[1 + ALV_HASH_TREE_LEAF_SIZE];
} NodeHasher;

static void
node_hasher_init (NodeHasher *nh, const AlvDigest *digest)
{
  nh->digest = digest;
  nh->ctx = digest->new (digest);
  nh->ds = digest->digest_size;
  nh->is_sha256 = (digest == &sha256_digest);
  nh->leaf_buf[0] = 0x00;
}

static void
node_hasher_clear (NodeHasher *nh)
{
  if (nh->ctx != NULL)
    nh->digest->free (nh->ctx);
  nh->ctx = NULL;
}

/* out = H(0x00 ‖ seg); @len ≤ ALV_HASH_TREE_LEAF_SIZE */
static inline void
hash_leaf (NodeHasher *nh, const guint8 *seg, gsize len, guint8 *out)
{
  if (nh->is_sha256)
    {
      /* One update of a contiguous 1025-byte message is measurably faster
       * than two updates (the 1-byte prefix makes GnuTLS buffer and copy
       * the whole segment anyway) and this skips the vtable. */
      if (len > 0 && seg != nh->leaf_buf + 1)
        memcpy (nh->leaf_buf + 1, seg, len);
      gnutls_hash (nh->ctx, nh->leaf_buf, len + 1);
      gnutls_hash_output (nh->ctx, out);
      return;
    }

  nh->digest->update (nh->ctx, nh->leaf_buf, 1);
  if (len > 0)
    nh->digest->update (nh->ctx, seg, len);
  nh->digest->finish (nh->ctx, out);
}

/* out = H(0x01 ‖ left ‖ right); @out may alias @left or @right */
static inline void
hash_inner (NodeHasher *nh, const guint8 *left, const guint8 *right,
            guint8 *out)
{
  guint8 buf[1 + 2 * ALV_HASH_MAX_DIGEST_SIZE];
  gsize ds = nh->ds;

  buf[0] = 0x01;
  memcpy (buf + 1, left, ds);
  memcpy (buf + 1 + ds, right, ds);
  if (nh->is_sha256)
    {
      gnutls_hash (nh->ctx, buf, 1 + 2 * ds);
      gnutls_hash_output (nh->ctx, out);
      return;
    }
  nh->digest->update (nh->ctx, buf, 1 + 2 * ds);
  nh->digest->finish (nh->ctx, out);
}

/* A stack of perfect subtrees, largest (leftmost) at the bottom.  Pushing
 * nodes left to right and merging equal heights keeps it at most
 * log2(n) + 1 deep.  Collapsing it from the top at the end gives
 * H(perfect(2^k) ‖ rest) recursively, which is exactly what THEX's
 * level-by-level pairing with promotion of odd nodes yields. */
#define STACK_DEPTH 64

typedef struct
{
  guint n;
  guint8 height[STACK_DEPTH];
  guint8 node[STACK_DEPTH][ALV_HASH_MAX_DIGEST_SIZE];
} NodeStack;

/* The caller has written the new node into st->node[st->n] */
static inline void
stack_push_top (NodeHasher *nh, NodeStack *st)
{
  st->height[st->n] = 0;
  st->n++;
  while (st->n >= 2 && st->height[st->n - 1] == st->height[st->n - 2])
    {
      hash_inner (nh, st->node[st->n - 2], st->node[st->n - 1],
                  st->node[st->n - 2]);
      st->height[st->n - 2]++;
      st->n--;
    }
}

/* Requires st->n ≥ 1; leaves the stack empty */
static void
stack_collapse (NodeHasher *nh, NodeStack *st, guint8 *out)
{
  g_assert (st->n >= 1);
  while (st->n >= 2)
    {
      hash_inner (nh, st->node[st->n - 2], st->node[st->n - 1],
                  st->node[st->n - 2]);
      st->n--;
    }
  memcpy (out, st->node[0], nh->ds);
  st->n = 0;
}

/* The THEX root of @len bytes of content (H(0x00) when @len is 0). */
static void
span_root (NodeHasher *nh, const guint8 *data, gsize len, guint8 *out)
{
  NodeStack st;
  gsize off;

  if (len == 0)
    {
      hash_leaf (nh, NULL, 0, out);
      return;
    }

  st.n = 0;
  for (off = 0; off < len; off += ALV_HASH_TREE_LEAF_SIZE)
    {
      gsize n = MIN (ALV_HASH_TREE_LEAF_SIZE, len - off);

      hash_leaf (nh, data + off, n, st.node[st.n]);
      stack_push_top (nh, &st);
    }
  stack_collapse (nh, &st, out);
}

/* The THEX root over @n ≥ 1 nodes of one level. */
static void
layer_root (NodeHasher *nh, const guint8 *nodes, guint64 n, guint8 *out)
{
  NodeStack st;
  guint64 i;

  st.n = 0;
  for (i = 0; i < n; i++)
    {
      memcpy (st.node[st.n], nodes + i * nh->ds, nh->ds);
      stack_push_top (nh, &st);
    }
  stack_collapse (nh, &st, out);
}

/* Number of levels from a layer of @n ≥ 1 nodes up to the root, both
 * included, and the total number of nodes in them. */
static guint
count_levels (guint64 n, guint64 *total_nodes)
{
  guint levels = 1;
  guint64 total = n;

  while (n > 1)
    {
      n = (n + 1) / 2;
      total += n;
      levels++;
    }
  if (total_nodes != NULL)
    *total_nodes = total;
  return levels;
}

/* Writes the THEX serialization (root first, each level left to right, down
 * to and including the @n-node layer @bottom) into @out, which holds
 * count_levels() total nodes. */
static void
serialize_levels (NodeHasher *nh, const guint8 *bottom, guint64 n,
                  guint8 *out)
{
  guint64 total;
  gsize ds = nh->ds;
  guint8 *level;

  count_levels (n, &total);
  /* the bottom layer goes last; each parent level right before its child */
  level = out + (total - n) * ds;
  memmove (level, bottom, n * ds);
  while (n > 1)
    {
      guint64 parents = (n + 1) / 2;
      guint8 *up = level - parents * ds;
      guint64 i;

      for (i = 0; i < n / 2; i++)
        hash_inner (nh, level + 2 * i * ds, level + (2 * i + 1) * ds,
                    up + i * ds);
      if (n % 2 == 1)
        memcpy (up + (parents - 1) * ds, level + (n - 1) * ds, ds);
      level = up;
      n = parents;
    }
  g_assert (level == out);
}

/* ---- AlvHashTree ------------------------------------------------------- */

struct _AlvHashTree
{
  gatomicrefcount ref_count;
  const AlvDigest *digest;
  guint64 length;
  guint block_size;
  guint64 n_blocks;
  guint8 root[ALV_HASH_MAX_DIGEST_SIZE];
  guint8 *blocks;  /* n_blocks × digest_size */
};

G_DEFINE_BOXED_TYPE (AlvHashTree, alv_hash_tree,
                     alv_hash_tree_ref, alv_hash_tree_unref)

static guint64
blocks_for_length (guint64 length, guint block_size)
{
  if (length == 0)
    return 1;
  return (length - 1) / block_size + 1;
}

/* Takes @blocks; computes the root with @nh. */
static AlvHashTree *
hash_tree_new_take (NodeHasher *nh, guint64 length, guint block_size,
                    guint8 *blocks, guint64 n_blocks)
{
  AlvHashTree *tree = g_new0 (AlvHashTree, 1);

  g_atomic_ref_count_init (&tree->ref_count);
  tree->digest = nh->digest;
  tree->length = length;
  tree->block_size = block_size;
  tree->n_blocks = n_blocks;
  tree->blocks = blocks;
  layer_root (nh, blocks, n_blocks, tree->root);
  return tree;
}

/**
 * alv_hash_tree_block_size_is_valid:
 * @block_size: a block size in bytes
 *
 * Whether @block_size is a power of two between %ALV_HASH_TREE_LEAF_SIZE
 * and %ALV_HASH_TREE_MAX_BLOCK_SIZE.
 *
 * Returns: %TRUE if @block_size may be used for a tree
 */
gboolean
alv_hash_tree_block_size_is_valid (guint block_size)
{
  return block_size >= ALV_HASH_TREE_LEAF_SIZE &&
         block_size <= ALV_HASH_TREE_MAX_BLOCK_SIZE &&
         (block_size & (block_size - 1)) == 0;
}

/**
 * alv_hash_tree_ref:
 * @tree: an #AlvHashTree
 *
 * Takes a reference.
 *
 * Returns: (transfer full): @tree
 */
AlvHashTree *
alv_hash_tree_ref (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, NULL);
  g_atomic_ref_count_inc (&tree->ref_count);
  return tree;
}

/**
 * alv_hash_tree_unref:
 * @tree: (transfer full): an #AlvHashTree
 *
 * Drops a reference; frees the tree when it was the last.
 */
void
alv_hash_tree_unref (AlvHashTree *tree)
{
  g_return_if_fail (tree != NULL);
  if (!g_atomic_ref_count_dec (&tree->ref_count))
    return;
  g_free (tree->blocks);
  g_free (tree);
}

/**
 * alv_hash_tree_get_digest:
 * @tree: an #AlvHashTree
 *
 * Returns: (transfer none): the digest the tree was built with
 */
const AlvDigest *
alv_hash_tree_get_digest (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, NULL);
  return tree->digest;
}

/**
 * alv_hash_tree_get_digest_size:
 * @tree: an #AlvHashTree
 *
 * Returns: the size in bytes of each node (%ALV_HASH_SIZE for SHA-256)
 */
gsize
alv_hash_tree_get_digest_size (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, 0);
  return tree->digest->digest_size;
}

/**
 * alv_hash_tree_get_length:
 * @tree: an #AlvHashTree
 *
 * Returns: the length in bytes of the content
 */
guint64
alv_hash_tree_get_length (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, 0);
  return tree->length;
}

/**
 * alv_hash_tree_get_block_size:
 * @tree: an #AlvHashTree
 *
 * Returns: the block size in bytes
 */
guint
alv_hash_tree_get_block_size (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, 0);
  return tree->block_size;
}

/**
 * alv_hash_tree_get_n_blocks:
 * @tree: an #AlvHashTree
 *
 * The number of blocks: the length divided by the block size, rounded up,
 * and 1 for empty content (whose only block is empty).
 *
 * Returns: the number of blocks, at least 1
 */
guint64
alv_hash_tree_get_n_blocks (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, 0);
  return tree->n_blocks;
}

/**
 * alv_hash_tree_get_root:
 * @tree: an #AlvHashTree
 *
 * Returns: (transfer none) (array): the root, alv_hash_tree_get_digest_size()
 *   bytes, valid as long as @tree
 */
const guint8 *
alv_hash_tree_get_root (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, NULL);
  return tree->root;
}

/**
 * alv_hash_tree_get_block_hash:
 * @tree: an #AlvHashTree
 * @index: a block index, less than alv_hash_tree_get_n_blocks()
 *
 * The node of block @index: the root of the subtree of its leaves.
 *
 * Returns: (transfer none) (array) (nullable): the block's hash, or %NULL
 *   if @index is out of range
 */
const guint8 *
alv_hash_tree_get_block_hash (AlvHashTree *tree, guint64 index)
{
  g_return_val_if_fail (tree != NULL, NULL);
  if (index >= tree->n_blocks)
    return NULL;
  return tree->blocks + index * tree->digest->digest_size;
}

/**
 * alv_hash_tree_get_block_range:
 * @tree: an #AlvHashTree
 * @index: a block index
 * @offset: (out) (optional): where the block starts in the content
 * @length: (out) (optional): the block's length (the last one may be short;
 *   0 for the only block of empty content)
 *
 * The byte range of block @index.
 *
 * Returns: %FALSE if @index is out of range
 */
gboolean
alv_hash_tree_get_block_range (AlvHashTree *tree, guint64 index,
                               guint64 *offset, guint64 *length)
{
  guint64 start;

  g_return_val_if_fail (tree != NULL, FALSE);
  if (index >= tree->n_blocks)
    return FALSE;
  start = index * tree->block_size;
  if (offset != NULL)
    *offset = start;
  if (length != NULL)
    *length = MIN ((guint64) tree->block_size, tree->length - start);
  return TRUE;
}

/**
 * alv_hash_tree_equal:
 * @a: an #AlvHashTree
 * @b: an #AlvHashTree
 *
 * Whether two trees describe the same content the same way: same digest,
 * length, block size, block layer and root.
 *
 * Returns: %TRUE if equal
 */
gboolean
alv_hash_tree_equal (AlvHashTree *a, AlvHashTree *b)
{
  gsize ds;

  g_return_val_if_fail (a != NULL && b != NULL, FALSE);
  ds = a->digest->digest_size;
  return a->digest == b->digest &&
         a->length == b->length &&
         a->block_size == b->block_size &&
         a->n_blocks == b->n_blocks &&
         memcmp (a->root, b->root, ds) == 0 &&
         memcmp (a->blocks, b->blocks, a->n_blocks * ds) == 0;
}

/**
 * alv_hash_tree_get_urn:
 * @tree: an #AlvHashTree built with SHA-256
 *
 * The content URN, `urn:tree:sha256:` and the base32 root.
 *
 * Returns: (transfer full): the URN
 */
char *
alv_hash_tree_get_urn (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, NULL);
  g_return_val_if_fail (tree->digest->digest_size == ALV_HASH_SIZE, NULL);
  return alv_urn_format (tree->root);
}

/**
 * alv_hash_tree_get_serialized_depth:
 * @tree: an #AlvHashTree
 *
 * The number of levels alv_hash_tree_serialize() writes: from the root down
 * to the block layer, both included.
 *
 * Returns: the depth, at least 1
 */
guint
alv_hash_tree_get_serialized_depth (AlvHashTree *tree)
{
  g_return_val_if_fail (tree != NULL, 0);
  return count_levels (tree->n_blocks, NULL);
}

/**
 * alv_hash_tree_get_serialized_size:
 * @tree: an #AlvHashTree
 *
 * Returns: the size in bytes of alv_hash_tree_serialize()'s output
 */
gsize
alv_hash_tree_get_serialized_size (AlvHashTree *tree)
{
  guint64 total;

  g_return_val_if_fail (tree != NULL, 0);
  count_levels (tree->n_blocks, &total);
  return total * tree->digest->digest_size;
}

/**
 * alv_hash_tree_serialize:
 * @tree: an #AlvHashTree
 *
 * The THEX serialization of the tree: raw digests, breadth-first, root
 * first, each level left to right, down to and including the block layer
 * (alv_hash_tree_get_serialized_depth() levels).  An odd node promoted to
 * the next level appears in both.
 *
 * Returns: (transfer full): the serialized tree
 */
GBytes *
alv_hash_tree_serialize (AlvHashTree *tree)
{
  NodeHasher nh;
  guint8 *out;
  gsize size;

  g_return_val_if_fail (tree != NULL, NULL);

  size = alv_hash_tree_get_serialized_size (tree);
  out = g_malloc (size);
  node_hasher_init (&nh, tree->digest);
  serialize_levels (&nh, tree->blocks, tree->n_blocks, out);
  node_hasher_clear (&nh);
  return g_bytes_new_take (out, size);
}

/**
 * alv_hash_tree_new_from_serialized_with_digest:
 * @digest: the digest of the tree
 * @data: a serialized tree, as alv_hash_tree_serialize() writes it
 * @length: the length of the content it describes
 * @block_size: its block size
 * @expected_root: (nullable) (array): the root it must have (e.g. from the
 *   content URN), or %NULL
 * @error: return location for a #GError
 *
 * Like alv_hash_tree_new_from_serialized(), for any digest.
 *
 * Returns: (transfer full): the tree, or %NULL with @error set
 */
AlvHashTree *
alv_hash_tree_new_from_serialized_with_digest (const AlvDigest *digest,
                                               GBytes *data,
                                               guint64 length,
                                               guint block_size,
                                               const guint8 *expected_root,
                                               GError **error)
{
  NodeHasher nh;
  const guint8 *input;
  gsize input_size, ds;
  guint64 n_blocks, total;
  g_autofree guint8 *computed = NULL;
  guint8 *blocks;
  AlvHashTree *tree;

  g_return_val_if_fail (digest != NULL, NULL);
  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  ds = digest->digest_size;
  if (!alv_hash_tree_block_size_is_valid (block_size))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Invalid block size %u: it must be a power of two "
                     "from %u to %u bytes"),
                   block_size, (guint) ALV_HASH_TREE_LEAF_SIZE,
                   (guint) ALV_HASH_TREE_MAX_BLOCK_SIZE);
      return NULL;
    }
  if (length > ALV_HASH_TREE_MAX_LENGTH)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("Content length %" PRIu64 " exceeds the "
                     "limit of %" PRIu64 " bytes"),
                   length, ALV_HASH_TREE_MAX_LENGTH);
      return NULL;
    }
  n_blocks = blocks_for_length (length, block_size);
  if (n_blocks > ALV_HASH_TREE_MAX_BLOCKS)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("A tree of %" PRIu64 " blocks exceeds the "
                     "limit of %" PRIu64 " blocks"),
                   n_blocks, ALV_HASH_TREE_MAX_BLOCKS);
      return NULL;
    }

  /* both bounded above, so no overflow: ≤ 2^23 nodes × 64 bytes */
  count_levels (n_blocks, &total);
  input = g_bytes_get_data (data, &input_size);
  if (input_size != total * ds)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("Serialized tree has %zu bytes; "
                     "%" PRIu64 " bytes of content in blocks of "
                     "%u need %" PRIu64),
                   input_size, length, block_size, total * ds);
      return NULL;
    }

  /* recompute every node above the block layer and compare */
  computed = g_malloc (total * ds);
  node_hasher_init (&nh, digest);
  serialize_levels (&nh, input + (total - n_blocks) * ds, n_blocks,
                    computed);
  if (memcmp (computed, input, total * ds) != 0)
    {
      guint64 i = 0;
      guint level = 0, n_levels = count_levels (n_blocks, NULL);
      guint64 level_start = 0, level_n = 1;

      node_hasher_clear (&nh);
      while (memcmp (computed + i * ds, input + i * ds, ds) == 0)
        i++;
      /* find the level of node i: level sizes shrink towards the root */
      for (level = 0; level < n_levels; level++)
        {
          guint64 n = n_blocks;
          guint k;

          for (k = level + 1; k < n_levels; k++)
            n = (n + 1) / 2;
          level_n = n;
          if (i < level_start + level_n)
            break;
          level_start += level_n;
        }
      g_set_error (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                   _("Serialized tree is inconsistent: node %"
                     PRIu64 " of level %u (0 is the root) does "
                     "not match the nodes below it"),
                   i - level_start, level);
      return NULL;
    }
  if (expected_root != NULL && memcmp (computed, expected_root, ds) != 0)
    {
      node_hasher_clear (&nh);
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                           _("Serialized tree does not have the expected "
                             "root"));
      return NULL;
    }

  blocks = g_memdup2 (input + (total - n_blocks) * ds, n_blocks * ds);
  tree = hash_tree_new_take (&nh, length, block_size, blocks, n_blocks);
  node_hasher_clear (&nh);
  return tree;
}

/**
 * alv_hash_tree_new_from_serialized:
 * @data: a serialized SHA-256 tree, as alv_hash_tree_serialize() writes it
 * @length: the length of the content it describes
 * @block_size: its block size
 * @expected_root: (nullable) (array fixed-size=32): the root it must have
 *   (e.g. from the content URN), or %NULL
 * @error: return location for a #GError
 *
 * Loads a tree received from elsewhere.  @data is untrusted: it must be
 * exactly the size the serialization of @length bytes in blocks of
 * @block_size has, and every inner node and the root are recomputed from
 * its block layer and compared.  Errors: %ALV_ERROR_INVALID for a bad block
 * size, %ALV_ERROR_LIMIT for a length or block count over
 * %ALV_HASH_TREE_MAX_LENGTH or %ALV_HASH_TREE_MAX_BLOCKS, %ALV_ERROR_PARSE
 * for a wrong size, %ALV_ERROR_MISMATCH for inconsistent nodes or another
 * root than @expected_root.
 *
 * Returns: (transfer full): the tree, or %NULL with @error set
 */
AlvHashTree *
alv_hash_tree_new_from_serialized (GBytes *data,
                                   guint64 length,
                                   guint block_size,
                                   const guint8 *expected_root,
                                   GError **error)
{
  return alv_hash_tree_new_from_serialized_with_digest (&sha256_digest, data,
                                                        length, block_size,
                                                        expected_root, error);
}

/**
 * alv_hash_tree_verify_block:
 * @tree: an #AlvHashTree
 * @index: the block's index
 * @data: (array length=len): the block's content
 * @len: its length, which must be the block's (see
 *   alv_hash_tree_get_block_range())
 * @error: return location for a #GError
 *
 * Checks a block received from an untrusted source against the tree.
 * Safe to call from several threads on one tree.
 *
 * Returns: %TRUE if @data is block @index; otherwise %FALSE with @error set
 *   (%ALV_ERROR_INVALID for a bad index or length, %ALV_ERROR_MISMATCH for
 *   wrong content)
 */
gboolean
alv_hash_tree_verify_block (AlvHashTree *tree,
                            guint64 index,
                            const void *data,
                            gsize len,
                            GError **error)
{
  NodeHasher nh;
  guint8 digest[ALV_HASH_MAX_DIGEST_SIZE];
  guint64 expected_len;

  g_return_val_if_fail (tree != NULL, FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!alv_hash_tree_get_block_range (tree, index, NULL, &expected_len))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Block %" PRIu64 " is out of range: the "
                     "content has %" PRIu64 " blocks"),
                   index, tree->n_blocks);
      return FALSE;
    }
  if (len != expected_len)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Block %" PRIu64 " has %zu"
                     " bytes; expected %" PRIu64),
                   index, len, expected_len);
      return FALSE;
    }

  node_hasher_init (&nh, tree->digest);
  span_root (&nh, data, len, digest);
  node_hasher_clear (&nh);

  if (memcmp (digest, alv_hash_tree_get_block_hash (tree, index),
              tree->digest->digest_size) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                   _("Block %" PRIu64 " does not match its hash"),
                   index);
      return FALSE;
    }
  return TRUE;
}

/* ---- AlvTreeHasher ----------------------------------------------------- */

struct _AlvTreeHasher
{
  NodeHasher nh;
  guint block_size;
  guint leaves_per_block;
  guint leaves_in_block;
  guint64 length;
  gsize leaf_fill;      /* partial leaf, kept in nh.leaf_buf + 1 */
  NodeStack stack;      /* the current block's subtrees */
  GByteArray *blocks;   /* finished block hashes */
};

/**
 * alv_tree_hasher_new_with_digest:
 * @digest: the digest to build the tree with
 * @block_size: the block size, see alv_hash_tree_block_size_is_valid()
 *
 * A hasher for content of any digest (the tests use Tiger to check the
 * published THEX vectors).
 *
 * Returns: (transfer full): a new hasher
 */
AlvTreeHasher *
alv_tree_hasher_new_with_digest (const AlvDigest *digest, guint block_size)
{
  AlvTreeHasher *hasher;

  g_return_val_if_fail (digest != NULL, NULL);
  g_return_val_if_fail (digest->digest_size > 0 &&
                        digest->digest_size <= ALV_HASH_MAX_DIGEST_SIZE, NULL);
  g_return_val_if_fail (alv_hash_tree_block_size_is_valid (block_size), NULL);

  hasher = g_new0 (AlvTreeHasher, 1);
  node_hasher_init (&hasher->nh, digest);
  hasher->block_size = block_size;
  hasher->leaves_per_block = block_size / ALV_HASH_TREE_LEAF_SIZE;
  hasher->blocks = g_byte_array_new ();
  return hasher;
}

/**
 * alv_tree_hasher_new:
 * @block_size: the block size, see alv_hash_tree_block_size_is_valid()
 *
 * A SHA-256 tree hasher.  Feed it with alv_tree_hasher_update(), then call
 * alv_tree_hasher_finish().  It keeps O(log n) nodes plus one digest per
 * finished block.
 *
 * Returns: (transfer full): a new hasher
 */
AlvTreeHasher *
alv_tree_hasher_new (guint block_size)
{
  return alv_tree_hasher_new_with_digest (&sha256_digest, block_size);
}

static void
hasher_add_leaf (AlvTreeHasher *hasher, const guint8 *seg, gsize len)
{
  NodeStack *st = &hasher->stack;

  hash_leaf (&hasher->nh, seg, len, st->node[st->n]);
  stack_push_top (&hasher->nh, st);
  if (++hasher->leaves_in_block == hasher->leaves_per_block)
    {
      g_assert (st->n == 1);
      g_byte_array_append (hasher->blocks, st->node[0], hasher->nh.ds);
      st->n = 0;
      hasher->leaves_in_block = 0;
    }
}

/**
 * alv_tree_hasher_update:
 * @hasher: an #AlvTreeHasher
 * @data: (array length=len): the next bytes of content
 * @len: their number; chunks may have any size
 *
 * Feeds content to the hasher.
 */
void
alv_tree_hasher_update (AlvTreeHasher *hasher, const void *data, gsize len)
{
  const guint8 *p = data;

  g_return_if_fail (hasher != NULL);
  g_return_if_fail (data != NULL || len == 0);

  /* (NULL, 0) is allowed: return before any pointer arithmetic on it */
  if (len == 0)
    return;
  hasher->length += len;

  if (hasher->leaf_fill > 0)
    {
      gsize n = MIN (len, ALV_HASH_TREE_LEAF_SIZE - hasher->leaf_fill);

      memcpy (hasher->nh.leaf_buf + 1 + hasher->leaf_fill, p, n);
      hasher->leaf_fill += n;
      p += n;
      len -= n;
      /* a full leaf is final whatever follows: hash it now */
      if (hasher->leaf_fill < ALV_HASH_TREE_LEAF_SIZE)
        return;
      hasher_add_leaf (hasher, hasher->nh.leaf_buf + 1,
                       ALV_HASH_TREE_LEAF_SIZE);
      hasher->leaf_fill = 0;
    }

  while (len >= ALV_HASH_TREE_LEAF_SIZE)
    {
      hasher_add_leaf (hasher, p, ALV_HASH_TREE_LEAF_SIZE);
      p += ALV_HASH_TREE_LEAF_SIZE;
      len -= ALV_HASH_TREE_LEAF_SIZE;
    }

  if (len > 0)
    {
      memcpy (hasher->nh.leaf_buf + 1, p, len);
      hasher->leaf_fill = len;
    }
}

/**
 * alv_tree_hasher_get_length:
 * @hasher: an #AlvTreeHasher
 *
 * Returns: the number of bytes fed so far
 */
guint64
alv_tree_hasher_get_length (AlvTreeHasher *hasher)
{
  g_return_val_if_fail (hasher != NULL, 0);
  return hasher->length;
}

/**
 * alv_tree_hasher_finish:
 * @hasher: an #AlvTreeHasher
 *
 * Completes the tree of everything fed.  The hasher is left empty, ready
 * for new content.
 *
 * Returns: (transfer full): the tree
 */
AlvHashTree *
alv_tree_hasher_finish (AlvTreeHasher *hasher)
{
  NodeStack *st;
  guint8 *blocks;
  guint64 n_blocks;
  guint64 length;
  AlvHashTree *tree;

  g_return_val_if_fail (hasher != NULL, NULL);

  st = &hasher->stack;
  /* the final partial leaf, or the single empty leaf of empty content */
  if (hasher->leaf_fill > 0 || hasher->length == 0)
    hasher_add_leaf (hasher, hasher->nh.leaf_buf + 1, hasher->leaf_fill);
  if (st->n > 0)
    {
      guint8 node[ALV_HASH_MAX_DIGEST_SIZE];

      stack_collapse (&hasher->nh, st, node);
      g_byte_array_append (hasher->blocks, node, hasher->nh.ds);
    }

  n_blocks = hasher->blocks->len / hasher->nh.ds;
  length = hasher->length;
  g_assert (n_blocks == blocks_for_length (length, hasher->block_size));
  blocks = g_byte_array_free (g_steal_pointer (&hasher->blocks), FALSE);
  tree = hash_tree_new_take (&hasher->nh, length, hasher->block_size,
                             blocks, n_blocks);

  hasher->blocks = g_byte_array_new ();
  hasher->length = 0;
  hasher->leaf_fill = 0;
  hasher->leaves_in_block = 0;
  return tree;
}

/**
 * alv_tree_hasher_free:
 * @hasher: (transfer full): an #AlvTreeHasher
 *
 * Frees a hasher (finished or not).
 */
void
alv_tree_hasher_free (AlvTreeHasher *hasher)
{
  if (hasher == NULL)
    return;
  node_hasher_clear (&hasher->nh);
  g_byte_array_unref (hasher->blocks);
  g_free (hasher);
}

/**
 * alv_hash_tree_new_for_data_with_digest:
 * @digest: the digest to build the tree with
 * @data: (array length=len): the content
 * @len: its length
 * @block_size: the block size, see alv_hash_tree_block_size_is_valid()
 *
 * The tree of content in memory, for any digest.
 *
 * Returns: (transfer full): the tree
 */
AlvHashTree *
alv_hash_tree_new_for_data_with_digest (const AlvDigest *digest,
                                        const void *data,
                                        gsize len,
                                        guint block_size)
{
  g_autoptr(AlvTreeHasher) hasher = NULL;

  g_return_val_if_fail (data != NULL || len == 0, NULL);
  hasher = alv_tree_hasher_new_with_digest (digest, block_size);
  g_return_val_if_fail (hasher != NULL, NULL);
  alv_tree_hasher_update (hasher, data, len);
  return alv_tree_hasher_finish (hasher);
}

/**
 * alv_hash_tree_new_for_data:
 * @data: (array length=len): the content
 * @len: its length
 * @block_size: the block size, see alv_hash_tree_block_size_is_valid()
 *
 * The SHA-256 tree of content in memory.
 *
 * Returns: (transfer full): the tree
 */
AlvHashTree *
alv_hash_tree_new_for_data (const void *data, gsize len, guint block_size)
{
  return alv_hash_tree_new_for_data_with_digest (&sha256_digest, data, len,
                                                 block_size);
}

/* ---- files ------------------------------------------------------------- */

/* Hashing from files reads with pread() into a buffer that stays in the
 * CPU cache, rather than mmap(): a file truncated under a mapping would
 * kill the process with SIGBUS, and the copy costs little next to SHA-256.
 * Threads split the file at block boundaries; each fills its slice of the
 * shared block layer, and the root is computed from that layer once all
 * are done. */
#define FILE_READ_SIZE (512 * 1024)
#define FILE_MIN_BYTES_PER_THREAD (4 * 1024 * 1024)
#define FILE_MAX_THREADS 8

typedef struct
{
  int fd;
  const char *path;
  guint block_size;
  guint64 file_length;
  guint64 first_block;
  guint64 end_block;
  guint8 *blocks;          /* shared; this job writes [first, end) */
  GCancellable *cancellable;
  gint *failed;            /* shared: set when any job fails */
  GError *error;
} FileJob;

static gboolean
read_exactly (int fd, const char *path, guint8 *buf, gsize len,
              guint64 offset, GError **error)
{
  while (len > 0)
    {
      gssize n = pread (fd, buf, len, (off_t) offset);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;
          g_autofree char *display = g_filename_display_name (path);

          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       _("Could not read “%s”: %s"), display,
                       g_strerror (saved_errno));
          return FALSE;
        }
      if (n == 0)
        {
          g_autofree char *display = g_filename_display_name (path);

          g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED,
                       _("“%s” shrank while it was being hashed"), display);
          return FALSE;
        }
      buf += n;
      len -= n;
      offset += n;
    }
  return TRUE;
}

static gboolean
file_job_run (FileJob *job, GError **error)
{
  NodeHasher nh;
  gsize buf_size = MAX ((gsize) job->block_size, FILE_READ_SIZE);
  g_autofree guint8 *buf = NULL;
  guint64 offset = job->first_block * job->block_size;
  guint64 end = MIN (job->end_block * job->block_size, job->file_length);
  guint64 index = job->first_block;
  gboolean ok = TRUE;

  node_hasher_init (&nh, &sha256_digest);
  if (job->file_length == 0)
    {
      span_root (&nh, NULL, 0, job->blocks);
      node_hasher_clear (&nh);
      return TRUE;
    }

  buf = g_malloc (MIN ((guint64) buf_size, end - offset));
  while (offset < end)
    {
      gsize want = MIN ((guint64) buf_size, end - offset);
      gsize done;

      if (g_atomic_int_get (job->failed))
        break;  /* another job's error is reported */
      if (g_cancellable_set_error_if_cancelled (job->cancellable, error) ||
          !read_exactly (job->fd, job->path, buf, want, offset, error))
        {
          ok = FALSE;
          break;
        }
      for (done = 0; done < want; done += job->block_size)
        {
          gsize n = MIN ((gsize) job->block_size, want - done);

          span_root (&nh, buf + done, n, job->blocks + index * ALV_HASH_SIZE);
          index++;
        }
      offset += want;
    }
  node_hasher_clear (&nh);
  if (!ok)
    g_atomic_int_set (job->failed, 1);
  return ok;
}

static gpointer
file_job_thread (gpointer data)
{
  FileJob *job = data;

  file_job_run (job, &job->error);
  return NULL;
}

/**
 * alv_hash_tree_new_for_file_full:
 * @path: a regular file
 * @block_size: the block size, see alv_hash_tree_block_size_is_valid()
 * @n_threads: how many threads may hash at once; 0 for one per processor
 *   (at most 8)
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Like alv_hash_tree_new_for_file() with a chosen number of threads (the
 * benchmark compares one with several).  Blocking.
 *
 * Returns: (transfer full): the tree, or %NULL with @error set
 */
AlvHashTree *
alv_hash_tree_new_for_file_full (const char *path,
                                 guint block_size,
                                 guint n_threads,
                                 GCancellable *cancellable,
                                 GError **error)
{
  g_autofree FileJob *jobs = NULL;
  g_autofree GThread **threads = NULL;
  g_autofree guint8 *blocks = NULL;
  g_autoptr(GError) local_error = NULL;
  struct stat st_before, st_after;
  guint64 n_blocks, length;
  gint failed = 0;
  NodeHasher nh;
  AlvHashTree *tree;
  int fd;
  guint i;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable),
                        NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!alv_hash_tree_block_size_is_valid (block_size))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Invalid block size %u: it must be a power of two "
                     "from %u to %u bytes"),
                   block_size, (guint) ALV_HASH_TREE_LEAF_SIZE,
                   (guint) ALV_HASH_TREE_MAX_BLOCK_SIZE);
      return NULL;
    }

  fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st_before) < 0)
    {
      int saved_errno = errno;
      g_autofree char *display = g_filename_display_name (path);

      if (fd >= 0)
        close (fd);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   _("Could not open “%s”: %s"), display,
                   g_strerror (saved_errno));
      return NULL;
    }
  if (!S_ISREG (st_before.st_mode))
    {
      g_autofree char *display = g_filename_display_name (path);

      close (fd);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE,
                   _("“%s” is not a regular file"), display);
      return NULL;
    }
#ifdef POSIX_FADV_SEQUENTIAL
  posix_fadvise (fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif

  length = st_before.st_size;
  n_blocks = blocks_for_length (length, block_size);
  if (n_threads == 0)
    n_threads = MIN (g_get_num_processors (), FILE_MAX_THREADS);
  n_threads = MIN (n_threads, FILE_MAX_THREADS);
  n_threads = MIN ((guint64) n_threads, n_blocks);
  n_threads = MIN ((guint64) n_threads,
                   MAX (length / FILE_MIN_BYTES_PER_THREAD, 1));
  n_threads = MAX (n_threads, 1);

  blocks = g_malloc (n_blocks * ALV_HASH_SIZE);
  jobs = g_new0 (FileJob, n_threads);
  threads = g_new0 (GThread *, n_threads);
  for (i = 0; i < n_threads; i++)
    {
      FileJob *job = &jobs[i];

      job->fd = fd;
      job->path = path;
      job->block_size = block_size;
      job->file_length = length;
      job->first_block = n_blocks * i / n_threads;
      job->end_block = n_blocks * (i + 1) / n_threads;
      job->blocks = blocks;
      job->cancellable = cancellable;
      job->failed = &failed;
    }

  /* job 0 runs here; if a thread cannot start, its job runs here too */
  for (i = 1; i < n_threads; i++)
    threads[i] = g_thread_try_new ("alv-hash", file_job_thread, &jobs[i],
                                   NULL);
  file_job_run (&jobs[0], &jobs[0].error);
  for (i = 1; i < n_threads; i++)
    {
      if (threads[i] != NULL)
        g_thread_join (threads[i]);
      else
        file_job_run (&jobs[i], &jobs[i].error);
    }

  for (i = 0; i < n_threads; i++)
    {
      if (jobs[i].error != NULL && local_error == NULL)
        local_error = g_steal_pointer (&jobs[i].error);
      g_clear_error (&jobs[i].error);
    }

  if (local_error == NULL &&
      (fstat (fd, &st_after) < 0 ||
       st_after.st_size != st_before.st_size ||
       st_after.st_mtim.tv_sec != st_before.st_mtim.tv_sec ||
       st_after.st_mtim.tv_nsec != st_before.st_mtim.tv_nsec))
    {
      g_autofree char *display = g_filename_display_name (path);

      g_set_error (&local_error, ALV_ERROR, ALV_ERROR_FAILED,
                   _("“%s” changed while it was being hashed"), display);
    }
  close (fd);

  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }

  node_hasher_init (&nh, &sha256_digest);
  tree = hash_tree_new_take (&nh, length, block_size,
                             g_steal_pointer (&blocks), n_blocks);
  node_hasher_clear (&nh);
  return tree;
}

/**
 * alv_hash_tree_new_for_file:
 * @path: a regular file
 * @block_size: the block size, see alv_hash_tree_block_size_is_valid()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * The SHA-256 tree of a file, hashed with one thread per processor for
 * large files.  Blocking: call it from a worker thread, or use
 * alv_hash_tree_new_for_file_async().  System errors are reported in the
 * %G_IO_ERROR domain (e.g. %G_IO_ERROR_NOT_FOUND), a file that changes
 * while hashed as %ALV_ERROR_FAILED.
 *
 * Returns: (transfer full): the tree, or %NULL with @error set
 */
AlvHashTree *
alv_hash_tree_new_for_file (const char *path,
                            guint block_size,
                            GCancellable *cancellable,
                            GError **error)
{
  return alv_hash_tree_new_for_file_full (path, block_size, 0, cancellable,
                                          error);
}

typedef struct
{
  char *path;
  guint block_size;
} FileTaskData;

static void
file_task_data_free (FileTaskData *data)
{
  g_free (data->path);
  g_free (data);
}

static void
file_task_thread (GTask *task,
                  G_GNUC_UNUSED gpointer source_object,
                  gpointer task_data,
                  GCancellable *cancellable)
{
  FileTaskData *data = task_data;
  GError *error = NULL;
  AlvHashTree *tree;

  tree = alv_hash_tree_new_for_file (data->path, data->block_size,
                                     cancellable, &error);
  if (tree == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, tree, (GDestroyNotify) alv_hash_tree_unref);
}

/**
 * alv_hash_tree_new_for_file_async:
 * @path: a regular file
 * @block_size: the block size, see alv_hash_tree_block_size_is_valid()
 * @cancellable: (nullable): a #GCancellable
 * @callback: called on the thread-default main context when done
 * @user_data: data for @callback
 *
 * Hashes a file in a worker thread; see alv_hash_tree_new_for_file().
 */
void
alv_hash_tree_new_for_file_async (const char *path,
                                  guint block_size,
                                  GCancellable *cancellable,
                                  GAsyncReadyCallback callback,
                                  gpointer user_data)
{
  g_autoptr(GTask) task = NULL;
  FileTaskData *data;

  g_return_if_fail (path != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, alv_hash_tree_new_for_file_async);
  data = g_new0 (FileTaskData, 1);
  data->path = g_strdup (path);
  data->block_size = block_size;
  g_task_set_task_data (task, data, (GDestroyNotify) file_task_data_free);
  g_task_run_in_thread (task, file_task_thread);
}

/**
 * alv_hash_tree_new_for_file_finish:
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes alv_hash_tree_new_for_file_async().
 *
 * Returns: (transfer full): the tree, or %NULL with @error set
 */
AlvHashTree *
alv_hash_tree_new_for_file_finish (GAsyncResult *result, GError **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result,
                                                  alv_hash_tree_new_for_file_async),
                        NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
