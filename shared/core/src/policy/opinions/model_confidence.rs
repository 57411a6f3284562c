//! A failure a model names on its own, below the confidence worth telling people about.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict, within};
use crate::domain::{Code, Reason};
use crate::policy::model_only;

/// A failure named by a model from telemetry (not an alarm people set) below `min_confidence`
/// is recorded, not sent to people: alert fatigue is a safety problem too. Threats are named
/// only above the threat classifier's own calibrated threshold (its card), so they pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfidence {
    pub enabled: bool,
    pub min_confidence: f64,
}

impl Default for ModelConfidence {
    fn default() -> Self {
        ModelConfidence {
            enabled: true,
            min_confidence: 0.6,
        }
    }
}

impl Opinion for ModelConfidence {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), String> {
        within("min_confidence", self.min_confidence, 0.0..=1.0)
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        if incident.threat.is_some()
            || !model_only(incident)
            || incident.confidence >= self.min_confidence
        {
            return Verdict::Agree;
        }
        Verdict::Record(Reason::new(
            Code::Opinion(OpinionCode::ModelConfidence),
            format!(
                "{} at confidence {:.2}, below the bar of {:.2} for telling people about a model's own finding: recorded only",
                incident.what(),
                incident.confidence,
                self.min_confidence
            ),
        ))
    }
}
