/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `alluvium-server playlist`: the broadcaster's playlist generator/checker.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Runs the subcommand; argv[0] is "playlist".  Returns the exit status. */
int server_playlist_main (int argc, char **argv);

G_END_DECLS
