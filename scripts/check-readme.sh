#!/usr/bin/env bash
# Runs the README's walkthrough verbatim against a fresh server on the embedded default, and
# fails if any step fails or the revoked key is not refused.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LATCHKEY_BIN:-target/debug/latchkey}
# The walkthrough's offline verification uses PyJWT: take it from the interop test's venv.
venv=${LATCHKEY_INTEROP_VENV:-target/interop-venv}
[ -x "$venv/bin/python3" ] && export PATH="$PWD/$venv/bin:$PATH"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --listen 127.0.0.1:$port --data-dir "$dir/data" >"$dir/out" 2>"$dir/err" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.1; done
export LK=http://127.0.0.1:$port
ADMIN_KEY=$(awk '/admin API key:/ {print $4}' "$dir/out")
export ADMIN_KEY
sed -n '/<!-- walkthrough:start -->/,/<!-- walkthrough:end -->/p' README.md | sed '/^<!--/d; /^```/d' >"$dir/walk.sh"
bash -euo pipefail "$dir/walk.sh" | tee "$dir/walk.out"
grep -q '"code": "VALID"' "$dir/walk.out"
grep -q '"code": "REVOKED"' "$dir/walk.out"
grep -q 'Invalid or missing API key' "$dir/walk.out"
grep -q 'key.revoked  by Bootstrap admin key' "$dir/walk.out"
grep -q '^verified offline: usr_' "$dir/walk.out"
grep -q '"type": "access_token"' "$dir/walk.out"
grep -qi '^x-latchkey-user-id: usr_' "$dir/walk.out"
grep -q '^forward auth: 401' "$dir/walk.out"
echo "README walkthrough: ok"
