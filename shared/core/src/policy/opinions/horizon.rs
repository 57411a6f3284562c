//! A leak or a fill projected to run out later than people need to hear of it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict, within};
use crate::domain::{Code, FailureMode, Reason};
use crate::policy::led_by_telemetry;

/// A memory leak named from telemetry whose projected exhaustion is further away than
/// `memory_hours` is recorded, not told or acted on: people are paged on time-to-full, not on
/// a trend, and the next pulls keep projecting it. `disk_hours` is the same for a filling
/// disk: longer, as freeing or growing a volume takes longer than restarting a leaking
/// service. 0 sets no horizon for that resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Horizon {
    pub enabled: bool,
    pub memory_hours: f64,
    pub disk_hours: f64,
}

impl Default for Horizon {
    fn default() -> Self {
        Horizon {
            enabled: true,
            memory_hours: 24.0,
            disk_hours: 72.0,
        }
    }
}

impl Opinion for Horizon {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), String> {
        within("memory_hours", self.memory_hours, 0.0..=f64::MAX)?;
        within("disk_hours", self.disk_hours, 0.0..=f64::MAX)
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        let horizon = match incident.failure_mode {
            FailureMode::MemoryLeak => self.memory_hours,
            FailureMode::DiskFilling => self.disk_hours,
            _ => 0.0,
        };
        if horizon <= 0.0 || incident.threat.is_some() || !led_by_telemetry(incident) {
            return Verdict::Agree;
        }
        match incident.hours_to_exhaustion() {
            Some(hours) if hours > horizon => Verdict::Record(Reason::new(
                Code::Opinion(OpinionCode::Horizon),
                format!(
                    "{} projected to run out in {hours:.0} h, beyond the {horizon:.0} h horizon for telling people: recorded, and watched by the next pulls",
                    incident.what()
                ),
            )),
            _ => Verdict::Agree,
        }
    }
}
