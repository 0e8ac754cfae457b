/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The protocol pieces of the local Icecast-style stream that need no
 * sockets (doc/local-stream.md): the bounded HTTP request parser for what a player
 * sends, the ICY metadata block builder (StreamTitle framing, escaping,
 * length cap) and the classification of a content type into the formats
 * the stream knows about.  Kept apart from the server so they can be tested
 * and fuzzed on their own.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

#define ALV_ICY_METAINT 16000
/* a metadata block is one length byte L then L * 16 bytes, L <= 255 */
#define ALV_ICY_MAX_METADATA (255 * 16)
#define ALV_ICY_MAX_REQUEST_SIZE 8192
#define ALV_ICY_MAX_HEADERS 64

typedef enum
{
  ALV_STREAM_FORMAT_OTHER, /* passed through, no sync points, no metadata */
  ALV_STREAM_FORMAT_MP3,   /* frames, icy-metaint */
  ALV_STREAM_FORMAT_AAC,   /* passed through, icy-metaint */
  ALV_STREAM_FORMAT_OGG,   /* pages, header pages, chained links */
  ALV_STREAM_FORMAT_MATROSKA, /* WebM/Matroska: one live stream, keyframe Clusters */
} AlvStreamFormat;

typedef enum
{
  ALV_ICY_METHOD_GET,
  ALV_ICY_METHOD_HEAD,
  ALV_ICY_METHOD_OTHER,
} AlvIcyMethod;

/**
 * AlvIcyRequest:
 * @method: GET, HEAD or anything else (answered 405)
 * @path: the request target's path, query and fragment removed
 * @http_minor: 0 or 1 (HTTP/1.x)
 * @icy_metadata: the client sent `Icy-MetaData: 1`
 * @user_agent: (nullable): the User-Agent header, control characters removed
 */
typedef struct
{
  AlvIcyMethod method;
  char *path;
  guint http_minor;
  gboolean icy_metadata;
  char *user_agent;
} AlvIcyRequest;

gssize          alv_icy_request_find_end  (const guint8  *data,
                                           gsize          len);
AlvIcyRequest  *alv_icy_request_parse     (const guint8  *data,
                                           gsize          len,
                                           GError       **error);
void            alv_icy_request_free      (AlvIcyRequest *request);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (AlvIcyRequest, alv_icy_request_free)

char           *alv_icy_format_title      (const char    *artist,
                                           const char    *title);
GBytes         *alv_icy_metadata_block    (const char    *stream_title);
char           *alv_icy_header_value      (const char    *value);
AlvStreamFormat alv_stream_format_from_content_type (const char *content_type);

G_END_DECLS
