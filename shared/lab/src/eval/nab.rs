//! A scorer that follows the Numenta Anomaly Benchmark's rules (NAB v1.1): probation, anomaly
//! windows, the scaled sigmoid, the three application profiles, one corpus-wide threshold per
//! profile found by a sweep, and normalisation between the null and the perfect detector.
//!
//! Pure: the caller reads the data files and the label windows; this module only computes.

use chrono::NaiveDateTime;
use serde::Serialize;

/// The weights of one NAB application profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    pub name: &'static str,
    pub tp_weight: f64,
    pub fp_weight: f64,
    pub fn_weight: f64,
}

/// NAB's three profiles (`config/profiles.json`).
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp_weight: 1.0,
        fp_weight: 0.22,
        fn_weight: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp_weight: 1.0,
        fp_weight: 0.11,
        fn_weight: 2.0,
    },
];

/// Share of a file, and cap in rows, that a detector may learn from unscored.
const PROBATION_PERCENT: f64 = 0.15;
const PROBATION_CAP: usize = 750;

/// Rows at the start of a file of `rows` rows that are not scored.
pub fn probation(rows: usize) -> usize {
    ((PROBATION_PERCENT * rows as f64).floor() as usize).min(PROBATION_CAP)
}

/// NAB's scaled sigmoid: 1 far before a window's end, -1 far after.
pub fn scaled_sigmoid(y: f64) -> f64 {
    if y > 3.0 {
        // NAB clamps here to avoid overflow; the value is -1 to 13 decimals.
        -1.0
    } else {
        2.0 / (1.0 + (5.0 * y).exp()) - 1.0
    }
}

/// One data file with its detector scores and its anomaly windows.
#[derive(Debug, Clone)]
pub struct File {
    /// `category/file.csv`, as in NAB's label files.
    pub name: String,
    pub timestamps: Vec<NaiveDateTime>,
    pub scores: Vec<f64>,
    /// `[start, end]` of each window, inclusive.
    pub windows: Vec<(NaiveDateTime, NaiveDateTime)>,
}

impl File {
    /// The category: the name's folder.
    pub fn category(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }

    /// 1 for rows inside a window, 0 elsewhere (NAB's `label` column).
    pub fn labels(&self) -> Vec<u8> {
        self.timestamps
            .iter()
            .map(|t| {
                u8::from(
                    self.windows
                        .iter()
                        .any(|(start, end)| start <= t && t <= end),
                )
            })
            .collect()
    }
}

/// A scored row: its detector score, its weight, and the window it falls in.
#[derive(Debug, Clone, Copy)]
struct Point {
    score: f64,
    weight: f64,
    /// Index of the window across the corpus.
    window: Option<usize>,
}

/// The scored rows of one file (probation removed) and how many windows they hold.
fn points(file: &File, window_base: usize) -> (Vec<Point>, usize) {
    let ts = &file.timestamps;
    let n = ts.len().min(file.scores.len());
    let probation = probation(n);
    let mut windows: Vec<(NaiveDateTime, NaiveDateTime)> = file.windows.clone();
    windows.sort();
    // Each window's first and last row.
    let bounds: Vec<(usize, usize)> = windows
        .iter()
        .filter_map(|(start, end)| {
            let left = ts[..n].iter().position(|t| t >= start)?;
            let right = ts[..n].iter().rposition(|t| t <= end)?;
            (left <= right).then_some((left, right))
        })
        .collect();

    // Windows that end inside probation have no scored row and do not count; the rest are
    // numbered densely from `window_base`.
    let first_kept = bounds
        .iter()
        .position(|b| b.1 >= probation)
        .unwrap_or(bounds.len());
    let kept = bounds.len() - first_kept;

    let mut out = Vec::with_capacity(n.saturating_sub(probation));
    let mut next = 0;
    let mut current: Option<usize> = None;
    let mut previous: Option<(usize, f64)> = None; // (right index, width)
    for i in 0..n {
        if let Some(w) = current
            && i > bounds[w].1
        {
            let (left, right) = bounds[w];
            previous = Some((right, (right - left + 1) as f64));
            current = None;
        }
        if current.is_none() && next < bounds.len() && i >= bounds[next].0 {
            current = Some(next);
            next += 1;
        }
        let weight = match (current, previous) {
            (Some(w), _) => {
                let (left, right) = bounds[w];
                let width = (right - left + 1) as f64;
                scaled_sigmoid(-((right as f64 - i as f64 + 1.0) / width))
            }
            (None, None) => -1.0,
            (None, Some((right, width))) => {
                scaled_sigmoid((i as f64 - right as f64).abs() / (width - 1.0).max(1.0))
            }
        };
        if i >= probation {
            out.push(Point {
                score: file.scores[i],
                weight,
                window: current.map(|w| window_base + w - first_kept),
            });
        }
    }
    (out, kept)
}

/// Counts and raw score of a detector at one threshold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tally {
    pub windows: usize,
    pub true_positives: usize,
    pub false_negatives: usize,
    /// Detections outside any window.
    pub false_positives: usize,
    pub score: f64,
    /// The null detector's score (every window missed).
    pub null: f64,
    /// The perfect detector's score (one detection at the start of every window).
    pub perfect: f64,
    /// Where the score fell short of the perfect one, in raw score: with `score` they add up
    /// to `perfect`.
    pub lost: Losses,
}

/// What a detector's score lost against the perfect detector's, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Losses {
    /// Windows with no detection: the perfect detection's weight and the miss's cost.
    pub missed: f64,
    /// Windows detected after their first row: the weight the delay cost.
    pub late: f64,
    /// Detections outside every window.
    pub false_alarms: f64,
}

impl Tally {
    /// NAB's normalised score: 0 for the null detector, 100 for the perfect one.
    pub fn normalised(&self) -> f64 {
        self.points(self.score - self.null)
    }

    /// Adds another tally's counts and scores (files scored apart, normalised together).
    pub fn add(&mut self, other: &Tally) {
        self.windows += other.windows;
        self.true_positives += other.true_positives;
        self.false_negatives += other.false_negatives;
        self.false_positives += other.false_positives;
        self.score += other.score;
        self.null += other.null;
        self.perfect += other.perfect;
        self.lost.missed += other.lost.missed;
        self.lost.late += other.lost.late;
        self.lost.false_alarms += other.lost.false_alarms;
    }

    /// The losses in points of the normalised score: they add up to 100 minus
    /// [`Tally::normalised`].
    pub fn lost_points(&self) -> Losses {
        Losses {
            missed: self.points(self.lost.missed),
            late: self.points(self.lost.late),
            false_alarms: self.points(self.lost.false_alarms),
        }
    }

    /// A raw score difference in points of the normalised score (0 when the perfect and the
    /// null detector score alike, as for files without windows).
    fn points(&self, raw: f64) -> f64 {
        let span = self.perfect - self.null;
        if span.abs() < f64::EPSILON {
            0.0
        } else {
            100.0 * raw / span
        }
    }
}

/// The weight the perfect detector earns per window: a detection at the window's first row.
fn perfect_weight() -> f64 {
    scaled_sigmoid(-1.0)
}

/// Scores files at one threshold (a row is a detection when `score >= threshold`).
pub fn score_at(files: &[File], profile: Profile, threshold: f64) -> Tally {
    let mut tally = Tally::default();
    for file in files {
        let (points, windows) = points(file, 0);
        let mut best: Vec<Option<f64>> = vec![None; windows];
        for p in points.iter().filter(|p| p.score >= threshold) {
            match p.window {
                Some(w) => {
                    best[w] = Some(best[w].map_or(p.weight, |b: f64| b.max(p.weight)));
                }
                None => {
                    tally.false_positives += 1;
                    tally.score += p.weight * profile.fp_weight;
                    tally.lost.false_alarms -= p.weight * profile.fp_weight;
                }
            }
        }
        let perfect = perfect_weight() * profile.tp_weight;
        for b in best {
            match b {
                Some(w) => {
                    tally.true_positives += 1;
                    tally.score += w * profile.tp_weight;
                    tally.lost.late += perfect - w * profile.tp_weight;
                }
                None => {
                    tally.false_negatives += 1;
                    tally.score -= profile.fn_weight;
                    tally.lost.missed += perfect + profile.fn_weight;
                }
            }
        }
        tally.windows += windows;
    }
    tally.null = -profile.fn_weight * tally.windows as f64;
    tally.perfect = perfect_weight() * profile.tp_weight * tally.windows as f64;
    tally
}

/// The corpus-wide threshold that maximises a profile's score, and the score there.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sweep {
    pub profile: &'static str,
    pub threshold: f64,
    pub tally: Tally,
}

/// Sweeps the threshold over every distinct score in the corpus (and above the largest, where
/// nothing is detected) and keeps the best, as NAB's optimiser does.
pub fn sweep(files: &[File], profile: Profile) -> Sweep {
    let mut all: Vec<Point> = Vec::new();
    let mut windows = 0;
    for file in files {
        let (p, w) = points(file, windows);
        all.extend(p);
        windows += w;
    }
    all.sort_by(|a, b| b.score.total_cmp(&a.score));
    // Every window starts missed; a window's part is its best detection so far.
    let mut parts: Vec<f64> = vec![-profile.fn_weight; windows];
    let mut score = -profile.fn_weight * windows as f64;
    let mut best_score = score;
    let mut best_threshold = 1.1_f64.max(all.first().map_or(0.0, |p| p.score + 1e-9));
    let mut i = 0;
    while i < all.len() {
        let threshold = all[i].score;
        while i < all.len() && all[i].score == threshold {
            let p = all[i];
            match p.window {
                Some(w) => {
                    let part = p.weight * profile.tp_weight;
                    if part > parts[w] {
                        score += part - parts[w];
                        parts[w] = part;
                    }
                }
                None => score += p.weight * profile.fp_weight,
            }
            i += 1;
        }
        if score > best_score {
            best_score = score;
            best_threshold = threshold;
        }
    }
    Sweep {
        profile: profile.name,
        threshold: best_threshold,
        tally: score_at(files, profile, best_threshold),
    }
}

// --- Leave one category out ------------------------------------------------------------------

/// The configurations the leave-one-category-out procedure chooses among: the given one and
/// its neighbours in the three settings that shape what counts as an episode (the alert
/// level, the robust z of full surprise, the novelty margin), in a fixed order, the given one
/// first.
pub fn candidates(
    base: vigil_core::models::anomaly::DetectorConfig,
) -> Vec<vigil_core::models::anomaly::DetectorConfig> {
    let mut out = vec![base];
    for alert_level in [0.3, 0.35, 0.4, 0.45, 0.5] {
        for z_scale in [
            base.z_scale * 2.0 / 3.0,
            base.z_scale,
            base.z_scale * 4.0 / 3.0,
        ] {
            for novelty_margin in [
                base.novelty_margin / 2.0,
                base.novelty_margin,
                base.novelty_margin * 2.0,
            ] {
                let c = vigil_core::models::anomaly::DetectorConfig {
                    alert_level,
                    z_scale,
                    novelty_margin,
                    ..base
                };
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
    }
    out
}

/// One candidate configuration with one category held out: its best score on every other
/// category (one threshold swept over them), that threshold, and the held-out category scored
/// at it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Trial {
    pub others: f64,
    pub threshold: f64,
    pub held: Tally,
}

/// A candidate's trials, one per category held out (files scored by that candidate). A corpus
/// of one category has nothing to choose on, and no trial.
pub fn trials(files: &[File], profile: Profile) -> std::collections::BTreeMap<String, Trial> {
    let categories: std::collections::BTreeSet<&str> = files.iter().map(File::category).collect();
    let mut out = std::collections::BTreeMap::new();
    if categories.len() < 2 {
        return out;
    }
    for held in categories {
        let (mine, others): (Vec<File>, Vec<File>) =
            files.iter().cloned().partition(|f| f.category() == held);
        let chosen = sweep(&others, profile);
        out.insert(
            held.to_owned(),
            Trial {
                others: chosen.tally.normalised(),
                threshold: chosen.threshold,
                held: score_at(&mine, profile, chosen.threshold),
            },
        );
    }
    out
}

/// One category as if never seen: the candidate chosen on the others, and its score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeldOut {
    pub category: String,
    /// Index of the chosen candidate.
    pub candidate: usize,
    pub threshold: f64,
    pub score: f64,
    pub tally: Tally,
}

/// The leave-one-category-out figure: each category scored with the candidate and threshold
/// chosen on the other categories, the tallies then normalised together as one corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaveOneOut {
    pub profile: &'static str,
    pub candidates: usize,
    pub categories: Vec<HeldOut>,
    pub tally: Tally,
    pub score: f64,
}

/// Chooses, for each held-out category, the candidate whose trial scored best on the other
/// categories (the first on a tie: candidates are listed in a fixed order), never looking at
/// the held-out category's own score.
pub fn leave_one_category_out(
    per_candidate: &[std::collections::BTreeMap<String, Trial>],
    profile: Profile,
) -> LeaveOneOut {
    let mut categories = Vec::new();
    let mut total = Tally::default();
    let names: std::collections::BTreeSet<&String> =
        per_candidate.iter().flat_map(|t| t.keys()).collect();
    for name in names {
        let mut best: Option<(usize, &Trial)> = None;
        for (i, trials) in per_candidate.iter().enumerate() {
            if let Some(t) = trials.get(name)
                && best.is_none_or(|(_, b)| t.others > b.others)
            {
                best = Some((i, t));
            }
        }
        let Some((candidate, trial)) = best else {
            continue;
        };
        total.add(&trial.held);
        categories.push(HeldOut {
            category: name.clone(),
            candidate,
            threshold: trial.threshold,
            score: trial.held.normalised(),
            tally: trial.held,
        });
    }
    LeaveOneOut {
        profile: profile.name,
        candidates: per_candidate.len(),
        categories,
        score: total.normalised(),
        tally: total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn t0() -> NaiveDateTime {
        NaiveDateTime::parse_from_str("2014-01-01 00:00:00", "%Y-%m-%d %H:%M:%S")
            .unwrap_or_default()
    }

    /// A file of `n` rows, five minutes apart, with windows given as row ranges.
    /// A held-out category is scored with what was chosen on the others, even when another
    /// candidate would have been perfect on it.
    #[test]
    fn a_held_out_category_never_chooses_its_own_candidate() {
        let named = |category: &str, hit: bool| {
            let mut f = file(1000, &[(500, 520)], |i| {
                f64::from(u8::from(hit && i == 500))
            });
            f.name = format!("{category}/f.csv");
            f
        };
        let profile = PROFILES[0];
        // Candidate 0 finds the anomalies of a and b; candidate 1 only c's.
        let zero = trials(
            &[named("a", true), named("b", true), named("c", false)],
            profile,
        );
        let one = trials(
            &[named("a", false), named("b", false), named("c", true)],
            profile,
        );
        let loco = leave_one_category_out(&[zero, one], profile);
        let by: std::collections::BTreeMap<&str, &HeldOut> = loco
            .categories
            .iter()
            .map(|h| (h.category.as_str(), h))
            .collect();
        assert_eq!(by["c"].candidate, 0, "chosen on a and b");
        assert!(by["c"].score.abs() < 1e-9, "{}", by["c"].score);
        assert_eq!(
            by["a"].candidate, 0,
            "a tie on b and c: the first candidate"
        );
        assert!(by["a"].score > 99.0, "{}", by["a"].score);
        assert_eq!(loco.tally.windows, 3);
        assert!((loco.score - 200.0 / 3.0).abs() < 1.0, "{}", loco.score);
        // One category: nothing to choose on.
        assert!(trials(&[named("a", true)], profile).is_empty());
    }

    fn file(n: usize, windows: &[(usize, usize)], scores: impl Fn(usize) -> f64) -> File {
        let ts: Vec<NaiveDateTime> = (0..n)
            .map(|i| t0() + Duration::minutes(5 * i as i64))
            .collect();
        File {
            name: "cat/f.csv".into(),
            windows: windows.iter().map(|&(a, b)| (ts[a], ts[b])).collect(),
            scores: (0..n).map(scores).collect(),
            timestamps: ts,
        }
    }

    fn check(f: &File, threshold: f64, expect: (usize, usize, usize), normalised: f64) {
        let t = score_at(std::slice::from_ref(f), PROFILES[0], threshold);
        assert_eq!(
            (t.true_positives, t.false_positives, t.false_negatives),
            expect,
            "{t:?}"
        );
        assert!(
            (t.normalised() - normalised).abs() < 1e-6,
            "normalised {} != {normalised}",
            t.normalised()
        );
    }

    #[test]
    fn probation_follows_nab() {
        assert_eq!(probation(1000), 150);
        assert_eq!(probation(4032), 604);
        assert_eq!(probation(22_695), 750);
    }

    #[test]
    fn sigmoid_is_one_before_and_minus_one_after() {
        assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_3).abs() < 1e-12);
        assert!(scaled_sigmoid(0.0).abs() < 1e-12);
        assert!((scaled_sigmoid(10.0) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn null_and_perfect_detectors_score_0_and_100() {
        let never = file(1000, &[(400, 449), (700, 749)], |_| 0.0);
        check(&never, 0.5, (0, 0, 2), 0.0);
        let perfect = file(1000, &[(400, 449), (700, 749)], |i| {
            f64::from(u8::from(i == 400 || i == 700))
        });
        check(&perfect, 0.5, (2, 0, 0), 100.0);
    }

    #[test]
    fn a_late_detection_earns_less_and_only_the_first_counts() {
        // Detections at the window's centre and end: the centre one counts, once.
        let late = file(1000, &[(400, 449)], |i| {
            f64::from(u8::from(i == 425 || i == 449))
        });
        let t = score_at(std::slice::from_ref(&late), PROFILES[0], 0.5);
        let expect = scaled_sigmoid(-(449.0 - 425.0 + 1.0) / 50.0);
        assert!((t.score - expect).abs() < 1e-12, "{t:?}");
        assert_eq!(t.true_positives, 1);
    }

    #[test]
    fn false_positives_cost_more_far_from_a_window() {
        // Before any window: the full fp weight.
        let early = file(1000, &[(600, 649)], |i| f64::from(u8::from(i == 300)));
        let t = score_at(std::slice::from_ref(&early), PROFILES[0], 0.5);
        assert!((t.score - (-0.11 - 1.0)).abs() < 1e-12, "{t:?}");
        // Just after a window: nearly free; long after: nearly the full weight.
        let just_after = file(1000, &[(400, 449)], |i| f64::from(u8::from(i == 450)));
        let long_after = file(1000, &[(400, 449)], |i| f64::from(u8::from(i == 900)));
        let a = score_at(std::slice::from_ref(&just_after), PROFILES[0], 0.5).score;
        let b = score_at(std::slice::from_ref(&long_after), PROFILES[0], 0.5).score;
        assert!(a > b, "{a} should beat {b}");
        let expect_a = -1.0 + 0.11 * scaled_sigmoid(1.0 / 49.0);
        assert!((a - expect_a).abs() < 1e-12);
    }

    #[test]
    fn the_losses_add_up_to_what_the_score_lacks() {
        // Two windows: one missed, one found late; one false alarm before them.
        let f = file(1000, &[(400, 449), (700, 749)], |i| {
            f64::from(u8::from(i == 300 || i == 725))
        });
        let t = score_at(std::slice::from_ref(&f), PROFILES[0], 0.5);
        let lost = t.lost_points();
        let span = t.perfect - t.null;
        let perfect = scaled_sigmoid(-1.0);
        let late = perfect - scaled_sigmoid(-(749.0 - 725.0 + 1.0) / 50.0);
        assert!(
            (lost.missed - 100.0 * (perfect + 1.0) / span).abs() < 1e-9,
            "{lost:?}"
        );
        assert!((lost.late - 100.0 * late / span).abs() < 1e-9, "{lost:?}");
        assert!(
            (lost.false_alarms - 100.0 * 0.11 / span).abs() < 1e-9,
            "{lost:?}"
        );
        let total = lost.missed + lost.late + lost.false_alarms;
        assert!((total - (100.0 - t.normalised())).abs() < 1e-9);
        // Tallies added keep the identity.
        let mut both = t;
        both.add(&t);
        let l = both.lost_points();
        assert!((l.missed + l.late + l.false_alarms - (100.0 - both.normalised())).abs() < 1e-9);
    }

    #[test]
    fn probation_rows_are_not_scored() {
        let f = file(1000, &[(400, 449)], |i| f64::from(u8::from(i < 150)));
        check(&f, 0.5, (0, 0, 1), 0.0);
    }

    #[test]
    fn sweep_finds_the_threshold_that_separates() {
        // Detector fires 0.9 at the window start, 0.6 on noise, 0.1 elsewhere.
        let f = file(2000, &[(500, 599), (1500, 1599)], |i| match i {
            500 | 1500 => 0.9,
            i if i % 97 == 0 => 0.6,
            _ => 0.1,
        });
        let s = sweep(std::slice::from_ref(&f), PROFILES[0]);
        assert!((s.threshold - 0.9).abs() < 1e-12, "{s:?}");
        assert!((s.tally.normalised() - 100.0).abs() < 1e-9);
        // Thresholds the sweep visits agree with scoring at them.
        let at = score_at(std::slice::from_ref(&f), PROFILES[0], 0.6);
        assert!(at.score < s.tally.score);
    }

    #[test]
    fn labels_mark_window_rows() {
        let f = file(10, &[(2, 4)], |_| 0.0);
        assert_eq!(f.labels(), vec![0, 0, 1, 1, 1, 0, 0, 0, 0, 0]);
    }
}
