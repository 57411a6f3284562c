//! Property tests: the event parser and the feature functions on arbitrary input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use proptest::prelude::*;
use serde_json::{Value, json};
use vigil_shared::events;
use vigil_shared::features::window::{self, WindowSpec};

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("ALARM"),
            Just("OK"),
            Just("i-1234abcd"),
            Just("i-0123456789abcdef0"),
            Just("InstanceId"),
            Just("2026-11-22T10:00:00Z"),
            Just("{\"threshold\":1}"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,12}",
                    Just("state".to_owned()),
                    Just("value".to_owned()),
                    Just("metrics".to_owned()),
                    Just("metricStat".to_owned()),
                    Just("metric".to_owned()),
                    Just("dimensions".to_owned()),
                    Just("eventName".to_owned()),
                    Just("eventSource".to_owned()),
                    Just("userIdentity".to_owned()),
                    Just("resource".to_owned()),
                    Just("severity".to_owned()),
                    Just("type".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The envelopes of every source, so arbitrary details reach every normaliser.
const KNOWN: &[(&str, &str)] = &[
    ("aws.cloudwatch", "CloudWatch Alarm State Change"),
    ("aws.guardduty", "GuardDuty Finding"),
    ("aws.signin", "AWS Console Sign In via CloudTrail"),
    ("aws.iam", "AWS API Call via CloudTrail"),
    ("aws.ec2", "EC2 Instance State-change Notification"),
    ("aws.autoscaling", "EC2 Instance Launch Unsuccessful"),
    ("aws.health", "AWS Health Event"),
    (
        "aws.codepipeline",
        "CodePipeline Action Execution State Change",
    ),
    ("aws.events", "Scheduled Event"),
    ("com.example", "Anything"),
];

fn fixture_values() -> Vec<Value> {
    [
        "alarm-cpu-high.json",
        "sources/guardduty-credential-exfiltration.json",
        "sources/signin-console-failure.json",
        "sources/cloudtrail-stop-logging.json",
        "sources/health-instance-retirement.json",
        "sources/aws_lambda_events/example-autoscaling-event-launch-successful.json",
        "sources/aws_lambda_events/example-codepipeline-action-execution-stage-change-event.json",
    ]
    .iter()
    .map(|f| serde_json::from_slice(&common::fixture_bytes(f)).unwrap())
    .collect()
}

/// Replaces the value at a pseudo-random path of `v` with `with`.
fn graft(v: &mut Value, path: u64, with: Value) {
    let descend = !path.is_multiple_of(3);
    match v {
        Value::Object(m) if descend && !m.is_empty() => {
            let k = m
                .keys()
                .nth((path as usize / 3) % m.len())
                .cloned()
                .unwrap();
            graft(m.get_mut(&k).unwrap(), path / 7, with);
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let i = (path as usize / 3) % a.len();
            graft(&mut a[i], path / 7, with);
        }
        _ => *v = with,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_details_never_panic(which in 0..KNOWN.len(), detail in any_json(), id in proptest::option::of(".{0,40}")) {
        let (source, detail_type) = KNOWN[which];
        let event = json!({"version": "0", "id": id, "detail-type": detail_type, "source": source,
                           "time": "2026-11-22T10:00:00Z", "resources": [], "detail": detail});
        if let Ok(envelope) = events::parse_envelope(event.to_string().as_bytes()) {
            let _ = events::normalise(&envelope);
        }
    }

    #[test]
    fn mutated_real_events_never_panic(which in 0..7usize, path in any::<u64>(), with in any_json()) {
        let mut event = fixture_values().swap_remove(which);
        graft(&mut event, path, with);
        if let Ok(envelope) = events::parse_envelope(event.to_string().as_bytes()) {
            let _ = events::normalise(&envelope);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(envelope) = events::parse_envelope(&bytes) {
            let _ = events::normalise(&envelope);
        }
    }

    #[test]
    fn arbitrary_cloudtrail_records_never_panic(record in any_json()) {
        let _ = events::normalise_cloudtrail_record(&record);
    }

    #[test]
    fn window_features_are_finite_on_any_input(
        points in prop::collection::vec(proptest::option::of(any::<f64>()), 0..200),
        period in 1u32..86_400,
        percent in any::<bool>(),
        season in 0usize..100,
    ) {
        let f = window::window(&points, WindowSpec { period_secs: period, percent, season_points: season });
        prop_assert!(f.iter().all(|v| v.is_finite()), "{f:?}");
    }

    #[test]
    fn window_scores_are_scale_invariant(
        points in prop::collection::vec(1.0f64..1000.0, 8..120),
        factor in 0.5f64..100.0,
    ) {
        let spec = WindowSpec { period_secs: 60, percent: false, season_points: 0 };
        let a = window::window(&points.iter().map(|v| Some(*v)).collect::<Vec<_>>(), spec);
        let b = window::window(&points.iter().map(|v| Some(v * factor)).collect::<Vec<_>>(), spec);
        // robust_z, rate_of_change, spike, flatline and missing ratios do not depend on units.
        for i in [1usize, 5, 6, 7, 8] {
            prop_assert!((a[i] - b[i]).abs() <= 1e-6 * a[i].abs().max(1.0), "{} : {} vs {}", window::NAMES[i], a[i], b[i]);
        }
        prop_assert!((b[0] - a[0] * factor).abs() <= 1e-9 * b[0].abs().max(1.0));
    }
}
