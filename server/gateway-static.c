/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Built-in static web server of the gateway.  Opening happens in a GTask
 * thread (realpath + open + fstat: the only blocking calls); the body is
 * then streamed with asynchronous reads, one chunk appended per
 * `wrote-chunk`, so memory per client stays at one chunk.  One byte range
 * per request is honoured (206 / 416); several ranges, or a Range whose
 * If-Range does not match, get the whole file (RFC 9110 allows both).
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-static.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <gio/gunixinputstream.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "alv-listener.h"
#include "alv-ranges.h"

#define CHUNK_SIZE (64 * 1024)

struct _GatewayDocroot
{
  char *path;                   /* realpath of the docroot, no trailing '/' */
  guint64 bytes_served;         /* static body bytes handed to libsoup */
};

GatewayDocroot *
gateway_docroot_new (const char *dir,
                     GError    **error)
{
  g_autofree char *real = realpath (dir, NULL);
  GatewayDocroot *docroot;

  if (real == NULL || !g_file_test (real, G_FILE_TEST_IS_DIR))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_DIRECTORY,
                   _("--docroot: “%s” is not a directory"), dir);
      return NULL;
    }
  docroot = g_new0 (GatewayDocroot, 1);
  docroot->path = g_steal_pointer (&real);
  return docroot;
}

void
gateway_docroot_free (GatewayDocroot *docroot)
{
  if (docroot == NULL)
    return;
  g_free (docroot->path);
  g_free (docroot);
}

const char *
gateway_docroot_get_path (GatewayDocroot *docroot)
{
  return docroot->path;
}

/* Body bytes of static files sent (or being sent) since the start. */
guint64
gateway_docroot_get_bytes_served (GatewayDocroot *docroot)
{
  return docroot->bytes_served;
}

char *
gateway_docroot_map_path (const char *escaped_path)
{
  g_autofree char *path = NULL;
  g_auto(GStrv) segments = NULL;
  g_autoptr(GString) rel = g_string_new (NULL);

  if (escaped_path == NULL || escaped_path[0] != '/')
    return NULL;
  /* NULL for an encoded '/' or NUL */
  path = g_uri_unescape_string (escaped_path, "/");
  if (path == NULL || strchr (path, '\\') != NULL || !g_utf8_validate (path, -1, NULL))
    return NULL;
  segments = g_strsplit (path, "/", -1);
  for (guint i = 0; segments[i] != NULL; i++)
    {
      const char *seg = segments[i];

      if (*seg == '\0')
        continue;
      /* "..", "." and dot files (.htaccess, .git) are never served */
      if (seg[0] == '.')
        return NULL;
      if (rel->len > 0)
        g_string_append_c (rel, '/');
      g_string_append (rel, seg);
    }
  if (rel->len == 0)
    return NULL;
  return g_string_free (g_steal_pointer (&rel), FALSE);
}

int
gateway_docroot_open (GatewayDocroot *docroot,
                      const char     *rel,
                      GStatBuf       *st,
                      GError        **error)
{
  g_autofree char *full = g_build_filename (docroot->path, rel, NULL);
  g_autofree char *real = realpath (full, NULL);
  gsize root_len = strlen (docroot->path);
  int fd;

  if (real == NULL
      || strncmp (real, docroot->path, root_len) != 0
      || (real[root_len] != '/' && strcmp (docroot->path, "/") != 0))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("No such file"));
      return -1;
    }
  fd = g_open (real, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR,
                   saved == ENOENT ? G_IO_ERROR_NOT_FOUND : g_io_error_from_errno (saved),
                   "%s", g_strerror (saved));
      return -1;
    }
  if (fstat (fd, st) != 0 || !S_ISREG (st->st_mode))
    {
      close (fd);
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, _("Not a regular file"));
      return -1;
    }
  return fd;
}

static gint
compare_names (gconstpointer a,
               gconstpointer b)
{
  const char *x = *(const char * const *) a;
  const char *y = *(const char * const *) b;
  gboolean xr = g_str_has_suffix (x, ".rss"), yr = g_str_has_suffix (y, ".rss");

  if (xr != yr)
    return xr ? -1 : 1;
  return g_utf8_collate (x, y);
}

char *
gateway_docroot_index (GatewayDocroot  *docroot,
                       const char      *rel,
                       char           **index_rel)
{
  g_autofree char *full = g_build_filename (docroot->path, rel, NULL);
  g_autofree char *real = realpath (full, NULL);
  g_autofree char *index = NULL;
  g_autofree char *title = NULL;
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GString) html = g_string_new (NULL);
  gsize root_len = strlen (docroot->path);
  const char *name;

  *index_rel = NULL;
  if (real == NULL || strncmp (real, docroot->path, root_len) != 0 ||
      (real[root_len] != '/' && real[root_len] != '\0' && strcmp (docroot->path, "/") != 0) ||
      !g_file_test (real, G_FILE_TEST_IS_DIR))
    return NULL;
  index = g_build_filename (real, "index.html", NULL);
  if (g_file_test (index, G_FILE_TEST_IS_REGULAR))
    {
      *index_rel = *rel ? g_strconcat (rel, "/index.html", NULL) : g_strdup ("index.html");
      return NULL;
    }
  dir = g_dir_open (real, 0, NULL);
  if (dir == NULL)
    return NULL;
  /* bounded: a station's directory, not a file system */
  while ((name = g_dir_read_name (dir)) != NULL && names->len < 10000)
    {
      g_autofree char *path = NULL;

      if (name[0] == '.' || !g_utf8_validate (name, -1, NULL))
        continue;
      path = g_build_filename (real, name, NULL);
      g_ptr_array_add (names, g_file_test (path, G_FILE_TEST_IS_DIR)
                              ? g_strconcat (name, "/", NULL) : g_strdup (name));
    }
  g_ptr_array_sort (names, compare_names);
  title = g_markup_printf_escaped ("/%s%s", rel, *rel ? "/" : "");
  g_string_append_printf (html, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                                "<title>%s</title></head>\n<body><h1>%s</h1>\n<ul>\n",
                          title, title);
  for (guint i = 0; i < names->len; i++)
    {
      const char *n = names->pdata[i];
      g_autofree char *href = g_uri_escape_string (n, "/", FALSE);
      g_autofree char *text = g_markup_printf_escaped ("<li><a href=\"%s\">%s</a>%s</li>\n",
                                                       href, n,
                                                       g_str_has_suffix (n, ".rss")
                                                       ? " (Alluvium playlist)" : "");

      g_string_append (html, text);
    }
  g_string_append (html, "</ul>\n");
  if (*rel == '\0')
    g_string_append (html, "<p><a href=\"status\">gateway status</a></p>\n");
  g_string_append (html, "</body></html>\n");
  return g_string_free (g_steal_pointer (&html), FALSE);
}

static gint64
mtime_nsec (const GStatBuf *st)
{
  return (gint64) st->st_mtim.tv_sec * G_GINT64_CONSTANT (1000000000) + st->st_mtim.tv_nsec;
}

char *
gateway_file_id (const GStatBuf *st)
{
  return g_strdup_printf ("%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x-%" G_GINT64_MODIFIER "x",
                          (gint64) st->st_size, mtime_nsec (st), (gint64) st->st_ino);
}

char *
gateway_file_etag (const GStatBuf *st)
{
  g_autofree char *id = gateway_file_id (st);

  return g_strdup_printf ("\"%s\"", id);
}

const char *
gateway_media_type_for_name (const char *name)
{
  static const struct
  {
    const char *suffix;
    const char *type;
  } table[] = {
    { ".rss", "application/x-alluvium" },
    { ".mp3", "audio/mpeg" },
    { ".ogg", "audio/ogg" },
    { ".oga", "audio/ogg" },
    { ".opus", "audio/ogg" },
    { ".flac", "audio/flac" },
    { ".m4a", "audio/mp4" },
    { ".aac", "audio/aac" },
    { ".webm", "video/webm" },
    { ".mkv", "video/x-matroska" },
    { ".html", "text/html; charset=utf-8" },
    { ".txt", "text/plain; charset=utf-8" },
    { ".xml", "application/xml" },
    { ".css", "text/css" },
    { ".js", "text/javascript" },
    { ".png", "image/png" },
    { ".jpg", "image/jpeg" },
    { ".jpeg", "image/jpeg" },
  };
  g_autofree char *lower = g_ascii_strdown (name, -1);

  for (gsize i = 0; i < G_N_ELEMENTS (table); i++)
    if (g_str_has_suffix (lower, table[i].suffix))
      return table[i].type;
  return "application/octet-stream";
}

/* ------------------------------------------------------------------ */
/* Serving                                                             */

typedef struct
{
  GatewayDocroot *docroot;      /* borrowed: outlives every request */
  SoupServerMessage *msg;
  char *rel;
  GatewayUrnLookup lookup;
  gpointer lookup_data;
  GCancellable *cancellable;
  gboolean finished;
  gboolean reading;

  int fd;
  GStatBuf st;
  GInputStream *stream;
  guint64 remaining;
} Serve;

static void
serve_free (Serve *serve)
{
  g_signal_handlers_disconnect_by_data (serve->msg, serve);
  g_cancellable_cancel (serve->cancellable);
  g_clear_object (&serve->cancellable);
  g_clear_object (&serve->msg);
  g_clear_object (&serve->stream);
  if (serve->fd >= 0)
    close (serve->fd);
  g_free (serve->rel);
  g_free (serve);
}

/* A Serve lives until the message is finished and no read is pending. */
static void
serve_maybe_free (Serve *serve)
{
  if (serve->finished && !serve->reading)
    serve_free (serve);
}

static void
msg_finished_cb (SoupServerMessage *msg G_GNUC_UNUSED,
                 Serve             *serve)
{
  serve->finished = TRUE;
  g_cancellable_cancel (serve->cancellable);
  serve_maybe_free (serve);
}

static void
answer_text (SoupServerMessage *msg,
             guint              status,
             const char        *reason)
{
  g_autofree char *body = g_strconcat (reason, "\n", NULL);

  soup_server_message_set_status (msg, status, NULL);
  soup_server_message_set_response (msg, "text/plain; charset=utf-8", SOUP_MEMORY_COPY,
                                    body, strlen (body));
}

static void read_next (Serve *serve);

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Serve *serve = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);

  serve->reading = FALSE;
  if (serve->finished)
    {
      serve_maybe_free (serve);
      return;
    }
  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      /* the file shrank or failed under us: the promised length cannot be
       * met, so drop the connection rather than send a short body */
      g_warning ("short read on %s: %s", serve->rel, error ? error->message : "end of file");
      GSocket *sock = alv_listener_get_message_socket (serve->msg);

      if (sock != NULL)
        g_socket_shutdown (sock, TRUE, TRUE, NULL);
      soup_server_message_unpause (serve->msg);
      return;
    }
  if ((guint64) g_bytes_get_size (bytes) > serve->remaining)
    {
      g_autoptr(GBytes) cut = g_bytes_new_from_bytes (bytes, 0, (gsize) serve->remaining);

      g_clear_pointer (&bytes, g_bytes_unref);
      bytes = g_steal_pointer (&cut);
    }
  serve->remaining -= g_bytes_get_size (bytes);
  serve->docroot->bytes_served += g_bytes_get_size (bytes);
  soup_message_body_append_bytes (soup_server_message_get_response_body (serve->msg), bytes);
  if (serve->remaining == 0)
    soup_message_body_complete (soup_server_message_get_response_body (serve->msg));
  soup_server_message_unpause (serve->msg);
}

static void
read_next (Serve *serve)
{
  if (serve->finished || serve->reading || serve->remaining == 0)
    return;
  serve->reading = TRUE;
  g_input_stream_read_bytes_async (serve->stream, (gsize) MIN (serve->remaining, CHUNK_SIZE),
                                   G_PRIORITY_DEFAULT, serve->cancellable, read_cb, serve);
}

static void
wrote_chunk_cb (SoupServerMessage *msg G_GNUC_UNUSED,
                Serve             *serve)
{
  read_next (serve);
}

/* RFC 9110 §13.1.2: If-None-Match with the weak comparison. */
static gboolean
etag_list_matches (const char *list,
                   const char *etag)
{
  g_auto(GStrv) tags = g_strsplit (list, ",", 64);
  const char *bare = etag;

  for (guint i = 0; tags[i] != NULL; i++)
    {
      const char *tag = g_strstrip (tags[i]);

      if (strcmp (tag, "*") == 0)
        return TRUE;
      if (g_str_has_prefix (tag, "W/"))
        tag += 2;
      if (strcmp (tag, bare) == 0)
        return TRUE;
    }
  return FALSE;
}

static gboolean
not_modified_since (const char     *ims,
                    const GStatBuf *st)
{
  g_autoptr(GDateTime) since = NULL;

  if (ims == NULL)
    return FALSE;
  since = soup_date_time_new_from_http_string (ims);
  return since != NULL && g_date_time_to_unix (since) >= st->st_mtim.tv_sec;
}

static void
respond (Serve *serve)
{
  SoupServerMessage *msg = serve->msg;
  SoupMessageHeaders *req = soup_server_message_get_request_headers (msg);
  SoupMessageHeaders *resp = soup_server_message_get_response_headers (msg);
  gboolean head = soup_server_message_get_method (msg) == SOUP_METHOD_HEAD;
  g_autofree char *etag = gateway_file_etag (&serve->st);
  g_autofree char *file_id = gateway_file_id (&serve->st);
  g_autoptr(GDateTime) mtime = g_date_time_new_from_unix_utc (serve->st.st_mtim.tv_sec);
  g_autofree char *last_modified = soup_date_time_to_string (mtime, SOUP_DATE_HTTP);
  guint64 size = (guint64) serve->st.st_size;
  guint64 start = 0, end = size;
  const char *inm = soup_message_headers_get_one (req, "If-None-Match");
  const char *ims = soup_message_headers_get_one (req, "If-Modified-Since");
  const char *range = soup_message_headers_get_one (req, "Range");
  const char *if_range = soup_message_headers_get_one (req, "If-Range");
  const char *urn = NULL;
  guint status = SOUP_STATUS_OK;

  soup_message_headers_replace (resp, "ETag", etag);
  soup_message_headers_replace (resp, "Last-Modified", last_modified);
  soup_message_headers_replace (resp, "Accept-Ranges", "bytes");
  if (serve->lookup != NULL)
    urn = serve->lookup (serve->rel, file_id, serve->lookup_data);
  if (urn != NULL)
    soup_message_headers_replace (resp, "X-Content-URN", urn);

  /* conditional requests (RFC 9110 §13.2.2 order) */
  if (inm != NULL ? etag_list_matches (inm, etag) : not_modified_since (ims, &serve->st))
    {
      soup_server_message_set_status (msg, SOUP_STATUS_NOT_MODIFIED, NULL);
      soup_server_message_unpause (msg);
      return;
    }

  if (range != NULL && if_range != NULL
      && strcmp (if_range, etag) != 0 && strcmp (if_range, last_modified) != 0)
    range = NULL;
  if (range != NULL)
    {
      g_autoptr(GArray) ranges = NULL;
      g_autoptr(GError) error = NULL;

      if (alv_http_parse_range (range, size, &ranges, &error))
        {
          if (ranges->len == 1)
            {
              AlvRange r = g_array_index (ranges, AlvRange, 0);
              g_autofree char *cr = alv_http_format_content_range (r.start, r.end, size);

              start = r.start;
              end = r.end;
              status = SOUP_STATUS_PARTIAL_CONTENT;
              soup_message_headers_replace (resp, "Content-Range", cr);
            }
        }
      else if (g_error_matches (error, ALV_ERROR, ALV_ERROR_INVALID))
        {
          g_autofree char *cr = alv_http_format_content_range (0, 0, size);

          soup_message_headers_replace (resp, "Content-Range", cr);
          answer_text (msg, SOUP_STATUS_REQUESTED_RANGE_NOT_SATISFIABLE,
                       _("the requested range is outside the file"));
          soup_server_message_unpause (msg);
          return;
        }
    }

  soup_server_message_set_status (msg, status, NULL);
  soup_message_headers_set_content_type (resp, gateway_media_type_for_name (serve->rel), NULL);
  soup_message_headers_set_encoding (resp, SOUP_ENCODING_CONTENT_LENGTH);
  soup_message_headers_set_content_length (resp, (goffset) (end - start));
  if (head || end == start)
    {
      soup_message_body_complete (soup_server_message_get_response_body (msg));
      soup_server_message_unpause (msg);
      return;
    }

  if (start > 0 && lseek (serve->fd, (off_t) start, SEEK_SET) != (off_t) start)
    {
      answer_text (msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, _("cannot seek in the file"));
      soup_server_message_unpause (msg);
      return;
    }
  serve->stream = g_unix_input_stream_new (serve->fd, TRUE);
  serve->fd = -1;
  serve->remaining = end - start;
  soup_message_body_set_accumulate (soup_server_message_get_response_body (msg), FALSE);
  g_signal_connect (msg, "wrote-chunk", G_CALLBACK (wrote_chunk_cb), serve);
  read_next (serve);
}

static void
open_thread (GTask        *task,
             gpointer      source G_GNUC_UNUSED,
             gpointer      task_data,
             GCancellable *cancellable G_GNUC_UNUSED)
{
  Serve *serve = task_data;
  GError *error = NULL;

  serve->fd = gateway_docroot_open (serve->docroot, serve->rel, &serve->st, &error);
  if (serve->fd < 0)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
open_done_cb (GObject      *source G_GNUC_UNUSED,
              GAsyncResult *result,
              gpointer      user_data)
{
  Serve *serve = user_data;
  g_autoptr(GError) error = NULL;

  serve->reading = FALSE;
  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (!serve->finished)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND))
            answer_text (serve->msg, SOUP_STATUS_NOT_FOUND, _("no such file"));
          else
            answer_text (serve->msg, SOUP_STATUS_FORBIDDEN, _("the file cannot be read"));
          soup_server_message_unpause (serve->msg);
        }
      serve_maybe_free (serve);
      return;
    }
  if (serve->finished)
    {
      serve_maybe_free (serve);
      return;
    }
  respond (serve);
}

void
gateway_static_serve (GatewayDocroot    *docroot,
                      SoupServerMessage *msg,
                      const char        *rel,
                      GatewayUrnLookup   lookup,
                      gpointer           lookup_data)
{
  Serve *serve = g_new0 (Serve, 1);
  g_autoptr(GTask) task = NULL;

  serve->docroot = docroot;
  serve->msg = g_object_ref (msg);
  serve->rel = g_strdup (rel);
  serve->lookup = lookup;
  serve->lookup_data = lookup_data;
  serve->cancellable = g_cancellable_new ();
  serve->fd = -1;
  g_signal_connect (msg, "finished", G_CALLBACK (msg_finished_cb), serve);
  soup_server_message_pause (msg);

  serve->reading = TRUE;
  task = g_task_new (NULL, NULL, open_done_cb, serve);
  g_task_set_source_tag (task, gateway_static_serve);
  g_task_set_task_data (task, serve, NULL);
  g_task_run_in_thread (task, open_thread);
}
