/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The swarm simulator's network: nodes with an uplink and a downlink cap
 * (bytes/s) and flows between them.  A flow's downlink share is its
 * destination's downlink divided by the flows entering it; each source
 * hands out its uplink by water-filling under those caps (a flow held
 * back by its downlink leaves its unused share to the others), in one of
 * three disciplines: equal shares (processor sharing), shares by weight
 * (a FIFO line, where who gets the queue is luck), or strict priority,
 * earliest first, equal shares among equals (the peer server's EDF token
 * bucket: sim_net_set_edf, the priority being the upload's due time).
 * Rates are recomputed, at the sources concerned, whenever a
 * flow starts or ends; the downlink side is not water-filled (a flow slow
 * at its source does not give its downlink share to the others): an
 * approximation of max-min fairness that keeps every link within its cap.
 * Time is the simulator's virtual clock in µs; nothing here schedules
 * anything: the owner is told which flows changed rate and reschedules
 * them.
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _SimNet SimNet;

/* @flow (started with @tag) changed rate or just started: its next
 * event moves. */
typedef void (*SimNetRateFunc) (guint    flow,
                                guint    tag,
                                gpointer user_data);

SimNet  *sim_net_new              (guint            n_nodes,
                                   SimNetRateFunc   func,
                                   gpointer         user_data);
void     sim_net_free             (SimNet          *net);

void     sim_net_set_node         (SimNet          *net,
                                   guint            node,
                                   double           up_rate,
                                   double           down_rate);
/* The node's uplink is shared by weight (sim_net_redraw_weights). */
void     sim_net_set_weighted     (SimNet          *net,
                                   guint            node,
                                   gboolean         weighted);
/* The node's uplink goes to its flows earliest due first, equal shares
 * among equals. */
void     sim_net_set_edf          (SimNet          *net,
                                   guint            node,
                                   gboolean         edf);

/* Starts a flow (flow ids are never 0 and are reused once stopped).
 * @weight counts at a weighted source; @tag is handed back to the rate
 * callback. */
guint    sim_net_flow_start       (SimNet          *net,
                                   guint            src,
                                   guint            dst,
                                   double           weight,
                                   guint            tag,
                                   gint64           now);
/* The same with the time the flow is due (its priority at an EDF
 * source; G_MAXINT64: bulk, last). */
guint    sim_net_flow_start_due   (SimNet          *net,
                                   guint            src,
                                   guint            dst,
                                   double           weight,
                                   gint64           due,
                                   guint            tag,
                                   gint64           now);
/* Stops @flow; returns the bytes it carried in all. */
double   sim_net_flow_stop        (SimNet          *net,
                                   guint            flow,
                                   gint64           now);
/* The bytes @flow carried so far (brought up to @now). */
double   sim_net_flow_bytes       (SimNet          *net,
                                   guint            flow,
                                   gint64           now);
/* Sets what @flow carried so far (to round a block boundary exactly). */
void     sim_net_flow_set_bytes   (SimNet          *net,
                                   guint            flow,
                                   double           bytes);
double   sim_net_flow_rate        (SimNet          *net,
                                   guint            flow);

/* Flows leaving @node now. */
guint    sim_net_node_n_up        (SimNet          *net,
                                   guint            node);
/* Draws new weights ~ Exp(1) for the flows leaving @node and recomputes
 * their rates. */
void     sim_net_redraw_weights   (SimNet          *net,
                                   guint            node,
                                   GRand           *rand,
                                   gint64           now);

G_END_DECLS
