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

mod alarm;
mod cloudtrail;
mod codepipeline;
mod guardduty;
mod health;
mod instance_state;
mod scaling;
mod securityhub;

use alarm::alarm;
use cloudtrail::cloudtrail;
pub use cloudtrail::normalise_cloudtrail_record;
use codepipeline::deployment;
use guardduty::finding;
use health::health;
use instance_state::instance_state;
use scaling::{scaling, scaling_activity_kind};
use securityhub::imported;
pub use securityhub::product as securityhub_product;

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
    /// An event from another Region than the stack's: a resource named there is another
    /// resource, and the stack acts only in its own Region.
    #[error("{detail_type:?} event {event_id} is from Region {claimed}, not {region}")]
    WrongRegion {
        detail_type: String,
        event_id: String,
        claimed: String,
        region: String,
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
    /// A Security Hub finding of the account's own product: Vigil's, never read back.
    OwnFinding,
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
            Ignored::OwnFinding => {
                f.write_str("a Security Hub finding of the account's own product (Vigil's own)")
            }
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

/// Refuses an event from another Region than `region` (an event that names none is the
/// stack's own).
pub fn check_region(event: &Envelope, region: &str) -> Result<(), EventError> {
    match event.region.as_deref() {
        Some(claimed) if claimed != region => Err(EventError::WrongRegion {
            detail_type: display_text(&event.detail_type, 128),
            event_id: event_id(event).unwrap_or_default(),
            claimed: display_text(claimed, 32),
            region: display_text(region, 32),
        }),
        _ => Ok(()),
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
        ("aws.securityhub", "Security Hub Findings - Imported") => {
            let signals = imported(event)?;
            if signals.is_empty() {
                return Ok(Normalised::Ignored(Ignored::OwnFinding));
            }
            signals
        }
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
            rules: Vec::new(),
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

/// An access key id: `AKIA`/`ASIA`/... followed by upper-case letters and digits.
fn access_key_id(s: &str) -> bool {
    (16..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
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
