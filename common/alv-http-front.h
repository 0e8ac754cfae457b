/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A lean HTTP/1.1 front for a server's hottest requests: it reads each
 * request head of a connection itself (alv-http-request.h), lets a
 * handler answer small GET/HEAD requests from memory at once (or later,
 * when the work they wait for is done), keeps the
 * connection alive between them, and hands the connection to the full
 * server (libsoup) for any request it does not answer, with the bytes it
 * read.
 */
#pragma once

#include <gio/gio.h>

#include "alv-http-request.h"

G_BEGIN_DECLS

typedef struct _AlvHttpFront AlvHttpFront;

/**
 * AlvHttpAnswer:
 * @status: the HTTP status
 * @reason: (nullable): its phrase, or NULL for the usual one
 * @headers: "Name: value\r\n" lines (the front adds Date, Server,
 *   Content-Length and Connection)
 * @body: the body (sent for GET, not for HEAD)
 * @ticket: set by the front: names the request for alv_http_front_answer()
 *
 * What a handler fills in; both strings come empty.
 */
typedef struct
{
  guint status;
  const char *reason;
  GString *headers;
  GString *body;
  guint64 ticket;
} AlvHttpAnswer;

/**
 * AlvHttpFrontResult:
 * @ALV_HTTP_FRONT_DECLINED: nothing done: the full server gets the
 *   connection, this request first
 * @ALV_HTTP_FRONT_ANSWERED: the answer is filled in
 * @ALV_HTTP_FRONT_LATER: answered later, with alv_http_front_answer() and
 *   the answer's ticket (the connection waits, reading nothing more)
 */
typedef enum
{
  ALV_HTTP_FRONT_DECLINED,
  ALV_HTTP_FRONT_ANSWERED,
  ALV_HTTP_FRONT_LATER,
} AlvHttpFrontResult;

/* Answers @req into @answer, or later, or declines it (having done
 * nothing). */
typedef AlvHttpFrontResult (*AlvHttpFrontFunc) (const AlvHttpRequest *req,
                                                GSocketAddress       *remote,
                                                AlvHttpAnswer        *answer,
                                                gpointer              user_data);

/* Takes the connection @fd over (and the count of @address with it):
 * @unread holds what the front read from it and did not handle, the
 * request it declined first. */
typedef void (*AlvHttpFrontHandOverFunc) (int             fd,
                                          GSocketAddress *remote,
                                          const char     *address,
                                          GBytes         *unread,
                                          gpointer        user_data);

/* The front refuses @req (@status, with @reason for people): fills
 * @answer in as the server answers its refusals (headers, body), and
 * counts and logs it as the server does. */
typedef void (*AlvHttpFrontRefuseFunc) (const AlvHttpRequest *req,
                                        GSocketAddress       *remote,
                                        guint                 status,
                                        const char           *reason,
                                        AlvHttpAnswer        *answer,
                                        gpointer              user_data);

/* The front closed a connection of @address. */
typedef void (*AlvHttpFrontClosedFunc) (const char *address,
                                        gpointer    user_data);

typedef struct
{
  guint header_timeout;         /* s to send a whole head (0: none) */
  guint idle_timeout;           /* s between requests, or to read an answer */
  const char *server;           /* the Server header, or NULL */
} AlvHttpFrontConfig;

AlvHttpFront *alv_http_front_new    (const AlvHttpFrontConfig  *config,
                                     AlvHttpFrontFunc           func,
                                     AlvHttpFrontHandOverFunc   hand_over,
                                     AlvHttpFrontClosedFunc     closed,
                                     gpointer                   user_data,
                                     GError                   **error);
void          alv_http_front_set_refuse_func (AlvHttpFront     *front,
                                              AlvHttpFrontRefuseFunc refuse);
void          alv_http_front_take   (AlvHttpFront              *front,
                                     int                        fd,
                                     GSocketAddress            *remote,
                                     const char                *address);
gboolean      alv_http_front_answer (AlvHttpFront              *front,
                                     guint64                    ticket,
                                     const AlvHttpAnswer       *answer);
guint         alv_http_front_reap   (AlvHttpFront              *front,
                                     const char                *address);
guint         alv_http_front_get_n_connections (AlvHttpFront   *front);
guint64       alv_http_front_get_n_answered    (AlvHttpFront   *front);
gint64        alv_http_front_get_next_sweep    (AlvHttpFront   *front);
void          alv_http_front_free   (AlvHttpFront              *front);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvHttpFront, alv_http_front_free)

G_END_DECLS
