//! Vigil's lab: what is run on a workstation or in CI, never in a Lambda function. The seeded
//! fault and attack generator (`generator`), training of the bundled classifiers (`train`),
//! evaluation on public data (`eval`: NAB, Stratus), the fault-injection experiment (`sim`),
//! the cost model from the calls it counts (`cost`) and the in-memory ports the simulator,
//! `vigil replay` and the tests run the handlers on (`memory`).

pub mod cost;
pub mod eval;
pub mod eventbridge;
pub mod generator;
pub mod memory;
pub mod pipeline;
pub mod requests;
pub mod sim;
pub mod train;
