/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the gateway's peer table (server/gateway-peers.c): the
 * caps per URN, per address and over all URNs, which entry makes room
 * (the one announced least recently, of the URN or of the table), expiry
 * by the TTL, that URNs without entries leave the table, and the choice
 * among peers sampled elsewhere (a shared store).  Plain state
 * on an injected clock: no sockets, no waiting.
 */
#include "config.h"

#include <gio/gio.h>

#include "alv-ocn-headers.h"
#include "gateway-peers.h"

#define SEC G_USEC_PER_SEC
#define TTL 60

typedef struct
{
  gint64 now;                   /* the table's clock, µs */
} Fixture;

static gint64
fixture_clock (gpointer user_data)
{
  return ((Fixture *) user_data)->now;
}

static char *
urn_of (guint i)
{
  return g_strdup_printf ("urn:tree:sha256:URN%04u", i);
}

static GatewayPeers *
new_peers (Fixture *fx,
           guint    max_per_urn,
           guint    max_per_address,
           guint    max_entries)
{
  GatewayPeers *peers = gateway_peers_new (TTL, max_per_urn, max_per_address, max_entries);

  fx->now = 1000 * SEC;
  gateway_peers_set_clock (peers, fixture_clock, fx);
  gateway_peers_set_seed (peers, 1);
  return peers;
}

/* @ip:@port announces URN @urn (the clock moves on a second first). */
static GatewayPeersStatus
announce (Fixture          *fx,
          GatewayPeers     *peers,
          guint             urn,
          const char       *ip,
          guint16           port,
          GatewayPeerEvent  event)
{
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string (ip);
  g_autofree char *u = urn_of (urn);

  fx->now += SEC;
  return gateway_peers_announce (peers, u, 8, address, port, event, NULL);
}

static int
compare_uint (gconstpointer a,
              gconstpointer b)
{
  guint x = *(const guint *) a, y = *(const guint *) b;

  return (x > y) - (x < y);
}

/* The ports of the entries of URN @urn, as "p1 p2 …" in ascending order. */
static char *
ports_of (GatewayPeers *peers,
          guint         urn)
{
  g_autofree char *u = urn_of (urn);
  g_autoptr(GPtrArray) list = gateway_peers_select (peers, u, NULL, NULL, 1000);
  g_autoptr(GArray) ports = g_array_new (FALSE, FALSE, sizeof (guint));
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < list->len; i++)
    {
      guint port = g_inet_socket_address_get_port (list->pdata[i]);

      g_array_append_val (ports, port);
    }
  g_array_sort (ports, compare_uint);
  for (guint i = 0; i < ports->len; i++)
    g_string_append_printf (out, "%s%u", i > 0 ? " " : "", g_array_index (ports, guint, i));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static void
assert_ports (GatewayPeers *peers,
              guint         urn,
              const char   *expected)
{
  g_autofree char *got = ports_of (peers, urn);

  g_assert_cmpstr (got, ==, expected);
}

/* More URNs than the table holds, announced from as many addresses as it
 * takes: the table never grows past its cap, and what makes room is what
 * was announced least recently, over all URNs. */
static void
test_table_cap (void)
{
  Fixture fx;
  g_autoptr(GatewayPeers) peers = new_peers (&fx, 1000, 1000, 5);

  for (guint u = 0; u < 10; u++)
    for (guint16 port = 1; port <= 2; port++)
      {
        g_autofree char *ip = g_strdup_printf ("10.0.%u.%u", u, port);

        g_assert_cmpint (announce (&fx, peers, u, ip, port, GATEWAY_PEER_EVENT_STARTED), ==,
                         GATEWAY_PEERS_OK);
        g_assert_cmpuint (gateway_peers_get_n_entries (peers), <=, 5);
      }
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 5);
  g_assert_cmpuint (gateway_peers_get_n_evicted (peers), ==, 15);
  g_assert_cmpuint (gateway_peers_get_max_entries (peers), ==, 5);
  /* the last five announces: URN 7 port 2, URNs 8 and 9 both ports */
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 3);
  assert_ports (peers, 6, "");
  assert_ports (peers, 7, "2");
  assert_ports (peers, 8, "1 2");
  assert_ports (peers, 9, "1 2");

  /* an entry announced again goes to the back: the next newcomer makes
   * room with URN 8's first entry, not with URN 7's refreshed one */
  g_assert_cmpint (announce (&fx, peers, 7, "10.0.7.2", 2, GATEWAY_PEER_EVENT_UPDATE), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpuint (gateway_peers_get_n_evicted (peers), ==, 15);
  g_assert_cmpint (announce (&fx, peers, 20, "10.0.20.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 5);
  assert_ports (peers, 7, "2");
  assert_ports (peers, 8, "2");
  assert_ports (peers, 20, "1");

  /* a URN whose last entry makes room leaves the table */
  g_assert_cmpint (announce (&fx, peers, 21, "10.0.21.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 4);
  assert_ports (peers, 8, "");
  g_assert_cmpint (announce (&fx, peers, 22, "10.0.22.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  assert_ports (peers, 9, "2");
  g_assert_cmpint (announce (&fx, peers, 23, "10.0.23.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  assert_ports (peers, 9, "");
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 5);
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 5);
  g_assert_cmpuint (gateway_peers_get_n_evicted (peers), ==, 19);
}

/* A URN's list is full: its own least recently announced entry makes
 * room, whatever the table holds besides. */
static void
test_urn_cap (void)
{
  Fixture fx;
  g_autoptr(GatewayPeers) peers = new_peers (&fx, 3, 1000, 100);

  g_assert_cmpint (announce (&fx, peers, 9, "10.1.0.1", 9, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  for (guint16 port = 1; port <= 3; port++)
    g_assert_cmpint (announce (&fx, peers, 0, "10.0.0.1", port, GATEWAY_PEER_EVENT_STARTED),
                     ==, GATEWAY_PEERS_OK);
  /* port 1 again: refreshed, not added */
  g_assert_cmpint (announce (&fx, peers, 0, "10.0.0.1", 1, GATEWAY_PEER_EVENT_UPDATE), ==,
                   GATEWAY_PEERS_OK);
  assert_ports (peers, 0, "1 2 3");
  g_assert_cmpint (announce (&fx, peers, 0, "10.0.0.1", 4, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  assert_ports (peers, 0, "1 3 4");
  assert_ports (peers, 9, "9");
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 4);
  g_assert_cmpuint (gateway_peers_get_n_evicted (peers), ==, 1);
}

/* The per-address cap refuses instead of evicting, and leaves no empty URN. */
static void
test_address_cap (void)
{
  Fixture fx;
  g_autoptr(GatewayPeers) peers = new_peers (&fx, 1000, 2, 100);

  g_assert_cmpint (announce (&fx, peers, 0, "10.0.0.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpint (announce (&fx, peers, 1, "10.0.0.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpint (announce (&fx, peers, 2, "10.0.0.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_ADDRESS_FULL);
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 2);
  /* leaving makes room again */
  g_assert_cmpint (announce (&fx, peers, 0, "10.0.0.1", 1, GATEWAY_PEER_EVENT_STOPPED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 1);
  g_assert_cmpint (announce (&fx, peers, 2, "10.0.0.1", 1, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 2);
  g_assert_cmpuint (gateway_peers_get_n_evicted (peers), ==, 0);
}

/* Entries expire TTL seconds after their last announce, in the sweep and
 * when their URN is looked at; a URN left empty leaves the table. */
static void
test_expiry (void)
{
  Fixture fx;
  g_autoptr(GatewayPeers) peers = new_peers (&fx, 1000, 1000, 100);

  /* announced at +1 … +4 s; URN 0's first entry again at +5 s */
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *ip = g_strdup_printf ("10.0.0.%u", i + 1);

      g_assert_cmpint (announce (&fx, peers, i / 2, ip, 7000, GATEWAY_PEER_EVENT_STARTED), ==,
                       GATEWAY_PEERS_OK);
    }
  g_assert_cmpint (announce (&fx, peers, 0, "10.0.0.1", 7000, GATEWAY_PEER_EVENT_UPDATE), ==,
                   GATEWAY_PEERS_OK);

  /* at +TTL+2 s the entry announced at +2 s is due (at the instant, not
   * after); the one of +1 s was announced again at +5 s */
  fx.now = 1000 * SEC + (TTL + 2) * SEC;
  g_assert_cmpuint (gateway_peers_expire (peers), ==, 1);
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 3);
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 2);

  /* URN 1's two entries (+3, +4 s) are due at +TTL+4 s: looking at the
   * URN drops them, and the URN */
  fx.now = 1000 * SEC + (TTL + 4) * SEC;
  assert_ports (peers, 1, "");
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 1);
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 1);

  /* and the refreshed one last */
  fx.now = 1000 * SEC + (TTL + 5) * SEC;
  g_assert_cmpuint (gateway_peers_expire (peers), ==, 1);
  g_assert_cmpuint (gateway_peers_get_n_entries (peers), ==, 0);
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 0);
  g_assert_cmpuint (gateway_peers_get_n_evicted (peers), ==, 0);
}

/* A sample from elsewhere (a shared store): keys that are not addresses
 * are left out, at most @max come back, and a peer holding what the asker
 * lacks is favoured over one holding nothing. */
static void
test_choose (void)
{
  Fixture fx;
  g_autoptr(GatewayPeers) peers = new_peers (&fx, 10, 10, 100);
  g_autoptr(GPtrArray) sample = g_ptr_array_new_with_free_func (g_free);
  const char *keys[] = { "127.0.0.1:7001", "[::1]:7002", "bogus", "10.0.0.1:0", "[::1:7003" };
  guint n_full = 0;

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      GatewayPeerCandidate *c = g_new0 (GatewayPeerCandidate, 1);

      c->key = (char *) keys[i];
      c->complete = i == 0;
      g_ptr_array_add (sample, c);
    }
  {
    g_autoptr(GPtrArray) out = gateway_peers_choose (peers, sample, 100, NULL, 10);

    g_assert_cmpuint (out->len, ==, 2);
  }
  /* one of the two valid ones: the complete one weighs 101, the other 1 */
  g_ptr_array_set_size (sample, 2);
  for (guint i = 0; i < 100; i++)
    {
      g_autoptr(GPtrArray) out = gateway_peers_choose (peers, sample, 100, NULL, 1);

      g_assert_cmpuint (out->len, ==, 1);
      if (g_inet_socket_address_get_port (out->pdata[0]) == 7001)
        n_full++;
    }
  g_assert_cmpuint (n_full, >, 80);
  {
    g_autoptr(GPtrArray) empty = g_ptr_array_new ();
    g_autoptr(GPtrArray) out = gateway_peers_choose (peers, empty, 100, NULL, 10);

    g_assert_cmpuint (out->len, ==, 0);
  }
}

/* The source function: a port above 8000 stands for a peer the
 * gateway could not connect back to. */
static gboolean
reachable_key (const char *key,
               gpointer    user_data)
{
  guint *n_asked = user_data;

  (*n_asked)++;
  return !g_str_has_suffix (key, ":8001") && !g_str_has_suffix (key, ":8002");
}

/* A peer known unreachable is never listed, from the table or from a
 * shared sample, even when it alone holds what the asker lacks; the
 * others still are. */
static void
test_unreachable (void)
{
  Fixture fx;
  g_autoptr(GatewayPeers) peers = new_peers (&fx, 100, 100, 100);
  g_autoptr(GPtrArray) sample = g_ptr_array_new_with_free_func (g_free);
  const char *keys[] = { "127.0.0.1:8001", "127.0.0.1:7001", "[::1]:8002" };
  guint n_asked = 0;

  g_assert_cmpint (announce (&fx, peers, 0, "127.0.0.1", 8001, GATEWAY_PEER_EVENT_COMPLETED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpint (announce (&fx, peers, 0, "127.0.0.1", 8002, GATEWAY_PEER_EVENT_COMPLETED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpint (announce (&fx, peers, 0, "127.0.0.1", 7001, GATEWAY_PEER_EVENT_STARTED), ==,
                   GATEWAY_PEERS_OK);
  assert_ports (peers, 0, "7001 8001 8002");
  gateway_peers_set_source_func (peers, reachable_key, &n_asked);
  for (guint i = 0; i < 20; i++)
    assert_ports (peers, 0, "7001");
  g_assert_cmpuint (n_asked, >, 0);

  for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
    {
      GatewayPeerCandidate *c = g_new0 (GatewayPeerCandidate, 1);

      c->key = (char *) keys[i];
      c->complete = i != 1;
      g_ptr_array_add (sample, c);
    }
  for (guint i = 0; i < 20; i++)
    {
      g_autoptr(GPtrArray) out = gateway_peers_choose (peers, sample, 100, NULL, 10);

      g_assert_cmpuint (out->len, ==, 1);
      g_assert_cmpuint (g_inet_socket_address_get_port (out->pdata[0]), ==, 7001);
    }
}

/* Holders of a block, as each last announced: an update replaces what a
 * peer said, a completed peer holds all, the count stops at its
 * maximum, and neither a peer that left, an expired one, nor one the
 * gateway cannot reach counts. */
static void
test_count_holding (void)
{
  Fixture fx;
  g_autoptr(GatewayPeers) peers = new_peers (&fx, 100, 100, 100);
  g_autoptr(GInetAddress) address = g_inet_address_new_from_string ("127.0.0.1");
  g_autofree char *u = urn_of (0);
  guint n_asked = 0;

  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 3, 10), ==, 0);
  for (guint16 port = 7001; port <= 7004; port++)
    {
      AlvBlockMap *have = alv_block_map_new (8);

      alv_block_map_set (have, port == 7004 ? 4 : 3);
      fx.now += SEC;
      g_assert_cmpint (gateway_peers_announce (peers, u, 8, address, port, GATEWAY_PEER_EVENT_STARTED,
                                               have), ==, GATEWAY_PEERS_OK);
    }
  g_assert_cmpint (announce (&fx, peers, 0, "127.0.0.1", 8001, GATEWAY_PEER_EVENT_COMPLETED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 3, 10), ==, 4);
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 3, 2), ==, 2);
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 4, 10), ==, 2);
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 5, 10), ==, 1);
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 8, 10), ==, 0);

  /* 7001 says it holds nothing now; 7002 leaves */
  fx.now += SEC;
  g_assert_cmpint (gateway_peers_announce (peers, u, 8, address, 7001, GATEWAY_PEER_EVENT_UPDATE,
                                           alv_block_map_new (8)), ==, GATEWAY_PEERS_OK);
  g_assert_cmpint (announce (&fx, peers, 0, "127.0.0.1", 7002, GATEWAY_PEER_EVENT_STOPPED), ==,
                   GATEWAY_PEERS_OK);
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 3, 10), ==, 2);
  /* the completed one cannot be reached */
  gateway_peers_set_source_func (peers, reachable_key, &n_asked);
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 3, 10), ==, 1);
  g_assert_cmpuint (n_asked, >, 0);
  /* all expired */
  fx.now += (gint64) TTL * SEC;
  g_assert_cmpuint (gateway_peers_count_holding (peers, u, 3, 10), ==, 0);
  g_assert_cmpuint (gateway_peers_get_n_urns (peers), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/server/gateway-peers/table-cap", test_table_cap);
  g_test_add_func ("/server/gateway-peers/urn-cap", test_urn_cap);
  g_test_add_func ("/server/gateway-peers/address-cap", test_address_cap);
  g_test_add_func ("/server/gateway-peers/expiry", test_expiry);
  g_test_add_func ("/server/gateway-peers/choose", test_choose);
  g_test_add_func ("/server/gateway-peers/unreachable", test_unreachable);
  g_test_add_func ("/server/gateway-peers/count-holding", test_count_holding);

  return g_test_run ();
}
