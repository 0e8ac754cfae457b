/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of the THEX hash tree, its serialization, block verification,
 * base32 and URNs (common/alv-hash-tree.h).  The tree code is checked
 * against the published Tiger THEX vectors (through libgcrypt, when the
 * build has it) and its SHA-256 trees against tests/thex-reference.py, an
 * independent level-by-level implementation in Python.
 */
#define G_LOG_DOMAIN "test-hash-tree"

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>

#ifdef HAVE_GCRYPT
#include <gcrypt.h>
#endif

#include "alv-base32.h"
#include "alv-error.h"
#include "alv-hash-tree.h"
#include "alv-urn.h"

#define KIB 1024
#define MIB (1024 * 1024)

/* 16 MiB of reproducible pseudo-random bytes, made once by main() and
 * only read by the tests */
#define TEST_DATA_SIZE (16 * MIB)
static guint8 *test_data_buf;

static guint8 *
make_test_data (void)
{
  g_autoptr(GRand) rand = g_rand_new_with_seed (20240611);
  guint8 *data = g_malloc (TEST_DATA_SIZE);
  gsize i;

  for (i = 0; i < TEST_DATA_SIZE; i += 4)
    {
      guint32 v = g_rand_int (rand);
      memcpy (data + i, &v, 4);
    }
  return data;
}

static const guint8 *
test_data (gsize *len)
{
  if (len != NULL)
    *len = TEST_DATA_SIZE;
  return test_data_buf;
}

typedef struct
{
  char *dir;
} Fixture;

static void
fixture_setup (Fixture *fx, G_GNUC_UNUSED gconstpointer user_data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("alv-hash-tree-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_teardown (Fixture *fx, G_GNUC_UNUSED gconstpointer user_data)
{
  g_autoptr(GDir) dir = g_dir_open (fx->dir, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (fx->dir, name, NULL);
      g_assert_cmpint (g_unlink (path), ==, 0);
    }
  g_assert_cmpint (g_rmdir (fx->dir), ==, 0);
  g_free (fx->dir);
}

static char *
write_file (Fixture *fx, const char *name, const void *data, gsize len)
{
  g_autoptr(GError) error = NULL;
  char *path = g_build_filename (fx->dir, name, NULL);

  /* scratch files: no fsync; unlinked first as in-place writes
   * (G_FILE_SET_CONTENTS_NONE) may not truncate */
  g_unlink (path);
  g_file_set_contents_full (path, data, len, G_FILE_SET_CONTENTS_NONE, 0600,
                            &error);
  g_assert_no_error (error);
  return path;
}

static char *
root_base32 (AlvHashTree *tree)
{
  return alv_base32_encode (alv_hash_tree_get_root (tree),
                            alv_hash_tree_get_digest_size (tree));
}

/* SHA-256 through GLib, independent of the code under test */
static void
sha256_inner (const guint8 *left, const guint8 *right, guint8 *out)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  static const guint8 one = 0x01;
  gsize len = ALV_HASH_SIZE;

  g_checksum_update (checksum, &one, 1);
  g_checksum_update (checksum, left, ALV_HASH_SIZE);
  g_checksum_update (checksum, right, ALV_HASH_SIZE);
  g_checksum_get_digest (checksum, out, &len);
  g_assert_cmpuint (len, ==, ALV_HASH_SIZE);
}

/* ---- Tiger THEX vectors ------------------------------------------------ */

#ifdef HAVE_GCRYPT
static gpointer
tiger_new (G_GNUC_UNUSED const AlvDigest *digest)
{
  gcry_md_hd_t h = NULL;

  g_assert_cmpint (gcry_md_open (&h, GCRY_MD_TIGER1, 0), ==, 0);
  return h;
}

static void
tiger_update (gpointer ctx, const void *data, gsize len)
{
  gcry_md_write (ctx, data, len);
}

static void
tiger_finish (gpointer ctx, guint8 *out)
{
  memcpy (out, gcry_md_read (ctx, GCRY_MD_TIGER1), 24);
  gcry_md_reset (ctx);
}

static void
tiger_free (gpointer ctx)
{
  gcry_md_close (ctx);
}

static const AlvDigest tiger_digest = {
  "tiger", 24, tiger_new, tiger_update, tiger_finish, tiger_free, { NULL, }
};

static void
test_tiger_vectors (void)
{
  /* from the THEX draft and Gnutella's TTH test vectors */
  static const struct
  {
    gsize len;
    char byte;
    const char *root;
  } vectors[] = {
    { 0, 0, "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ" },
    { 1, '\0', "VK54ZIEEVTWNAUI5D5RDFIL37LX2IQNSTAXFKSA" },
    { 1024, 'A', "L66Q4YVNAFWVS23X2HJIRA5ZJ7WXR3F26RSASFA" },
    { 1025, 'A', "PZMRYHGY6LTBEH63ZWAHDORHSYTLO4LEFUIKHWY" },
  };
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      g_autofree guint8 *data = g_malloc (vectors[i].len + 1);
      g_autoptr(AlvHashTree) tree = NULL;
      g_autoptr(AlvHashTree) tree2 = NULL;
      g_autoptr(AlvTreeHasher) hasher = NULL;
      g_autofree char *root = NULL;
      gsize off;

      memset (data, vectors[i].byte, vectors[i].len);
      tree = alv_hash_tree_new_for_data_with_digest (&tiger_digest, data,
                                                     vectors[i].len, 1024);
      g_assert_cmpuint (alv_hash_tree_get_digest_size (tree), ==, 24);
      root = root_base32 (tree);
      g_assert_cmpstr (root, ==, vectors[i].root);

      /* byte by byte through the incremental hasher */
      hasher = alv_tree_hasher_new_with_digest (&tiger_digest, 65536);
      for (off = 0; off < vectors[i].len; off++)
        alv_tree_hasher_update (hasher, data + off, 1);
      tree2 = alv_tree_hasher_finish (hasher);
      g_assert_cmpmem (alv_hash_tree_get_root (tree2), 24,
                       alv_hash_tree_get_root (tree), 24);
    }
}
#endif

/* ---- against the Python reference --------------------------------------- */

/* Runs the reference on files[i] with block_sizes[i]; returns its output
 * lines: root and serialization (hex) of each file in turn. */
static GStrv
run_reference (GPtrArray *files, const guint *block_sizes)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *out = NULL;
  GStrv lines;
  const char *python = g_getenv ("PYTHON3");
  guint i;

  if (python == NULL || *python == '\0')
    python = "python3";
  g_ptr_array_add (argv, g_strdup (python));
  g_ptr_array_add (argv, g_test_build_filename (G_TEST_DIST,
                                                "thex-reference.py", NULL));
  g_ptr_array_add (argv, g_strdup ("--serialize"));
  for (i = 0; i < files->len; i++)
    {
      g_ptr_array_add (argv, g_strdup (files->pdata[i]));
      g_ptr_array_add (argv, g_strdup_printf ("%u", block_sizes[i]));
    }
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_newv ((const char * const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);

  lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 2 * files->len + 1);
  return lines;
}

static char *
bytes_to_hex (GBytes *bytes)
{
  gsize len, i;
  const guint8 *p = g_bytes_get_data (bytes, &len);
  GString *s = g_string_sized_new (2 * len + 1);

  for (i = 0; i < len; i++)
    g_string_append_printf (s, "%02x", p[i]);
  return g_string_free (s, FALSE);
}

static void
test_reference (Fixture *fx, G_GNUC_UNUSED gconstpointer user_data)
{
  static const struct
  {
    gsize len;
    guint block_size;
  } cases[] = {
    { 0, 1024 }, { 0, 65536 },
    { 1, 1024 }, { 1, 65536 },
    { 1023, 1024 }, { 1024, 1024 }, { 1025, 1024 }, { 1025, 65536 },
    { 2 * 1024, 1024 },
    { 3 * 1024, 1024 }, { 3 * 1024 - 1, 65536 },   /* 3 leaves */
    { 5 * 1024, 1024 }, { 4 * 1024 + 1, 65536 },   /* 5 leaves */
    { 7 * 1024, 2048 }, { 7 * 1024 - 100, 65536 }, /* 7 leaves */
    { 4096, 4096 }, { 4097, 4096 }, { 8191, 4096 }, { 8192, 4096 },
    { 3 * 4096 + 1, 4096 }, { 5 * 4096, 4096 }, { 7 * 4096 - 1, 4096 },
    { 13 * 65536 + 100, 65536 }, { 65536, 65536 }, { 65537, 65536 },
    { 3 * MIB + 777, 1024 }, { 3 * MIB + 777, 16384 },
    { 3 * MIB + 777, 65536 }, { 4 * MIB, 1 * MIB },
  };
  const guint8 *data = test_data (NULL);
  g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);
  guint block_sizes[G_N_ELEMENTS (cases)];
  g_auto(GStrv) lines = NULL;
  gsize i;

  /* one Python run for all cases: interpreter start-up dominates */
  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *name = g_strdup_printf ("ref-%" G_GSIZE_FORMAT, i);

      g_ptr_array_add (files, write_file (fx, name, data, cases[i].len));
      block_sizes[i] = cases[i].block_size;
    }
  lines = run_reference (files, block_sizes);

  for (i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(AlvHashTree) tree = NULL;
      g_autoptr(GBytes) serialized = NULL;
      g_autofree char *root = NULL;
      g_autofree char *hex = NULL;

      g_test_message ("%" G_GSIZE_FORMAT " bytes, blocks of %u",
                      cases[i].len, cases[i].block_size);
      tree = alv_hash_tree_new_for_data (data, cases[i].len,
                                         cases[i].block_size);
      root = root_base32 (tree);
      g_assert_cmpstr (root, ==, lines[2 * i]);
      serialized = alv_hash_tree_serialize (tree);
      hex = bytes_to_hex (serialized);
      g_assert_cmpstr (hex, ==, lines[2 * i + 1]);
      g_assert_cmpuint (g_bytes_get_size (serialized), ==,
                        alv_hash_tree_get_serialized_size (tree));
      g_assert_cmpuint (alv_hash_tree_get_n_blocks (tree), ==,
                        cases[i].len == 0 ? 1 :
                        (cases[i].len + cases[i].block_size - 1) /
                        cases[i].block_size);
    }
}

/* the empty content's root is H(0x00), checked with GLib's SHA-256 */
static void
test_empty (void)
{
  g_autoptr(AlvHashTree) tree = alv_hash_tree_new_for_data (NULL, 0, 65536);
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  static const guint8 zero = 0;
  guint8 expected[ALV_HASH_SIZE];
  gsize len = sizeof expected;
  guint64 offset = 99, length = 99;

  g_checksum_update (checksum, &zero, 1);
  g_checksum_get_digest (checksum, expected, &len);
  g_assert_cmpmem (alv_hash_tree_get_root (tree), ALV_HASH_SIZE,
                   expected, ALV_HASH_SIZE);
  g_assert_cmpuint (alv_hash_tree_get_length (tree), ==, 0);
  g_assert_cmpuint (alv_hash_tree_get_n_blocks (tree), ==, 1);
  g_assert_cmpmem (alv_hash_tree_get_block_hash (tree, 0), ALV_HASH_SIZE,
                   expected, ALV_HASH_SIZE);
  g_assert_null (alv_hash_tree_get_block_hash (tree, 1));
  g_assert_true (alv_hash_tree_get_block_range (tree, 0, &offset, &length));
  g_assert_cmpuint (offset, ==, 0);
  g_assert_cmpuint (length, ==, 0);
  g_assert_false (alv_hash_tree_get_block_range (tree, 1, NULL, NULL));
  g_assert_cmpuint (alv_hash_tree_get_serialized_depth (tree), ==, 1);
}

/* root(n leaves) = H(0x01 ‖ root(first 2^k) ‖ root(rest)), 2^k the largest
 * power of two below n: what lets the tree be split between threads */
static void
test_power_of_two_split (void)
{
  const guint8 *data = test_data (NULL);
  guint n;

  for (n = 2; n <= 70; n++)
    {
      gsize len = n * KIB - (n % 3 == 0 ? 100 : 0);
      gsize split = 1;
      g_autoptr(AlvHashTree) whole = NULL;
      g_autoptr(AlvHashTree) left = NULL;
      g_autoptr(AlvHashTree) right = NULL;
      guint8 expected[ALV_HASH_SIZE];

      while (split * 2 < n)
        split *= 2;
      split *= KIB;
      whole = alv_hash_tree_new_for_data (data, len, 1024);
      left = alv_hash_tree_new_for_data (data, split, 1024);
      right = alv_hash_tree_new_for_data (data + split, len - split, 1024);
      sha256_inner (alv_hash_tree_get_root (left),
                    alv_hash_tree_get_root (right), expected);
      g_assert_cmpmem (alv_hash_tree_get_root (whole), ALV_HASH_SIZE,
                       expected, ALV_HASH_SIZE);
    }
}

/* ---- incremental -------------------------------------------------------- */

static void
test_incremental (void)
{
  static const gsize chunks[] = { 1, 7, 1023, 1024, 1025, 4096, 65537, 3,
                                  2048, 511, 300000 };
  static const guint block_sizes[] = { 1024, 4096, 65536, 1 * MIB };
  const gsize len = 2 * MIB + 333;
  const guint8 *data = test_data (NULL);
  gsize b;

  for (b = 0; b < G_N_ELEMENTS (block_sizes); b++)
    {
      g_autoptr(AlvHashTree) oneshot = NULL;
      g_autoptr(AlvTreeHasher) hasher = NULL;
      guint round;

      oneshot = alv_hash_tree_new_for_data (data, len, block_sizes[b]);
      hasher = alv_tree_hasher_new (block_sizes[b]);
      /* twice: a finished hasher starts over */
      for (round = 0; round < 2; round++)
        {
          g_autoptr(AlvHashTree) tree = NULL;
          gsize off = 0, i = round;

          while (off < len)
            {
              gsize n = MIN (chunks[i++ % G_N_ELEMENTS (chunks)], len - off);

              alv_tree_hasher_update (hasher, data + off, n);
              off += n;
              alv_tree_hasher_update (hasher, data + off, 0);
            }
          g_assert_cmpuint (alv_tree_hasher_get_length (hasher), ==, len);
          tree = alv_tree_hasher_finish (hasher);
          g_assert_true (alv_hash_tree_equal (tree, oneshot));
          g_assert_cmpuint (alv_tree_hasher_get_length (hasher), ==, 0);
        }
    }
}

/* Regression (found by fuzz-thex): alv_tree_hasher_update (h, NULL, 0) with
 * a partial leaf pending passed NULL to memcpy() and offset it, undefined
 * behaviour that --enable-ubsan reports.  (NULL, 0) must be a no-op at any
 * point of the stream. */
static void
test_incremental_null_update (void)
{
  static const gsize lens[] = { 0, 1, 1023, 1024, 1025, 5000 };
  const guint8 *data = test_data (NULL);
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (lens); i++)
    {
      g_autoptr(AlvHashTree) oneshot = NULL;
      g_autoptr(AlvHashTree) tree = NULL;
      g_autoptr(AlvTreeHasher) hasher = alv_tree_hasher_new (1024);
      gsize half = lens[i] / 2;

      oneshot = alv_hash_tree_new_for_data (data, lens[i], 1024);
      alv_tree_hasher_update (hasher, NULL, 0);
      alv_tree_hasher_update (hasher, data, half);
      alv_tree_hasher_update (hasher, NULL, 0);
      alv_tree_hasher_update (hasher, data + half, lens[i] - half);
      alv_tree_hasher_update (hasher, NULL, 0);
      g_assert_cmpuint (alv_tree_hasher_get_length (hasher), ==, lens[i]);
      tree = alv_tree_hasher_finish (hasher);
      g_assert_true (alv_hash_tree_equal (tree, oneshot));
    }
}

/* ---- files ------------------------------------------------------------- */

static void
file_ready_cb (G_GNUC_UNUSED GObject *source, GAsyncResult *result,
               gpointer user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
  g_main_context_wakeup (NULL);
}

static AlvHashTree *
hash_file_async (const char *path, guint block_size,
                 GCancellable *cancellable, GError **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  alv_hash_tree_new_for_file_async (path, block_size, cancellable,
                                    file_ready_cb, &result);
  while (result == NULL)
    g_main_context_iteration (NULL, TRUE);
  return alv_hash_tree_new_for_file_finish (result, error);
}

static void
test_file (Fixture *fx, G_GNUC_UNUSED gconstpointer user_data)
{
  static const gsize lengths[] = { 0, 1, 1025, 13 * MIB + 123, 9 * MIB };
  static const guint block_sizes[] = { 1024, 65536, 1 * MIB, 16 * MIB };
  const guint8 *data = test_data (NULL);
  gsize l, b;

  for (l = 0; l < G_N_ELEMENTS (lengths); l++)
    {
      g_autofree char *path = write_file (fx, "file", data, lengths[l]);

      for (b = 0; b < G_N_ELEMENTS (block_sizes); b++)
        {
          g_autoptr(AlvHashTree) expected = NULL;
          g_autoptr(AlvHashTree) tree = NULL;
          g_autoptr(GError) error = NULL;
          guint threads;

          expected = alv_hash_tree_new_for_data (data, lengths[l],
                                                 block_sizes[b]);
          for (threads = 0; threads <= 4; threads++)
            {
              g_autoptr(AlvHashTree) t = NULL;

              t = alv_hash_tree_new_for_file_full (path, block_sizes[b],
                                                   threads, NULL, &error);
              g_assert_no_error (error);
              g_assert_true (alv_hash_tree_equal (t, expected));
            }
          tree = hash_file_async (path, block_sizes[b], NULL, &error);
          g_assert_no_error (error);
          g_assert_true (alv_hash_tree_equal (tree, expected));
          g_assert_cmpuint (alv_hash_tree_get_length (tree), ==, lengths[l]);
        }
    }
}

static void
test_file_errors (Fixture *fx, G_GNUC_UNUSED gconstpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *missing = g_build_filename (fx->dir, "missing", NULL);
  g_autofree char *path = write_file (fx, "data", test_data (NULL), 5 * MIB);
  AlvHashTree *tree;

  tree = alv_hash_tree_new_for_file (missing, 65536, NULL, &error);
  g_assert_null (tree);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_clear_error (&error);

  tree = alv_hash_tree_new_for_file (fx->dir, 65536, NULL, &error);
  g_assert_null (tree);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_REGULAR_FILE);
  g_clear_error (&error);

  tree = alv_hash_tree_new_for_file (path, 3000, NULL, &error);
  g_assert_null (tree);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  g_cancellable_cancel (cancellable);
  tree = alv_hash_tree_new_for_file (path, 65536, cancellable, &error);
  g_assert_null (tree);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  tree = hash_file_async (missing, 65536, NULL, &error);
  g_assert_null (tree);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
}

static void
test_block_sizes (void)
{
  g_assert_false (alv_hash_tree_block_size_is_valid (0));
  g_assert_false (alv_hash_tree_block_size_is_valid (512));
  g_assert_false (alv_hash_tree_block_size_is_valid (1000));
  g_assert_false (alv_hash_tree_block_size_is_valid (3 * 1024));
  g_assert_false (alv_hash_tree_block_size_is_valid (32 * MIB));
  g_assert_false (alv_hash_tree_block_size_is_valid (G_MAXUINT));
  g_assert_true (alv_hash_tree_block_size_is_valid (1024));
  g_assert_true (alv_hash_tree_block_size_is_valid (65536));
  g_assert_true (alv_hash_tree_block_size_is_valid (16 * MIB));
}

/* ---- serialization ------------------------------------------------------ */

static void
test_serialize_roundtrip (void)
{
  static const gsize lengths[] = { 0, 1, 65536, 65537, 5 * 65536 + 3,
                                   1 * MIB, 3 * MIB + 1 };
  const guint8 *data = test_data (NULL);
  gsize l;

  for (l = 0; l < G_N_ELEMENTS (lengths); l++)
    {
      g_autoptr(AlvHashTree) tree = NULL;
      g_autoptr(AlvHashTree) loaded = NULL;
      g_autoptr(AlvHashTree) loaded2 = NULL;
      g_autoptr(GBytes) serialized = NULL;
      g_autoptr(GBytes) again = NULL;
      g_autoptr(GError) error = NULL;
      guint64 n_blocks, total = 0, n;
      guint depth = 1;

      tree = alv_hash_tree_new_for_data (data, lengths[l], 65536);
      serialized = alv_hash_tree_serialize (tree);

      /* the size is the sum of the level sizes from the block layer up */
      n_blocks = alv_hash_tree_get_n_blocks (tree);
      for (n = n_blocks; n > 1; n = (n + 1) / 2, depth++)
        total += n;
      total += 1;
      g_assert_cmpuint (g_bytes_get_size (serialized), ==,
                        total * ALV_HASH_SIZE);
      g_assert_cmpuint (alv_hash_tree_get_serialized_depth (tree), ==, depth);
      /* root first, block layer last */
      g_assert_cmpmem (g_bytes_get_data (serialized, NULL), ALV_HASH_SIZE,
                       alv_hash_tree_get_root (tree), ALV_HASH_SIZE);
      g_assert_cmpmem ((const guint8 *) g_bytes_get_data (serialized, NULL) +
                       (total - n_blocks) * ALV_HASH_SIZE,
                       n_blocks * ALV_HASH_SIZE,
                       alv_hash_tree_get_block_hash (tree, 0),
                       n_blocks * ALV_HASH_SIZE);

      loaded = alv_hash_tree_new_from_serialized (serialized, lengths[l],
                                                  65536, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (alv_hash_tree_equal (loaded, tree));
      loaded2 = alv_hash_tree_new_from_serialized (serialized, lengths[l],
                                                   65536,
                                                   alv_hash_tree_get_root (tree),
                                                   &error);
      g_assert_no_error (error);
      g_assert_true (alv_hash_tree_equal (loaded2, tree));
      again = alv_hash_tree_serialize (loaded);
      g_assert_true (g_bytes_equal (again, serialized));
    }
}

static void
assert_refused (GBytes *bytes, guint64 length, guint block_size,
                const guint8 *root, gint code)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvHashTree) tree = NULL;

  tree = alv_hash_tree_new_from_serialized (bytes, length, block_size, root,
                                            &error);
  g_assert_null (tree);
  g_assert_error (error, ALV_ERROR, code);
  g_test_message ("refused: %s", error->message);
}

static void
test_serialize_tampered (void)
{
  const guint8 *data = test_data (NULL);
  const gsize len = 7 * 65536 + 5;  /* 8 blocks: 8 + 4 + 2 + 1 nodes */
  g_autoptr(AlvHashTree) tree = alv_hash_tree_new_for_data (data, len, 65536);
  g_autoptr(GBytes) serialized = alv_hash_tree_serialize (tree);
  gsize size;
  const guint8 *orig = g_bytes_get_data (serialized, &size);
  guint8 other_root[ALV_HASH_SIZE];
  gsize bit;

  g_assert_cmpuint (size, ==, 15 * ALV_HASH_SIZE);

  /* a flipped bit anywhere: root, inner nodes, block layer */
  for (bit = 0; bit < size * 8; bit += 37)
    {
      g_autofree guint8 *copy = g_memdup2 (orig, size);
      g_autoptr(GBytes) bad = NULL;

      copy[bit / 8] ^= 1 << (bit % 8);
      bad = g_bytes_new (copy, size);
      assert_refused (bad, len, 65536, NULL, ALV_ERROR_MISMATCH);
    }

  /* a consistent tree of other content, refused by the expected root */
  {
    g_autoptr(AlvHashTree) other = alv_hash_tree_new_for_data (data + 1, len,
                                                               65536);
    g_autoptr(GBytes) other_ser = alv_hash_tree_serialize (other);

    assert_refused (other_ser, len, 65536, alv_hash_tree_get_root (tree),
                    ALV_ERROR_MISMATCH);
  }

  /* a single-block tree is just its root: only the expected root helps */
  {
    g_autoptr(AlvHashTree) small = alv_hash_tree_new_for_data (data, 100,
                                                               65536);
    g_autoptr(GBytes) small_ser = alv_hash_tree_serialize (small);

    memcpy (other_root, alv_hash_tree_get_root (small), ALV_HASH_SIZE);
    other_root[5] ^= 0x40;
    assert_refused (small_ser, 100, 65536, other_root, ALV_ERROR_MISMATCH);
  }

  /* truncated, extended, wrong length or block size */
  {
    g_autoptr(GBytes) truncated = g_bytes_new (orig, size - 1);
    g_autoptr(GBytes) short_node = g_bytes_new (orig, size - ALV_HASH_SIZE);
    g_autoptr(GBytes) empty = g_bytes_new (NULL, 0);
    g_autofree guint8 *longer = g_malloc0 (size + ALV_HASH_SIZE);
    g_autoptr(GBytes) extended = NULL;

    memcpy (longer, orig, size);
    extended = g_bytes_new (longer, size + ALV_HASH_SIZE);
    assert_refused (truncated, len, 65536, NULL, ALV_ERROR_PARSE);
    assert_refused (short_node, len, 65536, NULL, ALV_ERROR_PARSE);
    assert_refused (extended, len, 65536, NULL, ALV_ERROR_PARSE);
    assert_refused (empty, len, 65536, NULL, ALV_ERROR_PARSE);
    assert_refused (empty, 0, 65536, NULL, ALV_ERROR_PARSE);
    assert_refused (serialized, len + 65536, 65536, NULL, ALV_ERROR_PARSE);
    assert_refused (serialized, len, 32768, NULL, ALV_ERROR_PARSE);
    assert_refused (serialized, len, 65535, NULL, ALV_ERROR_INVALID);
    assert_refused (serialized, len, 0, NULL, ALV_ERROR_INVALID);
    assert_refused (serialized, len, 32 * MIB, NULL, ALV_ERROR_INVALID);
    assert_refused (serialized, G_MAXUINT64, 65536, NULL, ALV_ERROR_LIMIT);
    assert_refused (serialized, ALV_HASH_TREE_MAX_LENGTH + 1, 16 * MIB, NULL,
                    ALV_ERROR_LIMIT);
    assert_refused (serialized, G_GUINT64_CONSTANT (1) << 40, 1024, NULL,
                    ALV_ERROR_LIMIT);
  }

  /* swapping two blocks keeps the sizes but not the tree */
  {
    g_autofree guint8 *copy = g_memdup2 (orig, size);
    g_autoptr(GBytes) bad = NULL;
    guint8 tmp[ALV_HASH_SIZE];
    guint8 *b0 = copy + 7 * ALV_HASH_SIZE;

    memcpy (tmp, b0, ALV_HASH_SIZE);
    memcpy (b0, b0 + ALV_HASH_SIZE, ALV_HASH_SIZE);
    memcpy (b0 + ALV_HASH_SIZE, tmp, ALV_HASH_SIZE);
    bad = g_bytes_new (copy, size);
    assert_refused (bad, len, 65536, NULL, ALV_ERROR_MISMATCH);
  }
}

/* ---- block verification ----------------------------------------------- */

static void
test_verify_block (void)
{
  const guint8 *data = test_data (NULL);
  const gsize len = 5 * 65536 + 1000;
  const guint block_size = 65536;
  g_autoptr(AlvHashTree) full = alv_hash_tree_new_for_data (data, len,
                                                            block_size);
  g_autoptr(GBytes) serialized = alv_hash_tree_serialize (full);
  g_autoptr(AlvHashTree) tree = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree guint8 *copy = g_memdup2 (data, len);
  guint64 i, offset, length;

  /* as the core does: a tree from the network, blocks from peers */
  tree = alv_hash_tree_new_from_serialized (serialized, len, block_size,
                                            alv_hash_tree_get_root (full),
                                            &error);
  g_assert_no_error (error);
  g_assert_cmpuint (alv_hash_tree_get_n_blocks (tree), ==, 6);

  for (i = 0; i < 6; i++)
    {
      g_assert_true (alv_hash_tree_get_block_range (tree, i, &offset,
                                                    &length));
      g_assert_cmpuint (offset, ==, i * block_size);
      g_assert_cmpuint (length, ==, i < 5 ? block_size : 1000);
      g_assert_true (alv_hash_tree_verify_block (tree, i, data + offset,
                                                 length, &error));
      g_assert_no_error (error);

      /* a flipped bit */
      copy[offset + length / 2] ^= 0x10;
      g_assert_false (alv_hash_tree_verify_block (tree, i, copy + offset,
                                                  length, &error));
      g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
      g_clear_error (&error);
      copy[offset + length / 2] ^= 0x10;
    }

  /* a good block at the wrong index */
  g_assert_false (alv_hash_tree_verify_block (tree, 2, data + block_size,
                                              block_size, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_MISMATCH);
  g_clear_error (&error);

  /* wrong sizes: short, long, a full block in the last place */
  g_assert_false (alv_hash_tree_verify_block (tree, 0, data, block_size - 1,
                                              &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (alv_hash_tree_verify_block (tree, 0, data, block_size + 1,
                                              &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (alv_hash_tree_verify_block (tree, 5, data + 5 * block_size,
                                              block_size, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (alv_hash_tree_verify_block (tree, 5, data + 5 * block_size,
                                              999, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  /* out of range */
  g_assert_false (alv_hash_tree_verify_block (tree, 6, data, 1000, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);
  g_assert_false (alv_hash_tree_get_block_range (tree, 6, NULL, NULL));
  g_assert_false (alv_hash_tree_verify_block (tree, G_MAXUINT64, data, 1000,
                                              &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  /* the empty content's only block */
  {
    g_autoptr(AlvHashTree) empty = alv_hash_tree_new_for_data (NULL, 0, 1024);

    g_assert_true (alv_hash_tree_verify_block (empty, 0, NULL, 0, &error));
    g_assert_no_error (error);
    g_assert_false (alv_hash_tree_verify_block (empty, 0, data, 1, &error));
    g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  }
}

/* ---- base32 and URNs ---------------------------------------------------- */

static void
test_base32 (void)
{
  /* RFC 4648 §10, padding removed */
  static const struct
  {
    const char *plain;
    const char *encoded;
  } vectors[] = {
    { "", "" }, { "f", "MY" }, { "fo", "MZXQ" }, { "foo", "MZXW6" },
    { "foob", "MZXW6YQ" }, { "fooba", "MZXW6YTB" },
    { "foobar", "MZXW6YTBOI" },
  };
  g_autoptr(GError) error = NULL;
  guint8 out[16];
  gsize i;

  for (i = 0; i < G_N_ELEMENTS (vectors); i++)
    {
      gsize len = strlen (vectors[i].plain);
      g_autofree char *enc = alv_base32_encode ((const guint8 *) vectors[i].plain,
                                                len);
      g_autofree char *lower = g_ascii_strdown (vectors[i].encoded, -1);

      g_assert_cmpstr (enc, ==, vectors[i].encoded);
      g_assert_true (alv_base32_decode (enc, -1, out, len, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (out, len, vectors[i].plain, len);
      g_assert_true (alv_base32_decode (lower, -1, out, len, &error));
      g_assert_no_error (error);
      g_assert_cmpmem (out, len, vectors[i].plain, len);
    }

  /* explicit length, not NUL-terminated */
  g_assert_true (alv_base32_decode ("MZXW6xxx", 5, out, 3, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (out, 3, "foo", 3);

  /* padding, wrong length, bad characters, non-canonical bits */
  g_assert_false (alv_base32_decode ("MY======", -1, out, 1, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);
  g_assert_false (alv_base32_decode ("MZXW", -1, out, 3, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);
  g_assert_false (alv_base32_decode ("MZX1", -1, out, 2, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);
  g_assert_false (alv_base32_decode ("MZ", -1, out, 1, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);
}

static void
test_urn (void)
{
  g_autoptr(AlvHashTree) tree = alv_hash_tree_new_for_data ("abc", 3, 65536);
  g_autofree char *urn = alv_hash_tree_get_urn (tree);
  g_autofree char *lower = g_ascii_strdown (urn, -1);
  g_autofree char *b32 = root_base32 (tree);
  g_autoptr(GError) error = NULL;
  guint8 root[ALV_HASH_SIZE];
  guint8 zero[ALV_HASH_SIZE] = { 0, };
  g_autofree char *zero_urn = alv_urn_format (zero);
  static const char *const bad[] = {
    "",
    "urn:tree:sha256:",
    "urn:tree:tiger:LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ",
    "urn:sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ",
    " urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA8",
    "urn:tree:sha256:0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ("urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAA\xc3\xa9" "AAAAAAAAAAAAAAAAAAAAAAAA"),
    /* 4 unused trailing bits set: a second spelling of a root */
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
    "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAP",
    "urn:tree:sha256",
    "urn:tree:sha256-",
  };
  gsize i;

  g_assert_true (g_str_has_prefix (urn, "urn:tree:sha256:"));
  g_assert_cmpuint (strlen (urn), ==, strlen (ALV_URN_PREFIX) + 52);
  g_assert_cmpstr (urn + strlen (ALV_URN_PREFIX), ==, b32);
  g_assert_cmpstr (zero_urn, ==,
                   "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");

  g_assert_true (alv_urn_parse (urn, root, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (root, ALV_HASH_SIZE, alv_hash_tree_get_root (tree),
                   ALV_HASH_SIZE);
  memset (root, 0, sizeof root);
  g_assert_true (alv_urn_parse (lower, root, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (root, ALV_HASH_SIZE, alv_hash_tree_get_root (tree),
                   ALV_HASH_SIZE);
  {
    g_autofree char *mixed = g_strconcat ("URN:Tree:SHA256:",
                                          urn + strlen (ALV_URN_PREFIX), NULL);

    g_assert_true (alv_urn_parse (mixed, root, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (root, ALV_HASH_SIZE, alv_hash_tree_get_root (tree),
                     ALV_HASH_SIZE);
  }
  /* the canonical last characters of a 32-byte root */
  g_assert_true (alv_urn_parse ("urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQ",
                                root, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (root[31], ==, 1);

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      memset (root, 0xaa, sizeof root);
      g_assert_false (alv_urn_parse (bad[i], root, &error));
      g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
      g_clear_error (&error);
    }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

#ifdef HAVE_GCRYPT
  if (!gcry_check_version (NULL))
    g_error ("libgcrypt initialisation failed");
  gcry_control (GCRYCTL_DISABLE_SECMEM, 0);
  gcry_control (GCRYCTL_INITIALIZATION_FINISHED, 0);
  g_test_add_func ("/common/hash-tree/tiger-vectors", test_tiger_vectors);
#endif
  g_test_add ("/common/hash-tree/reference", Fixture, NULL,
              fixture_setup, test_reference, fixture_teardown);
  g_test_add_func ("/common/hash-tree/empty", test_empty);
  g_test_add_func ("/common/hash-tree/power-of-two-split",
                   test_power_of_two_split);
  g_test_add_func ("/common/hash-tree/incremental", test_incremental);
  g_test_add_func ("/common/hash-tree/incremental-null-update",
                   test_incremental_null_update);
  g_test_add_func ("/common/hash-tree/block-sizes", test_block_sizes);
  g_test_add ("/common/hash-tree/file", Fixture, NULL,
              fixture_setup, test_file, fixture_teardown);
  g_test_add ("/common/hash-tree/file-errors", Fixture, NULL,
              fixture_setup, test_file_errors, fixture_teardown);
  g_test_add_func ("/common/hash-tree/serialize-roundtrip",
                   test_serialize_roundtrip);
  g_test_add_func ("/common/hash-tree/serialize-tampered",
                   test_serialize_tampered);
  g_test_add_func ("/common/hash-tree/verify-block", test_verify_block);
  g_test_add_func ("/common/base32/rfc4648", test_base32);
  g_test_add_func ("/common/urn/format-parse", test_urn);

  {
    int ret;

    test_data_buf = make_test_data ();
    ret = g_test_run ();
    g_clear_pointer (&test_data_buf, g_free);
    return ret;
  }
}
