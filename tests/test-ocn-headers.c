/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Tests of common/alv-ocn-headers.h: X-Alt lists (IPv4, IPv6, duplicates,
 * garbage, limits, public-address filter), X-Content-URN, X-Thex-URI and
 * N2R paths, with the hostile inputs a peer could send.
 */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include "alv-error.h"
#include "alv-ocn-headers.h"
#include "alv-urn.h"

/* a valid root: base32 of 32 zero bytes is 52 'A's; this one ends in Q */
#define ROOT "LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQLWPNACQDBZRYQ"
#define URN  "urn:tree:sha256:" ROOT

static char *
alt_to_string (GPtrArray *addrs)
{
  char *s = alv_alt_format (addrs, G_MAXUINT);

  return s != NULL ? s : g_strdup ("");
}

static void
assert_alt (const char *in,
            guint       max,
            const char *expected,
            guint       expected_skipped)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) addrs = NULL;
  g_autofree char *out = NULL;
  guint skipped = 999;

  g_test_message ("X-Alt: %s", in);
  addrs = alv_alt_parse_full (in, max, &skipped, &error);
  g_assert_no_error (error);
  g_assert_nonnull (addrs);
  out = alt_to_string (addrs);
  g_assert_cmpstr (out, ==, expected);
  g_assert_cmpuint (skipped, ==, expected_skipped);

  /* formatting round-trips */
  if (addrs->len > 0)
    {
      g_autoptr(GPtrArray) again = alv_alt_parse (out, max, &error);
      g_autofree char *out2 = NULL;

      g_assert_no_error (error);
      out2 = alt_to_string (again);
      g_assert_cmpstr (out2, ==, out);
    }
}

static void
test_alt_parse (void)
{
  assert_alt ("1.2.3.4:6346", 10, "1.2.3.4:6346", 0);
  assert_alt ("1.2.3.4:6346, [2001:db8::1]:8080", 10, "1.2.3.4:6346,[2001:db8::1]:8080", 0);
  assert_alt ("  10.0.0.1:1 ,\t[::1]:65535 ,", 10, "10.0.0.1:1,[::1]:65535", 0);
  assert_alt ("[2001:DB8:0:0:0:0:0:1]:80", 10, "[2001:db8::1]:80", 0);
  assert_alt ("[::ffff:1.2.3.4]:80", 10, "[::ffff:1.2.3.4]:80", 0);
  /* duplicates dropped, order kept (also across spellings of one address) */
  assert_alt ("1.2.3.4:1,5.6.7.8:2,1.2.3.4:1,[2001:db8::1]:3,[2001:db8:0::1]:3,1.2.3.4:2",
              10, "1.2.3.4:1,5.6.7.8:2,[2001:db8::1]:3,1.2.3.4:2", 0);
  /* empty header and empty elements */
  assert_alt ("", 10, "", 0);
  assert_alt (" , ,, ", 10, "", 0);
  /* bad entries skipped, good ones kept */
  assert_alt ("example.com:80, 1.2.3.4:6346, 1.2.3.4, 1.2.3.4:0, 1.2.3.4:65536,"
              " 1.2.3.4:-1, 256.1.1.1:80, 1.2.3:80, 2001:db8::1:80, [1.2.3.4]:80,"
              " [fe80::1%eth0]:80, [::1]80, http://1.2.3.4:80/, 1.2.3.4:80x, :80,"
              " 01.2.3.4:80, 1.2.3.4:080, [2001:db8::2]:8080",
              10, "1.2.3.4:6346,[2001:db8::2]:8080", 16);
  /* at most max_entries, the rest not even looked at */
  assert_alt ("1.1.1.1:1,2.2.2.2:2,3.3.3.3:3,junk", 2, "1.1.1.1:1,2.2.2.2:2", 0);
}

static void
test_alt_errors (void)
{
  const char *bad[] = {
    "garbage",
    "host.example:6346",
    "1.2.3.4",
    "1.2.3.4:99999, ::1:80",
    "[::1]",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) addrs = alv_alt_parse (bad[i], 10, &error);

      g_test_message ("bad X-Alt: %s", bad[i]);
      g_assert_null (addrs);
      g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
      g_assert_nonnull (strstr (error->message, "X-Alt"));
    }
}

static void
test_alt_limits (void)
{
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GPtrArray) addrs = NULL;
  g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GError) error = NULL;
  g_autofree char *formatted = NULL;

  /* a huge header of mostly duplicates and junk stays bounded */
  for (guint i = 0; i < 50000; i++)
    g_string_append (s, i % 2 ? "1.2.3.4:5," : "x,");
  g_string_append (s, "5.6.7.8:9");
  addrs = alv_alt_parse (s->str, ALV_ALT_MAX_ENTRIES, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (addrs->len, ==, 2);

  /* an over-long entry is skipped, not copied */
  g_string_assign (s, "[");
  for (guint i = 0; i < 1000; i++)
    g_string_append (s, "0:");
  g_string_append (s, ":1]:80,1.2.3.4:5");
  g_clear_pointer (&addrs, g_ptr_array_unref);
  addrs = alv_alt_parse (s->str, ALV_ALT_MAX_ENTRIES, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (addrs->len, ==, 1);

  /* format honours max_entries and leaves out port 0 */
  for (guint i = 0; i < 5; i++)
    {
      g_autoptr(GInetAddress) a = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
      g_ptr_array_add (many, g_inet_socket_address_new (a, (guint16) i));
    }
  formatted = alv_alt_format (many, 3);
  g_assert_cmpstr (formatted, ==, "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3");
  g_clear_pointer (&formatted, g_free);
  g_ptr_array_set_size (many, 1);
  formatted = alv_alt_format (many, 3);
  g_assert_null (formatted);
}

static void
test_alt_public (void)
{
  struct { const char *addr; gboolean is_public; } cases[] = {
    { "1.2.3.4", TRUE },
    { "8.8.8.8", TRUE },
    { "192.0.2.1", TRUE },
    { "172.32.0.1", TRUE },
    { "100.128.0.1", TRUE },
    { "2001:db8::1", TRUE },
    { "2a00:1450::1", TRUE },
    { "0.0.0.0", FALSE },
    { "0.1.2.3", FALSE },
    { "127.0.0.1", FALSE },
    { "127.255.0.1", FALSE },
    { "10.1.2.3", FALSE },
    { "172.16.0.1", FALSE },
    { "172.31.255.255", FALSE },
    { "192.168.1.1", FALSE },
    { "169.254.1.1", FALSE },
    { "100.64.0.1", FALSE },
    { "224.0.0.1", FALSE },
    { "239.1.1.1", FALSE },
    { "240.0.0.1", FALSE },
    { "255.255.255.255", FALSE },
    { "::", FALSE },
    { "::1", FALSE },
    { "fe80::1", FALSE },
    { "fec0::1", FALSE },
    { "fc00::1", FALSE },
    { "fd12:3456::1", FALSE },
    { "ff02::1", FALSE },
    { "::ffff:127.0.0.1", FALSE },
    { "::ffff:10.0.0.1", FALSE },
    { "::ffff:1.2.3.4", TRUE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GInetAddress) a = g_inet_address_new_from_string (cases[i].addr);

      g_test_message ("address %s", cases[i].addr);
      g_assert_nonnull (a);
      g_assert_cmpint (alv_alt_address_is_public (a), ==, cases[i].is_public);
    }
}

static void
test_content_urn (void)
{
  struct { const char *in; const char *out; } good[] = {
    { URN, URN },
    { "  " URN "  ", URN },
    { "URN:TREE:SHA256:" ROOT, URN },
    { "urn:tree:sha256:lwpnacqdbzryxw3vhjvcj64qbzngHohhhzwclnqlwpnacqdbzryq", URN },
    { "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB, " URN, URN },
    { URN "," URN, URN },
    { ",," URN ",", URN },
    { "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
  };
  struct { const char *in; AlvError code; } bad[] = {
    { "", ALV_ERROR_PARSE },
    { " , ", ALV_ERROR_PARSE },
    { "garbage", ALV_ERROR_PARSE },
    { "urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB", ALV_ERROR_UNSUPPORTED },
    { "urn:tree:tiger:LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQ", ALV_ERROR_UNSUPPORTED },
    { "urn:tree:sha256:", ALV_ERROR_INVALID },
    { "urn:tree:sha256:" ROOT "A", ALV_ERROR_INVALID },                     /* 53 chars */
    { "urn:tree:sha256:LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQLWPNACQDBZRY", ALV_ERROR_INVALID },
    { "urn:tree:sha256:LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQLWPNACQDBZR0Q", ALV_ERROR_INVALID },
    { "urn:tree:sha256:LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQLWPNACQDBZRYB", ALV_ERROR_INVALID }, /* spare bits */
    { "urn:tree:sha256:LWPNACQDBZRYXW3VHJVCJ64QBZNGHOHHHZWCLNQLWPNACQDBZRY=", ALV_ERROR_INVALID },
    { "urn:tree:sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, " URN, ALV_ERROR_INVALID },
    { "urn:tree:sha256:" ROOT " x", ALV_ERROR_INVALID },
  };
  g_autoptr(GString) many = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  char *urn;

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *got = NULL;

      g_test_message ("X-Content-URN: %s", good[i].in);
      got = alv_content_urn_parse (good[i].in, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (got, ==, good[i].out);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *got = NULL;

      g_test_message ("bad X-Content-URN: %s", bad[i].in);
      got = alv_content_urn_parse (bad[i].in, &error);
      g_assert_null (got);
      g_assert_error (error, ALV_ERROR, (gint) bad[i].code);
      g_clear_error (&error);
    }

  for (guint i = 0; i < 20; i++)
    g_string_append (many, "urn:sha1:X,");
  g_string_append (many, URN);
  urn = alv_content_urn_parse (many->str, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_assert_null (urn);
  g_clear_error (&error);

  g_assert_true (alv_urn_is_valid (URN));
  g_assert_false (alv_urn_is_valid (ROOT));
  urn = alv_urn_normalize ("Urn:Tree:Sha256:" ROOT, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (urn, ==, URN);
  g_free (urn);
}

static void
test_thex_uri (void)
{
  struct { const char *in; const char *uri; } good[] = {
    { "/uri-res/N2X?" URN ";" ROOT, "/uri-res/N2X?" URN },
    { "  /tree/abc ; " ROOT "  ", "/tree/abc" },
    { "tree.dat;" ROOT, "tree.dat" },
    { "http://gw.example:8080/tree?x=1;y=2;" ROOT, "http://gw.example:8080/tree?x=1;y=2" },
    { "HTTPS://gw.example/t;" URN, "HTTPS://gw.example/t" },
    { "/t;" "lwpnacqdbzryxw3vhjvcj64qbzngHohhhzwclnqlwpnacqdbzryq", "/t" },
  };
  struct { const char *in; AlvError code; } bad[] = {
    { "", ALV_ERROR_PARSE },
    { "/tree", ALV_ERROR_PARSE },
    { ";" ROOT, ALV_ERROR_PARSE },
    { "/tree;", ALV_ERROR_INVALID },
    { "/tree;ABC", ALV_ERROR_INVALID },
    { "/tree;" ROOT "X", ALV_ERROR_INVALID },
    { "/a b;" ROOT, ALV_ERROR_PARSE },
    { "/a\x01;" ROOT, ALV_ERROR_PARSE },
    { "/caf\xc3\xa9;" ROOT, ALV_ERROR_PARSE },
    { "ftp://h/t;" ROOT, ALV_ERROR_UNSUPPORTED },
    { "file:///etc/passwd;" ROOT, ALV_ERROR_UNSUPPORTED },
    { "http:///nohost;" ROOT, ALV_ERROR_PARSE },
    { "http://[::1/;" ROOT, ALV_ERROR_PARSE },
    { "//evil.example/t;" ROOT, ALV_ERROR_UNSAFE },
    { "/%zz;" ROOT, ALV_ERROR_PARSE },
  };
  g_autoptr(GString) longer = g_string_new ("/");
  g_autoptr(GError) error = NULL;
  g_autofree char *formatted = NULL;
  char *uri = NULL;
  char *root = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_test_message ("X-Thex-URI: %s", good[i].in);
      g_assert_true (alv_thex_uri_parse (good[i].in, &uri, &root, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (uri, ==, good[i].uri);
      g_assert_cmpstr (root, ==, ROOT);
      g_clear_pointer (&uri, g_free);
      g_clear_pointer (&root, g_free);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("bad X-Thex-URI: %s", bad[i].in);
      g_assert_false (alv_thex_uri_parse (bad[i].in, &uri, &root, &error));
      g_assert_error (error, ALV_ERROR, (gint) bad[i].code);
      g_assert_null (uri);
      g_assert_null (root);
      g_clear_error (&error);
    }

  for (guint i = 0; i < ALV_THEX_URI_MAX_LENGTH; i++)
    g_string_append_c (longer, 'a');
  g_string_append (longer, ";" ROOT);
  g_assert_false (alv_thex_uri_parse (longer->str, NULL, NULL, &error));
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_clear_error (&error);

  formatted = alv_thex_uri_format ("/uri-res/N2X?" URN, ROOT);
  g_assert_cmpstr (formatted, ==, "/uri-res/N2X?" URN ";" ROOT);
  g_assert_true (alv_thex_uri_parse (formatted, &uri, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (uri, ==, "/uri-res/N2X?" URN);
  g_free (uri);
}

static void
test_n2r (void)
{
  g_autofree char *path = alv_n2r_path (URN);
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) longer = g_string_new (NULL);
  char *urn;

  g_assert_cmpstr (path, ==, "/uri-res/N2R?" URN);

  urn = alv_n2r_parse_query (strchr (path, '?') + 1, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (urn, ==, URN);
  g_free (urn);

  urn = alv_n2r_parse_query ("urn%3Atree%3asha256%3A" ROOT, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (urn, ==, URN);
  g_free (urn);

  urn = alv_n2r_parse_query ("urn:tree:sha256:%zz", &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_assert_null (urn);
  g_clear_error (&error);

  urn = alv_n2r_parse_query ("urn%00:tree:sha256:" ROOT, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);

  urn = alv_n2r_parse_query ("urn:sha1:PLSTHIPQGSSZTS5FJUPAKUZWUGYQYPFB", &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_assert_nonnull (strstr (error->message, "N2R"));
  g_clear_error (&error);

  urn = alv_n2r_parse_query ("urn:tree:sha256:ABC", &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_INVALID);
  g_clear_error (&error);

  urn = alv_n2r_parse_query ("", &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_PARSE);
  g_clear_error (&error);

  for (guint i = 0; i < 1000; i++)
    g_string_append (longer, "%41");
  urn = alv_n2r_parse_query (longer->str, &error);
  g_assert_error (error, ALV_ERROR, ALV_ERROR_LIMIT);
  g_assert_null (urn);
}

/* X-Origin-Pulls and X-Origin-Lease: good entries kept, bad ones
 * (host names, runs past the item, reversed runs) skipped. */
static void
test_origin_leases (void)
{
  g_autoptr(GArray) pulls = NULL;
  g_autofree char *a0 = NULL;
  g_autofree char *a1 = NULL;
  guint first = 99, last = 99;

  pulls = alv_origin_pulls_parse ("1.2.3.4:6346 0-15, host:1 0-3, [2001:db8::1]:8080 16-31,"
                                  " 5.6.7.8:1 30-20, 5.6.7.8:2 0-40, 5.6.7.8:3, ,9.9.9.9:9 39-39",
                                  40);
  g_assert_cmpuint (pulls->len, ==, 3);
  a0 = alv_alt_format_address (g_array_index (pulls, AlvOriginPull, 0).address);
  a1 = alv_alt_format_address (g_array_index (pulls, AlvOriginPull, 1).address);
  g_assert_cmpstr (a0, ==, "1.2.3.4:6346");
  g_assert_cmpuint (g_array_index (pulls, AlvOriginPull, 0).first, ==, 0);
  g_assert_cmpuint (g_array_index (pulls, AlvOriginPull, 0).last, ==, 15);
  g_assert_cmpstr (a1, ==, "[2001:db8::1]:8080");
  g_assert_cmpuint (g_array_index (pulls, AlvOriginPull, 1).first, ==, 16);
  g_assert_cmpuint (g_array_index (pulls, AlvOriginPull, 2).last, ==, 39);
  g_clear_pointer (&pulls, g_array_unref);
  pulls = alv_origin_pulls_parse ("", 40);
  g_assert_cmpuint (pulls->len, ==, 0);

  g_assert_true (alv_origin_lease_parse (" 4-7 ", 40, &first, &last));
  g_assert_cmpuint (first, ==, 4);
  g_assert_cmpuint (last, ==, 7);
  g_assert_false (alv_origin_lease_parse ("none", 40, &first, &last));
  g_assert_false (alv_origin_lease_parse (NULL, 40, &first, &last));
  g_assert_false (alv_origin_lease_parse ("7-4", 40, &first, &last));
  g_assert_false (alv_origin_lease_parse ("4-40", 40, &first, &last));
  g_assert_false (alv_origin_lease_parse ("-1-3", 40, &first, &last));
  g_assert_false (alv_origin_lease_parse ("4-", 40, &first, &last));
}

/* X-Reachable: yes, no, unknown; anything else is unknown. */
static void
test_reachable (void)
{
  g_assert_cmpint (alv_reachable_parse ("yes"), ==, ALV_REACHABLE_YES);
  g_assert_cmpint (alv_reachable_parse (" No "), ==, ALV_REACHABLE_NO);
  g_assert_cmpint (alv_reachable_parse ("unknown"), ==, ALV_REACHABLE_UNKNOWN);
  g_assert_cmpint (alv_reachable_parse ("maybe"), ==, ALV_REACHABLE_UNKNOWN);
  g_assert_cmpint (alv_reachable_parse (NULL), ==, ALV_REACHABLE_UNKNOWN);
  for (AlvReachable r = ALV_REACHABLE_UNKNOWN; r <= ALV_REACHABLE_NO; r++)
    g_assert_cmpint (alv_reachable_parse (alv_reachable_to_string (r)), ==, r);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/common/ocn-headers/alt/parse", test_alt_parse);
  g_test_add_func ("/common/ocn-headers/alt/errors", test_alt_errors);
  g_test_add_func ("/common/ocn-headers/alt/limits", test_alt_limits);
  g_test_add_func ("/common/ocn-headers/alt/public", test_alt_public);
  g_test_add_func ("/common/ocn-headers/content-urn", test_content_urn);
  g_test_add_func ("/common/ocn-headers/thex-uri", test_thex_uri);
  g_test_add_func ("/common/ocn-headers/n2r", test_n2r);
  g_test_add_func ("/common/ocn-headers/origin-leases", test_origin_leases);
  g_test_add_func ("/common/ocn-headers/reachable", test_reachable);

  return g_test_run ();
}
