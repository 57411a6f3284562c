"""What tests/undo.rs needs of the emulator beside Vigil's own calls (moto has no SSM
Automation, and Vigil's code has no EC2 or IAM client: the runbooks make those calls).

    python undo.py contain                  an instance of a watched group, isolated by the
                                            containment runbook; prints its ids and state
    python undo.py deactivate               a user with two keys, one deactivated by the key
                                            runbook; prints the keys and the user's state
    python undo.py run RUNBOOK PARAMETERS   runs infra/ssm/RUNBOOK with the JSON PARAMETERS (as
                                            Vigil's StartAutomationExecution passed them);
                                            prints the run and the state after it
    python undo.py instance ID | user NAME  the state of an instance or a user

(AWS_ENDPOINT_URL: the emulator.)
"""

import json
import os
import sys
import time

import boto3
import yaml

from steps import run

HERE = os.path.dirname(os.path.abspath(__file__))
ec2 = boto3.client("ec2")
iam = boto3.client("iam")
autoscaling = boto3.client("autoscaling")
suffix = str(time.time_ns())
ROLE = "arn:aws:iam::123456789012:role/vigil/AutomationRole"


def runbook(name):
    return yaml.safe_load(open(os.path.join(HERE, "..", "..", "infra", "ssm", name)))


def instance_state(instance):
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    groups = [g["GroupId"] for g in described.get("SecurityGroups", [])]
    protected = ec2.describe_instance_attribute(InstanceId=instance, Attribute="disableApiTermination")
    snapshots = ec2.describe_snapshots(Filters=[{"Name": "tag:vigil:quarantine", "Values": [instance]}])
    marked = ec2.describe_security_groups(Filters=[{"Name": "tag:vigil:quarantine", "Values": [instance]}])
    return {
        "groups": groups,
        "termination_disabled": protected["DisableApiTermination"]["Value"],
        "tags": {t["Key"]: t["Value"] for t in described.get("Tags", [])},
        "snapshots": len(snapshots["Snapshots"]),
        "quarantine_groups": len(marked["SecurityGroups"]),
    }


def user_state(user):
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    tags = iam.list_user_tags(UserName=user)["Tags"]
    return {
        "keys": {k["AccessKeyId"]: k["Status"] for k in keys},
        "tags": {t["Key"]: t["Value"] for t in tags},
    }


def contain():
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
    web = ec2.create_security_group(GroupName=f"web-{suffix}", Description="web", VpcId=vpc)["GroupId"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName=f"web-{suffix}",
        LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro", "SecurityGroupIds": [web]},
    )
    group = f"web-{suffix}"
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group,
        LaunchTemplate={"LaunchTemplateName": f"web-{suffix}"},
        MinSize=1,
        MaxSize=3,
        DesiredCapacity=2,
        VPCZoneIdentifier=subnet,
        Tags=[{"Key": "vigil:watch", "Value": "true", "PropagateAtLaunch": True}],
    )
    members = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    instance = members["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    before = instance_state(instance)
    contained = run(runbook("contain-instance.yaml"), {"InstanceId": instance, "AutomationAssumeRole": ROLE})
    return {"instance": instance, "group": group, "original_group": web, "before": before,
            "run": contained, "after": instance_state(instance)}


def deactivate():
    user = f"deploy-bot-{suffix}"
    iam.create_user(UserName=user)
    leaked = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    other = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    done = run(runbook("deactivate-access-key.yaml"), {"AccessKeyId": leaked, "AutomationAssumeRole": ROLE})
    return {"user": user, "leaked": leaked, "other": other, "run": done, "after": user_state(user)}


def run_runbook(name, parameters):
    parameters = json.loads(parameters)
    # As StartAutomationExecution passes them: each parameter a list of one value.
    flat = {k: v[0] if isinstance(v, list) else v for k, v in parameters.items()}
    return {"run": run(runbook(name), flat)}


command = sys.argv[1]
if command == "contain":
    out = contain()
elif command == "deactivate":
    out = deactivate()
elif command == "run":
    out = run_runbook(sys.argv[2], sys.argv[3])
elif command == "instance":
    out = instance_state(sys.argv[2])
elif command == "user":
    out = user_state(sys.argv[2])
else:
    raise SystemExit(f"unknown command {command}")
print(json.dumps(out, default=str))
