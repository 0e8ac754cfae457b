/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The hardened playlist parser.  Playlists come from the network, so the
 * document is treated as hostile: its size is checked before libxml2 sees
 * it; libxml2 runs without network access and without entity substitution;
 * any DOCTYPE (hence any DTD or entity declaration) stops the parser from
 * its SAX callback before a single declaration is read, so entity
 * expansion attacks never start; element nesting and element counts are
 * limited as the events come; errors go to a structured handler on the
 * parser context, never to stderr or global state.  No tree of the
 * document is built: the SAX events are read straight into the model,
 * every field checked, so what a parse holds is the document, the one
 * item being read and the playlist, whatever the document holds besides
 * (comments, white space, unknown elements).  Each error names the line
 * it comes from.
 */
#define G_LOG_DOMAIN "alluvium-common"

#include "config.h"

#include "alv-playlist.h"

#include <string.h>

#include <inttypes.h>
#include <glib/gi18n-lib.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>

#include "alv-error.h"
#include "alv-playlist-private.h"
#include "alv-time.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC (xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (xmlParserCtxt, xmlFreeParserCtxt)

/* ------------------------------------------------------------------------
 * Stage 0: a linear scan of the raw bytes, before libxml2 sees them
 * ------------------------------------------------------------------------ */

/* Returns the 1-based line of @data[@offset]. */
static guint
line_at (const char *data,
         gsize       offset)
{
  guint line = 1;

  for (gsize i = 0; i < offset; i++)
    if (data[i] == '\n')
      line++;
  return line;
}

/* Where @needle next occurs at or after @p, or %NULL. */
static const char *
find_after (const char *p,
            const char *end,
            const char *needle)
{
  gsize n = strlen (needle);

  for (; (gsize) (end - p) >= n; p++)
    if (memcmp (p, needle, n) == 0)
      return p;
  return NULL;
}

/* Contract: accepts every document libxml2 would accept, except that it
 * refuses with %ALV_ERROR_PARSE any byte sequence that is not UTF-8 (which
 * also catches NUL bytes and UTF-16) and with %ALV_ERROR_LIMIT any start
 * tag with more than %ALV_PLAYLIST_MAX_ATTRIBUTES attributes.  libxml2
 * 2.9 checks attribute and namespace uniqueness with a linear search per
 * attribute, so one 4 MiB start tag would otherwise cost minutes.  Only
 * ASCII delimiters are looked at, which is exact once the bytes are known
 * to be UTF-8.  Anything it does not understand (a DOCTYPE, an unclosed
 * construct) ends the scan and is left to the parser to refuse. */
static gboolean
prescan (const char  *data,
         gsize        length,
         GError     **error)
{
  const char *invalid = NULL;
  const char *p = data;
  const char *end = data + length;

  if (!g_utf8_validate_len (data, length, &invalid))
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("line %u: the document is not valid UTF-8"),
                   line_at (data, invalid - data));
      return FALSE;
    }

  while ((p = memchr (p, '<', end - p)) != NULL)
    {
      const char *tag = p;
      guint n_attributes = 0;
      char quote = 0;

      if (end - p >= 4 && memcmp (p, "<!--", 4) == 0)
        p = find_after (p + 4, end, "-->");
      else if (end - p >= 9 && memcmp (p, "<![CDATA[", 9) == 0)
        p = find_after (p + 9, end, "]]>");
      else if (end - p >= 2 && memcmp (p, "<?", 2) == 0)
        p = find_after (p + 2, end, "?>");
      else if (end - p >= 2 && memcmp (p, "<!", 2) == 0)
        return TRUE;
      else
        {
          for (p++; p < end; p++)
            {
              if (quote != 0)
                {
                  if (*p == quote)
                    quote = 0;
                }
              else if (*p == '"' || *p == '\'')
                quote = *p;
              else if (*p == '=')
                {
                  if (++n_attributes > ALV_PLAYLIST_MAX_ATTRIBUTES)
                    {
                      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                                   _("line %u: a start tag has more than %d attributes"),
                                   line_at (data, tag - data), ALV_PLAYLIST_MAX_ATTRIBUTES);
                      return FALSE;
                    }
                }
              else if (*p == '>')
                break;
              else if (*p == '<')  /* malformed: scan on from here */
                break;
            }
          if (p < end && *p == '<')
            continue;
        }
      if (p == NULL || p >= end)
        return TRUE;
      p++;
    }
  return TRUE;
}

/* ------------------------------------------------------------------------
 * Stage 1: SAX events straight to the model
 *
 * No tree of the document is built: a libxml2 tree costs some 200 bytes a
 * node, so 300 000 comments or elements in a 4 MiB document would cost
 * tens of megabytes that the allocator then keeps.  Events are read as
 * they come instead, keeping only what becomes the playlist: the channel
 * or item open at depth 2 and the text of the property open at depth 3.
 * Comments, processing instructions, white space between elements and
 * elements nobody reads are dropped unseen; the limits on depth, element
 * and item counts are enforced as the events come, and stop the parser.
 *
 * The first error in the content (a bad date, a second title) stops the
 * reading but not the parser: a document that is not well-formed XML is
 * refused as such wherever the fault is, as it was when a tree was built
 * first, so a document gets the same error whichever fault comes first.
 * ------------------------------------------------------------------------ */

/* The properties read at depth 3, in a channel or in an item; every other
 * element there (extensions, items/rdf:Seq) is skipped. */
typedef enum
{
  FIELD_TITLE,
  FIELD_LINK,
  FIELD_DESCRIPTION,
  FIELD_CREATOR,
  FIELD_FORMAT,
  FIELD_IDENTIFIER,
  FIELD_START,
  FIELD_END,
  FIELD_ENCLOSURE,
  FIELD_PERIOD,
  FIELD_FREQUENCY,
  FIELD_BASE,
  N_FIELDS,
  FIELD_NONE = N_FIELDS,
} Field;

typedef struct
{
  const char *ns;
  const char *name;
  const char *label;
  gsize       max_length;     /* 0: the text is not read (enc:enclosure) */
  gboolean    strip;
  gboolean    in_channel;
  gboolean    in_item;
} FieldInfo;

static const FieldInfo field_info[N_FIELDS] = {
  [FIELD_TITLE] = { ALV_NS_RSS, "title", "title", ALV_PLAYLIST_MAX_TEXT_LENGTH, FALSE, TRUE, TRUE },
  [FIELD_LINK] = { ALV_NS_RSS, "link", "link", ALV_PLAYLIST_MAX_URL_LENGTH, TRUE, TRUE, TRUE },
  [FIELD_DESCRIPTION] = { ALV_NS_RSS, "description", "description", ALV_PLAYLIST_MAX_TEXT_LENGTH,
                          FALSE, TRUE, TRUE },
  [FIELD_CREATOR] = { ALV_NS_DC, "creator", "dc:creator", ALV_PLAYLIST_MAX_TEXT_LENGTH,
                      FALSE, FALSE, TRUE },
  [FIELD_FORMAT] = { ALV_NS_DC, "format", "dc:format", ALV_PLAYLIST_MAX_TEXT_LENGTH,
                     TRUE, FALSE, TRUE },
  [FIELD_IDENTIFIER] = { ALV_NS_DC, "identifier", "dc:identifier", ALV_PLAYLIST_MAX_TEXT_LENGTH,
                         TRUE, FALSE, TRUE },
  [FIELD_START] = { ALV_NS_EV, "startdate", "ev:startdate", 64, TRUE, FALSE, TRUE },
  [FIELD_END] = { ALV_NS_EV, "enddate", "ev:enddate", 64, TRUE, FALSE, TRUE },
  [FIELD_ENCLOSURE] = { ALV_NS_ENC, "enclosure", "enc:enclosure", 0, FALSE, FALSE, TRUE },
  [FIELD_PERIOD] = { ALV_NS_SY, "updatePeriod", "sy:updatePeriod", 64, TRUE, TRUE, FALSE },
  [FIELD_FREQUENCY] = { ALV_NS_SY, "updateFrequency", "sy:updateFrequency", 64,
                        TRUE, TRUE, FALSE },
  [FIELD_BASE] = { ALV_NS_SY, "updateBase", "sy:updateBase", 64, TRUE, TRUE, FALSE },
};

/* What a channel or an item said so far. */
typedef struct
{
  gboolean   is_item;
  long       line;
  char      *about;
  gboolean   seen[N_FIELDS];
  char      *text[N_FIELDS];    /* the value of each text field (not identifiers) */
  char      *urn;               /* the first dc:identifier that is a URN */
  GDateTime *start;
  GDateTime *end;
  GDateTime *base;
  guint64    frequency;
  char      *enc_url;
  char      *enc_type;
  char      *enc_length;
} Record;

static void
record_free (Record *r)
{
  g_free (r->about);
  for (guint i = 0; i < N_FIELDS; i++)
    g_free (r->text[i]);
  g_free (r->urn);
  g_clear_pointer (&r->start, g_date_time_unref);
  g_clear_pointer (&r->end, g_date_time_unref);
  g_clear_pointer (&r->base, g_date_time_unref);
  g_free (r->enc_url);
  g_free (r->enc_type);
  g_free (r->enc_length);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Record, record_free)

typedef enum
{
  TEXT_OK,
  TEXT_TOO_LONG,
  TEXT_NOT_TEXT,      /* an element inside a text property */
} TextState;

typedef struct
{
  AlvPlaylistItem *item;
  long             line;
} ParsedItem;

static void
parsed_item_clear (ParsedItem *p)
{
  g_clear_object (&p->item);
}

typedef struct
{
  GError      *error;       /* the first limit or XML error: parsing stopped */
  GError      *invalid;     /* the first error in the content: reading stopped */
  guint        depth;
  guint        n_elements;
  guint        n_items;
  gboolean     seen_root;
  long         root_line;
  gboolean     seen_channel;
  AlvPlaylist *pl;
  GArray      *items;       /* ParsedItem */
  Record      *record;      /* the channel or item open at depth 2, or NULL */
  Field        field;       /* the text property open at depth 3, or FIELD_NONE */
  long         field_line;
  GString     *text;        /* its text so far */
  TextState    text_state;
} ParseState;

static void
parse_state_init (ParseState *state)
{
  memset (state, 0, sizeof *state);
  state->pl = alv_playlist_new ();
  state->items = g_array_new (FALSE, TRUE, sizeof (ParsedItem));
  g_array_set_clear_func (state->items, (GDestroyNotify) parsed_item_clear);
  state->field = FIELD_NONE;
  state->text = g_string_new (NULL);
}

static void
parse_state_clear (ParseState *state)
{
  g_clear_error (&state->error);
  g_clear_error (&state->invalid);
  g_clear_object (&state->pl);
  g_clear_pointer (&state->items, g_array_unref);
  g_clear_pointer (&state->record, record_free);
  g_string_free (state->text, TRUE);
}

static int
ctxt_line (xmlParserCtxtPtr ctxt)
{
  return (ctxt->input != NULL) ? ctxt->input->line : 0;
}

/* Records the first error and stops the parser at once. */
static void
stop_with_error (xmlParserCtxtPtr  ctxt,
                 AlvError          code,
                 const char       *message)
{
  ParseState *state = ctxt->_private;

  if (state->error == NULL)
    state->error = g_error_new (ALV_ERROR, code, _("line %d: %s"),
                                ctxt_line (ctxt), message);
  xmlStopParser (ctxt);
}

/* Records the first error in the content, which ends the reading; the
 * parser goes on to check that the rest is well-formed.  Returns FALSE. */
static gboolean invalid (ParseState  *state,
                         AlvError     code,
                         long         line,
                         const char  *format,
                         ...) G_GNUC_PRINTF (4, 5);

static gboolean
invalid (ParseState  *state,
         AlvError     code,
         long         line,
         const char  *format,
         ...)
{
  va_list args;
  g_autofree char *message = NULL;

  if (state->invalid != NULL)
    return FALSE;
  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  state->invalid = g_error_new (ALV_ERROR, code, _("line %ld: %s"), line, message);
  g_clear_pointer (&state->record, record_free);
  state->field = FIELD_NONE;
  return FALSE;
}

static gboolean
is_name (const xmlChar *uri,
         const xmlChar *localname,
         const char    *ns,
         const char    *name)
{
  return uri != NULL && xmlStrEqual (uri, BAD_CAST ns) && xmlStrEqual (localname, BAD_CAST name);
}

/* The value of attribute @ns:@name among the @n SAX2 @attributes (five
 * pointers each: name, prefix, URI, value, end of value), stripped;
 * %NULL when absent or empty.  Without entity substitution libxml2 hands
 * on "&" as "&#38;" (the tree builder decodes it again): so do we. */
static char *
get_attribute (int             n,
               const xmlChar **attributes,
               const char     *ns,
               const char     *name)
{
  for (int i = 0; i < n; i++)
    {
      const xmlChar **a = attributes + 5 * i;
      g_autoptr(GString) value = NULL;
      const char *p, *end;

      if (!is_name (a[2], a[0], ns, name))
        continue;
      value = g_string_sized_new (a[4] - a[3]);
      for (p = (const char *) a[3], end = (const char *) a[4]; p < end; p++)
        {
          g_string_append_c (value, *p);
          if (*p == '&' && end - p >= 5 && memcmp (p, "&#38;", 5) == 0)
            p += 4;
        }
      g_strstrip (value->str);
      if (value->str[0] == '\0')
        return NULL;
      return g_strdup (value->str);
    }
  return NULL;
}

static gboolean
parse_date (ParseState  *state,
            long         line,
            const char  *label,
            const char  *text,
            GDateTime  **out)
{
  g_autoptr(GError) local_error = NULL;

  *out = alv_time_parse_w3cdtf (text, &local_error);
  if (*out == NULL)
    return invalid (state, ALV_ERROR_PARSE, line, "%s: %s", label, local_error->message);
  return TRUE;
}

/* The root element: rdf:RDF, or the document is not ours. */
static void
start_root (ParseState    *state,
            const xmlChar *localname,
            const xmlChar *uri,
            long           line)
{
  state->seen_root = TRUE;
  state->root_line = line;
  if (is_name (uri, localname, ALV_NS_RDF, "RDF"))
    return;
  if (xmlStrEqual (localname, BAD_CAST "rss") || xmlStrEqual (localname, BAD_CAST "feed"))
    invalid (state, ALV_ERROR_UNSUPPORTED, line,
             _("this is an RSS 2.0 or Atom feed; a playlist is an RSS 1.0 (rdf:RDF) document"));
  else
    invalid (state, ALV_ERROR_INVALID, line,
             _("the root element is not rdf:RDF: not an RSS 1.0 playlist"));
}

/* A child of the root: the channel or an item; anything else is skipped. */
static void
start_record (ParseState     *state,
              const xmlChar  *localname,
              const xmlChar  *uri,
              int             n_attributes,
              const xmlChar **attributes,
              long            line)
{
  gboolean is_item = is_name (uri, localname, ALV_NS_RSS, "item");

  if (!is_item && !is_name (uri, localname, ALV_NS_RSS, "channel"))
    return;
  if (!is_item && state->seen_channel)
    {
      invalid (state, ALV_ERROR_INVALID, line, _("more than one %s"), "channel");
      return;
    }
  state->seen_channel |= !is_item;
  state->record = g_new0 (Record, 1);
  state->record->is_item = is_item;
  state->record->line = line;
  state->record->about = get_attribute (n_attributes, attributes, ALV_NS_RDF, "about");
}

/* A child of the channel or of an item: a property, or skipped. */
static void
start_field (ParseState     *state,
             const xmlChar  *localname,
             const xmlChar  *uri,
             int             n_attributes,
             const xmlChar **attributes,
             long            line)
{
  Record *r = state->record;
  Field f;

  for (f = 0; f < N_FIELDS; f++)
    if ((r->is_item ? field_info[f].in_item : field_info[f].in_channel) &&
        is_name (uri, localname, field_info[f].ns, field_info[f].name))
      break;
  if (f == FIELD_NONE)
    return;

  /* several identifiers may describe an item; ours is the URN */
  if (f != FIELD_IDENTIFIER && r->seen[f])
    {
      invalid (state, ALV_ERROR_INVALID, line, _("more than one %s"), field_info[f].label);
      return;
    }
  r->seen[f] = TRUE;

  if (f == FIELD_ENCLOSURE)
    {
      r->enc_url = get_attribute (n_attributes, attributes, ALV_NS_RDF, "resource");
      if (r->enc_url == NULL)  /* the module's deprecated spelling */
        r->enc_url = get_attribute (n_attributes, attributes, ALV_NS_ENC, "url");
      r->enc_type = get_attribute (n_attributes, attributes, ALV_NS_ENC, "type");
      r->enc_length = get_attribute (n_attributes, attributes, ALV_NS_ENC, "length");
      return;
    }
  state->field = f;
  state->field_line = line;
  state->text_state = TEXT_OK;
  g_string_truncate (state->text, 0);
}

/* Text (or CDATA) at depth @state->depth. */
static void
on_characters (void          *ctx,
               const xmlChar *chars,
               int            len)
{
  xmlParserCtxtPtr ctxt = ctx;
  ParseState *state = ctxt->_private;
  gsize max_length;

  /* a property's text; anything else is white space between elements,
   * or text nobody reads */
  if (state->depth != 3 || state->field == FIELD_NONE || state->text_state != TEXT_OK)
    return;
  max_length = field_info[state->field].max_length;
  if (state->text->len + (gsize) len > max_length)
    {
      state->text_state = TEXT_TOO_LONG;
      g_string_truncate (state->text, 0);
      return;
    }
  g_string_append_len (state->text, (const char *) chars, len);
}

/* The end of the property @state->field: its text is checked and taken. */
static gboolean
end_field (ParseState *state)
{
  Field f = state->field;
  const FieldInfo *info = &field_info[f];
  Record *r = state->record;
  long line = state->field_line;
  g_autofree char *text = NULL;
  const char *reason;
  guint64 frequency;

  state->field = FIELD_NONE;
  if (state->text_state == TEXT_TOO_LONG)
    return invalid (state, ALV_ERROR_LIMIT, line, _("%s is longer than %zu bytes"),
                    info->label, info->max_length);
  if (state->text_state == TEXT_NOT_TEXT)
    return invalid (state, ALV_ERROR_INVALID, line, _("%s must hold text only"), info->label);

  if (info->strip)
    {
      g_strstrip (state->text->str);
      g_string_set_size (state->text, strlen (state->text->str));
    }
  reason = alv_playlist_check_text (state->text->str, info->max_length);
  if (reason != NULL)
    return invalid (state, ALV_ERROR_PARSE, line, "%s: %s", info->label, reason);
  if (state->text->len == 0)
    return TRUE;
  text = g_strndup (state->text->str, state->text->len);

  switch (f)
    {
    case FIELD_LINK:
      if (!r->is_item && (reason = alv_playlist_check_http_url (text)) != NULL)
        return invalid (state, ALV_ERROR_INVALID, line, "link: %s", reason);
      break;
    case FIELD_IDENTIFIER:
      if (r->urn == NULL && g_ascii_strncasecmp (text, "urn:", 4) == 0)
        {
          if ((reason = alv_playlist_check_urn (text)) != NULL)
            return invalid (state, ALV_ERROR_INVALID, line, "%s", reason);
          r->urn = g_steal_pointer (&text);
        }
      return TRUE;
    case FIELD_START:
      if (!parse_date (state, line, info->label, text, &r->start))
        return FALSE;
      break;
    case FIELD_END:
      if (!parse_date (state, line, info->label, text, &r->end))
        return FALSE;
      break;
    case FIELD_BASE:
      if (!parse_date (state, line, info->label, text, &r->base))
        return FALSE;
      break;
    case FIELD_PERIOD:
      if (alv_playlist_period_seconds (text) <= 0)
        return invalid (state, ALV_ERROR_INVALID, line,
                        _("sy:updatePeriod must be hourly, daily, weekly, monthly or yearly"));
      break;
    case FIELD_FREQUENCY:
      if (!g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT, &frequency, NULL))
        return invalid (state, ALV_ERROR_INVALID, line,
                        _("sy:updateFrequency must be a positive integer"));
      r->frequency = frequency;
      break;
    case FIELD_TITLE:
    case FIELD_DESCRIPTION:
    case FIELD_CREATOR:
    case FIELD_FORMAT:
    case FIELD_ENCLOSURE:
    case N_FIELDS:
    default:
      break;
    }
  r->text[f] = g_steal_pointer (&text);
  return TRUE;
}

/* The end of an item: every field is there and agrees with the others. */
static gboolean
end_item (ParseState *state,
          Record     *r)
{
  g_autofree char *quoted = NULL;
  const char *url, *media_type, *reason;
  const char *link = r->text[FIELD_LINK];
  guint64 length = 0;
  AlvPlaylistItem *item;
  ParsedItem parsed;

  /* rdf:about names the slot: the media URL, or (since every slot of a
   * repeated item needs an identifier of its own) the media URL with a
   * fragment; link and the enclosure name the media */
  if (r->about != NULL && strchr (r->about, '#') != NULL)
    *strchr (r->about, '#') = '\0';
  url = r->about != NULL ? r->about : link != NULL ? link : r->enc_url;
  if (url == NULL)
    return invalid (state, ALV_ERROR_INVALID, r->line, _("an item has no URL (rdf:about)"));
  if ((reason = alv_playlist_check_text (url, ALV_PLAYLIST_MAX_URL_LENGTH)) != NULL)
    return invalid (state, ALV_ERROR_INVALID, r->line, "rdf:about: %s", reason);

  quoted = alv_playlist_quote (url);
  if ((reason = alv_playlist_check_http_url (url)) != NULL)
    return invalid (state, ALV_ERROR_INVALID, r->line, _("item “%s”: %s"), quoted, reason);

  /* a feed reader follows link and the enclosure, we follow rdf:about:
   * they must not disagree */
  if (link != NULL && strcmp (link, url) != 0)
    return invalid (state, ALV_ERROR_INVALID, r->line,
                    _("item “%s”: link differs from rdf:about"), quoted);
  if (r->enc_url != NULL && strcmp (r->enc_url, url) != 0)
    return invalid (state, ALV_ERROR_INVALID, r->line,
                    _("item “%s”: the enclosure’s URL differs from rdf:about"), quoted);

  if (r->start == NULL)
    return invalid (state, ALV_ERROR_INVALID, r->line,
                    _("item “%s” has no ev:startdate"), quoted);
  if (r->end == NULL)
    return invalid (state, ALV_ERROR_INVALID, r->line,
                    _("item “%s” has no ev:enddate"), quoted);
  if (g_date_time_compare (r->end, r->start) <= 0)
    return invalid (state, ALV_ERROR_INVALID, r->line,
                    _("item “%s” ends (%s) before or when it starts (%s)"),
                    quoted, r->text[FIELD_END], r->text[FIELD_START]);

  media_type = r->text[FIELD_FORMAT] != NULL ? r->text[FIELD_FORMAT] : r->enc_type;
  if (media_type != NULL && (reason = alv_playlist_check_media_type (media_type)) != NULL)
    return invalid (state, ALV_ERROR_INVALID, r->line, _("item “%s”: %s"), quoted, reason);

  if (r->enc_length != NULL &&
      !g_ascii_string_to_unsigned (r->enc_length, 10, 0, G_MAXUINT64, &length, NULL))
    return invalid (state, ALV_ERROR_INVALID, r->line,
                    _("item “%s”: enc:length is not a number of bytes"), quoted);

  item = alv_playlist_item_new (url);
  alv_playlist_item_set_title (item, r->text[FIELD_TITLE]);
  alv_playlist_item_set_description (item, r->text[FIELD_DESCRIPTION]);
  alv_playlist_item_set_creator (item, r->text[FIELD_CREATOR]);
  alv_playlist_item_set_media_type (item, media_type);
  alv_playlist_item_set_urn (item, r->urn);
  alv_playlist_item_set_length (item, length);
  alv_playlist_item_set_slot (item, r->start, r->end);

  parsed.item = item;
  parsed.line = r->line;
  g_array_append_val (state->items, parsed);
  return TRUE;
}

/* The end of the channel. */
static gboolean
end_channel (ParseState *state,
             Record     *r)
{
  const char *reason;

  if (r->about != NULL)
    {
      if ((reason = alv_playlist_check_text (r->about, ALV_PLAYLIST_MAX_URL_LENGTH)) != NULL ||
          (reason = alv_playlist_check_http_url (r->about)) != NULL)
        return invalid (state, ALV_ERROR_INVALID, r->line, "channel rdf:about: %s", reason);
    }

  alv_playlist_set_about (state->pl, r->about);
  alv_playlist_set_title (state->pl, r->text[FIELD_TITLE]);
  alv_playlist_set_link (state->pl, r->text[FIELD_LINK]);
  alv_playlist_set_description (state->pl, r->text[FIELD_DESCRIPTION]);
  alv_playlist_set_update_period (state->pl, r->text[FIELD_PERIOD]);
  alv_playlist_set_update_frequency (state->pl, (guint) r->frequency);
  alv_playlist_set_update_base (state->pl, r->base);
  return TRUE;
}

static void
on_internal_subset (void          *ctx,
                    const xmlChar *name G_GNUC_UNUSED,
                    const xmlChar *external_id G_GNUC_UNUSED,
                    const xmlChar *system_id G_GNUC_UNUSED)
{
  stop_with_error (ctx, ALV_ERROR_UNSAFE,
                   _("document type declarations (DOCTYPE, DTDs, entities) are refused"));
}

static void
on_external_subset (void          *ctx,
                    const xmlChar *name G_GNUC_UNUSED,
                    const xmlChar *external_id G_GNUC_UNUSED,
                    const xmlChar *system_id G_GNUC_UNUSED)
{
  stop_with_error (ctx, ALV_ERROR_UNSAFE,
                   _("external DTD subsets are refused"));
}

static void
on_entity_decl (void          *ctx,
                const xmlChar *name G_GNUC_UNUSED,
                int            type G_GNUC_UNUSED,
                const xmlChar *public_id G_GNUC_UNUSED,
                const xmlChar *system_id G_GNUC_UNUSED,
                xmlChar       *content G_GNUC_UNUSED)
{
  stop_with_error (ctx, ALV_ERROR_UNSAFE, _("entity declarations are refused"));
}

static xmlParserInputPtr
on_resolve_entity (void          *ctx,
                   const xmlChar *public_id G_GNUC_UNUSED,
                   const xmlChar *system_id G_GNUC_UNUSED)
{
  stop_with_error (ctx, ALV_ERROR_UNSAFE, _("external entities are refused"));
  return NULL;
}

static void
on_start_element (void           *ctx,
                  const xmlChar  *localname,
                  const xmlChar  *prefix G_GNUC_UNUSED,
                  const xmlChar  *uri,
                  int             nb_namespaces G_GNUC_UNUSED,
                  const xmlChar **namespaces G_GNUC_UNUSED,
                  int             nb_attributes,
                  int             nb_defaulted G_GNUC_UNUSED,
                  const xmlChar **attributes)
{
  xmlParserCtxtPtr ctxt = ctx;
  ParseState *state = ctxt->_private;
  long line = ctxt_line (ctxt);

  if (++state->depth > ALV_PLAYLIST_MAX_DEPTH)
    {
      g_autofree char *message =
        g_strdup_printf (_("elements nest deeper than %d levels"), ALV_PLAYLIST_MAX_DEPTH);
      stop_with_error (ctxt, ALV_ERROR_LIMIT, message);
      return;
    }
  if (++state->n_elements > ALV_PLAYLIST_MAX_ELEMENTS)
    {
      g_autofree char *message =
        g_strdup_printf (_("the playlist has more than %d elements"), ALV_PLAYLIST_MAX_ELEMENTS);
      stop_with_error (ctxt, ALV_ERROR_LIMIT, message);
      return;
    }
  /* libxml2 transcodes only when the document declares an encoding other
   * than UTF-8; a playlist is UTF-8 (the bytes were checked already) */
  if (state->depth == 1 && ctxt->input != NULL && ctxt->input->buf != NULL &&
      ctxt->input->buf->encoder != NULL)
    {
      stop_with_error (ctxt, ALV_ERROR_UNSUPPORTED,
                       _("a playlist must be encoded in UTF-8 and declare no other encoding"));
      return;
    }
  if (state->depth == 2 && is_name (uri, localname, ALV_NS_RSS, "item") &&
      ++state->n_items > ALV_PLAYLIST_MAX_ITEMS)
    {
      g_autofree char *message =
        g_strdup_printf (_("more than %d items"), ALV_PLAYLIST_MAX_ITEMS);
      stop_with_error (ctxt, ALV_ERROR_LIMIT, message);
      return;
    }

  if (state->invalid != NULL)
    return;
  if (state->depth == 1)
    start_root (state, localname, uri, line);
  else if (state->depth == 2)
    start_record (state, localname, uri, nb_attributes, attributes, line);
  else if (state->depth == 3 && state->record != NULL)
    start_field (state, localname, uri, nb_attributes, attributes, line);
  else if (state->depth == 4 && state->field != FIELD_NONE && state->text_state == TEXT_OK)
    state->text_state = TEXT_NOT_TEXT;
}

static void
on_end_element (void          *ctx,
                const xmlChar *localname G_GNUC_UNUSED,
                const xmlChar *prefix G_GNUC_UNUSED,
                const xmlChar *uri G_GNUC_UNUSED)
{
  xmlParserCtxtPtr ctxt = ctx;
  ParseState *state = ctxt->_private;

  if (state->invalid == NULL)
    {
      if (state->depth == 3 && state->field != FIELD_NONE)
        end_field (state);
      else if (state->depth == 2 && state->record != NULL)
        {
          g_autoptr(Record) r = g_steal_pointer (&state->record);

          if (r->is_item)
            end_item (state, r);
          else
            end_channel (state, r);
        }
    }
  if (state->depth > 0)
    state->depth--;
}

/* libxml2's own errors (well-formedness, encoding) land here instead of
 * on stderr; only the first error is kept. */
static void
on_structured_error (void        *user_data,
                     xmlErrorPtr  err)
{
  xmlParserCtxtPtr ctxt = user_data;
  ParseState *state = ctxt->_private;
  g_autofree char *message = NULL;

  if (state == NULL || state->error != NULL || err == NULL || err->level < XML_ERR_ERROR)
    return;

  message = g_utf8_make_valid (err->message != NULL ? err->message : "", -1);
  g_strchomp (message);
  state->error = g_error_new (ALV_ERROR, ALV_ERROR_PARSE,
                              _("line %d: malformed XML: %s"), err->line, message);
}

static int
compare_parsed (gconstpointer a,
                gconstpointer b)
{
  const ParsedItem *pa = a, *pb = b;
  int c = g_date_time_compare (alv_playlist_item_get_start (pa->item),
                               alv_playlist_item_get_start (pb->item));

  if (c == 0)
    c = g_date_time_compare (alv_playlist_item_get_end (pa->item),
                             alv_playlist_item_get_end (pb->item));
  if (c == 0)
    c = (pa->line > pb->line) - (pa->line < pb->line);
  return c;
}

/* What is left once the whole document is read: a channel, and slots that
 * do not overlap. */
static AlvPlaylist *
finish (ParseState  *state,
        GError     **error)
{
  GArray *items = state->items;

  if (!state->seen_root)
    {
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_PARSE, _("the document is empty"));
      return NULL;
    }
  if (!state->seen_channel)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID, _("line %ld: %s"), state->root_line,
                   _("the document has no RSS 1.0 channel"));
      return NULL;
    }

  /* slots must not overlap: a station plays one thing at a time */
  g_array_sort (items, compare_parsed);
  for (guint i = 1; i < items->len; i++)
    {
      ParsedItem *prev = &g_array_index (items, ParsedItem, i - 1);
      ParsedItem *cur = &g_array_index (items, ParsedItem, i);

      if (g_date_time_compare (alv_playlist_item_get_start (cur->item),
                               alv_playlist_item_get_end (prev->item)) < 0)
        {
          g_autofree char *a = alv_playlist_quote (alv_playlist_item_get_url (cur->item));
          g_autofree char *b = alv_playlist_quote (alv_playlist_item_get_url (prev->item));

          g_set_error (error, ALV_ERROR, ALV_ERROR_INVALID,
                       _("line %ld: the slot of item “%s” overlaps the slot of item “%s” (line %ld)"),
                       cur->line, a, b, prev->line);
          return NULL;
        }
    }

  for (guint i = 0; i < items->len; i++)
    alv_playlist_add_item (state->pl, g_array_index (items, ParsedItem, i).item);

  return g_steal_pointer (&state->pl);
}

static AlvPlaylist *
parse_xml (const char  *data,
           gsize        length,
           GError     **error)
{
  g_autoptr(xmlParserCtxt) ctxt = NULL;
  g_autoptr(xmlDoc) doc = NULL;
  ParseState state;
  xmlSAXHandlerPtr sax;
  AlvPlaylist *pl = NULL;

  ctxt = xmlCreateMemoryParserCtxt (data, (int) length);
  if (ctxt == NULL)
    {
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_FAILED,
                           _("cannot create an XML parser"));
      return NULL;
    }

  /* no XML_PARSE_NOENT (entity substitution), no DTDLOAD/DTDATTR/DTDVALID,
   * no HUGE: libxml2's own limits stay on as a second line of defence */
  xmlCtxtUseOptions (ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES |
                           XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
  ctxt->replaceEntities = 0;
  ctxt->loadsubset = 0;
  ctxt->validate = 0;
  parse_state_init (&state);
  ctxt->_private = &state;

  /* ctxt->sax belongs to this context alone.  No callback builds a tree:
   * comments and processing instructions have none, and white space goes
   * through on_characters() like any text (with ignorableWhitespace left
   * to the tree builder, libxml2 would guess which white space to keep). */
  sax = ctxt->sax;
  sax->initialized = XML_SAX2_MAGIC;
  sax->internalSubset = on_internal_subset;
  sax->externalSubset = on_external_subset;
  sax->entityDecl = on_entity_decl;
  sax->resolveEntity = on_resolve_entity;
  sax->startElementNs = on_start_element;
  sax->endElementNs = on_end_element;
  sax->characters = on_characters;
  sax->ignorableWhitespace = on_characters;
  sax->cdataBlock = NULL;  /* CDATA then comes as characters */
  sax->comment = NULL;
  sax->processingInstruction = NULL;
  sax->reference = NULL;
  sax->serror = on_structured_error;
  sax->error = NULL;
  sax->warning = NULL;
  sax->fatalError = NULL;

  xmlParseDocument (ctxt);
  /* the empty document the start-document callback made */
  doc = g_steal_pointer (&ctxt->myDoc);

  if (state.error != NULL)
    g_propagate_error (error, g_steal_pointer (&state.error));
  else if (!ctxt->wellFormed)
    g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                 _("line %d: malformed XML"), ctxt_line (ctxt));
  else if (state.invalid != NULL)
    g_propagate_error (error, g_steal_pointer (&state.invalid));
  else
    pl = finish (&state, error);

  ctxt->_private = NULL;
  parse_state_clear (&state);
  return pl;
}

/* ------------------------------------------------------------------------
 * Public entry points
 * ------------------------------------------------------------------------ */

/**
 * alv_playlist_parse:
 * @data: (array length=length): the document
 * @length: its length in bytes
 * @error: return location for an %ALV_ERROR error
 *
 * Parses an RSS 1.0 playlist (see doc/playlist-format.md).  The document
 * is untrusted: it is refused with %ALV_ERROR_LIMIT when larger than
 * %ALV_PLAYLIST_MAX_SIZE (before parsing), nested deeper than
 * %ALV_PLAYLIST_MAX_DEPTH or holding more than %ALV_PLAYLIST_MAX_ITEMS
 * items or %ALV_PLAYLIST_MAX_ELEMENTS elements; with %ALV_ERROR_UNSAFE if it has any DOCTYPE; with
 * %ALV_ERROR_PARSE if it is not well-formed UTF-8 XML or a date is not
 * W3C-DTF; with %ALV_ERROR_UNSUPPORTED for an RSS 2.0 or Atom feed; and
 * with %ALV_ERROR_INVALID for any other root, a missing channel, items
 * without an absolute http(s) URL or slot, slots that end before they
 * start or overlap, or malformed values.  Messages name the line.
 * Unknown elements are ignored.
 *
 * Returns: (transfer full): the playlist, items sorted by start
 */
AlvPlaylist *
alv_playlist_parse (const char  *data,
                    gsize        length,
                    GError     **error)
{
  g_return_val_if_fail (data != NULL || length == 0, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (length > ALV_PLAYLIST_MAX_SIZE)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                   _("the playlist is %zu bytes long, more than the limit of %d"),
                   length, ALV_PLAYLIST_MAX_SIZE);
      return NULL;
    }
  if (length == 0)
    {
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_PARSE, _("the document is empty"));
      return NULL;
    }

  if (!prescan (data, length, error))
    return NULL;
  return parse_xml (data, length, error);
}

/**
 * alv_playlist_parse_bytes:
 * @bytes: the document
 * @error: return location for an %ALV_ERROR error
 *
 * Like alv_playlist_parse(), for a body received as #GBytes.
 *
 * Returns: (transfer full): the playlist
 */
AlvPlaylist *
alv_playlist_parse_bytes (GBytes  *bytes,
                          GError **error)
{
  gsize length;
  const char *data;

  g_return_val_if_fail (bytes != NULL, NULL);

  data = g_bytes_get_data (bytes, &length);
  return alv_playlist_parse (data != NULL ? data : "", length, error);
}

/**
 * alv_playlist_parse_file:
 * @path: a local file
 * @error: return location for an error
 *
 * Reads at most %ALV_PLAYLIST_MAX_SIZE bytes of @path (a larger file is
 * refused without being read whole) and parses them with
 * alv_playlist_parse().  Messages are prefixed with @path.
 *
 * Returns: (transfer full): the playlist
 */
AlvPlaylist *
alv_playlist_parse_file (const char  *path,
                         GError     **error)
{
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileInputStream) stream = NULL;
  g_autoptr(GByteArray) buffer = g_byte_array_new ();
  g_autoptr(GError) local_error = NULL;
  AlvPlaylist *pl;

  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  file = g_file_new_for_path (path);
  stream = g_file_read (file, NULL, error);
  if (stream == NULL)
    return NULL;

  for (;;)
    {
      gsize chunk = 64 * 1024;
      gsize got = 0;
      guint old_len = buffer->len;

      g_byte_array_set_size (buffer, old_len + chunk);
      if (!g_input_stream_read_all (G_INPUT_STREAM (stream), buffer->data + old_len,
                                    chunk, &got, NULL, error))
        return NULL;
      g_byte_array_set_size (buffer, old_len + got);
      if (buffer->len > ALV_PLAYLIST_MAX_SIZE)
        {
          g_set_error (error, ALV_ERROR, ALV_ERROR_LIMIT,
                       _("%s: the playlist is larger than the limit of %d bytes"),
                       path, ALV_PLAYLIST_MAX_SIZE);
          return NULL;
        }
      if (got < chunk)
        break;
    }

  pl = alv_playlist_parse ((const char *) buffer->data, buffer->len, &local_error);
  if (pl == NULL)
    {
      g_propagate_prefixed_error (error, g_steal_pointer (&local_error), "%s: ", path);
      return NULL;
    }
  return pl;
}
