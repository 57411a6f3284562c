//! Each action Vigil can take: carried out through its port, then verified.

use super::verification::{Seen, being_replaced, failed_state, follow};
use super::{RemediateConfig, RemediatePorts};
use crate::ports::{
    AutomationStatus, CommandStatus, DescribeGroup, DescribeInstance, DetachFromGroup,
    DisableTransition, ReadKillSwitch, RollbackStage, RunCommand, ScalingProcesses,
    SetDesiredCapacity, SetInstanceHealth, StartAutomation, StopAndResume, TransitionEnabled,
};
use vigil_core::domain::{Action, Decision, OutcomeStatus, Tier};
use vigil_core::names::{AccessKeyId, GroupName, InstanceId, PipelineName, ServiceName};

pub(super) async fn act(
    decision: &Decision,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
) -> (OutcomeStatus, String) {
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
    match ports.kill_switch().engaged().await {
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
    if let (Some(region), Some(own)) = (
        decision.incident.resource.region.as_deref(),
        config.region.as_deref(),
    ) && region != own
    {
        return (
            OutcomeStatus::NotActed,
            format!(
                "{} is in Region {region}; this stack acts in {own} only (a name in another Region is another resource): nothing was changed",
                decision.incident.resource.id
            ),
        );
    }
    if let Some(account) = decision.incident.resource.account.as_deref() {
        if config.acting_account.as_deref() != Some(account) {
            return (
                OutcomeStatus::NotActed,
                format!(
                    "{} is in account {account}, where this function holds no role: nothing was changed",
                    decision.incident.resource.id
                ),
            );
        }
        if !in_member_accounts(action) {
            return (
                OutcomeStatus::NotActed,
                format!(
                    "{action} is not carried out in a member account (its member stack holds no runbooks and names no pipelines): nothing was changed"
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
        Action::ScaleOut { group, by } => {
            resize(group, *by, Resize::Out, config, ports.groups()).await
        }
        Action::DetachInstance { group, instance } => {
            detach_instance(group, instance, config, ports).await
        }
        Action::QuarantineInstance { instance } => {
            let mut params = vec![("InstanceId", instance.as_str())];
            if let Some(role) = &config.automation_role {
                params.push(("AutomationAssumeRole", role.as_str()));
            }
            run_automation(
                &config.quarantine_document,
                &params,
                config,
                ports.commands(),
            )
            .await
        }
        Action::DeactivateAccessKey { access_key_id } => {
            deactivate_key(access_key_id, config, ports.commands()).await
        }
        Action::FreezeDeployments { pipeline, stage } => {
            freeze(pipeline, stage, &decision.id, config, ports.pipelines()).await
        }
        Action::SuspendScaling { group } => {
            scaling_processes(group, true, config, ports.groups()).await
        }
        Action::ResumeScaling { group } => {
            scaling_processes(group, false, config, ports.groups()).await
        }
        Action::RollbackDeployment { pipeline, stage } => {
            rollback(pipeline, stage, config, ports.pipelines()).await
        }
        Action::StopDeployment {
            pipeline,
            execution,
        } => stop_deployment(pipeline, execution, &decision.id, config, ports.pipelines()).await,
        Action::UnfreezeDeployments { pipeline, stage } => {
            unfreeze(pipeline, stage, config, ports.pipelines()).await
        }
        Action::ScaleIn { group, by } => {
            resize(group, *by, Resize::In, config, ports.groups()).await
        }
        Action::ReleaseInstance { instance } => {
            undo_runbook(
                &config.release_document,
                ("InstanceId", instance.as_str()),
                decision,
                config,
                ports.commands(),
            )
            .await
        }
        Action::ReactivateAccessKey { access_key_id } => {
            undo_runbook(
                &config.reactivate_key_document,
                ("AccessKeyId", access_key_id.as_str()),
                decision,
                config,
                ports.commands(),
            )
            .await
        }
    }
}

/// The actions carried out in a member account, through its member role: its Auto Scaling
/// groups' (the member stack deploys no runbooks and Vigil knows no pipelines there).
fn in_member_accounts(action: &Action) -> bool {
    matches!(
        action,
        Action::ReplaceInstance { .. }
            | Action::ScaleOut { .. }
            | Action::ScaleIn { .. }
            | Action::DetachInstance { .. }
            | Action::SuspendScaling { .. }
            | Action::ResumeScaling { .. }
    )
}

/// An undo runbook (release a quarantine, activate a key again), run as the undo role. Only a
/// named approver's undo on the approve function gets here with that role: anywhere else
/// (remediate, or a decision that is no undo) nothing is changed.
async fn undo_runbook<C: StartAutomation + AutomationStatus>(
    document: &str,
    param: (&str, &str),
    decision: &Decision,
    config: &RemediateConfig,
    commands: &C,
) -> (OutcomeStatus, String) {
    let Some(role) = config
        .undo_role
        .as_deref()
        .filter(|_| vigil_core::undo::is_undo(decision))
    else {
        return (
            OutcomeStatus::NotActed,
            format!(
                "runbook {document} runs only on a named approver's undo, through the approve function: nothing was changed"
            ),
        );
    };
    let params = [param, ("AutomationAssumeRole", role)];
    run_automation(document, &params, config, commands).await
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
    let look = move || async move {
        match pipelines.transition_enabled(pipeline, stage).await {
            Ok(Some(true)) => Seen::Done(format!("deployments into {pipeline}/{stage} flow again")),
            _ => Seen::Pending("disabled".into()),
        }
    };
    follow(config, look, |_| {
        format!("the transition into {pipeline}/{stage} still reads disabled")
    })
    .await
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
    let look = move || async move {
        if let Ok(now) = groups.suspended(group).await {
            let all = names.iter().all(|n| now.iter().any(|s| s == n));
            let none = names.iter().all(|n| !now.iter().any(|s| s == n));
            if (suspend && all) || (!suspend && none) {
                return Seen::Done(format!("group {group}: {} {verb}ed", names.join(", ")));
            }
        }
        Seen::Pending(String::new())
    };
    follow(config, look, |_| {
        format!("group {group} does not report its processes {verb}ed")
    })
    .await
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

async fn restart_service(
    group: &GroupName,
    instance: &InstanceId,
    service: &ServiceName,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
) -> (OutcomeStatus, String) {
    match ports.instances().membership(instance).await {
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
        .commands()
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
    let (commands, command) = (ports.commands(), &command);
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

/// Which way a group's desired capacity moves: out within its maximum, in within its minimum.
#[derive(Clone, Copy)]
enum Resize {
    Out,
    In,
}

async fn resize<G: DescribeGroup + SetDesiredCapacity>(
    group: &GroupName,
    by: u32,
    way: Resize,
    config: &RemediateConfig,
    groups: &G,
) -> (OutcomeStatus, String) {
    let cap = match groups.capacity(group).await {
        Ok(c) => c,
        Err(e) => {
            return (
                OutcomeStatus::Failed,
                format!("could not read group {group}: {e}"),
            );
        }
    };
    let (target, moves) = match way {
        Resize::Out => {
            let t = cap.desired.saturating_add(by).min(cap.max_size);
            (t, t > cap.desired)
        }
        Resize::In => {
            let t = cap.desired.saturating_sub(by).max(cap.min_size);
            (t, t < cap.desired)
        }
    };
    if !moves {
        let why = match way {
            Resize::Out => format!(
                "group {group} is at its maximum of {} instances: not scaling",
                cap.max_size
            ),
            Resize::In => format!(
                "group {group} is at its minimum of {} instances: not scaling in",
                cap.min_size
            ),
        };
        return (OutcomeStatus::NotActed, why);
    }
    if let Err(e) = groups.set_desired(group, target).await {
        let verb = match way {
            Resize::Out => "raising",
            Resize::In => "lowering",
        };
        return (
            OutcomeStatus::Failed,
            format!("{verb} group {group} to {target} failed: {e}"),
        );
    }
    let before = cap.desired;
    let look = move || async move {
        match groups.capacity(group).await {
            Ok(c) => match way {
                Resize::Out if c.desired >= target => Seen::Done(format!(
                    "group {group} desired capacity {before} -> {} (maximum {})",
                    c.desired, c.max_size
                )),
                Resize::In if c.desired <= target => Seen::Done(format!(
                    "group {group} desired capacity {before} -> {} (minimum {})",
                    c.desired, c.min_size
                )),
                _ => Seen::Pending(c.desired.to_string()),
            },
            Err(e) => Seen::Pending(e.to_string()),
        }
    };
    follow(config, look, |_| {
        format!("group {group} was asked for {target} instances but does not report it")
    })
    .await
}

async fn detach_instance(
    group: &GroupName,
    instance: &InstanceId,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
) -> (OutcomeStatus, String) {
    match ports.instances().membership(instance).await {
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
    if let Err(e) = ports.groups().detach(group, instance).await {
        return (
            OutcomeStatus::Failed,
            format!("detaching {instance} from {group} failed: {e}"),
        );
    }
    let instances = ports.instances();
    let look = move || async move {
        match instances.membership(instance).await {
            Ok(None) => Seen::Done(format!(
                "{instance} detached from group {group} and kept for forensics; the group launches a replacement"
            )),
            _ => Seen::Pending("listed".into()),
        }
    };
    follow(config, look, |_| {
        format!("{instance} was detached but group {group} still lists it")
    })
    .await
}

async fn run_automation<C: StartAutomation + AutomationStatus>(
    document: &str,
    params: &[(&str, &str)],
    config: &RemediateConfig,
    commands: &C,
) -> (OutcomeStatus, String) {
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

async fn deactivate_key<C: StartAutomation + AutomationStatus>(
    key: &AccessKeyId,
    config: &RemediateConfig,
    commands: &C,
) -> (OutcomeStatus, String) {
    let mut params = vec![("AccessKeyId", key.as_str())];
    if let Some(role) = &config.automation_role {
        params.push(("AutomationAssumeRole", role.as_str()));
    }
    run_automation(&config.deactivate_key_document, &params, config, commands).await
}

async fn freeze<P: DisableTransition + TransitionEnabled>(
    pipeline: &PipelineName,
    stage: &PipelineName,
    decision: &str,
    config: &RemediateConfig,
    pipelines: &P,
) -> (OutcomeStatus, String) {
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
    let look = move || async move {
        match pipelines.transition_enabled(pipeline, stage).await {
            Ok(Some(false)) => Seen::Done(format!(
                "deployments into {pipeline}/{stage} are frozen until people enable the transition"
            )),
            Ok(None) => Seen::Failed(format!("pipeline {pipeline} has no stage {stage}")),
            Ok(Some(true)) => Seen::Pending("enabled".into()),
            Err(e) => Seen::Pending(e.to_string()),
        }
    };
    follow(config, look, |_| {
        format!("the transition into {pipeline}/{stage} still reads enabled")
    })
    .await
}

async fn replace_instance(
    group: &str,
    instance: &InstanceId,
    config: &RemediateConfig,
    ports: &impl RemediatePorts,
) -> (OutcomeStatus, String) {
    match ports.instances().membership(instance).await {
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
    if let Err(e) = ports.health().set_unhealthy(instance).await {
        return (
            OutcomeStatus::Failed,
            format!("marking {instance} Unhealthy failed: {e}"),
        );
    }
    let instances = ports.instances();
    let look = move || async move {
        match instances.membership(instance).await {
            Ok(Some(m)) if being_replaced(&m.health, &m.lifecycle) => Seen::Done(format!(
                "{instance} marked Unhealthy; group {group} reports it {} / {}",
                m.health, m.lifecycle
            )),
            Ok(None) => Seen::Done(format!(
                "{instance} marked Unhealthy and already removed from group {group}"
            )),
            Ok(Some(m)) => Seen::Pending(format!("{} / {}", m.health, m.lifecycle)),
            Err(e) => Seen::Pending(e.to_string()),
        }
    };
    follow(config, look, |_| {
        format!(
            "{instance} was marked Unhealthy but group {group} still reports it healthy after {} checks",
            config.verify_attempts
        )
    })
    .await
}
