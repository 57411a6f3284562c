//! The harness of the cross-crate tests: an AWS emulator (moto server) to run the real adapters
//! against, and helpers to read the emulator's state back.
//!
//! `make test` starts moto on a free 127.0.0.1 port and sets `VIGIL_MOTO_ENDPOINT`. Without
//! it these tests fail loudly; they never skip.

// A test harness: failing loudly, with the reason, is its job.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig, retry::RetryConfig};

mod ec2;
pub use ec2::run_instance;

/// The variable `make test` sets to the emulator's URL.
pub const ENDPOINT_VAR: &str = "VIGIL_MOTO_ENDPOINT";

/// The emulator's URL. Panics, with the way to fix it, when it is not set.
pub fn endpoint() -> String {
    match std::env::var(ENDPOINT_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            panic!(
                "{ENDPOINT_VAR} is not set{}: these tests run the AWS adapters against moto server. \
                 Run them with `make test`, which starts moto and sets it, or start \
                 `moto_server -H 127.0.0.1 -p PORT` yourself and export {ENDPOINT_VAR}=http://127.0.0.1:PORT",
                if ci { " in CI" } else { "" }
            )
        }
    }
}

/// An SDK configuration pointed at the emulator: fixed test credentials and region, one attempt
/// per call (moto answers unimplemented calls with 500, which must not be retried in tests).
pub fn sdk_config() -> SdkConfig {
    let creds =
        aws_credential_types::Credentials::new("testing", "testing", None, None, "vigil-tests");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(creds))
        .http_client(vigil_aws::http_client())
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build()
}

/// A name no other test (nor an earlier run against the same emulator) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Everything the emulator holds, from its state API. moto serialises its whole state for
/// this and can fail (500) when another test changes that state meanwhile; such a read is
/// retried a few times before the test fails.
pub fn moto_state() -> serde_json::Value {
    let url = format!("{}/moto-api/data.json", endpoint());
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
        }
        match ureq::get(&url).call() {
            Ok(mut r) => {
                // Every account a test touched (the member accounts' tests) has its own state.
                return r
                    .body_mut()
                    .with_config()
                    .limit(256 * 1024 * 1024)
                    .read_json()
                    .unwrap_or_else(|e| panic!("parsing {url}: {e}"));
            }
            Err(e) => last = e.to_string(),
        }
    }
    panic!("reading {url}: {last}")
}

/// A message SNS accepted for a topic, as moto recorded it.
#[derive(Debug, Clone)]
pub struct SentMessage {
    pub id: String,
    pub subject: String,
    /// What email receives (a message published with one text per protocol is read as SNS
    /// delivers it to email).
    pub body: String,
    pub attributes: serde_json::Value,
    /// What an HTTPS subscriber (the chat service) receives, parsed, when the message has one.
    pub chat: Option<serde_json::Value>,
    /// The message as published.
    pub raw: String,
}

/// The messages published to `topic_arn`, read from moto's state.
pub fn sns_sent(topic_arn: &str) -> Vec<SentMessage> {
    let state = moto_state();
    let topics = state["sns"]["Topic"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    topics
        .iter()
        .filter(|t| t["arn"] == topic_arn)
        .flat_map(|t| {
            t["sent_notifications"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|n| {
            let raw = n[1].as_str().unwrap_or_default().to_owned();
            let structured: Option<serde_json::Value> = serde_json::from_str(&raw)
                .ok()
                .filter(|v: &serde_json::Value| v.get("default").is_some());
            let text = |v: &serde_json::Value, key: &str| {
                v.get(key).and_then(|x| x.as_str()).map(str::to_owned)
            };
            SentMessage {
                id: n[0].as_str().unwrap_or_default().to_owned(),
                body: structured
                    .as_ref()
                    .and_then(|v| text(v, "email").or_else(|| text(v, "default")))
                    .unwrap_or_else(|| raw.clone()),
                subject: n[2].as_str().unwrap_or_default().to_owned(),
                attributes: n[3].clone(),
                chat: structured
                    .as_ref()
                    .and_then(|v| text(v, "https"))
                    .and_then(|c| serde_json::from_str(&c).ok()),
                raw,
            }
        })
        .collect()
}

/// An Auto Scaling group with `size` running instances, created in the emulator.
pub async fn create_group(config: &SdkConfig, size: i32) -> (String, Vec<String>) {
    let asg = aws_sdk_autoscaling::Client::new(config);
    let lc = unique("vigil-lc");
    let group = unique("vigil-asg");
    asg.create_launch_configuration()
        .launch_configuration_name(&lc)
        .image_id("ami-12c6146b")
        .instance_type("t3.micro")
        .send()
        .await
        .expect("CreateLaunchConfiguration");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name(&group)
        .launch_configuration_name(&lc)
        .min_size(1)
        .max_size(size + 2)
        .desired_capacity(size)
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let out = asg
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(&group)
        .send()
        .await
        .expect("DescribeAutoScalingGroups");
    let ids = out.auto_scaling_groups()[0]
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect();
    (group, ids)
}

/// The instance's health as Auto Scaling reports it (read with the SDK, not Vigil's adapter).
pub async fn instance_health(config: &SdkConfig, instance: &str) -> String {
    let out = aws_sdk_autoscaling::Client::new(config)
        .describe_auto_scaling_instances()
        .instance_ids(instance)
        .send()
        .await
        .expect("DescribeAutoScalingInstances");
    out.auto_scaling_instances()[0]
        .health_status()
        .unwrap_or_default()
        .to_owned()
}

/// A state table like the stack's: partition key `pk`.
pub async fn create_table(config: &SdkConfig) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType,
    };
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .expect("attribute")
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
            .expect("key")
    };
    let name = unique("vigil-state");
    // As template.yaml's StateTable: `pk`, and the gate's index of incidents by target.
    aws_sdk_dynamodb::Client::new(config)
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk", ScalarAttributeType::S))
        .attribute_definitions(attr("target", ScalarAttributeType::S))
        .attribute_definitions(attr("opened", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(vigil_aws::dynamodb::POSTURE_INDEX)
                .key_schema(key("target", KeyType::Hash))
                .key_schema(key("opened", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("mark")
                        .build(),
                )
                .build()
                .expect("index"),
        )
        .send()
        .await
        .expect("CreateTable");
    name
}

/// An SNS topic.
pub async fn create_topic(config: &SdkConfig) -> String {
    aws_sdk_sns::Client::new(config)
        .create_topic()
        .name(unique("vigil-alerts"))
        .send()
        .await
        .expect("CreateTopic")
        .topic_arn()
        .expect("topic arn")
        .to_owned()
}

/// An SQS queue subscribed to `topic_arn` (raw delivery off, as an email subscriber sees the
/// SNS envelope): a tap on what people are sent. Returns the queue's URL.
pub async fn tap_topic(config: &SdkConfig, topic_arn: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(config);
    let url = sqs
        .create_queue()
        .queue_name(unique("vigil-tap"))
        .send()
        .await
        .expect("CreateQueue")
        .queue_url()
        .expect("queue url")
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    aws_sdk_sns::Client::new(config)
        .subscribe()
        .topic_arn(topic_arn)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .expect("Subscribe");
    url
}

/// The SNS notifications waiting in a tap queue (each the SNS JSON envelope: `Subject`,
/// `Message`, `MessageId`, `MessageAttributes`), read and deleted.
pub async fn tapped(config: &SdkConfig, queue_url: &str) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut out = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = got.messages();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(serde_json::from_str(m.body().unwrap_or("null")).expect("an SNS envelope"));
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// Sets an SSM String parameter.
pub async fn put_parameter(config: &SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("PutParameter");
}

/// Reads a bundled sample event as JSON, to be edited for a test.
pub fn fixture_json(name: &str) -> serde_json::Value {
    let path = format!("{}/../fixtures/events/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// The variable `make test` sets to the CloudWatch emulator's URL (see [`cloudwatch_config`]).
pub const CLOUDWATCH_ENDPOINT_VAR: &str = "VIGIL_CLOUDWATCH_ENDPOINT";

/// An SDK configuration for CloudWatch. moto does not speak the Smithy RPC v2 CBOR protocol
/// that current CloudWatch clients use, so CloudWatch runs against ministack, which does.
pub fn cloudwatch_config() -> SdkConfig {
    let url = match std::env::var(CLOUDWATCH_ENDPOINT_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{CLOUDWATCH_ENDPOINT_VAR} is not set: the CloudWatch adapter runs against ministack \
             (it speaks CloudWatch's CBOR protocol). Run the tests with `make test`."
        ),
    };
    sdk_config().into_builder().endpoint_url(url).build()
}

/// The stack's stateful resources, created in the emulator: the state table, the alert topic,
/// and the kill-switch (set to off), policy-override and rules-override (unset) parameter names.
pub struct Stack {
    pub config: SdkConfig,
    pub table: String,
    pub topic: String,
    pub kill_switch: String,
    pub policy: String,
    /// The detection rules override's parameter (unset).
    pub rules: String,
    /// The audit bucket: versioned, with Object Lock (governance, one day).
    pub audit_bucket: String,
    /// The pull's detector states.
    pub detector_bucket: String,
}

/// Creates a versioned bucket with Object Lock and a default governance retention of a day,
/// as the template's audit bucket (with a shorter retention).
pub async fn create_audit_bucket(config: &SdkConfig) -> String {
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    let s3 = aws_sdk_s3::Client::new(config);
    let bucket = unique("vigil-audit").to_lowercase();
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .expect("CreateBucket");
    s3.put_object_lock_configuration()
        .bucket(&bucket)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutObjectLockConfiguration");
    bucket
}

impl Stack {
    pub async fn new() -> Self {
        let config = sdk_config();
        let table = create_table(&config).await;
        let topic = create_topic(&config).await;
        let kill_switch = format!("/{}/kill-switch", unique("vigil"));
        put_parameter(&config, &kill_switch, "off").await;
        let policy = format!("/{}/policy", unique("vigil"));
        let rules = format!("/{}/rules", unique("vigil"));
        let audit_bucket = create_audit_bucket(&config).await;
        let detector_bucket = unique("vigil-detectors").to_lowercase();
        aws_sdk_s3::Client::new(&config)
            .create_bucket()
            .bucket(&detector_bucket)
            .send()
            .await
            .expect("CreateBucket");
        Stack {
            config,
            table,
            topic,
            kill_switch,
            policy,
            rules,
            audit_bucket,
            detector_bucket,
        }
    }
}

use vigil_aws::{
    autoscaling::AutoScaling,
    cloudwatch::CloudWatch,
    detectors::DetectorBucket,
    dynamodb::StateTable,
    sns::Sns,
    ssm::{KillSwitchParameter, PolicyParameter},
};
use vigil_handlers::{decide::DecidePorts, ingest::IngestPorts};

/// Ingest's ports on the stack's adapters, instances looked up through `I`.
pub type StackIngestPorts<'a, I> =
    IngestPorts<'a, I, StateTable, AutoScaling, CloudWatch, CloudWatch, StateTable, DetectorBucket>;

/// The stack's AWS adapters, built once from a [`Stack`], wired the way the functions wire them.
pub struct Adapters {
    pub asg: AutoScaling,
    pub state: StateTable,
    pub kill_switch: KillSwitchParameter,
    pub policy: PolicyParameter,
    pub sns: Sns,
    /// On the stack's (moto) endpoint: the alarm path never calls it; the CloudWatch adapter
    /// itself is tested against ministack with [`cloudwatch_config`].
    pub cloudwatch: CloudWatch,
    pub detectors: DetectorBucket,
    /// Built the way the remediate and approve functions build them, from the environment
    /// the template gives them (here, the stack's names).
    pub remediate: vigil_aws::stack::RemediateAdapters,
}

impl Adapters {
    pub fn new(stack: &Stack) -> Self {
        let c = &stack.config;
        Adapters {
            asg: AutoScaling::new(c),
            state: StateTable::new(c, &stack.table),
            kill_switch: KillSwitchParameter::new(c, &stack.kill_switch),
            policy: PolicyParameter::new(c, &stack.policy),
            sns: Sns::new(c, &stack.topic),
            cloudwatch: CloudWatch::new(c),
            detectors: DetectorBucket::new(c, &stack.detector_bucket),
            remediate: vigil_aws::stack::RemediateAdapters::from_env(c, &|name: &str| match name {
                vigil_handlers::config::TABLE => Some(stack.table.clone()),
                vigil_handlers::config::TOPIC_ARN => Some(stack.topic.clone()),
                vigil_handlers::config::KILL_SWITCH_PARAMETER => Some(stack.kill_switch.clone()),
                vigil_handlers::config::AUDIT_BUCKET => Some(stack.audit_bucket.clone()),
                _ => None,
            })
            .expect("the stack's environment is complete"),
        }
    }

    pub fn ingest_ports(&self) -> StackIngestPorts<'_, AutoScaling> {
        self.ingest_ports_with(&self.asg)
    }

    /// The same, with instances looked up through `instances` (a fleet of member accounts).
    pub fn ingest_ports_with<'a, I>(&'a self, instances: &'a I) -> StackIngestPorts<'a, I> {
        IngestPorts {
            instances,
            history: &self.state,
            watched: &self.asg,
            disks: &self.cloudwatch,
            metrics: &self.cloudwatch,
            deploys: &self.state,
            detectors: &self.detectors,
        }
    }

    pub fn decide_ports(
        &self,
    ) -> DecidePorts<
        '_,
        StateTable,
        KillSwitchParameter,
        AutoScaling,
        StateTable,
        StateTable,
        PolicyParameter,
        Sns,
    > {
        DecidePorts {
            claims: &self.state,
            kill_switch: &self.kill_switch,
            groups: &self.asg,
            history: &self.state,
            quotas: &self.state,
            policy: &self.policy,
            alerts: &self.sns,
        }
    }

    pub fn remediate_ports(&self) -> &vigil_aws::stack::RemediateAdapters {
        &self.remediate
    }
}

/// An SDK config whose HTTP client records the request instead of sending it, for the
/// APIs moto does not implement.
pub fn capturing_config() -> (
    aws_config::SdkConfig,
    aws_smithy_http_client::test_util::CaptureRequestReceiver,
) {
    let (client, rx) = aws_smithy_http_client::test_util::capture_request(None);
    (offline_config(client), rx)
}

/// An SDK config on a test HTTP client (capture, replay): nothing leaves the process.
pub fn offline_config(
    client: impl aws_smithy_runtime_api::client::http::HttpClient + 'static,
) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "testing",
                    "testing",
                    None,
                    None,
                    "vigil-tests",
                ),
            ),
        )
        .http_client(client)
        .build()
}

/// The `X-Amz-Target` and JSON body of a captured request.
pub fn request_json(
    req: &aws_smithy_runtime_api::client::orchestrator::HttpRequest,
) -> (String, serde_json::Value) {
    let target = req
        .headers()
        .get("x-amz-target")
        .unwrap_or_default()
        .to_owned();
    let body = serde_json::from_slice(req.body().bytes().unwrap()).unwrap();
    (target, body)
}

/// A fault the proxy puts between a function and the emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Throttled, in the service's own protocol (`Throttling` for query APIs,
    /// `ThrottlingException` for JSON ones, `SlowDown` for S3).
    Throttle,
    /// `503 Service Unavailable`.
    Unavailable,
    /// The connection closed with no answer.
    Reset,
    /// No answer for this many seconds, then the connection closed: a hung endpoint.
    Hold(u64),
    /// Not a fault: `200` with this JSON body, for an API the emulator does not implement
    /// (moto has no SSM Automation and no CodePipeline job or transition calls). The request
    /// is kept, so that the test can check its shape.
    Emulate(&'static str),
}

/// A fault-injecting HTTP proxy in front of the emulator: each request (the emulator closes
/// every connection after one answer, and so does the proxy) is either forwarded or answered
/// with the fault `plan(n, request head and body)` names, `n` counting requests from 0. The
/// proxy runs on its own threads until the process ends.
#[derive(Clone)]
pub struct FaultProxy {
    pub url: String,
    requests: std::sync::Arc<AtomicU32>,
    injected: std::sync::Arc<AtomicU32>,
    emulated: Emulated,
}

/// The requests the proxy answered itself ([`Fault::Emulate`]): head and body.
type Emulated = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

impl FaultProxy {
    pub fn start(upstream: &str, plan: fn(u32, &str) -> Option<Fault>) -> FaultProxy {
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let requests = Arc::new(AtomicU32::new(0));
        let injected = Arc::new(AtomicU32::new(0));
        let emulated = Emulated::default();
        let (r, i, e) = (requests.clone(), injected.clone(), emulated.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (upstream, r, i, e) = (upstream.clone(), r.clone(), i.clone(), e.clone());
                std::thread::spawn(move || {
                    let _ = proxy_one(conn, &upstream, plan, (&r, &i, &e));
                });
            }
        });
        FaultProxy {
            url,
            requests,
            injected,
            emulated,
        }
    }

    /// The JSON bodies of the requests the proxy answered itself whose `X-Amz-Target` is
    /// `target` (for example `AmazonSSM.StartAutomationExecution`), in order.
    pub fn emulated(&self, target: &str) -> Vec<serde_json::Value> {
        let header = format!("x-amz-target: {}\r\n", target.to_ascii_lowercase());
        self.emulated
            .lock()
            .unwrap()
            .iter()
            .filter_map(|text| {
                let (head, body) = text.split_once("\r\n\r\n")?;
                head.to_ascii_lowercase()
                    .contains(&header)
                    .then(|| serde_json::from_str(body).ok())
                    .flatten()
            })
            .collect()
    }

    /// Requests seen and faults injected so far.
    pub fn counts(&self) -> (u32, u32) {
        (
            self.requests.load(Ordering::SeqCst),
            self.injected.load(Ordering::SeqCst),
        )
    }
}

fn proxy_one(
    mut client: std::net::TcpStream,
    upstream: &str,
    plan: fn(u32, &str) -> Option<Fault>,
    (requests, injected, emulated): (&AtomicU32, &AtomicU32, &Emulated),
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let n = requests.fetch_add(1, Ordering::SeqCst);
    let text = format!("{head}{}", String::from_utf8_lossy(&body));
    if let Some(fault) = plan(n, &text) {
        let lower = head.to_ascii_lowercase();
        let answer = match fault {
            Fault::Emulate(body) => {
                emulated.lock().unwrap().push(text.clone());
                (200, "application/x-amz-json-1.1", body.to_owned())
            }
            Fault::Reset => {
                injected.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            Fault::Hold(seconds) => {
                injected.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_secs(seconds));
                return Ok(());
            }
            Fault::Unavailable => (503, "text/plain", String::new()),
            Fault::Throttle if lower.contains("x-amz-target:") => (
                400,
                "application/x-amz-json-1.0",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_owned(),
            ),
            Fault::Throttle if text.contains("Action=") => (
                400,
                "text/xml",
                "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>".to_owned(),
            ),
            Fault::Throttle => (
                503,
                "application/xml",
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".to_owned(),
            ),
        };
        let (status, kind, body) = answer;
        if status != 200 {
            injected.fetch_add(1, Ordering::SeqCst);
        }
        write!(
            client,
            "HTTP/1.1 {status} Fault\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let mut up = std::net::TcpStream::connect(upstream)?;
    up.write_all(head.as_bytes())?;
    up.write_all(&body)?;
    std::io::copy(&mut up, &mut client)?;
    Ok(())
}

/// Runs `tests/runbooks/<harness>` with `args` in the test venv's Python against the emulator
/// (boto3 reaches it through `AWS_ENDPOINT_URL`), as SSM Automation would run a runbook; what
/// it printed, as JSON. Panics with the harness's stderr when it fails.
pub fn runbook_harness(harness: &str, args: &[&str]) -> serde_json::Value {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let venv = std::env::var("VIGIL_VENV").unwrap_or_else(|_| format!("{root}/.venv"));
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .arg(format!("{root}/tests/runbooks/{harness}"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("the test venv's python (make test creates .venv)");
    assert!(
        out.status.success(),
        "{harness} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the harness prints JSON")
}
