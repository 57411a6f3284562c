//! The actions a rule's ladder may ask for, and the action a rung means on an incident's
//! resource (from its ids and tags, each a validated name).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{Action, Incident};
use crate::names::{AccessKeyId, PipelineName, ServiceName};

/// The kind of action a ladder rung asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    ReplaceInstance,
    /// Needs the group tagged with the service to restart ([`SERVICE_TAG`]).
    RestartService,
    ScaleOut,
    DetachInstance,
    QuarantineInstance,
    DeactivateAccessKey,
    /// Needs the resource tagged with the pipeline and stage ([`PIPELINE_TAG`], [`STAGE_TAG`]).
    FreezeDeployments,
    /// Holds a group still (no rebalancing, alarms or schedules) while people look.
    SuspendScaling,
    /// Needs the pipeline and stage tags, like the freeze.
    RollbackDeployment,
    /// Stops the deployment in the incident's evidence (a CodePipeline execution event).
    StopDeployment,
    /// Lifts a freeze (pipeline and stage tags); for rules people approve.
    UnfreezeDeployments,
}

/// The tag naming the service the restart rung restarts (on the group, copied to instances).
pub const SERVICE_TAG: &str = "vigil:service";
/// The tags naming the pipeline and stage that deploy a resource's application.
pub const PIPELINE_TAG: &str = "vigil:pipeline";
pub const STAGE_TAG: &str = "vigil:stage";

impl ActionKind {
    /// The name [`Action::kind`] gives an action of this kind (as attempts record it).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Whether the action's effect can be undone or heals by itself: a restarted service, a
    /// replaced instance, an extra instance, a key or a transition enabled again. Detaching and
    /// quarantining take an instance away for people to look at: a person approves them unless
    /// a blocking rule says otherwise.
    pub fn reversible(self) -> bool {
        match self {
            ActionKind::ReplaceInstance
            | ActionKind::RestartService
            | ActionKind::ScaleOut
            | ActionKind::DeactivateAccessKey
            | ActionKind::FreezeDeployments
            | ActionKind::SuspendScaling
            | ActionKind::RollbackDeployment
            | ActionKind::StopDeployment
            | ActionKind::UnfreezeDeployments => true,
            ActionKind::DetachInstance | ActionKind::QuarantineInstance => false,
        }
    }
}

/// The action a ladder rung asks for, on this incident's resource; `Err` says what is missing.
pub fn action_for(kind: ActionKind, incident: &Incident) -> Result<Action, String> {
    let r = &incident.resource;
    let instance = || {
        r.instance_id()
            .ok()
            .flatten()
            .ok_or_else(|| format!("{r} is not an instance"))
    };
    let group = || {
        r.group
            .clone()
            .ok_or_else(|| format!("{r} is not in an Auto Scaling group"))
    };
    let tag = |key: &str| {
        r.tags
            .get(key)
            .ok_or_else(|| format!("{r} has no {key} tag"))
    };
    Ok(match kind {
        ActionKind::ReplaceInstance => Action::ReplaceInstance {
            instance: instance()?,
            group: group()?,
        },
        ActionKind::RestartService => Action::RestartService {
            instance: instance()?,
            group: group()?,
            service: ServiceName::parse(tag(SERVICE_TAG)?)
                .map_err(|e| format!("its {SERVICE_TAG} tag is refused ({e})"))?,
        },
        ActionKind::ScaleOut => Action::ScaleOut {
            group: group()?,
            by: 1,
        },
        ActionKind::DetachInstance => Action::DetachInstance {
            instance: instance()?,
            group: group()?,
        },
        ActionKind::QuarantineInstance => Action::QuarantineInstance {
            instance: instance()?,
        },
        ActionKind::DeactivateAccessKey => {
            if r.kind != crate::domain::ResourceKind::AccessKey {
                return Err(format!("{r} is not an access key"));
            }
            Action::DeactivateAccessKey {
                access_key_id: AccessKeyId::parse(&r.id)
                    .map_err(|e| format!("the key id is refused ({e})"))?,
            }
        }
        ActionKind::StopDeployment => {
            let (pipeline, execution) = incident
                .evidence
                .iter()
                .find_map(|e| match &e.observation.signal.kind {
                    crate::domain::SignalKind::Deployment {
                        pipeline,
                        execution_id,
                        ..
                    } => Some((pipeline.clone(), execution_id.clone())),
                    _ => None,
                })
                .ok_or_else(|| "the evidence holds no deployment".to_owned())?;
            Action::StopDeployment {
                pipeline: PipelineName::parse(&pipeline)
                    .map_err(|e| format!("the pipeline name is refused ({e})"))?,
                execution: PipelineName::parse(&execution)
                    .map_err(|e| format!("the execution id is refused ({e})"))?,
            }
        }
        ActionKind::UnfreezeDeployments => Action::UnfreezeDeployments {
            pipeline: PipelineName::parse(tag(PIPELINE_TAG)?)
                .map_err(|e| format!("its {PIPELINE_TAG} tag is refused ({e})"))?,
            stage: PipelineName::parse(tag(STAGE_TAG)?)
                .map_err(|e| format!("its {STAGE_TAG} tag is refused ({e})"))?,
        },
        ActionKind::FreezeDeployments | ActionKind::RollbackDeployment => {
            let pipeline = PipelineName::parse(tag(PIPELINE_TAG)?)
                .map_err(|e| format!("its {PIPELINE_TAG} tag is refused ({e})"))?;
            let stage = PipelineName::parse(tag(STAGE_TAG)?)
                .map_err(|e| format!("its {STAGE_TAG} tag is refused ({e})"))?;
            if kind == ActionKind::FreezeDeployments {
                Action::FreezeDeployments { pipeline, stage }
            } else {
                Action::RollbackDeployment { pipeline, stage }
            }
        }
        ActionKind::SuspendScaling => Action::SuspendScaling { group: group()? },
    })
}
