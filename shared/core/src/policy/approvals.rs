//! Who may approve a decision that waits for a person, and how many of them it takes.
//!
//! Two ways to give a verdict: the one-time links of the alert email (whoever holds one), and
//! as a named IAM principal through the stack's `ApproverUrl` (a function URL with IAM
//! authentication: Lambda itself tells the function who signed the request). The policy names
//! the principals whose verdict counts, how many distinct ones an approval needs, and whether
//! the links may still approve.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Approvals {
    /// IAM roles and users whose verdict counts when given as themselves: ARNs, each matched
    /// exactly or, ending in `*`, as a prefix. A session of an assumed role counts as its role
    /// (`arn:aws:sts::111122223333:assumed-role/Approver/alice` is
    /// `arn:aws:iam::111122223333:role/Approver`); paths are left out of both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvers: Vec<String>,
    /// Distinct named approvers an approval needs before the action is carried out. One
    /// denial by a named approver denies.
    #[serde(default = "one")]
    pub required: u32,
    /// Whether the email's one-time links may approve. `false` (or `required` above 1): only
    /// named approvers can, and a link can only deny.
    #[serde(default = "yes")]
    pub links: bool,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

impl Default for Approvals {
    fn default() -> Self {
        Approvals {
            approvers: Vec::new(),
            required: 1,
            links: true,
        }
    }
}

impl Approvals {
    /// Whether an approval may come from a link alone.
    pub fn links_approve(&self) -> bool {
        self.links && self.required <= 1
    }

    /// Whether `principal` (as [`principal`] gives it) is a named approver.
    pub fn names(&self, principal: &str) -> bool {
        self.approvers.iter().any(|pattern| {
            let pattern = normalise(pattern);
            match pattern.strip_suffix('*') {
                Some(prefix) => principal.starts_with(prefix),
                None => principal == pattern,
            }
        })
    }

    /// What is wrong with these settings, if anything.
    pub fn invalid(&self) -> Option<String> {
        if self.required == 0 {
            return Some("approvals.required must be at least 1".into());
        }
        if !self.links_approve() && self.approvers.is_empty() {
            return Some(
                "approvals: without links (or with more than one required) the policy must name approvers, or nothing could ever be approved".into(),
            );
        }
        if self
            .approvers
            .iter()
            .any(|a| a.trim().is_empty() || a == "*")
        {
            return Some(
                "approvals.approvers: an empty or bare `*` entry would name everyone".into(),
            );
        }
        None
    }
}

/// The principal an IAM caller ARN stands for, or `None` when it is not a role, an assumed
/// role's session or a user: `arn:<partition>:iam::<account>:role/<name>` or `.../user/<name>`.
pub fn principal(caller_arn: &str) -> Option<String> {
    let parts: Vec<&str> = caller_arn.splitn(6, ':').collect();
    let [arn, partition, service, _, account, resource] = parts.as_slice() else {
        return None;
    };
    if *arn != "arn"
        || account.len() != 12
        || !account.chars().all(|c| c.is_ascii_digit())
        || partition.is_empty()
    {
        return None;
    }
    let (kind, name) = match (*service, resource.split('/').collect::<Vec<_>>().as_slice()) {
        ("sts", ["assumed-role", role, _session]) => ("role", *role),
        ("iam", ["role", .., name]) => ("role", *name),
        ("iam", ["user", .., name]) => ("user", *name),
        _ => return None,
    };
    if name.is_empty() || name.len() > 64 {
        return None;
    }
    Some(format!("arn:{partition}:iam::{account}:{kind}/{name}"))
}

/// A pattern as [`principal`] writes principals (its `*` kept).
fn normalise(pattern: &str) -> String {
    match pattern.strip_suffix('*') {
        Some(prefix) => format!("{prefix}*"),
        None => principal(pattern).unwrap_or_else(|| pattern.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(approvers: &[&str], caller: &str, named: bool) {
        let a = Approvals {
            approvers: approvers.iter().map(|s| (*s).to_owned()).collect(),
            ..Approvals::default()
        };
        let p = principal(caller);
        assert_eq!(
            p.as_deref().is_some_and(|p| a.names(p)),
            named,
            "{caller} against {approvers:?}"
        );
    }

    #[test]
    fn an_assumed_role_counts_as_its_role_and_nothing_else_matches() {
        let role = "arn:aws:iam::111122223333:role/Approver";
        check(
            &[role],
            "arn:aws:sts::111122223333:assumed-role/Approver/alice",
            true,
        );
        check(&[role], "arn:aws:iam::111122223333:role/Approver", true);
        check(
            &["arn:aws:iam::111122223333:role/ops/Approver"],
            "arn:aws:sts::111122223333:assumed-role/Approver/bob",
            true,
        );
        check(
            &[role],
            "arn:aws:sts::444455556666:assumed-role/Approver/alice",
            false,
        );
        check(
            &[role],
            "arn:aws:sts::111122223333:assumed-role/ApproverX/alice",
            false,
        );
        check(&[role], "arn:aws:iam::111122223333:user/Approver", false);
        check(
            &["arn:aws:iam::111122223333:user/sec-*"],
            "arn:aws:iam::111122223333:user/sec-carol",
            true,
        );
        check(
            &["arn:aws:iam::111122223333:user/sec-*"],
            "arn:aws:iam::111122223333:user/dev-dan",
            false,
        );
        check(
            &[role],
            "arn:aws:sts::111122223333:federated-user/Approver",
            false,
        );
        check(&[role], "not an arn", false);
        check(&[role], "arn:aws:iam::111122223333:root", false);
    }

    #[test]
    fn settings_that_could_never_approve_or_would_name_everyone_are_invalid() {
        assert_eq!(Approvals::default().invalid(), None);
        assert!(Approvals::default().links_approve());
        let none_named = Approvals {
            links: false,
            ..Approvals::default()
        };
        assert!(none_named.invalid().is_some());
        let two = Approvals {
            approvers: vec!["arn:aws:iam::111122223333:role/A".into()],
            required: 2,
            links: true,
        };
        assert_eq!(two.invalid(), None);
        assert!(!two.links_approve());
        for bad in ["*", " "] {
            let everyone = Approvals {
                approvers: vec![bad.into()],
                ..Approvals::default()
            };
            assert!(everyone.invalid().is_some(), "{bad:?}");
        }
        assert!(
            Approvals {
                required: 0,
                ..Approvals::default()
            }
            .invalid()
            .is_some()
        );
    }
}
