/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The core's Statistics property (data/org.alluvium.Core1.xml): the
 * transfer rates smoothed from the byte totals, and the a{sv} built from
 * the figures the service gathers from its swarms, its peer port and its
 * port mapping.  Nothing here reads a clock or asks an object: the
 * service (core-service.c) gathers, once a second, and publishes.
 */
#pragma once

#include <glib.h>

#include "alv-nat-policy.h"
#include "alv-peer-server.h"
#include "alv-swarm.h"

G_BEGIN_DECLS

/**
 * CoreRates:
 * @down: bytes received per second, smoothed
 * @up: bytes uploaded per second, smoothed
 *
 * Zero-initialise; the other fields are the totals last seen.
 */
typedef struct
{
  double down;
  double up;
  guint64 last_down;
  guint64 last_up;
  gint64 last_time;
} CoreRates;

void core_rates_update (CoreRates *rates,
                        guint64    down,
                        guint64    up,
                        gint64     now);

/**
 * CoreStats:
 * @total: every swarm's totals since the daemon started, the stopped ones'
 *   included
 * @bytes_from_origin: read from the origin without a swarm (no gateway)
 * @peers: the peer port's figures (zero when it does not listen)
 * @rates: the smoothed rates
 * @mapping: how the router maps the peer port
 * @external: the public ADDRESS:PORT, or %NULL when not mapped
 * @item: the item playing, when @has_item
 * @has_item: an item is playing through a swarm
 */
typedef struct
{
  AlvSwarmStats total;
  guint64 bytes_from_origin;
  AlvPeerServerStats peers;
  CoreRates rates;
  AlvPortMapping mapping;
  const char *external;
  AlvSwarmStats item;
  gboolean has_item;
} CoreStats;

GVariant *core_stats_to_variant (const CoreStats *stats);

G_END_DECLS
