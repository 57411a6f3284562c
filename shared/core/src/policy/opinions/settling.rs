//! A finding read from telemetry soon after Vigil acted on the instance or its group.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict};
use crate::domain::{Code, OutcomeStatus, Reason};
use crate::policy::led_by_telemetry;

/// After Vigil acts on an instance or its group, the instance's metrics jump (a restart drops
/// the CPU, a scale-out the traffic) and the classifier, which compares the last minutes with
/// the hour before, can read the jump as a new failure. For `minutes` after an action, a
/// finding read from telemetry that the action does not address (by the policy's own rules)
/// is recorded as the action settling; one it addresses (the action did not work) goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Settling {
    pub enabled: bool,
    pub minutes: u32,
}

impl Default for Settling {
    fn default() -> Self {
        Settling {
            enabled: true,
            minutes: 60,
        }
    }
}

impl Opinion for Settling {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let (incident, now) = (ask.incident, ask.now);
        if incident.threat.is_some() || !led_by_telemetry(incident) {
            return Verdict::Agree;
        }
        let since = now - chrono::Duration::minutes(i64::from(self.minutes));
        let Some(last) = ask
            .readings
            .attempts
            .iter()
            .chain(&ask.readings.group_attempts)
            .filter(|a| a.at >= since && a.at <= now)
            .filter(|a| {
                matches!(
                    a.status,
                    OutcomeStatus::Verified | OutcomeStatus::Unverified
                )
            })
            .max_by_key(|a| a.at)
        else {
            return Verdict::Agree;
        };
        let addresses = ask.rules.iter().any(|r| {
            r.failure_modes.contains(&incident.failure_mode)
                && r.ladder.iter().any(|k| k.name() == last.action)
        });
        if addresses {
            return Verdict::Agree;
        }
        Verdict::Record(Reason::new(
            Code::Opinion(OpinionCode::Settling),
            format!(
                "{} after {} {} minute(s) ago (decision {}), which no rule uses against {}: read as the metrics settling after the action; recorded, and watched by the next pulls",
                incident.what(),
                last.action,
                (now - last.at).num_minutes(),
                last.decision_id,
                incident.failure_mode
            ),
        ))
    }
}
