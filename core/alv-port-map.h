/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The peer port mapped in the home router, so that peers on the Internet
 * can reach a listener behind NAT: PCP (RFC 6887), or NAT-PMP (RFC 6886)
 * when the router speaks only that, over a UDP socket to the default
 * gateway, and UPnP IGD through GUPnP-IGD when built with it; which are tried is the `nat` setting, the first to succeed wins.
 * A mapping is renewed at half its lifetime and removed by
 * alv_port_map_release_async() when the daemon exits.
 *
 * Runs on the thread-default main context it was created in; never
 * blocks.  Signal: "changed" whenever the mapping or the external address
 * changed.
 */
#pragma once

#include <gio/gio.h>

#include "alv-nat-policy.h"

G_BEGIN_DECLS

#define ALV_TYPE_PORT_MAP (alv_port_map_get_type ())
G_DECLARE_FINAL_TYPE (AlvPortMap, alv_port_map, ALV, PORT_MAP, GObject)

/* Maps TCP @local_port, as @setting says, once started. */
AlvPortMap     *alv_port_map_new               (AlvNatSetting         setting,
                                                guint16               local_port);
/* Asks @address:@port (PCP, NAT-PMP) instead of the default gateway (core.conf's
 * nat-gateway; the tests' own responder).  Before alv_port_map_start(). */
void            alv_port_map_set_router        (AlvPortMap           *map,
                                                const char           *address,
                                                guint16               port);
void            alv_port_map_start             (AlvPortMap           *map);
AlvPortMapping  alv_port_map_get_mapping       (AlvPortMap           *map);
/* The public port peers reach us on; 0 while there is no mapping. */
guint16         alv_port_map_get_external_port (AlvPortMap           *map);
/* "ADDRESS:PORT" ("*:PORT" while the router did not say its address);
 * %NULL while there is no mapping. */
char           *alv_port_map_dup_external      (AlvPortMap           *map);
/* Removes the mapping from the router and stops; completes when the
 * router confirmed it, or after a bounded wait (a few seconds). */
void            alv_port_map_release_async     (AlvPortMap           *map,
                                                GCancellable         *cancellable,
                                                GAsyncReadyCallback   callback,
                                                gpointer              user_data);
gboolean        alv_port_map_release_finish    (AlvPortMap           *map,
                                                GAsyncResult         *result,
                                                GError              **error);

G_END_DECLS
