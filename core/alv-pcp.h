/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * PCP (RFC 6887) MAP on the wire, for an IPv4 TCP port: the request (the
 * common header, then the MAP opcode with its nonce) and the reply, every
 * length and field checked, the result codes turned into errors a user
 * can read.  A router that speaks only NAT-PMP answers a PCP request with
 * a NAT-PMP "unsupported version": that reply is recognised, so that the
 * caller falls back to NAT-PMP (alv-natpmp.h).  Pure: no sockets, no
 * clock.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ALV_PCP_VERSION 2
/* a MAP request and reply: 24 bytes of header, 36 of MAP */
#define ALV_PCP_MAP_SIZE 60
#define ALV_PCP_NONCE_SIZE 12

#define ALV_PCP_ERROR (alv_pcp_error_quark ())
GQuark alv_pcp_error_quark (void);

/* The router's result codes (RFC 6887 section 7.4), then packets that
 * are no reply to us. */
typedef enum
{
  ALV_PCP_ERROR_UNSUPPORTED_VERSION = 1,
  ALV_PCP_ERROR_NOT_AUTHORIZED = 2,
  ALV_PCP_ERROR_MALFORMED_REQUEST = 3,
  ALV_PCP_ERROR_UNSUPPORTED_OPCODE = 4,
  ALV_PCP_ERROR_UNSUPPORTED_OPTION = 5,
  ALV_PCP_ERROR_MALFORMED_OPTION = 6,
  ALV_PCP_ERROR_NETWORK_FAILURE = 7,
  ALV_PCP_ERROR_NO_RESOURCES = 8,
  ALV_PCP_ERROR_UNSUPPORTED_PROTOCOL = 9,
  ALV_PCP_ERROR_USER_EXCEEDED_QUOTA = 10,
  ALV_PCP_ERROR_CANNOT_PROVIDE_EXTERNAL = 11,
  ALV_PCP_ERROR_ADDRESS_MISMATCH = 12,
  ALV_PCP_ERROR_EXCESSIVE_REMOTE_PEERS = 13,
  ALV_PCP_ERROR_UNKNOWN_RESULT = 100,
  ALV_PCP_ERROR_MALFORMED,
  ALV_PCP_ERROR_UNEXPECTED,
} AlvPcpError;

/**
 * AlvPcpMapReply:
 * @lifetime: seconds the mapping lasts (0: removed)
 * @epoch: the router's epoch (seconds since its mappings were started)
 * @internal_port: the local port of the mapping
 * @external_port: the public port assigned
 * @external_address: the public IPv4 address, network byte order
 */
typedef struct
{
  guint32 lifetime;
  guint32 epoch;
  guint16 internal_port;
  guint16 external_port;
  guint8 external_address[4];
} AlvPcpMapReply;

/* A MAP request for TCP @internal_port of @client (our IPv4 address as
 * the router sees it, network byte order) into @buf; @lifetime 0 removes
 * the mapping @nonce made.  Returns its length (ALV_PCP_MAP_SIZE). */
gsize    alv_pcp_build_map       (guint8        buf[ALV_PCP_MAP_SIZE],
                                  const guint8  nonce[ALV_PCP_NONCE_SIZE],
                                  const guint8  client[4],
                                  guint16       internal_port,
                                  guint16       suggested_external,
                                  guint32       lifetime);
/* Parses the router's answer to a MAP request made with @nonce for TCP
 * @internal_port.  A NAT-PMP server's "unsupported version" (it does not
 * speak PCP) and the router's own failures set the result code's error;
 * a failure other than "unsupported version" counts only in a whole MAP
 * reply that copies the request's nonce, protocol and port.  Anything
 * else sets %ALV_PCP_ERROR_MALFORMED or %ALV_PCP_ERROR_UNEXPECTED
 * (another nonce, protocol or port: ignore it). */
gboolean alv_pcp_parse_map_reply (const guint8   *data,
                                  gsize           len,
                                  const guint8    nonce[ALV_PCP_NONCE_SIZE],
                                  guint16         internal_port,
                                  AlvPcpMapReply *reply,
                                  GError        **error);

G_END_DECLS
