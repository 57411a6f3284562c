//! Features of one metric's recent window: level, robust z-score, EWMA deviation, slope and
//! time to exhaustion, rate of change, spike/flatline/missing ratios, and the seasonal residual
//! where the window is long enough. Pure; every output is finite for any input.

/// The names of [`super::WINDOW_V1`], in the order [`window`] returns them.
pub const NAMES: [&str; 13] = [
    "level",
    "robust_z",
    "ewma_dev",
    "slope_per_hour",
    "tte_hours",
    "rate_of_change",
    "spike_ratio",
    "flatline_ratio",
    "missing_ratio",
    "seasonal_residual_z",
    "points",
    "is_percent",
    // Set across metrics by `features::relate_cpu_to_load`; 0 within one window.
    "cpu_minus_load_z",
];

/// Hours reported when nothing is being exhausted (a week: beyond any alerting horizon).
pub const NO_EXHAUSTION_HOURS: f64 = 168.0;

/// Largest window processed; longer inputs keep their most recent points.
pub const MAX_POINTS: usize = 4096;

/// MAD to standard deviation, for normally distributed data.
const MAD_SCALE: f64 = 1.4826;
/// Robust z-scores beyond this count as spikes.
const SPIKE_Z: f64 = 3.5;
/// Scores are capped here so one wild point cannot dominate a model.
const Z_CAP: f64 = 50.0;
const EWMA_ALPHA: f64 = 0.3;

/// How to read a window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowSpec {
    /// Seconds between datapoints.
    pub period_secs: u32,
    /// The metric is a percentage of a capacity (memory, disk), so it can be exhausted at 100.
    pub percent: bool,
    /// Datapoints in one season (a day), when the window may span one; 0 for none.
    pub season_points: usize,
}

fn clamp(v: f64, lo: f64, hi: f64) -> f64 {
    if v.is_nan() { 0.0 } else { v.clamp(lo, hi) }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// Median of a non-empty slice (reorders it).
fn median(xs: &mut [f64]) -> f64 {
    let n = xs.len();
    let mid = n / 2;
    let (_, m, _) = xs.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        let lower = xs[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + m) / 2.0
    }
}

/// Robust centre and spread: median and scaled MAD, with a floor on the spread so a flat
/// series does not make every small move infinite.
fn robust(values: &[f64], scratch: &mut Vec<f64>) -> (f64, f64) {
    scratch.clear();
    scratch.extend_from_slice(values);
    let med = median(scratch);
    for v in scratch.iter_mut() {
        *v = (*v - med).abs();
    }
    let mad = median(scratch) * MAD_SCALE;
    let floor = 1e-6_f64.max(med.abs() * 1e-3);
    (med, mad.max(floor))
}

/// Computes [`NAMES`] for one window (oldest first; `None` = missing datapoint).
pub fn window(points: &[Option<f64>], spec: WindowSpec) -> [f64; 13] {
    let points = &points[points.len().saturating_sub(MAX_POINTS)..];
    let n = points.len();
    let mut out = [0.0; 13];
    out[4] = NO_EXHAUSTION_HOURS;
    out[10] = n as f64;
    out[11] = f64::from(u8::from(spec.percent));
    if n == 0 {
        out[8] = 1.0;
        return out;
    }
    // Present values with their positions; non-finite datapoints count as missing.
    let mut xs: Vec<f64> = Vec::with_capacity(n);
    let mut ts: Vec<f64> = Vec::with_capacity(n);
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p.filter(|v| v.is_finite()) {
            xs.push(v.clamp(-1e15, 1e15));
            ts.push(i as f64);
        }
    }
    out[8] = 1.0 - xs.len() as f64 / n as f64;
    let Some(&last) = xs.last() else {
        return out;
    };
    out[0] = last;
    let mut scratch = Vec::with_capacity(xs.len());
    let (med, spread) = robust(&xs, &mut scratch);
    out[1] = clamp((last - med) / spread, -Z_CAP, Z_CAP);

    // EWMA of everything before the last point, and its exponentially weighted deviation.
    if xs.len() >= 3 {
        let mut mean = xs[0];
        let mut var = 0.0;
        for &x in &xs[1..xs.len() - 1] {
            let d = x - mean;
            mean += EWMA_ALPHA * d;
            var = (1.0 - EWMA_ALPHA) * (var + EWMA_ALPHA * d * d);
        }
        let sd = var.sqrt().max(spread / MAD_SCALE * 0.5).max(1e-6);
        out[2] = clamp((last - mean) / sd, -Z_CAP, Z_CAP);
    }

    // Least-squares slope per datapoint, then per hour.
    if xs.len() >= 2 {
        let per_point = fit(&ts, &xs).map_or(0.0, |f| f.slope);
        let per_hour = per_point * 3600.0 / f64::from(spec.period_secs.max(1));
        out[3] = finite(per_hour);
        if spec.percent && per_hour > 1e-9 {
            let head = (100.0 - last).max(0.0);
            out[4] = clamp(head / per_hour, 0.0, NO_EXHAUSTION_HOURS);
        }
        // Relative change of the last point against the window's median.
        out[5] = clamp((last - med) / med.abs().max(spread), -Z_CAP, Z_CAP);
    }

    let spikes = xs
        .iter()
        .filter(|&&x| ((x - med) / spread).abs() > SPIKE_Z)
        .count();
    out[6] = spikes as f64 / xs.len() as f64;

    // The longest run of identical consecutive values, as a share of the window.
    let mut longest = 1usize;
    let mut run = 1usize;
    for w in xs.windows(2) {
        if w[0] == w[1] {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 1;
        }
    }
    out[7] = if xs.len() >= 2 {
        longest as f64 / xs.len() as f64
    } else {
        0.0
    };

    // The last point against the same time one season ago, when the window reaches back.
    if spec.season_points > 0
        && n > spec.season_points
        && let Some(then) = points[n - 1 - spec.season_points].filter(|v| v.is_finite())
    {
        out[9] = clamp((last - then) / spread, -Z_CAP, Z_CAP);
    }
    for v in &mut out {
        *v = finite(*v);
    }
    out
}

/// A least-squares line through `(ts, xs)`: its slope, the means it passes through, and the
/// spread of `ts`. `None` when the times do not spread (fewer than two distinct).
struct Fit {
    slope: f64,
    tm: f64,
    xm: f64,
    sxx: f64,
}

fn fit(ts: &[f64], xs: &[f64]) -> Option<Fit> {
    let m = xs.len() as f64;
    if xs.is_empty() {
        return None;
    }
    let tm = ts.iter().sum::<f64>() / m;
    let xm = xs.iter().sum::<f64>() / m;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, x) in ts.iter().zip(xs) {
        sxy += (t - tm) * (x - xm);
        sxx += (t - tm) * (t - tm);
    }
    (sxx > 0.0).then(|| Fit {
        slope: sxy / sxx,
        tm,
        xm,
        sxx,
    })
}

/// How sure the window's least-squares trend is: its slope over the slope's standard error
/// (the t statistic), capped at ±[`Z_CAP`]; 0 with fewer than three points or no spread in time.
/// A projection to exhaustion is worth telling only when the trend under it is this certain.
pub fn trend_t(points: &[Option<f64>]) -> f64 {
    let points = &points[points.len().saturating_sub(MAX_POINTS)..];
    let (ts, xs): (Vec<f64>, Vec<f64>) = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            p.filter(|v| v.is_finite())
                .map(|v| (i as f64, v.clamp(-1e15, 1e15)))
        })
        .unzip();
    if xs.len() < 3 {
        return 0.0;
    }
    let Some(Fit { slope, tm, xm, sxx }) = fit(&ts, &xs) else {
        return 0.0;
    };
    let m = xs.len() as f64;
    let sse: f64 = ts
        .iter()
        .zip(&xs)
        .map(|(t, x)| {
            let r = x - (xm + slope * (t - tm));
            r * r
        })
        .sum();
    let se = (sse / (m - 2.0) / sxx).sqrt();
    if se > 0.0 {
        clamp(slope / se, -Z_CAP, Z_CAP)
    } else if slope.abs() > 0.0 {
        slope.signum() * Z_CAP
    } else {
        0.0
    }
}

/// How far CPU rose relative to the request rate: CPU's robust z minus requests' robust z.
/// Large when CPU climbs while traffic stays flat (a runaway process rather than load).
pub fn cpu_without_load(cpu_z: f64, requests_z: f64) -> f64 {
    clamp(finite(cpu_z) - finite(requests_z), -Z_CAP, Z_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_climb_is_a_certain_trend_and_noise_is_not() {
        // A deterministic wobble of +-0.5 around a flat line, and the same around a climb of
        // 1% an hour (one-minute points, six hours).
        let wobble = |i: usize| ((i * 7919) % 11) as f64 / 10.0 - 0.5;
        let flat: Vec<Option<f64>> = (0..360).map(|i| Some(50.0 + wobble(i))).collect();
        let climb: Vec<Option<f64>> = (0..360)
            .map(|i| Some(50.0 + i as f64 / 60.0 + wobble(i)))
            .collect();
        assert!(trend_t(&flat).abs() < 3.0, "{}", trend_t(&flat));
        assert!(trend_t(&climb) > 20.0, "{}", trend_t(&climb));
        let falling: Vec<Option<f64>> = climb.iter().rev().copied().collect();
        assert!(trend_t(&falling) < -20.0);
        // Too little to say, or nothing but gaps: no trend.
        assert_eq!(trend_t(&[Some(1.0), Some(2.0)]), 0.0);
        assert_eq!(trend_t(&[None, Some(f64::NAN), None, None]), 0.0);
        // A perfect line has no error: the cap, with its sign.
        let line: Vec<Option<f64>> = (0..10).map(|i| Some(f64::from(i))).collect();
        assert_eq!(trend_t(&line), Z_CAP);
    }

    const SPEC: WindowSpec = WindowSpec {
        period_secs: 60,
        percent: true,
        season_points: 0,
    };

    fn check(points: &[Option<f64>], spec: WindowSpec, expect: &[(&str, f64, f64)]) {
        let f = window(points, spec);
        for (name, lo, hi) in expect {
            let i = NAMES.iter().position(|n| n == name).unwrap();
            assert!(
                (*lo..=*hi).contains(&f[i]),
                "{name} = {} not in [{lo}, {hi}] for {points:?}",
                f[i]
            );
        }
    }

    fn series(f: impl Fn(usize) -> f64, n: usize) -> Vec<Option<f64>> {
        (0..n).map(|i| Some(f(i))).collect()
    }

    #[test]
    fn a_spike_at_the_end_has_a_large_robust_z() {
        let mut s = series(|i| 40.0 + (i % 3) as f64, 60);
        s[59] = Some(95.0);
        check(
            &s,
            SPEC,
            &[
                ("robust_z", 20.0, 50.0),
                ("ewma_dev", 5.0, 50.0),
                ("level", 95.0, 95.0),
            ],
        );
    }

    #[test]
    fn a_steady_leak_has_a_slope_and_a_time_to_exhaustion() {
        // +0.5 points a minute from 50%: 30 per hour; at 79.5% there are ~0.68 h left.
        let s = series(|i| 50.0 + 0.5 * i as f64, 60);
        check(
            &s,
            SPEC,
            &[("slope_per_hour", 29.9, 30.1), ("tte_hours", 0.6, 0.8)],
        );
    }

    #[test]
    fn a_flat_series_is_a_flatline_and_never_exhausts() {
        let s = series(|_| 12.0, 60);
        check(
            &s,
            SPEC,
            &[
                ("flatline_ratio", 1.0, 1.0),
                ("robust_z", 0.0, 0.0),
                ("tte_hours", 168.0, 168.0),
            ],
        );
    }

    #[test]
    fn missing_points_are_counted_and_skipped() {
        let mut s = series(|i| i as f64, 10);
        s[3] = None;
        s[4] = Some(f64::NAN);
        check(
            &s,
            SPEC,
            &[("missing_ratio", 0.199, 0.201), ("points", 10.0, 10.0)],
        );
        check(
            &[None, None],
            SPEC,
            &[("missing_ratio", 1.0, 1.0), ("level", 0.0, 0.0)],
        );
        check(&[], SPEC, &[("missing_ratio", 1.0, 1.0)]);
    }

    #[test]
    fn seasonal_residual_compares_with_one_season_ago() {
        let spec = WindowSpec {
            season_points: 24,
            ..SPEC
        };
        let daily = |i: usize| 50.0 + 20.0 * ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
        let s = series(daily, 49);
        check(&s, spec, &[("seasonal_residual_z", -0.01, 0.01)]);
        let mut s = series(daily, 49);
        s[48] = Some(s[48].unwrap() + 30.0);
        check(&s, spec, &[("seasonal_residual_z", 1.0, 50.0)]);
    }

    #[test]
    fn cpu_up_while_requests_flat() {
        assert!(cpu_without_load(8.0, 0.2) > 7.0);
        assert!(cpu_without_load(8.0, 8.0).abs() < 1e-9);
        assert_eq!(cpu_without_load(f64::NAN, 1.0), -1.0);
    }
}
