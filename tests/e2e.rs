//! End to end through the built function binaries: each stage runs as its own process behind
//! a local Lambda Runtime API (`cargo lambda watch`), configured by environment variables as
//! the template configures it, against moto. The test drives the stages in the order the
//! state machine does and hands each one the previous one's JSON.
//!
//! Run with `make e2e` (it starts moto and needs `cargo lambda`, which `.ci/run` installs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_tests as h;

/// One function's Runtime API: `cargo lambda watch` for its package on a free port, stopped
/// on drop. (The workspace's default members leave the functions out, so each package gets its
/// own watcher.)
struct Watch {
    child: Child,
    port: u16,
}

impl Watch {
    /// Starts the Runtime API of `package` with the functions' environment.
    fn start(package: &str, env: &[(&str, String)]) -> Watch {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let log = std::fs::File::create(format!("{root}/target/e2e-{package}.log")).unwrap();
        let mut cmd = Command::new("cargo");
        // A process group of its own, so that stopping it stops the functions it started.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.current_dir(root)
            .args(["lambda", "watch", "--ignore-changes", "--package", package])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.args(["--env-var", &format!("{k}={v}")]);
        }
        let child = cmd.spawn().expect(
            "`cargo lambda` is not installed: `make e2e` installs it (pip install cargo-lambda)",
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "cargo lambda watch did not listen on {port} (see target/e2e-{package}.log)"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        Watch { child, port }
    }

    /// Invokes one function with `payload` and returns its answer. The first invocation of a
    /// function builds it, hence the long timeout.
    fn invoke(&self, function: &str, payload: &Value) -> Value {
        let url = format!(
            "http://127.0.0.1:{}/2015-03-31/functions/{function}/invocations",
            self.port
        );
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(900)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent
            .post(&url)
            .send_json(payload)
            .unwrap_or_else(|e| panic!("invoking {function}: {e}"));
        let status = response.status();
        let body: Value = response
            .body_mut()
            .read_json()
            .unwrap_or_else(|e| panic!("{function} answered {status} without JSON: {e}"));
        assert!(
            status.is_success() && body.get("errorType").is_none(),
            "{function} failed ({status}): {body}"
        );
        body
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The watcher and the function processes it started: its whole process group.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The functions' Runtime APIs.
struct Functions(Vec<(&'static str, Watch)>);

/// The state machine's four stages.
const STAGES: [&str; 4] = [
    "vigil-ingest",
    "vigil-score",
    "vigil-decide",
    "vigil-remediate",
];

impl Functions {
    /// The state machine's four stages.
    fn start(env: &[(&str, String)]) -> Functions {
        Functions::of(&STAGES, env)
    }

    fn of(packages: &[&'static str], env: &[(&str, String)]) -> Functions {
        Functions(
            packages
                .iter()
                .map(|f| (*f, Watch::start(f, env)))
                .collect(),
        )
    }

    fn invoke(&self, function: &str, payload: &Value) -> Value {
        let (_, watch) = self
            .0
            .iter()
            .find(|(f, _)| *f == function)
            .unwrap_or_else(|| panic!("no function {function}"));
        watch.invoke(function, payload)
    }
}

/// The containment runbook's name, as the template passes it to remediate.
const QUARANTINE_DOCUMENT: &str = "vigil-ContainInstanceDocument-AbC123";

/// The functions' environment, as the template sets it, pointed at the emulator.
fn environment(stack: &h::Stack) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_ENDPOINT_URL", h::endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_MAX_ATTEMPTS", "1".into()),
        ("VIGIL_MODE", "enforce".into()),
        ("VIGIL_TABLE", stack.table.clone()),
        ("VIGIL_TOPIC_ARN", stack.topic.clone()),
        ("VIGIL_KILL_SWITCH_PARAMETER", stack.kill_switch.clone()),
        ("VIGIL_POLICY_PARAMETER", stack.policy.clone()),
        ("VIGIL_RULES_PARAMETER", stack.rules.clone()),
        ("VIGIL_AUDIT_BUCKET", stack.audit_bucket.clone()),
        ("VIGIL_DETECTOR_BUCKET", stack.detector_bucket.clone()),
        ("VIGIL_ACCOUNT_ID", "123456789012".into()),
        // A generated name, as CloudFormation gives the stack's runbook.
        ("VIGIL_QUARANTINE_DOCUMENT", QUARANTINE_DOCUMENT.into()),
        // The gate's approval topic (the gate reads it at start; this suite runs its jobs).
        (
            "VIGIL_APPROVAL_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:vigil-GateApprovalTopic-AbC123".into(),
        ),
    ];
    // CloudWatch speaks CBOR, which moto does not: ministack answers it when `make e2e` runs it.
    if let Ok(url) = std::env::var(h::CLOUDWATCH_ENDPOINT_VAR) {
        env.push(("AWS_ENDPOINT_URL_CLOUDWATCH", url));
    }
    env
}

/// One event through ingest, score, decide and remediate, as the state machine passes it on:
/// the Decide state adds the execution id, the Map state hands remediate one decision at a
/// time. Returns each decision with its outcome.
fn deliver(watch: &Functions, event: &Value, execution: &str) -> Vec<(Value, Value)> {
    let observed = watch.invoke("vigil-ingest", event);
    let scored = watch.invoke("vigil-score", &observed);
    let decisions = watch.invoke(
        "vigil-decide",
        &json!({
            "event_id": scored["event_id"],
            "scored": scored["scored"],
            "execution_id": execution,
        }),
    );
    decisions["decisions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|d| {
            let outcome = watch.invoke("vigil-remediate", &d);
            (d, outcome)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cpu_alarm_through_the_built_functions_replaces_the_instance_and_tells_people() {
    let stack = h::Stack::new().await;
    let tap = h::tap_topic(&stack.config, &stack.topic).await;
    let (_, instances) = h::create_group(&stack.config, 3).await;
    let target = instances[0].clone();
    let watch = Functions::start(&environment(&stack));

    let mut event = h::fixture_json("alarm-cpu-high.json");
    event["id"] = json!(h::unique("event"));
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        json!(target);
    let results = tokio::task::spawn_blocking({
        let event = event.clone();
        move || {
            let first = deliver(&watch, &event, "execution-1");
            // The same event delivered again (a second execution) acts on nothing.
            let again = deliver(&watch, &event, "execution-2");
            (first, again)
        }
    })
    .await
    .unwrap();
    let (first, again) = results;

    assert_eq!(first.len(), 1, "{first:?}");
    let (decision, outcome) = &first[0];
    assert_eq!(decision["tier"], "auto-heal", "{decision}");
    assert_eq!(outcome["status"], "verified", "{outcome}");
    assert_eq!(
        h::instance_health(&stack.config, &target).await,
        "Unhealthy"
    );
    for other in &instances[1..] {
        assert_eq!(h::instance_health(&stack.config, other).await, "Healthy");
    }
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].0["tier"], "observe", "{}", again[0].0);
    assert_eq!(again[0].1["status"], "not_acted", "{}", again[0].1);

    // What a subscriber to the alert topic received.
    let tapped = h::tapped(&stack.config, &tap).await;
    assert_eq!(tapped.len(), 1, "one email for one action: {tapped:?}");
    let n = &tapped[0];
    assert_eq!(n["MessageId"].as_str(), outcome["notification_id"].as_str());
    let subject = n["Subject"].as_str().unwrap();
    assert!(
        subject.contains(&target) && subject.contains("CPU runaway"),
        "{subject}"
    );
    let body = n["Message"].as_str().unwrap();
    assert!(body.contains("rule:replace-on-cpu-runaway"), "{body}");
    assert_eq!(n["MessageAttributes"]["tier"]["Value"], "auto-heal", "{n}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_functions_restarted_mid_incident_resume_from_durable_state() {
    let stack = h::Stack::new().await;
    let (_, instances) = h::create_group(&stack.config, 3).await;
    let target = instances[0].clone();
    let env = environment(&stack);

    let mut event = h::fixture_json("alarm-cpu-high.json");
    event["id"] = json!(h::unique("event"));
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        json!(target);
    let (outcome, again) = tokio::task::spawn_blocking(move || {
        // Decided, then every function process goes away before remediate runs.
        let functions = Functions::start(&env);
        let observed = functions.invoke("vigil-ingest", &event);
        let scored = functions.invoke("vigil-score", &observed);
        let decisions = functions.invoke(
            "vigil-decide",
            &json!({"event_id": scored["event_id"], "scored": scored["scored"], "execution_id": "execution-1"}),
        );
        drop(functions);
        // Fresh processes, nothing in memory: the state machine's next step runs on them.
        let functions = Functions::start(&env);
        let decision = decisions["decisions"][0].clone();
        let outcome = functions.invoke("vigil-remediate", &decision);
        // The event delivered again after the restart: the claim in the state table holds.
        let again = deliver(&functions, &event, "execution-2");
        (outcome, again)
    })
    .await
    .unwrap();

    assert_eq!(outcome["status"], "verified", "{outcome}");
    assert_eq!(
        h::instance_health(&stack.config, &target).await,
        "Unhealthy"
    );
    assert_eq!(again[0].0["tier"], "observe", "{}", again[0].0);
    assert!(
        again[0].0["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == "dedup"),
        "{}",
        again[0].0
    );
    assert_eq!(h::sns_sent(&stack.topic).len(), 1);
}

/// The CPU alarm fixture on `instance`, with a fresh event id.
fn cpu_alarm(instance: &str) -> Value {
    let mut event = h::fixture_json("alarm-cpu-high.json");
    event["id"] = json!(h::unique("event"));
    event["detail"]["configuration"]["metrics"][0]["metricStat"]["metric"]["dimensions"]["InstanceId"] =
        json!(instance);
    event
}

/// The functions' environment with AWS behind `proxy`, retrying as deployed (the SDK's
/// standard mode).
fn behind(stack: &h::Stack, proxy: &h::FaultProxy) -> Vec<(&'static str, String)> {
    environment(stack)
        .into_iter()
        .filter(|(k, _)| *k != "AWS_MAX_ATTEMPTS")
        .map(|(k, v)| match k {
            "AWS_ENDPOINT_URL" => (k, proxy.url.clone()),
            _ => (k, v),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_faults_are_retried_and_one_that_persists_is_told_to_people() {
    let stack = h::Stack::new().await;
    let tap = h::tap_topic(&stack.config, &stack.topic).await;
    let (_, first) = h::create_group(&stack.config, 3).await;
    let (_, second) = h::create_group(&stack.config, 3).await;

    // Transient faults on a fixed pattern: every fourth request, in turn throttled, answered
    // 503 or reset (the SDK's standard mode makes three attempts, so a call meets at most
    // one fault of this pattern).
    let flaky = h::FaultProxy::start(&h::endpoint(), |n, _| match (n % 4, (n / 4) % 3) {
        (3, 0) => Some(h::Fault::Throttle),
        (3, 1) => Some(h::Fault::Unavailable),
        (3, _) => Some(h::Fault::Reset),
        _ => None,
    });
    // A fault that persists: Auto Scaling refuses every SetInstanceHealth.
    let broken = h::FaultProxy::start(&h::endpoint(), |_, request| {
        request
            .contains("Action=SetInstanceHealth")
            .then_some(h::Fault::Unavailable)
    });
    // A hung endpoint: the first SetInstanceHealth gets no answer for two minutes.
    let (_, third) = h::create_group(&stack.config, 3).await;
    let hung = h::FaultProxy::start(&h::endpoint(), |_, request| {
        static HELD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        (request.contains("Action=SetInstanceHealth")
            && !HELD.swap(true, std::sync::atomic::Ordering::SeqCst))
        .then_some(h::Fault::Hold(120))
    });
    let (env_flaky, env_broken, env_hung) = (
        behind(&stack, &flaky),
        behind(&stack, &broken),
        behind(&stack, &hung),
    );
    let (a, b, c) = (first[0].clone(), second[0].clone(), third[0].clone());
    let (healed, failed, waited) = tokio::task::spawn_blocking(move || {
        let healed = deliver(&Functions::start(&env_flaky), &cpu_alarm(&a), "execution-1");
        let failed = deliver(
            &Functions::start(&env_broken),
            &cpu_alarm(&b),
            "execution-2",
        );
        let started = std::time::Instant::now();
        let waited = deliver(&Functions::start(&env_hung), &cpu_alarm(&c), "execution-3");
        (healed, failed, (waited, started.elapsed()))
    })
    .await
    .unwrap();

    // The hung call was abandoned at its attempt timeout and retried: healed once, without
    // waiting out the hang (a bound, not a benchmark).
    let (waited, took) = waited;
    assert_eq!(hung.counts().1, 1);
    assert_eq!(waited[0].1["status"], "verified", "{}", waited[0].1);
    assert_eq!(
        h::instance_health(&stack.config, &third[0]).await,
        "Unhealthy"
    );
    assert!(
        took < std::time::Duration::from_secs(100),
        "the hang was waited out: {took:?}"
    );

    // Retried through every fault: acted once, verified, told once.
    let (requests, injected) = flaky.counts();
    assert!(injected >= 5, "{injected} faults in {requests} requests");
    assert_eq!(healed.len(), 1);
    assert_eq!(healed[0].1["status"], "verified", "{}", healed[0].1);
    assert_eq!(
        h::instance_health(&stack.config, &first[0]).await,
        "Unhealthy"
    );

    // The persistent fault: the action failed, nothing changed, and people are told so.
    let (_, refused) = broken.counts();
    assert!(refused >= 1);
    assert_eq!(failed[0].1["status"], "failed", "{}", failed[0].1);
    assert_eq!(
        h::instance_health(&stack.config, &second[0]).await,
        "Healthy"
    );

    let tapped = h::tapped(&stack.config, &tap).await;
    let subjects: Vec<&str> = tapped
        .iter()
        .filter_map(|n| n["Subject"].as_str())
        .collect();
    assert_eq!(subjects.len(), 3, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .any(|s| s.contains(&first[0]) && s.contains("HEALED")),
        "{subjects:?}"
    );
    assert!(
        subjects
            .iter()
            .any(|s| s.contains(&second[0]) && s.contains("ACTION FAILED")),
        "{subjects:?}"
    );
    eprintln!(
        "faults: {injected} injected in {requests} requests; {refused} SetInstanceHealth refused; one held, answered after {took:?}"
    );
}

/// The automation execution the stand-in SSM starts.
const EXECUTION: &str = "4105a4fc-f944-11e6-9d32-0123456789ab";

/// Answers for the calls moto does not implement (SSM Automation; CodePipeline's job results;
/// GuardDuty's ListFindings, answered with none), every other request forwarded to moto: the
/// test then checks those requests' shape.
fn stand_ins(_: u32, request: &str) -> Option<h::Fault> {
    use h::Fault::Emulate;
    let line = request.lines().next().unwrap_or_default();
    if line.starts_with("POST /detector/") && line.contains("/findings HTTP/") {
        Some(Emulate(r#"{"findingIds":[]}"#))
    } else if request.contains("AmazonSSM.StartAutomationExecution") {
        Some(Emulate(
            r#"{"AutomationExecutionId":"4105a4fc-f944-11e6-9d32-0123456789ab"}"#,
        ))
    } else if request.contains("AmazonSSM.GetAutomationExecution") {
        Some(Emulate(
            r#"{"AutomationExecution":{"AutomationExecutionId":"4105a4fc-f944-11e6-9d32-0123456789ab","AutomationExecutionStatus":"Success"}}"#,
        ))
    } else if request.contains("CodePipeline_20150709.PutJobFailureResult")
        || request.contains("CodePipeline_20150709.PutJobSuccessResult")
    {
        Some(Emulate("{}"))
    } else {
        None
    }
}

/// Tags an Auto Scaling group (propagated to new instances, as a stack would tag it).
async fn tag_group(config: &aws_config::SdkConfig, group: &str, tags: &[(&str, &str)]) {
    let tags = tags.iter().map(|(k, v)| {
        aws_sdk_autoscaling::types::Tag::builder()
            .resource_id(group)
            .resource_type("auto-scaling-group")
            .key(*k)
            .value(*v)
            .propagate_at_launch(true)
            .build()
    });
    aws_sdk_autoscaling::Client::new(config)
        .create_or_update_tags()
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .expect("CreateOrUpdateTags");
}

/// A GuardDuty fixture with its account set to the stack's and `edit` applied.
fn finding(fixture: &str, edit: impl FnOnce(&mut Value)) -> Value {
    let mut event = h::fixture_json(fixture);
    event["id"] = json!(h::unique("event"));
    edit(&mut event);
    event
}

/// A CodePipeline job for the gate on `target`, without an input artifact.
fn gate_job(target: &str) -> Value {
    let mut job = h::fixture_json("sources/aws_lambda_events/example-codepipeline_job-event.json");
    let data = &mut job["CodePipeline.job"]["data"];
    data["actionConfiguration"]["configuration"]["UserParameters"] = json!(format!(
        r#"{{"target":"{target}","pipeline":"shop-release"}}"#
    ));
    data["inputArtifacts"] = json!([]);
    // A first invocation: the fixture's placeholder continuation token goes.
    data.as_object_mut().unwrap().remove("continuationToken");
    job
}

/// Runs a gate job as CodePipeline does: while the gate answers with a continuation token, the
/// job is invoked again with it. The final answer and the number of invocations.
fn gate_until_answered(gate: &Functions, proxy: &h::FaultProxy, target: &str) -> (Value, usize) {
    let mut job = gate_job(target);
    for n in 1..=20 {
        let answer = gate.invoke("vigil-gate", &job);
        if answer["job"] != "continuing" {
            return (answer, n);
        }
        let sent = proxy.emulated("CodePipeline_20150709.PutJobSuccessResult");
        let token = sent.last().unwrap()["continuationToken"].clone();
        assert!(
            token.is_string(),
            "a continuation carries its token: {sent:?}"
        );
        job["CodePipeline.job"]["data"]["continuationToken"] = token;
    }
    panic!("the gate did not answer {target} within 20 invocations");
}

#[tokio::test(flavor = "multi_thread")]
async fn threats_are_contained_and_the_gate_then_holds_the_targets_deployments() {
    let stack = h::Stack::new().await;
    let tap = h::tap_topic(&stack.config, &stack.topic).await;
    let (group, instances) = h::create_group(&stack.config, 2).await;
    tag_group(
        &stack.config,
        &group,
        &[("application", "shop"), ("environment", "prod")],
    )
    .await;
    let miner = instances[0].clone();
    // GuardDuty is on (moto keeps the detector; the stand-in answers ListFindings).
    aws_sdk_guardduty::Client::new(&stack.config)
        .create_detector()
        .enable(true)
        .send()
        .await
        .expect("CreateDetector");
    let proxy = h::FaultProxy::start(&h::endpoint(), stand_ins);
    let env = behind(&stack, &proxy);

    // Crypto-mining on an instance of shop/prod; then a key used from outside AWS.
    let mined = finding("sources/guardduty-crypto-instance.json", |v| {
        v["detail"]["resource"]["instanceDetails"]["instanceId"] = json!(miner);
    });
    let leaked = finding("sources/guardduty-credential-exfiltration.json", |_| {});
    let stand_in = proxy.clone();
    let (contained, deactivated, gate) = tokio::task::spawn_blocking(move || {
        let functions = Functions::start(&env);
        let contained = deliver(&functions, &mined, "execution-1");
        let deactivated = deliver(&functions, &leaked, "execution-2");
        drop(functions);
        let gate = Functions::of(&["vigil-gate"], &env);
        let answer = gate_until_answered(&gate, &stand_in, "shop/prod");
        let other = gate_until_answered(&gate, &stand_in, "blog/prod");
        (contained, deactivated, (answer, other))
    })
    .await
    .unwrap();

    // The instance: quarantined by the stack's containment runbook, verified, and its target frozen.
    assert_eq!(contained.len(), 1, "{contained:?}");
    let (decision, outcome) = &contained[0];
    assert_eq!(decision["tier"], "block", "{decision}");
    assert_eq!(outcome["status"], "verified", "{outcome}");
    let cites = |d: &Value, code: &str| {
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["code"] == code)
    };
    assert!(cites(decision, "gate:freeze"), "{decision}");
    assert!(
        outcome["detail"].as_str().unwrap().contains(EXECUTION),
        "{outcome}"
    );
    let started = proxy.emulated("AmazonSSM.StartAutomationExecution");
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(started[0]["DocumentName"], QUARANTINE_DOCUMENT);
    assert_eq!(started[0]["Parameters"]["InstanceId"], json!([miner]));
    // Only the miner: the other instance of the group is left alone.
    assert_eq!(
        h::instance_health(&stack.config, &instances[1]).await,
        "Healthy"
    );

    // The key: deactivated by the stack's runbook.
    assert_eq!(deactivated.len(), 1, "{deactivated:?}");
    assert_eq!(deactivated[0].0["tier"], "block", "{}", deactivated[0].0);
    assert_eq!(
        deactivated[0].1["status"], "verified",
        "{}",
        deactivated[0].1
    );
    assert_eq!(started[1]["DocumentName"], "Vigil-DeactivateAccessKey");
    assert_eq!(
        started[1]["Parameters"]["AccessKeyId"],
        json!(["ASIAQ5EXAMPLEKEY1234"])
    );
    assert!(
        !proxy
            .emulated("AmazonSSM.GetAutomationExecution")
            .is_empty()
    );

    // The gate, asked about shop/prod afterwards, fails the job and says why; another target
    // passes.
    let ((answer, held_after), (other, invocations)) = gate;
    assert_eq!(other["job"], "succeeded", "{other}");
    let succeeded = proxy.emulated("CodePipeline_20150709.PutJobSuccessResult");
    assert_eq!(
        succeeded.len(),
        held_after - 1 + invocations,
        "one job result per invocation, continuations then the answer: {:?}",
        succeeded
            .iter()
            .map(|r| r.get("continuationToken").is_some())
            .collect::<Vec<_>>()
    );
    assert!(
        succeeded.last().unwrap().get("continuationToken").is_none(),
        "the last one ends the job: {succeeded:?}"
    );
    eprintln!(
        "gate: shop/prod failed after {held_after} invocation(s), blog/prod passed after {invocations}"
    );
    assert_eq!(answer["job"], "failed", "{answer}");
    let failed = proxy.emulated("CodePipeline_20150709.PutJobFailureResult");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let message = failed[0]["failureDetails"]["message"].as_str().unwrap();
    // The freeze decide set, naming the incident and the decision (the gate stops at the
    // first check that blocks).
    for needle in [
        "Vigil gate blocked the deployment of shop/prod:",
        &format!("- [freeze] deployment freeze: credential compromise on {miner} (incident "),
        ":quarantine_instance)",
    ] {
        assert!(message.contains(needle), "{needle:?} not in:\n{message}");
    }
    assert_eq!(failed[0]["jobId"], "11111111-abcd-1111-abcd-111111abcdef");

    // People heard of both threats.
    let tapped = h::tapped(&stack.config, &tap).await;
    let subjects: Vec<&str> = tapped
        .iter()
        .filter_map(|n| n["Subject"].as_str())
        .collect();
    assert!(subjects.iter().any(|s| s.contains(&miner)), "{subjects:?}");
    assert!(
        subjects.iter().any(|s| s.contains("ASIAQ5EXAMPLEKEY1234")),
        "{subjects:?}"
    );
}

/// A request to the approve function's URL, in Lambda's function URL payload (version 2.0): a
/// link followed (GET, the token in the query) or the confirming form posted (POST, the token in
/// the body).
fn url_request(method: &str, token: &str) -> Value {
    let (query, body) = match method {
        "POST" => (String::new(), format!("t={token}")),
        _ => (format!("t={token}"), String::new()),
    };
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": query,
        "headers": {"accept": "text/html", "host": "abcdefg.lambda-url.us-east-1.on.aws",
                    "content-type": "application/x-www-form-urlencoded"},
        "queryStringParameters": if method == "POST" { json!({}) } else { json!({"t": token}) },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "abcdefg",
            "domainName": "abcdefg.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abcdefg",
            "http": {"method": method, "path": "/", "protocol": "HTTP/1.1",
                     "sourceIp": "198.51.100.7", "userAgent": "Mozilla/5.0"},
            "requestId": h::unique("request"),
            "routeKey": "$default",
            "stage": "$default",
            "time": "22/Nov/2026:15:00:00 +0000",
            "timeEpoch": 1_795_359_600_000_i64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_approval_email_link_runs_the_action_once_through_the_approve_function() {
    let stack = h::Stack::new().await;
    let tap = h::tap_topic(&stack.config, &stack.topic).await;
    let (_, instances) = h::create_group(&stack.config, 2).await;
    let target = instances[0].clone();
    let ssm = aws_sdk_ssm::Client::new(&stack.config);
    // The operators' policy: CPU runaways need a person's approval.
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/policy/default.yaml"
    ))
    .unwrap();
    let approval = policy.replace(
        "ladder: [restart_service, replace_instance]\n    tier: auto-heal\n  - name: restart-on-memory-leak",
        "ladder: [restart_service, replace_instance]\n    tier: approval\n  - name: restart-on-memory-leak",
    );
    assert_ne!(approval, policy, "the bundled policy's CPU rule moved");
    // The bundled policy starts in dry-run; these operators have switched it on.
    let approval = approval.replacen("mode: dry-run", "mode: enforce", 1);
    ssm.put_parameter()
        .name(&stack.policy)
        .value(approval)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .tier(aws_sdk_ssm::types::ParameterTier::Advanced)
        .send()
        .await
        .expect("PutParameter (policy)");
    // The links' signing key, a SecureString as operators store it.
    let key = format!("/{}/approval-key", h::unique("vigil"));
    ssm.put_parameter()
        .name(&key)
        .value("k".repeat(48))
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("PutParameter (key)");
    let mut env = environment(&stack);
    env.push(("VIGIL_APPROVAL_URL", "https://approve.example/".into()));
    env.push(("VIGIL_APPROVAL_KEY_PARAMETER", key));

    let alarm = cpu_alarm(&target);
    let functions = tokio::task::spawn_blocking(move || {
        let mut packages = STAGES.to_vec();
        packages.push("vigil-approve");
        let functions = Functions::of(&packages, &env);
        let asked = deliver(&functions, &alarm, "execution-1");
        (functions, asked)
    })
    .await
    .unwrap();
    let (functions, asked) = functions;
    let functions = std::sync::Arc::new(functions);
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].0["tier"], "approval", "{}", asked[0].0);
    assert_eq!(asked[0].1["status"], "not_acted", "{}", asked[0].1);
    assert_eq!(
        h::instance_health(&stack.config, &target).await,
        "Healthy",
        "nothing is done before a person approves"
    );

    // The email a subscriber received carries the signed links.
    let tapped = h::tapped(&stack.config, &tap).await;
    assert_eq!(tapped.len(), 1, "{tapped:?}");
    let body = tapped[0]["Message"].as_str().unwrap();
    let link = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("Approve: "))
        .unwrap_or_else(|| panic!("no approve link in:\n{body}"))
        .to_owned();
    assert!(link.starts_with("https://approve.example"), "{link}");
    let query = link.split_once('?').unwrap().1.to_owned();
    let token = query.strip_prefix("t=").unwrap().to_owned();

    // A tampered link, then the link followed (by a mail scanner, say), then the page's button
    // pressed, then pressed again.
    let send = move |method: &'static str, t: String| {
        let functions = functions.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                functions.invoke("vigil-approve", &url_request(method, &t))
            })
            .await
            .unwrap()
        }
    };
    let mut tampered = token.clone().into_bytes();
    let mid = tampered.len() / 2;
    tampered[mid] = if tampered[mid] == b'A' { b'B' } else { b'A' };
    let forged = send("POST", String::from_utf8(tampered).unwrap()).await;
    assert!(
        [400, 403].contains(&forged["statusCode"].as_i64().unwrap()),
        "{forged}"
    );
    assert_eq!(
        h::instance_health(&stack.config, &target).await,
        "Healthy",
        "a tampered link changes nothing"
    );
    let followed = send("GET", token.clone()).await;
    assert_eq!(followed["statusCode"], 200, "{followed}");
    assert!(
        followed["body"]
            .as_str()
            .unwrap()
            .contains("<form method=\"post\">"),
        "{followed}"
    );
    assert_eq!(
        h::instance_health(&stack.config, &target).await,
        "Healthy",
        "following the link changes nothing"
    );
    let first = send("POST", token.clone()).await;
    let second = send("POST", token).await;
    assert_eq!(first["statusCode"], 200, "{first}");
    assert_eq!(first["headers"]["cache-control"], "no-store", "{first}");
    assert_eq!(first["headers"]["x-frame-options"], "DENY", "{first}");
    assert_eq!(
        h::instance_health(&stack.config, &target).await,
        "Unhealthy",
        "approved: the instance is replaced"
    );
    assert_eq!(second["statusCode"], 409, "{second}");
    assert_eq!(
        h::instance_health(&stack.config, &instances[1]).await,
        "Healthy"
    );
}

/// The scheduled pull's batch through the built ingest with `TelemetrySource: lines`, as the
/// template configures it: the instance's lines in CloudWatch Logs (moto) are its windows, and
/// a hostile line among them is refused, the rest read.
#[tokio::test(flavor = "multi_thread")]
async fn a_pull_batch_through_the_built_ingest_reads_the_instances_telemetry_lines() {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let stack = h::Stack::new().await;
    let group = h::unique("/vigil/telemetry-e2e-");
    let instance = format!(
        "i-{:017x}",
        0xe2e0_0000_0000_u64 + u64::from(std::process::id())
    );
    let logs = aws_sdk_cloudwatchlogs::Client::new(&stack.config);
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .unwrap();
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(&instance)
        .send()
        .await
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let at = now - now % 60;
    // Thirty minutes of lines, the last a minute before the pull, and a hostile one.
    let cpu: Vec<f64> = (0..30).map(|i| 20.0 + f64::from(i % 7)).collect();
    let mut events: Vec<InputLogEvent> = cpu
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let t = at - 60 * (30 - i as i64);
            InputLogEvent::builder()
                .timestamp(t * 1000)
                .message(format!(
                    r#"{{"v":1,"t":{t},"cpu":{c},"net_in":1000,"net_out":2000,"mem":41.5,"disk":63.0}}"#
                ))
                .build()
                .unwrap()
        })
        .collect();
    events.push(
        InputLogEvent::builder()
            .timestamp((at - 60) * 1000 + 1)
            .message(format!(r#"{{"v":1,"t":{},"cpu":-5}}"#, at - 60))
            .build()
            .unwrap(),
    );
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name(&instance)
        .set_log_events(Some(events))
        .send()
        .await
        .unwrap();

    let mut env = environment(&stack);
    env.push(("VIGIL_TELEMETRY", "lines".into()));
    env.push(("VIGIL_TELEMETRY_GROUP", group.clone()));
    env.push(("VIGIL_METRIC_PERIOD", "60".into()));
    let at = chrono::DateTime::from_timestamp(at, 0).unwrap();
    let request = json!({"batch": {
        "tick": h::unique("tick"),
        "at": at.to_rfc3339(),
        "items": [{"instance": instance, "disks": [[["path", "/"]]]}],
    }});
    let observed = tokio::task::spawn_blocking(move || {
        Functions::of(&["vigil-ingest"], &env).invoke("vigil-ingest", &request)
    })
    .await
    .unwrap();

    // A window's datapoints, oldest first, the slots with none left out.
    let window = |label: &str| -> Vec<f64> {
        let kind = &observed["observations"]
            .as_array()
            .unwrap_or_else(|| panic!("{observed}"))
            .iter()
            .find(|o| o["signal"]["kind"].to_string().contains(label))
            .unwrap_or_else(|| panic!("no {label} window: {observed}"))["signal"]["kind"];
        let points = kind.get("MetricWindow").unwrap_or(kind)["points"]
            .as_array()
            .unwrap_or_else(|| panic!("{kind}"));
        points.iter().filter_map(|v| v.as_f64()).collect()
    };
    // The window handed on is the pull's last points (the detector read them all): the
    // lines' last ones, the hostile line in the last minute refused.
    let shown = window("AWS/EC2/CPUUtilization");
    assert!((3..=cpu.len()).contains(&shown.len()), "{shown:?}");
    assert_eq!(shown, cpu[cpu.len() - shown.len()..], "the lines");
    for (label, value) in [
        ("CWAgent/mem_used_percent", 41.5),
        ("CWAgent/disk_used_percent", 63.0),
    ] {
        assert_eq!(window(label), vec![value; shown.len()], "{label}");
    }
}
