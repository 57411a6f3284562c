//! `gate`: the deployment gate. Two entry points with one posture evaluation
//! ([`vigil_core::gate`]):
//!
//! - [`handle_job`]: the CodePipeline Lambda invoke action. Always answers the job: success,
//!   failure with one line per reason, or a continuation token when the invocation's time runs
//!   out before every check has run. An internal error or a dependency that does not answer in
//!   time becomes a failure with its reason, never a job left to CodePipeline's timeout.
//! - [`handle_approval`]: the SNS notification of a manual approval action. Approves when the
//!   posture is clean, rejects with the reasons when it is not, and on doubt leaves it to
//!   people (with an email saying why) or rejects, as the policy says.

mod approval;

pub use approval::{ApprovalDetails, ApprovalNotification, ApprovalOutcome, handle_approval};
use std::time::{Duration, Instant};

use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ports::{
    ApprovalAction, ApprovalDefinition, ArtifactCredentials, ArtifactLocation, FetchArtifact,
    Fetched, JobResult, ListFindings, PortError, PortErrorKind, PublishAlert, ReadApproval,
    ReadDeploymentFreeze, ReadPosture, RecordDeploy, ReportApproval, ReportJobResult,
};
use vigil_core::alert::Alert;
use vigil_core::gate::artifact::{self, ArtifactLimits};
use vigil_core::gate::{
    self, Check, CheckResult, Deploy, GatePolicy, Posture, ScanEvidence, Verdict,
};
use vigil_core::names::{PipelineName, display_text};

/// CodePipeline's limits: a failure message, a continuation token, an approval summary.
pub const MAX_FAILURE_MESSAGE: usize = 5000;
pub const MAX_SUMMARY: usize = 2048;
pub const MAX_CONTINUATION_TOKEN: usize = 2048;
pub const MAX_APPROVAL_SUMMARY: usize = 512;

/// How the gate runs, from the function's environment.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// Each dependency call must answer within this, or its check is in doubt.
    pub call_timeout: Duration,
    /// Stop starting checks this long before the invocation's deadline, and continue later.
    pub reserve: Duration,
    pub artifact_limits: ArtifactLimits,
    /// How long a deploy record is kept (the deploy feedback's horizon).
    pub keep_deploys: chrono::Duration,
    /// The gate's own approval topic: only approval actions that notify it are answered.
    pub approval_topic: Option<String>,
    /// The stack's region, for console links made from confirmed names.
    pub region: Option<String>,
}

impl Default for GateConfig {
    fn default() -> Self {
        GateConfig {
            call_timeout: Duration::from_secs(10),
            reserve: Duration::from_secs(5),
            artifact_limits: ArtifactLimits::default(),
            keep_deploys: chrono::Duration::days(7),
            approval_topic: None,
            region: None,
        }
    }
}

/// The world the gate reads and answers through.
pub struct GatePorts<'a, F, P, G, A, D, R, Q, S> {
    pub freeze: &'a F,
    pub posture: &'a P,
    pub findings: &'a G,
    pub artifacts: &'a A,
    pub deploys: &'a D,
    pub jobs: &'a R,
    pub approvals: &'a Q,
    pub alerts: &'a S,
}

/// What the pipeline tells the gate: the action's UserParameters, or the approval's
/// CustomData (JSON).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GateParameters {
    /// The deployment target whose posture decides: `application/environment`, as the
    /// target's Auto Scaling groups are tagged.
    pub target: String,
    /// The pipeline, recorded with each deploy the gate lets through.
    #[serde(default)]
    pub pipeline: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("the job event has no job id: there is nothing to answer")]
    NoJobId,
    #[error("answering job {job_id} failed")]
    Report {
        job_id: String,
        #[source]
        source: PortError,
    },
    #[error("the approval notification is unusable: {0}")]
    Notification(String),
    #[error("answering the approval of {pipeline}/{stage}/{action} failed")]
    Approval {
        pipeline: String,
        stage: String,
        action: String,
        #[source]
        source: PortError,
    },
    #[error("CodePipeline could not confirm the approval {approval}")]
    Verify {
        approval: String,
        #[source]
        source: PortError,
    },
    #[error("telling people about the approval of {pipeline}/{stage} failed")]
    Alert {
        pipeline: String,
        stage: String,
        #[source]
        source: PortError,
    },
}

/// Parses and validates the parameters.
pub fn parameters(raw: Option<&str>) -> Result<GateParameters, String> {
    let raw = raw.ok_or(
        "the action has no UserParameters; expected {\"target\": \"application/environment\"}",
    )?;
    if raw.len() > 4096 {
        return Err(format!("the parameters are {} bytes, over 4096", raw.len()));
    }
    let p: GateParameters = serde_json::from_str(raw)
        .map_err(|e| format!("the parameters are not valid gate parameters: {e}"))?;
    let name = |s: &str| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    if !gate::split_target(&p.target).is_some_and(|(a, e)| name(a) && name(e)) {
        return Err(format!(
            "target {:?} is not of the form application/environment",
            display_text(&p.target, 64)
        ));
    }
    if let Some(pipeline) = &p.pipeline {
        PipelineName::parse(pipeline).map_err(|e| format!("pipeline: {e}"))?;
    }
    Ok(p)
}

/// The checks done so far, carried in the continuation token.
#[derive(Debug, Serialize, Deserialize)]
struct Progress {
    v: u8,
    target: String,
    results: Vec<CheckResult>,
}

/// Encodes progress within CodePipeline's token limit, shortening the reasons if it must
/// (the outcomes are always kept whole).
fn encode_progress(progress: &mut Progress) -> String {
    let encode = |p: &Progress| URL_SAFE_NO_PAD.encode(serde_json::to_vec(p).unwrap_or_default());
    for (keep, width) in [
        (usize::MAX, usize::MAX),
        (3, 200),
        (1, 120),
        (1, 40),
        (0, 0),
    ] {
        for r in &mut progress.results {
            let cut = r.lines.len().saturating_sub(keep);
            r.lines.truncate(keep);
            for l in &mut r.lines {
                *l = display_text(l, width);
            }
            if cut > 0 && keep > 0 {
                r.lines.push(format!("(+{cut} more)"));
            }
        }
        let token = encode(progress);
        if token.len() <= MAX_CONTINUATION_TOKEN {
            return token;
        }
    }
    encode(progress)
}

fn decode_progress(token: &str, target: &str) -> Result<Progress, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|e| format!("the continuation token is not base64url: {e}"))?;
    let p: Progress = serde_json::from_slice(&bytes)
        .map_err(|e| format!("the continuation token is not the gate's: {e}"))?;
    if p.v != 1 || p.target != target || p.results.len() >= Check::ALL.len() {
        return Err("the continuation token does not belong to this action".into());
    }
    Ok(p)
}

/// Runs one dependency call within the timeout; a failure or a timeout is doubt.
async fn within<T>(
    config: &GateConfig,
    check: Check,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, PortError>>,
) -> Result<T, CheckResult> {
    within_or(config, check, what, fut, None).await
}

/// As [`within`]; a dependency that answers "not found" leaves the check unsure with
/// `not_found`'s line, when given: a service that is not enabled cannot vouch for anything.
async fn within_or<T>(
    config: &GateConfig,
    check: Check,
    what: &str,
    fut: impl std::future::Future<Output = Result<T, PortError>>,
    not_found: Option<&str>,
) -> Result<T, CheckResult> {
    match tokio::time::timeout(config.call_timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.kind == crate::ports::PortErrorKind::NotFound && not_found.is_some() => {
            Err(CheckResult::doubt(check, not_found.unwrap_or_default()))
        }
        Ok(Err(e)) => Err(CheckResult::doubt(
            check,
            format!("{what} could not be read: {}", vigil_core::error_chain(&e)),
        )),
        Err(_) => Err(CheckResult::doubt(
            check,
            format!(
                "{what} did not answer within {} s",
                config.call_timeout.as_secs_f64()
            ),
        )),
    }
}

/// The input artifact of a job, when it has one in S3.
pub struct JobArtifact {
    pub location: ArtifactLocation,
    pub credentials: ArtifactCredentials,
}

/// Runs one check.
async fn run_check<F, P, G, A, D, R, Q, S>(
    check: Check,
    target: &str,
    artifact: Option<&JobArtifact>,
    policy: &GatePolicy,
    config: &GateConfig,
    ports: &GatePorts<'_, F, P, G, A, D, R, Q, S>,
    now: DateTime<Utc>,
) -> CheckResult
where
    F: ReadDeploymentFreeze,
    P: ReadPosture,
    G: ListFindings,
    A: FetchArtifact,
{
    let disabled = |c| CheckResult {
        check: c,
        outcome: gate::Outcome::Pass,
        lines: vec!["check disabled by policy".into()],
    };
    match check {
        Check::Freeze if !policy.freeze.enabled => disabled(check),
        Check::Freeze => {
            match within(
                config,
                check,
                "the freeze",
                ports.freeze.freeze(target, now),
            )
            .await
            {
                Ok(f) => gate::check_freeze(f.as_deref()),
                Err(doubt) => doubt,
            }
        }
        Check::Incidents | Check::Anomaly => {
            let enabled = match check {
                Check::Incidents => policy.incidents.enabled,
                _ => policy.anomaly.enabled,
            };
            if !enabled {
                return disabled(check);
            }
            let minutes = policy
                .incidents
                .lookback_minutes
                .max(policy.anomaly.lookback_minutes);
            let since = now - chrono::Duration::minutes(i64::from(minutes));
            match within(
                config,
                check,
                "Vigil's incidents",
                ports.posture.incidents(target, since),
            )
            .await
            {
                Ok(marks) if check == Check::Incidents => {
                    gate::check_incidents(&marks, &policy.incidents, now)
                }
                Ok(marks) => gate::check_anomaly(&marks, &policy.anomaly, now),
                Err(doubt) => doubt,
            }
        }
        Check::Guardduty if !policy.guardduty.enabled => disabled(check),
        Check::Guardduty => {
            let since = now - chrono::Duration::hours(i64::from(policy.guardduty.lookback_hours));
            match within_or(
                config,
                check,
                "GuardDuty's findings",
                ports
                    .findings
                    .active_findings(policy.guardduty.min_severity, since),
                Some(
                    "GuardDuty is not enabled in this account and region: it cannot vouch for \
                     the target (enable it, or turn the check off in the policy)",
                ),
            )
            .await
            {
                Ok(f) => gate::check_findings(&f, target, &policy.guardduty),
                Err(doubt) => doubt,
            }
        }
        Check::Scans if !policy.scans.enabled => disabled(check),
        Check::Scans => {
            let evidence = match artifact {
                None => ScanEvidence::NoArtifact,
                Some(a) => {
                    let limit = config.artifact_limits.max_artifact_bytes;
                    match within(
                        config,
                        check,
                        "the input artifact",
                        ports.artifacts.fetch(&a.location, &a.credentials, limit),
                    )
                    .await
                    {
                        Err(doubt) => return doubt,
                        Ok(Fetched::TooLarge(size)) => ScanEvidence::Refused(
                            artifact::ArtifactError::TooLarge { size, limit }.to_string(),
                        ),
                        Ok(Fetched::Bytes(bytes)) => {
                            match artifact::reports(&bytes, &config.artifact_limits) {
                                Err(e) => ScanEvidence::Refused(e.to_string()),
                                Ok(reports) => ScanEvidence::Reports(
                                    reports
                                        .into_iter()
                                        .map(|r| {
                                            let s = gate::sarif::summarise(
                                                &r.bytes,
                                                &policy.scans.allow,
                                                now.date_naive(),
                                            );
                                            (r.path, s)
                                        })
                                        .collect(),
                                ),
                            }
                        }
                    }
                }
            };
            gate::check_scans(&evidence, &policy.scans)
        }
    }
}

/// The job's input artifact in S3 and its credentials, when it has one.
fn job_artifact(event: &CodePipelineJobEvent) -> Option<JobArtifact> {
    let data = &event.code_pipeline_job.data;
    let input = data.input_artifacts.first()?;
    let s3 = &input.location.s3_location;
    let creds = &data.artifact_credentials;
    Some(JobArtifact {
        location: ArtifactLocation {
            bucket: s3.bucket_name.clone()?,
            key: s3.object_key.clone()?,
        },
        credentials: ArtifactCredentials {
            access_key_id: creds.access_key_id.clone()?,
            secret_access_key: creds.secret_access_key.clone()?,
            session_token: creds.session_token.clone(),
        },
    })
}

/// Evaluates the posture for the job and answers it.
#[allow(clippy::too_many_arguments)]
pub async fn handle_job<F, P, G, A, D, R, Q, S>(
    event: &CodePipelineJobEvent,
    policy: &GatePolicy,
    config: &GateConfig,
    ports: &GatePorts<'_, F, P, G, A, D, R, Q, S>,
    now: DateTime<Utc>,
    deadline: Instant,
) -> Result<JobResult, GateError>
where
    F: ReadDeploymentFreeze,
    P: ReadPosture,
    G: ListFindings,
    A: FetchArtifact,
    D: RecordDeploy,
    R: ReportJobResult,
{
    let job = &event.code_pipeline_job;
    let job_id = job
        .id
        .clone()
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .ok_or(GateError::NoJobId)?;
    let result = evaluate_job(event, &job_id, policy, config, ports, now, deadline).await;
    ports
        .jobs
        .report(&job_id, &result)
        .await
        .map_err(|source| GateError::Report { job_id, source })?;
    Ok(result)
}

#[allow(clippy::too_many_arguments)]
async fn evaluate_job<F, P, G, A, D, R, Q, S>(
    event: &CodePipelineJobEvent,
    job_id: &str,
    policy: &GatePolicy,
    config: &GateConfig,
    ports: &GatePorts<'_, F, P, G, A, D, R, Q, S>,
    now: DateTime<Utc>,
    deadline: Instant,
) -> JobResult
where
    F: ReadDeploymentFreeze,
    P: ReadPosture,
    G: ListFindings,
    A: FetchArtifact,
    D: RecordDeploy,
{
    let data = &event.code_pipeline_job.data;
    let params = match parameters(
        data.action_configuration
            .configuration
            .user_parameters
            .as_deref(),
    ) {
        Ok(p) => p,
        Err(why) => {
            return JobResult::Failure {
                message: format!("Vigil gate: {why}"),
            };
        }
    };
    let mut progress = match data.continuation_token.as_deref() {
        None | Some("") => Progress {
            v: 1,
            target: params.target.clone(),
            results: Vec::new(),
        },
        Some(token) => match decode_progress(token, &params.target) {
            Ok(p) => p,
            Err(why) => {
                return JobResult::Failure {
                    message: format!("Vigil gate: {why}"),
                };
            }
        },
    };
    let artifact = job_artifact(event);
    let remaining: Vec<Check> = Check::ALL
        .into_iter()
        .filter(|c| !progress.results.iter().any(|r| r.check == *c))
        .collect();
    for (i, check) in remaining.iter().enumerate() {
        // At least one check per invocation, so every invocation makes progress.
        if i > 0 && Instant::now() + config.reserve >= deadline {
            let summary = format!(
                "Vigil gate: {} of {} checks done, continuing",
                progress.results.len(),
                Check::ALL.len()
            );
            return JobResult::Continue {
                token: encode_progress(&mut progress),
                summary,
            };
        }
        let r = run_check(
            *check,
            &params.target,
            artifact.as_ref(),
            policy,
            config,
            ports,
            now,
        )
        .await;
        progress.results.push(r);
    }
    let posture = Posture {
        target: params.target.clone(),
        results: progress.results,
    };
    match posture.verdict() {
        Verdict::Clean => {
            let deploy = Deploy {
                target: params.target.clone(),
                pipeline: params.pipeline.clone(),
                job_id: job_id.to_owned(),
                revision: data
                    .input_artifacts
                    .first()
                    .and_then(|a| a.revision.clone())
                    .map(|r| display_text(&r, 128)),
                at: now,
            };
            if let Err(e) = ports
                .deploys
                .record_deploy(&deploy, now + config.keep_deploys)
                .await
            {
                // The deploy still proceeds: the record only links later anomalies to it.
                tracing::warn!(error = %vigil_core::error_chain(&e), "deploy not recorded");
            }
            JobResult::Success {
                summary: posture.message(MAX_SUMMARY),
            }
        }
        Verdict::Blocked | Verdict::Uncertain => JobResult::Failure {
            message: posture.message(MAX_FAILURE_MESSAGE),
        },
    }
}

// --- One entry point for both ------------------------------------------------------------------

/// What the gate function was invoked with.
#[derive(Debug)]
pub enum GateEvent {
    Job(Box<CodePipelineJobEvent>),
    Approval(aws_lambda_events::event::sns::SnsEvent),
}

impl GateEvent {
    /// Tells a CodePipeline job from an SNS delivery of approval notifications.
    pub fn parse(value: serde_json::Value) -> Result<Self, GateError> {
        if value.get("CodePipeline.job").is_some() {
            return serde_json::from_value(value)
                .map(|j| GateEvent::Job(Box::new(j)))
                .map_err(|e| GateError::Notification(format!("not a CodePipeline job: {e}")));
        }
        if value.get("Records").is_some() {
            return serde_json::from_value(value)
                .map(GateEvent::Approval)
                .map_err(|e| GateError::Notification(format!("not an SNS event: {e}")));
        }
        Err(GateError::Notification(
            "neither a CodePipeline job nor an SNS approval notification".into(),
        ))
    }
}

/// Handles one invocation: answers the job, or each approval in the SNS delivery. Returns a
/// short account of what was done, for the logs.
#[allow(clippy::too_many_arguments)]
pub async fn handle<F, P, G, A, D, R, Q, S>(
    event: GateEvent,
    policy: &GatePolicy,
    config: &GateConfig,
    ports: &GatePorts<'_, F, P, G, A, D, R, Q, S>,
    now: DateTime<Utc>,
    deadline: Instant,
) -> Result<serde_json::Value, GateError>
where
    F: ReadDeploymentFreeze,
    P: ReadPosture,
    G: ListFindings,
    A: FetchArtifact,
    D: RecordDeploy,
    R: ReportJobResult,
    Q: ReportApproval + ReadApproval,
    S: PublishAlert,
{
    match event {
        GateEvent::Job(job) => {
            let r = handle_job(&job, policy, config, ports, now, deadline).await?;
            Ok(match r {
                JobResult::Success { .. } => serde_json::json!({"job": "succeeded"}),
                JobResult::Failure { message } => {
                    serde_json::json!({"job": "failed", "message": message})
                }
                JobResult::Continue { .. } => serde_json::json!({"job": "continuing"}),
            })
        }
        GateEvent::Approval(sns) => {
            let mut out = Vec::new();
            for record in &sns.records {
                let outcome =
                    handle_approval(&record.sns.message, policy, config, ports, now).await;
                out.push(match outcome {
                    Ok(ApprovalOutcome::Approved(_)) => serde_json::json!("approved"),
                    Ok(ApprovalOutcome::Rejected(_)) => serde_json::json!("rejected"),
                    Ok(ApprovalOutcome::LeftToPeople(_)) => serde_json::json!("left to people"),
                    // Counted for the alarm, never one email each: a forger could flood mail.
                    Ok(ApprovalOutcome::Refused(why)) => {
                        tracing::warn!(vigil_refused_approvals = 1, reason = %why, "approval notification refused");
                        serde_json::json!({"refused": why})
                    }
                    // A bad notification is reported, not retried: SNS would redeliver it.
                    Err(e @ GateError::Notification(_)) => {
                        tracing::warn!(error = %vigil_core::error_chain(&e), "approval notification ignored");
                        serde_json::json!({"ignored": e.to_string()})
                    }
                    Err(e) => return Err(e),
                });
            }
            Ok(serde_json::json!({"approvals": out}))
        }
    }
}
