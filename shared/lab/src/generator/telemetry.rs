//! Healthy and faulty instance telemetry: CPU, network, status checks, memory and disk, on the
//! ingest's grid (one-minute points), with a daily cycle, autocorrelated noise, traffic
//! bursts, benign level shifts, benign deployments and CloudWatch gaps.
//!
//! Calibrated against NAB's real AWS CloudWatch series (`realAWSCloudwatch`): there, CPU
//! medians run from 0.07% to 92%, the median absolute deviation is 1.5% to 20% of the median,
//! the median step between points 1.6% to 14% of it, and the 99th percentile 1.05 to 25 times
//! the median (bursts); network series are noisier (MAD 7% to 39% of the median). The ranges
//! below draw from those spans.

use rand::RngExt;
use rand_distr::{Distribution, Normal};

use super::Rng;
use vigil_core::domain::FailureMode;
use vigil_core::features::instance::{self, InstanceMetrics};

/// The classes the failure-mode classifier names, in label order.
pub const CLASSES: [FailureMode; 8] = [
    FailureMode::Normal,
    FailureMode::CpuRunaway,
    FailureMode::MemoryLeak,
    FailureMode::DiskFilling,
    FailureMode::NetworkPartition,
    FailureMode::InstanceFailure,
    FailureMode::TrafficSurge,
    FailureMode::BadDeployment,
];

/// What one sample looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TelemetryConfig {
    pub period_secs: u32,
    pub points: usize,
}

impl Default for TelemetryConfig {
    /// The ingest's default pull: an hour of one-minute points.
    fn default() -> Self {
        TelemetryConfig {
            period_secs: 60,
            points: 60,
        }
    }
}

/// One instance's generated windows, with the truth.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSample {
    pub label: FailureMode,
    /// The point the fault began at (`None` for healthy samples).
    pub onset: Option<usize>,
    pub cpu: Vec<Option<f64>>,
    pub net_in: Vec<Option<f64>>,
    pub net_out: Vec<Option<f64>>,
    pub status_failed: Vec<Option<f64>>,
    pub mem: Vec<Option<f64>>,
    pub disk: Vec<Option<f64>>,
    pub minutes_since_deploy: Option<f64>,
    /// Hours until memory or disk is full, for leaks and filling disks.
    pub hours_to_exhaustion: Option<f64>,
}

impl InstanceSample {
    /// The sample's [`vigil_core::features::INSTANCE_V1`] features.
    pub fn features(&self, config: TelemetryConfig) -> [f64; 18] {
        instance::instance(&InstanceMetrics {
            period_secs: config.period_secs,
            cpu: &self.cpu,
            net_in: &self.net_in,
            net_out: &self.net_out,
            status_failed: &self.status_failed,
            mem: &self.mem,
            disk: &self.disk,
            minutes_since_deploy: self.minutes_since_deploy,
        })
    }
}

fn log_uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    (rng.random_range(lo.ln()..hi.ln())).exp()
}

fn normal(rng: &mut Rng, sd: f64) -> f64 {
    Normal::new(0.0, sd.max(0.0)).map_or(0.0, |n| n.sample(rng))
}

/// The healthy world of one instance before any fault.
struct Healthy {
    load: Vec<f64>,
    cpu_per_load: f64,
    cpu_idle: f64,
    cpu_noise: f64,
    net_in_per_load: f64,
    net_out_per_load: f64,
    net_noise: f64,
    mem: f64,
    mem_noise: f64,
    disk: f64,
    disk_noise: f64,
    disk_growth_per_point: f64,
    agent: bool,
}

fn healthy(rng: &mut Rng, c: TelemetryConfig) -> Healthy {
    let n = c.points;
    let minutes_per_point = f64::from(c.period_secs) / 60.0;
    let start = rng.random_range(0.0..1440.0);
    let amplitude = rng.random_range(0.0..0.6);
    // AR(1) log-noise of the load.
    let sigma = log_uniform(rng, 0.01, 0.12);
    let phi = rng.random_range(0.5..0.95);
    let mut ar = 0.0;
    let burst_p = log_uniform(rng, 0.001, 0.02);
    let mut burst_left = 0usize;
    let mut burst = 1.0;
    // A benign change of traffic level within the window (a fifth of the samples): up to 1.4
    // times, or down to 0.3 (a client or a region's traffic moving away, a batch ending). A
    // partition leaves at most a few per cent, and the classifier must tell the two apart.
    let shift_at = rng.random_bool(0.2).then(|| rng.random_range(0..n.max(1)));
    let shift = rng.random_range(0.3..1.4);
    let mut load = Vec::with_capacity(n);
    for i in 0..n {
        let minute = start + i as f64 * minutes_per_point;
        let daily = 1.0 + amplitude * (minute / 1440.0 * std::f64::consts::TAU).sin();
        ar = phi * ar + normal(rng, sigma);
        if burst_left == 0 && rng.random_bool(burst_p) {
            burst_left = rng.random_range(1..4);
            burst = rng.random_range(1.3..2.5);
        }
        let b = if burst_left > 0 {
            burst_left -= 1;
            burst
        } else {
            1.0
        };
        let s = if shift_at.is_some_and(|at| i >= at) {
            shift
        } else {
            1.0
        };
        load.push((daily * ar.exp() * b * s).max(0.0));
    }
    let cpu_level = log_uniform(rng, 1.0, 70.0);
    let cpu_idle = cpu_level * rng.random_range(0.05..0.3);
    Healthy {
        load,
        cpu_per_load: cpu_level - cpu_idle,
        cpu_idle,
        cpu_noise: log_uniform(rng, 0.015, 0.15),
        net_in_per_load: log_uniform(rng, 1e4, 1e8),
        net_out_per_load: log_uniform(rng, 1e4, 1e8),
        net_noise: log_uniform(rng, 0.05, 0.35),
        mem: rng.random_range(15.0..75.0),
        mem_noise: log_uniform(rng, 0.05, 0.8),
        disk: rng.random_range(5.0..80.0),
        // Temporary files and log rotation: small moves around the trend.
        disk_noise: log_uniform(rng, 0.005, 0.5),
        // Logs growing slowly: well over a week to fill.
        disk_growth_per_point: rng.random_range(0.0..0.002) * minutes_per_point,
        agent: rng.random_bool(0.8),
    }
}

/// Generates one sample of the given class.
pub fn sample(rng: &mut Rng, label: FailureMode, c: TelemetryConfig) -> InstanceSample {
    let n = c.points.max(instance::RECENT * 2 + 2);
    let c = TelemetryConfig { points: n, ..c };
    generate(
        rng,
        label,
        c,
        |rng| {
            // The fault has been going on for `age` points at the window's end: from just past
            // the recent span to most of the window.
            let age = rng.random_range(instance::RECENT + 1..(n * 2 / 3).max(instance::RECENT + 2));
            n - age
        },
        Agent::Drawn,
    )
}

/// A long series of `c.points` points whose fault (if `label` is not normal) begins at point
/// `onset`: the simulator's instances. The same `rng` state gives the same values before the
/// onset whatever the label, so a healthy and a faulty series of one instance agree until the
/// fault begins.
pub fn series(
    rng: &mut Rng,
    label: FailureMode,
    c: TelemetryConfig,
    onset: usize,
) -> InstanceSample {
    let onset = onset.min(c.points.saturating_sub(1));
    generate(rng, label, c, |_| onset, Agent::Drawn)
}

/// As [`series`], on an instance that runs the CloudWatch agent whatever its profile would
/// draw: the healthy series of an instance whose leak or filling disk the simulator injects
/// (a faulty sample of those always has the agent's series), so that its memory and disk are
/// published before the fault and after it is cleared, as a real instance's are. The same
/// `rng` state gives the same values as [`series`] otherwise: no draw is added or skipped.
pub fn series_with_agent(
    rng: &mut Rng,
    label: FailureMode,
    c: TelemetryConfig,
    onset: usize,
) -> InstanceSample {
    let onset = onset.min(c.points.saturating_sub(1));
    generate(rng, label, c, |_| onset, Agent::Installed)
}

/// Whether an instance runs the CloudWatch agent: as its profile draws it, or surely.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Agent {
    Drawn,
    Installed,
}

fn generate(
    rng: &mut Rng,
    label: FailureMode,
    c: TelemetryConfig,
    onset: impl FnOnce(&mut Rng) -> usize,
    agent: Agent,
) -> InstanceSample {
    let n = c.points;
    let minutes_per_point = f64::from(c.period_secs) / 60.0;
    let mut h = healthy(rng, c);
    if agent == Agent::Installed {
        h.agent = true;
    }
    let onset = onset(rng);
    let age = n - onset;
    let faulty = label != FailureMode::Normal;

    let mut minutes_since_deploy = None;
    let mut hours_to_exhaustion = None;
    // Benign deployments: some healthy instances were deployed to recently, some long ago.
    if !faulty && rng.random_bool(0.3) {
        minutes_since_deploy = Some(rng.random_range(0.0..1440.0));
    }
    if label == FailureMode::TrafficSurge {
        let factor = rng.random_range(2.0..6.0);
        let ramp = rng.random_range(1..6) as f64;
        for (i, l) in h.load.iter_mut().enumerate().skip(onset) {
            let k = (((i - onset) as f64 + 1.0) / ramp).min(1.0);
            *l *= 1.0 + (factor - 1.0) * k;
        }
    }
    if label == FailureMode::NetworkPartition {
        let residual = rng.random_range(0.0..0.03);
        for l in h.load.iter_mut().skip(onset) {
            *l *= residual;
        }
    }

    let mut cpu = Vec::with_capacity(n);
    let mut net_in = Vec::with_capacity(n);
    let mut net_out = Vec::with_capacity(n);
    let mut status = vec![Some(0.0); n];
    let mut mem = Vec::with_capacity(n);
    let mut disk = Vec::with_capacity(n);
    let runaway_level = rng.random_range(80.0..100.0);
    let runaway_ramp = rng.random_range(1..8) as f64;
    let leak_per_hour = log_uniform(rng, 2.0, 40.0);
    let fill_per_hour = log_uniform(rng, 1.0, 30.0);
    // A bad deployment shows as one or two of: CPU up, memory up, responses shrinking.
    let deploy_cpu = rng.random_bool(0.6);
    let deploy_mem = rng.random_bool(0.4);
    let deploy_out = !deploy_cpu && !deploy_mem || rng.random_bool(0.3);
    let deploy_cpu_factor = rng.random_range(1.5..3.5);
    let deploy_mem_jump = rng.random_range(5.0..20.0);
    let deploy_out_factor = rng.random_range(0.2..0.7);
    if label == FailureMode::BadDeployment {
        minutes_since_deploy = Some(age as f64 * minutes_per_point);
    }
    if label == FailureMode::MemoryLeak {
        h.agent = true;
    }
    if label == FailureMode::DiskFilling {
        h.agent = true;
    }
    let mut mem_level = h.mem;
    let mut disk_level = h.disk;
    for i in 0..n {
        let load = h.load[i];
        let mut c_val = h.cpu_idle + h.cpu_per_load * load;
        c_val *= 1.0 + normal(rng, h.cpu_noise);
        let mut out_factor = 1.0;
        let since = i.checked_sub(onset).map(|d| d as f64 + 1.0);
        match (label, since) {
            (FailureMode::CpuRunaway, Some(s)) => {
                let k = (s / runaway_ramp).min(1.0);
                c_val = c_val + (runaway_level - c_val) * k + normal(rng, 1.5);
            }
            (FailureMode::BadDeployment, Some(_)) => {
                if deploy_cpu {
                    c_val *= deploy_cpu_factor;
                }
                if deploy_out {
                    out_factor = deploy_out_factor;
                }
            }
            (FailureMode::NetworkPartition, Some(_)) => {
                c_val = h.cpu_idle * rng.random_range(0.5..1.2);
            }
            _ => {}
        }
        cpu.push(Some(c_val.clamp(0.0, 100.0)));
        net_in.push(Some(
            (h.net_in_per_load * load * (1.0 + normal(rng, h.net_noise))).max(0.0),
        ));
        net_out.push(Some(
            (h.net_out_per_load * load * out_factor * (1.0 + normal(rng, h.net_noise))).max(0.0),
        ));
        if since.is_some() {
            match label {
                FailureMode::MemoryLeak => mem_level += leak_per_hour * minutes_per_point / 60.0,
                FailureMode::DiskFilling => {
                    disk_level += fill_per_hour * minutes_per_point / 60.0;
                }
                _ => {}
            }
        }
        disk_level += h.disk_growth_per_point;
        let mut m = mem_level + normal(rng, h.mem_noise);
        if label == FailureMode::BadDeployment && deploy_mem && since.is_some() {
            m += deploy_mem_jump;
        }
        mem.push(Some(m.clamp(0.0, 100.0)));
        disk.push(Some(
            (disk_level + normal(rng, h.disk_noise)).clamp(0.0, 100.0),
        ));
    }
    match label {
        FailureMode::MemoryLeak => {
            hours_to_exhaustion = Some(((100.0 - mem_level).max(0.0)) / leak_per_hour);
        }
        FailureMode::DiskFilling => {
            hours_to_exhaustion = Some(((100.0 - disk_level).max(0.0)) / fill_per_hour);
        }
        FailureMode::InstanceFailure => {
            // Failed status checks, datapoints that stop arriving, or both.
            let checks = rng.random_bool(0.8);
            let silent = !checks || rng.random_bool(0.5);
            let from = onset.max(n - age);
            for i in from..n {
                if checks {
                    status[i] = Some(1.0);
                }
                if silent {
                    cpu[i] = None;
                    net_in[i] = None;
                    net_out[i] = None;
                    mem[i] = None;
                    disk[i] = None;
                } else {
                    // A hung instance: CPU pinned at zero or at its limit.
                    cpu[i] = Some(if rng.random_bool(0.5) { 0.0 } else { 100.0 });
                }
            }
        }
        _ => {}
    }
    // CloudWatch gaps: a missing datapoint now and then, on any instance.
    for series in [&mut cpu, &mut net_in, &mut net_out, &mut mem, &mut disk] {
        for p in series.iter_mut() {
            if rng.random_bool(0.005) {
                *p = None;
            }
        }
    }
    if !h.agent {
        mem.clear();
        disk.clear();
    }
    InstanceSample {
        label,
        onset: faulty.then_some(onset),
        cpu,
        net_in,
        net_out,
        status_failed: status,
        mem,
        disk,
        minutes_since_deploy,
        hours_to_exhaustion,
    }
}

/// A labelled data set: `per_class` samples of every class in [`CLASSES`], as feature rows
/// and class indices.
pub fn dataset(seed: u64, per_class: usize, c: TelemetryConfig) -> (Vec<Vec<f64>>, Vec<u32>) {
    let mut rng = super::rng(seed);
    let mut x = Vec::with_capacity(per_class * CLASSES.len());
    let mut y = Vec::with_capacity(per_class * CLASSES.len());
    for _ in 0..per_class {
        for (k, label) in CLASSES.iter().enumerate() {
            let s = sample(&mut rng, *label, c);
            x.push(s.features(c).to_vec());
            y.push(k as u32);
        }
    }
    (x, y)
}

/// As [`dataset`], with `extra_normal` more healthy samples after the balanced ones: the
/// training set leans towards the class that dominates in deployment.
pub fn dataset_with_normal(
    seed: u64,
    per_class: usize,
    extra_normal: usize,
    c: TelemetryConfig,
) -> (Vec<Vec<f64>>, Vec<u32>) {
    let (mut x, mut y) = dataset(seed, per_class, c);
    let mut rng = super::rng(seed ^ 0x4E4F_524D_414C);
    for _ in 0..extra_normal {
        x.push(
            sample(&mut rng, FailureMode::Normal, c)
                .features(c)
                .to_vec(),
        );
        y.push(0);
    }
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_data() {
        let a = dataset(7, 3, TelemetryConfig::default());
        let b = dataset(7, 3, TelemetryConfig::default());
        let c = dataset(8, 3, TelemetryConfig::default());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn faults_leave_their_mark() {
        let c = TelemetryConfig::default();
        let mut rng = super::super::rng(1);
        for _ in 0..20 {
            let s = sample(&mut rng, FailureMode::CpuRunaway, c);
            let last = s.cpu.iter().rev().find_map(|v| *v).unwrap_or(0.0);
            assert!(last > 60.0, "runaway CPU at {last}");
            let s = sample(&mut rng, FailureMode::DiskFilling, c);
            assert!(s.hours_to_exhaustion.is_some_and(|h| h < 100.0));
            let s = sample(&mut rng, FailureMode::InstanceFailure, c);
            let failed = s.status_failed.last().copied().flatten() == Some(1.0);
            let silent = s.cpu.last().copied().flatten().is_none();
            assert!(failed || silent);
            let s = sample(&mut rng, FailureMode::Normal, c);
            assert!(s.onset.is_none() && s.status_failed.iter().all(|v| *v == Some(0.0)));
        }
    }

    /// An instance drawn without the agent has no memory or disk series; drawn again on the
    /// agent it has them, and every other series is the same (no draw added or skipped).
    #[test]
    fn an_instance_on_the_agent_differs_only_in_the_agents_series() {
        let c = TelemetryConfig {
            period_secs: 60,
            points: 400,
        };
        let without = (0..200u64)
            .find(|&seed| {
                series(&mut super::super::rng(seed), FailureMode::Normal, c, 400)
                    .mem
                    .is_empty()
            })
            .unwrap_or_else(|| panic!("a fifth of instances run no agent; none in 200"));
        let drawn = series(&mut super::super::rng(without), FailureMode::Normal, c, 400);
        let on = series_with_agent(&mut super::super::rng(without), FailureMode::Normal, c, 400);
        assert!(drawn.mem.is_empty() && drawn.disk.is_empty());
        assert_eq!((on.mem.len(), on.disk.len()), (400, 400));
        assert_eq!(
            (&on.cpu, &on.net_in, &on.net_out, &on.status_failed),
            (
                &drawn.cpu,
                &drawn.net_in,
                &drawn.net_out,
                &drawn.status_failed
            )
        );
        // A leak's faulty series always has the agent's series: what the healthy one now matches.
        let leak = series(
            &mut super::super::rng(without),
            FailureMode::MemoryLeak,
            c,
            300,
        );
        assert_eq!(leak.mem.len(), 400);
    }
}
