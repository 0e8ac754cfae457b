/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The real `alluvium-core` maps its peer port with NAT-PMP, against a
 * tiny NAT-PMP responder written here (UDP on 127.0.0.1, named to the
 * core by core.conf's nat-gateway, the key that exists for this): the
 * requests are what RFC 6886 says, the core reports the mapping in its
 * Statistics, renews it at half a short lifetime the responder grants,
 * and removes it (lifetime 0) when it stops.  A responder that answers
 * garbage, or nothing, leaves the core running and reporting no mapping
 * while it resends on the RFC's schedule.
 */
#define G_LOG_DOMAIN "test-core-nat"
#include "config.h"

#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>

#include "alv-dbus.h"
#include "test-bus.h"
#include "test-util.h"

#define WAIT_MS 20000
/* what the responder grants */
#define EXTERNAL_ADDRESS "203.0.113.7"
#define EXTERNAL_PORT 40000
#define SHORT_LIFETIME 2

typedef enum
{
  RESPOND_MAP,        /* grant every mapping */
  RESPOND_GARBAGE,    /* answer with packets that are no valid answer */
  RESPOND_NOTHING,
} RespondMode;

/* one mapping request the responder received */
typedef struct
{
  guint16 internal_port;
  guint16 suggested_port;
  guint32 lifetime;
} MapRequest;

typedef struct
{
  RespondMode mode;
  GSocket *socket;
  GSource *source;
  guint16 port;
  GArray *maps;                 /* MapRequest */
  guint address_requests;
  guint other_requests;

  TestBus *bus;
  GDBusConnection *conn;
  AlvCore1 *proxy;
  GSubprocess *core;
  char *dir;
} Fixture;

static void
put16 (guint8 *p, guint v)
{
  p[0] = (guint8) (v >> 8);
  p[1] = (guint8) v;
}

static void
put32 (guint8 *p, guint32 v)
{
  put16 (p, v >> 16);
  put16 (p + 2, v & 0xffff);
}

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
  put16 (p + 8, req->internal_port + 1);
  put16 (p + 10, EXTERNAL_PORT);
  put32 (p + 12, 3600);
  reply (fx, to, p, sizeof p);
  p[1] = 129;                   /* UDP, not the TCP asked for */
  put16 (p + 8, req->internal_port);
  reply (fx, to, p, sizeof p);
  p[1] = 2;                     /* a request, not a reply */
  reply (fx, to, p, sizeof p);
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
  if (n == 2 && buf[0] == 0 && buf[1] == 0)
    {
      fx->address_requests++;
      if (fx->mode != RESPOND_MAP)
        return G_SOURCE_CONTINUE;
      out[1] = 128;
      put32 (out + 4, 1000 + fx->maps->len);
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
  put32 (out + 4, 1000 + fx->maps->len);
  put16 (out + 8, req.internal_port);
  put16 (out + 10, req.lifetime > 0 ? EXTERNAL_PORT : 0);
  put32 (out + 12, req.lifetime > 0 ? SHORT_LIFETIME : 0);
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
  if (fx->core != NULL)
    test_subprocess_stop (fx->core, SIGKILL, WAIT_MS);
  g_clear_object (&fx->core);
  g_clear_object (&fx->proxy);
  if (fx->conn != NULL)
    g_dbus_connection_close_sync (fx->conn, NULL, NULL);
  g_clear_object (&fx->conn);
  if (fx->bus != NULL)
    test_bus_down (fx->bus);
  g_source_destroy (fx->source);
  g_source_unref (fx->source);
  g_clear_object (&fx->socket);
  g_array_unref (fx->maps);
  test_remove_tree (fx->dir);
  g_free (fx->dir);
}

/* The core, with a core.conf that has it ask the responder. */
static void
start_core (Fixture *fx)
{
  const char *args[] = { "--no-idle-exit", g_test_verbose () ? "--verbose" : NULL, NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *cache = g_build_filename (fx->dir, "cache", NULL);
  g_autofree char *config = g_build_filename (fx->dir, "config", NULL);
  g_autofree char *alluvium = g_build_filename (config, "alluvium", NULL);
  g_autofree char *conf_path = g_build_filename (alluvium, "core.conf", NULL);
  g_autofree char *conf = g_strdup_printf ("[core]\nidle-timeout=0\npeer-address=127.0.0.1\n"
                                           "nat=natpmp\nnat-gateway=127.0.0.1:%u\n", fx->port);

  g_assert_cmpint (g_mkdir_with_parents (cache, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (alluvium, 0700), ==, 0);
  g_file_set_contents (conf_path, conf, -1, &error);
  g_assert_no_error (error);

  fx->bus = test_bus_up (NULL);
  fx->conn = g_dbus_connection_new_for_address_sync (
    test_bus_get_address (fx->bus),
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  fx->core = test_spawn_core (test_bus_get_address (fx->bus), cache, config, TRUE, args);
  test_wait_for_name (fx->conn, ALV_CORE_BUS_NAME, TRUE, WAIT_MS);
  fx->proxy = alv_core1_proxy_new_sync (fx->conn, G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                                        ALV_CORE_BUS_NAME, ALV_CORE_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
}

static const char *
statistic (Fixture    *fx,
           const char *key)
{
  GVariant *stats = alv_core1_get_statistics (fx->proxy);
  const char *value = NULL;

  if (stats == NULL || !g_variant_lookup (stats, key, "&s", &value))
    return NULL;
  return value;
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

  return g_strcmp0 (statistic (fx, "peer-port-mapping"), "natpmp") == 0 &&
         g_strcmp0 (statistic (fx, "peer-port-external"), EXTERNAL_ADDRESS ":40000") == 0;
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
  return statistic (data, "peer-port-mapping") != NULL;
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

  /* the responder granted 2 s: the renewal comes after about one */
  test_wait_until (maps_at_least, &two, WAIT_MS);
  renewal = g_array_index (fx->maps, MapRequest, 1);
  g_assert_cmpuint (renewal.internal_port, ==, first.internal_port);
  g_assert_cmpuint (renewal.suggested_port, ==, EXTERNAL_PORT);
  g_assert_cmpuint (renewal.lifetime, ==, 7200);
  g_assert_true (mapped (fx));

  /* stopping removes it */
  g_assert_true (test_subprocess_stop (fx->core, SIGTERM, WAIT_MS));
  g_assert_true (g_subprocess_get_if_exited (fx->core));
  g_assert_cmpint (g_subprocess_get_exit_status (fx->core), ==, 0);
  g_assert_true (removal_seen (fx));
  {
    const MapRequest *last = &g_array_index (fx->maps, MapRequest, fx->maps->len - 1);

    g_assert_cmpuint (last->internal_port, ==, first.internal_port);
    g_assert_cmpuint (last->suggested_port, ==, 0);
    g_assert_cmpuint (last->lifetime, ==, 0);
  }
  g_clear_object (&fx->core);
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
  g_assert_cmpstr (statistic (fx, "peer-port-mapping"), ==, "none");
  g_assert_cmpstr (statistic (fx, "peer-port-external"), ==, "");
  for (guint i = 0; i < fx->maps->len; i++)
    g_assert_cmpuint (g_array_index (fx->maps, MapRequest, i).lifetime, ==, 7200);
  /* it still serves its bus (a Stop with nothing tuned is refused) */
  {
    g_autoptr(GError) error = NULL;
    GQuark domain = ALV_CORE_ERROR;   /* registers the D-Bus error names */

    g_assert_false (alv_core1_call_stop_sync (fx->proxy, NULL, &error));
    g_assert_error (error, domain, ALV_CORE_ERROR_NOT_TUNED);
  }
  /* and exits promptly: the removal it sends is bounded */
  g_assert_true (test_subprocess_stop (fx->core, SIGTERM, WAIT_MS));
  g_assert_true (g_subprocess_get_if_exited (fx->core));
  g_assert_cmpint (g_subprocess_get_exit_status (fx->core), ==, 0);
  g_clear_object (&fx->core);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);
  g_test_add ("/core/nat/natpmp/map-renew-remove", Fixture, GINT_TO_POINTER (RESPOND_MAP),
              fixture_setup, test_map_renew_remove, fixture_teardown);
  g_test_add ("/core/nat/natpmp/garbage", Fixture, GINT_TO_POINTER (RESPOND_GARBAGE),
              fixture_setup, test_no_mapping, fixture_teardown);
  g_test_add ("/core/nat/natpmp/silent", Fixture, GINT_TO_POINTER (RESPOND_NOTHING),
              fixture_setup, test_no_mapping, fixture_teardown);
  return g_test_run ();
}
