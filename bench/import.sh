#!/usr/bin/env bash
# Importing keys issued elsewhere (SPEC §12.3), timed with its baseline in the same run:
#
#   bench/import.sh                    # 10,000 keys, 3 runs, medians; SQLite
#   LATCHKEY_BENCH_PG=postgres://postgres@127.0.0.1:5432/postgres bench/import.sh   # and PostgreSQL
#
# Each run starts a fresh release server and imports a CSV of COUNT keys through
# `latchkey keys import` (half as plaintext, half as SHA-256 hex; batches of 1,000; every item
# checked, audited and announced like a created key). The baseline is `latchkey seed-keys` on a
# fresh database: the same number of rows through the store's bulk insert with no checks, no
# audit and no HTTP, the floor any import could reach.
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-10000}
RUNS=${RUNS:-3}
PG=${LATCHKEY_BENCH_PG:-}

# LATCHKEY_BIN: a release binary built already (skips the build).
if [ -n "${LATCHKEY_BIN:-}" ]; then
  LK=$LATCHKEY_BIN
else
  cargo build --release -q -p latchkey-server
  LK=${CARGO_TARGET_DIR:-$PWD/target}/release/latchkey
fi

work=$(mktemp -d)
pids=()
dbs=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "${dbs[@]}"; do psql -q "$PG" -c "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 200); do curl -sf "$1/readyz" >/dev/null && return; sleep 0.05; done; echo "not ready: $1" >&2; cat "$2" >&2; exit 1; }
now() { date +%s.%N; }

# The CSV: one owner (the instance admin), half plaintext keys, half SHA-256 hex.
csv() {
  python3 - "$1" "$2" "$COUNT" <<'PY'
import hashlib, secrets, sys
path, owner, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "w") as f:
    f.write("name,key,sha256,owner_id,environment\n")
    for i in range(count):
        key = "legacy_live_" + secrets.token_urlsafe(24)
        if i % 2:
            f.write(f"imported {i},,{hashlib.sha256(key.encode()).hexdigest()},{owner},live\n")
        else:
            f.write(f"imported {i},{key},,{owner},live\n")
PY
}

# fresh_db DIR BACKEND → the --database flag of a fresh PostgreSQL database (nothing for SQLite,
# which lives in DIR)
fresh_db() {
  local dir=$1 backend=$2
  if [ "$backend" = postgres ]; then
    local name="lk_import_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
    psql -q "$PG" -c "CREATE DATABASE $name" >/dev/null
    dbs+=("$name")
    echo "--database ${PG%/*}/$name"
  fi
}

# One import run: seconds for `latchkey keys import` of COUNT keys.
import_run() {
  local backend=$1 dir; dir=$(mktemp -d -p "$work")
  local db; db=$(fresh_db "$dir" "$backend")
  export LATCHKEY_SECRET; LATCHKEY_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(36))')
  # shellcheck disable=SC2086
  boot=$("$LK" init --json --data-dir "$dir" $db)
  admin=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])' <<<"$boot")
  owner=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_user_id"])' <<<"$boot")
  csv "$dir/keys.csv" "$owner"
  port=$(free_port)
  # shellcheck disable=SC2086
  LATCHKEY_LOG=warn "$LK" serve --listen 127.0.0.1:$port --data-dir "$dir" $db >"$dir/out.log" 2>&1 &
  pids+=($!)
  wait_ready "http://127.0.0.1:$port" "$dir/out.log"
  local t0; t0=$(now)
  LATCHKEY_URL=http://127.0.0.1:$port LATCHKEY_API_KEY=$admin "$LK" keys import "$dir/keys.csv" --json >"$dir/summary.json"
  local t1; t1=$(now)
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); assert s["imported"]==int(sys.argv[2]) and not s["failed"], s' "$dir/summary.json" "$COUNT"
  kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
  python3 -c "print(f'{$t1-$t0:.2f}')"
}

# One baseline run: seconds for `latchkey seed-keys` of COUNT keys.
seed_run() {
  local backend=$1 dir; dir=$(mktemp -d -p "$work")
  local db; db=$(fresh_db "$dir" "$backend")
  export LATCHKEY_SECRET; LATCHKEY_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(36))')
  # shellcheck disable=SC2086
  "$LK" init --json --data-dir "$dir" $db >/dev/null
  local t0; t0=$(now)
  # shellcheck disable=SC2086
  "$LK" seed-keys --data-dir "$dir" $db --count "$COUNT" --keep 1 --out "$dir/keys.txt" >/dev/null 2>&1
  local t1; t1=$(now)
  python3 -c "print(f'{$t1-$t0:.2f}')"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

backends=(sqlite)
[ -n "$PG" ] && backends+=(postgres)
printf '| backend | %s keys | seconds (median of %s) | keys/s |\n|---|---|---|---|\n' "$COUNT" "$RUNS"
for b in "${backends[@]}"; do
  base=(); imp=()
  for _ in $(seq "$RUNS"); do base+=("$(seed_run "$b")"); imp+=("$(import_run "$b")"); done
  bs=$(printf '%s\n' "${base[@]}" | median); is=$(printf '%s\n' "${imp[@]}" | median)
  printf '| %s | baseline: `seed-keys` (bulk insert, no checks) | %s | %s |\n' "$b" "$bs" "$(python3 -c "print(round($COUNT/$bs))")"
  printf '| %s | `latchkey keys import` (CSV over HTTP) | %s | %s |\n' "$b" "$is" "$(python3 -c "print(round($COUNT/$is))")"
done
