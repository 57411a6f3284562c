//! The daily digest: detection rules' matches that were recorded without telling anyone
//! (informational and low levels, matches within a rule's repeat period, suppressed ones),
//! counted by rule per UTC day and sent once, the day after, as one message. Pure: what a
//! decision adds to the day's counts, and the message for a day.
//!
//! Bounded whatever an attacker sends: one line per rule of the pack (not per principal or
//! event), an example resource cut to [`MAX_EXAMPLE`] characters and made safe to show.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, MAX_SUBJECT};
use crate::domain::{Decision, RuleLevel, Tier};
use crate::names::display_text;

/// Longest example resource kept per rule.
pub const MAX_EXAMPLE: usize = 128;
/// Most lines one digest shows; the rest are counted in a closing line.
pub const MAX_LINES: usize = 100;

/// What one recorded decision adds to its day: one rule's match, with where it matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub rule: String,
    pub level: RuleLevel,
    pub example: String,
}

/// One rule's line of a day's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub rule: String,
    pub level: Option<RuleLevel>,
    pub count: u64,
    /// The latest resource it matched on.
    pub example: String,
}

/// The digest entries of a decision: every rule that matched, when nobody was told (the
/// observe tier). A decision people hear of is not in the digest.
pub fn entries(decision: &Decision) -> Vec<Entry> {
    if decision.tier != Tier::Observe {
        return Vec::new();
    }
    let example = display_text(&decision.incident.resource.id, MAX_EXAMPLE);
    decision
        .incident
        .rule_hits()
        .into_iter()
        .map(|h| Entry {
            rule: h.name.clone(),
            level: h.level,
            example: example.clone(),
        })
        .collect()
}

/// The message for `day`, or `None` when nothing was recorded. Highest level first, then
/// the most frequent.
pub fn alert(day: NaiveDate, lines: &[Line]) -> Option<Alert> {
    let mut lines: Vec<&Line> = lines.iter().filter(|l| l.count > 0).collect();
    if lines.is_empty() {
        return None;
    }
    lines.sort_by(|a, b| {
        b.level
            .cmp(&a.level)
            .then_with(|| b.count.cmp(&a.count))
            .then_with(|| a.rule.cmp(&b.rule))
    });
    let total: u64 = lines.iter().map(|l| l.count).sum();
    let mut subject = format!(
        "[Vigil] digest {day}: {total} detection(s) recorded, {} rule(s)",
        lines.len()
    );
    subject.truncate(MAX_SUBJECT);
    let mut body = format!(
        "Detection rules that matched on {day} (UTC) without anyone being told: their level is \
         informational or low, people had already heard of the same rule on the same resource \
         within its repeat period, or a suppression silenced it. Every match is in the audit \
         trail with its reasons.\n\n"
    );
    for l in lines.iter().take(MAX_LINES) {
        let level = l.level.map_or_else(|| "?".to_owned(), |l| l.to_string());
        let _ = writeln!(
            body,
            "  {:>6}  {:<13} {}  (latest on {})",
            l.count,
            level,
            display_text(&l.rule, 128),
            display_text(&l.example, MAX_EXAMPLE)
        );
    }
    if lines.len() > MAX_LINES {
        let _ = writeln!(body, "  ... and {} more rule(s)", lines.len() - MAX_LINES);
    }
    body.push_str(
        "\nTo hear of a rule at once, name it in a policy rule (`detections:`); to silence one \
         on a principal or resource, add a suppression with an expiry and a reason.\n",
    );
    let attributes: BTreeMap<String, String> = [
        ("severity".to_owned(), "INFO".to_owned()),
        ("kind".to_owned(), "digest".to_owned()),
    ]
    .into_iter()
    .collect();
    Some(Alert {
        subject,
        body,
        attributes,
        chat: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(rule: &str, level: RuleLevel, count: u64) -> Line {
        Line {
            rule: rule.into(),
            level: Some(level),
            count,
            example: "arn:aws:iam::111122223333:user/alice".into(),
        }
    }

    #[test]
    fn a_day_with_nothing_recorded_sends_nothing() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(alert(day, &[]), None);
        assert_eq!(alert(day, &[line("r", RuleLevel::Low, 0)]), None);
    }

    #[test]
    fn the_digest_puts_the_highest_level_first_and_is_bounded() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let mut lines = vec![
            line("aws_iam_role_created", RuleLevel::Low, 40),
            line("aws_console_login_without_mfa", RuleLevel::Medium, 3),
        ];
        for i in 0..150 {
            lines.push(line(&format!("r{i}"), RuleLevel::Informational, 1));
        }
        let a = alert(day, &lines).unwrap();
        assert!(a.subject.contains("2026-12-01") && a.subject.contains("193 detection(s)"));
        let mfa = a.body.find("aws_console_login_without_mfa").unwrap();
        let role = a.body.find("aws_iam_role_created").unwrap();
        assert!(mfa < role, "{}", a.body);
        assert!(a.body.contains("and 52 more rule(s)"), "{}", a.body);
        assert_eq!(a.attributes["severity"], "INFO");
        assert_eq!(a.attributes["kind"], "digest");
    }

    #[test]
    fn hostile_examples_are_shown_safely() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        let mut l = line("r", RuleLevel::Low, 1);
        l.example = format!("x\u{1b}[31m\n{}", "y".repeat(1_000));
        let a = alert(day, &[l]).unwrap();
        assert!(!a.body.contains('\u{1b}'));
        assert!(a.body.len() < 2_000);
    }
}
