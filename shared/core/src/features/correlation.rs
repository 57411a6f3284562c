//! Correlation rules (Sigma `event_count` and `value_count`) over matches of detection rules,
//! with their state kept in the principal histories of the state table, so a burst spread over
//! many invocations is still one burst.
//!
//! A correlation counts the signals a base rule matched within its timespan, per group: the
//! principal (its history item) or the source address (a history item of its own, keyed
//! `address:<ip>`). `value_count` counts distinct values of a field instead (hashed, so a
//! window's size does not depend on what an attacker sends). When the condition holds the
//! correlation's own hit joins the signal and its window starts again: one hit per burst.
//! Bounded: at most [`MAX_WINDOWS`] windows per history and [`MAX_ENTRIES`] entries each
//! (about 15 KB in the history item at most).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{RuleHit, Signal, SignalKind};

/// Windows kept per history, and entries per window.
pub const MAX_WINDOWS: usize = 8;
pub const MAX_ENTRIES: usize = 32;

/// The fields a correlation may count distinct values of, as a CloudTrail record names them.
pub const FIELDS: [&str; 8] = [
    "eventName",
    "eventSource",
    "sourceIPAddress",
    "userAgent",
    "awsRegion",
    "errorCode",
    "userIdentity.arn",
    "userIdentity.userName",
];

/// What a correlation groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Group {
    /// The principal the signal is about (`userIdentity.arn`).
    Principal,
    /// The address the call came from (`sourceIPAddress`).
    SourceAddress,
}

/// What a correlation counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Count {
    Events,
    /// Distinct values of a field of [`FIELDS`], or `requestParameters.<name>`.
    Distinct(String),
}

/// One correlation rule, as the rule pack read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    /// What its hit reports.
    pub hit: RuleHit,
    /// The detection rules (names) whose matches it counts.
    pub bases: Vec<String>,
    pub group: Group,
    pub count: Count,
    pub within_seconds: u32,
    pub at_least: u32,
}

/// One counted signal: when, and the hash of the counted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    pub value: u64,
}

/// A history's correlation windows, by correlation rule name.
pub type Windows = BTreeMap<String, Vec<Entry>>;

fn hash(s: &str) -> u64 {
    let d = Sha256::digest(s.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    u64::from_be_bytes(b)
}

/// A field of a CloudTrail call or sign-in, by its record name.
pub fn field(signal: &Signal, name: &str) -> Option<String> {
    let (source, event, principal, ip, agent, region, error, request) = match &signal.kind {
        SignalKind::ApiCall(c) => (
            c.event_source.as_str(),
            c.event_name.as_str(),
            &c.principal,
            c.source_ip.as_str(),
            c.user_agent.as_str(),
            c.region.as_str(),
            c.error_code.as_deref(),
            c.request.as_slice(),
        ),
        SignalKind::ConsoleSignIn {
            principal,
            source_ip,
            user_agent,
            success,
            ..
        } => (
            "signin.amazonaws.com",
            "ConsoleLogin",
            principal,
            source_ip.as_str(),
            user_agent.as_str(),
            "",
            (!success).then_some("Failed authentication"),
            &[][..],
        ),
        _ => return None,
    };
    if let Some(param) = name.strip_prefix("requestParameters.") {
        let prefix = format!("{param}=");
        let values: Vec<&str> = request
            .iter()
            .filter_map(|kv| kv.strip_prefix(prefix.as_str()))
            .collect();
        return (!values.is_empty()).then(|| values.join(","));
    }
    let v = match name {
        "eventName" => event,
        "eventSource" => source,
        "sourceIPAddress" => ip,
        "userAgent" => agent,
        "awsRegion" => region,
        "errorCode" => error?,
        "userIdentity.arn" => principal.id.as_str(),
        "userIdentity.userName" => principal.name.as_deref().unwrap_or(principal.id.as_str()),
        _ => return None,
    };
    Some(v.to_owned())
}

impl Correlation {
    /// Whether a base rule matched the signal.
    pub fn counts(&self, signal: &Signal) -> bool {
        signal.rules.iter().any(|h| self.bases.contains(&h.name))
    }

    /// The history the window lives in: the principal's own, or the address's.
    pub fn history_of(&self, signal: &Signal) -> Option<String> {
        match self.group {
            Group::Principal => Some(signal.resource.id.clone()),
            Group::SourceAddress => field(signal, "sourceIPAddress")
                .filter(|ip| !ip.is_empty())
                .map(|ip| format!("address:{ip}")),
        }
    }

    /// Folds the signal into its window; the correlation's hit when its condition now holds
    /// (the window then starts again).
    pub fn fold(&self, windows: &mut Windows, signal: &Signal) -> Option<RuleHit> {
        if !self.counts(signal) {
            return None;
        }
        let value = match &self.count {
            Count::Events => 0,
            Count::Distinct(f) => hash(&field(signal, f)?),
        };
        let at = signal.observed_at;
        if !windows.contains_key(&self.hit.name) && windows.len() >= MAX_WINDOWS {
            // The window idle longest gives way.
            let oldest = windows
                .iter()
                .min_by_key(|(_, e)| e.last().map(|x| x.at))
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                windows.remove(&k);
            }
        }
        let window = windows.entry(self.hit.name.clone()).or_default();
        // Events arrive out of order (EventBridge does not order them): the window ends at the
        // latest time seen, not at this event's.
        let latest = window.iter().map(|e| e.at).max().map_or(at, |l| l.max(at));
        let since = latest - Duration::seconds(i64::from(self.within_seconds));
        window.push(Entry { at, value });
        window.retain(|e| e.at >= since);
        window.sort_by_key(|e| e.at);
        if window.len() > MAX_ENTRIES {
            let excess = window.len() - MAX_ENTRIES;
            window.drain(..excess);
        }
        let n = match self.count {
            Count::Events => window.len(),
            Count::Distinct(_) => {
                let mut v: Vec<u64> = window.iter().map(|e| e.value).collect();
                v.sort_unstable();
                v.dedup();
                v.len()
            }
        };
        (n >= self.at_least as usize).then(|| {
            windows.remove(&self.hit.name);
            self.hit.clone()
        })
    }
}
