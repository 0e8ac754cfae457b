#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# TAP test: po/POTFILES.in lists exactly the C sources that mark strings for
# translation with _() or N_(), so no user-visible message is left out of
# the catalogs and no listed file is stale; and no marked message is one
# that xgettext cannot extract whole.
set -u
top=${abs_top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

(cd "$top" && grep -v -e '^#' -e '^$' po/POTFILES.in | grep '\.c$' | sort) >"$tmp/listed"
# other listed files (desktop entry, AppStream) must at least exist
others=$(cd "$top" && grep -v -e '^#' -e '^$' -e '\.c$' po/POTFILES.in |
         while read -r f; do [ -f "$f" ] || echo "$f"; done)
(cd "$top" && grep -l -E '(^|[^A-Za-z0-9_])N?_ ?\(' \
   common/*.c core/*.c server/*.c player/*.c 2>/dev/null | sort) >"$tmp/marked"
# xgettext cuts a message at a GLib format macro ("%" G_GSIZE_FORMAT):
# the catalog gets a stub that never matches, and the message is never
# translated (PRIu64 and its kind it does understand)
spliced=$(cd "$top" && grep -n -E '(^|[^A-Za-z0-9_])N?_ ?\("([^"\\]|\\.)*"[[:space:]]*G_G[A-Z0-9]*_(FORMAT|MODIFIER)' \
            common/*.c core/*.c server/*.c player/*.c 2>/dev/null)
missing=$(comm -13 "$tmp/listed" "$tmp/marked")
stale=$(comm -23 "$tmp/listed" "$tmp/marked")

echo "1..4"
if [ -z "$missing" ]; then
  echo "ok 1 every file using _() is in po/POTFILES.in"
else
  echo "not ok 1 files using _() missing from po/POTFILES.in:" $missing
fi
if [ -z "$stale" ]; then
  echo "ok 2 every file in po/POTFILES.in uses _()"
else
  echo "not ok 2 files in po/POTFILES.in without _():" $stale
fi
if [ -z "$others" ]; then
  echo "ok 3 every other file in po/POTFILES.in exists"
else
  echo "not ok 3 files in po/POTFILES.in that do not exist:" $others
fi
if [ -z "$spliced" ]; then
  echo "ok 4 no translatable message splices a GLib format macro"
else
  echo "not ok 4 translatable messages that xgettext cuts at a GLib format macro (use %u and a cast, or %lu):"
  echo "$spliced" | sed 's/^/# /'
fi
