/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * core.conf as core-config.c reads it: the defaults, every key, and each
 * kind of bad value refused with the file and the key named.
 */
#include "config.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "core-config.h"

typedef struct
{
  char *dir;
  char *path;
} Fixture;

static void
fixture_setup (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("alluvium-config-XXXXXX", &error);
  g_assert_no_error (error);
  fx->path = g_build_filename (fx->dir, "core.conf", NULL);
}

static void
fixture_teardown (Fixture      *fx,
                  gconstpointer data G_GNUC_UNUSED)
{
  g_unlink (fx->path);
  g_rmdir (fx->dir);
  g_free (fx->path);
  g_free (fx->dir);
}

static void
write_conf (Fixture    *fx,
            const char *text)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (fx->path, text, -1, &error);
  g_assert_no_error (error);
}

static void
test_defaults (Fixture      *fx,
               gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  CoreConfig config;

  core_config_init (&config);
  /* no file: the defaults, no error */
  g_assert_true (core_config_load (&config, fx->path, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (config.stream_port, ==, 0);
  g_assert_cmpuint (config.peer_port, ==, 0);
  g_assert_cmpuint (config.upload_limit, ==, 0);
  g_assert_cmpuint (config.cache_size, ==, G_GUINT64_CONSTANT (1) << 30);
  g_assert_cmpuint (config.idle_timeout, ==, CORE_DEFAULT_IDLE_TIMEOUT);
  g_assert_null (config.gateway);
  g_assert_cmpstr (config.peer_address, ==, "0.0.0.0");
  g_assert_cmpuint (config.peer_connections_per_address, >, 0);
  g_assert_null (config.nat_gateway);
  core_config_clear (&config);
}

static void
test_every_key (Fixture      *fx,
                gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  CoreConfig config;

  write_conf (fx,
              "[core]\n"
              "stream-port=8000\n"
              "peer-port=7788\n"
              "upload-limit=32000\n"
              "cache-size=1048576\n"
              "idle-timeout=0\n"
              "gateway=none\n"
              "peer-address=127.0.0.5\n"
              "peer-connections-per-address=0\n"
              "nat=natpmp\n"
              "nat-gateway=192.0.2.1:5351\n");
  core_config_init (&config);
  g_assert_true (core_config_load (&config, fx->path, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (config.stream_port, ==, 8000);
  g_assert_cmpuint (config.peer_port, ==, 7788);
  g_assert_cmpuint (config.upload_limit, ==, 32000);
  g_assert_cmpuint (config.cache_size, ==, 1048576);
  g_assert_cmpuint (config.idle_timeout, ==, 0);
  g_assert_cmpstr (config.gateway, ==, CORE_GATEWAY_NONE);
  g_assert_cmpstr (config.peer_address, ==, "127.0.0.5");
  /* 0 connections would refuse every peer: one at least */
  g_assert_cmpuint (config.peer_connections_per_address, ==, 1);
  g_assert_cmpint (config.nat, ==, ALV_NAT_NATPMP);
  g_assert_cmpstr (config.nat_gateway, ==, "192.0.2.1:5351");
  core_config_clear (&config);
}

/* Each bad value is refused with the file's path and the key in the
 * message. */
static void
test_refused (Fixture      *fx,
              gconstpointer data G_GNUC_UNUSED)
{
  static const struct
  {
    const char *line;
    const char *key;
  } bad[] = {
    { "stream-port=65536", "stream-port" },
    { "peer-port=-1", "peer-port" },
    { "idle-timeout=many", "idle-timeout" },
    { "peer-address=example.org", "peer-address" },
    { "nat=maybe", "nat" },
    { "nat-gateway=192.0.2.1:99999", "nat-gateway" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *text = g_strdup_printf ("[core]\n%s\n", bad[i].line);
      CoreConfig config;

      write_conf (fx, text);
      core_config_init (&config);
      g_assert_false (core_config_load (&config, fx->path, &error));
      g_assert_nonnull (error);
      g_test_message ("%s: %s", bad[i].line, error->message);
      g_assert_nonnull (strstr (error->message, fx->path));
      g_assert_nonnull (strstr (error->message, bad[i].key));
      core_config_clear (&config);
    }
}

static void
test_unreadable (Fixture      *fx,
                 gconstpointer data G_GNUC_UNUSED)
{
  g_autoptr(GError) error = NULL;
  CoreConfig config;

  /* not a key file at all */
  write_conf (fx, "this is not\x01 a key file\n");
  core_config_init (&config);
  g_assert_false (core_config_load (&config, fx->path, &error));
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, fx->path));
  core_config_clear (&config);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/core/config/defaults", Fixture, NULL, fixture_setup, test_defaults, fixture_teardown);
  g_test_add ("/core/config/every-key", Fixture, NULL, fixture_setup, test_every_key, fixture_teardown);
  g_test_add ("/core/config/refused", Fixture, NULL, fixture_setup, test_refused, fixture_teardown);
  g_test_add ("/core/config/unreadable", Fixture, NULL, fixture_setup, test_unreadable, fixture_teardown);
  return g_test_run ();
}
