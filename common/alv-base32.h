/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * RFC 4648 base32: the upper-case alphabet, no padding, strict decoding
 * (see alv-base32.c).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char     *alv_base32_encode (const guint8  *data,
                             gsize          len);
gboolean  alv_base32_decode (const char    *text,
                             gssize         text_len,
                             guint8        *out,
                             gsize          out_len,
                             GError       **error);

G_END_DECLS
