/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Rendezvous (highest random weight) hashing of (URN, segment, ip:port):
 * the rule by which listeners that know the same peers agree, without a
 * word, on which of them pulls a segment nobody holds from the origin when
 * no gateway grants origin leases (doc/swarm.md, "Without a gateway").
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

guint64 alv_rendezvous_hash (const char *urn,
                             guint       segment,
                             const char *key);

/* Whether @a comes before @b in the line of owners of @segment. */
gboolean alv_rendezvous_before (const char *urn,
                                guint       segment,
                                const char *a,
                                const char *b);

G_END_DECLS
