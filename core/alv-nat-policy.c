/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Port mapping's rules: the setting's names, the methods it tries, the
 * default gateway read from the kernel's route table, which external
 * addresses are public, the RFC 6886 schedule of resends and renewals.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-nat-policy.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <gio/gio.h>

#define FIRST_RETRY_MS 250
/* RTF_UP | RTF_GATEWAY of the route table's Flags */
#define ROUTE_UP_GATEWAY 0x3

static const char *const setting_names[] = {
  [ALV_NAT_OFF] = "off",
  [ALV_NAT_AUTO] = "auto",
  [ALV_NAT_UPNP] = "upnp",
  [ALV_NAT_NATPMP] = "natpmp",
};

static const char *const mapping_names[] = {
  [ALV_PORT_MAPPING_NONE] = "none",
  [ALV_PORT_MAPPING_NATPMP] = "natpmp",
  [ALV_PORT_MAPPING_PCP] = "pcp",
  [ALV_PORT_MAPPING_UPNP] = "upnp",
};

gboolean
alv_nat_setting_parse (const char    *text,
                       AlvNatSetting *setting)
{
  g_return_val_if_fail (setting != NULL, FALSE);

  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (setting_names); i++)
    if (g_ascii_strcasecmp (text, setting_names[i]) == 0)
      {
        *setting = (AlvNatSetting) i;
        return TRUE;
      }
  return FALSE;
}

const char *
alv_nat_setting_to_string (AlvNatSetting setting)
{
  g_return_val_if_fail ((guint) setting < G_N_ELEMENTS (setting_names), "off");
  return setting_names[setting];
}

gboolean
alv_nat_setting_tries (AlvNatSetting  setting,
                       AlvPortMapping method)
{
  switch (setting)
    {
    case ALV_NAT_AUTO:
      return method == ALV_PORT_MAPPING_NATPMP || method == ALV_PORT_MAPPING_UPNP;
    case ALV_NAT_UPNP:
      return method == ALV_PORT_MAPPING_UPNP;
    case ALV_NAT_NATPMP:
      return method == ALV_PORT_MAPPING_NATPMP;
    case ALV_NAT_OFF:
    default:
      return FALSE;
    }
}

const char *
alv_port_mapping_to_string (AlvPortMapping mapping)
{
  g_return_val_if_fail ((guint) mapping < G_N_ELEMENTS (mapping_names), "none");
  return mapping_names[mapping];
}

/* One hexadecimal field of the route table into @out. */
static gboolean
parse_hex32 (const char *field,
             guint32    *out)
{
  char *end = NULL;
  guint64 v;

  if (field == NULL || !g_ascii_isxdigit (field[0]))
    return FALSE;
  errno = 0;
  v = g_ascii_strtoull (field, &end, 16);
  if (errno != 0 || *end != '\0' || v > G_MAXUINT32)
    return FALSE;
  *out = (guint32) v;
  return TRUE;
}

char *
alv_nat_parse_default_gateway (const char *route_text,
                               GError    **error)
{
  g_auto(GStrv) lines = NULL;
  guint32 best_gateway = 0;
  guint64 best_metric = G_MAXUINT64;
  gboolean found = FALSE;
  guint8 bytes[4];

  g_return_val_if_fail (route_text != NULL, NULL);

  lines = g_strsplit (route_text, "\n", -1);
  if (lines[0] == NULL || !g_str_has_prefix (lines[0], "Iface"))
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("The route table is not in the kernel’s format"));
      return NULL;
    }
  /* Iface Destination Gateway Flags RefCnt Use Metric Mask ... */
  for (guint i = 1; lines[i] != NULL; i++)
    {
      g_auto(GStrv) f = g_strsplit_set (g_strstrip (lines[i]), " \t", -1);
      g_autoptr(GPtrArray) fields = g_ptr_array_new ();
      guint32 dest, gateway, flags, metric, mask;

      for (guint j = 0; f[j] != NULL; j++)
        if (f[j][0] != '\0')
          g_ptr_array_add (fields, f[j]);
      if (fields->len < 8)
        continue;
      if (!parse_hex32 (fields->pdata[1], &dest) || !parse_hex32 (fields->pdata[2], &gateway) ||
          !parse_hex32 (fields->pdata[3], &flags) || !parse_hex32 (fields->pdata[7], &mask))
        continue;
      /* the metric is decimal */
      {
        const char *m = fields->pdata[6];
        char *end = NULL;
        guint64 v = g_ascii_strtoull (m, &end, 10);

        if (!g_ascii_isdigit (m[0]) || *end != '\0' || v > G_MAXUINT32)
          continue;
        metric = (guint32) v;
      }
      if (dest != 0 || mask != 0 || gateway == 0 ||
          (flags & ROUTE_UP_GATEWAY) != ROUTE_UP_GATEWAY)
        continue;
      if (!found || metric < best_metric)
        {
          best_gateway = gateway;
          best_metric = metric;
          found = TRUE;
        }
    }
  if (!found)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                           _("There is no default route, so no router to ask"));
      return NULL;
    }
  /* the kernel prints the address's bytes, in network order, as a number
   * of this machine's byte order */
  memcpy (bytes, &best_gateway, 4);
  return g_strdup_printf ("%u.%u.%u.%u", bytes[0], bytes[1], bytes[2], bytes[3]);
}

gboolean
alv_nat_parse_router (const char *text,
                      guint16     default_port,
                      char      **address,
                      guint16    *port,
                      GError    **error)
{
  g_autoptr(GSocketConnectable) parsed = NULL;
  g_autoptr(GInetAddress) ip = NULL;
  const char *host;

  g_return_val_if_fail (address != NULL && port != NULL, FALSE);

  if (text != NULL)
    parsed = g_network_address_parse (text, default_port, NULL);
  host = parsed != NULL ? g_network_address_get_hostname (G_NETWORK_ADDRESS (parsed)) : NULL;
  if (host != NULL)
    ip = g_inet_address_new_from_string (host);
  if (ip == NULL || g_inet_address_get_family (ip) != G_SOCKET_FAMILY_IPV4 ||
      g_network_address_get_port (G_NETWORK_ADDRESS (parsed)) == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not an IPv4 address with an optional port"), text != NULL ? text : "");
      return FALSE;
    }
  *address = g_inet_address_to_string (ip);
  *port = g_network_address_get_port (G_NETWORK_ADDRESS (parsed));
  return TRUE;
}

gboolean
alv_nat_external_address_usable (const char *address)
{
  /* prefix and length of the ranges peers cannot reach */
  static const struct { guint32 prefix; guint bits; } unusable[] = {
    { 0x00000000, 8 },          /* 0.0.0.0/8 */
    { 0x0a000000, 8 },          /* 10.0.0.0/8 */
    { 0x64400000, 10 },         /* 100.64.0.0/10 */
    { 0x7f000000, 8 },          /* 127.0.0.0/8 */
    { 0xa9fe0000, 16 },         /* 169.254.0.0/16 */
    { 0xac100000, 12 },         /* 172.16.0.0/12 */
    { 0xc0a80000, 16 },         /* 192.168.0.0/16 */
    { 0xe0000000, 3 },          /* multicast, reserved, broadcast */
  };
  g_autoptr(GInetAddress) inet = NULL;
  const guint8 *b;
  guint32 a;

  if (address == NULL)
    return FALSE;
  inet = g_inet_address_new_from_string (address);
  if (inet == NULL || g_inet_address_get_family (inet) != G_SOCKET_FAMILY_IPV4)
    return FALSE;
  b = g_inet_address_to_bytes (inet);
  a = ((guint32) b[0] << 24) | ((guint32) b[1] << 16) | ((guint32) b[2] << 8) | b[3];
  for (guint i = 0; i < G_N_ELEMENTS (unusable); i++)
    if ((a >> (32 - unusable[i].bits)) == (unusable[i].prefix >> (32 - unusable[i].bits)))
      return FALSE;
  return TRUE;
}

guint
alv_nat_retry_delay_ms (guint sends,
                        guint max_sends)
{
  if (sends == 0 || sends > max_sends || sends > 16)
    return 0;
  return FIRST_RETRY_MS << (sends - 1);
}

guint64
alv_nat_renew_delay_ms (guint32 lifetime,
                        guint64 floor_ms)
{
  guint64 half = (guint64) lifetime * 1000 / 2;
  guint64 late = (guint64) lifetime * 1000 * 3 / 4;

  if (half >= floor_ms)
    return MAX (half, 500);
  /* a short grant: as late as the floor allows, but well before it ends */
  return MAX (MIN (floor_ms, late), 500);
}
