//! Trained classifiers as bundled artifacts: a forest with its model card (data, features,
//! metrics and the command that regenerates it), encoded with postcard, embedded in the
//! binary with `include_bytes!` and decoded once per process.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::forest::{Forest, ForestConfig, argmax};

/// The failure-mode classifier over [`crate::features::INSTANCE_V1`].
/// Regenerate with `vigil train` (writes `shared/models/failure_mode.postcard`).
pub type FailureModeClassifier = Artifact;
/// The threat classifier over [`crate::features::IDENTITY_V2`].
/// Regenerate with `vigil train` (writes `shared/models/threat.postcard`).
pub type ThreatClassifier = Artifact;

/// The command that regenerates every bundled artifact.
pub const TRAIN_COMMAND: &str = "cargo run --release -p vigil-cli -- train";

static FAILURE_MODE_BYTES: &[u8] = include_bytes!("../../../models/failure_mode.postcard");
static THREAT_BYTES: &[u8] = include_bytes!("../../../models/threat.postcard");

/// Why a bundled model is unusable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ModelError {
    #[error("the bundled model {name} does not decode: {reason}")]
    Decode { name: &'static str, reason: String },
    #[error("the model {model} takes {want} features of schema {schema}, got {got}")]
    Input {
        model: String,
        schema: String,
        want: usize,
        got: usize,
    },
    #[error("the model {model} failed: {reason}")]
    Predict { model: String, reason: String },
}

/// Precision, recall and F1 of one class on held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    pub class: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: u32,
}

/// How a classifier did on held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub samples: u32,
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Expected calibration error of the top class's probability (10 equal-width bins).
    pub calibration_error: f64,
    pub classes: Vec<ClassReport>,
    /// `confusion[truth][predicted]`.
    pub confusion: Vec<Vec<u32>>,
}

/// What a model is, what it was trained on and how well it does: its model card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub name: String,
    pub version: u32,
    /// The feature schema the model takes, and its feature names in order.
    pub schema: String,
    pub features: Vec<String>,
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// Where the training data came from.
    pub data: String,
    pub seed: u64,
    pub train_samples: u32,
    /// SHA-256 of the training matrix and labels: a regenerated data set must match it.
    pub data_fingerprint: String,
    pub forest: ForestConfig,
    /// Per feature: its median and robust spread over the healthy (class 0) training rows,
    /// against which a score's drivers are explained.
    pub baselines: Vec<f64>,
    pub spreads: Vec<f64>,
    /// The probability at which the model's answer is acted on: for the threat classifier,
    /// P(not benign) at which an event counts as a detection, chosen on held-out data so that
    /// benign events alert at most at the target rate.
    pub alert_threshold: f64,
    /// Measured on data generated with a different seed than the training data.
    pub held_out: Evaluation,
    pub command: String,
}

/// A trained classifier with its card.
#[derive(Debug, Serialize, Deserialize)]
pub struct Artifact {
    pub card: Card,
    pub forest: Forest,
}

/// A classifier's answer for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most probable class's index and probability.
    pub class: usize,
    pub probability: f64,
    /// Every class's probability, in label order.
    pub probabilities: Vec<f64>,
}

impl Artifact {
    /// Encodes the artifact (what `vigil train` writes).
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(self)
    }

    /// Decodes an artifact.
    pub fn decode(bytes: &[u8]) -> Result<Artifact, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// Classifies one feature row of the card's schema.
    pub fn predict(&self, schema: &str, row: &[f64]) -> Result<Prediction, ModelError> {
        if schema != self.card.schema || row.len() != self.forest.features {
            return Err(ModelError::Input {
                model: self.card.name.clone(),
                schema: self.card.schema.clone(),
                want: self.forest.features,
                got: row.len(),
            });
        }
        let probabilities = self
            .forest
            .probabilities(row)
            .map_err(|e| ModelError::Predict {
                model: self.card.name.clone(),
                reason: e.to_string(),
            })?;
        let (class, probability) = argmax(&probabilities);
        Ok(Prediction {
            class,
            probability,
            probabilities,
        })
    }

    /// The features furthest from their healthy baseline (in robust spreads), at most `n`,
    /// with their values and baselines.
    pub fn drivers(&self, row: &[f64], n: usize) -> Vec<crate::domain::Driver> {
        let mut scored: Vec<(f64, usize)> = row
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let base = *self.card.baselines.get(i)?;
                let spread = self.card.spreads.get(i).copied().unwrap_or(1.0).max(1e-9);
                let d = ((v - base) / spread).abs();
                (d.is_finite() && d > 0.0).then_some((d, i))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        scored
            .into_iter()
            .take(n)
            .map(|(_, i)| crate::domain::Driver {
                feature: self.card.features.get(i).cloned().unwrap_or_default(),
                value: row[i],
                baseline: self.card.baselines[i],
            })
            .collect()
    }

    /// Name and version, as scores cite it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.card.name, self.card.version)
    }
}

fn bundled(
    cell: &'static OnceLock<Result<Artifact, ModelError>>,
    name: &'static str,
    bytes: &'static [u8],
) -> Result<&'static Artifact, ModelError> {
    cell.get_or_init(|| {
        Artifact::decode(bytes).map_err(|e| ModelError::Decode {
            name,
            reason: e.to_string(),
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// A card's classes, in label order, as the domain values they name: `vigil train` writes each
/// class as its variant's name, so the models take their classes from the card they were
/// trained with, never from the code that generated the data.
pub fn card_classes<T: Copy + std::fmt::Debug>(
    card: &Card,
    domain: &[T],
) -> Result<Vec<T>, ModelError> {
    card.classes
        .iter()
        .map(|name| {
            domain
                .iter()
                .copied()
                .find(|c| format!("{c:?}") == *name)
                .ok_or_else(|| ModelError::Decode {
                    name: "card",
                    reason: format!(
                        "the model {} names a class {name:?} Vigil does not know",
                        card.name
                    ),
                })
        })
        .collect()
}

/// The bundled failure-mode classifier, decoded on first use.
pub fn failure_mode() -> Result<&'static FailureModeClassifier, ModelError> {
    static CELL: OnceLock<Result<Artifact, ModelError>> = OnceLock::new();
    bundled(&CELL, "failure_mode", FAILURE_MODE_BYTES)
}

/// The bundled threat classifier, decoded on first use.
pub fn threat() -> Result<&'static ThreatClassifier, ModelError> {
    static CELL: OnceLock<Result<Artifact, ModelError>> = OnceLock::new();
    bundled(&CELL, "threat", THREAT_BYTES)
}

/// The bundled artifacts' sizes in bytes: (failure mode, threat).
pub fn bundled_sizes() -> (usize, usize) {
    (FAILURE_MODE_BYTES.len(), THREAT_BYTES.len())
}

/// Scores predictions against the truth.
pub fn evaluate(classes: &[String], truth: &[u32], predicted: &[Prediction]) -> Evaluation {
    let k = classes.len();
    let mut confusion = vec![vec![0u32; k]; k];
    for (t, p) in truth.iter().zip(predicted) {
        if let Some(row) = confusion.get_mut(*t as usize)
            && let Some(cell) = row.get_mut(p.class)
        {
            *cell += 1;
        }
    }
    let mut reports = Vec::with_capacity(k);
    for (c, name) in classes.iter().enumerate() {
        let tp = f64::from(confusion[c][c]);
        let predicted_c: u32 = confusion.iter().map(|r| r[c]).sum();
        let actual_c: u32 = confusion[c].iter().sum();
        let precision = if predicted_c > 0 {
            tp / f64::from(predicted_c)
        } else {
            0.0
        };
        let recall = if actual_c > 0 {
            tp / f64::from(actual_c)
        } else {
            0.0
        };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        reports.push(ClassReport {
            class: name.clone(),
            precision,
            recall,
            f1,
            support: actual_c,
        });
    }
    let n = truth.len().max(1) as f64;
    let correct: u32 = (0..k).map(|c| confusion[c][c]).sum();
    // Expected calibration error over 10 bins of the top probability.
    let mut bins = [(0.0_f64, 0.0_f64, 0u32); 10];
    for (t, p) in truth.iter().zip(predicted) {
        let b = ((p.probability * 10.0) as usize).min(9);
        bins[b].0 += p.probability;
        bins[b].1 += f64::from(u8::from(p.class == *t as usize));
        bins[b].2 += 1;
    }
    let calibration_error = bins
        .iter()
        .filter(|b| b.2 > 0)
        .map(|(conf, acc, count)| {
            let m = f64::from(*count);
            (m / n) * (conf / m - acc / m).abs()
        })
        .sum();
    Evaluation {
        samples: truth.len() as u32,
        accuracy: f64::from(correct) / n,
        macro_f1: reports.iter().map(|r| r.f1).sum::<f64>() / k.max(1) as f64,
        calibration_error,
        classes: reports,
        confusion,
    }
}
