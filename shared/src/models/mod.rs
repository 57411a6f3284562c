//! Models that score observations. Pure: a model is loaded once and then only computes.
//!
//! Until the trained models land, scoring uses [`AlarmBaseline`], a transparent rule baseline
//! over [`crate::features::ALARM_V1`]: it names the failure mode from the alarm's metric and
//! grows its confidence with how far the metric went past the threshold.

pub mod anomaly;
pub mod classifier;
pub mod forest;

use crate::domain::{FailureMode, Observation, Score, SignalKind};
use crate::features::ALARM_V1;

/// Scores one observation.
pub trait Scorer {
    fn score(&self, observation: &Observation) -> Score;
}

/// Rule baseline for alarm state changes.
#[derive(Debug, Default, Clone, Copy)]
pub struct AlarmBaseline;

impl AlarmBaseline {
    pub const NAME: &'static str = "alarm-baseline/1";
}

/// The failure mode an alarm's metric points at, from its `Namespace/MetricName`.
pub fn failure_mode_of_metric(metric: &str) -> FailureMode {
    let name = metric.rsplit('/').next().unwrap_or(metric);
    match name {
        "CPUUtilization" | "cpu_usage_active" | "cpu_usage_user" => FailureMode::CpuRunaway,
        "StatusCheckFailed" | "StatusCheckFailed_Instance" | "StatusCheckFailed_System" => {
            FailureMode::InstanceFailure
        }
        "mem_used_percent" | "MemoryUtilization" => FailureMode::MemoryLeak,
        "disk_used_percent" | "DiskSpaceUtilization" => FailureMode::DiskFilling,
        "RequestCount" | "NetworkIn" => FailureMode::TrafficSurge,
        _ => FailureMode::Unknown,
    }
}

impl Scorer for AlarmBaseline {
    fn score(&self, observation: &Observation) -> Score {
        let f = &observation.features;
        let not_scorable = Score {
            model: Self::NAME.to_owned(),
            anomaly: 0.0,
            failure_mode: FailureMode::Normal,
            confidence: 0.0,
        };
        if f.schema != ALARM_V1 {
            return not_scorable;
        }
        let SignalKind::AlarmStateChange { metric, .. } = &observation.signal.kind else {
            return not_scorable;
        };
        let in_alarm = f.get("in_alarm").unwrap_or(0.0) > 0.5;
        if !in_alarm {
            return Score {
                failure_mode: FailureMode::Normal,
                confidence: 0.9,
                ..not_scorable
            };
        }
        let mode = metric
            .as_deref()
            .map(failure_mode_of_metric)
            .unwrap_or(FailureMode::Unknown);
        // Past the threshold by 0% -> 0.6, by 50% or more -> 0.95. Unknown breach -> 0.6.
        let breach = f.get("breach_ratio").unwrap_or(0.0);
        let excess = if breach > 1.0 { breach - 1.0 } else { 0.0 };
        let severity = (excess / 0.5).clamp(0.0, 1.0);
        let anomaly = match mode {
            // A failed status check is an outage whatever its datapoints say.
            FailureMode::InstanceFailure => 0.9,
            _ => 0.6 + 0.35 * severity,
        };
        let confidence = match mode {
            FailureMode::Unknown => 0.3,
            FailureMode::InstanceFailure => 0.9,
            _ => 0.6 + 0.35 * severity,
        };
        Score {
            model: Self::NAME.to_owned(),
            anomaly,
            failure_mode: mode,
            confidence,
        }
    }
}
