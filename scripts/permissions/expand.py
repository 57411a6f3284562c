"""The template as CloudFormation would deploy it, for the permission check.

Runs the SAM transform (the same translator `sam deploy` uses), then resolves the intrinsic
functions (Ref, Fn::GetAtt, Fn::Sub, Fn::If and the conditions, Fn::Join, Fn::Select,
Fn::Split) for the given parameter values, with physical names and ARNs in the form
CloudFormation gives them. Prints one JSON document: the resolved resources, each with its
physical id and ARN, and the permission table (infra/permissions.yaml).

    python expand.py TEMPLATE TABLE [Name=Value ...]
"""

import json
import os
import re
import sys

import yaml
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

PARTITION, REGION, ACCOUNT, STACK = "aws", "us-east-1", "123456789012", "vigil"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0f6a1f40-0000-4000-8000-000000000000"
PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::StackName": STACK,
    "AWS::StackId": STACK_ID,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


class NoManagedPolicies:
    """The translator asks for AWS managed policies by name; the template gives them by ARN."""

    def load(self):
        return {}


def generated(logical, limit=64):
    """A name the way CloudFormation generates one: stack, logical id, a random suffix."""
    return f"{STACK}-{logical}-ABCDEF123456"[:limit]


# Per resource type: the property that names it, CloudFormation's length limit for a generated
# name, and the forms of its Ref and its ARN ({name}, {path}, {arn} and the pseudo parameters).
FORMS = {
    "AWS::IAM::Role": ("RoleName", 64, "{name}", "arn:{p}:iam::{a}:role{path}{name}"),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", 128, "{arn}", "arn:{p}:iam::{a}:policy{path}{name}"),
    "AWS::Lambda::Function": ("FunctionName", 64, "{name}", "arn:{p}:lambda:{r}:{a}:function:{name}"),
    "AWS::SNS::Topic": ("TopicName", 256, "{arn}", "arn:{p}:sns:{r}:{a}:{name}"),
    "AWS::SQS::Queue": ("QueueName", 80, "https://sqs.{r}.amazonaws.com/{a}/{name}", "arn:{p}:sqs:{r}:{a}:{name}"),
    "AWS::DynamoDB::Table": ("TableName", 255, "{name}", "arn:{p}:dynamodb:{r}:{a}:table/{name}"),
    "AWS::S3::Bucket": ("BucketName", 63, "{name}", "arn:{p}:s3:::{name}"),
    "AWS::SSM::Parameter": ("Name", 64, "{name}", "arn:{p}:ssm:{r}:{a}:parameter/{bare}"),
    "AWS::SSM::Document": ("Name", 64, "{name}", "arn:{p}:ssm:{r}:{a}:document/{name}"),
    "AWS::KMS::Key": (None, 0, "{name}", "arn:{p}:kms:{r}:{a}:key/{name}"),
    "AWS::StepFunctions::StateMachine": ("StateMachineName", 80, "{arn}", "arn:{p}:states:{r}:{a}:stateMachine:{name}"),
    "AWS::Logs::LogGroup": ("LogGroupName", 512, "{name}", "arn:{p}:logs:{r}:{a}:log-group:{name}:*"),
    "AWS::Events::Rule": ("Name", 64, "{name}", "arn:{p}:events:{r}:{a}:rule/{name}"),
    "AWS::Lambda::Url": (None, 0, "{name}", "https://{name}.lambda-url.{r}.on.aws/"),
}
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"


def physical(logical, resource):
    """(Ref value, ARN) of a resource, by type, as CloudFormation returns them."""
    kind = resource["Type"]
    props = resource.get("Properties", {})
    naming, limit, ref, arn = FORMS.get(
        kind, ("Name", 64, "{name}", "arn:{p}:unknown:{r}:{a}:{name}")
    )
    if kind == "AWS::KMS::Key":
        name = KEY_ID
    elif kind == "AWS::Lambda::Url":
        name = logical.lower()
    else:
        name = props.get(naming) or generated(logical, limit)
    if kind == "AWS::S3::Bucket":
        name = name.lower()
    fields = {
        "p": PARTITION, "r": REGION, "a": ACCOUNT, "name": name,
        "bare": name.lstrip("/"), "path": props.get("Path", "/"),
    }
    full = arn.format(**fields)
    return ref.format(arn=full, **fields), full


def attribute(logical, resource, name):
    ref, arn = physical(logical, resource)
    kind = resource["Type"]
    if name == "Arn":
        return arn
    if kind == "AWS::SQS::Queue" and name == "QueueName":
        return arn.rsplit(":", 1)[1]
    if kind == "AWS::SNS::Topic" and name == "TopicName":
        return arn.rsplit(":", 1)[1]
    if kind == "AWS::Lambda::Url" and name == "FunctionUrl":
        return arn
    if kind == "AWS::Lambda::Version" and name == "Version":
        return "1"
    if kind == "AWS::IAM::Role" and name == "RoleId":
        return "AROAEXAMPLEROLEID0001"
    if kind == "AWS::KMS::Key" and name == "KeyId":
        return ref
    if name in ("Name", "StateMachineName"):
        return ref.rsplit(":", 1)[-1]
    raise SystemExit(f"Fn::GetAtt {logical}.{name}: not modelled by the permission check")


class Resolver:
    def __init__(self, template, parameters):
        self.resources = template.get("Resources", {})
        self.values = dict(PSEUDO)
        for name, spec in template.get("Parameters", {}).items():
            value = parameters.get(name, spec.get("Default"))
            if value is None:
                raise SystemExit(f"parameter {name} has no default: give it as {name}=VALUE")
            if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
                value = [v.strip() for v in value.split(",")]
            self.values[name] = value
        self.conditions = template.get("Conditions", {})
        self.decided = {}

    def condition(self, name):
        if name not in self.decided:
            self.decided[name] = bool(self.resolve(self.conditions[name]))
        return self.decided[name]

    def named(self, logical):
        """The resource with the properties that make its name resolved."""
        resource = self.resources[logical]
        props = resource.get("Properties", {})
        named = {k: self.resolve(props[k]) for k in NAMING if k in props}
        return {"Type": resource["Type"], "Properties": named}

    def ref(self, name):
        if name in self.values:
            return self.values[name]
        if name in self.resources:
            return physical(name, self.named(name))[0]
        raise SystemExit(f"Ref {name}: no such parameter or resource")

    def sub(self, text, local):
        def one(match):
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in local:
                return str(local[token])
            if "." in token:
                logical, attr = token.split(".", 1)
                return str(attribute(logical, self.named(logical), attr))
            value = self.ref(token)
            return ",".join(value) if isinstance(value, list) else str(value)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node):
        if isinstance(node, list):
            out = [self.resolve(v) for v in node]
            return [v for v in out if v is not NOVALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                value = self.ref(arg)
                return NOVALUE if value is None else value
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return attribute(logical, self.named(logical), attr)
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, local = arg
                return self.sub(text, {k: self.resolve(v) for k, v in local.items()})
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return self.resolve(text).split(sep)
            if key.startswith("Fn::"):
                raise SystemExit(f"{key}: not modelled by the permission check")
        out = {}
        for k, v in node.items():
            value = self.resolve(v)
            if value is not NOVALUE:
                out[k] = value
        return out


NOVALUE = object()
NAMING = (
    "RoleName", "Path", "ManagedPolicyName", "FunctionName", "TopicName", "QueueName",
    "TableName", "BucketName", "Name", "StateMachineName", "LogGroupName",
)


def main():
    os.environ["AWS_DEFAULT_REGION"] = REGION
    template_path, table_path, *pairs = sys.argv[1:]
    parameters = dict(p.split("=", 1) for p in pairs)
    with open(template_path) as f:
        template = yaml_parse(f.read())
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            props["CodeUri"] = "s3://artifacts/function.zip"
        if resource.get("Type") == "AWS::Serverless::StateMachine" and "DefinitionUri" in props:
            props["DefinitionUri"] = "s3://artifacts/statemachine.json"
    given = {k: parameters.get(k, v.get("Default")) for k, v in template.get("Parameters", {}).items()}
    given.update(PSEUDO)
    try:
        expanded = transform(template, given, NoManagedPolicies())
    except InvalidDocumentException as e:
        raise SystemExit(f"the SAM transform refused the template: {e}") from None
    resolver = Resolver(expanded, parameters)
    resources = {}
    for logical, resource in expanded["Resources"].items():
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        resolved = resolver.resolve(resource)
        ref, arn = physical(logical, resolved)
        resolved["Ref"], resolved["Arn"] = ref, arn
        resources[logical] = resolved
    with open(table_path) as f:
        table = yaml.safe_load(f)
    json.dump(
        {
            "partition": PARTITION,
            "region": REGION,
            "account": ACCOUNT,
            "parameters": {k: resolver.values[k] for k in template.get("Parameters", {})},
            "resources": resources,
            "table": table,
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
