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

#[test]
fn what_was_only_recorded_is_sent_in_the_next_days_digest_once() {
    // A low rule's matches are recorded without telling anyone; the first decision of the
    // next day sends one digest counting them, and no later decision sends it again.
    let pack = Pack::bundled().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let day = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
    // A low rule whose event alone the model does not alert on either.
    let recorded_only = |record: &serde_json::Value| {
        let pipeline = Pipeline::new(
            Models::bundled().unwrap(),
            Policy::bundled().unwrap(),
            Mode::DryRun,
        );
        let envelope =
            parse_envelope(&serde_json::to_vec(&eventbridge::envelope(record)).unwrap()).unwrap();
        let decisions = rt.block_on(pipeline.event(&envelope, "test", day)).unwrap();
        decisions.iter().all(|(d, _)| d.tier == Tier::Observe)
    };
    let low = pack
        .rules()
        .iter()
        .find(|r| {
            r.level == vigil_core::domain::RuleLevel::Low
                && pack.reports(&r.name)
                && pack.check(&r.examples(true)[0]).len() == 1
                && recorded_only(&r.examples(true)[0])
        })
        .expect("a low rule of its own");
    let record = low.examples(true).remove(0);
    let pipeline = Pipeline::new(
        Models::bundled().unwrap(),
        Policy::bundled().unwrap(),
        Mode::DryRun,
    );
    let deliver = |i: usize, at: chrono::DateTime<Utc>| {
        let mut r = record.clone();
        r["eventTime"] = serde_json::json!(at.to_rfc3339());
        r["eventID"] = serde_json::json!(format!("00000000-0000-4000-8000-{i:012}"));
        let envelope =
            parse_envelope(&serde_json::to_vec(&eventbridge::envelope(&r)).unwrap()).unwrap();
        let decisions = rt.block_on(pipeline.event(&envelope, "test", at)).unwrap();
        assert!(
            decisions.iter().all(|(d, _)| d.tier == Tier::Observe),
            "{:#?}",
            decisions
                .iter()
                .map(|(d, _)| &d.reasons)
                .collect::<Vec<_>>()
        );
    };
    let digests = || -> Vec<vigil_core::alert::Alert> {
        pipeline
            .outbox
            .sent()
            .into_iter()
            .filter(|a| a.attributes.get("kind").map(String::as_str) == Some("digest"))
            .collect()
    };
    for i in 0..3 {
        deliver(i, day + chrono::Duration::minutes(i as i64));
    }
    assert!(digests().is_empty(), "nothing before the day is over");
    let next = Utc.with_ymd_and_hms(2026, 11, 3, 0, 5, 0).unwrap();
    deliver(10, next);
    deliver(11, next + chrono::Duration::hours(3));
    let sent = digests();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(
        sent[0].subject.contains("2026-11-02"),
        "{}",
        sent[0].subject
    );
    assert!(
        sent[0]
            .body
            .lines()
            .any(|l| l.contains(&low.name) && l.trim_start().starts_with('3')),
        "{}",
        sent[0].body
    );
    assert_eq!(sent[0].attributes["severity"], "INFO");
}
