#!/usr/bin/env bash
# Latchkey's HTTP benchmark, with its baseline in the same run. One command:
#
#   bench/run.sh                      # defaults: 1,000 and 1,000,000 keys, 64 connections, 10 s
#   DURATION=30s SIZES="1000 100000" bench/run.sh
#
# Builds release binaries, seeds keys in bulk (same hashing and schema as POST /v1/keys), starts
# Latchkey (SQLite, and PostgreSQL for the cache-miss and write rows when LATCHKEY_BENCH_PG is set)
# and the baseline (a minimal hyper server: one SHA-256 and one map lookup per request, same
# response size), drives both with wrk from Debian, and prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SIZES=${SIZES:-"1000 1000000"}
PG=${LATCHKEY_BENCH_PG:-}

command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p latchkey-server -p latchkey-bench-baseline
LK=target/release/latchkey
BASE=target/release/latchkey-bench-baseline

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 200); do curl -sf "$1/readyz" >/dev/null && return; sleep 0.05; done; echo "not ready: $1" >&2; exit 1; }

# wrk_row NAME URL SCRIPT [BASELINE_RPS] → prints "name|rps|p50|p99|ratio", sets LAST_RPS
wrk_row() {
  local name=$1 url=$2 script=$3 base=${4:-}
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$script" "$url" >/dev/null 2>&1 || true   # warm-up
  local out; out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$url")
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  local ratio="—"
  [ -n "$base" ] && ratio=$(python3 -c "print(f'{$rps/$base*100:.0f} %')")
  printf '| %s | %.0f | %s | %s | %s |%s\n' "$name" "$rps" "$p50" "$p99" "$ratio" "${errors:+ non-2xx: $errors}"
  LAST_RPS=$rps
}

echo "| scenario | req/s | p50 | p99 | vs baseline |"
echo "|---|---:|---:|---:|---:|"
for n in $SIZES; do
  dir="$work/sqlite-$n"; mkdir -p "$dir"
  boot=$("$LK" init --json --data-dir "$dir")
  admin=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])' <<<"$boot")
  seed_log=$("$LK" seed-keys --data-dir "$dir" --count "$n" --keep 10000 --out "$dir/keys.txt" 2>&1)
  echo "<!-- $n keys: $seed_log -->"
  port=$(free_port)
  LATCHKEY_LOG=warn "$LK" serve --listen 127.0.0.1:$port --data-dir "$dir" >"$dir/out.log" 2>&1 &
  pids+=($!); wait_ready "http://127.0.0.1:$port"
  export LK_ADMIN_KEY=$admin LK_KEYS_FILE="$dir/keys.txt"
  one=$(head -1 "$dir/keys.txt")
  vsize=$(curl -s "http://127.0.0.1:$port/v1/verify" -H "Authorization: Bearer $admin" -H 'content-type: application/json' -d "{\"key\":\"$one\"}" | wc -c)
  msize=$(curl -s "http://127.0.0.1:$port/v1/me" -H "Authorization: Bearer $one" | wc -c)
  bport=$(free_port)
  "$BASE" 127.0.0.1:$bport "$dir/keys.txt" "$vsize" "$msize" & pids+=($!)
  sleep 0.5
  wrk_row "baseline, verify ($n keys)" "http://127.0.0.1:$bport" bench/verify.lua; b=$LAST_RPS
  wrk_row "**latchkey POST /v1/verify** ($n keys)" "http://127.0.0.1:$port" bench/verify.lua "$b"
  wrk_row "baseline, me ($n keys)" "http://127.0.0.1:$bport" bench/me.lua; b=$LAST_RPS
  wrk_row "**latchkey GET /v1/me** ($n keys)" "http://127.0.0.1:$port" bench/me.lua "$b"
  rss=$(ps -o rss= -p "${pids[-2]}")
  echo "<!-- latchkey RSS after the $n-key runs: ${rss} KiB -->"
  kill "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
done

# Cache misses and writes: a fresh server with the verification cache off.
miss_and_writes() {
  local label=$1; shift
  local dir="$work/$label"; mkdir -p "$dir"
  local boot admin port
  boot=$("$LK" init --json --data-dir "$dir" "$@")
  admin=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])' <<<"$boot")
  "$LK" seed-keys --data-dir "$dir" "$@" --count 10000 --keep 10000 --out "$dir/keys.txt" >/dev/null 2>&1
  port=$(free_port)
  LATCHKEY_LOG=warn LATCHKEY_CACHE_CAPACITY=0 "$LK" serve --listen 127.0.0.1:$port --data-dir "$dir" "$@" >"$dir/out.log" 2>&1 &
  pids+=($!); wait_ready "http://127.0.0.1:$port"
  export LK_ADMIN_KEY=$admin LK_KEYS_FILE="$dir/keys.txt"
  wrk_row "latchkey verify, cache off ($label)" "http://127.0.0.1:$port" bench/verify.lua
  wrk_row "latchkey POST /v1/keys, durable writes ($label)" "http://127.0.0.1:$port" bench/create.lua
  kill "${pids[-1]}" 2>/dev/null || true
}
miss_and_writes sqlite
if [ -n "$PG" ]; then
  db="latchkey_bench_$RANDOM$RANDOM"
  psql "$PG" -qc "CREATE DATABASE $db"
  export LATCHKEY_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(36))')
  miss_and_writes postgres --database "${PG%/*}/$db"
  psql "$PG" -qc "DROP DATABASE $db WITH (FORCE)"
fi
echo "<!-- $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $(date -u +%Y-%m-%dT%H:%MZ) -->"
