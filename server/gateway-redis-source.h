/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A GSource that drives one hiredis asynchronous context from the GLib
 * main loop: it watches the context's socket for what hiredis asks for
 * (reading, writing) and lets hiredis read or write when the socket is
 * ready, so no Redis command ever blocks the loop.
 */
#pragma once

#include <glib.h>
#include <hiredis/async.h>

G_BEGIN_DECLS

/* Hooks @ac's event callbacks to a new source attached to the thread-
 * default main context.  The source lives as long as @ac: hiredis's
 * cleanup hook destroys it.  Call before redisAsyncSetConnectCallback()
 * (which asks for the first write event). */
void gateway_redis_source_attach (redisAsyncContext *ac);

G_END_DECLS
