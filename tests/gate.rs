//! The deployment gate's adapters, against moto server where moto implements the API:
//! the state table's posture index, freezes and deploy records (DynamoDB), the artifact read
//! with the job's credentials (S3). moto 5.2.5 does not implement PutJobSuccessResult,
//! PutJobFailureResult or PutApprovalResult, nor GuardDuty's ListFindings/GetFindings: those are
//! tested on the exact request the adapter sends (captured) and on recorded responses
//! (GuardDuty, replayed by the SDK's static replay client).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::time::{Duration, Instant};

use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use chrono::{TimeZone, Utc};
use vigil_aws::{
    artifacts::Artifacts, codepipeline::CodePipeline, dynamodb::StateTable, guardduty::GuardDuty,
};
use vigil_core::domain::{
    FailureMode, Incident, Resource, ResourceKind, Severity, ThreatClass, Tier,
};
use vigil_core::gate::{Deploy, GatePolicy};
use vigil_core::names::PipelineName;
use vigil_handlers::gate::{self, GateConfig, GateEvent, GatePorts};
use vigil_handlers::ports::{
    ApprovalAction, ArtifactCredentials, ArtifactLocation, FetchArtifact, Fetched, JobResult,
    LastDeploy, ListFindings, PortErrorKind, ReadDeploymentFreeze, ReadPosture, RecordDeploy,
    RecordIncident, ReportApproval, ReportJobResult, SetDeploymentFreeze,
};
use vigil_lab::memory::MemoryOutbox;
use vigil_tests as h;

fn incident(id: &str, app: &str, env: &str, opened: chrono::DateTime<Utc>) -> Incident {
    let mut resource = Resource::new(ResourceKind::Instance, "i-0abc1234def567890");
    resource.application = Some(app.into());
    resource.environment = Some(env.into());
    Incident {
        id: id.into(),
        resource,
        failure_mode: FailureMode::Normal,
        threat: Some(ThreatClass::Exfiltration),
        severity: Severity::High,
        confidence: 0.93,
        opened_at: opened,
        evidence: Vec::new(),
    }
}

#[tokio::test]
async fn the_posture_index_finds_a_targets_recent_incidents() {
    let config = h::sdk_config();
    let table = h::create_table(&config).await;
    let state = StateTable::new(&config, &table);
    let now = Utc::now();
    let keep = now + chrono::Duration::days(7);
    for (id, app, env, ago) in [
        ("recent", "web", "prod", 5),
        ("old", "web", "prod", 120),
        ("elsewhere", "web", "staging", 5),
    ] {
        let i = incident(id, app, env, now - chrono::Duration::minutes(ago));
        assert!(state.record_incident(&i, Tier::Block, keep).await.unwrap());
    }
    let marks = state
        .incidents("web/prod", now - chrono::Duration::minutes(60))
        .await
        .unwrap();
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert_eq!(marks[0].incident, "recent");
    assert_eq!(marks[0].what, "exfiltration");
    assert_eq!(marks[0].tier, Tier::Block);
    assert_eq!(marks[0].severity, Severity::High);
}

#[tokio::test]
async fn freezes_and_deploy_records_round_trip_through_the_table() {
    let config = h::sdk_config();
    let table = h::create_table(&config).await;
    let state = StateTable::new(&config, &table);
    let now = Utc::now();
    state
        .set_freeze(
            "web/prod",
            "exfiltration on i-0abc1234def567890",
            now + chrono::Duration::hours(24),
        )
        .await
        .unwrap();
    assert_eq!(
        state.freeze("web/prod", now).await.unwrap().as_deref(),
        Some("exfiltration on i-0abc1234def567890")
    );
    assert_eq!(state.freeze("web/staging", now).await.unwrap(), None);
    assert_eq!(
        state
            .freeze("web/prod", now + chrono::Duration::hours(25))
            .await
            .unwrap(),
        None,
        "an expired freeze is no freeze"
    );

    let deploy = Deploy {
        target: "web/prod".into(),
        pipeline: Some("web-release".into()),
        job_id: "11111111-abcd-1111-abcd-111111abcdef".into(),
        revision: Some("6f1e3a2b9c".into()),
        at: Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap(),
    };
    state
        .record_deploy(&deploy, now + chrono::Duration::days(7))
        .await
        .unwrap();
    assert_eq!(state.last_deploy("web/prod").await.unwrap(), Some(deploy));
    assert_eq!(state.last_deploy("api/prod").await.unwrap(), None);
}

fn zipped(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(bytes).unwrap();
    w.finish().unwrap().into_inner()
}

fn insecure_sarif() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/sarif/checkov.insecure.sarif"
    ))
    .unwrap()
}

async fn artifact_bucket(config: &aws_config::SdkConfig, key: &str, body: Vec<u8>) -> String {
    let s3 = aws_sdk_s3::Client::new(config);
    let bucket = h::unique("codepipeline-artifacts").to_lowercase();
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
    bucket
}

fn job_credentials() -> ArtifactCredentials {
    ArtifactCredentials {
        access_key_id: "ASIAJOBCREDENTIALS01".into(),
        secret_access_key: "job-secret".into(),
        session_token: Some("job-session".into()),
    }
}

#[tokio::test]
async fn the_artifact_is_read_with_the_jobs_credentials_and_bounded() {
    let config = h::sdk_config();
    let body = zipped("reports/checkov.sarif", &insecure_sarif());
    let bucket = artifact_bucket(&config, "web-release/BuildOutpu/abc.zip", body.clone()).await;
    let artifacts = Artifacts::new(&config);
    let at = ArtifactLocation {
        bucket: bucket.clone(),
        key: "web-release/BuildOutpu/abc.zip".into(),
    };
    assert_eq!(
        artifacts
            .fetch(&at, &job_credentials(), 1 << 20)
            .await
            .unwrap(),
        Fetched::Bytes(body.clone())
    );
    assert_eq!(
        artifacts.fetch(&at, &job_credentials(), 100).await.unwrap(),
        Fetched::TooLarge(body.len() as u64),
        "over the limit: refused before reading"
    );
    let missing = ArtifactLocation {
        bucket,
        key: "nope.zip".into(),
    };
    let err = artifacts
        .fetch(&missing, &job_credentials(), 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err.kind, PortErrorKind::Rejected, "{err:?}");
}

/// A recorded request, as the replay client matches it.
fn req(method: &str, uri: &str) -> http::Request<SdkBody> {
    http::Request::builder()
        .method(method)
        .uri(uri)
        .body(SdkBody::empty())
        .unwrap()
}

/// A recorded 200 answer with a JSON body.
fn ok(body: serde_json::Value) -> http::Response<SdkBody> {
    http::Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(SdkBody::from(body.to_string()))
        .unwrap()
}

/// GuardDuty's answers as recorded: the detector, one page of ids, the findings.
fn guardduty_replay() -> (aws_config::SdkConfig, StaticReplayClient) {
    let finding = |id: &str, ty: &str, severity: f64, archived: bool, app: &str| {
        serde_json::json!({
            "accountId": "111111111111",
            "arn": format!("arn:aws:guardduty:us-east-1:111111111111:detector/12abc34d567e8fa901bc2d34e56789f0/finding/{id}"),
            "createdAt": "2026-11-22T10:41:19.457Z",
            "id": id,
            "partition": "aws",
            "region": "us-east-1",
            "resource": {
                "resourceType": "Instance",
                "instanceDetails": {
                    "instanceId": "i-0abc1234def567890",
                    "instanceType": "t3.micro",
                    "tags": [
                        {"key": "aws:autoscaling:groupName", "value": "web-prod-asg"},
                        {"key": "Application", "value": app},
                        {"key": "Environment", "value": "prod"}
                    ]
                }
            },
            "schemaVersion": "2.0",
            "service": {"archived": archived, "count": 4, "detectorId": "12abc34d567e8fa901bc2d34e56789f0", "serviceName": "guardduty"},
            "severity": severity,
            "title": format!("{ty} on i-0abc1234def567890"),
            "type": ty,
            "updatedAt": "2026-11-22T11:02:07.221Z"
        })
    };
    let replay = StaticReplayClient::new(vec![
        ReplayEvent::new(
            req("GET", "https://guardduty.us-east-1.amazonaws.com/detector"),
            ok(serde_json::json!({"detectorIds": ["12abc34d567e8fa901bc2d34e56789f0"]})),
        ),
        ReplayEvent::new(
            req(
                "POST",
                "https://guardduty.us-east-1.amazonaws.com/detector/12abc34d567e8fa901bc2d34e56789f0/findings",
            ),
            ok(
                serde_json::json!({"findingIds": ["f-exfil", "f-archived", "f-other"], "nextToken": ""}),
            ),
        ),
        ReplayEvent::new(
            req(
                "POST",
                "https://guardduty.us-east-1.amazonaws.com/detector/12abc34d567e8fa901bc2d34e56789f0/findings/get",
            ),
            ok(serde_json::json!({"findings": [
                finding("f-exfil", "UnauthorizedAccess:EC2/TorClient", 8.0, false, "web"),
                finding("f-archived", "Backdoor:EC2/C&CActivity.B", 8.0, true, "web"),
                finding("f-other", "CryptoCurrency:EC2/BitcoinTool.B", 8.0, false, "api")
            ]})),
        ),
    ]);
    let config = h::offline_config(replay.clone());
    (config, replay)
}

/// More active findings than the gate weighs: it refuses to weigh a part of them (a target's
/// finding could be on the page it would leave out), and the gate is left unsure.
#[tokio::test]
async fn more_findings_than_the_gate_can_weigh_are_refused_not_truncated() {
    let list = "https://guardduty.us-east-1.amazonaws.com/detector/12abc34d567e8fa901bc2d34e56789f0/findings";
    let mut events = vec![ReplayEvent::new(
        req("GET", "https://guardduty.us-east-1.amazonaws.com/detector"),
        ok(serde_json::json!({"detectorIds": ["12abc34d567e8fa901bc2d34e56789f0"]})),
    )];
    let pages = vigil_aws::guardduty::MAX_FINDINGS / 50;
    for page in 0..pages {
        let ids: Vec<String> = (0..50).map(|i| format!("f-{page}-{i}")).collect();
        events.push(ReplayEvent::new(
            req("POST", list),
            ok(serde_json::json!({"findingIds": ids, "nextToken": format!("page-{}", page + 1)})),
        ));
    }
    let replay = StaticReplayClient::new(events);
    let config = h::offline_config(replay.clone());
    let since = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    let err = GuardDuty::new(&config)
        .active_findings(7.0, since)
        .await
        .unwrap_err();
    assert!(
        vigil_core::error_chain(&err).contains("cannot weigh them all"),
        "{}",
        vigil_core::error_chain(&err)
    );
    // Listed page by page up to the limit; no finding fetched.
    assert_eq!(replay.actual_requests().count(), 1 + pages);
}

#[tokio::test]
async fn guardduty_findings_are_listed_with_criteria_then_fetched_on_recorded_responses() {
    let (config, replay) = guardduty_replay();
    let since = Utc.with_ymd_and_hms(2026, 11, 21, 12, 0, 0).unwrap();
    let findings = GuardDuty::new(&config)
        .active_findings(7.0, since)
        .await
        .unwrap();
    let requests = replay.actual_requests().collect::<Vec<_>>();
    assert_eq!(requests.len(), 3);
    let list: serde_json::Value =
        serde_json::from_slice(requests[1].body().bytes().unwrap()).unwrap();
    let c = &list["findingCriteria"]["criterion"];
    assert_eq!(c["severity"]["greaterThanOrEqual"], 7);
    assert_eq!(
        c["service.archived"]["equals"],
        serde_json::json!(["false"])
    );
    assert_eq!(
        c["updatedAt"]["greaterThanOrEqual"],
        since.timestamp_millis()
    );
    let get: serde_json::Value =
        serde_json::from_slice(requests[2].body().bytes().unwrap()).unwrap();
    assert_eq!(
        get["findingIds"],
        serde_json::json!(["f-exfil", "f-archived", "f-other"])
    );

    let ids: Vec<&str> = findings.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(
        ids,
        ["f-exfil", "f-other"],
        "the archived finding is excluded"
    );
    assert_eq!(findings[0].application.as_deref(), Some("web"));
    assert_eq!(findings[0].environment.as_deref(), Some("prod"));
    assert_eq!(findings[0].resource, "i-0abc1234def567890");
    assert_eq!(findings[0].severity, 8.0);
}

#[tokio::test]
async fn approval_and_continuation_requests_have_the_documented_shape() {
    let (config, rx) = h::capturing_config();
    let action = ApprovalAction {
        pipeline: PipelineName::parse("web-release").unwrap(),
        stage: PipelineName::parse("Prod").unwrap(),
        action: PipelineName::parse("VigilApproval").unwrap(),
        token: "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d".into(),
    };
    CodePipeline::new(&config)
        .answer(&action, false, &"r".repeat(600))
        .await
        .unwrap();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.PutApprovalResult");
    assert_eq!(body["pipelineName"], "web-release");
    assert_eq!(body["stageName"], "Prod");
    assert_eq!(body["actionName"], "VigilApproval");
    assert_eq!(body["token"], "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d");
    assert_eq!(body["result"]["status"], "Rejected");
    assert_eq!(
        body["result"]["summary"].as_str().unwrap().len(),
        512,
        "CodePipeline's limit"
    );

    let (config, rx) = h::capturing_config();
    CodePipeline::new(&config)
        .report(
            "job-9",
            &JobResult::Continue {
                token: "eyJ2IjoxfQ".into(),
                summary: "2 of 5 checks done".into(),
            },
        )
        .await
        .unwrap();
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.PutJobSuccessResult");
    assert_eq!(body["continuationToken"], "eyJ2IjoxfQ");
    assert!(body["executionDetails"].get("percentComplete").is_none());
}

/// The gate through its real adapters: the table and the artifact in moto, GuardDuty replayed,
/// the job answer captured.
#[tokio::test]
async fn the_gate_fails_a_job_on_emulated_state_and_records_a_clean_deploy() {
    let config = h::sdk_config();
    let table = h::create_table(&config).await;
    let state = StateTable::new(&config, &table);
    let key = "web-release/BuildOutpu/abc.zip";
    let bucket = artifact_bucket(&config, key, zipped("checkov.sarif", &insecure_sarif())).await;
    let now = Utc::now();
    state
        .record_incident(
            &incident("inc-1", "web", "prod", now),
            Tier::Block,
            now + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    let (gd_config, _replay) = guardduty_replay();
    let findings = GuardDuty::new(&gd_config);
    let artifacts = Artifacts::new(&config);
    let outbox = MemoryOutbox::default();
    let job = |target: &str| {
        GateEvent::parse(serde_json::json!({"CodePipeline.job": {
            "id": "22222222-abcd-1111-abcd-111111abcdef",
            "accountId": "111111111111",
            "data": {
                "actionConfiguration": {"configuration": {
                    "FunctionName": "vigil-gate",
                    "UserParameters": format!(r#"{{"target":"{target}","pipeline":"web-release"}}"#)
                }},
                "inputArtifacts": [{"name": "BuildOutput", "revision": "6f1e3a2b9c",
                    "location": {"type": "S3", "s3Location": {"bucketName": bucket, "objectKey": key}}}],
                "outputArtifacts": [],
                "artifactCredentials": {"accessKeyId": "ASIAJOBCREDENTIALS01", "secretAccessKey": "s", "sessionToken": "t"}
            }
        }}))
        .unwrap()
    };
    let (pconfig, rx) = h::capturing_config();
    let pipeline = CodePipeline::new(&pconfig);
    let ports = GatePorts {
        freeze: &state,
        posture: &state,
        findings: &findings,
        artifacts: &artifacts,
        deploys: &state,
        jobs: &pipeline,
        approvals: &pipeline,
        alerts: &outbox,
    };
    let out = gate::handle(
        job("web/prod"),
        &GatePolicy::default(),
        &GateConfig::default(),
        &ports,
        now,
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(out["job"], "failed");
    let (target, body) = h::request_json(&rx.expect_request());
    assert_eq!(target, "CodePipeline_20150709.PutJobFailureResult");
    let message = body["failureDetails"]["message"].as_str().unwrap();
    for needle in [
        "Vigil gate blocked the deployment of web/prod:",
        "- [incidents] open incident on i-0abc1234def567890: exfiltration (HIGH, tier block",
        "- [guardduty] GuardDuty UnauthorizedAccess:EC2/TorClient (severity 8.0)",
        "- [scans] checkov.sarif: 10 error (at most 0)",
    ] {
        assert!(message.contains(needle), "{needle:?} not in:\n{message}");
    }
    assert!(state.last_deploy("web/prod").await.unwrap().is_none());

    // Another target, checks that need the replayed or captured services off: it passes, and
    // the deploy is recorded in the table.
    let (pconfig, rx) = h::capturing_config();
    let pipeline = CodePipeline::new(&pconfig);
    let ports = GatePorts {
        jobs: &pipeline,
        approvals: &pipeline,
        ..ports
    };
    let mut policy = GatePolicy::default();
    policy.guardduty.enabled = false;
    policy.scans.enabled = false;
    let out = gate::handle(
        job("web/staging"),
        &policy,
        &GateConfig::default(),
        &ports,
        now,
        Instant::now() + Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(out["job"], "succeeded");
    assert_eq!(
        h::request_json(&rx.expect_request()).0,
        "CodePipeline_20150709.PutJobSuccessResult"
    );
    let deploy = state.last_deploy("web/staging").await.unwrap().unwrap();
    assert_eq!(deploy.revision.as_deref(), Some("6f1e3a2b9c"));
    assert_eq!(deploy.pipeline.as_deref(), Some("web-release"));
}
