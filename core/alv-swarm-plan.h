/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The swarm's decisions for one item, apart from its mechanics: which
 * blocks to ask of which peer, when to ask the origin, whom to poll, when
 * to announce.  A plan is plain state: events come in (a peer's answer, a
 * block stored, a request ended, the gateway's answer), alv_swarm_plan_tick()
 * hands out actions (send a request, poll a peer, cancel a request,
 * announce) and says when it wants to be ticked again.  Time and
 * randomness are inputs; there is no I/O, no main loop and no libsoup in
 * it, so the daemon (core/alv-swarm.c) and the simulator (tests/sim/) run
 * the same code.  doc/swarm.md explains the rules and their numbers.
 *
 * Peers are named by their key, "ip:port" as the gateway and X-Alt give
 * it.  Requests are named by the id their REQUEST action carries; the
 * caller reports how each one ends, exactly once.
 *
 * The plan also decides whom to believe: every peer is learnt from the
 * gateway (vouched for), from a requester naming its own port, or from
 * another peer's X-Alt (gossip), and only the vouched-for and those that
 * served a verified block are named to others.  The other addresses are
 * unproven: a few per source, a few first contacts at a time, dropped
 * after a few failures (doc/swarm.md, "Whom to believe").
 */
#pragma once

#include <glib.h>

#include "alv-block-map.h"

G_BEGIN_DECLS

/* No deadline: the block is not needed by the stream (yet). */
#define ALV_SWARM_PLAN_NO_DEADLINE G_MAXINT64

/* The peer table's limits (doc/swarm.md, "Whom to believe").  Peers
 * known at once: */
#define ALV_SWARM_PLAN_MAX_PEERS                200
/* unproven addresses one source may give (a gossiping peer for the
 * addresses in its X-Alt, a requester's host for itself): */
#define ALV_SWARM_PLAN_SOURCE_MAX               8
/* a gossiped address dropped after failing stays counted against the
 * peer that named it this long (unless that peer proves itself): */
#define ALV_SWARM_PLAN_SOURCE_SPENT_US          (120 * G_USEC_PER_SEC)
/* unproven gossiped addresses at once, of ALV_SWARM_PLAN_MAX_PEERS: */
#define ALV_SWARM_PLAN_GOSSIP_MAX               50
/* gossiped addresses contacted for the first time, per window: */
#define ALV_SWARM_PLAN_FIRST_CONTACTS           4
#define ALV_SWARM_PLAN_FIRST_CONTACT_WINDOW_US  (5 * G_USEC_PER_SEC)
/* an unproven address is dropped after this many failures in a row
 * (backed off 2 s, then 4 s, in between; an answer to a poll, or a
 * request's body, ends a row): */
#define ALV_SWARM_PLAN_UNPROVEN_MAX_FAILURES    3
/* alv_swarm_plan_tick() wants no wake-up until the next event. */
#define ALV_SWARM_PLAN_NEVER G_MAXINT64

typedef struct _AlvSwarmPlan AlvSwarmPlan;

typedef enum
{
  ALV_SWARM_ACTION_REQUEST,     /* GET blocks first..last of @peer (NULL: the origin) */
  ALV_SWARM_ACTION_POLL,        /* HEAD to @peer: what it holds and pulls */
  ALV_SWARM_ACTION_CANCEL,      /* cancel request @request (then report it ended) */
  ALV_SWARM_ACTION_ANNOUNCE,    /* announce to the gateway (with @want_lease) */
} AlvSwarmActionKind;

/**
 * AlvSwarmAction:
 * @kind: what to do
 * @request: REQUEST, CANCEL: the request's id (never 0)
 * @peer: REQUEST, POLL: the peer's key, NULL for the origin; owned by the
 *   plan, valid until the next call into it
 * @first: REQUEST: first block; ANNOUNCE: first block of the lease wanted
 * @last: REQUEST, ANNOUNCE: last block, inclusive
 * @want_lease: ANNOUNCE: ask the gateway for an origin lease within
 *   @first..@last
 * @rescue: ANNOUNCE with @want_lease: the blocks were pulled already but
 *   are late here (a rescue lease, granted only while the origin is idle)
 * @deadline: REQUEST: when block @first is needed (for X-Due-In), or
 *   %ALV_SWARM_PLAN_NO_DEADLINE
 * @reason: a static string for logs ("urgent", "rarest", "lease", …)
 */
typedef struct
{
  AlvSwarmActionKind kind;
  guint request;
  const char *peer;
  guint first;
  guint last;
  gboolean want_lease;
  gboolean rescue;
  gint64 deadline;
  const char *reason;
} AlvSwarmAction;

/* Where a peer was learnt (doc/swarm.md, "Whom to believe"). */
typedef enum
{
  ALV_SWARM_PEER_FROM_GATEWAY,  /* a gateway answer named it: vouched for */
  ALV_SWARM_PEER_FROM_REQUESTER, /* it asked us for blocks naming its port */
  ALV_SWARM_PEER_FROM_GOSSIP,   /* another peer's X-Alt named it */
} AlvSwarmPeerFrom;

/* How a peer's answer speaks of what it holds. */
typedef enum
{
  ALV_SWARM_AVAIL_MAP,          /* @avail is what it holds */
  ALV_SWARM_AVAIL_NONE,         /* holds nothing (no X-Available-Ranges, 404) */
  ALV_SWARM_AVAIL_ALL,          /* a 200 of the whole item: holds everything */
  ALV_SWARM_AVAIL_KEEP,         /* says nothing new (a 206 without the header) */
} AlvSwarmAvail;

typedef enum
{
  ALV_SWARM_END_OK,             /* finished (perhaps fewer blocks than asked) */
  ALV_SWARM_END_FAILED,         /* connection error, bad status, short body */
  ALV_SWARM_END_CANCELLED,      /* cancelled by us (a CANCEL action, a stop) */
} AlvSwarmEnd;

/**
 * AlvSwarmPlanDeadlineFunc:
 * @index: a block index
 * @user_data: data given to alv_swarm_plan_set_deadline_func()
 *
 * Returns: the time (in the plan's clock) by which block @index is
 *   needed, or %ALV_SWARM_PLAN_NO_DEADLINE
 */
typedef gint64 (*AlvSwarmPlanDeadlineFunc) (guint    index,
                                            gpointer user_data);

/**
 * AlvSwarmPlanStats:
 * @origin_requests: REQUEST actions to the origin so far
 * @origin_blocks: blocks asked of the origin so far
 * @peers_known: peers known, not banned
 * @peers_banned: peers banned for a bad block
 * @peers_dropped: unproven addresses dropped after failing (or to make
 *   room for one the gateway vouched for)
 * @peers_refused: addresses not taken: over their source's allowance,
 *   the gossip share or the table's size
 * @requests_in_flight: requests not yet reported ended
 * @polls: POLL actions so far
 * @announces: ANNOUNCE actions so far
 * @leases: origin leases granted to this listener
 */
typedef struct
{
  guint64 origin_requests;
  guint64 origin_blocks;
  guint peers_known;
  guint peers_banned;
  guint64 peers_dropped;
  guint64 peers_refused;
  guint requests_in_flight;
  guint64 polls;
  guint64 announces;
  guint64 leases;
} AlvSwarmPlanStats;

AlvSwarmPlan *alv_swarm_plan_new            (guint64       length,
                                             guint         block_size,
                                             gboolean      has_origin,
                                             guint32       seed);
void          alv_swarm_plan_free           (AlvSwarmPlan *plan);

/* --- what the listener is ------------------------------------------- */

/* The item's URN: names the segments' owners without a gateway. */
void          alv_swarm_plan_set_urn        (AlvSwarmPlan *plan,
                                             const char   *urn);

/* Whether this listener announces to a gateway (and so takes part in the
 * swarm's agreement on origin pulls); without one it is alone: it pulls
 * from the origin whatever no peer it knows of holds. */
void          alv_swarm_plan_set_announcing (AlvSwarmPlan *plan,
                                             gboolean      announcing);
/* Announces at the next tick rather than at the interval's end: what
 * the gateway knows of this listener changed (its port was mapped). */
void          alv_swarm_plan_announce_soon  (AlvSwarmPlan *plan);
/* Its own ip:port as the gateway told it (X-Observed-Address). */
void          alv_swarm_plan_set_self_key   (AlvSwarmPlan *plan,
                                             const char   *key);
void          alv_swarm_plan_set_active     (AlvSwarmPlan *plan,
                                             gboolean      active,
                                             gint64        now);
/* Peer blocks can be asked for only once the tree is there. */
void          alv_swarm_plan_set_tree       (AlvSwarmPlan *plan,
                                             gboolean      have_tree);
void          alv_swarm_plan_set_urgent_window (AlvSwarmPlan *plan,
                                             gint64        window_us);
/* Reseeds the tie-breaks (tests). */
void          alv_swarm_plan_set_seed       (AlvSwarmPlan *plan,
                                             guint32       seed);

/* --- deadlines -------------------------------------------------------- */

void          alv_swarm_plan_set_playhead   (AlvSwarmPlan *plan,
                                             guint64       offset,
                                             guint64       bytes_per_second,
                                             gint64        now);
/* The stream goes on from @offset at @now: if that is later than its
 * deadline (a stall), the playhead moves there — the listener falls
 * behind rather than skip what it has not heard (doc/swarm.md). */
void          alv_swarm_plan_stream_resumed (AlvSwarmPlan *plan,
                                             guint64       offset,
                                             gint64        now);
void          alv_swarm_plan_set_needed_from (AlvSwarmPlan *plan,
                                             guint64       offset);
/* Nothing plays from this item any more (the slot ended, or the listener
 * tuned away): no block has a deadline from now on, what is left is
 * fetched as a prefetch is, for sharing; the needed-from point stays. */
void          alv_swarm_plan_release_playhead (AlvSwarmPlan *plan);
void          alv_swarm_plan_set_deadline_func (AlvSwarmPlan            *plan,
                                             AlvSwarmPlanDeadlineFunc func,
                                             gpointer                 user_data);
gint64        alv_swarm_plan_get_deadline   (AlvSwarmPlan *plan,
                                             guint         index);
guint64       alv_swarm_plan_get_playhead   (AlvSwarmPlan *plan);

/* --- events ----------------------------------------------------------- */

/* A peer learnt of @from: a gateway's answer, a requester's
 * X-Listen-Port, or the X-Alt of @source's answer (the key of the peer
 * that answered; ignored unless @from is GOSSIP), at @now.  A known
 * peer the gateway names becomes vouched for.  Returns TRUE when the peer
 * is new; FALSE when it was known already, is ourselves, or was refused
 * (over its source's allowance, the gossip share, or the table's size). */
gboolean      alv_swarm_plan_add_peer       (AlvSwarmPlan     *plan,
                                             const char       *key,
                                             AlvSwarmPeerFrom  from,
                                             const char       *source,
                                             gint64            now);
/* What a peer's answer said: @avail (taken over, used with
 * %ALV_SWARM_AVAIL_MAP) and @fetching (taken over, nullable: what it is
 * pulling from the origin, X-Pending-Ranges).  The answer to a poll ends
 * the peer's failures in a row. */
void          alv_swarm_plan_peer_info      (AlvSwarmPlan *plan,
                                             const char   *key,
                                             AlvSwarmAvail how,
                                             AlvBlockMap  *avail,
                                             AlvBlockMap  *fetching,
                                             gint64        now);
/* It does not share the item (404): it holds nothing.  From a peer
 * vouched for or proven that is an answer ("no tree yet"); from an
 * unproven address, a failure. */
void          alv_swarm_plan_peer_not_sharing (AlvSwarmPlan *plan,
                                             const char   *key,
                                             gint64        now);
/* A poll ended (whatever it said was reported with peer_info). */
void          alv_swarm_plan_poll_done      (AlvSwarmPlan *plan,
                                             const char   *key);
/* The peer failed us: backs it off (longer by @extra_us). */
void          alv_swarm_plan_peer_failed    (AlvSwarmPlan *plan,
                                             const char   *key,
                                             gint64        extra_us,
                                             gint64        now);
/* Request @request was refused for lack of an upload slot (503 with
 * Retry-After): its peer is asked nothing of its kind (rarest-first, or
 * due soon) for a while.  Call it before ending the request. */
void          alv_swarm_plan_request_busy   (AlvSwarmPlan *plan,
                                             guint         request,
                                             gint64        now);

/* Bytes of request @request arrived. */
void          alv_swarm_plan_request_progress (AlvSwarmPlan *plan,
                                             guint         request,
                                             guint64       bytes,
                                             gint64        now);
/* The source answers only up to block @last (a PFSP sub-range). */
void          alv_swarm_plan_request_truncate (AlvSwarmPlan *plan,
                                             guint         request,
                                             guint         last);
/* The request's next block arrived whole; returns whether to store it
 * (FALSE: a duplicate, held or being stored already). */
gboolean      alv_swarm_plan_request_block  (AlvSwarmPlan *plan,
                                             guint         request,
                                             guint        *index_out);
/* The store's verdict on a block handed to it: held, or @mismatch (it
 * failed verification: the peer @from is banned, or, from the origin
 * (@from NULL), the origin is not used again), or another error. */
void          alv_swarm_plan_block_stored   (AlvSwarmPlan *plan,
                                             guint         index,
                                             gboolean      ok,
                                             gboolean      mismatch,
                                             const char   *from);
/* The store holds @index (a block that came another way, e.g. at start),
 * or no longer holds it (_forget_: dropped after the tree came). */
void          alv_swarm_plan_set_held       (AlvSwarmPlan *plan,
                                             guint         index);
void          alv_swarm_plan_forget_block   (AlvSwarmPlan *plan,
                                             guint         index);
/* The origin answered a Range request with the whole item (200). */
void          alv_swarm_plan_origin_ignores_range (AlvSwarmPlan *plan);
void          alv_swarm_plan_request_ended  (AlvSwarmPlan *plan,
                                             guint         request,
                                             AlvSwarmEnd   end,
                                             gint64        extra_backoff_us,
                                             gint64        now);

/* The gateway's answer to an ANNOUNCE: @ok FALSE when it failed (the
 * gateway is down or refused); @interval the seconds until the next
 * regular announce.  An origin lease is @lease_first..@lease_last
 * (inclusive; @has_lease FALSE for none).  @lease_known says whether the
 * gateway speaks of leases at all (an older one does not: the listeners
 * then agree by rendezvous hashing).  Peers in the answer are added with
 * alv_swarm_plan_add_peer() and those pulling from the origin reported
 * with alv_swarm_plan_peer_pulling(), before this call. */
void          alv_swarm_plan_announce_done  (AlvSwarmPlan *plan,
                                             gboolean      ok,
                                             guint         interval,
                                             gboolean      lease_known,
                                             gboolean      has_lease,
                                             guint         lease_first,
                                             guint         lease_last,
                                             gint64        now);
/* The gateway says @key holds the origin lease for @first..@last. */
void          alv_swarm_plan_peer_pulling   (AlvSwarmPlan *plan,
                                             const char   *key,
                                             guint         first,
                                             guint         last,
                                             gint64        now);

/* --- decisions -------------------------------------------------------- */

/* Appends the actions due at @now to @actions (an array of
 * #AlvSwarmAction) and returns when the plan wants to be ticked again
 * even if nothing happens (%ALV_SWARM_PLAN_NEVER: only after an event). */
gint64        alv_swarm_plan_tick           (AlvSwarmPlan *plan,
                                             gint64        now,
                                             GArray       *actions);

/* --- state ------------------------------------------------------------ */

guint         alv_swarm_plan_get_n_blocks   (AlvSwarmPlan *plan);
gboolean      alv_swarm_plan_has_block      (AlvSwarmPlan *plan,
                                             guint         index);
const AlvBlockMap *alv_swarm_plan_get_have  (AlvSwarmPlan *plan);
gboolean      alv_swarm_plan_is_complete    (AlvSwarmPlan *plan);
/* Whether every block from the needed point on is held. */
gboolean      alv_swarm_plan_has_needed     (AlvSwarmPlan *plan);
/* Blocks being pulled from the origin now (nullable: none), for
 * X-Pending-Ranges. */
AlvBlockMap  *alv_swarm_plan_get_origin_pending (AlvSwarmPlan *plan);
/* How many of the peers we know hold block @index (for the peer server:
 * a block only this listener can give is uploaded first). */
/* The peers banned since the last call (keys; for the next announce's
 * report to the gateway). */
GPtrArray    *alv_swarm_plan_take_banned    (AlvSwarmPlan *plan);
guint         alv_swarm_plan_count_holders  (AlvSwarmPlan *plan,
                                             guint         index);
gboolean      alv_swarm_plan_is_banned      (AlvSwarmPlan *plan,
                                             const char   *key);
gboolean      alv_swarm_plan_has_peer       (AlvSwarmPlan *plan,
                                             const char   *key);
/* The peers that may be named to others (X-Alt): those that served a
 * verified block, then those the gateway vouched for; never a banned one
 * or one failing now.  Keys, newly allocated. */
GPtrArray    *alv_swarm_plan_get_shareable  (AlvSwarmPlan *plan);
void          alv_swarm_plan_get_stats      (AlvSwarmPlan      *plan,
                                             AlvSwarmPlanStats *stats);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvSwarmPlan, alv_swarm_plan_free)

G_END_DECLS
