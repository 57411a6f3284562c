//! What Vigil reads from the world: metrics, GuardDuty findings, pipeline artifacts, the signing key.

use super::*;

/// Metric datapoints by instance and `Namespace/MetricName`, and the calls made for them.
/// [`MemoryMetrics::reading_lines`] reads the instances' telemetry lines instead
/// ([`vigil_core::metrics::lines`]; the simulator's design, not yet the stack's): CloudWatch
/// is asked only for silent instances' status checks.
#[derive(Debug, Default)]
pub struct MemoryMetrics {
    series: Mutex<BTreeMap<(InstanceId, String), Series>>,
    calls: Mutex<MetricCalls>,
    /// Each instance's log stream: (the minute a line covers, the line).
    lines: Mutex<BTreeMap<InstanceId, BTreeMap<i64, String>>>,
    read_lines: bool,
}

/// The CloudWatch calls made of [`MemoryMetrics`], counted as AWS bills them: GetMetricData
/// per metric requested (each query of a call, whatever the points returned), ListMetrics
/// per call (free, but rate-limited).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MetricCalls {
    pub get_metric_data: u64,
    pub metrics_requested: u64,
    pub list_metrics: u64,
    /// Telemetry lines: FilterLogEvents calls (at most 100 streams each), the bytes of the
    /// lines they returned, and the lines and bytes the instances wrote.
    pub log_reads: u64,
    pub log_bytes_read: u64,
    pub lines_written: u64,
    pub log_bytes_written: u64,
}

/// Log streams FilterLogEvents reads at once.
const STREAMS_PER_READ: usize = 100;

/// Queries per GetMetricData call, as CloudWatch allows.
const QUERIES_PER_CALL: usize = 500;

impl MemoryMetrics {
    pub fn put(&self, instance: &InstanceId, metric: &str, points: Series) {
        lock(&self.series).insert((instance.clone(), metric.to_owned()), points);
    }

    /// The calls made so far.
    pub fn calls(&self) -> MetricCalls {
        *lock(&self.calls)
    }

    /// A CloudWatch whose pull reads telemetry lines.
    pub fn reading_lines() -> Self {
        MemoryMetrics {
            read_lines: true,
            ..Default::default()
        }
    }

    /// An instance writes one minute's line (a minute already written is left as it was).
    pub fn write_line(&self, instance: &InstanceId, line: &vigil_core::metrics::lines::Line) {
        let mut lines = lock(&self.lines);
        let stream = lines.entry(instance.clone()).or_default();
        if let std::collections::btree_map::Entry::Vacant(slot) = stream.entry(line.t) {
            let text = line.render();
            let mut calls = lock(&self.calls);
            calls.lines_written += 1;
            calls.log_bytes_written += text.len() as u64;
            slot.insert(text);
        }
    }

    /// The minute of an instance's latest line.
    pub fn last_line(&self, instance: &InstanceId) -> Option<i64> {
        lock(&self.lines)
            .get(instance)
            .and_then(|s| s.keys().next_back().copied())
    }

    /// GetMetricData over the stored series.
    fn get_metric_data(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> BTreeMap<String, Series> {
        {
            let mut calls = lock(&self.calls);
            calls.get_metric_data += queries.len().div_ceil(QUERIES_PER_CALL) as u64;
            calls.metrics_requested += queries.len() as u64;
        }
        let series = lock(&self.series);
        queries
            .iter()
            .filter_map(|q| {
                let key = (q.instance.clone(), format!("{}/{}", q.namespace, q.metric));
                let points = series.get(&key)?;
                Some((q.id.clone(), at_period(points, start, end, period)))
            })
            .collect()
    }

    /// The lines' answer, and GetMetricData for what they ask of CloudWatch.
    fn lines_answer(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> BTreeMap<String, Series> {
        use vigil_core::metrics::lines;
        let by_start = lines::reads(queries, start, end);
        let events: Vec<lines::Event> = {
            let streams = lock(&self.lines);
            by_start
                .iter()
                .flat_map(|(from, instances)| {
                    let streams = &streams;
                    instances.iter().flat_map(move |i| {
                        streams
                            .get(i)
                            .into_iter()
                            .flat_map(move |s| s.range(from.timestamp()..end.timestamp()))
                            .map(|(_, m)| lines::Event {
                                instance: i.clone(),
                                message: m.clone(),
                            })
                    })
                })
                .collect()
        };
        {
            let mut calls = lock(&self.calls);
            calls.log_reads += by_start
                .values()
                .map(|i| i.len().div_ceil(STREAMS_PER_READ) as u64)
                .sum::<u64>();
            calls.log_bytes_read += events.iter().map(|e| e.message.len() as u64).sum::<u64>();
        }
        let answer = lines::answer(queries, &events, start, end);
        let mut out = answer.results;
        if !answer.ask.is_empty() {
            out.extend(self.get_metric_data(&answer.ask, start, end, period));
        }
        out
    }
}

/// `points` in `[start, end)` as CloudWatch returns them at `period` seconds: the mean of the
/// points in each period, stamped at its start (periods counted from the epoch), the periods
/// with no point left out. Points stored at the period already come back as they are.
fn at_period(points: &Series, start: DateTime<Utc>, end: DateTime<Utc>, period: u32) -> Series {
    let period = i64::from(period.max(1));
    let mut buckets: BTreeMap<i64, (f64, u32)> = BTreeMap::new();
    for (t, v) in points.iter().filter(|(t, _)| *t >= start && *t < end) {
        let slot = t.timestamp().div_euclid(period) * period;
        let b = buckets.entry(slot).or_insert((0.0, 0));
        b.0 += v;
        b.1 += 1;
    }
    buckets
        .into_iter()
        .filter_map(|(slot, (sum, n))| {
            Some((DateTime::from_timestamp(slot, 0)?, sum / f64::from(n)))
        })
        .collect()
}

impl FetchMetrics for MemoryMetrics {
    async fn fetch(
        &self,
        queries: &[MetricQuery],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        period: u32,
    ) -> Result<BTreeMap<String, Series>, PortError> {
        Ok(if self.read_lines {
            self.lines_answer(queries, start, end, period)
        } else {
            self.get_metric_data(queries, start, end, period)
        })
    }
}

impl ListDiskMetrics for MemoryMetrics {
    /// The root volume of every instance that has a disk series (as the agent reports it), or
    /// whose latest line reports a disk (ListMetrics is not called then).
    async fn disks(&self, instances: &[WatchedInstance]) -> Result<Vec<DiskMetric>, PortError> {
        let lines = lock(&self.lines);
        let series = lock(&self.series);
        let has_disk = |w: &&WatchedInstance| {
            if self.read_lines {
                lines
                    .get(&w.instance)
                    .and_then(|s| s.values().next_back())
                    .and_then(|m| vigil_core::metrics::lines::Line::parse(m).ok())
                    .is_some_and(|l| l.disk.is_some())
            } else {
                series.contains_key(&(w.instance.clone(), "CWAgent/disk_used_percent".into()))
            }
        };
        if !self.read_lines {
            lock(&self.calls).list_metrics += 1;
        }
        Ok(instances
            .iter()
            .filter(has_disk)
            .map(|w| DiskMetric {
                instance: w.instance.clone(),
                dimensions: vec![
                    ("path".into(), "/".into()),
                    ("device".into(), "nvme0n1p1".into()),
                    ("fstype".into(), "xfs".into()),
                ],
            })
            .collect())
    }
}

/// Detector states kept between pulls, by instance. [`MemoryDetectors::forgetful`] keeps
/// nothing: every pull is cold, as before states were kept.
#[derive(Debug, Default)]
pub struct MemoryDetectors {
    kept: Mutex<BTreeMap<InstanceId, Vec<u8>>>,
    forget: bool,
    /// Bytes written, for the cost and size figures.
    written: Mutex<usize>,
    /// States read and written (S3 GETs and PUTs, for the cost figures).
    reads: Mutex<u64>,
    writes: Mutex<u64>,
    /// The pull's plans, by key (the bucket's `pull/` objects).
    plans: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryDetectors {
    pub fn forgetful() -> Self {
        MemoryDetectors {
            forget: true,
            ..Default::default()
        }
    }

    /// The bytes kept for an instance.
    pub fn kept(&self, instance: &InstanceId) -> Option<Vec<u8>> {
        lock(&self.kept).get(instance).cloned()
    }

    /// Replaces what is kept for an instance (a test corrupting a state).
    pub fn set(&self, instance: &InstanceId, bytes: Vec<u8>) {
        lock(&self.kept).insert(instance.clone(), bytes);
    }

    pub fn written(&self) -> usize {
        *lock(&self.written)
    }

    /// States read and written so far: (reads, writes).
    pub fn requests(&self) -> (u64, u64) {
        (*lock(&self.reads), *lock(&self.writes))
    }

    /// A plan written under `key`, as the pull workflow's map would read it.
    pub fn plan(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.plans).get(key).cloned()
    }
}

impl vigil_handlers::ports::StorePlan for MemoryDetectors {
    async fn store_plan(&self, key: &str, items: Vec<u8>) -> Result<(), PortError> {
        lock(&self.plans).insert(key.to_owned(), items);
        Ok(())
    }
}

impl vigil_handlers::ports::DetectorMemory for MemoryDetectors {
    async fn recall(&self, instance: &InstanceId) -> Result<Option<Vec<u8>>, PortError> {
        *lock(&self.reads) += 1;
        Ok(lock(&self.kept).get(instance).cloned())
    }

    async fn keep(&self, instance: &InstanceId, state: Vec<u8>) -> Result<(), PortError> {
        *lock(&self.writes) += 1;
        if !self.forget {
            *lock(&self.written) += state.len();
            lock(&self.kept).insert(instance.clone(), state);
        }
        Ok(())
    }
}

/// GuardDuty's active findings, as a test or the simulator sets them.
#[derive(Debug, Default)]
pub struct MemoryFindings {
    findings: Mutex<Vec<vigil_core::gate::FindingSummary>>,
}

impl MemoryFindings {
    pub fn add(&self, finding: vigil_core::gate::FindingSummary) {
        lock(&self.findings).push(finding);
    }
}

impl vigil_handlers::ports::ListFindings for MemoryFindings {
    async fn active_findings(
        &self,
        min_severity: f64,
        since: DateTime<Utc>,
    ) -> Result<Vec<vigil_core::gate::FindingSummary>, PortError> {
        Ok(lock(&self.findings)
            .iter()
            .filter(|f| f.severity >= min_severity && f.updated_at >= since)
            .cloned()
            .collect())
    }
}

/// Pipeline artifacts by bucket and key.
#[derive(Debug, Default)]
pub struct MemoryArtifacts {
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
}

impl MemoryArtifacts {
    pub fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        lock(&self.objects).insert((bucket.to_owned(), key.to_owned()), bytes);
    }
}

impl vigil_handlers::ports::FetchArtifact for MemoryArtifacts {
    async fn fetch(
        &self,
        location: &vigil_handlers::ports::ArtifactLocation,
        _credentials: &vigil_handlers::ports::ArtifactCredentials,
        max_bytes: u64,
    ) -> Result<vigil_handlers::ports::Fetched, PortError> {
        let objects = lock(&self.objects);
        let bytes = objects
            .get(&(location.bucket.clone(), location.key.clone()))
            .ok_or_else(|| {
                PortError::new(
                    "s3:GetObject",
                    PortErrorKind::NotFound,
                    format!("no object s3://{}/{}", location.bucket, location.key),
                )
            })?;
        Ok(if bytes.len() as u64 > max_bytes {
            vigil_handlers::ports::Fetched::TooLarge(bytes.len() as u64)
        } else {
            vigil_handlers::ports::Fetched::Bytes(bytes.clone())
        })
    }
}

/// A fixed signing key (tests and the local world).
#[derive(Debug, Clone)]
pub struct MemoryKey(pub Vec<u8>);

impl vigil_handlers::ports::ReadSigningKey for MemoryKey {
    async fn signing_key(&self) -> Result<Vec<u8>, PortError> {
        Ok(self.0.clone())
    }
}
