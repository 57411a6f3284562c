#!/usr/bin/env bash
# The permission check: the template expanded as CloudFormation would deploy it (SAM transform,
# intrinsics resolved for the default parameters and one member account), then every row of infra/permissions.yaml
# evaluated with an IAM policy evaluator. Usage: run.sh [TEMPLATE [TABLE]] [NAME=VALUE...]
# [--markdown] (NAME=VALUE: the template's parameters, beside the defaults).
# Needs the venv and node_modules that `scripts/permissions/setup.sh` makes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
args=()
flags=()
params=()
for a in "$@"; do
  if [[ "$a" == --* ]]; then flags+=("$a"); elif [[ "$a" == *=* ]]; then params+=("$a"); else args+=("$a"); fi
done
template=${args[0]:-$root/template.yaml}
table=${args[1]:-$root/infra/permissions.yaml}
python=${VIGIL_PERMISSIONS_VENV:-$root/.venv-permissions}/bin/python
if [[ ${#params[@]} -eq 0 ]]; then params=(AlertEmail=alerts@example.com MemberAccounts=222222222222); fi
"$python" "$here/expand.py" "$template" "$table" "${params[@]}" >"${TMPDIR:-/tmp}/vigil-expanded.$$.json"
trap 'rm -f "${TMPDIR:-/tmp}/vigil-expanded.$$.json"' EXIT
node "$here/check.mjs" "${flags[@]}" <"${TMPDIR:-/tmp}/vigil-expanded.$$.json"
