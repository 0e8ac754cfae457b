/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Giving freed memory back to the system after a burst: see alv-memory.c.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* A playlist body at least this large is followed by a give-back. */
#define ALV_MEMORY_BURST_BYTES (1024 * 1024)

gboolean alv_memory_give_back (const char *why);

G_END_DECLS
