#!/usr/bin/env bash
# Interoperability test: starts a fresh Latchkey (target/debug/latchkey) on a free loopback port
# with a throw-away data directory, then runs tests/interop/test_interop.py -- PyJWT and Authlib,
# pinned in requirements.txt, used unchanged against the public HTTP API.
#
#   bash tests/interop/run.sh            # from anywhere
#
# LATCHKEY_INTEROP_VENV  the virtualenv to create or reuse (default: target/interop-venv)
# LATCHKEY_BIN           the server binary (default: target/debug/latchkey, built if missing)
# PYTHON                 the interpreter that creates the venv (default: python3, 3.11+)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

venv="${LATCHKEY_INTEROP_VENV:-target/interop-venv}"
bin="${LATCHKEY_BIN:-target/debug/latchkey}"

if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r tests/interop/requirements.txt

if [[ ! -x "$bin" ]]; then
  cargo build -q -p latchkey-server
fi

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -s "$tmp/server.stderr" ]]; then
    echo "--- latchkey server log (last 40 lines) ---" >&2
    tail -n 40 "$tmp/server.stderr" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="http://127.0.0.1:$port"

mkdir "$tmp/data"
# A fresh SQLite install: nothing from the caller's environment may point it elsewhere.
env -u LATCHKEY_DATABASE -u LATCHKEY_CONFIG -u LATCHKEY_TLS_CERT -u LATCHKEY_TLS_KEY -u LATCHKEY_PUBLIC_URL \
  "$bin" serve --listen "127.0.0.1:$port" --data-dir "$tmp/data" \
  >"$tmp/server.stdout" 2>"$tmp/server.stderr" &
server_pid=$!

ready=""
for _ in $(seq 1 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "latchkey serve exited before it was ready" >&2
    exit 1
  fi
  if "$venv/bin/python" - "$url/readyz" <<'PY' 2>/dev/null; then
import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
PY
    ready=1
    break
  fi
  sleep 0.1
done
if [[ -z "$ready" ]]; then
  echo "latchkey serve did not answer $url/readyz within 30 s" >&2
  exit 1
fi

admin_key="$(sed -n 's/^[[:space:]]*admin API key:[[:space:]]*//p' "$tmp/server.stdout" | head -n1 | tr -d '[:space:]')"
if [[ -z "$admin_key" ]]; then
  echo "no 'admin API key:' line in the server's first-start output" >&2
  exit 1
fi

export LATCHKEY_URL="$url"
export LATCHKEY_ADMIN_KEY="$admin_key"
rc=0
"$venv/bin/python" tests/interop/test_interop.py || rc=$?
exit "$rc"
