#!/usr/bin/env bash
# Rate limits over HTTP (issue 13), each beside its baseline in the same run:
#
#   bench/limits.sh          # needs wrk, PostgreSQL at LATCHKEY_BENCH_PG (default: the local
#                            # one) and Redis at LATCHKEY_BENCH_REDIS (default 127.0.0.1:6379)
#
# 1. GET /v1/me on SQLite, 10,000 keys without a limit against the same 10,000 keys each with one
#    auto-applied limit (10⁹ per hour: never refused), the two servers taking turns.
# 2. Cluster mode: POST /v1/verify on two nodes sharing one PostgreSQL and one Redis
#    (`--ratelimit-store`), every verified key limited, first one node alone, then both at once
#    (one wrk each); with the same two nodes without the store (each node limiting alone) as
#    the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
PG=${LATCHKEY_BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${LATCHKEY_BENCH_REDIS:-redis://127.0.0.1:6379}
LIMIT='[{"name":"burst","limit":1000000000,"window_seconds":3600,"auto_apply":true}]'

command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p latchkey-server
LK=target/release/latchkey

work=$(mktemp -d)
pids=()
db=""
prefix="latchkey-bench-$RANDOM$RANDOM:"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$db" ] && psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  redis-cli -u "$REDIS" --scan --pattern "$prefix*" 2>/dev/null | xargs -r redis-cli -u "$REDIS" del >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 200); do curl -sf "$1/readyz" >/dev/null && return; sleep 0.05; done; echo "not ready: $1" >&2; exit 1; }
admin_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])'; }

# wrk_once URL SCRIPT THREADS CONNECTIONS → "rps p50 p99 non2xx"
wrk_once() {
  local out; out=$(wrk -t"$3" -c"$4" -d"$DURATION" --latency -s "$2" "$1")
  printf '%s %s %s %s\n' \
    "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx/ {print $5}' <<<"$out")"
}

# median NAME RESULTS… → a table row of the median run (by req/s)
median() {
  python3 - "$@" <<'PY'
import sys
name, base, runs = sys.argv[1], sys.argv[2], [r.split() for r in sys.argv[3:]]
runs.sort(key=lambda r: float(r[0]))
rps, p50, p99, *err = runs[len(runs) // 2]
ratio = f"{float(rps) / float(base) * 100:.0f} %" if base != "-" else "—"
spread = f"{float(runs[0][0]):.0f}–{float(runs[-1][0]):.0f}"
note = f" non-2xx: {err[0]}" if err else ""
print(f"| {name} | {float(rps):.0f} | {p50} | {p99} | {ratio} | {spread} |{note}")
PY
}

echo "| scenario | req/s | p50 | p99 | vs its baseline | req/s of the $RUNS runs |"
echo "|---|---:|---:|---:|---:|---:|"

# 1. One node, SQLite: the same keys with and without one limit (ONLY=cluster skips it).
if [ "${ONLY:-}" != cluster ]; then
start_sqlite() {
  local dir=$1 limited=$2
  mkdir -p "$dir"
  "$LK" init --json --data-dir "$dir" | admin_of >"$dir/admin"
  "$LK" seed-keys --data-dir "$dir" --count 10000 --keep 10000 --out "$dir/keys.txt" >/dev/null 2>&1
  if [ "$limited" = 1 ]; then
    python3 - "$dir/latchkey.db" "$LIMIT" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE api_keys SET ratelimits = ? WHERE name != 'Bootstrap admin key'", (sys.argv[2],))
db.commit()
PY
  fi
  local port; port=$(free_port)
  LATCHKEY_LOG=warn "$LK" serve --listen 127.0.0.1:$port --data-dir "$dir" >"$dir/out.log" 2>&1 &
  pids+=($!); wait_ready "http://127.0.0.1:$port"
  echo "http://127.0.0.1:$port"
}
plain=$(start_sqlite "$work/plain" 0)
limited=$(start_sqlite "$work/limited" 1)
one=$(head -1 "$work/limited/keys.txt")
curl -sfi "$limited/v1/me" -H "Authorization: Bearer $one" | grep -qi '^ratelimit-policy: "burst"' \
  || { echo "the limited server does not charge the limit" >&2; exit 1; }
a=(); b=()
for _ in $(seq "$RUNS"); do
  for side in plain limited; do
    url=${!side}
    LK_KEYS_FILE="$work/$side/keys.txt" wrk -t2 -c64 -d2s -s bench/me.lua "$url" >/dev/null 2>&1 || true
    r=$(LK_KEYS_FILE="$work/$side/keys.txt" wrk_once "$url" bench/me.lua 2 64)
    if [ $side = plain ]; then a+=("$r"); else b+=("$r"); fi
  done
done
median "GET /v1/me, no limit (SQLite, 10,000 keys)" - "${a[@]}"
base=$(printf '%s\n' "${a[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p" | cut -d' ' -f1)
median "**GET /v1/me, one auto-applied limit**" "$base" "${b[@]}"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
pids=()
fi

# 2. Two nodes on one PostgreSQL, with and without the Redis store.
db="latchkey_bench_$RANDOM$RANDOM"
psql "$PG" -qc "CREATE DATABASE $db"
url="${PG%/*}/$db"
export LATCHKEY_SECRET
LATCHKEY_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(36))')
mkdir -p "$work/pg"
"$LK" init --json --database "$url" --data-dir "$work/pg" | admin_of >"$work/pg/admin"
"$LK" seed-keys --database "$url" --data-dir "$work/pg" --count 10000 --keep 10000 --out "$work/pg/keys.txt" >/dev/null 2>&1
psql "$url" -qc "UPDATE api_keys SET ratelimits = '$LIMIT' WHERE name != 'Bootstrap admin key'"
export LK_ADMIN_KEY LK_KEYS_FILE="$work/pg/keys.txt"
LK_ADMIN_KEY=$(cat "$work/pg/admin")

nodes() { # STORE-ARGS… → two node URLs
  local urls=()
  for _ in 1 2; do
    local port; port=$(free_port)
    LATCHKEY_LOG=warn "$LK" serve --listen 127.0.0.1:$port --database "$url" --data-dir "$work/pg" "$@" >>"$work/pg/out.log" 2>&1 &
    pids+=($!); wait_ready "http://127.0.0.1:$port"; urls+=("http://127.0.0.1:$port")
  done
  echo "${urls[@]}"
}
both() { # URL1 URL2 → "rps1 p50 p99 -;rps2 p50 p99 -" with one wrk per node at once
  wrk_once "$1" bench/verify.lua 1 32 >"$work/n1" & local w1=$!
  wrk_once "$2" bench/verify.lua 1 32 >"$work/n2" & local w2=$!
  wait $w1 $w2
  echo "$(cat "$work/n1");$(cat "$work/n2")"
}
for mode in local redis; do
  if [ $mode = redis ]; then read -r n1 n2 <<<"$(nodes --ratelimit-store "$REDIS" --ratelimit-prefix "$prefix")"
  else read -r n1 n2 <<<"$(nodes)"; fi
  wrk -t2 -c64 -d2s -s bench/verify.lua "$n1" >/dev/null 2>&1 || true
  alone=(); n1s=(); n2s=()
  for _ in $(seq "$RUNS"); do
    alone+=("$(wrk_once "$n1" bench/verify.lua 2 64)")
    IFS=';' read -r x y <<<"$(both "$n1" "$n2")"; n1s+=("$x"); n2s+=("$y")
  done
  if [ $mode = local ]; then
    median "POST /v1/verify, one node, limits local (PostgreSQL)" - "${alone[@]}"
    local_alone=$(printf '%s\n' "${alone[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p" | cut -d' ' -f1)
    median "… node 1 of 2 at once, limits local" - "${n1s[@]}"
    median "… node 2 of 2 at once, limits local" - "${n2s[@]}"
  else
    # A key rests (and leaves Redis) microseconds after its charge at this limit, so ask the
    # nodes: the store answered every charge, none fell back.
    for n in "$n1" "$n2"; do
      m=$(curl -s "$n/metrics")
      grep -q '^latchkey_ratelimit_store_up 1' <<<"$m" \
        || { echo "$n did not charge in Redis" >&2; exit 1; }
      ! grep -Eq '^latchkey_ratelimit_fallbacks_total [1-9]' <<<"$m" \
        || { echo "$n fell back to local limits" >&2; exit 1; }
    done
    median "**POST /v1/verify, one node, limits in Redis**" "$local_alone" "${alone[@]}"
    median "**… node 1 of 2 at once, limits in Redis**" - "${n1s[@]}"
    median "**… node 2 of 2 at once, limits in Redis**" - "${n2s[@]}"
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  pids=()
done
echo "<!-- $(nproc) cores, wrk -d$DURATION, median of $RUNS runs, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD) -->"
