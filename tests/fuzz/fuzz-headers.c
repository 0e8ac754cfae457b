/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * libFuzzer target for the OCN header parsers of alv-ocn-headers.h
 * (`X-Alt`/`X-NAlt`, `X-Content-URN`, `X-Thex-URI`, N2R queries, content
 * URNs) and the HTTP `Date` parser and station clock of alv-clock.h.  The
 * first input byte selects the parser and the rest is the header value.
 * Whatever a parser accepts must format and parse back to the same thing,
 * agree with the other URN parsers (alv_urn_parse(), alv_base32_decode()),
 * and keep its documented limits; errors must come in %ALV_ERROR.
 */
#define G_LOG_DOMAIN "fuzz-headers"

#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <gio/gio.h>

#include "alv-base32.h"
#include "alv-clock.h"
#include "alv-error.h"
#include "alv-hash-tree.h"
#include "alv-ocn-headers.h"
#include "alv-urn.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_alv_error (const GError *error)
{
  CHECK (error != NULL);
  CHECK (error->domain == ALV_ERROR);
  CHECK (error->message != NULL);
}

static gboolean
address_equal (GInetSocketAddress *a, GInetSocketAddress *b)
{
  return g_inet_socket_address_get_port (a) == g_inet_socket_address_get_port (b)
         && g_inet_address_equal (g_inet_socket_address_get_address (a),
                                  g_inet_socket_address_get_address (b));
}

/* ---- X-Alt ------------------------------------------------------------- */

static void
fuzz_alt (const char *text, guint max_entries)
{
  g_autoptr(GPtrArray) addrs = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *formatted = NULL;
  guint skipped = G_MAXUINT;

  addrs = alv_alt_parse_full (text, max_entries, &skipped, &error);
  if (addrs == NULL)
    {
      check_alv_error (error);
      CHECK (error->code == ALV_ERROR_PARSE);
      CHECK (skipped > 0 && skipped != G_MAXUINT);
      return;
    }
  CHECK (error == NULL);
  CHECK (skipped != G_MAXUINT);
  CHECK (addrs->len <= max_entries);

  for (guint i = 0; i < addrs->len; i++)
    {
      GInetSocketAddress *a = addrs->pdata[i];
      GInetAddress *ia = g_inet_socket_address_get_address (a);
      g_autofree char *entry = alv_alt_format_address (a);

      CHECK (G_IS_INET_SOCKET_ADDRESS (a));
      CHECK (g_inet_socket_address_get_port (a) != 0);
      CHECK (g_inet_address_get_family (ia) == G_SOCKET_FAMILY_IPV4 ||
             g_inet_address_get_family (ia) == G_SOCKET_FAMILY_IPV6);
      CHECK (entry != NULL && strlen (entry) <= 64);
      (void) alv_alt_address_is_public (ia);
      for (guint j = 0; j < i; j++)
        CHECK (!address_equal (a, addrs->pdata[j]));
    }

  formatted = alv_alt_format (addrs, max_entries);
  if (addrs->len == 0)
    {
      CHECK (formatted == NULL);
      /* the same check as the parse above made: only empty elements */
      CHECK (skipped == 0);
      return;
    }
  CHECK (formatted != NULL);

  {
    g_autoptr(GPtrArray) again = NULL;
    g_autofree char *formatted2 = NULL;
    guint skipped2 = G_MAXUINT;

    again = alv_alt_parse_full (formatted, max_entries, &skipped2, NULL);
    CHECK (again != NULL && skipped2 == 0);
    CHECK (again->len == addrs->len);
    for (guint i = 0; i < again->len; i++)
      CHECK (address_equal (again->pdata[i], addrs->pdata[i]));
    formatted2 = alv_alt_format (again, max_entries);
    CHECK (g_strcmp0 (formatted, formatted2) == 0);
  }

  /* the short form agrees */
  {
    g_autoptr(GPtrArray) plain = alv_alt_parse (text, max_entries, NULL);

    CHECK (plain != NULL && plain->len == addrs->len);
  }
}

/* ---- URNs -------------------------------------------------------------- */

/* A normalised URN must also be what the hash-tree code reads and writes. */
static void
check_normalized_urn (const char *urn)
{
  guint8 root[ALV_HASH_SIZE];
  g_autofree char *again = NULL;
  g_autofree char *formatted = NULL;

  CHECK (g_str_has_prefix (urn, ALV_URN_PREFIX));
  CHECK (strlen (urn) == strlen (ALV_URN_PREFIX) + ALV_URN_ROOT_LENGTH);
  CHECK (alv_urn_is_valid (urn));
  again = alv_urn_normalize (urn, NULL);
  CHECK (g_strcmp0 (again, urn) == 0);
  CHECK (alv_urn_parse (urn, root, NULL));
  formatted = alv_urn_format (root);
  CHECK (strcmp (formatted, urn) == 0);
}

static void
fuzz_content_urn (const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *urn = alv_content_urn_parse (text, &error);
  g_autoptr(GError) norm_error = NULL;
  g_autofree char *normalized = alv_urn_normalize (text, &norm_error);
  guint8 root[ALV_HASH_SIZE];

  if (urn != NULL)
    {
      CHECK (error == NULL);
      check_normalized_urn (urn);
    }
  else
    {
      check_alv_error (error);
      CHECK (error->code == ALV_ERROR_PARSE || error->code == ALV_ERROR_INVALID ||
             error->code == ALV_ERROR_UNSUPPORTED || error->code == ALV_ERROR_LIMIT);
    }

  CHECK (alv_urn_is_valid (text) == (normalized != NULL));
  if (normalized != NULL)
    {
      CHECK (norm_error == NULL);
      check_normalized_urn (normalized);
      /* a single valid URN is a valid X-Content-URN list of one */
      CHECK (urn != NULL && strcmp (urn, normalized) == 0);
    }
  else
    {
      check_alv_error (norm_error);
      CHECK (norm_error->code == ALV_ERROR_PARSE ||
             norm_error->code == ALV_ERROR_INVALID);
    }

  /* alv_urn_parse() is stricter (no whitespace) but never disagrees */
  if (alv_urn_parse (text, root, NULL))
    {
      g_autofree char *formatted = alv_urn_format (root);

      CHECK (normalized != NULL && strcmp (formatted, normalized) == 0);
      CHECK (g_ascii_strcasecmp (formatted, text) == 0);
    }
}

/* ---- X-Thex-URI -------------------------------------------------------- */

static void
fuzz_thex_uri (const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *uri = NULL;
  g_autofree char *root = NULL;
  g_autofree char *formatted = NULL;
  g_autofree char *uri2 = NULL;
  g_autofree char *root2 = NULL;
  guint8 raw[ALV_HASH_SIZE];

  if (!alv_thex_uri_parse (text, &uri, &root, &error))
    {
      check_alv_error (error);
      CHECK (uri == NULL && root == NULL);
      return;
    }
  CHECK (error == NULL);
  CHECK (uri != NULL && root != NULL);
  CHECK (*uri != '\0' && strlen (uri) <= ALV_THEX_URI_MAX_LENGTH);
  CHECK (strlen (root) == ALV_URN_ROOT_LENGTH);
  for (const char *c = uri; *c != '\0'; c++)
    CHECK ((guchar) *c > 0x20 && (guchar) *c < 0x7f);
  CHECK (!g_str_has_prefix (uri, "//"));
  CHECK (alv_base32_decode (root, -1, raw, sizeof raw, NULL));
  {
    g_autofree char *b32 = alv_base32_encode (raw, sizeof raw);

    CHECK (strcmp (b32, root) == 0);
  }

  formatted = alv_thex_uri_format (uri, root);
  CHECK (alv_thex_uri_parse (formatted, &uri2, &root2, NULL));
  CHECK (strcmp (uri, uri2) == 0 && strcmp (root, root2) == 0);
  CHECK (alv_thex_uri_parse (text, NULL, NULL, NULL));
}

/* ---- N2R --------------------------------------------------------------- */

static void
fuzz_n2r (const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *urn = alv_n2r_parse_query (text, &error);
  g_autofree char *path = NULL;
  g_autofree char *again = NULL;
  const char *query;

  if (urn == NULL)
    {
      check_alv_error (error);
      CHECK (error->code == ALV_ERROR_PARSE || error->code == ALV_ERROR_INVALID ||
             error->code == ALV_ERROR_LIMIT);
      return;
    }
  CHECK (error == NULL);
  check_normalized_urn (urn);

  path = alv_n2r_path (urn);
  CHECK (g_str_has_prefix (path, ALV_N2R_PATH "?"));
  query = path + strlen (ALV_N2R_PATH "?");
  again = alv_n2r_parse_query (query, NULL);
  CHECK (g_strcmp0 (again, urn) == 0);
}

/* ---- Date -------------------------------------------------------------- */

static void
fuzz_date (const char *text)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *formatted = NULL;
  gint64 secs = 0, secs2 = 0;

  if (!alv_http_date_parse (text, &secs, &error))
    {
      check_alv_error (error);
      CHECK (error->code == ALV_ERROR_PARSE || error->code == ALV_ERROR_INVALID);
      return;
    }
  CHECK (error == NULL);
  /* four-digit years at most, two-digit ones near now */
  CHECK (secs >= G_GINT64_CONSTANT (-62167219200));  /* 0000-01-01 */
  CHECK (secs < G_GINT64_CONSTANT (253402300800));   /* 10000-01-01 */

  /* the formatter covers years 1 to 9999 */
  if (secs < G_GINT64_CONSTANT (-62135596800))
    return;
  formatted = alv_http_date_format (secs);
  CHECK (formatted != NULL && strlen (formatted) == 29);
  CHECK (alv_http_date_parse (formatted, &secs2, NULL));
  CHECK (secs == secs2);
}

/* ---- station clock ----------------------------------------------------- */

static gint64
read_i64 (const guint8 *p)
{
  guint64 v = 0;

  for (guint i = 0; i < 8; i++)
    v |= (guint64) p[i] << (8 * i);
  return (gint64) v;
}

/* Each 17-byte record: a Date (seconds after 2000-01-01, or a raw string
 * when the flag byte says so), when the request was sent and how long the
 * answer took.  After every sample the clock's estimate must lie within
 * what that sample proved. */
static void
fuzz_clock (const guint8 *data, gsize size)
{
  g_autoptr(AlvStationClock) clock = alv_station_clock_new ();

  for (gsize i = 0; i + 17 <= size; i += 17)
    {
      const guint8 *r = data + i;
      guint8 flags = r[0];
      gint64 date_s = G_GINT64_CONSTANT (946684800) +
                      (gint64) (((guint64) read_i64 (r + 1)) %
                                G_GUINT64_CONSTANT (6400000000));
      gint64 sent = read_i64 (r + 9);
      gint64 rtt;
      g_autofree char *date = NULL;
      g_autoptr(GError) error = NULL;
      gboolean ok;

      if (flags & 1)
        sent = (gint64) ((guint64) sent % G_GUINT64_CONSTANT (7258118400000000));
      else
        sent /= 4;  /* anything, without overflowing sent + rtt below */
      rtt = (flags & 2) ? (gint64) (flags >> 2) * 1000000 : (gint64) (flags >> 2) * 7919;
      if (flags & 0x80)
        rtt = -rtt;
      if (flags & 0x40)
        date = g_strndup ((const char *) r + 1, 8);
      else
        date = alv_http_date_format (date_s);

      if (flags & 0x20)
        alv_station_clock_reset (clock);
      ok = alv_station_clock_add_sample (clock, date, sent,
                                         sent + rtt, &error);
      if (!ok)
        check_alv_error (error);
      else
        {
          gint64 parsed_s, lo, hi, offset;

          CHECK (error == NULL);
          CHECK (alv_http_date_parse (date, &parsed_s, NULL));
          lo = parsed_s * G_USEC_PER_SEC - (sent + rtt);
          hi = parsed_s * G_USEC_PER_SEC + G_USEC_PER_SEC - sent;
          offset = alv_station_clock_get_offset (clock);
          CHECK (offset >= lo && offset <= hi);
          CHECK (alv_station_clock_has_samples (clock));
        }
      CHECK (alv_station_clock_get_n_samples (clock) <= ALV_STATION_CLOCK_MAX_SAMPLES);
      CHECK (alv_station_clock_get_uncertainty (clock) >= 0);
      CHECK (alv_station_clock_has_samples (clock) ==
             (alv_station_clock_get_n_samples (clock) > 0));
      if (alv_station_clock_has_samples (clock))
        {
          g_autoptr(GDateTime) now = alv_station_clock_now_datetime (clock);

          CHECK (now != NULL);
        }
      else
        CHECK (alv_station_clock_get_offset (clock) == 0);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autofree char *text = NULL;

  fuzz_init ();
  if (size < 1)
    return 0;

  text = g_strndup ((const char *) data + 1, size - 1);
  switch (data[0] % 8)
    {
    case 0:
      fuzz_alt (text, ALV_ALT_MAX_ENTRIES);
      break;
    case 1:
      fuzz_alt (text, 1 + data[0] / 8 % 4);
      break;
    case 2:
      fuzz_content_urn (text);
      break;
    case 3:
      fuzz_thex_uri (text);
      break;
    case 4:
      fuzz_n2r (text);
      break;
    case 5:
      fuzz_date (text);
      break;
    case 6:
      fuzz_clock (data + 1, size - 1);
      break;
    default:
      /* everything at once on the same bytes: no parser may crash */
      fuzz_content_urn (text);
      fuzz_thex_uri (text);
      fuzz_date (text);
      break;
    }
  return 0;
}
