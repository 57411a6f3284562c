//! Detection rules in the policy: what a rule hit means when no policy rule says more, and the
//! operators' suppressions.
//!
//! A hit is evidence that names its rule (`vigil_rules`, Sigma): it counts whatever the
//! principal's history, so the second opinions about models do not weigh it. Without a policy
//! rule naming it (by rule name or level), a hit at medium or above is told at once and one
//! below is recorded for the digest. A suppression silences one rule for one principal or
//! resource until it expires, and every decision it touches says so.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{Code, Incident, Reason, RuleHit, RuleLevel, Tier};

/// One rule silenced for one principal or resource, until it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSuppression {
    /// The detection rule's name (its Sigma `name`).
    pub rule: String,
    /// The principal (ARN or id, as the incident names it) or resource id it is silenced for.
    /// `*` silences it everywhere.
    pub on: String,
    /// The last day (UTC) it holds.
    pub expires: NaiveDate,
    /// Why: carried into every decision it touches, and so into the audit trail.
    pub reason: String,
}

impl RuleSuppression {
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("suppressions: {} on {}", self.rule, self.on);
        if self.rule.trim().is_empty() || self.on.trim().is_empty() {
            return Err(format!("{at}: names no rule or nothing to silence it on"));
        }
        if self.reason.trim().len() < 10 {
            return Err(format!(
                "{at}: needs a reason people can read (10 characters or more)"
            ));
        }
        Ok(())
    }

    fn applies(&self, hit: &RuleHit, incident: &Incident, now: DateTime<Utc>) -> bool {
        self.rule == hit.name
            && now.date_naive() <= self.expires
            && (self.on == "*"
                || self.on == incident.resource.id
                || incident.resource.arn.as_deref() == Some(self.on.as_str()))
    }
}

/// The incident's detection hits, with those a live suppression silences taken out (each named
/// in a reason), highest level first.
pub fn active(
    incident: &Incident,
    suppressions: &[RuleSuppression],
    now: DateTime<Utc>,
) -> (Vec<RuleHit>, Vec<Reason>) {
    let mut reasons = Vec::new();
    let mut hits = Vec::new();
    for hit in incident.rule_hits() {
        match suppressions.iter().find(|s| s.applies(hit, incident, now)) {
            Some(s) => reasons.push(Reason::new(
                Code::Suppressed,
                format!(
                    "{hit} suppressed on {} until {}: {}",
                    s.on, s.expires, s.reason
                ),
            )),
            None => hits.push(hit.clone()),
        }
    }
    (hits, reasons)
}

/// One reason per hit, citing the rule.
pub fn cite(hits: &[RuleHit]) -> Vec<Reason> {
    hits.iter()
        .map(|h| {
            let attack = if h.attack.is_empty() {
                String::new()
            } else {
                format!(" [{}]", h.attack.join(", "))
            };
            Reason::new(
                Code::Detection,
                format!(
                    "{} matched: {} (level {}){attack}",
                    h.name, h.title, h.level
                ),
            )
        })
        .collect()
}

/// What hits mean when no policy rule names them: told at once from medium up, else recorded
/// for the digest.
pub fn default_tier(hits: &[RuleHit]) -> (Tier, Reason) {
    let top = hits
        .iter()
        .map(|h| h.level)
        .max()
        .unwrap_or(RuleLevel::Informational);
    if top.alarms() {
        (
            Tier::Escalate,
            Reason::new(
                Code::Detection,
                format!(
                    "a detection rule matched at level {top}: people are told, no policy rule acts on it"
                ),
            ),
        )
    } else {
        (
            Tier::Observe,
            Reason::new(
                Code::Detection,
                format!(
                    "detection rules matched at level {top} at most: recorded for the digest, nobody is paged"
                ),
            ),
        )
    }
}

/// Whether every hit that alarms is one an outsider can cause (failed sign-ins, denied calls).
pub fn outsider_only(hits: &[RuleHit]) -> Option<String> {
    let alarming: Vec<&RuleHit> = hits.iter().filter(|h| h.level.alarms()).collect();
    (!alarming.is_empty() && alarming.iter().all(|h| h.outsider)).then(|| {
        format!(
            "{} matches what someone outside the account can cause",
            alarming
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}
