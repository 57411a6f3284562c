//! AWS adapters: the ports of `vigil_handlers::ports` implemented on the AWS SDKs.
//!
//! This is the only crate that depends on `aws-sdk-*`. Clients are built once per process from
//! one [`SdkConfig`] (see [`load_config`]), so the region, credentials and `AWS_ENDPOINT_URL`
//! come from the environment.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::{
    Builder,
    tls::{self, rustls_provider::CryptoMode},
};
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use vigil_handlers::ports::{PortError, PortErrorKind};

pub mod artifacts;
pub mod audit;
pub mod autoscaling;
pub mod cloudwatch;
pub mod codepipeline;
pub mod detectors;
pub mod dynamodb;
pub mod guardduty;
pub mod lines;
pub mod members;
pub mod securityhub;
pub mod sns;
pub mod ssm;
pub mod stack;
pub mod tagging;

/// The HTTPS client every SDK client uses: hyper 1 + rustls with the ring provider (no aws-lc C
/// build, no legacy rustls).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// How long one attempt of an AWS call may take before it is abandoned and retried (the SDK's
/// standard retry mode treats a timed-out attempt as transient).
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How long an AWS call may take across its attempts: a hung endpoint costs this, not the
/// function's whole time.
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Each call's time bounds: without them the SDK waits on a hung connection for as long as
/// the function runs.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_millis(3100))
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// Loads the shared SDK configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL`), with [`timeouts`].
pub async fn load_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
        .load()
        .await
}

/// Error codes that mean "slow down" across AWS services.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestThrottled",
    "SlowDown",
];

/// Maps an SDK error onto a [`PortError`], classifying it for retries.
pub(crate) fn port_error<E, R>(
    operation: &'static str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
    aws_smithy_runtime_api::client::result::SdkError<E, R>: std::error::Error,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let kind = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortErrorKind::Transient
        }
        SdkError::ServiceError(se) => match se.err().code() {
            Some(code) if THROTTLING.contains(&code) => PortErrorKind::Transient,
            Some(code) if code.contains("NotFound") => PortErrorKind::NotFound,
            _ => PortErrorKind::Rejected,
        },
        _ => PortErrorKind::Rejected,
    };
    let detail = DisplayErrorContext(&err).to_string();
    PortError::new(operation, kind, detail)
}
