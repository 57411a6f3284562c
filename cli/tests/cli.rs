//! The `vigil` binary, run as a user would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn check(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .output()
        .expect("running vigil");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn replay_prints_each_decision_with_its_reasons() {
    let run = check(&["replay"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("tier auto-heal, mode dry-run"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("[rule:replace-on-cpu-runaway]"));
    assert!(run.stdout.contains("[limit:blast-radius]"));
    assert!(
        run.stdout.contains("refused:"),
        "malformed samples are refused"
    );
    assert!(run.stdout.contains("ignored: unknown event"));
    // Dry-run changes nothing in the world.
    assert!(!run.stdout.contains("is UNHEALTHY"));
}

#[test]
fn replay_in_enforce_mode_replaces_the_instance() {
    let run = check(&["replay", "--mode", "enforce", "--json"]);
    assert!(run.ok, "{}", run.stderr);
    let verified = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["outcome"]["status"] == "verified")
        .count();
    assert_eq!(
        verified, 2,
        "the CPU and the status-check alarms: {}",
        run.stdout
    );
}

#[test]
fn policy_check_accepts_the_bundled_policy_and_refuses_a_bad_one() {
    let run = check(&["policy", "check"]);
    assert!(
        run.ok && run.stdout.contains("valid. mode dry-run"),
        "{}",
        run.stdout
    );

    let bad = std::env::temp_dir().join(format!("vigil-bad-policy-{}.yaml", std::process::id()));
    std::fs::write(&bad, "version: 1\nmode: yolo\n").unwrap();
    let run = check(&["policy", "check", bad.to_str().unwrap()]);
    assert!(!run.ok);
    assert!(run.stderr.starts_with("error: checking"), "{}", run.stderr);
    assert!(run.stderr.contains("caused by:"), "{}", run.stderr);
}

#[test]
fn audit_verify_finds_tampering() {
    use vigil_shared::audit::AuditRecord;
    let mut records: Vec<AuditRecord> = Vec::new();
    for i in 0..3 {
        let r = AuditRecord::next(
            records.last(),
            chrono::Utc::now(),
            "decision",
            &format!("d{i}"),
            serde_json::json!({"i": i}),
        );
        records.push(r);
    }
    let write = |name: &str, recs: &[AuditRecord]| {
        let path = std::env::temp_dir().join(format!("vigil-{name}-{}.jsonl", std::process::id()));
        let text: Vec<String> = recs
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        std::fs::write(&path, text.join("\n")).unwrap();
        path
    };
    let good = write("audit-good", &records);
    let run = check(&["audit", "verify", good.to_str().unwrap()]);
    assert!(
        run.ok && run.stdout.contains("3 record(s), chain intact"),
        "{}",
        run.stderr
    );

    records[1].subject = "rewritten".into();
    let bad = write("audit-bad", &records);
    let run = check(&["audit", "verify", bad.to_str().unwrap()]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("record 1 was altered"),
        "{}",
        run.stderr
    );
}

#[test]
fn policy_explain_shows_every_limit_consulted() {
    let event = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/events/alarm-cpu-high.json"
    );
    let run = check(&["policy", "explain", "--event", event]);
    assert!(run.ok, "{}", run.stderr);
    for code in [
        "[policy]",
        "[limit:kill-switch]",
        "[limit:protected]",
        "[limit:maintenance]",
        "[limit:loop-breaker]",
        "[limit:blast-radius]",
        "[mode:dry-run]",
    ] {
        assert!(
            run.stdout.contains(code),
            "{code} missing from\n{}",
            run.stdout
        );
    }
}
