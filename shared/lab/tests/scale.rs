//! The pull fanned out, at fleet size, on in-memory ports: an organisation's fleet in 25
//! accounts (the stack's own and 24 members) and 2 Regions, a central stack in each Region
//! (as the stack is deployed: one per Region, member stacks per account and Region). Each
//! stack's tick is planned by ingest as the deployed pull workflow plans it (every instance of
//! every account once, in batches of one account), and every batch is run through ingest ->
//! score -> decide as a child execution runs it, from the input the map gives it. Every
//! instance is scored, its metrics read in its own account, no window is dropped, and every
//! payload between stages stays under Step Functions' 256 KiB, below the batch's weight.
//!
//! `VIGIL_SCALE_INSTANCES` sets the fleet (10,000 by default, over both Regions); `--nocapture`
//! prints the counts and the time per batch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use vigil_core::domain::{Code, Mode, SignalKind};
use vigil_core::metrics::fanout::{self, PlannedBatch};
use vigil_core::metrics::{DiskMetric, MetricQuery, Series, WatchedInstance};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_handlers::ingest::{self, IngestPorts, PlanPorts, Request};
use vigil_handlers::ports::{FetchMetrics, ListDiskMetrics, ListWatchedInstances, PortError};
use vigil_handlers::{decide, score};
use vigil_lab::pipeline::Pipeline;

/// The stack's own account.
const CENTRAL: &str = "123456789012";
/// Accounts in all, the stack's own among them.
const ACCOUNTS: usize = 25;
/// Regions, a central stack in each.
const REGIONS: usize = 2;

/// The account of the `a`-th of [`ACCOUNTS`]: the stack's own first.
fn account(a: usize) -> String {
    if a == 0 {
        CENTRAL.to_owned()
    } else {
        format!("{:012}", 200_000_000_000 + a)
    }
}

/// One Region of the organisation's fleet: `n` instances in groups of 50 spread over the
/// accounts, each group tagged as platform teams tag them (every fourth group with 30 more,
/// long tags; every twentieth set of 50 instances in no group, tagged alike on their own);
/// every tenth instance runs the agent with two volumes.
struct Fleet {
    /// Each account's instances, as its member role lists them.
    accounts: BTreeMap<String, Vec<WatchedInstance>>,
    /// Where each instance is, to check that its metrics are read there.
    account_of: BTreeMap<InstanceId, String>,
    metric_calls: AtomicUsize,
    metric_queries: AtomicUsize,
    list_calls: AtomicUsize,
    /// Queries asked of an account the instance is not in.
    misread: AtomicUsize,
}

impl Fleet {
    fn new(region: usize, n: usize) -> Fleet {
        let mut accounts: BTreeMap<String, Vec<WatchedInstance>> = BTreeMap::new();
        let mut account_of = BTreeMap::new();
        let instances = (0..n).map(|i| {
            let i = i + region * 1_000_000;
            {
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
                // A group is in one account; the stack lists its own groups unmarked.
                let a = (i / 50) % ACCOUNTS;
                WatchedInstance {
                    instance: InstanceId::parse(&format!("i-{:017x}", 0x1000_0000 + i)).unwrap(),
                    // Every twentieth set of 50 is tagged for watching on its own, in no group.
                    group: ((i / 50) % 20 != 19).then(|| GroupName::parse(&group).unwrap()),
                    application: Some(format!("svc-{:04}", i / 50)),
                    environment: Some("prod".to_owned()),
                    tags,
                    account: (a > 0).then(|| account(a)),
                }
            }
        });
        for w in instances {
            let a = w.account.clone().unwrap_or_else(|| CENTRAL.to_owned());
            account_of.insert(w.instance.clone(), a.clone());
            accounts
                .entry(a)
                .or_default()
                .push(WatchedInstance { account: None, ..w });
        }
        Fleet {
            accounts,
            account_of,
            metric_calls: AtomicUsize::new(0),
            metric_queries: AtomicUsize::new(0),
            list_calls: AtomicUsize::new(0),
            misread: AtomicUsize::new(0),
        }
    }

    fn instances(&self) -> impl Iterator<Item = &WatchedInstance> {
        self.accounts.values().flatten()
    }

    /// The member accounts the stack names (a small fleet leaves some empty).
    fn members(&self) -> Vec<String> {
        (1..ACCOUNTS).map(account).collect()
    }

    /// Counts the queries asked of an account its instance is not in.
    fn check_account(&self, account: &str, queries: &[MetricQuery]) {
        let wrong = queries
            .iter()
            .filter(|q| self.account_of.get(&q.instance).map(String::as_str) != Some(account))
            .count();
        self.misread.fetch_add(wrong, Ordering::Relaxed);
    }

    fn has_agent(instance: &InstanceId) -> bool {
        instance.as_str().ends_with('0')
    }
}

impl ListWatchedInstances for Fleet {
    async fn watched(&self, _tag_key: &str) -> Result<Vec<WatchedInstance>, PortError> {
        Ok(self.accounts.get(CENTRAL).cloned().unwrap_or_default())
    }

    /// A member account's instances, as its role lists them (the plan marks their account).
    async fn watched_in(
        &self,
        account: &str,
        _tag_key: &str,
    ) -> Result<Vec<WatchedInstance>, PortError> {
        Ok(self.accounts.get(account).cloned().unwrap_or_default())
    }
}

impl ListDiskMetrics for Fleet {
    /// One listing of the account's disk metrics (as the adapter lists a fleet's).
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        self.volumes(instances)
    }

    async fn disks_in(
        &self,
        _account: &str,
        instances: &[WatchedInstance],
    ) -> Result<Vec<DiskMetric>, PortError> {
        self.volumes(instances)
    }
}

impl Fleet {
    fn volumes(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        self.list_calls
            .fetch_add(instances.len().div_ceil(500), Ordering::Relaxed);
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
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        self.check_account(CENTRAL, queries);
        self.series(queries, start, end, period)
    }

    async fn fetch_in(
        &self,
        account: &str,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        self.check_account(account, queries);
        self.series(queries, start, end, period)
    }
}

impl Fleet {
    /// A steady, slightly noisy series per metric, made up as asked; the agent's metrics only
    /// where the agent runs. Counts calls as GetMetricData would be called (500 queries each).
    fn series(
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

/// What one Region's pull measured.
#[derive(Default)]
struct Pulled {
    instances: usize,
    batches: usize,
    windows: usize,
    decisions: usize,
    member_decisions: usize,
    plan_bytes: usize,
    largest: BTreeMap<&'static str, usize>,
    heaviest: f64,
    metric_calls: usize,
    metric_queries: usize,
    list_calls: usize,
    batch_time: std::time::Duration,
}

/// One Region's central stack plans its tick and runs every batch, as its pull workflow does.
async fn pull_region(region: usize, n: usize) -> Pulled {
    let fleet = Fleet::new(region, n);
    let members = fleet.members();
    assert_eq!(members.len(), ACCOUNTS - 1);
    let mut world = Pipeline::with_store(
        Models::bundled().unwrap(),
        decide::PolicyStore::new(Policy::bundled().unwrap(), Mode::DryRun, decide::POLICY_TTL)
            .with_member_accounts(members.clone()),
    );
    world.ingest.account = Some(CENTRAL.to_owned());
    world.ingest.member_accounts = members;
    // The fixture's tick, from the stack's own account.
    let tick = common::fixture("sources/aws_lambda_events/example-eventbridge-schedule.json");
    assert_eq!(tick.account.as_deref(), Some(CENTRAL));

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
    assert_eq!(
        (
            plan.volumes_not_read,
            plan.too_heavy,
            plan.accounts_not_listed
        ),
        (0, 0, 0)
    );
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
    let mut out = Pulled {
        instances: n,
        batches: batches.len(),
        plan_bytes: plan_bytes.len(),
        ..Pulled::default()
    };
    let mut scored_instances = BTreeSet::new();
    let started = std::time::Instant::now();
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
            // Every observation says which account its instance is in.
            let id = InstanceId::parse(&o.signal.resource.id).unwrap();
            let account = o.signal.resource.account.as_deref().unwrap_or(CENTRAL);
            assert_eq!(fleet.account_of.get(&id).map(String::as_str), Some(account));
            match &o.signal.kind {
                SignalKind::InstanceMetrics { .. } => {
                    assert!(scored_instances.insert(id), "an instance scored once");
                }
                SignalKind::MetricWindow { .. } => out.windows += 1,
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
        out.decisions += decided.decisions.len();
        for d in &decided.decisions {
            // A member account's instance is decided on as that account's, under its role.
            if d.incident.resource.account.is_some() {
                assert!(d.cites(&Code::MemberAccount), "{:?}", d.reasons);
                out.member_decisions += 1;
            }
        }
        for (stage, bytes) in [
            ("ingest", observed_bytes),
            ("score", scored_bytes),
            ("decide", size(&decided)),
        ] {
            assert!(bytes < fanout::PAYLOAD_LIMIT, "{stage}: {bytes} bytes");
            // The weight the plan batched by bounds every payload from above.
            assert!(bytes <= weight, "{stage}: {bytes} bytes, weight {weight}");
            out.heaviest = out.heaviest.max(bytes as f64 / weight as f64);
            let top = out.largest.entry(stage).or_default();
            *top = (*top).max(bytes);
        }
    }
    out.batch_time = started.elapsed();

    // Every instance scored, each once, and every window with data kept.
    assert_eq!(scored_instances.len(), n, "every instance scored");
    let alone = fleet.instances().filter(|w| w.group.is_none()).count();
    assert!(
        alone > 0 || n < 1_000,
        "instances outside any group are in the fleet"
    );
    assert_eq!(
        fleet.misread.load(Ordering::Relaxed),
        0,
        "metrics read in each instance's own account"
    );
    let agents = fleet
        .instances()
        .filter(|w| Fleet::has_agent(&w.instance))
        .count();
    // Four EC2 metrics for every instance, memory and two volumes where the agent runs.
    assert_eq!(out.windows, 4 * n + 3 * agents, "no window dropped");
    assert!(batches.iter().all(|b| {
        b.items.len() <= fanout::BATCH_INSTANCES
            && b.items.iter().all(|i| i.account == b.items[0].account)
    }));
    let flat: BTreeSet<&InstanceId> = batches
        .iter()
        .flat_map(|b| &b.items)
        .map(|i| &i.instance)
        .collect();
    assert_eq!(flat.len(), n, "each instance in exactly one batch");
    let batched_accounts: BTreeSet<_> = batches.iter().map(|b| &b.items[0].account).collect();
    assert_eq!(
        batched_accounts.len(),
        fleet.accounts.len(),
        "every account with instances pulled"
    );
    // Each batch is one GetMetricData call; the plan lists each account's volumes once.
    out.metric_calls = fleet.metric_calls.load(Ordering::Relaxed);
    out.metric_queries = fleet.metric_queries.load(Ordering::Relaxed);
    out.list_calls = fleet.list_calls.load(Ordering::Relaxed);
    assert_eq!(out.metric_calls, batches.len());
    assert_eq!(
        out.list_calls,
        fleet
            .accounts
            .values()
            .map(|a| a.len().div_ceil(500))
            .sum::<usize>()
    );
    out
}

#[tokio::test(flavor = "current_thread")]
async fn an_organisations_fleet_is_planned_once_batched_by_account_and_every_instance_scored() {
    let n: usize = std::env::var("VIGIL_SCALE_INSTANCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let mut total = Pulled::default();
    for region in 0..REGIONS {
        let share = n / REGIONS + usize::from(region < n % REGIONS);
        let p = pull_region(region, share).await;
        println!(
            "Region {region}: {} instances in {ACCOUNTS} accounts, a plan of {} bytes, {} batches, {} windows, \
             {} decisions ({} in member accounts); {} GetMetricData calls ({} queries), {} ListMetrics calls; \
             largest payloads {:?} (at most {:.0}% of the batch's weight); {:.1} ms per batch",
            p.instances,
            p.plan_bytes,
            p.batches,
            p.windows,
            p.decisions,
            p.member_decisions,
            p.metric_calls,
            p.metric_queries,
            p.list_calls,
            p.largest,
            p.heaviest * 100.0,
            p.batch_time.as_secs_f64() * 1e3 / p.batches.max(1) as f64,
        );
        total.instances += p.instances;
        total.batches += p.batches;
        total.windows += p.windows;
        total.metric_calls += p.metric_calls;
    }
    assert_eq!(total.instances, n, "every instance of both Regions pulled");
    println!(
        "{n} instances in {ACCOUNTS} accounts and {REGIONS} Regions: {} batches, {} windows, {} GetMetricData calls",
        total.batches, total.windows, total.metric_calls
    );
}
