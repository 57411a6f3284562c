//! The `gate` Lambda function: wiring only (the handler is vigil_shared::handlers).

use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_shared::aws::{self, codepipeline::CodePipeline, dynamodb::StateTable};
use vigil_shared::config::{self, from_process};
use vigil_shared::handlers;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = aws::load_config().await;
    let state = StateTable::new(&sdk, config::required(&from_process, config::TABLE)?);
    let pipeline = CodePipeline::new(&sdk);
    let (state, pipeline) = (&state, &pipeline);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CodePipelineJobEvent>| async move {
            handlers::gate::handle(&event.payload, state, pipeline, chrono::Utc::now())
                .await
                .map(|r| format!("{r:?}"))
                .map_err(|e| Error::from(vigil_shared::error_chain(&e)))
        },
    ))
    .await
}
