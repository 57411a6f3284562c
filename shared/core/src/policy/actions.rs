//! The actions a rule's ladder may ask for, and the action a rung means on an incident's
//! resource (from its ids and tags, each a validated name). A pipeline stage is acted on only
//! when the policy's `deployments` map the resource's group to it: a tag a team can set on its
//! own group never gives it authority over another team's pipeline.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{Action, Incident, ResourceKind};
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
    /// Needs the resource's group mapped to a pipeline stage by the policy's `deployments`
    /// (its [`PIPELINE_TAG`] and [`STAGE_TAG`] choose among several).
    FreezeDeployments,
    /// Holds a group still (no rebalancing, alarms or schedules) while people look.
    SuspendScaling,
    /// Needs a mapped pipeline stage, like the freeze.
    RollbackDeployment,
    /// Stops the deployment in the incident's evidence (a CodePipeline execution event).
    StopDeployment,
    /// Lifts a freeze (a mapped pipeline stage); for rules people approve.
    UnfreezeDeployments,
}

/// A pipeline stage Vigil may freeze, roll back or unfreeze, and the resources whose incidents
/// may do so: the stack's own map of who deploys what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    pub pipeline: String,
    pub stage: String,
    /// The Auto Scaling groups the stage deploys to (an instance counts by its group), and the
    /// principals (role or user ARNs) that deploy through it.
    pub resources: Vec<String>,
}

impl Deployment {
    /// Every name is one AWS would accept.
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("deployments: {}/{}", self.pipeline, self.stage);
        PipelineName::parse(&self.pipeline).map_err(|e| format!("{at}: {e}"))?;
        PipelineName::parse(&self.stage).map_err(|e| format!("{at}: {e}"))?;
        if self.resources.is_empty() {
            return Err(format!("{at}: names no resource"));
        }
        for r in &self.resources {
            if r.is_empty() || r.len() > 2048 || r.chars().any(char::is_control) {
                return Err(format!("{at}: {r:?} is not a group name or an ARN"));
            }
        }
        Ok(())
    }
}

/// The pipeline stage an incident's resource may act on: the one the policy maps its group to,
/// or, when it maps several, the one its tags name.
fn stage_of(
    incident: &Incident,
    deployments: &[Deployment],
) -> Result<(PipelineName, PipelineName), String> {
    let r = &incident.resource;
    // An instance counts by its group; a group, a principal by its own id.
    let group = match (&r.group, r.kind) {
        (Some(g), ResourceKind::Instance) => g.to_string(),
        _ => r.id.clone(),
    };
    let mapped: Vec<&Deployment> = deployments
        .iter()
        .filter(|d| d.resources.contains(&group))
        .collect();
    let tagged = (r.tags.get(PIPELINE_TAG), r.tags.get(STAGE_TAG));
    let chosen = match (mapped.as_slice(), tagged) {
        ([], (Some(p), Some(s))) => {
            return Err(format!(
                "its tags name {p}/{s}, but the policy's deployments map no stage to {group}: tags alone never give authority over a pipeline"
            ));
        }
        ([], _) => {
            return Err(format!(
                "the policy's deployments map no pipeline stage to {group}"
            ));
        }
        ([one], (None, None)) => *one,
        (several, (Some(p), Some(s))) => several
            .iter()
            .find(|d| &d.pipeline == p && &d.stage == s)
            .copied()
            .ok_or_else(|| {
                format!(
                    "its tags name {p}/{s}, which the policy's deployments do not map to {group}"
                )
            })?,
        (_, _) => {
            return Err(format!(
                "the policy's deployments map several stages to {group}; its {PIPELINE_TAG} and {STAGE_TAG} tags must name one of them"
            ));
        }
    };
    let parse = |n: &str| PipelineName::parse(n).map_err(|e| format!("{n}: {e}"));
    Ok((parse(&chosen.pipeline)?, parse(&chosen.stage)?))
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
pub fn action_for(
    kind: ActionKind,
    incident: &Incident,
    deployments: &[Deployment],
) -> Result<Action, String> {
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
        ActionKind::UnfreezeDeployments => {
            let (pipeline, stage) = stage_of(incident, deployments)?;
            Action::UnfreezeDeployments { pipeline, stage }
        }
        ActionKind::FreezeDeployments => {
            let (pipeline, stage) = stage_of(incident, deployments)?;
            Action::FreezeDeployments { pipeline, stage }
        }
        ActionKind::RollbackDeployment => {
            let (pipeline, stage) = stage_of(incident, deployments)?;
            Action::RollbackDeployment { pipeline, stage }
        }
        ActionKind::SuspendScaling => Action::SuspendScaling { group: group()? },
    })
}
