#!/usr/bin/env bash
# Soak: mixed verify / create / revoke load against one server for a long while, and whether
# its footprint stays flat. Not run by CI (it takes half an hour); run it before a release:
#
#   bench/soak.sh                 # 30 minutes, SQLite
#   DURATION=300 bench/soak.sh    # a 5-minute smoke run
#
# Seeds KEYS keys, then runs wrk verifying them (CONNECTIONS connections) while a writer loop
# creates a key, uses it, and revokes it every 50 ms. After a warm-up, and again at the end, it
# samples the server's resident memory, open file descriptors and cache entry counts
# (latchkey_cache_entries), prints both, and fails if memory or descriptors grew by more than
# 10 % or any cache grew past its bound. Traffic goes to 127.0.0.1 only, and every loop stops
# by itself at the deadline.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-1800}
WARMUP=${WARMUP:-60}
KEYS=${KEYS:-10000}
CONNECTIONS=${CONNECTIONS:-16}

# wrk from Debian: installed here when missing (as root), like .ci/run installs what tests need.
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  else
    echo "needs wrk (apt-get install wrk)" >&2; exit 1
  fi
fi
cargo build --release -q -p latchkey-server
LK=target/release/latchkey

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
boot=$("$LK" init --json --data-dir "$work")
admin=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])' <<<"$boot")
"$LK" seed-keys --data-dir "$work" --count "$KEYS" --keep "$KEYS" --out "$work/keys.txt" >/dev/null 2>&1
LATCHKEY_LOG=warn "$LK" serve --listen "127.0.0.1:$port" --data-dir "$work" >"$work/out.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 200); do curl -sf "$url/readyz" >/dev/null && break; sleep 0.05; done

# sample → "rss_kib fds key principal workspace token"
sample() {
  local rss fds metrics
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status")
  fds=$(ls "/proc/$server/fd" | wc -l)
  metrics=$(curl -s "$url/metrics")
  printf '%s %s' "$rss" "$fds"
  for kind in key principal workspace token; do
    printf ' %s' "$(awk -v k="latchkey_cache_entries{kind=\"$kind\"}" '$1==k {print $2}' <<<"$metrics")"
  done
  echo
}

deadline=$((SECONDS + WARMUP + DURATION))
writer() {
  local n=0 created id key
  while [ $SECONDS -lt $deadline ]; do
    created=$(curl -s "$url/v1/keys" -H "Authorization: Bearer $admin" \
      -H 'content-type: application/json' -d "{\"name\": \"soak $n\"}")
    id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")
    key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")
    curl -s -o /dev/null "$url/v1/me" -H "X-API-Key: $key"
    curl -s -o /dev/null -X DELETE "$url/v1/keys/$id" -H "Authorization: Bearer $admin"
    n=$((n + 1))
    sleep 0.05
  done
  echo "$n" >"$work/writes"
}
writer &
pids+=($!)

export LK_ADMIN_KEY=$admin LK_KEYS_FILE="$work/keys.txt"
wrk -t2 -c"$CONNECTIONS" -d"${WARMUP}s" -s bench/verify.lua "$url" >/dev/null
start=$(sample)
wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -s bench/verify.lua "$url" >"$work/wrk.txt"
wait "${pids[-1]}"
end=$(sample)

python3 - "$start" "$end" "$(cat "$work/writes")" "$KEYS" <<'PY'
import sys
start, end = [list(map(float, s.split())) for s in sys.argv[1:3]]
writes, keys = int(sys.argv[3]), int(sys.argv[4])
names = ["RSS (KiB)", "open files", "cached keys", "cached principals", "cached workspaces", "cached tokens"]
print("| measure | start | end | change |")
print("|---|---:|---:|---:|")
failed = []
for name, a, b in zip(names, start, end):
    change = (b - a) / a * 100 if a else 0.0
    print(f"| {name} | {a:.0f} | {b:.0f} | {change:+.1f} % |")
    if name in ("RSS (KiB)", "open files") and change > 10:
        failed.append(name)
# Keys are bounded by what exists and is in use: the seeded keys plus the writer's one.
if end[2] > keys + 10:
    failed.append("cached keys")
print(f"\nkeys created and revoked during the run: {writes}")
if failed:
    print("GREW:", ", ".join(failed))
    sys.exit(1)
PY
grep -E "Requests/sec|Non-2xx|99%" "$work/wrk.txt" || true
