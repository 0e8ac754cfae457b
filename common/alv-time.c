/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * W3C-DTF parsing and formatting.  The parser accepts exactly the six forms
 * of the W3C note (YYYY, YYYY-MM, YYYY-MM-DD, and a date with hh:mm,
 * hh:mm:ss or hh:mm:ss.s plus a mandatory zone designator), range-checks
 * every field, and returns the instant in UTC; a date without a time means
 * the first instant of that year, month or day in UTC.  The formatter writes
 * what the parser reads back to the same microsecond.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-time.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "alv-error.h"

/* Longest input worth quoting back in an error message. */
#define QUOTE_MAX 64

/* Reads exactly @n ASCII digits at *@p into @out and advances *@p. */
static gboolean
read_digits (const char **p,
             guint        n,
             int         *out)
{
  int value = 0;

  for (guint i = 0; i < n; i++)
    {
      char c = (*p)[i];

      if (!g_ascii_isdigit (c))
        return FALSE;
      value = value * 10 + (c - '0');
    }
  *p += n;
  *out = value;
  return TRUE;
}

static GDateTime *
fail (GError    **error,
      const char *text,
      const char *reason)
{
  if (strlen (text) <= QUOTE_MAX && g_utf8_validate (text, -1, NULL))
    g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                 _("Invalid W3C-DTF date “%s”: %s"), text, reason);
  else
    g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                 _("Invalid W3C-DTF date: %s"), reason);
  return NULL;
}

/**
 * alv_time_parse_w3cdtf:
 * @text: a W3C-DTF date or date-time, e.g. `2026-11-25T10:00:00Z`
 * @error: return location for an %ALV_ERROR_PARSE error
 *
 * Parses the W3C profile of ISO 8601.  Accepted forms are `YYYY`,
 * `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mmTZD`, `YYYY-MM-DDThh:mm:ssTZD`
 * and `YYYY-MM-DDThh:mm:ss.sTZD` with 1 to %ALV_TIME_MAX_FRACTION_DIGITS
 * fraction digits, where TZD is `Z`, `+hh:mm` or `-hh:mm` and is required
 * whenever a time is given.  Years run from 0001 to 9999; leap seconds,
 * lower-case designators, surrounding white space and every other variant
 * are refused.  A date without a time stands for its first instant in UTC.
 *
 * Returns: (transfer full): the instant, in UTC, or %NULL with @error set
 */
GDateTime *
alv_time_parse_w3cdtf (const char  *text,
                       GError     **error)
{
  const char *p = text;
  int year, month = 1, day = 1, hour = 0, minute = 0, second = 0;
  int tz_hour = 0, tz_minute = 0, tz_sign = 1;
  gint64 usec = 0;
  g_autoptr(GDateTime) local = NULL;
  GDateTime *utc;

  g_return_val_if_fail (text != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!read_digits (&p, 4, &year))
    return fail (error, text, _("expected a four-digit year"));
  if (year < 1)
    return fail (error, text, _("year out of range"));

  if (*p == '-')
    {
      p++;
      if (!read_digits (&p, 2, &month))
        return fail (error, text, _("expected a two-digit month"));
      if (month < 1 || month > 12)
        return fail (error, text, _("month out of range"));

      if (*p == '-')
        {
          p++;
          if (!read_digits (&p, 2, &day))
            return fail (error, text, _("expected a two-digit day"));
          if (day < 1 || !g_date_valid_dmy (day, month, year))
            return fail (error, text, _("day out of range"));

          if (*p == 'T')
            {
              p++;
              if (!read_digits (&p, 2, &hour) || *p++ != ':' ||
                  !read_digits (&p, 2, &minute))
                return fail (error, text, _("expected hh:mm after “T”"));
              if (hour > 23 || minute > 59)
                return fail (error, text, _("time out of range"));

              if (*p == ':')
                {
                  p++;
                  if (!read_digits (&p, 2, &second))
                    return fail (error, text, _("expected two-digit seconds"));
                  if (second > 59)
                    return fail (error, text, _("seconds out of range"));

                  if (*p == '.')
                    {
                      guint n = 0;
                      gint64 scale = G_USEC_PER_SEC;

                      p++;
                      while (g_ascii_isdigit (*p))
                        {
                          if (++n > ALV_TIME_MAX_FRACTION_DIGITS)
                            return fail (error, text, _("too many fraction digits"));
                          scale /= 10;
                          usec += (*p - '0') * scale;
                          p++;
                        }
                      if (n == 0)
                        return fail (error, text, _("expected digits after “.”"));
                    }
                }

              /* the zone designator is mandatory with a time */
              if (*p == 'Z')
                p++;
              else if (*p == '+' || *p == '-')
                {
                  tz_sign = (*p == '-') ? -1 : 1;
                  p++;
                  if (!read_digits (&p, 2, &tz_hour) || *p++ != ':' ||
                      !read_digits (&p, 2, &tz_minute))
                    return fail (error, text, _("expected a zone of the form ±hh:mm"));
                  if (tz_hour > 23 || tz_minute > 59)
                    return fail (error, text, _("zone offset out of range"));
                }
              else
                return fail (error, text, _("a time needs a zone designator (Z or ±hh:mm)"));
            }
        }
    }

  if (*p != '\0')
    return fail (error, text, _("unexpected characters"));

  local = g_date_time_new_utc (year, month, day, hour, minute, second);
  if (local == NULL)
    return fail (error, text, _("out of range"));

  /* local time minus its offset is UTC; GDateTime refuses to leave 1..9999 */
  utc = g_date_time_add (local,
                         usec - tz_sign * (tz_hour * G_TIME_SPAN_HOUR +
                                           tz_minute * G_TIME_SPAN_MINUTE));
  if (utc == NULL)
    return fail (error, text, _("out of range"));

  return utc;
}

/**
 * alv_time_format_w3cdtf:
 * @dt: an instant
 *
 * Formats @dt in UTC as `YYYY-MM-DDThh:mm:ssZ`, with a fraction of a
 * second (trailing zeros removed) only when its microseconds are not zero.
 * alv_time_parse_w3cdtf() reads the result back to the same instant.
 *
 * Returns: (transfer full): the W3C-DTF text
 */
char *
alv_time_format_w3cdtf (GDateTime *dt)
{
  g_autoptr(GDateTime) utc = NULL;
  int usec;
  GString *s;

  g_return_val_if_fail (dt != NULL, NULL);

  utc = g_date_time_to_utc (dt);
  if (utc == NULL)  /* only at the very edge of year 1 */
    utc = g_date_time_ref (dt);
  s = g_string_new (NULL);
  g_string_append_printf (s, "%04d-%02d-%02dT%02d:%02d:%02d",
                          g_date_time_get_year (utc),
                          g_date_time_get_month (utc),
                          g_date_time_get_day_of_month (utc),
                          g_date_time_get_hour (utc),
                          g_date_time_get_minute (utc),
                          g_date_time_get_second (utc));
  usec = g_date_time_get_microsecond (utc);
  if (usec != 0)
    {
      g_string_append_printf (s, ".%06d", usec);
      while (s->str[s->len - 1] == '0')
        g_string_truncate (s, s->len - 1);
    }
  g_string_append_c (s, 'Z');

  return g_string_free (s, FALSE);
}
