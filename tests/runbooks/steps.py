"""Runs an SSM Automation runbook's steps against moto, as SSM Automation would (moto has none).

    run(runbook, parameters) -> {"status", "failed", "error", "outputs"}

`aws:executeScript` runs the step's Python handler with its InputPayload; `aws:executeAwsApi`
and `aws:assertAwsResourceProperty` make the boto3 call of their Service and Api with their
inputs. {{ parameters }} and {{ step.Output }} are filled in as SSM fills them, outputs read
with their JSONPath selectors. A step that fails ends the run as SSM would: status Failed, the
step named, nothing after it run. boto3 reaches the emulator through AWS_ENDPOINT_URL.
"""

import re

import boto3
from jsonpath_ng.ext import parse


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


def outputs(step, answer, values):
    for out in step.get("outputs", []):
        found = [m.value for m in parse(out["Selector"]).find(answer)]
        values[f"{step['name']}.{out['Name']}"] = found[0] if found else None


def script(step, inputs):
    code = {}
    exec(compile(inputs["Script"], step["name"], "exec"), code)
    return {"Payload": code[inputs["Handler"]](inputs.get("InputPayload", {}), None)}


def run(runbook, parameters):
    values = dict(parameters)
    for step in runbook["mainSteps"]:
        action = step["action"]
        try:
            if action == "aws:executeScript":
                answer = script(step, fill(dict(step["inputs"]), values))
                outputs(step, answer, values)
                continue
            inputs = fill(dict(step["inputs"]), values)
            client = boto3.client(inputs.pop("Service"))
            call = getattr(client, snake(inputs.pop("Api")))
            if action == "aws:executeAwsApi":
                outputs(step, call(**inputs), values)
            elif action == "aws:assertAwsResourceProperty":
                selector = inputs.pop("PropertySelector")
                desired = inputs.pop("DesiredValues")
                found = [m.value for m in parse(selector).find(call(**inputs))]
                if not found or any(v not in desired for v in found):
                    return {"status": "Failed", "failed": step["name"],
                            "error": f"{found} is not one of {desired}", "outputs": values}
            else:
                return {"status": "Failed", "failed": step["name"],
                        "error": f"no emulation of {action}", "outputs": values}
        except Exception as e:  # a call SSM would report as the step's failure
            return {"status": "Failed", "failed": step["name"], "error": str(e), "outputs": values}
    return {"status": "Success", "failed": None, "error": None, "outputs": values}
