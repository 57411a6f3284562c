//! One decision without IO: correlate, propose (rules and ladder), decide (every limit).
//!
//! Run: `cargo bench -p vigil-core --bench decision` (results in docs/performance.md).

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use vigil_core::domain::{GroupCapacity, Observation, Scored};
use vigil_core::events::{self, Normalised};
use vigil_core::features;
use vigil_core::incidents;
use vigil_core::models::{AlarmBaseline, Scorer};
use vigil_core::names::GroupName;
use vigil_core::policy::{Facts, Policy, Readings};

fn one_decision(c: &mut Criterion) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/events/alarm-cpu-high.json"
    );
    let Ok(bytes) = std::fs::read(path) else {
        eprintln!("no fixture at {path}");
        return;
    };
    let Ok(Normalised::Signals(mut signals)) =
        events::parse_envelope(&bytes).and_then(|e| events::normalise(&e))
    else {
        return;
    };
    let Ok(group) = GroupName::parse("web") else {
        return;
    };
    signals[0].resource.group = Some(group);
    let signal = signals.remove(0);
    let observation = Observation {
        features: features::extract(&signal, Default::default()),
        signal,
    };
    let scored = Scored {
        score: AlarmBaseline.score(&observation),
        observation,
    };
    let Ok(mut policy) = Policy::bundled() else {
        return;
    };
    policy.mode = vigil_core::domain::Mode::Enforce;
    let facts = Facts {
        kill_switch: false,
        group: Some(GroupCapacity {
            min_size: 1,
            max_size: 6,
            desired: 3,
            in_service: 3,
        }),
        attempts: Vec::new(),
    };
    let now = Utc
        .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
        .single()
        .unwrap_or_default();
    c.bench_function(
        "one decision (correlate, propose, all limits), no IO",
        |b| {
            b.iter(|| {
                let incident = incidents::open(vec![black_box(scored.clone())]).remove(0);
                let draft = policy.draft(incident, &Readings::default(), now);
                let pending = policy.limit(draft, black_box(&facts), now);
                policy.settle(pending, Some(1))
            })
        },
    );
}

criterion_group!(benches, one_decision);
criterion_main!(benches);
