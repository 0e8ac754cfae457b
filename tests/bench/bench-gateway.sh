#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Gateway requests per second under wrk: `alluvium-server gateway` with a
# docroot of one 1 MB item on 127.0.0.1, its per-client rate limit off,
# loaded for DURATION seconds each with resolve (an item already hashed:
# the cached answer) and announce (one peer re-announcing what it holds;
# four other peers of the item are in its answer).  wrk runs on the same machine (2 of its
# threads, CONNECTIONS connections), so the figures are what the gateway
# does while sharing the CPUs with its load generator.  Installs wrk and
# curl with apt-get when missing.  The last line has both figures.
#
#   sh tests/bench/bench-gateway.sh [BUILDDIR]
#   DURATION=20 CONNECTIONS=64 sh tests/bench/bench-gateway.sh _build
set -eu

builddir=${1:-_build}
server="$builddir/server/alluvium-server"
duration=${DURATION:-10}
connections=${CONNECTIONS:-32}
[ -x "$server" ] || { echo "bench-gateway: build first ($server is missing)"; exit 1; }

for tool in wrk curl; do
  if ! command -v $tool >/dev/null 2>&1; then
    echo "bench-gateway: installing $tool"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y --no-install-recommends $tool >/dev/null
  fi
done

work=$(mktemp -d)
gateway=""
cleanup() {
  [ -z "$gateway" ] || { kill "$gateway" 2>/dev/null; wait "$gateway" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

mkdir -p "$work/docroot"
head -c 1000000 /dev/urandom >"$work/docroot/item.mp3"
"$server" gateway --docroot "$work/docroot" --port 0 --rate-limit=0 \
  --ready-file "$work/ready" >"$work/gateway.log" 2>&1 &
gateway=$!
i=0
while [ ! -s "$work/ready" ]; do
  i=$((i + 1))
  [ $i -le 100 ] || { echo "bench-gateway: the gateway did not start"; cat "$work/gateway.log"; exit 1; }
  sleep 0.1
done
base=$(cat "$work/ready")
base=${base%/}
resolve="$base/resolve?url=$base/item.mp3"

# hash the item first (202 until done)
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$resolve")" = 200 ]; do
  i=$((i + 1))
  [ $i -le 100 ] || { echo "bench-gateway: the item was not resolved"; exit 1; }
  sleep 0.1
done
urn=$(curl -s -D - -o /dev/null "$resolve" | tr -d '\r' | sed -n 's/^[Xx]-[Cc]ontent-[Uu][Rr][Nn]: //p')
for port in 7001 7002 7003 7004; do
  curl -s -o /dev/null "$base/announce?urn=$urn&port=$port&event=completed"
done
announce="$base/announce?urn=$urn&port=7000&event=update&ranges=bytes%200-499999"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$announce")" = 200 ] \
  || { echo "bench-gateway: announce was refused"; exit 1; }

echo "gateway $base, item $urn"
echo "wrk: $duration s, 2 threads, $connections connections, on the gateway's machine"
run() {
  out=$(wrk -t2 -c"$connections" -d"${duration}s" "$2")
  printf '%s\n' "$out" | sed "s/^/  $1: /"
  errors=$(printf '%s\n' "$out" | sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p')
  [ -z "$errors" ] || { echo "bench-gateway: $1 had $errors error answers"; exit 1; }
  printf '%s\n' "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'
}
r=$(run resolve "$resolve" | tee /dev/stderr | tail -n 1)
a=$(run announce "$announce" | tee /dev/stderr | tail -n 1)
echo "resolve: $r req/s, announce: $a req/s"
