//! The pull fanned out, at fleet size, on in-memory ports: the schedule's tick planned by
//! ingest as the deployed pull workflow plans it (every instance once, in batches), and every
//! batch run through ingest -> score -> decide as a child execution runs it, from the input
//! the map gives it. Every instance is scored, no window is dropped, and every payload
//! between stages stays under Step Functions' 256 KiB, below the batch's weight.
//!
//! `VIGIL_SCALE_INSTANCES` sets the fleet (10,000 by default); `--nocapture` prints the
//! counts and the time per batch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use vigil_core::domain::{Mode, SignalKind};
use vigil_core::metrics::fanout::{self, PlannedBatch};
use vigil_core::metrics::{DiskMetric, MetricQuery, Series, WatchedInstance};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_handlers::ingest::{self, IngestPorts, PlanPorts, Request};
use vigil_handlers::ports::{FetchMetrics, ListDiskMetrics, ListWatchedInstances, PortError};
use vigil_handlers::score;
use vigil_lab::pipeline::Pipeline;

/// A fleet of `n` instances in groups of 50, each group tagged as platform teams tag them
/// (every fourth group with 30 more, long tags); every tenth instance runs the agent with two
/// volumes.
struct Fleet {
    instances: Vec<WatchedInstance>,
    metric_calls: AtomicUsize,
    metric_queries: AtomicUsize,
    list_calls: AtomicUsize,
}

impl Fleet {
    fn new(n: usize) -> Fleet {
        let instances = (0..n)
            .map(|i| {
                let group = format!("svc-{:04}-prod", i / 50);
                let tags = [
                    ("vigil:watch", "true".to_owned()),
                    ("application", format!("svc-{:04}", i / 50)),
                    ("environment", "prod".to_owned()),
                    ("team", format!("team-{:02}", i / 500)),
                    ("cost-center", format!("cc-{:05}", 10_000 + i / 50)),
                    ("vigil:service", "app.service".to_owned()),
                    (
                        "vigil:pipeline",
                        format!("svc-{:04}-release/Deploy", i / 50),
                    ),
                    (
                        "aws:cloudformation:stack-name",
                        format!("svc-{:04}-prod-compute", i / 50),
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .chain((0..if (i / 50) % 4 == 3 { 30 } else { 0 }).map(|t| {
                    (
                        format!("finops:allocation-{t:02}"),
                        format!("{t:02}-").repeat(40),
                    )
                }))
                .collect();
                WatchedInstance {
                    instance: InstanceId::parse(&format!("i-{:017x}", 0x1000_0000 + i)).unwrap(),
                    group: GroupName::parse(&group).unwrap(),
                    application: Some(format!("svc-{:04}", i / 50)),
                    environment: Some("prod".to_owned()),
                    tags,
                }
            })
            .collect();
        Fleet {
            instances,
            metric_calls: AtomicUsize::new(0),
            metric_queries: AtomicUsize::new(0),
            list_calls: AtomicUsize::new(0),
        }
    }

    fn has_agent(instance: &InstanceId) -> bool {
        instance.as_str().ends_with('0')
    }
}

impl ListWatchedInstances for Fleet {
    async fn watched(&self, _tag_key: &str) -> Result<Vec<WatchedInstance>, PortError> {
        Ok(self.instances.clone())
    }
}

impl ListDiskMetrics for Fleet {
    /// One listing of the account's disk metrics (as the adapter lists a fleet's).
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        self.list_calls
            .fetch_add(instances.len().div_ceil(500).max(1), Ordering::Relaxed);
        Ok(instances
            .iter()
            .filter(|w| Fleet::has_agent(&w.instance))
            .flat_map(|w| {
                ["/", "/var/lib/data"].map(|path| DiskMetric {
                    instance: w.instance.clone(),
                    dimensions: vec![
                        ("path".into(), path.into()),
                        ("device".into(), "nvme0n1p1".into()),
                        ("fstype".into(), "xfs".into()),
                    ],
                })
            })
            .collect())
    }
}

impl FetchMetrics for Fleet {
    /// A steady, slightly noisy series per metric, made up as asked; the agent's metrics only
    /// where the agent runs. Counts calls as GetMetricData would be called (500 queries each).
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        self.metric_calls
            .fetch_add(queries.len().div_ceil(500), Ordering::Relaxed);
        self.metric_queries
            .fetch_add(queries.len(), Ordering::Relaxed);
        let step = i64::from(period);
        let from = start.timestamp().div_euclid(step) * step;
        Ok(queries
            .iter()
            .filter(|q| q.namespace != "CWAgent" || Fleet::has_agent(&q.instance))
            .map(|q| {
                let seed =
                    q.instance.as_str().bytes().map(u64::from).sum::<u64>() + q.metric.len() as u64;
                // A healthy instance: its status checks pass.
                let level = if q.metric == "StatusCheckFailed" {
                    0.0
                } else {
                    10.0 + (seed % 60) as f64
                };
                let series = (from..end.timestamp())
                    .step_by(step as usize)
                    .map(|t| {
                        let wobble = if level == 0.0 {
                            0.0
                        } else {
                            ((t / step) as f64 * 0.1 + seed as f64).sin()
                        };
                        (DateTime::from_timestamp(t, 0).unwrap(), level + wobble)
                    })
                    .collect();
                (q.id.clone(), series)
            })
            .collect())
    }
}

fn size(value: &impl serde::Serialize) -> usize {
    serde_json::to_vec(value).unwrap().len()
}

#[tokio::test(flavor = "current_thread")]
async fn a_fleet_is_planned_once_batched_as_the_workflow_batches_and_every_instance_scored() {
    let n: usize = std::env::var("VIGIL_SCALE_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let fleet = Fleet::new(n);
    let world = Pipeline::new(
        Models::bundled().unwrap(),
        Policy::bundled().unwrap(),
        Mode::DryRun,
    );
    let tick = common::fixture("sources/aws_lambda_events/example-eventbridge-schedule.json");

    // The plan, as the pull workflow's first state asks for it.
    let request = Request::parse(serde_json::json!({ "plan": tick })).unwrap();
    let Request::Plan(tick) = request else {
        panic!("a plan request")
    };
    let plan_ports = PlanPorts {
        watched: &fleet,
        disks: &fleet,
        plans: &world.detectors,
    };
    let plan = ingest::plan(&tick, &world.ingest, &plan_ports)
        .await
        .unwrap();
    assert_eq!(plan.instances, n);
    assert_eq!((plan.volumes_not_read, plan.too_heavy), (0, 0));
    assert!(size(&plan) < 1024, "the plan's own output is small");
    // The map's items, as its ItemReader reads them.
    let plan_bytes = world.detectors.plan(&plan.key).unwrap();
    let batches: Vec<PlannedBatch> = serde_json::from_slice(&plan_bytes).unwrap();
    assert_eq!(batches.len(), plan.batches);
    let ports = IngestPorts {
        instances: &world.fleet,
        history: &world.state,
        watched: &fleet,
        disks: &fleet,
        metrics: &fleet,
        deploys: &world.state,
        detectors: &world.detectors,
    };
    let mut scored_instances = BTreeSet::new();
    let mut windows = 0;
    let mut largest = BTreeMap::<&str, usize>::new();
    let mut decisions = 0;
    let mut tiers = BTreeMap::new();
    let started = std::time::Instant::now();
    let mut heaviest = 0.0_f64;
    for item in &batches {
        // The child's input, as the map's ItemSelector makes it, and the ingest task's payload.
        let child = serde_json::json!({ "tick": plan.tick, "at": plan.at, "items": item.items });
        assert!(size(&child) < fanout::PAYLOAD_LIMIT);
        let weight: usize = item.items.iter().map(fanout::weight).sum();
        let Request::Batch(batch) = Request::parse(serde_json::json!({ "batch": child })).unwrap()
        else {
            panic!("a batch request")
        };
        let observed = ingest::pull_batch(&batch, &world.ingest, &ports)
            .await
            .unwrap();
        let observed_bytes = size(&observed);
        let observed_count = observed.observations.len();
        for o in &observed.observations {
            match &o.signal.kind {
                SignalKind::InstanceMetrics { .. } => {
                    scored_instances.insert(o.signal.resource.id.clone());
                }
                SignalKind::MetricWindow { .. } => windows += 1,
                _ => panic!("a pull observes metrics only"),
            }
        }
        let scored = score::handle(observed, &world.models);
        let scored_bytes = size(&scored);
        assert_eq!(
            scored.scored.len(),
            observed_count,
            "every observation scored"
        );
        let decided = world
            .decide_scored(scored, &batch.id(), plan.at)
            .await
            .unwrap();
        // Healthy readings are not handed on to remediate: only what found something.
        assert!(decided.decisions.iter().all(|d| !d.found_nothing()));
        decisions += decided.decisions.len();
        for d in &decided.decisions {
            *tiers.entry(format!("{:?}", d.tier)).or_insert(0usize) += 1;
        }
        for (stage, bytes) in [
            ("ingest", observed_bytes),
            ("score", scored_bytes),
            ("decide", size(&decided)),
        ] {
            assert!(bytes < fanout::PAYLOAD_LIMIT, "{stage}: {bytes} bytes");
            // The weight the plan batched by bounds every payload from above.
            assert!(bytes <= weight, "{stage}: {bytes} bytes, weight {weight}");
            heaviest = heaviest.max(bytes as f64 / weight as f64);
            let top = largest.entry(stage).or_default();
            *top = (*top).max(bytes);
        }
    }
    let elapsed = started.elapsed();

    // Every instance scored, each once, and every window with data kept.
    assert_eq!(scored_instances.len(), n, "every instance scored");
    let agents = fleet
        .instances
        .iter()
        .filter(|w| Fleet::has_agent(&w.instance))
        .count();
    // Four EC2 metrics for every instance, memory and two volumes where the agent runs.
    assert_eq!(windows, 4 * n + 3 * agents, "no window dropped");
    assert!(
        batches
            .iter()
            .all(|b| b.items.len() <= fanout::BATCH_INSTANCES)
    );
    let flat: BTreeSet<&InstanceId> = batches
        .iter()
        .flat_map(|b| &b.items)
        .map(|i| &i.instance)
        .collect();
    assert_eq!(flat.len(), n, "each instance in exactly one batch");
    // Each batch is one GetMetricData call; the plan lists the account's volumes once.
    assert_eq!(fleet.metric_calls.load(Ordering::Relaxed), batches.len());
    assert_eq!(fleet.list_calls.load(Ordering::Relaxed), n.div_ceil(500));
    println!(
        "{n} instances: a plan of {} bytes, {} batches, {windows} windows, {decisions} decisions {tiers:?}; {} GetMetricData calls \
         ({} queries), {} ListMetrics calls; largest payloads {largest:?} (at most {:.0}% of the batch's weight); {:.1} ms per batch",
        plan_bytes.len(),
        batches.len(),
        fleet.metric_calls.load(Ordering::Relaxed),
        fleet.metric_queries.load(Ordering::Relaxed),
        fleet.list_calls.load(Ordering::Relaxed),
        heaviest * 100.0,
        elapsed.as_secs_f64() * 1e3 / batches.len() as f64,
    );
}
