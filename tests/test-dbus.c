/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of the org.alluvium.Core1 glue on a private session bus: the
 * generated skeleton and proxy talk to each other, properties propagate with
 * PropertiesChanged, and the typed errors survive the trip across the bus.
 */
#include "config.h"

#include <gio/gio.h>

#include "alv-dbus.h"
#include "test-bus.h"
#include "test-util.h"

typedef struct
{
  TestBus *bus;
  GDBusConnection *service_conn;
  GDBusConnection *client_conn;
  AlvCore1 *skeleton;
  AlvCore1 *proxy;
  char *last_tuned;
  GThread *thread;
} Fixture;

static gboolean
on_handle_tune (AlvCore1 *object,
                GDBusMethodInvocation *invocation,
                const char *playlist_url,
                gpointer user_data)
{
  Fixture *fx = user_data;

  if (!g_str_has_prefix (playlist_url, "http://") && !g_str_has_prefix (playlist_url, "https://"))
    {
      g_dbus_method_invocation_return_error (invocation, ALV_CORE_ERROR,
                                             ALV_CORE_ERROR_INVALID_URL,
                                             "not an http(s) URL: %s", playlist_url);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_free (fx->last_tuned);
  fx->last_tuned = g_strdup (playlist_url);
  alv_core1_set_station (object, playlist_url);
  alv_core1_set_state (object, alv_core_state_to_string (ALV_CORE_STATE_RESOLVING));
  alv_core1_complete_tune (object, invocation, "http://127.0.0.1:8000/stream");
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_stop (AlvCore1 *object,
                GDBusMethodInvocation *invocation,
                gpointer user_data G_GNUC_UNUSED)
{
  if (alv_core1_get_station (object)[0] == '\0')
    {
      g_dbus_method_invocation_return_error_literal (invocation, ALV_CORE_ERROR,
                                                     ALV_CORE_ERROR_NOT_TUNED,
                                                     "nothing is tuned");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  alv_core1_set_station (object, "");
  alv_core1_set_state (object, alv_core_state_to_string (ALV_CORE_STATE_IDLE));
  alv_core1_complete_stop (object, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* The service runs in a thread of its own with its own main context, as
 * alluvium-core runs in a process of its own: the client's synchronous calls
 * below would otherwise wait on a skeleton that cannot run. */
typedef struct
{
  char *address;
  GMainContext *context;
  GMainLoop *loop;
  Fixture *fx;
  GMutex lock;
  GCond cond;
  gboolean ready;
} Service;

static Service service;

static gpointer
service_thread (gpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  Fixture *fx = service.fx;

  g_main_context_push_thread_default (service.context);
  fx->service_conn = g_dbus_connection_new_for_address_sync (
    service.address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);

  fx->skeleton = alv_core1_skeleton_new ();
  alv_core1_set_station (fx->skeleton, "");
  alv_core1_set_state (fx->skeleton, alv_core_state_to_string (ALV_CORE_STATE_IDLE));
  g_signal_connect (fx->skeleton, "handle-tune", G_CALLBACK (on_handle_tune), fx);
  g_signal_connect (fx->skeleton, "handle-stop", G_CALLBACK (on_handle_stop), fx);
  g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (fx->skeleton),
                                    fx->service_conn, ALV_CORE_OBJECT_PATH, &error);
  g_assert_no_error (error);

  g_mutex_lock (&service.lock);
  service.ready = TRUE;
  g_cond_signal (&service.cond);
  g_mutex_unlock (&service.lock);

  g_main_loop_run (service.loop);

  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (fx->skeleton));
  g_clear_object (&fx->skeleton);
  g_dbus_connection_close_sync (fx->service_conn, NULL, NULL);
  g_clear_object (&fx->service_conn);
  g_main_context_pop_thread_default (service.context);
  return NULL;
}

static void
fixture_setup (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  fx->bus = test_bus_up (NULL);

  service.address = g_strdup (test_bus_get_address (fx->bus));
  service.context = g_main_context_new ();
  service.loop = g_main_loop_new (service.context, FALSE);
  service.fx = fx;
  service.ready = FALSE;
  g_mutex_init (&service.lock);
  g_cond_init (&service.cond);
  fx->thread = g_thread_new ("service", service_thread, NULL);
  g_mutex_lock (&service.lock);
  while (!service.ready)
    g_cond_wait (&service.cond, &service.lock);
  g_mutex_unlock (&service.lock);

  fx->client_conn = g_dbus_connection_new_for_address_sync (
    service.address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  fx->proxy = alv_core1_proxy_new_sync (fx->client_conn, G_DBUS_PROXY_FLAGS_NONE,
                                        g_dbus_connection_get_unique_name (fx->service_conn),
                                        ALV_CORE_OBJECT_PATH, NULL, &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_clear_object (&fx->proxy);
  g_dbus_connection_close_sync (fx->client_conn, NULL, NULL);
  g_clear_object (&fx->client_conn);
  g_main_loop_quit (service.loop);
  g_thread_join (fx->thread);
  g_clear_pointer (&service.loop, g_main_loop_unref);
  g_clear_pointer (&service.context, g_main_context_unref);
  g_clear_pointer (&service.address, g_free);
  g_mutex_clear (&service.lock);
  g_cond_clear (&service.cond);
  g_clear_pointer (&fx->bus, test_bus_down);
  g_clear_pointer (&fx->last_tuned, g_free);
}

static void
on_properties_changed (GDBusProxy *proxy G_GNUC_UNUSED,
                       GVariant *changed,
                       GStrv invalidated G_GNUC_UNUSED,
                       gpointer user_data)
{
  guint *n_state_changes = user_data;

  g_autoptr(GVariant) state = g_variant_lookup_value (changed, "State", NULL);

  if (state != NULL)
    (*n_state_changes)++;
}

typedef struct
{
  guint *counter;
  guint before;
} ChangeWait;

static gboolean
changed_cond (gpointer data)
{
  ChangeWait *w = data;

  return *w->counter != w->before;
}

/* Runs the default context until @counter moves past @before, for at most
 * five seconds. */
static void
wait_for_change (guint *counter, guint before)
{
  ChangeWait w = { counter, before };

  test_wait_until (changed_cond, &w, 5000);
}

static void
test_tune_and_properties (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  guint n_changes = 0;

  g_signal_connect (fx->proxy, "g-properties-changed", G_CALLBACK (on_properties_changed), &n_changes);
  g_assert_cmpstr (alv_core1_get_state (fx->proxy), ==, "idle");

  g_assert_true (alv_core1_call_tune_sync (fx->proxy, "http://127.0.0.1:1/station.rss",
                                           &stream_url, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (stream_url, ==, "http://127.0.0.1:8000/stream");
  g_assert_cmpstr (fx->last_tuned, ==, "http://127.0.0.1:1/station.rss");

  /* the skeleton flushes property changes from an idle; the proxy sees them */
  if (g_strcmp0 (alv_core1_get_state (fx->proxy), "resolving") != 0)
    wait_for_change (&n_changes, 0);
  g_assert_cmpstr (alv_core1_get_state (fx->proxy), ==, "resolving");
  g_assert_cmpstr (alv_core1_get_station (fx->proxy), ==, "http://127.0.0.1:1/station.rss");

  g_assert_true (alv_core1_call_stop_sync (fx->proxy, NULL, &error));
  g_assert_no_error (error);
  {
    guint before = n_changes;
    if (g_strcmp0 (alv_core1_get_state (fx->proxy), "idle") != 0)
      wait_for_change (&n_changes, before);
  }
  g_assert_cmpstr (alv_core1_get_state (fx->proxy), ==, "idle");
}

static void
test_typed_errors (Fixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *stream_url = NULL;
  g_autofree char *remote = NULL;

  g_assert_false (alv_core1_call_tune_sync (fx->proxy, "file:///etc/passwd", &stream_url, NULL, &error));
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_INVALID_URL);
  g_assert_null (stream_url);
  /* mapped back to our domain, and the wire name is still recoverable */
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, "org.alluvium.Core1.Error.InvalidUrl");
  g_assert_true (g_dbus_error_strip_remote_error (error));
  g_assert_cmpstr (error->message, ==, "not an http(s) URL: file:///etc/passwd");
  g_clear_error (&error);

  g_assert_false (alv_core1_call_stop_sync (fx->proxy, NULL, &error));
  g_assert_error (error, ALV_CORE_ERROR, ALV_CORE_ERROR_NOT_TUNED);
  g_clear_error (&error);

  /* and the name on the wire is the documented one */
  {
    g_autoptr(GError) e = g_error_new_literal (ALV_CORE_ERROR, ALV_CORE_ERROR_PLAYLIST_INVALID, "x");
    g_autofree char *name = g_dbus_error_encode_gerror (e);
    g_assert_cmpstr (name, ==, "org.alluvium.Core1.Error.PlaylistInvalid");
  }
}

static void
test_state_names (void)
{
  AlvCoreState s;

  for (guint i = ALV_CORE_STATE_IDLE; i <= ALV_CORE_STATE_ERROR; i++)
    {
      g_assert_true (alv_core_state_from_string (alv_core_state_to_string (i), &s));
      g_assert_cmpuint (s, ==, i);
    }
  g_assert_false (alv_core_state_from_string ("Playing", &s));
  g_assert_false (alv_core_state_from_string ("", &s));
  g_assert_false (alv_core_state_from_string (NULL, &s));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/common/dbus/state-names", test_state_names);
  g_test_add ("/common/dbus/tune-and-properties", Fixture, NULL,
              fixture_setup, test_tune_and_properties, fixture_teardown);
  g_test_add ("/common/dbus/typed-errors", Fixture, NULL,
              fixture_setup, test_typed_errors, fixture_teardown);
  return g_test_run ();
}
