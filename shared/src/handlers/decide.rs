//! `decide`: scored observations in, decisions with their reasons out.
//!
//! Correlate into incidents and match the policy (pure), gather the facts the safety limits
//! need (kill switch, group capacity) through ports, apply the limits (pure), then take the
//! atomic claims: the cooldown of each action, and last of all the event itself, so that a
//! re-delivered event never acts twice.

use crate::domain::{Action, Mode, Reason, Tier};
use crate::incidents;
use crate::policy::{Facts, Policy};
use crate::ports::{Claim, ClaimOnce, DescribeGroup, PortError, ReadKillSwitch};
use crate::stages::{Decisions, ScoredBatch};
use chrono::{DateTime, Utc};

/// How long an event id is remembered for de-duplication (EventBridge retries for up to 24 h).
pub const DEDUP_WINDOW_HOURS: i64 = 48;

/// Settings of the decide stage.
#[derive(Debug, Clone)]
pub struct DecideConfig {
    pub policy: Policy,
}

impl DecideConfig {
    /// The bundled policy, with the deployment's mode (`VIGIL_MODE`) taking precedence.
    pub fn new(mut policy: Policy, mode: Mode) -> Self {
        policy.mode = mode;
        DecideConfig { policy }
    }
}

/// The ports `decide` uses.
pub struct DecidePorts<'a, C, K, G> {
    pub claims: &'a C,
    pub kill_switch: &'a K,
    pub groups: &'a G,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("a port failed while deciding")]
    Port(#[from] PortError),
}

/// Decides on one scored batch. `owner` identifies this delivery (the state machine's
/// execution id, else the Lambda request id): stable across retries of one delivery, distinct
/// between deliveries.
pub async fn handle<C, K, G>(
    input: ScoredBatch,
    owner: &str,
    config: &DecideConfig,
    ports: &DecidePorts<'_, C, K, G>,
    now: DateTime<Utc>,
) -> Result<Decisions, DecideError>
where
    C: ClaimOnce,
    K: ReadKillSwitch,
    G: DescribeGroup,
{
    let policy = &config.policy;
    let mut decisions = Vec::new();
    for incident in incidents::open(input.scored) {
        let proposal = policy.propose(&incident);
        let mut facts = Facts::default();
        if let Some(action) = &proposal.action {
            facts.kill_switch = match ports.kill_switch.engaged().await {
                Ok(engaged) => engaged,
                Err(e) => {
                    tracing::error!(error = %e, "kill switch unreadable: failing closed");
                    true
                }
            };
            match action {
                Action::ReplaceInstance { group, .. } => {
                    facts.group = Some(ports.groups.capacity(group).await?);
                }
            }
        }
        decisions.push(policy.decide(incident, proposal, &facts, now));
    }

    // De-duplication: after every read that can fail (so a retry is not mistaken for a
    // duplicate) and before any claim that has an effect.
    if let Some(event_id) = &input.event_id {
        let until = now + chrono::Duration::hours(DEDUP_WINDOW_HOURS);
        let key = format!("event#{event_id}");
        if ports.claims.claim(&key, owner, now, until).await? == Claim::Held {
            tracing::info!(event_id, "duplicate event: already decided");
            for d in &mut decisions {
                d.tier = Tier::Observe;
                d.reasons.push(Reason::new(
                    "dedup",
                    format!("event {event_id} was already handled: recorded only"),
                ));
            }
            return Ok(Decisions { decisions });
        }
    }

    for decision in &mut decisions {
        let Some(action) = decision.action.as_ref().filter(|_| decision.acts()) else {
            continue;
        };
        let key = format!("cooldown#{}#{}", action.kind(), action.target());
        let until = now + policy.cooldown();
        if ports.claims.claim(&key, owner, now, until).await? == Claim::Held {
            let reason = Reason::new(
                "limit:cooldown",
                format!(
                    "{} was already acted on in the last {} minutes: not repeating it",
                    action.target(),
                    policy.limits.cooldown_minutes
                ),
            );
            *decision = decision.clone().hold(reason);
        }
    }
    Ok(Decisions { decisions })
}
