#!/usr/bin/env bash
# Cross-node propagation, one command: three `latchkey serve` nodes on one fresh PostgreSQL
# database (shared secret), then examples/propagation.rs makes changes on node 1 and times how
# long nodes 2 and 3 take to answer differently. Prints p50/p99/max.
#
#   LATCHKEY_BENCH_PG=postgres://postgres@127.0.0.1:5432/postgres bench/propagation.sh
#   CHANGES=420 POLL_MS=60000 bench/propagation.sh      # notifications only (poll once a minute)
set -euo pipefail
cd "$(dirname "$0")/.."

PG=${LATCHKEY_BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}
CHANGES=${CHANGES:-210}
POLL_MS=${POLL_MS:-500}

cargo build --release -q -p latchkey-server --bin latchkey --example propagation
LK=target/release/latchkey

db="latchkey_propagation_$RANDOM$RANDOM"
url="${PG%/*}/$db"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$PG" -qc "CREATE DATABASE $db"
export LATCHKEY_SECRET
LATCHKEY_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(36))')
admin=$("$LK" init --json --data-dir "$work/init" --database "$url" | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])')

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
nodes=()
for i in 1 2 3; do
  port=$(free_port)
  LATCHKEY_LOG=warn LATCHKEY_CHANGE_POLL_MS=$POLL_MS "$LK" serve --listen "127.0.0.1:$port" \
    --data-dir "$work/node$i" --database "$url" >"$work/node$i.log" 2>&1 &
  pids+=($!)
  nodes+=("http://127.0.0.1:$port")
done
for n in "${nodes[@]}"; do
  for _ in $(seq 200); do curl -sf "$n/readyz" >/dev/null && break; sleep 0.05; done
done
target/release/examples/propagation --nodes "$(IFS=,; echo "${nodes[*]}")" \
  --admin-key "$admin" --changes "$CHANGES"
