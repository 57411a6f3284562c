//! Function settings, read from the environment the SAM template sets. Pure: the lookup is
//! passed in, so tests need not touch the process environment.

use crate::domain::Mode;

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
pub const POLICY_PARAMETER: &str = "VIGIL_POLICY_PARAMETER";
/// The audit trail's bucket (records under `audit/`).
pub const AUDIT_BUCKET: &str = "VIGIL_AUDIT_BUCKET";
/// The approve function's URL and the SecureString parameter holding the links' key.
pub const APPROVAL_URL: &str = "VIGIL_APPROVAL_URL";
pub const APPROVAL_KEY_PARAMETER: &str = "VIGIL_APPROVAL_KEY_PARAMETER";
/// The stack's SSM documents and the role Automation assumes.
pub const RESTART_DOCUMENT: &str = "VIGIL_RESTART_DOCUMENT";
pub const DEACTIVATE_KEY_DOCUMENT: &str = "VIGIL_DEACTIVATE_KEY_DOCUMENT";
pub const AUTOMATION_ROLE_ARN: &str = "VIGIL_AUTOMATION_ROLE_ARN";

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

/// The process environment as a lookup.
pub fn from_process(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
