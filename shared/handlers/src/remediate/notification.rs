//! Telling people: once per decision and tier (a retry finds the alert it sent), in one
//! conversation per principal or scope ([`vigil_core::conversation`]: the first message, then
//! threaded updates, the rest folded into a digest), and for the approval tier the decision
//! saved as pending with signed links.

use chrono::{DateTime, Utc};

use super::{KEEP_ATTEMPTS_DAYS, RemediateConfig, RemediateError, RemediatePorts};
use crate::ports::{
    Conversations, FindAlertSent, ImportFinding, MarkAlertSent, PublishAlert, RecordOpsItem,
    SavePendingApproval,
};
use vigil_core::domain::{Code, Decision, Outcome, Tier};
use vigil_core::keys;
use vigil_core::{alert, conversation};

/// Tells people of a decision's outcome, unless it was recorded only (and closes no loop on an
/// earlier action), they were told already, or it joins an alert sent in the same window.
pub(super) async fn tell(
    decision: &Decision,
    mut outcome: Outcome,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
    now: DateTime<Utc>,
) -> Result<Outcome, RemediateError> {
    // Recorded only, unless it closes the loop on an earlier action: people hear it recovered.
    if decision.tier == Tier::Observe && !decision.cites(&Code::Recovery) {
        return Ok(outcome);
    }
    let finished_at = outcome.finished_at;
    // A retry of this decision after its answer was lost: people were told already.
    let sent = keys::told_decision(&decision.id, decision.tier);
    match ports.history().find_sent(&sent, finished_at).await {
        Ok(Some(id)) => {
            tracing::info!(decision = %decision.id, message = %id, "already told: not telling again");
            outcome.notification_id = Some(id);
            return Ok(outcome);
        }
        Ok(None) => {}
        // Unknown: better twice than never.
        Err(e) => {
            tracing::warn!(error = %vigil_core::error_chain(&e), decision = %decision.id, "sent alerts unreadable")
        }
    }
    // One conversation per principal or scope: the first message, then updates in its thread
    // when something changes, the rest folded into a digest.
    let about = conversation::about(decision);
    let open = match ports.history().recall(&about, now).await {
        Ok(open) => open,
        // Unknown: better a message of its own than silence.
        Err(e) => {
            tracing::warn!(error = %vigil_core::error_chain(&e), decision = %decision.id, "conversation unreadable");
            None
        }
    };
    let step = conversation::step(open.as_ref(), decision, &outcome, now);
    let idle = now + chrono::Duration::minutes(conversation::IDLE_MINUTES);
    if let (conversation::Step::Fold, Some(mut open)) = (&step, open.clone()) {
        open.fold(decision);
        if let Err(e) = ports.history().keep(&about, &open, idle).await {
            tracing::warn!(error = %vigil_core::error_chain(&e), decision = %decision.id, "folded decision not counted");
        }
        tracing::info!(vigil_grouped_alerts = 1, decision = %decision.id, conversation = %open.id, "alert folded into its conversation");
        return Ok(outcome);
    }
    let links = approval_links(decision, config, ports.history(), now).await;
    let mut message = alert::render_with_links(decision, &outcome, links.as_ref());
    match &open {
        Some(open) => open.thread(&mut message, &step),
        None => conversation::first(&mut message),
    }
    alert::add_undo(
        &mut message,
        decision,
        &outcome,
        config.approver_url.as_deref(),
    );
    // The console of the resource's own Region (a finding aggregated from another names it),
    // else the stack's.
    let resource = &decision.incident.resource;
    if let Some(region) = resource.region.as_ref().or(config.region.as_ref()) {
        alert::add_console_links(&mut message, resource, region);
    }
    let told = ports.alerts().publish(&message).await;
    if told.is_ok() {
        let kept = match open {
            Some(mut open) => {
                open.told(decision, now);
                open
            }
            None => conversation::Conversation::open(decision, &message.subject, now),
        };
        if let Err(e) = ports.history().keep(&about, &kept, idle).await {
            tracing::warn!(error = %vigil_core::error_chain(&e), decision = %decision.id, "conversation not kept");
        }
        finding(decision, &outcome, config, ports, now).await;
        ops_item(decision, &outcome, config, ports).await;
    }
    match told {
        Ok(id) => {
            let keep = finished_at + chrono::Duration::days(KEEP_ATTEMPTS_DAYS);
            if let Err(e) = ports.history().mark_sent(&sent, &id, keep).await {
                tracing::warn!(error = %vigil_core::error_chain(&e), decision = %decision.id, "sent alert not remembered");
            }
            outcome.notification_id = Some(id);
            Ok(outcome)
        }
        Err(source) => Err(RemediateError::Alert {
            outcome: format!("{:?}: {}", outcome.status, outcome.detail),
            source,
        }),
    }
}

/// The incident as a Security Hub finding, created or updated, when the stack turns it on.
/// Best effort: people have been told by then, and a finding that cannot be imported (Security
/// Hub not enabled in the region, throttled) is logged and counted, never a failed decision.
async fn finding(
    decision: &Decision,
    outcome: &Outcome,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
    now: DateTime<Utc>,
) {
    let Some(stack) = &config.securityhub else {
        return;
    };
    let Some(finding) = vigil_core::securityhub::finding(decision, outcome, stack, now) else {
        return;
    };
    match ports.findings().import(&finding).await {
        Ok(()) => {
            tracing::info!(decision = %decision.id, finding = %finding.id, record_state = finding.record_state.as_str(), "Security Hub finding imported")
        }
        Err(e) => {
            tracing::warn!(vigil_findings_failed = 1, decision = %decision.id, error = %vigil_core::error_chain(&e), "Security Hub finding not imported")
        }
    }
}

/// An operations incident as an OpsCenter OpsItem, opened or updated, when the stack turns it
/// on. Best effort, like the finding.
async fn ops_item(
    decision: &Decision,
    outcome: &Outcome,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
) {
    let Some(stack) = &config.opscenter else {
        return;
    };
    let Some(item) = vigil_core::opscenter::ops_item(decision, outcome, stack) else {
        return;
    };
    match ports.ops_items().record(&item).await {
        Ok(id) => {
            tracing::info!(decision = %decision.id, ops_item = %id, status = item.status.as_str(), "OpsItem recorded")
        }
        Err(e) => {
            tracing::warn!(vigil_ops_items_failed = 1, decision = %decision.id, error = %vigil_core::error_chain(&e), "OpsItem not recorded")
        }
    }
}

/// For a decision a person must approve: saves it as pending and makes its approve and deny
/// links. `None` when approvals are not configured or the decision cannot be saved (the alert
/// then asks people to act by hand).
async fn approval_links<R: SavePendingApproval>(
    decision: &Decision,
    config: &RemediateConfig,
    pending: &R,
    now: DateTime<Utc>,
) -> Option<(String, String)> {
    if decision.tier != Tier::Approval || decision.action.is_none() {
        return None;
    }
    // Pending whether or not links are signed: named approvers find it by its id.
    let until = now + chrono::Duration::hours(vigil_core::approval::LINK_HOURS);
    if let Err(e) = pending.save_pending(decision, until).await {
        tracing::error!(error = %vigil_core::error_chain(&e), decision = %decision.id, "pending approval not saved");
        return None;
    }
    let Some(approval) = &config.approval else {
        tracing::warn!(decision = %decision.id, "approval links are not configured");
        return None;
    };
    match vigil_core::approval::links(&approval.key, &approval.base_url, decision, now, |v| {
        format!("{}:{v:?}", decision.id)
    }) {
        Ok(links) => Some(links),
        Err(e) => {
            tracing::error!(error = %e, "approval links not signed");
            None
        }
    }
}
