/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's connect-back checks: the mechanics beside the policy of
 * gateway-reach.c.  Each check is an asynchronous TCP connect (no proxy,
 * no bytes sent) to the observed address and announced port, given up
 * after a short timeout; the main loop never waits on one.
 */
#pragma once

#include <gio/gio.h>

#include "gateway-reach.h"

G_BEGIN_DECLS

typedef struct _GatewayReachCheck GatewayReachCheck;

/* Takes @reach over; @timeout_ms bounds each connect. */
GatewayReachCheck *gateway_reach_check_new     (GatewayReach      *reach,
                                                guint              timeout_ms);
/* Cancels the checks running. */
void               gateway_reach_check_free    (GatewayReachCheck *check);
/* gateway_reach_observe() at the monotonic clock, then starts what the
 * policy lets start. */
AlvReachable  gateway_reach_check_observe (GatewayReachCheck *check,
                                                GInetAddress      *observed,
                                                guint16            port);
/* What is known of @key ("ip:port") now. */
AlvReachable  gateway_reach_check_lookup  (GatewayReachCheck *check,
                                                const char        *key);
/* The policy, for its counters. */
GatewayReach      *gateway_reach_check_get_policy (GatewayReachCheck *check);
/* Drops stale results (the gateway's periodic sweep). */
void               gateway_reach_check_expire  (GatewayReachCheck *check);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayReachCheck, gateway_reach_check_free)

G_END_DECLS
