/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the gateway's brakes on what clients make it fetch: the
 * per-address token buckets (server/gateway-budget.c) on an injected
 * clock, and the per-origin fetch slots (server/gateway-fetch-slots.c).
 * No sockets, no wall clock.
 */
#include "config.h"

#include <glib.h>

#include "gateway-budget.h"
#include "gateway-fetch-slots.h"

#define SECOND G_TIME_SPAN_SECOND
#define T0 (G_GINT64_CONSTANT (1000) * SECOND)

/* A new key gets the whole burst, then nothing until it refills; the
 * refusal says when the next token is there. */
static void
test_burst (void)
{
  g_autoptr(GatewayBudget) budget = gateway_budget_new (1.0 / 60, 3, 100);
  guint retry = 0;

  for (guint i = 0; i < 3; i++)
    g_assert_true (gateway_budget_take (budget, "a", T0, &retry));
  g_assert_false (gateway_budget_take (budget, "a", T0, &retry));
  g_assert_cmpuint (retry, ==, 60);
  /* refused takes cost nothing: still one minute from the start */
  g_assert_false (gateway_budget_take (budget, "a", T0 + 30 * SECOND, &retry));
  g_assert_cmpuint (retry, ==, 30);
  g_assert_false (gateway_budget_take (budget, "a", T0 + 59 * SECOND, &retry));
  g_assert_cmpuint (retry, ==, 1);
  g_assert_true (gateway_budget_take (budget, "a", T0 + 60 * SECOND, &retry));
  g_assert_false (gateway_budget_take (budget, "a", T0 + 60 * SECOND, &retry));
}

/* Each key has a bucket of its own. */
static void
test_keys (void)
{
  g_autoptr(GatewayBudget) budget = gateway_budget_new (1.0, 2, 100);

  g_assert_true (gateway_budget_take (budget, "a", T0, NULL));
  g_assert_true (gateway_budget_take (budget, "a", T0, NULL));
  g_assert_false (gateway_budget_take (budget, "a", T0, NULL));
  g_assert_true (gateway_budget_take (budget, "b", T0, NULL));
  g_assert_true (gateway_budget_take (budget, "b", T0, NULL));
  g_assert_false (gateway_budget_take (budget, "b", T0, NULL));
  g_assert_cmpuint (gateway_budget_get_n_keys (budget), ==, 2);
}

/* A bucket refills at the rate, never beyond the burst; a clock going
 * back adds nothing. */
static void
test_refill (void)
{
  g_autoptr(GatewayBudget) budget = gateway_budget_new (2.0, 4, 100);
  guint n = 0;

  for (guint i = 0; i < 4; i++)
    g_assert_true (gateway_budget_take (budget, "a", T0, NULL));
  /* an hour idle fills it to 4, not 7200 */
  while (gateway_budget_take (budget, "a", T0 + 3600 * SECOND, NULL))
    g_assert_cmpuint (++n, <=, 10);
  g_assert_cmpuint (n, ==, 4);
  g_assert_false (gateway_budget_take (budget, "a", T0, NULL));
  /* half a second: one token at 2/s */
  g_assert_true (gateway_budget_take (budget, "a", T0 + 3600 * SECOND + SECOND / 2, NULL));
  g_assert_false (gateway_budget_take (budget, "a", T0 + 3600 * SECOND + SECOND / 2, NULL));
}

/* Rate 0 is no limit at all, and keeps no state. */
static void
test_off (void)
{
  g_autoptr(GatewayBudget) budget = gateway_budget_new (0, 1, 100);

  for (guint i = 0; i < 1000; i++)
    g_assert_true (gateway_budget_take (budget, "a", T0, NULL));
  g_assert_cmpuint (gateway_budget_get_n_keys (budget), ==, 0);
}

/* Full buckets are forgotten (a new one would be the same); the table
 * never holds more keys than its cap. */
static void
test_expire_and_cap (void)
{
  g_autoptr(GatewayBudget) budget = gateway_budget_new (1.0, 2, 3);

  g_assert_true (gateway_budget_take (budget, "a", T0, NULL));
  g_assert_true (gateway_budget_take (budget, "b", T0 + SECOND, NULL));
  gateway_budget_expire (budget, T0 + SECOND);
  g_assert_cmpuint (gateway_budget_get_n_keys (budget), ==, 1);
  gateway_budget_expire (budget, T0 + 2 * SECOND);
  g_assert_cmpuint (gateway_budget_get_n_keys (budget), ==, 0);

  for (guint i = 0; i < 10; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);

      g_assert_true (gateway_budget_take (budget, key, T0, NULL));
      g_assert_cmpuint (gateway_budget_get_n_keys (budget), <=, 3);
    }
}

static void
test_slots (void)
{
  g_autoptr(GatewayFetchSlots) slots = gateway_fetch_slots_new (2);
  const char *a = "http://a:80", *b = "https://b:443";

  g_assert_false (gateway_fetch_slots_is_full (slots, a));
  gateway_fetch_slots_take (slots, a);
  gateway_fetch_slots_take (slots, a);
  g_assert_true (gateway_fetch_slots_is_full (slots, a));
  g_assert_false (gateway_fetch_slots_is_full (slots, b));
  /* counted beyond the cap (an operator's Prepare) */
  gateway_fetch_slots_take (slots, a);
  g_assert_cmpuint (gateway_fetch_slots_get_running (slots, a), ==, 3);
  gateway_fetch_slots_give_back (slots, a);
  g_assert_true (gateway_fetch_slots_is_full (slots, a));
  gateway_fetch_slots_give_back (slots, a);
  g_assert_false (gateway_fetch_slots_is_full (slots, a));
  gateway_fetch_slots_give_back (slots, a);
  g_assert_cmpuint (gateway_fetch_slots_get_running (slots, a), ==, 0);
}

static void
test_slots_off (void)
{
  g_autoptr(GatewayFetchSlots) slots = gateway_fetch_slots_new (0);

  for (guint i = 0; i < 100; i++)
    gateway_fetch_slots_take (slots, "http://a:80");
  g_assert_false (gateway_fetch_slots_is_full (slots, "http://a:80"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/server/gateway-budget/burst", test_burst);
  g_test_add_func ("/server/gateway-budget/keys", test_keys);
  g_test_add_func ("/server/gateway-budget/refill", test_refill);
  g_test_add_func ("/server/gateway-budget/off", test_off);
  g_test_add_func ("/server/gateway-budget/expire-and-cap", test_expire_and_cap);
  g_test_add_func ("/server/gateway-budget/fetch-slots", test_slots);
  g_test_add_func ("/server/gateway-budget/fetch-slots-off", test_slots_off);
  return g_test_run ();
}
