/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Helpers shared by the test programs, in the manner of libsoup's
 * tests/test-utils.c: bounded waits on the main context, HTTP servers on
 * 127.0.0.1 and whole responses, temporary trees, and child processes
 * (alluvium-server's gateway, alluvium-core, nginx and Python's
 * http.server as origins) that die with the test.
 *
 * Every wait here runs the thread-default main context, blocking until a
 * source is ready (never spinning, never sleeping), and is bounded: when
 * time runs out the test fails with a message that says what it waited
 * for, from where.
 */
#pragma once

#include <gio/gio.h>
#include <libsoup/soup.h>

G_BEGIN_DECLS

/* --- waiting --------------------------------------------------------- */

/* What a wait waits for: TRUE once it holds.  Evaluated after every main
 * context iteration, so it should be cheap. */
typedef gboolean (*TestCondition) (gpointer data);

gboolean test_wait            (TestCondition  cond,
                               gpointer       data,
                               guint          timeout_ms);
void     test_wait_until_full (const char    *domain,
                               const char    *file,
                               int            line,
                               const char    *func,
                               const char    *what,
                               TestCondition  cond,
                               gpointer       data,
                               guint          timeout_ms);
/**
 * test_wait_until:
 * @cond: a #TestCondition
 * @data: passed to @cond
 * @timeout_ms: how long to wait at most
 *
 * Runs the main context until @cond holds; fails the test, naming @cond
 * and the caller, if it does not within @timeout_ms.
 */
#define test_wait_until(cond, data, timeout_ms) \
  test_wait_until_full (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, #cond, (cond), (data), (timeout_ms))

guint    test_slack_ms        (guint          ms);
void     test_run_for         (guint          ms);
void     test_run_pending     (void);

/* A #GAsyncReadyCallback that keeps a reference to the result in the
 * `GAsyncResult *` that @user_data points to (which starts as NULL). */
void          test_async_result_cb (GObject       *source,
                                    GAsyncResult  *result,
                                    gpointer       user_data);
GAsyncResult *test_wait_result_full (const char    *domain,
                                     const char    *file,
                                     int            line,
                                     const char    *func,
                                     const char    *what,
                                     GAsyncResult **result,
                                     guint          timeout_ms);
/**
 * test_wait_result:
 * @result: (inout): a `GAsyncResult *` filled in by test_async_result_cb()
 * @timeout_ms: how long to wait at most
 *
 * Runs the main context until the operation that was given
 * test_async_result_cb() and @result has completed; fails the test if it
 * does not complete within @timeout_ms.
 *
 * Returns: (transfer none): *@result, for the operation's finish function;
 *   the caller unrefs *@result when done with it
 */
#define test_wait_result(result, timeout_ms) \
  test_wait_result_full (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, \
                         "the asynchronous call to complete into " #result, (result), (timeout_ms))

void test_wait_for_name_full (const char      *domain,
                              const char      *file,
                              int              line,
                              const char      *func,
                              GDBusConnection *connection,
                              const char      *name,
                              gboolean         owned,
                              guint            timeout_ms);
/**
 * test_wait_for_name:
 * @connection: a message bus connection
 * @name: a well-known bus name
 * @owned: wait for an owner (%TRUE) or for none (%FALSE)
 * @timeout_ms: how long to wait at most
 *
 * Runs the main context until @name has an owner on @connection (or has
 * none), as a name watch reports it; fails the test if not within
 * @timeout_ms.
 */
#define test_wait_for_name(connection, name, owned, timeout_ms) \
  test_wait_for_name_full (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, (connection), (name), (owned), (timeout_ms))

/* --- child processes ------------------------------------------------- */

void         test_die_with_parent      (gpointer            user_data);
gboolean     test_subprocess_wait      (GSubprocess        *proc,
                                        guint               timeout_ms);
void         test_subprocess_signal    (GSubprocess        *proc,
                                        int                 signum);
void         test_subprocess_backtrace (GSubprocess        *proc);
gboolean     test_subprocess_stop      (GSubprocess        *proc,
                                        int                 signum,
                                        guint               timeout_ms);
char        *test_read_line            (GDataInputStream   *in,
                                        guint               timeout_ms);
void         test_read_line_with       (GDataInputStream   *in,
                                        const char         *what,
                                        guint               timeout_ms);
char        *test_subprocess_read_line (GSubprocess        *proc,
                                        guint               timeout_ms);
GSubprocess *test_spawn_gateway        (const char * const *extra,
                                        guint               timeout_ms,
                                        char              **url);
GSubprocess *test_spawn_gateway_full   (const char * const *extra,
                                        guint               fd_limit,
                                        GSubprocessFlags    flags,
                                        guint               timeout_ms,
                                        char              **url);
GSubprocess *test_spawn_gateway_in_netns (const char       *netns,
                                          const char * const *extra,
                                          guint             timeout_ms,
                                          char            **url);
GSubprocess *test_spawn_core           (const char         *bus_address,
                                        const char         *cache_home,
                                        const char         *config_home,
                                        gboolean            fatal_warnings,
                                        const char * const *args);
GSubprocess *test_spawn_core_full      (const char         *bus_address,
                                        const char         *cache_home,
                                        const char         *config_home,
                                        gboolean            fatal_warnings,
                                        const char * const *args,
                                        GSubprocessFlags    flags);
GSubprocess *test_spawn_core_in_netns  (const char         *netns,
                                        const char         *bus_address,
                                        const char         *cache_home,
                                        const char         *config_home,
                                        const char * const *args);
char        *test_run_tool             (const char * const *argv,
                                        const char * const *env,
                                        char              **err_out,
                                        int                *status_out);

/* --- HTTP ------------------------------------------------------------ */

guint64      test_raise_fd_limit  (guint64             wanted);
SoupSession *test_session_new_from (const char         *local_ip);
GSocket     *test_closed_port      (guint16            *port);

/* Idle TCP connections opened at once from 127.0.0.1, each watched for
 * the server closing it. */
typedef struct _TestFlood TestFlood;

TestFlood *test_flood_new        (const char *url,
                                  guint       n);
guint      test_flood_get_closed (TestFlood  *flood);
guint      test_flood_get_size   (TestFlood  *flood);
void       test_flood_free       (TestFlood  *flood);
void       test_flood_wait_closed_full (const char *domain,
                                        const char *file,
                                        int         line,
                                        const char *func,
                                        TestFlood  *flood,
                                        guint       n,
                                        guint       timeout_ms);
/**
 * test_flood_wait_closed:
 * @flood: a flood
 * @n: how many of its connections
 * @timeout_ms: how long to wait at most
 *
 * Runs the main context until the server has closed @n connections of
 * @flood; fails the test if it does not within @timeout_ms.
 */
#define test_flood_wait_closed(flood, n, timeout_ms) \
  test_flood_wait_closed_full (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, (flood), (n), (timeout_ms))

GBytes    *test_get_from         (const char *local_ip,
                                  const char *url,
                                  guint      *status,
                                  GError    **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (TestFlood, test_flood_free)

SoupServer *test_server_new     (void);
char       *test_server_get_url (SoupServer   *server);
GBytes     *test_session_send   (SoupSession  *session,
                                 SoupMessage  *msg,
                                 guint         timeout_ms,
                                 GError      **error);
guint64     test_gateway_status (SoupSession  *session,
                                 const char   *gateway_url,
                                 const char   *key);

/* --- other web servers as origins ------------------------------------ */

GSubprocess *test_spawn_nginx       (const char  *root,
                                     const char  *work_dir,
                                     guint        timeout_ms,
                                     char       **url,
                                     char       **access_log);
GSubprocess *test_spawn_http_server (const char  *root,
                                     const char  *log_path,
                                     guint        timeout_ms,
                                     char       **url);

GSubprocess *test_spawn_redis       (const char  *dir,
                                     guint        timeout_ms,
                                     char       **socket_path);

/* --- files ----------------------------------------------------------- */

void test_remove_tree (const char *path);
guint test_count_files (const char *path);

G_END_DECLS
