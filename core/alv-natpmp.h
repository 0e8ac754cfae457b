/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * NAT-PMP (RFC 6886) on the wire: the requests a client sends to its
 * router (the external address; a TCP or UDP mapping, or its removal with
 * lifetime 0) and the replies it gets back, every length and field
 * checked, the result codes turned into errors a user can read; plus the
 * protocol's rules of time (when a reply's epoch says the router lost its
 * mappings).  Pure: no sockets, no clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the port a NAT-PMP server listens on, at the default gateway */
#define ALV_NATPMP_SERVER_PORT 5351
/* the largest request this module builds */
#define ALV_NATPMP_REQUEST_MAX 12
/* the lifetime RFC 6886 recommends for a mapping (s) */
#define ALV_NATPMP_DEFAULT_LIFETIME 7200

typedef enum
{
  ALV_NATPMP_OP_EXTERNAL_ADDRESS = 0,
  ALV_NATPMP_OP_MAP_UDP = 1,
  ALV_NATPMP_OP_MAP_TCP = 2,
} AlvNatpmpOpcode;

#define ALV_NATPMP_ERROR (alv_natpmp_error_quark ())
GQuark alv_natpmp_error_quark (void);

/* Why a reply is no use: the first ones are the router's own result codes
 * (RFC 6886 section 3.5), the last ones packets that are not a reply. */
typedef enum
{
  ALV_NATPMP_ERROR_UNSUPPORTED_VERSION = 1,
  ALV_NATPMP_ERROR_REFUSED = 2,
  ALV_NATPMP_ERROR_NETWORK_FAILURE = 3,
  ALV_NATPMP_ERROR_OUT_OF_RESOURCES = 4,
  ALV_NATPMP_ERROR_UNSUPPORTED_OPCODE = 5,
  ALV_NATPMP_ERROR_UNKNOWN_RESULT = 100,
  ALV_NATPMP_ERROR_MALFORMED,
  ALV_NATPMP_ERROR_UNEXPECTED,
} AlvNatpmpError;

/**
 * AlvNatpmpReply:
 * @opcode: the request's opcode the reply answers
 * @epoch: the router's seconds since its mappings were (re)started
 * @external_address: the public IPv4 address, network byte order
 *   (%ALV_NATPMP_OP_EXTERNAL_ADDRESS)
 * @internal_port: the local port of the mapping (map replies)
 * @external_port: the port mapped on the public side (map replies; 0 when
 *   a removal was confirmed)
 * @lifetime: seconds the mapping lasts (map replies; 0: removed)
 */
typedef struct
{
  AlvNatpmpOpcode opcode;
  guint32 epoch;
  guint8 external_address[4];
  guint16 internal_port;
  guint16 external_port;
  guint32 lifetime;
} AlvNatpmpReply;

/* The external address request into @buf; returns its length. */
gsize    alv_natpmp_build_external_address (guint8           buf[ALV_NATPMP_REQUEST_MAX]);
/* A mapping request (@opcode a MAP one) into @buf; @lifetime 0 removes
 * the mapping of @internal_port (then @suggested_external must be 0).
 * Returns its length. */
gsize    alv_natpmp_build_map              (guint8           buf[ALV_NATPMP_REQUEST_MAX],
                                            AlvNatpmpOpcode  opcode,
                                            guint16          internal_port,
                                            guint16          suggested_external,
                                            guint32          lifetime);
/* Parses a datagram from the router.  A result code other than success
 * sets the error it maps to (with @reply's opcode and epoch filled in);
 * a packet too short, of another version or not a reply sets
 * %ALV_NATPMP_ERROR_MALFORMED.  Bytes after the reply are ignored, as
 * routers that pad their answers are known. */
gboolean alv_natpmp_parse_reply            (const guint8    *data,
                                            gsize            len,
                                            AlvNatpmpReply  *reply,
                                            GError         **error);
/* Whether @reply answers a mapping request of @opcode for @internal_port
 * (%ALV_NATPMP_ERROR_UNEXPECTED otherwise: a late answer to another
 * request, or a router mixing up ports). */
gboolean alv_natpmp_check_map_reply        (const AlvNatpmpReply *reply,
                                            AlvNatpmpOpcode       opcode,
                                            guint16               internal_port,
                                            GError              **error);
/* RFC 6886 section 3.6: whether a router that said @prev_epoch at
 * @prev_time (client seconds) and now says @epoch at @now lost its state
 * (rebooted, or its public address changed), so that every mapping must
 * be asked for again at once.  Allows for the router's clock running
 * 1/8 slower than ours, and for 2 s of delay. */
gboolean alv_natpmp_epoch_was_reset        (guint32          prev_epoch,
                                            gint64           prev_time,
                                            guint32          epoch,
                                            gint64           now);

G_END_DECLS
