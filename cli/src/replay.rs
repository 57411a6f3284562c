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
        let envelope = match events::parse_envelope(&bytes) {
            Ok(e) => e,
            Err(e) => {
                print_refusal(&name, &vigil_core::error_chain(&e), as_json);
                continue;
            }
        };
        place(&pipeline.fleet, &envelope, n)?;
        let observed = match pipeline.ingest(&envelope).await {
            Ok(o) => o,
            Err(e) => {
                print_refusal(&name, &vigil_core::error_chain(&e), as_json);
                continue;
            }
        };
        if let Some(why) = &observed.ignored {
            if as_json {
                println!("{}", json!({"event": name, "ignored": why}));
            } else {
                println!("{name}\n  ignored: {why}\n");
            }
            continue;
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
    if !as_json {
        println!(
            "{} alert(s) would have been published.",
            pipeline.outbox.sent().len()
        );
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
