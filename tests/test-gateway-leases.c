/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the gateway's origin leases (server/gateway-leases.c):
 * runs are granted in stream order, each block once, to at most the
 * configured number of holders at a time and one run per holder; a
 * holder's report of its run ends the lease; a holder that leaves or
 * lapses gives back what it did not report; rescues are one at a time.
 * Plain state with a clock passed in: no sockets, no waiting.
 */
#include "config.h"

#include <glib.h>

#include "gateway-leases.h"

#include "alv-block-map.h"

#define URN "urn:tree:sha256:AAAA"
#define BS 16384
#define RUN_BYTES (4 * BS)
#define N_BLOCKS 40
#define SEC G_USEC_PER_SEC

static GatewayLeases *
new_leases (void)
{
  return gateway_leases_new (2, RUN_BYTES, 30 * SEC);
}

static gboolean
ask (GatewayLeases *l,
     const char    *who,
     guint          first,
     guint          last,
     gboolean       rescue,
     gint64         now,
     guint         *f,
     guint         *t)
{
  return gateway_leases_request (l, URN, N_BLOCKS, BS, who, first, last, rescue, G_MAXUINT, now, f, t);
}

/* A rescue of a block @holders listeners hold. */
static gboolean
ask_rescue (GatewayLeases *l,
            const char    *who,
            guint          first,
            guint          holders,
            gint64         now,
            guint         *f,
            guint         *t)
{
  return gateway_leases_request (l, URN, N_BLOCKS, BS, who, first, N_BLOCKS - 1, TRUE, holders,
                                 now, f, t);
}

static AlvBlockMap *
map_with (guint first,
          guint last)
{
  AlvBlockMap *map = alv_block_map_new (N_BLOCKS);

  for (guint i = first; i <= last; i++)
    alv_block_map_set (map, i);
  return map;
}

/* Three listeners ask at once: two runs in stream order, the third is
 * told no and sees both pulls. */
static void
test_order (void)
{
  g_autoptr(GatewayLeases) l = new_leases ();
  guint f = 99, t = 99;
  GArray *running;

  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  g_assert_cmpuint (f, ==, 0);
  g_assert_cmpuint (t, ==, 3);
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  g_assert_cmpuint (f, ==, 4);
  g_assert_cmpuint (t, ==, 7);
  g_assert_false (ask (l, "c:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  running = gateway_leases_running (l, URN, 8, 0);
  g_assert_cmpuint (running->len, ==, 2);
  g_assert_cmpstr (g_array_index (running, GatewayLease, 0).holder, ==, "a:1");
  g_assert_cmpuint (g_array_index (running, GatewayLease, 1).first, ==, 4);
  g_assert_cmpuint (gateway_leases_get_blocks_granted (l, URN), ==, 8);
  /* nothing for an unknown URN */
  g_assert_cmpuint (gateway_leases_running (l, "urn:tree:sha256:BBBB", 8, 0)->len, ==, 0);
}

/* A report of the run held ends the lease; the next run goes on from
 * where the granted blocks end; a range already pulled is refused. */
static void
test_report (void)
{
  g_autoptr(GatewayLeases) l = new_leases ();
  g_autoptr(AlvBlockMap) held = map_with (0, 3);
  g_autoptr(AlvBlockMap) held_b = map_with (4, 7);
  guint f, t;

  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  gateway_leases_update (l, URN, "a:1", held, FALSE, SEC);
  g_assert_cmpuint (gateway_leases_running (l, URN, 8, SEC)->len, ==, 1);
  g_assert_true (ask (l, "c:1", 0, N_BLOCKS - 1, FALSE, SEC, &f, &t));
  g_assert_cmpuint (f, ==, 8);
  g_assert_cmpuint (t, ==, 11);
  /* blocks 0-11 are pulled or being pulled: nothing to grant there */
  gateway_leases_update (l, URN, "c:1", NULL, FALSE, SEC);
  g_assert_false (ask (l, "d:1", 0, 11, FALSE, SEC, &f, &t));
  /* a run stops at the asker's last block */
  g_assert_false (ask (l, "d:1", 12, 13, FALSE, SEC, &f, &t));   /* two running */
  gateway_leases_update (l, URN, "b:1", held_b, FALSE, SEC);
  g_assert_true (ask (l, "d:1", 12, 13, FALSE, SEC, &f, &t));
  g_assert_cmpuint (f, ==, 12);
  g_assert_cmpuint (t, ==, 13);
}

/* One run per holder: asking again ends the previous one (the holder
 * asks only when done), without giving its blocks back. */
static void
test_one_per_holder (void)
{
  g_autoptr(GatewayLeases) l = new_leases ();
  g_autoptr(AlvBlockMap) held = map_with (0, 3);
  guint f, t;

  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  /* asks again having pulled nothing: the run goes back (to it) */
  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, SEC, &f, &t));
  g_assert_cmpuint (f, ==, 0);
  /* asks again having pulled it: the next run */
  gateway_leases_update (l, URN, "a:1", held, FALSE, 2 * SEC);
  g_assert_cmpuint (gateway_leases_running (l, URN, 8, 2 * SEC)->len, ==, 0);
  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 2 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 4);
  g_assert_cmpuint (gateway_leases_running (l, URN, 8, 2 * SEC)->len, ==, 1);
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 2 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 8);
}

/* A holder that leaves gives back what it did not report; one that
 * lapses likewise, after the TTL. */
static void
test_give_back (void)
{
  g_autoptr(GatewayLeases) l = new_leases ();
  g_autoptr(AlvBlockMap) part = map_with (0, 1);
  guint f, t;

  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  gateway_leases_update (l, URN, "a:1", part, FALSE, SEC);
  gateway_leases_update (l, URN, "a:1", NULL, TRUE, 2 * SEC);
  g_assert_cmpuint (gateway_leases_running (l, URN, 8, 2 * SEC)->len, ==, 0);
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 2 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 2);
  g_assert_cmpuint (t, ==, 5);

  /* b never reports: after the TTL its run is granted again */
  g_assert_true (ask (l, "c:1", 0, N_BLOCKS - 1, FALSE, 2 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 6);
  g_assert_false (ask (l, "d:1", 0, 3, FALSE, 20 * SEC, &f, &t));
  g_assert_true (ask (l, "d:1", 0, 3, FALSE, 33 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 2);
  g_assert_cmpuint (t, ==, 3);
}

/* Rescues: a few blocks, pulled before or not, one at a time, beside the
 * runs (their blocks are due now, a run's later), within a fifth of what
 * the runs were granted and 8 blocks besides, past that for a block few
 * listeners hold; none with leases switched off. */
static void
test_rescue (void)
{
  g_autoptr(GatewayLeases) l = new_leases ();
  g_autoptr(GatewayLeases) off = gateway_leases_new (0, RUN_BYTES, 30 * SEC);
  g_autoptr(AlvBlockMap) run = map_with (0, 3);
  g_autoptr(AlvBlockMap) rescued = map_with (1, GATEWAY_LEASES_RESCUE_MAX);
  g_autoptr(AlvBlockMap) rescued2 = map_with (5, 5 + GATEWAY_LEASES_RESCUE_MAX - 1);
  g_autoptr(AlvBlockMap) rescued3 = map_with (10, 10 + GATEWAY_LEASES_RESCUE_MAX - 1);
  guint f, t;

  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  /* the origin is busy with a run: a rescue all the same */
  g_assert_true (ask (l, "c:1", 1, 20, TRUE, 0, &f, &t));
  g_assert_cmpuint (f, ==, 1);
  g_assert_cmpuint (t, ==, GATEWAY_LEASES_RESCUE_MAX);
  /* one at a time */
  g_assert_false (ask (l, "d:1", 2, 2, TRUE, 0, &f, &t));
  gateway_leases_update (l, URN, "a:1", run, FALSE, SEC);
  g_assert_false (ask (l, "d:1", 2, 2, TRUE, SEC, &f, &t));
  /* a rescue is not a pull of new blocks, and keeps no run waiting */
  g_assert_cmpuint (gateway_leases_get_blocks_granted (l, URN), ==, 4);
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, SEC, &f, &t));
  g_assert_cmpuint (f, ==, 4);
  /* c's is done; the next one fits the share (8 rescued, of 8 granted
   * to runs: at most 8 / 5 + 8 = 9), a third of four blocks does not */
  gateway_leases_update (l, URN, "c:1", rescued, FALSE, 2 * SEC);
  g_assert_true (ask (l, "d:1", 5, 20, TRUE, 2 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 5);
  gateway_leases_update (l, URN, "d:1", rescued2, FALSE, 3 * SEC);
  g_assert_false (ask (l, "e:1", 10, 20, TRUE, 3 * SEC, &f, &t));
  /* past the share for a block few hold, still one at a time */
  g_assert_false (ask_rescue (l, "e:1", 10, GATEWAY_LEASES_RESCUE_RARE + 1, 3 * SEC, &f, &t));
  g_assert_true (ask_rescue (l, "e:1", 10, GATEWAY_LEASES_RESCUE_RARE, 3 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 10);
  g_assert_cmpuint (t, ==, 10 + GATEWAY_LEASES_RESCUE_MAX - 1);
  g_assert_false (ask_rescue (l, "f:1", 20, 0, 3 * SEC, &f, &t));
  /* e's is done: those rescues stay within a tenth of the item (4 of
   * 40 blocks, spent) */
  gateway_leases_update (l, URN, "e:1", rescued3, FALSE, 4 * SEC);
  g_assert_false (ask_rescue (l, "f:1", 20, 0, 4 * SEC, &f, &t));
  g_assert_cmpuint (gateway_leases_get_blocks_granted (l, URN), ==, 8);

  g_assert_false (ask (off, "a:1", 0, 3, FALSE, 0, &f, &t));
  /* nonsense ranges */
  g_assert_false (ask (l, "e:1", 5, 4, FALSE, SEC, &f, &t));
  g_assert_false (ask (l, "e:1", N_BLOCKS, N_BLOCKS + 3, FALSE, SEC, &f, &t));
}

/* Runs go round: the last holder waits while another listener asked in
 * the last two seconds, so the fresh blocks start from many listeners. */
static void
test_rotation (void)
{
  g_autoptr(GatewayLeases) l = gateway_leases_new (1, RUN_BYTES, 30 * SEC);
  g_autoptr(AlvBlockMap) a_held = map_with (0, 3);
  g_autoptr(AlvBlockMap) b_held = map_with (4, 7);
  g_autoptr(AlvBlockMap) b_held2 = map_with (4, 11);
  guint f, t;

  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  g_assert_false (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, SEC / 2, &f, &t));   /* one at a time */
  /* a is done and asks again; b asked lately: a waits, b gets it */
  gateway_leases_update (l, URN, "a:1", a_held, FALSE, SEC);
  g_assert_false (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, SEC, &f, &t));
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, SEC + SEC / 2, &f, &t));
  g_assert_cmpuint (f, ==, 4);
  /* nobody else asked since: b may go on */
  gateway_leases_update (l, URN, "b:1", b_held, FALSE, 5 * SEC);
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 5 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 8);
  /* a asked 2.5 s ago and not since: too long ago to keep b waiting */
  g_assert_false (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 5 * SEC + SEC / 2, &f, &t));
  gateway_leases_update (l, URN, "b:1", b_held2, FALSE, 8 * SEC);
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 8 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 12);
}

/* Two listeners report the holder of runs as a liar: its runs go back,
 * it gets nothing more; one report changes nothing. */
static void
test_report_liar (void)
{
  g_autoptr(GatewayLeases) l = gateway_leases_new (1, RUN_BYTES, 30 * SEC);
  g_autoptr(AlvBlockMap) held = map_with (0, 3);
  guint f, t;

  g_assert_true (ask (l, "liar:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  gateway_leases_update (l, URN, "liar:1", held, FALSE, SEC);    /* claims its run */
  g_assert_true (ask (l, "liar:1", 0, N_BLOCKS - 1, FALSE, SEC, &f, &t));
  g_assert_cmpuint (f, ==, 4);
  g_assert_false (gateway_leases_report (l, URN, "a:1", "nobody:1", SEC));
  g_assert_false (gateway_leases_report (l, URN, "a:1", "liar:1", SEC));
  g_assert_false (gateway_leases_report (l, URN, "a:1", "liar:1", SEC));   /* the same one again */
  g_assert_true (gateway_leases_report (l, URN, "b:1", "liar:1", 2 * SEC));
  /* both runs go back: the next asker pulls them from the start */
  g_assert_cmpuint (gateway_leases_running (l, URN, 8, 2 * SEC)->len, ==, 0);
  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 2 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 0);
  g_assert_false (ask (l, "liar:1", 0, N_BLOCKS - 1, FALSE, 40 * SEC, &f, &t));
  /* a distrusted listener's reports count for nothing */
  g_assert_false (gateway_leases_report (l, URN, "liar:1", "a:1", 40 * SEC));
}

/* A liar that two listeners banned before it was granted anything is
 * granted nothing later: they will never ask it again, so nobody would
 * report its run, and the run would be lost to everyone until it
 * lapsed. */
static void
test_report_before_run (void)
{
  g_autoptr(GatewayLeases) l = gateway_leases_new (1, RUN_BYTES, 30 * SEC);
  guint f, t;

  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  g_assert_false (gateway_leases_report (l, URN, "a:1", "liar:1", SEC));
  g_assert_true (gateway_leases_report (l, URN, "b:1", "liar:1", SEC));
  g_assert_true (ask (l, "a:1", 4, N_BLOCKS - 1, FALSE, 2 * SEC, &f, &t));
  gateway_leases_update (l, URN, "a:1", NULL, TRUE, 3 * SEC);     /* a leaves */
  g_assert_false (ask (l, "liar:1", 0, N_BLOCKS - 1, FALSE, 4 * SEC, &f, &t));
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 4 * SEC, &f, &t));
}

/* An unreachable holder's run is private: the same blocks go to the next
 * asker, it is not among the runs named, it takes no place of the
 * running ones, and one runs at a time; none while reachable listeners
 * ask for runs; it pulls only blocks nobody was granted (those others
 * pull, it copies). */
static void
test_private (void)
{
  g_autoptr(GatewayLeases) l = new_leases ();
  guint f = 99, t = 99;

  g_assert_true (gateway_leases_request_private (l, URN, N_BLOCKS, BS, "nat:1", 0, N_BLOCKS - 1,
                                                 0, &f, &t));
  g_assert_cmpuint (f, ==, 0);
  g_assert_cmpuint (t, ==, 3);
  g_assert_cmpuint (gateway_leases_running (l, URN, 8, 0)->len, ==, 0);
  /* one private run at a time */
  g_assert_false (gateway_leases_request_private (l, URN, N_BLOCKS, BS, "nat:2", 0, N_BLOCKS - 1,
                                                  0, &f, &t));
  /* the blocks and both places are still there for the reachable */
  g_assert_true (ask (l, "a:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  g_assert_cmpuint (f, ==, 0);
  g_assert_true (ask (l, "b:1", 0, N_BLOCKS - 1, FALSE, 0, &f, &t));
  g_assert_cmpuint (f, ==, 4);
  g_assert_cmpuint (gateway_leases_running (l, URN, 8, 0)->len, ==, 2);
  /* while the reachable ask, nothing private; 5 s after, the holder's
   * next run is the next fresh one, 8-11 */
  g_assert_false (gateway_leases_request_private (l, URN, N_BLOCKS, BS, "nat:1", 0, N_BLOCKS - 1,
                                                  4 * SEC, &f, &t));
  g_assert_true (gateway_leases_request_private (l, URN, N_BLOCKS, BS, "nat:1", 0, N_BLOCKS - 1,
                                                 5 * SEC, &f, &t));
  g_assert_cmpuint (f, ==, 8);
  g_assert_cmpuint (t, ==, 11);
  /* what others were granted is not pulled again */
  g_assert_false (gateway_leases_request_private (l, URN, N_BLOCKS, BS, "nat:1", 0, 7, 6 * SEC,
                                                  &f, &t));
  g_assert_cmpuint (gateway_leases_get_blocks_granted (l, URN), ==, 8);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/gateway/leases/order", test_order);
  g_test_add_func ("/gateway/leases/report", test_report);
  g_test_add_func ("/gateway/leases/one-per-holder", test_one_per_holder);
  g_test_add_func ("/gateway/leases/give-back", test_give_back);
  g_test_add_func ("/gateway/leases/rescue", test_rescue);
  g_test_add_func ("/gateway/leases/rotation", test_rotation);
  g_test_add_func ("/gateway/leases/report-liar", test_report_liar);
  g_test_add_func ("/gateway/leases/report-before-run", test_report_before_run);
  g_test_add_func ("/gateway/leases/private", test_private);
  return g_test_run ();
}
