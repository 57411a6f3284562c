//! The deployment gate's adapters, against moto server where moto implements the API:
//! the state table's posture index, freezes and deploy records (DynamoDB), the artifact read
//! with the job's credentials (S3), a pipeline's approval action (CodePipeline's GetPipeline).
//! moto 5.2.5 does not implement PutJobSuccessResult, PutJobFailureResult, PutApprovalResult or
//! GetPipelineState, nor GuardDuty's ListFindings/GetFindings: those are tested on the exact
//! request the adapter sends (captured) and on recorded responses (replayed by the SDK's static
//! replay client).
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
use vigil_handlers::ports::{ApprovalDefinition, ReadApproval};
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

/// A role CodePipeline may assume, in moto's IAM (which CreatePipeline checks). IAM's query API
/// through the emulator's endpoint, so the tests need no IAM SDK for one call.
fn pipeline_role(name: &str) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codepipeline.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let mut r = ureq::post(&h::endpoint())
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send_form([
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", trust),
        ])
        .unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    let arn = body
        .split("<Arn>")
        .nth(1)
        .and_then(|s| s.split("</Arn>").next());
    arn.unwrap_or_else(|| panic!("{body}")).to_owned()
}

/// The gate reads an approval action from the pipeline's own definition: the topic it notifies
/// (the pipeline's opt-in) and its CustomData (the target), and nothing that is not a manual
/// approval of that name in that stage.
#[tokio::test]
async fn an_approval_actions_definition_is_read_from_the_pipeline() {
    use aws_sdk_codepipeline::types::{
        ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore,
        ArtifactStoreType, OutputArtifact, PipelineDeclaration, StageDeclaration,
    };
    let config = h::sdk_config();
    let name = h::unique("web-release");
    let role = pipeline_role(&name);
    let kind = |category: ActionCategory, owner: ActionOwner, provider: &str| {
        ActionTypeId::builder()
            .category(category)
            .owner(owner)
            .provider(provider)
            .version("1")
            .build()
            .unwrap()
    };
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(kind(ActionCategory::Source, ActionOwner::Aws, "S3"))
        .configuration("S3Bucket", "web-sources")
        .configuration("S3ObjectKey", "web.zip")
        .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    let topic = "arn:aws:sns:us-east-1:123456789012:vigil-GateApprovalTopic-1A2B3C";
    let approval = ActionDeclaration::builder()
        .name("VigilApproval")
        .action_type_id(kind(ActionCategory::Approval, ActionOwner::Aws, "Manual"))
        .configuration("NotificationArn", topic)
        .configuration("CustomData", r#"{"target":"web/prod"}"#)
        .build()
        .unwrap();
    // An action of another kind under the same name, in another stage.
    let invoke = ActionDeclaration::builder()
        .name("VigilApproval")
        .action_type_id(kind(ActionCategory::Invoke, ActionOwner::Aws, "Lambda"))
        .configuration("FunctionName", "vigil-gate")
        .build()
        .unwrap();
    let stage = |n: &str, a: ActionDeclaration| {
        StageDeclaration::builder()
            .name(n)
            .actions(a)
            .build()
            .unwrap()
    };
    aws_sdk_codepipeline::Client::new(&config)
        .create_pipeline()
        .pipeline(
            PipelineDeclaration::builder()
                .name(&name)
                .role_arn(role)
                .artifact_store(
                    ArtifactStore::builder()
                        .r#type(ArtifactStoreType::S3)
                        .location("web-artifacts")
                        .build()
                        .unwrap(),
                )
                .stages(stage("Source", source))
                .stages(stage("Check", invoke))
                .stages(stage("Prod", approval))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let cp = CodePipeline::new(&config);
    let p = |s: &str| PipelineName::parse(s).unwrap();
    let read = |stage: &'static str| {
        let (cp, pipeline) = (&cp, p(&name));
        async move {
            cp.approval_definition(&pipeline, &p(stage), &p("VigilApproval"))
                .await
        }
    };
    assert_eq!(
        read("Prod").await.unwrap(),
        Some(ApprovalDefinition {
            notification_arn: Some(topic.into()),
            custom_data: Some(r#"{"target":"web/prod"}"#.into()),
        })
    );
    assert_eq!(read("Check").await.unwrap(), None, "not a manual approval");
    assert_eq!(read("Source").await.unwrap(), None, "no such action there");
    let missing = cp
        .approval_definition(&p(&h::unique("nope")), &p("Prod"), &p("VigilApproval"))
        .await
        .unwrap_err();
    assert_eq!(missing.kind, PortErrorKind::NotFound, "{missing:?}");
}

/// GetPipelineState, on recorded answers: the token of the approval an action waits for now,
/// and none once it is answered.
#[tokio::test]
async fn the_waiting_token_comes_from_the_pipelines_state() {
    let state = |status: &str| {
        ok(serde_json::json!({
            "pipelineName": "web-release",
            "pipelineVersion": 3,
            "stageStates": [
                {"stageName": "Source", "actionStates": [{"actionName": "Source",
                    "latestExecution": {"status": "Succeeded"}}]},
                {"stageName": "Prod", "actionStates": [{"actionName": "VigilApproval",
                    "latestExecution": {"actionExecutionId": "7d1c9a3e-0f6b-4c2a-9e8d-5b4a3c2d1e0f",
                        "status": status, "token": "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
                        "lastStatusChange": 1764590400.0}}]}
            ]
        }))
    };
    let url = "https://codepipeline.us-east-1.amazonaws.com/";
    let replay = StaticReplayClient::new(vec![
        ReplayEvent::new(req("POST", url), state("InProgress")),
        ReplayEvent::new(req("POST", url), state("Succeeded")),
    ]);
    let cp = CodePipeline::new(&h::offline_config(replay.clone()));
    let p = |s: &str| PipelineName::parse(s).unwrap();
    let (pipeline, stage, action) = (p("web-release"), p("Prod"), p("VigilApproval"));
    let waiting = || cp.waiting_token(&pipeline, &stage, &action);
    assert_eq!(
        waiting().await.unwrap().as_deref(),
        Some("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d")
    );
    assert_eq!(waiting().await.unwrap(), None, "answered: nothing waits");
    let requests = replay.actual_requests().collect::<Vec<_>>();
    let (target, body) = h::request_json(requests[0]);
    assert_eq!(target, "CodePipeline_20150709.GetPipelineState");
    assert_eq!(body, serde_json::json!({"name": "web-release"}));
}
