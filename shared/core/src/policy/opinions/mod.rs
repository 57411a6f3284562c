//! Second opinions: checks that may put off a finding the rules would tell people about or act
//! on, because something else the handler read makes it doubtful (the instance's own metrics,
//! its group, Vigil's own recent actions, the trend behind a projection, an earlier telling).
//!
//! Every opinion has one shape: a module here, a section `opinions.<name>` in the policy with
//! `enabled` and its parameters, one reason code ([`OpinionCode`]), and a [`Verdict`] from
//! [`Opinion::judge`].
//! They are asked in the order of the list at the end of this file, and the most conservative
//! verdict wins: [`Verdict::Record`] (the first one given decides) over [`Verdict::Confirm`]
//! over [`Verdict::OncePer`] over [`Verdict::Agree`]. Adding an opinion is a new module and one
//! line in that list.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{GroupReadings, Rule};
use crate::domain::{Attempt, Incident, Reason};

/// What the handler read for an incident before the policy judges it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Readings {
    /// Earlier actions on the incident's resource within the loop breaker's window, oldest
    /// first.
    pub attempts: Vec<Attempt>,
    /// Earlier actions on the group of the incident's resource, when the policy asks for them
    /// ([`super::Policy::reads`]), over the window it names.
    pub group_attempts: Vec<Attempt>,
    /// The batch's reading of each group's instances.
    pub peers: GroupReadings,
}

/// What an opinion is asked about.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub incident: &'a Incident,
    pub readings: &'a Readings,
    /// The policy's rules (what Vigil's own actions address).
    pub rules: &'a [Rule],
    pub now: DateTime<Utc>,
}

/// What a second opinion says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Nothing to add.
    Agree,
    /// Record the finding only: tell no one, change nothing.
    Record(Reason),
    /// Tell or act only when a reading within `opinions.confirmation.within_minutes` finds the
    /// same again; the reason says why, when there is more to say than that.
    Confirm(Option<Reason>),
    /// Tell people of it at most once per this many minutes.
    OncePer(u32),
}

/// A second opinion.
pub trait Opinion {
    /// Whether the policy turns it on (`opinions.<name>.enabled`).
    fn enabled(&self) -> bool;
    /// Its parameters are usable; `Err` says which is not.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    /// Its verdict on a finding (asked only when it is enabled).
    fn judge(&self, ask: &Ask<'_>) -> Verdict;
}

/// A number of minutes, hours or a share: usable when finite and within `range`.
pub(crate) fn within(
    name: &str,
    v: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<(), String> {
    if v.is_finite() && range.contains(&v) {
        Ok(())
    } else {
        Err(format!(
            "{name} {v} must be within [{}, {}]",
            range.start(),
            range.end()
        ))
    }
}

/// The verdicts of every enabled opinion on one finding, combined.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Opinionated {
    /// The first opinion that records the finding, with its reason.
    pub record: Option<Reason>,
    /// The finding waits for a second reading; with the reasons given for waiting.
    pub confirm: Option<Vec<Reason>>,
    /// Tell people of it at most once per this many minutes.
    pub once_per: Option<u32>,
}

impl Opinions {
    /// Asks every enabled opinion, in order, and combines their verdicts: once one records the
    /// finding, nothing is more conservative, so the rest are not asked.
    pub fn judge(&self, ask: &Ask<'_>) -> Opinionated {
        let mut out = Opinionated::default();
        for (_, opinion) in self.all() {
            if !opinion.enabled() {
                continue;
            }
            match opinion.judge(ask) {
                Verdict::Agree => {}
                Verdict::Record(reason) => {
                    out.record = Some(reason);
                    return out;
                }
                Verdict::Confirm(reason) => out.confirm.get_or_insert_with(Vec::new).extend(reason),
                Verdict::OncePer(minutes) => {
                    out.once_per = Some(out.once_per.map_or(minutes, |m| m.max(minutes)));
                }
            }
        }
        out
    }

    /// Every enabled opinion's parameters are usable.
    pub fn validate(&self) -> Result<(), String> {
        for (name, opinion) in self.all() {
            opinion
                .validate()
                .map_err(|e| format!("opinions.{name}: {e}"))?;
        }
        Ok(())
    }
}

/// Declares the opinions: their modules, the policy's `opinions` section (one field per
/// opinion, each defaulting to its module's defaults) and the order they are asked in.
macro_rules! opinions {
    ($($name:ident: $config:ident => $code:literal),* $(,)?) => {
        $(pub mod $name;)*

        /// Each opinion's reason code, named as its config section's type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum OpinionCode {
            $($config,)*
        }

        impl OpinionCode {
            /// Every opinion's code, in the order they are asked.
            pub const ALL: &'static [OpinionCode] = &[$(OpinionCode::$config,)*];

            /// The code's text, as reasons carry it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(OpinionCode::$config => $code,)*
                }
            }

            /// The opinion whose code this text is.
            pub fn from_text(text: &str) -> Option<OpinionCode> {
                match text {
                    $($code => Some(OpinionCode::$config),)*
                    _ => None,
                }
            }
        }

        /// Second opinions on a finding, each on unless turned off, asked in this order.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct Opinions {
            $(
                #[serde(default)]
                pub $name: $name::$config,
            )*
        }

        impl Opinions {
            /// Every opinion with its section's name, in the order they are asked.
            pub fn all(&self) -> Vec<(&'static str, &dyn Opinion)> {
                vec![$((stringify!($name), &self.$name as &dyn Opinion)),*]
            }
        }
    };
}

// The order they are asked in. Those that record come first (the first decides), then those
// that wait for confirmation, then the repeat limit.
// A line is `section: ConfigType => "reason code"`.
opinions! {
    second_look: SecondLook => "policy:second-look",
    familiar_reads: FamiliarReads => "policy:familiar-reads",
    model_confidence: ModelConfidence => "policy:below-escalation",
    certain_trend: CertainTrend => "policy:uncertain-trend",
    steady_cpu: SteadyCpu => "policy:steady-cpu",
    horizon: Horizon => "policy:beyond-horizon",
    lone_surge: LoneSurge => "policy:lone-surge",
    settling: Settling => "policy:settling",
    corroboration: Corroboration => "policy:uncorroborated",
    confirmation: Confirmation => "confirm",
    repeat: Repeat => "policy:repeat",
}
