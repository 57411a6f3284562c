//! Upgrades: what the previous release wrote is still read by this one. The state table items
//! in `fixtures/upgrade/state-items.json` were written by the previous release's own state
//! table adapter against the emulator and scanned out as DynamoDB JSON (the writer is
//! `fixtures/upgrade/writers/state_items.rs`, run at 2026-12-01T12:00Z); here they are put back
//! as they were and read through this release's adapter and key formats.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use vigil_aws::dynamodb::StateTable;
use vigil_core::domain::{Decision, OutcomeStatus, Tier};
use vigil_core::keys;
use vigil_handlers::ports::{
    ActionHistory, Claim, ClaimOnce, FindAlertSent, LastDeploy, LoadPendingApproval,
    PrincipalHistory, ReadDeploymentFreeze, ReadPosture, Sightings, TakeQuota,
};
use vigil_tests as h;

/// When the previous release wrote the items.
/// A file of the repository.
fn repo_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn written_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
}

/// One DynamoDB JSON value (`{"S": ...}`, `{"M": {...}}`, ...) as the SDK's type.
fn attribute(v: &serde_json::Value) -> AttributeValue {
    let (kind, inner) = v.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "S" => AttributeValue::S(inner.as_str().unwrap().to_owned()),
        "N" => AttributeValue::N(inner.as_str().unwrap().to_owned()),
        "BOOL" => AttributeValue::Bool(inner.as_bool().unwrap()),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(
            inner
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect(),
        ),
        "L" => AttributeValue::L(inner.as_array().unwrap().iter().map(attribute).collect()),
        "M" => AttributeValue::M(item(inner)),
        other => panic!("an attribute type the fixture does not use: {other}"),
    }
}

fn item(v: &serde_json::Value) -> HashMap<String, AttributeValue> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), attribute(v)))
        .collect()
}

/// A table holding exactly the previous release's items.
async fn restored(config: &aws_config::SdkConfig) -> StateTable {
    let table = h::create_table(config).await;
    let items: serde_json::Value =
        serde_json::from_str(&repo_file("fixtures/upgrade/state-items.json")).unwrap();
    let client = aws_sdk_dynamodb::Client::new(config);
    for i in items.as_array().unwrap() {
        client
            .put_item()
            .table_name(&table)
            .set_item(Some(item(i)))
            .send()
            .await
            .expect("PutItem");
    }
    StateTable::new(config, table)
}

/// The decision the previous release saved as pending (its first replayed decision).
fn pending_decision() -> Decision {
    let text = repo_file("fixtures/upgrade/replay-enforce.jsonl");
    let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    serde_json::from_value(line["decision"].clone()).unwrap()
}

#[tokio::test]
async fn state_items_written_by_the_previous_release_are_read_by_this_one() {
    let config = h::sdk_config();
    let state = restored(&config).await;
    let now = written_at() + chrono::Duration::minutes(5);
    let decision = pending_decision();

    // A decision waiting for approval loads as this release's decision, reasons typed.
    // (Its writer read the decision from JSON with a parser that could be one ulp off on a
    // feature value, so the features are not compared to the bit.)
    let pending = state
        .load_pending(&decision.id, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            &pending.id,
            pending.tier,
            &pending.action,
            pending.mode,
            &pending.reasons
        ),
        (
            &decision.id,
            decision.tier,
            &decision.action,
            decision.mode,
            &decision.reasons
        )
    );
    assert_eq!(pending.incident.id, decision.incident.id);

    // The attempt history, of the instance and of its group.
    let since = written_at() - chrono::Duration::hours(1);
    for resource in ["i-12345678901234567".to_owned(), keys::group("web-prod")] {
        let attempts = state.recent(&resource, since).await.unwrap();
        assert_eq!(attempts.len(), 1, "{resource}");
        assert_eq!(attempts[0].status, OutcomeStatus::Verified);
        assert_eq!(attempts[0].decision_id, decision.id);
    }

    // The alert told about the decision is found, so a retry does not tell again.
    let told = keys::told_decision(&decision.id, decision.tier);
    assert_eq!(
        state.find_sent(&told, now).await.unwrap().as_deref(),
        Some("msg-1")
    );

    // Claims the previous release took still hold against another delivery.
    for key in [
        keys::event("e-1"),
        keys::cooldown("replace_instance", "i-12345678901234567"),
    ] {
        let claim = state
            .claim(&key, "delivery-2", now, now + chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(claim, Claim::Held, "{key}");
    }

    // Counters go on from where they were.
    let rate = keys::rate("replace_instance", 491_436);
    assert_eq!(state.take(&rate, 10, now).await.unwrap(), Some(2));
    // (The previous release's alert grouping counters, `alerts#...`, are no longer read: alerts
    // are told in conversations now, and those counters expire within half an hour.)

    // A sighting counts as the earlier one.
    let sighting = keys::sighting_of("i-12345678901234567", "cpu_runaway");
    let before = state
        .sighted(&sighting, "delivery-2", now, chrono::Duration::minutes(12))
        .await
        .unwrap();
    assert_eq!(before, 1);

    // The gate's posture: the incident on its target, the freeze, the last deploy.
    // (The incident opened when its event says: the replayed alarm is from 2019.)
    let opened = Utc.with_ymd_and_hms(2019, 10, 1, 0, 0, 0).unwrap();
    let marks = state.incidents("web/prod", opened).await.unwrap();
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].tier, Tier::Block);
    assert_eq!(
        state.freeze("web-pipeline", now).await.unwrap().as_deref(),
        Some("Vigil: security incident")
    );
    let deploy = state.last_deploy("web/prod").await.unwrap().unwrap();
    assert_eq!(
        (deploy.job_id.as_str(), deploy.revision.as_deref()),
        ("job-1", Some("abc123"))
    );

    // A principal's history.
    let profile = state
        .load("arn:aws:iam::111122223333:user/alice")
        .await
        .unwrap();
    assert!(profile.is_some());
}
