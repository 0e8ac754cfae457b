/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The player's status line: what a listener sees of the item playing and
 * its swarm, on a terminal (everything) and in a log (only what does not
 * change every second, so the log gets a line per change, not per
 * second).
 */
#include "config.h"

#include <locale.h>
#include <string.h>

#include <glib.h>

#include "player-ui.h"

static PlayerUiStatus
busy_status (void)
{
  PlayerUiStatus st = { 0 };

  st.station = "Radio Example";
  st.title = "Morning Tones";
  st.creator = "The Larks";
  st.position_us = 4 * G_USEC_PER_SEC + 300000;
  st.length_us = 30 * G_USEC_PER_SEC;
  st.buffering = -1;
  st.state = "Playing";
  st.peers = 5;
  st.peers_active = 2;
  st.down_rate = 48000;
  st.up_rate = 32000;
  st.peer_share = 0.75;
  st.volume = 0.5;
  return st;
}

static void
test_terminal (void)
{
  PlayerUiStatus st = busy_status ();
  g_autofree char *line = player_ui_format_status (&st, TRUE);

  /* (g_format_size() puts a no-break space before the unit) */
  g_assert_cmpstr (line, ==, "Radio Example | Morning Tones by The Larks [00:04 / 00:30] | Playing"
                             " | 5 peers (2 active) | down 48.0\xc2\xa0kB/s, up 32.0\xc2\xa0kB/s, 75% from peers"
                             " | volume 50%");
}

static void
test_log (void)
{
  PlayerUiStatus st = busy_status ();
  g_autofree char *line = player_ui_format_status (&st, FALSE);
  g_autofree char *again = NULL;

  g_assert_cmpstr (line, ==, "Radio Example | Morning Tones by The Larks | Playing | 5 peers"
                             ", 75% from peers | volume 50%");
  /* a second later: other rates, other peers active, the same line */
  st.down_rate = 51000;
  st.peers_active = 3;
  st.position_us += G_USEC_PER_SEC;
  again = player_ui_format_status (&st, FALSE);
  g_assert_cmpstr (again, ==, line);
}

static void
test_unknown (void)
{
  PlayerUiStatus st = { 0 };
  g_autofree char *line = NULL;

  st.position_us = -1;
  st.length_us = -1;
  st.buffering = 40;
  st.state = "Buffering…";
  st.peers_active = -1;
  st.down_rate = st.up_rate = -1;
  st.peer_share = -1;
  st.volume = 1.0;
  line = player_ui_format_status (&st, TRUE);
  g_assert_cmpstr (line, ==, "(no item) | Buffering…, buffering 40% | 0 peers | volume 100%");
}

/* Whether the listener shares: the gateway's verdict first, then the
 * router's mapping. */
static void
test_sharing (void)
{
  static const struct { const char *reachable, *mapping, *text; } cases[] = {
    { "yes", "upnp", "sharing: yes (UPnP)" },
    { "unknown", "upnp", "sharing: yes (UPnP)" },
    { "unknown", "natpmp", "sharing: yes (NAT-PMP)" },
    { NULL, "pcp", "sharing: yes (PCP)" },
    { "yes", "none", "sharing: yes" },
    { "yes", NULL, "sharing: yes" },
    { "no", "none", "sharing: no — peers cannot reach you" },
    { "no", "upnp", "sharing: no — peers cannot reach you" },
    { "unknown", "none", NULL },
    { NULL, NULL, NULL },
  };
  PlayerUiStatus st = busy_status ();
  g_autofree char *line = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *text = player_ui_format_sharing (cases[i].reachable, cases[i].mapping);

      g_assert_cmpstr (text, ==, cases[i].text);
    }
  st.reachable = "yes";
  st.mapping = "upnp";
  line = player_ui_format_status (&st, FALSE);
  g_assert_cmpstr (line, ==, "Radio Example | Morning Tones by The Larks | Playing | 5 peers"
                             ", 75% from peers | sharing: yes (UPnP) | volume 50%");
}

int
main (int argc, char **argv)
{
  /* untranslated: the test reads the English line */
  g_setenv ("LANGUAGE", "C", TRUE);
  setlocale (LC_ALL, "C.UTF-8");
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/player/ui/terminal", test_terminal);
  g_test_add_func ("/player/ui/log", test_log);
  g_test_add_func ("/player/ui/unknown", test_unknown);
  g_test_add_func ("/player/ui/sharing", test_sharing);
  return g_test_run ();
}
