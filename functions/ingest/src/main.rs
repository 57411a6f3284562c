//! The `ingest` Lambda function: wiring only (the handler is vigil_handlers).

use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use vigil_aws::{
    autoscaling::AutoScaling, detectors::DetectorBucket, dynamodb::StateTable,
    lines::TelemetrySource, ssm::RulesParameter,
};
use vigil_handlers::config::{self, from_process};
use vigil_handlers::ingest::{IngestConfig, IngestError, IngestPorts, PlanPorts, Request};
use vigil_handlers::rules::{RULES_TTL, RuleStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = vigil_aws::load_config().await;
    let autoscaling = AutoScaling::new(&sdk);
    let state = StateTable::new(&sdk, config::required(&from_process, config::TABLE)?);
    let detectors = DetectorBucket::new(
        &sdk,
        config::required(&from_process, config::DETECTOR_BUCKET)?,
    );
    // Where an instance belongs and which are watched (watched groups' instances, and
    // instances tagged on their own): here, or in a member account through its member role;
    // their metrics read in the same account.
    let fleet = vigil_aws::members::Fleet {
        central: autoscaling,
        members: vigil_aws::members::Members::from_env(&sdk, &from_process)?,
    };
    let watched = vigil_aws::members::Watched {
        fleet: &fleet,
        tagged: vigil_aws::tagging::TaggedInstances::new(&sdk),
    };
    // CloudWatch's metrics or the instances' telemetry lines, as the stack chose.
    let telemetry = config::telemetry(&from_process)?;
    let metrics = vigil_aws::members::FleetMetrics {
        central: TelemetrySource::new(&sdk, &telemetry),
        members: &fleet.members,
    };
    let ports = IngestPorts {
        instances: &fleet,
        history: &state,
        watched: &watched,
        disks: &metrics,
        metrics: &metrics,
        deploys: &state,
        detectors: &detectors,
    };
    let period = config::metric_period(&from_process)?;
    let mut settings = IngestConfig::default()
        .at_period(period)
        .ok_or("the metric period was checked")?;
    if let Some(tag) = from_process(config::WATCH_TAG) {
        settings.watch_tag = tag;
    }
    settings.account = from_process(config::ACCOUNT_ID);
    settings.region = from_process("AWS_REGION");
    settings.member_accounts = config::member_accounts(&from_process)?;
    if let Some(min) = config::number(&from_process, config::GUARDDUTY_MIN_SEVERITY, 1.0, 10.0)? {
        settings.guardduty_min_severity = min;
    }
    if let Some(products) = from_process(config::SECURITY_HUB_PRODUCTS) {
        settings.securityhub_products = products
            .split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
    }
    // The bundled pack, or the operators' override when it is valid (read at most once a
    // minute); an invalid override is refused and the rules in force stay.
    let rules_override = RulesParameter::new(
        &sdk,
        config::required(&from_process, config::RULES_PARAMETER)?,
    );
    let bundled = bundled_rules(&settings)?;
    let store = RuleStore::new(bundled, RULES_TTL);
    let plan_ports = PlanPorts {
        watched: &watched,
        disks: &metrics,
        plans: &detectors,
    };
    let (ports, plan_ports, settings, store, rules_override) =
        (&ports, &plan_ports, &settings, &store, &rules_override);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let pack = store.current(rules_override).await;
            let settings = IngestConfig {
                correlations: pack.correlated(),
                rules: Some(pack),
                ..settings.clone()
            };
            let request = Request::parse(event.payload).map_err(diagnostic)?;
            let output = match request {
                Request::Plan(tick) => {
                    let plan = vigil_handlers::ingest::plan(&tick, &settings, plan_ports)
                        .await
                        .map_err(diagnostic)?;
                    // The schedule's tick reached ingest (SilentAlarm counts these).
                    vigil_handlers::emit_metrics(
                        &vigil_core::telemetry::event_in(&tick.source, &tick.detail_type, false),
                        chrono::Utc::now(),
                    );
                    serde_json::to_value(plan)
                }
                Request::Batch(batch) => {
                    let observed = vigil_handlers::ingest::pull_batch(&batch, &settings, ports)
                        .await
                        .map_err(diagnostic)?;
                    serde_json::to_value(observed)
                }
                Request::Event(event) => {
                    let observed = vigil_handlers::ingest::handle(&event, &settings, ports)
                        .await
                        .map_err(diagnostic)?;
                    vigil_handlers::emit_metrics(
                        &vigil_core::telemetry::event_in(
                            &event.source,
                            &event.detail_type,
                            observed.ignored.is_some(),
                        ),
                        chrono::Utc::now(),
                    );
                    serde_json::to_value(observed)
                }
            };
            output.map_err(|e| Diagnostic {
                error_type: vigil_handlers::ingest::PORT_FAILED.to_owned(),
                error_message: e.to_string(),
            })
        },
    ))
    .await
}

/// Typed for the state machine: it retries a failed AWS call, not a refused event.
fn diagnostic(e: IngestError) -> Diagnostic {
    let error_type = e.error_type();
    if error_type == vigil_handlers::ingest::EVENT_REFUSED {
        // Counted by the RefusedEvents metric filter; its alarm tells people once.
        lambda_runtime::tracing::warn!(vigil_refused_events = 1, error = %vigil_core::error_chain(&e), "event refused");
    }
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: vigil_core::error_chain(&e),
    }
}

/// The bundled rules: a build whose pack does not load does not start.
fn bundled_rules(settings: &IngestConfig) -> Result<std::sync::Arc<vigil_rules::Pack>, Error> {
    settings
        .rules
        .clone()
        .ok_or_else(|| Error::from("the bundled detection rules do not load"))
}
