/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of the swarm downloader (core/alv-swarm.c) and the gateway client
 * (core/alv-gateway-client.c) with real parts on 127.0.0.1: the real
 * `alluvium-server gateway` as a child process, a SoupServer origin in
 * this process that counts the bytes it serves (and can ignore Range or go
 * down), and several listeners, each an AlvSwarm with its own block store
 * and AlvPeerServer.  Every listener must end with the exact bytes of the
 * item (how many copies the origin serves is the swarm simulator's to
 * assert, tests/test-swarm-plan.c); a lying peer must be banned.  A fake gateway serves garbage to the client.  No
 * assertion depends on timing: a download is waited for as long as it
 * makes progress (see wait_download()).
 */
#define G_LOG_DOMAIN "test-swarm"
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <libsoup/soup.h>

#include "alv-base32.h"
#include "alv-block-store.h"
#include "alv-error.h"
#include "alv-gateway-client.h"
#include "alv-hash-tree.h"
#include "alv-ocn-headers.h"
#include "alv-peer-server.h"
#include "alv-swarm.h"
#include "alv-urn.h"
#include "test-util.h"

#define ITEM_PATH "/media/item.bin"
#define ITEM_SIZE (3 * 1024 * 1024 + 12345)
#define BLOCK_SIZE 65536
/* a wait for something that must come promptly */
#define WAIT_MS 40000
/* how long a download may go without any listener gaining a block (more
 * than a lease's life, GATEWAY_LEASES_TTL_US) before the test calls it
 * stuck, and how long it may take at most */
#define STALL_MS 60000
#define DOWNLOAD_MAX_MS 240000
#define N_LISTENERS 4
#define PLAY_RATE (512 * 1024)

typedef enum
{
  ORIGIN_NORMAL,
  ORIGIN_IGNORE_RANGE,  /* always 200 with the whole body */
  ORIGIN_DOWN,          /* 503 to everything */
} OriginMode;

typedef struct
{
  AlvBlockStore *store;
  AlvPeerServer *peers;
  AlvSwarm *swarm;
} Listener;

typedef struct
{
  char *dir;
  GBytes *content;
  AlvHashTree *tree;
  char *urn;
  SoupServer *origin;
  char *origin_base;            /* http://127.0.0.1:P/ */
  char *item_url;
  OriginMode origin_mode;
  guint64 origin_ranged_bytes;  /* body bytes of Range requests */
  guint64 origin_plain_bytes;   /* body bytes of requests without Range */
  guint origin_requests;
  GSubprocess *gateway;
  char *gateway_url;
  GPtrArray *listeners;
} Fixture;

/* --- the origin ----------------------------------------------------- */

static void
origin_cb (SoupServer        *server G_GNUC_UNUSED,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query G_GNUC_UNUSED,
           gpointer           user_data)
{
  Fixture *fx = user_data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  gsize size = g_bytes_get_size (fx->content);
  const char *method = soup_server_message_get_method (msg);
  gboolean head = g_strcmp0 (method, SOUP_METHOD_HEAD) == 0;
  SoupRange *ranges = NULL;
  int n_ranges = 0;

  fx->origin_requests++;
  if (fx->origin_mode == ORIGIN_DOWN)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_SERVICE_UNAVAILABLE, NULL);
      return;
    }
  if (g_strcmp0 (path, ITEM_PATH) != 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  soup_message_headers_replace (resp, "Accept-Ranges", "bytes");
  soup_message_headers_set_content_type (resp, "application/octet-stream", NULL);
  if (fx->origin_mode == ORIGIN_NORMAL &&
      soup_message_headers_get_ranges (req, size, &ranges, &n_ranges))
    {
      goffset start = ranges[0].start, end = ranges[0].end;
      g_autoptr(GBytes) part = g_bytes_new_from_bytes (fx->content, start, end - start + 1);

      soup_message_headers_free_ranges (req, ranges);
      soup_message_headers_set_content_range (resp, start, end, size);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
      if (!head)
        {
          soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                            g_bytes_get_data (part, NULL), g_bytes_get_size (part));
          fx->origin_ranged_bytes += g_bytes_get_size (part);
        }
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  if (!head)
    {
      soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                        g_bytes_get_data (fx->content, NULL), size);
      if (soup_message_headers_get_one (req, "Range") != NULL)
        fx->origin_ranged_bytes += size;
      else
        fx->origin_plain_bytes += size;
    }
}

/* A 200 is counted in full even when the client stops reading early
 * (the swarm does): the pessimistic bound. */

static void
start_origin (Fixture *fx)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;

  fx->origin = soup_server_new (NULL, NULL);
  soup_server_add_handler (fx->origin, NULL, origin_cb, fx, NULL);
  g_assert_true (soup_server_listen_local (fx->origin, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (fx->origin);
  g_assert_nonnull (uris);
  fx->origin_base = g_uri_to_string (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  fx->item_url = g_strconcat (fx->origin_base, ITEM_PATH + 1, NULL);
}

/* --- the gateway ---------------------------------------------------- */

static void
start_gateway (Fixture *fx)
{
  g_autofree char *origin_arg = g_strconcat ("--origin=", fx->origin_base, NULL);
  const char *extra[] = { "--allow-private", origin_arg, "--retry-after=1",
                          "--block-size=" G_STRINGIFY (BLOCK_SIZE), NULL };

  fx->gateway = test_spawn_gateway (extra, 10000, &fx->gateway_url);
}

static void
stop_gateway (Fixture *fx)
{
  if (fx->gateway == NULL)
    return;
  test_subprocess_stop (fx->gateway, SIGTERM, 10000);
  g_clear_object (&fx->gateway);
}

/* --- fixture -------------------------------------------------------- */

static void
listener_free (Listener *l)
{
  if (l->swarm != NULL)
    alv_swarm_stop (l->swarm);
  g_clear_object (&l->swarm);
  if (l->peers != NULL)
    alv_peer_server_disconnect (l->peers);
  g_clear_object (&l->peers);
  g_clear_object (&l->store);
  g_free (l);
}

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (4242);
  guint8 *buf = g_malloc (ITEM_SIZE);

  for (gsize i = 0; i < ITEM_SIZE; i++)
    buf[i] = (guint8) g_rand_int (rand);
  fx->content = g_bytes_new_take (buf, ITEM_SIZE);
  fx->tree = alv_hash_tree_new_for_data (buf, ITEM_SIZE, BLOCK_SIZE);
  fx->urn = alv_hash_tree_get_urn (fx->tree);
  fx->dir = g_dir_make_tmp ("test-swarm-XXXXXX", &error);
  g_assert_no_error (error);
  fx->listeners = g_ptr_array_new_with_free_func ((GDestroyNotify) listener_free);
  start_origin (fx);
}

static gboolean
nothing_running (gpointer data)
{
  Fixture *fx = data;

  for (guint i = 0; i < fx->listeners->len; i++)
    {
      Listener *l = fx->listeners->pdata[i];
      AlvSwarmStats stats;

      alv_swarm_get_stats (l->swarm, &stats);
      if (stats.requests_in_flight > 0)
        return FALSE;
    }
  return TRUE;
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  for (guint i = 0; i < fx->listeners->len; i++)
    alv_swarm_stop (((Listener *) fx->listeners->pdata[i])->swarm);
  /* let cancelled requests unwind before the objects go */
  test_wait (nothing_running, fx, 10000);
  test_run_pending ();
  g_clear_pointer (&fx->listeners, g_ptr_array_unref);
  if (fx->origin != NULL)
    soup_server_disconnect (fx->origin);
  g_clear_object (&fx->origin);
  stop_gateway (fx);
  test_run_pending ();
  test_remove_tree (fx->dir);
  g_free (fx->dir);
  g_free (fx->origin_base);
  g_free (fx->item_url);
  g_free (fx->gateway_url);
  g_free (fx->urn);
  g_clear_pointer (&fx->tree, alv_hash_tree_unref);
  g_clear_pointer (&fx->content, g_bytes_unref);
}

static GPtrArray *
alt_func (const char *urn G_GNUC_UNUSED,
          gpointer    user_data)
{
  Listener *l = user_data;

  return l->swarm != NULL ? alv_swarm_get_shareable_peers (l->swarm) : NULL;
}

/* Requesters that name their port become peers, as in the daemon. */
static void
seen_func (const char         *urn G_GNUC_UNUSED,
           GInetSocketAddress *address,
           gpointer            user_data)
{
  Listener *l = user_data;

  if (l->swarm != NULL)
    alv_swarm_add_requester (l->swarm, address);
}

/* What the listener pulls from the origin (X-Pending-Ranges), as in the
 * daemon. */
static AlvRangeSet *
pending_func (const char *urn G_GNUC_UNUSED,
              gpointer    user_data)
{
  Listener *l = user_data;

  return l->swarm != NULL ? alv_swarm_get_origin_pending (l->swarm) : NULL;
}

/* A listener with its own store and peer port; its swarm is made by the
 * caller. */
static Listener *
add_listener (Fixture *fx)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = g_strdup_printf ("listener-%u", fx->listeners->len);
  g_autofree char *path = g_build_filename (fx->dir, name, NULL);
  Listener *l = g_new0 (Listener, 1);

  l->store = alv_block_store_new (path, 0, NULL, &error);
  g_assert_no_error (error);
  l->peers = alv_peer_server_new (l->store);
  g_assert_true (alv_peer_server_listen (l->peers, "127.0.0.1", 0, &error));
  g_assert_no_error (error);
  alv_peer_server_share (l->peers, fx->urn);
  alv_peer_server_set_alt_func (l->peers, alt_func, l, NULL);
  alv_peer_server_set_seen_func (l->peers, seen_func, l);
  alv_peer_server_set_pending_func (l->peers, pending_func, l);
  g_ptr_array_add (fx->listeners, l);
  return l;
}

static GInetSocketAddress *
listener_address (Listener *l)
{
  g_autoptr(GInetAddress) ip = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);

  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (ip, alv_peer_server_get_port (l->peers)));
}

static gboolean
all_complete (gpointer data)
{
  Fixture *fx = data;

  for (guint i = 0; i < fx->listeners->len; i++)
    if (!alv_swarm_is_complete (((Listener *) fx->listeners->pdata[i])->swarm))
      return FALSE;
  return TRUE;
}

static guint64
blocks_held_total (Fixture *fx)
{
  guint64 held = 0;

  for (guint i = 0; i < fx->listeners->len; i++)
    {
      AlvSwarmStats stats;

      alv_swarm_get_stats (((Listener *) fx->listeners->pdata[i])->swarm, &stats);
      held += stats.blocks_held;
    }
  return held;
}

typedef struct
{
  Fixture *fx;
  TestCondition done;
  gpointer data;
  guint64 held;
} DownloadWait;

static gboolean
done_or_moved (gpointer data)
{
  DownloadWait *w = data;

  return w->done (w->data) || blocks_held_total (w->fx) != w->held;
}

/* Runs the main context until @done holds, while the listeners download.
 * How long that takes is the machine's (its load, ASan) and the swarm's
 * (leases are granted a run at a time): no time is asserted, only that the
 * download does not stop.  Fails, naming @what and what each listener
 * holds, when no listener gains (or loses) a block for STALL_MS, or after
 * DOWNLOAD_MAX_MS. */
static void
wait_download_full (Fixture       *fx,
                    TestCondition  done,
                    gpointer       data,
                    const char    *what,
                    int            line)
{
  DownloadWait w = { fx, done, data, 0 };
  gint64 deadline = g_get_monotonic_time () + (gint64) DOWNLOAD_MAX_MS * 1000;

  while (!done (data))
    {
      g_autoptr(GString) msg = NULL;
      gboolean moved;

      w.held = blocks_held_total (fx);
      moved = test_wait (done_or_moved, &w, STALL_MS);
      if (moved && g_get_monotonic_time () < deadline)
        continue;
      msg = g_string_new (NULL);
      g_string_append_printf (msg, "%s waiting for %s:",
                              moved ? "timed out after " G_STRINGIFY (DOWNLOAD_MAX_MS) " ms"
                                    : "no block for " G_STRINGIFY (STALL_MS) " ms",
                              what);
      for (guint i = 0; i < fx->listeners->len; i++)
        {
          AlvSwarmStats stats;

          alv_swarm_get_stats (((Listener *) fx->listeners->pdata[i])->swarm, &stats);
          g_string_append_printf (msg, " listener %u holds %" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT
                                  " blocks, %u requests in flight;",
                                  i, stats.blocks_held, stats.n_blocks, stats.requests_in_flight);
        }
      g_string_truncate (msg, msg->len - 1);
      g_assertion_message (G_LOG_DOMAIN, __FILE__, line, G_STRFUNC, msg->str);
    }
}
#define wait_download(fx, done, data) wait_download_full ((fx), (done), (data), #done, __LINE__)

static void
assert_content (Fixture  *fx,
                Listener *l)
{
  gsize size = g_bytes_get_size (fx->content);
  const guint8 *want = g_bytes_get_data (fx->content, NULL);

  g_assert_true (alv_block_store_is_complete (l->store, fx->urn));
  for (gsize off = 0; off < size; off += 1024 * 1024)
    {
      g_autoptr(GError) error = NULL;
      gsize len = MIN (size - off, (gsize) 1024 * 1024);
      g_autoptr(GBytes) got = alv_block_store_read (l->store, fx->urn, off, len, &error);

      g_assert_no_error (error);
      g_assert_nonnull (got);
      g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got), want + off, len);
    }
}

/* --- gateway client against the real gateway ------------------------- */

typedef struct
{
  gboolean done;
  GAsyncResult *result;
} AsyncWait;

static void
async_cb (GObject      *source G_GNUC_UNUSED,
          GAsyncResult *result,
          gpointer      user_data)
{
  AsyncWait *w = user_data;

  w->result = g_object_ref (result);
  w->done = TRUE;
}

static gboolean
async_done (gpointer data)
{
  return ((AsyncWait *) data)->done;
}

static AlvGatewayResolution *
resolve (AlvGatewayClient  *client,
         const char        *url,
         GError           **error)
{
  AsyncWait w = { FALSE, NULL };
  AlvGatewayResolution *res;

  alv_gateway_client_resolve_async (client, url, NULL, async_cb, &w);
  test_wait_until (async_done, &w, 30000);
  res = alv_gateway_client_resolve_finish (client, w.result, error);
  g_object_unref (w.result);
  return res;
}

static AlvHashTree *
fetch_tree (AlvGatewayClient  *client,
            const char        *uri,
            const char        *urn,
            guint64            length,
            guint              block_size,
            GError           **error)
{
  AsyncWait w = { FALSE, NULL };
  AlvHashTree *tree;

  alv_gateway_client_fetch_tree_async (client, uri, urn, length, block_size, NULL, async_cb, &w);
  test_wait_until (async_done, &w, 30000);
  tree = alv_gateway_client_fetch_tree_finish (client, w.result, error);
  g_object_unref (w.result);
  return tree;
}

static GPtrArray *
announce (AlvGatewayClient  *client,
          const char        *urn,
          guint16            port,
          AlvAnnounceEvent   event,
          guint             *interval,
          GError           **error)
{
  AsyncWait w = { FALSE, NULL };
  GPtrArray *peers;

  alv_gateway_client_announce_async (client, urn, port, event, NULL, 0, NULL, NULL, NULL, async_cb, &w);
  test_wait_until (async_done, &w, 30000);
  peers = alv_gateway_client_announce_finish (client, w.result, interval, NULL, error);
  g_object_unref (w.result);
  return peers;
}

static void
test_client_gateway (Fixture       *fx,
                     gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvGatewayClient) client = NULL;
  g_autoptr(AlvGatewayResolution) res = NULL;
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  g_autofree char *expected_alt = NULL;
  guint interval = 0;

  start_gateway (fx);
  client = alv_gateway_client_new (NULL, fx->gateway_url, &error);
  g_assert_no_error (error);
  res = resolve (client, fx->item_url, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->urn, ==, fx->urn);
  g_assert_cmpuint (res->length, ==, ITEM_SIZE);
  g_assert_cmpuint (res->block_size, ==, BLOCK_SIZE);
  g_assert_cmpstr (res->url, ==, fx->item_url);
  g_assert_true (g_str_has_prefix (res->thex_uri, fx->gateway_url));
  g_assert_cmpuint (res->peers->len, ==, 0);

  tree = fetch_tree (client, res->thex_uri, res->urn, res->length, res->block_size, &error);
  g_assert_no_error (error);
  g_assert_true (alv_hash_tree_equal (tree, fx->tree));

  /* a tree asked for as another URN is refused */
  {
    g_autoptr(AlvHashTree) other = alv_hash_tree_new_for_data ("x", 1, BLOCK_SIZE);
    g_autofree char *other_urn = alv_hash_tree_get_urn (other);
    g_autoptr(AlvHashTree) bad = fetch_tree (client, res->thex_uri, other_urn, res->length,
                                             res->block_size, &error);

    g_assert_null (bad);
    g_assert_nonnull (error);
    g_clear_error (&error);
  }

  peers = announce (client, fx->urn, 7001, ALV_ANNOUNCE_STARTED, &interval, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (peers->len, ==, 0);
  g_assert_cmpuint (interval, >, 0);
  g_clear_pointer (&peers, g_ptr_array_unref);
  peers = announce (client, fx->urn, 7002, ALV_ANNOUNCE_STARTED, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (peers->len, ==, 1);
  expected_alt = alv_alt_format_address (peers->pdata[0]);
  g_assert_cmpstr (expected_alt, ==, "127.0.0.1:7001");
  g_clear_pointer (&peers, g_ptr_array_unref);

  /* the resolve now names the peers too */
  g_clear_pointer (&res, alv_gateway_resolution_free);
  res = resolve (client, fx->item_url, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (res->peers->len, ==, 2);

  /* a refusal is an error with the status */
  {
    g_autoptr(AlvGatewayResolution) none = resolve (client, "http://198.51.100.1/x.mp3", &error);

    g_assert_null (none);
    g_assert_error (error, ALV_ERROR, ALV_ERROR_FAILED);
    g_assert_nonnull (strstr (error->message, "403"));
    g_clear_error (&error);
  }
  peers = announce (client, "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                    7003, ALV_ANNOUNCE_UPDATE, NULL, &error);
  g_assert_null (peers);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_FAILED);
}

/* --- gateway client against garbage -------------------------------- */

static void
fake_gateway_cb (SoupServer        *server G_GNUC_UNUSED,
                 SoupServerMessage *msg,
                 const char        *path,
                 GHashTable        *query,
                 gpointer           user_data)
{
  Fixture *fx = user_data;
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const char *url = query != NULL ? g_hash_table_lookup (query, "url") : NULL;
  g_autofree char *thex = g_strconcat ("/thex/", fx->urn, ";", fx->urn + strlen (ALV_URN_PREFIX), NULL);
  g_autofree char *length = g_strdup_printf ("%u", ITEM_SIZE);

  if (g_str_has_prefix (path, "/thex/"))
    {
      g_autoptr(GBytes) ser = alv_hash_tree_serialize (fx->tree);
      gsize size = g_bytes_get_size (ser);
      g_autofree guint8 *copy = g_memdup2 (g_bytes_get_data (ser, NULL), size);

      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      if (strstr (path, "big") != NULL)
        {
          g_autofree guint8 *big = g_malloc0 (size * 4);

          soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                            (const char *) big, size * 4);
          return;
        }
      copy[size - 1] ^= 0x01;   /* a wrong leaf of the block layer */
      soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                        (const char *) copy, size);
      return;
    }
  if (g_strcmp0 (path, "/announce") == 0)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      soup_message_headers_replace (resp, "X-Alt", "garbage, not-an-address:x, 999.1.1.1:5");
      soup_message_headers_replace (resp, "X-Announce-Interval", "-5");
      return;
    }
  if (g_strcmp0 (path, "/resolve") != 0 || url == NULL)
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
      return;
    }
  if (g_str_has_suffix (url, "always-202"))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_ACCEPTED, NULL);
      soup_message_headers_replace (resp, "Retry-After", "zzz");
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  if (g_str_has_suffix (url, "no-headers"))
    return;
  soup_message_headers_replace (resp, "X-Content-URN",
                                g_str_has_suffix (url, "bad-urn") ? "urn:tree:sha256:NOPE" : fx->urn);
  soup_message_headers_replace (resp, "X-Content-Length",
                                g_str_has_suffix (url, "bad-length") ? "12abc" : length);
  soup_message_headers_replace (resp, "X-Block-Size",
                                g_str_has_suffix (url, "bad-block") ? "1000" : "65536");
  if (g_str_has_suffix (url, "root-mismatch"))
    soup_message_headers_replace (resp, "X-Thex-URI",
                                  "/thex/x;AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
  else if (g_str_has_suffix (url, "file-thex"))
    {
      g_autofree char *v = g_strconcat ("file:///etc/passwd;", fx->urn + strlen (ALV_URN_PREFIX), NULL);
      soup_message_headers_replace (resp, "X-Thex-URI", v);
    }
  else
    soup_message_headers_replace (resp, "X-Thex-URI", thex);
  soup_message_headers_replace (resp, "X-Alt", "10.0.0.1:80, bogus, [::1]:6346");
}

static void
test_client_garbage (Fixture       *fx,
                     gconstpointer  data G_GNUC_UNUSED)
{
  const char *bad[] = { "no-headers", "bad-urn", "bad-length", "bad-block", "root-mismatch",
                        "file-thex", "always-202" };
  g_autoptr(SoupServer) fake = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autoptr(AlvGatewayClient) client = NULL;
  g_autoptr(AlvGatewayResolution) res = NULL;
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  g_autofree char *base = NULL;
  guint interval = 1;

  soup_server_add_handler (fake, NULL, fake_gateway_cb, fx, NULL);
  g_assert_true (soup_server_listen_local (fake, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  uris = soup_server_get_uris (fake);
  base = g_uri_to_string (uris->data);
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);

  g_assert_null (alv_gateway_client_new (NULL, "ftp://example.org/", &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  client = alv_gateway_client_new (NULL, base, &error);
  g_assert_no_error (error);
  alv_gateway_client_set_max_retries (client, 1);

  /* a good answer, with a peer list that is partly garbage */
  res = resolve (client, "http://station.example/good", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (res->urn, ==, fx->urn);
  g_assert_cmpuint (res->peers->len, ==, 2);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *url = g_strconcat ("http://station.example/", bad[i], NULL);
      g_autoptr(AlvGatewayResolution) r = resolve (client, url, &error);

      g_test_message ("%s: %s", bad[i], error != NULL ? error->message : "(no error)");
      g_assert_null (r);
      g_assert_error (error, ALV_ERROR, error->code);
      g_clear_error (&error);
    }

  /* a tree that does not hash to the URN, and one far too large */
  tree = fetch_tree (client, res->thex_uri, fx->urn, ITEM_SIZE, BLOCK_SIZE, &error);
  g_assert_null (tree);
  g_assert_nonnull (error);
  g_assert_true (error->domain == ALV_ERROR);
  g_clear_error (&error);
  tree = fetch_tree (client, "/thex/big", fx->urn, ITEM_SIZE, BLOCK_SIZE, &error);
  g_assert_null (tree);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);

  /* an announce answer with only garbage peers: no peers, no error */
  peers = announce (client, fx->urn, 7000, ALV_ANNOUNCE_STARTED, &interval, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (peers->len, ==, 0);
  g_assert_cmpuint (interval, ==, 0);
  soup_server_disconnect (fake);
}

/* --- swarms ---------------------------------------------------------- */

static AlvSwarm *
swarm_for (Fixture                    *fx,
           Listener                   *l,
           AlvGatewayClient           *client,
           const AlvGatewayResolution *res,
           guint32                     seed)
{
  g_autoptr(GError) error = NULL;
  AlvSwarm *swarm;

  if (res != NULL)
    swarm = alv_swarm_new_for_resolution (l->store, res, &error);
  else
    swarm = alv_swarm_new (l->store, fx->urn, fx->item_url, ITEM_SIZE, BLOCK_SIZE, fx->tree, &error);
  g_assert_no_error (error);
  g_assert_nonnull (swarm);
  alv_swarm_set_seed (swarm, seed);
  if (client != NULL)
    alv_swarm_set_gateway (swarm, client, NULL, alv_peer_server_get_port (l->peers));
  l->swarm = swarm;
  return swarm;
}

static void
test_swarm_listeners (Fixture       *fx,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvGatewayClient) client = NULL;
  g_autoptr(AlvGatewayResolution) res = NULL;
  guint64 from_peers = 0, from_origin = 0;

  start_gateway (fx);
  client = alv_gateway_client_new (NULL, fx->gateway_url, &error);
  g_assert_no_error (error);
  res = resolve (client, fx->item_url, &error);
  g_assert_no_error (error);
  fx->origin_ranged_bytes = 0;

  for (guint i = 0; i < N_LISTENERS; i++)
    {
      Listener *l = add_listener (fx);

      swarm_for (fx, l, client, res, 1000 + i);
    }
  for (guint i = 0; i < N_LISTENERS; i++)
    alv_swarm_start (((Listener *) fx->listeners->pdata[i])->swarm);

  wait_download (fx, all_complete, fx);
  for (guint i = 0; i < N_LISTENERS; i++)
    {
      Listener *l = fx->listeners->pdata[i];
      AlvSwarmStats stats;

      assert_content (fx, l);
      alv_swarm_get_stats (l->swarm, &stats);
      g_test_message ("listener %u: %" G_GUINT64_FORMAT " from peers, %" G_GUINT64_FORMAT
                      " from origin in %" G_GUINT64_FORMAT " requests, %u peers",
                      i, stats.bytes_from_peers, stats.bytes_from_origin,
                      stats.origin_requests, stats.peers_known);
      g_assert_cmpuint (stats.blocks_held, ==, stats.n_blocks);
      g_assert_cmpuint (stats.blocks_rejected, ==, 0);
      from_peers += stats.bytes_from_peers;
      from_origin += stats.bytes_from_origin;
    }
  g_test_message ("origin served %.2f copies for %u listeners (%" G_GUINT64_FORMAT " bytes), "
                  "peers %" G_GUINT64_FORMAT " bytes",
                  fx->origin_ranged_bytes / (double) ITEM_SIZE, N_LISTENERS,
                  fx->origin_ranged_bytes, from_peers);
  /* how many copies the origin sends depends on who hears whom when,
   * on a loaded machine too: the swarm simulator asserts that
   * (tests/test-swarm-plan.c); here only what no timing changes */
  g_assert_cmpuint (fx->origin_ranged_bytes, >=, (guint64) ITEM_SIZE);
  g_assert_cmpuint (from_origin, <=, fx->origin_ranged_bytes);
}

/* A peer that claims everything and corrupts every block it serves. */
static void
liar_cb (SoupServer        *server G_GNUC_UNUSED,
         SoupServerMessage *msg,
         const char        *path G_GNUC_UNUSED,
         GHashTable        *query G_GNUC_UNUSED,
         gpointer           user_data)
{
  Fixture *fx = user_data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  gsize size = g_bytes_get_size (fx->content);
  g_autofree char *avail = g_strdup_printf ("bytes 0-%" G_GSIZE_FORMAT, size - 1);
  SoupRange *ranges = NULL;
  int n = 0;

  soup_message_headers_replace (resp, "X-Content-URN", fx->urn);
  soup_message_headers_replace (resp, "X-Available-Ranges", avail);
  if (soup_message_headers_get_ranges (req, size, &ranges, &n))
    {
      goffset start = ranges[0].start, end = ranges[0].end;
      guint8 *bad = g_memdup2 ((const guint8 *) g_bytes_get_data (fx->content, NULL) + start,
                               end - start + 1);

      soup_message_headers_free_ranges (req, ranges);
      bad[0] ^= 0xff;
      soup_message_headers_set_content_range (resp, start, end, size);
      soup_server_message_set_status (msg, SOUP_STATUS_PARTIAL_CONTENT, NULL);
      soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_TAKE,
                                        (char *) bad, end - start + 1);
      return;
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
}

static void
test_swarm_liar (Fixture       *fx,
                 gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(SoupServer) liar = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autoptr(GInetSocketAddress) addr = NULL;
  g_autoptr(GInetAddress) ip = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  Listener *l;
  AlvSwarmStats stats;

  soup_server_add_handler (liar, NULL, liar_cb, fx, NULL);
  g_assert_true (soup_server_listen_local (liar, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  uris = soup_server_get_uris (liar);
  addr = G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (ip, g_uri_get_port (uris->data)));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);

  l = add_listener (fx);
  swarm_for (fx, l, NULL, NULL, 7);
  alv_swarm_add_peer (l->swarm, addr);
  alv_swarm_start (l->swarm);
  wait_download (fx, all_complete, fx);
  assert_content (fx, l);
  alv_swarm_get_stats (l->swarm, &stats);
  g_assert_cmpuint (stats.blocks_rejected, >=, 1);
  g_assert_cmpuint (stats.peers_banned, ==, 1);
  g_assert_cmpuint (stats.peers_known, ==, 0);
  g_assert_cmpuint (stats.bytes_from_peers, ==, 0);
  soup_server_disconnect (liar);
}

static gboolean
first_to_end (gpointer data)
{
  Fixture *fx = data;
  Listener *l = fx->listeners->pdata[0];

  return alv_swarm_get_contiguous_end (l->swarm) == ITEM_SIZE;
}

static void
test_swarm_origin_200 (Fixture       *fx,
                       gconstpointer  data G_GNUC_UNUSED)
{
  const guint8 *want = g_bytes_get_data (fx->content, NULL);
  const guint64 start = ITEM_SIZE / 2;
  const guint first = start / BLOCK_SIZE;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(GError) error = NULL;
  Listener *l;
  AlvSwarmStats stats;

  fx->origin_mode = ORIGIN_IGNORE_RANGE;
  l = add_listener (fx);
  swarm_for (fx, l, NULL, NULL, 11);
  /* start in the middle, so the first answer must be read up to there */
  alv_swarm_set_playhead (l->swarm, start, 256 * 1024);
  alv_swarm_start (l->swarm);
  wait_download (fx, first_to_end, fx);

  /* everything from the playhead on is held and byte-exact; what lies
   * behind the playhead is never needed, so it is not fetched */
  got = alv_block_store_read (l->store, fx->urn, (gsize) first * BLOCK_SIZE,
                              ITEM_SIZE - (gsize) first * BLOCK_SIZE, &error);
  g_assert_no_error (error);
  g_assert_nonnull (got);
  g_assert_cmpmem (g_bytes_get_data (got, NULL), g_bytes_get_size (got),
                   want + (gsize) first * BLOCK_SIZE, ITEM_SIZE - (gsize) first * BLOCK_SIZE);
  alv_swarm_get_stats (l->swarm, &stats);
  g_assert_cmpuint (stats.bytes_from_peers, ==, 0);
  g_assert_cmpuint (stats.blocks_held, ==, stats.n_blocks - first);
  g_assert_false (alv_swarm_has_block (l->swarm, first - 1));
  g_assert_false (alv_swarm_is_complete (l->swarm));
}

static void
test_swarm_origin_down (Fixture       *fx,
                        gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GInetSocketAddress) addr = NULL;
  Listener *seed, *late;
  AlvSwarmStats stats;

  seed = add_listener (fx);
  swarm_for (fx, seed, NULL, NULL, 21);
  alv_swarm_start (seed->swarm);
  wait_download (fx, all_complete, fx);
  assert_content (fx, seed);

  /* the origin goes down; a late listener gets everything from the seed */
  fx->origin_mode = ORIGIN_DOWN;
  fx->origin_requests = 0;
  late = add_listener (fx);
  swarm_for (fx, late, NULL, NULL, 22);
  addr = listener_address (seed);
  alv_swarm_add_peer (late->swarm, addr);
  alv_swarm_set_playhead (late->swarm, 0, 512 * 1024);
  alv_swarm_start (late->swarm);
  wait_download (fx, all_complete, fx);
  assert_content (fx, late);
  alv_swarm_get_stats (late->swarm, &stats);
  g_assert_cmpuint (stats.bytes_from_peers, ==, ITEM_SIZE);
  g_assert_cmpuint (stats.bytes_from_origin, ==, 0);
  g_assert_cmpuint (stats.blocks_verified, ==, stats.n_blocks);
}

static gboolean
store_complete (gpointer data)
{
  Fixture *fx = data;
  Listener *l = fx->listeners->pdata[0];

  return alv_block_store_is_complete (l->store, fx->urn) && alv_swarm_is_complete (l->swarm);
}

/* A block of a complete item changes on disk: the read that finds it
 * fails, and the swarm, still running, fetches the block again. */
static void
test_swarm_changed_on_disk (Fixture       *fx,
                            gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autofree char *b32 = NULL;
  g_autofree char *name = NULL;
  g_autofree char *path = NULL;
  guint8 root[ALV_HASH_SIZE];
  guint requests;
  Listener *l;
  guint8 byte;
  int fd;

  l = add_listener (fx);
  swarm_for (fx, l, NULL, NULL, 31);
  alv_swarm_start (l->swarm);
  wait_download (fx, all_complete, fx);
  requests = fx->origin_requests;

  g_assert_true (alv_urn_parse (fx->urn, root, NULL));
  b32 = alv_base32_encode (root, ALV_HASH_SIZE);
  name = g_strconcat ("listener-0/", b32, ".data", NULL);
  path = g_build_filename (fx->dir, name, NULL);
  fd = g_open (path, O_RDWR, 0);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, &byte, 1, 5 * BLOCK_SIZE + 3), ==, 1);
  byte ^= 0x04;
  g_assert_cmpint (pwrite (fd, &byte, 1, 5 * BLOCK_SIZE + 3), ==, 1);
  g_assert_no_errno (close (fd));

  got = alv_block_store_read (l->store, fx->urn, 5 * BLOCK_SIZE, 100, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_assert_null (got);
  g_assert_false (alv_block_store_has_block (l->store, fx->urn, 5));
  wait_download (fx, store_complete, fx);
  assert_content (fx, l);
  g_assert_cmpuint (fx->origin_requests, >, requests);
}

typedef struct
{
  guint64 last_end;
  guint n_ready;
  gboolean monotonic;
} ReadyLog;

static void
block_ready_cb (AlvSwarm *swarm,
                guint64   index,
                guint64   contiguous_end,
                gpointer  user_data)
{
  ReadyLog *log = user_data;

  log->n_ready++;
  if (contiguous_end < log->last_end || !alv_swarm_has_block (swarm, index) ||
      contiguous_end != alv_swarm_get_contiguous_end (swarm))
    log->monotonic = FALSE;
  log->last_end = contiguous_end;
}

static gint64
deadline_func (AlvSwarm *swarm,
               guint64   index,
               gpointer  user_data)
{
  gint64 start = *(gint64 *) user_data;

  return start + (gint64) (index * alv_swarm_get_block_size (swarm) * (double) G_USEC_PER_SEC /
                           PLAY_RATE);
}

/* Listeners that will play the item from the start at 512 KiB/s in two
 * seconds (the core prefetches an item before its slot): deadlines drive
 * the schedule; the stream's view (contiguous end) only grows. */
static void
test_swarm_playhead (Fixture       *fx,
                     gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvGatewayClient) client = NULL;
  g_autoptr(AlvGatewayResolution) res = NULL;
  ReadyLog logs[3] = { { 0, 0, TRUE }, { 0, 0, TRUE }, { 0, 0, TRUE } };
  gint64 start = g_get_monotonic_time () + 2 * G_USEC_PER_SEC;

  start_gateway (fx);
  client = alv_gateway_client_new (NULL, fx->gateway_url, &error);
  g_assert_no_error (error);
  res = resolve (client, fx->item_url, &error);
  g_assert_no_error (error);
  fx->origin_ranged_bytes = 0;

  for (guint i = 0; i < G_N_ELEMENTS (logs); i++)
    {
      Listener *l = add_listener (fx);

      swarm_for (fx, l, client, res, 2000 + i);
      g_signal_connect (l->swarm, "block-ready", G_CALLBACK (block_ready_cb), &logs[i]);
      alv_swarm_set_deadline_func (l->swarm, deadline_func, &start, NULL);
      alv_swarm_start (l->swarm);
    }
  wait_download (fx, all_complete, fx);
  for (guint i = 0; i < G_N_ELEMENTS (logs); i++)
    {
      Listener *l = fx->listeners->pdata[i];

      assert_content (fx, l);
      g_assert_true (logs[i].monotonic);
      g_assert_cmpuint (logs[i].last_end, ==, ITEM_SIZE);
      g_assert_cmpuint (alv_swarm_get_contiguous_end (l->swarm), ==, ITEM_SIZE);
      g_assert_cmpuint (logs[i].n_ready, >, 0);
    }
  g_test_message ("origin served %.2f copies for 3 playing listeners",
                  fx->origin_ranged_bytes / (double) ITEM_SIZE);
  /* the copies are the simulator's to assert (tests/test-swarm-plan.c) */
  g_assert_cmpuint (fx->origin_ranged_bytes, >=, (guint64) ITEM_SIZE);
}

static gboolean
has_tree (gpointer data)
{
  return alv_swarm_has_tree (data);
}

/* Origin blocks need no tree: a swarm without one plays from the origin;
 * the tree arriving later verifies what is held. */
static void
test_swarm_no_tree (Fixture       *fx,
                    gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  Listener *l = add_listener (fx);
  AlvSwarmStats stats;

  l->swarm = alv_swarm_new (l->store, fx->urn, fx->item_url, ITEM_SIZE, BLOCK_SIZE, NULL, &error);
  g_assert_no_error (error);
  alv_swarm_set_playhead (l->swarm, 0, PLAY_RATE);
  alv_swarm_start (l->swarm);
  wait_download (fx, all_complete, fx);
  g_assert_false (alv_swarm_has_tree (l->swarm));
  g_assert_cmpuint (alv_swarm_get_contiguous_end (l->swarm), ==, ITEM_SIZE);
  assert_content (fx, l);

  alv_swarm_set_tree (l->swarm, fx->tree);
  test_wait_until (has_tree, l->swarm, WAIT_MS);
  assert_content (fx, l);
  alv_swarm_get_stats (l->swarm, &stats);
  g_assert_cmpuint (stats.blocks_held, ==, stats.n_blocks);
  g_assert_cmpuint (stats.bytes_from_peers, ==, 0);
  g_assert_cmpuint (stats.origin_requests, <=, stats.n_blocks / 8 + 2);
}

static void
count_ready_cb (AlvSwarm *swarm G_GNUC_UNUSED,
                guint64   index G_GNUC_UNUSED,
                guint64   contiguous_end G_GNUC_UNUSED,
                gpointer  user_data)
{
  (*(guint *) user_data)++;
}

static gboolean
some_ready (gpointer data)
{
  return *(guint *) data > 0;
}

/* Stopping mid-download cancels what is in flight and keeps what is
 * held; a new swarm on the same store carries on from there. */
static void
test_swarm_stop (Fixture       *fx,
                 gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  Listener *l = add_listener (fx);
  guint ready = 0;
  AlvSwarmStats stats;

  swarm_for (fx, l, NULL, NULL, 31);
  g_signal_connect (l->swarm, "block-ready", G_CALLBACK (count_ready_cb), &ready);
  alv_swarm_start (l->swarm);
  test_wait_until (some_ready, &ready, WAIT_MS);
  /* origin blocks held before the tree leave the store's held set while
   * the tree verifies them (in a thread): let that finish, or the next
   * swarm may look in between and see none */
  test_wait_until (has_tree, l->swarm, WAIT_MS);
  alv_swarm_stop (l->swarm);
  test_wait_until (nothing_running, fx, WAIT_MS);
  alv_swarm_get_stats (l->swarm, &stats);
  g_assert_cmpuint (stats.requests_in_flight, ==, 0);
  g_assert_cmpuint (stats.blocks_held, >, 0);
  g_clear_object (&l->swarm);

  swarm_for (fx, l, NULL, NULL, 32);
  alv_swarm_get_stats (l->swarm, &stats);
  g_assert_cmpuint (stats.blocks_held, >, 0);
  alv_swarm_start (l->swarm);
  wait_download (fx, all_complete, fx);
  assert_content (fx, l);
}

/* --- the port announced: a mapping's external port ------------------- */

typedef struct
{
  GPtrArray *announced;        /* "port" of each announce */
  GPtrArray *named;            /* X-Listen-Port of each peer request */
} PortsSeen;

/* A gateway that names itself as the one peer, and that peer, which has
 * nothing: both note the port the swarm says it listens on. */
static void
ports_seen_cb (SoupServer        *server G_GNUC_UNUSED,
               SoupServerMessage *msg,
               const char        *path,
               GHashTable        *query G_GNUC_UNUSED,
               gpointer           user_data)
{
  PortsSeen *seen = user_data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);

  if (g_strcmp0 (path, "/announce") == 0)
    {
      SoupMessageBody *body = soup_server_message_get_request_body (msg);
      g_autoptr(GBytes) bytes = soup_message_body_flatten (body);
      g_autofree char *form = g_strndup (g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
      g_autoptr(GHashTable) fields = soup_form_decode (form);
      const char *port = g_hash_table_lookup (fields, "port");

      g_ptr_array_add (seen->announced, g_strdup (port != NULL ? port : "(none)"));
      soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
      return;
    }
  if (soup_message_headers_get_one (req, ALV_HEADER_LISTEN_PORT) != NULL)
    g_ptr_array_add (seen->named, g_strdup (soup_message_headers_get_one (req, ALV_HEADER_LISTEN_PORT)));
  soup_server_message_set_status (msg, SOUP_STATUS_NOT_FOUND, NULL);
}

static gboolean
ports_seen_cond (gpointer data)
{
  PortsSeen *seen = data;

  return seen->announced->len > 0 && seen->named->len > 0;
}

static gboolean
announced_40001 (gpointer data)
{
  PortsSeen *seen = data;

  return seen->announced->len > 0 &&
         g_str_equal (seen->announced->pdata[seen->announced->len - 1], "40001");
}

/* With a port mapping, the swarm announces the router's side of it and
 * names it to peers, not the local peer port. */
static void
test_swarm_listen_port (Fixture       *fx,
                        gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(SoupServer) fake = soup_server_new (NULL, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSList) uris = NULL;
  g_autoptr(AlvGatewayClient) client = NULL;
  g_autoptr(GSocketAddress) peer = NULL;
  g_autofree char *base = NULL;
  PortsSeen seen = { g_ptr_array_new_with_free_func (g_free), g_ptr_array_new_with_free_func (g_free) };
  Listener *l = add_listener (fx);

  soup_server_add_handler (fake, NULL, ports_seen_cb, &seen, NULL);
  g_assert_true (soup_server_listen_local (fake, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error));
  g_assert_no_error (error);
  uris = soup_server_get_uris (fake);
  base = g_uri_to_string (uris->data);
  client = alv_gateway_client_new (NULL, base, &error);
  g_assert_no_error (error);
  swarm_for (fx, l, client, NULL, 41);
  alv_swarm_set_listen_port (l->swarm, 40000);
  peer = g_inet_socket_address_new_from_string ("127.0.0.1", g_uri_get_port (uris->data));
  g_slist_free_full (g_steal_pointer (&uris), (GDestroyNotify) g_uri_unref);
  alv_swarm_add_peer (l->swarm, G_INET_SOCKET_ADDRESS (peer));
  alv_swarm_start (l->swarm);
  test_wait_until (ports_seen_cond, &seen, WAIT_MS);
  for (guint i = 0; i < seen.announced->len; i++)
    g_assert_cmpstr (seen.announced->pdata[i], ==, "40000");
  for (guint i = 0; i < seen.named->len; i++)
    g_assert_cmpstr (seen.named->pdata[i], ==, "40000");
  /* the router maps another port: the next announce names it (how soon
   * is the plan's: /swarm-plan/announce-soon) */
  alv_swarm_set_listen_port (l->swarm, 40001);
  test_wait_until (announced_40001, &seen, WAIT_MS);
  alv_swarm_stop (l->swarm);
  test_wait_until (nothing_running, fx, WAIT_MS);
  soup_server_disconnect (fake);
  g_ptr_array_unref (seen.announced);
  g_ptr_array_unref (seen.named);
}

int
main (int    argc,
      char **argv)
{
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/core/gateway-client/gateway", Fixture, NULL,
              fixture_setup, test_client_gateway, fixture_teardown);
  g_test_add ("/core/gateway-client/garbage", Fixture, NULL,
              fixture_setup, test_client_garbage, fixture_teardown);
  g_test_add ("/core/swarm/listeners", Fixture, NULL,
              fixture_setup, test_swarm_listeners, fixture_teardown);
  g_test_add ("/core/swarm/playhead", Fixture, NULL,
              fixture_setup, test_swarm_playhead, fixture_teardown);
  g_test_add ("/core/swarm/no-tree", Fixture, NULL,
              fixture_setup, test_swarm_no_tree, fixture_teardown);
  g_test_add ("/core/swarm/listen-port", Fixture, NULL,
              fixture_setup, test_swarm_listen_port, fixture_teardown);
  g_test_add ("/core/swarm/stop", Fixture, NULL,
              fixture_setup, test_swarm_stop, fixture_teardown);
  g_test_add ("/core/swarm/lying-peer", Fixture, NULL,
              fixture_setup, test_swarm_liar, fixture_teardown);
  g_test_add ("/core/swarm/origin-200", Fixture, NULL,
              fixture_setup, test_swarm_origin_200, fixture_teardown);
  g_test_add ("/core/swarm/changed-on-disk", Fixture, NULL,
              fixture_setup, test_swarm_changed_on_disk, fixture_teardown);
  g_test_add ("/core/swarm/origin-down", Fixture, NULL,
              fixture_setup, test_swarm_origin_down, fixture_teardown);
  return g_test_run ();
}
