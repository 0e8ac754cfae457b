/* SPDX-License-Identifier: LGPL-2.1-or-later
 * (placeholder: to be written) */
#define G_LOG_DOMAIN "alluvium-common"
#include "config.h"
#include "alv-hash-tree.h"
