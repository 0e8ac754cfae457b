/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Block maps: which blocks of an item a peer holds, as a bitfield, with the
 * conversions to and from byte-range sets (the last block may be short), a
 * compact wire form for announces (most significant bit first, as
 * BitTorrent's bitfield) and the rarest-first picker the swarm uses beyond
 * its urgent window (doc/swarm.md).
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-block-map.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "alv-error.h"

#define WORD_BITS 64

struct _AlvBlockMap
{
  guint    n_blocks;
  guint    n_set;   /* cached population count */
  guint64 *words;   /* bits beyond n_blocks are always zero */
};

G_DEFINE_BOXED_TYPE (AlvBlockMap, alv_block_map,
                     alv_block_map_copy, alv_block_map_free)

static inline guint
n_words_for (guint n_blocks)
{
  return (n_blocks + WORD_BITS - 1) / WORD_BITS;
}

static inline guint
count_trailing_zeros (guint64 w)
{
#if defined(__GNUC__) || defined(__clang__)
  return (guint) __builtin_ctzll (w);
#else
  guint n = 0;

  while ((w & 1) == 0)
    {
      w >>= 1;
      n++;
    }
  return n;
#endif
}

/**
 * alv_block_count_for_length:
 * @length: length of an item in bytes
 * @block_size: block size in bytes (non-zero)
 *
 * Returns: the number of blocks of an item of @length bytes (the last one
 *   may be short); 0 for an empty item
 */
guint64
alv_block_count_for_length (guint64 length,
                            guint32 block_size)
{
  g_return_val_if_fail (block_size > 0, 0);

  if (length == 0)
    return 0;
  return (length - 1) / block_size + 1;
}

/**
 * alv_block_get_range:
 * @index: a block index
 * @block_size: block size in bytes (non-zero)
 * @length: length of the item
 *
 * Returns: the byte span of block @index, short for the last block, empty
 *   (`[length, length)`) for an index beyond the item
 */
AlvRange
alv_block_get_range (guint   index,
                     guint32 block_size,
                     guint64 length)
{
  AlvRange r;
  guint64 start;

  g_return_val_if_fail (block_size > 0, ((AlvRange) { 0, 0 }));

  start = (guint64) index * block_size;
  if (start >= length)
    return (AlvRange) { length, length };
  r.start = start;
  r.end = length - start < block_size ? length : start + block_size;
  return r;
}

/**
 * alv_block_map_new:
 * @n_blocks: number of blocks, at most %ALV_BLOCK_MAP_MAX_BLOCKS
 *
 * Returns: (transfer full): a new map with no block held
 */
AlvBlockMap *
alv_block_map_new (guint n_blocks)
{
  AlvBlockMap *map;

  g_return_val_if_fail (n_blocks <= ALV_BLOCK_MAP_MAX_BLOCKS, NULL);

  map = g_new0 (AlvBlockMap, 1);
  map->n_blocks = n_blocks;
  map->words = g_new0 (guint64, MAX (n_words_for (n_blocks), 1));
  return map;
}

/**
 * alv_block_map_copy:
 * @map: a map
 *
 * Returns: (transfer full): a copy of @map
 */
AlvBlockMap *
alv_block_map_copy (const AlvBlockMap *map)
{
  AlvBlockMap *copy;

  g_return_val_if_fail (map != NULL, NULL);

  copy = alv_block_map_new (map->n_blocks);
  memcpy (copy->words, map->words, n_words_for (map->n_blocks) * sizeof (guint64));
  copy->n_set = map->n_set;
  return copy;
}

/**
 * alv_block_map_free:
 * @map: (nullable): a map
 *
 * Frees @map.
 */
void
alv_block_map_free (AlvBlockMap *map)
{
  if (map == NULL)
    return;
  g_free (map->words);
  g_free (map);
}

/**
 * alv_block_map_get_n_blocks:
 * @map: a map
 *
 * Returns: the number of blocks @map covers
 */
guint
alv_block_map_get_n_blocks (const AlvBlockMap *map)
{
  g_return_val_if_fail (map != NULL, 0);

  return map->n_blocks;
}

/**
 * alv_block_map_set:
 * @map: a map
 * @index: a block index below the number of blocks
 *
 * Marks block @index as held.
 */
void
alv_block_map_set (AlvBlockMap *map,
                   guint        index)
{
  guint64 bit;

  g_return_if_fail (map != NULL);
  g_return_if_fail (index < map->n_blocks);

  bit = G_GUINT64_CONSTANT (1) << (index % WORD_BITS);
  if ((map->words[index / WORD_BITS] & bit) == 0)
    {
      map->words[index / WORD_BITS] |= bit;
      map->n_set++;
    }
}

/**
 * alv_block_map_clear:
 * @map: a map
 * @index: a block index below the number of blocks
 *
 * Marks block @index as not held.
 */
void
alv_block_map_clear (AlvBlockMap *map,
                     guint        index)
{
  guint64 bit;

  g_return_if_fail (map != NULL);
  g_return_if_fail (index < map->n_blocks);

  bit = G_GUINT64_CONSTANT (1) << (index % WORD_BITS);
  if ((map->words[index / WORD_BITS] & bit) != 0)
    {
      map->words[index / WORD_BITS] &= ~bit;
      map->n_set--;
    }
}

/**
 * alv_block_map_set_all:
 * @map: a map
 *
 * Marks every block as held (a seeder's map).
 */
void
alv_block_map_set_all (AlvBlockMap *map)
{
  guint n_words;

  g_return_if_fail (map != NULL);

  n_words = n_words_for (map->n_blocks);
  for (guint i = 0; i < n_words; i++)
    map->words[i] = G_MAXUINT64;
  if (map->n_blocks % WORD_BITS != 0)
    map->words[n_words - 1] = (G_GUINT64_CONSTANT (1) << (map->n_blocks % WORD_BITS)) - 1;
  map->n_set = map->n_blocks;
}

/**
 * alv_block_map_get:
 * @map: a map
 * @index: a block index
 *
 * Returns: %TRUE if block @index is held (%FALSE beyond the map)
 */
gboolean
alv_block_map_get (const AlvBlockMap *map,
                   guint              index)
{
  g_return_val_if_fail (map != NULL, FALSE);

  if (index >= map->n_blocks)
    return FALSE;
  return (map->words[index / WORD_BITS] >> (index % WORD_BITS)) & 1;
}

/**
 * alv_block_map_count:
 * @map: a map
 *
 * Returns: the number of blocks held
 */
guint
alv_block_map_count (const AlvBlockMap *map)
{
  g_return_val_if_fail (map != NULL, 0);

  return map->n_set;
}

/**
 * alv_block_map_is_complete:
 * @map: a map
 *
 * Returns: %TRUE if every block is held (also for a map of 0 blocks)
 */
gboolean
alv_block_map_is_complete (const AlvBlockMap *map)
{
  g_return_val_if_fail (map != NULL, FALSE);

  return map->n_set == map->n_blocks;
}

/**
 * alv_block_map_equal:
 * @a: a map
 * @b: a map
 *
 * Returns: %TRUE if @a and @b have the same size and bits
 */
gboolean
alv_block_map_equal (const AlvBlockMap *a,
                     const AlvBlockMap *b)
{
  g_return_val_if_fail (a != NULL, FALSE);
  g_return_val_if_fail (b != NULL, FALSE);

  return a->n_blocks == b->n_blocks
         && a->n_set == b->n_set
         && memcmp (a->words, b->words, n_words_for (a->n_blocks) * sizeof (guint64)) == 0;
}

/* First index >= @index whose bit equals @want, or n_blocks. */
static guint
find_bit (const AlvBlockMap *map,
          guint              index,
          gboolean           want)
{
  guint n_words = n_words_for (map->n_blocks);
  guint w;
  guint64 word;

  if (index >= map->n_blocks)
    return map->n_blocks;

  w = index / WORD_BITS;
  word = want ? map->words[w] : ~map->words[w];
  word &= G_MAXUINT64 << (index % WORD_BITS);
  for (;;)
    {
      if (word != 0)
        {
          guint found = w * WORD_BITS + count_trailing_zeros (word);
          return MIN (found, map->n_blocks);
        }
      if (++w >= n_words)
        return map->n_blocks;
      word = want ? map->words[w] : ~map->words[w];
    }
}

/**
 * alv_block_map_first_missing_after:
 * @map: a map
 * @index: where to start looking
 *
 * Returns: the first block index >= @index not held, or the number of
 *   blocks when there is none
 */
guint
alv_block_map_first_missing_after (const AlvBlockMap *map,
                                   guint              index)
{
  g_return_val_if_fail (map != NULL, 0);

  return find_bit (map, index, FALSE);
}

/**
 * alv_block_map_first_set_after:
 * @map: a map
 * @index: where to start looking
 *
 * Returns: the first block index >= @index held, or the number of blocks
 *   when there is none
 */
guint
alv_block_map_first_set_after (const AlvBlockMap *map,
                               guint              index)
{
  g_return_val_if_fail (map != NULL, 0);

  return find_bit (map, index, TRUE);
}

/**
 * alv_block_map_to_range_set:
 * @map: a map
 * @block_size: block size in bytes (non-zero)
 * @length: length of the item; @map must have
 *   alv_block_count_for_length (@length, @block_size) blocks
 *
 * Returns: (transfer full): the bytes of the held blocks, the last block
 *   cut at @length
 */
AlvRangeSet *
alv_block_map_to_range_set (const AlvBlockMap *map,
                            guint32            block_size,
                            guint64            length)
{
  AlvRangeSet *set;
  guint i = 0;

  g_return_val_if_fail (map != NULL, NULL);
  g_return_val_if_fail (block_size > 0, NULL);
  g_return_val_if_fail (alv_block_count_for_length (length, block_size) == map->n_blocks, NULL);

  set = alv_range_set_new ();
  while ((i = find_bit (map, i, TRUE)) < map->n_blocks)
    {
      guint j = find_bit (map, i, FALSE);
      guint64 end = MIN ((guint64) j * block_size, length);

      alv_range_set_add (set, (guint64) i * block_size, end);
      i = j;
    }
  return set;
}

/**
 * alv_block_map_new_from_range_set:
 * @set: a set of held bytes
 * @block_size: block size in bytes (non-zero)
 * @length: length of the item; its block count must not exceed
 *   %ALV_BLOCK_MAP_MAX_BLOCKS
 *
 * Converts a peer's byte ranges to blocks: only the blocks wholly inside
 * @set are marked (the last block counts as whole when held up to
 * @length); bytes beyond @length are ignored.
 *
 * Returns: (transfer full): a new map
 */
AlvBlockMap *
alv_block_map_new_from_range_set (const AlvRangeSet *set,
                                  guint32            block_size,
                                  guint64            length)
{
  g_autoptr(AlvBlockMap) map = NULL;
  guint64 n_blocks;

  g_return_val_if_fail (set != NULL, NULL);
  g_return_val_if_fail (block_size > 0, NULL);

  n_blocks = alv_block_count_for_length (length, block_size);
  g_return_val_if_fail (n_blocks <= ALV_BLOCK_MAP_MAX_BLOCKS, NULL);

  map = alv_block_map_new ((guint) n_blocks);
  for (guint i = 0; i < alv_range_set_get_n_ranges (set); i++)
    {
      AlvRange r = alv_range_set_get_range (set, i);
      guint64 first, last;

      if (r.start >= length)
        break;
      r.end = MIN (r.end, length);
      first = r.start / block_size + (r.start % block_size != 0);
      last = r.end == length ? n_blocks : r.end / block_size;
      for (guint64 b = first; b < last; b++)
        alv_block_map_set (map, (guint) b);
    }
  return g_steal_pointer (&map);
}

/**
 * alv_block_map_pick_rarest:
 * @have: the blocks we hold
 * @availability: (array): for each block of @have, how many peers hold it
 * @candidate: (nullable): the blocks the peer being asked can give, same
 *   size as @have; %NULL for every block
 * @from: first block index to consider
 * @to: one past the last block index to consider (clamped to the map)
 * @tie_breaker: (nullable): picks uniformly among equally rare blocks;
 *   %NULL picks the earliest, which suits streaming
 * @index_out: (out): the block picked
 *
 * Picks, among the blocks of `[from, to)` that we lack and @candidate
 * holds, one held by the fewest peers.  An availability of 0 counts as
 * the rarest (nobody announced it yet); pass a @candidate map to consider
 * only what a given peer can send.
 *
 * Returns: %TRUE if a block was picked, %FALSE if there is none to pick
 */
gboolean
alv_block_map_pick_rarest (const AlvBlockMap *have,
                           const guint       *availability,
                           const AlvBlockMap *candidate,
                           guint              from,
                           guint              to,
                           GRand             *tie_breaker,
                           guint             *index_out)
{
  gboolean found = FALSE;
  guint best = G_MAXUINT;
  guint picked = 0;
  guint ties = 0;

  g_return_val_if_fail (have != NULL, FALSE);
  g_return_val_if_fail (availability != NULL, FALSE);
  g_return_val_if_fail (candidate == NULL || candidate->n_blocks == have->n_blocks, FALSE);
  g_return_val_if_fail (index_out != NULL, FALSE);

  to = MIN (to, have->n_blocks);
  /* a word at a time: the blocks we lack and the candidate holds, in
   * order (a planner asks this for every peer it knows, every tick) */
  for (guint w = from / WORD_BITS; from < to && w < n_words_for (to); w++)
    {
      guint64 word = ~have->words[w];

      if (candidate != NULL)
        word &= candidate->words[w];
      if (w == from / WORD_BITS)
        word &= G_MAXUINT64 << (from % WORD_BITS);
      if ((w + 1) * WORD_BITS > to)
        word &= G_MAXUINT64 >> (WORD_BITS - (to - w * WORD_BITS));
      for (; word != 0; word &= word - 1)
        {
          guint i = w * WORD_BITS + count_trailing_zeros (word);
          guint a = availability[i];

          if (!found || a < best)
            {
              found = TRUE;
              best = a;
              picked = i;
              ties = 1;
            }
          else if (a == best && tie_breaker != NULL)
            {
              /* reservoir sampling: the k-th tie replaces with probability 1/k */
              ties++;
              if (g_rand_int_range (tie_breaker, 0, (gint32) MIN (ties, (guint) G_MAXINT32)) == 0)
                picked = i;
            }
        }
    }

  if (found)
    *index_out = picked;
  return found;
}

/**
 * alv_block_map_to_bytes:
 * @map: a map
 *
 * Serializes @map as a bitfield of ceil(n_blocks / 8) bytes, block 0 in
 * the most significant bit of the first byte, spare bits zero.
 *
 * Returns: (transfer full): the bitfield
 */
GBytes *
alv_block_map_to_bytes (const AlvBlockMap *map)
{
  gsize size;
  guint8 *data;

  g_return_val_if_fail (map != NULL, NULL);

  size = (map->n_blocks + 7) / 8;
  data = g_malloc0 (MAX (size, 1));
  for (guint i = find_bit (map, 0, TRUE); i < map->n_blocks; i = find_bit (map, i + 1, TRUE))
    data[i / 8] |= (guint8) (0x80 >> (i % 8));
  return g_bytes_new_take (data, size);
}

/**
 * alv_block_map_new_from_bytes:
 * @bytes: a bitfield as written by alv_block_map_to_bytes()
 * @n_blocks: the number of blocks the item has
 * @error: return location for a #GError
 *
 * Reads a peer's bitfield.  Errors: %ALV_ERROR_LIMIT when @n_blocks is
 * above %ALV_BLOCK_MAP_MAX_BLOCKS; %ALV_ERROR_INVALID when the size is not
 * ceil(@n_blocks / 8) bytes or a spare bit is set.
 *
 * Returns: (transfer full): a new map, or %NULL on error
 */
AlvBlockMap *
alv_block_map_new_from_bytes (GBytes  *bytes,
                              guint    n_blocks,
                              GError **error)
{
  g_autoptr(AlvBlockMap) map = NULL;
  const guint8 *data;
  gsize size;

  g_return_val_if_fail (bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (n_blocks > ALV_BLOCK_MAP_MAX_BLOCKS)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("Block map: %u blocks is more than %u"),
                   n_blocks, ALV_BLOCK_MAP_MAX_BLOCKS);
      return NULL;
    }
  data = g_bytes_get_data (bytes, &size);
  if (size != (n_blocks + 7) / 8)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Block map: %zu bytes given, %u expected for %u blocks"),
                   size, (n_blocks + 7) / 8, n_blocks);
      return NULL;
    }
  if (n_blocks % 8 != 0 && (data[size - 1] & (0xff >> (n_blocks % 8))) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Block map: bits set beyond block %u"), n_blocks);
      return NULL;
    }

  map = alv_block_map_new (n_blocks);
  for (gsize i = 0; i < size; i++)
    {
      guint8 b = data[i];

      for (guint k = 0; b != 0 && k < 8; k++, b <<= 1)
        if (b & 0x80)
          alv_block_map_set (map, (guint) (i * 8 + k));
    }
  return g_steal_pointer (&map);
}
