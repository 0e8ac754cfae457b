/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Hashing jobs.  An origin job sends one GET (with If-None-Match /
 * If-Modified-Since when the URL was seen before; redirects are not
 * followed, content codings refused) and feeds the body, as it arrives,
 * through an incremental tree hasher: memory stays at one chunk plus one
 * digest per block whatever the size, and the size limit is enforced on
 * the Content-Length and again on the bytes actually read.  The host is
 * looked up first and every address it has is checked: without
 * --allow-private the private, loopback and link-local ones are dropped
 * (a host with no other is refused with 403 before any packet is sent to
 * it), and the origin's SoupSession connects through a
 * GatewayCheckedAddress, to the addresses that passed and no others, so
 * a name that resolves differently a moment later changes nothing.  The
 * address the connection reaches is checked again when it connects, a
 * second line of defence.  A docroot job runs in a
 * GTask thread: open, compare the file's identity with the previous
 * version, hash, and check the file did not change meanwhile.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-fetch.h"

#include <string.h>
#include <unistd.h>
#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-ocn-headers.h"
#include "gateway-checked-address.h"
#include "gateway-head.h"

#define CHUNK_SIZE (64 * 1024)
#define FILE_BUFFER (256 * 1024)

struct _GatewayFetch
{
  GatewayFetchDone done;
  gpointer user_data;
  GCancellable *cancellable;
  GatewayFetchLimits limits;
  char *url;
  GatewayEntry *previous;
  gint hashing;                 /* atomic */

  /* origin */
  GatewayFetchSessions *sessions;
  SoupMessage *msg;
  GInputStream *stream;
  AlvTreeHasher *hasher;
  GatewayHead *head;            /* the head's facts, read while hashing */
  goffset expected;             /* Content-Length or -1 */
  char *unsafe_address;         /* set when the connection was refused */

  /* docroot */
  GatewayDocroot *docroot;
  char *rel;

  GatewayFetchResult result;
};

gboolean
gateway_address_is_allowed (GInetAddress *address,
                            gboolean      allow_private)
{
  return allow_private || alv_alt_address_is_public (address);
}

static void
fetch_free (GatewayFetch *fetch)
{
  g_clear_object (&fetch->cancellable);
  g_clear_object (&fetch->stream);
  g_clear_object (&fetch->msg);
  g_clear_pointer (&fetch->hasher, alv_tree_hasher_free);
  g_clear_pointer (&fetch->head, gateway_head_free);
  g_clear_pointer (&fetch->previous, gateway_entry_free);
  g_clear_pointer (&fetch->result.entry, gateway_entry_free);
  g_clear_pointer (&fetch->result.tree, alv_hash_tree_unref);
  g_free (fetch->result.reason);
  g_free (fetch->unsafe_address);
  g_free (fetch->url);
  g_free (fetch->rel);
  g_free (fetch);
}

static void
complete (GatewayFetch *fetch)
{
  fetch->done (fetch, &fetch->result, fetch->user_data);
  fetch_free (fetch);
}

G_GNUC_PRINTF (4, 5)
static void
set_failure (GatewayFetchResult *result,
             guint               status,
             gboolean            transient,
             const char         *format,
             ...)
{
  va_list args;

  result->ok = FALSE;
  result->status = status;
  result->transient = transient;
  g_free (result->reason);
  va_start (args, format);
  result->reason = g_strdup_vprintf (format, args);
  va_end (args);
}

static GatewayFetch *
fetch_new (const GatewayFetchLimits *limits,
           const char               *url,
           const GatewayEntry       *previous,
           GatewayFetchDone          done,
           gpointer                  user_data)
{
  GatewayFetch *fetch = g_new0 (GatewayFetch, 1);

  fetch->done = done;
  fetch->user_data = user_data;
  fetch->cancellable = g_cancellable_new ();
  fetch->limits = *limits;
  fetch->url = g_strdup (url);
  fetch->previous = previous ? gateway_entry_copy (previous) : NULL;
  fetch->expected = -1;
  return fetch;
}

gboolean
gateway_fetch_is_hashing (GatewayFetch *fetch)
{
  return g_atomic_int_get (&fetch->hashing) != 0;
}

void
gateway_fetch_cancel (GatewayFetch *fetch)
{
  g_cancellable_cancel (fetch->cancellable);
}

static GatewayEntry *
entry_for_tree (GatewayFetch *fetch,
                AlvHashTree  *tree,
                const char   *media_type,
                GatewayHead  *head)
{
  GatewayEntry *entry = g_new0 (GatewayEntry, 1);

  entry->head = gateway_head_facts (head, TRUE);

  entry->url = g_strdup (fetch->url);
  entry->urn = alv_hash_tree_get_urn (tree);
  entry->length = alv_hash_tree_get_length (tree);
  entry->block_size = alv_hash_tree_get_block_size (tree);
  entry->media_type = g_strdup (media_type);
  entry->checked = g_get_real_time ();
  return entry;
}

static char *
format_size (guint64 size)
{
  return g_strdup_printf ("%" G_GUINT64_FORMAT, size);
}

/* A transfer that failed ends the job: a cancellation says so, anything
 * else is the origin's (502, worth retrying) and @reason says what. */
static void
fail_transfer (GatewayFetch *fetch,
               const GError *error,
               const char   *reason)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    set_failure (&fetch->result, SOUP_STATUS_SERVICE_UNAVAILABLE, TRUE,
                 _("the fetch was cancelled"));
  else
    set_failure (&fetch->result, SOUP_STATUS_BAD_GATEWAY, TRUE, "%s", reason);
  complete (fetch);
}

static void
set_private_failure (GatewayFetchResult *result,
                     const char         *address)
{
  set_failure (result, SOUP_STATUS_FORBIDDEN, FALSE,
               _("the origin's address %s is private, loopback or link-local "
                 "(refused without --allow-private)"), address);
}

/* ------------------------------------------------------------------ */
/* Sessions                                                            */

struct _GatewayFetchSessions
{
  char *user_agent;
  guint timeout;
  GHashTable *by_origin;        /* "scheme://host:port" → OriginSession */
};

typedef struct
{
  GatewayCheckedAddress *remote;
  SoupSession *session;
} OriginSession;

static void
origin_session_free (OriginSession *origin)
{
  soup_session_abort (origin->session);
  g_object_unref (origin->session);
  g_object_unref (origin->remote);
  g_free (origin);
}

GatewayFetchSessions *
gateway_fetch_sessions_new (const char *user_agent,
                            guint       timeout)
{
  GatewayFetchSessions *sessions = g_new0 (GatewayFetchSessions, 1);

  sessions->user_agent = g_strdup (user_agent);
  sessions->timeout = timeout;
  sessions->by_origin = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                               (GDestroyNotify) origin_session_free);
  return sessions;
}

void
gateway_fetch_sessions_free (GatewayFetchSessions *sessions)
{
  if (sessions == NULL)
    return;
  g_hash_table_unref (sessions->by_origin);
  g_free (sessions->user_agent);
  g_free (sessions);
}

/* The session for @uri's scheme, host and port, made on first use: a
 * SoupSession's remote-connectable is where all its connections go, so
 * it takes one session per origin (no more than --origin names). */
static OriginSession *
sessions_get (GatewayFetchSessions *sessions,
              GUri                 *uri)
{
  g_autofree char *scheme = g_ascii_strdown (g_uri_get_scheme (uri), -1);
  g_autofree char *host = g_ascii_strdown (g_uri_get_host (uri), -1);
  int port = g_uri_get_port (uri);
  g_autofree char *key = NULL;
  OriginSession *origin;

  if (port <= 0)
    port = strcmp (scheme, "https") == 0 ? 443 : 80;
  key = g_strdup_printf ("%s://%s:%d", scheme, host, port);
  origin = g_hash_table_lookup (sessions->by_origin, key);
  if (origin != NULL)
    return origin;

  origin = g_new0 (OriginSession, 1);
  origin->remote = gateway_checked_address_new (host, (guint16) port, scheme);
  origin->session = soup_session_new_with_options ("user-agent", sessions->user_agent,
                                                   "timeout", sessions->timeout,
                                                   "idle-timeout", 60,
                                                   "max-conns-per-host", 4,
                                                   "proxy-resolver", NULL,
                                                   "remote-connectable", origin->remote,
                                                   NULL);
  soup_session_remove_feature_by_type (origin->session, SOUP_TYPE_CONTENT_DECODER);
  g_hash_table_insert (sessions->by_origin, g_steal_pointer (&key), origin);
  return origin;
}

/* ------------------------------------------------------------------ */
/* Origin                                                              */

static void
network_event_cb (SoupMessage       *msg G_GNUC_UNUSED,
                  GSocketClientEvent event,
                  GIOStream         *connection,
                  GatewayFetch      *fetch)
{
  g_autoptr(GSocketAddress) remote = NULL;
  GInetAddress *address;

  if (event != G_SOCKET_CLIENT_CONNECTED || !G_IS_SOCKET_CONNECTION (connection))
    return;
  remote = g_socket_connection_get_remote_address (G_SOCKET_CONNECTION (connection), NULL);
  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    {
      fetch->unsafe_address = g_strdup ("?");
      g_cancellable_cancel (fetch->cancellable);
      return;
    }
  address = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote));
  if (!gateway_address_is_allowed (address, fetch->limits.allow_private))
    {
      fetch->unsafe_address = g_inet_address_to_string (address);
      g_cancellable_cancel (fetch->cancellable);
    }
}

static void
origin_finish_body (GatewayFetch *fetch)
{
  SoupMessageHeaders *hdrs = soup_message_get_response_headers (fetch->msg);
  guint64 total = alv_tree_hasher_get_length (fetch->hasher);
  g_autoptr(AlvHashTree) tree = NULL;
  const char *type;
  GatewayEntry *entry;

  if (fetch->expected >= 0 && total != (guint64) fetch->expected)
    {
      set_failure (&fetch->result, SOUP_STATUS_BAD_GATEWAY, TRUE,
                   _("the origin sent %" PRIu64 " of %" PRId64 " bytes"),
                   total, (gint64) fetch->expected);
      return;
    }
  tree = alv_tree_hasher_finish (fetch->hasher);
  g_clear_pointer (&fetch->hasher, alv_tree_hasher_free);
  type = soup_message_headers_get_content_type (hdrs, NULL);
  if (type == NULL)
    type = gateway_media_type_for_name (fetch->url);
  entry = entry_for_tree (fetch, tree, type, fetch->head);
  entry->etag = g_strdup (soup_message_headers_get_one (hdrs, "ETag"));
  entry->last_modified = g_strdup (soup_message_headers_get_one (hdrs, "Last-Modified"));
  fetch->result.ok = TRUE;
  fetch->result.entry = entry;
  fetch->result.tree = g_steal_pointer (&tree);
}

static void origin_read_next (GatewayFetch *fetch);

static void
origin_read_cb (GObject      *source,
                GAsyncResult *res,
                gpointer      user_data)
{
  GatewayFetch *fetch = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), res, &error);
  gsize len;
  const guint8 *data;

  if (bytes == NULL)
    {
      g_autofree char *why = g_strdup_printf (_("reading from the origin failed: %s"),
                                              error->message);

      fail_transfer (fetch, error, why);
      return;
    }
  data = g_bytes_get_data (bytes, &len);
  if (len == 0)
    {
      origin_finish_body (fetch);
      complete (fetch);
      return;
    }
  fetch->result.bytes_fetched += len;
  if (alv_tree_hasher_get_length (fetch->hasher) + len > fetch->limits.max_media_size)
    {
      g_autofree char *max = format_size (fetch->limits.max_media_size);

      set_failure (&fetch->result, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, FALSE,
                   _("the media is larger than the gateway's limit of %s bytes"), max);
      complete (fetch);
      return;
    }
  alv_tree_hasher_update (fetch->hasher, data, len);
  if (fetch->head != NULL)
    gateway_head_feed (fetch->head, data, len);
  origin_read_next (fetch);
}

static void
origin_read_next (GatewayFetch *fetch)
{
  g_input_stream_read_bytes_async (fetch->stream, CHUNK_SIZE, G_PRIORITY_DEFAULT,
                                   fetch->cancellable, origin_read_cb, fetch);
}

static void
origin_sent_cb (GObject      *source,
                GAsyncResult *res,
                gpointer      user_data)
{
  GatewayFetch *fetch = user_data;
  g_autoptr(GError) error = NULL;
  SoupMessageHeaders *hdrs;
  const char *coding;
  guint status;

  fetch->stream = soup_session_send_finish (SOUP_SESSION (source), res, &error);
  if (fetch->stream == NULL && fetch->unsafe_address != NULL)
    {
      set_private_failure (&fetch->result, fetch->unsafe_address);
      complete (fetch);
      return;
    }
  if (fetch->stream == NULL)
    {
      g_autofree char *why = g_strdup_printf (_("cannot reach the origin: %s"), error->message);

      fail_transfer (fetch, error, why);
      return;
    }

  status = soup_message_get_status (fetch->msg);
  hdrs = soup_message_get_response_headers (fetch->msg);
  if (status == SOUP_STATUS_NOT_MODIFIED && fetch->previous != NULL)
    {
      GatewayEntry *entry = gateway_entry_copy (fetch->previous);
      const char *etag = soup_message_headers_get_one (hdrs, "ETag");
      const char *lm = soup_message_headers_get_one (hdrs, "Last-Modified");

      if (etag != NULL)
        {
          g_free (entry->etag);
          entry->etag = g_strdup (etag);
        }
      if (lm != NULL)
        {
          g_free (entry->last_modified);
          entry->last_modified = g_strdup (lm);
        }
      entry->checked = g_get_real_time ();
      fetch->result.ok = TRUE;
      fetch->result.unchanged = TRUE;
      fetch->result.entry = entry;
      g_input_stream_close_async (fetch->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
      complete (fetch);
      return;
    }
  if (status == SOUP_STATUS_NOT_FOUND || status == SOUP_STATUS_GONE)
    set_failure (&fetch->result, SOUP_STATUS_NOT_FOUND, FALSE,
                 _("the origin has no such file (HTTP %u)"), status);
  else if (SOUP_STATUS_IS_REDIRECTION (status))
    set_failure (&fetch->result, SOUP_STATUS_BAD_GATEWAY, FALSE,
                 _("the origin redirected (HTTP %u); the gateway does not follow redirects"),
                 status);
  else if (status != SOUP_STATUS_OK)
    set_failure (&fetch->result, SOUP_STATUS_BAD_GATEWAY, status >= 500,
                 _("the origin answered HTTP %u"), status);
  else if ((coding = soup_message_headers_get_one (hdrs, "Content-Encoding")) != NULL
           && g_ascii_strcasecmp (coding, "identity") != 0)
    set_failure (&fetch->result, SOUP_STATUS_BAD_GATEWAY, FALSE,
                 _("the origin sent a content coding (%s) although identity was asked"),
                 coding);
  else
    {
      fetch->expected = soup_message_headers_get_encoding (hdrs) == SOUP_ENCODING_CONTENT_LENGTH
                        ? soup_message_headers_get_content_length (hdrs) : -1;
      if (fetch->expected > 0 && (guint64) fetch->expected > fetch->limits.max_media_size)
        {
          g_autofree char *max = format_size (fetch->limits.max_media_size);

          set_failure (&fetch->result, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, FALSE,
                       _("the media is larger than the gateway's limit of %s bytes"), max);
        }
      else
        {
          fetch->hasher = alv_tree_hasher_new (fetch->limits.block_size);
          fetch->head = gateway_head_new ();
          g_atomic_int_set (&fetch->hashing, 1);
          origin_read_next (fetch);
          return;
        }
    }
  /* do not drain a refused body: closing the stream drops the connection */
  g_input_stream_close_async (fetch->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  complete (fetch);
}

static gboolean
fail_idle_cb (gpointer user_data)
{
  complete (user_data);
  return G_SOURCE_REMOVE;
}

static void
origin_resolved_cb (GObject      *source,
                    GAsyncResult *res,
                    gpointer      user_data)
{
  GatewayFetch *fetch = user_data;
  g_autoptr(GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (source), res, &error);
  g_autoptr(GPtrArray) allowed = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *refused = NULL;
  GUri *uri = soup_message_get_uri (fetch->msg);
  OriginSession *origin;

  if (addresses == NULL)
    {
      g_autofree char *why = g_strdup_printf (_("cannot reach the origin: %s"), error->message);

      fail_transfer (fetch, error, why);
      return;
    }
  for (GList *l = addresses; l != NULL; l = l->next)
    {
      if (gateway_address_is_allowed (l->data, fetch->limits.allow_private))
        g_ptr_array_add (allowed, g_object_ref (l->data));
      else if (refused == NULL)
        refused = g_inet_address_to_string (l->data);
    }
  g_resolver_free_addresses (addresses);
  if (allowed->len == 0)
    {
      set_private_failure (&fetch->result, refused);
      complete (fetch);
      return;
    }
  if (refused != NULL)
    g_debug ("%s: not connecting to %s among its addresses (private)", fetch->url, refused);

  origin = sessions_get (fetch->sessions, uri);
  gateway_checked_address_set_addresses (origin->remote, allowed);
  g_signal_connect (fetch->msg, "network-event", G_CALLBACK (network_event_cb), fetch);
  soup_session_send_async (origin->session, fetch->msg, G_PRIORITY_DEFAULT, fetch->cancellable,
                           origin_sent_cb, fetch);
}

GatewayFetch *
gateway_fetch_origin (GatewayFetchSessions     *sessions,
                      const GatewayFetchLimits *limits,
                      const char               *url,
                      const GatewayEntry       *previous,
                      GatewayFetchDone          done,
                      gpointer                  user_data)
{
  GatewayFetch *fetch = fetch_new (limits, url, previous, done, user_data);
  g_autoptr(GUri) uri = g_uri_parse (url, SOUP_HTTP_URI_FLAGS, NULL);
  g_autoptr(GInetAddress) literal = NULL;
  g_autoptr(GResolver) resolver = NULL;
  SoupMessageHeaders *req;

  fetch->sessions = sessions;
  if (uri == NULL || (fetch->msg = soup_message_new_from_uri (SOUP_METHOD_GET, uri)) == NULL)
    {
      set_failure (&fetch->result, SOUP_STATUS_BAD_REQUEST, FALSE, _("the URL is not valid"));
      g_idle_add (fail_idle_cb, fetch);
      return fetch;
    }
  /* an IP literal is refused at once */
  literal = g_inet_address_new_from_string (g_uri_get_host (uri));
  if (literal != NULL && !gateway_address_is_allowed (literal, limits->allow_private))
    {
      g_autofree char *addr = g_inet_address_to_string (literal);

      set_private_failure (&fetch->result, addr);
      g_idle_add (fail_idle_cb, fetch);
      return fetch;
    }

  soup_message_add_flags (fetch->msg, SOUP_MESSAGE_NO_REDIRECT);
  req = soup_message_get_request_headers (fetch->msg);
  soup_message_headers_replace (req, "Accept-Encoding", "identity");
  if (previous != NULL && previous->etag != NULL)
    soup_message_headers_replace (req, "If-None-Match", previous->etag);
  if (previous != NULL && previous->last_modified != NULL)
    soup_message_headers_replace (req, "If-Modified-Since", previous->last_modified);
  /* the addresses are checked before any connection is made to them */
  resolver = g_resolver_get_default ();
  g_resolver_lookup_by_name_async (resolver, g_uri_get_host (uri), fetch->cancellable,
                                   origin_resolved_cb, fetch);
  return fetch;
}

/* ------------------------------------------------------------------ */
/* Docroot                                                             */

static gboolean
same_file (const GStatBuf *a,
           const GStatBuf *b)
{
  return a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_dev == b->st_dev
         && a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void
docroot_thread (GTask        *task,
                gpointer      source G_GNUC_UNUSED,
                gpointer      task_data,
                GCancellable *cancellable)
{
  GatewayFetch *fetch = task_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvTreeHasher) hasher = NULL;
  g_autoptr(GatewayHead) head = gateway_head_new ();
  g_autoptr(AlvHashTree) tree = NULL;
  g_autofree guint8 *buf = NULL;
  g_autofree char *file_id = NULL;
  GStatBuf st, after;
  GatewayEntry *entry;
  int fd;

  fd = gateway_docroot_open (fetch->docroot, fetch->rel, &st, &error);
  if (fd < 0)
    {
      set_failure (&fetch->result, SOUP_STATUS_NOT_FOUND, FALSE,
                   _("no such file in the document root"));
      g_task_return_boolean (task, TRUE);
      return;
    }
  file_id = gateway_file_id (&st);
  if (fetch->previous != NULL && g_strcmp0 (fetch->previous->file_id, file_id) == 0)
    {
      close (fd);
      fetch->result.ok = TRUE;
      fetch->result.unchanged = TRUE;
      fetch->result.entry = gateway_entry_copy (fetch->previous);
      fetch->result.entry->checked = g_get_real_time ();
      g_task_return_boolean (task, TRUE);
      return;
    }
  if ((guint64) st.st_size > fetch->limits.max_media_size)
    {
      g_autofree char *max = format_size (fetch->limits.max_media_size);

      close (fd);
      set_failure (&fetch->result, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE, FALSE,
                   _("the media is larger than the gateway's limit of %s bytes"), max);
      g_task_return_boolean (task, TRUE);
      return;
    }

  g_atomic_int_set (&fetch->hashing, 1);
  hasher = alv_tree_hasher_new (fetch->limits.block_size);
  buf = g_malloc (FILE_BUFFER);
  for (;;)
    {
      gssize n = read (fd, buf, FILE_BUFFER);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 || g_cancellable_is_cancelled (cancellable))
        {
          close (fd);
          set_failure (&fetch->result, SOUP_STATUS_SERVICE_UNAVAILABLE, TRUE,
                       n < 0 ? _("reading the file failed") : _("hashing was cancelled"));
          g_task_return_boolean (task, TRUE);
          return;
        }
      if (n == 0)
        break;
      alv_tree_hasher_update (hasher, buf, (gsize) n);
      if (head != NULL)
        gateway_head_feed (head, buf, (gsize) n);
    }
  if (fstat (fd, &after) != 0 || !same_file (&st, &after)
      || alv_tree_hasher_get_length (hasher) != (guint64) st.st_size)
    {
      close (fd);
      set_failure (&fetch->result, SOUP_STATUS_SERVICE_UNAVAILABLE, TRUE,
                   _("the file changed while it was being hashed; try again"));
      g_task_return_boolean (task, TRUE);
      return;
    }
  close (fd);
  tree = alv_tree_hasher_finish (hasher);
  entry = entry_for_tree (fetch, tree, gateway_media_type_for_name (fetch->rel), head);
  entry->file_id = g_steal_pointer (&file_id);
  fetch->result.ok = TRUE;
  fetch->result.entry = entry;
  fetch->result.tree = g_steal_pointer (&tree);
  fetch->result.bytes_fetched = 0;
  g_task_return_boolean (task, TRUE);
}

static void
docroot_done_cb (GObject      *source G_GNUC_UNUSED,
                 GAsyncResult *res G_GNUC_UNUSED,
                 gpointer      user_data)
{
  complete (user_data);
}

GatewayFetch *
gateway_fetch_docroot (GatewayDocroot           *docroot,
                       const GatewayFetchLimits *limits,
                       const char               *url,
                       const char               *rel,
                       const GatewayEntry       *previous,
                       GatewayFetchDone          done,
                       gpointer                  user_data)
{
  GatewayFetch *fetch = fetch_new (limits, url, previous, done, user_data);
  g_autoptr(GTask) task = NULL;

  fetch->docroot = docroot;
  fetch->rel = g_strdup (rel);
  task = g_task_new (NULL, fetch->cancellable, docroot_done_cb, fetch);
  g_task_set_source_tag (task, gateway_fetch_docroot);
  g_task_set_task_data (task, fetch, NULL);
  /* the callback must run even when cancelled: the result says so */
  g_task_set_check_cancellable (task, FALSE);
  g_task_run_in_thread (task, docroot_thread);
  return fetch;
}
