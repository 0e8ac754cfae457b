/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * What the libFuzzer targets share: the entry point's prototype and
 * CHECK(), an assertion that stays in every build and aborts with a
 * message libFuzzer shows next to the crash.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define CHECK(cond) \
  G_STMT_START { \
    if (G_UNLIKELY (!(cond))) \
      { \
        g_printerr ("%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        abort (); \
      } \
  } G_STMT_END
