//! Normalisation of real EventBridge events into signals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use vigil_core::domain::{AlarmState, ResourceKind, SignalKind, Source};
use vigil_core::events::{self, EventError, Ignored, Normalised};

/// What normalising a fixture should give.
enum Expect {
    /// One alarm signal: resource id, state, metric, and the number of values carried.
    Alarm {
        resource: &'static str,
        kind: ResourceKind,
        state: AlarmState,
        metric: &'static str,
    },
    Ignored(fn(&Ignored) -> bool),
    Error(fn(&EventError) -> bool),
}

fn check(fixture: &str, expect: Expect) {
    let event = common::fixture(fixture);
    let got = events::normalise(&event);
    match (got, expect) {
        (
            Ok(Normalised::Signals(signals)),
            Expect::Alarm {
                resource,
                kind,
                state,
                metric,
            },
        ) => {
            assert_eq!(signals.len(), 1, "{fixture}");
            let s = &signals[0];
            assert_eq!(s.source, Source::CloudWatchAlarm);
            assert_eq!(s.resource.id, resource, "{fixture}");
            assert_eq!(s.resource.kind, kind, "{fixture}");
            assert_eq!(s.event_id, event.id.clone().unwrap());
            let SignalKind::AlarmStateChange {
                state: st,
                metric: m,
                ..
            } = &s.kind
            else {
                panic!("{fixture}: not an alarm")
            };
            assert_eq!(*st, state, "{fixture}");
            assert_eq!(m.as_deref(), Some(metric), "{fixture}");
        }
        (Ok(Normalised::Ignored(i)), Expect::Ignored(pred)) => {
            assert!(pred(&i), "{fixture}: {i:?}")
        }
        (Err(e), Expect::Error(pred)) => assert!(pred(&e), "{fixture}: {e:?}"),
        (got, _) => panic!("{fixture}: unexpected {got:?}"),
    }
}

#[test]
fn alarm_on_an_instance() {
    check(
        "alarm-cpu-high.json",
        Expect::Alarm {
            resource: "i-12345678901234567",
            kind: ResourceKind::Instance,
            state: AlarmState::Alarm,
            metric: "AWS/EC2/CPUUtilization",
        },
    );
    check(
        "alarm-cpu-ok.json",
        Expect::Alarm {
            resource: "i-12345678901234567",
            kind: ResourceKind::Instance,
            state: AlarmState::Ok,
            metric: "AWS/EC2/CPUUtilization",
        },
    );
}

#[test]
fn alarm_on_a_group() {
    check(
        "alarm-memory-group.json",
        Expect::Alarm {
            resource: "web-prod",
            kind: ResourceKind::AutoScalingGroup,
            state: AlarmState::Alarm,
            metric: "CWAgent/mem_used_percent",
        },
    );
}

#[test]
fn reason_data_values_are_read() {
    let event = common::fixture("alarm-cpu-high.json");
    let Normalised::Signals(s) = events::normalise(&event).unwrap() else {
        panic!("no signals")
    };
    assert_eq!(s[0].values.get("threshold"), Some(&50.0));
    assert_eq!(s[0].values.get("latest"), Some(&99.50160229693434));
    // The state's timestamp (no colon in its offset) is the observation time.
    assert_eq!(
        s[0].observed_at.to_rfc3339(),
        "2019-10-02T17:04:40.989+00:00"
    );
}

#[test]
fn unknown_and_unsupported_events_are_ignored() {
    check(
        "unknown-detail-type.json",
        Expect::Ignored(
            |i| matches!(i, Ignored::UnknownDetailType { source, .. } if source == "com.example.weather"),
        ),
    );
}

#[test]
fn malformed_and_hostile_events_are_typed_errors() {
    check(
        "alarm-malformed-no-state.json",
        Expect::Error(|e| matches!(e, EventError::Detail { .. })),
    );
    check(
        "alarm-hostile-instance-id.json",
        Expect::Error(|e| {
            matches!(
                e,
                EventError::Invalid {
                    what: "InstanceId dimension",
                    ..
                }
            )
        }),
    );
}

#[test]
fn envelope_errors() {
    assert!(matches!(
        events::parse_envelope(b"{\"not\": \"an event\"}"),
        Err(EventError::Envelope(_))
    ));
    assert!(matches!(
        events::parse_envelope(&vec![b' '; events::MAX_EVENT_BYTES + 1]),
        Err(EventError::TooLarge { .. })
    ));
    let mut no_id: serde_json::Value =
        serde_json::from_slice(&common::fixture_bytes("alarm-cpu-high.json")).unwrap();
    no_id.as_object_mut().unwrap().remove("id");
    let event = events::parse_envelope(no_id.to_string().as_bytes()).unwrap();
    assert!(matches!(
        events::normalise(&event),
        Err(EventError::MissingId)
    ));
}

#[test]
fn arbitrary_json_never_panics() {
    // Every fixture with each top-level detail field replaced by odd values.
    let odd = [
        serde_json::json!(null),
        serde_json::json!(1e308),
        serde_json::json!("\u{0}\u{202e}"),
        serde_json::json!([]),
        serde_json::json!({"x": {"y": []}}),
    ];
    for name in ["alarm-cpu-high.json", "alarm-memory-group.json"] {
        let base: serde_json::Value = serde_json::from_slice(&common::fixture_bytes(name)).unwrap();
        let keys: Vec<String> = base["detail"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        for k in keys {
            for v in &odd {
                let mut e = base.clone();
                e["detail"][&k] = v.clone();
                if let Ok(env) = events::parse_envelope(e.to_string().as_bytes()) {
                    let _ = events::normalise(&env);
                }
            }
        }
    }
}
