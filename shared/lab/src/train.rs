//! Training of the bundled classifiers from the generator, with a fixed seed: the same seed
//! gives the same artifact, byte for byte. Pure: `vigil train` writes what this returns.

use sha2::{Digest, Sha256};

use crate::generator::{cloudtrail, telemetry};
use rand::RngExt;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{DecisionTreeClassifierParameters, SplitCriterion};
use vigil_core::features::{IDENTITY_V2, INSTANCE_V1, identity, instance};
use vigil_core::models::classifier::{Artifact, Card, Prediction, TRAIN_COMMAND, evaluate};
use vigil_core::models::forest::{Forest, ForestConfig, ForestError, Tree, argmax};

/// How one classifier is trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Seeds the training data and the forest; held-out data uses `seed + 1`.
    pub seed: u64,
    pub train_per_class: usize,
    pub test_per_class: usize,
    pub forest: ForestConfig,
}

/// The failure-mode classifier's training.
pub const FAILURE_MODE: TrainConfig = TrainConfig {
    seed: 20_261_122,
    train_per_class: 600,
    test_per_class: 300,
    forest: ForestConfig {
        trees: 40,
        max_depth: 14,
        min_samples_leaf: 2,
        seed: 20_261_122,
    },
};

/// Healthy instances are this many times more of the failure-mode training set than each
/// failure (besides their balanced share): in deployment nearly every classification is of
/// a healthy instance, and a balanced training set names failures on healthy ones too often.
pub const FAILURE_MODE_EXTRA_NORMAL: usize = 4;

/// The threat classifier's training.
pub const THREAT: TrainConfig = TrainConfig {
    seed: 20_261_123,
    train_per_class: 0,
    test_per_class: 0,
    forest: ForestConfig {
        trees: 40,
        max_depth: 14,
        min_samples_leaf: 2,
        seed: 20_261_123,
    },
};

/// The share of benign CloudTrail events the threat classifier may alert on (held-out data).
pub const THREAT_BENIGN_ALERT_RATE: f64 = 0.0005;

/// SHA-256 over a data set's rows and labels.
pub fn fingerprint(x: &[Vec<f64>], y: &[u32]) -> String {
    let mut h = Sha256::new();
    for (row, label) in x.iter().zip(y) {
        for v in row {
            h.update(v.to_le_bytes());
        }
        h.update(label.to_le_bytes());
    }
    hex::encode(h.finalize())
}

fn predict_all(forest: &Forest, x: &[Vec<f64>]) -> Result<Vec<Prediction>, ForestError> {
    Ok(forest
        .probabilities_many(x)?
        .into_iter()
        .map(|probabilities| {
            let (class, probability) = argmax(&probabilities);
            Prediction {
                class,
                probability,
                probabilities,
            }
        })
        .collect())
}

struct Spec<'a> {
    name: &'a str,
    schema: &'a str,
    features: &'a [&'a str],
    classes: Vec<String>,
    data: &'a str,
    /// For a detector with a benign class 0: the largest share of benign held-out rows that
    /// may reach the alert threshold.
    benign_fp_target: Option<f64>,
}

/// Per feature, the median and robust spread (scaled MAD, floored at a tenth of the standard
/// deviation and at 1e-3) over the class-0 rows.
fn healthy_baselines(x: &[Vec<f64>], y: &[u32]) -> (Vec<f64>, Vec<f64>) {
    let width = x.first().map_or(0, Vec::len);
    let median = |mut v: Vec<f64>| -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut baselines = Vec::with_capacity(width);
    let mut spreads = Vec::with_capacity(width);
    for i in 0..width {
        let col: Vec<f64> = x
            .iter()
            .zip(y)
            .filter(|(_, c)| **c == 0)
            .map(|(r, _)| r[i])
            .collect();
        let n = col.len().max(1) as f64;
        let mean = col.iter().sum::<f64>() / n;
        let sd = (col.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let m = median(col.clone());
        let mad = median(col.iter().map(|v| (v - m).abs()).collect()) * 1.4826;
        baselines.push(m);
        spreads.push(mad.max(sd * 0.1).max(1e-3));
    }
    (baselines, spreads)
}

/// The lowest threshold on P(not benign) at which at most `target` of the benign (class 0)
/// rows would alert.
fn benign_threshold(truth: &[u32], predicted: &[Prediction], target: f64) -> f64 {
    let mut benign: Vec<f64> = truth
        .iter()
        .zip(predicted)
        .filter(|(t, _)| **t == 0)
        .map(|(_, p)| 1.0 - p.probabilities.first().copied().unwrap_or(1.0))
        .collect();
    benign.sort_by(|a, b| b.total_cmp(a));
    let allowed = (benign.len() as f64 * target).floor() as usize;
    // Just above the (allowed + 1)-th highest benign score, and never below one half.
    benign.get(allowed).map_or(0.5, |v| (v + 1e-9).max(0.5))
}

/// Fits a forest of `config.trees` trees, each on a bootstrap sample of the rows.
pub fn fit_forest(x: &[Vec<f64>], y: &[u32], config: ForestConfig) -> Result<Forest, ForestError> {
    let features = x.first().map_or(0, Vec::len);
    if x.is_empty() || x.len() != y.len() || features == 0 || x.iter().any(|r| r.len() != features)
    {
        return Err(ForestError::Shape);
    }
    let classes = y.iter().copied().max().map_or(0, |m| m as usize + 1);
    let mut rng = crate::generator::rng(config.seed);
    let mut trees = Vec::with_capacity(config.trees);
    for t in 0..config.trees {
        // smartcore's trees answer with the label values themselves, so a class missing
        // from one bootstrap only means that tree never votes for it.
        let idx: Vec<usize> = (0..x.len()).map(|_| rng.random_range(0..x.len())).collect();
        let by: Vec<u32> = idx.iter().map(|&i| y[i]).collect();
        let bx: Vec<Vec<f64>> = idx.iter().map(|&i| x[i].clone()).collect();
        let matrix =
            DenseMatrix::from_2d_vec(&bx).map_err(|e| ForestError::Smartcore(e.to_string()))?;
        let params = DecisionTreeClassifierParameters {
            criterion: SplitCriterion::Gini,
            max_depth: Some(config.max_depth),
            min_samples_leaf: config.min_samples_leaf,
            min_samples_split: config.min_samples_leaf * 2,
            seed: Some(config.seed.wrapping_add(t as u64)),
        };
        trees.push(
            Tree::fit(&matrix, &by, params).map_err(|e| ForestError::Smartcore(e.to_string()))?,
        );
    }
    Ok(Forest::new(classes, features, trees))
}

fn fit(
    spec: Spec<'_>,
    c: TrainConfig,
    train: (Vec<Vec<f64>>, Vec<u32>),
    test: (Vec<Vec<f64>>, Vec<u32>),
) -> Result<Artifact, ForestError> {
    let (x, y) = train;
    let forest = fit_forest(&x, &y, c.forest)?;
    let (baselines, spreads) = healthy_baselines(&x, &y);
    let predicted = predict_all(&forest, &test.0)?;
    let held_out = evaluate(&spec.classes, &test.1, &predicted);
    let alert_threshold = match spec.benign_fp_target {
        Some(target) => benign_threshold(&test.1, &predicted, target),
        None => 0.5,
    };
    Ok(Artifact {
        card: Card {
            name: spec.name.to_owned(),
            version: 1,
            schema: spec.schema.to_owned(),
            features: spec.features.iter().map(|s| (*s).to_owned()).collect(),
            classes: spec.classes,
            data: spec.data.to_owned(),
            seed: c.seed,
            train_samples: y.len() as u32,
            data_fingerprint: fingerprint(&x, &y),
            forest: c.forest,
            baselines,
            spreads,
            alert_threshold,
            held_out,
            command: TRAIN_COMMAND.to_owned(),
        },
        forest,
    })
}

/// The failure-mode classifier's training data (`seed`) and held-out data (`seed + 1`).
pub fn failure_mode_data(c: TrainConfig) -> [(Vec<Vec<f64>>, Vec<u32>); 2] {
    let t = telemetry::TelemetryConfig::default();
    [
        telemetry::dataset_with_normal(
            c.seed,
            c.train_per_class,
            c.train_per_class * FAILURE_MODE_EXTRA_NORMAL,
            t,
        ),
        telemetry::dataset(c.seed.wrapping_add(1), c.test_per_class, t),
    ]
}

/// Trains the failure-mode classifier.
pub fn failure_mode(c: TrainConfig) -> Result<Artifact, ForestError> {
    let [train, test] = failure_mode_data(c);
    fit(
        Spec {
            name: "failure-mode",
            schema: INSTANCE_V1,
            features: &instance::NAMES,
            classes: telemetry::CLASSES
                .iter()
                .map(|m| format!("{m:?}"))
                .collect(),
            benign_fp_target: None,
            data: "generator::telemetry: healthy and faulty instances (one-minute points, an \
                   hour per sample), noise and bursts calibrated on NAB realAWSCloudwatch",
        },
        c,
        train,
        test,
    )
}

/// The threat classifier's training data (`seed`) and held-out data (`seed + 1`).
pub fn threat_data(c: TrainConfig) -> [(Vec<Vec<f64>>, Vec<u32>); 2] {
    [
        cloudtrail::dataset(c.seed),
        cloudtrail::dataset(c.seed.wrapping_add(1)),
    ]
}

/// Trains the threat classifier.
pub fn threat(c: TrainConfig) -> Result<Artifact, ForestError> {
    let [train, test] = threat_data(c);
    fit(
        Spec {
            name: "threat",
            schema: IDENTITY_V2,
            features: &identity::NAMES,
            classes: cloudtrail::CLASSES
                .iter()
                .map(|t| format!("{t:?}"))
                .collect(),
            benign_fp_target: Some(THREAT_BENIGN_ALERT_RATE),
            data: "generator::cloudtrail: benign users, roles and services over weeks, with \
                   compromised principals' attack activity mixed in",
        },
        c,
        train,
        test,
    )
}
