//! The metric pull's reads: the watched instances' recent metrics, each metric's detector
//! going on from the state the last pull kept ([`metrics::state`]), as metric-window
//! observations and one instance observation per instance. A tick reads the whole fleet at
//! once (`vigil simulate`, `vigil replay`); the deployed pull reads it in batches
//! ([`super::fanout`]).

use super::{IngestConfig, IngestError, IngestPorts};
use crate::ports::{DetectorMemory, FetchMetrics, LastDeploy, ListDiskMetrics};
use vigil_core::domain::{Observation, SignalKind};
use vigil_core::features::{self, Context};
use vigil_core::metrics;
use vigil_core::models::anomaly::DetectorConfig;

/// One observation per instance with its metrics read together ([`features::INSTANCE_V1`]),
/// from the last `instance_points` of each window.
fn instance_observations(
    windows: &[Observation],
    since_deploy: &std::collections::BTreeMap<String, f64>,
    config: &IngestConfig,
) -> Vec<Observation> {
    use std::collections::BTreeMap;
    let mut by_instance: BTreeMap<&str, Vec<&Observation>> = BTreeMap::new();
    for o in windows {
        if matches!(o.signal.kind, SignalKind::MetricWindow { .. }) {
            by_instance
                .entry(&o.signal.resource.id)
                .or_default()
                .push(o);
        }
    }
    let recent = |s: &[Option<f64>]| -> Vec<Option<f64>> {
        s[s.len().saturating_sub(config.instance_points)..].to_vec()
    };
    let mut out = Vec::with_capacity(by_instance.len());
    for group in by_instance.values() {
        let mut series: BTreeMap<&str, Vec<Option<f64>>> = BTreeMap::new();
        for o in group {
            if let SignalKind::MetricWindow { metric, points, .. } = &o.signal.kind {
                let name = vigil_core::metrics::metric_name(metric);
                let window = recent(points);
                // Of several volumes, the fullest one speaks for the instance's disk.
                let latest = |w: &[Option<f64>]| w.iter().rev().find_map(|v| *v);
                match series.get(name) {
                    Some(have) if latest(have) >= latest(&window) => {}
                    _ => {
                        series.insert(name, window);
                    }
                }
            }
        }
        let Some(first) = group.first() else { continue };
        let get = |k: &str| series.get(k).map(Vec::as_slice).unwrap_or(&[]);
        let values = features::instance::instance(&features::instance::InstanceMetrics {
            period_secs: config.period,
            cpu: get("CPUUtilization"),
            net_in: get("NetworkIn"),
            net_out: get("NetworkOut"),
            status_failed: get("StatusCheckFailed"),
            mem: get("mem_used_percent"),
            disk: get("disk_used_percent"),
            minutes_since_deploy: vigil_core::gate::target_of(&first.signal.resource)
                .and_then(|t| since_deploy.get(&t).copied()),
        });
        let mut signal = first.signal.clone();
        signal.kind = SignalKind::InstanceMetrics {
            metrics: group
                .iter()
                .filter_map(|o| match &o.signal.kind {
                    SignalKind::MetricWindow { metric, .. } => Some(metric.clone()),
                    _ => None,
                })
                .collect(),
            period: config.period,
            points: config.instance_points,
        };
        signal.values.clear();
        out.push(Observation {
            signal,
            features: vigil_core::domain::FeatureVector {
                schema: features::INSTANCE_V1.to_owned(),
                names: features::instance::NAMES
                    .iter()
                    .map(|s| (*s).to_owned())
                    .collect(),
                values: values.to_vec(),
            },
        });
    }
    out
}

/// The scheduled pull: the watched instances' recent metrics, as metric-window observations
/// and one instance observation per instance. Each metric's detector goes on from the state
/// the last pull kept, so only the points since then are read ([`metrics::state`]).
pub(super) async fn pull<I, H, W, D, M, L, S>(
    tick: &str,
    at: chrono::DateTime<chrono::Utc>,
    instances: &[metrics::WatchedInstance],
    disks: Option<Vec<metrics::DiskMetric>>,
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> Result<Vec<Observation>, IngestError>
where
    D: ListDiskMetrics,
    M: FetchMetrics,
    L: LastDeploy,
    S: DetectorMemory,
{
    use metrics::state::{Cold, InstanceState, MetricState};
    use std::collections::BTreeMap;
    let (queries, end) = plan_read(at, instances, disks, config, ports).await;
    let end_secs = end.timestamp();
    let detector = DetectorConfig::for_window(config.period, config.points);
    let mut kept = recall(instances, ports.detectors).await;
    let mut cold: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut states: Vec<MetricState> = queries
        .iter()
        .map(|q| {
            let found = match kept.get_mut(&q.instance) {
                Some(Ok(s)) => s.metrics.remove(&metrics::label(q)).ok_or(Cold::Missing),
                Some(Err(reason)) => Err(reason.clone()),
                None => Err(Cold::Missing),
            };
            found
                .and_then(|m| {
                    MetricState::resume(m, end_secs, config.period, config.points, detector)
                })
                .unwrap_or_else(|reason| {
                    *cold.entry(reason.label()).or_default() += 1;
                    MetricState::cold(end_secs, config.period, config.points, detector)
                })
        })
        .collect();
    // Two reads at most: the windows read whole, and the rest from the earliest kept end
    // (points before a metric's own end are dropped when they are placed on its grid).
    let whole = end_secs - i64::from(config.period) * config.points as i64;
    // A metric already read up to this pull's end (a repeated tick) is not read again.
    let (fresh, warm): (Vec<usize>, Vec<usize>) = (0..queries.len())
        .filter(|&i| states[i].read_from() < end_secs)
        .partition(|&i| states[i].read_from() <= whole);
    let mut results = BTreeMap::new();
    for group in [fresh, warm] {
        let Some(from) = group.iter().map(|&i| states[i].read_from()).min() else {
            continue;
        };
        let start = chrono::DateTime::from_timestamp(from, 0).unwrap_or(end);
        let batch: Vec<metrics::MetricQuery> = group.iter().map(|&i| queries[i].clone()).collect();
        results.extend(
            fetch(
                ports.metrics,
                account_of(instances),
                &batch,
                start,
                end,
                config,
            )
            .await?,
        );
    }
    let mut windows = Vec::new();
    let empty = Vec::new();
    for (q, state) in queries.iter().zip(states.iter_mut()) {
        let series = results.get(&q.id).unwrap_or(&empty);
        let slots = metrics::on_grid(series, end, config.period, state.slots_to(end_secs));
        let advanced = state.advance(&slots, config.points);
        if !advanced.window.iter().any(Option::is_some) {
            continue;
        }
        let Some(w) = instances.iter().find(|w| w.instance == q.instance) else {
            continue;
        };
        let signal = metrics::signal(tick, end, config.period, w, q, advanced.window);
        windows.push((signal, Some(advanced.score)));
    }
    // What this pull learnt, kept per instance (metrics that never had a point are not).
    let mut by_instance: BTreeMap<vigil_core::names::InstanceId, InstanceState> = BTreeMap::new();
    for (q, state) in queries.iter().zip(states) {
        if !state.window.is_empty() {
            by_instance
                .entry(q.instance.clone())
                .or_default()
                .metrics
                .insert(metrics::label(q), state);
        }
    }
    let warm = queries.len() - cold.values().sum::<usize>();
    let bytes = keep(by_instance, ports.detectors).await;
    tracing::info!(
        warm,
        cold = ?cold,
        vigil_detector_state_bytes = bytes,
        "detector states"
    );
    Ok(observe_windows(windows, at, instances, queries.len(), config, ports).await)
}

/// How many instances' states are read or written at once.
const STATE_CONCURRENCY: usize = 16;

/// Every instance's kept state, or why it cannot be used (an unreadable state is a cold start,
/// logged, never an error of the pull).
async fn recall<S: DetectorMemory>(
    instances: &[metrics::WatchedInstance],
    memory: &S,
) -> std::collections::BTreeMap<
    vigil_core::names::InstanceId,
    Result<metrics::state::InstanceState, metrics::state::Cold>,
> {
    use futures_util::stream::{self, StreamExt};
    use metrics::state::{Cold, InstanceState};
    stream::iter(instances)
        .map(|w| async move {
            let state = match memory.recall(&w.instance).await {
                Ok(Some(bytes)) => InstanceState::decode(&bytes),
                Ok(None) => Err(Cold::Missing),
                Err(e) => Err(Cold::Unreadable(vigil_core::error_chain(&e))),
            };
            if let Err(reason) = &state
                && *reason != Cold::Missing
            {
                tracing::warn!(instance = %w.instance, reason = %reason, "detector state not used: a cold start");
            }
            (w.instance.clone(), state)
        })
        .buffer_unordered(STATE_CONCURRENCY)
        .collect()
        .await
}

/// Keeps each instance's state for the next pull; a state that cannot be written only means
/// a cold start next time. Returns the bytes written.
async fn keep<S: DetectorMemory>(
    states: std::collections::BTreeMap<
        vigil_core::names::InstanceId,
        metrics::state::InstanceState,
    >,
    memory: &S,
) -> usize {
    use futures_util::stream::{self, StreamExt};
    stream::iter(states)
        .map(|(instance, state)| async move {
            let bytes = state.encode();
            let size = bytes.len();
            match memory.keep(&instance, bytes).await {
                Ok(()) => size,
                Err(e) => {
                    tracing::warn!(instance = %instance, error = %vigil_core::error_chain(&e), "detector state not kept: the next pull starts cold");
                    0
                }
            }
        })
        .buffer_unordered(STATE_CONCURRENCY)
        .fold(0, |sum, n| async move { sum + n })
        .await
}

/// The given instances' recent metrics read whole, with fresh detectors and nothing kept (the
/// second look at an alarm's instance: at the alarm's time, not the pull's), as
/// metric-window observations and one instance observation per instance.
pub(super) async fn read_instances<I, H, W, D, M, L, S>(
    tick: &str,
    at: chrono::DateTime<chrono::Utc>,
    instances: &[metrics::WatchedInstance],
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> Result<Vec<Observation>, IngestError>
where
    D: ListDiskMetrics,
    M: FetchMetrics,
    L: LastDeploy,
{
    let (queries, end) = plan_read(at, instances, None, config, ports).await;
    let start = end - chrono::Duration::seconds(i64::from(config.period) * config.points as i64);
    let results = fetch(
        ports.metrics,
        account_of(instances),
        &queries,
        start,
        end,
        config,
    )
    .await?;
    let windows = metrics::signals(
        tick,
        end,
        config.period,
        config.points,
        instances,
        &queries,
        &results,
    )
    .into_iter()
    .map(|s| (s, None))
    .collect();
    Ok(observe_windows(windows, at, instances, queries.len(), config, ports).await)
}

/// The queries of a read (disk metrics discovered first, unless the plan found them) and the
/// end of its window: whole periods only, as the current, incomplete one would look like a
/// drop.
async fn plan_read<I, H, W, D, M, L, S>(
    at: chrono::DateTime<chrono::Utc>,
    instances: &[metrics::WatchedInstance],
    disks: Option<Vec<metrics::DiskMetric>>,
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> (Vec<metrics::MetricQuery>, chrono::DateTime<chrono::Utc>)
where
    D: ListDiskMetrics,
{
    // Disk metrics are optional: without them the pull goes on with the rest.
    let disks = match disks {
        Some(d) => d,
        None => discover_disks(instances, ports.disks).await,
    };
    let period = i64::from(config.period.max(1));
    let end_secs = at.timestamp() - at.timestamp().rem_euclid(period);
    let end = chrono::DateTime::from_timestamp(end_secs, 0).unwrap_or(at);
    (metrics::plan(instances, &disks), end)
}

/// Metric windows (each with its detector's score when the detector ran beyond the window) to
/// observations: their features, and one instance observation per instance.
async fn observe_windows<I, H, W, D, M, L, S>(
    windows: Vec<(vigil_core::domain::Signal, Option<f64>)>,
    at: chrono::DateTime<chrono::Utc>,
    instances: &[metrics::WatchedInstance],
    queries: usize,
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> Vec<Observation>
where
    L: LastDeploy,
{
    let total = windows.len();
    let mut observations: Vec<Observation> = windows
        .into_iter()
        .take(config.max_observations)
        .map(|(signal, detector_score)| Observation {
            features: features::extract(
                &signal,
                Context {
                    detector_score,
                    ..Context::default()
                },
            ),
            signal,
        })
        .collect();
    features::relate_cpu_to_load(&mut observations);
    // The deploy feedback: minutes since the gate last let a deploy through to each target.
    let mut since_deploy = std::collections::BTreeMap::new();
    let targets: std::collections::BTreeSet<String> = instances
        .iter()
        .filter_map(|w| {
            Some(format!(
                "{}/{}",
                w.application.as_ref()?,
                w.environment.as_ref()?
            ))
        })
        .collect();
    for target in targets {
        match ports.deploys.last_deploy(&target).await {
            Ok(Some(d)) => {
                since_deploy.insert(target, (at - d.at).num_seconds().max(0) as f64 / 60.0);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(target, error = %vigil_core::error_chain(&e), "deploy record unreadable");
            }
        }
    }
    let instances_read = instance_observations(&observations, &since_deploy, config);
    observations.extend(instances_read);
    // The pull reads the stack's own Region.
    for o in &mut observations {
        o.signal.resource.region = config.region.clone();
    }
    for o in &mut observations {
        if let SignalKind::MetricWindow { points, .. } = &mut o.signal.kind {
            let excess = points.len().saturating_sub(config.keep_points);
            points.drain(..excess);
        }
    }
    tracing::info!(
        instances = instances.len(),
        queries,
        windows = total,
        vigil_dropped_windows = total.saturating_sub(config.max_observations),
        "metric pull"
    );
    observations
}

/// The account a read is in: its instances' (a batch is of one account, as is a second look;
/// `None` is the stack's own).
fn account_of(instances: &[metrics::WatchedInstance]) -> Option<&str> {
    instances.first().and_then(|w| w.account.as_deref())
}

/// Datapoints of the queries, read in the stack's own account or in a member account through
/// its member role.
async fn fetch<M: FetchMetrics>(
    metrics: &M,
    account: Option<&str>,
    queries: &[metrics::MetricQuery],
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    config: &IngestConfig,
) -> Result<std::collections::BTreeMap<String, metrics::Series>, IngestError> {
    Ok(match account {
        Some(account) => {
            metrics
                .fetch_in(account, queries, start, end, config.period)
                .await?
        }
        None => metrics.fetch(queries, start, end, config.period).await?,
    })
}

/// The instances' disk metrics (in their account), or none when they cannot be listed (the
/// pull goes on with the rest).
pub(super) async fn discover_disks<D: ListDiskMetrics>(
    instances: &[metrics::WatchedInstance],
    disks: &D,
) -> Vec<metrics::DiskMetric> {
    let found = match account_of(instances) {
        Some(account) => disks.disks_in(account, instances).await,
        None => disks.disks(instances).await,
    };
    match found {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %vigil_core::error_chain(&e), "disk metrics not discovered");
            Vec::new()
        }
    }
}
