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
