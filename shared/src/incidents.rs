//! Correlation: scored observations in, incidents out. Pure.

use std::collections::BTreeMap;

use crate::domain::{FailureMode, Incident, Scored, Severity};

/// Severity from how anomalous the worst observation was.
pub fn severity(failure_mode: FailureMode, anomaly: f64) -> Severity {
    match (failure_mode, anomaly) {
        (FailureMode::Normal, _) => Severity::Info,
        (_, a) if a >= 0.9 => Severity::Critical,
        (_, a) if a >= 0.75 => Severity::High,
        (_, a) if a >= 0.5 => Severity::Medium,
        _ => Severity::Low,
    }
}

/// Groups scored observations by resource and opens one incident per resource, led by its most
/// anomalous observation. The incident id is derived from the resource and the leading event,
/// so the same event always yields the same incident.
pub fn open(scored: Vec<Scored>) -> Vec<Incident> {
    let mut by_resource: BTreeMap<String, Vec<Scored>> = BTreeMap::new();
    for s in scored {
        by_resource
            .entry(s.observation.signal.resource.id.clone())
            .or_default()
            .push(s);
    }
    by_resource
        .into_values()
        .filter_map(|mut evidence| {
            evidence.sort_by(|a, b| b.score.anomaly.total_cmp(&a.score.anomaly));
            let lead = evidence.first()?;
            let signal = &lead.observation.signal;
            Some(Incident {
                id: format!("{}:{}", signal.resource.id, signal.event_id),
                resource: signal.resource.clone(),
                failure_mode: lead.score.failure_mode,
                severity: severity(lead.score.failure_mode, lead.score.anomaly),
                confidence: lead.score.confidence,
                opened_at: signal.observed_at,
                evidence,
            })
        })
        .collect()
}
