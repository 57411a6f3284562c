//! Vigil's own metrics, as CloudWatch Embedded Metric Format (EMF) documents. A function prints
//! each document as one log line and CloudWatch Logs turns it into metrics: no API call and no
//! permission. What is measured comes from each stage's own output: events in (by kind of
//! source), decisions by tier, actions held by a limit, actions by kind and outcome, the time
//! from the incident to its action, approvals asked and decided.
//!
//! Dimension values are Vigil's own fixed names (tiers, limit codes, action kinds, outcomes,
//! source kinds), never text from an event, so an event cannot mint new metrics.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::domain::{Code, Decision, Outcome, OutcomeStatus, Tier};

/// The namespace of every metric Vigil emits.
pub const NAMESPACE: &str = "Vigil";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// One value of one metric. It is published under each of `dimension_sets`: every set is a
/// list of names from `dimensions` (an empty set publishes the metric without dimensions).
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: Unit,
    pub value: f64,
    pub dimensions: Vec<(&'static str, &'static str)>,
    pub dimension_sets: Vec<Vec<&'static str>>,
}

impl Metric {
    fn count(name: &'static str, dimensions: Vec<(&'static str, &'static str)>) -> Metric {
        // Published per full set of dimensions and per each one alone (what alarms select on).
        let mut sets = vec![dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()];
        if dimensions.len() > 1 {
            sets.extend(dimensions.iter().map(|(k, _)| vec![*k]));
        }
        Metric {
            name,
            unit: Unit::Count,
            value: 1.0,
            dimensions,
            dimension_sets: sets,
        }
    }
}

/// The EMF documents for `metrics`: one per metric, since two values of one metric with
/// different dimension values cannot share a document.
pub fn emf(metrics: &[Metric], at: DateTime<Utc>) -> Vec<Value> {
    metrics
        .iter()
        .map(|m| {
            let mut doc = Map::new();
            doc.insert(
                "_aws".into(),
                json!({
                    "Timestamp": at.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": NAMESPACE,
                        "Dimensions": m.dimension_sets,
                        "Metrics": [{"Name": m.name, "Unit": m.unit.as_str()}],
                    }],
                }),
            );
            for (k, v) in &m.dimensions {
                doc.insert((*k).into(), Value::from(*v));
            }
            doc.insert(m.name.into(), json!(m.value));
            Value::Object(doc)
        })
        .collect()
}

/// Every value each dimension can take: Vigil's own names, nothing else.
pub fn values_of(dimension: &str) -> &'static [&'static str] {
    match dimension {
        "Source" => &[
            "schedule",
            "alarm",
            "guardduty",
            "securityhub",
            "cloudtrail",
            "instance",
            "scaling",
            "health",
            "pipeline",
            "parameter",
            "other",
        ],
        "Tier" => &["auto-heal", "approval", "escalate", "block", "observe"],
        "Limit" => &[
            "kill-switch",
            "protected",
            "maintenance",
            "loop-breaker",
            "blast-radius",
            "cooldown",
            "rate",
            "other",
        ],
        "Outcome" => &["verified", "unverified", "failed", "not-acted"],
        "Verdict" => &["approve", "deny"],
        "Action" => &[
            "replace_instance",
            "restart_service",
            "scale_out",
            "detach_instance",
            "quarantine_instance",
            "deactivate_access_key",
            "freeze_deployments",
            "suspend_scaling",
            "resume_scaling",
            "rollback_deployment",
            "stop_deployment",
            "unfreeze_deployments",
            "release_instance",
            "reactivate_access_key",
            "scale_in",
        ],
        _ => &[],
    }
}

/// The kind of source an event came from (a fixed name, whatever the event says).
pub fn source_kind(source: &str, detail_type: &str) -> &'static str {
    match (source, detail_type) {
        ("aws.events", "Scheduled Event") => "schedule",
        ("aws.cloudwatch", _) => "alarm",
        ("aws.guardduty", _) => "guardduty",
        ("aws.securityhub", _) => "securityhub",
        (_, "AWS API Call via CloudTrail" | "AWS Console Sign In via CloudTrail") => "cloudtrail",
        ("aws.ec2", _) => "instance",
        ("aws.autoscaling", _) => "scaling",
        ("aws.health", _) => "health",
        ("aws.codepipeline", _) => "pipeline",
        ("aws.ssm", _) => "parameter",
        _ => "other",
    }
}

/// An event ingest took in, and whether it was ignored (no signal in it).
pub fn event_in(source: &str, detail_type: &str, ignored: bool) -> Vec<Metric> {
    let kind = source_kind(source, detail_type);
    let mut out = vec![Metric::count("EventsIn", vec![("Source", kind)])];
    if ignored {
        out.push(Metric::count("EventsIgnored", vec![("Source", kind)]));
    }
    out
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::AutoHeal => "auto-heal",
        Tier::Approval => "approval",
        Tier::Escalate => "escalate",
        Tier::Block => "block",
        Tier::Observe => "observe",
    }
}

/// The limit that held a decision's action, when one did: the action is kept, the tier is
/// lowered to escalate, and the limit's reason is the last.
pub fn held_by(decision: &Decision) -> Option<&Code> {
    let last = decision.reasons.last()?;
    (decision.action.is_some() && decision.tier == Tier::Escalate && last.code.is_limit())
        .then_some(&last.code)
}

/// What decide decided: one count per decision by tier, and per action held by its limit.
pub fn decided(decisions: &[Decision]) -> Vec<Metric> {
    let mut out = Vec::new();
    for d in decisions {
        out.push(Metric::count(
            "Decisions",
            vec![("Tier", tier_name(d.tier))],
        ));
        if let Some(code) = held_by(d) {
            out.push(Metric::count("Holds", vec![("Limit", limit_name(code))]));
        }
    }
    out
}

fn limit_name(code: &Code) -> &'static str {
    match code {
        Code::KillSwitch => "kill-switch",
        Code::Protected => "protected",
        Code::Maintenance => "maintenance",
        Code::LoopBreaker => "loop-breaker",
        Code::BlastRadius => "blast-radius",
        Code::Cooldown => "cooldown",
        Code::Rate => "rate",
        _ => "other",
    }
}

fn outcome_name(status: OutcomeStatus) -> &'static str {
    match status {
        OutcomeStatus::Verified => "verified",
        OutcomeStatus::Unverified => "unverified",
        OutcomeStatus::Failed => "failed",
        OutcomeStatus::NotActed => "not-acted",
    }
}

/// What remediate did with a decision: an action by kind and outcome, with the time from the
/// incident's opening to the action's end; an approval asked.
pub fn remediated(decision: &Decision, outcome: &Outcome) -> Vec<Metric> {
    let mut out = Vec::new();
    if let Some(action) = &decision.action
        && decision.acts()
    {
        out.push(Metric::count(
            "Actions",
            vec![
                ("Action", action.kind()),
                ("Outcome", outcome_name(outcome.status)),
            ],
        ));
        if matches!(
            outcome.status,
            OutcomeStatus::Verified | OutcomeStatus::Unverified
        ) {
            let ms = (outcome.finished_at - decision.incident.opened_at)
                .num_milliseconds()
                .max(0);
            out.push(Metric {
                name: "TimeToAction",
                unit: Unit::Milliseconds,
                value: ms as f64,
                dimensions: vec![("Action", action.kind())],
                dimension_sets: vec![vec!["Action"], vec![]],
            });
        }
    }
    if decision.tier == Tier::Approval && decision.action.is_some() {
        out.push(Metric::count("ApprovalsAsked", vec![]));
    }
    out
}

/// A person's verdict on an approval link, confirmed (`approve` or `deny`).
pub fn approval_decided(verdict: &'static str) -> Metric {
    Metric::count("ApprovalsDecided", vec![("Verdict", verdict)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_kind_is_a_dimension_value() {
        use crate::domain::Action;
        use crate::names::{AccessKeyId, GroupName, InstanceId, PipelineName, ServiceName};
        let group = GroupName::parse("web").unwrap();
        let instance = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let key = AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap();
        let (pipeline, stage) = (
            PipelineName::parse("shop").unwrap(),
            PipelineName::parse("Deploy").unwrap(),
        );
        let all = [
            Action::ReplaceInstance {
                group: group.clone(),
                instance: instance.clone(),
            },
            Action::RestartService {
                group: group.clone(),
                instance: instance.clone(),
                service: ServiceName::parse("nginx").unwrap(),
            },
            Action::ScaleOut {
                group: group.clone(),
                by: 1,
            },
            Action::DetachInstance {
                group: group.clone(),
                instance: instance.clone(),
            },
            Action::QuarantineInstance {
                instance: instance.clone(),
            },
            Action::DeactivateAccessKey {
                access_key_id: key.clone(),
            },
            Action::FreezeDeployments {
                pipeline: pipeline.clone(),
                stage: stage.clone(),
            },
            Action::SuspendScaling {
                group: group.clone(),
            },
            Action::ResumeScaling {
                group: group.clone(),
            },
            Action::RollbackDeployment {
                pipeline: pipeline.clone(),
                stage: stage.clone(),
            },
            Action::StopDeployment {
                pipeline: pipeline.clone(),
                execution: stage.clone(),
            },
            Action::UnfreezeDeployments { pipeline, stage },
            Action::ReleaseInstance { instance },
            Action::ReactivateAccessKey { access_key_id: key },
            Action::ScaleIn { group, by: 1 },
        ];
        for a in &all {
            // Fails to compile when an action is added without one here.
            match a {
                Action::ReplaceInstance { .. }
                | Action::RestartService { .. }
                | Action::ScaleOut { .. }
                | Action::DetachInstance { .. }
                | Action::QuarantineInstance { .. }
                | Action::DeactivateAccessKey { .. }
                | Action::FreezeDeployments { .. }
                | Action::SuspendScaling { .. }
                | Action::ResumeScaling { .. }
                | Action::RollbackDeployment { .. }
                | Action::StopDeployment { .. }
                | Action::UnfreezeDeployments { .. }
                | Action::ReleaseInstance { .. }
                | Action::ReactivateAccessKey { .. }
                | Action::ScaleIn { .. } => {}
            }
            assert!(values_of("Action").contains(&a.kind()), "{}", a.kind());
        }
        assert_eq!(values_of("Action").len(), all.len());
    }

    #[test]
    fn a_document_is_valid_emf_with_its_dimension_values_at_the_top() {
        let m = Metric::count(
            "Actions",
            vec![("Action", "scale_out"), ("Outcome", "failed")],
        );
        let at = DateTime::from_timestamp(1_764_590_400, 0).unwrap_or_default();
        let doc = &emf(&[m], at)[0];
        let spec = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_764_590_400_000i64);
        assert_eq!(spec["Namespace"], "Vigil");
        assert_eq!(
            spec["Dimensions"],
            json!([["Action", "Outcome"], ["Action"], ["Outcome"]])
        );
        assert_eq!(
            spec["Metrics"],
            json!([{"Name": "Actions", "Unit": "Count"}])
        );
        assert_eq!(doc["Action"], "scale_out");
        assert_eq!(doc["Outcome"], "failed");
        assert_eq!(doc["Actions"], 1.0);
    }

    /// Every name the naming functions give is in its dimension's listed values.
    #[test]
    fn every_dimension_value_is_listed() {
        use crate::domain::OutcomeStatus as O;
        for tier in [
            Tier::AutoHeal,
            Tier::Approval,
            Tier::Escalate,
            Tier::Block,
            Tier::Observe,
        ] {
            assert!(values_of("Tier").contains(&tier_name(tier)));
        }
        for o in [O::Verified, O::Unverified, O::Failed, O::NotActed] {
            assert!(values_of("Outcome").contains(&outcome_name(o)));
        }
        for code in [
            Code::KillSwitch,
            Code::Protected,
            Code::Maintenance,
            Code::LoopBreaker,
            Code::BlastRadius,
            Code::Cooldown,
            Code::Rate,
        ] {
            assert!(code.is_limit());
            assert!(values_of("Limit").contains(&limit_name(&code)), "{code}");
        }
        assert_eq!(values_of("Tier").len(), 5);
    }

    #[test]
    fn an_events_source_never_becomes_a_dimension_value() {
        for (source, detail, kind) in [
            ("aws.events", "Scheduled Event", "schedule"),
            ("aws.iam", "AWS API Call via CloudTrail", "cloudtrail"),
            (
                "aws.signin",
                "AWS Console Sign In via CloudTrail",
                "cloudtrail",
            ),
            ("evil.<script>", "x", "other"),
        ] {
            assert_eq!(source_kind(source, detail), kind);
            assert!(values_of("Source").contains(&kind));
        }
    }
}
