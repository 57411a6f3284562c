//! A leak or a fill named from the last hour, without a certain trend over six hours.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict, within};
use crate::domain::{Code, FailureMode, Reason, SignalKind};
use crate::policy::led_by_telemetry;

/// A memory leak or a filling disk named from the last hour of telemetry is told or acted on
/// only when the metric's six-hour window holds a trend at least `min_t` standard errors from
/// flat (`trend_t`, the certainty the time-to-full projection asks for): noise on a full disk
/// or busy memory can look like a fill within one hour. Without a six-hour window (a new
/// instance), the hour's reading goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CertainTrend {
    pub enabled: bool,
    pub min_t: f64,
}

impl Default for CertainTrend {
    fn default() -> Self {
        CertainTrend {
            enabled: true,
            min_t: crate::models::PROJECTION_MIN_T,
        }
    }
}

impl Opinion for CertainTrend {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), String> {
        within("min_t", self.min_t, 0.0..=f64::MAX)
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        let min_t = self.min_t;
        let metric = match incident.failure_mode {
            FailureMode::MemoryLeak => "mem_used_percent",
            FailureMode::DiskFilling => "disk_used_percent",
            _ => return Verdict::Agree,
        };
        if incident.threat.is_some() || !led_by_telemetry(incident) {
            return Verdict::Agree;
        }
        let Some(t) = incident
            .evidence
            .iter()
            .filter(|e| {
                matches!(&e.observation.signal.kind,
                    SignalKind::MetricWindow { metric: m, .. } if crate::metrics::metric_name(m) == metric)
            })
            .filter_map(|e| e.observation.features.get("trend_t"))
            .max_by(f64::total_cmp)
        else {
            return Verdict::Agree;
        };
        if t >= min_t {
            return Verdict::Agree;
        }
        Verdict::Record(Reason::new(
            Code::Opinion(OpinionCode::CertainTrend),
            format!(
                "{} named from the last hour, but {metric}'s six-hour trend is {t:.1} standard errors from flat, below {min_t:.1}: recorded, and watched by the next pulls",
                incident.what()
            ),
        ))
    }
}
