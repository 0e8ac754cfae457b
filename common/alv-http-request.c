/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The strict request-head parser of alv-http-request.h.  What it accepts
 * (RFC 9112, narrowed): METHOD SP /target SP HTTP/1.0|1.1 CRLF, then
 * header lines "name: value" CRLF, then CRLF.  Lines end with CRLF only;
 * no folded lines, no control characters, no absolute-form target,
 * %-escapes whole in the target; one Content-Length at most and only
 * digits in it (else BAD_LENGTH: libsoup 3.2 leaks the path of such a
 * request, and a length read two ways is how requests are smuggled).  Whatever else a client sends is INVALID here, which the fast
 * path answers by handing the connection to libsoup, so that an odd but
 * legal request is served as before and a malformed one is refused as
 * before.
 */
#define G_LOG_DOMAIN "alluvium"
#include "config.h"
#include "alv-http-request.h"

#include <string.h>

#define MAX_METHOD 16

/* RFC 9110 tchar */
static gboolean
is_tchar (guchar c)
{
  return g_ascii_isalnum (c) || (c != 0 && strchr ("!#$%&'*+-.^_`|~", c) != NULL);
}

/* a value's byte: visible, blank or obs-text; no control character */
static gboolean
is_value_char (guchar c)
{
  return c == ' ' || c == '\t' || (c >= 0x21 && c != 0x7f);
}

static gboolean
name_is (const AlvHttpHeader *h,
         const char          *name)
{
  return h->name_len == strlen (name) && g_ascii_strncasecmp (h->name, name, h->name_len) == 0;
}

/* Whether the comma-separated list @value holds @token (any case). */
static gboolean
list_has (const char *value,
          gsize       len,
          const char *token)
{
  gsize tlen = strlen (token);
  gsize i = 0;

  while (i < len)
    {
      gsize start, end;

      while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
        i++;
      start = i;
      while (i < len && value[i] != ',')
        i++;
      end = i;
      while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
        end--;
      if (end - start == tlen && g_ascii_strncasecmp (value + start, token, tlen) == 0)
        return TRUE;
    }
  return FALSE;
}

/* The end of the line starting at @p (the CR of its CRLF), or NULL when
 * @end comes first; *bad when a lone CR or LF is met. */
static const char *
line_end (const char *p,
          const char *end,
          gboolean   *bad)
{
  const char *cr = memchr (p, '\r', (gsize) (end - p));
  const char *lf = memchr (p, '\n', (gsize) ((cr != NULL ? cr : end) - p));

  *bad = lf != NULL;
  if (lf != NULL || cr == NULL || cr + 1 >= end)
    return NULL;
  if (cr[1] != '\n')
    {
      *bad = TRUE;
      return NULL;
    }
  return cr;
}

static AlvHttpParse
parse_request_line (AlvHttpRequest *req,
                    const char     *p,
                    const char     *eol)
{
  const char *sp1, *sp2, *q;

  for (sp1 = p; sp1 < eol && *sp1 != ' '; sp1++)
    if (!is_tchar ((guchar) *sp1))
      return ALV_HTTP_PARSE_INVALID;
  if (sp1 == p || sp1 == eol || sp1 - p > MAX_METHOD)
    return ALV_HTTP_PARSE_INVALID;
  req->method = p;
  req->method_len = (gsize) (sp1 - p);
  p = sp1 + 1;
  if (p >= eol || *p != '/')
    return ALV_HTTP_PARSE_INVALID;  /* origin form only */
  for (sp2 = p; sp2 < eol && *sp2 != ' '; sp2++)
    {
      if ((guchar) *sp2 <= 0x20 || (guchar) *sp2 >= 0x7f || *sp2 == '#')
        return ALV_HTTP_PARSE_INVALID;
      /* a broken escape is libsoup's to refuse (GUri does) */
      if (*sp2 == '%' && (eol - sp2 < 3 || !g_ascii_isxdigit (sp2[1]) || !g_ascii_isxdigit (sp2[2])))
        return ALV_HTTP_PARSE_INVALID;
    }
  if (sp2 == eol)
    return ALV_HTTP_PARSE_INVALID;
  q = memchr (p, '?', (gsize) (sp2 - p));
  req->path = p;
  req->path_len = (gsize) ((q != NULL ? q : sp2) - p);
  req->query = q != NULL ? q + 1 : NULL;
  req->query_len = q != NULL ? (gsize) (sp2 - q - 1) : 0;
  p = sp2 + 1;
  if (eol - p != 8 || memcmp (p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1'))
    return ALV_HTTP_PARSE_INVALID;
  req->minor = (guint) (p[7] - '0');
  return ALV_HTTP_PARSE_OK;
}

static AlvHttpParse
parse_header (AlvHttpHeader *h,
              const char    *p,
              const char    *eol)
{
  const char *colon, *v, *e;

  for (colon = p; colon < eol && *colon != ':'; colon++)
    if (!is_tchar ((guchar) *colon))
      return ALV_HTTP_PARSE_INVALID;  /* also a folded line's blank */
  if (colon == p || colon == eol)
    return ALV_HTTP_PARSE_INVALID;
  for (v = colon + 1; v < eol; v++)
    if (!is_value_char ((guchar) *v))
      return ALV_HTTP_PARSE_INVALID;
  v = colon + 1;
  e = eol;
  while (v < e && (*v == ' ' || *v == '\t'))
    v++;
  while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
    e--;
  h->name = p;
  h->name_len = (gsize) (colon - p);
  h->value = v;
  h->value_len = (gsize) (e - v);
  return ALV_HTTP_PARSE_OK;
}

/* Content-Length, Transfer-Encoding and Connection, once all lines are
 * in: the body and whether the connection stays open. */
static AlvHttpParse
read_framing (AlvHttpRequest *req)
{
  gboolean seen_length = FALSE;
  gboolean close = FALSE, keep = FALSE;

  req->has_body = FALSE;
  for (guint i = 0; i < req->n_headers; i++)
    {
      const AlvHttpHeader *h = &req->headers[i];

      if (name_is (h, "Content-Length"))
        {
          guint64 length = 0;
          gsize digits = 0;

          if (seen_length || h->value_len == 0)
            return ALV_HTTP_PARSE_BAD_LENGTH;
          for (gsize k = 0; k < h->value_len; k++)
            {
              if (!g_ascii_isdigit (h->value[k]))
                return ALV_HTTP_PARSE_BAD_LENGTH;
              /* leading zeros do not count: "000…0" is a valid 0 */
              if (length == 0 && h->value[k] == '0')
                continue;
              if (++digits > 18)
                return ALV_HTTP_PARSE_BAD_LENGTH;
              length = length * 10 + (guint64) (h->value[k] - '0');
            }
          seen_length = TRUE;
          req->has_body = req->has_body || length > 0;
        }
      else if (name_is (h, "Transfer-Encoding"))
        req->has_body = TRUE;
      else if (name_is (h, "Connection"))
        {
          close = close || list_has (h->value, h->value_len, "close");
          keep = keep || list_has (h->value, h->value_len, "keep-alive");
        }
    }
  req->keep_alive = !close && (req->minor == 1 || keep);
  return ALV_HTTP_PARSE_OK;
}

/* The head in @buf is complete: reads all of it into @req. */
static AlvHttpParse
parse_whole (AlvHttpRequest *req,
             const char     *buf,
             gsize           len,
             gsize           max_head,
             guint           max_headers)
{
  const char *end = buf + MIN (len, max_head);
  const char *p = buf;
  const char *eol;
  gboolean bad = FALSE;
  AlvHttpParse result;

  req->n_headers = 0;
  req->head_len = 0;
  eol = line_end (p, end, &bad);
  if (eol == NULL)
    return bad ? ALV_HTTP_PARSE_INVALID
           : len >= max_head ? ALV_HTTP_PARSE_TOO_LARGE : ALV_HTTP_PARSE_INCOMPLETE;
  result = parse_request_line (req, p, eol);
  if (result != ALV_HTTP_PARSE_OK)
    return result;
  p = eol + 2;
  for (;;)
    {
      eol = line_end (p, end, &bad);
      if (eol == NULL)
        return bad ? ALV_HTTP_PARSE_INVALID
               : len >= max_head ? ALV_HTTP_PARSE_TOO_LARGE : ALV_HTTP_PARSE_INCOMPLETE;
      if (eol == p)
        break;
      if (req->n_headers >= max_headers)
        return ALV_HTTP_PARSE_TOO_LARGE;
      result = parse_header (&req->headers[req->n_headers], p, eol);
      if (result != ALV_HTTP_PARSE_OK)
        return result;
      req->n_headers++;
      p = eol + 2;
    }
  req->head_len = (gsize) (eol + 2 - buf);
  return read_framing (req);
}

/**
 * alv_http_request_parse:
 * @req: (out caller-allocates): the request, pointing into @buf
 * @buf: what the client sent so far
 * @len: its length
 * @max_head: the longest head accepted, in bytes
 * @max_headers: the most header lines accepted (at most
 *   %ALV_HTTP_MAX_HEADERS)
 *
 * Reads the head of the first request in @buf.  Bytes after it (a body,
 * pipelined requests) are left alone: @req->head_len says where it ends.
 *
 * Returns: %ALV_HTTP_PARSE_OK with @req filled in, or why not
 */
AlvHttpParse
alv_http_request_parse (AlvHttpRequest *req,
                        const char     *buf,
                        gsize           len,
                        gsize           max_head,
                        guint           max_headers)
{
  g_return_val_if_fail (req != NULL && (buf != NULL || len == 0), ALV_HTTP_PARSE_INVALID);

  return parse_whole (req, buf, len, max_head, MIN (max_headers, ALV_HTTP_MAX_HEADERS));
}

/**
 * alv_http_request_parse_more:
 * @req: (out caller-allocates): the request, pointing into @buf
 * @scan: (inout): how far earlier calls got in @buf (zeroed for a new
 *   head); updated when the head is not complete yet
 * @buf: what the client sent so far: the bytes of the earlier calls,
 *   unchanged, then new ones
 * @len: its length
 * @max_head: the longest head accepted, in bytes
 * @max_headers: the most header lines accepted (at most
 *   %ALV_HTTP_MAX_HEADERS)
 *
 * alv_http_request_parse() for a head that comes in pieces: each line is
 * checked once, as it completes, and the search for the end of the line
 * after goes on where the last call stopped, so that a head sent a byte
 * at a time costs no more than one sent whole.  The answer for @buf is
 * the one alv_http_request_parse() gives; only a complete head is then
 * read whole, once, to fill @req in.
 *
 * Returns: %ALV_HTTP_PARSE_OK with @req filled in, or why not
 */
AlvHttpParse
alv_http_request_parse_more (AlvHttpRequest *req,
                             AlvHttpScan    *scan,
                             const char     *buf,
                             gsize           len,
                             gsize           max_head,
                             guint           max_headers)
{
  const char *end = buf + MIN (len, max_head);
  const char *p;
  AlvHttpHeader scratch;

  g_return_val_if_fail (req != NULL && scan != NULL && (buf != NULL || len == 0),
                        ALV_HTTP_PARSE_INVALID);
  g_return_val_if_fail (scan->offset <= len && scan->scanned <= len, ALV_HTTP_PARSE_INVALID);

  max_headers = MIN (max_headers, ALV_HTTP_MAX_HEADERS);
  req->n_headers = 0;
  req->head_len = 0;
  p = buf + scan->offset;
  for (;;)
    {
      /* no CR and no LF between @p and where the last search stopped */
      const char *from = MIN (MAX (p, buf + scan->scanned), end);
      gboolean bad = FALSE;
      const char *eol = line_end (from, end, &bad);
      AlvHttpParse result;

      if (eol == NULL)
        {
          if (bad)
            return ALV_HTTP_PARSE_INVALID;
          if (len >= max_head)
            return ALV_HTTP_PARSE_TOO_LARGE;
          /* a CR last may be half of a CRLF: look at it again */
          scan->scanned = (gsize) (end - buf) - (end > from && end[-1] == '\r' ? 1 : 0);
          return ALV_HTTP_PARSE_INCOMPLETE;
        }
      if (eol == p && scan->n_lines > 0)
        break;                  /* the empty line: the head is complete */
      if (scan->n_lines == 0)
        result = parse_request_line (req, p, eol);
      else if (scan->n_lines > max_headers)
        result = ALV_HTTP_PARSE_TOO_LARGE;
      else
        result = parse_header (&scratch, p, eol);
      if (result != ALV_HTTP_PARSE_OK)
        return result;
      scan->n_lines++;
      p = eol + 2;
      scan->offset = (gsize) (p - buf);
    }
  return parse_whole (req, buf, len, max_head, max_headers);
}

/**
 * alv_http_request_find:
 * @req: a parsed request
 * @name: a header name (any case)
 * @count: (out) (optional): how many lines have that name
 *
 * Returns: (nullable): the first line named @name
 */
const AlvHttpHeader *
alv_http_request_find (const AlvHttpRequest *req,
                       const char           *name,
                       guint                *count)
{
  const AlvHttpHeader *first = NULL;
  guint n = 0;

  for (guint i = 0; i < req->n_headers; i++)
    if (name_is (&req->headers[i], name))
      {
        if (first == NULL)
          first = &req->headers[i];
        n++;
      }
  if (count != NULL)
    *count = n;
  return first;
}

/**
 * alv_http_request_is_method:
 * @req: a parsed request
 * @method: a method name, e.g. "GET" (methods are case-sensitive)
 *
 * Returns: whether @req uses @method
 */
gboolean
alv_http_request_is_method (const AlvHttpRequest *req,
                            const char           *method)
{
  return req->method_len == strlen (method) && memcmp (req->method, method, req->method_len) == 0;
}
