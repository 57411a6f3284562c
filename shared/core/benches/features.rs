//! Feature extraction cost: one 60-point metric window, one CloudTrail event.
//!
//! Run: `cargo bench -p vigil-core --bench features` (results in docs/performance.md).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vigil_core::events;
use vigil_core::features::{self, Context, identity::PrincipalProfile, window};

fn metric_window(c: &mut Criterion) {
    // A realistic CPU series: daily shape, noise from a fixed LCG, a few gaps, a spike at the end.
    let mut seed = 42u64;
    let mut noise = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / f64::from(u32::MAX) - 0.5
    };
    let mut points: Vec<Option<f64>> = (0..60)
        .map(|i| {
            Some(40.0 + 10.0 * (f64::from(i) / 60.0 * std::f64::consts::TAU).sin() + 4.0 * noise())
        })
        .collect();
    points[17] = None;
    points[59] = Some(97.0);
    let spec = features::window_spec("CWAgent/mem_used_percent", 60);
    c.bench_function("window features, 60 points", |b| {
        b.iter(|| window::window(black_box(&points), black_box(spec)))
    });
}

fn cloudtrail_event(c: &mut Criterion) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/stratus");
    let text = std::fs::read(format!("{dir}/aws.persistence.iam-create-admin-user.json"))
        .unwrap_or_default();
    let records: Vec<serde_json::Value> = serde_json::from_slice(&text).unwrap_or_default();
    let Some(record) = records.first() else {
        eprintln!("no Stratus record at {dir}: skipping the CloudTrail benchmarks");
        return;
    };
    let Ok(signal) = events::normalise_cloudtrail_record(record) else {
        return;
    };
    // A principal with a full history, so lookups scan full sets.
    let mut profile = PrincipalProfile::default();
    for r in records.iter().cycle().take(200) {
        if let Ok(s) = events::normalise_cloudtrail_record(r) {
            profile.observe(&s);
        }
    }
    c.bench_function("identity features, one CloudTrail event", |b| {
        b.iter(|| {
            features::extract(
                black_box(&signal),
                Context {
                    principal: Some(&profile),
                    ..Context::default()
                },
            )
        })
    });
    c.bench_function("normalise one raw CloudTrail record", |b| {
        b.iter(|| events::normalise_cloudtrail_record(black_box(record)))
    });
    c.bench_function("profile update, one CloudTrail event", |b| {
        b.iter_batched(
            || profile.clone(),
            |mut p| p.observe(black_box(&signal)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, metric_window, cloudtrail_event);
criterion_main!(benches);
