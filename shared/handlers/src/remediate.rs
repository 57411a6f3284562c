//! `remediate`: one decision in; the action carried out and verified, people told, the
//! outcome out.
//!
//! Nothing is changed unless the decision acts (auto-heal tier, enforce mode) and the kill
//! switch, read again right before acting, is off. An action counts as done only once its
//! effect is seen.

use std::time::Duration;

use crate::ports::{
    ActionHistory, AppendAudit, AutomationStatus, CommandStatus, DescribeGroup, DescribeInstance,
    DetachFromGroup, DisableTransition, PortError, PublishAlert, ReadKillSwitch, RunCommand,
    SavePendingApproval, SetDesiredCapacity, SetInstanceHealth, StartAutomation, TransitionEnabled,
};
use crate::ports::{
    FindAlertSent, MarkAlertSent, RollbackStage, ScalingProcesses, StopAndResume, TakeQuota,
};
use chrono::Utc;
use vigil_core::alert;
use vigil_core::domain::{Action, Attempt, Decision, Outcome, OutcomeStatus, Tier};
use vigil_core::names::{AccessKeyId, GroupName, InstanceId, PipelineName, ServiceName};

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
    /// Where approval links point and the key that signs them; without it, decisions that
    /// need a person's approval are escalated by email without links.
    pub approval: Option<ApprovalLinks>,
    /// The region, for console links in alerts.
    pub region: Option<String>,
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
            approval: None,
            region: None,
        }
    }
}

/// The ports `remediate` uses. Each field is one adapter; the bounds on the handler name the
/// narrow capabilities it needs from each.
pub struct RemediatePorts<'a, K, I, H, A, R, G, C, P, U> {
    pub kill_switch: &'a K,
    pub instances: &'a I,
    pub health: &'a H,
    pub alerts: &'a A,
    /// Where each attempt is recorded for the loop breaker and the ladder, and where
    /// decisions wait for approval.
    pub history: &'a R,
    /// Group capacity: read, raise, detach from.
    pub groups: &'a G,
    /// Run Command and Automation.
    pub commands: &'a C,
    /// Pipeline stage transitions.
    pub pipelines: &'a P,
    /// The tamper-evident audit trail: every decision, and every outcome.
    pub audit: &'a U,
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

/// Carries out one decision.
pub async fn handle<K, I, H, A, R, G, C, P, U>(
    decision: &Decision,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R, G, C, P, U>,
) -> Result<Outcome, RemediateError>
where
    U: AppendAudit,
    K: ReadKillSwitch,
    I: DescribeInstance,
    H: SetInstanceHealth,
    A: PublishAlert,
    R: ActionHistory + SavePendingApproval + TakeQuota + MarkAlertSent + FindAlertSent,
    G: DescribeGroup + SetDesiredCapacity + DetachFromGroup + ScalingProcesses,
    C: RunCommand + CommandStatus + StartAutomation + AutomationStatus,
    P: DisableTransition + TransitionEnabled + RollbackStage + StopAndResume,
{
    // No action goes unrecorded: the decision is written to the trail first, and if it cannot
    // be, nothing is changed. Decisions that found nothing (a healthy resource, recorded only)
    // are left to the logs: the trail holds what was acted on, asked, escalated or blocked.
    let found_nothing = decision.tier == Tier::Observe
        && !decision.cites("recovery")
        && decision.action.is_none()
        && decision.incident.threat.is_none()
        && decision.incident.failure_mode == vigil_core::domain::FailureMode::Normal;
    let recorded = if found_nothing {
        Err(None)
    } else {
        ports
            .audit
            .append(
                "decision",
                &decision.id,
                serde_json::to_value(decision).unwrap_or_default(),
                decision.decided_at,
            )
            .await
            .map_err(Some)
    };
    let (status, mut detail) = match &recorded {
        Ok(_) | Err(None) => act(decision, config, ports).await,
        Err(Some(e)) => (
            OutcomeStatus::NotActed,
            format!("the audit trail could not record the decision ({e}): nothing was changed"),
        ),
    };
    if let Some(action) = decision
        .action
        .as_ref()
        .filter(|_| status != OutcomeStatus::NotActed)
    {
        // Stamped with the decision's time, the clock the policy's windows are read against.
        let now = decision.decided_at;
        let attempt = Attempt {
            at: now,
            action: action.kind().to_owned(),
            status,
            decision_id: decision.id.clone(),
        };
        let resource = &decision.incident.resource.id;
        let keep = now + chrono::Duration::days(KEEP_ATTEMPTS_DAYS);
        if let Err(e) = ports.history.record(resource, &attempt, keep).await {
            // The action happened; losing its record weakens the loop breaker, so say so loudly.
            tracing::error!(error = %vigil_core::error_chain(&e), resource, "attempt not recorded");
        }
        // Remembered under the group too: a launch after an instance was taken out is its
        // replacement, and the group's instances' metrics settle after any change to it.
        if let Some(group) = action.changes_group() {
            let key = group_key(group);
            if let Err(e) = ports.history.record(&key, &attempt, keep).await {
                tracing::error!(error = %vigil_core::error_chain(&e), key, "attempt not recorded");
            }
        }
    }
    let finished_at = Utc::now();
    if recorded.is_ok() {
        let record = serde_json::json!({"status": status, "detail": detail});
        if let Err(e) = ports
            .audit
            .append("outcome", &decision.id, record, finished_at)
            .await
        {
            tracing::error!(error = %vigil_core::error_chain(&e), decision = %decision.id, "outcome not recorded in the audit trail");
            detail.push_str(&format!(
                " (the audit trail could not record this outcome: {e})"
            ));
        }
    }
    let mut outcome = Outcome {
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
    // Recorded only, unless it closes the loop on an earlier action: people hear it recovered.
    if decision.tier == Tier::Observe && !decision.cites("recovery") {
        return Ok(outcome);
    }
    // A retry of this decision after its answer was lost: people were told already.
    let sent = format!("{}#{}", decision.id, decision.tier);
    match ports.history.find_sent(&sent, finished_at).await {
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
    if grouped(decision, &outcome, ports.history).await {
        tracing::info!(vigil_grouped_alerts = 1, decision = %decision.id, "alert grouped with an earlier one");
        return Ok(outcome);
    }
    let links = approval_links(decision, config, ports.history).await;
    let mut message = alert::render_with_links(decision, &outcome, links.as_ref());
    if let Some(region) = &config.region {
        alert::add_console_links(&mut message, &decision.incident.resource, region);
    }
    match ports.alerts.publish(&message).await {
        Ok(id) => {
            let keep = finished_at + chrono::Duration::days(KEEP_ATTEMPTS_DAYS);
            if let Err(e) = ports.history.mark_sent(&sent, &id, keep).await {
                tracing::warn!(error = %vigil_core::error_chain(&e), decision = %decision.id, "sent alert not remembered");
            }
            outcome.notification_id = Some(id);
        }
        Err(source) => {
            return Err(RemediateError::Alert {
                outcome: format!("{:?}: {}", outcome.status, outcome.detail),
                source,
            });
        }
    }
    Ok(outcome)
}

async fn act<K, I, H, A, R, G, C, P, U>(
    decision: &Decision,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R, G, C, P, U>,
) -> (OutcomeStatus, String)
where
    K: ReadKillSwitch,
    I: DescribeInstance,
    H: SetInstanceHealth,
    G: DescribeGroup + SetDesiredCapacity + DetachFromGroup + ScalingProcesses,
    C: RunCommand + CommandStatus + StartAutomation + AutomationStatus,
    P: DisableTransition + TransitionEnabled + RollbackStage + StopAndResume,
{
    let Some(action) = &decision.action else {
        return (OutcomeStatus::NotActed, "no action was decided".into());
    };
    if !decision.acts() {
        let why = match decision.tier {
            Tier::AutoHeal => format!("{} mode: would have done: {action}", decision.mode),
            tier => format!("tier {tier}: not acting on {action}"),
        };
        return (OutcomeStatus::NotActed, why);
    }
    match ports.kill_switch.engaged().await {
        Ok(false) => {}
        Ok(true) => {
            return (
                OutcomeStatus::NotActed,
                "the kill switch was engaged before the action: nothing was changed".into(),
            );
        }
        Err(e) => {
            return (
                OutcomeStatus::NotActed,
                format!(
                    "the kill switch could not be read ({e}): failing closed, nothing was changed"
                ),
            );
        }
    }
    match action {
        Action::ReplaceInstance { group, instance } => {
            replace_instance(group.as_str(), instance, config, ports).await
        }
        Action::RestartService {
            group,
            instance,
            service,
        } => restart_service(group, instance, service, config, ports).await,
        Action::ScaleOut { group, by } => scale_out(group, *by, config, ports.groups).await,
        Action::DetachInstance { group, instance } => {
            detach_instance(group, instance, config, ports).await
        }
        Action::QuarantineInstance { instance } => {
            let mut params = vec![("InstanceId", instance.as_str())];
            if let Some(role) = &config.automation_role {
                params.push(("AutomationAssumeRole", role.as_str()));
            }
            run_automation(&config.quarantine_document, &params, config, ports.commands).await
        }
        Action::DeactivateAccessKey { access_key_id } => {
            deactivate_key(access_key_id, config, ports.commands).await
        }
        Action::FreezeDeployments { pipeline, stage } => {
            freeze(pipeline, stage, &decision.id, config, ports.pipelines).await
        }
        Action::SuspendScaling { group } => {
            scaling_processes(group, true, config, ports.groups).await
        }
        Action::ResumeScaling { group } => {
            scaling_processes(group, false, config, ports.groups).await
        }
        Action::RollbackDeployment { pipeline, stage } => {
            rollback(pipeline, stage, config, ports.pipelines).await
        }
        Action::StopDeployment {
            pipeline,
            execution,
        } => stop_deployment(pipeline, execution, &decision.id, config, ports.pipelines).await,
        Action::UnfreezeDeployments { pipeline, stage } => {
            unfreeze(pipeline, stage, config, ports.pipelines).await
        }
    }
}

async fn stop_deployment<P: StopAndResume>(
    pipeline: &PipelineName,
    execution: &PipelineName,
    decision: &str,
    config: &RemediateConfig,
    pipelines: &P,
) -> (OutcomeStatus, String) {
    let reason: String = format!("Vigil: stopped by decision {decision}")
        .chars()
        .take(200)
        .collect();
    if let Err(e) = pipelines.stop_execution(pipeline, execution, &reason).await {
        return (
            OutcomeStatus::Failed,
            format!("stopping {pipeline}/{execution} failed: {e}"),
        );
    }
    let look = move || async move {
        match pipelines.execution_status(pipeline, execution).await {
            Ok(Some(s)) if matches!(s.as_str(), "Stopped" | "Stopping" | "Cancelled") => {
                Seen::Done(format!("execution {execution} of {pipeline} is {s}"))
            }
            Ok(Some(s)) => Seen::Pending(s),
            Ok(None) => Seen::Pending("unknown to CodePipeline".into()),
            Err(e) => Seen::Pending(e.to_string()),
        }
    };
    follow(config, look, |last| {
        format!("execution {execution} of {pipeline} is still {last}")
    })
    .await
}

async fn unfreeze<P: StopAndResume + TransitionEnabled>(
    pipeline: &PipelineName,
    stage: &PipelineName,
    config: &RemediateConfig,
    pipelines: &P,
) -> (OutcomeStatus, String) {
    if let Err(e) = pipelines.enable_transition(pipeline, stage).await {
        return (
            OutcomeStatus::Failed,
            format!("enabling the transition into {pipeline}/{stage} failed: {e}"),
        );
    }
    for attempt in 0..config.verify_attempts {
        pause(config, attempt).await;
        if let Ok(Some(true)) = pipelines.transition_enabled(pipeline, stage).await {
            return (
                OutcomeStatus::Verified,
                format!("deployments into {pipeline}/{stage} flow again"),
            );
        }
    }
    (
        OutcomeStatus::Unverified,
        format!("the transition into {pipeline}/{stage} still reads disabled"),
    )
}

async fn scaling_processes<G: ScalingProcesses>(
    group: &GroupName,
    suspend: bool,
    config: &RemediateConfig,
    groups: &G,
) -> (OutcomeStatus, String) {
    let names = vigil_core::domain::SUSPENDED_PROCESSES;
    let verb = if suspend { "suspend" } else { "resume" };
    if let Err(e) = groups.set_processes(group, &names, suspend).await {
        return (
            OutcomeStatus::Failed,
            format!("could not {verb} scaling processes of {group}: {e}"),
        );
    }
    for attempt in 0..config.verify_attempts {
        pause(config, attempt).await;
        if let Ok(now) = groups.suspended(group).await {
            let all = names.iter().all(|n| now.iter().any(|s| s == n));
            let none = names.iter().all(|n| !now.iter().any(|s| s == n));
            if (suspend && all) || (!suspend && none) {
                return (
                    OutcomeStatus::Verified,
                    format!("group {group}: {} {verb}ed", names.join(", ")),
                );
            }
        }
    }
    (
        OutcomeStatus::Unverified,
        format!("group {group} does not report its processes {verb}ed"),
    )
}

async fn rollback<P: RollbackStage>(
    pipeline: &PipelineName,
    stage: &PipelineName,
    config: &RemediateConfig,
    pipelines: &P,
) -> (OutcomeStatus, String) {
    let target = match pipelines.rollback(pipeline, stage).await {
        Ok(t) => t,
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("rolling back {pipeline}/{stage} failed: {e}"),
            );
        }
    };
    let target = &target;
    let look = move || async move {
        match pipelines.stage_status(pipeline, stage).await {
            Ok(Some(s)) if s == "Succeeded" => Seen::Done(format!(
                "{pipeline}/{stage} rolled back to execution {target}"
            )),
            Ok(Some(s)) if matches!(s.as_str(), "Failed" | "Stopped" | "Cancelled") => {
                Seen::Failed(format!(
                    "the rollback of {pipeline}/{stage} to {target} ended {s}"
                ))
            }
            Ok(Some(s)) => Seen::Pending(s),
            Ok(None) => Seen::Pending("no such stage".into()),
            Err(e) => Seen::Pending(e.to_string()),
        }
    };
    follow(config, look, |last| {
        format!("the rollback of {pipeline}/{stage} to {target} is still {last}")
    })
    .await
}

/// The attempt-history key of a group: the actions that changed it (replacements, scale-outs).
pub fn group_key(group: &GroupName) -> String {
    format!("group#{group}")
}

/// Minutes in which similar alerts are grouped into the first one.
pub const ALERT_GROUP_MINUTES: i64 = 15;

/// Whether this alert joins one already sent: the same thing (failure mode or threat) on the
/// same group (or application, or resource), in the same tier and mode, in the same window,
/// and nothing was done; for a threat led by a call or sign-in, also the same act (the same
/// API, a sign-in's outcome, the same network: [`vigil_core::features::identity::act`]), so that
/// sixty guessed passwords are one alert and the guess that works, or another intruder, is
/// another. Alerts about actions carried out and approval requests are always sent; so is
/// everything when the grouping counter cannot be read.
async fn grouped<R: TakeQuota>(decision: &Decision, outcome: &Outcome, state: &R) -> bool {
    if outcome.status != OutcomeStatus::NotActed || decision.tier == Tier::Approval {
        return false;
    }
    let r = &decision.incident.resource;
    let scope = r
        .group
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| r.application.clone())
        .unwrap_or_else(|| r.id.clone());
    let window = decision.decided_at.timestamp() / (ALERT_GROUP_MINUTES * 60);
    // Only like with like: the same situation (tier and mode) about the same thing.
    let mut key = format!(
        "alerts#{scope}#{}#{}#{}#{window}",
        decision.incident.what(),
        decision.tier,
        decision.mode
    );
    if decision.incident.threat.is_some()
        && let Some(act) = decision
            .incident
            .evidence
            .first()
            .and_then(|e| vigil_core::features::identity::act(&e.observation.signal))
    {
        key = format!("{key}#{act}");
    }
    let until = decision.decided_at + chrono::Duration::minutes(2 * ALERT_GROUP_MINUTES);
    matches!(state.take(&key, 1, until).await, Ok(None))
}

/// For a decision a person must approve: saves it as pending and makes its approve and deny
/// links. `None` when approvals are not configured or the decision cannot be saved (the alert
/// then asks people to act by hand).
async fn approval_links<R: SavePendingApproval>(
    decision: &Decision,
    config: &RemediateConfig,
    pending: &R,
) -> Option<(String, String)> {
    if decision.tier != Tier::Approval || decision.action.is_none() {
        return None;
    }
    let Some(approval) = &config.approval else {
        tracing::warn!(decision = %decision.id, "approval links are not configured");
        return None;
    };
    let now = Utc::now();
    let until = now + chrono::Duration::hours(vigil_core::approval::LINK_HOURS);
    if let Err(e) = pending.save_pending(decision, until).await {
        tracing::error!(error = %vigil_core::error_chain(&e), decision = %decision.id, "pending approval not saved");
        return None;
    }
    match vigil_core::approval::links(&approval.key, &approval.base_url, &decision.id, now, |v| {
        format!("{}:{v:?}", decision.id)
    }) {
        Ok(links) => Some(links),
        Err(e) => {
            tracing::error!(error = %e, "approval links not signed");
            None
        }
    }
}

/// Waits the configured interval before every look but the first.
async fn pause(config: &RemediateConfig, attempt: u32) {
    if attempt > 0 {
        tokio::time::sleep(config.verify_interval).await;
    }
}

/// What one look at an action's effect found.
enum Seen {
    Done(String),
    Failed(String),
    /// Neither yet: what was seen instead.
    Pending(String),
}

/// Looks at an action's effect until it is done or failed, at most `verify_attempts` times;
/// then it is unverified, described by `still` from the last thing seen.
async fn follow<F, Fut>(
    config: &RemediateConfig,
    mut look: F,
    still: impl FnOnce(&str) -> String,
) -> (OutcomeStatus, String)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Seen>,
{
    let mut last = String::from("unknown");
    for attempt in 0..config.verify_attempts {
        pause(config, attempt).await;
        match look().await {
            Seen::Done(msg) => return (OutcomeStatus::Verified, msg),
            Seen::Failed(msg) => return (OutcomeStatus::Failed, msg),
            Seen::Pending(seen) => last = seen,
        }
    }
    (OutcomeStatus::Unverified, still(&last))
}

/// SSM's terminal failure states for commands and automations.
fn failed_state(status: &str) -> bool {
    matches!(
        status,
        "Failed"
            | "Cancelled"
            | "TimedOut"
            | "Cancelling"
            | "Undeliverable"
            | "Terminated"
            | "DeliveryTimedOut"
            | "ExecutionTimedOut"
            | "Rejected"
            | "CompletedWithFailure"
    )
}

async fn restart_service<K, I, H, A, R, G, C, P, U>(
    group: &GroupName,
    instance: &InstanceId,
    service: &ServiceName,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R, G, C, P, U>,
) -> (OutcomeStatus, String)
where
    I: DescribeInstance,
    C: RunCommand + CommandStatus,
{
    match ports.instances.membership(instance).await {
        Ok(Some(m)) if m.group == *group => {}
        Ok(_) => {
            return (
                OutcomeStatus::NotActed,
                format!("{instance} is no longer in group {group}: not acting"),
            );
        }
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("could not look up {instance}: {e}"),
            );
        }
    }
    let command = match ports
        .commands
        .run(
            instance,
            &config.restart_document,
            &[("ServiceName", service.as_str())],
        )
        .await
    {
        Ok(id) => id,
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("sending the restart of {service} to {instance} failed: {e}"),
            );
        }
    };
    let (commands, command) = (ports.commands, &command);
    let look = move || async move {
        match commands.command_status(command, instance).await {
            Ok(s) if s == "Success" => Seen::Done(format!(
                "{service} restarted on {instance} (command {command}: Success)"
            )),
            Ok(s) if failed_state(&s) => Seen::Failed(format!(
                "restarting {service} on {instance} ended {s} (command {command})"
            )),
            Ok(s) => Seen::Pending(s),
            Err(e) => Seen::Pending(e.to_string()),
        }
    };
    follow(config, look, |last| {
        format!(
            "restart of {service} on {instance} sent (command {command}) but still {last} after {} checks",
            config.verify_attempts
        )
    })
    .await
}

async fn scale_out<G>(
    group: &GroupName,
    by: u32,
    config: &RemediateConfig,
    groups: &G,
) -> (OutcomeStatus, String)
where
    G: DescribeGroup + SetDesiredCapacity,
{
    let cap = match groups.capacity(group).await {
        Ok(c) => c,
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("could not read group {group}: {e}"),
            );
        }
    };
    let target = cap.desired.saturating_add(by).min(cap.max_size);
    if target <= cap.desired {
        return (
            OutcomeStatus::NotActed,
            format!(
                "group {group} is at its maximum of {} instances: not scaling",
                cap.max_size
            ),
        );
    }
    if let Err(e) = groups.set_desired(group, target).await {
        return (
            OutcomeStatus::Failed,
            format!("raising group {group} to {target} failed: {e}"),
        );
    }
    for attempt in 0..config.verify_attempts {
        pause(config, attempt).await;
        if let Ok(c) = groups.capacity(group).await
            && c.desired >= target
        {
            return (
                OutcomeStatus::Verified,
                format!(
                    "group {group} desired capacity {} -> {} (maximum {})",
                    cap.desired, c.desired, c.max_size
                ),
            );
        }
    }
    (
        OutcomeStatus::Unverified,
        format!("group {group} was asked for {target} instances but does not report it"),
    )
}

async fn detach_instance<K, I, H, A, R, G, C, P, U>(
    group: &GroupName,
    instance: &InstanceId,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R, G, C, P, U>,
) -> (OutcomeStatus, String)
where
    I: DescribeInstance,
    G: DetachFromGroup,
{
    match ports.instances.membership(instance).await {
        Ok(Some(m)) if m.group == *group => {}
        Ok(_) => {
            return (
                OutcomeStatus::NotActed,
                format!("{instance} is no longer in group {group}: not acting"),
            );
        }
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("could not look up {instance}: {e}"),
            );
        }
    }
    if let Err(e) = ports.groups.detach(group, instance).await {
        return (
            OutcomeStatus::Failed,
            format!("detaching {instance} from {group} failed: {e}"),
        );
    }
    for attempt in 0..config.verify_attempts {
        pause(config, attempt).await;
        if let Ok(None) = ports.instances.membership(instance).await {
            return (
                OutcomeStatus::Verified,
                format!(
                    "{instance} detached from group {group} and kept for forensics; the group launches a replacement"
                ),
            );
        }
    }
    (
        OutcomeStatus::Unverified,
        format!("{instance} was detached but group {group} still lists it"),
    )
}

async fn run_automation<C>(
    document: &str,
    params: &[(&str, &str)],
    config: &RemediateConfig,
    commands: &C,
) -> (OutcomeStatus, String)
where
    C: StartAutomation + AutomationStatus,
{
    let execution = match commands.start_automation(document, params).await {
        Ok(id) => id,
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("starting runbook {document} failed: {e}"),
            );
        }
    };
    let execution = &execution;
    let look = move || async move {
        match commands.automation_status(execution).await {
            Ok(s) if s == "Success" => Seen::Done(format!(
                "runbook {document} succeeded (execution {execution})"
            )),
            Ok(s) if failed_state(&s) => Seen::Failed(format!(
                "runbook {document} ended {s} (execution {execution})"
            )),
            Ok(s) => Seen::Pending(s),
            Err(e) => Seen::Pending(e.to_string()),
        }
    };
    follow(config, look, |last| {
        format!(
            "runbook {document} started (execution {execution}) but still {last} after {} checks",
            config.verify_attempts
        )
    })
    .await
}

async fn deactivate_key<C>(
    key: &AccessKeyId,
    config: &RemediateConfig,
    commands: &C,
) -> (OutcomeStatus, String)
where
    C: StartAutomation + AutomationStatus,
{
    let mut params = vec![("AccessKeyId", key.as_str())];
    if let Some(role) = &config.automation_role {
        params.push(("AutomationAssumeRole", role.as_str()));
    }
    run_automation(&config.deactivate_key_document, &params, config, commands).await
}

async fn freeze<P>(
    pipeline: &PipelineName,
    stage: &PipelineName,
    decision: &str,
    config: &RemediateConfig,
    pipelines: &P,
) -> (OutcomeStatus, String)
where
    P: DisableTransition + TransitionEnabled + RollbackStage + StopAndResume,
{
    // CodePipeline shows the reason in its console: at most 300 characters.
    let reason: String = format!("Vigil: security incident, decision {decision}")
        .chars()
        .take(300)
        .collect();
    if let Err(e) = pipelines.disable_transition(pipeline, stage, &reason).await {
        return (
            OutcomeStatus::Failed,
            format!("disabling the transition into {pipeline}/{stage} failed: {e}"),
        );
    }
    for attempt in 0..config.verify_attempts {
        pause(config, attempt).await;
        match pipelines.transition_enabled(pipeline, stage).await {
            Ok(Some(false)) => {
                return (
                    OutcomeStatus::Verified,
                    format!(
                        "deployments into {pipeline}/{stage} are frozen until people enable the transition"
                    ),
                );
            }
            Ok(None) => {
                return (
                    OutcomeStatus::Failed,
                    format!("pipeline {pipeline} has no stage {stage}"),
                );
            }
            Ok(Some(true)) | Err(_) => {}
        }
    }
    (
        OutcomeStatus::Unverified,
        format!("the transition into {pipeline}/{stage} still reads enabled"),
    )
}

/// Whether Auto Scaling already treats the instance as on its way out.
fn being_replaced(health: &str, lifecycle: &str) -> bool {
    health == "UNHEALTHY" || lifecycle.starts_with("Terminating") || lifecycle == "Terminated"
}

async fn replace_instance<K, I, H, A, R, G, C, P, U>(
    group: &str,
    instance: &InstanceId,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R, G, C, P, U>,
) -> (OutcomeStatus, String)
where
    I: DescribeInstance,
    H: SetInstanceHealth,
{
    match ports.instances.membership(instance).await {
        Ok(Some(m)) if m.group.as_str() != group => {
            return (
                OutcomeStatus::NotActed,
                format!(
                    "{instance} is now in group {}, not {group}: not acting",
                    m.group
                ),
            );
        }
        Ok(Some(m)) if being_replaced(&m.health, &m.lifecycle) => {
            return (
                OutcomeStatus::Verified,
                format!(
                    "{instance} is already {} / {}: replacement under way",
                    m.health, m.lifecycle
                ),
            );
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            return (
                OutcomeStatus::NotActed,
                format!("{instance} is no longer in an Auto Scaling group: not acting"),
            );
        }
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("could not look up {instance}: {e}"),
            );
        }
    }
    if let Err(e) = ports.health.set_unhealthy(instance).await {
        return (
            OutcomeStatus::Failed,
            format!("marking {instance} Unhealthy failed: {e}"),
        );
    }
    for attempt in 0..config.verify_attempts {
        if attempt > 0 {
            tokio::time::sleep(config.verify_interval).await;
        }
        match ports.instances.membership(instance).await {
            Ok(Some(m)) if being_replaced(&m.health, &m.lifecycle) => {
                return (
                    OutcomeStatus::Verified,
                    format!(
                        "{instance} marked Unhealthy; group {group} reports it {} / {}",
                        m.health, m.lifecycle
                    ),
                );
            }
            Ok(None) => {
                return (
                    OutcomeStatus::Verified,
                    format!("{instance} marked Unhealthy and already removed from group {group}"),
                );
            }
            Ok(Some(_)) | Err(_) => {}
        }
    }
    (
        OutcomeStatus::Unverified,
        format!(
            "{instance} was marked Unhealthy but group {group} still reports it healthy after {} checks",
            config.verify_attempts
        ),
    )
}
