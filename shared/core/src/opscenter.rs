//! Operations incidents as Systems Manager OpsCenter OpsItems: the queue operations teams
//! work from.
//!
//! One OpsItem per incident: OpsCenter's own deduplication (`/aws/dedup`, the incident's id)
//! keeps a second create from opening another while the first is open, and the adapter then
//! updates the one it found. A verified action resolves it. Security incidents (a threat, or
//! only a detection rule's match) go to Security Hub instead ([`crate::securityhub`]). Pure:
//! the adapter sends what this module builds.

use crate::domain::{Decision, FailureMode, Outcome, OutcomeStatus, ResourceKind, Severity, Tier};
use crate::names::display_text;
use crate::securityhub::Stack;

/// OpsCenter's limits on an OpsItem's title, description and source.
pub const MAX_TITLE: usize = 1024;
pub const MAX_DESCRIPTION: usize = 2048;
/// The `Source` every OpsItem Vigil opens carries.
pub const SOURCE: &str = "Vigil";

/// An OpsItem's status, as Vigil sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "Open",
            Status::Resolved => "Resolved",
        }
    }
}

/// One OpsItem, as Vigil opens or updates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpsItem {
    pub title: String,
    pub description: String,
    /// `1` (critical) to `4` (low).
    pub severity: &'static str,
    /// OpsCenter's categories: `Availability`, `Performance`, `Recovery`, `Security`, `Cost`.
    pub category: &'static str,
    /// `/aws/dedup`'s string: the incident's id.
    pub dedup: String,
    /// `/aws/resources`: the incident's resource, when it has an ARN.
    pub resource_arn: Option<String>,
    /// The decision, for the audit trail (`vigil:decision`).
    pub decision: String,
    pub status: Status,
}

impl OpsItem {
    /// The `OperationalData` OpsCenter reads: deduplication, the related resource, the
    /// decision. (key, type, value)
    pub fn operational_data(&self) -> Vec<(&'static str, &'static str, String)> {
        let mut out = vec![(
            "/aws/dedup",
            "SearchableString",
            serde_json::json!({ "dedupString": self.dedup }).to_string(),
        )];
        if let Some(arn) = &self.resource_arn {
            out.push((
                "/aws/resources",
                "SearchableString",
                serde_json::json!([{ "arn": arn }]).to_string(),
            ));
        }
        out.push(("vigil:decision", "SearchableString", self.decision.clone()));
        out
    }
}

/// The OpsItem for a decision people are told of, or `None` when it is not an operations
/// incident (a threat or a detection rule's match), or was only recorded.
pub fn ops_item(decision: &Decision, outcome: &Outcome, stack: &Stack) -> Option<OpsItem> {
    let inc = &decision.incident;
    if decision.tier == Tier::Observe
        || inc.threat.is_some()
        || inc.failure_mode == FailureMode::Normal
    {
        return None;
    }
    let severity = match inc.severity {
        Severity::Critical => "1",
        Severity::High => "2",
        Severity::Medium => "3",
        Severity::Low | Severity::Info => "4",
    };
    let category = match inc.failure_mode {
        FailureMode::CpuRunaway | FailureMode::TrafficSurge | FailureMode::MemoryLeak => {
            "Performance"
        }
        _ => "Availability",
    };
    let state = match (decision.tier, outcome.status) {
        (_, OutcomeStatus::Verified) => "Healed: the action was carried out and verified.",
        (_, OutcomeStatus::Failed) => "The action failed.",
        (_, OutcomeStatus::Unverified) => "Acted; not verified yet.",
        (Tier::AutoHeal, OutcomeStatus::NotActed) => "Dry-run: recorded what Vigil would do.",
        (Tier::Approval, OutcomeStatus::NotActed) => "The action waits for a person to approve.",
        (_, OutcomeStatus::NotActed) => "Needs a person.",
    };
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .map(|r| format!("[{}] {}", r.code, r.message))
        .collect();
    let action = decision
        .action
        .as_ref()
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    let r = &inc.resource;
    let account = r.account.as_deref().unwrap_or(&stack.account);
    let resource_arn = match r.kind {
        ResourceKind::Instance => Some(format!(
            "arn:{}:ec2:{}:{account}:instance/{}",
            stack.partition,
            stack.region,
            display_text(&r.id, 64)
        )),
        _ => r.arn.as_deref().map(|a| display_text(a, 1024)),
    };
    Some(OpsItem {
        title: display_text(&format!("Vigil: {} on {}", inc.what(), r.id), MAX_TITLE - 1),
        description: display_text(
            &format!(
                "{} detected on {} (severity {}, confidence {:.2}). {state}\nAction: {action}.\nDecision {} (tier {}, mode {}); every reason is in Vigil's audit trail.\n{}",
                inc.what(),
                r,
                inc.severity,
                inc.confidence,
                decision.id,
                decision.tier,
                decision.mode,
                reasons.join("\n")
            ),
            MAX_DESCRIPTION - 1,
        ),
        severity,
        category,
        dedup: display_text(&inc.id, 512),
        resource_arn,
        decision: display_text(&decision.id, 512),
        status: if outcome.status == OutcomeStatus::Verified {
            Status::Resolved
        } else {
            Status::Open
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Action, Incident, Mode, Resource, ThreatClass};
    use chrono::{TimeZone, Utc};

    fn decision(tier: Tier) -> Decision {
        let t = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        Decision {
            id: "inc-7:scale_out".into(),
            incident: Incident {
                id: "inc-7".into(),
                resource: Resource::new(ResourceKind::Instance, "i-0123456789abcdef0"),
                failure_mode: FailureMode::MemoryLeak,
                threat: None,
                severity: Severity::Critical,
                confidence: 0.8,
                opened_at: t,
                evidence: Vec::new(),
            },
            tier,
            action: Some(Action::ScaleOut {
                group: crate::names::GroupName::parse("web").unwrap(),
                by: 1,
            }),
            mode: Mode::Enforce,
            reasons: Vec::new(),
            decided_at: t,
        }
    }

    fn outcome(status: OutcomeStatus) -> Outcome {
        Outcome {
            decision_id: "inc-7:scale_out".into(),
            status,
            detail: String::new(),
            notification_id: None,
            finished_at: Utc.with_ymd_and_hms(2026, 12, 1, 12, 1, 0).unwrap(),
        }
    }

    fn stack() -> Stack {
        Stack {
            partition: "aws".into(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        }
    }

    #[test]
    fn an_operations_incident_is_one_ops_item_resolved_when_healed() {
        let d = decision(Tier::AutoHeal);
        let open = ops_item(&d, &outcome(OutcomeStatus::Unverified), &stack()).unwrap();
        assert_eq!(
            (open.severity, open.category, open.status),
            ("1", "Performance", Status::Open)
        );
        assert_eq!(open.dedup, "inc-7");
        let data = open.operational_data();
        assert_eq!(data[0].0, "/aws/dedup");
        assert_eq!(data[0].2, r#"{"dedupString":"inc-7"}"#);
        assert_eq!(
            data[1].2,
            r#"[{"arn":"arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"}]"#
        );
        let healed = ops_item(&d, &outcome(OutcomeStatus::Verified), &stack()).unwrap();
        assert_eq!(healed.status, Status::Resolved);
        assert_eq!(healed.dedup, open.dedup);
        assert!(open.title.chars().count() <= MAX_TITLE);
        assert!(open.description.chars().count() <= MAX_DESCRIPTION);
    }

    #[test]
    fn threats_and_recorded_decisions_are_not_ops_items() {
        let mut threat = decision(Tier::Approval);
        threat.incident.threat = Some(ThreatClass::Exfiltration);
        assert_eq!(
            ops_item(&threat, &outcome(OutcomeStatus::NotActed), &stack()),
            None
        );
        assert_eq!(
            ops_item(
                &decision(Tier::Observe),
                &outcome(OutcomeStatus::NotActed),
                &stack()
            ),
            None
        );
    }

    #[test]
    fn a_hostile_resource_name_cannot_break_the_operational_data() {
        let mut d = decision(Tier::Escalate);
        d.incident.id = "inc\"}],\"x\":[{\"".into();
        let item = ops_item(&d, &outcome(OutcomeStatus::NotActed), &stack()).unwrap();
        let dedup: serde_json::Value = serde_json::from_str(&item.operational_data()[0].2).unwrap();
        assert_eq!(dedup["dedupString"], d.incident.id.as_str());
    }
}
