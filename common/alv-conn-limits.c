/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Admission rules for a listening socket; see alv-conn-limits.h.  Pure:
 * callers pass the client address and the time, nothing here touches a
 * socket or reads a clock.
 */
#include "config.h"
#include "alv-conn-limits.h"

struct _AlvConnLimits
{
  guint max_total;
  guint max_per_address;
  guint total;
  GHashTable *per_address;      /* address → GUINT count, never 0 */
  GHashTable *exempt;           /* addresses without a cap of their own */
};

/**
 * alv_conn_limits_new:
 * @max_total: most connections held at once (at least 1)
 * @max_per_address: most connections held at once from one client
 *   address (at least 1)
 *
 * Returns: (transfer full): empty books
 */
AlvConnLimits *
alv_conn_limits_new (guint max_total,
                     guint max_per_address)
{
  AlvConnLimits *limits = g_new0 (AlvConnLimits, 1);

  limits->max_total = MAX (max_total, 1);
  limits->max_per_address = MAX (max_per_address, 1);
  limits->per_address = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  limits->exempt = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  return limits;
}

void
alv_conn_limits_free (AlvConnLimits *limits)
{
  if (limits == NULL)
    return;
  g_hash_table_unref (limits->per_address);
  g_hash_table_unref (limits->exempt);
  g_free (limits);
}

/**
 * alv_conn_limits_exempt:
 * @limits: the books
 * @address: a client address, as text
 *
 * Lifts the per-address cap for @address (a reverse proxy the service
 * trusts, whose connections carry many clients); they still count against
 * the total.
 */
void
alv_conn_limits_exempt (AlvConnLimits *limits,
                        const char    *address)
{
  g_return_if_fail (limits != NULL && address != NULL);
  g_hash_table_add (limits->exempt, g_strdup (address));
}

/**
 * alv_conn_limits_admit:
 * @limits: the books
 * @address: the client's address, as text
 *
 * Decides whether a new connection from @address is taken; when it is,
 * counts it (give it back with alv_conn_limits_release()).
 *
 * Returns: %ALV_ADMIT, or why not
 */
AlvAdmission
alv_conn_limits_admit (AlvConnLimits *limits,
                       const char    *address)
{
  guint held;

  g_return_val_if_fail (limits != NULL && address != NULL, ALV_REFUSE_TOTAL);

  if (limits->total >= limits->max_total)
    return ALV_REFUSE_TOTAL;
  held = GPOINTER_TO_UINT (g_hash_table_lookup (limits->per_address, address));
  if (held >= limits->max_per_address && !g_hash_table_contains (limits->exempt, address))
    return ALV_REFUSE_ADDRESS;
  g_hash_table_insert (limits->per_address, g_strdup (address), GUINT_TO_POINTER (held + 1));
  limits->total++;
  return ALV_ADMIT;
}

/**
 * alv_conn_limits_release:
 * @limits: the books
 * @address: the address given to the alv_conn_limits_admit() that took it
 *
 * Counts a connection as closed.
 */
void
alv_conn_limits_release (AlvConnLimits *limits,
                         const char    *address)
{
  guint held;

  g_return_if_fail (limits != NULL && address != NULL);

  held = GPOINTER_TO_UINT (g_hash_table_lookup (limits->per_address, address));
  g_return_if_fail (held > 0 && limits->total > 0);
  if (held == 1)
    g_hash_table_remove (limits->per_address, address);
  else
    g_hash_table_insert (limits->per_address, g_strdup (address), GUINT_TO_POINTER (held - 1));
  limits->total--;
}

guint
alv_conn_limits_get_total (AlvConnLimits *limits)
{
  g_return_val_if_fail (limits != NULL, 0);
  return limits->total;
}

guint
alv_conn_limits_get_for_address (AlvConnLimits *limits,
                                 const char    *address)
{
  g_return_val_if_fail (limits != NULL && address != NULL, 0);
  return GPOINTER_TO_UINT (g_hash_table_lookup (limits->per_address, address));
}

guint
alv_conn_limits_get_max_total (AlvConnLimits *limits)
{
  g_return_val_if_fail (limits != NULL, 0);
  return limits->max_total;
}

/**
 * alv_conn_limits_cap_for_fd_limit:
 * @fd_limit: the process's soft descriptor limit (RLIMIT_NOFILE)
 * @share_percent: the part of what is left after %ALV_CONN_FD_RESERVE
 *   that this listener may hold, in percent
 *
 * A listener whose connections could take every descriptor leaves the
 * process unable to open a file or accept at all, so its default cap is
 * its share of the limit.
 *
 * Returns: the listener's share of @fd_limit (never below 8)
 */
guint
alv_conn_limits_cap_for_fd_limit (guint64 fd_limit,
                                  guint   share_percent)
{
  guint64 usable = fd_limit > ALV_CONN_FD_RESERVE ? fd_limit - ALV_CONN_FD_RESERVE : 0;
  guint64 share = usable / 100 * MIN (share_percent, 100)
                  + usable % 100 * MIN (share_percent, 100) / 100;

  return (guint) CLAMP (share, 8, G_MAXUINT);
}

/**
 * alv_accept_backoff_ms:
 * @failures: accepts refused in a row so far (at least 1)
 *
 * Returns: how long to wait before trying to accept again
 */
guint
alv_accept_backoff_ms (guint failures)
{
  guint ms = ALV_ACCEPT_BACKOFF_MIN_MS;

  for (guint i = 1; i < failures && ms < ALV_ACCEPT_BACKOFF_MAX_MS; i++)
    ms *= 2;
  return MIN (ms, ALV_ACCEPT_BACKOFF_MAX_MS);
}

/**
 * alv_log_limiter_allow:
 * @limiter: a limiter
 * @now: the time of the event, µs (any monotonic clock)
 * @suppressed_out: (out) (optional): how many events were swallowed
 *   since the last line let through
 *
 * Returns: %TRUE if this event gets its log line
 */
gboolean
alv_log_limiter_allow (AlvLogLimiter *limiter,
                       gint64         now,
                       guint64       *suppressed_out)
{
  g_return_val_if_fail (limiter != NULL, FALSE);

  if (limiter->any && now - limiter->last < limiter->interval)
    {
      limiter->suppressed++;
      return FALSE;
    }
  if (suppressed_out != NULL)
    *suppressed_out = limiter->suppressed;
  limiter->any = TRUE;
  limiter->last = now;
  limiter->suppressed = 0;
  return TRUE;
}
