/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The head's facts the gateway reads while hashing (server/gateway-head.c):
 * fed in any chunking, they are what the core's own parse of the whole file
 * gives, past an ID3v2 tag of any size; Ogg, text and cut heads give none.
 * Plain bytes, no sockets.
 */
#include "config.h"

#include <string.h>

#include "alv-mp3.h"
#include "gateway-head.h"
#include "stream-media.h"

static char *
facts_in_chunks (const guint8 *data,
                 gsize         len,
                 gsize         chunk,
                 gboolean      at_end)
{
  g_autoptr(GatewayHead) head = gateway_head_new ();

  for (gsize off = 0; off < len; off += chunk)
    gateway_head_feed (head, data + off, MIN (chunk, len - off));
  return gateway_head_facts (head, at_end);
}

/* @file with an ID3v2 tag of @tag_body bytes (0: none) in front */
static GByteArray *
with_tag (GBytes *mp3,
          gsize   tag_body)
{
  GByteArray *file = g_byte_array_new ();

  if (tag_body > 0)
    {
      guint8 header[10] = { 'I', 'D', '3', 4, 0, 0 };
      g_autofree guint8 *body = g_malloc (tag_body);

      for (guint i = 0; i < 4; i++)
        header[6 + i] = (tag_body >> (7 * (3 - i))) & 0x7f;
      /* frame sync patterns inside the tag must not be taken for audio */
      memset (body, 0xff, tag_body);
      g_byte_array_append (file, header, sizeof header);
      g_byte_array_append (file, body, (guint) tag_body);
    }
  g_byte_array_append (file, g_bytes_get_data (mp3, NULL), (guint) g_bytes_get_size (mp3));
  return file;
}

static void
test_head_mp3 (void)
{
  static const gsize tags[] = { 0, 257, 300 * 1024 };
  static const gsize chunks[] = { 1, 7, 4096, 65536, G_MAXSIZE / 2 };
  g_autoptr(GBytes) cbr = stream_media_mp3 (60, FALSE);
  g_autoptr(GBytes) xing = stream_media_mp3 (60, TRUE);
  GBytes *media[2] = { cbr, xing };

  if (cbr == NULL || xing == NULL)
    {
      g_test_skip ("MP3 encoder or xingmux missing");
      return;
    }
  for (guint m = 0; m < G_N_ELEMENTS (media); m++)
    for (guint t = 0; t < G_N_ELEMENTS (tags); t++)
      {
        g_autoptr(GByteArray) file = with_tag (media[m], tags[t]);
        g_autoptr(GError) error = NULL;
        g_autofree char *own = NULL, *want = NULL;
        AlvMp3Info info;

        /* what the core reads from the whole head */
        g_assert_true (alv_mp3_parse_info (file->data, file->len, &info, &error));
        g_assert_no_error (error);
        g_assert_cmpuint (info.audio_start, >=, tags[t] + (tags[t] ? 10 : 0));
        own = alv_mp3_info_to_string (&info);
        want = g_strconcat ("mpeg-audio; ", own, NULL);
        for (guint c = 0; c < G_N_ELEMENTS (chunks); c++)
          {
            g_autofree char *facts = facts_in_chunks (file->data, file->len,
                                                      MIN (chunks[c], file->len), TRUE);

            g_assert_cmpstr (facts, ==, want);
          }
      }
}

static void
test_head_other (void)
{
  g_autoptr(GBytes) mp3 = stream_media_mp3 (60, FALSE);
  g_autoptr(GBytes) ogg = stream_media_vorbis (20, "Ogg tone", 440);
  static const guint8 noise[] = "not audio at all, just a line of text that goes on and on";
  g_autofree char *none = NULL, *short_text = NULL;

  /* nothing fed, or text: no facts */
  none = facts_in_chunks (noise, 0, 1, TRUE);
  g_assert_null (none);
  short_text = facts_in_chunks (noise, sizeof noise, 5, TRUE);
  g_assert_null (short_text);

  if (mp3 == NULL || ogg == NULL)
    {
      g_test_skip ("MP3 or Vorbis encoder missing");
      return;
    }
  {
    /* Ogg is told by its first bytes, whatever follows them */
    g_autofree char *facts = facts_in_chunks (g_bytes_get_data (ogg, NULL),
                                              g_bytes_get_size (ogg), 4096, TRUE);

    g_autoptr(GByteArray) fake = g_byte_array_new ();
    g_autofree char *fake_facts = NULL;

    g_assert_null (facts);
    g_byte_array_append (fake, (const guint8 *) "OggS", 4);
    g_byte_array_append (fake, g_bytes_get_data (mp3, NULL), (guint) g_bytes_get_size (mp3));
    fake_facts = facts_in_chunks (fake->data, fake->len, 4096, TRUE);
    g_assert_null (fake_facts);
  }
  {
    /* a head cut short is not believed before the media ended, but
     * is once the media ended there */
    const guint8 *d = g_bytes_get_data (mp3, NULL);
    g_autofree char *cut = facts_in_chunks (d, 3000, 1000, FALSE);
    g_autofree char *ended = facts_in_chunks (d, 3000, 1000, TRUE);
    g_autofree char *long_enough = facts_in_chunks (d, g_bytes_get_size (mp3), 1000, FALSE);

    g_assert_null (cut);
    g_assert_nonnull (ended);
    g_assert_nonnull (long_enough);
    g_assert_cmpstr (ended, ==, long_enough);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  gst_init (&argc, &argv);
  g_test_add_func ("/server/gateway-head/mp3", test_head_mp3);
  g_test_add_func ("/server/gateway-head/other", test_head_other);
  return g_test_run ();
}
