//! Detector state kept between pulls: per watched instance, each metric's streaming detector
//! and its most recent window, so that a pull reads only the points since the last one and the
//! detector remembers more than one window (the range a series has shown, how surprising it
//! usually is).
//!
//! The contract: a metric carried across pulls scores exactly what a cold detector streamed
//! over the joined series would (`tests::warm_pulls_score_what_a_cold_run_over_the_joined_series_does`).
//! A state that cannot be used (missing, unreadable, another version, another configuration,
//! too old, from the future) is a cold start with its [`Cold`] reason, never an error.
//!
//! Encoding: postcard, the format version first. The IO is the port
//! [`crate::ports::DetectorMemory`]'s; this module only encodes, decodes and advances.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::models::anomaly::{DetectorConfig, StreamingDetector};

/// The encoding's version. Bump it when [`MetricState`] changes shape: every instance then
/// starts cold once, with [`Cold::Version`] as its reason.
pub const VERSION: u16 = 2;

/// A state older than this starts cold: after a week the series' normal may have moved.
pub const MAX_GAP_SECS: i64 = 7 * 24 * 3600;

/// A kept state larger than this is not decoded. One instance's state measures up to about 60 KB
/// (docs/models.md); this leaves room for many disk volumes.
pub const MAX_STATE_BYTES: usize = 1 << 20;

/// Why a metric's detector started from nothing in this pull.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Cold {
    #[error("no state was kept for this metric")]
    Missing,
    #[error("the kept state could not be read: {0}")]
    Unreadable(String),
    #[error("the kept state is of version {found}, this release reads version {VERSION}")]
    Version { found: u16 },
    #[error("the kept state is {size} bytes, more than the {MAX_STATE_BYTES} read")]
    TooLarge { size: usize },
    #[error("the detector's configuration or the pull's period changed")]
    Config,
    #[error("the kept state ends {secs} s after this pull")]
    Future { secs: i64 },
    #[error("the kept state is {secs} s old, more than a week")]
    Stale { secs: i64 },
}

impl Cold {
    /// A short label for logs and counts.
    pub fn label(&self) -> &'static str {
        match self {
            Cold::Missing => "missing",
            Cold::Unreadable(_) => "unreadable",
            Cold::Version { .. } => "version",
            Cold::TooLarge { .. } => "too-large",
            Cold::Config => "config",
            Cold::Future { .. } => "future",
            Cold::Stale { .. } => "stale",
        }
    }
}

/// One instance's kept state: its metrics by window label (`Namespace/MetricName[:path]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    pub metrics: BTreeMap<String, MetricState>,
}

/// One metric's detector and recent window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricState {
    /// Seconds per datapoint.
    pub period: u32,
    /// The configuration the detector was built with; another one starts cold.
    pub config: DetectorConfig,
    /// Unix seconds: the end of the last slot the detector streamed. The next pull reads from
    /// here, so a datapoint that arrives late at the tail is still read.
    pub end: i64,
    /// The slots up to `end`, oldest first, at most the pull's window long.
    pub window: Vec<Option<f64>>,
    /// The score of the slot ending at `end` (a repeated pull with nothing new reports it).
    pub last_score: f64,
    pub detector: StreamingDetector,
}

/// What a pull hands on for one metric after advancing its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Advanced {
    /// The window ending at the pull's end, `points` slots, `None` where nothing was read:
    /// the same grid a cold pull reads.
    pub window: Vec<Option<f64>>,
    /// The detector's score of the window's last slot (0 when that slot is missing, as a cold
    /// run scores it).
    pub score: f64,
}

impl InstanceState {
    /// Encodes the state, its version first.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = postcard::to_stdvec(&VERSION).unwrap_or_default();
        // Encoding plain data into a Vec cannot fail.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Decodes a kept state. Anything but this release's own encoding is a [`Cold`] reason.
    pub fn decode(bytes: &[u8]) -> Result<InstanceState, Cold> {
        if bytes.len() > MAX_STATE_BYTES {
            return Err(Cold::TooLarge { size: bytes.len() });
        }
        let (version, rest) =
            postcard::take_from_bytes::<u16>(bytes).map_err(|e| Cold::Unreadable(e.to_string()))?;
        if version != VERSION {
            return Err(Cold::Version { found: version });
        }
        let state: InstanceState =
            postcard::from_bytes(rest).map_err(|e| Cold::Unreadable(e.to_string()))?;
        for (label, m) in &state.metrics {
            if m.period == 0 || m.window.len() > MAX_WINDOW {
                return Err(Cold::Unreadable(format!(
                    "{}: implausible window",
                    crate::names::display_text(label, 64)
                )));
            }
            if !m.detector.is_consistent() {
                return Err(Cold::Unreadable(format!(
                    "{}: implausible detector state",
                    crate::names::display_text(label, 64)
                )));
            }
        }
        Ok(state)
    }
}

/// Longest window a kept state may hold (a week of one-minute points).
const MAX_WINDOW: usize = 7 * 24 * 60;

impl MetricState {
    /// A detector that has seen nothing, about to read the whole window ending at `end`.
    pub fn cold(end: i64, period: u32, points: usize, config: DetectorConfig) -> MetricState {
        MetricState {
            period,
            config,
            end: end - i64::from(period) * points as i64,
            window: Vec::new(),
            last_score: 0.0,
            detector: StreamingDetector::new(config),
        }
    }

    /// The kept state, ready to read from its end up to `end`; or why it cannot be used. A
    /// state whose end is more than a window back reads only the window (the slots between
    /// were never read and are missing to the detector, as missing points always are).
    pub fn resume(
        kept: MetricState,
        end: i64,
        period: u32,
        points: usize,
        config: DetectorConfig,
    ) -> Result<MetricState, Cold> {
        // The detector runs on the configuration it carries, so that one must be the deployed
        // one too, not only the configuration recorded beside it.
        if kept.period != period
            || kept.config != config
            || kept.detector.config() != StreamingDetector::new(config).config()
        {
            return Err(Cold::Config);
        }
        if kept.end > end {
            return Err(Cold::Future {
                secs: kept.end - end,
            });
        }
        if end - kept.end > MAX_GAP_SECS {
            return Err(Cold::Stale {
                secs: end - kept.end,
            });
        }
        let p = i64::from(period.max(1));
        if (end - kept.end) % p != 0 {
            return Err(Cold::Config);
        }
        let mut state = kept;
        let window_start = end - p * points as i64;
        if state.end < window_start {
            let skipped = ((window_start - state.end) / p) as usize;
            state.push_window(std::iter::repeat_n(None, skipped), points);
            state.end = window_start;
        }
        Ok(state)
    }

    /// Where this metric's next read starts (unix seconds).
    pub fn read_from(&self) -> i64 {
        self.end
    }

    /// Slots between the state's end and `end`.
    pub fn slots_to(&self, end: i64) -> usize {
        ((end - self.end).max(0) / i64::from(self.period.max(1))) as usize
    }

    /// Streams `slots` (the grid from the state's end to `end`, as
    /// [`crate::metrics::on_grid`] places them) into the detector, up to the last slot that
    /// holds a value: the missing slots after it stay unread, so the next pull reads them
    /// again. Returns the window ending at `end` and the score of its last slot.
    pub fn advance(&mut self, slots: &[Option<f64>], points: usize) -> Advanced {
        let Some(last) = slots.iter().rposition(Option::is_some) else {
            return Advanced {
                window: self.shown(slots, points),
                score: if slots.is_empty() {
                    self.last_score
                } else {
                    0.0
                },
            };
        };
        let mut score = 0.0;
        for s in &slots[..=last] {
            score = s.map_or(0.0, |v| self.detector.update(v));
        }
        self.last_score = score;
        let tail = &slots[last + 1..];
        self.push_window(slots[..=last].iter().copied(), points);
        self.end += i64::from(self.period) * (last as i64 + 1);
        Advanced {
            window: self.shown(tail, points),
            score: if tail.is_empty() { score } else { 0.0 },
        }
    }

    fn push_window(&mut self, slots: impl Iterator<Item = Option<f64>>, points: usize) {
        self.window.extend(slots);
        let excess = self.window.len().saturating_sub(points);
        self.window.drain(..excess);
    }

    /// The kept window and the unread tail, as the `points` slots ending at the pull's end.
    fn shown(&self, tail: &[Option<f64>], points: usize) -> Vec<Option<f64>> {
        let mut out: Vec<Option<f64>> = self.window.iter().chain(tail).copied().collect();
        let excess = out.len().saturating_sub(points);
        out.drain(..excess);
        let missing = points - out.len();
        out.splice(0..0, std::iter::repeat_n(None, missing));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::anomaly::last_score;

    const PERIOD: u32 = 60;
    const POINTS: usize = 360;

    fn config() -> DetectorConfig {
        DetectorConfig::for_window(PERIOD, POINTS)
    }

    /// A noisy series with a level shift at 500 and a gap at 430..440.
    fn series(n: usize) -> Vec<Option<f64>> {
        (0..n)
            .map(|i| {
                if (430..440).contains(&i) {
                    return None;
                }
                let noise = ((i * 7919 % 101) as f64 / 101.0 - 0.5) * 4.0;
                Some(40.0 + noise + if i >= 500 { 30.0 } else { 0.0 })
            })
            .collect()
    }

    /// Pulls `joined` in pieces ending at each of `ends` (slot indexes), the state encoded and
    /// decoded between pulls, and checks every pull against a cold run over the series so far.
    fn check(joined: &[Option<f64>], ends: &[usize]) {
        let t0 = 1_800_000_000_i64;
        let at = |slot: usize| t0 + i64::from(PERIOD) * slot as i64;
        let mut kept: Option<Vec<u8>> = None;
        for &end_slot in ends {
            let end = at(end_slot);
            let state = match kept.as_deref().map(InstanceState::decode) {
                Some(Ok(mut s)) => {
                    let m = s.metrics.remove("cpu").unwrap();
                    MetricState::resume(m, end, PERIOD, POINTS, config()).unwrap()
                }
                _ => MetricState::cold(end, PERIOD, POINTS, config()),
            };
            let mut state = state;
            let from = ((state.read_from() - t0) / i64::from(PERIOD)) as usize;
            let slots = &joined[from..end_slot];
            assert_eq!(slots.len(), state.slots_to(end));
            let got = state.advance(slots, POINTS);
            // The cold run: a detector streamed over everything read so far.
            let first = ends[0].saturating_sub(POINTS);
            let want = last_score(&joined[first..end_slot], config());
            assert_eq!(got.score.to_bits(), want.to_bits(), "score at {end_slot}");
            let grid: Vec<Option<f64>> = joined[end_slot.saturating_sub(POINTS)..end_slot].to_vec();
            assert_eq!(got.window.len(), POINTS);
            assert_eq!(
                &got.window[POINTS - grid.len()..],
                &grid[..],
                "window at {end_slot}"
            );
            let mut s = InstanceState::default();
            s.metrics.insert("cpu".into(), state);
            kept = Some(s.encode());
        }
    }

    #[test]
    fn warm_pulls_score_what_a_cold_run_over_the_joined_series_does() {
        let joined = series(700);
        // A first pull, then five-minute pulls across the gap and the level shift.
        let ends: Vec<usize> = (360..=700).step_by(5).collect();
        check(&joined, &ends);
    }

    #[test]
    fn missing_points_at_the_tail_are_read_again_by_the_next_pull() {
        let mut joined = series(400);
        // At the pull ending at 380 the last two points had not arrived; they have by 385.
        let late = joined.clone();
        joined[378] = None;
        joined[379] = None;
        let t0 = 1_800_000_000_i64;
        let end = t0 + 380 * 60;
        let mut s = MetricState::cold(end, PERIOD, POINTS, config());
        let first = s.advance(&joined[20..380], POINTS);
        assert_eq!(first.score, 0.0, "a missing last point scores 0, as cold");
        assert_eq!(s.end, end - 2 * 60, "the missing tail is not committed");
        let end2 = t0 + 385 * 60;
        let mut s = MetricState::resume(s, end2, PERIOD, POINTS, config()).unwrap();
        assert_eq!(s.slots_to(end2), 7);
        let second = s.advance(&late[378..385], POINTS);
        assert_eq!(
            second.score.to_bits(),
            last_score(&late[20..385], config()).to_bits()
        );
    }

    #[test]
    fn a_repeated_pull_reports_the_same_score() {
        let joined = series(400);
        let t0 = 1_800_000_000_i64;
        let end = t0 + 400 * 60;
        let mut s = MetricState::cold(end, PERIOD, POINTS, config());
        let first = s.advance(&joined[40..400], POINTS);
        let mut again = MetricState::resume(s, end, PERIOD, POINTS, config()).unwrap();
        assert_eq!(again.slots_to(end), 0);
        assert_eq!(again.advance(&[], POINTS), first);
    }

    #[test]
    fn a_state_that_cannot_be_used_is_a_cold_start_with_its_reason() {
        let t0 = 1_800_000_000_i64;
        let mut s = MetricState::cold(t0, PERIOD, POINTS, config());
        s.advance(&series(360), POINTS);
        let resume = |s: &MetricState, end: i64, period: u32, c: DetectorConfig| {
            MetricState::resume(s.clone(), end, period, POINTS, c).map(|_| ())
        };
        assert_eq!(resume(&s, t0, 120, config()), Err(Cold::Config));
        let other = DetectorConfig {
            z_scale: 5.0,
            ..config()
        };
        assert_eq!(resume(&s, t0, PERIOD, other), Err(Cold::Config));
        // A detector carrying other settings than the ones recorded beside it (an edited
        // object): it would score under those settings, so it starts cold too.
        let mut v = serde_json::to_value(&s).unwrap();
        v["detector"]["config"]["alert_level"] = 0.9.into();
        let edited: MetricState = serde_json::from_value(v).unwrap();
        assert_eq!(edited.config, config());
        assert_eq!(resume(&edited, t0, PERIOD, config()), Err(Cold::Config));
        assert_eq!(
            resume(&s, t0 - 60, PERIOD, config()),
            Err(Cold::Future { secs: 60 })
        );
        let later = t0 + MAX_GAP_SECS + 60;
        assert!(matches!(
            resume(&s, later, PERIOD, config()),
            Err(Cold::Stale { .. })
        ));
        assert_eq!(resume(&s, t0 + 30, PERIOD, config()), Err(Cold::Config));
        // A day's gap is within the week: the window is all missing, the detector goes on.
        let mut r = MetricState::resume(s.clone(), t0 + 86_400, PERIOD, POINTS, config()).unwrap();
        assert_eq!(r.slots_to(t0 + 86_400), POINTS);
        assert!(r.window.iter().all(Option::is_none));
        let a = r.advance(&series(360), POINTS);
        assert!(a.score.is_finite());

        let mut state = InstanceState::default();
        state.metrics.insert("AWS/EC2/CPUUtilization".into(), s);
        let bytes = state.encode();
        assert_eq!(InstanceState::decode(&bytes), Ok(state));
        let mut other_version = postcard::to_stdvec(&(VERSION + 1)).unwrap();
        other_version.extend_from_slice(&bytes[1..]);
        assert_eq!(
            InstanceState::decode(&other_version),
            Err(Cold::Version { found: VERSION + 1 })
        );
        assert!(matches!(
            InstanceState::decode(&bytes[..bytes.len() / 2]),
            Err(Cold::Unreadable(_))
        ));
        assert!(matches!(
            InstanceState::decode(&[]),
            Err(Cold::Unreadable(_))
        ));
        assert!(matches!(
            InstanceState::decode(&vec![1; MAX_STATE_BYTES + 1]),
            Err(Cold::TooLarge { .. })
        ));
    }

    #[test]
    fn a_metrics_kept_state_stays_within_its_budget() {
        // The deployed pull's configuration, pull after pull through the shape memory's
        // learning (its buffer fullest just before it ends) and on to a full memory.
        let c = config();
        let pull = 5;
        let points = series(c.shape_learning + 40 * pull);
        let mut s = MetricState::cold(0, PERIOD, POINTS, c);
        s.advance(&points[..POINTS], POINTS);
        let mut largest = 0;
        let mut at = POINTS;
        while at + pull <= points.len() {
            let end = (at + pull) as i64 * i64::from(PERIOD);
            s = MetricState::resume(s, end, PERIOD, POINTS, c).unwrap();
            s.advance(&points[at..at + pull], POINTS);
            at += pull;
            let mut state = InstanceState::default();
            state
                .metrics
                .insert("AWS/EC2/CPUUtilization".into(), s.clone());
            largest = largest.max(state.encode().len());
        }
        // 10 KB a metric: an instance with ninety disk volumes still fits MAX_STATE_BYTES.
        assert!(largest < 10 * 1024, "{largest} bytes");
        eprintln!("one metric's kept state, at its largest: {largest} bytes");
    }

    #[test]
    fn a_kept_detector_that_does_not_add_up_is_a_cold_start() {
        // A learned state, its shape memory in use.
        let c = config();
        let mut s = MetricState::cold(0, PERIOD, POINTS, c);
        let points = series(c.shape_learning * 2);
        s.advance(&points[..POINTS], POINTS);
        let mut at = POINTS;
        while at < points.len() {
            let end = (at + POINTS) as i64 * i64::from(PERIOD);
            s = MetricState::resume(s, end, PERIOD, POINTS, c).unwrap();
            s.advance(&points[at..(at + POINTS).min(points.len())], POINTS);
            at += POINTS;
        }
        let mut state = InstanceState::default();
        state.metrics.insert("cpu".into(), s);
        assert_eq!(InstanceState::decode(&state.encode()), Ok(state.clone()));

        // The kept state is an object anyone with write access could edit: each edit below
        // decodes as a well-formed state whose parts disagree.
        let check = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = serde_json::to_value(&state).unwrap();
            edit(&mut v["metrics"]["cpu"]["detector"]);
            let tampered: InstanceState = serde_json::from_value(v).unwrap();
            assert_eq!(
                InstanceState::decode(&tampered.encode()),
                Err(Cold::Unreadable("cpu: implausible detector state".into()))
            );
        };
        // One visit count more than there are prototypes.
        check(&|d| d["shapes"]["hits"].as_array_mut().unwrap().push(1.into()));
        // A prototype cut short.
        check(&|d| {
            d["shapes"]["centres"].as_array_mut().unwrap().pop();
        });
        // A recent past longer than the detector keeps.
        check(&|d| {
            let past = d["past"].as_array_mut().unwrap();
            let more = past.clone();
            past.extend(more);
        });
    }

    proptest::proptest! {
        /// Whatever bytes are kept, decoding them returns a state or a reason, never a panic.
        #[test]
        fn any_bytes_decode_or_give_a_reason(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = InstanceState::decode(&bytes);
        }
    }
}
