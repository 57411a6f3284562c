//! The detection rules in force: the bundled pack, or the bundled pack with the operators'
//! override (an SSM parameter of Sigma YAML, read at most once a minute).
//!
//! Validated as the policy is: an override that does not load whole, or whose rules fail
//! their own test events, is refused with every error naming the rule and the field, logged
//! once per version with the `vigil_rules_refused` counter (an alarm tells people), and the
//! last good set stays in force. Never falls open: a refused or unreadable override leaves
//! the rules as they were, never without rules.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_rules::Pack;

use crate::ports::ReadRules;

/// How long a fetched rules override is used before it is read again.
pub const RULES_TTL: Duration = Duration::from_secs(60);

/// The rules in force and the version they came from.
pub struct RuleStore {
    ttl: Duration,
    state: Mutex<State>,
}

struct State {
    current: Arc<Pack>,
    /// The override version in force (`None`: the bundled pack).
    version: Option<String>,
    fetched: Option<Instant>,
    /// The override version last refused, so it is compiled and reported once.
    refused: Option<String>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RuleStore {
    pub fn new(bundled: Arc<Pack>, ttl: Duration) -> Self {
        RuleStore {
            ttl,
            state: Mutex::new(State {
                current: bundled,
                version: None,
                fetched: None,
                refused: None,
            }),
        }
    }

    /// The override version in force, `None` for the bundled pack.
    pub fn version(&self) -> Option<String> {
        lock(&self.state).version.clone()
    }

    /// The override version last refused, if any.
    pub fn refused(&self) -> Option<String> {
        lock(&self.state).refused.clone()
    }

    /// The rules to match with, reading the override when the last read is older than the
    /// store's time to live.
    pub async fn current(&self, source: &impl ReadRules) -> Arc<Pack> {
        let fresh = lock(&self.state)
            .fetched
            .is_some_and(|t| t.elapsed() < self.ttl);
        if !fresh {
            match source.read_rules().await {
                Ok(read) => self.apply(read),
                Err(e) => {
                    tracing::warn!(error = %vigil_core::error_chain(&e), "rules override unreadable: keeping the rules in force");
                }
            }
            lock(&self.state).fetched = Some(Instant::now());
        }
        lock(&self.state).current.clone()
    }

    fn apply(&self, read: Option<(String, String)>) {
        let Some((text, version)) = read else {
            // The override was removed: back to the bundled pack.
            if lock(&self.state).version.is_some()
                && let Ok(bundled) = Pack::bundled()
            {
                let mut s = lock(&self.state);
                s.current = bundled.clone();
                s.version = None;
                s.refused = None;
            }
            return;
        };
        {
            let s = lock(&self.state);
            if s.version.as_deref() == Some(version.as_str())
                || s.refused.as_deref() == Some(version.as_str())
            {
                return;
            }
        }
        let name = format!("ssm:v{version}");
        match Pack::with_override(&name, &text) {
            Ok(pack) => {
                tracing::info!(version, rules = pack.len(), "rules override in force");
                let mut s = lock(&self.state);
                s.current = Arc::new(pack);
                s.version = Some(version);
                s.refused = None;
            }
            Err(errors) => {
                let why: Vec<String> = errors.iter().map(ToString::to_string).collect();
                let mut s = lock(&self.state);
                let kept = s.version.as_ref().map_or_else(
                    || "the bundled pack".to_owned(),
                    |v| format!("override v{v}"),
                );
                tracing::error!(vigil_rules_refused = 1, version, errors = ?why, kept, "rules override refused");
                s.refused = Some(version);
            }
        }
    }
}
