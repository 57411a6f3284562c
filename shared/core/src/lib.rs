//! Vigil's pure core: the domain and everything that decides on it (normalisation, features,
//! models, incidents, policy, the gate's posture, alerts, approval links, audit records).
//! Synchronous, no IO: no AWS SDK and no async runtime is a dependency of this crate. See
//! ARCHITECTURE.md.

pub mod alert;
pub mod approval;
pub mod audit;
pub mod chat;
pub mod conversation;
pub mod digest;
pub mod domain;
pub mod events;
pub mod features;
pub mod gate;
pub mod incidents;
pub mod keys;
pub mod metrics;
pub mod models;
pub mod names;
pub mod opscenter;
pub mod policy;
pub mod securityhub;
pub mod stages;
pub mod telemetry;
pub mod undo;

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
