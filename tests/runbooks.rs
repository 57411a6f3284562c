//! The stack's runbooks, run against moto as SSM Automation would run them (moto has no SSM
//! Automation): the containment runbook's script (the one step of
//! `infra/ssm/contain-instance.yaml`) executed by `runbooks/contain_instance.py` on an instance
//! of a watched group; the key runbook's API steps executed by `runbooks/deactivate_key.py` on
//! a user with two keys.
//! What it is allowed to do is proven by the permission check; this proves what it does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use vigil_tests as h;

fn contain() -> Value {
    run("contain_instance.py", "contain-instance.yaml")
}

/// Runs a runbook's harness (`tests/runbooks/<harness>`) on `infra/ssm/<runbook>` against the
/// emulator; returns what the harness printed.
fn run(harness: &str, runbook: &str) -> Value {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    h::runbook_harness(harness, &[&format!("{root}/infra/ssm/{runbook}")])
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

/// The key runbook deactivates the leaked key and nothing else, and marks its user contained:
/// the mark on which the automation role's policy denies it any key of that user again (the
/// permission check proves the denial; moto evaluates no policy).
#[test]
fn the_key_runbook_deactivates_the_leaked_key_and_marks_its_user() {
    let run = run("deactivate_key.py", "deactivate-access-key.yaml");
    let (leaked, other) = (
        run["leaked"].as_str().unwrap(),
        run["other"].as_str().unwrap(),
    );
    assert_eq!(run["before"]["keys"][leaked], "Active");
    assert_eq!(run["before"]["tags"], serde_json::json!({}));
    assert_eq!(run["first"], serde_json::json!(["Success", null, null]));
    assert_eq!(run["after"]["keys"][leaked], "Inactive");
    assert_eq!(run["after"]["keys"][other], "Active", "only the leaked key");
    assert_eq!(
        run["after"]["tags"],
        serde_json::json!({"vigil:contained": leaked})
    );
}

#[test]
fn running_the_containment_runbook_again_changes_nothing() {
    let run = contain();
    assert_eq!(run["second"]["already"], true);
    assert_eq!(run["again"], run["after"]);
}

/// The restart document's script (its `runCommand` lines, `ServiceName` filled in as SSM fills
/// it) run by bash with a stand-in `systemctl` that records its arguments. Returns the exit
/// code and the calls.
fn restart(service: &str) -> (i32, String) {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let doc: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(format!("{root}/infra/ssm/restart-service.yaml")).unwrap(),
    )
    .unwrap();
    let lines: Vec<String> = doc["mainSteps"][0]["inputs"]["runCommand"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().replace("{{ ServiceName }}", service))
        .collect();
    let dir = std::env::temp_dir().join(h::unique("restart"));
    std::fs::create_dir_all(&dir).unwrap();
    let calls = dir.join("calls");
    let stub = dir.join("systemctl");
    std::fs::write(
        &stub,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\n", calls.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(lines.join("\n"))
        .env("PATH", path)
        .output()
        .expect("bash");
    let calls = std::fs::read_to_string(&calls).unwrap_or_default();
    (out.status.code().unwrap_or(-1), calls)
}

#[test]
fn the_restart_document_restarts_services_and_nothing_else() {
    let (code, calls) = restart("nginx");
    assert_eq!(code, 0);
    assert!(calls.starts_with("restart -- nginx\n"), "{calls}");
    // Names the pattern lets through that are not services Vigil may restart: refused before
    // systemctl is called, whoever sent them.
    for unit in [
        "poweroff.target",
        "reboot.target",
        "ssh.socket",
        "systemd-logind",
        "dbus",
        "amazon-ssm-agent",
        "snap.amazon-ssm-agent.amazon-ssm-agent.service",
    ] {
        let (code, calls) = restart(unit);
        assert_eq!((code, calls.as_str()), (2, ""), "{unit}");
        // Vigil refuses the same names before it sends anything.
        assert!(
            vigil_core::names::ServiceName::parse(unit).is_err(),
            "{unit}"
        );
    }
}
