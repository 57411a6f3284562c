//! The bundled models: they decode, they are not stale, and they score golden inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration, TimeZone, Utc};
use vigil_core::domain::{
    ApiCall, FailureMode, FeatureVector, Observation, Principal, Resource, ResourceKind, Signal,
    SignalKind, Source, ThreatClass,
};
use vigil_core::features::identity::{self, PrincipalProfile};
use vigil_core::features::instance::{self, InstanceMetrics};
use vigil_core::features::{IDENTITY_V2, INSTANCE_V1};
use vigil_core::models::classifier::{self, Artifact};
use vigil_core::models::forest::ForestConfig;
use vigil_core::models::{Models, Scorer};
use vigil_lab::generator::{cloudtrail, telemetry};
use vigil_lab::train;

fn models() -> Models {
    Models::bundled().expect("the bundled models decode")
}

fn names(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| (*s).to_owned()).collect()
}

/// The artifact was trained by today's code: same schema, features, classes, training
/// settings, and a training set that regenerates to the same fingerprint. A change to the
/// generator, the features or the settings without `vigil train` fails here.
fn check_fresh(
    a: &Artifact,
    schema: &str,
    features: &[&str],
    classes: Vec<String>,
    c: train::TrainConfig,
    data: [(Vec<Vec<f64>>, Vec<u32>); 2],
) {
    assert_eq!(a.card.schema, schema);
    assert_eq!(a.card.features, names(features));
    assert_eq!(a.card.classes, classes);
    assert_eq!(a.card.seed, c.seed);
    assert_eq!(a.card.forest, c.forest);
    assert_eq!(a.forest.features, features.len());
    let [(x, y), _] = data;
    assert_eq!(
        a.card.data_fingerprint,
        train::fingerprint(&x, &y),
        "stale artifact {}: regenerate with `{}`",
        a.card.name,
        classifier::TRAIN_COMMAND
    );
    assert_eq!(a.card.train_samples as usize, y.len());
}

#[test]
fn the_failure_mode_classifier_is_fresh() {
    let a = classifier::failure_mode().unwrap();
    check_fresh(
        a,
        INSTANCE_V1,
        &instance::NAMES,
        telemetry::CLASSES
            .iter()
            .map(|m| format!("{m:?}"))
            .collect(),
        train::FAILURE_MODE,
        train::failure_mode_data(train::FAILURE_MODE),
    );
    // The card's own held-out numbers meet the bar it is bundled at.
    assert!(
        a.card.held_out.macro_f1 >= 0.95,
        "{}",
        a.card.held_out.macro_f1
    );
}

#[test]
fn the_threat_classifier_is_fresh() {
    let a = classifier::threat().unwrap();
    check_fresh(
        a,
        IDENTITY_V2,
        &identity::NAMES,
        cloudtrail::CLASSES
            .iter()
            .map(|c| format!("{c:?}"))
            .collect(),
        train::THREAT,
        train::threat_data(train::THREAT),
    );
    assert!(a.card.alert_threshold >= 0.5 && a.card.alert_threshold < 1.0);
}

#[test]
fn artifacts_round_trip_and_garbage_is_refused() {
    let a = classifier::failure_mode().unwrap();
    let bytes = a.encode().unwrap();
    let b = Artifact::decode(&bytes).unwrap();
    assert_eq!(b.card, a.card);
    assert!(Artifact::decode(&bytes[..bytes.len() / 2]).is_err());
    assert!(Artifact::decode(b"not a model").is_err());
    let (f, t) = classifier::bundled_sizes();
    assert!(f + t < 5 * 1024 * 1024, "artifacts {f} + {t} bytes");
}

#[test]
fn training_is_reproducible() {
    let (x, y) = telemetry::dataset(3, 20, telemetry::TelemetryConfig::default());
    let config = ForestConfig {
        trees: 5,
        max_depth: 6,
        min_samples_leaf: 2,
        seed: 11,
    };
    let a = postcard::to_stdvec(&vigil_lab::train::fit_forest(&x, &y, config).unwrap()).unwrap();
    let b = postcard::to_stdvec(&vigil_lab::train::fit_forest(&x, &y, config).unwrap()).unwrap();
    let c = postcard::to_stdvec(
        &vigil_lab::train::fit_forest(&x, &y, ForestConfig { seed: 12, ..config }).unwrap(),
    )
    .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

fn observation(schema: &str, names: &[&str], values: Vec<f64>, kind: SignalKind) -> Observation {
    Observation {
        signal: Signal {
            event_id: "golden".into(),
            source: Source::MetricPull,
            resource: Resource::new(ResourceKind::Instance, "i-0123456789abcdef0"),
            observed_at: Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap(),
            kind,
            values: Default::default(),
            rules: Vec::new(),
        },
        features: FeatureVector {
            schema: schema.into(),
            names: names.iter().map(|s| (*s).to_owned()).collect(),
            values,
        },
    }
}

/// An hour of one-minute points: `base` with a wobble of up to `wobble` (a share of it),
/// then `f(minutes since onset)` from `onset` on.
fn wobbly(
    base: f64,
    wobble: f64,
    onset: usize,
    f: impl Fn(usize) -> Option<f64>,
) -> Vec<Option<f64>> {
    (0..60)
        .map(|i| {
            if i >= onset {
                f(i - onset)
            } else {
                Some(base * (1.0 + wobble * ((i * 7 % 5) as f64 - 2.0) / 2.0))
            }
        })
        .collect()
}

/// CPU and traffic wobble by a few percent.
fn series(base: f64, onset: usize, f: impl Fn(usize) -> Option<f64>) -> Vec<Option<f64>> {
    wobbly(base, 0.04, onset, f)
}

/// Memory and disk move by a fraction of a percent.
fn smooth(base: f64, onset: usize, f: impl Fn(usize) -> Option<f64>) -> Vec<Option<f64>> {
    wobbly(base, 0.002, onset, f)
}

fn check_instance(name: &str, m: InstanceMetrics<'_>, expect: FailureMode) {
    let values = instance::instance(&m).to_vec();
    let o = observation(
        INSTANCE_V1,
        &instance::NAMES,
        values,
        SignalKind::InstanceMetrics {
            metrics: vec![],
            period: 60,
            points: 60,
        },
    );
    let s = models().score(&o);
    assert_eq!(s.failure_mode, expect, "{name}: {s:?}");
    assert!(s.confidence >= 0.5, "{name}: {s:?}");
    let total: f64 = s.probabilities.iter().map(|p| p.probability).sum();
    assert!(
        (total - 1.0).abs() < 1e-9,
        "{name}: probabilities sum to {total}"
    );
    if expect == FailureMode::Normal {
        assert!(s.anomaly < 0.5, "{name}: {s:?}");
    } else {
        assert!(s.anomaly >= 0.5 && !s.drivers.is_empty(), "{name}: {s:?}");
    }
}

#[test]
fn golden_instances_are_named() {
    let cpu = series(25.0, 60, |_| None);
    let net = series(4e6, 60, |_| None);
    let mem = smooth(40.0, 60, |_| None);
    let disk = smooth(50.0, 60, |_| None);
    let ok = vec![Some(0.0); 60];
    let healthy = InstanceMetrics {
        period_secs: 60,
        cpu: &cpu,
        net_in: &net,
        net_out: &net,
        status_failed: &ok,
        mem: &mem,
        disk: &disk,
        minutes_since_deploy: None,
    };
    check_instance("healthy", healthy.clone(), FailureMode::Normal);

    let runaway = series(25.0, 40, |m| Some(96.0 + (m % 3) as f64 * 0.8));
    check_instance(
        "cpu pinned with steady traffic",
        InstanceMetrics {
            cpu: &runaway,
            ..healthy.clone()
        },
        FailureMode::CpuRunaway,
    );

    let filling = smooth(50.0, 20, |m| Some(50.0 + 0.4 * m as f64));
    check_instance(
        "disk filling at 24%/h",
        InstanceMetrics {
            disk: &filling,
            ..healthy.clone()
        },
        FailureMode::DiskFilling,
    );

    let failed = series(0.0, 50, |_| Some(1.0));
    let silent = series(25.0, 50, |_| None);
    check_instance(
        "status checks failing, datapoints stopped",
        InstanceMetrics {
            cpu: &silent,
            net_in: &silent,
            net_out: &silent,
            status_failed: &failed,
            ..healthy.clone()
        },
        FailureMode::InstanceFailure,
    );

    let cut = series(4e6, 40, |_| Some(2e3));
    let idle = series(25.0, 40, |_| Some(3.0));
    check_instance(
        "traffic gone both ways, CPU idle",
        InstanceMetrics {
            cpu: &idle,
            net_in: &cut,
            net_out: &cut,
            ..healthy.clone()
        },
        FailureMode::NetworkPartition,
    );

    let surge_net = series(4e6, 40, |_| Some(1.6e7));
    let surge_cpu = series(25.0, 40, |_| Some(85.0));
    check_instance(
        "traffic x4 and CPU with it",
        InstanceMetrics {
            cpu: &surge_cpu,
            net_in: &surge_net,
            net_out: &surge_net,
            ..healthy.clone()
        },
        FailureMode::TrafficSurge,
    );
}

#[test]
fn a_filling_disk_reports_its_time_to_exhaustion() {
    let cpu = series(25.0, 60, |_| None);
    let net = series(4e6, 60, |_| None);
    let disk = smooth(50.0, 10, |m| Some(50.0 + 0.5 * m as f64));
    let values = instance::instance(&InstanceMetrics {
        period_secs: 60,
        cpu: &cpu,
        net_in: &net,
        net_out: &net,
        status_failed: &[],
        mem: &smooth(40.0, 60, |_| None),
        disk: &disk,
        minutes_since_deploy: None,
    });
    let o = observation(
        INSTANCE_V1,
        &instance::NAMES,
        values.to_vec(),
        SignalKind::InstanceMetrics {
            metrics: vec![],
            period: 60,
            points: 60,
        },
    );
    let s = models().score(&o);
    assert_eq!(s.failure_mode, FailureMode::DiskFilling, "{s:?}");
    // 30% an hour from about 75%: under an hour left.
    let h = s.hours_to_exhaustion.unwrap();
    assert!(h > 0.3 && h < 2.0, "{h}");
}

fn principal() -> Principal {
    Principal {
        kind: "IAMUser".into(),
        id: "arn:aws:iam::111122223333:user/alice".into(),
        name: Some("alice".into()),
        access_key_id: None,
        mfa_authenticated: Some(true),
    }
}

fn api(at: chrono::DateTime<Utc>, service: &str, name: &str, ip: &str, agent: &str) -> Signal {
    Signal {
        event_id: format!("{name}-{}", at.timestamp()),
        source: Source::CloudTrail,
        resource: Resource::new(ResourceKind::Principal, principal().id),
        observed_at: at,
        kind: SignalKind::ApiCall(ApiCall {
            event_source: format!("{service}.amazonaws.com"),
            event_name: name.into(),
            principal: principal(),
            source_ip: ip.into(),
            user_agent: agent.into(),
            region: "eu-west-1".into(),
            error_code: None,
            read_only: Some(name.starts_with("Describe")),
            request: vec![],
        }),
        values: Default::default(),
        rules: Vec::new(),
    }
}

#[test]
fn golden_cloudtrail_calls_are_judged() {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
    let agent = "aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64";
    let mut profile = PrincipalProfile::default();
    // Two weeks of alice's routine from the office.
    for i in 0..200 {
        let at = t0 + Duration::hours(i % 8) + Duration::days(i / 14);
        let s = api(at, "ec2", "DescribeInstances", "198.51.100.7", agent);
        profile.observe(&s);
    }
    let score = |s: &Signal, profile: &PrincipalProfile| {
        let f = identity::identity(s, profile).unwrap();
        models().score(&observation(
            IDENTITY_V2,
            &identity::NAMES,
            f.to_vec(),
            s.kind.clone(),
        ))
    };
    let at = t0 + Duration::days(15) + Duration::hours(2);
    let routine = api(at, "ec2", "DescribeInstances", "198.51.100.9", agent);
    let s = score(&routine, &profile);
    assert_eq!(s.threat, None, "{s:?}");
    assert!(s.anomaly < 0.5, "{s:?}");

    let evasion = api(
        at,
        "cloudtrail",
        "StopLogging",
        "203.0.113.200",
        "python-requests/2.31",
    );
    let s = score(&evasion, &profile);
    assert_eq!(s.threat, Some(ThreatClass::DefenceEvasion), "{s:?}");
    assert!(
        s.drivers
            .iter()
            .any(|d| d.feature == "tactic_defence_evasion"),
        "{s:?}"
    );
}
