/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * File ↔ URL mapping for the playlist tool.  Paths given to these
 * functions are absolute and canonical (g_canonicalize_filename()); each
 * path segment is percent-encoded on its own, keeping only RFC 3986
 * unreserved characters, so any file name (spaces, '#', '?', non-UTF-8
 * bytes) makes a URL that a web server maps back to the same file.  The
 * reverse mapping refuses anything that could leave the root: encoded
 * slashes, "." and ".." segments, empty segments, queries and fragments.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "playlist-paths.h"

#include <string.h>
#include <glib/gi18n-lib.h>

#include "alv-error.h"

/* Returns TRUE for an absolute http or https URL with a host. */
gboolean
playlist_paths_is_http_url (const char *text)
{
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  if (text == NULL)
    return FALSE;
  uri = g_uri_parse (text, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL)
    return FALSE;
  scheme = g_uri_get_scheme (uri);
  return (g_ascii_strcasecmp (scheme, "http") == 0 ||
          g_ascii_strcasecmp (scheme, "https") == 0) &&
         g_uri_get_host (uri) != NULL && *g_uri_get_host (uri) != '\0';
}

/* Checks that @base_url is an http(s) URL without query or fragment and
 * returns it ending with exactly one '/', so relative paths append. */
char *
playlist_paths_normalize_base_url (const char  *base_url,
                                   GError     **error)
{
  g_autoptr(GUri) uri = NULL;

  if (!playlist_paths_is_http_url (base_url))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("“%s” is not an http or https URL"), base_url);
      return NULL;
    }
  uri = g_uri_parse (base_url, G_URI_FLAGS_NONE, NULL);
  if (g_uri_get_query (uri) != NULL || g_uri_get_fragment (uri) != NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("the base URL “%s” must not have a query or a fragment"),
                   base_url);
      return NULL;
    }
  if (g_str_has_suffix (base_url, "/"))
    return g_strdup (base_url);
  return g_strconcat (base_url, "/", NULL);
}

/* The path of @path relative to the directory @root, or NULL when @path
 * is not strictly below @root. */
char *
playlist_paths_relative (const char *root,
                         const char *path)
{
  gsize root_len = strlen (root);

  while (root_len > 1 && root[root_len - 1] == G_DIR_SEPARATOR)
    root_len--;
  if (root_len == 1 && root[0] == G_DIR_SEPARATOR)
    return path[0] == G_DIR_SEPARATOR && path[1] != '\0' ? g_strdup (path + 1) : NULL;
  if (strncmp (path, root, root_len) != 0 || path[root_len] != G_DIR_SEPARATOR ||
      path[root_len + 1] == '\0')
    return NULL;
  return g_strdup (path + root_len + 1);
}

/* The deepest directory containing every one of @paths (absolute,
 * canonical directory names). */
char *
playlist_paths_common_parent (const char * const *paths)
{
  g_autofree char *common = NULL;

  for (gsize i = 0; paths != NULL && paths[i] != NULL; i++)
    {
      gsize n = 0, last_sep = 0;

      if (common == NULL)
        {
          common = g_strdup (paths[i]);
          continue;
        }
      /* Longest common prefix that ends at a path separator. */
      while (common[n] != '\0' && common[n] == paths[i][n])
        {
          if (common[n] == G_DIR_SEPARATOR)
            last_sep = n;
          n++;
        }
      if (common[n] == '\0' && (paths[i][n] == '\0' || paths[i][n] == G_DIR_SEPARATOR))
        continue;
      if (paths[i][n] == '\0' && common[n] == G_DIR_SEPARATOR)
        {
          common[n] = '\0';
          continue;
        }
      common[last_sep == 0 ? 1 : last_sep] = '\0';
    }
  return g_steal_pointer (&common);
}

char *
playlist_paths_url_for_file (const char  *base_url,
                             const char  *root,
                             const char  *path,
                             GError     **error)
{
  g_autofree char *rel = playlist_paths_relative (root, path);
  g_auto(GStrv) segments = NULL;
  g_autoptr(GString) url = NULL;

  if (rel == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("%s is not inside the root directory %s"), path, root);
      return NULL;
    }
  url = g_string_new (base_url);
  segments = g_strsplit (rel, G_DIR_SEPARATOR_S, -1);
  for (gsize i = 0; segments[i] != NULL; i++)
    {
      if (i > 0)
        g_string_append_c (url, '/');
      g_string_append_uri_escaped (url, segments[i], NULL, FALSE);
    }
  return g_string_free (g_steal_pointer (&url), FALSE);
}

/* The local file @url names under @root when @url lies under @base_url
 * (already normalized), or NULL. */
char *
playlist_paths_file_for_url (const char *base_url,
                             const char *root,
                             const char *url)
{
  g_auto(GStrv) segments = NULL;
  g_autoptr(GPtrArray) parts = NULL;
  const char *rest;

  if (!g_str_has_prefix (url, base_url))
    return NULL;
  rest = url + strlen (base_url);
  if (*rest == '\0' || strpbrk (rest, "?#") != NULL)
    return NULL;

  parts = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (parts, g_strdup (root));
  segments = g_strsplit (rest, "/", -1);
  for (gsize i = 0; segments[i] != NULL; i++)
    {
      char *seg = g_uri_unescape_string (segments[i], "/");

      if (seg == NULL || *seg == '\0' || g_str_equal (seg, ".") ||
          g_str_equal (seg, ".."))
        {
          g_free (seg);
          return NULL;
        }
      g_ptr_array_add (parts, seg);
    }
  g_ptr_array_add (parts, NULL);
  return g_build_filenamev ((char **) parts->pdata);
}
