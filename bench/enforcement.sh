#!/usr/bin/env bash
# Enforcement in front of an API (SPEC §10.3, §10.4), beside its baselines in one run:
#
#   bench/enforcement.sh                 # 1,000 and 1,000,000 keys, median of 3 × 10 s per row
#   SIZES=1000 RUNS=1 bench/enforcement.sh
#
# The upstream is nginx answering a fixed 2-byte body. Rows, taking turns within each round:
#   nginx proxy_pass alone                                   (the floor: no authentication)
#   nginx auth_request → Latchkey /v1/forward-auth, then proxy_pass
#   latchkey gateway, embedded (same SQLite database as serve)
#   latchkey gateway, remote (asks serve, caches, follows the change stream)
# then each again at a fixed rate of half nginx proxy_pass's measured maximum, for the p99 a
# deployment sees when it is not saturated (the "vs" column is then the p99 added). Every request carries a different seeded key and
# asks for a route permission (GET /items/{id} item:{id}:read).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
RUNS=${RUNS:-3}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SIZES=${SIZES:-"1000 1000000"}

for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install wrk nginx-light)" >&2; exit 1; }
done
cargo build --release -q -p latchkey-server --bin latchkey -p latchkey-bench-baseline
LK=target/release/latchkey
PACED=target/release/paced
ROUTE='GET /items/{id} item:{id}:read'

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 400); do curl -s -o /dev/null "$1" && return; sleep 0.05; done; echo "not up: $1" >&2; exit 1; }

# run_wrk URL CONNECTIONS → "rps p50 p99 non2xx"
run_wrk() {
  wrk -t"$THREADS" -c"$2" -d2s -s bench/items.lua "$1" >/dev/null 2>&1 || true
  local out; out=$(wrk -t"$THREADS" -c"$2" -d"$DURATION" --latency -s bench/items.lua "$1")
  printf '%s %s %s %s\n' \
    "$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" \
    "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/Non-2xx/ {print $5}' <<<"$out")"
}

# rows LABEL CONNECTIONS NAME URL [NAME URL]…: RUNS rounds, scenarios taking turns; one row
# per scenario (median round by req/s), ratio to the first.
rows() {
  local label=$1 conns=$2; shift 2
  local -a names=() urls=() results=()
  while [ $# -gt 0 ]; do names+=("$1"); urls+=("$2"); shift 2; done
  for _ in $(seq "$RUNS"); do
    for i in "${!urls[@]}"; do results[$i]+="$(run_wrk "${urls[$i]}" "$conns");"; done
  done
  python3 - "$label" "${names[@]}" -- "${results[@]}" <<'PY'
import sys
label, args = sys.argv[1], sys.argv[2:]
sep = args.index("--")
names, results = args[:sep], args[sep + 1:]
base = None
for name, r in zip(names, results):
    runs = sorted((x.split() for x in r.strip(";").split(";")), key=lambda x: float(x[0]))
    rps, p50, p99, *err = runs[len(runs) // 2]
    ratio = f"{float(rps) / base:.2f}×" if base else "—"
    spread = f"{float(runs[0][0]):.0f}–{float(runs[-1][0]):.0f}"
    note = f" non-2xx: {err[0]}" if err else ""
    print(f"| {name} | {label} | {float(rps):.0f} | {p50} | {p99} | {ratio} | {spread} |{note}")
    base = base or float(rps)
PY
}

# paced_rows RATE KEYS NAME URL…: RUNS rounds at RATE req/s, scenarios taking turns; p99 and
# p99.9 against the first scenario's.
paced_rows() {
  local rate=$1 n=$2; shift 2
  local -a names=() urls=() results=()
  while [ $# -gt 0 ]; do names+=("$1"); urls+=("$2"); shift 2; done
  for _ in $(seq "$RUNS"); do
    for i in "${!urls[@]}"; do
      "$PACED" "${urls[$i]}" "$rate" 2 64 "$LK_KEYS_FILE" >/dev/null   # warm-up
      results[$i]+="$("$PACED" "${urls[$i]}" "$rate" "${DURATION%s}" 64 "$LK_KEYS_FILE");"
    done
  done
  python3 - "$rate" "$n" "${names[@]}" -- "${results[@]}" <<'PY'
import sys
rate, n, args = sys.argv[1], sys.argv[2], sys.argv[3:]
sep = args.index("--")
names, results = args[:sep], args[sep + 1:]
base = None
for name, r in zip(names, results):
    runs = sorted((x.split() for x in r.strip(";").split(";")), key=lambda x: int(x[2]))
    rps, p50, p99, p999, errs, late = runs[len(runs) // 2]
    ms = lambda us: f"{int(us) / 1000:.2f}ms"
    added = f"+{(int(p99) - base) / 1000:.2f} ms" if base is not None else "—"
    spread = f"{ms(runs[0][2])}–{ms(runs[-1][2])}"
    note = (f" non-2xx: {errs}" if errs != "0" else "") + (f" late: {late}" if late != "0" else "")
    print(f"| {name} | {rate} req/s fixed, {n} keys | {float(rps):.0f} | {ms(p50)} | {ms(p99)} (p99.9 {ms(p999)}) | {added} | p99 of the runs: {spread} |{note}")
    if base is None:
        base = int(p99)
PY
}

# The max req/s of the first scenario, from a short run: for the paced rows.
max_rps() { run_wrk "$1" "$CONNECTIONS" | awk '{print int($1)}'; }

echo "| scenario | load | req/s | p50 | p99 | vs nginx proxy_pass | req/s of the $RUNS runs |"
echo "|---|---|---:|---:|---:|---:|---:|"
for n in $SIZES; do
  dir="$work/sqlite-$n"; mkdir -p "$dir"
  boot=$("$LK" init --json --data-dir "$dir")
  admin=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_key"])' <<<"$boot")
  seed_log=$("$LK" seed-keys --data-dir "$dir" --count "$n" --keep 10000 --out "$dir/keys.txt" 2>&1)
  echo "<!-- $n keys: $seed_log -->"
  export LK_KEYS_FILE="$dir/keys.txt"

  lk=$(free_port); up=$(free_port); px=$(free_port); ar=$(free_port); gwe=$(free_port); gwr=$(free_port)
  LATCHKEY_LOG=warn "$LK" serve --listen 127.0.0.1:$lk --data-dir "$dir" --route "$ROUTE" >"$dir/serve.log" 2>&1 &
  pids+=($!); wait_http "http://127.0.0.1:$lk/readyz"

  mkdir -p "$dir/nginx"
  cat >"$dir/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir/nginx/body; proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fcgi; uwsgi_temp_path $dir/nginx/uwsgi; scgi_temp_path $dir/nginx/scgi;
  upstream api { server 127.0.0.1:$up; keepalive 128; }
  upstream latchkey { server 127.0.0.1:$lk; keepalive 128; }
  # The protected API: a fixed body.
  server { listen 127.0.0.1:$up; location / { return 200 "ok"; } }
  # nginx in front, no authentication: the floor.
  server {
    listen 127.0.0.1:$px;
    location / { proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  # nginx in front, asking Latchkey first (docs/enforcement.md, abridged to one identity header).
  server {
    listen 127.0.0.1:$ar;
    location = /_latchkey {
      internal;
      proxy_pass http://latchkey/v1/forward-auth?proxy=nginx;
      proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method \$request_method;
      proxy_set_header X-Original-URI \$request_uri;
    }
    location / {
      auth_request /_latchkey;
      auth_request_set \$lk_user \$upstream_http_x_latchkey_user_id;
      proxy_set_header X-Latchkey-User-Id \$lk_user;
      proxy_pass http://api; proxy_http_version 1.1; proxy_set_header Connection "";
    }
  }
}
CONF
  nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;' 2>"$dir/nginx/stderr" &
  pids+=($!); wait_http "http://127.0.0.1:$px/"

  LATCHKEY_LOG=warn "$LK" gateway --listen 127.0.0.1:$gwe --upstream "http://127.0.0.1:$up" \
    --data-dir "$dir" --route "$ROUTE" >"$dir/gw-embedded.log" 2>&1 &
  pids+=($!)
  LATCHKEY_LOG=warn "$LK" gateway --listen 127.0.0.1:$gwr --upstream "http://127.0.0.1:$up" \
    --latchkey-url "http://127.0.0.1:$lk" --api-key "$admin" --route "$ROUTE" >"$dir/gw-remote.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$gwe/"; wait_http "http://127.0.0.1:$gwr/"
  one=$(head -1 "$dir/keys.txt")
  for url in "http://127.0.0.1:$ar" "http://127.0.0.1:$gwe" "http://127.0.0.1:$gwr"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url/items/7" -H "Authorization: Bearer $one")
    [ "$code" = 200 ] || { echo "$url answers $code to a seeded key, not 200" >&2; tail "$dir"/*.log; exit 1; }
  done

  set -- "nginx proxy_pass alone" "http://127.0.0.1:$px" \
    "nginx auth_request → forward auth" "http://127.0.0.1:$ar" \
    "**latchkey gateway, embedded**" "http://127.0.0.1:$gwe" \
    "**latchkey gateway, remote**" "http://127.0.0.1:$gwr"
  rows "max, $n keys" "$CONNECTIONS" "$@"
  # Half of nginx proxy_pass's maximum, at a fixed rate (bench/baseline's `paced`: requests
  # leave on schedule, answered or not), for the latency a deployment sees when not saturated.
  half=$(( $(max_rps "http://127.0.0.1:$px") / 2 ))
  paced_rows "$half" "$n" "$@"
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
done
echo "<!-- $(nproc) cores, wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $RUNS runs, $(date -u +%Y-%m-%dT%H:%MZ) -->"
