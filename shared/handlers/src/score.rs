//! `score`: observations in, scored observations out. Pure: the model is loaded once per
//! process and only computes here.

use vigil_core::domain::Scored;
use vigil_core::models::Scorer;
use vigil_core::stages::{Observed, ScoredBatch};

/// Scores every observation of a batch.
pub fn handle(input: Observed, model: &impl Scorer) -> ScoredBatch {
    let scored = input
        .observations
        .into_iter()
        .map(|observation| Scored {
            score: model.score(&observation),
            observation,
        })
        .collect();
    ScoredBatch {
        event_id: input.event_id,
        scored,
        execution_id: None,
    }
}
