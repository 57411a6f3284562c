//! Vigil's common crate: the domain and the pure core (normalisation, features, models,
//! policy, alerts, audit), the ports the functions talk to the world through, and, behind the
//! `aws` feature, the AWS adapters that implement them. See ARCHITECTURE.md.

pub mod alert;
pub mod approval;
pub mod audit;
pub mod config;
pub mod domain;
pub mod eval;
pub mod events;
pub mod features;
pub mod gate;
pub mod generator;
pub mod handlers;
pub mod incidents;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod names;
pub mod policy;
pub mod ports;
pub mod sim;
pub mod stages;
pub mod train;

#[cfg(feature = "aws")]
pub mod aws;

/// An error and all its sources, joined with `: `, for logs and Lambda error responses.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
