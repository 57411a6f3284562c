//! `vigil eval threats`: real attack detonations (Stratus Red Team CloudTrail logs) mixed into
//! a generated benign baseline, judged by the detection rules and the threat classifier, each
//! alone and both together.
//!
//! Every event passes the template's EventBridge rules first: what a deployed stack would not
//! receive is neither matched nor scored (and the model's histories learn only from what it
//! receives). The rules match the raw record; a rule's match alarms at level medium or above
//! (people told at once), below that it is only recorded for the digest, counted apart.
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

use crate::eventbridge::{self, EventRule};
use crate::generator::cloudtrail::{self, Labelled, Persona, ThreatClass};
use vigil_core::domain::SignalKind;
use vigil_core::events::{self, EventError};
use vigil_core::features::IDENTITY_V2;
use vigil_core::models::classifier::{Artifact, ModelError};
use vigil_rules::Pack;

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
    /// Records the template's event rules deliver.
    pub delivered: usize,
    /// Found by the rules or the model: people told at once.
    pub detected: bool,
    pub by_model: bool,
    /// Detection rules that matched at an alarming level (medium and above).
    pub rules_alarm: Vec<String>,
    /// Detection rules that matched below it: recorded for the digest only.
    pub rules_digest: Vec<String>,
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
    pub rules: usize,
    pub techniques: Vec<TechniqueResult>,
    /// Techniques found by rules or model, by the model, by the rules (alarming), and only
    /// in the digest (a low rule's match and nothing else).
    pub detected: usize,
    pub detected_by_model: usize,
    pub detected_by_rules: usize,
    pub digest_only: usize,
    /// Benign events generated, and those the template delivers (the rest are never seen).
    pub benign_generated: usize,
    pub benign_events: usize,
    /// Benign events the model alerts on, a rule alarms on, and either (the false alarms).
    /// Alarms on a gap in the account's posture that the generator put there on purpose
    /// (a human IAM user without MFA signing in, which CIS 4.2 asks to alarm on) are true
    /// findings and counted in `posture_alarms` instead.
    pub benign_alerts: usize,
    pub benign_rule_alarms: usize,
    pub benign_alarms: usize,
    /// Benign events a rule put in the digest (recorded, nobody paged), and alarming matches
    /// recorded because people were told of the same rule on the same principal within the
    /// policy's repeat period are among them.
    pub benign_digest: usize,
    /// The benign alarms by the rule that raised them.
    pub benign_alarms_by_rule: std::collections::BTreeMap<String, usize>,
    /// Alarms on the baseline's posture gaps (see [`Persona::posture_gaps`]), by rule, and
    /// the principals with a gap.
    pub posture_alarms: usize,
    pub posture_alarms_by_rule: std::collections::BTreeMap<String, usize>,
    pub principals_with_posture_gaps: usize,
    /// Alarms per benign event delivered, counting the posture alarms as false (the figure
    /// if an operator disagrees that they are findings).
    pub alarm_rate_with_posture: f64,
    /// False alarms per benign event delivered: rules or model.
    pub false_positive_rate: f64,
    /// The same for the model alone and the rules alone.
    pub model_false_positive_rate: f64,
    pub rules_false_positive_rate: f64,
}

/// A generated signal as the CloudTrail record it stands for (what the rules match).
pub fn record_of(signal: &vigil_core::domain::Signal) -> Option<serde_json::Value> {
    use serde_json::{Map, Value, json};
    let identity = |p: &vigil_core::domain::Principal| {
        let mut id = json!({"type": p.kind, "arn": p.id, "principalId": p.id});
        if let Some(n) = &p.name {
            id["userName"] = json!(n);
        }
        if let Some(k) = &p.access_key_id {
            id["accessKeyId"] = json!(k);
        }
        if let Some(m) = p.mfa_authenticated {
            id["sessionContext"] = json!({"attributes": {"mfaAuthenticated": m.to_string()}});
        }
        id
    };
    let time = signal.observed_at.to_rfc3339();
    Some(match &signal.kind {
        SignalKind::ApiCall(c) => {
            // `path=value` back to nested parameters.
            let mut params = Map::new();
            for kv in &c.request {
                let Some((path, value)) = kv.split_once('=') else {
                    continue;
                };
                let mut at = &mut params;
                let parts: Vec<&str> = path.split('.').collect();
                for (i, part) in parts.iter().enumerate() {
                    if i + 1 == parts.len() {
                        let v = match value {
                            "true" => Value::Bool(true),
                            "false" => Value::Bool(false),
                            v => v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n)),
                        };
                        at.insert((*part).to_owned(), v);
                    } else {
                        let next = at
                            .entry((*part).to_owned())
                            .or_insert_with(|| Value::Object(Map::new()));
                        let Value::Object(m) = next else { break };
                        at = m;
                    }
                }
            }
            let mut r = json!({
                "eventVersion": "1.09", "eventID": signal.event_id, "eventTime": time,
                "eventSource": c.event_source, "eventName": c.event_name,
                "awsRegion": c.region, "sourceIPAddress": c.source_ip, "userAgent": c.user_agent,
                "userIdentity": identity(&c.principal),
                "requestParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
                "responseElements": null,
                "readOnly": c.read_only.unwrap_or(false),
                "eventType": "AwsApiCall", "managementEvent": true,
            });
            if let Some(e) = &c.error_code {
                r["errorCode"] = json!(e);
            }
            r
        }
        SignalKind::ConsoleSignIn {
            principal,
            success,
            mfa_used,
            source_ip,
            user_agent,
        } => json!({
            "eventVersion": "1.09", "eventID": signal.event_id, "eventTime": time,
            "eventSource": "signin.amazonaws.com", "eventName": "ConsoleLogin",
            "awsRegion": "us-east-1", "sourceIPAddress": source_ip, "userAgent": user_agent,
            "userIdentity": identity(principal),
            "requestParameters": null,
            "responseElements": {"ConsoleLogin": if *success { "Success" } else { "Failure" }},
            "additionalEventData": {"MFAUsed": if mfa_used.unwrap_or(false) { "Yes" } else { "No" }},
            "readOnly": false, "eventType": "AwsConsoleSignIn", "managementEvent": true,
        }),
        _ => return None,
    })
}

/// Correlation windows by history key, as the state table keeps them.
type Histories = std::collections::HashMap<String, vigil_core::features::correlation::Windows>;

/// Folds a signal (with its detection hits) into the correlation windows as ingest does (the
/// principal's history, or the source address's); the correlations that fired.
fn correlate(
    correlations: &[vigil_core::features::correlation::Correlation],
    histories: &mut Histories,
    signal: &vigil_core::domain::Signal,
) -> Vec<vigil_core::domain::RuleHit> {
    use vigil_core::features::correlation::Group;
    correlations
        .iter()
        .filter(|c| c.counts(signal))
        .filter_map(|c| {
            let key = match c.group {
                Group::Principal => vigil_core::keys::history_key(&signal.resource.id).to_owned(),
                Group::SourceAddress => c.history_of(signal)?,
            };
            c.fold(histories.entry(key).or_default(), signal)
        })
        .collect()
}

/// The rules' verdict: the alarming and the digest rules' names, highest level first.
fn judge(mut hits: Vec<vigil_core::domain::RuleHit>) -> (Vec<String>, Vec<String>) {
    hits.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.name.cmp(&b.name)));
    let (alarm, digest): (Vec<_>, Vec<_>) = hits.into_iter().partition(|h| h.level.alarms());
    (
        alarm.into_iter().map(|h| h.name).collect(),
        digest.into_iter().map(|h| h.name).collect(),
    )
}

fn delivered(routes: &[EventRule], record: &serde_json::Value) -> bool {
    eventbridge::delivered_by(routes, &eventbridge::envelope(record)).is_some()
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

/// Runs the evaluation: every event through `routes` (the template's event rules), then the
/// detection rules of `pack` and the `model`.
pub fn evaluate(
    model: &Artifact,
    pack: &Pack,
    routes: &[EventRule],
    techniques: &[Technique],
) -> Result<ThreatReport, ThreatEvalError> {
    let threshold = model.card.alert_threshold;
    let mut rng = crate::generator::rng(BASELINE_SEED);
    let personas = cloudtrail::personas(&mut rng, "999988887777");
    let start = cloudtrail::epoch();
    let mut baseline = cloudtrail::benign(&mut rng, &personas, start, BASELINE_DAYS);
    let benign_generated = baseline.len();
    // Only what the stack receives.
    baseline.retain(|l| record_of(&l.signal).is_some_and(|r| delivered(routes, &r)));

    // False alarms: the baseline alone, event by event.
    let mut alone = baseline.clone();
    alone.sort_by_key(|l| l.signal.observed_at);
    let mut profiles: std::collections::HashMap<
        String,
        vigil_core::features::identity::PrincipalProfile,
    > = std::collections::HashMap::new();
    let (mut benign_events, mut benign_alerts, mut benign_rule_alarms) = (0, 0, 0);
    let (mut benign_alarms, mut benign_digest) = (0, 0);
    // People are told of a detection rule's match on a principal once per the policy's repeat
    // period (`opinions.repeat`, as decide claims it); later matches are recorded.
    let repeat = vigil_core::policy::Policy::bundled()
        .map(|p| p.opinions.repeat.period())
        .unwrap_or_default();
    let period = |rule: &str| {
        pack.repeat_minutes(rule).map_or(repeat, |m| {
            repeat.max(chrono::Duration::minutes(i64::from(m)))
        })
    };
    let mut told: std::collections::HashMap<(String, String), chrono::DateTime<chrono::Utc>> =
        std::collections::HashMap::new();
    let mut benign_alarms_by_rule = std::collections::BTreeMap::new();
    let correlations = pack.correlated();
    let mut benign_windows = Histories::new();
    let gaps: std::collections::HashMap<&str, Vec<&str>> = personas
        .iter()
        .map(|p| (p.principal.id.as_str(), p.posture_gaps()))
        .filter(|(_, g)| !g.is_empty())
        .collect();
    // A rule alarm on a principal's own posture gap: the rule carries the gap's CIS tag.
    let on_gap = |principal: &str, rule: &str| {
        gaps.get(principal).is_some_and(|g| {
            pack.get(rule)
                .is_some_and(|r| r.sigma().tags.iter().any(|t| g.contains(&t.as_str())))
        })
    };
    let (mut posture_alarms, mut posture_alarms_by_rule) = (0, std::collections::BTreeMap::new());
    for l in &alone {
        let profile = profiles.entry(l.signal.resource.id.clone()).or_default();
        let Some(f) = vigil_core::features::identity::identity(&l.signal, profile) else {
            profile.observe(&l.signal);
            continue;
        };
        profile.observe(&l.signal);
        benign_events += 1;
        let by_model = not_benign(model, &f)?.0 >= threshold;
        let mut hits = record_of(&l.signal).map_or_else(Vec::new, |r| pack.check(&r));
        let mut signal = l.signal.clone();
        signal.rules.clone_from(&hits);
        hits.extend(correlate(&correlations, &mut benign_windows, &signal));
        pack.reported(&mut hits);
        let (mut alarm, digest) = judge(hits);
        let repeated = !alarm.is_empty();
        if let Some(top) = alarm.first() {
            let key = (l.signal.resource.id.clone(), top.clone());
            let at = l.signal.observed_at;
            match told.get(&key) {
                Some(last) if at - *last < period(top) => alarm.clear(),
                _ => {
                    told.insert(key, at);
                }
            }
        }
        let repeated = repeated && alarm.is_empty();
        if !by_model && !alarm.is_empty() && alarm.iter().all(|r| on_gap(&l.signal.resource.id, r))
        {
            posture_alarms += 1;
            *posture_alarms_by_rule.entry(alarm[0].clone()).or_insert(0) += 1;
            continue;
        }
        if let Some(top) = alarm.first() {
            *benign_alarms_by_rule.entry(top.clone()).or_insert(0) += 1;
        }
        benign_alerts += usize::from(by_model);
        benign_rule_alarms += usize::from(!alarm.is_empty());
        benign_alarms += usize::from(by_model || !alarm.is_empty());
        benign_digest += usize::from(alarm.is_empty() && (!digest.is_empty() || repeated));
    }

    let humans: Vec<&Persona> = personas.iter().filter(|p| p.human).collect();
    let roles: Vec<&Persona> = personas.iter().filter(|p| !p.human).collect();
    let mut results = Vec::with_capacity(techniques.len());
    for t in techniques {
        // The rules on the raw records the stack receives.
        let kept: Vec<&serde_json::Value> =
            t.records.iter().filter(|r| delivered(routes, r)).collect();
        let (mut rules_alarm, mut rules_digest) = (Vec::new(), Vec::new());
        let mut windows = Histories::new();
        for r in &kept {
            let mut hits = pack.check(r);
            if let Ok(mut signal) = events::normalise_cloudtrail_record(r) {
                signal.rules.clone_from(&hits);
                hits.extend(correlate(&correlations, &mut windows, &signal));
            }
            pack.reported(&mut hits);
            let (a, d) = judge(hits);
            rules_alarm.extend(a);
            rules_digest.extend(d);
        }
        for v in [&mut rules_alarm, &mut rules_digest] {
            v.sort();
            v.dedup();
        }
        let kept_ids: std::collections::HashSet<&str> =
            kept.iter().filter_map(|r| r["eventID"].as_str()).collect();
        let signals: Vec<vigil_core::domain::Signal> = technique_signals(t)?
            .into_iter()
            .filter(|s| kept_ids.contains(s.event_id.as_str()))
            .collect();
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
            records: t.records.len(),
            delivered: ids.len(),
            detected: false,
            by_model: false,
            rules_alarm,
            rules_digest,
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
                    result.by_model = true;
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
        result.detected = result.by_model || !result.rules_alarm.is_empty();
        results.push(result);
    }
    let count = |f: &dyn Fn(&TechniqueResult) -> bool| results.iter().filter(|r| f(r)).count();
    let rate = |n: usize| n as f64 / benign_events.max(1) as f64;
    Ok(ThreatReport {
        model: model.id(),
        threshold,
        rules: pack.len(),
        detected: count(&|r| r.detected),
        detected_by_model: count(&|r| r.by_model),
        detected_by_rules: count(&|r| !r.rules_alarm.is_empty()),
        digest_only: count(&|r| !r.detected && !r.rules_digest.is_empty()),
        benign_generated,
        benign_events,
        benign_alerts,
        benign_rule_alarms,
        benign_alarms,
        benign_digest,
        benign_alarms_by_rule,
        posture_alarms,
        posture_alarms_by_rule,
        principals_with_posture_gaps: gaps.len(),
        alarm_rate_with_posture: rate(benign_alarms + posture_alarms),
        false_positive_rate: rate(benign_alarms),
        model_false_positive_rate: rate(benign_alerts),
        rules_false_positive_rate: rate(benign_rule_alarms),
        techniques: results,
    })
}
