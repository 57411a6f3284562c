//! The simulated world and the two arms run on it.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::RngExt;
use rand_distr::{Distribution, LogNormal};

use super::{
    AlertRecord, ArmResult, Fault, Humans, Kind, Scenario, ScenarioResult, SimConfig, SimError,
};
use crate::generator::{self, Rng, cloudtrail, telemetry};
use crate::memory::MemoryMetrics;
use crate::pipeline::Pipeline;
use vigil_core::domain::{Action, Decision, FailureMode, Mode, OutcomeStatus, Signal, Tier};
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_core::stages::Observed;
use vigil_handlers::ingest;
use vigil_handlers::ports::RecordDeploy;

mod effects;
mod ops;
mod security;

use effects::*;
use ops::*;
use security::*;

/// Minutes of telemetry before minute 0: the pull's longest window (a day of five-minute
/// points; six hours of one-minute points, from detailed monitoring or lines).
fn history(config: &super::SimConfig) -> usize {
    match config.pull_period_minutes() {
        1 => 360,
        _ => 1440,
    }
}
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

// --- The Vigil arm's stages ------------------------------------------------------------------

/// The Vigil arm runs the in-memory pipeline, in enforce mode with the bundled models and
/// policy.
struct Stages(Pipeline);

impl std::ops::Deref for Stages {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.0
    }
}

fn stage_error(e: &crate::pipeline::PipelineError) -> SimError {
    SimError::Stage(vigil_core::error_chain(e))
}

/// `opinions` with each named one's `enabled` turned off; an unknown name is an error.
fn without_opinions(
    opinions: &vigil_core::policy::Opinions,
    names: &[String],
) -> Result<vigil_core::policy::Opinions, SimError> {
    let known: Vec<&str> = opinions.all().into_iter().map(|(n, _)| n).collect();
    let mut value = serde_json::to_value(opinions).map_err(|e| SimError::Opinion(e.to_string()))?;
    for name in names {
        if !known.contains(&name.as_str()) {
            return Err(SimError::Opinion(format!(
                "no second opinion {name:?}; one of: {}",
                known.join(", ")
            )));
        }
        value[name.as_str()]["enabled"] = serde_json::Value::Bool(false);
    }
    serde_json::from_value(value).map_err(|e| SimError::Opinion(e.to_string()))
}

impl Stages {
    /// The bundled policy, with the second opinions named in `config.without` turned off,
    /// pulling at the period of the fleet's telemetry, from the metrics or the lines.
    fn new(config: &SimConfig) -> Result<Self, SimError> {
        let mut policy = Policy::bundled().map_err(SimError::Policy)?;
        policy.opinions = without_opinions(&policy.opinions, &config.without)?;
        // The operators' map of who deploys what: each group's release pipeline.
        policy.deployments = (0..GROUPS.len())
            .map(|g| vigil_core::policy::Deployment {
                pipeline: format!("{}-release", GROUPS[g]),
                stage: "Prod".to_owned(),
                resources: vec![group_name(g)],
            })
            .collect();
        // As the deployed decide reads the stack's schedule.
        let store = vigil_handlers::decide::PolicyStore::new(
            policy,
            Mode::Enforce,
            vigil_handlers::decide::POLICY_TTL,
        )
        .with_pull_minutes(Some(config.pull_minutes));
        let mut pipeline =
            Pipeline::with_store(Models::bundled().map_err(SimError::Models)?, store);
        if config.telemetry == super::Telemetry::Lines {
            pipeline.metrics = MemoryMetrics::reading_lines();
        }
        let period = config.pull_period_minutes() * 60;
        pipeline.ingest = pipeline
            .ingest
            .clone()
            .at_period(period)
            .ok_or_else(|| SimError::Stage(format!("no pull at {period} s")))?;
        Ok(Stages(pipeline))
    }

    /// score -> decide -> remediate on what ingest observed; the decisions with their outcomes.
    async fn run(
        &self,
        observed: Observed,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Decision, OutcomeStatus)>, SimError> {
        let out = self
            .0
            .run(observed, owner, now)
            .await
            .map_err(|e| stage_error(&e))?;
        Ok(out.into_iter().map(|(d, o)| (d, o.status)).collect())
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
        self.0.ingest(&envelope).await.map_err(|e| stage_error(&e))
    }
}

// --- One arm's bookkeeping ---------------------------------------------------------------------

struct Book {
    faults: Vec<Fault>,
    result: ArmResult,
    cleared: Vec<Option<u32>>,
    /// The minute people started on each fault.
    engaged: Vec<Option<u32>>,
    last_alert: HashMap<String, u32>,
    /// Per principal, the detection rules that report a standing gap in its posture.
    posture_rules: HashMap<String, std::collections::HashSet<String>>,
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
            posture_rules: HashMap::new(),
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

    /// Whether a decision is a true finding about a gap in its principal's posture: no
    /// threat or failure named, and every rule that matched reports one of its gaps.
    fn on_posture_gap(&self, d: &Decision) -> bool {
        let hits = d.incident.rule_hits();
        d.incident.threat.is_none()
            && d.incident.failure_mode == FailureMode::Normal
            && !hits.is_empty()
            && self
                .posture_rules
                .get(d.incident.resource.id.as_str())
                .is_some_and(|rules| hits.iter().all(|h| rules.contains(&h.name)))
    }

    /// Records an alert (once per episode per resource); returns its fault.
    fn alert(&mut self, resources: &[&str], minute: u32, what: &str) -> (bool, Option<usize>) {
        self.alert_with(resources, minute, what, 1.0, "page", false)
    }

    fn alert_with(
        &mut self,
        resources: &[&str],
        minute: u32,
        what: &str,
        confidence: f64,
        tier: &str,
        posture: bool,
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
                posture: posture && fault.is_none(),
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
#[cfg(test)]
mod tests {
    use super::*;
    use vigil_core::names::{AccessKeyId, PipelineName, ServiceName};

    #[test]
    fn the_named_second_opinions_are_turned_off_and_no_other() {
        let all = vigil_core::policy::Opinions::default();
        let off = without_opinions(&all, &["second_look".into(), "repeat".into()]).unwrap();
        for (name, opinion) in off.all() {
            assert_eq!(
                opinion.enabled(),
                !["second_look", "repeat"].contains(&name),
                "{name}"
            );
        }
        let err = without_opinions(&all, &["second_sight".into()]).unwrap_err();
        assert!(err.to_string().contains("one of: second_look"), "{err}");
    }

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
            history: 360,
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

    /// An instance that carries a leak or a filling disk runs the agent all along: its memory
    /// and disk are published before the fault and after it is cleared, not only while it
    /// lasts. Other faults leave an instance's healthy series as drawn.
    #[test]
    fn an_instance_with_a_leak_publishes_memory_before_and_after_it() {
        let mut drawn_without = 0;
        for seed in 1..=5 {
            let config = SimConfig {
                seed,
                ..SimConfig::default()
            };
            for (scenario, kind) in [
                (Scenario::MemoryLeak, FailureMode::MemoryLeak),
                (Scenario::DiskFilling, FailureMode::DiskFilling),
                (Scenario::CpuRunaway, FailureMode::CpuRunaway),
            ] {
                let world = ops::ops_world(&config, scenario, kind);
                for (n, inst) in world.instances.iter().enumerate() {
                    let drawn = world.healthy(n);
                    if inst.faulty.is_some() && kind != FailureMode::CpuRunaway {
                        drawn_without += usize::from(drawn.mem.is_empty());
                        assert_eq!(inst.healthy.mem.len(), world.points, "seed {seed} {kind:?}");
                        assert_eq!(
                            inst.healthy.disk.len(),
                            world.points,
                            "seed {seed} {kind:?}"
                        );
                        assert_eq!(inst.healthy.cpu, drawn.cpu, "seed {seed} {kind:?}");
                    } else {
                        assert_eq!(inst.healthy.mem, drawn.mem, "seed {seed} {kind:?}");
                    }
                }
            }
        }
        assert!(
            drawn_without > 0,
            "no faulty instance was drawn without the agent: no case"
        );
    }
}
