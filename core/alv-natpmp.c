/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * NAT-PMP (RFC 6886) packets: a request is version 0, an opcode and,
 * for a mapping, reserved zeroes, the internal port, the suggested
 * external port and the lifetime, all big-endian; a reply is the same
 * version, the opcode plus 128, a result code and the router's epoch,
 * then the address (opcode 0) or the ports and lifetime (opcodes 1, 2).
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-natpmp.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-wire.h"

#define REPLY_BIT 0x80
#define EXTERNAL_ADDRESS_REPLY_LEN 12
#define MAP_REPLY_LEN 16
/* the client's clock against the router's, and the slack (RFC 6886 3.6) */
#define EPOCH_SLACK_S 2

G_DEFINE_QUARK (alv-natpmp-error-quark, alv_natpmp_error)

gsize
alv_natpmp_build_external_address (guint8 buf[ALV_NATPMP_REQUEST_MAX])
{
  buf[0] = 0;
  buf[1] = ALV_NATPMP_OP_EXTERNAL_ADDRESS;
  return 2;
}

gsize
alv_natpmp_build_map (guint8          buf[ALV_NATPMP_REQUEST_MAX],
                      AlvNatpmpOpcode opcode,
                      guint16         internal_port,
                      guint16         suggested_external,
                      guint32         lifetime)
{
  g_return_val_if_fail (opcode == ALV_NATPMP_OP_MAP_UDP || opcode == ALV_NATPMP_OP_MAP_TCP, 0);
  g_return_val_if_fail (lifetime > 0 || suggested_external == 0, 0);

  buf[0] = 0;
  buf[1] = (guint8) opcode;
  alv_wire_put16 (buf + 2, 0);
  alv_wire_put16 (buf + 4, internal_port);
  alv_wire_put16 (buf + 6, suggested_external);
  alv_wire_put32 (buf + 8, lifetime);
  return 12;
}

/* The router's result code as a sentence for the log and the user. */
static void
set_result_error (guint16  code,
                  GError **error)
{
  switch (code)
    {
    case ALV_NATPMP_ERROR_UNSUPPORTED_VERSION:
      g_set_error_literal (error, ALV_NATPMP_ERROR, code,
                           _("The router does not support this version of NAT-PMP"));
      break;
    case ALV_NATPMP_ERROR_REFUSED:
      g_set_error_literal (error, ALV_NATPMP_ERROR, code,
                           _("The router refused the port mapping (NAT-PMP is turned off or not allowed)"));
      break;
    case ALV_NATPMP_ERROR_NETWORK_FAILURE:
      g_set_error_literal (error, ALV_NATPMP_ERROR, code,
                           _("The router has no public address yet (NAT-PMP network failure)"));
      break;
    case ALV_NATPMP_ERROR_OUT_OF_RESOURCES:
      g_set_error_literal (error, ALV_NATPMP_ERROR, code,
                           _("The router has no room for another port mapping"));
      break;
    case ALV_NATPMP_ERROR_UNSUPPORTED_OPCODE:
      g_set_error_literal (error, ALV_NATPMP_ERROR, code,
                           _("The router does not support this NAT-PMP request"));
      break;
    default:
      g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_UNKNOWN_RESULT,
                   _("The router answered with the unknown NAT-PMP result code %u"), code);
      break;
    }
}

gboolean
alv_natpmp_parse_reply (const guint8   *data,
                        gsize           len,
                        AlvNatpmpReply *reply,
                        GError        **error)
{
  guint16 result;
  guint op;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);
  g_return_val_if_fail (reply != NULL, FALSE);

  memset (reply, 0, sizeof *reply);
  /* version, opcode, result code and epoch come in every reply */
  if (len < 8)
    {
      g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED,
                   _("A NAT-PMP reply of %u bytes is too short"), (guint) len);
      return FALSE;
    }
  if (data[0] != 0)
    {
      g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED,
                   _("The router answered with protocol version %u, not NAT-PMP"), data[0]);
      return FALSE;
    }
  op = data[1];
  if ((op & REPLY_BIT) == 0 || (op & ~REPLY_BIT) > ALV_NATPMP_OP_MAP_TCP)
    {
      g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED,
                   _("The router sent an unknown NAT-PMP packet (opcode %u)"), op);
      return FALSE;
    }
  reply->opcode = (AlvNatpmpOpcode) (op & ~REPLY_BIT);
  result = alv_wire_get16 (data + 2);
  reply->epoch = alv_wire_get32 (data + 4);
  if (result != 0)
    {
      set_result_error (result, error);
      return FALSE;
    }
  if (reply->opcode == ALV_NATPMP_OP_EXTERNAL_ADDRESS)
    {
      if (len < EXTERNAL_ADDRESS_REPLY_LEN)
        {
          g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED,
                       _("A NAT-PMP address reply of %u bytes is too short"), (guint) len);
          return FALSE;
        }
      memcpy (reply->external_address, data + 8, 4);
      return TRUE;
    }
  if (len < MAP_REPLY_LEN)
    {
      g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED,
                   _("A NAT-PMP mapping reply of %u bytes is too short"), (guint) len);
      return FALSE;
    }
  reply->internal_port = alv_wire_get16 (data + 8);
  reply->external_port = alv_wire_get16 (data + 10);
  reply->lifetime = alv_wire_get32 (data + 12);
  /* a mapping that lasts has a port; a removal has neither */
  if ((reply->lifetime == 0) != (reply->external_port == 0) || reply->internal_port == 0)
    {
      g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED,
                   _("The router sent a NAT-PMP mapping of port %u to %u for %u s, which is invalid"),
                   reply->internal_port, reply->external_port, reply->lifetime);
      return FALSE;
    }
  return TRUE;
}

gboolean
alv_natpmp_check_map_reply (const AlvNatpmpReply *reply,
                            AlvNatpmpOpcode       opcode,
                            guint16               internal_port,
                            GError              **error)
{
  g_return_val_if_fail (reply != NULL, FALSE);

  if (reply->opcode != opcode || reply->internal_port != internal_port)
    {
      g_set_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_UNEXPECTED,
                   _("The router answered a request that was not sent (opcode %u, port %u)"),
                   reply->opcode, reply->internal_port);
      return FALSE;
    }
  return TRUE;
}

gboolean
alv_natpmp_epoch_was_reset (guint32 prev_epoch,
                            gint64  prev_time,
                            guint32 epoch,
                            gint64  now)
{
  gint64 elapsed = MAX (now - prev_time, 0);
  gint64 expected = (gint64) prev_epoch + elapsed * 7 / 8;

  return (gint64) epoch + EPOCH_SLACK_S < expected;
}
