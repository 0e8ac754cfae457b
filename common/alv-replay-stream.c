/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The replaying stream of alv-replay-stream.h.  Its input stream reads
 * the prefix first, then the base stream's input; it is pollable (libsoup
 * reads servers' connections without blocking): readable at once while
 * prefix bytes remain, else when the base is.  Output and closing are
 * the base stream's.
 */
#define G_LOG_DOMAIN "alluvium"
#include "config.h"
#include "alv-replay-stream.h"

#include <string.h>

/* ---- the input stream -------------------------------------------------- */

#define REPLAY_TYPE_INPUT (replay_input_get_type ())
G_DECLARE_FINAL_TYPE (ReplayInput, replay_input, REPLAY, INPUT, GInputStream)

struct _ReplayInput
{
  GInputStream parent_instance;
  GInputStream *base;
  GBytes *prefix;
  gsize offset;
};

static void replay_input_pollable_init (GPollableInputStreamInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ReplayInput, replay_input, G_TYPE_INPUT_STREAM,
                               G_IMPLEMENT_INTERFACE (G_TYPE_POLLABLE_INPUT_STREAM,
                                                      replay_input_pollable_init))

static gsize
prefix_left (ReplayInput *self)
{
  return self->prefix != NULL ? g_bytes_get_size (self->prefix) - self->offset : 0;
}

static gssize
take_prefix (ReplayInput *self,
             void        *buffer,
             gsize        count)
{
  gsize n = MIN (count, prefix_left (self));

  memcpy (buffer, (const char *) g_bytes_get_data (self->prefix, NULL) + self->offset, n);
  self->offset += n;
  if (prefix_left (self) == 0)
    g_clear_pointer (&self->prefix, g_bytes_unref);
  return (gssize) n;
}

static gssize
replay_input_read (GInputStream  *stream,
                   void          *buffer,
                   gsize          count,
                   GCancellable  *cancellable,
                   GError       **error)
{
  ReplayInput *self = REPLAY_INPUT (stream);

  if (prefix_left (self) > 0)
    return take_prefix (self, buffer, count);
  return g_input_stream_read (self->base, buffer, count, cancellable, error);
}

static gboolean
replay_input_close (GInputStream  *stream,
                    GCancellable  *cancellable G_GNUC_UNUSED,
                    GError       **error G_GNUC_UNUSED)
{
  ReplayInput *self = REPLAY_INPUT (stream);

  /* the base closes with its GIOStream; what was not replayed is gone */
  g_clear_pointer (&self->prefix, g_bytes_unref);
  return TRUE;
}

static gboolean
replay_input_can_poll (GPollableInputStream *stream G_GNUC_UNUSED)
{
  return TRUE;
}

static gboolean
replay_input_is_readable (GPollableInputStream *stream)
{
  ReplayInput *self = REPLAY_INPUT (stream);

  return prefix_left (self) > 0
         || g_pollable_input_stream_is_readable (G_POLLABLE_INPUT_STREAM (self->base));
}

static GSource *
replay_input_create_source (GPollableInputStream *stream,
                            GCancellable         *cancellable)
{
  ReplayInput *self = REPLAY_INPUT (stream);
  g_autoptr(GSource) base = NULL;
  GSource *source;

  if (prefix_left (self) > 0)
    {
      /* ready now */
      source = g_pollable_source_new_full (stream, NULL, cancellable);
      g_source_set_ready_time (source, 0);
      return source;
    }
  base = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (self->base), cancellable);
  return g_pollable_source_new_full (stream, base, cancellable);
}

static gssize
replay_input_read_nonblocking (GPollableInputStream  *stream,
                               void                  *buffer,
                               gsize                  count,
                               GError               **error)
{
  ReplayInput *self = REPLAY_INPUT (stream);

  if (prefix_left (self) > 0)
    return take_prefix (self, buffer, count);
  return g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (self->base), buffer,
                                                   count, NULL, error);
}

static void
replay_input_finalize (GObject *object)
{
  ReplayInput *self = REPLAY_INPUT (object);

  g_clear_object (&self->base);
  g_clear_pointer (&self->prefix, g_bytes_unref);
  G_OBJECT_CLASS (replay_input_parent_class)->finalize (object);
}

static void
replay_input_class_init (ReplayInputClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *input_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = replay_input_finalize;
  input_class->read_fn = replay_input_read;
  input_class->close_fn = replay_input_close;
}

static void
replay_input_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = replay_input_can_poll;
  iface->is_readable = replay_input_is_readable;
  iface->create_source = replay_input_create_source;
  iface->read_nonblocking = replay_input_read_nonblocking;
}

static void
replay_input_init (ReplayInput *self G_GNUC_UNUSED)
{
}

/* ---- the stream -------------------------------------------------------- */

struct _AlvReplayStream
{
  GIOStream parent_instance;
  GIOStream *base;
  GInputStream *input;
};

G_DEFINE_FINAL_TYPE (AlvReplayStream, alv_replay_stream, G_TYPE_IO_STREAM)

static GInputStream *
alv_replay_stream_get_input_stream (GIOStream *stream)
{
  return ALV_REPLAY_STREAM (stream)->input;
}

static GOutputStream *
alv_replay_stream_get_output_stream (GIOStream *stream)
{
  return g_io_stream_get_output_stream (ALV_REPLAY_STREAM (stream)->base);
}

static gboolean
alv_replay_stream_close (GIOStream     *stream,
                         GCancellable  *cancellable,
                         GError       **error)
{
  AlvReplayStream *self = ALV_REPLAY_STREAM (stream);

  /* closed like the base's: reads fail after, prefix bytes left or not
   * (this close cannot fail) */
  (void) g_input_stream_close (self->input, NULL, NULL);
  return g_io_stream_close (self->base, cancellable, error);
}

static void
alv_replay_stream_finalize (GObject *object)
{
  AlvReplayStream *self = ALV_REPLAY_STREAM (object);

  g_clear_object (&self->input);
  g_clear_object (&self->base);
  G_OBJECT_CLASS (alv_replay_stream_parent_class)->finalize (object);
}

static void
alv_replay_stream_class_init (AlvReplayStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->finalize = alv_replay_stream_finalize;
  stream_class->get_input_stream = alv_replay_stream_get_input_stream;
  stream_class->get_output_stream = alv_replay_stream_get_output_stream;
  stream_class->close_fn = alv_replay_stream_close;
}

static void
alv_replay_stream_init (AlvReplayStream *self G_GNUC_UNUSED)
{
}

/**
 * alv_replay_stream_new:
 * @base: a connection whose input stream is pollable
 * @prefix: (nullable): the bytes read from it already
 *
 * Returns: (transfer full): a stream reading @prefix, then @base
 */
GIOStream *
alv_replay_stream_new (GIOStream *base,
                       GBytes    *prefix)
{
  AlvReplayStream *self;
  ReplayInput *input;

  g_return_val_if_fail (G_IS_IO_STREAM (base), NULL);
  g_return_val_if_fail (G_IS_POLLABLE_INPUT_STREAM (g_io_stream_get_input_stream (base)), NULL);

  self = g_object_new (ALV_TYPE_REPLAY_STREAM, NULL);
  self->base = g_object_ref (base);
  input = g_object_new (REPLAY_TYPE_INPUT, NULL);
  input->base = g_object_ref (g_io_stream_get_input_stream (base));
  if (prefix != NULL && g_bytes_get_size (prefix) > 0)
    input->prefix = g_bytes_ref (prefix);
  self->input = G_INPUT_STREAM (input);
  return G_IO_STREAM (self);
}
