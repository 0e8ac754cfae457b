/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * alluvium-core's configuration: the defaults, and the [core] group of
 * core.conf (doc/core.md lists the keys).  A missing file is the
 * defaults; a value out of range, an address that is not one or an
 * unknown NAT setting is an error naming the file and the key.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "core-config.h"

#include <string.h>
#include <inttypes.h>
#include <glib/gi18n-lib.h>

#include "alv-natpmp.h"
#include "alv-peer-server.h"

void
core_config_init (CoreConfig *config)
{
  memset (config, 0, sizeof *config);
  config->cache_size = G_GUINT64_CONSTANT (1) << 30;
  config->idle_timeout = CORE_DEFAULT_IDLE_TIMEOUT;
  config->peer_address = g_strdup ("0.0.0.0");
  config->peer_connections_per_address = ALV_PEER_SERVER_MAX_CONNECTIONS_PER_ADDRESS;
  config->nat = ALV_NAT_AUTO;
  /* the default when core.conf says nothing: the test suite sets it to
   * off, so that no test ever asks a real router */
  if (!alv_nat_setting_parse (g_getenv ("ALLUVIUM_CORE_NAT"), &config->nat))
    config->nat = ALV_NAT_AUTO;
}

void
core_config_clear (CoreConfig *config)
{
  g_clear_pointer (&config->gateway, g_free);
  g_clear_pointer (&config->peer_address, g_free);
  g_clear_pointer (&config->nat_gateway, g_free);
}

char *
core_config_default_path (void)
{
  return g_build_filename (g_get_user_config_dir (), "alluvium", "core.conf", NULL);
}

static gboolean
read_uint (GKeyFile   *kf,
           const char *key,
           guint64     max,
           guint64    *out,
           GError    **error)
{
  g_autoptr(GError) local = NULL;
  guint64 v;

  if (!g_key_file_has_key (kf, "core", key, NULL))
    return TRUE;
  v = g_key_file_get_uint64 (kf, "core", key, &local);
  if (local != NULL || v > max)
    {
      g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                   _("Invalid value for “%s” (at most %" PRIu64 ")"), key, max);
      return FALSE;
    }
  *out = v;
  return TRUE;
}

/* Reads [core] of @path into @config; a missing file is not an error. */
gboolean
core_config_load (CoreConfig *config,
                  const char *path,
                  GError    **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local = NULL;
  guint64 stream_port = config->stream_port, peer_port = config->peer_port;
  guint64 idle = config->idle_timeout;
  guint64 per_address = config->peer_connections_per_address;

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local))
    {
      if (g_error_matches (local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        return TRUE;
      g_propagate_prefixed_error (error, g_steal_pointer (&local), "%s: ", path);
      return FALSE;
    }
  if (!read_uint (kf, "stream-port", G_MAXUINT16, &stream_port, error)
      || !read_uint (kf, "peer-port", G_MAXUINT16, &peer_port, error)
      || !read_uint (kf, "upload-limit", G_MAXUINT64, &config->upload_limit, error)
      || !read_uint (kf, "cache-size", G_MAXUINT64, &config->cache_size, error)
      || !read_uint (kf, "idle-timeout", 7 * 24 * 3600, &idle, error)
      || !read_uint (kf, "peer-connections-per-address", 1000000, &per_address, error))
    {
      g_prefix_error (error, "%s: ", path);
      return FALSE;
    }
  config->stream_port = (guint16) stream_port;
  config->peer_port = (guint16) peer_port;
  config->idle_timeout = (guint) idle;
  config->peer_connections_per_address = (guint) MAX (per_address, 1);
  if (g_key_file_has_key (kf, "core", "gateway", NULL))
    {
      g_free (config->gateway);
      config->gateway = g_key_file_get_string (kf, "core", "gateway", NULL);
    }
  if (g_key_file_has_key (kf, "core", "peer-address", NULL))
    {
      g_autofree char *addr = g_key_file_get_string (kf, "core", "peer-address", NULL);

      if (addr == NULL || !g_hostname_is_ip_address (addr))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       _("%s: “peer-address” must be an IP address"), path);
          return FALSE;
        }
      g_free (config->peer_address);
      config->peer_address = g_steal_pointer (&addr);
    }
  if (g_key_file_has_key (kf, "core", "nat", NULL))
    {
      g_autofree char *nat = g_key_file_get_string (kf, "core", "nat", NULL);

      if (!alv_nat_setting_parse (nat, &config->nat))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       _("%s: “nat” must be auto, upnp, natpmp or off"), path);
          return FALSE;
        }
    }
  if (g_key_file_has_key (kf, "core", "nat-gateway", NULL))
    {
      g_autofree char *gw = g_key_file_get_string (kf, "core", "nat-gateway", NULL);
      g_autofree char *addr = NULL;
      guint16 port;

      if (!alv_nat_parse_router (gw, ALV_NATPMP_SERVER_PORT, &addr, &port, &local))
        {
          g_set_error (error, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE,
                       _("%s: “nat-gateway”: %s"), path, local->message);
          return FALSE;
        }
      g_free (config->nat_gateway);
      config->nat_gateway = g_steal_pointer (&gw);
    }
  return TRUE;
}
