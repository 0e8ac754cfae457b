/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's optional D-Bus admin interface, org.alluvium.Gateway1 at
 * /org/alluvium/Gateway1 (data/org.alluvium.Gateway1.xml): Prepare(as)
 * starts hashing URLs ahead of their slots, and read-only properties
 * expose the gateway's counters.
 */
#pragma once

#include <gio/gio.h>

#include "gateway-server.h"

G_BEGIN_DECLS

typedef struct _GatewayDbus GatewayDbus;

/* Owns the name org.alluvium.Gateway1 on @bus_type; @server must outlive
 * the result. */
GatewayDbus *gateway_dbus_new  (GatewayServer *server,
                                GBusType       bus_type);
void         gateway_dbus_free (GatewayDbus   *dbus);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayDbus, gateway_dbus_free)

G_END_DECLS
