//! `vigil replay`: sample events through the real handlers, on an in-memory world.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde_json::json;
use vigil_core::domain::{Action, Mode};
use vigil_core::events;
use vigil_core::models::Models;
use vigil_core::names::{GroupName, InstanceId};
use vigil_core::policy::Policy;
use vigil_handlers::score;
use vigil_lab::memory::MemoryFleet;
use vigil_lab::pipeline::Pipeline;

/// Puts every instance the event names into a group of three healthy instances of its own, if
/// it has none yet (so the blast-radius limit lets one be replaced).
fn place(fleet: &MemoryFleet, envelope: &events::Envelope, n: usize) -> Result<()> {
    let Ok(events::Normalised::Signals(signals)) = events::normalise(envelope) else {
        return Ok(());
    };
    for s in signals {
        let Ok(Some(instance)) = s.resource.instance_id() else {
            continue;
        };
        if fleet.health(&instance).is_some() {
            continue;
        }
        let group = GroupName::parse(&format!("replay-group-{n}"))?;
        let peers = [
            InstanceId::parse(&format!("i-{:08x}", 0xa000_0000_u32 + n as u32 * 2))?,
            InstanceId::parse(&format!("i-{:08x}", 0xa000_0001_u32 + n as u32 * 2))?,
        ];
        fleet.add_group(
            &group,
            1,
            6,
            &[instance, peers[0].clone(), peers[1].clone()],
        );
    }
    Ok(())
}

/// `vigil policy explain`: one event, dry-run, with the given policy (default: bundled).
pub async fn explain(event: &std::path::Path, policy: Option<Policy>) -> Result<()> {
    run_with(&[event.to_path_buf()], Mode::DryRun, false, policy).await
}

pub async fn run(files: &[PathBuf], mode: Mode, as_json: bool) -> Result<()> {
    run_with(files, mode, as_json, None).await
}

async fn run_with(
    files: &[PathBuf],
    mode: Mode,
    as_json: bool,
    policy: Option<Policy>,
) -> Result<()> {
    let policy = match policy {
        Some(p) => p,
        None => Policy::bundled()?,
    };
    let pipeline = Pipeline::new(Models::bundled()?, policy, mode);
    if !as_json {
        println!(
            "Replaying {} event(s) in {mode} mode on an in-memory world.\n",
            files.len()
        );
    }
    for (n, file) in files.iter().enumerate() {
        let name = file.file_name().map_or_else(
            || file.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        );
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        for (name, bytes) in as_delivered(&name, bytes) {
            replay_one(&pipeline, &name, &bytes, n, as_json).await?;
        }
    }
    if !as_json {
        println!(
            "{} alert(s) would have been published.",
            pipeline.outbox.sent().len()
        );
    }
    Ok(())
}

/// The events a file holds, as EventBridge delivers them: an EventBridge event as it is; a raw
/// CloudTrail record (what CloudTrail's log files and most detection tests hold) wrapped the way
/// EventBridge wraps it (`AWS API Call via CloudTrail` from `aws.<service>`, sign-ins from
/// `aws.signin`); a CloudTrail log file (`{"Records": [...]}`) or a JSON array, each element so.
/// Anything else is passed on as it is, to be refused with its reason.
fn as_delivered(name: &str, bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return vec![(name.to_owned(), bytes)];
    };
    let items: Vec<serde_json::Value> = match value {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Object(ref o) if o.get("Records").is_some_and(|r| r.is_array()) => o
            .get("Records")
            .and_then(|r| r.as_array())
            .cloned()
            .unwrap_or_default(),
        other => {
            let one = wrap(other);
            return vec![(name.to_owned(), serde_json::to_vec(&one).unwrap_or(bytes))];
        }
    };
    let many = items.len() > 1;
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let label = if many {
                format!("{name}#{i}")
            } else {
                name.to_owned()
            };
            (label, serde_json::to_vec(&wrap(v)).unwrap_or_default())
        })
        .collect()
}

/// A raw CloudTrail record wrapped as EventBridge delivers it; anything else unchanged.
fn wrap(v: serde_json::Value) -> serde_json::Value {
    let record = v.get("detail-type").is_none()
        && v.get("eventSource").is_some_and(|s| s.is_string())
        && v.get("eventName").is_some_and(|s| s.is_string());
    if record {
        vigil_lab::eventbridge::envelope(&v)
    } else {
        v
    }
}

async fn replay_one(
    pipeline: &Pipeline,
    name: &str,
    bytes: &[u8],
    n: usize,
    as_json: bool,
) -> Result<()> {
    {
        let name = name.to_owned();
        let envelope = match events::parse_envelope(bytes) {
            Ok(e) => e,
            Err(e) => {
                print_refusal(&name, &vigil_core::error_chain(&e), as_json);
                return Ok(());
            }
        };
        place(&pipeline.fleet, &envelope, n)?;
        let observed = match pipeline.ingest(&envelope).await {
            Ok(o) => o,
            Err(e) => {
                print_refusal(&name, &vigil_core::error_chain(&e), as_json);
                return Ok(());
            }
        };
        if let Some(why) = &observed.ignored {
            if as_json {
                println!("{}", json!({"event": name, "ignored": why}));
            } else {
                println!("{name}\n  ignored: {why}\n");
            }
            return Ok(());
        }
        let mut scored = score::handle(observed, &pipeline.models);
        scored.execution_id = Some(format!("replay-{n}"));
        let owner = scored.execution_id.clone().unwrap_or_default();
        let now = chrono::Utc::now();
        let decisions = pipeline.decide_scored(scored, &owner, now).await?;
        for d in &decisions.decisions {
            let outcome = pipeline.remediate(d, now).await?;
            if as_json {
                println!(
                    "{}",
                    json!({"event": name, "decision": d, "outcome": outcome})
                );
                continue;
            }
            println!("{name}");
            println!(
                "  incident: {} on {} (severity {}, confidence {:.2})",
                d.incident.what(),
                d.incident.resource,
                d.incident.severity,
                d.incident.confidence
            );
            println!("  decision: tier {}, mode {}", d.tier, d.mode);
            if let Some(a) = &d.action {
                println!("  action:   {a}");
            }
            for r in &d.reasons {
                println!("    - [{}] {}", r.code, r.message);
            }
            println!("  outcome:  {:?}: {}", outcome.status, outcome.detail);
            if let Some(Action::ReplaceInstance { instance, .. }) = &d.action
                && let Some(h) = pipeline.fleet.health(instance)
            {
                println!("  world:    {instance} is {h}");
            }
            println!();
        }
    }
    Ok(())
}

fn print_refusal(name: &str, why: &str, as_json: bool) {
    if as_json {
        println!("{}", json!({"event": name, "refused": why}));
    } else {
        println!("{name}\n  refused: {why}\n");
    }
}
