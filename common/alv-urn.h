/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Content URNs: `urn:tree:sha256:` + the base32 of an item's THEX root
 * (see alv-urn.c).  One API for every part of Alluvium: peers, the
 * gateway, the block store and the header parsers.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ALV_URN_PREFIX:
 *
 * Prefix of Alluvium content URNs; the base32 root follows.
 */
#define ALV_URN_PREFIX "urn:tree:sha256:"

/**
 * ALV_URN_ROOT_LENGTH:
 *
 * Length of the base32 (RFC 4648, no padding) form of a SHA-256 tree root.
 */
#define ALV_URN_ROOT_LENGTH 52

char     *alv_urn_format         (const guint8  *root);
gboolean  alv_urn_parse          (const char    *urn,
                                  guint8        *root_out,
                                  GError       **error);
char     *alv_urn_normalize      (const char    *urn,
                                  GError       **error);
gboolean  alv_urn_is_valid       (const char    *urn);

/* for parsers of header values */
char     *alv_urn_normalize_span (const char    *s,
                                  gsize          len,
                                  const char    *what,
                                  GError       **error);
gboolean  alv_urn_check_root     (const char    *s,
                                  gsize          len,
                                  const char    *what,
                                  char          *out,
                                  GError       **error);

G_END_DECLS
