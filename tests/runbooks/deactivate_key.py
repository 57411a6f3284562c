"""Runs the key runbook (infra/ssm/deactivate-access-key.yaml) against moto, step by step as SSM
Automation would, and prints what it changed as JSON for tests/runbooks.rs.

    python deactivate_key.py RUNBOOK.yaml        (AWS_ENDPOINT_URL: the emulator)

Moto has no SSM Automation: steps.py runs the runbook's `aws:executeAwsApi` and
`aws:assertAwsResourceProperty` steps as SSM would. It runs once, on a user with two keys of
which one leaked. What the automation role may do afterwards to that user (nothing: it is
marked contained) is the permission check's to prove, since moto evaluates no IAM policy.
"""

import json
import sys
import time

import boto3
import yaml

from steps import run as run_steps

runbook = yaml.safe_load(open(sys.argv[1]))
iam = boto3.client("iam")
suffix = str(time.time_ns())


def run(parameters):
    """Runs every step (tests/runbooks/steps.py); returns (status, failed step, error)."""
    done = run_steps(runbook, parameters)
    return (done["status"], done["failed"], done["error"])


user = f"deploy-bot-{suffix}"
iam.create_user(UserName=user)
leaked = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
other = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
role = "arn:aws:iam::123456789012:role/vigil/AutomationRole"


def state():
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    tags = iam.list_user_tags(UserName=user)["Tags"]
    return {
        "keys": {k["AccessKeyId"]: k["Status"] for k in keys},
        "tags": {t["Key"]: t["Value"] for t in tags},
    }


before = state()
first = run({"AccessKeyId": leaked, "AutomationAssumeRole": role})
after = state()
print(
    json.dumps(
        {
            "leaked": leaked,
            "other": other,
            "before": before,
            "first": first,
            "after": after,
        }
    )
)
