//! EventBridge's side of the stack: the event rules of `template.yaml` as they would match, so
//! the evaluations see only what a deployed stack receives and the tests can prove the rules
//! deliver what the detection rules need.
//!
//! The matcher covers the pattern syntax the template uses: literal lists, `anything-but`,
//! `exists`, `prefix`, `$or`, nested objects and arrays in the event (any element matches).
//! A rule's `State` matters: read-only management events reach only a rule in the
//! `ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS` state.

use serde_json::{Value, json};

/// The rule state that also receives read-only management events.
pub const ALL_MANAGEMENT_EVENTS: &str = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS";

/// One event rule of the template.
#[derive(Debug, Clone)]
pub struct EventRule {
    pub name: String,
    pub pattern: Value,
    pub state: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the template does not parse: {0}")]
    Yaml(String),
    #[error("the template has no event rules on {0}")]
    NoRules(String),
}

/// CloudFormation's tags (`!GetAtt X.Arn`, `!Ref X`) as the strings they stand for: a name
/// that is no real ARN, which is all the matcher needs (the stack's own roles never call).
fn untag(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(s) => Value::Array(s.into_iter().map(untag).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| k.as_str().map(|k| (k.to_owned(), untag(v))))
                .collect(),
        ),
        Y::Tagged(t) => Value::String(format!(
            "{}:{}",
            t.tag,
            serde_json::to_string(&untag(t.value)).unwrap_or_default()
        )),
    }
}

/// The EventBridge rules of one state machine's `Events` in a SAM template.
pub fn rules_of(template: &str, resource: &str) -> Result<Vec<EventRule>, TemplateError> {
    let doc: serde_norway::Value =
        serde_norway::from_str(template).map_err(|e| TemplateError::Yaml(e.to_string()))?;
    let events = untag(doc["Resources"][resource]["Properties"]["Events"].clone());
    let rules: Vec<EventRule> = events
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, e)| e["Type"] == "EventBridgeRule")
        .map(|(name, e)| EventRule {
            name: name.clone(),
            pattern: e["Properties"]["Pattern"].clone(),
            state: e["Properties"]["State"].as_str().map(str::to_owned),
        })
        .collect();
    if rules.is_empty() {
        return Err(TemplateError::NoRules(resource.to_owned()));
    }
    Ok(rules)
}

/// A raw CloudTrail record as EventBridge delivers it: sign-in events as "AWS Console Sign In
/// via CloudTrail" from `aws.signin`, every other call as "AWS API Call via CloudTrail" from
/// `aws.<service>`.
pub fn envelope(record: &Value) -> Value {
    let source = record["eventSource"].as_str().unwrap_or("");
    let service = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    let detail_type = if service == "signin" {
        "AWS Console Sign In via CloudTrail"
    } else {
        "AWS API Call via CloudTrail"
    };
    json!({
        "version": "0",
        "id": record["eventID"],
        "detail-type": detail_type,
        "source": format!("aws.{service}"),
        "account": record["recipientAccountId"],
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    })
}

fn read_only_call(event: &Value) -> bool {
    event["detail-type"] == "AWS API Call via CloudTrail"
        && matches!(&event["detail"]["readOnly"], Value::Bool(true))
}

impl EventRule {
    /// Whether the rule delivers the event.
    pub fn delivers(&self, event: &Value) -> bool {
        if read_only_call(event) && self.state.as_deref() != Some(ALL_MANAGEMENT_EVENTS) {
            return false;
        }
        matches(&self.pattern, Some(event))
    }
}

/// The first rule that delivers the event.
pub fn delivered_by<'a>(rules: &'a [EventRule], event: &Value) -> Option<&'a EventRule> {
    rules.iter().find(|r| r.delivers(event))
}

/// Whether a pattern (an object of fields) matches a value.
fn matches(pattern: &Value, value: Option<&Value>) -> bool {
    match pattern {
        Value::Object(fields) => fields.iter().all(|(key, p)| {
            if key == "$or" {
                return p
                    .as_array()
                    .is_some_and(|alts| alts.iter().any(|alt| matches(alt, value)));
            }
            let field = value.and_then(|v| v.get(key));
            match p {
                Value::Array(conditions) => field_matches(conditions, field),
                Value::Object(_) => match field {
                    Some(Value::Array(items)) => items.iter().any(|i| matches(p, Some(i))),
                    other => matches(p, other),
                },
                _ => false,
            }
        }),
        _ => false,
    }
}

/// Whether a field satisfies one of a list of conditions (literals or operators).
fn field_matches(conditions: &[Value], field: Option<&Value>) -> bool {
    let values: Vec<&Value> = match field {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
        None => Vec::new(),
    };
    conditions.iter().any(|c| match c {
        Value::Object(op) => {
            if let Some(exists) = op.get("exists").and_then(Value::as_bool) {
                return exists == field.is_some_and(|f| !f.is_null());
            }
            if let Some(prefix) = op.get("prefix").and_then(Value::as_str) {
                return values
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.starts_with(prefix)));
            }
            if let Some(but) = op.get("anything-but") {
                let excluded: Vec<&Value> = match but {
                    Value::Array(a) => a.iter().collect(),
                    v => vec![v],
                };
                return !values.is_empty() && values.iter().all(|v| !excluded.contains(v));
            }
            false
        }
        literal => values.contains(&literal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: Value, state: Option<&str>) -> EventRule {
        EventRule {
            name: "r".into(),
            pattern,
            state: state.map(str::to_owned),
        }
    }

    #[test]
    fn the_matcher_reads_patterns_as_eventbridge_does() {
        let call = |name: &str, read_only: bool| {
            envelope(
                &json!({"eventSource": "iam.amazonaws.com", "eventName": name,
                "readOnly": read_only, "userIdentity": {"type": "IAMUser"}}),
            )
        };
        let writes = rule(
            json!({"detail-type": ["AWS API Call via CloudTrail"],
                "detail": {"eventSource": ["iam.amazonaws.com"], "readOnly": [false],
                "$or": [{"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"anything-but": ["me"]}]}}}},
                        {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"exists": false}]}}}}]}}),
            None,
        );
        assert!(writes.delivers(&call("CreateUser", false)));
        assert!(!writes.delivers(&call("ListUsers", true)));
        let reads = rule(json!({"detail": {"eventName": ["ListUsers"]}}), None);
        // A read-only call reaches only a rule in the state that receives them.
        assert!(!reads.delivers(&call("ListUsers", true)));
        let reads = EventRule {
            state: Some(ALL_MANAGEMENT_EVENTS.into()),
            ..reads
        };
        assert!(reads.delivers(&call("ListUsers", true)));
        assert!(!reads.delivers(&call("GetUser", true)));
        let mine = envelope(
            &json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
            "readOnly": false, "userIdentity": {"sessionContext": {"sessionIssuer": {"arn": "me"}}}}),
        );
        assert!(!writes.delivers(&mine));
        let prefix = rule(json!({"source": [{"prefix": "aws.i"}]}), None);
        assert!(prefix.delivers(&call("CreateUser", false)));
    }
}
