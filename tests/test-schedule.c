/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of AlvSchedule against a real SoupServer on 127.0.0.1 that serves a
 * playlist with ETag/Last-Modified and answers conditional requests: the
 * item playing at injected station times (and the offset into its slot),
 * gaps, the end of the playlist, prefetch moments, revalidation with 304,
 * a new playlist version taking effect, the station clock following the
 * server's Date, and the typed errors for bad URLs, unreachable and
 * invalid playlists.
 */
#define G_LOG_DOMAIN "test-schedule"
#include "config.h"

#include <string.h>

#include <gio/gio.h>
#include <libsoup/soup.h>

#include "alv-clock.h"
#include "alv-dbus.h"
#include "alv-schedule.h"
#include "test-util.h"

#define SEC G_GINT64_CONSTANT (1000000)
/* 2030-01-01T00:00:00Z */
#define BASE G_GINT64_CONSTANT (1893456000000000)

typedef struct
{
  SoupServer *server;
  char *base_url;
  char *playlist;       /* what /station.rss serves */
  guint version;        /* its ETag */
  guint n_requests;
  guint n_conditional;
  gint64 date_offset;   /* added to the real time in the Date header (µs) */
  gint64 now;           /* injected station time */

  /* signal records */
  guint n_item_changed;
  AlvPlaylistItem *last_item;
  gint64 last_offset;
  guint n_updated;
  guint n_prefetch;
  AlvPlaylistItem *last_prefetch;
  gboolean done;
  GError *error;
  gboolean changed;
} Fixture;

static GDateTime *
dt_at (gint64 us)
{
  g_autoptr(GDateTime) s = g_date_time_new_from_unix_utc (us / SEC);

  return g_date_time_add (s, us % SEC);
}

static void
add_item (AlvPlaylist *pl,
          const char  *url,
          const char  *title,
          gint64       start,
          gint64       end)
{
  g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (url);
  g_autoptr(GDateTime) s = dt_at (start);
  g_autoptr(GDateTime) e = dt_at (end);

  alv_playlist_item_set_title (item, title);
  alv_playlist_item_set_creator (item, "Tester");
  alv_playlist_item_set_media_type (item, "audio/mpeg");
  alv_playlist_item_set_slot (item, s, e);
  alv_playlist_add_item (pl, item);
}

/* A at [0, 60 s), B at [60, 120 s), a gap, C at [180, 240 s). */
static char *
make_playlist (const char *a_url,
               const char *c_title)
{
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();

  alv_playlist_set_title (pl, "Test Station");
  alv_playlist_set_link (pl, "http://127.0.0.1/");
  alv_playlist_set_update_period (pl, "hourly");
  add_item (pl, a_url, "A", BASE, BASE + 60 * SEC);
  add_item (pl, "http://127.0.0.1/b.mp3", "B", BASE + 60 * SEC, BASE + 120 * SEC);
  add_item (pl, "http://127.0.0.1/c.mp3", c_title, BASE + 180 * SEC, BASE + 240 * SEC);
  return alv_playlist_to_string (pl, NULL);
}

static void
serve (SoupServer        *server G_GNUC_UNUSED,
       SoupServerMessage *msg,
       const char        *path,
       GHashTable        *query G_GNUC_UNUSED,
       gpointer           user_data)
{
  Fixture *fx = user_data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);

  fx->n_requests++;
  if (fx->date_offset != 0)
    {
      g_autofree char *date = alv_http_date_format ((g_get_real_time () + fx->date_offset) / SEC);

      soup_message_headers_replace (resp, "Date", date);
    }

  if (strcmp (path, "/station.rss") == 0)
    {
      g_autofree char *etag = g_strdup_printf ("\"v%u\"", fx->version);
      const char *inm = soup_message_headers_get_one (req, "If-None-Match");

      if (inm != NULL)
        fx->n_conditional++;
      soup_message_headers_replace (resp, "ETag", etag);
      soup_message_headers_replace (resp, "Last-Modified", "Tue, 01 Jan 2030 00:00:00 GMT");
      if (g_strcmp0 (inm, etag) == 0)
        {
          soup_server_message_set_status (msg, SOUP_STATUS_NOT_MODIFIED, NULL);
          return;
        }
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, ALV_PLAYLIST_MIME_TYPE, SOUP_MEMORY_COPY,
                                        fx->playlist, strlen (fx->playlist));
    }
  else if (strcmp (path, "/invalid.rss") == 0)
    {
      const char *body = "<rss><channel><title>not RSS 1.0</title></channel></rss>";

      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "text/xml", SOUP_MEMORY_STATIC, body, strlen (body));
    }
  else if (strcmp (path, "/huge.rss") == 0)
    {
      gsize len = ALV_PLAYLIST_MAX_SIZE + 1;
      char *body = g_malloc (len);

      memset (body, ' ', len);
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_server_message_set_response (msg, "text/xml", SOUP_MEMORY_TAKE, body, len);
    }
  else if (strcmp (path, "/moved.rss") == 0)
    soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, "/station.rss");
  else if (strcmp (path, "/loop.rss") == 0)
    soup_server_message_set_redirect (msg, SOUP_STATUS_FOUND, "/loop.rss");
  else if (strcmp (path, "/ftp.rss") == 0)
    soup_server_message_set_redirect (msg, SOUP_STATUS_MOVED_PERMANENTLY, "ftp://127.0.0.1/x.rss");
  else
    soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

static void
fixture_setup (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  memset (fx, 0, sizeof *fx);
  fx->server = test_server_new ();
  soup_server_add_handler (fx->server, NULL, serve, fx, NULL);
  fx->base_url = test_server_get_url (fx->server);
  if (g_str_has_suffix (fx->base_url, "/"))
    fx->base_url[strlen (fx->base_url) - 1] = '\0';
  fx->playlist = make_playlist ("http://127.0.0.1/a.mp3", "C");
  fx->version = 1;
  fx->now = BASE + 30 * SEC;
}

static void
fixture_teardown (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  /* let closed client connections reach the server before it goes */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  soup_server_disconnect (fx->server);
  g_clear_object (&fx->server);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_free (fx->base_url);
  g_free (fx->playlist);
  g_clear_object (&fx->last_item);
  g_clear_object (&fx->last_prefetch);
  g_clear_error (&fx->error);
}

static gint64
fixture_now (gpointer user_data)
{
  Fixture *fx = user_data;

  return fx->now;
}

static void
on_item_changed (AlvSchedule     *sched G_GNUC_UNUSED,
                 AlvPlaylistItem *item,
                 gint64           offset,
                 gpointer         user_data)
{
  Fixture *fx = user_data;

  fx->n_item_changed++;
  g_set_object (&fx->last_item, item);
  fx->last_offset = offset;
}

static void
on_updated (AlvSchedule *sched G_GNUC_UNUSED,
            AlvPlaylist *pl,
            gpointer     user_data)
{
  Fixture *fx = user_data;

  g_assert_true (ALV_IS_PLAYLIST (pl));
  fx->n_updated++;
}

static void
on_prefetch (AlvSchedule     *sched G_GNUC_UNUSED,
             AlvPlaylistItem *item,
             gpointer         user_data)
{
  Fixture *fx = user_data;

  fx->n_prefetch++;
  g_set_object (&fx->last_prefetch, item);
}

static AlvSchedule *
new_schedule (Fixture *fx, const char *path, gboolean inject)
{
  g_autofree char *url = g_strconcat (fx->base_url, path, NULL);
  g_autoptr(GError) error = NULL;
  AlvSchedule *sched = alv_schedule_new (url, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (sched);
  if (inject)
    alv_schedule_set_now_func (sched, fixture_now, fx, NULL);
  g_signal_connect (sched, "item-changed", G_CALLBACK (on_item_changed), fx);
  g_signal_connect (sched, "playlist-updated", G_CALLBACK (on_updated), fx);
  g_signal_connect (sched, "prefetch", G_CALLBACK (on_prefetch), fx);
  return sched;
}

static void
refresh_cb (GObject *source, GAsyncResult *result, gpointer user_data)
{
  Fixture *fx = user_data;

  g_clear_error (&fx->error);
  fx->changed = FALSE;
  alv_schedule_refresh_finish (ALV_SCHEDULE (source), result, &fx->changed, &fx->error);
  fx->done = TRUE;
}

static gboolean
refresh_done (gpointer data)
{
  return ((Fixture *) data)->done;
}

static gboolean
refresh (Fixture *fx, AlvSchedule *sched)
{
  fx->done = FALSE;
  alv_schedule_refresh_async (sched, NULL, refresh_cb, fx);
  test_wait_until (refresh_done, fx, 10000);
  return fx->error == NULL;
}

static void
assert_item (AlvPlaylistItem *item, const char *title)
{
  g_assert_nonnull (item);
  g_assert_cmpstr (alv_playlist_item_get_title (item), ==, title);
}

static void
test_current_item (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, "/station.rss", TRUE);
  AlvPlaylistItem *item;
  GTimeSpan offset = -1;

  alv_schedule_set_prefetch_lead (sched, 10 * SEC);
  g_assert_null (alv_schedule_get_current_item (sched, NULL));
  g_assert_true (refresh (fx, sched));
  g_assert_no_error (fx->error);
  g_assert_true (fx->changed);
  g_assert_cmpuint (fx->n_updated, ==, 1);
  g_assert_cmpuint (fx->n_item_changed, ==, 0);   /* not started yet */

  /* mid-slot: the offset into the slot, exactly */
  fx->now = BASE + 30 * SEC + 250000;
  item = alv_schedule_get_current_item (sched, &offset);
  assert_item (item, "A");
  g_assert_cmpint (offset, ==, 30 * SEC + 250000);
  assert_item (alv_schedule_get_next_item (sched), "B");
  g_assert_cmpint (alv_schedule_get_prefetch_time (sched), ==, BASE + 50 * SEC);

  alv_schedule_start (sched);
  g_assert_cmpuint (fx->n_item_changed, ==, 1);
  assert_item (fx->last_item, "A");
  g_assert_cmpint (fx->last_offset, ==, 30 * SEC + 250000);
  g_assert_cmpuint (fx->n_prefetch, ==, 0);

  /* same item later: no new announcement */
  fx->now = BASE + 45 * SEC;
  alv_schedule_update (sched);
  g_assert_cmpuint (fx->n_item_changed, ==, 1);

  /* prefetch moment of B */
  fx->now = BASE + 51 * SEC;
  alv_schedule_update (sched);
  g_assert_cmpuint (fx->n_prefetch, ==, 1);
  assert_item (fx->last_prefetch, "B");
  alv_schedule_update (sched);
  g_assert_cmpuint (fx->n_prefetch, ==, 1);

  /* the slot boundary itself belongs to the next item (half-open slots) */
  fx->now = BASE + 60 * SEC;
  alv_schedule_update (sched);
  g_assert_cmpuint (fx->n_item_changed, ==, 2);
  assert_item (fx->last_item, "B");
  g_assert_cmpint (fx->last_offset, ==, 0);

  /* the gap: NULL, with C as the next item */
  fx->now = BASE + 150 * SEC;
  alv_schedule_update (sched);
  g_assert_cmpuint (fx->n_item_changed, ==, 3);
  g_assert_null (fx->last_item);
  assert_item (alv_schedule_get_next_item (sched), "C");
  g_assert_cmpuint (fx->n_prefetch, ==, 1);
  fx->now = BASE + 175 * SEC;
  alv_schedule_update (sched);
  g_assert_cmpuint (fx->n_prefetch, ==, 2);
  assert_item (fx->last_prefetch, "C");
  g_assert_cmpuint (fx->n_item_changed, ==, 3);

  fx->now = BASE + 200 * SEC;
  alv_schedule_update (sched);
  assert_item (fx->last_item, "C");
  g_assert_cmpint (fx->last_offset, ==, 20 * SEC);

  /* run out: NULL and no next item */
  fx->now = BASE + 300 * SEC;
  alv_schedule_update (sched);
  g_assert_cmpuint (fx->n_item_changed, ==, 5);
  g_assert_null (fx->last_item);
  g_assert_null (alv_schedule_get_next_item (sched));
  g_assert_cmpint (alv_schedule_get_prefetch_time (sched), ==, 0);
  alv_schedule_stop (sched);
}

static void
test_start_in_gap (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, "/station.rss", TRUE);

  fx->now = BASE + 130 * SEC;
  g_assert_true (refresh (fx, sched));
  alv_schedule_start (sched);
  /* a gap is announced too, so the owner can say so */
  g_assert_cmpuint (fx->n_item_changed, ==, 1);
  g_assert_null (fx->last_item);
  alv_schedule_stop (sched);
}

static void
test_not_modified (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, "/station.rss", TRUE);

  g_assert_true (refresh (fx, sched));
  g_assert_cmpstr (alv_schedule_get_etag (sched), ==, "\"v1\"");
  g_assert_cmpuint (fx->n_conditional, ==, 0);
  g_assert_true (refresh (fx, sched));
  g_assert_false (fx->changed);
  g_assert_cmpuint (fx->n_conditional, ==, 1);
  g_assert_cmpuint (alv_schedule_get_n_not_modified (sched), ==, 1);
  g_assert_cmpuint (alv_schedule_get_n_fetches (sched), ==, 2);
  g_assert_cmpuint (fx->n_updated, ==, 1);
  g_assert_nonnull (alv_schedule_get_playlist (sched));
}

static void
test_changed (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, "/station.rss", TRUE);

  g_assert_true (refresh (fx, sched));
  alv_schedule_start (sched);
  g_assert_cmpuint (fx->n_item_changed, ==, 1);
  assert_item (fx->last_item, "A");

  /* a change elsewhere in the playlist: updated, the item plays on */
  g_free (fx->playlist);
  fx->playlist = make_playlist ("http://127.0.0.1/a.mp3", "C2");
  fx->version = 2;
  g_assert_true (refresh (fx, sched));
  g_assert_true (fx->changed);
  g_assert_cmpuint (fx->n_updated, ==, 2);
  g_assert_cmpuint (fx->n_item_changed, ==, 1);
  g_assert_cmpstr (alv_schedule_get_etag (sched), ==, "\"v2\"");

  /* the item playing now replaced: takes effect at once, mid-slot */
  g_free (fx->playlist);
  fx->playlist = make_playlist ("http://127.0.0.1/d.mp3", "C2");
  fx->version = 3;
  fx->now = BASE + 40 * SEC;
  g_assert_true (refresh (fx, sched));
  g_assert_cmpuint (fx->n_updated, ==, 3);
  g_assert_cmpuint (fx->n_item_changed, ==, 2);
  g_assert_cmpstr (alv_playlist_item_get_url (fx->last_item), ==, "http://127.0.0.1/d.mp3");
  g_assert_cmpint (fx->last_offset, ==, 40 * SEC);
  alv_schedule_stop (sched);
}

static void
test_refresh_timing (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, "/station.rss", TRUE);
  gint64 next;

  alv_schedule_set_prefetch_lead (sched, 60 * SEC);
  g_assert_true (refresh (fx, sched));
  alv_schedule_start (sched);
  next = alv_schedule_get_next_refresh (sched);
  /* hourly hint, but the playlist ends at 240 s: refresh before that,
   * early enough to prefetch what follows */
  g_assert_cmpint (next, >, fx->now);
  g_assert_cmpint (next, <=, BASE + 180 * SEC);
  alv_schedule_stop (sched);

  /* run out: at most a minute */
  fx->now = BASE + 1000 * SEC;
  alv_schedule_start (sched);
  g_assert_cmpint (alv_schedule_get_next_refresh (sched), <=, fx->now + ALV_PLAYLIST_MIN_REFRESH_INTERVAL);
  alv_schedule_stop (sched);
}

static void
test_clock_skew (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, "/station.rss", FALSE);
  gint64 diff;

  fx->date_offset = 3600 * SEC;
  g_assert_true (refresh (fx, sched));
  g_assert_true (alv_station_clock_has_samples (alv_schedule_get_clock (sched)));
  diff = alv_schedule_now (sched) - g_get_real_time ();
  /* Date has one-second resolution */
  g_assert_cmpint (diff, >, 3600 * SEC - 2 * SEC);
  g_assert_cmpint (diff, <, 3600 * SEC + 2 * SEC);
}

static void
test_redirect (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, "/moved.rss", TRUE);

  g_assert_true (refresh (fx, sched));
  g_assert_nonnull (alv_schedule_get_playlist (sched));
  g_assert_cmpuint (fx->n_requests, ==, 2);
}

static void
expect_error (Fixture *fx, const char *path, int code)
{
  g_autoptr(AlvSchedule) sched = new_schedule (fx, path, TRUE);

  g_assert_false (refresh (fx, sched));
  g_assert_error (fx->error, ALV_CORE_ERROR, code);
  g_assert_null (alv_schedule_get_playlist (sched));
  g_assert_cmpuint (fx->n_updated, ==, 0);
}

static void
test_errors (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  const char *bad[] = { "", "station.rss", "ftp://127.0.0.1/a.rss", "file:///etc/passwd",
                        "http://", "http:///x.rss", "javascript:alert(1)" };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AlvSchedule) sched = alv_schedule_new (bad[i], NULL, &error);

      g_assert_null (sched);
      g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_INVALID_URL);
    }

  expect_error (fx, "/missing.rss", ALV_CORE_ERROR_PLAYLIST_UNREACHABLE);
  expect_error (fx, "/loop.rss", ALV_CORE_ERROR_PLAYLIST_UNREACHABLE);
  expect_error (fx, "/ftp.rss", ALV_CORE_ERROR_PLAYLIST_UNREACHABLE);
  expect_error (fx, "/invalid.rss", ALV_CORE_ERROR_PLAYLIST_INVALID);
  expect_error (fx, "/huge.rss", ALV_CORE_ERROR_PLAYLIST_INVALID);
  /* at most ALV_SCHEDULE_MAX_REDIRECTS + 1 requests for the loop */
  g_assert_cmpuint (fx->n_requests, <=, 1 + (ALV_SCHEDULE_MAX_REDIRECTS + 1) + 2 + 1);
}

static void
test_unreachable (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvSchedule) sched = NULL;
  g_autofree char *url = NULL;

  /* a port nobody listens on: bind, read it back, close */
  sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (sock, addr, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (sock, &error);
  g_assert_no_error (error);
  url = g_strdup_printf ("http://127.0.0.1:%u/station.rss",
                         g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  g_socket_close (sock, NULL);

  sched = alv_schedule_new (url, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (refresh (fx, sched));
  g_assert_error (fx->error, ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_UNREACHABLE);
}

/* Under ASan (--enable-asan): leaks that are not ours.  libsoup 3.2's
 * SoupServer keeps the socket of every accepted connection and of its
 * listener, and GTest's isolated dirs are strdup'ed once per test. */
const char *__lsan_default_suppressions (void);
const char *__asan_default_options (void);

const char *
__lsan_default_suppressions (void)
{
  return "leak:g_socket_accept\n"
         "leak:soup_server_listen_local\n"
         "leak:g_set_user_dirs\n";
}

const char *
__asan_default_options (void)
{
  /* full stacks, so the suppressions above match */
  return "fast_unwind_on_malloc=0";
}

int
main (int argc, char **argv)
{
  /* isolated XDG dirs hold no GSettings schemas: keep GIO's proxy
   * lookup (only 127.0.0.1 is contacted anyway) away from them */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#define ADD(path, fn) g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/core/schedule/current-item", test_current_item);
  ADD ("/core/schedule/start-in-gap", test_start_in_gap);
  ADD ("/core/schedule/not-modified", test_not_modified);
  ADD ("/core/schedule/changed", test_changed);
  ADD ("/core/schedule/refresh-timing", test_refresh_timing);
  ADD ("/core/schedule/clock-skew", test_clock_skew);
  ADD ("/core/schedule/redirect", test_redirect);
  ADD ("/core/schedule/errors", test_errors);
  ADD ("/core/schedule/unreachable", test_unreachable);
#undef ADD

  return g_test_run ();
}
