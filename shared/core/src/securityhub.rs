//! What people are told, as AWS Security Finding Format (ASFF) findings for Security Hub: the
//! queue security and operations teams already triage.
//!
//! One finding per incident (its `Id` is the incident's id), imported when people are first
//! told and imported again, with a later `UpdatedAt`, as the incident moves: an action taken,
//! verified or failed. A verified action archives it (`RecordState: ARCHIVED`): Vigil has
//! closed what it opened. `Workflow` is set only when the finding is created, as Security Hub
//! leaves it to the people triaging; severity and types go in `FindingProviderFields`, the
//! fields a finding provider may update. Pure: the adapter sends what this module builds.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::domain::{
    Code, Decision, FailureMode, Outcome, OutcomeStatus, ResourceKind, Severity, ThreatClass, Tier,
};
use crate::names::display_text;

/// `display_text` within `max` characters, its ellipsis included.
fn text(s: &str, max: usize) -> String {
    display_text(s, max.saturating_sub(1))
}

/// The ASFF version the findings follow.
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// Security Hub's limits on a finding's title and description.
pub const MAX_TITLE: usize = 256;
pub const MAX_DESCRIPTION: usize = 1024;
/// Security Hub's limit on `ProductFields` values.
const MAX_FIELD: usize = 2048;

/// Where the stack runs: findings are imported into its own account's default product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Stack {
    /// The account's own product ARN, the one `BatchImportFindings` accepts from the account.
    pub fn product_arn(&self) -> String {
        format!(
            "arn:{}:securityhub:{}:{}:product/{}/default",
            self.partition, self.region, self.account, self.account
        )
    }
}

/// A finding's record state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Active,
    Archived,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Active => "ACTIVE",
            RecordState::Archived => "ARCHIVED",
        }
    }
}

/// One resource of a finding (`Type` from ASFF's resource types, or `Other`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingResource {
    pub kind: &'static str,
    pub id: String,
    pub partition: String,
    pub region: String,
}

/// One ASFF finding, as Vigil imports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub id: String,
    pub product_arn: String,
    /// What produced it: `vigil/<model or rule>`.
    pub generator_id: String,
    pub aws_account_id: String,
    pub region: String,
    /// `namespace/category/classifier` types, e.g. `TTPs/Persistence`.
    pub types: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// `INFORMATIONAL`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`.
    pub severity: &'static str,
    /// 0-100.
    pub confidence: i32,
    pub title: String,
    pub description: String,
    pub recommendation: String,
    pub resources: Vec<FindingResource>,
    pub record_state: RecordState,
    /// Vigil's own facts: decision, tier, mode, action, outcome.
    pub product_fields: BTreeMap<String, String>,
}

/// The finding for a decision people are told of, or `None` when Security Hub has nothing to
/// learn from it: a decision only recorded, and a recovery seen later (the alarm behind an
/// earlier action back to OK), which names another incident than the one it closes.
pub fn finding(
    decision: &Decision,
    outcome: &Outcome,
    stack: &Stack,
    now: DateTime<Utc>,
) -> Option<Finding> {
    if decision.tier == Tier::Observe {
        return None;
    }
    let inc = &decision.incident;
    let mut types = Vec::new();
    if let Some(t) = inc.threat.filter(|t| *t != ThreatClass::Benign) {
        types.push(threat_type(t).to_owned());
    }
    if inc.failure_mode != FailureMode::Normal {
        types.push(format!(
            "Unusual Behaviors/VM/{}",
            text(&inc.failure_mode.to_string(), 64)
        ));
    }
    for hit in inc.rule_hits() {
        for tag in &hit.attack {
            if let Some(tactic) = tactic_type(tag)
                && !types.iter().any(|t| t == tactic)
            {
                types.push(tactic.to_owned());
            }
        }
    }
    if types.is_empty() {
        types.push("Unusual Behaviors".to_owned());
    }
    // Security Hub accepts at most 50 types.
    types.truncate(50);
    let generator = match (inc.threat, inc.failure_mode, inc.rule_hits().first()) {
        (_, _, Some(hit)) if inc.threat.is_none() && inc.failure_mode == FailureMode::Normal => {
            format!("vigil/rule/{}", text(&hit.id, 200))
        }
        (Some(_), _, _) => "vigil/threat-classifier".to_owned(),
        _ => "vigil/failure-mode".to_owned(),
    };
    let archived = outcome.status == OutcomeStatus::Verified;
    let status = match (decision.tier, outcome.status) {
        (_, OutcomeStatus::Verified) => "healed: the action was carried out and verified",
        (_, OutcomeStatus::Failed) => "the action failed",
        (_, OutcomeStatus::Unverified) => "acted, not verified yet",
        (Tier::AutoHeal, OutcomeStatus::NotActed) => "dry-run: recorded what Vigil would do",
        (Tier::Approval, OutcomeStatus::NotActed) => "waits for a person to approve",
        (_, OutcomeStatus::NotActed) => "needs a person",
    };
    let title = text(
        &format!("Vigil: {} on {}", inc.what(), inc.resource.id),
        MAX_TITLE,
    );
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .filter(|r| r.code != Code::Recovery)
        .map(|r| format!("[{}] {}", r.code, r.message))
        .collect();
    let description = text(
        &format!(
            "{} detected on {} (severity {}, confidence {:.2}); {}. Decision {}, tier {}, mode {}. {}",
            inc.what(),
            inc.resource,
            inc.severity,
            inc.confidence,
            status,
            decision.id,
            decision.tier,
            decision.mode,
            reasons.join(" ")
        ),
        MAX_DESCRIPTION,
    );
    let recommendation = text(
        &match (&decision.action, decision.tier) {
            (Some(a), Tier::Approval) => format!(
                "Approve or deny the proposed action ({a}) from the alert email; every reason is in Vigil's audit trail under decision {}.",
                decision.id
            ),
            (Some(a), _) => format!(
                "Vigil's action: {a}. Every reason is in its audit trail under decision {}.",
                decision.id
            ),
            (None, _) => format!(
                "Investigate the resource; every reason is in Vigil's audit trail under decision {}.",
                decision.id
            ),
        },
        512,
    );
    let mut product_fields = BTreeMap::new();
    let mut field = |k: &str, v: String| {
        product_fields.insert(format!("vigil/{k}"), text(&v, MAX_FIELD));
    };
    field("decision", decision.id.clone());
    field("tier", decision.tier.to_string());
    field("mode", decision.mode.to_string());
    field("outcome", format!("{:?}", outcome.status));
    if let Some(a) = &decision.action {
        field("action", a.kind().to_owned());
    }
    Some(Finding {
        id: text(&inc.id, 512),
        product_arn: stack.product_arn(),
        generator_id: generator,
        aws_account_id: stack.account.clone(),
        region: stack.region.clone(),
        types,
        created_at: inc.opened_at.min(now),
        updated_at: now,
        severity: severity_label(inc.severity),
        confidence: (inc.confidence.clamp(0.0, 1.0) * 100.0).round() as i32,
        title,
        description,
        recommendation,
        resources: vec![resource(decision, stack)],
        record_state: if archived {
            RecordState::Archived
        } else {
            RecordState::Active
        },
        product_fields,
    })
}

fn severity_label(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFORMATIONAL",
        Severity::Low => "LOW",
        Severity::Medium => "MEDIUM",
        Severity::High => "HIGH",
        Severity::Critical => "CRITICAL",
    }
}

/// ASFF's type for a threat class (the TTPs namespace, or Effects for exfiltration).
fn threat_type(t: ThreatClass) -> &'static str {
    match t {
        ThreatClass::Benign => "Unusual Behaviors/User",
        ThreatClass::CredentialCompromise => "TTPs/Credential Access",
        ThreatClass::Reconnaissance => "TTPs/Discovery",
        ThreatClass::Persistence => "TTPs/Persistence",
        ThreatClass::PrivilegeEscalation => "TTPs/Privilege Escalation",
        ThreatClass::DefenceEvasion => "TTPs/Defense Evasion",
        ThreatClass::Exfiltration => "Effects/Data Exfiltration",
    }
}

/// ASFF's type for an ATT&CK tactic tag of a rule (`attack.persistence`); techniques
/// (`attack.t1098`) have none.
fn tactic_type(tag: &str) -> Option<&'static str> {
    Some(match tag.strip_prefix("attack.")? {
        "initial_access" | "initial-access" => "TTPs/Initial Access",
        "execution" => "TTPs/Execution",
        "persistence" => "TTPs/Persistence",
        "privilege_escalation" | "privilege-escalation" => "TTPs/Privilege Escalation",
        "defense_evasion" | "defense-evasion" => "TTPs/Defense Evasion",
        "credential_access" | "credential-access" => "TTPs/Credential Access",
        "discovery" => "TTPs/Discovery",
        "lateral_movement" | "lateral-movement" => "TTPs/Lateral Movement",
        "collection" => "TTPs/Collection",
        "command_and_control" | "command-and-control" => "TTPs/Command and Control",
        "exfiltration" => "Effects/Data Exfiltration",
        "impact" => "Effects/Resource Consumption",
        _ => return None,
    })
}

/// The incident's resource as ASFF names it.
fn resource(decision: &Decision, stack: &Stack) -> FindingResource {
    let r = &decision.incident.resource;
    let region = stack.region.clone();
    let partition = stack.partition.clone();
    let account = r.account.as_deref().unwrap_or(&stack.account);
    let id = text(&r.id, 256);
    let (kind, id) = match r.kind {
        ResourceKind::Instance => (
            "AwsEc2Instance",
            format!("arn:{partition}:ec2:{region}:{account}:instance/{id}"),
        ),
        ResourceKind::AutoScalingGroup => (
            "AwsAutoScalingAutoScalingGroup",
            r.arn.clone().map_or(id, |a| text(&a, 512)),
        ),
        ResourceKind::AccessKey => ("AwsIamAccessKey", id),
        ResourceKind::Principal => ("Other", r.arn.clone().map_or(id, |a| text(&a, 512))),
        ResourceKind::Account => ("AwsAccount", format!("AWS::::Account:{account}")),
        ResourceKind::Pipeline | ResourceKind::Other => {
            ("Other", r.arn.clone().map_or(id, |a| text(&a, 512)))
        }
    };
    FindingResource {
        kind,
        id,
        partition,
        region,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, Incident, Mode, Reason, Resource};
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn stack() -> Stack {
        Stack {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        }
    }

    fn decision(tier: Tier, threat: Option<ThreatClass>) -> Decision {
        Decision {
            id: "inc-1:scale_out".into(),
            incident: Incident {
                id: "inc-1".into(),
                resource: Resource::new(ResourceKind::Instance, "i-0123456789abcdef0"),
                failure_mode: if threat.is_some() {
                    FailureMode::Normal
                } else {
                    FailureMode::CpuRunaway
                },
                threat,
                severity: Severity::High,
                confidence: 0.87,
                opened_at: at(0),
                evidence: Vec::new(),
            },
            tier,
            action: Some(Action::ScaleOut {
                group: crate::names::GroupName::parse("web").unwrap(),
                by: 1,
            }),
            mode: Mode::Enforce,
            reasons: vec![Reason::new(Code::Recovery, "ignored".to_owned())],
            decided_at: at(1),
        }
    }

    fn outcome(status: OutcomeStatus) -> Outcome {
        Outcome {
            decision_id: "inc-1:scale_out".into(),
            status,
            detail: "done".into(),
            notification_id: None,
            finished_at: at(2),
        }
    }

    fn check(d: &Decision, status: OutcomeStatus) -> Finding {
        let f = finding(d, &outcome(status), &stack(), at(3)).expect("a finding");
        assert_eq!(
            f.product_arn,
            "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
        );
        assert_eq!(f.id, d.incident.id, "one finding per incident");
        assert!(f.title.chars().count() <= MAX_TITLE);
        assert!(f.description.chars().count() <= MAX_DESCRIPTION);
        assert!(f.created_at <= f.updated_at);
        assert!(!f.types.is_empty() && f.types.iter().all(|t| t.split('/').count() <= 3));
        f
    }

    #[test]
    fn an_incident_is_one_finding_archived_when_its_action_is_verified() {
        let d = decision(Tier::AutoHeal, None);
        let first = check(&d, OutcomeStatus::Unverified);
        assert_eq!(first.record_state, RecordState::Active);
        assert_eq!(first.types, ["Unusual Behaviors/VM/CPU runaway"]);
        assert_eq!(first.severity, "HIGH");
        assert_eq!(first.confidence, 87);
        assert_eq!(
            first.resources[0].id,
            "arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"
        );
        assert_eq!(first.product_fields["vigil/action"], "scale_out");
        let healed = check(&d, OutcomeStatus::Verified);
        assert_eq!(healed.id, first.id);
        assert_eq!(healed.record_state, RecordState::Archived);
        for failed in [OutcomeStatus::Failed, OutcomeStatus::NotActed] {
            assert_eq!(check(&d, failed).record_state, RecordState::Active);
        }
    }

    #[test]
    fn threats_are_ttps_and_recorded_decisions_are_not_findings() {
        let f = check(
            &decision(Tier::Approval, Some(ThreatClass::Persistence)),
            OutcomeStatus::NotActed,
        );
        assert_eq!(f.types, ["TTPs/Persistence"]);
        assert_eq!(f.generator_id, "vigil/threat-classifier");
        assert!(f.recommendation.starts_with("Approve or deny"));
        assert!(
            !f.description.contains("ignored"),
            "a recovery note is not the incident's reason"
        );
        assert_eq!(
            finding(
                &decision(Tier::Observe, None),
                &outcome(OutcomeStatus::NotActed),
                &stack(),
                at(3)
            ),
            None
        );
    }

    #[test]
    fn hostile_text_is_bounded_and_controls_removed() {
        let mut d = decision(Tier::Escalate, None);
        d.incident.resource.id = format!("i-{}\n\u{7}", "x".repeat(5000));
        d.reasons = vec![Reason::new(Code::Recovery, "y".repeat(9000))];
        let f = check(&d, OutcomeStatus::NotActed);
        assert!(!f.title.contains('\n') && !f.description.contains('\u{7}'));
    }

    #[test]
    fn rule_tactics_become_types() {
        assert_eq!(tactic_type("attack.persistence"), Some("TTPs/Persistence"));
        assert_eq!(
            tactic_type("attack.defense-evasion"),
            Some("TTPs/Defense Evasion")
        );
        assert_eq!(tactic_type("attack.t1098"), None);
        assert_eq!(tactic_type("cis.4.2"), None);
    }
}
