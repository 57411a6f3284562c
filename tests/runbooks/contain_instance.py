"""Runs the containment runbook's script (infra/ssm/contain-instance.yaml) against moto, as SSM
Automation would run its one step, and prints what it changed as JSON for tests/runbooks.rs.

    python contain_instance.py RUNBOOK.yaml        (AWS_ENDPOINT_URL: the emulator)

Moto has no SSM Automation: the step's Python runs here, with boto3 pointed at the emulator by
AWS_ENDPOINT_URL, on an instance of a watched Auto Scaling group built for the purpose.
"""

import json
import sys
import time

import boto3
import yaml

runbook = yaml.safe_load(open(sys.argv[1]))
step = runbook["mainSteps"][0]["inputs"]
script = {}
exec(compile(step["Script"], "contain-instance", "exec"), script)
handler = script[step["Handler"]]

ec2 = boto3.client("ec2")
autoscaling = boto3.client("autoscaling")
suffix = str(time.time_ns())

vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
web = ec2.create_security_group(GroupName=f"web-{suffix}", Description="web", VpcId=vpc)["GroupId"]
image = ec2.describe_images()["Images"][0]["ImageId"]
template = f"web-{suffix}"
ec2.create_launch_template(
    LaunchTemplateName=template,
    LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro", "SecurityGroupIds": [web]},
)
group = f"web-{suffix}"
autoscaling.create_auto_scaling_group(
    AutoScalingGroupName=group,
    LaunchTemplate={"LaunchTemplateName": template},
    MinSize=1,
    MaxSize=3,
    DesiredCapacity=2,
    VPCZoneIdentifier=subnet,
    Tags=[{"Key": "vigil:watch", "Value": "true", "PropagateAtLaunch": True}],
)
members = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])
instance = members["AutoScalingGroups"][0]["Instances"][0]["InstanceId"]


def state():
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    groups = [g["GroupId"] for g in described.get("SecurityGroups", [])]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": groups}])
    protected = ec2.describe_instance_attribute(InstanceId=instance, Attribute="disableApiTermination")
    snapshots = ec2.describe_snapshots(Filters=[{"Name": "tag:vigil:quarantine", "Values": [instance]}])
    group_now = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]
    marked = ec2.describe_security_groups(GroupIds=groups)["SecurityGroups"] if groups else []
    return {
        "groups": groups,
        "group_marks": [{t["Key"]: t["Value"] for t in g.get("Tags", [])}.get("vigil:quarantine") for g in marked],
        "rules": len(rules["SecurityGroupRules"]),
        "termination_disabled": protected["DisableApiTermination"]["Value"],
        "tags": {t["Key"]: t["Value"] for t in described.get("Tags", [])},
        "snapshots": len(snapshots["Snapshots"]),
        "in_group": instance in [i["InstanceId"] for i in group_now["Instances"]],
        "desired": group_now["DesiredCapacity"],
    }


before = state()
first = handler({"InstanceId": instance}, None)
after = state()
second = handler({"InstanceId": instance}, None)
again = state()
print(json.dumps({
    "instance": instance,
    "original_group": web,
    "before": before,
    "first": first,
    "after": after,
    "second": second,
    "again": again,
}))
