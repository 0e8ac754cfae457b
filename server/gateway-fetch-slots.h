/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * How many hashing fetches run against each origin host, so that one
 * host is asked for at most a few files at once however many URLs
 * clients make up: a job takes a slot of its origin ("scheme://host:port",
 * gateway_url_origin_key()) when it starts and gives it back when it
 * ends; a new job is refused while the origin has none free.  Plain
 * counting: no sockets, no clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _GatewayFetchSlots GatewayFetchSlots;

/* The default of --max-fetches-per-origin: as many as the connections
 * the gateway keeps to one origin. */
#define GATEWAY_FETCH_SLOTS_PER_ORIGIN 4

/* @per_origin 0: no limit. */
GatewayFetchSlots *gateway_fetch_slots_new         (guint              per_origin);
void               gateway_fetch_slots_free        (GatewayFetchSlots *slots);
gboolean           gateway_fetch_slots_is_full     (GatewayFetchSlots *slots,
                                                    const char        *origin);
/* Counts a job of @origin, also beyond the limit (an operator's
 * Prepare is not refused). */
void               gateway_fetch_slots_take        (GatewayFetchSlots *slots,
                                                    const char        *origin);
void               gateway_fetch_slots_give_back   (GatewayFetchSlots *slots,
                                                    const char        *origin);
guint              gateway_fetch_slots_get_running (GatewayFetchSlots *slots,
                                                    const char        *origin);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayFetchSlots, gateway_fetch_slots_free)

G_END_DECLS
