//! Explicit policy: which incidents Vigil may act on, how, and within which limits. Pure.
//!
//! A decision is made in two steps so that the handler can gather facts through ports in
//! between: [`Policy::propose`] matches the incident against the rules, then [`Policy::decide`]
//! applies the safety limits (kill switch, blast radius) to the proposal. The cooldown, which
//! needs an atomic write, is applied by the handler with [`Decision::hold`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Action, Decision, FailureMode, GroupCapacity, Incident, Mode, Reason, Tier};

/// The policy bundled into the binary (`infra/policy/default.yaml`).
pub const DEFAULT_POLICY_YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../infra/policy/default.yaml"
));

/// Largest policy document accepted.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy is {size} bytes, above the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("policy is not valid YAML for Vigil's policy format")]
    Parse(#[source] serde_norway::Error),
    #[error("policy is invalid: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub kill_switch: bool,
    pub limits: Limits,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    pub cooldown_minutes: u32,
    pub max_group_share: f64,
    pub min_in_service: u32,
}

/// The kind of action a rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    None,
    ReplaceInstance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub failure_modes: Vec<FailureMode>,
    #[serde(default)]
    pub min_confidence: f64,
    pub action: ActionKind,
    pub tier: Tier,
    /// Shadow this rule even when the policy enforces.
    #[serde(default)]
    pub dry_run: bool,
}

/// What the rules propose for an incident, before the safety limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub tier: Tier,
    pub action: Option<Action>,
    pub mode: Mode,
    pub reasons: Vec<Reason>,
}

/// Facts about the world that the limits need, gathered by the handler through ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The runtime kill switch (SSM parameter) is engaged, or could not be read.
    pub kill_switch: bool,
    /// The capacity of the group the action touches, when it touches one.
    pub group: Option<GroupCapacity>,
}

impl Policy {
    /// The bundled default policy.
    pub fn bundled() -> Result<Self, PolicyError> {
        Self::from_yaml(DEFAULT_POLICY_YAML)
    }

    /// Parses and validates a policy document.
    pub fn from_yaml(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                size: text.len(),
                max: MAX_POLICY_BYTES,
            });
        }
        let policy: Policy = serde_norway::from_str(text).map_err(PolicyError::Parse)?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let bad = |m: String| Err(PolicyError::Invalid(m));
        if self.version != 1 {
            return bad(format!(
                "version {} is not supported (expected 1)",
                self.version
            ));
        }
        let share = self.limits.max_group_share;
        if !(share > 0.0 && share <= 1.0) {
            return bad(format!("limits.max_group_share {share} must be in (0, 1]"));
        }
        for rule in &self.rules {
            if rule.name.trim().is_empty() {
                return bad("a rule has an empty name".into());
            }
            if !(0.0..=1.0).contains(&rule.min_confidence) {
                return bad(format!(
                    "rule {}: min_confidence {} must be in [0, 1]",
                    rule.name, rule.min_confidence
                ));
            }
            if rule.failure_modes.is_empty() {
                return bad(format!("rule {} names no failure mode", rule.name));
            }
            if rule.action != ActionKind::None
                && rule.tier != Tier::AutoHeal
                && rule.tier != Tier::Approval
            {
                return bad(format!(
                    "rule {}: an action needs tier auto-heal or approval, not {}",
                    rule.name, rule.tier
                ));
            }
        }
        Ok(())
    }

    /// Matches the incident against the rules (first match wins).
    pub fn propose(&self, incident: &Incident) -> Proposal {
        let mut reasons = vec![Reason::new(
            "score",
            format!(
                "{} scored {} with confidence {:.2} (severity {})",
                incident.resource, incident.failure_mode, incident.confidence, incident.severity
            ),
        )];
        if incident.failure_mode == FailureMode::Normal {
            reasons.push(Reason::new(
                "policy:normal",
                "no anomaly found: record only",
            ));
            return Proposal {
                tier: Tier::Observe,
                action: None,
                mode: self.mode,
                reasons,
            };
        }
        let rule = self.rules.iter().find(|r| {
            r.failure_modes.contains(&incident.failure_mode)
                && incident.confidence >= r.min_confidence
        });
        let Some(rule) = rule else {
            reasons.push(Reason::new(
                "policy:no-rule",
                format!(
                    "no rule acts on {} at confidence {:.2}: people are told, nothing is changed",
                    incident.failure_mode, incident.confidence
                ),
            ));
            return Proposal {
                tier: Tier::Escalate,
                action: None,
                mode: self.mode,
                reasons,
            };
        };
        let mode = if rule.dry_run {
            Mode::DryRun
        } else {
            self.mode
        };
        let code = format!("rule:{}", rule.name);
        let action = match rule.action {
            ActionKind::None => None,
            ActionKind::ReplaceInstance => {
                let instance = incident.resource.instance_id().ok().flatten();
                match (instance, incident.resource.group.clone()) {
                    (Some(instance), Some(group)) => {
                        Some(Action::ReplaceInstance { group, instance })
                    }
                    _ => {
                        reasons.push(Reason::new(
                            code.clone(),
                            format!(
                                "rule matched, but {} is not an instance in an Auto Scaling group: escalating",
                                incident.resource
                            ),
                        ));
                        return Proposal {
                            tier: Tier::Escalate,
                            action: None,
                            mode,
                            reasons,
                        };
                    }
                }
            }
        };
        reasons.push(Reason::new(
            code,
            format!(
                "{} with confidence {:.2} >= {:.2}: {}",
                incident.failure_mode,
                incident.confidence,
                rule.min_confidence,
                action
                    .as_ref()
                    .map_or_else(|| format!("tier {}", rule.tier), |a| a.to_string())
            ),
        ));
        Proposal {
            tier: rule.tier,
            action,
            mode,
            reasons,
        }
    }

    /// Applies the safety limits to a proposal and produces the decision.
    pub fn decide(
        &self,
        incident: Incident,
        proposal: Proposal,
        facts: &Facts,
        now: DateTime<Utc>,
    ) -> Decision {
        let Proposal {
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
        if self.kill_switch || facts.kill_switch {
            return decision.hold(Reason::new(
                "limit:kill-switch",
                "the kill switch is engaged: no action is taken, people are told",
            ));
        }
        if let (Some(Action::ReplaceInstance { group, .. }), Some(cap)) =
            (&decision.action, &facts.group)
        {
            let after = cap.in_service.saturating_sub(1);
            let share = if cap.in_service == 0 {
                1.0
            } else {
                1.0 / f64::from(cap.in_service)
            };
            if after < self.limits.min_in_service {
                let msg = format!(
                    "group {group} has {} InService instance(s); replacing one would leave {after}, below the minimum of {}",
                    cap.in_service, self.limits.min_in_service
                );
                return decision.hold(Reason::new("limit:blast-radius", msg));
            }
            if share > self.limits.max_group_share {
                let msg = format!(
                    "replacing 1 of {} InService instances in group {group} is {:.0}% of it, above the {:.0}% limit",
                    cap.in_service,
                    share * 100.0,
                    self.limits.max_group_share * 100.0
                );
                return decision.hold(Reason::new("limit:blast-radius", msg));
            }
            decision.reasons.push(Reason::new(
                "limit:blast-radius",
                format!(
                    "group {group}: {} InService, {after} left during replacement (minimum {})",
                    cap.in_service, self.limits.min_in_service
                ),
            ));
        } else if matches!(decision.action, Some(Action::ReplaceInstance { .. })) {
            return decision.hold(Reason::new(
                "limit:blast-radius",
                "the group's capacity is unknown, so the blast radius cannot be checked",
            ));
        }
        if decision.mode == Mode::DryRun {
            decision.reasons.push(Reason::new(
                "mode:dry-run",
                "dry-run: the action is recorded and reported, not carried out",
            ));
        }
        decision
    }

    /// The cooldown, as a duration.
    pub fn cooldown(&self) -> chrono::Duration {
        chrono::Duration::minutes(i64::from(self.limits.cooldown_minutes))
    }
}

impl Decision {
    /// Withholds the decision's action: people are told instead, with the reason.
    pub fn hold(mut self, reason: Reason) -> Decision {
        self.tier = Tier::Escalate;
        self.reasons.push(reason);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str, expect_err: Option<&str>) {
        match (Policy::from_yaml(yaml), expect_err) {
            (Ok(_), None) => {}
            (Err(e), Some(want)) => {
                let got = crate::error_chain(&e);
                assert!(got.contains(want), "{got:?} does not mention {want:?}");
            }
            (got, want) => panic!("{yaml}\nexpected {want:?}, got {got:?}"),
        }
    }

    const LIMITS: &str = "limits: {cooldown_minutes: 30, max_group_share: 0.5, min_in_service: 1}";

    #[test]
    fn bundled_policy_is_valid_and_safe_by_default() {
        let p = Policy::bundled().unwrap();
        assert_eq!(p.mode, Mode::DryRun);
        assert!(!p.kill_switch);
        assert!(p.limits.cooldown_minutes > 0);
    }

    #[test]
    fn invalid_policies_are_refused_with_a_reason() {
        check(&format!("version: 1\n{LIMITS}\nrules: []"), None);
        check(
            &format!("version: 2\n{LIMITS}\nrules: []"),
            Some("version 2"),
        );
        check(
            "version: 1\nlimits: {cooldown_minutes: 30, max_group_share: 1.5, min_in_service: 1}\nrules: []",
            Some("max_group_share"),
        );
        check(
            &format!("version: 1\n{LIMITS}\nrules: []\nsurprise: true"),
            Some("surprise"),
        );
        check(
            &format!(
                "version: 1\n{LIMITS}\nrules: [{{name: r, failure_modes: [cpu_runaway], action: replace_instance, tier: escalate}}]"
            ),
            Some("needs tier auto-heal or approval"),
        );
        check(
            &format!(
                "version: 1\n{LIMITS}\nrules: [{{name: r, failure_modes: [], action: none, tier: escalate}}]"
            ),
            Some("names no failure mode"),
        );
        check(
            &format!(
                "version: 1\n{LIMITS}\nrules: [{{name: r, failure_modes: [cpu_fire], action: none, tier: escalate}}]"
            ),
            Some("not valid YAML for Vigil's policy format"),
        );
        check(&"x".repeat(MAX_POLICY_BYTES + 1), Some("above the"));
    }
}
