/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The desktop data the build installs, checked with the tools a desktop
 * uses on them: the desktop entry and the AppStream metainfo pass their
 * validators without a remark, the man pages render without a warning,
 * and the MIME type, compiled into a private shared-mime-info database
 * next to a private copy of freedesktop.org's, types an Alluvium playlist
 * named *.rss as application/x-alluvium while RSS 1.0 and RSS 2.0 news
 * feeds stay application/rss+xml (as GLib's gio and xdg-mime see them),
 * and xdg-mime names the player as the playlist's default application.
 * And every binary's --help shows examples of what to type.  Each check
 * skips when its tool is not installed.
 */
#define G_LOG_DOMAIN "test-data"
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>
#include <gio/gio.h>

#include "alv-playlist.h"
#include "test-util.h"

#define DESKTOP_ID "org.alluvium.player.desktop"
#define METAINFO "org.alluvium.player.metainfo.xml"

static char *
data_path (const char *file, gboolean built)
{
  return g_test_build_filename (built ? G_TEST_BUILT : G_TEST_DIST, "..", "data", file, NULL);
}

/* The path of @tool, or NULL after marking the test skipped. */
static char *
need_tool (const char *tool)
{
  char *exe = g_find_program_in_path (tool);

  if (exe == NULL)
    {
      g_autofree char *msg = g_strdup_printf ("%s is not installed", tool);

      g_test_skip (msg);
    }
  return exe;
}

/* Runs @tool @args @file; it must succeed, and its output is returned. */
static char *
validate (const char *tool, const char *const *args, const char *file, gboolean built)
{
  g_autofree char *path = data_path (file, built);
  g_autofree char *exe = need_tool (tool);
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *err = NULL;
  char *out;
  int status;

  if (exe == NULL)
    return NULL;
  g_assert_true (g_file_test (path, G_FILE_TEST_EXISTS));
  g_ptr_array_add (argv, exe);
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, path);
  g_ptr_array_add (argv, NULL);
  out = test_run_tool ((const char *const *) argv->pdata, NULL, &err, &status);
  g_assert_cmpint (status, ==, 0);
  g_assert_cmpstr (err, ==, "");
  return out;
}

/* ---- desktop entry, AppStream, icon, man pages ------------------------- */

static void
test_desktop (void)
{
  const char *args[] = { NULL };
  g_autofree char *path = data_path (DESKTOP_ID, TRUE);
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *comment_de = NULL;
  g_autofree char *comment = NULL;
  g_autofree char *exec = NULL;
  g_auto(GStrv) types = NULL;
  g_autofree char *out = NULL;

  g_key_file_load_from_file (kf, path, G_KEY_FILE_KEEP_TRANSLATIONS, &error);
  g_assert_no_error (error);
  exec = g_key_file_get_string (kf, "Desktop Entry", "Exec", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (exec, ==, "alluvium-player %u");
  /* the player asks for a station in its terminal when started bare */
  g_assert_true (g_key_file_get_boolean (kf, "Desktop Entry", "Terminal", &error));
  g_assert_no_error (error);
  types = g_key_file_get_string_list (kf, "Desktop Entry", "MimeType", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_strv_contains ((const char *const *) types, "application/x-alluvium"));
  comment_de = g_key_file_get_locale_string (kf, "Desktop Entry", "Comment", "de", &error);
  g_assert_no_error (error);
  comment = g_key_file_get_string (kf, "Desktop Entry", "Comment", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (comment_de, !=, comment);
  /* not a hint, not a warning: nothing at all */
  out = validate ("desktop-file-validate", args, DESKTOP_ID, TRUE);
  if (out != NULL)
    g_assert_cmpstr (out, ==, "");
}

static void
test_metainfo (void)
{
  const char *args[] = { "validate", "--pedantic", "--no-net", NULL };
  g_autofree char *path = data_path (METAINFO, TRUE);
  g_autofree char *text = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GError) error = NULL;

  /* the component names the desktop entry as it is installed */
  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (text, "<id>org.alluvium.player</id>"));
  g_assert_nonnull (strstr (text, "<launchable type=\"desktop-id\">" DESKTOP_ID "</launchable>"));
  out = validate ("appstreamcli", args, METAINFO, TRUE);
  if (out == NULL)
    return;
  /* "✔ Validation was successful: pedantic: 1" counts as a remark */
  g_assert_null (strstr (out, ": pedantic:"));
  g_assert_null (strstr (out, "info:"));
  g_assert_null (strstr (out, "warnings:"));
  g_assert_null (strstr (out, "errors:"));
}

static void
test_icon (void)
{
  const char *args[] = { "--noout", NULL };

  g_free (validate ("xmllint", args, "alluvium.svg", FALSE));
}

static void
test_man (void)
{
  static const char *const pages[] = { "alluvium-player.1", "alluvium-core.1", "alluvium-server.1" };
  const char *args[] = { "--warnings", "-l", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (pages); i++)
    {
      /* validate() asserts that stderr, where the warnings go, is empty */
      g_autofree char *out = validate ("man", args, pages[i], FALSE);

      if (out == NULL)
        return;
      g_assert_cmpstr (out, !=, "");
    }
}

/* The first thing a person types: every binary's --help ends with
 * examples of it. */
static void
test_help (void)
{
  static const struct { const char *dir; const char *binary; const char *command; const char *example; } cases[] = {
    { "player", "alluvium-player", NULL, "  alluvium-player https://" },
    { "core", "alluvium-core", NULL, "  alluvium-player https://" },
    { "server", "alluvium-server", NULL, "  alluvium-server playlist --base-url " },
    { "server", "alluvium-server", "gateway", "  alluvium-server gateway --docroot " },
    { "server", "alluvium-server", "playlist", "Build:    alluvium-server playlist --base-url " },
  };
  const char *env[] = { "LANGUAGE", "C", NULL };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *exe = g_test_build_filename (G_TEST_BUILT, "..", cases[i].dir, cases[i].binary, NULL);
      const char *argv[] = { exe, cases[i].command != NULL ? cases[i].command : "--help",
                             cases[i].command != NULL ? "--help" : NULL, NULL };
      g_autofree char *out = NULL;
      g_autofree char *err = NULL;
      int status;

      out = test_run_tool (argv, env, &err, &status);
      g_assert_cmpint (status, ==, 0);
      g_assert_nonnull (strstr (out, cases[i].example));
    }
}

/* ---- the MIME type ----------------------------------------------------- */

typedef struct
{
  char *data_home;            /* XDG_DATA_HOME: alluvium.xml and the desktop entry */
  char *data_dirs;            /* XDG_DATA_DIRS: freedesktop.org.xml */
  char *config;               /* XDG_CONFIG_HOME and XDG_CONFIG_DIRS: empty */
  char *files;                /* the files to type */
  gboolean ready;             /* FALSE: a tool is missing, the test is skipped */
} MimeFixture;

static const char *const rss1_news =
  "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
  "<rdf:RDF\n"
  "  xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"\n"
  "  xmlns=\"http://purl.org/rss/1.0/\"\n"
  "  xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n"
  "  <channel rdf:about=\"http://news.example.org/index.rdf\">\n"
  "    <title>News</title>\n"
  "    <link>http://news.example.org/</link>\n"
  "    <description>Today's news</description>\n"
  "  </channel>\n"
  "  <item rdf:about=\"http://news.example.org/1\">\n"
  "    <title>First</title>\n"
  "    <link>http://news.example.org/1</link>\n"
  "    <dc:date>2026-12-04T10:00:00Z</dc:date>\n"
  "  </item>\n"
  "</rdf:RDF>\n";

static const char *const rss2_news =
  "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
  "<rss version=\"2.0\">\n"
  "  <channel>\n"
  "    <title>Blog</title>\n"
  "    <link>http://blog.example.org/</link>\n"
  "    <description>Posts</description>\n"
  "    <item><title>Post</title><link>http://blog.example.org/1</link></item>\n"
  "  </channel>\n"
  "</rss>\n";

static void
write_file (const char *dir, const char *name, const char *text)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static void
copy_file (const char *from, const char *dir, const char *name)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (from, &text, NULL, &error);
  g_assert_no_error (error);
  write_file (dir, name, text);
}

/* A playlist as the writer makes it, with one item. */
static char *
alluvium_playlist (void)
{
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(GDateTime) start = g_date_time_new_utc (2026, 12, 4, 20, 0, 0);
  g_autoptr(GDateTime) end = g_date_time_add_minutes (start, 3);
  g_autoptr(AlvPlaylistItem) item = alv_playlist_item_new ("http://127.0.0.1:9/media/one.mp3");

  alv_playlist_set_title (pl, "Test Station");
  alv_playlist_set_about (pl, "http://127.0.0.1:9/station.rss");
  alv_playlist_item_set_slot (item, start, end);
  alv_playlist_item_set_title (item, "One");
  alv_playlist_add_item (pl, item);
  return alv_playlist_to_string (pl, NULL);
}

/* Where Debian's shared-mime-info keeps freedesktop.org's definitions. */
static char *
find_freedesktop_xml (void)
{
  static const char *const dirs[] = { "/usr/share", "/usr/local/share" };

  for (guint i = 0; i < G_N_ELEMENTS (dirs); i++)
    {
      g_autofree char *path = g_build_filename (dirs[i], "mime", "packages", "freedesktop.org.xml", NULL);

      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        return g_steal_pointer (&path);
    }
  return NULL;
}

static void
update_mime_database (const char *exe, const char *dir)
{
  g_autofree char *mime = g_build_filename (dir, "mime", NULL);
  const char *argv[] = { exe, mime, NULL };
  const char *env[] = { "XDG_DATA_HOME", dir, "XDG_DATA_DIRS", dir, NULL };
  g_autofree char *out = NULL;
  int status;

  out = test_run_tool (argv, env, NULL, &status);
  g_assert_cmpint (status, ==, 0);
}

/* Two databases, both private: the system's copy of freedesktop.org.xml
 * (so that a version of alluvium.xml installed on this machine plays no
 * part) and the one under test. */
static void
mime_setup (MimeFixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autofree char *update = need_tool ("update-mime-database");
  g_autofree char *freedesktop = NULL;
  g_autofree char *packages = NULL;
  g_autofree char *ours = data_path ("alluvium.xml", FALSE);
  g_autofree char *playlist = NULL;
  const char *base = g_get_user_cache_dir ();

  if (update == NULL)
    return;
  freedesktop = find_freedesktop_xml ();
  if (freedesktop == NULL)
    {
      g_test_skip ("shared-mime-info's freedesktop.org.xml is not installed");
      return;
    }
  fx->data_home = g_build_filename (base, "data-home", NULL);
  fx->data_dirs = g_build_filename (base, "data-dirs", NULL);
  fx->config = g_build_filename (base, "config", NULL);
  fx->files = g_build_filename (base, "files", NULL);
  g_assert_cmpint (g_mkdir_with_parents (fx->config, 0700), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (fx->files, 0700), ==, 0);

  packages = g_build_filename (fx->data_dirs, "mime", "packages", NULL);
  g_assert_cmpint (g_mkdir_with_parents (packages, 0700), ==, 0);
  copy_file (freedesktop, packages, "freedesktop.org.xml");
  update_mime_database (update, fx->data_dirs);
  g_clear_pointer (&packages, g_free);
  packages = g_build_filename (fx->data_home, "mime", "packages", NULL);
  g_assert_cmpint (g_mkdir_with_parents (packages, 0700), ==, 0);
  copy_file (ours, packages, "alluvium.xml");
  update_mime_database (update, fx->data_home);

  playlist = alluvium_playlist ();
  write_file (fx->files, "station.rss", playlist);
  write_file (fx->files, "news.rss", rss1_news);
  write_file (fx->files, "blog.rss", rss2_news);
  fx->ready = TRUE;
}

static void
mime_teardown (MimeFixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_free (fx->data_home);
  g_free (fx->data_dirs);
  g_free (fx->config);
  g_free (fx->files);
}

/* Runs a query tool with only the private databases in sight and returns
 * its first line of output, stripped. */
static char *
mime_query (MimeFixture *fx, const char *const *argv)
{
  const char *env[] = {
    "XDG_DATA_HOME", fx->data_home, "XDG_DATA_DIRS", fx->data_dirs,
    "XDG_CONFIG_HOME", fx->config, "XDG_CONFIG_DIRS", fx->config,
    /* xdg-mime's generic way, not a desktop's own tool */
    "XDG_CURRENT_DESKTOP", "X-Generic", "KDE_FULL_SESSION", NULL, "GNOME_DESKTOP_SESSION_ID", NULL,
    "MATE_DESKTOP_SESSION_ID", NULL, "DESKTOP_SESSION", NULL,
    "GIO_USE_VFS", "local", NULL
  };
  g_autofree char *out = NULL;
  int status;
  char *nl;

  out = test_run_tool (argv, env, NULL, &status);
  g_assert_cmpint (status, ==, 0);
  nl = strchr (out, '\n');
  if (nl != NULL)
    *nl = '\0';
  return g_strdup (g_strstrip (out));
}

static char *
gio_type (MimeFixture *fx, const char *exe, const char *name)
{
  g_autofree char *path = g_build_filename (fx->files, name, NULL);
  const char *argv[] = { exe, "info", "-a", "standard::content-type", path, NULL };
  const char *env[] = {
    "XDG_DATA_HOME", fx->data_home, "XDG_DATA_DIRS", fx->data_dirs, "GIO_USE_VFS", "local", NULL
  };
  g_autofree char *out = NULL;
  const char *key = "standard::content-type: ";
  char *at;
  int status;

  out = test_run_tool (argv, env, NULL, &status);
  g_assert_cmpint (status, ==, 0);
  at = strstr (out, key);
  g_assert_nonnull (at);
  at += strlen (key);
  return g_strndup (at, strcspn (at, "\n"));
}

static char *
xdg_type (MimeFixture *fx, const char *exe, const char *name)
{
  g_autofree char *path = g_build_filename (fx->files, name, NULL);
  const char *argv[] = { exe, "query", "filetype", path, NULL };

  return mime_query (fx, argv);
}

typedef char *(*TypeQuery) (MimeFixture *fx, const char *exe, const char *name);

static void
check_types (MimeFixture *fx, TypeQuery query, const char *exe)
{
  static const struct { const char *name; const char *type; } expected[] = {
    { "station.rss", "application/x-alluvium" },
    { "news.rss", "application/rss+xml" },     /* RSS 1.0 */
    { "blog.rss", "application/rss+xml" },     /* RSS 2.0 */
  };

  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_autofree char *type = query (fx, exe, expected[i].name);

      g_test_message ("%s: %s", expected[i].name, type);
      g_assert_cmpstr (type, ==, expected[i].type);
    }
}

/* As the file manager and g_app_info_launch_default_for_uri() see it.
 * GLib sniffs the content only when more than one glob matches the name,
 * and then trusts the magic over the name only at priority 80 or more or
 * when the name's type is a sub-class of the sniffed one. */
static void
test_mime_gio (MimeFixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autofree char *gio = NULL;

  if (!fx->ready)
    return;
  gio = need_tool ("gio");
  if (gio == NULL)
    return;
  check_types (fx, gio_type, gio);
}

/* As xdg-open sees it, outside a desktop: xdg-mime asks File::MimeInfo's
 * mimetype, which takes magic of priority 80 or more before the globs. */
static void
test_mime_xdg (MimeFixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autofree char *xdg_mime = NULL;
  g_autofree char *mimetype = NULL;

  if (!fx->ready)
    return;
  xdg_mime = need_tool ("xdg-mime");
  if (xdg_mime == NULL)
    return;
  /* without it xdg-mime asks file(1), which knows no shared-mime-info */
  mimetype = g_find_program_in_path ("mimetype");
  if (mimetype == NULL)
    {
      g_test_skip ("mimetype (libfile-mimeinfo-perl) is not installed");
      return;
    }
  check_types (fx, xdg_type, xdg_mime);
}

/* The desktop entry as installed makes the player the playlist's
 * application once update-desktop-database (a dpkg trigger) ran. */
static void
test_mime_default (MimeFixture *fx, gconstpointer data G_GNUC_UNUSED)
{
  g_autofree char *xdg_mime = NULL;
  g_autofree char *update = NULL;
  g_autofree char *apps = NULL;
  g_autofree char *desktop = data_path (DESKTOP_ID, TRUE);
  g_autofree char *answer = NULL;

  if (!fx->ready)
    return;
  xdg_mime = need_tool ("xdg-mime");
  if (xdg_mime == NULL)
    return;
  update = need_tool ("update-desktop-database");
  if (update == NULL)
    return;
  apps = g_build_filename (fx->data_home, "applications", NULL);
  g_assert_cmpint (g_mkdir_with_parents (apps, 0700), ==, 0);
  copy_file (desktop, apps, DESKTOP_ID);
  {
    const char *argv[] = { update, apps, NULL };

    g_free (mime_query (fx, argv));
  }
  {
    const char *argv[] = { xdg_mime, "query", "default", "application/x-alluvium", NULL };

    answer = mime_query (fx, argv);
  }
  g_assert_cmpstr (answer, ==, DESKTOP_ID);
}

static void
test_mime_xml (void)
{
  const char *args[] = { "--noout", NULL };

  g_free (validate ("xmllint", args, "alluvium.xml", FALSE));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/data/desktop", test_desktop);
  g_test_add_func ("/data/metainfo", test_metainfo);
  g_test_add_func ("/data/icon", test_icon);
  g_test_add_func ("/data/man", test_man);
  g_test_add_func ("/data/help", test_help);
  g_test_add_func ("/data/mime/xml", test_mime_xml);
  g_test_add ("/data/mime/gio", MimeFixture, NULL, mime_setup, test_mime_gio, mime_teardown);
  g_test_add ("/data/mime/xdg-mime", MimeFixture, NULL, mime_setup, test_mime_xdg, mime_teardown);
  g_test_add ("/data/mime/default", MimeFixture, NULL, mime_setup, test_mime_default, mime_teardown);
  return g_test_run ();
}
