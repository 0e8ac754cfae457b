/* SPDX-License-Identifier: LGPL-2.1-or-later
 * (placeholder: to be written) */
#pragma once
#include <glib.h>
