/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Origin leases (see the header).  Per URN: a map of the blocks granted
 * so far (each is pulled from the origin once) and the leases running.
 * A lease ends when its holder reports the run held, asks for its next
 * one (a holder asks only when it has none left), or leaves; a lease
 * that lapses, or whose holder left, gives back the blocks its holder did
 * not report held, so the next asker pulls them.
 */
#define G_LOG_DOMAIN "alluvium-gateway"
#include "config.h"

#include "gateway-leases.h"

#include "alv-block-map.h"

/* how long an asker that was refused keeps the last holder from the
 * next run */
#define ROTATE_US (2 * G_USEC_PER_SEC)
/* rescues of an item: at most a fifth of the blocks its runs were granted,
 * and a few besides (the first listeners' late blocks) */
#define RESCUE_SHARE_DIV 5
#define RESCUE_ALLOWANCE 8
/* rescues past that share (of blocks few listeners hold): at most a
 * tenth of the item */
#define RESCUE_RARE_DIV 10
/* a private run is granted only when no reachable listener asked for a
 * run this long (they pull the item: the unreachable copy from them) */
#define PRIVATE_QUIET_US (5 * G_USEC_PER_SEC)
/* listeners accused per item, whether they were granted a run or not */
#define REPORTED_MAX 1024

typedef struct
{
  char *holder;
  guint first, last;
  gint64 granted;
  gboolean rescue;
  gboolean private_run;         /* its holder is unreachable: named to nobody */
  AlvBlockMap *reported;        /* what the holder last said it holds */
} Lease;

typedef struct
{
  guint first, last;
} Run;

typedef struct
{
  guint n_blocks;
  AlvBlockMap *granted;         /* pulled, or being pulled */
  GPtrArray *running;           /* Lease */
  guint64 blocks_granted;
  guint64 blocks_rescued;       /* granted to rescues within the share */
  guint64 blocks_rescued_rare;  /* granted to rescues past it */
  GArray *view;                 /* GatewayLease, for _running() */
  GHashTable *history;          /* holder → GArray of Run it was granted */
  GHashTable *reports;          /* accused holder → set of reporters */
  GHashTable *distrusted;       /* holders reported by enough listeners */
  char *last_holder;            /* of the last run granted */
  gboolean regular_asked;       /* a reachable listener asked for a run ... */
  gint64 regular_asked_at;      /* ... last then */
  char *waiting;                /* the last asker refused ... */
  gint64 waiting_since;         /* ... and when */
} Item;

struct _GatewayLeases
{
  guint max_running;
  guint run_bytes;
  gint64 ttl;
  GHashTable *items;            /* urn → Item */
  GArray *none;                 /* _running() of an unknown URN */
};

static void
lease_free (Lease *l)
{
  g_free (l->holder);
  g_clear_pointer (&l->reported, alv_block_map_free);
  g_free (l);
}

static void
item_free (Item *item)
{
  alv_block_map_free (item->granted);
  g_ptr_array_unref (item->running);
  g_array_unref (item->view);
  g_hash_table_unref (item->history);
  g_hash_table_unref (item->reports);
  g_hash_table_unref (item->distrusted);
  g_free (item->last_holder);
  g_free (item->waiting);
  g_free (item);
}

GatewayLeases *
gateway_leases_new (guint  max_running,
                    guint  run_bytes,
                    gint64 ttl_us)
{
  GatewayLeases *leases = g_new0 (GatewayLeases, 1);

  leases->max_running = max_running;
  leases->run_bytes = MAX (run_bytes, 1u);
  leases->ttl = MAX (ttl_us, (gint64) G_USEC_PER_SEC);
  leases->items = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) item_free);
  leases->none = g_array_new (FALSE, FALSE, sizeof (GatewayLease));
  return leases;
}

void
gateway_leases_free (GatewayLeases *leases)
{
  if (leases == NULL)
    return;
  g_hash_table_unref (leases->items);
  g_array_unref (leases->none);
  g_free (leases);
}

static Item *
get_item (GatewayLeases *leases,
          const char    *urn,
          guint          n_blocks)
{
  Item *item = g_hash_table_lookup (leases->items, urn);

  if (item != NULL && item->n_blocks == n_blocks)
    return item;
  if (n_blocks == 0)
    return NULL;
  item = g_new0 (Item, 1);
  item->n_blocks = n_blocks;
  item->granted = alv_block_map_new (n_blocks);
  item->running = g_ptr_array_new_with_free_func ((GDestroyNotify) lease_free);
  item->view = g_array_new (FALSE, FALSE, sizeof (GatewayLease));
  item->history = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_array_unref);
  item->reports = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) g_hash_table_unref);
  item->distrusted = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_replace (leases->items, g_strdup (urn), item);
  return item;
}

/* Ends lease @k of @item; unless @trusted, the blocks its holder did not
 * report held are granted again to the next asker. */
static void
end_lease (Item     *item,
           guint     k,
           gboolean  trusted)
{
  Lease *l = item->running->pdata[k];

  if (!trusted && !l->rescue && !l->private_run)
    for (guint i = l->first; i <= l->last; i++)
      if (l->reported == NULL || !alv_block_map_get (l->reported, i))
        alv_block_map_clear (item->granted, i);
  g_ptr_array_remove_index_fast (item->running, k);
}

static void
expire (GatewayLeases *leases,
        Item          *item,
        gint64         now)
{
  for (guint k = item->running->len; k > 0; k--)
    {
      Lease *l = item->running->pdata[k - 1];

      if (now - l->granted > leases->ttl)
        end_lease (item, k - 1, FALSE);
    }
}

static gboolean
covers (const AlvBlockMap *have,
        guint              first,
        guint              last)
{
  for (guint i = first; i <= last; i++)
    if (!alv_block_map_get (have, i))
      return FALSE;
  return TRUE;
}

void
gateway_leases_update (GatewayLeases     *leases,
                       const char        *urn,
                       const char        *holder,
                       const AlvBlockMap *have,
                       gboolean           stopped,
                       gint64             now)
{
  Item *item;

  g_return_if_fail (leases != NULL && urn != NULL && holder != NULL);

  item = g_hash_table_lookup (leases->items, urn);
  if (item == NULL)
    return;
  expire (leases, item, now);
  for (guint k = item->running->len; k > 0; k--)
    {
      Lease *l = item->running->pdata[k - 1];

      if (g_strcmp0 (l->holder, holder) != 0)
        continue;
      if (have != NULL && alv_block_map_get_n_blocks (have) == item->n_blocks)
        {
          g_clear_pointer (&l->reported, alv_block_map_free);
          l->reported = alv_block_map_copy (have);
          if (covers (have, l->first, l->last))
            {
              end_lease (item, k - 1, TRUE);
              continue;
            }
        }
      if (stopped)
        end_lease (item, k - 1, FALSE);
    }
}

/* The run from block @i on (not granted) to @last: at most run_bytes,
 * of blocks nobody was granted. */
static void
fresh_run (GatewayLeases *leases,
           Item          *item,
           guint          block_size,
           guint          i,
           guint          last,
           guint         *first_out,
           guint         *last_out)
{
  guint run = MAX (leases->run_bytes / block_size, 1u);

  *first_out = i;
  while (i + 1 <= last && i + 1 - *first_out < run && !alv_block_map_get (item->granted, i + 1))
    i++;
  *last_out = i;
}

static void
add_lease (Item       *item,
           const char *holder,
           guint       first,
           guint       last,
           gint64      now,
           gboolean    rescue,
           gboolean    private_run)
{
  Lease *l = g_new0 (Lease, 1);

  l->holder = g_strdup (holder);
  l->first = first;
  l->last = last;
  l->granted = now;
  l->rescue = rescue;
  l->private_run = private_run;
  g_ptr_array_add (item->running, l);
}

/* The item a request from @holder for @first..@last (clamped to the
 * item) is about, its expired leases ended; NULL when nothing can be
 * granted: leases off, a bad request, a distrusted holder. */
static Item *
item_for_request (GatewayLeases *leases,
                  const char    *urn,
                  guint          n_blocks,
                  guint          block_size,
                  const char    *holder,
                  guint          first,
                  guint         *last,
                  gint64         now)
{
  Item *item;

  if (leases->max_running == 0 || block_size == 0 || first > *last || first >= n_blocks)
    return NULL;
  *last = MIN (*last, n_blocks - 1);
  item = get_item (leases, urn, n_blocks);
  if (item == NULL)
    return NULL;
  expire (leases, item, now);
  if (g_hash_table_contains (item->distrusted, holder))
    return NULL;
  return item;
}

gboolean
gateway_leases_request_private (GatewayLeases *leases,
                                const char    *urn,
                                guint          n_blocks,
                                guint          block_size,
                                const char    *holder,
                                guint          first,
                                guint          last,
                                gint64         now,
                                guint         *first_out,
                                guint         *last_out)
{
  Item *item;
  guint i;

  g_return_val_if_fail (leases != NULL && urn != NULL && holder != NULL, FALSE);
  g_return_val_if_fail (first_out != NULL && last_out != NULL, FALSE);

  item = item_for_request (leases, urn, n_blocks, block_size, holder, first, &last, now);
  if (item == NULL)
    return FALSE;
  for (guint k = item->running->len; k > 0; k--)
    {
      Lease *mine = item->running->pdata[k - 1];

      if (g_strcmp0 (mine->holder, holder) == 0 && mine->private_run)
        end_lease (item, k - 1, FALSE);
    }
  for (guint k = 0; k < item->running->len; k++)
    if (((Lease *) item->running->pdata[k])->private_run)
      return FALSE;
  if (item->regular_asked && now - item->regular_asked_at < PRIVATE_QUIET_US)
    return FALSE;
  i = alv_block_map_first_missing_after (item->granted, first);
  if (i > last)
    return FALSE;
  fresh_run (leases, item, block_size, i, last, first_out, last_out);
  add_lease (item, holder, *first_out, *last_out, now, FALSE, TRUE);
  return TRUE;
}

gboolean
gateway_leases_request (GatewayLeases *leases,
                        const char    *urn,
                        guint          n_blocks,
                        guint          block_size,
                        const char    *holder,
                        guint          first,
                        guint          last,
                        gboolean       rescue,
                        guint          n_holders,
                        gint64         now,
                        guint         *first_out,
                        guint         *last_out)
{
  Item *item;
  guint running = 0;
  gboolean rescuing = FALSE;
  Lease *l;

  g_return_val_if_fail (leases != NULL && urn != NULL && holder != NULL, FALSE);
  g_return_val_if_fail (first_out != NULL && last_out != NULL, FALSE);

  item = item_for_request (leases, urn, n_blocks, block_size, holder, first, &last, now);
  if (item == NULL)
    return FALSE;
  if (!rescue)
    {
      item->regular_asked = TRUE;
      item->regular_asked_at = now;
    }
  /* a holder asks only once it is done with what it had: what it does
   * not report held (in this very announce) goes back, so a holder that
   * asks and never pulls keeps nothing from the others */
  for (guint k = item->running->len; k > 0; k--)
    {
      Lease *mine = item->running->pdata[k - 1];

      /* a rescue is asked beside a run, not instead of it */
      if (g_strcmp0 (mine->holder, holder) == 0 && mine->rescue == rescue && !mine->private_run)
        end_lease (item, k - 1, FALSE);
    }
  for (guint k = 0; k < item->running->len; k++)
    {
      l = item->running->pdata[k];
      if (l->private_run)
        continue;
      if (l->rescue)
        rescuing = TRUE;
      else
        running++;
    }

  if (rescue)
    {
      /* a block that is late everywhere it is held: a few blocks, one
       * rescue at a time, beside the runs (a run pulls blocks due later;
       * these are due now), and within a share of what the runs pulled:
       * every rescue is one more origin copy of its blocks.  Past the
       * share for a block so few listeners hold that their uplinks
       * cannot pass it on to all who need it in time (the first
       * listener's blocks, pulled while it was alone), within a tenth
       * of the item besides */
      guint n;

      if (rescuing)
        return FALSE;
      *first_out = first;
      *last_out = MIN (last, first + GATEWAY_LEASES_RESCUE_MAX - 1);
      n = *last_out - *first_out + 1;
      if (item->blocks_rescued + n <= item->blocks_granted / RESCUE_SHARE_DIV + RESCUE_ALLOWANCE)
        item->blocks_rescued += n;
      else if (n_holders <= GATEWAY_LEASES_RESCUE_RARE &&
               item->blocks_rescued_rare + n <= item->n_blocks / RESCUE_RARE_DIV)
        item->blocks_rescued_rare += n;
      else
        return FALSE;
    }
  else
    {
      guint i;

      i = alv_block_map_first_missing_after (item->granted, first);
      if (i > last)
        return FALSE;
      /* runs go round: the holder of the last one waits while another
       * listener asked lately, so the fresh blocks start from many
       * listeners, each with uplink to pass its own on */
      if (running >= leases->max_running ||
          (g_strcmp0 (holder, item->last_holder) == 0 && item->waiting != NULL &&
           g_strcmp0 (holder, item->waiting) != 0 && now - item->waiting_since < ROTATE_US))
        {
          if (g_strcmp0 (holder, item->last_holder) != 0)
            {
              g_free (item->waiting);
              item->waiting = g_strdup (holder);
              item->waiting_since = now;
            }
          return FALSE;
        }
      fresh_run (leases, item, block_size, i, last, first_out, last_out);
      for (i = *first_out; i <= *last_out; i++)
        alv_block_map_set (item->granted, i);
      item->blocks_granted += *last_out - *first_out + 1;
      g_free (item->last_holder);
      item->last_holder = g_strdup (holder);
      {
        GArray *runs = g_hash_table_lookup (item->history, holder);
        Run granted = { *first_out, *last_out };

        if (runs == NULL)
          {
            runs = g_array_new (FALSE, FALSE, sizeof (Run));
            g_hash_table_insert (item->history, g_strdup (holder), runs);
          }
        g_array_append_val (runs, granted);
      }
      if (g_strcmp0 (holder, item->waiting) == 0)
        g_clear_pointer (&item->waiting, g_free);
    }
  add_lease (item, holder, *first_out, *last_out, now, rescue, FALSE);
  return TRUE;
}

GArray *
gateway_leases_running (GatewayLeases *leases,
                        const char    *urn,
                        guint          max,
                        gint64         now)
{
  Item *item;

  g_return_val_if_fail (leases != NULL && urn != NULL, NULL);

  item = g_hash_table_lookup (leases->items, urn);
  if (item == NULL)
    return leases->none;
  expire (leases, item, now);
  g_array_set_size (item->view, 0);
  for (guint k = 0; k < item->running->len && item->view->len < max; k++)
    {
      Lease *l = item->running->pdata[k];
      GatewayLease v = { l->holder, l->first, l->last };

      if (l->private_run)
        continue;
      g_array_append_val (item->view, v);
    }
  return item->view;
}

gboolean
gateway_leases_report (GatewayLeases *leases,
                       const char    *urn,
                       const char    *reporter,
                       const char    *accused,
                       gint64         now)
{
  Item *item;
  GHashTable *by;
  GArray *runs;

  g_return_val_if_fail (leases != NULL && urn != NULL && reporter != NULL && accused != NULL, FALSE);

  item = g_hash_table_lookup (leases->items, urn);
  if (item == NULL || g_strcmp0 (reporter, accused) == 0 ||
      g_hash_table_contains (item->distrusted, accused) ||
      g_hash_table_contains (item->distrusted, reporter))
    return FALSE;
  by = g_hash_table_lookup (item->reports, accused);
  if (by == NULL)
    {
      /* bounded: a liar banned before it was granted anything must not
       * be granted a run later (everyone has banned it, so nobody would
       * report it again and its run would be lost to all) */
      if (g_hash_table_size (item->reports) >= REPORTED_MAX)
        return FALSE;
      by = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
      g_hash_table_insert (item->reports, g_strdup (accused), by);
    }
  if (g_hash_table_size (by) < GATEWAY_LEASES_REPORTS)
    g_hash_table_add (by, g_strdup (reporter));
  if (g_hash_table_size (by) < GATEWAY_LEASES_REPORTS)
    return FALSE;

  /* distrusted: what it holds now and every run it was granted go back,
   * whatever it said it holds, and it is granted nothing more */
  g_hash_table_add (item->distrusted, g_strdup (accused));
  expire (leases, item, now);
  for (guint k = item->running->len; k > 0; k--)
    {
      Lease *l = item->running->pdata[k - 1];

      if (g_strcmp0 (l->holder, accused) == 0)
        {
          g_clear_pointer (&l->reported, alv_block_map_free);
          end_lease (item, k - 1, FALSE);
        }
    }
  runs = g_hash_table_lookup (item->history, accused);
  for (guint k = 0; runs != NULL && k < runs->len; k++)
    for (guint i = g_array_index (runs, Run, k).first; i <= g_array_index (runs, Run, k).last; i++)
      alv_block_map_clear (item->granted, i);
  return TRUE;
}

guint64
gateway_leases_get_blocks_granted (GatewayLeases *leases,
                                   const char    *urn)
{
  Item *item = g_hash_table_lookup (leases->items, urn);

  return item != NULL ? item->blocks_granted : 0;
}
