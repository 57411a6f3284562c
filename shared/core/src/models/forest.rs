//! A bagged forest of smartcore decision trees with class probabilities.
//!
//! smartcore's own `RandomForestClassifier` answers with a hard vote only; the failure-mode
//! and threat classifiers need probabilities, so the forest is assembled here from smartcore's
//! `DecisionTreeClassifier`s, each fitted on a seeded bootstrap sample (by the lab's
//! `train::fit_forest`: training is never compiled into a function), and a class's
//! probability is its (smoothed) share of the trees' votes.

use serde::{Deserialize, Serialize};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::DecisionTreeClassifier;

/// One of smartcore's trees, over f64 features and u32 class labels.
pub type Tree = DecisionTreeClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>;

/// Why a forest could not be trained or asked.
#[derive(Debug, thiserror::Error)]
pub enum ForestError {
    #[error("the training data is empty or its rows differ in length")]
    Shape,
    #[error("a row has {got} features, the model takes {want}")]
    Width { got: usize, want: usize },
    #[error("smartcore: {0}")]
    Smartcore(String),
}

/// How a forest is grown.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestConfig {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// Seeds the bootstrap samples.
    pub seed: u64,
}

/// The trained forest.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forest {
    pub classes: usize,
    pub features: usize,
    trees: Vec<Tree>,
}

impl Forest {
    /// A forest of fitted trees (the lab's `train` fits them), voting among `classes` classes
    /// over rows of `features` values.
    pub fn new(classes: usize, features: usize, trees: Vec<Tree>) -> Forest {
        Forest {
            classes,
            features,
            trees,
        }
    }

    /// Class probabilities of one row: each class's share of the votes, smoothed so that no
    /// class is ever certain on the votes of a finite forest.
    pub fn probabilities(&self, row: &[f64]) -> Result<Vec<f64>, ForestError> {
        Ok(self
            .probabilities_many(std::slice::from_ref(&row.to_vec()))?
            .pop()
            .unwrap_or_default())
    }

    /// Class probabilities of many rows.
    pub fn probabilities_many(&self, rows: &[Vec<f64>]) -> Result<Vec<Vec<f64>>, ForestError> {
        if let Some(r) = rows.iter().find(|r| r.len() != self.features) {
            return Err(ForestError::Width {
                got: r.len(),
                want: self.features,
            });
        }
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let matrix = DenseMatrix::from_2d_vec(&rows.to_vec())
            .map_err(|e| ForestError::Smartcore(e.to_string()))?;
        let mut votes = vec![vec![0.0; self.classes]; rows.len()];
        for tree in &self.trees {
            let predicted = tree
                .predict(&matrix)
                .map_err(|e| ForestError::Smartcore(e.to_string()))?;
            for (v, c) in votes.iter_mut().zip(predicted) {
                if let Some(slot) = v.get_mut(c as usize) {
                    *slot += 1.0;
                }
            }
        }
        // Laplace smoothing with half a vote per class.
        let total = self.trees.len() as f64 + 0.5 * self.classes as f64;
        Ok(votes
            .into_iter()
            .map(|v| v.into_iter().map(|c| (c + 0.5) / total).collect())
            .collect())
    }
}

/// Index and value of the largest probability.
pub fn argmax(p: &[f64]) -> (usize, f64) {
    p.iter()
        .copied()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 { (i, v) } else { best }
        })
}
