/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One connection of the gateway to a Redis server, driven by the main
 * loop: hiredis's asynchronous context, its socket watched by a GSource
 * of our own, commands pipelined, replies handed to callbacks.  The
 * connection comes back by itself after Redis went away (with backoff),
 * and a Redis that stops answering is dropped after a while, so nothing
 * ever waits on it for long: a command issued while the connection is
 * down is refused at once and the caller answers from what it has.
 */
#pragma once

#include <glib.h>
#include <hiredis/hiredis.h>

G_BEGIN_DECLS

/* Where Redis is: redis://HOST[:PORT][/DB] or unix:/PATH[?db=DB]. */
typedef struct
{
  char *host;                   /* NULL for a unix socket */
  guint port;
  char *path;                   /* unix socket, or NULL */
  guint db;
} GatewayRedisAddress;

gboolean gateway_redis_address_parse (const char          *text,
                                      GatewayRedisAddress *address,
                                      GError             **error);
void     gateway_redis_address_clear (GatewayRedisAddress *address);

/* The next wait before reconnecting, after @previous_ms (0: first try):
 * 100 ms doubling up to 5 s. */
guint    gateway_redis_backoff_next  (guint                previous_ms);

typedef struct _GatewayRedis GatewayRedis;

/* @up: the connection is usable (TRUE) or was lost (FALSE); called on
 * every change, on the main context. */
typedef void (*GatewayRedisStateFunc) (GatewayRedis *redis,
                                       gboolean      up,
                                       gpointer      user_data);
/* @reply: NULL when the connection was lost before the answer. */
typedef void (*GatewayRedisReplyFunc) (redisReply *reply,
                                       gpointer    user_data);

/* Starts connecting at once; never blocks. */
GatewayRedis *gateway_redis_new          (const GatewayRedisAddress *address,
                                          GatewayRedisStateFunc      state_func,
                                          gpointer                   user_data);
/* Pending callbacks run with a NULL reply before it returns. */
void          gateway_redis_free         (GatewayRedis  *redis);
gboolean      gateway_redis_is_up        (GatewayRedis  *redis);
/* "redis://127.0.0.1:6379/0" or "unix:/run/redis.sock?db=0" */
const char   *gateway_redis_get_name     (GatewayRedis  *redis);
/* Why the connection is down (nullable). */
const char   *gateway_redis_get_error    (GatewayRedis  *redis);

/* Sends a command (binary-safe arguments).  FALSE, and @func is not
 * called, when the connection is down; otherwise @func is called exactly
 * once.  @func may be NULL: the reply is not wanted. */
gboolean      gateway_redis_command      (GatewayRedis          *redis,
                                          GatewayRedisReplyFunc  func,
                                          gpointer               user_data,
                                          int                    argc,
                                          const char           **argv,
                                          const size_t          *argvlen);

G_END_DECLS
