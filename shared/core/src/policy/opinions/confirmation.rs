//! A finding from the metric pull, told or acted on once a second pull finds it again.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Ask, Opinion, Verdict};
use crate::policy::from_pull;

/// A finding from the pulled metrics is acted on or told only when a pull within
/// `within_minutes` found the same thing on the same resource (`for: 10m`, as alarms do). The
/// other opinions that wait for confirmation (`corroboration`) wait this long too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Confirmation {
    pub enabled: bool,
    pub within_minutes: u32,
}

impl Default for Confirmation {
    fn default() -> Self {
        Confirmation {
            enabled: true,
            within_minutes: 12,
        }
    }
}

impl Confirmation {
    /// How long a finding waits for its second reading; `None` when nothing waits. With the
    /// minutes between scheduled pulls known, at least one schedule period and a fifth more
    /// (two minutes at least): a window shorter than the schedule would never see the next
    /// pull, and a pull's findings would never be told or acted on.
    pub fn window(&self, pull_minutes: Option<u32>) -> Option<chrono::Duration> {
        let next_pull = pull_minutes.map_or(0, |p| p + (p / 5).max(2));
        (self.enabled && self.within_minutes > 0).then(|| {
            chrono::Duration::minutes(i64::from(self.within_minutes.max(next_pull)))
        })
    }
}

impl Opinion for Confirmation {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn judge(&self, ask: &Ask<'_>) -> Verdict {
        if from_pull(ask.incident) {
            Verdict::Confirm(None)
        } else {
            Verdict::Agree
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(within: u32, pull: Option<u32>, expect: Option<i64>) {
        let c = Confirmation {
            enabled: true,
            within_minutes: within,
        };
        assert_eq!(
            c.window(pull).map(|w| w.num_minutes()),
            expect,
            "{within} {pull:?}"
        );
    }

    #[test]
    fn a_finding_waits_at_least_for_the_next_pull() {
        check(12, None, Some(12));
        check(12, Some(5), Some(12));
        check(12, Some(10), Some(12));
        check(12, Some(15), Some(18));
        check(12, Some(60), Some(72));
        check(0, Some(15), None);
        let off = Confirmation {
            enabled: false,
            within_minutes: 12,
        };
        assert_eq!(off.window(Some(15)), None);
    }
}
