//! `ingest`: an EventBridge event in, observations (signals with their features) out.
//!
//! Parse, normalise (pure), enrich each instance with its Auto Scaling group (port), compute
//! features (pure). An unknown event is logged and counted, and yields nothing.

use crate::ports::{
    DescribeInstance, DetectorMemory, FetchMetrics, LastDeploy, ListDiskMetrics,
    ListWatchedInstances, PortError, PrincipalHistory,
};
use vigil_core::domain::{Observation, ResourceKind, Signal, SignalKind, Source};
use vigil_core::events::{self, Envelope, EventError, Normalised};
use vigil_core::features::correlation::{Correlation, Group};
use vigil_core::features::{self, Context};
use vigil_core::metrics;
use vigil_core::models::anomaly::DetectorConfig;
use vigil_core::stages::Observed;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event was refused")]
    Event(#[from] EventError),
    #[error("enriching the signal failed")]
    Port(#[from] PortError),
}

/// The error type `ingest` reports for a refused event: final, the state machine does not retry
/// it.
pub const EVENT_REFUSED: &str = "Vigil.EventRefused";
/// The error type `ingest` reports when an AWS call failed: the state machine retries it.
pub const PORT_FAILED: &str = "Vigil.PortFailed";

impl IngestError {
    /// The error type the function reports to Lambda, which the state machine's `Retry`
    /// matches: a refused event is final, a failed AWS call is worth another try.
    pub fn error_type(&self) -> &'static str {
        match self {
            IngestError::Event(_) => EVENT_REFUSED,
            IngestError::Port(_) => PORT_FAILED,
        }
    }
}

/// Settings of the scheduled metric pull.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Auto Scaling groups tagged `<watch_tag>=true` are watched.
    pub watch_tag: String,
    /// Seconds per datapoint.
    pub period: u32,
    /// Datapoints per window: enough history for the streaming detector to learn from.
    pub points: usize,
    /// The most recent datapoints the instance features read (the failure-mode classifier
    /// was trained on windows of this length).
    pub instance_points: usize,
    /// Most observations one tick hands on (the state machine's payload is bounded); the
    /// most anomalous-looking are not chosen here, the first are, and the rest are counted.
    pub max_observations: usize,
    /// Datapoints of each window kept in the observation after its features are computed.
    pub keep_points: usize,
    /// GuardDuty findings below this severity are ignored (Security Hub findings too, on the
    /// same 0-10 scale).
    pub guardduty_min_severity: f64,
    /// The products whose Security Hub findings are taken in (`ProductName`, compared without
    /// case); none by default. Vigil's own are never read back, whatever this says.
    pub securityhub_products: Vec<String>,
    /// The stack's account: an event from or about another is refused. `None` (local tools)
    /// checks only that an event agrees with itself.
    pub account: Option<String>,
    /// The detection rules every CloudTrail record and sign-in is matched against: the bundled
    /// pack unless a caller gives another (the operators' override, see [`crate::rules`]).
    pub rules: Option<std::sync::Arc<vigil_rules::Pack>>,
    /// The correlation rules, with their windows in the state table's histories.
    pub correlations: Vec<Correlation>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            watch_tag: "vigil:watch".to_owned(),
            period: 60,
            points: 360,
            instance_points: 60,
            max_observations: 200,
            keep_points: 5,
            // GuardDuty's medium band starts at 4.0.
            guardduty_min_severity: 4.0,
            securityhub_products: Vec::new(),
            account: None,
            rules: vigil_rules::Pack::bundled().ok().cloned(),
            correlations: vigil_rules::Pack::bundled()
                .map(|p| p.correlated())
                .unwrap_or_default(),
        }
    }
}

/// The ports `ingest` uses.
pub struct IngestPorts<'a, I, H, W, D, M, L, S> {
    pub instances: &'a I,
    pub history: &'a H,
    pub watched: &'a W,
    pub disks: &'a D,
    pub metrics: &'a M,
    /// The gate's deploy records: how long ago each target was deployed.
    pub deploys: &'a L,
    /// The pull's detector states, kept between pulls.
    pub detectors: &'a S,
}

/// Handles one EventBridge event.
pub async fn handle<I, H, W, D, M, L, S>(
    event: &Envelope,
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> Result<Observed, IngestError>
where
    I: DescribeInstance,
    H: PrincipalHistory,
    W: ListWatchedInstances,
    D: ListDiskMetrics,
    M: FetchMetrics,
    L: LastDeploy,
    S: DetectorMemory,
{
    let size = serde_json::to_vec(&event.detail).map_or(usize::MAX, |v| v.len());
    if size > events::MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size,
            max: events::MAX_EVENT_BYTES,
        }
        .into());
    }
    if let Some(account) = config.account.as_deref() {
        events::check_account(event, account)?;
        if let Some(from) = event.account.as_deref().filter(|a| *a != account) {
            return Err(EventError::WrongAccount {
                detail_type: vigil_core::names::display_text(&event.detail_type, 128),
                event_id: event.id.clone().unwrap_or_default(),
                claimed: vigil_core::names::display_text(from, 32),
                account: account.to_owned(),
            }
            .into());
        }
    }
    let mut signals = match events::normalise(event)? {
        Normalised::Signals(signals) => signals,
        Normalised::Tick { at } => {
            let tick = event.id.clone().unwrap_or_else(|| at.to_rfc3339());
            return pull(&tick, at, config, ports)
                .await
                .map(|observations| Observed {
                    event_id: event.id.clone(),
                    observations,
                    ignored: None,
                });
        }
        Normalised::Ignored(why) => {
            // One log line per ignored event; `vigil_ignored_events` is the counter the
            // dashboard charts (a metric filter on this field).
            tracing::warn!(vigil_ignored_events = 1, reason = %why, "event ignored");
            return Ok(Observed {
                event_id: event.id.clone(),
                observations: Vec::new(),
                ignored: Some(why.to_string()),
            });
        }
    };
    // Another product's finding counts only from a product the stack names.
    let from_products = signals.len();
    signals.retain(|s| {
        events::securityhub_product(s).is_none_or(|p| {
            config
                .securityhub_products
                .iter()
                .any(|allowed| allowed.trim().eq_ignore_ascii_case(p))
        })
    });
    if signals.is_empty() && from_products > 0 {
        let why = "a Security Hub finding of a product the stack does not take (SecurityHubInputProducts)";
        tracing::warn!(vigil_ignored_events = 1, reason = %why, "event ignored");
        return Ok(Observed {
            event_id: event.id.clone(),
            observations: Vec::new(),
            ignored: Some(why.to_owned()),
        });
    }
    if let Some(pack) = &config.rules {
        match_rules(pack, &event.detail, &mut signals);
    }
    let before = signals.len();
    signals.retain(|s| match &s.kind {
        SignalKind::Finding { severity, .. } => *severity >= config.guardduty_min_severity,
        _ => true,
    });
    if signals.is_empty() && before > 0 {
        let why = format!(
            "finding below the stack's severity threshold {}",
            config.guardduty_min_severity
        );
        tracing::info!(vigil_ignored_events = 1, reason = %why, "event ignored");
        return Ok(Observed {
            event_id: event.id.clone(),
            observations: Vec::new(),
            ignored: Some(why),
        });
    }
    for signal in &mut signals {
        if signal.resource.kind != ResourceKind::Instance || signal.resource.group.is_some() {
            continue;
        }
        let Ok(Some(instance)) = signal.resource.instance_id() else {
            continue;
        };
        if let Some(m) = ports.instances.membership(&instance).await? {
            signal.resource.group = Some(m.group);
            signal.resource.application = m.application;
            signal.resource.environment = m.environment;
            signal.resource.tags = m.tags;
        }
    }
    let mut observations = observe(signals, ports.history, &config.correlations).await?;
    reported(config.rules.as_deref(), &mut observations);
    second_look(&mut observations, event.id.as_deref(), config, ports).await;
    Ok(Observed {
        event_id: event.id.clone(),
        observations,
        ignored: None,
    })
}

/// The raw record of a CloudTrail call or sign-in is matched against the detection rules, and
/// each signal it gave carries the hits (logged once, by rule name).
fn match_rules(pack: &vigil_rules::Pack, detail: &serde_json::Value, signals: &mut [Signal]) {
    if !signals.iter().any(|s| s.source == Source::CloudTrail) {
        return;
    }
    let hits = pack.check(detail);
    if hits.is_empty() {
        return;
    }
    let names: Vec<&str> = hits.iter().map(|h| h.name.as_str()).collect();
    tracing::info!(rules = ?names, "detection rules matched");
    for s in signals
        .iter_mut()
        .filter(|s| s.source == Source::CloudTrail)
    {
        s.rules.clone_from(&hits);
    }
}

/// Once the correlation windows have counted them, the matches of building-block rules
/// (Sigma's `generate: false`) are dropped: the policy and people see only reported rules.
pub fn reported(pack: Option<&vigil_rules::Pack>, observations: &mut [Observation]) {
    if let Some(pack) = pack {
        for o in observations {
            pack.reported(&mut o.signal.rules);
        }
    }
}

/// An alarm on a watched instance gets a second look: the instance's metrics are read at once,
/// as the pull reads them, and the failure-mode classifier's reading joins the alarm as
/// evidence (the policy weighs one against the other). Best effort: when the metrics cannot be
/// read, the alarm goes on alone.
async fn second_look<I, H, W, D, M, L, S>(
    observations: &mut Vec<Observation>,
    event_id: Option<&str>,
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) where
    D: ListDiskMetrics,
    M: FetchMetrics,
    L: LastDeploy,
{
    let mut looked = Vec::new();
    for o in observations.iter() {
        let s = &o.signal;
        if !matches!(
            s.kind,
            SignalKind::AlarmStateChange {
                state: vigil_core::domain::AlarmState::Alarm,
                ..
            }
        ) {
            continue;
        }
        let (Ok(Some(instance)), Some(group)) = (s.resource.instance_id(), &s.resource.group)
        else {
            continue;
        };
        let watched = metrics::WatchedInstance {
            instance,
            group: group.clone(),
            application: s.resource.application.clone(),
            environment: s.resource.environment.clone(),
            tags: s.resource.tags.clone(),
        };
        let tick = format!("{}:second-look", event_id.unwrap_or(&s.event_id));
        match read_instances(&tick, s.observed_at, &[watched], config, ports).await {
            Ok(read) => looked.extend(
                read.into_iter()
                    .filter(|o| matches!(o.signal.kind, SignalKind::InstanceMetrics { .. })),
            ),
            Err(e) => {
                tracing::warn!(error = %vigil_core::error_chain(&e), "second look at the alarm's instance failed: the alarm goes on alone");
            }
        }
    }
    observations.extend(looked);
}

/// Signals to observations: features, and for CloudTrail calls and sign-ins the principal's
/// novelty against its history, which the call then joins. Correlation rules fold each call a
/// base rule matched into their windows (in the principal's history, or the source address's)
/// and add their own hit when a burst is complete. (Also the simulator's way in for generated
/// CloudTrail activity.)
pub async fn observe<H: PrincipalHistory>(
    signals: Vec<vigil_core::domain::Signal>,
    history: &H,
    correlations: &[Correlation],
) -> Result<Vec<Observation>, PortError> {
    let mut observations = Vec::with_capacity(signals.len());
    for mut signal in signals {
        if !matches!(
            signal.kind,
            SignalKind::ApiCall(_) | SignalKind::ConsoleSignIn { .. }
        ) {
            let features = features::extract(&signal, Context::default());
            observations.push(Observation { signal, features });
            continue;
        }
        // Features against the history before this call, then the call joins it. The history
        // is the role's, whatever the session is called.
        let key = vigil_core::keys::history_key(&signal.resource.id).to_owned();
        let mut profile = history.load(&key).await?.unwrap_or_default();
        let mut found = Vec::new();
        for c in correlations.iter().filter(|c| c.counts(&signal)) {
            match c.group {
                Group::Principal => found.extend(c.fold(&mut profile.correlations, &signal)),
                Group::SourceAddress => {
                    let Some(address) = c.history_of(&signal) else {
                        continue;
                    };
                    let mut other = history.load(&address).await?.unwrap_or_default();
                    found.extend(c.fold(&mut other.correlations, &signal));
                    history.save(&address, &other, signal.observed_at).await?;
                }
            }
        }
        for hit in found {
            if !signal.rules.iter().any(|r| r.name == hit.name) {
                tracing::info!(rule = %hit.name, "correlation rule matched");
                signal.rules.push(hit);
            }
        }
        signal
            .rules
            .sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.name.cmp(&b.name)));
        let features = features::extract(
            &signal,
            Context {
                principal: Some(&profile),
                ..Context::default()
            },
        );
        profile.observe(&signal);
        history.save(&key, &profile, signal.observed_at).await?;
        observations.push(Observation { signal, features });
    }
    Ok(observations)
}

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
async fn pull<I, H, W, D, M, L, S>(
    tick: &str,
    at: chrono::DateTime<chrono::Utc>,
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> Result<Vec<Observation>, IngestError>
where
    W: ListWatchedInstances,
    D: ListDiskMetrics,
    M: FetchMetrics,
    L: LastDeploy,
    S: DetectorMemory,
{
    use metrics::state::{Cold, InstanceState, MetricState};
    use std::collections::BTreeMap;
    let instances = ports.watched.watched(&config.watch_tag).await?;
    let (queries, end) = plan_read(at, &instances, config, ports).await;
    let end_secs = end.timestamp();
    let detector = DetectorConfig::for_window(config.period, config.points);
    let mut kept = recall(&instances, ports.detectors).await;
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
            ports
                .metrics
                .fetch(&batch, start, end, config.period)
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
    Ok(observe_windows(windows, at, &instances, queries.len(), config, ports).await)
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
async fn read_instances<I, H, W, D, M, L, S>(
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
    let (queries, end) = plan_read(at, instances, config, ports).await;
    let start = end - chrono::Duration::seconds(i64::from(config.period) * config.points as i64);
    let results = ports
        .metrics
        .fetch(&queries, start, end, config.period)
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

/// The queries of a read (disk metrics discovered first) and the end of its window: whole
/// periods only, as the current, incomplete one would look like a drop.
async fn plan_read<I, H, W, D, M, L, S>(
    at: chrono::DateTime<chrono::Utc>,
    instances: &[metrics::WatchedInstance],
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> (Vec<metrics::MetricQuery>, chrono::DateTime<chrono::Utc>)
where
    D: ListDiskMetrics,
{
    // Disk metrics are optional: without them the pull goes on with the rest.
    let disks = match ports.disks.disks(instances).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %vigil_core::error_chain(&e), "disk metrics not discovered");
            Vec::new()
        }
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
