/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A host name whose addresses were already looked up and checked: a
 * GNetworkAddress (so TLS still sends and verifies the name) that
 * enumerates only the addresses it was last given, never asking DNS
 * itself.  Given to a SoupSession as its remote-connectable, it makes
 * libsoup connect to those addresses and no others.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define GATEWAY_TYPE_CHECKED_ADDRESS (gateway_checked_address_get_type ())
G_DECLARE_FINAL_TYPE (GatewayCheckedAddress, gateway_checked_address, GATEWAY, CHECKED_ADDRESS,
                      GNetworkAddress)

GatewayCheckedAddress *gateway_checked_address_new           (const char            *hostname,
                                                              guint16                port,
                                                              const char            *scheme);
void                   gateway_checked_address_set_addresses (GatewayCheckedAddress *self,
                                                              GPtrArray             *addresses);

G_END_DECLS
