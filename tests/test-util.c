/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers shared by the test programs; see test-util.h.
 */
#define G_LOG_DOMAIN "test-util"
#include "config.h"

#include "test-util.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <glib/gstdio.h>

/* --- waiting --------------------------------------------------------- */

/* AddressSanitizer: GCC says so with __SANITIZE_ADDRESS__, clang with
 * __has_feature */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_UNDER_ASAN 1
#endif
#endif

/**
 * test_slack_ms:
 * @ms: how long a wait may take at most in a plain build
 *
 * A bound on a wait is a safety net, never a measurement: under
 * AddressSanitizer (this program and the daemons it starts are built
 * alike) everything runs several times slower, more so on a loaded
 * machine, and the net widens with it.
 *
 * Returns: @ms, or three times @ms in a sanitizer build
 */
guint
test_slack_ms (guint ms)
{
#ifdef TEST_UNDER_ASAN
  return ms <= G_MAXUINT / 3 ? ms * 3 : G_MAXUINT;
#else
  return ms;
#endif
}

static gboolean
flag_cb (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/**
 * test_wait:
 * @cond: a #TestCondition
 * @data: passed to @cond
 * @timeout_ms: how long to wait at most
 *
 * Runs the thread-default main context, blocking between iterations,
 * until @cond holds or @timeout_ms have passed.
 *
 * Returns: whether @cond holds at the end
 */
gboolean
test_wait (TestCondition cond,
           gpointer      data,
           guint         timeout_ms)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  GSource *timeout = g_timeout_source_new (timeout_ms);
  gboolean timed_out = FALSE;
  gboolean ok;

  g_source_set_callback (timeout, flag_cb, &timed_out, NULL);
  g_source_attach (timeout, context);
  while (!cond (data) && !timed_out)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (timeout);
  g_source_unref (timeout);
  ok = cond (data);
  g_main_context_unref (context);
  return ok;
}

static void
wait_failed (const char *domain,
             const char *file,
             int         line,
             const char *func,
             const char *what,
             guint       timeout_ms)
{
  g_autofree char *msg = g_strdup_printf ("timed out after %u ms waiting for %s", timeout_ms, what);

  g_assertion_message (domain, file, line, func, msg);
}

void
test_wait_until_full (const char    *domain,
                      const char    *file,
                      int            line,
                      const char    *func,
                      const char    *what,
                      TestCondition  cond,
                      gpointer       data,
                      guint          timeout_ms)
{
  if (!test_wait (cond, data, timeout_ms))
    wait_failed (domain, file, line, func, what, timeout_ms);
}

/**
 * test_run_for:
 * @ms: how long
 *
 * Runs the thread-default main context for @ms milliseconds, for a test
 * that lets time pass on purpose (the servers of the test keep running).
 */
void
test_run_for (guint ms)
{
  GMainContext *context = g_main_context_ref_thread_default ();
  GSource *timeout = g_timeout_source_new (ms);
  gboolean done = FALSE;

  g_source_set_callback (timeout, flag_cb, &done, NULL);
  g_source_attach (timeout, context);
  while (!done)
    g_main_context_iteration (context, TRUE);
  g_source_unref (timeout);
  g_main_context_unref (context);
}

/**
 * test_run_pending:
 *
 * Dispatches what is ready on the thread-default main context now
 * (completions of cancelled operations, closed connections), without
 * waiting for anything that is not ready yet; bounded, in case a source
 * stays ready forever.
 */
void
test_run_pending (void)
{
  GMainContext *context = g_main_context_ref_thread_default ();

  for (guint i = 0; i < 10000 && g_main_context_iteration (context, FALSE); i++)
    ;
  g_main_context_unref (context);
}

void
test_async_result_cb (GObject      *source G_GNUC_UNUSED,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  GAsyncResult **out = user_data;

  g_assert_null (*out);
  *out = g_object_ref (result);
}

static gboolean
result_cond (gpointer data)
{
  return *(GAsyncResult **) data != NULL;
}

GAsyncResult *
test_wait_result_full (const char    *domain,
                       const char    *file,
                       int            line,
                       const char    *func,
                       const char    *what,
                       GAsyncResult **result,
                       guint          timeout_ms)
{
  test_wait_until_full (domain, file, line, func, what, result_cond, result, timeout_ms);
  return *result;
}

typedef struct
{
  gboolean known;     /* the watch has told the first state */
  gboolean owned;
  gboolean want;
} NameWait;

static void
name_appeared_cb (GDBusConnection *connection G_GNUC_UNUSED,
                  const char      *name G_GNUC_UNUSED,
                  const char      *owner G_GNUC_UNUSED,
                  gpointer         user_data)
{
  NameWait *w = user_data;

  w->known = TRUE;
  w->owned = TRUE;
}

static void
name_vanished_cb (GDBusConnection *connection G_GNUC_UNUSED,
                  const char      *name G_GNUC_UNUSED,
                  gpointer         user_data)
{
  NameWait *w = user_data;

  w->known = TRUE;
  w->owned = FALSE;
}

static gboolean
name_cond (gpointer data)
{
  NameWait *w = data;

  return w->known && w->owned == w->want;
}

void
test_wait_for_name_full (const char      *domain,
                         const char      *file,
                         int              line,
                         const char      *func,
                         GDBusConnection *connection,
                         const char      *name,
                         gboolean         owned,
                         guint            timeout_ms)
{
  /* on the heap: the watch may still call back after it was removed,
   * until it frees @w */
  NameWait *w = g_new0 (NameWait, 1);
  guint id;
  gboolean ok;

  w->want = owned;
  id = g_bus_watch_name_on_connection (connection, name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                       name_appeared_cb, name_vanished_cb, w, g_free);
  ok = test_wait (name_cond, w, timeout_ms);
  g_bus_unwatch_name (id);
  if (!ok)
    {
      g_autofree char *what = g_strdup_printf ("%s to %s", name, owned ? "have an owner" : "have no owner");

      wait_failed (domain, file, line, func, what, timeout_ms);
    }
}

/* --- child processes ------------------------------------------------- */

/**
 * test_die_with_parent:
 * @user_data: unused
 *
 * A #GSubprocessLauncher child setup: the child gets SIGKILL when the
 * test dies, even on a failed assertion.
 */
void
test_die_with_parent (gpointer user_data G_GNUC_UNUSED)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

typedef struct
{
  gboolean done;
  gboolean exited;
} ExitWait;

static void
exit_wait_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ExitWait *w = user_data;

  w->exited = g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  w->done = TRUE;
}

static gboolean
exit_wait_cond (gpointer data)
{
  return ((ExitWait *) data)->done;
}

/**
 * test_subprocess_wait:
 * @proc: a child process
 * @timeout_ms: how long to wait at most
 *
 * Runs the main context until @proc has exited (g_subprocess_wait_async()),
 * for at most @timeout_ms.
 *
 * Returns: whether @proc has exited
 */
gboolean
test_subprocess_wait (GSubprocess *proc,
                      guint        timeout_ms)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  ExitWait w = { FALSE, FALSE };

  g_subprocess_wait_async (proc, cancellable, exit_wait_cb, &w);
  if (!test_wait (exit_wait_cond, &w, timeout_ms))
    {
      /* the callback still runs, soon, and must find @w */
      g_cancellable_cancel (cancellable);
      while (!w.done)
        g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
    }
  return w.exited;
}

/**
 * test_subprocess_signal:
 * @proc: a running child process
 * @signum: the signal, as SIGSTOP
 *
 * Sends @signum to @proc before it returns: g_subprocess_send_signal()
 * only queues the kill() for GLib's worker thread, so a request sent
 * right after it may reach the process first.  After a SIGSTOP sent
 * here the process runs nothing more until SIGCONT.
 */
void
test_subprocess_signal (GSubprocess *proc,
                        int          signum)
{
  const char *id = g_subprocess_get_identifier (proc);

  g_assert_nonnull (id);
  g_assert_cmpint (kill ((pid_t) g_ascii_strtoll (id, NULL, 10), signum), ==, 0);
}

/**
 * test_subprocess_backtrace:
 * @proc: a running child process
 *
 * Logs (g_test_message) where every thread of @proc is, as gdb sees it:
 * for a process that hangs, before it is killed.  Does nothing but say so
 * without gdb; gdb is given 60 s.
 */
void
test_subprocess_backtrace (GSubprocess *proc)
{
  g_autofree char *gdb = g_find_program_in_path ("gdb");
  g_autofree char *out = NULL;
  g_autofree char *pid = NULL;
  const char *id = g_subprocess_get_identifier (proc);

  if (id == NULL)
    return;
  if (gdb == NULL)
    {
      g_test_message ("process %s hangs (no gdb here to show where)", id);
      return;
    }
  pid = g_strdup (id);
  {
    const char *argv[] = { "timeout", "60", gdb, "-batch", "-nx", "-p", pid,
                           "-ex", "thread apply all bt", NULL };

    g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
                  NULL, NULL, &out, NULL, NULL, NULL);
  }
  g_test_message ("process %s hangs; its threads:\n%s", id, out != NULL ? out : "(gdb said nothing)");
}

/**
 * test_subprocess_stop:
 * @proc: a child process
 * @signum: the signal to send, as SIGTERM
 * @timeout_ms: how long to wait for it to exit
 *
 * Sends @signum to @proc and waits for it to exit; kills it (SIGKILL) if
 * it has not exited within @timeout_ms.  Either way @proc is gone after.
 *
 * Returns: whether @proc exited within @timeout_ms
 */
gboolean
test_subprocess_stop (GSubprocess *proc,
                      int          signum,
                      guint        timeout_ms)
{
  g_subprocess_send_signal (proc, signum);
  if (test_subprocess_wait (proc, timeout_ms))
    return TRUE;
  test_subprocess_backtrace (proc);
  g_subprocess_force_exit (proc);
  g_subprocess_wait (proc, NULL, NULL);
  return FALSE;
}

typedef struct
{
  gboolean done;
  char *line;
} LineRead;

static void
line_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  LineRead *r = user_data;

  r->line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                       NULL, NULL);
  r->done = TRUE;
}

static gboolean
line_done_cond (gpointer data)
{
  return ((LineRead *) data)->done;
}

/**
 * test_read_line:
 * @in: a stream of lines (a child's pipe, say)
 * @timeout_ms: how long to wait at most
 *
 * Reads the next line of @in; fails the test if none comes within
 * @timeout_ms.  @in stays open, for the lines after.
 *
 * Returns: (transfer full) (nullable): the line without its newline, or
 *   %NULL at the end of @in
 */
char *
test_read_line (GDataInputStream *in,
                guint             timeout_ms)
{
  LineRead r = { FALSE, NULL };

  g_data_input_stream_read_line_async (in, G_PRIORITY_DEFAULT, NULL, line_cb, &r);
  test_wait_until (line_done_cond, &r, timeout_ms);
  g_assert_true (r.done);
  return r.line;
}

/**
 * test_read_line_with:
 * @in: a stream of lines (a child's log)
 * @what: what the awaited line contains
 * @timeout_ms: how long to wait at most for each line
 *
 * Reads the lines of @in (each in the test's messages) up to the first
 * that contains @what, of at most a thousand; fails the test if none
 * does.
 */
void
test_read_line_with (GDataInputStream *in,
                     const char       *what,
                     guint             timeout_ms)
{
  for (guint i = 0; i < 1000; i++)
    {
      g_autofree char *line = test_read_line (in, timeout_ms);

      g_assert_nonnull (line);
      g_test_message ("log: %s", line);
      if (strstr (line, what) != NULL)
        return;
    }
  g_assert_not_reached ();
}

/**
 * test_subprocess_read_line:
 * @proc: a child process spawned with %G_SUBPROCESS_FLAGS_STDOUT_PIPE
 * @timeout_ms: how long to wait at most
 *
 * Reads the first line @proc prints; fails the test if none comes within
 * @timeout_ms.  The pipe is closed after.
 *
 * Returns: (transfer full) (nullable): the line without its newline, or
 *   %NULL if @proc closed its output first
 */
char *
test_subprocess_read_line (GSubprocess *proc,
                           guint        timeout_ms)
{
  g_autoptr(GDataInputStream) out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));

  return test_read_line (out, timeout_ms);
}

static void
gateway_child_setup (gpointer user_data)
{
  guint fd_limit = GPOINTER_TO_UINT (user_data);

  test_die_with_parent (NULL);
  if (fd_limit != 0)
    {
      struct rlimit rl = { fd_limit, fd_limit };

      setrlimit (RLIMIT_NOFILE, &rl);
    }
}

/* The gateway, run through "ip netns exec @netns" when @netns is not NULL. */
static GSubprocess *
spawn_gateway (const char          *netns,
               const char * const  *extra,
               guint                fd_limit,
               GSubprocessFlags     flags,
               guint                timeout_ms,
               char               **url)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | flags);
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  GSubprocess *proc;

  if (netns != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("ip"));
      g_ptr_array_add (argv, g_strdup ("netns"));
      g_ptr_array_add (argv, g_strdup ("exec"));
      g_ptr_array_add (argv, g_strdup (netns));
    }
  g_ptr_array_add (argv, g_test_build_filename (G_TEST_BUILT, "..", "server", "alluvium-server", NULL));
  g_ptr_array_add (argv, g_strdup ("gateway"));
  g_ptr_array_add (argv, g_strdup ("--port=0"));
  g_ptr_array_add (argv, g_strdup ("--rate-limit=0"));
  /* tests announce made-up peers (and addresses through X-Forwarded-For):
   * no connect-back to them unless a test asks (a later option wins) */
  g_ptr_array_add (argv, g_strdup ("--connect-back-timeout=0"));
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (extra[i]));
  g_ptr_array_add (argv, NULL);

  /* no system proxy for 127.0.0.1; and GIO's GNOME proxy module would
   * abort in the isolated XDG dirs, which hold no GSettings schemas */
  g_subprocess_launcher_setenv (launcher, "GIO_USE_PROXY_RESOLVER", "dummy", TRUE);
  g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  g_subprocess_launcher_set_child_setup (launcher, gateway_child_setup,
                                         GUINT_TO_POINTER (fd_limit), NULL);
  proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);

  line = test_subprocess_read_line (proc, timeout_ms);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "listening on http://"));
  *url = g_strdup (line + strlen ("listening on "));
  return proc;
}

/**
 * test_spawn_gateway:
 * @extra: (nullable): options after the common ones, %NULL-terminated
 * @timeout_ms: how long to wait for it to listen
 * @url: (out): the gateway's base URL (ending in '/')
 *
 * Starts the built `alluvium-server gateway --port=0 --rate-limit=0
 * --connect-back-timeout=0`
 * plus @extra, dying with the test, without G_DEBUG (its warnings are for
 * its log) and with GIO's dummy proxy resolver; waits for its
 * "listening on URL" line.
 *
 * Returns: (transfer full): the gateway process
 */
GSubprocess *
test_spawn_gateway (const char * const  *extra,
                    guint                timeout_ms,
                    char               **url)
{
  return test_spawn_gateway_full (extra, 0, G_SUBPROCESS_FLAGS_NONE, timeout_ms, url);
}

/**
 * test_spawn_gateway_full:
 * @extra: (nullable): more options, %NULL-terminated
 * @fd_limit: its descriptor limit, soft and hard (0: inherited)
 * @flags: more flags, e.g. %G_SUBPROCESS_FLAGS_STDERR_PIPE to read its log
 * @timeout_ms: how long it may take to start
 * @url: (out): where it listens
 *
 * Starts the built gateway as test_spawn_gateway() does, under a
 * descriptor limit of its own.
 *
 * Returns: (transfer full): the gateway process
 */
GSubprocess *
test_spawn_gateway_full (const char * const  *extra,
                         guint                fd_limit,
                         GSubprocessFlags     flags,
                         guint                timeout_ms,
                         char               **url)
{
  GSubprocess *proc = spawn_gateway (NULL, extra, fd_limit, flags, timeout_ms, url);

  g_assert_true (g_str_has_prefix (*url, "http://127.0.0.1:"));
  return proc;
}

/**
 * test_spawn_gateway_in_netns:
 * @netns: a network namespace (`ip netns`)
 * @extra: (nullable): more options, %NULL-terminated (`--address` among
 *   them: an address of @netns)
 * @timeout_ms: how long it may take to start
 * @url: (out): where it listens
 *
 * Starts the built gateway as test_spawn_gateway() does, inside @netns
 * (`ip netns exec`, which becomes the gateway: the process's PID is the
 * gateway's).  Needs root.
 *
 * Returns: (transfer full): the gateway process
 */
GSubprocess *
test_spawn_gateway_in_netns (const char          *netns,
                             const char * const  *extra,
                             guint                timeout_ms,
                             char               **url)
{
  return spawn_gateway (netns, extra, 0, G_SUBPROCESS_FLAGS_NONE, timeout_ms, url);
}


/**
 * test_spawn_core:
 * @bus_address: the session bus it is to use
 * @cache_home: its XDG_CACHE_HOME
 * @config_home: its XDG_CONFIG_HOME
 * @fatal_warnings: keep the test's G_DEBUG (fatal-warnings under the
 *   harness), or run it without
 * @args: (nullable): its options, %NULL-terminated
 *
 * Starts the built `alluvium-core` with @args, dying with the test.
 *
 * Returns: (transfer full): the daemon process
 */
GSubprocess *
test_spawn_core (const char         *bus_address,
                 const char         *cache_home,
                 const char         *config_home,
                 gboolean            fatal_warnings,
                 const char * const *args)
{
  return test_spawn_core_full (bus_address, cache_home, config_home, fatal_warnings, args,
                               G_SUBPROCESS_FLAGS_NONE);
}

/* The core, run through "ip netns exec @netns" when @netns is not NULL. */
static GSubprocess *
spawn_core (const char         *netns,
            const char         *bus_address,
            const char         *cache_home,
            const char         *config_home,
            gboolean            fatal_warnings,
            const char * const *args,
            GSubprocessFlags    flags)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  if (netns != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("ip"));
      g_ptr_array_add (argv, g_strdup ("netns"));
      g_ptr_array_add (argv, g_strdup ("exec"));
      g_ptr_array_add (argv, g_strdup (netns));
    }
  g_ptr_array_add (argv, g_test_build_filename (G_TEST_BUILT, "..", "core", "alluvium-core", NULL));
  for (guint i = 0; args != NULL && args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  g_subprocess_launcher_setenv (launcher, "DBUS_SESSION_BUS_ADDRESS", bus_address, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CACHE_HOME", cache_home, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CONFIG_HOME", config_home, TRUE);
  /* no test asks a real router to map a port: off unless the core.conf
   * a test writes says nat=… */
  g_subprocess_launcher_setenv (launcher, "ALLUVIUM_CORE_NAT", "off", FALSE);
  if (!fatal_warnings)
    g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  return proc;
}

/**
 * test_spawn_core_full:
 * @bus_address: the session bus it is to use
 * @cache_home: its XDG_CACHE_HOME
 * @config_home: its XDG_CONFIG_HOME
 * @fatal_warnings: keep the test's G_DEBUG, or run it without
 * @args: (nullable): its options, %NULL-terminated
 * @flags: e.g. %G_SUBPROCESS_FLAGS_STDERR_PIPE to read its log
 *
 * Starts the built `alluvium-core` as test_spawn_core() does, with @flags.
 *
 * Returns: (transfer full): the daemon process
 */
GSubprocess *
test_spawn_core_full (const char         *bus_address,
                      const char         *cache_home,
                      const char         *config_home,
                      gboolean            fatal_warnings,
                      const char * const *args,
                      GSubprocessFlags    flags)
{
  return spawn_core (NULL, bus_address, cache_home, config_home, fatal_warnings, args, flags);
}

/**
 * test_spawn_core_in_netns:
 * @netns: a network namespace (`ip netns`)
 * @bus_address: the session bus it is to use (a socket path: an abstract
 *   socket is not seen from another network namespace)
 * @cache_home: its XDG_CACHE_HOME
 * @config_home: its XDG_CONFIG_HOME
 * @args: (nullable): its options, %NULL-terminated
 *
 * Starts the built `alluvium-core` as test_spawn_core() does, inside
 * @netns (`ip netns exec`, which becomes the core: the process's PID is
 * the core's).  Needs root.
 *
 * Returns: (transfer full): the daemon process
 */
GSubprocess *
test_spawn_core_in_netns (const char         *netns,
                          const char         *bus_address,
                          const char         *cache_home,
                          const char         *config_home,
                          const char * const *args)
{
  return spawn_core (netns, bus_address, cache_home, config_home, TRUE, args,
                     G_SUBPROCESS_FLAGS_NONE);
}

/**
 * test_run_tool:
 * @argv: the program (a path, or a name looked up in PATH) and its arguments
 * @env: (nullable): NAME, VALUE pairs set in the tool's environment
 *   (a %NULL VALUE unsets NAME), %NULL-terminated
 * @err_out: (out) (optional): what the tool wrote on stderr
 * @status_out: (out): its exit status, or -1 if a signal ended it
 *
 * Runs a short-lived tool (a validator, a database query) to its end and
 * logs what it said with g_test_message().
 *
 * Returns: (transfer full): what the tool wrote on stdout
 */
char *
test_run_tool (const char * const *argv,
               const char * const *env,
               char              **err_out,
               int                *status_out)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  for (guint i = 0; env != NULL && env[i] != NULL; i += 2)
    {
      if (env[i + 1] != NULL)
        g_subprocess_launcher_setenv (launcher, env[i], env[i + 1], TRUE);
      else
        g_subprocess_launcher_unsetenv (launcher, env[i]);
    }
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  g_test_message ("%s: %s%s", argv[0], out, err);
  *status_out = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  if (err_out != NULL)
    *err_out = g_steal_pointer (&err);
  return g_steal_pointer (&out);
}

/* --- HTTP ------------------------------------------------------------ */

/**
 * test_server_new:
 *
 * A #SoupServer listening on 127.0.0.1 at a port of the system's choice,
 * in the thread-default main context; add handlers to it.
 *
 * Returns: (transfer full): the server
 */
SoupServer *
test_server_new (void)
{
  g_autoptr(GError) error = NULL;
  SoupServer *server = soup_server_new (NULL, NULL);

  soup_server_listen_local (server, 0, SOUP_SERVER_LISTEN_IPV4_ONLY, &error);
  g_assert_no_error (error);
  return server;
}

/**
 * test_server_get_url:
 * @server: a server from test_server_new()
 *
 * Returns: (transfer full): its base URL, `http://127.0.0.1:PORT/`
 */
char *
test_server_get_url (SoupServer *server)
{
  GSList *uris = soup_server_get_uris (server);
  char *url;

  g_assert_nonnull (uris);
  url = g_strdup_printf ("http://127.0.0.1:%d/", g_uri_get_port (uris->data));
  g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
  return url;
}

/**
 * test_session_send:
 * @session: a session
 * @msg: the request
 * @timeout_ms: how long to wait for the whole response at most
 * @error: return location for a transport error
 *
 * Sends @msg and reads the whole response body while the main context
 * runs (so that servers of the test itself can answer); fails the test if
 * that takes longer than @timeout_ms.  The status and headers are @msg's.
 *
 * Returns: (transfer full) (nullable): the body, or %NULL with @error set
 */
GBytes *
test_session_send (SoupSession  *session,
                   SoupMessage  *msg,
                   guint         timeout_ms,
                   GError      **error)
{
  g_autofree char *uri = g_uri_to_string (soup_message_get_uri (msg));
  g_autofree char *what = g_strdup_printf ("the response to %s %s", soup_message_get_method (msg), uri);
  GAsyncResult *result = NULL;
  GBytes *body;

  soup_session_send_and_read_async (session, msg, G_PRIORITY_DEFAULT, NULL, test_async_result_cb,
                                    &result);
  test_wait_result_full (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, what, &result, timeout_ms);
  body = soup_session_send_and_read_finish (session, result, error);
  g_object_unref (result);
  return body;
}


/**
 * test_gateway_status:
 * @session: a session
 * @gateway_url: the gateway's base URL, with its final `/`
 * @key: a counter of its /status page ("peers", "announces"...)
 *
 * Reads the gateway's /status (doc/gateway-protocol.md) and returns the
 * value of the `KEY: N` line; fails the test if the page or the line is
 * not there.
 *
 * Returns: the counter
 */
guint64
test_gateway_status (SoupSession *session,
                     const char  *gateway_url,
                     const char  *key)
{
  g_autofree char *url = g_strconcat (gateway_url, "status", NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = test_session_send (session, msg, 10000, &error);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  gsize key_len = strlen (key);

  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, SOUP_STATUS_OK);
  text = g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], key, key_len) == 0 && strncmp (lines[i] + key_len, ": ", 2) == 0)
      return g_ascii_strtoull (lines[i] + key_len + 2, NULL, 10);
  g_error ("no “%s” in the gateway's /status:\n%s", key, text);
  return 0;
}

/* --- other web servers as origins ------------------------------------ */

/**
 * test_closed_port:
 * @port: (out): its port
 *
 * A TCP socket bound on 127.0.0.1 that does not listen: connecting to
 * @port is refused for as long as the caller holds it, and no other
 * process can take the port meanwhile.
 *
 * Returns: (transfer full): the socket; unref it to free the port
 */
GSocket *
test_closed_port (guint16 *port)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, &error);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any_port = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  g_assert_no_error (error);
  g_socket_bind (socket, any_port, FALSE, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (socket, &error);
  g_assert_no_error (error);
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  return g_steal_pointer (&socket);
}

/* A port nothing listens on now; whoever asks next may take it, so the
 * caller retries when its server cannot bind. */
static guint16
unused_loopback_port (void)
{
  guint16 port;
  g_autoptr(GSocket) socket = test_closed_port (&port);

  return port;
}

typedef struct
{
  const char *ready_file;
  ExitWait exit;
} StartWait;

static gboolean
start_cond (gpointer data)
{
  StartWait *w = data;

  return w->exit.done || g_file_test (w->ready_file, G_FILE_TEST_EXISTS);
}

/**
 * test_spawn_nginx:
 * @root: the directory it serves
 * @work_dir: an empty directory for its configuration, logs and temporary
 *   files
 * @timeout_ms: how long to wait for it to listen
 * @url: (out): its base URL, `http://127.0.0.1:PORT/`
 * @access_log: (out): the file it logs each request to, one line each
 *   (complete once it has been stopped)
 *
 * Starts nginx in the foreground, one process, serving @root on
 * 127.0.0.1 with its default URL decoding, dying with the test; waits for
 * its pid file, which it writes once it listens.
 *
 * Returns: (transfer full) (nullable): the process, or %NULL when nginx
 *   is not installed (skip the test)
 */
GSubprocess *
test_spawn_nginx (const char  *root,
                  const char  *work_dir,
                  guint        timeout_ms,
                  char       **url,
                  char       **access_log)
{
  g_autofree char *nginx = g_find_program_in_path ("nginx");
  g_autofree char *conf = g_build_filename (work_dir, "nginx.conf", NULL);
  g_autofree char *pid = g_build_filename (work_dir, "nginx.pid", NULL);
  g_autofree char *errors = g_build_filename (work_dir, "error.log", NULL);
  g_autofree char *log = g_build_filename (work_dir, "access.log", NULL);
  g_autoptr(GFile) dir = g_file_new_for_path (work_dir);

  if (nginx == NULL && g_file_test ("/usr/sbin/nginx", G_FILE_TEST_IS_EXECUTABLE))
    nginx = g_strdup ("/usr/sbin/nginx");
  if (nginx == NULL)
    return NULL;

  /* the port may be taken between the look and nginx's bind: try again */
  for (guint attempt = 0; attempt < 3; attempt++)
    {
      guint16 port = unused_loopback_port ();
      g_autoptr(GError) error = NULL;
      g_autoptr(GFileMonitor) monitor = g_file_monitor_directory (dir, G_FILE_MONITOR_NONE, NULL,
                                                                  &error);
      g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
      g_autoptr(GSubprocess) proc = NULL;
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autofree char *text = g_strdup_printf (
        "daemon off;\n"
        "master_process off;\n"
        "worker_processes 1;\n"
        "pid %s;\n"
        "error_log %s;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        "  access_log %s;\n"
        "  types { audio/mpeg mp3; audio/ogg ogg; }\n"
        "  default_type application/octet-stream;\n"
        "  client_body_temp_path %s/client_body;\n"
        "  proxy_temp_path %s/proxy;\n"
        "  fastcgi_temp_path %s/fastcgi;\n"
        "  uwsgi_temp_path %s/uwsgi;\n"
        "  scgi_temp_path %s/scgi;\n"
        "  server {\n"
        "    listen 127.0.0.1:%u;\n"
        "    root %s;\n"
        "  }\n"
        "}\n",
        pid, errors, log, work_dir, work_dir, work_dir, work_dir, work_dir, port, root);
      StartWait w = { pid, { FALSE, FALSE } };

      g_assert_no_error (error);
      g_file_set_contents (conf, text, -1, &error);
      g_assert_no_error (error);
      g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
      proc = g_subprocess_launcher_spawn (launcher, &error, nginx, "-p", work_dir, "-c", conf,
                                          "-e", errors, NULL);
      g_assert_no_error (error);
      g_subprocess_wait_async (proc, cancellable, exit_wait_cb, &w.exit);
      test_wait_until (start_cond, &w, timeout_ms);
      /* the wait's callback still runs, and must find @w */
      g_cancellable_cancel (cancellable);
      while (!w.exit.done)
        g_main_context_iteration (g_main_context_get_thread_default (), TRUE);
      if (w.exit.exited)
        {
          g_autofree char *why = NULL;

          g_file_get_contents (errors, &why, NULL, NULL);
          g_test_message ("nginx did not start on port %u: %s", port, why ? why : "?");
          continue;
        }
      *url = g_strdup_printf ("http://127.0.0.1:%u/", port);
      *access_log = g_steal_pointer (&log);
      return g_steal_pointer (&proc);
    }
  g_assert_not_reached ();
  return NULL;
}

/**
 * test_spawn_http_server:
 * @root: the directory it serves
 * @log_path: the file its request log (its stderr) goes to, one line per
 *   request (complete once it has been stopped)
 * @timeout_ms: how long to wait for it to listen
 * @url: (out): its base URL, `http://127.0.0.1:PORT/`
 *
 * Starts `python3 -m http.server` (the $PYTHON3 that configure found, or
 * python3 on the PATH) on 127.0.0.1 at a port of the system's choice,
 * dying with the test; waits for its "Serving HTTP on" line.
 *
 * Returns: (transfer full) (nullable): the process, or %NULL when there
 *   is no python3 (skip the test)
 */
GSubprocess *
test_spawn_http_server (const char  *root,
                        const char  *log_path,
                        guint        timeout_ms,
                        char       **url)
{
  const char *python = g_getenv ("PYTHON3");
  g_autofree char *found = NULL;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  GSubprocess *proc;
  guint port = 0;

  if (python == NULL || *python == '\0')
    python = found = g_find_program_in_path ("python3");
  if (python == NULL)
    return NULL;
  g_subprocess_launcher_set_stderr_file_path (launcher, log_path);
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  /* -u: the line telling the port is not held in a buffer */
  proc = g_subprocess_launcher_spawn (launcher, &error, python, "-u", "-m", "http.server",
                                      "--bind", "127.0.0.1", "--directory", root, "0", NULL);
  g_assert_no_error (error);
  line = test_subprocess_read_line (proc, timeout_ms);
  g_assert_nonnull (line);
  g_assert_cmpint (sscanf (line, "Serving HTTP on 127.0.0.1 port %u", &port), ==, 1);
  g_assert_cmpuint (port, >, 0);
  *url = g_strdup_printf ("http://127.0.0.1:%u/", port);
  return proc;
}

/**
 * test_spawn_redis:
 * @dir: a scratch directory: its socket goes there, as `redis.sock`
 * @timeout_ms: how long to wait for it to be ready
 * @socket_path: (out): the path of its unix socket
 *
 * Starts `redis-server` on a unix socket in @dir only (no TCP port), with
 * no persistence (`--save '' --appendonly no`), dying with the test;
 * waits for the line saying it is ready to accept connections.  Starting it again on
 * the same @dir after stopping it gives an empty Redis on the same path.
 *
 * Returns: (transfer full) (nullable): the process, or %NULL when there
 *   is no redis-server (skip the test)
 */
GSubprocess *
test_spawn_redis (const char  *dir,
                  guint        timeout_ms,
                  char       **socket_path)
{
  g_autofree char *server = g_find_program_in_path ("redis-server");
  g_autofree char *sock = g_build_filename (dir, "redis.sock", NULL);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  if (server == NULL)
    return NULL;
  g_subprocess_launcher_set_child_setup (launcher, test_die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawn (launcher, &error, server, "--port", "0",
                                      "--unixsocket", sock, "--unixsocketperm", "700",
                                      "--save", "", "--appendonly", "no", "--dir", dir, NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  for (guint i = 0; i < 200; i++)
    {
      g_autofree char *line = test_read_line (out, timeout_ms);

      g_assert_nonnull (line);
      /* "Ready to accept connections", or "… ready to accept connections
       * at PATH" with a unix socket alone */
      if (strstr (line, "eady to accept connections") != NULL)
        {
          *socket_path = g_steal_pointer (&sock);
          return proc;
        }
    }
  g_assert_not_reached ();
  return NULL;
}

/* --- files ----------------------------------------------------------- */

/**
 * test_remove_tree:
 * @path: a file or directory
 *
 * Removes @path and, if it is a directory (not a link to one), everything
 * below it.  Errors are ignored.
 */
void
test_remove_tree (const char *path)
{
  if (g_file_test (path, G_FILE_TEST_IS_DIR) && !g_file_test (path, G_FILE_TEST_IS_SYMLINK))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
      const char *name;

      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *child = g_build_filename (path, name, NULL);

          test_remove_tree (child);
        }
    }
  g_remove (path);
}

/**
 * test_count_files:
 * @path: a directory
 *
 * Returns: how many entries @path holds (it must exist)
 */
guint
test_count_files (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/* --- floods of connections -------------------------------------------- */

/**
 * test_raise_fd_limit:
 * @wanted: descriptors the test needs
 *
 * Raises the test's own soft descriptor limit towards @wanted (as far as
 * the hard limit allows).
 *
 * Returns: the soft limit now in force
 */
guint64
test_raise_fd_limit (guint64 wanted)
{
  struct rlimit rl;

  if (getrlimit (RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < wanted)
    {
      rl.rlim_cur = MIN ((rlim_t) wanted, rl.rlim_max);
      setrlimit (RLIMIT_NOFILE, &rl);
      getrlimit (RLIMIT_NOFILE, &rl);
    }
  return rl.rlim_cur;
}

/**
 * test_session_new_from:
 * @local_ip: a loopback address other than 127.0.0.1, e.g. "127.0.0.2"
 *
 * Returns: (transfer full): a session whose connections come from
 *   @local_ip, a client address of its own as far as a server can tell
 */
SoupSession *
test_session_new_from (const char *local_ip)
{
  g_autoptr(GInetAddress) inet = g_inet_address_new_from_string (local_ip);
  g_autoptr(GSocketAddress) local = g_inet_socket_address_new (inet, 0);

  return soup_session_new_with_options ("local-address", local, "timeout", 10,
                                       "proxy-resolver", NULL, NULL);
}

typedef struct
{
  TestFlood *flood;
  GSocket *socket;
  GSource *source;
  gboolean closed;
} FloodConn;

struct _TestFlood
{
  GPtrArray *conns;             /* FloodConn */
  guint closed;
};

static void
flood_conn_free (FloodConn *conn)
{
  if (conn->source != NULL)
    {
      g_source_destroy (conn->source);
      g_source_unref (conn->source);
    }
  g_socket_close (conn->socket, NULL);
  g_object_unref (conn->socket);
  g_free (conn);
}

static gboolean
flood_conn_ready_cb (GSocket      *socket,
                     GIOCondition  condition G_GNUC_UNUSED,
                     gpointer      user_data)
{
  FloodConn *conn = user_data;
  char buf[256];
  gssize n = g_socket_receive (socket, buf, sizeof buf, NULL, NULL);

  if (n > 0)
    return G_SOURCE_CONTINUE;       /* an answer; the connection lives on */
  if (n < 0 && !g_socket_condition_check (socket, G_IO_HUP | G_IO_ERR))
    return G_SOURCE_CONTINUE;       /* would block: not closed */
  conn->closed = TRUE;
  conn->flood->closed++;
  g_clear_pointer (&conn->source, g_source_unref);
  return G_SOURCE_REMOVE;
}

/**
 * test_flood_new:
 * @url: the server, `http://127.0.0.1:PORT/...`
 * @n: how many connections
 *
 * Opens @n TCP connections to @url's host and port without waiting for
 * any to be accepted, and sends nothing on them.
 *
 * Returns: (transfer full): the flood
 */
TestFlood *
test_flood_new (const char *url,
                guint       n)
{
  g_autoptr(GUri) uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  g_autoptr(GInetAddress) inet = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  TestFlood *flood = g_new0 (TestFlood, 1);

  g_assert_nonnull (uri);
  inet = g_inet_address_new_from_string (g_uri_get_host (uri));
  g_assert_nonnull (inet);
  address = g_inet_socket_address_new (inet, g_uri_get_port (uri));
  flood->conns = g_ptr_array_new_with_free_func ((GDestroyNotify) flood_conn_free);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      FloodConn *conn = g_new0 (FloodConn, 1);

      conn->flood = flood;
      conn->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                   G_SOCKET_PROTOCOL_TCP, &error);
      g_assert_no_error (error);
      g_socket_set_blocking (conn->socket, FALSE);
      if (!g_socket_connect (conn->socket, address, NULL, &error)
          && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PENDING))
        g_error ("flood connection %u: %s", i, error->message);
      conn->source = g_socket_create_source (conn->socket, G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
      g_source_set_callback (conn->source, (GSourceFunc) (void (*) (void)) flood_conn_ready_cb,
                             conn, NULL);
      g_source_attach (conn->source, g_main_context_get_thread_default ());
      g_ptr_array_add (flood->conns, conn);
    }
  return flood;
}

/**
 * test_flood_get_closed:
 * @flood: a flood
 *
 * Returns: how many of its connections the server has closed so far
 */
guint
test_flood_get_closed (TestFlood *flood)
{
  return flood->closed;
}

guint
test_flood_get_size (TestFlood *flood)
{
  return flood->conns->len;
}

/**
 * test_flood_free:
 * @flood: a flood
 *
 * Closes every connection of @flood.
 */
void
test_flood_free (TestFlood *flood)
{
  if (flood == NULL)
    return;
  g_ptr_array_unref (flood->conns);
  g_free (flood);
}

typedef struct
{
  TestFlood *flood;
  guint n;
} FloodWait;

static gboolean
flood_closed (gpointer data)
{
  FloodWait *w = data;

  return w->flood->closed >= w->n;
}

void
test_flood_wait_closed_full (const char *domain,
                             const char *file,
                             int         line,
                             const char *func,
                             TestFlood  *flood,
                             guint       n,
                             guint       timeout_ms)
{
  FloodWait w = { flood, n };
  g_autofree char *what = g_strdup_printf ("the server to close %u of %u flood connections",
                                           n, flood->conns->len);

  test_wait_until_full (domain, file, line, func, what, flood_closed, &w, timeout_ms);
}

/**
 * test_get_from:
 * @local_ip: the client's address, e.g. "127.0.0.2"
 * @url: what to GET
 * @status: (out): the HTTP status
 * @error: return location for a #GError
 *
 * One GET on a connection of its own from @local_ip, closed afterwards.
 *
 * Returns: (transfer full) (nullable): the body, %NULL on a transport
 *   error or after 10 s
 */
GBytes *
test_get_from (const char *local_ip,
               const char *url,
               guint      *status,
               GError    **error)
{
  g_autoptr(SoupSession) session = test_session_new_from (local_ip);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", url);
  GBytes *body;

  soup_message_headers_replace (soup_message_get_request_headers (msg), "Connection", "close");
  body = test_session_send (session, msg, 10000, error);
  *status = soup_message_get_status (msg);
  soup_session_abort (session);
  return body;
}
