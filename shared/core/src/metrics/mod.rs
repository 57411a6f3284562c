//! The scheduled metric pull, as pure planning and assembly: which metrics to ask CloudWatch
//! for, and how its answers become metric-window signals. The IO is in the ports
//! [`crate::ports::ListWatchedInstances`] and [`crate::ports::FetchMetrics`].

pub mod fanout;
pub mod lines;
pub mod state;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Resource, Signal, SignalKind, Source};
use crate::names::{GroupName, InstanceId};

/// GetMetricData takes at most this many queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// An instance Vigil watches, with what its group's tags say about it (or its own tags, for an
/// instance tagged for watching outside any Auto Scaling group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedInstance {
    pub instance: InstanceId,
    /// Its Auto Scaling group; `None` for an instance tagged for watching on its own (the
    /// policy's group rungs then do not apply to it).
    pub group: Option<GroupName>,
    pub application: Option<String>,
    pub environment: Option<String>,
    /// The group's tags (capped at [`crate::domain::MAX_TAGS`]): the policy's rungs read them
    /// (the service to restart, the pipeline to roll back or freeze).
    pub tags: std::collections::BTreeMap<String, String>,
    /// The member account the instance is in, read through its member role; `None` for the
    /// stack's own account.
    pub account: Option<String>,
}

/// One metric of one instance to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricQuery {
    /// GetMetricData's query id: `m<index>`, unique in a pull.
    pub id: String,
    pub instance: InstanceId,
    pub namespace: String,
    pub metric: String,
    pub stat: String,
    /// Dimensions besides `InstanceId` (the CloudWatch agent's disk metrics carry a path,
    /// device and file system type).
    pub extra_dimensions: Vec<(String, String)>,
}

/// The periods the pull reads, in seconds: EC2's detailed monitoring (one-minute points,
/// billed per instance) and basic monitoring (five-minute points, free).
pub const PERIODS: [u32; 2] = [60, 300];

/// The pull's windows at `period` seconds per point, one of [`PERIODS`]: (points per window,
/// the latest points the instance features read). Six hours of one-minute points, or a day
/// of five-minute points (as many points: enough history for the detector to learn from);
/// the instance features read the last hour either way.
pub fn windows_at(period: u32) -> Option<(usize, usize)> {
    match period {
        60 => Some((360, 60)),
        300 => Some((288, 12)),
        _ => None,
    }
}

/// The metrics pulled for every watched instance: (namespace, name, statistic).
pub const PER_INSTANCE: [(&str, &str, &str); 5] = [
    ("AWS/EC2", "CPUUtilization", "Average"),
    ("AWS/EC2", "NetworkIn", "Sum"),
    ("AWS/EC2", "NetworkOut", "Sum"),
    ("AWS/EC2", "StatusCheckFailed", "Maximum"),
    // Present only where the CloudWatch agent runs; absent metrics come back empty.
    ("CWAgent", "mem_used_percent", "Average"),
];

/// A CloudWatch agent disk metric found for an instance (by ListMetrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskMetric {
    pub instance: InstanceId,
    pub dimensions: Vec<(String, String)>,
}

/// The metric's own name in a window's `Namespace/MetricName[:path]` label: `AWS/EC2/CPUUtilization`
/// -> `CPUUtilization`, `CWAgent/disk_used_percent:/var/log` -> `disk_used_percent`. Namespaces
/// hold `/` and paths hold both `/` and `:`, so the path is cut at the first `:` before the
/// namespace is.
pub fn metric_name(label: &str) -> &str {
    let without_path = label.split_once(':').map_or(label, |(m, _)| m);
    without_path.rsplit('/').next().unwrap_or(without_path)
}

/// The queries of one pull.
pub fn plan(instances: &[WatchedInstance], disks: &[DiskMetric]) -> Vec<MetricQuery> {
    let mut out = Vec::with_capacity(instances.len() * PER_INSTANCE.len() + disks.len());
    for w in instances {
        for (namespace, metric, stat) in PER_INSTANCE {
            out.push(MetricQuery {
                id: format!("m{}", out.len()),
                instance: w.instance.clone(),
                namespace: namespace.to_owned(),
                metric: metric.to_owned(),
                stat: stat.to_owned(),
                extra_dimensions: Vec::new(),
            });
        }
    }
    for d in disks {
        if !instances.iter().any(|w| w.instance == d.instance) {
            continue;
        }
        out.push(MetricQuery {
            id: format!("m{}", out.len()),
            instance: d.instance.clone(),
            namespace: "CWAgent".to_owned(),
            metric: "disk_used_percent".to_owned(),
            stat: "Maximum".to_owned(),
            extra_dimensions: d.dimensions.clone(),
        });
    }
    out
}

/// The datapoints CloudWatch returned for one query.
pub type Series = Vec<(DateTime<Utc>, f64)>;

/// Places datapoints on the pull's grid: `points` slots of `period` seconds ending at `end`,
/// oldest first, `None` where CloudWatch had nothing.
pub fn on_grid(
    series: &Series,
    end: DateTime<Utc>,
    period: u32,
    points: usize,
) -> Vec<Option<f64>> {
    let period = i64::from(period.max(1));
    let start = end.timestamp() - period * points as i64;
    let mut out = vec![None; points];
    for (t, v) in series {
        let offset = t.timestamp() - start;
        if offset < 0 || !v.is_finite() {
            continue;
        }
        let slot = (offset / period) as usize;
        if let Some(cell) = out.get_mut(slot) {
            *cell = Some(*v);
        }
    }
    out
}

/// A query's window label: `Namespace/MetricName`, and `:path` for a disk volume. Signals
/// carry it and a kept detector state is found by it.
pub fn label(q: &MetricQuery) -> String {
    let mut metric = format!("{}/{}", q.namespace, q.metric);
    if let Some((_, path)) = q.extra_dimensions.iter().find(|(k, _)| k == "path") {
        metric = format!("{metric}:{path}");
    }
    metric
}

/// One query's metric-window signal, its window already on the grid.
pub fn signal(
    tick_id: &str,
    end: DateTime<Utc>,
    period: u32,
    w: &WatchedInstance,
    q: &MetricQuery,
    points: Vec<Option<f64>>,
) -> Signal {
    let mut resource = Resource::instance(&w.instance);
    resource.group = w.group.clone();
    resource.application = w.application.clone();
    resource.environment = w.environment.clone();
    resource.tags = w.tags.clone();
    resource.account = w.account.clone();
    Signal {
        event_id: format!("{tick_id}:{}", q.id),
        source: Source::MetricPull,
        resource,
        observed_at: end,
        kind: SignalKind::MetricWindow {
            metric: label(q),
            period,
            points,
        },
        values: BTreeMap::new(),
        rules: Vec::new(),
    }
}

/// Turns one pull's answers into one metric-window signal per query that returned anything
/// (a cold pull: every window read whole).
pub fn signals(
    tick_id: &str,
    end: DateTime<Utc>,
    period: u32,
    points: usize,
    instances: &[WatchedInstance],
    queries: &[MetricQuery],
    results: &BTreeMap<String, Series>,
) -> Vec<Signal> {
    let mut out = Vec::new();
    for q in queries {
        let Some(series) = results.get(&q.id).filter(|s| !s.is_empty()) else {
            continue;
        };
        let Some(w) = instances.iter().find(|w| w.instance == q.instance) else {
            continue;
        };
        let grid = on_grid(series, end, period, points);
        out.push(signal(tick_id, end, period, w, q, grid));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_is_named_without_its_namespace_or_path() {
        for (label, name) in [
            ("AWS/EC2/CPUUtilization", "CPUUtilization"),
            ("CWAgent/mem_used_percent", "mem_used_percent"),
            ("CWAgent/disk_used_percent:/", "disk_used_percent"),
            (
                "CWAgent/disk_used_percent:/var/lib:data",
                "disk_used_percent",
            ),
            ("CPUUtilization", "CPUUtilization"),
            ("", ""),
        ] {
            assert_eq!(metric_name(label), name, "{label}");
        }
    }
    use chrono::TimeZone;

    fn watched(n: usize) -> Vec<WatchedInstance> {
        (0..n)
            .map(|i| WatchedInstance {
                instance: InstanceId::parse(&format!("i-{i:08x}")).unwrap(),
                group: Some(GroupName::parse("web").unwrap()),
                application: Some("shop".into()),
                environment: Some("prod".into()),
                tags: [("vigil:service".to_owned(), "shop.service".to_owned())].into(),
                account: None,
            })
            .collect()
    }

    #[test]
    fn plan_gives_unique_ids_and_skips_disks_of_unwatched_instances() {
        let w = watched(3);
        let disks = vec![
            DiskMetric {
                instance: w[1].instance.clone(),
                dimensions: vec![("path".into(), "/".into())],
            },
            DiskMetric {
                instance: InstanceId::parse("i-99999999").unwrap(),
                dimensions: vec![],
            },
        ];
        let q = plan(&w, &disks);
        assert_eq!(q.len(), 3 * PER_INSTANCE.len() + 1);
        let ids: std::collections::BTreeSet<_> = q.iter().map(|q| &q.id).collect();
        assert_eq!(ids.len(), q.len());
        // Ids are what GetMetricData accepts: a lower-case letter, then letters and digits.
        assert!(
            q.iter()
                .all(|q| q.id.starts_with('m') && q.id[1..].chars().all(|c| c.is_ascii_digit()))
        );
    }

    #[test]
    fn datapoints_land_on_the_grid() {
        let end = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let at = |m: i64| end - chrono::Duration::minutes(m);
        let series = vec![(at(5), 1.0), (at(1), 4.0), (at(60), 9.0), (at(3), f64::NAN)];
        let grid = on_grid(&series, end, 60, 5);
        // A datapoint is stamped with the start of its period: end - 1 min fills the last slot.
        assert_eq!(grid, vec![Some(1.0), None, None, None, Some(4.0)]);
    }

    #[test]
    fn signals_carry_identity_and_skip_empty_answers() {
        let mut w = watched(2);
        w[0].account = Some("222222222222".into());
        let q = plan(&w, &[]);
        let end = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let mut results = BTreeMap::new();
        results.insert(
            q[0].id.clone(),
            vec![(end - chrono::Duration::minutes(1), 42.0)],
        );
        results.insert(q[1].id.clone(), vec![]);
        let s = signals("tick-1", end, 60, 10, &w, &q, &results);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].event_id, "tick-1:m0");
        assert_eq!(s[0].resource.application.as_deref(), Some("shop"));
        assert_eq!(
            s[0].resource.account.as_deref(),
            Some("222222222222"),
            "a member account's instance is about that account, for decide and remediate"
        );
        assert_eq!(
            s[0].resource.tags.get("vigil:service").map(String::as_str),
            Some("shop.service"),
            "the group's tags reach the signal, for the policy's rungs"
        );
        assert!(
            matches!(&s[0].kind, SignalKind::MetricWindow { metric, points, .. }
            if metric == "AWS/EC2/CPUUtilization" && points[9] == Some(42.0))
        );
    }
}
