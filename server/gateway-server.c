/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * HTTP front of the gateway.  Every request first passes an early handler
 * (before any body is read) that applies the per-address rate limit and
 * the header, URL and body size limits; then the path selects resolve,
 * thex, announce, status or the static docroot.  URLs are taken in their
 * normal form (gateway-url.h).  A resolve that the store
 * cannot answer joins the URL's single job (started on first demand, if
 * the client's new-URL budget and the origin's fetch slots allow) and
 * is paused for at most --resolve-wait; when the job finishes every
 * waiter gets the same answer, and a waiter whose time runs out gets 202
 * with Retry-After instead (or the previous entry, while only a
 * revalidation is pending).  Every refusal is an HTTP status plus a
 * one-line text/plain reason.  Announce and resolve mostly come through
 * the lean front (alv-http-front.h, fast_cb()), which answers them with
 * the same code; a resolve that waits for its job waits there too, and
 * an announce for the shared store's answer.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-server.h"

#include <string.h>
#include <glib/gi18n-lib.h>
#include <libsoup/soup.h>

#include "alv-block-map.h"
#include "alv-error.h"
#include "alv-hash-tree.h"
#include "alv-http-front.h"
#include "alv-listener.h"
#include "alv-ocn-headers.h"
#include "alv-ranges.h"
#include "alv-urn.h"
#include "gateway-budget.h"
#include "gateway-fetch.h"
#include "gateway-fetch-slots.h"
#include "gateway-leases.h"
#include "gateway-origins.h"
#include "gateway-peers.h"
#include "gateway-reach-check.h"
#include "gateway-redis.h"
#include "gateway-shared.h"
#include "gateway-static.h"
#include "gateway-store.h"
#include "gateway-url.h"

#define THEX_PATH "/thex/"
#define MAX_REFUSED_LOGGED 256  /* foreign URLs whose refusal is logged */
#define N2X_PATH "/uri-res/N2X"
#define MAX_HEADERS 100
#define MAX_FORM_BODY 65536
/* RFC 6585 codes libsoup 3.2 has no names for */
#define STATUS_TOO_MANY_REQUESTS 429
#define STATUS_HEADERS_TOO_LARGE 431

typedef enum
{
  TARGET_ORIGIN,
  TARGET_DOCROOT,
} TargetKind;

typedef struct _Job Job;

/* A resolve waiting for its URL's job: a request libsoup read (@msg), or
 * one the fast path read and answers later (@ticket). */
typedef struct
{
  Job *job;
  SoupServerMessage *msg;
  guint64 ticket;
  char *method;                 /* of the fast path's request */
  GSocketAddress *remote;       /* its client */
  guint timeout_id;
} Waiter;

struct _Job
{
  GatewayServer *self;
  char *url;
  char *origin;                 /* the fetch slot it holds (NULL: docroot) */
  GatewayFetch *fetch;
  GPtrArray *waiters;           /* Waiter */
  gboolean locked;              /* holds the URL's lock in the shared store */
  guint extend_id;              /* keeps that lock while hashing */
};

struct _GatewayServer
{
  GatewayConfig config;
  GatewayStats stats;
  SoupServer *server;
  AlvListener *listener;        /* accepts for @front, then @server */
  AlvHttpFront *front;          /* announce and resolve, at once */
  GatewayFetchSessions *sessions;
  GatewayStore *store;
  GatewayPeers *peers;
  GatewayLeases *leases;
  GatewayDocroot *docroot;
  GUri *base;                   /* docroot base URL (nullable) */
  GPtrArray *origins;           /* GUri */
  char *url;                    /* where we listen */
  char *bound_url;              /* the same with the address bound */
  GHashTable *refused;          /* URLs refused as foreign, logged once */
  GHashTable *jobs;             /* url → Job */
  GatewayBudget *requests;      /* per client ip: --rate-limit */
  GatewayBudget *new_urls;      /* per client: --new-url-rate */
  GatewayFetchSlots *slots;     /* origin fetches running per host */
  guint sweep_id;
  GatewayShared *shared;        /* --store redis://…, or NULL */
  GatewayReachCheck *reach;     /* connect-back checks, NULL: none */
  guint lock_ttl_ms;
  gboolean closing;
};

/* ------------------------------------------------------------------ */
/* Configuration                                                       */

void
gateway_config_init (GatewayConfig *config)
{
  memset (config, 0, sizeof *config);
  config->address = g_strdup ("127.0.0.1");
  config->port = 8470;
  config->max_media_size = G_GUINT64_CONSTANT (4) << 30;
  config->rate_limit = 20;
  config->rate_burst = 100;
  config->max_header_bytes = 16384;
  config->max_url_length = 4096;
  config->max_peers = 32;
  config->max_peers_per_urn = 1000;
  config->max_entries_per_address = 64;
  config->max_peer_entries = GATEWAY_PEERS_MAX_ENTRIES;
  config->peer_ttl = 1800;
  config->revalidate_after = 300;
  config->resolve_wait_ms = 2000;
  config->retry_after = 2;
  config->block_size = ALV_HASH_TREE_DEFAULT_BLOCK_SIZE;
  config->fetch_timeout = 30;
  config->origin_leases = GATEWAY_LEASES_MAX_RUNNING;
  config->max_connections = 0;
  config->max_connections_per_address = 256;
  config->idle_timeout = 30;
  config->connect_back_ms = 2000;
  config->max_urls = GATEWAY_STORE_MAX_ENTRIES;
  config->new_url_rate = 60;
  config->new_url_burst = 100;
  config->max_fetches_per_origin = GATEWAY_FETCH_SLOTS_PER_ORIGIN;
}

void
gateway_config_clear (GatewayConfig *config)
{
  g_free (config->address);
  g_free (config->docroot);
  g_free (config->base_url);
  g_strfreev (config->origins);
  g_free (config->state_dir);
  g_free (config->store);
  g_strfreev (config->trusted_proxies);
  memset (config, 0, sizeof *config);
}

static void
config_copy (GatewayConfig       *dst,
             const GatewayConfig *src)
{
  *dst = *src;
  dst->address = g_strdup (src->address);
  dst->docroot = g_strdup (src->docroot);
  dst->base_url = g_strdup (src->base_url);
  dst->origins = g_strdupv (src->origins);
  dst->state_dir = g_strdup (src->state_dir);
  dst->store = g_strdup (src->store);
  dst->trusted_proxies = g_strdupv (src->trusted_proxies);
}

/* ------------------------------------------------------------------ */
/* Answers                                                             */

/* Where an answer goes: a request libsoup read (@msg), or one the fast
 * path read (alv-http-front.h: @req, @answer), so that both paths give
 * the same answers from the same code. */
typedef struct
{
  SoupServerMessage *msg;
  const AlvHttpRequest *req;
  AlvHttpAnswer *answer;
  GSocketAddress *remote;
} Reply;

/* The Reply of a libsoup request, for as long as the statement lasts */
#define MSG_REPLY(m) (&(Reply) { .msg = (m) })

static void
reply_status (Reply      *r,
              guint       status,
              const char *reason)
{
  if (r->msg != NULL)
    soup_server_message_set_status (r->msg, status, reason);
  else
    {
      r->answer->status = status;
      r->answer->reason = reason;
    }
}

/* Sets a response header (on the fast path each is set once). */
static void
reply_header (Reply      *r,
              const char *name,
              const char *value)
{
  if (r->msg != NULL)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (r->msg),
                                    name, value);
      return;
    }
  g_string_append (r->answer->headers, name);
  g_string_append (r->answer->headers, ": ");
  /* a value from elsewhere (a media type) must not split the header */
  for (const char *c = value; *c != '\0'; c++)
    g_string_append_c (r->answer->headers, *c == '\r' || *c == '\n' ? ' ' : *c);
  g_string_append (r->answer->headers, "\r\n");
}

static void
reply_body (Reply      *r,
            const char *type,
            const char *data,
            gsize       len)
{
  if (r->msg != NULL)
    {
      soup_server_message_set_response (r->msg, type, SOUP_MEMORY_COPY, data, len);
      return;
    }
  reply_header (r, "Content-Type", type);
  g_string_append_len (r->answer->body, data, (gssize) len);
}

static GSocketAddress *
reply_remote (Reply *r)
{
  return r->msg != NULL ? soup_server_message_get_remote_address (r->msg) : r->remote;
}

static void
log_request (Reply      *r,
             guint       status,
             const char *note)
{
  g_autofree char *client = NULL;
  g_autofree char *method = NULL;
  g_autofree char *path = NULL;
  g_autofree char *status_text = NULL;
  GSocketAddress *remote;

  /* the hot path: nothing is formatted unless --verbose will show it */
  if (g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN))
    return;
  if (r->msg != NULL)
    {
      client = g_strdup (soup_server_message_get_remote_host (r->msg));
      method = g_strdup (soup_server_message_get_method (r->msg));
      path = g_strdup (g_uri_get_path (soup_server_message_get_uri (r->msg)));
    }
  else
    {
      remote = reply_remote (r);
      if (G_IS_INET_SOCKET_ADDRESS (remote))
        client = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
      method = g_strndup (r->req->method, r->req->method_len);
      path = g_strndup (r->req->path, r->req->path_len);
    }
  status_text = status ? g_strdup_printf ("%u", status) : g_strdup ("-");
  if (client == NULL)
    client = g_strdup ("?");
  g_log_structured (G_LOG_DOMAIN, G_LOG_LEVEL_DEBUG,
                    "CLIENT", "%s", client,
                    "HTTP_METHOD", "%s", method,
                    "HTTP_PATH", "%s", path,
                    "HTTP_STATUS", "%s", status_text,
                    "MESSAGE", "%s %s %s → %s%s%s", client, method, path, status_text,
                    note ? ": " : "", note ? note : "");
}

/* Every refusal: a status and a one-line reason. */
static void
refuse (GatewayServer *self,
        Reply         *r,
        guint          status,
        const char    *reason)
{
  g_autofree char *body = g_strconcat (reason, "\n", NULL);

  self->stats.refusals++;
  log_request (r, status, reason);
  reply_status (r, status,
                status == STATUS_TOO_MANY_REQUESTS ? "Too Many Requests"
                : status == STATUS_HEADERS_TOO_LARGE ? "Request Header Fields Too Large"
                : NULL);
  reply_header (r, "Cache-Control", "no-store");
  reply_body (r, "text/plain; charset=utf-8", body, strlen (body));
}

/* The X-Forwarded-For list of the request (NULL: none). */
static char *
reply_forwarded_for (Reply *r)
{
  const AlvHttpHeader *h;

  if (r->msg != NULL)
    return g_strdup (soup_message_headers_get_list (soup_server_message_get_request_headers (r->msg),
                                                    "X-Forwarded-For"));
  h = alv_http_request_find (r->req, "X-Forwarded-For", NULL);
  return h != NULL ? g_strndup (h->value, h->value_len) : NULL;
}

static GInetAddress *
client_address (GatewayServer *self,
                Reply         *r)
{
  GSocketAddress *remote = reply_remote (r);
  GInetAddress *address;
  g_autofree char *ip = NULL;

  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return NULL;
  address = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  if (self->config.trusted_proxies != NULL)
    ip = g_inet_address_to_string (address);
  if (ip != NULL && g_strv_contains ((const char * const *) self->config.trusted_proxies, ip))
    {
      g_autofree char *xff = reply_forwarded_for (r);
      const char *last = xff ? strrchr (xff, ',') : NULL;
      g_autofree char *text = g_strdup (last ? last + 1 : xff);

      /* the entry our proxy added is the last one; anything before it
       * is what the client claims */
      if (text != NULL)
        {
          GInetAddress *forwarded = g_inet_address_new_from_string (g_strstrip (text));

          if (forwarded != NULL)
            return forwarded;
        }
    }
  return g_object_ref (address);
}

static void
answer_entry (GatewayServer      *self,
              Reply              *r,
              const GatewayEntry *entry)
{
  const char *b32 = entry->urn + strlen (ALV_URN_PREFIX);
  g_autofree char *thex_path = g_strconcat (THEX_PATH, entry->urn, NULL);
  g_autofree char *thex = alv_thex_uri_format (thex_path, b32);
  g_autofree char *length = g_strdup_printf ("%" G_GUINT64_FORMAT, entry->length);
  g_autofree char *block = g_strdup_printf ("%u", entry->block_size);
  g_autoptr(GPtrArray) peers = gateway_peers_select (self->peers, entry->urn, NULL, NULL,
                                                     self->config.max_peers);
  g_autofree char *alt = alv_alt_format (peers, self->config.max_peers);
  g_autoptr(GString) body = g_string_new (NULL);

  reply_status (r, SOUP_STATUS_OK, NULL);
  reply_header (r, ALV_HEADER_CONTENT_URN, entry->urn);
  reply_header (r, ALV_HEADER_THEX_URI, thex);
  reply_header (r, "X-Content-Length", length);
  reply_header (r, "X-Content-Type", entry->media_type ? entry->media_type
                                     : "application/octet-stream");
  reply_header (r, "X-Block-Size", block);
  if (entry->head != NULL)
    reply_header (r, ALV_HEADER_CONTENT_HEAD, entry->head);
  reply_header (r, "Cache-Control", "no-cache");
  if (alt != NULL)
    reply_header (r, ALV_HEADER_ALT, alt);

  g_string_append_printf (body, "url: %s\nurn: %s\nlength: %s\ntype: %s\nblock-size: %s\n"
                          "thex: %s\npeers: %s\n",
                          entry->url, entry->urn, length,
                          entry->media_type ? entry->media_type : "application/octet-stream",
                          block, thex, alt ? alt : "");
  if (entry->head != NULL)
    g_string_append_printf (body, "head: %s\n", entry->head);
  reply_body (r, "text/plain; charset=utf-8", body->str, body->len);
  log_request (r, SOUP_STATUS_OK, NULL);
}

static void
answer_accepted (GatewayServer *self,
                 Reply         *r,
                 const char    *url)
{
  g_autofree char *retry = g_strdup_printf ("%u", self->config.retry_after);
  g_autofree char *body = g_strdup_printf ("hashing %s; retry in %u s\n", url,
                                           self->config.retry_after);

  self->stats.accepted++;
  reply_status (r, SOUP_STATUS_ACCEPTED, NULL);
  reply_header (r, "Retry-After", retry);
  reply_header (r, "Cache-Control", "no-store");
  reply_body (r, "text/plain; charset=utf-8", body, strlen (body));
  log_request (r, SOUP_STATUS_ACCEPTED, NULL);
}

/* ------------------------------------------------------------------ */
/* URL policy                                                          */

static GUri *
parse_http_url (const char *text,
                GError    **error)
{
  g_autoptr(GUri) uri = g_uri_parse (text, SOUP_HTTP_URI_FLAGS, NULL);
  const char *scheme;

  if (uri == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("“%s” is not a valid URL"), text);
      return NULL;
    }
  scheme = g_uri_get_scheme (uri);
  if ((g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
      || g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                   _("only http and https URLs with a host are accepted"));
      return NULL;
    }
  if (g_uri_get_user (uri) != NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_UNSAFE, _("URLs with user information are refused"));
      return NULL;
    }
  return g_steal_pointer (&uri);
}

typedef struct
{
  TargetKind kind;
  char *url;                    /* normal form (gateway-url.h) */
  char *rel;                    /* docroot-relative path */
  char *origin;                 /* the origin's fetch slot key */
} Target;

static void
target_clear (Target *t)
{
  g_clear_pointer (&t->url, g_free);
  g_clear_pointer (&t->rel, g_free);
  g_clear_pointer (&t->origin, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Target, target_clear)

/* What this gateway resolves, for people: "URL (the document root),
 * URL, …" or that it resolves nothing. */
static char *
served_prefixes (GatewayServer *self)
{
  g_autoptr(GString) text = g_string_new (NULL);

  if (self->base != NULL && self->docroot != NULL)
    {
      g_autofree char *base = g_uri_to_string (self->base);

      g_string_append_printf (text, _("%s, its document root"), base);
    }
  for (guint i = 0; i < self->origins->len; i++)
    {
      g_autofree char *origin = g_uri_to_string (self->origins->pdata[i]);

      if (text->len > 0)
        g_string_append (text, ", ");
      g_string_append (text, origin);
    }
  if (text->len == 0)
    g_string_append (text, _("no --docroot and no --origin"));
  return g_string_free (g_steal_pointer (&text), FALSE);
}

/* Decides whether @text may be resolved, and how: the entry of its
 * normal form (gateway-url.h), so that every spelling of one file shares
 * one entry and one fetch.  A docroot URL drops its query (the static
 * files ignore it); an origin URL with a query is refused unless
 * --allow-query says the origin needs it, for a web server serving files
 * ignores it too and every "?x=N" would make the gateway fetch the whole
 * file again.  On refusal sets *status and returns FALSE with @error. */
static gboolean
classify_url (GatewayServer *self,
              const char    *text,
              Target        *target,
              guint         *status,
              GError       **error)
{
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GUri) normal = NULL;

  if (strlen (text) > self->config.max_url_length)
    {
      *status = SOUP_STATUS_REQUEST_URI_TOO_LONG;
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT, _("the URL is longer than %u bytes"),
                   self->config.max_url_length);
      return FALSE;
    }
  uri = parse_http_url (text, error);
  if (uri == NULL)
    {
      *status = SOUP_STATUS_BAD_REQUEST;
      return FALSE;
    }
  normal = gateway_url_normalize (uri, GATEWAY_URL_QUERY_DROP);
  target->url = g_uri_to_string (normal);

  if (self->base != NULL && self->docroot != NULL && gateway_origin_covers (self->base, normal))
    {
      const char *path = g_uri_get_path (normal);
      const char *bpath = g_uri_get_path (self->base);
      gsize blen = strlen (bpath);
      g_autofree char *sub = NULL;

      if (blen > 0 && bpath[blen - 1] == '/')
        blen--;
      sub = g_strdup (path + MIN (blen, strlen (path)));
      target->kind = TARGET_DOCROOT;
      target->rel = gateway_docroot_map_path (*sub ? sub : "/");
      if (target->rel == NULL)
        {
          *status = SOUP_STATUS_NOT_FOUND;
          g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                       _("the URL names no file the document root serves"));
          return FALSE;
        }
      return TRUE;
    }
  /* the path as written, before GLib drops its dot segments: what the
   * origin would be asked for must be what the prefix check saw */
  if (!gateway_origin_check_url (text, error))
    {
      *status = SOUP_STATUS_FORBIDDEN;
      return FALSE;
    }
  for (guint i = 0; i < self->origins->len; i++)
    if (gateway_origin_covers (self->origins->pdata[i], normal))
      {
        if (gateway_url_has_query (uri) && !self->config.allow_query)
          {
            *status = SOUP_STATUS_FORBIDDEN;
            g_set_error_literal (error, ALV_ERROR, ALV_ERROR_UNSAFE,
                                 _("the URL has a query string (“?…”), which a web server "
                                   "serving files ignores: each variant would be fetched and "
                                   "hashed again, so such URLs are refused (start the gateway "
                                   "with --allow-query if its origin needs them)"));
            return FALSE;
          }
        if (self->config.allow_query)
          {
            g_clear_pointer (&normal, g_uri_unref);
            normal = gateway_url_normalize (uri, GATEWAY_URL_QUERY_KEEP);
            g_free (target->url);
            target->url = g_uri_to_string (normal);
          }
        target->kind = TARGET_ORIGIN;
        target->origin = gateway_url_origin_key (normal);
        return TRUE;
      }
  *status = SOUP_STATUS_FORBIDDEN;
  {
    /* say what it serves and how to make it serve this one: a playlist
     * built for another name of this host meets this on every item */
    g_autofree char *served = served_prefixes (self);
    g_autoptr(GUri) root = g_uri_build (G_URI_FLAGS_NONE, g_uri_get_scheme (uri), NULL,
                                        g_uri_get_host (uri), g_uri_get_port (uri), "/",
                                        NULL, NULL);
    g_autofree char *prefix = g_uri_to_string (root);
    g_autofree char *why = g_strdup_printf (_("the URL is not under any origin this gateway "
                                              "serves (%s): start the gateway with --base-url "
                                              "(for its --docroot) or --origin naming %s"),
                                            served, prefix);

    /* once per URL at the default level, a bounded number of them */
    if (g_hash_table_size (self->refused) < MAX_REFUSED_LOGGED &&
        g_hash_table_add (self->refused, g_strdup (target->url)))
      g_message (_("refused to resolve %s: %s"), target->url, why);
    g_set_error_literal (error, ALV_ERROR, ALV_ERROR_UNSAFE, why);
  }
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Jobs and waiters                                                    */

static void
waiter_free (Waiter *waiter)
{
  g_clear_handle_id (&waiter->timeout_id, g_source_remove);
  if (waiter->msg != NULL)
    {
      g_signal_handlers_disconnect_by_data (waiter->msg, waiter);
      g_object_unref (waiter->msg);
    }
  g_free (waiter->method);
  g_clear_object (&waiter->remote);
  g_free (waiter);
}

/* Where the answer of a request that waited (for its URL's job, or for
 * the shared store) is made: its libsoup message, or an answer of its
 * own that goes to the fast path's connection. */
typedef struct
{
  Reply reply;
  AlvHttpRequest req;           /* what log_request() reads of it */
  AlvHttpAnswer answer;
} WaiterReply;

/* A Reply of the fast path's for a request answered later: @method and
 * @path are what log_request() reads of it, @headers (or none) those
 * set before it waited. */
static Reply *
front_reply_begin (WaiterReply    *wr,
                   const char     *method,
                   const char     *path,
                   GSocketAddress *remote,
                   const GString  *headers)
{
  memset (wr, 0, sizeof *wr);
  wr->req.method = method;
  wr->req.method_len = strlen (method);
  wr->req.path = path;
  wr->req.path_len = strlen (path);
  wr->answer.headers = headers != NULL ? g_string_new_len (headers->str, (gssize) headers->len)
                                       : g_string_new (NULL);
  wr->answer.body = g_string_new (NULL);
  wr->reply.req = &wr->req;
  wr->reply.answer = &wr->answer;
  wr->reply.remote = remote;
  return &wr->reply;
}

/* Sends what front_reply_begin() made ready to the front's @ticket. */
static void
front_reply_end (GatewayServer *self,
                 guint64        ticket,
                 WaiterReply   *wr)
{
  /* FALSE: the client went away meanwhile */
  if (self->front != NULL)
    (void) alv_http_front_answer (self->front, ticket, &wr->answer);
  g_string_free (wr->answer.headers, TRUE);
  g_string_free (wr->answer.body, TRUE);
}

static Reply *
waiter_reply_begin (Waiter      *waiter,
                    WaiterReply *wr)
{
  if (waiter->msg != NULL)
    {
      memset (wr, 0, sizeof *wr);
      wr->reply.msg = waiter->msg;
      return &wr->reply;
    }
  return front_reply_begin (wr, waiter->method, "/resolve", waiter->remote, NULL);
}

/* Sends what waiter_reply_begin() made ready, and frees @waiter (no
 * longer in its job's list). */
static void
waiter_reply_end (GatewayServer *self,
                  Waiter        *waiter,
                  WaiterReply   *wr)
{
  if (waiter->msg != NULL)
    soup_server_message_unpause (waiter->msg);
  else
    front_reply_end (self, waiter->ticket, wr);
  waiter_free (waiter);
}

static void
job_free (Job *job)
{
  g_clear_handle_id (&job->extend_id, g_source_remove);
  if (job->locked && job->self->shared != NULL)
    gateway_shared_unlock (job->self->shared, job->url);
  if (job->origin != NULL)
    gateway_fetch_slots_give_back (job->self->slots, job->origin);
  g_ptr_array_unref (job->waiters);
  g_free (job->url);
  g_free (job->origin);
  g_free (job);
}

static void
waiter_finished_cb (SoupServerMessage *msg G_GNUC_UNUSED,
                    Waiter            *waiter)
{
  /* the client went away while waiting */
  g_ptr_array_remove (waiter->job->waiters, waiter);
}

static gboolean
waiter_timeout_cb (gpointer user_data)
{
  Waiter *waiter = user_data;
  Job *job = waiter->job;
  GatewayServer *self = job->self;
  const GatewayEntry *stale = gateway_store_lookup (self->store, job->url);
  WaiterReply wr;
  Reply *r;
  guint i;

  waiter->timeout_id = 0;
  if (g_ptr_array_find (job->waiters, waiter, &i))
    g_ptr_array_steal_index (job->waiters, i);
  r = waiter_reply_begin (waiter, &wr);
  if (stale != NULL && !gateway_fetch_is_hashing (job->fetch))
    answer_entry (self, r, stale);
  else
    answer_accepted (self, r, job->url);
  waiter_reply_end (self, waiter, &wr);
  return G_SOURCE_REMOVE;
}

static void
fetch_done_cb (GatewayFetch       *fetch G_GNUC_UNUSED,
               GatewayFetchResult *result,
               gpointer            user_data)
{
  Job *job = user_data;
  GatewayServer *self = job->self;
  const GatewayEntry *entry = NULL;

  g_hash_table_steal (self->jobs, job->url);
  job->fetch = NULL;
  self->stats.bytes_fetched += result->bytes_fetched;

  if (result->ok && result->unchanged)
    {
      self->stats.revalidations++;
      /* records the check time and any new validators; the tree went if
       * the URL was evicted meanwhile (then it is hashed when asked again) */
      if (!gateway_store_put (self->store, result->entry, NULL))
        {
          result->ok = FALSE;
          result->status = SOUP_STATUS_SERVICE_UNAVAILABLE;
          g_free (result->reason);
          result->reason = g_strdup (_("the gateway forgot this URL while checking it "
                                       "(--max-urls); ask again"));
        }
      /* a docroot file is checked on every resolve: only what changes
       * goes to the shared store */
      if (self->shared != NULL && result->entry->file_id == NULL)
        gateway_shared_put (self->shared, result->entry, NULL);
    }
  else if (result->ok)
    {
      if (result->entry->file_id != NULL)
        self->stats.files_hashed++;
      else
        self->stats.fetches++;
      gateway_store_put (self->store, result->entry, result->tree);
      if (self->shared != NULL)
        gateway_shared_put (self->shared, result->entry, result->tree);
      g_info ("%s is %s (%" G_GUINT64_FORMAT " bytes)", job->url, result->entry->urn,
              result->entry->length);
    }
  else
    {
      if (result->transient)
        entry = gateway_store_lookup (self->store, job->url);
      g_message ("cannot resolve %s: %s", job->url, result->reason);
    }
  if (result->ok)
    entry = gateway_store_lookup (self->store, job->url);

  while (job->waiters->len > 0)
    {
      Waiter *waiter = g_ptr_array_steal_index (job->waiters, job->waiters->len - 1);
      WaiterReply wr;
      Reply *r = waiter_reply_begin (waiter, &wr);

      if (entry != NULL)
        answer_entry (self, r, entry);
      else
        refuse (self, r, result->status, result->reason);
      waiter_reply_end (self, waiter, &wr);
    }
  job_free (job);
}

static gboolean
extend_lock_cb (gpointer user_data)
{
  Job *job = user_data;

  if (job->self->shared != NULL)
    gateway_shared_lock_extend (job->self->shared, job->url, job->self->lock_ttl_ms);
  return G_SOURCE_CONTINUE;
}

/* @previous: what a conditional fetch may keep (nullable: the local
 * store's entry) */
static Job *
start_job_full (GatewayServer      *self,
                const Target       *target,
                const GatewayEntry *previous,
                gboolean            locked)
{
  Job *job = g_hash_table_lookup (self->jobs, target->url);
  GatewayFetchLimits limits = {
    self->config.block_size, self->config.max_media_size, self->config.allow_private
  };

  if (job != NULL)
    {
      if (locked && self->shared != NULL)
        gateway_shared_unlock (self->shared, target->url);
      return job;
    }
  if (previous == NULL)
    previous = gateway_store_lookup (self->store, target->url);
  job = g_new0 (Job, 1);
  job->self = self;
  job->url = g_strdup (target->url);
  job->locked = locked;
  if (target->kind == TARGET_ORIGIN)
    {
      job->origin = g_strdup (target->origin);
      gateway_fetch_slots_take (self->slots, job->origin);
    }
  if (locked)
    job->extend_id = g_timeout_add (MAX (self->lock_ttl_ms / 3, 1), extend_lock_cb, job);
  job->waiters = g_ptr_array_new_with_free_func ((GDestroyNotify) waiter_free);
  g_hash_table_insert (self->jobs, job->url, job);
  if (target->kind == TARGET_DOCROOT)
    job->fetch = gateway_fetch_docroot (self->docroot, &limits, target->url, target->rel,
                                        previous, fetch_done_cb, job);
  else
    job->fetch = gateway_fetch_origin (self->sessions, &limits, target->url, previous,
                                       fetch_done_cb, job);
  return job;
}

static Job *
start_job (GatewayServer *self,
           const Target  *target)
{
  return start_job_full (self, target, NULL, FALSE);
}

/* Whether the request @r may start a job for @target, which has none
 * running: the brake on clients that make the gateway fetch from its
 * origins.  A URL the gateway knows nothing of (no @previous, none in
 * the store) spends one of the client's --new-url-rate budget, refused
 * with 429 once it is spent; and an origin runs at most
 * --max-fetches-per-origin jobs, a request for another getting 503 (or
 * the entry known, when there is one), both with Retry-After.  A
 * revalidation of a known URL costs no budget.  When it returns FALSE
 * it has answered @r (and logged and counted the refusal). */
static gboolean
admit_job (GatewayServer      *self,
           Reply              *r,
           const Target       *target,
           const GatewayEntry *previous)
{
  g_autoptr(GInetAddress) address = NULL;
  g_autofree char *key = NULL;
  g_autofree char *retry = NULL;
  guint wait = self->config.retry_after;

  if (g_hash_table_contains (self->jobs, target->url))
    return TRUE;
  if (previous == NULL)
    previous = gateway_store_lookup (self->store, target->url);
  if (target->kind == TARGET_ORIGIN && gateway_fetch_slots_is_full (self->slots, target->origin))
    {
      if (previous != NULL && gateway_store_get_tree (self->store, previous->urn) != NULL)
        {
          /* what the URL was at the last check is still the best answer */
          answer_entry (self, r, previous);
          return FALSE;
        }
      self->stats.origin_busy++;
      retry = g_strdup_printf ("%u", MAX (wait, 1));
      reply_header (r, "Retry-After", retry);
      refuse (self, r, SOUP_STATUS_SERVICE_UNAVAILABLE,
              _("the gateway is fetching as many files from this origin as it may at once "
                "(--max-fetches-per-origin); try again later"));
      return FALSE;
    }
  if (previous != NULL)
    return TRUE;
  address = client_address (self, r);
  key = address != NULL ? alv_listener_client_key (address) : g_strdup ("local");
  if (!gateway_budget_take (self->new_urls, key, g_get_monotonic_time (), &wait))
    {
      self->stats.new_urls_refused++;
      retry = g_strdup_printf ("%u", wait);
      reply_header (r, "Retry-After", retry);
      refuse (self, r, STATUS_TOO_MANY_REQUESTS,
              _("too many new URLs from this address: each one makes the gateway fetch "
                "and hash a file (--new-url-rate); try again later"));
      return FALSE;
    }
  return TRUE;
}

/* @msg is paused, unless @paused says it is already */
static void
add_waiter_full (GatewayServer     *self,
                 Job               *job,
                 SoupServerMessage *msg,
                 gboolean           paused)
{
  Waiter *waiter = g_new0 (Waiter, 1);

  waiter->job = job;
  waiter->msg = g_object_ref (msg);
  g_signal_connect (msg, "finished", G_CALLBACK (waiter_finished_cb), waiter);
  waiter->timeout_id = g_timeout_add (self->config.resolve_wait_ms, waiter_timeout_cb, waiter);
  g_ptr_array_add (job->waiters, waiter);
  if (!paused)
    soup_server_message_pause (msg);
}

static void
add_waiter (GatewayServer     *self,
            Job               *job,
            SoupServerMessage *msg)
{
  add_waiter_full (self, job, msg, FALSE);
}

/* The fast path's request @req (the front's @ticket) waits for @job. */
static void
add_front_waiter (GatewayServer        *self,
                  Job                  *job,
                  const AlvHttpRequest *req,
                  GSocketAddress       *remote,
                  guint64               ticket)
{
  Waiter *waiter = g_new0 (Waiter, 1);

  waiter->job = job;
  waiter->ticket = ticket;
  waiter->method = g_strndup (req->method, req->method_len);
  waiter->remote = remote != NULL ? g_object_ref (remote) : NULL;
  waiter->timeout_id = g_timeout_add (self->config.resolve_wait_ms, waiter_timeout_cb, waiter);
  g_ptr_array_add (job->waiters, waiter);
}

static gboolean
entry_is_fresh (GatewayServer      *self,
                const GatewayEntry *entry)
{
  return g_get_real_time () - entry->checked
         < (gint64) self->config.revalidate_after * G_TIME_SPAN_SECOND;
}

gboolean
gateway_server_prepare (GatewayServer *self,
                        const char    *url,
                        GError       **error)
{
  g_auto(Target) target = { 0, };
  const GatewayEntry *entry;
  guint status;

  if (!classify_url (self, url, &target, &status, error))
    return FALSE;
  entry = gateway_store_lookup (self->store, target.url);
  if (entry != NULL && target.kind == TARGET_ORIGIN && entry_is_fresh (self, entry))
    return TRUE;
  start_job (self, &target);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* The shared store (--store redis://…)                                */

/* A request paused while the shared store is asked: a libsoup one
 * (@msg), or an announce of the fast path's (@ticket, answered with
 * @headers and what the store says).  The client may go meanwhile
 * (@gone, or the front forgets the ticket); the gateway may be closing
 * (then pending calls come back failed, and nothing new starts). */
typedef struct
{
  GatewayServer *self;
  SoupServerMessage *msg;
  gulong finished_id;
  gboolean gone;
  guint64 ticket;
  char *method;
  GSocketAddress *remote;
  GString *headers;
  Target target;
  GatewayEntry *entry;          /* the shared store's, for resolves */
  GHashTable *form;             /* for announces */
  char *urn;
  GInetSocketAddress *peer;
  AlvBlockMap *have;
  guint n_blocks;
  guint numwant;
} Pending;

static void
pending_finished_cb (SoupServerMessage *msg G_GNUC_UNUSED,
                     Pending           *p)
{
  p->gone = TRUE;
}

static Pending *
pending_new (GatewayServer     *self,
             SoupServerMessage *msg)
{
  Pending *p = g_new0 (Pending, 1);

  p->self = self;
  p->msg = g_object_ref (msg);
  p->finished_id = g_signal_connect (msg, "finished", G_CALLBACK (pending_finished_cb), p);
  return p;
}

/* The fast path's request of @r, answered later with what @r holds so far */
static Pending *
pending_new_front (GatewayServer *self,
                   Reply         *r)
{
  Pending *p = g_new0 (Pending, 1);

  p->self = self;
  p->ticket = r->answer->ticket;
  p->method = g_strndup (r->req->method, r->req->method_len);
  p->remote = r->remote != NULL ? g_object_ref (r->remote) : NULL;
  p->headers = g_string_new_len (r->answer->headers->str, (gssize) r->answer->headers->len);
  return p;
}

static void
pending_free (Pending *p)
{
  if (p->msg != NULL)
    {
      g_signal_handler_disconnect (p->msg, p->finished_id);
      g_object_unref (p->msg);
    }
  g_free (p->method);
  g_clear_object (&p->remote);
  if (p->headers != NULL)
    g_string_free (p->headers, TRUE);
  target_clear (&p->target);
  g_clear_pointer (&p->entry, gateway_entry_free);
  g_clear_pointer (&p->form, g_hash_table_unref);
  g_free (p->urn);
  g_clear_object (&p->peer);
  g_clear_pointer (&p->have, alv_block_map_free);
  g_free (p);
}

/* TRUE when @p's request needs no more work (answered, or gone). */
static gboolean
pending_is_over (Pending *p)
{
  if (p->gone)
    return TRUE;
  if (p->self->closing && p->msg == NULL)
    {
      WaiterReply wr;

      refuse (p->self, front_reply_begin (&wr, p->method, "/announce", p->remote, NULL),
              SOUP_STATUS_SERVICE_UNAVAILABLE, _("the gateway is stopping"));
      front_reply_end (p->self, p->ticket, &wr);
      return TRUE;
    }
  if (p->self->closing)
    {
      refuse (p->self, MSG_REPLY (p->msg), SOUP_STATUS_SERVICE_UNAVAILABLE, _("the gateway is stopping"));
      soup_server_message_unpause (p->msg);
      return TRUE;
    }
  return FALSE;
}

/* The shared store failed us midway: do what a lone gateway does. */
static void
resolve_alone (Pending *p)
{
  if (admit_job (p->self, MSG_REPLY (p->msg), &p->target, p->entry))
    add_waiter_full (p->self, start_job (p->self, &p->target), p->msg, TRUE);
  else
    soup_server_message_unpause (p->msg);
  pending_free (p);
}

static void
resolve_lock_cb (gboolean ok,
                 gboolean acquired,
                 gpointer user_data)
{
  Pending *p = user_data;
  GatewayServer *self = p->self;
  const GatewayEntry *stale;

  if (pending_is_over (p))
    {
      /* also while the gateway stops: the unlock goes out as it closes */
      if (acquired && self->shared != NULL)
        gateway_shared_unlock (self->shared, p->target.url);
      pending_free (p);
      return;
    }
  if (!ok)
    {
      resolve_alone (p);
      return;
    }
  if (acquired || g_hash_table_contains (self->jobs, p->target.url))
    {
      if (admit_job (self, MSG_REPLY (p->msg), &p->target, p->entry))
        add_waiter_full (self, start_job_full (self, &p->target, p->entry, acquired),
                         p->msg, TRUE);
      else
        {
          if (acquired)
            gateway_shared_unlock (self->shared, p->target.url);
          soup_server_message_unpause (p->msg);
        }
      pending_free (p);
      return;
    }
  /* another gateway is hashing it: what we know meanwhile, or 202 */
  stale = p->entry != NULL ? p->entry : gateway_store_lookup (self->store, p->target.url);
  if (stale != NULL && gateway_store_get_tree (self->store, stale->urn) != NULL)
    answer_entry (self, MSG_REPLY (p->msg), stale);
  else
    answer_accepted (self, MSG_REPLY (p->msg), p->target.url);
  soup_server_message_unpause (p->msg);
  pending_free (p);
}

static void
resolve_lock (Pending *p)
{
  if (!gateway_shared_lock (p->self->shared, p->target.url, p->self->lock_ttl_ms,
                            resolve_lock_cb, p))
    resolve_alone (p);
}

static void
resolve_tree_cb (gboolean     ok G_GNUC_UNUSED,
                 AlvHashTree *tree,
                 gpointer     user_data)
{
  g_autoptr(AlvHashTree) owned = tree;
  Pending *p = user_data;
  GatewayServer *self = p->self;

  if (pending_is_over (p))
    {
      pending_free (p);
      return;
    }
  if (tree == NULL)
    {
      /* an entry without its tree is no entry */
      g_clear_pointer (&p->entry, gateway_entry_free);
      resolve_lock (p);
      return;
    }
  gateway_store_put (self->store, p->entry, tree);
  self->stats.resolves_immediate++;
  answer_entry (self, MSG_REPLY (p->msg), p->entry);
  soup_server_message_unpause (p->msg);
  pending_free (p);
}

static gboolean entry_is_fresh (GatewayServer      *self,
                                const GatewayEntry *entry);

static void
resolve_entry_cb (gboolean      ok,
                  GatewayEntry *entry,
                  gpointer      user_data)
{
  Pending *p = user_data;
  GatewayServer *self = p->self;

  p->entry = entry;
  if (pending_is_over (p))
    {
      pending_free (p);
      return;
    }
  if (!ok)
    {
      resolve_alone (p);
      return;
    }
  if (entry != NULL && entry_is_fresh (self, entry))
    {
      AlvHashTree *tree = gateway_store_get_tree (self->store, entry->urn);

      if (tree != NULL)
        {
          resolve_tree_cb (TRUE, alv_hash_tree_ref (tree), p);
          return;
        }
      if (!gateway_shared_get_tree (self->shared, entry->urn, resolve_tree_cb, p))
        resolve_alone (p);
      return;
    }
  if (g_hash_table_contains (self->jobs, p->target.url))
    {
      resolve_lock_cb (TRUE, FALSE, p);
      return;
    }
  resolve_lock (p);
}

/* Resolves @target through the shared store: its entry when fresh, else
 * the URL's lock and a job, else (another gateway hashes it) 202.  FALSE
 * when the store is down: the caller goes on alone. */
static gboolean
resolve_shared (GatewayServer     *self,
                SoupServerMessage *msg,
                const Target      *target)
{
  Pending *p;

  if (self->shared == NULL || !gateway_shared_is_up (self->shared))
    return FALSE;
  p = pending_new (self, msg);
  p->target.kind = target->kind;
  p->target.url = g_strdup (target->url);
  p->target.rel = g_strdup (target->rel);
  p->target.origin = g_strdup (target->origin);
  if (!gateway_shared_get_entry (self->shared, target->url, resolve_entry_cb, p))
    {
      pending_free (p);
      return FALSE;
    }
  soup_server_message_pause (msg);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Handlers                                                            */

/* What a resolve needs, decided before anything is counted or started:
 * a refusal (*status, @error), the fresh entry (*entry), or the URL's
 * job or the shared store (RESOLVE_WAIT).  @target is filled in unless
 * refused. */
typedef enum
{
  RESOLVE_REFUSE,
  RESOLVE_ANSWER,
  RESOLVE_WAIT,
} ResolvePlan;

static ResolvePlan
resolve_plan (GatewayServer       *self,
              const char          *url,
              Target              *target,
              const GatewayEntry **entry,
              guint               *status,
              GError             **error)
{
  const GatewayEntry *found;

  *entry = NULL;
  if (url == NULL || *url == '\0')
    {
      *status = SOUP_STATUS_BAD_REQUEST;
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_INVALID, _("missing url parameter"));
      return RESOLVE_REFUSE;
    }
  if (!classify_url (self, url, target, status, error))
    return RESOLVE_REFUSE;
  found = gateway_store_lookup (self->store, target->url);
  if (found != NULL && target->kind == TARGET_ORIGIN && entry_is_fresh (self, found))
    {
      *entry = found;
      return RESOLVE_ANSWER;
    }
  return RESOLVE_WAIT;
}

/* Answers a resolve planned RESOLVE_REFUSE or RESOLVE_ANSWER. */
static void
resolve_answer (GatewayServer      *self,
                Reply              *r,
                ResolvePlan         plan,
                const GatewayEntry *entry,
                guint               status,
                const GError       *error)
{
  if (plan == RESOLVE_REFUSE)
    {
      refuse (self, r, status, error->message);
      return;
    }
  self->stats.resolves_immediate++;
  answer_entry (self, r, entry);
}

static void
handle_resolve (GatewayServer     *self,
                SoupServerMessage *msg,
                GHashTable        *query)
{
  const char *url = query ? g_hash_table_lookup (query, "url") : NULL;
  g_auto(Target) target = { 0, };
  g_autoptr(GError) error = NULL;
  const GatewayEntry *entry;
  guint status = 0;
  ResolvePlan plan = resolve_plan (self, url, &target, &entry, &status, &error);

  self->stats.resolves++;
  if (plan != RESOLVE_WAIT)
    {
      resolve_answer (self, MSG_REPLY (msg), plan, entry, status, error);
      return;
    }
  /* a docroot file is this gateway's to check; an origin URL may have
   * been hashed by another gateway */
  if (target.kind == TARGET_ORIGIN && !g_hash_table_contains (self->jobs, target.url)
      && resolve_shared (self, msg, &target))
    return;
  if (admit_job (self, MSG_REPLY (msg), &target, NULL))
    add_waiter (self, start_job (self, &target), msg);
}

static void handle_thex_full (GatewayServer     *self,
                              SoupServerMessage *msg,
                              const char        *urn_text,
                              gboolean           may_ask);
static gboolean handle_announce_full (GatewayServer     *self,
                                      Reply             *r,
                                      GHashTable        *query,
                                      gboolean           may_ask);

static void
tree_for_request_cb (gboolean     ok G_GNUC_UNUSED,
                     AlvHashTree *tree,
                     gpointer     user_data)
{
  g_autoptr(AlvHashTree) owned = tree;
  Pending *p = user_data;

  if (pending_is_over (p))
    {
      pending_free (p);
      return;
    }
  if (tree != NULL)
    gateway_store_add_tree (p->self->store, p->urn, tree);
  /* again, from the local store now, without asking a second time (an
   * announce then goes on to the shared peers, and answers from there) */
  if (p->form == NULL)
    handle_thex_full (p->self, p->msg, p->urn, FALSE);
  if (p->form == NULL || !handle_announce_full (p->self, MSG_REPLY (p->msg), p->form, FALSE))
    soup_server_message_unpause (p->msg);
  pending_free (p);
}

/* Asks the shared store for the tree of @urn that the request (a thex
 * or, with @form, an announce) needs; FALSE when it is down. */
static gboolean
tree_for_request (GatewayServer     *self,
                  SoupServerMessage *msg,
                  const char        *urn,
                  GHashTable        *form)
{
  Pending *p;

  if (self->shared == NULL || !gateway_shared_is_up (self->shared))
    return FALSE;
  p = pending_new (self, msg);
  p->urn = g_strdup (urn);
  p->form = form ? g_hash_table_ref (form) : NULL;
  if (!gateway_shared_get_tree (self->shared, urn, tree_for_request_cb, p))
    {
      pending_free (p);
      return FALSE;
    }
  soup_server_message_pause (msg);
  return TRUE;
}

static void
handle_thex (GatewayServer     *self,
             SoupServerMessage *msg,
             const char        *urn_text)
{
  handle_thex_full (self, msg, urn_text, TRUE);
}

static void
handle_thex_full (GatewayServer     *self,
                  SoupServerMessage *msg,
                  const char        *urn_text,
                  gboolean           may_ask)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *unescaped = g_uri_unescape_string (urn_text, NULL);
  g_autofree char *urn = unescaped ? alv_urn_normalize (unescaped, &error) : NULL;
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  const char *inm;
  g_autofree char *etag = NULL;
  g_autofree char *length = NULL;
  g_autofree char *block = NULL;
  g_autofree char *depth = NULL;
  g_autoptr(GBytes) data = NULL;
  AlvHashTree *tree;

  if (urn == NULL)
    {
      refuse (self, MSG_REPLY (msg), SOUP_STATUS_BAD_REQUEST,
              error ? error->message : _("malformed URN"));
      return;
    }
  tree = gateway_store_get_tree (self->store, urn);
  if (tree == NULL && may_ask && tree_for_request (self, msg, urn, NULL))
    return;
  if (tree == NULL)
    {
      refuse (self, MSG_REPLY (msg), SOUP_STATUS_NOT_FOUND, _("no tree is known for this URN"));
      return;
    }
  etag = g_strdup_printf ("\"%s\"", urn + strlen (ALV_URN_PREFIX));
  length = g_strdup_printf ("%" G_GUINT64_FORMAT, alv_hash_tree_get_length (tree));
  block = g_strdup_printf ("%u", alv_hash_tree_get_block_size (tree));
  depth = g_strdup_printf ("%u", alv_hash_tree_get_serialized_depth (tree));
  soup_message_headers_replace (resp, ALV_HEADER_CONTENT_URN, urn);
  soup_message_headers_replace (resp, "ETag", etag);
  soup_message_headers_replace (resp, "Cache-Control", "public, max-age=31536000, immutable");
  soup_message_headers_replace (resp, "X-Content-Length", length);
  soup_message_headers_replace (resp, "X-Block-Size", block);
  soup_message_headers_replace (resp, "X-Thex-Depth", depth);
  inm = soup_message_headers_get_one (soup_server_message_get_request_headers (msg),
                                      "If-None-Match");
  if (inm != NULL && (strstr (inm, etag) != NULL || strcmp (inm, "*") == 0))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_MODIFIED, NULL);
      log_request (MSG_REPLY (msg), SOUP_STATUS_NOT_MODIFIED, NULL);
      return;
    }
  data = alv_hash_tree_serialize (tree);
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_server_message_set_response (msg, "application/octet-stream", SOUP_MEMORY_COPY,
                                    g_bytes_get_data (data, NULL), g_bytes_get_size (data));
  log_request (MSG_REPLY (msg), SOUP_STATUS_OK, NULL);
}

static gboolean
parse_event (const char       *text,
             GatewayPeerEvent *event)
{
  if (text == NULL || *text == '\0' || strcmp (text, "update") == 0)
    *event = GATEWAY_PEER_EVENT_UPDATE;
  else if (strcmp (text, "started") == 0)
    *event = GATEWAY_PEER_EVENT_STARTED;
  else if (strcmp (text, "completed") == 0)
    *event = GATEWAY_PEER_EVENT_COMPLETED;
  else if (strcmp (text, "stopped") == 0)
    *event = GATEWAY_PEER_EVENT_STOPPED;
  else
    return FALSE;
  return TRUE;
}

/* The asker's holdings from `ranges` (X-Available-Ranges syntax) or
 * `blocks` (base64 bitfield); NULL without either. */
static gboolean
parse_have (GHashTable   *form,
            AlvHashTree  *tree,
            AlvBlockMap **have_out,
            GError      **error)
{
  const char *ranges = g_hash_table_lookup (form, "ranges");
  const char *blocks = g_hash_table_lookup (form, "blocks");
  guint64 length = alv_hash_tree_get_length (tree);
  guint block_size = alv_hash_tree_get_block_size (tree);
  guint64 n_blocks = alv_hash_tree_get_n_blocks (tree);

  *have_out = NULL;
  if (n_blocks > ALV_BLOCK_MAP_MAX_BLOCKS)
    return TRUE;
  if (ranges != NULL && *ranges != '\0')
    {
      g_autoptr(AlvRangeSet) set = alv_range_set_parse_available (ranges, length, error);

      if (set == NULL)
        {
          g_prefix_error (error, "ranges: ");
          return FALSE;
        }
      *have_out = alv_block_map_new_from_range_set (set, block_size, length);
      return TRUE;
    }
  if (blocks != NULL && *blocks != '\0')
    {
      gsize len = 0;
      g_autofree guchar *raw = NULL;
      g_autoptr(GBytes) bytes = NULL;

      if (strlen (blocks) > (n_blocks + 7) / 8 * 4 / 3 + 8
          || strspn (blocks, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
             != strlen (blocks))
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("blocks: not a base64 bitfield of this item"));
          return FALSE;
        }
      raw = g_base64_decode (blocks, &len);
      bytes = g_bytes_new_take (g_steal_pointer (&raw), len);
      *have_out = alv_block_map_new_from_bytes (bytes, (guint) n_blocks, error);
      if (*have_out == NULL)
        {
          g_prefix_error (error, "blocks: ");
          return FALSE;
        }
    }
  return TRUE;
}

/* "FIRST-LAST", block numbers, FIRST <= LAST. */
static gboolean
parse_block_run (const char *text,
                 guint      *first,
                 guint      *last)
{
  g_auto(GStrv) parts = g_strsplit (text, "-", 3);
  guint64 a, b;

  if (g_strv_length (parts) != 2 ||
      !g_ascii_string_to_unsigned (parts[0], 10, 0, G_MAXUINT32, &a, NULL) ||
      !g_ascii_string_to_unsigned (parts[1], 10, 0, G_MAXUINT32, &b, NULL) || a > b)
    return FALSE;
  *first = (guint) a;
  *last = (guint) b;
  return TRUE;
}

/* The origin-lease part of an announce (doc/gateway-protocol.md): what
 * the peer holds ends its leases; a lease asked for is granted or not
 * (X-Origin-Lease), and the leases running are named (X-Origin-Pulls) so
 * that the asker copies from those pulling instead of pulling too. */
static void
announce_leases (GatewayServer      *self,
                 Reply              *r,
                 const char         *urn,
                 AlvHashTree        *tree,
                 GInetSocketAddress *peer,
                 const AlvBlockMap  *have,
                 const char         *bad,
                 gboolean            stopped,
                 gboolean            want,
                 gboolean            unreachable,
                 gboolean            rescue,
                 guint               first,
                 guint               last)
{
  g_autofree char *key = alv_alt_format_address (peer);
  guint n_blocks = (guint) MIN (alv_hash_tree_get_n_blocks (tree), G_MAXUINT);
  gint64 now = g_get_monotonic_time ();
  g_autoptr(GString) pulls = g_string_new (NULL);
  guint granted_first, granted_last;
  GArray *running;

  if (self->config.origin_leases == 0 || key == NULL)
    return;
  if (bad != NULL)
    {
      /* peers whose blocks failed verification here (X-Alt syntax) */
      g_autoptr(GPtrArray) accused = alv_alt_parse (bad, ALV_ORIGIN_PULLS_MAX, NULL);

      for (guint i = 0; accused != NULL && i < accused->len; i++)
        {
          g_autofree char *who = alv_alt_format_address (accused->pdata[i]);

          if (who != NULL && gateway_leases_report (self->leases, urn, key, who, now))
            g_message ("%s: %s is distrusted for %s: its origin runs go back", key, who, urn);
        }
    }
  gateway_leases_update (self->leases, urn, key, have, stopped, now);
  /* others cannot copy from a puller they cannot reach: its runs are
   * private (gateway-leases.h) */
  if (want && unreachable && !rescue
      ? gateway_leases_request_private (self->leases, urn, n_blocks,
                                        alv_hash_tree_get_block_size (tree), key, first, last,
                                        now, &granted_first, &granted_last)
      : want && gateway_leases_request (self->leases, urn, n_blocks,
                                        alv_hash_tree_get_block_size (tree), key, first, last,
                                        rescue,
                                        rescue ? gateway_peers_count_holding (self->peers, urn, first,
                                                                              GATEWAY_LEASES_RESCUE_RARE + 1)
                                               : G_MAXUINT,
                                        now, &granted_first, &granted_last))
    {
      g_autofree char *value = g_strdup_printf ("%u-%u", granted_first, granted_last);

      reply_header (r, ALV_HEADER_ORIGIN_LEASE, value);
      self->stats.leases++;
    }
  else
    reply_header (r, ALV_HEADER_ORIGIN_LEASE, "none");
  running = gateway_leases_running (self->leases, urn, ALV_ORIGIN_PULLS_MAX, now);
  for (guint k = 0; k < running->len; k++)
    {
      const GatewayLease *l = &g_array_index (running, GatewayLease, k);

      if (g_strcmp0 (l->holder, key) == 0
          || (self->reach != NULL
              && gateway_reach_check_lookup (self->reach, l->holder) == ALV_REACHABLE_NO))
        continue;
      g_string_append_printf (pulls, "%s%s %u-%u", pulls->len > 0 ? ", " : "",
                              l->holder, l->first, l->last);
    }
  if (pulls->len > 0)
    reply_header (r, ALV_HEADER_ORIGIN_PULLS, pulls->str);
}

/* The peers part of an announce answer: its lines and X-Alt. */
static void
answer_peers (GatewayServer *self,
              Reply         *r,
              GPtrArray     *peers)
{
  g_autoptr(GString) body = g_string_sized_new (32 * peers->len + 1);
  g_autoptr(GString) alt = g_string_sized_new (32 * peers->len + 1);
  guint n_alt = 0;

  /* each address formatted once, for its line and for X-Alt (as
   * alv_alt_format() writes it) */
  for (guint i = 0; i < peers->len; i++)
    {
      g_autofree char *entry = alv_alt_format_address (peers->pdata[i]);

      if (entry == NULL)
        continue;
      g_string_append (body, entry);
      g_string_append_c (body, '\n');
      if (n_alt < self->config.max_peers)
        {
          if (n_alt++ > 0)
            g_string_append_c (alt, ',');
          g_string_append (alt, entry);
        }
    }
  if (n_alt > 0)
    reply_header (r, ALV_HEADER_ALT, alt->str);
  reply_status (r, SOUP_STATUS_OK, NULL);
  reply_body (r, "text/plain; charset=utf-8", body->str, body->len);
  log_request (r, SOUP_STATUS_OK, NULL);
}

static void
announce_shared_cb (gboolean   ok,
                    GPtrArray *sample,
                    gpointer   user_data)
{
  Pending *p = user_data;
  GatewayServer *self = p->self;
  g_autoptr(GPtrArray) peers = NULL;
  WaiterReply wr;

  if (pending_is_over (p))
    {
      pending_free (p);
      return;
    }
  if (!ok)
    peers = gateway_peers_select (self->peers, p->urn, p->peer, p->have, p->numwant);
  else
    peers = gateway_peers_choose (self->peers, sample, p->n_blocks, p->have, p->numwant);
  if (p->msg != NULL)
    {
      answer_peers (self, MSG_REPLY (p->msg), peers);
      soup_server_message_unpause (p->msg);
    }
  else
    {
      answer_peers (self, front_reply_begin (&wr, p->method, "/announce", p->remote, p->headers),
                    peers);
      front_reply_end (self, p->ticket, &wr);
    }
  pending_free (p);
}

/* Records the announce in the shared store and answers @r later with a
 * sample of its peers (favouring, as the local table does, those holding
 * what the asker lacks); FALSE when the store is down. */
static gboolean
announce_shared (GatewayServer      *self,
                 Reply              *r,
                 const char         *urn,
                 guint               n_blocks,
                 GInetSocketAddress *peer,
                 GatewayPeerEvent    event,
                 const AlvBlockMap  *have,
                 guint               numwant)
{
  g_autofree char *key = NULL;
  gboolean stopped = event == GATEWAY_PEER_EVENT_STOPPED;
  Pending *p;
  /* a sample of four times the peers wanted leaves the weighting some
   * choice while reading a bounded number of entries */
  guint sample = stopped ? 0 : MIN (self->config.max_peers_per_urn, numwant * 4 + 1);

  if (self->shared == NULL || !gateway_shared_is_up (self->shared))
    return FALSE;
  key = alv_alt_format_address (peer);
  p = r->msg != NULL ? pending_new (self, r->msg) : pending_new_front (self, r);
  p->urn = g_strdup (urn);
  p->peer = g_object_ref (peer);
  p->have = event == GATEWAY_PEER_EVENT_COMPLETED || have == NULL ? NULL : alv_block_map_copy (have);
  p->n_blocks = n_blocks;
  p->numwant = stopped ? 0 : numwant;
  if (!gateway_shared_announce (self->shared, urn, key, n_blocks,
                                event == GATEWAY_PEER_EVENT_COMPLETED, have, stopped,
                                self->config.peer_ttl, self->config.max_peers_per_urn,
                                sample, announce_shared_cb, p))
    {
      pending_free (p);
      return FALSE;
    }
  if (r->msg != NULL)
    soup_server_message_pause (r->msg);
  return TRUE;
}

static void
handle_announce (GatewayServer     *self,
                 SoupServerMessage *msg,
                 GHashTable        *query)
{
  (void) handle_announce_full (self, MSG_REPLY (msg), query, TRUE);
}

/* Returns TRUE when the answer comes later, with a shared store that is
 * up (a libsoup request is paused; the fast path's answered with its
 * ticket). */
static gboolean
handle_announce_full (GatewayServer *self,
                      Reply         *r,
                      GHashTable    *query,
                      gboolean       may_ask)
{
  g_autoptr(GHashTable) form = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *urn = NULL;
  g_autoptr(GInetAddress) address = client_address (self, r);
  g_autoptr(GInetSocketAddress) self_addr = NULL;
  g_autoptr(AlvBlockMap) have = NULL;
  g_autoptr(GPtrArray) peers = NULL;
  char interval[16];
  guint n_blocks;
  const char *text;
  GatewayPeerEvent event;
  AlvHashTree *tree;
  guint64 port, numwant = self->config.max_peers;
  guint want_first = 0, want_last = 0;
  gboolean want_lease = FALSE;
  const char *bad;
  AlvReachable reachable = ALV_REACHABLE_UNKNOWN;

  if (may_ask)
    self->stats.announces++;
  if (r->msg != NULL && soup_server_message_get_method (r->msg) == SOUP_METHOD_POST)
    {
      SoupMessageBody *req_body = soup_server_message_get_request_body (r->msg);
      g_autoptr(GBytes) flat = soup_message_body_flatten (req_body);
      g_autofree char *text_body = g_strndup (g_bytes_get_data (flat, NULL), g_bytes_get_size (flat));

      form = soup_form_decode (text_body);
    }
  else
    form = query ? g_hash_table_ref (query) : g_hash_table_new (g_str_hash, g_str_equal);

  if (address == NULL)
    {
      refuse (self, r, SOUP_STATUS_BAD_REQUEST, _("cannot tell the peer's address"));
      return FALSE;
    }
  text = g_hash_table_lookup (form, "urn");
  if (text == NULL || (urn = alv_urn_normalize (text, &error)) == NULL)
    {
      refuse (self, r, SOUP_STATUS_BAD_REQUEST,
              error ? error->message : _("missing urn parameter"));
      return FALSE;
    }
  tree = gateway_store_get_tree (self->store, urn);
  if (tree == NULL && may_ask && r->msg != NULL && tree_for_request (self, r->msg, urn, form))
    return TRUE;
  if (tree == NULL)
    {
      refuse (self, r, SOUP_STATUS_NOT_FOUND,
              _("unknown URN: resolve a URL of this content first"));
      return FALSE;
    }
  text = g_hash_table_lookup (form, "port");
  if (text == NULL || !g_ascii_string_to_unsigned (text, 10, 1, 65535, &port, NULL))
    {
      refuse (self, r, SOUP_STATUS_BAD_REQUEST, _("port must be a number from 1 to 65535"));
      return FALSE;
    }
  if (!parse_event (g_hash_table_lookup (form, "event"), &event))
    {
      refuse (self, r, SOUP_STATUS_BAD_REQUEST,
              _("event must be started, completed, stopped or update"));
      return FALSE;
    }
  text = g_hash_table_lookup (form, "numwant");
  if (text != NULL && !g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT32, &numwant, NULL))
    {
      refuse (self, r, SOUP_STATUS_BAD_REQUEST, _("numwant must be a number"));
      return FALSE;
    }
  numwant = MIN (numwant, self->config.max_peers);
  if (!parse_have (form, tree, &have, &error))
    {
      refuse (self, r, SOUP_STATUS_BAD_REQUEST, error->message);
      return FALSE;
    }
  text = g_hash_table_lookup (form, "lease");
  if (text != NULL && !parse_block_run (text, &want_first, &want_last))
    {
      refuse (self, r, SOUP_STATUS_BAD_REQUEST,
              _("lease must be a run of blocks FIRST-LAST"));
      return FALSE;
    }
  want_lease = text != NULL && event != GATEWAY_PEER_EVENT_STOPPED;
  bad = g_hash_table_lookup (form, "bad");

  self_addr = G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (address, (guint16) port));
  n_blocks = (guint) MIN (alv_hash_tree_get_n_blocks (tree), G_MAXUINT);
  if (self->shared == NULL || !gateway_shared_is_up (self->shared))
    peers = gateway_peers_select (self->peers, urn, self_addr,
                                  event == GATEWAY_PEER_EVENT_COMPLETED ? NULL : have,
                                  event == GATEWAY_PEER_EVENT_STOPPED ? 0 : (guint) numwant);
  /* the local table too, with a shared store: its per-address limit, and
   * what this gateway answers from while the store is down */
  if (gateway_peers_announce (self->peers, urn, n_blocks, address, (guint16) port, event,
                              have ? alv_block_map_copy (have) : NULL) != GATEWAY_PEERS_OK)
    {
      refuse (self, r, STATUS_TOO_MANY_REQUESTS,
              _("too many peer entries from this address"));
      return FALSE;
    }
  /* connect back to the observed address only, never one the peer names
   * (a refused announce starts no check) */
  if (self->reach != NULL && event != GATEWAY_PEER_EVENT_STOPPED)
    reachable = gateway_reach_check_observe (self->reach, address, (guint16) port);

  announce_leases (self, r, urn, tree, self_addr, have, bad,
                   event == GATEWAY_PEER_EVENT_STOPPED, want_lease,
                   reachable == ALV_REACHABLE_NO,
                   g_strcmp0 (g_hash_table_lookup (form, "rescue"), "1") == 0,
                   want_first, want_last);

  g_snprintf (interval, sizeof interval, "%u", MAX (gateway_peers_get_ttl (self->peers) / 2, 1));
  reply_header (r, ALV_HEADER_CONTENT_URN, urn);
  reply_header (r, "X-Announce-Interval", interval);
  reply_header (r, ALV_HEADER_REACHABLE, alv_reachable_to_string (reachable));
  {
    /* how the others know this peer: it cannot tell itself behind NAT */
    g_autofree char *observed = alv_alt_format_address (self_addr);

    reply_header (r, "X-Observed-Address", observed);
  }
  reply_header (r, "Cache-Control", "no-store");
  if (peers == NULL
      && announce_shared (self, r, urn, n_blocks, self_addr, event, have,
                          event == GATEWAY_PEER_EVENT_STOPPED ? 0 : (guint) numwant))
    return TRUE;
  if (peers == NULL)
    peers = gateway_peers_select (self->peers, urn, self_addr,
                                  event == GATEWAY_PEER_EVENT_COMPLETED ? NULL : have,
                                  event == GATEWAY_PEER_EVENT_STOPPED ? 0 : (guint) numwant);
  answer_peers (self, r, peers);
  return FALSE;
}

static void
handle_status (GatewayServer     *self,
               SoupServerMessage *msg)
{
  g_autoptr(GString) body = g_string_new (NULL);
  const GatewayStats *s = gateway_server_get_stats (self);

  g_string_append_printf (body,
                          "entries: %u\ntrees: %u\npeers: %u\njobs: %u\n"
                          "requests: %" G_GUINT64_FORMAT "\nresolves: %" G_GUINT64_FORMAT "\n"
                          "resolves-immediate: %" G_GUINT64_FORMAT "\naccepted: %" G_GUINT64_FORMAT "\n"
                          "fetches: %" G_GUINT64_FORMAT "\nrevalidations: %" G_GUINT64_FORMAT "\n"
                          "bytes-fetched: %" G_GUINT64_FORMAT "\nfiles-hashed: %" G_GUINT64_FORMAT "\n"
                          "announces: %" G_GUINT64_FORMAT "\nrefusals: %" G_GUINT64_FORMAT "\n"
                          "bytes-served: %" G_GUINT64_FORMAT "\nleases: %" G_GUINT64_FORMAT "\n"
                          "peers-max: %u\npeers-evicted: %" G_GUINT64_FORMAT "\n"
                          "reachable: %" G_GUINT64_FORMAT "\nunreachable: %" G_GUINT64_FORMAT "\n"
                          "reach-dropped: %" G_GUINT64_FORMAT "\n"
                          "urls-max: %u\nurls-evicted: %" G_GUINT64_FORMAT "\n"
                          "new-urls-refused: %" G_GUINT64_FORMAT "\n"
                          "origin-busy: %" G_GUINT64_FORMAT "\n",
                          gateway_store_get_n_entries (self->store),
                          gateway_store_get_n_trees (self->store),
                          gateway_peers_get_n_entries (self->peers),
                          g_hash_table_size (self->jobs),
                          s->requests, s->resolves, s->resolves_immediate, s->accepted,
                          s->fetches, s->revalidations, s->bytes_fetched, s->files_hashed,
                          s->announces, s->refusals, s->bytes_served, s->leases,
                          gateway_peers_get_max_entries (self->peers), s->peers_evicted,
                          s->reachable, s->unreachable, s->reach_dropped,
                          gateway_store_get_max_entries (self->store), s->urls_evicted,
                          s->new_urls_refused, s->origin_busy);
  if (self->shared == NULL)
    g_string_append (body, "store: embedded\n");
  else
    {
      GatewayRedis *redis = gateway_shared_get_redis (self->shared);

      g_string_append_printf (body, "store: %s\nstore-up: %d\n", gateway_redis_get_name (redis),
                              gateway_redis_is_up (redis) ? 1 : 0);
      if (gateway_redis_is_up (redis))
        g_string_append (body, "store-state: up\n");
      else
        g_string_append_printf (body, "store-state: degraded (%s): resolve from this gateway's "
                                "cache, peers from its memory\n", gateway_redis_get_error (redis));
    }
  soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
  soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                "Cache-Control", "no-store");
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY,
                                    body->str, body->len);
}

static const char *
urn_for_static (const char *rel,
                const char *file_id,
                gpointer    user_data)
{
  GatewayServer *self = user_data;
  g_autofree char *escaped = g_uri_escape_string (rel, "/", FALSE);
  g_autofree char *url = NULL;
  g_autofree char *base = NULL;
  const GatewayEntry *entry;

  if (self->base == NULL)
    return NULL;
  base = g_uri_to_string (self->base);
  url = g_strconcat (base, g_str_has_suffix (base, "/") ? "" : "/", escaped, NULL);
  entry = gateway_store_lookup (self->store, url);
  if (entry == NULL || g_strcmp0 (entry->file_id, file_id) != 0)
    return NULL;
  return entry->urn;
}

static void
server_cb (SoupServer        *server G_GNUC_UNUSED,
           SoupServerMessage *msg,
           const char        *path,
           GHashTable        *query,
           gpointer           user_data)
{
  GatewayServer *self = user_data;
  const char *method = soup_server_message_get_method (msg);
  gboolean is_get = method == SOUP_METHOD_GET || method == SOUP_METHOD_HEAD;

  if (strcmp (path, "/announce") == 0)
    {
      if (!is_get && method != SOUP_METHOD_POST)
        {
          soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                        "Allow", "GET, HEAD, POST");
          refuse (self, MSG_REPLY (msg), SOUP_STATUS_METHOD_NOT_ALLOWED, _("use GET or POST"));
          return;
        }
      handle_announce (self, msg, query);
      return;
    }
  if (!is_get)
    {
      soup_message_headers_replace (soup_server_message_get_response_headers (msg),
                                    "Allow", "GET, HEAD");
      refuse (self, MSG_REPLY (msg), SOUP_STATUS_METHOD_NOT_ALLOWED, _("use GET or HEAD"));
      return;
    }
  if (strcmp (path, "/resolve") == 0)
    handle_resolve (self, msg, query);
  else if (g_str_has_prefix (path, THEX_PATH))
    handle_thex (self, msg, path + strlen (THEX_PATH));
  else if (strcmp (path, N2X_PATH) == 0)
    {
      const char *q = g_uri_get_query (soup_server_message_get_uri (msg));

      handle_thex (self, msg, q ? q : "");
    }
  else if (strcmp (path, "/status") == 0)
    handle_status (self, msg);
  else if (self->docroot != NULL)
    {
      const char *raw = g_uri_get_path (soup_server_message_get_uri (msg));
      g_autofree char *rel = gateway_docroot_map_path (raw);
      g_autofree char *index_rel = NULL;
      g_autofree char *listing = NULL;

      /* a directory, the docroot's own included: its index.html, or a
       * listing (what a station's <link> and a browser want) */
      if (rel != NULL || strcmp (raw, "/") == 0)
        listing = gateway_docroot_index (self->docroot, rel != NULL ? rel : "", &index_rel);
      if (listing != NULL || index_rel != NULL)
        {
          if (!g_str_has_suffix (raw, "/"))
            {
              g_autofree char *to = g_strconcat (raw, "/", NULL);

              soup_server_message_set_redirect (msg, SOUP_STATUS_MOVED_PERMANENTLY, to);
              return;
            }
          if (index_rel != NULL)
            {
              log_request (MSG_REPLY (msg), 0, "static file");
              gateway_static_serve (self->docroot, msg, index_rel, urn_for_static, self);
              return;
            }
          {
            gsize len = strlen (listing);

            log_request (MSG_REPLY (msg), SOUP_STATUS_OK, "directory listing");
            soup_server_message_set_status (msg, SOUP_STATUS_OK, NULL);
            soup_server_message_set_response (msg, "text/html; charset=utf-8", SOUP_MEMORY_TAKE,
                                              g_steal_pointer (&listing), len);
          }
          return;
        }
      if (rel == NULL)
        {
          refuse (self, MSG_REPLY (msg), SOUP_STATUS_NOT_FOUND, _("no such file"));
          return;
        }
      log_request (MSG_REPLY (msg), 0, "static file");
      gateway_static_serve (self->docroot, msg, rel, urn_for_static, self);
    }
  else
    refuse (self, MSG_REPLY (msg), SOUP_STATUS_NOT_FOUND, _("no such endpoint"));
}

/* The checks of every request once its headers are in, before any body
 * is read: the per-address rate limit, then the sizes of the headers
 * (@header_bytes over @n_headers lines), of the URI and of the body.
 * Returns TRUE when it refused the request. */
static gboolean
early_refuse (GatewayServer *self,
              Reply         *r,
              gsize          header_bytes,
              guint          n_headers,
              gsize          uri_len,
              gboolean       body_too_large)
{
  g_autoptr(GInetAddress) address = client_address (self, r);

  self->stats.requests++;
  if (address != NULL)
    {
      g_autofree char *ip = g_inet_address_to_string (address);
      guint wait = 1;

      if (!gateway_budget_take (self->requests, ip, g_get_monotonic_time (), &wait))
        {
          g_autofree char *retry = g_strdup_printf ("%u", wait);

          reply_header (r, "Retry-After", retry);
          refuse (self, r, STATUS_TOO_MANY_REQUESTS,
                  _("too many requests from this address; slow down"));
          return TRUE;
        }
    }
  if (header_bytes > self->config.max_header_bytes || n_headers > MAX_HEADERS)
    {
      refuse (self, r, STATUS_HEADERS_TOO_LARGE, _("the request headers are too large"));
      return TRUE;
    }
  if (uri_len > (gsize) self->config.max_url_length * 3 + 64)
    {
      refuse (self, r, SOUP_STATUS_REQUEST_URI_TOO_LONG, _("the request URI is too long"));
      return TRUE;
    }
  if (body_too_large)
    {
      refuse (self, r, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
              _("request bodies are limited to 64 KiB with a Content-Length"));
      return TRUE;
    }
  return FALSE;
}

/* Runs once the headers are in, before any body is read. */
static void
early_cb (SoupServer        *server G_GNUC_UNUSED,
          SoupServerMessage *msg,
          const char        *path G_GNUC_UNUSED,
          GHashTable        *query G_GNUC_UNUSED,
          gpointer           user_data)
{
  GatewayServer *self = user_data;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeadersIter iter;
  const char *name, *value;
  gsize total = 0;
  guint n = 0;
  GUri *uri = soup_server_message_get_uri (msg);
  gsize uri_len = strlen (g_uri_get_path (uri))
                  + (g_uri_get_query (uri) ? strlen (g_uri_get_query (uri)) : 0);

  soup_message_headers_iter_init (&iter, req);
  while (soup_message_headers_iter_next (&iter, &name, &value))
    {
      total += strlen (name) + strlen (value) + 4;
      n++;
    }
  (void) early_refuse (self, MSG_REPLY (msg), total, n, uri_len,
                       soup_message_headers_get_encoding (req) == SOUP_ENCODING_CHUNKED
                       || soup_message_headers_get_content_length (req) > MAX_FORM_BODY);
}

/* ------------------------------------------------------------------ */
/* The fast path (alv-http-front.h)                                    */

static gboolean
path_is (const AlvHttpRequest *req,
         const char           *path)
{
  return req->path_len == strlen (path) && memcmp (req->path, path, req->path_len) == 0;
}

/* Announce and resolve answered as server_cb would answer them (the same
 * code, through a Reply): at once, or, for a resolve that waits for its
 * URL's job (a docroot file is checked on every resolve), when the job
 * is done, on the same connection, planned once; an announce with the
 * shared store up, when the store answers.  Declined (libsoup takes the
 * request): another path, a resolve that asks the shared store, an
 * announce of a URN whose tree is only in the shared store. */
static AlvHttpFrontResult
fast_cb (const AlvHttpRequest *req,
         GSocketAddress       *remote,
         AlvHttpAnswer        *answer,
         gpointer              user_data)
{
  GatewayServer *self = user_data;
  Reply r = { NULL, req, answer, remote };
  gboolean announce = path_is (req, "/announce");
  g_autoptr(GHashTable) query = NULL;
  g_auto(Target) target = { 0, };
  g_autoptr(GError) error = NULL;
  const GatewayEntry *entry = NULL;
  ResolvePlan plan = RESOLVE_WAIT;
  guint status = 0, n_forwarded = 0;
  gsize total = 0;

  if (self->closing || (!announce && !path_is (req, "/resolve")))
    return ALV_HTTP_FRONT_DECLINED;
  /* libsoup joins repeated lines; rare enough to leave to it */
  (void) alv_http_request_find (req, "X-Forwarded-For", &n_forwarded);
  if (n_forwarded > 1)
    return ALV_HTTP_FRONT_DECLINED;
  if (req->query != NULL)
    {
      g_autofree char *text = g_strndup (req->query, req->query_len);

      query = soup_form_decode (text);
    }
  /* an announce of a URN whose tree another gateway stored: libsoup
   * asks the shared store for it (handle_announce_full()) */
  if (announce && self->shared != NULL && gateway_shared_is_up (self->shared))
    {
      const char *text = query ? g_hash_table_lookup (query, "urn") : NULL;
      g_autofree char *urn = text ? alv_urn_normalize (text, NULL) : NULL;

      if (urn != NULL && gateway_store_get_tree (self->store, urn) == NULL)
        return ALV_HTTP_FRONT_DECLINED;
    }
  if (!announce)
    {
      plan = resolve_plan (self, query ? g_hash_table_lookup (query, "url") : NULL, &target,
                           &entry, &status, &error);
      /* an origin URL may have been hashed by another gateway: libsoup
       * asks the shared store (handle_resolve()) */
      if (plan == RESOLVE_WAIT && target.kind == TARGET_ORIGIN
          && !g_hash_table_contains (self->jobs, target.url)
          && self->shared != NULL && gateway_shared_is_up (self->shared))
        return ALV_HTTP_FRONT_DECLINED;
    }
  for (guint i = 0; i < req->n_headers; i++)
    total += req->headers[i].name_len + req->headers[i].value_len + 4;
  if (early_refuse (self, &r, total, req->n_headers, req->path_len + req->query_len, FALSE))
    return ALV_HTTP_FRONT_ANSWERED;
  if (announce)
    return handle_announce_full (self, &r, query, TRUE) ? ALV_HTTP_FRONT_LATER
                                                        : ALV_HTTP_FRONT_ANSWERED;
  self->stats.resolves++;
  if (plan == RESOLVE_WAIT)
    {
      /* the same brakes as libsoup's path: a new URL's budget, the
       * origin's fetch slots */
      if (!admit_job (self, &r, &target, entry))
        return ALV_HTTP_FRONT_ANSWERED;
      add_front_waiter (self, start_job (self, &target), req, remote, answer->ticket);
      return ALV_HTTP_FRONT_LATER;
    }
  resolve_answer (self, &r, plan, entry, status, error);
  return ALV_HTTP_FRONT_ANSWERED;
}

/* The front's own refusals (a broken Content-Length): worded, counted
 * and logged as every other refusal, on /status and D-Bus too. */
static void
front_refuse_cb (const AlvHttpRequest *req,
                 GSocketAddress       *remote,
                 guint                 status,
                 const char           *reason,
                 AlvHttpAnswer        *answer,
                 gpointer              user_data)
{
  GatewayServer *self = user_data;
  Reply r = { NULL, req, answer, remote };

  self->stats.requests++;
  refuse (self, &r, status, reason);
}

static void
front_take_cb (AlvListener    *listener G_GNUC_UNUSED,
               int             fd,
               GSocketAddress *remote,
               const char     *address,
               gpointer        user_data)
{
  GatewayServer *self = user_data;

  alv_http_front_take (self->front, fd, remote, address);
}

/* At the listener's cap: the front's connections whose clients left,
 * before the front has read their end. */
static guint
front_reap_cb (AlvListener *listener G_GNUC_UNUSED,
               const char  *address,
               gpointer     user_data)
{
  GatewayServer *self = user_data;

  return alv_http_front_reap (self->front, address);
}

static void
hand_over_cb (int             fd,
              GSocketAddress *remote,
              const char     *address,
              GBytes         *unread,
              gpointer        user_data)
{
  GatewayServer *self = user_data;

  alv_listener_hand_over (self->listener, fd, remote, address, unread);
}

static void
front_closed_cb (const char *address,
                 gpointer    user_data)
{
  GatewayServer *self = user_data;

  alv_listener_release (self->listener, address);
}

/* A peer known unreachable is never listed as a source (unknown is
 * listed: new peers are not held back until their check ends). */
static gboolean
may_list_peer (const char *key,
               gpointer    user_data)
{
  GatewayServer *self = user_data;

  return gateway_reach_check_lookup (self->reach, key) != ALV_REACHABLE_NO;
}

static gboolean
sweep_cb (gpointer user_data)
{
  GatewayServer *self = user_data;
  gint64 now = g_get_monotonic_time ();

  gateway_peers_expire (self->peers);
  if (self->reach != NULL)
    gateway_reach_check_expire (self->reach);
  /* a bucket idle long enough to be full again carries no state */
  gateway_budget_expire (self->requests, now);
  gateway_budget_expire (self->new_urls, now);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */

GatewayServer *
gateway_server_new (const GatewayConfig *config,
                    GError             **error)
{
  g_autoptr(GatewayServer) self = g_new0 (GatewayServer, 1);
  g_autofree char *agent = g_strdup_printf ("alluvium-gateway/%s", PACKAGE_VERSION);

  config_copy (&self->config, config);
  self->jobs = g_hash_table_new (g_str_hash, g_str_equal);
  self->refused = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->requests = gateway_budget_new (config->rate_limit, config->rate_burst,
                                       GATEWAY_BUDGET_MAX_KEYS);
  self->new_urls = gateway_budget_new (config->new_url_rate / 60.0, config->new_url_burst,
                                       GATEWAY_BUDGET_MAX_KEYS);
  self->slots = gateway_fetch_slots_new (config->max_fetches_per_origin);
  self->origins = g_ptr_array_new_with_free_func ((GDestroyNotify) g_uri_unref);
  self->peers = gateway_peers_new (config->peer_ttl, config->max_peers_per_urn,
                                   config->max_entries_per_address,
                                   config->max_peer_entries);
  self->leases = gateway_leases_new (config->origin_leases, GATEWAY_LEASES_RUN_BYTES,
                                     GATEWAY_LEASES_TTL_US);
  if (config->connect_back_ms > 0)
    {
      self->reach = gateway_reach_check_new (gateway_reach_new (GATEWAY_REACH_TTL_S,
                                                                GATEWAY_REACH_MAX_RUNNING,
                                                                GATEWAY_REACH_MAX_QUEUED,
                                                                GATEWAY_REACH_PER_ADDRESS,
                                                                GATEWAY_REACH_MAX_RESULTS),
                                             config->connect_back_ms);
      gateway_peers_set_source_func (self->peers, may_list_peer, self);
    }

  if (!alv_hash_tree_block_size_is_valid (config->block_size))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("--block-size must be a power of two from 1024 to 16 MiB"));
      return NULL;
    }
  for (guint i = 0; config->origins != NULL && config->origins[i] != NULL; i++)
    {
      GUri *uri = parse_http_url (config->origins[i], error);

      if (uri == NULL || !gateway_origin_check_url (config->origins[i], error))
        {
          g_clear_pointer (&uri, g_uri_unref);
          g_prefix_error (error, "--origin: ");
          return NULL;
        }
      /* compared with URLs in their normal form */
      g_ptr_array_add (self->origins, gateway_url_normalize (uri, GATEWAY_URL_QUERY_DROP));
      g_uri_unref (uri);
    }
  if (config->docroot != NULL)
    {
      self->docroot = gateway_docroot_new (config->docroot, error);
      if (self->docroot == NULL)
        return NULL;
    }
  if (config->base_url != NULL)
    {
      g_autoptr(GUri) base = parse_http_url (config->base_url, error);

      if (base == NULL)
        {
          g_prefix_error (error, "--base-url: ");
          return NULL;
        }
      self->base = gateway_url_normalize (base, GATEWAY_URL_QUERY_DROP);
    }
  self->store = gateway_store_new (config->state_dir, config->max_urls, error);
  if (self->store == NULL)
    return NULL;
  if (config->store != NULL && strcmp (config->store, "embedded") != 0)
    {
      GatewayRedisAddress address;

      if (!gateway_redis_address_parse (config->store, &address, error))
        {
          g_prefix_error (error, "--store: ");
          return NULL;
        }
      self->shared = gateway_shared_new (&address, NULL, NULL);
      gateway_redis_address_clear (&address);
    }
  /* a job makes progress at least every --fetch-timeout, and extends its
   * lock every third of this: a gateway killed mid-hash holds the URL
   * back this long at most */
  self->lock_ttl_ms = MAX (2 * config->fetch_timeout, 2) * 1000;

  self->sessions = gateway_fetch_sessions_new (agent, config->fetch_timeout);
  /* raw paths: libsoup would decode the request path, and the docroot's
   * file names are decoded once, by gateway_docroot_map_path() (decoded
   * twice, "Top 100%25 Hits.mp3" was never found) */
  self->server = soup_server_new ("server-header", agent, "raw-paths", TRUE, NULL);
  soup_server_add_early_handler (self->server, NULL, early_cb, self, NULL);
  soup_server_add_handler (self->server, NULL, server_cb, self, NULL);
  self->sweep_id = g_timeout_add_seconds (MAX (MIN (config->peer_ttl / 2, 30), 1), sweep_cb, self);
  return g_steal_pointer (&self);
}

gboolean
gateway_server_listen (GatewayServer *self,
                       GError       **error)
{
  g_autoptr(GSocketAddress) addr = g_inet_socket_address_new_from_string (self->config.address,
                                                                          self->config.port);
  g_autoptr(GSocketAddress) effective = NULL;
  g_autofree char *host = NULL;
  guint port;

  if (addr == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("--address: “%s” is not an IP address"), self->config.address);
      return FALSE;
    }
  if (self->listener == NULL)
    {
      const AlvListenerConfig limits = {
        .max_connections = self->config.max_connections,
        .max_per_address = self->config.max_connections_per_address,
        /* a docroot answer holds a file besides its socket */
        .fd_share_percent = 40,
        .idle_timeout = self->config.idle_timeout,
        .header_timeout = self->config.idle_timeout,
      };

      g_autofree char *agent = NULL;
      AlvHttpFrontConfig front = {
        .header_timeout = self->config.idle_timeout,
        .idle_timeout = self->config.idle_timeout,
      };

      /* the fast path's answers name the same server */
      g_object_get (self->server, "server-header", &agent, NULL);
      front.server = agent;

      self->listener = alv_listener_new (_("Gateway"), &limits);
      if (!alv_listener_serve_soup (self->listener, self->server, error))
        return FALSE;
      self->front = alv_http_front_new (&front, fast_cb, hand_over_cb, front_closed_cb, self,
                                        error);
      if (self->front == NULL)
        return FALSE;
      alv_http_front_set_refuse_func (self->front, front_refuse_cb);
      alv_listener_set_front (self->listener, front_take_cb, front_reap_cb, self);
      for (char **proxy = self->config.trusted_proxies; proxy != NULL && *proxy != NULL; proxy++)
        {
          g_autoptr(GInetAddress) inet = g_inet_address_new_from_string (*proxy);

          if (inet != NULL)
            alv_listener_exempt_address (self->listener, inet);
        }
    }
  if (!alv_listener_add_address (self->listener, addr, &effective, error))
    return FALSE;
  host = g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (effective)));
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  self->bound_url = g_strdup_printf (strchr (host, ':') ? "http://[%s]:%u/" : "http://%s:%u/",
                                     host, port);
  if (g_inet_address_get_is_any (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (effective))))
    self->url = g_strdup_printf ("http://127.0.0.1:%u/", port);
  else
    self->url = g_strdup (self->bound_url);

  if (self->docroot != NULL && self->base == NULL)
    self->base = g_uri_parse (self->url, SOUP_HTTP_URI_FLAGS, NULL);
  return TRUE;
}

char *
gateway_server_describe (GatewayServer *self)
{
  g_autoptr(GString) text = g_string_new (NULL);

  g_return_val_if_fail (self->url != NULL, NULL);
  if (g_strcmp0 (self->bound_url, self->url) != 0)
    g_string_append_printf (text, _("bound to %s: every address of this host, under any of "
                                    "its names\n"), self->bound_url);
  if (self->docroot != NULL)
    {
      g_autofree char *base = g_uri_to_string (self->base);
      g_autofree char *dir = g_filename_display_name (gateway_docroot_get_path (self->docroot));

      /* resolved under that one URL: a playlist built for another name
       * of this host needs --base-url (a name per entry would let anyone
       * make the gateway hash a file again under every name they make up) */
      g_string_append_printf (text, _("serving %s here and resolving it at %s (--base-url)\n"),
                              dir, base);
    }
  for (guint i = 0; i < self->origins->len; i++)
    {
      g_autofree char *origin = g_uri_to_string (self->origins->pdata[i]);

      g_string_append_printf (text, _("resolving media under %s\n"), origin);
    }
  if (self->docroot == NULL && self->origins->len == 0)
    g_string_append (text, _("resolving nothing: give --docroot or --origin\n"));
  return g_string_free (g_steal_pointer (&text), FALSE);
}

const char *
gateway_server_get_url (GatewayServer *self)
{
  return self->url;
}

const GatewayStats *
gateway_server_get_stats (GatewayServer *self)
{
  if (self->docroot != NULL)
    self->stats.bytes_served = gateway_docroot_get_bytes_served (self->docroot);
  self->stats.peers_evicted = gateway_peers_get_n_evicted (self->peers);
  self->stats.urls_evicted = gateway_store_get_n_evicted (self->store);
  if (self->reach != NULL)
    {
      GatewayReach *reach = gateway_reach_check_get_policy (self->reach);

      self->stats.reachable = gateway_reach_get_n_results (reach, TRUE);
      self->stats.unreachable = gateway_reach_get_n_results (reach, FALSE);
      self->stats.reach_dropped = gateway_reach_get_n_dropped (reach);
    }
  return &self->stats;
}

guint
gateway_server_get_n_entries (GatewayServer *self)
{
  return gateway_store_get_n_entries (self->store);
}

guint
gateway_server_get_n_peers (GatewayServer *self)
{
  return gateway_peers_get_n_entries (self->peers);
}

guint
gateway_server_get_n_jobs (GatewayServer *self)
{
  return g_hash_table_size (self->jobs);
}

void
gateway_server_free (GatewayServer *self)
{
  if (self == NULL)
    return;
  /* what waits on the shared store is answered (503) now, and nothing
   * new starts */
  self->closing = TRUE;
  /* answer the waiters while their connections are still there */
  if (self->jobs != NULL)
    {
      GHashTableIter iter;
      gpointer value;

      g_hash_table_iter_init (&iter, self->jobs);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        gateway_fetch_cancel (((Job *) value)->fetch);
      while (g_hash_table_size (self->jobs) > 0)
        g_main_context_iteration (NULL, TRUE);
      g_hash_table_unref (self->jobs);
      self->jobs = NULL;
    }
  g_clear_pointer (&self->shared, gateway_shared_free);
  /* the front's connections are the listener's to count */
  g_clear_pointer (&self->front, alv_http_front_free);
  g_clear_object (&self->listener);
  if (self->server != NULL)
    soup_server_disconnect (self->server);
  g_clear_handle_id (&self->sweep_id, g_source_remove);
  g_clear_object (&self->server);
  g_clear_pointer (&self->sessions, gateway_fetch_sessions_free);
  g_clear_pointer (&self->store, gateway_store_free);
  g_clear_pointer (&self->reach, gateway_reach_check_free);
  g_clear_pointer (&self->peers, gateway_peers_free);
  g_clear_pointer (&self->leases, gateway_leases_free);
  g_clear_pointer (&self->docroot, gateway_docroot_free);
  g_clear_pointer (&self->base, g_uri_unref);
  g_clear_pointer (&self->origins, g_ptr_array_unref);
  g_clear_pointer (&self->requests, gateway_budget_free);
  g_clear_pointer (&self->new_urls, gateway_budget_free);
  g_clear_pointer (&self->slots, gateway_fetch_slots_free);
  g_free (self->url);
  g_free (self->bound_url);
  g_clear_pointer (&self->refused, g_hash_table_unref);
  gateway_config_clear (&self->config);
  g_free (self);
}
