#!/usr/bin/env bash
# The permission check: the template expanded as CloudFormation would deploy it (SAM transform,
# intrinsics resolved for the default parameters), then every row of infra/permissions.yaml
# evaluated with an IAM policy evaluator. Usage: run.sh [TEMPLATE [TABLE]] [--markdown]
# Needs the venv and node_modules that `scripts/permissions/setup.sh` makes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
args=()
flags=()
for a in "$@"; do
  if [[ "$a" == --* ]]; then flags+=("$a"); else args+=("$a"); fi
done
template=${args[0]:-$root/template.yaml}
table=${args[1]:-$root/infra/permissions.yaml}
python=${VIGIL_PERMISSIONS_VENV:-$root/.venv-permissions}/bin/python
"$python" "$here/expand.py" "$template" "$table" AlertEmail=alerts@example.com >"${TMPDIR:-/tmp}/vigil-expanded.$$.json"
trap 'rm -f "${TMPDIR:-/tmp}/vigil-expanded.$$.json"' EXIT
node "$here/check.mjs" "${flags[@]}" <"${TMPDIR:-/tmp}/vigil-expanded.$$.json"
