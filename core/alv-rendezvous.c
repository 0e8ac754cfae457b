/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Rendezvous hashing for origin ownership without a gateway: FNV-1a over
 * the URN, the segment number and the peer's key, then a splitmix64
 * finaliser so that keys differing in one character spread evenly.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-rendezvous.h"

#include <string.h>

#define FNV_OFFSET G_GUINT64_CONSTANT (14695981039346656037)
#define FNV_PRIME  G_GUINT64_CONSTANT (1099511628211)

guint64
alv_rendezvous_hash (const char *urn,
                     guint       segment,
                     const char *key)
{
  guint64 h = FNV_OFFSET;

  for (const char *c = urn != NULL ? urn : ""; *c != '\0'; c++)
    h = (h ^ (guint8) *c) * FNV_PRIME;
  for (guint k = 0; k < 4; k++)
    h = (h ^ ((segment >> (8 * k)) & 0xff)) * FNV_PRIME;
  for (const char *c = key != NULL ? key : ""; *c != '\0'; c++)
    h = (h ^ (guint8) *c) * FNV_PRIME;
  h ^= h >> 30;
  h *= G_GUINT64_CONSTANT (0xbf58476d1ce4e5b9);
  h ^= h >> 27;
  h *= G_GUINT64_CONSTANT (0x94d049bb133111eb);
  h ^= h >> 31;
  return h;
}

gboolean
alv_rendezvous_before (const char *urn,
                       guint       segment,
                       const char *a,
                       const char *b)
{
  guint64 ha = alv_rendezvous_hash (urn, segment, a);
  guint64 hb = alv_rendezvous_hash (urn, segment, b);

  return ha < hb || (ha == hb && g_strcmp0 (a, b) < 0);
}
