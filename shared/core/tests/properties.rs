//! Property tests of the feature functions (the parsers are fuzzed in `fuzz.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use vigil_core::features::window::{self, WindowSpec};

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn window_features_are_finite_on_any_input(
        points in prop::collection::vec(proptest::option::of(any::<f64>()), 0..200),
        period in 1u32..86_400,
        percent in any::<bool>(),
        season in 0usize..100,
    ) {
        let f = window::window(&points, WindowSpec { period_secs: period, percent, season_points: season });
        prop_assert!(f.iter().all(|v| v.is_finite()), "{f:?}");
    }

    #[test]
    fn window_scores_are_scale_invariant(
        points in prop::collection::vec(1.0f64..1000.0, 8..120),
        factor in 0.5f64..100.0,
    ) {
        let spec = WindowSpec { period_secs: 60, percent: false, season_points: 0 };
        let a = window::window(&points.iter().map(|v| Some(*v)).collect::<Vec<_>>(), spec);
        let b = window::window(&points.iter().map(|v| Some(v * factor)).collect::<Vec<_>>(), spec);
        // robust_z, rate_of_change, spike, flatline and missing ratios do not depend on units.
        for i in [1usize, 5, 6, 7, 8] {
            prop_assert!((a[i] - b[i]).abs() <= 1e-6 * a[i].abs().max(1.0), "{} : {} vs {}", window::NAMES[i], a[i], b[i]);
        }
        prop_assert!((b[0] - a[0] * factor).abs() <= 1e-9 * b[0].abs().max(1.0));
    }
}
