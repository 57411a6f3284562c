//! Ports: one narrow trait per capability Vigil needs from the outside world.
//!
//! Handlers are generic over these traits; `crate::aws` implements them on the AWS SDKs and
//! the tests and the simulator implement them on their own worlds. Every method returns a
//! `Send` future so handlers can run on the Lambda runtime's multi-threaded executor.

use std::future::Future;

use chrono::{DateTime, Utc};

use vigil_core::alert::Alert;
use vigil_core::domain::{GroupCapacity, Membership};
use vigil_core::features::identity::PrincipalProfile;
use vigil_core::metrics::{DiskMetric, MetricQuery, Series, WatchedInstance};
use vigil_core::names::{GroupName, InstanceId, PipelineName};

/// An error from a port, with enough to decide whether to retry.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed ({kind:?})")]
pub struct PortError {
    pub operation: &'static str,
    pub kind: PortErrorKind,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortErrorKind {
    /// Throttling, 5xx, timeouts, connection failures: worth retrying.
    Transient,
    /// The resource does not exist.
    NotFound,
    /// The request was refused (validation, permissions, conflicting state): do not retry.
    Rejected,
}

impl PortError {
    pub fn new(
        operation: &'static str,
        kind: PortErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        PortError {
            operation,
            kind,
            source: source.into(),
        }
    }

    pub fn retryable(&self) -> bool {
        self.kind == PortErrorKind::Transient
    }
}

/// Which Auto Scaling group an instance belongs to, and its health there.
pub trait DescribeInstance {
    fn membership(
        &self,
        instance: &InstanceId,
    ) -> impl Future<Output = Result<Option<Membership>, PortError>> + Send;

    /// The same, for an instance of a member account (looked up through its member role). A
    /// port that knows no member accounts finds nothing there.
    fn membership_in(
        &self,
        account: &str,
        instance: &InstanceId,
    ) -> impl Future<Output = Result<Option<Membership>, PortError>> + Send {
        let _ = (account, instance);
        async { Ok(None) }
    }
}

/// A group's size and how many instances are in service.
pub trait DescribeGroup {
    fn capacity(
        &self,
        group: &GroupName,
    ) -> impl Future<Output = Result<GroupCapacity, PortError>> + Send;

    /// The same, for a group of a member account (read through its member role). A port that
    /// knows no member accounts cannot read one: the limits then hold the action.
    fn capacity_in(
        &self,
        account: &str,
        group: &GroupName,
    ) -> impl Future<Output = Result<GroupCapacity, PortError>> + Send {
        let account = account.to_owned();
        let group = group.to_string();
        async move {
            Err(PortError::new(
                "autoscaling:DescribeAutoScalingGroups",
                PortErrorKind::NotFound,
                format!("group {group} of account {account}: no member role here"),
            ))
        }
    }
}

/// Mark an instance Unhealthy, so that its group replaces it.
pub trait SetInstanceHealth {
    fn set_unhealthy(
        &self,
        instance: &InstanceId,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Tell people.
pub trait PublishAlert {
    /// Publishes and returns the message id.
    fn publish(&self, alert: &Alert) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// Whether a claim was won.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the key until the given time.
    Won,
    /// Someone holds the key already (a duplicate event, an active cooldown).
    Held,
}

/// Atomic, expiring claims on a key: de-duplication and cooldowns. A claim is won when the key
/// is free, expired, or already held by the same `owner` (so a retried step re-wins its own
/// claim instead of taking itself for a duplicate).
pub trait ClaimOnce {
    fn claim(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claim, PortError>> + Send;
}

/// The operators' global kill switch.
pub trait ReadKillSwitch {
    /// Whether the switch is engaged. Implementations fail closed: an unreadable switch is
    /// reported as an error, which callers treat as engaged.
    fn engaged(&self) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// The result of a CodePipeline job, as the gate reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Success {
        summary: String,
    },
    Failure {
        message: String,
    },
    /// Not finished: CodePipeline invokes the action again with this token.
    Continue {
        token: String,
        summary: String,
    },
}

/// Answer a CodePipeline job.
pub trait ReportJobResult {
    fn report(
        &self,
        job_id: &str,
        result: &JobResult,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Whether deployments of a pipeline are frozen (set during a security incident).
pub trait ReadDeploymentFreeze {
    /// The freeze's reason, when one is in force.
    fn freeze(
        &self,
        pipeline: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
}

/// Sets a deployment freeze on a target (during a security incident).
pub trait SetDeploymentFreeze {
    fn set_freeze(
        &self,
        target: &str,
        reason: &str,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Each principal's bounded activity history (CloudTrail novelty features). Concurrent updates
/// of one principal may lose an observation: the history is a baseline, not a ledger.
pub trait PrincipalHistory {
    fn load(
        &self,
        principal: &str,
    ) -> impl Future<Output = Result<Option<PrincipalProfile>, PortError>> + Send;

    fn save(
        &self,
        principal: &str,
        profile: &PrincipalProfile,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The instances Vigil watches: those of the Auto Scaling groups carrying the watch tag.
pub trait ListWatchedInstances {
    fn watched(
        &self,
        tag_key: &str,
    ) -> impl Future<Output = Result<Vec<WatchedInstance>, PortError>> + Send;

    /// The same in a member account, through its member role; each instance carries the
    /// account. A port that knows no member accounts cannot list one.
    fn watched_in(
        &self,
        account: &str,
        tag_key: &str,
    ) -> impl Future<Output = Result<Vec<WatchedInstance>, PortError>> + Send {
        let _ = tag_key;
        no_member_role("autoscaling:DescribeAutoScalingGroups", account)
    }
}

/// What a port that knows no member accounts answers for one.
fn no_member_role<T>(
    operation: &'static str,
    account: &str,
) -> impl Future<Output = Result<T, PortError>> + Send + use<T> {
    let why = format!("account {account}: no member role here");
    async move { Err(PortError::new(operation, PortErrorKind::NotFound, why)) }
}

/// The CloudWatch agent's disk metrics of some instances (they carry extra dimensions that
/// must be discovered before they can be queried).
pub trait ListDiskMetrics {
    fn disks(
        &self,
        instances: &[WatchedInstance],
    ) -> impl Future<Output = Result<Vec<DiskMetric>, PortError>> + Send;

    /// The same in a member account, through its member role.
    fn disks_in(
        &self,
        account: &str,
        instances: &[WatchedInstance],
    ) -> impl Future<Output = Result<Vec<DiskMetric>, PortError>> + Send {
        let _ = instances;
        no_member_role("cloudwatch:ListMetrics", account)
    }
}

/// Datapoints for many metric queries over one time range, batched to the API's limits and
/// following pagination. Answers are keyed by query id.
pub trait FetchMetrics {
    fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, Series>, PortError>> + Send;

    /// The same in a member account, through its member role.
    fn fetch_in(
        &self,
        account: &str,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> impl Future<Output = Result<std::collections::BTreeMap<String, Series>, PortError>> + Send
    {
        let _ = (queries, start, end, period);
        no_member_role("cloudwatch:GetMetricData", account)
    }
}

/// Each watched instance's detector state between pulls, as the core encodes it
/// ([`vigil_core::metrics::state`]): opaque bytes here, decoded (or refused with a reason) by
/// the core. An instance with nothing kept is `Ok(None)`.
pub trait DetectorMemory {
    fn recall(
        &self,
        instance: &InstanceId,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, PortError>> + Send;

    fn keep(
        &self,
        instance: &InstanceId,
        state: Vec<u8>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The pull's plan, written where the pull workflow's Distributed Map reads its items
/// (`ItemReader`): one JSON array under `key`.
pub trait StorePlan {
    fn store_plan(
        &self,
        key: &str,
        items: Vec<u8>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Security Hub: what people are told, as a finding in the queue they already triage (created,
/// then updated with the same id as the incident moves).
pub trait ImportFinding {
    fn import(
        &self,
        finding: &vigil_core::securityhub::Finding,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// OpsCenter: an operations incident as an OpsItem (opened, then updated, and resolved when
/// healed). Returns the OpsItem's id.
pub trait RecordOpsItem {
    fn record(
        &self,
        item: &vigil_core::opscenter::OpsItem,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// Earlier actions on each resource: the loop breaker's and the ladder's memory.
pub trait ActionHistory {
    /// The attempts on `resource` since `since`, oldest first.
    fn recent(
        &self,
        resource: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<vigil_core::domain::Attempt>, PortError>> + Send;

    /// Appends an attempt; the record may be dropped after `keep_until`.
    fn record(
        &self,
        resource: &str,
        attempt: &vigil_core::domain::Attempt,
        keep_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Atomic counters with a ceiling: the hourly rate limit per action kind.
pub trait TakeQuota {
    /// Takes one unit of `key`'s quota of `limit` (the counter expires at `until`). Returns the
    /// count after taking, or `None` when the quota is used up (nothing is taken then).
    fn take(
        &self,
        key: &str,
        limit: u32,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<u32>, PortError>> + Send;
}

/// The operators' policy override (SSM Parameter Store).
pub trait ReadPolicy {
    /// The override's text and version, or `None` when none is set.
    fn read(&self) -> impl Future<Output = Result<Option<(String, String)>, PortError>> + Send;
}

/// The operators' detection rules override (SSM Parameter Store): Sigma YAML added to the
/// bundled pack.
pub trait ReadRules {
    /// The override's text and version, or `None` when none is set.
    fn read_rules(
        &self,
    ) -> impl Future<Output = Result<Option<(String, String)>, PortError>> + Send;
}

/// The daily digest's counts: detections recorded without telling anyone, by rule (the state
/// table, one item per day).
pub trait DigestBook {
    /// Counts one recorded match on `day`, keeping its resource as the rule's latest example.
    fn note(
        &self,
        day: chrono::NaiveDate,
        entry: &vigil_core::digest::Entry,
        keep_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The day's lines, one per rule.
    fn lines(
        &self,
        day: chrono::NaiveDate,
    ) -> impl Future<Output = Result<Vec<vigil_core::digest::Line>, PortError>> + Send;
}

/// The record of open incidents (what people see in the table and the dashboard).
pub trait RecordIncident {
    /// Records the incident once; returns whether this call created it.
    fn record_incident(
        &self,
        incident: &vigil_core::domain::Incident,
        tier: vigil_core::domain::Tier,
        keep_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// Sets an Auto Scaling group's desired capacity.
pub trait SetDesiredCapacity {
    fn set_desired(
        &self,
        group: &GroupName,
        desired: u32,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Detaches an instance from its group without lowering the desired capacity, so the group
/// launches a replacement and the instance stays for people to examine.
pub trait DetachFromGroup {
    fn detach(
        &self,
        group: &GroupName,
        instance: &InstanceId,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Runs a Run Command document on one instance; returns the command id.
pub trait RunCommand {
    fn run(
        &self,
        instance: &InstanceId,
        document: &str,
        parameters: &[(&str, &str)],
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// The status of a command on an instance: `Pending`, `InProgress`, `Success`, `Failed`, ...
pub trait CommandStatus {
    fn command_status(
        &self,
        command_id: &str,
        instance: &InstanceId,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// Starts an SSM Automation runbook; returns the execution id.
pub trait StartAutomation {
    fn start_automation(
        &self,
        document: &str,
        parameters: &[(&str, &str)],
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// The status of an Automation execution: `Pending`, `InProgress`, `Success`, `Failed`, ...
pub trait AutomationStatus {
    fn automation_status(
        &self,
        execution_id: &str,
    ) -> impl Future<Output = Result<String, PortError>> + Send;
}

/// Disables the transition into a pipeline stage.
pub trait DisableTransition {
    fn disable_transition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        reason: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Whether the transition into a pipeline stage is enabled (`None`: no such stage).
pub trait TransitionEnabled {
    fn transition_enabled(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> impl Future<Output = Result<Option<bool>, PortError>> + Send;
}

/// The tamper-evident audit trail: appends one record, chained to the one before it.
pub trait AppendAudit {
    fn append(
        &self,
        kind: &str,
        subject: &str,
        payload: serde_json::Value,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<vigil_core::audit::AuditRecord, PortError>> + Send;
}

/// Remembers an alert once SNS took it, by decision and tier: a `remediate` retried after its
/// answer was lost tells people once.
pub trait MarkAlertSent {
    fn mark_sent(
        &self,
        key: &str,
        message_id: &str,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The message id of an alert already sent under `key` (`None`: not sent, or forgotten).
pub trait FindAlertSent {
    fn find_sent(
        &self,
        key: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
}

/// Decisions waiting for a person's approval.
pub trait SavePendingApproval {
    fn save_pending(
        &self,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Reads a pending decision (`None`: unknown or expired).
pub trait LoadPendingApproval {
    fn load_pending(
        &self,
        decision_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<vigil_core::domain::Decision>, PortError>> + Send;
}

/// The conversations people are told in ([`vigil_core::conversation`]): one per principal or
/// scope while it is active.
pub trait Conversations {
    /// The conversation about `about` (`None`: none open, or it ended).
    fn recall(
        &self,
        about: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<vigil_core::conversation::Conversation>, PortError>> + Send;

    /// Keeps the conversation until `until` (renewed with every decision in it).
    fn keep(
        &self,
        about: &str,
        conversation: &vigil_core::conversation::Conversation,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Decisions whose action can be undone, kept for a named approver's undo.
pub trait KeepUndoable {
    fn keep_undoable(
        &self,
        decision: &vigil_core::domain::Decision,
        until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// A decision kept for undo (`None`: its action cannot be undone, or it was forgotten).
pub trait LoadUndoable {
    fn load_undoable(
        &self,
        decision_id: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<vigil_core::domain::Decision>, PortError>> + Send;
}

/// The key approval links are signed with (SSM Parameter Store SecureString).
pub trait ReadSigningKey {
    fn signing_key(&self) -> impl Future<Output = Result<Vec<u8>, PortError>> + Send;
}

/// Suspends or resumes scaling processes of a group, and reads which are suspended.
pub trait ScalingProcesses {
    fn set_processes(
        &self,
        group: &GroupName,
        processes: &[&str],
        suspend: bool,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    fn suspended(
        &self,
        group: &GroupName,
    ) -> impl Future<Output = Result<Vec<String>, PortError>> + Send;
}

/// Rolls a stage back to its last successful execution (returns that execution's id), and
/// reads the stage's latest status (`InProgress`, `Succeeded`, `Failed`, ...).
pub trait RollbackStage {
    fn rollback(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> impl Future<Output = Result<String, PortError>> + Send;

    fn stage_status(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
}

/// Stops a pipeline execution, and enables a stage's inbound transition again.
pub trait StopAndResume {
    fn stop_execution(
        &self,
        pipeline: &PipelineName,
        execution: &PipelineName,
        reason: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    fn enable_transition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// The execution's status (`InProgress`, `Stopping`, `Stopped`, `Succeeded`, ...).
    fn execution_status(
        &self,
        pipeline: &PipelineName,
        execution: &PipelineName,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
}

/// Vigil's recorded incidents on a deployment target's resources (the gate's posture).
pub trait ReadPosture {
    /// Incidents on `target` (`application/environment`) opened at or after `since`.
    fn incidents(
        &self,
        target: &str,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<vigil_core::gate::PostureMark>, PortError>> + Send;
}

/// Active (not archived) GuardDuty findings.
pub trait ListFindings {
    /// Findings at or above `min_severity` updated at or after `since`.
    fn active_findings(
        &self,
        min_severity: f64,
        since: DateTime<Utc>,
    ) -> impl Future<Output = Result<Vec<vigil_core::gate::FindingSummary>, PortError>> + Send;
}

/// Where a pipeline artifact is, and the short-lived credentials CodePipeline gave the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLocation {
    pub bucket: String,
    pub key: String,
}

#[derive(Clone, PartialEq, Eq)]
pub struct ArtifactCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for ArtifactCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// A fetched artifact, or its size when it is over the limit (nothing is downloaded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Bytes(Vec<u8>),
    TooLarge(u64),
}

/// Reads a pipeline artifact with the job's credentials.
pub trait FetchArtifact {
    fn fetch(
        &self,
        location: &ArtifactLocation,
        credentials: &ArtifactCredentials,
        max_bytes: u64,
    ) -> impl Future<Output = Result<Fetched, PortError>> + Send;
}

/// Remembers the deploys the gate let through (the deploy feedback).
pub trait RecordDeploy {
    fn record_deploy(
        &self,
        deploy: &vigil_core::gate::Deploy,
        keep_until: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The last deploy the gate let through to a target.
pub trait LastDeploy {
    fn last_deploy(
        &self,
        target: &str,
    ) -> impl Future<Output = Result<Option<vigil_core::gate::Deploy>, PortError>> + Send;
}

/// A manual approval action waiting for an answer (from its SNS notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalAction {
    pub pipeline: PipelineName,
    pub stage: PipelineName,
    pub action: PipelineName,
    pub token: String,
}

/// A manual approval action as the pipeline's own definition has it (not as a notification
/// says it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalDefinition {
    /// The topic the action notifies: the pipeline opts in to the gate by naming the gate's.
    pub notification_arn: Option<String>,
    /// The action's CustomData: the target whose posture decides.
    pub custom_data: Option<String>,
}

/// CodePipeline's own account of a manual approval, against which a notification is checked.
pub trait ReadApproval {
    /// The action's definition (GetPipeline); `None` when the pipeline has no manual approval
    /// action of that name in that stage.
    fn approval_definition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        action: &PipelineName,
    ) -> impl Future<Output = Result<Option<ApprovalDefinition>, PortError>> + Send;

    /// The token of the approval the action waits for now (GetPipelineState); `None` when it
    /// waits for none.
    fn waiting_token(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        action: &PipelineName,
    ) -> impl Future<Output = Result<Option<String>, PortError>> + Send;
}

/// Answers a manual approval action.
pub trait ReportApproval {
    fn answer(
        &self,
        action: &ApprovalAction,
        approved: bool,
        summary: &str,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// Repeated sightings of the same finding on the same resource: the confirmation a finding
/// from the metric pull needs before people are told or anything is done.
pub trait Sightings {
    /// Records that `owner` (one delivery) saw `key` at `now`, and returns how many other
    /// deliveries saw it within `window` before. Idempotent per owner.
    fn sighted(
        &self,
        key: &str,
        owner: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
    ) -> impl Future<Output = Result<u32, PortError>> + Send;
}
