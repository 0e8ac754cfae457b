/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers shared by the test programs; see test-util.h.
 */
#define G_LOG_DOMAIN "test-util"
#include "config.h"

#include "test-util.h"

/* --- waiting --------------------------------------------------------- */

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
