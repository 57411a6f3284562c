//! The bundled models: scoring one observation with each, the streaming detector over a
//! pulled window, and decoding every artifact.
//!
//! Run: `cargo bench -p vigil-lab --bench models` (results in docs/performance.md).

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use vigil_core::domain::{
    ApiCall, FeatureVector, Observation, Principal, Resource, ResourceKind, Signal, SignalKind,
    Source,
};
use vigil_core::features::identity::{self, PrincipalProfile};
use vigil_core::features::{self, IDENTITY_V2, INSTANCE_V1};
use vigil_core::models::anomaly::{DetectorConfig, last_score};
use vigil_core::models::classifier::Artifact;
use vigil_core::models::{Models, Scorer};
use vigil_lab::generator::{self, telemetry};

fn observation(schema: &str, names: &[&str], values: Vec<f64>, kind: SignalKind) -> Observation {
    Observation {
        signal: Signal {
            event_id: "bench".into(),
            source: Source::MetricPull,
            resource: Resource::new(ResourceKind::Instance, "i-0123456789abcdef0"),
            observed_at: Utc
                .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
                .single()
                .unwrap_or_default(),
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

fn scoring(c: &mut Criterion) {
    let Ok(models) = Models::bundled() else {
        eprintln!("the bundled models do not decode");
        return;
    };
    let mut rng = generator::rng(1);
    let sample = telemetry::sample(
        &mut rng,
        vigil_core::domain::FailureMode::CpuRunaway,
        telemetry::TelemetryConfig::default(),
    );
    let instance = observation(
        INSTANCE_V1,
        &features::instance::NAMES,
        sample
            .features(telemetry::TelemetryConfig::default())
            .to_vec(),
        SignalKind::InstanceMetrics {
            metrics: vec![],
            period: 60,
            points: 60,
        },
    );
    c.bench_function("score one instance (failure-mode forest)", |b| {
        b.iter(|| models.score(black_box(&instance)))
    });

    let principal = Principal {
        kind: "IAMUser".into(),
        id: "arn:aws:iam::111122223333:user/alice".into(),
        name: Some("alice".into()),
        access_key_id: None,
        mfa_authenticated: Some(true),
    };
    let call = Signal {
        event_id: "e".into(),
        source: Source::CloudTrail,
        resource: Resource::new(ResourceKind::Principal, principal.id.clone()),
        observed_at: Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .unwrap_or_default(),
        kind: SignalKind::ApiCall(ApiCall {
            event_source: "cloudtrail.amazonaws.com".into(),
            event_name: "StopLogging".into(),
            principal,
            source_ip: "203.0.113.9".into(),
            user_agent: "python-requests/2.31".into(),
            region: "eu-west-1".into(),
            error_code: None,
            read_only: Some(false),
            request: vec![],
        }),
        values: Default::default(),
        rules: Vec::new(),
    };
    let f = identity::identity(&call, &PrincipalProfile::default()).unwrap_or([0.0; 22]);
    let identity = observation(IDENTITY_V2, &identity::NAMES, f.to_vec(), call.kind.clone());
    c.bench_function("score one CloudTrail call (threat forest)", |b| {
        b.iter(|| models.score(black_box(&identity)))
    });

    // The streaming detector over the pull's window: six hours of one-minute points.
    let points: Vec<Option<f64>> = (0..360)
        .map(|i| Some(30.0 + (i % 7) as f64 + if i > 350 { 40.0 } else { 0.0 }))
        .collect();
    let config = DetectorConfig::for_window(60, points.len());
    c.bench_function("streaming detector over a 360-point window", |b| {
        b.iter(|| last_score(black_box(&points), config))
    });
    // A warm detector: a week of five-minute points, every buffer full and the shape memory
    // learned.
    let week: Vec<f64> = (0..2016)
        .map(|i| 30.0 + (i % 7) as f64 + (i * 7919 % 101) as f64 / 50.0)
        .collect();
    let defaults = DetectorConfig::default();
    let mut d = vigil_core::models::anomaly::StreamingDetector::new(defaults);
    for p in &week {
        d.update(*p);
    }
    c.bench_function("streaming detector, one more point (warm state)", |b| {
        b.iter_batched(
            || d.clone(),
            |mut d| d.update(black_box(55.0)),
            criterion::BatchSize::SmallInput,
        )
    });
    // The point that ends the shape memory's learning: once in a series' life.
    let mut learning = vigil_core::models::anomaly::StreamingDetector::new(defaults);
    for p in &week[..defaults.shape_learning - 1] {
        learning.update(*p);
    }
    c.bench_function(
        "streaming detector, the point that ends the shape learning (once per series)",
        |b| {
            b.iter_batched(
                || learning.clone(),
                |mut d| d.update(black_box(week[defaults.shape_learning - 1])),
                criterion::BatchSize::SmallInput,
            )
        },
    );
}

/// One metric of the pull, cold (the whole window streamed by a fresh detector) against warm
/// (its kept state decoded, five new points streamed, the state encoded again).
fn pull_state(c: &mut Criterion) {
    use vigil_core::metrics::state::{InstanceState, MetricState};
    let (period, window) = (60_u32, 360_usize);
    let config = DetectorConfig::for_window(period, window);
    let points: Vec<Option<f64>> = (0..window + 5)
        .map(|i| Some(30.0 + (i * 7919 % 101) as f64 / 10.0))
        .collect();
    // The warm state's past: the shape memory's learning and more, pulled five points at a
    // time, so every buffer is as a long-watched metric's.
    let history: Vec<Option<f64>> = (0..config.shape_learning + 200)
        .map(|i| Some(30.0 + (i * 7919 % 101) as f64 / 10.0))
        .collect();
    let end = 1_800_000_000_i64;
    c.bench_function("pull, one metric, cold: 360 points streamed", |b| {
        b.iter(|| {
            let mut s = MetricState::cold(end, period, window, config);
            s.advance(black_box(&points[..window]), window).score
        })
    });
    let past = end - 5 * i64::from(period) * (history.len() / 5) as i64;
    let mut kept = MetricState::cold(past, period, window, config);
    let mut at = past;
    for pulled in history.chunks(5) {
        at += 5 * i64::from(period);
        let Ok(resumed) = MetricState::resume(kept.clone(), at, period, window, config) else {
            break;
        };
        kept = resumed;
        kept.advance(pulled, window);
    }
    let mut state = InstanceState::default();
    state.metrics.insert("AWS/EC2/CPUUtilization".into(), kept);
    let bytes = state.encode();
    let later = end + 5 * i64::from(period);
    c.bench_function(
        "pull, one metric, warm: state decoded, 5 points streamed, encoded",
        |b| {
            b.iter(|| {
                let mut s = InstanceState::decode(black_box(&bytes)).unwrap_or_default();
                let Some(m) = s.metrics.remove("AWS/EC2/CPUUtilization") else {
                    return 0;
                };
                let Ok(mut m) = MetricState::resume(m, later, period, window, config) else {
                    return 0;
                };
                m.advance(&points[window..], window);
                s.metrics.insert("AWS/EC2/CPUUtilization".into(), m);
                s.encode().len()
            })
        },
    );
}

fn decoding(c: &mut Criterion) {
    let failure = include_bytes!("../../models/failure_mode.postcard");
    let threat = include_bytes!("../../models/threat.postcard");
    c.bench_function("decode every bundled artifact", |b| {
        b.iter(|| {
            let a = Artifact::decode(black_box(failure)).is_ok();
            let t = Artifact::decode(black_box(threat)).is_ok();
            a && t
        })
    });
}

criterion_group!(benches, scoring, pull_state, decoding);
criterion_main!(benches);
