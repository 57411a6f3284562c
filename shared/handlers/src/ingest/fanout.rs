//! The pull fanned out ([`fanout`]): the schedule's tick is planned once (the watched instances
//! and their volumes, in batches written as the Distributed Map's items), and each batch the
//! map hands a child execution is pulled on its own, as the tick's pull would have pulled
//! those instances.

use super::{IngestConfig, IngestError, IngestPorts, admit, pull};
use crate::ports::{
    DetectorMemory, FetchMetrics, LastDeploy, ListDiskMetrics, ListWatchedInstances, StorePlan,
};
use vigil_core::events::{self, Envelope, Normalised};
use vigil_core::metrics::fanout::{self, PullBatch, PullPlan};
use vigil_core::metrics::{DiskMetric, WatchedInstance};
use vigil_core::stages::Observed;

/// What the ingest function is asked: an EventBridge event (the pipeline workflow), the tick
/// to plan (`{"plan": <event>}`, the pull workflow's first state) or a batch to pull
/// (`{"batch": ...}`, each child execution of its map).
#[derive(Debug, Clone)]
pub enum Request {
    Event(Box<Envelope>),
    Plan(Box<Envelope>),
    Batch(PullBatch),
}

impl Request {
    /// Reads a request strictly: a `plan` or `batch` request holds that key alone, and
    /// anything else must be an EventBridge event.
    pub fn parse(value: serde_json::Value) -> Result<Request, IngestError> {
        let refused = |e: serde_json::Error| IngestError::Event(events::EventError::Envelope(e));
        if let Some(object) = value.as_object()
            && object.len() == 1
        {
            if let Some(plan) = object.get("plan") {
                return Ok(Request::Plan(Box::new(
                    serde_json::from_value(plan.clone()).map_err(refused)?,
                )));
            }
            if let Some(batch) = object.get("batch") {
                return Ok(Request::Batch(
                    serde_json::from_value(batch.clone()).map_err(refused)?,
                ));
            }
        }
        Ok(Request::Event(Box::new(
            serde_json::from_value(value).map_err(refused)?,
        )))
    }
}

/// The ports the plan uses.
pub struct PlanPorts<'a, W, D, P> {
    pub watched: &'a W,
    pub disks: &'a D,
    pub plans: &'a P,
}

/// How many member accounts are listed at once.
const ACCOUNT_CONCURRENCY: usize = 8;

/// Plans the schedule's tick: every watched instance once, with its volumes, in batches written
/// as the map's items: the stack's own account's, and each member account's read through its
/// member role. Only a tick is planned; any other event is refused. The own account's listing
/// failing fails the plan (the workflow retries it, then reports it); a member account's
/// failing leaves that account out of this pull, logged and counted (`vigil_accounts_not_listed`,
/// alarmed), never the others.
pub async fn plan<W, D, P>(
    event: &Envelope,
    config: &IngestConfig,
    ports: &PlanPorts<'_, W, D, P>,
) -> Result<PullPlan, IngestError>
where
    W: ListWatchedInstances,
    D: ListDiskMetrics,
    P: StorePlan,
{
    admit(event, config)?;
    let Normalised::Tick { at } = events::normalise(event)? else {
        return Err(IngestError::NotATick(vigil_core::names::display_text(
            &event.detail_type,
            128,
        )));
    };
    let tick = event.id.clone().unwrap_or_else(|| at.to_rfc3339());
    let mut instances = ports.watched.watched(&config.watch_tag).await?;
    let mut disks = pull::discover_disks(&instances, ports.disks).await;
    let (members, accounts_not_listed) = list_members(config, ports).await;
    for (found, volumes) in members {
        instances.extend(found);
        disks.extend(volumes);
    }
    let planned = fanout::plan(&instances, &disks);
    let batched = fanout::batches(planned.items);
    let key = fanout::plan_key(&tick, at);
    let body = serde_json::to_vec(&batched.batches).map_err(IngestError::Items)?;
    let bytes = body.len();
    ports.plans.store_plan(&key, body).await?;
    let batched_instances = batched.batches.iter().map(|b| b.items.len()).sum();
    for instance in &batched.too_heavy {
        tracing::warn!(%instance, "not pulled: its group's tags make its windows too large for one batch");
    }
    tracing::info!(
        instances = batched_instances,
        batches = batched.batches.len(),
        bytes,
        vigil_volumes_not_read = planned.volumes_not_read,
        vigil_too_heavy = batched.too_heavy.len(),
        accounts_not_listed,
        key,
        "pull planned"
    );
    Ok(PullPlan {
        tick,
        at,
        key,
        instances: batched_instances,
        batches: batched.batches.len(),
        volumes_not_read: planned.volumes_not_read,
        too_heavy: batched.too_heavy.len(),
        accounts_not_listed,
    })
}

/// Each member account's watched instances (each carrying its account) and their volumes,
/// listed through its member role, in the order the stack names them; and how many accounts
/// could not be listed.
async fn list_members<W, D, P>(
    config: &IngestConfig,
    ports: &PlanPorts<'_, W, D, P>,
) -> (Vec<(Vec<WatchedInstance>, Vec<DiskMetric>)>, usize)
where
    W: ListWatchedInstances,
    D: ListDiskMetrics,
{
    use futures_util::stream::{self, StreamExt};
    let members = config
        .member_accounts
        .iter()
        .filter(|m| config.account.as_deref() != Some(m.as_str()));
    let mut listed: Vec<(usize, Result<_, _>)> = stream::iter(members.enumerate())
        .map(|(n, account)| async move {
            let found = match ports.watched.watched_in(account, &config.watch_tag).await {
                Ok(mut found) => {
                    for w in &mut found {
                        w.account = Some(account.clone());
                    }
                    let volumes = pull::discover_disks(&found, ports.disks).await;
                    Ok((found, volumes))
                }
                Err(e) => {
                    // One line per account: the metric filter counts them.
                    tracing::warn!(
                        account = %account,
                        error = %vigil_core::error_chain(&e),
                        vigil_accounts_not_listed = 1,
                        "member account's watched instances not listed: not pulled this time"
                    );
                    Err(())
                }
            };
            (n, found)
        })
        .buffer_unordered(ACCOUNT_CONCURRENCY)
        .collect()
        .await;
    listed.sort_by_key(|(n, _)| *n);
    let failed = listed.iter().filter(|(_, r)| r.is_err()).count();
    (
        listed.into_iter().filter_map(|(_, r)| r.ok()).collect(),
        failed,
    )
}

/// Pulls one batch of the plan: its instances' metrics with the volumes the plan found, each
/// detector going on from its kept state. Its observations' event ids are the batch's own
/// ([`PullBatch::id`]).
pub async fn pull_batch<I, H, W, D, M, L, S>(
    batch: &PullBatch,
    config: &IngestConfig,
    ports: &IngestPorts<'_, I, H, W, D, M, L, S>,
) -> Result<Observed, IngestError>
where
    D: ListDiskMetrics,
    M: FetchMetrics,
    L: LastDeploy,
    S: DetectorMemory,
{
    batch.check()?;
    if let Some(account) = batch.account()
        && !config.member_accounts.iter().any(|m| m == account)
    {
        return Err(IngestError::NotAMember(vigil_core::names::display_text(
            account, 32,
        )));
    }
    let instances: Vec<_> = batch.items.iter().map(|i| i.watched()).collect();
    let disks = batch.items.iter().flat_map(|i| i.disk_metrics()).collect();
    let id = batch.id();
    let observations = pull::pull(&id, batch.at, &instances, Some(disks), config, ports).await?;
    Ok(Observed {
        event_id: Some(id),
        observations,
        ignored: None,
    })
}
