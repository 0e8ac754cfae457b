/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The station schedule: fetch and revalidate the playlist, keep the station
 * clock, and turn "now" into the item playing (and its position) or a gap.
 * Every fetch follows redirects by hand (bounded, http/https only), refuses
 * bodies larger than ALV_PLAYLIST_MAX_SIZE while reading, and reports its
 * failures as ALV_CORE_ERROR codes so the D-Bus service can pass them on
 * unchanged.  Timers are computed from differences of station times, so an
 * injected clock (tests) and the real one behave alike; alv_schedule_update()
 * re-evaluates at once.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-schedule.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-dbus.h"
#include "alv-memory.h"

#define READ_CHUNK 65536
/* re-evaluate at least this often (ms), to follow clock corrections */
#define MAX_TICK_MS (60 * 1000)

struct _AlvSchedule
{
  GObject parent_instance;

  char *url;
  SoupSession *session;
  gboolean owns_session;
  GCancellable *cancellable;
  AlvStationClock *clock;

  AlvScheduleNowFunc now_func;
  gpointer now_data;
  GDestroyNotify now_destroy;

  AlvPlaylist *playlist;
  char *etag;
  char *last_modified;

  AlvPlaylistItem *current;   /* NULL in a gap */
  gboolean announced;         /* item-changed emitted at least once */
  AlvPlaylistItem *prefetched;
  GTimeSpan prefetch_lead;

  gboolean started;
  guint tick_id;
  guint refresh_id;
  gint64 next_refresh;        /* station µs, 0 = none */
  gint64 retry_delay;
  guint n_fetches;
  guint n_not_modified;
};

G_DEFINE_TYPE (AlvSchedule, alv_schedule, G_TYPE_OBJECT)

enum
{
  SIGNAL_ITEM_CHANGED,
  SIGNAL_PLAYLIST_UPDATED,
  SIGNAL_PREFETCH,
  SIGNAL_ERROR,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void schedule_refresh_timer (AlvSchedule *self, gint64 delay_us);

static gint64
datetime_to_us (GDateTime *dt)
{
  return g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
}

static GDateTime *
us_to_datetime (gint64 us)
{
  g_autoptr(GDateTime) secs = g_date_time_new_from_unix_utc (us / G_USEC_PER_SEC);

  return g_date_time_add (secs, us % G_USEC_PER_SEC);
}

static gint64
default_now (gpointer user_data)
{
  return alv_station_clock_now (ALV_STATION_CLOCK (user_data));
}

static void
alv_schedule_dispose (GObject *object)
{
  AlvSchedule *self = ALV_SCHEDULE (object);

  alv_schedule_stop (self);
  if (self->owns_session && self->session != NULL)
    soup_session_abort (self->session);
  g_clear_object (&self->session);
  g_clear_object (&self->clock);
  g_clear_object (&self->playlist);
  g_clear_object (&self->current);
  g_clear_object (&self->prefetched);
  if (self->now_destroy != NULL)
    self->now_destroy (self->now_data);
  self->now_destroy = NULL;
  self->now_data = NULL;

  G_OBJECT_CLASS (alv_schedule_parent_class)->dispose (object);
}

static void
alv_schedule_finalize (GObject *object)
{
  AlvSchedule *self = ALV_SCHEDULE (object);

  g_free (self->url);
  g_free (self->etag);
  g_free (self->last_modified);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (alv_schedule_parent_class)->finalize (object);
}

static void
alv_schedule_class_init (AlvScheduleClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = alv_schedule_dispose;
  object_class->finalize = alv_schedule_finalize;

  /* item (nullable: a gap or the end of the playlist), offset into the slot (µs) */
  signals[SIGNAL_ITEM_CHANGED] =
    g_signal_new ("item-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, ALV_TYPE_PLAYLIST_ITEM, G_TYPE_INT64);
  signals[SIGNAL_PLAYLIST_UPDATED] =
    g_signal_new ("playlist-updated", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, ALV_TYPE_PLAYLIST);
  /* the next item, at its prefetch moment (or at once if that has passed) */
  signals[SIGNAL_PREFETCH] =
    g_signal_new ("prefetch", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, ALV_TYPE_PLAYLIST_ITEM);
  /* a background refresh failed; the last good playlist stays in force */
  signals[SIGNAL_ERROR] =
    g_signal_new ("error", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
alv_schedule_init (AlvSchedule *self)
{
  self->cancellable = g_cancellable_new ();
  self->clock = alv_station_clock_new ();
  self->now_func = default_now;
  self->now_data = self->clock;
  self->prefetch_lead = ALV_SCHEDULE_DEFAULT_PREFETCH_LEAD;
}

/**
 * alv_schedule_check_url:
 * @url: a playlist URL
 * @error: return location for a #GError
 *
 * Checks that @url is an absolute http or https URL with a host.
 *
 * Returns: %TRUE if usable, else %FALSE with %ALV_CORE_ERROR_INVALID_URL
 */
gboolean
alv_schedule_check_url (const char *url,
                        GError    **error)
{
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  if (url == NULL || *url == '\0' || strlen (url) > ALV_PLAYLIST_MAX_URL_LENGTH)
    {
      g_set_error_literal (error, ALV_CORE_ERROR, ALV_CORE_ERROR_INVALID_URL,
                           _("The playlist URL is empty or too long"));
      return FALSE;
    }
  uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  scheme = uri != NULL ? g_uri_get_scheme (uri) : NULL;
  if (uri == NULL || scheme == NULL
      || (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      g_set_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_INVALID_URL,
                   _("Not an absolute http or https URL: “%s”"), url);
      return FALSE;
    }
  return TRUE;
}

/**
 * alv_schedule_new:
 * @url: the playlist URL (http or https)
 * @session: (nullable): the session to fetch with; a new one if %NULL
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a schedule, not yet fetched, or
 *   %NULL with %ALV_CORE_ERROR_INVALID_URL
 */
AlvSchedule *
alv_schedule_new (const char  *url,
                  SoupSession *session,
                  GError     **error)
{
  AlvSchedule *self;

  if (!alv_schedule_check_url (url, error))
    return NULL;
  self = g_object_new (ALV_TYPE_SCHEDULE, NULL);
  self->url = g_strdup (url);
  if (session != NULL)
    self->session = g_object_ref (session);
  else
    {
      self->owns_session = TRUE;
      self->session = soup_session_new_with_options ("timeout", 30,
                                                     "user-agent", PACKAGE_NAME "/" PACKAGE_VERSION " ",
                                                     NULL);
    }
  return self;
}

const char *
alv_schedule_get_url (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), NULL);
  return sched->url;
}

/* Replaces the source of station time (tests); %NULL restores the clock. */
void
alv_schedule_set_now_func (AlvSchedule       *sched,
                           AlvScheduleNowFunc func,
                           gpointer           user_data,
                           GDestroyNotify     destroy)
{
  g_return_if_fail (ALV_IS_SCHEDULE (sched));

  if (sched->now_destroy != NULL)
    sched->now_destroy (sched->now_data);
  if (func == NULL)
    {
      sched->now_func = default_now;
      sched->now_data = sched->clock;
      sched->now_destroy = NULL;
      return;
    }
  sched->now_func = func;
  sched->now_data = user_data;
  sched->now_destroy = destroy;
}

void
alv_schedule_set_prefetch_lead (AlvSchedule *sched,
                                GTimeSpan    lead)
{
  g_return_if_fail (ALV_IS_SCHEDULE (sched));
  sched->prefetch_lead = MAX (lead, 0);
}

gint64
alv_schedule_now (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), 0);
  return sched->now_func (sched->now_data);
}

AlvStationClock *
alv_schedule_get_clock (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), NULL);
  return sched->clock;
}

AlvPlaylist *
alv_schedule_get_playlist (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), NULL);
  return sched->playlist;
}

const char *
alv_schedule_get_etag (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), NULL);
  return sched->etag;
}

guint
alv_schedule_get_n_fetches (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), 0);
  return sched->n_fetches;
}

guint
alv_schedule_get_n_not_modified (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), 0);
  return sched->n_not_modified;
}

gint64
alv_schedule_get_next_refresh (AlvSchedule *sched)
{
  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), 0);
  return sched->next_refresh;
}

/* --- which item now -------------------------------------------------- */

/* Same playback: same media at the same slot start (a new playlist version
 * that only retitles or extends the item must not restart it). */
static gboolean
same_playback (AlvPlaylistItem *a,
               AlvPlaylistItem *b)
{
  if (a == b)
    return TRUE;
  if (a == NULL || b == NULL)
    return FALSE;
  return g_strcmp0 (alv_playlist_item_get_url (a), alv_playlist_item_get_url (b)) == 0 &&
         g_date_time_compare (alv_playlist_item_get_start (a), alv_playlist_item_get_start (b)) == 0;
}

/**
 * alv_schedule_get_current_item:
 * @sched: a schedule
 * @offset_out: (out) (optional): µs since the item's slot started
 *
 * Returns: (transfer none) (nullable): the item whose slot contains station
 *   "now", or %NULL in a gap, after the last item or before a fetch
 */
AlvPlaylistItem *
alv_schedule_get_current_item (AlvSchedule *sched,
                               GTimeSpan   *offset_out)
{
  gint64 now;
  g_autoptr(GDateTime) when = NULL;
  AlvPlaylistItem *item;

  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), NULL);

  if (offset_out != NULL)
    *offset_out = 0;
  if (sched->playlist == NULL)
    return NULL;
  now = alv_schedule_now (sched);
  when = us_to_datetime (now);
  item = alv_playlist_find_item_at (sched->playlist, when, NULL);
  if (item != NULL && offset_out != NULL)
    *offset_out = now - datetime_to_us (alv_playlist_item_get_start (item));
  return item;
}

/**
 * alv_schedule_get_next_item:
 * @sched: a schedule
 *
 * Returns: (transfer none) (nullable): the first item starting after
 *   station "now", %NULL when the playlist runs out
 */
AlvPlaylistItem *
alv_schedule_get_next_item (AlvSchedule *sched)
{
  g_autoptr(GDateTime) when = NULL;

  g_return_val_if_fail (ALV_IS_SCHEDULE (sched), NULL);

  if (sched->playlist == NULL)
    return NULL;
  when = us_to_datetime (alv_schedule_now (sched));
  return alv_playlist_find_next_item (sched->playlist, when);
}

/**
 * alv_schedule_get_prefetch_time:
 * @sched: a schedule
 *
 * Returns: station time (Unix µs) at which the next item should start
 *   downloading (its slot start minus the prefetch lead), 0 if none
 */
gint64
alv_schedule_get_prefetch_time (AlvSchedule *sched)
{
  AlvPlaylistItem *next = alv_schedule_get_next_item (sched);

  if (next == NULL)
    return 0;
  return datetime_to_us (alv_playlist_item_get_start (next)) - sched->prefetch_lead;
}

static gboolean
on_tick (gpointer user_data)
{
  AlvSchedule *self = user_data;

  self->tick_id = 0;
  alv_schedule_update (self);
  return G_SOURCE_REMOVE;
}

/**
 * alv_schedule_update:
 * @sched: a started schedule
 *
 * Re-evaluates station "now": emits "item-changed" when the item (or gap)
 * differs from the last one announced, "prefetch" once per next item when
 * its moment has come, and re-arms the timer for the next such moment.
 */
void
alv_schedule_update (AlvSchedule *sched)
{
  AlvPlaylistItem *item, *next;
  GTimeSpan offset = 0;
  gint64 now, wake = G_MAXINT64;

  g_return_if_fail (ALV_IS_SCHEDULE (sched));

  g_clear_handle_id (&sched->tick_id, g_source_remove);
  if (!sched->started || sched->playlist == NULL)
    return;

  now = alv_schedule_now (sched);
  item = alv_schedule_get_current_item (sched, &offset);
  if (!sched->announced || !same_playback (item, sched->current))
    {
      g_autoptr(AlvPlaylistItem) keep = item != NULL ? g_object_ref (item) : NULL;

      g_set_object (&sched->current, item);
      sched->announced = TRUE;
      g_signal_emit (sched, signals[SIGNAL_ITEM_CHANGED], 0, keep, (gint64) offset);
    }
  else
    g_set_object (&sched->current, item);   /* the newest version of it */

  if (sched->current != NULL)
    wake = MIN (wake, datetime_to_us (alv_playlist_item_get_end (sched->current)));

  next = alv_schedule_get_next_item (sched);
  if (next != NULL)
    {
      gint64 start = datetime_to_us (alv_playlist_item_get_start (next));
      gint64 prefetch_at = start - sched->prefetch_lead;

      wake = MIN (wake, start);
      if (now >= prefetch_at)
        {
          if (!same_playback (next, sched->prefetched))
            {
              g_autoptr(AlvPlaylistItem) keep = g_object_ref (next);

              g_set_object (&sched->prefetched, next);
              g_signal_emit (sched, signals[SIGNAL_PREFETCH], 0, keep);
            }
        }
      else
        wake = MIN (wake, prefetch_at);
    }

  if (sched->started && sched->tick_id == 0)
    {
      gint64 delay_ms = wake == G_MAXINT64 ? MAX_TICK_MS : (wake - now) / 1000 + 1;

      delay_ms = CLAMP (delay_ms, 1, MAX_TICK_MS);
      sched->tick_id = g_timeout_add ((guint) delay_ms, on_tick, sched);
    }
}

/* --- fetching -------------------------------------------------------- */

typedef struct
{
  GUri *uri;
  SoupMessage *msg;
  GInputStream *stream;
  GByteArray *body;
  guint n_redirects;
  gboolean changed;
} Fetch;

static void
fetch_free (Fetch *f)
{
  g_clear_pointer (&f->uri, g_uri_unref);
  g_clear_object (&f->msg);
  g_clear_object (&f->stream);
  g_clear_pointer (&f->body, g_byte_array_unref);
  g_free (f);
}

static void fetch_send (GTask *task);

static void
apply_playlist (AlvSchedule *self,
                AlvPlaylist *pl,
                gboolean    *changed)
{
  *changed = self->playlist == NULL || !alv_playlist_equal (self->playlist, pl);
  if (!*changed)
    return;
  g_set_object (&self->playlist, pl);
  g_signal_emit (self, signals[SIGNAL_PLAYLIST_UPDATED], 0, pl);
  if (self->started)
    alv_schedule_update (self);
}

/* When to fetch again after a success: the channel's interval, earlier if
 * the last known item ends before that (minus the prefetch lead, so the
 * following items are known in time to prefetch them). */
static gint64
success_delay (AlvSchedule *self)
{
  gint64 interval = alv_playlist_get_refresh_interval (self->playlist);
  guint n = alv_playlist_get_n_items (self->playlist);
  gint64 now = alv_schedule_now (self);
  gint64 delay = interval;

  if (n > 0)
    {
      AlvPlaylistItem *last = alv_playlist_get_item (self->playlist, n - 1);
      gint64 end = datetime_to_us (alv_playlist_item_get_end (last));

      if (end <= now)
        delay = MIN (delay, ALV_PLAYLIST_MIN_REFRESH_INTERVAL);   /* ran out */
      else
        delay = MIN (delay, MAX (end - now - self->prefetch_lead, ALV_SCHEDULE_MIN_END_REFRESH));
    }
  else
    delay = MIN (delay, ALV_PLAYLIST_MIN_REFRESH_INTERVAL);
  return delay;
}

static void
fetch_done (GTask  *task,
            GError *error)
{
  AlvSchedule *self = g_task_get_source_object (task);
  Fetch *f = g_task_get_task_data (task);

  if (error != NULL)
    {
      gint64 interval = self->playlist != NULL
                        ? alv_playlist_get_refresh_interval (self->playlist)
                        : ALV_PLAYLIST_MIN_REFRESH_INTERVAL;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, error);
          return;
        }
      self->retry_delay = self->retry_delay == 0 ? ALV_SCHEDULE_RETRY_DELAY
                                                 : MIN (self->retry_delay * 2, interval);
      if (self->started)
        {
          g_signal_emit (self, signals[SIGNAL_ERROR], 0, error);
          schedule_refresh_timer (self, self->retry_delay);
        }
      g_task_return_error (task, error);
      return;
    }
  self->retry_delay = 0;
  if (self->started)
    schedule_refresh_timer (self, success_delay (self));
  g_task_return_boolean (task, f->changed);
}

static void
store_validators (AlvSchedule *self,
                  SoupMessage *msg)
{
  SoupMessageHeaders *h = soup_message_get_response_headers (msg);
  const char *etag = soup_message_headers_get_one (h, "ETag");
  const char *lm = soup_message_headers_get_one (h, "Last-Modified");

  g_free (self->etag);
  self->etag = etag != NULL && strlen (etag) < 1024 ? g_strdup (etag) : NULL;
  g_free (self->last_modified);
  self->last_modified = lm != NULL && strlen (lm) < 128 ? g_strdup (lm) : NULL;
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AlvSchedule *self = g_task_get_source_object (task);
  Fetch *f = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autoptr(GBytes) body = NULL;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (chunk == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_autofree char *url = g_uri_to_string (f->uri);
          GError *e = g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE,
                                   _("Could not read the playlist %s: %s"), url, error->message);
          fetch_done (task, e);
        }
      else
        fetch_done (task, g_steal_pointer (&error));
      return;
    }
  if (g_bytes_get_size (chunk) > 0)
    {
      if (f->body->len + g_bytes_get_size (chunk) > ALV_PLAYLIST_MAX_SIZE)
        {
          fetch_done (task, g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_INVALID,
                                         _("The playlist is larger than %u bytes"),
                                         (guint) ALV_PLAYLIST_MAX_SIZE));
          return;
        }
      g_byte_array_append (f->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
      GCancellable *cancellable = g_task_get_cancellable (task);

      g_input_stream_read_bytes_async (f->stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                       cancellable, read_cb, g_steal_pointer (&task));
      return;
    }

  body = g_byte_array_free_to_bytes (g_steal_pointer (&f->body));
  pl = alv_playlist_parse_bytes (body, &error);
  /* reading and parsing a large body leaves the allocator with megabytes
   * of free memory it would keep */
  if (g_bytes_get_size (body) >= ALV_MEMORY_BURST_BYTES)
    {
      g_clear_pointer (&body, g_bytes_unref);
      alv_memory_give_back ("a large playlist read");
    }
  if (pl == NULL)
    {
      fetch_done (task, g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_INVALID,
                                     _("Invalid playlist: %s"), error->message));
      return;
    }
  store_validators (self, f->msg);
  apply_playlist (self, pl, &f->changed);
  fetch_done (task, NULL);
}

static void
send_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AlvSchedule *self = g_task_get_source_object (task);
  Fetch *f = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  gint64 received = g_get_real_time ();
  gint64 *sentp = g_object_get_data (G_OBJECT (f->msg), "alv-sent");
  gint64 sent = sentp != NULL ? *sentp : received;
  SoupMessageHeaders *h;
  const char *date;
  GCancellable *cancellable;
  guint status;

  f->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (f->stream == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        fetch_done (task, g_steal_pointer (&error));
      else
        {
          /* the URL names host and port, which the network's message may not */
          g_autofree char *url = g_uri_to_string (f->uri);

          fetch_done (task, g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE,
                                         _("Could not fetch the playlist %s: %s"), url,
                                         error->message));
        }
      return;
    }
  self->n_fetches++;
  h = soup_message_get_response_headers (f->msg);
  date = soup_message_headers_get_one (h, "Date");
  if (date != NULL)
    {
      g_autoptr(GError) clock_error = NULL;

      if (!alv_station_clock_add_sample (self->clock, date, sent, received, &clock_error))
        g_debug ("ignoring Date of %s: %s", self->url, clock_error->message);
    }

  status = soup_message_get_status (f->msg);
  if (SOUP_STATUS_IS_REDIRECTION (status) && status != SOUP_STATUS_NOT_MODIFIED)
    {
      const char *location = soup_message_headers_get_one (h, "Location");
      g_autoptr(GUri) next = NULL;
      const char *scheme;

      next = location != NULL ? g_uri_parse_relative (f->uri, location, SOUP_HTTP_URI_FLAGS, NULL) : NULL;
      scheme = next != NULL ? g_uri_get_scheme (next) : NULL;
      if (++f->n_redirects > ALV_SCHEDULE_MAX_REDIRECTS)
        fetch_done (task, g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE,
                                       _("Too many redirects fetching the playlist")));
      else if (scheme == NULL
               || (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0))
        fetch_done (task, g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE,
                                       _("The playlist redirects to an unusable location")));
      else
        {
          g_clear_object (&f->stream);
          g_clear_object (&f->msg);
          g_uri_unref (f->uri);
          f->uri = g_steal_pointer (&next);
          fetch_send (g_steal_pointer (&task));
        }
      return;
    }
  if (status == SOUP_STATUS_NOT_MODIFIED && self->playlist != NULL)
    {
      self->n_not_modified++;
      f->changed = FALSE;
      fetch_done (task, NULL);
      return;
    }
  if (status != SOUP_STATUS_OK)
    {
      g_autofree char *url = g_uri_to_string (f->uri);

      fetch_done (task, g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE,
                                     _("Fetching the playlist %s failed: HTTP %u %s"), url, status,
                                     soup_message_get_reason_phrase (f->msg) != NULL
                                     ? soup_message_get_reason_phrase (f->msg) : ""));
      return;
    }
  if (soup_message_headers_get_encoding (h) == SOUP_ENCODING_CONTENT_LENGTH
      && soup_message_headers_get_content_length (h) > ALV_PLAYLIST_MAX_SIZE)
    {
      fetch_done (task, g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_INVALID,
                                     _("The playlist is larger than %u bytes"),
                                     (guint) ALV_PLAYLIST_MAX_SIZE));
      return;
    }
  f->body = g_byte_array_new ();
  cancellable = g_task_get_cancellable (task);
  g_input_stream_read_bytes_async (f->stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                   cancellable, read_cb, g_steal_pointer (&task));
}

static void
fetch_send (GTask *task)
{
  AlvSchedule *self = g_task_get_source_object (task);
  Fetch *f = g_task_get_task_data (task);
  SoupMessageHeaders *h;
  gint64 *sent;

  f->msg = soup_message_new_from_uri (SOUP_METHOD_GET, f->uri);
  soup_message_add_flags (f->msg, SOUP_MESSAGE_NO_REDIRECT);
  h = soup_message_get_request_headers (f->msg);
  soup_message_headers_replace (h, "Accept",
                                ALV_PLAYLIST_MIME_TYPE ", application/rdf+xml, "
                                "application/xml;q=0.9, */*;q=0.5");
  if (self->playlist != NULL)
    {
      if (self->etag != NULL)
        soup_message_headers_replace (h, "If-None-Match", self->etag);
      if (self->last_modified != NULL)
        soup_message_headers_replace (h, "If-Modified-Since", self->last_modified);
    }
  sent = g_new (gint64, 1);
  *sent = g_get_real_time ();
  g_object_set_data_full (G_OBJECT (f->msg), "alv-sent", sent, g_free);
  soup_session_send_async (self->session, f->msg, G_PRIORITY_DEFAULT,
                           g_task_get_cancellable (task), send_cb, task);
}

/**
 * alv_schedule_refresh_async:
 * @sched: a schedule
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the fetch is over
 * @user_data: data for @callback
 *
 * Fetches the playlist once (conditionally when one is already known).  A
 * new version replaces the old one at once ("playlist-updated", then
 * "item-changed" if the item playing now differs).
 */
void
alv_schedule_refresh_async (AlvSchedule        *sched,
                            GCancellable       *cancellable,
                            GAsyncReadyCallback callback,
                            gpointer            user_data)
{
  GTask *task;
  Fetch *f;

  g_return_if_fail (ALV_IS_SCHEDULE (sched));

  task = g_task_new (sched, cancellable != NULL ? cancellable : sched->cancellable,
                     callback, user_data);
  g_task_set_source_tag (task, alv_schedule_refresh_async);
  f = g_new0 (Fetch, 1);
  f->uri = g_uri_parse (sched->url, SOUP_HTTP_URI_FLAGS, NULL);
  g_task_set_task_data (task, f, (GDestroyNotify) fetch_free);
  fetch_send (task);
}

/**
 * alv_schedule_refresh_finish:
 * @sched: a schedule
 * @result: the result
 * @changed_out: (out) (optional): whether a new playlist version arrived
 * @error: return location for a #GError (an %ALV_CORE_ERROR)
 *
 * Returns: %TRUE if the playlist was fetched or found unchanged
 */
gboolean
alv_schedule_refresh_finish (AlvSchedule  *sched,
                             GAsyncResult *result,
                             gboolean     *changed_out,
                             GError      **error)
{
  GError *local = NULL;
  gboolean changed;

  g_return_val_if_fail (g_task_is_valid (result, sched), FALSE);

  changed = g_task_propagate_boolean (G_TASK (result), &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (changed_out != NULL)
    *changed_out = changed;
  return TRUE;
}

static void
timer_refresh_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  if (!alv_schedule_refresh_finish (ALV_SCHEDULE (source), result, NULL, &error))
    g_debug ("playlist refresh failed: %s", error->message);
}

static gboolean
on_refresh_timer (gpointer user_data)
{
  AlvSchedule *self = user_data;

  self->refresh_id = 0;
  self->next_refresh = 0;
  alv_schedule_refresh_async (self, NULL, timer_refresh_cb, NULL);
  return G_SOURCE_REMOVE;
}

static void
schedule_refresh_timer (AlvSchedule *self,
                        gint64       delay_us)
{
  g_clear_handle_id (&self->refresh_id, g_source_remove);
  delay_us = MAX (delay_us, G_USEC_PER_SEC);
  self->next_refresh = alv_schedule_now (self) + delay_us;
  self->refresh_id = g_timeout_add_seconds ((guint) MIN (delay_us / G_USEC_PER_SEC, G_MAXUINT / 2),
                                            on_refresh_timer, self);
}

/**
 * alv_schedule_start:
 * @sched: a schedule
 *
 * Starts following the schedule: announces the current item (or gap) at
 * once if a playlist is known, then at every slot boundary; refreshes the
 * playlist on its own from now on.
 */
void
alv_schedule_start (AlvSchedule *sched)
{
  g_return_if_fail (ALV_IS_SCHEDULE (sched));

  if (sched->started)
    return;
  if (g_cancellable_is_cancelled (sched->cancellable))
    {
      g_clear_object (&sched->cancellable);
      sched->cancellable = g_cancellable_new ();
    }
  sched->started = TRUE;
  if (sched->playlist != NULL)
    schedule_refresh_timer (sched, success_delay (sched));
  else
    schedule_refresh_timer (sched, 0);
  alv_schedule_update (sched);
}

/**
 * alv_schedule_stop:
 * @sched: a schedule
 *
 * Stops the timers and cancels a fetch in flight.
 */
void
alv_schedule_stop (AlvSchedule *sched)
{
  g_return_if_fail (ALV_IS_SCHEDULE (sched));

  sched->started = FALSE;
  g_clear_handle_id (&sched->tick_id, g_source_remove);
  g_clear_handle_id (&sched->refresh_id, g_source_remove);
  sched->next_refresh = 0;
  g_cancellable_cancel (sched->cancellable);
}
