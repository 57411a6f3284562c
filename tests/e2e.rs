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

/// The four stages' Runtime APIs.
struct Functions(Vec<(&'static str, Watch)>);

impl Functions {
    fn start(env: &[(&str, String)]) -> Functions {
        Functions(
            [
                "vigil-ingest",
                "vigil-score",
                "vigil-decide",
                "vigil-remediate",
            ]
            .into_iter()
            .map(|f| (f, Watch::start(f, env)))
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
        ("VIGIL_AUDIT_BUCKET", stack.audit_bucket.clone()),
        ("VIGIL_ACCOUNT_ID", "123456789012".into()),
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
    let (env_flaky, env_broken) = (behind(&stack, &flaky), behind(&stack, &broken));
    let (a, b) = (first[0].clone(), second[0].clone());
    let (healed, failed) = tokio::task::spawn_blocking(move || {
        let healed = deliver(&Functions::start(&env_flaky), &cpu_alarm(&a), "execution-1");
        let failed = deliver(
            &Functions::start(&env_broken),
            &cpu_alarm(&b),
            "execution-2",
        );
        (healed, failed)
    })
    .await
    .unwrap();

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
    assert_eq!(subjects.len(), 2, "{subjects:?}");
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
        "faults: {injected} injected in {requests} requests; {refused} SetInstanceHealth refused"
    );
}
