/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the playlist parser (common/alv-playlist-parser.c).
 * Any input must either be refused with an ALV_ERROR or give a playlist
 * that passes alv_playlist_validate(), and whose written form parses back
 * to an equal playlist and is written again byte for byte the same.  The
 * writer may exceed the size limit the parser enforces (it repeats each
 * URL four times), which is the one refusal allowed on the way back.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <glib.h>

#include "alv-error.h"
#include "alv-playlist.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
silence (const char     *log_domain G_GNUC_UNUSED,
         GLogLevelFlags  log_level G_GNUC_UNUSED,
         const char     *message G_GNUC_UNUSED,
         gpointer        user_data G_GNUC_UNUSED)
{
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  static gboolean initialized = FALSE;
  g_autoptr(GError) error = NULL;
  g_autoptr(AlvPlaylist) pl = NULL;
  g_autoptr(AlvPlaylist) back = NULL;
  g_autofree char *text = NULL;
  g_autofree char *again = NULL;
  gsize length = 0;

  if (!initialized)
    {
      /* a g_return_if_fail() would be a bug: keep criticals fatal */
      g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
      g_log_set_handler ("alluvium-common", G_LOG_LEVEL_DEBUG | G_LOG_LEVEL_INFO, silence, NULL);
      initialized = TRUE;
    }

  pl = alv_playlist_parse ((const char *) data, size, &error);
  if (pl == NULL)
    {
      g_assert (error != NULL);
      g_assert (error->domain == ALV_ERROR);
      g_assert (g_utf8_validate (error->message, -1, NULL));
      return 0;
    }
  g_assert (error == NULL);

  if (!alv_playlist_validate (pl, &error))
    g_error ("a parsed playlist does not validate: %s", error->message);

  text = alv_playlist_to_string (pl, &length);
  back = alv_playlist_parse (text, length, &error);
  if (back == NULL)
    {
      if (length > ALV_PLAYLIST_MAX_SIZE && g_error_matches (error, ALV_ERROR, ALV_ERROR_LIMIT))
        return 0;
      g_error ("the written playlist does not parse: %s\n%s", error->message, text);
    }
  if (!alv_playlist_equal (pl, back))
    g_error ("the playlist changed in a round trip:\n%s", text);

  again = alv_playlist_to_string (back, NULL);
  if (strcmp (text, again) != 0)
    g_error ("the writer is not deterministic:\n%s\n---\n%s", text, again);

  return 0;
}
