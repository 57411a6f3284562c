//! The stage handlers: parse, call the core, call the ports, map errors.
//!
//! Each handler is generic over the ports it needs, so the same code runs in the Lambda
//! functions (on the AWS adapters), in the cross-crate tests (against moto) and in the `vigil`
//! CLI (on in-memory ports). The binaries in `functions/` only wire a handler to its adapters.

pub mod approve;
pub mod decide;
pub mod gate;
pub mod ingest;
pub mod remediate;
pub mod score;
