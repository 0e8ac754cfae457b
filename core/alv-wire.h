/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Big-endian (network order) integers in byte buffers, as the router
 * protocols write them (alv-natpmp.c, alv-pcp.c): byte by byte, so that
 * no buffer needs to be aligned.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

static inline void
alv_wire_put16 (guint8  *p,
                guint16  v)
{
  p[0] = (guint8) (v >> 8);
  p[1] = (guint8) v;
}

static inline void
alv_wire_put32 (guint8  *p,
                guint32  v)
{
  alv_wire_put16 (p, (guint16) (v >> 16));
  alv_wire_put16 (p + 2, (guint16) v);
}

static inline guint16
alv_wire_get16 (const guint8 *p)
{
  return (guint16) ((p[0] << 8) | p[1]);
}

static inline guint32
alv_wire_get32 (const guint8 *p)
{
  return ((guint32) alv_wire_get16 (p) << 16) | alv_wire_get16 (p + 2);
}

G_END_DECLS
