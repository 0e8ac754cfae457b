/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * hiredis drives its I/O through five hooks (add/del read, add/del
 * write, cleanup); here they set the events of one GPollFD, and the
 * source's dispatch calls redisAsyncHandleRead/Write.  Reading may free
 * the context (a disconnection): its cleanup hook clears our pointer, so
 * dispatch checks before writing.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-redis-source.h"

typedef struct
{
  GSource source;
  redisAsyncContext *ac;        /* NULL once hiredis freed it */
  GPollFD poll;
} RedisSource;

static gboolean
redis_source_prepare (GSource *source G_GNUC_UNUSED,
                      gint    *timeout)
{
  *timeout = -1;
  return FALSE;
}

static gboolean
redis_source_check (GSource *source)
{
  RedisSource *rs = (RedisSource *) source;

  return (rs->poll.revents & (rs->poll.events | G_IO_HUP | G_IO_ERR)) != 0;
}

static gboolean
redis_source_dispatch (GSource    *source,
                       GSourceFunc callback G_GNUC_UNUSED,
                       gpointer    user_data G_GNUC_UNUSED)
{
  RedisSource *rs = (RedisSource *) source;
  gushort revents = rs->poll.revents;

  rs->poll.revents = 0;
  if (rs->ac != NULL && (revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) != 0
      && (rs->poll.events & G_IO_IN) != 0)
    redisAsyncHandleRead (rs->ac);
  if (rs->ac != NULL && (revents & (G_IO_OUT | G_IO_HUP | G_IO_ERR)) != 0
      && (rs->poll.events & G_IO_OUT) != 0)
    redisAsyncHandleWrite (rs->ac);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs redis_source_funcs = {
  redis_source_prepare,
  redis_source_check,
  redis_source_dispatch,
  NULL, NULL, NULL,
};

static void
add_events (void   *data,
            gushort events)
{
  RedisSource *rs = data;

  rs->poll.events |= events;
}

static void
del_events (void   *data,
            gushort events)
{
  RedisSource *rs = data;

  rs->poll.events &= ~events;
}

static void add_read (void *data) { add_events (data, G_IO_IN); }
static void del_read (void *data) { del_events (data, G_IO_IN); }
static void add_write (void *data) { add_events (data, G_IO_OUT); }
static void del_write (void *data) { del_events (data, G_IO_OUT); }

static void
cleanup (void *data)
{
  RedisSource *rs = data;

  rs->ac = NULL;
  rs->poll.events = 0;
  g_source_remove_poll (&rs->source, &rs->poll);
  g_source_destroy (&rs->source);
  g_source_unref (&rs->source);
}

void
gateway_redis_source_attach (redisAsyncContext *ac)
{
  RedisSource *rs = (RedisSource *) g_source_new (&redis_source_funcs, sizeof (RedisSource));

  rs->ac = ac;
  rs->poll.fd = ac->c.fd;
  rs->poll.events = 0;
  g_source_add_poll (&rs->source, &rs->poll);
  g_source_set_static_name (&rs->source, "[alluvium] redis");
  g_source_attach (&rs->source, g_main_context_get_thread_default ());

  ac->ev.data = rs;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
}
