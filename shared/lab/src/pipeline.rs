//! The whole pipeline in memory: ingest -> score -> decide -> remediate on one world of
//! in-memory ports, wired once. `vigil replay`, `vigil policy explain`, the simulator and the
//! tests run the stages through it, so they exercise the handlers the functions run, never a
//! shortcut of them.

use chrono::{DateTime, Utc};

use crate::memory::{
    MemoryAudit, MemoryDetectors, MemoryFleet, MemoryMetrics, MemoryOps, MemoryOutbox, MemoryState,
};
use vigil_core::domain::{Decision, Mode, Outcome};
use vigil_core::events::Envelope;
use vigil_core::models::Models;
use vigil_core::policy::Policy;
use vigil_core::stages::{Decisions, Observed, ScoredBatch};
use vigil_handlers::remediate::RemediatePorts;
use vigil_handlers::{approve, decide, ingest, remediate, score};

/// A stage that failed, with its error chain.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("ingest refused the event: {0}")]
    Ingest(#[source] ingest::IngestError),
    #[error("decide failed: {0}")]
    Decide(#[source] decide::DecideError),
    #[error("remediate failed: {0}")]
    Remediate(#[source] remediate::RemediateError),
}

/// The in-memory world and the stages' settings.
pub struct Pipeline {
    pub fleet: MemoryFleet,
    pub state: MemoryState,
    pub outbox: MemoryOutbox,
    pub metrics: MemoryMetrics,
    /// The pull's detector states between ticks.
    pub detectors: MemoryDetectors,
    pub ops: MemoryOps,
    pub audit: MemoryAudit,
    pub models: Models,
    pub policy: decide::PolicyStore,
    pub ingest: ingest::IngestConfig,
    /// Verification looks once, without waiting: the memory world answers at once.
    pub remediate: remediate::RemediateConfig,
    /// Invocations of `remediate` so far: each is an attempt of its own, as each Lambda
    /// invocation has its own request id.
    attempts: std::sync::atomic::AtomicU64,
}

impl Pipeline {
    /// An empty world with the given models and policy, in `mode`.
    pub fn new(models: Models, policy: Policy, mode: Mode) -> Self {
        Self::with_store(
            models,
            decide::PolicyStore::new(policy, mode, decide::POLICY_TTL),
        )
    }

    /// An empty world with the given models and policy store (one set up as a deployed
    /// decide sets it: the stack's schedule, member accounts).
    pub fn with_store(models: Models, policy: decide::PolicyStore) -> Self {
        Pipeline {
            fleet: MemoryFleet::default(),
            state: MemoryState::default(),
            outbox: MemoryOutbox::default(),
            metrics: MemoryMetrics::default(),
            detectors: MemoryDetectors::default(),
            ops: MemoryOps::default(),
            audit: MemoryAudit::default(),
            models,
            policy,
            ingest: ingest::IngestConfig::default(),
            remediate: remediate::RemediateConfig {
                verify_attempts: 1,
                verify_interval: std::time::Duration::ZERO,
                ..Default::default()
            },
            attempts: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn ingest_ports(
        &self,
    ) -> ingest::IngestPorts<
        '_,
        MemoryFleet,
        MemoryState,
        MemoryFleet,
        MemoryMetrics,
        MemoryMetrics,
        MemoryState,
        MemoryDetectors,
    > {
        ingest::IngestPorts {
            instances: &self.fleet,
            history: &self.state,
            watched: &self.fleet,
            disks: &self.metrics,
            metrics: &self.metrics,
            deploys: &self.state,
            detectors: &self.detectors,
        }
    }

    pub fn decide_ports(
        &self,
    ) -> decide::DecidePorts<
        '_,
        MemoryState,
        MemoryState,
        MemoryFleet,
        MemoryState,
        MemoryState,
        MemoryState,
        MemoryOutbox,
    > {
        decide::DecidePorts {
            claims: &self.state,
            kill_switch: &self.state,
            groups: &self.fleet,
            history: &self.state,
            quotas: &self.state,
            policy: &self.state,
            alerts: &self.outbox,
        }
    }

    /// `ingest` on one event.
    pub async fn ingest(&self, envelope: &Envelope) -> Result<Observed, PipelineError> {
        ingest::handle(envelope, &self.ingest, &self.ingest_ports())
            .await
            .map_err(PipelineError::Ingest)
    }

    /// `score` then `decide` on what ingest observed, as delivery `owner` at `now`.
    pub async fn decide(
        &self,
        observed: Observed,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Decisions, PipelineError> {
        let scored = score::handle(observed, &self.models);
        self.decide_scored(scored, owner, now).await
    }

    /// `decide` on a scored batch.
    pub async fn decide_scored(
        &self,
        scored: ScoredBatch,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Decisions, PipelineError> {
        decide::handle(scored, owner, &self.policy, &self.decide_ports(), now)
            .await
            .map_err(PipelineError::Decide)
    }

    /// `remediate` on one decision.
    pub async fn remediate(
        &self,
        decision: &Decision,
        now: DateTime<Utc>,
    ) -> Result<Outcome, PipelineError> {
        let n = self
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        remediate::handle(
            decision,
            &format!("attempt-{n}"),
            &self.remediate,
            self,
            now,
        )
        .await
        .map_err(PipelineError::Remediate)
    }

    /// `approve` on one request to its function URL. `remediate` says where the links point
    /// and holds the key that signs them.
    pub async fn approve(
        &self,
        http: &aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest,
        request: &str,
        remediate: &remediate::RemediateConfig,
        now: DateTime<Utc>,
    ) -> approve::Page {
        let setup = approve::Setup {
            key: remediate.approval.as_ref().map(|a| a.key.as_slice()),
            remediate,
            store: &self.policy,
            policy: &self.state,
        };
        approve::respond(http, request, &setup, self, now).await
    }

    /// score -> decide -> remediate on what ingest observed; the decisions with their outcomes.
    pub async fn run(
        &self,
        observed: Observed,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Decision, Outcome)>, PipelineError> {
        let decisions = self.decide(observed, owner, now).await?;
        let mut out = Vec::with_capacity(decisions.decisions.len());
        for d in decisions.decisions {
            let o = self.remediate(&d, now).await?;
            out.push((d, o));
        }
        Ok(out)
    }

    /// One event through every stage.
    pub async fn event(
        &self,
        envelope: &Envelope,
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Decision, Outcome)>, PipelineError> {
        let observed = self.ingest(envelope).await?;
        self.run(observed, owner, now).await
    }
}

/// The memory world is `remediate`'s ports: the fleet answers for instances, health and
/// groups; the operations log for commands and pipelines.
impl RemediatePorts for Pipeline {
    type KillSwitch = MemoryState;
    type Instances = MemoryFleet;
    type Health = MemoryFleet;
    type Alerts = MemoryOutbox;
    type History = MemoryState;
    type Groups = MemoryFleet;
    type Commands = MemoryOps;
    type Pipelines = MemoryOps;
    type Audit = MemoryAudit;
    type Findings = MemoryOutbox;
    type OpsItems = MemoryOutbox;

    fn kill_switch(&self) -> &MemoryState {
        &self.state
    }
    fn instances(&self) -> &MemoryFleet {
        &self.fleet
    }
    fn health(&self) -> &MemoryFleet {
        &self.fleet
    }
    fn alerts(&self) -> &MemoryOutbox {
        &self.outbox
    }
    fn history(&self) -> &MemoryState {
        &self.state
    }
    fn groups(&self) -> &MemoryFleet {
        &self.fleet
    }
    fn commands(&self) -> &MemoryOps {
        &self.ops
    }
    fn pipelines(&self) -> &MemoryOps {
        &self.ops
    }
    fn audit(&self) -> &MemoryAudit {
        &self.audit
    }
    fn findings(&self) -> &MemoryOutbox {
        &self.outbox
    }
    fn ops_items(&self) -> &MemoryOutbox {
        &self.outbox
    }
}
