/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Giving freed memory back to the system.  glibc's malloc keeps what is
 * freed in its arenas for reuse, and after a large free it raises its own
 * mmap and trim thresholds, so a burst (a 4 MiB playlist read and parsed,
 * a station's swarm torn down by Stop) would leave the daemon at its peak
 * resident size for good.  malloc_trim(0) hands the free pages of every
 * arena back; it costs about a millisecond per hundred megabytes of heap,
 * so it is called after bursts only, never per request.  Without glibc
 * (no malloc_trim) this does nothing.
 */
#define G_LOG_DOMAIN "alluvium-core"

#include "config.h"

#include "alv-memory.h"

#ifdef HAVE_MALLOC_TRIM
#include <malloc.h>
#endif

/* Returns TRUE when some memory went back; @why is for the debug log. */
gboolean
alv_memory_give_back (const char *why)
{
#ifdef HAVE_MALLOC_TRIM
  gboolean released = malloc_trim (0) != 0;

  g_debug ("%s: freed memory %s to the system", why,
           released ? "given back" : "already given back");
  return released;
#else
  g_debug ("%s: no malloc_trim() here, freed memory stays with the allocator", why);
  return FALSE;
#endif
}
