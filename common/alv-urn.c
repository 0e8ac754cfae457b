/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Content URNs, `urn:tree:sha256:` followed by the base32 (RFC 4648, no
 * padding) of an item's SHA-256 THEX root, as Gnutella's
 * `urn:tree:tiger:`: formatting, strict parsing to the root's bytes, and
 * the normal spelling every table and path uses (lower-case prefix,
 * upper-case root).  URNs arrive from untrusted peers, gateways and
 * playlists: every root has exactly one spelling (the spare bits of the
 * last character are zero), letters may come in either case.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-urn.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "alv-base32.h"
#include "alv-error.h"
#include "alv-hash-tree.h"

#define PREFIX_LEN (sizeof (ALV_URN_PREFIX) - 1)

/**
 * alv_urn_format:
 * @root: (array fixed-size=32): a SHA-256 tree root
 *
 * Formats a content URN, %ALV_URN_PREFIX followed by the base32 root.
 *
 * Returns: (transfer full): the URN
 */
char *
alv_urn_format (const guint8 *root)
{
  g_autofree char *b32 = NULL;

  g_return_val_if_fail (root != NULL, NULL);
  b32 = alv_base32_encode (root, ALV_HASH_SIZE);
  return g_strconcat (ALV_URN_PREFIX, b32, NULL);
}

/**
 * alv_urn_parse:
 * @urn: a content URN from an untrusted source
 * @root_out: (out caller-allocates) (array fixed-size=32): the root
 * @error: return location for a #GError
 *
 * Parses `urn:tree:sha256:<base32 root>`.  The prefix and the base32 are
 * case-insensitive; anything else (other hashes, wrong length, stray
 * characters, padding, trailing text) is refused.
 *
 * Returns: %TRUE on success; %FALSE with an %ALV_ERROR_PARSE error
 */
gboolean
alv_urn_parse (const char *urn, guint8 *root_out, GError **error)
{
  guint8 root[ALV_HASH_SIZE];
  gsize prefix_len = PREFIX_LEN;

  g_return_val_if_fail (urn != NULL, FALSE);
  g_return_val_if_fail (root_out != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (g_ascii_strncasecmp (urn, ALV_URN_PREFIX, prefix_len) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("Not a content URN: it must start with “%s”"),
                   ALV_URN_PREFIX);
      return FALSE;
    }
  if (!alv_base32_decode (urn + prefix_len, -1, root, sizeof root, error))
    {
      g_prefix_error (error, _("Invalid content URN: "));
      return FALSE;
    }
  memcpy (root_out, root, sizeof root);
  return TRUE;
}

static inline gboolean
is_base32_char (char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

/**
 * alv_urn_check_root:
 * @s: the base32 root of a URN, not NUL-terminated
 * @len: its length
 * @what: what the errors name (a header, "URN")
 * @out: (out caller-allocates): %ALV_URN_ROOT_LENGTH + 1 bytes
 * @error: return location for a #GError (%ALV_ERROR_INVALID)
 *
 * Checks that [@s, @s + @len) is the canonical unpadded base32 of 32
 * bytes: 52 characters of the RFC 4648 alphabet (either case), the 4
 * spare bits of the last one zero, and writes its upper-case form to @out.
 *
 * Returns: whether it is
 */
gboolean
alv_urn_check_root (const char  *s,
                    gsize        len,
                    const char  *what,
                    char        *out,
                    GError     **error)
{
  char last;

  if (len != ALV_URN_ROOT_LENGTH)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("%s: the SHA-256 root must be %u base32 characters, not %zu"),
                   what, ALV_URN_ROOT_LENGTH, len);
      return FALSE;
    }
  for (gsize i = 0; i < len; i++)
    {
      if (!is_base32_char (s[i]))
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                       _("%s: character %zu of the root is not base32"),
                       what, i + 1);
          return FALSE;
        }
      out[i] = g_ascii_toupper (s[i]);
    }
  out[len] = '\0';

  /* 256 = 51 * 5 + 1: the last character carries one bit, then 4 zeros */
  last = out[len - 1];
  if (last != 'A' && last != 'Q')
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("%s: the root is not canonical base32 (spare bits set)"), what);
      return FALSE;
    }
  return TRUE;
}

/**
 * alv_urn_normalize_span:
 * @s: a URN, not NUL-terminated, without surrounding whitespace
 * @len: its length
 * @what: what the errors name (a header, "URN")
 * @error: return location for a #GError
 *
 * alv_urn_normalize() of [@s, @s + @len), for parsers of header values.
 *
 * Returns: (transfer full): the normalised URN, or %NULL on error
 */
char *
alv_urn_normalize_span (const char  *s,
                        gsize        len,
                        const char  *what,
                        GError     **error)
{
  char root[ALV_URN_ROOT_LENGTH + 1];

  if (len < PREFIX_LEN || g_ascii_strncasecmp (s, ALV_URN_PREFIX, PREFIX_LEN) != 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: not a %s URN"), what, ALV_URN_PREFIX);
      return NULL;
    }
  if (!alv_urn_check_root (s + PREFIX_LEN, len - PREFIX_LEN, what, root, error))
    return NULL;
  return g_strconcat (ALV_URN_PREFIX, root, NULL);
}

/**
 * alv_urn_normalize:
 * @urn: a URN such as `urn:tree:sha256:<52 base32 characters>`
 * @error: return location for a #GError
 *
 * Checks that @urn names a SHA-256 tree root (prefix in any case, root in
 * canonical base32 of either case) and returns it normalised: lower-case
 * prefix, upper-case root.  Surrounding whitespace is ignored.
 *
 * Errors: %ALV_ERROR_PARSE for another kind of URN or none,
 * %ALV_ERROR_INVALID for a malformed root.
 *
 * Returns: (transfer full): the normalised URN, or %NULL on error
 */
char *
alv_urn_normalize (const char  *urn,
                   GError     **error)
{
  const char *s, *e;

  g_return_val_if_fail (urn != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  s = urn;
  e = urn + strlen (urn);
  while (s < e && (*s == ' ' || *s == '\t'))
    s++;
  while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  return alv_urn_normalize_span (s, (gsize) (e - s), "URN", error);
}

/**
 * alv_urn_is_valid:
 * @urn: a string
 *
 * Returns: %TRUE if alv_urn_normalize() accepts @urn
 */
gboolean
alv_urn_is_valid (const char *urn)
{
  g_autofree char *n = NULL;

  g_return_val_if_fail (urn != NULL, FALSE);

  n = alv_urn_normalize (urn, NULL);
  return n != NULL;
}
