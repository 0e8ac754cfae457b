/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Client side of doc/gateway-protocol.md for the core: resolve, thex and
 * announce as GTask async calls on a libsoup session.  The gateway is
 * trusted to name content (the URN it gives is what the swarm verifies
 * against) but not to be well-formed: every header goes through the
 * bounded parsers of common/, bodies are read with a hard cap, a 202 is
 * retried a bounded number of times, and a tree is only returned after it
 * hashed to the URN's root.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-gateway-client.h"

#include <string.h>
#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-block-map.h"
#include "alv-error.h"
#include "alv-ocn-headers.h"
#include "alv-urn.h"

/* An error body is read only this far, for the message. */
#define ERROR_BODY_MAX 1024
#define READ_CHUNK 16384
#define CONTENT_TYPE_MAX 255

struct _AlvGatewayClient
{
  GObject parent_instance;

  SoupSession *session;
  GUri *base;
  char *url;
  guint max_retries;
};

G_DEFINE_TYPE (AlvGatewayClient, alv_gateway_client, G_TYPE_OBJECT)

G_DEFINE_BOXED_TYPE (AlvGatewayResolution, alv_gateway_resolution,
                     alv_gateway_resolution_copy, alv_gateway_resolution_free)

AlvGatewayResolution *
alv_gateway_resolution_copy (const AlvGatewayResolution *res)
{
  AlvGatewayResolution *copy;

  g_return_val_if_fail (res != NULL, NULL);

  copy = g_new0 (AlvGatewayResolution, 1);
  copy->url = g_strdup (res->url);
  copy->urn = g_strdup (res->urn);
  copy->length = res->length;
  copy->content_type = g_strdup (res->content_type);
  copy->block_size = res->block_size;
  copy->thex_uri = g_strdup (res->thex_uri);
  copy->has_mp3_head = res->has_mp3_head;
  copy->mp3_head = res->mp3_head;
  copy->peers = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; res->peers != NULL && i < res->peers->len; i++)
    g_ptr_array_add (copy->peers, g_object_ref (res->peers->pdata[i]));
  return copy;
}

void
alv_gateway_resolution_free (AlvGatewayResolution *res)
{
  if (res == NULL)
    return;
  g_free (res->url);
  g_free (res->urn);
  g_free (res->content_type);
  g_free (res->thex_uri);
  g_clear_pointer (&res->peers, g_ptr_array_unref);
  g_free (res);
}

static void
alv_gateway_client_finalize (GObject *object)
{
  AlvGatewayClient *self = ALV_GATEWAY_CLIENT (object);

  g_clear_object (&self->session);
  g_clear_pointer (&self->base, g_uri_unref);
  g_free (self->url);
  G_OBJECT_CLASS (alv_gateway_client_parent_class)->finalize (object);
}

static void
alv_gateway_client_class_init (AlvGatewayClientClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = alv_gateway_client_finalize;
}

static void
alv_gateway_client_init (AlvGatewayClient *self)
{
  self->max_retries = ALV_GATEWAY_CLIENT_DEFAULT_MAX_RETRIES;
}

AlvGatewayClient *
alv_gateway_client_new (SoupSession  *session,
                        const char   *gateway_url,
                        GError      **error)
{
  g_autoptr(AlvGatewayClient) self = NULL;
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  g_return_val_if_fail (session == NULL || SOUP_IS_SESSION (session), NULL);
  g_return_val_if_fail (gateway_url != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  uri = g_uri_parse (gateway_url, SOUP_HTTP_URI_FLAGS, error);
  if (uri == NULL)
    {
      g_prefix_error (error, _("Invalid gateway URL: "));
      return NULL;
    }
  scheme = g_uri_get_scheme (uri);
  if ((g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0) ||
      g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("The gateway URL %s is not an http(s) URL with a host"), gateway_url);
      return NULL;
    }

  self = g_object_new (ALV_TYPE_GATEWAY_CLIENT, NULL);
  self->session = session != NULL ? g_object_ref (session)
                                  : soup_session_new_with_options ("timeout", 30, NULL);
  /* always a directory-style base, so "resolve" lands below it */
  if (!g_str_has_suffix (g_uri_get_path (uri), "/"))
    {
      g_autofree char *path = g_strconcat (g_uri_get_path (uri), "/", NULL);
      GUri *fixed = g_uri_build (SOUP_HTTP_URI_FLAGS, scheme, NULL,
                                 g_uri_get_host (uri), g_uri_get_port (uri),
                                 path, NULL, NULL);
      g_uri_unref (uri);
      uri = fixed;
    }
  self->base = g_steal_pointer (&uri);
  self->url = g_uri_to_string (self->base);
  return g_steal_pointer (&self);
}

const char *
alv_gateway_client_get_url (AlvGatewayClient *client)
{
  g_return_val_if_fail (ALV_IS_GATEWAY_CLIENT (client), NULL);
  return client->url;
}

SoupSession *
alv_gateway_client_get_session (AlvGatewayClient *client)
{
  g_return_val_if_fail (ALV_IS_GATEWAY_CLIENT (client), NULL);
  return client->session;
}

void
alv_gateway_client_set_max_retries (AlvGatewayClient *client,
                                    guint             max_retries)
{
  g_return_if_fail (ALV_IS_GATEWAY_CLIENT (client));
  client->max_retries = max_retries;
}

/* ------------------------------------------------------------------ */
/* shared request machinery                                            */

typedef enum
{
  OP_RESOLVE,
  OP_TREE,
  OP_ANNOUNCE,
} Op;

typedef struct
{
  Op op;
  SoupMessage *msg;
  GInputStream *stream;
  GByteArray *body;
  gsize body_max;
  guint retries;
  guint retry_id;
  /* resolve */
  char *url;
  /* tree */
  char *urn;
  guint64 length;
  guint block_size;
  /* announce */
  char *form;
} Request;

static void
request_free (Request *r)
{
  g_clear_handle_id (&r->retry_id, g_source_remove);
  g_clear_object (&r->msg);
  g_clear_object (&r->stream);
  g_clear_pointer (&r->body, g_byte_array_unref);
  g_free (r->url);
  g_free (r->urn);
  g_free (r->form);
  g_free (r);
}

static void send_request (GTask *task);

/* A one-line, printable excerpt of an error body for the message. */
static char *
body_excerpt (GByteArray *body)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; body != NULL && i < body->len && i < 200; i++)
    {
      guint8 c = body->data[i];

      if (c == '\n' || c == '\r')
        break;
      g_string_append_c (s, (c >= 0x20 && c < 0x7f) ? (char) c : '?');
    }
  return g_string_free (s, FALSE);
}

static void
fail_status (GTask   *task,
             Request *r)
{
  AlvGatewayClient *self = g_task_get_source_object (task);
  guint status = soup_message_get_status (r->msg);
  g_autofree char *excerpt = body_excerpt (r->body);

  g_task_return_new_error (task, ALV_ERROR, ALV_ERROR_FAILED,
                           _("The gateway %s answered %u %s%s%s"),
                           self->url, status,
                           soup_message_get_reason_phrase (r->msg) != NULL ?
                             soup_message_get_reason_phrase (r->msg) : "",
                           *excerpt != '\0' ? ": " : "", excerpt);
}

static gboolean
parse_u64_header (SoupMessageHeaders *headers,
                  const char         *name,
                  guint64             max,
                  guint64            *out,
                  GError            **error)
{
  const char *value = soup_message_headers_get_one (headers, name);

  if (value == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("The gateway's answer has no %s header"), name);
      return FALSE;
    }
  if (!g_ascii_string_to_unsigned (value, 10, 0, max, out, NULL))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("The gateway's %s header is not a number up to %" PRIu64),
                   name, max);
      return FALSE;
    }
  return TRUE;
}

static GPtrArray *
parse_peers (SoupMessageHeaders *headers)
{
  const char *alt = soup_message_headers_get_list (headers, ALV_HEADER_ALT);
  g_autoptr(GError) error = NULL;
  GPtrArray *peers;

  if (alt == NULL)
    return g_ptr_array_new_with_free_func (g_object_unref);
  peers = alv_alt_parse (alt, ALV_GATEWAY_CLIENT_MAX_PEERS, &error);
  if (peers == NULL)
    {
      /* a bad peer list costs the peers, not the answer */
      g_debug ("ignoring the gateway's X-Alt: %s", error->message);
      return g_ptr_array_new_with_free_func (g_object_unref);
    }
  return peers;
}

/* The head's facts from X-Content-Head (doc/gateway-protocol.md): only
 * MPEG audio is known, and facts that do not fit the item are dropped (the
 * core then reads the head itself). */
static gboolean
parse_content_head (const char *value,
                    guint64     length,
                    AlvMp3Info *info)
{
  g_autoptr(GError) error = NULL;
  gsize token = strcspn (value, ";");

  if (token != strlen ("mpeg-audio") || strncmp (value, "mpeg-audio", token) != 0)
    return FALSE;
  if (!alv_mp3_info_from_string (value + token, info, &error))
    {
      g_debug ("ignoring the gateway's %s: %s", ALV_HEADER_CONTENT_HEAD, error->message);
      return FALSE;
    }
  if (info->audio_start >= length)
    {
      g_debug ("ignoring the gateway's %s: the audio starts past the end", ALV_HEADER_CONTENT_HEAD);
      memset (info, 0, sizeof *info);
      return FALSE;
    }
  return TRUE;
}

static AlvGatewayResolution *
parse_resolution (AlvGatewayClient   *self,
                  Request            *r,
                  GError            **error)
{
  SoupMessageHeaders *headers = soup_message_get_response_headers (r->msg);
  g_autoptr(AlvGatewayResolution) res = g_new0 (AlvGatewayResolution, 1);
  g_autofree char *thex_path = NULL;
  g_autofree char *thex_root = NULL;
  g_autoptr(GUri) thex = NULL;
  const char *value;
  guint64 block_size;
  const char *scheme;

  res->url = g_strdup (r->url);
  value = soup_message_headers_get_one (headers, ALV_HEADER_CONTENT_URN);
  if (value == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("The gateway's answer has no %s header"), ALV_HEADER_CONTENT_URN);
      return NULL;
    }
  res->urn = alv_content_urn_parse (value, error);
  if (res->urn == NULL)
    {
      g_prefix_error (error, _("The gateway's URN is unusable: "));
      return NULL;
    }
  if (!parse_u64_header (headers, "X-Content-Length", ALV_HASH_TREE_MAX_LENGTH,
                         &res->length, error) ||
      !parse_u64_header (headers, "X-Block-Size", ALV_HASH_TREE_MAX_BLOCK_SIZE,
                         &block_size, error))
    return NULL;
  if (!alv_hash_tree_block_size_is_valid ((guint) block_size) ||
      alv_block_count_for_length (res->length, (guint32) block_size) > ALV_HASH_TREE_MAX_BLOCKS)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("The gateway's block size %" PRIu64 " is not usable"), block_size);
      return NULL;
    }
  res->block_size = (guint) block_size;

  value = soup_message_headers_get_one (headers, "X-Content-Type");
  if (value != NULL && strlen (value) <= CONTENT_TYPE_MAX && g_utf8_validate (value, -1, NULL))
    res->content_type = g_strdup (value);

  value = soup_message_headers_get_one (headers, ALV_HEADER_CONTENT_HEAD);
  if (value != NULL)
    res->has_mp3_head = parse_content_head (value, res->length, &res->mp3_head);

  value = soup_message_headers_get_one (headers, ALV_HEADER_THEX_URI);
  if (value == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("The gateway's answer has no %s header"), ALV_HEADER_THEX_URI);
      return NULL;
    }
  if (!alv_thex_uri_parse (value, &thex_path, &thex_root, error))
    {
      g_prefix_error (error, _("The gateway's %s is unusable: "), ALV_HEADER_THEX_URI);
      return NULL;
    }
  if (g_ascii_strcasecmp (thex_root, res->urn + strlen (ALV_URN_PREFIX)) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                   _("The gateway's tree root does not match its URN"));
      return NULL;
    }
  thex = g_uri_parse_relative (self->base, thex_path, SOUP_HTTP_URI_FLAGS, error);
  if (thex == NULL)
    {
      g_prefix_error (error, _("The gateway's %s is unusable: "), ALV_HEADER_THEX_URI);
      return NULL;
    }
  scheme = g_uri_get_scheme (thex);
  if (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_UNSAFE,
                   _("The gateway's tree URI is not http(s)"));
      return NULL;
    }
  res->thex_uri = g_uri_to_string (thex);
  res->peers = parse_peers (headers);
  return g_steal_pointer (&res);
}

/* Retry-After in seconds (RFC 9110 also allows a date: then the default). */
static guint
parse_retry_after (SoupMessage *msg)
{
  const char *value = soup_message_headers_get_one (soup_message_get_response_headers (msg),
                                                    "Retry-After");
  guint64 seconds = 2;

  if (value != NULL && !g_ascii_string_to_unsigned (value, 10, 0, G_MAXUINT32, &seconds, NULL))
    seconds = 2;
  return (guint) CLAMP (seconds, 1, ALV_GATEWAY_CLIENT_MAX_RETRY_AFTER);
}

static gboolean
retry_cb (gpointer user_data)
{
  GTask *task = user_data;
  Request *r = g_task_get_task_data (task);

  r->retry_id = 0;
  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      return G_SOURCE_REMOVE;
    }
  send_request (task);
  g_object_unref (task);
  return G_SOURCE_REMOVE;
}

static void
cancelled_cb (GCancellable *cancellable G_GNUC_UNUSED,
              gpointer      user_data)
{
  GTask *task = user_data;
  Request *r = g_task_get_task_data (task);

  /* only a waiting retry needs waking; a running send sees the cancellable */
  if (r->retry_id != 0)
    {
      g_clear_handle_id (&r->retry_id, g_source_remove);
      g_task_return_error_if_cancelled (task);
      g_object_unref (task);
    }
}

/* The whole body is in r->body (or the cap was hit: error already set). */
static void
body_done (GTask *task)
{
  AlvGatewayClient *self = g_task_get_source_object (task);
  Request *r = g_task_get_task_data (task);
  guint status = soup_message_get_status (r->msg);
  g_autoptr(GError) error = NULL;

  g_clear_object (&r->stream);
  switch (r->op)
    {
    case OP_RESOLVE:
      if (status == SOUP_STATUS_ACCEPTED)
        {
          if (r->retries++ >= self->max_retries)
            {
              g_task_return_new_error (task, ALV_ERROR, ALV_ERROR_FAILED,
                                       _("The gateway was still hashing %s after %u tries"),
                                       r->url, r->retries);
              return;
            }
          r->retry_id = g_timeout_add_seconds (parse_retry_after (r->msg), retry_cb,
                                               g_object_ref (task));
          return;
        }
      if (status != SOUP_STATUS_OK)
        {
          fail_status (task, r);
          return;
        }
      {
        AlvGatewayResolution *res = parse_resolution (self, r, &error);

        if (res == NULL)
          g_task_return_error (task, g_steal_pointer (&error));
        else
          g_task_return_pointer (task, res, (GDestroyNotify) alv_gateway_resolution_free);
      }
      return;

    case OP_TREE:
      if (status != SOUP_STATUS_OK)
        {
          fail_status (task, r);
          return;
        }
      {
        guint8 root[ALV_HASH_SIZE];
        g_autoptr(GBytes) bytes = NULL;
        AlvHashTree *tree;

        if (!alv_urn_parse (r->urn, root, &error))
          {
            g_task_return_error (task, g_steal_pointer (&error));
            return;
          }
        bytes = g_bytes_new (r->body->data, r->body->len);
        tree = alv_hash_tree_new_from_serialized (bytes, r->length, r->block_size, root, &error);
        if (tree == NULL)
          {
            g_prefix_error (&error, _("The gateway's tree is unusable: "));
            g_task_return_error (task, g_steal_pointer (&error));
            return;
          }
        g_task_return_pointer (task, tree, (GDestroyNotify) alv_hash_tree_unref);
      }
      return;

    case OP_ANNOUNCE:
      if (status != SOUP_STATUS_OK)
        {
          fail_status (task, r);
          return;
        }
      g_task_return_pointer (task, parse_peers (soup_message_get_response_headers (r->msg)),
                             (GDestroyNotify) g_ptr_array_unref);
      return;

    default:
      g_return_if_reached ();
    }
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Request *r = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = NULL;
  GCancellable *cancellable;

  chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  if (chunk == NULL)
    {
      AlvGatewayClient *self = g_task_get_source_object (task);

      /* the network's message names no port: say which gateway */
      g_prefix_error (&error, _("Reading the answer of the gateway %s failed: "), self->url);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (g_bytes_get_size (chunk) == 0)
    {
      body_done (task);
      return;
    }
  if (r->body->len + g_bytes_get_size (chunk) > r->body_max)
    {
      if (r->op != OP_TREE || soup_message_get_status (r->msg) != SOUP_STATUS_OK)
        {
          /* only a tree's body matters; others are read for a message */
          body_done (task);
          return;
        }
      g_task_return_new_error (task, ALV_ERROR, ALV_ERROR_LIMIT,
                               _("The gateway's answer is larger than %zu bytes"),
                               r->body_max);
      return;
    }
  g_byte_array_append (r->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
  cancellable = g_task_get_cancellable (task);
  g_input_stream_read_bytes_async (r->stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                   cancellable, read_cb, g_steal_pointer (&task));
}

static void
send_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Request *r = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GCancellable *cancellable;

  r->stream = soup_session_send_finish (SOUP_SESSION (source), result, &error);
  if (r->stream == NULL)
    {
      AlvGatewayClient *self = g_task_get_source_object (task);

      /* "Could not connect to 127.0.0.1" alone names no port */
      g_prefix_error (&error, _("The gateway %s could not be reached: "), self->url);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_clear_pointer (&r->body, g_byte_array_unref);
  r->body = g_byte_array_new ();
  if (r->op != OP_TREE || soup_message_get_status (r->msg) != SOUP_STATUS_OK)
    r->body_max = ERROR_BODY_MAX;
  cancellable = g_task_get_cancellable (task);
  g_input_stream_read_bytes_async (r->stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                   cancellable, read_cb, g_steal_pointer (&task));
}

static void
send_request (GTask *task)
{
  AlvGatewayClient *self = g_task_get_source_object (task);
  Request *r = g_task_get_task_data (task);

  g_clear_object (&r->msg);
  switch (r->op)
    {
    case OP_RESOLVE:
      {
        g_autofree char *escaped = g_uri_escape_string (r->url, NULL, FALSE);
        g_autofree char *uri = g_strconcat (self->url, "resolve?url=", escaped, NULL);

        r->msg = soup_message_new (SOUP_METHOD_GET, uri);
      }
      break;
    case OP_TREE:
      r->msg = soup_message_new (SOUP_METHOD_GET, r->url);
      break;
    case OP_ANNOUNCE:
      {
        g_autofree char *uri = g_strconcat (self->url, "announce", NULL);

        r->msg = soup_message_new_from_encoded_form (SOUP_METHOD_POST, uri,
                                                     g_strdup (r->form));
      }
      break;
    default:
      g_return_if_reached ();
    }
  if (r->msg == NULL)
    {
      g_task_return_new_error (task, ALV_ERROR, ALV_ERROR_INVALID,
                               _("Cannot build a request to the gateway %s"), self->url);
      return;
    }
  soup_message_headers_replace (soup_message_get_request_headers (r->msg),
                                "Accept-Encoding", "identity");
  soup_session_send_async (self->session, r->msg, G_PRIORITY_DEFAULT,
                           g_task_get_cancellable (task), send_cb, g_object_ref (task));
}

static GTask *
new_task (AlvGatewayClient    *self,
          Request             *r,
          gpointer             source_tag,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, r, (GDestroyNotify) request_free);
  if (cancellable != NULL)
    g_signal_connect_object (cancellable, "cancelled", G_CALLBACK (cancelled_cb), task, 0);
  return task;
}

/* ------------------------------------------------------------------ */
/* public calls                                                        */

void
alv_gateway_client_resolve_async (AlvGatewayClient    *client,
                                  const char          *url,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Request *r;

  g_return_if_fail (ALV_IS_GATEWAY_CLIENT (client));
  g_return_if_fail (url != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  r = g_new0 (Request, 1);
  r->op = OP_RESOLVE;
  r->url = g_strdup (url);
  r->body_max = ERROR_BODY_MAX;
  task = new_task (client, r, alv_gateway_client_resolve_async, cancellable, callback, user_data);
  send_request (task);
}

AlvGatewayResolution *
alv_gateway_client_resolve_finish (AlvGatewayClient  *client,
                                   GAsyncResult      *result,
                                   GError           **error)
{
  g_return_val_if_fail (ALV_IS_GATEWAY_CLIENT (client), NULL);
  g_return_val_if_fail (g_task_is_valid (result, client), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Size of the THEX serialization down to the block layer. */
static gsize
serialized_size (guint64 length,
                 guint   block_size)
{
  guint64 n = MAX (alv_block_count_for_length (length, block_size), 1);
  guint64 total = n;

  while (n > 1)
    {
      n = (n + 1) / 2;
      total += n;
    }
  return (gsize) total * ALV_HASH_SIZE;
}

void
alv_gateway_client_fetch_tree_async (AlvGatewayClient    *client,
                                     const char          *thex_uri,
                                     const char          *urn,
                                     guint64              length,
                                     guint                block_size,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) error = NULL;
  Request *r;

  g_return_if_fail (ALV_IS_GATEWAY_CLIENT (client));
  g_return_if_fail (thex_uri != NULL);
  g_return_if_fail (urn != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  r = g_new0 (Request, 1);
  r->op = OP_TREE;
  r->urn = g_strdup (urn);
  r->length = length;
  r->block_size = block_size;
  task = new_task (client, r, alv_gateway_client_fetch_tree_async, cancellable, callback, user_data);

  if (!alv_hash_tree_block_size_is_valid (block_size) ||
      length > ALV_HASH_TREE_MAX_LENGTH ||
      alv_block_count_for_length (length, block_size) > ALV_HASH_TREE_MAX_BLOCKS)
    {
      g_task_return_new_error (task, ALV_ERROR, ALV_ERROR_INVALID,
                               _("Cannot fetch a tree for %" PRIu64
                                 " bytes in blocks of %u"), length, block_size);
      return;
    }
  uri = g_uri_parse_relative (client->base, thex_uri, SOUP_HTTP_URI_FLAGS, &error);
  if (uri == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  r->url = g_uri_to_string (uri);
  r->body_max = serialized_size (length, block_size);
  send_request (task);
}

AlvHashTree *
alv_gateway_client_fetch_tree_finish (AlvGatewayClient  *client,
                                      GAsyncResult      *result,
                                      GError           **error)
{
  g_return_val_if_fail (ALV_IS_GATEWAY_CLIENT (client), NULL);
  g_return_val_if_fail (g_task_is_valid (result, client), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static const char *
event_name (AlvAnnounceEvent event)
{
  switch (event)
    {
    case ALV_ANNOUNCE_STARTED:
      return "started";
    case ALV_ANNOUNCE_COMPLETED:
      return "completed";
    case ALV_ANNOUNCE_STOPPED:
      return "stopped";
    case ALV_ANNOUNCE_UPDATE:
    default:
      return "update";
    }
}

void
alv_gateway_client_announce_async (AlvGatewayClient    *client,
                                   const char          *urn,
                                   guint16              port,
                                   AlvAnnounceEvent     event,
                                   const AlvRangeSet   *held,
                                   guint                numwant,
                                   const AlvAnnounceLease *lease,
                                   const char          *bad,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *urn_e = NULL;
  GString *form;
  Request *r;

  g_return_if_fail (ALV_IS_GATEWAY_CLIENT (client));
  g_return_if_fail (urn != NULL);
  g_return_if_fail (port != 0);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  urn_e = g_uri_escape_string (urn, NULL, FALSE);
  form = g_string_new (NULL);
  g_string_append_printf (form, "urn=%s&port=%u&event=%s", urn_e, port, event_name (event));
  if (numwant > 0)
    g_string_append_printf (form, "&numwant=%u", numwant);
  if (held != NULL && !alv_range_set_is_empty (held))
    {
      g_autofree char *ranges = alv_range_set_format_available (held);
      g_autofree char *ranges_e = g_uri_escape_string (ranges, NULL, FALSE);

      g_string_append_printf (form, "&ranges=%s", ranges_e);
    }
  if (lease != NULL)
    g_string_append_printf (form, "&lease=%u-%u%s", lease->first, MAX (lease->last, lease->first),
                            lease->rescue ? "&rescue=1" : "");
  if (bad != NULL && *bad != '\0')
    {
      g_autofree char *bad_e = g_uri_escape_string (bad, NULL, FALSE);

      g_string_append_printf (form, "&bad=%s", bad_e);
    }

  r = g_new0 (Request, 1);
  r->op = OP_ANNOUNCE;
  r->form = g_string_free (form, FALSE);
  r->body_max = ERROR_BODY_MAX;
  task = new_task (client, r, alv_gateway_client_announce_async, cancellable, callback, user_data);
  send_request (task);
}

GPtrArray *
alv_gateway_client_announce_finish (AlvGatewayClient  *client,
                                    GAsyncResult      *result,
                                    guint             *interval_out,
                                    char             **observed_out,
                                    GError           **error)
{
  GPtrArray *peers;

  g_return_val_if_fail (ALV_IS_GATEWAY_CLIENT (client), NULL);
  g_return_val_if_fail (g_task_is_valid (result, client), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  peers = g_task_propagate_pointer (G_TASK (result), error);
  if (interval_out != NULL)
    {
      *interval_out = 0;
      if (peers != NULL)
        {
          Request *r = g_task_get_task_data (G_TASK (result));
          const char *value = soup_message_headers_get_one (soup_message_get_response_headers (r->msg),
                                                            "X-Announce-Interval");
          guint64 seconds;

          if (value != NULL && g_ascii_string_to_unsigned (value, 10, 1, 86400, &seconds, NULL))
            *interval_out = (guint) seconds;
        }
    }
  if (observed_out != NULL)
    {
      *observed_out = NULL;
      if (peers != NULL)
        {
          Request *r = g_task_get_task_data (G_TASK (result));
          const char *value = soup_message_headers_get_one (soup_message_get_response_headers (r->msg),
                                                            "X-Observed-Address");
          g_autoptr(GPtrArray) addrs = value != NULL ? alv_alt_parse (value, 1, NULL) : NULL;

          if (addrs != NULL && addrs->len == 1)
            *observed_out = alv_alt_format_address (addrs->pdata[0]);
        }
    }
  return peers;
}

AlvReachable
alv_gateway_client_announce_get_reach (AlvGatewayClient *client,
                                       GAsyncResult     *result)
{
  Request *r;
  const char *value;

  g_return_val_if_fail (ALV_IS_GATEWAY_CLIENT (client), ALV_REACHABLE_UNKNOWN);
  g_return_val_if_fail (g_task_is_valid (result, client), ALV_REACHABLE_UNKNOWN);

  r = g_task_get_task_data (G_TASK (result));
  if (r == NULL || r->msg == NULL)
    return ALV_REACHABLE_UNKNOWN;
  value = soup_message_headers_get_one (soup_message_get_response_headers (r->msg),
                                        ALV_HEADER_REACHABLE);
  return alv_reachable_parse (value);
}

gboolean
alv_gateway_client_announce_get_lease (AlvGatewayClient *client,
                                       GAsyncResult     *result,
                                       guint             n_blocks,
                                       gboolean         *granted,
                                       guint            *first,
                                       guint            *last,
                                       GArray          **pulls)
{
  Request *r;
  SoupMessageHeaders *headers;
  const char *lease;

  g_return_val_if_fail (ALV_IS_GATEWAY_CLIENT (client), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, client), FALSE);
  g_return_val_if_fail (granted != NULL && first != NULL && last != NULL, FALSE);

  *granted = FALSE;
  if (pulls != NULL)
    *pulls = NULL;
  r = g_task_get_task_data (G_TASK (result));
  if (r == NULL || r->msg == NULL)
    return FALSE;
  headers = soup_message_get_response_headers (r->msg);
  lease = soup_message_headers_get_one (headers, ALV_HEADER_ORIGIN_LEASE);
  if (lease == NULL)
    return FALSE;
  *granted = alv_origin_lease_parse (lease, n_blocks, first, last);
  if (pulls != NULL)
    {
      const char *value = soup_message_headers_get_one (headers, ALV_HEADER_ORIGIN_PULLS);

      if (value != NULL)
        *pulls = alv_origin_pulls_parse (value, n_blocks);
    }
  return TRUE;
}
