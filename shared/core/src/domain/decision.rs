//! What Vigil decides and how it ends: tiers, actions, decisions, outcomes.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Code, Incident, Reason};
use crate::names::{AccessKeyId, GroupName, InstanceId, PipelineName, ServiceName};

/// How far Vigil may go on its own.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    /// Act now, then tell people.
    AutoHeal,
    /// Ask a person; act on their approval.
    Approval,
    /// Tell people; act on nothing.
    Escalate,
    /// Stop deployments or contain.
    Block,
    /// Record only.
    Observe,
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tier::AutoHeal => "auto-heal",
            Tier::Approval => "approval",
            Tier::Escalate => "escalate",
            Tier::Block => "block",
            Tier::Observe => "observe",
        };
        f.write_str(s)
    }
}

/// A remediation Vigil can carry out. Every variant carries validated names only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// Mark the instance Unhealthy so that its Auto Scaling group replaces it.
    ReplaceInstance {
        group: GroupName,
        instance: InstanceId,
    },
    /// Restart a service on the instance with the stack's Run Command document.
    RestartService {
        group: GroupName,
        instance: InstanceId,
        service: ServiceName,
    },
    /// Raise the group's desired capacity by `by`, within its maximum.
    ScaleOut { group: GroupName, by: u32 },
    /// Take the instance out of its group for forensics; the group launches a replacement.
    DetachInstance {
        group: GroupName,
        instance: InstanceId,
    },
    /// Isolate the instance (the stack's containment runbook, `infra/ssm/contain-instance.yaml`).
    QuarantineInstance { instance: InstanceId },
    /// Deactivate a leaked access key (the stack's runbook).
    DeactivateAccessKey { access_key_id: AccessKeyId },
    /// Disable the transition into a pipeline stage: no deployment enters it until people
    /// enable it again.
    FreezeDeployments {
        pipeline: PipelineName,
        stage: PipelineName,
    },
    /// Suspend the group's scaling processes that would disturb people examining it (launches
    /// and terminations stay: the group keeps healing).
    SuspendScaling { group: GroupName },
    /// Resume what [`Action::SuspendScaling`] suspended.
    ResumeScaling { group: GroupName },
    /// Roll a pipeline stage back to its last successful execution.
    RollbackDeployment {
        pipeline: PipelineName,
        stage: PipelineName,
    },
    /// Stop a pipeline execution that is deploying (in-flight actions finish).
    StopDeployment {
        pipeline: PipelineName,
        execution: PipelineName,
    },
    /// Enable the transition into a stage again: lift a deployment freeze.
    UnfreezeDeployments {
        pipeline: PipelineName,
        stage: PipelineName,
    },
    /// Undo a quarantine (the stack's release runbook, `infra/ssm/release-instance.yaml`): the
    /// security groups recorded when it was isolated, termination allowed again; its evidence
    /// snapshots stay. Only a named approver's undo carries it out.
    ReleaseInstance { instance: InstanceId },
    /// Activate again a key Vigil deactivated (the stack's runbook): only a named approver's
    /// undo carries it out.
    ReactivateAccessKey { access_key_id: AccessKeyId },
    /// Lower the group's desired capacity by `by`, within its minimum: undo a scale-out.
    ScaleIn { group: GroupName, by: u32 },
}

/// The scaling processes [`Action::SuspendScaling`] suspends.
pub const SUSPENDED_PROCESSES: [&str; 3] = ["AZRebalance", "AlarmNotification", "ScheduledActions"];

/// The resource tags Vigil keeps (a group's tags on its instances), at most this many.
pub const MAX_TAGS: usize = 50;

impl Action {
    /// A short stable name of the action kind, for rate limits, cooldown keys and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::ReplaceInstance { .. } => "replace_instance",
            Action::RestartService { .. } => "restart_service",
            Action::ScaleOut { .. } => "scale_out",
            Action::DetachInstance { .. } => "detach_instance",
            Action::QuarantineInstance { .. } => "quarantine_instance",
            Action::DeactivateAccessKey { .. } => "deactivate_access_key",
            Action::FreezeDeployments { .. } => "freeze_deployments",
            Action::SuspendScaling { .. } => "suspend_scaling",
            Action::ResumeScaling { .. } => "resume_scaling",
            Action::RollbackDeployment { .. } => "rollback_deployment",
            Action::StopDeployment { .. } => "stop_deployment",
            Action::UnfreezeDeployments { .. } => "unfreeze_deployments",
            Action::ReleaseInstance { .. } => "release_instance",
            Action::ReactivateAccessKey { .. } => "reactivate_access_key",
            Action::ScaleIn { .. } => "scale_in",
        }
    }

    /// The resource the action touches, for cooldown keys.
    pub fn target(&self) -> String {
        match self {
            Action::ReplaceInstance { instance, .. }
            | Action::RestartService { instance, .. }
            | Action::DetachInstance { instance, .. }
            | Action::QuarantineInstance { instance }
            | Action::ReleaseInstance { instance } => instance.to_string(),
            Action::ScaleOut { group, .. }
            | Action::ScaleIn { group, .. }
            | Action::SuspendScaling { group }
            | Action::ResumeScaling { group } => group.to_string(),
            Action::DeactivateAccessKey { access_key_id }
            | Action::ReactivateAccessKey { access_key_id } => access_key_id.to_string(),
            Action::FreezeDeployments { pipeline, stage }
            | Action::RollbackDeployment { pipeline, stage }
            | Action::UnfreezeDeployments { pipeline, stage } => format!("{pipeline}/{stage}"),
            Action::StopDeployment {
                pipeline,
                execution,
            } => format!("{pipeline}/{execution}"),
        }
    }

    /// The instance the action takes out of service, if any (for the blast radius).
    pub fn removes_instance(&self) -> Option<&GroupName> {
        match self {
            Action::ReplaceInstance { group, .. } | Action::DetachInstance { group, .. } => {
                Some(group)
            }
            _ => None,
        }
    }

    /// The Auto Scaling group whose instances the action changes: one taken out, or the
    /// group's capacity or processes. Its instances' metrics move after it.
    pub fn changes_group(&self) -> Option<&GroupName> {
        match self {
            Action::ScaleOut { group, .. }
            | Action::ScaleIn { group, .. }
            | Action::SuspendScaling { group }
            | Action::ResumeScaling { group } => Some(group),
            _ => self.removes_instance(),
        }
    }

    /// The action that undoes this one, if it has one. Replacing, restarting and detaching
    /// heal or keep evidence and have none; a rollback or a stopped execution is undone by
    /// deploying again, which is people's to do; an undo has none (it is not undone again).
    pub fn inverse(&self) -> Option<Action> {
        match self {
            Action::QuarantineInstance { instance } => Some(Action::ReleaseInstance {
                instance: instance.clone(),
            }),
            Action::DeactivateAccessKey { access_key_id } => Some(Action::ReactivateAccessKey {
                access_key_id: access_key_id.clone(),
            }),
            Action::SuspendScaling { group } => Some(Action::ResumeScaling {
                group: group.clone(),
            }),
            Action::FreezeDeployments { pipeline, stage } => Some(Action::UnfreezeDeployments {
                pipeline: pipeline.clone(),
                stage: stage.clone(),
            }),
            Action::ScaleOut { group, by } => Some(Action::ScaleIn {
                group: group.clone(),
                by: *by,
            }),
            Action::ReplaceInstance { .. }
            | Action::RestartService { .. }
            | Action::DetachInstance { .. }
            | Action::RollbackDeployment { .. }
            | Action::StopDeployment { .. }
            | Action::ResumeScaling { .. }
            | Action::UnfreezeDeployments { .. }
            | Action::ReleaseInstance { .. }
            | Action::ReactivateAccessKey { .. }
            | Action::ScaleIn { .. } => None,
        }
    }

    /// Whether only a named approver's undo may carry the action out: it gives back what
    /// containment took from a suspected attacker (a key, an instance's network).
    pub fn undo_only(&self) -> bool {
        matches!(
            self,
            Action::ReleaseInstance { .. } | Action::ReactivateAccessKey { .. }
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::ReplaceInstance { group, instance } => write!(
                f,
                "replace instance {instance} (mark it Unhealthy in Auto Scaling group {group})"
            ),
            Action::RestartService {
                instance, service, ..
            } => write!(
                f,
                "restart service {service} on {instance} (SSM Run Command)"
            ),
            Action::ScaleOut { group, by } => {
                write!(f, "scale Auto Scaling group {group} out by {by}")
            }
            Action::DetachInstance { group, instance } => write!(
                f,
                "detach {instance} from Auto Scaling group {group} for forensics (the group replaces it)"
            ),
            Action::QuarantineInstance { instance } => {
                write!(
                    f,
                    "quarantine {instance} (deny-all security group, volumes snapshotted, detached)"
                )
            }
            Action::DeactivateAccessKey { access_key_id } => {
                write!(f, "deactivate access key {access_key_id}")
            }
            Action::FreezeDeployments { pipeline, stage } => write!(
                f,
                "freeze deployments: disable the transition into stage {stage} of pipeline {pipeline}"
            ),
            Action::SuspendScaling { group } => write!(
                f,
                "suspend {} in Auto Scaling group {group}",
                SUSPENDED_PROCESSES.join(", ")
            ),
            Action::ResumeScaling { group } => write!(
                f,
                "resume {} in Auto Scaling group {group}",
                SUSPENDED_PROCESSES.join(", ")
            ),
            Action::RollbackDeployment { pipeline, stage } => write!(
                f,
                "roll stage {stage} of pipeline {pipeline} back to its last successful execution"
            ),
            Action::StopDeployment {
                pipeline,
                execution,
            } => write!(f, "stop execution {execution} of pipeline {pipeline}"),
            Action::UnfreezeDeployments { pipeline, stage } => write!(
                f,
                "lift the freeze: enable the transition into stage {stage} of pipeline {pipeline}"
            ),
            Action::ReleaseInstance { instance } => write!(
                f,
                "release {instance} from quarantine (its own security groups again, termination allowed; evidence snapshots kept)"
            ),
            Action::ReactivateAccessKey { access_key_id } => {
                write!(f, "activate access key {access_key_id} again")
            }
            Action::ScaleIn { group, by } => {
                write!(f, "scale Auto Scaling group {group} in by {by}")
            }
        }
    }
}

/// Whether actions are carried out or only recorded.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Shadow mode: record and report what would have been done. The default.
    #[default]
    DryRun,
    Enforce,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::DryRun => "dry-run",
            Mode::Enforce => "enforce",
        })
    }
}

/// What Vigil decided about an incident, and why: the output of `decide`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Stable id: the incident id and the action, so a re-delivery maps to the same decision.
    pub id: String,
    pub incident: Incident,
    pub tier: Tier,
    /// The action to carry out, if any. `None` for observe and escalate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    pub mode: Mode,
    #[serde(default)]
    pub reasons: Vec<Reason>,
    pub decided_at: DateTime<Utc>,
}

impl Decision {
    /// A decision that found nothing: a healthy resource, recorded only (no action, no threat,
    /// no failure, no recovery to tell). The audit trail holds what was acted on, asked,
    /// escalated or blocked; these are left to the logs.
    pub fn found_nothing(&self) -> bool {
        self.tier == Tier::Observe
            && !self.cites(&super::Code::Recovery)
            && self.action.is_none()
            && self.incident.threat.is_none()
            && self.incident.failure_mode == super::FailureMode::Normal
    }

    /// Whether remediation should call AWS to change anything.
    pub fn acts(&self) -> bool {
        self.action.is_some()
            && self.mode == Mode::Enforce
            && matches!(self.tier, Tier::AutoHeal | Tier::Block)
    }

    /// Whether one of the decision's reasons has the given code.
    pub fn cites(&self, code: &Code) -> bool {
        self.reasons.iter().any(|r| &r.code == code)
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// Carried out and its effect verified.
    Verified,
    /// Carried out, but its effect could not be verified.
    Unverified,
    /// Carried out and failed.
    Failed,
    /// Not carried out: dry-run, kill switch, or no action in the decision.
    NotActed,
}

/// The result of carrying out (or declining to carry out) a decision: the output of `remediate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub decision_id: String,
    pub status: OutcomeStatus,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<String>,
    pub finished_at: DateTime<Utc>,
}

/// What Vigil needs to know of an Auto Scaling group to bound an action's blast radius.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCapacity {
    pub min_size: u32,
    pub max_size: u32,
    pub desired: u32,
    /// Instances in the `InService` lifecycle state and healthy.
    pub in_service: u32,
}

/// An instance's membership of an Auto Scaling group, as Auto Scaling reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub group: GroupName,
    /// `HEALTHY` or `UNHEALTHY`.
    pub health: String,
    /// `InService`, `Terminating`, ...
    pub lifecycle: String,
    /// The application and environment the group's tags name, if they do.
    #[serde(default)]
    pub application: Option<String>,
    #[serde(default)]
    pub environment: Option<String>,
    /// The group's tags, capped at [`MAX_TAGS`].
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One earlier action on a resource and how it ended: the loop breaker's and the remediation
/// ladder's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    /// [`Action::kind`] of the action.
    pub action: String,
    pub status: OutcomeStatus,
    pub decision_id: String,
}
