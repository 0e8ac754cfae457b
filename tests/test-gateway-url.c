/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the gateway's URL normal form (server/gateway-url.c):
 * tables of spellings that must come out as one text (so they share one
 * entry and one fetch) and of URLs that must stay apart; the query kept
 * or dropped; the normal form a fixed point; and the origin keys of the
 * fetch slots.  No sockets.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "alv-error.h"
#include "gateway-url.h"

typedef struct
{
  const char *text;
  const char *normal;
} NormalCase;

/* the query dropped */
static const NormalCase drop_cases[] = {
  { "http://h/a.mp3", "http://h/a.mp3" },
  /* scheme and host case, default ports */
  { "HTTP://H/a.mp3", "http://h/a.mp3" },
  { "http://Station.EXAMPLE/a.mp3", "http://station.example/a.mp3" },
  { "http://h:80/a.mp3", "http://h/a.mp3" },
  { "https://h:443/a.mp3", "https://h/a.mp3" },
  { "http://h:443/a.mp3", "http://h:443/a.mp3" },
  { "https://h:80/a.mp3", "https://h:80/a.mp3" },
  { "http://h:8080/a.mp3", "http://h:8080/a.mp3" },
  /* a fully qualified name */
  { "http://h.example./a.mp3", "http://h.example/a.mp3" },
  /* percent-encoding: unreserved decoded, the rest in upper case,
   * raw bytes encoded */
  { "http://h/%61.mp3", "http://h/a.mp3" },
  { "http://h/a%7Eb%2Dc%5F%2E.mp3", "http://h/a~b-c_..mp3" },
  { "http://h/a%2fb.mp3", "http://h/a%2Fb.mp3" },
  { "http://h/a%c3%a9.mp3", "http://h/a%C3%A9.mp3" },
  { "http://h/a\xc3\xa9.mp3", "http://h/a%C3%A9.mp3" },
  { "http://h/a b.mp3", "http://h/a%20b.mp3" },
  /* dot segments and empty segments */
  { "http://h/x/./y/../a.mp3", "http://h/x/a.mp3" },
  { "http://h//a.mp3", "http://h/a.mp3" },
  { "http://h/x//y///a.mp3", "http://h/x/y/a.mp3" },
  { "http://h", "http://h/" },
  /* what is never sent to a server, or ignored by it */
  { "http://h/a.mp3#t=10", "http://h/a.mp3" },
  { "http://h/a.mp3#", "http://h/a.mp3" },
  { "http://h/a.mp3?", "http://h/a.mp3" },
  { "http://h/a.mp3?x=1", "http://h/a.mp3" },
  { "http://h/a.mp3?x=1#f", "http://h/a.mp3" },
  /* IPv6 literals */
  { "http://[::1]:80/a.mp3", "http://[::1]/a.mp3" },
  { "http://[2001:DB8::1]/a.mp3", "http://[2001:db8::1]/a.mp3" },
};

/* the query kept (--allow-query) */
static const NormalCase keep_cases[] = {
  { "http://h/a.mp3?x=1", "http://h/a.mp3?x=1" },
  { "HTTP://H:80//a.mp3?x=1#f", "http://h/a.mp3?x=1" },
  { "http://h/a.mp3?", "http://h/a.mp3" },
  { "http://h/a.mp3?%61=%7e", "http://h/a.mp3?a=~" },
  { "http://h/a.mp3?b=2&a=1", "http://h/a.mp3?b=2&a=1" },
};

static void
check_cases (const NormalCase *cases,
             gsize             n,
             GatewayUrlQuery   query)
{
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *normal = gateway_url_normalize_text (cases[i].text, query, &error);
      g_autofree char *again = NULL;

      g_test_message ("%s", cases[i].text);
      g_assert_no_error (error);
      g_assert_cmpstr (normal, ==, cases[i].normal);
      /* a fixed point */
      again = gateway_url_normalize_text (normal, query, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (again, ==, normal);
    }
}

static void
test_drop_query (void)
{
  check_cases (drop_cases, G_N_ELEMENTS (drop_cases), GATEWAY_URL_QUERY_DROP);
}

static void
test_keep_query (void)
{
  check_cases (keep_cases, G_N_ELEMENTS (keep_cases), GATEWAY_URL_QUERY_KEEP);
}

/* What names another file on some server stays apart. */
static void
test_distinct (void)
{
  static const char *const urls[] = {
    "http://h/a.mp3",
    "http://h/A.mp3",               /* case-sensitive file systems */
    "http://h/a.mp3/",
    "http://h/a%2Fb.mp3",
    "http://h/a/b.mp3",
    "https://h/a.mp3",
    "http://h:8080/a.mp3",
    "http://h/a.mp3;x",
  };
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (urls); i++)
    {
      g_autoptr(GError) error = NULL;
      char *normal = gateway_url_normalize_text (urls[i], GATEWAY_URL_QUERY_DROP, &error);

      g_assert_no_error (error);
      g_assert_true (g_hash_table_add (seen, normal));
    }
}

static void
test_invalid (void)
{
  static const char *const texts[] = { "", "not a url", "http://", "http:///a.mp3", "/a.mp3",
                                       "http://h/%zz" };

  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *normal = gateway_url_normalize_text (texts[i], GATEWAY_URL_QUERY_DROP,
                                                            &error);

      g_assert_null (normal);
      g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
    }
}

static char *
origin_key (const char *text)
{
  g_autoptr(GUri) uri = g_uri_parse (text, G_URI_FLAGS_ENCODED | G_URI_FLAGS_SCHEME_NORMALIZE,
                                     NULL);

  g_assert_nonnull (uri);
  return gateway_url_origin_key (uri);
}

static void
test_origin_key (void)
{
  static const NormalCase cases[] = {
    { "http://h/a.mp3", "http://h:80" },
    { "HTTP://H:80/b/c.mp3?x", "http://h:80" },
    { "https://h/a.mp3", "https://h:443" },
    { "http://h:8080/a.mp3", "http://h:8080" },
    { "http://h.example./a.mp3", "http://h.example:80" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *key = origin_key (cases[i].text);

      g_assert_cmpstr (key, ==, cases[i].normal);
    }
}

static void
test_has_query (void)
{
  static const struct
  {
    const char *text;
    gboolean has;
  } cases[] = {
    { "http://h/a.mp3", FALSE },
    { "http://h/a.mp3?", FALSE },
    { "http://h/a.mp3#?x", FALSE },
    { "http://h/a.mp3?x", TRUE },
    { "http://h/a.mp3?=", TRUE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GUri) uri = g_uri_parse (cases[i].text, G_URI_FLAGS_ENCODED, NULL);

      g_assert_nonnull (uri);
      g_assert_cmpint (gateway_url_has_query (uri), ==, cases[i].has);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/server/gateway-url/drop-query", test_drop_query);
  g_test_add_func ("/server/gateway-url/keep-query", test_keep_query);
  g_test_add_func ("/server/gateway-url/distinct", test_distinct);
  g_test_add_func ("/server/gateway-url/invalid", test_invalid);
  g_test_add_func ("/server/gateway-url/origin-key", test_origin_key);
  g_test_add_func ("/server/gateway-url/has-query", test_has_query);
  return g_test_run ();
}
