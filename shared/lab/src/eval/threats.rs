//! `vigil eval threats`: real attack detonations (Stratus Red Team CloudTrail logs) mixed into
//! a generated benign baseline, scored by the threat classifier.
//!
//! Each technique is replayed as if the intruder held a benign principal's stolen
//! credentials: its records are re-attributed to a principal of the baseline (a user for
//! IAM-user records, a role otherwise) and moved into the baseline's second week; their
//! source addresses and user agents stay as recorded. The detonation logs' regions are
//! anonymised to names that exist nowhere, so they are set to the victim's usual region rather
//! than handing the model a novelty it would not see in a real account. A technique is
//! detected when any of its records reaches the model's alert threshold. The false-positive
//! rate is measured on the baseline alone. The baseline is generated with its own seed, one
//! used neither for training nor for the held-out metrics.

use chrono::Duration;
use rand::RngExt;
use rand::seq::IndexedRandom;
use serde::Serialize;

use crate::generator::cloudtrail::{self, Labelled, Persona, ThreatClass};
use vigil_core::domain::SignalKind;
use vigil_core::events::{self, EventError};
use vigil_core::features::IDENTITY_V2;
use vigil_core::models::classifier::{Artifact, ModelError};

/// The baseline's seed.
pub const BASELINE_SEED: u64 = 4_242;
/// Days of benign activity; detonations land in the second week.
pub const BASELINE_DAYS: u32 = 14;

/// One technique's detonation log.
#[derive(Debug, Clone)]
pub struct Technique {
    pub name: String,
    pub records: Vec<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ThreatEvalError {
    #[error("technique {technique}: record {index} does not parse")]
    Record {
        technique: String,
        index: usize,
        #[source]
        source: Box<EventError>,
    },
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// How one technique fared.
#[derive(Debug, Clone, Serialize)]
pub struct TechniqueResult {
    pub technique: String,
    pub records: usize,
    pub detected: bool,
    /// The highest P(not benign) among its records, the call that had it and the class named.
    pub best_score: f64,
    pub best_call: String,
    pub best_class: String,
    /// Records at or above the threshold.
    pub alerts: usize,
}

/// The whole evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct ThreatReport {
    pub model: String,
    pub threshold: f64,
    pub techniques: Vec<TechniqueResult>,
    pub detected: usize,
    pub benign_events: usize,
    pub benign_alerts: usize,
    pub false_positive_rate: f64,
}

fn not_benign(model: &Artifact, row: &[f64]) -> Result<(f64, usize), ModelError> {
    let p = model.predict(IDENTITY_V2, row)?;
    let benign = p.probabilities.first().copied().unwrap_or(1.0);
    let class = p
        .probabilities
        .iter()
        .enumerate()
        .skip(1)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    Ok((1.0 - benign, class))
}

/// A detonation log's records as signals, in their order.
pub fn technique_signals(
    t: &Technique,
) -> Result<Vec<vigil_core::domain::Signal>, ThreatEvalError> {
    t.records
        .iter()
        .enumerate()
        .map(|(index, r)| {
            events::normalise_cloudtrail_record(r).map_err(|source| ThreatEvalError::Record {
                technique: t.name.clone(),
                index,
                source: Box::new(source),
            })
        })
        .collect()
}

/// Whether a detonation was made with an IAM user's credentials (else a role's).
pub fn by_user(signals: &[vigil_core::domain::Signal]) -> bool {
    signals.iter().any(|s| match &s.kind {
        SignalKind::ApiCall(c) => c.principal.kind == "IAMUser",
        SignalKind::ConsoleSignIn { principal, .. } => principal.kind == "IAMUser",
        _ => false,
    })
}

/// Re-attributes a detonation's signals to `victim` and moves them to start at `start`.
pub fn replant(
    signals: Vec<vigil_core::domain::Signal>,
    victim: &Persona,
    start: chrono::DateTime<chrono::Utc>,
) -> Vec<Labelled> {
    let first = signals.iter().map(|s| s.observed_at).min().unwrap_or(start);
    let region = victim.regions.first().cloned().unwrap_or_default();
    signals
        .into_iter()
        .map(|mut s| {
            s.observed_at = start + (s.observed_at - first);
            s.resource.id = victim.principal.id.clone();
            match &mut s.kind {
                SignalKind::ApiCall(c) => {
                    let mfa = c.principal.mfa_authenticated;
                    c.principal = victim.principal.clone();
                    c.principal.mfa_authenticated = mfa;
                    c.region = region.clone();
                }
                SignalKind::ConsoleSignIn { principal, .. } => {
                    let mfa = principal.mfa_authenticated;
                    *principal = victim.principal.clone();
                    principal.mfa_authenticated = mfa;
                }
                _ => {}
            }
            Labelled {
                signal: s,
                // The truth is "not benign"; the class only matters to training.
                class: ThreatClass::CredentialCompromise,
            }
        })
        .collect()
}

/// Runs the evaluation.
pub fn evaluate(
    model: &Artifact,
    techniques: &[Technique],
) -> Result<ThreatReport, ThreatEvalError> {
    let threshold = model.card.alert_threshold;
    let mut rng = crate::generator::rng(BASELINE_SEED);
    let personas = cloudtrail::personas(&mut rng, "999988887777");
    let start = cloudtrail::epoch();
    let baseline = cloudtrail::benign(&mut rng, &personas, start, BASELINE_DAYS);

    // False positives: the baseline alone.
    let mut alone = baseline.clone();
    let rows = cloudtrail::featurise(&mut alone);
    let mut benign_alerts = 0;
    for (row, _) in &rows {
        if not_benign(model, row)?.0 >= threshold {
            benign_alerts += 1;
        }
    }

    let humans: Vec<&Persona> = personas.iter().filter(|p| p.human).collect();
    let roles: Vec<&Persona> = personas.iter().filter(|p| !p.human).collect();
    let mut results = Vec::with_capacity(techniques.len());
    for t in techniques {
        let signals = technique_signals(t)?;
        let pool = if by_user(&signals) { &humans } else { &roles };
        let Some(victim) = pool.choose(&mut rng).copied() else {
            continue;
        };
        let at = start
            + Duration::days(rng.random_range(7..i64::from(BASELINE_DAYS)))
            + Duration::minutes(rng.random_range(0..1440));
        let planted = replant(signals, victim, at);
        let ids: std::collections::HashSet<String> =
            planted.iter().map(|l| l.signal.event_id.clone()).collect();
        let mut timeline = baseline.clone();
        timeline.extend(planted);
        timeline.sort_by_key(|l| l.signal.observed_at);
        // Features in time order, keeping only the technique's own rows.
        let mut profiles: std::collections::HashMap<
            String,
            vigil_core::features::identity::PrincipalProfile,
        > = std::collections::HashMap::new();
        let mut result = TechniqueResult {
            technique: t.name.clone(),
            records: ids.len(),
            detected: false,
            best_score: 0.0,
            best_call: String::new(),
            best_class: String::new(),
            alerts: 0,
        };
        for l in &timeline {
            let profile = profiles.entry(l.signal.resource.id.clone()).or_default();
            if ids.contains(&l.signal.event_id)
                && let Some(f) = vigil_core::features::identity::identity(&l.signal, profile)
            {
                let (score, class) = not_benign(model, &f)?;
                if score >= threshold {
                    result.alerts += 1;
                    result.detected = true;
                }
                if score > result.best_score {
                    result.best_score = score;
                    result.best_call = match &l.signal.kind {
                        SignalKind::ApiCall(c) => format!("{}:{}", c.event_source, c.event_name),
                        _ => "signin:ConsoleLogin".to_owned(),
                    };
                    result.best_class = model.card.classes.get(class).cloned().unwrap_or_default();
                }
            }
            profile.observe(&l.signal);
        }
        results.push(result);
    }
    let detected = results.iter().filter(|r| r.detected).count();
    Ok(ThreatReport {
        model: model.id(),
        threshold,
        detected,
        benign_events: rows.len(),
        benign_alerts,
        false_positive_rate: benign_alerts as f64 / rows.len().max(1) as f64,
        techniques: results,
    })
}
