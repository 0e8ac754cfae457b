/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What a listening socket admits, decided without sockets or a clock:
 * how many connections it holds in all and from one client address, how
 * many it may hold under the process's descriptor limit, how long it waits
 * before accepting again after the system refused an accept, and how often
 * it says so in the log.  AlvListener (alv-listener.h) applies these rules.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * AlvAdmission:
 * @ALV_ADMIT: take the connection
 * @ALV_REFUSE_TOTAL: the listener already holds its maximum
 * @ALV_REFUSE_ADDRESS: this client address already holds its maximum
 */
typedef enum
{
  ALV_ADMIT,
  ALV_REFUSE_TOTAL,
  ALV_REFUSE_ADDRESS,
} AlvAdmission;

typedef struct _AlvConnLimits AlvConnLimits;

AlvConnLimits *alv_conn_limits_new             (guint          max_total,
                                                guint          max_per_address);
void           alv_conn_limits_free            (AlvConnLimits *limits);
void           alv_conn_limits_exempt          (AlvConnLimits *limits,
                                                const char    *address);
AlvAdmission   alv_conn_limits_admit           (AlvConnLimits *limits,
                                                const char    *address);
void           alv_conn_limits_release         (AlvConnLimits *limits,
                                                const char    *address);
guint          alv_conn_limits_get_total       (AlvConnLimits *limits);
guint          alv_conn_limits_get_for_address (AlvConnLimits *limits,
                                                const char    *address);
guint          alv_conn_limits_get_max_total   (AlvConnLimits *limits);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvConnLimits, alv_conn_limits_free)

/**
 * ALV_CONN_FD_RESERVE:
 *
 * Descriptors kept back from every listener's share of the process's limit
 * for what is not a client connection (files, outgoing HTTP, D-Bus).
 */
#define ALV_CONN_FD_RESERVE 48

guint alv_conn_limits_cap_for_fd_limit (guint64 fd_limit,
                                        guint   share_percent);

/**
 * ALV_ACCEPT_BACKOFF_MIN_MS:
 *
 * The first pause after an accept the system refused (no descriptor, no
 * memory); it doubles up to %ALV_ACCEPT_BACKOFF_MAX_MS.
 */
#define ALV_ACCEPT_BACKOFF_MIN_MS 25
/**
 * ALV_ACCEPT_BACKOFF_MAX_MS:
 *
 * The longest pause between accept attempts while the system refuses
 * them, so a listener serves again within this long of descriptors
 * becoming free.
 */
#define ALV_ACCEPT_BACKOFF_MAX_MS 200

guint alv_accept_backoff_ms (guint failures);

/**
 * AlvLogLimiter:
 * @interval: the shortest time between two lines, µs
 * @last: when the last line was let through, µs
 * @any: whether a line was let through yet
 * @suppressed: events swallowed since
 *
 * Lets one log line through per @interval and counts the rest, so that an
 * event repeating thousands of times a second costs one line.
 */
typedef struct
{
  gint64 interval;
  gint64 last;
  gboolean any;
  guint64 suppressed;
} AlvLogLimiter;

#define ALV_LOG_LIMITER_INIT(interval_us) { (interval_us), 0, FALSE, 0 }

gboolean alv_log_limiter_allow (AlvLogLimiter *limiter,
                                gint64         now,
                                guint64       *suppressed_out);

G_END_DECLS
