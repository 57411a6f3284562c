//! Function settings, read from the environment the SAM template sets. Pure: the lookup is
//! passed in, so tests need not touch the process environment.

use vigil_core::domain::Mode;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value: {why}")]
    Invalid { name: &'static str, why: String },
}

pub const TABLE: &str = "VIGIL_TABLE";
pub const TOPIC_ARN: &str = "VIGIL_TOPIC_ARN";
pub const KILL_SWITCH_PARAMETER: &str = "VIGIL_KILL_SWITCH_PARAMETER";
pub const MODE: &str = "VIGIL_MODE";
pub const WATCH_TAG: &str = "VIGIL_WATCH_TAG";
/// The stack's own account: events about any other are refused (`!Ref AWS::AccountId`).
pub const ACCOUNT_ID: &str = "VIGIL_ACCOUNT_ID";
pub const PROTECT_TAG: &str = "VIGIL_PROTECT_TAG";
/// GuardDuty findings below this severity (1.0 to 10.0) are ignored.
pub const GUARDDUTY_MIN_SEVERITY: &str = "VIGIL_GUARDDUTY_MIN_SEVERITY";
/// The products whose Security Hub findings ingest takes (comma-separated `ProductName`s).
pub const SECURITY_HUB_PRODUCTS: &str = "VIGIL_SECURITY_HUB_PRODUCTS";
pub const POLICY_PARAMETER: &str = "VIGIL_POLICY_PARAMETER";
/// The operators' detection rules override (Sigma YAML added to the bundled pack).
pub const RULES_PARAMETER: &str = "VIGIL_RULES_PARAMETER";
/// The audit trail's bucket (records under `audit/`).
pub const AUDIT_BUCKET: &str = "VIGIL_AUDIT_BUCKET";
/// `on` makes every incident people are told of a Security Hub finding (remediate, approve).
pub const SECURITY_HUB: &str = "VIGIL_SECURITY_HUB";
/// `on` makes every operations incident people are told of an OpsCenter OpsItem.
pub const OPSCENTER: &str = "VIGIL_OPSCENTER";
/// The stack's partition (`aws`, `aws-cn`, `aws-us-gov`), for the ARNs Vigil writes.
pub const PARTITION: &str = "VIGIL_PARTITION";
/// The pull's detector states, kept between pulls (one object per instance under `detector/`).
pub const DETECTOR_BUCKET: &str = "VIGIL_DETECTOR_BUCKET";
/// The approve function's URL and the SecureString parameter holding the links' key.
pub const APPROVAL_URL: &str = "VIGIL_APPROVAL_URL";
pub const APPROVAL_KEY_PARAMETER: &str = "VIGIL_APPROVAL_KEY_PARAMETER";
/// The stack's SSM documents and the role Automation assumes.
pub const RESTART_DOCUMENT: &str = "VIGIL_RESTART_DOCUMENT";
pub const DEACTIVATE_KEY_DOCUMENT: &str = "VIGIL_DEACTIVATE_KEY_DOCUMENT";
pub const QUARANTINE_DOCUMENT: &str = "VIGIL_QUARANTINE_DOCUMENT";
pub const AUTOMATION_ROLE_ARN: &str = "VIGIL_AUTOMATION_ROLE_ARN";
/// The undo runbooks and the role they run as: set on the approve function only, so no other
/// function can release a quarantine or activate a key again.
pub const RELEASE_DOCUMENT: &str = "VIGIL_RELEASE_DOCUMENT";
pub const REACTIVATE_KEY_DOCUMENT: &str = "VIGIL_REACTIVATE_KEY_DOCUMENT";
pub const UNDO_ROLE_ARN: &str = "VIGIL_UNDO_ROLE_ARN";
/// The named approvers' URL (IAM authentication), which the outcome email names for an undo.
pub const APPROVER_URL: &str = "VIGIL_APPROVER_URL";
/// The gate's approval topic: it answers only approval actions that notify this topic.
pub const APPROVAL_TOPIC_ARN: &str = "VIGIL_APPROVAL_TOPIC_ARN";
/// The member accounts Vigil acts in (comma-separated 12-digit ids), each through the role
/// named by [`MEMBER_ROLE_NAME`] that its member stack deploys.
pub const MEMBER_ACCOUNTS: &str = "VIGIL_MEMBER_ACCOUNTS";
pub const MEMBER_ROLE_NAME: &str = "VIGIL_MEMBER_ROLE_NAME";

/// Seconds per datapoint the metric pull reads: 60 where EC2's detailed monitoring is on, 300
/// on basic monitoring ([`vigil_core::metrics::PERIODS`]).
pub const METRIC_PERIOD: &str = "VIGIL_METRIC_PERIOD";

/// Reads the pull's period: unset is 60 (one-minute points); anything but a period of
/// [`vigil_core::metrics::PERIODS`] is refused.
pub fn metric_period(lookup: &impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    let Some(text) = optional(lookup, METRIC_PERIOD) else {
        return Ok(60);
    };
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|p| vigil_core::metrics::PERIODS.contains(p))
        .ok_or_else(|| ConfigError::Invalid {
            name: METRIC_PERIOD,
            why: format!(
                "{:?} is not one of {:?} seconds",
                vigil_core::names::display_text(&text, 32),
                vigil_core::metrics::PERIODS
            ),
        })
}

/// Where the pull reads the watched instances' telemetry: `metrics` (CloudWatch, the default)
/// or `lines` ([`vigil_core::metrics::lines`], from the log group [`TELEMETRY_GROUP`] names).
pub const TELEMETRY: &str = "VIGIL_TELEMETRY";
pub const TELEMETRY_GROUP: &str = "VIGIL_TELEMETRY_GROUP";

/// The pull's source of telemetry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Telemetry {
    /// CloudWatch's metrics (GetMetricData).
    Metrics,
    /// The instances' telemetry lines in this log group (the same name in member accounts).
    Lines { group: String },
}

/// Reads the pull's source: unset is `metrics`. `lines` needs its log group (a CloudWatch Logs
/// name) and one-minute points ([`METRIC_PERIOD`] unset or 60: the lines are one a minute).
pub fn telemetry(lookup: &impl Fn(&str) -> Option<String>) -> Result<Telemetry, ConfigError> {
    match optional(lookup, TELEMETRY).as_deref().map(str::trim) {
        None | Some("metrics") => Ok(Telemetry::Metrics),
        Some("lines") => {
            let group = required(lookup, TELEMETRY_GROUP)?;
            let valid = group.starts_with('/')
                && group.len() <= 512
                && group
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_./#-".contains(&b));
            if !valid {
                return Err(ConfigError::Invalid {
                    name: TELEMETRY_GROUP,
                    why: format!(
                        "{:?} is not a log group name",
                        vigil_core::names::display_text(&group, 64)
                    ),
                });
            }
            if metric_period(lookup)? != 60 {
                return Err(ConfigError::Invalid {
                    name: METRIC_PERIOD,
                    why: "the telemetry lines are one a minute: the period is 60".into(),
                });
            }
            Ok(Telemetry::Lines { group })
        }
        Some(other) => Err(ConfigError::Invalid {
            name: TELEMETRY,
            why: format!(
                "{:?} is neither metrics nor lines",
                vigil_core::names::display_text(other, 32)
            ),
        }),
    }
}

/// The stack's `ScheduleRate`, the metric pull's schedule expression.
pub const SCHEDULE_RATE: &str = "VIGIL_SCHEDULE_RATE";

/// Minutes between scheduled pulls, from a `rate(<n> minute[s]|hour[s]|day[s])` expression;
/// `None` when unset or a `cron(...)` expression (its intervals need not be even). A rate
/// that does not parse is refused.
pub fn schedule_minutes(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<u32>, ConfigError> {
    let Some(text) = optional(lookup, SCHEDULE_RATE) else {
        return Ok(None);
    };
    let text = text.trim();
    if text.starts_with("cron(") {
        return Ok(None);
    }
    let invalid = || ConfigError::Invalid {
        name: SCHEDULE_RATE,
        why: format!(
            "{:?} is not rate(<n> minutes|hours|days)",
            vigil_core::names::display_text(text, 64)
        ),
    };
    let inner = text
        .strip_prefix("rate(")
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(invalid)?;
    let (n, unit) = inner.trim().split_once(' ').ok_or_else(invalid)?;
    let n: u32 = n.parse().ok().filter(|n| *n > 0).ok_or_else(invalid)?;
    let per = match unit.trim() {
        "minute" | "minutes" => 1,
        "hour" | "hours" => 60,
        "day" | "days" => 1440,
        _ => return Err(invalid()),
    };
    n.checked_mul(per).map(Some).ok_or_else(invalid)
}

/// Reads an optional variable (unset or blank: `None`).
pub fn optional(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

/// Reads a required variable.
pub fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, ConfigError> {
    lookup(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or(ConfigError::Missing(name))
}

/// Reads the deployment's mode (`dry-run` or `enforce`). Absent means dry-run.
pub fn mode(lookup: &impl Fn(&str) -> Option<String>) -> Result<Mode, ConfigError> {
    match lookup(MODE).as_deref().map(str::trim) {
        None | Some("") | Some("dry-run") => Ok(Mode::DryRun),
        Some("enforce") => Ok(Mode::Enforce),
        Some(other) => Err(ConfigError::Invalid {
            name: MODE,
            why: format!("{other:?} is neither dry-run nor enforce"),
        }),
    }
}

/// Reads an optional number within `[lo, hi]`.
pub fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    lo: f64,
    hi: f64,
) -> Result<Option<f64>, ConfigError> {
    match optional(lookup, name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(Some(x)),
            _ => Err(ConfigError::Invalid {
                name,
                why: format!("{v:?} is not a number from {lo} to {hi}"),
            }),
        },
    }
}

/// Reads the member accounts: 12-digit account ids, comma-separated; anything else is refused
/// (a function with a malformed list does not start).
pub fn member_accounts(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let Some(list) = optional(lookup, MEMBER_ACCOUNTS) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::Invalid {
                name: MEMBER_ACCOUNTS,
                why: format!(
                    "{:?} is not a 12-digit account id",
                    vigil_core::names::display_text(id, 32)
                ),
            });
        }
        if !out.iter().any(|have| have == id) {
            out.push(id.to_owned());
        }
    }
    Ok(out)
}

/// The process environment as a lookup.
pub fn from_process(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod number_tests {
    use super::*;

    #[test]
    fn the_schedule_is_read_in_minutes_from_a_rate() {
        let env = |v: &'static str| move |_: &str| Some(v.to_owned());
        assert_eq!(schedule_minutes(&|_: &str| None).unwrap(), None);
        assert_eq!(schedule_minutes(&env("rate(5 minutes)")).unwrap(), Some(5));
        assert_eq!(schedule_minutes(&env("rate(1 minute)")).unwrap(), Some(1));
        assert_eq!(
            schedule_minutes(&env(" rate(2 hours) ")).unwrap(),
            Some(120)
        );
        assert_eq!(schedule_minutes(&env("rate(1 day)")).unwrap(), Some(1440));
        assert_eq!(schedule_minutes(&env("cron(0/5 * * * ? *)")).unwrap(), None);
        for bad in [
            "rate(0 minutes)",
            "rate(5)",
            "rate(five minutes)",
            "rate(5 weeks)",
            "5 minutes",
            "rate(4294967295 days)",
        ] {
            let err = schedule_minutes(&env(bad)).unwrap_err();
            assert!(err.to_string().contains(SCHEDULE_RATE), "{bad}: {err}");
        }
    }

    #[test]
    fn the_telemetry_source_is_metrics_or_lines_with_their_group_at_one_minute() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(telemetry(&env(&[])).unwrap(), Telemetry::Metrics);
        assert_eq!(
            telemetry(&env(&[(TELEMETRY, "metrics")])).unwrap(),
            Telemetry::Metrics
        );
        assert_eq!(
            telemetry(&env(&[
                (TELEMETRY, "lines"),
                (TELEMETRY_GROUP, "/vigil/telemetry-lines"),
                (METRIC_PERIOD, "60"),
            ]))
            .unwrap(),
            Telemetry::Lines {
                group: "/vigil/telemetry-lines".into()
            }
        );
        for (bad, names) in [
            (&[(TELEMETRY, "logs")][..], TELEMETRY),
            (&[(TELEMETRY, "lines")][..], TELEMETRY_GROUP),
            (
                &[(TELEMETRY, "lines"), (TELEMETRY_GROUP, "/a group")][..],
                TELEMETRY_GROUP,
            ),
            (
                &[(TELEMETRY, "lines"), (TELEMETRY_GROUP, "vigil")][..],
                TELEMETRY_GROUP,
            ),
            (
                &[
                    (TELEMETRY, "lines"),
                    (TELEMETRY_GROUP, "/vigil/telemetry-lines"),
                    (METRIC_PERIOD, "300"),
                ][..],
                METRIC_PERIOD,
            ),
        ] {
            let pairs: &'static [(&'static str, &'static str)] = bad;
            let err = telemetry(&env(pairs)).unwrap_err();
            assert!(err.to_string().contains(names), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_metric_period_is_one_minute_or_five_or_refused() {
        let env = |v: &'static str| move |_: &str| Some(v.to_owned());
        assert_eq!(metric_period(&|_: &str| None).unwrap(), 60);
        assert_eq!(metric_period(&env(" ")).unwrap(), 60);
        assert_eq!(metric_period(&env("300")).unwrap(), 300);
        assert_eq!(metric_period(&env(" 60 ")).unwrap(), 60);
        for bad in ["120", "0", "5m", "-60", "3000000000000"] {
            let err = metric_period(&env(bad)).unwrap_err();
            assert!(err.to_string().contains(METRIC_PERIOD), "{bad}: {err}");
        }
    }

    #[test]
    fn member_accounts_are_twelve_digit_ids_or_refused() {
        let env = |v: &'static str| move |_: &str| Some(v.to_owned());
        assert_eq!(
            member_accounts(&env(" 111111111111, 222222222222,111111111111,")).unwrap(),
            ["111111111111", "222222222222"]
        );
        assert!(member_accounts(&|_: &str| None).unwrap().is_empty());
        for bad in ["1111", "11111111111a", "111111111111;222222222222", "*"] {
            assert!(member_accounts(&env(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn numbers_are_read_within_their_range() {
        let env = |v: &'static str| move |_: &str| Some(v.to_owned());
        assert_eq!(
            number(&env("4.5"), GUARDDUTY_MIN_SEVERITY, 1.0, 10.0).unwrap(),
            Some(4.5)
        );
        assert_eq!(
            number(&|_: &str| None, GUARDDUTY_MIN_SEVERITY, 1.0, 10.0).unwrap(),
            None
        );
        for bad in ["0", "11", "NaN", "high", "inf"] {
            assert!(
                number(&env(bad), GUARDDUTY_MIN_SEVERITY, 1.0, 10.0).is_err(),
                "{bad}"
            );
        }
    }
}
