//! CloudTrail: API calls and console sign-ins, one record or one event.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CloudTrailRecord {
    #[serde(rename = "eventID", default)]
    event_id: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    event_source: String,
    event_name: String,
    #[serde(default)]
    aws_region: String,
    #[serde(rename = "sourceIPAddress", default)]
    source_ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    #[serde(default)]
    user_identity: Option<UserIdentity>,
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    read_only: Option<Value>,
    #[serde(default)]
    request_parameters: Option<Value>,
    #[serde(default)]
    response_elements: Option<Value>,
    #[serde(default)]
    additional_event_data: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UserIdentity {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    arn: Option<String>,
    #[serde(default)]
    principal_id: Option<String>,
    #[serde(default)]
    user_name: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    session_context: Option<Value>,
    #[serde(default)]
    invoked_by: Option<String>,
}

/// Longest list of request parameters kept per call, and of each value.
pub(super) const MAX_REQUEST_FIELDS: usize = 32;
pub(super) const MAX_REQUEST_VALUE: usize = 256;

pub(super) fn flatten(prefix: &str, v: &Value, depth: usize, out: &mut Vec<String>) {
    if out.len() >= MAX_REQUEST_FIELDS || depth > 5 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, depth + 1, out);
            }
        }
        Value::Array(a) => {
            for v in a.iter().take(MAX_REQUEST_FIELDS) {
                flatten(prefix, v, depth + 1, out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push(display_text(&format!("{prefix}={s}"), MAX_REQUEST_VALUE)),
        other => out.push(display_text(
            &format!("{prefix}={other}"),
            MAX_REQUEST_VALUE,
        )),
    }
}

pub(super) fn principal(identity: &UserIdentity) -> Principal {
    let session = identity.session_context.as_ref();
    let issuer_name = session
        .and_then(|s| s.pointer("/sessionIssuer/userName"))
        .and_then(Value::as_str);
    let mfa = session
        .and_then(|s| s.pointer("/attributes/mfaAuthenticated"))
        .and_then(|v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
            _ => None,
        });
    let arn = identity.arn.as_deref().filter(|a| !a.is_empty());
    let id = arn
        .or(identity.principal_id.as_deref().filter(|p| !p.is_empty()))
        .or(identity.invoked_by.as_deref())
        .unwrap_or("unknown");
    Principal {
        kind: display_text(identity.kind.as_deref().unwrap_or("Unknown"), 32),
        id: display_text(id, 2048),
        name: identity
            .user_name
            .as_deref()
            .or(issuer_name)
            .map(|n| display_text(n, 128)),
        access_key_id: identity
            .access_key_id
            .as_deref()
            .filter(|k| access_key_id(k))
            .map(str::to_owned),
        mfa_authenticated: mfa,
    }
}

pub(super) fn yes_no(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("yes") || s.eq_ignore_ascii_case("true") => {
            Some(true)
        }
        Value::String(s) if s.eq_ignore_ascii_case("no") || s.eq_ignore_ascii_case("false") => {
            Some(false)
        }
        _ => None,
    }
}

pub(super) fn cloudtrail(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let record: CloudTrailRecord = ctx.detail()?;
    cloudtrail_signal(&ctx, record).map(|s| vec![s])
}

pub(super) fn cloudtrail_signal(ctx: &Ctx<'_>, r: CloudTrailRecord) -> Result<Signal, EventError> {
    let event_source = api_name(ctx, "eventSource", &r.event_source)?;
    let event_name = api_name(ctx, "eventName", &r.event_name)?;
    let identity = r.user_identity.unwrap_or_default();
    let principal = principal(&identity);
    let observed_at = ctx.time(r.event_time.as_deref())?;
    let source_ip = display_text(r.source_ip.as_deref().unwrap_or(""), 128);
    let user_agent = display_text(r.user_agent.as_deref().unwrap_or(""), 512);
    let resource = Resource::new(ResourceKind::Principal, principal.id.clone()).with_arn(
        identity
            .arn
            .as_deref()
            .filter(|a| a.starts_with("arn:"))
            .map(|a| display_text(a, 2048)),
    );

    if event_name == "ConsoleLogin" {
        let outcome = r
            .response_elements
            .as_ref()
            .and_then(|v| v.get("ConsoleLogin"))
            .and_then(Value::as_str);
        let success = match outcome {
            Some(o) if o.eq_ignore_ascii_case("success") => true,
            Some(o) if o.eq_ignore_ascii_case("failure") => false,
            _ => r.error_code.is_none(),
        };
        let mfa_used = yes_no(
            r.additional_event_data
                .as_ref()
                .and_then(|v| v.get("MFAUsed")),
        );
        return Ok(ctx.signal(
            Source::CloudTrail,
            resource,
            observed_at,
            SignalKind::ConsoleSignIn {
                principal,
                success,
                mfa_used,
                source_ip,
                user_agent,
            },
        ));
    }

    let mut request = Vec::new();
    if let Some(p) = &r.request_parameters {
        flatten("", p, 0, &mut request);
    }
    let read_only = match &r.read_only {
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    Ok(ctx.signal(
        Source::CloudTrail,
        resource,
        observed_at,
        SignalKind::ApiCall(ApiCall {
            event_source,
            event_name,
            principal,
            source_ip,
            user_agent,
            region: display_text(&r.aws_region, 64),
            error_code: r.error_code.as_deref().map(|e| display_text(e, 128)),
            read_only,
            request,
        }),
    ))
}

/// Normalises one raw CloudTrail record (as found in a trail's log files, outside EventBridge):
/// the same signal EventBridge's "AWS API Call via CloudTrail" event would give.
pub fn normalise_cloudtrail_record(record: &Value) -> Result<Signal, EventError> {
    let event_id = record
        .get("eventID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or(EventError::MissingId)?;
    let envelope: Envelope = serde_json::from_value(serde_json::json!({
        "version": "0",
        "id": event_id,
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.cloudtrail",
        "detail": record,
    }))
    .map_err(EventError::Envelope)?;
    let ctx = Ctx::new(&envelope)?;
    let parsed: CloudTrailRecord = ctx.detail()?;
    if parsed.event_id.is_none() {
        return Err(EventError::MissingId);
    }
    cloudtrail_signal(&ctx, parsed)
}
