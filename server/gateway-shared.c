/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The gateway's shared state in Redis.  Keys (all under "alluvium:"):
 *   entry:URL   an entry record (gateway_entry_to_bytes), 30-day TTL
 *   tree:URN    a tree record (gateway_tree_to_bytes), 30-day TTL
 *               (both TTLs run from the last use: every read (GETEX)
 *               and every revalidation sets them again, so what is
 *               resolved stays and what clients made up goes by itself,
 *               with no scan of the keys)
 *   lock:URL    the hashing lock: a gateway's random id, PX its TTL
 *   peers:URN   sorted set "ip:port" → time of the last announce (ms, by
 *               Redis's clock, so gateways' clocks need not agree)
 *   have:URN    hash "ip:port" → holdings record
 * The peer keys expire as a whole one TTL after the last announce; an
 * announce also drops a bounded batch of expired members, and samples
 * skip the expired ones, so nothing ever walks every peer.  Announces,
 * unlocking and extending run as Lua scripts (loaded once per connection,
 * then called by their SHA-1): one round trip each, and atomic.  Records read back are checked (a tree against its URN): Redis
 * is trusted to be ours, not to be uncorrupted.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"
#include "gateway-shared.h"

#include <string.h>

#include "alv-block-map.h"
#include "alv-ocn-headers.h"

#define PREFIX "alluvium:"
/* members an announce drops at most, expired ones and, separately, those
 * over the per-URN limit (a limit lowered since, another gateway's
 * higher one): later announces drop the rest */
#define TRIM_BATCH "64"

struct _GatewayShared
{
  GatewayRedis *redis;
  char *id;                     /* this gateway's lock value */
  char *announce_sha;           /* SHA-1 of the scripts, for EVALSHA */
  char *lock_sha;
  GatewayRedisStateFunc state_func;
  gpointer user_data;
};

/* KEYS: peers, have.  ARGV: member, holdings, ttl ms, max per URN,
 * stopped "1", sample size.  Returns member, holdings, member, … */
static const char announce_script[] =
  "local t = redis.call('TIME')\n"
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
  "local ttl = tonumber(ARGV[3])\n"
  "local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - ttl, 'LIMIT', 0, " TRIM_BATCH ")\n"
  "for _, m in ipairs(old) do redis.call('ZREM', KEYS[1], m); redis.call('HDEL', KEYS[2], m) end\n"
  "if ARGV[5] == '1' then\n"
  "  redis.call('ZREM', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[2], ARGV[1])\n"
  "else\n"
  "  redis.call('ZADD', KEYS[1], now, ARGV[1]); redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])\n"
  "  local over = math.min(redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4]), " TRIM_BATCH ")\n"
  "  if over > 0 then\n"
  "    local gone = redis.call('ZPOPMIN', KEYS[1], over)\n"
  "    for i = 1, #gone, 2 do redis.call('HDEL', KEYS[2], gone[i]) end\n"
  "  end\n"
  "  redis.call('PEXPIRE', KEYS[1], ttl); redis.call('PEXPIRE', KEYS[2], ttl)\n"
  "end\n"
  "local out = {}\n"
  "local n = tonumber(ARGV[6])\n"
  "if n > 0 then\n"
  "  local pick = redis.call('ZRANDMEMBER', KEYS[1], n, 'WITHSCORES')\n"
  "  local members = {}\n"
  "  for i = 1, #pick, 2 do\n"
  "    if tonumber(pick[i + 1]) > now - ttl and pick[i] ~= ARGV[1] then\n"
  "      members[#members + 1] = pick[i]\n"
  "    end\n"
  "  end\n"
  "  if #members > 0 then\n"
  "    local haves = redis.call('HMGET', KEYS[2], unpack(members))\n"
  "    for i = 1, #members do out[#out + 1] = members[i]; out[#out + 1] = haves[i] or '' end\n"
  "  end\n"
  "end\n"
  "return out\n";

/* KEYS: lock.  ARGV: our id, ttl ms ("0": delete). */
static const char lock_script[] =
  "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end\n"
  "if ARGV[2] == '0' then return redis.call('DEL', KEYS[1]) end\n"
  "return redis.call('PEXPIRE', KEYS[1], ARGV[2])\n";

static gboolean command (GatewayShared         *shared,
                         GatewayRedisReplyFunc  func,
                         gpointer               user_data,
                         guint                  argc,
                         const char           **argv,
                         const size_t          *lens);

/* Loads the scripts into a Redis that may not have them (a new
 * connection, a restarted Redis, a SCRIPT FLUSH): the commands after
 * these on the connection find them. */
static void
load_scripts (GatewayShared *shared)
{
  const char *announce[] = { "SCRIPT", "LOAD", announce_script };
  const char *lock[] = { "SCRIPT", "LOAD", lock_script };

  command (shared, NULL, NULL, G_N_ELEMENTS (announce), announce, NULL);
  command (shared, NULL, NULL, G_N_ELEMENTS (lock), lock, NULL);
}

static void
state_cb (GatewayRedis *redis,
          gboolean      up,
          gpointer      user_data)
{
  GatewayShared *shared = user_data;

  if (up)
    load_scripts (shared);
  if (shared->state_func != NULL)
    shared->state_func (redis, up, shared->user_data);
}

GatewayShared *
gateway_shared_new (const GatewayRedisAddress *address,
                    GatewayRedisStateFunc      state_func,
                    gpointer                   user_data)
{
  GatewayShared *shared = g_new0 (GatewayShared, 1);

  shared->id = g_uuid_string_random ();
  shared->announce_sha = g_compute_checksum_for_string (G_CHECKSUM_SHA1, announce_script, -1);
  shared->lock_sha = g_compute_checksum_for_string (G_CHECKSUM_SHA1, lock_script, -1);
  shared->state_func = state_func;
  shared->user_data = user_data;
  shared->redis = gateway_redis_new (address, state_cb, shared);
  return shared;
}

void
gateway_shared_free (GatewayShared *shared)
{
  if (shared == NULL)
    return;
  gateway_redis_free (shared->redis);
  g_free (shared->id);
  g_free (shared->announce_sha);
  g_free (shared->lock_sha);
  g_free (shared);
}

gboolean
gateway_shared_is_up (GatewayShared *shared)
{
  return gateway_redis_is_up (shared->redis);
}

GatewayRedis *
gateway_shared_get_redis (GatewayShared *shared)
{
  return shared->redis;
}

/* A command of string arguments, the last @n_bin given with lengths. */
static gboolean
command (GatewayShared         *shared,
         GatewayRedisReplyFunc  func,
         gpointer               user_data,
         guint                  argc,
         const char           **argv,
         const size_t          *lens)
{
  size_t argvlen[16];

  g_return_val_if_fail (argc <= G_N_ELEMENTS (argvlen), FALSE);
  for (guint i = 0; i < argc; i++)
    argvlen[i] = lens != NULL && lens[i] != 0 ? lens[i] : strlen (argv[i]);
  return gateway_redis_command (shared->redis, func, user_data, (int) argc, argv, argvlen);
}

/* ------------------------------------------------------------------ */
/* Entries and trees                                                   */

/* A read of entry:URL or tree:URN: the caller's callback and, for a
 * tree, the URN it must hash to. */
typedef struct
{
  GCallback func;
  gpointer user_data;
  char *name;
} GetCall;

static void
get_call_free (GetCall *call)
{
  g_free (call->name);
  g_free (call);
}

static gboolean
get_record (GatewayShared        *shared,
            const char           *kind,
            const char           *name,
            GatewayRedisReplyFunc reply_func,
            GCallback             func,
            gpointer              user_data)
{
  g_autofree char *key = g_strconcat (PREFIX, kind, ":", name, NULL);
  g_autofree char *ttl = g_strdup_printf ("%" G_GINT64_FORMAT, GATEWAY_SHARED_RECORD_TTL_MS);
  /* a read is a use: the record's TTL starts again (Redis 6.2, as
   * ZRANDMEMBER of the announce script) */
  const char *argv[] = { "GETEX", key, "PX", ttl };
  GetCall *call = g_new (GetCall, 1);

  call->func = func;
  call->user_data = user_data;
  call->name = g_strdup (name);
  if (!command (shared, reply_func, call, G_N_ELEMENTS (argv), argv, NULL))
    {
      get_call_free (call);
      return FALSE;
    }
  return TRUE;
}

/* A GETEX answers a string or nil; anything else (an error, a key of
 * another type) is a failure, as no answer is. */
static gboolean
get_reply_ok (const redisReply *reply,
              const char       *name)
{
  if (reply == NULL)
    return FALSE;
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_NIL)
    return TRUE;
  if (reply->type == REDIS_REPLY_ERROR)
    g_message ("Redis refused a read of %s: %.*s", name, (int) MIN (reply->len, 200), reply->str);
  else
    g_message ("Redis answered a read of %s with a reply of type %d", name, reply->type);
  return FALSE;
}

static void
entry_reply_cb (redisReply *reply,
                gpointer    user_data)
{
  GetCall *call = user_data;
  GatewaySharedEntryFunc func = (GatewaySharedEntryFunc) call->func;
  g_autoptr(GatewayEntry) entry = NULL;

  if (reply != NULL && reply->type == REDIS_REPLY_STRING)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (reply->str, reply->len);
      g_autoptr(GError) error = NULL;

      entry = gateway_entry_new_from_bytes (bytes, &error);
      if (entry == NULL)
        g_message ("ignoring a malformed entry of %s in Redis: %s", call->name, error->message);
      /* the record of another URL (a corrupt or hand-edited key) would be
       * answered, and kept, for this one */
      else if (g_strcmp0 (entry->url, call->name) != 0)
        {
          g_message ("ignoring the entry of %s in Redis: it is that of %s", call->name, entry->url);
          g_clear_pointer (&entry, gateway_entry_free);
        }
    }
  func (get_reply_ok (reply, call->name), g_steal_pointer (&entry), call->user_data);
  get_call_free (call);
}

gboolean
gateway_shared_get_entry (GatewayShared         *shared,
                          const char            *url,
                          GatewaySharedEntryFunc func,
                          gpointer               user_data)
{
  return get_record (shared, "entry", url, entry_reply_cb, G_CALLBACK (func), user_data);
}

static void
tree_reply_cb (redisReply *reply,
               gpointer    user_data)
{
  GetCall *call = user_data;
  GatewaySharedTreeFunc func = (GatewaySharedTreeFunc) call->func;
  g_autoptr(AlvHashTree) tree = NULL;

  if (reply != NULL && reply->type == REDIS_REPLY_STRING)
    {
      g_autoptr(GBytes) bytes = g_bytes_new (reply->str, reply->len);
      g_autoptr(GError) error = NULL;

      tree = gateway_tree_new_from_bytes (call->name, bytes, &error);
      if (tree == NULL)
        g_message ("ignoring a malformed tree of %s in Redis: %s", call->name, error->message);
    }
  func (get_reply_ok (reply, call->name), g_steal_pointer (&tree), call->user_data);
  get_call_free (call);
}

gboolean
gateway_shared_get_tree (GatewayShared        *shared,
                         const char           *urn,
                         GatewaySharedTreeFunc func,
                         gpointer              user_data)
{
  return get_record (shared, "tree", urn, tree_reply_cb, G_CALLBACK (func), user_data);
}

void
gateway_shared_put (GatewayShared      *shared,
                    const GatewayEntry *entry,
                    AlvHashTree        *tree)
{
  g_autofree char *ttl = g_strdup_printf ("%" G_GINT64_FORMAT, GATEWAY_SHARED_RECORD_TTL_MS);

  /* the tree first: a reader that finds the entry finds its tree */
  if (tree != NULL)
    {
      g_autofree char *key = g_strconcat (PREFIX "tree:", entry->urn, NULL);
      g_autoptr(GBytes) data = gateway_tree_to_bytes (tree);
      const char *argv[] = { "SET", key, g_bytes_get_data (data, NULL), "PX", ttl };
      size_t lens[] = { 0, 0, g_bytes_get_size (data), 0, 0 };

      command (shared, NULL, NULL, G_N_ELEMENTS (argv), argv, lens);
    }
  else
    {
      /* a revalidation: the tree lives as long as the entry naming it */
      g_autofree char *key = g_strconcat (PREFIX "tree:", entry->urn, NULL);
      const char *argv[] = { "PEXPIRE", key, ttl };

      command (shared, NULL, NULL, G_N_ELEMENTS (argv), argv, NULL);
    }
  {
    g_autofree char *key = g_strconcat (PREFIX "entry:", entry->url, NULL);
    g_autoptr(GBytes) data = gateway_entry_to_bytes (entry);
    const char *argv[] = { "SET", key, g_bytes_get_data (data, NULL), "PX", ttl };
    size_t lens[] = { 0, 0, g_bytes_get_size (data), 0, 0 };

    command (shared, NULL, NULL, G_N_ELEMENTS (argv), argv, lens);
  }
}

/* ------------------------------------------------------------------ */
/* Hashing locks                                                       */

typedef struct
{
  GatewaySharedLockFunc func;
  gpointer user_data;
} LockCall;

static void
lock_reply_cb (redisReply *reply,
               gpointer    user_data)
{
  LockCall *call = user_data;
  /* SET NX answers OK when it set the key, nil when it was there;
   * anything else is a failure, not someone else's lock */
  gboolean acquired = reply != NULL && reply->type == REDIS_REPLY_STATUS
                      && reply->len == 2 && memcmp (reply->str, "OK", 2) == 0;
  gboolean ok = acquired || (reply != NULL && reply->type == REDIS_REPLY_NIL);

  call->func (ok, acquired, call->user_data);
  g_free (call);
}

gboolean
gateway_shared_lock (GatewayShared        *shared,
                     const char           *url,
                     guint                 ttl_ms,
                     GatewaySharedLockFunc func,
                     gpointer              user_data)
{
  g_autofree char *key = g_strconcat (PREFIX "lock:", url, NULL);
  g_autofree char *ttl = g_strdup_printf ("%u", MAX (ttl_ms, 1));
  const char *argv[] = { "SET", key, shared->id, "NX", "PX", ttl };
  LockCall *call = g_new (LockCall, 1);

  call->func = func;
  call->user_data = user_data;
  if (!command (shared, lock_reply_cb, call, G_N_ELEMENTS (argv), argv, NULL))
    {
      g_free (call);
      return FALSE;
    }
  return TRUE;
}

static void
lock_script_run (GatewayShared *shared,
                 const char    *url,
                 const char    *ttl)
{
  g_autofree char *key = g_strconcat (PREFIX "lock:", url, NULL);
  const char *argv[] = { "EVALSHA", shared->lock_sha, "1", key, shared->id, ttl };

  command (shared, NULL, NULL, G_N_ELEMENTS (argv), argv, NULL);
}

void
gateway_shared_lock_extend (GatewayShared *shared,
                            const char    *url,
                            guint          ttl_ms)
{
  g_autofree char *ttl = g_strdup_printf ("%u", MAX (ttl_ms, 1));

  lock_script_run (shared, url, ttl);
}

void
gateway_shared_unlock (GatewayShared *shared,
                       const char    *url)
{
  lock_script_run (shared, url, "0");
}

/* ------------------------------------------------------------------ */
/* Peers                                                               */

GBytes *
gateway_shared_encode_have (gboolean           complete,
                            const AlvBlockMap *have)
{
  g_autoptr(GBytes) bits = NULL;
  g_autoptr(GByteArray) out = NULL;

  if (complete || (have != NULL && alv_block_map_is_complete (have)))
    return g_bytes_new_static ("a", 1);
  if (have == NULL)
    return g_bytes_new_static ("", 0);
  bits = alv_block_map_to_bytes (have);
  out = g_byte_array_sized_new (g_bytes_get_size (bits) + 1);
  g_byte_array_append (out, (const guint8 *) "b", 1);
  g_byte_array_append (out, g_bytes_get_data (bits, NULL), g_bytes_get_size (bits));
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

gboolean
gateway_shared_decode_have (const void   *data,
                            gsize         len,
                            guint         n_blocks,
                            gboolean     *complete,
                            AlvBlockMap **have)
{
  const char *text = data;

  *complete = FALSE;
  *have = NULL;
  if (len == 0)
    return TRUE;
  if (len == 1 && text[0] == 'a')
    {
      *complete = TRUE;
      return TRUE;
    }
  if (text[0] == 'b' && n_blocks > 0 && n_blocks <= ALV_BLOCK_MAP_MAX_BLOCKS)
    {
      g_autoptr(GBytes) bits = g_bytes_new (text + 1, len - 1);

      *have = alv_block_map_new_from_bytes (bits, n_blocks, NULL);
      return *have != NULL;
    }
  return FALSE;
}

static void
shared_peer_free (GatewayPeerCandidate *peer)
{
  g_free (peer->key);
  g_clear_pointer (&peer->have, alv_block_map_free);
  g_free (peer);
}

typedef struct
{
  GatewayShared *shared;
  GatewaySharedPeersFunc func;
  gpointer user_data;
  guint n_blocks;
  guint sample;
} PeersCall;

static void
peers_reply_cb (redisReply *reply,
                gpointer    user_data)
{
  PeersCall *call = user_data;
  g_autoptr(GPtrArray) peers = g_ptr_array_new_with_free_func ((GDestroyNotify) shared_peer_free);
  gboolean ok = reply != NULL && reply->type == REDIS_REPLY_ARRAY;
  /* the script answers pairs, at most the sample asked for: a longer
   * array (a buggy or foreign Redis) costs no more than that */
  size_t n = ok ? MIN (reply->elements, 2 * (size_t) call->sample) : 0;

  if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
    {
      g_message ("Redis refused an announce: %.*s", (int) MIN (reply->len, 200), reply->str);
      /* somebody flushed the scripts: the next announce has them */
      if (g_str_has_prefix (reply->str, "NOSCRIPT"))
        load_scripts (call->shared);
    }
  for (size_t i = 0; i + 1 < n; i += 2)
    {
      redisReply *member = reply->element[i];
      redisReply *holds = reply->element[i + 1];
      GatewayPeerCandidate *peer;

      if (member == NULL || holds == NULL
          || member->type != REDIS_REPLY_STRING || holds->type != REDIS_REPLY_STRING)
        continue;
      peer = g_new0 (GatewayPeerCandidate, 1);
      if (!gateway_shared_decode_have (holds->str, holds->len, call->n_blocks,
                                       &peer->complete, &peer->have))
        peer->have = NULL;
      peer->key = g_strndup (member->str, member->len);
      g_ptr_array_add (peers, peer);
    }
  call->func (ok, peers, call->user_data);
  g_free (call);
}

gboolean
gateway_shared_announce (GatewayShared         *shared,
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
                         gpointer               user_data)
{
  char peers_key[256], have_key[256], ttl[24], max[16], n[16];
  g_autoptr(GBytes) holds = gateway_shared_encode_have (complete, have);
  const char *argv[] = {
    "EVALSHA", shared->announce_sha, "2", peers_key, have_key,
    key, g_bytes_get_data (holds, NULL), ttl, max, stopped ? "1" : "0", n,
  };
  size_t lens[G_N_ELEMENTS (argv)] = { 0, };
  PeersCall *call;

  /* URNs are short (urn:sha256:… in base32): no allocation per announce */
  if ((gsize) g_snprintf (peers_key, sizeof peers_key, PREFIX "peers:%s", urn) >= sizeof peers_key
      || (gsize) g_snprintf (have_key, sizeof have_key, PREFIX "have:%s", urn) >= sizeof have_key)
    return FALSE;
  g_snprintf (ttl, sizeof ttl, "%" G_GUINT64_FORMAT, (guint64) MAX (ttl_s, 1) * 1000);
  g_snprintf (max, sizeof max, "%u", MAX (max_per_urn, 1));
  sample = MIN (sample, GATEWAY_SHARED_MAX_SAMPLE);
  g_snprintf (n, sizeof n, "%u", sample);
  lens[6] = g_bytes_get_size (holds);
  if (lens[6] == 0)
    argv[6] = "";
  call = g_new (PeersCall, 1);
  call->shared = shared;
  call->func = func;
  call->user_data = user_data;
  call->n_blocks = n_blocks;
  call->sample = sample;
  if (!command (shared, peers_reply_cb, call, G_N_ELEMENTS (argv), argv, lens))
    {
      g_free (call);
      return FALSE;
    }
  return TRUE;
}
