/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * PCP MAP packets (RFC 6887 sections 7 and 11): a common header (version
 * 2, the opcode with the response bit, the result code, the lifetime, the
 * epoch, the client's address as an IPv4-mapped IPv6 address) and the
 * MAP opcode (nonce, protocol, internal port, external port and address).
 * Addresses are IPv4 only: that is what home routers map.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-pcp.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-wire.h"

#define OPCODE_MAP 1
#define RESPONSE_BIT 0x80
#define PROTOCOL_TCP 6
#define HEADER_SIZE 24
/* the largest PCP message (RFC 6887 section 7) */
#define MAX_MESSAGE 1100

G_DEFINE_QUARK (alv-pcp-error-quark, alv_pcp_error)

/* ::ffff:a.b.c.d */
static void
put_mapped (guint8       *p,
            const guint8  v4[4])
{
  memset (p, 0, 10);
  p[10] = 0xff;
  p[11] = 0xff;
  memcpy (p + 12, v4, 4);
}

static gboolean
is_mapped (const guint8 *p)
{
  static const guint8 prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

  return memcmp (p, prefix, sizeof prefix) == 0;
}

gsize
alv_pcp_build_map (guint8       buf[ALV_PCP_MAP_SIZE],
                   const guint8 nonce[ALV_PCP_NONCE_SIZE],
                   const guint8 client[4],
                   guint16      internal_port,
                   guint16      suggested_external,
                   guint32      lifetime)
{
  static const guint8 any[4] = { 0, 0, 0, 0 };

  g_return_val_if_fail (internal_port != 0, 0);

  memset (buf, 0, ALV_PCP_MAP_SIZE);
  buf[0] = ALV_PCP_VERSION;
  buf[1] = OPCODE_MAP;
  alv_wire_put32 (buf + 4, lifetime);
  put_mapped (buf + 8, client);
  memcpy (buf + HEADER_SIZE, nonce, ALV_PCP_NONCE_SIZE);
  buf[HEADER_SIZE + 12] = PROTOCOL_TCP;
  alv_wire_put16 (buf + HEADER_SIZE + 16, internal_port);
  alv_wire_put16 (buf + HEADER_SIZE + 18, lifetime > 0 ? suggested_external : 0);
  /* any IPv4 address: ::ffff:0.0.0.0 */
  put_mapped (buf + HEADER_SIZE + 20, any);
  return ALV_PCP_MAP_SIZE;
}

static void
set_result_error (guint    code,
                  GError **error)
{
  static const char *const messages[] = {
    [ALV_PCP_ERROR_UNSUPPORTED_VERSION] = N_("The router does not support this version of PCP"),
    [ALV_PCP_ERROR_NOT_AUTHORIZED] = N_("The router refused the port mapping (PCP is turned off or not allowed)"),
    [ALV_PCP_ERROR_MALFORMED_REQUEST] = N_("The router found the PCP request malformed"),
    [ALV_PCP_ERROR_UNSUPPORTED_OPCODE] = N_("The router does not support PCP port mappings"),
    [ALV_PCP_ERROR_UNSUPPORTED_OPTION] = N_("The router does not support a PCP option that was sent"),
    [ALV_PCP_ERROR_MALFORMED_OPTION] = N_("The router found a PCP option malformed"),
    [ALV_PCP_ERROR_NETWORK_FAILURE] = N_("The router has no public address yet (PCP network failure)"),
    [ALV_PCP_ERROR_NO_RESOURCES] = N_("The router has no room for another port mapping"),
    [ALV_PCP_ERROR_UNSUPPORTED_PROTOCOL] = N_("The router does not map TCP ports with PCP"),
    [ALV_PCP_ERROR_USER_EXCEEDED_QUOTA] = N_("The router allows this machine no more port mappings"),
    [ALV_PCP_ERROR_CANNOT_PROVIDE_EXTERNAL] = N_("The router cannot provide the public port asked for"),
    [ALV_PCP_ERROR_ADDRESS_MISMATCH] = N_("The router sees another address than this machine’s (another NAT in between?)"),
    [ALV_PCP_ERROR_EXCESSIVE_REMOTE_PEERS] = N_("The router refused the mapping (too many remote peers)"),
  };

  if (code > 0 && code < G_N_ELEMENTS (messages))
    g_set_error_literal (error, ALV_PCP_ERROR, (int) code, _(messages[code]));
  else
    g_set_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNKNOWN_RESULT,
                 _("The router answered with the unknown PCP result code %u"), code);
}

static gboolean
malformed (GError    **error,
           const char *why)
{
  g_set_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_MALFORMED, _("Malformed PCP reply: %s"), why);
  return FALSE;
}

gboolean
alv_pcp_parse_map_reply (const guint8   *data,
                         gsize           len,
                         const guint8    nonce[ALV_PCP_NONCE_SIZE],
                         guint16         internal_port,
                         AlvPcpMapReply *reply,
                         GError        **error)
{
  const guint8 *map;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (reply != NULL, FALSE);

  memset (reply, 0, sizeof *reply);
  if (len < 4)
    return malformed (error, _("too short"));
  if (data[0] != ALV_PCP_VERSION)
    {
      /* a NAT-PMP server (version 0: a 16-bit result code) or a PCP one
       * of another version saying it does not speak ours */
      if ((data[0] == 0 && (data[1] & RESPONSE_BIT) && alv_wire_get16 (data + 2) == 1) ||
          (data[0] == 1 && (data[1] & RESPONSE_BIT) && data[3] == 1))
        {
          set_result_error (ALV_PCP_ERROR_UNSUPPORTED_VERSION, error);
          return FALSE;
        }
      return malformed (error, _("another protocol version"));
    }
  if (data[1] != (RESPONSE_BIT | OPCODE_MAP))
    return malformed (error, _("not an answer to MAP"));
  if (len > MAX_MESSAGE || len % 4 != 0)
    return malformed (error, _("its length is not that of a PCP message"));
  /* only "unsupported version" may come without the request's fields
   * (RFC 6887 section 9); every other answer, an error too, copies them
   * (section 7.2), so that it can be told from a stale or spoofed one */
  if (data[3] == ALV_PCP_ERROR_UNSUPPORTED_VERSION)
    {
      set_result_error (data[3], error);
      return FALSE;
    }
  if (len < ALV_PCP_MAP_SIZE)
    return malformed (error, _("too short"));
  map = data + HEADER_SIZE;
  if (memcmp (map, nonce, ALV_PCP_NONCE_SIZE) != 0 || map[12] != PROTOCOL_TCP ||
      alv_wire_get16 (map + 16) != internal_port)
    {
      g_set_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNEXPECTED,
                   _("The router answered a PCP request that was not sent (port %u)"),
                   alv_wire_get16 (map + 16));
      return FALSE;
    }
  if (data[3] != 0)
    {
      set_result_error (data[3], error);
      return FALSE;
    }
  reply->lifetime = alv_wire_get32 (data + 4);
  reply->epoch = alv_wire_get32 (data + 8);
  reply->internal_port = internal_port;
  reply->external_port = alv_wire_get16 (map + 18);
  if (reply->lifetime > 0 && (reply->external_port == 0 || !is_mapped (map + 20)))
    return malformed (error, _("a mapping without a public IPv4 address and port"));
  memcpy (reply->external_address, map + 32, 4);
  return TRUE;
}
