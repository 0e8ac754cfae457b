/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The head's facts from the bytes being hashed (gateway-head.h).  An ID3v2
 * tag may be megabytes of cover art: only its size is read (from its first
 * ten bytes), the tag itself is skipped, and HEAD_WINDOW bytes after it
 * are kept, far more than the two frames a sync point needs.  The media
 * type does not decide: the core tells formats apart by their bytes
 * (doc/core.md), and the facts are what it would read from the head.
 */
#define G_LOG_DOMAIN "alluvium-gateway"

#include "config.h"

#include "gateway-head.h"

#include <string.h>

#include "alv-mp3.h"

/* bytes kept after any ID3v2 tag: a sync point within them is found
 * (the core reads four frames past the tag, doc/core.md) */
#define HEAD_WINDOW (16 * 1024)

struct _GatewayHead
{
  guint8 first[10];      /* the file's first bytes: the ID3v2 header */
  gsize n_first;
  guint64 fed;           /* bytes fed so far */
  guint64 skip;          /* where the window starts (after the tag) */
  gboolean skip_known;
  GByteArray *window;    /* up to HEAD_WINDOW bytes from @skip */
};

GatewayHead *
gateway_head_new (void)
{
  GatewayHead *head = g_new0 (GatewayHead, 1);

  head->window = g_byte_array_sized_new (HEAD_WINDOW);
  return head;
}

void
gateway_head_feed (GatewayHead  *head,
                   const guint8 *data,
                   gsize         len)
{
  g_return_if_fail (head != NULL);
  g_return_if_fail (data != NULL || len == 0);

  while (len > 0)
    {
      gsize take;

      if (!head->skip_known)
        {
          take = MIN (len, sizeof head->first - head->n_first);
          memcpy (head->first + head->n_first, data, take);
          head->n_first += take;
          if (head->n_first == sizeof head->first)
            {
              head->skip = alv_mp3_id3v2_size (head->first, head->n_first);
              head->skip_known = TRUE;
              /* the first bytes belong to the window when there is no tag */
              if (head->skip == 0)
                g_byte_array_append (head->window, head->first, head->n_first);
            }
        }
      else if (head->fed < head->skip)
        take = (gsize) MIN ((guint64) len, head->skip - head->fed);
      else
        {
          take = len;
          if (head->window->len < HEAD_WINDOW)
            g_byte_array_append (head->window, data, MIN (len, HEAD_WINDOW - head->window->len));
        }
      head->fed += take;
      data += take;
      len -= take;
    }
}

char *
gateway_head_facts (GatewayHead *head,
                    gboolean     at_end)
{
  AlvMp3Info info;
  g_autofree char *facts = NULL;

  if (head == NULL)
    return NULL;
  if (!head->skip_known && head->n_first > 0)
    {
      /* shorter than an ID3v2 header: the bytes are all there is */
      g_byte_array_append (head->window, head->first, head->n_first);
      head->n_first = 0;
    }
  /* a window cut short is only believed where the media ended; Ogg and
   * Matroska are told by their first bytes, as the core tells them */
  if (head->window->len == 0 || (!at_end && head->window->len < HEAD_WINDOW)
      || (head->skip == 0 && head->window->len >= 4
          && (memcmp (head->window->data, "OggS", 4) == 0
              || memcmp (head->window->data, "\x1a\x45\xdf\xa3", 4) == 0))
      || !alv_mp3_parse_info (head->window->data, head->window->len, &info, NULL))
    return NULL;
  info.audio_start += head->skip;
  facts = alv_mp3_info_to_string (&info);
  return g_strconcat (GATEWAY_HEAD_MPEG_AUDIO "; ", facts, NULL);
}

void
gateway_head_free (GatewayHead *head)
{
  if (head == NULL)
    return;
  g_byte_array_unref (head->window);
  g_free (head);
}
