/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The swarm simulator's engine: a discrete-event simulation of a whole
 * station swarm (origin, gateway, N listeners with players) driving the
 * real planner (core/alv-swarm-plan.c) and the real gateway tables
 * (server/gateway-peers.c, server/gateway-leases.c) on a virtual clock.
 * sim_run() is deterministic for a given SimConfig (seed included), so the
 * command-line tool (swarm-sim.c) and scenario tests link the same code.
 * The model and its approximations are described at the top of sim.c.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum
{
  SIM_ORIGIN_FAIR,              /* processor sharing between its flows */
  SIM_ORIGIN_DROPTAIL,          /* a FIFO home line: random shares, lost SYNs */
} SimOriginModel;

#define SIM_MAX_UPLINK_CLASSES 16

/* A share of the listeners with an uplink of @multiple × the bitrate. */
typedef struct
{
  double fraction;
  double multiple;
} SimUplinkClass;

typedef struct
{
  guint n_listeners;
  guint32 seed;
  guint n_items;
  double item_seconds;
  guint bitrate;                /* bit/s */
  guint block_size;             /* bytes */
  double origin_rate;           /* × bitrate */
  SimOriginModel origin_model;
  double peer_rate;             /* × bitrate: every uplink (no classes) */
  SimUplinkClass uplinks[SIM_MAX_UPLINK_CLASSES];
  guint n_uplinks;              /* 0: every listener at peer_rate */
  double downlink;              /* × bitrate */
  double join_window;           /* s; 0: everybody at t = 0 */
  double start_buffer;          /* s of audio held before a player starts */
  double tune_behind;           /* s behind the live position a listener tunes in at */
  guint head_bytes;             /* the item's head a listener tuning in needs
                                 * first (the core's first head read); 0: none */
  double churn;                 /* fraction of listeners leaving per minute */
  double liars;                 /* fraction of listeners serving corrupt blocks */
  double unreachable;           /* fraction of listeners nobody can connect to
                                 * (behind NAT): the gateway knows them so,
                                 * as after its connect-back check */
  double lat_min_ms, lat_max_ms;/* one-way distance of a listener */
  guint64 max_events;
  double max_wall_seconds;      /* abort after this much wall time (0: never);
                                 * the only thing that is not deterministic */
  gboolean progress;            /* a line on stderr every 10 s of wall time */
  guint gateway_max_peers;      /* the gateway's --max-peers-per-urn */
  guint origin_leases;          /* the gateway's --origin-leases */
  guint lease_bytes;            /* the gateway's run length */
  gboolean no_verify;           /* the store keeps what fails verification
                                 * (only to show that the metric counts) */
  gboolean trace;               /* every action and ending on stdout */
} SimConfig;

/* One listener's run, for --verbose. */
typedef struct
{
  guint index;
  gboolean liar;
  gboolean unreachable;
  double uplink, downlink;      /* bytes/s */
  double distance_ms;
  guint joins;
  double first_startup;         /* s; < 0: never started */
  guint stalls;
  double stall_seconds;
  double played_seconds;
  double lost_seconds;
  double present_seconds;
  guint64 bytes_uploaded;
  guint64 bytes_from_peers;
  guint64 bytes_from_origin;
  guint64 corrupt_bytes_played;
  guint64 origin_requests;
  guint64 polls;
  guint64 announces;
  guint64 leases;
  guint peers_banned;
} SimListenerResult;

typedef struct
{
  guint n_listeners;
  guint n_items;
  guint64 item_bytes;
  double origin_copies;         /* origin body bytes / (item bytes × items) */
  guint64 origin_bytes;
  guint stall_free;             /* listeners without any stall */
  guint n_unreachable;          /* listeners nobody can connect to */
  guint stall_free_unreachable; /* of those, without any stall */
  guint n_stalls;
  double stall_seconds;
  guint startups;               /* tune-ins (rejoins included) */
  guint never_started;          /* tune-ins whose playback never began */
  double startup_p50, startup_p95, startup_max; /* s; unstarted ones count
                                                 * with their wait so far */
  double continuity;            /* played / (played + stalled) */
  double peer_upload_utilisation;
  guint64 bytes_from_peers;
  guint64 bytes_from_origin;    /* delivered blocks from the origin */
  guint64 bytes_uploaded;
  double lost_seconds;
  guint64 corrupt_bytes_played;
  guint64 corrupt_blocks_received;
  guint64 duplicate_blocks;     /* request_block said "not needed" */
  guint64 requests_peer, requests_origin;
  guint64 answers_busy, answers_not_held, answers_not_found;
  guint64 requests_waited;      /* waited at their source for a block it pulled */
  guint64 requests_failed, requests_cancelled;
  guint64 polls, announces, leases_granted;
  guint64 syn_losses;
  guint64 requests_unreachable; /* requests and polls sent to a listener
                                 * nobody can connect to (they time out) */
  guint64 joins, leaves;
  guint64 anomalies;            /* the planner said something impossible */
  guint64 events;
  guint64 ticks;                /* alv_swarm_plan_tick() calls */
  guint64 actions;
  double tick_seconds;          /* wall time spent in the planner's ticks */
  double simulated_seconds;
  double wall_seconds;
  glong peak_rss_kib;
  gboolean aborted;             /* ran out of events */
  GArray *listeners;            /* SimListenerResult */
} SimResult;

void     sim_config_init  (SimConfig       *config);
/* Parses "0.33:0.8,0.33:1.5,0.34:3" into config->uplinks. */
gboolean sim_config_parse_uplinks (SimConfig  *config,
                                   const char *text,
                                   GError    **error);

/* Runs the simulation; FALSE with @error when the configuration is bad or
 * the run was aborted (event limit, a livelock), @result then holds what
 * was measured up to there.  Clear @result with sim_result_clear(). */
gboolean sim_run          (const SimConfig *config,
                           SimResult       *result,
                           GError         **error);
void     sim_result_clear (SimResult       *result);

/* The single-line JSON summary (newly allocated). */
char    *sim_result_to_json (const SimConfig *config,
                             const SimResult *result);

G_END_DECLS
