/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Origin leases: the gateway's part in keeping the station's uplink at
 * one copy of each item.  The origin is a scarce, shared line, so pulling
 * from it is granted, not grabbed: a listener that needs blocks nobody
 * holds asks in its announce, and the gateway, which alone sees every
 * listener, hands out the next run nobody has pulled yet, to at most a
 * few listeners at a time; everybody else is told who is pulling what
 * and copies it from them.  Plain state, time is an input: the gateway
 * and the swarm simulator run the same code.  doc/swarm.md has the rules.
 */
#pragma once

#include <glib.h>

#include "alv-block-map.h"

G_BEGIN_DECLS

typedef struct _GatewayLeases GatewayLeases;

/**
 * GatewayLease:
 * @holder: "ip:port" of the listener pulling
 * @first: first block of the run
 * @last: last block, inclusive
 */
typedef struct
{
  const char *holder;
  guint first;
  guint last;
} GatewayLease;

/* Defaults: one lease running per URN, runs of 64 KiB, a lease lapses
 * 30 s after it was granted unless its holder reported the run held. */
#define GATEWAY_LEASES_MAX_RUNNING  1
#define GATEWAY_LEASES_RUN_BYTES    (64 * 1024)
#define GATEWAY_LEASES_TTL_US       (30 * G_USEC_PER_SEC)
#define GATEWAY_LEASES_RESCUE_MAX   4   /* blocks of a rescue lease */
#define GATEWAY_LEASES_REPORTS      2   /* listeners reporting a holder distrust it */
#define GATEWAY_LEASES_RESCUE_RARE  3   /* a block at most this many hold is rescued past the share */

GatewayLeases *gateway_leases_new     (guint          max_running,
                                       guint          run_bytes,
                                       gint64         ttl_us);
void           gateway_leases_free    (GatewayLeases *leases);

/* @holder announced holding @have (nullable: not said), or left
 * (@stopped): its leases whose runs it holds are done; a holder that left
 * gives back what it did not report held. */
void           gateway_leases_update  (GatewayLeases     *leases,
                                       const char        *urn,
                                       const char        *holder,
                                       const AlvBlockMap *have,
                                       gboolean           stopped,
                                       gint64             now);

/* @holder asks to pull blocks within @first..@last of @urn (an item of
 * @n_blocks blocks of @block_size) from the origin; its previous lease
 * ends, giving back what it did not report held (call
 * gateway_leases_update() with what the same announce said first).  Grants the first run
 * there nobody has pulled (at most run_bytes long) when fewer than
 * max_running leases run for @urn and @holder has fewer than two.  A
 * @rescue asks for blocks that were pulled already but are late for the
 * asker; it is granted (at most GATEWAY_LEASES_RESCUE_MAX blocks) while
 * no other rescue runs for @urn, runs or not, as long as the rescues of
 * @urn stay within a fifth of the blocks granted to runs (and 8 blocks
 * besides); past that share, when @n_holders (how many listeners hold
 * block @first, as they last announced; G_MAXUINT when not counted) is
 * at most GATEWAY_LEASES_RESCUE_RARE, as long as those rescues stay
 * within a tenth of the item's blocks.  Returns whether a lease was
 * granted, and its run in @first_out..@last_out. */
gboolean       gateway_leases_request (GatewayLeases *leases,
                                       const char    *urn,
                                       guint          n_blocks,
                                       guint          block_size,
                                       const char    *holder,
                                       guint          first,
                                       guint          last,
                                       gboolean       rescue,
                                       guint          n_holders,
                                       gint64         now,
                                       guint         *first_out,
                                       guint         *last_out);

/* The same for a @holder nobody can connect to (the gateway's
 * connect-back check failed): nobody could copy its run, so the run is
 * private: its blocks stay to be granted to others, it is not among
 * gateway_leases_running(), and it takes no place of max_running.  It
 * is granted only while no reachable listener asked for a run (with
 * gateway_leases_request()) in the last 5 s, one at a time per @urn, of
 * blocks nobody was granted yet: while reachable listeners pull the
 * item, the unreachable copy from them (and ask for rescues when late).
 * So a listener alone, or among unreachable ones only, still gets the
 * item, at a cost to the origin of at most one more stream per item. */
gboolean       gateway_leases_request_private (GatewayLeases *leases,
                                               const char    *urn,
                                               guint          n_blocks,
                                               guint          block_size,
                                               const char    *holder,
                                               guint          first,
                                               guint          last,
                                               gint64         now,
                                               guint         *first_out,
                                               guint         *last_out);

/* The leases running for @urn (at most @max), as #GatewayLease; valid
 * until the next call. */
GArray        *gateway_leases_running (GatewayLeases *leases,
                                       const char    *urn,
                                       guint          max,
                                       gint64         now);

/* @reporter says @accused served it a block that failed verification
 * (it banned it).  Once GATEWAY_LEASES_REPORTS different listeners said
 * so, @accused is distrusted for @urn: every run it was granted is given
 * back to be pulled again by someone else, and it is granted nothing
 * more, also when it was reported before it was granted anything (those
 * who banned it never ask it again, so nobody would report its run).
 * At most 1024 listeners are accused per URN.  Returns whether this
 * report tipped the balance. */
gboolean       gateway_leases_report  (GatewayLeases *leases,
                                       const char    *urn,
                                       const char    *reporter,
                                       const char    *accused,
                                       gint64         now);

/* Blocks of @urn granted so far (each run once; rescues not counted). */
guint64        gateway_leases_get_blocks_granted (GatewayLeases *leases,
                                       const char    *urn);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayLeases, gateway_leases_free)

G_END_DECLS
