//! The domain: what Vigil observes, concludes, decides and does. Pure data, no IO.
//!
//! The stages exchange these types as JSON (the Step Functions payloads), so every type here is
//! `Serialize + Deserialize` and field names are stable.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::{GroupName, InstanceId, NameError};

mod decision;
mod reason;

pub use decision::*;
pub use reason::{Code, Reason};

/// Where a signal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    CloudWatchAlarm,
    GuardDuty,
    /// Another product's finding, through Security Hub (the stack's allow-list).
    SecurityHub,
    CloudTrail,
    Ec2,
    AutoScaling,
    Health,
    CodePipeline,
    MetricPull,
}

/// The kind of AWS resource a signal is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    Instance,
    AutoScalingGroup,
    /// An IAM user, role or other principal (CloudTrail, sign-in, GuardDuty IAM findings).
    Principal,
    /// An IAM access key.
    AccessKey,
    Pipeline,
    /// The account as a whole (scheduled ticks, account-wide health events).
    Account,
    Other,
}

/// The identity of a resource: its id plus what Vigil knows of its context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub kind: ResourceKind,
    /// The resource's id (an instance id, a group name, ...), validated on the way in.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The Auto Scaling group the resource belongs to, when it belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Tags of the resource (for an instance: its Auto Scaling group's), capped at [`MAX_TAGS`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The account the resource is in, when it is not the one Vigil runs in: a member
    /// account's GuardDuty finding seen by its delegated administrator. Vigil acts only in
    /// its own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The Region the resource is in: its event's, or the stack's for the pull. `None` where
    /// nothing said (the simulator; records written before Regions were kept). Vigil acts only
    /// in its own Region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Resource {
    /// A resource known only by its kind and id.
    pub fn new(kind: ResourceKind, id: impl Into<String>) -> Self {
        Resource {
            kind,
            id: id.into(),
            arn: None,
            group: None,
            application: None,
            environment: None,
            tags: BTreeMap::new(),
            account: None,
            region: None,
        }
    }

    pub fn instance(id: &InstanceId) -> Self {
        Resource::new(ResourceKind::Instance, id.to_string())
    }

    pub fn with_arn(mut self, arn: Option<String>) -> Self {
        self.arn = arn;
        self
    }

    /// The instance id, when this resource is an instance.
    pub fn instance_id(&self) -> Result<Option<InstanceId>, NameError> {
        match self.kind {
            ResourceKind::Instance => InstanceId::parse(&self.id).map(Some),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.group {
            Some(g) => write!(f, "{} (group {g})", self.id),
            None => f.write_str(&self.id),
        }
    }
}

/// A CloudWatch alarm's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlarmState {
    Ok,
    Alarm,
    InsufficientData,
}

/// What was observed, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SignalKind {
    /// A CloudWatch alarm changed state.
    AlarmStateChange {
        alarm: String,
        state: AlarmState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<AlarmState>,
        /// `Namespace/MetricName` of the alarm's metric, when it watches a single metric.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metric: Option<String>,
        reason: String,
    },
    /// A GuardDuty finding.
    Finding {
        finding_id: String,
        /// `ThreatPurpose:ResourceTypeAffected/ThreatFamilyName.DetectionMechanism!Artifact`.
        finding_type: String,
        /// 1.0 to 10.0.
        severity: f64,
        title: String,
        archived: bool,
        count: u64,
        /// What GuardDuty says the resource did: `ACTOR` (it acted) or `TARGET` (it was acted
        /// on), when the finding says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource_role: Option<String>,
        /// A sample finding (CreateSampleFindings): never a real threat.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        sample: bool,
    },
    /// A CloudTrail record: an API call (or service event) by a principal.
    ApiCall(ApiCall),
    /// A console sign-in attempt.
    ConsoleSignIn {
        principal: Principal,
        success: bool,
        /// Whether MFA was used, when the record says.
        mfa_used: Option<bool>,
        source_ip: String,
        user_agent: String,
    },
    /// An EC2 instance changed state (`pending`, `running`, `stopping`, `stopped`, ...).
    InstanceStateChange { state: String },
    /// An Auto Scaling activity or lifecycle action on an instance.
    ScalingActivity {
        activity: ScalingActivityKind,
        #[serde(default)]
        status: String,
        #[serde(default)]
        cause: String,
    },
    /// An AWS Health event affecting the account or a resource.
    HealthEvent {
        service: String,
        type_code: String,
        category: String,
        #[serde(default)]
        status: String,
    },
    /// A CodePipeline execution, stage or action changed state: deployments.
    Deployment {
        pipeline: String,
        execution_id: String,
        #[serde(default)]
        stage: Option<String>,
        #[serde(default)]
        action: Option<String>,
        state: String,
    },
    /// A window of a metric's recent datapoints, pulled on the schedule.
    MetricWindow {
        /// `Namespace/MetricName`.
        metric: String,
        /// Seconds between datapoints.
        period: u32,
        /// Oldest first; `None` where CloudWatch had no datapoint.
        points: Vec<Option<f64>>,
    },
    /// An instance's pulled metric windows read together (the failure-mode classifier's
    /// input; the features are computed by the pull, which holds the windows).
    InstanceMetrics {
        /// `Namespace/MetricName` of each window read.
        metrics: Vec<String>,
        /// Seconds between datapoints, and datapoints per window.
        period: u32,
        points: usize,
    },
}

/// Who made a CloudTrail call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Principal {
    /// `IAMUser`, `AssumedRole`, `Root`, `AWSService`, `FederatedUser`, `Unknown`, ...
    pub kind: String,
    /// The principal's ARN, or its id when it has none.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Whether the session was MFA-authenticated, when the record says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_authenticated: Option<bool>,
}

/// One CloudTrail API call, reduced to what detection needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    pub event_source: String,
    pub event_name: String,
    pub principal: Principal,
    pub source_ip: String,
    pub user_agent: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Request parameters detection looks at (user names, policy ARNs, CIDRs, attribute
    /// changes), flattened to `path=value` strings and capped.
    #[serde(default)]
    pub request: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalingActivityKind {
    LaunchSucceeded,
    LaunchFailed,
    TerminateSucceeded,
    TerminateFailed,
    LaunchLifecycleAction,
    TerminateLifecycleAction,
}

/// One observation about one resource at one time, from one source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The id of the event this signal came from (EventBridge `id`): the de-duplication key.
    pub event_id: String,
    pub source: Source,
    pub resource: Resource,
    pub observed_at: DateTime<Utc>,
    pub kind: SignalKind,
    /// Numeric values carried by the event (datapoints, threshold, ...), by name.
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
    /// The detection rules (Sigma) the raw event matched, found at ingest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleHit>,
}

/// How serious a detection rule says its match is: Sigma's levels.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleLevel {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl RuleLevel {
    /// The incident severity a match at this level gives.
    pub fn severity(self) -> Severity {
        match self {
            RuleLevel::Informational => Severity::Info,
            RuleLevel::Low => Severity::Low,
            RuleLevel::Medium => Severity::Medium,
            RuleLevel::High => Severity::High,
            RuleLevel::Critical => Severity::Critical,
        }
    }

    /// Whether people are told of a match at this level at once. Informational and low
    /// matches are recorded and reported in a digest.
    pub fn alarms(self) -> bool {
        self >= RuleLevel::Medium
    }
}

impl fmt::Display for RuleLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuleLevel::Informational => "informational",
            RuleLevel::Low => "low",
            RuleLevel::Medium => "medium",
            RuleLevel::High => "high",
            RuleLevel::Critical => "critical",
        })
    }
}

/// A detection rule that matched an event: evidence that names its rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleHit {
    /// The rule's Sigma `name`, what the policy names it by (its `id` when it has no name).
    pub name: String,
    /// The rule's Sigma `id`.
    pub id: String,
    pub title: String,
    pub level: RuleLevel,
    /// The ATT&CK tactics and techniques it is tagged with (`attack.persistence`,
    /// `attack.t1098`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attack: Vec<String>,
    /// Whether someone outside the account can cause a match (failed sign-ins, denied calls):
    /// such a match is told, never acted on without a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub outsider: bool,
    /// People are told of this rule's match on one resource at most once per this many
    /// minutes (the rule's `vigil.repeat_minutes`), when longer than the policy's repeat: a
    /// posture finding (a user without MFA) is told once a week, not at every sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_minutes: Option<u32>,
}

impl fmt::Display for RuleHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} ({}, {})", self.name, self.title, self.level)
    }
}

impl Signal {
    /// One line saying what was observed, for alerts and logs.
    pub fn describe(&self) -> String {
        match &self.kind {
            SignalKind::AlarmStateChange {
                alarm,
                state,
                metric,
                reason,
                ..
            } => format!(
                "alarm {alarm:?} is {state:?}{}: {reason}",
                metric
                    .as_deref()
                    .map(|m| format!(" on {m}"))
                    .unwrap_or_default()
            ),
            SignalKind::Finding {
                finding_type,
                severity,
                title,
                ..
            } => format!("GuardDuty {finding_type} (severity {severity:.1}): {title}"),
            SignalKind::ApiCall(c) => format!(
                "{} called {}:{} from {}{}",
                c.principal.id,
                c.event_source,
                c.event_name,
                c.source_ip,
                c.error_code
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
            SignalKind::ConsoleSignIn {
                principal,
                success,
                mfa_used,
                source_ip,
                ..
            } => format!(
                "console sign-in by {} from {source_ip}: {}{}",
                principal.id,
                if *success { "success" } else { "failure" },
                match mfa_used {
                    Some(false) => ", without MFA",
                    Some(true) => ", with MFA",
                    None => "",
                }
            ),
            SignalKind::InstanceStateChange { state } => format!("instance is {state}"),
            SignalKind::ScalingActivity {
                activity,
                status,
                cause,
                ..
            } => format!("Auto Scaling {activity:?} ({status}): {cause}"),
            SignalKind::HealthEvent {
                service,
                type_code,
                status,
                ..
            } => format!("AWS Health {service} {type_code} {status}"),
            SignalKind::Deployment {
                pipeline,
                stage,
                action,
                state,
                ..
            } => format!(
                "pipeline {pipeline}{}{} is {state}",
                stage
                    .as_deref()
                    .map(|s| format!(" stage {s}"))
                    .unwrap_or_default(),
                action
                    .as_deref()
                    .map(|a| format!(" action {a}"))
                    .unwrap_or_default()
            ),
            SignalKind::InstanceMetrics {
                metrics,
                period,
                points,
            } => format!(
                "{} metrics over the last {} minutes",
                metrics.len(),
                (u64::from(*period) * *points as u64) / 60
            ),
            SignalKind::MetricWindow { metric, points, .. } => format!(
                "{metric}: {} datapoints, latest {}",
                points.len(),
                points
                    .iter()
                    .rev()
                    .find_map(|p| *p)
                    .map_or_else(|| "missing".to_owned(), |v| format!("{v:.2}"))
            ),
        }
    }
}

/// Named numeric features computed from signals, in a fixed order given by `schema`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureVector {
    /// Which feature set (and version) produced these values; models check it.
    pub schema: String,
    pub names: Vec<String>,
    pub values: Vec<f64>,
}

impl FeatureVector {
    pub fn get(&self, name: &str) -> Option<f64> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.values.get(i).copied())
    }
}

/// A signal with the features computed from it: the output of `ingest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub signal: Signal,
    pub features: FeatureVector,
}

/// What is going wrong, as named by a model.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    Normal,
    CpuRunaway,
    MemoryLeak,
    DiskFilling,
    NetworkPartition,
    InstanceFailure,
    TrafficSurge,
    BadDeployment,
    Unknown,
}

impl FailureMode {
    /// Every failure mode, in declaration order.
    pub const ALL: [FailureMode; 9] = [
        FailureMode::Normal,
        FailureMode::CpuRunaway,
        FailureMode::MemoryLeak,
        FailureMode::DiskFilling,
        FailureMode::NetworkPartition,
        FailureMode::InstanceFailure,
        FailureMode::TrafficSurge,
        FailureMode::BadDeployment,
        FailureMode::Unknown,
    ];
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            FailureMode::Normal => "normal",
            FailureMode::CpuRunaway => "CPU runaway",
            FailureMode::MemoryLeak => "memory leak",
            FailureMode::DiskFilling => "disk filling",
            FailureMode::NetworkPartition => "network partition",
            FailureMode::InstanceFailure => "instance failure",
            FailureMode::TrafficSurge => "traffic surge",
            FailureMode::BadDeployment => "bad deployment",
            FailureMode::Unknown => "unknown",
        };
        f.write_str(s)
    }
}

/// A model's verdict on one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Name and version of the model that produced the score.
    pub model: String,
    /// How anomalous the observation is, in [0, 1].
    pub anomaly: f64,
    pub failure_mode: FailureMode,
    /// The model's confidence in `failure_mode` (or `threat`), in [0, 1].
    pub confidence: f64,
    /// For CloudTrail activity: the kind of threat named, when it is not benign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<ThreatClass>,
    /// Every class's probability, when a classifier scored the observation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probabilities: Vec<ClassProbability>,
    /// The features that drove the score, furthest from their healthy baseline first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drivers: Vec<Driver>,
    /// For memory leaks and filling disks: hours until the resource is full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours_to_exhaustion: Option<f64>,
}

impl Score {
    /// A score of nothing: the observation is not one any model reads.
    pub fn unscored(model: &str) -> Score {
        Score {
            model: model.to_owned(),
            anomaly: 0.0,
            failure_mode: FailureMode::Normal,
            confidence: 0.0,
            threat: None,
            probabilities: Vec::new(),
            drivers: Vec::new(),
            hours_to_exhaustion: None,
        }
    }
}

/// One class's probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassProbability {
    pub class: String,
    pub probability: f64,
}

/// A feature that drove a score: its value and what it is on healthy resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    pub feature: String,
    pub value: f64,
    pub baseline: f64,
}

/// What a threat classifier names for CloudTrail activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThreatClass {
    Benign,
    CredentialCompromise,
    Reconnaissance,
    Persistence,
    PrivilegeEscalation,
    DefenceEvasion,
    Exfiltration,
}

impl ThreatClass {
    /// Every threat class, in declaration order.
    pub const ALL: [ThreatClass; 7] = [
        ThreatClass::Benign,
        ThreatClass::CredentialCompromise,
        ThreatClass::Reconnaissance,
        ThreatClass::Persistence,
        ThreatClass::PrivilegeEscalation,
        ThreatClass::DefenceEvasion,
        ThreatClass::Exfiltration,
    ];
}

impl fmt::Display for ThreatClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ThreatClass::Benign => "benign",
            ThreatClass::CredentialCompromise => "credential compromise",
            ThreatClass::Reconnaissance => "reconnaissance",
            ThreatClass::Persistence => "persistence",
            ThreatClass::PrivilegeEscalation => "privilege escalation",
            ThreatClass::DefenceEvasion => "defence evasion",
            ThreatClass::Exfiltration => "exfiltration",
        })
    }
}

/// An observation with its score: the output of `score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    pub observation: Observation,
    pub score: Score,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Severity::Info => "INFO",
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
            Severity::Critical => "CRITICAL",
        };
        f.write_str(s)
    }
}

/// Something going wrong on one resource, built from one or more scored signals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Stable id: derived from the resource and the triggering event.
    pub id: String,
    pub resource: Resource,
    pub failure_mode: FailureMode,
    /// The threat named, for CloudTrail activity and GuardDuty findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threat: Option<ThreatClass>,
    pub severity: Severity,
    pub confidence: f64,
    pub opened_at: DateTime<Utc>,
    /// The evidence: the scored signals this incident was built from.
    #[serde(default)]
    pub evidence: Vec<Scored>,
}

impl Incident {
    /// What the incident is about: the threat named, else the failure mode, else the highest
    /// detection rule that matched.
    pub fn what(&self) -> String {
        match (self.threat, self.failure_mode, self.rule_hits().first()) {
            (Some(t), _, _) => t.to_string(),
            (None, FailureMode::Normal, Some(hit)) => format!("detection {}", hit.name),
            (None, f, _) => f.to_string(),
        }
    }

    /// The detection rules the evidence matched, each once, highest level first.
    pub fn rule_hits(&self) -> Vec<&RuleHit> {
        let mut hits: Vec<&RuleHit> = self
            .evidence
            .iter()
            .flat_map(|e| e.observation.signal.rules.iter())
            .collect();
        hits.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.name.cmp(&b.name)));
        hits.dedup_by(|a, b| a.name == b.name);
        hits
    }

    /// The soonest projected exhaustion (memory or disk full) among the evidence that names
    /// the incident's failure mode, in hours; `None` when no evidence projects one.
    pub fn hours_to_exhaustion(&self) -> Option<f64> {
        self.evidence
            .iter()
            .filter(|e| e.score.failure_mode == self.failure_mode)
            .filter_map(|e| e.score.hours_to_exhaustion)
            .filter(|h| h.is_finite())
            .min_by(f64::total_cmp)
    }
}

impl Score {
    /// What the score names: the threat, else the failure mode.
    pub fn what(&self) -> String {
        match self.threat {
            Some(t) => t.to_string(),
            None => self.failure_mode.to_string(),
        }
    }
}
