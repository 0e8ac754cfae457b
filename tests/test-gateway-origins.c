/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Unit tests of the gateway's origin matching (server/gateway-origins.c):
 * a table of hostile paths (what nginx, Python's http.server, Tomcat,
 * IIS or a decoding proxy could take out of an --origin prefix) that
 * must be refused, and of benign ones (names the playlist tool escapes)
 * that must pass; whole URLs, whose dot segments GLib's parser would
 * have removed; and the prefix rule itself.  No sockets.
 */
#include "config.h"

#include <string.h>
#include <glib.h>

#include "alv-error.h"
#include "gateway-origins.h"

typedef struct
{
  const char *path;
  const char *why;              /* a word of the reason; NULL: accepted */
} PathCase;

static const PathCase path_cases[] = {
  /* encoded separators */
  { "/media/..%2fsecret.mp3", "“/”" },
  { "/media/..%2Fsecret.mp3", "“/”" },
  { "/media/%2E%2E%2Fsecret.mp3", "“/”" },
  { "/media/%2e%2e%2fsecret.mp3", "“/”" },
  { "/media/..%5csecret.mp3", "“/”" },
  { "/media/..%5Csecret.mp3", "“/”" },
  { "/media/..\\secret.mp3", "“/”" },
  { "/media/sub\\x.mp3", "“/”" },
  { "/media/a%2Fb.mp3", "“/”" },
  /* dot segments, plain, encoded, with path parameters */
  { "/media/../secret.mp3", "segment" },
  { "/media/./x.mp3", "segment" },
  { "/media/..", "segment" },
  { "/media/.", "segment" },
  { "/media/%2e%2e/secret.mp3", "segment" },
  { "/media/%2E%2E/secret.mp3", "segment" },
  { "/media/.%2e/secret.mp3", "segment" },
  { "/media/%2e./secret.mp3", "segment" },
  { "/media/%2e/x.mp3", "segment" },
  { "/media/..;/secret.mp3", "segment" },
  { "/media/..;jsessionid=1/secret.mp3", "segment" },
  { "/media/.;x/x.mp3", "segment" },
  { "/media/%2e%2e%3b/secret.mp3", "segment" },
  { "/media/..%3B/secret.mp3", "segment" },
  { "/media/.../secret.mp3", "segment" },
  { "/..", "segment" },
  /* decoded twice, by a proxy in front or a script behind */
  { "/media/%252e%252e/secret.mp3", "segment" },
  { "/media/%252E%252E%252Fsecret.mp3", "“/”" },
  { "/media/..%252fsecret.mp3", "“/”" },
  { "/media/..%255csecret.mp3", "“/”" },
  /* NUL and other control characters */
  { "/media/x.mp3%00.txt", "control" },
  { "/media/x%00", "control" },
  { "/media/x%0d%0aHeader:%20y", "control" },
  { "/media/x%09.mp3", "control" },
  { "/media/x%7f.mp3", "control" },
  { "/media/x%2500.mp3", "control" },
  { "/media/x\001.mp3", "control" },
  /* benign: what the playlist tool writes for real names */
  { "/media/x.mp3", NULL },
  { "/media/Top%20100%25%20Hits.mp3", NULL },
  { "/media/50%2525.mp3", NULL },
  { "/media/100%25", NULL },
  { "/media/%25", NULL },
  { "/media/%", NULL },
  { "/media/%zz.mp3", NULL },
  { "/media/a%23b.mp3", NULL },
  { "/media/%C3%A9t%C3%A9.mp3", NULL },
  { "/media/%E6%97%A5%E6%9C%AC.ogg", NULL },
  { "/media/a;b.mp3", NULL },
  { "/media/.hidden.mp3", NULL },
  { "/media/x..mp3", NULL },
  { "/media/...x", NULL },
  { "/media/..x/y.mp3", NULL },
  { "/media/x.mp3.", NULL },
  { "/media/a%2Bb%26c%3Dd.mp3", NULL },
  { "/media//x.mp3", NULL },
  { "/media/", NULL },
  { "/", NULL },
  { "", NULL },
};

static void
test_paths (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (path_cases); i++)
    {
      const PathCase *c = &path_cases[i];
      g_autoptr(GError) error = NULL;
      gboolean ok = gateway_origin_check_path (c->path, &error);

      g_test_message ("%s: %s", c->path, ok ? "accepted" : error->message);
      if (c->why == NULL)
        {
          g_assert_no_error (error);
          g_assert_true (ok);
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (error, ALV_ERROR, ALV_ERROR_UNSAFE);
          g_assert_nonnull (strstr (error->message, c->why));
          g_assert_null (strchr (error->message, '\n'));
        }
    }
}

/* Whole URLs: the path is checked as written, before GLib's parser
 * resolves "%2e%2e" and "..", so the refusal says why. */
static void
test_urls (void)
{
  const char *refused[] = {
    "http://127.0.0.1:8000/media/..%2fsecret.mp3",
    "http://127.0.0.1:8000/media/%2e%2e/secret.mp3",
    "http://127.0.0.1:8000/media/../media/x.mp3",
    "http://127.0.0.1:8000/media/..;/secret.mp3",
    "http://127.0.0.1:8000/media/..\\secret.mp3",
    "http://127.0.0.1:8000/media/%252e%252e/secret.mp3",
    "https://station.example/media/..%2f..%2fetc/passwd?x=1#y",
  };
  const char *accepted[] = {
    "http://127.0.0.1:8000/media/Top%20100%25%20Hits.mp3",
    "http://127.0.0.1:8000/media/x.mp3?a=../b#../c",
    "http://127.0.0.1:8000/media/x.mp3#%2e%2e",
    "http://127.0.0.1:8000",
    "https://station.example/media/%C3%A9.mp3",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (refused); i++)
    {
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", refused[i]);
      g_assert_false (gateway_origin_check_url (refused[i], &error));
      g_assert_error (error, ALV_ERROR, ALV_ERROR_UNSAFE);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (accepted); i++)
    {
      g_autoptr(GError) error = NULL;

      g_test_message ("%s", accepted[i]);
      g_assert_true (gateway_origin_check_url (accepted[i], &error));
      g_assert_no_error (error);
    }
}

static gboolean
covers (const char *prefix,
        const char *url)
{
  g_autoptr(GUri) p = g_uri_parse (prefix, G_URI_FLAGS_ENCODED | G_URI_FLAGS_SCHEME_NORMALIZE, NULL);
  g_autoptr(GUri) u = g_uri_parse (url, G_URI_FLAGS_ENCODED | G_URI_FLAGS_SCHEME_NORMALIZE, NULL);

  g_assert_nonnull (p);
  g_assert_nonnull (u);
  return gateway_origin_covers (p, u);
}

static void
test_covers (void)
{
  g_assert_true (covers ("http://h/media/", "http://h/media/x.mp3"));
  g_assert_true (covers ("http://h/media/", "http://h/media/sub/x.mp3"));
  g_assert_true (covers ("http://h/media", "http://h/media/x.mp3"));
  g_assert_true (covers ("http://h/media", "http://h/media"));
  g_assert_true (covers ("http://h/", "http://h/anything"));
  g_assert_true (covers ("http://h", "http://h/anything"));
  g_assert_true (covers ("http://H:80/media/", "HTTP://h/media/x.mp3"));
  g_assert_true (covers ("https://h/media/", "https://h:443/media/x.mp3"));
  g_assert_false (covers ("http://h/media", "http://h/media2/x.mp3"));
  g_assert_false (covers ("http://h/media/", "http://h/media"));
  g_assert_false (covers ("http://h/media/", "http://h/secret.mp3"));
  g_assert_false (covers ("http://h/media/", "https://h/media/x.mp3"));
  g_assert_false (covers ("http://h/media/", "http://h:8080/media/x.mp3"));
  g_assert_false (covers ("http://h/media/", "http://other/media/x.mp3"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/server/gateway-origins/paths", test_paths);
  g_test_add_func ("/server/gateway-origins/urls", test_urls);
  g_test_add_func ("/server/gateway-origins/covers", test_covers);
  return g_test_run ();
}
