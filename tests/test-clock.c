/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of common/alv-clock.h: the HTTP-date parser and formatter, and the
 * station clock's offset estimate from synthetic Date headers and request
 * timings (a simulated station whose clock is off by a known amount).
 */
#include "config.h"

#include <glib.h>

#include "alv-clock.h"
#include "alv-error.h"

static void
test_date_parse (void)
{
  struct { const char *in; gint64 expected; } good[] = {
    { "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 },          /* IMF-fixdate */
    { "Sunday, 06-Nov-94 08:49:37 GMT", 784111777 },         /* RFC 850 */
    { "Sun Nov  6 08:49:37 1994", 784111777 },               /* asctime */
    { "Sun Nov 06 08:49:37 1994", 784111777 },
    { "  sun, 06 nov 1994 08:49:37 gmt  ", 784111777 },      /* case, spaces */
    { "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
    { "Tue, 29 Feb 2000 12:00:00 GMT", 951825600 },
    { "Sat, 31 Dec 2033 23:59:60 GMT", 2019686399 },         /* leap second */
    { "Wed, 15 Jan 2025 10:20:30 GMT", 1736936430 },
    { "Wednesday, 15-Jan-25 10:20:30 GMT", 1736936430 },
    { "Fri, 31 Dec 9999 23:59:59 GMT", G_GINT64_CONSTANT (253402300799) },
  };
  struct { const char *in; AlvError code; } bad[] = {
    { "", ALV_ERROR_PARSE },
    { "yesterday", ALV_ERROR_PARSE },
    { "Sun, 06 Nov 1994 08:49:37", ALV_ERROR_PARSE },
    { "Sun, 06 Nov 1994 08:49:37 UTC", ALV_ERROR_PARSE },
    { "Sun, 06 Nov 1994 08:49:37 GMT+1", ALV_ERROR_PARSE },
    { "Sun, 06 Nov 94 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun, 06 Nov 19945 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun, 06 Nov 1994 8:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun, 06 Nov 1994 08:49 GMT", ALV_ERROR_PARSE },
    { "Sun,06 Nov 1994 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Xyz, 06 Nov 1994 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun, 06 Foo 1994 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun, 06 November 1994 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun, 06-Nov-1994 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun Nov  6 08:49:37 94", ALV_ERROR_PARSE },
    { "1994-11-06T08:49:37Z", ALV_ERROR_PARSE },
    { "Sun, 999999999999999999999 Nov 1994 08:49:37 GMT", ALV_ERROR_PARSE },
    { "Sun, 00 Nov 1994 08:49:37 GMT", ALV_ERROR_INVALID },
    { "Sun, 31 Nov 1994 08:49:37 GMT", ALV_ERROR_INVALID },
    { "Thu, 29 Feb 2001 08:49:37 GMT", ALV_ERROR_INVALID },
    { "Sun, 06 Nov 1994 24:00:00 GMT", ALV_ERROR_INVALID },
    { "Sun, 06 Nov 1994 08:60:00 GMT", ALV_ERROR_INVALID },
    { "Sun, 06 Nov 1994 08:49:61 GMT", ALV_ERROR_INVALID },
  };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 t = -1;

      g_test_message ("Date: %s", good[i].in);
      g_assert_true (alv_http_date_parse (good[i].in, &t, &error));
      g_assert_no_error (error);
      g_assert_cmpint (t, ==, good[i].expected);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 t = -1;

      g_test_message ("bad Date: %s", bad[i].in);
      g_assert_false (alv_http_date_parse (bad[i].in, &t, &error));
      g_assert_error (error, ALV_ERROR, (gint) bad[i].code);
      g_assert_cmpint (t, ==, -1);
    }
}

static void
test_date_format (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (1994);
  g_autofree char *s = alv_http_date_format (784111777);

  g_assert_cmpstr (s, ==, "Sun, 06 Nov 1994 08:49:37 GMT");

  /* round trips, and agreement with GDateTime's calendar */
  for (guint i = 0; i < 2000; i++)
    {
      gint64 t = (gint64) (g_rand_double (rand) * 8e9);
      g_autofree char *text = alv_http_date_format (t);
      g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (t);
      gint64 back = -1;

      g_assert_true (alv_http_date_parse (text, &back, NULL));
      g_assert_cmpint (back, ==, t);
      g_assert_nonnull (g_strrstr (text, " GMT"));
      g_assert_cmpint (g_date_time_get_day_of_month (dt), ==, (gint) g_ascii_strtoll (text + 5, NULL, 10));
      g_assert_cmpint (g_date_time_get_year (dt), ==, (gint) g_ascii_strtoll (text + 12, NULL, 10));
    }
}

/* A simulated station: its clock is ahead of ours by true_offset µs; it
 * stamps its Date at a random moment of the round trip, truncated to the
 * second, as a real server does. */
typedef struct
{
  gint64 true_offset;
  GRand *rand;
} Station;

static char *
station_date (Station *station,
              gint64   sent,
              gint64   received)
{
  gint64 stamped = sent + (gint64) (g_rand_double (station->rand) * (double) (received - sent));
  gint64 station_time = stamped + station->true_offset;

  return alv_http_date_format (station_time / G_USEC_PER_SEC);
}

static void
assert_truth_inside (AlvStationClock *clock,
                     gint64           true_offset)
{
  gint64 offset = alv_station_clock_get_offset (clock);
  gint64 unc = alv_station_clock_get_uncertainty (clock);

  g_assert_cmpint (offset - unc, <=, true_offset);
  g_assert_cmpint (offset + unc, >=, true_offset);
}

static void
test_clock_estimate (void)
{
  g_autoptr(AlvStationClock) clock = alv_station_clock_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (5);
  Station station = { G_GINT64_CONSTANT (3600250000), rand };   /* +1 h 0.25 s */
  gint64 base = G_GINT64_CONSTANT (1700000000) * G_USEC_PER_SEC;
  g_autoptr(GError) error = NULL;

  g_assert_false (alv_station_clock_has_samples (clock));
  g_assert_cmpint (alv_station_clock_get_offset (clock), ==, 0);

  /* one sample, 80 ms round trip: within half a second and a bit */
  {
    gint64 sent = base + 123456;
    gint64 received = sent + 80000;
    g_autofree char *date = station_date (&station, sent, received);

    g_assert_true (alv_station_clock_add_sample (clock, date, sent, received, &error));
    g_assert_no_error (error);
    g_assert_true (alv_station_clock_has_samples (clock));
    assert_truth_inside (clock, station.true_offset);
    g_assert_cmpint (alv_station_clock_get_uncertainty (clock), <=, 540000 + 1);
    g_assert_cmpint (ABS (alv_station_clock_get_offset (clock) - station.true_offset), <=, 540000);
  }

  /* more samples at different sub-second phases narrow it down */
  for (guint i = 1; i < 40; i++)
    {
      gint64 sent = base + i * 7 * G_USEC_PER_SEC + g_rand_int_range (rand, 0, 1000000);
      gint64 received = sent + g_rand_int_range (rand, 5000, 40000);
      g_autofree char *date = station_date (&station, sent, received);

      g_assert_true (alv_station_clock_add_sample (clock, date, sent, received, &error));
      g_assert_no_error (error);
      assert_truth_inside (clock, station.true_offset);
    }
  g_assert_cmpuint (alv_station_clock_get_n_samples (clock), <=, ALV_STATION_CLOCK_MAX_SAMPLES);
  g_assert_cmpint (alv_station_clock_get_uncertainty (clock), <=, 60000);
  g_test_message ("estimate %" G_GINT64_FORMAT " +/- %" G_GINT64_FORMAT " us, truth %" G_GINT64_FORMAT,
                  alv_station_clock_get_offset (clock), alv_station_clock_get_uncertainty (clock),
                  station.true_offset);

  /* a slow sample is kept out of the estimate's way */
  {
    gint64 sent = base + 400 * G_USEC_PER_SEC;
    gint64 received = sent + 30 * G_USEC_PER_SEC;
    g_autofree char *date = station_date (&station, sent, received);
    gint64 before = alv_station_clock_get_uncertainty (clock);

    g_assert_true (alv_station_clock_add_sample (clock, date, sent, received, &error));
    assert_truth_inside (clock, station.true_offset);
    g_assert_cmpint (alv_station_clock_get_uncertainty (clock), <=, before);
  }

  /* the station's clock is stepped back 10 minutes: the estimate follows */
  station.true_offset -= 600 * G_USEC_PER_SEC;
  {
    gint64 sent = base + 500 * G_USEC_PER_SEC;
    gint64 received = sent + 50000;
    g_autofree char *date = station_date (&station, sent, received);

    g_assert_true (alv_station_clock_add_sample (clock, date, sent, received, &error));
    g_assert_cmpuint (alv_station_clock_get_n_samples (clock), ==, 1);
    assert_truth_inside (clock, station.true_offset);
  }

  alv_station_clock_reset (clock);
  g_assert_false (alv_station_clock_has_samples (clock));
  g_assert_cmpint (alv_station_clock_get_offset (clock), ==, 0);
}

static void
test_clock_old_samples (void)
{
  g_autoptr(AlvStationClock) clock = alv_station_clock_new ();
  g_autoptr(GRand) rand = g_rand_new_with_seed (6);
  Station station = { -G_GINT64_CONSTANT (42000000), rand };
  gint64 base = G_GINT64_CONSTANT (1800000000) * G_USEC_PER_SEC;

  for (guint i = 0; i < 3; i++)
    {
      gint64 sent = base + i * G_USEC_PER_SEC + 300000 * i;
      g_autofree char *date = station_date (&station, sent, sent + 10000);

      g_assert_true (alv_station_clock_add_sample (clock, date, sent, sent + 10000, NULL));
    }
  g_assert_cmpuint (alv_station_clock_get_n_samples (clock), ==, 3);

  /* two hours later the old samples are forgotten */
  {
    gint64 sent = base + 2 * ALV_STATION_CLOCK_MAX_AGE;
    g_autofree char *date = station_date (&station, sent, sent + 10000);

    g_assert_true (alv_station_clock_add_sample (clock, date, sent, sent + 10000, NULL));
    g_assert_cmpuint (alv_station_clock_get_n_samples (clock), ==, 1);
    assert_truth_inside (clock, station.true_offset);
  }
}

static void
test_clock_errors (void)
{
  g_autoptr(AlvStationClock) clock = alv_station_clock_new ();
  g_autoptr(GError) error = NULL;
  gint64 now = G_GINT64_CONSTANT (1736936430) * G_USEC_PER_SEC;
  const char *date = "Wed, 15 Jan 2025 10:20:30 GMT";

  g_assert_false (alv_station_clock_add_sample (clock, "not a date", now, now + 1000, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);

  g_assert_false (alv_station_clock_add_sample (clock, "Sun, 06 Nov 1994 08:49:37 GMT",
                                                now, now + 1000, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_false (alv_station_clock_add_sample (clock, "Fri, 31 Dec 9999 23:59:59 GMT",
                                                now, now + 1000, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_false (alv_station_clock_add_sample (clock, date, now, now - 1, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_false (alv_station_clock_add_sample (clock, date, -5, 10, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_false (alv_station_clock_add_sample (clock, date, G_MININT64, G_MAXINT64, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  g_assert_false (alv_station_clock_add_sample (clock, date, now, now + 61 * G_USEC_PER_SEC, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);

  g_assert_false (alv_station_clock_has_samples (clock));
  g_assert_cmpint (alv_station_clock_get_offset (clock), ==, 0);

  /* a local clock stuck in 1970 is fine: only the station must be sane */
  g_assert_true (alv_station_clock_add_sample (clock, date, 1000, 2000, &error));
  g_assert_no_error (error);
  g_assert_cmpint (alv_station_clock_get_offset (clock), >=, G_GINT64_CONSTANT (1736936430) * G_USEC_PER_SEC - 2000);
}

static void
test_clock_now (void)
{
  g_autoptr(AlvStationClock) clock = alv_station_clock_new ();
  g_autoptr(GDateTime) dt = NULL;
  gint64 sent, received, now, offset;
  g_autofree char *date = NULL;

  /* the station is 2 days ahead of us, measured with real timings */
  sent = g_get_real_time ();
  received = sent + 1000;
  date = alv_http_date_format ((sent + 500 + 2 * G_TIME_SPAN_DAY) / G_USEC_PER_SEC);
  g_assert_true (alv_station_clock_add_sample (clock, date, sent, received, NULL));

  offset = alv_station_clock_get_offset (clock);
  g_assert_cmpint (ABS (offset - 2 * G_TIME_SPAN_DAY), <=, G_USEC_PER_SEC);

  now = alv_station_clock_now (clock);
  g_assert_cmpint (ABS (now - (g_get_real_time () + offset)), <, 5 * G_USEC_PER_SEC);

  dt = alv_station_clock_now_datetime (clock);
  g_assert_nonnull (dt);
  g_assert_cmpint (ABS (g_date_time_to_unix (dt) - now / G_USEC_PER_SEC), <=, 5);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/common/clock/date/parse", test_date_parse);
  g_test_add_func ("/common/clock/date/format", test_date_format);
  g_test_add_func ("/common/clock/station/estimate", test_clock_estimate);
  g_test_add_func ("/common/clock/station/old-samples", test_clock_old_samples);
  g_test_add_func ("/common/clock/station/errors", test_clock_errors);
  g_test_add_func ("/common/clock/station/now", test_clock_now);

  return g_test_run ();
}
