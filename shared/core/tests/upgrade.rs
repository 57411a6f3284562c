//! Upgrades: what the previous release wrote is still read, and verified, by this one.
//! `fixtures/upgrade/audit-trail.jsonl` is the audit trail the previous release's `vigil replay`
//! wrote in enforce mode over `fixtures/events/` (the writer is
//! `fixtures/upgrade/writers/trail.rs`); `replay-enforce.jsonl` its decisions and outcomes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vigil_core::audit::{self, AuditRecord};
use vigil_core::domain::{Decision, Outcome};

fn lines(name: &str) -> Vec<serde_json::Value> {
    let path = format!(
        "{}/../../fixtures/upgrade/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Read as this release's type and written again, a value is what was written.
fn same_after_reading<T: serde::de::DeserializeOwned + serde::Serialize>(v: &serde_json::Value) {
    let read: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("not readable any more ({e}): {v}"));
    assert_eq!(&serde_json::to_value(&read).unwrap(), v);
}

#[test]
fn the_previous_release_s_audit_trail_still_verifies() {
    let records: Vec<AuditRecord> = lines("audit-trail.jsonl")
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
    assert!(records.len() >= 4, "{} records", records.len());
    audit::verify(&records).unwrap();
    // Every decision it recorded is a decision of this release, with the same wire form.
    let decisions: Vec<&AuditRecord> = records.iter().filter(|r| r.kind == "decision").collect();
    assert!(!decisions.is_empty());
    for r in decisions {
        same_after_reading::<Decision>(&r.payload);
    }
    // And a change to any record is still found.
    let mut altered = records.clone();
    altered[1].subject.push('x');
    assert!(audit::verify(&altered).is_err());
}

#[test]
fn the_previous_release_s_decisions_and_outcomes_read_the_same() {
    let replayed: Vec<serde_json::Value> = lines("replay-enforce.jsonl")
        .into_iter()
        .filter(|l| l.get("decision").is_some())
        .collect();
    assert!(replayed.len() >= 3, "{} decisions", replayed.len());
    for line in &replayed {
        same_after_reading::<Decision>(&line["decision"]);
        same_after_reading::<Outcome>(&line["outcome"]);
    }
}
