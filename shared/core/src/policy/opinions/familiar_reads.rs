//! Reconnaissance read only from familiar calls whose one novelty is the network.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict};
use crate::domain::{Code, FeatureVector, Reason, ThreatClass};
use crate::features::identity::NAMES;
use crate::policy::model_only;

/// Reconnaissance named by the threat classifier alone, on calls each of which the principal
/// makes routinely (a known read: its API, user agent, region and hour are familiar, nothing
/// denied, failed or sensitive) and whose only novelty is the network, is recorded, not told:
/// that is what travel, a VPN or a new instance behind a role looks like. Anything else new
/// about a call (an API, a tool, a region, a denial) is told as before.
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

impl Opinion for FamiliarReads {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        if incident.threat != Some(ThreatClass::Reconnaissance) || !model_only(incident) {
            return Verdict::Agree;
        }
        let familiar = |f: &FeatureVector| {
            let is = |name: &str, want: f64| f.get(name) == Some(want);
            is("new_network", 1.0)
                && is("read_only", 1.0)
                && NAMES
                    .iter()
                    .filter(|n| !matches!(**n, "new_network" | "read_only" | "history"))
                    .all(|n| is(n, 0.0))
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
                "{} read as reconnaissance only because its calls came from a network new to it; each call is one it makes routinely (API, user agent, region), read-only, nothing denied: what travel, a VPN or a new instance looks like. Recorded; told when anything else about a call is new",
                incident.resource.id
            ),
        ))
    }
}
