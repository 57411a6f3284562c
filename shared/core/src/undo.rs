//! Undo: an action Vigil took, undone as a decision of its own. The undo's action is the
//! original's inverse ([`Action::inverse`]); it waits, like any approval, for the policy's named
//! approvers (never a link: the approve function takes an undo only from a principal the
//! policy names), and is then decided again under every limit in force.

use chrono::{DateTime, Utc};

use crate::domain::{Action, Code, Decision, OutcomeStatus, Reason, Tier};

/// How long an action stays undoable after it was carried out.
pub const KEEP_DAYS: i64 = 30;

/// What ends an undo's decision id: `<original decision id>:undo`.
const SUFFIX: &str = ":undo";

/// The id of the decision that undoes `original`.
pub fn id(original: &str) -> String {
    format!("{original}{SUFFIX}")
}

/// Whether a decision is an undo.
pub fn is_undo(decision: &Decision) -> bool {
    decision.id.ends_with(SUFFIX)
}

/// Whether the decision's action, carried out with `status`, can be undone later: it was
/// carried out (its effect seen or not), it has an inverse, and it is not itself an undo.
pub fn undoable(decision: &Decision, status: OutcomeStatus) -> bool {
    decision.acts()
        && matches!(status, OutcomeStatus::Verified | OutcomeStatus::Unverified)
        && !is_undo(decision)
        && decision.action.as_ref().and_then(Action::inverse).is_some()
}

/// Why a decision cannot be undone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotUndoable {
    #[error("decision {0} took no action that can be undone")]
    NoInverse(String),
}

/// The decision that undoes `original`, asked for by the named approver `principal` at `now`:
/// waiting for approval, on the same incident, with the inverse action.
pub fn decision(
    original: &Decision,
    principal: &str,
    now: DateTime<Utc>,
) -> Result<Decision, NotUndoable> {
    let (action, inverse) = original
        .action
        .as_ref()
        .and_then(|a| Some((a, a.inverse()?)))
        .filter(|_| !is_undo(original))
        .ok_or_else(|| NotUndoable::NoInverse(original.id.clone()))?;
    Ok(Decision {
        id: id(&original.id),
        incident: original.incident.clone(),
        tier: Tier::Approval,
        action: Some(inverse),
        mode: original.mode,
        reasons: vec![Reason::new(
            Code::Undo,
            format!(
                "undo of decision {} ({action}, at {}), asked by the named approver {principal} at {now}",
                original.id, original.decided_at
            ),
        )],
        decided_at: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FailureMode, Incident, Mode, Resource, ResourceKind, Severity};
    use crate::names::{AccessKeyId, GroupName, InstanceId, PipelineName};

    fn taken(action: Action) -> Decision {
        Decision {
            id: "inc-1:x".into(),
            incident: Incident {
                id: "inc-1".into(),
                resource: Resource::new(ResourceKind::Instance, "i-0123456789abcdef0"),
                failure_mode: FailureMode::Normal,
                threat: None,
                severity: Severity::High,
                confidence: 0.9,
                opened_at: Utc::now(),
                evidence: Vec::new(),
            },
            tier: Tier::AutoHeal,
            action: Some(action),
            mode: Mode::Enforce,
            reasons: Vec::new(),
            decided_at: Utc::now(),
        }
    }

    #[test]
    fn each_action_with_an_inverse_is_undone_by_it_and_an_undo_is_not_undone() {
        let instance = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let key = AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap();
        let group = GroupName::parse("web").unwrap();
        let (pipeline, stage) = (
            PipelineName::parse("shop").unwrap(),
            PipelineName::parse("Deploy").unwrap(),
        );
        let pairs = [
            (
                Action::QuarantineInstance {
                    instance: instance.clone(),
                },
                Action::ReleaseInstance {
                    instance: instance.clone(),
                },
            ),
            (
                Action::DeactivateAccessKey {
                    access_key_id: key.clone(),
                },
                Action::ReactivateAccessKey {
                    access_key_id: key.clone(),
                },
            ),
            (
                Action::SuspendScaling {
                    group: group.clone(),
                },
                Action::ResumeScaling {
                    group: group.clone(),
                },
            ),
            (
                Action::FreezeDeployments {
                    pipeline: pipeline.clone(),
                    stage: stage.clone(),
                },
                Action::UnfreezeDeployments {
                    pipeline: pipeline.clone(),
                    stage: stage.clone(),
                },
            ),
            (
                Action::ScaleOut {
                    group: group.clone(),
                    by: 2,
                },
                Action::ScaleIn {
                    group: group.clone(),
                    by: 2,
                },
            ),
        ];
        let now = Utc::now();
        for (forward, back) in pairs {
            assert_eq!(forward.inverse().as_ref(), Some(&back), "{forward}");
            assert_eq!(back.inverse(), None, "an undo is not undone: {back}");
            let original = taken(forward.clone());
            assert!(undoable(&original, OutcomeStatus::Verified));
            assert!(!undoable(&original, OutcomeStatus::Failed));
            assert!(!undoable(&original, OutcomeStatus::NotActed));
            let undo = decision(&original, "arn:aws:iam::123456789012:role/Approver", now).unwrap();
            assert_eq!(undo.id, "inc-1:x:undo");
            assert_eq!(undo.tier, Tier::Approval, "an undo waits for approval");
            assert_eq!(undo.action, Some(back));
            assert!(undo.cites(&Code::Undo));
            assert!(undo.reasons[0].message.contains("role/Approver"));
            assert!(is_undo(&undo) && !is_undo(&original));
            // Its own undo does not exist, even if it were carried out.
            let mut acted = undo.clone();
            acted.tier = Tier::AutoHeal;
            assert!(!undoable(&acted, OutcomeStatus::Verified));
            assert!(decision(&acted, "x", now).is_err());
        }
        let replaced = taken(Action::ReplaceInstance {
            group,
            instance: instance.clone(),
        });
        assert!(!undoable(&replaced, OutcomeStatus::Verified));
        assert_eq!(
            decision(&replaced, "x", now),
            Err(NotUndoable::NoInverse("inc-1:x".into()))
        );
        // A dry run changed nothing: nothing to undo.
        let mut dry = taken(Action::QuarantineInstance { instance });
        dry.mode = Mode::DryRun;
        assert!(!undoable(&dry, OutcomeStatus::Verified));
    }
}
