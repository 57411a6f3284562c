//! The `ingest` Lambda function: wiring only (the handler is vigil_shared::handlers).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_shared::aws::{self, autoscaling::AutoScaling};
use vigil_shared::events::Envelope;
use vigil_shared::handlers;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = aws::load_config().await;
    let autoscaling = AutoScaling::new(&config);
    let autoscaling = &autoscaling;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Envelope>| async move {
        handlers::ingest::handle(&event.payload, autoscaling)
            .await
            .map_err(|e| Error::from(vigil_shared::error_chain(&e)))
    }))
    .await
}
