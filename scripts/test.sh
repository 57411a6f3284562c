#!/usr/bin/env bash
# The test command (`make test`): formatting and lints, then the whole suite against fresh AWS
# emulators (moto server, and ministack for CloudWatch) on free 127.0.0.1 ports, which are
# stopped afterwards, also on failure. `scripts/test.sh e2e` (`make e2e`) runs the end-to-end
# suite instead: the built function binaries behind `cargo lambda watch`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Two emulators, each in a venv of its own: moto for most services, ministack for CloudWatch.
venv=${VIGIL_VENV:-.venv}
cw_venv=${VIGIL_CLOUDWATCH_VENV:-.venv-cloudwatch}
if ! "$venv/bin/python" -c 'import moto, flask, awscli' 2>/dev/null; then
  echo "==> creating $venv with moto (requirements-dev.txt)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-dev.txt
fi
if ! "$cw_venv/bin/python" -c 'import ministack, cbor2' 2>/dev/null; then
  echo "==> creating $cw_venv with ministack (requirements-cloudwatch.txt)"
  python3 -m venv "$cw_venv"
  "$cw_venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-cloudwatch.txt
fi
# The permission check's IAM policy evaluator and template expansion (tests/permissions.rs).
./scripts/permissions/setup.sh
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked --quiet cargo-nextest
fi

if [[ "${1:-}" != "e2e" ]]; then
  echo "==> cargo fmt --check"
  cargo fmt --all --check
  echo "==> cargo clippy"
  cargo clippy --workspace --all-targets --features vigil-tests/e2e --locked -- -D warnings
fi

free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # URL LOG
  "$venv/bin/python" - "$1" "$2" <<'PY'
import sys, time, urllib.request, urllib.error
for _ in range(150):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(f"{sys.argv[1]} did not answer (see {sys.argv[2]})")
PY
}
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
mkdir -p target

port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$port/moto-api/data.json" target/moto.log
echo "==> moto server on 127.0.0.1:$port"

cw_port=$(free_port)
BIND_HOST=127.0.0.1 GATEWAY_PORT=$cw_port "$cw_venv/bin/ministack" >target/ministack.log 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$cw_port/" target/ministack.log
echo "==> ministack (CloudWatch) on 127.0.0.1:$cw_port"

export VIGIL_MOTO_ENDPOINT="http://127.0.0.1:$port"
export VIGIL_CLOUDWATCH_ENDPOINT="http://127.0.0.1:$cw_port"
# The collector's test ships its lines with this CLI, as instances do.
export VIGIL_AWS_CLI="$PWD/$venv/bin/aws"
if [[ "${1:-}" == "e2e" ]]; then
  if ! "$venv/bin/cargo-lambda" lambda --version >/dev/null 2>&1; then
    echo "==> installing cargo-lambda into $venv (requirements-e2e.txt)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-e2e.txt
  fi
  export PATH="$PWD/$venv/bin:$PATH"
  echo "==> cargo nextest run -p vigil-tests --features e2e --test e2e"
  cargo nextest run -p vigil-tests --features e2e --test e2e --locked --no-fail-fast --test-threads 1
  exit
fi
echo "==> cargo nextest run --workspace"
cargo nextest run --workspace --locked --no-fail-fast
