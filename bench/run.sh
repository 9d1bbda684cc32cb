#!/usr/bin/env bash
# Latchkey's HTTP benchmark, with its baseline in the same run. One command:
#
#   bench/run.sh                      # defaults: 1,000 and 1,000,000 keys, 64 connections,
#                                     # 3 runs of 10 s per row, medians
#   DURATION=30s RUNS=5 SIZES="1000 100000" bench/run.sh
#
# Builds release binaries, seeds keys in bulk (same hashing and schema as POST /v1/keys), starts
# Latchkey (SQLite, and PostgreSQL for the cache-miss and write rows when LATCHKEY_BENCH_PG is set)
# and the baseline (a minimal hyper server: one SHA-256 and one map lookup per request, same
# response size), drives both with wrk from Debian, and prints one table.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SIZES=${SIZES:-"1000 1000000"}
PG=${LATCHKEY_BENCH_PG:-}

# wrk from Debian: installed here when missing (as root), like .ci/run installs what tests need.
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  else
    echo "needs wrk (apt-get install wrk)" >&2; exit 1
  fi
fi
cargo build --release -q -p latchkey-server -p latchkey-bench-baseline
LK=target/release/latchkey
BASE=target/release/latchkey-bench-baseline

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 200); do curl -sf "$1/readyz" >/dev/null && return; sleep 0.05; done; echo "not ready: $1" >&2; exit 1; }

# run_wrk URL SCRIPT → "rps p50 p99 non2xx" of one wrk run (after a short warm-up)
run_wrk() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$2" "$1" >/dev/null 2>&1 || true   # warm-up
  local out; out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$1")
  printf '%s %s %s %s\n' \
    "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx/ {print $5}' <<<"$out")"
}

# rows SCRIPT NAME URL [NAME URL]: RUNS rounds, the scenarios taking turns within each round (so
# drift in the machine's speed hits both alike); prints one row per scenario with the median
# round's figures (by req/s), the second scenario's ratio to the first (the baseline).
rows() {
  local script=$1; shift
  local -a names=() urls=() results=()
  while [ $# -gt 0 ]; do names+=("$1"); urls+=("$2"); shift 2; done
  for _ in $(seq "$RUNS"); do
    for i in "${!urls[@]}"; do results[$i]+="$(run_wrk "${urls[$i]}" "$script");"; done
  done
  python3 - "${names[@]}" -- "${results[@]}" <<'PY'
import sys
args = sys.argv[1:]
sep = args.index("--")
names, results = args[:sep], args[sep + 1:]
def median_run(r):
    runs = [x.split() for x in r.strip(";").split(";")]
    runs.sort(key=lambda x: float(x[0]))
    return runs[len(runs) // 2], [float(x[0]) for x in runs]
base = None
for name, r in zip(names, results):
    (rps, p50, p99, *err), all_rps = median_run(r)
    ratio = f"{float(rps) / base * 100:.0f} %" if base else "—"
    spread = f"{min(all_rps):.0f}–{max(all_rps):.0f}"
    note = f" non-2xx: {err[0]}" if err else ""
    print(f"| {name} | {float(rps):.0f} | {p50} | {p99} | {ratio} | {spread} |{note}")
    base = base or float(rps)
PY
}
echo "| scenario | req/s | p50 | p99 | vs baseline | req/s of the $RUNS runs |"
echo "|---|---:|---:|---:|---:|---:|"
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
  rows bench/verify.lua "baseline, verify ($n keys)" "http://127.0.0.1:$bport" \
    "**latchkey POST /v1/verify** ($n keys)" "http://127.0.0.1:$port"
  rows bench/me.lua "baseline, me ($n keys)" "http://127.0.0.1:$bport" \
    "**latchkey GET /v1/me** ($n keys)" "http://127.0.0.1:$port"
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
  rows bench/verify.lua "latchkey verify, cache off ($label)" "http://127.0.0.1:$port"
  rows bench/create.lua "latchkey POST /v1/keys, durable writes ($label)" "http://127.0.0.1:$port"
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
echo "<!-- $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $RUNS runs, $(date -u +%Y-%m-%dT%H:%MZ) -->"
