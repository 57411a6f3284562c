//! What people are told: the SNS message for a decision and its outcome. Pure.

use crate::domain::Code;
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
    /// What chat channels are shown, when it differs from the generic rendering
    /// ([`crate::chat::of_alert`]): no approval links, the incident's thread.
    pub chat: Option<crate::chat::ChatNotification>,
}

impl Alert {
    /// The notification chat channels receive.
    pub fn chat_notification(&self) -> crate::chat::ChatNotification {
        self.chat
            .clone()
            .unwrap_or_else(|| crate::chat::of_alert(self))
    }
}

fn status_word(decision: &Decision, outcome: &Outcome) -> &'static str {
    if decision.tier == Tier::Observe && decision.cites(&Code::Recovery) {
        return "RECOVERED";
    }
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
    let subject_full = if decision.tier == Tier::Observe && decision.cites(&Code::Recovery) {
        format!(
            "[Vigil {}] {} is healthy again: RECOVERED",
            inc.severity, inc.resource.id
        )
    } else {
        format!(
            "[Vigil {}] {} on {}: {}",
            inc.severity,
            inc.what(),
            inc.resource.id,
            status_word(decision, outcome)
        )
    };
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
    // What a chat channel is shown ends here: approval links are never posted in a channel.
    let shared = body.clone();
    match (links, decision.tier, &decision.action) {
        (Some((approve, deny)), _, _) => {
            let _ = writeln!(body, "\nThis action waits for a person.");
            let _ = writeln!(body, "  Approve: {approve}");
            let _ = writeln!(body, "  Deny:    {deny}");
            let _ = writeln!(
                body,
                "  Each link opens a page where you confirm; it works once, for {} hours, and the action is checked again against the limits when you confirm.",
                crate::approval::LINK_HOURS
            );
            let _ = writeln!(
                body,
                "  Or as a named approver, with your own AWS credentials: vigil approve {} --url <the stack's ApproverUrl>",
                decision.id
            );
        }
        (None, crate::domain::Tier::Approval, Some(_)) => {
            let _ = writeln!(
                body,
                "\nThis action waits for a person. Approval links are not configured: a named approver can approve it as themselves (`vigil approve {} --url <the stack's ApproverUrl>`, signed with their AWS credentials), or carry it out by hand if you agree.",
                decision.id
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
    let mut alert = Alert {
        subject,
        body,
        attributes,
        chat: None,
    };
    let mut next = Vec::new();
    if links.is_some() {
        next.push(format!(
            "This action waits for a person: approve or deny it from the email's one-time links (decision {}).",
            decision.id
        ));
    }
    next.push(format!(
        "Every reason is in the audit trail under decision {}.",
        decision.id
    ));
    alert.chat = Some(crate::chat::notification(
        &alert,
        crate::chat::block(&shared),
        next,
        Some(&inc.id),
    ));
    alert
}

/// Console links for a resource, in `region`: where people go to look.
pub fn console_links(resource: &crate::domain::Resource, region: &str) -> Vec<(String, String)> {
    use crate::domain::ResourceKind;
    // Only a region name; anything else and no links are made.
    if !crate::names::is_region(region) {
        return Vec::new();
    }
    let base = format!("https://{region}.console.aws.amazon.com");
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let mut out = Vec::new();
    match resource.kind {
        ResourceKind::Instance => out.push((
            "instance".to_owned(),
            format!(
                "{base}/ec2/home?region={region}#InstanceDetails:instanceId={}",
                enc(&resource.id)
            ),
        )),
        ResourceKind::Principal => out.push((
            "CloudTrail events of this principal".to_owned(),
            format!(
                "{base}/cloudtrailv2/home?region={region}#/events?ReadOnly=false&Username={}",
                enc(resource.id.rsplit('/').next().unwrap_or(&resource.id))
            ),
        )),
        ResourceKind::AccessKey => out.push((
            "CloudTrail events of this key".to_owned(),
            format!(
                "{base}/cloudtrailv2/home?region={region}#/events?AccessKeyId={}",
                enc(&resource.id)
            ),
        )),
        _ => {}
    }
    if let Some(g) = &resource.group {
        out.push((
            "Auto Scaling group".to_owned(),
            format!(
                "{base}/ec2/home?region={region}#AutoScalingGroupDetails:id={}",
                enc(g.as_str())
            ),
        ));
    }
    out
}

/// Appends console links for the decision's resource to an alert's body.
pub fn add_console_links(alert: &mut Alert, resource: &crate::domain::Resource, region: &str) {
    let links = console_links(resource, region);
    if links.is_empty() {
        return;
    }
    let _ = writeln!(alert.body, "\nIn the console");
    for (what, url) in links {
        let _ = writeln!(alert.body, "  {what}: {url}");
    }
}

/// Appends how the decision's action is undone, when it can be ([`crate::undo::undoable`]):
/// by a named approver only, signed with their own AWS credentials against the stack's
/// `approver_url` (never by a link, which anyone holding the email could follow).
pub fn add_undo(
    alert: &mut Alert,
    decision: &Decision,
    outcome: &Outcome,
    approver_url: Option<&str>,
) {
    let Some(inverse) = decision
        .action
        .as_ref()
        .and_then(crate::domain::Action::inverse)
        .filter(|_| crate::undo::undoable(decision, outcome.status))
    else {
        return;
    };
    let url = approver_url.map_or_else(
        || "<the stack's ApproverUrl>".to_owned(),
        |u| display_text(u, 256),
    );
    let _ = writeln!(alert.body, "\nUndo");
    let _ = writeln!(
        alert.body,
        "  If this was a false positive, a named approver can undo it ({inverse}) for {} days:",
        crate::undo::KEEP_DAYS
    );
    let _ = writeln!(alert.body, "  vigil undo {} --url {url}", decision.id);
    let _ = writeln!(
        alert.body,
        "  Signed with their own AWS credentials; approved by as many named approvers as the policy requires, checked against the limits in force, and recorded in the audit trail."
    );
}

#[cfg(test)]
mod console_tests {
    use super::*;
    use crate::domain::{Resource, ResourceKind};

    #[test]
    fn links_point_at_the_resource_and_escape_it() {
        let mut r = Resource::new(ResourceKind::Instance, "i-0123456789abcdef0");
        r.group = crate::names::GroupName::parse("web prod/1").ok();
        let links = console_links(&r, "eu-west-1");
        assert_eq!(links.len(), 2);
        assert!(
            links[0]
                .1
                .ends_with("#InstanceDetails:instanceId=i-0123456789abcdef0")
        );
        assert!(
            links[1]
                .1
                .ends_with("AutoScalingGroupDetails:id=web%20prod%2F1"),
            "{}",
            links[1].1
        );
        assert!(console_links(&r, "eu-west-1\nx").is_empty());
        assert!(console_links(&r, "").is_empty());
    }
}
