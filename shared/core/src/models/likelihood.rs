//! The streaming detector's second stage: is the recent surprise unusual *for this series*?
//!
//! The short-term mean of a surprise stream (the last [`DetectorConfig::short`] surprises) is
//! compared with the distribution of that mean over the longer past (the last
//! [`DetectorConfig::likelihood_history`] means), and the Gaussian tail probability is mapped
//! to a log scale, as Numenta's anomaly likelihood does, so a noisy series and a quiet one
//! alert at the same threshold. The detector keeps one for the surprise against the recent
//! past and one for the surprise against past days.
//!
//! State: at most `short` surprises and `likelihood_history` means, with running sums; a
//! point costs O(1).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::anomaly::DetectorConfig;

/// `ln(1e-10)`: the log-likelihood scale; a tail probability of 1e-5 maps to 0.5.
const LOG_FLOOR: f64 = -23.025_850_929_940_457;

/// Numenta-style anomaly likelihood of one surprise stream: the short-term mean of the
/// surprise against that mean's distribution over the longer past.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Likelihood {
    surprises: VecDeque<f64>,
    short_means: VecDeque<f64>,
    // Running sums of `short_means`, for its mean and variance.
    sum: f64,
    sum_sq: f64,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LikelihoodStep {
    pub(crate) short_mean: f64,
    pub(crate) usual_mean: f64,
    pub(crate) usual_std: f64,
    /// The log-scaled likelihood, in [0, 1].
    pub(crate) score: f64,
}

impl Likelihood {
    pub(crate) fn is_consistent(&self, c: &DetectorConfig) -> bool {
        self.surprises.len() <= c.short && self.short_means.len() <= c.likelihood_history
    }

    /// Adds the next surprise (`None` while the stream has none yet) and scores it. The
    /// score is 0 until the stream has `learning` short-term means to compare with.
    pub(crate) fn update(&mut self, surprise: Option<f64>, c: DetectorConfig) -> LikelihoodStep {
        let Some(surprise) = surprise else {
            return LikelihoodStep::default();
        };
        if self.surprises.len() == c.short {
            self.surprises.pop_front();
        }
        self.surprises.push_back(surprise);
        let mut step = LikelihoodStep {
            short_mean: self.surprises.iter().sum::<f64>() / self.surprises.len() as f64,
            ..LikelihoodStep::default()
        };
        // The usual short-term mean, from the past only.
        let k = self.short_means.len() as f64;
        if self.short_means.len() >= c.learning.max(2) {
            step.usual_mean = self.sum / k;
            step.usual_std = (self.sum_sq / k - step.usual_mean * step.usual_mean)
                .max(0.0)
                .sqrt();
            let z = (step.short_mean - step.usual_mean) / step.usual_std.max(1e-4);
            step.score = ((gaussian_tail(z) + 1e-10).ln() / LOG_FLOOR).clamp(0.0, 1.0);
        }
        if self.short_means.len() == c.likelihood_history
            && let Some(old) = self.short_means.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.short_means.push_back(step.short_mean);
        self.sum += step.short_mean;
        self.sum_sq += step.short_mean * step.short_mean;
        step
    }
}

/// P(Z > z) for a standard normal Z.
pub(crate) fn gaussian_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}
