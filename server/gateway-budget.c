/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Per-key token buckets (see gateway-budget.h).  A bucket is refilled
 * lazily, when its key next takes a token, so the cost is one hash
 * lookup whatever the number of keys; a bucket that has refilled to the
 * brim carries no state and is dropped by gateway_budget_expire().
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-budget.h"

/* rates such as 1/60 per second do not add up to whole tokens exactly */
#define SLACK 1e-9

typedef struct
{
  double tokens;
  gint64 last;                  /* µs, when @tokens was right */
} Bucket;

struct _GatewayBudget
{
  double per_second;
  guint burst;
  guint max_keys;
  GHashTable *buckets;          /* key → Bucket */
};

GatewayBudget *
gateway_budget_new (double per_second,
                    guint  burst,
                    guint  max_keys)
{
  GatewayBudget *budget = g_new0 (GatewayBudget, 1);

  budget->per_second = MAX (per_second, 0.0);
  /* a bucket smaller than one token would refuse everything */
  budget->burst = MAX (burst, 1);
  budget->max_keys = MAX (max_keys, 1);
  budget->buckets = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  return budget;
}

void
gateway_budget_free (GatewayBudget *budget)
{
  if (budget == NULL)
    return;
  g_hash_table_unref (budget->buckets);
  g_free (budget);
}

/* The tokens @b holds at @now (never more than the burst; a clock that
 * went back adds nothing). */
static double
refilled (GatewayBudget *budget,
          const Bucket  *b,
          gint64         now)
{
  double elapsed = now > b->last ? (double) (now - b->last) / G_USEC_PER_SEC : 0.0;

  return MIN ((double) budget->burst, b->tokens + elapsed * budget->per_second);
}

/**
 * gateway_budget_take:
 * @budget: the table
 * @key: who spends (a client address)
 * @now: monotonic time, µs
 * @retry_after: (out) (optional): on refusal, whole seconds until a
 *   token is there again (at least 1)
 *
 * Takes one token of @key's bucket, which starts full.
 *
 * Returns: %FALSE when the bucket is empty (nothing is taken)
 */
gboolean
gateway_budget_take (GatewayBudget *budget,
                     const char    *key,
                     gint64         now,
                     guint         *retry_after)
{
  Bucket *b;

  if (budget->per_second <= 0.0)
    return TRUE;
  b = g_hash_table_lookup (budget->buckets, key);
  if (b == NULL)
    {
      if (g_hash_table_size (budget->buckets) >= budget->max_keys)
        g_hash_table_remove_all (budget->buckets);
      b = g_new0 (Bucket, 1);
      b->tokens = budget->burst;
      b->last = now;
      g_hash_table_insert (budget->buckets, g_strdup (key), b);
    }
  b->tokens = refilled (budget, b, now);
  b->last = MAX (b->last, now);
  if (b->tokens + SLACK < 1.0)
    {
      double wait = (1.0 - b->tokens) / budget->per_second;
      guint seconds = wait < G_MAXUINT ? (guint) wait : G_MAXUINT;

      if (wait - (double) seconds > 1e-6)
        seconds++;
      if (retry_after != NULL)
        *retry_after = MAX (seconds, 1);
      return FALSE;
    }
  b->tokens = MAX (b->tokens - 1.0, 0.0);
  return TRUE;
}

/* Drops the buckets that are full again at @now: they say nothing a new
 * bucket would not. */
void
gateway_budget_expire (GatewayBudget *budget,
                       gint64         now)
{
  GHashTableIter iter;
  gpointer value;

  g_hash_table_iter_init (&iter, budget->buckets);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (budget->per_second <= 0.0 || refilled (budget, value, now) + SLACK >= budget->burst)
      g_hash_table_iter_remove (&iter);
}

guint
gateway_budget_get_n_keys (GatewayBudget *budget)
{
  return g_hash_table_size (budget->buckets);
}
