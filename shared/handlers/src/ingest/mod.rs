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
use vigil_core::stages::Observed;

mod fanout;
mod pull;

pub use fanout::{PlanPorts, Request, plan, pull_batch};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event was refused")]
    Event(#[from] EventError),
    #[error("enriching the signal failed")]
    Port(#[from] PortError),
    #[error("the pull's batch was refused")]
    Batch(#[from] metrics::fanout::BatchError),
    #[error("only the schedule's tick is planned, not a {0} event")]
    NotATick(String),
    #[error("the pull's batch is of account {0}, which the stack does not name as a member")]
    NotAMember(String),
    #[error("the pull's items could not be written")]
    Items(#[source] serde_json::Error),
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
            IngestError::Event(_)
            | IngestError::Batch(_)
            | IngestError::NotATick(_)
            | IngestError::NotAMember(_) => EVENT_REFUSED,
            IngestError::Port(_) | IngestError::Items(_) => PORT_FAILED,
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
    /// Member accounts whose events the stack takes (forwarded by their member stacks): an
    /// event from one is read as about that account, and must agree with itself.
    pub member_accounts: Vec<String>,
    /// The stack's Region: an event from another is refused, and every signal carries the
    /// Region it is about. `None` (local tools) checks nothing and marks nothing.
    pub region: Option<String>,
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
            member_accounts: Vec::new(),
            region: None,
            rules: vigil_rules::Pack::bundled().ok().cloned(),
            correlations: vigil_rules::Pack::bundled()
                .map(|p| p.correlated())
                .unwrap_or_default(),
        }
    }
}

impl IngestConfig {
    /// The pull's settings at `period` seconds per point ([`vigil_core::metrics::windows_at`]);
    /// `None` for a period the pull does not read.
    pub fn at_period(self, period: u32) -> Option<IngestConfig> {
        let (points, instance_points) = vigil_core::metrics::windows_at(period)?;
        Some(IngestConfig {
            period,
            points,
            instance_points,
            ..self
        })
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
    admit(event, config)?;
    let mut signals = match events::normalise(event)? {
        Normalised::Signals(signals) => signals,
        Normalised::Tick { at } => {
            let tick = event.id.clone().unwrap_or_else(|| at.to_rfc3339());
            let instances = ports.watched.watched(&config.watch_tag).await?;
            return pull::pull(&tick, at, &instances, None, config, ports)
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
    let member = member_of(event, config);
    for signal in &mut signals {
        if let Some(member) = member {
            signal.resource.account = Some(member.to_owned());
        }
        // The event's Region is the stack's (admitted above), unless the event names the
        // resource's own (a finding aggregated from another Region).
        if signal.resource.region.is_none() {
            signal.resource.region = config.region.clone();
        }
        if signal.resource.kind != ResourceKind::Instance || signal.resource.group.is_some() {
            continue;
        }
        let Ok(Some(instance)) = signal.resource.instance_id() else {
            continue;
        };
        let found = match signal.resource.account.as_deref() {
            // An instance of a member account is looked up there, through its member role.
            Some(account) if config.member_accounts.iter().any(|m| m == account) => {
                ports.instances.membership_in(account, &instance).await?
            }
            Some(_) => None,
            None => ports.instances.membership(&instance).await?,
        };
        if let Some(m) = found {
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

/// An event within the size limit, from the stack's own Region, and from and about the stack's
/// own account (or a member's it names).
fn admit(event: &Envelope, config: &IngestConfig) -> Result<(), IngestError> {
    let size = serde_json::to_vec(&event.detail).map_or(usize::MAX, |v| v.len());
    if size > events::MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size,
            max: events::MAX_EVENT_BYTES,
        }
        .into());
    }
    if let Some(region) = config.region.as_deref() {
        events::check_region(event, region)?;
    }
    if let Some(account) = config.account.as_deref() {
        if let Some(member) = member_of(event, config) {
            // Forwarded by a member stack: about that account only.
            events::check_account(event, member)?;
            return Ok(());
        }
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
    Ok(())
}

/// The member account an event comes from, when it is one the stack takes.
fn member_of<'a>(event: &'a Envelope, config: &IngestConfig) -> Option<&'a str> {
    let from = event.account.as_deref()?;
    (config.account.as_deref() != Some(from) && config.member_accounts.iter().any(|m| m == from))
        .then_some(from)
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
            group: Some(group.clone()),
            application: s.resource.application.clone(),
            environment: s.resource.environment.clone(),
            tags: s.resource.tags.clone(),
            // A member account's instance is read there, through its member role.
            account: s.resource.account.clone(),
        };
        let tick = format!("{}:second-look", event_id.unwrap_or(&s.event_id));
        match pull::read_instances(&tick, s.observed_at, &[watched], config, ports).await {
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
