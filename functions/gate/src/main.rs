//! The `gate` Lambda function: wiring only (the handler is vigil_handlers).

use std::time::{Instant, SystemTime};

use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_aws::{
    artifacts::Artifacts, codepipeline::CodePipeline, dynamodb::StateTable, guardduty::GuardDuty,
    sns::Sns, ssm::PolicyParameter,
};
use vigil_core::policy::Policy;
use vigil_handlers::config::{self, from_process};
use vigil_handlers::decide::{POLICY_TTL, PolicyStore};
use vigil_handlers::gate::{self, GateConfig, GateEvent, GatePorts};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let store = PolicyStore::new(Policy::bundled()?, config::mode(&from_process)?, POLICY_TTL);
    let sdk = vigil_aws::load_config().await;
    let state = StateTable::new(&sdk, config::required(&from_process, config::TABLE)?);
    let pipeline = CodePipeline::new(&sdk);
    let findings = GuardDuty::new(&sdk);
    let artifacts = Artifacts::new(&sdk);
    let alerts = Sns::new(&sdk, config::required(&from_process, config::TOPIC_ARN)?);
    let policy = PolicyParameter::new(
        &sdk,
        config::required(&from_process, config::POLICY_PARAMETER)?,
    );
    let settings = GateConfig {
        approval_topic: Some(config::required(&from_process, config::APPROVAL_TOPIC_ARN)?),
        // Set by Lambda in every function's environment.
        region: config::optional(&from_process, "AWS_REGION"),
        ..GateConfig::default()
    };
    let ports = GatePorts {
        freeze: &state,
        posture: &state,
        findings: &findings,
        artifacts: &artifacts,
        deploys: &state,
        jobs: &pipeline,
        approvals: &pipeline,
        alerts: &alerts,
    };
    let (store, ports, policy, settings) = (&store, &ports, &policy, &settings);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            let left = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            let (current, _) = store.current(policy, ports.alerts).await;
            let parsed = GateEvent::parse(event.payload)
                .map_err(|e| Error::from(vigil_core::error_chain(&e)))?;
            gate::handle(
                parsed,
                &current.gate,
                settings,
                ports,
                chrono::Utc::now(),
                Instant::now() + left,
            )
            .await
            .map_err(|e| Error::from(vigil_core::error_chain(&e)))
        },
    ))
    .await
}
