/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * D-Bus glue shared by alluvium-core and its clients: well-known names and
 * object paths, the typed errors of org.alluvium.Core1 (mapped to D-Bus error
 * names so a client gets the same GError domain and code back), and the
 * generated AlvCore1 proxy/skeleton (from data/org.alluvium.Core1.xml).
 */
#pragma once

#include <gio/gio.h>

#include "alv-dbus-core.h"

G_BEGIN_DECLS

#define ALV_CORE_BUS_NAME    "org.alluvium.Core1"
#define ALV_CORE_OBJECT_PATH "/org/alluvium/Core1"

/**
 * AlvCoreError:
 * @ALV_CORE_ERROR_FAILED: anything not covered below
 * @ALV_CORE_ERROR_INVALID_URL: the playlist URL is not an absolute http(s) URL
 * @ALV_CORE_ERROR_PLAYLIST_UNREACHABLE: the playlist could not be fetched
 * @ALV_CORE_ERROR_PLAYLIST_INVALID: the playlist was fetched but refused
 * @ALV_CORE_ERROR_NOT_TUNED: the call needs a tuned station
 *
 * Errors returned by org.alluvium.Core1; on the bus they are named
 * `org.alluvium.Core1.Error.<Name>`.
 */
typedef enum
{
  ALV_CORE_ERROR_FAILED,
  ALV_CORE_ERROR_INVALID_URL,
  ALV_CORE_ERROR_PLAYLIST_UNREACHABLE,
  ALV_CORE_ERROR_PLAYLIST_INVALID,
  ALV_CORE_ERROR_NOT_TUNED,
} AlvCoreError;

#define ALV_CORE_N_ERRORS (ALV_CORE_ERROR_NOT_TUNED + 1)

#define ALV_CORE_ERROR (alv_core_error_quark ())
GQuark alv_core_error_quark (void);

/**
 * AlvCoreState:
 *
 * The values of the Core1 `State` property.
 */
typedef enum
{
  ALV_CORE_STATE_IDLE,
  ALV_CORE_STATE_RESOLVING,
  ALV_CORE_STATE_BUFFERING,
  ALV_CORE_STATE_PLAYING,
  ALV_CORE_STATE_GAP,
  ALV_CORE_STATE_ERROR,
} AlvCoreState;

const char *alv_core_state_to_string (AlvCoreState state);
gboolean alv_core_state_from_string (const char *text, AlvCoreState *state_out);

G_END_DECLS
