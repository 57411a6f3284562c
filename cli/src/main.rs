//! `vigil`: local work on Vigil, without an AWS account.
//!
//! Every command runs the same core and handlers as the Lambda functions, on in-memory ports.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};

mod approve;
mod eval;
mod replay;
mod rules;
mod simulate;
mod train;

#[derive(Parser)]
#[command(
    name = "vigil",
    version,
    about = "Vigil: self-driving operations and security for AWS (local tools)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    DryRun,
    Enforce,
}

#[derive(Subcommand)]
enum Command {
    /// Replay EventBridge events (JSON files, or folders of them) through
    /// ingest -> score -> decide -> remediate on an in-memory world, and print each decision
    /// with its reasons.
    Replay {
        /// Event files or folders. Default: the bundled sample events.
        paths: Vec<PathBuf>,
        /// Carry actions out on the in-memory world (default: dry-run, as a new deployment).
        #[arg(long, value_enum, default_value = "dry-run")]
        mode: ModeArg,
        /// Print the decisions and outcomes as JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The fault-injection experiment: a simulated fleet and account with faults and attacks
    /// injected, run once with static alarms and people (the baseline) and once with Vigil's
    /// core inside; prints the comparison and writes a report with charts.
    Simulate {
        /// Seeds to run, each with its own world, faults and people (`1-10`, `1,2,5`): the
        /// headline is their mean with its spread, every seed listed. The same seed gives the
        /// same numbers.
        #[arg(long, default_value = "1-10", conflicts_with = "seed")]
        seeds: String,
        /// One seed only, with its full report and charts (to read one run, not to report).
        #[arg(long)]
        seed: Option<u64>,
        /// Turn a second opinion off in the Vigil arm (its policy section's name; repeat or
        /// separate with commas), to measure what it is worth.
        #[arg(long, value_delimiter = ',')]
        without: Vec<String>,
        /// Scenarios to run (default: all). Repeat or separate with commas.
        #[arg(long, value_delimiter = ',')]
        scenario: Vec<String>,
        /// Simulated minutes per scenario.
        #[arg(long, default_value_t = 1440)]
        duration: u32,
        /// Instances in the fleet (three groups).
        #[arg(long, default_value_t = 12)]
        instances: usize,
        /// Faults or attacks injected per scenario.
        #[arg(long, default_value_t = 4)]
        faults: usize,
        /// The fleet's EC2 monitoring: `detailed` (one-minute points) or `basic` (five-minute
        /// points, free); it sets the pull's period and the users' alarms'.
        #[arg(long, default_value = "detailed", value_parser = parse_monitoring)]
        monitoring: vigil_lab::sim::Monitoring,
        /// The instances run no CloudWatch agent: no memory or disk series, nor alarms on them.
        #[arg(long)]
        no_agent: bool,
        /// Where the pull reads the instances' metrics: `metrics` (GetMetricData) or `lines`
        /// (a telemetry line a minute per instance in CloudWatch Logs; no custom metrics).
        #[arg(long, default_value = "metrics", value_parser = parse_telemetry)]
        telemetry: vigil_lab::sim::Telemetry,
        /// Minutes between scheduled pulls (the stack's `ScheduleRate`).
        #[arg(long, default_value_t = 5)]
        pull_minutes: u32,
        /// Where the report and charts go.
        #[arg(long, default_value = "target/simulate")]
        out: PathBuf,
        /// Stratus Red Team detonation logs replayed by the `stratus-replay` scenario.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/stratus"))]
        stratus: PathBuf,
    },
    /// Policy files.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Regenerate every bundled model from its fixed seed: writes the artifacts
    /// (`shared/models/*.postcard`) and their model cards (`docs/models/*.md`).
    Train {
        /// Where the artifacts go.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/models"))]
        models: PathBuf,
        /// Where the model cards go.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/models"))]
        cards: PathBuf,
    },
    /// Measure the models on public benchmarks.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Approve (or deny) a decision that waits for a person, as yourself: a request to the
    /// stack's ApproverUrl signed with your AWS credentials. Your verdict counts if the policy
    /// names you (`approvals`); the answer says how many approvals the decision has.
    Approve {
        /// The decision id (in the approval email).
        decision: String,
        /// The stack's `ApproverUrl` output.
        #[arg(long)]
        url: String,
        /// Deny instead of approving.
        #[arg(long)]
        deny: bool,
    },
    /// Undo the action a decision took (release a quarantine, activate a key again, resume
    /// scaling, lift a freeze, scale back in), as yourself: a request to the stack's
    /// ApproverUrl signed with your AWS credentials. The undo is a decision of its own that
    /// waits for the policy's named approvers (your request is the first approval) and is
    /// checked against every limit in force.
    Undo {
        /// The id of the decision whose action is undone (in its outcome email).
        decision: String,
        /// The stack's `ApproverUrl` output.
        #[arg(long)]
        url: String,
    },
    /// The detection rules (Sigma): the bundled pack, and an operator's own.
    Rules {
        #[command(subcommand)]
        command: rules::RulesCommand,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Validate a policy file (default: the bundled policy) and summarise it.
    Check { file: Option<PathBuf> },
    /// Print the policy format's JSON Schema (published as infra/policy/schema.json).
    Schema,
    /// Read a policy written in an earlier format and print it in the current one.
    Migrate { file: PathBuf },
    /// The decision an event would get, with every reason, in dry-run on an in-memory world.
    Explain {
        /// The event (JSON): an EventBridge event, or a raw CloudTrail record (wrapped as
        /// EventBridge delivers it), or a CloudTrail log file (`{"Records": [...]}`) or an
        /// array of either, each decided in turn.
        #[arg(long)]
        event: PathBuf,
        /// A policy file (default: the bundled policy).
        #[arg(long)]
        policy: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Run the streaming anomaly detector over NAB-format data (category folders of
    /// `timestamp,value` CSVs and `labels/combined_windows.json`), write NAB results files
    /// (`<out>/<category>/vigil_<file>.csv`) and score them with NAB's rules.
    Nab {
        /// The NAB data folder (any subset of its categories).
        #[arg(long)]
        data: PathBuf,
        /// Where the results files and `vigil_scores.json` go.
        #[arg(long)]
        out: PathBuf,
        /// Detector settings (JSON, any subset of the fields; default: the bundled ones).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Mix each Stratus Red Team detonation log into a generated benign CloudTrail baseline,
    /// pass every event through the template's event rules, judge what is delivered with the
    /// detection rules and the threat classifier, and report per technique (rules, model,
    /// both) and the false alarms on the baseline alone.
    Threats {
        /// A folder of detonation logs (JSON arrays of CloudTrail records), one per technique.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/stratus"))]
        data: PathBuf,
        /// The SAM template whose EventBridge rules decide what the stack receives.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))]
        template: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain of an audit trail: report any record altered, removed or moved.
    ///
    /// Either a local file (JSON lines, one record per line) or the deployed trail in S3
    /// (`--bucket`, credentials and region from the usual AWS environment).
    Verify {
        /// A file of records, one JSON record per line.
        file: Option<PathBuf>,
        /// The audit bucket (the stack's `AuditBucketName` output).
        #[arg(long, conflicts_with = "file")]
        bucket: Option<String>,
        /// The records' key prefix in the bucket.
        #[arg(long, default_value = "audit/")]
        prefix: String,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The single error reporter: the error and every cause, one per line.
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay { paths, mode, json } => {
            let mode = match mode {
                ModeArg::DryRun => vigil_core::domain::Mode::DryRun,
                ModeArg::Enforce => vigil_core::domain::Mode::Enforce,
            };
            let files = event_files(&paths)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(replay::run(&files, mode, json))
        }
        Command::Simulate {
            seeds,
            seed,
            without,
            scenario,
            duration,
            instances,
            faults,
            monitoring,
            no_agent,
            telemetry,
            pull_minutes,
            out,
            stratus,
        } => {
            let scenarios = if scenario.is_empty() {
                vigil_lab::sim::Scenario::ALL.to_vec()
            } else {
                scenario
                    .iter()
                    .map(|s| {
                        vigil_lab::sim::Scenario::parse(s).with_context(|| {
                            let all: Vec<&str> = vigil_lab::sim::Scenario::ALL
                                .iter()
                                .map(|x| x.name())
                                .collect();
                            format!("unknown scenario {s:?}; one of: {}", all.join(", "))
                        })
                    })
                    .collect::<Result<_>>()?
            };
            let stratus = if scenarios.contains(&vigil_lab::sim::Scenario::StratusReplay) {
                eval::techniques(&stratus)?
            } else {
                Vec::new()
            };
            let config = vigil_lab::sim::SimConfig {
                seed: seed.unwrap_or_default(),
                duration_minutes: duration.max(300),
                instances: instances.max(3),
                faults: faults.max(1),
                monitoring,
                agent: !no_agent,
                telemetry,
                pull_minutes: pull_minutes.clamp(1, 60),
                stratus,
                without: without.clone(),
                ..Default::default()
            };
            let Some(_) = seed else {
                let seeds = simulate::parse_seeds(&seeds)?;
                let runs = simulate::run_seeds(&config, &scenarios, &seeds)?;
                print!("{}", simulate::seeds_table(&runs, &without));
                print!(
                    "\n{}",
                    simulate::cost_table(&simulate::seeds_calls(&runs), &config)
                );
                simulate::write_seeds(&runs, &config, &out)?;
                println!("Table: {}", out.join("seeds.md").display());
                return Ok(());
            };
            let report = simulate::run(&config, &scenarios)?;
            print!("{}", simulate::table(&report));
            print!(
                "\n{}",
                simulate::cost_table(&report.overall.1.calls, &config)
            );
            simulate::write(&report, &out)?;
            println!("Report and charts: {}", out.display());
            Ok(())
        }
        Command::Policy {
            command: PolicyCommand::Check { file },
        } => policy_check(file.as_deref()),
        Command::Policy {
            command: PolicyCommand::Schema,
        } => {
            print!("{}", vigil_core::policy::Policy::json_schema());
            Ok(())
        }
        Command::Policy {
            command: PolicyCommand::Migrate { file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let policy = vigil_core::policy::Policy::from_yaml(&text, &file.display().to_string())
                .with_context(|| format!("checking {}", file.display()))?;
            println!(
                "# {} in policy format {} (comments of the original are not kept)",
                file.display(),
                vigil_core::policy::VERSION
            );
            print!("{}", policy.to_yaml()?);
            Ok(())
        }
        Command::Policy {
            command: PolicyCommand::Explain { event, policy },
        } => {
            let policy = match policy {
                Some(f) => {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    Some(
                        vigil_core::policy::Policy::from_yaml(&text, &f.display().to_string())
                            .with_context(|| format!("checking {}", f.display()))?,
                    )
                }
                None => None,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .context("starting the async runtime")?;
            runtime.block_on(replay::explain(&event, policy))
        }
        Command::Train { models, cards } => train::run(&models, &cards),
        Command::Eval {
            command: EvalCommand::Nab { data, out, config },
        } => {
            let config = match config {
                Some(f) => {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("parsing {}", f.display()))?
                }
                None => vigil_core::models::anomaly::DetectorConfig::default(),
            };
            let report = eval::nab(&data, &out, config)?;
            eval::print_nab(&report);
            eval::print_loco(&report);
            Ok(())
        }
        Command::Eval {
            command:
                EvalCommand::Threats {
                    data,
                    template,
                    json,
                },
        } => {
            let report = eval::threats(&data, &template)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                eval::print_threats(&report);
            }
            Ok(())
        }
        Command::Rules { command } => rules::run(command),
        Command::Approve {
            decision,
            url,
            deny,
        } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let body = approve::body(&decision, deny);
            let (status, html) = runtime.block_on(approve::send(&url, body))?;
            println!("{status} {}", approve::message(&html));
            if !(200..300).contains(&status) {
                bail!("the verdict was not taken ({status})");
            }
            Ok(())
        }
        Command::Undo { decision, url } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let body = approve::undo_body(&decision);
            let (status, html) = runtime.block_on(approve::send(&url, body))?;
            println!("{status} {}", approve::message(&html));
            if !(200..300).contains(&status) {
                bail!("the undo was not taken ({status})");
            }
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    file,
                    bucket,
                    prefix,
                },
        } => match (file, bucket) {
            (Some(file), None) => audit_verify(&file),
            (None, Some(bucket)) => audit_verify_bucket(&bucket, &prefix),
            _ => bail!("give a file of records or --bucket"),
        },
    }
}

/// The bundled sample events, relative to the workspace.
fn default_events() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/events")
}

fn event_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let roots = if paths.is_empty() {
        vec![default_events()]
    } else {
        paths.to_vec()
    };
    let mut files = Vec::new();
    for root in roots {
        if root.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&root)
                .with_context(|| format!("reading {}", root.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else if root.is_file() {
            files.push(root);
        } else {
            bail!("{} is neither a file nor a folder", root.display());
        }
    }
    Ok(files)
}

fn policy_check(file: Option<&Path>) -> Result<()> {
    use vigil_core::policy::Policy;
    let (name, policy) = match file {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let p = Policy::from_yaml(&text, &f.display().to_string())
                .with_context(|| format!("checking {}", f.display()))?;
            (f.display().to_string(), p)
        }
        None => ("bundled policy".to_owned(), Policy::bundled()?),
    };
    let l = &policy.limits;
    println!(
        "{name} ({}): valid. mode {}, kill switch {}, {} rule(s)",
        policy.id,
        policy.mode,
        if policy.kill_switch { "ENGAGED" } else { "off" },
        policy.rules.len(),
    );
    println!(
        "  limits: cooldown {} min; {} actions of a kind per hour; blast radius <= {:.0}% of a group and >= {} InService; protect tag {}; {} maintenance window(s); loop breaker {} actions in {} min",
        l.cooldown_minutes,
        l.max_actions_per_hour,
        l.max_group_share * 100.0,
        l.min_in_service,
        l.protect_tag,
        l.maintenance_windows.len(),
        l.loop_breaker.max_attempts,
        l.loop_breaker.window_minutes,
    );
    println!(
        "  tiers: auto-heal at confidence >= {:.2}, approval >= {:.2}, else escalate",
        policy.tiers.auto_heal_min_confidence, policy.tiers.approval_min_confidence
    );
    rules::check_policy_names(&policy)?;
    for r in &policy.rules {
        let modes: Vec<String> = r.failure_modes.iter().map(|m| m.to_string()).collect();
        println!(
            "  - {}: {} at confidence >= {:.2} -> ladder {:?}, tier {}{}",
            r.name,
            modes.join(", "),
            r.min_confidence,
            r.ladder,
            r.tier,
            if r.dry_run { " (dry-run)" } else { "" }
        );
    }
    Ok(())
}

fn audit_verify_bucket(bucket: &str, prefix: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (versions, objects) = runtime.block_on(async {
        let config = vigil_aws::load_config().await;
        // The trail is read only: the state table is not touched.
        let trail = vigil_aws::audit::AuditTrail::new(&config, bucket, prefix, "");
        Ok::<_, vigil_handlers::ports::PortError>((
            trail.versions().await?,
            trail.read_all().await?,
        ))
    })?;
    // Every record written once, then the chain of what is there.
    vigil_core::audit::written_once(&versions)
        .with_context(|| format!("s3://{bucket}/{prefix} is not intact"))?;
    let n = vigil_core::audit::verify_stored(prefix, &objects)
        .with_context(|| format!("s3://{bucket}/{prefix} is not intact"))?;
    println!("s3://{bucket}/{prefix}: {n} record(s), chain intact");
    Ok(())
}

fn audit_verify(file: &Path) -> Result<()> {
    use vigil_core::audit::{self, AuditRecord};
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let records = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<AuditRecord>(l)
                .with_context(|| format!("line {} is not an audit record", i + 1))
        })
        .collect::<Result<Vec<_>>>()?;
    audit::verify(&records).with_context(|| format!("{} is not intact", file.display()))?;
    println!(
        "{}: {} record(s), chain intact",
        file.display(),
        records.len()
    );
    Ok(())
}

fn parse_telemetry(s: &str) -> Result<vigil_lab::sim::Telemetry, String> {
    vigil_lab::sim::Telemetry::parse(s).ok_or_else(|| format!("{s:?}: metrics or lines"))
}

fn parse_monitoring(s: &str) -> Result<vigil_lab::sim::Monitoring, String> {
    vigil_lab::sim::Monitoring::parse(s).ok_or_else(|| format!("{s:?}: detailed or basic"))
}
