/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A private D-Bus session bus for one test: a dbus-daemon of its own,
 * its address read from the daemon's stdout.  GTestDBus is not used
 * because, with GLib 2.74, the descriptor it asks dbus-daemon to print the
 * address on is sometimes not inherited (which one depends on the
 * descriptors the test happens to have open, as under `make distcheck`),
 * and g_test_dbus_up() then waits forever.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _TestBus TestBus;

/* Starts the daemon; @service_dir (may be NULL) is searched for D-Bus
 * activation files.  Fails the test if the daemon does not come up.  Sets
 * DBUS_SESSION_BUS_ADDRESS to it, as GTestDBus does. */
TestBus    *test_bus_up          (const char *service_dir);
const char *test_bus_get_address (TestBus    *bus);
/* Stops the daemon and removes its files. */
void        test_bus_down        (TestBus    *bus);

G_END_DECLS
