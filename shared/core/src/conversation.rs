//! One incident, one conversation: what people are told about one principal's activity (a
//! threat, a detection rule's match) or about one group or resource (an operations incident)
//! is one conversation, told first at once and then updated in its thread.
//!
//! A later decision of the same conversation is told at once, as an update, when it changes
//! what people must know or do: it asks them (approval), blocks, was acted on (or failed), is a
//! person's answer or a recovery, is of a tier not told yet (a limit held what was
//! automatic), is more severe than anything told so far, is of a kind not told yet (another
//! threat, another ATT&CK tactic, another failure mode, a sign-in that worked), or comes from a
//! network not seen yet in the conversation. Anything else is folded: counted, and told in a
//! digest at most every [`DIGEST_MINUTES`] (the next update carries it too). A conversation ends after
//! [`IDLE_MINUTES`] with nothing in it; the next decision starts a new one.
//!
//! Pure: the handler reads and keeps the [`Conversation`] (the state table) and publishes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, MAX_SUBJECT};
use crate::domain::{
    Code, Decision, FailureMode, Outcome, OutcomeStatus, ResourceKind, Severity, Tier,
};
use crate::names::display_text;

/// A conversation with nothing told or folded for this long is over.
pub const IDLE_MINUTES: i64 = 60;
/// Folded decisions are told in a digest at most this often.
pub const DIGEST_MINUTES: i64 = 15;
/// The kinds and networks a conversation remembers, and the folded lines it counts.
const MAX_REMEMBERED: usize = 32;

/// One conversation: its thread, what it has told, what it has folded since its last message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The thread: the first told decision's incident id (chat threads by it).
    pub id: String,
    /// The first message's subject: every update answers it.
    pub subject: String,
    pub opened_at: DateTime<Utc>,
    pub last_told_at: DateTime<Utc>,
    /// Messages sent in the conversation, the first included.
    pub messages: u32,
    /// The highest severity told.
    pub severity: Severity,
    /// The kinds told (threats, tactics, failure modes, sign-ins that worked).
    pub kinds: BTreeSet<String>,
    /// The source networks of the activity told.
    pub networks: BTreeSet<String>,
    /// The acts told (an API or sign-in outcome and its network:
    /// [`crate::features::identity::act`]).
    #[serde(default)]
    pub acts: BTreeSet<String>,
    /// The tiers told: a decision of another tier asks something else of people.
    #[serde(default)]
    pub tiers: BTreeSet<Tier>,
    /// Decisions folded since the last message: how many of each.
    pub folded: BTreeMap<String, u32>,
}

/// What to do with a decision people would be told of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No conversation is open about it: the first message.
    First,
    /// Told at once in the conversation's thread, for this reason.
    Update(String),
    /// Folded decisions are due: told now in the thread, with what was folded.
    Digest,
    /// Counted, told in the next message.
    Fold,
}

/// What the conversation is about: the principal (its role, not the session) for a threat or
/// a detection rule's match on a principal; otherwise the resource's group, application or
/// itself.
pub fn about(decision: &Decision) -> String {
    let r = &decision.incident.resource;
    if r.kind == ResourceKind::Principal {
        return format!("principal:{}", crate::keys::history_key(&r.id));
    }
    let scope = r
        .group
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| r.application.clone())
        .unwrap_or_else(|| r.id.clone());
    format!("scope:{scope}")
}

/// The kinds a decision is of: its threat, its rules' ATT&CK tactics, its failure mode, and a
/// sign-in that worked.
pub fn kinds(decision: &Decision) -> BTreeSet<String> {
    let inc = &decision.incident;
    let mut kinds = BTreeSet::new();
    if let Some(t) = inc.threat {
        kinds.insert(format!("threat:{t}"));
    }
    if inc.failure_mode != FailureMode::Normal {
        kinds.insert(format!("failure:{}", inc.failure_mode));
    }
    for hit in inc.rule_hits() {
        for tag in &hit.attack {
            // A tactic (`attack.persistence`), not a technique (`attack.t1098`).
            let tactic = tag.strip_prefix("attack.").unwrap_or(tag);
            if !tactic.starts_with('t') || !tactic[1..].starts_with(|c: char| c.is_ascii_digit()) {
                kinds.insert(format!("tactic:{tactic}"));
            }
        }
    }
    for e in &inc.evidence {
        if let Some(act) = crate::features::identity::act(&e.observation.signal)
            && act.starts_with("signin:ConsoleLogin@")
        {
            kinds.insert("sign-in:succeeded".to_owned());
        }
    }
    if kinds.is_empty() {
        kinds.insert(format!("what:{}", inc.what()));
    }
    kinds
}

/// The acts of the decision's evidence.
fn acts(decision: &Decision) -> BTreeSet<String> {
    decision
        .incident
        .evidence
        .iter()
        .filter_map(|e| crate::features::identity::act(&e.observation.signal))
        .collect()
}

/// The source networks of the decision's evidence.
fn networks(decision: &Decision) -> BTreeSet<String> {
    acts(decision)
        .into_iter()
        .filter_map(|act| act.rsplit_once('@').map(|(_, net)| net.to_owned()))
        .collect()
}

/// What to do with `decision`, ended with `outcome`, in the conversation `open` (`None`: none
/// is open about it).
pub fn step(
    open: Option<&Conversation>,
    decision: &Decision,
    outcome: &Outcome,
    now: DateTime<Utc>,
) -> Step {
    let Some(c) = open else {
        return Step::First;
    };
    let needs_people = match decision.tier {
        Tier::Approval => Some("it waits for a person"),
        Tier::Block => Some("it blocks"),
        _ => None,
    };
    let acted = match outcome.status {
        OutcomeStatus::Verified | OutcomeStatus::Unverified => Some("an action was carried out"),
        OutcomeStatus::Failed => Some("an action failed"),
        OutcomeStatus::NotActed => None,
    };
    let recovered = (decision.tier == Tier::Observe && decision.cites(&Code::Recovery))
        .then_some("it recovered");
    let answered = decision
        .cites(&Code::Approval)
        .then_some("a person answered");
    if let Some(why) = needs_people.or(acted).or(recovered).or(answered) {
        return Step::Update(why.to_owned());
    }
    if !c.tiers.contains(&decision.tier) {
        let why = match crate::telemetry::held_by(decision) {
            Some(limit) => format!("now {}: held by {limit}", decision.tier),
            None => format!("now {}", decision.tier),
        };
        return Step::Update(why);
    }
    if decision.incident.severity > c.severity {
        return Step::Update(format!("severity rose to {}", decision.incident.severity));
    }
    // Another kind, unless it is an act already told named again (the rule counting the
    // guesses the model named): one act, one message.
    let acts = acts(decision);
    let act_told = !acts.is_empty() && acts.iter().all(|a| c.acts.contains(a));
    if let Some(new) = kinds(decision)
        .into_iter()
        .find(|k| !c.kinds.contains(k))
        .filter(|_| !act_told)
    {
        return Step::Update(format!("new: {}", new.replace(':', " ")));
    }
    if let Some(net) = networks(decision)
        .into_iter()
        .find(|n| !c.networks.contains(n))
    {
        return Step::Update(format!("from a new network: {net}"));
    }
    if now - c.last_told_at >= chrono::Duration::minutes(DIGEST_MINUTES) {
        return Step::Digest;
    }
    Step::Fold
}

impl Conversation {
    /// The conversation `decision` opens, told with `subject`.
    pub fn open(decision: &Decision, subject: &str, now: DateTime<Utc>) -> Conversation {
        let mut c = Conversation {
            id: decision.incident.id.clone(),
            subject: subject.to_owned(),
            opened_at: now,
            last_told_at: now,
            messages: 0,
            severity: decision.incident.severity,
            kinds: BTreeSet::new(),
            networks: BTreeSet::new(),
            acts: BTreeSet::new(),
            tiers: BTreeSet::new(),
            folded: BTreeMap::new(),
        };
        c.told(decision, now);
        c
    }

    /// A message about `decision` was sent: what it told is known now, the folded are told.
    pub fn told(&mut self, decision: &Decision, now: DateTime<Utc>) {
        self.messages += 1;
        self.last_told_at = now;
        self.severity = self.severity.max(decision.incident.severity);
        self.tiers.insert(decision.tier);
        for (set, new) in [
            (&mut self.kinds, kinds(decision)),
            (&mut self.networks, networks(decision)),
            (&mut self.acts, acts(decision)),
        ] {
            for k in new {
                if set.len() < MAX_REMEMBERED {
                    set.insert(k);
                }
            }
        }
        self.folded.clear();
    }

    /// `decision` was folded: counted for the next message.
    pub fn fold(&mut self, decision: &Decision) {
        let line = folded_line(decision);
        if let Some(n) = self.folded.get_mut(&line) {
            *n += 1;
        } else if self.folded.len() < MAX_REMEMBERED {
            self.folded.insert(line, 1);
        } else {
            *self.folded.entry("other decisions".to_owned()).or_insert(0) += 1;
        }
    }

    /// Makes `alert` an update in this conversation: its subject answers the first message's
    /// (its own subject becomes the body's first line), its body says why it is told now and
    /// what was folded since the last message, and a chat channel threads it with the first.
    pub fn thread(&self, alert: &mut Alert, step: &Step) {
        let why = match step {
            Step::First | Step::Fold => return,
            Step::Update(why) => why.clone(),
            Step::Digest => format!("digest of what was folded since {}", self.last_told_at),
        };
        // Email threads by subject: the update answers the first message, and says what it is
        // about on its first line. A chat channel threads by id and shows the update's own title.
        let own = std::mem::replace(
            &mut alert.subject,
            display_text(&format!("{REPLY}{}", self.subject), MAX_SUBJECT - 1),
        );
        let mut head = format!(
            "{own}\nUpdate {} in conversation {} (first told {}): {why}.\n",
            self.messages + 1,
            self.id,
            self.opened_at
        );
        if !self.folded.is_empty() {
            let _ = writeln!(
                head,
                "Since the last message, also recorded without a message of its own:"
            );
            for (line, n) in &self.folded {
                let _ = writeln!(head, "  {n} x {line}");
            }
        }
        head.push('\n');
        alert.body.insert_str(0, &head);
        alert
            .attributes
            .insert("conversation".to_owned(), display_text(&self.id, 256));
        if let Some(chat) = &mut alert.chat {
            chat.metadata.thread_id = Some(display_text(&self.id, 128));
        }
    }
}

/// The first message of a conversation: its subject leaves room for the `Re: ` its updates
/// put before it, so that every update's subject is the first's, answered, and mail clients
/// thread them.
pub fn first(alert: &mut Alert) {
    // `display_text` keeps `max` characters and marks a cut with one more.
    alert.subject = display_text(&alert.subject, MAX_SUBJECT - 2 - REPLY.chars().count());
}

/// What an update's subject starts with.
const REPLY: &str = "Re: ";

/// How a folded decision is counted: what it is, and the act (API and network) that led it.
fn folded_line(decision: &Decision) -> String {
    let what = decision.incident.what();
    let act = decision
        .incident
        .evidence
        .first()
        .and_then(|e| crate::features::identity::act(&e.observation.signal));
    let line = match act {
        Some(act) => format!("{what} ({act})"),
        None => format!("{what} on {}", decision.incident.resource.id),
    };
    display_text(&line, 160)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Incident, Mode, Reason, Resource, ThreatClass};

    fn decision(severity: Severity, threat: Option<ThreatClass>, tier: Tier) -> Decision {
        Decision {
            id: "inc-1:escalate".into(),
            incident: Incident {
                id: "inc-1".into(),
                resource: Resource::new(
                    ResourceKind::Principal,
                    "arn:aws:sts::123456789012:assumed-role/deployer/session-1",
                ),
                failure_mode: FailureMode::Normal,
                threat,
                severity,
                confidence: 0.9,
                opened_at: t(0),
                evidence: Vec::new(),
            },
            tier,
            action: None,
            mode: Mode::Enforce,
            reasons: Vec::new(),
            decided_at: t(0),
        }
    }

    fn t(minute: i64) -> DateTime<Utc> {
        "2026-11-20T03:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::minutes(minute)
    }

    fn outcome(status: OutcomeStatus) -> Outcome {
        Outcome {
            decision_id: "inc-1:escalate".into(),
            status,
            detail: String::new(),
            notification_id: None,
            finished_at: t(0),
        }
    }

    /// The step for `later` at minute `at` in the conversation `first` opened at minute 0.
    fn check(first: &Decision, later: &Decision, status: OutcomeStatus, at: i64, want: &Step) {
        let open = Conversation::open(first, "[Vigil HIGH] x", t(0));
        assert_eq!(&step(Some(&open), later, &outcome(status), t(at)), want);
    }

    #[test]
    fn the_first_decision_opens_a_conversation_about_the_role_not_the_session() {
        let d = decision(
            Severity::High,
            Some(ThreatClass::Reconnaissance),
            Tier::Escalate,
        );
        assert_eq!(
            step(None, &d, &outcome(OutcomeStatus::NotActed), t(0)),
            Step::First
        );
        assert_eq!(
            about(&d),
            "principal:arn:aws:sts::123456789012:assumed-role/deployer"
        );
    }

    #[test]
    fn what_changes_what_people_know_or_do_is_told_at_once_the_rest_folded() {
        let first = decision(
            Severity::High,
            Some(ThreatClass::Reconnaissance),
            Tier::Escalate,
        );
        let same = first.clone();
        check(&first, &same, OutcomeStatus::NotActed, 1, &Step::Fold);
        check(&first, &same, OutcomeStatus::NotActed, 15, &Step::Digest);
        let update = |why: &str| Step::Update(why.to_owned());
        check(
            &first,
            &same,
            OutcomeStatus::Verified,
            1,
            &update("an action was carried out"),
        );
        check(
            &first,
            &same,
            OutcomeStatus::Failed,
            1,
            &update("an action failed"),
        );
        let mut ask = same.clone();
        ask.tier = Tier::Approval;
        check(
            &first,
            &ask,
            OutcomeStatus::NotActed,
            1,
            &update("it waits for a person"),
        );
        let mut answered = same.clone();
        answered.reasons.push(Reason::new(Code::Approval, "denied"));
        check(
            &first,
            &answered,
            OutcomeStatus::NotActed,
            1,
            &update("a person answered"),
        );
        let worse = decision(
            Severity::Critical,
            Some(ThreatClass::Reconnaissance),
            Tier::Escalate,
        );
        check(
            &first,
            &worse,
            OutcomeStatus::NotActed,
            1,
            &update("severity rose to CRITICAL"),
        );
        // Less severe than told: folded.
        let milder = decision(
            Severity::Low,
            Some(ThreatClass::Reconnaissance),
            Tier::Escalate,
        );
        check(&first, &milder, OutcomeStatus::NotActed, 1, &Step::Fold);
        // What was automatic and is now for people: another tier, told at once.
        let automatic = decision(
            Severity::High,
            Some(ThreatClass::Reconnaissance),
            Tier::AutoHeal,
        );
        check(
            &automatic,
            &same,
            OutcomeStatus::NotActed,
            1,
            &update("now escalate"),
        );
        let other = decision(
            Severity::High,
            Some(ThreatClass::Persistence),
            Tier::Escalate,
        );
        check(
            &first,
            &other,
            OutcomeStatus::NotActed,
            1,
            &update("new: threat persistence"),
        );
    }

    #[test]
    fn an_update_answers_the_first_message_and_carries_what_was_folded() {
        let first = decision(
            Severity::High,
            Some(ThreatClass::Reconnaissance),
            Tier::Escalate,
        );
        let mut c = Conversation::open(&first, "[Vigil HIGH] reconnaissance on deployer", t(0));
        c.fold(&first);
        c.fold(&first);
        let mut alert = Alert {
            subject: "[Vigil HIGH] persistence on deployer: ATTENTION".into(),
            body: "What happened\n".into(),
            attributes: BTreeMap::new(),
            chat: None,
        };
        c.thread(&mut alert, &Step::Update("new: threat persistence".into()));
        assert_eq!(alert.subject, "Re: [Vigil HIGH] reconnaissance on deployer");
        let mut lines = alert.body.lines();
        assert_eq!(
            lines.next(),
            Some("[Vigil HIGH] persistence on deployer: ATTENTION")
        );
        assert!(
            lines
                .next()
                .unwrap()
                .starts_with("Update 2 in conversation inc-1")
        );
        assert!(
            alert.body.contains("  2 x reconnaissance on arn:aws:sts"),
            "{}",
            alert.body
        );
        assert_eq!(alert.attributes["conversation"], "inc-1");
        c.told(&first, t(3));
        assert!(c.folded.is_empty());
        assert_eq!(c.messages, 2);
        // The first message leaves room for the updates' prefix: their subjects stay equal.
        let mut long = Alert {
            subject: "x".repeat(MAX_SUBJECT - 1),
            ..alert
        };
        super::first(&mut long);
        let reply = display_text(&format!("{REPLY}{}", long.subject), MAX_SUBJECT - 1);
        assert_eq!(reply, format!("{REPLY}{}", long.subject), "not cut again");
    }
}
