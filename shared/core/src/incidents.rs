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

/// Whether a scored signal names something wrong: a failure mode other than normal or
/// unknown, a threat, or a detection rule's match.
fn names_something(s: &Scored) -> bool {
    let score = &s.score;
    score.threat.is_some()
        || !matches!(
            score.failure_mode,
            FailureMode::Normal | FailureMode::Unknown
        )
        || !s.observation.signal.rules.is_empty()
}

/// The severity of a threat: how sure the model is that the activity is not benign.
fn threat_severity(anomaly: f64) -> Severity {
    match anomaly {
        a if a >= 0.9 => Severity::High,
        a if a >= 0.5 => Severity::Medium,
        _ => Severity::Low,
    }
}

/// Groups scored observations by resource and opens one incident per resource, led by its most
/// anomalous observation that names a failure or threat (else its most anomalous one). The incident id is derived from the resource and the leading event,
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
            evidence.sort_by(|a, b| {
                names_something(b)
                    .cmp(&names_something(a))
                    .then(b.score.anomaly.total_cmp(&a.score.anomaly))
            });
            let lead = evidence.first()?;
            let signal = &lead.observation.signal;
            // A detection rule's level counts as much as the model's reading.
            let detected = evidence
                .iter()
                .flat_map(|e| e.observation.signal.rules.iter())
                .map(|h| h.level.severity())
                .max();
            Some(Incident {
                id: format!("{}:{}", signal.resource.id, signal.event_id),
                resource: signal.resource.clone(),
                failure_mode: lead.score.failure_mode,
                threat: lead.score.threat,
                severity: match lead.score.threat {
                    Some(_) => threat_severity(lead.score.anomaly),
                    None => severity(lead.score.failure_mode, lead.score.anomaly),
                }
                .max(detected.unwrap_or(Severity::Info)),
                confidence: lead.score.confidence,
                opened_at: signal.observed_at,
                evidence,
            })
        })
        .collect()
}
