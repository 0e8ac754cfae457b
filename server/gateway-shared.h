/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What several gateways share through one Redis: URL entries, trees by
 * URN, the peer table (per URN a sorted set of "ip:port" scored by the
 * time of the last announce, and a hash of what each holds, both expiring
 * with the peer TTL), and the locks that let one gateway at a time hash a
 * given URL.  Every call is asynchronous; one that cannot be made (Redis
 * down) returns FALSE at once and its callback is not called, so the
 * caller answers from its own memory.  The key layout is in
 * doc/gateway-redis.md.
 */
#pragma once

#include <glib.h>

#include "alv-block-map.h"
#include "alv-hash-tree.h"
#include "gateway-peers.h"
#include "gateway-redis.h"
#include "gateway-store.h"

G_BEGIN_DECLS

typedef struct _GatewayShared GatewayShared;

/* Entries and trees stay this long after they were last read or written. */
#define GATEWAY_SHARED_RECORD_TTL_MS (G_GINT64_CONSTANT (30) * 24 * 3600 * 1000)

GatewayShared *gateway_shared_new       (const GatewayRedisAddress *address,
                                         GatewayRedisStateFunc      state_func,
                                         gpointer                   user_data);
/* Pending callbacks run (with ok FALSE) before it returns. */
void           gateway_shared_free      (GatewayShared  *shared);
gboolean       gateway_shared_is_up     (GatewayShared  *shared);
GatewayRedis  *gateway_shared_get_redis (GatewayShared  *shared);

/* @ok: Redis answered; @entry (owned, nullable): the URL's entry. */
typedef void (*GatewaySharedEntryFunc) (gboolean      ok,
                                        GatewayEntry *entry,
                                        gpointer      user_data);
gboolean gateway_shared_get_entry (GatewayShared         *shared,
                                   const char            *url,
                                   GatewaySharedEntryFunc func,
                                   gpointer               user_data);

/* @tree (owned, nullable): the tree of the URN, checked against it. */
typedef void (*GatewaySharedTreeFunc) (gboolean     ok,
                                       AlvHashTree *tree,
                                       gpointer     user_data);
gboolean gateway_shared_get_tree  (GatewayShared         *shared,
                                   const char            *urn,
                                   GatewaySharedTreeFunc  func,
                                   gpointer               user_data);

/* Writes @entry and @tree (nullable), without waiting. */
void     gateway_shared_put       (GatewayShared         *shared,
                                   const GatewayEntry    *entry,
                                   AlvHashTree           *tree);

/* Takes the hashing lock of @url for @ttl_ms unless another gateway
 * holds it: SET NX PX, so a gateway that dies leaves it at most @ttl_ms. */
typedef void (*GatewaySharedLockFunc) (gboolean ok,
                                       gboolean acquired,
                                       gpointer user_data);
gboolean gateway_shared_lock      (GatewayShared         *shared,
                                   const char            *url,
                                   guint                  ttl_ms,
                                   GatewaySharedLockFunc  func,
                                   gpointer               user_data);
/* Extends (while hashing goes on) or drops our lock of @url; a lock
 * another gateway took meanwhile is left alone. */
void     gateway_shared_lock_extend (GatewayShared       *shared,
                                   const char            *url,
                                   guint                  ttl_ms);
void     gateway_shared_unlock    (GatewayShared         *shared,
                                   const char            *url);

/* @peers: #GatewayPeerCandidate, at most the sample asked for, expired ones
 * and the announcer left out. */
typedef void (*GatewaySharedPeersFunc) (gboolean   ok,
                                        GPtrArray *peers,
                                        gpointer   user_data);
/* The most peers an announce reads: Redis's Lua unpacks at most some
 * 8000 values, and each is work while Redis serves nobody else. */
#define GATEWAY_SHARED_MAX_SAMPLE 1000

/* Records @key ("ip:port") for @urn (or removes it, @stopped), drops up
 * to 64 expired entries and up to 64 of those over @max_per_urn,
 * announced least recently; answers a random sample of at most @sample
 * (at most GATEWAY_SHARED_MAX_SAMPLE) others.  One round trip; bounded
 * work, however many peers the URN has. */
gboolean gateway_shared_announce  (GatewayShared         *shared,
                                   const char            *urn,
                                   const char            *key,
                                   guint                  n_blocks,
                                   gboolean               complete,
                                   const AlvBlockMap     *have,
                                   gboolean               stopped,
                                   guint                  ttl_s,
                                   guint                  max_per_urn,
                                   guint                  sample,
                                   GatewaySharedPeersFunc func,
                                   gpointer               user_data);

/* The holdings record of a peer: "" nothing, "a" all, "b" + bitfield. */
GBytes  *gateway_shared_encode_have (gboolean           complete,
                                     const AlvBlockMap *have);
/* FALSE for a record that is not one of @n_blocks blocks. */
gboolean gateway_shared_decode_have (const void        *data,
                                     gsize              len,
                                     guint              n_blocks,
                                     gboolean          *complete,
                                     AlvBlockMap      **have);

G_END_DECLS
