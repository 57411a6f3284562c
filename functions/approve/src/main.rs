//! The `approve` Lambda function (behind a function URL): wiring only (the handler is
//! vigil_handlers::approve).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::HeaderMap;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_aws::stack;
use vigil_handlers::config::from_process;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = vigil_aws::load_config().await;
    let adapters = stack::RemediateAdapters::from_env(&sdk, &from_process)?;
    let key = stack::signing_key(&sdk, &from_process).await;
    let settings = stack::remediate_config(&from_process, key.clone());
    let (settings, ports, key) = (&settings, &adapters, &key);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
            let token = event.payload.query_string_parameters.get("t").cloned();
            let page = vigil_handlers::approve::handle(
                token.as_deref(),
                key.as_deref(),
                &event.context.request_id,
                chrono::Utc::now(),
                settings,
                ports,
            )
            .await;
            let mut headers = HeaderMap::new();
            headers.insert("content-type", "text/html; charset=utf-8".parse()?);
            headers.insert("cache-control", "no-store".parse()?);
            let mut response = LambdaFunctionUrlResponse::default();
            response.status_code = i64::from(page.status);
            response.headers = headers;
            response.body = Some(page.html());
            Ok::<_, Error>(response)
        },
    ))
    .await
}
