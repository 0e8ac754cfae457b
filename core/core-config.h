/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * alluvium-core's configuration (core.conf); see core-config.c.
 */
#pragma once

#include <glib.h>

#include "alv-nat-policy.h"

G_BEGIN_DECLS

/* seconds without a station before an activated daemon exits */
#define CORE_DEFAULT_IDLE_TIMEOUT 60
/* the gateway setting that turns swarming off (every item from its origin) */
#define CORE_GATEWAY_NONE "none"

typedef struct
{
  guint16 stream_port;    /* 0: any free port */
  guint16 peer_port;      /* 0: any free port */
  guint64 upload_limit;   /* bytes per second, 0: unlimited */
  guint64 cache_size;     /* bytes */
  guint idle_timeout;     /* seconds, 0: never exit */
  char *gateway;          /* gateway base URL, CORE_GATEWAY_NONE, or NULL: the station's own */
  char *peer_address;     /* IP address the peer port listens on */
  guint peer_connections_per_address;
  AlvNatSetting nat;      /* how the peer port is mapped in the router */
  char *nat_gateway;      /* the NAT-PMP router ("ADDRESS[:PORT]"), NULL: the default gateway */
} CoreConfig;

void     core_config_init  (CoreConfig  *config);
void     core_config_clear (CoreConfig  *config);
gboolean core_config_load  (CoreConfig  *config,
                            const char  *path,
                            GError     **error);
char    *core_config_default_path (void);

G_END_DECLS
