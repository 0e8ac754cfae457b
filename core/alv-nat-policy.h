/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The decisions of port mapping, apart from its sockets and timers
 * (alv-port-map.c): which methods the `nat` setting tries, what the
 * Statistics call the method that won, where the default gateway is
 * (from the text of /proc/net/route), whether the router's external
 * address is public, when a request is sent again and when a mapping is
 * renewed.  Pure: no sockets, no clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the `nat` key of core.conf */
typedef enum
{
  ALV_NAT_OFF,
  ALV_NAT_AUTO,
  ALV_NAT_UPNP,
  ALV_NAT_NATPMP,       /* PCP, or NAT-PMP when the router speaks only that */
} AlvNatSetting;

/* how the peer port is mapped (the Statistics' peer-port-mapping) */
typedef enum
{
  ALV_PORT_MAPPING_NONE,
  ALV_PORT_MAPPING_NATPMP,
  ALV_PORT_MAPPING_PCP,
  ALV_PORT_MAPPING_UPNP,
} AlvPortMapping;

/* sends of one NAT-PMP request before it is given up (RFC 6886: 9) */
#define ALV_NAT_MAX_SENDS 9
/* sends of a PCP request before a router that does not answer is asked
 * with NAT-PMP instead (one that answers "unsupported version" is at
 * once) */
#define ALV_NAT_PCP_SENDS 2
/* sends of the removal at exit: the daemon does not wait a minute */
#define ALV_NAT_RELEASE_SENDS 3
/* the soonest a mapping is renewed (ms) */
#define ALV_NAT_RENEW_FLOOR_MS 60000

gboolean    alv_nat_setting_parse      (const char     *text,
                                        AlvNatSetting  *setting);
const char *alv_nat_setting_to_string  (AlvNatSetting   setting);
/* Whether @setting tries @method (auto: NAT-PMP and UPnP, the first to
 * succeed wins). */
gboolean    alv_nat_setting_tries      (AlvNatSetting   setting,
                                        AlvPortMapping  method);
const char *alv_port_mapping_to_string (AlvPortMapping  mapping);

/* The default route's gateway in @route_text (the contents of
 * /proc/net/route: hexadecimal addresses as the kernel prints them), the
 * one of lowest metric, as a dotted IPv4 address; %NULL with @error set
 * when there is none or the text is not that table. */
char       *alv_nat_parse_default_gateway (const char  *route_text,
                                           GError     **error);
/* The router named in core.conf's `nat-gateway` (tests name their own
 * responder there): "ADDRESS" or "ADDRESS:PORT", an IPv4 address;
 * the port defaults to @default_port. */
gboolean    alv_nat_parse_router       (const char     *text,
                                        guint16         default_port,
                                        char          **address,
                                        guint16        *port,
                                        GError        **error);
/* Whether @address (dotted IPv4), the router's external address, is one
 * peers can reach: not private (10/8, 172.16/12, 192.168/16), shared
 * (100.64/10, carrier-grade NAT), loopback, link-local, "this network"
 * (0/8), multicast, reserved or broadcast (224/3).  A router whose
 * external address is one of those is itself behind another NAT, and a
 * mapping on it does not make the peer port reachable. */
gboolean    alv_nat_external_address_usable (const char *address);
/* How long (ms) to wait for an answer after the @sends-th send (1 is the
 * first) of a request: 250 ms, doubling (RFC 6886 3.1); 0 once @max_sends
 * went unanswered. */
guint       alv_nat_retry_delay_ms     (guint           sends,
                                        guint           max_sends);
/* When (ms after it was granted) a mapping of @lifetime seconds is asked
 * for again: at half its life (RFC 6886 3.3); a shorter grant than twice
 * @floor_ms (%ALV_NAT_RENEW_FLOOR_MS) is renewed at @floor_ms or at three
 * quarters of its life, whichever comes first (never after it lapses, and
 * a router granting seconds is not asked every few of them); never sooner
 * than 500 ms. */
guint64     alv_nat_renew_delay_ms     (guint32         lifetime,
                                        guint64         floor_ms);

G_END_DECLS
