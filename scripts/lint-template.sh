#!/usr/bin/env bash
# The template gates: `sam validate --lint`, cfn-lint, and checkov with zero failed checks
# (every suppression is justified inline in template.yaml), on the stack's template and on the
# member stack's (infra/member.yaml). Offline.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VIGIL_IAC_VENV:-.venv-iac}
if ! "$venv/bin/python" -c 'import checkov, cfnlint, samcli' 2>/dev/null; then
  echo "==> creating $venv with the template linters (requirements-iac.txt)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r requirements-iac.txt
fi
export SAM_CLI_TELEMETRY=0
echo "==> sam validate --lint"
"$venv/bin/sam" validate --lint --region us-east-1
echo "==> cfn-lint"
"$venv/bin/cfn-lint" template.yaml infra/member.yaml
echo "==> checkov"
"$venv/bin/checkov" -f template.yaml -f infra/member.yaml --framework cloudformation --skip-download --compact --quiet
python3 -c "import json; [json.load(open(f)) for f in ('infra/statemachine.asl.json', 'infra/remediation.asl.json', 'infra/pull.asl.json')]"
