//! The fault and attack generator: labelled telemetry and CloudTrail activity, seeded and
//! reproducible. The models are trained on it (`vigil train`) and the simulator reuses it.
//! Pure: randomness comes from the caller's seeded [`Rng`], never from the clock or the OS.

pub mod cloudtrail;
pub mod telemetry;

use rand::SeedableRng;

/// The generator's random source: ChaCha8, whose output is fixed for a seed on every platform.
pub type Rng = rand_chacha::ChaCha8Rng;

/// A seeded random source.
pub fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}
