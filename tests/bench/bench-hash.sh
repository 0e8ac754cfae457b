#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hashing speed of the THEX tree against the machine's raw SHA-256 speed.
# Creates a file of random bytes in /dev/shm (or $TMPDIR) so that the disk
# is not measured, then compares bench-hash (the tree of that file, best of
# RUNS, with one thread and with one per processor as
# alv_hash_tree_new_for_file() does) with `openssl speed -evp sha256` on one
# core (16 KiB blocks), measured before and after and the better kept.
# openssl times itself in CPU time by default; with `-elapsed` in wall
# time.  Both are printed, and each ratio divides like by like:
#   - 1 thread per CPU-second / openssl CPU time: single-core efficiency,
#     barely disturbed by other load on the machine;
#   - default threads, wall clock / openssl -elapsed: what a caller waits.
# The last line, `ratio: X.XX`, is the second one (the default tree speed
# over openssl's single-core speed).  The raw numbers come first.  The file
# is removed on exit and every step runs under `timeout`: under two minutes.
#
# Usage: bench-hash.sh [BUILDDIR]   (or BUILDDIR=... bench-hash.sh)
#        SIZE_MB (default 512), BLOCK_SIZE (default 65536) and RUNS
#        (default 3) may be set in the environment.
set -eu

builddir=${1:-${BUILDDIR:-.}}
bench="$builddir/tests/bench/bench-hash"
size_mb=${SIZE_MB:-512}
block_size=${BLOCK_SIZE:-65536}
runs=${RUNS:-3}

if [ ! -x "$bench" ]; then
  echo "bench-hash.sh: $bench not found; run 'make tests/bench/bench-hash' in the build dir" >&2
  exit 2
fi
for tool in openssl awk timeout; do
  if ! command -v "$tool" > /dev/null; then
    echo "bench-hash.sh: $tool is needed" >&2
    exit 2
  fi
done

if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  dir=/dev/shm
else
  dir=${TMPDIR:-/tmp}
fi
file=$(mktemp "$dir/alv-bench-hash.XXXXXX")
trap 'rm -f "$file"' EXIT
trap 'exit 130' INT TERM HUP

# openssl's SHA-256 speed on one core in MB/s (10^6 bytes per second), from
# the machine-readable output +F:<n>:sha256:<bytes per second>; "$1" may be
# -elapsed for wall-clock time instead of CPU time
openssl_speed () {
  timeout 8 openssl speed "$@" -evp sha256 -bytes 16384 -seconds 1 -mr 2>/dev/null |
    awk -F: '$1 == "+F" { v = $NF } END { if (v != "") printf "%.0f", v / 1e6 }'
}
max () {
  awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { print (a + 0 > b + 0 ? a : b) }'
}

echo "creating $size_mb MiB of random data in $file"
timeout 20 head -c "$((size_mb * 1024 * 1024))" /dev/urandom > "$file"

cpu_before=$(openssl_speed)
wall_before=$(openssl_speed -elapsed)
if [ -z "$cpu_before" ] || [ -z "$wall_before" ]; then
  echo "bench-hash.sh: could not run or parse 'openssl speed -evp sha256 -bytes 16384 -mr'" >&2
  exit 1
fi

if command -v sha256sum > /dev/null; then
  sha_out=$(timeout 15 sh -c 'start=$(date +%s.%N); sha256sum "$1" > /dev/null; end=$(date +%s.%N); echo "$start $end"' sh "$file")
  sha256sum_mbs=$(echo "$sha_out" | awk -v b="$((size_mb * 1024 * 1024))" \
                    '{ printf "%.0f", b / 1e6 / ($2 - $1) }')
else
  sha256sum_mbs=n/a
fi

out=$(timeout 60 "$bench" "$file" "$block_size" "$runs")
cpu_after=$(openssl_speed)
wall_after=$(openssl_speed -elapsed)
openssl_cpu=$(max "$cpu_before" "$cpu_after")
openssl_wall=$(max "$wall_before" "$wall_after")

# bench-hash prints "LABEL: WALL MB/s (CPU per CPU-second)"
field () {
  echo "$out" | awk -v label="$1" -v want="$2" '
    index($0, label) == 1 {
      sub(/^[^:]*: /, "")
      v = (want == "wall") ? $1 : $3
      sub(/^\(/, "", v)
      print v
    }'
}
one=$(field "1 thread:" wall)
one_cpu=$(field "1 thread:" cpu)
n=$(echo "$out" | awk '$2 == "threads:" { print $1 }')
all=$(field "$n threads:" wall)
raw_cpu=$(field "sha256 (GnuTLS" cpu)
if [ -z "$one" ] || [ -z "$one_cpu" ] || [ -z "$all" ]; then
  echo "bench-hash.sh: could not parse the output of bench-hash:" >&2
  echo "$out" >&2
  exit 1
fi

echo "$out"
echo "openssl sha256 (1 core, 16 KiB blocks): $openssl_cpu MB/s per CPU-second (before $cpu_before, after ${cpu_after:-n/a}), $openssl_wall MB/s wall clock (before $wall_before, after ${wall_after:-n/a})"
echo "sha256sum (1 core, wall clock): $sha256sum_mbs MB/s"
awk -v oc="$openssl_cpu" -v ow="$openssl_wall" -v a="$one" -v ac="$one_cpu" \
    -v b="$all" -v n="$n" -v rc="$raw_cpu" 'BEGIN {
  if (rc != "")
    printf "ratio (1 thread / GnuTLS sha256 of the same reads, per CPU-second): %.2f\n", ac / rc
  printf "ratio (1 thread / openssl, per CPU-second): %.2f\n", ac / oc
  printf "ratio (1 thread / openssl -elapsed, wall clock): %.2f\n", a / ow
  printf "ratio (%d threads / openssl -elapsed, wall clock): %.2f\n", n, b / ow
  printf "ratio: %.2f\n", b / ow
}'
