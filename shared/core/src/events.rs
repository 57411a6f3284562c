//! EventBridge events in, signals out: the normalisation that `ingest` (and `vigil replay`) run.
//!
//! Dispatch is on `source` and `detail-type` first (never on whether a detail happens to parse),
//! then the detail is parsed strictly into Vigil's own structs. An unknown detail-type is
//! ignored with a reason; a malformed known event is a typed error. Neither acts.

use std::collections::BTreeMap;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::{
    AlarmState, ApiCall, Principal, Resource, ResourceKind, ScalingActivityKind, Signal,
    SignalKind, Source,
};
use crate::names::{GroupName, InstanceId, NameError, display_text};

/// The envelope every EventBridge event arrives in.
pub type Envelope = EventBridgeEvent<Value>;

/// EventBridge's own limit on an event's size; anything larger did not come from EventBridge.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Longest alarm name / reason kept from an event (CloudWatch's own limits are 255 / 1023).
const MAX_ALARM_NAME: usize = 255;
const MAX_REASON: usize = 1023;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("event is {size} bytes, above the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("event is not an EventBridge envelope")]
    Envelope(#[source] serde_json::Error),
    #[error("event has no id, so it cannot be de-duplicated")]
    MissingId,
    #[error("{detail_type:?} event {event_id} has a malformed detail")]
    Detail {
        detail_type: String,
        event_id: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{detail_type:?} event {event_id}: {what} is invalid")]
    Invalid {
        detail_type: String,
        event_id: String,
        what: &'static str,
        #[source]
        source: NameError,
    },
    /// The event speaks of another account than the one it came from (or than the stack's):
    /// a name like a user or a key means something else there, so nothing is done.
    #[error("{detail_type:?} event {event_id} is about account {claimed}, not {account}")]
    WrongAccount {
        detail_type: String,
        event_id: String,
        claimed: String,
        account: String,
    },
    #[error("{detail_type:?} event {event_id}: {what}")]
    Unusable {
        detail_type: String,
        event_id: String,
        what: String,
    },
}

/// Why an event produced no signal, without being an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// A source/detail-type pair Vigil does not know.
    UnknownDetailType { source: String, detail_type: String },
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ignored::UnknownDetailType {
                source,
                detail_type,
            } => write!(
                f,
                "unknown event {:?} from {:?}",
                display_text(detail_type, 128),
                display_text(source, 128)
            ),
        }
    }
}

/// What normalising one event produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalised {
    Signals(Vec<Signal>),
    /// The scheduled event: time to pull the watched resources' metrics.
    Tick {
        at: DateTime<Utc>,
    },
    Ignored(Ignored),
}

/// Parses raw bytes into an envelope, refusing oversized input before parsing it.
pub fn parse_envelope(bytes: &[u8]) -> Result<Envelope, EventError> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size: bytes.len(),
            max: MAX_EVENT_BYTES,
        });
    }
    serde_json::from_slice(bytes).map_err(EventError::Envelope)
}

/// The accounts an event says it is about: the detail's `accountId` (GuardDuty) and
/// `recipientAccountId` (CloudTrail), and the account field of each resource ARN. A GuardDuty
/// finding's `accountId` is left out: a delegated administrator receives its members'
/// findings in its own account, and [`finding`] marks them.
fn claimed_accounts(event: &Envelope) -> Vec<&str> {
    let keys: &[&str] = if event.source == "aws.guardduty" {
        &["recipientAccountId"]
    } else {
        &["accountId", "recipientAccountId"]
    };
    let mut out: Vec<&str> = keys
        .iter()
        .filter_map(|k| event.detail.get(*k).and_then(Value::as_str))
        .collect();
    for arn in event.resources.iter().flatten() {
        // arn:partition:service:region:account:resource; S3 ARNs leave the account empty.
        if let Some(account) = arn.split(':').nth(4).filter(|a| !a.is_empty()) {
            out.push(account);
        }
    }
    out
}

/// Refuses an event about another account than the envelope's own.
pub fn check_account(event: &Envelope, account: &str) -> Result<(), EventError> {
    match claimed_accounts(event).into_iter().find(|c| *c != account) {
        None => Ok(()),
        Some(claimed) => Err(EventError::WrongAccount {
            detail_type: display_text(&event.detail_type, 128),
            event_id: event_id(event).unwrap_or_default(),
            claimed: display_text(claimed, 32),
            account: display_text(account, 32),
        }),
    }
}

/// Turns one EventBridge event into signals.
pub fn normalise(event: &Envelope) -> Result<Normalised, EventError> {
    let detail_type = event.detail_type.as_str();
    if let Some(account) = event.account.as_deref() {
        check_account(event, account)?;
    }
    let signals = match (event.source.as_str(), detail_type) {
        ("aws.cloudwatch", "CloudWatch Alarm State Change") => alarm(event)?,
        ("aws.guardduty", "GuardDuty Finding") => finding(event)?,
        ("aws.signin", "AWS Console Sign In via CloudTrail") => cloudtrail(event)?,
        (s, "AWS API Call via CloudTrail") if s.starts_with("aws.") => cloudtrail(event)?,
        ("aws.ec2", "EC2 Instance State-change Notification") => instance_state(event)?,
        ("aws.autoscaling", d) if scaling_activity_kind(d).is_some() => scaling(event)?,
        ("aws.health", "AWS Health Event") => health(event)?,
        (
            "aws.codepipeline",
            "CodePipeline Pipeline Execution State Change"
            | "CodePipeline Stage Execution State Change"
            | "CodePipeline Action Execution State Change",
        ) => deployment(event)?,
        ("aws.events", "Scheduled Event") => {
            let at = event.time.ok_or_else(|| EventError::Unusable {
                detail_type: detail_type.to_owned(),
                event_id: event_id(event).unwrap_or_default(),
                what: "a scheduled event without a time".into(),
            })?;
            return Ok(Normalised::Tick { at });
        }
        (source, _) => {
            return Ok(Normalised::Ignored(Ignored::UnknownDetailType {
                source: source.to_owned(),
                detail_type: detail_type.to_owned(),
            }));
        }
    };
    Ok(Normalised::Signals(signals))
}

/// What every normaliser needs to know about the event it is reading.
struct Ctx<'a> {
    event: &'a Envelope,
    id: String,
    detail_type: String,
}

impl<'a> Ctx<'a> {
    fn new(event: &'a Envelope) -> Result<Self, EventError> {
        Ok(Ctx {
            id: event_id(event)?,
            detail_type: event.detail_type.clone(),
            event,
        })
    }

    fn detail<T: serde::de::DeserializeOwned>(&self) -> Result<T, EventError> {
        serde_json::from_value(self.event.detail.clone()).map_err(|source| EventError::Detail {
            detail_type: self.detail_type.clone(),
            event_id: self.id.clone(),
            source,
        })
    }

    fn invalid(&self, what: &'static str, source: NameError) -> EventError {
        EventError::Invalid {
            detail_type: self.detail_type.clone(),
            event_id: self.id.clone(),
            what,
            source,
        }
    }

    fn unusable(&self, what: impl Into<String>) -> EventError {
        EventError::Unusable {
            detail_type: self.detail_type.clone(),
            event_id: self.id.clone(),
            what: what.into(),
        }
    }

    /// The event's time, or the given timestamp from its detail when that parses.
    fn time(&self, detail_time: Option<&str>) -> Result<DateTime<Utc>, EventError> {
        detail_time
            .and_then(parse_time)
            .or(self.event.time)
            .ok_or_else(|| self.unusable("no timestamp in the event or its detail"))
    }

    fn first_resource_arn(&self) -> Option<String> {
        self.event
            .resources
            .as_ref()
            .and_then(|r| r.first())
            .map(|a| display_text(a, 2048))
    }

    fn signal(
        &self,
        source: Source,
        resource: Resource,
        observed_at: DateTime<Utc>,
        kind: SignalKind,
    ) -> Signal {
        Signal {
            event_id: self.id.clone(),
            source,
            resource,
            observed_at,
            kind,
            values: BTreeMap::new(),
        }
    }
}

/// A short machine word from an event (a state, a status code): letters, digits and `_-:. `,
/// at most 64 characters; anything else is refused.
fn word(ctx: &Ctx<'_>, what: &'static str, s: &str) -> Result<String, EventError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-:. ".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ctx.unusable(format!(
            "{what} {:?} is not a plain word",
            display_text(s, 64)
        )))
    }
}

// --- CloudWatch Alarm State Change -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: AlarmStateDetail,
    #[serde(default)]
    previous_state: Option<AlarmStateDetail>,
    #[serde(default)]
    configuration: AlarmConfiguration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmStateDetail {
    value: AlarmState,
    #[serde(default)]
    reason: String,
    /// A JSON document, sent as a string.
    #[serde(default)]
    reason_data: Option<Value>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmConfiguration {
    #[serde(default)]
    metrics: Vec<AlarmMetric>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmMetric {
    #[serde(default)]
    metric_stat: Option<MetricStat>,
    #[serde(default = "yes")]
    return_data: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct MetricStat {
    metric: MetricId,
}

#[derive(Debug, Deserialize)]
struct MetricId {
    #[serde(default)]
    namespace: Option<String>,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

/// The reason data CloudWatch attaches to a metric alarm's state.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReasonData {
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    recent_datapoints: Vec<f64>,
}

fn event_id(event: &Envelope) -> Result<String, EventError> {
    match event.id.as_deref() {
        Some(id) if !id.trim().is_empty() => Ok(display_text(id, 128)),
        _ => Err(EventError::MissingId),
    }
}

/// CloudWatch writes `2019-10-02T17:04:40.985+0000` (no colon in the offset).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .or_else(|_| DateTime::parse_from_rfc2822(s))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn alarm(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let id = event_id(event)?;
    let dt = event.detail_type.clone();
    let detail: AlarmDetail =
        serde_json::from_value(event.detail.clone()).map_err(|source| EventError::Detail {
            detail_type: dt.clone(),
            event_id: id.clone(),
            source,
        })?;
    if detail.alarm_name.trim().is_empty() {
        return Err(EventError::Unusable {
            detail_type: dt,
            event_id: id,
            what: "alarm name is empty".into(),
        });
    }

    // The metric the alarm watches: the one returning data (metric-math alarms have several).
    let metric = detail
        .configuration
        .metrics
        .iter()
        .filter(|m| m.return_data)
        .find_map(|m| m.metric_stat.as_ref())
        .map(|s| &s.metric);

    let resource = alarm_resource(event, metric, &dt, &id)?;

    let reason_data: ReasonData = match &detail.state.reason_data {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
        Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).unwrap_or_default(),
        _ => ReasonData::default(),
    };
    let mut values = BTreeMap::new();
    if let Some(t) = reason_data.threshold.filter(|t| t.is_finite()) {
        values.insert("threshold".to_owned(), t);
    }
    let points: Vec<f64> = reason_data
        .recent_datapoints
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if let Some(latest) = points.last() {
        values.insert("latest".to_owned(), *latest);
        let max = points.iter().copied().fold(f64::MIN, f64::max);
        values.insert("max".to_owned(), max);
        values.insert("datapoints".to_owned(), points.len() as f64);
    }

    let observed_at = detail
        .state
        .timestamp
        .as_deref()
        .and_then(parse_time)
        .or(event.time)
        .ok_or_else(|| EventError::Unusable {
            detail_type: dt.clone(),
            event_id: id.clone(),
            what: "no timestamp in the event or its state".into(),
        })?;

    Ok(vec![Signal {
        event_id: id,
        source: Source::CloudWatchAlarm,
        resource,
        observed_at,
        kind: SignalKind::AlarmStateChange {
            alarm: display_text(&detail.alarm_name, MAX_ALARM_NAME),
            state: detail.state.value,
            previous: detail.previous_state.map(|p| p.value),
            metric: metric.map(|m| {
                display_text(
                    &format!("{}/{}", m.namespace.as_deref().unwrap_or("?"), m.name),
                    255,
                )
            }),
            reason: display_text(&detail.state.reason, MAX_REASON),
        },
        values,
    }])
}

fn alarm_resource(
    event: &Envelope,
    metric: Option<&MetricId>,
    dt: &str,
    id: &str,
) -> Result<Resource, EventError> {
    let invalid = |what, source| EventError::Invalid {
        detail_type: dt.to_owned(),
        event_id: id.to_owned(),
        what,
        source,
    };
    let alarm_arn = event
        .resources
        .as_ref()
        .and_then(|r| r.first())
        .map(|a| display_text(a, 2048));
    let dims = metric.map(|m| &m.dimensions);
    if let Some(instance) = dims.and_then(|d| d.get("InstanceId")) {
        let instance =
            InstanceId::parse(instance).map_err(|e| invalid("InstanceId dimension", e))?;
        return Ok(Resource::instance(&instance));
    }
    if let Some(group) = dims.and_then(|d| d.get("AutoScalingGroupName")) {
        let group =
            GroupName::parse(group).map_err(|e| invalid("AutoScalingGroupName dimension", e))?;
        let mut resource = Resource::new(ResourceKind::AutoScalingGroup, group.to_string());
        resource.group = Some(group);
        return Ok(resource);
    }
    let Some(arn) = alarm_arn else {
        return Err(EventError::Unusable {
            detail_type: dt.to_owned(),
            event_id: id.to_owned(),
            what: "the alarm names no resource and the event lists no ARN".into(),
        });
    };
    Ok(Resource::new(ResourceKind::Other, arn.clone()).with_arn(Some(arn)))
}

// --- GuardDuty Finding -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FindingDetail {
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
struct FindingResource {
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
struct InstanceDetails {
    #[serde(default)]
    instance_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccessKeyDetails {
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BucketDetails {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FindingService {
    #[serde(default)]
    archived: Option<bool>,
    #[serde(default)]
    count: Option<u64>,
}

/// An access key id: `AKIA`/`ASIA`/... followed by upper-case letters and digits.
fn access_key_id(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn finding(event: &Envelope) -> Result<Vec<Signal>, EventError> {
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
        },
    );
    signal.values.insert("severity".into(), d.severity);
    Ok(vec![signal])
}

// --- CloudTrail (API calls and console sign-ins) ---------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CloudTrailRecord {
    #[serde(rename = "eventID", default)]
    event_id: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    event_source: String,
    event_name: String,
    #[serde(default)]
    aws_region: String,
    #[serde(rename = "sourceIPAddress", default)]
    source_ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    user_identity: Option<UserIdentity>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    read_only: Option<Value>,
    #[serde(default)]
    request_parameters: Option<Value>,
    #[serde(default)]
    response_elements: Option<Value>,
    #[serde(default)]
    additional_event_data: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserIdentity {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    principal_id: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    session_context: Option<Value>,
    #[serde(default)]
    invoked_by: Option<String>,
}

/// Longest list of request parameters kept per call, and of each value.
const MAX_REQUEST_FIELDS: usize = 32;
const MAX_REQUEST_VALUE: usize = 256;

fn flatten(prefix: &str, v: &Value, depth: usize, out: &mut Vec<String>) {
    if out.len() >= MAX_REQUEST_FIELDS || depth > 5 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, depth + 1, out);
            }
        }
        Value::Array(a) => {
            for v in a.iter().take(MAX_REQUEST_FIELDS) {
                flatten(prefix, v, depth + 1, out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push(display_text(&format!("{prefix}={s}"), MAX_REQUEST_VALUE)),
        other => out.push(display_text(
            &format!("{prefix}={other}"),
            MAX_REQUEST_VALUE,
        )),
    }
}

fn api_name(ctx: &Ctx<'_>, what: &'static str, s: &str) -> Result<String, EventError> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ctx.unusable(format!(
            "{what} {:?} is not an API name",
            display_text(s, 64)
        )))
    }
}

fn principal(identity: &UserIdentity) -> Principal {
    let session = identity.session_context.as_ref();
    let issuer_name = session
        .and_then(|s| s.pointer("/sessionIssuer/userName"))
        .and_then(Value::as_str);
    let mfa = session
        .and_then(|s| s.pointer("/attributes/mfaAuthenticated"))
        .and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        });
    let arn = identity.arn.as_deref().filter(|a| !a.is_empty());
    let id = arn
        .or(identity.principal_id.as_deref().filter(|p| !p.is_empty()))
        .or(identity.invoked_by.as_deref())
        .unwrap_or("unknown");
    Principal {
        kind: display_text(identity.kind.as_deref().unwrap_or("Unknown"), 32),
        id: display_text(id, 2048),
        name: identity
            .user_name
            .as_deref()
            .or(issuer_name)
            .map(|n| display_text(n, 128)),
        access_key_id: identity
            .access_key_id
            .as_deref()
            .filter(|k| access_key_id(k))
            .map(str::to_owned),
        mfa_authenticated: mfa,
    }
}

fn yes_no(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("yes") || s.eq_ignore_ascii_case("true") => {
            Some(true)
        }
        Value::String(s) if s.eq_ignore_ascii_case("no") || s.eq_ignore_ascii_case("false") => {
            Some(false)
        }
        _ => None,
    }
}

fn cloudtrail(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let record: CloudTrailRecord = ctx.detail()?;
    cloudtrail_signal(&ctx, record).map(|s| vec![s])
}

fn cloudtrail_signal(ctx: &Ctx<'_>, r: CloudTrailRecord) -> Result<Signal, EventError> {
    let event_source = api_name(ctx, "eventSource", &r.event_source)?;
    let event_name = api_name(ctx, "eventName", &r.event_name)?;
    let identity = r.user_identity.unwrap_or_default();
    let principal = principal(&identity);
    let observed_at = ctx.time(r.event_time.as_deref())?;
    let source_ip = display_text(r.source_ip.as_deref().unwrap_or(""), 128);
    let user_agent = display_text(r.user_agent.as_deref().unwrap_or(""), 512);
    let resource = Resource::new(ResourceKind::Principal, principal.id.clone()).with_arn(
        identity
            .arn
            .as_deref()
            .filter(|a| a.starts_with("arn:"))
            .map(|a| display_text(a, 2048)),
    );

    if event_name == "ConsoleLogin" {
        let outcome = r
            .response_elements
            .as_ref()
            .and_then(|v| v.get("ConsoleLogin"))
            .and_then(Value::as_str);
        let success = match outcome {
            Some(o) if o.eq_ignore_ascii_case("success") => true,
            Some(o) if o.eq_ignore_ascii_case("failure") => false,
            _ => r.error_code.is_none(),
        };
        let mfa_used = yes_no(
            r.additional_event_data
                .as_ref()
                .and_then(|v| v.get("MFAUsed")),
        );
        return Ok(ctx.signal(
            Source::CloudTrail,
            resource,
            observed_at,
            SignalKind::ConsoleSignIn {
                principal,
                success,
                mfa_used,
                source_ip,
                user_agent,
            },
        ));
    }

    let mut request = Vec::new();
    if let Some(p) = &r.request_parameters {
        flatten("", p, 0, &mut request);
    }
    let read_only = match &r.read_only {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    Ok(ctx.signal(
        Source::CloudTrail,
        resource,
        observed_at,
        SignalKind::ApiCall(ApiCall {
            event_source,
            event_name,
            principal,
            source_ip,
            user_agent,
            region: display_text(&r.aws_region, 64),
            error_code: r.error_code.as_deref().map(|e| display_text(e, 128)),
            read_only,
            request,
        }),
    ))
}

/// Normalises one raw CloudTrail record (as found in a trail's log files, outside EventBridge):
/// the same signal EventBridge's "AWS API Call via CloudTrail" event would give.
pub fn normalise_cloudtrail_record(record: &Value) -> Result<Signal, EventError> {
    let event_id = record
        .get("eventID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(EventError::MissingId)?;
    let envelope: Envelope = serde_json::from_value(serde_json::json!({
        "version": "0",
        "id": event_id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.cloudtrail",
        "detail": record,
    }))
    .map_err(EventError::Envelope)?;
    let ctx = Ctx::new(&envelope)?;
    let parsed: CloudTrailRecord = ctx.detail()?;
    if parsed.event_id.is_none() {
        return Err(EventError::MissingId);
    }
    cloudtrail_signal(&ctx, parsed)
}

// --- EC2 instance state change -----------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct InstanceStateDetail {
    #[serde(rename = "instance-id")]
    instance_id: String,
    state: String,
}

fn instance_state(event: &Envelope) -> Result<Vec<Signal>, EventError> {
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

// --- EC2 Auto Scaling --------------------------------------------------------------------------

fn scaling_activity_kind(detail_type: &str) -> Option<ScalingActivityKind> {
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
struct ScalingDetail {
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

fn scaling(event: &Envelope) -> Result<Vec<Signal>, EventError> {
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

// --- AWS Health ----------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HealthDetail {
    service: String,
    event_type_code: String,
    #[serde(default)]
    event_type_category: String,
    #[serde(default)]
    status_code: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    affected_entities: Vec<AffectedEntity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AffectedEntity {
    #[serde(default)]
    entity_value: Option<String>,
}

/// At most this many affected entities become signals; the rest are summarised by the first.
const MAX_HEALTH_ENTITIES: usize = 50;

fn health(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let d: HealthDetail = ctx.detail()?;
    let service = word(&ctx, "service", &d.service)?;
    let type_code = api_name(&ctx, "eventTypeCode", &d.event_type_code)?;
    let category = if d.event_type_category.is_empty() {
        String::new()
    } else {
        word(&ctx, "eventTypeCategory", &d.event_type_category)?
    };
    let status = match d.status_code.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => word(&ctx, "statusCode", s)?,
        None => String::new(),
    };
    let at = ctx.time(d.start_time.as_deref())?;
    let kind = SignalKind::HealthEvent {
        service,
        type_code,
        category,
        status,
    };
    let entities: Vec<&str> = d
        .affected_entities
        .iter()
        .filter_map(|e| e.entity_value.as_deref())
        .filter(|e| !e.is_empty())
        .take(MAX_HEALTH_ENTITIES)
        .collect();
    if entities.is_empty() {
        let account = event.account.as_deref().unwrap_or("account");
        return Ok(vec![ctx.signal(
            Source::Health,
            Resource::new(ResourceKind::Account, display_text(account, 32)),
            at,
            kind,
        )]);
    }
    Ok(entities
        .into_iter()
        .map(|e| {
            let resource = match InstanceId::parse(e) {
                Ok(i) => Resource::instance(&i),
                Err(_) => Resource::new(ResourceKind::Other, display_text(e, 512)),
            };
            ctx.signal(Source::Health, resource, at, kind.clone())
        })
        .collect())
}

// --- CodePipeline ------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
struct PipelineDetail {
    pipeline: String,
    #[serde(rename = "execution-id")]
    execution_id: String,
    state: String,
    #[serde(default)]
    stage: Option<String>,
    #[serde(default)]
    action: Option<String>,
}

/// CodePipeline names: letters, digits and `.@-_`, at most 100 characters.
fn pipeline_name(ctx: &Ctx<'_>, what: &'static str, s: &str) -> Result<String, EventError> {
    let ok = !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".@-_".contains(c));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ctx.unusable(format!(
            "{what} {:?} is not a CodePipeline name",
            display_text(s, 64)
        )))
    }
}

fn deployment(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let d: PipelineDetail = ctx.detail()?;
    let pipeline = pipeline_name(&ctx, "pipeline", &d.pipeline)?;
    let execution_id = api_name(&ctx, "execution-id", &d.execution_id)?;
    let state = word(&ctx, "state", &d.state)?;
    let stage = d
        .stage
        .as_deref()
        .map(|s| pipeline_name(&ctx, "stage", s))
        .transpose()?;
    let action = d
        .action
        .as_deref()
        .map(|s| pipeline_name(&ctx, "action", s))
        .transpose()?;
    let at = ctx.time(None)?;
    Ok(vec![ctx.signal(
        Source::CodePipeline,
        Resource::new(ResourceKind::Pipeline, pipeline.clone()).with_arn(ctx.first_resource_arn()),
        at,
        SignalKind::Deployment {
            pipeline,
            execution_id,
            stage,
            action,
            state,
        },
    )])
}
