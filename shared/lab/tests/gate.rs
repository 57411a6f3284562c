//! The deployment gate, end to end through its handler on in-memory ports: every outcome of
//! the invoke action (pass, fail with reasons, continuation, timeout, malformed event, missing,
//! oversized and hostile artifacts) and of the manual approval action. Real-shaped inputs: the
//! job event as `aws_lambda_events` parses it, CodePipeline's documented approval notification,
//! and SARIF written by a real scanner run (`scripts/sarif-fixtures.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use vigil_core::domain::{
    FailureMode, Incident, Resource, ResourceKind, Severity, ThreatClass, Tier,
};
use vigil_core::gate::artifact::ArtifactLimits;
use vigil_core::gate::{FindingSummary, GatePolicy, OnDoubt};
use vigil_handlers::gate::{self, ApprovalOutcome, GateConfig, GateError, GateEvent, GatePorts};
use vigil_handlers::ports::{
    ApprovalDefinition, FetchArtifact, JobResult, LastDeploy, ListFindings, PortError,
    RecordIncident,
};
use vigil_lab::memory::{MemoryArtifacts, MemoryFindings, MemoryOutbox, MemoryState};

const BUCKET: &str = "codepipeline-us-east-1-111111111111";
const KEY: &str = "web-release/BuildOutpu/abc123.zip";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
}

fn sarif(name: &str) -> Vec<u8> {
    let path = format!("{}/../../fixtures/sarif/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A zip of (path, bytes) entries, deflated, as CodePipeline stores artifacts.
fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(bytes).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// The gate's world: state table, GuardDuty, artifact store, and the outbox.
#[derive(Default)]
struct World {
    state: MemoryState,
    findings: MemoryFindings,
    artifacts: MemoryArtifacts,
    outbox: MemoryOutbox,
    policy: GatePolicy,
    config: Option<GateConfig>,
}

/// The gate's own approval topic: pipelines opt in by naming it as an action's NotificationArn.
const TOPIC: &str = "arn:aws:sns:us-east-1:111111111111:vigil-GateApprovalTopic-1A2B3C";

fn config() -> GateConfig {
    GateConfig {
        call_timeout: Duration::from_millis(200),
        reserve: Duration::ZERO,
        approval_topic: Some(TOPIC.into()),
        region: Some("us-east-1".into()),
        ..GateConfig::default()
    }
}

impl World {
    fn ports(
        &self,
    ) -> GatePorts<
        '_,
        MemoryState,
        MemoryState,
        MemoryFindings,
        MemoryArtifacts,
        MemoryState,
        MemoryState,
        MemoryState,
        MemoryOutbox,
    > {
        self.ports_with(&self.findings, &self.artifacts)
    }

    /// The world's ports with other GuardDuty and artifact stores (failing ones).
    fn ports_with<'a, G, A>(
        &'a self,
        findings: &'a G,
        artifacts: &'a A,
    ) -> GatePorts<
        'a,
        MemoryState,
        MemoryState,
        G,
        A,
        MemoryState,
        MemoryState,
        MemoryState,
        MemoryOutbox,
    > {
        GatePorts {
            freeze: &self.state,
            posture: &self.state,
            findings,
            artifacts,
            deploys: &self.state,
            jobs: &self.state,
            approvals: &self.state,
            alerts: &self.outbox,
        }
    }

    async fn incident(
        &self,
        id: &str,
        severity: Severity,
        tier: Tier,
        threat: Option<ThreatClass>,
    ) {
        let mut resource = Resource::new(ResourceKind::Instance, "i-0abc1234def567890");
        resource.application = Some("web".into());
        resource.environment = Some("prod".into());
        let incident = Incident {
            id: id.into(),
            resource,
            failure_mode: FailureMode::CpuRunaway,
            threat,
            severity,
            confidence: 0.9,
            opened_at: now() - chrono::Duration::minutes(10),
            evidence: Vec::new(),
        };
        assert!(
            self.state
                .record_incident(&incident, tier, now())
                .await
                .unwrap()
        );
    }

    fn finding(&self, severity: f64, app: &str, env: &str) {
        self.findings.add(FindingSummary {
            id: format!("finding-{app}-{env}-{severity}"),
            finding_type: "UnauthorizedAccess:EC2/SSHBruteForce".into(),
            severity,
            title:
                "198.51.100.7 is performing SSH brute force attacks against i-0abc1234def567890."
                    .into(),
            resource: "i-0abc1234def567890".into(),
            application: Some(app.into()),
            environment: Some(env.into()),
            updated_at: now() - chrono::Duration::hours(1),
        });
    }
}

/// A job event as CodePipeline sends it, with an S3 input artifact when `artifact`.
fn job(user_parameters: &str, artifact: bool, token: Option<&str>) -> GateEvent {
    let inputs = if artifact {
        serde_json::json!([{
            "name": "BuildOutput",
            "revision": "6f1e3a2b9c",
            "location": {"type": "S3", "s3Location": {"bucketName": BUCKET, "objectKey": KEY}}
        }])
    } else {
        serde_json::json!([])
    };
    let mut data = serde_json::json!({
        "actionConfiguration": {"configuration": {
            "FunctionName": "vigil-gate", "UserParameters": user_parameters
        }},
        "inputArtifacts": inputs,
        "outputArtifacts": [],
        "artifactCredentials": {
            "secretAccessKey": "secret", "sessionToken": "token",
            "accessKeyId": "AKIAIOSFODNN7EXAMPLE"
        }
    });
    if let Some(t) = token {
        data["continuationToken"] = serde_json::json!(t);
    }
    GateEvent::parse(serde_json::json!({
        "CodePipeline.job": {
            "id": "11111111-abcd-1111-abcd-111111abcdef",
            "accountId": "111111111111",
            "data": data
        }
    }))
    .unwrap()
}

const WEB_PROD: &str = r#"{"target":"web/prod","pipeline":"web-release"}"#;

/// What a case expects of the job's answer.
#[derive(Debug)]
enum Expect {
    Success,
    Failure(&'static [&'static str]),
}

/// Runs the invoke action once with plenty of time and checks the answer CodePipeline got.
async fn check(world: &World, event: GateEvent, expect: Expect) -> JobResult {
    let GateEvent::Job(job) = event else {
        panic!("not a job")
    };
    let cfg = world.config.clone().unwrap_or_else(config);
    let result = gate::handle_job(
        &job,
        &world.policy,
        &cfg,
        &world.ports(),
        now(),
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    let answered = world.state.jobs();
    assert_eq!(
        answered.last().map(|(_, r)| r),
        Some(&result),
        "the job is answered"
    );
    match (&expect, &result) {
        (Expect::Success, JobResult::Success { .. }) => {}
        (Expect::Failure(needles), JobResult::Failure { message }) => {
            for n in *needles {
                assert!(message.contains(n), "{n:?} not in:\n{message}");
            }
            assert!(message.chars().count() <= gate::MAX_FAILURE_MESSAGE);
        }
        _ => panic!("expected {expect:?}, got {result:?}"),
    }
    result
}

#[tokio::test]
async fn a_clean_posture_passes_and_records_the_deploy() {
    let w = World::default();
    w.artifacts.put(
        BUCKET,
        KEY,
        zip(&[
            ("reports/checkov.sarif", &sarif("checkov.template.sarif")),
            ("app/main.js", b"console.log(1)"),
        ]),
    );
    // Below the thresholds: a low incident seen only, a medium finding, another target's.
    w.incident("i-low", Severity::Low, Tier::Observe, None)
        .await;
    w.finding(5.0, "web", "prod");
    w.finding(8.0, "web", "staging");
    let r = check(&w, job(WEB_PROD, true, None), Expect::Success).await;
    let JobResult::Success { summary } = r else {
        unreachable!()
    };
    assert!(summary.contains("15 suppressed in source"), "{summary}");
    let deploy = w.state.last_deploy("web/prod").await.unwrap().unwrap();
    assert_eq!(deploy.pipeline.as_deref(), Some("web-release"));
    assert_eq!(deploy.revision.as_deref(), Some("6f1e3a2b9c"));
    assert_eq!(deploy.at, now());
}

#[tokio::test]
async fn each_check_fails_the_job_with_its_reason_on_its_own_line() {
    let w = World::default();
    w.state
        .freeze("web/prod", "credential exfiltration on i-0abc1234def567890");
    w.incident("inc-1", Severity::High, Tier::Escalate, None)
        .await;
    w.finding(8.0, "web", "prod");
    w.artifacts.put(
        BUCKET,
        KEY,
        zip(&[("scan/checkov.sarif", &sarif("checkov.insecure.sarif"))]),
    );
    let r = check(
        &w,
        job(WEB_PROD, true, None),
        Expect::Failure(&[
            "Vigil gate blocked the deployment of web/prod:",
            "\n- [freeze] deployment freeze: credential exfiltration",
            "\n- [incidents] open incident on i-0abc1234def567890: CPU runaway (HIGH",
            "\n- [guardduty] GuardDuty UnauthorizedAccess:EC2/SSHBruteForce (severity 8.0)",
            "\n- [scans] scan/checkov.sarif: 10 error (at most 0)",
            "CKV_AWS_",
        ]),
    )
    .await;
    assert!(
        w.state.last_deploy("web/prod").await.unwrap().is_none(),
        "no deploy recorded"
    );
    // Printed for the closing note: the message as the pipeline console shows it.
    if let JobResult::Failure { message } = r {
        println!("{message}");
    }
}

#[tokio::test]
async fn a_policy_allow_list_lets_known_findings_through_until_it_expires() {
    let mut w = World::default();
    w.artifacts
        .put(BUCKET, KEY, sarif("checkov.insecure.sarif"));
    let rules = [
        "CKV_AWS_53",
        "CKV_AWS_54",
        "CKV_AWS_20",
        "CKV_AWS_18",
        "CKV_AWS_56",
        "CKV_AWS_55",
        "CKV_AWS_21",
        "CKV_AWS_24",
        "CKV_AWS_23",
        "CKV_AWS_27",
    ];
    w.policy.scans.allow = rules
        .iter()
        .map(|r| vigil_core::gate::sarif::Suppression {
            rule_id: (*r).into(),
            expires: now().date_naive(),
            reason: "demo bucket, tracked in SEC-42".into(),
        })
        .collect();
    check(&w, job(WEB_PROD, true, None), Expect::Success).await;
    for s in &mut w.policy.scans.allow {
        s.expires = now().date_naive() - chrono::Days::new(1);
    }
    check(
        &w,
        job(WEB_PROD, true, None),
        Expect::Failure(&[
            "allow-list entry for CKV_AWS_",
            "expired on 2026-11-21 (demo bucket",
        ]),
    )
    .await;
}

#[tokio::test]
async fn a_short_invocation_continues_with_a_token_and_finishes_with_the_same_verdict() {
    let w = World::default();
    w.finding(9.0, "web", "prod");
    w.artifacts.put(
        BUCKET,
        KEY,
        zip(&[("a.sarif", &sarif("checkov.insecure.sarif"))]),
    );
    let GateEvent::Job(first) = job(WEB_PROD, true, None) else {
        unreachable!()
    };
    let mut token: Option<String> = None;
    let mut invocations = 0;
    let last = loop {
        invocations += 1;
        let GateEvent::Job(j) = job(WEB_PROD, true, token.as_deref()) else {
            unreachable!()
        };
        // The deadline has passed: one check per invocation, then a continuation.
        let r = gate::handle_job(&j, &w.policy, &config(), &w.ports(), now(), Instant::now())
            .await
            .unwrap();
        match r {
            JobResult::Continue { token: t, .. } => {
                assert!(t.len() <= gate::MAX_CONTINUATION_TOKEN);
                token = Some(t);
            }
            other => break other,
        }
        assert!(invocations < 10, "no progress");
    };
    assert_eq!(invocations, 5, "one check per invocation");
    let at_once = gate::handle_job(
        &first,
        &w.policy,
        &config(),
        &w.ports(),
        now(),
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(last, at_once);
    assert!(matches!(last, JobResult::Failure { .. }));
}

#[tokio::test]
async fn a_forged_or_foreign_continuation_token_fails_the_job() {
    let w = World::default();
    check(
        &w,
        job(WEB_PROD, false, Some("not-base64!")),
        Expect::Failure(&["continuation token"]),
    )
    .await;
    // A real token from another target.
    let GateEvent::Job(j) = job(r#"{"target":"api/prod"}"#, false, None) else {
        unreachable!()
    };
    let JobResult::Continue { token, .. } =
        gate::handle_job(&j, &w.policy, &config(), &w.ports(), now(), Instant::now())
            .await
            .unwrap()
    else {
        panic!("expected a continuation")
    };
    check(
        &w,
        job(WEB_PROD, false, Some(&token)),
        Expect::Failure(&["does not belong"]),
    )
    .await;
}

/// GuardDuty that never answers.
struct Stuck;

impl ListFindings for Stuck {
    async fn active_findings(
        &self,
        _: f64,
        _: DateTime<Utc>,
    ) -> Result<Vec<FindingSummary>, PortError> {
        std::future::pending().await
    }
}

/// A region where GuardDuty has no detector.
struct NoDetector;

impl ListFindings for NoDetector {
    async fn active_findings(
        &self,
        _: f64,
        _: DateTime<Utc>,
    ) -> Result<Vec<FindingSummary>, PortError> {
        Err(PortError::new(
            "guardduty:ListDetectors",
            vigil_handlers::ports::PortErrorKind::NotFound,
            "GuardDuty has no detector in this region",
        ))
    }
}

#[tokio::test]
async fn an_account_without_guardduty_leaves_the_gate_unsure_and_says_so() {
    let w = World::default();
    let ports = w.ports_with(&NoDetector, &w.artifacts);
    let GateEvent::Job(j) = job(WEB_PROD, false, None) else {
        unreachable!()
    };
    let run = |policy: GatePolicy| {
        let (j, ports) = (&j, &ports);
        async move {
            gate::handle_job(
                j,
                &policy,
                &config(),
                ports,
                now(),
                Instant::now() + Duration::from_secs(60),
            )
            .await
            .unwrap()
        }
    };
    let r = run(w.policy.clone()).await;
    // A check that cannot look is no pass: the deploy is held until GuardDuty is enabled or
    // the check is turned off in the policy.
    let JobResult::Failure { message } = r else {
        panic!("{r:?}")
    };
    assert!(
        message.contains(
            "[guardduty, unsure] GuardDuty is not enabled in this account and region: it cannot vouch"
        ),
        "{message}"
    );
    // Turned off by the operators: it passes, saying so.
    let mut policy = w.policy.clone();
    policy.guardduty.enabled = false;
    let r = run(policy).await;
    assert!(matches!(r, JobResult::Success { .. }), "{r:?}");
}

/// An artifact store that fails.
struct Broken;

impl FetchArtifact for Broken {
    async fn fetch(
        &self,
        _: &vigil_handlers::ports::ArtifactLocation,
        _: &vigil_handlers::ports::ArtifactCredentials,
        _: u64,
    ) -> Result<vigil_handlers::ports::Fetched, PortError> {
        Err(PortError::new(
            "s3:GetObject",
            vigil_handlers::ports::PortErrorKind::Transient,
            "connection reset by peer",
        ))
    }
}

#[tokio::test]
async fn a_dependency_timeout_or_error_becomes_a_failure_with_its_reason() {
    let w = World::default();
    let ports = w.ports_with(&Stuck, &Broken);
    let GateEvent::Job(j) = job(WEB_PROD, true, None) else {
        unreachable!()
    };
    let started = Instant::now();
    let r = gate::handle_job(
        &j,
        &w.policy,
        &config(),
        &ports,
        now(),
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the timeout cut the wait"
    );
    let JobResult::Failure { message } = r else {
        panic!("{r:?}")
    };
    assert!(
        message.starts_with("Vigil gate could not confirm"),
        "{message}"
    );
    assert!(
        message.contains("[guardduty, unsure] GuardDuty's findings did not answer within 0.2 s"),
        "{message}"
    );
    assert!(message.contains("[scans, unsure] the input artifact could not be read: s3:GetObject failed (Transient): connection reset by peer"), "{message}");
    assert_eq!(
        w.state.jobs().len(),
        1,
        "answered, not left to CodePipeline's timeout"
    );
}

#[tokio::test]
async fn malformed_events_get_a_typed_error_or_a_failure_never_a_pass() {
    let w = World::default();
    // No job id: nothing to answer, a typed error.
    let mut event: serde_json::Value = serde_json::json!({"CodePipeline.job": {"id": "", "data": {
        "actionConfiguration": {"configuration": {"UserParameters": WEB_PROD}},
        "inputArtifacts": [], "outputArtifacts": [], "artifactCredentials": {}}}});
    let GateEvent::Job(j) = GateEvent::parse(event.clone()).unwrap() else {
        unreachable!()
    };
    let r = gate::handle_job(&j, &w.policy, &config(), &w.ports(), now(), Instant::now()).await;
    assert!(matches!(r, Err(GateError::NoJobId)));
    assert!(w.state.jobs().is_empty());
    event["CodePipeline.job"] = serde_json::json!("x");
    assert!(matches!(
        GateEvent::parse(event),
        Err(GateError::Notification(_))
    ));
    assert!(matches!(
        GateEvent::parse(serde_json::json!({"detail": {}})),
        Err(GateError::Notification(_))
    ));
    // Bad parameters: the job fails with why.
    for params in [
        "not json",
        r#"{"target":"web"}"#,
        r#"{"target":"we b/prod"}"#,
        r#"{"target":"web/prod; rm -rf /"}"#,
        r#"{"target":"../../etc/passwd"}"#,
        r#"{"target":"web/prod","pipeline":"$(reboot)"}"#,
        r#"{"target":"web/prod","extra":1}"#,
    ] {
        check(
            &w,
            job(params, false, None),
            Expect::Failure(&["Vigil gate: "]),
        )
        .await;
    }
    check(
        &w,
        job(
            &format!(r#"{{"target":"web/{}"}}"#, "p".repeat(5000)),
            false,
            None,
        ),
        Expect::Failure(&["over 4096"]),
    )
    .await;
}

#[tokio::test]
async fn a_missing_artifact_is_doubt_and_fails_the_job() {
    let w = World::default();
    check(
        &w,
        job(WEB_PROD, true, None),
        Expect::Failure(&[
            "[scans, unsure] the input artifact could not be read",
            "NotFound",
        ]),
    )
    .await;
}

/// Incompressible bytes (xorshift64).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect()
}

#[tokio::test]
async fn hostile_or_oversized_artifacts_are_refused_safely() {
    let w = World {
        config: Some(GateConfig {
            artifact_limits: ArtifactLimits {
                max_artifact_bytes: 256 * 1024,
                max_report_bytes: 1024 * 1024,
                max_total_bytes: 2 * 1024 * 1024,
                ..ArtifactLimits::default()
            },
            ..config()
        }),
        ..World::default()
    };
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "path traversal",
            zip(&[
                ("ok.sarif", &sarif("checkov.template.sarif")),
                ("../../../tmp/evil.sarif", b"{}"),
            ]),
            &[
                "artifact refused",
                "escapes the archive",
                "../../../tmp/evil.sarif",
            ],
        ),
        (
            "zip bomb",
            zip(&[("bomb.sarif", &vec![b' '; 8 * 1024 * 1024])]),
            &["artifact refused", "bomb.sarif", "zip bomb"],
        ),
        (
            "oversized",
            // Incompressible bytes beyond the artifact limit.
            zip(&[("big.bin", &noise(400_000))]),
            &["artifact refused", "over the limit of 262144"],
        ),
        (
            "not an archive",
            b"\x7fELF\x02\x01\x01".to_vec(),
            &["artifact refused", "neither a zip"],
        ),
        (
            "not SARIF",
            zip(&[("r.sarif", br#"{"version":"2.0.0","runs":[]}"#)]),
            &["[scans, unsure] r.sarif: SARIF version \"2.0.0\" is not 2.1.0"],
        ),
    ];
    for (name, bytes, needles) in cases {
        w.artifacts.put(BUCKET, KEY, bytes);
        let GateEvent::Job(j) = job(WEB_PROD, true, None) else {
            unreachable!()
        };
        let r = gate::handle_job(
            &j,
            &w.policy,
            w.config.as_ref().unwrap(),
            &w.ports(),
            now(),
            Instant::now() + Duration::from_secs(60),
        )
        .await
        .unwrap();
        let JobResult::Failure { message } = &r else {
            panic!("{name}: {r:?}")
        };
        for n in needles {
            assert!(message.contains(n), "{name}: {n:?} not in {message}");
        }
    }
    assert!(w.state.last_deploy("web/prod").await.unwrap().is_none());
}

#[tokio::test]
async fn a_required_scan_blocks_when_no_report_is_found() {
    let mut w = World::default();
    w.policy.scans.required = true;
    w.artifacts.put(BUCKET, KEY, zip(&[("app/main.js", b"1")]));
    check(
        &w,
        job(WEB_PROD, true, None),
        Expect::Failure(&["no SARIF report in the artifact"]),
    )
    .await;
    check(
        &w,
        job(WEB_PROD, false, None),
        Expect::Failure(&["no input artifact"]),
    )
    .await;
}

// --- The manual approval action --------------------------------------------------------------

/// CodePipeline's approval notification, in its documented format.
fn approval(custom_data: &str, expires: &str) -> String {
    serde_json::json!({
        "region": "us-east-1",
        "consoleLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/web-release",
        "approval": {
            "pipelineName": "web-release",
            "stageName": "Prod",
            "actionName": "VigilApproval",
            "token": "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
            "expires": expires,
            "externalEntityLink": null,
            "approvalReviewLink": "https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/web-release/Prod/VigilApproval/approve/1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
            "customData": custom_data
        }
    })
    .to_string()
}

const TOKEN: &str = "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d";

/// CodePipeline's side: web-release's Prod/VigilApproval notifies the gate's topic with
/// `custom_data`, and a run waits at it for an approval with [`TOKEN`].
fn waiting(w: &World, custom_data: &str) {
    waiting_on(w, TOPIC, custom_data);
}

/// As [`waiting`], the action notifying `topic`.
fn waiting_on(w: &World, topic: &str, custom_data: &str) {
    w.state.define_approval(
        "web-release",
        "Prod",
        "VigilApproval",
        ApprovalDefinition {
            notification_arn: Some(topic.into()),
            custom_data: Some(custom_data.into()),
        },
    );
    w.state
        .await_approval("web-release", "Prod", "VigilApproval", TOKEN);
}

async fn approve(w: &World, message: &str) -> Result<ApprovalOutcome, GateError> {
    gate::handle_approval(message, &w.policy, &config(), &w.ports(), now()).await
}

#[tokio::test]
async fn approvals_are_approved_when_clean_and_rejected_with_reasons_otherwise() {
    let w = World::default();
    waiting(&w, r#"{"target":"web/prod"}"#);
    let msg = approval(r#"{"target":"web/prod"}"#, "2026-11-29T12:00Z");
    let r = approve(&w, &msg).await.unwrap();
    assert!(matches!(r, ApprovalOutcome::Approved(_)), "{r:?}");
    let answered = w.state.approvals();
    assert_eq!(answered.len(), 1);
    assert!(answered[0].1, "approved");
    assert_eq!(answered[0].0.action.as_str(), "VigilApproval");
    assert!(w.outbox.sent().is_empty(), "no email when clean");

    w.incident(
        "inc-exfil",
        Severity::High,
        Tier::Block,
        Some(ThreatClass::Exfiltration),
    )
    .await;
    // The next run waits at the action.
    waiting(&w, r#"{"target":"web/prod"}"#);
    let r = approve(&w, &msg).await.unwrap();
    let ApprovalOutcome::Rejected(summary) = r else {
        panic!("{r:?}")
    };
    assert!(summary.chars().count() <= gate::MAX_APPROVAL_SUMMARY);
    assert!(summary.contains("exfiltration"), "{summary}");
    let answered = w.state.approvals();
    assert!(!answered[1].1, "rejected");
    let email = &w.outbox.sent()[0];
    assert!(
        email.subject.contains("deploy of web/prod REJECTED"),
        "{}",
        email.subject
    );
    assert!(
        email
            .body
            .contains("[incidents] open incident on i-0abc1234def567890: exfiltration"),
        "{}",
        email.body
    );
    assert!(
        email
            .body
            .contains("See the pipeline: https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/web-release/view?region=us-east-1"),
        "{}",
        email.body
    );
    println!("Subject: {}\n\n{}", email.subject, email.body);
}

#[tokio::test]
async fn uncertain_evidence_is_left_to_people_or_rejected_as_the_policy_says() {
    let mut w = World::default();
    // An escalated incident below the blocking severity: doubt.
    w.incident("inc-med", Severity::Medium, Tier::Escalate, None)
        .await;
    waiting(&w, r#"{"target":"web/prod"}"#);
    let msg = approval(r#"{"target":"web/prod"}"#, "2026-11-29T12:00Z");
    let r = approve(&w, &msg).await.unwrap();
    assert!(matches!(r, ApprovalOutcome::LeftToPeople(_)), "{r:?}");
    assert!(
        w.state.approvals().is_empty(),
        "not answered: people decide"
    );
    let email = &w.outbox.sent()[0];
    assert!(email.subject.contains("NEEDS A PERSON"));
    assert!(
        email
            .body
            .contains("Review and approve or reject: https://"),
        "{}",
        email.body
    );
    assert!(email.body.contains("[incidents, unsure]"));

    w.policy.on_doubt = OnDoubt::Reject;
    assert!(matches!(
        approve(&w, &msg).await.unwrap(),
        ApprovalOutcome::Rejected(_)
    ));
    assert!(!w.state.approvals()[0].1);
}

#[tokio::test]
async fn bad_approval_notifications_get_a_typed_error_and_no_answer() {
    let w = World::default();
    waiting(&w, r#"{"target":"web/prod"}"#);
    for msg in [
        "not json".to_owned(),
        approval(r#"{"target":"web/prod"}"#, "2026-11-22T11:59Z"),
        approval(r#"{"target":"web/prod"}"#, "2026-11-22T11:00:00Z"),
        approval(r#"{"target":"web/prod"}"#, "2026-11-29T12:00Z")
            .replace("web-release", "web release; rm -rf"),
        format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000)),
    ] {
        assert!(
            matches!(approve(&w, &msg).await, Err(GateError::Notification(_))),
            "{}",
            &msg[..60.min(msg.len())]
        );
    }
    assert!(w.state.approvals().is_empty());
    // Unreadable CustomData (the pipeline's own) is doubt, so people are asked.
    waiting(&w, "web/prod");
    let r = approve(&w, &approval("web/prod", "2026-11-29T12:00Z"))
        .await
        .unwrap();
    assert!(matches!(r, ApprovalOutcome::LeftToPeople(_)), "{r:?}");
}

#[tokio::test]
async fn an_sns_delivery_is_routed_to_the_approval_handler() {
    let w = World::default();
    waiting(&w, r#"{"target":"web/prod"}"#);
    let sns = serde_json::json!({"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:111111111111:vigil-approvals:1",
        "Sns": {
            "Type": "Notification", "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:us-east-1:111111111111:vigil-approvals",
            "Subject": "APPROVAL NEEDED: AWS CodePipeline web-release for action VigilApproval",
            "Message": approval(r#"{"target":"web/prod"}"#, "2026-11-29T12:00Z"),
            "Timestamp": "2026-11-22T12:00:00.000Z",
            "SignatureVersion": "1", "Signature": "x", "SigningCertUrl": "https://x", "UnsubscribeUrl": "https://x",
            "MessageAttributes": {}
        }
    }]});
    let out = gate::handle(
        GateEvent::parse(sns).unwrap(),
        &w.policy,
        &config(),
        &w.ports(),
        now(),
        Instant::now(),
    )
    .await
    .unwrap();
    assert_eq!(out["approvals"][0], "approved");
    assert_eq!(w.state.approvals().len(), 1);
}

/// Whoever can publish to the gate's topic, or invoke the gate, can tell it anything: the
/// notification only names an approval, and CodePipeline itself says whether that approval
/// exists, opted in to the gate, and waits for this token. What it does not confirm is refused:
/// not answered, no one emailed (counted for an alarm instead).
#[tokio::test]
async fn an_approval_codepipeline_does_not_confirm_is_refused_and_changes_nothing() {
    let msg = approval(r#"{"target":"web/prod"}"#, "2026-11-29T12:00Z");
    let check = |setup: &dyn Fn(&World), message: &str, why: &str| {
        let w = World::default();
        setup(&w);
        let message = message.to_owned();
        let why = why.to_owned();
        async move {
            let r = approve(&w, &message).await.unwrap();
            let ApprovalOutcome::Refused(reason) = r else {
                panic!("{why}: {r:?}")
            };
            assert!(reason.contains(&why), "{reason}");
            assert!(w.state.approvals().is_empty(), "{why}: answered");
            assert!(w.outbox.sent().is_empty(), "{why}: emailed");
        }
    };
    // A pipeline, stage or action that does not exist (a forged notification).
    check(&|_| {}, &msg, "has no manual approval action").await;
    // Another team's pipeline whose approval does not notify the gate: it never opted in.
    check(
        &|w| {
            waiting_on(
                w,
                "arn:aws:sns:us-east-1:111111111111:release-managers",
                r#"{"target":"web/prod"}"#,
            )
        },
        &msg,
        "has not opted in",
    )
    .await;
    // A token the action is not waiting for (guessed, or from an earlier run).
    check(
        &|w| {
            waiting(w, r#"{"target":"web/prod"}"#);
            w.state.await_approval(
                "web-release",
                "Prod",
                "VigilApproval",
                "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
            );
        },
        &msg,
        "not waiting for an approval with this token",
    )
    .await;
    // A genuine notification delivered again after it was answered (a replay).
    let w = World::default();
    waiting(&w, r#"{"target":"web/prod"}"#);
    assert!(matches!(
        approve(&w, &msg).await.unwrap(),
        ApprovalOutcome::Approved(_)
    ));
    let r = approve(&w, &msg).await.unwrap();
    assert!(matches!(r, ApprovalOutcome::Refused(_)), "{r:?}");
    assert_eq!(w.state.approvals().len(), 1, "answered once");
}

/// The target is the pipeline's own CustomData: a notification that names a clean target for
/// a pipeline that deploys a compromised one is judged on the compromised one.
#[tokio::test]
async fn the_target_is_the_pipelines_own_not_the_notifications() {
    let w = World::default();
    w.incident(
        "inc-exfil",
        Severity::High,
        Tier::Block,
        Some(ThreatClass::Exfiltration),
    )
    .await;
    waiting(&w, r#"{"target":"web/prod"}"#);
    let claims_clean = approval(r#"{"target":"api/prod"}"#, "2026-11-29T12:00Z");
    let r = approve(&w, &claims_clean).await.unwrap();
    let ApprovalOutcome::Rejected(summary) = r else {
        panic!("{r:?}")
    };
    assert!(summary.contains("exfiltration"), "{summary}");
    assert!(!w.state.approvals()[0].1, "rejected");
}

/// A link in the notification never reaches people: Vigil's emails link the console page of
/// the pipeline CodePipeline confirmed.
#[tokio::test]
async fn the_notifications_links_never_reach_an_email() {
    let w = World::default();
    w.incident("inc-med", Severity::Medium, Tier::Escalate, None)
        .await;
    waiting(&w, r#"{"target":"web/prod"}"#);
    let phishing = approval(r#"{"target":"web/prod"}"#, "2026-11-29T12:00Z").replace(
        "https://console.aws.amazon.com/codepipeline/home",
        "https://login-aws.example.net/codepipeline/home",
    );
    let r = approve(&w, &phishing).await.unwrap();
    assert!(matches!(r, ApprovalOutcome::LeftToPeople(_)), "{r:?}");
    let body = &w.outbox.sent()[0].body;
    assert!(!body.contains("example.net"), "{body}");
    assert!(
        body.contains("Review and approve or reject: https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/web-release/view?region=us-east-1"),
        "{body}"
    );
}
