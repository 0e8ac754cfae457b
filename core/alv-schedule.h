/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The schedule of one station (doc/core.md): AlvSchedule owns the
 * playlist URL, fetches the playlist over HTTP (libsoup 3, http/https only,
 * bounded redirects and size, ETag/Last-Modified revalidation), refreshes
 * it per the channel's syndication hints and before the last known item
 * ends, keeps the station clock fed from each response's Date header, and
 * tells its owner which item plays now ("item-changed", with the offset
 * into the slot), when to prefetch the next one ("prefetch"), when a new
 * playlist version arrived ("playlist-updated") and when a refresh failed
 * ("error").  Station "now" can be injected so tests need not wait.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "alv-clock.h"
#include "alv-playlist.h"

G_BEGIN_DECLS

/* most HTTP redirects followed for one playlist fetch */
#define ALV_SCHEDULE_MAX_REDIRECTS 5
/* default time (µs) before the next slot starts at which "prefetch" fires */
#define ALV_SCHEDULE_DEFAULT_PREFETCH_LEAD (120 * G_USEC_PER_SEC)
/* shortest wait (µs) between two refreshes triggered by the playlist's end */
#define ALV_SCHEDULE_MIN_END_REFRESH (15 * G_USEC_PER_SEC)
/* first retry delay (µs) after a failed refresh; doubled up to the interval */
#define ALV_SCHEDULE_RETRY_DELAY (30 * G_USEC_PER_SEC)

/**
 * AlvScheduleNowFunc:
 * @user_data: the data given with the function
 *
 * Returns: station time now, in Unix microseconds
 */
typedef gint64 (*AlvScheduleNowFunc) (gpointer user_data);

#define ALV_TYPE_SCHEDULE (alv_schedule_get_type ())
G_DECLARE_FINAL_TYPE (AlvSchedule, alv_schedule, ALV, SCHEDULE, GObject)

gboolean         alv_schedule_check_url          (const char         *url,
                                                  GError            **error);

AlvSchedule     *alv_schedule_new                (const char         *url,
                                                  SoupSession        *session,
                                                  GError            **error);
const char      *alv_schedule_get_url            (AlvSchedule        *sched);
void             alv_schedule_set_now_func       (AlvSchedule        *sched,
                                                  AlvScheduleNowFunc  func,
                                                  gpointer            user_data,
                                                  GDestroyNotify      destroy);
void             alv_schedule_set_prefetch_lead  (AlvSchedule        *sched,
                                                  GTimeSpan           lead);
gint64           alv_schedule_now                (AlvSchedule        *sched);
AlvStationClock *alv_schedule_get_clock          (AlvSchedule        *sched);

void             alv_schedule_refresh_async      (AlvSchedule        *sched,
                                                  GCancellable       *cancellable,
                                                  GAsyncReadyCallback callback,
                                                  gpointer            user_data);
gboolean         alv_schedule_refresh_finish     (AlvSchedule        *sched,
                                                  GAsyncResult       *result,
                                                  gboolean           *changed_out,
                                                  GError            **error);
void             alv_schedule_start              (AlvSchedule        *sched);
void             alv_schedule_stop               (AlvSchedule        *sched);
void             alv_schedule_update             (AlvSchedule        *sched);

AlvPlaylist     *alv_schedule_get_playlist       (AlvSchedule        *sched);
AlvPlaylistItem *alv_schedule_get_current_item   (AlvSchedule        *sched,
                                                  GTimeSpan          *offset_out);
AlvPlaylistItem *alv_schedule_get_next_item      (AlvSchedule        *sched);
gint64           alv_schedule_get_prefetch_time  (AlvSchedule        *sched);
gint64           alv_schedule_get_next_refresh   (AlvSchedule        *sched);
const char      *alv_schedule_get_etag           (AlvSchedule        *sched);
guint            alv_schedule_get_n_fetches      (AlvSchedule        *sched);
guint            alv_schedule_get_n_not_modified (AlvSchedule        *sched);

G_END_DECLS
