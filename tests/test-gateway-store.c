/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the gateway's URL store cap (server/gateway-store.c,
 * --max-urls): the least recently used URL makes room, a lookup is a
 * use, a tree goes with the last URL naming it, and the state directory
 * holds no more than memory (also after a restart with a lower cap).
 * No sockets.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "alv-hash-tree.h"
#include "gateway-store.h"
#include "test-util.h"

typedef struct
{
  GatewayEntry *entries[8];
  AlvHashTree *trees[8];
  char *dir;
} Fixture;

static void
fixture_setup (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (fx->entries); i++)
    {
      guint8 block[1000];
      GatewayEntry *entry = g_new0 (GatewayEntry, 1);

      memset (block, (int) i, sizeof block);
      fx->trees[i] = alv_hash_tree_new_for_data (block, sizeof block,
                                                 ALV_HASH_TREE_DEFAULT_BLOCK_SIZE);
      entry->url = g_strdup_printf ("http://h/%u.mp3", i);
      entry->urn = alv_hash_tree_get_urn (fx->trees[i]);
      entry->length = sizeof block;
      entry->block_size = ALV_HASH_TREE_DEFAULT_BLOCK_SIZE;
      entry->media_type = g_strdup ("audio/mpeg");
      entry->checked = 1000 + i;
      fx->entries[i] = entry;
    }
  fx->dir = g_dir_make_tmp ("test-gateway-store-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture      *fx,
                  gconstpointer data G_GNUC_UNUSED)
{
  for (guint i = 0; i < G_N_ELEMENTS (fx->entries); i++)
    {
      gateway_entry_free (fx->entries[i]);
      alv_hash_tree_unref (fx->trees[i]);
    }
  test_remove_tree (fx->dir);
  g_free (fx->dir);
}

static void
put (Fixture      *fx,
     GatewayStore *store,
     guint         i)
{
  g_assert_true (gateway_store_put (store, fx->entries[i], fx->trees[i]));
}

static gboolean
has (Fixture      *fx,
     GatewayStore *store,
     guint         i)
{
  return gateway_store_lookup (store, fx->entries[i]->url) != NULL;
}

static gboolean
has_tree (Fixture      *fx,
          GatewayStore *store,
          guint         i)
{
  return gateway_store_get_tree (store, fx->entries[i]->urn) != NULL;
}

static guint
count_files (Fixture    *fx,
             const char *sub)
{
  g_autofree char *path = g_build_filename (fx->dir, sub, NULL);

  return test_count_files (path);
}

/* Never more than the cap; the oldest goes first, with its tree. */
static void
test_cap (Fixture      *fx,
          gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GatewayStore) store = gateway_store_new (NULL, 3, NULL);

  for (guint i = 0; i < 6; i++)
    {
      put (fx, store, i);
      g_assert_cmpuint (gateway_store_get_n_entries (store), ==, MIN (i + 1, 3));
      g_assert_cmpuint (gateway_store_get_n_trees (store), ==, MIN (i + 1, 3));
    }
  g_assert_cmpuint (gateway_store_get_n_evicted (store), ==, 3);
  g_assert_cmpuint (gateway_store_get_max_entries (store), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_assert_false (has_tree (fx, store, i));
  for (guint i = 0; i < 3; i++)
    g_assert_false (has (fx, store, i));
  for (guint i = 3; i < 6; i++)
    g_assert_true (has (fx, store, i));
  /* an evicted URL is simply put again */
  put (fx, store, 0);
  g_assert_true (has (fx, store, 0));
  g_assert_true (has_tree (fx, store, 0));
  g_assert_cmpuint (gateway_store_get_n_entries (store), ==, 3);
}

/* A lookup makes a URL the most recently used; so does a put again. */
static void
test_recency (Fixture      *fx,
              gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GatewayStore) store = gateway_store_new (NULL, 3, NULL);

  put (fx, store, 0);
  put (fx, store, 1);
  put (fx, store, 2);
  g_assert_true (has (fx, store, 0));
  put (fx, store, 3);
  /* 1 was the least recently used */
  g_assert_false (gateway_store_lookup (store, fx->entries[1]->url));
  put (fx, store, 2);
  put (fx, store, 4);
  /* then 0 (looked up before 3 and 2 were put) */
  g_assert_false (gateway_store_lookup (store, fx->entries[0]->url));
  g_assert_true (has (fx, store, 2));
  g_assert_true (has (fx, store, 3));
  g_assert_true (has (fx, store, 4));
}

/* A tree stays while any URL names its URN. */
static void
test_shared_urn (Fixture      *fx,
                 gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GatewayStore) store = gateway_store_new (NULL, 2, NULL);
  g_autoptr(GatewayEntry) alias = gateway_entry_copy (fx->entries[0]);

  g_free (alias->url);
  alias->url = g_strdup ("http://h/alias.mp3");
  put (fx, store, 0);
  g_assert_true (gateway_store_put (store, alias, NULL));
  put (fx, store, 1);
  /* 0 went, the alias keeps the tree */
  g_assert_false (has (fx, store, 0));
  g_assert_true (has_tree (fx, store, 0));
  put (fx, store, 2);
  g_assert_false (gateway_store_lookup (store, alias->url));
  g_assert_false (has_tree (fx, store, 0));
}

/* A revalidation (no tree) of a URL evicted meanwhile, tree and all,
 * records nothing; a new version of a URL keeps the old tree known. */
static void
test_put_without_tree (Fixture      *fx,
                       gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GatewayStore) store = gateway_store_new (NULL, 1, NULL);
  g_autoptr(GatewayEntry) changed = gateway_entry_copy (fx->entries[2]);

  put (fx, store, 0);
  put (fx, store, 1);
  g_assert_false (gateway_store_put (store, fx->entries[0], NULL));
  g_assert_false (has (fx, store, 0));
  g_assert_cmpuint (gateway_store_get_n_entries (store), ==, 1);

  g_free (changed->urn);
  changed->urn = g_strdup (fx->entries[3]->urn);
  put (fx, store, 2);
  g_assert_true (gateway_store_put (store, changed, fx->trees[3]));
  g_assert_true (has_tree (fx, store, 2));
  g_assert_true (has_tree (fx, store, 3));
}

/* The state directory follows: an evicted URL's file goes, and its
 * tree's; a restart with a lower cap keeps the most recently checked. */
static void
test_state_dir (Fixture      *fx,
                gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  {
    g_autoptr(GatewayStore) store = gateway_store_new (fx->dir, 3, &error);

    g_assert_no_error (error);
    for (guint i = 0; i < 5; i++)
      put (fx, store, i);
  }
  /* freed: every queued write and removal is done */
  g_assert_cmpuint (count_files (fx, "entries"), ==, 3);
  g_assert_cmpuint (count_files (fx, "trees"), ==, 3);
  {
    g_autoptr(GatewayStore) store = gateway_store_new (fx->dir, 2, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (gateway_store_get_n_entries (store), ==, 2);
    g_assert_cmpuint (gateway_store_get_n_evicted (store), ==, 1);
    g_assert_true (has (fx, store, 3));
    g_assert_true (has (fx, store, 4));
    g_assert_true (has_tree (fx, store, 4));
    g_assert_false (has_tree (fx, store, 2));
  }
  g_assert_cmpuint (count_files (fx, "entries"), ==, 2);
  g_assert_cmpuint (count_files (fx, "trees"), ==, 2);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
#define ADD(path, fn) \
  g_test_add (path, Fixture, NULL, fixture_setup, fn, fixture_teardown)
  ADD ("/server/gateway-store/cap", test_cap);
  ADD ("/server/gateway-store/recency", test_recency);
  ADD ("/server/gateway-store/shared-urn", test_shared_urn);
  ADD ("/server/gateway-store/put-without-tree", test_put_without_tree);
  ADD ("/server/gateway-store/state-dir", test_state_dir);
#undef ADD
  return g_test_run ();
}
