/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The real `alluvium-core` maps its peer port with PCP or NAT-PMP, against
 * a tiny PCP and NAT-PMP responder written here (UDP on 127.0.0.1, named to the
 * core by core.conf's nat-gateway, the key that exists for this): the
 * requests are what RFC 6886 says, the core reports the mapping in its
 * Statistics, renews it at half a short lifetime the responder grants,
 * and removes it (lifetime 0) when it stops.  A responder that answers
 * garbage, or nothing, leaves the core running and reporting no mapping
 * while it resends on the RFC's schedule.
 *
 * As root (CI), a home network behind a real router: network namespaces
 * "home", "nat" (nftables masquerade and miniupnpd, NAT-PMP and UPnP
 * IGD) and "internet", joined by veth pairs; nothing in them is connected
 * to the host's network.  The core, in "home", finds the router as its
 * default gateway, maps its peer port (with PCP, which miniupnpd speaks
 * and the core tries before NAT-PMP, with UPnP, and with both tried at
 * once), a peer in "internet" reaches the peer port through
 * the router's public address, and the mapping is gone from the router's
 * ruleset once the core stopped; granted short leases, the core renews
 * the mapping before each ends.  With a station on the Internet side (the
 * real gateway, its item in the docroot), the core tunes it from "home":
 * mapped, the gateway's connect-back reaches it (X-Reachable: yes in the
 * core's Statistics), the gateway lists it to others, and a peer on the
 * Internet side fetches a block from it through the mapping that checks
 * against the item's tree; behind a router that maps nothing and drops
 * what comes unasked, the connect-back times out, the core says "sharing:
 * no", the gateway lists it to nobody, and it plays all the same.
 * Without root (or without ip, nft or miniupnpd, or on a kernel without
 * nf_tables NAT, or without GStreamer's MP3 encoder for the station's
 * item) these tests skip and say why.
 */
#define G_LOG_DOMAIN "test-core-nat"
#include "config.h"

#include <signal.h>
#include <unistd.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <gst/gst.h>

#include "alv-dbus.h"
#include "alv-hash-tree.h"
#include "alv-playlist.h"
#include "alv-wire.h"
#include "player-ui.h"
#include "stream-media.h"
#include "test-bus.h"
#include "test-util.h"

#define WAIT_MS 20000
/* what the responder grants */
#define EXTERNAL_ADDRESS "203.0.113.7"
#define EXTERNAL_PORT 40000
#define SHORT_LIFETIME 2

/* the core under test, on a private bus */
typedef struct
{
  TestBus *bus;
  GDBusConnection *conn;
  AlvCore1 *proxy;
  GSubprocess *core;
} Daemon;

/* Starts the core with "[core]\n@conf" as its core.conf, in @netns (NULL:
 * this one), its homes under @dir. */
static void
daemon_start (Daemon     *d,
              const char *dir,
              const char *conf,
              const char *netns)
{
  const char *args[] = { "--no-idle-exit", g_test_verbose () ? "--verbose" : NULL, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *cache = g_build_filename (dir, "cache", NULL);
  g_autofree char *config = g_build_filename (dir, "config", NULL);
  g_autofree char *alluvium = g_build_filename (config, "alluvium", NULL);
  g_autofree char *conf_path = g_build_filename (alluvium, "core.conf", NULL);
  g_autofree char *text = g_strconcat ("[core]\nidle-timeout=0\n", conf, NULL);

  g_assert_cmpint (g_mkdir_with_parents (cache, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (alluvium, 0700), ==, 0);
  g_file_set_contents (conf_path, text, -1, &error);
  g_assert_no_error (error);
  d->bus = test_bus_up (NULL);
  d->conn = g_dbus_connection_new_for_address_sync (
    test_bus_get_address (d->bus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  if (netns != NULL)
    d->core = test_spawn_core_in_netns (netns, test_bus_get_address (d->bus), cache, config, args);
  else
    d->core = test_spawn_core (test_bus_get_address (d->bus), cache, config, TRUE, args);
  test_wait_for_name (d->conn, ALV_CORE_BUS_NAME, TRUE, WAIT_MS);
  d->proxy = alv_core1_proxy_new_sync (d->conn, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                       ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
}

/* Stops the core as a user does (SIGTERM) and checks it exited cleanly. */
static void
daemon_stop (Daemon *d)
{
  g_assert_true (test_subprocess_stop (d->core, SIGTERM, WAIT_MS));
  g_assert_true (g_subprocess_get_if_exited (d->core));
  g_assert_cmpint (g_subprocess_get_exit_status (d->core), ==, 0);
  g_clear_object (&d->core);
}

static void
daemon_clear (Daemon *d)
{
  if (d->core != NULL)
    test_subprocess_stop (d->core, SIGKILL, WAIT_MS);
  g_clear_object (&d->core);
  g_clear_object (&d->proxy);
  if (d->conn != NULL)
    g_dbus_connection_close_sync (d->conn, NULL, NULL);
  g_clear_object (&d->conn);
  if (d->bus != NULL)
    test_bus_down (d->bus);
  d->bus = NULL;
}

static const char *
statistic (Daemon     *d,
           const char *key)
{
  GVariant *stats = alv_core1_get_statistics (d->proxy);
  const char *value = NULL;

  if (stats == NULL || !g_variant_lookup (stats, key, "&s", &value))
    return NULL;
  return value;
}

typedef enum
{
  RESPOND_MAP,        /* grant every NAT-PMP mapping; to PCP, "unsupported
                       * version", as a router that speaks only NAT-PMP */
  RESPOND_PCP,        /* grant every PCP mapping */
  RESPOND_PCP_STALE,  /* the same, but answer the first removal with a
                       * late grant (a stale answer to the map request) */
  RESPOND_PCP_SHARED, /* grant every PCP mapping on a shared address
                       * (100.64/10: a router behind carrier-grade NAT) */
  RESPOND_GARBAGE,    /* answer with packets that are no valid answer */
  RESPOND_NOTHING,
} RespondMode;

/* one mapping request the responder received */
typedef struct
{
  guint16 internal_port;
  guint16 suggested_port;
  guint32 lifetime;
  guint8 nonce[12];   /* PCP */
  guint8 client[4];   /* PCP: the address the core says it has */
} MapRequest;

typedef struct
{
  RespondMode mode;
  GSocket *socket;
  GSource *source;
  guint16 port;
  GArray *maps;                 /* MapRequest: NAT-PMP */
  GArray *pcp_maps;             /* MapRequest: PCP */
  guint address_requests;
  guint other_requests;
  gboolean stale_sent;          /* RESPOND_PCP_STALE */

  Daemon d;
  char *dir;
} Fixture;

static void
reply (Fixture       *fx,
       GSocketAddress *to,
       const guint8   *data,
       gsize           len)
{
  g_autoptr(GError) error = NULL;

  g_socket_send_to (fx->socket, to, (const char *) data, len, NULL, &error);
  g_assert_no_error (error);
}

/* Answers with what is no answer: short, of another version, for another
 * port, of another opcode; never a success for the request sent. */
static void
reply_garbage (Fixture        *fx,
               GSocketAddress *to,
               const MapRequest *req)
{
  guint8 p[16] = { 0, 130, 0, 0, 0, 0, 0, 1 };

  reply (fx, to, p, 5);
  p[0] = 2;
  reply (fx, to, p, sizeof p);
  p[0] = 0;
  alv_wire_put16 (p + 8, req->internal_port + 1);
  alv_wire_put16 (p + 10, EXTERNAL_PORT);
  alv_wire_put32 (p + 12, 3600);
  reply (fx, to, p, sizeof p);
  p[1] = 129;                   /* UDP, not the TCP asked for */
  alv_wire_put16 (p + 8, req->internal_port);
  reply (fx, to, p, sizeof p);
  p[1] = 2;                     /* a request, not a reply */
  reply (fx, to, p, sizeof p);
}

/* A PCP MAP request (RFC 6887 section 11.1). */
static void
answer_pcp (Fixture        *fx,
            GSocketAddress *from,
            const guint8   *req)
{
  MapRequest m = { 0, };
  guint8 out[60] = { 0, };

  m.lifetime = alv_wire_get32 (req + 4);
  memcpy (m.client, req + 20, 4);
  memcpy (m.nonce, req + 24, 12);
  m.internal_port = (guint16) ((req[40] << 8) | req[41]);
  m.suggested_port = (guint16) ((req[42] << 8) | req[43]);
  g_test_message ("responder: PCP map %u (suggested %u) for %u s", m.internal_port,
                  m.suggested_port, m.lifetime);
  g_array_append_val (fx->pcp_maps, m);
  if (fx->mode == RESPOND_MAP)
    {
      /* a NAT-PMP server: version 0, opcode | 128, "unsupported version" */
      guint8 refusal[8] = { 0, 129, 0, 1, 0, 0, 0, 7 };

      reply (fx, from, refusal, sizeof refusal);
      return;
    }
  if (fx->mode != RESPOND_PCP && fx->mode != RESPOND_PCP_STALE && fx->mode != RESPOND_PCP_SHARED)
    return;
  if (fx->mode == RESPOND_PCP_STALE && m.lifetime == 0 && !fx->stale_sent)
    {
      fx->stale_sent = TRUE;
      m.lifetime = 7200;
    }
  out[0] = 2;
  out[1] = 0x81;
  alv_wire_put32 (out + 4, m.lifetime > 0 ? SHORT_LIFETIME : 0);
  alv_wire_put32 (out + 8, 1000 + fx->pcp_maps->len);
  memcpy (out + 24, req + 24, 36);
  alv_wire_put16 (out + 42, m.lifetime > 0 ? EXTERNAL_PORT : 0);
  out[54] = 0xff;
  out[55] = 0xff;
  out[56] = 203; out[57] = 0; out[58] = 113; out[59] = 7;
  if (fx->mode == RESPOND_PCP_SHARED)
    {
      out[56] = 100; out[57] = 64;
    }
  reply (fx, from, out, sizeof out);
}

static gboolean
on_request (GSocket      *socket,
            GIOCondition  condition G_GNUC_UNUSED,
            gpointer      user_data)
{
  Fixture *fx = user_data;
  g_autoptr(GSocketAddress) from = NULL;
  g_autoptr(GError) error = NULL;
  guint8 buf[64];
  guint8 out[16] = { 0, };
  gssize n = g_socket_receive_from (socket, &from, (char *) buf, sizeof buf, NULL, &error);
  MapRequest req = { 0, };

  if (n < 0)
    return G_SOURCE_CONTINUE;
  if (n == 60 && buf[0] == 2 && buf[1] == 1)
    {
      answer_pcp (fx, from, buf);
      return G_SOURCE_CONTINUE;
    }
  if (n == 2 && buf[0] == 0 && buf[1] == 0)
    {
      fx->address_requests++;
      if (fx->mode != RESPOND_MAP)
        return G_SOURCE_CONTINUE;
      out[1] = 128;
      alv_wire_put32 (out + 4, 1000 + fx->maps->len);
      out[8] = 203; out[9] = 0; out[10] = 113; out[11] = 7;
      reply (fx, from, out, 12);
      return G_SOURCE_CONTINUE;
    }
  if (n != 12 || buf[0] != 0 || buf[1] != 2 || buf[2] != 0 || buf[3] != 0)
    {
      fx->other_requests++;
      return G_SOURCE_CONTINUE;
    }
  req.internal_port = (guint16) ((buf[4] << 8) | buf[5]);
  req.suggested_port = (guint16) ((buf[6] << 8) | buf[7]);
  req.lifetime = ((guint32) buf[8] << 24) | ((guint32) buf[9] << 16) | ((guint32) buf[10] << 8) | buf[11];
  g_test_message ("responder: map %u (suggested %u) for %u s", req.internal_port,
                  req.suggested_port, req.lifetime);
  g_array_append_val (fx->maps, req);
  if (fx->mode == RESPOND_GARBAGE)
    reply_garbage (fx, from, &req);
  if (fx->mode != RESPOND_MAP)
    return G_SOURCE_CONTINUE;
  out[1] = 130;
  alv_wire_put32 (out + 4, 1000 + fx->maps->len);
  alv_wire_put16 (out + 8, req.internal_port);
  alv_wire_put16 (out + 10, req.lifetime > 0 ? EXTERNAL_PORT : 0);
  alv_wire_put32 (out + 12, req.lifetime > 0 ? SHORT_LIFETIME : 0);
  reply (fx, from, out, 16);
  return G_SOURCE_CONTINUE;
}

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new_from_string ("127.0.0.1", 0);
  g_autoptr(GSocketAddress) bound = NULL;

  fx->mode = GPOINTER_TO_INT (data);
  fx->maps = g_array_new (FALSE, TRUE, sizeof (MapRequest));
  fx->pcp_maps = g_array_new (FALSE, TRUE, sizeof (MapRequest));
  fx->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                             G_SOCKET_PROTOCOL_UDP, &error);
  g_assert_no_error (error);
  g_socket_set_blocking (fx->socket, FALSE);
  g_socket_bind (fx->socket, any, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (fx->socket, &error);
  g_assert_no_error (error);
  fx->port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  fx->source = g_socket_create_source (fx->socket, G_IO_IN, NULL);
  g_source_set_callback (fx->source, G_SOURCE_FUNC (on_request), fx, NULL);
  g_source_attach (fx->source, NULL);
  fx->dir = g_dir_make_tmp ("test-core-nat-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data G_GNUC_UNUSED)
{
  daemon_clear (&fx->d);
  g_source_destroy (fx->source);
  g_source_unref (fx->source);
  g_clear_object (&fx->socket);
  g_array_unref (fx->maps);
  g_array_unref (fx->pcp_maps);
  test_remove_tree (fx->dir);
  g_free (fx->dir);
}

/* The core, with a core.conf that has it ask the responder. */
static void
start_core (Fixture *fx)
{
  g_autofree char *conf = g_strdup_printf ("peer-address=127.0.0.1\nnat=natpmp\n"
                                           "nat-gateway=127.0.0.1:%u\n", fx->port);

  daemon_start (&fx->d, fx->dir, conf, NULL);
}

typedef struct
{
  Fixture *fx;
  guint n;
} Count;

static gboolean
maps_at_least (gpointer data)
{
  Count *c = data;

  return c->fx->maps->len >= c->n;
}

static gboolean
mapped (gpointer data)
{
  Fixture *fx = data;

  return g_strcmp0 (statistic (&fx->d, "peer-port-mapping"), "natpmp") == 0 &&
         g_strcmp0 (statistic (&fx->d, "peer-port-external"), EXTERNAL_ADDRESS ":40000") == 0;
}

static gboolean
removal_seen (gpointer data)
{
  Fixture *fx = data;

  for (guint i = 0; i < fx->maps->len; i++)
    if (g_array_index (fx->maps, MapRequest, i).lifetime == 0)
      return TRUE;
  return FALSE;
}

static gboolean
has_statistics (gpointer data)
{
  return statistic (&((Fixture *) data)->d, "peer-port-mapping") != NULL;
}

/* Mapped, reported, renewed at half the lifetime, removed at exit. */
static void
test_map_renew_remove (Fixture       *fx,
                       gconstpointer  data G_GNUC_UNUSED)
{
  Count two = { fx, 2 };
  MapRequest first, renewal;

  start_core (fx);
  test_wait_until (mapped, fx, WAIT_MS);
  first = g_array_index (fx->maps, MapRequest, 0);
  g_assert_cmpuint (first.internal_port, >, 0);
  /* it asks for its own port, for the RFC's recommended two hours */
  g_assert_cmpuint (first.suggested_port, ==, first.internal_port);
  g_assert_cmpuint (first.lifetime, ==, 7200);
  g_assert_cmpuint (fx->address_requests, >=, 1);
  g_assert_cmpuint (fx->other_requests, ==, 0);
  /* PCP first; the "unsupported version" had it fall back to NAT-PMP */
  g_assert_cmpuint (fx->pcp_maps->len, >=, 1);

  /* the responder granted 2 s: the renewal comes after about one */
  test_wait_until (maps_at_least, &two, WAIT_MS);
  renewal = g_array_index (fx->maps, MapRequest, 1);
  g_assert_cmpuint (renewal.internal_port, ==, first.internal_port);
  g_assert_cmpuint (renewal.suggested_port, ==, EXTERNAL_PORT);
  g_assert_cmpuint (renewal.lifetime, ==, 7200);
  g_assert_true (mapped (fx));

  /* stopping removes it */
  daemon_stop (&fx->d);
  g_assert_true (removal_seen (fx));
  {
    const MapRequest *last = &g_array_index (fx->maps, MapRequest, fx->maps->len - 1);

    g_assert_cmpuint (last->internal_port, ==, first.internal_port);
    g_assert_cmpuint (last->suggested_port, ==, 0);
    g_assert_cmpuint (last->lifetime, ==, 0);
  }
}

static gboolean
pcp_mapped (gpointer data)
{
  Fixture *fx = data;

  return g_strcmp0 (statistic (&fx->d, "peer-port-mapping"), "pcp") == 0 &&
         g_strcmp0 (statistic (&fx->d, "peer-port-external"), EXTERNAL_ADDRESS ":40000") == 0;
}

static gboolean
pcp_maps_at_least (gpointer data)
{
  Count *c = data;

  return c->fx->pcp_maps->len >= c->n;
}

/* A router that speaks PCP: mapped with PCP alone, renewed with the same
 * nonce, removed with it. */
static void
test_pcp (Fixture       *fx,
          gconstpointer  data G_GNUC_UNUSED)
{
  Count two = { fx, 2 };
  MapRequest first, renewal, last;

  start_core (fx);
  test_wait_until (pcp_mapped, fx, WAIT_MS);
  first = g_array_index (fx->pcp_maps, MapRequest, 0);
  g_assert_cmpuint (first.internal_port, >, 0);
  g_assert_cmpuint (first.suggested_port, ==, first.internal_port);
  g_assert_cmpuint (first.lifetime, ==, 7200);
  /* the address it sends from */
  g_assert_cmpuint (first.client[0], ==, 127);
  test_wait_until (pcp_maps_at_least, &two, WAIT_MS);
  renewal = g_array_index (fx->pcp_maps, MapRequest, 1);
  g_assert_cmpmem (renewal.nonce, 12, first.nonce, 12);
  g_assert_cmpuint (renewal.suggested_port, ==, EXTERNAL_PORT);
  g_assert_cmpuint (renewal.lifetime, ==, 7200);
  daemon_stop (&fx->d);
  last = g_array_index (fx->pcp_maps, MapRequest, fx->pcp_maps->len - 1);
  g_assert_cmpuint (last.lifetime, ==, 0);
  g_assert_cmpuint (last.internal_port, ==, first.internal_port);
  g_assert_cmpmem (last.nonce, 12, first.nonce, 12);
  /* NAT-PMP was never needed */
  g_assert_cmpuint (fx->maps->len, ==, 0);
  g_assert_cmpuint (fx->address_requests, ==, 0);
}

static guint
pcp_removals (Fixture *fx)
{
  guint n = 0;

  for (guint i = 0; i < fx->pcp_maps->len; i++)
    if (g_array_index (fx->pcp_maps, MapRequest, i).lifetime == 0)
      n++;
  return n;
}

/* A late grant while the core removes its mapping at exit is no
 * confirmation of the removal: it asks again until the router says
 * lifetime 0. */
static void
test_pcp_stale_release (Fixture       *fx,
                        gconstpointer  data G_GNUC_UNUSED)
{
  start_core (fx);
  test_wait_until (pcp_mapped, fx, WAIT_MS);
  daemon_stop (&fx->d);
  g_assert_true (fx->stale_sent);
  g_assert_cmpuint (pcp_removals (fx), >=, 2);
}

static void
assert_not_mapped (Fixture *fx)
{
  g_assert_cmpstr (statistic (&fx->d, "peer-port-mapping"), ==, "none");
  g_assert_cmpstr (statistic (&fx->d, "peer-port-external"), ==, "");
}

/* A router whose own external address is not public: no mapping is
 * reported (nor announced). */
static void
test_pcp_shared_address (Fixture       *fx,
                         gconstpointer  data G_GNUC_UNUSED)
{
  Count two = { fx, 2 };

  start_core (fx);
  /* the renewal is asked for once the grant was handled */
  test_wait_until (pcp_maps_at_least, &two, WAIT_MS);
  assert_not_mapped (fx);
  daemon_stop (&fx->d);
}

/* Garbage, or silence, from the router: the core resends on the RFC's
 * schedule, keeps serving its bus and reports no mapping. */
static void
test_no_mapping (Fixture       *fx,
                 gconstpointer  data G_GNUC_UNUSED)
{
  Count three = { fx, 3 };

  start_core (fx);
  /* resent after 250 ms and 500 ms: the answers were no answer */
  test_wait_until (maps_at_least, &three, WAIT_MS);
  test_wait_until (has_statistics, fx, WAIT_MS);
  assert_not_mapped (fx);
  for (guint i = 0; i < fx->maps->len; i++)
    g_assert_cmpuint (g_array_index (fx->maps, MapRequest, i).lifetime, ==, 7200);
  /* it still serves its bus (a Stop with nothing tuned is refused) */
  {
    g_autoptr(GError) error = NULL;
    GQuark domain = ALV_CORE_ERROR;   /* registers the D-Bus error names */

    g_assert_false (alv_core1_call_stop_sync (fx->d.proxy, NULL, &error));
    g_assert_error (error, domain, ALV_CORE_ERROR_NOT_TUNED);
  }
  /* and exits promptly: the removal it sends is bounded */
  daemon_stop (&fx->d);
}

/* --- a home network behind a real router (root) ------------------------ */

/* the router's public side; the namespaces reach nothing else, so any
 * address will do, as long as miniupnpd does not take it for a private
 * one (it refuses to map behind those) */
#define PUBLIC_ADDRESS "11.22.33.1"
#define PEER_ADDRESS "11.22.33.2"

typedef struct
{
  char *home, *nat, *inet;          /* namespace names */
  GSubprocess *reaper;               /* deletes the namespaces when we end */
  char *dir;
  GSubprocess *miniupnpd;
  GDataInputStream *miniupnpd_log;
  GPtrArray *log_lines;
  gboolean log_done;
  Daemon d;
  gboolean skipped;

  /* a station on the Internet side (the station tests) */
  GSubprocess *gateway;
  char *gateway_url;            /* http://PEER_ADDRESS:port/ */
  GBytes *media;
  GSubprocess *squatter;        /* holds the core's port on the router */
} Netns;

/* Python 3, as make check names it */
static const char *
python3 (void)
{
  const char *python = g_getenv ("PYTHON3");

  return python != NULL && *python != '\0' ? python : "python3";
}

/* Runs a short command; returns whether it exited with 0. */
static gboolean
run (const char * const *argv)
{
  g_autofree char *out = NULL;
  int status = -1;

  out = test_run_tool (argv, NULL, NULL, &status);
  return status == 0;
}

static gboolean
run_in (const char         *netns,
        const char * const *argv)
{
  g_autoptr(GPtrArray) full = g_ptr_array_new ();

  g_ptr_array_add (full, (gpointer) "ip");
  g_ptr_array_add (full, (gpointer) "netns");
  g_ptr_array_add (full, (gpointer) "exec");
  g_ptr_array_add (full, (gpointer) netns);
  for (guint i = 0; argv[i] != NULL; i++)
    g_ptr_array_add (full, (gpointer) argv[i]);
  g_ptr_array_add (full, NULL);
  return run ((const char * const *) full->pdata);
}

static void
on_log_line (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Netns *ns = user_data;
  char *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (source), result, NULL, NULL);

  if (line == NULL)
    {
      ns->log_done = TRUE;
      return;
    }
  g_ptr_array_add (ns->log_lines, line);
  g_data_input_stream_read_line_async (G_DATA_INPUT_STREAM (source), G_PRIORITY_DEFAULT, NULL,
                                       on_log_line, ns);
}

static const char *
find_tool (const char *name)
{
  static char path[64];
  g_autofree char *found = g_find_program_in_path (name);

  if (found != NULL)
    return name;
  g_snprintf (path, sizeof path, "/usr/sbin/%s", name);
  return g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) ? path : NULL;
}

typedef struct
{
  Netns *ns;
  char *needle;
} LogWait;

static gboolean
log_has (gpointer data)
{
  LogWait *w = data;

  for (guint i = 0; i < w->ns->log_lines->len; i++)
    if (strstr (w->ns->log_lines->pdata[i], w->needle) != NULL)
      return TRUE;
  return FALSE;
}

static gboolean
log_has_or_done (gpointer data)
{
  LogWait *w = data;

  return log_has (w) || w->ns->log_done;
}

/* The namespaces, and the router between them: with miniupnpd (@upnp;
 * @router_conf: more lines of its configuration), or without it and
 * dropping what comes unasked from the Internet side, as a home router
 * without port mapping does. */
static void
netns_up (Netns      *ns,
          gboolean    upnp,
          const char *router_conf)
{
  static const char *const tools[][2] = {
    { "ip", "iproute2" }, { "nft", "nftables" }, { "miniupnpd", "miniupnpd-nftables" },
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *conf_path = NULL;
  g_autofree char *pid_path = NULL;
  g_autofree char *nft_path = NULL;
  const char *miniupnpd = NULL;
  char **names[3];

  ns->log_lines = g_ptr_array_new_with_free_func (g_free);
  if (getuid () != 0)
    {
      g_test_skip ("needs root to create network namespaces (CI runs it as root)");
      ns->skipped = TRUE;
      return;
    }
  for (guint i = 0; i < (upnp ? G_N_ELEMENTS (tools) : 2); i++)
    if (find_tool (tools[i][0]) == NULL)
      {
        g_autofree char *why = g_strdup_printf ("%s is not installed (Debian: %s; scripts/setup)",
                                                tools[i][0], tools[i][1]);
        g_test_skip (why);
        ns->skipped = TRUE;
        return;
      }
  miniupnpd = find_tool ("miniupnpd");
  ns->home = g_strdup_printf ("alv-%d-home", (int) getpid ());
  ns->nat = g_strdup_printf ("alv-%d-nat", (int) getpid ());
  ns->inet = g_strdup_printf ("alv-%d-inet", (int) getpid ());
  names[0] = &ns->home;
  names[1] = &ns->nat;
  names[2] = &ns->inet;
  /* A failed assertion aborts before the teardown: a shell that waits
   * for its stdin to close, which happens however this process ends,
   * deletes the namespaces (and with them the veth pairs). */
  {
    g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE);
    const char *argv[] = { "sh", "-c",
                           "read _; for n in \"$@\"; do ip netns delete \"$n\" 2>/dev/null; done",
                           "sh", ns->home, ns->nat, ns->inet, NULL };

    ns->reaper = g_subprocess_launcher_spawnv (launcher, argv, &error);
    g_assert_no_error (error);
  }
  for (guint i = 0; i < 3; i++)
    {
      const char *add[] = { "ip", "netns", "add", *names[i], NULL };
      const char *lo[] = { "ip", "link", "set", "lo", "up", NULL };

      if (!run (add))
        {
          g_test_skip ("cannot create a network namespace here (a container without CAP_SYS_ADMIN?)");
          ns->skipped = TRUE;
          return;
        }
      g_assert_true (run_in (*names[i], lo));
    }
  ns->dir = g_dir_make_tmp ("test-core-nat-netns-XXXXXX", &error);
  g_assert_no_error (error);
  {
    /* home eth0 192.168.77.2 — lan0 192.168.77.1 [nat] wan0 11.22.33.1 — inet eth0 11.22.33.2 */
    const char *home_link[] = { "ip", "link", "add", "lan0", "netns", ns->nat, "type", "veth",
                                "peer", "name", "eth0", "netns", ns->home, NULL };
    const char *inet_link[] = { "ip", "link", "add", "wan0", "netns", ns->nat, "type", "veth",
                                "peer", "name", "eth0", "netns", ns->inet, NULL };
    const char *home_addr[] = { "ip", "address", "add", "192.168.77.2/24", "dev", "eth0", NULL };
    const char *lan_addr[] = { "ip", "address", "add", "192.168.77.1/24", "dev", "lan0", NULL };
    const char *wan_addr[] = { "ip", "address", "add", PUBLIC_ADDRESS "/24", "dev", "wan0", NULL };
    const char *inet_addr[] = { "ip", "address", "add", PEER_ADDRESS "/24", "dev", "eth0", NULL };
    const char *eth0_up[] = { "ip", "link", "set", "eth0", "up", NULL };
    const char *lan_up[] = { "ip", "link", "set", "lan0", "up", NULL };
    const char *wan_up[] = { "ip", "link", "set", "wan0", "up", NULL };
    const char *route[] = { "ip", "route", "add", "default", "via", "192.168.77.1", NULL };
    /* not sysctl: procps may be absent */
    const char *forward[] = { "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward", NULL };

    g_assert_true (run (home_link));
    g_assert_true (run (inet_link));
    g_assert_true (run_in (ns->home, home_addr));
    g_assert_true (run_in (ns->home, eth0_up));
    g_assert_true (run_in (ns->home, route));
    g_assert_true (run_in (ns->nat, lan_addr));
    g_assert_true (run_in (ns->nat, wan_addr));
    g_assert_true (run_in (ns->nat, lan_up));
    g_assert_true (run_in (ns->nat, wan_up));
    g_assert_true (run_in (ns->nat, forward));
    g_assert_true (run_in (ns->inet, inet_addr));
    g_assert_true (run_in (ns->inet, eth0_up));
  }
  /* what the router needs of the kernel: nf_tables with NAT (a probe in
   * "internet", which has no rules otherwise) */
  {
    const char *probe[] = { find_tool ("nft"),
                            "table ip alvprobe { chain p { type nat hook postrouting priority 100;"
                            " policy accept; masquerade; }; }", NULL };
    const char *unprobe[] = { find_tool ("nft"), "delete table ip alvprobe", NULL };

    if (!run_in (ns->inet, probe))
      {
        g_test_skip ("nft cannot add a masquerading table here (a kernel without nf_tables NAT?)");
        ns->skipped = TRUE;
        return;
      }
    g_assert_true (run_in (ns->inet, unprobe));
  }
  /* the router: masquerade out of wan0, and the chains miniupnpd fills
   * (its defaults: table inet filter, chains miniupnpd,
   * prerouting_miniupnpd, postrouting_miniupnpd) */
  nft_path = g_build_filename (ns->dir, "router.nft", NULL);
  {
    g_autofree char *rules = g_strdup_printf (
                       "table ip alvnat {\n"
                       "  chain postrouting { type nat hook postrouting priority 100; policy accept;"
                       " oifname \"wan0\" masquerade; }\n"
                       "}\n"
                       "table inet filter {\n"
                       "  chain forward { type filter hook forward priority 0; policy accept;"
                       " jump miniupnpd; }\n"
                       "  chain miniupnpd { }\n"
                       "  chain prerouting { type nat hook prerouting priority -100; policy accept;"
                       " jump prerouting_miniupnpd; }\n"
                       "  chain postrouting { type nat hook postrouting priority 100; policy accept;"
                       " jump postrouting_miniupnpd; }\n"
                       "  chain prerouting_miniupnpd { }\n"
                       "  chain postrouting_miniupnpd { }\n"
                       "%s"
                       "}\n",
                       /* no mapping: what nobody inside asked for is
                        * dropped, not refused (a connect-back can only
                        * time out) */
                       upnp ? "" : "  chain input { type filter hook input priority 0; policy accept;"
                                   " iifname \"wan0\" ct state new drop; }\n");

    g_file_set_contents (nft_path, rules, -1, &error);
    g_assert_no_error (error);
  }
  {
    const char *nft[] = { find_tool ("nft"), "-f", nft_path, NULL };

    g_assert_true (run_in (ns->nat, nft));
  }
  if (!upnp)
    return;
  conf = g_strdup_printf ("ext_ifname=wan0\n"
                          "listening_ip=lan0\n"
                          "http_port=0\n"
                          "enable_natpmp=yes\n"
                          "enable_upnp=yes\n"
                          "secure_mode=yes\n"
                          "system_uptime=yes\n"
                          "uuid=3e1f8f2a-5f2b-4c1e-9a43-7d6a4e0c1b11\n"
                          "allow 1024-65535 192.168.77.0/24 1024-65535\n"
                          "deny 0-65535 0.0.0.0/0 0-65535\n"
                          "%s", router_conf);
  conf_path = g_build_filename (ns->dir, "miniupnpd.conf", NULL);
  pid_path = g_build_filename (ns->dir, "miniupnpd.pid", NULL);
  g_file_set_contents (conf_path, conf, -1, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
    const char *argv[] = { "ip", "netns", "exec", ns->nat, miniupnpd, "-d", "-f", conf_path,
                           "-P", pid_path, NULL };

    g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
    ns->miniupnpd = g_subprocess_launcher_spawnv (launcher, argv, &error);
    g_assert_no_error (error);
    ns->miniupnpd_log = g_data_input_stream_new (g_subprocess_get_stdout_pipe (ns->miniupnpd));
    g_data_input_stream_read_line_async (ns->miniupnpd_log, G_PRIORITY_DEFAULT, NULL, on_log_line, ns);
  }
  /* the core asks the router at once: the router must listen by then */
  {
    LogWait listening = { ns, (char *) "Listening for NAT-PMP/PCP traffic on port 5351" };

    test_wait_until (log_has_or_done, &listening, WAIT_MS);
    g_assert_true (log_has (&listening));
  }
}

static void
netns_setup (Netns         *ns,
             gconstpointer  data G_GNUC_UNUSED)
{
  netns_up (ns, TRUE, "");
}

/* A router that grants PCP mappings for SHORT_LEASE s at most */
#define SHORT_LEASE 8

static void
netns_setup_short_lease (Netns         *ns,
                         gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *conf = g_strdup_printf ("min_lifetime=1\nmax_lifetime=%u\n", SHORT_LEASE);

  netns_up (ns, TRUE, conf);
}

static void
netns_setup_no_mapping (Netns         *ns,
                        gconstpointer  data G_GNUC_UNUSED)
{
  netns_up (ns, FALSE, NULL);
}

static gboolean
log_done_cond (gpointer data)
{
  return ((Netns *) data)->log_done;
}

static void
netns_teardown (Netns         *ns,
                gconstpointer  data G_GNUC_UNUSED)
{
  daemon_clear (&ns->d);
  if (ns->gateway != NULL)
    test_subprocess_stop (ns->gateway, SIGTERM, WAIT_MS);
  g_clear_object (&ns->gateway);
  g_clear_pointer (&ns->gateway_url, g_free);
  g_clear_pointer (&ns->media, g_bytes_unref);
  if (ns->squatter != NULL)
    test_subprocess_stop (ns->squatter, SIGTERM, WAIT_MS);
  g_clear_object (&ns->squatter);
  if (ns->miniupnpd != NULL)
    {
      test_subprocess_stop (ns->miniupnpd, SIGTERM, WAIT_MS);
      /* its output to the end, so that the reader lets go of the stream */
      test_wait (log_done_cond, ns, WAIT_MS);
    }
  g_clear_object (&ns->miniupnpd_log);
  g_clear_object (&ns->miniupnpd);
  /* the reaper deletes the namespaces, and the veth ends inside them */
  if (ns->reaper != NULL)
    {
      g_output_stream_close (g_subprocess_get_stdin_pipe (ns->reaper), NULL, NULL);
      g_assert_true (test_subprocess_wait (ns->reaper, WAIT_MS));
      g_clear_object (&ns->reaper);
    }
  if (ns->dir != NULL)
    test_remove_tree (ns->dir);
  g_free (ns->dir);
  g_free (ns->home);
  g_free (ns->nat);
  g_free (ns->inet);
  g_ptr_array_unref (ns->log_lines);
}

static gboolean
netns_mapped (gpointer data)
{
  Netns *ns = data;
  const char *external = statistic (&ns->d, "peer-port-external");

  return external != NULL && g_str_has_prefix (external, PUBLIC_ADDRESS ":");
}

/* The router's forwarding rules (the chain miniupnpd fills). */
static char *
router_rules (Netns *ns)
{
  const char *argv[] = { "ip", "netns", "exec", ns->nat, find_tool ("nft"), "list", "chain",
                         "inet", "filter", "prerouting_miniupnpd", NULL };
  int status = -1;
  char *out = test_run_tool (argv, NULL, NULL, &status);

  g_assert_cmpint (status, ==, 0);
  return out;
}

/* Mapped by the real router, reached from the Internet side, removed. */
static void
test_netns (Netns         *ns,
            gconstpointer  data)
{
  const char *nat = data;
  const char *python = python3 ();
  /* a peer's request to the peer port, from "internet": its status line */
  const char *script =
    "import socket, sys\n"
    "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)\n"
    "s.sendall(b'GET /uri-res/N2R?urn:tree:sha256:AAAA HTTP/1.1\\r\\nHost: peer\\r\\n"
    "Connection: close\\r\\n\\r\\n')\n"
    "data = b''\n"
    "while b'\\r\\n' not in data:\n"
    "    chunk = s.recv(4096)\n"
    "    if not chunk:\n"
    "        break\n"
    "    data += chunk\n"
    "print(data.split(b'\\r\\n')[0].decode())\n";
  g_autofree char *mapping = NULL;
  g_autofree char *port = NULL;
  g_autofree char *dport = NULL;
  g_autofree char *rules = NULL;
  g_autofree char *answer = NULL;
  g_autofree char *after = NULL;
  LogWait removed = { ns, NULL };
  int status = -1;

  if (ns->skipped)
    return;
#ifndef HAVE_GUPNP_IGD
  if (g_str_equal (nat, "upnp"))
    {
      g_test_skip ("built without GUPnP-IGD (--with-upnp)");
      return;
    }
#endif
  {
    /* the bus is a socket path: seen from every network namespace */
    g_autofree char *conf = g_strdup_printf ("nat=%s\n", nat);

    daemon_start (&ns->d, ns->dir, conf, ns->home);
  }
  test_wait_until (netns_mapped, ns, WAIT_MS);
  mapping = g_strdup (statistic (&ns->d, "peer-port-mapping"));
  port = g_strdup (statistic (&ns->d, "peer-port-external") + strlen (PUBLIC_ADDRESS ":"));
  g_test_message ("mapped with %s to %s:%s", mapping, PUBLIC_ADDRESS, port);
  /* miniupnpd speaks PCP, which the core tries before NAT-PMP */
  if (g_str_equal (nat, "auto"))
    g_assert_true (g_str_equal (mapping, "pcp") || g_str_equal (mapping, "upnp"));
  else
    g_assert_cmpstr (mapping, ==, g_str_equal (nat, "natpmp") ? "pcp" : nat);

  /* the router forwards the port ... */
  dport = g_strdup_printf ("dport %s ", port);
  rules = router_rules (ns);
  g_assert_nonnull (strstr (rules, dport));
  /* ... and a peer on the Internet side reaches the core through it (the
   * peer port refuses the made-up URN: an answer of the core's own) */
  {
    const char *argv[] = { "ip", "netns", "exec", ns->inet, python, "-c", script, PUBLIC_ADDRESS,
                           port, NULL };

    answer = test_run_tool (argv, NULL, NULL, &status);
  }
  g_assert_cmpint (status, ==, 0);
  g_assert_true (g_str_has_prefix (answer, "HTTP/1.1 400"));

  /* stopping the core removes the mapping from the router */
  daemon_stop (&ns->d);
  /* what miniupnpd says when it removed it */
  if (g_str_equal (mapping, "pcp"))
    removed.needle = g_strdup_printf ("PCP: TCP port %s mapping removed", port);
  else if (g_str_equal (mapping, "natpmp"))
    removed.needle = g_strdup_printf ("NAT-PMP TCP port %s mapping removed", port);
  else
    removed.needle = g_strdup_printf ("removing redirect rule port %s TCP", port);
  test_wait_until (log_has, &removed, WAIT_MS);
  g_free (removed.needle);
  after = router_rules (ns);
  g_assert_null (strstr (after, dport));
}

typedef struct
{
  Netns *ns;
  char *needle;
  guint n;
} LogCount;

static gboolean
log_count_reached (gpointer data)
{
  LogCount *c = data;
  guint n = 0;

  for (guint i = 0; i < c->ns->log_lines->len; i++)
    if (strstr (c->ns->log_lines->pdata[i], c->needle) != NULL)
      n++;
  return n >= c->n;
}

/* A router that grants SHORT_LEASE s (miniupnpd's max_lifetime, which
 * PCP answers carry): the core renews its mapping before the lease ends
 * (at three quarters of so short a grant), so the mapping outlives
 * several leases and the router never drops it as expired (miniupnpd
 * counts in whole seconds: a lease of 8 s leaves the renewal at 6 s a
 * second to spare at least), and the core reports it mapped all along. */
static void
test_netns_renew (Netns         *ns,
                  gconstpointer  data G_GNUC_UNUSED)
{
  g_autofree char *port = NULL;
  g_autofree char *dport = NULL;
  g_autofree char *rules = NULL;
  LogCount renewed = { ns, NULL, 3 };
  LogWait expired = { ns, NULL };

  if (ns->skipped)
    return;
  daemon_start (&ns->d, ns->dir, "nat=natpmp\n", ns->home);
  test_wait_until (netns_mapped, ns, WAIT_MS);
  g_assert_cmpstr (statistic (&ns->d, "peer-port-mapping"), ==, "pcp");
  port = g_strdup (statistic (&ns->d, "peer-port-external") + strlen (PUBLIC_ADDRESS ":"));
  /* miniupnpd logs each grant: the first, then each renewal; the third
   * comes after the first lease would have ended */
  renewed.needle = g_strdup_printf ("mapping TCP %s->192.168.77.2:", port);
  test_wait_until (log_count_reached, &renewed, 2 * WAIT_MS);
  expired.needle = g_strdup_printf ("remove port mapping %s TCP because it has expired", port);
  if (log_has (&expired))
    for (guint i = 0; i < ns->log_lines->len; i++)
      g_test_message ("miniupnpd: %s", (const char *) ns->log_lines->pdata[i]);
  g_assert_false (log_has (&expired));
  dport = g_strdup_printf ("dport %s ", port);
  rules = router_rules (ns);
  g_assert_nonnull (strstr (rules, dport));
  g_assert_true (netns_mapped (ns));
  g_free (renewed.needle);
  g_free (expired.needle);
  daemon_stop (&ns->d);
}

/* --- a station on the Internet side (root) ------------------------------- */

#define SEC G_GINT64_CONSTANT (1000000)
/* 2300 MP3 frames of 1152 samples at 44.1 kHz: 60 s, about 960 KB */
#define STATION_FRAMES 2300
#define STATION_LENGTH ((gint64) STATION_FRAMES * 1152 * SEC / 44100)
/* the gateway's default */
#define BLOCK_SIZE 8192
/* how long the gateway's connect-back may take */
#define CONNECT_BACK_MS "1500"

/* A plain HTTP/1.0 client, run inside a namespace: sends METHOD TARGET
 * (and the HEADERs) to HOST:PORT, writes at most LIMIT bytes of the body
 * to OUT, and prints the status line and the headers. */
static const char http_script[] =
  "import socket, sys\n"
  "host, port, method, target, out, limit = sys.argv[1:7]\n"
  "limit = int(limit)\n"
  "s = socket.create_connection((host, int(port)), timeout=15)\n"
  "req = '%s %s HTTP/1.0\\r\\nHost: %s\\r\\n' % (method, target, host)\n"
  "req += ''.join(h + '\\r\\n' for h in sys.argv[7:]) + '\\r\\n'\n"
  "s.sendall(req.encode())\n"
  "data = b''\n"
  "while b'\\r\\n\\r\\n' not in data:\n"
  "    chunk = s.recv(65536)\n"
  "    if not chunk:\n"
  "        break\n"
  "    data += chunk\n"
  "head, _, body = data.partition(b'\\r\\n\\r\\n')\n"
  "while len(body) < limit:\n"
  "    chunk = s.recv(65536)\n"
  "    if not chunk:\n"
  "        break\n"
  "    body += chunk\n"
  "s.close()\n"
  "open(out, 'wb').write(body[:limit])\n"
  "sys.stdout.write(head.decode('latin-1') + '\\r\\n')\n";

/* An HTTP answer as the script reports it. */
typedef struct
{
  guint status;
  char **lines;                 /* the head, line by line */
  GBytes *body;
} Answer;

static void
answer_clear (Answer *a)
{
  g_clear_pointer (&a->lines, g_strfreev);
  g_clear_pointer (&a->body, g_bytes_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Answer, answer_clear)

/* The value of header @name (case-insensitive) in @a, or NULL. */
static const char *
answer_header (const Answer *a,
               const char   *name)
{
  gsize len = strlen (name);

  for (guint i = 1; a->lines[i] != NULL; i++)
    if (g_ascii_strncasecmp (a->lines[i], name, len) == 0 && a->lines[i][len] == ':')
      return g_strstrip (a->lines[i] + len + 1);
  return NULL;
}

/* @method @target to @host:@port from inside @netns, with @header (may be
 * NULL); at most @limit bytes of the body are kept. */
static void
http_in (Netns      *ns,
         const char *netns,
         const char *host,
         guint16     port,
         const char *method,
         const char *target,
         const char *header,
         gsize       limit,
         Answer     *a)
{
  const char *python = python3 ();
  g_autofree char *out = g_build_filename (ns->dir, "body", NULL);
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  g_autofree char *limit_text = g_strdup_printf ("%" G_GSIZE_FORMAT, limit);
  g_autofree char *head = NULL;
  g_autofree char *body = NULL;
  g_autoptr(GError) error = NULL;
  gsize body_len = 0;
  int status = -1;
  const char *argv[] = { "ip", "netns", "exec", netns, python, "-c", http_script, host, port_text,
                         method, target, out, limit_text, header, NULL };

  head = test_run_tool (argv, NULL, NULL, &status);
  g_assert_cmpint (status, ==, 0);
  g_file_get_contents (out, &body, &body_len, &error);
  g_assert_no_error (error);
  a->body = g_bytes_new_take (g_steal_pointer (&body), body_len);
  a->lines = g_strsplit (head, "\r\n", -1);
  g_assert_true (g_str_has_prefix (a->lines[0], "HTTP/1."));
  a->status = (guint) g_ascii_strtoull (a->lines[0] + strlen ("HTTP/1.x "), NULL, 10);
}

static guint16
port_of (const char *url)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);

  g_assert_nonnull (uri);
  return (guint16) g_uri_get_port (uri);
}

/* A counter of the gateway's /status, asked from the Internet side. */
static guint64
gateway_status (Netns      *ns,
                const char *key)
{
  g_auto(Answer) a = { 0, };
  g_autofree char *prefix = g_strconcat ("\n", key, ": ", NULL);
  g_autofree char *text = NULL;
  const char *at;

  http_in (ns, ns->inet, PEER_ADDRESS, port_of (ns->gateway_url), "GET", "/status", NULL,
           G_MAXINT, &a);
  g_assert_cmpuint (a.status, ==, 200);
  text = g_strdup_printf ("\n%.*s", (int) g_bytes_get_size (a.body),
                          (const char *) g_bytes_get_data (a.body, NULL));
  at = strstr (text, prefix);
  g_assert_nonnull (at);
  return g_ascii_strtoull (at + strlen (prefix), NULL, 10);
}

/* The station: one item of white noise (no two stretches alike, so where
 * bytes come from in the file is unambiguous) in the gateway's docroot,
 * in "internet", its slot begun 2 s ago.  FALSE (the test skipped) when
 * GStreamer cannot encode MP3. */
static gboolean
station_up (Netns *ns)
{
  g_autofree char *docroot = g_build_filename (ns->dir, "station", NULL);
  g_autofree char *media_dir = g_build_filename (docroot, "media", NULL);
  g_autofree char *media_path = g_build_filename (media_dir, "one.mp3", NULL);
  g_autofree char *rss_path = g_build_filename (docroot, "station.rss", NULL);
  g_autofree char *docroot_arg = g_strconcat ("--docroot=", docroot, NULL);
  g_autofree char *desc = NULL;
  g_autofree char *media_url = NULL;
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(AlvPlaylistItem) item = NULL;
  g_autoptr(GDateTime) start = NULL;
  g_autoptr(GDateTime) end = NULL;
  gint64 now = g_get_real_time ();
  /* a short announce interval (half the TTL): the core hears the check's
   * result at its second announce */
  const char *extra[] = { "--address=" PEER_ADDRESS, docroot_arg,
                          "--connect-back-timeout=" CONNECT_BACK_MS, "--peer-ttl=6", NULL };

  if (!stream_media_have_elements ("audiotestsrc", "lamemp3enc", NULL))
    {
      g_test_skip ("audiotestsrc or lamemp3enc is missing (gst-plugins-base, gst-plugins-good)");
      return FALSE;
    }
  desc = g_strdup_printf ("audiotestsrc wave=white-noise volume=0.3 num-buffers=%u "
                          "samplesperbuffer=1152 ! audio/x-raw,rate=44100,channels=2 ! "
                          "lamemp3enc target=bitrate bitrate=128 cbr=true", STATION_FRAMES);
  ns->media = stream_media_encode (desc, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_mkdir_with_parents (media_dir, 0755), ==, 0);
  g_file_set_contents (media_path, g_bytes_get_data (ns->media, NULL),
                       (gssize) g_bytes_get_size (ns->media), &error);
  g_assert_no_error (error);

  ns->gateway = test_spawn_gateway_in_netns (ns->inet, extra, WAIT_MS, &ns->gateway_url);
  g_assert_true (g_str_has_prefix (ns->gateway_url, "http://" PEER_ADDRESS ":"));

  media_url = g_strconcat (ns->gateway_url, "media/one.mp3", NULL);
  item = alv_playlist_item_new (media_url);
  start = stream_datetime (now - 2 * SEC);
  end = stream_datetime (now - 2 * SEC + STATION_LENGTH);
  alv_playlist_set_title (pl, "Station on the Internet");
  alv_playlist_item_set_title (item, "Noise");
  alv_playlist_item_set_media_type (item, "audio/mpeg");
  alv_playlist_item_set_slot (item, start, end);
  alv_playlist_add_item (pl, item);
  text = alv_playlist_to_string (pl, NULL);
  g_file_set_contents (rss_path, text, -1, &error);
  g_assert_no_error (error);
  return TRUE;
}

/* The core in "home" (core.conf: @conf), tuned to the station; returns
 * the local stream's URL. */
static char *
core_tune (Netns      *ns,
           const char *conf)
{
  g_autofree char *url = g_strconcat (ns->gateway_url, "station.rss", NULL);
  g_autoptr(GError) error = NULL;
  GAsyncResult *result = NULL;
  char *stream_url = NULL;

  daemon_start (&ns->d, ns->dir, conf, ns->home);
  alv_core1_call_tune (ns->d.proxy, url, NULL, test_async_result_cb, &result);
  test_wait_result (&result, WAIT_MS);
  alv_core1_call_tune_finish (ns->d.proxy, &stream_url, result, &error);
  g_object_unref (result);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (stream_url, "http://127.0.0.1:"));
  return stream_url;
}

typedef struct
{
  Netns *ns;
  const char *key;
  const char *value;
} StatWait;

static gboolean
statistic_is (gpointer data)
{
  StatWait *w = data;

  return g_strcmp0 (statistic (&w->ns->d, w->key), w->value) == 0;
}

static guint64
statistic_u64 (Daemon     *d,
               const char *key)
{
  GVariant *stats = alv_core1_get_statistics (d->proxy);
  guint64 value = 0;

  if (stats != NULL)
    g_variant_lookup (stats, key, "t", &value);
  return value;
}

static gboolean
holds_a_block (gpointer data)
{
  return statistic_u64 (&((Netns *) data)->d, "item-blocks-held") > 0;
}

/* The item's tree, as the gateway hashes it (its default block size),
 * and its URN. */
static AlvHashTree *
station_tree (Netns  *ns,
              char  **urn)
{
  AlvHashTree *tree = alv_hash_tree_new_for_data (g_bytes_get_data (ns->media, NULL),
                                                  g_bytes_get_size (ns->media), BLOCK_SIZE);

  *urn = alv_hash_tree_get_urn (tree);
  return tree;
}

/* Another peer, at PEER_ADDRESS in "internet", announces the item and
 * gets the peers the gateway lists to it: the body, and X-Alt. */
static char *
peers_listed_to_another (Netns      *ns,
                         const char *urn)
{
  g_auto(Answer) a = { 0, };
  g_autofree char *target = g_strdup_printf ("/announce?urn=%s&port=7000&event=started&numwant=32",
                                             urn);
  const char *alt, *pulls;

  http_in (ns, ns->inet, PEER_ADDRESS, port_of (ns->gateway_url), "GET", target, NULL,
           G_MAXINT, &a);
  g_assert_cmpuint (a.status, ==, 200);
  alt = answer_header (&a, "X-Alt");
  pulls = answer_header (&a, "X-Origin-Pulls");
  return g_strdup_printf ("%.*s\nX-Alt: %s\nX-Origin-Pulls: %s\n", (int) g_bytes_get_size (a.body),
                          (const char *) g_bytes_get_data (a.body, NULL), alt ? alt : "",
                          pulls ? pulls : "");
}

/* The core's peer port where core.conf pins it (peer-port) */
#define CORE_PORT 46346

/* Another host's mapping holds the public port the core's own port would
 * be: a UPnP router answers ConflictInMappingEntry, and the core takes
 * another public port (GUPnP-IGD picks one when asked for none in
 * particular). */
static void
test_netns_upnp_taken (Netns         *ns,
                       gconstpointer  data G_GNUC_UNUSED)
{
  /* another host in "home" (192.168.77.3) maps its port 5000 to the
   * public port argv[1] with PCP: prints the result code and the public
   * port granted */
  const char *script =
    "import os, socket, struct, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.settimeout(10)\n"
    "s.bind(('192.168.77.3', 0))\n"
    "s.connect(('192.168.77.1', 5351))\n"
    "me = socket.inet_aton(s.getsockname()[0])\n"
    "v4 = b'\\0' * 10 + b'\\xff\\xff'\n"
    "req = struct.pack('!BBHI', 2, 1, 0, 120) + v4 + me + os.urandom(12)\n"
    "req += struct.pack('!B3xHH', 6, 5000, int(sys.argv[1])) + v4 + b'\\0' * 4\n"
    "s.send(req)\n"
    "a = s.recv(1100)\n"
    "print(a[3], struct.unpack('!H', a[42:44])[0])\n";
  g_autofree char *core_port = g_strdup_printf ("%u", CORE_PORT);
  g_autofree char *answer = NULL;
  g_autofree char *expected = g_strdup_printf ("0 %u\n", CORE_PORT);
  g_autofree char *dport = NULL;
  g_autofree char *rules = NULL;
  const char *argv[] = { "ip", "netns", "exec", ns->home, python3 (), "-c", script, core_port, NULL };
  guint64 ext_port;
  int status = -1;

  if (ns->skipped)
    return;
#ifndef HAVE_GUPNP_IGD
  g_test_skip ("built without GUPnP-IGD (--with-upnp)");
  return;
#endif
  {
    const char *other_host[] = { "ip", "address", "add", "192.168.77.3/24", "dev", "eth0", NULL };

    g_assert_true (run_in (ns->home, other_host));
  }
  answer = test_run_tool (argv, NULL, NULL, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (answer, ==, expected);

  daemon_start (&ns->d, ns->dir, "nat=upnp\npeer-port=" G_STRINGIFY (CORE_PORT) "\n", ns->home);
  test_wait_until (netns_mapped, ns, WAIT_MS);
  g_assert_cmpstr (statistic (&ns->d, "peer-port-mapping"), ==, "upnp");
  ext_port = g_ascii_strtoull (statistic (&ns->d, "peer-port-external") + strlen (PUBLIC_ADDRESS ":"),
                               NULL, 10);
  g_assert_cmpuint (ext_port, !=, CORE_PORT);
  /* the router forwards that port to the core's */
  dport = g_strdup_printf ("dport %" G_GUINT64_FORMAT " dnat ip to 192.168.77.2:%u", ext_port, CORE_PORT);
  rules = router_rules (ns);
  g_assert_nonnull (strstr (rules, dport));
  /* and removes it once the core stopped; the other host's stays */
  daemon_stop (&ns->d);
  {
    g_autofree char *after = NULL;
    g_autofree char *other = g_strdup_printf ("dport %u dnat ip to 192.168.77.3:5000", CORE_PORT);
    LogWait removed = { ns, NULL };

    removed.needle = g_strdup_printf ("removing redirect rule port %" G_GUINT64_FORMAT " TCP", ext_port);
    test_wait_until (log_has, &removed, WAIT_MS);
    g_free (removed.needle);
    after = router_rules (ns);
    g_assert_null (strstr (after, dport));
    g_assert_nonnull (strstr (after, other));
  }
}

/* A service of the router's own listens on @port, firewalled from the
 * Internet side as a router's admin page is: miniupnpd maps another
 * public port to a core in "home" that listens on @port, and an announce
 * of @port itself reaches nothing from the Internet (the connect-back
 * times out). */
static void
squat_port (Netns   *ns,
            guint16  port)
{
  const char *python = python3 ();
  const char *script =
    "import socket, sys\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', int(sys.argv[1])))\n"
    "s.listen(4)\n"
    "print('listening', flush=True)\n"
    "sys.stdin.read()\n";
  g_autofree char *port_text = g_strdup_printf ("%u", port);
  g_autofree char *wall = g_strdup_printf ("table inet alvwall { chain input { type filter hook input"
                                           " priority 0; policy accept;"
                                           " iifname \"wan0\" tcp dport %u drop; }; }", port);
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  const char *nft[] = { find_tool ("nft"), wall, NULL };
  const char *argv[] = { "ip", "netns", "exec", ns->nat, python, "-c", script, port_text, NULL };

  g_assert_true (run_in (ns->nat, nft));
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  ns->squatter = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  line = test_subprocess_read_line (ns->squatter, WAIT_MS);
  g_assert_cmpstr (line, ==, "listening");
}

/* A core behind a router that maps its port (to another public port: the
 * router uses the core's own): the gateway on the Internet side reaches
 * it through the mapping, at the public port the core announced, and
 * says so, lists it to the others, and a peer there fetches a block of
 * the item from it through the router's public address, the block the
 * item's tree says; once the core stopped, the router has no rule for the
 * public port. */
static void
test_station_mapped (Netns         *ns,
                     gconstpointer  data G_GNUC_UNUSED)
{
  StatWait reachable = { ns, "peer-port-reachable", "yes" };
  g_autofree char *stream_url = NULL;
  g_autofree char *external = NULL;
  g_autofree char *mapping = NULL;
  g_autofree char *target = NULL;
  g_autofree char *range = NULL;
  g_autofree char *listed = NULL;
  g_autofree char *sharing = NULL;
  g_autofree char *urn = NULL;
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(AlvHashTree) got = NULL;
  g_auto(Answer) head = { 0, };
  g_auto(Answer) block = { 0, };
  const char *available;
  guint64 ext_port, first, last, length;
  guint index;

  if (ns->skipped || !station_up (ns))
    return;
  squat_port (ns, CORE_PORT);
  stream_url = core_tune (ns, "nat=auto\npeer-port=" G_STRINGIFY (CORE_PORT) "\n");
  test_wait_until (netns_mapped, ns, WAIT_MS);
  external = g_strdup (statistic (&ns->d, "peer-port-external"));
  ext_port = g_ascii_strtoull (external + strlen (PUBLIC_ADDRESS ":"), NULL, 10);
  mapping = g_strdup (statistic (&ns->d, "peer-port-mapping"));
  g_test_message ("mapped with %s to %s", mapping, external);
  /* the router's own service holds the core's port: the public port is
   * another, and only that one reaches the core */
  g_assert_cmpuint (ext_port, !=, CORE_PORT);

  /* the gateway connected back through the mapping and said so */
  test_wait_until (statistic_is, &reachable, WAIT_MS);
  /* (a first announce, before the router answered, named the core's own
   * port, which the router's service holds: that check may have failed) */
  g_assert_cmpuint (gateway_status (ns, "reachable"), >=, 1);
  sharing = player_ui_format_sharing (statistic (&ns->d, "peer-port-reachable"),
                                      statistic (&ns->d, "peer-port-mapping"));
  g_assert_nonnull (sharing);
  g_assert_true (g_str_has_prefix (sharing, "sharing: yes ("));

  /* it is listed to the others, at its public address */
  tree = station_tree (ns, &urn);
  listed = peers_listed_to_another (ns, urn);
  g_assert_nonnull (strstr (listed, external));

  /* a peer on the Internet side asks the core, through the router, what
   * it holds, and fetches the first block of that */
  test_wait_until (holds_a_block, ns, WAIT_MS);
  target = g_strconcat ("/uri-res/N2R?", urn, NULL);
  http_in (ns, ns->inet, PUBLIC_ADDRESS, (guint16) ext_port, "HEAD", target, NULL, 0, &head);
  g_assert_true (head.status == 200 || head.status == 503);
  g_assert_cmpstr (answer_header (&head, "X-Content-URN"), ==, urn);
  available = answer_header (&head, "X-Available-Ranges");
  g_assert_nonnull (available);
  g_assert_true (g_str_has_prefix (available, "bytes "));
  first = g_ascii_strtoull (available + strlen ("bytes "), NULL, 10);
  length = g_bytes_get_size (ns->media);
  g_assert_cmpuint (first % BLOCK_SIZE, ==, 0);
  last = MIN (first + BLOCK_SIZE, length) - 1;
  index = (guint) (first / BLOCK_SIZE);
  range = g_strdup_printf ("Range: bytes=%" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT, first, last);
  http_in (ns, ns->inet, PUBLIC_ADDRESS, (guint16) ext_port, "GET", target, range,
           G_MAXINT, &block);
  g_assert_cmpuint (block.status, ==, 206);
  g_assert_cmpuint (g_bytes_get_size (block.body), ==, last - first + 1);

  /* what the item's tree says block INDEX is, and the origin file's bytes */
  got = alv_hash_tree_new_for_data (g_bytes_get_data (block.body, NULL),
                                    g_bytes_get_size (block.body), BLOCK_SIZE);
  g_assert_cmpmem (alv_hash_tree_get_root (got), 32, alv_hash_tree_get_block_hash (tree, index), 32);
  g_assert_cmpmem (g_bytes_get_data (block.body, NULL), g_bytes_get_size (block.body),
                   (const guint8 *) g_bytes_get_data (ns->media, NULL) + first, last - first + 1);
  g_test_message ("block %u (bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT ") fetched through %s",
                  index, first, last, external);

  /* stopping the core removes the mapping of the other port too */
  daemon_stop (&ns->d);
  {
    g_autofree char *dport = g_strdup_printf ("dport %" G_GUINT64_FORMAT " ", ext_port);
    g_autofree char *after = NULL;
    LogWait removed = { ns, NULL };

    removed.needle = (char *) (g_str_equal (mapping, "upnp") ? "removing redirect rule port"
                                                                : "mapping removed");
    test_wait_until (log_has, &removed, WAIT_MS);
    after = router_rules (ns);
    g_assert_null (strstr (after, dport));
  }
}

/* A core behind a router that maps nothing and drops what nobody inside
 * asked for: the gateway's connect-back times out (within its
 * --connect-back-timeout: a connect to a dropping host would otherwise
 * take minutes of SYN retries), it says "no", the core says so ("sharing:
 * no"), the gateway lists it to nobody, and it still plays. */
static void
test_station_unmapped (Netns         *ns,
                       gconstpointer  data G_GNUC_UNUSED)
{
  StatWait unreachable = { ns, "peer-port-reachable", "no" };
  g_autofree char *stream_url = NULL;
  g_autofree char *sharing = NULL;
  g_autofree char *listed = NULL;
  g_autofree char *urn = NULL;
  g_auto(Answer) stream = { 0, };
  g_autoptr(AlvHashTree) tree = NULL;
  const guint8 *media, *at;
  gsize media_len, got_len;

  if (ns->skipped || !station_up (ns))
    return;
  stream_url = core_tune (ns, "nat=auto\n");

  /* the gateway's check ran into its timeout, and the core heard of it */
  test_wait_until (statistic_is, &unreachable, WAIT_MS);
  g_assert_cmpuint (gateway_status (ns, "unreachable"), ==, 1);
  g_assert_cmpuint (gateway_status (ns, "reachable"), ==, 0);
  g_assert_cmpstr (statistic (&ns->d, "peer-port-mapping"), ==, "none");
  g_assert_cmpstr (statistic (&ns->d, "peer-port-external"), ==, "");
  sharing = player_ui_format_sharing (statistic (&ns->d, "peer-port-reachable"),
                                      statistic (&ns->d, "peer-port-mapping"));
  g_assert_cmpstr (sharing, ==, "sharing: no — peers cannot reach you");

  /* known to the gateway (two entries once the other announced) but
   * listed to nobody: nobody waits on it */
  tree = station_tree (ns, &urn);
  listed = peers_listed_to_another (ns, urn);
  g_assert_null (strstr (listed, PUBLIC_ADDRESS));
  g_assert_cmpuint (gateway_status (ns, "peers"), ==, 2);

  /* and it plays: its local stream (in "home") is the item's bytes */
  http_in (ns, ns->home, "127.0.0.1", port_of (stream_url), "GET", "/stream", NULL, 32768, &stream);
  g_assert_cmpuint (stream.status, ==, 200);
  media = g_bytes_get_data (ns->media, &media_len);
  got_len = g_bytes_get_size (stream.body);
  g_assert_cmpuint (got_len, ==, 32768);
  at = stream_find_bytes (media, media_len, g_bytes_get_data (stream.body, NULL), got_len);
  g_assert_nonnull (at);
  g_test_message ("the local stream is the item from its byte %" G_GSIZE_FORMAT,
                  (gsize) (at - media));
  daemon_stop (&ns->d);
}

int
main (int argc, char **argv)
{
  /* the isolated XDG dirs hold no GSettings schemas: GIO's proxy
   * resolver must not look for them (in the core, which inherits this) */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  /* the station's item is encoded with GStreamer */
  gst_init (&argc, &argv);
  /* the responder grants 2 s: the core renews after 1.5 s, not a minute */
  g_test_add ("/core/nat/natpmp/map-renew-remove", Fixture, GINT_TO_POINTER (RESPOND_MAP),
              fixture_setup, test_map_renew_remove, fixture_teardown);
  g_test_add ("/core/nat/pcp/map-renew-remove", Fixture, GINT_TO_POINTER (RESPOND_PCP),
              fixture_setup, test_pcp, fixture_teardown);
  g_test_add ("/core/nat/pcp/stale-release", Fixture, GINT_TO_POINTER (RESPOND_PCP_STALE),
              fixture_setup, test_pcp_stale_release, fixture_teardown);
  g_test_add ("/core/nat/pcp/shared-address", Fixture, GINT_TO_POINTER (RESPOND_PCP_SHARED),
              fixture_setup, test_pcp_shared_address, fixture_teardown);
  g_test_add ("/core/nat/natpmp/garbage", Fixture, GINT_TO_POINTER (RESPOND_GARBAGE),
              fixture_setup, test_no_mapping, fixture_teardown);
  g_test_add ("/core/nat/natpmp/silent", Fixture, GINT_TO_POINTER (RESPOND_NOTHING),
              fixture_setup, test_no_mapping, fixture_teardown);
  g_test_add ("/core/nat/netns/natpmp", Netns, "natpmp", netns_setup, test_netns, netns_teardown);
  g_test_add ("/core/nat/netns/upnp", Netns, "upnp", netns_setup, test_netns, netns_teardown);
  g_test_add ("/core/nat/netns/auto", Netns, "auto", netns_setup, test_netns, netns_teardown);
  g_test_add ("/core/nat/netns/renew", Netns, NULL, netns_setup_short_lease, test_netns_renew,
              netns_teardown);
  g_test_add ("/core/nat/netns/upnp-port-taken", Netns, NULL, netns_setup, test_netns_upnp_taken,
              netns_teardown);
  g_test_add ("/core/nat/netns/station/mapped", Netns, NULL, netns_setup, test_station_mapped,
              netns_teardown);
  g_test_add ("/core/nat/netns/station/unmapped", Netns, NULL, netns_setup_no_mapping,
              test_station_unmapped, netns_teardown);
  return g_test_run ();
}
