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

use crate::domain::{AlarmState, Resource, ResourceKind, Signal, SignalKind, Source};
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
    /// A source Vigil knows, routed here before its normaliser exists.
    NotYetSupported { detail_type: String },
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
            Ignored::NotYetSupported { detail_type } => {
                write!(f, "{detail_type:?} events are not normalised yet")
            }
        }
    }
}

/// What normalising one event produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Normalised {
    Signals(Vec<Signal>),
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

/// Turns one EventBridge event into signals.
pub fn normalise(event: &Envelope) -> Result<Normalised, EventError> {
    let detail_type = event.detail_type.as_str();
    match (event.source.as_str(), detail_type) {
        ("aws.cloudwatch", "CloudWatch Alarm State Change") => {
            alarm(event).map(Normalised::Signals)
        }
        ("aws.guardduty", "GuardDuty Finding")
        | ("aws.signin", "AWS Console Sign In via CloudTrail")
        | ("aws.ec2", "EC2 Instance State-change Notification")
        | ("aws.health", "AWS Health Event")
        | ("aws.events", "Scheduled Event") => Ok(Normalised::Ignored(Ignored::NotYetSupported {
            detail_type: detail_type.to_owned(),
        })),
        (s, "AWS API Call via CloudTrail") if s.starts_with("aws.") => {
            Ok(Normalised::Ignored(Ignored::NotYetSupported {
                detail_type: detail_type.to_owned(),
            }))
        }
        ("aws.autoscaling", d) if d.starts_with("EC2 Instance") => {
            Ok(Normalised::Ignored(Ignored::NotYetSupported {
                detail_type: detail_type.to_owned(),
            }))
        }
        ("aws.codepipeline", d) if d.starts_with("CodePipeline") => {
            Ok(Normalised::Ignored(Ignored::NotYetSupported {
                detail_type: detail_type.to_owned(),
            }))
        }
        (source, _) => Ok(Normalised::Ignored(Ignored::UnknownDetailType {
            source: source.to_owned(),
            detail_type: detail_type.to_owned(),
        })),
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
        return Ok(Resource {
            kind: ResourceKind::AutoScalingGroup,
            id: group.to_string(),
            arn: None,
            group: Some(group),
            application: None,
            environment: None,
        });
    }
    let Some(arn) = alarm_arn else {
        return Err(EventError::Unusable {
            detail_type: dt.to_owned(),
            event_id: id.to_owned(),
            what: "the alarm names no resource and the event lists no ARN".into(),
        });
    };
    Ok(Resource {
        kind: ResourceKind::Other,
        id: arn.clone(),
        arn: Some(arn),
        group: None,
        application: None,
        environment: None,
    })
}
