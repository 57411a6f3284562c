//! The fuzz suite: every parser at a trust boundary fed arbitrary and mutated input. A
//! property holds for every input: no panic, and a typed error or a well-formed value.
//!
//! Each target runs `VIGIL_FUZZ_CASES` inputs (2,000 by default, as CI runs it). The figure in
//! docs/reliability.md comes from
//! `VIGIL_FUZZ_CASES=1000000 cargo test --release -p vigil-handlers --test fuzz`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};
use vigil_core::approval::{self, Token, Verdict};
use vigil_core::events;
use vigil_core::gate::artifact::{self, ArtifactLimits};
use vigil_core::gate::sarif;
use vigil_core::names::{AccessKeyId, GroupName, InstanceId, PipelineName, ServiceName, UserName};
use vigil_core::policy::Policy;
use vigil_handlers::gate::{self, GateEvent};

/// Inputs per target: `VIGIL_FUZZ_CASES`, else 2,000.
fn config() -> Config {
    let cases = std::env::var("VIGIL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..Config::default()
    }
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("ALARM"),
            Just("OK"),
            Just("i-1234abcd"),
            Just("i-0123456789abcdef0"),
            Just("InstanceId"),
            Just("2026-11-22T10:00:00Z"),
            Just("{\"threshold\":1}"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    ".{0,12}",
                    Just("state".to_owned()),
                    Just("value".to_owned()),
                    Just("metrics".to_owned()),
                    Just("metricStat".to_owned()),
                    Just("metric".to_owned()),
                    Just("dimensions".to_owned()),
                    Just("eventName".to_owned()),
                    Just("eventSource".to_owned()),
                    Just("userIdentity".to_owned()),
                    Just("resource".to_owned()),
                    Just("severity".to_owned()),
                    Just("type".to_owned()),
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The envelopes of every source, so arbitrary details reach every normaliser.
const KNOWN: &[(&str, &str)] = &[
    ("aws.cloudwatch", "CloudWatch Alarm State Change"),
    ("aws.guardduty", "GuardDuty Finding"),
    ("aws.signin", "AWS Console Sign In via CloudTrail"),
    ("aws.iam", "AWS API Call via CloudTrail"),
    ("aws.ec2", "EC2 Instance State-change Notification"),
    ("aws.autoscaling", "EC2 Instance Launch Unsuccessful"),
    ("aws.health", "AWS Health Event"),
    (
        "aws.codepipeline",
        "CodePipeline Action Execution State Change",
    ),
    ("aws.events", "Scheduled Event"),
    ("com.example", "Anything"),
];

/// Replaces the value at a pseudo-random path of `v` with `with`.
fn graft(v: &mut Value, path: u64, with: Value) {
    let descend = !path.is_multiple_of(3);
    match v {
        Value::Object(m) if descend && !m.is_empty() => {
            let k = m
                .keys()
                .nth((path as usize / 3) % m.len())
                .cloned()
                .unwrap();
            graft(m.get_mut(&k).unwrap(), path / 7, with);
        }
        Value::Array(a) if descend && !a.is_empty() => {
            let i = (path as usize / 3) % a.len();
            graft(&mut a[i], path / 7, with);
        }
        _ => *v = with,
    }
}

/// Every sample event in `fixtures/events`, parsed once.
fn fixtures() -> &'static [Value] {
    static ALL: OnceLock<Vec<Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        let root = format!("{}/../../fixtures/events", env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    out.push(serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap());
                }
            }
        }
        out.sort_by_key(Value::to_string);
        out
    })
}

/// The bundled policy as a JSON value.
fn policy_value() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| serde_norway::from_str(vigil_core::policy::DEFAULT_POLICY_YAML).unwrap())
}

fn sarif_fixture() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let path = format!(
            "{}/../../fixtures/sarif/checkov.insecure.sarif",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    })
}

/// A real deflated zip holding the SARIF fixture, as CodePipeline stores an artifact.
fn artifact_zip() -> &'static [u8] {
    static V: OnceLock<Vec<u8>> = OnceLock::new();
    V.get_or_init(|| {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        w.start_file("reports/checkov.sarif", opts).unwrap();
        w.write_all(sarif_fixture().to_string().as_bytes()).unwrap();
        w.finish().unwrap().into_inner()
    })
}

/// A CodePipeline job event for the gate, as CodePipeline sends one.
fn job_event() -> Value {
    json!({"CodePipeline.job": {
        "id": "11111111-abcd-1111-abcd-111111abcdef",
        "accountId": "111111111111",
        "data": {
            "actionConfiguration": {"configuration": {
                "FunctionName": "vigil-gate",
                "UserParameters": "{\"target\":\"web/prod\",\"pipeline\":\"web-release\"}"
            }},
            "inputArtifacts": [{"name": "BuildOutput", "revision": null, "location": {"type": "S3",
                "s3Location": {"bucketName": "codepipeline-us-east-1-111111111111", "objectKey": "web-release/BuildOutpu/abc123.zip"}}}],
            "outputArtifacts": [],
            "artifactCredentials": {"secretAccessKey": "secret", "sessionToken": "token", "accessKeyId": "AKIAIOSFODNN7EXAMPLE"},
            "continuationToken": "eyJ2IjoxLCJ0YXJnZXQiOiJ3ZWIvcHJvZCIsInJlc3VsdHMiOltdfQ"
        }
    }})
}

/// Byte-level damage: flips, truncation and insertions at pseudo-random places.
fn damage(bytes: &[u8], edits: &[(u64, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for &(at, b) in edits {
        if out.is_empty() {
            out.push(b);
            continue;
        }
        let i = (at as usize) % out.len();
        match at % 4 {
            0 => out[i] ^= b,
            1 => out.truncate(i),
            2 => out.insert(i, b),
            _ => out[i] = b,
        }
    }
    out
}

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef-vigil";

proptest! {
    #![proptest_config(config())]

    /// EventBridge deliveries: arbitrary bytes.
    #[test]
    fn event_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(envelope) = events::parse_envelope(&bytes) {
            let _ = events::normalise(&envelope);
        }
    }

    /// Every source's envelope with an arbitrary detail.
    #[test]
    fn event_details(which in 0..KNOWN.len(), detail in any_json(), id in proptest::option::of(".{0,40}")) {
        let (source, detail_type) = KNOWN[which];
        let event = json!({"version": "0", "id": id, "detail-type": detail_type, "source": source,
                           "time": "2026-11-22T10:00:00Z", "resources": [], "detail": detail});
        if let Ok(envelope) = events::parse_envelope(event.to_string().as_bytes()) {
            let _ = events::normalise(&envelope);
        }
    }

    /// Real events of every source with one value replaced anywhere in them.
    #[test]
    fn mutated_events(which in any::<prop::sample::Index>(), path in any::<u64>(), with in any_json()) {
        let mut event = which.get(fixtures()).clone();
        graft(&mut event, path, with);
        if let Ok(envelope) = events::parse_envelope(event.to_string().as_bytes()) {
            // Whatever was accepted names only resources that parse.
            if let Ok(events::Normalised::Signals(signals)) = events::normalise(&envelope) {
                for s in signals {
                    if let Ok(Some(_)) = s.resource.instance_id() {
                        prop_assert!(s.resource.id.starts_with("i-"));
                    }
                }
            }
        }
    }

    /// The ingest function's requests: a pull batch with one value replaced anywhere in it is
    /// refused or read as a batch whose instances and groups parse; a batch over the plan's
    /// limits never passes its check.
    #[test]
    fn ingest_requests(path in any::<u64>(), with in any_json(), extra in 0usize..3) {
        let items: Vec<Value> = (0..10 + extra)
            .map(|i| json!({"instance": format!("i-0123456789abcde{i:02x}"), "group": "web",
                            "tags": {"vigil:service": "app"}, "disks": [[["path", "/"]]]}))
            .collect();
        let mut request = json!({"batch": {"tick": "t", "at": "2026-12-01T10:00:00Z", "items": items}});
        graft(&mut request, path, with);
        if let Ok(vigil_handlers::ingest::Request::Batch(batch)) =
            vigil_handlers::ingest::Request::parse(request)
        {
            for item in &batch.items {
                prop_assert!(item.instance.as_str().starts_with("i-"));
            }
            if batch.items.len() > vigil_core::metrics::fanout::BATCH_INSTANCES {
                prop_assert!(batch.check().is_err());
            }
        }
    }

    /// Raw trail records (the replay path).
    #[test]
    fn cloudtrail_records(record in any_json()) {
        let _ = events::normalise_cloudtrail_record(&record);
    }

    /// The policy loader: arbitrary text.
    #[test]
    fn policy_text(text in ".{0,400}") {
        let _ = Policy::from_yaml(&text, "fuzz");
    }

    /// The bundled policy with one value replaced anywhere: a policy that loads keeps its
    /// invariants, whatever the operator wrote.
    #[test]
    fn mutated_policies(path in any::<u64>(), with in any_json()) {
        let mut v = policy_value().clone();
        graft(&mut v, path, with);
        let text = serde_norway::to_string(&v).unwrap();
        if let Ok(p) = Policy::from_yaml(&text, "fuzz") {
            let t = &p.tiers;
            let o = &p.opinions;
            prop_assert!(t.approval_min_confidence <= t.auto_heal_min_confidence);
            prop_assert!((0.0..=1.0).contains(&o.model_confidence.min_confidence));
            prop_assert!(p.limits.max_group_share > 0.0 && p.limits.max_group_share <= 1.0);
            prop_assert!(p.limits.max_actions_per_hour >= 1);
            prop_assert!(o.horizon.memory_hours >= 0.0 && o.horizon.disk_hours >= 0.0);
            prop_assert!((0.0..=1.0).contains(&o.lone_surge.min_group_share));
        }
    }

    /// The gate's input: arbitrary JSON, and a real job event with one value replaced; its
    /// UserParameters.
    #[test]
    fn gate_events(path in any::<u64>(), with in any_json(), raw in any_json(), params in ".{0,200}") {
        let _ = GateEvent::parse(raw);
        let mut event = job_event();
        graft(&mut event, path, with);
        let _ = GateEvent::parse(event);
        if let Ok(p) = gate::parameters(Some(&params)) {
            prop_assert!(!p.target.is_empty());
        }
    }

    /// SARIF reports: a real scanner's report with one value replaced, and arbitrary bytes.
    #[test]
    fn sarif_reports(path in any::<u64>(), with in any_json(), bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let mut report = sarif_fixture().clone();
        graft(&mut report, path, with);
        let _ = sarif::summarise(report.to_string().as_bytes(), &[], today);
        let _ = sarif::summarise(&bytes, &[], today);
    }

    /// Pipeline artifacts: a real zip damaged at a few places.
    #[test]
    fn artifacts(edits in prop::collection::vec((any::<u64>(), any::<u8>()), 1..6)) {
        let bytes = damage(artifact_zip(), &edits);
        if let Ok(reports) = artifact::reports(&bytes, &ArtifactLimits::default()) {
            for r in reports {
                // `a..b` is a name; `..` as a component would climb out.
                prop_assert!(!r.path.split(['/', '\\']).any(|c| c == ".."), "{}", r.path);
                prop_assert!(!r.path.starts_with('/') && !r.path.starts_with('\\'), "{}", r.path);
            }
        }
    }

    /// Approval links: arbitrary text, and a real link with a few characters changed.
    #[test]
    fn approval_links(text in ".{0,300}", edits in prop::collection::vec((any::<u64>(), 0x21u8..0x7f), 1..4)) {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        prop_assert!(approval::verify(KEY, &text, now).is_err());
        let token = Token {
            decision_id: "d-1".into(),
            verdict: Verdict::Approve,
            expires_at: now + chrono::Duration::hours(1),
            nonce: "n-1".into(),
            digest: "bound".into(),
        };
        let link = approval::sign(KEY, &token).unwrap();
        let altered = String::from_utf8_lossy(&damage(link.as_bytes(), &edits)).into_owned();
        // Only an edit that changed nothing (or only what the encoding ignores) passes, and
        // then the token is the one signed.
        if let Ok(t) = approval::verify(KEY, &altered, now) {
            prop_assert_eq!(t, token);
        }
    }

    /// Names that reach AWS calls and commands: arbitrary strings never parse into anything
    /// with a shell metacharacter, a path separator or a control character.
    #[test]
    fn names(s in ".{0,300}") {
        let hostile = |v: &str| v.chars().any(|c| c.is_control() || ";|&$`<>\\'\"\n".contains(c));
        if let Ok(n) = InstanceId::parse(&s) { prop_assert!(!hostile(n.as_str())); }
        if let Ok(n) = GroupName::parse(&s) { prop_assert!(!hostile(n.as_str())); }
        if let Ok(n) = ServiceName::parse(&s) { prop_assert!(!hostile(n.as_str())); }
        if let Ok(n) = UserName::parse(&s) { prop_assert!(!hostile(n.as_str())); }
        if let Ok(n) = AccessKeyId::parse(&s) { prop_assert!(!hostile(n.as_str())); }
        if let Ok(n) = PipelineName::parse(&s) { prop_assert!(!hostile(n.as_str())); }
    }
}
