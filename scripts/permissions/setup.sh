#!/usr/bin/env bash
# Installs what the permission check needs, once: a venv with the SAM translator
# (requirements-permissions.txt) and the IAM policy evaluator (package-lock.json).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv=${VIGIL_PERMISSIONS_VENV:-$root/.venv-permissions}
if ! "$venv/bin/python" -c 'import samtranslator, yaml' 2>/dev/null; then
  echo "==> creating $venv (requirements-permissions.txt)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$root/requirements-permissions.txt"
fi
if [[ ! -d "$here/node_modules/@cloud-copilot/iam-simulate" ]]; then
  echo "==> installing the IAM policy evaluator (scripts/permissions/package-lock.json)"
  (cd "$here" && npm ci --no-audit --no-fund --silent)
fi
