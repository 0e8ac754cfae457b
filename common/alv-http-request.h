/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A small, strict HTTP/1.x request-head parser for the fast path of a
 * server (alv-http-front.h): pure, no allocation, no sockets.  It reads
 * the request line and the headers of the first request in a buffer and
 * points into that buffer; anything it does not accept as plainly valid
 * is reported, so that the caller can hand the connection to a complete
 * HTTP server instead of guessing.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * ALV_HTTP_MAX_HEADERS:
 *
 * The most header lines a request may have on the fast path.
 */
#define ALV_HTTP_MAX_HEADERS 64

/**
 * AlvHttpParse:
 * @ALV_HTTP_PARSE_OK: a complete head was read
 * @ALV_HTTP_PARSE_INCOMPLETE: the head is not complete yet
 * @ALV_HTTP_PARSE_TOO_LARGE: the head is longer, or has more header lines,
 *   than the limits allow
 * @ALV_HTTP_PARSE_INVALID: not a plainly valid HTTP/1.0 or 1.1 request
 *   head in origin form
 * @ALV_HTTP_PARSE_BAD_LENGTH: a valid head but for its Content-Length
 *   (repeated, empty or not a number): where its body ends is unknown, so
 *   the request must be refused (400), never passed on
 */
typedef enum
{
  ALV_HTTP_PARSE_OK,
  ALV_HTTP_PARSE_INCOMPLETE,
  ALV_HTTP_PARSE_TOO_LARGE,
  ALV_HTTP_PARSE_INVALID,
  ALV_HTTP_PARSE_BAD_LENGTH,
} AlvHttpParse;

typedef struct
{
  const char *name;
  gsize name_len;
  const char *value;            /* without surrounding blanks */
  gsize value_len;
} AlvHttpHeader;

typedef struct
{
  const char *method;
  gsize method_len;
  const char *path;             /* the target up to '?' */
  gsize path_len;
  const char *query;            /* after '?', or NULL */
  gsize query_len;
  guint minor;                  /* HTTP/1.minor: 0 or 1 */
  gsize head_len;               /* bytes up to and with the empty line */
  gboolean keep_alive;          /* by the version and Connection */
  gboolean has_body;            /* Content-Length > 0 or Transfer-Encoding */
  guint n_headers;
  AlvHttpHeader headers[ALV_HTTP_MAX_HEADERS];
} AlvHttpRequest;

/**
 * AlvHttpScan:
 * @offset: where the first line not yet checked starts
 * @scanned: how far that line was searched for its end, in vain
 * @n_lines: how many lines before it were checked (and found valid)
 *
 * How far alv_http_request_parse_more() got in a head that was not
 * complete, so that the next call, with more bytes after the same ones,
 * goes on from there.  Starts zeroed.
 */
typedef struct
{
  gsize offset;
  gsize scanned;
  guint n_lines;
} AlvHttpScan;

AlvHttpParse alv_http_request_parse         (AlvHttpRequest       *req,
                                             const char           *buf,
                                             gsize                 len,
                                             gsize                 max_head,
                                             guint                 max_headers);
AlvHttpParse alv_http_request_parse_more    (AlvHttpRequest       *req,
                                             AlvHttpScan          *scan,
                                             const char           *buf,
                                             gsize                 len,
                                             gsize                 max_head,
                                             guint                 max_headers);
const AlvHttpHeader *alv_http_request_find  (const AlvHttpRequest *req,
                                             const char           *name,
                                             guint                *count);
gboolean     alv_http_request_is_method     (const AlvHttpRequest *req,
                                             const char           *method);

G_END_DECLS
