//! `vigil simulate`: the fault-injection experiment, its table, Markdown report and charts.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use vigil_lab::sim::{self, Measures, Report, Scenario, SimConfig};

/// Runs the experiment with a progress bar on stderr.
pub fn run(config: &SimConfig, scenarios: &[Scenario]) -> Result<Report> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .context("starting the async runtime")?;
    let bar = indicatif::ProgressBar::new(scenarios.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} scenarios {msg} [{elapsed}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = runtime.block_on(sim::run(config, scenarios, |s| {
        bar.set_message(s.name());
        bar.inc(1);
    }))?;
    bar.finish_and_clear();
    Ok(report)
}

/// Every line of the comparison, labelled: each scenario, each group, then the overall.
fn lines<'a>(
    report: &'a Report,
    group: impl Fn(&str) -> String,
    overall: &str,
) -> Vec<(String, &'a Measures, &'a Measures)> {
    let scenarios = report
        .rows
        .iter()
        .map(|(s, b, v)| (s.name().to_owned(), b, v));
    let groups = report.groups.iter().map(|(g, b, v)| (group(g), b, v));
    let (b, v) = &report.overall;
    scenarios
        .chain(groups)
        .chain(std::iter::once((overall.to_owned(), b, v)))
        .collect()
}

fn row(name: &str, b: &Measures, v: &Measures) -> String {
    format!(
        "{name:<18} {:>6.1} {:>6.1} {:>6.1} {:>6.1}  {:>4.2} {:>4.2}  {:>4.2} {:>4.2}  {:>5.1} {:>5.1}  {:>4} {:>4}  {:>6} {:>6}  {:>3}",
        b.mttd,
        v.mttd,
        b.mttr,
        v.mttr,
        b.precision,
        v.precision,
        b.recall,
        v.recall,
        b.false_positives_per_day,
        v.false_positives_per_day,
        b.human_interventions,
        v.human_interventions,
        b.impact_minutes,
        v.impact_minutes,
        v.blocked_by_limits
    )
}

/// The table for the terminal: per scenario and overall, baseline | Vigil.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<18} {:>13} {:>13}  {:>9}  {:>9}  {:>11}  {:>9}  {:>13}  {:>3}",
        "",
        "MTTD (min)",
        "MTTR (min)",
        "precision",
        "recall",
        "FP per day",
        "humans",
        "impact (min)",
        "held"
    );
    let _ = writeln!(
        out,
        "{:<18} {:>6} {:>6} {:>6} {:>6}  {:>4} {:>4}  {:>4} {:>4}  {:>5} {:>5}  {:>4} {:>4}  {:>6} {:>6}  {:>3}",
        "scenario",
        "base",
        "vigil",
        "base",
        "vigil",
        "base",
        "vigil",
        "base",
        "vigil",
        "base",
        "vigil",
        "base",
        "vigil",
        "base",
        "vigil",
        ""
    );
    for (name, b, v) in lines(report, |g| format!("all {g}"), "overall") {
        let _ = writeln!(out, "{}", row(&name, b, v));
    }
    let (b, v) = &report.overall;
    let _ = writeln!(
        out,
        "\nMTTD {:.0}% lower, MTTR {:.0}% lower, impact {:.0}% lower, human interventions {} -> {}.",
        sim::reduction(b.mttd, v.mttd),
        sim::reduction(b.mttr, v.mttr),
        sim::reduction(f64::from(b.impact_minutes), f64::from(v.impact_minutes)),
        b.human_interventions,
        v.human_interventions
    );
    out
}

/// Writes `report.md`, `report.json` and the charts (`*.svg`) into `out`.
pub fn write(report: &Report, out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(report)?)
        .context("writing report.json")?;
    let mut charts = Vec::new();
    for r in &report.results {
        let name = format!("timeline-{}.svg", r.scenario.name());
        timeline_chart(r, &out.join(&name)).with_context(|| format!("drawing {name}"))?;
        charts.push((r.scenario, name));
    }
    bars_chart(report, &out.join("comparison.svg")).context("drawing comparison.svg")?;
    std::fs::write(out.join("report.md"), markdown(report, &charts))
        .context("writing report.md")?;
    Ok(())
}

fn markdown(report: &Report, charts: &[(Scenario, String)]) -> String {
    let c = &report.config;
    let h = &c.humans;
    let mut md = String::new();
    let _ = writeln!(md, "# Vigil fault-injection experiment\n");
    let _ = writeln!(
        md,
        "`vigil simulate --seed {} --duration {} --instances {} --faults {}`: {} scenarios, each {} simulated minutes on {} instances in three Auto Scaling groups, {} faults or attacks per scenario. The same world, faults and people in both arms.\n",
        c.seed,
        c.duration_minutes,
        c.instances,
        c.faults,
        report.rows.len(),
        c.duration_minutes,
        c.instances,
        c.faults
    );
    let _ = writeln!(md, "![baseline vs Vigil](comparison.svg)\n");
    let _ = writeln!(
        md,
        "| scenario | MTTD base | MTTD Vigil | MTTR base | MTTR Vigil | precision base | precision Vigil | recall base | recall Vigil | FP/day base | FP/day Vigil | people base | people Vigil | impact min base | impact min Vigil | held by limits |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let line = |name: &str, b: &Measures, v: &Measures| {
        format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} | {} |",
            b.mttd,
            v.mttd,
            b.mttr,
            v.mttr,
            b.precision,
            v.precision,
            b.recall,
            v.recall,
            b.false_positives_per_day,
            v.false_positives_per_day,
            b.human_interventions,
            v.human_interventions,
            b.impact_minutes,
            v.impact_minutes,
            v.blocked_by_limits
        )
    };
    for (name, b, v) in lines(report, |g| format!("*all {g}*"), "**overall**") {
        let _ = writeln!(md, "{}", line(&name, b, v));
    }
    let (b, v) = &report.overall;
    let _ = writeln!(
        md,
        "\nOverall: MTTD {:.0}% lower, MTTR {:.0}% lower, minutes of impact {:.0}% lower; {} actions carried out by Vigil, {} held by safety limits.\n",
        sim::reduction(b.mttd, v.mttd),
        sim::reduction(b.mttr, v.mttr),
        sim::reduction(f64::from(b.impact_minutes), f64::from(v.impact_minutes)),
        v.actions,
        v.blocked_by_limits
    );
    let _ = writeln!(md, "## How it is measured\n");
    let _ = writeln!(
        md,
        "- **MTTD**: minutes from the fault's onset until someone knows: the first alert on it (a page; with Vigil, a decision that acts, asks or tells), or users reporting it. Faults nobody knew of count until the end of the run."
    );
    let _ = writeln!(
        md,
        "- **MTTR**: minutes from onset until the fault is cleared in the simulated world (by an action's effect, or by people). Never cleared: until the end of the run."
    );
    let _ = writeln!(
        md,
        "- **precision**: alerts that belong to a fault (on its resource, from onset to 15 minutes after it cleared), or that are true findings about the account's posture (a detection rule on a human IAM user's own gap: a console sign-in without MFA, told once a week), over all alerts; alerts on one resource within 30 minutes are one. **recall**: faults the monitoring alerted on (user reports do not count)."
    );
    let _ = writeln!(
        md,
        "- **people**: pages, escalations, approval requests and user reports that needed a person; **impact**: minutes an instance was impaired (CPU >= 90% for a runaway, >= 85% in a surge, memory or disk >= 95%, the whole fault for failures, partitions and bad deployments) or an intruder worked."
    );
    let _ = writeln!(
        md,
        "- **baseline**: static alarms (CPU >= 80% for 3 of 3 minutes, status check failed 2 of 2, memory or disk >= 90% 3 of 3) and CIS-style CloudTrail metric filters (CloudTrail changes, IAM policy changes, security groups, bucket policies, KMS key deletion: 1 in 5 minutes; console sign-in failures: 3; unauthorised calls: 5), plus GuardDuty high findings, all paging people. **Vigil**: the same alarms and findings reach Vigil as EventBridge events; the metric pull every {} minutes and CloudTrail go through ingest, the bundled models, the policy and remediate, as deployed, in enforce mode; what it escalates or asks approval for, people handle.",
        c.pull_minutes
    );
    let _ = writeln!(
        md,
        "- **people's times** (log-normal, median and sigma of the log, the same draws in both arms): acknowledge {:.0} min ({:.1}), fix {:.0} min ({:.1}), users report after {:.0} min of impact ({:.1}), a false alarm costs {:.0} min ({:.1}). Actions take effect after: replacement 5 min, restart 2, scale-out 5, rollback 10, key deactivation 2; an approval, once given, takes 2.\n",
        h.acknowledge.0,
        h.acknowledge.1,
        h.fix.0,
        h.fix.1,
        h.user_report.0,
        h.user_report.1,
        h.false_alarm.0,
        h.false_alarm.1
    );
    let _ = writeln!(
        md,
        "- **monitoring**: {}. With basic monitoring EC2's metrics are five-minute means, each there once its five minutes have passed, and the users' alarms on them evaluate five-minute datapoints (the same counts of datapoints); the agent's are one-minute. Without the agent there are no memory or disk series, nor alarms on them. With telemetry lines the pull reads every metric at one minute from the lines, asks CloudWatch only for a silent instance's status check, and the users' alarms have EC2's metrics alone.\n",
        design(c)
    );
    let _ = writeln!(md, "## What it costs\n");
    let _ = writeln!(md, "{}", cost_table(&report.overall.1.calls, c));
    let _ = writeln!(md, "## Cleared by\n");
    for (name, arm) in [("baseline", true), ("Vigil", false)] {
        let counts = sim::cleared_by(
            &report.results,
            |r| if arm { &r.baseline } else { &r.vigil },
        );
        let list: Vec<String> = counts
            .iter()
            .map(|(k, n)| format!("{} {n}", if k.is_empty() { "not cleared" } else { k }))
            .collect();
        let _ = writeln!(md, "- {name}: {}", list.join(", "));
    }
    let _ = writeln!(md, "\n## Timelines\n");
    let _ = writeln!(
        md,
        "The first fault of each scenario: its key metric in each arm, with the onset and, per arm, when it was known and when it was cleared.\n"
    );
    for (s, file) in charts {
        let _ = writeln!(md, "### {s}\n\n![{s}]({file})\n");
    }
    md
}

fn timeline_chart(r: &sim::ScenarioResult, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let Some(f) = r.faults.first() else {
        return Ok(());
    };
    let from = f.onset.saturating_sub(60);
    let to = (f.onset + 300).min(r.duration_minutes);
    let points: Vec<&(u32, Option<f64>, Option<f64>)> = r
        .timeline
        .iter()
        .filter(|(m, _, _)| *m >= from && *m < to)
        .collect();
    let max = points
        .iter()
        .flat_map(|(_, b, v)| [*b, *v])
        .flatten()
        .fold(1.0_f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{}: {}", r.scenario, r.scenario.key_metric()),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(from..to, 0.0..max)?;
    chart
        .configure_mesh()
        .x_desc("simulated minute")
        .disable_mesh()
        .draw()?;
    let baseline = RGBColor(200, 80, 60);
    let vigil = RGBColor(40, 110, 200);
    for (pick, color, label) in [(1usize, baseline, "baseline"), (2, vigil, "Vigil")] {
        chart
            .draw_series(LineSeries::new(
                points
                    .iter()
                    .filter_map(|(m, b, v)| Some((*m, if pick == 1 { (*b)? } else { (*v)? }))),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    let mark = |m: Option<u32>, color: RGBColor, dashed: bool| -> Option<PathElement<(u32, f64)>> {
        let m = m?;
        if m < from || m >= to {
            return None;
        }
        let style = if dashed {
            color.stroke_width(1)
        } else {
            color.stroke_width(3)
        };
        Some(PathElement::new(vec![(m, 0.0), (m, max)], style))
    };
    let marks = [
        mark(Some(f.onset), BLACK, false),
        mark(r.baseline.known.first().copied().flatten(), baseline, true),
        mark(
            r.baseline.cleared.first().copied().flatten(),
            baseline,
            false,
        ),
        mark(r.vigil.known.first().copied().flatten(), vigil, true),
        mark(r.vigil.cleared.first().copied().flatten(), vigil, false),
    ];
    chart.draw_series(marks.into_iter().flatten())?;
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.draw(&Text::new(
        "black: onset; thin: known; thick: cleared",
        (620, 340),
        ("sans-serif", 12),
    ))?;
    root.present()?;
    Ok(())
}

fn bars_chart(report: &Report, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let (b, v) = &report.overall;
    let groups = [
        ("MTTD (min)", b.mttd, v.mttd),
        ("MTTR (min)", b.mttr, v.mttr),
        (
            "impact (min per fault)",
            f64::from(b.impact_minutes) / b.faults.max(1) as f64,
            f64::from(v.impact_minutes) / v.faults.max(1) as f64,
        ),
    ];
    let max = groups
        .iter()
        .flat_map(|(_, x, y)| [*x, *y])
        .fold(1.0_f64, f64::max)
        * 1.15;
    let root = SVGBackend::new(path, (720, 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("baseline vs Vigil, all scenarios", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..(groups.len() as f64 * 3.0), 0.0..max)?;
    chart.configure_mesh().disable_x_mesh().x_labels(0).draw()?;
    let baseline = RGBColor(200, 80, 60);
    let vigil = RGBColor(40, 110, 200);
    for (i, (name, x, y)) in groups.iter().enumerate() {
        let at = i as f64 * 3.0;
        chart.draw_series([
            Rectangle::new([(at + 0.3, 0.0), (at + 1.3, *x)], baseline.filled()),
            Rectangle::new([(at + 1.4, 0.0), (at + 2.4, *y)], vigil.filled()),
        ])?;
        chart.draw_series([Text::new(
            name.to_string(),
            (at + 0.3, max * 0.97),
            ("sans-serif", 13),
        )])?;
        chart.draw_series([
            Text::new(
                format!("{x:.0}"),
                (at + 0.4, x + max * 0.03),
                ("sans-serif", 12),
            ),
            Text::new(
                format!("{y:.0}"),
                (at + 1.5, y + max * 0.03),
                ("sans-serif", 12),
            ),
        ])?;
    }
    root.draw(&Text::new(
        "red: baseline   blue: Vigil",
        (500, 340),
        ("sans-serif", 12),
    ))?;
    root.present()?;
    Ok(())
}

// --- What it costs ------------------------------------------------------------------------------

/// The design a run was made with, in words.
pub fn design(config: &SimConfig) -> String {
    format!(
        "{} monitoring, {}, a pull every {} minutes",
        config.monitoring,
        match (config.telemetry, config.agent) {
            (sim::Telemetry::Metrics, true) => "the CloudWatch agent (memory and disk)",
            (sim::Telemetry::Metrics, false) => "no CloudWatch agent",
            (sim::Telemetry::Lines, true) => {
                "telemetry lines (CPU, network, memory and disk a minute; no custom metrics)"
            }
            (sim::Telemetry::Lines, false) => "telemetry lines (CPU and network a minute)",
        },
        config.pull_minutes
    )
}

/// The month's bill of the design run, from the calls its Vigil arm made (Markdown): per
/// fleet size, Vigil's own lines, then the monitoring it reads that CloudWatch bills.
pub fn cost_table(calls: &sim::Calls, config: &SimConfig) -> String {
    use vigil_lab::cost;
    let mut out = String::new();
    let Some(rates) = cost::Rates::from_calls(calls) else {
        return out;
    };
    let made = cost::Design {
        pull_minutes: config.pull_minutes,
        monitoring: config.monitoring,
        agent: config.agent,
        telemetry: config.telemetry,
    };
    let bills: Vec<cost::Bill> = cost::FLEETS
        .iter()
        .map(|&n| cost::bill(&cost::US_EAST_1, &cost::PULL_SHAPE, &rates, made, n))
        .collect();
    let _ = writeln!(
        out,
        "Cost a month ({}; us-east-1 on-demand prices). Counted per instance and pull: {:.2} metrics requested, {:.2} detector states read, {:.2} written ({} pulls, {} instances read).\n",
        design(config),
        rates.metrics_requested,
        rates.state_reads,
        rates.state_writes,
        calls.pulls,
        calls.instance_pulls
    );
    if config.telemetry == sim::Telemetry::Lines {
        let _ = writeln!(
            out,
            "Telemetry lines: {:.0} bytes read per instance and pull, {:.0} bytes a line written ({} lines, {} FilterLogEvents reads).\n",
            rates.log_bytes_read, rates.bytes_per_line, calls.lines_written, calls.log_reads
        );
    }
    let sizes: Vec<String> = cost::FLEETS
        .iter()
        .map(|n| format!("{n} instances"))
        .collect();
    let _ = writeln!(out, "| item | {} |", sizes.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(sizes.len()));
    let money = |v: f64| {
        if v >= 100.0 {
            format!("${v:.0}")
        } else {
            format!("${v:.2}")
        }
    };
    let row = |out: &mut String, item: &str, values: Vec<f64>| {
        let cells: Vec<String> = values.into_iter().map(money).collect();
        let _ = writeln!(out, "| {item} | {} |", cells.join(" | "));
    };
    if let Some(first) = bills.first() {
        for (i, line) in first.vigil.iter().enumerate() {
            row(
                &mut out,
                line.item,
                bills.iter().map(|b| b.vigil[i].monthly).collect(),
            );
        }
        row(
            &mut out,
            "**Vigil's own bill**",
            bills.iter().map(cost::Bill::vigil_total).collect(),
        );
        for (i, line) in first.monitoring.iter().enumerate() {
            row(
                &mut out,
                line.item,
                bills.iter().map(|b| b.monitoring[i].monthly).collect(),
            );
        }
        row(
            &mut out,
            "**with the monitoring it reads**",
            bills
                .iter()
                .map(|b| b.vigil_total() + b.monitoring_total())
                .collect(),
        );
    }
    out
}

// --- Over many seeds ---------------------------------------------------------------------------

/// One seed's overall measures: the seed, the baseline's, Vigil's.
pub type SeedRun = (u64, Measures, Measures);

/// Runs the experiment once per seed (the same configuration otherwise).
pub fn run_seeds(
    config: &SimConfig,
    scenarios: &[Scenario],
    seeds: &[u64],
) -> Result<Vec<SeedRun>> {
    let mut runs = Vec::with_capacity(seeds.len());
    for (i, &seed) in seeds.iter().enumerate() {
        eprintln!("seed {seed} ({} of {})", i + 1, seeds.len());
        let report = run(
            &SimConfig {
                seed,
                ..config.clone()
            },
            scenarios,
        )?;
        let (b, v) = report.overall;
        runs.push((seed, b, v));
    }
    Ok(runs)
}

/// Parses `1-10`, `1,2,5` or a mix (`1-3,7`).
pub fn parse_seeds(text: &str) -> Result<Vec<u64>> {
    let mut seeds = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (
                    a.trim().parse().with_context(|| format!("seed {a:?}"))?,
                    b.trim().parse().with_context(|| format!("seed {b:?}"))?,
                );
                anyhow::ensure!(a <= b && b - a < 1000, "seed range {part:?}");
                seeds.extend(a..=b);
            }
            None => seeds.push(part.parse().with_context(|| format!("seed {part:?}"))?),
        }
    }
    anyhow::ensure!(!seeds.is_empty(), "no seed in {text:?}");
    Ok(seeds)
}

/// Mean, sample standard deviation, minimum and maximum.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
    pub min: f64,
    pub max: f64,
}

pub fn spread(xs: &[f64]) -> Spread {
    let n = xs.len().max(1) as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = if xs.len() > 1 {
        xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Spread {
        mean,
        sd: var.sqrt(),
        min: xs.iter().copied().fold(f64::INFINITY, f64::min),
        max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    }
}

/// The headline's figures over the seeds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Headline {
    pub seeds: Vec<u64>,
    pub without: Vec<String>,
    pub precision: Spread,
    pub recall: Spread,
    pub baseline_precision: Spread,
    pub baseline_recall: Spread,
    pub mttd_reduction: Spread,
    pub mttr_reduction: Spread,
    pub impact_reduction: Spread,
    pub people_asked: Spread,
    pub baseline_people_asked: Spread,
    /// Vigil's alerts about gaps in the account's posture (counted true in `precision`).
    pub posture_alerts: Spread,
}

pub fn headline(runs: &[SeedRun], without: &[String]) -> Headline {
    let of = |f: &dyn Fn(&SeedRun) -> f64| spread(&runs.iter().map(f).collect::<Vec<_>>());
    Headline {
        seeds: runs.iter().map(|r| r.0).collect(),
        without: without.to_vec(),
        precision: of(&|r| r.2.precision),
        recall: of(&|r| r.2.recall),
        baseline_precision: of(&|r| r.1.precision),
        baseline_recall: of(&|r| r.1.recall),
        mttd_reduction: of(&|r| sim::reduction(r.1.mttd, r.2.mttd)),
        mttr_reduction: of(&|r| sim::reduction(r.1.mttr, r.2.mttr)),
        impact_reduction: of(&|r| {
            sim::reduction(f64::from(r.1.impact_minutes), f64::from(r.2.impact_minutes))
        }),
        people_asked: of(&|r| f64::from(r.2.human_interventions)),
        baseline_people_asked: of(&|r| f64::from(r.1.human_interventions)),
        posture_alerts: of(&|r| r.2.posture_alerts as f64),
    }
}

/// The table over seeds (Markdown, readable in a terminal too): every seed, then the mean with
/// its standard deviation and the range.
pub fn seeds_table(runs: &[SeedRun], without: &[String]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| seed | precision base -> Vigil | recall base -> Vigil | MTTD base -> Vigil (min) | MTTR base -> Vigil (min) | people asked base -> Vigil | impact base -> Vigil (min) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|");
    for (seed, b, v) in runs {
        let _ = writeln!(
            out,
            "| {seed} | {:.2} -> {:.2} | {:.2} -> {:.2} | {:.1} -> {:.1} | {:.1} -> {:.1} | {} -> {} | {} -> {} |",
            b.precision,
            v.precision,
            b.recall,
            v.recall,
            b.mttd,
            v.mttd,
            b.mttr,
            v.mttr,
            b.human_interventions,
            v.human_interventions,
            b.impact_minutes,
            v.impact_minutes
        );
    }
    let h = headline(runs, without);
    let pm = |s: &Spread| format!("{:.2} ± {:.2} ({:.2} to {:.2})", s.mean, s.sd, s.min, s.max);
    let pct = |s: &Spread| {
        format!(
            "{:.0}% ± {:.0} ({:.0}% to {:.0}%)",
            s.mean, s.sd, s.min, s.max
        )
    };
    let seeds: Vec<String> = h.seeds.iter().map(u64::to_string).collect();
    let _ = writeln!(
        out,
        "\nOver seeds {}{}: precision {} (baseline {:.2}; of Vigil's alerts, {:.1} a seed on average are about users without MFA, true findings about the account), recall {} (baseline {:.2}); MTTD {} lower, MTTR {} lower, impact {} lower; people asked {:.0} -> {:.0} on average.",
        seeds.join(", "),
        if without.is_empty() {
            String::new()
        } else {
            format!(", without {}", without.join(", "))
        },
        pm(&h.precision),
        h.baseline_precision.mean,
        h.posture_alerts.mean,
        pm(&h.recall),
        h.baseline_recall.mean,
        pct(&h.mttd_reduction),
        pct(&h.mttr_reduction),
        pct(&h.impact_reduction),
        h.baseline_people_asked.mean,
        h.people_asked.mean,
    );
    out
}

/// The calls of every seed's Vigil arm, summed.
pub fn seeds_calls(runs: &[SeedRun]) -> sim::Calls {
    let mut calls = sim::Calls::default();
    for (_, _, v) in runs {
        calls += v.calls;
    }
    calls
}

/// Writes `seeds.md` (the table, then the cost of the design run) and `seeds.json` into `out`.
pub fn write_seeds(runs: &[SeedRun], config: &SimConfig, out: &Path) -> Result<()> {
    let without = &config.without;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::json!({
        "design": design(config),
        "calls": seeds_calls(runs),
        "headline": headline(runs, without),
        "runs": runs.iter().map(|(seed, b, v)| serde_json::json!({"seed": seed, "baseline": b, "vigil": v})).collect::<Vec<_>>(),
    });
    std::fs::write(out.join("seeds.json"), serde_json::to_vec_pretty(&json)?)
        .context("writing seeds.json")?;
    let md = format!(
        "{}\n{}",
        seeds_table(runs, without),
        cost_table(&seeds_calls(runs), config)
    );
    std::fs::write(out.join("seeds.md"), md).context("writing seeds.md")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_read_as_lists_and_ranges() {
        assert_eq!(parse_seeds("1-3,7").unwrap(), vec![1, 2, 3, 7]);
        assert_eq!(parse_seeds("42").unwrap(), vec![42]);
        for bad in ["", "3-1", "x", "1-x", "0-5000"] {
            assert!(parse_seeds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_spread_is_the_sample_standard_deviation_and_the_range() {
        let s = spread(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((s.mean - 5.0).abs() < 1e-12);
        assert!((s.sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.max), (2.0, 9.0));
        assert_eq!(spread(&[3.0]).sd, 0.0);
    }
}
