//! The streaming detector's third stage: has the series ever shown this *shape*?
//!
//! The surprise stages ask how far a value is from the recent past; a series can move inside
//! its usual range in a way it never has (a daily peak that does not come, a slow climb where
//! there used to be a saw-tooth) and never be far from its median. This stage keeps a small
//! memory of the short shapes the series has shown, in the manner of adaptive resonance theory
//! (fuzzy ART, as ARTime applies it to NAB): a shape is the last [`DetectorConfig::shape_window`]
//! points, each the mean of [`DetectorConfig::shape_step`] raw points, scaled by the range of
//! the learning period. A shape within the vigilance of a remembered prototype resonates and
//! nudges it; one outside every prototype's vigilance is new, and its distance in vigilances
//! is the stage's evidence.
//!
//! The vigilance is set once, from the series itself: the largest distance between a learning
//! shape and its nearest other learning shape (not overlapping it), times
//! [`DetectorConfig::shape_vigilance`]. So a noisy series gets a wide vigilance and a quiet one
//! a narrow one, and one configuration serves both.
//!
//! State: at most [`DetectorConfig::shape_learning`] / `shape_step` values while learning, then
//! at most [`DetectorConfig::shape_prototypes`] prototypes of `shape_window` values. A point
//! costs one pass over the prototypes; the end of learning one pass over the learning shapes'
//! pairs (once per series).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::anomaly::DetectorConfig;

/// Share of the way a resonating prototype moves towards the shape.
const RATE: f64 = 0.1;
/// Smallest vigilance, in units of the learning range: a flat learning period still lets a
/// real move count as new.
const MIN_VIGILANCE: f64 = 0.01;
/// Cap on a new shape's distance, in vigilances: beyond it, more distance says nothing more.
const MAX_DISTANCE: f64 = 2.0;

/// The shape memory of one series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Shapes {
    /// Sum and count of the raw points of the shape point being built.
    sum: f64,
    count: usize,
    /// Shape points: every one while learning, then the last `shape_window`.
    points: VecDeque<f64>,
    /// Shape points seen.
    seen: usize,
    /// Set when learning ends: the scale and the vigilance.
    learned: Option<Scale>,
    /// The remembered shapes, `shape_window` values each, end to end (one allocation to
    /// decode, not one per shape), and how often the series has come back to each.
    centres: Vec<f64>,
    hits: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Scale {
    low: f64,
    span: f64,
    vigilance: f64,
}

impl Shapes {
    /// Adds the next raw point. Returns the distance of the newest shape from the nearest
    /// prototype, in vigilances (capped), when a shape point was completed and the memory has
    /// learned; `None` otherwise.
    pub(crate) fn update(&mut self, value: f64, c: &DetectorConfig) -> Option<f64> {
        let (window, step) = (c.shape_window.max(1), c.shape_step.max(1));
        self.sum += value;
        self.count += 1;
        if self.count < step {
            return None;
        }
        let point = self.sum / self.count as f64;
        self.sum = 0.0;
        self.count = 0;
        self.points.push_back(point);
        self.seen += 1;
        let Some(scale) = self.learned else {
            if self.seen >= c.shape_learning / step {
                self.learn(window, c);
            }
            return None;
        };
        while self.points.len() > window {
            self.points.pop_front();
        }
        if self.points.len() < window {
            return None;
        }
        let shape: Vec<f64> = self
            .points
            .iter()
            .map(|v| (v - scale.low) / scale.span)
            .collect();
        let nearest = self.remember(&shape, scale.vigilance, c.shape_prototypes);
        Some((nearest / scale.vigilance).min(MAX_DISTANCE))
    }

    /// Whether a decoded memory agrees with the configuration it runs under: prototypes and
    /// visit counts of one length, no more than the capacity, buffers no longer than learning
    /// leaves them, and a finite scale. A kept state is input; one that does not add up would
    /// index past its prototypes.
    pub(crate) fn is_consistent(&self, c: &DetectorConfig) -> bool {
        let (window, step) = (c.shape_window.max(1), c.shape_step.max(1));
        let scale_ok = self.learned.is_none_or(|s| {
            s.low.is_finite() && s.span.is_finite() && s.span > 0.0 && s.vigilance > 0.0
        });
        self.centres.len() == self.hits.len() * window
            && self.hits.len() <= c.shape_prototypes.max(1)
            && self.points.len() <= (c.shape_learning / step).max(window)
            && self.count < step
            && self.sum.is_finite()
            && self.centres.iter().all(|v| v.is_finite())
            && scale_ok
    }

    /// Ends learning: the scale from the learning points, the vigilance from their shapes'
    /// nearest-neighbour distances, and the shapes remembered in order.
    fn learn(&mut self, window: usize, c: &DetectorConfig) {
        let points: Vec<f64> = self.points.iter().copied().collect();
        let low = points.iter().copied().fold(f64::INFINITY, f64::min);
        let high = points.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let span = (high - low).max(1e-9).max(low.abs() * 1e-3);
        let shapes: Vec<Vec<f64>> = (window..=points.len())
            .map(|end| {
                points[end - window..end]
                    .iter()
                    .map(|v| (v - low) / span)
                    .collect()
            })
            .collect();
        // The largest nearest-neighbour distance, neighbours that overlap excluded.
        let mut widest = 0.0_f64;
        for (i, a) in shapes.iter().enumerate() {
            let nearest = shapes
                .iter()
                .enumerate()
                .filter(|(j, _)| i.abs_diff(*j) >= window)
                .map(|(_, b)| distance(a, b))
                .fold(f64::INFINITY, f64::min);
            if nearest.is_finite() {
                widest = widest.max(nearest);
            }
        }
        let vigilance = (widest * c.shape_vigilance).max(MIN_VIGILANCE);
        for shape in &shapes {
            self.remember(shape, vigilance, c.shape_prototypes);
        }
        self.learned = Some(Scale {
            low,
            span,
            vigilance,
        });
        while self.points.len() > window {
            self.points.pop_front();
        }
    }

    /// The shape resonates with its nearest prototype within the vigilance, or becomes one
    /// (the least visited giving way when the memory is full). Returns its distance from the
    /// nearest prototype before (infinite for the first).
    fn remember(&mut self, shape: &[f64], vigilance: f64, capacity: usize) -> f64 {
        let window = shape.len().max(1);
        let nearest = self
            .centres
            .chunks_exact(window)
            .enumerate()
            .map(|(i, p)| (i, distance(p, shape)))
            .fold(None, |best: Option<(usize, f64)>, (i, d)| match best {
                Some((_, b)) if b <= d => best,
                _ => Some((i, d)),
            });
        match nearest {
            Some((i, d)) if d <= vigilance => {
                let centre = &mut self.centres[i * window..(i + 1) * window];
                for (c, v) in centre.iter_mut().zip(shape) {
                    *c += RATE * (v - *c);
                }
                self.hits[i] = self.hits[i].saturating_add(1);
                d
            }
            _ => {
                if self.hits.len() >= capacity.max(1)
                    && let Some(least) = self
                        .hits
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, h)| **h)
                        .map(|(i, _)| i)
                {
                    // The last shape takes the least visited one's place.
                    let last = self.hits.len() - 1;
                    self.centres
                        .copy_within(last * window..(last + 1) * window, least * window);
                    self.centres.truncate(last * window);
                    self.hits.swap_remove(least);
                }
                self.centres.extend_from_slice(shape);
                self.hits.push(1);
                nearest.map_or(f64::INFINITY, |(_, d)| d)
            }
        }
    }
}

/// Mean absolute difference of two shapes.
fn distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DetectorConfig {
        DetectorConfig::default()
    }

    /// Streams `series` and returns each completed shape's distance (or `None`).
    fn distances(series: &[f64]) -> Vec<Option<f64>> {
        let c = config();
        let mut s = Shapes::default();
        series.iter().map(|v| s.update(*v, &c)).collect()
    }

    /// A repeating saw-tooth: every shape after learning has been seen.
    fn saw(n: usize) -> Vec<f64> {
        (0..n).map(|i| (i % 24) as f64).collect()
    }

    #[test]
    fn nothing_is_scored_while_learning() {
        let c = config();
        let d = distances(&saw(c.shape_learning));
        assert!(d.iter().all(Option::is_none));
    }

    #[test]
    fn a_shape_the_series_has_shown_is_within_the_vigilance() {
        let d = distances(&saw(2000));
        let scored: Vec<f64> = d.into_iter().flatten().collect();
        assert!(!scored.is_empty());
        assert!(scored.iter().all(|x| *x <= 1.0), "{scored:?}");
    }

    #[test]
    fn a_new_shape_inside_the_usual_range_is_far() {
        // The saw-tooth stops at its middle and stays flat: never far from the median, but a
        // shape the series has never shown.
        let mut s = saw(2000);
        for v in &mut s[1500..1600] {
            *v = 12.0;
        }
        let d = distances(&s);
        let before = d[..1500].iter().flatten().fold(0.0, |a: f64, b| a.max(*b));
        let during = d[1500..1600]
            .iter()
            .flatten()
            .fold(0.0, |a: f64, b| a.max(*b));
        assert!(before <= 1.0 && during > 1.0, "{before} {during}");
    }

    #[test]
    fn the_memory_stays_within_its_capacity() {
        let c = config();
        let mut s = Shapes::default();
        // A series that never repeats: every shape is new.
        for i in 0..5000 {
            s.update((i as f64).powi(2), &c);
        }
        assert!(s.hits.len() <= c.shape_prototypes);
        assert_eq!(s.centres.len(), s.hits.len() * c.shape_window);
        assert!(s.points.len() <= c.shape_window);
    }
}
