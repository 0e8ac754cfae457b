/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of core/alv-block-store.h: peer blocks are stored only when they
 * match the tree, origin blocks are checked once the tree is known, held
 * blocks survive a restart only if they still verify, whole entries are
 * evicted least recently used first except pinned ones, and a disk that
 * fills up mid-write (simulated with RLIMIT_FSIZE in a subprocess: the
 * kernel fails the write with EFBIG after a partial write) leaves the
 * entry consistent.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "alv-base32.h"
#include "alv-block-map.h"
#include "alv-block-store.h"
#include "alv-error.h"
#include "alv-urn.h"

#define BS 4096u                          /* block size in these tests */

typedef struct
{
  char *dir;
} Fixture;

static void
remove_dir (const char *dir)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *name;

  if (d == NULL)
    return;
  while ((name = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, name, NULL);

      g_assert_no_errno (g_unlink (path));
    }
  g_assert_no_errno (g_rmdir (dir));
}

static void
fixture_setup (Fixture       *f,
               gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("alv-block-store-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data G_GNUC_UNUSED)
{
  remove_dir (f->dir);
  g_free (f->dir);
}

/* Deterministic content of @len bytes; @seed makes items differ. */
static GBytes *
make_content (gsize   len,
              guint32 seed)
{
  guint8 *data = g_malloc (MAX (len, 1));
  guint32 x = seed * 2654435761u + 1;

  for (gsize i = 0; i < len; i++)
    {
      x = x * 1103515245u + 12345u;
      data[i] = (guint8) (x >> 16);
    }
  return g_bytes_new_take (data, len);
}

typedef struct
{
  GBytes *content;
  AlvHashTree *tree;
  char *urn;
} Item;

static void
item_clear (Item *item)
{
  g_clear_pointer (&item->content, g_bytes_unref);
  g_clear_pointer (&item->tree, alv_hash_tree_unref);
  g_clear_pointer (&item->urn, g_free);
}

static void
item_init (Item    *item,
           gsize    len,
           guint32  seed)
{
  item->content = make_content (len, seed);
  item->tree = alv_hash_tree_new_for_data (g_bytes_get_data (item->content, NULL),
                                           len, BS);
  item->urn = alv_hash_tree_get_urn (item->tree);
}

static GBytes *
item_block (Item  *item,
            guint  index)
{
  gsize len = g_bytes_get_size (item->content);
  gsize start = (gsize) index * BS;

  return g_bytes_new_from_bytes (item->content, start, MIN (BS, len - start));
}

static GBytes *
corrupt (GBytes *bytes)
{
  gsize len;
  guint8 *copy = g_bytes_unref_to_data (g_bytes_ref (bytes), &len);

  copy[len / 2] ^= 0x40;
  return g_bytes_new_take (copy, len);
}

static char *
item_path (Fixture    *f,
           Item       *item,
           const char *suffix)
{
  guint8 root[ALV_HASH_SIZE];
  g_autofree char *b32 = NULL;
  g_autofree char *name = NULL;

  g_assert_true (alv_urn_parse (item->urn, root, NULL));
  b32 = alv_base32_encode (root, ALV_HASH_SIZE);
  name = g_strconcat (b32, suffix, NULL);
  return g_build_filename (f->dir, name, NULL);
}

static void
assert_ranges (AlvBlockStore *store,
               const char    *urn,
               const char    *expected)
{
  g_autoptr(AlvRangeSet) set = alv_block_store_get_ranges (store, urn);
  g_autofree char *s = NULL;

  g_assert_nonnull (set);
  s = alv_range_set_format_available (set);
  g_assert_cmpstr (s != NULL ? s : "", ==, expected);
}

static void
assert_read (AlvBlockStore *store,
             Item          *item,
             guint64        offset,
             gsize          len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) got = alv_block_store_read (store, item->urn, offset, len, &error);
  g_autoptr(GBytes) expected = g_bytes_new_from_bytes (item->content, offset, len);

  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (got, expected));
}

static AlvBlockStore *
open_store (Fixture *f,
            guint64  limit)
{
  g_autoptr(GError) error = NULL;
  AlvBlockStore *store = alv_block_store_new (f->dir, limit, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (store);
  return store;
}

static void
write_all (AlvBlockStore *store,
           Item          *item)
{
  guint64 n = alv_hash_tree_get_n_blocks (item->tree);

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) b = item_block (item, i);

      g_assert_true (alv_block_store_write_block (store, item->urn, i, b, &error));
      g_assert_no_error (error);
    }
}

static void
open_with_tree (AlvBlockStore *store,
                Item          *item)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (alv_block_store_open_entry (store, item->urn,
                                             g_bytes_get_size (item->content), BS, &error));
  g_assert_no_error (error);
  g_assert_true (alv_block_store_set_tree (store, item->urn, item->tree, &error));
  g_assert_no_error (error);
}

/* ------------------------------------------------------------------ */

static void
test_verified_vs_corrupt (Fixture       *f,
                          gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = open_store (f, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) b1 = NULL, b2 = NULL, bad2 = NULL, short1 = NULL;
  g_autoptr(GBytes) got = NULL;
  g_autoptr(AlvBlockMap) map = NULL;
  Item item = { 0, };

  item_init (&item, 4 * BS + 1000, 1);
  b1 = item_block (&item, 1);
  b2 = item_block (&item, 2);
  bad2 = corrupt (b2);
  short1 = g_bytes_new_from_bytes (b1, 0, BS - 1);

  g_assert_true (alv_block_store_open_entry (store, item.urn, 4 * BS + 1000, BS, &error));
  g_assert_no_error (error);
  g_assert_false (alv_block_store_has_tree (store, item.urn));

  /* a peer block before the tree is refused */
  g_assert_false (alv_block_store_write_block (store, item.urn, 1, b1, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (alv_block_store_has_block (store, item.urn, 1));

  g_assert_true (alv_block_store_set_tree (store, item.urn, item.tree, &error));
  g_assert_no_error (error);
  g_assert_true (alv_block_store_has_tree (store, item.urn));

  g_assert_true (alv_block_store_write_block (store, item.urn, 1, b1, &error));
  g_assert_no_error (error);
  g_assert_true (alv_block_store_has_block (store, item.urn, 1));

  /* corrupt: refused and not stored */
  g_assert_false (alv_block_store_write_block (store, item.urn, 2, bad2, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_clear_error (&error);
  g_assert_false (alv_block_store_has_block (store, item.urn, 2));
  /* an origin block is checked too once the tree is known */
  g_assert_false (alv_block_store_write_origin (store, item.urn, 2, bad2, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_clear_error (&error);
  /* wrong length, wrong index */
  g_assert_false (alv_block_store_write_block (store, item.urn, 0, short1, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (alv_block_store_write_block (store, item.urn, 5, b1, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  /* b1 is not block 3 */
  {
    g_autoptr(GBytes) b3 = item_block (&item, 3);

    g_assert_false (alv_block_store_write_block (store, item.urn, 3, b1, &error));
    g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
    g_clear_error (&error);
    g_assert_true (alv_block_store_write_origin (store, item.urn, 3, b3, &error));
    g_assert_no_error (error);
  }

  assert_ranges (store, item.urn, "bytes 4096-8191,12288-16383");
  map = alv_block_store_get_block_map (store, item.urn);
  g_assert_cmpuint (alv_block_map_get_n_blocks (map), ==, 5);
  g_assert_cmpuint (alv_block_map_count (map), ==, 2);
  g_assert_false (alv_block_store_is_complete (store, item.urn));

  assert_read (store, &item, BS, BS);
  assert_read (store, &item, BS + 10, 100);
  /* block 2 not held: no read touching it */
  got = alv_block_store_read (store, item.urn, 2 * BS - 10, 20, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_assert_null (got);
  g_clear_error (&error);

  /* the short last block */
  {
    g_autoptr(GBytes) last = item_block (&item, 4);

    g_assert_cmpuint (g_bytes_get_size (last), ==, 1000);
    g_assert_true (alv_block_store_write_block (store, item.urn, 4, last, &error));
    g_assert_no_error (error);
    assert_read (store, &item, 4 * BS, 1000);
  }

  item_clear (&item);
}

/* The same content cut into other blocks (a gateway that hashed it again
 * with another --block-size): an entry not in use is made anew and filled
 * in the new blocks; one in use keeps its blocks and the caller is told. */
static void
test_block_size_changed (Fixture       *f,
                         gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = open_store (f, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvHashTree) halves = NULL;
  g_autoptr(GBytes) b0 = NULL, h0 = NULL;
  Item item = { 0, };

  item_init (&item, 3 * BS, 4);
  b0 = item_block (&item, 0);
  g_assert_true (alv_block_store_open_entry (store, item.urn, 3 * BS, BS, &error));
  g_assert_true (alv_block_store_set_tree (store, item.urn, item.tree, &error));
  g_assert_true (alv_block_store_write_block (store, item.urn, 0, b0, &error));
  g_assert_no_error (error);
  assert_ranges (store, item.urn, "bytes 0-4095");

  /* in use: refused, what it holds is kept */
  alv_block_store_pin (store, item.urn);
  g_assert_false (alv_block_store_open_entry (store, item.urn, 3 * BS, BS / 2, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_clear_error (&error);
  assert_ranges (store, item.urn, "bytes 0-4095");
  alv_block_store_unpin (store, item.urn);

  /* not in use: an empty entry in blocks of BS / 2, which takes the
   * tree cut that way and its blocks */
  g_assert_true (alv_block_store_open_entry (store, item.urn, 3 * BS, BS / 2, &error));
  g_assert_no_error (error);
  assert_ranges (store, item.urn, "");
  halves = alv_hash_tree_new_for_data (g_bytes_get_data (item.content, NULL), 3 * BS, BS / 2);
  g_assert_true (alv_block_store_set_tree (store, item.urn, halves, &error));
  g_assert_no_error (error);
  h0 = g_bytes_new_from_bytes (item.content, 0, BS / 2);
  g_assert_true (alv_block_store_write_block (store, item.urn, 0, h0, &error));
  g_assert_no_error (error);
  assert_ranges (store, item.urn, "bytes 0-2047");
  assert_read (store, &item, 0, BS / 2);

  item_clear (&item);
}

/* Origin data stored before the tree arrives is checked when it does. */
static void
test_origin_then_tree (Fixture       *f,
                       gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = open_store (f, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) b0 = NULL, b1 = NULL, bad2 = NULL, b2 = NULL;
  Item item = { 0, };
  Item other = { 0, };

  item_init (&item, 3 * BS, 2);
  item_init (&other, 3 * BS, 3);
  b0 = item_block (&item, 0);
  b1 = item_block (&item, 1);
  b2 = item_block (&item, 2);
  bad2 = corrupt (b2);

  g_assert_true (alv_block_store_open_entry (store, item.urn, 3 * BS, BS, &error));
  g_assert_true (alv_block_store_write_origin (store, item.urn, 0, b0, &error));
  g_assert_true (alv_block_store_write_origin (store, item.urn, 1, b1, &error));
  /* trusted without a tree: accepted */
  g_assert_true (alv_block_store_write_origin (store, item.urn, 2, bad2, &error));
  g_assert_no_error (error);
  assert_ranges (store, item.urn, "bytes 0-12287");

  /* another item's tree is refused */
  g_assert_false (alv_block_store_set_tree (store, item.urn, other.tree, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_clear_error (&error);

  g_assert_true (alv_block_store_set_tree (store, item.urn, item.tree, &error));
  g_assert_no_error (error);
  assert_ranges (store, item.urn, "bytes 0-8191");
  g_assert_true (alv_block_store_write_block (store, item.urn, 2, b2, &error));
  g_assert_no_error (error);
  g_assert_true (alv_block_store_is_complete (store, item.urn));
  assert_read (store, &item, 0, 3 * BS);

  item_clear (&item);
  item_clear (&other);
}

/* While the tree that arrives is checked against the origin blocks held
 * before it, they are not reported held, but a reader that saw them held
 * (the local stream, reading on) can still read them: a good block
 * reads back, a bad one fails as changed, never as "not held" (the
 * daemon took that for a failed item and started it over, which the
 * listener heard as a jump back).  Whether a read falls inside that check
 * is seen from outside: block 0 is reported held before and after it,
 * not during it. */
typedef struct
{
  AlvBlockStore *store;
  Item *item;
  gint done;
} TreeData;

static gpointer
set_tree_thread (gpointer user_data)
{
  TreeData *t = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (alv_block_store_set_tree (t->store, t->item->urn, t->item->tree, &error));
  g_assert_no_error (error);
  g_atomic_int_set (&t->done, 1);
  return NULL;
}

static void
test_readable_while_tree_checked (Fixture       *f,
                                  gconstpointer  data G_GNUC_UNUSED)
{
  const guint n = 1024;
  gboolean seen = FALSE;

  /* each round a new item; a round whose reads did not fall inside the
   * check (it ended first) proves nothing and is done again */
  for (guint round = 0; round < 20 && !seen; round++)
    {
      g_autoptr(AlvBlockStore) store = open_store (f, 0);
      g_autoptr(GError) error = NULL;
      g_autoptr(GBytes) good = NULL;
      g_autoptr(GBytes) bad = NULL;
      g_autoptr(GBytes) expected = NULL;
      Item item = { 0, };
      TreeData t;
      GThread *thread;

      item_init (&item, (gsize) n * BS, 70 + round);
      g_assert_true (alv_block_store_open_entry (store, item.urn, (guint64) n * BS, BS, &error));
      g_assert_no_error (error);
      for (guint i = 0; i < n; i++)
        {
          g_autoptr(GBytes) b = item_block (&item, i);
          g_autoptr(GBytes) written = i == n - 2 ? corrupt (b) : g_bytes_ref (b);

          g_assert_true (alv_block_store_write_origin (store, item.urn, i, written, &error));
          g_assert_no_error (error);
        }
      g_assert_true (alv_block_store_has_block (store, item.urn, 0));

      t = (TreeData) { store, &item, 0 };
      thread = g_thread_new ("set-tree", set_tree_thread, &t);
      /* bounded: the thread ends */
      while (!g_atomic_int_get (&t.done) && alv_block_store_has_block (store, item.urn, 0))
        g_thread_yield ();
      if (!g_atomic_int_get (&t.done))
        {
          /* the last block, checked last */
          good = alv_block_store_read (store, item.urn, (guint64) (n - 1) * BS, BS, &error);
          expected = item_block (&item, n - 1);
          g_assert_no_error (error);
          g_assert_true (g_bytes_equal (good, expected));
          bad = alv_block_store_read (store, item.urn, (guint64) (n - 2) * BS, BS, &error);
          g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
          g_assert_null (bad);
          g_clear_error (&error);
          seen = !alv_block_store_has_block (store, item.urn, 0);
        }
      g_thread_join (thread);

      /* checked: the good blocks held, the bad one not */
      g_assert_true (alv_block_store_has_block (store, item.urn, 0));
      g_assert_true (alv_block_store_has_block (store, item.urn, n - 1));
      g_assert_false (alv_block_store_has_block (store, item.urn, n - 2));
      assert_read (store, &item, (guint64) (n - 1) * BS, BS);
      /* (the "block-dropped" events of the bad block) */
      while (g_main_context_iteration (NULL, FALSE))
        ;
      g_assert_true (alv_block_store_remove_entry (store, item.urn, &error));
      g_assert_no_error (error);
      item_clear (&item);
    }
  if (!seen)
    g_test_skip ("the tree was checked before a read could fall inside the check");
}

static void
test_restart (Fixture       *f,
              gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *data_path = NULL;
  Item item = { 0, };
  Item treeless = { 0, };
  Item partial = { 0, };
  int fd;

  item_init (&item, 6 * BS + 7, 4);
  item_init (&treeless, 2 * BS + 5, 5);
  item_init (&partial, 3 * BS, 6);
  data_path = item_path (f, &item, ".data");

  {
    g_autoptr(AlvBlockStore) store = open_store (f, 0);

    open_with_tree (store, &item);
    for (guint i = 0; i < 5; i++)
      {
        g_autoptr(GBytes) b = item_block (&item, i);

        if (i == 3)
          continue;
        g_assert_true (alv_block_store_write_block (store, item.urn, i, b, &error));
        g_assert_no_error (error);
      }
    /* complete origin data without a tree: kept if it hashes to its URN */
    g_assert_true (alv_block_store_open_entry (store, treeless.urn, 2 * BS + 5, BS, &error));
    for (guint i = 0; i < 3; i++)
      {
        g_autoptr(GBytes) b = item_block (&treeless, i);

        g_assert_true (alv_block_store_write_origin (store, treeless.urn, i, b, &error));
      }
    /* partial origin data without a tree: cannot be checked, dropped */
    g_assert_true (alv_block_store_open_entry (store, partial.urn, 3 * BS, BS, &error));
    {
      g_autoptr(GBytes) b = item_block (&partial, 0);

      g_assert_true (alv_block_store_write_origin (store, partial.urn, 0, b, &error));
    }
    g_assert_true (alv_block_store_flush (store, &error));
    g_assert_no_error (error);
  }

  /* reopen: everything verified is back */
  {
    g_autoptr(AlvBlockStore) store = open_store (f, 0);
    g_auto(GStrv) entries = alv_block_store_list_entries (store);

    g_assert_cmpuint (g_strv_length (entries), ==, 3);
    g_assert_true (alv_block_store_has_tree (store, item.urn));
    assert_ranges (store, item.urn, "bytes 0-12287,16384-20479");
    assert_read (store, &item, 0, 3 * BS);
    assert_read (store, &item, 4 * BS, BS);

    g_assert_true (alv_block_store_is_complete (store, treeless.urn));
    g_assert_true (alv_block_store_has_tree (store, treeless.urn));
    assert_read (store, &treeless, 0, 2 * BS + 5);

    g_assert_true (alv_block_store_has_entry (store, partial.urn));
    assert_ranges (store, partial.urn, "");
  }

  /* corrupt block 1 on disk: the state still claims it */
  fd = g_open (data_path, O_WRONLY, 0);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pwrite (fd, "garbage", 7, BS + 100), ==, 7);
  g_assert_no_errno (close (fd));
  {
    g_autoptr(AlvBlockStore) store = open_store (f, 0);
    g_autoptr(GBytes) got = NULL;

    assert_ranges (store, item.urn, "bytes 0-4095,8192-12287,16384-20479");
    got = alv_block_store_read (store, item.urn, BS, 10, &error);
    g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
    g_clear_error (&error);
  }
  /* ... and the state was rewritten: still not trusted on the next load */
  g_assert_no_errno (truncate (data_path, 2 * BS + 10));
  {
    g_autoptr(AlvBlockStore) store = open_store (f, 0);

    /* block 2 lost its tail: dropped too */
    assert_ranges (store, item.urn, "bytes 0-4095");
    assert_read (store, &item, 0, BS);
  }

  /* a garbage state file: the entry is dropped, the store still opens */
  {
    g_autofree char *state_path = item_path (f, &item, ".state");
    g_autofree char *thex_path = item_path (f, &item, ".thex");

    g_assert_true (g_file_set_contents (state_path, "ALVSTAT1 not really", -1, &error));
    {
      g_autoptr(AlvBlockStore) store = open_store (f, 0);

      g_assert_false (alv_block_store_has_entry (store, item.urn));
      g_assert_true (alv_block_store_has_entry (store, treeless.urn));
    }
    g_assert_false (g_file_test (state_path, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (thex_path, G_FILE_TEST_EXISTS));
    g_assert_false (g_file_test (data_path, G_FILE_TEST_EXISTS));
  }

  item_clear (&item);
  item_clear (&treeless);
  item_clear (&partial);
}

static void
evicted_cb (AlvBlockStore *store G_GNUC_UNUSED,
            const char    *urn,
            gpointer       user_data)
{
  g_ptr_array_add (user_data, g_strdup (urn));
}

static void
test_eviction (Fixture       *f,
               gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) evicted = g_ptr_array_new_with_free_func (g_free);
  Item items[5];
  guint64 one;

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    item_init (&items[i], 8 * BS, 10 + i);

  /* measure one full entry, then allow two and a half */
  store = open_store (f, 0);
  open_with_tree (store, &items[0]);
  write_all (store, &items[0]);
  one = alv_block_store_get_size (store);
  g_assert_cmpuint (one, >, 8 * BS);
  alv_block_store_set_size_limit (store, one * 5 / 2);
  g_signal_connect (store, "entry-evicted", G_CALLBACK (evicted_cb), evicted);

  open_with_tree (store, &items[1]);
  write_all (store, &items[1]);
  /* use A so that B is the least recently used */
  assert_read (store, &items[0], 0, 10);
  open_with_tree (store, &items[2]);
  write_all (store, &items[2]);
  g_assert_true (alv_block_store_has_entry (store, items[0].urn));
  g_assert_false (alv_block_store_has_entry (store, items[1].urn));
  g_assert_true (alv_block_store_has_entry (store, items[2].urn));
  g_assert_cmpuint (alv_block_store_get_size (store), <=, one * 5 / 2);
  {
    g_autofree char *path = item_path (f, &items[1], ".data");

    g_assert_false (g_file_test (path, G_FILE_TEST_EXISTS));
  }
  {
    g_auto(GStrv) list = alv_block_store_list_entries (store);

    g_assert_cmpuint (g_strv_length (list), ==, 2);
    g_assert_cmpstr (list[0], ==, items[2].urn);
    g_assert_cmpstr (list[1], ==, items[0].urn);
  }

  /* A is older than C, but pinned: C goes */
  alv_block_store_pin (store, items[0].urn);
  g_assert_true (alv_block_store_is_pinned (store, items[0].urn));
  open_with_tree (store, &items[3]);
  write_all (store, &items[3]);
  g_assert_true (alv_block_store_has_entry (store, items[0].urn));
  g_assert_false (alv_block_store_has_entry (store, items[2].urn));
  g_assert_true (alv_block_store_has_entry (store, items[3].urn));

  /* everything else pinned: an unpinned entry cannot grow past the limit */
  alv_block_store_pin (store, items[3].urn);
  open_with_tree (store, &items[4]);
  {
    g_autoptr(GBytes) b = item_block (&items[4], 0);
    g_autoptr(GBytes) b1 = item_block (&items[4], 1);

    g_assert_true (alv_block_store_write_block (store, items[4].urn, 0, b, &error));
    g_assert_no_error (error);
    /* keep writing until it hits the limit */
    for (guint i = 1; i < 8; i++)
      {
        g_autoptr(GBytes) bi = item_block (&items[4], i);

        if (!alv_block_store_write_block (store, items[4].urn, i, bi, &error))
          break;
      }
    g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
    g_clear_error (&error);
    g_assert_false (alv_block_store_is_complete (store, items[4].urn));
    g_assert_cmpuint (alv_block_store_get_size (store), <=, one * 5 / 2);
    /* pinned, it may */
    alv_block_store_pin (store, items[4].urn);
    write_all (store, &items[4]);
    g_assert_true (alv_block_store_is_complete (store, items[4].urn));
    g_assert_cmpuint (alv_block_store_get_size (store), >, one * 5 / 2);
  }

  /* unpinning enforces the limit again, oldest first */
  alv_block_store_unpin (store, items[0].urn);
  g_assert_false (alv_block_store_has_entry (store, items[0].urn));
  g_assert_true (alv_block_store_has_entry (store, items[3].urn));
  g_assert_true (alv_block_store_has_entry (store, items[4].urn));

  /* the signal arrives on the main context */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (evicted->len, ==, 3);
  g_assert_cmpstr (evicted->pdata[0], ==, items[1].urn);
  g_assert_cmpstr (evicted->pdata[1], ==, items[2].urn);
  g_assert_cmpstr (evicted->pdata[2], ==, items[0].urn);

  /* explicit removal, pinned or not */
  g_assert_true (alv_block_store_remove_entry (store, items[4].urn, &error));
  g_assert_no_error (error);
  g_assert_false (alv_block_store_has_entry (store, items[4].urn));
  g_assert_false (alv_block_store_remove_entry (store, items[4].urn, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    item_clear (&items[i]);
}

/* RLIMIT_FSIZE makes the kernel fail writes past a size with EFBIG (the
 * process ignores SIGXFSZ): a real mid-write failure, as on a full disk. */
static void
set_fsize_limit (rlim_t limit)
{
  struct rlimit rl;

  g_assert_no_errno (getrlimit (RLIMIT_FSIZE, &rl));
  rl.rlim_cur = MIN (limit, rl.rlim_max);
  g_assert_no_errno (setrlimit (RLIMIT_FSIZE, &rl));
}

static void
test_disk_full (Fixture       *f,
                gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  Item item = { 0, };
  Item other = { 0, };

  if (!g_test_subprocess ())
    {
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
      g_test_trap_assert_passed ();
      return;
    }

  signal (SIGXFSZ, SIG_IGN);
  item_init (&item, 4 * BS, 20);
  item_init (&other, 4 * BS, 21);

  {
    g_autoptr(AlvBlockStore) store = open_store (f, 0);
    g_autoptr(GBytes) b0 = item_block (&item, 0);
    g_autoptr(GBytes) b1 = item_block (&item, 1);
    g_autoptr(GBytes) b3 = item_block (&item, 3);
    g_autoptr(GBytes) got = NULL;

    open_with_tree (store, &item);
    /* files may grow to 2 blocks + 100 bytes: block 3 is past it, block
     * 2 would be written partly */
    set_fsize_limit (2 * BS + 100);
    g_assert_true (alv_block_store_write_block (store, item.urn, 0, b0, &error));
    g_assert_no_error (error);
    g_assert_false (alv_block_store_write_block (store, item.urn, 3, b3, &error));
    g_assert_nonnull (error);
    g_assert_true (error->domain == G_IO_ERROR);
    g_test_message ("write past the limit: %s", error->message);
    g_clear_error (&error);
    {
      g_autoptr(GBytes) b2 = item_block (&item, 2);

      g_assert_false (alv_block_store_write_block (store, item.urn, 2, b2, &error));
      g_assert_true (error != NULL && error->domain == G_IO_ERROR);
      g_clear_error (&error);
    }
    g_assert_true (alv_block_store_write_block (store, item.urn, 1, b1, &error));
    g_assert_no_error (error);
    assert_ranges (store, item.urn, "bytes 0-8191");
    got = alv_block_store_read (store, item.urn, 2 * BS, 50, &error);
    g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
    g_assert_null (got);
    g_clear_error (&error);

    /* a state file that cannot be written: no entry is created */
    set_fsize_limit (10);
    g_assert_false (alv_block_store_open_entry (store, other.urn, 4 * BS, BS, &error));
    g_assert_nonnull (error);
    g_clear_error (&error);
    g_assert_false (alv_block_store_has_entry (store, other.urn));
    /* and a state flush that fails is reported, the held blocks stay */
    g_assert_false (alv_block_store_flush (store, &error));
    g_assert_nonnull (error);
    g_clear_error (&error);
    assert_ranges (store, item.urn, "bytes 0-8191");

    /* space again: the failed blocks can be written */
    set_fsize_limit (RLIM_INFINITY);
    write_all (store, &item);
    g_assert_true (alv_block_store_is_complete (store, item.urn));
    assert_read (store, &item, 0, 4 * BS);
  }
  {
    g_autoptr(AlvBlockStore) store = open_store (f, 0);

    g_assert_true (alv_block_store_is_complete (store, item.urn));
    assert_read (store, &item, 0, 4 * BS);
  }

  item_clear (&item);
  item_clear (&other);
}

static void
test_hostile (Fixture       *f,
              gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = open_store (f, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) got = NULL;
  Item item = { 0, };
  static const char *const bad_urns[] = {
    "", "urn:tree:sha256:", "urn:tree:sha256:../../etc/passwd",
    "urn:tree:sha256:AAAA", "/etc/passwd", "urn:sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "urn:tree:sha256:ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRS/",
  };

  item_init (&item, 2 * BS, 30);
  for (gsize i = 0; i < G_N_ELEMENTS (bad_urns); i++)
    {
      g_assert_false (alv_block_store_open_entry (store, bad_urns[i], 10, BS, &error));
      g_assert_nonnull (error);
      g_clear_error (&error);
      g_assert_false (alv_block_store_has_entry (store, bad_urns[i]));
    }
  /* nothing was created but directories' own files */
  {
    g_autoptr(GDir) d = g_dir_open (f->dir, 0, NULL);

    g_assert_null (g_dir_read_name (d));
  }

  g_assert_false (alv_block_store_open_entry (store, item.urn, 2 * BS, 3000, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (alv_block_store_open_entry (store, item.urn, G_MAXUINT64, BS, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);

  open_with_tree (store, &item);
  /* the lower-case spelling names the same entry */
  {
    g_autofree char *lower = g_ascii_strdown (item.urn, -1);

    g_assert_true (alv_block_store_has_entry (store, lower));
  }
  g_assert_false (alv_block_store_open_entry (store, item.urn, 2 * BS + 1, BS, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_clear_error (&error);
  write_all (store, &item);

  got = alv_block_store_read (store, item.urn, 0, ALV_BLOCK_STORE_MAX_READ + 1, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);
  got = alv_block_store_read (store, item.urn, 2 * BS - 1, 2, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  got = alv_block_store_read (store, item.urn, G_MAXUINT64, 1, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  got = alv_block_store_read (store, item.urn, 2 * BS, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (got), ==, 0);
  g_clear_pointer (&got, g_bytes_unref);

  /* stray files of ours are cleaned up on load; foreign files are left */
  {
    g_autofree char *orphan = g_build_filename (f->dir, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRST.data", NULL);
    g_autofree char *foreign = g_build_filename (f->dir, "notes.txt", NULL);

    g_assert_true (g_file_set_contents (orphan, "x", 1, NULL));
    g_assert_true (g_file_set_contents (foreign, "x", 1, NULL));
    g_clear_object (&store);
    store = open_store (f, 0);
    g_assert_false (g_file_test (orphan, G_FILE_TEST_EXISTS));
    g_assert_true (g_file_test (foreign, G_FILE_TEST_EXISTS));
    g_assert_true (alv_block_store_is_complete (store, item.urn));
  }

  item_clear (&item);
}

/* Several threads write overlapping items under a size limit: every
 * held block reads back right, and the size the store counts matches the
 * one it finds on disk when reopened. */
typedef struct
{
  AlvBlockStore *store;
  Item *items;
  guint n_items;
  guint seed;
} WriterData;

static gpointer
writer_thread (gpointer user_data)
{
  WriterData *w = user_data;
  GRand *rand = g_rand_new_with_seed (w->seed);

  for (guint round = 0; round < 200; round++)
    {
      Item *item = &w->items[g_rand_int_range (rand, 0, (gint32) w->n_items)];
      guint index = (guint) g_rand_int_range (rand, 0, 8);
      g_autoptr(GBytes) b = item_block (item, index);
      g_autoptr(GError) error = NULL;

      /* the entry may have been evicted meanwhile: open it again */
      if (!alv_block_store_has_tree (w->store, item->urn))
        {
          if (!alv_block_store_open_entry (w->store, item->urn, 8 * BS, BS, &error) ||
              !alv_block_store_set_tree (w->store, item->urn, item->tree, &error))
            {
              g_assert_false (g_error_matches (error, ALV_ERROR, ALV_ERROR_MISMATCH));
              continue;
            }
        }
      if (!alv_block_store_write_block (w->store, item->urn, index, b, &error))
        /* only "evicted meanwhile" or "full" are acceptable here */
        g_assert_true (g_error_matches (error, ALV_ERROR, ALV_ERROR_INVALID) ||
                       g_error_matches (error, ALV_ERROR, ALV_ERROR_LIMIT));
    }
  g_rand_free (rand);
  return NULL;
}

static void
test_threads (Fixture       *f,
              gconstpointer  data G_GNUC_UNUSED)
{
  Item items[6];
  WriterData w[4];
  GThread *threads[4];
  guint64 size;

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    item_init (&items[i], 8 * BS, 50 + i);

  {
    g_autoptr(AlvBlockStore) store = open_store (f, 4 * 8 * BS);

    for (guint t = 0; t < G_N_ELEMENTS (threads); t++)
      {
        w[t] = (WriterData) { store, items, G_N_ELEMENTS (items), 1000 + t };
        threads[t] = g_thread_new ("writer", writer_thread, &w[t]);
      }
    for (guint t = 0; t < G_N_ELEMENTS (threads); t++)
      g_thread_join (threads[t]);

    size = alv_block_store_get_size (store);
    g_assert_cmpuint (size, <=, 4 * 8 * BS);
    for (guint i = 0; i < G_N_ELEMENTS (items); i++)
      {
        g_autoptr(AlvBlockMap) map = alv_block_store_get_block_map (store, items[i].urn);

        for (guint b = 0; map != NULL && b < 8; b++)
          if (alv_block_map_get (map, b))
            assert_read (store, &items[i], (guint64) b * BS, BS);
      }
    while (g_main_context_iteration (NULL, FALSE))
      ;
  }
  {
    g_autoptr(AlvBlockStore) store = open_store (f, 4 * 8 * BS);

    g_assert_cmpuint (alv_block_store_get_size (store), ==, size);
  }

  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    item_clear (&items[i]);
}

/* async variants */
typedef struct
{
  GAsyncResult *result;
} AsyncData;

static void
async_cb (GObject      *source G_GNUC_UNUSED,
          GAsyncResult *result,
          gpointer      user_data)
{
  AsyncData *d = user_data;

  d->result = g_object_ref (result);
}

static GAsyncResult *
wait_result (AsyncData *d)
{
  while (d->result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return g_steal_pointer (&d->result);
}

static void
test_async (Fixture       *f,
            gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) b0 = NULL, b1 = NULL, bad1 = NULL, got = NULL;
  AsyncData d = { NULL };
  GAsyncResult *res;
  Item item = { 0, };

  item_init (&item, 2 * BS, 40);
  b0 = item_block (&item, 0);
  b1 = item_block (&item, 1);
  bad1 = corrupt (b1);

  alv_block_store_new_async (f->dir, 0, NULL, async_cb, &d);
  res = wait_result (&d);
  store = alv_block_store_new_finish (res, &error);
  g_object_unref (res);
  g_assert_no_error (error);

  g_assert_true (alv_block_store_open_entry (store, item.urn, 2 * BS, BS, &error));
  alv_block_store_write_origin_async (store, item.urn, 0, b0, NULL, async_cb, &d);
  res = wait_result (&d);
  g_assert_true (alv_block_store_write_origin_finish (store, res, &error));
  g_assert_no_error (error);
  g_object_unref (res);

  alv_block_store_set_tree_async (store, item.urn, item.tree, NULL, async_cb, &d);
  res = wait_result (&d);
  g_assert_true (alv_block_store_set_tree_finish (store, res, &error));
  g_assert_no_error (error);
  g_object_unref (res);

  alv_block_store_write_block_async (store, item.urn, 1, bad1, NULL, async_cb, &d);
  res = wait_result (&d);
  g_assert_false (alv_block_store_write_block_finish (store, res, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_clear_error (&error);
  g_object_unref (res);

  alv_block_store_write_block_async (store, item.urn, 1, b1, NULL, async_cb, &d);
  res = wait_result (&d);
  g_assert_true (alv_block_store_write_block_finish (store, res, &error));
  g_assert_no_error (error);
  g_object_unref (res);

  alv_block_store_read_async (store, item.urn, 100, 2 * BS - 100, NULL, async_cb, &d);
  res = wait_result (&d);
  got = alv_block_store_read_finish (store, res, &error);
  g_assert_no_error (error);
  g_object_unref (res);
  {
    g_autoptr(GBytes) expected = g_bytes_new_from_bytes (item.content, 100, 2 * BS - 100);

    g_assert_true (g_bytes_equal (got, expected));
  }

  item_clear (&item);
}

/* flips one bit of @item's byte @offset in the data file */
static void
flip_on_disk (Fixture *f,
              Item    *item,
              guint64  offset)
{
  g_autofree char *path = item_path (f, item, ".data");
  guint8 byte;
  int fd;

  fd = g_open (path, O_RDWR, 0);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (pread (fd, &byte, 1, (off_t) offset), ==, 1);
  byte ^= 0x01;
  g_assert_cmpint (pwrite (fd, &byte, 1, (off_t) offset), ==, 1);
  g_assert_no_errno (close (fd));
}

/* A held block that changes on disk after it was verified (a failing
 * disk, another program) is caught when read: the read fails, the block
 * is no longer held, "block-dropped" says so, and the other blocks still
 * read. */
static void
dropped_cb (AlvBlockStore *store G_GNUC_UNUSED,
            const char    *urn G_GNUC_UNUSED,
            guint          index,
            gpointer       user_data)
{
  gint *dropped = user_data;

  *dropped = (gint) index;
}

static void
test_changed_on_disk (Fixture       *f,
                      gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = open_store (f, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) got = NULL;
  Item item = { 0 };
  gint dropped = -1;

  item_init (&item, 10 * BS + 100, 7);
  open_with_tree (store, &item);
  write_all (store, &item);
  g_assert_true (alv_block_store_flush (store, &error));
  /* the store keeps the blocks it verified last in memory (see
   * test_recent); a restarted one reads from the disk */
  g_clear_object (&store);
  store = open_store (f, 0);

  /* one bit of block 3 flips on disk */
  flip_on_disk (f, &item, 3 * BS + 10);

  /* a span touching block 3, even by one byte, is refused */
  got = alv_block_store_read (store, item.urn, 2 * BS, BS + 1, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_assert_null (got);
  g_clear_error (&error);
  g_assert_false (alv_block_store_has_block (store, item.urn, 3));
  assert_ranges (store, item.urn, "bytes 0-12287,16384-41059");
  /* emitted from the main context, so connecting now is not too late */
  g_signal_connect (store, "block-dropped", G_CALLBACK (dropped_cb), &dropped);
  /* emitted from an idle source: a few iterations at most */
  for (guint i = 0; i < 100 && dropped < 0; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_cmpint (dropped, ==, 3);

  /* its neighbours are intact; block 3 is simply not held now */
  assert_read (store, &item, 2 * BS, BS);
  assert_read (store, &item, 4 * BS + 1, BS);
  got = alv_block_store_read (store, item.urn, 3 * BS, 10, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  /* fetched again, it is held again */
  {
    g_autoptr(GBytes) b = item_block (&item, 3);

    g_assert_true (alv_block_store_write_block (store, item.urn, 3, b, &error));
    g_assert_no_error (error);
    assert_read (store, &item, 0, g_bytes_get_size (item.content));
  }
  g_clear_object (&store);
  item_clear (&item);
}

typedef struct
{
  gboolean returned;    /* read_async() had returned when the callback ran */
  gboolean called;
  GBytes *bytes;
} RecentRead;

static void
recent_read_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  RecentRead *r = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (r->returned);
  r->bytes = alv_block_store_read_finish (ALV_BLOCK_STORE (source), result, &error);
  g_assert_no_error (error);
  r->called = TRUE;
}

/* The blocks verified last are read from memory, as they were verified: a
 * change on disk does not reach them (the disk is not read), while an
 * older block, no longer among them, is read from the disk and checked
 * again.  At 4 KiB blocks the store keeps 32 of them per entry. */
static void
test_recent (Fixture       *f,
             gconstpointer  data G_GNUC_UNUSED)
{
  g_autoptr(AlvBlockStore) store = open_store (f, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) got = NULL;
  RecentRead r = { 0, };
  Item item = { 0 };

  item_init (&item, 40 * BS, 11);
  open_with_tree (store, &item);
  write_all (store, &item);
  flip_on_disk (f, &item, 0 * BS + 7);
  flip_on_disk (f, &item, 39 * BS + 7);
  flip_on_disk (f, &item, 20 * BS + 7);

  /* the last written: within a block, across blocks, the short tail */
  assert_read (store, &item, 39 * BS, BS);
  assert_read (store, &item, 39 * BS + 5, 10);
  assert_read (store, &item, 19 * BS + 100, 2 * BS);
  assert_read (store, &item, 8 * BS + 1, 31 * BS);
  g_assert_true (alv_block_store_has_block (store, item.urn, 39));

  /* without a thread, and still never calling back from inside */
  alv_block_store_read_async (store, item.urn, 39 * BS, 16, NULL, recent_read_cb, &r);
  r.returned = TRUE;
  for (guint i = 0; i < 100 && !r.called; i++)
    g_main_context_iteration (NULL, FALSE);
  g_assert_true (r.called);
  {
    g_autoptr(GBytes) expected = g_bytes_new_from_bytes (item.content, 39 * BS, 16);

    g_assert_true (g_bytes_equal (r.bytes, expected));
  }
  g_clear_pointer (&r.bytes, g_bytes_unref);

  /* block 0 was pushed out by the 32 after it: read from disk, caught */
  got = alv_block_store_read (store, item.urn, 0, 16, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_assert_null (got);
  g_assert_false (alv_block_store_has_block (store, item.urn, 0));
  g_clear_error (&error);

  /* a restarted store checks every block on disk: 39 and 20 are gone */
  g_clear_object (&store);
  store = open_store (f, 0);
  g_assert_false (alv_block_store_has_block (store, item.urn, 39));
  g_assert_false (alv_block_store_has_block (store, item.urn, 20));
  assert_read (store, &item, 38 * BS, BS);

  /* a block read from the disk and verified is among the recent ones:
   * a change on disk after that read no longer matters */
  assert_read (store, &item, 37 * BS, BS);
  flip_on_disk (f, &item, 37 * BS + 9);
  assert_read (store, &item, 37 * BS, BS);

  g_clear_object (&store);
  item_clear (&item);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add ("/core/block-store/verified-vs-corrupt", Fixture, NULL,
              fixture_setup, test_verified_vs_corrupt, fixture_teardown);
  g_test_add ("/core/block-store/recent", Fixture, NULL,
              fixture_setup, test_recent, fixture_teardown);
  g_test_add ("/core/block-store/block-size-changed", Fixture, NULL,
              fixture_setup, test_block_size_changed, fixture_teardown);
  g_test_add ("/core/block-store/origin-then-tree", Fixture, NULL,
              fixture_setup, test_origin_then_tree, fixture_teardown);
  g_test_add ("/core/block-store/readable-while-tree-checked", Fixture, NULL,
              fixture_setup, test_readable_while_tree_checked, fixture_teardown);
  g_test_add ("/core/block-store/restart", Fixture, NULL,
              fixture_setup, test_restart, fixture_teardown);
  g_test_add ("/core/block-store/eviction", Fixture, NULL,
              fixture_setup, test_eviction, fixture_teardown);
  g_test_add ("/core/block-store/disk-full", Fixture, NULL,
              fixture_setup, test_disk_full, fixture_teardown);
  g_test_add ("/core/block-store/hostile", Fixture, NULL,
              fixture_setup, test_hostile, fixture_teardown);
  g_test_add ("/core/block-store/threads", Fixture, NULL,
              fixture_setup, test_threads, fixture_teardown);
  g_test_add ("/core/block-store/changed-on-disk", Fixture, NULL,
              fixture_setup, test_changed_on_disk, fixture_teardown);
  g_test_add ("/core/block-store/async", Fixture, NULL,
              fixture_setup, test_async, fixture_teardown);

  return g_test_run ();
}
