//! Which CloudTrail events the rules need delivered: derived from the rules' own selections,
//! so the stack's EventBridge patterns can be checked against (and generated from) the pack.
//!
//! A rule is routed by the first of these its selections name (exact values only, in the
//! detections its condition uses, never in one named `filter*`):
//! - `eventName`: a read (Get, List, Describe, ...) by its name, any other call by its
//!   `eventSource` (every write of that service is delivered: the novelty model reads them too);
//! - else `userIdentity.type` (root's calls, read or write);
//! - else `errorCode` (denied calls, read or write).
//!
//! A rule that names none of these cannot be routed without delivering every event: it is
//! reported in [`Delivery::unrouted`], and the pack's tests fail on it.

use std::collections::BTreeSet;

use rsigma_parser::{Detection, SigmaRule, SigmaValue};
use serde::Serialize;

use crate::Pack;

/// The console sign-in source: delivered by its own pattern (`aws.signin`).
pub const SIGNIN: &str = "signin.amazonaws.com";

/// What the rules need delivered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Services whose write calls are delivered.
    pub write_sources: BTreeSet<String>,
    /// Read-only calls delivered by name.
    pub read_names: BTreeSet<String>,
    /// Principal types whose every call is delivered.
    pub identity_types: BTreeSet<String>,
    /// Error codes whose every call is delivered.
    pub error_codes: BTreeSet<String>,
    /// Whether console sign-ins are needed.
    pub sign_ins: bool,
    /// Rules that name nothing a pattern can route on.
    pub unrouted: Vec<String>,
}

/// Whether a call is read-only by CloudTrail's naming (EventBridge needs the rule state that
/// receives read-only management events for these).
pub fn is_read(event_name: &str) -> bool {
    const READ: [&str; 7] = [
        "Get", "List", "Describe", "BatchGet", "Lookup", "Search", "Head",
    ];
    // STS's Get*Token calls are recorded as changes, delivered with the writes.
    !matches!(event_name, "GetFederationToken" | "GetSessionToken")
        && READ.iter().any(|p| {
            event_name
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        })
}

fn exact_values(d: &Detection, field: &str, out: &mut BTreeSet<String>) {
    match d {
        Detection::AllOf(items) => {
            for item in items {
                if item.field.name.as_deref() == Some(field) && item.field.modifiers.is_empty() {
                    for v in &item.values {
                        if let SigmaValue::String(s) = v
                            && let Some(plain) = s.as_plain()
                        {
                            out.insert(plain);
                        }
                    }
                }
            }
        }
        Detection::AnyOf(subs) => {
            for s in subs {
                exact_values(s, field, out);
            }
        }
        _ => {}
    }
}

fn values(rule: &SigmaRule, field: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, d) in &rule.detection.named {
        if !name.starts_with("filter") {
            exact_values(d, field, &mut out);
        }
    }
    out
}

impl Delivery {
    /// What `pack`'s rules need.
    pub fn of(pack: &Pack) -> Delivery {
        let mut d = Delivery::default();
        for info in pack.rules() {
            let rule = info.sigma();
            let names = values(rule, "eventName");
            let sources = values(rule, "eventSource");
            let signin = sources.contains(SIGNIN) || names.contains("ConsoleLogin");
            d.sign_ins |= signin;
            let sources: BTreeSet<String> = sources.into_iter().filter(|s| s != SIGNIN).collect();
            let (reads, writes): (Vec<String>, Vec<String>) = names
                .into_iter()
                .filter(|n| n != "ConsoleLogin")
                .partition(|n| is_read(n));
            let routed = signin || !reads.is_empty();
            d.read_names.extend(reads);
            if !writes.is_empty() {
                if sources.is_empty() {
                    d.unrouted.push(format!(
                        "{}: names write calls ({}) but no eventSource",
                        info.name,
                        writes.join(", ")
                    ));
                }
                d.write_sources.extend(sources);
                continue;
            }
            if routed {
                continue;
            }
            let types = values(rule, "userIdentity.type");
            if !types.is_empty() {
                d.identity_types.extend(types);
                continue;
            }
            let errors = values(rule, "errorCode");
            if !errors.is_empty() {
                d.error_codes.extend(errors);
                continue;
            }
            d.unrouted.push(format!(
                "{}: names no eventName, userIdentity.type or errorCode to route on",
                info.name
            ));
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_told_by_their_verb() {
        for (name, read) in [
            ("GetSecretValue", true),
            ("ListBuckets", true),
            ("DescribeInstances", true),
            ("GetFederationToken", false),
            ("Getaway", false),
            ("PutBucketPolicy", false),
            ("HeadObject", true),
        ] {
            assert_eq!(is_read(name), read, "{name}");
        }
    }
}
