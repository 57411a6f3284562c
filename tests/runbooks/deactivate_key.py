"""Runs the key runbook (infra/ssm/deactivate-access-key.yaml) against moto, step by step as SSM
Automation would, and prints what it changed as JSON for tests/runbooks.rs.

    python deactivate_key.py RUNBOOK.yaml        (AWS_ENDPOINT_URL: the emulator)

Moto has no SSM Automation. The runbook's steps are `aws:executeAwsApi` and
`aws:assertAwsResourceProperty` only: each is the boto3 call of its Service and Api with its
inputs ({{ parameters }} and {{ step.Output }} filled in as SSM fills them), its outputs read
with their JSONPath selectors. A step that fails ends the run as SSM would (status Failed, the
step named). It runs once, on a user with two keys of which one leaked. What the automation
role may do afterwards to that user (nothing: it is marked contained) is the permission
check's to prove, since moto evaluates no IAM policy.
"""

import json
import re
import sys
import time

import boto3
import yaml
from jsonpath_ng.ext import parse

runbook = yaml.safe_load(open(sys.argv[1]))
iam = boto3.client("iam")
suffix = str(time.time_ns())


def snake(api):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", api).lower()


def fill(value, values):
    if isinstance(value, str):
        return re.sub(r"\{\{\s*([\w.]+)\s*\}\}", lambda m: values[m.group(1)], value)
    if isinstance(value, list):
        return [fill(v, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


def run(parameters):
    """Runs every step; returns (status, failed step, error)."""
    values = dict(parameters)
    for step in runbook["mainSteps"]:
        inputs = fill(dict(step["inputs"]), values)
        client = boto3.client(inputs.pop("Service"))
        call = getattr(client, snake(inputs.pop("Api")))
        try:
            if step["action"] == "aws:executeAwsApi":
                answer = call(**inputs)
                for out in step.get("outputs", []):
                    found = [m.value for m in parse(out["Selector"]).find(answer)]
                    values[f"{step['name']}.{out['Name']}"] = found[0]
            elif step["action"] == "aws:assertAwsResourceProperty":
                selector = inputs.pop("PropertySelector")
                desired = inputs.pop("DesiredValues")
                answer = call(**inputs)
                found = [m.value for m in parse(selector).find(answer)]
                if not found or any(v not in desired for v in found):
                    return ("Failed", step["name"], f"{found} is not one of {desired}")
            else:
                return ("Failed", step["name"], f"no emulation of {step['action']}")
        except Exception as e:  # a call SSM would report as the step's failure
            return ("Failed", step["name"], str(e))
    return ("Success", None, None)


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
