//! EC2 Auto Scaling: launches and terminations, successful or not.

use super::*;

pub(super) fn scaling_activity_kind(detail_type: &str) -> Option<ScalingActivityKind> {
    Some(match detail_type {
        "EC2 Instance Launch Successful" => ScalingActivityKind::LaunchSucceeded,
        "EC2 Instance Launch Unsuccessful" => ScalingActivityKind::LaunchFailed,
        "EC2 Instance Terminate Successful" => ScalingActivityKind::TerminateSucceeded,
        "EC2 Instance Terminate Unsuccessful" => ScalingActivityKind::TerminateFailed,
        "EC2 Instance-launch Lifecycle Action" => ScalingActivityKind::LaunchLifecycleAction,
        "EC2 Instance-terminate Lifecycle Action" => ScalingActivityKind::TerminateLifecycleAction,
        _ => return None,
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(super) struct ScalingDetail {
    auto_scaling_group_name: String,
    #[serde(rename = "EC2InstanceId", default)]
    ec2_instance_id: Option<String>,
    #[serde(default)]
    status_code: Option<String>,
    #[serde(default)]
    cause: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
}

pub(super) fn scaling(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let activity = scaling_activity_kind(&ctx.detail_type)
        .ok_or_else(|| ctx.unusable("not an Auto Scaling activity"))?;
    let d: ScalingDetail = ctx.detail()?;
    let group = GroupName::parse(&d.auto_scaling_group_name)
        .map_err(|e| ctx.invalid("AutoScalingGroupName", e))?;
    let mut resource = match d.ec2_instance_id.as_deref().filter(|i| !i.is_empty()) {
        Some(i) => {
            Resource::instance(&InstanceId::parse(i).map_err(|e| ctx.invalid("EC2InstanceId", e))?)
        }
        None => Resource::new(ResourceKind::AutoScalingGroup, group.to_string()),
    };
    resource.group = Some(group);
    let status = match d.status_code.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => word(&ctx, "StatusCode", s)?,
        None => String::new(),
    };
    let at = ctx.time(d.end_time.as_deref())?;
    Ok(vec![ctx.signal(
        Source::AutoScaling,
        resource,
        at,
        SignalKind::ScalingActivity {
            activity,
            status,
            cause: display_text(d.cause.as_deref().unwrap_or(""), 1024),
        },
    )])
}
