/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for alv-ranges.h: the header parsers that read what
 * untrusted peers send (`Range`, `Content-Range`, PFSP's
 * `X-Available-Ranges`), the block-map bitfield parser, and the range-set
 * algebra those results feed.  The first input byte selects the mode; the
 * rest is the header value or the operand bytes.  Whatever a parser accepts
 * must satisfy the set invariants (sorted, disjoint, non-touching,
 * non-empty, within bounds) and survive a format/parse round trip
 * unchanged; the set operations are checked against a plain bitmap model
 * over a 256-byte window placed at 0 or right below %G_MAXUINT64.
 */
#define G_LOG_DOMAIN "fuzz-ranges"

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "alv-block-map.h"
#include "alv-error.h"
#include "alv-ranges.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static guint64
read_u64 (const guint8 *p, gsize avail)
{
  guint64 v = 0;

  for (gsize i = 0; i < 8 && i < avail; i++)
    v |= (guint64) p[i] << (8 * i);
  return v;
}

/* Invariants of every #AlvRangeSet; with @limit != 0 every byte is below it. */
static void
check_set (const AlvRangeSet *set, guint64 limit)
{
  guint n = alv_range_set_get_n_ranges (set);
  guint64 total = 0;

  for (guint i = 0; i < n; i++)
    {
      AlvRange r = alv_range_set_get_range (set, i);

      CHECK (r.start < r.end);
      if (limit != 0)
        CHECK (r.end <= limit);
      if (i > 0)
        CHECK (alv_range_set_get_range (set, i - 1).end < r.start);
      total += r.end - r.start;
    }
  CHECK (alv_range_set_total (set) == total);
  CHECK (alv_range_set_is_empty (set) == (n == 0));
}

static void
check_error (const GError *error, gboolean may_be_invalid)
{
  CHECK (error != NULL);
  CHECK (error->domain == ALV_ERROR);
  CHECK (error->message != NULL);
  CHECK (error->code == ALV_ERROR_PARSE ||
         error->code == ALV_ERROR_LIMIT ||
         error->code == ALV_ERROR_UNSUPPORTED ||
         (may_be_invalid && error->code == ALV_ERROR_INVALID));
}

/* ---- X-Available-Ranges ----------------------------------------------- */

static void
fuzz_available (const guint8 *data, gsize size)
{
  guint64 length = 0;
  g_autofree char *text = NULL;
  g_autoptr(AlvRangeSet) set = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *formatted = NULL;

  /* first byte: whether a length follows (and how big it may be) */
  if (size >= 1 && (data[0] & 1))
    {
      length = read_u64 (data + 1, size - 1);
      if (data[0] & 2)
        length %= 100000;
      data += MIN (size, 9);
      size -= MIN (size, 9);
    }
  else if (size >= 1)
    {
      data++;
      size--;
    }
  text = g_strndup ((const char *) data, size);

  set = alv_range_set_parse_available (text, length, &error);
  if (set == NULL)
    {
      check_error (error, FALSE);
      return;
    }
  CHECK (error == NULL);
  check_set (set, length);
  CHECK (alv_range_set_get_n_ranges (set) <= ALV_RANGES_MAX_PARSE);

  formatted = alv_range_set_format_available (set);
  if (alv_range_set_is_empty (set))
    {
      CHECK (formatted == NULL);
      return;
    }
  CHECK (formatted != NULL);

  {
    g_autoptr(AlvRangeSet) again = NULL;
    g_autoptr(AlvRangeSet) again_len = NULL;
    g_autofree char *formatted2 = NULL;

    again = alv_range_set_parse_available (formatted, 0, NULL);
    CHECK (again != NULL && alv_range_set_equal (set, again));
    again_len = alv_range_set_parse_available (formatted, length, NULL);
    CHECK (again_len != NULL && alv_range_set_equal (set, again_len));
    formatted2 = alv_range_set_format_available (again);
    CHECK (g_strcmp0 (formatted, formatted2) == 0);
  }

  /* the same set as a Range request must come back unchanged */
  if (alv_range_set_get_n_ranges (set) <= ALV_HTTP_RANGE_MAX)
    {
      g_autofree char *req = alv_http_format_range_set (set);
      g_autoptr(GArray) ranges = NULL;
      AlvRange last = alv_range_set_get_range (set,
                                               alv_range_set_get_n_ranges (set) - 1);

      CHECK (req != NULL);
      CHECK (alv_http_parse_range (req, last.end, &ranges, NULL));
      CHECK (ranges->len == alv_range_set_get_n_ranges (set));
      for (guint i = 0; i < ranges->len; i++)
        {
          AlvRange a = g_array_index (ranges, AlvRange, i);
          AlvRange b = alv_range_set_get_range (set, i);

          CHECK (a.start == b.start && a.end == b.end);
        }
    }
}

/* ---- Range ------------------------------------------------------------ */

static void
fuzz_range (const guint8 *data, gsize size)
{
  guint64 length;
  g_autofree char *text = NULL;
  g_autoptr(GArray) ranges = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvRangeSet) set = NULL;

  if (size < 1)
    return;
  /* first byte picks the length: small, huge or taken from the input */
  switch (data[0] % 4)
    {
    case 0:
      length = data[0] / 4;
      data += 1;
      size -= 1;
      break;
    case 1:
      length = read_u64 (data + 1, size - 1) % 1000000;
      data += MIN (size, 9);
      size -= MIN (size, 9);
      break;
    case 2:
      length = ALV_RANGES_MAX_OFFSET - data[0] / 4;
      data += 1;
      size -= 1;
      break;
    default:
      /* a representation is never longer than an off_t can say */
      length = read_u64 (data + 1, size - 1) & ALV_RANGES_MAX_OFFSET;
      data += MIN (size, 9);
      size -= MIN (size, 9);
      break;
    }
  text = g_strndup ((const char *) data, size);

  if (!alv_http_parse_range (text, length, &ranges, &error))
    {
      check_error (error, TRUE);
      CHECK (ranges == NULL);
      return;
    }
  CHECK (error == NULL);
  CHECK (ranges != NULL && ranges->len >= 1);
  CHECK (ranges->len <= ALV_HTTP_RANGE_MAX);

  set = alv_range_set_new ();
  for (guint i = 0; i < ranges->len; i++)
    {
      AlvRange r = g_array_index (ranges, AlvRange, i);

      CHECK (r.start < r.end && r.end <= length);
      if (i > 0)
        CHECK (g_array_index (ranges, AlvRange, i - 1).end < r.start);
      alv_range_set_add (set, r.start, r.end);
    }
  CHECK (alv_range_set_get_n_ranges (set) == ranges->len);

  /* our own formatting of the resolved ranges parses back to them */
  {
    g_autofree char *req = alv_http_format_range_set (set);
    g_autoptr(GArray) again = NULL;

    CHECK (req != NULL);
    CHECK (alv_http_parse_range (req, length, &again, NULL));
    CHECK (again->len == ranges->len);
    CHECK (memcmp (again->data, ranges->data,
                   ranges->len * sizeof (AlvRange)) == 0);
  }

  /* a single range: the 206 header we would answer with must parse */
  if (ranges->len == 1)
    {
      AlvRange r = g_array_index (ranges, AlvRange, 0);
      g_autofree char *cr = alv_http_format_content_range (r.start, r.end,
                                                           length);
      guint64 s, e, t;

      CHECK (alv_http_parse_content_range (cr, &s, &e, &t, NULL));
      CHECK (s == r.start && e == r.end && t == length);
    }
}

/* ---- Content-Range ---------------------------------------------------- */

static void
fuzz_content_range (const guint8 *data, gsize size)
{
  g_autofree char *text = g_strndup ((const char *) data, size);
  g_autoptr(GError) error = NULL;
  g_autofree char *formatted = NULL;
  guint64 start = 1, end = 1, total = 1;
  guint64 start2, end2, total2;

  if (!alv_http_parse_content_range (text, &start, &end, &total, &error))
    {
      CHECK (error != NULL && error->domain == ALV_ERROR);
      CHECK (error->code == ALV_ERROR_PARSE || error->code == ALV_ERROR_LIMIT ||
             error->code == ALV_ERROR_INVALID);
      return;
    }
  CHECK (error == NULL);
  CHECK (start <= end);
  CHECK (total == G_MAXUINT64 || end <= total);
  CHECK (total == G_MAXUINT64 || total <= ALV_RANGES_MAX_OFFSET);
  if (start == end)
    CHECK (start == 0 && total != G_MAXUINT64);

  formatted = alv_http_format_content_range (start, end, total);
  CHECK (formatted != NULL);
  CHECK (alv_http_parse_content_range (formatted, &start2, &end2, &total2,
                                       NULL));
  CHECK (start == start2 && end == end2 && total == total2);

  /* without out parameters it must answer the same */
  CHECK (alv_http_parse_content_range (text, NULL, NULL, NULL, NULL));
}

/* ---- formatters with arbitrary numbers -------------------------------- */

static void
fuzz_formatters (const guint8 *data, gsize size)
{
  guint64 a, b, length;

  if (size < 17)
    return;
  a = read_u64 (data + 1, 8);
  b = read_u64 (data + 9, 8);
  length = size >= 25 ? read_u64 (data + 17, 8) : G_MAXUINT64;
  if (data[0] & 1)
    {
      a >>= data[0] % 64;
      b >>= (data[0] / 2) % 64;
    }
  a &= ALV_RANGES_MAX_OFFSET;
  b &= ALV_RANGES_MAX_OFFSET;
  if (a > b)
    {
      guint64 t = a;
      a = b;
      b = t;
    }
  if (a == b && b == ALV_RANGES_MAX_OFFSET)
    a--;
  else if (a == b)
    b++;  /* [a, b) with b <= ALV_RANGES_MAX_OFFSET: totals stay parsable */

  /* bytes=a-(b-1) against a length */
  length &= ALV_RANGES_MAX_OFFSET;
  {
    g_autofree char *req = alv_http_format_range (a, b);
    g_autofree char *open_req = alv_http_format_range (a, G_MAXUINT64);
    g_autoptr(GArray) ranges = NULL;
    g_autoptr(GArray) open_ranges = NULL;
    g_autoptr(GError) error = NULL;
    gboolean ok = alv_http_parse_range (req, length, &ranges, &error);

    CHECK (ok == (a < length));
    if (ok)
      {
        AlvRange r = g_array_index (ranges, AlvRange, 0);

        CHECK (ranges->len == 1 && r.start == a && r.end == MIN (b, length));
      }
    else
      CHECK (g_error_matches (error, ALV_ERROR, ALV_ERROR_INVALID));

    ok = alv_http_parse_range (open_req, length, &open_ranges, NULL);
    CHECK (ok == (a < length));
    if (ok)
      CHECK (g_array_index (open_ranges, AlvRange, 0).end == length);
  }

  /* Content-Range for [a, b) of a total >= b, known or not */
  {
    guint64 total = MAX (b, length);
    g_autofree char *known = alv_http_format_content_range (a, b, total);
    g_autofree char *unknown = alv_http_format_content_range (a, b, G_MAXUINT64);
    g_autofree char *unsat = alv_http_format_content_range (0, 0, total);
    guint64 s, e, t;

    CHECK (alv_http_parse_content_range (known, &s, &e, &t, NULL));
    CHECK (s == a && e == b && t == total);
    CHECK (alv_http_parse_content_range (unknown, &s, &e, &t, NULL));
    CHECK (s == a && e == b && t == G_MAXUINT64);
    CHECK (alv_http_parse_content_range (unsat, &s, &e, &t, NULL));
    CHECK (s == 0 && e == 0 && t == total);
  }
}

/* ---- block maps ------------------------------------------------------- */

static void
fuzz_block_map (const guint8 *data, gsize size)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(AlvBlockMap) map = NULL;
  g_autoptr(GError) error = NULL;
  guint n_blocks;
  guint32 block_size;
  guint64 length;
  guint count = 0;
  gboolean tail_clear;

  if (size < 3)
    return;
  block_size = 1u << (data[1] % 24);
  n_blocks = (guint) (size - 3) * 8;
  n_blocks = n_blocks >= data[0] % 8 ? n_blocks - data[0] % 8 : 0;
  if (n_blocks > 0 && n_blocks % 8 == 0 && (data[0] & 0x80))
    n_blocks -= 8;  /* a size mismatch now and then */
  length = n_blocks == 0 ? 0 :
    (guint64) (n_blocks - 1) * block_size + 1 + (data[2] * 2654435761u) % block_size;
  bytes = g_bytes_new (data + 3, size - 3);
  tail_clear = (n_blocks % 8 == 0) ||
               (data[size - 1] & (0xff >> (n_blocks % 8))) == 0;

  CHECK (alv_block_count_for_length (length, block_size) == n_blocks);

  map = alv_block_map_new_from_bytes (bytes, n_blocks, &error);
  if (map == NULL)
    {
      CHECK (g_error_matches (error, ALV_ERROR, ALV_ERROR_INVALID));
      CHECK (size - 3 != (n_blocks + 7) / 8 || !tail_clear);
      return;
    }
  CHECK (error == NULL);
  CHECK (size - 3 == (n_blocks + 7) / 8 && tail_clear);
  CHECK (alv_block_map_get_n_blocks (map) == n_blocks);

  for (guint i = 0; i < n_blocks; i++)
    {
      gboolean bit = (data[3 + i / 8] >> (7 - i % 8)) & 1;

      CHECK (alv_block_map_get (map, i) == bit);
      count += bit;
    }
  CHECK (!alv_block_map_get (map, n_blocks));
  CHECK (alv_block_map_count (map) == count);
  CHECK (alv_block_map_is_complete (map) == (count == n_blocks));

  {
    g_autoptr(GBytes) again = alv_block_map_to_bytes (map);
    g_autoptr(AlvBlockMap) copy = alv_block_map_copy (map);

    CHECK (g_bytes_equal (again, bytes));
    CHECK (alv_block_map_equal (map, copy));
  }

  /* the iterators agree with alv_block_map_get() */
  {
    guint i = 0, seen = 0;

    while ((i = alv_block_map_first_set_after (map, i)) < n_blocks)
      {
        guint j = alv_block_map_first_missing_after (map, i);

        CHECK (j > i && j <= n_blocks);
        for (guint k = i; k < j; k++)
          CHECK (alv_block_map_get (map, k));
        CHECK (j == n_blocks || !alv_block_map_get (map, j));
        seen += j - i;
        i = j;
      }
    CHECK (i == n_blocks && seen == count);
  }

  /* to a byte-range set and back */
  {
    g_autoptr(AlvRangeSet) set = alv_block_map_to_range_set (map, block_size,
                                                             length);
    g_autoptr(AlvBlockMap) back = NULL;
    guint64 expect_total = (guint64) count * block_size;

    check_set (set, length == 0 ? 1 : length);
    if (n_blocks > 0 && alv_block_map_get (map, n_blocks - 1))
      expect_total -= (guint64) n_blocks * block_size - length;
    CHECK (alv_range_set_total (set) == expect_total);
    for (guint r = 0; r < alv_range_set_get_n_ranges (set); r++)
      {
        AlvRange range = alv_range_set_get_range (set, r);
        AlvRange first = alv_block_get_range ((guint) (range.start / block_size),
                                              block_size, length);

        CHECK (range.start % block_size == 0);
        CHECK (first.start == range.start);
      }
    back = alv_block_map_new_from_range_set (set, block_size, length);
    CHECK (back != NULL && alv_block_map_equal (map, back));
  }

  /* rarest-first: the first missing block of least availability */
  if (n_blocks > 0)
    {
      g_autofree guint *avail = g_new (guint, n_blocks);
      g_autoptr(AlvBlockMap) candidate = alv_block_map_new (n_blocks);
      guint from = data[1] % n_blocks;
      guint to = from + data[2];
      guint picked = G_MAXUINT;
      gboolean found;
      guint best = G_MAXUINT, best_i = G_MAXUINT;

      for (guint i = 0; i < n_blocks; i++)
        {
          avail[i] = (i * 2654435761u + data[2]) % 7;
          if ((i * 40503u) & 0x100)
            alv_block_map_set (candidate, i);
        }
      for (guint i = from; i < MIN (to, n_blocks); i++)
        if (!alv_block_map_get (map, i) && alv_block_map_get (candidate, i) &&
            avail[i] < best)
          {
            best = avail[i];
            best_i = i;
          }
      found = alv_block_map_pick_rarest (map, avail, candidate, from, to, NULL,
                                         &picked);
      CHECK (found == (best_i != G_MAXUINT));
      if (found)
        CHECK (picked == best_i);
    }

  /* set_all and clearing every other bit keep the count right */
  {
    g_autoptr(AlvBlockMap) all = alv_block_map_copy (map);

    alv_block_map_set_all (all);
    CHECK (alv_block_map_is_complete (all));
    CHECK (alv_block_map_first_missing_after (all, 0) == n_blocks);
    for (guint i = 0; i < n_blocks; i += 2)
      alv_block_map_clear (all, i);
    CHECK (alv_block_map_count (all) == n_blocks / 2);
  }
}

/* ---- range-set algebra against a bitmap model ------------------------- */

#define WINDOW 256

typedef struct
{
  gboolean bit[WINDOW];
} Model;

static void
model_fill (Model *m, guint s, guint e, gboolean value)
{
  for (guint i = s; i < e && i < WINDOW; i++)
    m->bit[i] = value;
}

static void
check_against_model (const AlvRangeSet *set, const Model *m, guint64 base)
{
  Model seen;
  guint n = alv_range_set_get_n_ranges (set);

  check_set (set, 0);
  memset (&seen, 0, sizeof seen);
  for (guint i = 0; i < n; i++)
    {
      AlvRange r = alv_range_set_get_range (set, i);

      CHECK (r.start >= base && r.end - base <= WINDOW);
      model_fill (&seen, (guint) (r.start - base), (guint) (r.end - base), TRUE);
    }
  CHECK (memcmp (&seen, m, sizeof seen) == 0);
}

static void
check_queries (const AlvRangeSet *set, const Model *m, guint64 base,
               guint s, guint e)
{
  gboolean all = TRUE, any = FALSE;
  guint first_missing = e;
  AlvRange cover;

  for (guint i = s; i < e; i++)
    {
      all = all && m->bit[i];
      any = any || m->bit[i];
      if (!m->bit[i] && first_missing == e)
        first_missing = i;
    }
  CHECK (alv_range_set_contains (set, base + s, base + e) == all);
  CHECK (alv_range_set_overlaps (set, base + s, base + e) == any);
  CHECK (alv_range_set_first_missing_after (set, base + s, base + e) ==
         base + (s < e ? first_missing : e));

  if (s < WINDOW)
    {
      CHECK (alv_range_set_contains_offset (set, base + s) == m->bit[s]);
      if (alv_range_set_get_covering (set, base + s, &cover))
        {
          guint lo = s, hi = s;

          CHECK (m->bit[s]);
          while (lo > 0 && m->bit[lo - 1])
            lo--;
          while (hi < WINDOW && m->bit[hi])
            hi++;
          CHECK (cover.start == base + lo && cover.end == base + hi);
        }
      else
        CHECK (!m->bit[s]);
    }
}

static void
fuzz_algebra (const guint8 *data, gsize size)
{
  g_autoptr(AlvRangeSet) a = alv_range_set_new ();
  g_autoptr(AlvRangeSet) b = alv_range_set_new ();
  Model ma, mb;
  /* the window sits at 0 or ends exactly at G_MAXUINT64 */
  guint64 base = (size > 0 && (data[0] & 1)) ? G_MAXUINT64 - WINDOW : 0;

  memset (&ma, 0, sizeof ma);
  memset (&mb, 0, sizeof mb);
  if (size > 0)
    {
      data++;
      size--;
    }

  for (gsize i = 0; i + 3 <= size; i += 3)
    {
      guint op = data[i];
      guint x = MIN (data[i + 1], data[i + 2]);
      guint y = MAX (data[i + 1], data[i + 2]) + ((op & 0x10) ? 1 : 0);
      guint64 s = base + x, e = base + y;

      switch (op % 12)
        {
        case 0:
          alv_range_set_add (a, s, e);
          model_fill (&ma, x, y, TRUE);
          break;
        case 1:
          alv_range_set_remove (a, s, e);
          model_fill (&ma, x, y, FALSE);
          break;
        case 2:
          alv_range_set_add (b, s, e);
          model_fill (&mb, x, y, TRUE);
          break;
        case 3:
          alv_range_set_remove (b, s, e);
          model_fill (&mb, x, y, FALSE);
          break;
        case 4:
          alv_range_set_clip (a, s, e);
          model_fill (&ma, 0, x, FALSE);
          model_fill (&ma, MAX (x, y), WINDOW, FALSE);
          break;
        case 5:
          alv_range_set_add_set (a, b);
          for (guint k = 0; k < WINDOW; k++)
            ma.bit[k] = ma.bit[k] || mb.bit[k];
          break;
        case 6:
          alv_range_set_subtract (a, b);
          for (guint k = 0; k < WINDOW; k++)
            ma.bit[k] = ma.bit[k] && !mb.bit[k];
          break;
        case 7:
          alv_range_set_intersect_with (a, b);
          for (guint k = 0; k < WINDOW; k++)
            ma.bit[k] = ma.bit[k] && mb.bit[k];
          break;
        case 8:
          {
            g_autoptr(AlvRangeSet) u = alv_range_set_union (a, b);
            g_autoptr(AlvRangeSet) d = alv_range_set_difference (a, b);
            g_autoptr(AlvRangeSet) n = alv_range_set_intersect (a, b);
            g_autoptr(AlvRangeSet) back = alv_range_set_union (d, n);
            Model mu, md, mn;

            for (guint k = 0; k < WINDOW; k++)
              {
                mu.bit[k] = ma.bit[k] || mb.bit[k];
                md.bit[k] = ma.bit[k] && !mb.bit[k];
                mn.bit[k] = ma.bit[k] && mb.bit[k];
              }
            check_against_model (u, &mu, base);
            check_against_model (d, &md, base);
            check_against_model (n, &mn, base);
            CHECK (alv_range_set_equal (back, a));
          }
          break;
        case 9:
          {
            /* b becomes a copy of a */
            g_autoptr(AlvRangeSet) copy = alv_range_set_copy (a);

            alv_range_set_clear (b);
            alv_range_set_add_set (b, copy);
            mb = ma;
            CHECK (alv_range_set_equal (a, b));
          }
          break;
        case 10:
          {
            g_autoptr(AlvRangeSet) single = alv_range_set_new_single (s, e);
            Model ms;

            memset (&ms, 0, sizeof ms);
            model_fill (&ms, x, y, TRUE);
            check_against_model (single, &ms, base);
            alv_range_set_add_set (b, single);
            model_fill (&mb, x, y, TRUE);
          }
          break;
        default:
          check_queries (a, &ma, base, x, MIN (y, (guint) WINDOW));
          check_queries (b, &mb, base, x, MIN (y, (guint) WINDOW));
          break;
        }
      check_against_model (a, &ma, base);
      check_against_model (b, &mb, base);
    }

  /* whatever was built formats and parses back the same */
  if (!alv_range_set_is_empty (a))
    {
      g_autofree char *text = alv_range_set_format_available (a);
      g_autoptr(AlvRangeSet) again = NULL;
      AlvRange last = alv_range_set_get_range (a, alv_range_set_get_n_ranges (a) - 1);

      if (last.end - 1 <= ALV_RANGES_MAX_OFFSET)
        {
          again = alv_range_set_parse_available (text, 0, NULL);
          CHECK (again != NULL && alv_range_set_equal (a, again));
        }
      else
        CHECK (alv_range_set_parse_available (text, 0, NULL) == NULL);
    }
  else
    CHECK (alv_range_set_format_available (a) == NULL);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  fuzz_init ();
  if (size < 1)
    return 0;

  switch (data[0] % 6)
    {
    case 0:
      fuzz_available (data + 1, size - 1);
      break;
    case 1:
      fuzz_range (data + 1, size - 1);
      break;
    case 2:
      fuzz_content_range (data + 1, size - 1);
      break;
    case 3:
      fuzz_block_map (data + 1, size - 1);
      break;
    case 4:
      fuzz_algebra (data + 1, size - 1);
      break;
    default:
      fuzz_formatters (data + 1, size - 1);
      break;
    }
  return 0;
}
