//! Recoveries the evidence shows: the alarm behind an action back to OK, or a replacement
//! launched after Vigil took an instance out of its group. Notes on a decision, never a change
//! of tier (`remediate` reads them to close what it opened).

use crate::domain::Code;
use chrono::{DateTime, Utc};

use crate::domain::{
    AlarmState, Attempt, FailureMode, Incident, OutcomeStatus, Reason, ScalingActivityKind,
    SignalKind,
};
use crate::names::GroupName;

/// The verification that comes later than an action can wait for: the alarm that led to an
/// action on this resource is back to OK. Cites the attempt it follows.
pub(super) fn recovery(
    incident: &Incident,
    attempts: &[Attempt],
    now: DateTime<Utc>,
) -> Option<Reason> {
    if incident.failure_mode != FailureMode::Normal || incident.threat.is_some() {
        return None;
    }
    let alarm = incident
        .evidence
        .iter()
        .find_map(|e| match &e.observation.signal.kind {
            SignalKind::AlarmStateChange {
                alarm,
                state: AlarmState::Ok,
                ..
            } => Some(alarm.clone()),
            _ => None,
        })?;
    recovered_after(attempts, now, |minutes, last| {
        format!(
            "alarm {} is back to OK {minutes} minute(s) after {} (decision {}): recovered",
            crate::names::display_text(&alarm, 256),
            last.action,
            last.decision_id
        )
    })
}

/// The `recovery` reason for the last action carried out among `attempts`, worded by `say`
/// from the minutes since it and the attempt.
fn recovered_after(
    attempts: &[Attempt],
    now: DateTime<Utc>,
    say: impl FnOnce(i64, &Attempt) -> String,
) -> Option<Reason> {
    let last = attempts.iter().rev().find(|a| {
        matches!(
            a.status,
            OutcomeStatus::Verified | OutcomeStatus::Unverified
        )
    })?;
    let minutes = (now - last.at).num_minutes().max(0);
    Some(Reason::new(Code::Recovery, say(minutes, last)))
}

/// The group an incident's launch-succeeded evidence is in, if it has any.
pub(super) fn launched_in(incident: &Incident) -> Option<GroupName> {
    incident.evidence.iter().find_map(|e| {
        let s = &e.observation.signal;
        match &s.kind {
            SignalKind::ScalingActivity {
                activity: ScalingActivityKind::LaunchSucceeded,
                ..
            } => s.resource.group.clone(),
            _ => None,
        }
    })
}

/// A launch in a group after Vigil took an instance out of it: the replacement is in service.
/// `group_attempts` are the actions on the group within the loop breaker's window.
pub(super) fn replacement(
    incident: &Incident,
    group_attempts: &[Attempt],
    now: DateTime<Utc>,
) -> Option<Reason> {
    let group = launched_in(incident)?;
    // Only an instance taken out is replaced (a scale-out's launch is new capacity).
    let removals: Vec<Attempt> = group_attempts
        .iter()
        .filter(|a| matches!(a.action.as_str(), "replace_instance" | "detach_instance"))
        .cloned()
        .collect();
    recovered_after(&removals, now, |minutes, last| {
        format!(
            "{} launched in group {group} {minutes} minute(s) after {} (decision {}): the replacement is in service",
            incident.resource.id, last.action, last.decision_id
        )
    })
}
