/* SPDX-License-Identifier: LGPL-2.1-or-later
 * (placeholder: to be written) */
#include "config.h"
int main (void);
int
main (void)
{
  return 0;
}
