/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Build mode: turns media files and directories into a station playlist.
 * Inputs are taken in the order given; a directory contributes its media
 * files recursively, sorted by name (byte order), hidden entries skipped.
 * A file named on the command line that is not media is an error; one met
 * while walking a directory is skipped with a warning, so a station
 * directory may also hold its playlist, cover art or notes.  Each distinct
 * file is probed once and hashed once, however often the schedule repeats
 * it.  All files must share one stream format unless forced: the listener's
 * player decodes the station as one continuous stream.
 */
#define G_LOG_DOMAIN "alluvium-server"
#include "config.h"
#include "playlist-build.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "alv-error.h"
#include "alv-hash-tree.h"
#include "playlist-paths.h"
#include "playlist-probe.h"

#define MAX_DIR_DEPTH 32
#define DEFAULT_HORIZON (24 * G_TIME_SPAN_HOUR)

typedef struct
{
  char *path;                   /* absolute, canonical */
  gboolean explicit;            /* named on the command line */
  char *rel;                    /* relative to the root, for messages */
  char *url;
  PlaylistMediaInfo *info;
  char *urn;
  guint64 length;
} MediaFile;

static void
media_file_free (MediaFile *file)
{
  g_free (file->path);
  g_free (file->rel);
  g_free (file->url);
  playlist_media_info_free (file->info);
  g_free (file->urn);
  g_free (file);
}

static void
add_file (GPtrArray  *files,
          const char *path,
          gboolean    explicit)
{
  MediaFile *file = g_new0 (MediaFile, 1);

  file->path = g_strdup (path);
  file->explicit = explicit;
  g_ptr_array_add (files, file);
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static gboolean
walk_directory (GPtrArray   *files,
                const char  *dir,
                guint        depth,
                GError     **error)
{
  g_autoptr(GDir) d = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  const char *name;

  if (depth > MAX_DIR_DEPTH)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("%s: directories nested deeper than %d levels (a symlink loop?)"),
                   dir, MAX_DIR_DEPTH);
      return FALSE;
    }
  d = g_dir_open (dir, 0, error);
  if (d == NULL)
    return FALSE;
  while ((name = g_dir_read_name (d)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *path = g_build_filename (dir, names->pdata[i], NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          if (!walk_directory (files, path, depth + 1, error))
            return FALSE;
        }
      else if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          add_file (files, path, FALSE);
        }
    }
  return TRUE;
}

/* Expands the inputs into files and returns the directories the default
 * root is the common parent of. */
static GPtrArray *
collect_files (const PlaylistOptions  *opts,
               GPtrArray              *parents,
               GError                **error)
{
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func ((GDestroyNotify) media_file_free);

  for (gsize i = 0; opts->inputs[i] != NULL; i++)
    {
      g_autofree char *path = g_canonicalize_filename (opts->inputs[i], NULL);

      if (g_file_test (path, G_FILE_TEST_IS_DIR))
        {
          g_ptr_array_add (parents, g_strdup (path));
          if (!walk_directory (files, path, 0, error))
            return NULL;
        }
      else if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          g_ptr_array_add (parents, g_path_get_dirname (path));
          add_file (files, path, TRUE);
        }
      else
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED,
                       g_file_test (path, G_FILE_TEST_EXISTS)
                       ? _("%s: not a regular file or directory")
                       : _("%s: no such file or directory"),
                       opts->inputs[i]);
          return NULL;
        }
    }
  return g_steal_pointer (&files);
}

static void
progress (const PlaylistOptions *opts,
          guint                  index,
          guint                  total,
          const char            *what,
          const char            *name)
{
  if (opts->progress)
    g_printerr ("[%u/%u] %s %s…\n", index, total, what, name);
}

static gboolean
probe_files (const PlaylistOptions  *opts,
             GPtrArray              *files,
             GHashTable             *probed,
             GError                **error)
{
  g_autoptr(PlaylistProbe) probe = playlist_probe_new (opts->timeout, error);

  if (probe == NULL)
    return FALSE;

  for (guint i = 0; i < files->len; )
    {
      MediaFile *file = files->pdata[i];
      g_autoptr(GError) local_error = NULL;
      MediaFile *seen = g_hash_table_lookup (probed, file->path);

      if (seen != NULL)
        {
          file->info = playlist_media_info_copy (seen->info);
          i++;
          continue;
        }

      progress (opts, i + 1, files->len, _("probing"), file->rel);
      file->info = playlist_probe_file (probe, file->path, &local_error);
      if (file->info == NULL)
        {
          if (!file->explicit &&
              g_error_matches (local_error, ALV_ERROR, ALV_ERROR_UNSUPPORTED))
            {
              g_printerr (_("warning: skipping %s: %s\n"), file->rel, local_error->message);
              g_ptr_array_remove_index (files, i);
              continue;
            }
          g_set_error (error, ALV_ERROR, local_error->code, "%s: %s",
                       file->rel, local_error->message);
          return FALSE;
        }
      if (opts->verbose)
        {
          g_autoptr(GString) line = g_string_new (NULL);

          g_string_printf (line, _("%s: %s, %.3f s"), file->rel, file->info->format,
                           (double) file->info->duration_ms / 1000.0);
          if (file->info->title != NULL)
            g_string_append_printf (line, _(", title “%s”"), file->info->title);
          if (file->info->artist != NULL)
            g_string_append_printf (line, _(", artist “%s”"), file->info->artist);
          g_printerr ("%s\n", line->str);
        }
      g_hash_table_insert (probed, file->path, file);
      i++;
    }
  return TRUE;
}

static gboolean
check_formats (const PlaylistOptions  *opts,
               GPtrArray              *files,
               GError                **error)
{
  MediaFile *first = files->pdata[0];

  for (guint i = 1; i < files->len; i++)
    {
      MediaFile *file = files->pdata[i];

      if (g_str_equal (file->info->format_key, first->info->format_key))
        continue;
      if (opts->force)
        {
          g_printerr (_("warning: mixed stream formats: %s is %s but %s is %s\n"),
                      first->rel, first->info->format, file->rel, file->info->format);
          return TRUE;
        }
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("mixed stream formats: %s is %s but %s is %s; a player cannot "
                     "switch codec in the middle of a station's stream "
                     "(use --force to write the playlist anyway)"),
                   first->rel, first->info->format, file->rel, file->info->format);
      return FALSE;
    }
  return TRUE;
}

static gboolean
hash_files (const PlaylistOptions  *opts,
            GPtrArray              *files,
            GError                **error)
{
  g_autoptr(GHashTable) done = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < files->len; i++)
    {
      MediaFile *file = files->pdata[i];
      MediaFile *seen = g_hash_table_lookup (done, file->path);

      if (seen != NULL)
        {
          file->urn = g_strdup (seen->urn);
          file->length = seen->length;
          continue;
        }

      if (opts->no_urn)
        {
          GStatBuf st;

          if (g_stat (file->path, &st) != 0)
            {
              g_set_error (error, ALV_ERROR, ALV_ERROR_FAILED, "%s: %s",
                           file->rel, g_strerror (errno));
              return FALSE;
            }
          file->length = (guint64) st.st_size;
        }
      else
        {
          g_autoptr(AlvHashTree) tree = NULL;

          progress (opts, i + 1, files->len, _("hashing"), file->rel);
          tree = alv_hash_tree_new_for_file (file->path, ALV_HASH_TREE_DEFAULT_BLOCK_SIZE,
                                             NULL, error);
          if (tree == NULL)
            {
              g_prefix_error (error, "%s: ", file->rel);
              return FALSE;
            }
          file->urn = alv_hash_tree_get_urn (tree);
          file->length = alv_hash_tree_get_length (tree);
        }
      g_hash_table_insert (done, file->path, file);
    }
  return TRUE;
}

static AlvPlaylistItem *
make_item (MediaFile *file,
           GDateTime *start)
{
  g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new (file->url);
  g_autoptr(GDateTime) end = g_date_time_add (start, file->info->duration_ms * G_TIME_SPAN_MILLISECOND);
  g_autofree char *title = NULL;

  if (file->info->title != NULL)
    {
      title = g_strdup (file->info->title);
    }
  else
    {
      /* The file name without its extension. */
      g_autofree char *base = g_path_get_basename (file->path);
      char *dot = strrchr (base, '.');

      if (dot != NULL && dot != base)
        *dot = '\0';
      title = g_filename_display_name (base);
    }

  alv_playlist_item_set_title (item, title);
  if (file->info->artist != NULL)
    alv_playlist_item_set_creator (item, file->info->artist);
  alv_playlist_item_set_media_type (item, file->info->mime);
  if (file->urn != NULL)
    alv_playlist_item_set_urn (item, file->urn);
  alv_playlist_item_set_length (item, file->length);
  alv_playlist_item_set_slot (item, start, end);
  return g_steal_pointer (&item);
}

static char *
default_about (const PlaylistOptions *opts)
{
  g_autofree char *base = g_path_get_basename (opts->output ? opts->output : "station.rss");
  g_autoptr(GString) about = g_string_new (opts->base_url);

  g_string_append_uri_escaped (about, base, NULL, FALSE);
  return g_string_free (g_steal_pointer (&about), FALSE);
}

/* Lays the files out back to back from the start; when repeating, goes
 * round again until a slot would start at or after the horizon. */
static gboolean
schedule (const PlaylistOptions  *opts,
          AlvPlaylist            *pl,
          GPtrArray              *files,
          GError                **error)
{
  g_autoptr(GDateTime) now = g_date_time_ref (opts->start);
  g_autoptr(GDateTime) until = NULL;
  guint n = 0;

  if (opts->until != NULL)
    until = g_date_time_ref (opts->until);
  else if (opts->repeat)
    until = g_date_time_add (opts->start, DEFAULT_HORIZON);

  do
    {
      for (guint i = 0; i < files->len; i++)
        {
          g_autoptr(AlvPlaylistItem) item = NULL;

          if (until != NULL && n > 0 && g_date_time_compare (now, until) >= 0)
            return TRUE;
          if (n >= ALV_PLAYLIST_MAX_ITEMS)
            {
              g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                           _("filling the schedule up to the horizon needs more than %d items"),
                           ALV_PLAYLIST_MAX_ITEMS);
              return FALSE;
            }
          item = make_item (files->pdata[i], now);
          g_date_time_unref (now);
          now = g_date_time_ref (alv_playlist_item_get_end (item));
          alv_playlist_add_item (pl, item);
          n++;
        }
    }
  while (until != NULL && g_date_time_compare (now, until) < 0);
  return TRUE;
}

/**
 * playlist_build:
 * @opts: the checked options (@inputs non-empty, @base_url and @start set)
 * @error: return location for a #GError
 *
 * Builds the playlist @opts describe.  Progress goes to stderr.
 *
 * Returns: (transfer full): the playlist, validated, or %NULL with @error set
 */
AlvPlaylist *
playlist_build (const PlaylistOptions  *opts,
                GError                **error)
{
  g_autoptr(GPtrArray) parents = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) files = NULL;
  g_autoptr(GHashTable) probed = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autofree char *root = NULL;
  g_autofree char *about = NULL;
  g_autofree char *root_name = NULL;

  g_return_val_if_fail (opts->inputs != NULL && opts->inputs[0] != NULL, NULL);
  g_return_val_if_fail (opts->base_url != NULL && opts->start != NULL, NULL);

  files = collect_files (opts, parents, error);
  if (files == NULL)
    return NULL;

  if (opts->root != NULL)
    {
      root = g_strdup (opts->root);
    }
  else
    {
      g_ptr_array_add (parents, NULL);
      root = playlist_paths_common_parent ((const char * const *) parents->pdata);
      if (opts->output != NULL)
        {
          /* a playlist written outside the media directory leaves it
           * open which one --base-url publishes (every URL would lack
           * the media directory's name if it is the playlist's): ask */
          g_autofree char *out = g_canonicalize_filename (opts->output, NULL);
          g_autofree char *out_dir = g_path_get_dirname (out);
          const char *pair[] = { out_dir, root, NULL };
          g_autofree char *common = playlist_paths_common_parent (pair);

          if (g_strcmp0 (common, root) != 0)
            {
              g_autofree char *shown_out = g_filename_display_name (opts->output);
              g_autofree char *shown_root = g_filename_display_name (root);
              g_autofree char *shown_dir = g_filename_display_name (out_dir);

              g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                           _("%s is written outside the media directory %s, so it is not clear "
                             "which directory %s publishes: give --root %s if it publishes the "
                             "media directory, or --root %s if it publishes the playlist's"),
                           shown_out, shown_root, opts->base_url, shown_root, shown_dir);
              return NULL;
            }
        }
    }

  for (guint i = 0; i < files->len; i++)
    {
      MediaFile *file = files->pdata[i];

      file->url = playlist_paths_url_for_file (opts->base_url, root, file->path, error);
      if (file->url == NULL)
        {
          g_prefix_error (error, _("cannot map it to a URL under --base-url: "));
          return NULL;
        }
      file->rel = playlist_paths_relative (root, file->path);
    }

  if (!probe_files (opts, files, probed, error))
    return NULL;
  if (files->len == 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID, _("no media files found"));
      return NULL;
    }
  if (!check_formats (opts, files, error))
    return NULL;
  if (!hash_files (opts, files, error))
    return NULL;

  pl = alv_playlist_new ();
  root_name = g_path_get_basename (root);
  if (opts->title != NULL)
    {
      alv_playlist_set_title (pl, opts->title);
    }
  else
    {
      g_autofree char *display = g_filename_display_name (root_name);

      alv_playlist_set_title (pl, display);
    }
  alv_playlist_set_link (pl, opts->link ? opts->link : opts->base_url);
  alv_playlist_set_description (pl, opts->description ? opts->description
                                                      : _("A scheduled Alluvium station"));
  about = opts->about ? g_strdup (opts->about) : default_about (opts);
  alv_playlist_set_about (pl, about);
  if (opts->update_period != NULL)
    alv_playlist_set_update_period (pl, opts->update_period);
  if (opts->update_frequency > 0)
    alv_playlist_set_update_frequency (pl, (guint) opts->update_frequency);

  if (!schedule (opts, pl, files, error))
    return NULL;
  if (!alv_playlist_validate (pl, error))
    {
      g_prefix_error (error, _("the generated playlist is invalid: "));
      return NULL;
    }
  return g_steal_pointer (&pl);
}
