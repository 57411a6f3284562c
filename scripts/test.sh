#!/usr/bin/env bash
# The test command (`make test`): formatting and lints, then the whole suite against a fresh
# moto server on a free 127.0.0.1 port, which is stopped afterwards, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VIGIL_VENV:-.venv}
if ! "$venv/bin/python" -c 'import moto, flask' 2>/dev/null; then
  echo "==> creating $venv with the AWS emulator (requirements-dev.txt)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked --quiet cargo-nextest
fi

echo "==> cargo fmt --check"
cargo fmt --all --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p target
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
"$venv/bin/python" - "$port" <<'PY'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/moto-api/data.json"
for _ in range(150):
    try:
        urllib.request.urlopen(url, timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(f"moto server did not start on port {sys.argv[1]} (see target/moto.log)")
PY
echo "==> moto server on 127.0.0.1:$port"

export VIGIL_MOTO_ENDPOINT="http://127.0.0.1:$port"
echo "==> cargo nextest run --workspace"
cargo nextest run --workspace --locked --no-fail-fast
