/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The swarm simulator's flow-level network (see sim-net.h): per node the
 * flows leaving and entering it, per flow its rate and the bytes it
 * carried up to its last update.  Rates change only when a flow starts or
 * stops (or a FIFO node's weights are redrawn); then every source whose
 * flows' caps changed hands out its uplink again, after bringing its
 * flows' bytes up to date, and the owner is called back for every flow
 * whose rate changed.  Arrays, swap-removal and a free list of flow
 * slots: no allocation per flow once the arrays have grown.
 */
#include "config.h"

#include "sim-net.h"

typedef enum
{
  SIM_NET_SHARE,                /* equal shares */
  SIM_NET_WEIGHTED,             /* shares by weight */
  SIM_NET_PRIORITY,             /* lowest priority value (due) first */
} SimNetDiscipline;

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct
{
  guint src, dst;
  guint tag;
  guint up_pos, down_pos;       /* index in the nodes' flow arrays */
  double weight;
  gint64 priority;
  double rate;                  /* bytes/s; < 0 before the first */
  double bytes;                 /* carried up to t_last */
  gint64 t_last;
  gboolean used;
} Flow;

typedef struct
{
  double up, down;              /* bytes/s */
  SimNetDiscipline discipline;
  guint stamp;                  /* the last recomputation that did it */
  GArray *up_flows;             /* guint flow ids */
  GArray *down_flows;
} Node;

/* One flow in a water-filling round. */
typedef struct
{
  guint id;
  double cap;                   /* its downlink share */
  double weight;
  gint64 priority;
  double rate;
} Share;

struct _SimNet
{
  Node *nodes;
  guint n_nodes;
  GArray *flows;                /* Flow, id - 1 */
  GArray *free_ids;             /* guint */
  GArray *scratch;              /* Share */
  GArray *sources;              /* guint nodes to recompute */
  guint stamp;
  SimNetRateFunc func;
  gpointer user_data;
};

static Flow *
flow_get (SimNet *net,
          guint   id)
{
  g_assert (id > 0 && id <= net->flows->len);
  return &g_array_index (net->flows, Flow, id - 1);
}

SimNet *
sim_net_new (guint          n_nodes,
             SimNetRateFunc func,
             gpointer       user_data)
{
  SimNet *net = g_new0 (SimNet, 1);

  net->n_nodes = n_nodes;
  net->nodes = g_new0 (Node, n_nodes);
  for (guint i = 0; i < n_nodes; i++)
    {
      /* most listeners have a handful of flows */
      net->nodes[i].up_flows = g_array_sized_new (FALSE, FALSE, sizeof (guint), 4);
      net->nodes[i].down_flows = g_array_sized_new (FALSE, FALSE, sizeof (guint), 4);
    }
  net->flows = g_array_new (FALSE, TRUE, sizeof (Flow));
  net->free_ids = g_array_new (FALSE, FALSE, sizeof (guint));
  net->scratch = g_array_new (FALSE, FALSE, sizeof (Share));
  net->sources = g_array_new (FALSE, FALSE, sizeof (guint));
  net->func = func;
  net->user_data = user_data;
  return net;
}

void
sim_net_free (SimNet *net)
{
  if (net == NULL)
    return;
  for (guint i = 0; i < net->n_nodes; i++)
    {
      g_array_unref (net->nodes[i].up_flows);
      g_array_unref (net->nodes[i].down_flows);
    }
  g_free (net->nodes);
  g_array_unref (net->flows);
  g_array_unref (net->free_ids);
  g_array_unref (net->scratch);
  g_array_unref (net->sources);
  g_free (net);
}

void
sim_net_set_node (SimNet *net,
                  guint   node,
                  double  up_rate,
                  double  down_rate)
{
  g_return_if_fail (node < net->n_nodes);
  net->nodes[node].up = MAX (up_rate, 0);
  net->nodes[node].down = MAX (down_rate, 0);
}

void
sim_net_set_weighted (SimNet   *net,
                      guint     node,
                      gboolean  weighted)
{
  g_return_if_fail (node < net->n_nodes);
  net->nodes[node].discipline = weighted ? SIM_NET_WEIGHTED : SIM_NET_SHARE;
}

void
sim_net_set_edf (SimNet   *net,
                 guint     node,
                 gboolean  edf)
{
  g_return_if_fail (node < net->n_nodes);
  net->nodes[node].discipline = edf ? SIM_NET_PRIORITY : SIM_NET_SHARE;
}

static void
flow_advance (Flow   *f,
              gint64  now)
{
  if (now > f->t_last && f->rate > 0)
    f->bytes += f->rate * (double) (now - f->t_last) / G_USEC_PER_SEC;
  f->t_last = MAX (f->t_last, now);
}

static int
compare_cap_per_weight (gconstpointer a,
                        gconstpointer b)
{
  const Share *x = a, *y = b;
  double u = x->cap / x->weight, v = y->cap / y->weight;

  if (u != v)
    return u < v ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);     /* deterministic */
}

static int
compare_priority (gconstpointer a,
                  gconstpointer b)
{
  const Share *x = a, *y = b;

  if (x->priority != y->priority)
    return x->priority < y->priority ? -1 : 1;
  return (x->id > y->id) - (x->id < y->id);
}

/* Water-fills @capacity over @shares[0..n) by weight under their caps;
 * returns what is left when every one is capped. */
static double
fill (Share  *shares,
      guint   n,
      double  capacity)
{
  double weight = 0;

  for (guint k = 0; k < n; k++)
    weight += shares[k].weight;
  qsort (shares, n, sizeof (Share), compare_cap_per_weight);
  for (guint k = 0; k < n; k++)
    {
      double fair = weight > 0 ? shares[k].weight * capacity / weight : 0;

      if (shares[k].cap <= fair)
        {
          shares[k].rate = shares[k].cap;
          capacity -= shares[k].cap;
          weight -= shares[k].weight;
          continue;
        }
      /* everyone from here is held back by the uplink, not its cap */
      for (guint j = k; j < n; j++)
        shares[j].rate = weight > 0 ? shares[j].weight * capacity / weight : 0;
      return 0;
    }
  return MAX (capacity, 0);
}

/* Hands out @node's uplink again; @fresh is a flow that just started,
 * reported whatever its rate. */
static void
node_recompute (SimNet *net,
                guint   node,
                gint64  now,
                guint   fresh)
{
  Node *n = &net->nodes[node];
  GArray *scratch = net->scratch;
  Share *shares;
  guint m = n->up_flows->len;

  if (m == 0)
    return;
  g_array_set_size (scratch, m);
  shares = (Share *) scratch->data;
  for (guint k = 0; k < m; k++)
    {
      guint id = g_array_index (n->up_flows, guint, k);
      Flow *f = flow_get (net, id);
      Node *d = &net->nodes[f->dst];

      flow_advance (f, now);
      shares[k].id = id;
      shares[k].cap = d->down / MAX (d->down_flows->len, 1u);
      shares[k].weight = n->discipline == SIM_NET_WEIGHTED ? f->weight : 1.0;
      shares[k].priority = f->priority;
      shares[k].rate = 0;
    }
  if (n->discipline == SIM_NET_PRIORITY)
    {
      double left = n->up;

      qsort (shares, m, sizeof (Share), compare_priority);
      for (guint k = 0; k < m; )
        {
          guint end = k + 1;

          while (end < m && shares[end].priority == shares[k].priority)
            end++;
          left = fill (shares + k, end - k, left);
          k = end;
        }
    }
  else
    fill (shares, m, n->up);
  for (guint k = 0; k < m; k++)
    {
      Flow *f = flow_get (net, shares[k].id);

      if (shares[k].rate != f->rate || shares[k].id == fresh)
        {
          f->rate = shares[k].rate;
          net->func (shares[k].id, f->tag, net->user_data);
        }
    }
}

/* A flow started or stopped between @src and @dst: @src's uplink and the
 * uplinks of everything entering @dst (whose downlink shares moved) are
 * handed out again. */
static void
recompute_around (SimNet *net,
                  guint   src,
                  guint   dst,
                  gint64  now,
                  guint   fresh)
{
  Node *d = &net->nodes[dst];

  net->stamp++;
  g_array_set_size (net->sources, 0);
  net->nodes[src].stamp = net->stamp;
  g_array_append_val (net->sources, src);
  for (guint k = 0; k < d->down_flows->len; k++)
    {
      guint s = flow_get (net, g_array_index (d->down_flows, guint, k))->src;

      if (net->nodes[s].stamp == net->stamp)
        continue;
      net->nodes[s].stamp = net->stamp;
      g_array_append_val (net->sources, s);
    }
  /* the list is copied out first: a callback never starts or stops a
   * flow, but node_recompute reuses the scratch array */
  for (guint k = 0; k < net->sources->len; k++)
    node_recompute (net, g_array_index (net->sources, guint, k), now, fresh);
}

guint
sim_net_flow_start (SimNet *net,
                    guint   src,
                    guint   dst,
                    double  weight,
                    guint   tag,
                    gint64  now)
{
  return sim_net_flow_start_due (net, src, dst, weight, G_MAXINT64, tag, now);
}

guint
sim_net_flow_start_due (SimNet *net,
                        guint   src,
                        guint   dst,
                        double  weight,
                        gint64  due,
                        guint   tag,
                        gint64  now)
{
  Flow *f;
  guint id;

  g_return_val_if_fail (src < net->n_nodes && dst < net->n_nodes, 0);
  /* bytes so far at the old rates, before any rate moves */
  for (guint k = 0; k < net->nodes[dst].down_flows->len; k++)
    flow_advance (flow_get (net, g_array_index (net->nodes[dst].down_flows, guint, k)), now);
  if (net->free_ids->len > 0)
    {
      id = g_array_index (net->free_ids, guint, net->free_ids->len - 1);
      g_array_set_size (net->free_ids, net->free_ids->len - 1);
    }
  else
    {
      g_array_set_size (net->flows, net->flows->len + 1);
      id = net->flows->len;
    }
  f = flow_get (net, id);
  memset (f, 0, sizeof (*f));
  f->used = TRUE;
  f->src = src;
  f->dst = dst;
  f->tag = tag;
  f->weight = weight > 0 ? weight : 1.0;
  f->priority = due;
  f->t_last = now;
  f->rate = -1;
  f->up_pos = net->nodes[src].up_flows->len;
  g_array_append_val (net->nodes[src].up_flows, id);
  f->down_pos = net->nodes[dst].down_flows->len;
  g_array_append_val (net->nodes[dst].down_flows, id);
  recompute_around (net, src, dst, now, id);
  return id;
}

static void
list_remove (SimNet   *net,
             GArray   *list,
             guint     pos,
             gboolean  up)
{
  guint last = list->len - 1;

  if (pos != last)
    {
      guint moved = g_array_index (list, guint, last);

      g_array_index (list, guint, pos) = moved;
      if (up)
        flow_get (net, moved)->up_pos = pos;
      else
        flow_get (net, moved)->down_pos = pos;
    }
  g_array_set_size (list, last);
}

double
sim_net_flow_stop (SimNet *net,
                   guint   id,
                   gint64  now)
{
  Flow *f = flow_get (net, id);
  guint src = f->src, dst = f->dst;
  double bytes;

  g_return_val_if_fail (f->used, 0);
  flow_advance (f, now);
  bytes = f->bytes;
  for (guint k = 0; k < net->nodes[dst].down_flows->len; k++)
    flow_advance (flow_get (net, g_array_index (net->nodes[dst].down_flows, guint, k)), now);
  list_remove (net, net->nodes[src].up_flows, f->up_pos, TRUE);
  list_remove (net, net->nodes[dst].down_flows, f->down_pos, FALSE);
  f->used = FALSE;
  g_array_append_val (net->free_ids, id);
  recompute_around (net, src, dst, now, 0);
  return bytes;
}

double
sim_net_flow_bytes (SimNet *net,
                    guint   id,
                    gint64  now)
{
  Flow *f = flow_get (net, id);

  flow_advance (f, now);
  return f->bytes;
}

void
sim_net_flow_set_bytes (SimNet *net,
                        guint   id,
                        double  bytes)
{
  flow_get (net, id)->bytes = bytes;
}

double
sim_net_flow_rate (SimNet *net,
                   guint   id)
{
  return MAX (flow_get (net, id)->rate, 0);
}

guint
sim_net_node_n_up (SimNet *net,
                   guint   node)
{
  g_return_val_if_fail (node < net->n_nodes, 0);
  return net->nodes[node].up_flows->len;
}

void
sim_net_redraw_weights (SimNet *net,
                        guint   node,
                        GRand  *rand,
                        gint64  now)
{
  Node *n = &net->nodes[node];

  for (guint k = 0; k < n->up_flows->len; k++)
    {
      Flow *f = flow_get (net, g_array_index (n->up_flows, guint, k));

      flow_advance (f, now);
      /* Exp(1); never exactly 0, so every flow keeps a trickle */
      f->weight = MAX (-log (1.0 - g_rand_double (rand)), 1e-6);
    }
  node_recompute (net, node, now, 0);
}
