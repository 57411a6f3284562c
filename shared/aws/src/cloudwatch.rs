//! CloudWatch: the scheduled metric pull (GetMetricData, batched and paginated) and the
//! discovery of the CloudWatch agent's disk metrics (ListMetrics).

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::types::{
    Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat, ScanBy,
};
use aws_smithy_types::DateTime as SmithyTime;
use chrono::{DateTime, TimeZone, Utc};

use super::port_error;
use vigil_core::metrics::{DiskMetric, MAX_QUERIES_PER_CALL, MetricQuery, Series, WatchedInstance};
use vigil_core::names::InstanceId;
use vigil_handlers::ports::{FetchMetrics, ListDiskMetrics, PortError};

/// Pages followed per batch at most: a runaway NextToken loop must end.
const MAX_PAGES: usize = 100;

#[derive(Debug, Clone)]
pub struct CloudWatch {
    client: Client,
}

impl CloudWatch {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        CloudWatch {
            client: Client::new(config),
        }
    }
}

fn query(q: &MetricQuery, period: u32) -> MetricDataQuery {
    let mut metric = Metric::builder()
        .namespace(&q.namespace)
        .metric_name(&q.metric)
        .dimensions(
            Dimension::builder()
                .name("InstanceId")
                .value(q.instance.as_str())
                .build(),
        );
    for (name, value) in &q.extra_dimensions {
        metric = metric.dimensions(Dimension::builder().name(name).value(value).build());
    }
    let stat = MetricStat::builder()
        .metric(metric.build())
        .period(i32::try_from(period).unwrap_or(60))
        .stat(&q.stat)
        .build();
    MetricDataQuery::builder()
        .id(&q.id)
        .metric_stat(stat)
        .return_data(true)
        .build()
}

fn to_chrono(t: &SmithyTime) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t.secs(), t.subsec_nanos()).single()
}

impl FetchMetrics for CloudWatch {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        const OP: &str = "cloudwatch:GetMetricData";
        let mut out: BTreeMap<String, Series> = BTreeMap::new();
        for batch in queries.chunks(MAX_QUERIES_PER_CALL) {
            let built: Vec<MetricDataQuery> = batch.iter().map(|q| query(q, period)).collect();
            let mut token: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let page = self
                    .client
                    .get_metric_data()
                    .set_metric_data_queries(Some(built.clone()))
                    .start_time(SmithyTime::from_secs(start.timestamp()))
                    .end_time(SmithyTime::from_secs(end.timestamp()))
                    .scan_by(ScanBy::TimestampAscending)
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| port_error(OP, e))?;
                for r in page.metric_data_results() {
                    let Some(id) = r.id() else { continue };
                    let series = out.entry(id.to_owned()).or_default();
                    for (t, v) in r.timestamps().iter().zip(r.values()) {
                        if let Some(t) = to_chrono(t) {
                            series.push((t, *v));
                        }
                    }
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        for series in out.values_mut() {
            series.sort_by_key(|(t, _)| *t);
        }
        Ok(out)
    }
}

/// Up to this many instances, their volumes are listed one instance at a time; above it, the
/// account's disk metrics are listed once and the watched instances' kept (a fleet's plan:
/// one call per 500 metrics, not one per instance, within ListMetrics' 25 calls a second).
pub const LIST_PER_INSTANCE: usize = 20;
/// Pages of the account's disk metrics read at most (500 each).
const FLEET_PAGES: usize = 1_000;

impl ListDiskMetrics for CloudWatch {
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        let mut out = Vec::new();
        if instances.len() <= LIST_PER_INSTANCE {
            for w in instances {
                self.list_disks(Some(&w.instance), MAX_PAGES, &mut out)
                    .await?;
            }
            return Ok(out);
        }
        self.list_disks(None, FLEET_PAGES, &mut out).await?;
        let watched: std::collections::BTreeSet<&InstanceId> =
            instances.iter().map(|w| &w.instance).collect();
        out.retain(|d| watched.contains(&d.instance));
        Ok(out)
    }
}

impl CloudWatch {
    /// The agent's disk metrics of one instance, or of every instance (recently active only:
    /// a terminated instance's metrics stay listed for two weeks).
    async fn list_disks(
        &self,
        instance: Option<&InstanceId>,
        pages: usize,
        out: &mut Vec<DiskMetric>,
    ) -> Result<(), PortError> {
        const OP: &str = "cloudwatch:ListMetrics";
        let mut token: Option<String> = None;
        for _ in 0..pages {
            let mut request = self
                .client
                .list_metrics()
                .namespace("CWAgent")
                .metric_name("disk_used_percent")
                .set_next_token(token.take());
            request = match instance {
                Some(id) => request.dimensions(
                    DimensionFilter::builder()
                        .name("InstanceId")
                        .value(id.as_str())
                        .build(),
                ),
                None => request.recently_active(aws_sdk_cloudwatch::types::RecentlyActive::Pt3H),
            };
            let page = request.send().await.map_err(|e| port_error(OP, e))?;
            for m in page.metrics() {
                let dims = m.dimensions();
                let instance = dims
                    .iter()
                    .find(|d| d.name() == Some("InstanceId"))
                    .and_then(|d| d.value())
                    .and_then(|v| InstanceId::parse(v).ok());
                let Some(instance) = instance else { continue };
                let extra = dims
                    .iter()
                    .filter(|d| d.name() != Some("InstanceId"))
                    .filter_map(|d| Some((d.name()?.to_owned(), d.value()?.to_owned())))
                    .collect();
                out.push(DiskMetric {
                    instance,
                    dimensions: extra,
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(())
    }
}
