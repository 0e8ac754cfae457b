/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * AlvSwarmPlan: the swarm's policy for one item as a pure state machine
 * (see the header).  A tick walks the rules of doc/swarm.md in order:
 * stalled requests, the urgent window, the origin (by lease, by segment
 * ownership, or alone), rarest first among peers, availability polls and
 * announces; every rule that decides "not yet" records when it could
 * decide otherwise, and the earliest of those is the next wake-up, so a
 * swarm with nothing to do does not tick at all.  The peer table
 * remembers where each peer was learnt, so that gossip can neither fill
 * it, nor send the listener knocking on strangers' doors, nor be passed
 * on unproven.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-swarm-plan.h"

#include <string.h>

#include "alv-block-map.h"
#include "alv-rendezvous.h"

/* The numbers; doc/swarm.md says why. */
#define MAX_REQUESTS            16      /* all requests in flight */
#define MAX_BULK_REQUESTS       6       /* of them, rarest-first ones, when playing */
#define MAX_BULK_PREFETCH       8       /* the same, when nothing has a deadline */
#define MAX_PEERS               ALV_SWARM_PLAN_MAX_PEERS
#define MAX_SOURCES             (4 * MAX_PEERS)  /* sources remembered */
#define UNPROVEN_BACKOFF_US     (1 * US)         /* × 2^failures */
#define PEER_MAX_DEPTH          4       /* per-peer pipeline, blocks */
#define PEER_DEFAULT_DEPTH      2
#define PIPELINE_SECONDS        1.5
#define PEER_ASSUMED_RATE       (512.0 * 1024)   /* bytes/s before measured */
#define ORIGIN_ASSUMED_RATE     (256.0 * 1024)
#define US                      G_USEC_PER_SEC
#define MS                      (G_USEC_PER_SEC / 1000)
#define PEER_STALL_US           (4 * US)
#define ORIGIN_STALL_US         (10 * US)
#define ORIGIN_MAX_RUN_BYTES    (1024 * 1024)    /* one Range request */
#define ORIGIN_MAX_REQUESTS     2
#define SEGMENT_BYTES           (256 * 1024)     /* unit of ownership without a gateway */
#define HORIZON_US              (60 * US)        /* how far ahead the origin is pulled */
#define NEAR_US                 (10 * US)        /* bulk takes what is due this soon first */
#define RANK_STEP_US            (500 * MS)       /* stand-ins without a gateway, per rank */
#define FETCH_GRACE_US          (2 * US)         /* how late a peer's origin pull may be */
#define HELD_GRACE_US           (1 * US)         /* how late a held block may be */
#define RESCUE_LEAD_US          (1 * US)         /* a rescue of a held block is asked
                                                  * this long before the deadline
                                                  * nobody makes */
#define RESCUE_LATE_US          (500 * MS)       /* one nobody holds, this late */
#define RESCUE_RETRY_US         (500 * MS)
#define POLL_INTERVAL_US        (1 * US)
#define POLL_FAST_US            (250 * MS)
#define POLL_SLOW_US            (4 * US)
#define POLL_SOON_US            (4 * US)
#define POLL_BATCH              4
#define INFO_MAX_WAIT_US        (2 * US)
#define DEFAULT_URGENT_WINDOW   (4 * US)
#define ENDGAME_MARGIN_US       (1500 * MS)
#define URGENT_SCAN_MAX         512
#define BUSY_BACKOFF_US         (300 * MS)
#define OWNER_MAX_FAILURES      3
#define LEASE_TTL_US            (30 * US)
#define LEASE_RETRY_MIN_US      (1 * US)
#define LEASE_RETRY_MAX_US      (8 * US)
#define LEASE_RETRY_NEAR_US     (300 * MS)
#define MAX_LEASES              2
#define ANNOUNCE_QUICK_MIN_S    1
#define ANNOUNCE_QUICK_MAX_S    60
#define ANNOUNCE_DEFAULT_S      900
#define ANNOUNCE_FEW_PEERS      4
#define MIN_WAKE_US             (5 * MS)
#define MAX_WAITING             2       /* requests waiting at pullers */
#define WAIT_RETRY_US           (1 * US)         /* after a puller refused one */
#define LEASE_RUN_DUE_US        (2 * US)         /* a whole run when due this soon */
#define SOFT_WAKE_US            (100 * MS)

typedef struct
{
  char *key;
  AlvBlockMap *avail;           /* NULL: not heard from yet */
  AlvBlockMap *fetching;        /* what it pulls from the origin */
  gint64 avail_time;
  gint64 fetching_time;
  gboolean polling;
  guint inflight;
  guint bulk_inflight;          /* of them, rarest-first ones */
  double rate;                  /* bytes/s, EWMA; 0: not measured */
  guint failures;               /* in a row: polls or requests that failed
                                 * since the last good answer */
  gint64 backoff_until;
  gint64 busy_until;            /* no request before: even its urgent
                                 * uploads past the slots were full */
  guint busy_count;             /* 503-busy answers in a row */
  gint64 bulk_busy_until;       /* no rarest-first request before: its
                                 * slots were full (it still takes what
                                 * is due soon, past them) */
  guint bulk_busy_count;
  gboolean banned;
  AlvSwarmPeerFrom from;        /* how it was learnt first */
  char *source;                 /* whose allowance it uses while unproven:
                                 * the gossiping peer's key, the
                                 * requester's host; NULL: vouched for */
  gboolean vouched;             /* a gateway answer named it */
  gboolean verified;            /* a block from it passed verification */
  gboolean contacted;           /* polled or asked at least once */
  gint64 wait_retry_at;         /* no request waits here before */
} Peer;

/* A source is remembered while an address it gave is in the table (at
 * most MAX_PEERS of them) or one it gossiped was dropped after failing
 * less than SOURCE_SPENT_US ago; such an address was first contacted, at
 * most FIRST_CONTACTS per window.  So the sources fit, whoever cycles
 * ports or peers: MAX_SOURCES is a backstop, never the reason to refuse
 * an honest source. */
G_STATIC_ASSERT (MAX_PEERS + ALV_SWARM_PLAN_FIRST_CONTACTS *
                 (ALV_SWARM_PLAN_SOURCE_SPENT_US / ALV_SWARM_PLAN_FIRST_CONTACT_WINDOW_US + 1) <
                 MAX_SOURCES);

/* What one source gave that is unproven: @live addresses in the table,
 * @spent gossiped ones dropped after failing, each counted against it
 * until ALV_SWARM_PLAN_SOURCE_SPENT_US after its drop (@spent_at, oldest
 * first).  live + spent never exceeds ALV_SWARM_PLAN_SOURCE_MAX. */
typedef struct
{
  guint live;
  guint spent;
  gint64 spent_at[ALV_SWARM_PLAN_SOURCE_MAX];
} Source;

typedef struct
{
  guint id;
  Peer *peer;                   /* NULL: the origin */
  guint first, last, next;
  gint64 started;
  gint64 last_progress;
  guint64 bytes;
  gboolean bulk;                /* a rarest-first request */
  gboolean waiting;             /* for a block the peer pulls from the origin */
  gboolean cancelling;
} Request;

typedef struct
{
  guint first, last;
  gint64 granted;
  gboolean rescue;              /* pulled even where peers hold it */
} Lease;

typedef enum
{
  MODE_ALONE,                   /* no gateway: pull what nobody known has */
  MODE_WAITING,                 /* announced, no answer yet */
  MODE_OWNERS,                  /* the gateway grants no leases: rendezvous */
  MODE_LEASES,                  /* origin pulls by the gateway's leases */
} Mode;

struct _AlvSwarmPlan
{
  guint64 length;
  guint block_size;
  guint n_blocks;
  char *urn;
  char *self_key;
  GRand *rand;

  AlvBlockMap *have;
  AlvBlockMap *taken;           /* have | writing | pending */
  guint8 *pending;
  guint8 *writing;
  guint *availability;
  guint *fetching;

  GPtrArray *peers;             /* Peer, in the order learnt */
  GHashTable *peer_index;       /* key → Peer */
  GHashTable *sources;          /* source name → Source */
  guint n_gossip;               /* unproven gossiped peers in the table */
  gint64 contact_window;        /* first contacts to gossiped peers since */
  guint contact_window_used;
  GPtrArray *requests;          /* Request */
  GPtrArray *usable;            /* peers usable at usable_at (best_peer_for) */
  GPtrArray *banned_new;        /* keys banned, not yet reported */
  gint64 usable_at;
  guint n_bulk;                 /* of them, rarest first */
  guint n_waiting;              /* of them, waiting at a puller */
  guint next_id;
  GArray *queued;               /* actions decided outside a tick */

  gboolean has_origin;
  gboolean origin_broken;
  gboolean origin_ignores_range;
  guint origin_inflight;
  guint origin_failures;
  gint64 origin_backoff_until;
  double origin_rate;

  gboolean announcing;
  gboolean answered;            /* any announce answered */
  gboolean lease_known;
  gboolean gateway_down;
  Lease leases[MAX_LEASES];
  guint n_leases;
  gint64 lease_retry_at;
  gint64 lease_retry_step;
  gboolean asked_lease;         /* what the pending ANNOUNCE asked for */
  gboolean asked_rescue;
  gint64 asked_due;             /* the deadline of the first block asked for */
  gint64 rescue_retry_at;
  gboolean announce_pending;    /* an ANNOUNCE awaits its answer */
  gint64 poll_window;           /* polls sent since then: at most POLL_BATCH */
  guint poll_window_sent;
  gboolean announce_now;
  gint64 announce_due;
  guint announce_quick;

  gboolean have_tree;
  gboolean active;
  gint64 active_since;          /* G_MININT64: not yet */
  guint needed_from;

  guint64 playhead;
  guint64 playhead_rate;
  gint64 playhead_time;
  AlvSwarmPlanDeadlineFunc deadline_func;
  gpointer deadline_data;
  gint64 urgent_window;

  AlvSwarmPlanStats stats;

  /* during a tick */
  gint64 tick_now;
  gint64 wake;
  GArray *out;
};

/* ------------------------------------------------------------------ */
/* bookkeeping                                                         */

static void
wake_at (AlvSwarmPlan *self,
         gint64        when)
{
  if (when < self->wake)
    self->wake = when;
}

/* A wake-up that may come a little late (a poll due, a peer usable
 * again): never sooner than SOFT_WAKE_US after the tick, so that a plan
 * knowing many peers wakes a few times a second, not once per peer. */
static void
wake_soft (AlvSwarmPlan *self,
           gint64        when)
{
  wake_at (self, MAX (when, self->tick_now + SOFT_WAKE_US));
}

static void
update_taken (AlvSwarmPlan *self,
              guint         i)
{
  if (alv_block_map_get (self->have, i) || self->writing[i] || self->pending[i] > 0)
    alv_block_map_set (self->taken, i);
  else
    alv_block_map_clear (self->taken, i);
}

static gsize
block_len (AlvSwarmPlan *self,
           guint         i)
{
  guint64 off = (guint64) i * self->block_size;

  return (gsize) MIN ((guint64) self->block_size, self->length - off);
}

gint64
alv_swarm_plan_get_deadline (AlvSwarmPlan *self,
                             guint         i)
{
  guint64 off = (guint64) i * self->block_size;

  if (self->deadline_func != NULL)
    return self->deadline_func (i, self->deadline_data);
  if (self->playhead_rate == 0)
    return ALV_SWARM_PLAN_NO_DEADLINE;
  if (off + block_len (self, i) <= self->playhead)
    return ALV_SWARM_PLAN_NO_DEADLINE;
  if (off <= self->playhead)
    return self->playhead_time;
  return self->playhead_time +
         (gint64) ((off - self->playhead) * (double) US / self->playhead_rate);
}

static gboolean
held_or_writing (AlvSwarmPlan *self,
                 guint         i)
{
  return alv_block_map_get (self->have, i) || self->writing[i];
}

/* Replaces the map in @slot by @map (both nullable), keeping @counts in
 * step. */
static void
replace_counted_map (AlvSwarmPlan *self,
                     AlvBlockMap **slot,
                     guint        *counts,
                     AlvBlockMap  *map)
{
  if (map != NULL && alv_block_map_get_n_blocks (map) != self->n_blocks)
    g_clear_pointer (&map, alv_block_map_free);
  for (guint i = *slot != NULL ? alv_block_map_first_set_after (*slot, 0) : self->n_blocks;
       i < self->n_blocks; i = alv_block_map_first_set_after (*slot, i + 1))
    counts[i]--;
  g_clear_pointer (slot, alv_block_map_free);
  *slot = map;
  for (guint i = *slot != NULL ? alv_block_map_first_set_after (*slot, 0) : self->n_blocks;
       i < self->n_blocks; i = alv_block_map_first_set_after (*slot, i + 1))
    counts[i]++;
}

static void
emit (AlvSwarmPlan   *self,
      AlvSwarmAction *action)
{
  g_array_append_val (self->out != NULL ? self->out : self->queued, *action);
}

/* ------------------------------------------------------------------ */
/* peers                                                               */

static void
peer_free (Peer *p)
{
  g_free (p->key);
  g_free (p->source);
  g_clear_pointer (&p->avail, alv_block_map_free);
  g_clear_pointer (&p->fetching, alv_block_map_free);
  g_free (p);
}

static Peer *
find_peer (AlvSwarmPlan *self,
           const char   *key)
{
  return key != NULL ? g_hash_table_lookup (self->peer_index, key) : NULL;
}

static gboolean
peer_trusted (Peer *p)
{
  return p->vouched || p->verified;
}

/* A failure backs a peer off, twice as long each time in a row; an
 * unproven one (gossiped, or a requester) longer, and it is dropped after
 * ALV_SWARM_PLAN_UNPROVEN_MAX_FAILURES (plan_forget()). */
static void
peer_fail (Peer   *p,
           gint64  extra_us,
           gint64  now)
{
  gint64 backoff;

  p->failures++;
  if (peer_trusted (p))
    backoff = (gint64) (250 * MS) << MIN (p->failures, 7u);
  else
    backoff = UNPROVEN_BACKOFF_US << MIN (p->failures, 5u);
  p->backoff_until = now + MIN (backoff, 30 * US) + extra_us;
}

static gboolean
peer_usable (AlvSwarmPlan *self,
             Peer         *p,
             gint64        now)
{
  return self->have_tree && !p->banned && p->avail != NULL &&
         now >= p->backoff_until && now >= p->busy_until;
}

/* ... for a rarest-first request */
static gboolean
peer_usable_bulk (AlvSwarmPlan *self,
                  Peer         *p,
                  gint64        now)
{
  return peer_usable (self, p, now) && now >= p->bulk_busy_until;
}

static guint
peer_depth (AlvSwarmPlan *self,
            Peer         *p)
{
  double blocks;

  if (p->rate <= 0)
    return PEER_DEFAULT_DEPTH;
  blocks = p->rate * PIPELINE_SECONDS / self->block_size;
  return (guint) CLAMP (blocks + 0.999, 1, PEER_MAX_DEPTH);
}

static guint
n_usable_peers (AlvSwarmPlan *self)
{
  guint n = 0;

  for (guint k = 0; k < self->peers->len; k++)
    if (!((Peer *) self->peers->pdata[k])->banned)
      n++;
  return n;
}

/* ------------------------------------------------------------------ */
/* whom to believe                                                     */

/* "ip" of "ip:port" ("[v6]" of "[v6]:port"): a requester's host, whose
 * claims of its own ports share one allowance. */
static char *
host_of (const char *key)
{
  const char *colon = strrchr (key, ':');

  return colon != NULL ? g_strndup (key, (gsize) (colon - key)) : g_strdup (key);
}

static Source *
source_get (AlvSwarmPlan *self,
            const char   *name)
{
  Source *s = g_hash_table_lookup (self->sources, name);

  if (s == NULL)
    {
      s = g_new0 (Source, 1);
      g_hash_table_insert (self->sources, g_strdup (name), s);
    }
  return s;
}

/* Forgets the spent addresses of @s that are old enough. */
static void
source_age (Source *s,
            gint64  now)
{
  guint old = 0;

  while (old < s->spent && now - s->spent_at[old] >= ALV_SWARM_PLAN_SOURCE_SPENT_US)
    old++;
  if (old == 0)
    return;
  memmove (s->spent_at, s->spent_at + old, (s->spent - old) * sizeof s->spent_at[0]);
  s->spent -= old;
}

static gboolean
source_counts_nothing (Source *s)
{
  return s->live == 0 && s->spent == 0;
}

/* Forgets @name once it counts nothing. */
static void
source_settle (AlvSwarmPlan *self,
               const char   *name,
               Source       *s)
{
  if (source_counts_nothing (s))
    g_hash_table_remove (self->sources, name);
}

/* Whether @name may give one more unproven address at @now.  A full
 * table of sources is first rid of those that count nothing any more
 * (then far from full: see MAX_SOURCES). */
static gboolean
source_allows (AlvSwarmPlan *self,
               const char   *name,
               gint64        now)
{
  Source *s = g_hash_table_lookup (self->sources, name);

  if (s == NULL && g_hash_table_size (self->sources) >= MAX_SOURCES)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, self->sources);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          source_age (value, now);
          if (source_counts_nothing (value))
            g_hash_table_iter_remove (&iter);
        }
    }
  if (s == NULL)
    return g_hash_table_size (self->sources) < MAX_SOURCES;
  source_age (s, now);
  return s->live + s->spent < ALV_SWARM_PLAN_SOURCE_MAX;
}

/* The peer @key proved itself: the addresses it named that failed no
 * longer count against it. */
static void
source_forget_spent (AlvSwarmPlan *self,
                     const char   *key)
{
  Source *s = g_hash_table_lookup (self->sources, key);

  if (s == NULL)
    return;
  s->spent = 0;
  source_settle (self, key, s);
}

/* @p no longer counts against its source: proven, or gone (@failed, at
 * @now: a gossiped address dropped after failing, counted against the
 * peer that named it for ALV_SWARM_PLAN_SOURCE_SPENT_US). */
static void
source_release (AlvSwarmPlan *self,
                Peer         *p,
                gboolean      failed,
                gint64        now)
{
  Source *s;

  if (p->source == NULL || peer_trusted (p))
    return;
  if (p->from == ALV_SWARM_PEER_FROM_GOSSIP)
    self->n_gossip--;
  s = g_hash_table_lookup (self->sources, p->source);
  if (s == NULL)
    return;
  s->live--;
  if (failed && p->from == ALV_SWARM_PEER_FROM_GOSSIP && s->spent < G_N_ELEMENTS (s->spent_at))
    s->spent_at[s->spent++] = now;
  source_settle (self, p->source, s);
}

/* @p is vouched for or served a verified block: it no longer counts
 * against its source, and what it named that failed is forgiven. */
static void
peer_trust (AlvSwarmPlan *self,
            Peer         *p,
            gboolean      vouched,
            gboolean      verified)
{
  source_release (self, p, FALSE, 0);
  p->vouched |= vouched;
  p->verified |= verified;
  source_forget_spent (self, p->key);
}

/* Forgets @p, which has nothing in flight (@failed: after failing, at
 * @now; otherwise evicted). */
static void
drop_peer (AlvSwarmPlan *self,
           Peer         *p,
           gboolean      failed,
           gint64        now)
{
  source_release (self, p, failed, now);
  replace_counted_map (self, &p->avail, self->availability, NULL);
  replace_counted_map (self, &p->fetching, self->fetching, NULL);
  /* best_peer_for()'s list of the peers usable now is made afresh */
  g_ptr_array_set_size (self->usable, 0);
  self->usable_at = G_MININT64;
  self->stats.peers_dropped++;
  g_hash_table_remove (self->peer_index, p->key);
  g_ptr_array_remove (self->peers, p);
}

static gboolean
peer_idle (Peer *p)
{
  return p->inflight == 0 && !p->polling;
}

/* A full table makes room for a peer the gateway vouched for: an unproven
 * gossiped address goes first, then an unproven requester. */
static gboolean
make_room (AlvSwarmPlan *self)
{
  for (guint pass = 0; pass < 2; pass++)
    for (guint k = 0; k < self->peers->len; k++)
      {
        Peer *p = self->peers->pdata[k];

        if (!peer_trusted (p) && !p->banned && peer_idle (p) &&
            p->from == (pass == 0 ? ALV_SWARM_PEER_FROM_GOSSIP : ALV_SWARM_PEER_FROM_REQUESTER))
          {
            drop_peer (self, p, FALSE, 0);
            return TRUE;
          }
      }
  return FALSE;
}

/* Whether contacting @p for the first time must wait for an allowance:
 * a gossiped address, unproven, never contacted. */
static gboolean
peer_needs_allowance (Peer *p)
{
  return p->from == ALV_SWARM_PEER_FROM_GOSSIP && !peer_trusted (p) && !p->contacted;
}

/* Takes one of the ALV_SWARM_PLAN_FIRST_CONTACTS per window, for a
 * contact made now; FALSE (and a wake-up at the next window) when they
 * are used up. */
static gboolean
take_first_contact (AlvSwarmPlan *self,
                    gint64        now)
{
  if (self->contact_window == G_MININT64 ||
      now - self->contact_window >= ALV_SWARM_PLAN_FIRST_CONTACT_WINDOW_US)
    {
      self->contact_window = now;
      self->contact_window_used = 0;
    }
  if (self->contact_window_used >= ALV_SWARM_PLAN_FIRST_CONTACTS)
    {
      wake_soft (self, self->contact_window + ALV_SWARM_PLAN_FIRST_CONTACT_WINDOW_US);
      return FALSE;
    }
  self->contact_window_used++;
  return TRUE;
}

/* Drops the unproven addresses that failed too often (not while a poll
 * or request of theirs is out: its end is reported first). */
static void
plan_forget (AlvSwarmPlan *self,
             gint64        now)
{
  for (guint k = self->peers->len; k > 0; k--)
    {
      Peer *p = self->peers->pdata[k - 1];

      if (!peer_trusted (p) && !p->banned && peer_idle (p) &&
          p->failures >= ALV_SWARM_PLAN_UNPROVEN_MAX_FAILURES)
        drop_peer (self, p, TRUE, now);
    }
}

/* ------------------------------------------------------------------ */
/* requests                                                            */

static Request *
find_request (AlvSwarmPlan *self,
              guint         id)
{
  for (guint k = 0; k < self->requests->len; k++)
    if (((Request *) self->requests->pdata[k])->id == id)
      return self->requests->pdata[k];
  return NULL;
}

static Request *
request_for_block (AlvSwarmPlan *self,
                   guint         i)
{
  for (guint k = 0; k < self->requests->len; k++)
    {
      Request *r = self->requests->pdata[k];

      if (!r->cancelling && r->next <= i && i <= r->last)
        return r;
    }
  return NULL;
}

static gboolean
origin_usable (AlvSwarmPlan *self,
               gint64        now)
{
  if (!self->has_origin || self->origin_broken)
    return FALSE;
  if (now < self->origin_backoff_until)
    {
      wake_at (self, self->origin_backoff_until);
      return FALSE;
    }
  return self->origin_inflight < ORIGIN_MAX_REQUESTS;
}

static Request *
start_request (AlvSwarmPlan *self,
               Peer         *peer,
               guint         first,
               guint         last,
               gint64        now,
               const char   *why)
{
  Request *r = g_new0 (Request, 1);
  AlvSwarmAction a = { 0, };

  r->id = ++self->next_id;
  r->peer = peer;
  r->first = r->next = first;
  r->last = last;
  r->started = r->last_progress = now;
  for (guint i = first; i <= last; i++)
    {
      self->pending[i]++;
      update_taken (self, i);
    }
  if (peer != NULL)
    {
      peer->inflight++;
      peer->contacted = TRUE;
    }
  else
    {
      self->origin_inflight++;
      self->stats.origin_requests++;
      self->stats.origin_blocks += last - first + 1;
    }
  g_ptr_array_add (self->requests, r);
  a.kind = ALV_SWARM_ACTION_REQUEST;
  a.request = r->id;
  a.peer = peer != NULL ? peer->key : NULL;
  a.first = first;
  a.last = last;
  a.deadline = alv_swarm_plan_get_deadline (self, first);
  a.reason = why;
  emit (self, &a);
  wake_at (self, now + (peer != NULL ? PEER_STALL_US : ORIGIN_STALL_US));
  return r;
}

/* A rarest-first request: their number is capped, so that a listener
 * takes no more of its peers' upload slots than it needs, and the slots
 * stay free for what someone is about to play. */
static void
start_bulk_request (AlvSwarmPlan *self,
                    Peer         *peer,
                    guint         index,
                    gint64        now,
                    const char   *why)
{
  Request *r = start_request (self, peer, index, index, now, why);

  r->bulk = TRUE;
  self->n_bulk++;
  peer->bulk_inflight++;
}

/* A request for block @index, which @peer pulls from the origin right
 * now: it waits there until the block lands (the peer bounds how many
 * wait and for how long) and leaves the puller the moment it does. */
static void
start_waiting_request (AlvSwarmPlan *self,
                       Peer         *peer,
                       guint         index,
                       gint64        now)
{
  Request *r = start_request (self, peer, index, index, now, "fresh");

  r->waiting = TRUE;
  self->n_waiting++;
  r->bulk = TRUE;
  self->n_bulk++;
  peer->bulk_inflight++;
}

/* Whether a request may wait at @p for a block it pulls. */
static gboolean
may_wait_at (AlvSwarmPlan *self,
             Peer         *p,
             gint64        now)
{
  if (p->fetching == NULL || self->n_waiting >= MAX_WAITING ||
      p->inflight >= peer_depth (self, p))
    return FALSE;
  if (now < p->wait_retry_at)
    {
      wake_soft (self, p->wait_retry_at);
      return FALSE;
    }
  return TRUE;
}

static guint
max_bulk (AlvSwarmPlan *self)
{
  return self->deadline_func != NULL || self->playhead_rate > 0 ? MAX_BULK_REQUESTS
                                                               : MAX_BULK_PREFETCH;
}

static void
cancel_request (AlvSwarmPlan *self,
                Request      *r)
{
  AlvSwarmAction a = { 0, };

  if (r->cancelling)
    return;
  r->cancelling = TRUE;
  a.kind = ALV_SWARM_ACTION_CANCEL;
  a.request = r->id;
  a.peer = r->peer != NULL ? r->peer->key : NULL;
  a.first = r->next;
  a.last = r->last;
  a.reason = "cancel";
  emit (self, &a);
}

/* When block @i of @r should be complete at its source's measured rate. */
static gint64
request_eta (AlvSwarmPlan *self,
             Request      *r,
             guint         i)
{
  double rate = r->peer != NULL ? (r->peer->rate > 0 ? r->peer->rate : PEER_ASSUMED_RATE)
                                : (self->origin_rate > 0 ? self->origin_rate : ORIGIN_ASSUMED_RATE);

  return r->started + (gint64) ((i - r->first + 1) * (double) self->block_size / rate * US);
}

/* ------------------------------------------------------------------ */
/* construction and setters                                            */

AlvSwarmPlan *
alv_swarm_plan_new (guint64  length,
                    guint    block_size,
                    gboolean has_origin,
                    guint32  seed)
{
  AlvSwarmPlan *self;
  guint64 n;

  g_return_val_if_fail (length > 0 && block_size > 0, NULL);
  n = (length + block_size - 1) / block_size;
  g_return_val_if_fail (n <= G_MAXUINT / 2, NULL);

  self = g_new0 (AlvSwarmPlan, 1);
  self->length = length;
  self->block_size = block_size;
  self->n_blocks = (guint) n;
  self->rand = g_rand_new_with_seed (seed);
  self->have = alv_block_map_new (self->n_blocks);
  self->taken = alv_block_map_new (self->n_blocks);
  self->pending = g_new0 (guint8, self->n_blocks);
  self->writing = g_new0 (guint8, self->n_blocks);
  self->availability = g_new0 (guint, self->n_blocks);
  self->fetching = g_new0 (guint, self->n_blocks);
  self->peers = g_ptr_array_new_with_free_func ((GDestroyNotify) peer_free);
  self->peer_index = g_hash_table_new (g_str_hash, g_str_equal);
  self->sources = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->contact_window = G_MININT64;
  self->requests = g_ptr_array_new_with_free_func (g_free);
  self->usable = g_ptr_array_new ();
  self->banned_new = g_ptr_array_new_with_free_func (g_free);
  self->usable_at = G_MININT64;
  self->queued = g_array_new (FALSE, TRUE, sizeof (AlvSwarmAction));
  self->has_origin = has_origin;
  self->active = TRUE;
  self->active_since = G_MININT64;
  self->urgent_window = DEFAULT_URGENT_WINDOW;
  self->lease_retry_step = LEASE_RETRY_MIN_US;
  self->announce_due = G_MAXINT64;
  return self;
}

void
alv_swarm_plan_free (AlvSwarmPlan *self)
{
  if (self == NULL)
    return;
  g_free (self->urn);
  g_free (self->self_key);
  g_rand_free (self->rand);
  alv_block_map_free (self->have);
  alv_block_map_free (self->taken);
  g_free (self->pending);
  g_free (self->writing);
  g_free (self->availability);
  g_free (self->fetching);
  g_hash_table_unref (self->peer_index);
  g_hash_table_unref (self->sources);
  g_ptr_array_unref (self->peers);
  g_ptr_array_unref (self->requests);
  g_ptr_array_unref (self->usable);
  g_ptr_array_unref (self->banned_new);
  g_array_unref (self->queued);
  g_free (self);
}

void
alv_swarm_plan_set_urn (AlvSwarmPlan *self,
                        const char   *urn)
{
  g_free (self->urn);
  self->urn = g_strdup (urn);
}

void
alv_swarm_plan_set_announcing (AlvSwarmPlan *self,
                               gboolean      announcing)
{
  if (announcing && !self->announcing)
    {
      self->announce_now = TRUE;
      self->announce_quick = 0;
    }
  self->announcing = announcing;
}

void
alv_swarm_plan_announce_soon (AlvSwarmPlan *self)
{
  if (self->announcing)
    self->announce_now = TRUE;
}

void
alv_swarm_plan_set_self_key (AlvSwarmPlan *self,
                             const char   *key)
{
  if (g_strcmp0 (key, self->self_key) == 0)
    return;
  g_free (self->self_key);
  self->self_key = g_strdup (key);
}

void
alv_swarm_plan_set_active (AlvSwarmPlan *self,
                           gboolean      active,
                           gint64        now)
{
  if (active && (!self->active || self->active_since == G_MININT64))
    {
      /* the swarm moved on while this one waited: hear it afresh before
       * pulling anything from the origin */
      self->active_since = now;
      if (self->announcing)
        self->announce_now = TRUE;
    }
  self->active = active;
}

void
alv_swarm_plan_set_tree (AlvSwarmPlan *self,
                         gboolean      have_tree)
{
  if (have_tree && !self->have_tree && self->announcing)
    self->announce_now = TRUE;   /* now it shares: say what it holds */
  self->have_tree = have_tree;
}

void
alv_swarm_plan_set_urgent_window (AlvSwarmPlan *self,
                                  gint64        window_us)
{
  self->urgent_window = MAX (window_us, 2 * HELD_GRACE_US);
}

void
alv_swarm_plan_set_seed (AlvSwarmPlan *self,
                         guint32       seed)
{
  g_rand_set_seed (self->rand, seed);
}

guint64
alv_swarm_plan_get_playhead (AlvSwarmPlan *self)
{
  return self->playhead;
}

void
alv_swarm_plan_set_playhead (AlvSwarmPlan *self,
                             guint64       offset,
                             guint64       bytes_per_second,
                             gint64        now)
{
  self->playhead = MIN (offset, self->length);
  self->playhead_rate = bytes_per_second;
  self->playhead_time = now;
  if (bytes_per_second > 0)
    self->needed_from = (guint) MIN (self->playhead / self->block_size, (guint64) self->n_blocks);
}

void
alv_swarm_plan_stream_resumed (AlvSwarmPlan *self,
                               guint64       offset,
                               gint64        now)
{
  gint64 d;

  if (self->deadline_func != NULL || self->playhead_rate == 0 || offset >= self->length)
    return;
  d = alv_swarm_plan_get_deadline (self, (guint) (offset / self->block_size));
  if (d != ALV_SWARM_PLAN_NO_DEADLINE && d < now)
    alv_swarm_plan_set_playhead (self, offset, self->playhead_rate, now);
}

void
alv_swarm_plan_release_playhead (AlvSwarmPlan *self)
{
  self->deadline_func = NULL;
  self->deadline_data = NULL;
  self->playhead_rate = 0;
}

void
alv_swarm_plan_set_needed_from (AlvSwarmPlan *self,
                                guint64       offset)
{
  self->needed_from = (guint) MIN (offset / self->block_size, (guint64) self->n_blocks);
}

void
alv_swarm_plan_set_deadline_func (AlvSwarmPlan             *self,
                                  AlvSwarmPlanDeadlineFunc  func,
                                  gpointer                  user_data)
{
  self->deadline_func = func;
  self->deadline_data = user_data;
}

/* ------------------------------------------------------------------ */
/* events                                                              */

gboolean
alv_swarm_plan_add_peer (AlvSwarmPlan     *self,
                         const char       *key,
                         AlvSwarmPeerFrom  from,
                         const char       *source,
                         gint64            now)
{
  Peer *p;
  g_autofree char *owner = NULL;

  if (key == NULL || g_strcmp0 (key, self->self_key) == 0)
    return FALSE;
  p = find_peer (self, key);
  if (p != NULL)
    {
      if (from == ALV_SWARM_PEER_FROM_GATEWAY && !p->vouched)
        peer_trust (self, p, TRUE, FALSE);
      return FALSE;
    }
  switch (from)
    {
    case ALV_SWARM_PEER_FROM_GOSSIP:
      {
        Peer *teller = find_peer (self, source);

        /* X-Alt counts only from a peer we know and have not banned */
        if (teller == NULL || teller->banned || self->n_gossip >= ALV_SWARM_PLAN_GOSSIP_MAX)
          {
            self->stats.peers_refused++;
            return FALSE;
          }
        owner = g_strdup (teller->key);
      }
      break;
    case ALV_SWARM_PEER_FROM_REQUESTER:
      owner = host_of (key);
      break;
    case ALV_SWARM_PEER_FROM_GATEWAY:
    default:
      break;
    }
  if ((owner != NULL && !source_allows (self, owner, now)) ||
      (self->peers->len >= MAX_PEERS && (owner != NULL || !make_room (self))))
    {
      self->stats.peers_refused++;
      return FALSE;
    }
  p = g_new0 (Peer, 1);
  p->key = g_strdup (key);
  p->from = from;
  p->vouched = from == ALV_SWARM_PEER_FROM_GATEWAY;
  p->source = g_steal_pointer (&owner);
  g_ptr_array_add (self->peers, p);
  g_hash_table_insert (self->peer_index, p->key, p);
  if (p->source != NULL)
    {
      source_get (self, p->source)->live++;
      if (from == ALV_SWARM_PEER_FROM_GOSSIP)
        self->n_gossip++;
    }
  return TRUE;
}

/* Takes over what @p says it holds (@avail) and pulls (@fetching). */
static void
peer_set_avail (AlvSwarmPlan  *self,
                Peer          *p,
                AlvSwarmAvail  how,
                AlvBlockMap   *avail,
                AlvBlockMap   *fetching,
                gint64         now)
{
  g_autoptr(AlvBlockMap) owned_avail = avail;
  g_autoptr(AlvBlockMap) owned_fetching = fetching;

  /* untrusted, like everything a peer says: it only ever makes us wait
   * a little for a block, or ask it for one */
  replace_counted_map (self, &p->fetching, self->fetching, g_steal_pointer (&owned_fetching));
  p->fetching_time = now;
  switch (how)
    {
    case ALV_SWARM_AVAIL_MAP:
      if (owned_avail != NULL)
        {
          replace_counted_map (self, &p->avail, self->availability, g_steal_pointer (&owned_avail));
          break;
        }
      G_GNUC_FALLTHROUGH;
    case ALV_SWARM_AVAIL_NONE:
      replace_counted_map (self, &p->avail, self->availability, alv_block_map_new (self->n_blocks));
      break;
    case ALV_SWARM_AVAIL_ALL:
      {
        AlvBlockMap *all = alv_block_map_new (self->n_blocks);

        alv_block_map_set_all (all);
        replace_counted_map (self, &p->avail, self->availability, all);
      }
      break;
    case ALV_SWARM_AVAIL_KEEP:
    default:
      if (p->avail == NULL)
        replace_counted_map (self, &p->avail, self->availability, alv_block_map_new (self->n_blocks));
      break;
    }
  p->avail_time = now;
}

void
alv_swarm_plan_peer_not_sharing (AlvSwarmPlan *self,
                                 const char   *key,
                                 gint64        now)
{
  Peer *p = find_peer (self, key);

  if (p == NULL || p->banned)
    return;
  peer_set_avail (self, p, ALV_SWARM_AVAIL_NONE, NULL, NULL, now);
  /* from a peer the gateway vouched for (or one that served a verified
   * block) it means "no tree yet": an answer.  An unproven address may
   * be no peer at all, so it is a failure: an honest gossiped one has
   * the tree (the peer naming it had a verified block of it), and an
   * honest requester without one yet is taken again the next time it
   * asks, which it does while it lacks blocks (doc/swarm.md) */
  if (peer_trusted (p))
    p->failures = 0;
  else
    peer_fail (p, 0, now);
}

void
alv_swarm_plan_peer_info (AlvSwarmPlan  *self,
                          const char    *key,
                          AlvSwarmAvail  how,
                          AlvBlockMap   *avail,
                          AlvBlockMap   *fetching,
                          gint64         now)
{
  Peer *p = find_peer (self, key);

  if (p == NULL || p->banned)
    {
      g_clear_pointer (&avail, alv_block_map_free);
      g_clear_pointer (&fetching, alv_block_map_free);
      return;
    }
  peer_set_avail (self, p, how, avail, fetching, now);
  /* a poll answered: the failures in a row end here (a request's answer
   * counts once its body arrived, in request_ended) */
  if (p->polling)
    p->failures = 0;
}

void
alv_swarm_plan_poll_done (AlvSwarmPlan *self,
                          const char   *key)
{
  Peer *p = find_peer (self, key);

  if (p != NULL)
    p->polling = FALSE;
}

void
alv_swarm_plan_peer_failed (AlvSwarmPlan *self,
                            const char   *key,
                            gint64        extra_us,
                            gint64        now)
{
  Peer *p = find_peer (self, key);

  if (p != NULL)
    peer_fail (p, extra_us, now);
}

void
alv_swarm_plan_request_busy (AlvSwarmPlan *self,
                             guint         request,
                             gint64        now)
{
  Request *r = find_request (self, request);
  Peer *p = r != NULL ? r->peer : NULL;

  if (p == NULL)
    return;
  /* its slots are taken by others: longer each time in a row.  A
   * rarest-first request was refused at the slots, an urgent one only
   * once the uploads past them were full too: a peer that refuses bulk
   * still takes what someone is about to play. */
  if (r->bulk)
    {
      p->bulk_busy_until = now + (BUSY_BACKOFF_US << MIN (p->bulk_busy_count, 3u));
      p->bulk_busy_count++;
    }
  else
    {
      p->busy_until = now + (BUSY_BACKOFF_US << MIN (p->busy_count, 3u));
      p->busy_count++;
    }
}

void
alv_swarm_plan_request_progress (AlvSwarmPlan *self,
                                 guint         request,
                                 guint64       bytes,
                                 gint64        now)
{
  Request *r = find_request (self, request);

  if (r == NULL)
    return;
  r->bytes += bytes;
  r->last_progress = now;
}

void
alv_swarm_plan_request_truncate (AlvSwarmPlan *self,
                                 guint         request,
                                 guint         last)
{
  Request *r = find_request (self, request);

  if (r == NULL || last >= r->last || last < r->next)
    return;
  for (guint i = last + 1; i <= r->last; i++)
    {
      self->pending[i]--;
      update_taken (self, i);
    }
  r->last = last;
}

gboolean
alv_swarm_plan_request_block (AlvSwarmPlan *self,
                              guint         request,
                              guint        *index_out)
{
  Request *r = find_request (self, request);
  guint i;

  if (r == NULL || r->next > r->last)
    return FALSE;
  i = r->next++;
  self->pending[i]--;
  if (index_out != NULL)
    *index_out = i;
  if (held_or_writing (self, i))
    {
      /* a duplicate (endgame): held or being stored already */
      update_taken (self, i);
      return FALSE;
    }
  self->writing[i] = TRUE;
  update_taken (self, i);
  return TRUE;
}

static void
ban_peer (AlvSwarmPlan *self,
          Peer         *p)
{
  p->banned = TRUE;
  self->stats.peers_banned++;
  /* tell the gateway: a liar holding origin runs holds them back from
   * everyone until enough listeners have said so */
  if (self->banned_new->len < MAX_PEERS)
    g_ptr_array_add (self->banned_new, g_strdup (p->key));
  if (self->announcing)
    self->announce_now = TRUE;
  replace_counted_map (self, &p->avail, self->availability, NULL);
  replace_counted_map (self, &p->fetching, self->fetching, NULL);
  /* its other answers are not waited for */
  for (guint k = 0; k < self->requests->len; k++)
    {
      Request *r = self->requests->pdata[k];

      if (r->peer == p)
        cancel_request (self, r);
    }
}

void
alv_swarm_plan_block_stored (AlvSwarmPlan *self,
                             guint         index,
                             gboolean      ok,
                             gboolean      mismatch,
                             const char   *from)
{
  if (index >= self->n_blocks)
    return;
  self->writing[index] = FALSE;
  if (ok)
    {
      Peer *p = find_peer (self, from);

      alv_block_map_set (self->have, index);
      if (self->announcing && alv_block_map_is_complete (self->have))
        self->announce_now = TRUE;
      /* it served a verified block: proven, and worth naming to others */
      if (p != NULL && !p->verified)
        peer_trust (self, p, FALSE, TRUE);
    }
  else if (mismatch && from != NULL)
    {
      Peer *p = find_peer (self, from);

      if (p != NULL && !p->banned)
        ban_peer (self, p);
    }
  else if (mismatch)
    self->origin_broken = TRUE;
  update_taken (self, index);
}

void
alv_swarm_plan_set_held (AlvSwarmPlan *self,
                         guint         index)
{
  if (index >= self->n_blocks)
    return;
  alv_block_map_set (self->have, index);
  update_taken (self, index);
}

void
alv_swarm_plan_forget_block (AlvSwarmPlan *self,
                             guint         index)
{
  if (index >= self->n_blocks)
    return;
  alv_block_map_clear (self->have, index);
  update_taken (self, index);
}

void
alv_swarm_plan_origin_ignores_range (AlvSwarmPlan *self)
{
  self->origin_ignores_range = TRUE;
}

void
alv_swarm_plan_request_ended (AlvSwarmPlan *self,
                              guint         request,
                              AlvSwarmEnd   end,
                              gint64        extra_backoff_us,
                              gint64        now)
{
  Request *r = find_request (self, request);
  double secs;

  if (r == NULL)
    return;
  /* a cancel decided between two ticks is moot now */
  for (guint k = self->queued->len; k > 0; k--)
    if (g_array_index (self->queued, AlvSwarmAction, k - 1).kind == ALV_SWARM_ACTION_CANCEL &&
        g_array_index (self->queued, AlvSwarmAction, k - 1).request == request)
      g_array_remove_index (self->queued, k - 1);
  for (guint i = r->next; i <= r->last; i++)
    {
      self->pending[i]--;
      update_taken (self, i);
    }
  secs = MAX ((now - r->started) / (double) US, 0.001);
  if (r->bulk)
    {
      self->n_bulk--;
      r->peer->bulk_inflight--;
    }
  if (r->waiting)
    {
      self->n_waiting--;
      /* refused (the puller has enough waiting, or its pull failed): ask
       * it for no block it pulls for a while */
      if (end == ALV_SWARM_END_OK && r->bytes == 0)
        r->peer->wait_retry_at = now + WAIT_RETRY_US;
    }
  if (r->peer != NULL)
    {
      r->peer->inflight--;
      if (end == ALV_SWARM_END_FAILED)
        peer_fail (r->peer, extra_backoff_us, now);
      else if (end == ALV_SWARM_END_OK && r->bytes > 0)
        {
          double rate = r->bytes / secs;

          /* the time a request waited says nothing of the peer's rate */
          if (!r->waiting)
            r->peer->rate = r->peer->rate <= 0 ? rate : 0.7 * r->peer->rate + 0.3 * rate;
          r->peer->failures = 0;
          r->peer->busy_count = 0;
          r->peer->bulk_busy_count = 0;
        }
    }
  else
    {
      self->origin_inflight--;
      if (end == ALV_SWARM_END_FAILED)
        {
          gint64 backoff = (gint64) US << MIN (self->origin_failures, 5u);

          self->origin_failures++;
          self->origin_backoff_until = now + backoff + extra_backoff_us;
        }
      else if (end == ALV_SWARM_END_OK && r->bytes > 0)
        {
          self->origin_rate = self->origin_rate <= 0 ? r->bytes / secs
                                                     : 0.7 * self->origin_rate + 0.3 * r->bytes / secs;
          self->origin_failures = 0;
        }
    }
  g_ptr_array_remove_fast (self->requests, r);
}

static void
lease_add (AlvSwarmPlan *self,
           guint         first,
           guint         last,
           gint64        now)
{
  if (self->n_leases >= MAX_LEASES || first > last || last >= self->n_blocks)
    return;
  self->leases[self->n_leases].first = first;
  self->leases[self->n_leases].last = last;
  self->leases[self->n_leases].granted = now;
  self->leases[self->n_leases].rescue = self->asked_rescue;
  self->n_leases++;
  self->stats.leases++;
}

void
alv_swarm_plan_announce_done (AlvSwarmPlan *self,
                              gboolean      ok,
                              guint         interval,
                              gboolean      lease_known,
                              gboolean      has_lease,
                              guint         lease_first,
                              guint         lease_last,
                              gint64        now)
{
  guint next;

  self->announce_pending = FALSE;
  if (!ok)
    {
      /* the gateway is down: agree by rendezvous until it answers */
      self->gateway_down = TRUE;
      self->lease_known = FALSE;
      self->lease_retry_at = now + self->lease_retry_step;
      self->lease_retry_step = MIN (self->lease_retry_step * 2, LEASE_RETRY_MAX_US);
      self->announce_due = now + (gint64) MAX (self->announce_quick, ANNOUNCE_QUICK_MIN_S) * US;
      self->announce_quick = MIN (MAX (self->announce_quick * 2, ANNOUNCE_QUICK_MIN_S),
                                  ANNOUNCE_QUICK_MAX_S);
      return;
    }
  self->answered = TRUE;
  self->gateway_down = FALSE;
  self->lease_known = lease_known;
  if (has_lease)
    {
      lease_add (self, lease_first, lease_last, now);
      if (!self->asked_rescue)
        {
          self->lease_retry_step = LEASE_RETRY_MIN_US;
          self->lease_retry_at = now;
        }
    }
  else if (self->asked_lease && self->asked_rescue)
    {
      /* a rescue refused (one runs, or the item's share is spent): asked
       * again after RESCUE_RETRY_US; the asks for runs keep their own
       * pace (a rescue's refusal says nothing of them) */
    }
  else if (self->asked_lease && self->asked_due != ALV_SWARM_PLAN_NO_DEADLINE &&
           self->asked_due - now <= NEAR_US)
    {
      /* refused, for blocks due soon: the next run may be this
       * listener's (runs go round), so ask again soon */
      self->lease_retry_at = now + LEASE_RETRY_NEAR_US +
                             g_rand_int_range (self->rand, 0, (gint32) (LEASE_RETRY_NEAR_US / 2));
    }
  else if (self->asked_lease)
    {
      /* refused: those pulling were named; ask again later, less often
       * the longer it lasts, so a large swarm does not flood the gateway */
      self->lease_retry_at = now + self->lease_retry_step +
                             g_rand_int_range (self->rand, 0, (gint32) (self->lease_retry_step / 2 + 1));
      self->lease_retry_step = MIN (self->lease_retry_step * 2, LEASE_RETRY_MAX_US);
    }
  next = interval > 0 ? interval : ANNOUNCE_DEFAULT_S;
  /* few peers known and still downloading: ask again soon, backing off,
   * so listeners who started together find each other */
  if (!alv_block_map_is_complete (self->have) && n_usable_peers (self) < ANNOUNCE_FEW_PEERS)
    {
      self->announce_quick = MAX (self->announce_quick, ANNOUNCE_QUICK_MIN_S);
      next = MIN (next, self->announce_quick);
      self->announce_quick = MIN (self->announce_quick * 2, ANNOUNCE_QUICK_MAX_S);
    }
  self->announce_due = now + (gint64) next * US;
}

void
alv_swarm_plan_peer_pulling (AlvSwarmPlan *self,
                             const char   *key,
                             guint         first,
                             guint         last,
                             gint64        now)
{
  Peer *p;
  AlvBlockMap *map;

  if (g_strcmp0 (key, self->self_key) == 0 || first > last || first >= self->n_blocks)
    return;
  alv_swarm_plan_add_peer (self, key, ALV_SWARM_PEER_FROM_GATEWAY, NULL, now);
  p = find_peer (self, key);
  if (p == NULL || p->banned)
    return;
  map = p->fetching != NULL ? alv_block_map_copy (p->fetching) : alv_block_map_new (self->n_blocks);
  for (guint i = first; i <= MIN (last, self->n_blocks - 1); i++)
    if (p->avail == NULL || !alv_block_map_get (p->avail, i))
      alv_block_map_set (map, i);
  replace_counted_map (self, &p->fetching, self->fetching, map);
  p->fetching_time = now;
}

/* ------------------------------------------------------------------ */
/* the rules                                                           */

static Mode
mode (AlvSwarmPlan *self,
      gint64        now)
{
  gint64 since = self->active_since == G_MININT64 ? now : self->active_since;

  if (!self->announcing)
    return MODE_ALONE;
  if (self->lease_known && !self->gateway_down)
    return MODE_LEASES;
  if (!self->answered && !self->gateway_down)
    {
      /* a gateway that does not answer at all is as good as down */
      if (now - since < INFO_MAX_WAIT_US)
        {
          wake_at (self, since + INFO_MAX_WAIT_US);
          return MODE_WAITING;
        }
    }
  return MODE_OWNERS;
}

/* Whether "nobody holds it" can be believed: every known peer answered
 * its first poll, or it is too late to wait for that. */
static gboolean
peers_heard (AlvSwarmPlan *self,
             gint64        now)
{
  gint64 since = self->active_since == G_MININT64 ? now : self->active_since;

  if (now - since >= INFO_MAX_WAIT_US / 2)
    return TRUE;
  wake_at (self, since + INFO_MAX_WAIT_US / 2);
  if (!self->have_tree && self->peers->len > 0)
    return FALSE;
  for (guint k = 0; k < self->peers->len; k++)
    {
      Peer *p = self->peers->pdata[k];

      /* (an unproven gossiped address is not waited for) */
      if (!p->banned && p->avail == NULL && now >= p->backoff_until &&
          (p->from != ALV_SWARM_PEER_FROM_GOSSIP || peer_trusted (p)))
        return FALSE;
    }
  return TRUE;
}

/* This listener's place in the line of owners of @segment among the
 * peers it knows that the gateway vouched for or that served a verified
 * block (0: the owner). */
static guint
owner_rank (AlvSwarmPlan *self,
            guint         segment)
{
  const char *me = self->self_key != NULL ? self->self_key : "";
  guint rank = 0;

  if (!self->announcing)
    return 0;
  for (guint k = 0; k < self->peers->len; k++)
    {
      Peer *p = self->peers->pdata[k];

      /* an unproven address takes no segment, gossiped or a requester's
       * claim of its own ports: a liar could otherwise name (or claim)
       * owners enough to make everyone wait */
      if (p->banned || p->failures >= OWNER_MAX_FAILURES || !peer_trusted (p))
        continue;
      if (alv_rendezvous_before (self->urn, segment, p->key, me))
        rank++;
    }
  return rank;
}

static guint
segment_of (AlvSwarmPlan *self,
            guint         i)
{
  return i / MAX (SEGMENT_BYTES / self->block_size, 1u);
}

/* Nobody we know holds block @i nor pulls it from the origin. */
static gboolean
nobody_has (AlvSwarmPlan *self,
            guint         i)
{
  return self->availability[i] == 0 && self->fetching[i] == 0;
}

/* A run for the origin from @first: consecutive blocks we lack, nobody
 * asked for and nobody we know holds or pulls, up to @max_blocks and
 * (unless NO_DEADLINE) due before @latest. */
static guint
origin_run_end (AlvSwarmPlan *self,
                guint         first,
                guint         max_blocks,
                gint64        latest)
{
  guint last = first;

  if (self->origin_ignores_range)
    max_blocks = G_MAXUINT;
  while (last + 1 < self->n_blocks && last + 1 - first < max_blocks &&
         !alv_block_map_get (self->taken, last + 1) && nobody_has (self, last + 1) &&
         (latest == ALV_SWARM_PLAN_NO_DEADLINE ||
          alv_swarm_plan_get_deadline (self, last + 1) <= latest))
    last++;
  return last;
}

/* The peer expected to deliver block @i soonest; NULL if none, or if it
 * cannot by @deadline (unless that is NO_DEADLINE). */
static Peer *
best_peer_for (AlvSwarmPlan *self,
               guint         i,
               gint64        deadline,
               gint64        now,
               Peer         *except)
{
  Peer *best = NULL;
  gint64 best_eta = G_MAXINT64;

  /* nobody known holds it: no peer to look at */
  if (self->availability[i] == 0)
    return NULL;
  /* the peers usable now, once a tick (a plan may know 200) */
  if (self->usable_at != now)
    {
      self->usable_at = now;
      g_ptr_array_set_size (self->usable, 0);
      for (guint k = 0; k < self->peers->len; k++)
        {
          Peer *p = self->peers->pdata[k];

          if (peer_usable (self, p, now))
            g_ptr_array_add (self->usable, p);
          else if (!p->banned && self->have_tree && p->avail != NULL)
            wake_soft (self, MAX (p->backoff_until, p->busy_until));
        }
    }
  for (guint k = 0; k < self->usable->len; k++)
    {
      Peer *p = self->usable->pdata[k];
      double rate;
      gint64 eta;

      if (p == except || !alv_block_map_get (p->avail, i))
        continue;
      /* bulk requests do not keep a block that is due from a peer (its
       * upload is earliest deadline first) */
      if (p->inflight - p->bulk_inflight >= peer_depth (self, p))
        continue;
      rate = p->rate > 0 ? p->rate : PEER_ASSUMED_RATE;
      eta = now + (gint64) ((p->inflight - p->bulk_inflight + 1) * (double) self->block_size /
                            rate * US);
      if (eta < best_eta)
        {
          best = p;
          best_eta = eta;
        }
    }
  if (best != NULL && deadline != ALV_SWARM_PLAN_NO_DEADLINE && deadline > now && best_eta > deadline)
    return NULL;
  return best;
}

static gboolean
in_own_lease (AlvSwarmPlan *self,
              guint         i)
{
  for (guint k = 0; k < self->n_leases; k++)
    if (self->leases[k].first <= i && i <= self->leases[k].last)
      return TRUE;
  return FALSE;
}

/* Asks the gateway for an origin lease over @first..@last (or a rescue). */
static void
ask_lease (AlvSwarmPlan *self,
           guint         first,
           guint         last,
           gboolean      rescue,
           gint64        now)
{
  AlvSwarmAction a = { 0, };

  gint64 retry = rescue ? self->rescue_retry_at : self->lease_retry_at;

  if (self->announce_pending)
    return;
  if (now < retry)
    {
      wake_at (self, retry);
      return;
    }
  if (rescue)
    self->rescue_retry_at = now + RESCUE_RETRY_US;
  a.kind = ALV_SWARM_ACTION_ANNOUNCE;
  a.want_lease = TRUE;
  a.rescue = rescue;
  a.first = first;
  a.last = last;
  a.reason = rescue ? "rescue lease" : "lease";
  self->announce_pending = TRUE;
  self->asked_lease = TRUE;
  self->asked_rescue = rescue;
  self->asked_due = alv_swarm_plan_get_deadline (self, first);
  self->announce_now = FALSE;
  self->stats.announces++;
  emit (self, &a);
}

/* The last block due within the horizon (the whole item without
 * deadlines). */
static guint
horizon_end (AlvSwarmPlan *self,
             guint         from,
             gint64        now)
{
  guint last = from;

  while (last + 1 < self->n_blocks)
    {
      gint64 d = alv_swarm_plan_get_deadline (self, last + 1);

      if (d != ALV_SWARM_PLAN_NO_DEADLINE && d - now > HORIZON_US)
        break;
      last++;
    }
  return last;
}

/* A block nobody holds, in the urgent window, by the rule without
 * leases: its segment's owner pulls it at once, the others in the order
 * of their rank, one every RANK_STEP_US, the last at the deadline. */
static void
urgent_from_origin_by_rank (AlvSwarmPlan *self,
                            guint         i,
                            gint64        d,
                            gint64        now)
{
  guint rank = owner_rank (self, segment_of (self, i));
  gint64 my_call = MAX (self->urgent_window - (gint64) rank * RANK_STEP_US, 0);
  double orate = self->origin_rate > 0 ? self->origin_rate : ORIGIN_ASSUMED_RATE;
  gint64 fetch = (gint64) (block_len (self, i) / orate * US);

  if (self->fetching[i] > 0 && now - d < FETCH_GRACE_US)
    {
      wake_at (self, d + FETCH_GRACE_US);
      return;
    }
  if (!peers_heard (self, now))
    return;
  if (rank > 0 && d - now > my_call)
    {
      wake_at (self, d - my_call);
      return;
    }
  start_request (self, NULL, i,
                 origin_run_end (self, i, ORIGIN_MAX_RUN_BYTES / self->block_size,
                                 MAX (now, d) + HELD_GRACE_US + (rank == 0 ? fetch : 0)),
                 now, rank == 0 ? "urgent, owner" : "urgent, stand-in");
}

/* Urgent window: deadline first, to the fastest source that has it. */
static void
plan_urgent (AlvSwarmPlan *self,
             gint64        now)
{
  guint start = 0;
  guint scanned = 0;
  Mode m = mode (self, now);

  if (self->deadline_func == NULL)
    {
      if (self->playhead_rate == 0)
        return;
      start = (guint) MIN (self->playhead / self->block_size, (guint64) self->n_blocks);
    }
  for (guint i = start; i < self->n_blocks && scanned < URGENT_SCAN_MAX; i++)
    {
      gint64 d;
      Peer *peer;

      if (held_or_writing (self, i))
        continue;
      scanned++;
      d = alv_swarm_plan_get_deadline (self, i);
      if (d == ALV_SWARM_PLAN_NO_DEADLINE)
        continue;
      if (d - now > self->urgent_window)
        {
          wake_at (self, d - self->urgent_window);
          if (self->deadline_func == NULL)
            break;      /* monotone in i */
          continue;
        }
      if (self->requests->len >= MAX_REQUESTS)
        return;

      if (self->pending[i] > 0)
        {
          /* endgame: duplicate a block that is late to arrive */
          Request *r = request_for_block (self, i);
          gint64 expected;

          if (self->pending[i] >= 2 || r == NULL)
            continue;
          if (d - now > ENDGAME_MARGIN_US)
            {
              wake_at (self, d - ENDGAME_MARGIN_US);
              continue;
            }
          expected = request_eta (self, r, i);
          if (expected <= d && now - r->last_progress < US / 2)
            {
              wake_at (self, MIN (MAX (expected, d), r->last_progress + US / 2));
              continue;
            }
          peer = best_peer_for (self, i, ALV_SWARM_PLAN_NO_DEADLINE, now, r->peer);
          if (peer != NULL)
            start_request (self, peer, i, i, now, "endgame");
          else if (r->peer != NULL && m != MODE_LEASES && now - d >= HELD_GRACE_US &&
                   origin_usable (self, now))
            start_request (self, NULL, i, i, now, "endgame");
          else if (r->peer != NULL && m != MODE_LEASES)
            wake_at (self, d + HELD_GRACE_US);
          continue;
        }

      peer = best_peer_for (self, i, d, now, NULL);
      if (peer != NULL)
        {
          start_request (self, peer, i, i, now, "urgent");
          continue;
        }
      if (self->availability[i] > 0)
        {
          /* held, but nobody makes the deadline: where leases rule the
           * origin, a rescue lease asked RESCUE_LEAD_US before it is due
           * (the gateway grants few: doc/swarm.md), and a late peer once
           * it is due; the origin on our own never there (an origin
           * pulled by everyone whose peers are busy is slow for all of
           * them), elsewhere once it is HELD_GRACE_US late */
          Peer *any = best_peer_for (self, i, ALV_SWARM_PLAN_NO_DEADLINE, now, NULL);

          if (any != NULL && d <= now)
            start_request (self, any, i, i, now, "urgent, late");
          else if (m == MODE_LEASES)
            {
              if (d - now <= RESCUE_LEAD_US)
                {
                  ask_lease (self, i, MIN (i + 3, self->n_blocks - 1), TRUE, now);
                  if (d > now)
                    wake_at (self, d);  /* a late peer then */
                }
              else
                wake_at (self, d - RESCUE_LEAD_US);
            }
          else if (now - d >= HELD_GRACE_US && origin_usable (self, now))
            start_request (self, NULL, i,
                           origin_run_end (self, i, ORIGIN_MAX_RUN_BYTES / self->block_size,
                                           d + HELD_GRACE_US),
                           now, "peers too slow");
          else
            wake_at (self, MAX (d, MIN (d + HELD_GRACE_US, now + POLL_FAST_US)));
          continue;
        }
      /* nobody we know holds it */
      if (!self->has_origin || self->origin_broken)
        continue;
      switch (m)
        {
        case MODE_LEASES:
        case MODE_WAITING:
          if (in_own_lease (self, i))
            break;      /* plan_origin pulls it */
          if (now - d >= RESCUE_LATE_US)
            ask_lease (self, i, MIN (i + 3, self->n_blocks - 1), TRUE, now);
          else
            {
              /* due soon and nobody pulls it: a lease from here (the
               * gateway grants only what nobody pulled yet) */
              if (self->n_leases == 0 && self->fetching[i] == 0)
                ask_lease (self, i, horizon_end (self, i, now), FALSE, now);
              wake_at (self, d + RESCUE_LATE_US);
            }
          break;
        case MODE_ALONE:
        case MODE_OWNERS:
        default:
          if (origin_usable (self, now))
            urgent_from_origin_by_rank (self, i, d, now);
          break;
        }
    }
}

/* The last block of the lease to ask for from @first (due at @d): one
 * block while it is due within NEAR_US, so that each block every
 * listener is about to want starts from another listener, whose uplink
 * passes it on at once (doc/swarm.md); the horizon, in runs of the
 * gateway's length, when it is due so soon that the origin must not
 * idle between blocks, or further ahead, where long runs leave the
 * origin free for rescues between them and fewer blocks depend on one
 * listener staying. */
static guint
lease_last (AlvSwarmPlan *self,
            guint         first,
            gint64        d,
            gint64        now)
{
  if (d != ALV_SWARM_PLAN_NO_DEADLINE && d - now > LEASE_RUN_DUE_US && d - now <= NEAR_US)
    return first;
  return horizon_end (self, first, now);
}

/* The origin ahead of the window: by lease, by ownership, or alone. */
static void
plan_origin (AlvSwarmPlan *self,
             gint64        now)
{
  Mode m = mode (self, now);
  guint first = G_MAXUINT;
  gint64 d;
  gint64 since = self->active_since == G_MININT64 ? now : self->active_since;

  if (!self->has_origin || self->origin_broken)
    return;

  /* the leases held: pull their runs (what nobody else holds by now) */
  for (guint k = 0; k < self->n_leases; )
    {
      Lease *l = &self->leases[k];
      gboolean done = TRUE;

      /* done: every block held here (the gateway takes back what the
       * next announce does not report held) */
      for (guint i = l->first; i <= l->last && done; i++)
        if (!alv_block_map_get (self->have, i))
          done = FALSE;
      if (done || now - l->granted > LEASE_TTL_US || m != MODE_LEASES)
        {
          /* done (tell the gateway at once, so the next run is granted)
           * or lapsed */
          if (done && self->announcing)
            self->announce_now = TRUE;
          self->leases[k] = self->leases[--self->n_leases];
          continue;
        }
      wake_at (self, l->granted + LEASE_TTL_US);
      for (guint i = l->first; i <= l->last && origin_usable (self, now) &&
           self->requests->len < MAX_REQUESTS; i++)
        {
          guint last = i;

          if (alv_block_map_get (self->taken, i))
            continue;
          while (last + 1 <= l->last && !alv_block_map_get (self->taken, last + 1))
            last++;
          start_request (self, NULL, i, last, now, l->rescue ? "rescue lease" : "lease");
          i = last;
        }
      k++;
    }

  if (!self->active)
    return;
  /* the first block nobody holds or pulls, within the horizon */
  for (guint i = alv_block_map_first_missing_after (self->taken, MIN (self->needed_from, self->n_blocks));
       i < self->n_blocks; i = alv_block_map_first_missing_after (self->taken, i + 1))
    if (nobody_has (self, i))
      {
        first = i;
        break;
      }
  if (first == G_MAXUINT)
    return;
  d = alv_swarm_plan_get_deadline (self, first);
  if (d != ALV_SWARM_PLAN_NO_DEADLINE && d - now > HORIZON_US)
    {
      wake_at (self, d - HORIZON_US);
      return;
    }

  switch (m)
    {
    case MODE_LEASES:
    case MODE_WAITING:
      /* one lease at a time each: the next when this one's run is done
       * (the first announce asks at once: a gateway that knows no
       * leases ignores the question) */
      if (self->n_leases == 0)
        ask_lease (self, first, lease_last (self, first, d, now), FALSE, now);
      break;
    case MODE_OWNERS:
    case MODE_ALONE:
    default:
      {
        guint rank;
        gint64 my_call;

        if (self->announcing && (now - since < INFO_MAX_WAIT_US / 2 || !peers_heard (self, now)))
          {
            wake_at (self, since + INFO_MAX_WAIT_US / 2);
            return;
          }
        if (!origin_usable (self, now) || self->requests->len >= MAX_REQUESTS)
          return;
        rank = owner_rank (self, segment_of (self, first));
        /* the owner pulls at the horizon, stand-ins one step later each
         * (measured from the horizon, not the deadline) */
        my_call = HORIZON_US - (gint64) rank * RANK_STEP_US * 4;
        if (rank > 0 && d != ALV_SWARM_PLAN_NO_DEADLINE && d - now > my_call)
          {
            wake_at (self, d - my_call);
            return;
          }
        if (rank > 0 && d == ALV_SWARM_PLAN_NO_DEADLINE)
          return;
        {
          guint seg_end = (segment_of (self, first) + 1) * MAX (SEGMENT_BYTES / self->block_size, 1u) - 1;
          guint max_blocks = m == MODE_ALONE && n_usable_peers (self) == 0
                             ? ORIGIN_MAX_RUN_BYTES / self->block_size
                             : seg_end - first + 1;

          start_request (self, NULL, first,
                         origin_run_end (self, first, MAX (max_blocks, 1u), ALV_SWARM_PLAN_NO_DEADLINE),
                         now, rank == 0 ? "owner" : "stand-in");
        }
      }
      break;
    }
}

/* Beyond the window: rarest first among peers, within the horizon
 * first. */
static void
plan_rarest (AlvSwarmPlan *self,
             gint64        now)
{
  g_autoptr(GPtrArray) order = NULL;
  guint from = MIN (self->needed_from, self->n_blocks);
  guint horizon, near;
  gboolean leased = mode (self, now) == MODE_LEASES;

  if (!self->have_tree || from >= self->n_blocks || self->n_bulk >= max_bulk (self) ||
      self->requests->len >= MAX_REQUESTS)
    return;
  /* nothing any peer we know could give: no peer to walk */
  {
    guint i;

    for (i = alv_block_map_first_missing_after (self->taken, from); i < self->n_blocks;
         i = alv_block_map_first_missing_after (self->taken, i + 1))
      if (self->availability[i] > 0 || (leased && self->fetching[i] > 0))
        break;
    if (i >= self->n_blocks)
      return;
  }
  horizon = horizon_end (self, from, now) + 1;
  near = from;
  while (near < horizon && alv_swarm_plan_get_deadline (self, near) != ALV_SWARM_PLAN_NO_DEADLINE &&
         alv_swarm_plan_get_deadline (self, near) - now <= NEAR_US)
    near++;
  order = g_ptr_array_new ();
  for (guint k = 0; k < self->peers->len; k++)
    {
      Peer *p = self->peers->pdata[k];

      if (peer_usable_bulk (self, p, now))
        g_ptr_array_add (order, p);
      else if (!p->banned && p->avail != NULL)
        wake_soft (self, MAX (MAX (p->backoff_until, p->busy_until),
                              p->bulk_busy_until));   /* usable again then */
    }
  /* a random order spreads the load over the holders */
  for (guint k = order->len; k > 1; k--)
    {
      guint j = g_rand_int_range (self->rand, 0, (gint32) k);
      gpointer tmp = order->pdata[k - 1];

      order->pdata[k - 1] = order->pdata[j];
      order->pdata[j] = tmp;
    }
  /* fresh blocks first: a request waits at the puller of a block nobody
   * holds yet, so that the block has a second holder as soon as it
   * lands, long before anybody needs it (doc/swarm.md); only where the
   * origin is leased, pulled one run at a time at its full rate (owners
   * without leases pull at once and slowly: a request would wait long
   * for what another peer may hold by then) */
  for (guint k = 0; leased && k < order->len; k++)
    {
      Peer *p = order->pdata[k];
      guint idx;

      if (self->requests->len >= MAX_REQUESTS || self->n_bulk >= max_bulk (self))
        break;
      if (may_wait_at (self, p, now) &&
          alv_block_map_pick_rarest (self->taken, self->availability, p->fetching,
                                     from, horizon, self->rand, &idx) &&
          self->availability[idx] == 0)
        start_waiting_request (self, p, idx, now);
    }
  for (guint k = 0; k < order->len; k++)
    {
      Peer *p = order->pdata[k];

      while (p->inflight < peer_depth (self, p) && self->requests->len < MAX_REQUESTS &&
             self->n_bulk < max_bulk (self))
        {
          guint idx;
          /* half the bulk requests take the rarest, so fresh blocks leave
           * their first holders early; the other half what is due soon */
          gboolean rarest_first = self->n_bulk % 2 == 0;

          /* what is due soon first (earliest), then the rarest within the
           * horizon, then beyond it */
          if ((!rarest_first && alv_block_map_pick_rarest (self->taken, self->availability, p->avail,
                                                           from, near, NULL, &idx)) ||
              alv_block_map_pick_rarest (self->taken, self->availability, p->avail,
                                         near, horizon, self->rand, &idx) ||
              (horizon < self->n_blocks &&
               alv_block_map_pick_rarest (self->taken, self->availability, p->avail,
                                          horizon, self->n_blocks, self->rand, &idx)))
            {
              start_bulk_request (self, p, idx, now, "rarest");
              continue;
            }
          /* endgame of the bulk download: duplicate a block asked only
           * once whose source is more than a second behind its rate */
          if (max_bulk (self) == MAX_BULK_REQUESTS)
            break;      /* playing: the urgent window's endgame is enough */
          {
            gboolean found = FALSE;

            for (guint i = alv_block_map_first_missing_after (self->have, from);
                 i < self->n_blocks && !found; i = alv_block_map_first_missing_after (self->have, i + 1))
              {
                Request *r;

                if (self->writing[i] || self->pending[i] != 1 || !alv_block_map_get (p->avail, i))
                  continue;
                r = request_for_block (self, i);
                if (r != NULL && r->peer != p && now - r->started > US &&
                    now > request_eta (self, r, i) + US)
                  {
                    start_bulk_request (self, p, i, now, "bulk endgame");
                    found = TRUE;
                  }
              }
            if (!found)
              break;
          }
        }
    }
}

/* Whether @p pulls from the origin a block we lack. */
static gboolean
fetching_what_we_lack (AlvSwarmPlan *self,
                       Peer         *p)
{
  if (p->fetching == NULL)
    return FALSE;
  for (guint i = alv_block_map_first_set_after (p->fetching, MIN (self->needed_from, self->n_blocks));
       i < self->n_blocks; i = alv_block_map_first_set_after (p->fetching, i + 1))
    if (!alv_block_map_get (self->have, i))
      return TRUE;
  return FALSE;
}

/* How often to ask the peers what they hold: every second while a block
 * due soon (within the urgent window and 4 s more) is missing, every 4 s
 * while one within the horizon is, not at all otherwise.  What peers
 * hold changes every second in a live swarm, and a listener that knows
 * only the first holder of each block asks it alone. */
static gint64
poll_interval (AlvSwarmPlan *self,
               gint64        now)
{
  guint from = MIN (self->needed_from, self->n_blocks);
  guint i;
  gint64 d;

  if (from >= self->n_blocks)
    return 0;
  i = alv_block_map_first_missing_after (self->have, from);
  if (i >= self->n_blocks)
    return 0;
  d = alv_swarm_plan_get_deadline (self, i);
  if (d == ALV_SWARM_PLAN_NO_DEADLINE || d - now <= self->urgent_window + POLL_SOON_US)
    return POLL_INTERVAL_US;
  if (d - now <= HORIZON_US)
    return POLL_SLOW_US;
  wake_at (self, d - HORIZON_US);
  return 0;
}

static void
emit_poll (AlvSwarmPlan *self,
           Peer         *p)
{
  AlvSwarmAction a = { 0, };

  p->polling = TRUE;
  p->contacted = TRUE;
  self->stats.polls++;
  a.kind = ALV_SWARM_ACTION_POLL;
  a.peer = p->key;
  a.reason = "poll";
  emit (self, &a);
}

/* Availability polls: a HEAD to each peer not heard from yet (a gossiped
 * stranger only with a first contact to spare, taken as it is polled);
 * to the others at poll_interval(), four per quarter second, oldest
 * first, four times as often to one pulling from the origin what we
 * lack.  The new ones go first: a batch of the others used up must not
 * keep them waiting.  A peer we are downloading from answers with every
 * GET instead. */
static void
plan_polls (AlvSwarmPlan *self,
            gint64        now)
{
  gint64 interval;
  g_autoptr(GPtrArray) due = NULL;

  if (alv_swarm_plan_has_needed (self))
    return;
  interval = poll_interval (self, now);
  due = g_ptr_array_new ();
  for (guint k = 0; k < self->peers->len; k++)
    {
      Peer *p = self->peers->pdata[k];
      gint64 next;

      if (p->banned || p->polling)
        continue;
      if (now < p->backoff_until)
        {
          if (p->avail == NULL || interval > 0)
            wake_soft (self, p->backoff_until);
          continue;
        }
      if (p->avail == NULL)
        {
          /* a gossiped stranger: a few first contacts per window */
          if (!peer_needs_allowance (p) || take_first_contact (self, now))
            emit_poll (self, p);
          continue;
        }
      if (interval == 0 || p->inflight > 0 || alv_block_map_is_complete (p->avail))
        continue;
      next = p->avail_time + (fetching_what_we_lack (self, p) ? POLL_FAST_US : interval);
      if (next <= now)
        g_ptr_array_add (due, p);
      else
        wake_soft (self, next);
    }
  for (guint k = 0; k < due->len; k++)
    {
      guint oldest = k;
      Peer *p;

      /* a few per quarter second, however often the plan ticks */
      if (now - self->poll_window >= POLL_FAST_US)
        {
          self->poll_window = now;
          self->poll_window_sent = 0;
        }
      if (self->poll_window_sent >= POLL_BATCH)
        {
          wake_at (self, self->poll_window + POLL_FAST_US);
          break;
        }
      self->poll_window_sent++;
      for (guint j = k + 1; j < due->len; j++)
        if (((Peer *) due->pdata[j])->avail_time < ((Peer *) due->pdata[oldest])->avail_time)
          oldest = j;
      p = due->pdata[oldest];
      due->pdata[oldest] = due->pdata[k];
      due->pdata[k] = p;
      emit_poll (self, p);
    }
}

static void
plan_stalls (AlvSwarmPlan *self,
             gint64        now)
{
  for (guint k = 0; k < self->requests->len; k++)
    {
      Request *r = self->requests->pdata[k];
      gint64 limit = r->peer != NULL ? PEER_STALL_US : ORIGIN_STALL_US;

      if (r->cancelling)
        continue;
      /* a request waiting on its own write is not stalled */
      if (r->next <= r->last && self->writing[r->next])
        {
          wake_at (self, now + limit);
          continue;
        }
      if (now - r->last_progress <= limit)
        {
          wake_at (self, r->last_progress + limit + 1);
          continue;
        }
      cancel_request (self, r);
      if (r->peer != NULL)
        peer_fail (r->peer, 0, now);
      else
        self->origin_backoff_until = now + 2 * US;
    }
}

/* A peer request whose blocks all came from elsewhere (the loser of an
 * endgame, a block that waited at its puller and arrived from another
 * peer first) is cancelled: what is left of it would only take the
 * peer's uplink, which serves its requests earliest deadline first,
 * from those who lack the block. */
static void
plan_moot (AlvSwarmPlan *self)
{
  for (guint k = 0; k < self->requests->len; k++)
    {
      Request *r = self->requests->pdata[k];
      gboolean moot = r->peer != NULL && !r->cancelling && r->next <= r->last;

      for (guint i = r->next; moot && i <= r->last; i++)
        moot = alv_block_map_get (self->have, i);
      if (moot)
        cancel_request (self, r);
    }
}

static void
plan_announce (AlvSwarmPlan *self,
               gint64        now)
{
  AlvSwarmAction a = { 0, };

  if (!self->announcing || self->announce_pending)
    return;
  if (!self->announce_now && now < self->announce_due)
    {
      wake_at (self, self->announce_due);
      return;
    }
  a.kind = ALV_SWARM_ACTION_ANNOUNCE;
  a.reason = "announce";
  self->announce_now = FALSE;
  self->announce_pending = TRUE;
  self->asked_lease = FALSE;
  self->stats.announces++;
  emit (self, &a);
}

gint64
alv_swarm_plan_tick (AlvSwarmPlan *self,
                     gint64        now,
                     GArray       *actions)
{
  gboolean was_complete;

  g_return_val_if_fail (self != NULL && actions != NULL, ALV_SWARM_PLAN_NEVER);

  self->wake = ALV_SWARM_PLAN_NEVER;
  self->tick_now = now;
  self->usable_at = G_MININT64;
  self->out = actions;
  g_array_append_vals (actions, self->queued->data, self->queued->len);
  g_array_set_size (self->queued, 0);
  if (self->active && self->active_since == G_MININT64)
    self->active_since = now;

  was_complete = alv_block_map_is_complete (self->have);
  plan_forget (self, now);
  plan_moot (self);
  plan_stalls (self, now);
  if (!was_complete && self->active)
    {
      plan_urgent (self, now);
      plan_origin (self, now);
      plan_rarest (self, now);
    }
  else if (self->n_leases > 0)
    plan_origin (self, now);    /* lets a finished lease be reported */
  if (!was_complete)
    plan_polls (self, now);
  plan_announce (self, now);
  self->out = NULL;
  if (self->wake != ALV_SWARM_PLAN_NEVER && self->wake < now + MIN_WAKE_US)
    self->wake = now + MIN_WAKE_US;
  return self->wake;
}

/* ------------------------------------------------------------------ */
/* state                                                               */

guint
alv_swarm_plan_get_n_blocks (AlvSwarmPlan *self)
{
  return self->n_blocks;
}

gboolean
alv_swarm_plan_has_block (AlvSwarmPlan *self,
                          guint         index)
{
  return index < self->n_blocks && alv_block_map_get (self->have, index);
}

const AlvBlockMap *
alv_swarm_plan_get_have (AlvSwarmPlan *self)
{
  return self->have;
}

gboolean
alv_swarm_plan_is_complete (AlvSwarmPlan *self)
{
  return alv_block_map_is_complete (self->have);
}

gboolean
alv_swarm_plan_has_needed (AlvSwarmPlan *self)
{
  return alv_block_map_first_missing_after (self->have, MIN (self->needed_from, self->n_blocks)) >=
         self->n_blocks;
}

AlvBlockMap *
alv_swarm_plan_get_origin_pending (AlvSwarmPlan *self)
{
  AlvBlockMap *map = NULL;

  for (guint k = 0; k < self->requests->len; k++)
    {
      Request *r = self->requests->pdata[k];

      if (r->peer != NULL || r->cancelling)
        continue;
      for (guint i = r->next; i <= r->last; i++)
        {
          if (map == NULL)
            map = alv_block_map_new (self->n_blocks);
          alv_block_map_set (map, i);
        }
    }
  return map;
}

GPtrArray *
alv_swarm_plan_take_banned (AlvSwarmPlan *self)
{
  GPtrArray *out = g_steal_pointer (&self->banned_new);

  self->banned_new = g_ptr_array_new_with_free_func (g_free);
  return out;
}

guint
alv_swarm_plan_count_holders (AlvSwarmPlan *self,
                              guint         index)
{
  return index < self->n_blocks ? self->availability[index] : 0;
}

gboolean
alv_swarm_plan_is_banned (AlvSwarmPlan *self,
                          const char   *key)
{
  Peer *p = find_peer (self, key);

  return p != NULL && p->banned;
}

gboolean
alv_swarm_plan_has_peer (AlvSwarmPlan *self,
                         const char   *key)
{
  return find_peer (self, key) != NULL;
}

GPtrArray *
alv_swarm_plan_get_shareable (AlvSwarmPlan *self)
{
  GPtrArray *out = g_ptr_array_new_with_free_func (g_free);

  for (guint pass = 0; pass < 2; pass++)
    for (guint k = 0; k < self->peers->len; k++)
      {
        Peer *p = self->peers->pdata[k];

        if (p->banned || p->failures >= OWNER_MAX_FAILURES)
          continue;
        if (pass == 0 ? p->verified : p->vouched && !p->verified)
          g_ptr_array_add (out, g_strdup (p->key));
      }
  return out;
}

void
alv_swarm_plan_get_stats (AlvSwarmPlan      *self,
                          AlvSwarmPlanStats *stats)
{
  *stats = self->stats;
  stats->peers_known = n_usable_peers (self);
  stats->requests_in_flight = self->requests->len;
}
