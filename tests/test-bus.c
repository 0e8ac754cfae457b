/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A private D-Bus session bus for one test; see test-bus.h.
 */

#include "config.h"

#include "test-bus.h"
#include "test-util.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>

struct _TestBus
{
  GSubprocess *daemon;
  char *dir;
  char *config;
  char *address;
};

TestBus *
test_bus_up (const char *service_dir)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *config_arg = NULL;
  g_autofree char *text = NULL;
  g_autofree char *services = NULL;
  TestBus *bus = g_new0 (TestBus, 1);
  char *sep;

  bus->dir = g_dir_make_tmp ("alluvium-bus-XXXXXX", &error);
  g_assert_no_error (error);
  bus->config = g_build_filename (bus->dir, "session.conf", NULL);
  if (service_dir != NULL)
    {
      g_autofree char *escaped = g_markup_escape_text (service_dir, -1);

      services = g_strdup_printf ("  <servicedir>%s</servicedir>\n", escaped);
    }
  text = g_strdup_printf ("<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                          " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                          "<busconfig>\n"
                          "  <type>session</type>\n"
                          "  <listen>unix:dir=%s</listen>\n"
                          "%s"
                          "  <policy context=\"default\">\n"
                          "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
                          "    <allow eavesdrop=\"true\"/>\n"
                          "    <allow own=\"*\"/>\n"
                          "  </policy>\n"
                          "</busconfig>\n",
                          bus->dir, services != NULL ? services : "");
  g_file_set_contents (bus->config, text, -1, &error);
  g_assert_no_error (error);

  config_arg = g_strconcat ("--config-file=", bus->config, NULL);
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  bus->daemon = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", "--nofork",
                                             "--print-address=1", config_arg, NULL);
  g_assert_no_error (error);

  /* dbus-daemon prints the address once it accepts connections, and
   * closes the pipe (EOF here) if it fails */
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus->daemon));
  bus->address = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  if (bus->address == NULL || *bus->address == '\0')
    g_error ("dbus-daemon did not start (see its messages above)");
  if ((sep = strchr (bus->address, '\n')) != NULL)
    *sep = '\0';
  /* like GTestDBus: children and g_bus_get() in the test find it */
  g_setenv ("DBUS_SESSION_BUS_ADDRESS", bus->address, TRUE);
  g_unsetenv ("DBUS_STARTER_ADDRESS");
  g_unsetenv ("DBUS_STARTER_BUS_TYPE");
  return bus;
}

const char *
test_bus_get_address (TestBus *bus)
{
  return bus->address;
}

void
test_bus_down (TestBus *bus)
{
  g_autoptr(GDir) dir = NULL;
  const char *name;

  if (bus == NULL)
    return;
  if (g_strcmp0 (g_getenv ("DBUS_SESSION_BUS_ADDRESS"), bus->address) == 0)
    g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_subprocess_send_signal (bus->daemon, SIGTERM);
  g_subprocess_wait (bus->daemon, NULL, NULL);
  g_object_unref (bus->daemon);
  dir = g_dir_open (bus->dir, 0, NULL);
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (bus->dir, name, NULL);

      g_unlink (path);
    }
  g_rmdir (bus->dir);
  g_free (bus->dir);
  g_free (bus->config);
  g_free (bus->address);
  g_free (bus);
}
