/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The station clock (doc/core.md): an estimate of the station's time made
 * from the HTTP `Date` headers of its responses, so that every listener
 * schedules against the same clock whatever its own clock says.  Also the
 * HTTP-date parser (RFC 9110 §5.6.7: IMF-fixdate plus the obsolete RFC 850
 * and asctime forms) and formatter.
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

/**
 * ALV_STATION_CLOCK_MAX_SAMPLES:
 *
 * How many recent samples an #AlvStationClock keeps.
 */
#define ALV_STATION_CLOCK_MAX_SAMPLES 8

/**
 * ALV_STATION_CLOCK_MAX_RTT:
 *
 * Samples whose round trip took longer than this (µs) are refused.
 */
#define ALV_STATION_CLOCK_MAX_RTT (60 * G_USEC_PER_SEC)

/**
 * ALV_STATION_CLOCK_MAX_AGE:
 *
 * Samples older than this (µs, local time) than the newest are dropped.
 */
#define ALV_STATION_CLOCK_MAX_AGE ((gint64) 3600 * G_USEC_PER_SEC)

#define ALV_TYPE_STATION_CLOCK (alv_station_clock_get_type ())
G_DECLARE_FINAL_TYPE (AlvStationClock, alv_station_clock, ALV, STATION_CLOCK, GObject)

AlvStationClock *alv_station_clock_new              (void);
gboolean         alv_station_clock_add_sample       (AlvStationClock *clock,
                                                     const char      *date_header,
                                                     gint64           request_sent_us,
                                                     gint64           response_received_us,
                                                     GError         **error);
gboolean         alv_station_clock_has_samples      (AlvStationClock *clock);
guint            alv_station_clock_get_n_samples    (AlvStationClock *clock);
gint64           alv_station_clock_get_offset       (AlvStationClock *clock);
gint64           alv_station_clock_get_uncertainty  (AlvStationClock *clock);
gint64           alv_station_clock_now              (AlvStationClock *clock);
GDateTime       *alv_station_clock_now_datetime     (AlvStationClock *clock);
void             alv_station_clock_reset            (AlvStationClock *clock);

gboolean         alv_http_date_parse                (const char      *value,
                                                     gint64          *unix_seconds_out,
                                                     GError         **error);
char            *alv_http_date_format               (gint64           unix_seconds);

G_END_DECLS
