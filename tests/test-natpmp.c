/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The pure parts of port mapping: NAT-PMP and PCP packets built and
 * parsed (malformed, truncated, of the wrong opcode or nonce, every result
 * code, a NAT-PMP router's answer to PCP), the
 * epoch rule, the default gateway read from route tables, the resend and
 * renewal schedules and the `nat` setting.  No sockets, no clock.
 */
#include "config.h"

#include <string.h>
#include <glib.h>
#include <gio/gio.h>

#include "alv-nat-policy.h"
#include "alv-natpmp.h"
#include "alv-pcp.h"

static void
test_build_requests (void)
{
  guint8 buf[ALV_NATPMP_REQUEST_MAX];
  static const guint8 want_map[] = { 0, 2, 0, 0, 0x1a, 0xe1, 0x1a, 0xe2, 0, 0, 0x1c, 0x20 };
  static const guint8 want_remove[] = { 0, 2, 0, 0, 0x1a, 0xe1, 0, 0, 0, 0, 0, 0 };

  g_assert_cmpuint (alv_natpmp_build_external_address (buf), ==, 2);
  g_assert_cmpuint (buf[0], ==, 0);
  g_assert_cmpuint (buf[1], ==, 0);

  /* TCP 6881 → suggested 6882 for 7200 s */
  g_assert_cmpuint (alv_natpmp_build_map (buf, ALV_NATPMP_OP_MAP_TCP, 6881, 6882, 7200), ==, 12);
  g_assert_cmpmem (buf, 12, want_map, sizeof want_map);
  /* removal: lifetime 0, suggested port 0 (RFC 6886 3.4) */
  g_assert_cmpuint (alv_natpmp_build_map (buf, ALV_NATPMP_OP_MAP_TCP, 6881, 0, 0), ==, 12);
  g_assert_cmpmem (buf, 12, want_remove, sizeof want_remove);
  g_assert_cmpuint (alv_natpmp_build_map (buf, ALV_NATPMP_OP_MAP_UDP, 1, 1, 1), ==, 12);
  g_assert_cmpuint (buf[1], ==, 1);
}

static void
test_parse_address (void)
{
  static const guint8 reply[] = { 0, 128, 0, 0, 0, 0, 0x01, 0x00, 203, 0, 113, 7 };
  guint8 padded[16] = { 0, };
  g_autoptr(GError) error = NULL;
  AlvNatpmpReply r;

  g_assert_true (alv_natpmp_parse_reply (reply, sizeof reply, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpint (r.opcode, ==, ALV_NATPMP_OP_EXTERNAL_ADDRESS);
  g_assert_cmpuint (r.epoch, ==, 256);
  g_assert_cmpuint (r.external_address[0], ==, 203);
  g_assert_cmpuint (r.external_address[3], ==, 7);
  /* trailing padding is ignored */
  memcpy (padded, reply, sizeof reply);
  g_assert_true (alv_natpmp_parse_reply (padded, sizeof padded, &r, &error));
  g_assert_no_error (error);
  /* every truncation is refused */
  for (gsize len = 0; len < sizeof reply; len++)
    {
      g_assert_false (alv_natpmp_parse_reply (reply, len, &r, &error));
      g_assert_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED);
      g_clear_error (&error);
    }
}

static void
test_parse_map (void)
{
  static const guint8 reply[] = { 0, 130, 0, 0, 0, 0, 0, 9,
                                  0x1a, 0xe1, 0x9c, 0x40, 0, 0, 0x0e, 0x10 };
  static const guint8 removed[] = { 0, 130, 0, 0, 0, 0, 0, 9,
                                    0x1a, 0xe1, 0, 0, 0, 0, 0, 0 };
  g_autoptr(GError) error = NULL;
  AlvNatpmpReply r;

  g_assert_true (alv_natpmp_parse_reply (reply, sizeof reply, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpint (r.opcode, ==, ALV_NATPMP_OP_MAP_TCP);
  g_assert_cmpuint (r.epoch, ==, 9);
  g_assert_cmpuint (r.internal_port, ==, 6881);
  g_assert_cmpuint (r.external_port, ==, 40000);
  g_assert_cmpuint (r.lifetime, ==, 3600);
  g_assert_true (alv_natpmp_check_map_reply (&r, ALV_NATPMP_OP_MAP_TCP, 6881, &error));
  g_assert_no_error (error);
  /* an answer for another port or protocol is not ours */
  g_assert_false (alv_natpmp_check_map_reply (&r, ALV_NATPMP_OP_MAP_TCP, 6882, &error));
  g_assert_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_UNEXPECTED);
  g_clear_error (&error);
  g_assert_false (alv_natpmp_check_map_reply (&r, ALV_NATPMP_OP_MAP_UDP, 6881, &error));
  g_assert_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_UNEXPECTED);
  g_clear_error (&error);

  g_assert_true (alv_natpmp_parse_reply (removed, sizeof removed, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r.lifetime, ==, 0);
  g_assert_cmpuint (r.external_port, ==, 0);

  for (gsize len = 0; len < sizeof reply; len++)
    {
      g_assert_false (alv_natpmp_parse_reply (reply, len, &r, &error));
      g_assert_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED);
      g_clear_error (&error);
    }
}

/* Packets that are no reply at all. */
static void
test_parse_malformed (void)
{
  static const struct { const char *what; guint8 data[16]; } cases[] = {
    { "version 1", { 1, 130, 0, 0, 0, 0, 0, 9, 0x1a, 0xe1, 0x9c, 0x40, 0, 0, 0x0e, 0x10 } },
    { "PCP version 2", { 2, 130, 0, 0, 0, 0, 0, 9, 0x1a, 0xe1, 0x9c, 0x40, 0, 0, 0x0e, 0x10 } },
    { "a request", { 0, 2, 0, 0, 0, 0, 0, 9, 0x1a, 0xe1, 0x9c, 0x40, 0, 0, 0x0e, 0x10 } },
    { "unknown opcode", { 0, 131, 0, 0, 0, 0, 0, 9, 0x1a, 0xe1, 0x9c, 0x40, 0, 0, 0x0e, 0x10 } },
    { "reply bit only", { 0, 255, 0, 0, 0, 0, 0, 9, 0x1a, 0xe1, 0x9c, 0x40, 0, 0, 0x0e, 0x10 } },
    { "port without lifetime", { 0, 130, 0, 0, 0, 0, 0, 9, 0x1a, 0xe1, 0x9c, 0x40, 0, 0, 0, 0 } },
    { "lifetime without port", { 0, 130, 0, 0, 0, 0, 0, 9, 0x1a, 0xe1, 0, 0, 0, 0, 0x0e, 0x10 } },
    { "internal port 0", { 0, 130, 0, 0, 0, 0, 0, 9, 0, 0, 0x9c, 0x40, 0, 0, 0x0e, 0x10 } },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      AlvNatpmpReply r;

      g_test_message ("%s", cases[i].what);
      g_assert_false (alv_natpmp_parse_reply (cases[i].data, sizeof cases[i].data, &r, &error));
      g_assert_error (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED);
    }
  /* random bytes: never a crash, never a read past the end */
  for (guint seed = 0; seed < 2000; seed++)
    {
      g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
      gsize len = g_rand_int_range (rand, 0, 20);
      g_autofree guint8 *data = g_malloc (MAX (len, 1));
      AlvNatpmpReply r;
      GError *error = NULL;

      for (gsize j = 0; j < len; j++)
        data[j] = (guint8) g_rand_int (rand);
      if (g_rand_boolean (rand) && len > 1)
        data[0] = 0;
      if (!alv_natpmp_parse_reply (data, len, &r, &error))
        {
          g_assert_nonnull (error);
          g_clear_error (&error);
        }
    }
}

/* Every result code of RFC 6886 becomes an error of its own, with a
 * sentence; the epoch and opcode are still given. */
static void
test_parse_result_codes (void)
{
  for (guint code = 1; code <= 7; code++)
    {
      guint8 reply[16] = { 0, 130, 0, (guint8) code, 0, 0, 0, 5,
                           0x1a, 0xe1, 0, 0, 0, 0, 0, 0 };
      g_autoptr(GError) error = NULL;
      AlvNatpmpReply r;

      g_assert_false (alv_natpmp_parse_reply (reply, sizeof reply, &r, &error));
      g_assert_nonnull (error);
      g_assert_true (error->domain == ALV_NATPMP_ERROR);
      g_assert_cmpint (error->code, ==, code <= 5 ? (int) code : ALV_NATPMP_ERROR_UNKNOWN_RESULT);
      g_assert_cmpuint (strlen (error->message), >, 10);
      g_assert_cmpint (r.opcode, ==, ALV_NATPMP_OP_MAP_TCP);
      g_assert_cmpuint (r.epoch, ==, 5);
      /* an error reply may be cut after its epoch */
      g_clear_error (&error);
      g_assert_false (alv_natpmp_parse_reply (reply, 8, &r, &error));
      g_assert_true (error->domain == ALV_NATPMP_ERROR && error->code != ALV_NATPMP_ERROR_MALFORMED);
    }
}

static void
test_epoch (void)
{
  /* time goes on alike: no reset */
  g_assert_false (alv_natpmp_epoch_was_reset (1000, 50, 1100, 150));
  /* the router's clock 1/8 slow, and 2 s of slack */
  g_assert_false (alv_natpmp_epoch_was_reset (1000, 50, 1000 + 875 - 2, 1050));
  g_assert_true (alv_natpmp_epoch_was_reset (1000, 50, 1000 + 875 - 3, 1050));
  /* went backwards: rebooted */
  g_assert_true (alv_natpmp_epoch_was_reset (1000, 50, 10, 60));
  /* the same second twice */
  g_assert_false (alv_natpmp_epoch_was_reset (1000, 50, 1000, 50));
  /* our clock going backwards does not make a reset */
  g_assert_false (alv_natpmp_epoch_was_reset (1000, 50, 1000, 40));
}

static void
test_default_gateway (void)
{
  static const char table[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n";
  static const char lower_metric_second[] =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t20\t00000000\t0\t0\t0\n";
  static const char *const none[] = {
    /* no default route */
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
    /* a default route that is down */
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n",
    /* a default route through no gateway (a point-to-point link) */
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "tun0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n",
    /* garbage fields, short lines */
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t0000000G\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t-1\t00000000\t0\t0\t0\n"
    "eth0\t00000000\t1010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t00000000\t010200C0\n"
    "\n",
    /* only the header */
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n",
  };
  g_autoptr(GError) error = NULL;
  g_autofree char *gw = NULL;
  g_autofree char *gw2 = NULL;
  guint32 probe = 1;

  if (*(guint8 *) &probe != 1)
    {
      g_test_skip ("the sample tables are those of a little-endian machine");
      return;
    }
  gw = alv_nat_parse_default_gateway (table, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gw, ==, "192.0.2.1");
  gw2 = alv_nat_parse_default_gateway (lower_metric_second, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (gw2, ==, "192.168.1.1");
  for (guint i = 0; i < G_N_ELEMENTS (none); i++)
    {
      g_assert_null (alv_nat_parse_default_gateway (none[i], &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
      g_clear_error (&error);
    }
  g_assert_null (alv_nat_parse_default_gateway ("", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_assert_null (alv_nat_parse_default_gateway ("<html>not a route table</html>", &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

static void
test_router (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *addr = NULL;
  guint16 port = 0;
  static const char *const bad[] = { "", "router.local", "::1", "[::1]:5351", "1.2.3.4:0",
                                     "1.2.3.4:70000", "1.2.3", "1.2.3.4:x" };

  g_assert_true (alv_nat_parse_router ("192.168.1.1", ALV_NATPMP_SERVER_PORT, &addr, &port, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (addr, ==, "192.168.1.1");
  g_assert_cmpuint (port, ==, 5351);
  g_clear_pointer (&addr, g_free);
  g_assert_true (alv_nat_parse_router ("127.0.0.1:40123", ALV_NATPMP_SERVER_PORT, &addr, &port, &error));
  g_assert_cmpstr (addr, ==, "127.0.0.1");
  g_assert_cmpuint (port, ==, 40123);
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *a = NULL;

      g_test_message ("%s", bad[i]);
      g_assert_false (alv_nat_parse_router (bad[i], ALV_NATPMP_SERVER_PORT, &a, &port, &error));
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
      g_clear_error (&error);
    }
  g_assert_false (alv_nat_parse_router (NULL, ALV_NATPMP_SERVER_PORT, &addr, &port, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

static void
test_schedule (void)
{
  guint64 total = 0;

  /* 250 ms, doubling, 9 sends: the last wait is 64 s (RFC 6886 3.1) */
  g_assert_cmpuint (alv_nat_retry_delay_ms (0, ALV_NAT_MAX_SENDS), ==, 0);
  g_assert_cmpuint (alv_nat_retry_delay_ms (1, ALV_NAT_MAX_SENDS), ==, 250);
  g_assert_cmpuint (alv_nat_retry_delay_ms (2, ALV_NAT_MAX_SENDS), ==, 500);
  g_assert_cmpuint (alv_nat_retry_delay_ms (9, ALV_NAT_MAX_SENDS), ==, 64000);
  g_assert_cmpuint (alv_nat_retry_delay_ms (10, ALV_NAT_MAX_SENDS), ==, 0);
  for (guint i = 1; i <= ALV_NAT_RELEASE_SENDS; i++)
    total += alv_nat_retry_delay_ms (i, ALV_NAT_RELEASE_SENDS);
  /* the removal at exit is bounded to under two seconds */
  g_assert_cmpuint (total, <, 2000);
  g_assert_cmpuint (alv_nat_retry_delay_ms (4, ALV_NAT_RELEASE_SENDS), ==, 0);
  /* never shifts out of range */
  g_assert_cmpuint (alv_nat_retry_delay_ms (40, 100), ==, 0);

  /* renewal at half the lifetime, not sooner than the floor (a minute),
   * never sooner than 500 ms */
  g_assert_cmpuint (alv_nat_renew_delay_ms (7200, ALV_NAT_RENEW_FLOOR_MS), ==, 3600000);
  g_assert_cmpuint (alv_nat_renew_delay_ms (120, ALV_NAT_RENEW_FLOOR_MS), ==, 60000);
  /* a short grant: at the floor, or three quarters into its life */
  g_assert_cmpuint (alv_nat_renew_delay_ms (100, ALV_NAT_RENEW_FLOOR_MS), ==, 60000);
  g_assert_cmpuint (alv_nat_renew_delay_ms (60, ALV_NAT_RENEW_FLOOR_MS), ==, 45000);
  g_assert_cmpuint (alv_nat_renew_delay_ms (2, ALV_NAT_RENEW_FLOOR_MS), ==, 1500);
  g_assert_cmpuint (alv_nat_renew_delay_ms (0, ALV_NAT_RENEW_FLOOR_MS), ==, 500);
  for (guint32 lifetime = 1; lifetime < 200; lifetime++)
    g_assert_cmpuint (alv_nat_renew_delay_ms (lifetime, ALV_NAT_RENEW_FLOOR_MS), <, lifetime * 1000);
  g_assert_cmpuint (ALV_NAT_RENEW_FLOOR_MS, ==, 60000);
  g_assert_cmpuint (alv_nat_renew_delay_ms (2, 0), ==, 1000);
  g_assert_cmpuint (alv_nat_renew_delay_ms (1, 0), ==, 500);
  g_assert_cmpuint (alv_nat_renew_delay_ms (0, 0), ==, 500);
  g_assert_cmpuint (alv_nat_renew_delay_ms (G_MAXUINT32, 0), ==, (guint64) G_MAXUINT32 * 500);
}

static void
test_setting (void)
{
  AlvNatSetting s = ALV_NAT_OFF;
  static const char *const names[] = { "off", "auto", "upnp", "natpmp" };

  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_assert_true (alv_nat_setting_parse (names[i], &s));
      g_assert_cmpstr (alv_nat_setting_to_string (s), ==, names[i]);
    }
  g_assert_true (alv_nat_setting_parse ("UPnP", &s));
  g_assert_cmpint (s, ==, ALV_NAT_UPNP);
  g_assert_false (alv_nat_setting_parse ("yes", &s));
  g_assert_false (alv_nat_setting_parse ("", &s));
  g_assert_false (alv_nat_setting_parse (NULL, &s));

  g_assert_true (alv_nat_setting_tries (ALV_NAT_AUTO, ALV_PORT_MAPPING_NATPMP));
  g_assert_true (alv_nat_setting_tries (ALV_NAT_AUTO, ALV_PORT_MAPPING_UPNP));
  g_assert_false (alv_nat_setting_tries (ALV_NAT_NATPMP, ALV_PORT_MAPPING_UPNP));
  g_assert_true (alv_nat_setting_tries (ALV_NAT_NATPMP, ALV_PORT_MAPPING_NATPMP));
  g_assert_false (alv_nat_setting_tries (ALV_NAT_UPNP, ALV_PORT_MAPPING_NATPMP));
  for (guint m = ALV_PORT_MAPPING_NONE; m <= ALV_PORT_MAPPING_UPNP; m++)
    g_assert_false (alv_nat_setting_tries (ALV_NAT_OFF, (AlvPortMapping) m));

  g_assert_cmpstr (alv_port_mapping_to_string (ALV_PORT_MAPPING_NONE), ==, "none");
  g_assert_cmpstr (alv_port_mapping_to_string (ALV_PORT_MAPPING_NATPMP), ==, "natpmp");
  g_assert_cmpstr (alv_port_mapping_to_string (ALV_PORT_MAPPING_PCP), ==, "pcp");
  g_assert_cmpstr (alv_port_mapping_to_string (ALV_PORT_MAPPING_UPNP), ==, "upnp");
}

/* Only a public external address makes a mapping worth announcing. */
static void
test_external_address (void)
{
  static const char *const usable[] = {
    "203.0.113.7", "198.51.100.1", "192.0.2.1", "11.22.33.1", "8.8.8.8", "1.0.0.1",
    "9.255.255.255", "11.0.0.0", "100.63.255.255", "100.128.0.0", "126.255.255.255",
    "128.0.0.1", "169.253.255.255", "169.255.0.0", "172.15.255.255", "172.32.0.0",
    "192.167.255.255", "192.169.0.0", "223.255.255.255",
  };
  static const char *const unusable[] = {
    "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.127.255.255",
    "127.0.0.1", "127.255.255.254", "169.254.1.1", "172.16.0.1", "172.31.255.255",
    "192.168.0.1", "192.168.255.255", "224.0.0.1", "239.255.255.250", "240.0.0.1",
    "255.255.255.255", "::1", "2001:db8::1", "", "not an address", "203.0.113",
  };

  for (guint i = 0; i < G_N_ELEMENTS (usable); i++)
    {
      g_test_message ("%s", usable[i]);
      g_assert_true (alv_nat_external_address_usable (usable[i]));
    }
  for (guint i = 0; i < G_N_ELEMENTS (unusable); i++)
    {
      g_test_message ("%s", unusable[i]);
      g_assert_false (alv_nat_external_address_usable (unusable[i]));
    }
  g_assert_false (alv_nat_external_address_usable (NULL));
}

static const guint8 nonce[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
static const guint8 client[4] = { 192, 168, 1, 20 };

/* A router's successful answer to the MAP request in @req. */
static void
pcp_answer (guint8       out[ALV_PCP_MAP_SIZE],
            const guint8 req[ALV_PCP_MAP_SIZE])
{
  memset (out, 0, ALV_PCP_MAP_SIZE);
  out[0] = 2;
  out[1] = 0x81;
  out[7] = 0x78;                        /* lifetime 120 */
  out[11] = 42;                         /* epoch 42 */
  memcpy (out + 24, req + 24, 36);
  out[42] = 0x9c;                       /* port 40000 */
  out[43] = 0x40;
  out[54] = out[55] = 0xff;
  out[56] = 203; out[57] = 0; out[58] = 113; out[59] = 7;
}

static void
test_pcp_build (void)
{
  guint8 buf[ALV_PCP_MAP_SIZE];
  static const guint8 header[24] = { 2, 1, 0, 0, 0, 0, 0x1c, 0x20,
                                     0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 1, 20 };
  static const guint8 map[36] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 6, 0, 0, 0,
                                  0x1a, 0xe1, 0x1a, 0xe1,
                                  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0 };

  g_assert_cmpuint (alv_pcp_build_map (buf, nonce, client, 6881, 6881, 7200), ==, 60);
  g_assert_cmpmem (buf, 24, header, sizeof header);
  g_assert_cmpmem (buf + 24, 36, map, sizeof map);
  /* removal: lifetime 0, no port suggested, the same nonce */
  alv_pcp_build_map (buf, nonce, client, 6881, 40000, 0);
  g_assert_cmpuint (buf[4] | buf[5] | buf[6] | buf[7], ==, 0);
  g_assert_cmpuint (buf[24 + 18] | buf[24 + 19], ==, 0);
  g_assert_cmpmem (buf + 24, 12, nonce, 12);
}

static void
test_pcp_parse (void)
{
  guint8 req[ALV_PCP_MAP_SIZE];
  guint8 ok[ALV_PCP_MAP_SIZE];
  guint8 bad[ALV_PCP_MAP_SIZE + 4];
  guint8 other_nonce[12];
  g_autoptr(GError) error = NULL;
  AlvPcpMapReply r;

  alv_pcp_build_map (req, nonce, client, 6881, 6881, 7200);
  pcp_answer (ok, req);
  g_assert_true (alv_pcp_parse_map_reply (ok, sizeof ok, nonce, 6881, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r.lifetime, ==, 120);
  g_assert_cmpuint (r.epoch, ==, 42);
  g_assert_cmpuint (r.internal_port, ==, 6881);
  g_assert_cmpuint (r.external_port, ==, 40000);
  g_assert_cmpuint (r.external_address[0], ==, 203);
  g_assert_cmpuint (r.external_address[3], ==, 7);
  /* options after the MAP data are allowed (and ignored) */
  memcpy (bad, ok, sizeof ok);
  memset (bad + 60, 0, 4);
  g_assert_true (alv_pcp_parse_map_reply (bad, sizeof bad, nonce, 6881, &r, &error));
  g_assert_no_error (error);

  /* every truncation */
  for (gsize len = 0; len < sizeof ok; len++)
    {
      g_assert_false (alv_pcp_parse_map_reply (ok, len, nonce, 6881, &r, &error));
      g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_MALFORMED);
      g_clear_error (&error);
    }
  /* not ours: another nonce, port or protocol */
  memcpy (other_nonce, nonce, 12);
  other_nonce[11] ^= 1;
  g_assert_false (alv_pcp_parse_map_reply (ok, sizeof ok, other_nonce, 6881, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNEXPECTED);
  g_clear_error (&error);
  g_assert_false (alv_pcp_parse_map_reply (ok, sizeof ok, nonce, 6882, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNEXPECTED);
  g_clear_error (&error);
  memcpy (bad, ok, sizeof ok);
  bad[36] = 17;                         /* UDP */
  g_assert_false (alv_pcp_parse_map_reply (bad, sizeof ok, nonce, 6881, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNEXPECTED);
  g_clear_error (&error);
  /* malformed: a request, another opcode, an odd length, an IPv6 or
   * missing public address */
  {
    static const struct { guint offset; guint8 value; } edits[] = {
      { 1, 0x01 }, { 1, 0x82 }, { 0, 3 }, { 0, 0 }, { 54, 0 }, { 43, 0 },
    };

    for (guint i = 0; i < G_N_ELEMENTS (edits); i++)
      {
        memcpy (bad, ok, sizeof ok);
        bad[edits[i].offset] = edits[i].value;
        if (edits[i].offset == 43)
          bad[42] = 0;
        g_test_message ("byte %u = %u", edits[i].offset, edits[i].value);
        g_assert_false (alv_pcp_parse_map_reply (bad, sizeof ok, nonce, 6881, &r, &error));
        g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_MALFORMED);
        g_clear_error (&error);
      }
    g_assert_false (alv_pcp_parse_map_reply (ok, sizeof ok - 2, nonce, 6881, &r, &error));
    g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_MALFORMED);
    g_clear_error (&error);
  }
  /* a removal confirmed: lifetime 0, no address needed */
  memcpy (bad, ok, sizeof ok);
  memset (bad + 4, 0, 4);
  memset (bad + 42, 0, 18);
  g_assert_true (alv_pcp_parse_map_reply (bad, sizeof ok, nonce, 6881, &r, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (r.lifetime, ==, 0);
}

/* Every result code, and a NAT-PMP router's refusal of version 2; an
 * error that does not copy the request is ignored. */
static void
test_pcp_result_codes (void)
{
  guint8 req[ALV_PCP_MAP_SIZE];
  guint8 out[ALV_PCP_MAP_SIZE];
  static const guint8 natpmp_refusal[8] = { 0, 129, 0, 1, 0, 0, 0, 7 };
  static const guint8 natpmp_other[8] = { 0, 129, 0, 2, 0, 0, 0, 7 };
  static const guint8 pcp_v1_refusal[4] = { 1, 0x81, 0, 1 };
  static const guint8 pcp_v2_refusal[4] = { 2, 0x81, 0, 1 };
  static const guint8 bare_refusal[4] = { 2, 0x81, 0, 2 };
  g_autoptr(GError) error = NULL;
  AlvPcpMapReply r;

  alv_pcp_build_map (req, nonce, client, 6881, 6881, 7200);
  for (guint code = 1; code <= 14; code++)
    {
      pcp_answer (out, req);
      out[3] = (guint8) code;
      g_assert_false (alv_pcp_parse_map_reply (out, sizeof out, nonce, 6881, &r, &error));
      g_assert_true (error->domain == ALV_PCP_ERROR);
      g_assert_cmpint (error->code, ==, code <= 13 ? (int) code : ALV_PCP_ERROR_UNKNOWN_RESULT);
      g_assert_cmpuint (strlen (error->message), >, 10);
      g_clear_error (&error);
    }
  g_assert_false (alv_pcp_parse_map_reply (natpmp_refusal, sizeof natpmp_refusal, nonce, 6881, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNSUPPORTED_VERSION);
  g_clear_error (&error);
  g_assert_false (alv_pcp_parse_map_reply (pcp_v1_refusal, sizeof pcp_v1_refusal, nonce, 6881, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNSUPPORTED_VERSION);
  g_clear_error (&error);
  g_assert_false (alv_pcp_parse_map_reply (natpmp_other, sizeof natpmp_other, nonce, 6881, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_MALFORMED);
  g_clear_error (&error);
  /* only "unsupported version" may be a bare header */
  g_assert_false (alv_pcp_parse_map_reply (pcp_v2_refusal, sizeof pcp_v2_refusal, nonce, 6881, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNSUPPORTED_VERSION);
  g_clear_error (&error);
  /* any other error without the request's fields is no answer to us */
  g_assert_false (alv_pcp_parse_map_reply (bare_refusal, sizeof bare_refusal, nonce, 6881, &r, &error));
  g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_MALFORMED);
  g_clear_error (&error);
  /* a stale or spoofed error: another nonce, port or protocol */
  {
    static const guint offsets[] = { 24 + 11, 24 + 12, 24 + 17 };

    for (guint i = 0; i < G_N_ELEMENTS (offsets); i++)
      {
        pcp_answer (out, req);
        out[3] = ALV_PCP_ERROR_NOT_AUTHORIZED;
        out[offsets[i]] ^= 1;
        g_test_message ("byte %u changed", offsets[i]);
        g_assert_false (alv_pcp_parse_map_reply (out, sizeof out, nonce, 6881, &r, &error));
        g_assert_error (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNEXPECTED);
        g_clear_error (&error);
      }
  }
  /* random bytes: never a crash, never a read past the end */
  for (guint seed = 0; seed < 2000; seed++)
    {
      g_autoptr(GRand) rand = g_rand_new_with_seed (seed);
      gsize len = g_rand_int_range (rand, 0, 70);
      g_autofree guint8 *data = g_malloc (MAX (len, 1));

      for (gsize j = 0; j < len; j++)
        data[j] = (guint8) g_rand_int (rand);
      if (len > 2)
        {
          data[0] = 2;
          data[1] = 0x81;
        }
      if (!alv_pcp_parse_map_reply (data, len, nonce, 6881, &r, &error))
        {
          g_assert_nonnull (error);
          g_clear_error (&error);
        }
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/natpmp/build", test_build_requests);
  g_test_add_func ("/natpmp/parse/address", test_parse_address);
  g_test_add_func ("/natpmp/parse/map", test_parse_map);
  g_test_add_func ("/natpmp/parse/malformed", test_parse_malformed);
  g_test_add_func ("/natpmp/parse/result-codes", test_parse_result_codes);
  g_test_add_func ("/natpmp/epoch", test_epoch);
  g_test_add_func ("/pcp/build", test_pcp_build);
  g_test_add_func ("/pcp/parse", test_pcp_parse);
  g_test_add_func ("/pcp/result-codes", test_pcp_result_codes);
  g_test_add_func ("/nat/default-gateway", test_default_gateway);
  g_test_add_func ("/nat/router", test_router);
  g_test_add_func ("/nat/schedule", test_schedule);
  g_test_add_func ("/nat/setting", test_setting);
  g_test_add_func ("/nat/external-address", test_external_address);
  return g_test_run ();
}
