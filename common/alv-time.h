/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * W3C-DTF (the ISO 8601 profile of https://www.w3.org/TR/NOTE-datetime) time
 * helpers.  Playlist slots are absolute instants written in this profile;
 * the parser here is strict (it refuses every form the note does not list)
 * and the formatter always writes UTC with a `Z`, so that what Alluvium
 * writes compares byte for byte after a round trip.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ALV_TIME_MAX_FRACTION_DIGITS:
 *
 * The longest fraction of a second (digits after the '.') that
 * alv_time_parse_w3cdtf() accepts.  Digits beyond microseconds are refused
 * rather than silently rounded.
 */
#define ALV_TIME_MAX_FRACTION_DIGITS 6

GDateTime *alv_time_parse_w3cdtf  (const char  *text,
                                   GError     **error);

char      *alv_time_format_w3cdtf (GDateTime   *dt);

G_END_DECLS
