//! The streaming anomaly detector: one metric series in, one `anomaly_score` in [0, 1] per
//! point out, each point scored with only the past.
//!
//! Three stages, all cheap and all explainable:
//! 1. **Surprise.** How far the point is from the recent past: its robust z-score against the
//!    median and MAD of the last [`DetectorConfig::history`] points, and whether it leaves the
//!    range the series has ever shown (a spatial novelty).
//! 2. **Likelihood.** Is the recent surprise unusual *for this series*? The short-term mean of
//!    the surprise is compared with the distribution of that mean over the longer past, and the
//!    Gaussian tail probability is mapped to a log scale (as Numenta's anomaly likelihood
//!    does), so a noisy series and a quiet one alert at the same threshold
//!    ([`super::likelihood`]).
//! 3. **Shape.** Has the series ever shown the shape its last points make? A memory of the
//!    short shapes seen, in the manner of adaptive resonance theory ([`super::shapes`]), catches
//!    a series that moves inside its usual range in a way it never has (off the daily
//!    pattern, say). It learns for [`DetectorConfig::shape_learning`] points before it scores.
//!
//! The score is the largest of the three, and 1 on a new extreme that is also a full surprise
//! (a point beyond the range the series has shown, as the spatial anomaly of Numenta's NAB
//! detector, and at least [`DetectorConfig::z_scale`] robust standard deviations from the
//! recent past or past days). It reaches the alert level only on a point that is itself
//! unusual (`ALERT_DEVIATION`), so every alert's reasons show a deviation, and through the
//! likelihood stages only on a point beyond the recent past's 99th percentile (`RARE_SHARE`),
//! so a burst the series shows every day does not alert; one episode alerts once, unless it
//! reaches such an extreme.
//!
//! The state is a few bounded ring buffers and at most [`DetectorConfig::shape_prototypes`]
//! shapes: scoring a point costs O(history) for the median.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::likelihood::Likelihood;
use super::shapes::Shapes;

/// The detector's tunables. The defaults are the configuration the results in docs/ were
/// measured with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorConfig {
    /// Past points a value is compared with (a day of 5-minute points).
    pub history: usize,
    /// Points before the detector scores at all; it reports 0 until then.
    pub learning: usize,
    /// Points of surprise averaged into the short-term mean.
    pub short: usize,
    /// Short-term means the likelihood's distribution is estimated from.
    pub likelihood_history: usize,
    /// Robust z at which the surprise is 1 - 1/e, and a new extreme a full surprise.
    pub z_scale: f64,
    /// Margin, as a share of the range seen, beyond which a new extreme counts as novel.
    pub novelty_margin: f64,
    /// Points in one season (a day); the point is also compared with the same time on past
    /// days. 0 turns the seasonal comparison off.
    pub season: usize,
    /// Score at which the detector considers it has alerted.
    pub alert_level: f64,
    /// Points after an alert during which scores stay below `alert_level`: one episode
    /// alerts once, unless it reaches a new extreme that is a full surprise.
    pub refractory: usize,
    /// Raw points averaged into one point of a shape.
    pub shape_step: usize,
    /// Points (of `shape_step` raw points each) in one shape.
    pub shape_window: usize,
    /// Raw points the shape memory learns from before it scores.
    pub shape_learning: usize,
    /// The shape memory's vigilance, as a multiple of the widest distance between a learning
    /// shape and its nearest other learning shape.
    pub shape_vigilance: f64,
    /// Shapes the memory keeps (the least visited gives way).
    pub shape_prototypes: usize,
    /// Distance of a new shape, in vigilances, at which it scores `alert_level`.
    pub shape_alert: f64,
}

impl DetectorConfig {
    /// The configuration for a window of `points` datapoints `period_secs` apart: the
    /// defaults (a day of history, daily seasons) for five-minute data and coarser; for finer
    /// data an hour of history, two hours of learning and no seasons inside the window, and
    /// shapes as long in time as five-minute data's (learned over as long).
    pub fn for_window(period_secs: u32, points: usize) -> DetectorConfig {
        let base = DetectorConfig::default();
        if period_secs >= 300 {
            return base;
        }
        let per_hour = (3600 / period_secs.max(1)) as usize;
        let per_five_minutes = (300 / period_secs.max(1)) as usize;
        DetectorConfig {
            history: per_hour.max(10),
            learning: (2 * per_hour).min(points / 3).max(10),
            short: 5,
            likelihood_history: points.max(2),
            season: 0,
            refractory: per_hour / 2,
            shape_step: base.shape_step * per_five_minutes,
            shape_learning: base.shape_learning * per_five_minutes,
            ..base
        }
    }
}

impl Default for DetectorConfig {
    fn default() -> Self {
        DetectorConfig {
            history: 288,
            learning: 150,
            short: 10,
            likelihood_history: 2016,
            z_scale: 6.0,
            novelty_margin: 0.1,
            season: 288,
            alert_level: 0.35,
            refractory: 144,
            shape_step: 2,
            shape_window: 4,
            shape_learning: 750,
            shape_vigilance: 1.5,
            shape_prototypes: 64,
            shape_alert: 1.1,
        }
    }
}

/// The detector's name and version, as scores cite it.
pub const NAME: &str = "streaming-detector/1";

/// Past seasons the seasonal comparison looks at.
const SEASONS: usize = 3;
/// MAD to standard deviation, for normally distributed data.
const MAD_SCALE: f64 = 1.4826;
/// A score held below the alert level (inside the refractory period, or on an ordinary point)
/// is at most this share of it, so even a saturated stage (score 1) stays strictly below it:
/// whoever reads the score as an alert at `alert_level` sees one episode alert once, and no
/// alert on an ordinary point.
const REFRACTORY_SHARE: f64 = 0.9;
/// Robust z, against the recent past or against the same time on past days, a point needs
/// for its score to reach the alert level. A stage's score rises
/// with the points before this one (the likelihood averages them; a shape spans several), so
/// without it an episode's alert could fall on an ordinary point after the unusual ones.
const ALERT_DEVIATION: f64 = 2.0;
/// Share of the recent past that may be at least as far from its median, on the same side, as
/// a point the likelihood stages alert on: the point must lie beyond the recent past's 99th
/// percentile on its side. Without it a spike the series shows every day alerts every day,
/// since the likelihood's Gaussian tail takes a regular burst for a rare one.
const RARE_SHARE: f64 = 0.01;

/// Why a point scored what it did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The point's value.
    pub value: f64,
    /// The median of the recent past.
    pub baseline: f64,
    /// Robust z-score against that past.
    pub robust_z: f64,
    /// Robust z-score of the point against the same time on past days.
    pub seasonal_z: f64,
    /// The point left the range the series had shown, by more than the novelty margin; if it
    /// is also a full surprise (`z_scale`), it scores 1, inside the refractory period too.
    pub novel: bool,
    /// Surprise of this point against the recent past and against past days, in [0, 1].
    pub surprise: f64,
    pub seasonal_surprise: f64,
    pub short_mean: f64,
    /// Mean and standard deviation of the short-term mean over the longer past.
    pub usual_mean: f64,
    pub usual_std: f64,
    /// Points of the recent past at least as far from its median, on the same side (counted
    /// while scoring).
    pub as_far: usize,
    /// Distance of the newest shape from every shape the series has shown, in vigilances
    /// (above 1: a shape never shown); 0 between shapes and while the memory learns.
    pub shape_distance: f64,
    /// The final score.
    pub anomaly_score: f64,
}

/// Streaming detector state for one series. Serialisable, so a pull can keep it between
/// invocations ([`crate::metrics::state`]); equal when everything but its scratch space is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamingDetector {
    config: DetectorConfig,
    past: VecDeque<f64>,
    /// Values of the last few seasons, for the seasonal comparison.
    long: VecDeque<f64>,
    /// Seasonal residuals of the recent past.
    residuals: VecDeque<f64>,
    /// Points since the last alert.
    since_alert: Option<usize>,
    /// The likelihood of the level surprise and of the seasonal surprise.
    level: Likelihood,
    seasonal: Likelihood,
    shapes: Shapes,
    min: f64,
    max: f64,
    seen: usize,
    #[serde(skip)]
    scratch: Vec<f64>,
}

impl PartialEq for StreamingDetector {
    fn eq(&self, other: &Self) -> bool {
        let StreamingDetector {
            config,
            past,
            long,
            residuals,
            since_alert,
            level,
            seasonal,
            shapes,
            min,
            max,
            seen,
            scratch: _,
        } = self;
        *config == other.config
            && *past == other.past
            && *long == other.long
            && *residuals == other.residuals
            && *since_alert == other.since_alert
            && *level == other.level
            && *seasonal == other.seasonal
            && *shapes == other.shapes
            && min.to_bits() == other.min.to_bits()
            && max.to_bits() == other.max.to_bits()
            && *seen == other.seen
    }
}

impl StreamingDetector {
    pub fn new(config: DetectorConfig) -> Self {
        StreamingDetector {
            config: DetectorConfig {
                history: config.history.max(3),
                short: config.short.max(1),
                likelihood_history: config.likelihood_history.max(2),
                ..config
            },
            past: VecDeque::new(),
            long: VecDeque::new(),
            residuals: VecDeque::new(),
            since_alert: None,
            level: Likelihood::default(),
            seasonal: Likelihood::default(),
            shapes: Shapes::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            seen: 0,
            scratch: Vec::new(),
        }
    }

    /// Scores the next point. Missing or non-finite values score 0 and leave the state as it
    /// was.
    pub fn update(&mut self, value: f64) -> f64 {
        self.explain(value).anomaly_score
    }

    /// Scores the next point and says why.
    pub fn explain(&mut self, value: f64) -> Explanation {
        if !value.is_finite() {
            return Explanation::default();
        }
        let c = self.config;
        let mut e = Explanation {
            value,
            ..Explanation::default()
        };
        let mut seasonal_ready = false;
        if self.past.len() >= 3 {
            let (median, mad) = self.robust();
            let range = (self.max - self.min).max(0.0);
            // A floor on the spread, so a flat series does not make every small move infinite.
            let spread = (mad * MAD_SCALE)
                .max(0.01 * range)
                .max(1e-3 * median.abs())
                .max(1e-9);
            e.baseline = median;
            e.robust_z = ((value - median) / spread).clamp(-1e3, 1e3);
            let margin = c.novelty_margin * range.max(spread);
            e.novel =
                self.seen >= c.learning && (value > self.max + margin || value < self.min - margin);
            e.surprise = surprise(e.robust_z, c.z_scale);
            if e.novel {
                e.surprise = 1.0;
            }
            if let Some(z) = self.seasonal_z(value) {
                seasonal_ready = true;
                e.seasonal_z = z;
                e.seasonal_surprise = if e.novel { 1.0 } else { surprise(z, c.z_scale) };
            }
        }
        let scoring = self.seen >= c.learning;
        let level = self.level.update(Some(e.surprise), c);
        let seasonal = self
            .seasonal
            .update(seasonal_ready.then_some(e.seasonal_surprise), c);
        e.short_mean = level.short_mean;
        e.usual_mean = level.usual_mean;
        e.usual_std = level.usual_std;
        let mut shape_score = 0.0;
        if let Some(d) = self.shapes.update(value, &c) {
            e.shape_distance = d;
            shape_score = (c.alert_level * d / c.shape_alert.max(1e-9)).min(1.0);
        }
        let deviation = e.robust_z.abs().max(e.seasonal_z.abs());
        let extreme = e.novel && deviation >= c.z_scale;
        if scoring {
            e.as_far = self.as_far(value, e.baseline);
            let mut likelihood = level.score.max(seasonal.score);
            if e.as_far as f64 > RARE_SHARE * self.past.len() as f64 {
                // The likelihood stages alert on a point the recent past has rarely shown: one
                // the series reaches every day (a daily spike, a regular burst) does not.
                likelihood = held_below_alert(likelihood, &c);
            }
            e.anomaly_score = likelihood.max(shape_score);
            if extreme {
                // A new extreme that is also a full surprise is an alert on its own, however
                // little the averaged stages have moved yet (one point beyond the range is a
                // tenth of the likelihood's short-term mean).
                e.anomaly_score = 1.0;
            } else if deviation < ALERT_DEVIATION {
                // An alert names a point that is itself unusual: one the recent past and past
                // days both find ordinary stays below the alert level, whatever came before.
                e.anomaly_score = held_below_alert(e.anomaly_score, &c);
            }
        }
        // One episode alerts once: within the refractory period scores stay below the alert
        // level, unless the point is such an extreme (an episode that grows beyond every value
        // the series has shown alerts again, and starts a new refractory period).
        match self.since_alert {
            Some(n) if n < c.refractory && !extreme => {
                e.anomaly_score = held_below_alert(e.anomaly_score, &c);
                self.since_alert = Some(n + 1);
            }
            _ if e.anomaly_score >= c.alert_level => self.since_alert = Some(0),
            _ => self.since_alert = None,
        }

        self.push_value(value);
        e
    }

    /// The configuration the detector runs on: the one it was built with, its lengths raised
    /// to the least it works with.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Whether a decoded detector agrees with its own configuration: every buffer within the
    /// length the detector keeps it to, and each stage's parts of one size. A kept state is
    /// input; [`crate::metrics::state::InstanceState::decode`] refuses one that does not.
    pub fn is_consistent(&self) -> bool {
        let c = &self.config;
        let long = if c.season >= 2 {
            c.season * SEASONS + 1
        } else {
            0
        };
        c.history >= 3
            && c.short >= 1
            && c.likelihood_history >= 2
            && self.past.len() <= c.history
            && self.residuals.len() <= c.history
            && self.long.len() <= long
            && self.level.is_consistent(c)
            && self.seasonal.is_consistent(c)
            && self.shapes.is_consistent(c)
    }

    /// Points of the recent past at least as far from its median as `value`, on its side.
    fn as_far(&self, value: f64, median: f64) -> usize {
        if value >= median {
            self.past.iter().filter(|&&x| x >= value).count()
        } else {
            self.past.iter().filter(|&&x| x <= value).count()
        }
    }

    fn robust(&mut self) -> (f64, f64) {
        let xs = &mut self.scratch;
        xs.clear();
        xs.extend(self.past.iter().copied());
        let median = median_of(xs);
        for v in xs.iter_mut() {
            *v = (*v - median).abs();
        }
        (median, median_of(xs))
    }

    /// The point's robust z against the same time of day on the last three days (and the
    /// points beside it), scaled by the spread of such residuals in the recent past.
    fn seasonal_z(&mut self, value: f64) -> Option<f64> {
        let season = self.config.season;
        if season < 2 {
            return None;
        }
        let len = self.long.len();
        let mut neighbours = [0.0; 9];
        let mut k = 0;
        for day in 1..=SEASONS {
            for j in [-1_isize, 0, 1] {
                let back = (day * season) as isize - j;
                if back >= 1 && back as usize <= len {
                    neighbours[k] = self.long[len - back as usize];
                    k += 1;
                }
            }
        }
        if k < 3 {
            return None;
        }
        let expected = median_of(&mut neighbours[..k]);
        let residual = value - expected;
        if self.residuals.len() == self.config.history {
            self.residuals.pop_front();
        }
        self.residuals.push_back(residual);
        if self.residuals.len() < 30 {
            return None;
        }
        let xs = &mut self.scratch;
        xs.clear();
        xs.extend(self.residuals.iter().map(|r| r.abs()));
        let range = (self.max - self.min).max(0.0);
        let spread = (median_of(xs) * MAD_SCALE).max(0.01 * range).max(1e-9);
        Some((residual / spread).clamp(-1e3, 1e3))
    }

    fn push_value(&mut self, value: f64) {
        if self.config.season >= 2 {
            if self.long.len() == self.config.season * SEASONS + 1 {
                self.long.pop_front();
            }
            self.long.push_back(value);
        }
        if self.past.len() == self.config.history {
            self.past.pop_front();
        }
        self.past.push_back(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.seen += 1;
    }
}

/// A score in [0, 1] scaled strictly below the alert level.
fn held_below_alert(score: f64, c: &DetectorConfig) -> f64 {
    score * c.alert_level * REFRACTORY_SHARE
}

/// A surprise in [0, 1) from a z-score: 1 - 1/e at `scale`.
fn surprise(z: f64, scale: f64) -> f64 {
    1.0 - (-z.abs() / scale).exp()
}

/// Median of a slice (reorders it); 0 for an empty one.
fn median_of(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    if n == 0 {
        return 0.0;
    }
    let mid = n / 2;
    let (below, m, _) = xs.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + m) / 2.0
    }
}

/// The score of a window's last point, the window streamed from its start.
pub fn last_score(points: &[Option<f64>], config: DetectorConfig) -> f64 {
    let mut d = StreamingDetector::new(config);
    let mut last = 0.0;
    for p in points {
        last = p.map_or(0.0, |v| d.update(v));
    }
    last
}

/// Scores a whole series from its start, as a stream (`None` = missing point, scored 0).
pub fn score_series(points: &[Option<f64>], config: DetectorConfig) -> Vec<f64> {
    let mut d = StreamingDetector::new(config);
    points
        .iter()
        .map(|p| p.map_or(0.0, |v| d.update(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noisy daily cycle (5-minute points).
    fn seasonal(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let day = (i as f64 / 288.0 * std::f64::consts::TAU).sin();
                let noise = ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 2.0;
                50.0 + 10.0 * day + noise
            })
            .collect()
    }

    /// The smallest and largest values.
    fn range_of(xs: &[f64]) -> (f64, f64) {
        let low = xs.iter().copied().fold(f64::INFINITY, f64::min);
        let high = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (low, high)
    }

    /// The series' scores with the default configuration, and the points in `span` that reach
    /// the alert level.
    fn alerts_in(series: &[f64], span: std::ops::Range<usize>) -> (Vec<f64>, Vec<usize>) {
        let c = DetectorConfig::default();
        let points: Vec<Option<f64>> = series.iter().copied().map(Some).collect();
        let scores = score_series(&points, c);
        let alerts = span.filter(|&i| scores[i] >= c.alert_level).collect();
        (scores, alerts)
    }

    fn check(series: &[f64], at: usize, expect_alert: bool) {
        let points: Vec<Option<f64>> = series.iter().copied().map(Some).collect();
        let scores = score_series(&points, DetectorConfig::default());
        let max_before = scores[..at].iter().copied().fold(0.0, f64::max);
        let max_after = scores[at..(at + 20).min(scores.len())]
            .iter()
            .copied()
            .fold(0.0, f64::max);
        assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
        if expect_alert {
            assert!(
                max_after > 0.5 && max_after > max_before,
                "no alert at {at}: before {max_before}, after {max_after}"
            );
        } else {
            assert!(max_after < 0.5, "false alert at {at}: {max_after}");
        }
    }

    #[test]
    fn a_spike_alerts() {
        let mut s = seasonal(2000);
        s[1500] += 60.0;
        check(&s, 1500, true);
    }

    #[test]
    fn a_level_shift_alerts() {
        let mut s = seasonal(2000);
        for v in &mut s[1500..] {
            *v += 40.0;
        }
        check(&s, 1500, true);
    }

    #[test]
    fn an_episode_alerts_once_however_strong_it_stays() {
        // A shift far beyond the range keeps every stage saturated for a while.
        let c = DetectorConfig::default();
        let mut s = seasonal(2000);
        for v in &mut s[1500..] {
            *v += 400.0;
        }
        let (scores, alerts) = alerts_in(&s, 1500..1500 + c.refractory);
        assert_eq!(alerts.len(), 1, "alerts at {alerts:?}");
        let peak = scores[alerts[0] + 1..1500 + c.refractory]
            .iter()
            .copied()
            .fold(0.0, f64::max);
        assert!(peak > 0.0 && peak < c.alert_level, "{peak}");
    }

    #[test]
    fn a_new_extreme_alerts_on_its_own() {
        // One point a little beyond the range: the likelihood's short-term mean hardly moves
        // (one surprise in ten), but the point is a new extreme, and that is an alert.
        let c = DetectorConfig::default();
        let mut s = seasonal(2000);
        let (low, high) = range_of(&s[..1600]);
        s[1600] = high + 0.15 * (high - low);
        let mut d = StreamingDetector::new(c);
        let e = s[..1601].iter().map(|v| d.explain(*v)).last().unwrap();
        assert!(e.novel, "{e:?}");
        assert!(e.seasonal_z.abs() >= c.z_scale, "{e:?}");
        assert!(e.short_mean < e.usual_mean + 2.0 * e.usual_std, "{e:?}");
        assert_eq!(e.anomaly_score, 1.0);
    }

    #[test]
    fn a_new_extreme_within_the_usual_spread_is_not_an_alert_on_its_own() {
        // Uniform noise, no seasons: a point just beyond the range is a new extreme, but less
        // than two robust standard deviations from the median, and nothing alerts.
        let c = DetectorConfig {
            season: 0,
            ..DetectorConfig::default()
        };
        let mut s: Vec<f64> = (0..1600)
            .map(|i| 50.0 + ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 2.0)
            .collect();
        let (low, high) = range_of(&s[..1500]);
        s[1500] = high + 0.15 * (high - low);
        let mut d = StreamingDetector::new(c);
        let e = s[..1501].iter().map(|v| d.explain(*v)).last().unwrap();
        assert!(e.novel, "{e:?}");
        assert!(e.robust_z.abs() < c.z_scale, "{e:?}");
        assert!(e.anomaly_score < c.alert_level, "{e:?}");
    }

    #[test]
    fn an_episode_alerts_again_when_it_reaches_a_new_extreme() {
        // A shift alerts; fifty points later, inside its refractory period, the series leaps
        // far beyond anything it has shown, and alerts again. Nothing else alerts.
        let c = DetectorConfig::default();
        let mut s = seasonal(2000);
        for v in &mut s[1500..] {
            *v += 40.0;
        }
        for v in &mut s[1550..] {
            *v += 120.0;
        }
        let (_, alerts) = alerts_in(&s, 1500..1550 + c.refractory);
        assert_eq!(alerts.len(), 2, "alerts at {alerts:?}");
        assert!(
            alerts[0] < 1550 && alerts[1] == 1550,
            "alerts at {alerts:?}"
        );
    }

    #[test]
    fn a_burst_the_series_shows_twice_a_day_does_not_alert() {
        // Three points at 30 every 150 points, on noise around 10: each burst is far from the
        // median, and its likelihood Gaussian-rare, but the last day holds half a dozen
        // points as high, so nothing alerts once a day has been seen.
        let c = DetectorConfig::default();
        let s: Vec<f64> = (0..2400)
            .map(|i| {
                if i % 150 < 3 {
                    30.0
                } else {
                    10.0 + ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 2.0
                }
            })
            .collect();
        let mut d = StreamingDetector::new(c);
        let explained: Vec<Explanation> = s.iter().map(|v| d.explain(*v)).collect();
        for (i, e) in explained.iter().enumerate().skip(c.history + 150) {
            assert!(e.anomaly_score < c.alert_level, "{i}: {e:?}");
        }
        let burst = &explained[2250];
        assert!(burst.robust_z > c.z_scale, "{burst:?}");
        assert!(
            burst.as_far as f64 > RARE_SHARE * c.history as f64,
            "{burst:?}"
        );
    }

    #[test]
    fn the_usual_cycle_does_not_alert() {
        let s = seasonal(2000);
        check(&s, 1500, false);
    }

    /// A saw-tooth of 24 points, twelve teeth a day.
    fn saw_tooth(n: usize) -> Vec<f64> {
        (0..n).map(|i| (i % 24) as f64).collect()
    }

    #[test]
    fn a_shape_never_shown_alerts_from_inside_the_usual_range() {
        // The saw-tooth runs backwards for a while: never far from its median, but a shape it
        // has never shown, and not what the same time on past days showed. The alert is the
        // shape memory's.
        let c = DetectorConfig::default();
        let mut s = saw_tooth(2000);
        for (i, v) in s.iter_mut().enumerate().skip(1500).take(60) {
            *v = (23 - i % 24) as f64;
        }
        let mut d = StreamingDetector::new(c);
        let explained: Vec<Explanation> = s.iter().map(|v| d.explain(*v)).collect();
        let quiet_before = explained[..1500]
            .iter()
            .all(|e| e.shape_distance <= 1.0 && e.anomaly_score < c.alert_level);
        let alert = explained[1500..1560]
            .iter()
            .find(|e| e.anomaly_score >= c.alert_level);
        assert!(quiet_before);
        let alert = alert.expect("no alert on the new shape");
        assert!(alert.shape_distance > c.shape_alert, "{alert:?}");
        assert!(alert.robust_z.abs() < 1.0, "{alert:?}");
        assert!(alert.seasonal_z.abs() >= ALERT_DEVIATION, "{alert:?}");
    }

    #[test]
    fn an_alert_falls_on_a_point_that_is_itself_unusual() {
        // The saw-tooth stops at its middle, with no past days to compare with: the shape
        // memory has never seen the shape, but every point is ordinary against the recent
        // past, so nothing reaches the alert level.
        let c = DetectorConfig {
            season: 0,
            ..DetectorConfig::default()
        };
        let mut s = saw_tooth(2000);
        for v in &mut s[1500..1560] {
            *v = 11.5;
        }
        let mut d = StreamingDetector::new(c);
        let explained: Vec<Explanation> = s.iter().map(|v| d.explain(*v)).collect();
        let stopped = &explained[1500..1560];
        assert!(stopped.iter().any(|e| e.shape_distance > c.shape_alert));
        for e in stopped {
            assert!(e.robust_z.abs() < ALERT_DEVIATION, "{e:?}");
            assert!(e.anomaly_score < c.alert_level, "{e:?}");
        }
    }

    #[test]
    fn a_flat_series_that_stays_flat_does_not_alert() {
        check(&[3.0; 1000], 800, false);
    }

    #[test]
    fn missing_and_non_finite_points_score_zero_and_do_not_poison_the_state() {
        let mut d = StreamingDetector::new(DetectorConfig::default());
        let s = seasonal(501);
        for v in &s[..500] {
            d.update(*v);
        }
        assert_eq!(d.update(f64::NAN), 0.0);
        assert_eq!(d.update(f64::INFINITY), 0.0);
        let next = d.update(s[500]);
        assert!(next.is_finite() && next < 0.5);
    }

    #[test]
    fn scores_use_only_the_past() {
        let s = seasonal(1200);
        let points: Vec<Option<f64>> = s.iter().copied().map(Some).collect();
        let full = score_series(&points, DetectorConfig::default());
        let prefix = score_series(&points[..900], DetectorConfig::default());
        assert_eq!(&full[..900], &prefix[..]);
    }
}
