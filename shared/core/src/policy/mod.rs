//! Explicit policy: which incidents Vigil may act on, how, and within which limits. Pure.
//!
//! A decision flows one way, so the handler does all its IO between pure steps and never
//! passes control back and forth:
//!
//! 1. [`Policy::reads`]: what the handler must read for an incident (earlier actions on the
//!    resource and, when an opinion or a recovery needs them, on its group).
//! 2. [`Policy::draft`]: the incident and those readings in, a [`Draft`] out: the rules'
//!    proposal (`propose`: scope, then the second opinions of [`opinions`], then the rules and
//!    the remediation ladder) and what the limits need read ([`Draft::needs`]).
//! 3. [`Policy::limit`]: the safety limits (`limits`: kill switch, protected resources,
//!    maintenance windows, loop breaker, blast radius) applied with those facts, into a
//!    [`Pending`] decision that names the claim it needs ([`Pending::sighting`]).
//! 4. [`Policy::settle`]: the claim's answer in, the decision out.
//!
//! The limits that need an atomic write across a batch (de-duplication, cooldown, hourly
//! rate, repeats) are claims the handler takes afterwards, each answered through
//! [`Decision::hold`] or [`Decision::record`]. A decision's tier is set by the rule's proposal
//! and changed only by those two and [`Decision::shelve`]. Every step leaves a reason.

pub mod actions;
pub mod approvals;
pub mod detections;
pub mod limits;
mod matching;
pub mod opinions;
pub mod outsiders;
mod recovery;
mod v1;

use crate::domain::Code;
use crate::policy::opinions::OpinionCode;
use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use actions::{ActionKind, Deployment, PIPELINE_TAG, SERVICE_TAG, STAGE_TAG};
pub use limits::{Facts, Limits, LoopBreaker, MaintenanceWindow, Weekday};
pub use opinions::{Opinions, Readings};

use crate::domain::{
    Action, Attempt, Decision, FailureMode, Incident, Mode, Reason, RuleLevel, Severity,
    ThreatClass, Tier,
};
use crate::names::GroupName;
use limits::minutes;
use opinions::{Ask, Opinionated};

/// The policy bundled into the binary (`infra/policy/default.yaml`).
pub const DEFAULT_POLICY_YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/policy/default.yaml"
));

/// The policy format this release writes. A document of version 1 (second opinions as
/// `tiers.*` fields) is still read, migrated to this one (`vigil policy migrate FILE`).
pub const VERSION: u32 = 2;

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
    /// Format version: 2 (a version-1 document is migrated when it is read).
    pub version: u32,
    /// `dry-run` records and reports what would be done; `enforce` does it.
    #[serde(default)]
    pub mode: Mode,
    /// Stops every action while true.
    #[serde(default)]
    pub kill_switch: bool,
    pub limits: Limits,
    #[serde(default)]
    pub tiers: Tiers,
    /// Second opinions on a finding before people are told or anything is done.
    #[serde(default)]
    pub opinions: Opinions,
    pub rules: Vec<Rule>,
    /// The deployment gate's checks and thresholds.
    #[serde(default)]
    pub gate: crate::gate::GatePolicy,
    /// The pipeline stages Vigil may act on, each with the groups it deploys to.
    #[serde(default)]
    pub deployments: Vec<actions::Deployment>,
    /// Detection rules silenced for a principal or resource, each until it expires and with
    /// its reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suppressions: Vec<detections::RuleSuppression>,
    /// Who may approve what waits for a person: the email's links, named IAM principals, and
    /// how many of them.
    #[serde(default)]
    pub approvals: approvals::Approvals,
    /// Where this policy came from and a hash of its text (set on load, not written).
    #[serde(skip)]
    #[schemars(skip)]
    pub id: String,
    /// The member accounts the stack may act in, through the role its member stack deploys
    /// there (the stack's `MemberAccounts`, set by the handler's policy store, never by the
    /// policy's text). An incident in any other account is told, never acted on.
    #[serde(skip)]
    #[schemars(skip)]
    pub member_accounts: Vec<String>,
    /// Minutes between the stack's scheduled pulls (its `ScheduleRate`, set by the handler's
    /// policy store): a pull's finding waits at least for the next pull to find it again,
    /// however short `opinions.confirmation.within_minutes` is.
    #[serde(skip)]
    #[schemars(skip)]
    pub pull_minutes: Option<u32>,
}

/// How confidence maps onto tiers for rules that may auto-heal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    /// Below this confidence an auto-heal rule asks for approval instead.
    pub auto_heal_min_confidence: f64,
    /// Below this confidence nothing is proposed: people are told.
    pub approval_min_confidence: f64,
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers {
            auto_heal_min_confidence: 0.8,
            approval_min_confidence: 0.5,
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
    /// The detection rules (by their Sigma `name`) the rule covers, whatever the model reads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detections: Vec<String>,
    /// The detection rule levels the rule covers (any rule matching at one of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<RuleLevel>,
    /// The accounts the rule covers: `own` (the stack's) and member account ids (12 digits).
    /// Empty: every account. A rule scoped to member accounts acts there only if the stack
    /// names them (`MemberAccounts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200), inner(regex(pattern = r"^(own|[0-9]{12})$")))]
    pub accounts: Vec<String>,
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

/// What the handler reads for an incident before the policy drafts its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Reads {
    /// Earlier actions on the incident's resource since then.
    pub since: DateTime<Utc>,
    /// Earlier actions on this group since then, when an opinion or a recovery needs them.
    pub group: Option<(GroupName, DateTime<Utc>)>,
}

/// What the rules propose and the opinions say of an incident, before the limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub incident: Incident,
    pub proposal: Proposal,
    pub opinions: Opinionated,
    /// Reasons the decision carries last, whatever it becomes (a recovery the evidence shows).
    pub notes: Vec<Reason>,
}

/// What the limits need read for a draft.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    /// The runtime kill switch: the draft acts.
    pub kill_switch: bool,
    /// The capacity of the group the action touches, for the blast radius.
    pub capacity: Option<GroupName>,
}

impl Needs {
    /// What the limits need read before they apply to an action on `resource`.
    pub fn of(action: Option<&Action>, resource: &crate::domain::Resource) -> Needs {
        let Some(action) = action else {
            return Needs::default();
        };
        let capacity = match action {
            Action::ReplaceInstance { group, .. }
            | Action::DetachInstance { group, .. }
            | Action::RestartService { group, .. }
            | Action::ScaleOut { group, .. }
            | Action::ScaleIn { group, .. } => Some(group.clone()),
            // Quarantine takes the instance out of service too: its group, when it has one.
            Action::QuarantineInstance { .. } => resource.group.clone(),
            _ => None,
        };
        Needs {
            kill_switch: true,
            capacity,
        }
    }
}

impl Draft {
    /// What the limits need read before they apply.
    pub fn needs(&self) -> Needs {
        Needs::of(self.proposal.action.as_ref(), &self.incident.resource)
    }

    /// Adds a reason about the policy in force (an override that was refused).
    pub fn cite(&mut self, reason: Reason) {
        self.proposal.reasons.push(reason);
    }
}

/// A decision after the limits, waiting for the answer to the claim it names.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub decision: Decision,
    sighting: Option<(String, chrono::Duration)>,
    notes: Vec<Reason>,
}

impl Pending {
    /// The sighting to claim (key, window) when the finding waits for a second reading: the
    /// handler answers with how many earlier readings within the window found it.
    pub fn sighting(&self) -> Option<(&str, chrono::Duration)> {
        self.sighting.as_ref().map(|(k, w)| (k.as_str(), *w))
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
        let document: serde_norway::Value =
            serde_norway::from_str(text).map_err(PolicyError::Parse)?;
        let mut policy = match document
            .get("version")
            .and_then(serde_norway::Value::as_u64)
        {
            Some(1) => serde_norway::from_value::<v1::PolicyV1>(document)
                .map_err(PolicyError::Parse)?
                .migrate(),
            _ => serde_norway::from_value::<Policy>(document).map_err(PolicyError::Parse)?,
        };
        policy.validate()?;
        let hash = hex::encode(Sha256::digest(text.as_bytes()));
        policy.id = format!("{source}@{}", &hash[..12]);
        Ok(policy)
    }

    /// The policy format's JSON Schema.
    /// The policy written in the current format (`vigil policy migrate`). Comments of the
    /// document it was read from are not kept.
    pub fn to_yaml(&self) -> Result<String, PolicyError> {
        serde_norway::to_string(self).map_err(PolicyError::Parse)
    }

    pub fn json_schema() -> String {
        let schema = schemars::schema_for!(Policy);
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError::Invalid(m));
        if self.version != VERSION {
            return bad(format!(
                "version {} is not supported (expected {VERSION})",
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
        for d in &self.deployments {
            d.validate().map_err(PolicyError::Invalid)?;
        }
        for r in &self.rules {
            if let Some(a) = r.accounts.iter().find(|a| {
                a.as_str() != matching::OWN_ACCOUNT
                    && !(a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            }) {
                return bad(format!(
                    "rule {:?}: account {:?} is neither \"own\" nor a 12-digit account id",
                    crate::names::display_text(&r.name, 64),
                    crate::names::display_text(a, 32)
                ));
            }
        }
        let t = &self.tiers;
        if !(0.0..=1.0).contains(&t.approval_min_confidence)
            || !(0.0..=1.0).contains(&t.auto_heal_min_confidence)
            || t.approval_min_confidence > t.auto_heal_min_confidence
        {
            return bad(
                "tiers: need 0 <= approval_min_confidence <= auto_heal_min_confidence <= 1".into(),
            );
        }
        self.opinions.validate().map_err(PolicyError::Invalid)?;
        for sup in &self.suppressions {
            sup.validate().map_err(PolicyError::Invalid)?;
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
            if rule.failure_modes.is_empty()
                && rule.threats.is_empty()
                && rule.detections.is_empty()
                && rule.levels.is_empty()
            {
                return bad(format!(
                    "rule {} names no failure mode, threat, detection rule or level",
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
        if let Some(why) = self.approvals.invalid() {
            return bad(why);
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

    /// What the handler must read for an incident before [`Policy::draft`].
    pub fn reads(&self, incident: &Incident, now: DateTime<Utc>) -> Reads {
        let since = now - self.loop_window();
        let settles = self.opinions.settling.enabled
            && incident.threat.is_none()
            && incident.failure_mode != FailureMode::Normal
            && led_by_telemetry(incident);
        let group = match (recovery::launched_in(incident), &incident.resource.group) {
            (Some(g), _) => Some(g),
            (None, Some(g)) if settles => Some(g.clone()),
            _ => None,
        };
        let settle = now - chrono::Duration::minutes(i64::from(self.opinions.settling.minutes));
        Reads {
            since,
            group: group.map(|g| (g, since.min(settle))),
        }
    }

    /// The rules' proposal and the second opinions on an incident, with what was read for it.
    pub fn draft(&self, incident: Incident, readings: &Readings, now: DateTime<Utc>) -> Draft {
        let (proposal, opinions) = self.propose(&incident, readings, now);
        let loop_since = now - self.loop_window();
        let removals: Vec<Attempt> = readings
            .group_attempts
            .iter()
            .filter(|a| a.at >= loop_since)
            .cloned()
            .collect();
        let notes = recovery::recovery(&incident, &readings.attempts, now)
            .or_else(|| recovery::replacement(&incident, &removals, now))
            .into_iter()
            .collect();
        Draft {
            incident,
            proposal,
            opinions,
            notes,
        }
    }

    /// Applies the safety limits to a draft with the facts read for it ([`Draft::needs`]).
    pub fn limit(&self, draft: Draft, facts: &Facts, now: DateTime<Utc>) -> Pending {
        let Draft {
            incident,
            proposal,
            opinions,
            notes,
        } = draft;
        let mut decision = self.decide(incident, proposal, facts, now);
        let sighting = match (
            opinions.confirm,
            self.opinions.confirmation.window(self.pull_minutes),
        ) {
            (Some(why), Some(window)) if decision.tier != Tier::Observe => {
                decision.reasons.extend(why);
                let key = crate::keys::sighting_of(
                    &decision.incident.resource.id,
                    &decision.incident.what(),
                );
                Some((key, window))
            }
            _ => None,
        };
        Pending {
            decision,
            sighting,
            notes,
        }
    }

    /// The decision, given how many earlier readings found the same finding within the
    /// window (`None` when [`Pending::sighting`] asked for none).
    pub fn settle(&self, pending: Pending, sightings: Option<u32>) -> Decision {
        let Pending {
            mut decision,
            sighting,
            notes,
        } = pending;
        if let (Some((_, window)), Some(before)) = (sighting, sightings) {
            let minutes = window.num_minutes();
            if before == 0 {
                let why = format!(
                    "first sighting of {} on {}: told and acted on only if a pull within {minutes} min finds it again",
                    decision.incident.what(),
                    decision.incident.resource.id
                );
                decision =
                    decision.record(Reason::new(Code::Opinion(OpinionCode::Confirmation), why));
            } else {
                decision.reasons.push(Reason::new(
                    Code::Opinion(OpinionCode::Confirmation),
                    format!("confirmed: found again within {minutes} min"),
                ));
            }
        }
        decision.reasons.extend(notes);
        decision
    }

    /// The claim that people were told of a decision's failure (`opinions.repeat`).
    pub fn told_key(&self, d: &Decision) -> Option<String> {
        self.opinions.repeat.told_key(d)
    }

    /// How long people are not told again of a decision's finding: the policy's repeat period,
    /// or a detection rule's own when longer.
    pub fn repeat_period(&self, d: &Decision) -> chrono::Duration {
        let rule = d
            .incident
            .rule_hits()
            .iter()
            .filter_map(|h| h.repeat_minutes)
            .max()
            .map(|m| chrono::Duration::minutes(i64::from(m)));
        let policy = self.opinions.repeat.period();
        rule.map_or(policy, |r| r.max(policy))
    }

    /// Records a decision whose finding people were told of within `opinions.repeat.minutes`.
    pub fn repeated(&self, d: Decision) -> Decision {
        self.opinions.repeat.repeated(d)
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

    /// What the rules propose for an incident, and what the second opinions say of it: a
    /// finding that is normal is recorded, one in another account is told; then the opinions
    /// are asked, and unless one records the finding, the rules are matched (first match wins)
    /// and the ladder's rung picked from the earlier attempts on the resource.
    fn propose(
        &self,
        incident: &Incident,
        readings: &Readings,
        now: DateTime<Utc>,
    ) -> (Proposal, Opinionated) {
        let mut reasons = vec![
            Reason::new(
                Code::Score,
                format!(
                    "{} scored {} with confidence {:.2} (severity {})",
                    incident.resource,
                    incident.what(),
                    incident.confidence,
                    incident.severity
                ),
            ),
            Reason::new(Code::Policy, format!("policy {}", self.id)),
        ];
        if let Some(lead) = incident.evidence.first() {
            reasons.push(Reason::new(
                Code::Features,
                top_features(&lead.observation.features, 4),
            ));
        }
        let (hits, suppressed) = detections::active(incident, &self.suppressions, now);
        reasons.extend(suppressed);
        reasons.extend(detections::cite(&hits));
        let alarming = hits.iter().any(|h| h.level.alarms());
        if incident.threat.is_none() && incident.failure_mode == FailureMode::Normal {
            if hits.is_empty() {
                reasons.push(Reason::new(Code::Normal, "no anomaly found: record only"));
                return (
                    self.no_action(Tier::Observe, reasons),
                    Opinionated::default(),
                );
            }
            // A detection rule alone: the rules decide, the opinions about models do not.
            return (
                self.match_rules(incident, &hits, &readings.attempts, now, reasons),
                Opinionated::default(),
            );
        }
        if let Some(account) = &incident.resource.account
            && self.member_accounts.iter().any(|m| m == account)
        {
            reasons.push(Reason::new(
                Code::MemberAccount,
                format!(
                    "{} is in member account {account}: acted on through its member role, under the same limits",
                    incident.resource.id
                ),
            ));
        } else if let Some(account) = &incident.resource.account {
            reasons.push(Reason::new(
                Code::MemberAccount,
                format!(
                    "{} is in account {account}, not the one Vigil runs in: people are told, nothing is changed there (a name in another account is another resource)",
                    incident.resource.id
                ),
            ));
            return (
                self.no_action(Tier::Escalate, reasons),
                Opinionated::default(),
            );
        }
        if alarming {
            // A detection rule counts whatever the principal's history: no second opinion
            // about the model's reading records it.
            return (
                self.match_rules(incident, &hits, &readings.attempts, now, reasons),
                Opinionated::default(),
            );
        }
        let opinions = self.opinions.judge(&Ask {
            incident,
            readings,
            rules: &self.rules,
            now,
        });
        if let Some(why) = &opinions.record {
            reasons.push(why.clone());
            return (self.no_action(Tier::Observe, reasons), opinions);
        }
        (
            self.match_rules(incident, &hits, &readings.attempts, now, reasons),
            opinions,
        )
    }
}
