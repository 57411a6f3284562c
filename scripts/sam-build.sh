#!/usr/bin/env bash
# `sam build` exactly as README.md documents it (samconfig.toml gives the builder its settings):
# every function's arm64 release artifact in .aws-sam/build. Installs SAM (the template linters'
# venv), cargo-lambda with zig and the arm64 target when missing, then reports the time taken.
set -euo pipefail
cd "$(dirname "$0")/.."
iac=${VIGIL_IAC_VENV:-.venv-iac}
if ! "$iac/bin/python" -c 'import samcli' 2>/dev/null; then
  echo "==> creating $iac with the template tools (requirements-iac.txt)"
  python3 -m venv "$iac"
  "$iac/bin/pip" install --quiet --disable-pip-version-check -r requirements-iac.txt
fi
source scripts/lambda-toolchain.sh
export SAM_CLI_TELEMETRY=0
start=$(date +%s)
"$iac/bin/sam" build --region us-east-1
for f in IngestFunction ScoreFunction DecideFunction RemediateFunction GateFunction ApproveFunction; do
  test -x ".aws-sam/build/$f/bootstrap" || { echo "sam build left no artifact for $f" >&2; exit 1; }
done
echo "==> sam build: six artifacts in $(( $(date +%s) - start )) s"
