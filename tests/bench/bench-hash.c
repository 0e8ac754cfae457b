/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Hashing benchmark: builds the SHA-256 THEX tree of a file with one thread
 * and with one thread per processor (alv_hash_tree_new_for_file_full()),
 * takes the best of a few runs of each and prints the rates in MB/s
 * (10^6 bytes per second) in a form bench-hash.sh parses.  As a baseline
 * it also hashes the file as one plain SHA-256 message with GnuTLS,
 * reading it the same way (pread() into a 512 KiB buffer), which is the
 * ceiling the tree's one-thread rate is compared with.  The file should be
 * in the page cache (or in /dev/shm) so the disk is not measured.
 *
 * Usage: bench-hash FILE [BLOCK_SIZE [RUNS]]
 */
#define G_LOG_DOMAIN "bench-hash"

#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gnutls/crypto.h>

#include "alv-hash-tree.h"

/* CPU time of the whole process (all threads, user and system), in s */
static double
cpu_seconds (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Best wall-clock rate of a few runs; *cpu_rate_out gets the best rate per
 * CPU-second, which a loaded machine disturbs much less. */
static double
best_rate (const char *path, guint block_size, guint threads, guint runs,
           AlvHashTree **tree_out, double *cpu_rate_out)
{
  double best = 0, best_cpu = 0;
  guint i;

  for (i = 0; i < runs; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(AlvHashTree) tree = NULL;
      gint64 start = g_get_monotonic_time ();
      double cpu_start = cpu_seconds ();
      double seconds, cpu;

      tree = alv_hash_tree_new_for_file_full (path, block_size, threads,
                                              NULL, &error);
      seconds = (g_get_monotonic_time () - start) / 1e6;
      cpu = cpu_seconds () - cpu_start;
      if (tree == NULL)
        {
          g_printerr ("bench-hash: %s\n", error->message);
          exit (1);
        }
      best = MAX (best, alv_hash_tree_get_length (tree) / 1e6 /
                        MAX (seconds, 1e-6));
      best_cpu = MAX (best_cpu, alv_hash_tree_get_length (tree) / 1e6 /
                                MAX (cpu, 1e-6));
      if (i == 0 && tree_out != NULL)
        *tree_out = alv_hash_tree_ref (tree);
    }
  *cpu_rate_out = best_cpu;
  return best;
}

/* Plain SHA-256 of the whole file, read as the tree code reads it. */
static double
best_raw_rate (const char *path, guint runs, double *cpu_rate_out)
{
  const gsize buf_size = 512 * 1024;
  g_autofree guint8 *buf = g_malloc (buf_size);
  double best = 0, best_cpu = 0;
  guint i;

  for (i = 0; i < runs; i++)
    {
      gnutls_hash_hd_t hash = NULL;
      guint8 digest[32];
      guint64 total = 0;
      gint64 start;
      double cpu_start;
      int fd = open (path, O_RDONLY | O_CLOEXEC);

      if (fd < 0 || gnutls_hash_init (&hash, GNUTLS_DIG_SHA256) < 0)
        {
          g_printerr ("bench-hash: cannot hash %s\n", path);
          exit (1);
        }
      start = g_get_monotonic_time ();
      cpu_start = cpu_seconds ();
      for (;;)
        {
          gssize n = pread (fd, buf, buf_size, (off_t) total);

          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0)
            {
              g_printerr ("bench-hash: %s: %s\n", path, g_strerror (errno));
              exit (1);
            }
          if (n == 0)
            break;
          gnutls_hash (hash, buf, (gsize) n);
          total += (guint64) n;
        }
      gnutls_hash_deinit (hash, digest);
      best = MAX (best, total / 1e6 /
                        MAX ((g_get_monotonic_time () - start) / 1e6, 1e-6));
      best_cpu = MAX (best_cpu, total / 1e6 /
                                MAX (cpu_seconds () - cpu_start, 1e-6));
      close (fd);
    }
  *cpu_rate_out = best_cpu;
  return best;
}

int
main (int argc, char **argv)
{
  g_autoptr(AlvHashTree) one = NULL;
  g_autoptr(AlvHashTree) all = NULL;
  g_autofree char *urn = NULL;
  guint block_size = ALV_HASH_TREE_DEFAULT_BLOCK_SIZE;
  guint runs = 3;
  guint n_threads;
  double rate_raw, rate_one, rate_all, cpu_raw, cpu_one, cpu_all;

  if (argc < 2 || argc > 4)
    {
      g_printerr ("usage: %s FILE [BLOCK_SIZE [RUNS]]\n", argv[0]);
      return 2;
    }
  if (argc > 2)
    block_size = (guint) g_ascii_strtoull (argv[2], NULL, 10);
  if (argc > 3)
    runs = MAX (1, (guint) g_ascii_strtoull (argv[3], NULL, 10));
  if (!alv_hash_tree_block_size_is_valid (block_size))
    {
      g_printerr ("bench-hash: invalid block size %u\n", block_size);
      return 2;
    }

  n_threads = MIN (g_get_num_processors (), 8);
  rate_raw = best_raw_rate (argv[1], runs, &cpu_raw);
  rate_one = best_rate (argv[1], block_size, 1, runs, &one, &cpu_one);
  rate_all = best_rate (argv[1], block_size, 0, runs, &all, &cpu_all);
  if (!alv_hash_tree_equal (one, all))
    {
      g_printerr ("bench-hash: threaded and single-threaded trees differ\n");
      return 1;
    }

  urn = alv_hash_tree_get_urn (one);
  g_print ("file: %" G_GUINT64_FORMAT " bytes, block size %u, best of %u\n",
           alv_hash_tree_get_length (one), block_size, runs);
  g_print ("urn: %s\n", urn);
  /* "LABEL: WALL MB/s (CPU MB/s per CPU-second)", parsed by bench-hash.sh */
  g_print ("sha256 (GnuTLS, 1 thread, same reads): %.0f MB/s (%.0f per CPU-second)\n",
           rate_raw, cpu_raw);
  g_print ("1 thread: %.0f MB/s (%.0f per CPU-second)\n", rate_one, cpu_one);
  g_print ("%u threads: %.0f MB/s (%.0f per CPU-second)\n", n_threads,
           rate_all, cpu_all);
  return 0;
}
