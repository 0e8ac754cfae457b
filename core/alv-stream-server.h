/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The local Icecast-compatible stream of alluvium-core (doc/local-stream.md): one
 * mount on 127.0.0.1 that answers players the way an Icecast 2 mount does
 * (HTTP/1.0, no length, body until EOF, icy-* headers, ICY metadata on
 * request), bursts recent data from a sync point to each new listener,
 * serves many listeners at once and drops one that falls too far behind
 * instead of waiting for it.  The daemon feeds it verified bytes in play
 * order, item by item, at the pace they should be heard.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define ALV_STREAM_SERVER_DEFAULT_BURST_SIZE (64 * 1024)
#define ALV_STREAM_SERVER_DEFAULT_QUEUE_SIZE (512 * 1024)
#define ALV_STREAM_SERVER_DEFAULT_MAX_LISTENERS 64
#define ALV_STREAM_SERVER_DEFAULT_REQUEST_TIMEOUT 10

#define ALV_TYPE_STREAM_SERVER (alv_stream_server_get_type ())
G_DECLARE_FINAL_TYPE (AlvStreamServer, alv_stream_server, ALV, STREAM_SERVER, GObject)

AlvStreamServer *alv_stream_server_new             (const char       *mount);
gboolean         alv_stream_server_start           (AlvStreamServer  *server,
                                                    guint16           port,
                                                    GError          **error);
void             alv_stream_server_stop            (AlvStreamServer  *server);
guint16          alv_stream_server_get_port        (AlvStreamServer  *server);
char            *alv_stream_server_get_uri         (AlvStreamServer  *server);

void             alv_stream_server_begin_item      (AlvStreamServer  *server,
                                                    const char       *content_type,
                                                    const char       *title,
                                                    const char       *artist);
void             alv_stream_server_push            (AlvStreamServer  *server,
                                                    GBytes           *data);
void             alv_stream_server_set_title       (AlvStreamServer  *server,
                                                    const char       *title,
                                                    const char       *artist);
void             alv_stream_server_disconnect_all  (AlvStreamServer  *server);

guint            alv_stream_server_get_n_listeners (AlvStreamServer  *server);
guint64          alv_stream_server_get_bytes_pushed (AlvStreamServer *server);
guint            alv_stream_server_get_n_dropped   (AlvStreamServer  *server);

G_END_DECLS
