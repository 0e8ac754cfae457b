/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The playlist of a station: a channel (title, link, refresh hints) and its
 * items, each a media URL playing in an absolute time slot.  This header
 * holds the model (AlvPlaylist, AlvPlaylistItem), the hardened RSS 1.0
 * parser and the writer; doc/playlist-format.md gives the exact mapping of
 * every field onto RSS 1.0 / RDF/XML and the limits enforced here.
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* --- format constants -------------------------------------------------- */

/**
 * ALV_PLAYLIST_MIME_TYPE:
 *
 * The media type a station serves its playlist (`.rss`) as.
 */
#define ALV_PLAYLIST_MIME_TYPE "application/x-alluvium"

/** ALV_NS_RDF: the RDF syntax namespace (`rdf:`). */
#define ALV_NS_RDF "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
/** ALV_NS_RSS: the RSS 1.0 namespace, the default namespace of a playlist. */
#define ALV_NS_RSS "http://purl.org/rss/1.0/"
/** ALV_NS_DC: Dublin Core elements (`dc:`). */
#define ALV_NS_DC "http://purl.org/dc/elements/1.1/"
/** ALV_NS_SY: the RSS 1.0 syndication module (`sy:`). */
#define ALV_NS_SY "http://purl.org/rss/1.0/modules/syndication/"
/** ALV_NS_EV: the RSS 1.0 event module (`ev:`). */
#define ALV_NS_EV "http://purl.org/rss/1.0/modules/event/"
/** ALV_NS_ENC: the RSS 1.0 enclosure module (`enc:`). */
#define ALV_NS_ENC "http://purl.oclc.org/net/rss_2.0/enc#"

/* --- limits enforced by the parser (and by alv_playlist_validate) ------ */

/**
 * ALV_PLAYLIST_MAX_SIZE:
 *
 * Largest playlist document accepted, in bytes (4 MiB).  Checked before
 * any parsing happens.
 */
#define ALV_PLAYLIST_MAX_SIZE (4 * 1024 * 1024)

/**
 * ALV_PLAYLIST_MAX_ITEMS:
 *
 * Most items a playlist may hold.
 */
#define ALV_PLAYLIST_MAX_ITEMS 10000

/**
 * ALV_PLAYLIST_MAX_DEPTH:
 *
 * Deepest element nesting accepted (the root element is depth 1).  A
 * playlist needs 5 levels (rdf:RDF/channel/items/rdf:Seq/rdf:li).
 */
#define ALV_PLAYLIST_MAX_DEPTH 16

/**
 * ALV_PLAYLIST_MAX_ELEMENTS:
 *
 * Most elements a playlist may hold, counting those the parser skips
 * (unknown extensions).  An item needs about a dozen; the parser keeps
 * no tree of the document, so this bounds the time a parse takes, not
 * its memory.
 */
#define ALV_PLAYLIST_MAX_ELEMENTS (ALV_PLAYLIST_MAX_ITEMS * 32 + 1024)

/**
 * ALV_PLAYLIST_MAX_ATTRIBUTES:
 *
 * Most attributes (namespace declarations included) one start tag may
 * carry.  Checked by a linear scan before libxml2 sees the document,
 * because libxml2 checks attribute uniqueness in quadratic time.
 */
#define ALV_PLAYLIST_MAX_ATTRIBUTES 64

/**
 * ALV_PLAYLIST_MAX_TEXT_LENGTH:
 *
 * Longest text of one field (title, description, creator...) in bytes.
 */
#define ALV_PLAYLIST_MAX_TEXT_LENGTH (16 * 1024)

/**
 * ALV_PLAYLIST_MAX_URL_LENGTH:
 *
 * Longest URL (item URL, channel link and about) in bytes.
 */
#define ALV_PLAYLIST_MAX_URL_LENGTH 8192

/**
 * ALV_PLAYLIST_DEFAULT_REFRESH_INTERVAL:
 *
 * Refresh interval in microseconds when the channel gives no `sy:` hints
 * (one hour).
 */
#define ALV_PLAYLIST_DEFAULT_REFRESH_INTERVAL (G_USEC_PER_SEC * G_GINT64_CONSTANT (3600))

/**
 * ALV_PLAYLIST_MIN_REFRESH_INTERVAL:
 *
 * Shortest refresh interval alv_playlist_get_refresh_interval() returns,
 * whatever the hints say (one minute): a station cannot make its listeners
 * hammer its web server.
 */
#define ALV_PLAYLIST_MIN_REFRESH_INTERVAL (G_USEC_PER_SEC * G_GINT64_CONSTANT (60))

/* --- AlvPlaylistItem --------------------------------------------------- */

#define ALV_TYPE_PLAYLIST_ITEM (alv_playlist_item_get_type ())
G_DECLARE_FINAL_TYPE (AlvPlaylistItem, alv_playlist_item, ALV, PLAYLIST_ITEM, GObject)

AlvPlaylistItem *alv_playlist_item_new             (const char      *url);

const char      *alv_playlist_item_get_url         (AlvPlaylistItem *item);
void             alv_playlist_item_set_url         (AlvPlaylistItem *item,
                                                    const char      *url);
const char      *alv_playlist_item_get_title       (AlvPlaylistItem *item);
void             alv_playlist_item_set_title       (AlvPlaylistItem *item,
                                                    const char      *title);
const char      *alv_playlist_item_get_creator     (AlvPlaylistItem *item);
void             alv_playlist_item_set_creator     (AlvPlaylistItem *item,
                                                    const char      *creator);
const char      *alv_playlist_item_get_media_type  (AlvPlaylistItem *item);
void             alv_playlist_item_set_media_type  (AlvPlaylistItem *item,
                                                    const char      *media_type);
const char      *alv_playlist_item_get_urn         (AlvPlaylistItem *item);
void             alv_playlist_item_set_urn         (AlvPlaylistItem *item,
                                                    const char      *urn);
guint64          alv_playlist_item_get_length      (AlvPlaylistItem *item);
void             alv_playlist_item_set_length      (AlvPlaylistItem *item,
                                                    guint64          length);
GDateTime       *alv_playlist_item_get_start       (AlvPlaylistItem *item);
void             alv_playlist_item_set_start       (AlvPlaylistItem *item,
                                                    GDateTime       *start);
GDateTime       *alv_playlist_item_get_end         (AlvPlaylistItem *item);
void             alv_playlist_item_set_end         (AlvPlaylistItem *item,
                                                    GDateTime       *end);
void             alv_playlist_item_set_slot        (AlvPlaylistItem *item,
                                                    GDateTime       *start,
                                                    GDateTime       *end);
const char      *alv_playlist_item_get_description (AlvPlaylistItem *item);
void             alv_playlist_item_set_description (AlvPlaylistItem *item,
                                                    const char      *description);

GTimeSpan        alv_playlist_item_get_duration    (AlvPlaylistItem *item);
gboolean         alv_playlist_item_contains        (AlvPlaylistItem *item,
                                                    GDateTime       *when);
gboolean         alv_playlist_item_equal           (AlvPlaylistItem *a,
                                                    AlvPlaylistItem *b);

/* --- AlvPlaylist ------------------------------------------------------- */

#define ALV_TYPE_PLAYLIST (alv_playlist_get_type ())
G_DECLARE_FINAL_TYPE (AlvPlaylist, alv_playlist, ALV, PLAYLIST, GObject)

AlvPlaylist     *alv_playlist_new                  (void);

const char      *alv_playlist_get_title            (AlvPlaylist     *pl);
void             alv_playlist_set_title            (AlvPlaylist     *pl,
                                                    const char      *title);
const char      *alv_playlist_get_link             (AlvPlaylist     *pl);
void             alv_playlist_set_link             (AlvPlaylist     *pl,
                                                    const char      *link);
const char      *alv_playlist_get_description      (AlvPlaylist     *pl);
void             alv_playlist_set_description      (AlvPlaylist     *pl,
                                                    const char      *description);
const char      *alv_playlist_get_about            (AlvPlaylist     *pl);
void             alv_playlist_set_about            (AlvPlaylist     *pl,
                                                    const char      *about);
const char      *alv_playlist_get_update_period    (AlvPlaylist     *pl);
void             alv_playlist_set_update_period    (AlvPlaylist     *pl,
                                                    const char      *period);
guint            alv_playlist_get_update_frequency (AlvPlaylist     *pl);
void             alv_playlist_set_update_frequency (AlvPlaylist     *pl,
                                                    guint            frequency);
GDateTime       *alv_playlist_get_update_base      (AlvPlaylist     *pl);
void             alv_playlist_set_update_base      (AlvPlaylist     *pl,
                                                    GDateTime       *base);
gint64           alv_playlist_get_refresh_interval (AlvPlaylist     *pl);

void             alv_playlist_add_item             (AlvPlaylist     *pl,
                                                    AlvPlaylistItem *item);
gboolean         alv_playlist_remove_item          (AlvPlaylist     *pl,
                                                    AlvPlaylistItem *item);
GPtrArray       *alv_playlist_get_items            (AlvPlaylist     *pl);
guint            alv_playlist_get_n_items          (AlvPlaylist     *pl);
AlvPlaylistItem *alv_playlist_get_item             (AlvPlaylist     *pl,
                                                    guint            index);
AlvPlaylistItem *alv_playlist_find_item_at         (AlvPlaylist     *pl,
                                                    GDateTime       *when,
                                                    guint           *index_out);
AlvPlaylistItem *alv_playlist_find_next_item       (AlvPlaylist     *pl,
                                                    GDateTime       *when);
gboolean         alv_playlist_equal                (AlvPlaylist     *a,
                                                    AlvPlaylist     *b);

/* --- parsing, validation, writing -------------------------------------- */

AlvPlaylist     *alv_playlist_parse                (const char      *data,
                                                    gsize            length,
                                                    GError         **error);
AlvPlaylist     *alv_playlist_parse_bytes          (GBytes          *bytes,
                                                    GError         **error);
AlvPlaylist     *alv_playlist_parse_file           (const char      *path,
                                                    GError         **error);
gboolean         alv_playlist_validate             (AlvPlaylist     *pl,
                                                    GError         **error);
char            *alv_playlist_to_string            (AlvPlaylist     *pl,
                                                    gsize           *length_out);
gboolean         alv_playlist_write_file           (AlvPlaylist     *pl,
                                                    const char      *path,
                                                    GError         **error);

G_END_DECLS
