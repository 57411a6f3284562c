#!/usr/bin/env bash
# Regenerates the gate tests' SARIF fixtures with a real scanner run (checkov -o sarif):
#   checkov.template.sarif  the project's own template.yaml (every finding suppressed in source)
#   checkov.insecure.sarif  a deliberately insecure template (ten failed checks)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$(realpath "${VIGIL_IAC_VENV:-.venv-iac}")
out=fixtures/sarif
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
scan() {
  # checkov exits 1 when checks fail; that is the point of the insecure template.
  "$venv/bin/checkov" -f "$1" --framework cloudformation --skip-download --quiet \
    -o sarif --output-file-path "$tmp" >/dev/null || true
  mv "$tmp/results_sarif.sarif" "$2"
}
scan template.yaml "$out/checkov.template.sarif"
(cd "$out" && scan insecure-template.yaml checkov.insecure.sarif)
echo "wrote $out/checkov.template.sarif and $out/checkov.insecure.sarif"
