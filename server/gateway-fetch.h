/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One hashing job of the gateway: either an origin URL fetched once over
 * HTTP (conditionally, when a previous version is known; only from the
 * addresses of its host that passed the private-address check) and
 * hashed while it streams, or a docroot file hashed from disk in a
 * worker thread.  The resolver runs at most one job per URL and hands every waiting
 * request the job's one result.
 */
#pragma once

#include <libsoup/soup.h>

#include "alv-hash-tree.h"
#include "gateway-static.h"
#include "gateway-store.h"

G_BEGIN_DECLS

typedef struct
{
  gboolean ok;
  gboolean unchanged;           /* ok, and the previous entry still holds */
  gboolean transient;           /* a failure that may serve a stale entry */
  guint status;                 /* HTTP status to answer on failure */
  char *reason;                 /* one line, on failure */
  GatewayEntry *entry;          /* on success (for unchanged: refreshed) */
  AlvHashTree *tree;            /* on success when changed */
  guint64 bytes_fetched;        /* body bytes read from the origin */
} GatewayFetchResult;

typedef struct
{
  guint block_size;
  guint64 max_media_size;
  gboolean allow_private;
} GatewayFetchLimits;

typedef struct _GatewayFetch GatewayFetch;

/* The HTTP sessions of the origins, one per scheme, host and port, each
 * connecting only to the addresses its latest fetch looked up and
 * checked (connections are kept for the next fetch, four at most). */
typedef struct _GatewayFetchSessions GatewayFetchSessions;

GatewayFetchSessions *gateway_fetch_sessions_new  (const char           *user_agent,
                                                   guint                 timeout);
/* Aborts what is still running: free it after the last fetch is done. */
void                  gateway_fetch_sessions_free (GatewayFetchSessions *sessions);

/* Called once, on the main context; the fetch frees itself afterwards. */
typedef void (*GatewayFetchDone) (GatewayFetch       *fetch,
                                  GatewayFetchResult *result,
                                  gpointer            user_data);

GatewayFetch *gateway_fetch_origin     (GatewayFetchSessions     *sessions,
                                        const GatewayFetchLimits *limits,
                                        const char               *url,
                                        const GatewayEntry       *previous,
                                        GatewayFetchDone          done,
                                        gpointer                  user_data);
GatewayFetch *gateway_fetch_docroot    (GatewayDocroot           *docroot,
                                        const GatewayFetchLimits *limits,
                                        const char               *url,
                                        const char               *rel,
                                        const GatewayEntry       *previous,
                                        GatewayFetchDone          done,
                                        gpointer                  user_data);
/* TRUE once content is being hashed (the origin answered with a body, or
 * a docroot file changed): an answer may take a while. */
gboolean      gateway_fetch_is_hashing (GatewayFetch             *fetch);
/* The done callback still runs, with a failure. */
void          gateway_fetch_cancel     (GatewayFetch             *fetch);

/* FALSE when @address must not be contacted without --allow-private. */
gboolean      gateway_address_is_allowed (GInetAddress *address,
                                          gboolean      allow_private);

G_END_DECLS
