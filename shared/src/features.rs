//! The feature engine: signals in, fixed-order numeric feature vectors out. Pure, no IO.
//!
//! Each feature set has a schema name with a version; a model records the schema it was built
//! for and refuses vectors of any other.

use crate::domain::{AlarmState, FeatureVector, Signal, SignalKind};

/// Features of a single CloudWatch alarm state change.
pub const ALARM_V1: &str = "alarm.v1";

/// The names of [`ALARM_V1`], in order.
pub const ALARM_V1_NAMES: [&str; 5] = [
    "in_alarm",
    "from_ok",
    "breach_ratio",
    "latest",
    "datapoints",
];

/// No features (a signal kind no feature set covers yet).
pub const NONE: &str = "none";

/// Computes the features of one signal.
pub fn extract(signal: &Signal) -> FeatureVector {
    match &signal.kind {
        SignalKind::AlarmStateChange {
            state, previous, ..
        } => {
            let v = |k: &str| signal.values.get(k).copied();
            // How far past its threshold the worst recent datapoint went (1.0 = at the
            // threshold). 0 when the event carries no threshold or datapoints.
            let breach_ratio = match (v("max"), v("threshold")) {
                (Some(max), Some(t)) if t.abs() > f64::EPSILON => (max / t).abs(),
                _ => 0.0,
            };
            let values = vec![
                f64::from(u8::from(*state == AlarmState::Alarm)),
                f64::from(u8::from(*previous == Some(AlarmState::Ok))),
                breach_ratio,
                v("latest").unwrap_or(0.0),
                v("datapoints").unwrap_or(0.0),
            ];
            FeatureVector {
                schema: ALARM_V1.to_owned(),
                names: ALARM_V1_NAMES.iter().map(|s| (*s).to_owned()).collect(),
                values,
            }
        }
        _ => FeatureVector {
            schema: NONE.to_owned(),
            names: Vec::new(),
            values: Vec::new(),
        },
    }
}
