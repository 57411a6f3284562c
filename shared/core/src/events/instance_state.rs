//! EC2 Instance State-change Notification.

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct InstanceStateDetail {
    #[serde(rename = "instance-id")]
    instance_id: String,
    state: String,
}

pub(super) fn instance_state(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let d: InstanceStateDetail = ctx.detail()?;
    let id = InstanceId::parse(&d.instance_id).map_err(|e| ctx.invalid("instance-id", e))?;
    let state = word(&ctx, "state", &d.state)?;
    let at = ctx.time(None)?;
    Ok(vec![ctx.signal(
        Source::Ec2,
        Resource::instance(&id).with_arn(ctx.first_resource_arn()),
        at,
        SignalKind::InstanceStateChange { state },
    )])
}
