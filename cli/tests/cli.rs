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
fn policy_migrate_writes_a_version_1_policy_in_the_current_format() {
    let old = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/upgrade/policy-v1.yaml"
    );
    let run = check(&["policy", "migrate", old]);
    assert!(run.ok, "{}", run.stderr);
    let mut migrated = vigil_core::policy::Policy::from_yaml(&run.stdout, "migrated").unwrap();
    assert_eq!(migrated.version, vigil_core::policy::VERSION);
    // The previous release's default policy is this release's default, written anew (its id
    // names the document it was read from).
    let bundled = vigil_core::policy::Policy::bundled().unwrap();
    assert_ne!(migrated.id, bundled.id);
    migrated.id = bundled.id.clone();
    assert_eq!(migrated, bundled);
}

#[test]
fn audit_verify_finds_tampering() {
    use vigil_core::audit::AuditRecord;
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

#[test]
fn policy_explain_takes_raw_cloudtrail_records_as_eventbridge_delivers_them() {
    let fixture: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/events/sources/cloudtrail-stop-logging.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let record = &fixture["detail"];
    let dir = std::env::temp_dir().join(format!("vigil-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut second = record.clone();
    second["eventID"] = serde_json::json!("00000000-0000-4000-8000-000000000002");
    second["eventName"] = serde_json::json!("DescribeTrails");
    second["readOnly"] = serde_json::json!(true);
    for (file, doc, decided) in [
        ("record.json", record.clone(), 1),
        (
            "log.json",
            serde_json::json!({"Records": [record, second]}),
            2,
        ),
        ("array.json", serde_json::json!([record]), 1),
    ] {
        let path = dir.join(file);
        std::fs::write(&path, doc.to_string()).unwrap();
        let run = check(&["policy", "explain", "--event", path.to_str().unwrap()]);
        assert!(run.ok, "{}", run.stderr);
        assert!(!run.stdout.contains("refused"), "{file}: {}", run.stdout);
        assert_eq!(
            run.stdout.matches("  decision: ").count(),
            decided,
            "{file}: {}",
            run.stdout
        );
        // The trail stopped is named by its rule, whatever the file's form.
        assert!(
            run.stdout.contains("aws_cloudtrail_stop_logging matched"),
            "{file}: {}",
            run.stdout
        );
    }
    // What is neither an EventBridge event nor a CloudTrail record is refused with its reason.
    let path = dir.join("other.json");
    std::fs::write(&path, r#"{"hello": "world"}"#).unwrap();
    let run = check(&["policy", "explain", "--event", path.to_str().unwrap()]);
    assert!(run.stdout.contains("refused"), "{}", run.stdout);
    std::fs::remove_dir_all(&dir).ok();
}

/// A small data set in NAB's layout: two categories, a spiky file with one labelled window and
/// a quiet file with none.
fn nab_fixture(root: &std::path::Path) {
    use std::fmt::Write as _;
    let start = chrono::NaiveDate::from_ymd_opt(2014, 2, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let at = |i: i64| (start + chrono::Duration::minutes(5 * i)).format("%Y-%m-%d %H:%M:%S");
    for (category, file, spike) in [
        ("realThings", "spiky.csv", Some(1500)),
        ("quietThings", "flat.csv", None),
    ] {
        let dir = root.join(category);
        std::fs::create_dir_all(&dir).unwrap();
        let mut csv = String::from("timestamp,value\n");
        for i in 0..2000_i64 {
            let daily = (i as f64 / 288.0 * std::f64::consts::TAU).sin() * 5.0;
            let noise = ((i * 7919) % 13) as f64 / 13.0;
            let jump = if spike.is_some_and(|s| i >= s) {
                40.0
            } else {
                0.0
            };
            writeln!(csv, "{},{}", at(i), 20.0 + daily + noise + jump).unwrap();
        }
        std::fs::write(dir.join(file), csv).unwrap();
    }
    std::fs::create_dir_all(root.join("labels")).unwrap();
    let windows = serde_json::json!({
        "realThings/spiky.csv": [[format!("{}.000000", at(1400)), format!("{}.000000", at(1600))]],
        "quietThings/flat.csv": [],
    });
    std::fs::write(
        root.join("labels/combined_windows.json"),
        windows.to_string(),
    )
    .unwrap();
}

#[test]
fn eval_nab_writes_nab_results_and_scores_them() {
    let tmp = std::env::temp_dir().join(format!("vigil-nab-{}", std::process::id()));
    let data = tmp.join("data");
    let out = tmp.join("out");
    nab_fixture(&data);
    let run = check(&[
        "eval",
        "nab",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.ok, "{}", run.stderr);
    // NAB's results layout and columns.
    let results = std::fs::read_to_string(out.join("realThings/vigil_spiky.csv")).unwrap();
    assert!(results.starts_with("timestamp,value,anomaly_score,label\n"));
    assert_eq!(results.lines().count(), 2001);
    assert!(out.join("quietThings/vigil_flat.csv").exists());
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("vigil_scores.json")).unwrap())
            .unwrap();
    let standard = &report["profiles"][0];
    assert_eq!(standard["profile"], "standard");
    // The jump is caught inside its window.
    assert_eq!(standard["overall"]["true_positives"], 1, "{report}");
    assert!(
        standard["overall_score"].as_f64().unwrap() > 50.0,
        "{report}"
    );
    assert!(run.stdout.contains("realThings"), "{}", run.stdout);
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn eval_nab_refuses_data_without_labels() {
    let tmp = std::env::temp_dir().join(format!("vigil-nab-bad-{}", std::process::id()));
    std::fs::create_dir_all(tmp.join("cat")).unwrap();
    std::fs::write(tmp.join("cat/x.csv"), "timestamp,value\n").unwrap();
    let run = check(&[
        "eval",
        "nab",
        "--data",
        tmp.to_str().unwrap(),
        "--out",
        tmp.join("o").to_str().unwrap(),
    ]);
    assert!(!run.ok);
    assert!(
        run.stderr.contains("combined_windows.json"),
        "{}",
        run.stderr
    );
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn eval_threats_detects_the_stratus_techniques_with_few_false_alarms() {
    let run = check(&["eval", "threats", "--json"]);
    assert!(run.ok, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let techniques = report["techniques"].as_array().unwrap();
    assert_eq!(techniques.len(), 35);
    // Rules and model together find every technique; each alone most of them.
    let found = |k: &str| report[k].as_u64().unwrap();
    assert_eq!(found("detected"), 35, "{report}");
    assert!(found("detected_by_rules") >= 35, "{report}");
    assert!(found("detected_by_model") >= 30, "{report}");
    // Only what the template delivers is judged.
    assert!(found("benign_events") > 5_000);
    assert!(found("benign_events") < found("benign_generated"));
    let fp = |k: &str| report[k].as_f64().unwrap();
    assert!(fp("model_false_positive_rate") < 0.001, "{report}");
    // Issue gate: false alarms under 0.1% of benign events delivered.
    assert!(fp("false_positive_rate") < 0.001, "{report}");
    // The baseline's users without MFA are told (CIS 4.2), once a week each, and counted
    // apart: at least one alarm each, at most one per week of baseline each.
    let gaps = found("principals_with_posture_gaps");
    assert!(gaps > 0, "{report}");
    assert!(found("posture_alarms") >= gaps, "{report}");
    assert!(found("posture_alarms") <= gaps * 2, "{report}");
    assert_eq!(
        report["posture_alarms_by_rule"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["aws_console_login_without_mfa"]
    );
}

#[test]
fn rules_check_refuses_an_override_the_stack_would_refuse_or_never_see() {
    let dir = std::env::temp_dir().join(format!("vigil-rules-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rule = |id: &str, name: &str, source: &str, event: &str, read_only: bool| {
        format!(
            "title: {name}\nid: {id}\nname: {name}\nlevel: high\nlogsource: {{product: aws, service: cloudtrail}}\n\
             detection: {{s: {{eventSource: {source}, eventName: {event}}}, condition: s}}\n\
             rsigma.exemplars:\n- name: the call\n  expect: match\n  event: {{eventSource: {source}, eventName: {event}, readOnly: {read_only}}}\n"
        )
    };
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    // A write call of a routed service: it loads, its test passes, the stack delivers it.
    let good_text = rule(
        "op-1",
        "acme_trail_stopped",
        "cloudtrail.amazonaws.com",
        "StopLogging",
        false,
    );
    let good = write("good.yml", &good_text);
    let run = check(&["rules", "check", &good]);
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    // A read nobody routes: it would never match in a deployed stack.
    let unseen = write(
        "unseen.yml",
        &rule(
            "op-2",
            "acme_buckets_listed_by_s3",
            "s3.amazonaws.com",
            "GetBucketTagging",
            true,
        ),
    );
    let run = check(&["rules", "check", &unseen]);
    assert!(!run.ok);
    assert!(
        run.stdout.contains("acme_buckets_listed_by_s3"),
        "{}",
        run.stdout
    );
    // A rule without a level: refused whole, naming the rule and the field.
    let invalid = write(
        "invalid.yml",
        &rule(
            "op-3",
            "acme_no_level",
            "cloudtrail.amazonaws.com",
            "StopLogging",
            false,
        )
        .replace("level: high\n", ""),
    );
    let run = check(&["rules", "check", &invalid]);
    assert!(!run.ok);
    assert!(run.stderr.contains("level"), "{}", run.stderr);
    // More than the parameter can hold.
    let big = write(
        "big.yml",
        &format!("{good_text}# {}\n", "x".repeat(9 * 1024)),
    );
    let run = check(&["rules", "check", &big]);
    assert!(!run.ok);
    assert!(run.stderr.contains("at most 8192"), "{}", run.stderr);
    std::fs::remove_dir_all(&dir).ok();
}

/// `vigil approve` against a stand-in for the stack's ApproverUrl on this machine: the request
/// it receives, and what the command prints of the answer.
fn approve_against(status: &str, page: &str, command: &[&str]) -> (Run, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
        page.len()
    );
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        reader.get_mut().write_all(answer.as_bytes()).unwrap();
        head + &String::from_utf8(body).unwrap()
    });
    let url = format!("http://127.0.0.1:{port}/");
    let mut args = command.to_vec();
    args.extend_from_slice(&["--url", url.as_str()]);
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(&args)
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_SESSION_TOKEN", "a-session-token")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("running vigil");
    let request = server.join().unwrap();
    (
        Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        request,
    )
}

#[test]
fn approve_signs_the_verdict_with_the_callers_own_credentials() {
    let (run, request) = approve_against(
        "202 Accepted",
        "<html><h1>Approval counted</h1><p>1 of 2 named approvals</p></html>",
        &["approve", "d-42"],
    );
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("202 Approval counted: 1 of 2 named approvals"),
        "{}",
        run.stdout
    );
    let lower = request.to_ascii_lowercase();
    assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
    assert!(
        lower.contains("authorization: aws4-hmac-sha256 credential=akidexample/")
            && lower.contains("/eu-west-1/lambda/aws4_request"),
        "{request}"
    );
    assert!(
        lower.contains("x-amz-security-token: a-session-token"),
        "{request}"
    );
    assert!(
        request.ends_with(r#"{"decision":"d-42","verdict":"approve"}"#),
        "{request}"
    );
    // A refusal is an error, with what the function said.
    let (run, request) = approve_against(
        "403 Forbidden",
        "<html><h1>Not an approver</h1><p>The policy in force does not name you</p></html>",
        &["approve", "d-42", "--deny"],
    );
    assert!(!run.ok);
    assert!(run.stdout.contains("403 Not an approver"), "{}", run.stdout);
    assert!(request.ends_with(r#""verdict":"deny"}"#), "{request}");
}

#[test]
fn undo_asks_as_the_caller_for_the_decisions_action_to_be_undone() {
    let (run, request) = approve_against(
        "200 OK",
        "<html><h1>Approved</h1><p>release i-0123456789abcdef0 from quarantine: Verified</p></html>",
        &["undo", "inc-7:quarantine_instance"],
    );
    assert!(run.ok, "{}", run.stderr);
    assert!(
        run.stdout.contains("200 Approved: release"),
        "{}",
        run.stdout
    );
    assert!(
        request
            .to_ascii_lowercase()
            .contains("authorization: aws4-hmac-sha256 credential=akidexample/"),
        "{request}"
    );
    assert!(
        request.ends_with(r#"{"undo":"inc-7:quarantine_instance"}"#),
        "{request}"
    );
    // Nothing to undo is an error, with what the function said.
    let (run, _) = approve_against(
        "404 Not Found",
        "<html><h1>Nothing to undo</h1><p>Decision d-1 took no action Vigil can undo</p></html>",
        &["undo", "d-1"],
    );
    assert!(!run.ok);
    assert!(run.stdout.contains("404 Nothing to undo"), "{}", run.stdout);
}
