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

#include "alv-swarm-plan.h"
#include "sim.h"

#define BS 16384
#define N_BLOCKS 64
#define LENGTH ((guint64) N_BLOCKS * BS - 100)
#define SEC G_USEC_PER_SEC

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
  alv_swarm_plan_add_peer (plan, liar, ALV_SWARM_PEER_FROM_GATEWAY, NULL);
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

  alv_swarm_plan_add_peer (plan, honest, ALV_SWARM_PEER_FROM_GATEWAY, NULL);
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
  g_test_add_func ("/swarm-plan/ban", test_plan_ban);
  g_test_add_func ("/swarm-sim/all-at-once", test_sim_all_at_once);
  g_test_add_data_func ("/swarm-sim/sixteen/fair", GINT_TO_POINTER (SIM_ORIGIN_FAIR), test_sim_sixteen);
  g_test_add_data_func ("/swarm-sim/sixteen/droptail", GINT_TO_POINTER (SIM_ORIGIN_DROPTAIL),
                        test_sim_sixteen);
  g_test_add_func ("/swarm-sim/without-leases", test_sim_without_leases);
  g_test_add_func ("/swarm-sim/liars", test_sim_liars);
  g_test_add_func ("/swarm-sim/churn", test_sim_churn);
  g_test_add_func ("/swarm-sim/deterministic", test_sim_deterministic);
  return g_test_run ();
}
