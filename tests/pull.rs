//! The scheduled pull through the real ingest handler and adapters (Auto Scaling and S3 on
//! moto, CloudWatch on ministack): each metric's detector state is kept in the detector bucket
//! between pulls, so the second pull reads only the points since the first and scores exactly
//! what a cold detector streamed over the joined series does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Mutex;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use chrono::{DateTime, Duration, Utc};
use vigil_aws::{autoscaling::AutoScaling, cloudwatch::CloudWatch, detectors::DetectorBucket};
use vigil_core::domain::{Observation, SignalKind};
use vigil_core::events;
use vigil_core::metrics::state::InstanceState;
use vigil_core::metrics::{MetricQuery, Series};
use vigil_core::models::anomaly::{DetectorConfig, last_score};
use vigil_handlers::ingest::{self, IngestConfig, IngestPorts};
use vigil_handlers::ports::{FetchMetrics, PortError};
use vigil_tests as h;

/// One read: its start, its end and the windows' labels.
type Read = (DateTime<Utc>, DateTime<Utc>, Vec<String>);

/// The CloudWatch adapter, with every read it was asked for recorded.
struct Recorded<'a> {
    inner: &'a CloudWatch,
    reads: Mutex<Vec<Read>>,
}

impl FetchMetrics for Recorded<'_> {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<std::collections::BTreeMap<String, Series>, PortError> {
        self.reads.lock().unwrap().push((
            start,
            end,
            queries.iter().map(vigil_core::metrics::label).collect(),
        ));
        self.inner.fetch(queries, start, end, period).await
    }
}

/// A noisy CPU series that jumps at its last point (slot `i` of `n`).
fn cpu(i: usize, n: usize) -> f64 {
    let noise = ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 6.0;
    35.0 + noise + if i + 1 == n { 50.0 } else { 0.0 }
}

fn tick(at: DateTime<Utc>) -> events::Envelope {
    let event = serde_json::json!({
        "version": "0", "id": h::unique("tick"),
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": at.to_rfc3339(), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/vigil-MetricPull"],
        "detail": {}
    });
    events::parse_envelope(event.to_string().as_bytes()).unwrap()
}

/// The CPU window's features from a pull's observations.
fn cpu_window(observed: &[Observation]) -> Vec<f64> {
    observed
        .iter()
        .find(|o| matches!(&o.signal.kind, SignalKind::MetricWindow { metric, .. } if metric == "AWS/EC2/CPUUtilization"))
        .expect("the CPU window")
        .features
        .values
        .clone()
}

#[tokio::test]
async fn the_second_pull_reads_only_new_points_and_scores_as_a_cold_run_over_the_joined_series() {
    let stack = h::Stack::new().await;
    let config = stack.config.clone();
    let (group, ids) = h::create_group(&config, 1).await;
    let instance = ids[0].clone();
    let watch = h::unique("vigil-watch");
    aws_sdk_autoscaling::Client::new(&config)
        .create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(&group)
                .resource_type("auto-scaling-group")
                .key(&watch)
                .value("true")
                .propagate_at_launch(true)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Six hours and five minutes of one-minute points: the first pull ends five minutes
    // before the second.
    let settings = IngestConfig {
        watch_tag: watch,
        ..IngestConfig::default()
    };
    let now = Utc::now().timestamp();
    let second = DateTime::from_timestamp(now - now % 60, 0).unwrap() - Duration::minutes(2);
    let first = second - Duration::minutes(5);
    let n = settings.points + 5;
    let slot = |i: usize| second - Duration::minutes((n - i) as i64);
    let values: Vec<f64> = (0..n).map(|i| cpu(i, n)).collect();
    let cw = aws_sdk_cloudwatch::Client::new(&h::cloudwatch_config());
    let dims = Dimension::builder()
        .name("InstanceId")
        .value(&instance)
        .build();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let data = chunk
            .iter()
            .map(|&i| {
                MetricDatum::builder()
                    .metric_name("CPUUtilization")
                    .dimensions(dims.clone())
                    .timestamp(aws_smithy_types::DateTime::from_secs(slot(i).timestamp()))
                    .value(values[i])
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace("AWS/EC2")
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("PutMetricData");
    }

    let asg = AutoScaling::new(&config);
    let state = vigil_aws::dynamodb::StateTable::new(&config, &stack.table);
    let cloudwatch = CloudWatch::new(&h::cloudwatch_config());
    let recorded = Recorded {
        inner: &cloudwatch,
        reads: Mutex::new(Vec::new()),
    };
    let bucket = DetectorBucket::new(&config, &stack.detector_bucket);
    let ports = IngestPorts {
        instances: &asg,
        history: &state,
        watched: &asg,
        disks: &cloudwatch,
        metrics: &recorded,
        deploys: &state,
        detectors: &bucket,
    };
    let pull = |at| {
        let ports = &ports;
        let settings = &settings;
        async move { ingest::handle(&tick(at), settings, ports).await.unwrap() }
    };

    // The first pull is cold: it reads the whole window and keeps the state in the bucket.
    let one = pull(first).await;
    let kept_bytes = aws_sdk_s3::Client::new(&config)
        .get_object()
        .bucket(&stack.detector_bucket)
        .key(format!("detector/{instance}"))
        .send()
        .await
        .expect("the state is in the bucket")
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let kept = InstanceState::decode(&kept_bytes).expect("the kept state decodes");
    let cpu_state = &kept.metrics["AWS/EC2/CPUUtilization"];
    assert_eq!(cpu_state.end, first.timestamp());
    assert_eq!(cpu_state.window.len(), settings.points);
    assert_eq!(
        kept.metrics.len(),
        1,
        "metrics that never had a point are not kept: {:?}",
        kept.metrics.keys()
    );
    let detector = DetectorConfig::for_window(settings.period, settings.points);
    let joined: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
    assert_eq!(
        cpu_window(&one.observations)[13].to_bits(),
        last_score(&joined[..n - 5], detector).to_bits()
    );

    // The second pull reads the CPU metric from where the first ended: five points.
    recorded.reads.lock().unwrap().clear();
    let two = pull(second).await;
    let reads = recorded.reads.lock().unwrap().clone();
    let cpu_reads: Vec<_> = reads
        .iter()
        .filter(|(_, _, labels)| labels.iter().any(|l| l == "AWS/EC2/CPUUtilization"))
        .collect();
    assert_eq!(cpu_reads.len(), 1, "{reads:?}");
    assert_eq!((cpu_reads[0].0, cpu_reads[0].1), (first, second));
    // Its score is a cold detector's over the joined six hours and five minutes.
    let warm = cpu_window(&two.observations);
    let cold = last_score(&joined, detector);
    assert_eq!(warm[13].to_bits(), cold.to_bits(), "{} vs {cold}", warm[13]);
    assert!(cold > 0.5, "the jump scores as an anomaly: {cold}");

    // The same tick again (the state machine retrying): the CPU metric has nothing new to
    // read, and scores what it scored.
    recorded.reads.lock().unwrap().clear();
    let again = pull(second).await;
    let reads = recorded.reads.lock().unwrap().clone();
    assert!(
        reads
            .iter()
            .all(|(_, _, labels)| !labels.iter().any(|l| l == "AWS/EC2/CPUUtilization")),
        "{reads:?}"
    );
    assert_eq!(cpu_window(&again.observations), warm);

    // A cold pull at the same time (nothing kept) reads the same window: every other feature
    // is the same.
    let forgetful = vigil_lab::memory::MemoryDetectors::forgetful();
    let cold_ports = IngestPorts {
        instances: &asg,
        history: &state,
        watched: &asg,
        disks: &cloudwatch,
        metrics: &cloudwatch,
        deploys: &state,
        detectors: &forgetful,
    };
    let fresh = ingest::handle(&tick(second), &settings, &cold_ports)
        .await
        .unwrap();
    let fresh = cpu_window(&fresh.observations);
    for (i, (a, b)) in warm.iter().zip(&fresh).enumerate() {
        if i != 13 {
            assert_eq!(a.to_bits(), b.to_bits(), "feature {i}");
        }
    }

    // A state that cannot be read is a cold start, not a failed pull.
    aws_sdk_s3::Client::new(&config)
        .put_object()
        .bucket(&stack.detector_bucket)
        .key(format!("detector/{instance}"))
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"not a state",
        ))
        .send()
        .await
        .unwrap();
    recorded.reads.lock().unwrap().clear();
    let three = pull(second + Duration::minutes(1)).await;
    assert!(!cpu_window(&three.observations).is_empty());
    let reads = recorded.reads.lock().unwrap().clone();
    assert!(
        reads
            .iter()
            .all(|(start, end, _)| *end - *start == Duration::minutes(settings.points as i64)),
        "a cold start reads whole windows: {reads:?}"
    );
}

/// Puts one-minute points of an AWS/EC2 or CWAgent metric for an instance into CloudWatch.
async fn put_points(
    namespace: &str,
    metric: &str,
    dims: Vec<Dimension>,
    points: &[(DateTime<Utc>, f64)],
) {
    let cw = aws_sdk_cloudwatch::Client::new(&h::cloudwatch_config());
    for chunk in points.chunks(500) {
        let data = chunk
            .iter()
            .map(|(t, v)| {
                MetricDatum::builder()
                    .metric_name(metric)
                    .set_dimensions(Some(dims.clone()))
                    .timestamp(aws_smithy_types::DateTime::from_secs(t.timestamp()))
                    .value(*v)
                    .build()
            })
            .collect();
        cw.put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(data))
            .send()
            .await
            .expect("PutMetricData");
    }
}

fn dim(name: &str, value: &str) -> Dimension {
    Dimension::builder().name(name).value(value).build()
}

/// The deployed pull, through the real adapters: the tick is planned into the bucket (every
/// watched instance once, with the volumes ListMetrics finds), and a batch of the plan's items
/// is pulled as a child execution pulls it.
#[tokio::test]
async fn the_tick_is_planned_into_the_bucket_and_a_batch_of_its_items_is_pulled() {
    use vigil_core::metrics::fanout::{PlannedBatch, PullBatch};
    use vigil_handlers::ingest::PlanPorts;
    let stack = h::Stack::new().await;
    let config = stack.config.clone();
    let (group, ids) = h::create_group(&config, 3).await;
    let watch = h::unique("vigil-watch");
    aws_sdk_autoscaling::Client::new(&config)
        .create_or_update_tags()
        .tags(
            aws_sdk_autoscaling::types::Tag::builder()
                .resource_id(&group)
                .resource_type("auto-scaling-group")
                .key(&watch)
                .value("true")
                .propagate_at_launch(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let settings = IngestConfig {
        watch_tag: watch,
        ..IngestConfig::default()
    };
    let now = Utc::now().timestamp();
    let at = DateTime::from_timestamp(now - now % 60, 0).unwrap();
    let slots: Vec<DateTime<Utc>> = (1..=settings.points)
        .map(|m| at - Duration::minutes(m as i64))
        .collect();
    // The first instance: CPU, and one volume the agent reports.
    let cpu_points: Vec<_> = slots.iter().map(|t| (*t, 30.0)).collect();
    put_points(
        "AWS/EC2",
        "CPUUtilization",
        vec![dim("InstanceId", &ids[0])],
        &cpu_points,
    )
    .await;
    let disk_points: Vec<_> = slots.iter().map(|t| (*t, 41.0)).collect();
    put_points(
        "CWAgent",
        "disk_used_percent",
        vec![
            dim("InstanceId", &ids[0]),
            dim("path", "/data"),
            dim("device", "nvme1n1"),
            dim("fstype", "xfs"),
        ],
        &disk_points,
    )
    .await;

    let asg = AutoScaling::new(&config);
    let state = vigil_aws::dynamodb::StateTable::new(&config, &stack.table);
    let cloudwatch = CloudWatch::new(&h::cloudwatch_config());
    let bucket = DetectorBucket::new(&config, &stack.detector_bucket);
    let plan_ports = PlanPorts {
        watched: &asg,
        disks: &cloudwatch,
        plans: &bucket,
    };
    let s3 = aws_sdk_s3::Client::new(&config);
    let objects = |prefix: &'static str| {
        let s3 = s3.clone();
        let bucket = stack.detector_bucket.clone();
        async move {
            s3.list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .send()
                .await
                .unwrap()
                .contents()
                .iter()
                .map(|o| o.key().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };

    // Only the schedule's tick is planned: an alarm asked as a plan writes nothing.
    let alarm = events::parse_envelope(
        h::fixture_json("alarm-cpu-high.json")
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let refused = ingest::plan(&alarm, &settings, &plan_ports).await;
    assert!(
        matches!(refused, Err(ingest::IngestError::NotATick(_))),
        "{refused:?}"
    );
    assert_eq!(
        refused.unwrap_err().error_type(),
        ingest::EVENT_REFUSED,
        "final: the workflow does not retry it"
    );
    assert!(objects("pull/").await.is_empty());

    let plan = ingest::plan(&tick(at), &settings, &plan_ports)
        .await
        .unwrap();
    assert_eq!(plan.instances, 3);
    assert_eq!(objects("pull/").await, std::slice::from_ref(&plan.key));
    let body = s3
        .get_object()
        .bucket(&stack.detector_bucket)
        .key(&plan.key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let batches: Vec<PlannedBatch> =
        serde_json::from_slice(&body).expect("the batches as the map reads them");
    assert_eq!(batches.len(), plan.batches);
    let items: Vec<_> = batches.into_iter().flat_map(|b| b.items).collect();
    let mut planned: Vec<&str> = items.iter().map(|i| i.instance.as_str()).collect();
    planned.sort_unstable();
    let mut expected: Vec<&str> = ids.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(planned, expected, "every watched instance once");
    let first = items
        .iter()
        .find(|i| i.instance.as_str() == ids[0])
        .unwrap();
    assert_eq!(
        first.group.as_ref().map(|g| g.as_str()),
        Some(group.as_str())
    );
    assert_eq!(first.disks.len(), 1);
    assert!(first.disks[0].contains(&("path".to_owned(), "/data".to_owned())));

    // A batch of the plan, pulled as a child execution pulls it: the instance's CPU and the
    // volume the plan found, with the batch's own event ids; its detector states kept.
    let batch = PullBatch {
        tick: plan.tick.clone(),
        at: plan.at,
        items: items.clone(),
    };
    let ports = IngestPorts {
        instances: &asg,
        history: &state,
        watched: &asg,
        disks: &cloudwatch,
        metrics: &cloudwatch,
        deploys: &state,
        detectors: &bucket,
    };
    let observed = ingest::pull_batch(&batch, &settings, &ports).await.unwrap();
    assert_eq!(observed.event_id.as_deref(), Some(batch.id().as_str()));
    let windows: Vec<&str> = observed
        .observations
        .iter()
        .filter_map(|o| match &o.signal.kind {
            SignalKind::MetricWindow { metric, .. } => Some(metric.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        windows,
        ["AWS/EC2/CPUUtilization", "CWAgent/disk_used_percent:/data"]
    );
    assert!(
        observed
            .observations
            .iter()
            .all(|o| o.signal.event_id.starts_with(&batch.id())),
        "the batch's own event ids"
    );
    assert_eq!(objects("detector/").await, [format!("detector/{}", ids[0])]);
}

/// A fleet's volumes are listed once for the account, not once per instance, and only the
/// watched instances' are kept.
#[tokio::test]
async fn a_fleets_volumes_are_listed_once_and_only_the_watched_kept() {
    use vigil_handlers::ports::ListDiskMetrics;
    let n = vigil_aws::cloudwatch::LIST_PER_INSTANCE + 5;
    let instances: Vec<vigil_core::metrics::WatchedInstance> = (0..n)
        .map(|i| vigil_core::metrics::WatchedInstance {
            instance: vigil_core::names::InstanceId::parse(&format!(
                "i-{:017x}",
                0x7_0000_0000_u64 + (std::process::id() as u64) * 1000 + i as u64
            ))
            .unwrap(),
            group: Some(vigil_core::names::GroupName::parse("web").unwrap()),
            application: None,
            environment: None,
            tags: Default::default(),
            account: None,
        })
        .collect();
    let now = Utc::now() - Duration::minutes(2);
    let outsider = format!("i-{:017x}", 0x6_0000_0000_u64 + std::process::id() as u64);
    for (id, path) in [
        (instances[0].instance.as_str(), "/"),
        (instances[0].instance.as_str(), "/data"),
        (instances[n - 1].instance.as_str(), "/"),
        (outsider.as_str(), "/"),
    ] {
        put_points(
            "CWAgent",
            "disk_used_percent",
            vec![dim("InstanceId", id), dim("path", path)],
            &[(now, 10.0)],
        )
        .await;
    }
    let cloudwatch = CloudWatch::new(&h::cloudwatch_config());
    let mut found: Vec<(String, String)> = cloudwatch
        .disks(&instances)
        .await
        .unwrap()
        .into_iter()
        .map(|d| {
            let path = d
                .dimensions
                .iter()
                .find(|(k, _)| k == "path")
                .unwrap()
                .1
                .clone();
            (d.instance.as_str().to_owned(), path)
        })
        .collect();
    found.sort();
    let mut expected = vec![
        (instances[0].instance.as_str().to_owned(), "/".to_owned()),
        (
            instances[0].instance.as_str().to_owned(),
            "/data".to_owned(),
        ),
        (
            instances[n - 1].instance.as_str().to_owned(),
            "/".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected);
}
