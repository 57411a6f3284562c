//! `remediate`: one decision in; the action carried out and verified, people told, the
//! outcome out.
//!
//! Nothing is changed unless the decision acts (auto-heal tier, enforce mode) and the kill
//! switch, read again right before acting, is off. An action counts as done only once its
//! effect is seen.

use std::time::Duration;

use crate::alert;
use crate::domain::{Action, Attempt, Decision, Outcome, OutcomeStatus, Tier};
use crate::names::InstanceId;
use crate::ports::{
    ActionHistory, DescribeInstance, PortError, PublishAlert, ReadKillSwitch, SetInstanceHealth,
};
use chrono::Utc;

/// How an action is verified.
#[derive(Debug, Clone)]
pub struct RemediateConfig {
    /// How many times the effect is looked for after acting.
    pub verify_attempts: u32,
    /// The wait between looks.
    pub verify_interval: Duration,
}

impl Default for RemediateConfig {
    fn default() -> Self {
        RemediateConfig {
            verify_attempts: 6,
            verify_interval: Duration::from_secs(5),
        }
    }
}

/// The ports `remediate` uses.
pub struct RemediatePorts<'a, K, I, H, A, R> {
    pub kill_switch: &'a K,
    pub instances: &'a I,
    pub health: &'a H,
    pub alerts: &'a A,
    /// Where each attempt is recorded for the loop breaker and the ladder.
    pub history: &'a R,
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
pub async fn handle<K, I, H, A, R>(
    decision: &Decision,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R>,
) -> Result<Outcome, RemediateError>
where
    K: ReadKillSwitch,
    I: DescribeInstance,
    H: SetInstanceHealth,
    A: PublishAlert,
    R: ActionHistory,
{
    let (status, detail) = act(decision, config, ports).await;
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
            tracing::error!(error = %crate::error_chain(&e), resource, "attempt not recorded");
        }
    }
    let mut outcome = Outcome {
        decision_id: decision.id.clone(),
        status,
        detail,
        notification_id: None,
        finished_at: Utc::now(),
    };
    tracing::info!(
        decision = %decision.id,
        tier = %decision.tier,
        status = ?outcome.status,
        detail = %outcome.detail,
        "decision carried out"
    );
    if decision.tier == Tier::Observe {
        return Ok(outcome);
    }
    let message = alert::render(decision, &outcome);
    match ports.alerts.publish(&message).await {
        Ok(id) => outcome.notification_id = Some(id),
        Err(source) => {
            return Err(RemediateError::Alert {
                outcome: format!("{:?}: {}", outcome.status, outcome.detail),
                source,
            });
        }
    }
    Ok(outcome)
}

async fn act<K, I, H, A, R>(
    decision: &Decision,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R>,
) -> (OutcomeStatus, String)
where
    K: ReadKillSwitch,
    I: DescribeInstance,
    H: SetInstanceHealth,
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
    }
}

/// Whether Auto Scaling already treats the instance as on its way out.
fn being_replaced(health: &str, lifecycle: &str) -> bool {
    health == "UNHEALTHY" || lifecycle.starts_with("Terminating") || lifecycle == "Terminated"
}

async fn replace_instance<K, I, H, A, R>(
    group: &str,
    instance: &InstanceId,
    config: &RemediateConfig,
    ports: &RemediatePorts<'_, K, I, H, A, R>,
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
