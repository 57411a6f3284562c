//! The stack's containment runbook, run against moto: its script (the one step of
//! `infra/ssm/contain-instance.yaml`) executed by `runbooks/contain_instance.py` as SSM
//! Automation would run it (moto has no SSM Automation), on an instance of a watched group.
//! What it is allowed to do is proven by the permission check; this proves what it does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use vigil_tests as h;

fn contain() -> Value {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var("VIGIL_VENV").unwrap_or_else(|_| format!("{root}/.venv"));
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .arg(format!("{root}/tests/runbooks/contain_instance.py"))
        .arg(format!("{root}/infra/ssm/contain-instance.yaml"))
        .env("AWS_ENDPOINT_URL", h::endpoint())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("the test venv's python (make test creates .venv)");
    assert!(
        out.status.success(),
        "the runbook failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the harness prints JSON")
}

#[test]
fn the_containment_runbook_isolates_keeps_and_records_the_instance() {
    let run = contain();
    let (before, after) = (&run["before"], &run["after"]);
    let original = run["original_group"].as_str().unwrap();

    // Before: in its group, with its own security group, nothing recorded.
    assert_eq!(before["groups"], serde_json::json!([original]));
    assert_eq!(before["in_group"], true);
    assert_eq!(before["termination_disabled"], false);

    // After: one group, marked for this instance, with no rule in or out.
    let instance = run["instance"].as_str().unwrap();
    assert_eq!(after["groups"].as_array().unwrap().len(), 1, "{after}");
    assert_ne!(after["groups"][0], original);
    assert_eq!(after["group_marks"], serde_json::json!([instance]));
    assert_eq!(
        after["rules"], 0,
        "the quarantine group lets traffic through: {after}"
    );
    // Kept for forensics: out of its group without a replacement being asked for, and not
    // terminable; its volumes snapshotted.
    assert_eq!(after["in_group"], false);
    assert_eq!(after["desired"], before["desired"]);
    assert_eq!(after["termination_disabled"], true);
    assert!(after["snapshots"].as_u64().unwrap() >= 1, "{after}");
    // Recorded, so it can be released: the groups it had, and when it was isolated.
    assert_eq!(after["tags"]["vigil:quarantine-from"], original);
    assert!(after["tags"]["vigil:quarantine"].as_str().is_some());
    assert_eq!(run["first"]["already"], false);
}

#[test]
fn running_the_containment_runbook_again_changes_nothing() {
    let run = contain();
    assert_eq!(run["second"]["already"], true);
    assert_eq!(run["again"], run["after"]);
}
