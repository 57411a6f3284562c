//! A CPU runaway on an instance whose CPU has not moved from its own earlier hours.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict, within};
use crate::domain::{Code, FailureMode, Reason};

/// A runaway is a change: a process takes the CPU that the instance's traffic does not explain.
/// An instance that is busy by nature sits at 80-100% and climbs with its day, which the
/// classifier can read as a runaway from the level and the hour's slope alone, and which
/// trips a CPU alarm set below its usual peak. A CPU runaway, read from the pull or named by
/// an alarm, is told or acted on only when the instance's own reading shows its recent CPU at
/// least `min_shift_z` robust spreads above its earlier window (`cpu_shift_z`); otherwise it
/// is recorded as the instance's usual load, with the level the alarm's threshold is under.
/// Without the instance's own reading (a new instance, or one that cannot be read), or when
/// that reading does not see what an alarm saw (its recent CPU under the alarm's threshold),
/// the finding goes on. A runaway that began before the window (six hours) is no change any
/// more: it is recorded and watched, as the instance's usual load would be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SteadyCpu {
    pub enabled: bool,
    pub min_shift_z: f64,
}

impl Default for SteadyCpu {
    fn default() -> Self {
        SteadyCpu {
            enabled: true,
            // The usual outlier bar for a robust z-score.
            min_shift_z: 3.0,
        }
    }
}

impl Opinion for SteadyCpu {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), String> {
        within("min_shift_z", self.min_shift_z, 0.0..=f64::MAX)
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        if incident.failure_mode != FailureMode::CpuRunaway || incident.threat.is_some() {
            return Verdict::Agree;
        }
        // The evidence of one schema, and the largest value of a feature over it.
        let of = |schema: &'static str| {
            incident
                .evidence
                .iter()
                .filter(move |e| e.observation.features.schema == schema)
        };
        let most = |schema: &'static str, feature: &str| {
            of(schema)
                .filter_map(|e| e.observation.features.get(feature))
                .max_by(f64::total_cmp)
        };
        let Some(shift) = most(crate::features::INSTANCE_V1, "cpu_shift_z") else {
            return Verdict::Agree;
        };
        // An alarm's datapoints and the instance's own reading are the same metric. When the
        // reading does not see what the alarm saw (its recent CPU under the alarm's threshold,
        // or under its latest datapoint when the event carries no threshold), the two
        // disagree, and this opinion has nothing to say (corroboration weighs the alarm).
        let level = most(crate::features::INSTANCE_V1, "cpu_level");
        let breached = of(crate::features::ALARM_V1)
            .filter_map(|e| {
                let signal = &e.observation.signal;
                let value = |name: &str| signal.values.get(name).copied();
                value("threshold").or_else(|| value("latest"))
            })
            .max_by(f64::total_cmp);
        if let Some(breached) = breached
            && level.is_none_or(|l| l < breached)
        {
            return Verdict::Agree;
        }
        let min = self.min_shift_z;
        if shift >= min {
            return Verdict::Agree;
        }
        Verdict::Record(Reason::new(
            Code::Opinion(OpinionCode::SteadyCpu),
            format!(
                "{}, but the instance's own CPU stands {shift:.1} robust spreads from its earlier window, below {min:.1}: its usual load, not a change (an alarm that fires on it is set below the instance's usual level); recorded, and watched by the next pulls",
                incident.what()
            ),
        ))
    }
}
