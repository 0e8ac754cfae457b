/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Byte-range sets and the HTTP headers that carry them: `Range` and
 * `Content-Range` (RFC 9110 §14) and PFSP's `X-Available-Ranges`.  The
 * header values come from untrusted peers, so every parser bounds the
 * number of ranges it accepts, refuses numbers above %ALV_RANGES_MAX_OFFSET
 * before they can overflow, and says in its GError which part was wrong.
 * The block-map half of alv-ranges.h lives in alv-block-map.c.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-ranges.h"

#include <string.h>

#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

struct _AlvRangeSet
{
  GArray *ranges; /* of AlvRange: sorted, disjoint, non-touching, non-empty */
};

G_DEFINE_BOXED_TYPE (AlvRangeSet, alv_range_set,
                     alv_range_set_copy, alv_range_set_free)

#define RANGE_AT(set, i) (&g_array_index ((set)->ranges, AlvRange, (i)))

/**
 * alv_range_set_new:
 *
 * Creates an empty set.
 *
 * Returns: (transfer full): a new #AlvRangeSet
 */
AlvRangeSet *
alv_range_set_new (void)
{
  AlvRangeSet *set = g_new0 (AlvRangeSet, 1);

  set->ranges = g_array_new (FALSE, FALSE, sizeof (AlvRange));
  return set;
}

/**
 * alv_range_set_new_single:
 * @start: first byte
 * @end: one past the last byte
 *
 * Creates a set holding `[start, end)` (empty when @start >= @end).
 *
 * Returns: (transfer full): a new #AlvRangeSet
 */
AlvRangeSet *
alv_range_set_new_single (guint64 start,
                          guint64 end)
{
  AlvRangeSet *set = alv_range_set_new ();

  if (start < end)
    {
      AlvRange r = { start, end };
      g_array_append_val (set->ranges, r);
    }
  return set;
}

/**
 * alv_range_set_copy:
 * @set: a set
 *
 * Returns: (transfer full): a copy of @set
 */
AlvRangeSet *
alv_range_set_copy (const AlvRangeSet *set)
{
  AlvRangeSet *copy;

  g_return_val_if_fail (set != NULL, NULL);

  copy = alv_range_set_new ();
  if (set->ranges->len > 0)
    g_array_append_vals (copy->ranges, set->ranges->data, set->ranges->len);
  return copy;
}

/**
 * alv_range_set_free:
 * @set: (nullable): a set
 *
 * Frees @set.
 */
void
alv_range_set_free (AlvRangeSet *set)
{
  if (set == NULL)
    return;
  g_array_unref (set->ranges);
  g_free (set);
}

/**
 * alv_range_set_clear:
 * @set: a set
 *
 * Removes every range from @set.
 */
void
alv_range_set_clear (AlvRangeSet *set)
{
  g_return_if_fail (set != NULL);
  g_array_set_size (set->ranges, 0);
}

/* Index of the first range whose end is > @offset, or >= @offset when
 * @touching (so that a range ending exactly at @offset is found too).
 * ranges->len when there is none. */
static guint
find_first_ending_after (const AlvRangeSet *set,
                         guint64            offset,
                         gboolean           touching)
{
  guint lo = 0;
  guint hi = set->ranges->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      const AlvRange *r = RANGE_AT (set, mid);
      gboolean before = touching ? r->end < offset : r->end <= offset;

      if (before)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

/**
 * alv_range_set_add:
 * @set: a set
 * @start: first byte
 * @end: one past the last byte
 *
 * Adds `[start, end)` to @set, merging it with the ranges it overlaps or
 * touches.  An empty span (@start >= @end) changes nothing.
 */
void
alv_range_set_add (AlvRangeSet *set,
                   guint64      start,
                   guint64      end)
{
  guint i, j;
  AlvRange merged = { start, end };

  g_return_if_fail (set != NULL);

  if (start >= end)
    return;

  i = find_first_ending_after (set, start, TRUE);
  for (j = i; j < set->ranges->len && RANGE_AT (set, j)->start <= end; j++)
    {
      merged.start = MIN (merged.start, RANGE_AT (set, j)->start);
      merged.end = MAX (merged.end, RANGE_AT (set, j)->end);
    }

  if (j > i)
    g_array_remove_range (set->ranges, i, j - i);
  g_array_insert_val (set->ranges, i, merged);
}

/**
 * alv_range_set_remove:
 * @set: a set
 * @start: first byte
 * @end: one past the last byte
 *
 * Removes `[start, end)` from @set, splitting a range if needed.
 */
void
alv_range_set_remove (AlvRangeSet *set,
                      guint64      start,
                      guint64      end)
{
  guint i, j;
  AlvRange pieces[2];
  guint n_pieces = 0;

  g_return_if_fail (set != NULL);

  if (start >= end)
    return;

  i = find_first_ending_after (set, start, FALSE);
  for (j = i; j < set->ranges->len && RANGE_AT (set, j)->start < end; j++)
    ;
  if (j == i)
    return;

  if (RANGE_AT (set, i)->start < start)
    pieces[n_pieces++] = (AlvRange) { RANGE_AT (set, i)->start, start };
  if (RANGE_AT (set, j - 1)->end > end)
    pieces[n_pieces++] = (AlvRange) { end, RANGE_AT (set, j - 1)->end };

  g_array_remove_range (set->ranges, i, j - i);
  if (n_pieces > 0)
    g_array_insert_vals (set->ranges, i, pieces, n_pieces);
}

/* Appends [start, end) to a sorted array being built in order, merging
 * with the last range when they touch. */
static void
append_coalescing (GArray  *out,
                   guint64  start,
                   guint64  end)
{
  if (start >= end)
    return;
  if (out->len > 0)
    {
      AlvRange *last = &g_array_index (out, AlvRange, out->len - 1);

      if (start <= last->end)
        {
          last->end = MAX (last->end, end);
          return;
        }
    }
  g_array_append_val (out, ((AlvRange) { start, end }));
}

static GArray *
merge_union (const AlvRangeSet *a,
             const AlvRangeSet *b)
{
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (AlvRange),
                                   a->ranges->len + b->ranges->len);
  guint i = 0, j = 0;

  while (i < a->ranges->len || j < b->ranges->len)
    {
      const AlvRange *r;

      if (j >= b->ranges->len
          || (i < a->ranges->len && RANGE_AT (a, i)->start <= RANGE_AT (b, j)->start))
        r = RANGE_AT (a, i++);
      else
        r = RANGE_AT (b, j++);
      append_coalescing (out, r->start, r->end);
    }
  return out;
}

static GArray *
merge_difference (const AlvRangeSet *a,
                  const AlvRangeSet *b)
{
  GArray *out = g_array_sized_new (FALSE, FALSE, sizeof (AlvRange), a->ranges->len);
  guint j = 0;

  for (guint i = 0; i < a->ranges->len; i++)
    {
      guint64 cur = RANGE_AT (a, i)->start;
      guint64 end = RANGE_AT (a, i)->end;

      while (j < b->ranges->len && RANGE_AT (b, j)->end <= cur)
        j++;
      /* b ranges starting inside [cur, end) cut holes; the last one may
       * reach into the next a range, so j is not advanced past it */
      for (guint k = j; k < b->ranges->len && RANGE_AT (b, k)->start < end; k++)
        {
          const AlvRange *h = RANGE_AT (b, k);

          if (h->start > cur)
            append_coalescing (out, cur, h->start);
          cur = MAX (cur, h->end);
          if (cur >= end)
            break;
        }
      if (cur < end)
        append_coalescing (out, cur, end);
    }
  return out;
}

static GArray *
merge_intersection (const AlvRangeSet *a,
                    const AlvRangeSet *b)
{
  GArray *out = g_array_new (FALSE, FALSE, sizeof (AlvRange));
  guint i = 0, j = 0;

  while (i < a->ranges->len && j < b->ranges->len)
    {
      const AlvRange *x = RANGE_AT (a, i);
      const AlvRange *y = RANGE_AT (b, j);
      guint64 lo = MAX (x->start, y->start);
      guint64 hi = MIN (x->end, y->end);

      append_coalescing (out, lo, hi);
      if (x->end < y->end)
        i++;
      else
        j++;
    }
  return out;
}

static void
replace_ranges (AlvRangeSet *set,
                GArray      *ranges)
{
  g_array_unref (set->ranges);
  set->ranges = ranges;
}

static AlvRangeSet *
set_from_array (GArray *ranges)
{
  AlvRangeSet *set = g_new0 (AlvRangeSet, 1);

  set->ranges = ranges;
  return set;
}

/**
 * alv_range_set_add_set:
 * @set: a set
 * @other: another set
 *
 * Adds every range of @other to @set (in-place union), in linear time.
 */
void
alv_range_set_add_set (AlvRangeSet       *set,
                       const AlvRangeSet *other)
{
  g_return_if_fail (set != NULL);
  g_return_if_fail (other != NULL);

  replace_ranges (set, merge_union (set, other));
}

/**
 * alv_range_set_subtract:
 * @set: a set
 * @other: another set
 *
 * Removes every byte of @other from @set (in-place difference).
 */
void
alv_range_set_subtract (AlvRangeSet       *set,
                        const AlvRangeSet *other)
{
  g_return_if_fail (set != NULL);
  g_return_if_fail (other != NULL);

  replace_ranges (set, merge_difference (set, other));
}

/**
 * alv_range_set_intersect_with:
 * @set: a set
 * @other: another set
 *
 * Keeps in @set only the bytes also in @other (in-place intersection).
 */
void
alv_range_set_intersect_with (AlvRangeSet       *set,
                              const AlvRangeSet *other)
{
  g_return_if_fail (set != NULL);
  g_return_if_fail (other != NULL);

  replace_ranges (set, merge_intersection (set, other));
}

/**
 * alv_range_set_clip:
 * @set: a set
 * @start: first byte kept
 * @end: one past the last byte kept
 *
 * Keeps in @set only the bytes within `[start, end)`.
 */
void
alv_range_set_clip (AlvRangeSet *set,
                    guint64      start,
                    guint64      end)
{
  g_return_if_fail (set != NULL);

  if (start >= end)
    {
      alv_range_set_clear (set);
      return;
    }
  alv_range_set_remove (set, 0, start);
  alv_range_set_remove (set, end, G_MAXUINT64);
}

/**
 * alv_range_set_union:
 * @a: a set
 * @b: a set
 *
 * Returns: (transfer full): a new set holding the bytes of @a or @b
 */
AlvRangeSet *
alv_range_set_union (const AlvRangeSet *a,
                     const AlvRangeSet *b)
{
  g_return_val_if_fail (a != NULL, NULL);
  g_return_val_if_fail (b != NULL, NULL);

  return set_from_array (merge_union (a, b));
}

/**
 * alv_range_set_difference:
 * @a: a set
 * @b: a set
 *
 * Returns: (transfer full): a new set holding the bytes of @a not in @b
 */
AlvRangeSet *
alv_range_set_difference (const AlvRangeSet *a,
                          const AlvRangeSet *b)
{
  g_return_val_if_fail (a != NULL, NULL);
  g_return_val_if_fail (b != NULL, NULL);

  return set_from_array (merge_difference (a, b));
}

/**
 * alv_range_set_intersect:
 * @a: a set
 * @b: a set
 *
 * Returns: (transfer full): a new set holding the bytes in both @a and @b
 */
AlvRangeSet *
alv_range_set_intersect (const AlvRangeSet *a,
                         const AlvRangeSet *b)
{
  g_return_val_if_fail (a != NULL, NULL);
  g_return_val_if_fail (b != NULL, NULL);

  return set_from_array (merge_intersection (a, b));
}

/**
 * alv_range_set_contains:
 * @set: a set
 * @start: first byte
 * @end: one past the last byte
 *
 * Whether @set holds the whole span `[start, end)`.  An empty span is
 * always held.
 *
 * Returns: %TRUE if every byte of the span is in @set
 */
gboolean
alv_range_set_contains (const AlvRangeSet *set,
                        guint64            start,
                        guint64            end)
{
  guint i;

  g_return_val_if_fail (set != NULL, FALSE);

  if (start >= end)
    return TRUE;
  i = find_first_ending_after (set, start, FALSE);
  return i < set->ranges->len
         && RANGE_AT (set, i)->start <= start
         && RANGE_AT (set, i)->end >= end;
}

/**
 * alv_range_set_contains_offset:
 * @set: a set
 * @offset: a byte offset
 *
 * Returns: %TRUE if the byte at @offset is in @set
 */
gboolean
alv_range_set_contains_offset (const AlvRangeSet *set,
                               guint64            offset)
{
  g_return_val_if_fail (set != NULL, FALSE);

  if (offset == G_MAXUINT64)
    return FALSE;
  return alv_range_set_contains (set, offset, offset + 1);
}

/**
 * alv_range_set_overlaps:
 * @set: a set
 * @start: first byte
 * @end: one past the last byte
 *
 * Returns: %TRUE if @set holds at least one byte of `[start, end)`
 */
gboolean
alv_range_set_overlaps (const AlvRangeSet *set,
                        guint64            start,
                        guint64            end)
{
  guint i;

  g_return_val_if_fail (set != NULL, FALSE);

  if (start >= end)
    return FALSE;
  i = find_first_ending_after (set, start, FALSE);
  return i < set->ranges->len && RANGE_AT (set, i)->start < end;
}

/**
 * alv_range_set_get_covering:
 * @set: a set
 * @offset: a byte offset
 * @range_out: (out) (optional): the range of @set holding @offset
 *
 * Finds the maximal held span around @offset, e.g. to answer a PFSP
 * request with the sub-range a peer has.
 *
 * Returns: %TRUE if @offset is held
 */
gboolean
alv_range_set_get_covering (const AlvRangeSet *set,
                            guint64            offset,
                            AlvRange          *range_out)
{
  guint i;

  g_return_val_if_fail (set != NULL, FALSE);

  i = find_first_ending_after (set, offset, FALSE);
  if (i >= set->ranges->len || RANGE_AT (set, i)->start > offset)
    return FALSE;
  if (range_out != NULL)
    *range_out = *RANGE_AT (set, i);
  return TRUE;
}

/**
 * alv_range_set_is_empty:
 * @set: a set
 *
 * Returns: %TRUE if @set holds no byte
 */
gboolean
alv_range_set_is_empty (const AlvRangeSet *set)
{
  g_return_val_if_fail (set != NULL, TRUE);

  return set->ranges->len == 0;
}

/**
 * alv_range_set_get_n_ranges:
 * @set: a set
 *
 * Returns: the number of disjoint ranges in @set
 */
guint
alv_range_set_get_n_ranges (const AlvRangeSet *set)
{
  g_return_val_if_fail (set != NULL, 0);

  return set->ranges->len;
}

/**
 * alv_range_set_get_range:
 * @set: a set
 * @index: index of a range, below alv_range_set_get_n_ranges()
 *
 * Returns: the @index-th range of @set in ascending order
 */
AlvRange
alv_range_set_get_range (const AlvRangeSet *set,
                         guint              index)
{
  AlvRange none = { 0, 0 };

  g_return_val_if_fail (set != NULL, none);
  g_return_val_if_fail (index < set->ranges->len, none);

  return *RANGE_AT (set, index);
}

/**
 * alv_range_set_total:
 * @set: a set
 *
 * Returns: the number of bytes in @set
 */
guint64
alv_range_set_total (const AlvRangeSet *set)
{
  guint64 total = 0;

  g_return_val_if_fail (set != NULL, 0);

  for (guint i = 0; i < set->ranges->len; i++)
    total += RANGE_AT (set, i)->end - RANGE_AT (set, i)->start;
  return total;
}

/**
 * alv_range_set_first_missing_after:
 * @set: a set
 * @offset: where to start looking
 * @limit: where to stop looking
 *
 * Returns: the first byte offset >= @offset not in @set, or @limit when
 *   every byte of `[offset, limit)` is held (or @offset >= @limit)
 */
guint64
alv_range_set_first_missing_after (const AlvRangeSet *set,
                                   guint64            offset,
                                   guint64            limit)
{
  guint i;

  g_return_val_if_fail (set != NULL, limit);

  if (offset >= limit)
    return limit;
  i = find_first_ending_after (set, offset, FALSE);
  if (i < set->ranges->len && RANGE_AT (set, i)->start <= offset)
    return MIN (RANGE_AT (set, i)->end, limit);
  return offset;
}

/**
 * alv_range_set_equal:
 * @a: a set
 * @b: a set
 *
 * Returns: %TRUE if @a and @b hold the same bytes
 */
gboolean
alv_range_set_equal (const AlvRangeSet *a,
                     const AlvRangeSet *b)
{
  g_return_val_if_fail (a != NULL, FALSE);
  g_return_val_if_fail (b != NULL, FALSE);

  return a->ranges->len == b->ranges->len
         && (a->ranges->len == 0
             || memcmp (a->ranges->data, b->ranges->data,
                        a->ranges->len * sizeof (AlvRange)) == 0);
}

/* ------------------------------------------------------------------ */
/* Header scanning                                                     */

static inline gboolean
is_ows (char c)
{
  return c == ' ' || c == '\t';
}

static const char *
skip_ows (const char *p)
{
  while (is_ows (*p))
    p++;
  return p;
}

typedef enum
{
  NUM_NONE,     /* no digit at *p */
  NUM_OK,
  NUM_TOO_BIG,  /* above ALV_RANGES_MAX_OFFSET */
} NumStatus;

/* Reads a run of ASCII digits at *p into *out, advancing *p past it (even
 * when too big, so error messages can point after it).  Never overflows:
 * the check happens before each multiplication. */
static NumStatus
read_number (const char **p,
             guint64     *out)
{
  const char *s = *p;
  guint64 v = 0;
  gboolean too_big = FALSE;

  if (!g_ascii_isdigit (*s))
    return NUM_NONE;
  for (; g_ascii_isdigit (*s); s++)
    {
      guint d = (guint) (*s - '0');

      if (too_big || v > (ALV_RANGES_MAX_OFFSET - d) / 10)
        too_big = TRUE;
      else
        v = v * 10 + d;
    }
  *p = s;
  *out = v;
  return too_big ? NUM_TOO_BIG : NUM_OK;
}

/* Reads a number that must be there, with errors naming @what. */
static gboolean
expect_number (const char **p,
               const char  *header,
               const char  *what,
               guint64     *out,
               GError     **error)
{
  switch (read_number (p, out))
    {
    case NUM_OK:
      return TRUE;
    case NUM_TOO_BIG:
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("%s: %s is larger than %" PRIu64),
                   header, what, ALV_RANGES_MAX_OFFSET);
      return FALSE;
    case NUM_NONE:
    default:
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: expected a number for %s"), header, what);
      return FALSE;
    }
}

/* Matches the unit "bytes" case-insensitively at *p, advancing past it.
 * The unit must end there (not "bytesx"). */
static gboolean
match_bytes_unit (const char **p)
{
  if (g_ascii_strncasecmp (*p, "bytes", 5) != 0)
    return FALSE;
  if (g_ascii_isalnum ((*p)[5]) || (*p)[5] == '-' || (*p)[5] == '_')
    return FALSE;
  *p += 5;
  return TRUE;
}

static gint
compare_range_start (gconstpointer a,
                     gconstpointer b)
{
  const AlvRange *x = a;
  const AlvRange *y = b;

  if (x->start != y->start)
    return x->start < y->start ? -1 : 1;
  if (x->end != y->end)
    return x->end < y->end ? -1 : 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* X-Available-Ranges                                                  */

/**
 * alv_range_set_parse_available:
 * @header_value: the value of an `X-Available-Ranges` header
 * @resource_length: the length of the resource, or 0 when unknown
 * @error: return location for a #GError
 *
 * Parses PFSP's `X-Available-Ranges: bytes 0-10,20-30`, whose ranges are
 * inclusive (`first-last`), both numbers required.  The unit is matched
 * case-insensitively and may be followed by `=` instead of spaces; spaces
 * around the numbers and commas and empty list elements are tolerated.
 * Unsorted and overlapping ranges are coalesced.  When @resource_length
 * is known (non-zero), ranges are clipped to `[0, resource_length)`: a
 * range lying wholly beyond it is dropped silently, so the result may be
 * empty.
 *
 * Errors: %ALV_ERROR_PARSE for a missing or foreign unit, a missing number,
 * a negative or reversed (`last < first`) range, no range at all, or stray
 * characters; %ALV_ERROR_LIMIT for a number above %ALV_RANGES_MAX_OFFSET or
 * more than %ALV_RANGES_MAX_PARSE ranges.
 *
 * Returns: (transfer full): the set of held bytes, or %NULL on error
 */
AlvRangeSet *
alv_range_set_parse_available (const char  *header_value,
                               guint64      resource_length,
                               GError     **error)
{
  static const char header[] = "X-Available-Ranges";
  g_autoptr(GArray) parsed = NULL;
  g_autoptr(AlvRangeSet) set = NULL;
  const char *p;
  guint n = 0;

  g_return_val_if_fail (header_value != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  p = skip_ows (header_value);
  if (!match_bytes_unit (&p))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: the unit “bytes” is missing"), header);
      return NULL;
    }
  if (*p == '=')
    p++;
  else if (!is_ows (*p))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: expected a space after “bytes”"), header);
      return NULL;
    }

  parsed = g_array_new (FALSE, FALSE, sizeof (AlvRange));
  for (;;)
    {
      guint64 first, last;

      p = skip_ows (p);
      if (*p == ',')
        {
          p++;
          continue;
        }
      if (*p == '\0')
        break;

      if (*p == '-')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: range %u has no first byte (negative or suffix ranges are not allowed)"),
                       header, n + 1);
          return NULL;
        }
      if (!expect_number (&p, header, "first byte", &first, error))
        return NULL;
      p = skip_ows (p);
      if (*p != '-')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: expected “-” in range %u"), header, n + 1);
          return NULL;
        }
      p = skip_ows (p + 1);
      if (!expect_number (&p, header, "last byte", &last, error))
        return NULL;
      if (last < first)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: range %u is reversed (%" PRIu64 "-%" PRIu64 ")"),
                       header, n + 1, first, last);
          return NULL;
        }
      if (++n > ALV_RANGES_MAX_PARSE)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                       _("%s: more than %u ranges"), header, ALV_RANGES_MAX_PARSE);
          return NULL;
        }
      g_array_append_val (parsed, ((AlvRange) { first, last + 1 }));

      p = skip_ows (p);
      if (*p != ',' && *p != '\0')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: unexpected character after range %u"), header, n);
          return NULL;
        }
    }

  if (n == 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: no range given"), header);
      return NULL;
    }

  /* sort, then coalesce in one pass: O(n log n) on hostile unsorted input */
  g_array_sort (parsed, compare_range_start);
  set = alv_range_set_new ();
  for (guint i = 0; i < parsed->len; i++)
    {
      const AlvRange *r = &g_array_index (parsed, AlvRange, i);
      append_coalescing (set->ranges, r->start, r->end);
    }
  if (resource_length != 0)
    alv_range_set_clip (set, 0, resource_length);
  return g_steal_pointer (&set);
}

/**
 * alv_range_set_format_available:
 * @set: a set
 *
 * Formats @set as an `X-Available-Ranges` value, e.g. `bytes 0-10,20-30`
 * (inclusive).  alv_range_set_parse_available() reads it back unchanged.
 *
 * Returns: (transfer full) (nullable): the header value, or %NULL when
 *   @set is empty (then send no header)
 */
char *
alv_range_set_format_available (const AlvRangeSet *set)
{
  GString *s;

  g_return_val_if_fail (set != NULL, NULL);

  if (set->ranges->len == 0)
    return NULL;

  s = g_string_new ("bytes ");
  for (guint i = 0; i < set->ranges->len; i++)
    g_string_append_printf (s, "%s%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                            i > 0 ? "," : "",
                            RANGE_AT (set, i)->start, RANGE_AT (set, i)->end - 1);
  return g_string_free (s, FALSE);
}

/* ------------------------------------------------------------------ */
/* HTTP Range (RFC 9110 §14.2)                                         */

typedef struct
{
  gboolean has_first;
  guint64  first;     /* int-range first-pos */
  gboolean has_last;
  guint64  last;      /* int-range last-pos, or suffix-length */
} RangeSpec;

/**
 * alv_http_parse_range:
 * @header_value: the value of a `Range` request header
 * @resource_length: the length of the selected representation
 * @ranges_out: (out) (optional) (element-type AlvRange) (transfer full):
 *   the satisfiable ranges, resolved against @resource_length, sorted and
 *   coalesced (RFC 9110 §14.2 lets a server coalesce)
 * @error: return location for a #GError
 *
 * Parses an HTTP `Range` header (RFC 9110 §14.1.2): the unit `bytes`
 * (case-insensitive), `=`, then a comma-separated list of `first-last`,
 * open `first-` and suffix `-length` specs, with optional whitespace
 * around the elements and empty elements ignored.
 *
 * The result tells the server how to answer:
 *
 * - %TRUE: at least one range is satisfiable; answer 206 with the ranges
 *   in @ranges_out (a spec starting beyond the end is dropped; a last-pos
 *   beyond it is cut; a suffix longer than the resource means all of it).
 * - %FALSE with %ALV_ERROR_INVALID: the header is well-formed but no range
 *   is satisfiable (every first-pos >= the length, or only `-0`); answer
 *   416 with `Content-Range: bytes * /length` (no space: see
 *   alv_http_format_content_range()).
 * - %FALSE with any other code: ignore the header and answer 200 with the
 *   whole representation, as RFC 9110 asks for an invalid Range.  Codes:
 *   %ALV_ERROR_PARSE (syntax, `last < first`), %ALV_ERROR_LIMIT (more than
 *   %ALV_HTTP_RANGE_MAX specs, a number above %ALV_RANGES_MAX_OFFSET),
 *   %ALV_ERROR_UNSUPPORTED (a unit other than bytes; or a non-zero suffix
 *   on an empty representation, which is "satisfiable" but has no bytes to
 *   put in a 206).
 *
 * Returns: %TRUE when @ranges_out holds at least one range
 */
gboolean
alv_http_parse_range (const char  *header_value,
                      guint64      resource_length,
                      GArray     **ranges_out,
                      GError     **error)
{
  static const char header[] = "Range";
  RangeSpec specs[ALV_HTTP_RANGE_MAX];
  guint n_specs = 0;
  g_autoptr(AlvRangeSet) set = NULL;
  gboolean suffix_on_empty = FALSE;
  const char *p;

  g_return_val_if_fail (header_value != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (ranges_out != NULL)
    *ranges_out = NULL;

  p = skip_ows (header_value);
  if (!match_bytes_unit (&p))
    {
      if (g_ascii_isalpha (*p))
        g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                     _("%s: only the unit “bytes” is supported"), header);
      else
        g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                     _("%s: the unit “bytes” is missing"), header);
      return FALSE;
    }
  p = skip_ows (p);
  if (*p != '=')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: expected “=” after the unit"), header);
      return FALSE;
    }
  p++;

  for (;;)
    {
      RangeSpec spec = { FALSE, 0, FALSE, 0 };

      p = skip_ows (p);
      if (*p == ',')
        {
          p++;
          continue;
        }
      if (*p == '\0')
        break;

      if (n_specs >= ALV_HTTP_RANGE_MAX)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                       _("%s: more than %u ranges"), header, ALV_HTTP_RANGE_MAX);
          return FALSE;
        }

      if (*p != '-')
        {
          if (!expect_number (&p, header, "first-pos", &spec.first, error))
            return FALSE;
          spec.has_first = TRUE;
        }
      if (*p != '-')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: expected “-” in range %u"), header, n_specs + 1);
          return FALSE;
        }
      p++;
      if (g_ascii_isdigit (*p))
        {
          if (!expect_number (&p, header,
                              spec.has_first ? "last-pos" : "suffix-length",
                              &spec.last, error))
            return FALSE;
          spec.has_last = TRUE;
        }
      else if (!spec.has_first)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: range %u has neither first-pos nor suffix-length"),
                       header, n_specs + 1);
          return FALSE;
        }
      if (spec.has_first && spec.has_last && spec.last < spec.first)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: range %u is reversed (%" PRIu64 "-%" PRIu64 ")"),
                       header, n_specs + 1, spec.first, spec.last);
          return FALSE;
        }
      specs[n_specs++] = spec;

      p = skip_ows (p);
      if (*p != ',' && *p != '\0')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: unexpected character after range %u"), header, n_specs);
          return FALSE;
        }
    }

  if (n_specs == 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: no range given"), header);
      return FALSE;
    }

  /* resolve against the length (RFC 9110 §14.1.2) */
  set = alv_range_set_new ();
  for (guint i = 0; i < n_specs; i++)
    {
      const RangeSpec *s = &specs[i];

      if (!s->has_first)
        {
          /* suffix: the last s->last bytes, all of them if shorter */
          if (s->last == 0)
            continue;
          if (resource_length == 0)
            {
              suffix_on_empty = TRUE;
              continue;
            }
          alv_range_set_add (set, resource_length - MIN (s->last, resource_length),
                             resource_length);
        }
      else if (s->first < resource_length)
        {
          guint64 end = s->has_last ? MIN (s->last + 1, resource_length)
                                    : resource_length;
          alv_range_set_add (set, s->first, end);
        }
    }

  if (alv_range_set_is_empty (set))
    {
      if (suffix_on_empty)
        g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                     _("%s: a suffix range of an empty representation"), header);
      else
        g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                     _("%s: no range is satisfiable for a length of %" PRIu64),
                     header, resource_length);
      return FALSE;
    }

  if (ranges_out != NULL)
    *ranges_out = g_array_ref (set->ranges);
  return TRUE;
}

/**
 * alv_http_format_range:
 * @start: first byte
 * @end: one past the last byte, or %G_MAXUINT64 for "to the end"
 *
 * Formats a `Range` request header value for `[start, end)`, e.g.
 * `bytes=0-65535`, or the open form `bytes=start-`.
 *
 * Returns: (transfer full): the header value
 */
char *
alv_http_format_range (guint64 start,
                       guint64 end)
{
  g_return_val_if_fail (start < end, NULL);

  if (end == G_MAXUINT64)
    return g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-", start);
  return g_strdup_printf ("bytes=%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                          start, end - 1);
}

/**
 * alv_http_format_range_set:
 * @set: a set
 *
 * Formats a multi-range `Range` request header value, e.g.
 * `bytes=0-9,20-29`.  Callers should keep the number of ranges within
 * %ALV_HTTP_RANGE_MAX, which is what our own parser accepts.
 *
 * Returns: (transfer full) (nullable): the header value, or %NULL for an
 *   empty set
 */
char *
alv_http_format_range_set (const AlvRangeSet *set)
{
  GString *s;

  g_return_val_if_fail (set != NULL, NULL);

  if (set->ranges->len == 0)
    return NULL;

  s = g_string_new ("bytes=");
  for (guint i = 0; i < set->ranges->len; i++)
    g_string_append_printf (s, "%s%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                            i > 0 ? "," : "",
                            RANGE_AT (set, i)->start, RANGE_AT (set, i)->end - 1);
  return g_string_free (s, FALSE);
}

/* ------------------------------------------------------------------ */
/* Content-Range (RFC 9110 §14.4)                                      */

/**
 * alv_http_parse_content_range:
 * @value: the value of a `Content-Range` header
 * @start: (out) (optional): first byte sent
 * @end: (out) (optional): one past the last byte sent
 * @total: (out) (optional): complete length, %G_MAXUINT64 for `*`
 * @error: return location for a #GError
 *
 * Parses `bytes first-last/complete-length`, `bytes first-last/ *` and
 * the unsatisfied form `bytes * /complete-length` (no spaces around the
 * slash; written with one here only to keep this comment open).  The
 * unsatisfied form sets *@start = *@end = 0.
 *
 * Errors: %ALV_ERROR_PARSE for bad syntax or another unit;
 * %ALV_ERROR_LIMIT for a number above %ALV_RANGES_MAX_OFFSET;
 * %ALV_ERROR_INVALID for `last < first` or `last >= complete-length`.
 *
 * Returns: %TRUE on success
 */
gboolean
alv_http_parse_content_range (const char  *value,
                              guint64     *start,
                              guint64     *end,
                              guint64     *total,
                              GError     **error)
{
  static const char header[] = "Content-Range";
  const char *p;
  guint64 first = 0, last = 0, length = G_MAXUINT64;
  gboolean unsatisfied = FALSE;

  g_return_val_if_fail (value != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  p = skip_ows (value);
  if (!match_bytes_unit (&p))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: the unit “bytes” is missing"), header);
      return FALSE;
    }
  if (!is_ows (*p))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: expected a space after “bytes”"), header);
      return FALSE;
    }
  p = skip_ows (p);

  if (*p == '*')
    {
      unsatisfied = TRUE;
      p++;
    }
  else
    {
      if (!expect_number (&p, header, "first-pos", &first, error))
        return FALSE;
      if (*p != '-')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: expected “-” after first-pos"), header);
          return FALSE;
        }
      p++;
      if (!expect_number (&p, header, "last-pos", &last, error))
        return FALSE;
    }

  if (*p != '/')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: expected “/” before the complete length"), header);
      return FALSE;
    }
  p++;
  if (*p == '*' && !unsatisfied)
    p++;
  else if (!expect_number (&p, header, "complete-length", &length, error))
    return FALSE;

  p = skip_ows (p);
  if (*p != '\0')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: unexpected characters at the end"), header);
      return FALSE;
    }

  if (!unsatisfied)
    {
      if (last < first)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                       _("%s: last-pos %" PRIu64 " is before first-pos %" PRIu64),
                       header, last, first);
          return FALSE;
        }
      if (length != G_MAXUINT64 && last >= length)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                       _("%s: last-pos %" PRIu64 " is beyond the complete length %" PRIu64),
                       header, last, length);
          return FALSE;
        }
    }

  if (start != NULL)
    *start = unsatisfied ? 0 : first;
  if (end != NULL)
    *end = unsatisfied ? 0 : last + 1;
  if (total != NULL)
    *total = length;
  return TRUE;
}

/**
 * alv_http_format_content_range:
 * @start: first byte sent
 * @end: one past the last byte sent; equal to @start for the unsatisfied
 *   form of a 416 answer
 * @total: complete length, or %G_MAXUINT64 when unknown
 *
 * Formats `bytes start-(end-1)/total` (`/ *` for an unknown total, without
 * the space), or `bytes * /total` when @start == @end.
 *
 * Returns: (transfer full): the header value
 */
char *
alv_http_format_content_range (guint64 start,
                               guint64 end,
                               guint64 total)
{
  g_return_val_if_fail (start <= end, NULL);
  g_return_val_if_fail (total == G_MAXUINT64 || end <= total, NULL);

  if (start == end)
    {
      g_return_val_if_fail (total != G_MAXUINT64, NULL);
      return g_strdup_printf ("bytes */%" G_GUINT64_FORMAT, total);
    }
  if (total == G_MAXUINT64)
    return g_strdup_printf ("bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "/*",
                            start, end - 1);
  return g_strdup_printf ("bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT,
                          start, end - 1, total);
}
