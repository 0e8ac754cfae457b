/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Port mapping's sockets and timers.  PCP, falling back to NAT-PMP: one
 * UDP socket connected to the router, a source on the main context for
 * the replies, a timer for the resends (the schedule and the packets are
 * alv-nat-policy.c's, alv-pcp.c's and alv-natpmp.c's), another for the
 * renewal.  UPnP: a GUPnPSimpleIgd, which finds the
 * router by SSDP and renews the mapping itself; dropping it removes the
 * mapping, and its finalisation says the removal is done.
 */
#define G_LOG_DOMAIN "alluvium-core"
#include "config.h"

#include "alv-port-map.h"

#include <string.h>
#include <glib/gi18n-lib.h>
#include <gnutls/crypto.h>

#include "alv-natpmp.h"
#include "alv-pcp.h"

#ifdef HAVE_GUPNP_IGD
#include <libgupnp-igd/gupnp-simple-igd.h>
#endif

/* the UPnP mapping's lease (s); GUPnP-IGD renews it at half */
#define UPNP_LEASE 3600
/* the longest wait for the routers to confirm the removal (ms): the
 * NAT-PMP resends are over by then (alv_nat_retry_delay_ms()) */
#define RELEASE_WAIT_MS 2000
#define MAPPING_DESCRIPTION "Alluvium peer port"

typedef enum
{
  PMP_IDLE,         /* not started, or given up */
  PMP_MAPPING,      /* asking for the mapping (or its renewal) */
  PMP_MAPPED,       /* granted, waiting to renew */
  PMP_RELEASING,    /* asking for its removal */
} PmpPhase;

struct _AlvPortMap
{
  GObject parent_instance;

  AlvNatSetting setting;
  guint16 local_port;
  char *router;                    /* NULL: the default gateway */
  guint16 router_port;
  gboolean started;

  /* what won */
  AlvPortMapping mapping;
  char *external_address;          /* NULL: not known */
  guint16 external_port;
  char *refused_address;           /* the last one not public (logged) */

  /* NAT-PMP */
  GSocket *socket;
  GSource *socket_source;
  GInetSocketAddress *server;
  PmpPhase phase;
  guint sends;                     /* of the request in flight */
  guint max_sends;
  guint retry_id;
  guint renew_id;
  gboolean pmp_mapped;             /* the router holds our mapping */
  gboolean pcp;                    /* speaking PCP (until the router shows it
                                    * speaks only NAT-PMP) */
  guint8 nonce[ALV_PCP_NONCE_SIZE];
  guint8 client[4];                /* our address towards the router */
  guint16 pmp_external_port;
  char *pmp_address;
  gboolean have_epoch;
  guint32 epoch;
  gint64 epoch_time;               /* monotonic s */

#ifdef HAVE_GUPNP_IGD
  GUPnPSimpleIgd *igd;
  GUPnPSimpleIgd *igd_releasing;   /* dropped, its removal under way */
  char *local_ip;
#endif

  GTask *release_task;
  guint release_pending;           /* methods still removing */
  guint release_timeout_id;
};

G_DEFINE_TYPE (AlvPortMap, alv_port_map, G_TYPE_OBJECT)

enum
{
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void pmp_send (AlvPortMap *self);
static void pmp_stop (AlvPortMap *self, gboolean remove);
#ifdef HAVE_GUPNP_IGD
static void upnp_stop (AlvPortMap *self);
#endif

static gint64
now_s (void)
{
  return g_get_monotonic_time () / G_USEC_PER_SEC;
}

static void
release_step_done (AlvPortMap *self)
{
  g_autoptr(GTask) task = NULL;

  if (self->release_pending > 0)
    self->release_pending--;
  if (self->release_pending > 0 || self->release_task == NULL)
    return;
  g_clear_handle_id (&self->release_timeout_id, g_source_remove);
  task = g_steal_pointer (&self->release_task);
  g_task_return_boolean (task, TRUE);
}

/* @method got a mapping (or, @port 0, lost it). */
static void
set_mapping (AlvPortMap     *self,
             AlvPortMapping  method,
             const char     *address,
             guint16         port)
{
  if (port == 0)
    {
      if (self->mapping != method)
        return;
      g_message ("the peer port is no longer mapped (%s)", alv_port_mapping_to_string (method));
      self->mapping = ALV_PORT_MAPPING_NONE;
      self->external_port = 0;
      g_clear_pointer (&self->external_address, g_free);
      g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
      return;
    }
  if (self->mapping != ALV_PORT_MAPPING_NONE && self->mapping != method)
    return;
  /* NULL: NAT-PMP's address request not answered yet */
  if (address != NULL && !alv_nat_external_address_usable (address))
    {
      if (g_strcmp0 (address, self->refused_address) != 0)
        {
          g_message ("the router's external address %s is not public: it is itself behind "
                     "another NAT; the peer port is not mapped (%s)", address,
                     alv_port_mapping_to_string (method));
          g_free (self->refused_address);
          self->refused_address = g_strdup (address);
        }
      if (self->mapping == method)
        set_mapping (self, method, NULL, 0);
      return;
    }
  if (self->mapping == method && self->external_port == port &&
      g_strcmp0 (self->external_address, address) == 0)
    return;
  if (self->mapping == ALV_PORT_MAPPING_NONE)
    g_message ("peer port %u mapped to %s:%u (%s)", self->local_port,
               address != NULL ? address : "?", port, alv_port_mapping_to_string (method));
  self->mapping = method;
  self->external_port = port;
  g_free (self->external_address);
  self->external_address = g_strdup (address);
  /* the first to succeed wins: the others stop (and undo what they did) */
  if (method == ALV_PORT_MAPPING_UPNP && self->phase != PMP_IDLE)
    pmp_stop (self, TRUE);
#ifdef HAVE_GUPNP_IGD
  if (method != ALV_PORT_MAPPING_UPNP)
    upnp_stop (self);
#endif
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

/* ------------------------------------------------------------------ */
/* NAT-PMP                                                             */

static gboolean
pmp_send_datagram (AlvPortMap   *self,
                   const guint8 *buf,
                   gsize         len)
{
  g_autoptr(GError) error = NULL;

  if (g_socket_send (self->socket, (const char *) buf, len, NULL, &error) < 0)
    {
      g_debug ("NAT-PMP: cannot send: %s", error->message);
      return FALSE;
    }
  return TRUE;
}

static AlvPortMapping
pmp_method (AlvPortMap *self)
{
  return self->pcp ? ALV_PORT_MAPPING_PCP : ALV_PORT_MAPPING_NATPMP;
}

/* The removal of our mapping, in the protocol that made it. */
static gsize
pmp_build_removal (AlvPortMap *self,
                   guint8      buf[ALV_PCP_MAP_SIZE])
{
  if (self->pcp)
    return alv_pcp_build_map (buf, self->nonce, self->client, self->local_port, 0, 0);
  return alv_natpmp_build_map (buf, ALV_NATPMP_OP_MAP_TCP, self->local_port, 0, 0);
}

/* Gives up the request in flight: the router does not answer, or said
 * no. */
static void
pmp_give_up (AlvPortMap *self)
{
  PmpPhase phase = self->phase;

  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->phase = PMP_IDLE;
  if (phase == PMP_RELEASING)
    {
      self->pmp_mapped = FALSE;
      self->sends = 0;
      release_step_done (self);
      return;
    }
  self->pmp_mapped = FALSE;
  set_mapping (self, pmp_method (self), NULL, 0);
}

static void pmp_request (AlvPortMap *self, PmpPhase phase, guint max_sends);

static void
pmp_fall_back (AlvPortMap *self)
{
  g_debug ("PCP: no PCP from the router; NAT-PMP then");
  self->pcp = FALSE;
  pmp_request (self, PMP_MAPPING, ALV_NAT_MAX_SENDS);
}

static gboolean
on_pmp_retry (gpointer user_data)
{
  AlvPortMap *self = user_data;

  self->retry_id = 0;
  /* no answer to PCP: perhaps a router that drops what it does not
   * understand; NAT-PMP then */
  if (self->pcp && self->phase == PMP_MAPPING && !self->pmp_mapped &&
      self->sends >= ALV_NAT_PCP_SENDS)
    {
      pmp_fall_back (self);
      return G_SOURCE_REMOVE;
    }
  if (self->sends >= self->max_sends)
    {
      if (self->phase == PMP_MAPPING)
        g_message ("no PCP or NAT-PMP answer from %s after %u tries",
                   self->router != NULL ? self->router : "the router", self->sends);
      pmp_give_up (self);
      return G_SOURCE_REMOVE;
    }
  pmp_send (self);
  return G_SOURCE_REMOVE;
}

/* (Re)sends what the phase asks for and waits for the answer. */
static void
pmp_send (AlvPortMap *self)
{
  guint8 buf[ALV_PCP_MAP_SIZE];
  gsize len;
  guint16 suggested = self->pmp_external_port != 0 ? self->pmp_external_port : self->local_port;

  g_clear_handle_id (&self->retry_id, g_source_remove);
  if (self->phase == PMP_RELEASING)
    len = pmp_build_removal (self, buf);
  else if (self->pcp)
    len = alv_pcp_build_map (buf, self->nonce, self->client, self->local_port, suggested,
                             ALV_NATPMP_DEFAULT_LIFETIME);
  else
    {
      if (self->pmp_address == NULL)
        {
          gsize alen = alv_natpmp_build_external_address (buf);

          pmp_send_datagram (self, buf, alen);
        }
      len = alv_natpmp_build_map (buf, ALV_NATPMP_OP_MAP_TCP, self->local_port, suggested,
                                  ALV_NATPMP_DEFAULT_LIFETIME);
    }
  pmp_send_datagram (self, buf, len);
  self->sends++;
  self->retry_id = g_timeout_add (alv_nat_retry_delay_ms (self->sends, self->max_sends),
                                  on_pmp_retry, self);
}

static void
pmp_request (AlvPortMap *self,
             PmpPhase    phase,
             guint       max_sends)
{
  self->phase = phase;
  self->sends = 0;
  self->max_sends = max_sends;
  pmp_send (self);
}

static gboolean
on_pmp_renew (gpointer user_data)
{
  AlvPortMap *self = user_data;

  self->renew_id = 0;
  g_debug ("%s: renewing the mapping of port %u", self->pcp ? "PCP" : "NAT-PMP", self->local_port);
  pmp_request (self, PMP_MAPPING, ALV_NAT_MAX_SENDS);
  return G_SOURCE_REMOVE;
}

static void
pmp_got_address (AlvPortMap           *self,
                 const AlvNatpmpReply *reply)
{
  g_autofree char *address = g_strdup_printf ("%u.%u.%u.%u", reply->external_address[0],
                                              reply->external_address[1],
                                              reply->external_address[2],
                                              reply->external_address[3]);

  if (g_strcmp0 (address, self->pmp_address) == 0)
    return;
  g_free (self->pmp_address);
  self->pmp_address = g_steal_pointer (&address);
  if (self->pmp_mapped)
    set_mapping (self, pmp_method (self), self->pmp_address, self->pmp_external_port);
}

static void
pmp_got_mapping (AlvPortMap *self,
                 guint32     lifetime,
                 guint16     external_port)
{
  if (self->phase == PMP_RELEASING)
    {
      /* only a removal (lifetime 0; for NAT-PMP also external port 0,
       * which alv_natpmp_parse_reply() checked) confirms the removal: a
       * grant is a late answer to the mapping request (the resends go
       * on) */
      if (lifetime != 0)
        {
          g_debug ("%s: ignoring a grant of port %u while removing its mapping",
                   self->pcp ? "PCP" : "NAT-PMP", self->local_port);
          return;
        }
      g_debug ("%s: the mapping of port %u is removed", self->pcp ? "PCP" : "NAT-PMP",
               self->local_port);
      g_clear_handle_id (&self->retry_id, g_source_remove);
      self->phase = PMP_IDLE;
      self->pmp_mapped = FALSE;
      self->sends = 0;
      release_step_done (self);
      return;
    }
  if (self->phase != PMP_MAPPING || lifetime == 0)
    return;
  g_clear_handle_id (&self->retry_id, g_source_remove);
  self->phase = PMP_MAPPED;
  self->pmp_mapped = TRUE;
  self->pmp_external_port = external_port;
  g_debug ("%s: port %u mapped to %u for %u s", self->pcp ? "PCP" : "NAT-PMP", self->local_port,
           external_port, lifetime);
  g_clear_handle_id (&self->renew_id, g_source_remove);
  self->renew_id = g_timeout_add_full (G_PRIORITY_DEFAULT,
                                       (guint) MIN (alv_nat_renew_delay_ms (lifetime,
                                                                            ALV_NAT_RENEW_FLOOR_MS),
                                                    G_MAXUINT),
                                       on_pmp_renew, self, NULL);
  set_mapping (self, pmp_method (self), self->pmp_address, external_port);
}

/* Notes the router's epoch; FALSE when it says the router lost its
 * mappings, which are then asked for again. */
static gboolean
pmp_check_epoch (AlvPortMap *self,
                 guint32     epoch)
{
  gint64 now = now_s ();

  if (self->have_epoch && alv_natpmp_epoch_was_reset (self->epoch, self->epoch_time, epoch, now) &&
      self->phase == PMP_MAPPED)
    {
      g_message ("the router lost its port mappings (epoch %u after %u); mapping again",
                 epoch, self->epoch);
      self->have_epoch = FALSE;
      g_clear_handle_id (&self->renew_id, g_source_remove);
      pmp_request (self, PMP_MAPPING, ALV_NAT_MAX_SENDS);
      return FALSE;
    }
  self->have_epoch = TRUE;
  self->epoch = epoch;
  self->epoch_time = now;
  return TRUE;
}

static void
pcp_handle_reply (AlvPortMap   *self,
                  const guint8 *data,
                  gsize         len)
{
  g_autoptr(GError) error = NULL;
  AlvPcpMapReply reply;

  if (!alv_pcp_parse_map_reply (data, len, self->nonce, self->local_port, &reply, &error))
    {
      if (g_error_matches (error, ALV_PCP_ERROR, ALV_PCP_ERROR_MALFORMED) ||
          g_error_matches (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNEXPECTED))
        g_debug ("PCP: ignoring a packet from the router: %s", error->message);
      else if (self->phase == PMP_MAPPING && !self->pmp_mapped &&
               g_error_matches (error, ALV_PCP_ERROR, ALV_PCP_ERROR_UNSUPPORTED_VERSION))
        pmp_fall_back (self);
      else if (self->phase == PMP_MAPPING)
        {
          g_message ("cannot map the peer port with PCP: %s", error->message);
          pmp_give_up (self);
        }
      else
        g_debug ("PCP: %s", error->message);
      return;
    }
  if (!pmp_check_epoch (self, reply.epoch))
    return;
  if (reply.lifetime > 0)
    {
      g_autofree char *address = g_strdup_printf ("%u.%u.%u.%u", reply.external_address[0],
                                                  reply.external_address[1],
                                                  reply.external_address[2],
                                                  reply.external_address[3]);

      g_free (self->pmp_address);
      self->pmp_address = g_steal_pointer (&address);
    }
  pmp_got_mapping (self, reply.lifetime, reply.external_port);
}

static void
pmp_handle_reply (AlvPortMap   *self,
                  const guint8 *data,
                  gsize         len)
{
  g_autoptr(GError) error = NULL;
  AlvNatpmpReply reply;

  if (!alv_natpmp_parse_reply (data, len, &reply, &error))
    {
      if (g_error_matches (error, ALV_NATPMP_ERROR, ALV_NATPMP_ERROR_MALFORMED))
        {
          g_debug ("NAT-PMP: ignoring a packet from the router: %s", error->message);
          return;
        }
      /* the router said no: to the mapping, that is final */
      if (reply.opcode == ALV_NATPMP_OP_MAP_TCP && self->phase == PMP_MAPPING)
        {
          g_message ("cannot map the peer port with NAT-PMP: %s", error->message);
          pmp_give_up (self);
        }
      else
        g_debug ("NAT-PMP: %s", error->message);
      return;
    }
  if (!pmp_check_epoch (self, reply.epoch))
    return;
  if (reply.opcode == ALV_NATPMP_OP_EXTERNAL_ADDRESS)
    {
      pmp_got_address (self, &reply);
      return;
    }
  if (!alv_natpmp_check_map_reply (&reply, ALV_NATPMP_OP_MAP_TCP, self->local_port, &error))
    {
      g_debug ("NAT-PMP: %s", error->message);
      return;
    }
  pmp_got_mapping (self, reply.lifetime, reply.external_port);
}

static gboolean
on_pmp_readable (GSocket      *socket,
                 GIOCondition  condition G_GNUC_UNUSED,
                 gpointer      user_data)
{
  AlvPortMap *self = user_data;

  /* bounded: what is queued now, at most a few */
  for (guint i = 0; i < 16; i++)
    {
      g_autoptr(GError) error = NULL;
      guint8 buf[1100];
      /* connected: the kernel passes only the router's datagrams (RFC
       * 6886 3.1, RFC 6887 8.3) */
      gssize n = g_socket_receive (socket, (char *) buf, sizeof buf, NULL, &error);

      if (n < 0)
        {
          if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            break;
          /* an ICMP port unreachable of an earlier send: nobody listens
           * there; the resends go on as for silence */
          g_debug ("NAT-PMP: %s", error->message);
          continue;
        }
      if (self->pcp)
        pcp_handle_reply (self, buf, (gsize) n);
      else
        pmp_handle_reply (self, buf, (gsize) n);
    }
  return G_SOURCE_CONTINUE;
}

static gboolean
pmp_open (AlvPortMap *self,
          const char *router,
          guint16     port,
          GError    **error)
{
  g_autoptr(GSocketAddress) local = NULL;

  self->server = G_INET_SOCKET_ADDRESS (g_inet_socket_address_new_from_string (router, port));
  if (self->server == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   _("“%s” is not an IPv4 address"), router);
      return FALSE;
    }
  self->socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                               G_SOCKET_PROTOCOL_UDP, error);
  if (self->socket == NULL)
    return FALSE;
  g_socket_set_blocking (self->socket, FALSE);
  if (!g_socket_connect (self->socket, G_SOCKET_ADDRESS (self->server), NULL, error))
    return FALSE;
  local = g_socket_get_local_address (self->socket, error);
  if (local == NULL)
    return FALSE;
  memcpy (self->client,
          g_inet_address_to_bytes (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local))),
          4);
  /* unguessable, so that nobody else on the network can answer for the
   * router (RFC 6887 section 11.1) */
  if (gnutls_rnd (GNUTLS_RND_NONCE, self->nonce, sizeof self->nonce) != 0)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                           _("No random numbers for the PCP nonce"));
      return FALSE;
    }
  self->pcp = TRUE;
  self->socket_source = g_socket_create_source (self->socket, G_IO_IN, NULL);
  g_source_set_callback (self->socket_source, G_SOURCE_FUNC (on_pmp_readable), self, NULL);
  g_source_set_name (self->socket_source, "AlvPortMap NAT-PMP");
  g_source_attach (self->socket_source, g_main_context_get_thread_default ());
  return TRUE;
}

/* Stops asking; with @remove, tells the router to drop what it may have
 * granted (once: the mapping lapses anyway). */
static void
pmp_stop (AlvPortMap *self,
          gboolean    remove)
{
  g_clear_handle_id (&self->retry_id, g_source_remove);
  g_clear_handle_id (&self->renew_id, g_source_remove);
  if (remove && self->socket != NULL && (self->pmp_mapped || self->sends > 0))
    {
      guint8 buf[ALV_PCP_MAP_SIZE];
      gsize len = pmp_build_removal (self, buf);

      pmp_send_datagram (self, buf, len);
    }
  self->pmp_mapped = FALSE;
  self->sends = 0;
  self->phase = PMP_IDLE;
}

/* ------------------------------------------------------------------ */
/* UPnP IGD                                                            */

#ifdef HAVE_GUPNP_IGD
static void
on_upnp_mapped (GUPnPSimpleIgd *igd G_GNUC_UNUSED,
                const char     *proto G_GNUC_UNUSED,
                const char     *external_ip,
                const char     *replaces_external_ip G_GNUC_UNUSED,
                guint           external_port,
                const char     *local_ip G_GNUC_UNUSED,
                guint           local_port,
                const char     *description G_GNUC_UNUSED,
                gpointer        user_data)
{
  AlvPortMap *self = user_data;

  if (local_port != self->local_port || external_port == 0 || external_port > G_MAXUINT16)
    return;
  set_mapping (self, ALV_PORT_MAPPING_UPNP, external_ip, (guint16) external_port);
}

static void
on_upnp_error (GUPnPSimpleIgd *igd G_GNUC_UNUSED,
               GError         *error,
               const char     *proto G_GNUC_UNUSED,
               guint           external_port G_GNUC_UNUSED,
               const char     *local_ip G_GNUC_UNUSED,
               guint           local_port G_GNUC_UNUSED,
               const char     *description G_GNUC_UNUSED,
               gpointer        user_data G_GNUC_UNUSED)
{
  /* one router said no; another on the network may still say yes */
  g_message ("cannot map the peer port with UPnP: %s",
             error != NULL ? error->message : "unknown error");
}

static void
on_igd_gone (gpointer  user_data,
             GObject  *where_the_object_was G_GNUC_UNUSED)
{
  AlvPortMap *self = user_data;

  self->igd_releasing = NULL;
  release_step_done (self);
}

/* The address this machine has towards @router (which UPnP's mapping
 * must name): what the kernel would send from.  A UDP connect sends
 * nothing. */
static char *
local_address_towards (const char *router)
{
  g_autoptr(GSocket) s = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                                       G_SOCKET_PROTOCOL_UDP, NULL);
  g_autoptr(GSocketAddress) to = g_inet_socket_address_new_from_string (router, 9);
  g_autoptr(GSocketAddress) local = NULL;

  if (s == NULL || to == NULL || !g_socket_connect (s, to, NULL, NULL))
    return NULL;
  local = g_socket_get_local_address (s, NULL);
  if (local == NULL)
    return NULL;
  return g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local)));
}

static void
upnp_start (AlvPortMap *self,
            const char *router)
{
  self->local_ip = local_address_towards (router);
  if (self->local_ip == NULL)
    {
      g_message ("cannot map the peer port with UPnP: no local address towards %s", router);
      return;
    }
  self->igd = gupnp_simple_igd_new ();
  g_signal_connect (self->igd, "mapped-external-port", G_CALLBACK (on_upnp_mapped), self);
  g_signal_connect (self->igd, "error-mapping-port", G_CALLBACK (on_upnp_error), self);
  /* public port 0: the peer port's own first, and when another host
   * holds that one (ConflictInMappingEntry), GUPnP-IGD tries others; a
   * port named here would be the only one tried */
  gupnp_simple_igd_add_port (self->igd, "TCP", 0, self->local_ip,
                             self->local_port, UPNP_LEASE, MAPPING_DESCRIPTION);
}

/* Drops the IGD object: it removes its mappings on the way out, and
 * lives until the router answered. */
static void
upnp_stop (AlvPortMap *self)
{
  if (self->igd == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->igd, self);
  if (self->mapping == ALV_PORT_MAPPING_UPNP)
    set_mapping (self, ALV_PORT_MAPPING_UPNP, NULL, 0);
  g_object_unref (g_steal_pointer (&self->igd));
}

static void
upnp_release (AlvPortMap *self)
{
  GUPnPSimpleIgd *igd = self->igd;

  if (igd == NULL)
    return;
  self->release_pending++;
  self->igd_releasing = igd;
  g_object_weak_ref (G_OBJECT (igd), on_igd_gone, self);
  upnp_stop (self);
}
#endif

/* ------------------------------------------------------------------ */

static void
alv_port_map_dispose (GObject *object)
{
  AlvPortMap *self = ALV_PORT_MAP (object);

  pmp_stop (self, TRUE);
#ifdef HAVE_GUPNP_IGD
  if (self->igd_releasing != NULL)
    g_object_weak_unref (G_OBJECT (self->igd_releasing), on_igd_gone, self);
  self->igd_releasing = NULL;
  upnp_stop (self);
#endif
  g_clear_handle_id (&self->release_timeout_id, g_source_remove);
  if (self->socket_source != NULL)
    {
      g_source_destroy (self->socket_source);
      g_clear_pointer (&self->socket_source, g_source_unref);
    }
  g_clear_object (&self->socket);
  g_clear_object (&self->server);
  G_OBJECT_CLASS (alv_port_map_parent_class)->dispose (object);
}

static void
alv_port_map_finalize (GObject *object)
{
  AlvPortMap *self = ALV_PORT_MAP (object);

  g_free (self->router);
  g_free (self->external_address);
  g_free (self->refused_address);
  g_free (self->pmp_address);
#ifdef HAVE_GUPNP_IGD
  g_free (self->local_ip);
#endif
  G_OBJECT_CLASS (alv_port_map_parent_class)->finalize (object);
}

static void
alv_port_map_class_init (AlvPortMapClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = alv_port_map_dispose;
  object_class->finalize = alv_port_map_finalize;

  signals[SIGNAL_CHANGED] =
    g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
alv_port_map_init (AlvPortMap *self)
{
  self->router_port = ALV_NATPMP_SERVER_PORT;
}

AlvPortMap *
alv_port_map_new (AlvNatSetting setting,
                  guint16       local_port)
{
  AlvPortMap *self;

  g_return_val_if_fail (local_port != 0, NULL);

  self = g_object_new (ALV_TYPE_PORT_MAP, NULL);
  self->setting = setting;
  self->local_port = local_port;
  return self;
}

void
alv_port_map_set_router (AlvPortMap *map,
                         const char *address,
                         guint16     port)
{
  g_return_if_fail (ALV_IS_PORT_MAP (map));
  g_return_if_fail (!map->started);

  g_free (map->router);
  map->router = g_strdup (address);
  map->router_port = port != 0 ? port : ALV_NATPMP_SERVER_PORT;
}

/* The router to ask: the configured one, or the default gateway. */
static char *
find_router (AlvPortMap *self)
{
  g_autofree char *table = NULL;
  g_autoptr(GError) error = NULL;
  char *router;

  if (self->router != NULL)
    return g_strdup (self->router);
  /* procfs: read from memory, it does not block */
  if (!g_file_get_contents ("/proc/net/route", &table, NULL, &error))
    {
      g_message ("cannot map the peer port: %s", error->message);
      return NULL;
    }
  router = alv_nat_parse_default_gateway (table, &error);
  if (router == NULL)
    g_message ("cannot map the peer port: %s", error->message);
  return router;
}

void
alv_port_map_start (AlvPortMap *map)
{
  g_autofree char *router = NULL;

  g_return_if_fail (ALV_IS_PORT_MAP (map));
  g_return_if_fail (!map->started);

  map->started = TRUE;
  if (map->setting == ALV_NAT_OFF)
    return;
  router = find_router (map);
  if (router == NULL)
    return;
  if (alv_nat_setting_tries (map->setting, ALV_PORT_MAPPING_NATPMP))
    {
      g_autoptr(GError) error = NULL;

      if (pmp_open (map, router, map->router_port, &error))
        {
          g_debug ("NAT-PMP: asking %s:%u to map port %u", router, map->router_port, map->local_port);
          pmp_request (map, PMP_MAPPING, ALV_NAT_MAX_SENDS);
        }
      else
        g_message ("cannot map the peer port with NAT-PMP: %s", error->message);
    }
  if (alv_nat_setting_tries (map->setting, ALV_PORT_MAPPING_UPNP))
    {
#ifdef HAVE_GUPNP_IGD
      upnp_start (map, router);
#else
      if (map->setting == ALV_NAT_UPNP)
        g_message ("cannot map the peer port with UPnP: built without GUPnP-IGD");
#endif
    }
}

AlvPortMapping
alv_port_map_get_mapping (AlvPortMap *map)
{
  g_return_val_if_fail (ALV_IS_PORT_MAP (map), ALV_PORT_MAPPING_NONE);
  return map->mapping;
}

guint16
alv_port_map_get_external_port (AlvPortMap *map)
{
  g_return_val_if_fail (ALV_IS_PORT_MAP (map), 0);
  return map->external_port;
}

char *
alv_port_map_dup_external (AlvPortMap *map)
{
  g_return_val_if_fail (ALV_IS_PORT_MAP (map), NULL);

  if (map->mapping == ALV_PORT_MAPPING_NONE)
    return NULL;
  return g_strdup_printf ("%s:%u", map->external_address != NULL ? map->external_address : "*",
                          map->external_port);
}

static gboolean
on_release_timeout (gpointer user_data)
{
  AlvPortMap *self = user_data;
  g_autoptr(GTask) task = g_steal_pointer (&self->release_task);

  self->release_timeout_id = 0;
  self->release_pending = 0;
  g_debug ("the router did not confirm the removal of the mapping in time");
  g_task_return_boolean (task, TRUE);
  return G_SOURCE_REMOVE;
}

void
alv_port_map_release_async (AlvPortMap          *map,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (ALV_IS_PORT_MAP (map));
  g_return_if_fail (map->release_task == NULL);

  task = g_task_new (map, cancellable, callback, user_data);
  g_task_set_source_tag (task, alv_port_map_release_async);
  map->release_task = g_object_ref (task);
  map->release_pending = 1;    /* until both methods are asked */
  g_clear_handle_id (&map->renew_id, g_source_remove);
  /* no longer announced from here on */
  if (map->mapping != ALV_PORT_MAPPING_NONE)
    {
      map->mapping = ALV_PORT_MAPPING_NONE;
      map->external_port = 0;
      g_clear_pointer (&map->external_address, g_free);
      g_signal_emit (map, signals[SIGNAL_CHANGED], 0);
    }
  if (map->socket != NULL && (map->pmp_mapped || map->phase == PMP_MAPPING))
    {
      map->release_pending++;
      pmp_request (map, PMP_RELEASING, ALV_NAT_RELEASE_SENDS);
    }
  else
    pmp_stop (map, FALSE);
#ifdef HAVE_GUPNP_IGD
  upnp_release (map);
#endif
  /* however the routers behave, the daemon exits soon */
  map->release_timeout_id = g_timeout_add (RELEASE_WAIT_MS, on_release_timeout, map);
  release_step_done (map);
}

gboolean
alv_port_map_release_finish (AlvPortMap   *map,
                             GAsyncResult *result,
                             GError      **error)
{
  g_return_val_if_fail (g_task_is_valid (result, map), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
