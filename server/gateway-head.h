/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What a listener joining an item mid-way needs of its head, read by the
 * gateway from the bytes it hashes anyway: for MPEG audio the offset of the
 * first frame and its Xing table ("mpeg-audio; " + alv_mp3_info_to_string()),
 * handed out with
 * the resolve answer so that the core can compute the offset of the
 * position now playing without fetching the head first (doc/swarm.md,
 * "The head's facts from the gateway").  Bytes go in as they are hashed, in
 * order; at most a bounded window of them is kept.  Pure: no I/O.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* the first token of the facts: the format they describe */
#define GATEWAY_HEAD_MPEG_AUDIO "mpeg-audio"

typedef struct _GatewayHead GatewayHead;

GatewayHead *gateway_head_new    (void);
void         gateway_head_feed   (GatewayHead  *head,
                                  const guint8 *data,
                                  gsize         len);
/* The facts, or NULL when the head did not parse; @at_end: the whole
 * media was fed. */
char        *gateway_head_facts  (GatewayHead  *head,
                                  gboolean      at_end);
void         gateway_head_free   (GatewayHead  *head);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GatewayHead, gateway_head_free)

G_END_DECLS
