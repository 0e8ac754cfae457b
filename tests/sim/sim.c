/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The swarm simulator's engine: a station item (or several back to back),
 * its origin, the OCN gateway and N listeners, each with the real planner
 * (AlvSwarmPlan) deciding what to fetch, on a virtual clock (µs) driven by
 * an event heap.  Deterministic for a given configuration: one seed feeds
 * every random choice, events at the same instant run in the order they
 * were scheduled, there are no threads, sockets nor wall-clock reads
 * (except to report the run's own wall time).
 *
 * The model, and where it is simpler than the world:
 *
 * - Network: flows at the level of rates (sim-net.c).  A flow's rate is
 *   min(its share of the source's uplink, its share of the destination's
 *   downlink), recomputed for the flows at both ends whenever a flow
 *   starts or ends there: an approximation of max-min fairness (unused
 *   share at one end is not handed to the others).  No TCP slow start, no
 *   loss except the origin's lost SYNs below, no header bytes; a block's
 *   bytes all arrive at the flow's rate from the moment its answer's
 *   headers are in.
 * - Latency: each listener sits at a one-way distance drawn uniformly in
 *   [lat-min, lat-max]; between two listeners it is the sum of theirs,
 *   to the origin and the gateway theirs + 10 ms.  Answers take one RTT
 *   (request there, headers back), plus one RTT to set up a connection
 *   that is not open.  A listener keeps a connection open for 5 s after
 *   its last use (keep-alive), to the origin and to each peer; it tracks
 *   the 16 most recently used hosts (more are treated as new connections).
 * - Origin: a range store behind an uplink of origin-rate × the bitrate.
 *   "fair": processor sharing.  "droptail": a FIFO home line; its flows
 *   share the uplink by weights ~ Exp(1) redrawn every 0.5 s (who gets
 *   the queue is luck), and a new connection loses each SYN with
 *   probability 1 - 1/n (n: flows running when that SYN is sent), each
 *   loss costing TCP's RTO (1 s, doubling on every further loss of the
 *   same connection).
 * - Peer servers as alv-peer-server.c has them: upload slots =
 *   clamp(uplink / ALV_PEER_SERVER_MIN_SLOT_RATE (16 KiB/s), 1, 4); a GET
 *   whose first block is not held gets 503 without Retry-After, one
 *   arriving with every slot busy 503 with it (peer_busy) unless it is
 *   due within 4 s (X-Due-In: the action's deadline less the time it is
 *   sent, never below 0, counted from the request's arrival as the peer
 *   server does, so late requests go in the order they came) or its block is
 *   held by at most one other peer the server knows (then it is admitted
 *   up to 4 uploads); otherwise the held prefix of the range.  A GET
 *   whose first block the peer pulls from the origin right now waits
 *   there (at most 2 per block, 8 in all, 3 s) and is answered as the
 *   block lands, past the slots (it was admitted when it came), or with
 *   503 once the pull ended without it or the 3 s are up.  The uplink
 *   goes to the uploads earliest due first (rare blocks first of all,
 *   bulk last, equal shares among equals: sim-net.c's EDF water-filling,
 *   the token bucket's chunks and burst left out).  Every answer, HEADs
 *   included, carries the
 *   peer's held map and origin-pending map as they are when the request
 *   reaches it.  A slot is taken when the request arrives and released
 *   when its last byte arrives (the one-way delay of the tail is ignored).
 *   The requester is added to the peer's plan (X-Listen-Port), unproven
 *   as in the daemon until it serves a verified block.  X-Alt gossip is
 *   left out (the daemon passes on only peers the gateway vouched for or
 *   that served a verified block, and those come from the gateway here
 *   anyway): peers are learnt only from the gateway's bounded lists and
 *   from requesters, so nobody knows the whole swarm.
 * - Store: verification is instant and exact: a block from a liar fails
 *   it (block_stored mismatch, the liar is banned).  The store records each
 *   held block's provenance and the player counts the corrupt bytes it
 *   plays, so the metric is measured, not assumed (no_verify stores what
 *   fails to show that it counts).
 * - Gateway: the real GatewayPeers (TTL 1800 s, gateway_max_peers per URN,
 *   64 per address) and GatewayLeases (origin_leases runs of lease_bytes,
 *   the gateway's defaults unless told) on the virtual clock;
 *   an announce is processed when it reaches the gateway (one-way) and
 *   answered one-way later, as the real gateway orders it: select (32
 *   peers, weighted by the asker's held map), announce, leases update,
 *   lease request, the leases running (8).
 * - Players: a listener tunes in at a uniform time in the join window, at
 *   the live position; with --head-bytes N, like the core playing Ogg or
 *   WebM (N = 8192), it needs the item's head first (it reads the offset
 *   of the position from it) and asks for it and the blocks at the
 *   position at once; an MP3 item's head comes with the gateway's resolve
 *   answer (the default, 0);
 *   playback starts when the head and 2 s of audio from the position are
 *   held (startup; --start-buffer), plays at the bitrate, stalls at a
 *   block not held and resumes when a second from there is held again,
 *   as bench-swarm.py's player does (set_playhead
 *   again: the deadlines shift).  At the
 *   end of an item's slot a listener still in it stops (the tail it did
 *   not play is "lost") and the next item starts from its beginning (a
 *   missing first block is a stall).  The next item's plan exists from
 *   the start of the current one, inactive with deadlines at its slot,
 *   and is made active when the current item is held from the playhead on
 *   or its slot is 30 s away (what the daemon does).
 * - Listeners behind NAT (unreachable): a fraction of listeners accepts
 *   no connection.  The gateway knows them as the real one does after
 *   its connect-back check: gateway_peers' source function lists them to
 *   nobody, and their origin leases are private (gateway-leases.h: the
 *   blocks stay to be granted to others, nobody is told); they do not name their
 *   port to the peers they ask (no X-Listen-Port), so nobody learns of
 *   them.  A request or poll sent to one all the same (none should be:
 *   counted) fails after the planner's stall time, as a connect into a
 *   NAT that drops the SYN would.
 * - Churn: a present listener leaves after an exponential time; its flows
 *   fail for their downloaders (request_ended FAILED), requests and polls
 *   that reach it while away are refused; it comes back 5-30 s later with
 *   its blocks (a new plan, set_held) and tunes in at the live position.
 */
#include "config.h"

#include "sim.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>

#include <gio/gio.h>

#include "alv-block-map.h"
#include "alv-hash-tree.h"
#include "alv-ocn-headers.h"
#include "alv-swarm-plan.h"
#include "gateway-leases.h"
#include "gateway-peers.h"
#include "sim-net.h"

#define US                      G_USEC_PER_SEC
#define MS                      (G_USEC_PER_SEC / 1000)
#define SERVER_DISTANCE_US      (10 * MS)      /* origin and gateway */
#define KEEPALIVE_US            (5 * US)
#define SYN_RTO_US              (1 * US)
#define SYN_MAX_TRIES           6
#define PROGRESS_US             (500 * MS)     /* progress at least this often */
#define REDRAW_US               (500 * MS)     /* droptail weights */
#define SLOT_RATE               (16 * 1024)    /* ALV_PEER_SERVER_MIN_SLOT_RATE */
#define MAX_SLOTS               4              /* ALV_PEER_SERVER_DEFAULT_MAX_UPLOADS */
#define URGENT_DUE_US           (4 * G_USEC_PER_SEC) /* admitted past the slots (URGENT_DUE_MS) */
#define WAITERS_PER_BLOCK       2              /* ALV_PEER_SERVER_WAITERS_PER_BLOCK */
#define WAITERS_MAX             8              /* ALV_PEER_SERVER_WAITERS_MAX */
#define WAIT_MAX_US             (3 * G_USEC_PER_SEC) /* ALV_PEER_SERVER_WAIT_MS */
#define PLAYER_START_S          2.0            /* audio held before playing (bench-swarm.py's START_AUDIO) */
#define HEAD_BYTES              0              /* MP3 with the gateway's X-Content-Head;
                                                * Ogg, WebM: 8192 (core-service.c: MIN_HEAD_SIZE) */
#define PLAYER_RESUME_S         1.0            /* and before resuming (its RESUME_AUDIO) */
#define RARE_HOLDERS            1
#define RARE_DUE_US             (3 * G_USEC_PER_SEC)     /* RARE_DUE_US of the peer server */
#define PEER_PORT               7000
#define NUMWANT                 32
#define MAX_PULLING             8              /* ALV_ORIGIN_PULLS_MAX */
#define ANNOUNCE_INTERVAL_S     900
#define GATEWAY_TTL_S           1800
#define GATEWAY_PER_ADDRESS     64
#define N_CONNS                 16
#define REJOIN_MIN_US           (5 * US)
#define REJOIN_MAX_US           (30 * US)
#define ACTIVATE_BEFORE_US      (30 * US)
#define MAX_TICKS_PER_INSTANT   1000
#define CONNECT_TIMEOUT_US      (4 * US)       /* the planner's PEER_STALL_US */

typedef enum
{
  EV_JOIN,
  EV_LEAVE,
  EV_WAKE,
  EV_REQ_SERVER,
  EV_REQ_HEADERS,
  EV_FLOW,
  EV_POLL_SERVER,
  EV_POLL_ANSWER,
  EV_ANN_GATEWAY,
  EV_ANN_ANSWER,
  EV_PLAY,
  EV_SLOT,
  EV_ACTIVATE,
  EV_REDRAW,
  EV_SYN,                       /* a SYN to the drop-tail origin is sent */
  EV_WAIT,                      /* a request waiting at a puller gives up */
} EventKind;

typedef struct
{
  gint64 time;
  guint64 seq;
  guint32 kind;
  guint32 a;
  guint32 b;
  guint32 gen;
} Event;

typedef enum
{
  RQ_FREE,
  RQ_CONNECTING,                /* on its way to the source */
  RQ_WAITING,                   /* at its source, for a block it pulls */
  RQ_ANSWERING,                 /* the answer's headers on their way back */
  RQ_FLOWING,
} ReqState;

typedef enum
{
  ANS_OK,
  ANS_BUSY,                     /* 503 with Retry-After */
  ANS_NOT_HELD,                 /* 503 without */
  ANS_NOT_FOUND,                /* 404: no swarm for the item */
  ANS_REFUSED,                  /* nobody listening: the listener left */
} Answer;

typedef struct
{
  guint32 gen;
  ReqState state;
  Answer answer;
  guint id;                     /* the plan's */
  guint owner, item;
  guint64 sid;
  gint source;                  /* listener, -1: the origin */
  guint first, last, next;
  guint flow;
  double accounted;             /* bytes counted so far */
  guint64 reported;             /* bytes reported as progress */
  gint64 last_report;
  AlvBlockMap *avail, *pending; /* the answer's maps */
  gboolean has_slot;
  gboolean conn_tracked;
  gint64 due;                   /* X-Due-In: ms-accurate µs until due as sent
                                 * (never below 0), a time once it arrived;
                                 * G_MAXINT64: none */
  guint syn_tries;              /* SYNs lost so far */
  const char *reason;
} Req;

typedef struct
{
  guint32 gen;
  gboolean used;
  guint owner, item;
  guint64 sid;
  guint target;
  Answer answer;
  AlvBlockMap *avail, *pending;
  gboolean conn_tracked;
} Poll;

typedef struct
{
  guint holder, first, last;
} Pull;

typedef struct
{
  guint32 gen;
  gboolean used;
  guint owner, item;
  guint64 sid;
  gboolean want_lease, rescue;
  guint first, last;
  guint n_peers;
  guint peers[NUMWANT];
  guint n_pulls;
  Pull pulls[MAX_PULLING];
  gboolean granted;
  guint lease_first, lease_last;
  guint n_bad;                  /* peers it banned since its last announce */
  guint bad[MAX_PULLING];
} Ann;

typedef struct
{
  GPtrArray *items;             /* of size bytes each */
  GArray *free;                 /* guint handles */
  gsize size;
} Pool;

#define CONN_NONE    G_MININT32
#define ORIGIN_PEER  (-1)

typedef struct
{
  gint32 peer;
  guint16 open, busy;
  gint64 idle_until;
} Conn;

typedef struct _Sim Sim;

typedef struct
{
  Sim *sim;
  AlvSwarmPlan *plan;
  guint64 sid;
  guint listener, item;
  gboolean active;
  gboolean announced;           /* the gateway has had "started" */
  gboolean dirty;
  gint64 wake_time;             /* what the plan asked for */
  gint64 wake_sched;            /* the EV_WAKE pending (G_MAXINT64: none) */
  gint64 slot_start;
  gint64 tick_instant;
  guint ticks_here;
  GArray *requests;             /* guint Req handles */
  /* tuning in: the head is awaited (start_deadline) */
  gboolean head_pending;
  double start_offset;
  gint64 start_due;
} Swarm;

typedef enum
{
  P_OFF,
  P_WAITING,                    /* tuned in, not started */
  P_PLAYING,
  P_STALLED,
  P_DONE,                       /* played the item to its end */
} PlayState;

typedef enum
{
  BLOCK_ABSENT = 0,
  BLOCK_GOOD,
  BLOCK_CORRUPT,                /* only with no_verify */
} BlockState;

typedef struct
{
  char *key;
  GInetAddress *addr;
  GInetSocketAddress *saddr;
  double up, down;              /* bytes/s */
  gint64 dist;                  /* one-way µs */
  guint slots;
  gboolean liar;
  gboolean unreachable;         /* accepts no connection (behind NAT) */
  gboolean present;
  GArray *uploads;              /* guint Req handles holding a slot */
  GArray *waits;                /* guint Req handles waiting for a block */
  Conn conns[N_CONNS];
  Swarm **swarms;               /* [n_items] */
  guint8 **store;               /* [n_items], BlockState per block */

  PlayState p_state;
  guint p_item;
  double p_pos;                 /* bytes into the item */
  gint64 p_time;                /* when p_pos was */
  guint32 p_gen;
  gint64 tune_in;
  gint64 stall_start;

  gint64 joined_at;
  guint32 presence_gen;
  double up_bytes, peer_bytes, origin_bytes;
  SimListenerResult r;
} Listener;

typedef struct
{
  guint listener, item;
  guint64 sid;
} DirtyRef;

/* An action with its peer resolved (the plan's strings die at the next
 * call into it). */
typedef struct
{
  AlvSwarmActionKind kind;
  guint request;
  gint peer;                    /* -1: origin; -2: not a listener */
  guint first, last;
  gboolean want_lease, rescue;
  gint64 deadline;
  const char *reason;
} Todo;

struct _Sim
{
  const SimConfig *cfg;
  SimResult *res;
  gint64 now;
  gint64 end_time;
  guint64 seq;
  Event *heap;
  gsize heap_len, heap_alloc;
  GRand *rand;                  /* topology, joins */
  GRand *churn_rand;
  GRand *net_rand;              /* droptail */
  SimNet *net;
  guint origin_node;
  Listener *ls;
  guint n;
  GHashTable *key_index;        /* key → index + 1 */
  GatewayPeers *gw_peers;
  GatewayLeases *gw_leases;
  char **urns;
  guint64 length;
  guint n_blocks;
  guint block_size;
  double byte_rate;
  gint64 item_us;
  Pool reqs;
  Pool polls;
  Pool anns;
  GArray *dirty;
  GArray *dirty_work;
  GArray *actions;
  GArray *todo;
  guint64 next_sid;
  GArray *startups;             /* double s */
  gboolean redraw_scheduled;
  double origin_bytes;
  gboolean failed;
  char *fail_message;
};

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static guint32
mix32 (guint32 a,
       guint32 b)
{
  guint64 z = ((guint64) a << 32 | b) + G_GUINT64_CONSTANT (0x9e3779b97f4a7c15);

  z = (z ^ (z >> 30)) * G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * G_GUINT64_CONSTANT (0x94d049bb133111eb);
  return (guint32) (z ^ (z >> 31));
}

static double
rand_exp (GRand  *rand,
          double  mean)
{
  return -log (1.0 - g_rand_double (rand)) * mean;
}

static void
sim_fail (Sim        *sim,
          const char *format,
          ...) G_GNUC_PRINTF (2, 3);

static void
sim_fail (Sim        *sim,
          const char *format,
          ...)
{
  va_list args;

  if (sim->failed)
    return;
  va_start (args, format);
  sim->fail_message = g_strdup_vprintf (format, args);
  va_end (args);
  sim->failed = TRUE;
}

static void
trace (Sim        *sim,
       gint        listener,
       const char *format,
       ...) G_GNUC_PRINTF (3, 4);

static void
trace (Sim        *sim,
       gint        listener,
       const char *format,
       ...)
{
  va_list args;
  g_autofree char *msg = NULL;

  if (!sim->cfg->trace)
    return;
  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  if (listener >= 0)
    g_print ("%11.6f L%-4d %s\n", sim->now / (double) US, listener, msg);
  else
    g_print ("%11.6f       %s\n", sim->now / (double) US, msg);
}

static const char *
peer_name (Sim  *sim,
           gint  peer)
{
  if (peer == ORIGIN_PEER)
    return "origin";
  if (peer < 0 || (guint) peer >= sim->n)
    return "?";
  return sim->ls[peer].key;
}

static gint64
pair_one_way (Sim   *sim,
              guint  a,
              gint   b)
{
  if (b < 0)
    return sim->ls[a].dist + SERVER_DISTANCE_US;
  return sim->ls[a].dist + sim->ls[b].dist;
}

static gint
key_to_index (Sim        *sim,
              const char *key)
{
  gpointer v;

  if (key == NULL)
    return ORIGIN_PEER;
  v = g_hash_table_lookup (sim->key_index, key);
  return v != NULL ? (gint) GPOINTER_TO_UINT (v) - 1 : -2;
}

static guint64
block_start (Sim   *sim,
             guint  i)
{
  return (guint64) i * sim->block_size;
}

static guint64
block_end (Sim   *sim,
           guint  i)
{
  return MIN (block_start (sim, i) + sim->block_size, sim->length);
}

static gint64
slot_start (Sim   *sim,
            guint  item)
{
  return (gint64) item * sim->item_us;
}

/* ------------------------------------------------------------------ */
/* the event heap                                                      */

static gboolean
event_before (const Event *x,
              const Event *y)
{
  return x->time < y->time || (x->time == y->time && x->seq < y->seq);
}

static void
push_event (Sim       *sim,
            gint64     when,
            EventKind  kind,
            guint32    a,
            guint32    b,
            guint32    gen)
{
  Event ev;
  gsize i;

  when = MAX (when, sim->now);
  if (when > sim->end_time)
    return;     /* after the last slot nothing is measured */
  if (sim->heap_len == sim->heap_alloc)
    {
      sim->heap_alloc = MAX (sim->heap_alloc * 2, 1024);
      sim->heap = g_renew (Event, sim->heap, sim->heap_alloc);
    }
  ev.time = when;
  ev.seq = sim->seq++;
  ev.kind = kind;
  ev.a = a;
  ev.b = b;
  ev.gen = gen;
  i = sim->heap_len++;
  while (i > 0)
    {
      gsize parent = (i - 1) / 2;

      if (!event_before (&ev, &sim->heap[parent]))
        break;
      sim->heap[i] = sim->heap[parent];
      i = parent;
    }
  sim->heap[i] = ev;
}

static Event
pop_event (Sim *sim)
{
  Event top = sim->heap[0];
  Event last = sim->heap[--sim->heap_len];
  gsize i = 0;

  for (;;)
    {
      gsize l = 2 * i + 1, r = l + 1, m = i;
      const Event *best = &last;

      if (l < sim->heap_len && event_before (&sim->heap[l], best))
        {
          m = l;
          best = &sim->heap[l];
        }
      if (r < sim->heap_len && event_before (&sim->heap[r], best))
        m = r;
      if (m == i)
        break;
      sim->heap[i] = sim->heap[m];
      i = m;
    }
  if (sim->heap_len > 0)
    sim->heap[i] = last;
  return top;
}

/* ------------------------------------------------------------------ */
/* pools                                                               */

/* Slots of one kind (requests, polls, announces), reused by handle so a
 * run allocates only as many as are ever in flight at once.  Every kind
 * begins with a guint32 generation, bumped on each take and give, so an
 * event for a slot that was given back and taken again is told apart. */
static void
pool_init (Pool  *pool,
           gsize  size)
{
  pool->items = g_ptr_array_new_with_free_func (g_free);
  pool->free = g_array_new (FALSE, FALSE, sizeof (guint));
  pool->size = size;
}

static void
pool_clear (Pool *pool)
{
  g_clear_pointer (&pool->items, g_ptr_array_unref);
  g_clear_pointer (&pool->free, g_array_unref);
}

static gpointer
pool_at (Pool  *pool,
         guint  h)
{
  return pool->items->pdata[h];
}

/* A zeroed slot, but for its generation. */
static guint
pool_take (Pool *pool)
{
  guint h;
  guint32 gen;
  gpointer item;

  if (pool->free->len > 0)
    {
      h = g_array_index (pool->free, guint, pool->free->len - 1);
      g_array_set_size (pool->free, pool->free->len - 1);
    }
  else
    {
      h = pool->items->len;
      g_ptr_array_add (pool->items, g_malloc0 (pool->size));
    }
  item = pool_at (pool, h);
  gen = *(guint32 *) item + 1;
  memset (item, 0, pool->size);
  *(guint32 *) item = gen;
  return h;
}

static void
pool_give (Pool  *pool,
           guint  h)
{
  (*(guint32 *) pool_at (pool, h))++;
  g_array_append_val (pool->free, h);
}

static Req *
req_at (Sim   *sim,
        guint  h)
{
  return pool_at (&sim->reqs, h);
}

static guint
req_new (Sim *sim)
{
  return pool_take (&sim->reqs);
}

static void
req_release (Sim   *sim,
             guint  h)
{
  Req *r = req_at (sim, h);

  g_clear_pointer (&r->avail, alv_block_map_free);
  g_clear_pointer (&r->pending, alv_block_map_free);
  r->state = RQ_FREE;
  pool_give (&sim->reqs, h);
}

static Poll *
poll_at (Sim   *sim,
         guint  h)
{
  return pool_at (&sim->polls, h);
}

static guint
poll_new (Sim *sim)
{
  guint h = pool_take (&sim->polls);

  poll_at (sim, h)->used = TRUE;
  return h;
}

static void
poll_release (Sim   *sim,
              guint  h)
{
  Poll *p = poll_at (sim, h);

  g_clear_pointer (&p->avail, alv_block_map_free);
  g_clear_pointer (&p->pending, alv_block_map_free);
  p->used = FALSE;
  pool_give (&sim->polls, h);
}

static Ann *
ann_at (Sim   *sim,
        guint  h)
{
  return pool_at (&sim->anns, h);
}

static guint
ann_new (Sim *sim)
{
  guint h = pool_take (&sim->anns);

  ann_at (sim, h)->used = TRUE;
  return h;
}

static void
ann_release (Sim   *sim,
             guint  h)
{
  ann_at (sim, h)->used = FALSE;
  pool_give (&sim->anns, h);
}

/* ------------------------------------------------------------------ */
/* keep-alive connections                                              */

/* Takes a connection of @l to @peer; returns whether an open one was
 * free (no setup needed). */
static gboolean
conn_acquire (Sim      *sim,
              Listener *l,
              gint32    peer,
              gboolean *tracked)
{
  Conn *c = NULL, *victim = NULL;

  for (guint k = 0; k < N_CONNS; k++)
    if (l->conns[k].peer == peer)
      {
        c = &l->conns[k];
        break;
      }
  if (c == NULL)
    {
      for (guint k = 0; k < N_CONNS; k++)
        {
          Conn *e = &l->conns[k];

          if (e->busy > 0)
            continue;
          if (victim == NULL || e->peer == CONN_NONE ||
              (victim->peer != CONN_NONE && e->idle_until < victim->idle_until))
            victim = e;
          if (e->peer == CONN_NONE)
            break;
        }
      if (victim == NULL)
        {
          *tracked = FALSE;
          return FALSE;
        }
      c = victim;
      c->peer = peer;
      c->open = c->busy = 0;
      c->idle_until = 0;
    }
  if (c->busy == 0 && sim->now > c->idle_until)
    c->open = 0;        /* closed by the keep-alive timeout */
  *tracked = TRUE;
  c->busy++;
  if (c->open >= c->busy)
    return TRUE;
  c->open++;
  return FALSE;
}

static void
conn_release (Sim      *sim,
              Listener *l,
              gint32    peer,
              gboolean  tracked,
              gboolean  keep)
{
  if (!tracked)
    return;
  for (guint k = 0; k < N_CONNS; k++)
    {
      Conn *c = &l->conns[k];

      if (c->peer != peer || c->busy == 0)
        continue;
      c->busy--;
      if (!keep && c->open > 0)
        c->open--;
      c->idle_until = sim->now + KEEPALIVE_US;
      return;
    }
}

/* ------------------------------------------------------------------ */
/* swarms                                                              */

static Swarm *
swarm_get (Sim     *sim,
           guint    listener,
           guint    item,
           guint64  sid)
{
  Swarm *sw;

  if (listener >= sim->n || item >= sim->cfg->n_items)
    return NULL;
  sw = sim->ls[listener].swarms[item];
  if (sw == NULL || (sid != 0 && sw->sid != sid))
    return NULL;
  return sw;
}

static void
mark_dirty (Sim   *sim,
            Swarm *sw)
{
  DirtyRef d;

  if (sw == NULL || sw->dirty)
    return;
  sw->dirty = TRUE;
  d.listener = sw->listener;
  d.item = sw->item;
  d.sid = sw->sid;
  g_array_append_val (sim->dirty, d);
}

static void
swarm_remove_request (Swarm *sw,
                      guint  h)
{
  for (guint k = 0; k < sw->requests->len; k++)
    if (g_array_index (sw->requests, guint, k) == h)
      {
        g_array_remove_index_fast (sw->requests, k);
        return;
      }
}

static void
listener_remove_upload (Listener *l,
                        guint     h)
{
  for (guint k = 0; k < l->uploads->len; k++)
    if (g_array_index (l->uploads, guint, k) == h)
      {
        g_array_remove_index_fast (l->uploads, k);
        return;
      }
}

/* Blocks of the next item are due as its slot plays them. */
static gint64
next_item_deadline (guint    i,
                    gpointer user_data)
{
  Swarm *sw = user_data;
  Sim *sim = sw->sim;

  return sw->slot_start + (gint64) ((double) block_start (sim, i) * US / sim->byte_rate);
}

static guint8 *
store_get (Sim   *sim,
           guint  listener,
           guint  item)
{
  Listener *l = &sim->ls[listener];

  if (l->store[item] == NULL)
    l->store[item] = g_new0 (guint8, sim->n_blocks);
  return l->store[item];
}

/* ------------------------------------------------------------------ */
/* the network's bookkeeping                                           */

static void
schedule_flow (Sim *sim,
               Req *r,
               guint h);

static void
flow_rate_cb (guint    flow,
              guint    tag,
              gpointer user_data)
{
  Sim *sim = user_data;
  Req *r = req_at (sim, tag);

  g_assert (r->state == RQ_FLOWING);
  if (r->flow == 0)
    r->flow = flow;     /* called for the new flow before its start returns */
  g_assert (r->flow == flow);
  schedule_flow (sim, r, tag);
}

/* Counts what @r carried up to now (bytes as a double: fractions of a
 * byte are carried over to the next count). */
static void
account (Sim    *sim,
         Req    *r,
         double  bytes)
{
  double delta = bytes - r->accounted;
  Listener *dst = &sim->ls[r->owner];

  if (delta <= 0)
    return;
  r->accounted = bytes;
  if (r->source == ORIGIN_PEER)
    {
      sim->origin_bytes += delta;
      dst->origin_bytes += delta;
    }
  else
    {
      sim->ls[r->source].up_bytes += delta;
      dst->peer_bytes += delta;
    }
}

/* The offset, from the request's first byte, where block @i ends. */
static double
req_block_end (Sim   *sim,
               Req   *r,
               guint  i)
{
  return (double) (block_end (sim, i) - block_start (sim, r->first));
}

/* @seconds from now in µs, rounded up; a flow the water-filling left a
 * rate of 1e-12 B/s must not overflow the clock into the past */
static gint64
delay_us (double seconds)
{
  double us = ceil (seconds * US);

  return us < (double) (G_MAXINT64 / 4) ? (gint64) us : G_MAXINT64 / 4;
}

static void
schedule_flow (Sim   *sim,
               Req   *r,
               guint  h)
{
  double bytes = sim_net_flow_bytes (sim->net, r->flow, sim->now);
  double rate = sim_net_flow_rate (sim->net, r->flow);
  double remaining = req_block_end (sim, r, r->next) - bytes;
  gint64 when, next_byte;

  r->gen++;
  if (rate <= 0)
    return;     /* nothing moves until a rate changes */
  when = sim->now + delay_us (MAX (remaining, 0) / rate);
  /* progress at least every PROGRESS_US, as bytes trickle in: a slow
   * flow must not look stalled to the plan; but never before its next
   * whole byte (progress is counted in bytes) */
  next_byte = sim->now + delay_us ((floor (bytes) + 1 - bytes) / rate);
  when = MIN (when, MAX (r->last_report + PROGRESS_US, MAX (next_byte, sim->now + 1)));
  push_event (sim, when, EV_FLOW, h, 0, r->gen);
}

static void
release_slot (Sim *sim,
              Req *r,
              guint h)
{
  if (!r->has_slot)
    return;
  r->has_slot = FALSE;
  listener_remove_upload (&sim->ls[r->source], h);
}

/* Stops @r's flow (if any), counting its bytes. */
static void
stop_flow (Sim *sim,
           Req *r)
{
  if (r->flow == 0)
    return;
  account (sim, r, sim_net_flow_stop (sim->net, r->flow, sim->now));
  r->flow = 0;
}

/* ------------------------------------------------------------------ */
/* the player                                                          */

static void
player_schedule (Sim      *sim,
                 guint     li)
{
  Listener *l = &sim->ls[li];
  guint j = (guint) (l->p_pos / sim->block_size);
  double end = (double) block_end (sim, j);

  l->p_gen++;
  push_event (sim, sim->now + (gint64) ceil ((end - l->p_pos) / sim->byte_rate * US),
              EV_PLAY, li, l->p_item, l->p_gen);
}

/* Playback enters the block at p_pos: counts it if it is corrupt. */
static void
player_enter_block (Sim   *sim,
                    guint  li)
{
  Listener *l = &sim->ls[li];
  guint j = (guint) (l->p_pos / sim->block_size);
  guint8 *store = l->store[l->p_item];

  if (store != NULL && store[j] == BLOCK_CORRUPT)
    l->r.corrupt_bytes_played += (guint64) ((double) block_end (sim, j) - l->p_pos);
}

static gboolean
player_has (Sim   *sim,
            guint  li)
{
  Listener *l = &sim->ls[li];
  guint j = (guint) (l->p_pos / sim->block_size);
  guint8 *store = l->store[l->p_item];

  return store != NULL && j < sim->n_blocks && store[j] != BLOCK_ABSENT;
}

/* Whether the first head_bytes of the item are held. */
static gboolean
head_held (Sim          *sim,
           const guint8 *store)
{
  for (guint j = 0; j < sim->n_blocks && (guint64) j * sim->block_size < sim->cfg->head_bytes; j++)
    if (store == NULL || store[j] == BLOCK_ABSENT)
      return FALSE;
  return TRUE;
}

/* Deadlines while a listener tuning in waits for the head, as the core's
 * feeder_start_deadline() gives them: the head at once, the blocks
 * around the position from then on (the position is a guess until the
 * head tells the offset, exact here), nothing else. */
static gint64
start_deadline (guint    i,
                gpointer user_data)
{
  Swarm *sw = user_data;
  Sim *sim = sw->sim;
  double off = block_start (sim, i);

  if (off < sim->cfg->head_bytes)
    return sw->start_due;
  if (sw->start_offset > 0 && off + sim->block_size > sw->start_offset
      && off < sw->start_offset + 2.0 * sim->block_size)
    return sw->start_due + (gint64) (MAX (off - sw->start_offset, 0) * US / sim->byte_rate);
  return ALV_SWARM_PLAN_NO_DEADLINE;
}

/* The head of @sw's item is held now: the offset is known, deadlines
 * follow the position from now (feeder_start_body()). */
static void
swarm_head_arrived (Sim   *sim,
                    Swarm *sw)
{
  sw->head_pending = FALSE;
  alv_swarm_plan_set_deadline_func (sw->plan, NULL, NULL);
  alv_swarm_plan_set_playhead (sw->plan, (guint64) sw->start_offset, (guint64) sim->byte_rate,
                               sim->now);
  trace (sim, (gint) sw->listener, "i%u head held", sw->item);
  mark_dirty (sim, sw);
}

/* Whether enough audio from the position is held (or the item's end): a
 * player starts with start_buffer seconds (2 by default) and resumes
 * after a stall with a second, as the benchmark's readers do. */
static gboolean
player_buffered (Sim   *sim,
                 guint  li)
{
  Listener *l = &sim->ls[li];
  guint8 *store = l->store[l->p_item];
  double held = l->p_state == P_WAITING ? sim->cfg->start_buffer : PLAYER_RESUME_S;
  double want = MIN (l->p_pos + held * sim->byte_rate, (double) sim->length);
  guint j = (guint) (l->p_pos / sim->block_size);

  if (store == NULL)
    return FALSE;
  for (; j < sim->n_blocks && (double) j * sim->block_size < want; j++)
    if (store[j] == BLOCK_ABSENT)
      return FALSE;
  /* a listener tuning in starts once the head told it the offset */
  if (l->p_state == P_WAITING && !head_held (sim, store))
    return FALSE;
  return TRUE;
}

static void
player_set_playhead (Sim   *sim,
                     guint  li)
{
  Listener *l = &sim->ls[li];
  Swarm *sw = swarm_get (sim, li, l->p_item, 0);

  if (sw == NULL)
    return;
  alv_swarm_plan_set_playhead (sw->plan, (guint64) l->p_pos, (guint64) sim->byte_rate, sim->now);
  mark_dirty (sim, sw);
}

/* A block arrived, or playback was asked to start: start or resume if
 * the block at the position is held. */
static void
player_check (Sim   *sim,
              guint  li)
{
  Listener *l = &sim->ls[li];

  if (l->p_state != P_WAITING && l->p_state != P_STALLED)
    return;
  if (!player_buffered (sim, li))
    return;
  if (l->p_state == P_WAITING)
    {
      double s = (sim->now - l->tune_in) / (double) US;

      g_array_append_val (sim->startups, s);
      if (l->r.first_startup < 0)
        l->r.first_startup = s;
      trace (sim, (gint) li, "play: starts at %.0f after %.3f s", l->p_pos, s);
    }
  else
    {
      l->r.stall_seconds += (sim->now - l->stall_start) / (double) US;
      trace (sim, (gint) li, "play: resumes at %.0f after %.3f s",
             l->p_pos, (sim->now - l->stall_start) / (double) US);
    }
  l->p_state = P_PLAYING;
  l->p_time = sim->now;
  /* the deadlines follow the playback that actually happens */
  player_set_playhead (sim, li);
  player_enter_block (sim, li);
  player_schedule (sim, li);
}

static void
player_tune_in (Sim    *sim,
                guint   li,
                guint   item,
                double  offset)
{
  Listener *l = &sim->ls[li];

  l->p_item = item;
  l->p_pos = MIN (offset, (double) sim->length - 1);
  l->p_state = P_WAITING;
  l->p_time = sim->now;
  l->tune_in = sim->now;
  l->p_gen++;
  player_check (sim, li);
}

/* The item's slot is over (or the listener leaves): account for where
 * the player is.  @lose: the unplayed tail counts as lost. */
static void
player_stop (Sim      *sim,
             guint     li,
             gboolean  lose)
{
  Listener *l = &sim->ls[li];

  switch (l->p_state)
    {
    case P_PLAYING:
      {
        double pos = MIN (l->p_pos + (sim->now - l->p_time) / (double) US * sim->byte_rate,
                          (double) sim->length);

        l->r.played_seconds += (pos - l->p_pos) / sim->byte_rate;
        l->p_pos = pos;
      }
      break;
    case P_STALLED:
      l->r.stall_seconds += (sim->now - l->stall_start) / (double) US;
      break;
    case P_WAITING:
      {
        /* never started: its wait counts in the startup figures */
        double s = (sim->now - l->tune_in) / (double) US;

        g_array_append_val (sim->startups, s);
        sim->res->never_started++;
      }
      break;
    case P_OFF:
    case P_DONE:
    default:
      l->p_state = P_OFF;
      l->p_gen++;
      return;
    }
  if (lose && l->p_pos < sim->length)
    {
      l->r.lost_seconds += ((double) sim->length - l->p_pos) / sim->byte_rate;
      trace (sim, (gint) li, "play: item %u stopped at %.0f, %.3f s lost", l->p_item,
             l->p_pos, ((double) sim->length - l->p_pos) / sim->byte_rate);
    }
  l->p_state = P_OFF;
  l->p_gen++;
}

static void
on_play (Sim         *sim,
         const Event *ev)
{
  Listener *l = &sim->ls[ev->a];
  guint j;
  double end;

  if (ev->gen != l->p_gen || l->p_state != P_PLAYING)
    return;
  j = (guint) (l->p_pos / sim->block_size);
  end = (double) block_end (sim, j);
  l->r.played_seconds += (end - l->p_pos) / sim->byte_rate;
  l->p_pos = end;
  l->p_time = sim->now;
  if (end >= (double) sim->length)
    {
      l->p_state = P_DONE;
      trace (sim, (gint) ev->a, "play: item %u done", l->p_item);
      return;
    }
  if (player_has (sim, ev->a))
    {
      player_enter_block (sim, ev->a);
      player_schedule (sim, ev->a);
      return;
    }
  l->p_state = P_STALLED;
  l->stall_start = sim->now;
  l->r.stalls++;
  trace (sim, (gint) ev->a, "play: stall at block %u", j + 1);
}

/* ------------------------------------------------------------------ */
/* the gateway                                                         */

static gint64
gateway_clock (gpointer user_data)
{
  Sim *sim = user_data;

  return sim->now;
}

/* The gateway's rule after its connect-back checks: a listener nobody
 * can connect to is listed to nobody. */
static gboolean
gateway_may_list (const char *key,
                  gpointer    user_data)
{
  Sim *sim = user_data;
  gint li = key_to_index (sim, key);

  return li < 0 || !sim->ls[li].unreachable;
}

static void
gateway_stopped (Sim   *sim,
                 guint  li,
                 guint  item)
{
  Listener *l = &sim->ls[li];

  gateway_peers_announce (sim->gw_peers, sim->urns[item], sim->n_blocks, l->addr, PEER_PORT,
                          GATEWAY_PEER_EVENT_STOPPED, NULL);
  gateway_leases_update (sim->gw_leases, sim->urns[item], l->key, NULL, TRUE, sim->now);
}

/* ------------------------------------------------------------------ */
/* ending requests                                                     */

static void
serve_waiters (Sim   *sim,
               guint  li,
               guint  item);

/* @r no longer waits at its source (if it did). */
static void
unwait (Sim   *sim,
        Req   *r,
        guint  h)
{
  GArray *waits;

  if (r->state != RQ_WAITING)
    return;
  waits = sim->ls[r->source].waits;
  for (guint k = 0; k < waits->len; k++)
    if (g_array_index (waits, guint, k) == h)
      {
        g_array_remove_index (waits, k);
        break;
      }
  r->state = RQ_ANSWERING;
}

/* Reports the end of @h to its plan (once) and frees it. */
static void
req_end (Sim         *sim,
         guint        h,
         AlvSwarmEnd  end,
         gboolean     keep_conn)
{
  Req *r = req_at (sim, h);
  Swarm *sw = swarm_get (sim, r->owner, r->item, r->sid);
  static const char *names[] = { "ok", "failed", "cancelled" };
  guint owner, item;
  gboolean from_origin;

  unwait (sim, r, h);
  stop_flow (sim, r);
  release_slot (sim, r, h);
  conn_release (sim, &sim->ls[r->owner], r->source, r->conn_tracked, keep_conn);
  if (end == ALV_SWARM_END_FAILED)
    sim->res->requests_failed++;
  else if (end == ALV_SWARM_END_CANCELLED)
    sim->res->requests_cancelled++;
  if (sw != NULL)
    {
      trace (sim, (gint) r->owner, "i%u #%u ended %s (%s, %u-%u, next %u)", r->item, r->id,
             names[end], peer_name (sim, r->source), r->first, r->last, r->next);
      swarm_remove_request (sw, h);
      alv_swarm_plan_request_ended (sw->plan, r->id, end, 0, sim->now);
      mark_dirty (sim, sw);
    }
  owner = r->owner;
  item = r->item;
  from_origin = r->source == ORIGIN_PEER;
  req_release (sim, h);
  /* the pull ended: what it did not bring, its waiters wait for no
   * more */
  if (from_origin && sim->ls[owner].waits->len > 0)
    serve_waiters (sim, owner, item);
}

/* Drops @h without telling anybody (its plan is going away). */
static void
req_drop (Sim   *sim,
          guint  h)
{
  Req *r = req_at (sim, h);

  unwait (sim, r, h);
  stop_flow (sim, r);
  release_slot (sim, r, h);
  conn_release (sim, &sim->ls[r->owner], r->source, r->conn_tracked, FALSE);
  req_release (sim, h);
}

/* ------------------------------------------------------------------ */
/* creating and ending plans                                           */

static Swarm *
swarm_create (Sim      *sim,
              guint     li,
              guint     item,
              gboolean  active,
              double    offset)
{
  Listener *l = &sim->ls[li];
  Swarm *sw = g_new0 (Swarm, 1);
  guint8 *store = l->store[item];

  g_assert (l->swarms[item] == NULL);
  sw->sim = sim;
  sw->sid = ++sim->next_sid;
  sw->listener = li;
  sw->item = item;
  sw->active = active;
  sw->wake_time = ALV_SWARM_PLAN_NEVER;
  sw->wake_sched = G_MAXINT64;
  sw->slot_start = slot_start (sim, item);
  sw->tick_instant = -1;
  sw->requests = g_array_new (FALSE, FALSE, sizeof (guint));
  sw->plan = alv_swarm_plan_new (sim->length, sim->block_size, TRUE,
                                 mix32 (sim->cfg->seed, mix32 (li, (guint32) sw->sid)));
  alv_swarm_plan_set_urn (sw->plan, sim->urns[item]);
  alv_swarm_plan_set_self_key (sw->plan, l->key);
  alv_swarm_plan_set_announcing (sw->plan, TRUE);
  /* the tree comes with the resolve answer, instantly here */
  alv_swarm_plan_set_tree (sw->plan, TRUE);
  for (guint i = 0; store != NULL && i < sim->n_blocks; i++)
    if (store[i] != BLOCK_ABSENT)
      alv_swarm_plan_set_held (sw->plan, i);
  if (active)
    {
      sw->start_offset = offset;
      sw->start_due = sim->now;
      if (!head_held (sim, store))
        {
          /* the head first, with what the player buffers (start_deadline) */
          sw->head_pending = TRUE;
          alv_swarm_plan_set_deadline_func (sw->plan, start_deadline, sw);
        }
      else
        alv_swarm_plan_set_playhead (sw->plan, (guint64) offset, (guint64) sim->byte_rate, sim->now);
      alv_swarm_plan_set_needed_from (sw->plan, (guint64) offset);
      alv_swarm_plan_set_active (sw->plan, TRUE, sim->now);
    }
  else
    {
      alv_swarm_plan_set_deadline_func (sw->plan, next_item_deadline, sw);
      alv_swarm_plan_set_needed_from (sw->plan, 0);
      alv_swarm_plan_set_active (sw->plan, FALSE, sim->now);
    }
  l->swarms[item] = sw;
  trace (sim, (gint) li, "i%u plan created (%s, offset %.0f)", item,
         active ? "active" : "next, inactive", offset);
  mark_dirty (sim, sw);
  return sw;
}

static void
swarm_activate (Sim   *sim,
                Swarm *sw)
{
  if (sw == NULL || sw->active)
    return;
  sw->active = TRUE;
  alv_swarm_plan_set_active (sw->plan, TRUE, sim->now);
  trace (sim, (gint) sw->listener, "i%u plan active", sw->item);
  mark_dirty (sim, sw);
}

/* The plan goes away: its requests are dropped, the gateway hears
 * "stopped", its statistics are kept. */
static void
swarm_destroy (Sim   *sim,
               Swarm *sw)
{
  Listener *l = &sim->ls[sw->listener];
  AlvSwarmPlanStats stats;

  alv_swarm_plan_get_stats (sw->plan, &stats);
  if (stats.requests_in_flight != sw->requests->len)
    {
      sim->res->anomalies++;
      trace (sim, (gint) sw->listener, "ANOMALY i%u: the plan has %u requests in flight, the sim %u",
             sw->item, stats.requests_in_flight, sw->requests->len);
    }
  l->r.origin_requests += stats.origin_requests;
  l->r.polls += stats.polls;
  l->r.announces += stats.announces;
  l->r.leases += stats.leases;
  l->r.peers_banned += stats.peers_banned;

  while (sw->requests->len > 0)
    {
      guint h = g_array_index (sw->requests, guint, sw->requests->len - 1);

      g_array_set_size (sw->requests, sw->requests->len - 1);
      req_drop (sim, h);
    }
  gateway_stopped (sim, sw->listener, sw->item);
  l->swarms[sw->item] = NULL;
  trace (sim, (gint) sw->listener, "i%u plan ended", sw->item);
  alv_swarm_plan_free (sw->plan);
  g_array_unref (sw->requests);
  g_free (sw);
}

/* ------------------------------------------------------------------ */
/* executing actions                                                   */

static void
exec_request (Sim         *sim,
              Swarm       *sw,
              const Todo  *t)
{
  Listener *l = &sim->ls[sw->listener];
  guint h;
  Req *r;
  gboolean reused;
  gint64 setup = 0;

  if (t->first > t->last || t->last >= sim->n_blocks || t->peer == -2 ||
      t->peer == (gint) sw->listener)
    {
      /* not something a caller could send: fail it, and say so */
      sim->res->anomalies++;
      trace (sim, (gint) sw->listener, "ANOMALY i%u #%u: request %u-%u of %s", sw->item,
             t->request, t->first, t->last, peer_name (sim, t->peer));
      alv_swarm_plan_request_ended (sw->plan, t->request, ALV_SWARM_END_FAILED, 0, sim->now);
      return;
    }
  h = req_new (sim);
  r = req_at (sim, h);
  r->state = RQ_CONNECTING;
  r->id = t->request;
  r->owner = sw->listener;
  r->item = sw->item;
  r->sid = sw->sid;
  r->source = t->peer;
  r->first = r->next = t->first;
  r->last = t->last;
  r->reason = t->reason;
  /* as the daemon sends it: how long until due, never negative */
  r->due = t->deadline == ALV_SWARM_PLAN_NO_DEADLINE ? ALV_SWARM_PLAN_NO_DEADLINE
           : MAX (t->deadline - sim->now, 0) / MS * MS;
  r->last_report = sim->now;
  g_array_append_val (sw->requests, h);
  if (t->peer == ORIGIN_PEER)
    sim->res->requests_origin++;
  else
    sim->res->requests_peer++;

  reused = conn_acquire (sim, l, t->peer, &r->conn_tracked);
  if (t->peer >= 0 && sim->ls[t->peer].unreachable)
    {
      /* the SYN is dropped at its router: the connect times out */
      sim->res->requests_unreachable++;
      trace (sim, (gint) sw->listener, "i%u #%u REQUEST %s %u-%u: unreachable", sw->item,
             r->id, peer_name (sim, t->peer), t->first, t->last);
      r->state = RQ_ANSWERING;
      r->answer = ANS_REFUSED;
      push_event (sim, sim->now + CONNECT_TIMEOUT_US, EV_REQ_HEADERS, h, 0, r->gen);
      return;
    }
  if (!reused)
    {
      setup = 2 * pair_one_way (sim, sw->listener, t->peer);
      if (t->peer == ORIGIN_PEER && sim->cfg->origin_model == SIM_ORIGIN_DROPTAIL)
        {
          trace (sim, (gint) sw->listener, "i%u #%u REQUEST %s %u-%u (%s) new connection",
                 sw->item, r->id, peer_name (sim, t->peer), t->first, t->last,
                 t->reason ? t->reason : "");
          /* each SYN takes its chance with the FIFO as it is then */
          push_event (sim, sim->now, EV_SYN, h, 0, r->gen);
          return;
        }
    }
  trace (sim, (gint) sw->listener, "i%u #%u REQUEST %s %u-%u (%s)%s", sw->item, r->id,
         peer_name (sim, t->peer), t->first, t->last, t->reason ? t->reason : "",
         reused ? "" : " new connection");
  push_event (sim, sim->now + setup + pair_one_way (sim, sw->listener, t->peer),
              EV_REQ_SERVER, h, 0, r->gen);
}

/* A SYN to the drop-tail origin: a full FIFO drops it with a probability
 * growing with the flows it carries (1 - 1/n), and TCP sends it again
 * after its RTO, 1 s doubled each time. */
static void
on_syn (Sim         *sim,
        const Event *ev)
{
  Req *r = req_at (sim, ev->a);
  guint n;
  double p_loss;

  if (r->gen != ev->gen || r->state != RQ_CONNECTING)
    return;
  n = sim_net_node_n_up (sim->net, sim->origin_node);
  p_loss = n <= 1 ? 0 : 1.0 - 1.0 / n;
  if (r->syn_tries < SYN_MAX_TRIES && g_rand_double (sim->net_rand) < p_loss)
    {
      gint64 rto = SYN_RTO_US << r->syn_tries;

      r->syn_tries++;
      sim->res->syn_losses++;
      trace (sim, (gint) r->owner, "i%u #%u SYN lost (%u origin flows), again in %.0f s",
             r->item, r->id, n, rto / (double) US);
      push_event (sim, sim->now + rto, EV_SYN, ev->a, 0, r->gen);
      return;
    }
  /* the handshake, then the request */
  push_event (sim, sim->now + 3 * pair_one_way (sim, r->owner, ORIGIN_PEER),
              EV_REQ_SERVER, ev->a, 0, r->gen);
}

static void
exec_cancel (Sim        *sim,
             Swarm      *sw,
             const Todo *t)
{
  for (guint k = 0; k < sw->requests->len; k++)
    {
      guint h = g_array_index (sw->requests, guint, k);

      if (req_at (sim, h)->id == t->request)
        {
          trace (sim, (gint) sw->listener, "i%u #%u CANCEL (%s)", sw->item, t->request,
                 t->reason ? t->reason : "");
          /* libsoup drops the connection of a cancelled message */
          req_end (sim, h, ALV_SWARM_END_CANCELLED, FALSE);
          return;
        }
    }
  /* ended already (its last block came in before the cancel was
   * executed): the plan has had its ending */
  trace (sim, (gint) sw->listener, "i%u #%u CANCEL of a request ended already", sw->item,
         t->request);
}

static void
exec_poll (Sim        *sim,
           Swarm      *sw,
           const Todo *t)
{
  Listener *l = &sim->ls[sw->listener];
  guint h;
  Poll *p;
  gint64 setup = 0;

  if (t->peer < 0 || t->peer == (gint) sw->listener)
    {
      sim->res->anomalies++;
      trace (sim, (gint) sw->listener, "ANOMALY i%u: poll of %s", sw->item,
             peer_name (sim, t->peer));
      return;   /* the plan's poll_done needs a key it knows: nothing to end */
    }
  h = poll_new (sim);
  p = poll_at (sim, h);
  p->owner = sw->listener;
  p->item = sw->item;
  p->sid = sw->sid;
  p->target = (guint) t->peer;
  sim->res->polls++;
  if (!conn_acquire (sim, l, t->peer, &p->conn_tracked))
    setup = 2 * pair_one_way (sim, sw->listener, t->peer);
  if (sim->ls[t->peer].unreachable)
    {
      sim->res->requests_unreachable++;
      trace (sim, (gint) sw->listener, "i%u POLL %s: unreachable", sw->item,
             peer_name (sim, t->peer));
      p->answer = ANS_REFUSED;
      push_event (sim, sim->now + CONNECT_TIMEOUT_US, EV_POLL_ANSWER, h, 0, p->gen);
      return;
    }
  trace (sim, (gint) sw->listener, "i%u POLL %s", sw->item, peer_name (sim, t->peer));
  push_event (sim, sim->now + setup + pair_one_way (sim, sw->listener, t->peer),
              EV_POLL_SERVER, h, 0, p->gen);
}

static void
exec_announce (Sim        *sim,
               Swarm      *sw,
               const Todo *t)
{
  guint h = ann_new (sim);
  Ann *a = ann_at (sim, h);

  a->owner = sw->listener;
  a->item = sw->item;
  a->sid = sw->sid;
  a->want_lease = t->want_lease;
  a->rescue = t->rescue;
  a->first = t->first;
  a->last = t->last;
  {
    /* the peers it banned go with it (the daemon's "bad" parameter) */
    g_autoptr(GPtrArray) banned = alv_swarm_plan_take_banned (sw->plan);

    for (guint k = 0; k < banned->len && a->n_bad < MAX_PULLING; k++)
      {
        gint who = key_to_index (sim, banned->pdata[k]);

        if (who >= 0)
          a->bad[a->n_bad++] = (guint) who;
      }
  }
  sim->res->announces++;
  if (t->want_lease)
    trace (sim, (gint) sw->listener, "i%u ANNOUNCE, %slease %u-%u", sw->item,
           t->rescue ? "rescue " : "", t->first, t->last);
  else
    trace (sim, (gint) sw->listener, "i%u ANNOUNCE", sw->item);
  push_event (sim, sim->now + pair_one_way (sim, sw->listener, ORIGIN_PEER),
              EV_ANN_GATEWAY, h, 0, a->gen);
}

static void
swarm_schedule_wake (Sim    *sim,
                     Swarm  *sw,
                     gint64  next)
{
  sw->wake_time = next;
  if (next == ALV_SWARM_PLAN_NEVER)
    return;
  next = MAX (next, sim->now + 1);
  /* one pending wake-up per plan: an earlier one re-arms for later */
  if (next < sw->wake_sched)
    {
      sw->wake_sched = next;
      push_event (sim, next, EV_WAKE, sw->listener, sw->item, (guint32) sw->sid);
    }
}

static void
swarm_tick (Sim   *sim,
            Swarm *sw)
{
  Listener *l = &sim->ls[sw->listener];
  guint64 sid = sw->sid;
  guint li = sw->listener, item = sw->item;
  gint64 next;

  if (sw->tick_instant != sim->now)
    {
      sw->tick_instant = sim->now;
      sw->ticks_here = 0;
    }
  if (++sw->ticks_here > MAX_TICKS_PER_INSTANT)
    {
      sim_fail (sim, "listener %u, item %u: ticked %u times at t=%.6f s without time "
                "passing (a livelock between the plan and its events)",
                li, item, MAX_TICKS_PER_INSTANT, sim->now / (double) US);
      return;
    }

  g_array_set_size (sim->actions, 0);
  {
    gint64 t0 = g_get_monotonic_time ();

    next = alv_swarm_plan_tick (sw->plan, sim->now, sim->actions);
    sim->res->tick_seconds += (g_get_monotonic_time () - t0) / (double) US;
  }
  sim->res->ticks++;
  sim->res->actions += sim->actions->len;
  g_array_set_size (sim->todo, 0);
  for (guint k = 0; k < sim->actions->len; k++)
    {
      const AlvSwarmAction *a = &g_array_index (sim->actions, AlvSwarmAction, k);
      Todo t;

      t.kind = a->kind;
      t.request = a->request;
      t.peer = key_to_index (sim, a->peer);
      t.first = a->first;
      t.last = a->last;
      t.want_lease = a->want_lease;
      t.rescue = a->rescue;
      t.reason = a->reason;
      t.deadline = a->deadline;
      g_array_append_val (sim->todo, t);
    }
  for (guint k = 0; k < sim->todo->len; k++)
    {
      const Todo *t = &g_array_index (sim->todo, Todo, k);

      /* an action may end the plan's requests, never the plan */
      g_assert (swarm_get (sim, li, item, sid) == sw);
      switch (t->kind)
        {
        case ALV_SWARM_ACTION_REQUEST:
          exec_request (sim, sw, t);
          break;
        case ALV_SWARM_ACTION_CANCEL:
          exec_cancel (sim, sw, t);
          break;
        case ALV_SWARM_ACTION_POLL:
          exec_poll (sim, sw, t);
          break;
        case ALV_SWARM_ACTION_ANNOUNCE:
          exec_announce (sim, sw, t);
          break;
        default:
          sim->res->anomalies++;
          break;
        }
    }
  swarm_schedule_wake (sim, sw, next);

  /* the daemon's rule for the next item: active once this one is held
   * from the playhead on */
  if (l->p_item == item && item + 1 < sim->cfg->n_items && l->swarms[item + 1] != NULL &&
      !l->swarms[item + 1]->active && alv_swarm_plan_has_needed (sw->plan))
    swarm_activate (sim, l->swarms[item + 1]);
}

static void
flush_dirty (Sim *sim)
{
  while (sim->dirty->len > 0 && !sim->failed)
    {
      GArray *work = sim->dirty;

      sim->dirty = sim->dirty_work;
      sim->dirty_work = work;
      for (guint k = 0; k < work->len && !sim->failed; k++)
        {
          DirtyRef *d = &g_array_index (work, DirtyRef, k);
          Swarm *sw = swarm_get (sim, d->listener, d->item, d->sid);

          if (sw == NULL || !sw->dirty)
            continue;
          sw->dirty = FALSE;
          swarm_tick (sim, sw);
        }
      g_array_set_size (work, 0);
    }
}

/* ------------------------------------------------------------------ */
/* requests on their way                                               */

/* Requests waiting at listener @src for block @i of @item. */
static guint
waiters_for (Sim   *sim,
             guint  src,
             guint  item,
             guint  i)
{
  GArray *waits = sim->ls[src].waits;
  guint n = 0;

  for (guint k = 0; k < waits->len; k++)
    {
      Req *w = req_at (sim, g_array_index (waits, guint, k));

      if (w->item == item && w->first == i)
        n++;
    }
  return n;
}

/* The source of @h decides its answer: now, as the request arrives
 * (@arriving), or as a request waiting for a block it pulls hears that
 * the pull moved on.  Returns FALSE while it waits. */
static gboolean
server_answer (Sim      *sim,
               guint     h,
               gboolean  arriving)
{
  Req *r = req_at (sim, h);
  Listener *src;
  Swarm *peer_sw;
  const AlvBlockMap *have;

  /* the peer server makes X-Due-In a time as the request arrives: a late
   * block is due as it arrives, so late requests go in the order they
   * came */
  if (arriving && r->due != ALV_SWARM_PLAN_NO_DEADLINE)
    r->due += sim->now;
  if (r->source == ORIGIN_PEER)
    {
      r->answer = ANS_OK;
      return TRUE;
    }
  if (!(src = &sim->ls[r->source])->present)
    {
      unwait (sim, r, h);
      r->answer = ANS_REFUSED;
      return TRUE;
    }
  if ((peer_sw = src->swarms[r->item]) == NULL)
    {
      unwait (sim, r, h);
      r->answer = ANS_NOT_FOUND;
      return TRUE;
    }
  if (arriving)
    {
      /* X-Listen-Port: the peer learns its requester (one the gateway
       * found unreachable does not name its port) */
      if (!sim->ls[r->owner].unreachable
          && alv_swarm_plan_add_peer (peer_sw->plan, sim->ls[r->owner].key,
                                   ALV_SWARM_PEER_FROM_REQUESTER, NULL, sim->now))
        mark_dirty (sim, peer_sw);
    }
  have = alv_swarm_plan_get_have (peer_sw->plan);
  g_clear_pointer (&r->avail, alv_block_map_free);
  g_clear_pointer (&r->pending, alv_block_map_free);
  r->avail = alv_block_map_copy (have);
  r->pending = alv_swarm_plan_get_origin_pending (peer_sw->plan);
  if (!alv_block_map_get (have, r->first))
    {
      gboolean pulling = r->pending != NULL && alv_block_map_get (r->pending, r->first);

      if (r->state == RQ_WAITING && pulling)
        return FALSE;
      if (arriving && pulling && r->source >= 0 &&
          waiters_for (sim, (guint) r->source, r->item, r->first) < WAITERS_PER_BLOCK &&
          src->waits->len < WAITERS_MAX)
        {
          r->state = RQ_WAITING;
          sim->res->requests_waited++;
          g_array_append_val (src->waits, h);
          r->gen++;
          push_event (sim, sim->now + WAIT_MAX_US, EV_WAIT, h, 0, r->gen);
          trace (sim, (gint) r->owner, "i%u #%u waits at %s for block %u", r->item, r->id,
                 src->key, r->first);
          return FALSE;
        }
      unwait (sim, r, h);
      r->answer = ANS_NOT_HELD;
      return TRUE;
    }
  /* a block few others hold is uploaded first (the peer server's
   * rarity rule) */
  if (alv_swarm_plan_count_holders (peer_sw->plan, r->first) <= RARE_HOLDERS)
    r->due = MIN (r->due, sim->now + RARE_DUE_US);
  /* one that waited was admitted when it came */
  if (r->state != RQ_WAITING &&
      (src->uploads->len >= MAX_SLOTS ||
       (src->uploads->len >= src->slots &&
        (r->due == ALV_SWARM_PLAN_NO_DEADLINE || r->due - sim->now > URGENT_DUE_US))))
    {
      r->answer = ANS_BUSY;
      return TRUE;
    }
  unwait (sim, r, h);
  {
    guint last = r->first;

    /* PFSP: the held prefix of the range */
    while (last < r->last && alv_block_map_get (have, last + 1))
      last++;
    r->answer = ANS_OK;
    r->last = last;       /* told to the plan with the headers */
    r->has_slot = TRUE;
    g_array_append_val (src->uploads, h);
  }
  return TRUE;
}

/* The source of @h answers it, unless it waits: the headers go back. */
static void
server_reply (Sim      *sim,
              guint     h,
              gboolean  arriving)
{
  Req *r = req_at (sim, h);

  if (!server_answer (sim, h, arriving))
    return;
  r->gen++;
  push_event (sim, sim->now + pair_one_way (sim, r->owner, r->source),
              EV_REQ_HEADERS, h, 0, r->gen);
}

/* The request reaches its source, which decides its answer now. */
static void
on_req_server (Sim         *sim,
               const Event *ev)
{
  Req *r = req_at (sim, ev->a);

  if (r->gen != ev->gen || r->state != RQ_CONNECTING)
    return;
  r->state = RQ_ANSWERING;
  server_reply (sim, ev->a, TRUE);
}

/* A waiting request's source answers it now, if it can (@timeout: it
 * waited long enough). */
static void
wait_resolve (Sim      *sim,
              guint     h,
              gboolean  timeout)
{
  if (timeout)
    unwait (sim, req_at (sim, h), h);
  server_reply (sim, h, FALSE);
}

static void
on_wait (Sim         *sim,
         const Event *ev)
{
  Req *r = req_at (sim, ev->a);

  if (r->gen != ev->gen || r->state != RQ_WAITING)
    return;
  trace (sim, (gint) r->owner, "i%u #%u waited long enough", r->item, r->id);
  wait_resolve (sim, ev->a, TRUE);
}

/* Listener @li stored a block of @item from the origin, or an origin
 * pull of its ended: the requests waiting there are answered if they
 * can be. */
static void
serve_waiters (Sim   *sim,
               guint  li,
               guint  item)
{
  Listener *l = &sim->ls[li];

  for (guint k = 0; k < l->waits->len; )
    {
      guint h = g_array_index (l->waits, guint, k);

      if (req_at (sim, h)->item == item)
        {
          wait_resolve (sim, h, FALSE);
          if (k < l->waits->len && g_array_index (l->waits, guint, k) == h)
            k++;        /* still waiting */
        }
      else
        k++;
    }
}

static void
on_req_headers (Sim         *sim,
                const Event *ev)
{
  guint h = ev->a;
  Req *r = req_at (sim, h);
  Swarm *sw;
  const char *key;
  guint flow;

  if (r->gen != ev->gen || r->state != RQ_ANSWERING)
    return;
  sw = swarm_get (sim, r->owner, r->item, r->sid);
  g_assert (sw != NULL);        /* a plan's end drops its requests */
  key = r->source >= 0 ? sim->ls[r->source].key : NULL;
  switch (r->answer)
    {
    case ANS_REFUSED:
      trace (sim, (gint) r->owner, "i%u #%u refused by %s", r->item, r->id, key);
      req_end (sim, h, ALV_SWARM_END_FAILED, FALSE);
      return;
    case ANS_NOT_FOUND:
      sim->res->answers_not_found++;
      trace (sim, (gint) r->owner, "i%u #%u 404 from %s", r->item, r->id, key);
      alv_swarm_plan_peer_not_sharing (sw->plan, key, sim->now);
      req_end (sim, h, ALV_SWARM_END_OK, TRUE);
      return;
    case ANS_NOT_HELD:
      sim->res->answers_not_held++;
      trace (sim, (gint) r->owner, "i%u #%u 503 (not held) from %s", r->item, r->id, key);
      alv_swarm_plan_peer_info (sw->plan, key, ALV_SWARM_AVAIL_MAP, g_steal_pointer (&r->avail),
                                g_steal_pointer (&r->pending), sim->now);
      req_end (sim, h, ALV_SWARM_END_OK, TRUE);
      return;
    case ANS_BUSY:
      sim->res->answers_busy++;
      trace (sim, (gint) r->owner, "i%u #%u 503 (busy) from %s", r->item, r->id, key);
      alv_swarm_plan_peer_info (sw->plan, key, ALV_SWARM_AVAIL_MAP, g_steal_pointer (&r->avail),
                                g_steal_pointer (&r->pending), sim->now);
      alv_swarm_plan_request_busy (sw->plan, r->id, sim->now);
      req_end (sim, h, ALV_SWARM_END_OK, TRUE);
      return;
    case ANS_OK:
    default:
      break;
    }
  /* as the daemon: the answer's headers count as a sign of life */
  alv_swarm_plan_request_progress (sw->plan, r->id, 0, sim->now);
  if (key != NULL)
    {
      alv_swarm_plan_peer_info (sw->plan, key, ALV_SWARM_AVAIL_MAP, g_steal_pointer (&r->avail),
                                g_steal_pointer (&r->pending), sim->now);
      /* the peer answered the held prefix only (a no-op for the whole
       * range) */
      alv_swarm_plan_request_truncate (sw->plan, r->id, r->last);
    }
  r->state = RQ_FLOWING;
  r->last_report = sim->now;
  r->flow = 0;  /* set by the first rate callback, from within the start */
  flow = sim_net_flow_start_due (sim->net, r->source >= 0 ? (guint) r->source : sim->origin_node,
                                 r->owner,
                                 sim->cfg->origin_model == SIM_ORIGIN_DROPTAIL && r->source < 0
                                 ? MAX (rand_exp (sim->net_rand, 1.0), 1e-6) : 1.0,
                                 r->due, h, sim->now);
  g_assert (flow != 0 && r->flow == flow);
  if (r->source < 0 && sim->cfg->origin_model == SIM_ORIGIN_DROPTAIL && !sim->redraw_scheduled)
    {
      sim->redraw_scheduled = TRUE;
      push_event (sim, sim->now + REDRAW_US, EV_REDRAW, 0, 0, 0);
    }
  mark_dirty (sim, sw);
}

/* The next block of @r arrived whole; returns FALSE when it failed
 * verification (the daemon then ends the request as failed). */
static gboolean
deliver_block (Sim   *sim,
               Req   *r,
               Swarm *sw)
{
  Listener *l = &sim->ls[r->owner];
  guint8 *store = store_get (sim, r->owner, r->item);
  const char *from = r->source >= 0 ? sim->ls[r->source].key : NULL;
  guint expected = r->next;
  guint i = G_MAXUINT;
  gboolean corrupt;

  r->next++;
  if (!alv_swarm_plan_request_block (sw->plan, r->id, &i))
    {
      sim->res->duplicate_blocks++;
      return TRUE;
    }
  if (i != expected)
    {
      sim->res->anomalies++;
      trace (sim, (gint) r->owner, "ANOMALY i%u #%u: block %u arrived, the plan says %u",
             r->item, r->id, expected, i);
      if (i >= sim->n_blocks)
        return TRUE;
    }
  /* what the block really is: a liar's is garbage, and so is one its
   * source stored without verifying (no_verify) */
  corrupt = r->source >= 0 &&
            (sim->ls[r->source].liar ||
             (sim->ls[r->source].store[r->item] != NULL &&
              sim->ls[r->source].store[r->item][expected] == BLOCK_CORRUPT));
  if (corrupt)
    sim->res->corrupt_blocks_received++;
  if (corrupt && !sim->cfg->no_verify)
    {
      trace (sim, (gint) r->owner, "i%u block %u from %s fails verification", r->item, i, from);
      alv_swarm_plan_block_stored (sw->plan, i, FALSE, TRUE, from);
      return FALSE;
    }
  if (store[i] == BLOCK_ABSENT)
    store[i] = corrupt ? BLOCK_CORRUPT : BLOCK_GOOD;
  alv_swarm_plan_block_stored (sw->plan, i, TRUE, FALSE, from);
  if (!alv_swarm_plan_has_block (sw->plan, i))
    {
      sim->res->anomalies++;
      trace (sim, (gint) r->owner, "ANOMALY i%u: block %u stored but not held", r->item, i);
    }
  if (l->waits->len > 0)
    serve_waiters (sim, r->owner, r->item);
  if (sw->head_pending && head_held (sim, store))
    swarm_head_arrived (sim, sw);
  if (l->p_item == r->item)
    player_check (sim, r->owner);
  return TRUE;
}

static void
on_flow (Sim         *sim,
         const Event *ev)
{
  guint h = ev->a;
  Req *r = req_at (sim, h);
  Swarm *sw;
  double bytes, target;
  guint64 whole;

  if (r->gen != ev->gen || r->state != RQ_FLOWING)
    return;
  sw = swarm_get (sim, r->owner, r->item, r->sid);
  g_assert (sw != NULL);
  bytes = sim_net_flow_bytes (sim->net, r->flow, sim->now);
  target = req_block_end (sim, r, r->next);
  if (bytes >= target - 0.5)
    {
      /* the boundary, exactly (the event was rounded up to a µs) */
      bytes = target;
      sim_net_flow_set_bytes (sim->net, r->flow, bytes);
    }
  account (sim, r, bytes);
  whole = (guint64) bytes;
  if (whole > r->reported)
    {
      alv_swarm_plan_request_progress (sw->plan, r->id, whole - r->reported, sim->now);
      r->reported = whole;
      r->last_report = sim->now;
    }
  if (bytes < target)
    {
      /* bytes, not a block: the daemon does not tick the plan for it */
      schedule_flow (sim, r, h);
      return;
    }
  mark_dirty (sim, sw);
  if (!deliver_block (sim, r, sw))
    {
      /* a bad block ends the request at once, as in the daemon */
      req_end (sim, h, ALV_SWARM_END_FAILED, FALSE);
      return;
    }
  if (r->next > r->last)
    {
      req_end (sim, h, ALV_SWARM_END_OK, TRUE);
      return;
    }
  schedule_flow (sim, r, h);
}

/* The source left: its uploads fail for their downloaders. */
static void
fail_uploads (Sim   *sim,
              guint  li)
{
  Listener *l = &sim->ls[li];

  while (l->uploads->len > 0)
    {
      guint h = g_array_index (l->uploads, guint, l->uploads->len - 1);

      req_end (sim, h, ALV_SWARM_END_FAILED, FALSE);
    }
  while (l->waits->len > 0)
    {
      guint h = g_array_index (l->waits, guint, l->waits->len - 1);

      req_end (sim, h, ALV_SWARM_END_FAILED, FALSE);
    }
}

/* ------------------------------------------------------------------ */
/* polls                                                               */

static void
on_poll_server (Sim         *sim,
                const Event *ev)
{
  Poll *p = poll_at (sim, ev->a);
  Listener *target;
  Swarm *peer_sw;

  if (p->gen != ev->gen || !p->used)
    return;
  target = &sim->ls[p->target];
  if (!target->present)
    p->answer = ANS_REFUSED;
  else if ((peer_sw = target->swarms[p->item]) == NULL)
    p->answer = ANS_NOT_FOUND;
  else
    {
      if (!sim->ls[p->owner].unreachable
          && alv_swarm_plan_add_peer (peer_sw->plan, sim->ls[p->owner].key,
                                      ALV_SWARM_PEER_FROM_REQUESTER, NULL, sim->now))
        mark_dirty (sim, peer_sw);
      p->answer = ANS_OK;
      p->avail = alv_block_map_copy (alv_swarm_plan_get_have (peer_sw->plan));
      p->pending = alv_swarm_plan_get_origin_pending (peer_sw->plan);
    }
  push_event (sim, sim->now + pair_one_way (sim, p->owner, (gint) p->target),
              EV_POLL_ANSWER, ev->a, 0, p->gen);
}

static void
on_poll_answer (Sim         *sim,
                const Event *ev)
{
  Poll *p = poll_at (sim, ev->a);
  Swarm *sw;
  const char *key;

  if (p->gen != ev->gen || !p->used)
    return;
  sw = swarm_get (sim, p->owner, p->item, p->sid);
  conn_release (sim, &sim->ls[p->owner], (gint32) p->target, p->conn_tracked,
                sw != NULL && p->answer != ANS_REFUSED);
  if (sw == NULL)
    {
      poll_release (sim, ev->a);
      return;
    }
  key = sim->ls[p->target].key;
  switch (p->answer)
    {
    case ANS_REFUSED:
      trace (sim, (gint) p->owner, "i%u poll of %s refused", p->item, key);
      alv_swarm_plan_peer_failed (sw->plan, key, 0, sim->now);
      break;
    case ANS_NOT_FOUND:
      alv_swarm_plan_peer_not_sharing (sw->plan, key, sim->now);
      break;
    case ANS_OK:
    default:
      alv_swarm_plan_peer_info (sw->plan, key, ALV_SWARM_AVAIL_MAP, g_steal_pointer (&p->avail),
                                g_steal_pointer (&p->pending), sim->now);
      break;
    }
  alv_swarm_plan_poll_done (sw->plan, key);
  mark_dirty (sim, sw);
  poll_release (sim, ev->a);
}

/* ------------------------------------------------------------------ */
/* announces                                                           */

static void
on_ann_gateway (Sim         *sim,
                const Event *ev)
{
  Ann *a = ann_at (sim, ev->a);
  Listener *l;
  Swarm *sw;
  const char *urn;
  g_autoptr(AlvBlockMap) have = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  GArray *running;

  if (a->gen != ev->gen || !a->used)
    return;
  sw = swarm_get (sim, a->owner, a->item, a->sid);
  if (sw == NULL)
    {
      /* it left on the way: its "stopped" was processed already */
      ann_release (sim, ev->a);
      return;
    }
  l = &sim->ls[a->owner];
  urn = sim->urns[a->item];
  have = alv_block_map_copy (alv_swarm_plan_get_have (sw->plan));
  peers = gateway_peers_select (sim->gw_peers, urn, l->saddr, have, NUMWANT);
  gateway_peers_announce (sim->gw_peers, urn, sim->n_blocks, l->addr, PEER_PORT,
                          sw->announced ? GATEWAY_PEER_EVENT_UPDATE : GATEWAY_PEER_EVENT_STARTED,
                          alv_block_map_copy (have));
  sw->announced = TRUE;
  for (guint k = 0; k < a->n_bad; k++)
    if (gateway_leases_report (sim->gw_leases, urn, l->key, sim->ls[a->bad[k]].key, sim->now))
      trace (sim, (gint) a->owner, "i%u gateway: %s is distrusted", a->item, sim->ls[a->bad[k]].key);
  gateway_leases_update (sim->gw_leases, urn, l->key, have, FALSE, sim->now);
  /* nobody could copy from an unreachable puller: its runs are private
   * (gateway-leases.h) */
  if (a->want_lease && l->unreachable && !a->rescue)
    a->granted = gateway_leases_request_private (sim->gw_leases, urn, sim->n_blocks,
                                                 sim->block_size, l->key, a->first, a->last,
                                                 sim->now, &a->lease_first, &a->lease_last);
  else if (a->want_lease)
    a->granted = gateway_leases_request (sim->gw_leases, urn, sim->n_blocks, sim->block_size,
                                         l->key, a->first, a->last, a->rescue,
                                         a->rescue ? gateway_peers_count_holding (sim->gw_peers, urn, a->first,
                                                                                  GATEWAY_LEASES_RESCUE_RARE + 1)
                                                   : G_MAXUINT,
                                         sim->now,
                                         &a->lease_first, &a->lease_last);
  running = gateway_leases_running (sim->gw_leases, urn, MAX_PULLING, sim->now);
  for (guint k = 0; k < running->len && a->n_pulls < MAX_PULLING; k++)
    {
      const GatewayLease *gl = &g_array_index (running, GatewayLease, k);
      gint holder = key_to_index (sim, gl->holder);

      if (holder < 0 || (guint) holder == a->owner || sim->ls[holder].unreachable)
        continue;
      a->pulls[a->n_pulls].holder = (guint) holder;
      a->pulls[a->n_pulls].first = gl->first;
      a->pulls[a->n_pulls].last = gl->last;
      a->n_pulls++;
    }
  for (guint k = 0; k < peers->len && a->n_peers < NUMWANT; k++)
    {
      g_autofree char *key = alv_alt_format_address (peers->pdata[k]);
      gint idx = key_to_index (sim, key);

      if (idx >= 0)
        a->peers[a->n_peers++] = (guint) idx;
    }
  push_event (sim, sim->now + pair_one_way (sim, a->owner, ORIGIN_PEER),
              EV_ANN_ANSWER, ev->a, 0, a->gen);
}

static void
on_ann_answer (Sim         *sim,
               const Event *ev)
{
  Ann *a = ann_at (sim, ev->a);
  Swarm *sw;

  if (a->gen != ev->gen || !a->used)
    return;
  sw = swarm_get (sim, a->owner, a->item, a->sid);
  if (sw != NULL)
    {
      for (guint k = 0; k < a->n_peers; k++)
        alv_swarm_plan_add_peer (sw->plan, sim->ls[a->peers[k]].key,
                                 ALV_SWARM_PEER_FROM_GATEWAY, NULL, sim->now);
      for (guint k = 0; k < a->n_pulls; k++)
        alv_swarm_plan_peer_pulling (sw->plan, sim->ls[a->pulls[k].holder].key,
                                     a->pulls[k].first, a->pulls[k].last, sim->now);
      if (a->granted)
        sim->res->leases_granted++;
      trace (sim, (gint) a->owner, "i%u announced: %u peers, %u pulling, lease %s %u-%u",
             a->item, a->n_peers, a->n_pulls, a->granted ? "granted" : "none",
             a->granted ? a->lease_first : 0, a->granted ? a->lease_last : 0);
      /* a gateway without leases (--origin-leases 0) says nothing of
       * them: its listeners fall back to the rendezvous owners */
      alv_swarm_plan_announce_done (sw->plan, TRUE, ANNOUNCE_INTERVAL_S,
                                    sim->cfg->origin_leases > 0, a->granted,
                                    a->lease_first, a->lease_last, sim->now);
      mark_dirty (sim, sw);
    }
  ann_release (sim, ev->a);
}

/* ------------------------------------------------------------------ */
/* joining and leaving                                                 */

static void
schedule_leave (Sim   *sim,
                guint  li)
{
  double per_second = sim->cfg->churn / 60.0;

  if (per_second <= 0)
    return;
  push_event (sim, sim->now + (gint64) (rand_exp (sim->churn_rand, 1.0 / per_second) * US),
              EV_LEAVE, li, 0, sim->ls[li].presence_gen);
}

static void
on_join (Sim         *sim,
         const Event *ev)
{
  Listener *l = &sim->ls[ev->a];
  guint item;
  double offset;

  if (l->present || ev->gen != l->presence_gen)
    return;
  item = (guint) (sim->now / sim->item_us);
  if (item >= sim->cfg->n_items)
    return;
  l->present = TRUE;
  l->presence_gen++;
  l->joined_at = sim->now;
  l->r.joins++;
  sim->res->joins++;
  offset = ((sim->now - slot_start (sim, item)) / (double) US - sim->cfg->tune_behind) * sim->byte_rate;
  offset = MAX (offset, 0);
  trace (sim, (gint) ev->a, "joins, item %u at %.0f", item, offset);
  memset (l->conns, 0, sizeof (l->conns));
  for (guint k = 0; k < N_CONNS; k++)
    l->conns[k].peer = CONN_NONE;
  swarm_create (sim, ev->a, item, TRUE, offset);
  if (item + 1 < sim->cfg->n_items)
    {
      Swarm *next = swarm_create (sim, ev->a, item + 1, FALSE, 0);

      if (sim->now >= slot_start (sim, item + 1) - ACTIVATE_BEFORE_US)
        swarm_activate (sim, next);
    }
  player_tune_in (sim, ev->a, item, offset);
  schedule_leave (sim, ev->a);
}

static void
on_leave (Sim         *sim,
          const Event *ev)
{
  Listener *l = &sim->ls[ev->a];
  gint64 back;

  if (!l->present || ev->gen != l->presence_gen)
    return;
  trace (sim, (gint) ev->a, "leaves");
  player_stop (sim, ev->a, FALSE);
  for (guint item = 0; item < sim->cfg->n_items; item++)
    if (l->swarms[item] != NULL)
      swarm_destroy (sim, l->swarms[item]);
  fail_uploads (sim, ev->a);
  l->present = FALSE;
  l->presence_gen++;
  l->r.present_seconds += (sim->now - l->joined_at) / (double) US;
  sim->res->leaves++;
  back = REJOIN_MIN_US + (gint64) (g_rand_double (sim->churn_rand) * (REJOIN_MAX_US - REJOIN_MIN_US));
  push_event (sim, sim->now + back, EV_JOIN, ev->a, 0, l->presence_gen);
}

/* ------------------------------------------------------------------ */
/* slots                                                               */

/* The end of item @item's slot for every listener present. */
static void
end_item (Sim   *sim,
          guint  item)
{
  for (guint li = 0; li < sim->n; li++)
    {
      Listener *l = &sim->ls[li];

      if (!l->present)
        continue;
      if (l->p_item == item)
        player_stop (sim, li, TRUE);
      if (l->swarms[item] != NULL)
        swarm_destroy (sim, l->swarms[item]);
    }
  /* nobody asks for it any more */
  for (guint li = 0; li < sim->n; li++)
    g_clear_pointer (&sim->ls[li].store[item], g_free);
}

static void
on_slot (Sim         *sim,
         const Event *ev)
{
  guint item = ev->a;

  end_item (sim, item - 1);
  for (guint li = 0; li < sim->n; li++)
    {
      Listener *l = &sim->ls[li];
      Swarm *sw;

      if (!l->present)
        continue;
      sw = l->swarms[item];
      if (sw == NULL)
        sw = swarm_create (sim, li, item, TRUE, 0);
      else
        {
          alv_swarm_plan_set_deadline_func (sw->plan, NULL, NULL);
          alv_swarm_plan_set_needed_from (sw->plan, 0);
          swarm_activate (sim, sw);
        }
      alv_swarm_plan_set_playhead (sw->plan, 0, (guint64) sim->byte_rate, sim->now);
      mark_dirty (sim, sw);
      if (item + 1 < sim->cfg->n_items)
        swarm_create (sim, li, item + 1, FALSE, 0);
      /* the next item follows at once: a missing first block is a
       * stall, not a startup */
      l->p_item = item;
      l->p_pos = 0;
      l->p_time = sim->now;
      l->p_gen++;
      if (player_has (sim, li))
        {
          l->p_state = P_PLAYING;
          player_enter_block (sim, li);
          player_schedule (sim, li);
        }
      else
        {
          l->p_state = P_STALLED;
          l->stall_start = sim->now;
          l->r.stalls++;
          trace (sim, (gint) li, "play: stall at the start of item %u", item);
        }
    }
  if (item + 1 < sim->cfg->n_items)
    push_event (sim, slot_start (sim, item + 1), EV_SLOT, item + 1, 0, 0);
  if (item + 2 < sim->cfg->n_items)
    push_event (sim, slot_start (sim, item + 2) - ACTIVATE_BEFORE_US, EV_ACTIVATE, item + 2, 0, 0);
}

static void
on_activate (Sim         *sim,
             const Event *ev)
{
  for (guint li = 0; li < sim->n; li++)
    if (sim->ls[li].present)
      swarm_activate (sim, swarm_get (sim, li, ev->a, 0));
}

static void
on_wake (Sim         *sim,
         const Event *ev)
{
  Swarm *sw = swarm_get (sim, ev->a, ev->b, 0);

  if (sw == NULL || (guint32) sw->sid != ev->gen || sw->wake_sched != ev->time)
    return;
  sw->wake_sched = G_MAXINT64;
  if (sw->wake_time <= sim->now)
    mark_dirty (sim, sw);
  else
    swarm_schedule_wake (sim, sw, sw->wake_time);
}

static void
on_redraw (Sim *sim)
{
  if (sim_net_node_n_up (sim->net, sim->origin_node) == 0)
    {
      sim->redraw_scheduled = FALSE;
      return;
    }
  sim_net_redraw_weights (sim->net, sim->origin_node, sim->net_rand, sim->now);
  push_event (sim, sim->now + REDRAW_US, EV_REDRAW, 0, 0, 0);
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */

void
sim_config_init (SimConfig *config)
{
  memset (config, 0, sizeof (*config));
  config->n_listeners = 16;
  config->seed = 1;
  config->n_items = 1;
  config->item_seconds = 180;
  config->bitrate = 128000;
  config->block_size = ALV_HASH_TREE_DEFAULT_BLOCK_SIZE;
  config->origin_rate = 4;
  config->origin_model = SIM_ORIGIN_FAIR;
  config->peer_rate = 2;
  config->downlink = 10;
  config->join_window = 20;
  config->start_buffer = PLAYER_START_S;
  config->tune_behind = 0;
  config->head_bytes = HEAD_BYTES;
  config->lat_min_ms = 5;
  config->lat_max_ms = 40;
  config->max_events = 2000000000;
  config->gateway_max_peers = 1000;
  config->origin_leases = GATEWAY_LEASES_MAX_RUNNING;
  config->lease_bytes = GATEWAY_LEASES_RUN_BYTES;
}

gboolean
sim_config_parse_uplinks (SimConfig   *config,
                          const char  *text,
                          GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);
  double total = 0;
  guint n = 0;

  for (guint k = 0; parts[k] != NULL; k++)
    {
      char *colon = strchr (parts[k], ':');
      char *end = NULL;
      double fraction, multiple;

      if (g_strstrip (parts[k])[0] == '\0')
        continue;
      if (colon == NULL || n >= SIM_MAX_UPLINK_CLASSES)
        goto bad;
      *colon = '\0';
      fraction = g_ascii_strtod (parts[k], &end);
      if (end == parts[k] || *end != '\0' || !(fraction > 0))
        goto bad;
      multiple = g_ascii_strtod (colon + 1, &end);
      if (end == colon + 1 || *end != '\0' || !(multiple >= 0))
        goto bad;
      config->uplinks[n].fraction = fraction;
      config->uplinks[n].multiple = multiple;
      total += fraction;
      n++;
    }
  if (n == 0 || fabs (total - 1.0) > 0.02)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--uplinks: the fractions must add up to 1 (they add up to %.3f)", total);
      return FALSE;
    }
  config->n_uplinks = n;
  return TRUE;

bad:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "--uplinks: expected FRACTION:MULTIPLE,… (e.g. 0.33:0.8,0.33:1.5,0.34:3), "
               "at most %u classes", SIM_MAX_UPLINK_CLASSES);
  return FALSE;
}

static gboolean
check_config (const SimConfig  *cfg,
              GError          **error)
{
  const char *bad = NULL;

  if (cfg->n_listeners == 0 || cfg->n_listeners > 254u * 65536u)
    bad = "the number of listeners must be 1 to 16646144";
  else if (cfg->n_items == 0)
    bad = "at least one item";
  else if (!(cfg->item_seconds > 0) || cfg->bitrate < 8 || cfg->block_size == 0)
    bad = "the item's length, bitrate and block size must be positive";
  else if (!(cfg->origin_rate > 0))
    bad = "the origin's rate must be positive";
  else if (!(cfg->peer_rate >= 0) || !(cfg->downlink > 0))
    bad = "the peers' rates must be positive";
  else if (!(cfg->join_window >= 0) || !(cfg->churn >= 0) ||
           !(cfg->liars >= 0 && cfg->liars <= 1) ||
           !(cfg->unreachable >= 0 && cfg->unreachable <= 1))
    bad = "the join window, churn, liars and unreachable must be >= 0 (liars, unreachable <= 1)";
  else if (!(cfg->lat_min_ms >= 0) || !(cfg->lat_max_ms >= cfg->lat_min_ms))
    bad = "latencies: 0 <= lat-min <= lat-max";
  else if ((double) cfg->item_seconds * cfg->bitrate / 8 / cfg->block_size >= G_MAXUINT / 4)
    bad = "too many blocks in an item";
  if (bad != NULL)
    {
      g_set_error_literal (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, bad);
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* the run                                                             */

static void
setup_listeners (Sim *sim)
{
  const SimConfig *cfg = sim->cfg;
  guint n = sim->n;
  g_autofree guint *perm = g_new (guint, n);
  g_autofree double *class_of = g_new (double, n);
  double byte_rate = sim->byte_rate;

  /* uplink classes and liars in exact proportions, assigned in a random
   * order */
  for (guint i = 0; i < n; i++)
    perm[i] = i;
  for (guint i = n; i > 1; i--)
    {
      guint j = g_rand_int_range (sim->rand, 0, (gint32) i);
      guint tmp = perm[i - 1];

      perm[i - 1] = perm[j];
      perm[j] = tmp;
    }
  {
    guint pos = 0;

    for (guint c = 0; c < cfg->n_uplinks; c++)
      {
        guint count = c + 1 == cfg->n_uplinks ? n - pos
                      : MIN ((guint) floor (cfg->uplinks[c].fraction * n + 0.5), n - pos);

        for (guint k = 0; k < count; k++)
          class_of[perm[pos++]] = cfg->uplinks[c].multiple;
      }
    for (; pos < n; pos++)
      class_of[perm[pos]] = cfg->peer_rate;
  }
  for (guint i = n; i > 1; i--)
    {
      guint j = g_rand_int_range (sim->rand, 0, (gint32) i);
      guint tmp = perm[i - 1];

      perm[i - 1] = perm[j];
      perm[j] = tmp;
    }

  for (guint i = 0; i < n; i++)
    {
      Listener *l = &sim->ls[i];
      guint rest = i / 254;
      guint8 bytes[4] = { 127, (guint8) (rest >> 8), (guint8) (rest & 255), (guint8) (1 + i % 254) };
      double dist_ms = cfg->lat_min_ms + g_rand_double (sim->rand) * (cfg->lat_max_ms - cfg->lat_min_ms);

      l->addr = g_inet_address_new_from_bytes (bytes, G_SOCKET_FAMILY_IPV4);
      l->saddr = G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (l->addr, PEER_PORT));
      l->key = alv_alt_format_address (l->saddr);
      g_hash_table_insert (sim->key_index, l->key, GUINT_TO_POINTER (i + 1));
      l->up = (cfg->n_uplinks > 0 ? class_of[i] : cfg->peer_rate) * byte_rate;
      l->down = cfg->downlink * byte_rate;
      l->dist = (gint64) (dist_ms * MS);
      l->slots = (guint) CLAMP (l->up / SLOT_RATE, 1, MAX_SLOTS);
      l->uploads = g_array_new (FALSE, FALSE, sizeof (guint));
      l->waits = g_array_new (FALSE, FALSE, sizeof (guint));
      l->swarms = g_new0 (Swarm *, cfg->n_items);
      l->store = g_new0 (guint8 *, cfg->n_items);
      l->r.index = i;
      l->r.uplink = l->up;
      l->r.downlink = l->down;
      l->r.distance_ms = dist_ms;
      l->r.first_startup = -1;
      sim_net_set_node (sim->net, i, l->up, l->down);
    }
  {
    guint n_liars = (guint) floor (cfg->liars * n + 0.5);

    for (guint k = 0; k < n_liars && k < n; k++)
      {
        sim->ls[perm[k]].liar = TRUE;
        sim->ls[perm[k]].r.liar = TRUE;
      }
  }
  if (cfg->unreachable > 0)
    {
      /* an order of their own, so that the other draws stay as they were */
      g_autoptr(GRand) rand = g_rand_new_with_seed (mix32 (cfg->seed, 4));
      guint n_unreachable = (guint) floor (cfg->unreachable * n + 0.5);

      for (guint i = 0; i < n; i++)
        perm[i] = i;
      for (guint i = n; i > 1; i--)
        {
          guint j = g_rand_int_range (rand, 0, (gint32) i);
          guint tmp = perm[i - 1];

          perm[i - 1] = perm[j];
          perm[j] = tmp;
        }
      for (guint k = 0; k < n_unreachable && k < n; k++)
        {
          sim->ls[perm[k]].unreachable = TRUE;
          sim->ls[perm[k]].r.unreachable = TRUE;
        }
    }
  for (guint i = 0; i < n; i++)
    {
      gint64 when = cfg->join_window > 0
                    ? (gint64) (g_rand_double (sim->rand) * cfg->join_window * US) : 0;

      push_event (sim, when, EV_JOIN, i, 0, 0);
    }
}

static int
compare_double (gconstpointer a,
                gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
percentile (GArray *sorted,
            double  q)
{
  gsize k;

  if (sorted->len == 0)
    return 0;
  k = (gsize) ceil (q * sorted->len);
  k = CLAMP (k, 1, sorted->len);
  return g_array_index (sorted, double, k - 1);
}

static void
finish (Sim *sim)
{
  SimResult *res = sim->res;
  double played = 0, stalled = 0, capacity = 0;
  struct rusage usage;

  /* the last slot ends */
  if (!sim->failed)
    end_item (sim, sim->cfg->n_items - 1);
  for (guint li = 0; li < sim->n; li++)
    {
      Listener *l = &sim->ls[li];

      if (l->present)
        {
          /* an aborted run is cut short: nobody's start failed, no tail
           * was lost */
          if (sim->failed && l->p_state == P_WAITING)
            l->p_state = P_OFF;
          player_stop (sim, li, !sim->failed);
          for (guint item = 0; item < sim->cfg->n_items; item++)
            if (l->swarms[item] != NULL)
              swarm_destroy (sim, l->swarms[item]);
          l->r.present_seconds += (sim->now - l->joined_at) / (double) US;
          l->present = FALSE;
        }
      l->r.bytes_uploaded = (guint64) (l->up_bytes + 0.5);
      l->r.bytes_from_peers = (guint64) (l->peer_bytes + 0.5);
      l->r.bytes_from_origin = (guint64) (l->origin_bytes + 0.5);
      if (l->r.joins > 0 && l->r.stalls == 0)
        res->stall_free++;
      if (l->unreachable)
        {
          res->n_unreachable++;
          if (l->r.joins > 0 && l->r.stalls == 0)
            res->stall_free_unreachable++;
        }
      res->n_stalls += l->r.stalls;
      res->stall_seconds += l->r.stall_seconds;
      res->lost_seconds += l->r.lost_seconds;
      res->bytes_uploaded += l->r.bytes_uploaded;
      res->bytes_from_peers += l->r.bytes_from_peers;
      res->bytes_from_origin += l->r.bytes_from_origin;
      res->corrupt_bytes_played += l->r.corrupt_bytes_played;
      played += l->r.played_seconds;
      stalled += l->r.stall_seconds;
      capacity += l->up * l->r.present_seconds;
      g_array_append_val (res->listeners, l->r);
    }
  res->origin_bytes = (guint64) (sim->origin_bytes + 0.5);
  res->origin_copies = sim->origin_bytes / ((double) sim->length * sim->cfg->n_items);
  res->continuity = played + stalled > 0 ? played / (played + stalled) : 0;
  res->peer_upload_utilisation = capacity > 0 ? res->bytes_uploaded / capacity : 0;
  g_array_sort (sim->startups, compare_double);
  res->startups = sim->startups->len;
  res->startup_p50 = percentile (sim->startups, 0.50);
  res->startup_p95 = percentile (sim->startups, 0.95);
  res->startup_max = percentile (sim->startups, 1.0);
  res->simulated_seconds = sim->now / (double) US;
  if (getrusage (RUSAGE_SELF, &usage) == 0)
    res->peak_rss_kib = usage.ru_maxrss;
}

gboolean
sim_run (const SimConfig  *config,
         SimResult        *result,
         GError          **error)
{
  Sim sim_data = { 0, };
  Sim *sim = &sim_data;
  gint64 wall_start = g_get_monotonic_time ();
  gint64 next_progress = wall_start + 10 * US;
  gboolean ok;

  memset (result, 0, sizeof (*result));
  result->listeners = g_array_new (FALSE, TRUE, sizeof (SimListenerResult));
  if (!check_config (config, error))
    return FALSE;

  sim->cfg = config;
  sim->res = result;
  sim->n = config->n_listeners;
  sim->block_size = config->block_size;
  sim->byte_rate = config->bitrate / 8.0;
  sim->item_us = (gint64) (config->item_seconds * US);
  sim->length = (guint64) ceil (config->item_seconds * sim->byte_rate);
  sim->n_blocks = (guint) ((sim->length + sim->block_size - 1) / sim->block_size);
  sim->end_time = sim->item_us * config->n_items;
  sim->rand = g_rand_new_with_seed (config->seed);
  sim->churn_rand = g_rand_new_with_seed (mix32 (config->seed, 1));
  sim->net_rand = g_rand_new_with_seed (mix32 (config->seed, 2));
  sim->net = sim_net_new (sim->n + 1, flow_rate_cb, sim);
  sim->origin_node = sim->n;
  sim_net_set_node (sim->net, sim->origin_node, config->origin_rate * sim->byte_rate, 0);
  sim_net_set_weighted (sim->net, sim->origin_node, config->origin_model == SIM_ORIGIN_DROPTAIL);
  /* peers upload earliest deadline first (X-Due-In) */
  for (guint i = 0; i < sim->n; i++)
    sim_net_set_edf (sim->net, i, TRUE);
  sim->ls = g_new0 (Listener, sim->n);
  sim->key_index = g_hash_table_new (g_str_hash, g_str_equal);
  sim->gw_peers = gateway_peers_new (GATEWAY_TTL_S, MAX (config->gateway_max_peers, 1),
                                     GATEWAY_PER_ADDRESS, GATEWAY_PEERS_MAX_ENTRIES);
  gateway_peers_set_clock (sim->gw_peers, gateway_clock, sim);
  gateway_peers_set_seed (sim->gw_peers, mix32 (config->seed, 3));
  gateway_peers_set_source_func (sim->gw_peers, gateway_may_list, sim);
  sim->gw_leases = gateway_leases_new (config->origin_leases, config->lease_bytes,
                                       GATEWAY_LEASES_TTL_US);
  sim->urns = g_new0 (char *, config->n_items + 1);
  for (guint k = 0; k < config->n_items; k++)
    sim->urns[k] = g_strdup_printf ("urn:sim:item-%u", k);
  pool_init (&sim->reqs, sizeof (Req));
  pool_init (&sim->polls, sizeof (Poll));
  pool_init (&sim->anns, sizeof (Ann));
  sim->dirty = g_array_new (FALSE, FALSE, sizeof (DirtyRef));
  sim->dirty_work = g_array_new (FALSE, FALSE, sizeof (DirtyRef));
  sim->actions = g_array_new (FALSE, TRUE, sizeof (AlvSwarmAction));
  sim->todo = g_array_new (FALSE, TRUE, sizeof (Todo));
  sim->startups = g_array_new (FALSE, FALSE, sizeof (double));

  setup_listeners (sim);
  if (config->n_items > 1)
    push_event (sim, slot_start (sim, 1), EV_SLOT, 1, 0, 0);
  if (config->n_items > 2)
    push_event (sim, slot_start (sim, 2) - ACTIVATE_BEFORE_US, EV_ACTIVATE, 2, 0, 0);

  while (!sim->failed)
    {
      Event ev;

      /* every plan that heard something is ticked once the instant's
       * events are in */
      if (sim->dirty->len > 0 && (sim->heap_len == 0 || sim->heap[0].time > sim->now))
        {
          flush_dirty (sim);
          continue;
        }
      if (sim->heap_len == 0)
        break;
      if ((result->events & 0x3ff) == 0 && (config->max_wall_seconds > 0 || config->progress))
        {
          gint64 wall = g_get_monotonic_time ();

          if (config->progress && wall >= next_progress)
            {
              g_printerr ("swarm-sim: t=%.1f s of %.1f, %" G_GUINT64_FORMAT " events, %"
                          G_GUINT64_FORMAT " ticks, %.0f s wall\n",
                          sim->now / (double) US, sim->end_time / (double) US, result->events,
                          result->ticks, (wall - wall_start) / (double) US);
              next_progress = wall + 10 * US;
            }
          if (config->max_wall_seconds > 0 &&
              wall - wall_start > (gint64) (config->max_wall_seconds * US))
            {
              sim_fail (sim, "more than %.0f s of wall time at t=%.6f s (--max-wall)",
                        config->max_wall_seconds, sim->now / (double) US);
              result->aborted = TRUE;
              break;
            }
        }
      if (result->events >= config->max_events)
        {
          sim_fail (sim, "more than %" G_GUINT64_FORMAT " events at t=%.6f s (--max-events)",
                    config->max_events, sim->now / (double) US);
          result->aborted = TRUE;
          break;
        }
      ev = pop_event (sim);
      sim->now = ev.time;
      result->events++;
      switch ((EventKind) ev.kind)
        {
        case EV_JOIN:
          on_join (sim, &ev);
          break;
        case EV_LEAVE:
          on_leave (sim, &ev);
          break;
        case EV_WAKE:
          on_wake (sim, &ev);
          break;
        case EV_REQ_SERVER:
          on_req_server (sim, &ev);
          break;
        case EV_REQ_HEADERS:
          on_req_headers (sim, &ev);
          break;
        case EV_FLOW:
          on_flow (sim, &ev);
          break;
        case EV_POLL_SERVER:
          on_poll_server (sim, &ev);
          break;
        case EV_POLL_ANSWER:
          on_poll_answer (sim, &ev);
          break;
        case EV_ANN_GATEWAY:
          on_ann_gateway (sim, &ev);
          break;
        case EV_ANN_ANSWER:
          on_ann_answer (sim, &ev);
          break;
        case EV_PLAY:
          on_play (sim, &ev);
          break;
        case EV_SLOT:
          on_slot (sim, &ev);
          break;
        case EV_ACTIVATE:
          on_activate (sim, &ev);
          break;
        case EV_WAIT:
          on_wait (sim, &ev);
          break;
        case EV_SYN:
          on_syn (sim, &ev);
          break;
        case EV_REDRAW:
          on_redraw (sim);
          break;
        default:
          g_assert_not_reached ();
        }
    }
  if (sim->failed && sim->fail_message != NULL && !result->aborted)
    result->aborted = TRUE;
  if (!sim->failed)
    sim->now = MAX (sim->now, sim->end_time);
  finish (sim);
  result->n_listeners = sim->n;
  result->n_items = config->n_items;
  result->item_bytes = sim->length;
  result->wall_seconds = (g_get_monotonic_time () - wall_start) / (double) US;

  ok = !sim->failed;
  if (!ok)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "%s", sim->fail_message);

  /* teardown */
  for (guint li = 0; li < sim->n; li++)
    {
      Listener *l = &sim->ls[li];

      for (guint item = 0; item < config->n_items; item++)
        g_free (l->store[item]);
      g_free (l->store);
      g_free (l->swarms);
      g_array_unref (l->uploads);
      g_array_unref (l->waits);
      g_clear_object (&l->saddr);
      g_clear_object (&l->addr);
      g_free (l->key);
    }
  for (guint h = 0; h < sim->reqs.items->len; h++)
    {
      Req *r = req_at (sim, h);

      g_clear_pointer (&r->avail, alv_block_map_free);
      g_clear_pointer (&r->pending, alv_block_map_free);
    }
  for (guint h = 0; h < sim->polls.items->len; h++)
    {
      Poll *p = poll_at (sim, h);

      g_clear_pointer (&p->avail, alv_block_map_free);
      g_clear_pointer (&p->pending, alv_block_map_free);
    }
  g_free (sim->ls);
  g_hash_table_unref (sim->key_index);
  gateway_peers_free (sim->gw_peers);
  gateway_leases_free (sim->gw_leases);
  g_strfreev (sim->urns);
  pool_clear (&sim->reqs);
  pool_clear (&sim->polls);
  pool_clear (&sim->anns);
  g_array_unref (sim->dirty);
  g_array_unref (sim->dirty_work);
  g_array_unref (sim->actions);
  g_array_unref (sim->todo);
  g_array_unref (sim->startups);
  sim_net_free (sim->net);
  g_rand_free (sim->rand);
  g_rand_free (sim->churn_rand);
  g_rand_free (sim->net_rand);
  g_free (sim->heap);
  g_free (sim->fail_message);
  return ok;
}

void
sim_result_clear (SimResult *result)
{
  g_clear_pointer (&result->listeners, g_array_unref);
}

char *
sim_result_to_json (const SimConfig *config,
                    const SimResult *r)
{
  GString *s = g_string_new ("{");
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

#define JNUM(name, value) \
  g_string_append_printf (s, "%s\"%s\":%s", s->len > 1 ? "," : "", name, \
                          g_ascii_formatd (buf, sizeof (buf), "%.6g", (double) (value)))
#define JINT(name, value) \
  g_string_append_printf (s, "%s\"%s\":%" G_GUINT64_FORMAT, s->len > 1 ? "," : "", name, \
                          (guint64) (value))
  JINT ("n", config->n_listeners);
  JINT ("seed", config->seed);
  JINT ("items", config->n_items);
  JNUM ("seconds", config->item_seconds);
  JINT ("bitrate", config->bitrate);
  JINT ("block_size", config->block_size);
  g_string_append_printf (s, ",\"origin_model\":\"%s\"",
                          config->origin_model == SIM_ORIGIN_DROPTAIL ? "droptail" : "fair");
  JNUM ("origin_rate", config->origin_rate);
  JNUM ("join_window", config->join_window);
  JNUM ("start_buffer", config->start_buffer);
  JNUM ("tune_behind", config->tune_behind);
  JINT ("head_bytes", config->head_bytes);
  JNUM ("churn", config->churn);
  JNUM ("liars", config->liars);
  JNUM ("unreachable", config->unreachable);
  JNUM ("origin_copies", r->origin_copies);
  JINT ("stall_free", r->stall_free);
  JINT ("n_unreachable", r->n_unreachable);
  JINT ("stall_free_unreachable", r->stall_free_unreachable);
  JINT ("stalls", r->n_stalls);
  JNUM ("stall_seconds", r->stall_seconds);
  JINT ("startups", r->startups);
  JINT ("never_started", r->never_started);
  JNUM ("startup_p50", r->startup_p50);
  JNUM ("startup_p95", r->startup_p95);
  JNUM ("startup_max", r->startup_max);
  JNUM ("continuity", r->continuity);
  JNUM ("peer_upload_utilisation", r->peer_upload_utilisation);
  JINT ("bytes_from_peers", r->bytes_from_peers);
  JINT ("bytes_from_origin", r->bytes_from_origin);
  JINT ("origin_bytes", r->origin_bytes);
  JNUM ("lost_seconds", r->lost_seconds);
  JINT ("corrupt_bytes_played", r->corrupt_bytes_played);
  JINT ("corrupt_blocks_received", r->corrupt_blocks_received);
  JINT ("duplicate_blocks", r->duplicate_blocks);
  JINT ("requests_peer", r->requests_peer);
  JINT ("requests_origin", r->requests_origin);
  JINT ("answers_busy", r->answers_busy);
  JINT ("answers_not_held", r->answers_not_held);
  JINT ("requests_waited", r->requests_waited);
  JINT ("requests_failed", r->requests_failed);
  JINT ("requests_cancelled", r->requests_cancelled);
  JINT ("polls", r->polls);
  JINT ("announces", r->announces);
  JINT ("leases_granted", r->leases_granted);
  JINT ("syn_losses", r->syn_losses);
  JINT ("requests_unreachable", r->requests_unreachable);
  JINT ("leaves", r->leaves);
  JINT ("anomalies", r->anomalies);
  JINT ("events", r->events);
  JINT ("ticks", r->ticks);
  JINT ("actions", r->actions);
  JNUM ("tick_seconds", r->tick_seconds);
  JNUM ("wall_seconds", r->wall_seconds);
  JINT ("peak_rss_kib", r->peak_rss_kib);
  g_string_append_printf (s, ",\"aborted\":%s}", r->aborted ? "true" : "false");
#undef JNUM
#undef JINT
  return g_string_free (s, FALSE);
}
