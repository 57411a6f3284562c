//! A failure people were told of, told again only once a period has passed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, OpinionCode, Verdict};
use crate::domain::{Code, Decision, Reason, Tier};

/// People told of a failure on a resource (escalated, asked to approve, or told an action was
/// held) are not told of the same failure on the same resource at the same tier again for
/// `minutes`: the finding is recorded, and a persisting condition is repeated once per period,
/// as Alertmanager's `repeat_interval` does. Actions are not affected (cooldowns and the loop
/// breaker limit those), nor are threats (an intruder's calls are grouped by `remediate` per
/// act over 15 minutes only, so that another act is told at once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Repeat {
    pub enabled: bool,
    pub minutes: u32,
}

impl Default for Repeat {
    fn default() -> Self {
        Repeat {
            enabled: true,
            minutes: 240,
        }
    }
}

impl Repeat {
    /// The claim that people were told of a decision's failure, held for `minutes`:
    /// `told#<resource>#<failure>#<tier>`. `None` for a decision that tells no one, that acts,
    /// or that names a threat, or when repeats are not limited.
    pub fn told_key(&self, d: &Decision) -> Option<String> {
        (self.enabled
            && self.minutes > 0
            && d.tier != Tier::Observe
            && !d.acts()
            && d.incident.threat.is_none())
        .then(|| {
            crate::keys::told(&d.incident.resource.id, &d.incident.what(), d.tier)
        })
    }

    /// How long the claim is held.
    pub fn period(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.minutes))
    }

    /// Records a decision whose finding people were told of within `minutes`.
    pub fn repeated(&self, d: Decision) -> Decision {
        let reason = Reason::new(
            Code::Opinion(OpinionCode::Repeat),
            format!(
                "people were told of {} on {} at tier {} in the last {} minutes: recorded, told again once that has passed",
                d.incident.what(),
                d.incident.resource.id,
                d.tier,
                self.minutes
            ),
        );
        d.record(reason)
    }
}

impl Opinion for Repeat {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        if ask.incident.threat.is_none() && self.minutes > 0 {
            Verdict::OncePer(self.minutes)
        } else {
            Verdict::Agree
        }
    }
}
