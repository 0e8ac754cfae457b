/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Token buckets, one per client key (an address): each holds at most
 * @burst tokens, refills at @per_second, and every costly thing a client
 * does takes one.  The gateway keeps two tables: one for requests
 * (--rate-limit, --rate-burst) and one for URLs it has to fetch and hash
 * anew (--new-url-rate, --new-url-burst).  Plain state, time is an input
 * (monotonic µs): no sockets, no clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _GatewayBudget GatewayBudget;

/* At most this many keys are tracked; beyond, the table starts afresh
 * (every key full again) rather than grow. */
#define GATEWAY_BUDGET_MAX_KEYS 100000

/* @per_second 0: no limit, every take succeeds. */
GatewayBudget *gateway_budget_new        (double          per_second,
                                          guint           burst,
                                          guint           max_keys);
void           gateway_budget_free       (GatewayBudget  *budget);
gboolean       gateway_budget_take       (GatewayBudget  *budget,
                                          const char     *key,
                                          gint64          now,
                                          guint          *retry_after);
void           gateway_budget_expire     (GatewayBudget  *budget,
                                          gint64          now);
guint          gateway_budget_get_n_keys (GatewayBudget  *budget);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayBudget, gateway_budget_free)

G_END_DECLS
