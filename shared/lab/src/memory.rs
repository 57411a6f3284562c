//! In-memory implementations of the ports: the local world behind `vigil replay`, the handler
//! unit tests and the simulator. They change their state the way AWS would, so a test can
//! assert the world afterwards (an instance marked Unhealthy, a message published).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use vigil_core::alert::Alert;
use vigil_core::domain::{Attempt, GroupCapacity, Membership};
use vigil_core::features::identity::PrincipalProfile;
use vigil_core::metrics::{DiskMetric, MetricQuery, Series, WatchedInstance};
use vigil_core::names::{GroupName, InstanceId, PipelineName};
use vigil_handlers::ports::{
    ActionHistory, AutomationStatus, Claim, ClaimOnce, CommandStatus, DescribeGroup,
    DescribeInstance, DetachFromGroup, DisableTransition, FetchMetrics, JobResult, ListDiskMetrics,
    ListWatchedInstances, PortError, PortErrorKind, PrincipalHistory, PublishAlert,
    ReadDeploymentFreeze, ReadKillSwitch, ReadPolicy, RecordIncident, ReportJobResult, RunCommand,
    SetDesiredCapacity, SetInstanceHealth, StartAutomation, TakeQuota, TransitionEnabled,
};

/// A mutex that shrugs off poisoning: a panicking test thread must not hide the world.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
struct Group {
    min: u32,
    max: u32,
    desired: u32,
    suspended: Vec<String>,
}

#[derive(Debug, Clone)]
struct Instance {
    group: GroupName,
    health: String,
    lifecycle: String,
    tags: BTreeMap<String, String>,
}

impl Instance {
    /// The first of `keys` among the group's tags, as the Auto Scaling adapter reads the
    /// application and environment.
    fn tag(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.tags.get(*k).cloned())
    }
}

/// Auto Scaling groups and their instances.
#[derive(Debug, Default)]
pub struct MemoryFleet {
    groups: Mutex<BTreeMap<GroupName, Group>>,
    instances: Mutex<BTreeMap<InstanceId, Instance>>,
}

impl MemoryFleet {
    /// Adds a group whose instances are all InService and healthy.
    pub fn add_group(&self, name: &GroupName, min: u32, max: u32, instances: &[InstanceId]) {
        let desired = u32::try_from(instances.len()).unwrap_or(u32::MAX);
        lock(&self.groups).insert(
            name.clone(),
            Group {
                min,
                max,
                desired,
                suspended: Vec::new(),
            },
        );
        let mut all = lock(&self.instances);
        for i in instances {
            all.insert(
                i.clone(),
                Instance {
                    group: name.clone(),
                    health: "HEALTHY".into(),
                    lifecycle: "InService".into(),
                    tags: BTreeMap::new(),
                },
            );
        }
    }

    /// Tags an instance's group (in memory, on the instance itself).
    pub fn tag(&self, instance: &InstanceId, key: &str, value: &str) {
        if let Some(i) = lock(&self.instances).get_mut(instance) {
            i.tags.insert(key.to_owned(), value.to_owned());
        }
    }

    /// Adds an InService, healthy instance to an existing group (a launch), with tags. The
    /// desired capacity is the caller's to keep.
    pub fn launch(
        &self,
        group: &GroupName,
        instance: &InstanceId,
        tags: &BTreeMap<String, String>,
    ) {
        lock(&self.instances).insert(
            instance.clone(),
            Instance {
                group: group.clone(),
                health: "HEALTHY".into(),
                lifecycle: "InService".into(),
                tags: tags.clone(),
            },
        );
    }

    /// Takes an instance out of its group for good (a termination).
    pub fn terminate(&self, instance: &InstanceId) {
        lock(&self.instances).remove(instance);
    }

    /// A group's desired capacity.
    pub fn desired(&self, group: &GroupName) -> Option<u32> {
        lock(&self.groups).get(group).map(|g| g.desired)
    }

    /// The instance's health as Auto Scaling reports it.
    pub fn health(&self, instance: &InstanceId) -> Option<String> {
        lock(&self.instances)
            .get(instance)
            .map(|i| i.health.clone())
    }
}

impl DescribeInstance for MemoryFleet {
    async fn membership(&self, instance: &InstanceId) -> Result<Option<Membership>, PortError> {
        Ok(lock(&self.instances).get(instance).map(|i| Membership {
            group: i.group.clone(),
            health: i.health.clone(),
            lifecycle: i.lifecycle.clone(),
            application: i.tag(&["application", "app"]),
            environment: i.tag(&["environment", "env", "stage"]),
            tags: i.tags.clone(),
        }))
    }
}

impl DescribeGroup for MemoryFleet {
    async fn capacity(&self, group: &GroupName) -> Result<GroupCapacity, PortError> {
        let g = lock(&self.groups).get(group).cloned().ok_or_else(|| {
            PortError::new(
                "DescribeGroup",
                PortErrorKind::NotFound,
                format!("no group {group}"),
            )
        })?;
        let in_service = lock(&self.instances)
            .values()
            .filter(|i| &i.group == group && i.lifecycle == "InService" && i.health == "HEALTHY")
            .count();
        Ok(GroupCapacity {
            min_size: g.min,
            max_size: g.max,
            desired: g.desired,
            in_service: u32::try_from(in_service).unwrap_or(u32::MAX),
        })
    }
}

impl SetInstanceHealth for MemoryFleet {
    async fn set_unhealthy(&self, instance: &InstanceId) -> Result<(), PortError> {
        match lock(&self.instances).get_mut(instance) {
            Some(i) => {
                i.health = "UNHEALTHY".into();
                Ok(())
            }
            None => Err(PortError::new(
                "SetInstanceHealth",
                PortErrorKind::NotFound,
                format!("no instance {instance}"),
            )),
        }
    }
}

impl SetDesiredCapacity for MemoryFleet {
    async fn set_desired(&self, group: &GroupName, desired: u32) -> Result<(), PortError> {
        let mut groups = lock(&self.groups);
        let g = groups.get_mut(group).ok_or_else(|| {
            PortError::new(
                "SetDesiredCapacity",
                PortErrorKind::NotFound,
                format!("no group {group}"),
            )
        })?;
        if desired < g.min || desired > g.max {
            return Err(PortError::new(
                "SetDesiredCapacity",
                PortErrorKind::Rejected,
                format!("{desired} is outside [{}, {}]", g.min, g.max),
            ));
        }
        g.desired = desired;
        Ok(())
    }
}

impl DetachFromGroup for MemoryFleet {
    async fn detach(&self, group: &GroupName, instance: &InstanceId) -> Result<(), PortError> {
        let mut all = lock(&self.instances);
        match all.get(instance) {
            Some(i) if &i.group == group => {
                all.remove(instance);
                Ok(())
            }
            _ => Err(PortError::new(
                "DetachInstances",
                PortErrorKind::NotFound,
                format!("{instance} is not in {group}"),
            )),
        }
    }
}

impl vigil_handlers::ports::ScalingProcesses for MemoryFleet {
    async fn set_processes(
        &self,
        group: &GroupName,
        processes: &[&str],
        suspend: bool,
    ) -> Result<(), PortError> {
        let mut groups = lock(&self.groups);
        let g = groups.get_mut(group).ok_or_else(|| {
            PortError::new(
                "SuspendProcesses",
                PortErrorKind::NotFound,
                format!("no group {group}"),
            )
        })?;
        for p in processes {
            g.suspended.retain(|s| s != p);
            if suspend {
                g.suspended.push((*p).to_owned());
            }
        }
        Ok(())
    }

    async fn suspended(&self, group: &GroupName) -> Result<Vec<String>, PortError> {
        Ok(lock(&self.groups)
            .get(group)
            .map(|g| g.suspended.clone())
            .unwrap_or_default())
    }
}

/// Parameters as a document received them.
pub type Parameters = Vec<(String, String)>;
/// A command sent: (document, instance, parameters).
pub type SentCommand = (String, InstanceId, Parameters);

/// Run Command, Automation and pipeline transitions, as SSM and CodePipeline would record them.
/// Commands and runbooks succeed unless told to end otherwise.
#[derive(Debug, Default)]
pub struct MemoryOps {
    /// (document, instance, parameters) of every command sent.
    commands: Mutex<Vec<SentCommand>>,
    /// (document, parameters) of every runbook started.
    automations: Mutex<Vec<(String, Parameters)>>,
    /// The status every command and runbook ends in (default `Success`).
    ending: Mutex<Option<String>>,
    /// Disabled transitions: (pipeline, stage) -> reason.
    frozen: Mutex<BTreeMap<(String, String), String>>,
    /// Known (pipeline, stage) pairs; empty means every stage exists.
    stages: Mutex<Vec<(String, String)>>,
    /// Stages rolled back: (pipeline, stage).
    rollbacks: Mutex<Vec<(String, String)>>,
    /// Executions stopped: (pipeline, execution).
    stopped: Mutex<Vec<(String, String)>>,
}

fn pairs(parameters: &[(&str, &str)]) -> Parameters {
    parameters
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

impl MemoryOps {
    /// Declares a pipeline stage; once any is declared, others do not exist.
    pub fn add_stage(&self, pipeline: &str, stage: &str) {
        lock(&self.stages).push((pipeline.to_owned(), stage.to_owned()));
    }

    pub fn rollbacks(&self) -> Vec<(String, String)> {
        lock(&self.rollbacks).clone()
    }

    /// Makes every later command and runbook end in `status`.
    pub fn end_with(&self, status: &str) {
        *lock(&self.ending) = Some(status.to_owned());
    }

    pub fn commands(&self) -> Vec<SentCommand> {
        lock(&self.commands).clone()
    }

    pub fn automations(&self) -> Vec<(String, Parameters)> {
        lock(&self.automations).clone()
    }

    /// The reason the transition into `pipeline/stage` was disabled, if it is.
    pub fn frozen(&self, pipeline: &str, stage: &str) -> Option<String> {
        lock(&self.frozen)
            .get(&(pipeline.to_owned(), stage.to_owned()))
            .cloned()
    }

    fn status(&self) -> String {
        lock(&self.ending)
            .clone()
            .unwrap_or_else(|| "Success".to_owned())
    }
}

impl RunCommand for MemoryOps {
    async fn run(
        &self,
        instance: &InstanceId,
        document: &str,
        parameters: &[(&str, &str)],
    ) -> Result<String, PortError> {
        let mut all = lock(&self.commands);
        all.push((document.to_owned(), instance.clone(), pairs(parameters)));
        Ok(format!("command-{}", all.len()))
    }
}

impl CommandStatus for MemoryOps {
    async fn command_status(&self, _: &str, _: &InstanceId) -> Result<String, PortError> {
        Ok(self.status())
    }
}

impl StartAutomation for MemoryOps {
    async fn start_automation(
        &self,
        document: &str,
        parameters: &[(&str, &str)],
    ) -> Result<String, PortError> {
        let mut all = lock(&self.automations);
        all.push((document.to_owned(), pairs(parameters)));
        Ok(format!("automation-{}", all.len()))
    }
}

impl AutomationStatus for MemoryOps {
    async fn automation_status(&self, _: &str) -> Result<String, PortError> {
        Ok(self.status())
    }
}

impl DisableTransition for MemoryOps {
    async fn disable_transition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        reason: &str,
    ) -> Result<(), PortError> {
        lock(&self.frozen).insert((pipeline.to_string(), stage.to_string()), reason.to_owned());
        Ok(())
    }
}

impl vigil_handlers::ports::RollbackStage for MemoryOps {
    async fn rollback(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<String, PortError> {
        let mut all = lock(&self.rollbacks);
        all.push((pipeline.to_string(), stage.to_string()));
        Ok(format!("execution-good-{}", all.len()))
    }

    async fn stage_status(
        &self,
        _: &PipelineName,
        _: &PipelineName,
    ) -> Result<Option<String>, PortError> {
        Ok(Some(match self.status().as_str() {
            "Success" => "Succeeded".to_owned(),
            other => other.to_owned(),
        }))
    }
}

impl vigil_handlers::ports::StopAndResume for MemoryOps {
    async fn stop_execution(
        &self,
        pipeline: &PipelineName,
        execution: &PipelineName,
        _reason: &str,
    ) -> Result<(), PortError> {
        lock(&self.stopped).push((pipeline.to_string(), execution.to_string()));
        Ok(())
    }

    async fn enable_transition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<(), PortError> {
        lock(&self.frozen).remove(&(pipeline.to_string(), stage.to_string()));
        Ok(())
    }

    async fn execution_status(
        &self,
        pipeline: &PipelineName,
        execution: &PipelineName,
    ) -> Result<Option<String>, PortError> {
        let key = (pipeline.to_string(), execution.to_string());
        Ok(Some(if lock(&self.stopped).contains(&key) {
            "Stopped".to_owned()
        } else {
            "InProgress".to_owned()
        }))
    }
}

impl TransitionEnabled for MemoryOps {
    async fn transition_enabled(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<Option<bool>, PortError> {
        let key = (pipeline.to_string(), stage.to_string());
        let stages = lock(&self.stages);
        if !stages.is_empty() && !stages.contains(&key) {
            return Ok(None);
        }
        Ok(Some(!lock(&self.frozen).contains_key(&key)))
    }
}

/// The audit trail as a list of chained records.
#[derive(Debug, Default)]
pub struct MemoryAudit {
    records: Mutex<Vec<vigil_core::audit::AuditRecord>>,
    broken: Mutex<bool>,
}

impl MemoryAudit {
    pub fn records(&self) -> Vec<vigil_core::audit::AuditRecord> {
        lock(&self.records).clone()
    }

    /// Makes every later append fail (the store is unreachable).
    pub fn break_store(&self) {
        *lock(&self.broken) = true;
    }
}

impl vigil_handlers::ports::AppendAudit for MemoryAudit {
    async fn append(
        &self,
        kind: &str,
        subject: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> Result<vigil_core::audit::AuditRecord, PortError> {
        if *lock(&self.broken) {
            return Err(PortError::new(
                "audit:append",
                PortErrorKind::Transient,
                "the audit store is unreachable",
            ));
        }
        let mut all = lock(&self.records);
        let r = vigil_core::audit::AuditRecord::next(all.last(), at, kind, subject, payload);
        all.push(r.clone());
        Ok(r)
    }
}

/// Published alerts, kept in order.
#[derive(Debug, Default)]
pub struct MemoryOutbox {
    sent: Mutex<Vec<Alert>>,
}

impl MemoryOutbox {
    pub fn sent(&self) -> Vec<Alert> {
        lock(&self.sent).clone()
    }
}

impl PublishAlert for MemoryOutbox {
    async fn publish(&self, alert: &Alert) -> Result<String, PortError> {
        let mut sent = lock(&self.sent);
        sent.push(alert.clone());
        Ok(format!("memory-{}", sent.len()))
    }
}

/// Expiring claims, deployment freezes, the kill switch and answered jobs.
#[derive(Debug, Default)]
pub struct MemoryState {
    claims: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
    freezes: Mutex<HashMap<String, String>>,
    kill_switch: Mutex<bool>,
    jobs: Mutex<Vec<(String, JobResult)>>,
    principals: Mutex<HashMap<String, PrincipalProfile>>,
    attempts: Mutex<HashMap<String, Vec<Attempt>>>,
    quotas: Mutex<HashMap<String, u32>>,
    policy: Mutex<Option<(String, String)>>,
    incidents: Mutex<BTreeMap<String, (vigil_core::domain::Tier, vigil_core::domain::Incident)>>,
    deploys: Mutex<HashMap<String, vigil_core::gate::Deploy>>,
    sightings: Mutex<HashMap<String, BTreeMap<String, DateTime<Utc>>>>,
    approvals: Mutex<Vec<(vigil_handlers::ports::ApprovalAction, bool, String)>>,
    pending: Mutex<HashMap<String, (vigil_core::domain::Decision, DateTime<Utc>)>>,
    sent: Mutex<HashMap<String, (String, DateTime<Utc>)>>,
}

impl MemoryState {
    pub fn set_kill_switch(&self, engaged: bool) {
        *lock(&self.kill_switch) = engaged;
    }

    pub fn freeze(&self, target: &str, reason: &str) {
        lock(&self.freezes).insert(target.to_owned(), reason.to_owned());
    }

    /// Sets the policy override (text, version).
    pub fn set_policy(&self, text: &str, version: &str) {
        *lock(&self.policy) = Some((text.to_owned(), version.to_owned()));
    }

    /// The recorded incidents' ids.
    pub fn incidents(&self) -> Vec<String> {
        lock(&self.incidents).keys().cloned().collect()
    }

    pub fn jobs(&self) -> Vec<(String, JobResult)> {
        lock(&self.jobs).clone()
    }

    /// The manual approval actions answered: (action, approved, summary).
    pub fn approvals(&self) -> Vec<(vigil_handlers::ports::ApprovalAction, bool, String)> {
        lock(&self.approvals).clone()
    }
}

impl ClaimOnce for MemoryState {
    async fn claim(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Claim, PortError> {
        let mut claims = lock(&self.claims);
        match claims.get(key) {
            Some((held_by, expires)) if held_by != owner && *expires >= now => Ok(Claim::Held),
            _ => {
                claims.insert(key.to_owned(), (owner.to_owned(), until));
                Ok(Claim::Won)
            }
        }
    }
}

impl ReadKillSwitch for MemoryState {
    async fn engaged(&self) -> Result<bool, PortError> {
        Ok(*lock(&self.kill_switch))
    }
}

impl ReadDeploymentFreeze for MemoryState {
    async fn freeze(&self, target: &str, _now: DateTime<Utc>) -> Result<Option<String>, PortError> {
        Ok(lock(&self.freezes).get(target).cloned())
    }
}

impl vigil_handlers::ports::SetDeploymentFreeze for MemoryState {
    async fn set_freeze(
        &self,
        target: &str,
        reason: &str,
        _until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        self.freeze(target, reason);
        Ok(())
    }
}

impl ReportJobResult for MemoryState {
    async fn report(&self, job_id: &str, result: &JobResult) -> Result<(), PortError> {
        lock(&self.jobs).push((job_id.to_owned(), result.clone()));
        Ok(())
    }
}

impl PrincipalHistory for MemoryState {
    async fn load(&self, principal: &str) -> Result<Option<PrincipalProfile>, PortError> {
        Ok(lock(&self.principals).get(principal).cloned())
    }

    async fn save(
        &self,
        principal: &str,
        profile: &PrincipalProfile,
        _now: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.principals).insert(principal.to_owned(), profile.clone());
        Ok(())
    }
}

impl ListWatchedInstances for MemoryFleet {
    /// Every group of the in-memory fleet is watched.
    async fn watched(&self, _tag_key: &str) -> Result<Vec<WatchedInstance>, PortError> {
        Ok(lock(&self.instances)
            .iter()
            .map(|(id, i)| WatchedInstance {
                instance: id.clone(),
                group: i.group.clone(),
                application: i.tag(&["application", "app"]),
                environment: i.tag(&["environment", "env", "stage"]),
                tags: i.tags.clone(),
            })
            .collect())
    }
}

/// Metric datapoints by instance and `Namespace/MetricName`.
#[derive(Debug, Default)]
pub struct MemoryMetrics {
    series: Mutex<BTreeMap<(InstanceId, String), Series>>,
}

impl MemoryMetrics {
    pub fn put(&self, instance: &InstanceId, metric: &str, points: Series) {
        lock(&self.series).insert((instance.clone(), metric.to_owned()), points);
    }
}

impl FetchMetrics for MemoryMetrics {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        _period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        let series = lock(&self.series);
        Ok(queries
            .iter()
            .filter_map(|q| {
                let key = (q.instance.clone(), format!("{}/{}", q.namespace, q.metric));
                let points = series.get(&key)?;
                let inside = points
                    .iter()
                    .filter(|(t, _)| *t >= start && *t < end)
                    .copied()
                    .collect();
                Some((q.id.clone(), inside))
            })
            .collect())
    }
}

impl ListDiskMetrics for MemoryMetrics {
    /// The root volume of every instance that has a disk series (as the agent reports it).
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        let series = lock(&self.series);
        Ok(instances
            .iter()
            .filter(|w| {
                series.contains_key(&(w.instance.clone(), "CWAgent/disk_used_percent".into()))
            })
            .map(|w| DiskMetric {
                instance: w.instance.clone(),
                dimensions: vec![
                    ("path".into(), "/".into()),
                    ("device".into(), "nvme0n1p1".into()),
                    ("fstype".into(), "xfs".into()),
                ],
            })
            .collect())
    }
}

impl ActionHistory for MemoryState {
    async fn recent(
        &self,
        resource: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Attempt>, PortError> {
        Ok(lock(&self.attempts)
            .get(resource)
            .map(|a| a.iter().filter(|a| a.at >= since).cloned().collect())
            .unwrap_or_default())
    }

    async fn record(
        &self,
        resource: &str,
        attempt: &Attempt,
        _keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.attempts)
            .entry(resource.to_owned())
            .or_default()
            .push(attempt.clone());
        Ok(())
    }
}

impl TakeQuota for MemoryState {
    async fn take(
        &self,
        key: &str,
        limit: u32,
        _until: DateTime<Utc>,
    ) -> Result<Option<u32>, PortError> {
        let mut quotas = lock(&self.quotas);
        let n = quotas.entry(key.to_owned()).or_default();
        if *n >= limit {
            return Ok(None);
        }
        *n += 1;
        Ok(Some(*n))
    }
}

impl ReadPolicy for MemoryState {
    async fn read(&self) -> Result<Option<(String, String)>, PortError> {
        Ok(lock(&self.policy).clone())
    }
}

impl RecordIncident for MemoryState {
    async fn record_incident(
        &self,
        incident: &vigil_core::domain::Incident,
        tier: vigil_core::domain::Tier,
        _keep_until: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        let mut all = lock(&self.incidents);
        if all.contains_key(&incident.id) {
            return Ok(false);
        }
        all.insert(incident.id.clone(), (tier, incident.clone()));
        Ok(true)
    }
}

impl vigil_handlers::ports::ReadPosture for MemoryState {
    async fn incidents(
        &self,
        target: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<vigil_core::gate::PostureMark>, PortError> {
        Ok(lock(&self.incidents)
            .values()
            .filter_map(|(tier, i)| vigil_core::gate::PostureMark::of(i, *tier))
            .filter(|(t, m)| t == target && m.opened_at >= since)
            .map(|(_, m)| m)
            .collect())
    }
}

impl vigil_handlers::ports::Sightings for MemoryState {
    async fn sighted(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> Result<u32, PortError> {
        let mut all = lock(&self.sightings);
        let seen = all.entry(key.to_owned()).or_default();
        seen.retain(|_, t| *t >= now - chrono::Duration::days(1));
        let before = seen
            .iter()
            .filter(|(o, t)| o.as_str() != owner && **t < now && **t >= now - window)
            .count();
        seen.insert(owner.to_owned(), now);
        Ok(u32::try_from(before).unwrap_or(u32::MAX))
    }
}

impl vigil_handlers::ports::RecordDeploy for MemoryState {
    async fn record_deploy(
        &self,
        deploy: &vigil_core::gate::Deploy,
        _keep_until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.deploys).insert(deploy.target.clone(), deploy.clone());
        Ok(())
    }
}

impl vigil_handlers::ports::LastDeploy for MemoryState {
    async fn last_deploy(
        &self,
        target: &str,
    ) -> Result<Option<vigil_core::gate::Deploy>, PortError> {
        Ok(lock(&self.deploys).get(target).cloned())
    }
}

impl vigil_handlers::ports::ReportApproval for MemoryState {
    async fn answer(
        &self,
        action: &vigil_handlers::ports::ApprovalAction,
        approved: bool,
        summary: &str,
    ) -> Result<(), PortError> {
        lock(&self.approvals).push((action.clone(), approved, summary.to_owned()));
        Ok(())
    }
}

/// GuardDuty's active findings, as a test or the simulator sets them.
#[derive(Debug, Default)]
pub struct MemoryFindings {
    findings: Mutex<Vec<vigil_core::gate::FindingSummary>>,
}

impl MemoryFindings {
    pub fn add(&self, finding: vigil_core::gate::FindingSummary) {
        lock(&self.findings).push(finding);
    }
}

impl vigil_handlers::ports::ListFindings for MemoryFindings {
    async fn active_findings(
        &self,
        min_severity: f64,
        since: DateTime<Utc>,
    ) -> Result<Vec<vigil_core::gate::FindingSummary>, PortError> {
        Ok(lock(&self.findings)
            .iter()
            .filter(|f| f.severity >= min_severity && f.updated_at >= since)
            .cloned()
            .collect())
    }
}

/// Pipeline artifacts by bucket and key.
#[derive(Debug, Default)]
pub struct MemoryArtifacts {
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryArtifacts {
    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        lock(&self.objects).insert((bucket.to_owned(), key.to_owned()), bytes);
    }
}

impl vigil_handlers::ports::FetchArtifact for MemoryArtifacts {
    async fn fetch(
        &self,
        location: &vigil_handlers::ports::ArtifactLocation,
        _credentials: &vigil_handlers::ports::ArtifactCredentials,
        max_bytes: u64,
    ) -> Result<vigil_handlers::ports::Fetched, PortError> {
        let objects = lock(&self.objects);
        let bytes = objects
            .get(&(location.bucket.clone(), location.key.clone()))
            .ok_or_else(|| {
                PortError::new(
                    "s3:GetObject",
                    PortErrorKind::NotFound,
                    format!("no object s3://{}/{}", location.bucket, location.key),
                )
            })?;
        Ok(if bytes.len() as u64 > max_bytes {
            vigil_handlers::ports::Fetched::TooLarge(bytes.len() as u64)
        } else {
            vigil_handlers::ports::Fetched::Bytes(bytes.clone())
        })
    }
}

impl vigil_handlers::ports::MarkAlertSent for MemoryState {
    async fn mark_sent(
        &self,
        key: &str,
        message_id: &str,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.sent).insert(key.to_owned(), (message_id.to_owned(), until));
        Ok(())
    }
}

impl vigil_handlers::ports::FindAlertSent for MemoryState {
    async fn find_sent(&self, key: &str, now: DateTime<Utc>) -> Result<Option<String>, PortError> {
        Ok(lock(&self.sent)
            .get(key)
            .filter(|(_, until)| now < *until)
            .map(|(id, _)| id.clone()))
    }
}

impl vigil_handlers::ports::SavePendingApproval for MemoryState {
    async fn save_pending(
        &self,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> Result<(), PortError> {
        lock(&self.pending).insert(decision.id.clone(), (decision.clone(), until));
        Ok(())
    }
}

impl vigil_handlers::ports::LoadPendingApproval for MemoryState {
    async fn load_pending(
        &self,
        decision_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<vigil_core::domain::Decision>, PortError> {
        Ok(lock(&self.pending)
            .get(decision_id)
            .filter(|(_, until)| now < *until)
            .map(|(d, _)| d.clone()))
    }
}

/// A fixed signing key (tests and the local world).
#[derive(Debug, Clone)]
pub struct MemoryKey(pub Vec<u8>);

impl vigil_handlers::ports::ReadSigningKey for MemoryKey {
    async fn signing_key(&self) -> Result<Vec<u8>, PortError> {
        Ok(self.0.clone())
    }
}
