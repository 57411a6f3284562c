//! The safety limits: kill switch, protected tag, maintenance windows, loop breaker and blast
//! radius, applied to a draft with the facts the handler read for it. Pure. The limits that
//! need an atomic write (cooldown, hourly rate, de-duplication) are claims the handler takes.

use crate::domain::Code;
use chrono::{DateTime, Datelike, Timelike, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Policy;
use crate::domain::{Action, Attempt, Decision, GroupCapacity, Incident, Mode, Reason, Tier};

/// Safety limits. Each is on unless set otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The same action on the same resource at most once per this many minutes.
    pub cooldown_minutes: u32,
    /// At most this many actions of one kind per clock hour, account-wide.
    #[serde(default = "default_rate")]
    pub max_actions_per_hour: u32,
    /// Never act on more than this share of a group's InService instances at once.
    pub max_group_share: f64,
    /// Never take a group below this many InService instances.
    pub min_in_service: u32,
    /// Resources whose tags carry this key with the value `true` are never acted on.
    #[serde(default = "default_protect_tag")]
    pub protect_tag: String,
    /// Windows (UTC) in which automated actions are held: planned work is expected to alarm.
    #[serde(default)]
    pub maintenance_windows: Vec<MaintenanceWindow>,
    #[serde(default)]
    pub loop_breaker: LoopBreaker,
}

fn default_rate() -> u32 {
    10
}

fn default_protect_tag() -> String {
    "vigil:protect".to_owned()
}

/// A weekly window, in UTC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    /// Days the window opens on: mon, tue, wed, thu, fri, sat, sun.
    pub days: Vec<Weekday>,
    /// `HH:MM`, UTC.
    pub start: String,
    /// `HH:MM`, UTC; before `start` means the window runs past midnight.
    pub end: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

/// Stops and escalates after repeated actions on one resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoopBreaker {
    /// Actions on one resource within the window before Vigil stops acting on it.
    pub max_attempts: u32,
    pub window_minutes: u32,
}

impl Default for LoopBreaker {
    fn default() -> Self {
        LoopBreaker {
            max_attempts: 3,
            window_minutes: 120,
        }
    }
}

/// Facts about the world that the limits need, gathered by the handler through ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The runtime kill switch (SSM parameter) is engaged, or could not be read.
    pub kill_switch: bool,
    /// The capacity of the group the action touches, when it touches one.
    pub group: Option<GroupCapacity>,
    /// Earlier actions on the incident's resource, newest last.
    pub attempts: Vec<Attempt>,
}

impl Weekday {
    fn of(t: DateTime<Utc>) -> Weekday {
        match t.weekday() {
            chrono::Weekday::Mon => Weekday::Mon,
            chrono::Weekday::Tue => Weekday::Tue,
            chrono::Weekday::Wed => Weekday::Wed,
            chrono::Weekday::Thu => Weekday::Thu,
            chrono::Weekday::Fri => Weekday::Fri,
            chrono::Weekday::Sat => Weekday::Sat,
            chrono::Weekday::Sun => Weekday::Sun,
        }
    }

    fn before(self) -> Weekday {
        match self {
            Weekday::Mon => Weekday::Sun,
            Weekday::Tue => Weekday::Mon,
            Weekday::Wed => Weekday::Tue,
            Weekday::Thu => Weekday::Wed,
            Weekday::Fri => Weekday::Thu,
            Weekday::Sat => Weekday::Fri,
            Weekday::Sun => Weekday::Sat,
        }
    }
}

pub(super) fn minutes(hhmm: &str) -> Option<u32> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && hhmm.len() == 5).then_some(h * 60 + m)
}

impl MaintenanceWindow {
    /// Whether `t` falls in the window.
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        let (Some(start), Some(end)) = (minutes(&self.start), minutes(&self.end)) else {
            return false;
        };
        let now = t.hour() * 60 + t.minute();
        let today = Weekday::of(t);
        if start <= end {
            self.days.contains(&today) && now >= start && now < end
        } else {
            // Past midnight: opened today and still before midnight, or opened yesterday.
            (self.days.contains(&today) && now >= start)
                || (self.days.contains(&today.before()) && now < end)
        }
    }
}

impl Policy {
    /// Applies the safety limits to a proposal and produces the decision.
    pub fn decide(
        &self,
        incident: Incident,
        proposal: super::Proposal,
        facts: &Facts,
        now: DateTime<Utc>,
    ) -> Decision {
        let super::Proposal {
            tier,
            action,
            mode,
            reasons,
        } = proposal;
        let id = match &action {
            Some(a) => format!("{}:{}", incident.id, a.kind()),
            None => format!("{}:{}", incident.id, tier),
        };
        let mut decision = Decision {
            id,
            incident,
            tier,
            action,
            mode,
            reasons,
            decided_at: now,
        };
        if decision.action.is_none() {
            return decision;
        }
        let limits = &self.limits;

        if self.kill_switch || facts.kill_switch {
            return decision.hold(Reason::new(
                Code::KillSwitch,
                "engaged: no action is taken, people are told",
            ));
        }
        decision.reasons.push(Reason::new(Code::KillSwitch, "off"));

        let protected = decision
            .incident
            .resource
            .tags
            .get(&limits.protect_tag)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if protected {
            let why = format!(
                "{} is tagged {}=true: never acted on",
                decision.incident.resource, limits.protect_tag
            );
            return decision.hold(Reason::new(Code::Protected, why));
        }
        decision.reasons.push(Reason::new(
            Code::Protected,
            format!("not tagged {}=true", limits.protect_tag),
        ));

        if let Some(w) = limits.maintenance_windows.iter().find(|w| w.contains(now)) {
            return decision.shelve(Reason::new(
                Code::Maintenance,
                format!(
                    "maintenance window {}-{} UTC is open: recorded only",
                    w.start, w.end
                ),
            ));
        }
        decision.reasons.push(Reason::new(
            Code::Maintenance,
            format!(
                "no window open ({} configured)",
                limits.maintenance_windows.len()
            ),
        ));

        let since = now - self.loop_window();
        let recent = facts.attempts.iter().filter(|a| a.at >= since).count();
        let max = limits.loop_breaker.max_attempts as usize;
        if recent >= max {
            let why = format!(
                "{recent} actions on {} in the last {} minutes (limit {max}): stopping, a person must look",
                decision.incident.resource, limits.loop_breaker.window_minutes
            );
            return decision.hold(Reason::new(Code::LoopBreaker, why));
        }
        decision.reasons.push(Reason::new(
            Code::LoopBreaker,
            format!(
                "{recent}/{max} actions in the last {} minutes",
                limits.loop_breaker.window_minutes
            ),
        ));

        if let Some(Action::ScaleOut { group, by }) = &decision.action {
            let Some(cap) = &facts.group else {
                return decision.hold(Reason::new(
                    Code::BlastRadius,
                    "the group's capacity is unknown, so the scale-out cannot be bounded",
                ));
            };
            if cap.desired >= cap.max_size {
                let msg = format!(
                    "group {group} is at its maximum of {} instances: it cannot scale out",
                    cap.max_size
                );
                return decision.hold(Reason::new(Code::BlastRadius, msg));
            }
            decision.reasons.push(Reason::new(
                Code::BlastRadius,
                format!(
                    "group {group}: desired {} -> at most {} (maximum {})",
                    cap.desired,
                    (cap.desired + by).min(cap.max_size),
                    cap.max_size
                ),
            ));
        }
        if let Some(Action::ScaleIn { group, by }) = &decision.action {
            let Some(cap) = &facts.group else {
                return decision.hold(Reason::new(
                    Code::BlastRadius,
                    "the group's capacity is unknown, so the scale-in cannot be bounded",
                ));
            };
            let floor = cap.min_size.max(limits.min_in_service);
            if cap.desired <= floor {
                let msg = format!(
                    "group {group} wants {} instances, not above its floor of {floor} (its minimum, or the policy's min_in_service): it cannot scale in",
                    cap.desired
                );
                return decision.hold(Reason::new(Code::BlastRadius, msg));
            }
            decision.reasons.push(Reason::new(
                Code::BlastRadius,
                format!(
                    "group {group}: desired {} -> at least {} (floor {floor})",
                    cap.desired,
                    cap.desired.saturating_sub(*by).max(floor),
                ),
            ));
        }
        // Every action that takes an instance out of service: a replacement, a detach, and a
        // quarantine of an instance in a group.
        let taken_out = match &decision.action {
            Some(Action::QuarantineInstance { .. }) => decision.incident.resource.group.clone(),
            Some(a) => a.removes_instance().cloned(),
            None => None,
        };
        if let Some(group) = taken_out {
            let Some(cap) = &facts.group else {
                return decision.hold(Reason::new(
                    Code::BlastRadius,
                    "the group's capacity is unknown, so the blast radius cannot be checked",
                ));
            };
            let after = cap.in_service.saturating_sub(1);
            let share = if cap.in_service == 0 {
                1.0
            } else {
                1.0 / f64::from(cap.in_service)
            };
            if after < limits.min_in_service {
                let msg = format!(
                    "group {group} has {} InService instance(s); replacing one would leave {after}, below the minimum of {}",
                    cap.in_service, limits.min_in_service
                );
                return decision.hold(Reason::new(Code::BlastRadius, msg));
            }
            if share > limits.max_group_share {
                let msg = format!(
                    "replacing 1 of {} InService instances in group {group} is {:.0}% of it, above the {:.0}% limit",
                    cap.in_service,
                    share * 100.0,
                    limits.max_group_share * 100.0
                );
                return decision.hold(Reason::new(Code::BlastRadius, msg));
            }
            decision.reasons.push(Reason::new(
                Code::BlastRadius,
                format!(
                    "group {group}: {} InService, {after} left during replacement (minimum {})",
                    cap.in_service, limits.min_in_service
                ),
            ));
        }
        if decision.mode == Mode::DryRun {
            decision.reasons.push(Reason::new(
                Code::DryRun,
                "dry-run: the action is recorded and reported, not carried out",
            ));
        }
        decision
    }

    /// A decision a person approved, decided again now: proposed as a heal under the policy in
    /// force (its Mode included) and put through every limit with facts read now, as if the
    /// rules had proposed it. The approval's reason comes first among the new reasons; the
    /// earlier reasons are kept before it.
    pub fn reconsider(
        &self,
        pending: Decision,
        approval: Reason,
        facts: &Facts,
        now: DateTime<Utc>,
    ) -> Decision {
        let Decision {
            id,
            incident,
            action,
            mut reasons,
            ..
        } = pending;
        reasons.push(approval);
        let proposal = super::Proposal {
            tier: Tier::AutoHeal,
            action,
            mode: self.mode,
            reasons,
        };
        let mut decision = self.decide(incident, proposal, facts, now);
        // The same decision: its id is the one the person was shown.
        decision.id = id;
        decision
    }
}

/// The ways a step after the rules changes a decision's tier: a limit holds, records or
/// shelves it. Nothing else sets it after the draft, except a person's approval, which goes
/// through [`Policy::reconsider`] and so through every limit again.
impl Decision {
    /// Withholds the decision's action: people are told instead, with the reason.
    pub fn hold(mut self, reason: Reason) -> Decision {
        self.tier = Tier::Escalate;
        self.reasons.push(reason);
        self
    }

    /// Records the finding only: no one is told and nothing is done.
    pub fn record(mut self, reason: Reason) -> Decision {
        self.tier = Tier::Observe;
        self.action = None;
        self.reasons.push(reason);
        self
    }

    /// Records the decision with the action it would have taken, which is not taken (a
    /// maintenance window, an event already handled).
    pub fn shelve(mut self, reason: Reason) -> Decision {
        self.tier = Tier::Observe;
        self.reasons.push(reason);
        self
    }
}
