//! `vigil rules`: the detection rules. `test` runs every rule's own test events (the bundled
//! pack, plus an operator's folder of Sigma rules when given); `list` prints the pack;
//! `delivery` prints what the rules need EventBridge to deliver (the template's patterns are
//! checked against it).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use vigil_rules::Pack;
use vigil_rules::delivery::Delivery;

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Run every rule's test events (`rsigma.exemplars`: some must match, some must not) and
    /// check each rule carries an ATT&CK technique and its known false positives.
    Test {
        /// A folder of the operator's own Sigma rules, tested with the bundled pack.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// List the rules: name, level, ATT&CK tags, title.
    List {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Check a rules override before setting it in the stack's rules parameter: it must load
    /// whole with the bundled pack, its own test events must pass, and each of its matching
    /// test events must be one the template's event rules deliver (else the rule never sees
    /// its events in a deployed stack).
    Check {
        /// The override: Sigma YAML, one or more documents.
        file: PathBuf,
        /// The SAM template whose EventBridge rules decide what the stack receives.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))]
        template: PathBuf,
    },
    /// What the rules need delivered (sources of write calls, read calls by name, principal
    /// types, error codes), as JSON.
    Delivery {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn rule_files(dir: &Path, out: &mut Vec<(String, String)>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rule_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            out.push((path.display().to_string(), text));
        }
    }
    Ok(())
}

/// The bundled pack, with the operator's folder when given. Every rule must load.
fn pack(dir: Option<&Path>) -> Result<Pack> {
    let mut files: Vec<(String, String)> = vigil_rules::BUNDLED
        .iter()
        .map(|(f, t)| ((*f).to_owned(), (*t).to_owned()))
        .collect();
    if let Some(dir) = dir {
        rule_files(dir, &mut files)?;
    }
    Pack::strict(files.iter().map(|(f, t)| (f.as_str(), t.as_str()))).map_err(|errors| {
        for e in &errors {
            eprintln!("refused: {e}");
        }
        anyhow::anyhow!("{} rule file(s) refused", errors.len())
    })
}

pub fn run(command: RulesCommand) -> Result<()> {
    match command {
        RulesCommand::Test { dir } => {
            let pack = pack(dir.as_deref())?;
            let tests = pack.test();
            let mut failed = 0;
            let mut cases = 0;
            for t in &tests {
                cases += t.cases.len();
                if t.passed() {
                    continue;
                }
                failed += 1;
                println!("FAIL {} ({})", t.name, t.file);
                for (name, passed, why) in &t.cases {
                    if !passed {
                        println!("  {name}: {}", why.as_deref().unwrap_or("failed"));
                    }
                }
                for m in &t.missing {
                    println!("  missing: {m}");
                }
            }
            println!(
                "{} rule(s), {cases} test event(s): {} passed, {failed} failed",
                tests.len(),
                tests.len() - failed
            );
            if failed > 0 {
                bail!("{failed} rule(s) failed their tests");
            }
            Ok(())
        }
        RulesCommand::List { dir } => {
            let pack = pack(dir.as_deref())?;
            for r in pack.rules() {
                println!(
                    "{:<48} {:<13} {:<40} {}",
                    r.name,
                    r.level.to_string(),
                    r.attack.join(","),
                    r.title
                );
            }
            println!("{} rule(s)", pack.len());
            Ok(())
        }
        RulesCommand::Check { file, template } => check(&file, &template),
        RulesCommand::Delivery { dir } => {
            let pack = pack(dir.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&Delivery::of(&pack))?);
            Ok(())
        }
    }
}

/// The most an advanced SSM String parameter holds: the rules override's size limit.
const OVERRIDE_MAX_BYTES: usize = 8 * 1024;

fn check(file: &Path, template: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if text.len() > OVERRIDE_MAX_BYTES {
        bail!(
            "{} is {} bytes; the rules parameter holds at most {OVERRIDE_MAX_BYTES} (an advanced SSM parameter): put a larger pack under infra/rules/ and deploy it",
            file.display(),
            text.len()
        );
    }
    let name = file.display().to_string();
    let pack = Pack::with_override(&name, &text).map_err(|errors| {
        for e in &errors {
            eprintln!("refused: {e}");
        }
        anyhow::anyhow!(
            "the override is refused ({} error(s)); the stack would keep the rules in force",
            errors.len()
        )
    })?;
    let routes = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    let routes = vigil_lab::eventbridge::rules_of(&routes, "PipelineStateMachine")?;
    let mine: Vec<_> = pack.rules().iter().filter(|r| r.file == name).collect();
    let mut unseen = 0;
    for r in &mine {
        let examples = r.examples(true);
        if examples.is_empty() {
            println!(
                "{}: no matching test event, so its delivery is not checked",
                r.name
            );
        }
        for e in examples {
            let event = vigil_lab::eventbridge::envelope(&e);
            if vigil_lab::eventbridge::delivered_by(&routes, &event).is_none() {
                unseen += 1;
                println!(
                    "{}: the stack's event rules do not deliver its test event ({} {}): it would never match",
                    r.name, event["source"], e["eventName"]
                );
            }
        }
    }
    println!(
        "{} rule(s) of the override load with the bundled pack ({} in all); their tests pass",
        mine.len()
            + pack
                .correlations()
                .iter()
                .filter(|c| c.file == name)
                .count(),
        pack.len() + pack.correlations().len()
    );
    if unseen > 0 {
        bail!(
            "{unseen} test event(s) of the override are not delivered by {}",
            template.display()
        );
    }
    Ok(())
}

/// Every detection rule a policy names exists in the bundled pack, and every suppression's.
pub fn check_policy_names(policy: &vigil_core::policy::Policy) -> Result<()> {
    let pack =
        Pack::bundled().map_err(|e| anyhow::anyhow!("the bundled rules do not load: {e:?}"))?;
    let named = policy
        .rules
        .iter()
        .flat_map(|r| r.detections.iter().map(move |d| (r.name.as_str(), d)))
        .chain(
            policy
                .suppressions
                .iter()
                .map(|s| ("suppressions", &s.rule)),
        );
    for (at, name) in named {
        if !pack.knows(name) {
            bail!("{at}: no detection rule is named {name} (`vigil rules list`)");
        }
    }
    Ok(())
}
