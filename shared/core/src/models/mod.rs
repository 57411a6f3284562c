//! Models that score observations. Pure: a model is loaded once and then only computes.
//!
//! [`Models`] routes each observation by its feature schema:
//! - `alarm.v1` (CloudWatch alarms): [`AlarmBaseline`], a transparent rule that names the
//!   failure mode from the alarm's metric and grows its confidence with the breach;
//! - `window.v3` (one metric's pulled window): time-to-full on memory and disk when the
//!   trend is certain ([`PROJECTION`]), else the streaming detector's score ([`anomaly`]);
//! - `instance.v1` (an instance's metrics together): the failure-mode classifier;
//! - `identity.v2` (CloudTrail calls and sign-ins): the threat classifier;
//! - `finding.v1` (GuardDuty): GuardDuty's own severity and threat purpose.

pub mod anomaly;
pub mod classifier;
pub mod forest;
pub(crate) mod likelihood;
pub(crate) mod shapes;

use std::sync::OnceLock;

use crate::domain::{FailureMode, Observation, Score, SignalKind, ThreatClass};
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
    let name = crate::metrics::metric_name(metric);
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
        let not_scorable = Score::unscored(Self::NAME);
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
            anomaly,
            failure_mode: mode,
            confidence,
            ..Score::unscored(Self::NAME)
        }
    }
}

/// Drivers reported per score.
const DRIVERS: usize = 3;

/// Every bundled model, decoded once; scores any observation by its schema.
#[derive(Debug, Clone, Copy)]
pub struct Models {
    pub failure_mode: &'static classifier::FailureModeClassifier,
    pub threat: &'static classifier::ThreatClassifier,
    /// The failure-mode card's classes, in label order, as domain values.
    failure_modes: &'static [FailureMode],
    /// The threat card's classes, in label order, as domain values.
    threats: &'static [ThreatClass],
}

impl Models {
    /// The bundled models (decoded on first use, then shared).
    pub fn bundled() -> Result<Models, classifier::ModelError> {
        static FAILURE_MODES: OnceLock<Result<Vec<FailureMode>, classifier::ModelError>> =
            OnceLock::new();
        static THREATS: OnceLock<Result<Vec<ThreatClass>, classifier::ModelError>> =
            OnceLock::new();
        let failure_mode = classifier::failure_mode()?;
        let threat = classifier::threat()?;
        let failure_modes = FAILURE_MODES
            .get_or_init(|| classifier::card_classes(&failure_mode.card, &FailureMode::ALL))
            .as_ref()
            .map_err(Clone::clone)?;
        let threats = THREATS
            .get_or_init(|| classifier::card_classes(&threat.card, &ThreatClass::ALL))
            .as_ref()
            .map_err(Clone::clone)?;
        Ok(Models {
            failure_mode,
            threat,
            failure_modes,
            threats,
        })
    }

    fn instance(&self, o: &Observation) -> Score {
        let m = self.failure_mode;
        let f = &o.features;
        let Ok(p) = m.predict(&f.schema, &f.values) else {
            return Score::unscored(&m.id());
        };
        let mode = self
            .failure_modes
            .get(p.class)
            .copied()
            .unwrap_or(FailureMode::Unknown);
        let normal = p.probabilities.first().copied().unwrap_or(0.0);
        let hours_to_exhaustion = match mode {
            FailureMode::MemoryLeak => f.get("mem_tte_hours"),
            FailureMode::DiskFilling => f.get("disk_tte_hours"),
            _ => None,
        };
        Score {
            anomaly: 1.0 - normal,
            failure_mode: mode,
            confidence: p.probability,
            probabilities: probabilities(&m.card.classes, &p.probabilities),
            drivers: m.drivers(&f.values, DRIVERS),
            hours_to_exhaustion,
            ..Score::unscored(&m.id())
        }
    }

    fn identity(&self, o: &Observation) -> Score {
        let m = self.threat;
        let f = &o.features;
        let Ok(p) = m.predict(&f.schema, &f.values) else {
            return Score::unscored(&m.id());
        };
        let benign = p.probabilities.first().copied().unwrap_or(1.0);
        // The most likely threat, whatever the top class.
        let (k, pk) = p
            .probabilities
            .iter()
            .copied()
            .enumerate()
            .skip(1)
            .fold((0, 0.0), |b, (i, v)| if v > b.1 { (i, v) } else { b });
        let alert = 1.0 - benign >= m.card.alert_threshold;
        Score {
            anomaly: 1.0 - benign,
            failure_mode: FailureMode::Normal,
            confidence: if alert {
                pk / (1.0 - benign).max(1e-9)
            } else {
                benign
            },
            threat: alert.then(|| self.threats.get(k).copied()).flatten(),
            probabilities: probabilities(&m.card.classes, &p.probabilities),
            drivers: m.drivers(&f.values, DRIVERS),
            ..Score::unscored(&m.id())
        }
    }
}

fn probabilities(names: &[String], p: &[f64]) -> Vec<crate::domain::ClassProbability> {
    names
        .iter()
        .zip(p)
        .map(|(class, probability)| crate::domain::ClassProbability {
            class: class.clone(),
            probability: *probability,
        })
        .collect()
}

/// The name of the projection rule in scores.
pub const PROJECTION: &str = "projection/1";

/// A capacity trend must be this certain (slope over its standard error) before it is
/// projected: well past what noise gives a flat series (|t| > 6 happens by chance about once in
/// 10^9 windows of white noise; autocorrelated noise inflates t, hence the margin).
pub const PROJECTION_MIN_T: f64 = 6.0;

/// A projection's confidence: the trend is certain, its cause is not (a leak, a cache warming,
/// a batch job), so a restart is asked for, not done (below the auto-heal bar).
pub const PROJECTION_CONFIDENCE: f64 = 0.75;

/// Time-to-full on a capacity metric (memory, disk), as `predict_linear` alerts do: the whole
/// pulled window's least-squares trend, projected to 100%. It names the leak or the filling
/// disk when the trend is certain and the projection falls within a week; the policy's
/// horizons decide whether that is soon enough to tell people. Slow leaks and fills that an
/// hour's window cannot see are caught here.
fn projection(o: &Observation) -> Option<Score> {
    let SignalKind::MetricWindow { metric, .. } = &o.signal.kind else {
        return None;
    };
    let mode = failure_mode_of_metric(metric);
    if !matches!(mode, FailureMode::MemoryLeak | FailureMode::DiskFilling) {
        return None;
    }
    let f = &o.features;
    let (slope, hours, t) = (
        f.get("slope_per_hour")?,
        f.get("tte_hours")?,
        f.get("trend_t")?,
    );
    if !(slope > 0.0
        && t >= PROJECTION_MIN_T
        && hours < crate::features::window::NO_EXHAUSTION_HOURS)
    {
        return None;
    }
    let anomaly = match hours {
        h if h <= 6.0 => 0.9,
        h if h <= 24.0 => 0.75,
        _ => 0.6,
    };
    let drivers = ["slope_per_hour", "tte_hours", "trend_t", "level"]
        .iter()
        .filter_map(|n| {
            f.get(n).map(|v| crate::domain::Driver {
                feature: (*n).to_owned(),
                value: v,
                baseline: 0.0,
            })
        })
        .collect();
    Some(Score {
        anomaly,
        failure_mode: mode,
        confidence: PROJECTION_CONFIDENCE,
        drivers,
        hours_to_exhaustion: Some(hours),
        ..Score::unscored(PROJECTION)
    })
}

/// The reading of one metric window: the projection to exhaustion where it applies, else the
/// streaming detector's score.
fn window(o: &Observation) -> Score {
    if let Some(s) = projection(o) {
        return s;
    }
    let anomaly = o.features.get("stream_anomaly").unwrap_or(0.0);
    let alert = anomaly >= anomaly::DetectorConfig::default().alert_level;
    let drivers = ["robust_z", "slope_per_hour", "level"]
        .iter()
        .filter_map(|n| {
            o.features.get(n).map(|v| crate::domain::Driver {
                feature: (*n).to_owned(),
                value: v,
                baseline: 0.0,
            })
        })
        .collect();
    // One metric being unusual says "look here", not what is wrong: the failure is named by
    // the instance's classifier or an alarm. An unusual window alone is escalated.
    Score {
        anomaly,
        failure_mode: if alert {
            FailureMode::Unknown
        } else {
            FailureMode::Normal
        },
        confidence: if alert { anomaly } else { 1.0 - anomaly },
        drivers,
        ..Score::unscored(anomaly::NAME)
    }
}

/// GuardDuty already judged the finding: its severity (1-10) is the anomaly, its threat
/// purpose the threat. Archived and sample findings are neither.
fn finding(o: &Observation) -> Score {
    let SignalKind::Finding {
        finding_type,
        severity,
        archived,
        sample,
        ..
    } = &o.signal.kind
    else {
        return Score::unscored("guardduty");
    };
    // A sample finding (CreateSampleFindings) is no threat, however it reads; nor is an
    // archived one.
    let archived = &(*archived || *sample);
    let purpose = finding_type.split(':').next().unwrap_or("");
    let threat = match purpose {
        "Recon" | "Discovery" => Some(ThreatClass::Reconnaissance),
        "Persistence" | "Backdoor" => Some(ThreatClass::Persistence),
        "PrivilegeEscalation" => Some(ThreatClass::PrivilegeEscalation),
        "Stealth" | "DefenseEvasion" => Some(ThreatClass::DefenceEvasion),
        "Exfiltration" => Some(ThreatClass::Exfiltration),
        "UnauthorizedAccess" | "CredentialAccess" | "InitialAccess" | "Execution" | "Impact"
        | "CryptoCurrency" | "Trojan" => Some(ThreatClass::CredentialCompromise),
        _ => None,
    };
    let anomaly = if *archived {
        0.0
    } else {
        (severity / 10.0).clamp(0.0, 1.0)
    };
    Score {
        anomaly,
        failure_mode: FailureMode::Normal,
        confidence: if *archived { 0.0 } else { 0.9 },
        threat: if *archived { None } else { threat },
        ..Score::unscored("guardduty")
    }
}

impl Scorer for Models {
    fn score(&self, o: &Observation) -> Score {
        match o.features.schema.as_str() {
            crate::features::ALARM_V1 => AlarmBaseline.score(o),
            crate::features::WINDOW_V3 => window(o),
            crate::features::INSTANCE_V1 => self.instance(o),
            crate::features::IDENTITY_V2 => self.identity(o),
            crate::features::FINDING_V1 => finding(o),
            _ => Score::unscored("none"),
        }
    }
}
