/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * org.alluvium.Core1 as alluvium-core serves it.  A Tune checks the URL,
 * fetches the playlist once (so that a bad URL, an unreachable or an
 * invalid playlist comes back as a typed error of the call itself), starts
 * the local stream and then follows the schedule: at every item change a
 * feeder (core-feeder.c) plays the item from the position now playing
 * (doc/core.md), through the item's swarm when the station's gateway
 * (configured, or the one at the playlist's origin) resolves it, else
 * straight from its origin.  The service decides which item plays: it
 * starts the feeders, adopts the prefetched one at the change (or hands
 * over to it early when the next item follows back to back), retries an
 * item that failed, and keeps the swarms of recent items shared on the
 * peer port for a while (the share table, core-shares.c).  Once a
 * second it gathers the swarms', the peer port's and the port mapping's
 * figures into the Statistics property (core-stats.c).  With no station
 * (and nothing shared) the service arms an idle timer; the daemon exits
 * when it fires.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "core-service.h"

#include <glib/gi18n-lib.h>
#include <libsoup/soup.h>

#include "alv-block-store.h"
#include "alv-dbus.h"
#include "alv-error.h"
#include "alv-gateway-client.h"
#include "alv-memory.h"
#include "alv-natpmp.h"
#include "alv-ranges.h"
#include "alv-peer-server.h"
#include "alv-port-map.h"
#include "alv-schedule.h"
#include "alv-stream-server.h"
#include "alv-swarm.h"
#include "alv-time.h"
#include "core-feeder.h"
#include "core-shares.h"
#include "core-stats.h"

/* an item that failed is tried again after this, doubling up to the max */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 30000
/* items this close are back to back: the stream's lead carries over */
#define BACK_TO_BACK (G_USEC_PER_SEC)
/* a prefetched item's swarm fetches once the item playing is held, or
 * this long (µs) before its slot, whichever comes first */
#define PREFETCH_LEAD (30 * G_USEC_PER_SEC)

/* --- the service ----------------------------------------------------- */

struct _CoreService
{
  GObject parent_instance;

  CoreConfig config;
  SoupSession *session;
  AlvCore1 *skeleton;
  GDBusConnection *connection;

  AlvSchedule *schedule;
  GCancellable *tune_cancellable;
  AlvSchedule *tuning;             /* a Tune's station while its playlist comes:
                                    * the station playing (if any) plays on */
  GPtrArray *pending_tunes;        /* GDBusMethodInvocation waiting for the first fetch */
  GHashTable *holders;             /* unique bus name → name watch: the clients
                                    * that tuned the station playing */
  AlvStreamServer *stream;
  CoreFeeder *feeder;
  CoreFeeder *next_feeder;             /* the prefetched head of the next item */

  guint64 bytes_from_origin;
  guint idle_id;
  guint retry_id;                  /* the item that failed, again */
  guint give_back_id;              /* freed memory to the system, after Stop */
  CoreRates rates;                 /* transfer rates, smoothed over a few seconds */
  guint retry_step_ms;             /* the next retry's delay */

  /* the swarm path (a gateway is configured) */
  AlvGatewayClient *gateway;
  AlvBlockStore *store;            /* NULL until opened */
  AlvPeerServer *peers;            /* NULL if it could not listen */
  AlvPortMap *port_map;            /* the peer port in the router; NULL: not listening */
  GCancellable *cancellable;       /* the store's opening */
  gboolean store_opening;
  CoreShares *shares;              /* recent items still shared */
  guint stats_id;
};

G_DEFINE_TYPE (CoreService, core_service, G_TYPE_OBJECT)

enum
{
  SIGNAL_IDLE_EXIT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void set_state (CoreService *self, AlvCoreState state, const char *message);

static void collect_swarm_stats (CoreService *self, AlvSwarmStats *total);
static AlvSwarm *playing_swarm (CoreService *self);
static guint16 announced_port (CoreService *self);

static void
update_statistics (CoreService *self)
{
  CoreStats st = { 0, };
  g_autofree char *external = NULL;

  collect_swarm_stats (self, &st.total);
  st.bytes_from_origin = self->bytes_from_origin;
  if (self->peers != NULL)
    alv_peer_server_get_stats (self->peers, &st.peers);
  st.rates = self->rates;
  if (self->port_map != NULL)
    {
      st.mapping = alv_port_map_get_mapping (self->port_map);
      st.external = external = alv_port_map_dup_external (self->port_map);
    }
  if (playing_swarm (self) != NULL)
    {
      alv_swarm_get_stats (playing_swarm (self), &st.item);
      st.has_item = TRUE;
    }
  alv_core1_set_statistics (self->skeleton, core_stats_to_variant (&st));
}

/* Once a second: the transfer rates, from the totals. */
static void
update_rates (CoreService *self)
{
  AlvSwarmStats st;
  AlvPeerServerStats ps = { 0, };

  collect_swarm_stats (self, &st);
  if (self->peers != NULL)
    alv_peer_server_get_stats (self->peers, &ps);
  core_rates_update (&self->rates, st.bytes_from_peers + st.bytes_from_origin + self->bytes_from_origin,
                     ps.bytes_uploaded, g_get_monotonic_time ());
}

static gint64
datetime_to_us (GDateTime *dt)
{
  return g_date_time_to_unix (dt) * G_USEC_PER_SEC + g_date_time_get_microsecond (dt);
}

static void
set_now_playing (CoreService     *self,
                 AlvPlaylistItem *item,
                 GTimeSpan        position)
{
  g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (item != NULL)
    {
      const char *title = alv_playlist_item_get_title (item);
      const char *creator = alv_playlist_item_get_creator (item);
      const char *urn = alv_playlist_item_get_urn (item);

      g_variant_builder_add (&b, "{sv}", "title", g_variant_new_string (title != NULL ? title : ""));
      g_variant_builder_add (&b, "{sv}", "creator", g_variant_new_string (creator != NULL ? creator : ""));
      g_variant_builder_add (&b, "{sv}", "url", g_variant_new_string (alv_playlist_item_get_url (item)));
      g_variant_builder_add (&b, "{sv}", "urn", g_variant_new_string (urn != NULL ? urn : ""));
      g_variant_builder_add (&b, "{sv}", "slot-start",
                             g_variant_new_int64 (datetime_to_us (alv_playlist_item_get_start (item))));
      g_variant_builder_add (&b, "{sv}", "slot-end",
                             g_variant_new_int64 (datetime_to_us (alv_playlist_item_get_end (item))));
      g_variant_builder_add (&b, "{sv}", "position", g_variant_new_int64 (position));
    }
  alv_core1_set_now_playing (self->skeleton, g_variant_builder_end (&b));
}

/* --- idle exit ------------------------------------------------------- */

static gboolean
on_idle_timeout (gpointer user_data)
{
  CoreService *self = user_data;

  self->idle_id = 0;
  g_debug ("idle for %u s, exiting", self->config.idle_timeout);
  g_signal_emit (self, signals[SIGNAL_IDLE_EXIT], 0);
  return G_SOURCE_REMOVE;
}

/* Nothing tuned and nothing shared is idle. */
static void
update_idle (CoreService *self)
{
  gboolean idle = self->schedule == NULL && self->tuning == NULL
                  && core_shares_get_count (self->shares) == 0;

  if (!idle || self->config.idle_timeout == 0)
    {
      g_clear_handle_id (&self->idle_id, g_source_remove);
      return;
    }
  if (self->idle_id == 0)
    self->idle_id = g_timeout_add_seconds (self->config.idle_timeout, on_idle_timeout, self);
}

/* --- memory after Stop ----------------------------------------------- */

static gboolean
on_give_back (gpointer user_data)
{
  CoreService *self = user_data;

  self->give_back_id = 0;
  alv_memory_give_back ("station stopped");
  return G_SOURCE_REMOVE;
}

/* A stopped station's swarm, buffers and playlist are freed partly on
 * later turns of the main loop (with the operations cancelled); a second
 * later their memory goes back to the system instead of staying with the
 * allocator until the daemon exits. */
static void
give_back_memory_soon (CoreService *self)
{
  if (self->give_back_id == 0)
    self->give_back_id = g_timeout_add_seconds (1, on_give_back, self);
}

/* --- the feeders (core-feeder.c) ------------------------------------ */

static void schedule_retry (CoreService *self);
static void update_prefetch (CoreService *self);
static void adopt_next_feeder (CoreService *self, CoreFeeder *f, gint64 offset);

static void
on_feeder_failed (CoreFeeder *f,
                  const char *message,
                  gpointer    user_data)
{
  CoreService *self = user_data;

  if (f == self->next_feeder)
    {
      /* a failed prefetch is retried when the item starts */
      g_clear_pointer (&self->next_feeder, core_feeder_free);
      return;
    }
  set_state (self, ALV_CORE_STATE_ERROR, message);
  /* (one handed over before its slot starts afresh at its slot) */
  if (!core_feeder_get_handed_over (f))
    schedule_retry (self);
  g_clear_pointer (&self->feeder, core_feeder_free);
}

static void
on_feeder_playing (CoreFeeder *f,
                   gpointer    user_data)
{
  CoreService *self = user_data;

  if (g_strcmp0 (alv_core1_get_state (self->skeleton), "playing") != 0)
    {
      g_debug ("%s is in the stream", alv_playlist_item_get_url (core_feeder_get_item (f)));
      set_state (self, ALV_CORE_STATE_PLAYING, "");
      self->retry_step_ms = 0;
    }
}

/* The item playing has pushed all its data, the stream's lead
 * (core-feeder.c's FEED_LEAD) before its slot ends.  When the next item
 * follows it back to back, that item starts now, paced from the moment
 * the stream reaches it, so the stream keeps its lead across the change
 * instead of running dry for FEED_LEAD and catching up in one lump
 * (which players at high bitrates underrun on).  NowPlaying still
 * changes at the slot, with the schedule. */
static void
on_feeder_data_done (CoreFeeder *f,
                     gpointer    user_data)
{
  CoreService *self = user_data;
  CoreFeeder *next = self->next_feeder;
  gint64 end, gap, stream_end;

  if (self->feeder != f || next == NULL || !core_feeder_get_stream_end (f, &stream_end))
    return;
  end = datetime_to_us (alv_playlist_item_get_end (core_feeder_get_item (f)));
  gap = datetime_to_us (alv_playlist_item_get_start (core_feeder_get_item (next))) - end;
  if (gap > BACK_TO_BACK || gap < -BACK_TO_BACK)
    return;
  self->next_feeder = NULL;
  core_feeder_hand_over (next, stream_end);
  g_debug ("%s is all out: %s follows in the stream",
           alv_playlist_item_get_url (core_feeder_get_item (f)),
           alv_playlist_item_get_url (core_feeder_get_item (next)));
  g_clear_pointer (&self->feeder, core_feeder_free);
  adopt_next_feeder (self, next, 0);
}

static void
on_feeder_prefetch_swarm (CoreFeeder *f G_GNUC_UNUSED,
                          gpointer    user_data)
{
  update_prefetch (user_data);
}

static void
on_feeder_origin_bytes (guint64  n,
                        gpointer user_data)
{
  CoreService *self = user_data;

  /* (published by the once-a-second timer, not per chunk) */
  self->bytes_from_origin += n;
}

/* The swarm of a resolved item: the one still shared, or a new one
 * shared on the peer port. */
static AlvSwarm *
on_feeder_open_swarm (const AlvGatewayResolution *res,
                      GError                    **error,
                      gpointer                    user_data)
{
  CoreService *self = user_data;

  return core_shares_open (self->shares, res, self->gateway, announced_port (self), error);
}

static void
on_feeder_release_swarm (AlvSwarm *swarm,
                         gpointer  user_data)
{
  CoreService *self = user_data;

  core_shares_keep (self->shares, swarm);
}

static const CoreFeederCallbacks feeder_callbacks = {
  .failed = on_feeder_failed,
  .playing = on_feeder_playing,
  .data_done = on_feeder_data_done,
  .prefetch_swarm = on_feeder_prefetch_swarm,
  .origin_bytes = on_feeder_origin_bytes,
  .open_swarm = on_feeder_open_swarm,
  .release_swarm = on_feeder_release_swarm,
};

/* A feeder for @item of the station playing (see core_feeder_new()). */
static CoreFeeder *
feeder_new (CoreService     *self,
            AlvPlaylistItem *item,
            GTimeSpan        position,
            gboolean         prefetch_only)
{
  CoreFeederContext ctx = {
    .session = self->session,
    .out = self->stream,
    .gateway = self->gateway,
    .store = self->store,
    .peers = self->peers,
    .store_opening = self->store_opening,
    .callbacks = &feeder_callbacks,
    .user_data = self,
  };

  return core_feeder_new (&ctx, item, position, prefetch_only);
}

/* The item playing failed (its origin or gateway unreachable, say): try
 * it again, from the position playing by then, after RETRY_FIRST_MS,
 * twice as long each time in a row up to RETRY_MAX_MS, for as long as its
 * slot lasts (the next item starts afresh anyway). */
static gboolean
on_retry (gpointer user_data)
{
  CoreService *self = user_data;
  AlvPlaylistItem *item;
  GTimeSpan offset = 0;

  self->retry_id = 0;
  if (self->schedule == NULL || self->feeder != NULL)
    return G_SOURCE_REMOVE;
  item = alv_schedule_get_current_item (self->schedule, &offset);
  if (item == NULL)
    return G_SOURCE_REMOVE;
  g_debug ("trying %s again, from %" G_GINT64_FORMAT " µs", alv_playlist_item_get_url (item),
           (gint64) offset);
  self->feeder = feeder_new (self, item, offset, FALSE);
  return G_SOURCE_REMOVE;
}

static void
schedule_retry (CoreService *self)
{
  if (self->schedule == NULL || self->retry_id != 0)
    return;
  if (self->retry_step_ms == 0)
    self->retry_step_ms = RETRY_FIRST_MS;
  self->retry_id = g_timeout_add (self->retry_step_ms, on_retry, self);
  self->retry_step_ms = MIN (self->retry_step_ms * 2, RETRY_MAX_MS);
}

/* The next item's swarm fetches only once the item playing is held in
 * full (or the next slot is near): the station's uplink and the peers'
 * go to what is heard now first.  The first listener done with the item
 * playing starts the next one from the origin, the others follow it. */
static void
update_prefetch (CoreService *self)
{
  CoreFeeder *next = self->next_feeder;
  CoreFeeder *cur = self->feeder;
  gboolean enable;

  if (next == NULL || core_feeder_get_swarm (next) == NULL || self->schedule == NULL)
    return;
  enable = cur == NULL || core_feeder_is_held (cur)
           || datetime_to_us (alv_playlist_item_get_start (core_feeder_get_item (next)))
              - alv_schedule_now (self->schedule) <= PREFETCH_LEAD;
  alv_swarm_set_active (core_feeder_get_swarm (next), enable);
}

/* --- the swarms on the peer port (the share table: core-shares.c) --- */

static void
on_share_expired (gpointer user_data)
{
  update_idle (user_data);
}

static AlvSwarm *
find_swarm (CoreService *self,
            const char  *urn)
{
  if (self->feeder != NULL && core_feeder_get_swarm (self->feeder) != NULL
      && g_strcmp0 (core_feeder_get_urn (self->feeder), urn) == 0)
    return core_feeder_get_swarm (self->feeder);
  if (self->next_feeder != NULL && core_feeder_get_swarm (self->next_feeder) != NULL
      && g_strcmp0 (core_feeder_get_urn (self->next_feeder), urn) == 0)
    return core_feeder_get_swarm (self->next_feeder);
  return core_shares_find (self->shares, urn);
}

static GPtrArray *
peer_alt_func (const char *urn,
               gpointer    user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  return swarm != NULL ? alv_swarm_get_shareable_peers (swarm) : NULL;
}

static AlvRangeSet *
peer_pending_func (const char *urn,
                   gpointer    user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  return swarm != NULL ? alv_swarm_get_origin_pending (swarm) : NULL;
}

static guint
peer_holders_func (const char *urn,
                   guint64     offset,
                   gpointer    user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  return swarm != NULL ? alv_swarm_count_holders (swarm, offset) : G_MAXUINT;
}

static void
peer_seen_func (const char         *urn,
                GInetSocketAddress *address,
                gpointer            user_data)
{
  AlvSwarm *swarm = find_swarm (user_data, urn);

  if (swarm != NULL)
    alv_swarm_add_requester (swarm, address);
}

/* The swarm of the item playing, if it is swarmed. */
static AlvSwarm *
playing_swarm (CoreService *self)
{
  return self->feeder != NULL ? core_feeder_get_swarm (self->feeder) : NULL;
}

static void
collect_swarm_stats (CoreService   *self,
                     AlvSwarmStats *total)
{
  AlvSwarmStats st;

  /* the swarms already stopped, the feeders', the ones still shared */
  core_shares_get_done_stats (self->shares, total);
  if (self->feeder != NULL && core_feeder_get_swarm (self->feeder) != NULL)
    {
      alv_swarm_get_stats (core_feeder_get_swarm (self->feeder), &st);
      core_shares_sum_stats (total, &st);
    }
  if (self->next_feeder != NULL && core_feeder_get_swarm (self->next_feeder) != NULL)
    {
      alv_swarm_get_stats (core_feeder_get_swarm (self->next_feeder), &st);
      core_shares_sum_stats (total, &st);
    }
  core_shares_add_stats (self->shares, total);
}

/* The port peers are told to reach us on: the router's side of the
 * mapping when there is one, else the peer port itself. */
static guint16
announced_port (CoreService *self)
{
  guint16 external = self->port_map != NULL ? alv_port_map_get_external_port (self->port_map) : 0;

  if (self->peers == NULL)
    return 0;
  return external != 0 ? external : alv_peer_server_get_port (self->peers);
}

static void
on_port_map_changed (AlvPortMap  *map G_GNUC_UNUSED,
                     CoreService *self)
{
  guint16 port = announced_port (self);

  if (self->feeder != NULL && core_feeder_get_swarm (self->feeder) != NULL)
    alv_swarm_set_listen_port (core_feeder_get_swarm (self->feeder), port);
  if (self->next_feeder != NULL && core_feeder_get_swarm (self->next_feeder) != NULL)
    alv_swarm_set_listen_port (core_feeder_get_swarm (self->next_feeder), port);
  core_shares_set_listen_port (self->shares, port);
  update_statistics (self);
}

static void
start_port_map (CoreService *self)
{
  g_autoptr(GError) error = NULL;

  if (self->config.nat == ALV_NAT_OFF)
    return;
  self->port_map = alv_port_map_new (self->config.nat, alv_peer_server_get_port (self->peers));
  if (self->config.nat_gateway != NULL)
    {
      g_autofree char *addr = NULL;
      guint16 port;

      /* checked when the configuration was read */
      if (alv_nat_parse_router (self->config.nat_gateway, ALV_NATPMP_SERVER_PORT, &addr, &port, &error))
        alv_port_map_set_router (self->port_map, addr, port);
    }
  g_signal_connect (self->port_map, "changed", G_CALLBACK (on_port_map_changed), self);
  alv_port_map_start (self->port_map);
}

static gboolean
on_stats_timer (gpointer user_data)
{
  update_prefetch (user_data);
  update_rates (user_data);
  update_statistics (user_data);
  return G_SOURCE_CONTINUE;
}

static void
store_open_cb (GObject      *source G_GNUC_UNUSED,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GError) error = NULL;
  AlvBlockStore *store = alv_block_store_new_finish (result, &error);
  CoreService *self;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  self = user_data;
  self->store_opening = FALSE;
  if (store == NULL)
    g_message ("cannot open the cache, playing from the origin: %s", error->message);
  else
    {
      self->store = store;
      self->peers = alv_peer_server_new (store);
      if (self->config.upload_limit > 0)
        alv_peer_server_set_rate_limit (self->peers, self->config.upload_limit);
      alv_peer_server_set_max_connections_per_address (self->peers,
                                                       self->config.peer_connections_per_address);
      alv_peer_server_set_alt_func (self->peers, peer_alt_func, self, NULL);
      alv_peer_server_set_seen_func (self->peers, peer_seen_func, self);
      alv_peer_server_set_pending_func (self->peers, peer_pending_func, self);
      alv_peer_server_set_holders_func (self->peers, peer_holders_func, self);
      if (!alv_peer_server_listen (self->peers, self->config.peer_address, self->config.peer_port, &error))
        {
          g_message ("cannot open the peer port, downloading only: %s", error->message);
          g_clear_object (&self->peers);
        }
      else
        {
          g_debug ("peer port %u", alv_peer_server_get_port (self->peers));
          start_port_map (self);
        }
      core_shares_set_port (self->shares, self->store, self->peers);
    }
  if (self->feeder != NULL)
    core_feeder_store_opened (self->feeder, self->store, self->peers);
  if (self->next_feeder != NULL)
    core_feeder_store_opened (self->next_feeder, self->store, self->peers);
}

/* --- state ----------------------------------------------------------- */

static void
set_state (CoreService *self,
           AlvCoreState state,
           const char  *message)
{
  alv_core1_set_state (self->skeleton, alv_core_state_to_string (state));
  alv_core1_set_state_message (self->skeleton, message != NULL ? message : "");
}

static gboolean
same_item (AlvPlaylistItem *a,
           AlvPlaylistItem *b)
{
  return g_strcmp0 (alv_playlist_item_get_url (a), alv_playlist_item_get_url (b)) == 0 &&
         g_date_time_compare (alv_playlist_item_get_start (a), alv_playlist_item_get_start (b)) == 0;
}

/* The prefetched @f becomes the feeder playing, from @offset. */
static void
adopt_next_feeder (CoreService *self,
                   CoreFeeder  *f,
                   gint64       offset)
{
  self->feeder = f;
  core_feeder_adopt (f, offset);
}

static void
on_item_changed (AlvSchedule     *schedule,
                 AlvPlaylistItem *item,
                 gint64           offset,
                 gpointer         user_data)
{
  CoreService *self = user_data;

  /* a new item starts afresh */
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_step_ms = 0;
  if (item != NULL && self->feeder != NULL && core_feeder_get_handed_over (self->feeder) &&
      same_item (core_feeder_get_item (self->feeder), item))
    {
      /* in the stream already, from its start */
      core_feeder_slot_started (self->feeder);
      set_now_playing (self, item, offset);
      return;
    }
  g_clear_pointer (&self->feeder, core_feeder_free);
  set_now_playing (self, item, offset);
  if (item == NULL)
    {
      AlvPlaylistItem *next = alv_schedule_get_next_item (schedule);
      g_autofree char *msg = NULL;

      if (next != NULL)
        {
          g_autofree char *when = alv_time_format_w3cdtf (alv_playlist_item_get_start (next));

          msg = g_strdup_printf (_("Nothing scheduled until %s"), when);
        }
      else
        msg = g_strdup (_("The playlist has run out"));
      set_state (self, ALV_CORE_STATE_GAP, msg);
      return;
    }
  g_debug ("now playing %s from %" G_GINT64_FORMAT " µs", alv_playlist_item_get_url (item), offset);
  set_state (self, ALV_CORE_STATE_BUFFERING, "");
  if (self->next_feeder != NULL && same_item (core_feeder_get_item (self->next_feeder), item))
    {
      adopt_next_feeder (self, g_steal_pointer (&self->next_feeder), offset);
      return;
    }
  g_clear_pointer (&self->next_feeder, core_feeder_free);
  self->feeder = feeder_new (self, item, offset, FALSE);
}

static void
on_prefetch (AlvSchedule     *schedule G_GNUC_UNUSED,
             AlvPlaylistItem *item,
             gpointer         user_data)
{
  CoreService *self = user_data;

  g_debug ("prefetching %s", alv_playlist_item_get_url (item));
  g_clear_pointer (&self->next_feeder, core_feeder_free);
  self->next_feeder = feeder_new (self, item, 0, TRUE);
}

static void
on_playlist_updated (AlvSchedule *schedule G_GNUC_UNUSED,
                     AlvPlaylist *pl,
                     gpointer     user_data)
{
  CoreService *self = user_data;
  const char *title = alv_playlist_get_title (pl);

  alv_core1_set_station_name (self->skeleton, title != NULL ? title : "");
  if (self->stream != NULL)
    g_object_set (self->stream, "name", title, "url", alv_playlist_get_link (pl),
                  "description", alv_playlist_get_description (pl), NULL);
}

static void
on_schedule_error (AlvSchedule *schedule G_GNUC_UNUSED,
                   GError      *error,
                   gpointer     user_data G_GNUC_UNUSED)
{
  /* the last good playlist stays in force; the state is not touched */
  g_message ("playlist refresh failed: %s", error->message);
}

/* Gives up the station being tuned (its callers are answered by whoever
 * calls this). */
static void
cancel_tuning (CoreService *self)
{
  g_cancellable_cancel (self->tune_cancellable);
  g_clear_object (&self->tune_cancellable);
  g_clear_object (&self->tuning);
}

static void
teardown_station (CoreService *self)
{
  cancel_tuning (self);
  if (self->holders != NULL)
    g_hash_table_remove_all (self->holders);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->retry_step_ms = 0;
  g_clear_pointer (&self->feeder, core_feeder_free);
  g_clear_pointer (&self->next_feeder, core_feeder_free);
  if (self->schedule != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->schedule, self);
      alv_schedule_stop (self->schedule);
      g_clear_object (&self->schedule);
    }
  if (self->stream != NULL)
    {
      alv_stream_server_stop (self->stream);
      g_clear_object (&self->stream);
    }
  g_clear_object (&self->gateway);
  alv_core1_set_station (self->skeleton, "");
  alv_core1_set_station_name (self->skeleton, "");
  alv_core1_set_stream_url (self->skeleton, "");
  set_now_playing (self, NULL, 0);
}

/* The gateway of a station: the configured one, else the one at the
 * playlist's own origin (the gateway's built-in web server serves both, and
 * the playlist format names no gateway); NULL when swarming is off. */
static char *
station_gateway_url (CoreService *self,
                     const char  *station_url)
{
  g_autoptr(GUri) uri = NULL;

  if (g_strcmp0 (self->config.gateway, CORE_GATEWAY_NONE) == 0)
    return NULL;
  if (self->config.gateway != NULL && self->config.gateway[0] != '\0')
    return g_strdup (self->config.gateway);
  uri = g_uri_parse (station_url, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL)
    return NULL;
  return g_uri_join (G_URI_FLAGS_NONE, g_uri_get_scheme (uri), NULL, g_uri_get_host (uri),
                     g_uri_get_port (uri), "/", NULL, NULL);
}

static void
set_station_gateway (CoreService *self,
                     const char  *station_url)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *url = station_gateway_url (self, station_url);

  g_clear_object (&self->gateway);
  if (url == NULL)
    return;
  self->gateway = alv_gateway_client_new (self->session, url, &error);
  if (self->gateway == NULL)
    g_message ("ignoring the gateway %s, playing from the origin: %s", url, error->message);
  else
    g_debug ("gateway %s", url);
}

/* --- who holds the station ------------------------------------------ */

/* Several clients (two players, say) may play one station: each Tune
 * adds its caller as a holder, a Stop releases the caller's hold and
 * stops the station only when no other holder is left on the bus.  A
 * holder that leaves the bus (a crashed player, a one-shot gdbus call)
 * holds nothing. */
static void
on_holder_vanished (GDBusConnection *connection G_GNUC_UNUSED,
                    const char      *name,
                    gpointer         user_data)
{
  CoreService *self = user_data;

  g_hash_table_remove (self->holders, name);
}

static void
unwatch_name (gpointer data)
{
  g_bus_unwatch_name (GPOINTER_TO_UINT (data));
}

static void
add_holder (CoreService           *self,
            GDBusMethodInvocation *invocation)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);
  guint id;

  if (sender == NULL || self->connection == NULL || g_hash_table_contains (self->holders, sender))
    return;
  id = g_bus_watch_name_on_connection (self->connection, sender, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                       NULL, on_holder_vanished, self, NULL);
  g_hash_table_insert (self->holders, g_strdup (sender), GUINT_TO_POINTER (id));
}

static void
fail_pending (CoreService  *self,
              const GError *error)
{
  g_autoptr(GPtrArray) pending = g_steal_pointer (&self->pending_tunes);

  self->pending_tunes = g_ptr_array_new ();
  for (guint i = 0; i < pending->len; i++)
    g_dbus_method_invocation_return_gerror (g_ptr_array_index (pending, i), error);
}

static void
tune_refresh_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(CoreService) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) pending = NULL;
  g_autofree char *uri = NULL;
  AlvSchedule *schedule = ALV_SCHEDULE (source);
  const char *url = alv_schedule_get_url (schedule);

  if (!alv_schedule_refresh_finish (schedule, result, NULL, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;   /* superseded: whoever cancelled answered the callers */
      if (schedule != self->tuning)
        return;
      cancel_tuning (self);
      if (self->schedule == NULL)
        {
          teardown_station (self);
          set_state (self, ALV_CORE_STATE_ERROR, error->message);
        }
      else
        {
          /* the station playing plays on; only the caller hears of it */
          g_message ("cannot tune to %s (still playing %s): %s", url,
                     alv_schedule_get_url (self->schedule), error->message);
        }
      update_idle (self);
      fail_pending (self, error);
      return;
    }
  if (schedule != self->tuning)
    return;

  /* the new station's playlist is here: it replaces the one playing */
  schedule = g_steal_pointer (&self->tuning);
  g_clear_object (&self->tune_cancellable);
  teardown_station (self);
  self->schedule = schedule;
  g_signal_connect (self->schedule, "item-changed", G_CALLBACK (on_item_changed), self);
  g_signal_connect (self->schedule, "playlist-updated", G_CALLBACK (on_playlist_updated), self);
  g_signal_connect (self->schedule, "prefetch", G_CALLBACK (on_prefetch), self);
  g_signal_connect (self->schedule, "error", G_CALLBACK (on_schedule_error), self);
  alv_core1_set_station (self->skeleton, url);
  set_station_gateway (self, url);

  self->stream = alv_stream_server_new ("/stream");
  on_playlist_updated (schedule, alv_schedule_get_playlist (schedule), self);
  if (!alv_stream_server_start (self->stream, self->config.stream_port, &error))
    {
      GError *e = g_error_new (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                               _("Cannot start the local stream: %s"), error->message);

      teardown_station (self);
      set_state (self, ALV_CORE_STATE_ERROR, e->message);
      update_idle (self);
      fail_pending (self, e);
      g_error_free (e);
      return;
    }
  uri = alv_stream_server_get_uri (self->stream);
  alv_core1_set_stream_url (self->skeleton, uri);
  set_state (self, ALV_CORE_STATE_RESOLVING, "");
  alv_schedule_start (schedule);

  pending = g_steal_pointer (&self->pending_tunes);
  self->pending_tunes = g_ptr_array_new ();
  /* the new station is held by those who asked for it */
  g_hash_table_remove_all (self->holders);
  for (guint i = 0; i < pending->len; i++)
    {
      add_holder (self, g_ptr_array_index (pending, i));
      alv_core1_complete_tune (self->skeleton, g_ptr_array_index (pending, i), uri);
    }
}

static gboolean
on_handle_tune (AlvCore1              *skeleton,
                GDBusMethodInvocation *invocation,
                const char            *url,
                gpointer               user_data)
{
  CoreService *self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvSchedule) schedule = NULL;

  if (!alv_schedule_check_url (url, &error))
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (self->tuning != NULL && g_strcmp0 (alv_schedule_get_url (self->tuning), url) == 0)
    {
      g_ptr_array_add (self->pending_tunes, invocation);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* another station than the one being tuned: its callers lose */
  if (self->tuning != NULL)
    {
      g_autoptr(GError) e = g_error_new_literal (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                                                 _("Tuned to another station meanwhile"));

      cancel_tuning (self);
      fail_pending (self, e);
    }
  if (self->schedule != NULL && g_strcmp0 (alv_schedule_get_url (self->schedule), url) == 0)
    {
      add_holder (self, invocation);
      alv_core1_complete_tune (skeleton, invocation, alv_core1_get_stream_url (skeleton));
      update_idle (self);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  schedule = alv_schedule_new (url, self->session, &error);
  if (schedule == NULL)
    {
      g_dbus_method_invocation_return_gerror (invocation, error);
      update_idle (self);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* the station playing (if any) plays on until the new playlist is
   * here: a Tune that fails loses nothing */
  self->tuning = g_steal_pointer (&schedule);
  self->tune_cancellable = g_cancellable_new ();
  g_ptr_array_add (self->pending_tunes, invocation);
  if (self->schedule == NULL)
    {
      alv_core1_set_station (skeleton, url);
      set_state (self, ALV_CORE_STATE_RESOLVING, "");
    }
  update_idle (self);
  alv_schedule_refresh_async (self->tuning, self->tune_cancellable, tune_refresh_cb,
                              g_object_ref (self));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
on_handle_stop (AlvCore1              *skeleton,
                GDBusMethodInvocation *invocation,
                gpointer               user_data)
{
  CoreService *self = user_data;

  if (self->schedule == NULL && self->tuning == NULL)
    {
      g_dbus_method_invocation_return_error_literal (invocation, ALV_CORE_ERROR,
                                                     ALV_CORE_ERROR_NOT_TUNED,
                                                     _("No station is tuned"));
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  /* another client still plays the station: only the caller lets go */
  {
    const char *sender = g_dbus_method_invocation_get_sender (invocation);

    if (sender != NULL)
      g_hash_table_remove (self->holders, sender);
  }
  if (self->schedule != NULL && self->tuning == NULL && g_hash_table_size (self->holders) > 0)
    {
      g_debug ("Stop: %u other client(s) still play the station", g_hash_table_size (self->holders));
      alv_core1_complete_stop (skeleton, invocation);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (self->pending_tunes->len > 0)
    {
      g_autoptr(GError) e = g_error_new_literal (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                                                 _("Stopped before the station was tuned"));
      fail_pending (self, e);
    }
  teardown_station (self);
  set_state (self, ALV_CORE_STATE_IDLE, "");
  update_idle (self);
  give_back_memory_soon (self);
  alv_core1_complete_stop (skeleton, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
core_service_dispose (GObject *object)
{
  CoreService *self = CORE_SERVICE (object);

  g_clear_handle_id (&self->idle_id, g_source_remove);
  g_clear_handle_id (&self->stats_id, g_source_remove);
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->give_back_id, g_source_remove);
  g_cancellable_cancel (self->cancellable);
  if (self->pending_tunes != NULL && self->pending_tunes->len > 0)
    {
      g_autoptr(GError) e = g_error_new_literal (ALV_CORE_ERROR, ALV_CORE_ERROR_FAILED,
                                                 _("The daemon is shutting down"));
      fail_pending (self, e);
    }
  if (self->skeleton != NULL)
    {
      teardown_station (self);
      core_service_unexport (self);
      g_signal_handlers_disconnect_by_data (self->skeleton, self);
      g_clear_object (&self->skeleton);
    }
  if (self->shares != NULL)
    core_shares_clear (self->shares);
  if (self->peers != NULL)
    {
      alv_peer_server_set_alt_func (self->peers, NULL, NULL, NULL);
      alv_peer_server_set_seen_func (self->peers, NULL, NULL);
      alv_peer_server_set_pending_func (self->peers, NULL, NULL);
      alv_peer_server_set_holders_func (self->peers, NULL, NULL);
      alv_peer_server_disconnect (self->peers);
      g_clear_object (&self->peers);
    }
  if (self->port_map != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->port_map, self);
      g_clear_object (&self->port_map);
    }
  g_clear_object (&self->store);
  g_clear_object (&self->gateway);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->session);
  G_OBJECT_CLASS (core_service_parent_class)->dispose (object);
}

static void
core_service_finalize (GObject *object)
{
  CoreService *self = CORE_SERVICE (object);

  g_clear_pointer (&self->pending_tunes, g_ptr_array_unref);
  g_clear_pointer (&self->holders, g_hash_table_unref);
  g_clear_pointer (&self->shares, core_shares_free);
  core_config_clear (&self->config);
  G_OBJECT_CLASS (core_service_parent_class)->finalize (object);
}

static void
core_service_class_init (CoreServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = core_service_dispose;
  object_class->finalize = core_service_finalize;

  signals[SIGNAL_IDLE_EXIT] =
    g_signal_new ("idle-exit", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
core_service_init (CoreService *self)
{
  self->pending_tunes = g_ptr_array_new ();
  self->holders = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, unwatch_name);
  self->shares = core_shares_new (on_share_expired, self);
  self->cancellable = g_cancellable_new ();
}

CoreService *
core_service_new (const CoreConfig *config)
{
  CoreService *self = g_object_new (CORE_TYPE_SERVICE, NULL);

  self->config = *config;
  self->config.gateway = g_strdup (config->gateway);
  self->config.peer_address = g_strdup (config->peer_address != NULL ? config->peer_address : "0.0.0.0");
  self->config.nat_gateway = g_strdup (config->nat_gateway);
  self->session = soup_session_new_with_options ("timeout", 30,
                                                 "user-agent", PACKAGE_NAME "/" PACKAGE_VERSION " ",
                                                 NULL);
  self->skeleton = alv_core1_skeleton_new ();
  g_clear_object (&self->gateway);
  alv_core1_set_station (self->skeleton, "");
  alv_core1_set_station_name (self->skeleton, "");
  alv_core1_set_stream_url (self->skeleton, "");
  set_state (self, ALV_CORE_STATE_IDLE, "");
  set_now_playing (self, NULL, 0);
  update_statistics (self);
  g_signal_connect (self->skeleton, "handle-tune", G_CALLBACK (on_handle_tune), self);
  g_signal_connect (self->skeleton, "handle-stop", G_CALLBACK (on_handle_stop), self);
  if (g_strcmp0 (self->config.gateway, CORE_GATEWAY_NONE) != 0)
    {
      g_autofree char *dir = g_build_filename (g_get_user_cache_dir (), "alluvium", NULL);

      self->store_opening = TRUE;
      alv_block_store_new_async (dir, self->config.cache_size, self->cancellable,
                                 store_open_cb, self);
    }
  /* Statistics change with every chunk; they are published once a
   * second, on the swarm path and the direct one alike (a D-Bus signal
   * per 16 KiB was what the direct path sent) */
  self->stats_id = g_timeout_add_seconds (1, on_stats_timer, self);
  update_idle (self);
  return self;
}

gboolean
core_service_export (CoreService     *service,
                     GDBusConnection *connection,
                     GError         **error)
{
  g_return_val_if_fail (CORE_IS_SERVICE (service), FALSE);

  if (!g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (service->skeleton),
                                         connection, ALV_CORE_OBJECT_PATH, error))
    return FALSE;
  g_set_object (&service->connection, connection);
  return TRUE;
}

void
core_service_unexport (CoreService *service)
{
  g_return_if_fail (CORE_IS_SERVICE (service));

  if (service->connection == NULL)
    return;
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (service->skeleton));
  g_clear_object (&service->connection);
}

static void
release_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!alv_port_map_release_finish (ALV_PORT_MAP (source), result, &error))
    g_debug ("the mapping of the peer port was not removed: %s", error->message);
  g_task_return_boolean (task, TRUE);
}

void
core_service_release_async (CoreService         *service,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (CORE_IS_SERVICE (service));

  task = g_task_new (service, NULL, callback, user_data);
  g_task_set_source_tag (task, core_service_release_async);
  if (service->port_map == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  /* the swarms keep the mapped port: they announce it once more when
   * they stop, rather than the internal one during the removal */
  g_signal_handlers_disconnect_by_data (service->port_map, service);
  alv_port_map_release_async (service->port_map, NULL, release_cb, g_steal_pointer (&task));
}

void
core_service_release_finish (CoreService  *service,
                             GAsyncResult *result)
{
  g_return_if_fail (g_task_is_valid (result, service));
  g_task_propagate_boolean (G_TASK (result), NULL);
}
