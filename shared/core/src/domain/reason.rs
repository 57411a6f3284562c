//! Why a decision is what it is: one [`Reason`] per check, rule or opinion that spoke, each with
//! a typed [`Code`]. A code's text (`limit:cooldown`, `rule:replace-on-cpu-runaway`) is what
//! emails, logs, the audit trail and the stage payloads carry; it is stable across releases, so
//! records written before a code became typed still read.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::policy::opinions::OpinionCode;

/// One reason behind a decision: which check or rule, and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: Code,
    pub message: String,
}

impl Reason {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Reason {
            code,
            message: message.into(),
        }
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)*) => {
        /// What produced a reason. `Rule` carries the policy rule's name; every other code is
        /// one fixed text.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
            /// A second opinion spoke (`policy::opinions`, whose list names each one's code).
            Opinion(OpinionCode),
            /// A policy rule matched: carries the whole text, `rule:<name>` ([`Code::rule`]).
            Rule(String),
        }

        impl Code {
            /// Every fixed code, in the order of this table.
            pub const FIXED: &'static [Code] = &[$(Code::$variant,)*];

            /// The code's text.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Code::$variant => $text,)*
                    Code::Opinion(o) => o.as_str(),
                    Code::Rule(name) => name,
                }
            }

            fn fixed(text: &str) -> Option<Code> {
                match text {
                    $($text => Some(Code::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

codes! {
    // What the policy read.
    /// The incident's score, severity and model.
    Score => "score",
    /// The features that drove the score.
    Features => "features",
    /// The policy in force.
    Policy => "policy",
    /// Nothing anomalous: record only.
    Normal => "policy:normal",
    /// A member account's finding: told, not acted on.
    MemberAccount => "policy:member-account",
    /// A threat no rule matched: a person is told.
    Threat => "policy:threat",
    /// No rule matched.
    NoRule => "policy:no-rule",
    /// The tier was lowered from the rule's (confidence, or an action that cannot be undone).
    Tier => "tier",
    /// The evidence is a finding an outsider can cause: a person approves the action.
    Outsider => "policy:outsider-causable",
    /// The policy override was refused; the last good policy stays in force.
    OverrideRefused => "policy:override-refused",
    /// A detection rule (Sigma) matched the event, or what its match means.
    Detection => "detection",
    /// An operator's suppression silenced a detection rule's match.
    Suppressed => "detection:suppressed",
    // The limits (`policy::limits` and the claims `decide` takes).
    /// The kill switch is engaged (or unreadable).
    KillSwitch => "limit:kill-switch",
    /// The resource carries the protect tag.
    Protected => "limit:protected",
    /// Inside a maintenance window.
    Maintenance => "limit:maintenance",
    /// Too many attempts on the resource recently.
    LoopBreaker => "limit:loop-breaker",
    /// The action would take too much of its group.
    BlastRadius => "limit:blast-radius",
    /// The resource was acted on within the cooldown.
    Cooldown => "limit:cooldown",
    /// The hourly quota of actions of a kind is used up.
    Rate => "limit:rate",
    /// The stack or the policy is in dry-run.
    DryRun => "mode:dry-run",
    // The pipeline.
    /// The event was already handled.
    Dedup => "dedup",
    /// The resource is recovering after an earlier action (or did not).
    Recovery => "recovery",
    /// A person approved or denied.
    Approval => "approval",
    /// A named approver asked for an earlier action to be undone.
    Undo => "undo",
    /// The target's deployments were frozen.
    GateFreeze => "gate:freeze",
}

impl Code {
    /// The code of the policy rule `name`.
    pub fn rule(name: &str) -> Code {
        Code::Rule(format!("rule:{name}"))
    }

    /// Whether a limit held or shelved the decision.
    pub fn is_limit(&self) -> bool {
        self.as_str().starts_with("limit:")
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is no reason code Vigil writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reason code `{0}`")]
pub struct UnknownCode(pub String);

impl FromStr for Code {
    type Err = UnknownCode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(code) = Code::fixed(text) {
            return Ok(code);
        }
        if let Some(opinion) = OpinionCode::from_text(text) {
            return Ok(Code::Opinion(opinion));
        }
        match text.strip_prefix("rule:") {
            Some(name) if !name.is_empty() => Ok(Code::Rule(text.to_owned())),
            _ => Err(UnknownCode(text.to_owned())),
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_text() {
        let opinions = OpinionCode::ALL.iter().map(|o| Code::Opinion(*o));
        for code in Code::FIXED
            .iter()
            .cloned()
            .chain(opinions)
            .chain([Code::rule("x")])
        {
            assert_eq!(code.as_str().parse::<Code>(), Ok(code.clone()));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), code);
        }
        assert!("limit:nonsense".parse::<Code>().is_err());
        assert!("rule:".parse::<Code>().is_err());
    }
}
