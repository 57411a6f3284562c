//! SARIF 2.1.0 scan reports, from any scanner: the results that count against the gate's
//! thresholds. Pure.
//!
//! Only what the gate needs is read: each result's rule, level and first location, whether the
//! scanner recorded it as suppressed in source, and the rule's default level and
//! `security-severity` (the property GitHub code scanning and most scanners use).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::names::display_text;

/// The level of a result, as SARIF names them; `none` results do not count.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    None,
    Note,
    Warning,
    Error,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::None => "none",
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

/// A rule id whose results do not count until a date, with the reason people gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suppression {
    pub rule_id: String,
    /// The last day (UTC) the suppression holds.
    pub expires: NaiveDate,
    pub reason: String,
}

/// One result that counts.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub tool: String,
    pub rule_id: String,
    pub level: Level,
    /// The rule's `security-severity` (0-10), when the scanner gives one.
    pub security_severity: Option<f64>,
    pub message: String,
    pub location: Option<String>,
}

/// What a report holds once suppressions are applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Results that count, worst first.
    pub issues: Vec<Issue>,
    /// Results the scanner recorded as suppressed in source.
    pub suppressed_in_source: usize,
    /// Results suppressed by the policy's allow-list, per rule id.
    pub allowed: BTreeMap<String, usize>,
    /// Allow-list entries that matched a result but have expired (the results count).
    pub expired: Vec<Suppression>,
}

impl Summary {
    /// How many counting results there are at each level.
    pub fn counts(&self) -> BTreeMap<Level, usize> {
        let mut out = BTreeMap::new();
        for i in &self.issues {
            *out.entry(i.level).or_default() += 1;
        }
        out
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SarifError {
    #[error("not a SARIF log")]
    Json(#[source] serde_json::Error),
    #[error("SARIF version {0:?} is not 2.1.0")]
    Version(String),
}

// --- The parts of the SARIF 2.1.0 object model the gate reads. -----------------------------

#[derive(Deserialize)]
struct Log {
    version: String,
    #[serde(default)]
    runs: Vec<Run>,
}

#[derive(Deserialize)]
struct Run {
    tool: Tool,
    #[serde(default)]
    results: Vec<SarifResult>,
}

#[derive(Deserialize)]
struct Tool {
    driver: Driver,
}

#[derive(Deserialize)]
struct Driver {
    #[serde(default)]
    name: String,
    #[serde(default)]
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Rule {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "defaultConfiguration")]
    default_configuration: Option<Configuration>,
    #[serde(default)]
    properties: Option<Properties>,
}

#[derive(Deserialize)]
struct Configuration {
    #[serde(default)]
    level: Option<Level>,
}

#[derive(Deserialize)]
struct Properties {
    /// A number or a numeric string, depending on the scanner.
    #[serde(default, rename = "security-severity")]
    security_severity: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SarifResult {
    #[serde(default, rename = "ruleId")]
    rule_id: Option<String>,
    #[serde(default, rename = "ruleIndex")]
    rule_index: Option<usize>,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    message: Message,
    #[serde(default)]
    locations: Vec<Location>,
    #[serde(default)]
    suppressions: Vec<SarifSuppression>,
}

#[derive(Deserialize, Default)]
struct Message {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct Location {
    #[serde(default, rename = "physicalLocation")]
    physical: Option<PhysicalLocation>,
}

#[derive(Deserialize)]
struct PhysicalLocation {
    #[serde(default, rename = "artifactLocation")]
    artifact: Option<ArtifactLocation>,
    #[serde(default)]
    region: Option<Region>,
}

#[derive(Deserialize)]
struct ArtifactLocation {
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Deserialize)]
struct Region {
    #[serde(default, rename = "startLine")]
    start_line: Option<u64>,
}

#[derive(Deserialize)]
struct SarifSuppression {
    /// `accepted` (the default), `underReview` or `rejected`: only accepted ones suppress.
    #[serde(default)]
    status: Option<String>,
}

fn security_severity(p: &Properties) -> Option<f64> {
    match p.security_severity.as_ref()? {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|s: &f64| s.is_finite())
}

/// Reads a SARIF 2.1.0 log and applies the allow-list as of `today`.
pub fn summarise(
    bytes: &[u8],
    allow: &[Suppression],
    today: NaiveDate,
) -> Result<Summary, SarifError> {
    let log: Log = serde_json::from_slice(bytes).map_err(SarifError::Json)?;
    if log.version != "2.1.0" {
        return Err(SarifError::Version(display_text(&log.version, 16)));
    }
    let allow_by_rule: HashMap<&str, &Suppression> =
        allow.iter().map(|s| (s.rule_id.as_str(), s)).collect();
    let mut summary = Summary::default();
    for run in log.runs {
        let tool = display_text(&run.tool.driver.name, 64);
        let rules: HashMap<&str, &Rule> = run
            .tool
            .driver
            .rules
            .iter()
            .map(|r| (r.id.as_str(), r))
            .collect();
        for r in &run.results {
            if r.suppressions
                .iter()
                .any(|s| s.status.as_deref().is_none_or(|st| st == "accepted"))
            {
                summary.suppressed_in_source += 1;
                continue;
            }
            let rule_id = r
                .rule_id
                .clone()
                .or_else(|| {
                    r.rule_index
                        .and_then(|i| run.tool.driver.rules.get(i))
                        .map(|rule| rule.id.clone())
                })
                .unwrap_or_default();
            let rule = rules.get(rule_id.as_str());
            // SARIF §3.27.10: absent level -> the rule's default level -> warning.
            let level = r
                .level
                .or_else(|| rule.and_then(|x| x.default_configuration.as_ref()?.level))
                .unwrap_or(Level::Warning);
            if level == Level::None {
                continue;
            }
            if let Some(s) = allow_by_rule.get(rule_id.as_str()) {
                if s.expires >= today {
                    *summary.allowed.entry(rule_id).or_default() += 1;
                    continue;
                }
                if !summary.expired.contains(s) {
                    summary.expired.push((*s).clone());
                }
            }
            let location = r.locations.first().and_then(|l| {
                let p = l.physical.as_ref()?;
                let uri = display_text(p.artifact.as_ref()?.uri.as_deref()?, 200);
                Some(match p.region.as_ref().and_then(|r| r.start_line) {
                    Some(line) => format!("{uri}:{line}"),
                    None => uri,
                })
            });
            summary.issues.push(Issue {
                tool: tool.clone(),
                rule_id: display_text(&rule_id, 128),
                level,
                security_severity: rule
                    .and_then(|x| x.properties.as_ref())
                    .and_then(security_severity),
                message: display_text(r.message.text.as_deref().unwrap_or(""), 200),
                location,
            });
        }
    }
    summary.issues.sort_by(|a, b| {
        b.level.cmp(&a.level).then(
            b.security_severity
                .unwrap_or(0.0)
                .total_cmp(&a.security_severity.unwrap_or(0.0)),
        )
    });
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn log(results: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": "scanner", "rules": [
                    {"id": "R1", "defaultConfiguration": {"level": "error"},
                     "properties": {"security-severity": "9.1"}},
                    {"id": "R2"}
                ]}},
                "results": results
            }]
        }))
        .unwrap()
    }

    #[test]
    fn levels_default_to_the_rule_then_to_warning() {
        let s = summarise(
            &log(serde_json::json!([
                {"ruleId": "R1", "message": {"text": "a"}},
                {"ruleId": "R2", "message": {"text": "b"}},
                {"ruleIndex": 0, "message": {"text": "c"}},
                {"ruleId": "R2", "level": "none", "message": {"text": "d"}}
            ])),
            &[],
            day("2026-01-01"),
        )
        .unwrap();
        assert_eq!(s.counts()[&Level::Error], 2);
        assert_eq!(s.counts()[&Level::Warning], 1);
        assert_eq!(s.issues.len(), 3, "level none does not count");
        assert_eq!(s.issues[0].security_severity, Some(9.1));
    }

    #[test]
    fn allow_list_holds_until_its_expiry_date() {
        let allow = [Suppression {
            rule_id: "R1".into(),
            expires: day("2026-03-31"),
            reason: "vendor fix pending".into(),
        }];
        let bytes = log(serde_json::json!([{"ruleId": "R1", "message": {"text": "x"}}]));
        let before = summarise(&bytes, &allow, day("2026-03-31")).unwrap();
        assert!(before.issues.is_empty());
        assert_eq!(before.allowed["R1"], 1);
        let after = summarise(&bytes, &allow, day("2026-04-01")).unwrap();
        assert_eq!(after.issues.len(), 1);
        assert_eq!(after.expired, allow);
    }

    #[test]
    fn only_accepted_suppressions_in_source_suppress() {
        let s = summarise(
            &log(serde_json::json!([
                {"ruleId": "R2", "suppressions": [{"kind": "inSource"}]},
                {"ruleId": "R2", "suppressions": [{"kind": "external", "status": "rejected"}]}
            ])),
            &[],
            day("2026-01-01"),
        )
        .unwrap();
        assert_eq!(s.suppressed_in_source, 1);
        assert_eq!(s.issues.len(), 1);
    }

    #[test]
    fn other_versions_and_non_sarif_are_refused() {
        assert!(matches!(
            summarise(br#"{"version":"2.0.0","runs":[]}"#, &[], day("2026-01-01")),
            Err(SarifError::Version(_))
        ));
        assert!(matches!(
            summarise(b"<xml/>", &[], day("2026-01-01")),
            Err(SarifError::Json(_))
        ));
    }
}
