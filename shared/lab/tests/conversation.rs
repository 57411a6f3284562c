//! One incident, one conversation: a recorded multi-call intrusion replayed in order through
//! every stage, counting the messages people get.
//!
//! The intrusion is eight of the Stratus Red Team detonations in `data/stratus/` (real
//! CloudTrail records of each technique, as the attack tool produced them), put on one timeline
//! as one intruder would run them: the same user of the same account from one address, one
//! technique every five minutes, each technique's calls five seconds apart in their recorded
//! order. Only the account id, the address and the times are rewritten; every other field is
//! the record as CloudTrail wrote it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use vigil_core::domain::{Mode, Tier};
use vigil_core::models::Models;
use vigil_core::policy::Policy;
use vigil_lab::pipeline::Pipeline;

/// The techniques, in the order the intruder runs them.
const CHAIN: [&str; 8] = [
    "aws.credential-access.secretsmanager-retrieve-secrets",
    "aws.credential-access.ssm-retrieve-securestring-parameters",
    "aws.execution.ssm-send-command",
    "aws.persistence.iam-create-admin-user",
    "aws.persistence.iam-backdoor-user",
    "aws.defense-evasion.cloudtrail-stop",
    "aws.exfiltration.ec2-share-ebs-snapshot",
    "aws.execution.ec2-user-data",
];
const ACCOUNT: &str = "111122223333";
const ADDRESS: &str = "203.0.113.50";

fn start() -> DateTime<Utc> {
    "2026-11-20T03:00:00Z".parse().unwrap()
}

/// The intrusion's records, in time order: technique `k` starts at minute `5 k`.
fn intrusion(chain: &[&str], spacing_seconds: i64) -> Vec<Value> {
    let mut records = Vec::new();
    for (k, name) in chain.iter().enumerate() {
        let path = format!(
            "{}/../../data/stratus/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut recorded: Vec<Value> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        recorded.sort_by(|a, b| a["eventTime"].as_str().cmp(&b["eventTime"].as_str()));
        for (i, r) in recorded.into_iter().enumerate() {
            let account = r["recipientAccountId"].as_str().unwrap().to_owned();
            let address = r["sourceIPAddress"].as_str().unwrap_or("").to_owned();
            let mut text = r.to_string().replace(&account, ACCOUNT);
            // A call an AWS service made for the intruder keeps its service name.
            if address.starts_with(|c: char| c.is_ascii_digit()) {
                text = text.replace(&address, ADDRESS);
            }
            let mut r: Value = serde_json::from_str(&text).unwrap();
            let at = start()
                + Duration::minutes(5 * k as i64)
                + Duration::seconds(spacing_seconds * i as i64);
            r["eventTime"] = Value::from(at.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            // Each call its own event, also when a technique is run again.
            let id = r["eventID"].as_str().unwrap_or("event").to_owned();
            r["eventID"] = Value::from(format!("{id}-{k}"));
            records.push(r);
        }
    }
    records
}

/// Replays the records one EventBridge event each, at their own time; the number of decisions
/// people would have been told of, one message each, and the world.
fn replay(records: &[Value]) -> (usize, Pipeline) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let p = Pipeline::new(
        Models::bundled().unwrap(),
        Policy::bundled().unwrap(),
        Mode::Enforce,
    );
    let mut told = 0;
    for (i, r) in records.iter().enumerate() {
        let event = vigil_lab::eventbridge::envelope(r);
        let envelope: vigil_core::events::Envelope = serde_json::from_value(event).unwrap();
        let now: DateTime<Utc> = r["eventTime"].as_str().unwrap().parse().unwrap();
        let Ok(out) = rt.block_on(p.event(&envelope, &format!("delivery-{i}"), now)) else {
            continue;
        };
        told += out.iter().filter(|(d, _)| d.tier != Tier::Observe).count();
    }
    (told, p)
}

#[test]
fn a_recorded_intrusion_is_one_first_alert_and_threaded_updates() {
    let records = intrusion(&CHAIN, 5);
    assert!(records.len() > 100, "{}", records.len());
    let (told, world) = replay(&records);
    let sent = world.outbox.sent();
    println!(
        "{} calls, {told} decisions told, {} messages",
        records.len(),
        sent.len()
    );
    // Dozens of decisions people would be told of, one message each without conversations.
    assert!(told > 40, "{told}");
    // One first alert: every other message answers it, in its chat thread.
    let first = &sent[0];
    assert!(!first.subject.starts_with("Re: "), "{}", first.subject);
    let thread = first.chat.as_ref().unwrap().metadata.thread_id.clone();
    assert!(thread.is_some());
    for update in &sent[1..] {
        assert_eq!(update.subject, format!("Re: {}", first.subject));
        assert_eq!(
            update.chat.as_ref().unwrap().metadata.thread_id,
            thread,
            "{}",
            update.body
        );
        assert!(update.body.contains("Update "), "{}", update.body);
    }
    // An update only for what is new (a threat, a tactic): at most one per technique after the
    // first, never one per call.
    assert!(
        sent.len() <= CHAIN.len(),
        "{} messages: {:#?}",
        sent.len(),
        sent.iter()
            .map(|m| m.body.lines().nth(1).unwrap_or_default())
            .collect::<Vec<_>>()
    );
    // A new kind of act is told at once: stopping the trail (defence evasion) is told in the
    // minute it happens, not held for a digest.
    let stop = sent
        .iter()
        .find(|m| m.body.contains("defense-evasion") || m.body.contains("defence evasion"))
        .expect("the trail stopped is told");
    assert!(stop.body.contains("Update "), "{}", stop.body);
}

#[test]
fn the_same_act_repeated_is_folded_into_a_digest_at_most_every_quarter_hour() {
    // The parameters harvest, detonated again and again for an hour: the same calls.
    let chain = ["aws.credential-access.ssm-retrieve-securestring-parameters"; 12];
    let records = intrusion(&chain, 5);
    let (told, world) = replay(&records);
    let sent = world.outbox.sent();
    println!(
        "{} calls, {told} decisions told, {} messages",
        records.len(),
        sent.len()
    );
    assert!(told >= 12, "{told}");
    // The first alert, then a digest at most every 15 minutes over the hour (at minute 15,
    // 30 and 45 and so on): never one message per repetition.
    assert!(sent.len() >= 2, "{}", sent.len());
    assert!(sent.len() <= 1 + 60 / 15, "{} messages", sent.len());
    let digest = &sent[1];
    assert!(
        digest.body.contains("digest of what was folded"),
        "{}",
        digest.body
    );
    assert!(
        digest
            .body
            .contains("also recorded without a message of its own"),
        "{}",
        digest.body
    );
}
