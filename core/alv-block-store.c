/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * AlvBlockStore: the on-disk content cache of alluvium-core.  Each entry is
 * three files named after the base32 of its URN root: `<B32>.data` (sparse,
 * written block by block with pwrite), `<B32>.thex` (the serialized tree)
 * and `<B32>.state` (a small binary header plus the held-block bitfield,
 * replaced atomically).  Crash safety rests on ordering: a block is marked
 * held in memory only after all of it was written, the state file is
 * rewritten only after the data file was fdatasync'ed, and on load every
 * block the state claims is verified again against the stored tree.
 * Entries without a stored tree keep their blocks across a restart only
 * when complete and hashing to their URN.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-block-store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <inttypes.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>

#include "alv-base32.h"
#include "alv-block-map.h"
#include "alv-error.h"
#include "alv-ocn-headers.h"
#include "alv-urn.h"

/* state file layout (little-endian):
 *   0  magic "ALVSTAT1"
 *   8  u32 block size
 *  12  u32 flags (STATE_FLAG_TREE: the .thex file is valid)
 *  16  u64 content length
 *  24  i64 last use (real time, µs) for LRU across restarts
 *  32  root (32 bytes), checked against the file name
 *  64  held-block bitfield (alv_block_map_to_bytes) */
#define STATE_MAGIC "ALVSTAT1"
#define STATE_HEADER_SIZE 64
#define STATE_FLAG_TREE 1u

/* newly held blocks after which the state file is rewritten; fewer are
 * written at close, on completion and by alv_block_store_flush() */
#define STATE_FLUSH_EVERY 16

#define B32_LEN ALV_URN_ROOT_LENGTH

/* Each entry keeps the blocks it verified last (written or read), up to
 * RECENT_BYTES and RECENT_MAX blocks: the local stream and the peers
 * that upload from it read what arrived moments ago, in 4 KiB pieces, and
 * those reads then need neither the disk, nor the hash, nor a thread. */
#define RECENT_MAX 32
#define RECENT_BYTES (512u * 1024)

typedef struct
{
  guint index;
  GBytes *bytes;                 /* the whole block, verified */
} Recent;

typedef struct
{
  char *urn;                     /* normalised, the table key */
  char *b32;                     /* file base name, from the decoded root */
  guint8 root[ALV_HASH_SIZE];
  guint64 length;
  guint block_size;
  guint n_blocks;

  /* protected by the store's lock */
  AlvBlockMap *held;
  AlvBlockMap *verifying;        /* while the tree arrives: the blocks held
                                  * before it, not held until checked, but
                                  * readable (checked as they are read) */
  guint64 held_bytes;
  AlvHashTree *tree;
  gsize tree_size;
  guint pins;
  gint64 last_used;
  guint dirty;
  gboolean removed;
  Recent recent[RECENT_MAX];     /* oldest first */
  guint n_recent;

  GMutex state_lock;             /* serialises state-file writes */
} Entry;

struct _AlvBlockStore
{
  GObject parent_instance;

  char *directory;
  GMainContext *context;         /* where entry-evicted is emitted */

  GMutex lock;
  GHashTable *entries;           /* urn → Entry (a reference) */
  guint64 size_limit;
  guint64 size;                  /* costs of entries + writes in flight */
  gint64 last_tick;
};

enum
{
  SIGNAL_ENTRY_EVICTED,
  SIGNAL_BLOCK_DROPPED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (AlvBlockStore, alv_block_store, G_TYPE_OBJECT)

/* ------------------------------------------------------------------ */
/* entries                                                             */

static void recent_clear (Entry *e);

static void
entry_clear (gpointer data)
{
  Entry *e = data;

  recent_clear (e);
  g_free (e->urn);
  g_free (e->b32);
  g_clear_pointer (&e->held, alv_block_map_free);
  g_clear_pointer (&e->verifying, alv_block_map_free);
  g_clear_pointer (&e->tree, alv_hash_tree_unref);
  g_mutex_clear (&e->state_lock);
}

static Entry *
entry_ref (Entry *e)
{
  return g_atomic_rc_box_acquire (e);
}

static void
entry_unref (Entry *e)
{
  g_atomic_rc_box_release_full (e, entry_clear);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Entry, entry_unref)

static Entry *
entry_new (const char   *urn,
           const guint8 *root,
           guint64       length,
           guint         block_size)
{
  Entry *e = g_atomic_rc_box_new0 (Entry);

  e->urn = g_strdup (urn);
  memcpy (e->root, root, ALV_HASH_SIZE);
  e->b32 = alv_base32_encode (root, ALV_HASH_SIZE);
  e->length = length;
  e->block_size = block_size;
  e->n_blocks = (guint) alv_block_count_for_length (length, block_size);
  e->held = alv_block_map_new (e->n_blocks);
  g_mutex_init (&e->state_lock);
  return e;
}

static char *
entry_path (AlvBlockStore *self,
            Entry         *e,
            const char    *suffix)
{
  g_autofree char *name = g_strconcat (e->b32, suffix, NULL);

  return g_build_filename (self->directory, name, NULL);
}

static guint64
entry_state_size (Entry *e)
{
  return STATE_HEADER_SIZE + (e->n_blocks + 7) / 8;
}

/* what an entry counts against the size limit; lock held */
static guint64
entry_cost_locked (Entry *e)
{
  return e->held_bytes + e->tree_size + entry_state_size (e);
}

static AlvRange
entry_block_range (Entry *e,
                   guint  index)
{
  return alv_block_get_range (index, e->block_size, e->length);
}

/* lock held */
static void
touch_locked (AlvBlockStore *self,
              Entry         *e)
{
  gint64 now = g_get_real_time ();

  e->last_used = MAX (now, self->last_tick + 1);
  self->last_tick = e->last_used;
}

/* Validates and normalises a URN given by the caller. */
/* --- the recently verified blocks (store lock held) ---------------- */

static guint
recent_capacity (Entry *e)
{
  return CLAMP (RECENT_BYTES / MAX (e->block_size, 1u), 1u, RECENT_MAX);
}

static void
recent_clear (Entry *e)
{
  for (guint i = 0; i < e->n_recent; i++)
    g_bytes_unref (e->recent[i].bytes);
  e->n_recent = 0;
}

static void
recent_remove_at (Entry *e,
                  guint  i)
{
  g_bytes_unref (e->recent[i].bytes);
  memmove (&e->recent[i], &e->recent[i + 1], (e->n_recent - i - 1) * sizeof e->recent[0]);
  e->n_recent--;
}

static gint
recent_find (Entry *e,
             guint  index)
{
  for (guint i = e->n_recent; i-- > 0;)
    if (e->recent[i].index == index)
      return (gint) i;
  return -1;
}

static void
recent_remove (Entry *e,
               guint  index)
{
  gint i = recent_find (e, index);

  if (i >= 0)
    recent_remove_at (e, (guint) i);
}

/* Keeps a copy of verified block @index of @e (a copy: @data may be a
 * slice that holds a much larger buffer alive), as the newest. */
static void
recent_add (Entry        *e,
            guint         index,
            const guint8 *data,
            gsize         len)
{
  recent_remove (e, index);
  if (e->n_recent >= recent_capacity (e))
    recent_remove_at (e, 0);
  e->recent[e->n_recent].index = index;
  e->recent[e->n_recent].bytes = g_bytes_new (data, len);
  e->n_recent++;
}

/* [@offset, @offset + @len) from the recent blocks alone, or %NULL when
 * one of its blocks is not among them.  @len > 0. */
static GBytes *
recent_read (Entry   *e,
             guint64  offset,
             gsize    len)
{
  guint first = (guint) (offset / e->block_size);
  guint last = (guint) ((offset + len - 1) / e->block_size);
  g_autofree guint8 *buf = NULL;
  gsize done = 0;

  if (first == last)
    {
      gint i = recent_find (e, first);

      if (i < 0)
        return NULL;
      return g_bytes_new_from_bytes (e->recent[i].bytes,
                                     offset - (guint64) first * e->block_size, len);
    }
  for (guint index = first; index <= last; index++)
    if (recent_find (e, index) < 0)
      return NULL;
  buf = g_malloc (len);
  for (guint index = first; index <= last; index++)
    {
      gsize size;
      const guint8 *block = g_bytes_get_data (e->recent[recent_find (e, index)].bytes, &size);
      guint64 block_start = (guint64) index * e->block_size;
      guint64 from = MAX (offset, block_start);
      guint64 to = MIN (offset + len, block_start + size);

      memcpy (buf + done, block + (from - block_start), to - from);
      done += to - from;
    }
  g_assert (done == len);
  return g_bytes_new_take (g_steal_pointer (&buf), len);
}

static char *
normalize_urn (const char *urn,
               guint8     *root,
               GError    **error)
{
  g_autofree char *norm = alv_urn_normalize (urn, error);

  if (norm == NULL)
    return NULL;
  if (!alv_urn_parse (norm, root, error))
    return NULL;
  return g_steal_pointer (&norm);
}

/* Returns a reference to the entry of @urn, or NULL. */
static Entry *
lookup_entry (AlvBlockStore *self,
              const char    *urn)
{
  g_autofree char *norm = alv_urn_normalize (urn, NULL);
  Entry *e;

  if (norm == NULL)
    return NULL;
  g_mutex_lock (&self->lock);
  e = g_hash_table_lookup (self->entries, norm);
  if (e != NULL)
    entry_ref (e);
  g_mutex_unlock (&self->lock);
  return e;
}

static Entry *
lookup_entry_or_error (AlvBlockStore *self,
                       const char    *urn,
                       GError       **error)
{
  Entry *e = lookup_entry (self, urn);

  if (e == NULL)
    g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                 _("The cache has no entry for %s"), urn);
  return e;
}

static void
set_io_error (GError    **error,
              int         saved_errno,
              const char *what,
              const char *path)
{
  g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
               _("Cache: cannot %s “%s”: %s"), what, path,
               g_strerror (saved_errno));
}

/* ------------------------------------------------------------------ */
/* files                                                               */

static void
unlink_entry_files (AlvBlockStore *self,
                    Entry         *e)
{
  static const char *const suffixes[] = { ".state", ".thex", ".data" };

  /* the state first: without it the others are orphans, removed on load */
  for (gsize i = 0; i < G_N_ELEMENTS (suffixes); i++)
    {
      g_autofree char *path = entry_path (self, e, suffixes[i]);

      if (g_unlink (path) != 0 && errno != ENOENT)
        g_debug ("Cache: cannot remove %s: %s", path, g_strerror (errno));
    }
}

static gboolean
pwrite_all (int           fd,
            const guint8 *data,
            gsize         len,
            guint64       offset)
{
  while (len > 0)
    {
      ssize_t n = pwrite (fd, data, len, (off_t) offset);

      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return FALSE;
        }
      if (n == 0)
        {
          errno = EIO;
          return FALSE;
        }
      data += n;
      len -= (gsize) n;
      offset += (guint64) n;
    }
  return TRUE;
}

/* Reads exactly @len bytes; a file shorter than that is an error
 * (ENODATA: the data file lost its tail). */
static gboolean
pread_all (int      fd,
           guint8  *data,
           gsize    len,
           guint64  offset)
{
  while (len > 0)
    {
      ssize_t n = pread (fd, data, len, (off_t) offset);

      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return FALSE;
        }
      if (n == 0)
        {
          errno = ENODATA;
          return FALSE;
        }
      data += n;
      len -= (gsize) n;
      offset += (guint64) n;
    }
  return TRUE;
}

static GBytes *
read_span (AlvBlockStore *self,
           Entry         *e,
           guint64        offset,
           gsize          len,
           GError       **error)
{
  g_autofree char *path = entry_path (self, e, ".data");
  g_autofree guint8 *buf = g_malloc (MAX (len, 1));
  int fd;

  fd = g_open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd < 0)
    {
      set_io_error (error, errno, "open", path);
      return NULL;
    }
  if (!pread_all (fd, buf, len, offset))
    {
      int saved = errno;

      close (fd);
      set_io_error (error, saved, "read", path);
      return NULL;
    }
  close (fd);
  return g_bytes_new_take (g_steal_pointer (&buf), len);
}

/* Writes the state of @e atomically, after syncing its data file.  Never
 * called with the store's lock held. */
static gboolean
write_state (AlvBlockStore *self,
             Entry         *e,
             GError       **error)
{
  g_autofree char *data_path = entry_path (self, e, ".data");
  g_autofree char *state_path = entry_path (self, e, ".state");
  g_autoptr(GBytes) bits = NULL;
  g_autoptr(GByteArray) buf = NULL;
  guint32 u32;
  guint64 u64;
  guint dirty;
  gboolean has_tree;
  gint64 last_used;
  int fd;

  g_mutex_lock (&e->state_lock);

  g_mutex_lock (&self->lock);
  if (e->removed)
    {
      g_mutex_unlock (&self->lock);
      g_mutex_unlock (&e->state_lock);
      return TRUE;
    }
  bits = alv_block_map_to_bytes (e->held);
  dirty = e->dirty;
  has_tree = e->tree != NULL;
  last_used = e->last_used;
  g_mutex_unlock (&self->lock);

  /* what the state will claim must be on the disk first */
  fd = g_open (data_path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0);
  if (fd >= 0)
    {
      if (fdatasync (fd) != 0)
        {
          int saved = errno;

          close (fd);
          g_mutex_unlock (&e->state_lock);
          set_io_error (error, saved, "sync", data_path);
          return FALSE;
        }
      close (fd);
    }
  else if (errno != ENOENT)
    {
      int saved = errno;

      g_mutex_unlock (&e->state_lock);
      set_io_error (error, saved, "open", data_path);
      return FALSE;
    }

  buf = g_byte_array_sized_new (STATE_HEADER_SIZE + g_bytes_get_size (bits));
  g_byte_array_append (buf, (const guint8 *) STATE_MAGIC, 8);
  u32 = GUINT32_TO_LE (e->block_size);
  g_byte_array_append (buf, (const guint8 *) &u32, 4);
  u32 = GUINT32_TO_LE (has_tree ? STATE_FLAG_TREE : 0);
  g_byte_array_append (buf, (const guint8 *) &u32, 4);
  u64 = GUINT64_TO_LE (e->length);
  g_byte_array_append (buf, (const guint8 *) &u64, 8);
  u64 = GUINT64_TO_LE ((guint64) last_used);
  g_byte_array_append (buf, (const guint8 *) &u64, 8);
  g_byte_array_append (buf, e->root, ALV_HASH_SIZE);
  g_byte_array_append (buf, g_bytes_get_data (bits, NULL), g_bytes_get_size (bits));

  if (!g_file_set_contents_full (state_path, (const char *) buf->data, buf->len,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    {
      g_mutex_unlock (&e->state_lock);
      g_prefix_error (error, _("Cache: "));
      return FALSE;
    }

  g_mutex_lock (&self->lock);
  e->dirty -= MIN (e->dirty, dirty);
  g_mutex_unlock (&self->lock);
  g_mutex_unlock (&e->state_lock);
  return TRUE;
}

/* Parses a state file; the entry's held blocks are what it claims, still
 * to be verified.  *has_tree_out tells whether a .thex should exist. */
static Entry *
parse_state (const char  *b32,
             GBytes      *contents,
             gboolean    *has_tree_out,
             GError     **error)
{
  const guint8 *p;
  gsize size;
  guint32 block_size, flags;
  guint64 length, last_used, n_blocks;
  guint8 root[ALV_HASH_SIZE];
  g_autofree char *root_b32 = NULL;
  g_autofree char *urn = NULL;
  g_autoptr(GBytes) bits = NULL;
  g_autoptr(AlvBlockMap) map = NULL;
  Entry *e;

  p = g_bytes_get_data (contents, &size);
  if (size < STATE_HEADER_SIZE || memcmp (p, STATE_MAGIC, 8) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("Bad state header"));
      return NULL;
    }
  memcpy (&block_size, p + 8, 4);
  memcpy (&flags, p + 12, 4);
  memcpy (&length, p + 16, 8);
  memcpy (&last_used, p + 24, 8);
  memcpy (root, p + 32, ALV_HASH_SIZE);
  block_size = GUINT32_FROM_LE (block_size);
  flags = GUINT32_FROM_LE (flags);
  length = GUINT64_FROM_LE (length);
  last_used = GUINT64_FROM_LE (last_used);

  root_b32 = alv_base32_encode (root, ALV_HASH_SIZE);
  if (strcmp (root_b32, b32) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                   _("State file names another URN"));
      return NULL;
    }
  if (!alv_hash_tree_block_size_is_valid (block_size) ||
      length > ALV_HASH_TREE_MAX_LENGTH)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Bad length or block size"));
      return NULL;
    }
  n_blocks = alv_block_count_for_length (length, block_size);
  if (n_blocks > ALV_HASH_TREE_MAX_BLOCKS)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT, _("Too many blocks"));
      return NULL;
    }
  bits = g_bytes_new_from_bytes (contents, STATE_HEADER_SIZE, size - STATE_HEADER_SIZE);
  map = alv_block_map_new_from_bytes (bits, (guint) n_blocks, error);
  if (map == NULL)
    return NULL;

  urn = alv_urn_format (root);
  e = entry_new (urn, root, length, block_size);
  alv_block_map_free (e->held);
  e->held = g_steal_pointer (&map);
  /* a time from the future (clock change, garbage) counts as now */
  e->last_used = (gint64) MIN (last_used, (guint64) g_get_real_time ());
  *has_tree_out = (flags & STATE_FLAG_TREE) != 0;
  return e;
}

static AlvHashTree *
load_tree (AlvBlockStore *self,
           Entry         *e,
           GError       **error)
{
  g_autofree char *path = entry_path (self, e, ".thex");
  g_autofree char *contents = NULL;
  gsize len;
  g_autoptr(GBytes) bytes = NULL;

  if (!g_file_get_contents (path, &contents, &len, error))
    return NULL;
  bytes = g_bytes_new_take (g_steal_pointer (&contents), len);
  return alv_hash_tree_new_from_serialized (bytes, e->length, e->block_size,
                                            e->root, error);
}

static gboolean
save_tree (AlvBlockStore *self,
           Entry         *e,
           AlvHashTree   *tree,
           GError       **error)
{
  g_autofree char *path = entry_path (self, e, ".thex");
  g_autoptr(GBytes) bytes = alv_hash_tree_serialize (tree);

  if (!g_file_set_contents_full (path, g_bytes_get_data (bytes, NULL),
                                 (gssize) g_bytes_get_size (bytes),
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    {
      g_prefix_error (error, _("Cache: "));
      return FALSE;
    }
  return TRUE;
}

/* Verifies every block set in @blocks against @tree, reading them one at a
 * time; clears the bits of those that fail.  Returns FALSE if cancelled. */
static gboolean
verify_blocks (AlvBlockStore *self,
               Entry         *e,
               AlvHashTree   *tree,
               AlvBlockMap   *blocks,
               GCancellable  *cancellable)
{
  for (guint i = alv_block_map_first_set_after (blocks, 0);
       i < e->n_blocks;
       i = alv_block_map_first_set_after (blocks, i + 1))
    {
      AlvRange r = entry_block_range (e, i);
      g_autoptr(GBytes) data = NULL;
      g_autoptr(GError) local_error = NULL;

      if (g_cancellable_is_cancelled (cancellable))
        return FALSE;
      data = read_span (self, e, r.start, r.end - r.start, &local_error);
      if (data == NULL ||
          !alv_hash_tree_verify_block (tree, i, g_bytes_get_data (data, NULL),
                                       g_bytes_get_size (data), &local_error))
        {
          g_debug ("Cache: %s block %u dropped: %s", e->urn, i,
                   local_error->message);
          alv_block_map_clear (blocks, i);
        }
    }
  return TRUE;
}

static guint64
held_bytes_of (Entry       *e,
               AlvBlockMap *map)
{
  guint64 total = 0;

  for (guint i = alv_block_map_first_set_after (map, 0);
       i < e->n_blocks;
       i = alv_block_map_first_set_after (map, i + 1))
    {
      AlvRange r = entry_block_range (e, i);

      total += r.end - r.start;
    }
  return total;
}

/* ------------------------------------------------------------------ */
/* eviction                                                            */

/* A signal emitted later in the store's context: never with the lock
 * held, nor from a worker thread. */
typedef struct
{
  AlvBlockStore *store;
  guint signal;
  char *urn;
  guint index;                   /* block-dropped only */
} StoreEvent;

static gboolean
emit_event_cb (gpointer user_data)
{
  StoreEvent *ev = user_data;

  if (ev->signal == SIGNAL_BLOCK_DROPPED)
    g_signal_emit (ev->store, signals[ev->signal], 0, ev->urn, ev->index);
  else
    g_signal_emit (ev->store, signals[ev->signal], 0, ev->urn);
  return G_SOURCE_REMOVE;
}

static void
store_event_free (gpointer user_data)
{
  StoreEvent *ev = user_data;

  g_object_unref (ev->store);
  g_free (ev->urn);
  g_free (ev);
}

/* At default priority: ahead of the result of the read or write that
 * caused it, which is queued after it. */
static void
queue_event (AlvBlockStore *self,
             guint          signal,
             const char    *urn,
             guint          index)
{
  StoreEvent *ev = g_new0 (StoreEvent, 1);
  g_autoptr(GSource) source = g_idle_source_new ();

  ev->store = g_object_ref (self);
  ev->signal = signal;
  ev->urn = g_strdup (urn);
  ev->index = index;
  g_source_set_callback (source, emit_event_cb, ev, store_event_free);
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (source, "[alluvium] block store event");
  g_source_attach (source, self->context);
}

/* Block @index of @e no longer matches its hash on disk: it is no longer
 * held, the state says so, and "block-dropped" tells the swarm (deferred
 * to the store's context: this may run in a worker thread). */
static void
drop_corrupt_block (AlvBlockStore *self,
                    Entry         *e,
                    guint          index)
{
  g_autoptr(GError) local_error = NULL;
  AlvRange r = entry_block_range (e, index);
  gsize len = r.end - r.start;
  gboolean was_held;

  g_mutex_lock (&self->lock);
  was_held = !e->removed && alv_block_map_get (e->held, index);
  if (e->verifying != NULL)
    alv_block_map_clear (e->verifying, index);
  recent_remove (e, index);
  if (was_held)
    {
      alv_block_map_clear (e->held, index);
      e->held_bytes -= MIN (e->held_bytes, len);
      self->size -= MIN (self->size, len);
      e->dirty++;
    }
  g_mutex_unlock (&self->lock);
  if (!was_held)
    return;

  g_message (_("Cache: block %u of %s changed on disk; dropped, to be fetched again"),
             index, e->urn);
  if (!write_state (self, e, &local_error))
    g_debug ("%s", local_error->message);
  /* whoever reads on after this read's result no longer counts the block
   * as held */
  queue_event (self, SIGNAL_BLOCK_DROPPED, e->urn, index);
}

/* Whether every block of [@offset, @offset + @len) is held, or readable
 * while the tree arrives (touching @e if so); when they are and the recent
 * blocks have them all, the span from those in *@recent (else *@recent is
 * left %NULL).  @len > 0. */
static gboolean
span_held (AlvBlockStore  *self,
           Entry          *e,
           guint64         offset,
           gsize           len,
           GBytes        **recent)
{
  gboolean held = TRUE;

  g_mutex_lock (&self->lock);
  for (guint64 i = offset / e->block_size; held && i <= (offset + len - 1) / e->block_size; i++)
    held = alv_block_map_get (e->held, (guint) i)
           || (e->verifying != NULL && alv_block_map_get (e->verifying, (guint) i));
  if (held)
    {
      touch_locked (self, e);
      *recent = recent_read (e, offset, len);
    }
  g_mutex_unlock (&self->lock);
  return held;
}

/* Reads the whole blocks that hold [@offset, @offset + @len) and checks
 * each against the tree (a block may have changed on disk since it was
 * verified: a failing disk, another program): returns the span, or NULL
 * with %ALV_ERROR_MISMATCH after dropping every block that failed. */
static GBytes *
read_span_verified (AlvBlockStore *self,
                    Entry         *e,
                    guint64        offset,
                    gsize          len,
                    GError       **error)
{
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(GBytes) blocks = NULL;
  guint64 first, start, end;
  guint bad = 0, first_bad = 0;
  const guint8 *data;

  g_mutex_lock (&self->lock);
  if (e->tree != NULL)
    tree = alv_hash_tree_ref (e->tree);
  g_mutex_unlock (&self->lock);
  if (tree == NULL)
    return read_span (self, e, offset, len, error);

  first = offset / e->block_size;
  start = first * e->block_size;
  end = MIN (((offset + len - 1) / e->block_size + 1) * e->block_size, e->length);
  blocks = read_span (self, e, start, end - start, error);
  if (blocks == NULL)
    return NULL;
  data = g_bytes_get_data (blocks, NULL);
  for (guint64 pos = start; pos < end; pos += e->block_size)
    {
      guint index = (guint) (pos / e->block_size);
      gsize n = MIN ((guint64) e->block_size, end - pos);

      if (alv_hash_tree_verify_block (tree, index, data + (pos - start), n, NULL))
        continue;
      if (bad++ == 0)
        first_bad = index;
      drop_corrupt_block (self, e, index);
    }
  if (bad == 0)
    {
      g_mutex_lock (&self->lock);
      for (guint64 pos = start; pos < end && !e->removed; pos += e->block_size)
        {
          guint index = (guint) (pos / e->block_size);

          if (alv_block_map_get (e->held, index))
            recent_add (e, index, data + (pos - start), MIN ((guint64) e->block_size, end - pos));
        }
      g_mutex_unlock (&self->lock);
    }
  if (bad > 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                   _("Block %u of %s no longer matches its hash on disk (%u such blocks); "
                     "dropped"), first_bad, e->urn, bad);
      return NULL;
    }
  return g_bytes_new_from_bytes (blocks, offset - start, len);
}

/* Removes @e from the table and the disk; lock held.  File removal happens
 * under the lock so that a re-created entry of the same URN is never hit. */
static void
remove_entry_locked (AlvBlockStore *self,
                     Entry         *e,
                     gboolean       evicted)
{
  G_GNUC_UNUSED g_autoptr(Entry) ref = entry_ref (e);  /* keeps @e alive to the end */

  self->size -= MIN (self->size, entry_cost_locked (e));
  e->removed = TRUE;
  recent_clear (e);
  g_hash_table_remove (self->entries, e->urn);
  unlink_entry_files (self, e);

  if (evicted)
    queue_event (self, SIGNAL_ENTRY_EVICTED, e->urn, 0);
}

/* Evicts least recently used, unpinned entries other than @keep until
 * @extra more bytes fit; lock held.  Returns whether they fit. */
static gboolean
make_room_locked (AlvBlockStore *self,
                  Entry         *keep,
                  guint64        extra)
{
  if (self->size_limit == 0)
    return TRUE;

  while (self->size + extra > self->size_limit)
    {
      GHashTableIter iter;
      gpointer value;
      Entry *victim = NULL;

      g_hash_table_iter_init (&iter, self->entries);
      while (g_hash_table_iter_next (&iter, NULL, &value))
        {
          Entry *e = value;

          if (e == keep || e->pins > 0)
            continue;
          if (victim == NULL || e->last_used < victim->last_used)
            victim = e;
        }
      if (victim == NULL)
        return FALSE;
      g_debug ("Cache: evicting %s", victim->urn);
      remove_entry_locked (self, victim, TRUE);
    }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

static gboolean
is_b32_name (const char *name,
             const char *suffix)
{
  gsize suffix_len = strlen (suffix);

  if (strlen (name) != B32_LEN + suffix_len ||
      strcmp (name + B32_LEN, suffix) != 0)
    return FALSE;
  for (gsize i = 0; i < B32_LEN; i++)
    if (!((name[i] >= 'A' && name[i] <= 'Z') || (name[i] >= '2' && name[i] <= '7')))
      return FALSE;
  return TRUE;
}

static void
remove_file_in (AlvBlockStore *self,
                const char    *name)
{
  g_autofree char *path = g_build_filename (self->directory, name, NULL);

  if (g_unlink (path) != 0 && errno != ENOENT)
    g_debug ("Cache: cannot remove %s: %s", path, g_strerror (errno));
}

/* Loads one entry from its state file and re-verifies what it claims.
 * Returns NULL (and removes the entry's files) when it is unusable. */
static Entry *
load_entry (AlvBlockStore *self,
            const char    *b32,
            GCancellable  *cancellable,
            GError       **error)
{
  g_autofree char *state_name = g_strconcat (b32, ".state", NULL);
  g_autofree char *state_path = g_build_filename (self->directory, state_name, NULL);
  g_autofree char *contents = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(Entry) e = NULL;
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(AlvBlockMap) claimed = NULL;
  g_autoptr(GError) local_error = NULL;
  gboolean has_tree = FALSE;
  gsize len;

  if (!g_file_get_contents (state_path, &contents, &len, error))
    return NULL;
  bytes = g_bytes_new_take (g_steal_pointer (&contents), len);
  e = parse_state (b32, bytes, &has_tree, error);
  if (e == NULL)
    return NULL;

  if (has_tree)
    {
      tree = load_tree (self, e, &local_error);
      if (tree == NULL)
        g_debug ("Cache: stored tree of %s unusable: %s", e->urn,
                 local_error->message);
      g_clear_error (&local_error);
    }

  claimed = alv_block_map_copy (e->held);
  if (tree == NULL && e->n_blocks > 0 && alv_block_map_is_complete (claimed))
    {
      /* complete but tree-less (origin data): it must hash to its URN */
      g_autofree char *data_path = entry_path (self, e, ".data");
      g_autoptr(AlvHashTree) computed = NULL;

      computed = alv_hash_tree_new_for_file (data_path, e->block_size,
                                             cancellable, &local_error);
      if (computed != NULL &&
          alv_hash_tree_get_length (computed) == e->length &&
          memcmp (alv_hash_tree_get_root (computed), e->root, ALV_HASH_SIZE) == 0 &&
          save_tree (self, e, computed, &local_error))
        tree = g_steal_pointer (&computed);
      else if (local_error != NULL)
        g_debug ("Cache: %s not reusable: %s", e->urn, local_error->message);
      g_clear_error (&local_error);
    }

  if (tree == NULL)
    {
      /* nothing to check held blocks against: trust none of them */
      alv_block_map_free (e->held);
      e->held = alv_block_map_new (e->n_blocks);
    }
  else if (!verify_blocks (self, e, tree, e->held, cancellable))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                   _("Operation was cancelled"));
      return NULL;
    }

  if (tree != NULL)
    {
      e->tree_size = alv_hash_tree_get_serialized_size (tree);
      e->tree = g_steal_pointer (&tree);
    }
  else
    {
      g_autofree char *thex = g_strconcat (b32, ".thex", NULL);

      remove_file_in (self, thex);
    }
  e->held_bytes = held_bytes_of (e, e->held);
  if (!alv_block_map_equal (claimed, e->held) || has_tree != (e->tree != NULL))
    e->dirty = 1;
  return g_steal_pointer (&e);
}

static gboolean
load_directory (AlvBlockStore *self,
                GCancellable  *cancellable,
                GError       **error)
{
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) states = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) loaded = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_unref);
  const char *name;

  dir = g_dir_open (self->directory, 0, error);
  if (dir == NULL)
    return FALSE;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_ptr_array_add (names, g_strdup (name));
      if (is_b32_name (name, ".state"))
        g_hash_table_add (states, g_strndup (name, B32_LEN));
    }

  for (guint i = 0; i < names->len; i++)
    {
      const char *n = names->pdata[i];
      g_autofree char *base = g_strndup (n, B32_LEN);

      /* orphans (an interrupted removal) and leftover temporary files of
       * an interrupted atomic replacement are ours to clean up */
      if ((is_b32_name (n, ".data") || is_b32_name (n, ".thex")) &&
          !g_hash_table_contains (states, base))
        remove_file_in (self, n);
      else if (strlen (n) > B32_LEN + 6 &&
               (g_str_has_prefix (n + B32_LEN, ".state.") ||
                g_str_has_prefix (n + B32_LEN, ".thex.")) &&
               is_b32_name (base, ""))
        remove_file_in (self, n);
    }

  {
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init (&iter, states);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      {
        g_autoptr(GError) local_error = NULL;
        Entry *e;

        if (g_cancellable_set_error_if_cancelled (cancellable, error))
          return FALSE;
        e = load_entry (self, key, cancellable, &local_error);
        if (e == NULL)
          {
            g_autofree char *s = g_strconcat (key, ".state", NULL);
            g_autofree char *t = g_strconcat (key, ".thex", NULL);
            g_autofree char *d = g_strconcat (key, ".data", NULL);

            if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
              {
                g_propagate_error (error, g_steal_pointer (&local_error));
                return FALSE;
              }
            g_debug ("Cache: dropping entry %s: %s", (const char *) key,
                     local_error->message);
            remove_file_in (self, s);
            remove_file_in (self, t);
            remove_file_in (self, d);
            continue;
          }
        g_ptr_array_add (loaded, e);
      }
  }

  for (guint i = 0; i < loaded->len; i++)
    {
      Entry *e = loaded->pdata[i];
      g_autoptr(GError) local_error = NULL;

      g_mutex_lock (&self->lock);
      g_hash_table_insert (self->entries, e->urn, entry_ref (e));
      self->size += entry_cost_locked (e);
      self->last_tick = MAX (self->last_tick, e->last_used);
      g_mutex_unlock (&self->lock);

      if (e->dirty > 0 && !write_state (self, e, &local_error))
        g_debug ("%s", local_error->message);
    }

  g_mutex_lock (&self->lock);
  make_room_locked (self, NULL, 0);
  g_mutex_unlock (&self->lock);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* GObject                                                             */

static void
alv_block_store_finalize (GObject *object)
{
  AlvBlockStore *self = ALV_BLOCK_STORE (object);

  g_hash_table_unref (self->entries);
  g_mutex_clear (&self->lock);
  g_free (self->directory);
  g_main_context_unref (self->context);

  G_OBJECT_CLASS (alv_block_store_parent_class)->finalize (object);
}

static void
alv_block_store_dispose (GObject *object)
{
  AlvBlockStore *self = ALV_BLOCK_STORE (object);
  g_autoptr(GError) error = NULL;

  if (self->entries != NULL && !alv_block_store_flush (self, &error))
    g_debug ("%s", error->message);

  G_OBJECT_CLASS (alv_block_store_parent_class)->dispose (object);
}

static void
alv_block_store_class_init (AlvBlockStoreClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = alv_block_store_dispose;
  object_class->finalize = alv_block_store_finalize;

  /**
   * AlvBlockStore::entry-evicted:
   * @store: the store
   * @urn: the URN whose entry was evicted to make room
   *
   * Emitted in the main context the store was created for, after an entry
   * was removed by the size limit (not by alv_block_store_remove_entry()).
   */
  signals[SIGNAL_ENTRY_EVICTED] =
    g_signal_new ("entry-evicted", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * AlvBlockStore::block-dropped:
   * @store: the store
   * @urn: the URN
   * @index: the block
   *
   * Emitted in the main context the store was created for, after a read
   * found a held block no longer matching its hash on disk: the block is
   * no longer held and must be fetched again.
   */
  signals[SIGNAL_BLOCK_DROPPED] =
    g_signal_new ("block-dropped", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_UINT);
}

static void
alv_block_store_init (AlvBlockStore *self)
{
  g_mutex_init (&self->lock);
  self->entries = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                         (GDestroyNotify) entry_unref);
}

static AlvBlockStore *
block_store_open (const char    *directory,
                  guint64        size_limit,
                  GMainContext  *context,
                  GCancellable  *cancellable,
                  GError       **error)
{
  g_autoptr(AlvBlockStore) self = NULL;

  if (g_mkdir_with_parents (directory, 0700) != 0)
    {
      set_io_error (error, errno, "create", directory);
      return NULL;
    }
  self = g_object_new (ALV_TYPE_BLOCK_STORE, NULL);
  self->directory = g_strdup (directory);
  self->size_limit = size_limit;
  self->context = context != NULL ? g_main_context_ref (context)
                                  : g_main_context_ref_thread_default ();
  if (!load_directory (self, cancellable, error))
    {
      g_prefix_error (error, _("Cannot open the cache “%s”: "), directory);
      return NULL;
    }
  return g_steal_pointer (&self);
}

/**
 * alv_block_store_new:
 * @directory: the cache directory, created if missing
 * @size_limit: the most bytes the cache may hold, 0 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Opens the cache: loads every entry, verifies every block its state file
 * claims against the stored tree (dropping those that fail) and evicts
 * down to @size_limit.  Blocking; see alv_block_store_new_async().
 * #AlvBlockStore::entry-evicted is emitted in the thread-default main
 * context of the caller.
 *
 * Returns: (transfer full): the store, or %NULL with @error set
 */
AlvBlockStore *
alv_block_store_new (const char    *directory,
                     guint64        size_limit,
                     GCancellable  *cancellable,
                     GError       **error)
{
  g_return_val_if_fail (directory != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return block_store_open (directory, size_limit, NULL, cancellable, error);
}

typedef struct
{
  char *directory;
  guint64 size_limit;
  GMainContext *context;
} NewData;

static void
new_data_free (gpointer data)
{
  NewData *d = data;

  g_free (d->directory);
  g_main_context_unref (d->context);
  g_free (d);
}

static void
new_thread (GTask        *task,
            gpointer      source_object G_GNUC_UNUSED,
            gpointer      task_data,
            GCancellable *cancellable)
{
  NewData *d = task_data;
  GError *error = NULL;
  AlvBlockStore *store;

  store = block_store_open (d->directory, d->size_limit, d->context,
                            cancellable, &error);
  if (store == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, store, g_object_unref);
}

/**
 * alv_block_store_new_async:
 * @directory: the cache directory, created if missing
 * @size_limit: the most bytes the cache may hold, 0 for no limit
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the store is open
 * @user_data: data for @callback
 *
 * Opens the cache as alv_block_store_new() does, in a thread.
 */
void
alv_block_store_new_async (const char          *directory,
                           guint64              size_limit,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  NewData *d;

  g_return_if_fail (directory != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, alv_block_store_new_async);
  d = g_new0 (NewData, 1);
  d->directory = g_strdup (directory);
  d->size_limit = size_limit;
  d->context = g_main_context_ref_thread_default ();
  g_task_set_task_data (task, d, new_data_free);
  g_task_run_in_thread (task, new_thread);
}

/**
 * alv_block_store_new_finish:
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the store, or %NULL with @error set
 */
AlvBlockStore *
alv_block_store_new_finish (GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == alv_block_store_new_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* store-wide                                                          */

/**
 * alv_block_store_get_directory:
 * @store: a store
 *
 * Returns: the cache directory
 */
const char *
alv_block_store_get_directory (AlvBlockStore *store)
{
  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);

  return store->directory;
}

/**
 * alv_block_store_get_size_limit:
 * @store: a store
 *
 * Returns: the size limit in bytes, 0 for none
 */
guint64
alv_block_store_get_size_limit (AlvBlockStore *store)
{
  guint64 limit;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), 0);

  g_mutex_lock (&store->lock);
  limit = store->size_limit;
  g_mutex_unlock (&store->lock);
  return limit;
}

/**
 * alv_block_store_set_size_limit:
 * @store: a store
 * @size_limit: the most bytes the cache may hold, 0 for no limit
 *
 * Changes the limit and evicts least recently used unpinned entries until
 * the cache fits (pinned entries may keep it above the limit).
 */
void
alv_block_store_set_size_limit (AlvBlockStore *store,
                                guint64        size_limit)
{
  g_return_if_fail (ALV_IS_BLOCK_STORE (store));

  g_mutex_lock (&store->lock);
  store->size_limit = size_limit;
  make_room_locked (store, NULL, 0);
  g_mutex_unlock (&store->lock);
}

/**
 * alv_block_store_get_size:
 * @store: a store
 *
 * Returns: the bytes the cache counts against its limit: held blocks,
 *   trees and state files (plus writes in progress)
 */
guint64
alv_block_store_get_size (AlvBlockStore *store)
{
  guint64 size;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), 0);

  g_mutex_lock (&store->lock);
  size = store->size;
  g_mutex_unlock (&store->lock);
  return size;
}

/**
 * alv_block_store_list_entries:
 * @store: a store
 *
 * Returns: (transfer full): the URNs of all entries, most recently used
 *   first
 */
GStrv
alv_block_store_list_entries (AlvBlockStore *store)
{
  g_autoptr(GPtrArray) list = NULL;
  GHashTableIter iter;
  gpointer value;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);

  g_mutex_lock (&store->lock);
  list = g_ptr_array_new ();
  g_hash_table_iter_init (&iter, store->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    g_ptr_array_add (list, value);
  /* insertion sort by last use, newest first (lists are short) */
  for (guint i = 1; i < list->len; i++)
    for (guint j = i; j > 0 &&
         ((Entry *) list->pdata[j])->last_used > ((Entry *) list->pdata[j - 1])->last_used; j--)
      {
        gpointer tmp = list->pdata[j];

        list->pdata[j] = list->pdata[j - 1];
        list->pdata[j - 1] = tmp;
      }
  for (guint i = 0; i < list->len; i++)
    list->pdata[i] = g_strdup (((Entry *) list->pdata[i])->urn);
  g_mutex_unlock (&store->lock);
  g_ptr_array_add (list, NULL);
  return (GStrv) g_ptr_array_free (g_steal_pointer (&list), FALSE);
}

/**
 * alv_block_store_flush:
 * @store: a store
 * @error: return location for a #GError
 *
 * Writes the state of every entry with blocks not yet recorded, after
 * syncing their data.  Called at dispose too.
 *
 * Returns: %TRUE on success, %FALSE with @error set (the first failure;
 *   the others are still tried)
 */
gboolean
alv_block_store_flush (AlvBlockStore  *store,
                       GError        **error)
{
  g_autoptr(GPtrArray) dirty = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_unref);
  GHashTableIter iter;
  gpointer value;
  gboolean ok = TRUE;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  g_mutex_lock (&store->lock);
  g_hash_table_iter_init (&iter, store->entries);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    if (((Entry *) value)->dirty > 0)
      g_ptr_array_add (dirty, entry_ref (value));
  g_mutex_unlock (&store->lock);

  for (guint i = 0; i < dirty->len; i++)
    {
      g_autoptr(GError) local_error = NULL;

      if (!write_state (store, dirty->pdata[i], &local_error))
        {
          if (ok)
            g_propagate_error (error, g_steal_pointer (&local_error));
          ok = FALSE;
        }
    }
  return ok;
}

/* ------------------------------------------------------------------ */
/* entries                                                             */

/**
 * alv_block_store_open_entry:
 * @store: a store
 * @urn: the content URN
 * @length: the content length
 * @block_size: the block size (a valid tree block size)
 * @error: return location for a #GError
 *
 * Makes sure the cache has an entry for @urn, creating it empty (and its
 * state file) if needed, and marks it used.  Errors: %ALV_ERROR_PARSE or
 * %ALV_ERROR_INVALID for a bad URN or block size, %ALV_ERROR_LIMIT for a
 * length over the tree limits, %ALV_ERROR_MISMATCH when the entry exists
 * with another length, or with another block size while it is in use (an
 * entry not in use cut into other blocks is emptied and made anew), an
 * I/O error if the state cannot be written.
 *
 * Returns: %TRUE if the entry exists now
 */
gboolean
alv_block_store_open_entry (AlvBlockStore  *store,
                            const char     *urn,
                            guint64         length,
                            guint           block_size,
                            GError        **error)
{
  g_autofree char *norm = NULL;
  g_autoptr(Entry) e = NULL;
  guint8 root[ALV_HASH_SIZE];
  Entry *existing;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  norm = normalize_urn (urn, root, error);
  if (norm == NULL)
    return FALSE;
  if (!alv_hash_tree_block_size_is_valid (block_size))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Invalid block size %u"), block_size);
      return FALSE;
    }
  if (length > ALV_HASH_TREE_MAX_LENGTH ||
      alv_block_count_for_length (length, block_size) > ALV_HASH_TREE_MAX_BLOCKS)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("Content of %" PRIu64 " bytes is too large"),
                   length);
      return FALSE;
    }

  g_mutex_lock (&store->lock);
  existing = g_hash_table_lookup (store->entries, norm);
  if (existing != NULL && existing->length == length && existing->block_size != block_size &&
      existing->pins == 0)
    {
      /* the same content cut into other blocks (a gateway that hashed it
       * again with another --block-size): start over with the new cut
       * rather than leave the item to the origin */
      g_message ("Cache: %s was held in blocks of %u bytes, now %u: fetched again",
                 norm, existing->block_size, block_size);
      remove_entry_locked (store, existing, TRUE);
      existing = NULL;
    }
  if (existing != NULL)
    {
      gboolean same = existing->length == length && existing->block_size == block_size;

      if (same)
        touch_locked (store, existing);
      g_mutex_unlock (&store->lock);
      if (!same)
        g_set_error (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                     _("The cache holds %s with another length or block size"),
                     norm);
      return same;
    }
  e = entry_new (norm, root, length, block_size);
  /* files of an earlier entry of this URN (removed, or dropped on load)
   * must not be read as content: start empty, before anyone can write */
  unlink_entry_files (store, e);
  touch_locked (store, e);
  g_hash_table_insert (store->entries, e->urn, entry_ref (e));
  store->size += entry_cost_locked (e);
  make_room_locked (store, e, 0);
  g_mutex_unlock (&store->lock);

  if (!write_state (store, e, error))
    {
      g_mutex_lock (&store->lock);
      if (!e->removed)
        remove_entry_locked (store, e, FALSE);
      g_mutex_unlock (&store->lock);
      return FALSE;
    }
  return TRUE;
}

/**
 * alv_block_store_has_entry:
 * @store: a store
 * @urn: a content URN
 *
 * Returns: whether the cache has an entry for @urn
 */
gboolean
alv_block_store_has_entry (AlvBlockStore *store,
                           const char    *urn)
{
  g_autoptr(Entry) e = NULL;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);

  e = lookup_entry (store, urn);
  return e != NULL;
}

/**
 * alv_block_store_get_entry_info:
 * @store: a store
 * @urn: a content URN
 * @length: (out) (optional): the content length
 * @block_size: (out) (optional): the block size
 * @n_blocks: (out) (optional): the number of blocks
 *
 * Returns: %TRUE if the cache has an entry for @urn
 */
gboolean
alv_block_store_get_entry_info (AlvBlockStore *store,
                                const char    *urn,
                                guint64       *length,
                                guint         *block_size,
                                guint64       *n_blocks)
{
  g_autoptr(Entry) e = NULL;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return FALSE;
  if (length != NULL)
    *length = e->length;
  if (block_size != NULL)
    *block_size = e->block_size;
  if (n_blocks != NULL)
    *n_blocks = e->n_blocks;
  return TRUE;
}

/**
 * alv_block_store_remove_entry:
 * @store: a store
 * @urn: a content URN
 * @error: return location for a #GError
 *
 * Removes the entry of @urn and its files, pinned or not.  Reads and
 * writes in progress on it fail or are discarded.
 *
 * Returns: %TRUE if removed; %FALSE with %ALV_ERROR_INVALID if there was
 *   no such entry
 */
gboolean
alv_block_store_remove_entry (AlvBlockStore  *store,
                              const char     *urn,
                              GError        **error)
{
  g_autoptr(Entry) e = NULL;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  e = lookup_entry_or_error (store, urn, error);
  if (e == NULL)
    return FALSE;
  g_mutex_lock (&store->lock);
  if (!e->removed)
    remove_entry_locked (store, e, FALSE);
  g_mutex_unlock (&store->lock);
  return TRUE;
}

/**
 * alv_block_store_pin:
 * @store: a store
 * @urn: a content URN
 *
 * Protects the entry of @urn from eviction until a matching
 * alv_block_store_unpin() (pins nest).  Does nothing if there is no entry.
 */
void
alv_block_store_pin (AlvBlockStore *store,
                     const char    *urn)
{
  g_autoptr(Entry) e = NULL;

  g_return_if_fail (ALV_IS_BLOCK_STORE (store));
  g_return_if_fail (urn != NULL);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return;
  g_mutex_lock (&store->lock);
  e->pins++;
  touch_locked (store, e);
  g_mutex_unlock (&store->lock);
}

/**
 * alv_block_store_unpin:
 * @store: a store
 * @urn: a content URN
 *
 * Undoes one alv_block_store_pin(); the entry becomes evictable when no
 * pin is left, and the size limit is enforced again.
 */
void
alv_block_store_unpin (AlvBlockStore *store,
                       const char    *urn)
{
  g_autoptr(Entry) e = NULL;

  g_return_if_fail (ALV_IS_BLOCK_STORE (store));
  g_return_if_fail (urn != NULL);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return;
  g_mutex_lock (&store->lock);
  if (e->pins > 0)
    e->pins--;
  make_room_locked (store, NULL, 0);
  g_mutex_unlock (&store->lock);
}

/**
 * alv_block_store_is_pinned:
 * @store: a store
 * @urn: a content URN
 *
 * Returns: whether the entry of @urn exists and is pinned
 */
gboolean
alv_block_store_is_pinned (AlvBlockStore *store,
                           const char    *urn)
{
  g_autoptr(Entry) e = NULL;
  gboolean pinned;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return FALSE;
  g_mutex_lock (&store->lock);
  pinned = e->pins > 0;
  g_mutex_unlock (&store->lock);
  return pinned;
}

/* ------------------------------------------------------------------ */
/* trees                                                               */

/**
 * alv_block_store_set_tree:
 * @store: a store
 * @urn: a content URN with an entry
 * @tree: its hash tree (already checked against the URN or not: it is
 *   checked here)
 * @error: return location for a #GError
 *
 * Stores the tree of an entry.  Blocks held so far (origin data) are read
 * back and verified against it; those that fail are dropped.  Until that
 * is done they are not reported as held, but they can still be read
 * (checked against the tree as they are), so a reader that saw them held
 * does not find them gone.  Blocking (reads held blocks);
 * see alv_block_store_set_tree_async().  Errors: %ALV_ERROR_INVALID if
 * there is no entry, %ALV_ERROR_MISMATCH if the tree's root, length or
 * block size differ from the entry's, an I/O error if it cannot be saved.
 *
 * Returns: %TRUE if the entry has the tree now
 */
gboolean
alv_block_store_set_tree (AlvBlockStore  *store,
                          const char     *urn,
                          AlvHashTree    *tree,
                          GError        **error)
{
  g_autoptr(Entry) e = NULL;
  g_autoptr(AlvBlockMap) pending = NULL;
  g_autoptr(GError) local_error = NULL;
  guint64 pending_bytes, kept_bytes;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);
  g_return_val_if_fail (tree != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  e = lookup_entry_or_error (store, urn, error);
  if (e == NULL)
    return FALSE;
  if (alv_hash_tree_get_digest (tree) != alv_digest_sha256 () ||
      memcmp (alv_hash_tree_get_root (tree), e->root, ALV_HASH_SIZE) != 0 ||
      alv_hash_tree_get_length (tree) != e->length ||
      alv_hash_tree_get_block_size (tree) != e->block_size)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_MISMATCH,
                   _("The tree does not describe %s as cached"), e->urn);
      return FALSE;
    }

  g_mutex_lock (&store->lock);
  if (e->tree != NULL)
    {
      g_mutex_unlock (&store->lock);
      return TRUE;
    }
  g_mutex_unlock (&store->lock);

  if (!save_tree (store, e, tree, error))
    return FALSE;

  /* From here on every write verifies against the tree; blocks held
   * before leave the held set until they verified. */
  g_mutex_lock (&store->lock);
  if (e->removed || e->tree != NULL)
    {
      g_mutex_unlock (&store->lock);
      return TRUE;
    }
  e->tree = alv_hash_tree_ref (tree);
  e->tree_size = alv_hash_tree_get_serialized_size (tree);
  store->size += e->tree_size;
  pending = g_steal_pointer (&e->held);
  e->held = alv_block_map_new (e->n_blocks);
  /* ... but they stay readable meanwhile (every read checks them against
   * the tree): whoever saw them held, the local stream reading on say,
   * does not find them gone */
  e->verifying = alv_block_map_copy (pending);
  pending_bytes = e->held_bytes;
  e->held_bytes = 0;
  /* keep their bytes reserved meanwhile */
  g_mutex_unlock (&store->lock);

  verify_blocks (store, e, tree, pending, NULL);
  kept_bytes = held_bytes_of (e, pending);

  g_mutex_lock (&store->lock);
  g_clear_pointer (&e->verifying, alv_block_map_free);
  if (!e->removed)
    {
      for (guint i = alv_block_map_first_set_after (pending, 0);
           i < e->n_blocks;
           i = alv_block_map_first_set_after (pending, i + 1))
        {
          /* a block written meanwhile is already counted */
          if (!alv_block_map_get (e->held, i))
            {
              AlvRange r = entry_block_range (e, i);

              alv_block_map_set (e->held, i);
              e->held_bytes += r.end - r.start;
            }
          else
            kept_bytes -= entry_block_range (e, i).end - entry_block_range (e, i).start;
        }
      e->dirty++;
      touch_locked (store, e);
    }
  store->size -= MIN (store->size, pending_bytes - kept_bytes);
  if (e->removed)
    store->size -= MIN (store->size, kept_bytes);
  g_mutex_unlock (&store->lock);

  if (!write_state (store, e, &local_error))
    g_debug ("%s", local_error->message);
  return TRUE;
}

/**
 * alv_block_store_get_tree:
 * @store: a store
 * @urn: a content URN
 *
 * Returns: (transfer full) (nullable): the entry's tree, if stored
 */
AlvHashTree *
alv_block_store_get_tree (AlvBlockStore *store,
                          const char    *urn)
{
  g_autoptr(Entry) e = NULL;
  AlvHashTree *tree = NULL;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);
  g_return_val_if_fail (urn != NULL, NULL);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return NULL;
  g_mutex_lock (&store->lock);
  if (e->tree != NULL)
    tree = alv_hash_tree_ref (e->tree);
  g_mutex_unlock (&store->lock);
  return tree;
}

/**
 * alv_block_store_has_tree:
 * @store: a store
 * @urn: a content URN
 *
 * Returns: whether the entry of @urn exists and has its tree; then every
 *   block it reports held has been verified against that tree
 */
gboolean
alv_block_store_has_tree (AlvBlockStore *store,
                          const char    *urn)
{
  g_autoptr(AlvHashTree) tree = alv_block_store_get_tree (store, urn);

  return tree != NULL;
}

/* ------------------------------------------------------------------ */
/* writing                                                             */

/* The common path of peer and origin writes.  The contract: @data is
 * written with pwrite to its place in the data file and the block is
 * marked held only after all of it was written (so an ENOSPC/EIO/EFBIG in
 * the middle leaves garbage in an unheld block, harmless); a peer block
 * needs the tree and must match it, an origin block must match it when
 * the tree is known. */
static gboolean
store_block (AlvBlockStore  *store,
             const char     *urn,
             guint64         index,
             GBytes         *data,
             gboolean        from_origin,
             GError        **error)
{
  g_autoptr(Entry) e = NULL;
  g_autoptr(AlvHashTree) tree = NULL;
  g_autofree char *path = NULL;
  AlvRange r;
  gsize len;
  const guint8 *bytes;
  gboolean flush = FALSE;
  int fd;

  e = lookup_entry_or_error (store, urn, error);
  if (e == NULL)
    return FALSE;
  if (index >= e->n_blocks)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Block %" PRIu64 " is out of range: %s has %u blocks"),
                   index, e->urn, e->n_blocks);
      return FALSE;
    }
  r = entry_block_range (e, (guint) index);
  bytes = g_bytes_get_data (data, &len);
  if (len != r.end - r.start)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Block %" PRIu64 " has %zu"
                     " bytes; expected %" PRIu64),
                   index, len, r.end - r.start);
      return FALSE;
    }

  g_mutex_lock (&store->lock);
  if (e->tree != NULL)
    tree = alv_hash_tree_ref (e->tree);
  g_mutex_unlock (&store->lock);

  if (tree == NULL && !from_origin)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Cannot accept a peer block of %s before its tree"),
                   e->urn);
      return FALSE;
    }
  if (tree != NULL &&
      !alv_hash_tree_verify_block (tree, index, bytes, len, error))
    {
      g_prefix_error (error, "%s: ", e->urn);
      return FALSE;
    }

  g_mutex_lock (&store->lock);
  if (alv_block_map_get (e->held, (guint) index))
    {
      touch_locked (store, e);
      g_mutex_unlock (&store->lock);
      return TRUE;
    }
  if (e->removed)
    {
      g_mutex_unlock (&store->lock);
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("The cache entry of %s was removed"), e->urn);
      return FALSE;
    }
  if (!make_room_locked (store, e, len) && e->pins == 0)
    {
      g_mutex_unlock (&store->lock);
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("The cache is full: no room for %s"), e->urn);
      return FALSE;
    }
  store->size += len;   /* reserved while writing */
  touch_locked (store, e);
  g_mutex_unlock (&store->lock);

  path = entry_path (store, e, ".data");
  fd = g_open (path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0 || !pwrite_all (fd, bytes, len, r.start))
    {
      int saved = errno;

      if (fd >= 0)
        close (fd);
      g_mutex_lock (&store->lock);
      store->size -= MIN (store->size, len);
      g_mutex_unlock (&store->lock);
      set_io_error (error, saved, "write", path);
      return FALSE;
    }
  close (fd);

  g_mutex_lock (&store->lock);
  /* the tree may have arrived while this origin block was written */
  while (tree == NULL && e->tree != NULL)
    {
      g_autoptr(GError) local_error = NULL;

      tree = alv_hash_tree_ref (e->tree);
      g_mutex_unlock (&store->lock);
      if (!alv_hash_tree_verify_block (tree, index, bytes, len, &local_error))
        {
          g_mutex_lock (&store->lock);
          store->size -= MIN (store->size, len);
          g_mutex_unlock (&store->lock);
          g_propagate_prefixed_error (error, g_steal_pointer (&local_error),
                                      "%s: ", e->urn);
          return FALSE;
        }
      g_mutex_lock (&store->lock);
    }
  if (e->removed || alv_block_map_get (e->held, (guint) index))
    store->size -= MIN (store->size, len);
  else
    {
      alv_block_map_set (e->held, (guint) index);
      e->held_bytes += len;
      e->dirty++;
      if (tree != NULL)
        recent_add (e, (guint) index, bytes, len);
      flush = e->dirty >= STATE_FLUSH_EVERY || alv_block_map_is_complete (e->held);
    }
  g_mutex_unlock (&store->lock);

  if (flush)
    {
      g_autoptr(GError) local_error = NULL;

      /* the block is written and held; a state that cannot be saved only
       * means it is fetched again after a crash (flush() reports it) */
      if (!write_state (store, e, &local_error))
        g_debug ("%s", local_error->message);
    }
  return TRUE;
}

/**
 * alv_block_store_write_block:
 * @store: a store
 * @urn: a content URN with an entry and a tree
 * @index: the block's index
 * @data: the block's content, from an untrusted peer
 * @error: return location for a #GError
 *
 * Verifies a peer's block against the entry's tree and stores it.  A block
 * that does not match is not stored (%ALV_ERROR_MISMATCH).  Other errors:
 * %ALV_ERROR_INVALID for no entry, no tree yet, a bad index or length;
 * %ALV_ERROR_LIMIT when the cache is full of pinned entries; a
 * %G_IO_ERROR (e.g. %G_IO_ERROR_NO_SPACE) when writing failed, in which
 * case the block is not held.  Blocking; see
 * alv_block_store_write_block_async().
 *
 * Returns: %TRUE if the block is held now
 */
gboolean
alv_block_store_write_block (AlvBlockStore  *store,
                             const char     *urn,
                             guint64         index,
                             GBytes         *data,
                             GError        **error)
{
  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);
  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return store_block (store, urn, index, data, FALSE, error);
}

/**
 * alv_block_store_write_origin:
 * @store: a store
 * @urn: a content URN with an entry
 * @index: the block's index
 * @data: the block's content, from the origin server
 * @error: return location for a #GError
 *
 * Stores a block fetched from the origin, which needs no tree
 * (doc/swarm.md); when the tree is known the block is verified all the same and
 * refused on mismatch.  Errors as alv_block_store_write_block().
 *
 * Returns: %TRUE if the block is held now
 */
gboolean
alv_block_store_write_origin (AlvBlockStore  *store,
                              const char     *urn,
                              guint64         index,
                              GBytes         *data,
                              GError        **error)
{
  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);
  g_return_val_if_fail (data != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  return store_block (store, urn, index, data, TRUE, error);
}

/* ------------------------------------------------------------------ */
/* reading                                                             */

/**
 * alv_block_store_read:
 * @store: a store
 * @urn: a content URN
 * @offset: first byte
 * @length: number of bytes, at most %ALV_BLOCK_STORE_MAX_READ
 * @error: return location for a #GError
 *
 * Reads held content.  Every block the span touches must be held (or
 * have been held when alv_block_store_set_tree() began checking it).  The
 * blocks an entry verified last (written or read, up to 512 KiB) are read
 * from memory, as they were verified; any other block is read from the
 * disk and checked against the tree again (data on disk can change after
 * it was verified), and a block that fails is dropped (see
 * #AlvBlockStore::block-dropped).
 * Errors: %ALV_ERROR_INVALID for no entry, a span outside the content or
 * not held; %ALV_ERROR_MISMATCH when a block failed its hash;
 * %ALV_ERROR_LIMIT for a span over %ALV_BLOCK_STORE_MAX_READ; a
 * %G_IO_ERROR if reading failed.  Blocking; see
 * alv_block_store_read_async().
 *
 * Returns: (transfer full): the bytes, or %NULL with @error set
 */
GBytes *
alv_block_store_read (AlvBlockStore  *store,
                      const char     *urn,
                      guint64         offset,
                      gsize           length,
                      GError        **error)
{
  g_autoptr(Entry) e = NULL;
  g_autoptr(GBytes) recent = NULL;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);
  g_return_val_if_fail (urn != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  e = lookup_entry_or_error (store, urn, error);
  if (e == NULL)
    return NULL;
  if (length > ALV_BLOCK_STORE_MAX_READ)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("A read of %zu bytes is too large"), length);
      return NULL;
    }
  if (offset > e->length || length > e->length - offset)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Bytes %" PRIu64 "+%zu"
                     " are outside %s"), offset, length, e->urn);
      return NULL;
    }
  if (length == 0)
    return g_bytes_new (NULL, 0);

  if (!span_held (store, e, offset, length, &recent))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("Bytes %" PRIu64 "+%zu"
                     " of %s are not held"), offset, length, e->urn);
      return NULL;
    }
  if (recent != NULL)
    return g_steal_pointer (&recent);
  return read_span_verified (store, e, offset, length, error);
}

/* alv_block_store_read() when it needs neither the disk nor a hash: the
 * span, held and all of it among the recent blocks; else %NULL (errors
 * included, for the blocking read to report). */
static GBytes *
read_recent (AlvBlockStore *store,
             const char    *urn,
             guint64        offset,
             gsize          length)
{
  g_autoptr(Entry) e = lookup_entry (store, urn);
  GBytes *recent = NULL;

  if (e == NULL || length == 0 || length > ALV_BLOCK_STORE_MAX_READ
      || offset > e->length || length > e->length - offset)
    return NULL;
  if (!span_held (store, e, offset, length, &recent))
    return NULL;
  return recent;
}

/**
 * alv_block_store_has_block:
 * @store: a store
 * @urn: a content URN
 * @index: a block index
 *
 * Returns: whether block @index of @urn is held
 */
gboolean
alv_block_store_has_block (AlvBlockStore *store,
                           const char    *urn,
                           guint64        index)
{
  g_autoptr(Entry) e = NULL;
  gboolean held;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);

  e = lookup_entry (store, urn);
  if (e == NULL || index >= e->n_blocks)
    return FALSE;
  g_mutex_lock (&store->lock);
  held = alv_block_map_get (e->held, (guint) index);
  g_mutex_unlock (&store->lock);
  return held;
}

/**
 * alv_block_store_get_block_map:
 * @store: a store
 * @urn: a content URN
 *
 * Returns: (transfer full) (nullable): a copy of the held-block map of
 *   @urn, or %NULL if there is no entry
 */
AlvBlockMap *
alv_block_store_get_block_map (AlvBlockStore *store,
                               const char    *urn)
{
  g_autoptr(Entry) e = NULL;
  AlvBlockMap *map;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);
  g_return_val_if_fail (urn != NULL, NULL);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return NULL;
  g_mutex_lock (&store->lock);
  map = alv_block_map_copy (e->held);
  g_mutex_unlock (&store->lock);
  return map;
}

/**
 * alv_block_store_get_ranges:
 * @store: a store
 * @urn: a content URN
 *
 * Returns: (transfer full) (nullable): the held bytes of @urn, or %NULL if
 *   there is no entry
 */
AlvRangeSet *
alv_block_store_get_ranges (AlvBlockStore *store,
                            const char    *urn)
{
  g_autoptr(Entry) e = NULL;
  g_autoptr(AlvBlockMap) map = NULL;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), NULL);
  g_return_val_if_fail (urn != NULL, NULL);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return NULL;
  g_mutex_lock (&store->lock);
  map = alv_block_map_copy (e->held);
  g_mutex_unlock (&store->lock);
  return alv_block_map_to_range_set (map, e->block_size, e->length);
}

/**
 * alv_block_store_is_complete:
 * @store: a store
 * @urn: a content URN
 *
 * Returns: whether every block of @urn is held
 */
gboolean
alv_block_store_is_complete (AlvBlockStore *store,
                             const char    *urn)
{
  g_autoptr(Entry) e = NULL;
  gboolean complete;

  g_return_val_if_fail (ALV_IS_BLOCK_STORE (store), FALSE);
  g_return_val_if_fail (urn != NULL, FALSE);

  e = lookup_entry (store, urn);
  if (e == NULL)
    return FALSE;
  g_mutex_lock (&store->lock);
  complete = alv_block_map_is_complete (e->held);
  g_mutex_unlock (&store->lock);
  return complete;
}

/* ------------------------------------------------------------------ */
/* async variants: one GTask thread runner for every operation          */

typedef enum
{
  OP_WRITE_BLOCK,
  OP_WRITE_ORIGIN,
  OP_READ,
  OP_SET_TREE,
} OpKind;

typedef struct
{
  OpKind kind;
  char *urn;
  guint64 position;              /* block index or byte offset */
  gsize length;
  GBytes *data;
  AlvHashTree *tree;
} Op;

static void
op_free (gpointer data)
{
  Op *op = data;

  g_free (op->urn);
  g_clear_pointer (&op->data, g_bytes_unref);
  g_clear_pointer (&op->tree, alv_hash_tree_unref);
  g_free (op);
}

static void
op_thread (GTask        *task,
           gpointer      source_object,
           gpointer      task_data,
           GCancellable *cancellable)
{
  AlvBlockStore *store = source_object;
  Op *op = task_data;
  GError *error = NULL;

  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      g_task_return_error (task, error);
      return;
    }

  switch (op->kind)
    {
    case OP_WRITE_BLOCK:
    case OP_WRITE_ORIGIN:
      if (store_block (store, op->urn, op->position, op->data,
                       op->kind == OP_WRITE_ORIGIN, &error))
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_error (task, error);
      break;
    case OP_SET_TREE:
      if (alv_block_store_set_tree (store, op->urn, op->tree, &error))
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_error (task, error);
      break;
    case OP_READ:
      {
        GBytes *bytes = alv_block_store_read (store, op->urn, op->position,
                                              op->length, &error);

        if (bytes != NULL)
          g_task_return_pointer (task, bytes, (GDestroyNotify) g_bytes_unref);
        else
          g_task_return_error (task, error);
      }
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
run_op (AlvBlockStore       *store,
        Op                  *op,
        gpointer             source_tag,
        GCancellable        *cancellable,
        GAsyncReadyCallback  callback,
        gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (store, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  g_task_set_task_data (task, op, op_free);
  g_task_run_in_thread (task, op_thread);
}

static Op *
op_new (OpKind      kind,
        const char *urn)
{
  Op *op = g_new0 (Op, 1);

  op->kind = kind;
  op->urn = g_strdup (urn);
  return op;
}

/**
 * alv_block_store_write_block_async:
 * @store: a store
 * @urn: a content URN with an entry and a tree
 * @index: the block's index
 * @data: the block's content, from an untrusted peer
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * alv_block_store_write_block() in a thread.
 */
void
alv_block_store_write_block_async (AlvBlockStore       *store,
                                   const char          *urn,
                                   guint64              index,
                                   GBytes              *data,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  Op *op;

  g_return_if_fail (ALV_IS_BLOCK_STORE (store));
  g_return_if_fail (urn != NULL);
  g_return_if_fail (data != NULL);

  op = op_new (OP_WRITE_BLOCK, urn);
  op->position = index;
  op->data = g_bytes_ref (data);
  run_op (store, op, alv_block_store_write_block_async, cancellable, callback, user_data);
}

/**
 * alv_block_store_write_block_finish:
 * @store: a store
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the block is held now
 */
gboolean
alv_block_store_write_block_finish (AlvBlockStore  *store,
                                    GAsyncResult   *result,
                                    GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, store), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == alv_block_store_write_block_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * alv_block_store_write_origin_async:
 * @store: a store
 * @urn: a content URN with an entry
 * @index: the block's index
 * @data: the block's content, from the origin
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * alv_block_store_write_origin() in a thread.
 */
void
alv_block_store_write_origin_async (AlvBlockStore       *store,
                                    const char          *urn,
                                    guint64              index,
                                    GBytes              *data,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  Op *op;

  g_return_if_fail (ALV_IS_BLOCK_STORE (store));
  g_return_if_fail (urn != NULL);
  g_return_if_fail (data != NULL);

  op = op_new (OP_WRITE_ORIGIN, urn);
  op->position = index;
  op->data = g_bytes_ref (data);
  run_op (store, op, alv_block_store_write_origin_async, cancellable, callback, user_data);
}

/**
 * alv_block_store_write_origin_finish:
 * @store: a store
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the block is held now
 */
gboolean
alv_block_store_write_origin_finish (AlvBlockStore  *store,
                                     GAsyncResult   *result,
                                     GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, store), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == alv_block_store_write_origin_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * alv_block_store_set_tree_async:
 * @store: a store
 * @urn: a content URN with an entry
 * @tree: its hash tree
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * alv_block_store_set_tree() in a thread.
 */
void
alv_block_store_set_tree_async (AlvBlockStore       *store,
                                const char          *urn,
                                AlvHashTree         *tree,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  Op *op;

  g_return_if_fail (ALV_IS_BLOCK_STORE (store));
  g_return_if_fail (urn != NULL);
  g_return_if_fail (tree != NULL);

  op = op_new (OP_SET_TREE, urn);
  op->tree = alv_hash_tree_ref (tree);
  run_op (store, op, alv_block_store_set_tree_async, cancellable, callback, user_data);
}

/**
 * alv_block_store_set_tree_finish:
 * @store: a store
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the entry has the tree now
 */
gboolean
alv_block_store_set_tree_finish (AlvBlockStore  *store,
                                 GAsyncResult   *result,
                                 GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, store), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == alv_block_store_set_tree_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * alv_block_store_read_async:
 * @store: a store
 * @urn: a content URN
 * @offset: first byte
 * @length: number of bytes, at most %ALV_BLOCK_STORE_MAX_READ
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * alv_block_store_read() in a thread, or at once when the span is among
 * the blocks verified last (the callback still runs from the main
 * context, after this returns).
 */
void
alv_block_store_read_async (AlvBlockStore       *store,
                            const char          *urn,
                            guint64              offset,
                            gsize                length,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GBytes *recent;
  Op *op;

  g_return_if_fail (ALV_IS_BLOCK_STORE (store));
  g_return_if_fail (urn != NULL);

  recent = read_recent (store, urn, offset, length);
  if (recent != NULL)
    {
      g_autoptr(GTask) task = g_task_new (store, cancellable, callback, user_data);

      /* GTask calls back from the main context, never from in here */
      g_task_set_source_tag (task, alv_block_store_read_async);
      g_task_return_pointer (task, recent, (GDestroyNotify) g_bytes_unref);
      return;
    }
  op = op_new (OP_READ, urn);
  op->position = offset;
  op->length = length;
  run_op (store, op, alv_block_store_read_async, cancellable, callback, user_data);
}

/**
 * alv_block_store_read_finish:
 * @store: a store
 * @result: the result given to the callback
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the bytes, or %NULL with @error set
 */
GBytes *
alv_block_store_read_finish (AlvBlockStore  *store,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, store), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == alv_block_store_read_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
