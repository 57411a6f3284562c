//! The simulated world and the two arms run on it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::RngExt;
use rand_distr::{Distribution, LogNormal};

use super::{
    AlertRecord, ArmResult, Fault, Humans, Kind, Scenario, ScenarioResult, SimConfig, SimError,
};
use crate::generator::{self, Rng, cloudtrail, telemetry};
use crate::memory::{
    MemoryAudit, MemoryFleet, MemoryMetrics, MemoryOps, MemoryOutbox, MemoryState,
};
use vigil_core::domain::{Action, Decision, FailureMode, Mode, OutcomeStatus, Signal, Tier};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_core::stages::Observed;
use vigil_handlers::ports::RecordDeploy;
use vigil_handlers::{decide, ingest, remediate, score};

/// Minutes of telemetry before minute 0: the pull's window.
const HISTORY: usize = 360;
/// A replacement instance is in service this long after the old one is marked Unhealthy.
const REPLACE_MINUTES: u32 = 5;
const RESTART_MINUTES: u32 = 2;
const SCALE_MINUTES: u32 = 5;
const ROLLBACK_MINUTES: u32 = 10;
const CONTAIN_MINUTES: u32 = 2;
/// An alert this long after a fault is cleared still belongs to it (alarms lag).
const GRACE: u32 = 15;
/// Alerts on one resource within this long are one alert episode.
const EPISODE: u32 = 30;
const GROUPS: [&str; 3] = ["web", "api", "worker"];
const ACCOUNT: &str = "111122223333";

fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

fn at(minute: u32) -> DateTime<Utc> {
    epoch() + Duration::minutes(i64::from(minute))
}

fn draw(rng: &mut Rng, (median, sigma): (f64, f64)) -> u32 {
    LogNormal::new(median.max(0.1).ln(), sigma.max(0.0))
        .map_or(median, |d| d.sample(rng))
        .round()
        .clamp(1.0, 24.0 * 60.0) as u32
}

fn seed_of(config: &SimConfig, scenario: Scenario, salt: u64) -> u64 {
    config
        .seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((scenario as u64 + 1) << 32)
        .wrapping_add(salt)
}

// --- Telemetry ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    Cpu,
    NetIn,
    NetOut,
    Status,
    Mem,
    Disk,
}

const METRICS: [(Metric, &str, &str); 6] = [
    (Metric::Cpu, "AWS/EC2", "CPUUtilization"),
    (Metric::NetIn, "AWS/EC2", "NetworkIn"),
    (Metric::NetOut, "AWS/EC2", "NetworkOut"),
    (Metric::Status, "AWS/EC2", "StatusCheckFailed"),
    (Metric::Mem, "CWAgent", "mem_used_percent"),
    (Metric::Disk, "CWAgent", "disk_used_percent"),
];

fn series(s: &telemetry::InstanceSample, m: Metric) -> &[Option<f64>] {
    match m {
        Metric::Cpu => &s.cpu,
        Metric::NetIn => &s.net_in,
        Metric::NetOut => &s.net_out,
        Metric::Status => &s.status_failed,
        Metric::Mem => &s.mem,
        Metric::Disk => &s.disk,
    }
}

#[derive(Debug, Clone)]
struct Instance {
    id: InstanceId,
    group: usize,
    healthy: telemetry::InstanceSample,
    /// The fault this instance carries and its series.
    faulty: Option<(usize, telemetry::InstanceSample)>,
    gone_at: Option<u32>,
}

/// Whether a fault shows in a minute: `[onset, cleared)`.
fn active(faults: &[Fault], cleared: &[Option<u32>], f: usize, minute: u32) -> bool {
    faults[f].onset <= minute && cleared[f].is_none_or(|c| minute < c)
}

impl Instance {
    fn value(
        &self,
        m: Metric,
        minute: u32,
        faults: &[Fault],
        cleared: &[Option<u32>],
    ) -> Option<f64> {
        let i = HISTORY + minute as usize;
        let s = match &self.faulty {
            Some((f, s)) if active(faults, cleared, *f, minute) => s,
            _ => &self.healthy,
        };
        series(s, m).get(i).copied().flatten()
    }

    /// Whether users feel the fault in this minute.
    fn impaired(&self, kind: FailureMode, minute: u32) -> bool {
        let Some((_, s)) = &self.faulty else {
            return false;
        };
        let v = |m| {
            series(s, m)
                .get(HISTORY + minute as usize)
                .copied()
                .flatten()
        };
        match kind {
            FailureMode::CpuRunaway => v(Metric::Cpu).is_some_and(|c| c >= 90.0),
            FailureMode::TrafficSurge => v(Metric::Cpu).is_some_and(|c| c >= 85.0),
            FailureMode::MemoryLeak => v(Metric::Mem).is_some_and(|c| c >= 95.0),
            FailureMode::DiskFilling => v(Metric::Disk).is_some_and(|c| c >= 95.0),
            _ => true,
        }
    }
}

// --- Static alarms (the baseline's pages; with Vigil on, events to Vigil) ---------------------

/// CloudWatch-style static alarms: (metric, threshold, datapoints that must breach).
const ALARMS: [(Metric, f64, usize, &str); 4] = [
    (Metric::Cpu, 80.0, 3, "cpu-high"),
    (Metric::Status, 1.0, 2, "status-check-failed"),
    (Metric::Mem, 90.0, 3, "memory-high"),
    (Metric::Disk, 90.0, 3, "disk-high"),
];

/// Which alarms are in ALARM, per instance, updated each minute.
#[derive(Default)]
struct Alarms {
    state: HashMap<(String, usize), bool>,
}

impl Alarms {
    /// The alarms that went into ALARM this minute.
    fn step(
        &mut self,
        inst: &Instance,
        minute: u32,
        faults: &[Fault],
        cleared: &[Option<u32>],
    ) -> Vec<usize> {
        let mut fired = Vec::new();
        for (k, (metric, threshold, n, _)) in ALARMS.iter().enumerate() {
            let breaching = (0..*n as u32).all(|back| {
                minute >= back
                    && inst
                        .value(*metric, minute - back, faults, cleared)
                        .is_some_and(|v| v >= *threshold)
            });
            let key = (inst.id.to_string(), k);
            let was = self.state.get(&key).copied().unwrap_or(false);
            if breaching && !was {
                fired.push(k);
            }
            self.state.insert(key, breaching);
        }
        fired
    }
}

/// What CloudWatch holds of an instance at `minute`: six hours of each metric, reaching back
/// into the history before minute 0.
fn publish(metrics: &MemoryMetrics, inst: &Instance, minute: u32, book: &Book) {
    for (m, ns, name) in METRICS {
        let points: vigil_core::metrics::Series = (i64::from(minute) - HISTORY as i64
            ..i64::from(minute))
            .filter_map(|t| {
                let v = match u32::try_from(t) {
                    Ok(t) => inst.value(m, t, &book.faults, &book.cleared)?,
                    Err(_) => {
                        let i = usize::try_from(HISTORY as i64 + t).ok()?;
                        series(&inst.healthy, m).get(i).copied().flatten()?
                    }
                };
                Some((epoch() + Duration::minutes(t), v))
            })
            .collect();
        if !points.is_empty() || matches!(m, Metric::Cpu) {
            metrics.put(&inst.id, &format!("{ns}/{name}"), points);
        }
    }
}

/// The EventBridge event of an alarm going into ALARM, with its `reasonData` (the breaching
/// datapoints and the threshold) as CloudWatch sends it.
fn alarm_event(instance: &Instance, alarm: usize, minute: u32, book: &Book) -> serde_json::Value {
    let inst = &instance.id;
    let (metric, threshold, n, name) = ALARMS[alarm];
    let recent: Vec<f64> = (0..n as u32)
        .rev()
        .filter_map(|back| {
            instance.value(
                metric,
                minute.checked_sub(back)?,
                &book.faults,
                &book.cleared,
            )
        })
        .collect();
    let reason_data = serde_json::json!({
        "version": "1.0",
        "queryDate": at(minute).to_rfc3339(),
        "statistic": "Average",
        "period": 60,
        "recentDatapoints": recent,
        "threshold": threshold,
        "evaluatedDatapoints": []
    })
    .to_string();
    let (namespace, metric_name) = METRICS
        .iter()
        .find(|(m, _, _)| *m == metric)
        .map(|(_, ns, name)| (*ns, *name))
        .unwrap_or(("AWS/EC2", "CPUUtilization"));
    let time = at(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "version": "0",
        "id": format!("alarm-{inst}-{name}-{minute}"),
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": ACCOUNT,
        "time": time,
        "region": "us-east-1",
        "resources": [format!("arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{name}-{inst}")],
        "detail": {
            "alarmName": format!("{name}-{inst}"),
            "configuration": {"metrics": [{
                "id": "m1",
                "metricStat": {
                    "metric": {"dimensions": {"InstanceId": inst.to_string()}, "name": metric_name, "namespace": namespace},
                    "period": 60, "stat": "Average"
                },
                "returnData": true
            }]},
            "previousState": {"reason": "Threshold Crossed", "timestamp": time, "value": "OK"},
            "state": {
                "reason": format!("Threshold Crossed: {n} out of the last {n} datapoints were greater than or equal to the threshold ({threshold})."),
                "reasonData": reason_data,
                "timestamp": time,
                "value": "ALARM"
            }
        }
    })
}

// --- The Vigil arm's stages ------------------------------------------------------------------

struct Stages {
    models: Models,
    store: decide::PolicyStore,
    fleet: MemoryFleet,
    state: MemoryState,
    outbox: MemoryOutbox,
    metrics: MemoryMetrics,
    ops: MemoryOps,
    audit: MemoryAudit,
}

impl Stages {
    fn new() -> Result<Self, SimError> {
        Ok(Stages {
            models: Models::bundled().map_err(SimError::Models)?,
            store: decide::PolicyStore::new(
                Policy::bundled().map_err(SimError::Policy)?,
                Mode::Enforce,
                decide::POLICY_TTL,
            ),
            fleet: MemoryFleet::default(),
            state: MemoryState::default(),
            outbox: MemoryOutbox::default(),
            metrics: MemoryMetrics::default(),
            ops: MemoryOps::default(),
            audit: MemoryAudit::default(),
        })
    }

    /// score -> decide -> remediate on what ingest observed; the decisions with their outcomes.
    async fn run(
        &self,
        observed: Observed,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Decision, OutcomeStatus)>, SimError> {
        let scored = score::handle(observed, &self.models);
        let ports = decide::DecidePorts {
            claims: &self.state,
            kill_switch: &self.state,
            groups: &self.fleet,
            history: &self.state,
            quotas: &self.state,
            policy: &self.state,
            alerts: &self.outbox,
        };
        let decisions = decide::handle(scored, owner, &self.store, &ports, now)
            .await
            .map_err(|e| SimError::Stage(vigil_core::error_chain(&e)))?;
        let rports = remediate::RemediatePorts {
            kill_switch: &self.state,
            instances: &self.fleet,
            health: &self.fleet,
            alerts: &self.outbox,
            history: &self.state,
            groups: &self.fleet,
            commands: &self.ops,
            pipelines: &self.ops,
            audit: &self.audit,
        };
        let config = remediate::RemediateConfig {
            verify_attempts: 1,
            verify_interval: std::time::Duration::ZERO,
            ..Default::default()
        };
        let mut out = Vec::with_capacity(decisions.decisions.len());
        for d in decisions.decisions {
            let o = remediate::handle(&d, &config, &rports)
                .await
                .map_err(|e| SimError::Stage(vigil_core::error_chain(&e)))?;
            out.push((d, o.status));
        }
        Ok(out)
    }

    /// One EventBridge event through every stage.
    async fn event(
        &self,
        event: &serde_json::Value,
        owner: &str,
        minute: u32,
    ) -> Result<Vec<(Decision, OutcomeStatus)>, SimError> {
        let observed = self.ingest(event).await?;
        self.run(observed, owner, at(minute)).await
    }

    async fn ingest(&self, event: &serde_json::Value) -> Result<Observed, SimError> {
        let envelope: vigil_core::events::Envelope = serde_json::from_value(event.clone())
            .map_err(|e| SimError::Stage(format!("a simulated event is malformed: {e}")))?;
        let ports = ingest::IngestPorts {
            instances: &self.fleet,
            history: &self.state,
            watched: &self.fleet,
            disks: &self.metrics,
            metrics: &self.metrics,
            deploys: &self.state,
        };
        ingest::handle(&envelope, &ingest::IngestConfig::default(), &ports)
            .await
            .map_err(|e| SimError::Stage(vigil_core::error_chain(&e)))
    }
}

/// Whether a decision held a proposed action because of a safety limit (the policy's and
/// decide's holds keep the action and lower the tier to escalate).
fn held_by_limit(d: &Decision) -> bool {
    d.action.is_some()
        && d.tier == Tier::Escalate
        && d.reasons
            .last()
            .is_some_and(|r| r.code.starts_with("limit:"))
}

// --- One arm's bookkeeping ---------------------------------------------------------------------

struct Book {
    faults: Vec<Fault>,
    result: ArmResult,
    cleared: Vec<Option<u32>>,
    /// The minute people started on each fault.
    engaged: Vec<Option<u32>>,
    last_alert: HashMap<String, u32>,
}

impl Book {
    fn new(faults: &[Fault]) -> Self {
        let n = faults.len();
        Book {
            faults: faults.to_vec(),
            result: ArmResult {
                detected: vec![None; n],
                known: vec![None; n],
                cleared: vec![None; n],
                cleared_by: vec![String::new(); n],
                ..ArmResult::default()
            },
            cleared: vec![None; n],
            engaged: vec![None; n],
            last_alert: HashMap::new(),
        }
    }

    /// Clears a fault at `minute` (the earliest clearing wins).
    fn clear(&mut self, f: usize, minute: u32, by: &str) {
        if self.cleared[f].is_none_or(|c| minute < c) {
            self.cleared[f] = Some(minute);
            self.result.cleared[f] = Some(minute);
            self.result.cleared_by[f] = by.to_owned();
        }
    }

    /// The fault an alert on `resources` at `minute` belongs to.
    /// The latest-begun of the faults on those resources that are under way (a principal
    /// can be the victim of more than one attack).
    fn fault_of(&self, resources: &[&str], minute: u32) -> Option<usize> {
        self.faults
            .iter()
            .enumerate()
            .filter(|(f, fault)| {
                // An instance's fault is known by an alert on that instance; a group's (a
                // surge, a deployment) by one on the group or any of its instances. An alert
                // that merely names the group of a faulty instance is not about its fault.
                let on = resources.iter().any(|r| {
                    *r == fault.target
                        || fault.alias.as_deref() == Some(*r)
                        || fault.instances.iter().any(|i| i == r)
                });
                on && fault.onset <= minute && self.cleared[*f].is_none_or(|c| minute < c + GRACE)
            })
            .max_by_key(|(_, fault)| fault.onset)
            .map(|(f, _)| f)
    }

    /// Records an alert (once per episode per resource); returns its fault.
    fn alert(&mut self, resources: &[&str], minute: u32, what: &str) -> (bool, Option<usize>) {
        self.alert_with(resources, minute, what, 1.0, "page")
    }

    fn alert_with(
        &mut self,
        resources: &[&str],
        minute: u32,
        what: &str,
        confidence: f64,
        tier: &str,
    ) -> (bool, Option<usize>) {
        let key = resources.first().copied().unwrap_or("").to_owned();
        let fault = self.fault_of(resources, minute);
        if let Some(f) = fault {
            let known = self.result.known[f].is_none_or(|k| minute < k);
            if self.result.detected[f].is_none() {
                self.result.detected[f] = Some(minute);
            }
            if known {
                self.result.known[f] = Some(minute);
            }
        }
        let new_episode = self
            .last_alert
            .get(&key)
            .is_none_or(|last| minute >= last + EPISODE);
        self.last_alert.insert(key.clone(), minute);
        if new_episode {
            self.result.alerts.push(AlertRecord {
                at: minute,
                resource: key,
                fault,
                what: what.to_owned(),
                confidence,
                tier: tier.to_owned(),
            });
        }
        (new_episode, fault)
    }

    /// A page in the baseline: an alert a person looks at, and works on when it is a fault.
    fn page(&mut self, resource: &str, minute: u32, what: &str) {
        let (new, fault) = self.alert(&[resource], minute, what);
        if new {
            self.result.human_interventions += 1;
        }
        if let Some(f) = fault {
            self.people(f, minute, None);
        }
    }

    /// People take on a fault at `minute`: they fix it after acknowledging (or, `quick`, do
    /// the one thing asked of them).
    fn people(&mut self, f: usize, minute: u32, quick: Option<u32>) {
        if self.engaged[f].is_some() || self.cleared[f].is_some_and(|c| c <= minute) {
            return;
        }
        self.engaged[f] = Some(minute);
        let fault = &self.faults[f];
        let done = minute + fault.ack + quick.unwrap_or(fault.fix);
        self.clear(f, done, "people");
    }

    /// Users report a fault nobody has taken on after it hurt them long enough.
    fn user_reports(&mut self, minute: u32) {
        for f in 0..self.faults.len() {
            let fault = &self.faults[f];
            let Some(impact) = fault.impact_from else {
                continue;
            };
            if self.engaged[f].is_none()
                && self.cleared[f].is_none_or(|c| c > minute)
                && minute == impact + fault.user_report
            {
                self.result.human_interventions += 1;
                if self.result.known[f].is_none() {
                    self.result.known[f] = Some(minute);
                }
                self.people(f, minute, None);
            }
        }
    }
}

// --- The scenario ------------------------------------------------------------------------------

/// Runs one scenario: generates its world and faults, then both arms on them.
pub async fn run_scenario(
    config: &SimConfig,
    scenario: Scenario,
) -> Result<ScenarioResult, SimError> {
    match scenario.kind() {
        Kind::Ops(mode) => ops(config, scenario, mode).await,
        kind @ (Kind::Security(_) | Kind::BruteForce | Kind::Replay) => {
            security(config, scenario, kind).await
        }
    }
}

fn humans_for(rng: &mut Rng, h: &Humans) -> (u32, u32, u32) {
    (
        draw(rng, h.acknowledge),
        draw(rng, h.fix),
        draw(rng, h.user_report),
    )
}

/// Spreads `n` onsets over the run, leaving room to recover before the end.
fn onsets(rng: &mut Rng, n: usize, duration: u32) -> Vec<u32> {
    let (lo, hi) = (60u32, duration.saturating_sub(240).max(61));
    let slot = (hi - lo) / n.max(1) as u32;
    (0..n as u32)
        .map(|k| lo + k * slot + rng.random_range(0..slot.max(1)))
        .collect()
}

fn group_name(g: usize) -> String {
    format!("{}-prod", GROUPS[g % GROUPS.len()])
}

fn instance_id(n: usize) -> InstanceId {
    InstanceId::parse(&format!("i-{:017x}", 0x0a5_0000_0000_0000_u64 + n as u64)).unwrap_or_else(
        |_| InstanceId::parse("i-00000000000000000").unwrap_or_else(|_| unreachable!("a valid id")),
    )
}

fn tags(g: usize) -> BTreeMap<String, String> {
    let app = GROUPS[g % GROUPS.len()];
    [
        ("application", app.to_owned()),
        ("environment", "prod".to_owned()),
        ("vigil:watch", "true".to_owned()),
        ("vigil:service", format!("{app}.service")),
        ("vigil:pipeline", format!("{app}-release")),
        ("vigil:stage", "Prod".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The generated world of an ops scenario, shared by both arms.
struct OpsWorld {
    instances: Vec<Instance>,
    faults: Vec<Fault>,
    kind: FailureMode,
    next_id: usize,
    seed: u64,
    points: usize,
}

impl OpsWorld {
    fn healthy(&self, n: usize) -> telemetry::InstanceSample {
        let mut rng = generator::rng(self.seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        telemetry::series(
            &mut rng,
            FailureMode::Normal,
            telemetry::TelemetryConfig {
                period_secs: 60,
                points: self.points,
            },
            self.points,
        )
    }
}

fn ops_world(config: &SimConfig, scenario: Scenario, kind: FailureMode) -> OpsWorld {
    let seed = seed_of(config, scenario, 1);
    let mut rng = generator::rng(seed);
    let points = HISTORY + config.duration_minutes as usize + 1;
    let tc = telemetry::TelemetryConfig {
        period_secs: 60,
        points,
    };
    let mut world = OpsWorld {
        instances: Vec::new(),
        faults: Vec::new(),
        kind,
        next_id: config.instances.max(GROUPS.len()),
        seed,
        points,
    };
    let n = config.instances.max(GROUPS.len());
    for i in 0..n {
        world.instances.push(Instance {
            id: instance_id(i),
            group: i % GROUPS.len(),
            healthy: world.healthy(i),
            faulty: None,
            gone_at: None,
        });
    }
    let group_level = matches!(kind, FailureMode::BadDeployment | FailureMode::TrafficSurge);
    let count = if group_level {
        config.faults.min(GROUPS.len())
    } else {
        config.faults.min(n)
    };
    let onsets = onsets(&mut rng, count, config.duration_minutes);
    for (k, onset) in onsets.into_iter().enumerate() {
        let (ack, fix, user_report) = humans_for(&mut rng, &config.humans);
        let members: Vec<usize> = if group_level {
            (0..n)
                .filter(|i| i % GROUPS.len() == k % GROUPS.len())
                .collect()
        } else {
            // A different instance each time, across the groups.
            vec![(k * 5 + 1) % n]
        };
        let f = world.faults.len();
        for &i in &members {
            let mut frng = generator::rng(seed ^ (i as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let s = telemetry::series(&mut frng, kind, tc, HISTORY + onset as usize);
            world.instances[i].faulty = Some((f, s));
        }
        let impact_from = (onset..config.duration_minutes).find(|m| {
            members
                .iter()
                .any(|&i| world.instances[i].impaired(kind, *m))
        });
        world.faults.push(Fault {
            target: if group_level {
                group_name(k % GROUPS.len())
            } else {
                world.instances[members[0]].id.to_string()
            },
            group: Some(group_name(members[0] % GROUPS.len())),
            alias: None,
            instances: members
                .iter()
                .map(|&i| world.instances[i].id.to_string())
                .collect(),
            technique: None,
            onset,
            impact_from,
            ack,
            fix,
            user_report,
        });
    }
    world
}

/// The ops scenario: both arms on one generated world.
async fn ops(
    config: &SimConfig,
    scenario: Scenario,
    kind: FailureMode,
) -> Result<ScenarioResult, SimError> {
    let world = ops_world(config, scenario, kind);
    let (baseline, base_line) = ops_arm(config, &world, false).await?;
    let (vigil, vigil_line) = ops_arm(config, &world, true).await?;
    let timeline = base_line
        .into_iter()
        .zip(vigil_line)
        .enumerate()
        .map(|(m, (b, v))| (m as u32, b, v))
        .collect();
    Ok(ScenarioResult {
        scenario,
        duration_minutes: config.duration_minutes,
        faults: world.faults.clone(),
        baseline,
        vigil,
        timeline,
    })
}

fn key_metric(kind: FailureMode) -> Metric {
    match kind {
        FailureMode::MemoryLeak => Metric::Mem,
        FailureMode::DiskFilling => Metric::Disk,
        FailureMode::NetworkPartition => Metric::NetIn,
        FailureMode::InstanceFailure => Metric::Status,
        _ => Metric::Cpu,
    }
}

/// One arm of an ops scenario. Returns its result and the first fault's key metric per minute.
async fn ops_arm(
    config: &SimConfig,
    world: &OpsWorld,
    with_vigil: bool,
) -> Result<(ArmResult, Vec<Option<f64>>), SimError> {
    let mut instances = world.instances.clone();
    let mut next_id = world.next_id;
    let mut book = Book::new(&world.faults);
    let mut alarms = Alarms::default();
    let stages = if with_vigil {
        Some(Stages::new()?)
    } else {
        None
    };
    if let Some(s) = &stages {
        for (g, app) in GROUPS.iter().enumerate() {
            let members: Vec<InstanceId> = instances
                .iter()
                .filter(|i| i.group == g)
                .map(|i| i.id.clone())
                .collect();
            let name =
                GroupName::parse(&group_name(g)).map_err(|e| SimError::Stage(e.to_string()))?;
            s.fleet
                .add_group(&name, 1, members.len() as u32 * 2, &members);
            for (k, v) in tags(g) {
                for m in &members {
                    s.fleet.tag(m, &k, &v);
                }
            }
            s.ops.add_stage(&format!("{app}-release"), "Prod");
        }
    }
    // Effects scheduled by actions: (minute, what).
    let mut pending: Vec<(u32, Effect)> = Vec::new();
    let mut timeline = Vec::with_capacity(config.duration_minutes as usize);
    let watch = world.faults.first().and_then(|f| {
        instances
            .iter()
            .position(|i| i.id.to_string() == f.instances[0])
    });
    let metric = key_metric(world.kind);
    for minute in 0..config.duration_minutes {
        // Effects due now.
        let due: Vec<Effect> = pending
            .iter()
            .filter(|(m, _)| *m == minute)
            .map(|(_, e)| e.clone())
            .collect();
        pending.retain(|(m, _)| *m != minute);
        for e in due {
            match e {
                Effect::Replace(idx) => {
                    let old = instances[idx].clone();
                    instances[idx].gone_at = Some(minute);
                    // A replacement clears a fault of the instance itself once it has begun.
                    // The code's faults (a bad deployment, a surge of traffic) and faults yet
                    // to begin go with the workload onto the new instance.
                    let group_level = matches!(
                        world.kind,
                        FailureMode::BadDeployment | FailureMode::TrafficSurge
                    );
                    let inherited = match &old.faulty {
                        Some((f, s)) if group_level || book.faults[*f].onset > minute => {
                            Some((*f, s.clone()))
                        }
                        Some((f, _)) => {
                            book.clear(*f, minute, "Vigil: replaced");
                            None
                        }
                        None => None,
                    };
                    let fresh = Instance {
                        id: instance_id(next_id),
                        group: old.group,
                        healthy: world.healthy(next_id),
                        faulty: inherited,
                        gone_at: None,
                    };
                    next_id += 1;
                    if let Some((f, _)) = &fresh.faulty {
                        book.faults[*f].instances.push(fresh.id.to_string());
                    }
                    if let Some(s) = &stages {
                        s.fleet.terminate(&old.id);
                        let name = GroupName::parse(&group_name(old.group))
                            .map_err(|e| SimError::Stage(e.to_string()))?;
                        s.fleet.launch(&name, &fresh.id, &tags(old.group));
                    }
                    instances.push(fresh);
                }
                Effect::Clear(f, by) => book.clear(f, minute, &by),
            }
        }
        let live: Vec<usize> = (0..instances.len())
            .filter(|i| instances[*i].gone_at.is_none())
            .collect();

        // Static alarms.
        let mut fired = Vec::new();
        for &i in &live {
            for a in alarms.step(&instances[i], minute, &book.faults, &book.cleared) {
                fired.push((i, a));
            }
        }
        for (i, a) in fired {
            let id = instances[i].id.to_string();
            match &stages {
                None => {
                    book.page(&id, minute, ALARMS[a].3);
                }
                Some(s) => {
                    // CloudWatch has the instance's metrics up to now: the second look reads them.
                    publish(&s.metrics, &instances[i], minute, &book);
                    let event = alarm_event(&instances[i], a, minute, &book);
                    let owner = format!("alarm-{id}-{a}-{minute}");
                    let decisions = s.event(&event, &owner, minute).await?;
                    apply(
                        &decisions,
                        minute,
                        &instances,
                        &mut book,
                        &mut pending,
                        world.kind,
                    );
                }
            }
        }

        // The scheduled pull.
        if let Some(s) = &stages
            && minute % config.pull_minutes.max(1) == 0
        {
            for &i in &live {
                publish(&s.metrics, &instances[i], minute, &book);
            }
            let tick = serde_json::json!({
                "version": "0",
                "id": format!("tick-{minute}"),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": ACCOUNT,
                "time": at(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "region": "us-east-1",
                "resources": [format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/vigil-pull")],
                "detail": {}
            });
            let decisions = s.event(&tick, &format!("tick-{minute}"), minute).await?;
            apply(
                &decisions,
                minute,
                &instances,
                &mut book,
                &mut pending,
                world.kind,
            );
        }

        // A bad deployment is announced by its deploy (the gate's record), which Vigil reads.
        if let Some(s) = &stages
            && world.kind == FailureMode::BadDeployment
        {
            for f in book.faults.iter().filter(|f| f.onset == minute) {
                let app = f.target.trim_end_matches("-prod");
                let _ = s
                    .state
                    .record_deploy(
                        &vigil_core::gate::Deploy {
                            target: format!("{app}/prod"),
                            pipeline: Some(format!("{app}-release")),
                            job_id: format!("job-{minute}"),
                            revision: Some(format!("rev-{minute}")),
                            at: at(minute),
                        },
                        at(minute) + Duration::days(7),
                    )
                    .await;
            }
        }

        book.user_reports(minute);

        // Impact.
        for (f, fault) in book.faults.iter().enumerate() {
            if !active(&book.faults, &book.cleared, f, minute) {
                continue;
            }
            let hurt = instances.iter().any(|i| {
                i.gone_at.is_none_or(|g| minute < g)
                    && i.faulty.as_ref().is_some_and(|(ff, _)| *ff == f)
                    && i.impaired(world.kind, minute)
            });
            if hurt && fault.onset <= minute {
                book.result.impact_minutes += 1;
            }
        }
        timeline.push(watch.and_then(|w| {
            let i = &instances[w];
            if i.gone_at.is_some_and(|g| minute >= g) {
                // The replacement, when there is one.
                instances
                    .iter()
                    .rev()
                    .find(|x| x.group == i.group && x.gone_at.is_none())
                    .and_then(|x| x.value(metric, minute, &book.faults, &book.cleared))
            } else {
                i.value(metric, minute, &book.faults, &book.cleared)
            }
        }));
    }
    Ok((book.result, timeline))
}

#[derive(Debug, Clone)]
enum Effect {
    Replace(usize),
    Clear(usize, String),
}

/// What the world makes of Vigil's decisions: alerts, people engaged, actions' effects.
fn apply(
    decisions: &[(Decision, OutcomeStatus)],
    minute: u32,
    instances: &[Instance],
    book: &mut Book,
    pending: &mut Vec<(u32, Effect)>,
    kind: FailureMode,
) {
    for (d, status) in decisions {
        if held_by_limit(d) {
            book.result.blocked_by_limits += 1;
        }
        if d.tier == Tier::Observe {
            continue;
        }
        let res = &d.incident.resource;
        let group = res.group.as_ref().map(|g| g.to_string());
        let mut names: Vec<&str> = vec![res.id.as_str()];
        if let Some(g) = &group {
            names.push(g);
        }
        let (new, fault) = book.alert_with(
            &names,
            minute,
            &d.incident.what(),
            d.incident.confidence,
            &d.tier.to_string(),
        );
        let acted =
            d.acts() && matches!(status, OutcomeStatus::Verified | OutcomeStatus::Unverified);
        if acted {
            book.result.actions += 1;
            if let Some(a) = &d.action {
                effect(a, minute, instances, book, pending, kind);
            }
            continue;
        }
        // Told or asked: people.
        if new {
            book.result.human_interventions += 1;
        }
        if let Some(f) = fault {
            let quick = matches!(d.tier, Tier::Approval)
                .then(|| d.action.as_ref().map(|_| RESTART_MINUTES))
                .flatten();
            book.people(f, minute, quick);
        }
    }
}

fn effect(
    a: &Action,
    minute: u32,
    instances: &[Instance],
    book: &mut Book,
    pending: &mut Vec<(u32, Effect)>,
    kind: FailureMode,
) {
    let idx = |id: &InstanceId| {
        instances
            .iter()
            .position(|i| &i.id == id && i.gone_at.is_none())
    };
    let fault_on =
        |id: &InstanceId| idx(id).and_then(|i| instances[i].faulty.as_ref().map(|(f, _)| *f));
    let group_fault = |g: &GroupName| {
        book.faults.iter().position(|f| {
            f.target == g.as_str()
                || (f.group.as_deref() == Some(g.as_str()) && f.instances.len() > 1)
        })
    };
    match a {
        Action::ReplaceInstance { instance, .. } | Action::DetachInstance { instance, .. } => {
            if let Some(i) = idx(instance)
                && !pending
                    .iter()
                    .any(|(_, e)| matches!(e, Effect::Replace(x) if *x == i))
            {
                pending.push((minute + REPLACE_MINUTES, Effect::Replace(i)));
            }
        }
        Action::RestartService { instance, .. } => {
            if let Some(f) = fault_on(instance)
                && matches!(kind, FailureMode::CpuRunaway | FailureMode::MemoryLeak)
            {
                pending.push((
                    minute + RESTART_MINUTES,
                    Effect::Clear(f, "Vigil: restarted".into()),
                ));
            }
        }
        Action::ScaleOut { group, .. } => {
            if let Some(f) = group_fault(group)
                && kind == FailureMode::TrafficSurge
            {
                pending.push((
                    minute + SCALE_MINUTES,
                    Effect::Clear(f, "Vigil: scaled out".into()),
                ));
            }
        }
        Action::RollbackDeployment { pipeline, .. } => {
            let app = pipeline.as_str().trim_end_matches("-release");
            let g = format!("{app}-prod");
            if let Some(f) = book.faults.iter().position(|f| f.target == g)
                && kind == FailureMode::BadDeployment
            {
                pending.push((
                    minute + ROLLBACK_MINUTES,
                    Effect::Clear(f, "Vigil: rolled back".into()),
                ));
            }
        }
        Action::DeactivateAccessKey { access_key_id } => {
            if let Some(f) = book
                .faults
                .iter()
                .position(|f| f.alias.as_deref() == Some(access_key_id.as_str()))
            {
                pending.push((
                    minute + CONTAIN_MINUTES,
                    Effect::Clear(f, "Vigil: key deactivated".into()),
                ));
            }
        }
        _ => {}
    }
}

// --- Security ----------------------------------------------------------------------------------

/// CIS-style CloudTrail metric filter alarms, the baseline's security pages: the event names
/// and error codes they count in a five-minute period, and the count that pages.
fn cis_alarm(s: &Signal) -> Option<&'static str> {
    use vigil_core::domain::SignalKind;
    match &s.kind {
        SignalKind::ConsoleSignIn { success: false, .. } => Some("console-sign-in-failures"),
        SignalKind::ApiCall(c) => {
            if c.error_code
                .as_deref()
                .is_some_and(|e| e.contains("AccessDenied") || e.contains("Unauthorized"))
            {
                return Some("unauthorized-api-calls");
            }
            match c.event_name.as_str() {
                "StopLogging" | "DeleteTrail" | "UpdateTrail" | "PutEventSelectors" => {
                    Some("cloudtrail-changes")
                }
                "CreateUser"
                | "CreateAccessKey"
                | "CreateLoginProfile"
                | "AttachUserPolicy"
                | "AttachRolePolicy"
                | "PutUserPolicy"
                | "PutRolePolicy"
                | "CreatePolicy"
                | "CreatePolicyVersion"
                | "DeleteRolePolicy"
                | "DeleteUserPolicy"
                | "DetachUserPolicy"
                | "DetachRolePolicy"
                | "UpdateAssumeRolePolicy"
                | "AddUserToGroup" => Some("iam-policy-changes"),
                "AuthorizeSecurityGroupIngress" | "CreateSecurityGroup" | "DeleteSecurityGroup" => {
                    Some("security-group-changes")
                }
                "PutBucketPolicy" | "PutBucketAcl" | "DeleteBucketPolicy" => {
                    Some("s3-bucket-policy-changes")
                }
                "DisableKey" | "ScheduleKeyDeletion" => Some("kms-key-deletion"),
                _ => None,
            }
        }
        _ => None,
    }
}

/// How many events of a filter in five minutes page (CIS: one; failures and denials: more).
fn cis_threshold(alarm: &str) -> usize {
    match alarm {
        "console-sign-in-failures" => 3,
        "unauthorized-api-calls" => 5,
        _ => 1,
    }
}

/// Days of benign activity before minute 0: the principals' histories a deployed Vigil
/// would hold after running for a week.
const HISTORY_DAYS: u32 = 7;

struct SecurityWorld {
    /// Benign activity before the run.
    history: Vec<Signal>,
    events: Vec<(u32, Signal, Option<usize>)>,
    faults: Vec<Fault>,
    findings: Vec<(u32, usize)>,
}

/// The account's CloudTrail with the scenario's attacks injected: generated attacks of one
/// class, password guessing at humans' console sign-ins, or (`Kind::Replay`) every Stratus
/// detonation of the config replayed as a victim's stolen credentials.
fn security_world(
    config: &SimConfig,
    scenario: Scenario,
    kind: Kind,
) -> Result<SecurityWorld, SimError> {
    let seed = seed_of(config, scenario, 2);
    let mut rng = generator::rng(seed);
    let personas = cloudtrail::personas(&mut rng, ACCOUNT);
    let days = config.duration_minutes.div_ceil(1440).max(1);
    let start = epoch() - Duration::days(i64::from(HISTORY_DAYS));
    let mut history = Vec::new();
    let mut events: Vec<(u32, Signal, Option<usize>)> = Vec::new();
    for l in cloudtrail::benign(&mut rng, &personas, start, days + HISTORY_DAYS) {
        let m = (l.signal.observed_at - epoch()).num_minutes();
        if m < 0 {
            history.push(l.signal);
        } else if m < i64::from(config.duration_minutes) {
            events.push((m as u32, l.signal, None));
        }
    }
    let mut faults = Vec::new();
    let mut findings = Vec::new();
    let class = match kind {
        Kind::Security(class) => class,
        // The guessing is aimed at a sign-in, not at keys: no key and no GuardDuty finding.
        Kind::BruteForce => vigil_core::domain::ThreatClass::CredentialCompromise,
        Kind::Replay => {
            replay_stratus(config, &mut rng, &personas, &mut events, &mut faults)?;
            events.sort_by_key(|(m, s, _)| (*m, s.observed_at));
            return Ok(SecurityWorld {
                history,
                events,
                faults,
                findings,
            });
        }
        Kind::Ops(_) => {
            return Err(SimError::Stage(
                "an operations scenario has no attacks to inject".into(),
            ));
        }
    };
    let brute = kind == Kind::BruteForce;
    let victims: Vec<usize> = (0..personas.len())
        .filter(|&i| {
            if brute {
                // Only people sign in to the console.
                return personas[i].human;
            }
            personas[i].principal.access_key_id.is_some()
                || class != vigil_core::domain::ThreatClass::CredentialCompromise
        })
        .collect();
    let count = config.faults.min(victims.len());
    for (k, onset) in onsets(&mut rng, count, config.duration_minutes)
        .into_iter()
        .enumerate()
    {
        let (ack, fix, user_report) = humans_for(&mut rng, &config.humans);
        let victim = &personas[victims[(k * 3 + 1) % victims.len()]];
        let attack = if brute {
            cloudtrail::brute_force(&mut rng, victim, at(onset), 9000 + k as u64)
        } else {
            cloudtrail::attack(&mut rng, victim, class, at(onset), 9000 + k as u64)
        };
        let last = attack
            .iter()
            .map(|l| (l.signal.observed_at - epoch()).num_minutes().max(0) as u32)
            .max()
            .unwrap_or(onset);
        for l in attack {
            let m = (l.signal.observed_at - epoch()).num_minutes().max(0) as u32;
            if m < config.duration_minutes {
                events.push((m, l.signal, Some(faults.len())));
            }
        }
        if class == vigil_core::domain::ThreatClass::CredentialCompromise && !brute {
            // GuardDuty's own latency before the finding.
            let delay = draw(&mut rng, (12.0, 0.4));
            findings.push((onset + delay, faults.len()));
        }
        faults.push(Fault {
            target: victim.principal.id.clone(),
            group: None,
            // A password guesser holds no key: deactivating one does not stop them.
            alias: if brute {
                None
            } else {
                victim.principal.access_key_id.clone()
            },
            instances: Vec::new(),
            technique: None,
            onset,
            // The intruder works until stopped or done.
            impact_from: None,
            ack,
            fix,
            user_report,
        });
        let _ = last;
    }
    events.sort_by_key(|(m, s, _)| (*m, s.observed_at));
    Ok(SecurityWorld {
        history,
        events,
        faults,
        findings,
    })
}

/// Every Stratus detonation of the config, spread over the run, each by another principal
/// (a human's for the techniques run by a user, else a role's).
fn replay_stratus(
    config: &SimConfig,
    rng: &mut Rng,
    personas: &[cloudtrail::Persona],
    events: &mut Vec<(u32, Signal, Option<usize>)>,
    faults: &mut Vec<Fault>,
) -> Result<(), SimError> {
    let humans: Vec<&cloudtrail::Persona> = personas.iter().filter(|p| p.human).collect();
    let roles: Vec<&cloudtrail::Persona> = personas.iter().filter(|p| !p.human).collect();
    let n = config.stratus.len();
    for (k, onset) in onsets(rng, n, config.duration_minutes)
        .into_iter()
        .enumerate()
    {
        let (ack, fix, user_report) = humans_for(rng, &config.humans);
        let t = &config.stratus[k];
        let signals = crate::eval::threats::technique_signals(t).map_err(SimError::Replay)?;
        let pool = if crate::eval::threats::by_user(&signals) {
            &humans
        } else {
            &roles
        };
        if pool.is_empty() {
            continue;
        }
        let victim = pool[rng.random_range(0..pool.len())];
        for l in crate::eval::threats::replant(signals, victim, at(onset)) {
            let m = (l.signal.observed_at - epoch()).num_minutes().max(0) as u32;
            if m < config.duration_minutes {
                events.push((m, l.signal, Some(faults.len())));
            }
        }
        faults.push(Fault {
            target: victim.principal.id.clone(),
            group: None,
            alias: victim.principal.access_key_id.clone(),
            instances: Vec::new(),
            technique: Some(t.name.clone()),
            onset,
            impact_from: None,
            ack,
            fix,
            user_report,
        });
    }
    Ok(())
}

fn finding_event(key: &str, user: &str, minute: u32, n: usize) -> serde_json::Value {
    let time = at(minute).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    serde_json::json!({
        "version": "0",
        "id": format!("finding-{n}-{minute}"),
        "detail-type": "GuardDuty Finding",
        "source": "aws.guardduty",
        "account": ACCOUNT,
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "schemaVersion": "2.0", "accountId": ACCOUNT, "region": "us-east-1", "partition": "aws",
            "id": format!("{:032x}", 0xf1d0_0000_u64 + n as u64),
            "arn": format!("arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/0123456789abcdef0123456789abcdef/finding/{n}"),
            "type": "UnauthorizedAccess:IAMUser/MaliciousIPCaller",
            "resource": {
                "resourceType": "AccessKey",
                "accessKeyDetails": {"accessKeyId": key, "principalId": "AIDAEXAMPLE", "userName": user, "userType": "IAMUser"}
            },
            "service": {"serviceName": "guardduty", "archived": false, "count": 1,
                "eventFirstSeen": time, "eventLastSeen": time,
                "action": {"actionType": "AWS_API_CALL", "awsApiCallAction": {"api": "ListBuckets", "serviceName": "s3.amazonaws.com", "callerType": "Remote IP", "remoteIpDetails": {"ipAddressV4": "198.51.100.7"}}}},
            "severity": 8.0,
            "createdAt": time, "updatedAt": time,
            "title": format!("API ListBuckets was invoked from a known malicious IP address by {user}."),
            "description": "An API was invoked from an IP address on a threat list."
        }
    })
}

async fn security(
    config: &SimConfig,
    scenario: Scenario,
    kind: Kind,
) -> Result<ScenarioResult, SimError> {
    let world = security_world(config, scenario, kind)?;
    let (baseline, bl) = security_arm(config, &world, false).await?;
    let (vigil, vl) = security_arm(config, &world, true).await?;
    Ok(ScenarioResult {
        scenario,
        duration_minutes: config.duration_minutes,
        faults: world.faults.clone(),
        baseline,
        vigil,
        timeline: bl
            .into_iter()
            .zip(vl)
            .enumerate()
            .map(|(m, (b, v))| (m as u32, b, v))
            .collect(),
    })
}

async fn security_arm(
    config: &SimConfig,
    world: &SecurityWorld,
    with_vigil: bool,
) -> Result<(ArmResult, Vec<Option<f64>>), SimError> {
    let mut book = Book::new(&world.faults);
    let stages = if with_vigil {
        Some(Stages::new()?)
    } else {
        None
    };
    if let Some(st) = &stages {
        // A week of history in the principals' profiles, as a running Vigil has.
        ingest::observe(world.history.clone(), &st.state)
            .await
            .map_err(|e| SimError::Stage(vigil_core::error_chain(&e)))?;
    }
    let mut pending: Vec<(u32, Effect)> = Vec::new();
    let mut window: Vec<(u32, &'static str, String)> = Vec::new();
    let mut timeline = vec![Some(0.0); config.duration_minutes as usize];
    let mut e = 0usize;
    let no_instances: Vec<Instance> = Vec::new();
    for minute in 0..config.duration_minutes {
        let due: Vec<Effect> = pending
            .iter()
            .filter(|(m, _)| *m == minute)
            .map(|(_, e)| e.clone())
            .collect();
        pending.retain(|(m, _)| *m != minute);
        for eff in due {
            if let Effect::Clear(f, by) = eff {
                book.clear(f, minute, &by);
            }
        }
        // This minute's events; an intruder who has been stopped makes none.
        let mut batch: Vec<Signal> = Vec::new();
        while e < world.events.len() && world.events[e].0 == minute {
            let (_, s, f) = &world.events[e];
            e += 1;
            if let Some(f) = f {
                if book.cleared[*f].is_some_and(|c| c <= minute) {
                    continue;
                }
                book.result.impact_minutes +=
                    u32::from(batch.iter().all(|b| b.resource.id != s.resource.id));
                if let Some(t) = timeline.get_mut(minute as usize) {
                    *t = Some(t.unwrap_or(0.0) + 1.0);
                }
            }
            batch.push(s.clone());
        }
        match &stages {
            None => {
                // CIS metric filters over five minutes.
                for s in &batch {
                    if let Some(a) = cis_alarm(s) {
                        window.push((minute, a, s.resource.id.clone()));
                    }
                }
                window.retain(|(m, _, _)| minute < m + 5);
                let mut counts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
                for (_, a, who) in &window {
                    counts.entry(a).or_default().push(who.clone());
                }
                for (a, who) in counts {
                    if who.len() >= cis_threshold(a) {
                        // The page names the filter; people find the principal in the trail.
                        let principal = who.last().cloned().unwrap_or_default();
                        book.page(&principal, minute, a);
                        window.retain(|(_, x, _)| *x != a);
                    }
                }
                for (m, f) in &world.findings {
                    if *m == minute && book.cleared[*f].is_none_or(|c| c > minute) {
                        let target = world.faults[*f].target.clone();
                        book.page(&target, minute, "guardduty-finding");
                    }
                }
            }
            Some(st) => {
                if !batch.is_empty() {
                    let observations = ingest::observe(batch, &st.state)
                        .await
                        .map_err(|e| SimError::Stage(vigil_core::error_chain(&e)))?;
                    let observed = Observed {
                        event_id: Some(format!("minute-{minute}")),
                        observations,
                        ignored: None,
                    };
                    let decisions = st
                        .run(observed, &format!("minute-{minute}"), at(minute))
                        .await?;
                    apply(
                        &decisions,
                        minute,
                        &no_instances,
                        &mut book,
                        &mut pending,
                        FailureMode::Normal,
                    );
                }
                for (m, f) in &world.findings {
                    if *m == minute && book.cleared[*f].is_none_or(|c| c > minute) {
                        let fault = &world.faults[*f];
                        let ev = finding_event(
                            fault.alias.as_deref().unwrap_or_default(),
                            fault.target.rsplit('/').next().unwrap_or("user"),
                            minute,
                            *f,
                        );
                        let decisions = st.event(&ev, &format!("finding-{f}"), minute).await?;
                        apply(
                            &decisions,
                            minute,
                            &no_instances,
                            &mut book,
                            &mut pending,
                            FailureMode::Normal,
                        );
                    }
                }
            }
        }
    }
    Ok((book.result, timeline))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::names::{AccessKeyId, PipelineName, ServiceName};

    fn fault(target: &str, group: &str, instances: &[&str], alias: Option<&str>) -> Fault {
        Fault {
            target: target.into(),
            group: Some(group.into()),
            alias: alias.map(Into::into),
            instances: instances.iter().map(|s| (*s).to_owned()).collect(),
            technique: None,
            onset: 10,
            impact_from: None,
            ack: 5,
            fix: 20,
            user_report: 30,
        }
    }

    /// Which actions clear which faults in the simulated world: only the right ones.
    #[test]
    fn each_fault_is_cleared_only_by_the_action_that_fixes_it() {
        let id = instance_id(1);
        let group = GroupName::parse("web-prod").unwrap_or_else(|_| unreachable!());
        let inst = Instance {
            id: id.clone(),
            group: 0,
            healthy: telemetry::series(
                &mut generator::rng(1),
                FailureMode::Normal,
                telemetry::TelemetryConfig {
                    period_secs: 60,
                    points: 400,
                },
                400,
            ),
            faulty: Some((
                0,
                telemetry::series(
                    &mut generator::rng(1),
                    FailureMode::CpuRunaway,
                    telemetry::TelemetryConfig {
                        period_secs: 60,
                        points: 400,
                    },
                    370,
                ),
            )),
            gone_at: None,
        };
        let instances = vec![inst];
        let restart = Action::RestartService {
            group: group.clone(),
            instance: id.clone(),
            service: ServiceName::parse("web.service").unwrap_or_else(|_| unreachable!()),
        };
        let replace = Action::ReplaceInstance {
            group: group.clone(),
            instance: id.clone(),
        };
        let scale = Action::ScaleOut {
            group: group.clone(),
            by: 1,
        };
        let rollback = Action::RollbackDeployment {
            pipeline: PipelineName::parse("web-release").unwrap_or_else(|_| unreachable!()),
            stage: PipelineName::parse("Prod").unwrap_or_else(|_| unreachable!()),
        };
        let key = "AKIAABCDEFGHIJKLMNOP";
        let deactivate = Action::DeactivateAccessKey {
            access_key_id: AccessKeyId::parse(key).unwrap_or_else(|_| unreachable!()),
        };
        let cases: [(FailureMode, &Action, Option<&str>); 10] = [
            (FailureMode::CpuRunaway, &restart, Some("restarted")),
            (FailureMode::MemoryLeak, &restart, Some("restarted")),
            (FailureMode::InstanceFailure, &restart, None),
            (FailureMode::CpuRunaway, &replace, Some("replace")),
            (FailureMode::TrafficSurge, &scale, Some("scaled out")),
            (FailureMode::CpuRunaway, &scale, None),
            (FailureMode::BadDeployment, &rollback, Some("rolled back")),
            (FailureMode::CpuRunaway, &rollback, None),
            (FailureMode::Normal, &deactivate, Some("key deactivated")),
            (FailureMode::NetworkPartition, &restart, None),
        ];
        for (kind, action, expect) in cases {
            let target = if matches!(kind, FailureMode::TrafficSurge | FailureMode::BadDeployment) {
                "web-prod".to_owned()
            } else {
                id.to_string()
            };
            let idstr = id.to_string();
            let mut book = Book::new(&[fault(&target, "web-prod", &[&idstr], Some(key))]);
            let mut pending = Vec::new();
            effect(action, 20, &instances, &mut book, &mut pending, kind);
            let got = pending.first().map(|(_, e)| match e {
                Effect::Replace(_) => "replace".to_owned(),
                Effect::Clear(_, by) => by.trim_start_matches("Vigil: ").to_owned(),
            });
            assert_eq!(got.as_deref(), expect, "{kind:?} with {action:?}");
        }
    }
}
