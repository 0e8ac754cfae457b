/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the untrusted inputs of alv-hash-tree.h: THEX
 * serializations (alv_hash_tree_new_from_serialized()) and content URNs
 * (alv_urn_parse(), alv_base32_decode()).  The first input byte picks the
 * block size and options, the next eight the content length (mostly folded
 * into a range where the size can match), the rest is the serialization.
 * Whatever is accepted must serialize back to the same bytes; a parsed URN
 * must format back to the same root.  The same bytes are also hashed as
 * content (alv_hash_tree_new_for_data() and an #AlvTreeHasher fed in
 * input-chosen pieces, empty ones included): both trees must agree, load
 * back from their serialization with the root as expected root, accept
 * every block and refuse a block with one bit flipped or the wrong size.
 */
#define G_LOG_DOMAIN "fuzz-thex"

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "alv-base32.h"
#include "alv-error.h"
#include "alv-hash-tree.h"
#include "alv-urn.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
fuzz_tree (const uint8_t *data, size_t size)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 *payload = data + 9;
  gsize payload_size = size - 9;
  guint block_size = 1u << (10 + data[0] % 8);
  guint64 raw = 0, length;
  const guint8 *expected_root = NULL;
  int i;

  for (i = 0; i < 8; i++)
    raw |= (guint64) data[1 + i] << (8 * i);
  if (data[0] & 0x80)
    length = raw;  /* anything, to reach the limits */
  else
    length = raw % ((payload_size / ALV_HASH_SIZE + 2) *
                    (guint64) block_size + 1);
  if ((data[0] & 0x40) && payload_size >= ALV_HASH_SIZE)
    expected_root = payload;  /* the serialized root: consistent trees pass */

  bytes = g_bytes_new (payload, payload_size);
  tree = alv_hash_tree_new_from_serialized (bytes, length, block_size,
                                            expected_root, &error);
  if (tree == NULL)
    {
      if (error == NULL || error->message == NULL)
        abort ();
      return;
    }
  if (error != NULL)
    abort ();

  {
    g_autoptr(GBytes) again = alv_hash_tree_serialize (tree);
    guint64 offset, len;
    g_autofree char *urn = alv_hash_tree_get_urn (tree);
    guint8 root[ALV_HASH_SIZE];

    if (!g_bytes_equal (again, bytes) ||
        alv_hash_tree_get_length (tree) != length ||
        memcmp (alv_hash_tree_get_root (tree), payload, ALV_HASH_SIZE) != 0)
      abort ();
    if (!alv_urn_parse (urn, root, NULL) ||
        memcmp (root, payload, ALV_HASH_SIZE) != 0)
      abort ();

    /* verify the last block against whatever bytes there are */
    if (!alv_hash_tree_get_block_range (tree,
                                        alv_hash_tree_get_n_blocks (tree) - 1,
                                        &offset, &len))
      abort ();
    if (len <= payload_size)
      (void) alv_hash_tree_verify_block (tree,
                                         alv_hash_tree_get_n_blocks (tree) - 1,
                                         payload, len, NULL);
  }
}

static void
fuzz_urn (const uint8_t *data, size_t size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(GError) error = NULL;
  guint8 root[ALV_HASH_SIZE];
  guint8 small[5];

  if (alv_urn_parse (text, root, &error))
    {
      g_autofree char *urn = alv_urn_format (root);
      guint8 root2[ALV_HASH_SIZE];

      /* the only accepted spellings differ from the canonical one by case */
      if (g_ascii_strcasecmp (urn, text) != 0 ||
          !alv_urn_parse (urn, root2, NULL) ||
          memcmp (root, root2, sizeof root) != 0)
        abort ();
    }
  else if (error == NULL)
    abort ();

  if (alv_base32_decode (text, -1, small, sizeof small, NULL))
    {
      g_autofree char *enc = alv_base32_encode (small, sizeof small);

      if (g_ascii_strcasecmp (enc, text) != 0)
        abort ();
    }
}

/* data[0] picks the block size, data[1] the piece sizes; content is the rest */
static void
fuzz_content (const uint8_t *data, size_t size)
{
  guint block_size = 1u << (10 + data[0] % 4);
  const guint8 *content = data + 2;
  gsize len = size - 2;
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(AlvHashTree) streamed = NULL;
  g_autoptr(AlvHashTree) loaded = NULL;
  g_autoptr(AlvTreeHasher) hasher = NULL;
  g_autoptr(GBytes) serialized = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = NULL;
  guint64 n_blocks, covered = 0;
  gsize off = 0;
  guint step = 1 + data[1] % 37;

  tree = alv_hash_tree_new_for_data (content, len, block_size);
  CHECK (tree != NULL);
  CHECK (alv_hash_tree_get_length (tree) == len);
  n_blocks = alv_hash_tree_get_n_blocks (tree);
  CHECK (n_blocks == (len == 0 ? 1 : (len - 1) / block_size + 1));

  /* the streaming hasher, fed in uneven pieces and empty updates */
  hasher = alv_tree_hasher_new (block_size);
  alv_tree_hasher_update (hasher, NULL, 0);
  while (off < len)
    {
      gsize n = MIN ((gsize) step, len - off);

      alv_tree_hasher_update (hasher, content + off, n);
      alv_tree_hasher_update (hasher, NULL, 0);
      off += n;
      step = step * 7 % 1531 + 1;
    }
  CHECK (alv_tree_hasher_get_length (hasher) == len);
  streamed = alv_tree_hasher_finish (hasher);
  CHECK (alv_hash_tree_equal (tree, streamed));
  CHECK (alv_tree_hasher_get_length (hasher) == 0);  /* reset for reuse */

  serialized = alv_hash_tree_serialize (tree);
  CHECK (g_bytes_get_size (serialized) ==
         alv_hash_tree_get_serialized_size (tree));
  loaded = alv_hash_tree_new_from_serialized (serialized, len, block_size,
                                              alv_hash_tree_get_root (tree),
                                              &error);
  CHECK (loaded != NULL && error == NULL);
  CHECK (alv_hash_tree_equal (tree, loaded));

  copy = g_malloc (MAX (len, 1));
  if (len > 0)
    memcpy (copy, content, len);
  for (guint64 i = 0; i < n_blocks; i++)
    {
      guint64 offset, blen;

      CHECK (alv_hash_tree_get_block_range (loaded, i, &offset, &blen));
      CHECK (offset == covered && offset + blen <= len);
      covered += blen;
      CHECK (alv_hash_tree_verify_block (loaded, i, content + offset, blen,
                                         NULL));
      if (blen > 0)
        {
          g_autoptr(GError) mismatch = NULL;
          gsize flip = (gsize) (offset + (i * 131 + data[1]) % blen);

          copy[flip] ^= 1u << (data[0] % 8);
          CHECK (!alv_hash_tree_verify_block (loaded, i, copy + offset, blen,
                                              &mismatch));
          CHECK (g_error_matches (mismatch, ALV_ERROR, ALV_ERROR_MISMATCH));
          copy[flip] ^= 1u << (data[0] % 8);
          CHECK (!alv_hash_tree_verify_block (loaded, i, content + offset,
                                              blen - 1, NULL));
        }
    }
  CHECK (covered == len);
  CHECK (!alv_hash_tree_get_block_range (loaded, n_blocks, NULL, NULL));
  CHECK (!alv_hash_tree_verify_block (loaded, n_blocks, content, 0, NULL));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  if (size >= 2)
    fuzz_content (data, size);
  if (size >= 9)
    fuzz_tree (data, size);
  fuzz_urn (data, size);
  return 0;
}
