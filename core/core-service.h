/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The org.alluvium.Core1 service of alluvium-core: the Tune/Stop state
 * machine (its configuration is core-config.h's), the properties
 * exported on the bus, the local stream it feeds, and the idle timer that
 * lets an activated daemon exit when nothing is tuned.
 */
#pragma once

#include <gio/gio.h>

#include "core-config.h"

G_BEGIN_DECLS

#define CORE_TYPE_SERVICE (core_service_get_type ())
G_DECLARE_FINAL_TYPE (CoreService, core_service, CORE, SERVICE, GObject)

CoreService *core_service_new      (const CoreConfig *config);
gboolean     core_service_export   (CoreService      *service,
                                    GDBusConnection  *connection,
                                    GError          **error);
void         core_service_unexport (CoreService      *service);
/* Removes the peer port's mapping from the router (bounded: a few
 * seconds at most), before the daemon exits. */
void         core_service_release_async  (CoreService         *service,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data);
void         core_service_release_finish (CoreService         *service,
                                          GAsyncResult        *result);

G_END_DECLS
