/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the libFuzzer targets share: CHECK(), which aborts with the failed
 * condition so libFuzzer shows it next to the crash; fuzz_init(), which
 * makes a g_critical() or g_warning() reached from a target fatal (a
 * g_return_if_fail() tripped by input is a bug too); and a small generator
 * of piece sizes and positions seeded from the input, for feeding the same
 * bytes in uneven pieces.  Header only: each target is its own program.
 */
#pragma once

#include <stdlib.h>

#include <glib.h>

#define CHECK(cond) \
  G_STMT_START { \
    if (G_UNLIKELY (!(cond))) \
      { \
        g_printerr ("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort (); \
      } \
  } G_STMT_END

/* an input as fuzz-mp3 and fuzz-ogg split it */
typedef struct
{
  const guint8 *d;
  gsize len;
  guint8 control;
} FuzzInput;

/* data[0] is the selector, data[1] the control byte, the rest the bytes
 * fuzzed; %FALSE when there are not even the first two */
static inline gboolean
fuzz_input_split (FuzzInput    *in,
                  const guint8 *data,
                  gsize         size)
{
  if (size < 2)
    return FALSE;
  in->control = data[1];
  in->d = data + 2;
  in->len = size - 2;
  return TRUE;
}

static inline void
fuzz_init (void)
{
  static gboolean initialized = FALSE;

  if (initialized)
    return;
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  initialized = TRUE;
}

/* xorshift32: 1 to @max; @state must not be 0 */
static inline guint
fuzz_next_step (guint32 *state,
                guint    max)
{
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return 1 + *state % max;
}

/* The next piece: 1 to @max bytes, no more than are @left. */
static inline gsize
fuzz_next_piece (guint32 *state,
                 guint    max,
                 gsize    left)
{
  gsize n = fuzz_next_step (state, max);

  return MIN (n, left);
}

/* for qsort() of guint64 */
static inline int
fuzz_compare_u64 (const void *a,
                  const void *b)
{
  guint64 x = *(const guint64 *) a, y = *(const guint64 *) b;

  return x < y ? -1 : x > y;
}
