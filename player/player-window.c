/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The video window (see player-window.h).  The video sink asks for a
 * window from its streaming thread (the prepare-window-handle message, on
 * the bus's sync handler); the window is created there, under the lock,
 * on the player's own X connection (Xlib made thread-safe first).  X
 * events are read on the main loop from the connection's descriptor:
 * WM_DELETE_WINDOW or the window's destruction mean "closed", exposure
 * and resizing ask the sink to draw again.  An X error (a sink drawing
 * into a window destroyed under it) is logged instead of ending the
 * process, as Xlib's default handler would.
 */
#define G_LOG_DOMAIN "alluvium-player"
#include "config.h"

#include "player-window.h"

#include <string.h>

#ifdef HAVE_X11
#include <glib-unix.h>
#include <gst/video/video.h>
#include <gst/video/videooverlay.h>
#include <X11/Xlib.h>
#include <X11/Xutil.h>
#include <X11/Xatom.h>
#endif

/* when the sink's caps are not known yet */
#define DEFAULT_WIDTH 640
#define DEFAULT_HEIGHT 360

struct _PlayerWindow
{
  PlayerWindowClosedFunc closed;
  gpointer user_data;
  GMutex lock;              /* guards what the streaming thread touches */
  char *title;
#ifdef HAVE_X11
  Display *display;
  Window xwindow;
  Atom wm_delete;
  Atom wm_protocols;
  Atom net_wm_name;
  Atom utf8_string;
  GstElement *overlay;      /* the sink drawing into the window */
  guint watch_id;
  gboolean closed_called;
#endif
};

#ifdef HAVE_X11

static int
on_x_error (Display     *display,
            XErrorEvent *event)
{
  char text[128] = "";

  XGetErrorText (display, event->error_code, text, sizeof text);
  g_debug ("X error ignored: %s (request %u)", text, event->request_code);
  return 0;
}

/* Called with the lock held. */
static void
apply_title (PlayerWindow *window)
{
  const char *title = window->title != NULL ? window->title : "Alluvium";

  if (window->xwindow == 0)
    return;
  XStoreName (window->display, window->xwindow, title);
  XChangeProperty (window->display, window->xwindow, window->net_wm_name, window->utf8_string, 8,
                   PropModeReplace, (const unsigned char *) title, (int) strlen (title));
  XFlush (window->display);
}

static void
report_closed (PlayerWindow *window)
{
  if (window->closed_called)
    return;
  window->closed_called = TRUE;
  window->closed (window->user_data);
}

static gboolean
on_x_events (gint         fd G_GNUC_UNUSED,
             GIOCondition condition G_GNUC_UNUSED,
             gpointer     user_data)
{
  PlayerWindow *window = user_data;

  while (XPending (window->display) > 0)
    {
      XEvent event;
      g_autoptr(GstElement) overlay = NULL;
      gboolean closed = FALSE;

      XNextEvent (window->display, &event);
      g_mutex_lock (&window->lock);
      if (window->overlay != NULL)
        overlay = gst_object_ref (window->overlay);
      switch (event.type)
        {
        case ClientMessage:
          closed = event.xclient.message_type == window->wm_protocols
                   && (Atom) event.xclient.data.l[0] == window->wm_delete;
          break;
        case DestroyNotify:
          if (event.xdestroywindow.window == window->xwindow)
            {
              window->xwindow = 0;
              closed = TRUE;
            }
          break;
        default:
          break;
        }
      g_mutex_unlock (&window->lock);
      if (closed)
        report_closed (window);
      else if ((event.type == Expose || event.type == ConfigureNotify) && overlay != NULL)
        gst_video_overlay_expose (GST_VIDEO_OVERLAY (overlay));
    }
  return G_SOURCE_CONTINUE;
}

/* The size of the pictures @sink is about to show, if it knows. */
static void
picture_size (GstElement *sink,
              int        *width,
              int        *height)
{
  g_autoptr(GstPad) pad = gst_element_get_static_pad (sink, "sink");
  g_autoptr(GstCaps) caps = pad != NULL ? gst_pad_get_current_caps (pad) : NULL;
  GstVideoInfo info;

  *width = DEFAULT_WIDTH;
  *height = DEFAULT_HEIGHT;
  if (caps != NULL && gst_video_info_from_caps (&info, caps) && info.width > 0 && info.height > 0)
    {
      *width = MIN (info.width, 4096);
      *height = MIN (info.height, 4096);
    }
}

/* Called with the lock held, from the streaming thread. */
static gboolean
ensure_window (PlayerWindow *window,
               int           width,
               int           height)
{
  int screen;
  XClassHint class_hint = { (char *) "alluvium-player", (char *) "Alluvium" };

  if (window->xwindow != 0)
    return TRUE;
  if (window->display == NULL || window->closed_called)
    return FALSE;
  screen = DefaultScreen (window->display);
  window->xwindow = XCreateSimpleWindow (window->display, RootWindow (window->display, screen),
                                         0, 0, (unsigned) width, (unsigned) height, 0,
                                         BlackPixel (window->display, screen),
                                         BlackPixel (window->display, screen));
  XSelectInput (window->display, window->xwindow, StructureNotifyMask | ExposureMask);
  XSetWMProtocols (window->display, window->xwindow, &window->wm_delete, 1);
  XSetClassHint (window->display, window->xwindow, &class_hint);
  apply_title (window);
  XMapRaised (window->display, window->xwindow);
  XSync (window->display, False);
  g_debug ("video window 0x%lx, %d×%d", (unsigned long) window->xwindow, width, height);
  return TRUE;
}

#endif /* HAVE_X11 */

/**
 * player_window_new:
 * @closed: called (on the main context) when the user closes the window
 * @user_data: for @closed
 *
 * Connects to the X display ($DISPLAY) if there is one; no window is
 * opened yet.
 *
 * Returns: (transfer full): the window keeper
 */
PlayerWindow *
player_window_new (PlayerWindowClosedFunc closed,
                   gpointer               user_data)
{
  PlayerWindow *window = g_new0 (PlayerWindow, 1);

  window->closed = closed;
  window->user_data = user_data;
  g_mutex_init (&window->lock);
#ifdef HAVE_X11
  if (g_getenv ("DISPLAY") != NULL && XInitThreads () != 0)
    window->display = XOpenDisplay (NULL);
  if (window->display != NULL)
    {
      XSetErrorHandler (on_x_error);
      window->wm_delete = XInternAtom (window->display, "WM_DELETE_WINDOW", False);
      window->wm_protocols = XInternAtom (window->display, "WM_PROTOCOLS", False);
      window->net_wm_name = XInternAtom (window->display, "_NET_WM_NAME", False);
      window->utf8_string = XInternAtom (window->display, "UTF8_STRING", False);
      window->watch_id = g_unix_fd_add (ConnectionNumber (window->display), G_IO_IN, on_x_events, window);
    }
#endif
  return window;
}

void
player_window_free (PlayerWindow *window)
{
  if (window == NULL)
    return;
#ifdef HAVE_X11
  g_clear_handle_id (&window->watch_id, g_source_remove);
  gst_clear_object (&window->overlay);
  if (window->display != NULL)
    {
      if (window->xwindow != 0)
        XDestroyWindow (window->display, window->xwindow);
      XCloseDisplay (window->display);
    }
#endif
  g_mutex_clear (&window->lock);
  g_free (window->title);
  g_free (window);
}

/**
 * player_window_handle_sync:
 * @window: the window keeper
 * @message: a message from the playbin's bus, in its sync handler
 *
 * Gives a video sink that asks for a window (prepare-window-handle) the
 * player's window, opening it the first time.
 *
 * Returns: %TRUE if @message was that request and has been answered (drop
 *   it), %FALSE otherwise (the sink then opens its own window)
 */
gboolean
player_window_handle_sync (PlayerWindow *window,
                           GstMessage   *message)
{
#ifdef HAVE_X11
  GstElement *sink;
  int width, height;
  guintptr handle = 0;

  g_return_val_if_fail (window != NULL, FALSE);
  if (!gst_is_video_overlay_prepare_window_handle_message (message))
    return FALSE;
  sink = GST_ELEMENT (GST_MESSAGE_SRC (message));
  if (!GST_IS_VIDEO_OVERLAY (sink))
    return FALSE;
  picture_size (sink, &width, &height);
  g_mutex_lock (&window->lock);
  if (ensure_window (window, width, height))
    {
      handle = (guintptr) window->xwindow;
      gst_object_replace ((GstObject **) &window->overlay, GST_OBJECT (sink));
    }
  g_mutex_unlock (&window->lock);
  if (handle == 0)
    return FALSE;
  gst_video_overlay_set_window_handle (GST_VIDEO_OVERLAY (sink), handle);
  return TRUE;
#else
  (void) window;
  (void) message;
  return FALSE;
#endif
}

/**
 * player_window_set_title:
 * @window: the window keeper
 * @title: (nullable): what the window's title bar shows
 *
 * Sets the title now if the window is open, else when it opens.
 */
void
player_window_set_title (PlayerWindow *window,
                         const char   *title)
{
  g_return_if_fail (window != NULL);

  g_mutex_lock (&window->lock);
  if (g_strcmp0 (window->title, title) != 0)
    {
      g_free (window->title);
      window->title = g_strdup (title);
#ifdef HAVE_X11
      apply_title (window);
#endif
    }
  g_mutex_unlock (&window->lock);
}

/**
 * player_window_format_title:
 * @station: (nullable): the station's name
 * @item: (nullable): the title of the item now playing
 *
 * The window title: "Item — Station", either alone when the other is
 * unknown (empty counts as unknown), "Alluvium" when both are.
 *
 * Returns: (transfer full): the title
 */
char *
player_window_format_title (const char *station,
                            const char *item)
{
  gboolean have_station = station != NULL && station[0] != '\0';
  gboolean have_item = item != NULL && item[0] != '\0';

  if (have_station && have_item)
    return g_strdup_printf ("%s — %s", item, station);
  if (have_item)
    return g_strdup (item);
  if (have_station)
    return g_strdup (station);
  return g_strdup ("Alluvium");
}
