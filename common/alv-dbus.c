/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The typed errors and state names of org.alluvium.Core1.  The error domain
 * is registered with GDBus so that an error raised by the core arrives in a
 * client as the same (domain, code) pair, not as a generic remote error.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-dbus.h"

#include <string.h>

static const GDBusErrorEntry core_error_entries[] = {
  { ALV_CORE_ERROR_FAILED, "org.alluvium.Core1.Error.Failed" },
  { ALV_CORE_ERROR_INVALID_URL, "org.alluvium.Core1.Error.InvalidUrl" },
  { ALV_CORE_ERROR_PLAYLIST_UNREACHABLE, "org.alluvium.Core1.Error.PlaylistUnreachable" },
  { ALV_CORE_ERROR_PLAYLIST_INVALID, "org.alluvium.Core1.Error.PlaylistInvalid" },
  { ALV_CORE_ERROR_NOT_TUNED, "org.alluvium.Core1.Error.NotTuned" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (core_error_entries) == ALV_CORE_N_ERRORS);

/**
 * alv_core_error_quark:
 *
 * Returns: the error domain of org.alluvium.Core1, registered with GDBus
 */
GQuark
alv_core_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("alv-core-error-quark", &quark,
                                      core_error_entries,
                                      G_N_ELEMENTS (core_error_entries));
  return (GQuark) quark;
}

static const char *const state_names[] = {
  [ALV_CORE_STATE_IDLE] = "idle",
  [ALV_CORE_STATE_RESOLVING] = "resolving",
  [ALV_CORE_STATE_BUFFERING] = "buffering",
  [ALV_CORE_STATE_PLAYING] = "playing",
  [ALV_CORE_STATE_GAP] = "gap",
  [ALV_CORE_STATE_ERROR] = "error",
};

/**
 * alv_core_state_to_string:
 * @state: a state
 *
 * Returns: the name of @state as the `State` property carries it
 */
const char *
alv_core_state_to_string (AlvCoreState state)
{
  g_return_val_if_fail ((guint) state < G_N_ELEMENTS (state_names), "error");
  return state_names[state];
}

/**
 * alv_core_state_from_string:
 * @text: a `State` value received over D-Bus (untrusted)
 * @state_out: (out): the parsed state
 *
 * Returns: %TRUE if @text names a known state
 */
gboolean
alv_core_state_from_string (const char *text, AlvCoreState *state_out)
{
  for (guint i = 0; text != NULL && i < G_N_ELEMENTS (state_names); i++)
    {
      if (strcmp (text, state_names[i]) == 0)
        {
          *state_out = (AlvCoreState) i;
          return TRUE;
        }
    }
  return FALSE;
}
