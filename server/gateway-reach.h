/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's connect-back policy: which announced peer ports to test
 * for reachability, when, and what is known of each.  A check only ever
 * targets the address the announce came from (the observed one) with the
 * port it announced; results are cached per address:port for a TTL so a
 * peer is tested at most once per TTL; at most a few checks run at once,
 * a bounded queue waits behind them, and an address has at most a few
 * checks queued or running (the gateway must not become a port scanner,
 * nor a flood of announces a flood of connects).  Plain state, time is an
 * input: the gateway (gateway-reach-check.c connects) and the swarm
 * simulator run the same rules.
 */
#pragma once

#include <gio/gio.h>

#include "alv-ocn-headers.h"

G_BEGIN_DECLS

typedef struct _GatewayReach GatewayReach;

/* Defaults: a result holds 10 min; 8 checks at once, 64 waiting, 2 per
 * address queued or running; 20000 results kept (the oldest go first). */
#define GATEWAY_REACH_TTL_S         600
#define GATEWAY_REACH_MAX_RUNNING   8
#define GATEWAY_REACH_MAX_QUEUED    64
#define GATEWAY_REACH_PER_ADDRESS   2
#define GATEWAY_REACH_MAX_RESULTS   20000

GatewayReach      *gateway_reach_new      (guint          ttl_seconds,
                                           guint          max_running,
                                           guint          max_queued,
                                           guint          per_address,
                                           guint          max_results);
void               gateway_reach_free     (GatewayReach  *reach);

/* An announce for @port came from @observed at @now (µs, monotonic):
 * returns what is known of @observed:@port.  When nothing fresh is known
 * and no check of it is queued or running, one is queued, unless the
 * queue or @observed's share of it is full (then the check is dropped:
 * the next announce asks again).  There is no way to name another
 * address: a check's target is @observed:@port. */
AlvReachable       gateway_reach_observe  (GatewayReach  *reach,
                                           GInetAddress  *observed,
                                           guint16        port,
                                           gint64         now);
/* The next check to start, or NULL when none waits or the running ones
 * are at their cap.  It counts as running until gateway_reach_done(). */
GInetSocketAddress *gateway_reach_next    (GatewayReach  *reach);
/* The check of @target (returned by gateway_reach_next()) ended at @now:
 * @reachable is whether a connection was set up. */
void               gateway_reach_done     (GatewayReach       *reach,
                                           GInetSocketAddress *target,
                                           gboolean            reachable,
                                           gint64              now);
/* What is known of @key ("ip:port", alv_alt_format_address()'s form) at
 * @now, checking nothing. */
AlvReachable       gateway_reach_lookup   (GatewayReach  *reach,
                                           const char    *key,
                                           gint64         now);
/* Drops results older than the TTL; returns how many. */
guint              gateway_reach_expire   (GatewayReach  *reach,
                                           gint64         now);
guint              gateway_reach_get_n_running (GatewayReach *reach);
guint              gateway_reach_get_n_queued  (GatewayReach *reach);
/* Checks ended since the start, with a connection (@reachable) or not. */
guint64            gateway_reach_get_n_results (GatewayReach *reach,
                                                gboolean      reachable);
/* Checks dropped because the queue (or an address's share) was full. */
guint64            gateway_reach_get_n_dropped (GatewayReach *reach);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayReach, gateway_reach_free)

G_END_DECLS
