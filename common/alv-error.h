/* SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The error domain of liballuvium-common.  Every fallible function of the
 * common library reports through ALV_ERROR with one of these codes; the
 * message says what was wrong (and, for documents, where).
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/**
 * AlvError:
 * @ALV_ERROR_PARSE: the input is not well-formed (syntax, encoding)
 * @ALV_ERROR_INVALID: well-formed but semantically invalid (missing field,
 *   overlapping slots, inconsistent numbers)
 * @ALV_ERROR_LIMIT: the input exceeds a configured limit (size, count,
 *   nesting, numeric range)
 * @ALV_ERROR_UNSAFE: the input asks for something refused on principle
 *   (external entities, DTDs, network access)
 * @ALV_ERROR_MISMATCH: data does not match its hash or identifier
 * @ALV_ERROR_UNSUPPORTED: a valid but unsupported feature or version
 * @ALV_ERROR_FAILED: anything else (I/O, crypto library failure)
 *
 * Error codes of the %ALV_ERROR domain.
 */
typedef enum
{
  ALV_ERROR_PARSE,
  ALV_ERROR_INVALID,
  ALV_ERROR_LIMIT,
  ALV_ERROR_UNSAFE,
  ALV_ERROR_MISMATCH,
  ALV_ERROR_UNSUPPORTED,
  ALV_ERROR_FAILED,
} AlvError;

#define ALV_ERROR (alv_error_quark ())
GQuark alv_error_quark (void);

/**
 * alv_i18n_init:
 *
 * Binds the gettext domain of Alluvium to its locale directory.  Programs
 * call this once from main(); the library's messages are translated through
 * `_()` from glib/gi18n-lib.h.
 */
void alv_i18n_init (void);

G_END_DECLS
