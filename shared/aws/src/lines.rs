//! CloudWatch Logs: the telemetry lines ([`vigil_core::metrics::lines`]), read with
//! FilterLogEvents from the log group the instances write to (one stream per instance, named by
//! its id), answering the pull's metric queries; CloudWatch is asked only for a silent
//! instance's status check.

use std::collections::BTreeMap;

use aws_sdk_cloudwatchlogs::Client;
use chrono::{DateTime, Utc};

use super::cloudwatch::CloudWatch;
use super::port_error;
use vigil_core::metrics::lines::{self, Event};
use vigil_core::metrics::{DiskMetric, MetricQuery, Series, WatchedInstance};
use vigil_core::names::InstanceId;
use vigil_handlers::config::Telemetry;
use vigil_handlers::ports::{FetchMetrics, ListDiskMetrics, PortError};

/// Log streams FilterLogEvents reads in one call.
const STREAMS_PER_CALL: usize = 100;
/// Pages followed per call at most: a runaway nextToken loop must end.
const MAX_PAGES: usize = 100;
/// Attempts of one FilterLogEvents call. Its quota is 5 calls a second per account and Region
/// (docs/scale.md), which the pull's concurrent batches meet in bursts: throttled calls are
/// retried with the SDK's adaptive mode (client-side rate limiting, backoff up to the
/// operation's time bound) rather than the standard mode's three attempts.
const LOGS_ATTEMPTS: u32 = 6;

#[derive(Debug, Clone)]
pub struct TelemetryLines {
    logs: Client,
    group: String,
    /// For the status checks of silent instances.
    metrics: CloudWatch,
}

impl TelemetryLines {
    /// `metrics` answers the status checks of silent instances.
    pub fn new(
        config: &aws_config::SdkConfig,
        group: impl Into<String>,
        metrics: CloudWatch,
    ) -> Self {
        let logs = aws_sdk_cloudwatchlogs::config::Builder::from(config)
            .retry_config(
                aws_config::retry::RetryConfig::adaptive().with_max_attempts(LOGS_ATTEMPTS),
            )
            .build();
        TelemetryLines {
            logs: Client::from_conf(logs),
            group: group.into(),
            metrics,
        }
    }

    /// The instances' lines from `from` to `end`, 100 streams a call.
    async fn read(
        &self,
        instances: &[InstanceId],
        from: DateTime<Utc>,
        end: DateTime<Utc>,
        out: &mut Vec<Event>,
    ) -> Result<(), PortError> {
        const OP: &str = "logs:FilterLogEvents";
        for chunk in instances.chunks(STREAMS_PER_CALL) {
            let names: Vec<String> = chunk.iter().map(|i| i.as_str().to_owned()).collect();
            let mut token: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let page = self
                    .logs
                    .filter_log_events()
                    .log_group_name(&self.group)
                    .set_log_stream_names(Some(names.clone()))
                    .start_time(from.timestamp_millis())
                    .end_time(end.timestamp_millis())
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| port_error(OP, e))?;
                for e in page.events() {
                    // A stream not named by an instance id is no instance's.
                    let Some(instance) =
                        e.log_stream_name().and_then(|s| InstanceId::parse(s).ok())
                    else {
                        continue;
                    };
                    out.push(Event {
                        instance,
                        message: e.message().unwrap_or_default().to_owned(),
                    });
                }
                match page.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

impl FetchMetrics for TelemetryLines {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        let by_start = lines::reads(queries, start, end);
        let mut events = Vec::new();
        for (from, instances) in &by_start {
            self.read(instances, *from, end, &mut events).await?;
        }
        let answer = lines::answer(queries, &events, start, end);
        if !answer.refused.is_empty() {
            tracing::warn!(refused = ?answer.refused, read = answer.read, "telemetry lines refused");
        }
        let mut out = answer.results;
        if !answer.ask.is_empty() {
            out.extend(self.metrics.fetch(&answer.ask, start, end, period).await?);
        }
        Ok(out)
    }
}

impl ListDiskMetrics for TelemetryLines {
    /// A line carries its instance's root volume: every instance has one to ask for (an
    /// instance whose lines carry none answers nothing for it).
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        Ok(instances
            .iter()
            .map(|w| DiskMetric {
                instance: w.instance.clone(),
                dimensions: vec![("path".into(), "/".into())],
            })
            .collect())
    }
}

/// The pull's source of telemetry as the stack chose it ([`vigil_handlers::config::Telemetry`]):
/// CloudWatch's metrics, or the lines.
#[derive(Debug, Clone)]
pub enum TelemetrySource {
    Metrics(CloudWatch),
    Lines(TelemetryLines),
}

impl TelemetrySource {
    /// The chosen source, its clients built from `config` (the stack's, or a member's role).
    pub fn new(config: &aws_config::SdkConfig, choice: &Telemetry) -> Self {
        match choice {
            Telemetry::Metrics => TelemetrySource::Metrics(CloudWatch::new(config)),
            Telemetry::Lines { group } => TelemetrySource::Lines(TelemetryLines::new(
                config,
                group.clone(),
                CloudWatch::new(config),
            )),
        }
    }

    /// The operation a fetch makes, for its errors.
    pub fn fetch_operation(&self) -> &'static str {
        match self {
            TelemetrySource::Metrics(_) => "cloudwatch:GetMetricData",
            TelemetrySource::Lines(_) => "logs:FilterLogEvents",
        }
    }

    /// The same source in another account, its clients built from that account's `config`.
    pub fn in_account(&self, config: &aws_config::SdkConfig) -> Self {
        match self {
            TelemetrySource::Metrics(_) => TelemetrySource::new(config, &Telemetry::Metrics),
            TelemetrySource::Lines(lines) => TelemetrySource::new(
                config,
                &Telemetry::Lines {
                    group: lines.group.clone(),
                },
            ),
        }
    }
}

impl From<CloudWatch> for TelemetrySource {
    fn from(cloudwatch: CloudWatch) -> Self {
        TelemetrySource::Metrics(cloudwatch)
    }
}

impl FetchMetrics for TelemetrySource {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        match self {
            TelemetrySource::Metrics(m) => m.fetch(queries, start, end, period).await,
            TelemetrySource::Lines(l) => l.fetch(queries, start, end, period).await,
        }
    }
}

impl ListDiskMetrics for TelemetrySource {
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        match self {
            TelemetrySource::Metrics(m) => m.disks(instances).await,
            TelemetrySource::Lines(l) => l.disks(instances).await,
        }
    }
}
