//! Evaluation of the models against public benchmarks. Pure: the CLI reads the data.

pub mod nab;
pub mod threats;
