/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the gateway's connect-back policy (server/gateway-reach.c):
 * a check only ever targets the observed address with the announced port;
 * results are cached for the TTL (one check per address:port per TTL);
 * the caps on running checks, on the queue and per address hold, and
 * what is beyond them is dropped; the results kept are bounded.  Plain
 * state, time is an input: no sockets, no waiting.
 */
#include "config.h"

#include <gio/gio.h>

#include "alv-ocn-headers.h"
#include "gateway-reach.h"

#define SEC G_USEC_PER_SEC
#define TTL 600

static GInetAddress *
ip (const char *text)
{
  return g_inet_address_new_from_string (text);
}

/* @reach's next check, as "ip:port"; NULL when none may start. */
static char *
next_key (GatewayReach *reach)
{
  g_autoptr(GInetSocketAddress) target = gateway_reach_next (reach);

  return target != NULL ? alv_alt_format_address (target) : NULL;
}

/* gateway_reach_observe() of "@text:@port". */
static AlvReachable
observe (GatewayReach *reach,
         const char   *text,
         guint16       port,
         gint64        now)
{
  g_autoptr(GInetAddress) address = ip (text);

  return gateway_reach_observe (reach, address, port, now);
}

/* Ends the check of @key. */
static void
done (GatewayReach *reach,
      const char   *key,
      gboolean      reachable,
      gint64        now)
{
  g_autoptr(GPtrArray) parsed = alv_alt_parse (key, 1, NULL);

  g_assert_nonnull (parsed);
  g_assert_cmpuint (parsed->len, ==, 1);
  gateway_reach_done (reach, parsed->pdata[0], reachable, now);
}

/* The target is the observed address and the announced port, and
 * nothing else: there is no parameter that could name another. */
static void
test_observed_only (void)
{
  g_autoptr(GatewayReach) reach = gateway_reach_new (TTL, 8, 64, 2, 100);
  g_autofree char *first = NULL;
  g_autofree char *second = NULL;
  g_autofree char *none = NULL;

  g_assert_cmpint (observe (reach, "198.51.100.7", 6346, 1 * SEC), ==, ALV_REACHABLE_UNKNOWN);
  g_assert_cmpint (observe (reach, "2001:db8::1", 7000, 1 * SEC), ==, ALV_REACHABLE_UNKNOWN);
  first = next_key (reach);
  second = next_key (reach);
  none = next_key (reach);
  g_assert_cmpstr (first, ==, "198.51.100.7:6346");
  g_assert_cmpstr (second, ==, "[2001:db8::1]:7000");
  g_assert_null (none);
  g_assert_cmpuint (gateway_reach_get_n_running (reach), ==, 2);
  g_assert_cmpstr (alv_reachable_to_string (ALV_REACHABLE_UNKNOWN), ==, "unknown");
}

/* A result holds for the TTL: the same address:port is not checked again
 * until it expires; while the check runs, announces start no other. */
static void
test_cache (void)
{
  g_autoptr(GatewayReach) reach = gateway_reach_new (TTL, 8, 64, 2, 100);
  g_autofree char *key = NULL;
  g_autofree char *again = NULL;
  g_autofree char *other = NULL;

  g_assert_cmpint (observe (reach, "198.51.100.7", 6346, 1 * SEC), ==, ALV_REACHABLE_UNKNOWN);
  key = next_key (reach);
  g_assert_cmpstr (key, ==, "198.51.100.7:6346");
  /* running: no second check of it */
  g_assert_cmpint (observe (reach, "198.51.100.7", 6346, 2 * SEC), ==, ALV_REACHABLE_UNKNOWN);
  g_assert_cmpuint (gateway_reach_get_n_queued (reach), ==, 0);
  done (reach, key, FALSE, 3 * SEC);
  g_assert_cmpuint (gateway_reach_get_n_running (reach), ==, 0);
  g_assert_cmpint (gateway_reach_lookup (reach, key, 3 * SEC), ==, ALV_REACHABLE_NO);
  g_assert_cmpstr (alv_reachable_to_string (ALV_REACHABLE_NO), ==, "no");
  /* within the TTL: answered from the cache, nothing queued */
  for (guint i = 0; i < 100; i++)
    g_assert_cmpint (observe (reach, "198.51.100.7", 6346, (4 + i) * SEC), ==, ALV_REACHABLE_NO);
  g_assert_null (next_key (reach));
  /* another port of the same address is another check */
  g_assert_cmpint (observe (reach, "198.51.100.7", 6347, 200 * SEC), ==, ALV_REACHABLE_UNKNOWN);
  other = next_key (reach);
  g_assert_cmpstr (other, ==, "198.51.100.7:6347");
  done (reach, other, TRUE, 201 * SEC);
  g_assert_cmpint (observe (reach, "198.51.100.7", 6347, 202 * SEC), ==, ALV_REACHABLE_YES);
  /* past the TTL: unknown, and checked again */
  g_assert_cmpint (gateway_reach_lookup (reach, key, (3 + TTL) * SEC), ==, ALV_REACHABLE_UNKNOWN);
  g_assert_cmpint (observe (reach, "198.51.100.7", 6346, (3 + TTL) * SEC), ==, ALV_REACHABLE_UNKNOWN);
  again = next_key (reach);
  g_assert_cmpstr (again, ==, key);
  /* expiry drops the stale ones only */
  g_assert_cmpuint (gateway_reach_expire (reach, (201 + TTL) * SEC), ==, 1);
  g_assert_cmpint (gateway_reach_lookup (reach, other, (201 + TTL) * SEC), ==, ALV_REACHABLE_UNKNOWN);
}

/* At most max_running at once, max_queued waiting, per_address queued or
 * running from one address; beyond, dropped (the next announce asks). */
static void
test_limits (void)
{
  g_autoptr(GatewayReach) reach = gateway_reach_new (TTL, 2, 3, 2, 100);
  g_autofree char *a = NULL;
  g_autofree char *b = NULL;
  g_autofree char *c = NULL;
  g_autofree char *d = NULL;
  char text[32];

  /* one address, three ports: the third is beyond its share */
  observe (reach, "203.0.113.1", 1001, 1 * SEC);
  observe (reach, "203.0.113.1", 1002, 1 * SEC);
  observe (reach, "203.0.113.1", 1003, 1 * SEC);
  g_assert_cmpuint (gateway_reach_get_n_queued (reach), ==, 2);
  g_assert_cmpuint (gateway_reach_get_n_dropped (reach), ==, 1);
  /* the queue: one more fits, the others are dropped */
  for (guint i = 2; i < 6; i++)
    {
      g_snprintf (text, sizeof text, "203.0.113.%u", i);
      observe (reach, text, 7000, 1 * SEC);
    }
  g_assert_cmpuint (gateway_reach_get_n_queued (reach), ==, 3);
  g_assert_cmpuint (gateway_reach_get_n_dropped (reach), ==, 4);
  /* two run, in the order they came */
  a = next_key (reach);
  b = next_key (reach);
  g_assert_cmpstr (a, ==, "203.0.113.1:1001");
  g_assert_cmpstr (b, ==, "203.0.113.1:1002");
  g_assert_null (next_key (reach));
  /* running checks still count against their address */
  observe (reach, "203.0.113.1", 1003, 2 * SEC);
  g_assert_cmpuint (gateway_reach_get_n_dropped (reach), ==, 5);
  done (reach, a, TRUE, 3 * SEC);
  c = next_key (reach);
  g_assert_cmpstr (c, ==, "203.0.113.2:7000");
  g_assert_null (next_key (reach));
  /* the address has room again */
  observe (reach, "203.0.113.1", 1003, 4 * SEC);
  done (reach, b, FALSE, 5 * SEC);
  done (reach, c, FALSE, 5 * SEC);
  d = next_key (reach);
  g_assert_cmpstr (d, ==, "203.0.113.1:1003");
  g_assert_cmpuint (gateway_reach_get_n_running (reach), ==, 1);
  g_assert_cmpuint (gateway_reach_get_n_queued (reach), ==, 0);
}

/* The results kept are bounded: the oldest make room. */
static void
test_max_results (void)
{
  g_autoptr(GatewayReach) reach = gateway_reach_new (TTL, 8, 64, 2, 3);
  char text[32];

  for (guint i = 1; i <= 4; i++)
    {
      g_autofree char *key = NULL;

      g_snprintf (text, sizeof text, "192.0.2.%u", i);
      observe (reach, text, 7000, i * SEC);
      key = next_key (reach);
      done (reach, key, FALSE, i * SEC);
    }
  g_assert_cmpint (gateway_reach_lookup (reach, "192.0.2.1:7000", 5 * SEC), ==, ALV_REACHABLE_UNKNOWN);
  for (guint i = 2; i <= 4; i++)
    {
      g_snprintf (text, sizeof text, "192.0.2.%u:7000", i);
      g_assert_cmpint (gateway_reach_lookup (reach, text, 5 * SEC), ==, ALV_REACHABLE_NO);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/server/gateway-reach/observed-only", test_observed_only);
  g_test_add_func ("/server/gateway-reach/cache", test_cache);
  g_test_add_func ("/server/gateway-reach/limits", test_limits);
  g_test_add_func ("/server/gateway-reach/max-results", test_max_results);
  return g_test_run ();
}
