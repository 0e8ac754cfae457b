/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The player's video window: one plain X11 window (no toolkit) that the
 * video sink draws into through GstVideoOverlay.  It is opened when the
 * first picture is about to be shown (an audio-only station opens none),
 * kept for the player's life (item changes and reconnects draw into the
 * same window), titled with what is playing, and closing it (the window
 * manager's close button, or the window destroyed) calls back so that the
 * player quits.  Without X11 at build time, or without a display, the
 * video sink opens a window of its own.
 */
#pragma once

#include <glib.h>
#include <gst/gst.h>

G_BEGIN_DECLS

typedef struct _PlayerWindow PlayerWindow;

typedef void (*PlayerWindowClosedFunc) (gpointer user_data);

PlayerWindow *player_window_new          (PlayerWindowClosedFunc  closed,
                                          gpointer                user_data);
void          player_window_free         (PlayerWindow           *window);
gboolean      player_window_handle_sync  (PlayerWindow           *window,
                                          GstMessage             *message);
void          player_window_set_title    (PlayerWindow           *window,
                                          const char             *title);
char         *player_window_format_title (const char             *station,
                                          const char             *item);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (PlayerWindow, player_window_free)

G_END_DECLS
