//! The `approve` Lambda function (behind a function URL): wiring only (the handler is
//! vigil_handlers::approve).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::HeaderMap;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_aws::{ssm::PolicyParameter, stack};
use vigil_core::policy::Policy;
use vigil_handlers::approve::{Page, Setup};
use vigil_handlers::config::{self, from_process};
use vigil_handlers::decide::{POLICY_TTL, PolicyStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut store = PolicyStore::new(Policy::bundled()?, config::mode(&from_process)?, POLICY_TTL);
    if let Some(tag) = config::optional(&from_process, config::PROTECT_TAG) {
        store = store.with_protect_tag(tag);
    }
    store = store.with_member_accounts(config::member_accounts(&from_process)?);
    let sdk = vigil_aws::load_config().await;
    let adapters = stack::RemediateAdapters::from_env(&sdk, &from_process)?;
    let key = stack::signing_key(&sdk, &from_process).await;
    let settings = stack::remediate_config(&from_process, key.clone());
    let policy = PolicyParameter::new(
        &sdk,
        config::required(&from_process, config::POLICY_PARAMETER)?,
    );
    let setup = Setup {
        key: key.as_deref(),
        remediate: &settings,
        store: &store,
        policy: &policy,
    };
    let (setup, ports) = (&setup, &adapters);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
            let page = vigil_handlers::approve::respond(
                &event.payload,
                &event.context.request_id,
                setup,
                ports,
                chrono::Utc::now(),
            )
            .await;
            vigil_handlers::emit_metrics(&page.metrics, chrono::Utc::now());
            let mut headers = HeaderMap::new();
            for (name, value) in Page::headers() {
                headers.insert(name, value.parse()?);
            }
            let mut response = LambdaFunctionUrlResponse::default();
            response.status_code = i64::from(page.status);
            response.headers = headers;
            response.body = Some(page.html());
            Ok::<_, Error>(response)
        },
    ))
    .await
}
