/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * GatewayCheckedAddress (see gateway-checked-address.h).  It re-implements
 * GSocketConnectable over GNetworkAddress: enumerate and proxy_enumerate
 * hand out the addresses set last, in order, and nothing else (the
 * gateway fetches without a proxy, so there is none to enumerate);
 * to_string and the hostname, which GTlsClientConnection takes as the
 * server identity for SNI and certificate checks, stay GNetworkAddress's.
 * An enumeration keeps the list it started with: setting a new one
 * replaces the list, it never changes one in use.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-checked-address.h"

struct _GatewayCheckedAddress
{
  GNetworkAddress parent_instance;
  GPtrArray *addresses;         /* GInetSocketAddress; replaced, never changed */
};

static void gateway_checked_address_connectable_init (GSocketConnectableIface *iface);

G_DEFINE_TYPE_WITH_CODE (GatewayCheckedAddress, gateway_checked_address, G_TYPE_NETWORK_ADDRESS,
                         G_IMPLEMENT_INTERFACE (G_TYPE_SOCKET_CONNECTABLE,
                                                gateway_checked_address_connectable_init))

/* ------------------------------------------------------------------ */
/* The enumerator                                                      */

#define GATEWAY_TYPE_CHECKED_ENUMERATOR (gateway_checked_enumerator_get_type ())
G_DECLARE_FINAL_TYPE (GatewayCheckedEnumerator, gateway_checked_enumerator, GATEWAY,
                      CHECKED_ENUMERATOR, GSocketAddressEnumerator)

struct _GatewayCheckedEnumerator
{
  GSocketAddressEnumerator parent_instance;
  GPtrArray *addresses;         /* GInetSocketAddress, shared */
  guint next;
};

G_DEFINE_TYPE (GatewayCheckedEnumerator, gateway_checked_enumerator,
               G_TYPE_SOCKET_ADDRESS_ENUMERATOR)

/* GSocketAddressEnumerator's next_async runs this one: it never blocks */
static GSocketAddress *
gateway_checked_enumerator_next (GSocketAddressEnumerator *enumerator,
                                 GCancellable             *cancellable,
                                 GError                  **error)
{
  GatewayCheckedEnumerator *self = GATEWAY_CHECKED_ENUMERATOR (enumerator);

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;
  if (self->next >= self->addresses->len)
    return NULL;
  return g_object_ref (self->addresses->pdata[self->next++]);
}

static void
gateway_checked_enumerator_finalize (GObject *object)
{
  GatewayCheckedEnumerator *self = GATEWAY_CHECKED_ENUMERATOR (object);

  g_clear_pointer (&self->addresses, g_ptr_array_unref);
  G_OBJECT_CLASS (gateway_checked_enumerator_parent_class)->finalize (object);
}

static void
gateway_checked_enumerator_class_init (GatewayCheckedEnumeratorClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gateway_checked_enumerator_finalize;
  G_SOCKET_ADDRESS_ENUMERATOR_CLASS (klass)->next = gateway_checked_enumerator_next;
}

static void
gateway_checked_enumerator_init (GatewayCheckedEnumerator *self G_GNUC_UNUSED)
{
}

/* ------------------------------------------------------------------ */
/* The address                                                         */

static GSocketAddressEnumerator *
gateway_checked_address_enumerate (GSocketConnectable *connectable)
{
  GatewayCheckedAddress *self = GATEWAY_CHECKED_ADDRESS (connectable);
  GatewayCheckedEnumerator *enumerator = g_object_new (GATEWAY_TYPE_CHECKED_ENUMERATOR, NULL);

  enumerator->addresses = g_ptr_array_ref (self->addresses);
  return G_SOCKET_ADDRESS_ENUMERATOR (enumerator);
}

static void
gateway_checked_address_connectable_init (GSocketConnectableIface *iface)
{
  /* the vtable starts as GNetworkAddress's: to_string stays */
  iface->enumerate = gateway_checked_address_enumerate;
  iface->proxy_enumerate = gateway_checked_address_enumerate;
}

static void
gateway_checked_address_finalize (GObject *object)
{
  GatewayCheckedAddress *self = GATEWAY_CHECKED_ADDRESS (object);

  g_clear_pointer (&self->addresses, g_ptr_array_unref);
  G_OBJECT_CLASS (gateway_checked_address_parent_class)->finalize (object);
}

static void
gateway_checked_address_class_init (GatewayCheckedAddressClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = gateway_checked_address_finalize;
}

static void
gateway_checked_address_init (GatewayCheckedAddress *self)
{
  self->addresses = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * gateway_checked_address_new:
 * @hostname: the name the addresses will be of (for TLS and for people)
 * @port: the port to connect to
 * @scheme: (nullable): the URLs' scheme
 *
 * Returns: (transfer full): a connectable that enumerates nothing until
 *   gateway_checked_address_set_addresses() is called
 */
GatewayCheckedAddress *
gateway_checked_address_new (const char *hostname,
                             guint16     port,
                             const char *scheme)
{
  g_return_val_if_fail (hostname != NULL, NULL);

  return g_object_new (GATEWAY_TYPE_CHECKED_ADDRESS, "hostname", hostname, "port", (guint) port,
                       "scheme", scheme, NULL);
}

/**
 * gateway_checked_address_set_addresses:
 * @self: a #GatewayCheckedAddress
 * @addresses: (element-type GInetAddress): the addresses to connect to
 *   from now on, in order of preference, each checked by the caller
 *
 * Enumerations started after this yield @addresses at the port of @self
 * and nothing else; those already running keep the list they had.
 */
void
gateway_checked_address_set_addresses (GatewayCheckedAddress *self,
                                       GPtrArray             *addresses)
{
  GPtrArray *list;
  guint16 port;

  g_return_if_fail (GATEWAY_IS_CHECKED_ADDRESS (self));
  g_return_if_fail (addresses != NULL);

  port = g_network_address_get_port (G_NETWORK_ADDRESS (self));
  list = g_ptr_array_new_full (addresses->len, g_object_unref);
  for (guint i = 0; i < addresses->len; i++)
    g_ptr_array_add (list, g_inet_socket_address_new (addresses->pdata[i], port));
  g_ptr_array_unref (self->addresses);
  self->addresses = list;
}
