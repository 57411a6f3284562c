//! The feature engine: signals in, fixed-order numeric feature vectors out. Pure, no IO.
//!
//! Each feature set has a schema name with a version; a model records the schema it was built
//! for and refuses vectors of any other.

pub mod correlation;
pub mod finding;
pub mod identity;
pub mod instance;
pub mod window;

use crate::domain::{AlarmState, FeatureVector, ScalingActivityKind, Signal, SignalKind};
use identity::PrincipalProfile;

/// Features of one metric's recent window ([`WINDOW_V3_NAMES`]): the window statistics and
/// the streaming detector's score of the latest point.
pub const WINDOW_V3: &str = "window.v3";

/// The names of [`WINDOW_V3`], in order: [`window::NAMES`], then `stream_anomaly`.
pub const WINDOW_V3_NAMES: [&str; 15] = [
    window::NAMES[0],
    window::NAMES[1],
    window::NAMES[2],
    window::NAMES[3],
    window::NAMES[4],
    window::NAMES[5],
    window::NAMES[6],
    window::NAMES[7],
    window::NAMES[8],
    window::NAMES[9],
    window::NAMES[10],
    window::NAMES[11],
    window::NAMES[12],
    "stream_anomaly",
    "trend_t",
];
/// Features of a CloudTrail call or sign-in against the principal's history ([`identity::NAMES`]).
pub const IDENTITY_V2: &str = "identity.v2";
/// Features of a GuardDuty finding ([`identity::finding_names`]).
pub const FINDING_V1: &str = "finding.v1";
/// Features of one instance across its metrics ([`instance::NAMES`]): the failure-mode
/// classifier's input.
pub const INSTANCE_V1: &str = "instance.v1";
/// Features of a lifecycle event: deployments, scaling activities, state changes, health.
pub const EVENT_V1: &str = "event.v1";

/// The names of [`EVENT_V1`], in order.
pub const EVENT_V1_NAMES: [&str; 8] = [
    "deploy_started",
    "deploy_failed",
    "deploy_succeeded",
    "launch_failed",
    "terminate_failed",
    "instance_stopping",
    "health_issue",
    "health_scheduled_change",
];

/// What feature extraction may look at beyond the signal itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The principal's history before this signal (CloudTrail signals).
    pub principal: Option<&'a PrincipalProfile>,
    /// The streaming detector's score of a metric window's last point, when the detector ran
    /// over more than the window (its state kept between pulls, [`crate::metrics::state`]).
    /// Without it the detector streams the window from its start.
    pub detector_score: Option<f64>,
}

fn vector(schema: &str, names: &[&str], values: Vec<f64>) -> FeatureVector {
    FeatureVector {
        schema: schema.to_owned(),
        names: names.iter().map(|s| (*s).to_owned()).collect(),
        values,
    }
}

/// Cross-metric relation: on each instance's CPU window, sets `cpu_minus_load_z` to CPU's
/// robust z minus NetworkIn's (the per-instance load proxy). High when CPU climbs while
/// traffic stays flat: a runaway process rather than load.
pub fn relate_cpu_to_load(observations: &mut [crate::domain::Observation]) {
    use std::collections::HashMap;
    let metric_of = |o: &crate::domain::Observation| match &o.signal.kind {
        SignalKind::MetricWindow { metric, .. } => Some(metric.clone()),
        _ => None,
    };
    let mut load_z: HashMap<String, f64> = HashMap::new();
    for o in observations.iter() {
        if metric_of(o).as_deref() == Some("AWS/EC2/NetworkIn")
            && let Some(z) = o.features.get("robust_z")
        {
            load_z.insert(o.signal.resource.id.clone(), z);
        }
    }
    for o in observations.iter_mut() {
        if metric_of(o).as_deref() != Some("AWS/EC2/CPUUtilization") {
            continue;
        }
        let (Some(cpu), Some(load)) = (
            o.features.get("robust_z"),
            load_z.get(&o.signal.resource.id),
        ) else {
            continue;
        };
        if let Some(i) = o
            .features
            .names
            .iter()
            .position(|n| n == "cpu_minus_load_z")
        {
            o.features.values[i] = window::cpu_without_load(cpu, *load);
        }
    }
}

/// How a metric is read: exhaustible percentages, and a day's worth of datapoints.
pub fn window_spec(metric: &str, period_secs: u32) -> window::WindowSpec {
    let name = crate::metrics::metric_name(metric);
    window::WindowSpec {
        period_secs,
        percent: matches!(
            name,
            "mem_used_percent" | "disk_used_percent" | "MemoryUtilization" | "DiskSpaceUtilization"
        ),
        season_points: (86_400 / period_secs.max(1)) as usize,
    }
}

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
pub fn extract(signal: &Signal, context: Context<'_>) -> FeatureVector {
    let flag = |b: bool| f64::from(u8::from(b));
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
        SignalKind::MetricWindow {
            metric,
            period,
            points,
        } => {
            let mut f = window::window(points, window_spec(metric, *period)).to_vec();
            let detector =
                crate::models::anomaly::DetectorConfig::for_window(*period, points.len());
            f.push(
                context
                    .detector_score
                    .unwrap_or_else(|| crate::models::anomaly::last_score(points, detector)),
            );
            f.push(window::trend_t(points));
            vector(WINDOW_V3, &WINDOW_V3_NAMES, f)
        }
        // Built by the metric pull from the windows themselves ([`instance::instance`]).
        SignalKind::InstanceMetrics { .. } => vector(NONE, &[], Vec::new()),
        SignalKind::ApiCall(_) | SignalKind::ConsoleSignIn { .. } => {
            let empty = PrincipalProfile::default();
            let history = context.principal.unwrap_or(&empty);
            match identity::identity(signal, history) {
                Some(f) => vector(IDENTITY_V2, &identity::NAMES, f.to_vec()),
                None => vector(NONE, &[], Vec::new()),
            }
        }
        SignalKind::Finding {
            finding_type,
            severity,
            archived,
            count,
            ..
        } => FeatureVector {
            schema: FINDING_V1.to_owned(),
            names: identity::finding_names(),
            values: identity::finding(finding_type, *severity, *archived, *count),
        },
        SignalKind::Deployment { state, .. } => {
            let s = state.as_str();
            let mut v = vec![0.0; EVENT_V1_NAMES.len()];
            v[0] = flag(s == "STARTED");
            v[1] = flag(s == "FAILED" || s == "STOPPED");
            v[2] = flag(s == "SUCCEEDED");
            vector(EVENT_V1, &EVENT_V1_NAMES, v)
        }
        SignalKind::ScalingActivity { activity, .. } => {
            let mut v = vec![0.0; EVENT_V1_NAMES.len()];
            v[3] = flag(*activity == ScalingActivityKind::LaunchFailed);
            v[4] = flag(*activity == ScalingActivityKind::TerminateFailed);
            vector(EVENT_V1, &EVENT_V1_NAMES, v)
        }
        SignalKind::InstanceStateChange { state } => {
            let mut v = vec![0.0; EVENT_V1_NAMES.len()];
            v[5] = flag(matches!(
                state.as_str(),
                "stopping" | "stopped" | "shutting-down" | "terminated"
            ));
            vector(EVENT_V1, &EVENT_V1_NAMES, v)
        }
        SignalKind::HealthEvent { category, .. } => {
            let mut v = vec![0.0; EVENT_V1_NAMES.len()];
            v[6] = flag(category == "issue");
            v[7] = flag(category == "scheduledChange");
            vector(EVENT_V1, &EVENT_V1_NAMES, v)
        }
    }
}
