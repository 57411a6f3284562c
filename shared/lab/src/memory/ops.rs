//! Run Command, Automation and CodePipeline: what was sent, and the state it left.

use super::*;

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

pub(super) fn pairs(parameters: &[(&str, &str)]) -> Parameters {
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
