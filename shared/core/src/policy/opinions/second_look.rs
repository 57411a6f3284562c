//! An alarm barely past its threshold on an instance whose own metrics read as normal.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict, within};
use crate::domain::{Code, FailureMode, Reason, SignalKind};
use crate::policy::top_features;

/// An alarm gets a second look: the instance's own metrics, read by the failure-mode
/// classifier when the alarm fires. An alarm at most `max_breach` past its threshold (0.1:
/// 10%) whose instance reads as normal with at least `normal_at` confidence is recorded, not
/// paged. Failed status checks are never overruled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SecondLook {
    pub enabled: bool,
    pub normal_at: f64,
    pub max_breach: f64,
}

impl Default for SecondLook {
    fn default() -> Self {
        SecondLook {
            enabled: true,
            normal_at: 0.8,
            max_breach: 0.1,
        }
    }
}

impl Opinion for SecondLook {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), String> {
        within("normal_at", self.normal_at, 0.0..=1.0)?;
        within("max_breach", self.max_breach, 0.0..=f64::MAX)
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        if incident.threat.is_some()
            || matches!(
                incident.failure_mode,
                FailureMode::Normal | FailureMode::Unknown | FailureMode::InstanceFailure
            )
        {
            return Verdict::Agree;
        }
        let Some(lead) = incident.evidence.first() else {
            return Verdict::Agree;
        };
        let SignalKind::AlarmStateChange { alarm, .. } = &lead.observation.signal.kind else {
            return Verdict::Agree;
        };
        let Some(breach) = lead.observation.features.get("breach_ratio") else {
            return Verdict::Agree;
        };
        if !(1.0..=1.0 + self.max_breach).contains(&breach) {
            return Verdict::Agree;
        }
        let Some(reading) = incident.evidence.iter().find(|e| {
            e.observation.features.schema == crate::features::INSTANCE_V1
                && e.score.failure_mode == FailureMode::Normal
                && e.score.confidence >= self.normal_at
        }) else {
            return Verdict::Agree;
        };
        Verdict::Record(Reason::new(
            Code::Opinion(OpinionCode::SecondLook),
            format!(
                "alarm {alarm:?} is {:.0}% past its threshold and {}'s own metrics read as normal (confidence {:.2}; {}): recorded, not paged",
                (breach - 1.0) * 100.0,
                incident.resource.id,
                reading.score.confidence,
                top_features(&reading.observation.features, 3)
            ),
        ))
    }
}
