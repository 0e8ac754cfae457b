/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of the swarm's planner (core/alv-swarm-plan.c), without sockets
 * or a wall clock: first the plan alone, fed events by hand, with exact
 * expectations of its actions; then whole swarms in the simulator
 * (tests/sim/), which runs the same planner and the gateway's real peer
 * table and origin leases on a virtual clock.  A simulated run is a pure
 * function of its configuration and seed, so the copy counts, stalls and
 * bans asserted here are what this code does, not what a loaded machine
 * happened to let it do.
 */
#include "config.h"

#include <glib.h>

#include "alv-block-map.h"
#include "alv-hash-tree.h"
#include "alv-rendezvous.h"
#include "alv-swarm-plan.h"
#include "sim.h"

#define BS 16384
#define N_BLOCKS 64
#define LENGTH ((guint64) N_BLOCKS * BS - 100)
#define SEC G_USEC_PER_SEC
/* an item and this listener, for the order of segment owners */
#define OWNER_URN "urn:sha1:PLSTHIFQGSJZT45FJUPAKUZWUGYQYPFB"
#define OWNER_SELF "10.0.0.9:7000"

/* --- the plan alone ----------------------------------------------------- */

static GArray *
tick (AlvSwarmPlan *plan,
      gint64        now,
      gint64       *wake)
{
  GArray *actions = g_array_new (FALSE, TRUE, sizeof (AlvSwarmAction));
  gint64 w = alv_swarm_plan_tick (plan, now, actions);

  if (wake != NULL)
    *wake = w;
  return actions;
}

static guint
count_kind (GArray             *actions,
            AlvSwarmActionKind  kind,
            gboolean            origin)
{
  guint n = 0;

  for (guint i = 0; i < actions->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (actions, AlvSwarmAction, i);

      if (a->kind == kind && (kind != ALV_SWARM_ACTION_REQUEST || (a->peer == NULL) == origin))
        n++;
    }
  return n;
}

static const AlvSwarmAction *
find_kind (GArray             *actions,
           AlvSwarmActionKind  kind)
{
  for (guint i = 0; i < actions->len; i++)
    if (g_array_index (actions, AlvSwarmAction, i).kind == kind)
      return &g_array_index (actions, AlvSwarmAction, i);
  return NULL;
}

/* Alone (no gateway), nothing known: the origin, one coalesced run of at
 * most 1 MiB, at most two at a time; a complete plan does not wake. */
static void
test_plan_alone (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, TRUE, 1);
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  g_autoptr(GArray) a3 = NULL;
  const AlvSwarmAction *r;
  gint64 wake;

  alv_swarm_plan_set_tree (plan, TRUE);
  a1 = tick (plan, 0, NULL);
  g_assert_cmpuint (a1->len, ==, 1);
  r = &g_array_index (a1, AlvSwarmAction, 0);
  g_assert_cmpint (r->kind, ==, ALV_SWARM_ACTION_REQUEST);
  g_assert_null (r->peer);
  g_assert_cmpuint (r->first, ==, 0);
  g_assert_cmpuint (r->last, ==, 63);   /* 1 MiB = 64 blocks */
  for (guint i = 0; i < N_BLOCKS; i++)
    {
      guint index;

      g_assert_true (alv_swarm_plan_request_block (plan, r->request, &index));
      g_assert_cmpuint (index, ==, i);
      alv_swarm_plan_block_stored (plan, index, TRUE, FALSE, NULL);
    }
  alv_swarm_plan_request_ended (plan, r->request, ALV_SWARM_END_OK, 0, SEC);
  g_assert_true (alv_swarm_plan_is_complete (plan));
  a2 = tick (plan, SEC, &wake);
  g_assert_cmpuint (a2->len, ==, 0);
  g_assert_cmpint (wake, ==, ALV_SWARM_PLAN_NEVER);
  a3 = tick (plan, 100 * SEC, &wake);
  g_assert_cmpuint (a3->len, ==, 0);
}

/* A listener that played an item and moved on (its slot ended while it
 * was behind): once the playhead is released nothing is urgent any more,
 * blocks long past their deadlines included; the rest is fetched as a
 * prefetch is, from peers, never before the needed-from point. */
static void
test_plan_release_playhead (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, TRUE, 1);
  g_autoptr(GArray) before = NULL;
  g_autoptr(GArray) after = NULL;
  AlvBlockMap *avail = alv_block_map_new (N_BLOCKS);
  guint urgent = 0;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_set_playhead (plan, 32 * BS, 16000, 0);
  for (guint i = 0; i < N_BLOCKS; i++)
    alv_block_map_set (avail, i);
  alv_swarm_plan_add_peer (plan, "127.0.0.2:7002", ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  alv_swarm_plan_peer_info (plan, "127.0.0.2:7002", ALV_SWARM_AVAIL_MAP, avail, NULL, 0);

  /* 30 s later: every block from 32 on is late, the listener still plays */
  before = tick (plan, 30 * SEC, NULL);
  for (guint i = 0; i < before->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (before, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_REQUEST && a->deadline != ALV_SWARM_PLAN_NO_DEADLINE)
        urgent++;
    }
  g_assert_cmpuint (urgent, >, 0);
  for (guint i = 0; i < before->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (before, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_REQUEST)
        alv_swarm_plan_request_ended (plan, a->request, ALV_SWARM_END_CANCELLED, 0, 30 * SEC);
    }

  alv_swarm_plan_release_playhead (plan);
  for (guint i = 32; i < N_BLOCKS; i++)
    g_assert_cmpint (alv_swarm_plan_get_deadline (plan, i), ==, ALV_SWARM_PLAN_NO_DEADLINE);
  after = tick (plan, 31 * SEC, NULL);
  g_assert_cmpuint (count_kind (after, ALV_SWARM_ACTION_REQUEST, FALSE), >, 0);
  g_assert_cmpuint (count_kind (after, ALV_SWARM_ACTION_REQUEST, TRUE), ==, 0);
  for (guint i = 0; i < after->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (after, AlvSwarmAction, i);

      if (a->kind != ALV_SWARM_ACTION_REQUEST)
        continue;
      g_assert_cmpint (a->deadline, ==, ALV_SWARM_PLAN_NO_DEADLINE);
      g_assert_cmpuint (a->first, >=, 32);
    }
}

/* Announcing: nothing from the origin without a lease; the first
 * announce asks for one; a refusal with the puller named means copying
 * from that peer; a granted lease is pulled as one run, and reported. */
static void
test_plan_lease (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, TRUE, 1);
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  g_autoptr(GArray) a3 = NULL;
  g_autoptr(GArray) a4 = NULL;
  const AlvSwarmAction *ann, *req;
  AlvBlockMap *avail;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_set_announcing (plan, TRUE);
  alv_swarm_plan_set_self_key (plan, "127.0.0.1:7001");
  alv_swarm_plan_set_playhead (plan, 0, 16000, 0);
  a1 = tick (plan, 0, NULL);
  g_assert_cmpuint (count_kind (a1, ALV_SWARM_ACTION_REQUEST, TRUE), ==, 0);
  ann = find_kind (a1, ALV_SWARM_ACTION_ANNOUNCE);
  g_assert_nonnull (ann);
  g_assert_true (ann->want_lease);
  g_assert_false (ann->rescue);
  g_assert_cmpuint (ann->first, ==, 0);

  /* refused: 127.0.0.2:7002 pulls 0-3; ask it what it holds */
  alv_swarm_plan_peer_pulling (plan, "127.0.0.2:7002", 0, 3, SEC / 10);
  alv_swarm_plan_announce_done (plan, TRUE, 900, TRUE, FALSE, 0, 0, SEC / 10);
  a2 = tick (plan, SEC / 10, NULL);
  g_assert_cmpuint (count_kind (a2, ALV_SWARM_ACTION_REQUEST, TRUE), ==, 0);
  g_assert_cmpuint (count_kind (a2, ALV_SWARM_ACTION_POLL, FALSE), ==, 1);
  g_assert_cmpstr (find_kind (a2, ALV_SWARM_ACTION_POLL)->peer, ==, "127.0.0.2:7002");
  alv_swarm_plan_poll_done (plan, "127.0.0.2:7002");
  avail = alv_block_map_new (N_BLOCKS);
  alv_block_map_set (avail, 0);
  alv_swarm_plan_peer_info (plan, "127.0.0.2:7002", ALV_SWARM_AVAIL_MAP, avail, NULL, SEC / 5);
  a3 = tick (plan, SEC / 5, NULL);
  req = find_kind (a3, ALV_SWARM_ACTION_REQUEST);
  g_assert_nonnull (req);
  g_assert_cmpstr (req->peer, ==, "127.0.0.2:7002");
  g_assert_cmpuint (req->first, ==, 0);
  g_assert_cmpint (req->deadline, ==, 0);   /* due at once: X-Due-In 0 */
  g_assert_cmpuint (count_kind (a3, ALV_SWARM_ACTION_REQUEST, TRUE), ==, 0);

  /* granted 4-7 (the answer to the next ask): one origin request, 4-7 */
  alv_swarm_plan_announce_done (plan, TRUE, 900, TRUE, TRUE, 4, 7, 2 * SEC);
  a4 = tick (plan, 2 * SEC, NULL);
  g_assert_cmpuint (count_kind (a4, ALV_SWARM_ACTION_REQUEST, TRUE), ==, 1);
  for (guint i = 0; i < a4->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (a4, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_REQUEST && a->peer == NULL)
        {
          g_assert_cmpuint (a->first, ==, 4);
          g_assert_cmpuint (a->last, ==, 7);
        }
    }
}

/* A listener whose port was just mapped (its announced port changed)
 * announces at the next tick, not at the end of the interval. */
static void
test_plan_announce_soon (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, TRUE, 1);
  g_autoptr(GArray) a0 = NULL;
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  gint64 wake;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_set_announcing (plan, TRUE);
  /* complete: no quick re-announce to find peers */
  for (guint i = 0; i < N_BLOCKS; i++)
    alv_swarm_plan_block_stored (plan, i, TRUE, FALSE, NULL);
  a0 = tick (plan, 0, NULL);
  g_assert_nonnull (find_kind (a0, ALV_SWARM_ACTION_ANNOUNCE));
  alv_swarm_plan_announce_done (plan, TRUE, 900, TRUE, FALSE, 0, 0, SEC);
  a1 = tick (plan, 2 * SEC, &wake);
  g_assert_null (find_kind (a1, ALV_SWARM_ACTION_ANNOUNCE));
  g_assert_cmpint (wake, >=, 900 * SEC);
  alv_swarm_plan_announce_soon (plan);
  a2 = tick (plan, 3 * SEC, NULL);
  g_assert_nonnull (find_kind (a2, ALV_SWARM_ACTION_ANNOUNCE));
}

/* A plan announcing to a gateway that grants leases, playing from block
 * 0 at the bitrate (16000 bytes/s: block i is due at 1.024 i s), whose
 * first announce the gateway answered without a lease. */
static AlvSwarmPlan *
leased_plan (void)
{
  AlvSwarmPlan *plan = alv_swarm_plan_new (LENGTH, BS, TRUE, 1);
  g_autoptr(GArray) a0 = NULL;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_set_announcing (plan, TRUE);
  alv_swarm_plan_set_self_key (plan, "127.0.0.1:7001");
  alv_swarm_plan_set_playhead (plan, 0, 16000, 0);
  a0 = tick (plan, 0, NULL);
  g_assert_nonnull (find_kind (a0, ALV_SWARM_ACTION_ANNOUNCE));
  alv_swarm_plan_announce_done (plan, TRUE, 900, TRUE, FALSE, 0, 0, 0);
  return plan;
}

/* Peer @key, heard from: it holds nothing and pulls blocks
 * @first..@last from the origin (X-Pending-Ranges). */
static void
add_puller (AlvSwarmPlan *plan,
            const char   *key,
            guint         first,
            guint         last)
{
  AlvBlockMap *fetching = alv_block_map_new (N_BLOCKS);

  for (guint i = first; i <= last; i++)
    alv_block_map_set (fetching, i);
  alv_swarm_plan_add_peer (plan, key, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  alv_swarm_plan_peer_info (plan, key, ALV_SWARM_AVAIL_NONE, NULL, fetching, 0);
}

/* The requests to @key among @actions (the last one in @last_out). */
static guint
requests_to (GArray                *actions,
             const char            *key,
             const AlvSwarmAction **last_out)
{
  guint n = 0;

  for (guint i = 0; i < actions->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (actions, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_REQUEST && g_strcmp0 (a->peer, key) == 0)
        {
          n++;
          if (last_out != NULL)
            *last_out = a;
        }
    }
  return n;
}

/* A fresh block is asked of its puller before it holds it: the request
 * waits there (doc/peer-protocol.md) and the block has a second holder
 * the moment it lands, not when somebody is about to play it. */
static void
test_plan_fresh_waits_at_puller (void)
{
  g_autoptr(AlvSwarmPlan) plan = leased_plan ();
  g_autoptr(GArray) a1 = NULL;
  const AlvSwarmAction *req = NULL;

  add_puller (plan, "127.0.0.2:7002", 20, 23);
  a1 = tick (plan, SEC / 10, NULL);
  g_assert_cmpuint (requests_to (a1, "127.0.0.2:7002", &req), ==, 1);
  g_assert_cmpuint (req->first, ==, req->last);
  g_assert_cmpuint (req->first, >=, 20);
  g_assert_cmpuint (req->first, <=, 23);
  g_assert_cmpstr (req->reason, ==, "fresh");
}

/* At most two requests wait at pullers at once; a puller that answers
 * one with nothing (it has enough waiting, or its pull failed) is asked
 * for no block it pulls for a second. */
static void
test_plan_fresh_bounded (void)
{
  g_autoptr(AlvSwarmPlan) plan = leased_plan ();
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  g_autoptr(GArray) a3 = NULL;
  g_autoptr(GArray) a4 = NULL;
  const char *keys[] = { "127.0.0.2:7002", "127.0.0.3:7003", "127.0.0.4:7004" };
  const AlvSwarmAction *req[3] = { NULL, NULL, NULL };
  guint asked = 0, refused = G_MAXUINT, idle = G_MAXUINT, index;

  /* each pulls one block: a puller is asked once at most */
  for (guint k = 0; k < 3; k++)
    add_puller (plan, keys[k], 20 + k, 20 + k);
  a1 = tick (plan, SEC / 10, NULL);
  for (guint k = 0; k < 3; k++)
    if (requests_to (a1, keys[k], &req[k]) > 0)
      {
        g_assert_cmpstr (req[k]->reason, ==, "fresh");
        asked++;
        if (refused == G_MAXUINT)
          refused = k;
      }
    else
      idle = k;
  g_assert_cmpuint (asked, ==, 2);
  g_assert_cmpuint (idle, !=, G_MAXUINT);

  /* one is answered with nothing: the third puller is asked now, the
   * one that refused is not */
  alv_swarm_plan_request_ended (plan, req[refused]->request, ALV_SWARM_END_OK, 0, SEC);
  a2 = tick (plan, SEC, NULL);
  g_assert_cmpuint (requests_to (a2, keys[refused], NULL), ==, 0);
  g_assert_cmpuint (requests_to (a2, keys[idle], &req[idle]), ==, 1);
  g_assert_cmpuint (req[idle]->first, ==, 20 + idle);

  /* the third one's block lands and is passed on: still not the one
   * that refused, until a second has passed */
  g_assert_true (alv_swarm_plan_request_block (plan, req[idle]->request, &index));
  alv_swarm_plan_block_stored (plan, index, TRUE, FALSE, keys[idle]);
  alv_swarm_plan_request_progress (plan, req[idle]->request, BS, SEC + SEC / 2);
  alv_swarm_plan_request_ended (plan, req[idle]->request, ALV_SWARM_END_OK, 0, SEC + SEC / 2);
  a3 = tick (plan, SEC + SEC / 2, NULL);
  g_assert_cmpuint (requests_to (a3, keys[refused], NULL), ==, 0);
  a4 = tick (plan, 2 * SEC, NULL);
  g_assert_cmpuint (requests_to (a4, keys[refused], &req[refused]), ==, 1);
  g_assert_cmpuint (req[refused]->first, ==, 20 + refused);
}

/* The lease asked for after an answer without one, when blocks
 * 0..@held-1 are held: the first block nobody holds or pulls is @held,
 * due at 1.024 @held s; the ask comes at once or after the refusal's
 * back-off (about a second). */
static void
lease_asked (guint  held,
             guint *first_out,
             guint *last_out)
{
  g_autoptr(AlvSwarmPlan) plan = leased_plan ();
  g_autoptr(GArray) a1 = NULL;
  const AlvSwarmAction *ann;

  for (guint i = 0; i < held; i++)
    alv_swarm_plan_set_held (plan, i);
  /* the next ask, a second later (the refusal's back-off) */
  a1 = tick (plan, 0, NULL);
  ann = find_kind (a1, ALV_SWARM_ACTION_ANNOUNCE);
  if (ann == NULL)
    {
      g_array_unref (g_steal_pointer (&a1));
      a1 = tick (plan, 9 * SEC / 8, NULL);
      ann = find_kind (a1, ALV_SWARM_ACTION_ANNOUNCE);
    }
  g_assert_nonnull (ann);
  g_assert_true (ann->want_lease);
  g_assert_false (ann->rescue);
  *first_out = ann->first;
  *last_out = ann->last;
}

/* A lease of one block for a block due in 2 to 10 s (each block every
 * listener is about to want starts from another listener); the horizon
 * (runs of the gateway's length) sooner and further ahead. */
static void
test_plan_lease_length (void)
{
  guint first, last;

  lease_asked (6, &first, &last);       /* due in 5 to 6.1 s */
  g_assert_cmpuint (first, ==, 6);
  g_assert_cmpuint (last, ==, 6);
  lease_asked (9, &first, &last);       /* 8.1 to 9.2 s */
  g_assert_cmpuint (first, ==, 9);
  g_assert_cmpuint (last, ==, 9);
  lease_asked (1, &first, &last);       /* 1 s or less */
  g_assert_cmpuint (first, ==, 1);
  g_assert_cmpuint (last, >, 1);
  lease_asked (30, &first, &last);      /* 30 s ahead */
  g_assert_cmpuint (first, ==, 30);
  g_assert_cmpuint (last, >, 30);
}

/* A block that fails verification bans its peer: its other requests are
 * cancelled, it is never asked again, and the block is asked elsewhere. */
static void
test_plan_ban (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  const char *liar = "127.0.0.3:7003", *honest = "127.0.0.4:7004";
  AlvBlockMap *all;
  guint liar_req = 0, index;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_add_peer (plan, liar, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  all = alv_block_map_new (N_BLOCKS);
  alv_block_map_set_all (all);
  alv_swarm_plan_peer_info (plan, liar, ALV_SWARM_AVAIL_MAP, all, NULL, 0);
  a1 = tick (plan, 0, NULL);
  g_assert_cmpuint (count_kind (a1, ALV_SWARM_ACTION_REQUEST, FALSE), >=, 2);
  liar_req = find_kind (a1, ALV_SWARM_ACTION_REQUEST)->request;
  g_assert_true (alv_swarm_plan_request_block (plan, liar_req, &index));
  alv_swarm_plan_block_stored (plan, index, FALSE, TRUE, liar);
  g_assert_true (alv_swarm_plan_is_banned (plan, liar));
  alv_swarm_plan_request_ended (plan, liar_req, ALV_SWARM_END_FAILED, 0, SEC);

  alv_swarm_plan_add_peer (plan, honest, ALV_SWARM_PEER_FROM_GATEWAY, NULL, SEC);
  all = alv_block_map_new (N_BLOCKS);
  alv_block_map_set_all (all);
  alv_swarm_plan_peer_info (plan, honest, ALV_SWARM_AVAIL_MAP, all, NULL, SEC);
  a2 = tick (plan, SEC, NULL);
  /* the liar's other requests are cancelled; new ones go to the other */
  g_assert_cmpuint (count_kind (a2, ALV_SWARM_ACTION_CANCEL, FALSE), ==,
                    count_kind (a1, ALV_SWARM_ACTION_REQUEST, FALSE) - 1);
  for (guint i = 0; i < a2->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (a2, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_REQUEST)
        g_assert_cmpstr (a->peer, ==, honest);
      else if (a->kind == ALV_SWARM_ACTION_CANCEL)
        g_assert_cmpstr (a->peer, ==, liar);
    }
}

/* A block peers hold but none will deliver in time (here its one holder
 * is backed off) is rescued from the origin a second before its
 * deadline, not once it is late; a refused rescue is asked again after
 * half a second. */
static void
test_plan_rescue_early (void)
{
  g_autoptr(AlvSwarmPlan) plan = leased_plan ();
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  g_autoptr(GArray) a3 = NULL;
  g_autoptr(GArray) a4 = NULL;
  const char *holder = "127.0.0.2:7002";
  const AlvSwarmAction *ann;
  AlvBlockMap *all = alv_block_map_new (N_BLOCKS);

  alv_block_map_set_all (all);
  alv_swarm_plan_add_peer (plan, holder, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  alv_swarm_plan_peer_info (plan, holder, ALV_SWARM_AVAIL_MAP, all, NULL, 0);
  alv_swarm_plan_peer_failed (plan, holder, 60 * SEC, 0);

  /* block 0 is due now (1.024 s per block from 0), 0.1 s late */
  a1 = tick (plan, SEC / 10, NULL);
  ann = find_kind (a1, ALV_SWARM_ACTION_ANNOUNCE);
  g_assert_nonnull (ann);
  g_assert_true (ann->want_lease);
  g_assert_true (ann->rescue);
  g_assert_cmpuint (ann->first, ==, 0);
  g_assert_cmpuint (requests_to (a1, holder, NULL), ==, 0);

  /* refused: not asked again at once ... */
  alv_swarm_plan_announce_done (plan, TRUE, 900, TRUE, FALSE, 0, 0, SEC / 5);
  a2 = tick (plan, SEC / 5, NULL);
  g_assert_null (find_kind (a2, ALV_SWARM_ACTION_ANNOUNCE));
  /* ... but after RESCUE_RETRY_US (0.5 s), for the blocks due within a
   * second by then */
  a3 = tick (plan, 7 * SEC / 10, NULL);
  ann = find_kind (a3, ALV_SWARM_ACTION_ANNOUNCE);
  g_assert_nonnull (ann);
  g_assert_true (ann->rescue);
  g_assert_cmpuint (ann->first, ==, 0);
  /* granted: pulled from the origin at once */
  alv_swarm_plan_announce_done (plan, TRUE, 900, TRUE, TRUE, 0, 3, 8 * SEC / 10);
  a4 = tick (plan, 8 * SEC / 10, NULL);
  g_assert_cmpuint (count_kind (a4, ALV_SWARM_ACTION_REQUEST, TRUE), ==, 1);
  g_assert_cmpuint (find_kind (a4, ALV_SWARM_ACTION_REQUEST)->first, ==, 0);
}

/* Ends every request in @actions as refused for lack of a slot (503
 * with Retry-After); returns how many there were. */
static guint
refuse_all_busy (AlvSwarmPlan *plan,
                 GArray       *actions,
                 gint64        now)
{
  guint n = 0;

  for (guint i = 0; i < actions->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (actions, AlvSwarmAction, i);

      if (a->kind != ALV_SWARM_ACTION_REQUEST)
        continue;
      alv_swarm_plan_request_busy (plan, a->request, now);
      alv_swarm_plan_request_ended (plan, a->request, ALV_SWARM_END_OK, 0, now);
      n++;
    }
  return n;
}

/* A peer that refuses rarest-first requests for lack of a slot is asked
 * for no more of them for a while, yet still for a block somebody is
 * about to play (it keeps uploads past its slots for those: refusing
 * bulk says nothing of them); one that refuses that too is asked
 * nothing until its backoff is over. */
static void
test_plan_busy (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  g_autoptr(GArray) a3 = NULL;
  g_autoptr(GArray) a4 = NULL;
  const char *peer = "127.0.0.2:7002";
  const AlvSwarmAction *req = NULL;
  AlvBlockMap *all;
  gint64 t = 0;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_set_self_key (plan, "127.0.0.1:7001");
  alv_swarm_plan_add_peer (plan, peer, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  all = alv_block_map_new (N_BLOCKS);
  alv_block_map_set_all (all);
  alv_swarm_plan_peer_info (plan, peer, ALV_SWARM_AVAIL_MAP, all, NULL, 0);

  /* nothing is due: bulk only, all refused */
  a1 = tick (plan, t, NULL);
  g_assert_cmpuint (requests_to (a1, peer, NULL), >=, 1);
  for (guint i = 0; i < a1->len; i++)
    if (g_array_index (a1, AlvSwarmAction, i).kind == ALV_SWARM_ACTION_REQUEST)
      g_assert_cmpint (g_array_index (a1, AlvSwarmAction, i).deadline, ==, ALV_SWARM_PLAN_NO_DEADLINE);
  refuse_all_busy (plan, a1, t);

  /* playing from block 40: the block due is asked of it at once, and
   * nothing else */
  t += SEC / 100;
  alv_swarm_plan_set_playhead (plan, 40 * BS, 16000, t);
  a2 = tick (plan, t, NULL);
  g_assert_cmpuint (requests_to (a2, peer, &req), >=, 1);
  for (guint i = 0; i < a2->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (a2, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_REQUEST)
        {
          g_assert_cmpint (a->deadline, !=, ALV_SWARM_PLAN_NO_DEADLINE);
          g_assert_cmpuint (a->first, >=, 40);
          g_assert_cmpuint (a->first, <, 48);
        }
    }

  /* refused as well: asked nothing until the backoff (300 ms, doubling
   * with each refusal in a row, at most 2.4 s) is over */
  refuse_all_busy (plan, a2, t);
  a3 = tick (plan, t + SEC / 10, NULL);
  g_assert_cmpuint (requests_to (a3, peer, NULL), ==, 0);
  a4 = tick (plan, t + 5 * SEC / 2, NULL);
  g_assert_cmpuint (requests_to (a4, peer, NULL), >=, 1);
}

/* The loser of an endgame is cancelled as soon as the block is held:
 * left running, it would take the slow peer's uplink (earliest deadline
 * first) from those who lack the block. */
static void
test_plan_moot_cancelled (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  g_autoptr(GArray) a3 = NULL;
  const char *keys[] = { "127.0.0.3:7003", "127.0.0.4:7004" };
  const AlvSwarmAction *slow, *fast, *cancel;
  guint index;

  alv_swarm_plan_set_tree (plan, TRUE);
  for (guint k = 0; k < G_N_ELEMENTS (keys); k++)
    {
      AlvBlockMap *first = alv_block_map_new (N_BLOCKS);

      alv_block_map_set (first, 0);
      alv_swarm_plan_add_peer (plan, keys[k], ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
      alv_swarm_plan_peer_info (plan, keys[k], ALV_SWARM_AVAIL_MAP, first, NULL, 0);
    }
  /* block 0 is due in a second */
  alv_swarm_plan_set_playhead (plan, 0, 16000, SEC);
  a1 = tick (plan, 0, NULL);
  g_assert_cmpuint (count_kind (a1, ALV_SWARM_ACTION_REQUEST, FALSE), ==, 1);
  slow = find_kind (a1, ALV_SWARM_ACTION_REQUEST);
  g_assert_cmpuint (slow->first, ==, 0);
  g_assert_cmpuint (slow->last, ==, 0);

  /* no byte for 0.6 s, due in 0.4 s: a second request to the other */
  a2 = tick (plan, 6 * SEC / 10, NULL);
  g_assert_cmpuint (count_kind (a2, ALV_SWARM_ACTION_REQUEST, FALSE), ==, 1);
  fast = find_kind (a2, ALV_SWARM_ACTION_REQUEST);
  g_assert_cmpstr (fast->reason, ==, "endgame");
  g_assert_cmpstr (fast->peer, !=, slow->peer);
  g_assert_cmpuint (fast->first, ==, 0);

  /* the second wins: the first is given up at the next tick */
  g_assert_true (alv_swarm_plan_request_block (plan, fast->request, &index));
  g_assert_cmpuint (index, ==, 0);
  alv_swarm_plan_block_stored (plan, 0, TRUE, FALSE, fast->peer);
  alv_swarm_plan_request_ended (plan, fast->request, ALV_SWARM_END_OK, 0, 7 * SEC / 10);
  a3 = tick (plan, 7 * SEC / 10, NULL);
  g_assert_cmpuint (count_kind (a3, ALV_SWARM_ACTION_CANCEL, FALSE), ==, 1);
  cancel = find_kind (a3, ALV_SWARM_ACTION_CANCEL);
  g_assert_cmpuint (cancel->request, ==, slow->request);
  g_assert_cmpstr (cancel->peer, ==, slow->peer);
}

/* --- whom to believe ---------------------------------------------------- */

/* Polls in @actions to keys starting with @prefix. */
static guint
count_polls (GArray     *actions,
             const char *prefix)
{
  guint n = 0;

  for (guint i = 0; i < actions->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (actions, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_POLL && g_str_has_prefix (a->peer, prefix))
        n++;
    }
  return n;
}

static gboolean
polls (GArray     *actions,
       const char *key)
{
  for (guint i = 0; i < actions->len; i++)
    {
      const AlvSwarmAction *a = &g_array_index (actions, AlvSwarmAction, i);

      if (a->kind == ALV_SWARM_ACTION_POLL && g_strcmp0 (a->peer, key) == 0)
        return TRUE;
    }
  return FALSE;
}

/* How many of @n keys "@prefix<k>:80" the plan took from @from (@source),
 * at @now. */
static guint
add_many (AlvSwarmPlan     *plan,
          const char       *prefix,
          guint             n,
          AlvSwarmPeerFrom  from,
          const char       *source,
          gint64            now)
{
  guint taken = 0;

  for (guint k = 0; k < n; k++)
    {
      g_autofree char *key = g_strdup_printf ("%s%u:%u", prefix, k / 250, 1000 + k % 250);

      if (alv_swarm_plan_add_peer (plan, key, from, source, now))
        taken++;
    }
  return taken;
}

static guint
count_known (AlvSwarmPlan *plan,
             const char   *prefix,
             guint         n)
{
  guint known = 0;

  for (guint k = 0; k < n; k++)
    {
      g_autofree char *key = g_strdup_printf ("%s%u:%u", prefix, k / 250, 1000 + k % 250);

      if (alv_swarm_plan_has_peer (plan, key))
        known++;
    }
  return known;
}

/* One peer's X-Alt of 250 addresses gives at most SOURCE_MAX of them; a
 * requester's host names at most as many of its ports; all gossip takes
 * at most GOSSIP_MAX places; a peer the gateway vouches for always gets
 * one, the unproven making room, and gossip never pushes it out. */
static void
test_plan_gossip_caps (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  AlvSwarmPlanStats stats;

  g_assert_true (alv_swarm_plan_add_peer (plan, "10.0.0.1:80", ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0));
  g_assert_cmpuint (add_many (plan, "10.1.0.", 250, ALV_SWARM_PEER_FROM_GOSSIP, "10.0.0.1:80", 0), ==,
                    ALV_SWARM_PLAN_SOURCE_MAX);
  /* only from a peer it knows */
  g_assert_cmpuint (add_many (plan, "10.2.0.", 4, ALV_SWARM_PEER_FROM_GOSSIP, "10.9.9.9:80", 0), ==, 0);
  g_assert_cmpuint (add_many (plan, "10.3.0.", 4, ALV_SWARM_PEER_FROM_GOSSIP, NULL, 0), ==, 0);
  /* one host naming its ports */
  for (guint k = 0; k < 20; k++)
    {
      g_autofree char *key = g_strdup_printf ("10.4.0.1:%u", 2000 + k);

      alv_swarm_plan_add_peer (plan, key, ALV_SWARM_PEER_FROM_REQUESTER, NULL, 0);
    }
  alv_swarm_plan_get_stats (plan, &stats);
  g_assert_cmpuint (stats.peers_known, ==, 1 + ALV_SWARM_PLAN_SOURCE_MAX * 2);
  g_assert_cmpuint (stats.peers_refused, ==, 250 - ALV_SWARM_PLAN_SOURCE_MAX + 8 + 20 -
                                             ALV_SWARM_PLAN_SOURCE_MAX);

  /* twenty vouched-for peers gossip 250 each: GOSSIP_MAX in all */
  g_assert_cmpuint (add_many (plan, "10.5.0.", 20, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0), ==, 20);
  for (guint k = 0; k < 20; k++)
    {
      g_autofree char *source = g_strdup_printf ("10.5.0.0:%u", 1000 + k);
      g_autofree char *prefix = g_strdup_printf ("10.6.%u.", k);

      add_many (plan, prefix, 250, ALV_SWARM_PEER_FROM_GOSSIP, source, 0);
    }
  alv_swarm_plan_get_stats (plan, &stats);
  g_assert_cmpuint (stats.peers_known, ==, 21 + ALV_SWARM_PLAN_GOSSIP_MAX + ALV_SWARM_PLAN_SOURCE_MAX);

  /* the gateway names enough to fill the table: every one gets a place */
  g_assert_cmpuint (add_many (plan, "10.7.0.", ALV_SWARM_PLAN_MAX_PEERS - 21, ALV_SWARM_PEER_FROM_GATEWAY,
                              NULL, 0), ==, ALV_SWARM_PLAN_MAX_PEERS - 21);
  g_assert_cmpuint (count_known (plan, "10.7.0.", ALV_SWARM_PLAN_MAX_PEERS - 21), ==,
                    ALV_SWARM_PLAN_MAX_PEERS - 21);
  g_assert_cmpuint (count_known (plan, "10.5.0.", 20), ==, 20);
  g_assert_true (alv_swarm_plan_has_peer (plan, "10.0.0.1:80"));
  g_assert_cmpuint (count_known (plan, "10.1.0.", 250), ==, 0);
  alv_swarm_plan_get_stats (plan, &stats);
  g_assert_cmpuint (stats.peers_known, ==, ALV_SWARM_PLAN_MAX_PEERS);
  /* the gossiped ones (the first teller's among them), then the requesters */
  g_assert_cmpuint (stats.peers_dropped, ==, ALV_SWARM_PLAN_GOSSIP_MAX + ALV_SWARM_PLAN_SOURCE_MAX);
  /* now full of vouched-for peers: gossip gets no place and pushes none out */
  g_assert_cmpuint (add_many (plan, "10.8.0.", 250, ALV_SWARM_PEER_FROM_GOSSIP, "10.0.0.1:80", 0), ==, 0);
  g_assert_cmpuint (count_known (plan, "10.7.0.", ALV_SWARM_PLAN_MAX_PEERS - 21), ==,
                    ALV_SWARM_PLAN_MAX_PEERS - 21);
}

/* Named to others: the peers the gateway vouched for and those that
 * served a verified block (first); not a gossiped or requesting address
 * before that, nor a banned peer. */
static void
test_plan_gossip_shareable (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  g_autoptr(GPtrArray) before = NULL;
  g_autoptr(GPtrArray) proven = NULL;
  g_autoptr(GPtrArray) banned = NULL;
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;
  const char *vouched = "10.0.0.1:80", *gossiped = "10.1.0.1:80", *requester = "10.2.0.1:80";
  const AlvSwarmAction *req;
  AlvBlockMap *all;
  guint index;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_add_peer (plan, vouched, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  alv_swarm_plan_add_peer (plan, gossiped, ALV_SWARM_PEER_FROM_GOSSIP, vouched, 0);
  alv_swarm_plan_add_peer (plan, requester, ALV_SWARM_PEER_FROM_REQUESTER, NULL, 0);
  before = alv_swarm_plan_get_shareable (plan);
  g_assert_cmpuint (before->len, ==, 1);
  g_assert_cmpstr (before->pdata[0], ==, vouched);

  /* the gossiped one holds everything and serves a good block */
  all = alv_block_map_new (N_BLOCKS);
  alv_block_map_set_all (all);
  alv_swarm_plan_peer_info (plan, gossiped, ALV_SWARM_AVAIL_MAP, all, NULL, 0);
  a1 = tick (plan, 0, NULL);
  req = find_kind (a1, ALV_SWARM_ACTION_REQUEST);
  g_assert_nonnull (req);
  g_assert_cmpstr (req->peer, ==, gossiped);
  g_assert_true (alv_swarm_plan_request_block (plan, req->request, &index));
  alv_swarm_plan_block_stored (plan, index, TRUE, FALSE, gossiped);
  proven = alv_swarm_plan_get_shareable (plan);
  g_assert_cmpuint (proven->len, ==, 2);
  g_assert_cmpstr (proven->pdata[0], ==, gossiped);
  g_assert_cmpstr (proven->pdata[1], ==, vouched);

  /* then a bad one: banned, and named no more */
  alv_swarm_plan_request_ended (plan, req->request, ALV_SWARM_END_OK, 0, SEC / 10);
  a2 = tick (plan, SEC / 10, NULL);
  req = find_kind (a2, ALV_SWARM_ACTION_REQUEST);
  g_assert_nonnull (req);
  g_assert_cmpstr (req->peer, ==, gossiped);
  g_assert_true (alv_swarm_plan_request_block (plan, req->request, &index));
  alv_swarm_plan_block_stored (plan, index, FALSE, TRUE, gossiped);
  g_assert_true (alv_swarm_plan_is_banned (plan, gossiped));
  banned = alv_swarm_plan_get_shareable (plan);
  g_assert_cmpuint (banned->len, ==, 1);
  g_assert_cmpstr (banned->pdata[0], ==, vouched);
}

/* Ticks at @now and answers every poll a tenth of a second later:
 * "10.1.0.0:1000" is refused, "10.1.0.0:1001" and @teller answer 404, the
 * others hold nothing yet. */
static GArray *
step (AlvSwarmPlan *plan,
      gint64        now,
      const char   *teller)
{
  GArray *a = tick (plan, now, NULL);

  for (guint i = 0; i < a->len; i++)
    {
      const char *key = g_array_index (a, AlvSwarmAction, i).peer;

      if (g_array_index (a, AlvSwarmAction, i).kind != ALV_SWARM_ACTION_POLL)
        continue;
      if (g_strcmp0 (key, "10.1.0.0:1000") == 0)
        alv_swarm_plan_peer_failed (plan, key, 0, now + SEC / 10);
      else if (g_strcmp0 (key, "10.1.0.0:1001") == 0 || g_strcmp0 (key, teller) == 0)
        alv_swarm_plan_peer_not_sharing (plan, key, now + SEC / 10);
      else
        alv_swarm_plan_peer_info (plan, key, ALV_SWARM_AVAIL_NONE, NULL, NULL, now + SEC / 10);
      alv_swarm_plan_poll_done (plan, key);
    }
  return a;
}

/* Gossiped strangers are contacted FIRST_CONTACTS per window; one that
 * fails (refused, or a 404) is tried again after 2 s, then 4 s, and is
 * dropped after its third failure, still counted against the peer that
 * named it.  A 404 from a peer the gateway vouched for is no failure. */
static void
test_plan_gossip_backoff (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  g_autoptr(GPtrArray) shareable = NULL;
  const char *teller = "10.0.0.1:80", *refused = "10.1.0.0:1000", *absent = "10.1.0.0:1001";
  AlvSwarmPlanStats stats;

  g_assert_cmpuint (ALV_SWARM_PLAN_FIRST_CONTACTS, ==, 4);
  g_assert_cmpint (ALV_SWARM_PLAN_FIRST_CONTACT_WINDOW_US, ==, 5 * SEC);
  g_assert_cmpuint (ALV_SWARM_PLAN_UNPROVEN_MAX_FAILURES, ==, 3);
  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_add_peer (plan, teller, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  alv_swarm_plan_peer_info (plan, teller, ALV_SWARM_AVAIL_NONE, NULL, NULL, 0);
  g_assert_cmpuint (add_many (plan, "10.1.0.", 250, ALV_SWARM_PEER_FROM_GOSSIP, teller, 0), ==,
                    ALV_SWARM_PLAN_SOURCE_MAX);

  {
    g_autoptr(GArray) a = step (plan, 0, teller);

    g_assert_cmpuint (count_polls (a, "10.1."), ==, 4);
    g_assert_true (polls (a, refused) && polls (a, absent) && polls (a, "10.1.0.0:1003"));
  }
  {
    g_autoptr(GArray) a = step (plan, 2 * SEC, teller);

    /* backed off until 2.1 s; no new contact in this window */
    g_assert_false (polls (a, refused) || polls (a, absent) || polls (a, "10.1.0.0:1004"));
  }
  {
    g_autoptr(GArray) a = step (plan, 2 * SEC + SEC / 10, teller);

    g_assert_true (polls (a, refused) && polls (a, absent));
    g_assert_false (polls (a, "10.1.0.0:1004"));
  }
  {
    g_autoptr(GArray) a = step (plan, 5 * SEC, teller);

    /* a new window: the other four */
    g_assert_true (polls (a, "10.1.0.0:1004") && polls (a, "10.1.0.0:1007"));
    g_assert_false (polls (a, refused) || polls (a, absent));
  }
  {
    g_autoptr(GArray) a = step (plan, 6 * SEC + SEC / 10, teller);

    /* backed off 4 s since 2.2 s */
    g_assert_false (polls (a, refused) || polls (a, absent));
  }
  {
    g_autoptr(GArray) a = step (plan, 6 * SEC + 2 * SEC / 10, teller);

    g_assert_true (polls (a, refused));
  }
  g_assert_true (alv_swarm_plan_has_peer (plan, refused));
  {
    /* (polls of peers heard from go four per quarter second: this one's
     * turn came only now) */
    g_autoptr(GArray) a = step (plan, 6 * SEC + 4 * SEC / 10, teller);

    g_assert_true (polls (a, absent));
  }
  /* three failures: dropped, and still counted against the teller */
  g_assert_false (alv_swarm_plan_has_peer (plan, refused));
  g_assert_true (alv_swarm_plan_has_peer (plan, absent));
  {
    g_autoptr(GArray) a = step (plan, 6 * SEC + 6 * SEC / 10, teller);
  }
  g_assert_false (alv_swarm_plan_has_peer (plan, absent));
  g_assert_true (alv_swarm_plan_has_peer (plan, "10.1.0.0:1002"));
  alv_swarm_plan_get_stats (plan, &stats);
  g_assert_cmpuint (stats.peers_dropped, ==, 2);
  g_assert_false (alv_swarm_plan_add_peer (plan, "10.9.0.1:80", ALV_SWARM_PEER_FROM_GOSSIP, teller,
                                           6 * SEC + 6 * SEC / 10));
  g_assert_false (alv_swarm_plan_add_peer (plan, refused, ALV_SWARM_PEER_FROM_GOSSIP, teller,
                                           6 * SEC + 6 * SEC / 10));
  /* the teller answered 404 all along: still there, still named */
  g_assert_true (alv_swarm_plan_has_peer (plan, teller));
  shareable = alv_swarm_plan_get_shareable (plan);
  g_assert_cmpuint (shareable->len, ==, 1);
  g_assert_cmpstr (shareable->pdata[0], ==, teller);
}

/* Ticks every tenth of a second from @from until before @until and
 * answers each poll at once: the keys in @good (NULL-terminated,
 * nullable) that they hold nothing, every other one with a failure. */
static void
drive (AlvSwarmPlan       *plan,
       gint64              from,
       gint64              until,
       const char * const *good)
{
  for (gint64 now = from; now < until; now += SEC / 10)
    {
      g_autoptr(GArray) a = tick (plan, now, NULL);

      for (guint i = 0; i < a->len; i++)
        {
          const char *key = g_array_index (a, AlvSwarmAction, i).peer;

          if (g_array_index (a, AlvSwarmAction, i).kind != ALV_SWARM_ACTION_POLL)
            continue;
          if (good != NULL && g_strv_contains (good, key))
            alv_swarm_plan_peer_info (plan, key, ALV_SWARM_AVAIL_NONE, NULL, NULL, now);
          else
            alv_swarm_plan_peer_failed (plan, key, 0, now);
          alv_swarm_plan_poll_done (plan, key);
        }
    }
}

/* One host cycling its ports, each port naming an address that fails
 * and then failing itself, cannot fill the plan's memory of sources:
 * 110 rounds of 8 ports (more than the 800 sources it remembers) later,
 * a new requester and a vouched-for peer's X-Alt are still taken. */
static void
test_plan_gossip_sources_bounded (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  gint64 now = 0;

  for (guint round = 0; round < 110; round++, now += 12 * SEC)
    {
      for (guint j = 0; j < ALV_SWARM_PLAN_SOURCE_MAX; j++)
        {
          g_autofree char *teller = g_strdup_printf ("10.4.0.1:%u", 2000 + round * 8 + j);
          g_autofree char *named = g_strdup_printf ("10.200.%u.%u:80", round, j);

          g_assert_true (alv_swarm_plan_add_peer (plan, teller, ALV_SWARM_PEER_FROM_REQUESTER, NULL, now));
          g_assert_true (alv_swarm_plan_add_peer (plan, named, ALV_SWARM_PEER_FROM_GOSSIP, teller, now));
        }
      /* first contacts four per 5 s; each fails at once, and after 2 s
       * and 4 s: all gone in 12 s */
      drive (plan, now, now + 12 * SEC, NULL);
      g_assert_cmpuint (count_known (plan, "10.4.0.", 1), ==, 0);
    }
  {
    AlvSwarmPlanStats stats;

    alv_swarm_plan_get_stats (plan, &stats);
    g_assert_cmpuint (stats.peers_known, ==, 0);
    g_assert_cmpuint (stats.peers_dropped, ==, 110 * 2 * ALV_SWARM_PLAN_SOURCE_MAX);
  }
  g_assert_true (alv_swarm_plan_add_peer (plan, "10.50.0.1:9000", ALV_SWARM_PEER_FROM_REQUESTER, NULL, now));
  g_assert_true (alv_swarm_plan_add_peer (plan, "10.51.0.1:80", ALV_SWARM_PEER_FROM_GATEWAY, NULL, now));
  g_assert_true (alv_swarm_plan_add_peer (plan, "10.52.0.1:80", ALV_SWARM_PEER_FROM_GOSSIP, "10.51.0.1:80",
                                          now));
}

/* The addresses a peer named that failed count against it for
 * SOURCE_SPENT_US, not for good; and no longer once it proves itself. */
static void
test_plan_gossip_spent_forgiven (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  const char *vouched = "10.0.0.1:80", *requester = "10.2.0.1:7000";
  const char * const good[] = { "10.0.0.1:80", "10.2.0.1:7000", NULL };
  g_autoptr(GArray) a = NULL;
  const AlvSwarmAction *req;
  AlvBlockMap *all;
  guint index;

  g_assert_cmpint (ALV_SWARM_PLAN_SOURCE_SPENT_US, ==, 120 * SEC);
  alv_swarm_plan_add_peer (plan, vouched, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0);
  alv_swarm_plan_add_peer (plan, requester, ALV_SWARM_PEER_FROM_REQUESTER, NULL, 0);
  g_assert_cmpuint (add_many (plan, "10.1.0.", 8, ALV_SWARM_PEER_FROM_GOSSIP, vouched, 0), ==, 8);
  g_assert_cmpuint (add_many (plan, "10.3.0.", 8, ALV_SWARM_PEER_FROM_GOSSIP, requester, 0), ==, 8);
  /* sixteen first contacts take four windows; all fail thrice */
  drive (plan, 0, 22 * SEC, good);
  g_assert_cmpuint (count_known (plan, "10.1.0.", 8) + count_known (plan, "10.3.0.", 8), ==, 0);
  g_assert_true (alv_swarm_plan_has_peer (plan, vouched) && alv_swarm_plan_has_peer (plan, requester));
  g_assert_false (alv_swarm_plan_add_peer (plan, "10.1.1.0:80", ALV_SWARM_PEER_FROM_GOSSIP, vouched,
                                           22 * SEC));
  g_assert_false (alv_swarm_plan_add_peer (plan, "10.3.1.0:80", ALV_SWARM_PEER_FROM_GOSSIP, requester,
                                           22 * SEC));

  /* the requester serves a verified block: proven, and forgiven */
  alv_swarm_plan_set_tree (plan, TRUE);
  all = alv_block_map_new (N_BLOCKS);
  alv_block_map_set_all (all);
  alv_swarm_plan_peer_info (plan, requester, ALV_SWARM_AVAIL_MAP, all, NULL, 22 * SEC);
  a = tick (plan, 22 * SEC, NULL);
  req = find_kind (a, ALV_SWARM_ACTION_REQUEST);
  g_assert_nonnull (req);
  g_assert_cmpstr (req->peer, ==, requester);
  g_assert_true (alv_swarm_plan_request_block (plan, req->request, &index));
  alv_swarm_plan_block_stored (plan, index, TRUE, FALSE, requester);
  g_assert_true (alv_swarm_plan_add_peer (plan, "10.3.1.0:80", ALV_SWARM_PEER_FROM_GOSSIP, requester,
                                          22 * SEC));

  /* the vouched-for one stays held to each failed address for two
   * minutes after its drop (at 6.1 s and 11.1 s) */
  g_assert_false (alv_swarm_plan_add_peer (plan, "10.1.1.0:80", ALV_SWARM_PEER_FROM_GOSSIP, vouched,
                                           2 * SEC + ALV_SWARM_PLAN_SOURCE_SPENT_US));
  g_assert_true (alv_swarm_plan_add_peer (plan, "10.1.1.0:80", ALV_SWARM_PEER_FROM_GOSSIP, vouched,
                                          22 * SEC + ALV_SWARM_PLAN_SOURCE_SPENT_US));
}

/* "Dropped after 3 failures" means 3 in a row: an unproven requester
 * whose failed polls alternate with answers stays; three 404s in a row
 * drop it (it may be no peer at all), and it is taken again as soon as
 * it asks again (an honest one polled before its tree came). */
static void
test_plan_gossip_failures_in_a_row (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  const char *requester = "10.2.0.1:7000";
  guint n_polls = 0, n_failed = 0, n_404 = 0;
  gint64 now;

  g_assert_true (alv_swarm_plan_add_peer (plan, requester, ALV_SWARM_PEER_FROM_REQUESTER, NULL, 0));
  for (now = 0; now < 30 * SEC; now += SEC / 10)
    {
      g_autoptr(GArray) a = tick (plan, now, NULL);

      if (!polls (a, requester))
        continue;
      if (n_polls++ % 2 == 0)
        {
          alv_swarm_plan_peer_failed (plan, requester, 0, now);
          n_failed++;
        }
      else
        alv_swarm_plan_peer_info (plan, requester, ALV_SWARM_AVAIL_NONE, NULL, NULL, now);
      alv_swarm_plan_poll_done (plan, requester);
    }
  g_assert_cmpuint (n_failed, >, 2 * ALV_SWARM_PLAN_UNPROVEN_MAX_FAILURES);
  g_assert_true (alv_swarm_plan_has_peer (plan, requester));

  for (; now < 45 * SEC && alv_swarm_plan_has_peer (plan, requester); now += SEC / 10)
    {
      g_autoptr(GArray) a = tick (plan, now, NULL);

      if (!polls (a, requester))
        continue;
      alv_swarm_plan_peer_not_sharing (plan, requester, now);
      alv_swarm_plan_poll_done (plan, requester);
      n_404++;
    }
  g_assert_false (alv_swarm_plan_has_peer (plan, requester));
  g_assert_cmpuint (n_404, ==, ALV_SWARM_PLAN_UNPROVEN_MAX_FAILURES);
  g_assert_true (alv_swarm_plan_add_peer (plan, requester, ALV_SWARM_PEER_FROM_REQUESTER, NULL, now));
}

/* A first contact is taken when the stranger is polled: eight peers due
 * for their next poll at once fill the batch of four, and the four
 * gossiped strangers behind them in the table are polled all the same,
 * not charged and left waiting for the next window. */
static void
test_plan_gossip_first_contacts_polled (void)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, FALSE, 1);
  g_autoptr(GArray) a0 = NULL;
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;

  g_assert_cmpuint (add_many (plan, "10.0.0.", 8, ALV_SWARM_PEER_FROM_GATEWAY, NULL, 0), ==, 8);
  a0 = tick (plan, 0, NULL);
  g_assert_cmpuint (count_polls (a0, "10.0.0."), ==, 8);
  for (guint k = 0; k < 8; k++)
    {
      g_autofree char *key = g_strdup_printf ("10.0.0.0:%u", 1000 + k);

      alv_swarm_plan_peer_info (plan, key, ALV_SWARM_AVAIL_NONE, NULL, NULL, 0);
      alv_swarm_plan_poll_done (plan, key);
    }
  g_assert_cmpuint (add_many (plan, "10.1.0.", 4, ALV_SWARM_PEER_FROM_GOSSIP, "10.0.0.0:1000", 0), ==, 4);

  /* a second later all eight are due again: four of them, and the four
   * strangers */
  a1 = tick (plan, SEC, NULL);
  g_assert_cmpuint (count_polls (a1, "10.0.0."), ==, 4);
  g_assert_cmpuint (count_polls (a1, "10.1.0."), ==, 4);
  /* the other four next, in the next quarter second */
  a2 = tick (plan, SEC + SEC / 4, NULL);
  g_assert_cmpuint (count_polls (a2, "10.0.0."), ==, 4);
  g_assert_cmpuint (count_polls (a2, "10.1.0."), ==, 0);
}

/* Whether a plan that knows @peer (learnt @from, before it in the line
 * of owners of segment 0) and whose gateway grants no leases pulls block
 * 0 from the origin itself, as the segment's owner. */
static gboolean
pulls_as_owner (const char       *peer,
                AlvSwarmPeerFrom  from)
{
  g_autoptr(AlvSwarmPlan) plan = alv_swarm_plan_new (LENGTH, BS, TRUE, 1);
  g_autoptr(GArray) a0 = NULL;
  g_autoptr(GArray) a1 = NULL;
  g_autoptr(GArray) a2 = NULL;

  alv_swarm_plan_set_tree (plan, TRUE);
  alv_swarm_plan_set_urn (plan, OWNER_URN);
  alv_swarm_plan_set_self_key (plan, OWNER_SELF);
  alv_swarm_plan_set_announcing (plan, TRUE);
  a0 = tick (plan, 0, NULL);
  g_assert_nonnull (find_kind (a0, ALV_SWARM_ACTION_ANNOUNCE));
  alv_swarm_plan_announce_done (plan, TRUE, 900, FALSE, FALSE, 0, 0, 0);
  g_assert_true (alv_swarm_plan_add_peer (plan, peer, from, NULL, 0));
  a1 = tick (plan, 0, NULL);
  g_assert_true (polls (a1, peer));
  alv_swarm_plan_peer_info (plan, peer, ALV_SWARM_AVAIL_NONE, NULL, NULL, 0);
  alv_swarm_plan_poll_done (plan, peer);
  /* everyone heard (after 1 s), nobody holds block 0 */
  a2 = tick (plan, 2 * SEC, NULL);
  return count_kind (a2, ALV_SWARM_ACTION_REQUEST, TRUE) > 0;
}

/* Without leases the segments' owners pull from the origin; a requester
 * nobody vouched for is no owner (a host could claim ports enough to
 * hold back every segment), one the gateway named is. */
static void
test_plan_gossip_owners_vouched (void)
{
  g_autofree char *before = NULL;

  for (guint port = 2000; before == NULL && port < 3000; port++)
    {
      g_autofree char *key = g_strdup_printf ("10.2.0.1:%u", port);

      if (alv_rendezvous_before (OWNER_URN, 0, key, OWNER_SELF))
        before = g_steal_pointer (&key);
    }
  g_assert_nonnull (before);
  g_assert_true (pulls_as_owner (before, ALV_SWARM_PEER_FROM_REQUESTER));
  g_assert_false (pulls_as_owner (before, ALV_SWARM_PEER_FROM_GATEWAY));
}

/* --- whole swarms in the simulator ------------------------------------ */

static void
run (SimConfig *config,
     SimResult *result)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;

  if (!sim_run (config, result, &error))
    g_error ("the simulation failed: %s", error->message);
  json = sim_result_to_json (config, result);
  g_test_message ("%s", json);
  g_assert_false (result->aborted);
  g_assert_cmpuint (result->anomalies, ==, 0);
  g_assert_cmpuint (result->corrupt_bytes_played, ==, 0);
}

/* Three listeners tune in at the very start of an item, all urgent at
 * once, uplinks of 4x: the origin sends the item about once. */
static void
test_sim_all_at_once (void)
{
  SimConfig config;
  SimResult result = { 0, };

  sim_config_init (&config);
  config.n_listeners = 3;
  config.item_seconds = 60;
  config.join_window = 0;
  config.peer_rate = 4;
  config.seed = 1;
  run (&config, &result);
  g_assert_cmpfloat (result.origin_copies, <=, 1.1);
  g_assert_cmpuint (result.stall_free, ==, 3);
  sim_result_clear (&result);
}

/* Sixteen listeners, the hard case in the simulator (joins over
 * 20 s from the slot's start, origin 4x, uplinks 2x), fair and drop-tail
 * origins: about one origin copy, and continuity near 1. */
static void
test_sim_sixteen (gconstpointer data)
{
  SimConfig config;
  SimResult result = { 0, };

  sim_config_init (&config);
  config.n_listeners = 16;
  config.item_seconds = 90;
  config.origin_model = GPOINTER_TO_INT (data);
  config.seed = 1;
  run (&config, &result);
  g_assert_cmpfloat (result.origin_copies, <=, 1.1);
  g_assert_cmpfloat (result.continuity, >=, 0.98);
  sim_result_clear (&result);
}

/* The hard case over eight seeds, fair and drop-tail origins: requests
 * wait at the pullers of fresh blocks, and more listeners play without
 * a stall (before requests waited and leases near the playhead were a
 * block long: 38 of 128 with either origin; then 69 and 59; with moot
 * requests cancelled and late requests in the order they came, 79 and
 * 77; all with players that started on a second of audio, 108 and 105
 * with two, as the benchmark's do), at about one origin copy.  That was
 * with blocks of 16 KiB; the gateway's 8 KiB blocks, each passed on
 * after half the time, give 123 and 123 (doc/swarm.md); with the head
 * each listener tuning in fetches first, as the core does, 125 and 114
 * (16 KiB blocks: 93 and 98).  With the head's facts from the gateway
 * and rescues beside the runs, asked a second before the deadline, 125
 * and 125 (16 KiB: 121 and 109; before the rescues their gap was more
 * than 8).  With rescues past their share for blocks at most three
 * listeners hold, 127 and 127 (16 KiB: 104 and 118). */
static void
test_sim_sixteen_fresh (void)
{
  guint stall_free[2][2] = { { 0, 0 }, { 0, 0 } };

  for (guint model = 0; model < 2; model++)
    for (guint big = 0; big < 2; big++)
      for (guint32 seed = 1; seed <= 8; seed++)
        {
          SimConfig config;
          SimResult result = { 0, };

          sim_config_init (&config);
          config.n_listeners = 16;
          config.item_seconds = 90;
          config.origin_model = model == 0 ? SIM_ORIGIN_FAIR : SIM_ORIGIN_DROPTAIL;
          config.seed = seed;
          if (big)
            config.block_size = 2 * ALV_HASH_TREE_DEFAULT_BLOCK_SIZE;
          run (&config, &result);
          g_assert_cmpuint (result.requests_waited, >, 0);
          /* rescues are extra copies: a fifth of the runs' blocks and
           * a tenth of the item for blocks few hold, at most, four
           * blocks at a time (16 KiB blocks: twice the bytes); at most
           * 1.11 and 1.17 here */
          g_assert_cmpfloat (result.origin_copies, <=, big ? 1.2 : 1.15);
          stall_free[model][big] += result.stall_free;
          sim_result_clear (&result);
        }
  g_test_message ("stall-free: %u (fair), %u (drop-tail) of 128; with blocks twice as big %u, %u",
                  stall_free[0][0], stall_free[1][0], stall_free[0][1], stall_free[1][1]);
  for (guint model = 0; model < 2; model++)
    {
      g_assert_cmpuint (stall_free[model][0], >=, 120);
      g_assert_cmpuint (stall_free[model][0], >=, stall_free[model][1]);
    }
}

/* The same swarm behind a gateway without origin leases
 * (--origin-leases 0): the listeners hear nothing of leases, fall back to
 * the rendezvous owners and all of them play; the leases are what keeps
 * the origin near one copy (this seed: 1.0 with them, 1.9 without). */
static void
test_sim_without_leases (void)
{
  SimConfig config;
  SimResult with = { 0, }, without = { 0, };

  sim_config_init (&config);
  config.n_listeners = 16;
  config.item_seconds = 90;
  config.seed = 2;
  run (&config, &with);
  config.origin_leases = 0;
  run (&config, &without);
  g_assert_cmpuint (without.leases_granted, ==, 0);
  g_assert_cmpuint (without.never_started, ==, 0);
  g_assert_cmpfloat (without.continuity, >=, 0.85);
  g_assert_cmpfloat (with.origin_copies, <=, 1.1);
  g_assert_cmpfloat (without.origin_copies, >, with.origin_copies + 0.2);
  sim_result_clear (&with);
  sim_result_clear (&without);
}

/* A quarter of the listeners lie: their blocks reach the others, fail
 * verification, get them banned and reported to the gateway, and not a
 * byte of them is played.  The
 * same run with verification off plays corrupt bytes: the metric counts. */
static void
test_sim_liars (void)
{
  SimConfig config;
  SimResult result = { 0, };
  SimResult unchecked = { 0, };
  g_autoptr(GError) error = NULL;
  guint banned = 0;

  sim_config_init (&config);
  config.n_listeners = 12;
  config.item_seconds = 60;
  config.liars = 0.25;
  config.peer_rate = 3;
  config.seed = 2;
  run (&config, &result);
  g_assert_cmpuint (result.corrupt_blocks_received, >, 0);
  for (guint i = 0; i < result.listeners->len; i++)
    banned += g_array_index (result.listeners, SimListenerResult, i).peers_banned;
  g_assert_cmpuint (banned, >, 0);
  /* the liars' origin runs are given back once two listeners report them
   * (without that: 1.51 copies, continuity 0.92) */
  g_assert_cmpfloat (result.origin_copies, <=, 1.3);
  g_assert_cmpfloat (result.continuity, >=, 0.98);

  config.no_verify = TRUE;
  g_assert_true (sim_run (&config, &unchecked, &error) || unchecked.corrupt_bytes_played > 0);
  g_assert_cmpuint (unchecked.corrupt_bytes_played, >, 0);
  sim_result_clear (&result);
  sim_result_clear (&unchecked);
}

/* Listeners leave and come back (half of them a minute), lease holders
 * among them: what they did not report held is pulled again, and the
 * others play on. */
static void
test_sim_churn (void)
{
  SimConfig config;
  SimResult result = { 0, };

  sim_config_init (&config);
  config.n_listeners = 12;
  config.item_seconds = 90;
  config.churn = 0.5;
  config.peer_rate = 3;
  config.seed = 3;
  run (&config, &result);
  g_assert_cmpuint (result.leaves, >, 0);
  g_assert_cmpfloat (result.origin_copies, <=, 1.3);
  g_assert_cmpfloat (result.continuity, >=, 0.95);
  sim_result_clear (&result);
}

/* Half the listeners sit behind NAT: nobody can connect to them.  The
 * gateway lists them to nobody and names their (private) origin pulls to
 * nobody, and they do not
 * name their port to the peers they ask, so not one request or poll goes
 * to them and they upload nothing; they and the others still play, the
 * reachable half's uplink (3x each) carrying everyone. */
static void
test_sim_unreachable (void)
{
  SimConfig config;
  SimResult result = { 0, };
  guint n_unreachable = 0;

  sim_config_init (&config);
  config.n_listeners = 12;
  config.item_seconds = 60;
  config.unreachable = 0.5;
  config.peer_rate = 3;
  config.seed = 1;
  run (&config, &result);
  g_assert_cmpuint (result.n_unreachable, ==, 6);
  g_assert_cmpuint (result.requests_unreachable, ==, 0);
  for (guint i = 0; i < result.listeners->len; i++)
    {
      const SimListenerResult *l = &g_array_index (result.listeners, SimListenerResult, i);

      if (!l->unreachable)
        continue;
      n_unreachable++;
      g_assert_cmpuint (l->bytes_uploaded, ==, 0);
      g_assert_cmpfloat (l->played_seconds, >, 0);
    }
  g_assert_cmpuint (n_unreachable, ==, 6);
  g_assert_cmpuint (result.bytes_from_peers, >, 0);
  /* 1.09 copies, continuity 0.997 when written */
  g_assert_cmpfloat (result.origin_copies, <=, 1.3);
  g_assert_cmpfloat (result.continuity, >=, 0.98);
  sim_result_clear (&result);
}

/* The simulator is deterministic: the same seed, the same run. */
static void
test_sim_deterministic (void)
{
  SimConfig config;
  SimResult a = { 0, }, b = { 0, };
  g_autofree char *ja = NULL;
  g_autofree char *jb = NULL;

  sim_config_init (&config);
  config.n_listeners = 8;
  config.item_seconds = 30;
  config.origin_model = SIM_ORIGIN_DROPTAIL;
  config.seed = 7;
  run (&config, &a);
  run (&config, &b);
  g_assert_cmpuint (a.events, ==, b.events);
  g_assert_cmpuint (a.origin_bytes, ==, b.origin_bytes);
  g_assert_cmpfloat (a.stall_seconds, ==, b.stall_seconds);
  sim_result_clear (&a);
  sim_result_clear (&b);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/swarm-plan/alone", test_plan_alone);
  g_test_add_func ("/swarm-plan/lease", test_plan_lease);
  g_test_add_func ("/swarm-plan/release-playhead", test_plan_release_playhead);
  g_test_add_func ("/swarm-plan/announce-soon", test_plan_announce_soon);
  g_test_add_func ("/swarm-plan/lease/length", test_plan_lease_length);
  g_test_add_func ("/swarm-plan/fresh/waits-at-puller", test_plan_fresh_waits_at_puller);
  g_test_add_func ("/swarm-plan/fresh/bounded", test_plan_fresh_bounded);
  g_test_add_func ("/swarm-plan/ban", test_plan_ban);
  g_test_add_func ("/swarm-plan/busy", test_plan_busy);
  g_test_add_func ("/swarm-plan/rescue-early", test_plan_rescue_early);
  g_test_add_func ("/swarm-plan/moot-cancelled", test_plan_moot_cancelled);
  g_test_add_func ("/swarm-plan/gossip/caps", test_plan_gossip_caps);
  g_test_add_func ("/swarm-plan/gossip/shareable", test_plan_gossip_shareable);
  g_test_add_func ("/swarm-plan/gossip/backoff", test_plan_gossip_backoff);
  g_test_add_func ("/swarm-plan/gossip/sources-bounded", test_plan_gossip_sources_bounded);
  g_test_add_func ("/swarm-plan/gossip/spent-forgiven", test_plan_gossip_spent_forgiven);
  g_test_add_func ("/swarm-plan/gossip/failures-in-a-row", test_plan_gossip_failures_in_a_row);
  g_test_add_func ("/swarm-plan/gossip/first-contacts-polled", test_plan_gossip_first_contacts_polled);
  g_test_add_func ("/swarm-plan/gossip/owners-vouched", test_plan_gossip_owners_vouched);
  g_test_add_func ("/swarm-sim/all-at-once", test_sim_all_at_once);
  g_test_add_data_func ("/swarm-sim/sixteen/fair", GINT_TO_POINTER (SIM_ORIGIN_FAIR), test_sim_sixteen);
  g_test_add_data_func ("/swarm-sim/sixteen/droptail", GINT_TO_POINTER (SIM_ORIGIN_DROPTAIL),
                        test_sim_sixteen);
  g_test_add_func ("/swarm-sim/sixteen/fresh", test_sim_sixteen_fresh);
  g_test_add_func ("/swarm-sim/without-leases", test_sim_without_leases);
  g_test_add_func ("/swarm-sim/liars", test_sim_liars);
  g_test_add_func ("/swarm-sim/churn", test_sim_churn);
  g_test_add_func ("/swarm-sim/unreachable", test_sim_unreachable);
  g_test_add_func ("/swarm-sim/deterministic", test_sim_deterministic);
  return g_test_run ();
}
