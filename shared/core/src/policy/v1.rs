//! Version 1 of the policy format, read and migrated to the current one. In version 1 the
//! second opinions were flat fields of `tiers`, each turned off by a 0 (or `false`); each is
//! now a section of `opinions` with `enabled` and its parameters. A version-1 override keeps
//! working unchanged; `vigil policy migrate FILE` writes it in the current format.

use serde::Deserialize;

use super::opinions::{
    Opinions, certain_trend::CertainTrend, confirmation::Confirmation,
    corroboration::Corroboration, familiar_reads::FamiliarReads, horizon::Horizon,
    lone_surge::LoneSurge, model_confidence::ModelConfidence, repeat::Repeat,
    second_look::SecondLook, settling::Settling,
};
use super::{Limits, Policy, Rule, Tiers, VERSION};
use crate::domain::{FailureMode, Mode};

/// A version-1 policy document.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyV1 {
    #[allow(dead_code)]
    version: u32,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    kill_switch: bool,
    limits: Limits,
    #[serde(default)]
    tiers: TiersV1,
    rules: Vec<Rule>,
    #[serde(default)]
    gate: crate::gate::GatePolicy,
}

impl PolicyV1 {
    /// The same policy in the current format: every opinion a 0 turned off is disabled.
    // Today every opinion is one version 1 knew; the update is for those added later.
    #[allow(clippy::needless_update)]
    pub(super) fn migrate(self) -> Policy {
        let t = self.tiers;
        Policy {
            version: VERSION,
            mode: self.mode,
            kill_switch: self.kill_switch,
            limits: self.limits,
            tiers: Tiers {
                auto_heal_min_confidence: t.auto_heal_min_confidence,
                approval_min_confidence: t.approval_min_confidence,
            },
            opinions: Opinions {
                second_look: SecondLook {
                    enabled: t.alarm_overruled_at > 0.0,
                    normal_at: t.alarm_overruled_at,
                    max_breach: t.alarm_overrule_max_breach,
                },
                familiar_reads: FamiliarReads {
                    enabled: t.record_familiar_reads,
                },
                model_confidence: ModelConfidence {
                    enabled: true,
                    min_confidence: t.escalate_min_confidence,
                },
                certain_trend: CertainTrend {
                    enabled: t.trend_min_t > 0.0,
                    min_t: t.trend_min_t,
                },
                horizon: Horizon {
                    enabled: true,
                    memory_hours: t.memory_horizon_hours,
                    disk_hours: t.disk_horizon_hours,
                },
                lone_surge: LoneSurge {
                    enabled: t.surge_min_group_share > 0.0,
                    min_group_share: t.surge_min_group_share,
                },
                settling: Settling {
                    enabled: t.settle_minutes > 0,
                    minutes: t.settle_minutes,
                },
                corroboration: Corroboration {
                    enabled: t.alarm_corroborated_at > 0.0,
                    corroborated_at: t.alarm_corroborated_at,
                    failures: t.alarm_corroborate,
                },
                confirmation: Confirmation {
                    enabled: t.confirm_within_minutes > 0,
                    within_minutes: t.confirm_within_minutes,
                },
                repeat: Repeat {
                    enabled: t.repeat_minutes > 0,
                    minutes: t.repeat_minutes,
                },
                // Opinions added after version 1 take their defaults, as in a file that leaves
                // them out: adding one never touches this migration.
                ..Opinions::default()
            },
            rules: self.rules,
            gate: self.gate,
            deployments: Vec::new(),
            suppressions: Vec::new(),
            approvals: Default::default(),
            id: String::new(),
            member_accounts: Vec::new(),
            pull_minutes: None,
        }
    }
}

/// Version 1's `tiers`: the two tier thresholds and, as flat fields, what are now the
/// second opinions (each turned off by 0).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiersV1 {
    /// Below this confidence an auto-heal rule asks for approval instead.
    pub auto_heal_min_confidence: f64,
    /// Below this confidence nothing is proposed: people are told.
    pub approval_min_confidence: f64,
    /// A failure named by a model from telemetry (not an alarm people set) below this
    /// confidence is recorded, not sent to people: alert fatigue is a safety problem too.
    /// (Threats are named only above the threat classifier's own calibrated threshold.)
    #[serde(default = "default_escalate_min_confidence")]
    pub escalate_min_confidence: f64,
    /// A finding from the pulled metrics is acted on or told only when a pull within this
    /// many minutes found the same thing on the same resource (`for: 10m`, as alarms do);
    /// 0 turns confirmation off.
    #[serde(default = "default_confirm_within_minutes")]
    pub confirm_within_minutes: u32,
    /// A memory leak named from telemetry whose projected exhaustion is further away than
    /// this many hours is recorded, not told or acted on: people are paged on time-to-full,
    /// not on a trend, and the next pulls keep projecting it. 0 turns it off.
    #[serde(default = "default_memory_horizon_hours")]
    pub memory_horizon_hours: f64,
    /// The same for a filling disk: longer, as freeing or growing a volume takes longer than
    /// restarting a leaking service.
    #[serde(default = "default_disk_horizon_hours")]
    pub disk_horizon_hours: f64,
    /// An alarm gets a second look: the instance's own metrics, read by the failure-mode
    /// classifier when the alarm fires. An alarm at most `alarm_overrule_max_breach` past its
    /// threshold (0.1: 10%) whose instance reads as normal with at least this confidence is
    /// recorded, not paged. Failed status checks are never overruled. 0 turns it off.
    #[serde(default = "default_alarm_overruled_at")]
    pub alarm_overruled_at: f64,
    #[serde(default = "default_alarm_overrule_max_breach")]
    pub alarm_overrule_max_breach: f64,
    /// An alarm on one of `alarm_corroborate`'s failures is acted on at once when the second
    /// look corroborates it: the instance's own metrics name the same failure with at least
    /// this confidence. One the second look does not corroborate (read as normal, as something
    /// else, or unsure) waits as a pull's finding does, until a pull within
    /// `confirm_within_minutes` finds the same again. An alarm whose instance could not be read
    /// goes on alone. 0 turns it off.
    #[serde(default = "default_alarm_corroborated_at")]
    pub alarm_corroborated_at: f64,
    /// A memory leak or a filling disk named from the last hour of telemetry is told or acted
    /// on only when the metric's six-hour window holds a trend at least this many standard
    /// errors from flat (`trend_t`, the certainty the time-to-full projection asks for): noise
    /// on a full disk or busy memory can look like a fill within one hour. Without a six-hour
    /// window (a new instance), the hour's reading goes on. 0 turns it off.
    #[serde(default = "default_trend_min_t")]
    pub trend_min_t: f64,
    /// The failures whose alarms need corroborating: those whose alarmed level load alone can
    /// reach (a CPU alarm on a busy instance). A memory or disk alarm near exhaustion, or a
    /// failed status check, is acted on whatever the cause.
    #[serde(default = "default_alarm_corroborate")]
    pub alarm_corroborate: Vec<FailureMode>,
    /// After Vigil acts on an instance or its group, the instance's metrics jump (a restart
    /// drops the CPU, a scale-out the traffic) and the classifier, which compares the last
    /// minutes with the hour before, can read the jump as a new failure. For this many
    /// minutes after an action, a finding read from telemetry that the action does not
    /// address (by the policy's own rules) is recorded as the action settling; one it
    /// addresses (the action did not work) goes on. 0 turns it off.
    #[serde(default = "default_settle_minutes")]
    pub settle_minutes: u32,
    /// A traffic surge read from one instance's metrics scales its group out only when at
    /// least this share of the group's instances read in the same pull show the surge: load
    /// behind a load balancer reaches all of them, so a lone instance's burst is not the
    /// service's surge. 0 turns it off.
    #[serde(default = "default_surge_min_group_share")]
    pub surge_min_group_share: f64,
    /// People told of a failure on a resource (escalated, asked to approve, or told an action
    /// was held) are not told of the same failure on the same resource at the same tier again
    /// for this many minutes: the finding is recorded, and a persisting condition is repeated
    /// once per period, as Alertmanager's `repeat_interval` does. Actions are not affected
    /// (cooldowns and the loop breaker limit those), nor are threats. 0 turns it off.
    #[serde(default = "default_repeat_minutes")]
    pub repeat_minutes: u32,
    /// Reconnaissance named by the threat classifier alone, on calls each of which the
    /// principal makes routinely (a known read: its API, user agent, region and hour are
    /// familiar, nothing denied, failed or sensitive) and whose only novelty is the network, is recorded,
    /// not told: that is what travel, a VPN or a new instance behind a role looks like. Anything
    /// else new about a call (an API, a tool, a region, a denial) is told as before.
    #[serde(default = "default_record_familiar_reads")]
    pub record_familiar_reads: bool,
}

fn default_record_familiar_reads() -> bool {
    true
}

fn default_repeat_minutes() -> u32 {
    240
}

fn default_alarm_corroborated_at() -> f64 {
    0.6
}

fn default_trend_min_t() -> f64 {
    crate::models::PROJECTION_MIN_T
}

fn default_alarm_corroborate() -> Vec<FailureMode> {
    vec![FailureMode::CpuRunaway]
}

fn default_settle_minutes() -> u32 {
    60
}

fn default_surge_min_group_share() -> f64 {
    0.5
}

fn default_alarm_overruled_at() -> f64 {
    0.8
}

fn default_alarm_overrule_max_breach() -> f64 {
    0.1
}

fn default_memory_horizon_hours() -> f64 {
    24.0
}

fn default_disk_horizon_hours() -> f64 {
    72.0
}

fn default_escalate_min_confidence() -> f64 {
    0.6
}

fn default_confirm_within_minutes() -> u32 {
    12
}

impl Default for TiersV1 {
    fn default() -> Self {
        TiersV1 {
            auto_heal_min_confidence: 0.8,
            approval_min_confidence: 0.5,
            escalate_min_confidence: default_escalate_min_confidence(),
            confirm_within_minutes: default_confirm_within_minutes(),
            memory_horizon_hours: default_memory_horizon_hours(),
            disk_horizon_hours: default_disk_horizon_hours(),
            alarm_overruled_at: default_alarm_overruled_at(),
            alarm_overrule_max_breach: default_alarm_overrule_max_breach(),
            alarm_corroborated_at: default_alarm_corroborated_at(),
            alarm_corroborate: default_alarm_corroborate(),
            trend_min_t: default_trend_min_t(),
            settle_minutes: default_settle_minutes(),
            surge_min_group_share: default_surge_min_group_share(),
            repeat_minutes: default_repeat_minutes(),
            record_familiar_reads: default_record_familiar_reads(),
        }
    }
}
