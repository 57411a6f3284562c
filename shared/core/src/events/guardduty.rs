//! GuardDuty Finding: a threat on an instance, an access key or a bucket.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FindingDetail {
    id: String,
    #[serde(rename = "type")]
    finding_type: String,
    severity: f64,
    #[serde(default)]
    title: String,
    #[serde(default)]
    arn: Option<String>,
    resource: FindingResource,
    #[serde(default)]
    service: Option<FindingService>,
    #[serde(default)]
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FindingResource {
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    instance_details: Option<InstanceDetails>,
    #[serde(default)]
    access_key_details: Option<AccessKeyDetails>,
    #[serde(default)]
    s3_bucket_details: Option<Vec<BucketDetails>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InstanceDetails {
    #[serde(default)]
    instance_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AccessKeyDetails {
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct BucketDetails {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FindingService {
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    resource_role: Option<String>,
    #[serde(default)]
    additional_info: Option<AdditionalInfo>,
}

#[derive(Debug, Deserialize)]
pub(super) struct AdditionalInfo {
    /// Set on the findings CreateSampleFindings makes.
    #[serde(default)]
    sample: Option<bool>,
}

pub(super) fn finding(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let d: FindingDetail = ctx.detail()?;
    if !(d.severity.is_finite() && (0.0..=10.0).contains(&d.severity)) {
        return Err(ctx.unusable(format!("severity {} is outside 0-10", d.severity)));
    }
    let finding_type = display_text(&d.finding_type, 256);
    if finding_type.trim().is_empty() {
        return Err(ctx.unusable("the finding has no type"));
    }
    let r = &d.resource;
    let resource = if let Some(id) = r
        .instance_details
        .as_ref()
        .and_then(|i| i.instance_id.as_deref())
    {
        Resource::instance(
            &InstanceId::parse(id).map_err(|e| ctx.invalid("instanceDetails.instanceId", e))?,
        )
    } else if let Some(key) = r.access_key_details.as_ref() {
        match key.access_key_id.as_deref() {
            Some(k) if access_key_id(k) => {
                let mut res = Resource::new(ResourceKind::AccessKey, k);
                res.application = None;
                res.arn = key.user_name.as_deref().map(|u| display_text(u, 128));
                res
            }
            Some(k) => {
                return Err(ctx.unusable(format!(
                    "access key id {:?} is not an access key id",
                    display_text(k, 32)
                )));
            }
            None => Resource::new(
                ResourceKind::Principal,
                display_text(key.user_name.as_deref().unwrap_or("unknown"), 128),
            ),
        }
    } else if let Some(b) = r.s3_bucket_details.as_ref().and_then(|b| b.first()) {
        Resource::new(
            ResourceKind::Other,
            display_text(b.name.as_deref().unwrap_or("bucket"), 255),
        )
        .with_arn(b.arn.as_deref().map(|a| display_text(a, 2048)))
    } else {
        Resource::new(ResourceKind::Other, display_text(&r.resource_type, 64))
            .with_arn(d.arn.as_deref().map(|a| display_text(a, 2048)))
    };
    // A member account's finding, received by the delegated administrator: about a resource
    // in that account, which Vigil does not act on.
    let mut resource = resource;
    if let Some(member) = event
        .detail
        .get("accountId")
        .and_then(Value::as_str)
        .filter(|a| event.account.as_deref().is_some_and(|own| own != *a))
    {
        if !(member.len() == 12 && member.bytes().all(|b| b.is_ascii_digit())) {
            return Err(ctx.unusable(format!(
                "accountId {:?} is not an account id",
                display_text(member, 32)
            )));
        }
        resource.account = Some(member.to_owned());
    }
    let observed_at = ctx.time(d.updated_at.as_deref())?;
    let service = d.service.as_ref();
    let mut signal = ctx.signal(
        Source::GuardDuty,
        resource,
        observed_at,
        SignalKind::Finding {
            finding_id: display_text(&d.id, 128),
            finding_type,
            severity: d.severity,
            title: display_text(&d.title, 512),
            archived: service.and_then(|s| s.archived).unwrap_or(false),
            count: service.and_then(|s| s.count).unwrap_or(1),
            resource_role: service
                .and_then(|s| s.resource_role.as_deref())
                .map(|r| display_text(r, 16).to_ascii_uppercase()),
            sample: service
                .and_then(|s| s.additional_info.as_ref())
                .and_then(|a| a.sample)
                .unwrap_or(false),
        },
    );
    signal.values.insert("severity".into(), d.severity);
    Ok(vec![signal])
}
