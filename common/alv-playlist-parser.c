/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The hardened playlist parser.  Playlists come from the network, so the
 * document is treated as hostile: its size is checked before libxml2 sees
 * it; libxml2 runs without network access and without entity substitution;
 * any DOCTYPE (hence any DTD or entity declaration) stops the parser from
 * its SAX callback before a single declaration is read, so entity
 * expansion attacks never start; element nesting and element counts are
 * limited as the tree is built; errors go to a structured handler on the
 * parser context, never to stderr or global state.  The tree is then
 * mapped onto the model with every field checked; each error names the
 * line it comes from.
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

/* An item needs about a dozen elements; unknown extensions get room, but a
 * document cannot make us build a tree of millions of nodes. */
#define MAX_ELEMENTS (ALV_PLAYLIST_MAX_ITEMS * 32 + 1024)

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
 * Stage 1: XML to tree, with the SAX callbacks that enforce the limits
 * ------------------------------------------------------------------------ */

typedef struct
{
  GError *error;      /* the first error, if any */
  guint   depth;
  guint   n_elements;
  guint   n_items;
} ParseState;

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
                  const xmlChar  *prefix,
                  const xmlChar  *uri,
                  int             nb_namespaces,
                  const xmlChar **namespaces,
                  int             nb_attributes,
                  int             nb_defaulted,
                  const xmlChar **attributes)
{
  xmlParserCtxtPtr ctxt = ctx;
  ParseState *state = ctxt->_private;

  if (++state->depth > ALV_PLAYLIST_MAX_DEPTH)
    {
      g_autofree char *message =
        g_strdup_printf (_("elements nest deeper than %d levels"), ALV_PLAYLIST_MAX_DEPTH);
      stop_with_error (ctxt, ALV_ERROR_LIMIT, message);
      return;
    }
  if (++state->n_elements > MAX_ELEMENTS)
    {
      g_autofree char *message =
        g_strdup_printf (_("more than %d elements"), MAX_ELEMENTS);
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
  if (state->depth == 2 && uri != NULL &&
      xmlStrEqual (uri, BAD_CAST ALV_NS_RSS) && xmlStrEqual (localname, BAD_CAST "item") &&
      ++state->n_items > ALV_PLAYLIST_MAX_ITEMS)
    {
      g_autofree char *message =
        g_strdup_printf (_("more than %d items"), ALV_PLAYLIST_MAX_ITEMS);
      stop_with_error (ctxt, ALV_ERROR_LIMIT, message);
      return;
    }

  xmlSAX2StartElementNs (ctx, localname, prefix, uri, nb_namespaces, namespaces,
                         nb_attributes, nb_defaulted, attributes);
}

static void
on_end_element (void          *ctx,
                const xmlChar *localname,
                const xmlChar *prefix,
                const xmlChar *uri)
{
  xmlParserCtxtPtr ctxt = ctx;
  ParseState *state = ctxt->_private;

  if (state->depth > 0)
    state->depth--;
  xmlSAX2EndElementNs (ctx, localname, prefix, uri);
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

static xmlDocPtr
parse_xml (const char  *data,
           gsize        length,
           GError     **error)
{
  g_autoptr(xmlParserCtxt) ctxt = NULL;
  g_autoptr(xmlDoc) doc = NULL;
  ParseState state = { NULL, 0, 0, 0 };
  xmlSAXHandlerPtr sax;

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
  ctxt->_private = &state;

  /* ctxt->sax belongs to this context alone */
  sax = ctxt->sax;
  sax->initialized = XML_SAX2_MAGIC;
  sax->internalSubset = on_internal_subset;
  sax->externalSubset = on_external_subset;
  sax->entityDecl = on_entity_decl;
  sax->resolveEntity = on_resolve_entity;
  sax->startElementNs = on_start_element;
  sax->endElementNs = on_end_element;
  sax->serror = on_structured_error;
  sax->error = NULL;
  sax->warning = NULL;
  sax->fatalError = NULL;

  xmlParseDocument (ctxt);

  doc = g_steal_pointer (&ctxt->myDoc);
  if (state.error != NULL)
    {
      g_propagate_error (error, state.error);
      return NULL;
    }
  if (!ctxt->wellFormed || doc == NULL)
    {
      g_set_error (error, ALV_ERROR, ALV_ERROR_PARSE,
                   _("line %d: malformed XML"), ctxt_line (ctxt));
      return NULL;
    }
  return g_steal_pointer (&doc);
}

/* ------------------------------------------------------------------------
 * Stage 2: tree to model
 * ------------------------------------------------------------------------ */

static long
node_line (xmlNodePtr node)
{
  return xmlGetLineNo (node);
}

static gboolean
is_element (xmlNodePtr  node,
            const char *ns,
            const char *name)
{
  return node->type == XML_ELEMENT_NODE &&
         node->ns != NULL && node->ns->href != NULL &&
         xmlStrEqual (node->ns->href, BAD_CAST ns) &&
         xmlStrEqual (node->name, BAD_CAST name);
}

static gboolean node_error (GError     **error,
                            AlvError     code,
                            xmlNodePtr   node,
                            const char  *format,
                            ...) G_GNUC_PRINTF (4, 5);

static gboolean
node_error (GError     **error,
            AlvError     code,
            xmlNodePtr   node,
            const char  *format,
            ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  g_set_error (error, ALV_ERROR, code, _("line %ld: %s"), node_line (node), message);
  return FALSE;
}

/* The text of a property element: its text children concatenated.  A
 * literal property with child elements is not RDF we understand. */
static gboolean
get_text (xmlNodePtr    node,
          const char   *label,
          gsize         max_length,
          gboolean      strip,
          char        **text_out,
          GError      **error)
{
  g_autoptr(GString) s = g_string_new (NULL);
  const char *reason;

  for (xmlNodePtr child = node->children; child != NULL; child = child->next)
    {
      switch (child->type)
        {
        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
          if (child->content != NULL)
            g_string_append (s, (const char *) child->content);
          if (s->len > max_length)
            return node_error (error, ALV_ERROR_LIMIT, node,
                               _("%s is longer than %zu bytes"),
                               label, max_length);
          break;
        case XML_COMMENT_NODE:
        case XML_PI_NODE:
          break;
        default:
          return node_error (error, ALV_ERROR_INVALID, node,
                             _("%s must hold text only"), label);
        }
    }

  if (strip)
    {
      g_strstrip (s->str);
      g_string_set_size (s, strlen (s->str));
    }

  reason = alv_playlist_check_text (s->str, max_length);
  if (reason != NULL)
    return node_error (error, ALV_ERROR_PARSE, node, "%s: %s", label, reason);

  *text_out = (s->len > 0) ? g_string_free (g_steal_pointer (&s), FALSE) : NULL;
  return TRUE;
}

/* Reads the text of @node into *@field, refusing a second occurrence. */
static gboolean
take_text (xmlNodePtr    node,
           const char   *label,
           gsize         max_length,
           gboolean      strip,
           gboolean     *seen,
           char        **field,
           GError      **error)
{
  if (*seen)
    return node_error (error, ALV_ERROR_INVALID, node, _("more than one %s"), label);
  *seen = TRUE;
  return get_text (node, label, max_length, strip, field, error);
}

static char *
get_attribute (xmlNodePtr  node,
               const char *ns,
               const char *name)
{
  xmlChar *value = xmlGetNsProp (node, BAD_CAST name, BAD_CAST ns);
  char *copy;

  if (value == NULL)
    return NULL;
  copy = g_strstrip (g_strdup ((const char *) value));
  xmlFree (value);
  if (*copy == '\0')
    g_clear_pointer (&copy, g_free);
  return copy;
}

static gboolean
parse_date (xmlNodePtr   node,
            const char  *label,
            const char  *text,
            GDateTime  **out,
            GError     **error)
{
  g_autoptr(GError) local_error = NULL;

  *out = alv_time_parse_w3cdtf (text, &local_error);
  if (*out == NULL)
    return node_error (error, ALV_ERROR_PARSE, node, "%s: %s", label, local_error->message);
  return TRUE;
}

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

static gboolean
parse_item (xmlNodePtr   node,
            ParsedItem  *out,
            GError     **error)
{
  g_autofree char *about = get_attribute (node, ALV_NS_RDF, "about");
  g_autofree char *title = NULL, *link = NULL, *description = NULL;
  g_autofree char *creator = NULL, *format = NULL, *urn = NULL;
  g_autofree char *start_text = NULL, *end_text = NULL;
  g_autofree char *enc_url = NULL, *enc_type = NULL, *enc_length = NULL;
  g_autofree char *quoted = NULL;
  g_autoptr(GDateTime) start = NULL;
  g_autoptr(GDateTime) end = NULL;
  gboolean seen_title = FALSE, seen_link = FALSE, seen_description = FALSE;
  gboolean seen_creator = FALSE, seen_format = FALSE;
  gboolean seen_start = FALSE, seen_end = FALSE, seen_enclosure = FALSE;
  const char *url, *media_type, *reason;
  guint64 length = 0;
  AlvPlaylistItem *item;

  for (xmlNodePtr child = node->children; child != NULL; child = child->next)
    {
      gboolean ok = TRUE;

      if (child->type != XML_ELEMENT_NODE)
        continue;

      if (is_element (child, ALV_NS_RSS, "title"))
        ok = take_text (child, "title", ALV_PLAYLIST_MAX_TEXT_LENGTH, FALSE,
                        &seen_title, &title, error);
      else if (is_element (child, ALV_NS_RSS, "link"))
        ok = take_text (child, "link", ALV_PLAYLIST_MAX_URL_LENGTH, TRUE,
                        &seen_link, &link, error);
      else if (is_element (child, ALV_NS_RSS, "description"))
        ok = take_text (child, "description", ALV_PLAYLIST_MAX_TEXT_LENGTH, FALSE,
                        &seen_description, &description, error);
      else if (is_element (child, ALV_NS_DC, "creator"))
        ok = take_text (child, "dc:creator", ALV_PLAYLIST_MAX_TEXT_LENGTH, FALSE,
                        &seen_creator, &creator, error);
      else if (is_element (child, ALV_NS_DC, "format"))
        ok = take_text (child, "dc:format", ALV_PLAYLIST_MAX_TEXT_LENGTH, TRUE,
                        &seen_format, &format, error);
      else if (is_element (child, ALV_NS_DC, "identifier"))
        {
          /* several identifiers may describe an item; ours is the URN */
          g_autofree char *id = NULL;

          ok = get_text (child, "dc:identifier", ALV_PLAYLIST_MAX_TEXT_LENGTH, TRUE, &id, error);
          if (ok && id != NULL && urn == NULL && g_ascii_strncasecmp (id, "urn:", 4) == 0)
            {
              if ((reason = alv_playlist_check_urn (id)) != NULL)
                return node_error (error, ALV_ERROR_INVALID, child, "%s", reason);
              urn = g_steal_pointer (&id);
            }
        }
      else if (is_element (child, ALV_NS_EV, "startdate"))
        ok = take_text (child, "ev:startdate", 64, TRUE, &seen_start, &start_text, error) &&
             (start_text == NULL || parse_date (child, "ev:startdate", start_text, &start, error));
      else if (is_element (child, ALV_NS_EV, "enddate"))
        ok = take_text (child, "ev:enddate", 64, TRUE, &seen_end, &end_text, error) &&
             (end_text == NULL || parse_date (child, "ev:enddate", end_text, &end, error));
      else if (is_element (child, ALV_NS_ENC, "enclosure"))
        {
          if (seen_enclosure)
            return node_error (error, ALV_ERROR_INVALID, child, _("more than one %s"),
                               "enc:enclosure");
          seen_enclosure = TRUE;
          enc_url = get_attribute (child, ALV_NS_RDF, "resource");
          if (enc_url == NULL)  /* the module's deprecated spelling */
            enc_url = get_attribute (child, ALV_NS_ENC, "url");
          enc_type = get_attribute (child, ALV_NS_ENC, "type");
          enc_length = get_attribute (child, ALV_NS_ENC, "length");
        }
      /* anything else: an extension we do not know, ignored */

      if (!ok)
        return FALSE;
    }

  /* rdf:about names the slot: the media URL, or (since every slot of a
   * repeated item needs an identifier of its own) the media URL with a
   * fragment; link and the enclosure name the media */
  if (about != NULL && strchr (about, '#') != NULL)
    *strchr (about, '#') = '\0';
  url = about != NULL ? about : link != NULL ? link : enc_url;
  if (url == NULL)
    return node_error (error, ALV_ERROR_INVALID, node,
                       _("an item has no URL (rdf:about)"));
  if ((reason = alv_playlist_check_text (url, ALV_PLAYLIST_MAX_URL_LENGTH)) != NULL)
    return node_error (error, ALV_ERROR_INVALID, node, "rdf:about: %s", reason);

  quoted = alv_playlist_quote (url);
  if ((reason = alv_playlist_check_http_url (url)) != NULL)
    return node_error (error, ALV_ERROR_INVALID, node, _("item “%s”: %s"), quoted, reason);

  /* a feed reader follows link and the enclosure, we follow rdf:about:
   * they must not disagree */
  if (link != NULL && strcmp (link, url) != 0)
    return node_error (error, ALV_ERROR_INVALID, node,
                       _("item “%s”: link differs from rdf:about"), quoted);
  if (enc_url != NULL && strcmp (enc_url, url) != 0)
    return node_error (error, ALV_ERROR_INVALID, node,
                       _("item “%s”: the enclosure’s URL differs from rdf:about"), quoted);

  if (start == NULL)
    return node_error (error, ALV_ERROR_INVALID, node,
                       _("item “%s” has no ev:startdate"), quoted);
  if (end == NULL)
    return node_error (error, ALV_ERROR_INVALID, node,
                       _("item “%s” has no ev:enddate"), quoted);
  if (g_date_time_compare (end, start) <= 0)
    return node_error (error, ALV_ERROR_INVALID, node,
                       _("item “%s” ends (%s) before or when it starts (%s)"),
                       quoted, end_text, start_text);

  media_type = format != NULL ? format : enc_type;
  if (media_type != NULL && (reason = alv_playlist_check_media_type (media_type)) != NULL)
    return node_error (error, ALV_ERROR_INVALID, node, _("item “%s”: %s"), quoted, reason);

  if (enc_length != NULL &&
      !g_ascii_string_to_unsigned (enc_length, 10, 0, G_MAXUINT64, &length, NULL))
    return node_error (error, ALV_ERROR_INVALID, node,
                       _("item “%s”: enc:length is not a number of bytes"), quoted);

  item = alv_playlist_item_new (url);
  alv_playlist_item_set_title (item, title);
  alv_playlist_item_set_description (item, description);
  alv_playlist_item_set_creator (item, creator);
  alv_playlist_item_set_media_type (item, media_type);
  alv_playlist_item_set_urn (item, urn);
  alv_playlist_item_set_length (item, length);
  alv_playlist_item_set_slot (item, start, end);

  out->item = item;
  out->line = node_line (node);
  return TRUE;
}

static gboolean
parse_channel (xmlNodePtr    node,
               AlvPlaylist  *pl,
               GError      **error)
{
  g_autofree char *about = get_attribute (node, ALV_NS_RDF, "about");
  g_autofree char *title = NULL, *link = NULL, *description = NULL;
  g_autofree char *period = NULL, *frequency = NULL, *base_text = NULL;
  g_autoptr(GDateTime) base = NULL;
  gboolean seen_title = FALSE, seen_link = FALSE, seen_description = FALSE;
  gboolean seen_period = FALSE, seen_frequency = FALSE, seen_base = FALSE;
  const char *reason;
  guint64 freq = 0;

  for (xmlNodePtr child = node->children; child != NULL; child = child->next)
    {
      gboolean ok = TRUE;

      if (child->type != XML_ELEMENT_NODE)
        continue;

      if (is_element (child, ALV_NS_RSS, "title"))
        ok = take_text (child, "title", ALV_PLAYLIST_MAX_TEXT_LENGTH, FALSE,
                        &seen_title, &title, error);
      else if (is_element (child, ALV_NS_RSS, "link"))
        ok = take_text (child, "link", ALV_PLAYLIST_MAX_URL_LENGTH, TRUE,
                        &seen_link, &link, error) &&
             (link == NULL || (reason = alv_playlist_check_http_url (link)) == NULL ||
              node_error (error, ALV_ERROR_INVALID, child, "link: %s", reason));
      else if (is_element (child, ALV_NS_RSS, "description"))
        ok = take_text (child, "description", ALV_PLAYLIST_MAX_TEXT_LENGTH, FALSE,
                        &seen_description, &description, error);
      else if (is_element (child, ALV_NS_SY, "updatePeriod"))
        ok = take_text (child, "sy:updatePeriod", 64, TRUE, &seen_period, &period, error) &&
             (period == NULL || alv_playlist_period_seconds (period) > 0 ||
              node_error (error, ALV_ERROR_INVALID, child,
                          _("sy:updatePeriod must be hourly, daily, weekly, monthly or yearly")));
      else if (is_element (child, ALV_NS_SY, "updateFrequency"))
        ok = take_text (child, "sy:updateFrequency", 64, TRUE,
                        &seen_frequency, &frequency, error) &&
             (frequency == NULL ||
              g_ascii_string_to_unsigned (frequency, 10, 1, G_MAXUINT, &freq, NULL) ||
              node_error (error, ALV_ERROR_INVALID, child,
                          _("sy:updateFrequency must be a positive integer")));
      else if (is_element (child, ALV_NS_SY, "updateBase"))
        ok = take_text (child, "sy:updateBase", 64, TRUE, &seen_base, &base_text, error) &&
             (base_text == NULL || parse_date (child, "sy:updateBase", base_text, &base, error));
      /* items/rdf:Seq is for RDF and feed readers; we go by the items
       * themselves and their slots.  Anything else is ignored. */

      if (!ok)
        return FALSE;
    }

  if (about != NULL)
    {
      if ((reason = alv_playlist_check_text (about, ALV_PLAYLIST_MAX_URL_LENGTH)) != NULL ||
          (reason = alv_playlist_check_http_url (about)) != NULL)
        return node_error (error, ALV_ERROR_INVALID, node, "channel rdf:about: %s", reason);
    }

  alv_playlist_set_about (pl, about);
  alv_playlist_set_title (pl, title);
  alv_playlist_set_link (pl, link);
  alv_playlist_set_description (pl, description);
  alv_playlist_set_update_period (pl, period);
  alv_playlist_set_update_frequency (pl, (guint) freq);
  alv_playlist_set_update_base (pl, base);
  return TRUE;
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

static AlvPlaylist *
parse_tree (xmlDocPtr   doc,
            GError    **error)
{
  xmlNodePtr root = xmlDocGetRootElement (doc);
  g_autoptr(AlvPlaylist) pl = alv_playlist_new ();
  g_autoptr(GArray) items = g_array_new (FALSE, TRUE, sizeof (ParsedItem));
  gboolean seen_channel = FALSE;

  g_array_set_clear_func (items, (GDestroyNotify) parsed_item_clear);

  if (root == NULL)
    {
      g_set_error_literal (error, ALV_ERROR, ALV_ERROR_PARSE, _("the document is empty"));
      return NULL;
    }
  if (!is_element (root, ALV_NS_RDF, "RDF"))
    {
      if (xmlStrEqual (root->name, BAD_CAST "rss") || xmlStrEqual (root->name, BAD_CAST "feed"))
        {
          node_error (error, ALV_ERROR_UNSUPPORTED, root,
                      _("this is an RSS 2.0 or Atom feed; a playlist is an RSS 1.0 (rdf:RDF) document"));
          return NULL;
        }
      node_error (error, ALV_ERROR_INVALID, root,
                  _("the root element is not rdf:RDF: not an RSS 1.0 playlist"));
      return NULL;
    }

  for (xmlNodePtr child = root->children; child != NULL; child = child->next)
    {
      if (is_element (child, ALV_NS_RSS, "channel"))
        {
          if (seen_channel)
            {
              node_error (error, ALV_ERROR_INVALID, child, _("more than one %s"), "channel");
              return NULL;
            }
          seen_channel = TRUE;
          if (!parse_channel (child, pl, error))
            return NULL;
        }
      else if (is_element (child, ALV_NS_RSS, "item"))
        {
          ParsedItem parsed = { NULL, 0 };

          if (items->len >= ALV_PLAYLIST_MAX_ITEMS)
            {
              node_error (error, ALV_ERROR_LIMIT, child, _("more than %d items"),
                          ALV_PLAYLIST_MAX_ITEMS);
              return NULL;
            }
          if (!parse_item (child, &parsed, error))
            return NULL;
          g_array_append_val (items, parsed);
        }
    }

  if (!seen_channel)
    {
      node_error (error, ALV_ERROR_INVALID, root, _("the document has no RSS 1.0 channel"));
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
    alv_playlist_add_item (pl, g_array_index (items, ParsedItem, i).item);

  return g_steal_pointer (&pl);
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
 * items; with %ALV_ERROR_UNSAFE if it has any DOCTYPE; with
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
  g_autoptr(xmlDoc) doc = NULL;

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
  doc = parse_xml (data, length, error);
  if (doc == NULL)
    return NULL;
  return parse_tree (doc, error);
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
