//! Property: for any sequence of events, no safety limit is ever exceeded. The events run
//! through the real decide and remediate handlers on an in-memory world, in enforce mode.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use vigil_core::domain::{Action, Mode, OutcomeStatus};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_core::stages::Observed;
use vigil_handlers::score;
use vigil_lab::pipeline::Pipeline;

const GROUP_SIZE: usize = 6;

fn instance(i: usize) -> InstanceId {
    InstanceId::parse(&format!("i-{:08x}", 0xc000_0000_u32 + i as u32)).unwrap()
}

/// One event: which instance alarms, how hard, and how many minutes after the previous one.
#[derive(Debug, Clone)]
struct Ev {
    instance: usize,
    cpu: f64,
    gap_minutes: i64,
    redelivered: bool,
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec(
        (0..GROUP_SIZE, 40.0f64..200.0, 0i64..45, any::<bool>()).prop_map(
            |(instance, cpu, gap_minutes, redelivered)| Ev {
                instance,
                cpu,
                gap_minutes,
                redelivered,
            },
        ),
        1..40,
    )
}

fn batch(ev: &Ev, id: &str) -> vigil_core::stages::ScoredBatch {
    let mut e: serde_json::Value =
        serde_json::from_slice(&common::fixture_bytes("alarm-cpu-high.json")).unwrap();
    e["id"] = serde_json::json!(id);
    e["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        serde_json::json!(instance(ev.instance).as_str());
    let reason = serde_json::json!({"threshold": 50.0, "recentDatapoints": [ev.cpu]}).to_string();
    e["detail"]["state"]["reasonData"] = serde_json::json!(reason);
    let env = vigil_core::events::parse_envelope(e.to_string().as_bytes()).unwrap();
    let vigil_core::events::Normalised::Signals(mut signals) =
        vigil_core::events::normalise(&env).unwrap()
    else {
        panic!()
    };
    signals[0].resource.group = Some(GroupName::parse("web").unwrap());
    let observations = signals
        .into_iter()
        .map(|signal| vigil_core::domain::Observation {
            features: vigil_core::features::extract(&signal, Default::default()),
            signal,
        })
        .collect();
    score::handle(
        Observed {
            event_id: Some(id.to_owned()),
            observations,
            ignored: None,
        },
        &models(),
    )
}

/// Runs the events through decide and remediate; returns the verified actions, checking the
/// blast radius at each one.
fn simulate(
    evs: &[Ev],
    max_per_hour: u32,
) -> (vigil_core::policy::Limits, Vec<(DateTime<Utc>, InstanceId)>) {
    let mut policy = Policy::bundled().unwrap();
    policy.limits.max_actions_per_hour = max_per_hour;
    let limits = policy.limits.clone();
    let pipeline = Pipeline::new(models(), policy, Mode::Enforce);
    let fleet = &pipeline.fleet;
    let ids: Vec<InstanceId> = (0..GROUP_SIZE).map(instance).collect();
    fleet.add_group(&GroupName::parse("web").unwrap(), 1, 10, &ids);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();

    let mut now: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
    let mut acted: Vec<(DateTime<Utc>, InstanceId)> = Vec::new();
    for (n, ev) in evs.iter().enumerate() {
        now += Duration::minutes(ev.gap_minutes);
        let id = format!("event-{n}");
        let deliveries = if ev.redelivered { 2 } else { 1 };
        for delivery in 0..deliveries {
            let in_service_before = ids
                .iter()
                .filter(|i| fleet.health(i).as_deref() == Some("HEALTHY"))
                .count();
            let owner = format!("{id}-delivery-{delivery}");
            let decisions = rt
                .block_on(pipeline.decide_scored(batch(ev, &id), &owner, now))
                .unwrap();
            for d in decisions.decisions {
                let acts = d.acts();
                let outcome = rt.block_on(pipeline.remediate(&d, d.decided_at)).unwrap();
                if acts && outcome.status == OutcomeStatus::Verified {
                    let Some(Action::ReplaceInstance { instance, .. }) = &d.action else {
                        panic!()
                    };
                    // Blast radius: never below the minimum in service, never over the share.
                    assert!(in_service_before > limits.min_in_service as usize);
                    assert!(1.0 / in_service_before as f64 <= limits.max_group_share);
                    acted.push((now, instance.clone()));
                }
            }
        }
    }
    (limits, acted)
}

#[test]
fn a_storm_on_every_instance_stops_at_the_hourly_quota() {
    let storm: Vec<Ev> = (0..20)
        .map(|i| Ev {
            instance: i % GROUP_SIZE,
            cpu: 150.0,
            gap_minutes: 0,
            redelivered: i % 3 == 0,
        })
        .collect();
    let (_, acted) = simulate(&storm, 3);
    assert_eq!(acted.len(), 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_limit_is_ever_exceeded(evs in events(), max_per_hour in 1u32..4) {
        let (limits, acted) = simulate(&evs, max_per_hour);
        // A re-delivered event never acts twice, and the same instance is never acted on
        // twice within the cooldown.
        for (i, (t, inst)) in acted.iter().enumerate() {
            for (t2, inst2) in &acted[i + 1..] {
                if inst == inst2 {
                    prop_assert!(*t2 - *t >= Duration::minutes(i64::from(limits.cooldown_minutes)), "cooldown");
                }
            }
        }
        // The hourly quota per action kind.
        let mut per_hour: BTreeMap<i64, u32> = BTreeMap::new();
        for (t, _) in &acted {
            *per_hour.entry(t.timestamp() / 3600).or_default() += 1;
        }
        prop_assert!(per_hour.values().all(|n| *n <= max_per_hour), "{per_hour:?}");
        // The loop breaker: never more than its maximum on one resource within its window.
        let window = Duration::minutes(i64::from(limits.loop_breaker.window_minutes));
        for (t, inst) in &acted {
            let within = acted.iter().filter(|(t2, i2)| i2 == inst && *t2 <= *t && *t - *t2 < window).count();
            prop_assert!(within <= limits.loop_breaker.max_attempts as usize);
        }
    }
}

/// The bundled models, as the score function loads them.
fn models() -> Models {
    Models::bundled().expect("the bundled models decode")
}
