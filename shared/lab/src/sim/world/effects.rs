//! What the world makes of Vigil's decisions, in either arm: alerts, people engaged, and the
//! effects of the actions carried out (a restart clears a runaway, a scale-out a surge).

use super::*;

#[derive(Debug, Clone)]
pub(super) enum Effect {
    Replace(usize),
    Clear(usize, String),
}

/// What the world makes of Vigil's decisions: alerts, people engaged, actions' effects.
pub(super) fn apply(
    decisions: &[(Decision, OutcomeStatus)],
    minute: u32,
    instances: &[Instance],
    book: &mut Book,
    pending: &mut Vec<(u32, Effect)>,
    kind: FailureMode,
) {
    for (d, status) in decisions {
        if vigil_core::telemetry::held_by(d).is_some() {
            book.result.blocked_by_limits += 1;
        }
        if d.tier == Tier::Observe {
            continue;
        }
        let res = &d.incident.resource;
        let group = res.group.as_ref().map(|g| g.to_string());
        let mut names: Vec<&str> = vec![res.id.as_str()];
        if let Some(g) = &group {
            names.push(g);
        }
        let posture = book.on_posture_gap(d);
        let (new, fault) = book.alert_with(
            &names,
            minute,
            &d.incident.what(),
            d.incident.confidence,
            &d.tier.to_string(),
            posture,
        );
        let acted =
            d.acts() && matches!(status, OutcomeStatus::Verified | OutcomeStatus::Unverified);
        if acted {
            book.result.actions += 1;
            if let Some(a) = &d.action {
                effect(a, minute, instances, book, pending, kind);
            }
            continue;
        }
        // Told or asked: people.
        if new {
            book.result.human_interventions += 1;
        }
        if let Some(f) = fault {
            let quick = matches!(d.tier, Tier::Approval)
                .then(|| d.action.as_ref().map(|_| RESTART_MINUTES))
                .flatten();
            book.people(f, minute, quick);
        }
    }
}

pub(super) fn effect(
    a: &Action,
    minute: u32,
    instances: &[Instance],
    book: &mut Book,
    pending: &mut Vec<(u32, Effect)>,
    kind: FailureMode,
) {
    let idx = |id: &InstanceId| {
        instances
            .iter()
            .position(|i| &i.id == id && i.gone_at.is_none())
    };
    let fault_on =
        |id: &InstanceId| idx(id).and_then(|i| instances[i].faulty.as_ref().map(|(f, _)| *f));
    let group_fault = |g: &GroupName| {
        book.faults.iter().position(|f| {
            f.target == g.as_str()
                || (f.group.as_deref() == Some(g.as_str()) && f.instances.len() > 1)
        })
    };
    match a {
        Action::ReplaceInstance { instance, .. } | Action::DetachInstance { instance, .. } => {
            if let Some(i) = idx(instance)
                && !pending
                    .iter()
                    .any(|(_, e)| matches!(e, Effect::Replace(x) if *x == i))
            {
                pending.push((minute + REPLACE_MINUTES, Effect::Replace(i)));
            }
        }
        Action::RestartService { instance, .. } => {
            if let Some(f) = fault_on(instance)
                && matches!(kind, FailureMode::CpuRunaway | FailureMode::MemoryLeak)
            {
                pending.push((
                    minute + RESTART_MINUTES,
                    Effect::Clear(f, "Vigil: restarted".into()),
                ));
            }
        }
        Action::ScaleOut { group, .. } => {
            if let Some(f) = group_fault(group)
                && kind == FailureMode::TrafficSurge
            {
                pending.push((
                    minute + SCALE_MINUTES,
                    Effect::Clear(f, "Vigil: scaled out".into()),
                ));
            }
        }
        Action::RollbackDeployment { pipeline, .. } => {
            let app = pipeline.as_str().trim_end_matches("-release");
            let g = format!("{app}-prod");
            if let Some(f) = book.faults.iter().position(|f| f.target == g)
                && kind == FailureMode::BadDeployment
            {
                pending.push((
                    minute + ROLLBACK_MINUTES,
                    Effect::Clear(f, "Vigil: rolled back".into()),
                ));
            }
        }
        Action::DeactivateAccessKey { access_key_id } => {
            if let Some(f) = book
                .faults
                .iter()
                .position(|f| f.alias.as_deref() == Some(access_key_id.as_str()))
            {
                pending.push((
                    minute + CONTAIN_MINUTES,
                    Effect::Clear(f, "Vigil: key deactivated".into()),
                ));
            }
        }
        _ => {}
    }
}
