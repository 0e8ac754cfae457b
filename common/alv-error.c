/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The ALV_ERROR domain and gettext set-up shared by every Alluvium binary.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-error.h"

#include <glib/gi18n-lib.h>

G_DEFINE_QUARK (alv-error-quark, alv_error)

void
alv_i18n_init (void)
{
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
}
