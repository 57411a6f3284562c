//! Reconnaissance read only from familiar calls whose one novelty is the network.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict};
use crate::domain::{Code, FeatureVector, Reason, ThreatClass};
use crate::features::identity::NAMES;
use crate::policy::model_only;

/// Reconnaissance named by the threat classifier alone, on calls each of which the principal
/// makes routinely (a known read: its API, user agent, region and hour are familiar, nothing
/// sensitive), whose only novelties are the network and at most one denial in the quarter
/// hour, is recorded, not told. A new network is what travel, a VPN or a new instance behind a
/// role looks like; one denied read among routine ones is what a narrowed or misconfigured
/// permission looks like. Reconnaissance is enumeration: calls new to the principal, or
/// denials one after another as it probes what the credentials may do. Anything else new
/// about a call (an API, a tool, a region, an hour, a second denial) is told as before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FamiliarReads {
    pub enabled: bool,
}

impl Default for FamiliarReads {
    fn default() -> Self {
        FamiliarReads { enabled: true }
    }
}

/// Denials in the quarter hour a routine read may follow: one is a permission narrowed or
/// misconfigured; two are the start of probing.
const MAX_DENIALS: f64 = 1.0;

impl Opinion for FamiliarReads {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        if incident.threat != Some(ThreatClass::Reconnaissance) || !model_only(incident) {
            return Verdict::Agree;
        }
        // What a routine read may carry: a network new to the principal, and one denial (the
        // call's own or one before it in the quarter hour) with the error a denied call
        // answers with. Another failure, without a denial, is something else new.
        let familiar = |f: &FeatureVector| {
            let denials = f.get("access_denied_15m").unwrap_or(f64::MAX);
            let may_vary = |name: &str, value: f64| match name {
                "read_only" => value == 1.0,
                "history" => true,
                "new_network" => value <= 1.0,
                "access_denied_15m" => value <= MAX_DENIALS,
                "error" => value == 0.0 || denials >= 1.0,
                _ => value == 0.0,
            };
            NAMES
                .iter()
                .all(|n| f.get(n).is_some_and(|v| may_vary(n, v)))
        };
        let calls: Vec<&FeatureVector> = incident
            .evidence
            .iter()
            .map(|e| &e.observation.features)
            .filter(|f| f.schema == crate::features::IDENTITY_V2)
            .collect();
        if calls.is_empty() || !calls.iter().all(|f| familiar(f)) {
            return Verdict::Agree;
        }
        Verdict::Record(Reason::new(
            Code::Opinion(OpinionCode::FamiliarReads),
            format!(
                "{} read as reconnaissance, but each call is a read it makes routinely (API, user agent, region, hour), at most from a network new to it and after at most one denial: what travel, a VPN, a new instance or a narrowed permission looks like, not enumeration. Recorded; told when anything else about a call is new or a second call is denied",
                incident.resource.id
            ),
        ))
    }
}
