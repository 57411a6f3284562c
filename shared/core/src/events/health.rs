//! AWS Health events on the account's resources.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HealthDetail {
    service: String,
    event_type_code: String,
    #[serde(default)]
    event_type_category: String,
    #[serde(default)]
    status_code: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    affected_entities: Vec<AffectedEntity>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AffectedEntity {
    #[serde(default)]
    entity_value: Option<String>,
}

/// At most this many affected entities become signals; the rest are summarised by the first.
pub(super) const MAX_HEALTH_ENTITIES: usize = 50;

pub(super) fn health(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let ctx = Ctx::new(event)?;
    let d: HealthDetail = ctx.detail()?;
    let service = word(&ctx, "service", &d.service)?;
    let type_code = api_name(&ctx, "eventTypeCode", &d.event_type_code)?;
    let category = if d.event_type_category.is_empty() {
        String::new()
    } else {
        word(&ctx, "eventTypeCategory", &d.event_type_category)?
    };
    let status = match d.status_code.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => word(&ctx, "statusCode", s)?,
        None => String::new(),
    };
    let at = ctx.time(d.start_time.as_deref())?;
    let kind = SignalKind::HealthEvent {
        service,
        type_code,
        category,
        status,
    };
    let entities: Vec<&str> = d
        .affected_entities
        .iter()
        .filter_map(|e| e.entity_value.as_deref())
        .filter(|e| !e.is_empty())
        .take(MAX_HEALTH_ENTITIES)
        .collect();
    if entities.is_empty() {
        let account = event.account.as_deref().unwrap_or("account");
        return Ok(vec![ctx.signal(
            Source::Health,
            Resource::new(ResourceKind::Account, display_text(account, 32)),
            at,
            kind,
        )]);
    }
    Ok(entities
        .into_iter()
        .map(|e| {
            let resource = match InstanceId::parse(e) {
                Ok(i) => Resource::instance(&i),
                Err(_) => Resource::new(ResourceKind::Other, display_text(e, 512)),
            };
            ctx.signal(Source::Health, resource, at, kind.clone())
        })
        .collect())
}
