/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The options of `alluvium-server playlist` once parsed and checked, shared
 * by its three modes: build (playlist-build.c), check (playlist-check.c)
 * and prepare (playlist-prepare.c).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * PlaylistOptions:
 * @inputs: media files and directories (build mode)
 * @output: where to write the playlist, or %NULL for stdout
 * @base_url: the URL of @root, ending with '/' (or %NULL in check mode)
 * @root: absolute directory the media paths are relative to, or %NULL to
 *   use the common parent of @inputs
 * @start: start of the first slot
 * @until: end of the horizon when repeating, or %NULL
 * @repeat: repeat the list until @until
 * @title: channel title, or %NULL for a default
 * @link: channel link, or %NULL for @base_url
 * @description: channel description, or %NULL for a default
 * @about: channel rdf:about, or %NULL for a default
 * @update_period: sy:updatePeriod, or %NULL
 * @update_frequency: sy:updateFrequency, or 0
 * @force: accept mixed stream formats
 * @no_urn: do not hash files
 * @verbose: progress and details on stderr
 * @progress: print progress lines (a tty or @verbose)
 * @fetch: in check mode, download and hash remote items
 * @offline: in check mode, make no HTTP request for items
 * @timeout: seconds allowed for one probe or HTTP request
 * @gateway: the gateway's base URL (prepare and check modes), or %NULL for
 *   the local gateway found on D-Bus
 * @max_wait: seconds to keep retrying one item while the gateway answers 202
 * @reports_on_stderr: print the per-item lines of --prepare on stderr
 *   (the playlist itself went to stdout)
 */
typedef struct
{
  char **inputs;
  char *output;
  char *base_url;
  char *root;
  GDateTime *start;
  GDateTime *until;
  gboolean repeat;
  char *title;
  char *link;
  char *description;
  char *about;
  char *update_period;
  int update_frequency;
  gboolean force;
  gboolean no_urn;
  gboolean verbose;
  gboolean progress;
  gboolean fetch;
  gboolean offline;
  guint timeout;
  char *gateway;
  guint max_wait;
  gboolean reports_on_stderr;
} PlaylistOptions;

G_END_DECLS
