//! The crate graph is the architecture: these tests read it from `cargo metadata` and hold the
//! invariants ARCHITECTURE.md states about it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The Lambda functions' packages.
const FUNCTIONS: [&str; 6] = [
    "vigil-ingest",
    "vigil-score",
    "vigil-decide",
    "vigil-remediate",
    "vigil-gate",
    "vigil-approve",
];

/// Package name -> the names of its normal (non-dev, non-build) dependencies, over the
/// workspace's resolved graph.
struct Graph {
    deps: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    fn load() -> Graph {
        // The graph as built on this machine: without a platform filter, `cargo metadata`
        // wants every platform's crates, which an offline machine does not have.
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let version = Command::new(rustc).arg("-vV").output().unwrap();
        let version = String::from_utf8(version.stdout).unwrap();
        let host = version
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .expect("rustc -vV names the host");
        let out = Command::new(env!("CARGO"))
            .args(["metadata", "--format-version", "1", "--locked", "--offline"])
            .args(["--filter-platform", host])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
        let name_of: BTreeMap<&str, &str> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
            .collect();
        let mut deps = BTreeMap::new();
        for node in meta["resolve"]["nodes"].as_array().unwrap() {
            let name = name_of[node["id"].as_str().unwrap()].to_string();
            let normal: BTreeSet<String> = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].is_null())
                })
                .map(|d| name_of[d["pkg"].as_str().unwrap()].to_string())
                .collect();
            deps.entry(name)
                .or_insert_with(BTreeSet::new)
                .extend(normal);
        }
        Graph { deps }
    }

    /// Every package `package` needs to build, itself excluded.
    fn closure(&self, package: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![package.to_string()];
        while let Some(p) = todo.pop() {
            for d in self.deps.get(&p).into_iter().flatten() {
                if seen.insert(d.clone()) {
                    todo.push(d.clone());
                }
            }
        }
        seen
    }
}

fn is_sdk(name: &str) -> bool {
    name.starts_with("aws-sdk-") || name.starts_with("aws-smithy-") || name == "aws-config"
}

fn check(package: &str, forbidden: impl Fn(&str) -> bool, why: &str) {
    let graph = Graph::load();
    assert!(graph.deps.contains_key(package), "no package {package}");
    let bad: Vec<String> = graph
        .closure(package)
        .into_iter()
        .filter(|d| forbidden(d))
        .collect();
    assert!(bad.is_empty(), "{package} depends on {bad:?}: {why}");
}

#[test]
fn no_lambda_function_builds_the_lab() {
    for f in FUNCTIONS {
        check(
            f,
            // smartcore itself needs `rand`; the generator's own random sources are these.
            |d| ["vigil-lab", "rand_chacha", "rand_distr"].contains(&d),
            "the generator, training, evaluation and the simulator are never compiled into a \
             function",
        );
    }
}

#[test]
fn the_core_needs_no_sdk_and_no_async_runtime() {
    check(
        "vigil-core",
        |d| {
            is_sdk(d)
                || d.starts_with("vigil-")
                || [
                    "tokio",
                    "lambda_runtime",
                    "hyper",
                    "futures",
                    "rand_chacha",
                    "rand_distr",
                ]
                .contains(&d)
        },
        "the core is synchronous and does no IO",
    );
}

#[test]
fn the_detection_rules_are_pure_too() {
    check(
        "vigil-rules",
        |d| {
            is_sdk(d)
                || (d.starts_with("vigil-") && d != "vigil-core")
                || ["tokio", "lambda_runtime", "hyper", "futures"].contains(&d)
        },
        "the rules are matched in the pure core's way: synchronous, no IO, no SDK",
    );
}

#[test]
fn handlers_and_lab_build_without_the_sdks() {
    check(
        "vigil-handlers",
        |d| is_sdk(d) || d == "vigil-aws" || d == "vigil-lab",
        "ports, not adapters",
    );
    check(
        "vigil-lab",
        |d| is_sdk(d) || d == "vigil-aws",
        "the lab runs on in-memory ports",
    );
}

#[test]
fn only_the_adapters_depend_on_an_sdk_directly() {
    let graph = Graph::load();
    // The cross-crate test harness builds its own clients to check the emulator's state.
    let allowed = ["vigil-aws", "vigil-tests"];
    for (package, deps) in graph.deps.iter().filter(|(p, _)| p.starts_with("vigil-")) {
        if allowed.contains(&package.as_str()) {
            continue;
        }
        let direct: Vec<&String> = deps.iter().filter(|d| d.starts_with("aws-sdk-")).collect();
        assert!(
            direct.is_empty(),
            "{package} depends on {direct:?} directly; only vigil-aws may"
        );
    }
}

#[test]
fn the_check_sees_a_violation() {
    // The forbidden-set logic itself: the functions do depend on the adapters, and so on the
    // SDKs, so asking for a function without an SDK must find them.
    let graph = Graph::load();
    let sdks: Vec<String> = graph
        .closure("vigil-decide")
        .into_iter()
        .filter(|d| is_sdk(d))
        .collect();
    assert!(sdks.iter().any(|d| d == "aws-sdk-dynamodb"), "{sdks:?}");
    assert!(graph.closure("vigil-cli").contains("vigil-lab"));
}

/// Longest a source file under a crate's `src/` may be, inline tests included: past it, a
/// module holds more than one idea (split it by source, by arm, by step).
const MAX_SOURCE_LINES: usize = 800;

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_source_file_is_longer_than_the_limit() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut crates = vec![root.join("cli"), root.join("tests")];
    for parent in ["shared", "functions"] {
        for entry in std::fs::read_dir(root.join(parent)).unwrap() {
            crates.push(entry.unwrap().path());
        }
    }
    let mut files = Vec::new();
    for c in crates.iter().map(|c| c.join("src")).filter(|s| s.is_dir()) {
        rust_files(&c, &mut files);
    }
    assert!(files.len() > 50, "found only {} source files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).unwrap().lines().count();
            (lines > MAX_SOURCE_LINES).then(|| format!("{} ({lines} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_SOURCE_LINES} lines: {long:?}");
}
