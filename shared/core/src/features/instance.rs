//! Features of one instance across its metrics ([`super::INSTANCE_V1`]): the input of the
//! failure-mode classifier. Each metric's window is read with [`super::window::window`] and
//! the metrics are related to each other (CPU against load, traffic against its own past,
//! missing datapoints against status checks). Pure; every output is finite for any input.

use super::window::{self, NO_EXHAUSTION_HOURS, WindowSpec};

/// The names of [`super::INSTANCE_V1`], in the order [`instance`] returns them.
pub const NAMES: [&str; 18] = [
    "cpu_level",
    "cpu_shift_z",
    "cpu_slope_per_hour",
    "cpu_minus_load_z",
    "net_in_shift_z",
    "net_out_shift_z",
    "net_in_ratio",
    "net_out_ratio",
    "mem_level",
    "mem_slope_per_hour",
    "mem_tte_hours",
    "disk_level",
    "disk_slope_per_hour",
    "disk_tte_hours",
    "status_failed_recent",
    "missing_recent",
    "minutes_since_deploy",
    "cpu_flatline_ratio",
];

/// Datapoints that count as "recent": the last five.
pub const RECENT: usize = 5;
/// Minutes since a deployment are capped here (and reported when none is known).
pub const DEPLOY_HORIZON_MINUTES: f64 = 1440.0;
const Z_CAP: f64 = 50.0;
const RATIO_CAP: f64 = 20.0;

/// One instance's metric windows (oldest first, `None` for a missing datapoint), all on the
/// same grid of `period_secs`.
#[derive(Debug, Clone, Default)]
pub struct InstanceMetrics<'a> {
    pub period_secs: u32,
    pub cpu: &'a [Option<f64>],
    pub net_in: &'a [Option<f64>],
    pub net_out: &'a [Option<f64>],
    pub status_failed: &'a [Option<f64>],
    /// CloudWatch agent metrics; empty where the agent does not run.
    pub mem: &'a [Option<f64>],
    pub disk: &'a [Option<f64>],
    /// Minutes since the instance's application was last deployed, when known.
    pub minutes_since_deploy: Option<f64>,
}

fn clamp(v: f64, lo: f64, hi: f64) -> f64 {
    if v.is_finite() { v.clamp(lo, hi) } else { 0.0 }
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mid = xs.len() / 2;
    let (_, m, _) = xs.select_nth_unstable_by(mid, f64::total_cmp);
    Some(*m)
}

/// The recent level against the earlier window: (shift in robust spreads, ratio of medians).
/// (0, 1) when either part has no data.
fn shift(points: &[Option<f64>]) -> (f64, f64) {
    let n = points.len();
    if n < RECENT * 2 {
        return (0.0, 1.0);
    }
    let present = |s: &[Option<f64>]| -> Vec<f64> {
        s.iter()
            .filter_map(|p| p.filter(|v| v.is_finite()))
            .collect()
    };
    let before = present(&points[..n - RECENT]);
    let recent = present(&points[n - RECENT..]);
    let (Some(b), Some(r)) = (median(before.clone()), median(recent)) else {
        return (0.0, 1.0);
    };
    let mad = median(before.iter().map(|x| (x - b).abs()).collect()).unwrap_or(0.0) * 1.4826;
    let spread = mad.max(b.abs() * 0.01).max(1e-6);
    let ratio = if b.abs() > 1e-9 {
        r / b
    } else if r.abs() > 1e-9 {
        RATIO_CAP
    } else {
        1.0
    };
    (
        clamp((r - b) / spread, -Z_CAP, Z_CAP),
        clamp(ratio, 0.0, RATIO_CAP),
    )
}

/// The last [`RECENT`] points of a window.
fn recent(s: &[Option<f64>]) -> &[Option<f64>] {
    &s[s.len().saturating_sub(RECENT)..]
}

fn spec(period_secs: u32, percent: bool) -> WindowSpec {
    WindowSpec {
        period_secs,
        percent,
        season_points: 0,
    }
}

/// Computes [`NAMES`].
pub fn instance(m: &InstanceMetrics<'_>) -> [f64; 18] {
    let p = m.period_secs.max(1);
    let cpu = window::window(m.cpu, spec(p, false));
    let (cpu_shift, _) = shift(m.cpu);
    let (in_shift, in_ratio) = shift(m.net_in);
    let (out_shift, out_ratio) = shift(m.net_out);
    let mem = window::window(m.mem, spec(p, true));
    let disk = window::window(m.disk, spec(p, true));
    let status = recent(m.status_failed)
        .iter()
        .filter_map(|v| v.filter(|v| v.is_finite()))
        .fold(0.0, f64::max);
    let cpu_recent = recent(m.cpu);
    let missing = if cpu_recent.is_empty() {
        1.0
    } else {
        cpu_recent.iter().filter(|v| v.is_none()).count() as f64 / cpu_recent.len() as f64
    };
    let level = |w: &[f64; 13], s: &[Option<f64>]| if s.is_empty() { 0.0 } else { w[0] };
    let tte = |w: &[f64; 13], s: &[Option<f64>]| {
        if s.is_empty() {
            NO_EXHAUSTION_HOURS
        } else {
            w[4]
        }
    };
    let mut out = [
        level(&cpu, m.cpu),
        cpu_shift,
        cpu[3],
        clamp(cpu_shift - in_shift, -Z_CAP, Z_CAP),
        in_shift,
        out_shift,
        in_ratio,
        out_ratio,
        level(&mem, m.mem),
        mem[3],
        tte(&mem, m.mem),
        level(&disk, m.disk),
        disk[3],
        tte(&disk, m.disk),
        clamp(status, 0.0, 1.0),
        missing,
        clamp(
            m.minutes_since_deploy.unwrap_or(DEPLOY_HORIZON_MINUTES),
            0.0,
            DEPLOY_HORIZON_MINUTES,
        ),
        cpu[7],
    ];
    for v in &mut out {
        if !v.is_finite() {
            *v = 0.0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: f64, n: usize) -> Vec<Option<f64>> {
        (0..n).map(|i| Some(v + (i % 3) as f64 * 0.1)).collect()
    }

    #[test]
    fn a_traffic_drop_shows_in_the_ratio_and_shift() {
        let mut net = flat(1e6, 60);
        for p in &mut net[55..] {
            *p = Some(1e3);
        }
        let f = instance(&InstanceMetrics {
            period_secs: 60,
            cpu: &flat(30.0, 60),
            net_in: &net,
            net_out: &flat(1e6, 60),
            ..InstanceMetrics::default()
        });
        assert!(f[6] < 0.01, "net_in_ratio {}", f[6]);
        assert!(f[4] < -10.0, "net_in_shift_z {}", f[4]);
        // No agent metrics: levels 0 and nothing exhausted.
        assert_eq!(f[8], 0.0);
        assert_eq!(f[10], NO_EXHAUSTION_HOURS);
        assert_eq!(f[16], DEPLOY_HORIZON_MINUTES);
    }

    #[test]
    fn missing_recent_cpu_and_failed_checks_are_counted() {
        let mut cpu = flat(30.0, 60);
        for p in &mut cpu[57..] {
            *p = None;
        }
        let mut status = flat(0.0, 60);
        status[59] = Some(1.0);
        let f = instance(&InstanceMetrics {
            period_secs: 60,
            cpu: &cpu,
            status_failed: &status,
            ..InstanceMetrics::default()
        });
        assert!((f[15] - 0.6).abs() < 1e-9);
        assert_eq!(f[14], 1.0);
    }

    #[test]
    fn empty_and_hostile_windows_stay_finite() {
        let nan = vec![Some(f64::NAN), Some(f64::INFINITY), None, Some(-1e308)];
        for f in [
            instance(&InstanceMetrics::default()),
            instance(&InstanceMetrics {
                period_secs: 0,
                cpu: &nan,
                net_in: &nan,
                mem: &nan,
                minutes_since_deploy: Some(f64::NAN),
                ..InstanceMetrics::default()
            }),
        ] {
            assert!(f.iter().all(|v| v.is_finite()), "{f:?}");
        }
    }
}
