//! `ingest`: an EventBridge event in, observations (signals with their features) out.
//!
//! Parse, normalise (pure), enrich each instance with its Auto Scaling group (port), compute
//! features (pure). An unknown event is logged and counted, and yields nothing.

use crate::domain::{Observation, ResourceKind, SignalKind};
use crate::events::{self, Envelope, EventError, Normalised};
use crate::features::{self, Context};
use crate::ports::{DescribeInstance, PortError, PrincipalHistory};
use crate::stages::Observed;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event was refused")]
    Event(#[from] EventError),
    #[error("enriching the signal failed")]
    Port(#[from] PortError),
}

/// The ports `ingest` uses.
pub struct IngestPorts<'a, I, H> {
    pub instances: &'a I,
    pub history: &'a H,
}

/// Handles one EventBridge event.
pub async fn handle<I, H>(
    event: &Envelope,
    ports: &IngestPorts<'_, I, H>,
) -> Result<Observed, IngestError>
where
    I: DescribeInstance,
    H: PrincipalHistory,
{
    let size = serde_json::to_vec(&event.detail).map_or(usize::MAX, |v| v.len());
    if size > events::MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size,
            max: events::MAX_EVENT_BYTES,
        }
        .into());
    }
    let mut signals = match events::normalise(event)? {
        Normalised::Signals(signals) => signals,
        Normalised::Tick { at } => {
            tracing::info!(%at, "scheduled tick");
            return Ok(Observed {
                event_id: event.id.clone(),
                observations: Vec::new(),
                ignored: Some("scheduled tick: no metric source is configured".into()),
            });
        }
        Normalised::Ignored(why) => {
            // One log line per ignored event; `vigil_ignored_events` is the counter the
            // dashboard charts (a metric filter on this field).
            tracing::warn!(vigil_ignored_events = 1, reason = %why, "event ignored");
            return Ok(Observed {
                event_id: event.id.clone(),
                observations: Vec::new(),
                ignored: Some(why.to_string()),
            });
        }
    };
    for signal in &mut signals {
        if signal.resource.kind != ResourceKind::Instance || signal.resource.group.is_some() {
            continue;
        }
        let Ok(Some(instance)) = signal.resource.instance_id() else {
            continue;
        };
        if let Some(m) = ports.instances.membership(&instance).await? {
            signal.resource.group = Some(m.group);
        }
    }
    let mut observations = Vec::with_capacity(signals.len());
    for signal in signals {
        let features = match signal.kind {
            SignalKind::ApiCall(_) | SignalKind::ConsoleSignIn { .. } => {
                // Features against the history before this call, then the call joins it.
                let key = &signal.resource.id;
                let mut profile = ports.history.load(key).await?.unwrap_or_default();
                let features = features::extract(
                    &signal,
                    Context {
                        principal: Some(&profile),
                    },
                );
                profile.observe(&signal);
                ports
                    .history
                    .save(key, &profile, signal.observed_at)
                    .await?;
                features
            }
            _ => features::extract(&signal, Context::default()),
        };
        observations.push(Observation { signal, features });
    }
    Ok(Observed {
        event_id: event.id.clone(),
        observations,
        ignored: None,
    })
}
