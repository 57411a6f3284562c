//! CodePipeline: answering a job (the gate's invoke action); freezing deployments by disabling
//! a stage's inbound transition, and reading it back.

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::types::{ExecutionDetails, FailureDetails, FailureType};

use super::port_error;
use vigil_core::names::PipelineName;
use vigil_handlers::ports::{
    DisableTransition, JobResult, PortError, PortErrorKind, ReportJobResult, RollbackStage,
    StopAndResume, TransitionEnabled,
};

/// CodePipeline's limits on a failure message and an execution summary.
pub const MAX_FAILURE_MESSAGE: usize = 5000;
pub const MAX_SUMMARY: usize = 2048;

#[derive(Debug, Clone)]
pub struct CodePipeline {
    client: Client,
}

impl CodePipeline {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        CodePipeline {
            client: Client::new(config),
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl ReportJobResult for CodePipeline {
    async fn report(&self, job_id: &str, result: &JobResult) -> Result<(), PortError> {
        match result {
            JobResult::Success { summary } => {
                self.client
                    .put_job_success_result()
                    .job_id(job_id)
                    .execution_details(
                        ExecutionDetails::builder()
                            .summary(truncate(summary, MAX_SUMMARY))
                            .percent_complete(100)
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| port_error("codepipeline:PutJobSuccessResult", e))?;
            }
            JobResult::Continue { token, summary } => {
                self.client
                    .put_job_success_result()
                    .job_id(job_id)
                    .continuation_token(token)
                    .execution_details(
                        ExecutionDetails::builder()
                            .summary(truncate(summary, MAX_SUMMARY))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| port_error("codepipeline:PutJobSuccessResult", e))?;
            }
            JobResult::Failure { message } => {
                const OP: &str = "codepipeline:PutJobFailureResult";
                let details = FailureDetails::builder()
                    .r#type(FailureType::JobFailed)
                    .message(truncate(message, MAX_FAILURE_MESSAGE))
                    .build()
                    .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
                self.client
                    .put_job_failure_result()
                    .job_id(job_id)
                    .failure_details(details)
                    .send()
                    .await
                    .map_err(|e| port_error(OP, e))?;
            }
        }
        Ok(())
    }
}

impl DisableTransition for CodePipeline {
    async fn disable_transition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        reason: &str,
    ) -> Result<(), PortError> {
        self.client
            .disable_stage_transition()
            .pipeline_name(pipeline.as_str())
            .stage_name(stage.as_str())
            .transition_type(aws_sdk_codepipeline::types::StageTransitionType::Inbound)
            // CodePipeline takes at most 300 characters here.
            .reason(truncate(reason, 300))
            .send()
            .await
            .map_err(|e| port_error("codepipeline:DisableStageTransition", e))?;
        Ok(())
    }
}

impl CodePipeline {
    /// A stage's state (GetPipelineState), `None` when the pipeline has no such stage.
    async fn stage_state(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<Option<aws_sdk_codepipeline::types::StageState>, PortError> {
        let out = self
            .client
            .get_pipeline_state()
            .name(pipeline.as_str())
            .send()
            .await
            .map_err(|e| port_error("codepipeline:GetPipelineState", e))?;
        Ok(out
            .stage_states()
            .iter()
            .find(|s| s.stage_name() == Some(stage.as_str()))
            .cloned())
    }
}

impl TransitionEnabled for CodePipeline {
    async fn transition_enabled(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<Option<bool>, PortError> {
        Ok(self
            .stage_state(pipeline, stage)
            .await?
            .map(|s| s.inbound_transition_state().is_none_or(|t| t.enabled())))
    }
}

impl RollbackStage for CodePipeline {
    async fn rollback(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<String, PortError> {
        const LIST: &str = "codepipeline:ListPipelineExecutions";
        let out = self
            .client
            .list_pipeline_executions()
            .pipeline_name(pipeline.as_str())
            .max_results(50)
            .send()
            .await
            .map_err(|e| port_error(LIST, e))?;
        // The newest execution that succeeded, other than the latest (the one being undone).
        let executions = out.pipeline_execution_summaries();
        let target = executions
            .iter()
            .skip(1)
            .find(|e| e.status().is_some_and(|s| s.as_str() == "Succeeded"))
            .and_then(|e| e.pipeline_execution_id())
            .ok_or_else(|| {
                PortError::new(
                    LIST,
                    PortErrorKind::NotFound,
                    format!("pipeline {pipeline} has no earlier successful execution"),
                )
            })?
            .to_owned();
        self.client
            .rollback_stage()
            .pipeline_name(pipeline.as_str())
            .stage_name(stage.as_str())
            .target_pipeline_execution_id(&target)
            .send()
            .await
            .map_err(|e| port_error("codepipeline:RollbackStage", e))?;
        Ok(target)
    }

    async fn stage_status(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<Option<String>, PortError> {
        Ok(self
            .stage_state(pipeline, stage)
            .await?
            .and_then(|s| s.latest_execution().map(|e| e.status().as_str().to_owned())))
    }
}

impl StopAndResume for CodePipeline {
    async fn stop_execution(
        &self,
        pipeline: &PipelineName,
        execution: &PipelineName,
        reason: &str,
    ) -> Result<(), PortError> {
        self.client
            .stop_pipeline_execution()
            .pipeline_name(pipeline.as_str())
            .pipeline_execution_id(execution.as_str())
            // Let in-flight actions finish: an abandoned deploy can leave a stack half-updated.
            .abandon(false)
            .reason(truncate(reason, 200))
            .send()
            .await
            .map_err(|e| port_error("codepipeline:StopPipelineExecution", e))?;
        Ok(())
    }

    async fn enable_transition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
    ) -> Result<(), PortError> {
        self.client
            .enable_stage_transition()
            .pipeline_name(pipeline.as_str())
            .stage_name(stage.as_str())
            .transition_type(aws_sdk_codepipeline::types::StageTransitionType::Inbound)
            .send()
            .await
            .map_err(|e| port_error("codepipeline:EnableStageTransition", e))?;
        Ok(())
    }

    async fn execution_status(
        &self,
        pipeline: &PipelineName,
        execution: &PipelineName,
    ) -> Result<Option<String>, PortError> {
        let out = self
            .client
            .get_pipeline_execution()
            .pipeline_name(pipeline.as_str())
            .pipeline_execution_id(execution.as_str())
            .send()
            .await
            .map_err(|e| port_error("codepipeline:GetPipelineExecution", e))?;
        Ok(out
            .pipeline_execution()
            .and_then(|e| e.status())
            .map(|s| s.as_str().to_owned()))
    }
}

impl vigil_handlers::ports::ReportApproval for CodePipeline {
    async fn answer(
        &self,
        action: &vigil_handlers::ports::ApprovalAction,
        approved: bool,
        summary: &str,
    ) -> Result<(), PortError> {
        use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};
        const OP: &str = "codepipeline:PutApprovalResult";
        let result = ApprovalResult::builder()
            // CodePipeline takes at most 512 characters here.
            .summary(truncate(summary, 512))
            .status(if approved {
                ApprovalStatus::Approved
            } else {
                ApprovalStatus::Rejected
            })
            .build()
            .map_err(|e| PortError::new(OP, PortErrorKind::Rejected, e))?;
        self.client
            .put_approval_result()
            .pipeline_name(action.pipeline.as_str())
            .stage_name(action.stage.as_str())
            .action_name(action.action.as_str())
            .token(&action.token)
            .result(result)
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}

impl vigil_handlers::ports::ReadApproval for CodePipeline {
    async fn approval_definition(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        action: &PipelineName,
    ) -> Result<Option<vigil_handlers::ports::ApprovalDefinition>, PortError> {
        use aws_sdk_codepipeline::types::ActionCategory;
        let out = self
            .client
            .get_pipeline()
            .name(pipeline.as_str())
            .send()
            .await
            .map_err(|e| port_error("codepipeline:GetPipeline", e))?;
        let found = out
            .pipeline()
            .into_iter()
            .flat_map(|p| p.stages())
            .filter(|s| s.name() == stage.as_str())
            .flat_map(|s| s.actions())
            .find(|a| {
                a.name() == action.as_str()
                    && a.action_type_id().is_some_and(|t| {
                        *t.category() == ActionCategory::Approval && t.provider() == "Manual"
                    })
            });
        Ok(found.map(|a| {
            let config = a.configuration();
            let get = |k: &str| config.and_then(|c| c.get(k)).cloned();
            vigil_handlers::ports::ApprovalDefinition {
                notification_arn: get("NotificationArn"),
                custom_data: get("CustomData"),
            }
        }))
    }

    async fn waiting_token(
        &self,
        pipeline: &PipelineName,
        stage: &PipelineName,
        action: &PipelineName,
    ) -> Result<Option<String>, PortError> {
        use aws_sdk_codepipeline::types::ActionExecutionStatus;
        Ok(self.stage_state(pipeline, stage).await?.and_then(|s| {
            s.action_states()
                .iter()
                .find(|a| a.action_name() == Some(action.as_str()))
                .and_then(|a| a.latest_execution())
                .filter(|e| e.status() == Some(&ActionExecutionStatus::InProgress))
                .and_then(|e| e.token().map(str::to_owned))
        }))
    }
}
