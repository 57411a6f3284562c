//! Telemetry lines: the pull's cheaper source. Each watched instance writes one JSON line a
//! minute (CPU, network, memory, its root volume) to a CloudWatch Logs stream named by its
//! instance id, and the pull reads the lines instead of asking GetMetricData, which bills
//! every metric requested. The lines answer the same queries as CloudWatch would, under the
//! same labels, so detectors, their kept state and the features are the same either way.
//!
//! EC2's status check is not in a line: an instance whose check fails cannot write. An
//! instance that has gone silent (no line in the last [`SILENT_AFTER_SECS`] of a read) is
//! asked of CloudWatch for its `StatusCheckFailed` (one-minute and free to publish): the
//! only metric requested, and only of silent instances ([`Answer::ask`]).
//!
//! Lines are written by the instances, so each is read as hostile: at most
//! [`MAX_LINE_BYTES`], this version only, finite values in their ranges, a time inside the
//! read. A line that fails is refused with its [`LineError`] and counted, never read in part.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{MetricQuery, Series};
use crate::names::InstanceId;

/// The line format's version, its `v` field.
pub const LINE_VERSION: u32 = 1;

/// A line longer than this is refused unread (a line is about 100 bytes).
pub const MAX_LINE_BYTES: usize = 512;

/// An instance with no line this recent at the end of a read is silent.
pub const SILENT_AFTER_SECS: i64 = 120;

/// One minute of one instance, as the collector writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// [`LINE_VERSION`].
    pub v: u32,
    /// The minute it covers: seconds since the epoch, at the minute's start.
    pub t: i64,
    /// CPU in use over the minute, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    /// Bytes received and sent over the minute, all interfaces but loopback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_in: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_out: Option<f64>,
    /// Memory in use, percent (as the CloudWatch agent's `mem_used_percent`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<f64>,
    /// The root volume's space in use, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<f64>,
}

/// Why a line was not read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LineError {
    #[error("a line of {0} bytes, more than the {MAX_LINE_BYTES} read")]
    TooLong(usize),
    #[error("not a telemetry line: {0}")]
    Malformed(String),
    #[error("a line of version {0}; this release reads version {LINE_VERSION}")]
    Version(u32),
    #[error("{field} is {value}, outside its range")]
    OutOfRange { field: &'static str, value: f64 },
    #[error("a line for {t}, outside the read")]
    OutsideRead { t: i64 },
}

impl Line {
    /// Reads one line, or refuses it whole.
    pub fn parse(message: &str) -> Result<Line, LineError> {
        if message.len() > MAX_LINE_BYTES {
            return Err(LineError::TooLong(message.len()));
        }
        let line: Line = serde_json::from_str(message.trim_end())
            .map_err(|e| LineError::Malformed(e.to_string()))?;
        if line.v != LINE_VERSION {
            return Err(LineError::Version(line.v));
        }
        let percent = 0.0..=100.0;
        for (field, value, max) in [
            ("cpu", line.cpu, *percent.end()),
            ("mem", line.mem, *percent.end()),
            ("disk", line.disk, *percent.end()),
            ("net_in", line.net_in, f64::MAX),
            ("net_out", line.net_out, f64::MAX),
        ] {
            if let Some(value) = value
                && !(value.is_finite() && (0.0..=max).contains(&value))
            {
                return Err(LineError::OutOfRange { field, value });
            }
        }
        Ok(line)
    }

    /// The line as the collector writes it.
    pub fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The value answering a query's metric, if a line carries it.
    fn value_of(&self, q: &MetricQuery) -> Option<f64> {
        match (q.namespace.as_str(), q.metric.as_str()) {
            ("AWS/EC2", "CPUUtilization") => self.cpu,
            ("AWS/EC2", "NetworkIn") => self.net_in,
            ("AWS/EC2", "NetworkOut") => self.net_out,
            ("CWAgent", "mem_used_percent") => self.mem,
            ("CWAgent", "disk_used_percent") => self.disk,
            _ => None,
        }
    }
}

/// Whether a query is answered by EC2 rather than by the lines: the status check.
pub fn from_ec2(q: &MetricQuery) -> bool {
    q.namespace == "AWS/EC2" && q.metric == "StatusCheckFailed"
}

/// Where a read of `queries` over `[start, end)` needs lines from: all of it when a query is
/// answered by the lines, only the last [`SILENT_AFTER_SECS`] when every query is a status
/// check (to tell whether its instance is silent).
pub fn lines_from(
    queries: &[MetricQuery],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> DateTime<Utc> {
    if queries.iter().all(from_ec2) {
        (end - chrono::Duration::seconds(SILENT_AFTER_SECS)).max(start)
    } else {
        start
    }
}

/// The reads a fetch of `queries` over `[start, end)` makes: each instance's lines from where
/// its own queries need them ([`lines_from`]), instances grouped by that start (one
/// FilterLogEvents read per start, 100 streams at a time).
pub fn reads(
    queries: &[MetricQuery],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> BTreeMap<DateTime<Utc>, Vec<InstanceId>> {
    let mut by_instance: BTreeMap<&InstanceId, Vec<MetricQuery>> = BTreeMap::new();
    for q in queries {
        by_instance.entry(&q.instance).or_default().push(q.clone());
    }
    let mut out: BTreeMap<DateTime<Utc>, Vec<InstanceId>> = BTreeMap::new();
    for (instance, mine) in by_instance {
        out.entry(lines_from(&mine, start, end))
            .or_default()
            .push(instance.clone());
    }
    out
}

/// One log event of an instance's stream: its message, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub instance: InstanceId,
    pub message: String,
}

/// The lines' answer to a read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// Series by query id, as [`crate::ports`]' `FetchMetrics` answers (one point a minute).
    pub results: BTreeMap<String, Series>,
    /// The queries to ask CloudWatch: the status checks of silent instances.
    pub ask: Vec<MetricQuery>,
    /// Lines refused, by reason (the [`LineError`]'s first word, for a log field).
    pub refused: BTreeMap<&'static str, usize>,
    /// Lines read.
    pub read: usize,
}

impl LineError {
    fn label(&self) -> &'static str {
        match self {
            LineError::TooLong(_) => "too-long",
            LineError::Malformed(_) => "malformed",
            LineError::Version(_) => "version",
            LineError::OutOfRange { .. } => "out-of-range",
            LineError::OutsideRead { .. } => "outside-read",
        }
    }
}

/// Answers `queries` over `[start, end)` from the instances' lines. Of two lines for one
/// minute the later read stands.
pub fn answer(
    queries: &[MetricQuery],
    events: &[Event],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Answer {
    let mut out = Answer::default();
    let (from, to) = (start.timestamp(), end.timestamp());
    let mut lines: BTreeMap<&InstanceId, BTreeMap<i64, Line>> = BTreeMap::new();
    for e in events {
        let line = Line::parse(&e.message).and_then(|l| {
            if (from..to).contains(&l.t) {
                Ok(l)
            } else {
                Err(LineError::OutsideRead { t: l.t })
            }
        });
        match line {
            Ok(l) => {
                out.read += 1;
                lines.entry(&e.instance).or_default().insert(l.t, l);
            }
            Err(why) => *out.refused.entry(why.label()).or_default() += 1,
        }
    }
    for q in queries {
        let mine = lines.get(&q.instance);
        if from_ec2(q) {
            let last = mine.and_then(|l| l.keys().next_back().copied());
            if last.is_none_or(|t| t < to - SILENT_AFTER_SECS) {
                out.ask.push(q.clone());
            }
            continue;
        }
        let series: Series = mine
            .into_iter()
            .flatten()
            .filter_map(|(t, l)| Some((DateTime::from_timestamp(*t, 0)?, l.value_of(q)?)))
            .collect();
        if !series.is_empty() {
            out.results.insert(q.id.clone(), series);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{DiskMetric, WatchedInstance, plan};
    use chrono::TimeZone;

    fn end() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    fn instance(n: u32) -> InstanceId {
        InstanceId::parse(&format!("i-{n:08x}")).unwrap()
    }

    fn queries(n: u32) -> Vec<MetricQuery> {
        let w: Vec<WatchedInstance> = (0..n)
            .map(|i| WatchedInstance {
                instance: instance(i),
                group: None,
                application: None,
                environment: None,
                tags: Default::default(),
                account: None,
            })
            .collect();
        let disks: Vec<DiskMetric> = w
            .iter()
            .map(|w| DiskMetric {
                instance: w.instance.clone(),
                dimensions: vec![("path".into(), "/".into())],
            })
            .collect();
        plan(&w, &disks)
    }

    fn line(minutes_before_end: i64, cpu: f64) -> String {
        Line {
            v: LINE_VERSION,
            t: end().timestamp() - 60 * minutes_before_end,
            cpu: Some(cpu),
            net_in: Some(1000.0),
            net_out: Some(2000.0),
            mem: Some(40.0),
            disk: Some(60.0),
        }
        .render()
    }

    fn event(i: u32, message: String) -> Event {
        Event {
            instance: instance(i),
            message,
        }
    }

    /// Answers over the last ten minutes.
    fn check(events: &[Event]) -> Answer {
        answer(
            &queries(2),
            events,
            end() - chrono::Duration::minutes(10),
            end(),
        )
    }

    fn series<'a>(a: &'a Answer, instance_n: u32, label: &str) -> Option<&'a Series> {
        let q = queries(2).into_iter().find(|q| {
            q.instance == instance(instance_n) && crate::metrics::label(q).starts_with(label)
        })?;
        a.results.get(&q.id)
    }

    #[test]
    fn lines_answer_every_metric_but_the_status_check_under_cloudwatchs_labels() {
        let events: Vec<Event> = (1..=5).map(|m| event(0, line(m, m as f64))).collect();
        let a = check(&events);
        assert_eq!(a.read, 5);
        let cpu = series(&a, 0, "AWS/EC2/CPUUtilization").unwrap();
        assert_eq!(cpu.len(), 5);
        assert_eq!(
            cpu.last().unwrap().1,
            1.0,
            "the latest minute is the last point"
        );
        for label in [
            "AWS/EC2/NetworkIn",
            "AWS/EC2/NetworkOut",
            "CWAgent/mem_used_percent",
            "CWAgent/disk_used_percent:/",
        ] {
            assert_eq!(series(&a, 0, label).map(Vec::len), Some(5), "{label}");
        }
        assert!(series(&a, 0, "AWS/EC2/StatusCheckFailed").is_none());
        // Instance 0 wrote a minute ago: not silent. Instance 1 wrote nothing: its status
        // check, and only that, is asked of CloudWatch.
        assert_eq!(a.ask.len(), 1);
        assert!(a.ask[0].instance == instance(1) && from_ec2(&a.ask[0]));
    }

    #[test]
    fn an_instance_silent_for_two_minutes_has_its_status_check_asked() {
        let a = check(&[event(0, line(3, 5.0)), event(1, line(2, 5.0))]);
        let asked: Vec<_> = a.ask.iter().map(|q| q.instance.clone()).collect();
        assert_eq!(
            asked,
            vec![instance(0)],
            "three minutes silent is silent, two is not"
        );
    }

    #[test]
    fn hostile_lines_are_refused_whole_and_counted() {
        let too_long = format!(
            "{{\"v\":1,\"t\":0,\"pad\":\"{}\"}}",
            "x".repeat(MAX_LINE_BYTES)
        );
        let t = end().timestamp() - 60;
        let events = vec![
            event(0, too_long),
            event(0, "not json".into()),
            event(0, format!("{{\"v\":2,\"t\":{t},\"cpu\":1}}")),
            event(0, format!("{{\"v\":1,\"t\":{t},\"cpu\":101}}")),
            event(0, format!("{{\"v\":1,\"t\":{t},\"cpu\":5,\"mem\":-1}}")),
            event(0, format!("{{\"v\":1,\"t\":{t},\"net_in\":1e400}}")),
            event(0, format!("{{\"v\":1,\"t\":{}}}", t + 3600)),
            event(0, format!("{{\"v\":1,\"t\":{}}}", t - 86_400)),
        ];
        let a = check(&events);
        assert_eq!(a.read, 0);
        assert!(a.results.is_empty(), "no part of a refused line is read");
        let refused: usize = a.refused.values().sum();
        assert_eq!(refused, events.len());
        for label in [
            "too-long",
            "malformed",
            "version",
            "out-of-range",
            "outside-read",
        ] {
            assert!(a.refused.contains_key(label), "{label}: {:?}", a.refused);
        }
        assert_eq!(
            a.ask.len(),
            2,
            "an instance whose lines are all refused is silent"
        );
    }

    #[test]
    fn a_read_of_status_checks_alone_needs_only_the_last_lines() {
        let (start, end) = (end() - chrono::Duration::hours(6), end());
        let q = queries(1);
        assert_eq!(lines_from(&q, start, end), start);
        let status: Vec<MetricQuery> = q.into_iter().filter(from_ec2).collect();
        assert_eq!(
            lines_from(&status, start, end),
            end - chrono::Duration::seconds(SILENT_AFTER_SECS)
        );
        let short = end - chrono::Duration::seconds(30);
        assert_eq!(lines_from(&status, short, end), short);
        // One instance with every metric, one with its status check alone: two reads.
        let mut both = queries(1);
        both.extend(
            queries(2)
                .into_iter()
                .filter(|q| q.instance == instance(1) && from_ec2(q)),
        );
        let r = reads(&both, start, end);
        assert_eq!(r.len(), 2);
        assert_eq!(r[&start], vec![instance(0)]);
        assert_eq!(
            r[&(end - chrono::Duration::seconds(SILENT_AFTER_SECS))],
            vec![instance(1)]
        );
    }

    #[test]
    fn a_line_reads_back_as_written() {
        let l = Line::parse(&line(1, 12.5)).unwrap();
        assert_eq!(l.cpu, Some(12.5));
        assert_eq!(Line::parse(&l.render()), Ok(l));
        // Fields this release does not know are left, so a newer collector's lines still read.
        let t = end().timestamp() - 60;
        let extra = Line::parse(&format!("{{\"v\":1,\"t\":{t},\"cpu\":3,\"swap\":1}}")).unwrap();
        assert_eq!(extra.cpu, Some(3.0));
    }
}
