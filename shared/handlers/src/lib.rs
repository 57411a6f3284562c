//! The stage handlers: parse, call the core, call the ports, map errors. Also the ports
//! themselves (`ports`) and the functions' settings from the environment (`config`).
//!
//! Each handler is generic over the ports it needs, so the same code runs in the Lambda
//! functions (on the AWS adapters), in the cross-crate tests (against moto) and in the `vigil`
//! CLI (on the lab's in-memory ports). The binaries in `functions/` only wire a handler to its adapters.

pub mod approve;
pub mod config;
pub mod decide;
pub mod gate;
pub mod ingest;
pub mod ports;
pub mod remediate;
pub mod rules;
pub mod score;

/// Prints Vigil's own metrics as Embedded Metric Format log lines (CloudWatch Logs extracts
/// them; see `vigil_core::telemetry`).
pub fn emit_metrics(metrics: &[vigil_core::telemetry::Metric], at: chrono::DateTime<chrono::Utc>) {
    for doc in vigil_core::telemetry::emf(metrics, at) {
        println!("{doc}");
    }
}
