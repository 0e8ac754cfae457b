/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A listening TCP socket that stays up whatever its clients do: it
 * accepts connections itself, applies the admission rules of
 * alv-conn-limits.h (a cap overall and per client address, kept under the
 * descriptor limit), gives every connection an idle timeout, pauses and
 * retries when the system refuses an accept (no descriptor left) instead
 * of giving up or spinning, and logs refusals at a bounded rate.  It hands
 * each admitted connection to a SoupServer or to a callback.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/**
 * AlvListenerConfig:
 * @max_connections: most connections held at once (0: as many as
 *   @fd_share_percent of the descriptor limit allows; a number given
 *   here is taken as is, even above the limit)
 * @max_per_address: most connections held at once from one client
 *   address (0: no cap beyond @max_connections)
 * @fd_share_percent: the part of the process's descriptor limit (after a
 *   reserve) this listener's connections may take
 * @idle_timeout: seconds a connection may make no progress reading or
 *   writing before it is closed (0: never)
 * @header_timeout: seconds a client of a SoupServer has to send a
 *   request's headers, counted from when the server waits for them
 *   (0: no deadline beyond @idle_timeout)
 */
typedef struct
{
  guint max_connections;
  guint max_per_address;
  guint fd_share_percent;
  guint idle_timeout;
  guint header_timeout;
} AlvListenerConfig;

#define ALV_TYPE_LISTENER (alv_listener_get_type ())
G_DECLARE_FINAL_TYPE (AlvListener, alv_listener, ALV, LISTENER, GObject)

/**
 * AlvListenerAcceptFunc:
 * @listener: the listener
 * @connection: the admitted connection; take a reference to keep it
 * @user_data: data given to alv_listener_set_accept_func()
 *
 * Receives each admitted connection.  The connection counts against the
 * limits until its last reference is dropped.
 */
typedef void (*AlvListenerAcceptFunc) (AlvListener       *listener,
                                       GSocketConnection *connection,
                                       gpointer           user_data);

/* Takes a connection admitted under @address: the descriptor @fd
 * (non-blocking) is its to close, see alv_listener_set_front(). */
typedef void (*AlvListenerFrontFunc) (AlvListener    *listener,
                                      int             fd,
                                      GSocketAddress *remote,
                                      const char     *address,
                                      gpointer        user_data);

/* At a cap: closes the connections the front holds (of @address, or of
 * every client when NULL) whose clients have gone, releasing each
 * (alv_listener_release()); returns how many. */
typedef guint (*AlvListenerFrontReapFunc) (AlvListener    *listener,
                                           const char     *address,
                                           gpointer        user_data);

AlvListener *alv_listener_new              (const char              *name,
                                            const AlvListenerConfig *config);
void         alv_listener_set_accept_func  (AlvListener             *listener,
                                            AlvListenerAcceptFunc    func,
                                            gpointer                 user_data);
void         alv_listener_exempt_address   (AlvListener             *listener,
                                            GInetAddress            *address);
gboolean     alv_listener_serve_soup       (AlvListener             *listener,
                                            SoupServer              *server,
                                            GError                 **error);
void         alv_listener_set_front        (AlvListener             *listener,
                                            AlvListenerFrontFunc     func,
                                            AlvListenerFrontReapFunc front_reap,
                                            gpointer                 user_data);
void         alv_listener_release          (AlvListener             *listener,
                                            const char              *address);
void         alv_listener_hand_over        (AlvListener             *listener,
                                            int                      fd,
                                            GSocketAddress          *remote,
                                            const char              *address,
                                            GBytes                  *unread);
gboolean     alv_listener_add_address      (AlvListener             *listener,
                                            GSocketAddress          *address,
                                            GSocketAddress         **effective,
                                            GError                 **error);
GSocketAddress *alv_listener_get_address  (AlvListener             *listener,
                                            guint                    index);
void         alv_listener_set_header_timeout (AlvListener           *listener,
                                            guint                    seconds);
void         alv_listener_close            (AlvListener             *listener);
guint        alv_listener_get_n_connections (AlvListener            *listener);
guint        alv_listener_get_max_connections (AlvListener          *listener);
guint64      alv_listener_get_n_refused    (AlvListener             *listener);

GSocket     *alv_listener_get_message_socket (SoupServerMessage     *msg);
/* Whether the libsoup in use keeps every kept-alive connection whose
 * client closes it between requests (3.2 does): then a served listener
 * closes each connection after its answer. */
gboolean     alv_listener_soup_leaks_idle  (void);

char        *alv_listener_client_key       (GInetAddress            *inet);

guint64      alv_raise_fd_limit            (void);
guint64      alv_get_fd_limit              (void);

G_END_DECLS
