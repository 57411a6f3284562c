//! The pull fanned out: a fleet's watched instances planned once, in batches (each instance
//! with the disk volumes it reports), which the pull workflow's Distributed Map
//! (`infra/pull.asl.json`) hands one per child execution, each an ingest -> score -> decide of
//! its own.
//!
//! The plan forms the batches, not Step Functions' `ItemBatcher`: what bounds a batch is the
//! payload its stages pass on, which grows with each instance's windows and its group's tags
//! (every observation carries them), and only the plan knows those. [`weight`] bounds a
//! batch's largest payload from above (the scale test checks it against every payload it
//! measures); a batch is closed before its weight passes [`BATCH_WEIGHT`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DiskMetric, PER_INSTANCE, WatchedInstance};
use crate::names::{GroupName, InstanceId};

/// Instances per batch at most.
pub const BATCH_INSTANCES: usize = 10;
/// Step Functions' limit on a state's input and output.
pub const PAYLOAD_LIMIT: usize = 256 * 1024;
/// A batch's weight at most: the limit less a margin.
pub const BATCH_WEIGHT: usize = 224 * 1024;
/// What one observation adds to the largest payload of a batch (decide's, which carries each
/// observation as evidence), before its tags: an upper bound, checked by the scale test.
pub const OBSERVATION_BYTES: usize = 2 * 1024;
/// Disk volumes read per instance at most: every volume is a window. The fullest speaks for
/// the instance; the rest are counted (`volumes_not_read`).
pub const MAX_VOLUMES: usize = 8;
/// Windows one instance gives at most.
pub const MAX_WINDOWS_PER_INSTANCE: usize = PER_INSTANCE.len() + MAX_VOLUMES;

/// One watched instance to pull, as the plan writes it and a batch carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullItem {
    pub instance: InstanceId,
    /// Absent for an instance watched outside any Auto Scaling group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
    /// Each disk volume's extra dimensions (`path`, `device`, `fstype`), as ListMetrics found
    /// them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<Vec<(String, String)>>,
    /// The member account the instance is in (read through its member role); absent for the
    /// stack's own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl PullItem {
    pub fn watched(&self) -> WatchedInstance {
        WatchedInstance {
            instance: self.instance.clone(),
            group: self.group.clone(),
            application: self.application.clone(),
            environment: self.environment.clone(),
            tags: self.tags.clone(),
            account: self.account.clone(),
        }
    }

    pub fn disk_metrics(&self) -> impl Iterator<Item = DiskMetric> + '_ {
        self.disks.iter().map(|d| DiskMetric {
            instance: self.instance.clone(),
            dimensions: d.clone(),
        })
    }

    /// The item's bytes as the plan writes it.
    pub fn bytes(&self) -> usize {
        serde_json::to_vec(self).map_or(usize::MAX, |v| v.len())
    }
}

/// An upper bound of what an instance adds to its batch's largest payload: each of its
/// windows and its instance observation, each carrying the group's tags twice (the signal's
/// resource and the incident's).
pub fn weight(item: &PullItem) -> usize {
    let tags = serde_json::to_vec(&item.tags).map_or(usize::MAX / 4, |v| v.len());
    let observations = PER_INSTANCE.len() + item.disks.len() + 1;
    observations.saturating_mul(OBSERVATION_BYTES.saturating_add(tags.saturating_mul(2)))
}

/// A pull planned: its items, and what was left out of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub items: Vec<PullItem>,
    /// Disk volumes beyond [`MAX_VOLUMES`] of an instance, not read.
    pub volumes_not_read: usize,
}

/// One batch of the plan, as the map's item (`{"items": [...]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedBatch {
    pub items: Vec<PullItem>,
}

/// The plan's batches, and the instances no batch can carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Batched {
    pub batches: Vec<PlannedBatch>,
    /// Instances whose windows, each carrying the group's tags, would pass the payload limit
    /// even alone: not pulled, and counted as instances not scored.
    pub too_heavy: Vec<InstanceId>,
}

/// The plan's items: one per watched instance (each instance once, whatever lists it twice),
/// with its volumes (at most [`MAX_VOLUMES`], the first by path), the stack's own account's
/// first and then each member account's together (a batch reads one account).
pub fn plan(instances: &[WatchedInstance], disks: &[DiskMetric]) -> Planned {
    use std::collections::BTreeMap;
    let mut volumes: BTreeMap<&InstanceId, Vec<Vec<(String, String)>>> = BTreeMap::new();
    for d in disks {
        volumes
            .entry(&d.instance)
            .or_default()
            .push(d.dimensions.clone());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut volumes_not_read = 0;
    let mut items = Vec::with_capacity(instances.len());
    let mut ordered: Vec<&WatchedInstance> = instances.iter().collect();
    ordered.sort_by(|a, b| a.account.cmp(&b.account));
    for w in ordered {
        if !seen.insert((&w.account, &w.instance)) {
            continue;
        }
        let mut disks = volumes.remove(&w.instance).unwrap_or_default();
        disks.sort();
        disks.dedup();
        volumes_not_read += disks.len().saturating_sub(MAX_VOLUMES);
        disks.truncate(MAX_VOLUMES);
        items.push(PullItem {
            instance: w.instance.clone(),
            group: w.group.clone(),
            application: w.application.clone(),
            environment: w.environment.clone(),
            tags: w.tags.clone(),
            disks,
            account: w.account.clone(),
        });
    }
    Planned {
        items,
        volumes_not_read,
    }
}

/// What the plan hands the workflow: where its items are and how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullPlan {
    /// The schedule's tick, which every batch carries (`BatchInput`).
    pub tick: String,
    pub at: DateTime<Utc>,
    /// The batches' object in the stack's bucket (`ItemReader`).
    pub key: String,
    /// Instances in the batches.
    pub instances: usize,
    pub batches: usize,
    pub volumes_not_read: usize,
    /// Instances not pulled: too heavy for any batch ([`Batched::too_heavy`]).
    pub too_heavy: usize,
    /// Member accounts whose watched instances could not be listed (their role could not be
    /// assumed, or the listing failed): their instances are not pulled this time.
    #[serde(default)]
    pub accounts_not_listed: usize,
}

/// The object key of a pull's items: under `pull/`, by the tick's time and a digest of its id
/// (the id is the scheduler's, never used as a path).
pub fn plan_key(tick: &str, at: DateTime<Utc>) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(tick.as_bytes()));
    format!(
        "pull/{}-{}.json",
        at.format("%Y%m%dT%H%M%SZ"),
        &digest[..16]
    )
}

/// One batch, as the Distributed Map gives it to a child execution (its item, with the tick the
/// map's `ItemSelector` adds) and the child's ingest task passes it on (`{"batch": ...}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullBatch {
    pub tick: String,
    pub at: DateTime<Utc>,
    pub items: Vec<PullItem>,
}

impl PullBatch {
    /// The batch's own id within the tick: its first instance's, as each instance is in one
    /// batch of a pull. Its windows' event ids carry it, so two batches never share one and a
    /// batch run again repeats its own (decide acts once).
    pub fn id(&self) -> String {
        match self.items.first() {
            Some(first) => format!("{}:{}", self.tick, first.instance),
            None => self.tick.clone(),
        }
    }
}

/// Why a batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("a batch of {0} instances, over the limit of {BATCH_INSTANCES}")]
    TooMany(usize),
    #[error("instance {0} has {1} volumes, over the limit of {MAX_VOLUMES}")]
    TooManyVolumes(String, usize),
    #[error("instance {0} is twice in the batch")]
    Twice(String),
    #[error("a batch of weight {0}, over the limit of {BATCH_WEIGHT}")]
    TooHeavy(usize),
    #[error("a batch of instances of more than one account")]
    MixedAccounts,
    #[error("{0:?} is not a 12-digit account id")]
    NotAnAccount(String),
}

impl PullBatch {
    /// The account the batch reads: its first instance's (`None`: the stack's own).
    pub fn account(&self) -> Option<&String> {
        self.items.first().and_then(|i| i.account.as_ref())
    }

    /// A batch within the plan's limits: at most [`BATCH_INSTANCES`], each once, each with at
    /// most [`MAX_VOLUMES`], within [`BATCH_WEIGHT`] (what keeps its output under the payload
    /// limit), all of one account (GetMetricData reads one).
    pub fn check(&self) -> Result<(), BatchError> {
        if self.items.len() > BATCH_INSTANCES {
            return Err(BatchError::TooMany(self.items.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for i in &self.items {
            if let Some(account) = &i.account
                && (account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()))
            {
                return Err(BatchError::NotAnAccount(crate::names::display_text(
                    account, 32,
                )));
            }
            if i.account != self.account().cloned() {
                return Err(BatchError::MixedAccounts);
            }
            if i.disks.len() > MAX_VOLUMES {
                return Err(BatchError::TooManyVolumes(
                    i.instance.to_string(),
                    i.disks.len(),
                ));
            }
            if !seen.insert(&i.instance) {
                return Err(BatchError::Twice(i.instance.to_string()));
            }
        }
        let total: usize = self.items.iter().map(weight).sum();
        if total > BATCH_WEIGHT {
            return Err(BatchError::TooHeavy(total));
        }
        Ok(())
    }
}

/// The plan's batches, in order: a batch closes when it holds [`BATCH_INSTANCES`], when the
/// next item would take its weight over [`BATCH_WEIGHT`], or when the next item is of another
/// account; an item over the weight alone is not batched.
pub fn batches(items: Vec<PullItem>) -> Batched {
    let mut out = Batched {
        batches: Vec::new(),
        too_heavy: Vec::new(),
    };
    let mut current: Vec<PullItem> = Vec::new();
    let mut total = 0;
    for item in items {
        let w = weight(&item);
        if w > BATCH_WEIGHT {
            out.too_heavy.push(item.instance);
            continue;
        }
        let other_account = current.first().is_some_and(|c| c.account != item.account);
        if current.len() >= BATCH_INSTANCES || total + w > BATCH_WEIGHT || other_account {
            out.batches.push(PlannedBatch {
                items: std::mem::take(&mut current),
            });
            total = 0;
        }
        total += w;
        current.push(item);
    }
    if !current.is_empty() {
        out.batches.push(PlannedBatch { items: current });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(n: usize) -> Vec<WatchedInstance> {
        (0..n)
            .map(|i| WatchedInstance {
                instance: InstanceId::parse(&format!("i-{i:017x}")).unwrap(),
                group: Some(GroupName::parse(&format!("web-{}", i % 3)).unwrap()),
                application: Some("shop".into()),
                environment: None,
                tags: Default::default(),
                account: None,
            })
            .collect()
    }

    fn disk(w: &WatchedInstance, path: &str) -> DiskMetric {
        DiskMetric {
            instance: w.instance.clone(),
            dimensions: vec![("path".into(), path.into())],
        }
    }

    #[test]
    fn every_instance_is_one_item_with_its_volumes_capped() {
        let mut fleet = watched(3);
        fleet.push(fleet[0].clone());
        let mut disks: Vec<DiskMetric> = (0..11)
            .map(|v| disk(&fleet[0], &format!("/data{v:02}")))
            .collect();
        disks.push(disk(&fleet[1], "/"));
        disks.push(disk(&fleet[1], "/"));
        let planned = plan(&fleet, &disks);
        assert_eq!(planned.items.len(), 3);
        assert_eq!(planned.items[0].disks.len(), MAX_VOLUMES);
        assert_eq!(
            planned.items[0].disks[0],
            vec![("path".into(), "/data00".into())]
        );
        assert_eq!(planned.items[1].disks.len(), 1);
        assert!(planned.items[2].disks.is_empty());
        assert_eq!(planned.volumes_not_read, 11 - MAX_VOLUMES);
    }

    fn tagged(item: &mut PullItem, n: usize, len: usize) {
        item.tags = (0..n)
            .map(|t| (format!("tag-{t:02}"), "v".repeat(len)))
            .collect();
    }

    #[test]
    fn batches_close_on_count_and_on_weight_and_keep_every_item_once() {
        let items = plan(&watched(25), &[]).items;
        let by_count = batches(items.clone());
        assert_eq!(
            by_count
                .batches
                .iter()
                .map(|b| b.items.len())
                .collect::<Vec<_>>(),
            [10, 10, 5]
        );
        assert!(by_count.too_heavy.is_empty());
        // Groups with many long tags: fewer instances a batch, each batch within its weight.
        let mut heavy = items.clone();
        for item in &mut heavy {
            tagged(item, 20, 100);
        }
        let by_weight = batches(heavy.clone());
        assert!(by_weight.batches.iter().all(|b| {
            b.items.iter().map(weight).sum::<usize>() <= BATCH_WEIGHT && b.items.len() < 10
        }));
        let flat: Vec<PullItem> = by_weight
            .batches
            .into_iter()
            .flat_map(|b| b.items)
            .collect();
        assert_eq!(flat, heavy);
        // An instance whose tags pass the limit even alone is counted, not batched.
        let mut one = items[..3].to_vec();
        tagged(&mut one[1], 50, 256);
        one[1].disks = vec![vec![("path".into(), "/".into())]; MAX_VOLUMES];
        let out = batches(one.clone());
        assert_eq!(out.too_heavy, [one[1].instance.clone()]);
        assert_eq!(out.batches.len(), 1);
        assert_eq!(out.batches[0].items.len(), 2);
    }

    #[test]
    fn a_batch_over_the_limits_is_refused_and_its_id_is_its_first_instance() {
        let items = plan(&watched(12), &[]).items;
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let batch = PullBatch {
            tick: "t".into(),
            at,
            items: items[..10].to_vec(),
        };
        assert_eq!(batch.check(), Ok(()));
        assert_eq!(batch.id(), format!("t:{}", items[0].instance));
        let over = PullBatch {
            items: items.clone(),
            ..batch.clone()
        };
        assert_eq!(over.check(), Err(BatchError::TooMany(12)));
        let mut twice = batch.clone();
        twice.items[1] = twice.items[0].clone();
        assert!(matches!(twice.check(), Err(BatchError::Twice(_))));
        let mut volumes = batch.clone();
        volumes.items[0].disks = vec![vec![]; MAX_VOLUMES + 1];
        assert!(matches!(
            volumes.check(),
            Err(BatchError::TooManyVolumes(_, 9))
        ));
        let mut heavy = batch;
        for item in &mut heavy.items {
            tagged(item, 10, 200);
        }
        assert!(matches!(heavy.check(), Err(BatchError::TooHeavy(_))));
    }

    #[test]
    fn member_accounts_are_batched_apart_after_the_stacks_own() {
        // Seven instances listed in no order of account: two members' and the stack's own.
        let mut fleet = watched(7);
        for (w, account) in fleet.iter_mut().zip([
            Some("222222222222"),
            None,
            Some("333333333333"),
            Some("222222222222"),
            None,
            Some("333333333333"),
            Some("222222222222"),
        ]) {
            w.account = account.map(str::to_owned);
        }
        // The same instance id in two accounts is two instances.
        let mut again = fleet[1].clone();
        again.account = Some("333333333333".into());
        fleet.push(again);
        let planned = plan(&fleet, &[]);
        assert_eq!(planned.items.len(), 8);
        let batched = batches(planned.items);
        let accounts: Vec<(Option<&str>, usize)> = batched
            .batches
            .iter()
            .map(|b| (b.items[0].account.as_deref(), b.items.len()))
            .collect();
        assert_eq!(
            accounts,
            [
                (None, 2),
                (Some("222222222222"), 3),
                (Some("333333333333"), 3)
            ]
        );
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        for b in &batched.batches {
            let batch = PullBatch {
                tick: "t".into(),
                at,
                items: b.items.clone(),
            };
            assert_eq!(batch.check(), Ok(()));
            assert!(
                b.items
                    .iter()
                    .all(|i| i.account.as_ref() == batch.account())
            );
        }
        // A batch of two accounts, or of an account that is no account id, is refused.
        let mut mixed = PullBatch {
            tick: "t".into(),
            at,
            items: batched.batches[1].items.clone(),
        };
        mixed.items.push(batched.batches[0].items[0].clone());
        assert_eq!(mixed.check(), Err(BatchError::MixedAccounts));
        let mut forged = PullBatch {
            tick: "t".into(),
            at,
            items: batched.batches[0].items.clone(),
        };
        for item in &mut forged.items {
            item.account = Some("*".into());
        }
        assert!(matches!(forged.check(), Err(BatchError::NotAnAccount(_))));
    }

    #[test]
    fn an_item_from_outside_is_read_strictly() {
        let hostile = r#"{"instance":"i-0123456789abcdef0; rm -rf /","group":"web"}"#;
        assert!(serde_json::from_str::<PullItem>(hostile).is_err());
        let unknown = r#"{"instance":"i-0123456789abcdef0","group":"web","role":"admin"}"#;
        assert!(serde_json::from_str::<PullItem>(unknown).is_err());
        let fine = r#"{"instance":"i-0123456789abcdef0","group":"web"}"#;
        assert!(serde_json::from_str::<PullItem>(fine).is_ok());
        // An instance watched outside any group has none, and is written without one.
        let alone = r#"{"instance":"i-0123456789abcdef0"}"#;
        let item = serde_json::from_str::<PullItem>(alone).unwrap();
        assert_eq!(item.group, None);
        assert_eq!(serde_json::to_string(&item).unwrap(), alone);
    }

    #[test]
    fn a_plan_key_names_the_time_never_the_tick() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let key = plan_key("../../etc/passwd", at);
        assert!(key.starts_with("pull/20231114T221320Z-"), "{key}");
        assert!(!key.contains(".."), "{key}");
        assert_ne!(key, plan_key("another tick", at));
    }
}
