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
