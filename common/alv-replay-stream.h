/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A GIOStream that gives back bytes already read from a connection
 * before the connection's own: how a fast path that read a request head
 * hands the connection, that head included, to libsoup.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ALV_TYPE_REPLAY_STREAM (alv_replay_stream_get_type ())
G_DECLARE_FINAL_TYPE (AlvReplayStream, alv_replay_stream, ALV, REPLAY_STREAM, GIOStream)

GIOStream *alv_replay_stream_new (GIOStream *base,
                                  GBytes    *prefix);

G_END_DECLS
