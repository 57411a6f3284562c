//! The deployment gate's posture: whether a deploy to an application and environment may
//! proceed, from Vigil's own incidents and anomaly scores, GuardDuty's findings, a deployment
//! freeze, and the scan reports in the pipeline's artifact. Pure: the handler gathers the
//! evidence through ports and hands it here.
//!
//! Each check ends in [`Outcome::Pass`], [`Outcome::Block`] (the evidence says no) or
//! [`Outcome::Doubt`] (the evidence could not be read, or is in a grey zone). The invoke action
//! fails on either; the manual approval action rejects on a block and, on doubt, leaves the
//! decision to people or rejects, as the policy says.

pub mod artifact;
pub mod sarif;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::{Severity, Tier};
use crate::names::display_text;

/// The gate's checks and their thresholds (the policy's `gate:` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GatePolicy {
    pub freeze: FreezeCheck,
    pub incidents: IncidentCheck,
    pub anomaly: AnomalyCheck,
    pub guardduty: GuardDutyCheck,
    pub scans: ScanCheck,
    /// What the manual approval action does when a check is in doubt.
    pub on_doubt: OnDoubt,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            freeze: FreezeCheck::default(),
            incidents: IncidentCheck::default(),
            anomaly: AnomalyCheck::default(),
            guardduty: GuardDutyCheck::default(),
            scans: ScanCheck::default(),
            on_doubt: OnDoubt::People,
        }
    }
}

/// A deployment freeze set by the decision engine during a security incident blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FreezeCheck {
    pub enabled: bool,
    /// How long a freeze set by the decision engine lasts, unless people lift it sooner.
    pub hours: u32,
}

impl Default for FreezeCheck {
    fn default() -> Self {
        FreezeCheck {
            enabled: true,
            hours: 24,
        }
    }
}

/// Vigil's incidents on the target's resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentCheck {
    pub enabled: bool,
    /// Incidents opened this recently count as open.
    pub lookback_minutes: u32,
    /// Incidents at or above this severity block, as do threats Vigil blocked or contained;
    /// lower ones that people were asked about (escalate, approval tiers) raise doubt.
    pub min_severity: Severity,
}

impl Default for IncidentCheck {
    fn default() -> Self {
        IncidentCheck {
            enabled: true,
            lookback_minutes: 60,
            min_severity: Severity::High,
        }
    }
}

/// The highest anomaly score seen on the target's resources recently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyCheck {
    pub enabled: bool,
    pub lookback_minutes: u32,
    /// At or above: doubt.
    pub doubt_at: f64,
    /// At or above: block.
    pub block_at: f64,
}

impl Default for AnomalyCheck {
    fn default() -> Self {
        AnomalyCheck {
            enabled: true,
            lookback_minutes: 30,
            doubt_at: 0.75,
            block_at: 0.9,
        }
    }
}

/// Which GuardDuty findings count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FindingScope {
    /// Findings on the target's instances (by their application and environment tags).
    Target,
    /// Any finding in the account and region: the environment is under attack.
    Account,
}

/// Active (not archived) GuardDuty findings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GuardDutyCheck {
    pub enabled: bool,
    /// GuardDuty severity (1-10); 7 and above is GuardDuty's "high".
    pub min_severity: f64,
    /// Findings updated this recently count.
    pub lookback_hours: u32,
    pub scope: FindingScope,
}

impl Default for GuardDutyCheck {
    fn default() -> Self {
        GuardDutyCheck {
            enabled: true,
            min_severity: 7.0,
            lookback_hours: 24,
            scope: FindingScope::Target,
        }
    }
}

/// SARIF scan reports in the pipeline's input artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ScanCheck {
    pub enabled: bool,
    /// Block when the artifacts hold no report at all.
    pub required: bool,
    /// At most this many results of each level; absent: no limit.
    pub max_error: Option<u32>,
    pub max_warning: Option<u32>,
    pub max_note: Option<u32>,
    /// Any result whose rule's security-severity is at or above this blocks.
    pub max_security_severity: Option<f64>,
    /// Rule ids whose results do not count until their expiry date.
    pub allow: Vec<sarif::Suppression>,
}

impl Default for ScanCheck {
    fn default() -> Self {
        ScanCheck {
            enabled: true,
            required: false,
            max_error: Some(0),
            max_warning: None,
            max_note: None,
            max_security_severity: Some(9.0),
            allow: Vec::new(),
        }
    }
}

/// What the approval action does with doubt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OnDoubt {
    /// Leave the approval to people, with an email saying why.
    People,
    /// Reject.
    Reject,
}

// --- Evidence ------------------------------------------------------------------------------

/// An incident Vigil recorded on one of the target's resources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostureMark {
    pub incident: String,
    pub resource: String,
    /// The failure mode or threat.
    pub what: String,
    pub severity: Severity,
    pub tier: Tier,
    /// The leading observation's anomaly score.
    pub anomaly: f64,
    pub opened_at: DateTime<Utc>,
}

impl PostureMark {
    /// The mark of an incident, under its target, when its resource names one.
    pub fn of(incident: &crate::domain::Incident, tier: Tier) -> Option<(String, PostureMark)> {
        let target = target_of(&incident.resource)?;
        let anomaly = incident
            .evidence
            .iter()
            .map(|e| e.score.anomaly)
            .filter(|a| a.is_finite())
            .fold(0.0, f64::max);
        Some((
            target,
            PostureMark {
                incident: incident.id.clone(),
                resource: incident.resource.id.clone(),
                what: incident.what(),
                severity: incident.severity,
                tier,
                anomaly,
                opened_at: incident.opened_at,
            },
        ))
    }
}

/// The deployment target (`application/environment`) a resource belongs to, from its group's
/// tags.
pub fn target_of(resource: &crate::domain::Resource) -> Option<String> {
    match (&resource.application, &resource.environment) {
        (Some(a), Some(e)) => Some(format!("{a}/{e}")),
        _ => None,
    }
}

/// An active GuardDuty finding, as much as the gate needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingSummary {
    pub id: String,
    pub finding_type: String,
    pub severity: f64,
    pub title: String,
    /// The instance or access key it is about.
    pub resource: String,
    /// The instance's application and environment tags, when it is an instance.
    pub application: Option<String>,
    pub environment: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// What the artifacts held.
#[derive(Debug)]
pub enum ScanEvidence {
    /// The action has no input artifact.
    NoArtifact,
    /// The artifact was read; each report's path and summary (or why it is not SARIF).
    Reports(Vec<(String, Result<sarif::Summary, sarif::SarifError>)>),
    /// The artifact was refused (hostile or oversized archive): a block.
    Refused(String),
    /// The artifact could not be fetched: doubt.
    Unreadable(String),
}

/// A deploy the gate let through: what links a later anomaly to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deploy {
    pub target: String,
    pub pipeline: Option<String>,
    pub job_id: String,
    pub revision: Option<String>,
    pub at: DateTime<Utc>,
}

// --- Outcomes ------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    Freeze,
    Incidents,
    Anomaly,
    Guardduty,
    Scans,
}

impl Check {
    /// The order the checks run in (cheapest and most decisive first).
    pub const ALL: [Check; 5] = [
        Check::Freeze,
        Check::Incidents,
        Check::Anomaly,
        Check::Guardduty,
        Check::Scans,
    ];
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Check::Freeze => "freeze",
            Check::Incidents => "incidents",
            Check::Anomaly => "anomaly",
            Check::Guardduty => "guardduty",
            Check::Scans => "scans",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Doubt,
    Block,
}

/// One check's outcome, with one line per reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub check: Check,
    pub outcome: Outcome,
    pub lines: Vec<String>,
}

impl CheckResult {
    pub fn pass(check: Check, line: impl Into<String>) -> Self {
        CheckResult {
            check,
            outcome: Outcome::Pass,
            lines: vec![line.into()],
        }
    }

    /// A check whose evidence could not be read.
    pub fn doubt(check: Check, line: impl Into<String>) -> Self {
        CheckResult {
            check,
            outcome: Outcome::Doubt,
            lines: vec![line.into()],
        }
    }
}

fn minutes_ago(at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    (now - at).num_minutes().max(0)
}

pub fn check_freeze(freeze: Option<&str>) -> CheckResult {
    match freeze {
        None => CheckResult::pass(Check::Freeze, "no deployment freeze"),
        Some(reason) => CheckResult {
            check: Check::Freeze,
            outcome: Outcome::Block,
            lines: vec![format!("deployment freeze: {}", display_text(reason, 300))],
        },
    }
}

pub fn check_incidents(
    marks: &[PostureMark],
    p: &IncidentCheck,
    now: DateTime<Utc>,
) -> CheckResult {
    let since = now - chrono::Duration::minutes(i64::from(p.lookback_minutes));
    let mut out = CheckResult::pass(Check::Incidents, "no open incident");
    let mut lines = Vec::new();
    for m in marks.iter().filter(|m| m.opened_at >= since) {
        // A threat Vigil decided to block or contain holds deployments whatever its severity.
        let outcome = if m.severity >= p.min_severity || m.tier == Tier::Block {
            Outcome::Block
        } else if m.tier != Tier::Observe && m.severity > Severity::Info {
            Outcome::Doubt
        } else {
            continue;
        };
        out.outcome = out.outcome.max(outcome);
        lines.push(format!(
            "open incident on {}: {} ({}, tier {}, opened {} min ago, incident {})",
            display_text(&m.resource, 64),
            display_text(&m.what, 64),
            m.severity,
            m.tier,
            minutes_ago(m.opened_at, now),
            display_text(&m.incident, 128)
        ));
    }
    if !lines.is_empty() {
        out.lines = lines;
    }
    out
}

pub fn check_anomaly(marks: &[PostureMark], p: &AnomalyCheck, now: DateTime<Utc>) -> CheckResult {
    let since = now - chrono::Duration::minutes(i64::from(p.lookback_minutes));
    let worst = marks
        .iter()
        .filter(|m| m.opened_at >= since && m.anomaly.is_finite())
        .max_by(|a, b| a.anomaly.total_cmp(&b.anomaly));
    let Some(m) = worst else {
        return CheckResult::pass(
            Check::Anomaly,
            format!("no anomaly in the last {} min", p.lookback_minutes),
        );
    };
    let outcome = if m.anomaly >= p.block_at {
        Outcome::Block
    } else if m.anomaly >= p.doubt_at {
        Outcome::Doubt
    } else {
        Outcome::Pass
    };
    CheckResult {
        check: Check::Anomaly,
        outcome,
        lines: vec![format!(
            "highest anomaly score {:.2} on {} ({}) {} min ago; doubt at {:.2}, block at {:.2}",
            m.anomaly,
            display_text(&m.resource, 64),
            display_text(&m.what, 64),
            minutes_ago(m.opened_at, now),
            p.doubt_at,
            p.block_at
        )],
    }
}

/// Splits `application/environment`.
pub fn split_target(target: &str) -> Option<(&str, &str)> {
    target.split_once('/')
}

pub fn check_findings(
    findings: &[FindingSummary],
    target: &str,
    p: &GuardDutyCheck,
) -> CheckResult {
    let (app, env) = split_target(target).unwrap_or((target, ""));
    let mut lines = Vec::new();
    for f in findings.iter().filter(|f| f.severity >= p.min_severity) {
        let in_scope = match p.scope {
            FindingScope::Account => true,
            FindingScope::Target => {
                f.application.as_deref() == Some(app) && f.environment.as_deref() == Some(env)
            }
        };
        if in_scope {
            lines.push(format!(
                "GuardDuty {} (severity {:.1}) on {}: {} (finding {})",
                display_text(&f.finding_type, 128),
                f.severity,
                display_text(&f.resource, 64),
                display_text(&f.title, 200),
                display_text(&f.id, 64)
            ));
        }
    }
    if lines.is_empty() {
        return CheckResult::pass(
            Check::Guardduty,
            format!(
                "no active GuardDuty finding at or above {:.1}",
                p.min_severity
            ),
        );
    }
    CheckResult {
        check: Check::Guardduty,
        outcome: Outcome::Block,
        lines,
    }
}

pub fn check_scans(evidence: &ScanEvidence, p: &ScanCheck) -> CheckResult {
    let reports = match evidence {
        ScanEvidence::NoArtifact if p.required => {
            return CheckResult {
                check: Check::Scans,
                outcome: Outcome::Block,
                lines: vec!["no input artifact, and the policy requires a scan report".into()],
            };
        }
        ScanEvidence::NoArtifact => {
            return CheckResult::pass(Check::Scans, "no input artifact to scan");
        }
        ScanEvidence::Refused(why) => {
            return CheckResult {
                check: Check::Scans,
                outcome: Outcome::Block,
                lines: vec![format!("artifact refused: {}", display_text(why, 400))],
            };
        }
        ScanEvidence::Unreadable(why) => {
            return CheckResult::doubt(
                Check::Scans,
                format!("the artifact could not be read: {}", display_text(why, 400)),
            );
        }
        ScanEvidence::Reports(r) => r,
    };
    if reports.is_empty() {
        return if p.required {
            CheckResult {
                check: Check::Scans,
                outcome: Outcome::Block,
                lines: vec!["no SARIF report in the artifact, and the policy requires one".into()],
            }
        } else {
            CheckResult::pass(Check::Scans, "no SARIF report in the artifact")
        };
    }
    let mut out = CheckResult {
        check: Check::Scans,
        outcome: Outcome::Pass,
        lines: Vec::new(),
    };
    for (path, summary) in reports {
        let path = display_text(path, 120);
        let s = match summary {
            Ok(s) => s,
            Err(e) => {
                out.outcome = out.outcome.max(Outcome::Doubt);
                out.lines.push(format!("{path}: {}", crate::error_chain(e)));
                continue;
            }
        };
        let counts = s.counts();
        let count = |l| counts.get(&l).copied().unwrap_or(0);
        let mut over = Vec::new();
        for (level, max) in [
            (sarif::Level::Error, p.max_error),
            (sarif::Level::Warning, p.max_warning),
            (sarif::Level::Note, p.max_note),
        ] {
            if let Some(max) = max
                && count(level) > max as usize
            {
                over.push(format!("{} {level} (at most {max})", count(level)));
            }
        }
        let critical: Vec<&sarif::Issue> = match p.max_security_severity {
            Some(t) => s
                .issues
                .iter()
                .filter(|i| i.security_severity.is_some_and(|v| v >= t))
                .collect(),
            None => Vec::new(),
        };
        if !critical.is_empty() {
            over.push(format!(
                "{} with security-severity at or above {:.1}",
                critical.len(),
                p.max_security_severity.unwrap_or_default()
            ));
        }
        for e in &s.expired {
            out.lines.push(format!(
                "{path}: allow-list entry for {} expired on {} ({})",
                display_text(&e.rule_id, 64),
                e.expires,
                display_text(&e.reason, 120)
            ));
        }
        if over.is_empty() {
            out.lines.push(format!(
                "{path}: within thresholds ({} error, {} warning, {} note; {} suppressed in source, {} allowed)",
                count(sarif::Level::Error),
                count(sarif::Level::Warning),
                count(sarif::Level::Note),
                s.suppressed_in_source,
                s.allowed.values().sum::<usize>()
            ));
            continue;
        }
        out.outcome = Outcome::Block;
        out.lines.push(format!("{path}: {}", over.join(", ")));
        for i in s.issues.iter().take(10) {
            out.lines.push(format!(
                "{path}: {} {} {}{}: {}",
                i.level,
                display_text(&i.tool, 32),
                i.rule_id,
                i.location
                    .as_deref()
                    .map(|l| format!(" at {l}"))
                    .unwrap_or_default(),
                i.message
            ));
        }
        if s.issues.len() > 10 {
            out.lines.push(format!(
                "{path}: ... and {} more results",
                s.issues.len() - 10
            ));
        }
    }
    out
}

// --- The verdict ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    Uncertain,
    Blocked,
}

/// The checks' results for one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posture {
    pub target: String,
    pub results: Vec<CheckResult>,
}

impl Posture {
    pub fn verdict(&self) -> Verdict {
        match self.results.iter().map(|r| r.outcome).max() {
            Some(Outcome::Block) => Verdict::Blocked,
            Some(Outcome::Doubt) => Verdict::Uncertain,
            _ => Verdict::Clean,
        }
    }

    /// The reasons that are not passes, one line each: `[check] reason`.
    pub fn reasons(&self) -> Vec<String> {
        self.results
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .flat_map(|r| {
                let tag = if r.outcome == Outcome::Block {
                    format!("{}", r.check)
                } else {
                    format!("{}, unsure", r.check)
                };
                r.lines.iter().map(move |l| format!("[{tag}] {l}"))
            })
            .collect()
    }

    /// The message for people and the pipeline console: a headline, then one line per reason,
    /// cut at whole lines to at most `max` characters.
    pub fn message(&self, max: usize) -> String {
        let head = match self.verdict() {
            Verdict::Clean => format!("Vigil gate: the posture of {} is clean", self.target),
            Verdict::Uncertain => format!(
                "Vigil gate could not confirm that the posture of {} is clean:",
                self.target
            ),
            Verdict::Blocked => format!("Vigil gate blocked the deployment of {}:", self.target),
        };
        let lines = if self.verdict() == Verdict::Clean {
            self.results
                .iter()
                .flat_map(|r| r.lines.iter().map(move |l| format!("[{}] {l}", r.check)))
                .collect()
        } else {
            self.reasons()
        };
        fit_lines(&head, &lines, max)
    }
}

/// `head` then `- line` per line, whole lines only, within `max` characters.
pub fn fit_lines(head: &str, lines: &[String], max: usize) -> String {
    let mut out: String = head.chars().take(max).collect();
    for (i, line) in lines.iter().enumerate() {
        let more = format!("\n- ... and {} more", lines.len() - i);
        let next = format!("\n- {line}");
        let room = max.saturating_sub(out.chars().count());
        let is_last = i + 1 == lines.len();
        if next.chars().count() + if is_last { 0 } else { more.chars().count() } > room {
            if more.chars().count() <= room {
                out.push_str(&more);
            }
            break;
        }
        out.push_str(&next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_lines_keeps_whole_lines_and_says_how_many_were_cut() {
        let lines: Vec<String> = (0..100)
            .map(|i| format!("reason {i:03} {}", "x".repeat(60)))
            .collect();
        let msg = fit_lines("head:", &lines, 1000);
        assert!(msg.chars().count() <= 1000);
        assert!(msg.ends_with("more"), "{msg}");
        for l in msg.lines().skip(1) {
            assert!(l.starts_with("- reason") || l.starts_with("- ..."), "{l}");
            assert!(l.len() > 60 || l.starts_with("- ..."));
        }
        assert_eq!(fit_lines("h", &["a".into()], 100), "h\n- a");
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;
    use chrono::TimeZone;

    fn mark(severity: Severity, tier: Tier, anomaly: f64, minutes_ago: i64) -> PostureMark {
        PostureMark {
            incident: "i-1:e-1".into(),
            resource: "i-1".into(),
            what: "memory leak".into(),
            severity,
            tier,
            anomaly,
            opened_at: now() - chrono::Duration::minutes(minutes_ago),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap()
    }

    #[test]
    fn incidents_block_at_the_severity_doubt_below_and_age_out() {
        let p = IncidentCheck::default();
        let outcome = |m: PostureMark| check_incidents(&[m], &p, now()).outcome;
        assert_eq!(
            outcome(mark(Severity::High, Tier::Escalate, 0.9, 5)),
            Outcome::Block
        );
        assert_eq!(
            outcome(mark(Severity::Critical, Tier::Observe, 0.9, 5)),
            Outcome::Block
        );
        assert_eq!(
            outcome(mark(Severity::Medium, Tier::Escalate, 0.6, 5)),
            Outcome::Doubt
        );
        assert_eq!(
            outcome(mark(Severity::Medium, Tier::Observe, 0.6, 5)),
            Outcome::Pass
        );
        assert_eq!(
            outcome(mark(Severity::Critical, Tier::Block, 0.9, 61)),
            Outcome::Pass
        );
    }

    #[test]
    fn anomaly_scores_doubt_then_block_within_the_lookback() {
        let p = AnomalyCheck::default();
        let outcome = |a: f64, ago: i64| {
            check_anomaly(&[mark(Severity::Low, Tier::Observe, a, ago)], &p, now()).outcome
        };
        assert_eq!(outcome(0.5, 1), Outcome::Pass);
        assert_eq!(outcome(0.8, 1), Outcome::Doubt);
        assert_eq!(outcome(0.95, 1), Outcome::Block);
        assert_eq!(outcome(0.95, 31), Outcome::Pass);
        assert_eq!(outcome(f64::NAN, 1), Outcome::Pass);
    }

    #[test]
    fn findings_count_on_the_target_or_account_wide_as_the_policy_says() {
        let f = FindingSummary {
            id: "f".into(),
            finding_type: "Recon:EC2/PortProbeUnprotectedPort".into(),
            severity: 7.5,
            title: "t".into(),
            resource: "i-1".into(),
            application: Some("api".into()),
            environment: Some("prod".into()),
            updated_at: now(),
        };
        let mut p = GuardDutyCheck::default();
        assert_eq!(
            check_findings(std::slice::from_ref(&f), "web/prod", &p).outcome,
            Outcome::Pass
        );
        assert_eq!(
            check_findings(std::slice::from_ref(&f), "api/prod", &p).outcome,
            Outcome::Block
        );
        p.scope = FindingScope::Account;
        assert_eq!(
            check_findings(std::slice::from_ref(&f), "web/prod", &p).outcome,
            Outcome::Block
        );
        p.min_severity = 8.0;
        assert_eq!(check_findings(&[f], "web/prod", &p).outcome, Outcome::Pass);
    }
}
