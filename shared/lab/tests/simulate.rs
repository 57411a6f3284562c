//! The fault-injection experiment: deterministic for a seed, and different for another.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use vigil_lab::sim::{self, Scenario, SimConfig};

fn small(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        duration_minutes: 480,
        instances: 6,
        faults: 2,
        ..SimConfig::default()
    }
}

fn run(config: &SimConfig, scenario: Scenario) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let r = rt.block_on(sim::run_scenario(config, scenario)).unwrap();
    serde_json::to_string(&r).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    for scenario in [Scenario::InstanceFailure, Scenario::CredentialLeak] {
        let a = run(&small(11), scenario);
        assert_eq!(a, run(&small(11), scenario), "{scenario}");
        assert_ne!(
            a,
            run(&small(12), scenario),
            "{scenario}: another seed, another world"
        );
    }
}

#[test]
fn vigil_replaces_a_failed_instance_and_deactivates_a_leaked_key() {
    let config = small(11);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let failed = rt
        .block_on(sim::run_scenario(&config, Scenario::InstanceFailure))
        .unwrap();
    assert!(
        failed
            .vigil
            .cleared_by
            .iter()
            .any(|b| b == "Vigil: replaced"),
        "{:?}",
        failed.vigil.cleared_by
    );
    assert!(
        failed
            .baseline
            .cleared_by
            .iter()
            .all(|b| b == "people" || b.is_empty())
    );
    let leak = rt
        .block_on(sim::run_scenario(&config, Scenario::CredentialLeak))
        .unwrap();
    assert!(
        leak.vigil
            .cleared_by
            .iter()
            .any(|b| b == "Vigil: key deactivated"),
        "{:?}",
        leak.vigil.cleared_by
    );
    // Measures are computed from the same results the report shows.
    let m = sim::measure([&failed], |r| &r.vigil);
    assert_eq!(m.faults, failed.faults.len());
    assert!((0.0..=1.0).contains(&m.precision) && (0.0..=1.0).contains(&m.recall));
}

#[test]
fn stratus_detonations_are_replayed_one_fault_each() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/stratus");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let stratus: Vec<_> = paths
        .iter()
        .take(3)
        .map(|p| vigil_lab::eval::threats::Technique {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            records: serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap(),
        })
        .collect();
    let config = SimConfig {
        stratus,
        ..small(11)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let r = rt
        .block_on(sim::run_scenario(&config, Scenario::StratusReplay))
        .unwrap();
    assert_eq!(r.faults.len(), 3);
    assert_eq!(r.vigil.detected.len(), 3);
    let again = rt
        .block_on(sim::run_scenario(&config, Scenario::StratusReplay))
        .unwrap();
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        serde_json::to_string(&again).unwrap()
    );
}

#[test]
fn password_guessing_is_found_within_minutes_and_no_key_is_touched() {
    let config = small(11);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let r = rt
        .block_on(sim::run_scenario(&config, Scenario::BruteForce))
        .unwrap();
    assert_eq!(r.faults.len(), 2);
    for (i, f) in r.faults.iter().enumerate() {
        assert!(
            f.target.contains(":user/"),
            "people sign in, not roles: {}",
            f.target
        );
        assert_eq!(f.alias, None, "a password guesser holds no key");
        // Vigil names the guessing within minutes; nothing it can do stops it, so people do.
        let detected = r.vigil.detected[i].expect("detected");
        assert!(detected <= f.onset + 5, "{detected} vs onset {}", f.onset);
        assert_eq!(r.vigil.cleared_by[i], "people");
    }
    assert_eq!(
        r.vigil.actions, 0,
        "no key is deactivated for a guessed password"
    );
    // People are asked no more often than the CIS filter pages them.
    assert!(
        r.vigil.human_interventions <= r.baseline.human_interventions,
        "{} vs {}",
        r.vigil.human_interventions,
        r.baseline.human_interventions
    );
}
