#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Gateway requests per second under wrk, side by side with opentracker
# (the reference BitTorrent tracker in C) under the same load.  Three
# servers on 127.0.0.1: opentracker; `alluvium-server gateway` with its
# embedded store; and the same with --store on a redis-server of its own
# (unix socket, no persistence).  Each gateway has a docroot of one 1 MB
# item, resolved first, and a python3 http.server origin with another;
# per-client rate limits are off.  Announce: one peer re-announcing what
# it holds, four other peers of the item known (the same at opentracker).
# Each figure is measured ROUNDS times, the runs interleaved (this machine
# is shared), for DURATION seconds each with 2 wrk threads and CONNECTIONS
# connections, wrk on the same machine.  opentracker closes every
# connection; the gateway is measured both with `Connection: close` and
# with keep-alive.  Installs wrk, curl, opentracker and redis-server with
# apt-get when missing.  The last lines have the figures and the ratios.
#
#   sh tests/bench/bench-gateway.sh [BUILDDIR]
#   DURATION=5 ROUNDS=1 CONNECTIONS=64 sh tests/bench/bench-gateway.sh _build
set -eu

builddir=${1:-_build}
server="$builddir/server/alluvium-server"
duration=${DURATION:-10}
connections=${CONNECTIONS:-100}
rounds=${ROUNDS:-2}
[ -x "$server" ] || { echo "bench-gateway: build first ($server is missing)"; exit 1; }

for tool in wrk:wrk curl:curl opentracker:opentracker redis-server:redis-server python3:python3; do
  cmd=${tool%%:*}
  if ! command -v "$cmd" >/dev/null 2>&1; then
    echo "bench-gateway: installing ${tool#*:}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get install -y --no-install-recommends "${tool#*:}" >/dev/null
  fi
done

work=$(mktemp -d)
pids=""
cleanup() {
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# waits for FILE to be non-empty (a ready file, a log line)
wait_file() {
  i=0
  while [ ! -s "$1" ]; do
    i=$((i + 1))
    [ $i -le 100 ] || { echo "bench-gateway: $2 did not start"; exit 1; }
    sleep 0.1
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$work/docroot" "$work/origin" "$work/redis"
head -c 1000000 /dev/urandom >"$work/docroot/item.mp3"
head -c 1000000 /dev/urandom >"$work/origin/item.mp3"

# the origin of the "resolve (origin URL)" figure
python3 -u -m http.server --bind 127.0.0.1 --directory "$work/origin" 0 \
  >"$work/origin.out" 2>/dev/null &
pids="$pids $!"
wait_file "$work/origin.out" "the origin"
origin_port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/origin.out" | head -n 1)
origin="http://127.0.0.1:$origin_port/"

redis-server --port 0 --unixsocket "$work/redis/redis.sock" --unixsocketperm 700 \
  --save '' --appendonly no --dir "$work/redis" >"$work/redis.log" 2>&1 &
pids="$pids $!"
i=0
until [ -S "$work/redis/redis.sock" ]; do
  i=$((i + 1))
  [ $i -le 100 ] || { echo "bench-gateway: redis-server did not start"; cat "$work/redis.log"; exit 1; }
  sleep 0.1
done

# start_gateway NAME [OPTION...]: sets $base
start_gateway() {
  name=$1
  shift
  "$server" gateway --docroot "$work/docroot" --origin "$origin" --allow-private \
    --port 0 --rate-limit=0 --ready-file "$work/$name.ready" "$@" \
    >"$work/$name.log" 2>&1 &
  pids="$pids $!"
  wait_file "$work/$name.ready" "the gateway ($name)"
  base=$(cat "$work/$name.ready")
  base=${base%/}
  if [ $# -gt 0 ]; then
    i=0
    until grep -q "connected to Redis" "$work/$name.log"; do
      i=$((i + 1))
      [ $i -le 100 ] || { echo "bench-gateway: the gateway ($name) did not reach Redis"; exit 1; }
      sleep 0.1
    done
  fi
}

# prepare_gateway: resolves both items at $base and announces 4 peers;
# sets $resolve, $resolve_origin and $announce
prepare_gateway() {
  resolve="$base/resolve?url=$base/item.mp3"
  resolve_origin="$base/resolve?url=${origin}item.mp3"
  for url in "$resolve" "$resolve_origin"; do
    i=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; do
      i=$((i + 1))
      [ $i -le 100 ] || { echo "bench-gateway: $url was not resolved"; exit 1; }
      sleep 0.1
    done
  done
  urn=$(curl -s -D - -o /dev/null "$resolve" | tr -d '\r' | sed -n 's/^[Xx]-[Cc]ontent-[Uu][Rr][Nn]: //p')
  for port in 7001 7002 7003 7004; do
    curl -s -o /dev/null "$base/announce?urn=$urn&port=$port&event=completed"
  done
  announce="$base/announce?urn=$urn&port=7000&event=update&ranges=bytes%200-499999"
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$announce")" = 200 ] \
    || { echo "bench-gateway: announce was refused"; exit 1; }
}

start_gateway embedded
prepare_gateway
e_resolve=$resolve e_resolve_origin=$resolve_origin e_announce=$announce
start_gateway redis --store "unix:$work/redis/redis.sock"
prepare_gateway
r_resolve_origin=$resolve_origin r_announce=$announce

# opentracker: its whitelist build wants the info hash listed; it
# chroots to -d and reads the list from there as user nobody
chmod 755 "$work"
echo 0102030405060708090a0b0c0d0e0f1011121314 >"$work/whitelist.txt"
chmod 644 "$work/whitelist.txt"
ot_port=$(free_port)
opentracker -i 127.0.0.1 -p "$ot_port" -P "$ot_port" -d "$work" -w /whitelist.txt -f /dev/null \
  >"$work/opentracker.log" 2>&1 &
pids="$pids $!"
hash='%01%02%03%04%05%06%07%08%09%0a%0b%0c%0d%0e%0f%10%11%12%13%14'
ot="http://127.0.0.1:$ot_port/announce?info_hash=$hash&uploaded=0&downloaded=0&compact=1"
i=0
until curl -s "$ot&peer_id=-AL0001-000000007001&port=7001&left=0" | grep -q complete; do
  i=$((i + 1))
  [ $i -le 100 ] || { echo "bench-gateway: opentracker did not answer"; cat "$work/opentracker.log"; exit 1; }
  sleep 0.1
done
for port in 7002 7003 7004; do
  curl -s -o /dev/null "$ot&peer_id=-AL0001-00000000$port&port=$port&left=0"
done
ot_announce="$ot&peer_id=-AL0001-000000007000&port=7000&left=500000"

echo "wrk: $duration s, 2 threads, $connections connections, $rounds interleaved rounds, on the servers' machine"
# run LABEL URL [WRK OPTION...]: prints requests per second
run() {
  label=$1
  url=$2
  shift 2
  out=$(wrk -t2 -c"$connections" -d"${duration}s" "$@" "$url")
  errors=$(printf '%s\n' "$out" | sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p')
  [ -z "$errors" ] || { echo "bench-gateway: $label had $errors error answers" >&2; exit 1; }
  rps=$(printf '%s\n' "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p')
  echo "  $label: $rps req/s" >&2
  echo "$rps"
}

close="Connection: close"
results="$work/results"
: >"$results"
r=1
while [ $r -le "$rounds" ]; do
  echo "round $r"
  echo "ot $(run 'opentracker announce (close)' "$ot_announce" -H "$close")" >>"$results"
  echo "ec $(run 'announce, embedded (close)' "$e_announce" -H "$close")" >>"$results"
  echo "ek $(run 'announce, embedded (keep-alive)' "$e_announce")" >>"$results"
  echo "rc $(run 'announce, Redis (close)' "$r_announce" -H "$close")" >>"$results"
  echo "rk $(run 'announce, Redis (keep-alive)' "$r_announce")" >>"$results"
  echo "qo $(run 'resolve, origin URL known (keep-alive)' "$e_resolve_origin")" >>"$results"
  echo "qr $(run 'resolve, origin URL known, Redis (keep-alive)' "$r_resolve_origin")" >>"$results"
  echo "qd $(run 'resolve, docroot file (keep-alive)' "$e_resolve")" >>"$results"
  r=$((r + 1))
done

# mean of each figure over the rounds, and the ratios to opentracker
awk '
  { sum[$1] += $2; n[$1]++ }
  END {
    for (k in sum) mean[k] = sum[k] / n[k]
    printf "opentracker announce (close): %.0f req/s\n", mean["ot"]
    printf "announce, embedded (close): %.0f req/s = %.2fx opentracker\n", mean["ec"], mean["ec"] / mean["ot"]
    printf "announce, embedded (keep-alive): %.0f req/s = %.2fx opentracker\n", mean["ek"], mean["ek"] / mean["ot"]
    printf "announce, Redis (close): %.0f req/s = %.2fx opentracker\n", mean["rc"], mean["rc"] / mean["ot"]
    printf "announce, Redis (keep-alive): %.0f req/s = %.2fx opentracker\n", mean["rk"], mean["rk"] / mean["ot"]
    printf "resolve, origin URL known: %.0f req/s (Redis: %.0f); docroot file: %.0f req/s\n", mean["qo"], mean["qr"], mean["qd"]
  }' "$results"
