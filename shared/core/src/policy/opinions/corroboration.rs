//! An alarm that the instance's own metrics, read when it fired, do not corroborate.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict, within};
use crate::domain::{Code, FailureMode, Reason, SignalKind};
use crate::policy::top_features;

/// An alarm on one of `failures` is acted on at once when the second look corroborates it:
/// the instance's own metrics name the same failure with at least `corroborated_at`
/// confidence. One the second look does not corroborate (read as normal, as something else,
/// or unsure) waits as a pull's finding does, until a reading within
/// `opinions.confirmation.within_minutes` finds the same again (never, when confirmation is
/// off). An alarm whose instance could not be read goes on alone. `failures` are those whose
/// alarmed level load alone can reach (a CPU alarm on a busy instance); a memory or disk alarm
/// near exhaustion, or a failed status check, is acted on whatever the cause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Corroboration {
    pub enabled: bool,
    pub corroborated_at: f64,
    pub failures: Vec<FailureMode>,
}

impl Default for Corroboration {
    fn default() -> Self {
        Corroboration {
            enabled: true,
            corroborated_at: 0.6,
            failures: vec![FailureMode::CpuRunaway],
        }
    }
}

impl Opinion for Corroboration {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), String> {
        within("corroborated_at", self.corroborated_at, 0.0..=1.0)
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        if incident.threat.is_some() || !self.failures.contains(&incident.failure_mode) {
            return Verdict::Agree;
        }
        let Some(lead) = incident.evidence.first() else {
            return Verdict::Agree;
        };
        let SignalKind::AlarmStateChange { alarm, .. } = &lead.observation.signal.kind else {
            return Verdict::Agree;
        };
        let Some(reading) = incident
            .evidence
            .iter()
            .find(|e| e.observation.features.schema == crate::features::INSTANCE_V1)
        else {
            return Verdict::Agree;
        };
        if reading.score.failure_mode == incident.failure_mode
            && reading.score.confidence >= self.corroborated_at
        {
            return Verdict::Agree;
        }
        Verdict::Confirm(Some(Reason::new(
            Code::Opinion(OpinionCode::Corroboration),
            format!(
                "alarm {alarm:?} fired, but {}'s own metrics read as {} (confidence {:.2}; {}), not {} with {:.2} or more",
                incident.resource.id,
                reading.score.failure_mode,
                reading.score.confidence,
                top_features(&reading.observation.features, 3),
                incident.failure_mode,
                self.corroborated_at
            ),
        )))
    }
}
