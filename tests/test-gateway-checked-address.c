/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of GatewayCheckedAddress (server/gateway-checked-address.c):
 * whatever its host name resolves to, it enumerates the addresses it was
 * given and nothing else, an enumeration keeps the list it started with,
 * and it is still a GNetworkAddress of the name (TLS takes the server
 * identity from that).  No sockets: enumeration with a fixed list never
 * asks DNS.
 */
#include "config.h"

#include <gio/gio.h>

#include "gateway-checked-address.h"

static GPtrArray *
addresses (const char *first,
           ...)
{
  GPtrArray *list = g_ptr_array_new_with_free_func (g_object_unref);
  va_list args;

  va_start (args, first);
  for (const char *a = first; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (list, g_inet_address_new_from_string (a));
  va_end (args);
  return list;
}

/* The next address of @e as "ip:port", or NULL at the end. */
static char *
next_text (GSocketAddressEnumerator *e)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketAddress) a = g_socket_address_enumerator_next (e, NULL, &error);
  g_autofree char *ip = NULL;

  g_assert_no_error (error);
  if (a == NULL)
    return NULL;
  g_assert_true (G_IS_INET_SOCKET_ADDRESS (a));
  ip = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (a)));
  return g_strdup_printf ("%s:%u", ip, g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (a)));
}

static void
check_next (GSocketAddressEnumerator *e,
            const char               *expected)
{
  g_autofree char *text = next_text (e);

  g_assert_cmpstr (text, ==, expected);
}

static void
test_enumerate (void)
{
  /* "localhost" resolves to loopback: none of that is enumerated */
  g_autoptr(GatewayCheckedAddress) checked = gateway_checked_address_new ("localhost", 8443,
                                                                          "https");
  GSocketConnectable *connectable = G_SOCKET_CONNECTABLE (checked);
  g_autoptr(GPtrArray) first = addresses ("192.0.2.1", "2001:db8::7", NULL);
  g_autoptr(GPtrArray) second = addresses ("198.51.100.2", NULL);
  g_autoptr(GSocketAddressEnumerator) empty = g_socket_connectable_enumerate (connectable);
  g_autoptr(GSocketAddressEnumerator) e1 = NULL;
  g_autoptr(GSocketAddressEnumerator) p1 = NULL;
  g_autoptr(GSocketAddressEnumerator) e2 = NULL;
  g_autoptr(GSocketConnectable) plain = g_object_new (G_TYPE_NETWORK_ADDRESS, "hostname", "localhost",
                                                      "port", 8443, "scheme", "https", NULL);
  g_autofree char *text = g_socket_connectable_to_string (connectable);
  g_autofree char *plain_text = g_socket_connectable_to_string (plain);

  g_assert_true (G_IS_NETWORK_ADDRESS (checked));
  g_assert_cmpstr (g_network_address_get_hostname (G_NETWORK_ADDRESS (checked)), ==, "localhost");
  g_assert_cmpuint (g_network_address_get_port (G_NETWORK_ADDRESS (checked)), ==, 8443);
  g_assert_cmpstr (g_network_address_get_scheme (G_NETWORK_ADDRESS (checked)), ==, "https");
  /* GNetworkAddress's own to_string */
  g_assert_cmpstr (text, ==, plain_text);

  check_next (empty, NULL);

  gateway_checked_address_set_addresses (checked, first);
  e1 = g_socket_connectable_enumerate (connectable);
  p1 = g_socket_connectable_proxy_enumerate (connectable);
  check_next (e1, "192.0.2.1:8443");
  /* a new list does not change an enumeration already running */
  gateway_checked_address_set_addresses (checked, second);
  check_next (e1, "2001:db8::7:8443");
  check_next (e1, NULL);
  check_next (p1, "192.0.2.1:8443");
  check_next (p1, "2001:db8::7:8443");
  check_next (p1, NULL);

  e2 = g_socket_connectable_enumerate (connectable);
  check_next (e2, "198.51.100.2:8443");
  check_next (e2, NULL);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/server/gateway-checked-address/enumerate", test_enumerate);
  return g_test_run ();
}
