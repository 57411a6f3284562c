//! Explicit policy: which incidents Vigil may act on, how, and within which limits. Pure.
//!
//! A decision is made in two steps so that the handler can gather facts through ports in
//! between: [`Policy::propose`] matches the incident against the rules and picks the rung of
//! the remediation ladder, then [`Policy::decide`] applies the safety limits (kill switch,
//! protected resources, maintenance windows, loop breaker, blast radius) to the proposal.
//! The limits that need an atomic write (cooldown, hourly rate, de-duplication) are applied by
//! the handler through ports, with [`Decision::hold`]. Every limit consulted leaves a reason.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{
    Action, Attempt, Decision, FailureMode, GroupCapacity, Incident, Mode, OutcomeStatus, Reason,
    Severity, ThreatClass, Tier,
};
use crate::names::{AccessKeyId, PipelineName, ServiceName};

/// The policy bundled into the binary (`infra/policy/default.yaml`).
pub const DEFAULT_POLICY_YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/policy/default.yaml"
));

/// Largest policy document accepted.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is {size} bytes, above the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("policy is not valid YAML for Vigil's policy format")]
    Parse(#[source] serde_norway::Error),
    #[error("policy is invalid: {0}")]
    Invalid(String),
}

/// Vigil's policy. Its JSON Schema is `infra/policy/schema.json` (`vigil policy schema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Format version; only 1 exists.
    pub version: u32,
    /// `dry-run` records and reports what would be done; `enforce` does it.
    #[serde(default)]
    pub mode: Mode,
    /// Stops every action while true.
    #[serde(default)]
    pub kill_switch: bool,
    pub limits: Limits,
    #[serde(default)]
    pub tiers: TierThresholds,
    pub rules: Vec<Rule>,
    /// The deployment gate's checks and thresholds.
    #[serde(default)]
    pub gate: crate::gate::GatePolicy,
    /// Where this policy came from and a hash of its text (set on load, not written).
    #[serde(skip)]
    #[schemars(skip)]
    pub id: String,
}

/// Safety limits. Each is on unless set otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The same action on the same resource at most once per this many minutes.
    pub cooldown_minutes: u32,
    /// At most this many actions of one kind per clock hour, account-wide.
    #[serde(default = "default_rate")]
    pub max_actions_per_hour: u32,
    /// Never act on more than this share of a group's InService instances at once.
    pub max_group_share: f64,
    /// Never take a group below this many InService instances.
    pub min_in_service: u32,
    /// Resources whose tags carry this key with the value `true` are never acted on.
    #[serde(default = "default_protect_tag")]
    pub protect_tag: String,
    /// Windows (UTC) in which automated actions are held: planned work is expected to alarm.
    #[serde(default)]
    pub maintenance_windows: Vec<MaintenanceWindow>,
    #[serde(default)]
    pub loop_breaker: LoopBreaker,
}

fn default_rate() -> u32 {
    10
}

fn default_protect_tag() -> String {
    "vigil:protect".to_owned()
}

/// A weekly window, in UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Days the window opens on: mon, tue, wed, thu, fri, sat, sun.
    pub days: Vec<Weekday>,
    /// `HH:MM`, UTC.
    pub start: String,
    /// `HH:MM`, UTC; before `start` means the window runs past midnight.
    pub end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Stops and escalates after repeated actions on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoopBreaker {
    /// Actions on one resource within the window before Vigil stops acting on it.
    pub max_attempts: u32,
    pub window_minutes: u32,
}

impl Default for LoopBreaker {
    fn default() -> Self {
        LoopBreaker {
            max_attempts: 3,
            window_minutes: 120,
        }
    }
}

/// How confidence maps onto tiers for rules that may auto-heal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TierThresholds {
    /// Below this confidence an auto-heal rule asks for approval instead.
    pub auto_heal_min_confidence: f64,
    /// Below this confidence nothing is proposed: people are told.
    pub approval_min_confidence: f64,
    /// A failure named by a model from telemetry (not an alarm people set) below this
    /// confidence is recorded, not sent to people: alert fatigue is a safety problem too.
    /// (Threats are named only above the threat classifier's own calibrated threshold.)
    #[serde(default = "default_escalate_min_confidence")]
    pub escalate_min_confidence: f64,
    /// A finding from the pulled metrics is acted on or told only when a pull within this
    /// many minutes found the same thing on the same resource (`for: 10m`, as alarms do);
    /// 0 turns confirmation off.
    #[serde(default = "default_confirm_within_minutes")]
    pub confirm_within_minutes: u32,
    /// A memory leak named from telemetry whose projected exhaustion is further away than
    /// this many hours is recorded, not told or acted on: people are paged on time-to-full,
    /// not on a trend, and the next pulls keep projecting it. 0 turns it off.
    #[serde(default = "default_memory_horizon_hours")]
    pub memory_horizon_hours: f64,
    /// The same for a filling disk: longer, as freeing or growing a volume takes longer than
    /// restarting a leaking service.
    #[serde(default = "default_disk_horizon_hours")]
    pub disk_horizon_hours: f64,
    /// An alarm gets a second look: the instance's own metrics, read by the failure-mode
    /// classifier when the alarm fires. An alarm at most `alarm_overrule_max_breach` past its
    /// threshold (0.1: 10%) whose instance reads as normal with at least this confidence is
    /// recorded, not paged. Failed status checks are never overruled. 0 turns it off.
    #[serde(default = "default_alarm_overruled_at")]
    pub alarm_overruled_at: f64,
    #[serde(default = "default_alarm_overrule_max_breach")]
    pub alarm_overrule_max_breach: f64,
    /// An alarm on one of `alarm_corroborate`'s failures is acted on at once when the second
    /// look corroborates it: the instance's own metrics name the same failure with at least
    /// this confidence. One the second look does not corroborate (read as normal, as something
    /// else, or unsure) waits as a pull's finding does, until a pull within
    /// `confirm_within_minutes` finds the same again. An alarm whose instance could not be read
    /// goes on alone. 0 turns it off.
    #[serde(default = "default_alarm_corroborated_at")]
    pub alarm_corroborated_at: f64,
    /// A memory leak or a filling disk named from the last hour of telemetry is told or acted
    /// on only when the metric's six-hour window holds a trend at least this many standard
    /// errors from flat (`trend_t`, the certainty the time-to-full projection asks for): noise
    /// on a full disk or busy memory can look like a fill within one hour. Without a six-hour
    /// window (a new instance), the hour's reading goes on. 0 turns it off.
    #[serde(default = "default_trend_min_t")]
    pub trend_min_t: f64,
    /// The failures whose alarms need corroborating: those whose alarmed level load alone can
    /// reach (a CPU alarm on a busy instance). A memory or disk alarm near exhaustion, or a
    /// failed status check, is acted on whatever the cause.
    #[serde(default = "default_alarm_corroborate")]
    pub alarm_corroborate: Vec<FailureMode>,
    /// After Vigil acts on an instance or its group, the instance's metrics jump (a restart
    /// drops the CPU, a scale-out the traffic) and the classifier, which compares the last
    /// minutes with the hour before, can read the jump as a new failure. For this many
    /// minutes after an action, a finding read from telemetry that the action does not
    /// address (by the policy's own rules) is recorded as the action settling; one it
    /// addresses (the action did not work) goes on. 0 turns it off.
    #[serde(default = "default_settle_minutes")]
    pub settle_minutes: u32,
    /// A traffic surge read from one instance's metrics scales its group out only when at
    /// least this share of the group's instances read in the same pull show the surge: load
    /// behind a load balancer reaches all of them, so a lone instance's burst is not the
    /// service's surge. 0 turns it off.
    #[serde(default = "default_surge_min_group_share")]
    pub surge_min_group_share: f64,
    /// People told of a failure on a resource (escalated, asked to approve, or told an action
    /// was held) are not told of the same failure on the same resource at the same tier again
    /// for this many minutes: the finding is recorded, and a persisting condition is repeated
    /// once per period, as Alertmanager's `repeat_interval` does. Actions are not affected
    /// (cooldowns and the loop breaker limit those), nor are threats. 0 turns it off.
    #[serde(default = "default_repeat_minutes")]
    pub repeat_minutes: u32,
    /// Reconnaissance named by the threat classifier alone, on calls each of which the
    /// principal makes routinely (a known read: its API, user agent, region and hour are
    /// familiar, nothing denied, failed or sensitive) and whose only novelty is the network, is recorded,
    /// not told: that is what travel, a VPN or a new instance behind a role looks like. Anything
    /// else new about a call (an API, a tool, a region, a denial) is told as before.
    #[serde(default = "default_record_familiar_reads")]
    pub record_familiar_reads: bool,
}

fn default_record_familiar_reads() -> bool {
    true
}

fn default_repeat_minutes() -> u32 {
    240
}

fn default_alarm_corroborated_at() -> f64 {
    0.6
}

fn default_trend_min_t() -> f64 {
    crate::models::PROJECTION_MIN_T
}

fn default_alarm_corroborate() -> Vec<FailureMode> {
    vec![FailureMode::CpuRunaway]
}

fn default_settle_minutes() -> u32 {
    60
}

fn default_surge_min_group_share() -> f64 {
    0.5
}

fn default_alarm_overruled_at() -> f64 {
    0.8
}

fn default_alarm_overrule_max_breach() -> f64 {
    0.1
}

fn default_memory_horizon_hours() -> f64 {
    24.0
}

fn default_disk_horizon_hours() -> f64 {
    72.0
}

fn default_escalate_min_confidence() -> f64 {
    0.6
}

fn default_confirm_within_minutes() -> u32 {
    12
}

impl Default for TierThresholds {
    fn default() -> Self {
        TierThresholds {
            auto_heal_min_confidence: 0.8,
            approval_min_confidence: 0.5,
            escalate_min_confidence: default_escalate_min_confidence(),
            confirm_within_minutes: default_confirm_within_minutes(),
            memory_horizon_hours: default_memory_horizon_hours(),
            disk_horizon_hours: default_disk_horizon_hours(),
            alarm_overruled_at: default_alarm_overruled_at(),
            alarm_overrule_max_breach: default_alarm_overrule_max_breach(),
            alarm_corroborated_at: default_alarm_corroborated_at(),
            alarm_corroborate: default_alarm_corroborate(),
            trend_min_t: default_trend_min_t(),
            settle_minutes: default_settle_minutes(),
            surge_min_group_share: default_surge_min_group_share(),
            repeat_minutes: default_repeat_minutes(),
            record_familiar_reads: default_record_familiar_reads(),
        }
    }
}

/// Whether every piece of an incident's evidence is a model's reading of telemetry or
/// CloudTrail (no alarm people set, no GuardDuty finding, no AWS event).
pub fn model_only(incident: &Incident) -> bool {
    use crate::domain::SignalKind;
    !incident.evidence.is_empty()
        && incident.evidence.iter().all(|e| {
            matches!(
                e.observation.signal.kind,
                SignalKind::MetricWindow { .. }
                    | SignalKind::InstanceMetrics { .. }
                    | SignalKind::ApiCall(_)
                    | SignalKind::ConsoleSignIn { .. }
            )
        })
}

/// Whether the incident's leading evidence is a model's reading of pulled telemetry (an alarm
/// people set, leading, is never put off by a projection).
pub fn led_by_telemetry(incident: &Incident) -> bool {
    use crate::domain::SignalKind;
    incident.evidence.first().is_some_and(|e| {
        matches!(
            e.observation.signal.kind,
            SignalKind::MetricWindow { .. } | SignalKind::InstanceMetrics { .. }
        )
    })
}

/// What one batch read of each Auto Scaling group's instances: per group, the instances the
/// failure-mode classifier read and those it read as a traffic surge.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupReadings(BTreeMap<String, (usize, usize)>);

impl GroupReadings {
    /// The instance readings ([`crate::features::INSTANCE_V1`]) in a scored batch, by group.
    pub fn of_batch(scored: &[crate::domain::Scored]) -> Self {
        let mut by_group: BTreeMap<String, BTreeMap<&str, bool>> = BTreeMap::new();
        for s in scored {
            let r = &s.observation.signal.resource;
            let Some(group) = &r.group else { continue };
            if s.observation.features.schema != crate::features::INSTANCE_V1 {
                continue;
            }
            let surging = s.score.failure_mode == FailureMode::TrafficSurge;
            *by_group
                .entry(group.as_str().to_owned())
                .or_default()
                .entry(r.id.as_str())
                .or_default() |= surging;
        }
        GroupReadings(
            by_group
                .into_iter()
                .map(|(g, m)| (g, (m.len(), m.values().filter(|s| **s).count())))
                .collect(),
        )
    }

    /// (instances read, instances read as surging) of a group.
    pub fn of(&self, group: &str) -> (usize, usize) {
        self.0.get(group).copied().unwrap_or((0, 0))
    }
}

/// Whether an incident comes from the scheduled metric pull only (confirmable by the next
/// pull).
pub fn from_pull(incident: &Incident) -> bool {
    use crate::domain::SignalKind;
    !incident.evidence.is_empty()
        && incident.evidence.iter().all(|e| {
            matches!(
                e.observation.signal.kind,
                SignalKind::MetricWindow { .. } | SignalKind::InstanceMetrics { .. }
            )
        })
}

/// The kind of action a ladder rung asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    ReplaceInstance,
    /// Needs the group tagged with the service to restart ([`SERVICE_TAG`]).
    RestartService,
    ScaleOut,
    DetachInstance,
    QuarantineInstance,
    DeactivateAccessKey,
    /// Needs the resource tagged with the pipeline and stage ([`PIPELINE_TAG`], [`STAGE_TAG`]).
    FreezeDeployments,
    /// Holds a group still (no rebalancing, alarms or schedules) while people look.
    SuspendScaling,
    /// Needs the pipeline and stage tags, like the freeze.
    RollbackDeployment,
    /// Stops the deployment in the incident's evidence (a CodePipeline execution event).
    StopDeployment,
    /// Lifts a freeze (pipeline and stage tags); for rules people approve.
    UnfreezeDeployments,
}

/// The tag naming the service the restart rung restarts (on the group, copied to instances).
pub const SERVICE_TAG: &str = "vigil:service";
/// The tags naming the pipeline and stage that deploy a resource's application.
pub const PIPELINE_TAG: &str = "vigil:pipeline";
pub const STAGE_TAG: &str = "vigil:stage";

impl ActionKind {
    /// The name [`Action::kind`] gives an action of this kind (as attempts record it).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Whether the action's effect can be undone or heals by itself: a restarted service, a
    /// replaced instance, an extra instance, a key or a transition enabled again. Detaching and
    /// quarantining take an instance away for people to look at: a person approves them unless
    /// a blocking rule says otherwise.
    pub fn reversible(self) -> bool {
        match self {
            ActionKind::ReplaceInstance
            | ActionKind::RestartService
            | ActionKind::ScaleOut
            | ActionKind::DeactivateAccessKey
            | ActionKind::FreezeDeployments
            | ActionKind::SuspendScaling
            | ActionKind::RollbackDeployment
            | ActionKind::StopDeployment
            | ActionKind::UnfreezeDeployments => true,
            ActionKind::DetachInstance | ActionKind::QuarantineInstance => false,
        }
    }
}

/// A rule: which incidents it covers, the remediation ladder, and the highest tier allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// The failure modes the rule covers.
    #[serde(default)]
    pub failure_modes: Vec<FailureMode>,
    /// The threats the rule covers (CloudTrail activity, GuardDuty findings).
    #[serde(default)]
    pub threats: Vec<ThreatClass>,
    #[serde(default)]
    pub min_confidence: f64,
    #[serde(default = "lowest_severity")]
    pub min_severity: Severity,
    /// Actions tried in order, each only when the one before did not verify; past the last
    /// rung, people are told. Empty: people are told straight away.
    #[serde(default)]
    pub ladder: Vec<ActionKind>,
    /// The highest tier the rule allows.
    pub tier: Tier,
    /// Shadow this rule even when the policy enforces.
    #[serde(default)]
    pub dry_run: bool,
}

fn lowest_severity() -> Severity {
    Severity::Info
}

/// What the rules propose for an incident, before the safety limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub tier: Tier,
    pub action: Option<Action>,
    pub mode: Mode,
    pub reasons: Vec<Reason>,
}

/// Facts about the world that the limits need, gathered by the handler through ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The runtime kill switch (SSM parameter) is engaged, or could not be read.
    pub kill_switch: bool,
    /// The capacity of the group the action touches, when it touches one.
    pub group: Option<GroupCapacity>,
    /// Earlier actions on the incident's resource, newest last.
    pub attempts: Vec<Attempt>,
}

impl Weekday {
    fn of(t: DateTime<Utc>) -> Weekday {
        match t.weekday() {
            chrono::Weekday::Mon => Weekday::Mon,
            chrono::Weekday::Tue => Weekday::Tue,
            chrono::Weekday::Wed => Weekday::Wed,
            chrono::Weekday::Thu => Weekday::Thu,
            chrono::Weekday::Fri => Weekday::Fri,
            chrono::Weekday::Sat => Weekday::Sat,
            chrono::Weekday::Sun => Weekday::Sun,
        }
    }

    fn before(self) -> Weekday {
        match self {
            Weekday::Mon => Weekday::Sun,
            Weekday::Tue => Weekday::Mon,
            Weekday::Wed => Weekday::Tue,
            Weekday::Thu => Weekday::Wed,
            Weekday::Fri => Weekday::Thu,
            Weekday::Sat => Weekday::Fri,
            Weekday::Sun => Weekday::Sat,
        }
    }
}

fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && hhmm.len() == 5).then_some(h * 60 + m)
}

impl MaintenanceWindow {
    /// Whether `t` falls in the window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let (Some(start), Some(end)) = (minutes(&self.start), minutes(&self.end)) else {
            return false;
        };
        let now = t.hour() * 60 + t.minute();
        let today = Weekday::of(t);
        if start <= end {
            self.days.contains(&today) && now >= start && now < end
        } else {
            // Past midnight: opened today and still before midnight, or opened yesterday.
            (self.days.contains(&today) && now >= start)
                || (self.days.contains(&today.before()) && now < end)
        }
    }
}

/// The `n` features furthest from zero, as `name=value` (the evidence a person checks first).
pub fn top_features(f: &crate::domain::FeatureVector, n: usize) -> String {
    let mut pairs: Vec<(&String, f64)> = f.names.iter().zip(f.values.iter().copied()).collect();
    pairs.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let shown: Vec<String> = pairs
        .iter()
        .take(n)
        .map(|(k, v)| format!("{k}={v:.3}"))
        .collect();
    format!("{} features; top: {}", f.schema, shown.join(", "))
}

impl Policy {
    /// The bundled default policy.
    pub fn bundled() -> Result<Self, PolicyError> {
        Self::from_yaml(DEFAULT_POLICY_YAML, "bundled")
    }

    /// Parses and validates a policy document; `source` names where it came from.
    pub fn from_yaml(text: &str, source: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                size: text.len(),
                max: MAX_POLICY_BYTES,
            });
        }
        let mut policy: Policy = serde_norway::from_str(text).map_err(PolicyError::Parse)?;
        policy.validate()?;
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        policy.id = format!("{source}@{}", &hash[..12]);
        Ok(policy)
    }

    /// The policy format's JSON Schema.
    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Policy);
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError::Invalid(m));
        if self.version != 1 {
            return bad(format!(
                "version {} is not supported (expected 1)",
                self.version
            ));
        }
        let share = self.limits.max_group_share;
        if !(share > 0.0 && share <= 1.0) {
            return bad(format!("limits.max_group_share {share} must be in (0, 1]"));
        }
        if self.limits.max_actions_per_hour == 0 {
            return bad("limits.max_actions_per_hour must be at least 1 (use the kill switch to stop actions)".into());
        }
        if self.limits.loop_breaker.max_attempts == 0 {
            return bad("limits.loop_breaker.max_attempts must be at least 1".into());
        }
        for w in &self.limits.maintenance_windows {
            if minutes(&w.start).is_none() || minutes(&w.end).is_none() || w.days.is_empty() {
                return bad(format!(
                    "maintenance window {:?}-{:?} needs days and HH:MM times",
                    w.start, w.end
                ));
            }
        }
        let t = &self.tiers;
        if !(0.0..=1.0).contains(&t.escalate_min_confidence) {
            return Err(PolicyError::Invalid(
                "tiers: escalate_min_confidence must be within [0, 1]".into(),
            ));
        }
        for (name, h) in [
            ("memory_horizon_hours", t.memory_horizon_hours),
            ("disk_horizon_hours", t.disk_horizon_hours),
            ("trend_min_t", t.trend_min_t),
        ] {
            if !(h.is_finite() && h >= 0.0) {
                return bad(format!(
                    "tiers: {name} must be a number of hours, 0 or more"
                ));
            }
        }
        let breach_ok =
            t.alarm_overrule_max_breach.is_finite() && t.alarm_overrule_max_breach >= 0.0;
        if !((0.0..=1.0).contains(&t.alarm_overruled_at) && breach_ok) {
            return bad(
                "tiers: alarm_overruled_at must be within [0, 1] and alarm_overrule_max_breach 0 or more".into(),
            );
        }
        if !(0.0..=1.0).contains(&t.alarm_corroborated_at)
            || !(0.0..=1.0).contains(&t.surge_min_group_share)
        {
            return bad(
                "tiers: alarm_corroborated_at and surge_min_group_share must be within [0, 1]"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&t.approval_min_confidence)
            || !(0.0..=1.0).contains(&t.auto_heal_min_confidence)
            || t.approval_min_confidence > t.auto_heal_min_confidence
        {
            return bad(
                "tiers: need 0 <= approval_min_confidence <= auto_heal_min_confidence <= 1".into(),
            );
        }
        for rule in &self.rules {
            if rule.name.trim().is_empty() {
                return bad("a rule has an empty name".into());
            }
            if !(0.0..=1.0).contains(&rule.min_confidence) {
                return bad(format!(
                    "rule {}: min_confidence {} must be in [0, 1]",
                    rule.name, rule.min_confidence
                ));
            }
            if rule.failure_modes.is_empty() && rule.threats.is_empty() {
                return bad(format!(
                    "rule {} names no failure mode and no threat",
                    rule.name
                ));
            }
            if !rule.ladder.is_empty()
                && !matches!(rule.tier, Tier::AutoHeal | Tier::Approval | Tier::Block)
            {
                return bad(format!(
                    "rule {}: a ladder of actions needs tier auto-heal, approval or block, not {}",
                    rule.name, rule.tier
                ));
            }
        }
        Ok(())
    }

    /// The cooldown, as a duration.
    pub fn cooldown(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.limits.cooldown_minutes))
    }

    /// The loop breaker's window, as a duration.
    pub fn loop_window(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.limits.loop_breaker.window_minutes))
    }

    /// The action a ladder rung asks for, on this incident's resource; `Err` says what is
    /// missing.
    fn action_for(kind: ActionKind, incident: &Incident) -> Result<Action, String> {
        let r = &incident.resource;
        let instance = || {
            r.instance_id()
                .ok()
                .flatten()
                .ok_or_else(|| format!("{r} is not an instance"))
        };
        let group = || {
            r.group
                .clone()
                .ok_or_else(|| format!("{r} is not in an Auto Scaling group"))
        };
        let tag = |key: &str| {
            r.tags
                .get(key)
                .ok_or_else(|| format!("{r} has no {key} tag"))
        };
        Ok(match kind {
            ActionKind::ReplaceInstance => Action::ReplaceInstance {
                instance: instance()?,
                group: group()?,
            },
            ActionKind::RestartService => Action::RestartService {
                instance: instance()?,
                group: group()?,
                service: ServiceName::parse(tag(SERVICE_TAG)?)
                    .map_err(|e| format!("its {SERVICE_TAG} tag is refused ({e})"))?,
            },
            ActionKind::ScaleOut => Action::ScaleOut {
                group: group()?,
                by: 1,
            },
            ActionKind::DetachInstance => Action::DetachInstance {
                instance: instance()?,
                group: group()?,
            },
            ActionKind::QuarantineInstance => Action::QuarantineInstance {
                instance: instance()?,
            },
            ActionKind::DeactivateAccessKey => {
                if r.kind != crate::domain::ResourceKind::AccessKey {
                    return Err(format!("{r} is not an access key"));
                }
                Action::DeactivateAccessKey {
                    access_key_id: AccessKeyId::parse(&r.id)
                        .map_err(|e| format!("the key id is refused ({e})"))?,
                }
            }
            ActionKind::StopDeployment => {
                let (pipeline, execution) = incident
                    .evidence
                    .iter()
                    .find_map(|e| match &e.observation.signal.kind {
                        crate::domain::SignalKind::Deployment {
                            pipeline,
                            execution_id,
                            ..
                        } => Some((pipeline.clone(), execution_id.clone())),
                        _ => None,
                    })
                    .ok_or_else(|| "the evidence holds no deployment".to_owned())?;
                Action::StopDeployment {
                    pipeline: PipelineName::parse(&pipeline)
                        .map_err(|e| format!("the pipeline name is refused ({e})"))?,
                    execution: PipelineName::parse(&execution)
                        .map_err(|e| format!("the execution id is refused ({e})"))?,
                }
            }
            ActionKind::UnfreezeDeployments => Action::UnfreezeDeployments {
                pipeline: PipelineName::parse(tag(PIPELINE_TAG)?)
                    .map_err(|e| format!("its {PIPELINE_TAG} tag is refused ({e})"))?,
                stage: PipelineName::parse(tag(STAGE_TAG)?)
                    .map_err(|e| format!("its {STAGE_TAG} tag is refused ({e})"))?,
            },
            ActionKind::FreezeDeployments | ActionKind::RollbackDeployment => {
                let pipeline = PipelineName::parse(tag(PIPELINE_TAG)?)
                    .map_err(|e| format!("its {PIPELINE_TAG} tag is refused ({e})"))?;
                let stage = PipelineName::parse(tag(STAGE_TAG)?)
                    .map_err(|e| format!("its {STAGE_TAG} tag is refused ({e})"))?;
                if kind == ActionKind::FreezeDeployments {
                    Action::FreezeDeployments { pipeline, stage }
                } else {
                    Action::RollbackDeployment { pipeline, stage }
                }
            }
            ActionKind::SuspendScaling => Action::SuspendScaling { group: group()? },
        })
    }

    /// Reconnaissance read from familiar calls whose only novelty is the network
    /// (`tiers.record_familiar_reads`): a reason to record it only.
    fn familiar_reads(&self, incident: &Incident) -> Option<Reason> {
        use crate::features::identity::NAMES;
        if !self.tiers.record_familiar_reads
            || incident.threat != Some(crate::domain::ThreatClass::Reconnaissance)
            || !model_only(incident)
        {
            return None;
        }
        let familiar = |f: &crate::domain::FeatureVector| {
            let is = |name: &str, want: f64| f.get(name) == Some(want);
            is("new_network", 1.0)
                && is("read_only", 1.0)
                && NAMES
                    .iter()
                    .filter(|n| !matches!(**n, "new_network" | "read_only" | "history"))
                    .all(|n| is(n, 0.0))
        };
        let calls: Vec<&crate::domain::FeatureVector> = incident
            .evidence
            .iter()
            .map(|e| &e.observation.features)
            .filter(|f| f.schema == crate::features::IDENTITY_V2)
            .collect();
        (!calls.is_empty() && calls.iter().all(|f| familiar(f))).then(|| {
            Reason::new(
                "policy:familiar-reads",
                format!(
                    "{} read as reconnaissance only because its calls came from a network new to it; each call is one it makes routinely (API, user agent, region), read-only, nothing denied: what travel, a VPN or a new instance looks like. Recorded; told when anything else about a call is new",
                    incident.resource.id
                ),
            )
        })
    }

    /// The second look at an alarm: a reason to record it only, when the alarm is barely past
    /// its threshold and the instance's own metrics, read when it fired, look normal.
    fn overruled(&self, incident: &Incident) -> Option<Reason> {
        use crate::domain::SignalKind;
        let t = &self.tiers;
        if t.alarm_overruled_at <= 0.0
            || incident.threat.is_some()
            || matches!(
                incident.failure_mode,
                FailureMode::Normal | FailureMode::Unknown | FailureMode::InstanceFailure
            )
        {
            return None;
        }
        let lead = incident.evidence.first()?;
        let SignalKind::AlarmStateChange { alarm, .. } = &lead.observation.signal.kind else {
            return None;
        };
        let breach = lead.observation.features.get("breach_ratio")?;
        if !(1.0..=1.0 + t.alarm_overrule_max_breach).contains(&breach) {
            return None;
        }
        let reading = incident.evidence.iter().find(|e| {
            e.observation.features.schema == crate::features::INSTANCE_V1
                && e.score.failure_mode == FailureMode::Normal
                && e.score.confidence >= t.alarm_overruled_at
        })?;
        Some(Reason::new(
            "policy:second-look",
            format!(
                "alarm {alarm:?} is {:.0}% past its threshold and {}'s own metrics read as normal (confidence {:.2}; {}): recorded, not paged",
                (breach - 1.0) * 100.0,
                incident.resource.id,
                reading.score.confidence,
                top_features(&reading.observation.features, 3)
            ),
        ))
    }

    /// Whether the second look leaves an alarm uncorroborated: the instance was read, and its
    /// own metrics do not name the alarm's failure with `alarm_corroborated_at` confidence.
    /// Such an alarm waits for a pull to confirm it (the handler applies
    /// `confirm_within_minutes`).
    pub fn uncorroborated_alarm(&self, incident: &Incident) -> Option<Reason> {
        use crate::domain::SignalKind;
        let t = &self.tiers;
        if t.alarm_corroborated_at <= 0.0
            || t.confirm_within_minutes == 0
            || incident.threat.is_some()
            || !t.alarm_corroborate.contains(&incident.failure_mode)
        {
            return None;
        }
        let lead = incident.evidence.first()?;
        let SignalKind::AlarmStateChange { alarm, .. } = &lead.observation.signal.kind else {
            return None;
        };
        let reading = incident
            .evidence
            .iter()
            .find(|e| e.observation.features.schema == crate::features::INSTANCE_V1)?;
        if reading.score.failure_mode == incident.failure_mode
            && reading.score.confidence >= t.alarm_corroborated_at
        {
            return None;
        }
        Some(Reason::new(
            "policy:uncorroborated",
            format!(
                "alarm {alarm:?} fired, but {}'s own metrics read as {} (confidence {:.2}; {}), not {} with {:.2} or more",
                incident.resource.id,
                reading.score.failure_mode,
                reading.score.confidence,
                top_features(&reading.observation.features, 3),
                incident.failure_mode,
                t.alarm_corroborated_at
            ),
        ))
    }

    /// A leak or a fill named from telemetry whose metric's six-hour window holds no certain
    /// upward trend: a reason to record it only.
    pub fn uncertain_trend(&self, incident: &Incident) -> Option<Reason> {
        use crate::domain::SignalKind;
        let min_t = self.tiers.trend_min_t;
        let metric = match incident.failure_mode {
            FailureMode::MemoryLeak => "mem_used_percent",
            FailureMode::DiskFilling => "disk_used_percent",
            _ => return None,
        };
        if min_t <= 0.0 || incident.threat.is_some() || !led_by_telemetry(incident) {
            return None;
        }
        let t = incident
            .evidence
            .iter()
            .filter(|e| {
                matches!(&e.observation.signal.kind,
                    SignalKind::MetricWindow { metric: m, .. } if crate::metrics::metric_name(m) == metric)
            })
            .filter_map(|e| e.observation.features.get("trend_t"))
            .max_by(f64::total_cmp)?;
        if t >= min_t {
            return None;
        }
        Some(Reason::new(
            "policy:uncertain-trend",
            format!(
                "{} named from the last hour, but {metric}'s six-hour trend is {t:.1} standard errors from flat, below {min_t:.1}: recorded, and watched by the next pulls",
                incident.what()
            ),
        ))
    }

    /// A finding read from telemetry soon after Vigil acted on the instance or its group, that
    /// the action does not address: the action's own effect on the metrics. `attempts` are
    /// the actions on the instance and on its group.
    pub fn settling(
        &self,
        incident: &Incident,
        attempts: &[Attempt],
        now: DateTime<Utc>,
    ) -> Option<Reason> {
        let window = self.tiers.settle_minutes;
        if window == 0 || incident.threat.is_some() || !led_by_telemetry(incident) {
            return None;
        }
        let since = now - chrono::Duration::minutes(i64::from(window));
        let last = attempts
            .iter()
            .filter(|a| a.at >= since && a.at <= now)
            .filter(|a| {
                matches!(
                    a.status,
                    OutcomeStatus::Verified | OutcomeStatus::Unverified
                )
            })
            .max_by_key(|a| a.at)?;
        let addresses = self.rules.iter().any(|r| {
            r.failure_modes.contains(&incident.failure_mode)
                && r.ladder.iter().any(|k| k.name() == last.action)
        });
        if addresses {
            return None;
        }
        Some(Reason::new(
            "policy:settling",
            format!(
                "{} after {} {} minute(s) ago (decision {}), which no rule uses against {}: read as the metrics settling after the action; recorded, and watched by the next pulls",
                incident.what(),
                last.action,
                (now - last.at).num_minutes(),
                last.decision_id,
                incident.failure_mode
            ),
        ))
    }

    /// The claim that people were told of a decision's failure, held for
    /// `tiers.repeat_minutes`: `told#<resource>#<failure>#<tier>`. `None` for a decision that
    /// tells no one, that acts (an action is limited by cooldowns, not by this), or that names
    /// a threat (an intruder's calls are grouped by `remediate` per act over 15 minutes only,
    /// so that another act is told at once), or when repeats are not limited.
    pub fn told_key(&self, d: &Decision) -> Option<String> {
        (self.tiers.repeat_minutes > 0
            && d.tier != Tier::Observe
            && !d.acts()
            && d.incident.threat.is_none())
        .then(|| {
            format!(
                "told#{}#{}#{}",
                d.incident.resource.id,
                d.incident.what(),
                d.tier
            )
        })
    }

    /// Records a decision whose finding people were told of within `tiers.repeat_minutes`.
    pub fn repeated(&self, mut d: Decision) -> Decision {
        let reason = Reason::new(
            "policy:repeat",
            format!(
                "people were told of {} on {} at tier {} in the last {} minutes: recorded, told again once that has passed",
                d.incident.what(),
                d.incident.resource.id,
                d.tier,
                self.tiers.repeat_minutes
            ),
        );
        d.tier = Tier::Observe;
        d.action = None;
        d.reasons.push(reason);
        d
    }

    /// A traffic surge read on one instance whose group, read in the same pull, does not share
    /// it: a reason to record it only. `peers` is the pull's reading of each group.
    pub fn lone_surge(&self, incident: &Incident, peers: &GroupReadings) -> Option<Reason> {
        let share = self.tiers.surge_min_group_share;
        if share <= 0.0
            || incident.threat.is_some()
            || incident.failure_mode != FailureMode::TrafficSurge
            || !led_by_telemetry(incident)
        {
            return None;
        }
        let group = incident.resource.group.as_ref()?;
        let (read, surging) = peers.of(group.as_str());
        if read < 2 || surging as f64 >= share * read as f64 {
            return None;
        }
        Some(Reason::new(
            "policy:lone-surge",
            format!(
                "{surging} of the {read} instances of group {group} read in this pull show a traffic surge, below the share of {share:.2} that makes it the service's: recorded, not scaled"
            ),
        ))
    }

    /// A proposal that changes nothing: recorded (`Observe`) or told (`Escalate`), with its
    /// reasons.
    fn no_action(&self, tier: Tier, reasons: Vec<Reason>) -> Proposal {
        Proposal {
            tier,
            action: None,
            mode: self.mode,
            reasons,
        }
    }

    /// Matches the incident against the rules (first match wins) and picks the ladder's rung
    /// from the earlier attempts on the resource.
    pub fn propose(
        &self,
        incident: &Incident,
        attempts: &[Attempt],
        now: DateTime<Utc>,
    ) -> Proposal {
        let mut reasons = vec![
            Reason::new(
                "score",
                format!(
                    "{} scored {} with confidence {:.2} (severity {})",
                    incident.resource,
                    incident.what(),
                    incident.confidence,
                    incident.severity
                ),
            ),
            Reason::new("policy", format!("policy {}", self.id)),
        ];
        if let Some(lead) = incident.evidence.first() {
            reasons.push(Reason::new(
                "features",
                top_features(&lead.observation.features, 4),
            ));
        }
        if incident.threat.is_none() && incident.failure_mode == FailureMode::Normal {
            reasons.push(Reason::new(
                "policy:normal",
                "no anomaly found: record only",
            ));
            return self.no_action(Tier::Observe, reasons);
        }
        if let Some(account) = &incident.resource.account {
            reasons.push(Reason::new(
                "policy:member-account",
                format!(
                    "{} is in account {account}, not the one Vigil runs in: people are told, nothing is changed there (a name in another account is another resource)",
                    incident.resource.id
                ),
            ));
            return self.no_action(Tier::Escalate, reasons);
        }
        if let Some(why) = self
            .overruled(incident)
            .or_else(|| self.familiar_reads(incident))
        {
            reasons.push(why);
            return self.no_action(Tier::Observe, reasons);
        }
        // Threats are named only above the threat classifier's own calibrated threshold
        // (its card); the bar is for failure modes named from telemetry.
        if incident.threat.is_none()
            && model_only(incident)
            && incident.confidence < self.tiers.escalate_min_confidence
        {
            reasons.push(Reason::new(
                "policy:below-escalation",
                format!(
                    "{} at confidence {:.2}, below the bar of {:.2} for telling people about a model's own finding: recorded only",
                    incident.what(),
                    incident.confidence,
                    self.tiers.escalate_min_confidence
                ),
            ));
            return self.no_action(Tier::Observe, reasons);
        }
        if let Some(why) = self.uncertain_trend(incident) {
            reasons.push(why);
            return self.no_action(Tier::Observe, reasons);
        }
        let horizon = match incident.failure_mode {
            FailureMode::MemoryLeak => self.tiers.memory_horizon_hours,
            FailureMode::DiskFilling => self.tiers.disk_horizon_hours,
            _ => 0.0,
        };
        if let (true, Some(hours)) = (
            horizon > 0.0 && incident.threat.is_none() && led_by_telemetry(incident),
            incident.hours_to_exhaustion(),
        ) && hours > horizon
        {
            reasons.push(Reason::new(
                "policy:beyond-horizon",
                format!(
                    "{} projected to run out in {hours:.0} h, beyond the {horizon:.0} h horizon for telling people: recorded, and watched by the next pulls",
                    incident.what()
                ),
            ));
            return self.no_action(Tier::Observe, reasons);
        }
        let rule = self.rules.iter().find(|r| {
            let covers = match incident.threat {
                Some(t) => r.threats.contains(&t),
                None => r.failure_modes.contains(&incident.failure_mode),
            };
            covers && incident.confidence >= r.min_confidence && incident.severity >= r.min_severity
        });
        if let (Some(threat), None) = (incident.threat, rule) {
            reasons.push(Reason::new(
                "policy:threat",
                format!(
                    "{threat} suspected at confidence {:.2}: no rule contains it, people are told, nothing is changed",
                    incident.confidence
                ),
            ));
            return self.no_action(Tier::Escalate, reasons);
        }
        let Some(rule) = rule else {
            reasons.push(Reason::new(
                "policy:no-rule",
                format!(
                    "no rule acts on {} at confidence {:.2}, severity {}: people are told, nothing is changed",
                    incident.failure_mode, incident.confidence, incident.severity
                ),
            ));
            return self.no_action(Tier::Escalate, reasons);
        };
        let mode = if rule.dry_run {
            Mode::DryRun
        } else {
            self.mode
        };
        let code = format!("rule:{}", rule.name);
        let escalate = |mut reasons: Vec<Reason>, why: String| {
            reasons.push(Reason::new(code.clone(), why));
            Proposal {
                tier: Tier::Escalate,
                action: None,
                mode,
                reasons,
            }
        };
        if rule.ladder.is_empty() {
            reasons.push(Reason::new(
                code.clone(),
                format!("{} matched: tier {}", incident.failure_mode, rule.tier),
            ));
            return Proposal {
                tier: rule.tier,
                action: None,
                mode,
                reasons,
            };
        }
        // The rung: one past each rung that was tried in the window and did not verify.
        let since = now - self.loop_window();
        let failed = attempts
            .iter()
            .filter(|a| {
                a.at >= since
                    && a.status != OutcomeStatus::Verified
                    && a.status != OutcomeStatus::NotActed
            })
            .count();
        // Rungs that cannot apply to this resource (no service tag, not an access key, ...)
        // are skipped, with their reason; the ladder climbs the applicable ones.
        let mut applicable = Vec::with_capacity(rule.ladder.len());
        for kind in &rule.ladder {
            match Self::action_for(*kind, incident) {
                Ok(action) => applicable.push((*kind, action)),
                Err(why) => reasons.push(Reason::new(
                    code.clone(),
                    format!("rung {kind:?} skipped: {why}"),
                )),
            }
        }
        if applicable.is_empty() {
            return escalate(
                reasons,
                "no rung of the ladder applies to this resource: escalating".to_owned(),
            );
        }
        let total = applicable.len();
        let Some((kind, action)) = applicable.into_iter().nth(failed) else {
            return escalate(
                reasons,
                format!(
                    "every applicable rung of the ladder ({total}) was tried and none verified: escalating"
                ),
            );
        };
        // The tier follows from the rule's ceiling, the confidence and reversibility.
        let t = &self.tiers;
        let tier = if incident.confidence < t.approval_min_confidence {
            return escalate(
                reasons,
                format!(
                    "confidence {:.2} is below {:.2}: too unsure to propose {action}",
                    incident.confidence, t.approval_min_confidence
                ),
            );
        } else if matches!(rule.tier, Tier::AutoHeal | Tier::Block)
            && (incident.confidence < t.auto_heal_min_confidence
                || (rule.tier == Tier::AutoHeal && !kind.reversible()))
        {
            reasons.push(Reason::new(
                "tier",
                format!(
                    "confidence {:.2} < {:.2} or the action cannot be undone: a person approves",
                    incident.confidence, t.auto_heal_min_confidence
                ),
            ));
            Tier::Approval
        } else {
            rule.tier
        };
        reasons.push(Reason::new(
            code,
            format!(
                "{} with confidence {:.2} >= {:.2}: rung {} of {}: {action}",
                incident.what(),
                incident.confidence,
                rule.min_confidence,
                failed + 1,
                total
            ),
        ));
        Proposal {
            tier,
            action: Some(action),
            mode,
            reasons,
        }
    }

    /// Applies the safety limits to a proposal and produces the decision.
    pub fn decide(
        &self,
        incident: Incident,
        proposal: Proposal,
        facts: &Facts,
        now: DateTime<Utc>,
    ) -> Decision {
        let Proposal {
            tier,
            action,
            mode,
            reasons,
        } = proposal;
        let id = match &action {
            Some(a) => format!("{}:{}", incident.id, a.kind()),
            None => format!("{}:{}", incident.id, tier),
        };
        let mut decision = Decision {
            id,
            incident,
            tier,
            action,
            mode,
            reasons,
            decided_at: now,
        };
        if decision.action.is_none() {
            return decision;
        }
        let limits = &self.limits;

        if self.kill_switch || facts.kill_switch {
            return decision.hold(Reason::new(
                "limit:kill-switch",
                "engaged: no action is taken, people are told",
            ));
        }
        decision
            .reasons
            .push(Reason::new("limit:kill-switch", "off"));

        let protected = decision
            .incident
            .resource
            .tags
            .get(&limits.protect_tag)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if protected {
            let why = format!(
                "{} is tagged {}=true: never acted on",
                decision.incident.resource, limits.protect_tag
            );
            return decision.hold(Reason::new("limit:protected", why));
        }
        decision.reasons.push(Reason::new(
            "limit:protected",
            format!("not tagged {}=true", limits.protect_tag),
        ));

        if let Some(w) = limits.maintenance_windows.iter().find(|w| w.contains(now)) {
            let mut d = decision.hold(Reason::new(
                "limit:maintenance",
                format!(
                    "maintenance window {}-{} UTC is open: recorded only",
                    w.start, w.end
                ),
            ));
            d.tier = Tier::Observe;
            return d;
        }
        decision.reasons.push(Reason::new(
            "limit:maintenance",
            format!(
                "no window open ({} configured)",
                limits.maintenance_windows.len()
            ),
        ));

        let since = now - self.loop_window();
        let recent = facts.attempts.iter().filter(|a| a.at >= since).count();
        let max = limits.loop_breaker.max_attempts as usize;
        if recent >= max {
            let why = format!(
                "{recent} actions on {} in the last {} minutes (limit {max}): stopping, a person must look",
                decision.incident.resource, limits.loop_breaker.window_minutes
            );
            return decision.hold(Reason::new("limit:loop-breaker", why));
        }
        decision.reasons.push(Reason::new(
            "limit:loop-breaker",
            format!(
                "{recent}/{max} actions in the last {} minutes",
                limits.loop_breaker.window_minutes
            ),
        ));

        if let Some(Action::ScaleOut { group, by }) = &decision.action {
            let Some(cap) = &facts.group else {
                return decision.hold(Reason::new(
                    "limit:blast-radius",
                    "the group's capacity is unknown, so the scale-out cannot be bounded",
                ));
            };
            if cap.desired >= cap.max_size {
                let msg = format!(
                    "group {group} is at its maximum of {} instances: it cannot scale out",
                    cap.max_size
                );
                return decision.hold(Reason::new("limit:blast-radius", msg));
            }
            decision.reasons.push(Reason::new(
                "limit:blast-radius",
                format!(
                    "group {group}: desired {} -> at most {} (maximum {})",
                    cap.desired,
                    (cap.desired + by).min(cap.max_size),
                    cap.max_size
                ),
            ));
        }
        if let Some(group) = decision.action.as_ref().and_then(Action::removes_instance) {
            let group = group.clone();
            let Some(cap) = &facts.group else {
                return decision.hold(Reason::new(
                    "limit:blast-radius",
                    "the group's capacity is unknown, so the blast radius cannot be checked",
                ));
            };
            let after = cap.in_service.saturating_sub(1);
            let share = if cap.in_service == 0 {
                1.0
            } else {
                1.0 / f64::from(cap.in_service)
            };
            if after < limits.min_in_service {
                let msg = format!(
                    "group {group} has {} InService instance(s); replacing one would leave {after}, below the minimum of {}",
                    cap.in_service, limits.min_in_service
                );
                return decision.hold(Reason::new("limit:blast-radius", msg));
            }
            if share > limits.max_group_share {
                let msg = format!(
                    "replacing 1 of {} InService instances in group {group} is {:.0}% of it, above the {:.0}% limit",
                    cap.in_service,
                    share * 100.0,
                    limits.max_group_share * 100.0
                );
                return decision.hold(Reason::new("limit:blast-radius", msg));
            }
            decision.reasons.push(Reason::new(
                "limit:blast-radius",
                format!(
                    "group {group}: {} InService, {after} left during replacement (minimum {})",
                    cap.in_service, limits.min_in_service
                ),
            ));
        }
        if decision.mode == Mode::DryRun {
            decision.reasons.push(Reason::new(
                "mode:dry-run",
                "dry-run: the action is recorded and reported, not carried out",
            ));
        }
        decision
    }
}

impl Decision {
    /// Withholds the decision's action: people are told instead, with the reason.
    pub fn hold(mut self, reason: Reason) -> Decision {
        self.tier = Tier::Escalate;
        self.reasons.push(reason);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Resource, ResourceKind};
    use crate::names::{GroupName, InstanceId};
    use chrono::TimeZone;

    fn check_yaml(yaml: &str, expect_err: Option<&str>) {
        match (Policy::from_yaml(yaml, "test"), expect_err) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => {
                let got = crate::error_chain(&e);
                assert!(got.contains(want), "{got:?} does not mention {want:?}");
            }
            (got, want) => panic!("{yaml}\nexpected {want:?}, got {got:?}"),
        }
    }

    const LIMITS: &str = "limits: {cooldown_minutes: 30, max_group_share: 0.5, min_in_service: 1}";

    #[test]
    fn bundled_policy_is_valid_and_safe_by_default() {
        let p = Policy::bundled().unwrap();
        assert_eq!(p.mode, Mode::DryRun);
        assert!(!p.kill_switch);
        assert!(p.limits.cooldown_minutes > 0 && p.limits.max_actions_per_hour > 0);
        assert!(p.id.starts_with("bundled@"));
    }

    #[test]
    fn invalid_policies_are_refused_with_a_reason() {
        check_yaml(&format!("version: 1\n{LIMITS}\nrules: []"), None);
        check_yaml(
            &format!("version: 2\n{LIMITS}\nrules: []"),
            Some("version 2"),
        );
        check_yaml(
            "version: 1\nlimits: {cooldown_minutes: 30, max_group_share: 1.5, min_in_service: 1}\nrules: []",
            Some("max_group_share"),
        );
        check_yaml(
            "version: 1\nlimits: {cooldown_minutes: 30, max_group_share: 0.5, min_in_service: 1, max_actions_per_hour: 0}\nrules: []",
            Some("max_actions_per_hour"),
        );
        check_yaml(
            "version: 1\nlimits: {cooldown_minutes: 30, max_group_share: 0.5, min_in_service: 1, maintenance_windows: [{days: [sat], start: '25:00', end: '02:00'}]}\nrules: []",
            Some("maintenance window"),
        );
        check_yaml(
            &format!("version: 1\n{LIMITS}\nrules: []\nsurprise: true"),
            Some("surprise"),
        );
        check_yaml(
            &format!(
                "version: 1\n{LIMITS}\ntiers: {{auto_heal_min_confidence: 0.4, approval_min_confidence: 0.6}}\nrules: []"
            ),
            Some("tiers"),
        );
        check_yaml(
            &format!(
                "version: 1\n{LIMITS}\nrules: [{{name: r, failure_modes: [cpu_runaway], ladder: [replace_instance], tier: escalate}}]"
            ),
            Some("needs tier auto-heal, approval or block"),
        );
        check_yaml(
            &format!(
                "version: 1\n{LIMITS}\nrules: [{{name: r, failure_modes: [], tier: escalate}}]"
            ),
            Some("names no failure mode"),
        );
        check_yaml(
            &format!(
                "version: 1\n{LIMITS}\nrules: [{{name: r, failure_modes: [cpu_fire], tier: escalate}}]"
            ),
            Some("not valid YAML for Vigil's policy format"),
        );
        check_yaml(&"x".repeat(MAX_POLICY_BYTES + 1), Some("above the"));
    }

    #[test]
    fn the_published_schema_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/policy/schema.json"
        );
        let published = std::fs::read_to_string(path).unwrap_or_default();
        // Compared as JSON values: key order depends on serde_json features unified in a build.
        let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
        assert_eq!(
            parse(&published),
            parse(&Policy::json_schema()),
            "infra/policy/schema.json is stale: run `cargo run -p vigil-cli -- policy schema > infra/policy/schema.json`"
        );
    }

    // --- Decisions, table-driven: one row per tier and per limit. ---------------------------

    fn t0() -> DateTime<Utc> {
        // A Wednesday.
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn incident(mode: FailureMode, confidence: f64, severity: Severity) -> Incident {
        let instance = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let mut resource = Resource::new(ResourceKind::Instance, instance.to_string());
        resource.group = Some(GroupName::parse("web").unwrap());
        Incident {
            id: "i-0123456789abcdef0:event".into(),
            resource,
            failure_mode: mode,
            threat: None,
            severity,
            confidence,
            opened_at: t0(),
            evidence: Vec::new(),
        }
    }

    fn threat(t: crate::domain::ThreatClass, resource: Resource) -> Incident {
        Incident {
            threat: Some(t),
            resource,
            ..incident(FailureMode::Normal, 0.95, Severity::High)
        }
    }

    /// One piece of evidence on the test incident's instance: a pulled reading (`window`: the
    /// metric label of a six-hour window, else the instance's whole reading) with its score.
    fn reading(
        window: Option<&str>,
        mode: FailureMode,
        confidence: f64,
        features: &[(&str, f64)],
    ) -> crate::domain::Scored {
        use crate::domain::{Observation, Scored, Signal, SignalKind, Source};
        let resource = incident(FailureMode::Normal, 0.0, Severity::Low).resource;
        let (schema, kind) = match window {
            Some(metric) => (
                crate::features::WINDOW_V3,
                SignalKind::MetricWindow {
                    metric: metric.into(),
                    period: 60,
                    points: Vec::new(),
                },
            ),
            None => (
                crate::features::INSTANCE_V1,
                SignalKind::InstanceMetrics {
                    metrics: Vec::new(),
                    period: 60,
                    points: 60,
                },
            ),
        };
        let mut score = crate::domain::Score::unscored("test");
        score.failure_mode = mode;
        score.confidence = confidence;
        Scored {
            observation: Observation {
                signal: Signal {
                    event_id: "tick".into(),
                    source: Source::MetricPull,
                    resource,
                    observed_at: t0(),
                    kind,
                    values: BTreeMap::new(),
                },
                features: crate::domain::FeatureVector {
                    schema: schema.into(),
                    names: features.iter().map(|(n, _)| (*n).to_owned()).collect(),
                    values: features.iter().map(|(_, v)| *v).collect(),
                },
            },
            score,
        }
    }

    fn led_by(evidence: Vec<crate::domain::Scored>) -> Incident {
        let lead = &evidence[0].score;
        Incident {
            evidence: evidence.clone(),
            ..incident(lead.failure_mode, lead.confidence, Severity::Medium)
        }
    }

    #[test]
    fn a_leak_or_fill_counts_only_with_a_certain_six_hour_trend() {
        let policy = Policy::bundled().unwrap();
        let fill = |t: Option<f64>| {
            let mut evidence = vec![reading(None, FailureMode::DiskFilling, 0.9, &[])];
            if let Some(t) = t {
                evidence.push(reading(
                    Some("CWAgent/disk_used_percent:/"),
                    FailureMode::Normal,
                    0.9,
                    &[("trend_t", t)],
                ));
            }
            led_by(evidence)
        };
        // Noise on a full disk: the hour reads as a fill, the six hours do not.
        let p = policy.propose(&fill(Some(3.7)), &[], t0());
        assert_eq!(p.tier, Tier::Observe, "{:?}", p.reasons);
        assert!(p.reasons.iter().any(|r| r.code == "policy:uncertain-trend"));
        // A certain trend, or no six-hour window to judge by: the reading goes on.
        for certain in [fill(Some(9.8)), fill(None)] {
            let p = policy.propose(&certain, &[], t0());
            assert_ne!(p.tier, Tier::Observe, "{:?}", p.reasons);
        }
        // A memory window does not speak for the disk.
        let mut other = fill(None);
        other.evidence.push(reading(
            Some("CWAgent/mem_used_percent"),
            FailureMode::Normal,
            0.9,
            &[("trend_t", 0.5)],
        ));
        assert!(policy.uncertain_trend(&other).is_none());
    }

    #[test]
    fn metrics_settling_after_an_action_are_not_a_new_failure() {
        let policy = Policy::bundled().unwrap();
        let attempt = |action: &str, minutes_ago: i64, status: OutcomeStatus| Attempt {
            at: t0() - chrono::Duration::minutes(minutes_ago),
            action: action.into(),
            status,
            decision_id: "d-1".into(),
        };
        let partition = led_by(vec![reading(None, FailureMode::NetworkPartition, 0.9, &[])]);
        let runaway = led_by(vec![reading(None, FailureMode::CpuRunaway, 0.9, &[])]);
        let restarted = [attempt("restart_service", 20, OutcomeStatus::Verified)];
        // A restart 20 minutes ago drops the CPU: read as a partition, it is the restart.
        let why = policy.settling(&partition, &restarted, t0()).unwrap();
        assert!(
            why.message.contains("restart_service 20 minute(s) ago"),
            "{why:?}"
        );
        // The failure the restart addresses, found again: the restart did not work.
        assert!(policy.settling(&runaway, &restarted, t0()).is_none());
        // Long enough ago, or an action that was not carried out: nothing to settle.
        let old = [attempt("restart_service", 90, OutcomeStatus::Verified)];
        let failed = [attempt("restart_service", 20, OutcomeStatus::Failed)];
        assert!(policy.settling(&partition, &old, t0()).is_none());
        assert!(policy.settling(&partition, &failed, t0()).is_none());
        // A scale-out of the group settles the instances' traffic too.
        let scaled = [attempt("scale_out", 10, OutcomeStatus::Verified)];
        assert!(policy.settling(&partition, &scaled, t0()).is_some());
    }

    #[test]
    fn a_surge_counts_for_the_group_only_when_its_instances_share_it() {
        let policy = Policy::bundled().unwrap();
        let on = |id: &str, mode: FailureMode| {
            let mut r = reading(None, mode, 0.9, &[]);
            r.observation.signal.resource.id = id.into();
            r
        };
        let surge = led_by(vec![on("i-0123456789abcdef0", FailureMode::TrafficSurge)]);
        let batch = |surging: usize| {
            let ids = [
                "i-0123456789abcdef0",
                "i-0123456789abcdef1",
                "i-0123456789abcdef2",
            ];
            let readings: Vec<_> = ids
                .iter()
                .enumerate()
                .map(|(n, id)| {
                    on(
                        id,
                        if n < surging {
                            FailureMode::TrafficSurge
                        } else {
                            FailureMode::Normal
                        },
                    )
                })
                .collect();
            GroupReadings::of_batch(&readings)
        };
        assert_eq!(batch(1).of("web"), (3, 1));
        assert!(policy.lone_surge(&surge, &batch(1)).is_some());
        assert!(policy.lone_surge(&surge, &batch(2)).is_none());
        // A group of one, or a group not read in this batch: nothing to compare with.
        assert!(
            policy
                .lone_surge(&surge, &GroupReadings::default())
                .is_none()
        );
    }

    #[test]
    fn a_threat_with_nothing_to_contain_is_escalated() {
        use crate::domain::ThreatClass;
        let policy = Policy::bundled().unwrap();
        let principal = Resource::new(ResourceKind::Principal, "arn:aws:iam::1:user/alice");
        let p = policy.propose(&threat(ThreatClass::DefenceEvasion, principal), &[], t0());
        assert_eq!(p.tier, Tier::Escalate);
        assert!(p.action.is_none());
        let cited = |code: &str, text: &str| {
            p.reasons
                .iter()
                .any(|r| r.code == code && r.message.contains(text))
        };
        assert!(
            cited("rule:freeze-on-intrusion", "no vigil:pipeline tag"),
            "{:?}",
            p.reasons
        );
        assert!(
            cited("rule:freeze-on-intrusion", "no rung"),
            "{:?}",
            p.reasons
        );
    }

    #[test]
    fn only_failures_told_without_acting_are_limited_to_one_telling_per_period() {
        use crate::domain::ThreatClass;
        let mut policy = Policy::bundled().unwrap();
        enforce(&mut policy);
        let facts = Facts {
            group: healthy_group(),
            ..Facts::default()
        };
        let decided = |i: Incident| {
            let p = policy.propose(&i, &[], t0());
            policy.decide(i, p, &facts, t0())
        };
        // Told, nothing done: one telling per period, keyed by resource, failure and tier.
        let told = decided(incident(FailureMode::DiskFilling, 0.9, Severity::High));
        assert_eq!(told.tier, Tier::Escalate);
        assert_eq!(
            policy.told_key(&told).as_deref(),
            Some("told#i-0123456789abcdef0#disk filling#escalate")
        );
        let repeated = policy.repeated(told);
        assert_eq!(repeated.tier, Tier::Observe);
        assert!(repeated.action.is_none() && repeated.cites("policy:repeat"));
        // An action is limited by cooldowns, and every threat is told.
        let acts = decided(incident(FailureMode::InstanceFailure, 0.95, Severity::High));
        assert!(acts.acts(), "{:?}", acts.reasons);
        assert_eq!(policy.told_key(&acts), None);
        let principal = Resource::new(ResourceKind::Principal, "arn:aws:iam::1:user/alice");
        let threat = decided(threat(ThreatClass::DefenceEvasion, principal));
        assert_eq!(threat.tier, Tier::Escalate);
        assert_eq!(policy.told_key(&threat), None);
        // 0 turns it off.
        let mut off = policy.clone();
        off.tiers.repeat_minutes = 0;
        let told = decided(incident(FailureMode::DiskFilling, 0.9, Severity::High));
        assert_eq!(off.told_key(&told), None);
    }

    #[test]
    fn reconnaissance_read_only_from_a_new_network_on_familiar_calls_is_recorded() {
        use crate::domain::{Observation, Scored, Signal, SignalKind, Source, ThreatClass};
        use crate::features::{IDENTITY_V2, identity::NAMES};
        let policy = Policy::bundled().unwrap();
        let call = |set: &[(&str, f64)]| {
            let values = NAMES
                .iter()
                .map(|n| set.iter().find(|(k, _)| k == n).map_or(0.0, |(_, v)| *v))
                .collect();
            Scored {
                observation: Observation {
                    signal: Signal {
                        event_id: "e".into(),
                        source: Source::CloudTrail,
                        resource: Resource::new(
                            ResourceKind::Principal,
                            "arn:aws:sts::1:assumed-role/app/s",
                        ),
                        observed_at: t0(),
                        kind: SignalKind::ApiCall(crate::domain::ApiCall {
                            event_source: "ec2.amazonaws.com".into(),
                            event_name: "DescribeInstances".into(),
                            principal: crate::domain::Principal {
                                kind: "AssumedRole".into(),
                                id: "arn:aws:sts::1:assumed-role/app/s".into(),
                                name: Some("app".into()),
                                access_key_id: None,
                                mfa_authenticated: None,
                            },
                            source_ip: "203.0.113.9".into(),
                            user_agent: "aws-sdk-go".into(),
                            region: "us-east-1".into(),
                            error_code: None,
                            read_only: Some(true),
                            request: Vec::new(),
                        }),
                        values: Default::default(),
                    },
                    features: crate::domain::FeatureVector {
                        schema: IDENTITY_V2.into(),
                        names: NAMES.iter().map(|n| (*n).to_owned()).collect(),
                        values,
                    },
                },
                score: crate::domain::Score::unscored("test"),
            }
        };
        let recon = |calls: Vec<Scored>| {
            let mut i = threat(
                ThreatClass::Reconnaissance,
                Resource::new(ResourceKind::Principal, "arn:aws:sts::1:assumed-role/app/s"),
            );
            i.evidence = calls;
            policy.propose(&i, &[], t0())
        };
        let familiar = [("new_network", 1.0), ("read_only", 1.0), ("history", 7.0)];
        let p = recon(vec![call(&familiar), call(&familiar)]);
        assert_eq!(p.tier, Tier::Observe);
        assert!(p.reasons.iter().any(|r| r.code == "policy:familiar-reads"));
        // Anything else new about one of the calls: told.
        for extra in [
            "new_api",
            "new_user_agent",
            "new_region",
            "access_denied_15m",
            "tactic_discovery",
        ] {
            let mut odd = familiar.to_vec();
            odd.push((extra, 1.0));
            let p = recon(vec![call(&familiar), call(&odd)]);
            assert_eq!(p.tier, Tier::Escalate, "{extra}");
        }
        // A write from a new network: told.
        let p = recon(vec![call(&[("new_network", 1.0), ("history", 7.0)])]);
        assert_eq!(p.tier, Tier::Escalate);
        // Off: told.
        let mut off = policy.clone();
        off.tiers.record_familiar_reads = false;
        let mut i = threat(
            ThreatClass::Reconnaissance,
            Resource::new(ResourceKind::Principal, "arn:aws:sts::1:assumed-role/app/s"),
        );
        i.evidence = vec![call(&familiar)];
        assert_eq!(off.propose(&i, &[], t0()).tier, Tier::Escalate);
    }

    #[test]
    fn threats_are_contained_where_they_can_be() {
        use crate::domain::ThreatClass;
        let mut policy = Policy::bundled().unwrap();
        policy.mode = Mode::Enforce;
        // A leaked key is deactivated.
        let key = Resource::new(ResourceKind::AccessKey, "AKIAIOSFODNN7EXAMPLE");
        let p = policy.propose(&threat(ThreatClass::CredentialCompromise, key), &[], t0());
        assert_eq!(p.tier, Tier::Block);
        assert!(
            matches!(&p.action, Some(Action::DeactivateAccessKey { access_key_id }) if access_key_id.as_str() == "AKIAIOSFODNN7EXAMPLE")
        );
        // A compromised instance is quarantined (the key rung does not apply to it).
        let instance = incident(FailureMode::Normal, 0.95, Severity::High).resource;
        let p = policy.propose(
            &threat(ThreatClass::CredentialCompromise, instance),
            &[],
            t0(),
        );
        assert!(
            matches!(p.action, Some(Action::QuarantineInstance { .. })),
            "{:?}",
            p.reasons
        );
        // An intrusion into a tagged application freezes its deployments.
        let mut app = Resource::new(ResourceKind::Principal, "arn:aws:iam::1:role/ci");
        app.tags.insert(PIPELINE_TAG.into(), "web-release".into());
        app.tags.insert(STAGE_TAG.into(), "Production".into());
        let p = policy.propose(&threat(ThreatClass::Persistence, app.clone()), &[], t0());
        assert!(
            matches!(&p.action, Some(Action::FreezeDeployments { pipeline, stage }) if pipeline.as_str() == "web-release" && stage.as_str() == "Production")
        );
        // A hostile tag value never becomes an action.
        app.tags.insert(STAGE_TAG.into(), "Prod; rm -rf /".into());
        let p = policy.propose(&threat(ThreatClass::Persistence, app), &[], t0());
        assert!(p.action.is_none());
        assert_eq!(p.tier, Tier::Escalate);
        // Unsure: a person approves.
        let mut unsure = threat(
            ThreatClass::CredentialCompromise,
            Resource::new(ResourceKind::AccessKey, "AKIAIOSFODNN7EXAMPLE"),
        );
        unsure.confidence = 0.85;
        policy.tiers.auto_heal_min_confidence = 0.9;
        let p = policy.propose(&unsure, &[], t0());
        assert_eq!(p.tier, Tier::Approval);
    }

    #[test]
    fn the_ladder_restarts_a_tagged_service_first_and_skips_it_otherwise() {
        let policy = Policy::bundled().unwrap();
        let mut i = incident(FailureMode::MemoryLeak, 0.9, Severity::High);
        let p = policy.propose(&i, &[], t0());
        assert!(
            matches!(p.action, Some(Action::ReplaceInstance { .. })),
            "{:?}",
            p.reasons
        );
        assert!(
            p.reasons
                .iter()
                .any(|r| r.message.contains("RestartService skipped"))
        );
        i.resource
            .tags
            .insert(SERVICE_TAG.into(), "api.service".into());
        let p = policy.propose(&i, &[], t0());
        assert!(
            matches!(&p.action, Some(Action::RestartService { service, .. }) if service.as_str() == "api.service")
        );
        // The restart did not verify: the next rung replaces the instance.
        let failed = Attempt {
            at: t0() - chrono::Duration::minutes(5),
            action: "restart_service".into(),
            status: OutcomeStatus::Failed,
            decision_id: "d".into(),
        };
        let p = policy.propose(&i, &[failed], t0());
        assert!(matches!(p.action, Some(Action::ReplaceInstance { .. })));
        // A service name that could be a shell command is refused: the rung is skipped.
        i.resource
            .tags
            .insert(SERVICE_TAG.into(), "api;reboot".into());
        let p = policy.propose(&i, &[], t0());
        assert!(matches!(p.action, Some(Action::ReplaceInstance { .. })));
        assert!(p.reasons.iter().any(|r| r.message.contains("refused")));
    }

    fn attempt(minutes_ago: i64, status: OutcomeStatus) -> Attempt {
        Attempt {
            at: t0() - chrono::Duration::minutes(minutes_ago),
            action: "replace_instance".into(),
            status,
            decision_id: "d".into(),
        }
    }

    struct Row {
        name: &'static str,
        policy: fn(&mut Policy),
        incident: Incident,
        facts: Facts,
        tier: Tier,
        acts: bool,
        cites: &'static str,
    }

    fn healthy_group() -> Option<GroupCapacity> {
        Some(GroupCapacity {
            min_size: 1,
            max_size: 6,
            desired: 3,
            in_service: 3,
        })
    }

    fn enforce(p: &mut Policy) {
        p.mode = Mode::Enforce;
    }

    fn check(row: Row) {
        let mut policy = Policy::bundled().unwrap();
        (row.policy)(&mut policy);
        let proposal = policy.propose(&row.incident, &row.facts.attempts, t0());
        let d = policy.decide(row.incident, proposal, &row.facts, t0());
        assert_eq!(d.tier, row.tier, "{}: {:#?}", row.name, d.reasons);
        assert_eq!(d.acts(), row.acts, "{}", row.name);
        assert!(
            d.cites(row.cites),
            "{}: no reason {:?} in {:#?}",
            row.name,
            row.cites,
            d.reasons
        );
        assert!(
            d.cites("policy"),
            "{}: every decision names its policy",
            row.name
        );
    }

    fn facts(group: Option<GroupCapacity>, attempts: Vec<Attempt>) -> Facts {
        Facts {
            kill_switch: false,
            group,
            attempts,
        }
    }

    #[test]
    fn tiers() {
        let rows = [
            Row {
                name: "auto-heal",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::AutoHeal,
                acts: true,
                cites: "limit:blast-radius",
            },
            Row {
                name: "approval when unsure",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.72, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Approval,
                acts: false,
                cites: "tier",
            },
            Row {
                name: "escalate when no rule acts",
                policy: enforce,
                incident: incident(FailureMode::DiskFilling, 0.9, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Escalate,
                acts: false,
                cites: "rule:escalate-resource-exhaustion",
            },
            Row {
                name: "escalate when nothing matches",
                policy: enforce,
                incident: incident(FailureMode::Unknown, 0.9, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Escalate,
                acts: false,
                cites: "policy:no-rule",
            },
            Row {
                name: "observe when normal",
                policy: enforce,
                incident: incident(FailureMode::Normal, 0.9, Severity::Info),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Observe,
                acts: false,
                cites: "policy:normal",
            },
            Row {
                name: "dry-run records",
                policy: |_| {},
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::AutoHeal,
                acts: false,
                cites: "mode:dry-run",
            },
        ];
        for row in rows {
            check(row);
        }
    }

    #[test]
    fn limits() {
        let rows = [
            Row {
                name: "kill switch (runtime)",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: Facts {
                    kill_switch: true,
                    ..facts(healthy_group(), vec![])
                },
                tier: Tier::Escalate,
                acts: false,
                cites: "limit:kill-switch",
            },
            Row {
                name: "kill switch (policy)",
                policy: |p| {
                    enforce(p);
                    p.kill_switch = true;
                },
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Escalate,
                acts: false,
                cites: "limit:kill-switch",
            },
            Row {
                name: "protected tag",
                policy: enforce,
                incident: {
                    let mut i = incident(FailureMode::CpuRunaway, 0.95, Severity::High);
                    i.resource
                        .tags
                        .insert("vigil:protect".into(), "true".into());
                    i
                },
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Escalate,
                acts: false,
                cites: "limit:protected",
            },
            Row {
                name: "maintenance window",
                policy: |p| {
                    enforce(p);
                    p.limits.maintenance_windows = vec![MaintenanceWindow {
                        days: vec![Weekday::Wed],
                        start: "11:00".into(),
                        end: "13:00".into(),
                    }];
                },
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Observe,
                acts: false,
                cites: "limit:maintenance",
            },
            Row {
                name: "maintenance window past midnight, from yesterday",
                policy: |p| {
                    enforce(p);
                    p.limits.maintenance_windows = vec![MaintenanceWindow {
                        days: vec![Weekday::Tue],
                        start: "22:00".into(),
                        end: "13:00".into(),
                    }];
                },
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Observe,
                acts: false,
                cites: "limit:maintenance",
            },
            Row {
                name: "loop breaker",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(
                    healthy_group(),
                    vec![
                        attempt(100, OutcomeStatus::Verified),
                        attempt(50, OutcomeStatus::Verified),
                        attempt(10, OutcomeStatus::Verified),
                    ],
                ),
                tier: Tier::Escalate,
                acts: false,
                cites: "limit:loop-breaker",
            },
            Row {
                name: "loop breaker forgets old attempts",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(
                    healthy_group(),
                    vec![
                        attempt(500, OutcomeStatus::Verified),
                        attempt(400, OutcomeStatus::Verified),
                        attempt(300, OutcomeStatus::Verified),
                    ],
                ),
                tier: Tier::AutoHeal,
                acts: true,
                cites: "limit:loop-breaker",
            },
            Row {
                name: "ladder exhausted",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![attempt(10, OutcomeStatus::Failed)]),
                tier: Tier::Escalate,
                acts: false,
                cites: "rule:replace-on-cpu-runaway",
            },
            Row {
                name: "blast radius: minimum in service",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(
                    Some(GroupCapacity {
                        min_size: 1,
                        max_size: 2,
                        desired: 1,
                        in_service: 1,
                    }),
                    vec![],
                ),
                tier: Tier::Escalate,
                acts: false,
                cites: "limit:blast-radius",
            },
            Row {
                name: "blast radius: share of the group",
                policy: |p| {
                    enforce(p);
                    p.limits.max_group_share = 0.25;
                },
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::Escalate,
                acts: false,
                cites: "limit:blast-radius",
            },
            Row {
                name: "blast radius: capacity unknown",
                policy: enforce,
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(None, vec![]),
                tier: Tier::Escalate,
                acts: false,
                cites: "limit:blast-radius",
            },
            Row {
                name: "rule shadowed by dry_run",
                policy: |p| {
                    enforce(p);
                    for r in &mut p.rules {
                        r.dry_run = true;
                    }
                },
                incident: incident(FailureMode::CpuRunaway, 0.95, Severity::High),
                facts: facts(healthy_group(), vec![]),
                tier: Tier::AutoHeal,
                acts: false,
                cites: "mode:dry-run",
            },
        ];
        for row in rows {
            check(row);
        }
    }

    #[test]
    fn maintenance_windows() {
        let w = MaintenanceWindow {
            days: vec![Weekday::Sat],
            start: "23:00".into(),
            end: "02:00".into(),
        };
        let at = |d, h, m| Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
        // 2026-11-28 is a Saturday.
        assert!(w.contains(at(28, 23, 30)));
        assert!(w.contains(at(29, 1, 59)));
        assert!(!w.contains(at(29, 2, 0)));
        assert!(!w.contains(at(28, 22, 59)));
        assert!(!w.contains(at(27, 23, 30)));
    }
}
