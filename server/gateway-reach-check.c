/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Connect-back checks over GSocketClient.  A check holds its own
 * cancellable and timeout source; freeing the checker cancels every
 * running check and detaches it, so a callback that comes afterwards
 * only frees its own state.  A connection that is set up is closed at
 * once: that it could be set up is the whole answer.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-reach-check.h"

#include "alv-ocn-headers.h"

typedef struct _Check Check;

struct _GatewayReachCheck
{
  GatewayReach *reach;
  GSocketClient *client;
  guint timeout_ms;
  GPtrArray *running;           /* Check, not owned */
};

struct _Check
{
  GatewayReachCheck *owner;     /* NULL once the checker is gone */
  GInetSocketAddress *target;
  GCancellable *cancellable;
  guint timeout_id;
};

static void check_start_queued (GatewayReachCheck *self);

static void
check_free (Check *c)
{
  g_clear_handle_id (&c->timeout_id, g_source_remove);
  g_clear_object (&c->target);
  g_clear_object (&c->cancellable);
  g_free (c);
}

static gboolean
check_timeout_cb (gpointer user_data)
{
  Check *c = user_data;

  c->timeout_id = 0;
  g_cancellable_cancel (c->cancellable);
  return G_SOURCE_REMOVE;
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Check *c = user_data;
  GatewayReachCheck *self = c->owner;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) conn = g_socket_client_connect_finish (G_SOCKET_CLIENT (source),
                                                                      result, &error);

  if (conn != NULL)
    (void) g_io_stream_close (G_IO_STREAM (conn), NULL, NULL);
  if (self == NULL)
    {
      check_free (c);
      return;
    }
  g_ptr_array_remove_fast (self->running, c);
  gateway_reach_done (self->reach, c->target, conn != NULL, g_get_monotonic_time ());
  {
    g_autofree char *key = alv_alt_format_address (c->target);

    g_debug ("connect-back to %s: %s", key,
             conn != NULL ? "reachable" : c->timeout_id == 0 ? "timed out" : error->message);
  }
  check_free (c);
  check_start_queued (self);
}

static void
check_start_queued (GatewayReachCheck *self)
{
  GInetSocketAddress *target;

  while ((target = gateway_reach_next (self->reach)) != NULL)
    {
      Check *c = g_new0 (Check, 1);

      c->owner = self;
      c->target = target;
      c->cancellable = g_cancellable_new ();
      c->timeout_id = g_timeout_add (self->timeout_ms, check_timeout_cb, c);
      g_ptr_array_add (self->running, c);
      g_socket_client_connect_async (self->client, G_SOCKET_CONNECTABLE (c->target),
                                     c->cancellable, connected_cb, c);
    }
}

GatewayReachCheck *
gateway_reach_check_new (GatewayReach *reach,
                         guint         timeout_ms)
{
  GatewayReachCheck *self = g_new0 (GatewayReachCheck, 1);

  self->reach = reach;
  self->timeout_ms = MAX (timeout_ms, 1);
  self->client = g_socket_client_new ();
  /* straight to the observed address: no proxy ever connects for us */
  g_socket_client_set_enable_proxy (self->client, FALSE);
  g_socket_client_set_timeout (self->client, (self->timeout_ms + 999) / 1000);
  self->running = g_ptr_array_new ();
  return self;
}

void
gateway_reach_check_free (GatewayReachCheck *self)
{
  if (self == NULL)
    return;
  for (guint i = 0; i < self->running->len; i++)
    {
      Check *c = self->running->pdata[i];

      c->owner = NULL;
      g_clear_handle_id (&c->timeout_id, g_source_remove);
      g_cancellable_cancel (c->cancellable);
    }
  g_ptr_array_unref (self->running);
  g_object_unref (self->client);
  gateway_reach_free (self->reach);
  g_free (self);
}

AlvReachable
gateway_reach_check_observe (GatewayReachCheck *self,
                             GInetAddress      *observed,
                             guint16            port)
{
  AlvReachable state = gateway_reach_observe (self->reach, observed, port,
                                                   g_get_monotonic_time ());

  check_start_queued (self);
  return state;
}

AlvReachable
gateway_reach_check_lookup (GatewayReachCheck *self,
                            const char        *key)
{
  return gateway_reach_lookup (self->reach, key, g_get_monotonic_time ());
}

GatewayReach *
gateway_reach_check_get_policy (GatewayReachCheck *self)
{
  return self->reach;
}

void
gateway_reach_check_expire (GatewayReachCheck *self)
{
  (void) gateway_reach_expire (self->reach, g_get_monotonic_time ());
}
