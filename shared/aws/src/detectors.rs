//! The pull's detector states in S3: one object per watched instance, `<prefix><instance-id>`,
//! overwritten by each pull (the bucket's lifecycle removes the states of instances no pull
//! has written for a while). One PUT per instance per pull costs about a fifth of what the
//! same 40 KB would as a DynamoDB write (docs/deploy.md, "What it costs"). The pull's plans
//! are kept in the same bucket, under `pull/` (the pull workflow's map reads them), and the
//! map's results under `pull-results/`; both expire within days.

use aws_sdk_s3::primitives::ByteStream;

use super::port_error;
use vigil_core::metrics::state::MAX_STATE_BYTES;
use vigil_core::names::InstanceId;
use vigil_handlers::ports::{DetectorMemory, PortError, PortErrorKind, StorePlan};

/// Where the states are kept in the bucket.
pub const PREFIX: &str = "detector/";
/// Where the pull's plans are written (the core names each key under it).
pub const PLAN_PREFIX: &str = "pull/";

#[derive(Debug, Clone)]
pub struct DetectorBucket {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl DetectorBucket {
    pub fn new(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        DetectorBucket {
            s3: aws_sdk_s3::Client::new(config),
            bucket: bucket.into(),
        }
    }

    fn key(instance: &InstanceId) -> String {
        format!("{PREFIX}{}", instance.as_str())
    }
}

impl DetectorMemory for DetectorBucket {
    async fn recall(&self, instance: &InstanceId) -> Result<Option<Vec<u8>>, PortError> {
        const OP: &str = "s3:GetObject";
        let res = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(Self::key(instance))
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(port_error(OP, e)),
        };
        let size = out.content_length().unwrap_or(0);
        if usize::try_from(size).map_or(true, |s| s > MAX_STATE_BYTES) {
            return Err(PortError::new(
                OP,
                PortErrorKind::Rejected,
                format!("the kept state is {size} bytes, more than {MAX_STATE_BYTES}"),
            ));
        }
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| PortError::new(OP, PortErrorKind::Transient, e))?
            .into_bytes();
        Ok(Some(bytes.to_vec()))
    }

    async fn keep(&self, instance: &InstanceId, state: Vec<u8>) -> Result<(), PortError> {
        const OP: &str = "s3:PutObject";
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(Self::key(instance))
            .content_type("application/octet-stream")
            .body(ByteStream::from(state))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}

impl StorePlan for DetectorBucket {
    async fn store_plan(&self, key: &str, items: Vec<u8>) -> Result<(), PortError> {
        const OP: &str = "s3:PutObject";
        if !key.starts_with(PLAN_PREFIX) {
            return Err(PortError::new(
                OP,
                PortErrorKind::Rejected,
                format!("a plan is written under {PLAN_PREFIX} only"),
            ));
        }
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(items))
            .send()
            .await
            .map_err(|e| port_error(OP, e))?;
        Ok(())
    }
}
