/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * RFC 4648 base32 (uppercase alphabet, no padding), the spelling of the
 * roots in content URNs (alv-urn.c).  Decoding is strict, since URNs
 * arrive from untrusted peers and playlists: exact length, no padding, no
 * stray characters, and unused trailing bits must be zero so every root
 * has exactly one spelling (letters may be of either case).
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-base32.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "alv-error.h"

static const char base32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static gsize
base32_length (gsize n_bytes)
{
  return (n_bytes * 8 + 4) / 5;
}

/**
 * alv_base32_encode:
 * @data: (array length=len): bytes to encode
 * @len: their number
 *
 * Encodes in RFC 4648 base32, uppercase, without padding.
 *
 * Returns: (transfer full): a NUL-terminated string of ⌈8·@len/5⌉
 *   characters
 */
char *
alv_base32_encode (const guint8 *data, gsize len)
{
  char *out;
  gsize i, o = 0;
  guint32 acc = 0;
  guint bits = 0;

  g_return_val_if_fail (data != NULL || len == 0, NULL);

  out = g_malloc (base32_length (len) + 1);
  for (i = 0; i < len; i++)
    {
      acc = (acc << 8) | data[i];
      bits += 8;
      while (bits >= 5)
        {
          bits -= 5;
          out[o++] = base32_alphabet[(acc >> bits) & 0x1f];
        }
    }
  if (bits > 0)
    out[o++] = base32_alphabet[(acc << (5 - bits)) & 0x1f];
  out[o] = '\0';
  g_assert (o == base32_length (len));
  return out;
}

static int
base32_value (char c)
{
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= '2' && c <= '7')
    return c - '2' + 26;
  return -1;
}

/**
 * alv_base32_decode:
 * @text: base32 text (either case, no padding)
 * @text_len: its length, or -1 if NUL-terminated
 * @out: (out caller-allocates) (array length=out_len): where to write
 * @out_len: the exact number of bytes @text must encode
 * @error: return location for a #GError
 *
 * Strictly decodes RFC 4648 base32 of a known size: @text must have exactly
 * ⌈8·@out_len/5⌉ characters of the alphabet, and its unused trailing bits
 * must be zero.  @out is unspecified on failure.
 *
 * Returns: %TRUE on success; %FALSE with an %ALV_ERROR_PARSE error
 */
gboolean
alv_base32_decode (const char *text,
                   gssize text_len,
                   guint8 *out,
                   gsize out_len,
                   GError **error)
{
  gsize len, i, o = 0;
  guint32 acc = 0;
  guint bits = 0;

  g_return_val_if_fail (text != NULL, FALSE);
  g_return_val_if_fail (out != NULL || out_len == 0, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  len = text_len < 0 ? strlen (text) : (gsize) text_len;
  if (len != base32_length (out_len))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("Base32 text has %zu characters; "
                     "expected %zu"),
                   len, base32_length (out_len));
      return FALSE;
    }

  for (i = 0; i < len; i++)
    {
      int v = base32_value (text[i]);

      if (v < 0)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("Invalid base32 character at position %zu"), i);
          return FALSE;
        }
      acc = (acc << 5) | (guint32) v;
      bits += 5;
      if (bits >= 8)
        {
          bits -= 8;
          out[o++] = (acc >> bits) & 0xff;
        }
    }
  g_assert (o == out_len);
  if ((acc & ((1u << bits) - 1)) != 0)
    {
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_PARSE,
                           _("Base32 text is not canonical: its unused "
                             "trailing bits are not zero"));
      return FALSE;
    }
  return TRUE;
}
