//! CloudWatch Alarm State Change: an alarm on an instance, a group or a load balancer.

use super::*;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlarmDetail {
    alarm_name: String,
    state: AlarmStateDetail,
    #[serde(default)]
    previous_state: Option<AlarmStateDetail>,
    #[serde(default)]
    configuration: AlarmConfiguration,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlarmStateDetail {
    value: AlarmState,
    #[serde(default)]
    reason: String,
    /// A JSON document, sent as a string.
    #[serde(default)]
    reason_data: Option<Value>,
    #[serde(default)]
    timestamp: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlarmConfiguration {
    #[serde(default)]
    metrics: Vec<AlarmMetric>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AlarmMetric {
    #[serde(default)]
    metric_stat: Option<MetricStat>,
    #[serde(default = "yes")]
    return_data: bool,
}

pub(super) fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub(super) struct MetricStat {
    metric: MetricId,
}

#[derive(Debug, Deserialize)]
pub(super) struct MetricId {
    #[serde(default)]
    namespace: Option<String>,
    name: String,
    #[serde(default)]
    dimensions: BTreeMap<String, String>,
}

/// The reason data CloudWatch attaches to a metric alarm's state.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReasonData {
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    recent_datapoints: Vec<f64>,
}

pub(super) fn alarm(event: &Envelope) -> Result<Vec<Signal>, EventError> {
    let id = event_id(event)?;
    let dt = event.detail_type.clone();
    let detail: AlarmDetail =
        serde_json::from_value(event.detail.clone()).map_err(|source| EventError::Detail {
            detail_type: dt.clone(),
            event_id: id.clone(),
            source,
        })?;
    if detail.alarm_name.trim().is_empty() {
        return Err(EventError::Unusable {
            detail_type: dt,
            event_id: id,
            what: "alarm name is empty".into(),
        });
    }

    // The metric the alarm watches: the one returning data (metric-math alarms have several).
    let metric = detail
        .configuration
        .metrics
        .iter()
        .filter(|m| m.return_data)
        .find_map(|m| m.metric_stat.as_ref())
        .map(|s| &s.metric);

    let resource = alarm_resource(event, metric, &dt, &id)?;

    let reason_data: ReasonData = match &detail.state.reason_data {
        Some(Value::String(s)) => serde_json::from_str(s).unwrap_or_default(),
        Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).unwrap_or_default(),
        _ => ReasonData::default(),
    };
    let mut values = BTreeMap::new();
    if let Some(t) = reason_data.threshold.filter(|t| t.is_finite()) {
        values.insert("threshold".to_owned(), t);
    }
    let points: Vec<f64> = reason_data
        .recent_datapoints
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if let Some(latest) = points.last() {
        values.insert("latest".to_owned(), *latest);
        let max = points.iter().copied().fold(f64::MIN, f64::max);
        values.insert("max".to_owned(), max);
        values.insert("datapoints".to_owned(), points.len() as f64);
    }

    let observed_at = detail
        .state
        .timestamp
        .as_deref()
        .and_then(parse_time)
        .or(event.time)
        .ok_or_else(|| EventError::Unusable {
            detail_type: dt.clone(),
            event_id: id.clone(),
            what: "no timestamp in the event or its state".into(),
        })?;

    Ok(vec![Signal {
        event_id: id,
        source: Source::CloudWatchAlarm,
        resource,
        observed_at,
        kind: SignalKind::AlarmStateChange {
            alarm: display_text(&detail.alarm_name, MAX_ALARM_NAME),
            state: detail.state.value,
            previous: detail.previous_state.map(|p| p.value),
            metric: metric.map(|m| {
                display_text(
                    &format!("{}/{}", m.namespace.as_deref().unwrap_or("?"), m.name),
                    255,
                )
            }),
            reason: display_text(&detail.state.reason, MAX_REASON),
        },
        values,
        rules: Vec::new(),
    }])
}

pub(super) fn alarm_resource(
    event: &Envelope,
    metric: Option<&MetricId>,
    dt: &str,
    id: &str,
) -> Result<Resource, EventError> {
    let invalid = |what, source| EventError::Invalid {
        detail_type: dt.to_owned(),
        event_id: id.to_owned(),
        what,
        source,
    };
    let alarm_arn = event
        .resources
        .as_ref()
        .and_then(|r| r.first())
        .map(|a| display_text(a, 2048));
    let dims = metric.map(|m| &m.dimensions);
    if let Some(instance) = dims.and_then(|d| d.get("InstanceId")) {
        let instance =
            InstanceId::parse(instance).map_err(|e| invalid("InstanceId dimension", e))?;
        return Ok(Resource::instance(&instance));
    }
    if let Some(group) = dims.and_then(|d| d.get("AutoScalingGroupName")) {
        let group =
            GroupName::parse(group).map_err(|e| invalid("AutoScalingGroupName dimension", e))?;
        let mut resource = Resource::new(ResourceKind::AutoScalingGroup, group.to_string());
        resource.group = Some(group);
        return Ok(resource);
    }
    let Some(arn) = alarm_arn else {
        return Err(EventError::Unusable {
            detail_type: dt.to_owned(),
            event_id: id.to_owned(),
            what: "the alarm names no resource and the event lists no ARN".into(),
        });
    };
    Ok(Resource::new(ResourceKind::Other, arn.clone()).with_arn(Some(arn)))
}
