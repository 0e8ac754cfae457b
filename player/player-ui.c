/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Terminal output and key input of alluvium-player.  On a terminal the
 * status line is rewritten in place with a carriage return and an
 * erase-to-end-of-line, cut to the terminal width; messages first clear it,
 * print, and let the next update redraw it.  Off a terminal (a log, a pipe,
 * a test) a line is printed only when what it says changes, without the
 * running clock, so logs stay short.  Keys are read from stdin in
 * non-canonical, no-echo mode; ISIG stays on so Ctrl-C still raises SIGINT,
 * which main() turns into a clean exit that ends up in player_ui_free().
 */
#define G_LOG_DOMAIN "alluvium-player"
#include "config.h"

#include "player-ui.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gi18n-lib.h>

struct _PlayerUi
{
  gboolean tty_out;
  gboolean raw;
  guint stdin_id;
  PlayerUiKeyFunc key_func;
  gpointer user_data;
  char *last_log;          /* off a terminal: the last line printed */
  gboolean line_shown;     /* on a terminal: a status line is on screen */
};

/* the saved terminal mode, for the atexit() safety net */
static struct termios saved_termios;
static gboolean termios_saved;

static void
restore_terminal (void)
{
  if (termios_saved)
    {
      tcsetattr (STDIN_FILENO, TCSANOW, &saved_termios);
      termios_saved = FALSE;
    }
}

static gboolean
on_stdin (int fd, GIOCondition condition, gpointer user_data)
{
  PlayerUi *ui = user_data;
  char buf[64];
  gssize n;

  if (condition & (G_IO_HUP | G_IO_ERR))
    {
      ui->stdin_id = 0;
      return G_SOURCE_REMOVE;
    }
  n = read (fd, buf, sizeof buf);
  if (n <= 0)
    {
      ui->stdin_id = 0;
      return G_SOURCE_REMOVE;
    }
  for (gssize i = 0; i < n; i++)
    {
      /* skip escape sequences (arrow keys and the like) whole */
      if (buf[i] == '\033')
        break;
      if (ui->key_func != NULL)
        ui->key_func ((unsigned char) buf[i], ui->user_data);
    }
  return G_SOURCE_CONTINUE;
}

/**
 * player_ui_new:
 * @key_func: (nullable): called with each key pressed (stdin a terminal only)
 * @user_data: data for @key_func
 *
 * Sets the terminal up: raw key input when stdin is a terminal.
 *
 * Returns: (transfer full): the UI, freed with player_ui_free()
 */
PlayerUi *
player_ui_new (PlayerUiKeyFunc key_func, gpointer user_data)
{
  PlayerUi *ui = g_new0 (PlayerUi, 1);

  ui->tty_out = isatty (STDOUT_FILENO);
  ui->key_func = key_func;
  ui->user_data = user_data;
  if (key_func != NULL && isatty (STDIN_FILENO) && tcgetattr (STDIN_FILENO, &saved_termios) == 0)
    {
      struct termios raw = saved_termios;

      termios_saved = TRUE;
      atexit (restore_terminal);
      raw.c_lflag &= ~(ICANON | ECHO);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      if (tcsetattr (STDIN_FILENO, TCSANOW, &raw) == 0)
        {
          ui->raw = TRUE;
          ui->stdin_id = g_unix_fd_add (STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, ui);
        }
    }
  return ui;
}

static void
clear_line (PlayerUi *ui)
{
  if (ui->tty_out && ui->line_shown)
    {
      fputs ("\r\033[K", stdout);
      ui->line_shown = FALSE;
    }
}

/**
 * player_ui_free:
 * @ui: (transfer full): the UI
 *
 * Ends the status line and restores the terminal mode.
 */
void
player_ui_free (PlayerUi *ui)
{
  if (ui == NULL)
    return;
  g_clear_handle_id (&ui->stdin_id, g_source_remove);
  if (ui->tty_out && ui->line_shown)
    fputs ("\n", stdout);
  fflush (stdout);
  if (ui->raw)
    restore_terminal ();
  g_free (ui->last_log);
  g_free (ui);
}

/**
 * player_ui_is_tty:
 * @ui: the UI
 *
 * Returns: whether the status line is redrawn in place
 */
gboolean
player_ui_is_tty (PlayerUi *ui)
{
  return ui->tty_out;
}

static char *
format_time (gint64 us)
{
  gint64 s = us / G_USEC_PER_SEC;

  if (s >= 3600)
    return g_strdup_printf ("%" G_GINT64_FORMAT ":%02d:%02d", s / 3600, (int) (s / 60 % 60), (int) (s % 60));
  return g_strdup_printf ("%02d:%02d", (int) (s / 60), (int) (s % 60));
}

/**
 * player_ui_format_sharing:
 * @reachable: (nullable): the core's peer-port-reachable
 * @mapping: (nullable): the core's peer-port-mapping
 *
 * Whether this listener shares with others, as the status line says it:
 * not when the gateway could not reach its peer port; yes, and how, when
 * the router mapped the port or the gateway reached it.
 *
 * Returns: (transfer full) (nullable): the text, or %NULL while nothing
 *   is known
 */
char *
player_ui_format_sharing (const char *reachable,
                          const char *mapping)
{
  const char *how = NULL;

  if (g_strcmp0 (mapping, "upnp") == 0)
    how = "UPnP";
  else if (g_strcmp0 (mapping, "natpmp") == 0)
    how = "NAT-PMP";
  else if (g_strcmp0 (mapping, "pcp") == 0)
    how = "PCP";
  if (g_strcmp0 (reachable, "no") == 0)
    return g_strdup (_("sharing: no — peers cannot reach you"));
  if (how != NULL)
    /* TRANSLATORS: %s is how the router forwards the port: UPnP, NAT-PMP or PCP */
    return g_strdup_printf (_("sharing: yes (%s)"), how);
  if (g_strcmp0 (reachable, "yes") == 0)
    return g_strdup (_("sharing: yes"));
  return NULL;
}

/**
 * player_ui_format_status:
 * @status: what to show
 * @with_position: whether to include what changes every second (the
 *   running time into the item, active peers, rates): on a terminal,
 *   not in a log
 *
 * Returns: (transfer full): the status as one line of text
 */
char *
player_ui_format_status (const PlayerUiStatus *status, gboolean with_position)
{
  GString *line = g_string_new (NULL);

  if (status->station != NULL && status->station[0] != '\0')
    g_string_append_printf (line, "%s | ", status->station);
  if (status->title != NULL && status->title[0] != '\0')
    {
      g_string_append (line, status->title);
      if (status->creator != NULL && status->creator[0] != '\0')
        /* TRANSLATORS: title “by” creator */
        g_string_append_printf (line, _(" by %s"), status->creator);
    }
  else
    g_string_append (line, _("(no item)"));
  if (with_position && status->position_us >= 0)
    {
      g_autofree char *t = format_time (status->position_us);

      if (status->length_us > 0)
        {
          g_autofree char *l = format_time (status->length_us);

          g_string_append_printf (line, " [%s / %s]", t, l);
        }
      else
        g_string_append_printf (line, " [%s]", t);
    }
  if (status->state != NULL)
    g_string_append_printf (line, " | %s", status->state);
  if (status->buffering >= 0)
    /* TRANSLATORS: the buffering percentage; keep the %% */
    g_string_append_printf (line, _(", buffering %d%%"), status->buffering);
  {
    /* TRANSLATORS: number of peers known for the item playing */
    g_autofree char *peers = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u peer", "%u peers",
                                                           status->peers),
                                              status->peers);

    g_string_append_printf (line, " | %s", peers);
    if (with_position && status->peers_active >= 0)
      /* TRANSLATORS: of the peers known, how many we exchange blocks with now */
      g_string_append_printf (line, _(" (%d active)"), status->peers_active);
  }
  if (with_position && status->down_rate >= 0 && status->up_rate >= 0)
    {
      g_autofree char *down = g_format_size ((guint64) status->down_rate);
      g_autofree char *up = g_format_size ((guint64) status->up_rate);

      /* TRANSLATORS: download and upload rates, as a BitTorrent client shows them */
      g_string_append_printf (line, _(" | down %s/s, up %s/s"), down, up);
    }
  if (status->peer_share >= 0)
    /* TRANSLATORS: share of the item's bytes that came from peers; keep the %% */
    g_string_append_printf (line, _(", %d%% from peers"), (int) (status->peer_share * 100 + 0.5));
  {
    g_autofree char *sharing = player_ui_format_sharing (status->reachable, status->mapping);

    if (sharing != NULL)
      g_string_append_printf (line, " | %s", sharing);
  }
  /* TRANSLATORS: output volume; keep the %% */
  g_string_append_printf (line, _(" | volume %d%%"), (int) (status->volume * 100 + 0.5));
  return g_string_free (line, FALSE);
}

static guint
terminal_width (void)
{
  struct winsize ws;

  if (ioctl (STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 80;
}

/**
 * player_ui_update:
 * @ui: the UI
 * @status: what to show
 *
 * Redraws the status line (terminal) or prints it if it changed (log).
 */
void
player_ui_update (PlayerUi *ui, const PlayerUiStatus *status)
{
  if (ui->tty_out)
    {
      g_autofree char *line = player_ui_format_status (status, TRUE);
      guint width = terminal_width ();

      if (width > 1 && g_utf8_strlen (line, -1) >= width)
        {
          char *end = g_utf8_offset_to_pointer (line, width - 1);

          *end = '\0';
        }
      fprintf (stdout, "\r%s\033[K", line);
      fflush (stdout);
      ui->line_shown = TRUE;
    }
  else
    {
      g_autofree char *line = player_ui_format_status (status, FALSE);

      if (g_strcmp0 (line, ui->last_log) != 0)
        {
          fprintf (stdout, "%s\n", line);
          fflush (stdout);
          g_free (ui->last_log);
          ui->last_log = g_steal_pointer (&line);
        }
    }
}

static void
print_above (PlayerUi *ui, FILE *stream, const char *format, va_list args) G_GNUC_PRINTF (3, 0);

static void
print_above (PlayerUi *ui, FILE *stream, const char *format, va_list args)
{
  g_autofree char *text = g_strdup_vprintf (format, args);

  clear_line (ui);
  fflush (stdout);
  fprintf (stream, "%s\n", text);
  fflush (stream);
  /* off a terminal the next status line is worth repeating after a message */
  g_clear_pointer (&ui->last_log, g_free);
}

/**
 * player_ui_message:
 * @ui: the UI
 * @format: printf() format
 * @...: arguments
 *
 * Prints a line on stdout above the status line.
 */
void
player_ui_message (PlayerUi *ui, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  print_above (ui, stdout, format, args);
  va_end (args);
}

/**
 * player_ui_error:
 * @ui: the UI
 * @format: printf() format
 * @...: arguments
 *
 * Prints a line on stderr above the status line.
 */
void
player_ui_error (PlayerUi *ui, const char *format, ...)
{
  va_list args;

  va_start (args, format);
  print_above (ui, stderr, format, args);
  va_end (args);
}
