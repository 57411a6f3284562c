//! The payloads the stages hand each other (the state machine's data): the contract between
//! `ingest`, `score`, `decide` and `remediate`.

use serde::{Deserialize, Serialize};

use crate::domain::{Decision, Observation, Scored};

/// `ingest`'s output and `score`'s input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observed {
    /// The EventBridge event this came from.
    #[serde(default)]
    pub event_id: Option<String>,
    pub observations: Vec<Observation>,
    /// Why the event produced nothing, when it was ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// `score`'s output and `decide`'s input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoredBatch {
    #[serde(default)]
    pub event_id: Option<String>,
    pub scored: Vec<Scored>,
    /// Who is deciding (the state machine's execution id): a retry of the same execution
    /// re-wins its own claims instead of seeing them as duplicates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
}

/// `decide`'s output: one decision per incident; the state machine maps `remediate` over them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decisions {
    pub decisions: Vec<Decision>,
}
