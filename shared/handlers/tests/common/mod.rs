//! Helpers shared by the shared crate's integration tests.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vigil_core::events::{self, Envelope};

/// Reads a bundled sample event (real EventBridge JSON) by file name.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

pub fn fixture(name: &str) -> Envelope {
    events::parse_envelope(&fixture_bytes(name)).unwrap()
}
