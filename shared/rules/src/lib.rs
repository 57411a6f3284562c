//! Detection rules: Sigma rules matched against raw CloudTrail records.
//!
//! A [`Pack`] is a set of Sigma detection rules, each validated on its own: a rule that does not
//! parse, compile or carry what Vigil needs (an `id`, a `level`, an AWS log source) is refused
//! with an error naming its file, the rule and the field, and the others load. The bundled pack
//! is the project's rules in `infra/rules/` plus whatever an operator put there before building
//! ([`Pack::bundled`]); an operator's override at run time is loaded the same way.
//!
//! A match is a [`RuleHit`]: the rule's name, id, title, level and ATT&CK tags, and whether an
//! outsider could cause it (the rule's `vigil.outsider` attribute). The policy decides what a hit
//! means; this crate only finds them. Rules carry their own test events (`rsigma.exemplars`, one
//! or more that must match and one or more that must not), run by [`Pack::test`]
//! (`vigil rules test`). [`delivery`] says which events the rules need EventBridge to deliver.
//!
//! Synchronous and without IO: the files are read by whoever builds the pack.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use rsigma_eval::event::JsonEvent;
use rsigma_eval::{Engine, ExemplarReport};
use rsigma_parser::{Level, SigmaCollection, SigmaRule, parse_sigma_yaml};
use serde::Serialize;
use serde_json::Value;
use vigil_core::domain::{RuleHit, RuleLevel};

pub mod correlations;
pub mod delivery;

pub use correlations::CorrelationInfo;

include!(concat!(env!("OUT_DIR"), "/bundled.rs"));

/// The custom attribute that marks a rule an outsider can make match.
pub const OUTSIDER: &str = "vigil.outsider";
/// The custom attribute that makes people hear of a rule's match on one resource at most once
/// per so many minutes (up to [`MAX_REPEAT_MINUTES`]).
pub const REPEAT: &str = "vigil.repeat_minutes";
pub const MAX_REPEAT_MINUTES: u64 = 31 * 24 * 60;

/// Largest rule file accepted, and most rules in a pack.
pub const MAX_RULE_BYTES: usize = 64 * 1024;
pub const MAX_RULES: usize = 2_000;

/// Why one rule file was refused. The message names the rule and the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{file}: {rule}: {message}")]
pub struct RuleError {
    /// The file the rule came from.
    pub file: String,
    /// The rule's title or name, or `?` when it has none yet.
    pub rule: String,
    pub message: String,
}

/// One loaded rule: what a hit reports and what the rule's tests need.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub file: String,
    pub name: String,
    pub id: String,
    pub title: String,
    pub level: RuleLevel,
    pub attack: Vec<String>,
    pub outsider: bool,
    pub repeat_minutes: Option<u32>,
    pub falsepositives: Vec<String>,
    #[serde(skip)]
    rule: SigmaRule,
}

impl RuleInfo {
    pub fn hit(&self) -> RuleHit {
        RuleHit {
            name: self.name.clone(),
            id: self.id.clone(),
            title: self.title.clone(),
            level: self.level,
            attack: self.attack.clone(),
            outsider: self.outsider,
            repeat_minutes: self.repeat_minutes,
        }
    }

    /// The parsed rule.
    pub fn sigma(&self) -> &SigmaRule {
        &self.rule
    }

    /// The rule's own test events that must (`matching`) or must not match, as JSON.
    pub fn examples(&self, matching: bool) -> Vec<Value> {
        let want = if matching {
            rsigma_parser::Expect::Match
        } else {
            rsigma_parser::Expect::NoMatch
        };
        rsigma_parser::exemplars(&self.rule)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.expect == want)
            .filter_map(|e| match e.payload {
                rsigma_parser::ExemplarPayload::Event(v) => serde_json::to_value(&v).ok(),
                rsigma_parser::ExemplarPayload::Sequence(_) => None,
            })
            .collect()
    }

    /// The ATT&CK technique tags (`attack.t1098`, `attack.t1562.008`).
    pub fn techniques(&self) -> impl Iterator<Item = &str> {
        self.attack.iter().map(String::as_str).filter(|t| {
            t.strip_prefix("attack.t")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
        })
    }
}

/// A set of compiled detection rules.
pub struct Pack {
    engine: Engine,
    rules: Vec<RuleInfo>,
    by_id: HashMap<String, usize>,
    correlations: Vec<CorrelationInfo>,
}

impl std::fmt::Debug for Pack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pack")
            .field("rules", &self.rules.len())
            .finish()
    }
}

pub(crate) fn level(l: Option<Level>) -> Option<RuleLevel> {
    Some(match l? {
        Level::Informational => RuleLevel::Informational,
        Level::Low => RuleLevel::Low,
        Level::Medium => RuleLevel::Medium,
        Level::High => RuleLevel::High,
        Level::Critical => RuleLevel::Critical,
    })
}

/// A rule name: what policies and suppressions name a rule by.
fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 128
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A rule's ATT&CK tags (`attack.<tactic>`, `attack.tNNNN`).
pub(crate) fn attack_tags(tags: &[String]) -> Vec<String> {
    tags.iter()
        .filter(|t| t.starts_with("attack."))
        .cloned()
        .collect()
}

/// What every rule, detection or correlation, must carry for Vigil: an id, a valid name (its
/// id when it has none), a level, and well-formed Vigil attributes.
pub(crate) struct Identity {
    pub id: String,
    pub name: String,
    pub level: RuleLevel,
    pub outsider: bool,
    pub repeat_minutes: Option<u32>,
}

impl Identity {
    pub(crate) fn of<V: Serialize>(
        file: &str,
        title: &str,
        id: Option<&String>,
        name: Option<&String>,
        level_of: Option<Level>,
        attributes: &HashMap<String, V>,
    ) -> Result<Identity, RuleError> {
        let refuse = |message: String| RuleError {
            file: file.to_owned(),
            rule: title.to_owned(),
            message,
        };
        let id = id
            .filter(|i| !i.trim().is_empty())
            .cloned()
            .ok_or_else(|| refuse("id: missing (hits, suppressions and tests name it)".into()))?;
        let name = name.cloned().unwrap_or_else(|| id.clone());
        if !valid_name(&name) {
            return Err(refuse(format!(
                "name: {name:?} is not 1-128 letters, digits, '_', '-' or '.'"
            )));
        }
        let level = level(level_of).ok_or_else(|| {
            refuse("level: missing (informational, low, medium, high or critical)".into())
        })?;
        let attribute = |key: &str| {
            attributes
                .get(key)
                .and_then(|v| serde_json::to_value(v).ok())
        };
        let outsider = match attribute(OUTSIDER) {
            None => false,
            Some(v) => v
                .as_bool()
                .ok_or_else(|| refuse(format!("{OUTSIDER}: must be true or false")))?,
        };
        let repeat_minutes = match attribute(REPEAT) {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|m| (1..=MAX_REPEAT_MINUTES).contains(m))
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| {
                        refuse(format!(
                            "{REPEAT}: must be 1 to {MAX_REPEAT_MINUTES} minutes"
                        ))
                    })?,
            ),
        };
        Ok(Identity {
            id,
            name,
            level,
            outsider,
            repeat_minutes,
        })
    }
}

impl Pack {
    /// The rules bundled at build time, compiled once per process. Every bundled rule must
    /// load: one that does not is an error here (and fails the pack's tests long before).
    /// Shared (an `Arc`) so a pack in force can be either this one or an override.
    pub fn bundled() -> Result<&'static Arc<Pack>, &'static [RuleError]> {
        static PACK: OnceLock<Result<Arc<Pack>, Vec<RuleError>>> = OnceLock::new();
        match PACK.get_or_init(|| Pack::strict(BUNDLED.iter().copied()).map(Arc::new)) {
            Ok(p) => Ok(p),
            Err(e) => Err(e.as_slice()),
        }
    }

    /// A pack of every rule that loads, and the errors of those that did not.
    pub fn load<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> (Pack, Vec<RuleError>) {
        Self::load_except(files, &|_, _| false)
    }

    /// The bundled rules with an operator's override (Sigma YAML, one or more documents) set
    /// at run time: its rules are added, and one with a bundled rule's `id` replaces that rule.
    /// All or nothing, as the policy is: an override with any rule that does not load, or
    /// whose own test events fail, is refused whole, every error naming the rule and the field.
    pub fn with_override(name: &str, text: &str) -> Result<Pack, Vec<RuleError>> {
        let refuse = |message: String| {
            vec![RuleError {
                file: name.to_owned(),
                rule: "?".to_owned(),
                message,
            }]
        };
        if text.len() > MAX_RULE_BYTES {
            return Err(refuse(format!("longer than {MAX_RULE_BYTES} bytes")));
        }
        let replaced: std::collections::HashSet<String> = match parse_sigma_yaml(text) {
            Ok(c) if c.rules.is_empty() && c.correlations.is_empty() => {
                return Err(refuse("holds no rule".to_owned()));
            }
            Ok(c) => c
                .rules
                .iter()
                .filter_map(|r| r.id.clone())
                .chain(c.correlations.iter().filter_map(|r| r.id.clone()))
                .collect(),
            Err(e) => return Err(refuse(e.to_string())),
        };
        let files = BUNDLED.iter().copied().chain([(name, text)]);
        let skip = |file: &str, id: Option<&String>| {
            file != name && id.is_some_and(|id| replaced.contains(id))
        };
        let (pack, mut errors) = Self::load_except(files, &skip);
        for t in pack.test().iter().filter(|t| t.file == name) {
            for (case, _, why) in t.cases.iter().filter(|(_, passed, _)| !passed) {
                errors.push(RuleError {
                    file: name.to_owned(),
                    rule: t.name.clone(),
                    message: format!(
                        "rsigma.exemplars: {case}: {}",
                        why.as_deref().unwrap_or("failed")
                    ),
                });
            }
        }
        if errors.is_empty() {
            Ok(pack)
        } else {
            Err(errors)
        }
    }

    /// [`Pack::load`], leaving out the rules `skip` names (by file and id).
    fn load_except<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        skip: &dyn Fn(&str, Option<&String>) -> bool,
    ) -> (Pack, Vec<RuleError>) {
        let mut errors = Vec::new();
        let mut rules: Vec<RuleInfo> = Vec::new();
        let mut engine = Engine::new();
        let mut by_id = HashMap::new();
        let mut names: HashMap<String, String> = HashMap::new();
        let mut pending = Vec::new();
        for (file, text) in files {
            let refuse = |rule: &str, message: String| RuleError {
                file: file.to_owned(),
                rule: rule.to_owned(),
                message,
            };
            if rules.len() >= MAX_RULES {
                errors.push(refuse(
                    "?",
                    format!("the pack holds {MAX_RULES} rules already"),
                ));
                continue;
            }
            if text.len() > MAX_RULE_BYTES {
                errors.push(refuse("?", format!("longer than {MAX_RULE_BYTES} bytes")));
                continue;
            }
            let collection = match parse_sigma_yaml(text) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(refuse("?", e.to_string()));
                    continue;
                }
            };
            for e in &collection.errors {
                errors.push(refuse("?", e.clone()));
            }
            if !collection.filters.is_empty() {
                errors.push(refuse(
                    "?",
                    "filter documents are not evaluated: use a suppression in the policy"
                        .to_owned(),
                ));
            }
            // Correlations are read once every detection rule they may name is loaded.
            pending.extend(
                collection
                    .correlations
                    .into_iter()
                    .filter(|c| !skip(file, c.id.as_ref()))
                    .map(|c| (file, c)),
            );
            for rule in collection.rules {
                if skip(file, rule.id.as_ref()) {
                    continue;
                }
                match Self::admit(file, rule, &names, &by_id) {
                    Ok(info) => {
                        if let Err(e) = engine.add_rule(&info.rule) {
                            errors.push(refuse(&info.title, format!("detection: {e}")));
                            continue;
                        }
                        names.insert(info.name.clone(), file.to_owned());
                        by_id.insert(info.id.clone(), rules.len());
                        rules.push(info);
                    }
                    Err(e) => errors.push(e),
                }
            }
        }
        let mut pack = Pack {
            engine,
            rules,
            by_id,
            correlations: Vec::new(),
        };
        for (file, rule) in pending {
            match correlations::admit(file, rule, &pack) {
                Ok(c) => pack.correlations.push(c),
                Err(e) => errors.push(e),
            }
        }
        (pack, errors)
    }

    /// A pack only if every rule loads.
    pub fn strict<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Pack, Vec<RuleError>> {
        match Self::load(files) {
            (pack, errors) if errors.is_empty() => Ok(pack),
            (_, errors) => Err(errors),
        }
    }

    /// What Vigil needs of a rule beyond Sigma itself.
    fn admit(
        file: &str,
        rule: SigmaRule,
        names: &HashMap<String, String>,
        ids: &HashMap<String, usize>,
    ) -> Result<RuleInfo, RuleError> {
        let title = rule.title.clone();
        let refuse = |message: String| RuleError {
            file: file.to_owned(),
            rule: title.clone(),
            message,
        };
        let who = Identity::of(
            file,
            &title,
            rule.id.as_ref(),
            rule.name.as_ref(),
            rule.level,
            &rule.custom_attributes,
        )?;
        if ids.contains_key(&who.id) {
            return Err(refuse(format!("id: {} is another rule's", who.id)));
        }
        if let Some(other) = names.get(&who.name) {
            return Err(refuse(format!(
                "name: {} is already the name of a rule in {other}",
                who.name
            )));
        }
        if rule.logsource.product.as_deref() != Some("aws") {
            return Err(refuse(format!(
                "logsource.product: {:?}, but Vigil matches AWS events only (product: aws)",
                rule.logsource.product
            )));
        }
        let Identity {
            id,
            name,
            level,
            outsider,
            repeat_minutes,
        } = who;
        Ok(RuleInfo {
            repeat_minutes,
            file: file.to_owned(),
            name,
            id,
            level,
            attack: attack_tags(&rule.tags),
            outsider,
            falsepositives: rule.falsepositives.clone(),
            title,
            rule,
        })
    }

    /// Every rule that matches a raw CloudTrail record (or any event's JSON), highest level
    /// first.
    pub fn check(&self, record: &Value) -> Vec<RuleHit> {
        let event = JsonEvent::borrow(record);
        let mut hits: Vec<RuleHit> = self
            .engine
            .evaluate(&event)
            .iter()
            .filter_map(|r| r.header.rule_id.as_ref())
            .filter_map(|id| self.by_id.get(id))
            .filter_map(|i| self.rules.get(*i))
            .map(RuleInfo::hit)
            .collect();
        hits.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.name.cmp(&b.name)));
        hits.dedup_by(|a, b| a.name == b.name);
        hits
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    pub fn get(&self, name: &str) -> Option<&RuleInfo> {
        self.rules.iter().find(|r| r.name == name)
    }

    /// The correlation rules.
    pub fn correlations(&self) -> &[CorrelationInfo] {
        &self.correlations
    }

    /// The correlations as ingest evaluates them.
    pub fn correlated(&self) -> Vec<vigil_core::features::correlation::Correlation> {
        self.correlations
            .iter()
            .map(|c| c.correlation.clone())
            .collect()
    }

    /// Whether a detection rule's own matches are reported, or it is only a building block:
    /// every correlation rule naming it says `generate: false` (Sigma's default), so its
    /// matches feed the correlations' windows and are then dropped (a single discovery call
    /// is nothing; twenty different ones in ten minutes are an enumeration burst).
    pub fn reports(&self, name: &str) -> bool {
        let mut naming = self
            .correlations
            .iter()
            .filter(|c| c.correlation.bases.iter().any(|b| b == name))
            .peekable();
        naming.peek().is_none() || naming.any(|c| c.rule.generate)
    }

    /// The hits people and the policy see: without those of building blocks.
    pub fn reported(&self, hits: &mut Vec<RuleHit>) {
        hits.retain(|h| self.reports(&h.name));
    }

    /// Whether a detection or correlation rule has this name.
    pub fn knows(&self, name: &str) -> bool {
        self.get(name).is_some() || self.correlations.iter().any(|c| c.name() == name)
    }

    /// A rule's own repeat period, detection or correlation.
    pub fn repeat_minutes(&self, name: &str) -> Option<u32> {
        self.get(name).map_or_else(
            || {
                self.correlations
                    .iter()
                    .find(|c| c.name() == name)
                    .and_then(|c| c.correlation.hit.repeat_minutes)
            },
            |r| r.repeat_minutes,
        )
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Runs every rule's test events (`rsigma.exemplars`), each rule alone with fresh state;
    /// a correlation's sequences both through the Sigma engine and through Vigil's own windows.
    pub fn test(&self) -> Vec<RuleTest> {
        self.rules
            .iter()
            .map(RuleTest::run)
            .chain(
                self.correlations
                    .iter()
                    .map(|c| RuleTest::correlation(self, c)),
            )
            .collect()
    }
}

/// One rule's tests: its test events' outcomes and what the rule lacks.
#[derive(Debug, Clone, Serialize)]
pub struct RuleTest {
    pub file: String,
    pub name: String,
    /// (test name, passed, why it failed).
    pub cases: Vec<(String, bool, Option<String>)>,
    /// What the rule must still carry: a matching and a non-matching test event, an ATT&CK
    /// technique, its known false positives.
    pub missing: Vec<String>,
}

impl RuleTest {
    fn run(rule: &RuleInfo) -> RuleTest {
        let mut missing = Vec::new();
        let mut cases = Vec::new();
        let collection = SigmaCollection {
            rules: vec![rule.rule.clone()],
            ..SigmaCollection::new()
        };
        match rsigma_eval::run_exemplars(&collection, &[]) {
            Ok(ExemplarReport { results, .. }) => {
                use rsigma_parser::Expect;
                for want in [Expect::Match, Expect::NoMatch] {
                    if !results.iter().any(|r| r.expect == want) {
                        missing.push(format!("a test event expecting {want}"));
                    }
                }
                for r in results {
                    cases.push((r.name, r.passed, r.diagnostic));
                }
            }
            Err(e) => cases.push(("exemplars".to_owned(), false, Some(e.to_string()))),
        }
        if rule.techniques().next().is_none() {
            missing.push("an ATT&CK technique tag (attack.tNNNN)".to_owned());
        }
        if rule.falsepositives.is_empty() {
            missing.push("falsepositives".to_owned());
        }
        RuleTest {
            file: rule.file.clone(),
            name: rule.name.clone(),
            cases,
            missing,
        }
    }

    fn correlation(pack: &Pack, c: &CorrelationInfo) -> RuleTest {
        let mut missing = Vec::new();
        let mut cases = Vec::new();
        let bases = c
            .correlation
            .bases
            .iter()
            .filter_map(|b| pack.get(b))
            .map(|b| b.rule.clone())
            .collect();
        let collection = SigmaCollection {
            rules: bases,
            correlations: vec![c.rule.clone()],
            ..SigmaCollection::new()
        };
        match rsigma_eval::run_exemplars(&collection, &[]) {
            Ok(report) => {
                for r in report
                    .results
                    .into_iter()
                    .filter(|r| r.rule_title == c.rule.title)
                {
                    cases.push((format!("sigma: {}", r.name), r.passed, r.diagnostic));
                }
            }
            Err(e) => cases.push(("sigma".to_owned(), false, Some(e.to_string()))),
        }
        let sequences = c.sequences();
        for want in [true, false] {
            if !sequences.iter().any(|s| s.1 == want) {
                missing.push(format!(
                    "a test sequence expecting {}",
                    if want { "match" } else { "no-match" }
                ));
            }
        }
        for (name, want, events) in sequences {
            match c.fires_on(pack, &events) {
                Ok(got) => cases.push((
                    format!("vigil: {name}"),
                    got == want,
                    (got != want).then(|| {
                        format!(
                            "Vigil's windows {}",
                            if got { "fired" } else { "did not fire" }
                        )
                    }),
                )),
                Err(e) => cases.push((format!("vigil: {name}"), false, Some(e))),
            }
        }
        if !c
            .correlation
            .hit
            .attack
            .iter()
            .any(|t| t.starts_with("attack.t"))
        {
            missing.push("an ATT&CK technique tag (attack.tNNNN)".to_owned());
        }
        if c.falsepositives.is_empty() {
            missing.push("falsepositives".to_owned());
        }
        RuleTest {
            file: c.file.clone(),
            name: c.name().to_owned(),
            cases,
            missing,
        }
    }

    pub fn passed(&self) -> bool {
        self.missing.is_empty() && !self.cases.is_empty() && self.cases.iter().all(|c| c.1)
    }
}
