//! What Vigil costs a month: the calls the simulator counted ([`crate::sim::Calls`]), per
//! instance and pull, times AWS's prices, for a fleet of any size. `vigil simulate` prints
//! it for the design it ran (`--monitoring`, `--no-agent`, `--pull-minutes`), and
//! docs/deploy.md's table is its output.
//!
//! Counted: GetMetricData's metrics requested and the detector states read and written per
//! instance and pull. Computed from the pull workflow's shape ([`crate::cost::PULL_SHAPE`]):
//! Step Functions transitions and children, Lambda requests. Stated, not counted: Lambda's
//! duration per batch, the events an account routes, and the small fixed rest (DynamoDB,
//! the audit trail, email, logs).

use serde::Serialize;

use crate::sim::{Calls, Monitoring, Telemetry};
use vigil_core::metrics::fanout::BATCH_INSTANCES;

/// On-demand prices in us-east-1 (USD), as published at the time of writing.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Prices {
    /// Per 1,000 metrics requested.
    pub get_metric_data: f64,
    /// Custom metrics a month, by tier: (metrics up to, price each).
    pub custom_metric_tiers: [(f64, f64); 4],
    /// S3 Standard, per 1,000 requests.
    pub s3_get: f64,
    pub s3_put: f64,
    /// Step Functions Standard, per state transition.
    pub standard_transition: f64,
    /// Step Functions Express, per request, and per GB-second.
    pub express_request: f64,
    pub express_gb_second: f64,
    /// Lambda on arm64, per request and per GB-second.
    pub lambda_request: f64,
    pub lambda_gb_second: f64,
    /// CloudWatch Logs (Standard class): per GB ingested, per GB-month stored, and per GB
    /// scanned by a Logs Insights query (FilterLogEvents is not billed per byte; its reads are
    /// priced as scans to be safe).
    pub logs_ingested: f64,
    pub logs_stored: f64,
    pub logs_scanned: f64,
}

pub const US_EAST_1: Prices = Prices {
    get_metric_data: 0.01,
    custom_metric_tiers: [
        (10_000.0, 0.30),
        (250_000.0, 0.10),
        (1_000_000.0, 0.05),
        (f64::INFINITY, 0.02),
    ],
    s3_get: 0.0004,
    s3_put: 0.005,
    standard_transition: 0.000_025,
    express_request: 0.000_001,
    express_gb_second: 0.000_016_67,
    lambda_request: 0.000_000_2,
    lambda_gb_second: 0.000_013_333_4,
    logs_ingested: 0.50,
    logs_stored: 0.03,
    logs_scanned: 0.005,
};

/// The pull workflow's shape (`infra/pull.asl.json`), and what is stated rather than counted.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PullShape {
    /// Standard transitions of one pull besides its map (plan, choices, count, metric).
    pub transitions_per_pull: f64,
    /// Counted once more per child started (to be safe: a map run's child starts may be
    /// billed as transitions).
    pub transitions_per_batch: f64,
    /// A child Express execution's seconds, at its 64 MB.
    pub child_seconds: f64,
    /// Lambda invocations per batch (ingest, score, decide; a pull's healthy readings are
    /// not handed to remediate) and per pull (the plan).
    pub invocations_per_batch: f64,
    pub invocations_per_pull: f64,
    /// Billed seconds per batch across its invocations at 256 MB (stated: the pull's reads
    /// wait on CloudWatch and S3; the compute measured is 5.5 ms per batch), and the plan's.
    pub seconds_per_batch: f64,
    pub seconds_per_pull: f64,
}

pub const PULL_SHAPE: PullShape = PullShape {
    transitions_per_pull: 10.0,
    transitions_per_batch: 1.0,
    child_seconds: 2.0,
    invocations_per_batch: 3.0,
    invocations_per_pull: 1.0,
    seconds_per_batch: 1.2,
    seconds_per_pull: 1.0,
};

/// EC2 detailed monitoring's metrics per instance, billed as custom metrics (AWS's pricing
/// example; the count depends on the instance type).
pub const DETAILED_METRICS_PER_INSTANCE: f64 = 7.0;
/// The agent's metrics per instance Vigil reads: memory and one volume.
pub const AGENT_METRICS_PER_INSTANCE: f64 = 2.0;
/// Bytes CloudWatch Logs counts per event besides its message.
pub const LOG_EVENT_OVERHEAD: f64 = 26.0;
/// Days the telemetry lines are kept (the log group's retention).
pub const LINES_KEPT_DAYS: f64 = 1.0;
/// Vigil's own metrics (name and dimension combinations in use).
pub const OWN_METRICS: f64 = 25.0;
/// Stated, not counted: CloudTrail events and findings an account routes to the pipeline a
/// month, and their price per million through it (Express, Lambda, DynamoDB).
pub const ROUTED_EVENTS: f64 = 50_000.0;
pub const PER_MILLION_EVENTS: f64 = 6.2;
/// Stated: DynamoDB's other items, the audit trail, email, logs and traces, a month.
pub const REST: f64 = 2.0;

/// What one instance costs per pull, from a run's counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rates {
    pub metrics_requested: f64,
    pub state_reads: f64,
    pub state_writes: f64,
    /// Bytes of telemetry lines read, and the mean bytes of a line written.
    pub log_bytes_read: f64,
    pub bytes_per_line: f64,
}

impl Rates {
    /// Per instance read per pull; none when the run pulled nothing.
    pub fn from_calls(calls: &Calls) -> Option<Rates> {
        if calls.instance_pulls == 0 {
            return None;
        }
        let n = calls.instance_pulls as f64;
        Some(Rates {
            metrics_requested: calls.metrics_requested as f64 / n,
            state_reads: calls.state_reads as f64 / n,
            state_writes: calls.state_writes as f64 / n,
            log_bytes_read: calls.log_bytes_read as f64 / n,
            bytes_per_line: if calls.lines_written == 0 {
                0.0
            } else {
                calls.log_bytes_written as f64 / calls.lines_written as f64
            },
        })
    }
}

/// The design a bill is for.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Design {
    pub pull_minutes: u32,
    pub monitoring: Monitoring,
    pub agent: bool,
    pub telemetry: Telemetry,
}

/// One line of a bill: what, and dollars a month.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub item: &'static str,
    pub monthly: f64,
}

/// A month's bill for a fleet: Vigil's own, and the monitoring it reads that CloudWatch bills
/// per instance (the account's, not the stack's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bill {
    pub instances: u64,
    pub vigil: Vec<Line>,
    pub monitoring: Vec<Line>,
}

impl Bill {
    pub fn vigil_total(&self) -> f64 {
        self.vigil.iter().map(|l| l.monthly).sum()
    }

    pub fn monitoring_total(&self) -> f64 {
        self.monitoring.iter().map(|l| l.monthly).sum()
    }
}

/// Custom metrics' price a month for `n` metrics, through the tiers.
pub fn custom_metrics(prices: &Prices, n: f64) -> f64 {
    let mut left = n.max(0.0);
    let mut below = 0.0;
    let mut out = 0.0;
    for (upto, price) in prices.custom_metric_tiers {
        let here = left.min(upto - below);
        out += here * price;
        left -= here;
        below = upto;
        if left <= 0.0 {
            break;
        }
    }
    out
}

/// Pulls a month (30 days) at a schedule of `minutes`.
pub fn pulls_per_month(minutes: u32) -> f64 {
    30.0 * 1440.0 / f64::from(minutes.max(1))
}

/// The month's bill for `instances` watched instances.
pub fn bill(
    prices: &Prices,
    shape: &PullShape,
    rates: &Rates,
    design: Design,
    instances: u64,
) -> Bill {
    let n = instances as f64;
    let pulls = pulls_per_month(design.pull_minutes);
    let batches = instances.div_ceil(BATCH_INSTANCES as u64) as f64;
    // Every custom metric of the account is priced through the same tiers: the monitoring's
    // and Vigil's own, each its share.
    let detailed = if design.monitoring == Monitoring::Detailed {
        n * DETAILED_METRICS_PER_INSTANCE
    } else {
        0.0
    };
    let lines = design.telemetry == Telemetry::Lines;
    let agent = if design.agent && !lines {
        n * AGENT_METRICS_PER_INSTANCE
    } else {
        0.0
    };
    let all = detailed + agent + OWN_METRICS;
    let per_metric = custom_metrics(prices, all) / all;
    let vigil = vec![
        Line {
            item: "CloudWatch GetMetricData (metrics requested, counted)",
            monthly: n * rates.metrics_requested * pulls * prices.get_metric_data / 1000.0,
        },
        Line {
            item: "CloudWatch Logs reads of the telemetry lines (bytes, counted)",
            monthly: n * rates.log_bytes_read * pulls * prices.logs_scanned / 1e9,
        },
        Line {
            item: "S3 detector states (GETs and PUTs, counted)",
            monthly: n
                * pulls
                * (rates.state_reads * prices.s3_get + rates.state_writes * prices.s3_put)
                / 1000.0,
        },
        Line {
            item: "Step Functions, the pull workflow (transitions and children)",
            monthly: pulls
                * ((shape.transitions_per_pull + shape.transitions_per_batch * batches)
                    * prices.standard_transition
                    + batches
                        * (prices.express_request
                            + shape.child_seconds * 0.0625 * prices.express_gb_second)),
        },
        Line {
            item: "Lambda (requests, and duration at 256 MB)",
            monthly: pulls
                * ((shape.invocations_per_pull + shape.invocations_per_batch * batches)
                    * prices.lambda_request
                    + (shape.seconds_per_pull + shape.seconds_per_batch * batches)
                        * 0.25
                        * prices.lambda_gb_second),
        },
        Line {
            item: "Vigil's own metrics",
            monthly: OWN_METRICS * per_metric,
        },
        Line {
            item: "routed events (stated: 50,000 a month)",
            monthly: ROUTED_EVENTS * PER_MILLION_EVENTS / 1e6,
        },
        Line {
            item: "DynamoDB, audit trail, email, logs (stated)",
            monthly: REST,
        },
    ];
    let mut monitoring = Vec::new();
    if detailed > 0.0 {
        monitoring.push(Line {
            item: "EC2 detailed monitoring",
            monthly: detailed * per_metric,
        });
    }
    if agent > 0.0 {
        monitoring.push(Line {
            item: "CloudWatch agent: memory and one volume",
            monthly: agent * per_metric,
        });
    }
    if lines {
        // A line a minute per instance, ingested, and kept a day.
        let bytes = n * (rates.bytes_per_line + LOG_EVENT_OVERHEAD) * 1440.0;
        monitoring.push(Line {
            item: "telemetry lines in CloudWatch Logs (a line a minute, counted bytes; kept a day)",
            monthly: bytes * 30.0 * prices.logs_ingested / 1e9
                + bytes * LINES_KEPT_DAYS * prices.logs_stored / 1e9,
        });
    }
    Bill {
        instances,
        vigil,
        monitoring,
    }
}

/// The fleet sizes the bill is shown for.
pub const FLEETS: [u64; 4] = [10, 100, 1_000, 10_000];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(rates: Rates, design: Design, instances: u64, item: &str, expect: f64) {
        let b = bill(&US_EAST_1, &PULL_SHAPE, &rates, design, instances);
        let got = b
            .vigil
            .iter()
            .chain(&b.monitoring)
            .find(|l| l.item.starts_with(item))
            .map_or(0.0, |l| l.monthly);
        assert!((got - expect).abs() < 0.01, "{item}: {got} != {expect}");
    }

    const SIX: Rates = Rates {
        metrics_requested: 6.0,
        state_reads: 1.0,
        state_writes: 1.0,
        log_bytes_read: 0.0,
        bytes_per_line: 0.0,
    };
    const DETAILED: Design = Design {
        pull_minutes: 5,
        monitoring: Monitoring::Detailed,
        agent: true,
        telemetry: Telemetry::Metrics,
    };

    #[test]
    fn the_bill_is_the_counts_times_the_prices() {
        // 100 instances x 6 metrics x 8,640 pulls at $0.01 per 1,000.
        check(SIX, DETAILED, 100, "CloudWatch GetMetricData", 51.84);
        // One GET and one PUT per instance and pull.
        check(SIX, DETAILED, 100, "S3 detector states", 4.67);
        // 20 transitions a pull at $0.025 per 1,000, and 10 children.
        check(SIX, DETAILED, 100, "Step Functions", 4.32 + 0.27);
        check(SIX, DETAILED, 100, "EC2 detailed monitoring", 210.0);
        check(SIX, DETAILED, 100, "CloudWatch agent", 60.0);
        // Half the pulls, half the reads.
        let ten = Design {
            pull_minutes: 10,
            ..DETAILED
        };
        check(SIX, ten, 100, "CloudWatch GetMetricData", 25.92);
        let basic = Design {
            monitoring: Monitoring::Basic,
            agent: false,
            ..DETAILED
        };
        let b = bill(&US_EAST_1, &PULL_SHAPE, &SIX, basic, 100);
        assert!(b.monitoring.is_empty(), "{b:?}");
    }

    #[test]
    fn telemetry_lines_bill_their_bytes_and_no_custom_metrics() {
        let lines = Design {
            monitoring: Monitoring::Basic,
            telemetry: Telemetry::Lines,
            ..DETAILED
        };
        // Five lines a pull of 100 bytes each, and a status check read one pull in ten.
        let rates = Rates {
            metrics_requested: 0.1,
            log_bytes_read: 500.0,
            bytes_per_line: 74.0,
            ..SIX
        };
        check(rates, lines, 100, "CloudWatch GetMetricData", 0.864);
        // 100 x 8,640 pulls x 500 bytes = 0.432 GB, at $0.005.
        check(rates, lines, 100, "CloudWatch Logs reads", 0.00216);
        // 100 instances x 100 bytes x 43,200 minutes = 0.432 GB at $0.50, and a day kept.
        check(rates, lines, 100, "telemetry lines", 0.216 + 0.000_432);
        check(rates, lines, 100, "CloudWatch agent", 0.0);
        check(rates, lines, 100, "EC2 detailed monitoring", 0.0);
    }

    #[test]
    fn custom_metrics_are_priced_through_the_tiers() {
        assert!((custom_metrics(&US_EAST_1, 10.0) - 3.0).abs() < 1e-9);
        assert!((custom_metrics(&US_EAST_1, 20_000.0) - 4_000.0).abs() < 1e-6);
        assert!((custom_metrics(&US_EAST_1, 300_000.0) - 29_500.0).abs() < 1e-6);
        assert_eq!(custom_metrics(&US_EAST_1, -1.0), 0.0);
    }

    #[test]
    fn rates_are_per_instance_read_per_pull() {
        let calls = Calls {
            pulls: 10,
            instance_pulls: 120,
            metrics_requested: 600,
            state_reads: 120,
            state_writes: 60,
            ..Calls::default()
        };
        let r = Rates::from_calls(&Calls {
            lines_written: 4,
            log_bytes_written: 300,
            ..calls
        })
        .unwrap();
        assert_eq!(r.bytes_per_line, 75.0);
        assert_eq!(
            (r.metrics_requested, r.state_reads, r.state_writes),
            (5.0, 1.0, 0.5)
        );
        assert_eq!(Rates::from_calls(&Calls::default()), None);
    }
}
