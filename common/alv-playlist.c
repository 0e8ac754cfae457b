/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The playlist model and its writer.  AlvPlaylist holds the channel fields
 * and its items; items are kept sorted by the start of their slot (lazily,
 * so that callers may change an item's slot after adding it), which makes
 * "what plays at instant T" a binary search.  The writer produces RSS 1.0
 * (RDF/XML) exactly as doc/playlist-format.md describes; the parser lives
 * in alv-playlist-parser.c and the checks both share are at the end of
 * this file.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-playlist.h"

#include <string.h>

#include <glib/gi18n-lib.h>

#include "alv-error.h"
#include "alv-playlist-private.h"
#include "alv-time.h"

/* ------------------------------------------------------------------------
 * AlvPlaylistItem
 * ------------------------------------------------------------------------ */

struct _AlvPlaylistItem
{
  GObject    parent_instance;

  char      *url;
  char      *title;
  char      *creator;
  char      *media_type;
  char      *urn;
  char      *description;
  guint64    length;
  GDateTime *start;
  GDateTime *end;
};

G_DEFINE_TYPE (AlvPlaylistItem, alv_playlist_item, G_TYPE_OBJECT)

static void
alv_playlist_item_finalize (GObject *object)
{
  AlvPlaylistItem *item = ALV_PLAYLIST_ITEM (object);

  g_free (item->url);
  g_free (item->title);
  g_free (item->creator);
  g_free (item->media_type);
  g_free (item->urn);
  g_free (item->description);
  g_clear_pointer (&item->start, g_date_time_unref);
  g_clear_pointer (&item->end, g_date_time_unref);

  G_OBJECT_CLASS (alv_playlist_item_parent_class)->finalize (object);
}

static void
alv_playlist_item_class_init (AlvPlaylistItemClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = alv_playlist_item_finalize;
}

static void
alv_playlist_item_init (AlvPlaylistItem *item G_GNUC_UNUSED)
{
}

/* Stores a copy of @value in *@field; the empty string counts as unset,
 * since the document cannot tell an empty element from a missing one. */
static void
set_string (char       **field,
            const char  *value)
{
  if (value != NULL && *value == '\0')
    value = NULL;
  if (*field == value)
    return;
  g_free (*field);
  *field = g_strdup (value);
}

static void
set_date (GDateTime **field,
          GDateTime  *value)
{
  if (value != NULL)
    g_date_time_ref (value);
  g_clear_pointer (field, g_date_time_unref);
  *field = value;
}

static gboolean
dates_equal (GDateTime *a,
             GDateTime *b)
{
  if (a == NULL || b == NULL)
    return a == b;
  return g_date_time_equal (a, b);
}

/**
 * alv_playlist_item_new:
 * @url: the absolute http or https URL of the item's media
 *
 * Creates an item with no slot and no metadata.
 *
 * Returns: (transfer full): a new item
 */
AlvPlaylistItem *
alv_playlist_item_new (const char *url)
{
  AlvPlaylistItem *item;

  g_return_val_if_fail (url != NULL, NULL);

  item = g_object_new (ALV_TYPE_PLAYLIST_ITEM, NULL);
  item->url = g_strdup (url);
  return item;
}

/**
 * alv_playlist_item_get_url:
 * @item: an item
 *
 * Returns: the media URL (also the item's `rdf:about`)
 */
const char *
alv_playlist_item_get_url (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->url;
}

/**
 * alv_playlist_item_set_url:
 * @item: an item
 * @url: the media URL
 *
 * Sets the media URL.  alv_playlist_validate() checks that it is an
 * absolute http or https URL.
 */
void
alv_playlist_item_set_url (AlvPlaylistItem *item,
                           const char      *url)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  g_return_if_fail (url != NULL && *url != '\0');
  set_string (&item->url, url);
}

/**
 * alv_playlist_item_get_title:
 * @item: an item
 *
 * Returns: (nullable): the title
 */
const char *
alv_playlist_item_get_title (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->title;
}

/**
 * alv_playlist_item_set_title:
 * @item: an item
 * @title: (nullable): the title; %NULL or "" unsets it
 *
 * Sets the title (`title`).
 */
void
alv_playlist_item_set_title (AlvPlaylistItem *item,
                             const char      *title)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_string (&item->title, title);
}

/**
 * alv_playlist_item_get_creator:
 * @item: an item
 *
 * Returns: (nullable): the creator (artist)
 */
const char *
alv_playlist_item_get_creator (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->creator;
}

/**
 * alv_playlist_item_set_creator:
 * @item: an item
 * @creator: (nullable): the creator; %NULL or "" unsets it
 *
 * Sets the creator (`dc:creator`).
 */
void
alv_playlist_item_set_creator (AlvPlaylistItem *item,
                               const char      *creator)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_string (&item->creator, creator);
}

/**
 * alv_playlist_item_get_media_type:
 * @item: an item
 *
 * Returns: (nullable): the MIME type of the media, e.g. `audio/mpeg`
 */
const char *
alv_playlist_item_get_media_type (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->media_type;
}

/**
 * alv_playlist_item_set_media_type:
 * @item: an item
 * @media_type: (nullable): a MIME type; %NULL or "" unsets it
 *
 * Sets the MIME type (`dc:format` and `enc:type`).
 */
void
alv_playlist_item_set_media_type (AlvPlaylistItem *item,
                                  const char      *media_type)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_string (&item->media_type, media_type);
}

/**
 * alv_playlist_item_get_urn:
 * @item: an item
 *
 * Returns: (nullable): the content URN, e.g. `urn:tree:sha256:…`
 */
const char *
alv_playlist_item_get_urn (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->urn;
}

/**
 * alv_playlist_item_set_urn:
 * @item: an item
 * @urn: (nullable): the content URN; %NULL or "" unsets it
 *
 * Sets the content URN (`dc:identifier`).
 */
void
alv_playlist_item_set_urn (AlvPlaylistItem *item,
                           const char      *urn)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_string (&item->urn, urn);
}

/**
 * alv_playlist_item_get_length:
 * @item: an item
 *
 * Returns: the length of the media in bytes, or 0 when unknown
 */
guint64
alv_playlist_item_get_length (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), 0);
  return item->length;
}

/**
 * alv_playlist_item_set_length:
 * @item: an item
 * @length: the length in bytes, 0 for unknown
 *
 * Sets the length of the media (`enc:length`).
 */
void
alv_playlist_item_set_length (AlvPlaylistItem *item,
                              guint64          length)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  item->length = length;
}

/**
 * alv_playlist_item_get_start:
 * @item: an item
 *
 * Returns: (nullable) (transfer none): the start of the slot (inclusive)
 */
GDateTime *
alv_playlist_item_get_start (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->start;
}

/**
 * alv_playlist_item_set_start:
 * @item: an item
 * @start: (nullable): the start of the slot
 *
 * Sets the start of the slot (`ev:startdate`).
 */
void
alv_playlist_item_set_start (AlvPlaylistItem *item,
                             GDateTime       *start)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_date (&item->start, start);
}

/**
 * alv_playlist_item_get_end:
 * @item: an item
 *
 * Returns: (nullable) (transfer none): the end of the slot (exclusive)
 */
GDateTime *
alv_playlist_item_get_end (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->end;
}

/**
 * alv_playlist_item_set_end:
 * @item: an item
 * @end: (nullable): the end of the slot
 *
 * Sets the end of the slot (`ev:enddate`), the first instant after it.
 */
void
alv_playlist_item_set_end (AlvPlaylistItem *item,
                           GDateTime       *end)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_date (&item->end, end);
}

/**
 * alv_playlist_item_set_slot:
 * @item: an item
 * @start: (nullable): the start of the slot (inclusive)
 * @end: (nullable): the end of the slot (exclusive)
 *
 * Sets both ends of the slot at once.
 */
void
alv_playlist_item_set_slot (AlvPlaylistItem *item,
                            GDateTime       *start,
                            GDateTime       *end)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_date (&item->start, start);
  set_date (&item->end, end);
}

/**
 * alv_playlist_item_get_description:
 * @item: an item
 *
 * Returns: (nullable): the description
 */
const char *
alv_playlist_item_get_description (AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), NULL);
  return item->description;
}

/**
 * alv_playlist_item_set_description:
 * @item: an item
 * @description: (nullable): plain text; %NULL or "" unsets it
 *
 * Sets the description (`description`).
 */
void
alv_playlist_item_set_description (AlvPlaylistItem *item,
                                   const char      *description)
{
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));
  set_string (&item->description, description);
}

/**
 * alv_playlist_item_get_duration:
 * @item: an item
 *
 * Returns: the length of the slot in microseconds, or 0 when either end
 *   is unset or the end is not after the start
 */
GTimeSpan
alv_playlist_item_get_duration (AlvPlaylistItem *item)
{
  GTimeSpan span;

  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), 0);

  if (item->start == NULL || item->end == NULL)
    return 0;
  span = g_date_time_difference (item->end, item->start);
  return MAX (span, 0);
}

/**
 * alv_playlist_item_contains:
 * @item: an item
 * @when: an instant
 *
 * Returns: %TRUE if the slot of @item has both ends and start <= @when < end
 */
gboolean
alv_playlist_item_contains (AlvPlaylistItem *item,
                            GDateTime       *when)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), FALSE);
  g_return_val_if_fail (when != NULL, FALSE);

  return item->start != NULL && item->end != NULL &&
         g_date_time_compare (item->start, when) <= 0 &&
         g_date_time_compare (when, item->end) < 0;
}

/**
 * alv_playlist_item_equal:
 * @a: an item
 * @b: another item
 *
 * Compares every field; instants compare equal when they are the same
 * instant, whatever their time zone.
 *
 * Returns: %TRUE if @a and @b hold the same values
 */
gboolean
alv_playlist_item_equal (AlvPlaylistItem *a,
                         AlvPlaylistItem *b)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (a), FALSE);
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (b), FALSE);

  return g_strcmp0 (a->url, b->url) == 0 &&
         g_strcmp0 (a->title, b->title) == 0 &&
         g_strcmp0 (a->creator, b->creator) == 0 &&
         g_strcmp0 (a->media_type, b->media_type) == 0 &&
         g_strcmp0 (a->urn, b->urn) == 0 &&
         g_strcmp0 (a->description, b->description) == 0 &&
         a->length == b->length &&
         dates_equal (a->start, b->start) &&
         dates_equal (a->end, b->end);
}

/* ------------------------------------------------------------------------
 * AlvPlaylist
 * ------------------------------------------------------------------------ */

struct _AlvPlaylist
{
  GObject    parent_instance;

  char      *title;
  char      *link;
  char      *description;
  char      *about;
  char      *update_period;
  guint      update_frequency;
  GDateTime *update_base;

  GPtrArray *items;  /* of AlvPlaylistItem, sorted on access */
};

G_DEFINE_TYPE (AlvPlaylist, alv_playlist, G_TYPE_OBJECT)

static void
alv_playlist_finalize (GObject *object)
{
  AlvPlaylist *pl = ALV_PLAYLIST (object);

  g_free (pl->title);
  g_free (pl->link);
  g_free (pl->description);
  g_free (pl->about);
  g_free (pl->update_period);
  g_clear_pointer (&pl->update_base, g_date_time_unref);
  g_ptr_array_unref (pl->items);

  G_OBJECT_CLASS (alv_playlist_parent_class)->finalize (object);
}

static void
alv_playlist_class_init (AlvPlaylistClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = alv_playlist_finalize;
}

static void
alv_playlist_init (AlvPlaylist *pl)
{
  pl->items = g_ptr_array_new_with_free_func (g_object_unref);
}

/* Order of items: by start (unset last), then end (unset last), then URL,
 * so that the order, and hence the writer's output, is deterministic. */
static int
compare_dates (GDateTime *a,
               GDateTime *b)
{
  if (a == NULL || b == NULL)
    return (a == NULL) - (b == NULL);
  return g_date_time_compare (a, b);
}

static int
compare_items (AlvPlaylistItem *a,
               AlvPlaylistItem *b)
{
  int c = compare_dates (a->start, b->start);

  if (c == 0)
    c = compare_dates (a->end, b->end);
  if (c == 0)
    c = g_strcmp0 (a->url, b->url);
  return c;
}

static int
compare_item_ptrs (gconstpointer a,
                   gconstpointer b)
{
  return compare_items (*(AlvPlaylistItem **) a, *(AlvPlaylistItem **) b);
}

/* Items may change their slot after being added, so order is restored on
 * each access; checking costs O(n) and sorting only happens after changes. */
static void
ensure_sorted (AlvPlaylist *pl)
{
  for (guint i = 1; i < pl->items->len; i++)
    {
      if (compare_items (g_ptr_array_index (pl->items, i - 1),
                         g_ptr_array_index (pl->items, i)) > 0)
        {
          g_ptr_array_sort (pl->items, compare_item_ptrs);
          return;
        }
    }
}

/**
 * alv_playlist_new:
 *
 * Creates an empty playlist.
 *
 * Returns: (transfer full): a new playlist
 */
AlvPlaylist *
alv_playlist_new (void)
{
  return g_object_new (ALV_TYPE_PLAYLIST, NULL);
}

/**
 * alv_playlist_get_title:
 * @pl: a playlist
 *
 * Returns: (nullable): the channel's title
 */
const char *
alv_playlist_get_title (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  return pl->title;
}

/**
 * alv_playlist_set_title:
 * @pl: a playlist
 * @title: (nullable): the station's name; %NULL or "" unsets it
 *
 * Sets the channel's title.
 */
void
alv_playlist_set_title (AlvPlaylist *pl,
                        const char  *title)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  set_string (&pl->title, title);
}

/**
 * alv_playlist_get_link:
 * @pl: a playlist
 *
 * Returns: (nullable): the channel's link (the station's web page)
 */
const char *
alv_playlist_get_link (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  return pl->link;
}

/**
 * alv_playlist_set_link:
 * @pl: a playlist
 * @link: (nullable): an http or https URL; %NULL or "" unsets it
 *
 * Sets the channel's link.
 */
void
alv_playlist_set_link (AlvPlaylist *pl,
                       const char  *link)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  set_string (&pl->link, link);
}

/**
 * alv_playlist_get_description:
 * @pl: a playlist
 *
 * Returns: (nullable): the channel's description
 */
const char *
alv_playlist_get_description (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  return pl->description;
}

/**
 * alv_playlist_set_description:
 * @pl: a playlist
 * @description: (nullable): plain text; %NULL or "" unsets it
 *
 * Sets the channel's description.
 */
void
alv_playlist_set_description (AlvPlaylist *pl,
                              const char  *description)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  set_string (&pl->description, description);
}

/**
 * alv_playlist_get_about:
 * @pl: a playlist
 *
 * Returns: (nullable): the channel's `rdf:about`, by convention the URL
 *   the playlist itself is published at
 */
const char *
alv_playlist_get_about (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  return pl->about;
}

/**
 * alv_playlist_set_about:
 * @pl: a playlist
 * @about: (nullable): an http or https URL; %NULL or "" unsets it
 *
 * Sets the channel's `rdf:about`.
 */
void
alv_playlist_set_about (AlvPlaylist *pl,
                        const char  *about)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  set_string (&pl->about, about);
}

/**
 * alv_playlist_get_update_period:
 * @pl: a playlist
 *
 * Returns: (nullable): `sy:updatePeriod`: one of `hourly`, `daily`,
 *   `weekly`, `monthly`, `yearly`, or %NULL when unset
 */
const char *
alv_playlist_get_update_period (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  return pl->update_period;
}

/**
 * alv_playlist_set_update_period:
 * @pl: a playlist
 * @period: (nullable): `hourly`, `daily`, `weekly`, `monthly` or `yearly`
 *
 * Sets `sy:updatePeriod`.  alv_playlist_validate() refuses other values.
 */
void
alv_playlist_set_update_period (AlvPlaylist *pl,
                                const char  *period)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  set_string (&pl->update_period, period);
}

/**
 * alv_playlist_get_update_frequency:
 * @pl: a playlist
 *
 * Returns: `sy:updateFrequency`, or 0 when unset
 */
guint
alv_playlist_get_update_frequency (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), 0);
  return pl->update_frequency;
}

/**
 * alv_playlist_set_update_frequency:
 * @pl: a playlist
 * @frequency: updates per period, 0 to unset
 *
 * Sets `sy:updateFrequency`.
 */
void
alv_playlist_set_update_frequency (AlvPlaylist *pl,
                                   guint        frequency)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  pl->update_frequency = frequency;
}

/**
 * alv_playlist_get_update_base:
 * @pl: a playlist
 *
 * Returns: (nullable) (transfer none): `sy:updateBase`
 */
GDateTime *
alv_playlist_get_update_base (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  return pl->update_base;
}

/**
 * alv_playlist_set_update_base:
 * @pl: a playlist
 * @base: (nullable): the instant the update schedule counts from
 *
 * Sets `sy:updateBase`.
 */
void
alv_playlist_set_update_base (AlvPlaylist *pl,
                              GDateTime   *base)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  set_date (&pl->update_base, base);
}

/**
 * alv_playlist_get_refresh_interval:
 * @pl: a playlist
 *
 * How often a client should fetch the playlist again, from the
 * syndication hints: the period divided by the frequency.  Without any
 * `sy:` hint this is %ALV_PLAYLIST_DEFAULT_REFRESH_INTERVAL (one hour);
 * with only one of them the module's defaults fill in the other (`daily`,
 * 1).  The result is never below %ALV_PLAYLIST_MIN_REFRESH_INTERVAL.
 *
 * Returns: the interval in microseconds
 */
gint64
alv_playlist_get_refresh_interval (AlvPlaylist *pl)
{
  gint64 period;
  gint64 interval;

  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), ALV_PLAYLIST_DEFAULT_REFRESH_INTERVAL);

  if (pl->update_period == NULL && pl->update_frequency == 0)
    return ALV_PLAYLIST_DEFAULT_REFRESH_INTERVAL;

  period = alv_playlist_period_seconds (pl->update_period != NULL ? pl->update_period : "daily");
  if (period <= 0)
    return ALV_PLAYLIST_DEFAULT_REFRESH_INTERVAL;

  interval = period * G_USEC_PER_SEC / MAX (pl->update_frequency, 1);
  return MAX (interval, ALV_PLAYLIST_MIN_REFRESH_INTERVAL);
}

/**
 * alv_playlist_add_item:
 * @pl: a playlist
 * @item: an item (the playlist takes a reference)
 *
 * Adds @item.  The playlist keeps its items sorted by the start of their
 * slots; items without a start sort last.
 */
void
alv_playlist_add_item (AlvPlaylist     *pl,
                       AlvPlaylistItem *item)
{
  g_return_if_fail (ALV_IS_PLAYLIST (pl));
  g_return_if_fail (ALV_IS_PLAYLIST_ITEM (item));

  g_ptr_array_add (pl->items, g_object_ref (item));
}

/**
 * alv_playlist_remove_item:
 * @pl: a playlist
 * @item: an item of @pl
 *
 * Removes @item from @pl.
 *
 * Returns: %TRUE if @item was in @pl
 */
gboolean
alv_playlist_remove_item (AlvPlaylist     *pl,
                          AlvPlaylistItem *item)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), FALSE);
  g_return_val_if_fail (ALV_IS_PLAYLIST_ITEM (item), FALSE);

  return g_ptr_array_remove (pl->items, item);
}

/**
 * alv_playlist_get_items:
 * @pl: a playlist
 *
 * Returns: (transfer none) (element-type AlvPlaylistItem): the items,
 *   sorted by start; valid until @pl changes
 */
GPtrArray *
alv_playlist_get_items (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);

  ensure_sorted (pl);
  return pl->items;
}

/**
 * alv_playlist_get_n_items:
 * @pl: a playlist
 *
 * Returns: the number of items
 */
guint
alv_playlist_get_n_items (AlvPlaylist *pl)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), 0);
  return pl->items->len;
}

/**
 * alv_playlist_get_item:
 * @pl: a playlist
 * @index: a position, below alv_playlist_get_n_items()
 *
 * Returns: (transfer none): the @index-th item in order of start
 */
AlvPlaylistItem *
alv_playlist_get_item (AlvPlaylist *pl,
                       guint        index)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  g_return_val_if_fail (index < pl->items->len, NULL);

  ensure_sorted (pl);
  return g_ptr_array_index (pl->items, index);
}

/* Number of sorted items whose start is at or before @when (the index of
 * the first item starting after it); items without a start sort last. */
static guint
count_started (AlvPlaylist *pl,
               GDateTime   *when)
{
  guint lo = 0, hi = pl->items->len;

  while (lo < hi)
    {
      guint mid = lo + (hi - lo) / 2;
      AlvPlaylistItem *item = g_ptr_array_index (pl->items, mid);

      if (item->start != NULL && g_date_time_compare (item->start, when) <= 0)
        lo = mid + 1;
      else
        hi = mid;
    }
  return lo;
}

/**
 * alv_playlist_find_item_at:
 * @pl: a playlist
 * @when: an instant
 * @index_out: (out) (optional): where to store the item's index
 *
 * Finds the item whose slot contains @when (start <= @when < end).  Slots
 * of a valid playlist do not overlap, so there is at most one.
 *
 * Returns: (nullable) (transfer none): the item, or %NULL when @when falls
 *   in a gap, before the first or after the last slot
 */
AlvPlaylistItem *
alv_playlist_find_item_at (AlvPlaylist *pl,
                           GDateTime   *when,
                           guint       *index_out)
{
  guint n;
  AlvPlaylistItem *item;

  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  g_return_val_if_fail (when != NULL, NULL);

  ensure_sorted (pl);
  n = count_started (pl, when);
  if (n == 0)
    return NULL;

  item = g_ptr_array_index (pl->items, n - 1);
  if (!alv_playlist_item_contains (item, when))
    return NULL;

  if (index_out != NULL)
    *index_out = n - 1;
  return item;
}

/**
 * alv_playlist_find_next_item:
 * @pl: a playlist
 * @when: an instant
 *
 * Finds the first item whose slot starts strictly after @when: the one to
 * prefetch, or to wait for in a gap.
 *
 * Returns: (nullable) (transfer none): the item, or %NULL if none starts
 *   after @when
 */
AlvPlaylistItem *
alv_playlist_find_next_item (AlvPlaylist *pl,
                             GDateTime   *when)
{
  guint n;
  AlvPlaylistItem *item;

  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);
  g_return_val_if_fail (when != NULL, NULL);

  ensure_sorted (pl);
  n = count_started (pl, when);
  if (n >= pl->items->len)
    return NULL;

  item = g_ptr_array_index (pl->items, n);
  return item->start != NULL ? item : NULL;
}

/**
 * alv_playlist_equal:
 * @a: a playlist
 * @b: another playlist
 *
 * Compares the channel fields and the items, in order.
 *
 * Returns: %TRUE if @a and @b hold the same values
 */
gboolean
alv_playlist_equal (AlvPlaylist *a,
                    AlvPlaylist *b)
{
  g_return_val_if_fail (ALV_IS_PLAYLIST (a), FALSE);
  g_return_val_if_fail (ALV_IS_PLAYLIST (b), FALSE);

  if (g_strcmp0 (a->title, b->title) != 0 ||
      g_strcmp0 (a->link, b->link) != 0 ||
      g_strcmp0 (a->description, b->description) != 0 ||
      g_strcmp0 (a->about, b->about) != 0 ||
      g_strcmp0 (a->update_period, b->update_period) != 0 ||
      a->update_frequency != b->update_frequency ||
      !dates_equal (a->update_base, b->update_base) ||
      a->items->len != b->items->len)
    return FALSE;

  ensure_sorted (a);
  ensure_sorted (b);
  for (guint i = 0; i < a->items->len; i++)
    {
      if (!alv_playlist_item_equal (g_ptr_array_index (a->items, i),
                                    g_ptr_array_index (b->items, i)))
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------ */

static gboolean
check_field (const char  *value,
             gsize        max_length,
             const char  *what,
             const char  *item_url,
             GError     **error)
{
  const char *reason;
  g_autofree char *quoted = NULL;

  if (value == NULL)
    return TRUE;
  reason = alv_playlist_check_text (value, max_length);
  if (reason == NULL)
    return TRUE;

  if (item_url == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("channel %s: %s"), what, reason);
      return FALSE;
    }
  quoted = alv_playlist_quote (item_url);
  g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
               _("item “%s”: %s: %s"), quoted, what, reason);
  return FALSE;
}

static gboolean
check_channel_url (const char  *url,
                   const char  *what,
                   GError     **error)
{
  const char *reason;

  if (url == NULL)
    return TRUE;
  if (!check_field (url, ALV_PLAYLIST_MAX_URL_LENGTH, what, NULL, error))
    return FALSE;
  reason = alv_playlist_check_http_url (url);
  if (reason != NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("channel %s: %s"), what, reason);
      return FALSE;
    }
  return TRUE;
}

static gboolean
validate_item (AlvPlaylistItem  *item,
               AlvPlaylistItem  *previous,
               GError          **error)
{
  const char *reason;
  g_autofree char *quoted = NULL;

  if (item->url == NULL)
    {
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_INVALID,
                           _("an item has no URL"));
      return FALSE;
    }
  if (!check_field (item->url, ALV_PLAYLIST_MAX_URL_LENGTH, "rdf:about", item->url, error) ||
      !check_field (item->title, ALV_PLAYLIST_MAX_TEXT_LENGTH, "title", item->url, error) ||
      !check_field (item->creator, ALV_PLAYLIST_MAX_TEXT_LENGTH, "dc:creator", item->url, error) ||
      !check_field (item->media_type, ALV_PLAYLIST_MAX_TEXT_LENGTH, "dc:format", item->url, error) ||
      !check_field (item->urn, ALV_PLAYLIST_MAX_TEXT_LENGTH, "dc:identifier", item->url, error) ||
      !check_field (item->description, ALV_PLAYLIST_MAX_TEXT_LENGTH, "description", item->url, error))
    return FALSE;

  quoted = alv_playlist_quote (item->url);

  reason = alv_playlist_check_http_url (item->url);
  if (reason != NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("item “%s”: %s"), quoted, reason);
      return FALSE;
    }
  if (item->media_type != NULL &&
      (reason = alv_playlist_check_media_type (item->media_type)) != NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("item “%s”: %s"), quoted, reason);
      return FALSE;
    }
  if (item->urn != NULL && (reason = alv_playlist_check_urn (item->urn)) != NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("item “%s”: %s"), quoted, reason);
      return FALSE;
    }
  if (item->start == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("item “%s” has no ev:startdate"), quoted);
      return FALSE;
    }
  if (item->end == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("item “%s” has no ev:enddate"), quoted);
      return FALSE;
    }
  if (g_date_time_compare (item->end, item->start) <= 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("item “%s” ends before it starts"), quoted);
      return FALSE;
    }
  if (previous != NULL && g_date_time_compare (item->start, previous->end) < 0)
    {
      g_autofree char *other = alv_playlist_quote (previous->url);

      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("item “%s” overlaps the slot of item “%s”"), quoted, other);
      return FALSE;
    }
  return TRUE;
}

/**
 * alv_playlist_validate:
 * @pl: a playlist
 * @error: return location for an %ALV_ERROR_INVALID or %ALV_ERROR_LIMIT error
 *
 * Checks that @pl can be written and read back: every item has an
 * absolute http(s) URL and a slot whose end is after its start, no two
 * slots overlap, texts are valid UTF-8 made of characters XML allows and
 * within %ALV_PLAYLIST_MAX_TEXT_LENGTH, MIME types and URNs are well
 * formed, the update period is one the syndication module knows, and
 * there are at most %ALV_PLAYLIST_MAX_ITEMS items.  The parser enforces
 * the same rules, so a playlist that validates survives a round trip.
 *
 * Returns: %TRUE if @pl is valid
 */
gboolean
alv_playlist_validate (AlvPlaylist  *pl,
                       GError      **error)
{
  AlvPlaylistItem *previous = NULL;

  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!check_field (pl->title, ALV_PLAYLIST_MAX_TEXT_LENGTH, "title", NULL, error) ||
      !check_field (pl->description, ALV_PLAYLIST_MAX_TEXT_LENGTH, "description", NULL, error) ||
      !check_channel_url (pl->link, "link", error) ||
      !check_channel_url (pl->about, "rdf:about", error))
    return FALSE;

  if (pl->update_period != NULL && alv_playlist_period_seconds (pl->update_period) <= 0)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                   _("channel sy:updatePeriod: unknown period (expected hourly, daily, weekly, monthly or yearly)"));
      return FALSE;
    }

  if (pl->items->len > ALV_PLAYLIST_MAX_ITEMS)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("the playlist has %u items, more than the limit of %d"),
                   pl->items->len, ALV_PLAYLIST_MAX_ITEMS);
      return FALSE;
    }

  ensure_sorted (pl);
  for (guint i = 0; i < pl->items->len; i++)
    {
      AlvPlaylistItem *item = g_ptr_array_index (pl->items, i);

      if (!validate_item (item, previous, error))
        return FALSE;
      previous = item;
    }
  return TRUE;
}

/* ------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------ */

static gboolean
is_xml_char (gunichar c)
{
  return c == 0x9 || c == 0xA || c == 0xD ||
         (c >= 0x20 && c <= 0xD7FF) ||
         (c >= 0xE000 && c <= 0xFFFD) ||
         (c >= 0x10000 && c <= 0x10FFFF);
}

/* Appends @text escaped for XML character data or (with @attribute) for a
 * double-quoted attribute value.  White space that XML would normalise
 * away (CR everywhere, TAB and LF in attributes) is written as character
 * references so it reads back unchanged.  Bytes that are not UTF-8 and
 * characters XML cannot carry are dropped, so the output is always
 * well-formed; alv_playlist_validate() refuses such text beforehand. */
static void
append_escaped (GString    *s,
                const char *text,
                gboolean    attribute)
{
  const char *p = text;
  const char *end = text + strlen (text);

  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          p++;
          continue;
        }

      switch (c)
        {
        case '&': g_string_append (s, "&amp;"); break;
        case '<': g_string_append (s, "&lt;"); break;
        case '>': g_string_append (s, "&gt;"); break;
        case '"': g_string_append (s, attribute ? "&quot;" : "\""); break;
        case '\r': g_string_append (s, "&#13;"); break;
        case '\t': g_string_append (s, attribute ? "&#9;" : "\t"); break;
        case '\n': g_string_append (s, attribute ? "&#10;" : "\n"); break;
        default:
          if (is_xml_char (c))
            g_string_append_len (s, p, g_utf8_next_char (p) - p);
          break;
        }
      p = g_utf8_next_char (p);
    }
}

/* Appends `<indent><name>text</name>\n`, or nothing when @text is NULL and
 * the element is optional. */
static void
append_element (GString    *s,
                const char *indent,
                const char *name,
                const char *text,
                gboolean    required)
{
  if (text == NULL && !required)
    return;

  g_string_append_printf (s, "%s<%s>", indent, name);
  if (text != NULL)
    append_escaped (s, text, FALSE);
  g_string_append_printf (s, "</%s>\n", name);
}

static void
append_date_element (GString    *s,
                     const char *indent,
                     const char *name,
                     GDateTime  *dt)
{
  g_autofree char *text = NULL;

  if (dt == NULL)
    return;
  text = alv_time_format_w3cdtf (dt);
  append_element (s, indent, name, text, TRUE);
}

/* An item's rdf:about: its media URL, and for an item that has more than
 * one slot in the playlist, its slot too, so that each slot is a resource
 * of its own to RDF and feed readers (link and the enclosure name the
 * media).  An item played once keeps the plain URL: no bytes spent where
 * no two slots could be confused. */
static void
append_item_about (GString         *s,
                   AlvPlaylistItem *item,
                   GHashTable      *repeated)
{
  append_escaped (s, item->url, TRUE);
  if (item->start != NULL && g_hash_table_contains (repeated, item->url))
    {
      g_autofree char *start = alv_time_format_w3cdtf (item->start);

      g_string_append (s, "#slot=");
      append_escaped (s, start, TRUE);
    }
}

static void
append_item (GString         *s,
             AlvPlaylistItem *item,
             GHashTable      *repeated)
{
  g_string_append (s, "  <item rdf:about=\"");
  append_item_about (s, item, repeated);
  g_string_append (s, "\">\n");

  append_element (s, "    ", "title", item->title, TRUE);
  append_element (s, "    ", "link", item->url, TRUE);
  append_element (s, "    ", "description", item->description, FALSE);
  append_element (s, "    ", "dc:creator", item->creator, FALSE);
  append_element (s, "    ", "dc:format", item->media_type, FALSE);
  append_element (s, "    ", "dc:identifier", item->urn, FALSE);
  append_date_element (s, "    ", "ev:startdate", item->start);
  append_date_element (s, "    ", "ev:enddate", item->end);

  g_string_append (s, "    <enc:enclosure rdf:resource=\"");
  append_escaped (s, item->url, TRUE);
  g_string_append_c (s, '"');
  if (item->media_type != NULL)
    {
      g_string_append (s, " enc:type=\"");
      append_escaped (s, item->media_type, TRUE);
      g_string_append_c (s, '"');
    }
  if (item->length != 0)
    g_string_append_printf (s, " enc:length=\"%" G_GUINT64_FORMAT "\"", item->length);
  g_string_append (s, "/>\n");

  g_string_append (s, "  </item>\n");
}

/**
 * alv_playlist_to_string:
 * @pl: a playlist
 * @length_out: (out) (optional): where to store the length of the result
 *
 * Writes @pl as an RSS 1.0 (RDF/XML) document, as doc/playlist-format.md
 * describes, with the items in order of start.  The output is always
 * well-formed XML; call alv_playlist_validate() first to be sure that it
 * is also a valid playlist (characters XML cannot carry are dropped).
 *
 * Returns: (transfer full): the UTF-8 document
 */
char *
alv_playlist_to_string (AlvPlaylist *pl,
                        gsize       *length_out)
{
  g_autoptr(GHashTable) repeated = NULL;
  GString *s;

  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), NULL);

  ensure_sorted (pl);
  s = g_string_sized_new (2048 + 1024 * pl->items->len);
  /* the URLs with more than one slot */
  {
    g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

    repeated = g_hash_table_new (g_str_hash, g_str_equal);
    for (guint i = 0; i < pl->items->len; i++)
      {
        AlvPlaylistItem *item = g_ptr_array_index (pl->items, i);

        if (!g_hash_table_add (seen, item->url))
          g_hash_table_add (repeated, item->url);
      }
  }

  g_string_append (s,
                   "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                   "<rdf:RDF\n"
                   "  xmlns:rdf=\"" ALV_NS_RDF "\"\n"
                   "  xmlns=\"" ALV_NS_RSS "\"\n"
                   "  xmlns:dc=\"" ALV_NS_DC "\"\n"
                   "  xmlns:sy=\"" ALV_NS_SY "\"\n"
                   "  xmlns:ev=\"" ALV_NS_EV "\"\n"
                   "  xmlns:enc=\"" ALV_NS_ENC "\">\n");

  /* RSS 1.0 wants rdf:about, title, link and description on the channel */
  g_string_append (s, "  <channel rdf:about=\"");
  if (pl->about != NULL)
    append_escaped (s, pl->about, TRUE);
  g_string_append (s, "\">\n");
  append_element (s, "    ", "title", pl->title, TRUE);
  append_element (s, "    ", "link", pl->link, TRUE);
  append_element (s, "    ", "description", pl->description, TRUE);
  append_element (s, "    ", "sy:updatePeriod", pl->update_period, FALSE);
  if (pl->update_frequency != 0)
    g_string_append_printf (s, "    <sy:updateFrequency>%u</sy:updateFrequency>\n",
                            pl->update_frequency);
  append_date_element (s, "    ", "sy:updateBase", pl->update_base);

  g_string_append (s, "    <items>\n      <rdf:Seq>\n");
  for (guint i = 0; i < pl->items->len; i++)
    {
      AlvPlaylistItem *item = g_ptr_array_index (pl->items, i);

      g_string_append (s, "        <rdf:li rdf:resource=\"");
      append_item_about (s, item, repeated);
      g_string_append (s, "\"/>\n");
    }
  g_string_append (s, "      </rdf:Seq>\n    </items>\n  </channel>\n");

  for (guint i = 0; i < pl->items->len; i++)
    append_item (s, g_ptr_array_index (pl->items, i), repeated);

  g_string_append (s, "</rdf:RDF>\n");

  if (length_out != NULL)
    *length_out = s->len;
  return g_string_free (s, FALSE);
}

/**
 * alv_playlist_write_file:
 * @pl: a playlist
 * @path: where to write it
 * @error: return location for an error
 *
 * Validates @pl (see alv_playlist_validate()) and writes it to @path
 * atomically: readers see either the old file or the complete new one.
 *
 * Returns: %TRUE on success
 */
gboolean
alv_playlist_write_file (AlvPlaylist  *pl,
                         const char   *path,
                         GError      **error)
{
  g_autofree char *text = NULL;
  gsize length;

  g_return_val_if_fail (ALV_IS_PLAYLIST (pl), FALSE);
  g_return_val_if_fail (path != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (!alv_playlist_validate (pl, error))
    return FALSE;

  text = alv_playlist_to_string (pl, &length);
  if (length > ALV_PLAYLIST_MAX_SIZE)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("the playlist would take %zu bytes, more than the limit of %d"),
                   length, ALV_PLAYLIST_MAX_SIZE);
      return FALSE;
    }
  return g_file_set_contents (path, text, (gssize) length, error);
}

/* ------------------------------------------------------------------------
 * Checks shared with the parser (alv-playlist-private.h)
 * ------------------------------------------------------------------------ */

/**
 * alv_playlist_check_text: (skip)
 * @text: a field's value
 * @max_length: its longest allowed length in bytes
 *
 * Returns: (nullable): %NULL if @text is valid UTF-8 of characters XML
 *   allows and at most @max_length bytes, else the reason
 */
const char *
alv_playlist_check_text (const char *text,
                         gsize       max_length)
{
  gsize len = strlen (text);
  const char *p;

  if (len > max_length)
    return _("text too long");
  if (!g_utf8_validate_len (text, len, NULL))
    return _("text is not valid UTF-8");
  for (p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      if (!is_xml_char (g_utf8_get_char (p)))
        return _("text holds a character XML does not allow");
    }
  return NULL;
}

/**
 * alv_playlist_check_http_url: (skip)
 * @url: a URL
 *
 * Returns: (nullable): %NULL if @url is an absolute http or https URL with
 *   a host and no white space or control characters, else the reason
 */
const char *
alv_playlist_check_http_url (const char *url)
{
  g_autoptr(GUri) uri = NULL;
  const char *scheme;

  if (strlen (url) > ALV_PLAYLIST_MAX_URL_LENGTH)
    return _("URL too long");
  for (const char *p = url; *p != '\0'; p++)
    {
      if ((guchar) *p <= 0x20 || (guchar) *p == 0x7f)
        return _("URL holds white space or control characters");
    }

  uri = g_uri_parse (url, G_URI_FLAGS_NONE, NULL);
  if (uri == NULL)
    return _("not a valid absolute URL");
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0 &&
      g_ascii_strcasecmp (scheme, "https") != 0)
    return _("only http and https URLs are allowed");
  if (g_uri_get_host (uri) == NULL || *g_uri_get_host (uri) == '\0')
    return _("URL has no host");
  return NULL;
}

/* RFC 6838 restricted-name characters, as HTTP tokens take them */
static gboolean
is_token_char (char c)
{
  /* (strchr() would also find the terminating NUL) */
  return c != '\0' && (g_ascii_isalnum (c) || strchr ("!#$&^_.+-", c) != NULL);
}

/**
 * alv_playlist_check_media_type: (skip)
 * @media_type: a MIME type
 *
 * Returns: (nullable): %NULL if @media_type looks like `type/subtype`,
 *   optionally followed by `;` and printable ASCII parameters, else the
 *   reason
 */
const char *
alv_playlist_check_media_type (const char *media_type)
{
  const char *p = media_type;
  gsize n;

  if (strlen (media_type) > 255)
    return _("MIME type too long");
  for (n = 0; is_token_char (*p); p++)
    n++;
  if (n == 0 || *p != '/')
    return _("not a MIME type (type/subtype)");
  p++;
  for (n = 0; is_token_char (*p); p++)
    n++;
  if (n == 0)
    return _("not a MIME type (type/subtype)");
  if (*p == '\0')
    return NULL;
  if (*p != ';')
    return _("not a MIME type (type/subtype)");
  for (; *p != '\0'; p++)
    {
      if ((guchar) *p < 0x20 || (guchar) *p >= 0x7f)
        return _("MIME type parameters must be printable ASCII");
    }
  return NULL;
}

/**
 * alv_playlist_check_urn: (skip)
 * @urn: a URN
 *
 * Returns: (nullable): %NULL if @urn starts with `urn:` and holds only
 *   printable ASCII without spaces, else the reason
 */
const char *
alv_playlist_check_urn (const char *urn)
{
  if (g_ascii_strncasecmp (urn, "urn:", 4) != 0 || urn[4] == '\0')
    return _("dc:identifier is not a URN");
  if (strlen (urn) > 1024)
    return _("URN too long");
  for (const char *p = urn; *p != '\0'; p++)
    {
      if ((guchar) *p <= 0x20 || (guchar) *p >= 0x7f)
        return _("URN holds a character that is not printable ASCII");
    }
  return NULL;
}

/**
 * alv_playlist_period_seconds: (skip)
 * @period: an `sy:updatePeriod` value
 *
 * Returns: the length of @period in seconds (a month counts 30 days, a
 *   year 365), or 0 if it is not one the syndication module defines
 */
gint64
alv_playlist_period_seconds (const char *period)
{
  static const struct { const char *name; gint64 seconds; } periods[] = {
    { "hourly", 3600 },
    { "daily", 86400 },
    { "weekly", 7 * 86400 },
    { "monthly", 30 * 86400 },
    { "yearly", 365 * 86400 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (periods); i++)
    {
      if (g_strcmp0 (period, periods[i].name) == 0)
        return periods[i].seconds;
    }
  return 0;
}

/**
 * alv_playlist_quote: (skip)
 * @text: (nullable): text to show in an error message
 *
 * Returns: (transfer full): @text made valid UTF-8 and shortened to 80
 *   characters, for quoting untrusted values in messages
 */
char *
alv_playlist_quote (const char *text)
{
  g_autofree char *valid = NULL;

  if (text == NULL)
    return g_strdup ("");
  valid = g_utf8_make_valid (text, MIN (strlen (text), 1024));
  if (g_utf8_strlen (valid, -1) <= 80)
    return g_steal_pointer (&valid);
  {
    g_autofree char *head = g_utf8_substring (valid, 0, 79);
    return g_strconcat (head, "…", NULL);
  }
}
