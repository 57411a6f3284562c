//! The `remediate` Lambda function: wiring only (the handler is vigil_shared::handlers).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_shared::aws::{
    self,
    audit::AuditTrail,
    autoscaling::AutoScaling,
    codepipeline::CodePipeline,
    dynamodb::StateTable,
    sns::Sns,
    ssm::{Commands, KillSwitchParameter},
};
use vigil_shared::config::{self, from_process};
use vigil_shared::domain::Decision;
use vigil_shared::handlers;
use vigil_shared::handlers::remediate::{RemediateConfig, RemediatePorts};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = aws::load_config().await;
    let kill_switch = KillSwitchParameter::new(
        &sdk,
        config::required(&from_process, config::KILL_SWITCH_PARAMETER)?,
    );
    let autoscaling = AutoScaling::new(&sdk);
    let alerts = Sns::new(&sdk, config::required(&from_process, config::TOPIC_ARN)?);
    let table = config::required(&from_process, config::TABLE)?;
    let state = StateTable::new(&sdk, &table);
    let audit = AuditTrail::new(
        &sdk,
        config::required(&from_process, config::AUDIT_BUCKET)?,
        "audit/",
        &table,
    );
    let commands = Commands::new(&sdk);
    let pipelines = CodePipeline::new(&sdk);
    let ports = RemediatePorts {
        kill_switch: &kill_switch,
        instances: &autoscaling,
        health: &autoscaling,
        alerts: &alerts,
        history: &state,
        groups: &autoscaling,
        commands: &commands,
        pipelines: &pipelines,
        audit: &audit,
    };
    let defaults = RemediateConfig::default();
    let settings = RemediateConfig {
        restart_document: config::optional(&from_process, config::RESTART_DOCUMENT)
            .unwrap_or(defaults.restart_document.clone()),
        deactivate_key_document: config::optional(&from_process, config::DEACTIVATE_KEY_DOCUMENT)
            .unwrap_or(defaults.deactivate_key_document.clone()),
        automation_role: config::optional(&from_process, config::AUTOMATION_ROLE_ARN),
        ..defaults
    };
    let (settings, ports) = (&settings, &ports);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Decision>| async move {
        handlers::remediate::handle(&event.payload, settings, ports)
            .await
            .map_err(|e| Error::from(vigil_shared::error_chain(&e)))
    }))
    .await
}
