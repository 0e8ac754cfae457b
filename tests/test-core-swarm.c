/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The swarm end to end, with real processes on loopback: a station run by
 * the real `alluvium-server gateway --docroot` (playlist, media, resolve,
 * trees, tracker), and several real `alluvium-core` daemons, each on a
 * private session bus of its own with its own cache and config
 * home, finding the gateway at the playlist's origin.  The tests check that
 * what each local stream delivers is the origin file byte for byte from
 * the position now playing and carries on seamlessly into the next item,
 * that a GStreamer pipeline (souphttpsrc ! icydemux ! decodebin) decodes it
 * and sees each item's title, that the origin served clearly less than a
 * copy per listener, that a peer serving corrupt blocks is banned without
 * a wrong byte reaching the stream, that a peer gossiping hundreds of
 * made-up addresses gets neither the listeners to name them nor to
 * knock on more than a few of them, and that a listener keeps playing
 * from its peers when the origin is gone.  A WebM video station is
 * swarmed too: its local streams start on a keyframe near the position
 * playing and carry the origin's blocks byte for byte.
 */
#define G_LOG_DOMAIN "test-core-swarm"
#include "config.h"

#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gst/gst.h>
#include <libsoup/soup.h>

#include "alv-dbus.h"
#include "alv-hash-tree.h"
#include "alv-matroska.h"
#include "alv-mp3.h"
#include "alv-ocn-headers.h"
#include "alv-playlist.h"
#include "alv-stream-server.h"
#include "alv-swarm-plan.h"
#include "alv-urn.h"
#include "stream-media.h"
#include "test-util.h"
#include "test-bus.h"

#define SEC G_GINT64_CONSTANT (1000000)
#define WAIT_MS 20000
#define MAX_CORES 3
/* 1150 MP3 frames of 1152 samples at 44.1 kHz: 30.04 s, about 480 KB */
#define N_FRAMES 1150
/* the first item started this long before the test tunes (unless the
 * test says otherwise) */
#define JOIN_AT (22 * SEC)
/* where /core/swarm-daemon/listeners joins the 30-s item */
#define LISTENERS_JOIN (16 * SEC)
/* made-up addresses a gossiping peer names */
#define N_FAKES 250
/* the station's items, in order */
#define N_ITEMS 2
static const char * const item_titles[N_ITEMS] = { "One", "Two" };

typedef struct
{
  TestBus *bus;
  GDBusConnection *conn;
  GSubprocess *proc;
  AlvCore1 *proxy;
  char *stream_url;
  guint n_statistics;        /* Statistics updates the proxy has had */
} Core;

typedef struct
{
  char *dir;                 /* the test's temporary directory */
  char *docroot;
  GSubprocess *gateway;
  char *gateway_url;         /* ends in '/' */
  SoupSession *session;

  GBytes *media[N_ITEMS];
  const char *ext;           /* the media files' extension */
  const char *media_type;
  gint64 join_at;
  gint64 slot_start[N_ITEMS];
  gint64 slot_len;

  Core cores[MAX_CORES];

  /* a separate origin (origin-down) and a lying peer (lying-peer) */
  SoupServer *origin;
  char *origin_url;
  gboolean origin_down;
  gboolean refuse_head;      /* Range requests from the first block: 503 */
  guint head_refusals;
  guint64 origin_bytes;
  SoupServer *liar;
  guint liar_requests;
  char *urn;

  /* a peer that serves good blocks and gossips made-up addresses, which
   * are listeners of the test's counting every connection (gossip) */
  SoupServer *gossiper;
  GHashTable *gossiped_to;   /* a requester's X-Listen-Port → answers */
  GArray *requesters;        /* those ports (guint16), first seen first */
  guint gossip_answers;
  GSocketService *fakes;
  GPtrArray *fake_keys;      /* "127.0.0.1:port" */
  guint fake_connections;
  GHashTable *fakes_contacted; /* local ports of those connections */
} Fixture;

/* --- the station ------------------------------------------------------ */

/* Serves the media under /media/ with Range support, until origin_down. */
static void
serve_origin (SoupServer        *server G_GNUC_UNUSED,
              SoupServerMessage *msg,
              const char        *path,
              GHashTable        *query G_GNUC_UNUSED,
              gpointer           user_data)
{
  Fixture *fx = user_data;
  GBytes *media = NULL;

  if (strcmp (path, "/media/one.mp3") == 0)
    media = fx->media[0];
  else if (strcmp (path, "/media/two.mp3") == 0)
    media = fx->media[1];
  if (fx->refuse_head && media != NULL)
    {
      SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
      SoupRange *ranges = NULL;
      int n = 0;

      /* the gateway hashes the whole file (no Range); a listener asking
       * for the item's first block is refused */
      if (soup_message_headers_get_ranges (req, g_bytes_get_size (media), &ranges, &n))
        {
          gboolean head = n > 0 && ranges[0].start < ALV_HASH_TREE_DEFAULT_BLOCK_SIZE;

          soup_message_headers_free_ranges (req, ranges);
          if (head)
            {
              fx->head_refusals++;
              soup_server_message_set_status (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
              return;
            }
        }
    }
  if (fx->origin_down || media == NULL)
    {
      soup_server_message_set_status (msg, fx->origin_down ? SOUP_STATUS_SERVICE_UNAVAILABLE
                                                           : SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  fx->origin_bytes += stream_serve_bytes (msg, media, "audio/mpeg");
}

static SoupServer *
start_server (SoupServerCallback callback,
              Fixture           *fx)
{
  SoupServer *server = test_server_new ();

  soup_server_add_handler (server, NULL, callback, fx, NULL);
  return server;
}

/* Writes station.rss: "One" started JOIN_AT ago, "Two" follows it.
 * @media_base: where the media are published (ends in '/'); @urn:
 * (nullable) the dc:identifier of both items. */
static void
write_playlist (Fixture    *fx,
                const char *media_base,
                const char *urn)
{
  const char *names[N_ITEMS] = { "one", "two" };
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *path = g_build_filename (fx->docroot, "station.rss", NULL);
  gint64 now = g_get_real_time ();

  alv_playlist_set_title (pl, "Swarm Station");
  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *url = g_strconcat (media_base, "media/", names[i], ".", fx->ext, NULL);
      g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (url);
      g_autoptr(GDateTime) s = NULL;
      g_autoptr(GDateTime) e = NULL;

      fx->slot_start[i] = now - fx->join_at + i * fx->slot_len;
      s = stream_datetime (fx->slot_start[i]);
      e = stream_datetime (fx->slot_start[i] + fx->slot_len);
      alv_playlist_item_set_title (item, item_titles[i]);
      alv_playlist_item_set_creator (item, "white noise");
      alv_playlist_item_set_media_type (item, fx->media_type);
      alv_playlist_item_set_slot (item, s, e);
      if (urn != NULL)
        alv_playlist_item_set_urn (item, urn);
      alv_playlist_add_item (pl, item);
    }
  text = alv_playlist_to_string (pl, NULL);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

/* Starts the gateway on the docroot plus @extra options (NULL-terminated,
 * nullable). */
static void
start_gateway (Fixture *fx, const char * const *extra)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (args, g_strconcat ("--docroot=", fx->docroot, NULL));
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (args, g_strdup (extra[i]));
  g_ptr_array_add (args, NULL);
  fx->gateway = test_spawn_gateway ((const char * const *) args->pdata, WAIT_MS, &fx->gateway_url);
}

/* --- HTTP from the test ----------------------------------------------- */

/* Sends @method @url while the main context runs; returns the status. */
static guint
http_request (Fixture *fx, const char *method, const char *url, GBytes **body,
              SoupMessageHeaders **headers)
{
  g_autoptr(SoupMessage) msg = soup_message_new (method, url);
  g_autoptr(GBytes) bytes = NULL;

  g_assert_nonnull (msg);
  bytes = test_session_send (fx->session, msg, WAIT_MS, NULL);
  if (body != NULL)
    *body = g_steal_pointer (&bytes);
  if (headers != NULL)
    *headers = soup_message_headers_ref (soup_message_get_response_headers (msg));
  return soup_message_get_status (msg);
}

static guint
http_get (Fixture *fx, const char *url, GBytes **body, SoupMessageHeaders **headers)
{
  return http_request (fx, SOUP_METHOD_GET, url, body, headers);
}

/* A counter of the gateway's /status. */
static guint64
gateway_status (Fixture *fx, const char *key)
{
  g_autofree char *url = g_strconcat (fx->gateway_url, "status", NULL);
  g_autofree char *prefix = g_strconcat (key, ": ", NULL);
  g_autoptr(GBytes) body = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_cmpuint (http_get (fx, url, &body, NULL), ==, 200);
  text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_ascii_strtoull (lines[i] + strlen (prefix), NULL, 10);
  g_assert_not_reached ();
  return 0;
}

/* --- cores ------------------------------------------------------------ */

static void
on_statistics (GObject *proxy G_GNUC_UNUSED, GParamSpec *pspec G_GNUC_UNUSED, gpointer user_data)
{
  ((Core *) user_data)->n_statistics++;
}

static void
start_core (Fixture *fx, guint i)
{
  Core *c = &fx->cores[i];
  const char *args[] = { g_test_verbose () ? "--verbose" : "--no-idle-exit", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *name = g_strdup_printf ("core%u", i);
  g_autofree char *home = g_build_filename (fx->dir, name, NULL);
  g_autofree char *cache = g_build_filename (home, "cache", NULL);
  g_autofree char *config = g_build_filename (home, "config", NULL);
  g_autofree char *conf_path = g_build_filename (config, "core.conf", NULL);
  g_autofree char *owner = NULL;

  g_assert_cmpint (g_mkdir_with_parents (cache, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (config, 0700), ==, 0);
  /* no gateway key: the core finds it at the playlist's origin */
  g_file_set_contents (conf_path, "[core]\nidle-timeout=0\npeer-address=127.0.0.1\n", -1, &error);
  g_assert_no_error (error);

  c->bus = test_bus_up (NULL);
  c->conn = g_dbus_connection_new_for_address_sync (
    test_bus_get_address (c->bus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);

  c->proc = test_spawn_core (test_bus_get_address (c->bus), cache, config, FALSE, args);

  /* the daemon exports its object before it takes its name: once the
   * name has an owner, the proxy loads the properties */
  test_wait_for_name (c->conn, ALV_CORE_BUS_NAME, TRUE, WAIT_MS);
  c->proxy = alv_core1_proxy_new_sync (c->conn, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                       ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (c->proxy, "notify::statistics", G_CALLBACK (on_statistics), c);
  owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (c->proxy));
  g_assert_nonnull (owner);
}

static void
stop_process (GSubprocess *proc)
{
  g_assert_true (test_subprocess_stop (proc, SIGTERM, WAIT_MS));
  /* a clean exit (under ASan this also checks for leaks) */
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);
}

static void
stop_core (Core *c)
{
  if (c->proc == NULL)
    return;
  g_clear_object (&c->proxy);
  stop_process (c->proc);
  g_clear_object (&c->proc);
  g_dbus_connection_close_sync (c->conn, NULL, NULL);
  g_clear_object (&c->conn);
  g_clear_pointer (&c->bus, test_bus_down);
  g_clear_pointer (&c->stream_url, g_free);
}

static void
tune (Fixture *fx, guint i)
{
  Core *c = &fx->cores[i];
  g_autofree char *url = g_strconcat (fx->gateway_url, "station.rss", NULL);
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;

  alv_core1_call_tune (c->proxy, url, NULL, test_async_result_cb, &result);
  test_wait_result (&result, WAIT_MS);
  alv_core1_call_tune_finish (c->proxy, &c->stream_url, result, &error);
  g_object_unref (result);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (c->stream_url, "http://127.0.0.1:"));
}

static guint64
core_stat (Core *c, const char *key)
{
  g_autoptr(GVariant) stats = alv_core1_dup_statistics (c->proxy);
  guint64 v = 0;

  g_assert_true (g_variant_lookup (stats, key, "t", &v));
  return v;
}

/* Statistics are published once a second (PropertiesChanged, which
 * updates the proxy): the sum of @keys reaching @least. */
typedef struct
{
  Core *c;
  const char * const *keys;
  guint64 least;
} StatWait;

static gboolean
stat_cond (gpointer data)
{
  StatWait *w = data;
  guint64 sum = 0;

  for (guint i = 0; w->keys[i] != NULL; i++)
    sum += core_stat (w->c, w->keys[i]);
  return sum >= w->least;
}

/* The index of the item @c plays now, from its NowPlaying property asked
 * for afresh (the proxy's copy may lag); @slot_start: (out) (optional):
 * when that item's slot began. */
static guint
now_playing (Core *c, gint64 *slot_start)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) np = NULL;
  g_autofree char *msg = NULL;
  const char *title = "";

  reply = g_dbus_connection_call_sync (c->conn, ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)",
                                                      g_dbus_proxy_get_interface_name (G_DBUS_PROXY (c->proxy)),
                                                      "NowPlaying"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, WAIT_MS,
                                       NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &np);
  g_variant_lookup (np, "title", "&s", &title);
  for (guint i = 0; i < N_ITEMS; i++)
    if (g_strcmp0 (title, item_titles[i]) == 0)
      {
        if (slot_start != NULL)
          g_assert_true (g_variant_lookup (np, "slot-start", "x", slot_start));
        return i;
      }
  msg = g_strdup_printf ("NowPlaying names no item of the station: \"%s\"", title);
  g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
  return 0;
}

static guint16
port_of (const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);

  g_assert_nonnull (uri);
  return (guint16) g_uri_get_port (uri);
}

/* --- fixture ---------------------------------------------------------- */

static GBytes *
noise_mp3 (void)
{
  g_autofree char *desc = NULL;
  g_autoptr(GError) error = NULL;
  GBytes *mp3;

  if (!stream_media_have_elements ("audiotestsrc", "lamemp3enc", NULL))
    return NULL;
  /* white noise: no two stretches of the file are alike, so where the
   * stream's bytes come from in the file is unambiguous */
  desc = g_strdup_printf ("audiotestsrc wave=white-noise volume=0.3 num-buffers=%u "
                          "samplesperbuffer=1152 ! audio/x-raw,rate=44100,channels=2 ! "
                          "lamemp3enc target=bitrate bitrate=128 cbr=true", N_FRAMES);
  mp3 = stream_media_encode (desc, &error);
  g_assert_no_error (error);
  return mp3;
}

static void
fixture_setup (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *media_dir = NULL;

  fx->media[0] = noise_mp3 ();
  if (fx->media[0] == NULL)
    return;
  fx->media[1] = noise_mp3 ();
  g_assert_false (g_bytes_equal (fx->media[0], fx->media[1]));
  fx->slot_len = (gint64) N_FRAMES * 1152 * SEC / 44100;
  fx->ext = "mp3";
  fx->media_type = "audio/mpeg";
  fx->join_at = JOIN_AT;
  fx->dir = g_dir_make_tmp ("alluvium-swarm-XXXXXX", &error);
  g_assert_no_error (error);
  fx->docroot = g_build_filename (fx->dir, "station", NULL);
  media_dir = g_build_filename (fx->docroot, "media", NULL);
  g_assert_cmpint (g_mkdir_with_parents (media_dir, 0755), ==, 0);
  fx->session = soup_session_new ();
}

static gboolean
skip_without_media (Fixture *fx)
{
  if (fx->media[0] != NULL)
    return FALSE;
  g_test_skip ("audiotestsrc or lamemp3enc is missing");
  return TRUE;
}

/* The media as files in the docroot, the playlist pointing at them. */
static void
station_in_docroot (Fixture *fx, const char *urn)
{
  const char *names[2] = { "one", "two" };
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 2; i++)
    {
      g_autofree char *file = g_strconcat (names[i], ".", fx->ext, NULL);
      g_autofree char *path = g_build_filename (fx->docroot, "media", file, NULL);

      g_file_set_contents (path, g_bytes_get_data (fx->media[i], NULL),
                           (gssize) g_bytes_get_size (fx->media[i]), &error);
      g_assert_no_error (error);
    }
  {
    /* the cores listen on loopback: the gateway connects back to them */
    const char *extra[] = { "--connect-back-timeout=2000", NULL };

    start_gateway (fx, extra);
  }
  write_playlist (fx, fx->gateway_url, urn);
}

/* Writes the playlist of station_in_docroot() again, its slots placed
 * from now: for a test that starts several cores before it tunes in, as
 * starting them takes seconds on a loaded machine (more under a
 * sanitizer), which would otherwise eat into the item they tune in to. */
static void
slots_from_now (Fixture *fx)
{
  write_playlist (fx, fx->gateway_url, NULL);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  if (fx->media[0] == NULL)
    return;
  for (guint i = 0; i < MAX_CORES; i++)
    stop_core (&fx->cores[i]);
  if (fx->gateway != NULL)
    {
      stop_process (fx->gateway);
      g_clear_object (&fx->gateway);
    }
  if (fx->origin != NULL)
    soup_server_disconnect (fx->origin);
  g_clear_object (&fx->origin);
  if (fx->liar != NULL)
    soup_server_disconnect (fx->liar);
  g_clear_object (&fx->liar);
  if (fx->gossiper != NULL)
    soup_server_disconnect (fx->gossiper);
  g_clear_object (&fx->gossiper);
  g_clear_pointer (&fx->gossiped_to, g_hash_table_unref);
  g_clear_pointer (&fx->requesters, g_array_unref);
  if (fx->fakes != NULL)
    {
      g_socket_service_stop (fx->fakes);
      g_socket_listener_close (G_SOCKET_LISTENER (fx->fakes));
    }
  g_clear_object (&fx->fakes);
  g_clear_pointer (&fx->fake_keys, g_ptr_array_unref);
  g_clear_pointer (&fx->fakes_contacted, g_hash_table_unref);
  g_clear_object (&fx->session);
  test_remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->docroot);
  g_free (fx->gateway_url);
  g_free (fx->origin_url);
  g_free (fx->urn);
  for (guint i = 0; i < 2; i++)
    g_clear_pointer (&fx->media[i], g_bytes_unref);
}

/* --- checking a stream ------------------------------------------------ */

static RawClient *
listen_to (Core *c)
{
  return raw_client_new (port_of (c->stream_url), "GET /stream HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", TRUE);
}

static void
wait_body (RawClient *client, gsize want, guint timeout_ms)
{
  raw_client_wait_body (client, want, timeout_ms);
  g_assert_false (client->eof);
}

/* How long until the second item's slot starts (ms; 0 once it has). */
static guint
until_second_item_ms (Fixture *fx)
{
  return (guint) (MAX (fx->slot_start[1] - g_get_real_time (), 0) / 1000);
}

static double
byte_rate (Fixture *fx)
{
  return (double) g_bytes_get_size (fx->media[0]) * SEC / fx->slot_len;
}

/* How many bytes @a and @b have in common from their start. */
static gsize
common_prefix (const guint8 *a, const guint8 *b, gsize len)
{
  gsize n = 0;

  while (n < len && a[n] == b[n])
    n++;
  return n;
}

/* Fails the test: @client's body leaves item @i at byte @at of the body;
 * says where what follows is found, if anywhere in the items. */
static void
body_mismatch (Fixture *fx, const guint8 *bytes, gsize len, guint i, gsize offset, gsize at, int line)
{
  g_autoptr(GString) msg = g_string_new (NULL);
  gsize probe = MIN ((gsize) 1024, len - at);

  g_string_append_printf (msg, "the stream is item %u (\"%s\") from its byte %" G_GSIZE_FORMAT
                          " for %" G_GSIZE_FORMAT " bytes, then neither that item nor the next one's start;",
                          i, item_titles[i], offset, at);
  for (guint k = 0; k < N_ITEMS; k++)
    {
      gsize len_item;
      const guint8 *item = g_bytes_get_data (fx->media[k], &len_item);
      const guint8 *found = stream_find_bytes (item, len_item, bytes + at, probe);

      if (found != NULL)
        g_string_append_printf (msg, " what follows is item %u from its byte %" G_GSIZE_FORMAT ";",
                                k, (gsize) (found - item));
    }
  g_string_truncate (msg, msg->len - 1);
  g_assertion_message (G_LOG_DOMAIN, __FILE__, line, G_STRFUNC, msg->str);
}

/* Checks that @client's body is one of the items @first to @last from
 * some offset, then (if it is that long) the next item from its start;
 * returns the offset into the item it starts in.  The next item follows
 * at the end of the one before (seamless), or earlier when the stream
 * fell behind (a stall on a loaded machine): a listener that fell behind
 * catches up at the end of the slot (doc/swarm.md), so the item it was
 * behind in is cut short.  Either way every byte is the origin's, in
 * order. */
static gsize
check_body_from (Fixture *fx, RawClient *client, guint first, guint last)
{
  g_autoptr(GBytes) body = raw_client_body (client);
  gsize len, len_item = 0;
  const guint8 *bytes = g_bytes_get_data (body, &len);
  const guint8 *item = NULL;
  const guint8 *found = NULL;
  gsize offset, rest, same, cut;
  gsize len_next;
  const guint8 *next;
  gsize more;
  guint i;

  g_assert_cmpuint (len, >=, 4096);
  g_assert_cmpuint (first, <=, last);
  g_assert_cmpuint (last, <, N_ITEMS);
  for (i = first; i <= last; i++)
    {
      item = g_bytes_get_data (fx->media[i], &len_item);
      found = stream_find_bytes (item, len_item, bytes, 4096);
      if (found != NULL)
        break;
    }
  if (found == NULL)
    {
      g_autofree char *msg = g_strdup_printf ("the stream does not start in item %u to %u (\"%s\" to \"%s\")",
                                              first, last, item_titles[first], item_titles[last]);

      g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
    }
  if (first != last)
    g_test_message ("the stream starts in item %u (\"%s\")", i, item_titles[i]);
  offset = (gsize) (found - item);
  rest = len_item - offset;
  same = common_prefix (bytes, found, MIN (len, rest));
  if (same == len)
    return offset;
  /* the next item follows from its first frame (these files have no ID3
   * tag); nothing follows the last one.  Where the stream left the item
   * early, the next item's first bytes (a frame header like the one
   * the item had there) may match the item's for a few bytes: the cut is
   * at most that far before the first difference. */
  if (i + 1 >= N_ITEMS)
    body_mismatch (fx, bytes, len, i, offset, same, __LINE__);
  next = g_bytes_get_data (fx->media[i + 1], &len_next);
  for (cut = same + 1; cut-- > 0 && same - cut <= 64;)
    {
      more = MIN (len - cut, len_next);
      if (memcmp (bytes + cut, next, more) == 0)
        break;
    }
  if (cut == G_MAXSIZE || same - cut > 64)
    body_mismatch (fx, bytes, len, i, offset, same, __LINE__);
  if (cut < rest)
    g_test_message ("the stream left item %u (\"%s\") %" G_GSIZE_FORMAT " bytes before its end "
                    "for the start of the next: it had fallen behind", i, item_titles[i], rest - cut);
  return offset;
}

/* check_body_from() for a stream that starts in the first item */
static gsize
check_body (Fixture *fx, RawClient *client)
{
  return check_body_from (fx, client, 0, 0);
}

/* Connects to @c's local stream and waits for its first bytes.  @first
 * and @last bracket the item the stream starts in, from NowPlaying asked
 * before and after: the same item unless one ended in between, or the one
 * before it while the burst a new listener gets (the newest 64 KiB of the
 * stream, about 4 s here) may still hold that one's end. */
static RawClient *
listen_from (Fixture *fx, Core *c, guint *first, guint *last)
{
  gint64 burst_us = (gint64) ((double) ALV_STREAM_SERVER_DEFAULT_BURST_SIZE / byte_rate (fx) * SEC);
  gint64 slot_start = 0;
  guint before = now_playing (c, &slot_start);
  gboolean early = g_get_real_time () - slot_start < burst_us + SEC;
  RawClient *client = listen_to (c);

  wait_body (client, 1, WAIT_MS);
  *last = now_playing (c, NULL);
  *first = before > 0 && early ? before - 1 : before;
  g_assert_cmpuint (*first, <=, *last);
  g_test_message ("%s stream: NowPlaying \"%s\" before connecting, \"%s\" after", c->stream_url,
                  item_titles[before], item_titles[*last]);
  return client;
}

/* --- a GStreamer pipeline that plays a local stream ------------------- */

typedef struct
{
  GstElement *pipeline;
  GPtrArray *titles;
  guint64 decoded;
  gboolean error;
} Decoder;

static GstPadProbeReturn
count_probe (GstPad *pad G_GNUC_UNUSED, GstPadProbeInfo *info, gpointer user_data)
{
  Decoder *d = user_data;

  if (GST_PAD_PROBE_INFO_TYPE (info) & GST_PAD_PROBE_TYPE_BUFFER)
    g_atomic_pointer_add (&d->decoded, gst_buffer_get_size (GST_PAD_PROBE_INFO_BUFFER (info)));
  return GST_PAD_PROBE_OK;
}

static void
decoder_start (Decoder *d, const char *url)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *desc = g_strdup_printf ("souphttpsrc location=%s iradio-mode=true ! icydemux ! "
                                           "decodebin ! audioconvert ! fakesink name=sink sync=false",
                                           url);
  g_autoptr(GstElement) sink = NULL;
  g_autoptr(GstPad) pad = NULL;

  d->titles = g_ptr_array_new_with_free_func (g_free);
  d->pipeline = gst_parse_launch (desc, &error);
  g_assert_no_error (error);
  sink = gst_bin_get_by_name (GST_BIN (d->pipeline), "sink");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_probe, d, NULL);
  g_assert_cmpint (gst_element_set_state (d->pipeline, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
}

static void
decoder_poll (Decoder *d)
{
  g_autoptr(GstBus) bus = gst_element_get_bus (d->pipeline);
  GstMessage *m;

  while ((m = gst_bus_pop (bus)) != NULL)
    {
      if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_TAG)
        {
          GstTagList *tags = NULL;
          g_autofree char *title = NULL;

          gst_message_parse_tag (m, &tags);
          if (gst_tag_list_get_string (tags, GST_TAG_TITLE, &title)
              && (d->titles->len == 0
                  || g_strcmp0 (g_ptr_array_index (d->titles, d->titles->len - 1), title) != 0))
            g_ptr_array_add (d->titles, g_steal_pointer (&title));
          gst_tag_list_unref (tags);
        }
      else if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR || GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS)
        {
          g_autoptr(GError) error = NULL;

          if (GST_MESSAGE_TYPE (m) == GST_MESSAGE_ERROR)
            gst_message_parse_error (m, &error, NULL);
          g_test_message ("decoder: %s", error != NULL ? error->message : "end of stream");
          d->error = TRUE;
        }
      gst_message_unref (m);
    }
}

static void
decoder_stop (Decoder *d)
{
  gst_element_set_state (d->pipeline, GST_STATE_NULL);
  g_clear_object (&d->pipeline);
  g_clear_pointer (&d->titles, g_ptr_array_unref);
}

static gboolean
saw_title (Decoder *d, const char *title)
{
  for (guint i = 0; i < d->titles->len; i++)
    if (g_str_has_suffix (g_ptr_array_index (d->titles, i), title))
      return TRUE;
  return FALSE;
}

typedef struct
{
  RawClient **clients;
  guint n;
  gsize want;
  Decoder *decoder;
} AllWait;

static gboolean
all_cond (gpointer data)
{
  AllWait *w = data;

  decoder_poll (w->decoder);
  if (w->decoder->error)
    return TRUE;
  for (guint i = 0; i < w->n; i++)
    {
      if (!raw_client_has_body (w->clients[i], w->want))
        return FALSE;
    }
  return saw_title (w->decoder, "Two");
}

/* --- the tests -------------------------------------------------------- */

/* Three listeners tune in one after the other, mid-item: each stream is
 * the origin's bytes from about the position now playing on, into the
 * next item without a break; a decoder sees both titles; the origin sends
 * well under a copy per listener, and the later listeners get data from
 * their peers. */
/* The core's Statistics say the gateway could connect back to its peer
 * port. */
static gboolean
reachable_cond (gpointer data)
{
  g_autoptr(GVariant) stats = alv_core1_dup_statistics (((Core *) data)->proxy);
  const char *value = NULL;

  return g_variant_lookup (stats, "peer-port-reachable", "&s", &value) &&
         g_strcmp0 (value, "yes") == 0;
}

static void
test_listeners (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) c0 = NULL;
  g_autoptr(RawClient) c1 = NULL;
  g_autoptr(RawClient) c2 = NULL;
  RawClient *clients[MAX_CORES];
  Decoder dec = { NULL, NULL, 0, FALSE };
  gsize total = g_bytes_get_size (fx->media[0]) + g_bytes_get_size (fx->media[1]);
  guint64 served, peers = 0, origin = 0, verified = 0;
  double rate = byte_rate (fx);
  gsize want;
  AllWait w;

  if (skip_without_media (fx))
    return;
  /* 14 s of the item left for the three tune-ins, a few seconds each on
   * a loaded machine under a sanitizer (a tune-in past the item would
   * join the next one, another test) */
  fx->join_at = LISTENERS_JOIN;
  station_in_docroot (fx, NULL);
  for (guint i = 0; i < MAX_CORES; i++)
    start_core (fx, i);
  slots_from_now (fx);

  for (guint i = 0; i < MAX_CORES; i++)
    {
      g_autoptr(GVariant) np = NULL;
      gint64 position = -1, before, after, slack;
      const char *title = NULL;

      before = g_get_real_time () - fx->slot_start[0];
      tune (fx, i);
      after = g_get_real_time () - fx->slot_start[0];
      clients[i] = listen_to (&fx->cores[i]);
      wait_body (clients[i], 8192, WAIT_MS);
      np = alv_core1_dup_now_playing (fx->cores[i].proxy);
      g_assert_true (g_variant_lookup (np, "title", "&s", &title));
      g_assert_cmpstr (title, ==, "One");
      g_assert_true (g_variant_lookup (np, "position", "x", &position));
      g_test_message ("listener %u joined at %.2f s, tuned in between %.2f and %.2f s, its stream "
                      "flowing at %.2f s", i, (double) position / SEC, (double) before / SEC,
                      (double) after / SEC, (double) (g_get_real_time () - fx->slot_start[0]) / SEC);
      /* the tune-in starts at the position playing when the core took the
       * Tune, by its station clock: that clock reads the gateway's Date
       * headers (one-second resolution, stamped somewhere in a round trip
       * made during the Tune), so it may be off by half a second and half
       * that round trip; how long the stream then takes to flow is the
       * machine's load, not the core's choice */
      slack = SEC + (after - before);
      g_assert_cmpint (position, >=, before - slack);
      g_assert_cmpint (position, <=, after + slack);
      if (i == 0)
        decoder_start (&dec, fx->cores[0].stream_url);
      /* the next listener comes a second later */
      test_run_for (1000);
    }
  c0 = clients[0];
  c1 = clients[1];
  c2 = clients[2];

  /* read on until each stream is 4 s into the second item */
  want = (gsize) ((double) MAX (fx->slot_start[1] - g_get_real_time (), 0) / SEC * rate + 4 * rate);
  w.clients = clients;
  w.n = MAX_CORES;
  w.want = want;
  w.decoder = &dec;
  test_wait_until (all_cond, &w, until_second_item_ms (fx) + test_slack_ms (WAIT_MS));
  g_assert_false (dec.error);
  g_assert_true (saw_title (&dec, "One"));
  g_assert_true (saw_title (&dec, "Two"));
  g_assert_cmpuint (dec.decoded, >, 0);
  decoder_stop (&dec);

  for (guint i = 0; i < MAX_CORES; i++)
    {
      gsize offset = check_body (fx, clients[i]);
      gsize len = clients[i]->received->len;
      g_autoptr(GBytes) body = raw_client_body (clients[i]);
      gsize body_len;
      const guint8 *b = g_bytes_get_data (body, &body_len);

      g_test_message ("listener %u: stream from byte %" G_GSIZE_FORMAT " (%.2f s), %" G_GSIZE_FORMAT
                      " bytes, from peers %" G_GUINT64_FORMAT ", from the origin %" G_GUINT64_FORMAT,
                      i, offset, offset / rate, len, core_stat (&fx->cores[i], "bytes-from-peers"),
                      core_stat (&fx->cores[i], "bytes-from-origin"));
      /* the stream reached item two, from its start: after the end of
       * item one, or earlier where a core that fell behind cut item one
       * short at its slot's end (check_body() saw which) */
      g_assert_nonnull (stream_find_bytes (b, body_len, g_bytes_get_data (fx->media[1], NULL), 1024));
      peers += core_stat (&fx->cores[i], "bytes-from-peers");
      origin += core_stat (&fx->cores[i], "bytes-from-origin");
      verified += core_stat (&fx->cores[i], "blocks-verified");
      g_assert_cmpuint (core_stat (&fx->cores[i], "blocks-rejected"), ==, 0);
    }
  served = gateway_status (fx, "bytes-served");
  g_test_message ("origin served %" G_GUINT64_FORMAT " bytes of media (%.2f copies of the station's "
                  "%" G_GSIZE_FORMAT " bytes for %u listeners); peers delivered %" G_GUINT64_FORMAT,
                  served, (double) served / total, total, MAX_CORES, peers);
  /* the playlist is served too, and is small */
  g_assert_cmpuint (served, >=, origin);
  g_assert_cmpuint (served, <, 2 * total);
  g_assert_cmpuint (peers, >, total / 2);
  g_assert_cmpuint (verified, >, 0);
  /* the gateway checked each one's peer port, and each one was told */
  for (guint i = 0; i < MAX_CORES; i++)
    test_wait_until (reachable_cond, &fx->cores[i], WAIT_MS);
  g_assert_cmpuint (gateway_status (fx, "reachable"), >=, MAX_CORES);
  g_assert_cmpuint (gateway_status (fx, "unreachable"), ==, 0);
}

/* Answers as a peer holding all of item one: HEAD, one range (206, its
 * bytes flipped here and there if @corrupt), 503 to anything else, 404
 * off /uri-res/N2R.  Returns whether it was a GET of the item. */
static gboolean
serve_as_holder (Fixture           *fx,
                 SoupServerMessage *msg,
                 const char        *path,
                 gboolean           corrupt)
{
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  gsize total;
  const guint8 *data = g_bytes_get_data (fx->media[0], &total);
  g_autofree char *avail = g_strdup_printf ("bytes 0-%" G_GSIZE_FORMAT, total - 1);
  SoupRange *ranges = NULL;
  int n = 0;

  if (strcmp (path, "/uri-res/N2R") != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return FALSE;
    }
  soup_message_headers_replace (resp, "X-Content-URN", fx->urn);
  soup_message_headers_replace (resp, "X-Available-Ranges", avail);
  if (strcmp (soup_server_message_get_method (msg), "HEAD") == 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_set_content_length (resp, total);
      return FALSE;
    }
  if (soup_message_headers_get_ranges (req, total, &ranges, &n) && n == 1)
    {
      goffset start = ranges[0].start, end = MIN (ranges[0].end, (goffset) total - 1);
      g_autofree guint8 *bytes = g_memdup2 (data + start, end - start + 1);

      soup_message_headers_free_ranges (req, ranges);
      for (goffset i = 0; corrupt && i <= end - start; i += 997)
        bytes[i] ^= 0x5a;
      soup_message_headers_set_content_range (resp, start, end, total);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
      soup_server_message_set_response (msg, "audio/mpeg", SOUP_MEMORY_COPY,
                                        (const char *) bytes, end - start + 1);
      return TRUE;
    }
  if (ranges != NULL)
    soup_message_headers_free_ranges (req, ranges);
  soup_server_message_set_status (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
  return TRUE;
}

/* A peer that claims to hold everything and serves corrupt blocks: the
 * core bans it and the stream stays byte-exact. */
static void
serve_liar (SoupServer        *server G_GNUC_UNUSED,
            SoupServerMessage *msg,
            const char        *path,
            GHashTable        *query G_GNUC_UNUSED,
            gpointer           user_data)
{
  Fixture *fx = user_data;

  if (serve_as_holder (fx, msg, path, TRUE))
    fx->liar_requests++;
}

/* Asks until @ask holds, every 50 ms for at most WAIT_MS: for what a
 * process tells nobody when it changes (the gateway's peer table, a
 * core's X-Alt, a resolve answered 202 while the gateway hashes), so
 * there is no event to wait on.  Fails the test, naming
 * @what, when time runs out. */
static void
ask_until_full (Fixture    *fx,
                gboolean  (*ask) (Fixture *fx, gpointer data),
                gpointer    data,
                const char *what,
                int         line)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) WAIT_MS * 1000;

  while (!ask (fx, data))
    {
      if (g_get_monotonic_time () >= deadline)
        {
          g_autofree char *msg = g_strdup_printf ("timed out after %u ms asking until %s", WAIT_MS, what);

          g_assertion_message (G_LOG_DOMAIN, __FILE__, line, G_STRFUNC, msg);
        }
      test_run_for (50);
    }
}
#define ask_until(fx, ask, data) ask_until_full ((fx), (ask), (data), #ask, __LINE__)

typedef struct
{
  const char *url;
  SoupMessageHeaders *headers;
} ResolveWait;

/* The gateway has resolved: it answers 202 with Retry-After while it
 * hashes the file. */
static gboolean
resolved_cond (Fixture *fx, gpointer data)
{
  ResolveWait *w = data;

  g_clear_pointer (&w->headers, soup_message_headers_unref);
  return http_get (fx, w->url, NULL, &w->headers) == 200;
}

/* Resolves item one at the gateway into fx->urn. */
static void
resolve_item_one (Fixture *fx)
{
  g_autofree char *media = g_strconcat (fx->gateway_url, "media/one.mp3", NULL);
  g_autofree char *escaped = g_uri_escape_string (media, NULL, FALSE);
  g_autofree char *resolve = g_strconcat (fx->gateway_url, "resolve?url=", escaped, NULL);
  ResolveWait w = { resolve, NULL };

  ask_until (fx, resolved_cond, &w);
  fx->urn = g_strdup (soup_message_headers_get_one (w.headers, "X-Content-URN"));
  soup_message_headers_unref (w.headers);
  g_assert_nonnull (fx->urn);
}

/* @server registers at the gateway as a peer holding all of item one;
 * returns the gateway's answer. */
static SoupMessageHeaders *
announce_completed (Fixture *fx, SoupServer *server)
{
  g_autofree char *url = test_server_get_url (server);
  g_autofree char *announce = g_strdup_printf ("%sannounce?urn=%s&port=%u&event=completed",
                                               fx->gateway_url, fx->urn, port_of (url));
  SoupMessageHeaders *headers = NULL;

  g_assert_cmpuint (http_get (fx, announce, NULL, &headers), ==, 200);
  return headers;
}

static void
test_lying_peer (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) client = NULL;
  double rate = byte_rate (fx);

  if (skip_without_media (fx))
    return;
  station_in_docroot (fx, NULL);

  /* the liar registers at the gateway as holding all of item one */
  resolve_item_one (fx);
  fx->liar = start_server (serve_liar, fx);
  soup_message_headers_unref (announce_completed (fx, fx->liar));

  start_core (fx, 0);
  tune (fx, 0);
  client = listen_to (&fx->cores[0]);
  /* 8 s of stream: long enough for the swarm to try the liar and more */
  wait_body (client, (gsize) (8 * rate), WAIT_MS);
  check_body (fx, client);
  g_test_message ("liar asked %u times; rejected %" G_GUINT64_FORMAT " blocks",
                  fx->liar_requests, core_stat (&fx->cores[0], "blocks-rejected"));
  g_assert_cmpuint (fx->liar_requests, >, 0);
  g_assert_cmpuint (core_stat (&fx->cores[0], "blocks-rejected"), >, 0);
  /* banned: asked for its first answers only */
  g_assert_cmpuint (fx->liar_requests, <=, 8);
  g_assert_cmpuint (core_stat (&fx->cores[0], "bytes-from-peers"), ==, 0);
}

/* --- gossip ----------------------------------------------------------- */

/* A made-up address was contacted: counted, and hung up on at once, as
 * a host that is not a peer would. */
static gboolean
fake_incoming (GSocketService    *service G_GNUC_UNUSED,
               GSocketConnection *connection,
               GObject           *source G_GNUC_UNUSED,
               gpointer           user_data)
{
  Fixture *fx = user_data;
  g_autoptr(GSocketAddress) local = g_socket_connection_get_local_address (connection, NULL);

  fx->fake_connections++;
  if (G_IS_INET_SOCKET_ADDRESS (local))
    g_hash_table_add (fx->fakes_contacted,
                      GUINT_TO_POINTER ((guint) g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (local))));
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
  return TRUE;
}

/* N_FAKES listening sockets on 127.0.0.1 that no core knows of but from
 * the gossiper. */
static void
start_fakes (Fixture *fx)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);

  fx->fakes = g_socket_service_new ();
  fx->fake_keys = g_ptr_array_new_with_free_func (g_free);
  fx->fakes_contacted = g_hash_table_new (NULL, NULL);
  for (guint i = 0; i < N_FAKES; i++)
    {
      g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
      g_autoptr(GSocketAddress) bound = NULL;
      g_autoptr(GError) error = NULL;

      g_socket_listener_add_address (G_SOCKET_LISTENER (fx->fakes), any, G_SOCKET_TYPE_STREAM,
                                     G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error);
      g_assert_no_error (error);
      g_ptr_array_add (fx->fake_keys, alv_alt_format_address (G_INET_SOCKET_ADDRESS (bound)));
    }
  g_signal_connect (fx->fakes, "incoming", G_CALLBACK (fake_incoming), fx);
  g_socket_service_start (fx->fakes);
}

/* Every made-up address, a different 32 first in each answer (a reader
 * takes the first ALV_ALT_MAX_ENTRIES). */
static char *
fake_alt (Fixture *fx)
{
  GString *alt = g_string_new (NULL);
  guint first = fx->gossip_answers * ALV_ALT_MAX_ENTRIES;

  for (guint i = 0; i < N_FAKES; i++)
    {
      if (i > 0)
        g_string_append_c (alt, ',');
      g_string_append (alt, fx->fake_keys->pdata[(first + i) % N_FAKES]);
    }
  return g_string_free (alt, FALSE);
}

/* The gossiper: item one in full and good, every answer naming all the
 * made-up addresses; it counts its answers per requester. */
static void
serve_gossiper (SoupServer        *server G_GNUC_UNUSED,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query G_GNUC_UNUSED,
                gpointer           user_data)
{
  Fixture *fx = user_data;
  const char *listen = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                                     ALV_HEADER_LISTEN_PORT);
  g_autofree char *alt = fake_alt (fx);

  if (listen != NULL)
    {
      guint16 port = (guint16) g_ascii_strtoull (listen, NULL, 10);
      gpointer key = GUINT_TO_POINTER ((guint) port);

      if (!g_hash_table_contains (fx->gossiped_to, key))
        g_array_append_val (fx->requesters, port);
      g_hash_table_insert (fx->gossiped_to, key,
                           GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (fx->gossiped_to, key)) + 1));
    }
  fx->gossip_answers++;
  soup_message_headers_replace (soup_server_message_get_response_headers (msg), ALV_HEADER_ALT, alt);
  serve_as_holder (fx, msg, path, FALSE);
}

typedef struct
{
  Fixture *fx;
  guint requesters;
  guint answers;
} GossipWait;

/* The gossiper has answered @requesters cores at least @answers times
 * each. */
static gboolean
gossiped_cond (gpointer data)
{
  GossipWait *w = data;

  if (w->fx->requesters->len < w->requesters)
    return FALSE;
  for (guint i = 0; i < w->requesters; i++)
    {
      guint port = g_array_index (w->fx->requesters, guint16, i);

      if (GPOINTER_TO_UINT (g_hash_table_lookup (w->fx->gossiped_to, GUINT_TO_POINTER (port))) < w->answers)
        return FALSE;
    }
  return TRUE;
}

/* The X-Alt of the gateway's answer names @port on 127.0.0.1. */
static gboolean
names_port (const char *alt, guint16 port)
{
  g_autoptr(GPtrArray) addrs = alt != NULL ? alv_alt_parse (alt, ALV_ALT_MAX_ENTRIES, NULL) : NULL;
  g_autofree char *key = g_strdup_printf ("127.0.0.1:%u", port);

  for (guint i = 0; addrs != NULL && i < addrs->len; i++)
    {
      g_autofree char *a = alv_alt_format_address (addrs->pdata[i]);

      if (g_strcmp0 (a, key) == 0)
        return TRUE;
    }
  return FALSE;
}

/* Asks the core on peer port @port for item one (HEAD); returns its
 * X-Alt (nullable), having checked that it names no made-up address. */
static char *
core_alt (Fixture *fx, guint16 port)
{
  g_autofree char *url = g_strdup_printf ("http://127.0.0.1:%u/uri-res/N2R?%s", port, fx->urn);
  g_autoptr(SoupMessageHeaders) headers = NULL;
  const char *alt;

  g_assert_cmpuint (http_request (fx, SOUP_METHOD_HEAD, url, NULL, &headers), !=, 0);
  alt = soup_message_headers_get_list (headers, ALV_HEADER_ALT);
  for (guint i = 0; i < N_FAKES; i++)
    if (alt != NULL && strstr (alt, fx->fake_keys->pdata[i]) != NULL)
      {
        g_autofree char *msg = g_strdup_printf ("the core on port %u names the made-up %s in X-Alt: %s",
                                                port, (char *) fx->fake_keys->pdata[i], alt);

        g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, msg);
      }
  return g_strdup (alt);
}

/* What the gateway answers the gossiper names @port (a #guint16 in a
 * pointer). */
static gboolean
gateway_names_cond (Fixture *fx, gpointer port)
{
  g_autoptr(SoupMessageHeaders) answer = announce_completed (fx, fx->gossiper);

  return names_port (soup_message_headers_get_list (answer, ALV_HEADER_ALT),
                     (guint16) GPOINTER_TO_UINT (port));
}

typedef struct
{
  guint16 port;                 /* the listener asked */
  guint16 named;                /* the port its X-Alt should name */
  char *alt;                    /* its last X-Alt */
} AltWait;

/* The X-Alt of the listener on @w->port names @w->named (and, as
 * core_alt() checks, no made-up address). */
static gboolean
core_names_cond (Fixture *fx, gpointer data)
{
  AltWait *w = data;

  g_free (w->alt);
  w->alt = core_alt (fx, w->port);
  return names_port (w->alt, w->named);
}

/* One peer, registered at the gateway, serves item one well and names 250
 * made-up addresses in every answer (listeners of the test's, counting
 * connections).  Two honest listeners fetch from it: neither names a
 * made-up address in its own X-Alt, the second names the first (the
 * gateway vouched for it), and their connections to the made-up
 * addresses stay within what the rules allow, whenever they are counted:
 * per listener, SOURCE_MAX addresses from one gossiping peer, each tried
 * at most UNPROVEN_MAX_FAILURES times.  (They used to name the made-up
 * addresses and contact every one they heard of at once.) */
static void
test_gossip (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  static const char * const verified[] = { "blocks-verified", NULL };
  const guint bound = 2 * ALV_SWARM_PLAN_SOURCE_MAX * ALV_SWARM_PLAN_UNPROVEN_MAX_FAILURES;
  GossipWait w = { fx, 0, 0 };
  guint16 first_port;
  AltWait aw = { 0, };
  g_autofree char *alt = NULL;
  StatWait sw;

  if (skip_without_media (fx))
    return;
  /* tuned in as item one begins: the whole of it is fetched, much of it
   * from the gossiper */
  fx->join_at = SEC;
  station_in_docroot (fx, NULL);
  resolve_item_one (fx);
  start_fakes (fx);
  fx->gossiped_to = g_hash_table_new (NULL, NULL);
  fx->requesters = g_array_new (FALSE, FALSE, sizeof (guint16));
  fx->gossiper = start_server (serve_gossiper, fx);
  soup_message_headers_unref (announce_completed (fx, fx->gossiper));

  start_core (fx, 0);
  tune (fx, 0);
  w.requesters = 1;
  test_wait_until (gossiped_cond, &w, WAIT_MS);
  first_port = g_array_index (fx->requesters, guint16, 0);
  /* the gateway knows the first listener (from its announce) before the
   * second asks it */
  ask_until (fx, gateway_names_cond, GUINT_TO_POINTER (first_port));

  start_core (fx, 1);
  tune (fx, 1);
  w.requesters = 2;
  w.answers = 3;
  test_wait_until (gossiped_cond, &w, WAIT_MS);
  g_test_message ("the gossiper answered %u times; %u connections to made-up addresses",
                  fx->gossip_answers, fx->fake_connections);

  /* the second names the first (and never a made-up address) once it
   * shares the item: it holds the tree when a block was verified */
  sw = (StatWait) { &fx->cores[1], verified, 1 };
  test_wait_until (stat_cond, &sw, WAIT_MS);
  aw.port = g_array_index (fx->requesters, guint16, 1);
  aw.named = first_port;
  ask_until (fx, core_names_cond, &aw);
  g_test_message ("X-Alt of the second listener: %s", aw.alt);
  g_clear_pointer (&aw.alt, g_free);
  alt = core_alt (fx, first_port);
  g_test_message ("X-Alt of the first listener: %s", alt ? alt : "(none)");

  g_test_message ("%u connections to %u made-up addresses (at most %u to %u)", fx->fake_connections,
                  g_hash_table_size (fx->fakes_contacted), bound, 2 * ALV_SWARM_PLAN_SOURCE_MAX);
  g_assert_cmpuint (g_hash_table_size (fx->fakes_contacted), <=, 2 * ALV_SWARM_PLAN_SOURCE_MAX);
  g_assert_cmpuint (fx->fake_connections, <=, bound);
}

/* Statistics published after the n_statistics'th say that @c holds
 * every block of the item it plays. */
typedef struct
{
  Core *c;
  guint after;
} HeldWait;

static gboolean
fresh_item_held_cond (gpointer data)
{
  HeldWait *w = data;
  g_autoptr(GVariant) stats = NULL;
  guint64 held = 0, blocks = 0;

  if (w->c->n_statistics <= w->after)
    return FALSE;
  stats = alv_core1_dup_statistics (w->c->proxy);
  return g_variant_lookup (stats, "item-blocks-held", "t", &held)
         && g_variant_lookup (stats, "item-blocks", "t", &blocks)
         && blocks > 0 && held == blocks;
}

/* Waits until @c holds the whole item it plays, and returns that item.
 * The Statistics that say so must be about the item NowPlaying names
 * before and after them: when the item changes in between, the wait
 * begins again with the next one. */
static guint
wait_item_held (Core *c)
{
  guint before = now_playing (c, NULL);

  for (;;)
    {
      HeldWait w = { c, c->n_statistics };
      guint after;

      test_wait_until (fresh_item_held_cond, &w, WAIT_MS);
      after = now_playing (c, NULL);
      if (after == before)
        return after;
      g_assert_cmpuint (after, >, before);   /* so at most N_ITEMS rounds */
      g_test_message ("the first listener is in item %u (\"%s\") now", after, item_titles[after]);
      before = after;
    }
}

/* The media at a separate origin (fx->origin, serve_origin()), the
 * gateway hashing them from there, the playlist naming them there. */
static void
station_at_origin (Fixture *fx)
{
  g_autofree char *origin_opt = NULL;

  fx->origin = start_server (serve_origin, fx);
  fx->origin_url = test_server_get_url (fx->origin);
  origin_opt = g_strconcat ("--origin=", fx->origin_url, NULL);
  {
    const char *extra[] = { origin_opt, "--allow-private", NULL };

    start_gateway (fx, extra);
  }
  write_playlist (fx, fx->origin_url, NULL);
}

/* The media live on a separate origin; once the first listener holds the
 * item it plays, the origin goes down: a second listener plays on from its
 * peer.  Which item each listener plays is the daemons' NowPlaying: on a
 * slow machine they may be in item two by then. */
static void
test_origin_down (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  static const char * const from_peers[] = { "bytes-from-peers", NULL };
  g_autoptr(RawClient) first = NULL;
  g_autoptr(RawClient) second = NULL;
  guint first_from, first_to, second_from, second_to, tuned, playing;
  double rate = byte_rate (fx);
  StatWait sw;

  if (skip_without_media (fx))
    return;
  station_at_origin (fx);

  start_core (fx, 0);
  tune (fx, 0);
  tuned = now_playing (&fx->cores[0], NULL);
  first = listen_from (fx, &fx->cores[0], &first_from, &first_to);
  wait_body (first, 8192, WAIT_MS);
  /* the first listener fetches the whole item it plays (it shares what it
   * holds); if the next one has begun by then (a loaded machine), it
   * leaves the rest of the first and fetches the next one */
  playing = wait_item_held (&fx->cores[0]);
  g_assert_cmpuint (playing, >=, tuned);
  g_assert_cmpuint (core_stat (&fx->cores[0], "bytes-from-origin"), >, 0);

  fx->origin_down = TRUE;
  fx->origin_bytes = 0;
  start_core (fx, 1);
  tune (fx, 1);
  second = listen_from (fx, &fx->cores[1], &second_from, &second_to);
  wait_body (second, (gsize) (6 * rate), WAIT_MS);
  check_body_from (fx, second, second_from, second_to);
  check_body_from (fx, first, first_from, first_to);
  sw = (StatWait) { &fx->cores[1], from_peers, 1 };
  test_wait (stat_cond, &sw, WAIT_MS);
  g_test_message ("with the origin down: second listener got %" G_GUINT64_FORMAT " bytes from peers",
                  core_stat (&fx->cores[1], "bytes-from-peers"));
  g_assert_cmpuint (fx->origin_bytes, ==, 0);
  g_assert_cmpuint (core_stat (&fx->cores[1], "bytes-from-peers"), >, 0);
  g_assert_cmpstr (alv_core1_get_state (fx->cores[1].proxy), ==, "playing");
}

/* A listener tuning in mid-item plays without the item's head: the
 * gateway's resolve answer told what the head would (X-Content-Head), so
 * the blocks at the position are all it waits for.  The origin refuses
 * every request for the first block and no peer has it; the stream is
 * still the item's bytes from the position on. */
static void
test_head_facts (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) client = NULL;
  guint from, to;

  if (skip_without_media (fx))
    return;
  station_at_origin (fx);
  fx->refuse_head = TRUE;

  start_core (fx, 0);
  tune (fx, 0);
  client = listen_from (fx, &fx->cores[0], &from, &to);
  wait_body (client, (gsize) (3 * byte_rate (fx)), WAIT_MS);
  check_body_from (fx, client, from, to);
  g_assert_cmpstr (alv_core1_get_state (fx->cores[0].proxy), ==, "playing");
  g_test_message ("the origin refused the first block %u times", fx->head_refusals);
}

typedef struct
{
  Core *c;
  const char *title;
} PlayingWait;

static const char *
playing_title (Core *c)
{
  g_autoptr(GVariant) np = alv_core1_dup_now_playing (c->proxy);
  const char *title = NULL;

  if (np == NULL || !g_variant_lookup (np, "title", "&s", &title))
    return "";
  return g_intern_string (title);
}

/* @c plays the item titled @title, and says it plays it. */
static gboolean
playing_cond (gpointer data)
{
  PlayingWait *w = data;
  g_autoptr(GVariant) np = alv_core1_dup_now_playing (w->c->proxy);
  const char *title = NULL;

  return np != NULL && g_variant_lookup (np, "title", "&s", &title) &&
         g_strcmp0 (title, w->title) == 0 &&
         g_strcmp0 (alv_core1_get_state (w->c->proxy), "playing") == 0;
}

static guint64
item_stat (Core *c, const char *key)
{
  g_autoptr(GVariant) stats = alv_core1_dup_statistics (c->proxy);
  g_autoptr(GVariant) v = g_variant_lookup_value (stats, key, NULL);

  if (v == NULL)
    return 0;
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  return g_variant_get_uint64 (v);
}

typedef struct
{
  Core *c;
} ItemWait;

/* The Statistics name the item playing, held in full. */
static gboolean
item_held_cond (gpointer data)
{
  ItemWait *w = data;
  guint64 blocks = item_stat (w->c, "item-blocks");

  return blocks > 0 && item_stat (w->c, "item-blocks-held") == blocks;
}

/* The station's host (gateway, playlist and media) goes down while a
 * listener holds what it played: an item it played before, named by its
 * URN in the playlist, still plays, from the cache, although it is
 * resolved only after the host went away (it used to fail with "Cannot
 * play …: Could not connect" until the host came back). */
static void
test_cached_host_down (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  static const char * const fetched[] = { "bytes-from-origin", "bytes-from-peers", NULL };
  const char *names[] = { "one.mp3", "two.mp3", "one.mp3" };
  const char *titles[] = { "One", "Two", "One again" };
  /* tuned in as the first item begins, so the whole of it is fetched
   * (never what is behind the playhead); the second one short */
  gint64 lens[] = { fx->slot_len, 5 * SEC, fx->slot_len };
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(RawClient) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  g_autofree char *path = NULL;
  AlvPlaylistItem *items[3];
  gint64 start;
  PlayingWait pw;
  StatWait sw;
  gsize before;

  if (skip_without_media (fx))
    return;
  /* the media and the gateway; the playlist is replaced below, its first
   * slot beginning just after the core is tuned (starting the core takes seconds
   * on a loaded machine, more under a sanitizer: a slot placed before
   * would have begun that long before the tune-in) */
  station_in_docroot (fx, NULL);
  start_core (fx, 0);
  path = g_build_filename (fx->docroot, "station.rss", NULL);
  alv_playlist_set_title (pl, "Swarm Station");
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *url = g_strconcat (fx->gateway_url, "media/", names[i], NULL);
      GBytes *media = fx->media[i == 1 ? 1 : 0];
      g_autoptr(AlvHashTree) tree = alv_hash_tree_new_for_data (g_bytes_get_data (media, NULL),
                                                                g_bytes_get_size (media),
                                                                ALV_HASH_TREE_DEFAULT_BLOCK_SIZE);
      g_autofree char *urn = alv_hash_tree_get_urn (tree);

      items[i] = alv_playlist_item_new (url);
      alv_playlist_item_set_title (items[i], titles[i]);
      alv_playlist_item_set_creator (items[i], "white noise");
      alv_playlist_item_set_media_type (items[i], "audio/mpeg");
      alv_playlist_item_set_urn (items[i], urn);
    }
  /* (the slots last, the hashing above takes a while under a sanitizer;
   * the first begins a little after the tune-in, so it plays from its
   * start however long the tune takes on a loaded machine: joined more
   * than half a second in, what is behind the position is never fetched
   * and the wait for the whole item below could not end) */
  start = g_get_real_time () + 3 * SEC;
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autoptr(AlvPlaylistItem) item = g_steal_pointer (&items[i]);
      g_autoptr(GDateTime) s = stream_datetime (start);
      g_autoptr(GDateTime) e = stream_datetime (start + lens[i]);

      alv_playlist_item_set_slot (item, s, e);
      alv_playlist_add_item (pl, item);
      start += lens[i];
    }
  text = alv_playlist_to_string (pl, NULL);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);

  tune (fx, 0);
  client = raw_client_new (port_of (fx->cores[0].stream_url), "GET /stream HTTP/1.0\r\n\r\n", TRUE);
  /* both media held (the second is prefetched once the first is held) */
  sw = (StatWait) { &fx->cores[0], fetched,
                    g_bytes_get_size (fx->media[0]) + g_bytes_get_size (fx->media[1]) };
  g_assert_true (test_wait (stat_cond, &sw, WAIT_MS));
  /* (the third item is resolved at the second one's slot, later) */
  g_assert_cmpstr (playing_title (&fx->cores[0]), ==, "One");
  /* the item's own figures, beside the totals */
  {
    ItemWait iw = { &fx->cores[0] };

    g_assert_true (test_wait (item_held_cond, &iw, WAIT_MS));
    g_assert_cmpuint (item_stat (&fx->cores[0], "item-bytes-from-origin"), >=,
                      g_bytes_get_size (fx->media[0]) - 16384);
  }

  /* the host goes down */
  g_assert_true (test_subprocess_stop (fx->gateway, SIGTERM, WAIT_MS));
  g_clear_object (&fx->gateway);

  pw = (PlayingWait) { &fx->cores[0], "One again" };
  test_wait (playing_cond, &pw, fx->slot_len / 1000 + WAIT_MS);
  g_assert_true (playing_cond (&pw));
  /* and its bytes flow */
  before = client->received->len;
  wait_body (client, before + 16 * 1024, WAIT_MS);
}

/* The playlist names other content than the gateway: the playlist wins,
 * the core does not swarm what the gateway describes and plays the item
 * from its origin. */
static void
test_urn_mismatch (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) client = NULL;
  double rate = byte_rate (fx);
  guint8 root[32];

  if (skip_without_media (fx))
    return;
  memset (root, 0x42, sizeof root);
  {
    g_autofree char *other = alv_urn_format (root);

    station_in_docroot (fx, other);
  }
  start_core (fx, 0);
  tune (fx, 0);
  client = listen_to (&fx->cores[0]);
  wait_body (client, (gsize) (3 * rate), WAIT_MS);
  check_body (fx, client);
  /* statistics are published once a second: wait for that second's */
  {
    static const char * const from_origin[] = { "bytes-from-origin", NULL };
    StatWait sw = { &fx->cores[0], from_origin, 1 };

    test_wait_until (stat_cond, &sw, WAIT_MS);
  }
  g_assert_cmpuint (core_stat (&fx->cores[0], "blocks-verified"), ==, 0);
  g_assert_cmpuint (gateway_status (fx, "announces"), ==, 0);
}

/* --- a video station ---------------------------------------------------- */

/* each WebM item lasts this long (s); listeners tune in VIDEO_JOIN into
 * the first */
#define VIDEO_S 12
#define VIDEO_JOIN (5 * SEC)
/* bytes of a Cluster that mark it in a stream */
#define MARK_SIZE 64

/* What a listener of the video station should have received: the first
 * item's stream header and its Clusters from @from0 up to @to0 (nothing
 * of it, not even its header, when @from0 is 0), then the second item's
 * header and its Clusters from @from1 on (offsets in the origin's files),
 * remuxed by the same rules (alv-matroska.h) the local stream follows. */
static GByteArray *
video_expected (Fixture *fx,
                gsize    from0,
                gsize    to0,
                gsize    from1)
{
  g_autoptr(AlvMatroskaRemuxer) remuxer = alv_matroska_remuxer_new ();
  GByteArray *out = g_byte_array_new ();
  AlvMatroskaInfo info;
  AlvMatroskaPiece piece;
  GBytes *bytes;
  gsize len;
  const guint8 *d = g_bytes_get_data (fx->media[0], &len);

  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  if (from0 != 0)
    {
      alv_matroska_remuxer_begin_item (remuxer);
      alv_matroska_remuxer_push (remuxer, d, info.header_length);
      if (to0 > from0)
        alv_matroska_remuxer_push (remuxer, d + from0, to0 - from0);
    }
  alv_matroska_remuxer_begin_item (remuxer);
  d = g_bytes_get_data (fx->media[1], &len);
  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  alv_matroska_remuxer_push (remuxer, d, info.header_length);
  alv_matroska_remuxer_push (remuxer, d + from1, len - from1);
  alv_matroska_remuxer_begin_item (remuxer);
  while ((bytes = alv_matroska_remuxer_pop (remuxer, &piece)) != NULL)
    {
      g_byte_array_append (out, g_bytes_get_data (bytes, NULL), (guint) g_bytes_get_size (bytes));
      g_bytes_unref (bytes);
    }
  return out;
}

/* The blocks of Cluster @a (at @ad) are those of Cluster @b (at @bd):
 * the remuxer rewrites a Cluster's head (its Timecode), never its blocks. */
static gboolean
same_blocks (const guint8             *ad,
             const AlvMatroskaCluster *a,
             const guint8             *bd,
             const AlvMatroskaCluster *b)
{
  gsize alen = a->header_length + a->size - a->head_length;
  gsize blen = b->header_length + b->size - b->head_length;

  return alen == blen && memcmp (ad + a->head_length, bd + b->head_length, alen) == 0;
}

/* Where the origin's item @i's last Cluster ends (what follows, Cues say,
 * is not streamed) */
static gsize
clusters_end (Fixture *fx,
              guint    i)
{
  AlvMatroskaInfo info;
  AlvMatroskaCluster c;
  gsize len, pos;
  const guint8 *d = g_bytes_get_data (fx->media[i], &len);

  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  for (pos = info.header_length;
       pos < len && alv_matroska_cluster_parse (d + pos, len - pos, &info, &c) == ALV_MATROSKA_PARSE_OK &&
       c.size != G_MAXUINT64 && pos + c.header_length + c.size <= len;
       pos += c.header_length + c.size)
    ;
  return pos;
}

/* Where in the origin's item @i the Cluster with the blocks of @c (at @p)
 * starts; 0 when none has them. */
static gsize
find_origin_cluster (Fixture                  *fx,
                     guint                     i,
                     const guint8             *p,
                     const AlvMatroskaCluster *c,
                     AlvMatroskaCluster       *oc)
{
  AlvMatroskaInfo info;
  gsize len, pos;
  const guint8 *d = g_bytes_get_data (fx->media[i], &len);

  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  len = clusters_end (fx, i);
  for (pos = info.header_length; pos < len; pos += oc->header_length + oc->size)
    {
      g_assert_cmpint (alv_matroska_cluster_parse (d + pos, len - pos, &info, oc), ==, ALV_MATROSKA_PARSE_OK);
      g_assert_cmpuint (oc->size, !=, G_MAXUINT64);
      if (same_blocks (d + pos, oc, p, c))
        return pos;
    }
  return 0;
}

/* @client's stream: the live header, then the first item's Clusters from
 * a keyframe on, their blocks the origin's byte for byte, then the second
 * item's, everything (timecodes included) as the remuxer makes it of the
 * origin's files.  Where the first item stops and where the second starts
 * are read from the stream: a core that runs late (a loaded machine) ends
 * an item at its slot's end and starts the next at the position playing,
 * a keyframe later; the stream must stay whole across that too.  A core
 * so late that the first item's slot was over before it had any of it to
 * send starts with the second item.  Returns whether the stream has the
 * first item, and sets @at to the time (µs) in it where it starts. */
static gboolean
check_video_body (Fixture   *fx,
                  RawClient *client,
                  gint64    *at)
{
  g_autoptr(GBytes) body = raw_client_body (client);
  g_autoptr(GByteArray) expected = NULL;
  AlvMatroskaInfo binfo;
  AlvMatroskaCluster c, oc;
  gsize blen, len[2], off, first[2] = { 0, 0 }, next = 0, end0 = 0, n_clusters = 0;
  const guint8 *b = g_bytes_get_data (body, &blen);
  const guint8 *d[2];
  AlvMatroskaInfo info[2];
  guint item = 0;

  for (guint i = 0; i < 2; i++)
    {
      d[i] = g_bytes_get_data (fx->media[i], &len[i]);
      g_assert_cmpint (alv_matroska_parse_info (d[i], len[i], &info[i]), ==, ALV_MATROSKA_PARSE_OK);
    }
  g_assert_cmpint (alv_matroska_parse_info (b, blen, &binfo), ==, ALV_MATROSKA_PARSE_OK);
  g_assert_true (alv_matroska_compatible (&info[0], d[0], &binfo, b));
  g_assert_cmpuint (blen, >, binfo.header_length + 4096);
  *at = 0;
  /* follow the stream Cluster by Cluster (its last one may be partial) */
  for (off = binfo.header_length;
       alv_matroska_cluster_parse (b + off, blen - off, &binfo, &c) == ALV_MATROSKA_PARSE_OK &&
       c.size != G_MAXUINT64 && off + c.header_length + c.size <= blen;
       off += c.header_length + c.size, n_clusters++)
    {
      if (n_clusters == 0)
        {
          /* the first is a keyframe Cluster of the first item (or of the
           * second, from a core that ran that late) */
          g_assert_true (c.keyframe);
          first[0] = find_origin_cluster (fx, 0, b + off, &c, &oc);
          if (first[0] == 0)
            {
              first[1] = find_origin_cluster (fx, 1, b + off, &c, &oc);
              if (first[1] == 0)
                g_error ("the stream's first Cluster (timecode %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                         " bytes) is none of either item's", c.timecode, c.size);
              g_test_message ("the core ran late: its stream starts with the second item, %" G_GSIZE_FORMAT
                              " bytes into its Clusters", first[1] - info[1].header_length);
              g_assert_true (oc.keyframe);
              item = 1;
              next = first[1] + oc.header_length + oc.size;
              continue;
            }
          g_assert_true (oc.keyframe);
          g_assert_cmpuint (oc.timecode, ==, c.timecode);
          *at = (gint64) alv_matroska_ticks_to_usec (&info[0], c.timecode);
          next = first[0] + oc.header_length + oc.size;
          continue;
        }
      if (next < len[item] &&
          alv_matroska_cluster_parse (d[item] + next, len[item] - next, &info[item], &oc) == ALV_MATROSKA_PARSE_OK &&
          same_blocks (d[item] + next, &oc, b + off, &c))
        {
          next += oc.header_length + oc.size;
          continue;
        }
      /* not the item's next Cluster: the second item begins, on a
       * keyframe, after whole Clusters of the first */
      if (item != 0)
        g_error ("Cluster %" G_GSIZE_FORMAT " of the stream (at %" G_GSIZE_FORMAT ") is not the second item's next",
                 n_clusters, off);
      item = 1;
      end0 = next;
      g_assert_true (c.keyframe);
      first[1] = find_origin_cluster (fx, 1, b + off, &c, &oc);
      if (first[1] == 0)
        g_error ("Cluster %" G_GSIZE_FORMAT " of the stream (at %" G_GSIZE_FORMAT ") is neither the first item's "
                 "next nor one of the second's", n_clusters, off);
      g_assert_true (oc.keyframe);
      next = first[1] + oc.header_length + oc.size;
    }
  g_assert_cmpuint (item, ==, 1);
  if (first[0] != 0 && (end0 != clusters_end (fx, 0) || first[1] != info[1].header_length))
    g_test_message ("the core ran late: the first item stops %" G_GSIZE_FORMAT " bytes short of its end, "
                    "the second starts %" G_GSIZE_FORMAT " bytes into its Clusters",
                    clusters_end (fx, 0) - end0, first[1] - info[1].header_length);
  expected = video_expected (fx, first[0], end0, first[1]);
  if (first[0] == 0 && memcmp (b, expected->data, MIN (blen, expected->len)) != 0)
    {
      /* the first item's header had gone out, none of its Clusters */
      g_byte_array_unref (expected);
      expected = video_expected (fx, info[0].header_length, info[0].header_length, first[1]);
    }
  g_assert_cmpmem (b, MIN (blen, expected->len), expected->data, MIN (blen, expected->len));
  return first[0] != 0;
}

/* A piece of each of the second item's Clusters from @from_us on: bytes
 * from the middle of its blocks, which the remuxer passes unchanged, and
 * found nowhere before it in either item (a steady tone's Opus packets
 * may repeat). */
static GPtrArray *
second_item_marks (Fixture *fx,
                   gint64   from_us)
{
  GPtrArray *marks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  AlvMatroskaInfo info;
  AlvMatroskaCluster oc;
  gsize len, len0, end = clusters_end (fx, 1);
  const guint8 *d = g_bytes_get_data (fx->media[1], &len);
  const guint8 *d0 = g_bytes_get_data (fx->media[0], &len0);

  g_assert_cmpint (alv_matroska_parse_info (d, len, &info), ==, ALV_MATROSKA_PARSE_OK);
  for (gsize pos = info.header_length; pos < end; pos += oc.header_length + oc.size)
    {
      const guint8 *mark;

      g_assert_cmpint (alv_matroska_cluster_parse (d + pos, end - pos, &info, &oc), ==, ALV_MATROSKA_PARSE_OK);
      g_assert_cmpuint (oc.size, >=, 2 * MARK_SIZE);
      mark = d + pos + oc.header_length + oc.size / 2;
      if ((gint64) alv_matroska_ticks_to_usec (&info, oc.timecode) >= from_us
          && stream_find_bytes (d0, len0, mark, MARK_SIZE) == NULL
          && stream_find_bytes (d, (gsize) (mark - d) + MARK_SIZE - 1, mark, MARK_SIZE) == NULL)
        g_ptr_array_add (marks, g_bytes_new (mark, MARK_SIZE));
    }
  g_assert_cmpuint (marks->len, >, 0);
  return marks;
}

typedef struct
{
  RawClient *clients[2];
  GPtrArray *marks;     /* second_item_marks() */
  gsize scanned[2];     /* bytes of each body searched for them */
  gboolean reached[2];
} BodiesWait;

/* Whether each stream has reached a Cluster of the second item marked
 * (read as it comes, each byte once). */
static gboolean
bodies_cond (gpointer data)
{
  BodiesWait *w = data;

  for (guint i = 0; i < 2; i++)
    {
      GByteArray *r = w->clients[i]->received;

      for (guint k = 0; k < w->marks->len && !w->reached[i]; k++)
        {
          gsize n;
          const guint8 *m = g_bytes_get_data (w->marks->pdata[k], &n);
          gsize from = w->scanned[i] > n ? w->scanned[i] - n : 0;

          w->reached[i] = stream_find_bytes (r->data + from, r->len - from, m, n) != NULL;
        }
      w->scanned[i] = r->len;
    }
  return w->reached[0] && w->reached[1];
}

/* Two listeners tune in a WebM station (VP8 noise, a keyframe a second,
 * Opus) 5 s into its first item, a second apart: each local stream starts
 * on a keyframe Cluster near the position playing, carries the origin's
 * blocks byte for byte and runs on into the second item; the second
 * listener's core gets most of it from the first's. */
static void
test_video (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(RawClient) c0 = NULL;
  g_autoptr(RawClient) c1 = NULL;
  g_autoptr(GPtrArray) marks = NULL;
  BodiesWait w = { { NULL, NULL }, NULL, { 0, 0 }, { FALSE, FALSE } };
  RawClient **clients = w.clients;
  gint64 expected[2];

  if (skip_without_media (fx))
    return;
  for (guint i = 0; i < N_ITEMS; i++)
    {
      g_clear_pointer (&fx->media[i], g_bytes_unref);
      fx->media[i] = stream_media_webm (VIDEO_S, i == 0 ? 1 : 18, "opus");
      if (fx->media[i] == NULL)
        {
          g_test_skip ("vp8enc, opusenc or webmmux missing");
          return;
        }
    }
  fx->ext = "webm";
  fx->media_type = "video/webm";
  fx->slot_len = VIDEO_S * SEC;
  fx->join_at = VIDEO_JOIN;
  station_in_docroot (fx, NULL);
  for (guint i = 0; i < 2; i++)
    start_core (fx, i);
  slots_from_now (fx);
  for (guint i = 0; i < 2; i++)
    {
      tune (fx, i);
      expected[i] = g_get_real_time () - fx->slot_start[0];
      clients[i] = listen_to (&fx->cores[i]);
      wait_body (clients[i], 8192, WAIT_MS);
      if (i == 0)
        test_run_for (1000);
    }

  /* read on until each stream is 3 s into the second item (or further:
   * a late core starts it at the position playing); counted in the
   * stream's Clusters, not in bytes, as the items' byte rates differ */
  c0 = clients[0];
  c1 = clients[1];
  marks = second_item_marks (fx, 3 * SEC);
  w.marks = marks;
  if (!test_wait (bodies_cond, &w, until_second_item_ms (fx) + 3000 + test_slack_ms (WAIT_MS)))
    {
      for (guint i = 0; i < 2; i++)
        g_test_message ("listener %u: %u bytes received, %s 3 s into the second item; from peers %"
                        G_GUINT64_FORMAT ", from the origin %" G_GUINT64_FORMAT, i, clients[i]->received->len,
                        w.reached[i] ? "at or past" : "not yet", core_stat (&fx->cores[i], "bytes-from-peers"),
                        core_stat (&fx->cores[i], "bytes-from-origin"));
      g_assert_true (bodies_cond (&w));
    }

  for (guint i = 0; i < 2; i++)
    {
      gint64 at = 0;
      gboolean has_first = check_video_body (fx, clients[i], &at);

      g_test_message ("listener %u tuned in at %.2f s, its stream starts at %.2f s of the %s item; "
                      "from peers %" G_GUINT64_FORMAT ", from the origin %" G_GUINT64_FORMAT, i,
                      (double) expected[i] / SEC, (double) at / SEC, has_first ? "first" : "second",
                      core_stat (&fx->cores[i], "bytes-from-peers"),
                      core_stat (&fx->cores[i], "bytes-from-origin"));
      /* a keyframe at or shortly before the position (the burst may
       * reach back one more), never much later */
      if (has_first)
        {
          g_assert_cmpint (at, <=, expected[i] + SEC);
          g_assert_cmpint (at, >=, expected[i] - 4 * SEC);
        }
      g_assert_cmpuint (core_stat (&fx->cores[i], "blocks-rejected"), ==, 0);
    }
  g_assert_cmpuint (core_stat (&fx->cores[1], "bytes-from-peers"), >,
                    core_stat (&fx->cores[1], "bytes-from-origin"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* the isolated dirs hold no GSettings schemas for GIO's proxy lookup */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_setenv ("GSETTINGS_BACKEND", "memory", TRUE);
  gst_init (&argc, &argv);

  g_test_add ("/core/swarm-daemon/listeners", Fixture, NULL, fixture_setup, test_listeners, fixture_teardown);
  g_test_add ("/core/swarm-daemon/video", Fixture, NULL, fixture_setup, test_video, fixture_teardown);
  g_test_add ("/core/swarm-daemon/lying-peer", Fixture, NULL, fixture_setup, test_lying_peer, fixture_teardown);
  g_test_add ("/core/swarm-daemon/gossip", Fixture, NULL, fixture_setup, test_gossip, fixture_teardown);
  g_test_add ("/core/swarm-daemon/origin-down", Fixture, NULL, fixture_setup, test_origin_down, fixture_teardown);
  g_test_add ("/core/swarm-daemon/head-facts", Fixture, NULL, fixture_setup, test_head_facts, fixture_teardown);
  g_test_add ("/core/swarm-daemon/urn-mismatch", Fixture, NULL, fixture_setup, test_urn_mismatch, fixture_teardown);
  g_test_add ("/core/swarm-daemon/cached-host-down", Fixture, NULL, fixture_setup,
              test_cached_host_down, fixture_teardown);
  return g_test_run ();
}
