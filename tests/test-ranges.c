/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of common/alv-ranges.h: range-set algebra (also cross-checked
 * against a naive byte-array model with random operations from a fixed
 * seed), the X-Available-Ranges, Range and Content-Range headers with
 * hostile inputs, and block maps with the rarest-first picker.
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "alv-block-map.h"
#include "alv-error.h"
#include "alv-ranges.h"

/* "bytes a-b,c-d" of a set, or "" when empty */
static char *
set_to_string (const AlvRangeSet *set)
{
  char *s = alv_range_set_format_available (set);

  return s != NULL ? s : g_strdup ("");
}

#define assert_set(set, expected) \
  G_STMT_START { \
    g_autofree char *_s = set_to_string (set); \
    g_assert_cmpstr (_s, ==, expected); \
  } G_STMT_END

/* sorted, disjoint, non-touching, non-empty */
static void
assert_invariants (const AlvRangeSet *set)
{
  guint n = alv_range_set_get_n_ranges (set);

  for (guint i = 0; i < n; i++)
    {
      AlvRange r = alv_range_set_get_range (set, i);

      g_assert_cmpuint (r.start, <, r.end);
      if (i > 0)
        {
          AlvRange prev = alv_range_set_get_range (set, i - 1);
          g_assert_cmpuint (prev.end, <, r.start);
        }
    }
}

static void
test_set_basic (void)
{
  g_autoptr(AlvRangeSet) set = alv_range_set_new ();
  g_autoptr(AlvRangeSet) copy = NULL;
  AlvRange r;

  g_assert_true (alv_range_set_is_empty (set));
  assert_set (set, "");
  alv_range_set_add (set, 10, 10);        /* empty span: nothing */
  g_assert_true (alv_range_set_is_empty (set));

  alv_range_set_add (set, 10, 20);
  alv_range_set_add (set, 30, 40);
  assert_set (set, "bytes 10-19,30-39");
  alv_range_set_add (set, 20, 30);        /* touching both: one range */
  assert_set (set, "bytes 10-39");
  g_assert_cmpuint (alv_range_set_get_n_ranges (set), ==, 1);

  alv_range_set_add (set, 0, 5);
  alv_range_set_add (set, 50, 60);
  alv_range_set_add (set, 3, 12);         /* overlaps two */
  assert_set (set, "bytes 0-39,50-59");
  g_assert_cmpuint (alv_range_set_total (set), ==, 50);

  alv_range_set_remove (set, 5, 8);       /* split */
  assert_set (set, "bytes 0-4,8-39,50-59");
  alv_range_set_remove (set, 30, 55);     /* across a gap */
  assert_set (set, "bytes 0-4,8-29,55-59");
  alv_range_set_remove (set, 100, 200);   /* nothing there */
  alv_range_set_remove (set, 0, 5);       /* exactly a range */
  assert_set (set, "bytes 8-29,55-59");

  g_assert_true (alv_range_set_contains (set, 8, 30));
  g_assert_false (alv_range_set_contains (set, 8, 31));
  g_assert_false (alv_range_set_contains (set, 7, 9));
  g_assert_true (alv_range_set_contains (set, 100, 100));
  g_assert_false (alv_range_set_contains (set, 29, 56));
  g_assert_true (alv_range_set_contains_offset (set, 29));
  g_assert_false (alv_range_set_contains_offset (set, 30));
  g_assert_false (alv_range_set_contains_offset (set, G_MAXUINT64));
  g_assert_true (alv_range_set_overlaps (set, 0, 9));
  g_assert_false (alv_range_set_overlaps (set, 30, 55));
  g_assert_true (alv_range_set_overlaps (set, 30, 56));

  g_assert_true (alv_range_set_get_covering (set, 20, &r));
  g_assert_cmpuint (r.start, ==, 8);
  g_assert_cmpuint (r.end, ==, 30);
  g_assert_false (alv_range_set_get_covering (set, 30, &r));

  g_assert_cmpuint (alv_range_set_first_missing_after (set, 0, 100), ==, 0);
  g_assert_cmpuint (alv_range_set_first_missing_after (set, 8, 100), ==, 30);
  g_assert_cmpuint (alv_range_set_first_missing_after (set, 8, 20), ==, 20);
  g_assert_cmpuint (alv_range_set_first_missing_after (set, 57, 100), ==, 60);
  g_assert_cmpuint (alv_range_set_first_missing_after (set, 50, 40), ==, 40);

  copy = alv_range_set_copy (set);
  g_assert_true (alv_range_set_equal (set, copy));
  alv_range_set_clip (copy, 10, 57);
  assert_set (copy, "bytes 10-29,55-56");
  g_assert_false (alv_range_set_equal (set, copy));
  alv_range_set_clip (copy, 5, 5);
  g_assert_true (alv_range_set_is_empty (copy));

  /* the far end of the number line */
  alv_range_set_add (set, G_MAXUINT64 - 10, G_MAXUINT64);
  g_assert_true (alv_range_set_contains (set, G_MAXUINT64 - 1, G_MAXUINT64));
  g_assert_cmpuint (alv_range_set_total (set), ==, 22 + 5 + 10);
  alv_range_set_clear (set);
  g_assert_true (alv_range_set_is_empty (set));
}

static void
test_set_algebra (void)
{
  g_autoptr(AlvRangeSet) a = alv_range_set_new ();
  g_autoptr(AlvRangeSet) b = alv_range_set_new ();
  g_autoptr(AlvRangeSet) u = NULL;
  g_autoptr(AlvRangeSet) d = NULL;
  g_autoptr(AlvRangeSet) i = NULL;
  g_autoptr(AlvRangeSet) inplace = NULL;

  alv_range_set_add (a, 0, 10);
  alv_range_set_add (a, 20, 30);
  alv_range_set_add (a, 40, 50);
  alv_range_set_add (b, 5, 25);
  alv_range_set_add (b, 30, 40);
  alv_range_set_add (b, 45, 46);

  u = alv_range_set_union (a, b);
  assert_set (u, "bytes 0-49");
  d = alv_range_set_difference (a, b);
  assert_set (d, "bytes 0-4,25-29,40-44,46-49");
  i = alv_range_set_intersect (a, b);
  assert_set (i, "bytes 5-9,20-24,45-45");

  inplace = alv_range_set_copy (a);
  alv_range_set_add_set (inplace, b);
  g_assert_true (alv_range_set_equal (inplace, u));
  alv_range_set_subtract (inplace, b);
  assert_set (inplace, "bytes 0-4,25-29,40-44,46-49");
  alv_range_set_intersect_with (inplace, a);
  g_assert_true (alv_range_set_equal (inplace, d));
}

/* One random op on both the set and the model; the model is one byte per
 * offset of [0, MODEL_SIZE). */
#define MODEL_SIZE 300

static void
random_span (GRand   *rand,
             guint64 *start,
             guint64 *end)
{
  guint64 len;

  *start = (guint64) g_rand_int_range (rand, 0, MODEL_SIZE);
  len = (guint64) g_rand_int_range (rand, 0, 60);   /* MIN() evaluates twice */
  *end = MIN (*start + len, MODEL_SIZE);
}

static void
model_from_random (GRand       *rand,
                   AlvRangeSet *set,
                   guint8      *model)
{
  guint n = (guint) g_rand_int_range (rand, 0, 8);

  memset (model, 0, MODEL_SIZE);
  alv_range_set_clear (set);
  for (guint k = 0; k < n; k++)
    {
      guint64 s, e;

      random_span (rand, &s, &e);
      alv_range_set_add (set, s, e);
      memset (model + s, 1, e - s);
    }
}

static void
assert_matches_model (const AlvRangeSet *set,
                      const guint8      *model)
{
  guint64 total = 0;

  assert_invariants (set);
  for (guint64 x = 0; x < MODEL_SIZE; x++)
    {
      guint64 missing = x;

      g_assert_cmpint (alv_range_set_contains_offset (set, x), ==, model[x]);
      total += model[x];
      while (missing < MODEL_SIZE && model[missing])
        missing++;
      g_assert_cmpuint (alv_range_set_first_missing_after (set, x, MODEL_SIZE), ==, missing);
    }
  if (alv_range_set_total (set) != total)
    {
      g_autofree char *dbg = set_to_string (set);
      g_test_message ("set %s", dbg);
    }
  g_assert_cmpuint (alv_range_set_total (set), ==, total);
  if (alv_range_set_get_n_ranges (set) > 0)
    g_assert_cmpuint (alv_range_set_get_range (set, alv_range_set_get_n_ranges (set) - 1).end,
                      <=, MODEL_SIZE);
}

static void
test_set_random (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20030214);
  g_autoptr(AlvRangeSet) set = alv_range_set_new ();
  g_autoptr(AlvRangeSet) other = alv_range_set_new ();
  guint8 model[MODEL_SIZE];
  guint8 other_model[MODEL_SIZE];

  memset (model, 0, sizeof model);
  for (guint iter = 0; iter < 4000; iter++)
    {
      guint64 s, e;
      guint op = (guint) g_rand_int_range (rand, 0, 8);

      random_span (rand, &s, &e);
      switch (op)
        {
        case 0:
        case 1:
          alv_range_set_add (set, s, e);
          memset (model + s, 1, e - s);
          break;
        case 2:
        case 3:
          alv_range_set_remove (set, s, e);
          memset (model + s, 0, e - s);
          break;
        case 4:
          model_from_random (rand, other, other_model);
          alv_range_set_add_set (set, other);
          for (guint x = 0; x < MODEL_SIZE; x++)
            model[x] |= other_model[x];
          break;
        case 5:
          model_from_random (rand, other, other_model);
          alv_range_set_subtract (set, other);
          for (guint x = 0; x < MODEL_SIZE; x++)
            model[x] &= !other_model[x];
          break;
        case 6:
          {
            g_autoptr(AlvRangeSet) result = NULL;

            model_from_random (rand, other, other_model);
            /* keep the set from emptying too often: union first */
            alv_range_set_add (other, 0, MODEL_SIZE / 2);
            memset (other_model, 1, MODEL_SIZE / 2);
            result = alv_range_set_intersect (set, other);
            alv_range_set_free (set);
            set = g_steal_pointer (&result);
            for (guint x = 0; x < MODEL_SIZE; x++)
              model[x] &= other_model[x];
          }
          break;
        case 7:
          {
            gboolean expect = TRUE;
            gboolean any = FALSE;

            for (guint64 x = s; x < e; x++)
              {
                expect = expect && model[x];
                any = any || model[x];
              }
            g_assert_cmpint (alv_range_set_contains (set, s, e), ==, expect);
            g_assert_cmpint (alv_range_set_overlaps (set, s, e), ==, any);
          }
          break;
        default:
          g_assert_not_reached ();
        }
      if (g_test_verbose ())
        {
          g_autofree char *dbg = set_to_string (set);
          g_test_message ("iter %u op %u span %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT " -> %s", iter, op, s, e, dbg);
        }
      assert_matches_model (set, model);

      /* round trip through the header form */
      if (!alv_range_set_is_empty (set))
        {
          g_autofree char *text = alv_range_set_format_available (set);
          g_autoptr(AlvRangeSet) back = NULL;
          g_autoptr(GError) error = NULL;

          back = alv_range_set_parse_available (text, 0, &error);
          g_assert_no_error (error);
          g_assert_true (alv_range_set_equal (set, back));
        }
    }
}

static void
test_available_parse (void)
{
  struct { const char *in; guint64 length; const char *out; } good[] = {
    { "bytes 0-10,20-30", 0, "bytes 0-10,20-30" },
    { "bytes 0-0", 0, "bytes 0-0" },
    { "  BYTES   20-30 , 0-10 ,", 0, "bytes 0-10,20-30" },
    { "bytes=5-9", 0, "bytes 5-9" },
    { "bytes 0-10,5-20,21-21,100-200", 0, "bytes 0-21,100-200" },
    { "bytes 0 - 10", 0, "bytes 0-10" },
    { "bytes 0-10,20-30", 25, "bytes 0-10,20-24" },    /* clipped */
    { "bytes 0-10,200-300", 100, "bytes 0-10" },       /* dropped */
    { "bytes 200-300", 100, "" },                      /* all beyond */
    { "bytes 9223372036854775806-9223372036854775806", 0,
      "bytes 9223372036854775806-9223372036854775806" },
  };
  struct { const char *in; AlvError code; } bad[] = {
    { "", ALV_ERROR_PARSE },
    { "0-10", ALV_ERROR_PARSE },                       /* missing unit */
    { "octets 0-10", ALV_ERROR_PARSE },
    { "bytes0-10", ALV_ERROR_PARSE },
    { "bytes ", ALV_ERROR_PARSE },
    { "bytes ,,", ALV_ERROR_PARSE },
    { "bytes -5", ALV_ERROR_PARSE },                   /* negative / suffix */
    { "bytes 0--5", ALV_ERROR_PARSE },
    { "bytes 10-5", ALV_ERROR_PARSE },                 /* reversed */
    { "bytes 0-", ALV_ERROR_PARSE },
    { "bytes 0-10;20-30", ALV_ERROR_PARSE },
    { "bytes 0-10 20-30", ALV_ERROR_PARSE },
    { "bytes 0x10-20", ALV_ERROR_PARSE },
    { "bytes +1-2", ALV_ERROR_PARSE },
    { "bytes 0-9223372036854775808", ALV_ERROR_LIMIT }, /* 2^63 */
    { "bytes 0-18446744073709551616", ALV_ERROR_LIMIT }, /* 2^64 */
    { "bytes 0-99999999999999999999999999999999999999", ALV_ERROR_LIMIT },
    { "bytes 18446744073709551615-18446744073709551615", ALV_ERROR_LIMIT },
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AlvRangeSet) set = alv_range_set_parse_available (good[i].in, good[i].length, &error);

      g_test_message ("good: %s", good[i].in);
      g_assert_no_error (error);
      g_assert_nonnull (set);
      assert_invariants (set);
      assert_set (set, good[i].out);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AlvRangeSet) set = alv_range_set_parse_available (bad[i].in, 0, &error);

      g_test_message ("bad: %s", bad[i].in);
      g_assert_error (error, ALV_ERROR, (gint) bad[i].code);
      g_assert_null (set);
      g_assert_nonnull (strstr (error->message, "X-Available-Ranges"));
    }
}

static void
test_available_many (void)
{
  g_autoptr(GString) s = g_string_new ("bytes ");
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvRangeSet) set = NULL;

  /* exactly the limit, unsorted: accepted and sorted */
  for (guint i = ALV_RANGES_MAX_PARSE; i > 0; i--)
    g_string_append_printf (s, "%s%u-%u", i == ALV_RANGES_MAX_PARSE ? "" : ",",
                            i * 10, i * 10 + 4);
  set = alv_range_set_parse_available (s->str, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (alv_range_set_get_n_ranges (set), ==, ALV_RANGES_MAX_PARSE);
  assert_invariants (set);
  g_clear_pointer (&set, alv_range_set_free);

  /* 100k ranges: refused */
  g_string_assign (s, "bytes ");
  for (guint i = 0; i < 100000; i++)
    g_string_append_printf (s, "%s%u-%u", i == 0 ? "" : ",", i * 3, i * 3 + 1);
  set = alv_range_set_parse_available (s->str, 0, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_assert_null (set);
}

static GArray *
parse_range_ok (const char *value,
                guint64     length)
{
  g_autoptr(GError) error = NULL;
  GArray *ranges = NULL;

  g_test_message ("Range: %s (length %" G_GUINT64_FORMAT ")", value, length);
  g_assert_true (alv_http_parse_range (value, length, &ranges, &error));
  g_assert_no_error (error);
  g_assert_nonnull (ranges);
  return ranges;
}

#define assert_range(ranges, i, s, e) \
  G_STMT_START { \
    g_assert_cmpuint (g_array_index (ranges, AlvRange, i).start, ==, s); \
    g_assert_cmpuint (g_array_index (ranges, AlvRange, i).end, ==, e); \
  } G_STMT_END

static void
test_http_range (void)
{
  struct { const char *in; guint64 length; AlvError code; } bad[] = {
    { "", 1000, ALV_ERROR_PARSE },
    { "garbage", 1000, ALV_ERROR_UNSUPPORTED },
    { "items=0-5", 1000, ALV_ERROR_UNSUPPORTED },
    { "=0-5", 1000, ALV_ERROR_PARSE },
    { "bytes 0-5", 1000, ALV_ERROR_PARSE },
    { "bytes=", 1000, ALV_ERROR_PARSE },
    { "bytes=,", 1000, ALV_ERROR_PARSE },
    { "bytes=-", 1000, ALV_ERROR_PARSE },
    { "bytes=a-b", 1000, ALV_ERROR_PARSE },
    { "bytes=5-2", 1000, ALV_ERROR_PARSE },             /* reversed: invalid header */
    { "bytes=0-5,5-2", 1000, ALV_ERROR_PARSE },
    { "bytes=0-5;6-7", 1000, ALV_ERROR_PARSE },
    { "bytes=--5", 1000, ALV_ERROR_PARSE },
    { "bytes=0-5-", 1000, ALV_ERROR_PARSE },
    { "bytes=0-18446744073709551616", 1000, ALV_ERROR_LIMIT },
    { "bytes=9223372036854775808-", 1000, ALV_ERROR_LIMIT },
    { "bytes=-9223372036854775808", 1000, ALV_ERROR_LIMIT },
    { "bytes=1-1,2-2,3-3,4-4,5-5,6-6,7-7,8-8,9-9,10-10,11-11,12-12,13-13,14-14,15-15,16-16,17-17",
      1000, ALV_ERROR_LIMIT },
    /* well-formed but unsatisfiable: 416 */
    { "bytes=1000-", 1000, ALV_ERROR_INVALID },
    { "bytes=1000-2000", 1000, ALV_ERROR_INVALID },
    { "bytes=-0", 1000, ALV_ERROR_INVALID },
    { "bytes=0-0", 0, ALV_ERROR_INVALID },
    { "bytes=0-", 0, ALV_ERROR_INVALID },
    { "bytes=-0", 0, ALV_ERROR_INVALID },
    /* a suffix of an empty body: serve it whole */
    { "bytes=-5", 0, ALV_ERROR_UNSUPPORTED },
  };
  GArray *r;

  r = parse_range_ok ("bytes=0-499", 1000);
  g_assert_cmpuint (r->len, ==, 1);
  assert_range (r, 0, 0, 500);
  g_array_unref (r);

  r = parse_range_ok ("bytes=500-", 1000);      /* open */
  assert_range (r, 0, 500, 1000);
  g_array_unref (r);

  r = parse_range_ok ("bytes=-200", 1000);      /* suffix */
  assert_range (r, 0, 800, 1000);
  g_array_unref (r);

  r = parse_range_ok ("bytes=-5000", 1000);     /* suffix longer than the resource */
  assert_range (r, 0, 0, 1000);
  g_array_unref (r);

  r = parse_range_ok ("bytes=0-0", 1000);
  assert_range (r, 0, 0, 1);
  g_array_unref (r);

  r = parse_range_ok ("bytes=990-5000", 1000);  /* last-pos cut */
  assert_range (r, 0, 990, 1000);
  g_array_unref (r);

  r = parse_range_ok ("bytes=0-9223372036854775806", 1000);
  assert_range (r, 0, 0, 1000);
  g_array_unref (r);

  r = parse_range_ok ("bytes=500-599,0-99,-100", 1000);  /* multiple, sorted */
  g_assert_cmpuint (r->len, ==, 3);
  assert_range (r, 0, 0, 100);
  assert_range (r, 1, 500, 600);
  assert_range (r, 2, 900, 1000);
  g_array_unref (r);

  r = parse_range_ok ("bytes=0-99,50-149,150-199", 1000);  /* overlapping, adjacent */
  g_assert_cmpuint (r->len, ==, 1);
  assert_range (r, 0, 0, 200);
  g_array_unref (r);

  r = parse_range_ok ("bytes=2000-3000, 10-19", 1000);  /* one unsatisfiable, dropped */
  g_assert_cmpuint (r->len, ==, 1);
  assert_range (r, 0, 10, 20);
  g_array_unref (r);

  r = parse_range_ok ("  Bytes = 1-2 ,, ,\t3-4 ,", 1000);  /* whitespace, empty elements */
  g_assert_cmpuint (r->len, ==, 1);
  assert_range (r, 0, 1, 5);
  g_array_unref (r);

  r = parse_range_ok ("bytes=1-1,3-3,5-5,7-7,9-9,11-11,13-13,15-15,17-17,19-19,21-21,23-23,25-25,27-27,29-29,31-31",
                      1000);                    /* exactly the limit */
  g_assert_cmpuint (r->len, ==, ALV_HTTP_RANGE_MAX);
  g_array_unref (r);

  /* ranges_out is optional */
  g_assert_true (alv_http_parse_range ("bytes=0-1", 10, NULL, NULL));

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      GArray *ranges = (GArray *) &error; /* must be reset to NULL */

      g_test_message ("bad Range: %s (length %" G_GUINT64_FORMAT ")", bad[i].in, bad[i].length);
      g_assert_false (alv_http_parse_range (bad[i].in, bad[i].length, &ranges, &error));
      g_assert_null (ranges);
      g_assert_error (error, ALV_ERROR, (gint) bad[i].code);
    }
}

static void
test_http_range_format (void)
{
  g_autofree char *a = alv_http_format_range (0, 65536);
  g_autofree char *b = alv_http_format_range (100, G_MAXUINT64);
  g_autofree char *c = alv_http_format_range (5, 6);
  g_autoptr(AlvRangeSet) set = alv_range_set_new ();
  g_autofree char *d = NULL;
  g_autofree char *empty = alv_http_format_range_set (set);
  GArray *r;

  g_assert_cmpstr (a, ==, "bytes=0-65535");
  g_assert_cmpstr (b, ==, "bytes=100-");
  g_assert_cmpstr (c, ==, "bytes=5-5");
  g_assert_null (empty);

  alv_range_set_add (set, 0, 10);
  alv_range_set_add (set, 20, 30);
  d = alv_http_format_range_set (set);
  g_assert_cmpstr (d, ==, "bytes=0-9,20-29");
  r = parse_range_ok (d, 1000);
  g_assert_cmpuint (r->len, ==, 2);
  assert_range (r, 0, 0, 10);
  assert_range (r, 1, 20, 30);
  g_array_unref (r);
}

static void
test_content_range (void)
{
  struct { const char *in; guint64 s, e, t; } good[] = {
    { "bytes 0-499/1234", 0, 500, 1234 },
    { "bytes 734-1233/1234", 734, 1234, 1234 },
    { "bytes 0-0/1", 0, 1, 1 },
    { "bytes 42-1233/*", 42, 1234, G_MAXUINT64 },
    { "bytes */1234", 0, 0, 1234 },
    { "bytes */0", 0, 0, 0 },
    { "  BYTES  0-9/10  ", 0, 10, 10 },
    { "bytes 0-9223372036854775806/9223372036854775807", 0, G_MAXINT64, G_MAXINT64 },
  };
  struct { const char *in; AlvError code; } bad[] = {
    { "", ALV_ERROR_PARSE },
    { "0-499/1234", ALV_ERROR_PARSE },
    { "bytes=0-499/1234", ALV_ERROR_PARSE },
    { "bytes 0-499", ALV_ERROR_PARSE },
    { "bytes 0-/1234", ALV_ERROR_PARSE },
    { "bytes -5/1234", ALV_ERROR_PARSE },
    { "bytes */*", ALV_ERROR_PARSE },
    { "bytes 0 - 4/10", ALV_ERROR_PARSE },
    { "bytes 0-4/10 x", ALV_ERROR_PARSE },
    { "bytes 0-4/-10", ALV_ERROR_PARSE },
    { "bytes 5-4/10", ALV_ERROR_INVALID },
    { "bytes 0-10/10", ALV_ERROR_INVALID },
    { "bytes 0-4/0", ALV_ERROR_INVALID },
    { "bytes 0-18446744073709551616/*", ALV_ERROR_LIMIT },
    { "bytes 0-4/18446744073709551615", ALV_ERROR_LIMIT },
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *again = NULL;
      guint64 s = 1, e = 1, t = 1;

      g_test_message ("good Content-Range: %s", good[i].in);
      g_assert_true (alv_http_parse_content_range (good[i].in, &s, &e, &t, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (s, ==, good[i].s);
      g_assert_cmpuint (e, ==, good[i].e);
      g_assert_cmpuint (t, ==, good[i].t);

      again = alv_http_format_content_range (s, e, t);
      g_assert_true (alv_http_parse_content_range (again, &s, &e, &t, NULL));
      g_assert_cmpuint (s, ==, good[i].s);
      g_assert_cmpuint (e, ==, good[i].e);
      g_assert_cmpuint (t, ==, good[i].t);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;

      g_test_message ("bad Content-Range: %s", bad[i].in);
      g_assert_false (alv_http_parse_content_range (bad[i].in, NULL, NULL, NULL, &error));
      g_assert_error (error, ALV_ERROR, (gint) bad[i].code);
    }

  {
    g_autofree char *a = alv_http_format_content_range (0, 500, 1234);
    g_autofree char *b = alv_http_format_content_range (0, 0, 1234);
    g_autofree char *c = alv_http_format_content_range (10, 20, G_MAXUINT64);

    g_assert_cmpstr (a, ==, "bytes 0-499/1234");
    g_assert_cmpstr (b, ==, "bytes */1234");
    g_assert_cmpstr (c, ==, "bytes 10-19/*");
  }
}

static void
test_block_map_basic (void)
{
  g_autoptr(AlvBlockMap) map = alv_block_map_new (130);
  g_autoptr(AlvBlockMap) copy = NULL;
  g_autoptr(AlvBlockMap) empty = alv_block_map_new (0);

  g_assert_cmpuint (alv_block_map_get_n_blocks (map), ==, 130);
  g_assert_cmpuint (alv_block_map_count (map), ==, 0);
  g_assert_false (alv_block_map_is_complete (map));
  g_assert_true (alv_block_map_is_complete (empty));
  g_assert_cmpuint (alv_block_map_first_missing_after (empty, 0), ==, 0);

  alv_block_map_set (map, 0);
  alv_block_map_set (map, 1);
  alv_block_map_set (map, 1);   /* twice: counted once */
  alv_block_map_set (map, 64);
  alv_block_map_set (map, 129);
  g_assert_cmpuint (alv_block_map_count (map), ==, 4);
  g_assert_true (alv_block_map_get (map, 64));
  g_assert_false (alv_block_map_get (map, 63));
  g_assert_false (alv_block_map_get (map, 130));   /* beyond: not held */
  g_assert_cmpuint (alv_block_map_first_missing_after (map, 0), ==, 2);
  g_assert_cmpuint (alv_block_map_first_missing_after (map, 64), ==, 65);
  g_assert_cmpuint (alv_block_map_first_missing_after (map, 129), ==, 130);
  g_assert_cmpuint (alv_block_map_first_set_after (map, 2), ==, 64);
  g_assert_cmpuint (alv_block_map_first_set_after (map, 65), ==, 129);
  g_assert_cmpuint (alv_block_map_first_set_after (map, 500), ==, 130);

  copy = alv_block_map_copy (map);
  g_assert_true (alv_block_map_equal (map, copy));
  alv_block_map_clear (copy, 64);
  alv_block_map_clear (copy, 64);
  g_assert_cmpuint (alv_block_map_count (copy), ==, 3);
  g_assert_false (alv_block_map_equal (map, copy));

  alv_block_map_set_all (copy);
  g_assert_true (alv_block_map_is_complete (copy));
  g_assert_cmpuint (alv_block_map_count (copy), ==, 130);
  g_assert_cmpuint (alv_block_map_first_missing_after (copy, 0), ==, 130);
  for (guint i = 0; i < 130; i++)
    alv_block_map_set (map, i);
  g_assert_true (alv_block_map_equal (map, copy));
}

static void
test_block_map_ranges (void)
{
  /* 10 blocks of 100 bytes, the last one 50 bytes */
  const guint64 length = 950;
  g_autoptr(AlvBlockMap) map = alv_block_map_new (10);
  g_autoptr(AlvRangeSet) set = NULL;
  g_autoptr(AlvRangeSet) peer = alv_range_set_new ();
  g_autoptr(AlvBlockMap) from = NULL;
  g_autoptr(AlvBlockMap) whole = NULL;
  AlvRange r;

  g_assert_cmpuint (alv_block_count_for_length (0, 100), ==, 0);
  g_assert_cmpuint (alv_block_count_for_length (1, 100), ==, 1);
  g_assert_cmpuint (alv_block_count_for_length (100, 100), ==, 1);
  g_assert_cmpuint (alv_block_count_for_length (101, 100), ==, 2);
  g_assert_cmpuint (alv_block_count_for_length (G_MAXUINT64, 1u << 24), ==, G_GUINT64_CONSTANT (1) << 40);
  r = alv_block_get_range (9, 100, length);
  g_assert_cmpuint (r.start, ==, 900);
  g_assert_cmpuint (r.end, ==, 950);
  r = alv_block_get_range (3, 100, length);
  g_assert_cmpuint (r.start, ==, 300);
  g_assert_cmpuint (r.end, ==, 400);
  r = alv_block_get_range (10, 100, length);
  g_assert_cmpuint (r.start, ==, r.end);

  alv_block_map_set (map, 0);
  alv_block_map_set (map, 1);
  alv_block_map_set (map, 4);
  alv_block_map_set (map, 9);
  set = alv_block_map_to_range_set (map, 100, length);
  assert_set (set, "bytes 0-199,400-499,900-949");

  from = alv_block_map_new_from_range_set (set, 100, length);
  g_assert_true (alv_block_map_equal (map, from));
  g_clear_pointer (&from, alv_block_map_free);

  /* only whole blocks count; the short last block is whole up to length;
   * bytes beyond the length are ignored */
  alv_range_set_add (peer, 50, 320);      /* blocks 1, 2 */
  alv_range_set_add (peer, 399, 499);     /* block 4 misses its last byte */
  alv_range_set_add (peer, 700, 800);     /* block 7 exactly */
  alv_range_set_add (peer, 900, 2000);    /* block 9 (short) */
  from = alv_block_map_new_from_range_set (peer, 100, length);
  g_assert_cmpuint (alv_block_map_count (from), ==, 4);
  g_assert_true (alv_block_map_get (from, 1));
  g_assert_true (alv_block_map_get (from, 2));
  g_assert_false (alv_block_map_get (from, 3));
  g_assert_false (alv_block_map_get (from, 4));
  g_assert_true (alv_block_map_get (from, 7));
  g_assert_true (alv_block_map_get (from, 9));

  alv_range_set_clear (peer);
  alv_range_set_add (peer, 0, length);
  whole = alv_block_map_new_from_range_set (peer, 100, length);
  g_assert_true (alv_block_map_is_complete (whole));
  g_clear_pointer (&set, alv_range_set_free);
  set = alv_block_map_to_range_set (whole, 100, length);
  g_assert_true (alv_range_set_equal (set, peer));
}

static void
test_block_map_bytes (void)
{
  g_autoptr(AlvBlockMap) map = alv_block_map_new (12);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(AlvBlockMap) back = NULL;
  g_autoptr(GError) error = NULL;
  const guint8 *data;
  gsize size;

  alv_block_map_set (map, 0);
  alv_block_map_set (map, 7);
  alv_block_map_set (map, 8);
  alv_block_map_set (map, 11);
  bytes = alv_block_map_to_bytes (map);
  data = g_bytes_get_data (bytes, &size);
  g_assert_cmpuint (size, ==, 2);
  g_assert_cmphex (data[0], ==, 0x81);
  g_assert_cmphex (data[1], ==, 0x90);

  back = alv_block_map_new_from_bytes (bytes, 12, &error);
  g_assert_no_error (error);
  g_assert_true (alv_block_map_equal (map, back));
  g_clear_pointer (&back, alv_block_map_free);

  /* wrong size */
  back = alv_block_map_new_from_bytes (bytes, 20, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_assert_null (back);
  g_clear_error (&error);
  back = alv_block_map_new_from_bytes (bytes, 8, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  /* a spare bit set (block 12 of 11) */
  back = alv_block_map_new_from_bytes (bytes, 11, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  /* absurd block count */
  back = alv_block_map_new_from_bytes (bytes, G_MAXUINT, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);

  /* zero blocks: zero bytes */
  {
    g_autoptr(AlvBlockMap) none = alv_block_map_new (0);
    g_autoptr(GBytes) nb = alv_block_map_to_bytes (none);
    g_autoptr(AlvBlockMap) none_back = NULL;

    g_assert_cmpuint (g_bytes_get_size (nb), ==, 0);
    none_back = alv_block_map_new_from_bytes (nb, 0, &error);
    g_assert_no_error (error);
    g_assert_true (alv_block_map_equal (none, none_back));
  }
}

static void
test_block_map_pick_rarest (void)
{
  g_autoptr(AlvBlockMap) have = alv_block_map_new (8);
  g_autoptr(AlvBlockMap) peer = alv_block_map_new (8);
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  const guint avail[8] = { 5, 1, 3, 1, 2, 1, 4, 0 };
  guint seen[8] = { 0 };
  guint idx = 99;

  /* earliest of the rarest without a tie breaker: block 7 has 0 */
  g_assert_true (alv_block_map_pick_rarest (have, avail, NULL, 0, 8, NULL, &idx));
  g_assert_cmpuint (idx, ==, 7);
  /* window [0, 7): blocks 1, 3, 5 share the minimum; earliest wins */
  g_assert_true (alv_block_map_pick_rarest (have, avail, NULL, 0, 7, NULL, &idx));
  g_assert_cmpuint (idx, ==, 1);
  /* we hold 1: next is 3 */
  alv_block_map_set (have, 1);
  g_assert_true (alv_block_map_pick_rarest (have, avail, NULL, 0, 7, NULL, &idx));
  g_assert_cmpuint (idx, ==, 3);
  /* the peer has only 0, 2 and 4: the rarest of those we lack is 4 */
  alv_block_map_set (peer, 0);
  alv_block_map_set (peer, 2);
  alv_block_map_set (peer, 4);
  g_assert_true (alv_block_map_pick_rarest (have, avail, peer, 0, 8, NULL, &idx));
  g_assert_cmpuint (idx, ==, 4);
  /* window bounds, "to" clamped to the map */
  g_assert_true (alv_block_map_pick_rarest (have, avail, peer, 0, 3, NULL, &idx));
  g_assert_cmpuint (idx, ==, 2);
  g_assert_false (alv_block_map_pick_rarest (have, avail, peer, 5, 1000, NULL, &idx));
  g_assert_false (alv_block_map_pick_rarest (have, avail, peer, 3, 3, NULL, &idx));

  /* the tie breaker spreads picks over the equally rare 3 and 5 */
  for (guint i = 0; i < 200; i++)
    {
      g_assert_true (alv_block_map_pick_rarest (have, avail, NULL, 0, 7, rand, &idx));
      g_assert_true (idx == 3 || idx == 5);
      seen[idx]++;
    }
  g_assert_cmpuint (seen[3], >, 50);
  g_assert_cmpuint (seen[5], >, 50);

  /* everything held: nothing to pick */
  alv_block_map_set_all (have);
  g_assert_false (alv_block_map_pick_rarest (have, avail, NULL, 0, 8, rand, &idx));
}

/* The earliest of the rarest, block by block, as the reference. */
static gboolean
naive_pick_rarest (const AlvBlockMap *have,
                   const guint       *avail,
                   const AlvBlockMap *candidate,
                   guint              from,
                   guint              to,
                   guint             *index_out)
{
  gboolean found = FALSE;

  for (guint i = from; i < MIN (to, alv_block_map_get_n_blocks (have)); i++)
    if (!alv_block_map_get (have, i) && (candidate == NULL || alv_block_map_get (candidate, i)) &&
        (!found || avail[i] < avail[*index_out]))
      {
        found = TRUE;
        *index_out = i;
      }
  return found;
}

/* Maps of several words (the pick goes a word at a time): every window
 * whose ends lie at or around a word's edge, on random maps, picks what
 * the block-by-block reference picks. */
static void
test_block_map_pick_rarest_words (void)
{
  const guint n = 200;
  const guint edges[] = { 0, 1, 62, 63, 64, 65, 127, 128, 129, 191, 192, 193, 199, 200, 1000 };
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  guint avail[200];
  guint picks = 0;

  for (guint round = 0; round < 40; round++)
    {
      g_autoptr(AlvBlockMap) have = alv_block_map_new (n);
      g_autoptr(AlvBlockMap) peer = alv_block_map_new (n);

      for (guint i = 0; i < n; i++)
        {
          /* sparser and sparser maps, so that whole words are empty */
          if (g_rand_int_range (rand, 0, 40) < (gint32) round)
            alv_block_map_set (have, i);
          if (g_rand_int_range (rand, 0, 4) == 0)
            alv_block_map_set (peer, i);
          avail[i] = g_rand_int_range (rand, 0, 6);
        }
      for (guint a = 0; a < G_N_ELEMENTS (edges); a++)
        for (guint b = 0; b < G_N_ELEMENTS (edges); b++)
          for (guint c = 0; c < 2; c++)
            {
              const AlvBlockMap *cand = c == 0 ? NULL : peer;
              guint want = G_MAXUINT, got = G_MAXUINT;
              gboolean w = naive_pick_rarest (have, avail, cand, edges[a], edges[b], &want);

              g_assert_cmpint (alv_block_map_pick_rarest (have, avail, cand, edges[a], edges[b], NULL, &got),
                               ==, w);
              if (w)
                {
                  g_assert_cmpuint (got, ==, want);
                  picks++;
                }
            }
    }
  /* not a vacuous run */
  g_assert_cmpuint (picks, >, 2000);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/common/ranges/set/basic", test_set_basic);
  g_test_add_func ("/common/ranges/set/algebra", test_set_algebra);
  g_test_add_func ("/common/ranges/set/random-model", test_set_random);
  g_test_add_func ("/common/ranges/available/parse", test_available_parse);
  g_test_add_func ("/common/ranges/available/many", test_available_many);
  g_test_add_func ("/common/ranges/http/range", test_http_range);
  g_test_add_func ("/common/ranges/http/range-format", test_http_range_format);
  g_test_add_func ("/common/ranges/http/content-range", test_content_range);
  g_test_add_func ("/common/ranges/block-map/basic", test_block_map_basic);
  g_test_add_func ("/common/ranges/block-map/ranges", test_block_map_ranges);
  g_test_add_func ("/common/ranges/block-map/bytes", test_block_map_bytes);
  g_test_add_func ("/common/ranges/block-map/pick-rarest", test_block_map_pick_rarest);
  g_test_add_func ("/common/ranges/block-map/pick-rarest-words", test_block_map_pick_rarest_words);

  return g_test_run ();
}
