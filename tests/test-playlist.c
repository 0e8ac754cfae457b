/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of the playlist model, its RSS 1.0 parser and writer, and the
 * W3C-DTF time helpers (common/alv-playlist*.c, common/alv-time.c): round
 * trips from a model and from a hand-written document, slot look-ups at
 * their boundaries, strict date parsing, and every kind of hostile
 * document the parser must refuse quickly, with the right error code and
 * the line at fault; and what a parse may hold meanwhile, counted in
 * libxml2's allocations (comments, elements read and skipped, the largest
 * playlist).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <libxml/xmlmemory.h>

#include "alv-error.h"
#include "alv-playlist.h"
#include "alv-time.h"

/* What the parser may hold in libxml2 while it reads a document of
 * @length bytes: libxml2's copy of the input and the buffer of one comment
 * at most, plus 1 MiB for its tables; never a tree of the document. */
#define PARSE_BUDGET(length) (2 * (gsize) (length) + 1024 * 1024)

/* Hostile documents must be refused at once; generous for valgrind. */
#define FAST_USEC (2 * G_USEC_PER_SEC)

#define HEAD \
  "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n" \
  "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"\n" \
  "  xmlns=\"http://purl.org/rss/1.0/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n" \
  "  xmlns:ev=\"http://purl.org/rss/1.0/modules/event/\">\n"  /* lines 1-4 */
#define CHANNEL \
  "<channel rdf:about=\"http://radio.example/\"><title>R</title></channel>\n" /* line 5 */
#define TAIL "</rdf:RDF>\n"

static GDateTime *
dt (const char *text)
{
  g_autoptr(GError) error = NULL;
  GDateTime *result = alv_time_parse_w3cdtf (text, &error);

  g_assert_no_error (error);
  g_assert_nonnull (result);
  return result;
}

static AlvPlaylistItem *
make_item (const char *url,
           const char *start,
           const char *end)
{
  AlvPlaylistItem *item = alv_playlist_item_new (url);
  g_autoptr(GDateTime) s = dt (start);
  g_autoptr(GDateTime) e = dt (end);

  alv_playlist_item_set_slot (item, s, e);
  return item;
}

static void
add_item (AlvPlaylist *pl,
          const char  *url,
          const char  *start,
          const char  *end)
{
  g_autoptr(AlvPlaylistItem) item = make_item (url, start, end);

  alv_playlist_add_item (pl, item);
}

static AlvPlaylist *
parse_ok (const char *doc)
{
  g_autoptr(GError) error = NULL;
  AlvPlaylist *pl = alv_playlist_parse (doc, strlen (doc), &error);

  g_assert_no_error (error);
  g_assert_nonnull (pl);
  return pl;
}

/* libxml2's allocations, counted through xmlMemSetup(), so that what a
 * parse costs is a number the tests compare with a budget, the same on
 * every run, instead of a reading of the process's RSS.  The hooks are
 * process-wide by nature: they are installed in main() before libxml2
 * allocates anything. */
#define XML_MEM_HEADER 16  /* keeps the alignment malloc() gives */

static gsize xml_mem_live;
static gsize xml_mem_peak;

static void
xml_mem_account (gssize delta)
{
  xml_mem_live += delta;
  xml_mem_peak = MAX (xml_mem_peak, xml_mem_live);
}

static void *
xml_mem_malloc (size_t size)
{
  char *p = malloc (size + XML_MEM_HEADER);

  if (p == NULL)
    return NULL;
  *(size_t *) p = size;
  xml_mem_account ((gssize) size);
  return p + XML_MEM_HEADER;
}

static void
xml_mem_free (void *mem)
{
  char *p = mem;

  if (p == NULL)
    return;
  p -= XML_MEM_HEADER;
  xml_mem_account (-(gssize) *(size_t *) p);
  free (p);
}

static void *
xml_mem_realloc (void   *mem,
                 size_t  size)
{
  char *p = mem;
  size_t old;

  if (p == NULL)
    return xml_mem_malloc (size);
  p -= XML_MEM_HEADER;
  old = *(size_t *) p;
  p = realloc (p, size + XML_MEM_HEADER);
  if (p == NULL)
    return NULL;
  *(size_t *) p = size;
  xml_mem_account ((gssize) size - (gssize) old);
  return p + XML_MEM_HEADER;
}

static char *
xml_mem_strdup (const char *s)
{
  size_t n = strlen (s) + 1;
  char *copy = xml_mem_malloc (n);

  if (copy != NULL)
    memcpy (copy, s, n);
  return copy;
}

/* Parses @doc and returns in *@cost the most libxml2 held at once. */
static AlvPlaylist *
parse_counted (const char  *doc,
               gsize        length,
               gsize       *cost,
               GError     **error)
{
  gsize base = xml_mem_live;
  AlvPlaylist *pl;

  xml_mem_peak = base;
  pl = alv_playlist_parse (doc, length, error);
  *cost = xml_mem_peak - base;
  g_test_message ("%" G_GSIZE_FORMAT " bytes parsed holding at most %" G_GSIZE_FORMAT
                  " bytes in libxml2", length, *cost);
  return pl;
}

/* Parses @length bytes of @doc, expects @code, and when @line > 0 a
 * message starting with "line @line:"; the refusal must be fast. */
static void
assert_refused_within (const char *doc,
                       gsize       length,
                       AlvError    code,
                       int         line,
                       gint64      max_usec)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  gint64 t0 = g_get_monotonic_time ();
  gint64 elapsed;

  pl = alv_playlist_parse (doc, length, &error);
  elapsed = g_get_monotonic_time () - t0;
  g_assert_null (pl);
  g_assert_error (error, ALV_ERROR, (int) code);
  g_test_message ("refused in %" G_GINT64_FORMAT " µs: %s", elapsed, error->message);
  if (line > 0)
    {
      g_autofree char *prefix = g_strdup_printf ("line %d: ", line);

      if (!g_str_has_prefix (error->message, prefix))
        g_error ("expected “%s” to start with “%s”", error->message, prefix);
    }
  g_assert_cmpint (elapsed, <, max_usec);
}

static void
assert_refused_len (const char *doc,
                    gsize       length,
                    AlvError    code,
                    int         line)
{
  assert_refused_within (doc, length, code, line, FAST_USEC);
}

static void
assert_refused (const char *doc,
                AlvError    code,
                int         line)
{
  assert_refused_len (doc, strlen (doc), code, line);
}

/* ------------------------------------------------------------------------
 * W3C-DTF
 * ------------------------------------------------------------------------ */

static void
assert_instant (const char *text,
                int         year,
                int         month,
                int         day,
                int         hour,
                int         minute,
                int         second,
                int         usec)
{
  g_autoptr(GDateTime) d = dt (text);

  g_assert_cmpint (g_date_time_get_utc_offset (d), ==, 0);
  g_assert_cmpint (g_date_time_get_year (d), ==, year);
  g_assert_cmpint (g_date_time_get_month (d), ==, month);
  g_assert_cmpint (g_date_time_get_day_of_month (d), ==, day);
  g_assert_cmpint (g_date_time_get_hour (d), ==, hour);
  g_assert_cmpint (g_date_time_get_minute (d), ==, minute);
  g_assert_cmpint (g_date_time_get_second (d), ==, second);
  g_assert_cmpint (g_date_time_get_microsecond (d), ==, usec);
}

static void
test_time_parse (void)
{
  assert_instant ("2026", 2026, 1, 1, 0, 0, 0, 0);
  assert_instant ("2026-11", 2026, 11, 1, 0, 0, 0, 0);
  assert_instant ("2026-11-25", 2026, 11, 25, 0, 0, 0, 0);
  assert_instant ("2026-11-25T10:07Z", 2026, 11, 25, 10, 7, 0, 0);
  assert_instant ("2026-11-25T10:07:42Z", 2026, 11, 25, 10, 7, 42, 0);
  assert_instant ("2026-11-25T10:07:42.5Z", 2026, 11, 25, 10, 7, 42, 500000);
  assert_instant ("2026-11-25T10:07:42.000001Z", 2026, 11, 25, 10, 7, 42, 1);
  assert_instant ("2026-11-25T10:07:42.123456Z", 2026, 11, 25, 10, 7, 42, 123456);
  /* offsets: local time minus the offset is UTC */
  assert_instant ("2026-11-25T10:07:42+01:00", 2026, 11, 25, 9, 7, 42, 0);
  assert_instant ("2026-11-25T10:07:42-05:30", 2026, 11, 25, 15, 37, 42, 0);
  assert_instant ("2026-01-01T00:30:00+01:00", 2025, 12, 31, 23, 30, 0, 0);
  assert_instant ("2026-12-31T23:30:00.25-01:00", 2027, 1, 1, 0, 30, 0, 250000);
  assert_instant ("2026-11-25T10:07:42-00:00", 2026, 11, 25, 10, 7, 42, 0);
  assert_instant ("2024-02-29T12:00Z", 2024, 2, 29, 12, 0, 0, 0);
  assert_instant ("0001-01-01T00:00:00Z", 1, 1, 1, 0, 0, 0, 0);
  assert_instant ("9999-12-31T23:59:59.999999Z", 9999, 12, 31, 23, 59, 59, 999999);
}

static void
test_time_bad (void)
{
  static const char *bad[] = {
    "", "26", "202", "20261", "2026-1", "2026-13", "2026-00", "2026-11-31",
    "2025-02-29", "2026-11-00", "0000", "2026/11/25", " 2026", "2026 ",
    "2026-11-25T", "2026-11-25T10:00", "2026-11-25T10Z", "2026-11-25T10:7Z",
    "2026-11-25T24:00Z", "2026-11-25T10:60Z", "2026-11-25T10:00:60Z",
    "2026-11-25T10:00:00.Z", "2026-11-25T10:00:00.1234567Z",
    "2026-11-25T10:00:00,5Z", "2026-11-25t10:00Z", "2026-11-25T10:00z",
    "2026-11-25 10:00Z", "2026-11-25T10:00:00+1:00", "2026-11-25T10:00:00+0100",
    "2026-11-25T10:00:00+24:00", "2026-11-25T10:00:00+01:60",
    "2026-11-25T10:00:00+01", "2026-11-25T10:00:00ZZ", "2026-11-25T10:00:00Z ",
    "2026-11-25Z", "+2026-11-25", "-2026", "2026-11-25T10:00:00+01:00:00",
    "9999-12-31T23:59:59-00:01",  /* leaves the year 9999 */
    "0001-01-01T00:00:00+00:01",  /* before the year 1 */
    "2026-11-25T10:00:00.5",
    "２０２６",  /* non-ASCII digits */
  };

  for (gsize i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GDateTime) d = alv_time_parse_w3cdtf (bad[i], &error);

      if (d != NULL)
        g_error ("“%s” was accepted", bad[i]);
      g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
    }

  /* long or invalid input is not quoted back whole */
  {
    g_autofree char *long_text = g_strnfill (1000, '9');
    g_autoptr(GError) error = NULL;
    g_autoptr(GDateTime) d = alv_time_parse_w3cdtf (long_text, &error);

    g_assert_null (d);
    g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
    g_assert_null (strstr (error->message, "9999999999"));
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GDateTime) d = alv_time_parse_w3cdtf ("2026-\xff", &error);

    g_assert_null (d);
    g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
    g_assert_true (g_utf8_validate (error->message, -1, NULL));
  }
}

static void
assert_formats (const char *in,
                const char *expected)
{
  g_autoptr(GDateTime) d = dt (in);
  g_autofree char *text = alv_time_format_w3cdtf (d);

  g_assert_cmpstr (text, ==, expected);
}

static void
test_time_format (void)
{
  assert_formats ("2026-11-25T10:07:42Z", "2026-11-25T10:07:42Z");
  assert_formats ("2026-11-25", "2026-11-25T00:00:00Z");
  assert_formats ("2026-11-25T10:07Z", "2026-11-25T10:07:00Z");
  assert_formats ("2026-11-25T10:07:42.5Z", "2026-11-25T10:07:42.5Z");
  assert_formats ("2026-11-25T10:07:42.500000Z", "2026-11-25T10:07:42.5Z");
  assert_formats ("2026-11-25T10:07:42.000010Z", "2026-11-25T10:07:42.00001Z");
  assert_formats ("2026-11-25T10:07:42.123456Z", "2026-11-25T10:07:42.123456Z");
  assert_formats ("2026-11-25T10:07:42.0Z", "2026-11-25T10:07:42Z");
  assert_formats ("2026-11-25T10:07:42+02:00", "2026-11-25T08:07:42Z");
  assert_formats ("0099-03-04T05:06:07Z", "0099-03-04T05:06:07Z");

  /* a local time is written as the same instant in UTC */
  {
    g_autoptr(GTimeZone) tz = g_time_zone_new_offset (-3 * 3600 - 1800);
    g_autoptr(GDateTime) local = g_date_time_new (tz, 2026, 6, 30, 22, 15, 1.25);
    g_autofree char *text = alv_time_format_w3cdtf (local);

    g_assert_cmpstr (text, ==, "2026-07-01T01:45:01.25Z");
  }
}

static void
test_time_roundtrip (void)
{
  for (guint i = 0; i < 2000; i++)
    {
      gint64 unix_usec = g_test_rand_int_range (0, G_MAXINT32) * (gint64) G_USEC_PER_SEC * 2 +
                         g_test_rand_int_range (0, G_USEC_PER_SEC);
      g_autoptr(GDateTime) a = g_date_time_new_from_unix_utc (0);
      g_autoptr(GDateTime) b = g_date_time_add (a, unix_usec);
      g_autofree char *text = alv_time_format_w3cdtf (b);
      g_autoptr(GDateTime) c = dt (text);
      g_autofree char *again = alv_time_format_w3cdtf (c);

      g_assert_true (g_date_time_equal (b, c));
      g_assert_cmpint (g_date_time_get_microsecond (b), ==, g_date_time_get_microsecond (c));
      g_assert_cmpstr (text, ==, again);
    }
}

/* ------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------ */

static void
test_model (void)
{
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(AlvPlaylistItem) item = make_item ("http://a.example/1.ogg",
                                               "2026-11-25T10:00:00Z",
                                               "2026-11-25T10:03:30.5Z");
  g_autoptr(GDateTime) inside = dt ("2026-11-25T10:03:30.499999Z");
  g_autoptr(GDateTime) at_end = dt ("2026-11-25T10:03:30.5Z");

  alv_playlist_item_set_title (item, "Song");
  g_assert_cmpstr (alv_playlist_item_get_title (item), ==, "Song");
  alv_playlist_item_set_title (item, "");
  g_assert_null (alv_playlist_item_get_title (item));
  alv_playlist_item_set_creator (item, "Band");
  g_assert_cmpstr (alv_playlist_item_get_creator (item), ==, "Band");
  alv_playlist_item_set_creator (item, NULL);
  g_assert_null (alv_playlist_item_get_creator (item));
  alv_playlist_item_set_length (item, 12345);
  g_assert_cmpuint (alv_playlist_item_get_length (item), ==, 12345);
  g_assert_cmpint (alv_playlist_item_get_duration (item), ==, 210500000);
  g_assert_true (alv_playlist_item_contains (item, inside));
  g_assert_false (alv_playlist_item_contains (item, at_end));

  g_assert_cmpint (alv_playlist_get_refresh_interval (pl), ==,
                   ALV_PLAYLIST_DEFAULT_REFRESH_INTERVAL);
  alv_playlist_set_update_period (pl, "hourly");
  alv_playlist_set_update_frequency (pl, 4);
  g_assert_cmpint (alv_playlist_get_refresh_interval (pl), ==, G_GINT64_CONSTANT (900) * G_USEC_PER_SEC);
  alv_playlist_set_update_frequency (pl, 3600);
  g_assert_cmpint (alv_playlist_get_refresh_interval (pl), ==,
                   ALV_PLAYLIST_MIN_REFRESH_INTERVAL);
  alv_playlist_set_update_period (pl, NULL);
  alv_playlist_set_update_frequency (pl, 2);
  g_assert_cmpint (alv_playlist_get_refresh_interval (pl), ==, G_GINT64_CONSTANT (43200) * G_USEC_PER_SEC);

  alv_playlist_add_item (pl, item);
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 1);
  g_assert_true (alv_playlist_get_item (pl, 0) == item);
  g_assert_true (alv_playlist_remove_item (pl, item));
  g_assert_false (alv_playlist_remove_item (pl, item));
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 0);
}

static void
test_find (void)
{
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  static const struct { const char *when; int at; int next; } cases[] = {
    { "2026-11-25T09:00:00Z", -1, 0 },
    { "2026-11-25T09:59:59.999999Z", -1, 0 },
    { "2026-11-25T10:00:00Z", 0, 1 },
    { "2026-11-25T10:02:59.999999Z", 0, 1 },
    { "2026-11-25T10:03:00Z", 1, 2 },          /* back to back */
    { "2026-11-25T10:04:59.999999Z", 1, 2 },
    { "2026-11-25T10:05:00Z", -1, 2 },         /* in the gap */
    { "2026-11-25T10:09:59.999999Z", -1, 2 },
    { "2026-11-25T10:10:00Z", 2, -1 },
    { "2026-11-25T10:11:59.999999Z", 2, -1 },
    { "2026-11-25T10:12:00Z", -1, -1 },        /* after the last */
    { "2027-01-01T00:00:00Z", -1, -1 },
  };

  /* added out of order: the playlist sorts them */
  add_item (pl, "http://a.example/3", "2026-11-25T10:10:00Z", "2026-11-25T10:12:00Z");
  add_item (pl, "http://a.example/1", "2026-11-25T10:00:00Z", "2026-11-25T10:03:00Z");
  add_item (pl, "http://a.example/2", "2026-11-25T10:03:00Z", "2026-11-25T10:05:00Z");

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GDateTime) when = dt (cases[i].when);
      guint index = G_MAXUINT;
      AlvPlaylistItem *at = alv_playlist_find_item_at (pl, when, &index);
      AlvPlaylistItem *next = alv_playlist_find_next_item (pl, when);

      g_test_message ("at %s", cases[i].when);
      if (cases[i].at < 0)
        {
          g_assert_null (at);
          g_assert_cmpuint (index, ==, G_MAXUINT);
        }
      else
        {
          g_assert_true (at == alv_playlist_get_item (pl, cases[i].at));
          g_assert_cmpuint (index, ==, cases[i].at);
        }
      if (cases[i].next < 0)
        g_assert_null (next);
      else
        g_assert_true (next == alv_playlist_get_item (pl, cases[i].next));
    }

  g_assert_cmpstr (alv_playlist_item_get_url (alv_playlist_get_item (pl, 0)), ==,
                   "http://a.example/1");
  g_assert_cmpstr (alv_playlist_item_get_url (alv_playlist_get_item (pl, 2)), ==,
                   "http://a.example/3");

  /* moving an item's slot after adding it re-sorts on the next look-up */
  {
    AlvPlaylistItem *first = alv_playlist_get_item (pl, 0);
    g_autoptr(GDateTime) s = dt ("2026-11-25T11:00:00Z");
    g_autoptr(GDateTime) e = dt ("2026-11-25T11:01:00Z");
    g_autoptr(GDateTime) when = dt ("2026-11-25T11:00:30+00:00");
    guint index = 0;

    alv_playlist_item_set_slot (first, s, e);
    g_assert_true (alv_playlist_find_item_at (pl, when, &index) == first);
    g_assert_cmpuint (index, ==, 2);
  }

  /* an empty playlist */
  {
    g_autoptr(AlvPlaylist) empty = alv_playlist_new ();
    g_autoptr(GDateTime) when = dt ("2026");

    g_assert_null (alv_playlist_find_item_at (empty, when, NULL));
    g_assert_null (alv_playlist_find_next_item (empty, when));
  }
}

/* ------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------ */

static AlvPlaylist *
make_full_playlist (void)
{
  AlvPlaylist *pl = alv_playlist_new ();
  g_autoptr(GDateTime) base = dt ("2026-11-25T00:00:00+01:00");
  g_autoptr(AlvPlaylistItem) a = NULL;
  g_autoptr(AlvPlaylistItem) b = NULL;
  g_autoptr(AlvPlaylistItem) c = NULL;

  alv_playlist_set_about (pl, "https://radio.example/playlist.rss");
  alv_playlist_set_title (pl, "Radio <Ä> & “Friends”");
  alv_playlist_set_link (pl, "https://radio.example/");
  alv_playlist_set_description (pl, "  line one\nline two\r\n\ttabbed ]]> 'quoted' \"dq\"  ");
  alv_playlist_set_update_period (pl, "hourly");
  alv_playlist_set_update_frequency (pl, 12);
  alv_playlist_set_update_base (pl, base);

  a = make_item ("http://cdn.example/a.ogg?x=1&y=2", "2026-11-25T10:00:00Z",
                 "2026-11-25T10:03:30.25Z");
  alv_playlist_item_set_title (a, "Ünïcödé 日本語 🎵");
  alv_playlist_item_set_creator (a, "A & B <c>");
  alv_playlist_item_set_media_type (a, "audio/ogg; codecs=vorbis");
  alv_playlist_item_set_urn (a, "urn:tree:sha256:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  alv_playlist_item_set_length (a, G_MAXUINT64);
  alv_playlist_item_set_description (a, "first\r\nsecond");

  b = make_item ("https://cdn.example/b.mp3", "2026-11-25T11:03:30.25+01:00",
                 "2026-11-25T10:07:00.000001Z");
  alv_playlist_item_set_media_type (b, "audio/mpeg");
  alv_playlist_item_set_length (b, 1);

  c = make_item ("http://[::1]:8080/c%20d.flac", "2026-11-25T10:07:00.000001Z",
                 "2026-11-26T00:00:00Z");

  /* added out of order on purpose */
  alv_playlist_add_item (pl, c);
  alv_playlist_add_item (pl, a);
  alv_playlist_add_item (pl, b);
  return pl;
}

static void
test_roundtrip_model (void)
{
  g_autoptr(AlvPlaylist) pl = make_full_playlist ();
  g_autoptr(AlvPlaylist) back = NULL;
  g_autoptr(AlvPlaylist) empty = alv_playlist_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *again = NULL;
  gsize length = 0;

  alv_playlist_validate (pl, &error);
  g_assert_no_error (error);

  text = alv_playlist_to_string (pl, &length);
  g_assert_cmpuint (length, ==, strlen (text));
  g_assert_true (g_str_has_prefix (text, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF"));
  /* (an item with one slot: its URL is its identifier) */
  g_assert_nonnull (strstr (text, "<rdf:li rdf:resource=\"http://cdn.example/a.ogg?x=1&amp;y=2\"/>"));
  g_assert_nonnull (strstr (text, "<ev:startdate>2026-11-25T10:03:30.25Z</ev:startdate>"));
  g_assert_nonnull (strstr (text, "enc:length=\"18446744073709551615\""));

  back = alv_playlist_parse (text, length, &error);
  g_assert_no_error (error);
  g_assert_true (alv_playlist_equal (pl, back));
  g_assert_cmpuint (alv_playlist_get_n_items (back), ==, 3);
  g_assert_cmpstr (alv_playlist_get_description (back), ==,
                   "  line one\nline two\r\n\ttabbed ]]> 'quoted' \"dq\"  ");
  g_assert_cmpstr (alv_playlist_item_get_description (alv_playlist_get_item (back, 0)), ==,
                   "first\r\nsecond");
  g_assert_false (alv_playlist_equal (back, empty));

  /* the writer is deterministic: same model, same bytes */
  again = alv_playlist_to_string (back, NULL);
  g_assert_cmpstr (text, ==, again);

  /* and equality really looks at the fields */
  alv_playlist_item_set_length (alv_playlist_get_item (back, 1), 2);
  g_assert_false (alv_playlist_equal (pl, back));
}

static const char hand_written[] =
  "<?xml version='1.0'?>\n"
  "<!-- a playlist with other prefixes, CDATA, comments and extensions -->\n"
  "<r:RDF xmlns:r='http://www.w3.org/1999/02/22-rdf-syntax-ns#'\n"
  "       xmlns:rss='http://purl.org/rss/1.0/'\n"
  "       xmlns:d='http://purl.org/dc/elements/1.1/'\n"
  "       xmlns:syn='http://purl.org/rss/1.0/modules/syndication/'\n"
  "       xmlns:event='http://purl.org/rss/1.0/modules/event/'\n"
  "       xmlns:e='http://purl.oclc.org/net/rss_2.0/enc#'\n"
  "       xmlns:x='urn:example:unknown'\n"
  "       xmlns:xi='http://www.w3.org/2001/XInclude'>\n"
  "  <rss:channel r:about='http://radio.example/'>\n"
  "    <rss:title>Night <![CDATA[& <Day>]]></rss:title>\n"
  "    <rss:link> http://radio.example/ </rss:link>\n"
  "    <rss:description>All night<!-- hidden -->long</rss:description>\n"
  "    <syn:updatePeriod>daily</syn:updatePeriod>\n"
  "    <syn:updateFrequency>48</syn:updateFrequency>\n"
  "    <syn:updateBase>2000-01-01T00:00+00:00</syn:updateBase>\n"
  "    <rss:items><r:Seq><r:li r:resource='http://radio.example/b'/></r:Seq></rss:items>\n"
  "    <x:whatever depth='1'><x:deeper><x:deepest/></x:deeper></x:whatever>\n"
  "  </rss:channel>\n"
  "  <x:ignored>text</x:ignored>\n"
  "  <rss:item r:about='http://radio.example/b'>\n"
  "    <rss:title>B&#233;&amp;&#x1F3B5;</rss:title>\n"
  "    <d:identifier>isbn:12345</d:identifier>\n"
  "    <d:identifier> urn:sha1:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567 </d:identifier>\n"
  "    <event:startdate>2026-11-25T11:00:00+01:00</event:startdate>\n"
  "    <event:enddate>2026-11-25T10:05:00.5Z</event:enddate>\n"
  "    <e:enclosure e:url='http://radio.example/b' e:type='audio/mpeg' e:length='4242'/>\n"
  "    <xi:include href='file:///etc/passwd' parse='text'/>\n"
  "    <x:rating>5</x:rating>\n"
  "  </rss:item>\n"
  "  <rss:item r:about='http://radio.example/a'>\n"
  "    <event:startdate>2026-11-25T09:58:00Z</event:startdate>\n"
  "    <event:enddate>2026-11-25T10:00:00Z</event:enddate>\n"
  "    <d:format>audio/ogg</d:format>\n"
  "    <d:creator>Someone</d:creator>\n"
  "  </rss:item>\n"
  "</r:RDF>\n";

static void
test_roundtrip_document (void)
{
  g_autoptr(AlvPlaylist) pl = parse_ok (hand_written);
  g_autoptr(AlvPlaylist) back = NULL;
  g_autoptr(GDateTime) base = dt ("2000-01-01");
  g_autoptr(GDateTime) b_start = dt ("2026-11-25T10:00:00Z");
  g_autoptr(GDateTime) b_end = dt ("2026-11-25T10:05:00.5Z");
  g_autofree char *text = NULL;
  AlvPlaylistItem *a, *b;

  g_assert_cmpstr (alv_playlist_get_about (pl), ==, "http://radio.example/");
  g_assert_cmpstr (alv_playlist_get_title (pl), ==, "Night & <Day>");
  g_assert_cmpstr (alv_playlist_get_link (pl), ==, "http://radio.example/");
  g_assert_cmpstr (alv_playlist_get_description (pl), ==, "All nightlong");
  g_assert_cmpstr (alv_playlist_get_update_period (pl), ==, "daily");
  g_assert_cmpuint (alv_playlist_get_update_frequency (pl), ==, 48);
  g_assert_true (g_date_time_equal (alv_playlist_get_update_base (pl), base));
  g_assert_cmpint (alv_playlist_get_refresh_interval (pl), ==, G_GINT64_CONSTANT (1800) * G_USEC_PER_SEC);

  /* sorted by slot, whatever the document order */
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 2);
  a = alv_playlist_get_item (pl, 0);
  b = alv_playlist_get_item (pl, 1);
  g_assert_cmpstr (alv_playlist_item_get_url (a), ==, "http://radio.example/a");
  g_assert_cmpstr (alv_playlist_item_get_media_type (a), ==, "audio/ogg");
  g_assert_cmpstr (alv_playlist_item_get_creator (a), ==, "Someone");
  g_assert_null (alv_playlist_item_get_title (a));
  g_assert_null (alv_playlist_item_get_urn (a));
  g_assert_cmpuint (alv_playlist_item_get_length (a), ==, 0);

  g_assert_cmpstr (alv_playlist_item_get_url (b), ==, "http://radio.example/b");
  g_assert_cmpstr (alv_playlist_item_get_title (b), ==, "Bé&🎵");
  g_assert_cmpstr (alv_playlist_item_get_urn (b), ==, "urn:sha1:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
  g_assert_cmpstr (alv_playlist_item_get_media_type (b), ==, "audio/mpeg");
  g_assert_cmpuint (alv_playlist_item_get_length (b), ==, 4242);
  g_assert_true (g_date_time_equal (alv_playlist_item_get_start (b), b_start));
  g_assert_true (g_date_time_equal (alv_playlist_item_get_end (b), b_end));
  g_assert_null (strstr (alv_playlist_item_get_title (b), "root:"));

  text = alv_playlist_to_string (pl, NULL);
  back = parse_ok (text);
  g_assert_true (alv_playlist_equal (pl, back));
}

static void
test_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("test-playlist-XXXXXX", &error);
  g_autofree char *path = NULL;
  g_autofree char *big = NULL;
  g_autofree char *missing = NULL;
  g_autoptr(AlvPlaylist) pl = make_full_playlist ();
  g_autoptr(AlvPlaylist) back = NULL;
  g_autoptr(AlvPlaylist) none = NULL;
  g_autofree char *junk = NULL;

  g_assert_no_error (error);
  path = g_build_filename (dir, "playlist.rss", NULL);
  big = g_build_filename (dir, "big.rss", NULL);
  missing = g_build_filename (dir, "missing.rss", NULL);

  g_assert_true (alv_playlist_write_file (pl, path, &error));
  g_assert_no_error (error);
  back = alv_playlist_parse_file (path, &error);
  g_assert_no_error (error);
  g_assert_true (alv_playlist_equal (pl, back));

  /* a file over the limit is refused, the error names the file */
  junk = g_strnfill (ALV_PLAYLIST_MAX_SIZE + 1, ' ');
  g_assert_true (g_file_set_contents (big, junk, ALV_PLAYLIST_MAX_SIZE + 1, &error));
  g_assert_no_error (error);
  none = alv_playlist_parse_file (big, &error);
  g_assert_null (none);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_assert_nonnull (strstr (error->message, big));
  g_clear_error (&error);

  /* exactly at the limit it is read and parsed (and is not XML) */
  g_assert_true (g_file_set_contents (big, junk, ALV_PLAYLIST_MAX_SIZE, &error));
  none = alv_playlist_parse_file (big, &error);
  g_assert_null (none);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_assert_true (g_str_has_prefix (error->message, big));
  g_clear_error (&error);

  none = alv_playlist_parse_file (missing, &error);
  g_assert_null (none);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* an invalid model is not written */
  add_item (pl, "ftp://x.example/f", "2030-01-01T00:00:00Z", "2030-01-01T00:01:00Z");
  g_assert_false (alv_playlist_write_file (pl, missing, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_assert_false (g_file_test (missing, G_FILE_TEST_EXISTS));

  g_assert_cmpint (g_unlink (path), ==, 0);
  g_assert_cmpint (g_unlink (big), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
assert_invalid_model (AlvPlaylist *pl,
                      AlvError     code,
                      const char  *fragment)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (alv_playlist_validate (pl, &error));
  g_assert_error (error, ALV_ERROR, (int) code);
  if (strstr (error->message, fragment) == NULL)
    g_error ("expected “%s” in “%s”", fragment, error->message);
}

static void
test_validate (void)
{
  {
    g_autoptr(AlvPlaylist) pl = alv_playlist_new ();

    add_item (pl, "http://a.example/1", "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z");
    add_item (pl, "http://a.example/2", "2026-01-01T00:04:59Z", "2026-01-01T00:06:00Z");
    assert_invalid_model (pl, ALV_ERROR_INVALID, "overlaps");
  }
  {
    g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
    g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new ("http://a.example/1");

    alv_playlist_add_item (pl, item);
    assert_invalid_model (pl, ALV_ERROR_INVALID, "ev:startdate");
  }
  {
    g_autoptr(AlvPlaylist) pl = alv_playlist_new ();

    add_item (pl, "http://a.example/1", "2026-01-01T00:05:00Z", "2026-01-01T00:05:00Z");
    assert_invalid_model (pl, ALV_ERROR_INVALID, "ends before");
  }
  {
    g_autoptr(AlvPlaylist) pl = alv_playlist_new ();

    add_item (pl, "file:///etc/passwd", "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z");
    assert_invalid_model (pl, ALV_ERROR_INVALID, "http");
  }
  {
    g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
    g_autoptr(AlvPlaylistItem) item = make_item ("http://a.example/1", "2026-01-01T00:00:00Z",
                                                 "2026-01-01T00:05:00Z");

    alv_playlist_item_set_media_type (item, "audio");
    alv_playlist_add_item (pl, item);
    assert_invalid_model (pl, ALV_ERROR_INVALID, "MIME");
    alv_playlist_item_set_media_type (item, "audio/mpeg");
    alv_playlist_item_set_urn (item, "sha1:XYZ");
    assert_invalid_model (pl, ALV_ERROR_INVALID, "URN");
    alv_playlist_item_set_urn (item, NULL);
    alv_playlist_item_set_title (item, "bad \x01 control");
    assert_invalid_model (pl, ALV_ERROR_INVALID, "title");
    alv_playlist_item_set_title (item, "bad \xc3 UTF-8");
    assert_invalid_model (pl, ALV_ERROR_INVALID, "UTF-8");
    alv_playlist_item_set_title (item, NULL);
    alv_playlist_set_update_period (pl, "fortnightly");
    assert_invalid_model (pl, ALV_ERROR_INVALID, "sy:updatePeriod");
  }
  {
    g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
    g_autoptr(GDateTime) t0 = dt ("2026-01-01");

    for (guint i = 0; i <= ALV_PLAYLIST_MAX_ITEMS; i++)
      {
        g_autofree char *url = g_strdup_printf ("http://a.example/%u", i);
        g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (url);
        g_autoptr(GDateTime) s = g_date_time_add_seconds (t0, i);
        g_autoptr(GDateTime) e = g_date_time_add_seconds (t0, i + 1);

        alv_playlist_item_set_slot (item, s, e);
        alv_playlist_add_item (pl, item);
      }
    assert_invalid_model (pl, ALV_ERROR_LIMIT, "limit");
  }
}

/* ------------------------------------------------------------------------
 * Hostile and invalid documents
 * ------------------------------------------------------------------------ */

static void
test_bad_root (void)
{
  assert_refused ("<html><body/></html>", ALV_ERROR_INVALID, 1);
  assert_refused ("<?xml version='1.0'?>\n\n<RDF><channel/></RDF>", ALV_ERROR_INVALID, 3);
  assert_refused ("<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns'/>",
                  ALV_ERROR_INVALID, 1);
  assert_refused ("<rss version='2.0'><channel/></rss>", ALV_ERROR_UNSUPPORTED, 1);
  assert_refused ("<feed xmlns='http://www.w3.org/2005/Atom'/>", ALV_ERROR_UNSUPPORTED, 1);
  assert_refused (HEAD TAIL, ALV_ERROR_INVALID, 4);  /* no channel; a start tag is on the line it ends */
  assert_refused (HEAD CHANNEL CHANNEL TAIL, ALV_ERROR_INVALID, 6); /* two */
  assert_refused_len ("", 0, ALV_ERROR_PARSE, 0);
  assert_refused ("   ", ALV_ERROR_PARSE, 1);
  assert_refused (HEAD CHANNEL "\n<item>", ALV_ERROR_PARSE, 7);   /* unclosed */
  assert_refused (HEAD CHANNEL "<title>a</titel>\n" TAIL, ALV_ERROR_PARSE, 6);
  assert_refused (HEAD CHANNEL "<x:y/>" TAIL, ALV_ERROR_PARSE, 6);  /* unbound prefix */
  assert_refused (HEAD CHANNEL "<item>&nbsp;</item>" TAIL, ALV_ERROR_PARSE, 6);
  assert_refused (HEAD CHANNEL TAIL "<second/>", ALV_ERROR_PARSE, 7);
}

#define SLOT \
  "<ev:startdate>2026-11-25T10:00:00Z</ev:startdate>" \
  "<ev:enddate>2026-11-25T10:03:00Z</ev:enddate>"

/* Every slot of an item played more than once is a resource of its own (a
 * feed reader sees as many entries as slots, RDF does not merge them),
 * while link and the enclosure name the media; a playlist whose rdf:about
 * is the media URL (written before) reads the same. */
static void
test_slot_ids (void)
{
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(AlvPlaylist) back = NULL;
  g_autoptr(AlvPlaylist) old = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) abouts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autofree char *text = NULL;
  const char *times[] = { "2026-11-25T10:00:00Z", "2026-11-25T10:01:00Z", "2026-11-25T10:02:00Z",
                          "2026-11-25T10:03:00Z" };
  const char *p;

  for (guint i = 0; i + 1 < G_N_ELEMENTS (times); i++)
    {
      g_autoptr(AlvPlaylistItem) item = make_item ("https://cdn.example/jingle.ogg", times[i],
                                                   times[i + 1]);

      alv_playlist_add_item (pl, item);
    }
  text = alv_playlist_to_string (pl, NULL);
  for (p = strstr (text, "<item rdf:about=\""); p != NULL; p = strstr (p + 1, "<item rdf:about=\""))
    {
      const char *start = p + strlen ("<item rdf:about=\"");

      g_hash_table_add (abouts, g_strndup (start, strchr (start, '"') - start));
    }
  g_assert_cmpuint (g_hash_table_size (abouts), ==, 3);
  g_assert_nonnull (strstr (text, "<rdf:li rdf:resource=\"https://cdn.example/jingle.ogg"
                                  "#slot=2026-11-25T10:00:00Z\"/>"));
  g_assert_nonnull (strstr (text, "<link>https://cdn.example/jingle.ogg</link>"));
  g_assert_nonnull (strstr (text, "<enc:enclosure rdf:resource=\"https://cdn.example/jingle.ogg\""));
  g_assert_true (g_hash_table_contains (abouts,
                                        "https://cdn.example/jingle.ogg#slot=2026-11-25T10:01:00Z"));
  back = alv_playlist_parse (text, strlen (text), &error);
  g_assert_no_error (error);
  g_assert_true (alv_playlist_equal (pl, back));
  for (guint i = 0; i < alv_playlist_get_n_items (back); i++)
    g_assert_cmpstr (alv_playlist_item_get_url (alv_playlist_get_item (back, i)), ==,
                     "https://cdn.example/jingle.ogg");

  old = alv_playlist_parse (HEAD CHANNEL "<item rdf:about='http://a/1'><link>http://a/1</link>"
                            SLOT "</item>" TAIL, strlen (HEAD CHANNEL "<item rdf:about='http://a/1'>"
                                                         "<link>http://a/1</link>" SLOT "</item>" TAIL),
                            &error);
  g_assert_no_error (error);
  g_assert_cmpstr (alv_playlist_item_get_url (alv_playlist_get_item (old, 0)), ==, "http://a/1");
}

static void
test_bad_items (void)
{
  /* each item starts on line 6 */
  assert_refused (HEAD CHANNEL "<item>" SLOT "</item>" TAIL, ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='  '>" SLOT "</item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='file:///etc/passwd'>" SLOT "</item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http:/x'>" SLOT "</item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/ b'>" SLOT "</item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'><link>http://a/2</link>"
                  SLOT "</item>" TAIL, ALV_ERROR_INVALID, 6);
  /* a slot's identifier names the media before its fragment */
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1#slot=x'><link>http://a/2</link>"
                  SLOT "</item>" TAIL, ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>"
                  "<ev:enddate>2026-11-25T10:03:00Z</ev:enddate></item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>"
                  "<ev:startdate>2026-11-25T10:03:00Z</ev:startdate></item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>"
                  "<ev:startdate> </ev:startdate><ev:enddate>2026-11-25T10:03:00Z</ev:enddate>"
                  "</item>" TAIL, ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>"
                  "<ev:startdate>2026-11-25T10:03:00Z</ev:startdate>"
                  "<ev:enddate>2026-11-25T10:03:00Z</ev:enddate></item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>" SLOT SLOT "</item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>" SLOT
                  "<title>a</title><title>b</title></item>" TAIL, ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>" SLOT
                  "<title>a<b/></title></item>" TAIL, ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>" SLOT
                  "<dc:format>audio</dc:format></item>" TAIL, ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>" SLOT
                  "<dc:identifier>urn:x:\xc3\xa9</dc:identifier></item>" TAIL,
                  ALV_ERROR_INVALID, 6);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>" SLOT
                  "<title>&#1;</title></item>" TAIL, ALV_ERROR_PARSE, 6);
  assert_refused (HEAD "<channel><link>ftp://x/</link></channel>" TAIL, ALV_ERROR_INVALID, 5);
  assert_refused (HEAD "<channel><sy:updatePeriod xmlns:sy='http://purl.org/rss/1.0/modules/"
                  "syndication/'>often</sy:updatePeriod></channel>" TAIL, ALV_ERROR_INVALID, 5);
  assert_refused (HEAD "<channel><sy:updateFrequency xmlns:sy='http://purl.org/rss/1.0/modules/"
                  "syndication/'>0</sy:updateFrequency></channel>" TAIL, ALV_ERROR_INVALID, 5);

  /* over-long text */
  {
    g_autofree char *title = g_strnfill (ALV_PLAYLIST_MAX_TEXT_LENGTH + 1, 'x');
    g_autofree char *doc = g_strconcat (HEAD CHANNEL "<item rdf:about='http://a/1'>" SLOT
                                        "\n<title>", title, "</title></item>" TAIL, NULL);

    assert_refused (doc, ALV_ERROR_LIMIT, 7);
  }
}

static void
test_bad_dates (void)
{
  /* the line is the date element's, not the item's */
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>\n"
                  "<ev:startdate>2026-11-25T10:00:00</ev:startdate>\n"
                  "<ev:enddate>2026-11-25T10:03:00Z</ev:enddate></item>" TAIL,
                  ALV_ERROR_PARSE, 7);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>\n"
                  "<ev:startdate>2026-11-25T10:00:00Z</ev:startdate>\n"
                  "<ev:enddate>tomorrow</ev:enddate></item>" TAIL,
                  ALV_ERROR_PARSE, 8);
  assert_refused (HEAD CHANNEL "<item rdf:about='http://a/1'>\n"
                  "<ev:startdate>2026-02-30T10:00:00Z</ev:startdate>\n"
                  "<ev:enddate>2026-11-25T10:03:00Z</ev:enddate></item>" TAIL,
                  ALV_ERROR_PARSE, 7);
  assert_refused (HEAD "<channel>\n<sy:updateBase xmlns:sy='http://purl.org/rss/1.0/modules/"
                  "syndication/'>yesterday</sy:updateBase></channel>" TAIL,
                  ALV_ERROR_PARSE, 6);
}

static void
test_overlap (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  const char *doc =
    HEAD CHANNEL
    "<item rdf:about='http://a/1'>\n"                                     /* 6 */
    "<ev:startdate>2026-11-25T10:00:00Z</ev:startdate>\n"
    "<ev:enddate>2026-11-25T10:03:00Z</ev:enddate></item>\n"
    "<item rdf:about='http://a/3'>\n"                                     /* 9 */
    "<ev:startdate>2026-11-25T10:10:00Z</ev:startdate>\n"
    "<ev:enddate>2026-11-25T10:13:00Z</ev:enddate></item>\n"
    "<item rdf:about='http://a/2'>\n"                                     /* 12 */
    "<ev:startdate>2026-11-25T11:02:59.999+01:00</ev:startdate>\n"
    "<ev:enddate>2026-11-25T10:05:00Z</ev:enddate></item>\n"
    TAIL;

  assert_refused (doc, ALV_ERROR_INVALID, 12);
  pl = alv_playlist_parse (doc, strlen (doc), &error);
  g_assert_null (pl);
  g_assert_nonnull (strstr (error->message, "(line 6)"));
  g_assert_nonnull (strstr (error->message, "http://a/1"));
  g_assert_nonnull (strstr (error->message, "http://a/2"));

  /* back-to-back slots do not overlap */
  g_clear_object (&pl);
  pl = parse_ok (HEAD CHANNEL
                 "<item rdf:about='http://a/1'>" SLOT "</item>"
                 "<item rdf:about='http://a/2'>"
                 "<ev:startdate>2026-11-25T10:03:00Z</ev:startdate>"
                 "<ev:enddate>2026-11-25T10:04:00Z</ev:enddate></item>"
                 TAIL);
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 2);

  /* nor does a slot inside a long one get past the check */
  assert_refused (HEAD CHANNEL
                  "<item rdf:about='http://a/1'><ev:startdate>2026-11-25T10:00:00Z</ev:startdate>"
                  "<ev:enddate>2026-11-25T12:00:00Z</ev:enddate></item>\n"
                  "<item rdf:about='http://a/2'>" SLOT "</item>" TAIL,
                  ALV_ERROR_INVALID, 0);
}

static void
test_doctype (void)
{
  /* any DOCTYPE at all */
  assert_refused ("<?xml version='1.0'?>\n<!DOCTYPE rdf:RDF>\n" HEAD CHANNEL TAIL,
                  ALV_ERROR_UNSAFE, 2);
  /* external DTD: never fetched (the port is closed anyway) */
  assert_refused ("<!DOCTYPE rdf:RDF SYSTEM 'http://127.0.0.1:9/evil.dtd'>\n" HEAD CHANNEL TAIL,
                  ALV_ERROR_UNSAFE, 1);
  assert_refused ("<!DOCTYPE rdf:RDF PUBLIC '-//W3C//DTD XHTML 1.0 Strict//EN' "
                  "'file:///etc/passwd'>\n" HEAD CHANNEL TAIL,
                  ALV_ERROR_UNSAFE, 1);
  /* external entity */
  assert_refused ("<?xml version='1.0'?>\n\n"
                  "<!DOCTYPE rdf:RDF [ <!ENTITY xxe SYSTEM 'file:///etc/passwd'> ]>\n"
                  "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#' "
                  "xmlns='http://purl.org/rss/1.0/'><channel><title>&xxe;</title></channel>"
                  "</rdf:RDF>",
                  ALV_ERROR_UNSAFE, 3);
  /* parameter entity pulling an external DTD */
  assert_refused ("<!DOCTYPE r [ <!ENTITY % p SYSTEM 'http://127.0.0.1:9/x'> %p; ]>\n<r/>",
                  ALV_ERROR_UNSAFE, 1);
  /* a DOCTYPE after the root is not XML at all */
  assert_refused (HEAD CHANNEL TAIL "<!DOCTYPE r>", ALV_ERROR_PARSE, 0);
}

static void
test_billion_laughs (void)
{
  g_autoptr(GString) doc = g_string_new ("<?xml version='1.0'?>\n<!DOCTYPE rdf:RDF [\n"
                                         " <!ENTITY lol0 'lol'>\n");
  g_autoptr(GString) quadratic = NULL;
  g_autofree char *big_entity = NULL;

  /* 10^9 "lol"s if ever expanded */
  for (guint i = 1; i < 10; i++)
    {
      g_string_append_printf (doc, " <!ENTITY lol%u '", i);
      for (guint j = 0; j < 10; j++)
        g_string_append_printf (doc, "&lol%u;", i - 1);
      g_string_append (doc, "'>\n");
    }
  g_string_append (doc, "]>\n"
                   "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'"
                   " xmlns='http://purl.org/rss/1.0/'>\n"
                   "<channel><title>&lol9;</title></channel></rdf:RDF>\n");
  assert_refused (doc->str, ALV_ERROR_UNSAFE, 2);

  /* the quadratic blow-up: one big entity referenced many times */
  big_entity = g_strnfill (100000, 'a');
  quadratic = g_string_new ("<!DOCTYPE r [<!ENTITY a '");
  g_string_append (quadratic, big_entity);
  g_string_append (quadratic, "'>]>\n<r>");
  for (guint i = 0; i < 100000; i++)
    g_string_append (quadratic, "&a;");
  g_string_append (quadratic, "</r>");
  assert_refused (quadratic->str, ALV_ERROR_UNSAFE, 1);

  /* without a DOCTYPE, references to undeclared entities are errors */
  assert_refused (HEAD CHANNEL "<item>&lol9;</item>" TAIL, ALV_ERROR_PARSE, 6);
}

/* A channel holding @levels nested extension elements. */
static char *
nested_document (guint levels)
{
  GString *s = g_string_new (HEAD "<channel xmlns:x='urn:x'>");

  for (guint i = 0; i < levels; i++)
    g_string_append (s, "<x:d>");
  for (guint i = 0; i < levels; i++)
    g_string_append (s, "</x:d>");
  g_string_append (s, "</channel>" TAIL);
  return g_string_free (s, FALSE);
}

static void
test_nesting (void)
{
  /* rdf:RDF (1) / channel (2) / 14 levels: exactly the limit */
  g_autofree char *ok = nested_document (ALV_PLAYLIST_MAX_DEPTH - 2);
  g_autofree char *deep = nested_document (ALV_PLAYLIST_MAX_DEPTH - 1);
  g_autoptr(GString) very_deep = g_string_new (HEAD);
  g_autoptr(AlvPlaylist) pl = parse_ok (ok);

  assert_refused (deep, ALV_ERROR_LIMIT, 5);

  /* a million levels: refused at level 17, without building them */
  for (guint i = 0; i < 1000000; i++)
    g_string_append (very_deep, "<a>");
  assert_refused (very_deep->str, ALV_ERROR_LIMIT, 5);
}

static void
test_attribute_bombs (void)
{
  g_autoptr(GString) attrs = g_string_new (HEAD CHANNEL "\n<x ");
  g_autoptr(GString) ns = g_string_new (HEAD CHANNEL "<x\n");
  g_autoptr(GString) ok = g_string_new (HEAD "<channel");

  while (attrs->len < ALV_PLAYLIST_MAX_SIZE - 100)
    g_string_append_printf (attrs, "a%x=\"\" ", (guint) attrs->len);
  g_string_append (attrs, "/>" TAIL);
  assert_refused (attrs->str, ALV_ERROR_LIMIT, 7);

  while (ns->len < ALV_PLAYLIST_MAX_SIZE - 100)
    g_string_append_printf (ns, " xmlns:p%x='urn:%x'", (guint) ns->len, (guint) ns->len);
  g_string_append (ns, "/>" TAIL);
  assert_refused (ns->str, ALV_ERROR_LIMIT, 6);

  /* exactly the limit, with '=', '>' and '<'-free quotes inside values */
  for (guint i = 0; i < ALV_PLAYLIST_MAX_ATTRIBUTES; i++)
    g_string_append_printf (ok, " a%u='x=\">'", i);
  g_string_append (ok, "/>" TAIL);
  {
    g_autoptr(AlvPlaylist) pl = parse_ok (ok->str);
    g_autoptr(GString) over = g_string_new (ok->str);

    g_string_replace (over, "<channel", "<channel rdf:about='http://a/'", 1);
    assert_refused (over->str, ALV_ERROR_LIMIT, 5);
  }

  /* comments, CDATA and processing instructions hide no tags */
  {
    g_autoptr(AlvPlaylist) pl =
      parse_ok (HEAD "<!-- <a b=1 c=2 '> -->\n<?pi x='<y a=b'?>"
                "<channel><title><![CDATA[<z a=1 b=2>]]></title></channel>" TAIL);

    g_assert_cmpstr (alv_playlist_get_title (pl), ==, "<z a=1 b=2>");
  }
}

static void
test_encoding (void)
{
  /* not UTF-8: named by line */
  assert_refused (HEAD CHANNEL "\n<item>caf\xe9</item>" TAIL, ALV_ERROR_PARSE, 7);
  assert_refused_len (HEAD "\0" CHANNEL TAIL, sizeof (HEAD CHANNEL TAIL), ALV_ERROR_PARSE, 5);
  /* UTF-16 (with its BOM) */
  {
    const char utf16[] = "\xff\xfe<\0r\0/\0>\0";

    assert_refused_len (utf16, sizeof utf16 - 1, ALV_ERROR_PARSE, 1);
  }
  /* another declared encoding, even with ASCII content */
  assert_refused ("<?xml version='1.0' encoding='ISO-8859-1'?>\n"
                  "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'/>",
                  ALV_ERROR_UNSUPPORTED, 2);
  assert_refused ("<?xml version='1.0' encoding='no-such-charset'?><r/>", ALV_ERROR_PARSE, 1);
  /* a UTF-8 BOM and a UTF-8 declaration are fine */
  {
    g_autoptr(AlvPlaylist) pl =
      parse_ok ("\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?>"
                "<rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'"
                " xmlns='http://purl.org/rss/1.0/'><channel><title>é</title></channel></rdf:RDF>");

    g_assert_cmpstr (alv_playlist_get_title (pl), ==, "é");
  }
}

static void
test_too_big (void)
{
  g_autofree char *doc = g_malloc (ALV_PLAYLIST_MAX_SIZE + 2);
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;

  /* a valid document padded past the limit is refused unread */
  memset (doc, ' ', ALV_PLAYLIST_MAX_SIZE + 1);
  memcpy (doc, HEAD CHANNEL TAIL, strlen (HEAD CHANNEL TAIL));
  doc[ALV_PLAYLIST_MAX_SIZE + 1] = '\0';
  assert_refused_len (doc, ALV_PLAYLIST_MAX_SIZE + 1, ALV_ERROR_LIMIT, 0);

  /* one byte less is parsed */
  pl = alv_playlist_parse (doc, ALV_PLAYLIST_MAX_SIZE, &error);
  g_assert_no_error (error);
  g_assert_nonnull (pl);
  g_clear_object (&pl);

  /* too many elements, each tiny */
  {
    g_autoptr(GString) many = g_string_new (HEAD CHANNEL);

    while (many->len < ALV_PLAYLIST_MAX_SIZE - 100)
      g_string_append (many, "<x/>");
    g_string_append (many, TAIL);
    assert_refused_within (many->str, many->len, ALV_ERROR_LIMIT, 6, 30 * G_USEC_PER_SEC);
  }

  bytes = g_bytes_new_static (HEAD CHANNEL TAIL, strlen (HEAD CHANNEL TAIL));
  pl = alv_playlist_parse_bytes (bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (alv_playlist_get_title (pl), ==, "R");
}

/* Comments and processing instructions cost their bytes in the document
 * and nothing more: none is kept, nor the white space around them, and
 * the text they split is still one text. */
static void
test_comments (void)
{
  g_autoptr(GString) doc = g_string_new (HEAD CHANNEL);
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autoptr(GError) error = NULL;
  gsize cost;

  g_string_append (doc,
                   "<item rdf:about='http://s.example/1.ogg'>\n"
                   "<title>A<!-- between -->B<?pi in a title?>C</title>\n");
  for (guint i = 0; i < 150000; i++)
    g_string_append (doc, "<!--c-->\n");
  g_string_append (doc,
                   "<ev:startdate>2026-11-25T00:00:00Z</ev:startdate>"
                   "<ev:enddate>2026-11-25T00:03:00Z</ev:enddate></item>\n");
  for (guint i = 0; i < 150000; i++)
    g_string_append (doc, i % 100 == 0 ? "<?pi x?>\n" : "<!--c-->\n");
  g_string_append (doc, TAIL);
  g_assert_cmpuint (doc->len, <, ALV_PLAYLIST_MAX_SIZE);

  pl = parse_counted (doc->str, doc->len, &cost, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 1);
  g_assert_cmpstr (alv_playlist_item_get_title (alv_playlist_get_item (pl, 0)), ==, "ABC");
  g_assert_cmpuint (cost, <=, PARSE_BUDGET (doc->len));
}

/* Elements the parser does not read cost no memory either; too many are
 * refused with a message that says so; elements it does read cost what
 * their values hold, not a tree. */
static void
test_many_elements (void)
{
  g_autoptr(GError) error = NULL;
  gsize cost;

  /* as many extension elements as allowed: parsed */
  {
    g_autoptr(GString) doc = g_string_new (HEAD "<channel><title>R</title>\n");
    g_autoptr(AlvPlaylist) pl = NULL;

    for (guint i = 0; i < ALV_PLAYLIST_MAX_ELEMENTS - 8; i++)
      g_string_append (doc, "<x/>");
    g_string_append (doc, "</channel>\n" TAIL);
    pl = parse_counted (doc->str, doc->len, &cost, &error);
    g_assert_no_error (error);
    g_assert_cmpstr (alv_playlist_get_title (pl), ==, "R");
    g_assert_cmpuint (cost, <=, PARSE_BUDGET (doc->len));
  }

  /* one more: refused, saying why */
  {
    g_autoptr(GString) doc = g_string_new (HEAD CHANNEL);
    g_autoptr(AlvPlaylist) pl = NULL;
    g_autofree char *expected =
      g_strdup_printf ("line 6: the playlist has more than %d elements",
                       ALV_PLAYLIST_MAX_ELEMENTS);

    for (guint i = 0; i < ALV_PLAYLIST_MAX_ELEMENTS; i++)
      g_string_append (doc, "<x/>");
    g_string_append (doc, TAIL);
    pl = parse_counted (doc->str, doc->len, &cost, &error);
    g_assert_null (pl);
    g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
    g_assert_cmpstr (error->message, ==, expected);
    g_assert_cmpuint (cost, <=, PARSE_BUDGET (doc->len));
    g_clear_error (&error);
  }

  /* elements that are read, each one kept as it comes: an item with
   * a hundred thousand identifiers, none of them a URN */
  {
    g_autoptr(GString) doc = g_string_new (HEAD CHANNEL
                                           "<item rdf:about='http://s.example/1.ogg'>\n"
                                           "<ev:startdate>2026-11-25T00:00:00Z</ev:startdate>"
                                           "<ev:enddate>2026-11-25T00:03:00Z</ev:enddate>\n");
    g_autoptr(AlvPlaylist) pl = NULL;

    for (guint i = 0; i < 100000; i++)
      g_string_append (doc, "<dc:identifier>x</dc:identifier>");
    g_string_append (doc, "</item>\n" TAIL);
    g_assert_cmpuint (doc->len, <, ALV_PLAYLIST_MAX_SIZE);
    pl = parse_counted (doc->str, doc->len, &cost, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (alv_playlist_get_n_items (pl), ==, 1);
    g_assert_null (alv_playlist_item_get_urn (alv_playlist_get_item (pl, 0)));
    g_assert_cmpuint (cost, <=, PARSE_BUDGET (doc->len));
  }

  /* a channel with a hundred thousand titles: the second is refused */
  {
    g_autoptr(GString) doc = g_string_new (HEAD "<channel>\n");
    g_autoptr(AlvPlaylist) pl = NULL;

    for (guint i = 0; i < 100000; i++)
      g_string_append (doc, "<title>t</title>\n");
    g_string_append (doc, "</channel>\n" TAIL);
    pl = parse_counted (doc->str, doc->len, &cost, &error);
    g_assert_null (pl);
    g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
    g_assert_cmpstr (error->message, ==, "line 7: more than one title");
    g_assert_cmpuint (cost, <=, PARSE_BUDGET (doc->len));
  }
}

/* A playlist of @n items of one second each, with short fields. */
static AlvPlaylist *
make_big_playlist (guint n)
{
  AlvPlaylist *pl = alv_playlist_new ();
  g_autoptr(GDateTime) t0 = dt ("2026-11-25T00:00:00Z");

  alv_playlist_set_title (pl, "Big");
  for (guint i = 0; i < n; i++)
    {
      g_autofree char *url = g_strdup_printf ("http://s.example/%u.ogg", i);
      g_autofree char *title = g_strdup_printf ("Track %u", i);
      g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (url);
      g_autoptr(GDateTime) s = g_date_time_add_seconds (t0, i * 180);
      g_autoptr(GDateTime) e = g_date_time_add_seconds (t0, i * 180 + 180);

      alv_playlist_item_set_slot (item, s, e);
      alv_playlist_item_set_title (item, title);
      alv_playlist_item_set_media_type (item, "audio/ogg");
      alv_playlist_add_item (pl, item);
    }
  return pl;
}

static void
test_big (void)
{
  g_autoptr(AlvPlaylist) pl = make_big_playlist (ALV_PLAYLIST_MAX_ITEMS);
  g_autoptr(AlvPlaylist) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GString) over = NULL;
  gsize length, cost;
  gint64 t0;

  text = alv_playlist_to_string (pl, &length);
  g_assert_cmpuint (length, <=, ALV_PLAYLIST_MAX_SIZE);

  t0 = g_get_monotonic_time ();
  back = parse_counted (text, length, &cost, &error);
  g_test_message ("%u items, %" G_GSIZE_FORMAT " bytes, parsed in %.3f s",
                  ALV_PLAYLIST_MAX_ITEMS, length, (g_get_monotonic_time () - t0) / 1e6);
  g_assert_no_error (error);
  g_assert_cmpuint (cost, <=, PARSE_BUDGET (length));
  g_assert_cmpuint (alv_playlist_get_n_items (back), ==, ALV_PLAYLIST_MAX_ITEMS);
  g_assert_true (alv_playlist_equal (pl, back));

  /* the look-ups on a big playlist */
  {
    g_autoptr(GDateTime) when = dt ("2026-11-30T00:00:00Z");  /* 5 days = item 2400 */
    guint index = 0;
    AlvPlaylistItem *item = alv_playlist_find_item_at (back, when, &index);

    g_assert_nonnull (item);
    g_assert_cmpuint (index, ==, 2400);
    g_assert_cmpstr (alv_playlist_item_get_url (item), ==, "http://s.example/2400.ogg");
  }

  /* one item more, in a minimal form that is still well under the size
   * limit: refused on the item past the limit */
  over = g_string_new (HEAD CHANNEL);
  for (guint i = 0; i <= ALV_PLAYLIST_MAX_ITEMS; i++)
    g_string_append_printf (over,
                            "<item rdf:about='http://s/%u'>\n"
                            "<ev:startdate>2026-11-25T%02u:%02u:%02uZ</ev:startdate>"
                            "<ev:enddate>2026-11-25T%02u:%02u:%02u.5Z</ev:enddate></item>\n",
                            i, i / 3600, (i / 60) % 60, i % 60, i / 3600, (i / 60) % 60, i % 60);
  g_string_append (over, TAIL);
  g_assert_cmpuint (over->len, <, ALV_PLAYLIST_MAX_SIZE);
  /* (this one builds 10000 items first: allow for slow sanitizers) */
  assert_refused_within (over->str, over->len, ALV_ERROR_LIMIT, 6 + 2 * ALV_PLAYLIST_MAX_ITEMS,
                         30 * G_USEC_PER_SEC);
}

int
main (int argc, char **argv)
{
  /* before anything makes libxml2 allocate */
  g_assert_cmpint (xmlMemSetup (xml_mem_free, xml_mem_malloc, xml_mem_realloc,
                                xml_mem_strdup), ==, 0);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/common/time/parse", test_time_parse);
  g_test_add_func ("/common/time/bad", test_time_bad);
  g_test_add_func ("/common/time/format", test_time_format);
  g_test_add_func ("/common/time/roundtrip", test_time_roundtrip);

  g_test_add_func ("/common/playlist/model", test_model);
  g_test_add_func ("/common/playlist/find", test_find);
  g_test_add_func ("/common/playlist/roundtrip-model", test_roundtrip_model);
  g_test_add_func ("/common/playlist/roundtrip-document", test_roundtrip_document);
  g_test_add_func ("/common/playlist/file", test_file);
  g_test_add_func ("/common/playlist/validate", test_validate);
  g_test_add_func ("/common/playlist/big", test_big);
  g_test_add_func ("/common/playlist/slot-ids", test_slot_ids);

  g_test_add_func ("/common/playlist/hostile/root", test_bad_root);
  g_test_add_func ("/common/playlist/hostile/items", test_bad_items);
  g_test_add_func ("/common/playlist/hostile/dates", test_bad_dates);
  g_test_add_func ("/common/playlist/hostile/overlap", test_overlap);
  g_test_add_func ("/common/playlist/hostile/doctype", test_doctype);
  g_test_add_func ("/common/playlist/hostile/billion-laughs", test_billion_laughs);
  g_test_add_func ("/common/playlist/hostile/nesting", test_nesting);
  g_test_add_func ("/common/playlist/hostile/attributes", test_attribute_bombs);
  g_test_add_func ("/common/playlist/hostile/encoding", test_encoding);
  g_test_add_func ("/common/playlist/hostile/too-big", test_too_big);
  g_test_add_func ("/common/playlist/hostile/comments", test_comments);
  g_test_add_func ("/common/playlist/hostile/many-elements", test_many_elements);

  return g_test_run ();
}
