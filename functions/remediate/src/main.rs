//! The `remediate` Lambda function: wiring only (the handler is vigil_handlers).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_aws::stack;
use vigil_core::domain::Decision;
use vigil_handlers::config::from_process;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = vigil_aws::load_config().await;
    let adapters = stack::RemediateAdapters::from_env(&sdk, &from_process)?;
    let members = vigil_aws::members::Members::from_env(&sdk, &from_process)?;
    let key = stack::signing_key(&sdk, &from_process).await;
    let settings = stack::remediate_config(&from_process, key);
    let (settings, adapters, members) = (&settings, &adapters, &members);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Decision>| async move {
        // A member account's decision acts through its member role; the trail stays here.
        let (ports, settings) = adapters
            .for_decision(&event.payload, members, settings)
            .await;
        let outcome = vigil_handlers::remediate::handle(
            &event.payload,
            &event.context.request_id,
            &settings,
            ports.as_ref(),
            chrono::Utc::now(),
        )
        .await
        .map_err(|e| Error::from(vigil_core::error_chain(&e)))?;
        vigil_handlers::emit_metrics(
            &vigil_core::telemetry::remediated(&event.payload, &outcome),
            outcome.finished_at,
        );
        Ok::<_, Error>(outcome)
    }))
    .await
}
