/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's Redis connection.  States: resolving the host name (with
 * GResolver, since hiredis would block in getaddrinfo), connecting
 * (hiredis's non-blocking connect), selecting the database, up; and down,
 * waiting for the next try.  Every pending command counts; when Redis
 * has not answered for REPLY_TIMEOUT_MS while some are pending, the
 * connection is dropped (hiredis then calls every pending callback with
 * no reply) and made again: a stopped or hung Redis costs a request at
 * most that long, never the main loop.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-redis.h"

#include <string.h>
#include <gio/gio.h>
#include <glib/gi18n-lib.h>
#include <hiredis/async.h>

#include "alv-error.h"
#include "gateway-redis-source.h"

#define DEFAULT_PORT 6379
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000
#define REPLY_TIMEOUT_MS 2000
#define WATCHDOG_MS 500
/* No answer the gateway asks for has more elements (a sample of peers is
 * at most 2 × 1000); hiredis 1 can refuse larger ones before allocating. */
#define MAX_REPLY_ELEMENTS 4096

struct _GatewayRedis
{
  GatewayRedisAddress address;
  char *name;
  GatewayRedisStateFunc state_func;
  gpointer user_data;
  redisAsyncContext *ac;        /* while connecting or up */
  GCancellable *resolving;      /* while resolving the host */
  gboolean up;
  char *error;
  guint backoff_ms;
  guint retry_id;
  guint watchdog_id;
  guint connect_timeout_id;     /* while connecting */
  guint n_pending;
  gint64 last_progress;         /* monotonic µs: last reply, or first pending */
  gboolean freeing;
};

typedef struct
{
  GatewayRedis *redis;
  GatewayRedisReplyFunc func;
  gpointer user_data;
} Pending;

static void connect_now (GatewayRedis *redis);

/* ------------------------------------------------------------------ */
/* Addresses                                                           */

gboolean
gateway_redis_address_parse (const char          *text,
                             GatewayRedisAddress *address,
                             GError             **error)
{
  memset (address, 0, sizeof *address);
  address->port = DEFAULT_PORT;
  if (g_str_has_prefix (text, "unix:"))
    {
      const char *path = text + strlen ("unix:");
      const char *query = strchr (path, '?');
      guint64 db = 0;

      if (g_str_has_prefix (path, "//"))
        path += 2;
      if (query != NULL && (!g_str_has_prefix (query, "?db=")
                            || !g_ascii_string_to_unsigned (query + 4, 10, 0, 1000, &db, NULL)))
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("“%s”: the only option of a unix: address is ?db=NUMBER"), text);
          return FALSE;
        }
      if (*path != '/')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("“%s”: a unix: address names an absolute socket path"), text);
          return FALSE;
        }
      address->path = query ? g_strndup (path, query - path) : g_strdup (path);
      address->db = (guint) db;
      return TRUE;
    }
  if (g_str_has_prefix (text, "redis://"))
    {
      g_autoptr(GUri) uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
      const char *path = uri ? g_uri_get_path (uri) : NULL;
      guint64 db = 0;

      if (uri == NULL || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("“%s” is not a redis://HOST:PORT/DB address"), text);
          return FALSE;
        }
      if (g_uri_get_userinfo (uri) != NULL || g_uri_get_query (uri) != NULL)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                       _("“%s”: passwords and options in the Redis address are not supported"),
                       text);
          return FALSE;
        }
      if (path != NULL && *path != '\0' && strcmp (path, "/") != 0
          && !g_ascii_string_to_unsigned (path + 1, 10, 0, 1000, &db, NULL))
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("“%s”: the path of a Redis address is a database number"), text);
          return FALSE;
        }
      address->host = g_strdup (g_uri_get_host (uri));
      if (g_uri_get_port (uri) > 0)
        address->port = (guint) g_uri_get_port (uri);
      address->db = (guint) db;
      return TRUE;
    }
  g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
               _("“%s”: the store is “embedded”, redis://HOST:PORT[/DB] or unix:/PATH"), text);
  return FALSE;
}

void
gateway_redis_address_clear (GatewayRedisAddress *address)
{
  g_clear_pointer (&address->host, g_free);
  g_clear_pointer (&address->path, g_free);
}

guint
gateway_redis_backoff_next (guint previous_ms)
{
  if (previous_ms == 0)
    return BACKOFF_FIRST_MS;
  return MIN (previous_ms * 2, BACKOFF_MAX_MS);
}

/* ------------------------------------------------------------------ */
/* Connection states                                                   */

static gboolean
retry_cb (gpointer user_data)
{
  GatewayRedis *redis = user_data;

  redis->retry_id = 0;
  connect_now (redis);
  return G_SOURCE_REMOVE;
}

/* The connection is gone (or never came): tell, and try again later. */
static void
went_down (GatewayRedis *redis,
           const char   *why)
{
  gboolean was_up = redis->up;

  redis->ac = NULL;
  redis->up = FALSE;
  redis->n_pending = 0;
  g_clear_handle_id (&redis->watchdog_id, g_source_remove);
  g_clear_handle_id (&redis->connect_timeout_id, g_source_remove);
  if (why != NULL)
    {
      g_free (redis->error);
      redis->error = g_strdup (why);
    }
  if (redis->freeing)
    return;
  redis->backoff_ms = gateway_redis_backoff_next (redis->backoff_ms);
  if (was_up)
    g_message (_("warning: lost Redis at %s (%s): answering from this gateway's memory "
                 "until it is back"), redis->name, redis->error);
  else
    g_debug ("Redis at %s: %s; trying again in %u ms", redis->name, redis->error,
             redis->backoff_ms);
  if (redis->retry_id == 0)
    redis->retry_id = g_timeout_add (redis->backoff_ms, retry_cb, redis);
  if (was_up && redis->state_func != NULL)
    redis->state_func (redis, FALSE, redis->user_data);
}

static void
disconnect_cb (const redisAsyncContext *ac,
               int                      status G_GNUC_UNUSED)
{
  GatewayRedis *redis = ac->data;

  if (redis == NULL)
    return;
  went_down (redis, ac->errstr[0] != '\0' ? ac->errstr : _("the connection was closed"));
}

static gboolean
watchdog_cb (gpointer user_data)
{
  GatewayRedis *redis = user_data;

  if (redis->ac != NULL && redis->n_pending > 0
      && g_get_monotonic_time () - redis->last_progress > REPLY_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND)
    {
      redisAsyncContext *ac = redis->ac;
      g_autofree char *why = g_strdup_printf (_("no answer for %u ms"), REPLY_TIMEOUT_MS);

      /* a hung Redis never lets a polite disconnection finish: free the
       * context (not from a hiredis callback, so it goes at once; the
       * pending callbacks run with no reply) */
      ac->data = NULL;
      redis->ac = NULL;
      redisAsyncFree (ac);
      redis->watchdog_id = 0;
      went_down (redis, why);
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* A Redis that accepts (its kernel does, even when it is stopped) but
 * does not answer the first command is given up on, as a hung one is. */
static gboolean
connect_timeout_cb (gpointer user_data)
{
  GatewayRedis *redis = user_data;
  redisAsyncContext *ac = redis->ac;
  g_autofree char *why = g_strdup_printf (_("no answer for %u ms"), REPLY_TIMEOUT_MS);

  redis->connect_timeout_id = 0;
  if (ac != NULL)
    {
      ac->data = NULL;
      redis->ac = NULL;
      redisAsyncFree (ac);
    }
  went_down (redis, why);
  return G_SOURCE_REMOVE;
}

static void
selected_cb (redisAsyncContext *ac,
             void              *r,
             void              *privdata G_GNUC_UNUSED)
{
  GatewayRedis *redis = ac->data;
  redisReply *reply = r;

  if (redis == NULL || reply == NULL)
    return;
  if (reply->type == REDIS_REPLY_ERROR)
    {
      g_free (redis->error);
      redis->error = g_strndup (reply->str, reply->len);
      redisAsyncDisconnect (ac);
      return;
    }
  redis->up = TRUE;
  redis->backoff_ms = 0;
  g_clear_handle_id (&redis->connect_timeout_id, g_source_remove);
  redis->last_progress = g_get_monotonic_time ();
  g_clear_pointer (&redis->error, g_free);
  g_message (_("connected to Redis at %s"), redis->name);
  if (redis->watchdog_id == 0)
    redis->watchdog_id = g_timeout_add (WATCHDOG_MS, watchdog_cb, redis);
  if (redis->state_func != NULL)
    redis->state_func (redis, TRUE, redis->user_data);
}

static void
connect_cb (const redisAsyncContext *cac,
            int                      status)
{
  redisAsyncContext *ac = (redisAsyncContext *) cac;
  GatewayRedis *redis = ac->data;
  g_autofree char *db = NULL;

  if (redis == NULL)
    return;
  if (status != REDIS_OK)
    {
      /* hiredis frees the context after this, without a disconnect call */
      ac->data = NULL;
      went_down (redis, ac->errstr[0] != '\0' ? ac->errstr : _("cannot connect"));
      return;
    }
  /* a PING when there is no database to select: up once Redis answers */
  db = g_strdup_printf ("%u", redis->address.db);
  if (redis->address.db != 0)
    redisAsyncCommand (ac, selected_cb, NULL, "SELECT %s", db);
  else
    redisAsyncCommand (ac, selected_cb, NULL, "PING");
}

static void
connect_to (GatewayRedis *redis,
            const char   *ip)
{
  redisAsyncContext *ac = redis->address.path != NULL
                          ? redisAsyncConnectUnix (redis->address.path)
                          : redisAsyncConnect (ip, (int) redis->address.port);

  if (ac == NULL || ac->err != 0)
    {
      g_autofree char *why = g_strdup (ac ? ac->errstr : _("out of memory"));

      if (ac != NULL)
        redisAsyncFree (ac);
      went_down (redis, why);
      return;
    }
  ac->data = redis;
  redis->ac = ac;
#if HIREDIS_MAJOR >= 1
  ac->c.reader->maxelements = MAX_REPLY_ELEMENTS;
#endif
  redis->connect_timeout_id = g_timeout_add (REPLY_TIMEOUT_MS, connect_timeout_cb, redis);
  gateway_redis_source_attach (ac);
  redisAsyncSetDisconnectCallback (ac, disconnect_cb);
  redisAsyncSetConnectCallback (ac, connect_cb);
}

static void
resolved_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GatewayRedis *redis = user_data;
  g_autoptr(GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), result, &error);
  g_autofree char *ip = NULL;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  g_clear_object (&redis->resolving);
  if (addresses == NULL)
    {
      went_down (redis, error->message);
      return;
    }
  ip = g_inet_address_to_string (addresses->data);
  g_resolver_free_addresses (addresses);
  connect_to (redis, ip);
}

static void
connect_now (GatewayRedis *redis)
{
  g_autoptr(GInetAddress) literal = NULL;

  if (redis->address.path != NULL)
    {
      connect_to (redis, NULL);
      return;
    }
  literal = g_inet_address_new_from_string (redis->address.host);
  if (literal != NULL)
    {
      connect_to (redis, redis->address.host);
      return;
    }
  {
    g_autoptr(GResolver) resolver = g_resolver_get_default ();

    redis->resolving = g_cancellable_new ();
    g_resolver_lookup_by_name_async (resolver, redis->address.host, redis->resolving,
                                     resolved_cb, redis);
  }
}

/* ------------------------------------------------------------------ */
/* Public                                                              */

GatewayRedis *
gateway_redis_new (const GatewayRedisAddress *address,
                   GatewayRedisStateFunc      state_func,
                   gpointer                   user_data)
{
  GatewayRedis *redis = g_new0 (GatewayRedis, 1);

  redis->address.host = g_strdup (address->host);
  redis->address.port = address->port;
  redis->address.path = g_strdup (address->path);
  redis->address.db = address->db;
  if (address->path != NULL)
    redis->name = g_strdup_printf ("unix:%s?db=%u", address->path, address->db);
  else
    redis->name = g_strdup_printf (strchr (address->host, ':') ? "redis://[%s]:%u/%u"
                                   : "redis://%s:%u/%u", address->host, address->port,
                                   address->db);
  redis->state_func = state_func;
  redis->user_data = user_data;
  redis->error = g_strdup (_("connecting"));
  connect_now (redis);
  return redis;
}

void
gateway_redis_free (GatewayRedis *redis)
{
  if (redis == NULL)
    return;
  redis->freeing = TRUE;
  if (redis->resolving != NULL)
    {
      g_cancellable_cancel (redis->resolving);
      g_clear_object (&redis->resolving);
    }
  /* what is queued (an unlock, a last write) goes out if the socket
   * takes it now, without waiting: a gateway that stops does not leave
   * its locks behind for their TTL.  A write error frees the context
   * (disconnect_cb clears redis->ac). */
  if (redis->up && redis->ac != NULL)
    redisAsyncHandleWrite (redis->ac);
  if (redis->ac != NULL)
    {
      redisAsyncContext *ac = redis->ac;

      /* pending callbacks run now, with no reply */
      ac->data = NULL;
      redis->ac = NULL;
      redisAsyncFree (ac);
    }
  g_clear_handle_id (&redis->retry_id, g_source_remove);
  g_clear_handle_id (&redis->watchdog_id, g_source_remove);
  g_clear_handle_id (&redis->connect_timeout_id, g_source_remove);
  gateway_redis_address_clear (&redis->address);
  g_free (redis->name);
  g_free (redis->error);
  g_free (redis);
}

gboolean
gateway_redis_is_up (GatewayRedis *redis)
{
  return redis->up;
}

const char *
gateway_redis_get_name (GatewayRedis *redis)
{
  return redis->name;
}

const char *
gateway_redis_get_error (GatewayRedis *redis)
{
  return redis->up ? NULL : redis->error;
}

static void
reply_cb (redisAsyncContext *ac G_GNUC_UNUSED,
          void              *reply,
          void              *privdata)
{
  Pending *p = privdata;

  /* after a disconnection went_down() zeroed the count; the callbacks
   * hiredis runs then have no reply */
  if (reply != NULL && p->redis != NULL && p->redis->n_pending > 0)
    {
      p->redis->n_pending--;
      p->redis->last_progress = g_get_monotonic_time ();
    }
  if (p->func != NULL)
    p->func (reply, p->user_data);
  g_free (p);
}

gboolean
gateway_redis_command (GatewayRedis          *redis,
                       GatewayRedisReplyFunc  func,
                       gpointer               user_data,
                       int                    argc,
                       const char           **argv,
                       const size_t          *argvlen)
{
  Pending *p;

  if (!redis->up || redis->ac == NULL)
    return FALSE;
  p = g_new (Pending, 1);
  p->redis = redis;
  p->func = func;
  p->user_data = user_data;
  if (redisAsyncCommandArgv (redis->ac, reply_cb, p, argc, argv, argvlen) != REDIS_OK)
    {
      g_free (p);
      return FALSE;
    }
  if (redis->n_pending++ == 0)
    redis->last_progress = g_get_monotonic_time ();
  return TRUE;
}
