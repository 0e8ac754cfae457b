/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Persistent URL → URN store of the gateway.  Layout of the state
 * directory: `entries/<sha256(url)>.entry` (a GKeyFile per URL) and
 * `trees/<base32 root>` (the raw THEX serialization down to the block
 * layer).  A tree is written before any entry that names it, by one
 * writer thread that takes jobs in order, each file replaced atomically;
 * a tree that does not hash to its name is ignored at load, and so is an
 * entry whose tree is missing — the URL is then simply hashed again.
 *
 * At most max_entries URLs are kept: every lookup and put makes a URL
 * the most recently used, and a put beyond the cap evicts the least
 * recently used one, its file, and its tree when no other URL names that
 * URN.  An evicted URL is hashed again if it is asked for again; so a
 * client that makes up URLs costs the gateway a bounded store whatever
 * it sends.  Lookups, puts and evictions cost O(1).
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#define G_LOG_USE_STRUCTURED 1
#include "config.h"
#include "gateway-store.h"

#include <errno.h>
#include <string.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "alv-ocn-headers.h"
#include "alv-urn.h"

#define ENTRY_GROUP "entry"
#define ENTRY_SUFFIX ".entry"
/* Refuse absurd files in the state directory (a tree of the largest
 * accepted item is well below this). */
#define MAX_STATE_FILE (256u * 1024 * 1024)

/* An entry and its place in the recency order. */
typedef struct
{
  GatewayEntry *entry;
  GList link;                   /* in GatewayStore.lru; data: this Slot */
} Slot;

struct _GatewayStore
{
  char *entries_dir;            /* NULL: memory only */
  char *trees_dir;
  guint max_entries;
  guint64 n_evicted;
  GHashTable *entries;          /* url → Slot */
  GQueue lru;                   /* Slots, most recently used first */
  GHashTable *urn_refs;         /* urn → how many entries name it */
  GHashTable *trees;            /* urn → AlvHashTree */
  GHashTable *trees_on_disk;    /* urn set */
  GThreadPool *writer;          /* one thread: writes in push order */
};

typedef struct
{
  char *path;
  GBytes *contents;             /* NULL: remove the file */
} WriteJob;

GatewayEntry *
gateway_entry_copy (const GatewayEntry *entry)
{
  GatewayEntry *copy = g_new0 (GatewayEntry, 1);

  copy->url = g_strdup (entry->url);
  copy->urn = g_strdup (entry->urn);
  copy->length = entry->length;
  copy->block_size = entry->block_size;
  copy->media_type = g_strdup (entry->media_type);
  copy->etag = g_strdup (entry->etag);
  copy->last_modified = g_strdup (entry->last_modified);
  copy->file_id = g_strdup (entry->file_id);
  copy->head = g_strdup (entry->head);
  copy->checked = entry->checked;
  return copy;
}

void
gateway_entry_free (GatewayEntry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->url);
  g_free (entry->urn);
  g_free (entry->media_type);
  g_free (entry->etag);
  g_free (entry->last_modified);
  g_free (entry->file_id);
  g_free (entry->head);
  g_free (entry);
}

static void
write_job_run (gpointer data,
               gpointer user_data G_GNUC_UNUSED)
{
  WriteJob *job = data;
  g_autoptr(GError) error = NULL;
  gsize len;
  const char *bytes;

  if (job->contents == NULL)
    {
      if (g_unlink (job->path) != 0 && errno != ENOENT)
        g_warning ("cannot remove %s: %s", job->path, g_strerror (errno));
      g_free (job->path);
      g_free (job);
      return;
    }
  bytes = g_bytes_get_data (job->contents, &len);
  if (!g_file_set_contents_full (job->path, bytes, (gssize) len,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
    g_warning ("cannot write %s: %s", job->path, error->message);
  g_free (job->path);
  g_bytes_unref (job->contents);
  g_free (job);
}

static void
queue_write (GatewayStore *store,
             char         *path,
             GBytes       *contents)
{
  WriteJob *job = g_new0 (WriteJob, 1);

  job->path = path;
  job->contents = contents;
  g_thread_pool_push (store->writer, job, NULL);
}

static char *
entry_path (GatewayStore *store,
            const char   *url)
{
  g_autofree char *sum = g_compute_checksum_for_string (G_CHECKSUM_SHA256, url, -1);
  g_autofree char *name = g_strconcat (sum, ENTRY_SUFFIX, NULL);

  return g_build_filename (store->entries_dir, name, NULL);
}

static char *
tree_path (GatewayStore *store,
           const char   *urn)
{
  return g_build_filename (store->trees_dir, urn + strlen (ALV_URN_PREFIX), NULL);
}

/* Removes the state file @path (owned), after the writes queued before. */
static void
remove_file (GatewayStore *store,
             char         *path)
{
  if (store->writer != NULL)
    {
      queue_write (store, path, NULL);
      return;
    }
  /* loading: nothing is queued yet */
  g_unlink (path);
  g_free (path);
}

static void
slot_free (Slot *slot)
{
  gateway_entry_free (slot->entry);
  g_free (slot);
}

static void
urn_ref (GatewayStore *store,
         const char   *urn)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (store->urn_refs, urn));

  g_hash_table_replace (store->urn_refs, g_strdup (urn), GUINT_TO_POINTER (n + 1));
}

/* One entry less names @urn.  With @drop_tree the tree goes with the
 * last one (an eviction); an entry replaced by a newer version keeps its
 * old tree known, for the peers still fetching that version. */
static void
urn_unref (GatewayStore *store,
           const char   *urn,
           gboolean      drop_tree)
{
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (store->urn_refs, urn));

  if (n > 1)
    {
      g_hash_table_replace (store->urn_refs, g_strdup (urn), GUINT_TO_POINTER (n - 1));
      return;
    }
  g_hash_table_remove (store->urn_refs, urn);
  if (!drop_tree)
    return;
  g_hash_table_remove (store->trees, urn);
  if (g_hash_table_remove (store->trees_on_disk, urn))
    remove_file (store, tree_path (store, urn));
}

/* Makes @entry (owned) its URL's entry and the most recently used. */
static void
insert_entry (GatewayStore *store,
              GatewayEntry *entry)
{
  Slot *slot = g_hash_table_lookup (store->entries, entry->url);

  /* first: a new version with the same URN keeps its tree */
  urn_ref (store, entry->urn);
  if (slot != NULL)
    {
      urn_unref (store, slot->entry->urn, FALSE);
      gateway_entry_free (slot->entry);
      slot->entry = entry;
      g_queue_unlink (&store->lru, &slot->link);
      g_queue_push_head_link (&store->lru, &slot->link);
      return;
    }
  slot = g_new0 (Slot, 1);
  slot->entry = entry;
  slot->link.data = slot;
  g_hash_table_insert (store->entries, g_strdup (entry->url), slot);
  g_queue_push_head_link (&store->lru, &slot->link);
}

/* Forgets the least recently used URL: its entry, its file, and its tree
 * when no other URL names that content. */
static void
evict_one (GatewayStore *store)
{
  Slot *slot = g_queue_peek_tail (&store->lru);
  g_autofree char *url = g_strdup (slot->entry->url);

  g_queue_unlink (&store->lru, &slot->link);
  if (store->entries_dir != NULL)
    remove_file (store, entry_path (store, url));
  urn_unref (store, slot->entry->urn, TRUE);
  g_hash_table_remove (store->entries, url);
  store->n_evicted++;
  g_debug ("forgetting %s, the least recently used of %u URLs (--max-urls)", url,
           store->max_entries);
}

static void
trim (GatewayStore *store)
{
  while (g_hash_table_size (store->entries) > store->max_entries)
    evict_one (store);
}

/* Most recently checked first: what a restarted gateway keeps of more
 * entries than it may hold. */
static gint
slot_compare_checked (gconstpointer a,
                      gconstpointer b,
                      gpointer      user_data G_GNUC_UNUSED)
{
  gint64 ca = ((const Slot *) a)->entry->checked;
  gint64 cb = ((const Slot *) b)->entry->checked;

  return ca > cb ? -1 : ca < cb ? 1 : 0;
}

static GBytes *
entry_to_bytes (const GatewayEntry *entry)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  gsize len;
  char *data;

  g_key_file_set_string (kf, ENTRY_GROUP, "url", entry->url);
  g_key_file_set_string (kf, ENTRY_GROUP, "urn", entry->urn);
  g_key_file_set_uint64 (kf, ENTRY_GROUP, "length", entry->length);
  g_key_file_set_uint64 (kf, ENTRY_GROUP, "block-size", entry->block_size);
  g_key_file_set_string (kf, ENTRY_GROUP, "media-type", entry->media_type ? entry->media_type : "");
  if (entry->etag != NULL)
    g_key_file_set_string (kf, ENTRY_GROUP, "etag", entry->etag);
  if (entry->last_modified != NULL)
    g_key_file_set_string (kf, ENTRY_GROUP, "last-modified", entry->last_modified);
  if (entry->file_id != NULL)
    g_key_file_set_string (kf, ENTRY_GROUP, "file-id", entry->file_id);
  if (entry->head != NULL)
    g_key_file_set_string (kf, ENTRY_GROUP, "head", entry->head);
  g_key_file_set_int64 (kf, ENTRY_GROUP, "checked", entry->checked);
  data = g_key_file_to_data (kf, &len, NULL);
  return g_bytes_new_take (data, len);
}

static char *
key_string_or_null (GKeyFile   *kf,
                    const char *key)
{
  char *value = g_key_file_get_string (kf, ENTRY_GROUP, key, NULL);

  if (value != NULL && *value == '\0')
    g_clear_pointer (&value, g_free);
  return value;
}

static GatewayEntry *
entry_from_key_file (GKeyFile *kf,
                     GError  **error)
{
  g_autoptr(GatewayEntry) entry = g_new0 (GatewayEntry, 1);
  g_autoptr(GError) local_error = NULL;
  guint64 block_size = 0;

  entry->url = g_key_file_get_string (kf, ENTRY_GROUP, "url", error);
  if (entry->url == NULL)
    return NULL;
  entry->urn = g_key_file_get_string (kf, ENTRY_GROUP, "urn", error);
  if (entry->urn == NULL)
    return NULL;
  if (!alv_urn_is_valid (entry->urn))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "invalid urn");
      return NULL;
    }
  entry->length = g_key_file_get_uint64 (kf, ENTRY_GROUP, "length", &local_error);
  if (local_error == NULL)
    block_size = g_key_file_get_uint64 (kf, ENTRY_GROUP, "block-size", &local_error);
  if (local_error == NULL)
    entry->checked = g_key_file_get_int64 (kf, ENTRY_GROUP, "checked", &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local_error));
      return NULL;
    }
  if (block_size > G_MAXUINT || !alv_hash_tree_block_size_is_valid ((guint) block_size))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "invalid block size");
      return NULL;
    }
  entry->block_size = (guint) block_size;
  entry->media_type = key_string_or_null (kf, "media-type");
  entry->etag = key_string_or_null (kf, "etag");
  entry->last_modified = key_string_or_null (kf, "last-modified");
  entry->file_id = key_string_or_null (kf, "file-id");
  /* (absent in entries written before the gateway read heads) */
  entry->head = key_string_or_null (kf, "head");
  return g_steal_pointer (&entry);
}

static GatewayEntry *
entry_from_file (const char *path,
                 GError    **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, error))
    return NULL;
  return entry_from_key_file (kf, error);
}

GBytes *
gateway_entry_to_bytes (const GatewayEntry *entry)
{
  return entry_to_bytes (entry);
}

GatewayEntry *
gateway_entry_new_from_bytes (GBytes  *bytes,
                              GError **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  if (len > MAX_STATE_FILE || !g_key_file_load_from_data (kf, data, len, G_KEY_FILE_NONE, error))
    {
      if (error != NULL && *error == NULL)
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "entry too large");
      return NULL;
    }
  return entry_from_key_file (kf, error);
}

/* "LENGTH BLOCK-SIZE\n" and the THEX serialization: what a tree needs to
 * be read back without its entry. */
GBytes *
gateway_tree_to_bytes (AlvHashTree *tree)
{
  g_autoptr(GBytes) raw = alv_hash_tree_serialize (tree);
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autofree char *head = g_strdup_printf ("%" G_GUINT64_FORMAT " %u\n",
                                           alv_hash_tree_get_length (tree),
                                           alv_hash_tree_get_block_size (tree));

  g_byte_array_append (out, (const guint8 *) head, strlen (head));
  g_byte_array_append (out, g_bytes_get_data (raw, NULL), g_bytes_get_size (raw));
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

AlvHashTree *
gateway_tree_new_from_bytes (const char *urn,
                             GBytes     *bytes,
                             GError    **error)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);
  const char *nl = len > 0 ? memchr (data, '\n', MIN (len, 64)) : NULL;
  g_autofree char *head = nl ? g_strndup (data, nl - data) : NULL;
  g_auto(GStrv) parts = head ? g_strsplit (head, " ", 3) : NULL;
  g_autoptr(GBytes) raw = NULL;
  guint64 length, block_size;
  guint8 root[ALV_HASH_SIZE];

  if (parts == NULL || g_strv_length (parts) != 2
      || !g_ascii_string_to_unsigned (parts[0], 10, 0, G_MAXUINT64, &length, NULL)
      || !g_ascii_string_to_unsigned (parts[1], 10, 0, G_MAXUINT, &block_size, NULL)
      || !alv_hash_tree_block_size_is_valid ((guint) block_size))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "malformed tree record");
      return NULL;
    }
  if (!alv_urn_parse (urn, root, error))
    return NULL;
  raw = g_bytes_new_from_bytes (bytes, nl + 1 - data, len - (gsize) (nl + 1 - data));
  return alv_hash_tree_new_from_serialized (raw, length, (guint) block_size, root, error);
}

static AlvHashTree *
tree_from_file (GatewayStore       *store,
                const GatewayEntry *entry,
                GError            **error)
{
  g_autofree char *path = tree_path (store, entry->urn);
  g_autofree char *data = NULL;
  g_autoptr(GBytes) bytes = NULL;
  guint8 root[ALV_HASH_SIZE];
  gsize len;

  if (!alv_urn_parse (entry->urn, root, error))
    return NULL;
  if (!g_file_get_contents (path, &data, &len, error))
    return NULL;
  if (len > MAX_STATE_FILE)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "tree file too large");
      return NULL;
    }
  bytes = g_bytes_new_take (g_steal_pointer (&data), len);
  return alv_hash_tree_new_from_serialized (bytes, entry->length, entry->block_size,
                                            root, error);
}

static gboolean
load (GatewayStore *store,
      GError      **error)
{
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (g_mkdir_with_parents (store->entries_dir, 0700) != 0
      || g_mkdir_with_parents (store->trees_dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_FILE_ERROR, g_file_error_from_errno (saved),
                   _("Cannot create the state directory: %s"), g_strerror (saved));
      return FALSE;
    }

  dir = g_dir_open (store->entries_dir, 0, error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (store->entries_dir, name, NULL);
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GatewayEntry) entry = NULL;

      if (!g_str_has_suffix (name, ENTRY_SUFFIX))
        {
          /* a temporary file left by a write cut short */
          g_unlink (path);
          continue;
        }
      entry = entry_from_file (path, &local_error);
      if (entry != NULL && g_hash_table_lookup (store->trees, entry->urn) == NULL)
        {
          AlvHashTree *tree = tree_from_file (store, entry, &local_error);

          if (tree != NULL)
            {
              g_hash_table_insert (store->trees, g_strdup (entry->urn), tree);
              g_hash_table_add (store->trees_on_disk, g_strdup (entry->urn));
            }
          else
            g_clear_pointer (&entry, gateway_entry_free);
        }
      if (entry == NULL)
        {
          g_warning ("ignoring state file %s: %s", path,
                     local_error ? local_error->message : "?");
          g_unlink (path);
          continue;
        }
      insert_entry (store, g_steal_pointer (&entry));
    }
  g_queue_sort (&store->lru, slot_compare_checked, NULL);
  trim (store);

  /* Drop trees no entry names any more (and temporary files). */
  g_clear_pointer (&dir, g_dir_close);
  dir = g_dir_open (store->trees_dir, 0, error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *urn = g_strconcat (ALV_URN_PREFIX, name, NULL);

      if (!g_hash_table_contains (store->trees_on_disk, urn))
        {
          g_autofree char *path = g_build_filename (store->trees_dir, name, NULL);

          g_unlink (path);
        }
    }
  g_debug ("loaded %u entries and %u trees from the state directory",
           g_hash_table_size (store->entries), g_hash_table_size (store->trees));
  return TRUE;
}

GatewayStore *
gateway_store_new (const char *state_dir,
                   guint       max_entries,
                   GError    **error)
{
  g_autoptr(GatewayStore) store = g_new0 (GatewayStore, 1);

  store->max_entries = MAX (max_entries, 1);
  g_queue_init (&store->lru);
  store->entries = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                          (GDestroyNotify) slot_free);
  store->urn_refs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  store->trees = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) alv_hash_tree_unref);
  store->trees_on_disk = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (state_dir == NULL)
    return g_steal_pointer (&store);

  store->entries_dir = g_build_filename (state_dir, "entries", NULL);
  store->trees_dir = g_build_filename (state_dir, "trees", NULL);
  if (!load (store, error))
    return NULL;
  store->writer = g_thread_pool_new (write_job_run, NULL, 1, FALSE, error);
  if (store->writer == NULL)
    return NULL;
  return g_steal_pointer (&store);
}

void
gateway_store_free (GatewayStore *store)
{
  if (store == NULL)
    return;
  /* finish every queued write before going */
  if (store->writer != NULL)
    g_thread_pool_free (store->writer, FALSE, TRUE);
  g_hash_table_unref (store->entries);
  g_hash_table_unref (store->urn_refs);
  g_hash_table_unref (store->trees);
  g_hash_table_unref (store->trees_on_disk);
  g_free (store->entries_dir);
  g_free (store->trees_dir);
  g_free (store);
}

/* A lookup is a use: the URL becomes the most recently used. */
const GatewayEntry *
gateway_store_lookup (GatewayStore *store,
                      const char   *url)
{
  Slot *slot = g_hash_table_lookup (store->entries, url);

  if (slot == NULL)
    return NULL;
  g_queue_unlink (&store->lru, &slot->link);
  g_queue_push_head_link (&store->lru, &slot->link);
  return slot->entry;
}

AlvHashTree *
gateway_store_get_tree (GatewayStore *store,
                        const char   *urn)
{
  return g_hash_table_lookup (store->trees, urn);
}

gboolean
gateway_store_put (GatewayStore       *store,
                   const GatewayEntry *entry,
                   AlvHashTree        *tree)
{
  GatewayEntry *copy;

  if (tree != NULL && !g_hash_table_contains (store->trees, entry->urn))
    g_hash_table_insert (store->trees, g_strdup (entry->urn), alv_hash_tree_ref (tree));
  /* a revalidation whose entry was evicted meanwhile, with its tree */
  if (!g_hash_table_contains (store->trees, entry->urn))
    return FALSE;
  copy = gateway_entry_copy (entry);
  insert_entry (store, copy);

  if (store->writer != NULL)
    {
      if (!g_hash_table_contains (store->trees_on_disk, copy->urn))
        {
          AlvHashTree *known = g_hash_table_lookup (store->trees, copy->urn);

          queue_write (store, tree_path (store, copy->urn), alv_hash_tree_serialize (known));
          g_hash_table_add (store->trees_on_disk, g_strdup (copy->urn));
        }
      queue_write (store, entry_path (store, copy->url), entry_to_bytes (copy));
    }
  /* after the writes: an evicted URL's removal comes after them */
  trim (store);
  return TRUE;
}

void
gateway_store_add_tree (GatewayStore *store,
                        const char   *urn,
                        AlvHashTree  *tree)
{
  if (!g_hash_table_contains (store->trees, urn))
    g_hash_table_insert (store->trees, g_strdup (urn), alv_hash_tree_ref (tree));
}

void
gateway_store_touch (GatewayStore *store,
                     const char   *url,
                     gint64        checked)
{
  Slot *slot = g_hash_table_lookup (store->entries, url);
  GatewayEntry *entry = slot != NULL ? slot->entry : NULL;

  if (entry == NULL)
    return;
  entry->checked = checked;
  if (store->writer != NULL)
    queue_write (store, entry_path (store, url), entry_to_bytes (entry));
}

guint
gateway_store_get_n_entries (GatewayStore *store)
{
  return g_hash_table_size (store->entries);
}

guint
gateway_store_get_n_trees (GatewayStore *store)
{
  return g_hash_table_size (store->trees);
}

guint
gateway_store_get_max_entries (GatewayStore *store)
{
  return store->max_entries;
}

guint64
gateway_store_get_n_evicted (GatewayStore *store)
{
  return store->n_evicted;
}
