/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The lean HTTP/1.1 front of alv-http-front.h.
 *
 * Each connection is a bare descriptor (no GSocket, no GSource) in one
 * epoll set that a single GSource watches; that source also wakes for
 * the next deadline (at most once a second, never while no connection
 * has one): nothing is allocated per request once the front is warm, and
 * a connection costs accept, one read and one send a request, and close
 * (and epoll_ctl when its first request was not there at once).  What a
 * read brings beyond complete heads (a head in pieces, pipelined requests
 * while an answer waits) is kept with the connection, at most HEAD_MAX
 * bytes; a head in pieces is read on from where the last read stopped
 * (alv_http_request_parse_more()), not from its start again.  A request
 * the front declines (another path, a body, a head it does not parse as
 * plainly valid or that is too long) goes, with every byte after it, to
 * the full server on the same connection (alv-replay-stream.h), which
 * answers as it always did.  A request the handler answers later (it
 * waits for work elsewhere, alv_http_front_answer()) holds its
 * connection meanwhile, reading nothing more.
 * One connection gets at most TURN_ANSWERS requests answered in one turn
 * of the main loop; what it pipelined beyond waits for the next turn,
 * after the other connections' events.
 * Answers go out with one send(); a client that does not read them holds
 * one answer here at most, and nothing more is read from it meanwhile
 * (pipelining cannot queue work).  A client that sends no complete head
 * before its deadline (slow or silent) is closed; a head whose body
 * cannot be delimited (a broken Content-Length) gets 400 and a close.
 * A connection closed after an answer while its client sent more is
 * shut down for writing and drained a little first (conn_finish()), so
 * that a reset does not destroy the answer.
 */
#define G_LOG_DOMAIN "alluvium"
#include "config.h"
#include "alv-http-front.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <glib/gi18n-lib.h>
#include <libsoup/soup.h>

#define HEAD_MAX (32 * 1024)     /* a longer head goes to the full server */
#define EPOLL_BATCH 64
/* the most requests of one connection answered in one turn of the main
 * loop: a client pipelining hundreds waits its turn like the others */
#define TURN_ANSWERS 32
/* what a connection closed after an answer may still send, read and
 * dropped so that the answer is not lost to a reset */
#define LINGER_BYTES (256 * 1024)
#define LINGER_SECONDS 2

typedef struct _FrontConn FrontConn;

struct _FrontConn
{
  AlvHttpFront *front;
  GList link;                   /* in front->conns */
  GList ready_link;             /* in front->ready, while @queued */
  gboolean queued;              /* has requests left for the next turn */
  guint turn;                   /* the last turn it was served in */
  int fd;
  GSocketAddress *remote;
  char *address;                /* the listener's key for the client */
  gint64 deadline;              /* monotonic µs; 0: none */
  char *in;                     /* read, not handled yet */
  gsize in_len;
  AlvHttpScan scan;             /* how far the head at @in was read */
  char *out;                    /* the unsent end of an answer */
  gsize out_len;
  gsize out_off;
  gboolean close_after;
  gboolean close_unread;        /* with @close_after: bytes were left */
  gboolean lingering;           /* answered and shut down: draining */
  gboolean nodelay;             /* TCP_NODELAY set */
  guint64 ticket;               /* of the request answered later, or 0 */
  guint later_minor;            /* that request's version, */
  gboolean later_head;          /* whether it was a HEAD, */
  gboolean later_keep_alive;    /* and whether the connection stays */
  gsize linger_left;
  gboolean watched;             /* in the epoll set */
};

typedef struct
{
  GSource source;
  AlvHttpFront *front;
} FrontSource;

struct _AlvHttpFront
{
  AlvHttpFrontConfig config;
  char *server;
  AlvHttpFrontFunc func;
  AlvHttpFrontHandOverFunc hand_over;
  AlvHttpFrontClosedFunc closed;
  AlvHttpFrontRefuseFunc refuse;  /* nullable */
  gpointer user_data;
  int epfd;
  GSource *source;              /* watches @epfd, and wakes at @sweep_at */
  gint64 sweep_at;              /* monotonic µs of the next sweep, or -1 */
  gint64 swept;                 /* of the last one */
  GQueue conns;                 /* FrontConn, through their link */
  GQueue ready;                 /* FrontConn with requests kept for the next turn */
  guint turn;                   /* dispatches so far */
  guint64 answered;
  GHashTable *later;            /* ticket → FrontConn waiting for its answer */
  guint64 tickets;              /* given so far */
  GString *wire;                /* the answer being sent */
  AlvHttpAnswer answer;
  gint64 date_second;
  char date[40];
  char buf[HEAD_MAX];
};

static const char *const day_names[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const month_names[] = {
  "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

/* The Date header's value, formatted once a second (C names, not the
 * locale's). */
static const char *
front_date (AlvHttpFront *front)
{
  time_t now = time (NULL);
  struct tm tm;

  if ((gint64) now == front->date_second)
    return front->date;
  gmtime_r (&now, &tm);
  g_snprintf (front->date, sizeof front->date, "%s, %02d %s %04d %02d:%02d:%02d GMT",
              day_names[tm.tm_wday % 7], tm.tm_mday, month_names[tm.tm_mon % 12],
              tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  front->date_second = (gint64) now;
  return front->date;
}

/* Wakes the source at once while connections wait for their turn, else
 * at the next sweep. */
static void
front_update_wakeup (AlvHttpFront *front)
{
  g_source_set_ready_time (front->source, front->ready.length > 0 ? 0 : front->sweep_at);
}

/* Wakes the source at @sweep_at (-1: not for deadlines). */
static void
front_set_sweep (AlvHttpFront *front,
                 gint64        sweep_at)
{
  front->sweep_at = sweep_at;
  front_update_wakeup (front);
}

static void
conn_free (FrontConn *conn)
{
  g_queue_unlink (&conn->front->conns, &conn->link);
  if (conn->queued)
    g_queue_unlink (&conn->front->ready, &conn->ready_link);
  if (conn->ticket != 0)
    g_hash_table_remove (conn->front->later, &conn->ticket);
  /* the timer runs only while there are deadlines to keep */
  if (conn->front->conns.length == 0)
    front_set_sweep (conn->front, -1);
  g_clear_object (&conn->remote);
  g_free (conn->address);
  g_free (conn->in);
  g_free (conn->out);
  g_free (conn);
}

/* Ends @conn: its descriptor closes and it stops counting. */
static void
conn_close (FrontConn *conn)
{
  AlvHttpFront *front = conn->front;

  if (conn->watched)
    epoll_ctl (front->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
  close (conn->fd);
  front->closed (conn->address, front->user_data);
  conn_free (conn);
}

/* Gives @conn to the full server, with the @len bytes at @data that
 * it read and did not handle. */
static void
conn_hand_over (FrontConn  *conn,
                const char *data,
                gsize       len)
{
  AlvHttpFront *front = conn->front;
  g_autoptr(GBytes) unread = g_bytes_new (data, len);

  if (conn->watched)
    epoll_ctl (front->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
  front->hand_over (conn->fd, conn->remote, conn->address, unread, front->user_data);
  conn_free (conn);
}

/* Deadlines are seconds apart at the finest: sweeping at most once a
 * second keeps a sweep (which looks at every connection) rare under any
 * load, and a connection is closed at most a second late. */
static void
conn_set_deadline (FrontConn *conn,
                   gint64     now,
                   guint      seconds)
{
  AlvHttpFront *front = conn->front;
  gint64 at;

  conn->deadline = seconds != 0 ? now + (gint64) seconds * G_USEC_PER_SEC : 0;
  if (conn->deadline == 0)
    return;
  at = MAX (conn->deadline, front->swept + G_USEC_PER_SEC);
  if (front->sweep_at == -1 || at < front->sweep_at)
    front_set_sweep (front, at);
}

/* Watches @conn for @events (in the epoll set from the first call on). */
static gboolean
conn_watch (FrontConn *conn,
            guint32    events)
{
  struct epoll_event ev = { .events = events, .data.ptr = conn };

  if (epoll_ctl (conn->front->epfd, conn->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, conn->fd, &ev) != 0)
    return FALSE;
  conn->watched = TRUE;
  return TRUE;
}

/* Sends what it can of @data: the bytes sent, or -1 when the
 * connection failed. */
static gssize
send_some (int         fd,
           const char *data,
           gsize       len)
{
  gsize off = 0;

  while (off < len)
    {
      gssize n = send (fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (n <= 0)
        return -1;
      off += (gsize) n;
    }
  return (gssize) off;
}

/* Sends what is left of the answer; FALSE when the connection failed. */
static gboolean
conn_flush (FrontConn *conn)
{
  gssize n = send_some (conn->fd, conn->out + conn->out_off, conn->out_len - conn->out_off);

  if (n < 0)
    return FALSE;
  conn->out_off += (gsize) n;
  if (conn->out_off == conn->out_len)
    {
      g_clear_pointer (&conn->out, g_free);
      conn->out_len = conn->out_off = 0;
    }
  return TRUE;
}

/* Whether the front may answer @req at all: a request without a body
 * that only asks (GET, HEAD), with nothing a full server must handle. */
static gboolean
may_answer (const AlvHttpRequest *req)
{
  guint hosts = 0;

  if (req->has_body
      || !(alv_http_request_is_method (req, "GET") || alv_http_request_is_method (req, "HEAD")))
    return FALSE;
  (void) alv_http_request_find (req, "Host", &hosts);
  if (req->minor == 1 && hosts != 1)
    return FALSE;
  return alv_http_request_find (req, "Expect", NULL) == NULL
         && alv_http_request_find (req, "Upgrade", NULL) == NULL;
}

/* @a on the wire (front->wire), for a request of HTTP/1.@minor. */
static void
format_answer_full (AlvHttpFront        *front,
                    const AlvHttpAnswer *a,
                    guint                minor,
                    gboolean             head,
                    gboolean             keep_alive)
{
  GString *wire = front->wire;
  const char *reason = a->reason != NULL ? a->reason : soup_status_get_phrase (a->status);

  g_string_truncate (wire, 0);
  g_string_append_printf (wire, "HTTP/1.%u %u %s\r\nDate: %s\r\n", minor, a->status,
                          reason != NULL ? reason : "Unknown", front_date (front));
  if (front->server != NULL)
    g_string_append_printf (wire, "Server: %s\r\n", front->server);
  g_string_append_len (wire, a->headers->str, (gssize) a->headers->len);
  g_string_append_printf (wire, "Content-Length: %" G_GSIZE_FORMAT "\r\n", a->body->len);
  if (!keep_alive)
    g_string_append (wire, "Connection: close\r\n");
  else if (minor == 0)
    g_string_append (wire, "Connection: keep-alive\r\n");
  g_string_append (wire, "\r\n");
  if (!head)
    g_string_append_len (wire, a->body->str, (gssize) a->body->len);
}

static void
format_answer (AlvHttpFront         *front,
               const AlvHttpRequest *req,
               gboolean              keep_alive)
{
  format_answer_full (front, &front->answer, req->minor, alv_http_request_is_method (req, "HEAD"),
                      keep_alive);
}

/* Reads and drops what a lingering @conn sends, until the client
 * closes, LINGER_BYTES are read or nothing more is there.  FALSE when
 * @conn is gone. */
static gboolean
conn_drain (FrontConn *conn)
{
  AlvHttpFront *front = conn->front;

  for (;;)
    {
      gssize n = recv (conn->fd, front->buf, MIN (sizeof front->buf, conn->linger_left),
                       MSG_DONTWAIT);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return TRUE;
      if (n <= 0 || (gsize) n >= conn->linger_left)
        {
          conn_close (conn);
          return FALSE;
        }
      conn->linger_left -= (gsize) n;
    }
}

/* Closes @conn once its last answer is sent.  Closing a socket with
 * unread bytes sends a reset, and a reset can destroy the answer before
 * the client reads it: when the client sent more than was answered
 * (@unread, or bytes there now), the front stops writing (the client
 * sees the end of the answer) and reads and drops what comes until the
 * client closes, for LINGER_SECONDS and LINGER_BYTES at most. */
static void
conn_finish (FrontConn *conn,
             gint64     now,
             gboolean   unread)
{
  char probe;

  if (!unread)
    unread = recv (conn->fd, &probe, 1, MSG_DONTWAIT | MSG_PEEK) > 0;
  if (!unread || shutdown (conn->fd, SHUT_WR) != 0)
    {
      conn_close (conn);
      return;
    }
  g_clear_pointer (&conn->in, g_free);
  conn->in_len = 0;
  conn->lingering = TRUE;
  conn->linger_left = LINGER_BYTES;
  conn_set_deadline (conn, now, LINGER_SECONDS);
  if (conn_drain (conn) && !conn_watch (conn, EPOLLIN))
    conn_close (conn);
}

static void
answer_reset (AlvHttpAnswer *answer)
{
  g_string_truncate (answer->headers, 0);
  g_string_truncate (answer->body, 0);
  answer->status = 0;
  answer->reason = NULL;
}

/* A request whose body cannot be delimited (@req, read but for its
 * framing): 400, and the connection closes (what follows the head
 * cannot be read as a next request).  The refusal is the server's to
 * word, count and log (alv_http_front_set_refuse_func()); a HEAD gets
 * its headers only. */
static void
refuse_bad_length (FrontConn            *conn,
                   const AlvHttpRequest *req,
                   gint64                now)
{
  AlvHttpFront *front = conn->front;
  AlvHttpAnswer *a = &front->answer;
  const char *reason = _("the request's Content-Length is not one plain number");

  answer_reset (a);
  if (front->refuse != NULL)
    front->refuse (req, conn->remote, SOUP_STATUS_BAD_REQUEST, reason, a, front->user_data);
  else
    {
      g_string_append (a->headers, "Content-Type: text/plain; charset=utf-8\r\n");
      g_string_append_printf (a->body, "%s\n", reason);
    }
  a->status = SOUP_STATUS_BAD_REQUEST;
  format_answer (front, req, FALSE);
  (void) send_some (conn->fd, front->wire->str, front->wire->len);
  /* a body may follow, or anything */
  conn_finish (conn, now, TRUE);
}

typedef enum
{
  SENT_NEXT,                    /* on to the next request */
  SENT_WAIT,                    /* the rest waits for the client to read */
  SENT_GONE,                    /* the connection is closed or closing */
} Sent;

/* Sends the answer in front->wire to a request of @conn, and closes
 * @conn after it unless @keep_alive; @unread: the client sent more after
 * that request. */
static Sent
conn_send_answer (FrontConn *conn,
                  gboolean   keep_alive,
                  gboolean   unread,
                  gint64     now)
{
  AlvHttpFront *front = conn->front;
  gssize n;

  /* answers go out at once: with Nagle, the second of two pipelined
   * answers would wait for the client's delayed ACK (about 40 ms).  The
   * last answer needs nothing: it goes out as the connection closes */
  if (keep_alive && !conn->nodelay)
    {
      int one = 1;

      setsockopt (conn->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      conn->nodelay = TRUE;
    }
  front->answered++;
  n = send_some (conn->fd, front->wire->str, front->wire->len);
  if (n < 0)
    {
      conn_close (conn);
      return SENT_GONE;
    }
  if (!keep_alive && (gsize) n == front->wire->len)
    {
      conn_finish (conn, now, unread);
      return SENT_GONE;
    }
  conn_set_deadline (conn, now, front->config.idle_timeout);
  if ((gsize) n == front->wire->len)
    return SENT_NEXT;
  /* the client is not reading: wait for it, read nothing more */
  conn->out_len = front->wire->len - (gsize) n;
  conn->out = g_memdup2 (front->wire->str + n, conn->out_len);
  conn->out_off = 0;
  conn->close_after = !keep_alive;
  conn->close_unread = !keep_alive && unread;
  if (!conn_watch (conn, EPOLLOUT))
    {
      conn_close (conn);
      return SENT_GONE;
    }
  return SENT_WAIT;
}

/* @conn has requests left: it is served again in the next turn, before
 * new events (no event would tell of bytes already read). */
static void
conn_queue (FrontConn *conn)
{
  if (conn->queued)
    return;
  conn->queued = TRUE;
  g_queue_push_tail_link (&conn->front->ready, &conn->ready_link);
  front_update_wakeup (conn->front);
}

/* Handles the @len bytes read from @conn at @buf (front->buf): answers
 * the complete requests (TURN_ANSWERS at most), keeps the rest.  FALSE
 * when @conn is gone. */
static gboolean
conn_handle (FrontConn *conn,
             char      *buf,
             gsize      len,
             gint64     now)
{
  AlvHttpFront *front = conn->front;
  AlvHttpRequest req;
  gsize off = 0;
  /* a head begun in an earlier read is read on from where it stopped */
  AlvHttpScan scan = conn->scan;
  guint answered = 0;

  memset (&conn->scan, 0, sizeof conn->scan);
  while (off < len)
    {
      AlvHttpParse result;
      AlvHttpFrontResult outcome;
      gboolean keep_alive;
      Sent sent;

      if (answered == TURN_ANSWERS)
        {
          conn_queue (conn);
          break;
        }
      result = alv_http_request_parse_more (&req, &scan, buf + off, len - off, HEAD_MAX,
                                            ALV_HTTP_MAX_HEADERS);
      if (result == ALV_HTTP_PARSE_INCOMPLETE)
        {
          conn->scan = scan;    /* the rest of it comes later */
          break;
        }
      if (result == ALV_HTTP_PARSE_BAD_LENGTH)
        {
          refuse_bad_length (conn, &req, now);
          return FALSE;
        }
      answer_reset (&front->answer);
      front->answer.ticket = ++front->tickets;
      outcome = result == ALV_HTTP_PARSE_OK && may_answer (&req)
                ? front->func (&req, conn->remote, &front->answer, front->user_data)
                : ALV_HTTP_FRONT_DECLINED;
      if (outcome == ALV_HTTP_FRONT_DECLINED)
        {
          conn_hand_over (conn, buf + off, len - off);
          return FALSE;
        }
      keep_alive = req.keep_alive;
      off += req.head_len;
      memset (&scan, 0, sizeof scan);
      if (outcome == ALV_HTTP_FRONT_LATER)
        {
          /* nothing more is read until the answer is sent */
          conn->ticket = front->answer.ticket;
          conn->later_minor = req.minor;
          conn->later_head = alv_http_request_is_method (&req, "HEAD");
          conn->later_keep_alive = keep_alive;
          g_hash_table_insert (front->later, &conn->ticket, conn);
          conn_set_deadline (conn, now, front->config.idle_timeout);
          if (conn->watched && !conn_watch (conn, 0))
            {
              conn_close (conn);
              return FALSE;
            }
          break;
        }
      format_answer (front, &req, keep_alive);
      answered++;
      sent = conn_send_answer (conn, keep_alive, off < len, now);
      if (sent == SENT_GONE)
        return FALSE;
      if (sent == SENT_WAIT)
        break;
    }
  if (off < len && !conn->close_after)
    {
      conn->in_len = len - off;
      conn->in = g_memdup2 (buf + off, conn->in_len);
    }
  return TRUE;
}

/* Reads what @conn sent and handles it, with what was kept from before.
 * FALSE when @conn is gone. */
static gboolean
conn_serve (FrontConn *conn,
            gint64     now)
{
  AlvHttpFront *front = conn->front;
  gsize len = conn->in_len;
  gssize n;

  if (len > 0)
    {
      memcpy (front->buf, conn->in, len);
      g_clear_pointer (&conn->in, g_free);
      conn->in_len = 0;
    }
  if (len == sizeof front->buf)
    return conn_handle (conn, front->buf, len, now);
  do
    n = recv (conn->fd, front->buf + len, sizeof front->buf - len, MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
    {
      /* the client left (with half a head, if any), or the connection failed */
      conn_close (conn);
      return FALSE;
    }
  return conn_handle (conn, front->buf, len + (gsize) MAX (n, 0), now);
}

/* Handles what was read from @conn and kept, reading nothing more:
 * requests left from the last turn, or read while an answer waited. */
static void
conn_handle_kept (FrontConn *conn,
                  gint64     now)
{
  AlvHttpFront *front = conn->front;
  gsize len = conn->in_len;

  if (len == 0)
    return;
  memcpy (front->buf, conn->in, len);
  g_clear_pointer (&conn->in, g_free);
  conn->in_len = 0;
  (void) conn_handle (conn, front->buf, len, now);
}

/* Something happened on @conn. */
static void
conn_ready (FrontConn *conn,
            guint32    events,
            gint64     now)
{
  if (conn->ticket != 0)
    {
      /* waiting for its answer: reading nothing, watching for nothing
       * but the end */
      if ((events & (EPOLLERR | EPOLLHUP)) != 0)
        conn_close (conn);
      return;
    }
  if (conn->lingering)
    {
      (void) conn_drain (conn);
      return;
    }
  if (conn->out == NULL)
    {
      (void) conn_serve (conn, now);
      return;
    }
  if ((events & (EPOLLERR | EPOLLHUP)) != 0 || !conn_flush (conn))
    {
      conn_close (conn);
      return;
    }
  if (conn->out != NULL)
    return;
  if (conn->close_after)
    {
      conn_finish (conn, now, conn->close_unread);
      return;
    }
  if (!conn_watch (conn, EPOLLIN))
    {
      conn_close (conn);
      return;
    }
  conn_set_deadline (conn, now, conn->front->config.idle_timeout);
  /* requests read while the answer waited: no new event tells of them */
  conn_handle_kept (conn, now);
}

/* Closes the connections past their deadline; the timer is set again
 * for the first deadline left (deadlines that moved later since it was
 * set come out here). */
static void
sweep (AlvHttpFront *front,
       gint64        now)
{
  GList *l = front->conns.head;
  gint64 next = -1;

  while (l != NULL)
    {
      FrontConn *conn = l->data;

      l = l->next;
      if (conn->deadline != 0 && now >= conn->deadline)
        {
          if (!conn->lingering)
            g_debug ("a client sent no request, or read no answer, in time; closing its connection");
          conn_close (conn);
        }
      else if (conn->deadline != 0 && (next == -1 || conn->deadline < next))
        next = conn->deadline;
    }
  front->swept = now;
  front_set_sweep (front, next == -1 ? -1 : MAX (next, now + G_USEC_PER_SEC));
}

static gboolean
front_dispatch (GSource     *source,
                GSourceFunc  callback G_GNUC_UNUSED,
                gpointer     user_data G_GNUC_UNUSED)
{
  AlvHttpFront *front = ((FrontSource *) source)->front;
  gint64 now = g_source_get_time (source);
  struct epoll_event events[EPOLL_BATCH];
  guint waiting = front->ready.length;
  int n;

  /* a turn: those left from the last one first, then the new events,
   * each connection served once (those queued again wait for the next
   * turn; epoll tells again of what they have not read) */
  front->turn++;
  for (guint i = 0; i < waiting && front->ready.head != NULL; i++)
    {
      FrontConn *conn = front->ready.head->data;

      g_queue_unlink (&front->ready, &conn->ready_link);
      conn->queued = FALSE;
      conn->turn = front->turn;
      conn_handle_kept (conn, now);
    }
  n = epoll_wait (front->epfd, events, EPOLL_BATCH, 0);
  for (int i = 0; i < n; i++)
    {
      FrontConn *conn = events[i].data.ptr;

      if (conn->queued || conn->turn == front->turn)
        continue;
      conn->turn = front->turn;
      conn_ready (conn, events[i].events, now);
    }
  if (front->sweep_at != -1 && front->sweep_at <= now)
    sweep (front, now);
  front_update_wakeup (front);
  return G_SOURCE_CONTINUE;
}

static GSourceFuncs front_source_funcs = {
  NULL, NULL, front_dispatch, NULL, NULL, NULL,
};

/**
 * alv_http_front_new:
 * @config: timeouts and the Server header (copied)
 * @func: answers the requests it can
 * @hand_over: takes the connections of the others
 * @closed: learns of each connection the front closed
 * @user_data: for all three
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a front with no connection yet, or NULL
 */
AlvHttpFront *
alv_http_front_new (const AlvHttpFrontConfig  *config,
                    AlvHttpFrontFunc           func,
                    AlvHttpFrontHandOverFunc   hand_over,
                    AlvHttpFrontClosedFunc     closed,
                    gpointer                   user_data,
                    GError                   **error)
{
  AlvHttpFront *front;

  g_return_val_if_fail (config != NULL && func != NULL && hand_over != NULL && closed != NULL,
                        NULL);

  front = g_new0 (AlvHttpFront, 1);
  front->config = *config;
  front->server = g_strdup (config->server);
  front->config.server = front->server;
  front->func = func;
  front->hand_over = hand_over;
  front->closed = closed;
  front->user_data = user_data;
  g_queue_init (&front->conns);
  g_queue_init (&front->ready);
  front->later = g_hash_table_new (g_int64_hash, g_int64_equal);
  front->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (front->epfd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "epoll_create1: %s",
                   g_strerror (saved));
      g_free (front);
      return NULL;
    }
  front->source = g_source_new (&front_source_funcs, sizeof (FrontSource));
  ((FrontSource *) front->source)->front = front;
  g_source_set_static_name (front->source, "[alluvium] HTTP front");
  g_source_add_unix_fd (front->source, front->epfd, G_IO_IN);
  front->sweep_at = -1;
  g_source_attach (front->source, g_main_context_get_thread_default ());
  front->wire = g_string_sized_new (1024);
  front->answer.headers = g_string_sized_new (512);
  front->answer.body = g_string_sized_new (512);
  front->date_second = -1;
  return front;
}

/**
 * alv_http_front_set_refuse_func:
 * @front: a front
 * @refuse: (nullable): words, counts and logs the front's refusals (with
 *   the user data of alv_http_front_new()), or NULL for a plain answer
 *
 * The front refuses a request itself only when it cannot pass it on (a
 * broken Content-Length); @refuse makes that refusal the server's.
 */
void
alv_http_front_set_refuse_func (AlvHttpFront           *front,
                                AlvHttpFrontRefuseFunc  refuse)
{
  g_return_if_fail (front != NULL);
  front->refuse = refuse;
}

/**
 * alv_http_front_take:
 * @front: a front
 * @fd: (transfer full): a non-blocking connected socket, nothing read
 * @remote: the client's address
 * @address: the client as the listener counts it (copied)
 *
 * Serves the connection from now on (or hands it over, or closes it).
 */
void
alv_http_front_take (AlvHttpFront   *front,
                     int             fd,
                     GSocketAddress *remote,
                     const char     *address)
{
  FrontConn *conn;
  gint64 now;

  g_return_if_fail (front != NULL && fd >= 0);
  g_return_if_fail (G_IS_SOCKET_ADDRESS (remote) && address != NULL);

  conn = g_new0 (FrontConn, 1);
  conn->front = front;
  conn->link.data = conn;
  conn->ready_link.data = conn;
  conn->fd = fd;
  conn->remote = g_object_ref (remote);
  conn->address = g_strdup (address);
  g_queue_push_tail_link (&front->conns, &conn->link);
  now = g_get_monotonic_time ();
  conn_set_deadline (conn, now, front->config.header_timeout);
  /* the request is most often there already: a connection answered and
   * closed at once never enters the epoll set */
  if (conn_serve (conn, now) && !conn->watched
      && !conn_watch (conn, conn->ticket != 0 ? 0 : EPOLLIN))
    conn_close (conn);
}

/**
 * alv_http_front_answer:
 * @front: a front
 * @ticket: the ticket of a request its handler said it would answer
 *   later (%ALV_HTTP_FRONT_LATER), from the answer it was given then
 * @answer: the answer (the front adds what it adds to every answer)
 *
 * Sends the answer to a request answered later; what the client sent
 * after that request is served in the next turn of the loop.  Not to be
 * called from the handler itself.
 *
 * Returns: %FALSE when the connection is gone (closed by the client, a
 *   deadline or alv_http_front_free()): nothing was sent
 */
gboolean
alv_http_front_answer (AlvHttpFront        *front,
                       guint64              ticket,
                       const AlvHttpAnswer *answer)
{
  FrontConn *conn;
  gint64 now;

  g_return_val_if_fail (front != NULL && answer != NULL, FALSE);

  conn = g_hash_table_lookup (front->later, &ticket);
  if (conn == NULL)
    return FALSE;
  g_hash_table_remove (front->later, &ticket);
  conn->ticket = 0;
  now = g_get_monotonic_time ();
  format_answer_full (front, answer, conn->later_minor, conn->later_head, conn->later_keep_alive);
  if (conn_send_answer (conn, conn->later_keep_alive, conn->in_len > 0, now) != SENT_NEXT)
    return TRUE;
  if (!conn_watch (conn, EPOLLIN))
    {
      conn_close (conn);
      return TRUE;
    }
  /* what it pipelined meanwhile: no event tells of it */
  if (conn->in_len > 0)
    conn_queue (conn);
  return TRUE;
}

/* Whether the client of @conn has gone, as the front would find at its
 * next read: the end of the stream where it reads (an idle or lingering
 * connection), a hang-up where it does not (an answer being sent or
 * waited for, requests kept for the next turn). */
static gboolean
conn_client_gone (FrontConn *conn)
{
  struct pollfd pfd = { .fd = conn->fd, .events = POLLIN };
  char probe;
  gssize n;

  if (poll (&pfd, 1, 0) < 0)
    return FALSE;
  if ((pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0)
    return TRUE;
  if (conn->ticket != 0 || conn->out != NULL || conn->in_len > 0 || (pfd.revents & POLLIN) == 0)
    return FALSE;
  n = recv (conn->fd, &probe, 1, MSG_DONTWAIT | MSG_PEEK);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/**
 * alv_http_front_reap:
 * @front: a front
 * @address: (nullable): the listener's key of a client, or NULL for all
 *
 * Closes the connections (of @address) whose clients have gone, before
 * the front reads their end: a client that closed and connects again at
 * once finds its closed connection no longer counted at the listener's
 * cap.  Looks at every connection: called at a cap only.
 *
 * Returns: how many it closed
 */
guint
alv_http_front_reap (AlvHttpFront *front,
                     const char   *address)
{
  GList *l;
  guint n = 0;

  g_return_val_if_fail (front != NULL, 0);

  l = front->conns.head;
  while (l != NULL)
    {
      FrontConn *conn = l->data;

      l = l->next;
      if ((address == NULL || strcmp (conn->address, address) == 0) && conn_client_gone (conn))
        {
          conn_close (conn);
          n++;
        }
    }
  return n;
}

/**
 * alv_http_front_get_n_connections:
 * @front: a front
 *
 * Returns: how many connections it holds (not those handed over)
 */
guint
alv_http_front_get_n_connections (AlvHttpFront *front)
{
  g_return_val_if_fail (front != NULL, 0);
  return front->conns.length;
}

/**
 * alv_http_front_get_next_sweep:
 * @front: a front
 *
 * When the front next wakes to close connections past their deadlines:
 * the first deadline, or a second after the last sweep if that is later;
 * never while no connection has a deadline.
 *
 * Returns: a monotonic time in µs, or -1 when the timer is not armed
 */
gint64
alv_http_front_get_next_sweep (AlvHttpFront *front)
{
  g_return_val_if_fail (front != NULL, -1);
  return front->sweep_at;
}

/**
 * alv_http_front_get_n_answered:
 * @front: a front
 *
 * Returns: how many requests it answered itself
 */
guint64
alv_http_front_get_n_answered (AlvHttpFront *front)
{
  g_return_val_if_fail (front != NULL, 0);
  return front->answered;
}

/**
 * alv_http_front_free:
 * @front: (nullable): a front
 *
 * Closes its connections and frees it.
 */
void
alv_http_front_free (AlvHttpFront *front)
{
  if (front == NULL)
    return;
  while (front->conns.head != NULL)
    conn_close (front->conns.head->data);
  g_source_destroy (front->source);
  g_source_unref (front->source);
  close (front->epfd);
  g_hash_table_unref (front->later);
  g_string_free (front->wire, TRUE);
  g_string_free (front->answer.headers, TRUE);
  g_string_free (front->answer.body, TRUE);
  g_free (front->server);
  g_free (front);
}
