//! A traffic surge on one instance that its group, read in the same pull, does not share.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict, within};
use crate::domain::{Code, FailureMode, Reason};
use crate::policy::led_by_telemetry;

/// A traffic surge read from one instance's metrics scales its group out only when at least
/// `min_group_share` of the group's instances read in the same pull show the surge: load
/// behind a load balancer reaches all of them, so a lone instance's burst is not the
/// service's surge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LoneSurge {
    pub enabled: bool,
    pub min_group_share: f64,
}

impl Default for LoneSurge {
    fn default() -> Self {
        LoneSurge {
            enabled: true,
            min_group_share: 0.5,
        }
    }
}

impl Opinion for LoneSurge {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), String> {
        within("min_group_share", self.min_group_share, 0.0..=1.0)
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        let incident = ask.incident;
        let share = self.min_group_share;
        if incident.threat.is_some()
            || incident.failure_mode != FailureMode::TrafficSurge
            || !led_by_telemetry(incident)
        {
            return Verdict::Agree;
        }
        let Some(group) = incident.resource.group.as_ref() else {
            return Verdict::Agree;
        };
        let (read, surging) = ask.readings.peers.of(group.as_str());
        if read < 2 || surging as f64 >= share * read as f64 {
            return Verdict::Agree;
        }
        Verdict::Record(Reason::new(
            Code::Opinion(OpinionCode::LoneSurge),
            format!(
                "{surging} of the {read} instances of group {group} read in this pull show a traffic surge, below the share of {share:.2} that makes it the service's: recorded, not scaled"
            ),
        ))
    }
}
