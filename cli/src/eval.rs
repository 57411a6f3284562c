//! `vigil eval`: the models against public benchmarks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use chrono::NaiveDateTime;
use vigil_core::models::anomaly::{DetectorConfig, score_series};
use vigil_lab::eval::nab::{self, File, PROFILES};

/// The detector's name in NAB's results layout.
pub const DETECTOR: &str = "vigil";

const DATA_FORMAT: &str = "%Y-%m-%d %H:%M:%S";
const LABEL_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f";

/// A NAB data file read from disk.
struct Series {
    name: String,
    timestamps: Vec<NaiveDateTime>,
    values: Vec<f64>,
}

fn read_series(path: &Path, name: String) -> Result<Series> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("timestamp,value") => {}
        other => bail!(
            "{}: expected the header `timestamp,value`, found {other:?}",
            path.display()
        ),
    }
    let mut timestamps = Vec::new();
    let mut values = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let (t, v) = line
            .split_once(',')
            .with_context(|| format!("{} line {}: expected two columns", path.display(), i + 2))?;
        timestamps.push(
            NaiveDateTime::parse_from_str(t.trim(), DATA_FORMAT)
                .with_context(|| format!("{} line {}: timestamp {t:?}", path.display(), i + 2))?,
        );
        values.push(
            v.trim()
                .parse::<f64>()
                .with_context(|| format!("{} line {}: value {v:?}", path.display(), i + 2))?,
        );
    }
    Ok(Series {
        name,
        timestamps,
        values,
    })
}

/// Every `category/file.csv` under `data` (folders other than `labels`).
fn data_files(data: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))? {
        let dir = dir?.path();
        let Some(category) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !dir.is_dir() || category == "labels" || category.starts_with('.') {
            continue;
        }
        for f in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let f = f?.path();
            if f.extension().is_some_and(|x| x == "csv")
                && let Some(name) = f.file_name().and_then(|n| n.to_str())
            {
                out.push((format!("{category}/{name}"), f.clone()));
            }
        }
    }
    out.sort();
    if out.is_empty() {
        bail!(
            "no category folders with CSV files under {}",
            data.display()
        );
    }
    Ok(out)
}

type Windows = BTreeMap<String, Vec<(String, String)>>;

fn read_windows(data: &Path) -> Result<Windows> {
    let path = data.join("labels/combined_windows.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The per-category and overall results of one run.
#[derive(serde::Serialize)]
pub struct NabReport {
    pub detector: String,
    pub config: DetectorConfig,
    pub files: usize,
    /// Per profile: the corpus-wide threshold and the normalised score overall.
    pub profiles: Vec<ProfileReport>,
    /// The standard profile with each category held out in turn: the configuration (of
    /// `candidates`) and threshold chosen on the other categories, applied to it.
    pub leave_one_category_out: nab::LeaveOneOut,
    pub candidates: Vec<DetectorConfig>,
}

#[derive(serde::Serialize)]
pub struct ProfileReport {
    pub profile: &'static str,
    pub threshold: f64,
    pub overall: nab::Tally,
    pub overall_score: f64,
    /// What the overall score lost against the perfect detector, in points, by cause.
    pub overall_lost: nab::Losses,
    /// Each category at the corpus-wide threshold.
    pub categories: BTreeMap<String, CategoryReport>,
}

#[derive(serde::Serialize)]
pub struct CategoryReport {
    pub score: f64,
    /// What the score lost, in points of this category's normalised score, by cause.
    pub lost: nab::Losses,
    pub tally: nab::Tally,
}

/// Runs the detector over NAB-format data, writes NAB results files and the report.
pub fn nab(data: &Path, out: &Path, config: DetectorConfig) -> Result<NabReport> {
    let windows = read_windows(data)?;
    let mut files = Vec::new();
    for (name, path) in data_files(data)? {
        let series = read_series(&path, name.clone())?;
        let Some(label_windows) = windows.get(&name) else {
            bail!("{name} has no entry in labels/combined_windows.json");
        };
        let mut parsed = Vec::with_capacity(label_windows.len());
        for (start, end) in label_windows {
            let parse = |s: &str| {
                NaiveDateTime::parse_from_str(s, LABEL_FORMAT)
                    .with_context(|| format!("{name}: window timestamp {s:?}"))
            };
            parsed.push((parse(start)?, parse(end)?));
        }
        let points: Vec<Option<f64>> = series.values.iter().copied().map(Some).collect();
        let scores = score_series(&points, config);
        files.push((
            series.values,
            File {
                name: series.name,
                timestamps: series.timestamps,
                scores,
                windows: parsed,
            },
        ));
    }

    // NAB's results layout: <out>/<category>/<detector>_<file>.csv.
    for (values, f) in &files {
        let (category, file) = f.name.split_once('/').unwrap_or(("", &f.name));
        let dir = out.join(category);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut csv = String::from("timestamp,value,anomaly_score,label\n");
        for (((t, v), s), l) in f
            .timestamps
            .iter()
            .zip(values)
            .zip(&f.scores)
            .zip(f.labels())
        {
            let _ = writeln!(csv, "{},{v},{s},{l}", t.format(DATA_FORMAT));
        }
        let path = dir.join(format!("{DETECTOR}_{file}"));
        std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
    }

    // Leave one category out: every candidate scores the corpus, one at a time.
    let candidates = nab::candidates(config);
    let mut per_candidate = Vec::with_capacity(candidates.len());
    for candidate in &candidates {
        let scored: Vec<File> = files
            .iter()
            .map(|(values, f)| {
                let points: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
                File {
                    scores: score_series(&points, *candidate),
                    ..f.clone()
                }
            })
            .collect();
        per_candidate.push(nab::trials(&scored, PROFILES[0]));
    }
    let leave_one_category_out = nab::leave_one_category_out(&per_candidate, PROFILES[0]);

    let files: Vec<File> = files.into_iter().map(|(_, f)| f).collect();
    let mut profiles = Vec::new();
    for profile in PROFILES {
        let sweep = nab::sweep(&files, profile);
        let mut categories: BTreeMap<String, Vec<File>> = BTreeMap::new();
        for f in &files {
            categories
                .entry(f.category().to_owned())
                .or_default()
                .push(f.clone());
        }
        let categories = categories
            .into_iter()
            .map(|(c, fs)| {
                let tally = nab::score_at(&fs, profile, sweep.threshold);
                (
                    c,
                    CategoryReport {
                        score: tally.normalised(),
                        lost: tally.lost_points(),
                        tally,
                    },
                )
            })
            .collect();
        profiles.push(ProfileReport {
            profile: profile.name,
            threshold: sweep.threshold,
            overall_score: sweep.tally.normalised(),
            overall_lost: sweep.tally.lost_points(),
            overall: sweep.tally,
            categories,
        });
    }
    let report = NabReport {
        detector: DETECTOR.to_owned(),
        config,
        files: files.len(),
        profiles,
        leave_one_category_out,
        candidates,
    };
    let path = out.join(format!("{DETECTOR}_scores.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(report)
}

/// The report as a text table.
pub fn print_nab(report: &NabReport) {
    println!(
        "NAB scores of `{}` over {} file(s); corpus-wide threshold per profile",
        report.detector, report.files
    );
    for p in &report.profiles {
        println!(
            "{:<20} threshold {:.4}  overall {:6.1}  (TP {} FN {} FP {})",
            p.profile,
            p.threshold,
            p.overall_score,
            p.overall.true_positives,
            p.overall.false_negatives,
            p.overall.false_positives
        );
        println!(
            "{:<20} lost to missed windows {:.1}, false alarms {:.1}, late detections {:.1}",
            "", p.overall_lost.missed, p.overall_lost.false_alarms, p.overall_lost.late
        );
        for (c, r) in &p.categories {
            println!(
                "    {:<24} {:6.1}  (windows {}, TP {} FN {} FP {})",
                c,
                r.score,
                r.tally.windows,
                r.tally.true_positives,
                r.tally.false_negatives,
                r.tally.false_positives
            );
        }
    }
}

/// The leave-one-category-out lines of the report.
pub fn print_loco(report: &NabReport) {
    let l = &report.leave_one_category_out;
    if l.categories.is_empty() {
        println!("leave one category out: needs at least two categories");
        return;
    }
    println!(
        "leave one category out ({}; each category scored with the configuration and threshold chosen among {} on the others): {:.1}",
        l.profile, l.candidates, l.score
    );
    for h in &l.categories {
        let c = &report.candidates[h.candidate];
        println!(
            "    {:<24} {:6.1}  (candidate {}: alert_level {}, z_scale {:.1}, novelty_margin {}; threshold {:.4}; TP {} FN {} FP {})",
            h.category,
            h.score,
            h.candidate,
            c.alert_level,
            c.z_scale,
            c.novelty_margin,
            h.threshold,
            h.tally.true_positives,
            h.tally.false_negatives,
            h.tally.false_positives
        );
    }
}

/// Reads every detonation log under `data` and runs the threat evaluation through the event
/// rules of `template`.
pub fn threats(data: &Path, template: &Path) -> Result<vigil_lab::eval::threats::ThreatReport> {
    let techniques = techniques(data)?;
    let model = vigil_core::models::classifier::threat()?;
    let pack = vigil_rules::Pack::bundled()
        .map_err(|e| anyhow::anyhow!("the bundled detection rules do not load: {e:?}"))?;
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("reading {}", template.display()))?;
    let routes = vigil_lab::eventbridge::rules_of(&text, "PipelineStateMachine")?;
    Ok(vigil_lab::eval::threats::evaluate(
        model,
        pack,
        &routes,
        &techniques,
    )?)
}

/// Every detonation log (`*.json`, a JSON array of CloudTrail records) under `data`, by name.
pub fn techniques(data: &Path) -> Result<Vec<vigil_lab::eval::threats::Technique>> {
    use vigil_lab::eval::threats::Technique;
    let mut techniques = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data)
        .with_context(|| format!("reading {}", data.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let records: Vec<serde_json::Value> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: expected a JSON array of CloudTrail records",
                path.display()
            )
        })?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        techniques.push(Technique { name, records });
    }
    if techniques.is_empty() {
        bail!("no detonation logs (*.json) in {}", data.display());
    }
    Ok(techniques)
}

/// The threat report as text.
pub fn print_threats(r: &vigil_lab::eval::threats::ThreatReport) {
    println!(
        "{} rules (alarm at medium and above) and {} (alert at P(not benign) >= {:.4}), through the template's event rules",
        r.rules, r.model, r.threshold
    );
    for t in &r.techniques {
        let by = match (t.by_model, t.rules_alarm.is_empty()) {
            (true, false) => "both",
            (true, true) => "model",
            (false, false) => "rules",
            (false, true) if !t.rules_digest.is_empty() => "digest",
            _ => "MISS",
        };
        println!(
            "  {by:<6} {:<58} {:>3}/{:<3} delivered; rules: {}; model best {:.3} ({})",
            t.technique,
            t.delivered,
            t.records,
            if t.rules_alarm.is_empty() && t.rules_digest.is_empty() {
                "-".to_owned()
            } else {
                t.rules_alarm
                    .iter()
                    .chain(&t.rules_digest)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            t.best_score,
            t.best_call,
        );
    }
    let n = r.techniques.len();
    println!(
        "found {}/{n} techniques (rules {}, model {}); {} more only in the digest",
        r.detected, r.detected_by_rules, r.detected_by_model, r.digest_only
    );
    println!(
        "benign baseline: {} events generated, {} delivered; false alarms {} ({:.4}%): rules {} ({:.4}%), model {} ({:.4}%); {} recorded for the digest",
        r.benign_generated,
        r.benign_events,
        r.benign_alarms,
        r.false_positive_rate * 100.0,
        r.benign_rule_alarms,
        r.rules_false_positive_rate * 100.0,
        r.benign_alerts,
        r.model_false_positive_rate * 100.0,
        r.benign_digest,
    );
    for (rule, n) in &r.benign_alarms_by_rule {
        println!("  false alarms by {rule}: {n}");
    }
    println!(
        "posture gaps in the baseline ({} principals, e.g. humans without MFA): {} true alarms, counted apart; with them counted as false, {:.4}%",
        r.principals_with_posture_gaps,
        r.posture_alarms,
        r.alarm_rate_with_posture * 100.0
    );
    for (rule, n) in &r.posture_alarms_by_rule {
        println!("  posture alarms by {rule}: {n}");
    }
}
