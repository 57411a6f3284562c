//! The detection rules through the real handlers: every bundled rule's own matching event,
//! delivered as EventBridge delivers it, reaches a decision that cites the rule; one that
//! alarms (medium and above) is told, whatever the principal's history.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{TimeZone, Utc};
use vigil_core::domain::{Code, Mode, Tier};
use vigil_core::events::parse_envelope;
use vigil_core::models::Models;
use vigil_core::policy::Policy;
use vigil_lab::eventbridge;
use vigil_lab::pipeline::Pipeline;
use vigil_rules::Pack;

#[test]
fn every_rules_own_event_is_decided_with_the_rule_cited() {
    let pack = Pack::bundled().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 2, 11, 0, 0).unwrap();
    let mut failures = Vec::new();
    for rule in pack.rules() {
        for record in rule.examples(true) {
            let bytes = serde_json::to_vec(&eventbridge::envelope(&record)).unwrap();
            let envelope = parse_envelope(&bytes).unwrap();
            // A new world each time: the principal has no history.
            let pipeline = Pipeline::new(
                Models::bundled().unwrap(),
                Policy::bundled().unwrap(),
                Mode::DryRun,
            );
            let decisions = rt.block_on(pipeline.event(&envelope, "test", now)).unwrap();
            let Some((d, _)) = decisions.first() else {
                failures.push(format!("{}: no decision", rule.name));
                continue;
            };
            let cited = d.reasons.iter().any(|r| {
                r.code == Code::Detection
                    && r.message.starts_with(&format!("{} matched", rule.name))
            });
            // A building block of correlations (`generate: false`) is counted, never cited.
            if !pack.reports(&rule.name) {
                if cited {
                    failures.push(format!("{}: a building block cited alone", rule.name));
                }
                continue;
            }
            if !cited {
                failures.push(format!("{}: not cited in {:?}", rule.name, d.reasons));
            }
            // The record's highest match decides what people hear.
            let top = pack.check(&record).first().map(|h| h.level).unwrap();
            if top.alarms() && d.tier == Tier::Observe {
                failures.push(format!(
                    "{}: level {top} but only recorded: {:?}",
                    rule.name, d.reasons
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_correlation_spans_invocations_through_the_state_table() {
    // Each correlation's matching sequence, each event its own delivery: the last event
    // fires, whatever invocation it arrives in, because the window lives in the history of
    // the principal (or address); none before it does.
    let pack = Pack::bundled().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap();
    assert!(pack.correlations().len() >= 6);
    for c in pack.correlations() {
        let (_, _, events) = c
            .sequences()
            .into_iter()
            .find(|s| s.1)
            .expect("a sequence that matches");
        let pipeline = Pipeline::new(
            Models::bundled().unwrap(),
            Policy::bundled().unwrap(),
            Mode::DryRun,
        );
        let mut told = Vec::new();
        for (i, (offset, mut record)) in events.into_iter().enumerate() {
            let at = start + offset;
            record["eventTime"] = serde_json::json!(at.to_rfc3339());
            record["eventID"] = serde_json::json!(format!("00000000-0000-4000-8000-{i:012}"));
            let bytes = serde_json::to_vec(&eventbridge::envelope(&record)).unwrap();
            let envelope = parse_envelope(&bytes).unwrap();
            let decisions = rt.block_on(pipeline.event(&envelope, "test", at)).unwrap();
            let fired = decisions.iter().any(|(d, _)| {
                d.reasons
                    .iter()
                    .any(|r| r.message.starts_with(&format!("{} matched", c.name())))
            });
            told.push(fired);
        }
        assert_eq!(
            told.iter().filter(|f| **f).count(),
            1,
            "{}: {told:?}",
            c.name()
        );
        assert_eq!(told.last(), Some(&true), "{}: {told:?}", c.name());
    }
}
