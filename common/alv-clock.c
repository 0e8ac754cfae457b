/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The station clock: estimates how far the station's clock is from ours
 * from the `Date` headers of its HTTP responses (doc/core.md).  A Date has
 * one-second resolution and was stamped at some unknown moment of the
 * round trip, so each sample only bounds the offset to an interval:
 * (date - received, date + 1 s - sent).  The clock intersects the
 * intervals of its recent samples — a fast round trip narrows it most,
 * several samples narrow it below the second — and answers the middle.
 * When a new sample contradicts the others (our clock was stepped, the
 * station's was fixed) the older samples are forgotten.
 *
 * The HTTP-date parser here is strict about structure and lenient about
 * case and surrounding whitespace; it reads the three forms of RFC 9110
 * §5.6.7 without libsoup so that it can be fuzzed on its own.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-clock.h"

#include <string.h>

#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

/* Dates outside [2000-01-01, 2200-01-01) are refused as absurd; the same
 * bounds keep every µs computation far from overflow. */
#define DATE_MIN_UNIX G_GINT64_CONSTANT (946684800)
#define DATE_MAX_UNIX G_GINT64_CONSTANT (7258118400)
#define LOCAL_MAX_US  (DATE_MAX_UNIX * G_USEC_PER_SEC)

typedef struct
{
  gint64 lo;        /* the offset is above this (µs) */
  gint64 hi;        /* and below this */
  gint64 received;  /* local time of the response, for ageing */
} Sample;

struct _AlvStationClock
{
  GObject parent_instance;

  Sample  samples[ALV_STATION_CLOCK_MAX_SAMPLES];
  guint   n_samples;
  gint64  offset;
  gint64  uncertainty;
};

G_DEFINE_FINAL_TYPE (AlvStationClock, alv_station_clock, G_TYPE_OBJECT)

static void
alv_station_clock_class_init (AlvStationClockClass *klass G_GNUC_UNUSED)
{
}

static void
alv_station_clock_init (AlvStationClock *self G_GNUC_UNUSED)
{
}

/**
 * alv_station_clock_new:
 *
 * Creates a clock without samples; until it gets one, station time is
 * local time.
 *
 * Returns: (transfer full): a new #AlvStationClock
 */
AlvStationClock *
alv_station_clock_new (void)
{
  return g_object_new (ALV_TYPE_STATION_CLOCK, NULL);
}

static void
recompute (AlvStationClock *self)
{
  gint64 lo = G_MININT64;
  gint64 hi = G_MAXINT64;

  if (self->n_samples == 0)
    {
      self->offset = 0;
      self->uncertainty = 0;
      return;
    }
  for (guint i = 0; i < self->n_samples; i++)
    {
      lo = MAX (lo, self->samples[i].lo);
      hi = MIN (hi, self->samples[i].hi);
    }
  /* bounded inputs: hi - lo cannot overflow */
  self->offset = lo + (hi - lo) / 2;
  self->uncertainty = (hi - lo + 1) / 2;
}

static void
remove_sample (AlvStationClock *self,
               guint            index)
{
  memmove (&self->samples[index], &self->samples[index + 1],
           (self->n_samples - index - 1) * sizeof (Sample));
  self->n_samples--;
}

/**
 * alv_station_clock_add_sample:
 * @clock: a clock
 * @date_header: the `Date` header of a station response
 * @request_sent_us: g_get_real_time() when the request was sent
 * @response_received_us: g_get_real_time() when the response headers
 *   arrived
 * @error: return location for a #GError
 *
 * Adds a measurement.  The station stamped its Date (truncated to the
 * second) somewhere between sending and receiving, which bounds the
 * offset; the clock keeps the %ALV_STATION_CLOCK_MAX_SAMPLES narrowest
 * recent samples (none older than %ALV_STATION_CLOCK_MAX_AGE before the
 * newest) and estimates the offset as the middle of their intersection.
 * A sample inconsistent with the others replaces them all.
 *
 * Errors: %ALV_ERROR_PARSE for a Date that is no HTTP-date;
 * %ALV_ERROR_INVALID for a Date outside the years 2000–2199, a local
 * time before 1970 or after 2199, or a reply received before it was sent; %ALV_ERROR_LIMIT for a
 * round trip longer than %ALV_STATION_CLOCK_MAX_RTT.  The clock is
 * unchanged on error.
 *
 * Returns: %TRUE if the sample was used
 */
gboolean
alv_station_clock_add_sample (AlvStationClock  *clock,
                              const char       *date_header,
                              gint64            request_sent_us,
                              gint64            response_received_us,
                              GError          **error)
{
  gint64 date_s;
  gint64 date_us;
  Sample sample;
  gint64 lo, hi;

  g_return_val_if_fail (ALV_IS_STATION_CLOCK (clock), FALSE);
  g_return_val_if_fail (date_header != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!alv_http_date_parse (date_header, &date_s, error))
    return FALSE;
  if (date_s < DATE_MIN_UNIX || date_s >= DATE_MAX_UNIX)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Date: %s is not a plausible station time"), date_header);
      return FALSE;
    }
  if (request_sent_us < 0
      || response_received_us >= LOCAL_MAX_US
      || response_received_us < request_sent_us)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Station clock: implausible request times %" PRId64
                     " and %" PRId64 " µs"),
                   request_sent_us, response_received_us);
      return FALSE;
    }
  if (response_received_us - request_sent_us > ALV_STATION_CLOCK_MAX_RTT)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("Station clock: a round trip of %" PRId64 " ms is too long to use"),
                   (response_received_us - request_sent_us) / 1000);
      return FALSE;
    }

  date_us = date_s * G_USEC_PER_SEC;
  sample.lo = date_us - response_received_us;
  sample.hi = date_us + G_USEC_PER_SEC - request_sent_us;
  sample.received = response_received_us;

  /* forget samples too old (or from a future we have been stepped back
   * from) to say anything about the clocks now */
  for (guint i = 0; i < clock->n_samples;)
    {
      gint64 age = response_received_us - clock->samples[i].received;

      if (age > ALV_STATION_CLOCK_MAX_AGE || age < -ALV_STATION_CLOCK_MAX_AGE)
        remove_sample (clock, i);
      else
        i++;
    }

  /* a contradiction means one of the clocks moved: trust the newest */
  lo = sample.lo;
  hi = sample.hi;
  for (guint i = 0; i < clock->n_samples; i++)
    {
      lo = MAX (lo, clock->samples[i].lo);
      hi = MIN (hi, clock->samples[i].hi);
    }
  if (lo > hi)
    clock->n_samples = 0;

  if (clock->n_samples == ALV_STATION_CLOCK_MAX_SAMPLES)
    {
      /* drop the widest (slowest round trip), the oldest among equals */
      guint widest = 0;

      for (guint i = 1; i < clock->n_samples; i++)
        if (clock->samples[i].hi - clock->samples[i].lo
            > clock->samples[widest].hi - clock->samples[widest].lo)
          widest = i;
      remove_sample (clock, widest);
    }
  clock->samples[clock->n_samples++] = sample;
  recompute (clock);

  g_debug ("station clock: offset %" G_GINT64_FORMAT " µs ± %" G_GINT64_FORMAT
           " from %u samples", clock->offset, clock->uncertainty, clock->n_samples);
  return TRUE;
}

/**
 * alv_station_clock_has_samples:
 * @clock: a clock
 *
 * Returns: %TRUE once a sample was accepted
 */
gboolean
alv_station_clock_has_samples (AlvStationClock *clock)
{
  g_return_val_if_fail (ALV_IS_STATION_CLOCK (clock), FALSE);

  return clock->n_samples > 0;
}

/**
 * alv_station_clock_get_n_samples:
 * @clock: a clock
 *
 * Returns: how many samples the estimate rests on
 */
guint
alv_station_clock_get_n_samples (AlvStationClock *clock)
{
  g_return_val_if_fail (ALV_IS_STATION_CLOCK (clock), 0);

  return clock->n_samples;
}

/**
 * alv_station_clock_get_offset:
 * @clock: a clock
 *
 * Returns: the estimated station time minus local real time, in µs (0
 *   without samples): add it to g_get_real_time()
 */
gint64
alv_station_clock_get_offset (AlvStationClock *clock)
{
  g_return_val_if_fail (ALV_IS_STATION_CLOCK (clock), 0);

  return clock->offset;
}

/**
 * alv_station_clock_get_uncertainty:
 * @clock: a clock
 *
 * Returns: half the width of the interval the offset is known to lie in,
 *   in µs (at most about half a second plus half the round trip of the
 *   best sample; 0 without samples)
 */
gint64
alv_station_clock_get_uncertainty (AlvStationClock *clock)
{
  g_return_val_if_fail (ALV_IS_STATION_CLOCK (clock), 0);

  return clock->uncertainty;
}

/**
 * alv_station_clock_now:
 * @clock: a clock
 *
 * Returns: the estimated station time, in µs since the Unix epoch
 */
gint64
alv_station_clock_now (AlvStationClock *clock)
{
  g_return_val_if_fail (ALV_IS_STATION_CLOCK (clock), g_get_real_time ());

  return g_get_real_time () + clock->offset;
}

/**
 * alv_station_clock_now_datetime:
 * @clock: a clock
 *
 * Returns: (transfer full): the estimated station time, in UTC
 */
GDateTime *
alv_station_clock_now_datetime (AlvStationClock *clock)
{
  g_autoptr(GDateTime) seconds = NULL;
  gint64 now, s, us;

  g_return_val_if_fail (ALV_IS_STATION_CLOCK (clock), NULL);

  now = alv_station_clock_now (clock);
  s = now / G_USEC_PER_SEC;
  us = now % G_USEC_PER_SEC;
  if (us < 0)
    {
      s--;
      us += G_USEC_PER_SEC;
    }
  seconds = g_date_time_new_from_unix_utc (s);
  if (seconds == NULL)
    return NULL;
  return g_date_time_add (seconds, us);
}

/**
 * alv_station_clock_reset:
 * @clock: a clock
 *
 * Forgets every sample (e.g. when tuning to another station).
 */
void
alv_station_clock_reset (AlvStationClock *clock)
{
  g_return_if_fail (ALV_IS_STATION_CLOCK (clock));

  clock->n_samples = 0;
  recompute (clock);
}

/* ------------------------------------------------------------------ */
/* HTTP-date (RFC 9110 §5.6.7)                                         */

static const char *const day_names_short[] = {
  "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
};
static const char *const day_names_long[] = {
  "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
};
static const char *const month_names[] = {
  "Jan", "Feb", "Mar", "Apr", "May", "Jun",
  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static gint64
days_from_civil (gint64 y,
                 guint  m,
                 guint  d)
{
  gint64 era, yoe, doy, doe;

  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (gint64) (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static guint
days_in_month (gint64 y,
               guint  m)
{
  static const guint days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    return 29;
  return days[m - 1];
}

typedef struct
{
  const char *p;
} Scanner;

/* Reads 1..max_len letters into buf (NUL-terminated); FALSE if none. */
static gboolean
scan_word (Scanner *s,
           char    *buf,
           gsize    max_len)
{
  gsize n = 0;

  while (g_ascii_isalpha (s->p[n]))
    {
      if (n >= max_len)
        return FALSE;
      buf[n] = s->p[n];
      n++;
    }
  buf[n] = '\0';
  s->p += n;
  return n > 0;
}

/* Reads between min_digits and max_digits digits. */
static gboolean
scan_digits (Scanner *s,
             guint    min_digits,
             guint    max_digits,
             guint   *out)
{
  guint n = 0;
  guint v = 0;

  while (g_ascii_isdigit (s->p[n]))
    {
      if (n >= max_digits)
        return FALSE;
      v = v * 10 + (guint) (s->p[n] - '0');
      n++;
    }
  if (n < min_digits)
    return FALSE;
  s->p += n;
  *out = v;
  return TRUE;
}

static gboolean
scan_char (Scanner *s,
           char     c)
{
  if (*s->p != c)
    return FALSE;
  s->p++;
  return TRUE;
}

static gboolean
scan_time (Scanner *s,
           guint   *h,
           guint   *mi,
           guint   *sec)
{
  return scan_digits (s, 2, 2, h) && scan_char (s, ':')
         && scan_digits (s, 2, 2, mi) && scan_char (s, ':')
         && scan_digits (s, 2, 2, sec);
}

static gboolean
scan_gmt (Scanner *s)
{
  char zone[4];

  return scan_word (s, zone, 3) && g_ascii_strcasecmp (zone, "GMT") == 0;
}

static gint
lookup_name (const char        *word,
             const char *const *names,
             guint              n_names)
{
  for (guint i = 0; i < n_names; i++)
    if (g_ascii_strcasecmp (word, names[i]) == 0)
      return (gint) i;
  return -1;
}

/* RFC 9110: a two-digit year more than 50 years in the future is the
 * most recent past year with those digits. */
static gint64
expand_two_digit_year (guint yy)
{
  gint64 now_year = 1970 + g_get_real_time () / G_USEC_PER_SEC / 31556952;
  gint64 y = now_year - now_year % 100 + yy;

  if (y > now_year + 50)
    y -= 100;
  return y;
}

/**
 * alv_http_date_parse:
 * @value: an HTTP-date, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`
 * @unix_seconds_out: (out): the time, in seconds since the Unix epoch
 * @error: return location for a #GError
 *
 * Parses the three forms of RFC 9110 §5.6.7: IMF-fixdate
 * (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
 * (`Sunday, 06-Nov-94 08:49:37 GMT`, two-digit years read as RFC 9110
 * says) and asctime (`Sun Nov  6 08:49:37 1994`).  Names are matched in any
 * case and surrounding whitespace is ignored; the weekday is not checked
 * against the date.  A leap second (`:60`) reads as `:59`.
 *
 * Errors: %ALV_ERROR_PARSE for anything else, %ALV_ERROR_INVALID for a
 * day that does not exist or a time out of range.
 *
 * Returns: %TRUE on success
 */
gboolean
alv_http_date_parse (const char  *value,
                     gint64      *unix_seconds_out,
                     GError     **error)
{
  Scanner s;
  char word[10];
  char month_word[4];
  gint64 year = 0;
  guint day = 0, yy = 0, h = 0, mi = 0, sec = 0;
  gint month;
  gboolean ok;

  g_return_val_if_fail (value != NULL, FALSE);
  g_return_val_if_fail (unix_seconds_out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  s.p = value;
  while (*s.p == ' ' || *s.p == '\t')
    s.p++;

  if (!scan_word (&s, word, 9)
      || (lookup_name (word, day_names_short, 7) < 0
          && lookup_name (word, day_names_long, 7) < 0))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("Date: “%s” does not start with a day name"), value);
      return FALSE;
    }

  if (scan_char (&s, ','))
    {
      ok = scan_char (&s, ' ') && scan_digits (&s, 1, 2, &day);
      if (ok && scan_char (&s, ' '))
        {
          /* IMF-fixdate: 06 Nov 1994 08:49:37 GMT */
          guint y4 = 0;

          ok = scan_word (&s, month_word, 3) && scan_char (&s, ' ')
               && scan_digits (&s, 4, 4, &y4) && scan_char (&s, ' ')
               && scan_time (&s, &h, &mi, &sec) && scan_char (&s, ' ')
               && scan_gmt (&s);
          year = y4;
        }
      else if (ok && scan_char (&s, '-'))
        {
          /* RFC 850: 06-Nov-94 08:49:37 GMT */
          ok = scan_word (&s, month_word, 3) && scan_char (&s, '-')
               && scan_digits (&s, 2, 2, &yy) && scan_char (&s, ' ')
               && scan_time (&s, &h, &mi, &sec) && scan_char (&s, ' ')
               && scan_gmt (&s);
          year = expand_two_digit_year (yy);
        }
      else
        ok = FALSE;
    }
  else
    {
      /* asctime: Nov  6 08:49:37 1994 */
      guint y4 = 0;

      ok = scan_char (&s, ' ') && scan_word (&s, month_word, 3) && scan_char (&s, ' ');
      if (ok)
        scan_char (&s, ' ');
      ok = ok && scan_digits (&s, 1, 2, &day) && scan_char (&s, ' ')
           && scan_time (&s, &h, &mi, &sec) && scan_char (&s, ' ')
           && scan_digits (&s, 4, 4, &y4);
      year = y4;
    }

  while (ok && (*s.p == ' ' || *s.p == '\t'))
    s.p++;
  if (!ok || *s.p != '\0')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("Date: “%s” is not an HTTP-date"), value);
      return FALSE;
    }

  month = lookup_name (month_word, month_names, 12);
  if (month < 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("Date: “%s” has no valid month name"), value);
      return FALSE;
    }
  if (day < 1 || day > days_in_month (year, (guint) month + 1)
      || h > 23 || mi > 59 || sec > 60)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Date: “%s” is not a valid date and time"), value);
      return FALSE;
    }
  if (sec == 60)
    sec = 59;

  *unix_seconds_out = days_from_civil (year, (guint) month + 1, day) * 86400
                      + h * 3600 + mi * 60 + sec;
  return TRUE;
}

/**
 * alv_http_date_format:
 * @unix_seconds: a time in seconds since the Unix epoch, in years 1–9999
 *
 * Returns: (transfer full): the IMF-fixdate, e.g.
 *   `Sun, 06 Nov 1994 08:49:37 GMT` (C-locale names)
 */
char *
alv_http_date_format (gint64 unix_seconds)
{
  g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc (unix_seconds);

  g_return_val_if_fail (dt != NULL, NULL);

  return g_strdup_printf ("%s, %02d %s %04d %02d:%02d:%02d GMT",
                          day_names_short[g_date_time_get_day_of_week (dt) - 1],
                          g_date_time_get_day_of_month (dt),
                          month_names[g_date_time_get_month (dt) - 1],
                          g_date_time_get_year (dt),
                          g_date_time_get_hour (dt),
                          g_date_time_get_minute (dt),
                          g_date_time_get_second (dt));
}
