//! What people are told: the SNS message for a decision and its outcome. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::domain::{Decision, Outcome, OutcomeStatus, Tier};
use crate::names::display_text;

/// SNS's limit on an email subject.
pub const MAX_SUBJECT: usize = 99;

/// A message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub subject: String,
    pub body: String,
    /// SNS message attributes, for subscription filter policies.
    pub attributes: BTreeMap<String, String>,
}

fn status_word(decision: &Decision, outcome: &Outcome) -> &'static str {
    match (decision.tier, outcome.status) {
        (_, OutcomeStatus::Verified) => "HEALED",
        (_, OutcomeStatus::Failed) => "ACTION FAILED",
        (_, OutcomeStatus::Unverified) => "ACTED, UNVERIFIED",
        (Tier::AutoHeal, OutcomeStatus::NotActed) => "DRY-RUN",
        (Tier::Escalate | Tier::Approval | Tier::Block, OutcomeStatus::NotActed) => "ATTENTION",
        (Tier::Observe, OutcomeStatus::NotActed) => "OBSERVED",
    }
}

/// Renders the alert for a decision and how it ended.
pub fn render(decision: &Decision, outcome: &Outcome) -> Alert {
    render_with_links(decision, outcome, None)
}

/// Renders the alert, with the approve and deny links of a decision waiting for a person.
pub fn render_with_links(
    decision: &Decision,
    outcome: &Outcome,
    links: Option<&(String, String)>,
) -> Alert {
    let inc = &decision.incident;
    let subject_full = format!(
        "[Vigil {}] {} on {}: {}",
        inc.severity,
        inc.what(),
        inc.resource.id,
        status_word(decision, outcome)
    );
    let subject = display_text(&subject_full, MAX_SUBJECT - 1);

    let mut body = String::new();
    let _ = writeln!(body, "What happened");
    let _ = writeln!(
        body,
        "  {} detected on {} (severity {}, confidence {:.2}).",
        inc.what(),
        inc.resource,
        inc.severity,
        inc.confidence
    );
    let _ = writeln!(body, "\nEvidence");
    for e in &inc.evidence {
        let s = &e.observation.signal;
        let _ = writeln!(
            body,
            "  - {} {} (event {})",
            s.observed_at.to_rfc3339(),
            s.describe(),
            s.event_id
        );
        let _ = writeln!(
            body,
            "    scored by {}: anomaly {:.2}, {} ({:.2})",
            e.score.model,
            e.score.anomaly,
            e.score.what(),
            e.score.confidence
        );
        if !e.score.drivers.is_empty() {
            let drivers: Vec<String> = e
                .score
                .drivers
                .iter()
                .map(|d| format!("{} {:.2} (usually {:.2})", d.feature, d.value, d.baseline))
                .collect();
            let _ = writeln!(body, "    why: {}", drivers.join("; "));
        }
        if let Some(h) = e.score.hours_to_exhaustion {
            let _ = writeln!(body, "    full in about {h:.1} hours at this rate");
        }
    }
    let _ = writeln!(
        body,
        "\nDecision: tier {}, mode {}",
        decision.tier, decision.mode
    );
    for r in &decision.reasons {
        let _ = writeln!(body, "  - [{}] {}", r.code, r.message);
    }
    let _ = writeln!(body, "\nAction");
    match &decision.action {
        Some(a) => {
            let _ = writeln!(body, "  {a}");
        }
        None => {
            let _ = writeln!(body, "  none");
        }
    }
    let _ = writeln!(body, "  outcome: {:?}: {}", outcome.status, outcome.detail);
    match (links, decision.tier, &decision.action) {
        (Some((approve, deny)), _, _) => {
            let _ = writeln!(body, "\nThis action waits for a person.");
            let _ = writeln!(body, "  Approve: {approve}");
            let _ = writeln!(body, "  Deny:    {deny}");
            let _ = writeln!(
                body,
                "  Each link works once, for {} hours.",
                crate::approval::LINK_HOURS
            );
        }
        (None, crate::domain::Tier::Approval, Some(_)) => {
            let _ = writeln!(
                body,
                "\nThis action waits for a person, but approval links are not configured: carry it out by hand if you agree."
            );
        }
        _ => {}
    }
    let _ = writeln!(body, "\nDecision id: {}", decision.id);

    let mut attributes = BTreeMap::new();
    attributes.insert("severity".to_owned(), inc.severity.to_string());
    attributes.insert("tier".to_owned(), decision.tier.to_string());
    if let Some(t) = inc.threat {
        attributes.insert("threat".to_owned(), t.to_string());
    }
    attributes.insert("resource".to_owned(), display_text(&inc.resource.id, 256));
    if let Some(app) = &inc.resource.application {
        attributes.insert("application".to_owned(), display_text(app, 256));
    }
    Alert {
        subject,
        body,
        attributes,
    }
}
