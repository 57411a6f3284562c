//! `remediate`: one decision in; the action carried out and verified, people told, the
//! outcome out.
//!
//! Nothing is changed unless the decision acts (auto-heal tier, enforce mode) and the kill
//! switch, read again right before acting, is off. An action counts as done only once its
//! effect is seen. A decision's action is carried out once: the first attempt claims it
//! (`acted#<decision>`), and a retried invocation (after telling people failed, say) reports
//! what the first one did instead of doing it again.
//!
//! `actions`: each action carried out; `verification`: how its effect is looked for;
//! `notification`: how people are told (once, grouped, with approval links).

mod actions;
mod notification;
mod verification;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ports::{
    ActionHistory, AppendAudit, AutomationStatus, Claim, ClaimOnce, CommandStatus, Conversations,
    DescribeGroup, DescribeInstance, DetachFromGroup, DisableTransition, FindAlertSent,
    ImportFinding, KeepUndoable, MarkAlertSent, PortError, PublishAlert, ReadKillSwitch,
    RecordOpsItem, RollbackStage, RunCommand, SavePendingApproval, ScalingProcesses,
    SetDesiredCapacity, SetInstanceHealth, StartAutomation, StopAndResume, TakeQuota,
    TransitionEnabled,
};
use vigil_core::domain::{Attempt, Decision, Outcome, OutcomeStatus};
use vigil_core::keys;

/// How actions are carried out and verified.
#[derive(Debug, Clone)]
pub struct RemediateConfig {
    /// How many times the effect is looked for after acting.
    pub verify_attempts: u32,
    /// The wait between looks.
    pub verify_interval: Duration,
    /// The stack's Run Command document that restarts a service (parameter `ServiceName`).
    pub restart_document: String,
    /// The stack's Automation runbook that isolates an instance (parameter `InstanceId`).
    pub quarantine_document: String,
    /// The stack's Automation runbook that deactivates an access key (`AccessKeyId`).
    pub deactivate_key_document: String,
    /// The role Automation assumes (`AutomationAssumeRole`), when the stack sets one.
    pub automation_role: Option<String>,
    /// The stack's runbook that releases a quarantined instance (`InstanceId`).
    pub release_document: String,
    /// The stack's runbook that activates a deactivated key again (`AccessKeyId`).
    pub reactivate_key_document: String,
    /// The role the undo runbooks run as. Only the approve function has it (and may pass it):
    /// without it, releasing a quarantine or activating a key is refused.
    pub undo_role: Option<String>,
    /// The member account whose role this invocation's ports act through, when the decision
    /// is about one (the function's main chooses the ports); an action in any other account
    /// than the stack's or this one changes nothing.
    pub acting_account: Option<String>,
    /// The named approvers' URL, which an outcome email names for undoing its action.
    pub approver_url: Option<String>,
    /// Where approval links point and the key that signs them; without it, decisions that
    /// need a person's approval are escalated by email without links.
    pub approval: Option<ApprovalLinks>,
    /// The stack's Region: for console links in alerts, and the only Region it acts in (a
    /// decision about a resource of another changes nothing).
    pub region: Option<String>,
    /// Where incidents people are told of become Security Hub findings; `None` (the default,
    /// and a stack that does not turn it on) imports nothing.
    pub securityhub: Option<vigil_core::securityhub::Stack>,
    /// Where operations incidents people are told of become OpsCenter OpsItems; `None` (the
    /// default) opens none.
    pub opscenter: Option<vigil_core::securityhub::Stack>,
}

/// The approve function's URL and the links' signing key.
#[derive(Clone)]
pub struct ApprovalLinks {
    pub base_url: String,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for ApprovalLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("ApprovalLinks")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Default for RemediateConfig {
    fn default() -> Self {
        RemediateConfig {
            verify_attempts: 6,
            verify_interval: Duration::from_secs(5),
            restart_document: "Vigil-RestartService".to_owned(),
            quarantine_document: "Vigil-ContainInstance".to_owned(),
            deactivate_key_document: "Vigil-DeactivateAccessKey".to_owned(),
            automation_role: None,
            release_document: "Vigil-ReleaseInstance".to_owned(),
            reactivate_key_document: "Vigil-ReactivateAccessKey".to_owned(),
            undo_role: None,
            acting_account: None,
            approver_url: None,
            approval: None,
            region: None,
            securityhub: None,
            opscenter: None,
        }
    }
}

/// What `remediate` needs from the outside world, as one aggregate of narrow ports: each
/// associated type names the capabilities one adapter must have. The stages below are generic
/// over this one parameter.
pub trait RemediatePorts {
    type KillSwitch: ReadKillSwitch;
    type Instances: DescribeInstance;
    type Health: SetInstanceHealth;
    type Alerts: PublishAlert;
    type History: ActionHistory
        + ClaimOnce
        + SavePendingApproval
        + TakeQuota
        + MarkAlertSent
        + FindAlertSent
        + KeepUndoable
        + Conversations;
    type Groups: DescribeGroup + SetDesiredCapacity + DetachFromGroup + ScalingProcesses;
    type Commands: RunCommand + CommandStatus + StartAutomation + AutomationStatus;
    type Pipelines: DisableTransition + TransitionEnabled + RollbackStage + StopAndResume;
    type Audit: AppendAudit;
    type Findings: ImportFinding;
    type OpsItems: RecordOpsItem;

    fn kill_switch(&self) -> &Self::KillSwitch;
    fn instances(&self) -> &Self::Instances;
    fn health(&self) -> &Self::Health;
    fn alerts(&self) -> &Self::Alerts;
    /// Where each attempt is recorded for the loop breaker and the ladder, and where
    /// decisions wait for approval.
    fn history(&self) -> &Self::History;
    /// Group capacity: read, raise, detach from.
    fn groups(&self) -> &Self::Groups;
    /// Run Command and Automation.
    fn commands(&self) -> &Self::Commands;
    /// Pipeline stage transitions.
    fn pipelines(&self) -> &Self::Pipelines;
    /// The tamper-evident audit trail: every decision, and every outcome.
    fn audit(&self) -> &Self::Audit;
    /// Security Hub, where every incident people are told of is a finding (when the stack
    /// turns it on: [`RemediateConfig::securityhub`]).
    fn findings(&self) -> &Self::Findings;
    /// OpsCenter, where every operations incident people are told of is an OpsItem (when the
    /// stack turns it on: [`RemediateConfig::opscenter`]).
    fn ops_items(&self) -> &Self::OpsItems;
}

/// [`RemediatePorts`] from one adapter per capability: how the functions, the simulator and
/// the tests wire it.
pub struct RemediateAdapters<'a, K, I, H, A, R, G, C, P, U, F, O> {
    pub kill_switch: &'a K,
    pub instances: &'a I,
    pub health: &'a H,
    pub alerts: &'a A,
    pub history: &'a R,
    pub groups: &'a G,
    pub commands: &'a C,
    pub pipelines: &'a P,
    pub audit: &'a U,
    pub findings: &'a F,
    pub ops_items: &'a O,
}

impl<K, I, H, A, R, G, C, P, U, F, O> RemediatePorts
    for RemediateAdapters<'_, K, I, H, A, R, G, C, P, U, F, O>
where
    K: ReadKillSwitch,
    I: DescribeInstance,
    H: SetInstanceHealth,
    A: PublishAlert,
    R: ActionHistory
        + ClaimOnce
        + SavePendingApproval
        + TakeQuota
        + MarkAlertSent
        + FindAlertSent
        + KeepUndoable
        + Conversations,
    G: DescribeGroup + SetDesiredCapacity + DetachFromGroup + ScalingProcesses,
    C: RunCommand + CommandStatus + StartAutomation + AutomationStatus,
    P: DisableTransition + TransitionEnabled + RollbackStage + StopAndResume,
    U: AppendAudit,
    F: ImportFinding,
    O: RecordOpsItem,
{
    type KillSwitch = K;
    type Instances = I;
    type Health = H;
    type Alerts = A;
    type History = R;
    type Groups = G;
    type Commands = C;
    type Pipelines = P;
    type Audit = U;
    type Findings = F;
    type OpsItems = O;

    fn kill_switch(&self) -> &K {
        self.kill_switch
    }
    fn instances(&self) -> &I {
        self.instances
    }
    fn health(&self) -> &H {
        self.health
    }
    fn alerts(&self) -> &A {
        self.alerts
    }
    fn history(&self) -> &R {
        self.history
    }
    fn groups(&self) -> &G {
        self.groups
    }
    fn commands(&self) -> &C {
        self.commands
    }
    fn pipelines(&self) -> &P {
        self.pipelines
    }
    fn audit(&self) -> &U {
        self.audit
    }
    fn findings(&self) -> &F {
        self.findings
    }
    fn ops_items(&self) -> &O {
        self.ops_items
    }
}

/// How long attempts are kept: beyond any loop-breaker window a policy would set.
const KEEP_ATTEMPTS_DAYS: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum RemediateError {
    #[error("telling people failed; the outcome was: {outcome}")]
    Alert {
        outcome: String,
        #[source]
        source: PortError,
    },
}

/// Carries out one decision. `attempt` identifies this invocation (the Lambda request id: a
/// retry is another attempt); `now` is when it began; the outcome is stamped with it plus the
/// time acting and verifying took.
pub async fn handle(
    decision: &Decision,
    attempt: &str,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
    now: DateTime<Utc>,
) -> Result<Outcome, RemediateError> {
    let started = tokio::time::Instant::now();
    // No action goes unrecorded: the decision is written to the trail first, and if it cannot
    // be, nothing is changed. Decisions that found nothing (a healthy resource, recorded only)
    // are left to the logs: the trail holds what was acted on, asked, escalated or blocked.
    let found_nothing = decision.found_nothing();
    let recorded = if found_nothing {
        Err(None)
    } else {
        ports
            .audit()
            .append(
                "decision",
                &decision.id,
                serde_json::to_value(decision).unwrap_or_default(),
                decision.decided_at,
            )
            .await
            .map_err(Some)
    };
    let (status, mut detail, first) = match &recorded {
        Ok(_) | Err(None) => match once(decision, attempt, ports.history(), now).await {
            Once::First => {
                let (status, detail) = actions::act(decision, config, ports).await;
                (status, detail, true)
            }
            Once::Again(status, detail) => (status, detail, false),
        },
        Err(Some(e)) => (
            OutcomeStatus::NotActed,
            format!("the audit trail could not record the decision ({e}): nothing was changed"),
            true,
        ),
    };
    if first {
        remember_attempt(decision, status, ports.history()).await;
        keep_for_undo(decision, status, ports.history(), now).await;
    }
    let finished_at = now
        + chrono::Duration::from_std(started.elapsed())
            .unwrap_or_else(|_| chrono::Duration::zero());
    if recorded.is_ok() {
        let record = serde_json::json!({"status": status, "detail": detail});
        if let Err(e) = ports
            .audit()
            .append("outcome", &decision.id, record, finished_at)
            .await
        {
            tracing::error!(error = %vigil_core::error_chain(&e), decision = %decision.id, "outcome not recorded in the audit trail");
            detail.push_str(&format!(
                " (the audit trail could not record this outcome: {e})"
            ));
        }
    }
    let outcome = Outcome {
        decision_id: decision.id.clone(),
        status,
        detail,
        notification_id: None,
        finished_at,
    };
    tracing::info!(
        decision = %decision.id,
        tier = %decision.tier,
        status = ?outcome.status,
        detail = %outcome.detail,
        "decision carried out"
    );
    notification::tell(decision, outcome, config, ports, now).await
}

/// Whether this attempt carries the decision's action out.
enum Once {
    /// The first attempt, or a decision that changes nothing.
    First,
    /// An earlier attempt claimed the action: what it did, as far as it was recorded.
    Again(OutcomeStatus, String),
}

/// Claims the decision's action for this attempt. A claim that cannot be taken fails closed.
async fn once<R: ActionHistory + ClaimOnce>(
    decision: &Decision,
    attempt: &str,
    history: &R,
    now: DateTime<Utc>,
) -> Once {
    if !decision.acts() {
        return Once::First;
    }
    let key = keys::acted(&decision.id);
    let until = now + chrono::Duration::days(KEEP_ATTEMPTS_DAYS);
    match history.claim(&key, attempt, now, until).await {
        Ok(Claim::Won) => Once::First,
        Ok(Claim::Held) => {
            let resource = &decision.incident.resource.id;
            let earlier = history
                .recent(resource, decision.decided_at - chrono::Duration::minutes(1))
                .await
                .ok()
                .and_then(|attempts| {
                    attempts
                        .into_iter()
                        .rev()
                        .find(|a| a.decision_id == decision.id)
                });
            tracing::warn!(decision = %decision.id, attempt, "action already claimed: not repeating it");
            match earlier {
                Some(a) => Once::Again(
                    a.status,
                    format!(
                        "carried out by an earlier attempt of this decision ({:?}): not repeated",
                        a.status
                    ),
                ),
                None => Once::Again(
                    OutcomeStatus::NotActed,
                    format!(
                        "an earlier attempt of this decision claimed its action and its outcome was not recorded: not repeated; check {resource} by hand"
                    ),
                ),
            }
        }
        Err(e) => Once::Again(
            OutcomeStatus::NotActed,
            format!(
                "the action could not be claimed for this attempt ({}): nothing was changed",
                vigil_core::error_chain(&e)
            ),
        ),
    }
}

/// Keeps a decision whose action can be undone ([`vigil_core::undo::undoable`]), so a named
/// approver can undo it for [`vigil_core::undo::KEEP_DAYS`] days.
async fn keep_for_undo<R: KeepUndoable>(
    decision: &Decision,
    status: OutcomeStatus,
    history: &R,
    now: DateTime<Utc>,
) {
    if !vigil_core::undo::undoable(decision, status) {
        return;
    }
    let until = now + chrono::Duration::days(vigil_core::undo::KEEP_DAYS);
    if let Err(e) = history.keep_undoable(decision, until).await {
        // The action stands; only Vigil's undo of it is lost: people undo it by hand.
        tracing::error!(error = %vigil_core::error_chain(&e), decision = %decision.id, "decision not kept for undo");
    }
}

/// Records an action that was carried out (whatever its end) under its resource and, when it
/// changed a group, under the group: the loop breaker's and the ladder's memory.
async fn remember_attempt<R: ActionHistory>(
    decision: &Decision,
    status: OutcomeStatus,
    history: &R,
) {
    let Some(action) = decision
        .action
        .as_ref()
        .filter(|_| status != OutcomeStatus::NotActed)
    else {
        return;
    };
    // Stamped with the decision's time, the clock the policy's windows are read against.
    let at = decision.decided_at;
    let attempt = Attempt {
        at,
        action: action.kind().to_owned(),
        status,
        decision_id: decision.id.clone(),
    };
    let resource = &decision.incident.resource.id;
    let keep = at + chrono::Duration::days(KEEP_ATTEMPTS_DAYS);
    if let Err(e) = history.record(resource, &attempt, keep).await {
        // The action happened; losing its record weakens the loop breaker, so say so loudly.
        tracing::error!(error = %vigil_core::error_chain(&e), resource, "attempt not recorded");
    }
    // Remembered under the group too: a launch after an instance was taken out is its
    // replacement, and the group's instances' metrics settle after any change to it.
    if let Some(group) = action.changes_group() {
        let key = keys::in_account(
            decision.incident.resource.account.as_deref(),
            keys::group(group),
        );
        if let Err(e) = history.record(&key, &attempt, keep).await {
            tracing::error!(error = %vigil_core::error_chain(&e), key, "attempt not recorded");
        }
    }
}
