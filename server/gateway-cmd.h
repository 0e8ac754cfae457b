/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * `alluvium-server gateway`: the OCN gateway daemon (resolve, trees,
 * tracker, optional static web server).  Parses the options, binds,
 * announces where it listens, and runs the main loop until SIGINT or
 * SIGTERM.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Runs the subcommand; argv[0] is "gateway".  Returns the exit status. */
int server_gateway_main (int argc, char **argv);

G_END_DECLS
