//! `gate`: the CodePipeline invoke action. Evaluates the target's posture and always answers
//! the job, with success or with a failure that lists each reason on its own line.

use crate::names::display_text;
use crate::ports::{JobResult, PortError, ReadDeploymentFreeze, ReportJobResult};
use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// What the pipeline tells the gate in the action's UserParameters (JSON).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GateParameters {
    /// The deployment target whose posture decides: `application/environment`.
    pub target: String,
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
}

fn parameters(event: &CodePipelineJobEvent) -> Result<GateParameters, String> {
    let raw = event
        .code_pipeline_job
        .data
        .action_configuration
        .configuration
        .user_parameters
        .as_deref()
        .ok_or(
            "the action has no UserParameters; expected {\"target\": \"application/environment\"}",
        )?;
    let p: GateParameters = serde_json::from_str(raw)
        .map_err(|e| format!("UserParameters are not valid gate parameters: {e}"))?;
    let valid = p.target.len() <= 256
        && p.target.split('/').count() == 2
        && p.target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if !valid {
        return Err(format!(
            "target {:?} is not of the form application/environment",
            display_text(&p.target, 64)
        ));
    }
    Ok(p)
}

/// Evaluates the posture and answers the job.
pub async fn handle(
    event: &CodePipelineJobEvent,
    freeze: &impl ReadDeploymentFreeze,
    report: &impl ReportJobResult,
    now: DateTime<Utc>,
) -> Result<JobResult, GateError> {
    let job_id = event
        .code_pipeline_job
        .id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or(GateError::NoJobId)?;
    let result = match parameters(event) {
        Err(why) => JobResult::Failure {
            message: format!("Vigil gate: {why}"),
        },
        Ok(p) => match freeze.freeze(&p.target, now).await {
            Ok(None) => JobResult::Success {
                summary: format!("Vigil gate: posture of {} is clean", p.target),
            },
            Ok(Some(reason)) => JobResult::Failure {
                message: format!(
                    "Vigil gate blocked the deployment of {}:\n- deployment freeze: {}",
                    p.target,
                    display_text(&reason, 1000)
                ),
            },
            Err(e) => JobResult::Failure {
                message: format!(
                    "Vigil gate: the posture of {} could not be read: {e}",
                    p.target
                ),
            },
        },
    };
    report
        .report(&job_id, &result)
        .await
        .map_err(|source| GateError::Report { job_id, source })?;
    Ok(result)
}
