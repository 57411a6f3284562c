//! Sigma correlation rules read into `vigil_core::features::correlation::Correlation`: only
//! what Vigil evaluates with its state in the state table is admitted (`event_count` and
//! `value_count` over detection rules of the pack, grouped by the principal or the source
//! address, a `gte` threshold, a timespan up to a day); anything else is refused with the
//! field that is not.

use chrono::{Duration, TimeZone, Utc};
use rsigma_parser::{
    ConditionOperator, CorrelationCondition, CorrelationRule, CorrelationType, ExemplarPayload,
    Expect,
};
use serde_json::Value;
use vigil_core::domain::RuleHit;
use vigil_core::features::correlation::{self, Correlation, Count, Group, Windows};

use crate::{Identity, Pack, RuleError};

/// One loaded correlation rule.
#[derive(Debug, Clone)]
pub struct CorrelationInfo {
    pub file: String,
    pub correlation: Correlation,
    pub falsepositives: Vec<String>,
    pub(crate) rule: CorrelationRule,
}

/// A correlation's test sequence: its name, whether it must fire, and its events at their
/// offsets.
pub type Sequence = (String, bool, Vec<(Duration, Value)>);

/// Longest timespan a window may cover.
pub const MAX_TIMESPAN_SECONDS: u64 = 24 * 3600;

pub(crate) fn admit(
    file: &str,
    rule: CorrelationRule,
    pack: &Pack,
) -> Result<CorrelationInfo, RuleError> {
    let title = rule.title.clone();
    let refuse = |message: String| RuleError {
        file: file.to_owned(),
        rule: title.clone(),
        message,
    };
    let Identity {
        id,
        name,
        level,
        outsider,
        repeat_minutes,
    } = Identity::of(
        file,
        &title,
        rule.id.as_ref(),
        rule.name.as_ref(),
        rule.level,
        &rule.custom_attributes,
    )?;
    if pack.knows(&name) {
        return Err(refuse(format!("name: {name} is already another rule's")));
    }
    let count = match rule.correlation_type {
        CorrelationType::EventCount => None,
        CorrelationType::ValueCount => Some(()),
        other => {
            return Err(refuse(format!(
                "correlation.type: {} is not evaluated (event_count and value_count are)",
                other.as_str()
            )));
        }
    };
    let group = match rule.group_by.as_slice() {
        [g] if g == "userIdentity.arn" => Group::Principal,
        [g] if g == "sourceIPAddress" => Group::SourceAddress,
        other => {
            return Err(refuse(format!(
                "correlation.group-by: {other:?}, but one of userIdentity.arn or sourceIPAddress is needed (the state lives in that history)"
            )));
        }
    };
    let CorrelationCondition::Threshold {
        predicates, field, ..
    } = &rule.condition
    else {
        return Err(refuse(
            "correlation.condition: a threshold is needed".into(),
        ));
    };
    let at_least = match predicates.as_slice() {
        [(ConditionOperator::Gte, n)] if (2..=correlation::MAX_ENTRIES as u64).contains(n) => *n,
        _ => {
            return Err(refuse(format!(
                "correlation.condition: one `gte` between 2 and {} is needed",
                correlation::MAX_ENTRIES
            )));
        }
    };
    let count = match (count, field.as_deref()) {
        (None, _) => Count::Events,
        (Some(()), Some([f]))
            if correlation::FIELDS.contains(&f.as_str()) || f.starts_with("requestParameters.") =>
        {
            Count::Distinct(f.clone())
        }
        (Some(()), f) => {
            return Err(refuse(format!(
                "correlation.condition.field: {f:?} is not one of {:?} or requestParameters.<name>",
                correlation::FIELDS
            )));
        }
    };
    let seconds = rule.timespan.seconds;
    if seconds == 0 || seconds > MAX_TIMESPAN_SECONDS {
        return Err(refuse(format!(
            "correlation.timespan: {} is not within a day",
            rule.timespan.original
        )));
    }
    let mut bases = Vec::new();
    for r in &rule.rules {
        let base = pack
            .rules()
            .iter()
            .find(|b| &b.name == r || &b.id == r)
            .ok_or_else(|| refuse(format!("correlation.rules: no detection rule {r}")))?;
        bases.push(base.name.clone());
    }
    Ok(CorrelationInfo {
        file: file.to_owned(),
        correlation: Correlation {
            hit: RuleHit {
                name,
                id,
                title: title.clone(),
                level,
                attack: crate::attack_tags(&rule.tags),
                outsider,
                repeat_minutes,
            },
            bases,
            group,
            count,
            within_seconds: u32::try_from(seconds).unwrap_or(u32::MAX),
            at_least: u32::try_from(at_least).unwrap_or(u32::MAX),
        },
        falsepositives: rule.falsepositives.clone(),
        rule,
    })
}

impl CorrelationInfo {
    pub fn name(&self) -> &str {
        &self.correlation.hit.name
    }

    /// Its test sequences, each events at their offsets, with what is expected.
    pub fn sequences(&self) -> Vec<Sequence> {
        rsigma_parser::correlation_exemplars(&self.rule)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| match e.payload {
                ExemplarPayload::Sequence(events) => Some((
                    e.name,
                    e.expect == Expect::Match,
                    events
                        .into_iter()
                        .filter_map(|t| {
                            let v = serde_json::to_value(&t.event).ok()?;
                            let secs = i64::try_from(t.offset.seconds).ok()?;
                            Some((Duration::seconds(secs), v))
                        })
                        .collect(),
                )),
                ExemplarPayload::Event(_) => None,
            })
            .collect()
    }

    /// Whether Vigil's own evaluation (as ingest runs it, one window per history) fires on a
    /// sequence of raw records at their offsets.
    pub fn fires_on(&self, pack: &Pack, events: &[(Duration, Value)]) -> Result<bool, String> {
        let base = Utc
            .with_ymd_and_hms(2026, 11, 2, 10, 0, 0)
            .single()
            .ok_or("no base time")?;
        let mut histories: std::collections::HashMap<String, Windows> = Default::default();
        let mut fired = false;
        for (offset, record) in events {
            let mut signal = vigil_core::events::normalise_cloudtrail_record(record)
                .map_err(|e| format!("a test event does not parse: {e}"))?;
            signal.observed_at = base + *offset;
            signal.rules = pack.check(record);
            let Some(key) = self.correlation.history_of(&signal) else {
                continue;
            };
            let windows = histories.entry(key).or_default();
            fired |= self.correlation.fold(windows, &signal).is_some();
        }
        Ok(fired)
    }
}
