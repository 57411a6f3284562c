//! How an action's effect is looked for: one loop, [`follow`], for every action, each action
//! saying what one look found ([`Seen`]).

use super::RemediateConfig;
use vigil_core::domain::OutcomeStatus;

/// Waits the configured interval before every look but the first.
async fn pause(config: &RemediateConfig, attempt: u32) {
    if attempt > 0 {
        tokio::time::sleep(config.verify_interval).await;
    }
}

/// What one look at an action's effect found.
pub(super) enum Seen {
    Done(String),
    Failed(String),
    /// Neither yet: what was seen instead.
    Pending(String),
}

/// Looks at an action's effect until it is done or failed, at most `verify_attempts` times;
/// then it is unverified, described by `still` from the last thing seen.
pub(super) async fn follow<F, Fut>(
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
pub(super) fn failed_state(status: &str) -> bool {
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

/// Whether Auto Scaling already treats the instance as on its way out.
pub(super) fn being_replaced(health: &str, lifecycle: &str) -> bool {
    health == "UNHEALTHY" || lifecycle.starts_with("Terminating") || lifecycle == "Terminated"
}
