/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Parsers and formatters for the Open Content Network headers (CAW, THEX):
 * alternate locations (`X-Alt`, `X-NAlt`), content URNs (`X-Content-URN`,
 * N2R queries) and tree locations (`X-Thex-URI`).  Values come from peers
 * and gateways we do not trust: only IP literals are accepted as
 * locations (no name lookups on a peer's say-so), URNs are checked to be
 * exactly a SHA-256 root in canonical base32, and every loop is bounded.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-ocn-headers.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "alv-urn.h"

#define URN_PREFIX ALV_URN_PREFIX
#define URN_PREFIX_LEN (sizeof (URN_PREFIX) - 1)

/* the longest X-Alt entry worth looking at: "[" 45-char IPv6 "]:65535" */
#define ALT_ENTRY_MAX_LENGTH 64
/* how many URNs an X-Content-URN list may name */
#define CONTENT_URN_MAX_ENTRIES 16
/* the longest N2R query accepted (percent-encoded URN) */
#define N2R_QUERY_MAX_LENGTH 256

static inline gboolean
is_ows (char c)
{
  return c == ' ' || c == '\t';
}

/* Trims OWS around [*start, *end). */
static void
trim_span (const char **start,
           const char **end)
{
  while (*start < *end && is_ows (**start))
    (*start)++;
  while (*end > *start && is_ows ((*end)[-1]))
    (*end)--;
}

/* ------------------------------------------------------------------ */
/* X-Alt                                                               */

/* Parses one trimmed entry [s, e) as `a.b.c.d:port` or `[v6]:port`.
 * Returns NULL when it is not one. */
static GInetSocketAddress *
parse_alt_entry (const char *s,
                 const char *e)
{
  gsize len = (gsize) (e - s);
  char host[ALT_ENTRY_MAX_LENGTH + 1];
  const char *host_start, *host_end, *port_start;
  GSocketFamily family;
  g_autoptr(GInetAddress) address = NULL;
  guint port = 0;

  if (len == 0 || len > ALT_ENTRY_MAX_LENGTH)
    return NULL;

  if (*s == '[')
    {
      const char *close = memchr (s, ']', len);

      if (close == NULL || close + 1 >= e || close[1] != ':')
        return NULL;
      host_start = s + 1;
      host_end = close;
      port_start = close + 2;
      family = G_SOCKET_FAMILY_IPV6;
      for (const char *c = host_start; c < host_end; c++)
        if (!g_ascii_isxdigit (*c) && *c != ':' && *c != '.')
          return NULL; /* no zone ids, no names */
    }
  else
    {
      const char *colon = NULL;

      for (const char *c = s; c < e; c++)
        if (*c == ':')
          {
            if (colon != NULL)
              return NULL; /* an unbracketed IPv6 address or junk */
            colon = c;
          }
      if (colon == NULL)
        return NULL; /* no default port */
      host_start = s;
      host_end = colon;
      port_start = colon + 1;
      family = G_SOCKET_FAMILY_IPV4;
      for (const char *c = host_start; c < host_end; c++)
        if (!g_ascii_isdigit (*c) && *c != '.')
          return NULL;
    }

  if (host_end <= host_start || port_start >= e || e - port_start > 5)
    return NULL;
  for (const char *c = port_start; c < e; c++)
    {
      if (!g_ascii_isdigit (*c))
        return NULL;
      port = port * 10 + (guint) (*c - '0');
    }
  if (port == 0 || port > 65535 || *port_start == '0')
    return NULL;

  memcpy (host, host_start, (gsize) (host_end - host_start));
  host[host_end - host_start] = '\0';
  address = g_inet_address_new_from_string (host);
  if (address == NULL || g_inet_address_get_family (address) != family)
    return NULL;

  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (address, (guint16) port));
}

static gboolean
socket_address_equal (GInetSocketAddress *a,
                      GInetSocketAddress *b)
{
  return g_inet_socket_address_get_port (a) == g_inet_socket_address_get_port (b)
         && g_inet_address_equal (g_inet_socket_address_get_address (a),
                                  g_inet_socket_address_get_address (b));
}

/**
 * alv_alt_parse_full:
 * @value: the value of an `X-Alt` or `X-NAlt` header
 * @max_entries: the most addresses to return (non-zero)
 * @n_skipped: (out) (optional): how many invalid entries were skipped
 * @error: return location for a #GError
 *
 * Parses CAW's compact alternate-location list, e.g.
 * `1.2.3.4:6346, [2001:db8::1]:8080`.  Each entry is an IPv4 literal or a
 * bracketed IPv6 literal (no zone id), a colon and a port from 1 to 65535
 * (there is no default port).  Host names, URLs and anything else are
 * skipped and counted in @n_skipped, so one bad entry from a peer does not
 * lose the good ones; duplicates are dropped, the order is kept, and
 * parsing stops once @max_entries addresses are found.  Empty list
 * elements are ignored.  Addresses are not filtered: see
 * alv_alt_address_is_public().
 *
 * Errors: %ALV_ERROR_PARSE when the header has entries and none is valid.
 *
 * Returns: (transfer full) (element-type GInetSocketAddress): the
 *   addresses (empty for an empty header), or %NULL on error
 */
GPtrArray *
alv_alt_parse_full (const char  *value,
                    guint        max_entries,
                    guint       *n_skipped,
                    GError     **error)
{
  g_autoptr(GPtrArray) result = NULL;
  guint skipped = 0;
  const char *p;

  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (max_entries > 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  result = g_ptr_array_new_with_free_func (g_object_unref);
  p = value;
  while (*p != '\0' && result->len < max_entries)
    {
      const char *start = p;
      const char *end = strchr (p, ',');
      g_autoptr(GInetSocketAddress) addr = NULL;
      gboolean dup = FALSE;

      if (end == NULL)
        end = p + strlen (p);
      p = *end == ',' ? end + 1 : end;

      trim_span (&start, &end);
      if (start == end)
        continue;

      addr = parse_alt_entry (start, end);
      if (addr == NULL)
        {
          skipped++;
          continue;
        }
      for (guint i = 0; i < result->len && !dup; i++)
        dup = socket_address_equal (result->pdata[i], addr);
      if (!dup)
        g_ptr_array_add (result, g_steal_pointer (&addr));
    }

  if (n_skipped != NULL)
    *n_skipped = skipped;
  if (result->len == 0 && skipped > 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("X-Alt: none of the %u entries is an IP address and port"),
                   skipped);
      return NULL;
    }
  return g_steal_pointer (&result);
}

/**
 * alv_alt_parse:
 * @value: the value of an `X-Alt` or `X-NAlt` header
 * @max_entries: the most addresses to return (non-zero)
 * @error: return location for a #GError
 *
 * As alv_alt_parse_full() without the count of skipped entries.
 *
 * Returns: (transfer full) (element-type GInetSocketAddress): the
 *   addresses, or %NULL on error
 */
GPtrArray *
alv_alt_parse (const char  *value,
               guint        max_entries,
               GError     **error)
{
  return alv_alt_parse_full (value, max_entries, NULL, error);
}

/* "FIRST-LAST" in [s, e): block numbers, FIRST <= LAST < n_blocks. */
static gboolean
parse_block_run (const char *s,
                 const char *e,
                 guint       n_blocks,
                 guint      *first,
                 guint      *last)
{
  g_autofree char *text = g_strndup (s, (gsize) (e - s));
  const char *dash = strchr (text, '-');
  g_autofree char *a = NULL;
  guint64 f, l;

  if (dash == NULL)
    return FALSE;
  a = g_strndup (text, (gsize) (dash - text));
  if (!g_ascii_string_to_unsigned (a, 10, 0, G_MAXUINT32, &f, NULL) ||
      !g_ascii_string_to_unsigned (dash + 1, 10, 0, G_MAXUINT32, &l, NULL) ||
      f > l || l >= n_blocks)
    return FALSE;
  *first = (guint) f;
  *last = (guint) l;
  return TRUE;
}

static void
origin_pull_clear (gpointer data)
{
  g_clear_object (&((AlvOriginPull *) data)->address);
}

/**
 * alv_origin_pulls_parse:
 * @value: the value of an `X-Origin-Pulls` header
 * @n_blocks: blocks of the item
 *
 * Parses the gateway's list of the origin leases running for others:
 * `1.2.3.4:6346 0-15, [2001:db8::1]:8080 16-31`.  Invalid entries are
 * skipped; at most %ALV_ORIGIN_PULLS_MAX are returned.
 *
 * Returns: (transfer full) (element-type AlvOriginPull): the entries
 */
GArray *
alv_origin_pulls_parse (const char *value,
                        guint       n_blocks)
{
  GArray *out = g_array_new (FALSE, TRUE, sizeof (AlvOriginPull));
  const char *p = value;

  g_array_set_clear_func (out, origin_pull_clear);
  while (p != NULL && *p != '\0' && out->len < ALV_ORIGIN_PULLS_MAX)
    {
      const char *start = p, *end = strchr (p, ','), *space;
      AlvOriginPull pull = { NULL, 0, 0 };

      if (end == NULL)
        end = p + strlen (p);
      p = *end == ',' ? end + 1 : end;
      trim_span (&start, &end);
      space = memchr (start, ' ', (gsize) (end - start));
      if (space == NULL || !parse_block_run (space + 1, end, n_blocks, &pull.first, &pull.last))
        continue;
      pull.address = parse_alt_entry (start, space);
      if (pull.address != NULL)
        g_array_append_val (out, pull);
    }
  return out;
}

/**
 * alv_origin_lease_parse:
 * @value: (nullable): the value of an `X-Origin-Lease` header
 * @n_blocks: blocks of the item
 * @first: (out): first block of the lease
 * @last: (out): last block, inclusive
 *
 * Returns: whether @value grants a lease (`FIRST-LAST`); %FALSE for
 *   `none`, a missing header, or anything malformed
 */
gboolean
alv_origin_lease_parse (const char *value,
                        guint       n_blocks,
                        guint      *first,
                        guint      *last)
{
  const char *start = value, *end;

  if (value == NULL)
    return FALSE;
  end = value + strlen (value);
  trim_span (&start, &end);
  return parse_block_run (start, end, n_blocks, first, last);
}

/**
 * alv_reachable_to_string:
 * @reachable: what is known of a peer port
 *
 * Returns: the `X-Reachable` value: `yes`, `no` or `unknown`
 */
const char *
alv_reachable_to_string (AlvReachable reachable)
{
  switch (reachable)
    {
    case ALV_REACHABLE_YES:
      return "yes";
    case ALV_REACHABLE_NO:
      return "no";
    case ALV_REACHABLE_UNKNOWN:
    default:
      return "unknown";
    }
}

/**
 * alv_reachable_parse:
 * @value: (nullable): the value of an `X-Reachable` header
 *
 * Returns: what it says; %ALV_REACHABLE_UNKNOWN for `unknown`, a missing
 *   header or anything else
 */
AlvReachable
alv_reachable_parse (const char *value)
{
  g_autofree char *v = value != NULL ? g_strstrip (g_ascii_strdown (value, -1)) : NULL;

  if (g_strcmp0 (v, "yes") == 0)
    return ALV_REACHABLE_YES;
  if (g_strcmp0 (v, "no") == 0)
    return ALV_REACHABLE_NO;
  return ALV_REACHABLE_UNKNOWN;
}

/**
 * alv_alt_format_address:
 * @addr: an address
 *
 * Formats one alternate location: `1.2.3.4:6346` or `[2001:db8::1]:8080`.
 *
 * Returns: (transfer full) (nullable): the entry, or %NULL for port 0
 */
char *
alv_alt_format_address (GInetSocketAddress *addr)
{
  GInetAddress *address;
  g_autofree char *host = NULL;
  char port_text[6];
  char *digits;
  guint16 port;

  g_return_val_if_fail (G_IS_INET_SOCKET_ADDRESS (addr), NULL);

  port = g_inet_socket_address_get_port (addr);
  if (port == 0)
    return NULL;
  address = g_inet_socket_address_get_address (addr);
  host = g_inet_address_to_string (address);
  /* the port's digits by hand: a gateway formats every peer of every
   * announce answer */
  digits = port_text + sizeof port_text - 1;
  *digits = '\0';
  do
    {
      *--digits = (char) ('0' + port % 10);
      port /= 10;
    }
  while (port > 0);
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    return g_strconcat ("[", host, "]:", digits, NULL);
  return g_strconcat (host, ":", digits, NULL);
}

/**
 * alv_alt_format:
 * @addrs: (element-type GInetSocketAddress): addresses
 * @max_entries: the most addresses to write
 *
 * Formats an `X-Alt` (or `X-NAlt`) value, e.g.
 * `1.2.3.4:6346,[2001:db8::1]:8080`; alv_alt_parse() reads it back.
 * Addresses with port 0 are left out.
 *
 * Returns: (transfer full) (nullable): the value, or %NULL when there is
 *   nothing to write (then send no header)
 */
char *
alv_alt_format (GPtrArray *addrs,
                guint      max_entries)
{
  GString *s;
  guint n = 0;

  g_return_val_if_fail (addrs != NULL, NULL);

  s = g_string_new (NULL);
  for (guint i = 0; i < addrs->len && n < max_entries; i++)
    {
      g_autofree char *entry = alv_alt_format_address (addrs->pdata[i]);

      if (entry == NULL)
        continue;
      if (n++ > 0)
        g_string_append_c (s, ',');
      g_string_append (s, entry);
    }
  if (n == 0)
    {
      g_string_free (s, TRUE);
      return NULL;
    }
  return g_string_free (s, FALSE);
}

static gboolean
ipv4_is_public (const guint8 *b)
{
  return !(b[0] == 0                                  /* 0/8 "this network" */
           || b[0] == 10                              /* 10/8 private */
           || b[0] == 127                             /* loopback */
           || (b[0] == 100 && (b[1] & 0xc0) == 64)    /* 100.64/10 shared (CGNAT) */
           || (b[0] == 169 && b[1] == 254)            /* link-local */
           || (b[0] == 172 && (b[1] & 0xf0) == 16)    /* 172.16/12 private */
           || (b[0] == 192 && b[1] == 168)            /* 192.168/16 private */
           || b[0] >= 224);                           /* multicast, reserved, broadcast */
}

/**
 * alv_alt_address_is_public:
 * @address: an address
 *
 * Whether @address may be a peer on the public Internet: not unspecified,
 * loopback, private (RFC 1918, shared 100.64/10, IPv6 unique-local and
 * site-local), link-local, multicast or reserved (240/4).  IPv4-mapped
 * IPv6 addresses are judged by their IPv4 address.  Documentation prefixes
 * (192.0.2/24, 2001:db8::/32) count as public, so that tests can use them.
 *
 * Returns: %TRUE if @address is public
 */
gboolean
alv_alt_address_is_public (GInetAddress *address)
{
  const guint8 *b;

  g_return_val_if_fail (G_IS_INET_ADDRESS (address), FALSE);

  b = g_inet_address_to_bytes (address);
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV4)
    return ipv4_is_public (b);

  {
    static const guint8 v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    static const guint8 zero[15] = { 0 };

    if (memcmp (b, v4_mapped, 12) == 0)
      return ipv4_is_public (b + 12);
    if (memcmp (b, zero, 15) == 0)
      return FALSE;                           /* :: and ::1 */
    if ((b[0] & 0xfe) == 0xfc)                /* fc00::/7 unique local */
      return FALSE;
    if (b[0] == 0xfe && (b[1] & 0x80) == 0x80) /* fe80::/10 link-local, fec0::/10 site-local */
      return FALSE;
    if (b[0] == 0xff)                         /* multicast */
      return FALSE;
  }
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* X-Content-URN                                                       */

/**
 * alv_content_urn_parse:
 * @value: the value of an `X-Content-URN` header
 * @error: return location for a #GError
 *
 * Parses CAW's `X-Content-URN`, a comma-separated list of URNs naming the
 * same content, and returns its `urn:tree:sha256:` URN normalised (see
 * alv_urn_normalize()).  Other URNs (`urn:sha1:`, …) are skipped.
 *
 * Errors: %ALV_ERROR_INVALID when a `urn:tree:sha256:` entry is malformed
 * or two of them disagree; %ALV_ERROR_UNSUPPORTED when only other URNs
 * are listed; %ALV_ERROR_PARSE when the value holds no URN at all;
 * %ALV_ERROR_LIMIT for more than 16 entries.
 *
 * Returns: (transfer full): the normalised URN, or %NULL on error
 */
char *
alv_content_urn_parse (const char  *value,
                       GError     **error)
{
  static const char header[] = "X-Content-URN";
  g_autofree char *found = NULL;
  gboolean saw_other_urn = FALSE;
  gboolean saw_garbage = FALSE;
  guint n = 0;
  const char *p;

  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  p = value;
  while (*p != '\0')
    {
      const char *start = p;
      const char *end = strchr (p, ',');

      if (end == NULL)
        end = p + strlen (p);
      p = *end == ',' ? end + 1 : end;

      trim_span (&start, &end);
      if (start == end)
        continue;
      if (++n > CONTENT_URN_MAX_ENTRIES)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                       _("%s: more than %u URNs"), header, CONTENT_URN_MAX_ENTRIES);
          return NULL;
        }

      if ((gsize) (end - start) >= URN_PREFIX_LEN
          && g_ascii_strncasecmp (start, URN_PREFIX, URN_PREFIX_LEN) == 0)
        {
          g_autofree char *urn = alv_urn_normalize_span (start, (gsize) (end - start), header, error);

          if (urn == NULL)
            return NULL;
          if (found != NULL && strcmp (found, urn) != 0)
            {
              g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                           _("%s: two different %s URNs"), header, URN_PREFIX);
              return NULL;
            }
          if (found == NULL)
            found = g_steal_pointer (&urn);
        }
      else if ((gsize) (end - start) > 4 && g_ascii_strncasecmp (start, "urn:", 4) == 0)
        saw_other_urn = TRUE;
      else
        saw_garbage = TRUE;
    }

  if (found != NULL)
    return g_steal_pointer (&found);
  if (saw_other_urn && !saw_garbage)
    g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                 _("%s: no %s URN among the URNs given"), header, URN_PREFIX);
  else
    g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                 _("%s: no URN found"), header);
  return NULL;
}

/* ------------------------------------------------------------------ */
/* X-Thex-URI                                                          */

/* Length of the URI scheme at the start of s (RFC 3986 §3.1) including
 * the colon, or 0 when s does not start with one. */
static gsize
scheme_length (const char *s)
{
  gsize i;

  if (!g_ascii_isalpha (s[0]))
    return 0;
  for (i = 1; g_ascii_isalnum (s[i]) || s[i] == '+' || s[i] == '-' || s[i] == '.'; i++)
    ;
  return s[i] == ':' ? i + 1 : 0;
}

static gboolean
check_thex_uri (const char  *uri,
                GError     **error)
{
  static const char header[] = "X-Thex-URI";
  gsize len = strlen (uri);
  gsize scheme_len;

  if (len == 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE, _("%s: the URI is empty"), header);
      return FALSE;
    }
  if (len > ALV_THEX_URI_MAX_LENGTH)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("%s: the URI is longer than %u bytes"), header, ALV_THEX_URI_MAX_LENGTH);
      return FALSE;
    }
  for (gsize i = 0; i < len; i++)
    if ((guchar) uri[i] <= 0x20 || (guchar) uri[i] >= 0x7f)
      {
        g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                     _("%s: byte %zu of the URI is not a printable ASCII character"),
                     header, i + 1);
        return FALSE;
      }

  scheme_len = scheme_length (uri);
  if (scheme_len > 0)
    {
      g_autoptr(GUri) parsed = NULL;
      const char *host;

      if (g_ascii_strncasecmp (uri, "http:", scheme_len) != 0
          && g_ascii_strncasecmp (uri, "https:", scheme_len) != 0)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_UNSUPPORTED,
                       _("%s: only http and https URIs are supported"), header);
          return FALSE;
        }
      parsed = g_uri_parse (uri, G_URI_FLAGS_NONE, NULL);
      host = parsed != NULL ? g_uri_get_host (parsed) : NULL;
      if (host == NULL || *host == '\0')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: the URI is not a valid http(s) URL"), header);
          return FALSE;
        }
    }
  else
    {
      g_autoptr(GUri) base = NULL;
      g_autoptr(GUri) resolved = NULL;

      if (uri[0] == '/' && uri[1] == '/')
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_UNSAFE,
                       _("%s: a network-path reference (“//host”) is not accepted"), header);
          return FALSE;
        }
      base = g_uri_parse ("http://localhost/", G_URI_FLAGS_NONE, NULL);
      resolved = g_uri_parse_relative (base, uri, G_URI_FLAGS_NONE, NULL);
      if (resolved == NULL)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                       _("%s: the URI is not a valid relative reference"), header);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * alv_thex_uri_parse:
 * @value: the value of an `X-Thex-URI` header
 * @uri_out: (out) (optional) (transfer full): where the tree is served
 * @root_b32_out: (out) (optional) (transfer full): the root, upper-case
 *   base32 (52 characters)
 * @error: return location for a #GError
 *
 * Parses THEX's `X-Thex-URI: <uri>;<root>`, split at the last `;`.  The
 * URI is either a relative reference (typically an absolute path such as
 * `/uri-res/N2X?urn:tree:sha256:…`; a network-path `//host` reference is
 * refused) or an http(s) URL, printable ASCII without spaces, at most
 * %ALV_THEX_URI_MAX_LENGTH bytes.  The root is the base32 root, also
 * accepted with its `urn:tree:sha256:` prefix.  Resolving the URI against
 * the response's URL is the caller's business.
 *
 * Errors: %ALV_ERROR_PARSE (syntax), %ALV_ERROR_INVALID (a malformed
 * root), %ALV_ERROR_LIMIT (too long), %ALV_ERROR_UNSUPPORTED (a scheme
 * other than http or https), %ALV_ERROR_UNSAFE (a `//host` reference).
 *
 * Returns: %TRUE on success
 */
gboolean
alv_thex_uri_parse (const char  *value,
                    char       **uri_out,
                    char       **root_b32_out,
                    GError     **error)
{
  static const char header[] = "X-Thex-URI";
  char root[ALV_URN_ROOT_LENGTH + 1];
  g_autofree char *uri = NULL;
  const char *s, *e, *semi, *rs, *re;

  g_return_val_if_fail (value != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  s = value;
  e = value + strlen (value);
  trim_span (&s, &e);
  if ((gsize) (e - s) > ALV_THEX_URI_MAX_LENGTH + URN_PREFIX_LEN + ALV_URN_ROOT_LENGTH + 8)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("%s: the value is too long"), header);
      return FALSE;
    }
  semi = g_strrstr_len (s, e - s, ";");
  if (semi == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("%s: expected “<uri>;<root>”"), header);
      return FALSE;
    }

  rs = semi + 1;
  re = e;
  trim_span (&rs, &re);
  if ((gsize) (re - rs) >= URN_PREFIX_LEN
      && g_ascii_strncasecmp (rs, URN_PREFIX, URN_PREFIX_LEN) == 0)
    rs += URN_PREFIX_LEN;
  if (!alv_urn_check_root (rs, (gsize) (re - rs), header, root, error))
    return FALSE;

  e = semi;
  trim_span (&s, &e);
  uri = g_strndup (s, (gsize) (e - s));
  if (!check_thex_uri (uri, error))
    return FALSE;

  if (uri_out != NULL)
    *uri_out = g_steal_pointer (&uri);
  if (root_b32_out != NULL)
    *root_b32_out = g_strdup (root);
  return TRUE;
}

/**
 * alv_thex_uri_format:
 * @uri: where the tree is served (relative path or http(s) URL)
 * @root_b32: the base32 root
 *
 * Returns: (transfer full): the `X-Thex-URI` value `<uri>;<root>`
 */
char *
alv_thex_uri_format (const char *uri,
                     const char *root_b32)
{
  g_return_val_if_fail (uri != NULL, NULL);
  g_return_val_if_fail (root_b32 != NULL, NULL);

  return g_strconcat (uri, ";", root_b32, NULL);
}

/* ------------------------------------------------------------------ */
/* N2R                                                                 */

/**
 * alv_n2r_path:
 * @urn: a content URN
 *
 * Returns: (transfer full): the CAW name-to-resource path
 *   `/uri-res/N2R?<urn>`
 */
char *
alv_n2r_path (const char *urn)
{
  g_return_val_if_fail (urn != NULL, NULL);

  return g_strconcat (ALV_N2R_PATH "?", urn, NULL);
}

/**
 * alv_n2r_parse_query:
 * @query: the query of an N2R request (after the `?`), possibly
 *   percent-encoded
 * @error: return location for a #GError
 *
 * Reads the URN an N2R request asks for.
 *
 * Errors: %ALV_ERROR_LIMIT for an over-long query, %ALV_ERROR_PARSE for a
 * bad escape or a URN of another kind, %ALV_ERROR_INVALID for a malformed
 * root.
 *
 * Returns: (transfer full): the normalised URN, or %NULL on error
 */
char *
alv_n2r_parse_query (const char  *query,
                     GError     **error)
{
  g_autofree char *unescaped = NULL;
  char *urn;

  g_return_val_if_fail (query != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (strlen (query) > N2R_QUERY_MAX_LENGTH)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("N2R: the query is longer than %u bytes"), N2R_QUERY_MAX_LENGTH);
      return NULL;
    }
  unescaped = g_uri_unescape_string (query, NULL);
  if (unescaped == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("N2R: the query has an invalid percent-escape"));
      return NULL;
    }
  urn = alv_urn_normalize (unescaped, error);
  if (urn == NULL)
    g_prefix_error (error, "N2R: ");
  return urn;
}
