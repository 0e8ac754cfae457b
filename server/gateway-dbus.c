/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * org.alluvium.Gateway1 on the bus named by --dbus.  The interface is
 * small enough to export with a hand-written vtable over the
 * introspection data below (kept identical to
 * data/org.alluvium.Gateway1.xml, which documents it); Prepare() only
 * starts jobs and returns at once, so the admin never waits on hashing.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-dbus.h"

#include <string.h>

#define GATEWAY_DBUS_NAME "org.alluvium.Gateway1"
#define GATEWAY_DBUS_PATH "/org/alluvium/Gateway1"
#define MAX_PREPARE_URLS 10000

static const char introspection_xml[] =
  "<node>"
  "  <interface name='org.alluvium.Gateway1'>"
  "    <method name='Prepare'>"
  "      <arg name='urls' type='as' direction='in'/>"
  "      <arg name='refused' type='a{ss}' direction='out'/>"
  "    </method>"
  "    <property name='Statistics' type='a{st}' access='read'/>"
  "    <property name='Url' type='s' access='read'/>"
  "  </interface>"
  "</node>";

struct _GatewayDbus
{
  GatewayServer *server;
  GDBusNodeInfo *info;
  guint owner_id;
  guint registration_id;
  GDBusConnection *connection;
};

static void
method_call (GDBusConnection       *connection G_GNUC_UNUSED,
             const char            *sender G_GNUC_UNUSED,
             const char            *object_path G_GNUC_UNUSED,
             const char            *interface_name G_GNUC_UNUSED,
             const char            *method_name,
             GVariant              *parameters,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  GatewayDbus *dbus = user_data;
  g_autofree const char **urls = NULL;
  GVariantBuilder refused;
  gsize n;

  if (strcmp (method_name, "Prepare") != 0)
    {
      g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                             "no method %s", method_name);
      return;
    }
  g_variant_get (parameters, "(^a&s)", &urls);
  n = urls ? g_strv_length ((char **) urls) : 0;
  if (n > MAX_PREPARE_URLS)
    {
      g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_LIMITS_EXCEEDED,
                                             "at most %d URLs per call", MAX_PREPARE_URLS);
      return;
    }
  g_variant_builder_init (&refused, G_VARIANT_TYPE ("a{ss}"));
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;

      if (!gateway_server_prepare (dbus->server, urls[i], &error))
        g_variant_builder_add (&refused, "{ss}", urls[i], error->message);
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(a{ss})", &refused));
}

static GVariant *
get_property (GDBusConnection *connection G_GNUC_UNUSED,
              const char      *sender G_GNUC_UNUSED,
              const char      *object_path G_GNUC_UNUSED,
              const char      *interface_name G_GNUC_UNUSED,
              const char      *property_name,
              GError         **error,
              gpointer         user_data)
{
  GatewayDbus *dbus = user_data;

  if (strcmp (property_name, "Url") == 0)
    return g_variant_new_string (gateway_server_get_url (dbus->server));
  if (strcmp (property_name, "Statistics") == 0)
    {
      const GatewayStats *s = gateway_server_get_stats (dbus->server);
      GVariantBuilder b;

      g_variant_builder_init (&b, G_VARIANT_TYPE ("a{st}"));
      g_variant_builder_add (&b, "{st}", "requests", s->requests);
      g_variant_builder_add (&b, "{st}", "resolves", s->resolves);
      g_variant_builder_add (&b, "{st}", "resolves-immediate", s->resolves_immediate);
      g_variant_builder_add (&b, "{st}", "accepted", s->accepted);
      g_variant_builder_add (&b, "{st}", "fetches", s->fetches);
      g_variant_builder_add (&b, "{st}", "revalidations", s->revalidations);
      g_variant_builder_add (&b, "{st}", "bytes-fetched", s->bytes_fetched);
      g_variant_builder_add (&b, "{st}", "files-hashed", s->files_hashed);
      g_variant_builder_add (&b, "{st}", "announces", s->announces);
      g_variant_builder_add (&b, "{st}", "refusals", s->refusals);
      g_variant_builder_add (&b, "{st}", "bytes-served", s->bytes_served);
      g_variant_builder_add (&b, "{st}", "entries", (guint64) gateway_server_get_n_entries (dbus->server));
      g_variant_builder_add (&b, "{st}", "peers", (guint64) gateway_server_get_n_peers (dbus->server));
      g_variant_builder_add (&b, "{st}", "peers-evicted", s->peers_evicted);
      g_variant_builder_add (&b, "{st}", "reachable", s->reachable);
      g_variant_builder_add (&b, "{st}", "unreachable", s->unreachable);
      g_variant_builder_add (&b, "{st}", "reach-dropped", s->reach_dropped);
      g_variant_builder_add (&b, "{st}", "urls-evicted", s->urls_evicted);
      g_variant_builder_add (&b, "{st}", "new-urls-refused", s->new_urls_refused);
      g_variant_builder_add (&b, "{st}", "origin-busy", s->origin_busy);
      g_variant_builder_add (&b, "{st}", "jobs", (guint64) gateway_server_get_n_jobs (dbus->server));
      return g_variant_builder_end (&b);
    }
  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", property_name);
  return NULL;
}

static const GDBusInterfaceVTable vtable = { method_call, get_property, NULL, { 0 } };

static void
bus_acquired_cb (GDBusConnection *connection,
                 const char      *name G_GNUC_UNUSED,
                 gpointer         user_data)
{
  GatewayDbus *dbus = user_data;
  g_autoptr(GError) error = NULL;

  dbus->connection = g_object_ref (connection);
  dbus->registration_id = g_dbus_connection_register_object (connection, GATEWAY_DBUS_PATH,
                                                             dbus->info->interfaces[0],
                                                             &vtable, dbus, NULL, &error);
  if (dbus->registration_id == 0)
    g_warning ("cannot export %s: %s", GATEWAY_DBUS_PATH, error->message);
}

static void
name_lost_cb (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data G_GNUC_UNUSED)
{
  if (connection == NULL)
    g_message ("no D-Bus connection: the admin interface is not available");
  else
    g_message ("the D-Bus name %s is not ours: another gateway has it, or the bus does not "
               "let this user own it (on the system bus only the user alluvium-gateway may)", name);
}

GatewayDbus *
gateway_dbus_new (GatewayServer *server,
                  GBusType       bus_type)
{
  GatewayDbus *dbus = g_new0 (GatewayDbus, 1);

  g_autoptr(GError) error = NULL;

  dbus->server = server;
  dbus->info = g_dbus_node_info_new_for_xml (introspection_xml, &error);
  if (dbus->info == NULL)
    {
      g_warning ("bad introspection data: %s", error->message);
      return dbus;
    }
  dbus->owner_id = g_bus_own_name (bus_type, GATEWAY_DBUS_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
                                   bus_acquired_cb, NULL, name_lost_cb, dbus, NULL);
  return dbus;
}

void
gateway_dbus_free (GatewayDbus *dbus)
{
  if (dbus == NULL)
    return;
  if (dbus->registration_id != 0)
    g_dbus_connection_unregister_object (dbus->connection, dbus->registration_id);
  g_clear_handle_id (&dbus->owner_id, g_bus_unown_name);
  g_clear_object (&dbus->connection);
  g_clear_pointer (&dbus->info, g_dbus_node_info_unref);
  g_free (dbus);
}
