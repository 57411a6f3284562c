//! The `decide` Lambda function: wiring only (the handler is vigil_handlers).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use vigil_aws::{
    autoscaling::AutoScaling,
    dynamodb::StateTable,
    sns::Sns,
    ssm::{KillSwitchParameter, PolicyParameter},
};
use vigil_core::policy::Policy;
use vigil_core::stages::ScoredBatch;
use vigil_handlers::config::{self, from_process};
use vigil_handlers::decide::{DecidePorts, POLICY_TTL, PolicyStore};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let mut store = PolicyStore::new(Policy::bundled()?, config::mode(&from_process)?, POLICY_TTL);
    if let Some(tag) = config::optional(&from_process, config::PROTECT_TAG) {
        store = store.with_protect_tag(tag);
    }
    store = store
        .with_member_accounts(config::member_accounts(&from_process)?)
        .with_pull_minutes(config::schedule_minutes(&from_process).unwrap_or_else(|e| {
            // The schedule only lengthens the confirmation window: without it the policy's
            // own window applies, and deciding goes on.
            lambda_runtime::tracing::warn!(error = %e, "schedule not read; the policy's confirmation window applies");
            None
        }));
    let sdk = vigil_aws::load_config().await;
    let state = StateTable::new(&sdk, config::required(&from_process, config::TABLE)?);
    let kill_switch = KillSwitchParameter::new(
        &sdk,
        config::required(&from_process, config::KILL_SWITCH_PARAMETER)?,
    );
    let policy = PolicyParameter::new(
        &sdk,
        config::required(&from_process, config::POLICY_PARAMETER)?,
    );
    let alerts = Sns::new(&sdk, config::required(&from_process, config::TOPIC_ARN)?);
    // A group's capacity: here, or in a member account through its member role.
    let groups = vigil_aws::members::Fleet {
        central: AutoScaling::new(&sdk),
        members: vigil_aws::members::Members::from_env(&sdk, &from_process)?,
    };
    let ports = DecidePorts {
        claims: &state,
        kill_switch: &kill_switch,
        groups: &groups,
        history: &state,
        quotas: &state,
        policy: &policy,
        alerts: &alerts,
    };
    let (store, ports) = (&store, &ports);
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ScoredBatch>| async move {
            let owner = event
                .payload
                .execution_id
                .clone()
                .unwrap_or_else(|| event.context.request_id.clone());
            let now = chrono::Utc::now();
            let decided = vigil_handlers::decide::handle(event.payload, &owner, store, ports, now)
                .await
                .map_err(|e| Error::from(vigil_core::error_chain(&e)))?;
            vigil_handlers::emit_metrics(&vigil_core::telemetry::decided(&decided.decisions), now);
            Ok::<_, Error>(decided)
        },
    ))
    .await
}
