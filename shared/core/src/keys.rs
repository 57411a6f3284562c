//! Every key format of the state table, in one place. Items written by an earlier release are
//! found again only if these stay as they are: `tests/upgrade.rs` reads items written by the
//! previous release through them, and the tests below pin each format.
//!
//! A key is `<kind>#<parts>`: the kind says what the item is, the parts which one. The handlers
//! build the keys of the claims and counters they take; the state table adapter builds the
//! keys of the items it owns.

use std::fmt::Display;

use crate::domain::Tier;

/// An event's de-duplication claim.
pub fn event(event_id: &str) -> String {
    format!("event#{event_id}")
}

/// The cooldown claim of an action kind on a target.
pub fn cooldown(kind: &str, target: &str) -> String {
    format!("cooldown#{kind}#{target}")
}

/// The hourly quota counter of an action kind (`hour`: hours since the epoch).
pub fn rate(kind: &str, hour: i64) -> String {
    format!("rate#{kind}#{hour}")
}

/// The attempt-history key of a group: the actions that changed it (replacements, scale-outs).
/// A resource's own history is kept under [`attempts`] of its id.
pub fn group(group: impl Display) -> String {
    format!("group#{group}")
}

/// A key of a member account's target or group ([`cooldown`], [`group`]): the same key under
/// the account, so that a name in one account never shares a cooldown or a history with the
/// same name in another (a member account's `web` is not the stack's). The stack's own
/// account's keys stay as earlier releases wrote them.
pub fn in_account(account: Option<&str>, key: String) -> String {
    match account {
        None => key,
        Some(account) => format!("account#{account}#{key}"),
    }
}

/// The attempt-history item of a resource (or of a [`group`] key).
pub fn attempts(resource: &str) -> String {
    format!("attempts#{resource}")
}

/// What marks a decision told at a tier (wrapped by [`sent`] in the table).
pub fn told_decision(decision_id: &str, tier: Tier) -> String {
    format!("{decision_id}#{tier}")
}

/// A day's digest counts (`day`: `YYYY-MM-DD`, UTC).
pub fn digest(day: impl Display) -> String {
    format!("digest#{day}")
}

/// The claim that a day's digest was sent.
pub fn digest_sent(day: impl Display) -> String {
    format!("digest-sent#{day}")
}

/// The item that remembers an alert sent.
pub fn sent(key: &str) -> String {
    format!("sent#{key}")
}

/// The repeat claim: people told of a failure on a resource at a tier.
pub fn told(resource: &str, what: &str, tier: Tier) -> String {
    format!("told#{resource}#{what}#{tier}")
}

/// What a sighting is counted under (wrapped by [`sighting`] in the table).
pub fn sighting_of(resource: &str, what: &str) -> String {
    format!("{resource}#{what}")
}

/// The sighting item of a finding awaiting confirmation.
pub fn sighting(key: &str) -> String {
    format!("sighting#{key}")
}

/// An approval link's single-use claim.
pub fn approval_link(nonce: &str) -> String {
    format!("approval-link#{nonce}")
}

/// The one-verdict-per-decision claim.
pub fn approval_decided(decision_id: &str) -> String {
    format!("approval-decided#{decision_id}")
}

/// One named approver's verdict on a decision (a claim: one verdict per approver).
pub fn approval_vote(decision_id: &str, principal: &str) -> String {
    format!("approval-vote#{decision_id}#{principal}")
}

/// How many distinct named approvers approved a decision (a counter).
pub fn approval_votes(decision_id: &str) -> String {
    format!("approval-votes#{decision_id}")
}

/// The counter of verdicts confirmed in one minute (`minute`: minutes since the epoch), through
/// links and by named approvers: the global rate limit on approvals.
pub fn approval_rate(minute: i64) -> String {
    format!("approval-rate#{minute}")
}

/// The claim that a decision's action was carried out: a retried `remediate` never repeats it.
pub fn acted(decision_id: &str) -> String {
    format!("acted#{decision_id}")
}

/// A decision waiting for approval.
pub fn pending_approval(decision_id: &str) -> String {
    format!("approval#{decision_id}")
}

/// The conversation people are told in about a principal or a scope
/// ([`crate::conversation::about`]).
pub fn conversation(about: &str) -> String {
    format!("conversation#{about}")
}

/// A decision whose action can be undone, kept for a named approver's undo.
pub fn undoable(decision_id: &str) -> String {
    format!("undo#{decision_id}")
}

/// The identity a principal's history is kept under: the role, not the session. An assumed
/// role's ARN ends with a session name its caller chooses (`.../assumed-role/<role>/<session>`);
/// keyed by the whole ARN, a fresh session name each time would never leave warm-up. (Also for
/// a role session's principal id, `<role id>:<session>`, when the record has no ARN.)
pub fn history_key(principal: &str) -> &str {
    // Without an ARN, a role session's principal id is `<role id>:<session name>`.
    if principal.starts_with("AROA")
        && let Some((role, _)) = principal.split_once(':')
    {
        return role;
    }
    match principal.split_once(":assumed-role/") {
        Some((_, rest)) => match rest.split_once('/') {
            Some((role, _)) => &principal[..principal.len() - rest.len() + role.len()],
            None => principal,
        },
        None => principal,
    }
}

/// A principal's history (identity features), under its [`history_key`].
pub fn principal(principal: &str) -> String {
    format!("principal#{principal}")
}

/// A pipeline's deployment freeze.
pub fn freeze(pipeline: &str) -> String {
    format!("freeze#{pipeline}")
}

/// A target's last deploy.
pub fn deploy(target: &str) -> String {
    format!("deploy#{target}")
}

/// An incident recorded on a target for the gate.
pub fn incident(incident_id: &str) -> String {
    format!("incident#{incident_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_are_kept_per_role_not_per_session() {
        for (arn, key) in [
            (
                "arn:aws:sts::123456789012:assumed-role/deploy/i-0abc",
                "arn:aws:sts::123456789012:assumed-role/deploy",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/deploy/attacker-chosen-name-42",
                "arn:aws:sts::123456789012:assumed-role/deploy",
            ),
            (
                "arn:aws:iam::123456789012:user/alice",
                "arn:aws:iam::123456789012:user/alice",
            ),
            (
                "arn:aws:sts::123456789012:assumed-role/deploy",
                "arn:aws:sts::123456789012:assumed-role/deploy",
            ),
            ("AROAEXAMPLEID:attacker-chosen", "AROAEXAMPLEID"),
            ("AIDAEXAMPLEID", "AIDAEXAMPLEID"),
        ] {
            assert_eq!(history_key(arn), key, "{arn}");
        }
    }

    #[test]
    fn formats_are_those_earlier_releases_wrote() {
        let pinned = [
            (event("e-1"), "event#e-1"),
            (undoable("d-1"), "undo#d-1"),
            (conversation("scope:web"), "conversation#scope:web"),
            (digest("2026-12-01"), "digest#2026-12-01"),
            (digest_sent("2026-12-01"), "digest-sent#2026-12-01"),
            (approval_rate(29_000_000), "approval-rate#29000000"),
            (acted("inc-1:scale_out"), "acted#inc-1:scale_out"),
            (
                cooldown("restart-service", "i-1"),
                "cooldown#restart-service#i-1",
            ),
            (rate("scale-out", 491_000), "rate#scale-out#491000"),
            (group("web"), "group#web"),
            (in_account(None, group("web")), "group#web"),
            (
                in_account(Some("222222222222"), group("web")),
                "account#222222222222#group#web",
            ),
            (
                in_account(Some("222222222222"), cooldown("scale_out", "web")),
                "account#222222222222#cooldown#scale_out#web",
            ),
            (attempts("group#web"), "attempts#group#web"),
            (told_decision("d-1", Tier::Approval), "d-1#approval"),
            (sent("d-1#approval"), "sent#d-1#approval"),
            (
                told("i-1", "disk_filling", Tier::Escalate),
                "told#i-1#disk_filling#escalate",
            ),
            (sighting_of("i-1", "memory_leak"), "i-1#memory_leak"),
            (sighting("i-1#memory_leak"), "sighting#i-1#memory_leak"),
            (approval_link("n"), "approval-link#n"),
            (approval_decided("d-1"), "approval-decided#d-1"),
            (
                approval_vote("d-1", "arn:aws:iam::111122223333:role/A"),
                "approval-vote#d-1#arn:aws:iam::111122223333:role/A",
            ),
            (approval_votes("d-1"), "approval-votes#d-1"),
            (pending_approval("d-1"), "approval#d-1"),
            (
                principal("arn:aws:iam::1:user/a"),
                "principal#arn:aws:iam::1:user/a",
            ),
            (freeze("p"), "freeze#p"),
            (deploy("p/Prod"), "deploy#p/Prod"),
            (incident("inc-1"), "incident#inc-1"),
        ];
        for (key, text) in pinned {
            assert_eq!(key, text);
        }
    }
}
