//! The telemetry lines against the emulators: lines written to CloudWatch Logs (moto) answer
//! the pull's queries through its reader (`vigil_aws::lines`), a hostile line is refused, and a
//! silent instance's status check is asked of CloudWatch (ministack); the collector the stack
//! installs (`infra/ssm/telemetry-lines.yaml`) writes lines the reader reads; and a member
//! account's lines are read in that account through its role.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use chrono::{DateTime, Duration, Utc};
use vigil_aws::cloudwatch::CloudWatch;
use vigil_aws::lines::TelemetryLines;
use vigil_core::metrics::lines::{LINE_VERSION, Line, from_ec2};
use vigil_core::metrics::{self, DiskMetric, WatchedInstance};
use vigil_core::names::InstanceId;
use vigil_handlers::ports::FetchMetrics;
use vigil_tests as h;

fn watched(id: &str) -> WatchedInstance {
    WatchedInstance {
        instance: InstanceId::parse(id).unwrap(),
        group: None,
        application: None,
        environment: None,
        tags: Default::default(),
        account: None,
    }
}

#[tokio::test]
async fn lines_in_cloudwatch_logs_answer_the_pull_and_a_silent_instance_is_asked_of_cloudwatch() {
    let config = h::sdk_config();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = h::unique("/vigil/telemetry-");
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup");
    let pid = u64::from(std::process::id());
    let writing = format!("i-{:017x}", 0xdef_0000_0000_u64 + pid * 10);
    let silent = format!("i-{:017x}", 0xdef_0000_0000_u64 + pid * 10 + 1);
    let end = Utc::now() - Duration::seconds(Utc::now().timestamp() % 60);
    let start = end - Duration::minutes(10);
    let at = |m: i64| end - Duration::minutes(m);
    let mut events: Vec<InputLogEvent> = (1..=3)
        .rev()
        .map(|m| {
            let line = Line {
                v: LINE_VERSION,
                t: at(m).timestamp(),
                cpu: Some(40.0 + m as f64),
                net_in: Some(1000.0),
                net_out: Some(2000.0),
                mem: Some(71.0),
                disk: Some(55.0),
            };
            InputLogEvent::builder()
                .timestamp(at(m).timestamp_millis())
                .message(line.render())
                .build()
                .unwrap()
        })
        .collect();
    // A hostile line among them: refused, and the rest still read.
    events.push(
        InputLogEvent::builder()
            .timestamp(at(1).timestamp_millis() + 1)
            .message(format!(
                "{{\"v\":1,\"t\":{},\"cpu\":1e9}}",
                at(1).timestamp()
            ))
            .build()
            .unwrap(),
    );
    for stream in [&writing, &silent] {
        logs.create_log_stream()
            .log_group_name(&group)
            .log_stream_name(stream.as_str())
            .send()
            .await
            .expect("CreateLogStream");
    }
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name(&writing)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("PutLogEvents");

    // EC2's status check of both, as EC2 publishes it: the silent instance's failed.
    let cw = h::cloudwatch_config();
    let client = aws_sdk_cloudwatch::Client::new(&cw);
    for (id, value) in [(&writing, 0.0), (&silent, 1.0)] {
        use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
        client
            .put_metric_data()
            .namespace("AWS/EC2")
            .metric_data(
                MetricDatum::builder()
                    .metric_name("StatusCheckFailed")
                    .dimensions(
                        Dimension::builder()
                            .name("InstanceId")
                            .value(id.as_str())
                            .build(),
                    )
                    .timestamp(aws_smithy_types::DateTime::from_secs(at(1).timestamp()))
                    .value(value)
                    .build(),
            )
            .send()
            .await
            .expect("PutMetricData");
    }

    let instances = vec![watched(&writing), watched(&silent)];
    let disks: Vec<DiskMetric> = instances
        .iter()
        .map(|w| DiskMetric {
            instance: w.instance.clone(),
            dimensions: vec![("path".into(), "/".into())],
        })
        .collect();
    let queries = metrics::plan(&instances, &disks);
    let reader = TelemetryLines::new(&config, &group, CloudWatch::new(&cw));
    let results = reader.fetch(&queries, start, end, 60).await.unwrap();

    let of = |id: &str, metric: &str| {
        queries
            .iter()
            .find(|q| q.instance.as_str() == id && q.metric == metric)
            .and_then(|q| results.get(&q.id))
            .map(|s| s.iter().map(|(_, v)| *v).collect::<Vec<f64>>())
    };
    assert_eq!(of(&writing, "CPUUtilization"), Some(vec![43.0, 42.0, 41.0]));
    assert_eq!(of(&writing, "mem_used_percent"), Some(vec![71.0; 3]));
    assert_eq!(of(&writing, "disk_used_percent"), Some(vec![55.0; 3]));
    assert_eq!(
        of(&silent, "CPUUtilization"),
        None,
        "the silent instance wrote nothing"
    );
    // The status checks: the silent instance's is asked of CloudWatch and read; the writing
    // one's is not asked.
    assert_eq!(of(&silent, "StatusCheckFailed"), Some(vec![1.0]));
    assert_eq!(of(&writing, "StatusCheckFailed"), None);
    assert!(queries.iter().any(from_ec2));
}

/// The collector's script, as the document installs it (the text between its heredoc marks).
fn collector_script() -> String {
    let path = format!(
        "{}/../infra/ssm/telemetry-lines.yaml",
        env!("CARGO_MANIFEST_DIR")
    );
    let doc: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let install = doc["mainSteps"][0]["inputs"]["runCommand"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .find(|c| c.contains("<<'VIGIL_LINES'"))
        .expect("the document writes the collector");
    let body = install.split_once("<<'VIGIL_LINES'\n").unwrap().1;
    body.split_once("\nVIGIL_LINES").unwrap().0.to_owned()
}

/// The AWS CLI the collector ships its lines with (`make test` puts it in the emulators' venv
/// and names it in VIGIL_AWS_CLI).
fn aws_cli_dir() -> String {
    let cli = std::env::var("VIGIL_AWS_CLI").unwrap_or_else(|_| "aws".into());
    let ok = std::process::Command::new(&cli)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "no AWS CLI at {cli:?}: run the tests with `make test`, or name one in VIGIL_AWS_CLI"
    );
    std::path::Path::new(&cli)
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// One run of the collector, as its timer runs it, against the emulator.
fn collect(script: &std::path::Path, state: &std::path::Path, group: &str, instance: &str) {
    let path = format!(
        "{}:{}",
        aws_cli_dir(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .arg(script)
        .env("PATH", path)
        .env("VIGIL_LINES_GROUP", group)
        .env("STATE_DIRECTORY", state)
        .env("VIGIL_INSTANCE_ID", instance)
        .env("AWS_ENDPOINT_URL", h::endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", state.join("no-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", state.join("no-credentials"))
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "the collector failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_collector_writes_lines_the_pull_reads() {
    let config = h::sdk_config();
    let logs = aws_sdk_cloudwatchlogs::Client::new(&config);
    let group = h::unique("/vigil/collector-");
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup");
    let instance = format!(
        "i-{:017x}",
        0xc011_0000_0000_u64 + u64::from(std::process::id())
    );
    let dir = std::env::temp_dir().join(h::unique("collector"));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("vigil-lines");
    std::fs::write(&script, collector_script()).unwrap();
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();

    // The first run has no counters before it: memory and disk only, and its stream created.
    collect(&script, &state, &group, &instance);
    // The second covers the span since the counters kept: as if kept a minute ago, from boot
    // (zero), so its CPU is this machine's since boot.
    let now = Utc::now().timestamp();
    std::fs::write(state.join("last"), format!("{} 0 0 0 0\n", now - 60)).unwrap();
    collect(&script, &state, &group, &instance);

    // What the emulator holds: two lines in the instance's stream, each a line the core reads.
    let events = logs
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(&instance)
        .send()
        .await
        .expect("GetLogEvents");
    let lines: Vec<Line> = events
        .events()
        .iter()
        .map(|e| Line::parse(e.message().unwrap()).expect("a line the pull reads"))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (first, second) = (&lines[0], &lines[1]);
    assert!(first.cpu.is_none() && first.net_in.is_none(), "{first:?}");
    assert!(
        first.mem.is_some_and(|m| m > 0.0) && first.disk.is_some(),
        "{first:?}"
    );
    assert!(second.cpu.is_some() && second.net_in.is_some() && second.net_out.is_some());
    for l in &lines {
        assert_eq!(l.t % 60, 0, "a minute's start: {l:?}");
        assert!((now - 120..=now).contains(&l.t), "{l:?} at {now}");
    }
    for e in events.events() {
        assert_eq!(
            e.timestamp().unwrap() / 1000,
            Line::parse(e.message().unwrap()).unwrap().t,
            "the event's time is the line's minute"
        );
    }

    // And the pull reads them through the reader.
    let instances = vec![watched(&instance)];
    let disks = vec![DiskMetric {
        instance: instances[0].instance.clone(),
        dimensions: vec![("path".into(), "/".into())],
    }];
    let queries = metrics::plan(&instances, &disks);
    let end = DateTime::from_timestamp(now - now % 60 + 60, 0).unwrap();
    let reader = TelemetryLines::new(&config, &group, CloudWatch::new(&h::cloudwatch_config()));
    let results = reader
        .fetch(&queries, end - Duration::minutes(10), end, 60)
        .await
        .unwrap();
    let cpu = queries
        .iter()
        .find(|q| q.metric == "CPUUtilization")
        .and_then(|q| results.get(&q.id))
        .expect("the second line's CPU");
    assert_eq!(cpu.len(), 1);
    assert_eq!(cpu[0].1, second.cpu.unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Writes `lines` to `stream` of `group` (both created) in the account `config` acts in.
async fn write(config: &aws_config::SdkConfig, group: &str, stream: &str, lines: &[Line]) {
    let logs = aws_sdk_cloudwatchlogs::Client::new(config);
    logs.create_log_group()
        .log_group_name(group)
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("CreateLogStream");
    let events = lines
        .iter()
        .map(|l| {
            InputLogEvent::builder()
                .timestamp(l.t * 1000)
                .message(l.render())
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("PutLogEvents");
}

/// A member account's lines are read in that account, through its member role, from the
/// log group of the same name there (moto keeps accounts apart): the stack's own account
/// holds other lines under the same group and instance id.
#[tokio::test]
async fn a_member_accounts_lines_are_read_there_through_its_role() {
    const MEMBER: &str = "222222222222";
    let config = h::sdk_config();
    let members = vigil_aws::members::Members::from_env(&config, &|name: &str| match name {
        vigil_handlers::config::MEMBER_ACCOUNTS => Some(MEMBER.to_owned()),
        vigil_handlers::config::MEMBER_ROLE_NAME => Some("vigil-member-lines".to_owned()),
        _ => None,
    })
    .unwrap();
    let member = members.config(MEMBER).await.expect("a named member");
    let group = h::unique("/vigil/member-lines-");
    let instance = format!(
        "i-{:017x}",
        0x3e3b_0000_0000_u64 + u64::from(std::process::id())
    );
    let end = Utc::now() - Duration::seconds(Utc::now().timestamp() % 60);
    let line = |cpu: f64| Line {
        v: LINE_VERSION,
        t: (end - Duration::minutes(1)).timestamp(),
        cpu: Some(cpu),
        net_in: None,
        net_out: None,
        mem: None,
        disk: None,
    };
    write(&config, &group, &instance, &[line(5.0)]).await;
    write(&member, &group, &instance, &[line(80.0)]).await;

    let metrics = vigil_aws::members::FleetMetrics {
        central: vigil_aws::lines::TelemetrySource::new(
            &config,
            &vigil_handlers::config::Telemetry::Lines {
                group: group.clone(),
            },
        ),
        members: &members,
    };
    let queries: Vec<_> = metrics::plan(&[watched(&instance)], &[])
        .into_iter()
        .filter(|q| q.metric == "CPUUtilization")
        .collect();
    let start = end - Duration::minutes(10);
    let cpu = |results: std::collections::BTreeMap<String, metrics::Series>| {
        results
            .get(&queries[0].id)
            .map(|s| s.iter().map(|(_, v)| *v).collect::<Vec<f64>>())
    };
    let here = metrics.fetch(&queries, start, end, 60).await.unwrap();
    assert_eq!(cpu(here), Some(vec![5.0]), "the stack's own account");
    let there = metrics
        .fetch_in(MEMBER, &queries, start, end, 60)
        .await
        .unwrap();
    assert_eq!(
        cpu(there),
        Some(vec![80.0]),
        "the member's, through its role"
    );
    // An account the stack does not name is not read.
    let err = metrics
        .fetch_in("333333333333", &queries, start, end, 60)
        .await
        .unwrap_err();
    let why = vigil_core::error_chain(&err);
    assert!(
        why.contains("logs:FilterLogEvents") && why.contains("333333333333"),
        "{why}"
    );
}
