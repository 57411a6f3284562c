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
    /// How long a finding waits for its second reading; `None` when nothing waits.
    pub fn window(&self) -> Option<chrono::Duration> {
        (self.enabled && self.within_minutes > 0)
            .then(|| chrono::Duration::minutes(i64::from(self.within_minutes)))
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
