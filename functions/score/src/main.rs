//! The `score` Lambda function: wiring only (the handler is vigil_handlers).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_core::models::Models;
use vigil_core::stages::Observed;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    // Decoded once per process; a model that does not decode stops the function at start.
    let models = Models::bundled()?;
    let models = &models;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Observed>| async move {
        Ok::<_, Error>(vigil_handlers::score::handle(event.payload, models))
    }))
    .await
}
