//! `decide`: scored observations in, decisions with their reasons out.
//!
//! Load the policy (the operators' override from SSM, cached, else the bundled one) and
//! correlate into incidents. For each incident the decision flows one way (see
//! `vigil_core::policy`): read what the policy asks for, draft (rules and second opinions,
//! pure), read what the limits need, apply the limits (pure), take the sighting claim, settle
//! (pure). Then, across the batch, the atomic claims: the event itself (a re-delivered event
//! never acts twice), each action's cooldown and its hourly quota, and repeats.

use std::sync::Mutex;
use std::time::{Duration, Instant};
use vigil_core::domain::Code;

use chrono::{DateTime, Utc};

use crate::ports::{
    ActionHistory, Claim, ClaimOnce, DescribeGroup, DigestBook, PortError, PublishAlert,
    ReadKillSwitch, ReadPolicy, RecordIncident, SetDeploymentFreeze, Sightings, TakeQuota,
};
use vigil_core::alert::Alert;
use vigil_core::domain::{Decision, Mode, Reason, Tier};
use vigil_core::incidents;
use vigil_core::policy::{Facts, Policy, Readings};
use vigil_core::stages::{Decisions, ScoredBatch};

/// How long an event id is remembered for de-duplication (EventBridge retries for up to 24 h).
pub const DEDUP_WINDOW_HOURS: i64 = 48;

/// How long an incident record is kept.
pub const INCIDENT_DAYS: i64 = 30;

/// How long a fetched policy override is used before it is read again.
pub const POLICY_TTL: Duration = Duration::from_secs(60);

/// The policy in force: the operators' override when it is valid, else the last good one,
/// else the bundled one. Never falls open: an invalid override changes nothing but is reported.
pub struct PolicyStore {
    deploy_mode: Mode,
    /// The stack's protect tag key, when it sets one: it replaces the policy's.
    protect_tag: Option<String>,
    /// The stack's member accounts (`MemberAccounts`): the only other accounts acted in.
    member_accounts: Vec<String>,
    /// Minutes between the stack's scheduled pulls, when its `ScheduleRate` says.
    pull_minutes: Option<u32>,
    ttl: Duration,
    state: Mutex<StoreState>,
}

struct StoreState {
    current: Policy,
    fetched: Option<Instant>,
    /// The override version last refused, so it is reported once, not on every call.
    refused: Option<String>,
    /// The last day whose digest this process tried to send: the claim that one process of
    /// the stack sends it is taken once a day per process, not on every call.
    digest_day: Option<chrono::NaiveDate>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PolicyStore {
    /// `deploy_mode` is the stack's Mode, the master switch: in dry-run nothing is enforced;
    /// in enforce, a policy override can still shadow everything with `mode: dry-run`.
    pub fn new(bundled: Policy, deploy_mode: Mode, ttl: Duration) -> Self {
        PolicyStore {
            deploy_mode,
            protect_tag: None,
            member_accounts: Vec::new(),
            pull_minutes: None,
            ttl,
            state: Mutex::new(StoreState {
                current: bundled,
                fetched: None,
                refused: None,
                digest_day: None,
            }),
        }
    }

    /// Resources tagged `<tag>=true` are never acted on, whatever the policy says.
    pub fn with_protect_tag(mut self, tag: impl Into<String>) -> Self {
        self.protect_tag = Some(tag.into());
        self
    }

    /// The member accounts the stack acts in, whatever the policy in force says.
    pub fn with_member_accounts(mut self, accounts: Vec<String>) -> Self {
        self.member_accounts = accounts;
        self
    }

    /// Minutes between the stack's scheduled pulls: a pull's finding waits for the next pull
    /// to find it again, whatever the policy's confirmation window says.
    pub fn with_pull_minutes(mut self, minutes: Option<u32>) -> Self {
        self.pull_minutes = minutes;
        self
    }

    /// The day whose digest is due, the first time this process asks on a new day (the day
    /// before `now`, UTC).
    pub fn digest_due(&self, now: DateTime<Utc>) -> Option<chrono::NaiveDate> {
        let day = now.date_naive().pred_opt()?;
        let mut s = lock(&self.state);
        (s.digest_day != Some(day)).then(|| {
            s.digest_day = Some(day);
            day
        })
    }

    /// The policy to decide with, and a reason when an override was refused.
    pub async fn current(
        &self,
        source: &impl ReadPolicy,
        alerts: &impl PublishAlert,
    ) -> (Policy, Option<Reason>) {
        let fresh = lock(&self.state)
            .fetched
            .is_some_and(|t| t.elapsed() < self.ttl);
        let mut notice = None;
        if !fresh {
            match source.read().await {
                Ok(Some((text, version))) => {
                    let name = format!("ssm:v{version}");
                    match Policy::from_yaml(&text, &name) {
                        Ok(p) => {
                            let mut s = lock(&self.state);
                            s.current = p;
                            s.refused = None;
                        }
                        Err(e) => {
                            let why = vigil_core::error_chain(&e);
                            let first_time = {
                                let mut s = lock(&self.state);
                                let first = s.refused.as_deref() != Some(version.as_str());
                                s.refused = Some(version.clone());
                                first
                            };
                            let kept = lock(&self.state).current.id.clone();
                            tracing::error!(version, error = %why, kept, "policy override refused");
                            if first_time {
                                let alert = Alert {
                                    subject: format!("[Vigil] policy override v{version} refused"),
                                    body: format!(
                                        "The policy override (version {version}) is invalid and was not applied:\n  {why}\n\nThe policy in force is still {kept}. Fix the parameter, or run `vigil policy check FILE` before setting it."
                                    ),
                                    attributes: [("severity".to_owned(), "HIGH".to_owned())]
                                        .into_iter()
                                        .collect(),
                                    chat: None,
                                };
                                if let Err(e) = alerts.publish(&alert).await {
                                    tracing::error!(error = %vigil_core::error_chain(&e), "could not report the refused policy");
                                }
                            }
                            notice = Some(Reason::new(
                                Code::OverrideRefused,
                                format!(
                                    "override v{version} is invalid ({why}); {kept} stays in force"
                                ),
                            ));
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %vigil_core::error_chain(&e), "policy override unreadable: keeping the policy in force");
                }
            }
            lock(&self.state).fetched = Some(Instant::now());
        } else {
            // One guard: the scrutinee's guard of an `if let` lives through its block, and a
            // second lock there would wait on it forever.
            let state = lock(&self.state);
            if let Some(v) = &state.refused {
                notice = Some(Reason::new(
                    Code::OverrideRefused,
                    format!(
                        "override v{v} is invalid; {} stays in force",
                        state.current.id
                    ),
                ));
            }
        }
        let mut policy = lock(&self.state).current.clone();
        if let Some(tag) = &self.protect_tag {
            policy.limits.protect_tag = tag.clone();
        }
        policy.member_accounts.clone_from(&self.member_accounts);
        policy.pull_minutes = self.pull_minutes;
        // The stack's Mode is the master switch; an operator's override may only be stricter.
        let overridden_to_dry_run = policy.id.starts_with("ssm:") && policy.mode == Mode::DryRun;
        policy.mode = if self.deploy_mode == Mode::DryRun || overridden_to_dry_run {
            Mode::DryRun
        } else {
            Mode::Enforce
        };
        (policy, notice)
    }
}

/// Whether a decision rests on the scheduled pull's readings alone.
fn pulled(d: &vigil_core::domain::Decision) -> bool {
    !d.incident.evidence.is_empty()
        && d.incident
            .evidence
            .iter()
            .all(|e| e.observation.signal.source == vigil_core::domain::Source::MetricPull)
}

/// The ports `decide` uses.
pub struct DecidePorts<'a, C, K, G, H, Q, P, A> {
    pub claims: &'a C,
    pub kill_switch: &'a K,
    pub groups: &'a G,
    /// Earlier attempts (read), and the incident record (written): one table in AWS.
    pub history: &'a H,
    pub quotas: &'a Q,
    pub policy: &'a P,
    pub alerts: &'a A,
}

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("a port failed while deciding")]
    Port(#[from] PortError),
}

/// Decides on one scored batch. `owner` identifies this delivery (the state machine's
/// execution id, else the Lambda request id): stable across retries of one delivery, distinct
/// between deliveries.
pub async fn handle<C, K, G, H, Q, P, A>(
    input: ScoredBatch,
    owner: &str,
    store: &PolicyStore,
    ports: &DecidePorts<'_, C, K, G, H, Q, P, A>,
    now: DateTime<Utc>,
) -> Result<Decisions, DecideError>
where
    C: ClaimOnce,
    K: ReadKillSwitch,
    G: DescribeGroup,
    H: ActionHistory + RecordIncident + SetDeploymentFreeze + Sightings + DigestBook,
    Q: TakeQuota,
    P: ReadPolicy,
    A: PublishAlert,
{
    let (policy, notice) = store.current(ports.policy, ports.alerts).await;
    if let Some(day) = store.digest_due(now) {
        send_digest(day, ports.claims, ports.history, ports.alerts, owner, now).await;
    }
    let mut decisions = Vec::new();
    let peers = vigil_core::policy::GroupReadings::of_batch(&input.scored);
    for incident in incidents::open(input.scored) {
        // 1. What the policy needs read for this incident.
        let reads = policy.reads(&incident, now);
        let attempts = ports
            .history
            .recent(&incident.resource.id, reads.since)
            .await?;
        let group_attempts = match &reads.group {
            Some((group, since)) => {
                ports
                    .history
                    .recent(
                        &vigil_core::keys::in_account(
                            incident.resource.account.as_deref(),
                            vigil_core::keys::group(group),
                        ),
                        *since,
                    )
                    .await?
            }
            None => Vec::new(),
        };
        let readings = Readings {
            attempts,
            group_attempts,
            peers: peers.clone(),
        };
        // 2. The rules' proposal and the second opinions.
        let account = incident.resource.account.clone();
        let mut draft = policy.draft(incident, &readings, now);
        if let Some(n) = &notice {
            draft.cite(n.clone());
        }
        // 3. The facts the limits need, then the limits.
        let needs = draft.needs();
        let mut facts = Facts {
            attempts: readings.attempts,
            ..Facts::default()
        };
        if needs.kill_switch {
            facts.kill_switch = match ports.kill_switch.engaged().await {
                Ok(engaged) => engaged,
                Err(e) => {
                    tracing::error!(error = %e, "kill switch unreadable: failing closed");
                    true
                }
            };
        }
        if let Some(group) = &needs.capacity {
            // A member account's group is read there, through its member role.
            facts.group = Some(match account.as_deref() {
                Some(account) => ports.groups.capacity_in(account, group).await?,
                None => ports.groups.capacity(group).await?,
            });
        }
        let pending = policy.limit(draft, &facts, now);
        // 4. The claim the decision waits on (a finding seen a second time), then the decision.
        let sightings = match pending.sighting() {
            Some((key, window)) => Some(ports.history.sighted(key, owner, now, window).await?),
            None => None,
        };
        decisions.push(policy.settle(pending, sightings));
    }

    // De-duplication: after every read that can fail (so a retry is not mistaken for a
    // duplicate) and before any claim that has an effect.
    if let Some(event_id) = &input.event_id {
        let until = now + chrono::Duration::hours(DEDUP_WINDOW_HOURS);
        let key = vigil_core::keys::event(event_id);
        if ports.claims.claim(&key, owner, now, until).await? == Claim::Held {
            tracing::info!(event_id, "duplicate event: already decided");
            for d in &mut decisions {
                *d = d.clone().shelve(Reason::new(
                    Code::Dedup,
                    format!("event {event_id} was already handled: recorded only"),
                ));
            }
            return Ok(Decisions { decisions });
        }
    }

    let keep = now + chrono::Duration::days(INCIDENT_DAYS);
    // Incidents people hear about, and those on a deployment target that the gate weighs.
    let recorded = |d: &vigil_core::domain::Decision| {
        d.tier != Tier::Observe
            || (vigil_core::gate::target_of(&d.incident.resource).is_some()
                && d.incident.severity >= vigil_core::domain::Severity::Medium)
    };
    for d in decisions.iter().filter(|d| recorded(d)) {
        if !ports
            .history
            .record_incident(&d.incident, d.tier, keep)
            .await?
        {
            tracing::info!(incident = %d.incident.id, "incident already recorded");
        }
    }

    // A threat blocked on a deployment target holds its deployments at the gate.
    for d in &mut decisions {
        let Some(target) = vigil_core::gate::target_of(&d.incident.resource) else {
            continue;
        };
        if d.tier != Tier::Block || d.incident.threat.is_none() || d.mode != Mode::Enforce {
            continue;
        }
        let until = now + chrono::Duration::hours(i64::from(policy.gate.freeze.hours));
        let reason = format!(
            "{} on {} (incident {}, decision {})",
            d.incident.what(),
            d.incident.resource.id,
            d.incident.id,
            d.id
        );
        ports.history.set_freeze(&target, &reason, until).await?;
        d.reasons.push(Reason::new(
            Code::GateFreeze,
            format!(
                "deployments of {target} are held at the gate until {} or until people lift the freeze",
                until.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    }

    // A retry of this delivery re-wins its own cooldown claims, so two decisions of one batch on
    // the same target (a group's surge read on each of its instances) are told apart here.
    let mut this_batch = std::collections::BTreeSet::new();
    for decision in &mut decisions {
        let Some(action) = decision.action.as_ref().filter(|_| decision.acts()) else {
            continue;
        };
        let target = action.target();
        let key = vigil_core::keys::in_account(
            decision.incident.resource.account.as_deref(),
            vigil_core::keys::cooldown(action.kind(), &target.to_string()),
        );
        if !this_batch.insert(key) {
            let reason = Reason::new(
                Code::Cooldown,
                format!("{target} is acted on by another decision of this batch: not repeating it"),
            );
            *decision = decision.clone().hold(reason);
            continue;
        }
        *decision = claim_action(
            decision.clone(),
            &policy,
            ports.claims,
            ports.quotas,
            owner,
            now,
        )
        .await?;
    }

    // People hear of a persisting finding once per `repeat_minutes` (after the limits, so a
    // held action's repeats count too). A retry of this delivery re-wins its own claims.
    for decision in &mut decisions {
        let Some(key) = policy.told_key(decision) else {
            continue;
        };
        let repeat = policy.repeat_period(decision);
        if ports.claims.claim(&key, owner, now, now + repeat).await? == Claim::Held {
            *decision = policy.repeated(decision.clone());
        }
    }

    // What was recorded without telling anyone joins the day's digest. Best effort: the
    // decisions stand whether or not it is counted.
    let keep = now + chrono::Duration::days(DIGEST_DAYS);
    for entry in decisions.iter().flat_map(vigil_core::digest::entries) {
        if let Err(e) = ports.history.note(now.date_naive(), &entry, keep).await {
            tracing::warn!(error = %vigil_core::error_chain(&e), rule = entry.rule, "digest not counted");
        }
    }
    // A pull's healthy readings are not handed on: remediate would record nothing for them,
    // yet be called once per instance per pull (docs/scale.md). They are logged here.
    let healthy = decisions
        .iter()
        .filter(|d| d.found_nothing() && pulled(d))
        .count();
    if healthy > 0 {
        decisions.retain(|d| !(d.found_nothing() && pulled(d)));
        tracing::info!(healthy, "healthy readings of the pull: recorded only");
    }
    Ok(Decisions { decisions })
}

/// How long a day's digest counts are kept.
pub const DIGEST_DAYS: i64 = 3;

/// Sends `day`'s digest, once for the stack: the process that wins the day's claim reads the
/// counts and publishes them (nothing when none were recorded). Best effort: a failure is
/// logged, and a digest lost is not retried (the matches stay in the audit trail).
async fn send_digest(
    day: chrono::NaiveDate,
    claims: &impl ClaimOnce,
    book: &impl DigestBook,
    alerts: &impl PublishAlert,
    owner: &str,
    now: DateTime<Utc>,
) {
    let key = vigil_core::keys::digest_sent(day);
    let until = now + chrono::Duration::days(DIGEST_DAYS);
    let sent = async {
        if claims.claim(&key, owner, now, until).await? == Claim::Held {
            return Ok::<_, PortError>(None);
        }
        let lines = book.lines(day).await?;
        match vigil_core::digest::alert(day, &lines) {
            Some(alert) => alerts.publish(&alert).await.map(Some),
            None => Ok(None),
        }
    };
    match sent.await {
        Ok(Some(id)) => tracing::info!(%day, message = id, "digest sent"),
        Ok(None) => {}
        Err(e) => {
            tracing::error!(%day, error = %vigil_core::error_chain(&e), "digest not sent");
        }
    }
}

/// The limits on an acting decision that are claims: its target's cooldown and its kind's
/// hourly quota. A claim held by someone else holds the decision. Used by decide for every
/// decision that acts, and by approve for an approved one.
pub async fn claim_action(
    mut decision: Decision,
    policy: &Policy,
    claims: &impl ClaimOnce,
    quotas: &impl TakeQuota,
    owner: &str,
    now: DateTime<Utc>,
) -> Result<Decision, PortError> {
    let Some(action) = decision.action.as_ref().filter(|_| decision.acts()) else {
        return Ok(decision);
    };
    let (kind, target) = (action.kind(), action.target());
    let key = vigil_core::keys::in_account(
        decision.incident.resource.account.as_deref(),
        vigil_core::keys::cooldown(kind, &target),
    );
    if claims
        .claim(&key, owner, now, now + policy.cooldown())
        .await?
        == Claim::Held
    {
        let reason = Reason::new(
            Code::Cooldown,
            format!(
                "{target} was already acted on in the last {} minutes: not repeating it",
                policy.limits.cooldown_minutes
            ),
        );
        return Ok(decision.hold(reason));
    }
    decision.reasons.push(Reason::new(
        Code::Cooldown,
        format!(
            "free: {target} not acted on in the last {} minutes",
            policy.limits.cooldown_minutes
        ),
    ));
    let hour = now.timestamp() / 3600;
    let limit = policy.limits.max_actions_per_hour;
    let until = now + chrono::Duration::hours(2);
    match quotas
        .take(&vigil_core::keys::rate(kind, hour), limit, until)
        .await?
    {
        Some(n) => {
            decision.reasons.push(Reason::new(
                Code::Rate,
                format!("{n}/{limit} {kind} actions this hour"),
            ));
            Ok(decision)
        }
        None => {
            let reason = Reason::new(
                Code::Rate,
                format!("{limit} {kind} actions already taken this hour: holding this one"),
            );
            Ok(decision.hold(reason))
        }
    }
}
