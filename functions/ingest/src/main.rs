//! The `ingest` Lambda function: wiring only (the handler is vigil_shared::handlers).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_shared::aws::{self, autoscaling::AutoScaling, dynamodb::StateTable};
use vigil_shared::config::{self, from_process};
use vigil_shared::events::Envelope;
use vigil_shared::handlers;
use vigil_shared::handlers::ingest::IngestPorts;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = aws::load_config().await;
    let autoscaling = AutoScaling::new(&sdk);
    let state = StateTable::new(&sdk, config::required(&from_process, config::TABLE)?);
    let ports = IngestPorts {
        instances: &autoscaling,
        history: &state,
    };
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Envelope>| async move {
        handlers::ingest::handle(&event.payload, ports)
            .await
            .map_err(|e| Error::from(vigil_shared::error_chain(&e)))
    }))
    .await
}
